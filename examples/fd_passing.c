/* examples/fd_passing.c - send open file descriptors to another process over a unix
   socket, then hand a shared-memory ring to a process that never inherited it.

   A unix socket can carry descriptors next to its bytes (SCM_RIGHTS): the receiver gets
   new fds, with numbers of its own, that refer to the same open files as the sender's,
   as if it had inherited them with fork. The sender may close its copies at once.

   Part 1: the parent forks a child with a socket pair between them, and only then opens
   three things the child cannot have inherited: a temporary file (whose name it removes
   at once, so only the fd keeps it alive), a pipe, and an anonymous memfd with a question
   in it. ipc_sock_send_fds sends the three fds in one message; the child receives them
   with ipc_sock_recv_fds, reads the nameless file, maps the memfd and writes an answer
   into it, and writes to the parent through the pipe.

   Part 2: two sibling processes, neither of which inherits anything from the other. The
   "owner" creates an anonymous ring (a memfd: no name in /dev/shm, so no other process
   can open it) and listens on an abstract unix socket; the "guest" connects to it. The
   owner checks who connected (ipc_sock_peercred), passes the ring with
   ipc_sock_send_ring, and streams messages through it; the guest attaches as consumer
   with ipc_sock_recv_ring and reads until the owner closes the ring. The socket is only
   needed for the hand-off: the data never goes through the kernel.

   Build and run:  make demo   (or: cc -I. examples/fd_passing.c -pthread && ./a.out) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECOND   1000000000LL
#define MESSAGES 100000

static int fail(const char *who, const char *what, int err) {
    fprintf(stderr, "%s: %s: %s\n", who, what, ipc_strerror(err));
    return 1;
}

static int reap(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid) return 1;
    return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

/* ---- Part 1: a file, a pipe and a memfd across a socket pair ---- */

static int child_uses_fds(int sock) {
    char text[128], content[128];
    int fds[3], nfds = 3; /* room for 3; becomes the number that came */
    ipc_shm shm;
    ssize_t n;
    int r;

    n = ipc_sock_recv_fds(sock, text, sizeof text - 1, fds, &nfds, 5 * SECOND);
    if (n < 0) return fail("child", "ipc_sock_recv_fds", (int)n);
    text[n] = 0;
    if (nfds != 3) {
        fprintf(stderr, "child: expected 3 descriptors, got %d\n", nfds);
        return 1;
    }
    printf("child:  got \"%s\" with fds %d %d %d\n", text, fds[0], fds[1], fds[2]);

    /* The file: the fd shares the parent's file offset (one open file, two fds), so
       read at an explicit offset rather than wherever the parent left it. */
    n = pread(fds[0], content, sizeof content - 1, 0);
    if (n < 0) return fail("child", "pread", -errno);
    content[n] = 0;
    printf("child:  the nameless file says: %s", content);
    close(fds[0]);

    /* The memfd: map it and answer the question the parent left in it. */
    r = ipc_shm_attach_fd(&shm, fds[2], NULL);
    if (r < 0) return fail("child", "ipc_shm_attach_fd", r);
    close(fds[2]); /* the mapping keeps its own reference */
    printf("child:  the memfd (%zu bytes) asks: %s\n", shm.size, (char *)shm.addr);
    snprintf((char *)shm.addr + 1024, 1024, "42, from pid %d", (int)getpid());
    ipc_shm_close(&shm);

    /* The pipe: ours is its only write end, so closing it ends the parent's reading. */
    snprintf(content, sizeof content, "hello from pid %d through a pipe it did not create\n",
             (int)getpid());
    n = ipc_fd_write_all(fds[1], content, strlen(content), 5 * SECOND, NULL);
    close(fds[1]);
    if (n < 0) return fail("child", "write to the pipe", (int)n);
    return 0;
}

static int part1(void) {
    static const char file_text[] = "this file has no name any more\n";
    char path[] = "/tmp/ipc-example-fdpass-XXXXXX", msg[128], line[128];
    int sv[2], fds[3], filefd, r;
    ipc_pipe pp;
    ipc_shm shm;
    ssize_t n;
    pid_t child;

    printf("--- Part 1: passing a file, a pipe and a memfd\n");
    if ((r = ipc_sock_pair(sv, IPC_SOCK_STREAM)) < 0) return fail("parent", "ipc_sock_pair", r);
    fflush(stdout); /* or the child inherits unprinted output */
    child = fork();
    if (child < 0) return fail("parent", "fork", -errno);
    if (child == 0) {
        close(sv[0]);
        r = child_uses_fds(sv[1]);
        fflush(stdout);
        _exit(r);
    }
    close(sv[1]);

    /* Opened after the fork: the socket is the only way for the child to get them. */
    filefd = mkstemp(path);
    if (filefd < 0) return fail("parent", "mkstemp", -errno);
    unlink(path); /* nothing left behind on disk, whatever happens next */
    if ((n = ipc_fd_write_all(filefd, file_text, sizeof file_text - 1, SECOND, NULL)) < 0)
        return fail("parent", "write to the file", (int)n);
    if ((r = ipc_pipe_open(&pp, NULL)) < 0) return fail("parent", "ipc_pipe_open", r);
    if ((r = ipc_shm_create(&shm, NULL, 4096, NULL)) < 0) return fail("parent", "memfd", r);
    snprintf((char *)shm.addr, 1024, "what is six times seven?");

    fds[0] = filefd;
    fds[1] = pp.wfd;
    fds[2] = shm.fd;
    snprintf(msg, sizeof msg, "file, pipe, memfd (parent's fds %d %d %d)", fds[0], fds[1], fds[2]);
    printf("parent: sending fds %d %d %d\n", fds[0], fds[1], fds[2]);
    n = ipc_sock_send_fds(sv[0], msg, strlen(msg), fds, 3, 5 * SECOND);
    if (n < 0) return fail("parent", "ipc_sock_send_fds", (int)n);
    /* The message in flight holds its own references: our copies can go now. The pipe's
       write end must go, or our read below would never see end of stream. */
    close(filefd);
    ipc_fd_close(&pp.wfd);
    ipc_fd_close(&sv[0]);

    /* Read the pipe until end of stream: the child has then finished with the memfd too. */
    while ((n = ipc_fd_read_some(pp.rfd, line, sizeof line - 1, 5 * SECOND)) > 0) {
        line[n] = 0;
        printf("parent: from the pipe: %s", line);
    }
    if (n != -EPIPE) return fail("parent", "read from the pipe", (int)n);
    printf("parent: the answer in the memfd: %s\n", (char *)shm.addr + 1024);
    r = strncmp((char *)shm.addr + 1024, "42,", 3) != 0;
    ipc_pipe_close(&pp);
    ipc_shm_close(&shm);
    return reap(child) || r;
}

/* ---- Part 2: a ring handed to a sibling ---- */

static int owner(const char *endpoint) {
    ipc_ring_opts opts = {0};
    ipc_peercred cred;
    ipc_ring ring;
    char msg[64];
    int lfd, fd, r, i;

    opts.capacity = 64 * 1024;
    r = ipc_ring_create(&ring, NULL, IPC_PRODUCER, &opts); /* NULL: anonymous */
    if (r < 0) return fail("owner", "ipc_ring_create", r);
    lfd = ipc_sock_listen(endpoint, NULL);
    if (lfd < 0) return fail("owner", "ipc_sock_listen", lfd);
    printf("owner:  created an anonymous ring, waiting on %s\n", endpoint);
    fflush(stdout);
    fd = ipc_sock_accept(lfd, NULL, 5 * SECOND);
    ipc_fd_close(&lfd); /* one guest is all we want: the name is free again */
    if (fd < 0) return fail("owner", "ipc_sock_accept", fd);

    /* An abstract name has no permissions: anyone could have connected. */
    if ((r = ipc_sock_peercred(fd, &cred)) < 0) return fail("owner", "ipc_sock_peercred", r);
    if (cred.uid != (unsigned)geteuid()) {
        fprintf(stderr, "owner: uid %u is not ours, no ring for it\n", cred.uid);
        return 1;
    }
    printf("owner:  pid %d (uid %u) connected; passing it the ring\n", (int)cred.pid, cred.uid);
    r = ipc_sock_send_ring(fd, &ring, 5 * SECOND);
    ipc_fd_close(&fd);
    if (r < 0) return fail("owner", "ipc_sock_send_ring", r);

    /* Sending may start before the guest has attached: the messages wait in the ring. */
    for (i = 0; i < MESSAGES; i++) {
        int len = snprintf(msg, sizeof msg, "message %d", i);
        if ((r = ipc_ring_send(&ring, msg, (size_t)len, 5 * SECOND)) < 0) {
            fail("owner", "ipc_ring_send", r);
            break;
        }
    }
    printf("owner:  sent %d messages, closing the ring\n", i);
    ipc_ring_close(&ring); /* the guest drains the ring, then reads -EPIPE */
    return r < 0;
}

static int guest(const char *endpoint) {
    int64_t deadline = ipc_deadline_make(5 * SECOND);
    char msg[64] = "", want[64];
    ipc_ring ring;
    ssize_t n;
    int fd, r, count = 0;

    /* The owner may not be listening yet: an abstract name nobody holds refuses. */
    while ((fd = ipc_sock_connect(endpoint, NULL, ipc_deadline_left(deadline))) == -ECONNREFUSED &&
           ipc_deadline_left(deadline) > 0) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (fd < 0) return fail("guest", "ipc_sock_connect", fd);
    r = ipc_sock_recv_ring(fd, &ring, IPC_CONSUMER, 5 * SECOND);
    ipc_fd_close(&fd);
    if (r < 0) return fail("guest", "ipc_sock_recv_ring", r);
    printf("guest:  attached to the ring as consumer, %zu-byte messages at most\n",
           ipc_ring_max_msg(&ring));

    while ((n = ipc_ring_recv(&ring, msg, sizeof msg - 1, 5 * SECOND)) > 0) {
        msg[n] = 0;
        snprintf(want, sizeof want, "message %d", count);
        if (strcmp(msg, want) != 0) {
            fprintf(stderr, "guest: got \"%s\", expected \"%s\"\n", msg, want);
            break;
        }
        count++;
    }
    printf("guest:  received %d messages, last \"%s\", then: %s\n", count, msg,
           ipc_strerror((int)n));
    ipc_ring_close(&ring);
    return n != -EPIPE || count != MESSAGES;
}

static int part2(void) {
    char endpoint[64];
    pid_t p_owner, p_guest;
    int failed;

    printf("\n--- Part 2: handing a ring to a sibling over an abstract unix socket\n");
    /* The pid makes the name ours; abstract names vanish with their socket. */
    snprintf(endpoint, sizeof endpoint, "unix:@ipc-example-fdpass-%d", (int)getpid());
    fflush(stdout);
    p_guest = fork(); /* the guest first: it has to wait for the owner */
    if (p_guest == 0) {
        int r = guest(endpoint);
        fflush(stdout);
        _exit(r);
    }
    p_owner = fork();
    if (p_owner == 0) {
        int r = owner(endpoint);
        fflush(stdout);
        _exit(r);
    }
    if (p_guest < 0 || p_owner < 0) return fail("parent", "fork", -errno);
    failed = reap(p_owner);
    failed |= reap(p_guest);
    return failed;
}

int main(void) {
    int failed;
    setvbuf(stdout, NULL, _IOLBF, 0); /* lines of the processes in the order they happen */
    failed = part1();
    failed |= part2();
    return failed;
}
