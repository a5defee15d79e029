/* tests/test_cov_sock.c - section 11 paths the section's own tests leave out (found by
   make coverage): fd passing whose data does not fit in one sendmsg, and unix socket paths
   relative to the working directory. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define MS   ((int64_t)1000000)
#define BIG  (1024 * 1024) /* far more than a socket buffer */
#define SEED 0x5eedu

static int g_sock; /* the receiving end, for the child */

/* Child: the descriptor and the first bytes in one receive, then the rest as plain stream
   data; write "ok" into the pipe end that came along. */
static void receiver(void *arg) {
    unsigned char *buf = (unsigned char *)th_xmalloc(BIG);
    int fds[4], nfds = 4;
    ssize_t n;
    (void)arg;
    th_sleep_ms(50); /* let the sender fill the buffer: its first sendmsg takes a part */
    n = ipc_sock_recv_fds(g_sock, buf, BIG, fds, &nfds, 5000 * MS);
    CHECK(n > 0);
    CHECK_EQ(nfds, 1);
    CHECK_ERR(ipc_fd_read_exact(g_sock, buf + n, (size_t)(BIG - n), 5000 * MS, NULL), BIG - n);
    th_pat_check(__FILE__, __LINE__, buf, 0, BIG, SEED);
    CHECK_ERR(ipc_fd_write_all(fds[0], "ok", 2, 1000 * MS, NULL), 2);
    CHECK_OK(ipc_fd_close(&fds[0]));
    free(buf);
}

/* send_fds on a stream whose buffer takes only part of the data: the descriptor rides with
   the first part, the rest follows, and the peer gets every byte once, in order. */
TEST(cov_sock_send_fds_larger_than_the_socket_buffer) {
    unsigned char *buf = (unsigned char *)th_xmalloc(BIG);
    int sv[2], pfd[2];
    char ok[2];
    pid_t pid;
    CHECK_OK(ipc_sock_pair(sv, IPC_SOCK_STREAM));
    CHECK_OK(ipc_sock_set_buffers(sv[0], 4096, 0));
    CHECK_OK(ipc_sock_set_buffers(sv[1], 0, 4096));
    CHECK_EQ(pipe(pfd), 0);
    th_pat_fill(buf, BIG, SEED);
    g_sock = sv[1];
    pid = th_spawn_ok(receiver, NULL);
    CHECK_OK(ipc_fd_close(&sv[1]));
    CHECK_ERR(ipc_sock_send_fds(sv[0], buf, BIG, &pfd[1], 1, 5000 * MS), BIG);
    CHECK_OK(ipc_fd_close(&pfd[1]));
    CHECK_ERR(ipc_fd_read_exact(pfd[0], ok, 2, 5000 * MS, NULL), 2);
    CHECK(memcmp(ok, "ok", 2) == 0);
    th_join_ok(pid, 10000);
    CHECK_OK(ipc_fd_close(&pfd[0]));
    CHECK_OK(ipc_fd_close(&sv[0]));
    free(buf);
}

/* "unix:name" without a slash: a socket file in the working directory, with the mode
   asked for, which a client reaches by the same relative name. */
TEST_GUARDED(cov_sock_unix_relative_path, 10000, 2000, th_in_tmpdir) {
    ipc_sock_opts o;
    struct stat st;
    int l, c, a;
    char b = 0;
    CHECK_EQ(chdir(th_dir), 0);
    memset(&o, 0, sizeof o);
    o.mode = 0640;
    l = ipc_sock_listen("unix:srv.sock", &o);
    CHECK_OK(l);
    CHECK_EQ(lstat("srv.sock", &st), 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_EQ(st.st_mode & 0777, 0640);
    c = ipc_sock_connect("unix:srv.sock", NULL, 2000 * MS);
    CHECK_OK(c);
    a = ipc_sock_accept(l, NULL, 2000 * MS);
    CHECK_OK(a);
    CHECK_ERR(ipc_sock_send(c, "x", 1, 1000 * MS, NULL), 1);
    CHECK_ERR(ipc_sock_recv(a, &b, 1, 1000 * MS), 1);
    CHECK_EQ(b, 'x');
    CHECK_OK(ipc_fd_close(&a));
    CHECK_OK(ipc_fd_close(&c));
    /* a second server on the same name: the first still accepts there */
    CHECK_ERR(ipc_sock_listen("unix:srv.sock", NULL), -EADDRINUSE);
    CHECK_OK(ipc_fd_close(&l));
    CHECK_OK(ipc_sock_unlink("unix:srv.sock"));
    CHECK(lstat("srv.sock", &st) != 0 && errno == ENOENT);
}
