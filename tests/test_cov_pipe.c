/* tests/test_cov_pipe.c - section 7 paths the section's own tests leave out (found by make
   coverage): spawning from a process whose standard input and output are closed. */
#include "harness.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define MS ((int64_t)1000000)

/* A daemon-like parent with fds 0 and 1 closed: the pipes ipc_proc_spawn makes land there
   first and must be moved above 2, or setting up the child's stdio would clobber them.
   The child (cat) echoes what it reads, and no pipe end is left at 0 or 1. */
TEST(cov_spawn_with_stdin_and_stdout_closed) {
    char *argv[] = {(char *)"cat", NULL};
    char buf[16];
    ipc_proc p;
    int st;
    CHECK_EQ(close(0), 0);
    CHECK_EQ(close(1), 0);
    CHECK_OK(ipc_proc_spawn(&p, "/bin/cat", argv, NULL));
    CHECK(p.in > 2 && p.out > 2 && p.err > 2);
    /* nothing else was left there (the pidfd, the parent's own, may take the lowest fd) */
    CHECK(p.pidfd == 0 || (fcntl(0, F_GETFD) < 0 && errno == EBADF));
    CHECK(p.pidfd == 1 || (fcntl(1, F_GETFD) < 0 && errno == EBADF));
    CHECK_ERR(ipc_fd_write_all(p.in, "echo me", 7, 2000 * MS, NULL), 7);
    CHECK_OK(ipc_fd_close(&p.in));
    CHECK_ERR(ipc_fd_read_exact(p.out, buf, 7, 2000 * MS, NULL), 7);
    CHECK(memcmp(buf, "echo me", 7) == 0);
    CHECK_ERR(ipc_fd_read_some(p.out, buf, sizeof buf, 2000 * MS), -EPIPE);
    st = ipc_proc_wait(&p, 5000 * MS);
    CHECK_EQ(st, 0);
    CHECK_OK(ipc_proc_close(&p));
}
