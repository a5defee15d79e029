#include "harness.h"

/* tests/test_fdio.c - section 3: fd I/O with deadlines, EINTR, partial transfers, SIGPIPE. */

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <termios.h>
#include <unistd.h>

#ifndef F_GETPIPE_SZ
#define F_GETPIPE_SZ 1032 /* Linux: F_LINUX_SPECIFIC_BASE + 8 */
#endif

/* The XSI pty calls. harness.h includes system headers first, so this file cannot ask for
   _XOPEN_SOURCE; glibc under -std=gnu11 then leaves these undeclared. */
int posix_openpt(int flags);
int grantpt(int fd);
int unlockpt(int fd);
char *ptsname(int fd);

#define MS  ((int64_t)1000000)
#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/* ---- helpers ---- */

static unsigned char *pat_buf(size_t len, unsigned seed) {
    unsigned char *b = (unsigned char *)malloc(len);
    size_t i;
    CHECK(b != NULL);
    for (i = 0; i < len; i++)
        b[i] = th_pat(i, seed);
    return b;
}

static void mk_pipe(int p[2]) {
    CHECK_EQ(pipe(p), 0);
}

static void mk_socketpair(int p[2]) {
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
}

static void close_fd(int fd) {
    CHECK_EQ(close(fd), 0);
}

static int fl_get(int fd) {
    int fl = fcntl(fd, F_GETFL);
    CHECK(fl >= 0);
    return fl;
}

/* A pty in raw mode (no echo, no line discipline, no flow control). */
static void mk_pty(int *master, int *slave) {
    struct termios t;
    char *name;
    *master = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK(*master >= 0);
    CHECK_EQ(grantpt(*master), 0);
    CHECK_EQ(unlockpt(*master), 0);
    name = ptsname(*master);
    CHECK(name != NULL);
    *slave = open(name, O_RDWR | O_NOCTTY);
    CHECK(*slave >= 0);
    CHECK_EQ(tcgetattr(*slave, &t), 0);
    cfmakeraw(&t);
    CHECK_EQ(tcsetattr(*slave, TCSANOW, &t), 0);
}

/* ---- readers and writers that run in a child process ---- */

typedef struct peer {
    int fd;          /* the child's end */
    int other;       /* the parent's end: the child closes it */
    size_t len;      /* bytes of the stream */
    unsigned seed;   /* which stream */
    int64_t timeout; /* timeout of each call in the child */
    size_t chunk;    /* 0: random sizes 1..4096; else fixed chunks */
    int pause_ms;    /* sleep pause_ms ... */
    int every;       /* ... after every `every` chunks */
    int eof;         /* reader: expect end of stream after len bytes */
} peer;

/* Child: read the stream with ipc_fd_read_exact in chunks, verify every byte. */
static void reader_child(void *arg) {
    peer *x = (peer *)arg;
    static unsigned char buf[64 * 1024];
    uint32_t rs = x->seed * 7919u + 1;
    size_t got = 0;
    unsigned n = 0;
    if (x->other >= 0) close_fd(x->other);
    while (got < x->len) {
        size_t want = x->chunk ? x->chunk : 1 + th_rnd32(&rs) % 4096, done = 0;
        ssize_t r;
        if (want > sizeof buf) want = sizeof buf;
        if (want > x->len - got) want = x->len - got;
        r = ipc_fd_read_exact(x->fd, buf, want, x->timeout, &done);
        if (r != (ssize_t)want)
            th_fail(__FILE__, __LINE__, "reader at %zu: read_exact(%zu) = %zd (%s), done %zu", got,
                    want, r, ipc_strerror((int)r), done);
        CHECK_EQ(done, want);
        th_pat_check(__FILE__, __LINE__, buf, got, want, x->seed);
        got += want;
        if (x->pause_ms && ++n % (unsigned)x->every == 0) th_sleep_ms(x->pause_ms);
    }
    if (x->eof) CHECK_ERR(ipc_fd_read_some(x->fd, buf, sizeof buf, x->timeout), -EPIPE);
    close_fd(x->fd);
}

/* Child: write the stream with ipc_fd_write_all in chunks, pausing between them. */
static void writer_child(void *arg) {
    peer *x = (peer *)arg;
    unsigned char *all = pat_buf(x->len, x->seed);
    size_t off = 0;
    unsigned n = 0;
    if (x->other >= 0) close_fd(x->other);
    while (off < x->len) {
        size_t want = x->chunk ? x->chunk : 4096, done = 0;
        ssize_t r;
        if (want > x->len - off) want = x->len - off;
        r = ipc_fd_write_all(x->fd, all + off, want, x->timeout, &done);
        if (r != (ssize_t)want)
            th_fail(__FILE__, __LINE__, "writer at %zu: write_all(%zu) = %zd (%s)", off, want, r,
                    ipc_strerror((int)r));
        off += want;
        if (x->pause_ms && ++n % (unsigned)x->every == 0) th_sleep_ms(x->pause_ms);
    }
    free(all);
    close_fd(x->fd);
}

/* Parent writes `len` patterned bytes into wfd with one ipc_fd_write_all while a child
   reads rfd slowly in small random chunks, so the writer sees many partial writes. */
static void big_transfer(int wfd, int rfd, int64_t wtimeout, int64_t rtimeout, unsigned seed) {
    size_t len = 8 * MiB, done = 12345;
    unsigned char *buf = pat_buf(len, seed);
    int wfl = fl_get(wfd);
    peer x;
    pid_t pid;
    ssize_t r;
    memset(&x, 0, sizeof x);
    x.fd = rfd;
    x.other = wfd;
    x.len = len;
    x.seed = seed;
    x.timeout = rtimeout;
    x.pause_ms = 1;
    x.every = 128;
    x.eof = 1;
    pid = th_spawn(reader_child, &x);
    CHECK(pid > 0);
    close_fd(rfd);
    r = ipc_fd_write_all(wfd, buf, len, wtimeout, &done);
    if (r != (ssize_t)len)
        th_fail(__FILE__, __LINE__, "write_all(8 MiB) = %zd (%s), done %zu", r,
                ipc_strerror((int)r), done);
    CHECK_EQ(done, len);
    CHECK_EQ(fl_get(wfd), wfl); /* the fd's flags are left as they were */
    close_fd(wfd);
    CHECK_EQ(th_join(pid, 8000), 0);
    free(buf);
}

/* ---- large transfers ---- */

TEST(fdio_big_transfer_pipe) {
    int fds = th_fd_count(), p[2];
    mk_pipe(p);
    big_transfer(p[1], p[0], IPC_FOREVER, IPC_FOREVER, 1);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(fdio_big_transfer_socketpair) {
    int fds = th_fd_count(), p[2];
    mk_socketpair(p);
    big_transfer(p[0], p[1], IPC_FOREVER, IPC_FOREVER, 2);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(fdio_big_transfer_socketpair_finite) {
    int fds = th_fd_count(), p[2];
    mk_socketpair(p);
    big_transfer(p[0], p[1], 6000 * MS, 6000 * MS, 3);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(fdio_big_transfer_pipe_nonblocking) {
    int fds = th_fd_count(), p[2];
    mk_pipe(p);
    CHECK_OK(ipc_fd_set_nonblock(p[0], 1));
    CHECK_OK(ipc_fd_set_nonblock(p[1], 1));
    big_transfer(p[1], p[0], IPC_FOREVER, IPC_FOREVER, 4);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(fdio_big_transfer_pipe_nonblocking_finite) {
    int fds = th_fd_count(), p[2];
    mk_pipe(p);
    CHECK_OK(ipc_fd_set_nonblock(p[0], 1));
    CHECK_OK(ipc_fd_set_nonblock(p[1], 1));
    big_transfer(p[1], p[0], 6000 * MS, 6000 * MS, 5);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(fdio_big_transfer_pipe_blocking_finite) {
    int fds = th_fd_count(), p[2];
    mk_pipe(p);
    CHECK_EQ(fl_get(p[1]) & O_NONBLOCK, 0);
    big_transfer(p[1], p[0], 6000 * MS, 6000 * MS, 6);
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- EINTR ---- */

/* One 1 MiB transfer under a signal storm (SIGALRM every 100 us). Reading: a child feeds
   64 KiB pieces with pauses and the parent's one read_exact blocks between them. Writing:
   the parent's one write_all (16 pipe capacities) waits for room again and again while a
   child drains 64 KiB at a time with pauses. */
static void storm_round(int write, int pipe_or_sock, int64_t timeout, unsigned seed) {
    size_t len = 1 * MiB, done = 0;
    unsigned char *buf = write ? pat_buf(len, seed) : (unsigned char *)malloc(len);
    int p[2], n, mine;
    peer x;
    pid_t pid;
    ssize_t r;
    CHECK(buf != NULL);
    if (pipe_or_sock)
        mk_socketpair(p);
    else
        mk_pipe(p);
    mine = write ? p[1] : p[0];
    memset(&x, 0, sizeof x);
    x.fd = write ? p[0] : p[1];
    x.other = mine;
    x.len = len;
    x.seed = seed;
    x.timeout = IPC_FOREVER;
    x.chunk = 64 * KiB;
    x.pause_ms = 3;
    x.every = 1;
    x.eof = write;
    pid = th_spawn(write ? reader_child : writer_child, &x);
    close_fd(x.fd);
    th_storm_start();
    r = write ? ipc_fd_write_all(mine, buf, len, timeout, &done)
              : ipc_fd_read_exact(mine, buf, len, timeout, &done);
    n = th_storm_stop();
    if (r != (ssize_t)len)
        th_fail(__FILE__, __LINE__, "%s under signals = %zd (%s), done %zu",
                write ? "write_all" : "read_exact", r, ipc_strerror((int)r), done);
    CHECK_EQ(done, len);
    if (!write) th_pat_check(__FILE__, __LINE__, buf, 0, len, seed);
    if (n < 20) th_fail(__FILE__, __LINE__, "only %d signals during the transfer", n);
    close_fd(mine); /* a writer's reader sees EOF and exits */
    CHECK_EQ(th_join(pid, 3000), 0);
    free(buf);
}

TEST(fdio_eintr_storm_read_exact) {
    int fds = th_fd_count();
    storm_round(0, 0, IPC_FOREVER, 11);
    storm_round(0, 0, 5000 * MS, 12);
    storm_round(0, 1, IPC_FOREVER, 13);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(fdio_eintr_storm_write_all) {
    int fds = th_fd_count();
    storm_round(1, 0, IPC_FOREVER, 21);
    storm_round(1, 0, 5000 * MS, 22);
    storm_round(1, 1, IPC_FOREVER, 23);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(fdio_eintr_storm_timeouts_not_extended) {
    int fds = th_fd_count(), p[2], n;
    unsigned char buf[64];
    size_t done = 1;
    int64_t t0;
    ssize_t r;
    mk_pipe(p);
    th_storm_start();
    t0 = ipc_time_now();
    r = ipc_fd_read_exact(p[0], buf, sizeof buf, 50 * MS, &done);
    CHECK_WITHIN(t0, 50, 500);
    CHECK_ERR(r, -ETIMEDOUT);
    CHECK_EQ(done, 0);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_fd_read_some(p[0], buf, sizeof buf, 50 * MS), -ETIMEDOUT);
    CHECK_WITHIN(t0, 50, 500);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_fd_wait(p[0], POLLIN, 50 * MS), -ETIMEDOUT);
    CHECK_WITHIN(t0, 50, 500);
    n = th_storm_stop();
    CHECK(n >= 20);
    close_fd(p[0]);
    close_fd(p[1]);
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- closed reader: -EPIPE, never SIGPIPE ---- */

static int epipe_kind; /* 0 pipe, 1 socketpair */

static void epipe_child(void *arg) {
    static unsigned char big[1 * 1024 * 1024];
    struct sigaction sa;
    int p[2];
    size_t done = 77;
    (void)arg;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGPIPE, &sa, NULL), 0); /* the default action kills */
    if (epipe_kind)
        mk_socketpair(p);
    else
        mk_pipe(p);
    close_fd(p[0]);
    CHECK_ERR(ipc_fd_write_all(p[1], "hello", 5, IPC_FOREVER, &done), -EPIPE);
    CHECK_EQ(done, 0);
    done = 77;
    CHECK_ERR(ipc_fd_write_all(p[1], big, sizeof big, 50 * MS, &done), -EPIPE);
    CHECK_EQ(done, 0);
    CHECK_ERR(ipc_fd_write_all(p[1], "x", 1, 0, NULL), -EPIPE);
    CHECK(!th_sig_pending(SIGPIPE));
    close_fd(p[1]);
}

TEST(fdio_epipe_pipe_not_killed) {
    pid_t pid;
    int code;
    epipe_kind = 0;
    pid = th_spawn(epipe_child, NULL);
    code = th_join(pid, 3000);
    if (code == 128 + SIGPIPE) th_fail(__FILE__, __LINE__, "the writer was killed by SIGPIPE");
    CHECK_EQ(code, 0);
}

TEST(fdio_epipe_socketpair_not_killed) {
    pid_t pid;
    int code;
    epipe_kind = 1;
    pid = th_spawn(epipe_child, NULL);
    code = th_join(pid, 3000);
    if (code == 128 + SIGPIPE) th_fail(__FILE__, __LINE__, "the writer was killed by SIGPIPE");
    CHECK_EQ(code, 0);
}

/* The reader takes 100 KiB then closes: the writer gets -EPIPE after delivering at least
   that much, and *done says how much went into the pipe. */
TEST(fdio_epipe_after_partial_read) {
    int fds = th_fd_count(), p[2];
    size_t len = 2 * MiB, done = 0;
    unsigned char *buf = pat_buf(len, 31);
    peer x;
    pid_t pid;
    mk_pipe(p);
    memset(&x, 0, sizeof x);
    x.fd = p[0];
    x.other = p[1];
    x.len = 100 * KiB;
    x.seed = 31;
    x.timeout = 2000 * MS;
    x.chunk = 10 * KiB;
    pid = th_spawn(reader_child, &x);
    close_fd(p[0]);
    CHECK_ERR(ipc_fd_write_all(p[1], buf, len, 3000 * MS, &done), -EPIPE);
    CHECK(done >= 100 * KiB);
    CHECK(done < len);
    CHECK(!th_sig_pending(SIGPIPE));
    CHECK_EQ(th_join(pid, 3000), 0);
    close_fd(p[1]);
    free(buf);
    CHECK_EQ(th_fd_count(), fds);
}

static void mask_now(sigset_t *m) {
    sigemptyset(m);
    CHECK_EQ(sigprocmask(SIG_BLOCK, NULL, m), 0);
}

static void mask_same(const sigset_t *a, const sigset_t *b, int line) {
    int s;
    for (s = 1; s <= 64; s++)
        if (sigismember(a, s) != sigismember(b, s))
            th_fail(__FILE__, line, "signal %d: blocked %d before, %d after", s, sigismember(a, s),
                    sigismember(b, s));
}

TEST(fdio_epipe_sigpipe_blocked_mask_restored) {
    int fds = th_fd_count(), p[2], kind;
    sigset_t block, before, after;
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    sigaddset(&block, SIGUSR1);
    CHECK_EQ(sigprocmask(SIG_BLOCK, &block, NULL), 0);
    mask_now(&before);
    CHECK_EQ(sigismember(&before, SIGPIPE), 1);
    for (kind = 0; kind < 2; kind++) {
        if (kind)
            mk_socketpair(p);
        else
            mk_pipe(p);
        close_fd(p[0]);
        CHECK_ERR(ipc_fd_write_all(p[1], "abc", 3, IPC_FOREVER, NULL), -EPIPE);
        CHECK_ERR(ipc_fd_write_all(p[1], "abc", 3, 20 * MS, NULL), -EPIPE);
        mask_now(&after);
        mask_same(&before, &after, __LINE__);
        CHECK(!th_sig_pending(SIGPIPE)); /* the write's own SIGPIPE was not left behind */
        close_fd(p[1]);
    }
    /* and the mask without SIGPIPE blocked is restored just as exactly */
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    CHECK_EQ(sigprocmask(SIG_UNBLOCK, &block, NULL), 0); /* dies here if one was pending */
    mask_now(&before);
    mk_pipe(p);
    close_fd(p[0]);
    CHECK_ERR(ipc_fd_write_all(p[1], "abc", 3, IPC_FOREVER, NULL), -EPIPE);
    mask_now(&after);
    mask_same(&before, &after, __LINE__);
    CHECK_EQ(sigismember(&after, SIGPIPE), 0);
    close_fd(p[1]);
    CHECK_EQ(th_fd_count(), fds);
}

/* A SIGPIPE the caller already had pending (blocked) is the caller's: kept. */
TEST(fdio_epipe_callers_pending_sigpipe_kept) {
    int p[2];
    sigset_t block;
    struct timespec zero = {0, 0};
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    CHECK_EQ(sigprocmask(SIG_BLOCK, &block, NULL), 0);
    CHECK_EQ(raise(SIGPIPE), 0);
    CHECK(th_sig_pending(SIGPIPE));
    mk_pipe(p);
    close_fd(p[0]);
    CHECK_ERR(ipc_fd_write_all(p[1], "abc", 3, IPC_FOREVER, NULL), -EPIPE);
    CHECK(th_sig_pending(SIGPIPE));
    CHECK_EQ(sigtimedwait(&block, NULL, &zero), SIGPIPE);
    CHECK(!th_sig_pending(SIGPIPE));
    close_fd(p[1]);
}

/* ---- partial progress and deadlines ---- */

TEST(fdio_done_reports_partial_write) {
    int fds = th_fd_count(), p[2], cap;
    size_t len = 1 * MiB, done = 0;
    unsigned char *buf = pat_buf(len, 41), *back = (unsigned char *)malloc(len);
    int64_t t0;
    CHECK(back != NULL);
    mk_pipe(p);
    cap = fcntl(p[1], F_GETPIPE_SZ);
    CHECK(cap > 0 && (size_t)cap < len);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_fd_write_all(p[1], buf, len, 50 * MS, &done), -ETIMEDOUT);
    CHECK_WITHIN(t0, 50, 1000);
    CHECK_EQ(done, cap);
    /* nothing lost: the pipe holds exactly the first `done` bytes */
    CHECK_ERR(ipc_fd_read_exact(p[0], back, done, 1000 * MS, NULL), (ssize_t)done);
    th_pat_check(__FILE__, __LINE__, back, 0, done, 41);
    CHECK_ERR(ipc_fd_wait(p[0], POLLIN, 0), -EAGAIN);
    /* "try once" moves what fits, then -EAGAIN */
    done = 0;
    t0 = ipc_time_now();
    CHECK_ERR(ipc_fd_write_all(p[1], buf, len, 0, &done), -EAGAIN);
    CHECK_WITHIN(t0, 0, 50);
    CHECK_EQ(done, cap);
    close_fd(p[0]);
    close_fd(p[1]);

    /* a socket's capacity is less regular: some, not all, and exactly what arrives */
    mk_socketpair(p);
    done = 0;
    t0 = ipc_time_now();
    CHECK_ERR(ipc_fd_write_all(p[0], buf, len, 50 * MS, &done), -ETIMEDOUT);
    CHECK_WITHIN(t0, 50, 1000);
    CHECK(done > 0 && done < len);
    CHECK_ERR(ipc_fd_read_exact(p[1], back, done, 1000 * MS, NULL), (ssize_t)done);
    th_pat_check(__FILE__, __LINE__, back, 0, done, 41);
    CHECK_ERR(ipc_fd_read_some(p[1], back, len, 0), -EAGAIN);
    close_fd(p[0]);
    close_fd(p[1]);
    free(buf);
    free(back);
    CHECK_EQ(th_fd_count(), fds);
}

static void read_deadlines_on(int rfd, int wfd) {
    unsigned char buf[100];
    size_t done = 99;
    int64_t t0;
    t0 = ipc_time_now();
    CHECK_ERR(ipc_fd_read_exact(rfd, buf, 10, 50 * MS, &done), -ETIMEDOUT);
    CHECK_WITHIN(t0, 50, 1000);
    CHECK_EQ(done, 0);
    done = 99;
    t0 = ipc_time_now();
    CHECK_ERR(ipc_fd_read_exact(rfd, buf, 10, 0, &done), -EAGAIN);
    CHECK_WITHIN(t0, 0, 50);
    CHECK_EQ(done, 0);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_fd_read_some(rfd, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
    CHECK_WITHIN(t0, 50, 1000);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_fd_read_some(rfd, buf, sizeof buf, 0), -EAGAIN);
    CHECK_WITHIN(t0, 0, 50);
    /* part of the data, then the deadline: *done has the part, the buffer holds it */
    CHECK_EQ(write(wfd, "abc", 3), 3);
    memset(buf, 0, sizeof buf);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_fd_read_exact(rfd, buf, 10, 50 * MS, &done), -ETIMEDOUT);
    CHECK_WITHIN(t0, 50, 1000);
    CHECK_EQ(done, 3);
    CHECK(memcmp(buf, "abc", 3) == 0);
    CHECK_EQ(write(wfd, "def", 3), 3);
    CHECK_ERR(ipc_fd_read_exact(rfd, buf, 10, 0, &done), -EAGAIN);
    CHECK_EQ(done, 3);
    CHECK(memcmp(buf, "def", 3) == 0);
}

TEST(fdio_read_deadlines_pipe) {
    int fds = th_fd_count(), p[2];
    mk_pipe(p);
    read_deadlines_on(p[0], p[1]);
    close_fd(p[0]);
    close_fd(p[1]);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(fdio_read_deadlines_socketpair) {
    int fds = th_fd_count(), p[2];
    mk_socketpair(p);
    read_deadlines_on(p[0], p[1]);
    close_fd(p[0]);
    close_fd(p[1]);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(fdio_read_deadlines_pipe_nonblocking) {
    int fds = th_fd_count(), p[2];
    mk_pipe(p);
    CHECK_OK(ipc_fd_set_nonblock(p[0], 1));
    read_deadlines_on(p[0], p[1]);
    CHECK(fl_get(p[0]) & O_NONBLOCK);
    close_fd(p[0]);
    close_fd(p[1]);
    CHECK_EQ(th_fd_count(), fds);
}

static void eof_after_partial_on(int rfd, int wfd) {
    unsigned char buf[100];
    size_t done = 0;
    CHECK_EQ(write(wfd, "0123456789", 10), 10);
    close_fd(wfd);
    memset(buf, 0, sizeof buf);
    CHECK_ERR(ipc_fd_read_exact(rfd, buf, sizeof buf, IPC_FOREVER, &done), -EPIPE);
    CHECK_EQ(done, 10);
    CHECK(memcmp(buf, "0123456789", 10) == 0);
    done = 99;
    CHECK_ERR(ipc_fd_read_exact(rfd, buf, sizeof buf, IPC_FOREVER, &done), -EPIPE);
    CHECK_EQ(done, 0);
    CHECK_ERR(ipc_fd_read_exact(rfd, buf, sizeof buf, 50 * MS, &done), -EPIPE);
    CHECK_ERR(ipc_fd_read_exact(rfd, buf, sizeof buf, 0, &done), -EPIPE);
    CHECK_ERR(ipc_fd_read_some(rfd, buf, sizeof buf, IPC_FOREVER), -EPIPE);
    CHECK_ERR(ipc_fd_read_some(rfd, buf, sizeof buf, 0), -EPIPE);
    close_fd(rfd);
}

TEST(fdio_read_exact_eof_after_partial) {
    int fds = th_fd_count(), p[2];
    mk_pipe(p);
    eof_after_partial_on(p[0], p[1]);
    mk_socketpair(p);
    eof_after_partial_on(p[0], p[1]);
    CHECK_EQ(th_fd_count(), fds);
}

/* The end of stream comes later, from another process that dies. */
static void write_then_exit(void *arg) {
    int fd = *(int *)arg;
    th_sleep_ms(20);
    CHECK_EQ(write(fd, "0123456", 7), 7);
    th_sleep_ms(20);
}

TEST(fdio_read_exact_eof_when_writer_exits) {
    int fds = th_fd_count(), p[2];
    unsigned char buf[100];
    size_t done = 0;
    pid_t pid;
    mk_pipe(p);
    pid = th_spawn(write_then_exit, &p[1]);
    close_fd(p[1]);
    CHECK_ERR(ipc_fd_read_exact(p[0], buf, sizeof buf, 3000 * MS, &done), -EPIPE);
    CHECK_EQ(done, 7);
    CHECK(memcmp(buf, "0123456", 7) == 0);
    CHECK_EQ(th_join(pid, 3000), 0);
    close_fd(p[0]);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(fdio_read_some) {
    int fds = th_fd_count(), p[2];
    unsigned char buf[100], src[100];
    pid_t pid;
    int64_t t0;
    size_t i;
    for (i = 0; i < sizeof src; i++)
        src[i] = th_pat(i, 51);
    mk_pipe(p);
    CHECK_EQ(write(p[1], src, 10), 10);
    CHECK_ERR(ipc_fd_read_some(p[0], buf, sizeof buf, IPC_FOREVER), 10);
    CHECK(memcmp(buf, src, 10) == 0);
    CHECK_EQ(write(p[1], src, 100), 100);
    CHECK_ERR(ipc_fd_read_some(p[0], buf, 30, 0), 30);
    CHECK(memcmp(buf, src, 30) == 0);
    CHECK_ERR(ipc_fd_read_some(p[0], buf, sizeof buf, 50 * MS), 70);
    CHECK(memcmp(buf, src + 30, 70) == 0);
    CHECK_ERR(ipc_fd_read_some(p[0], buf, sizeof buf, 0), -EAGAIN);
    /* waits for the first byte, then returns what is there */
    pid = th_spawn(write_then_exit, &p[1]);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_fd_read_some(p[0], buf, sizeof buf, 3000 * MS), 7);
    CHECK_WITHIN(t0, 10, 2000);
    CHECK(memcmp(buf, "0123456", 7) == 0);
    CHECK_EQ(th_join(pid, 3000), 0);
    close_fd(p[1]);
    CHECK_ERR(ipc_fd_read_some(p[0], buf, sizeof buf, IPC_FOREVER), -EPIPE);
    CHECK_ERR(ipc_fd_read_some(p[0], buf, sizeof buf, 50 * MS), -EPIPE);
    close_fd(p[0]);

    mk_socketpair(p);
    CHECK_EQ(write(p[1], src, 10), 10);
    CHECK_ERR(ipc_fd_read_some(p[0], buf, sizeof buf, 50 * MS), 10);
    CHECK(memcmp(buf, src, 10) == 0);
    close_fd(p[1]);
    CHECK_ERR(ipc_fd_read_some(p[0], buf, sizeof buf, 50 * MS), -EPIPE);
    close_fd(p[0]);
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- ipc_fd_wait ---- */

TEST(fdio_wait) {
    int fds = th_fd_count(), p[2], r, nfd;
    int64_t t0;
    pid_t pid;
    char c;
    mk_pipe(p);
    CHECK_ERR(ipc_fd_wait(p[0], POLLIN, 0), -EAGAIN);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_fd_wait(p[0], POLLIN, 50 * MS), -ETIMEDOUT);
    CHECK_WITHIN(t0, 50, 1000);
    r = ipc_fd_wait(p[1], POLLOUT, 0);
    CHECK(r > 0 && (r & POLLOUT));
    CHECK_EQ(write(p[1], "x", 1), 1);
    r = ipc_fd_wait(p[0], POLLIN, 0);
    CHECK(r > 0 && (r & POLLIN));
    r = ipc_fd_wait(p[0], POLLIN, IPC_FOREVER);
    CHECK(r > 0 && (r & POLLIN));
    r = ipc_fd_wait(p[0], POLLIN, 50 * MS);
    CHECK(r > 0 && (r & POLLIN));
    CHECK_EQ(read(p[0], &c, 1), 1);
    /* wakes when another process writes */
    pid = th_spawn(write_then_exit, &p[1]);
    t0 = ipc_time_now();
    r = ipc_fd_wait(p[0], POLLIN, 3000 * MS);
    CHECK(r > 0 && (r & POLLIN));
    CHECK_WITHIN(t0, 10, 2000);
    CHECK_EQ(th_join(pid, 3000), 0);
    /* the writer gone: POLLHUP, even if only POLLIN was asked for */
    close_fd(p[1]);
    r = ipc_fd_wait(p[0], POLLIN, 0);
    CHECK(r > 0 && (r & POLLHUP));
    close_fd(p[0]);
    /* a closed fd number */
    nfd = p[0];
    CHECK(fcntl(nfd, F_GETFD) < 0 && errno == EBADF);
    CHECK_ERR(ipc_fd_wait(nfd, POLLIN, 0), -EBADF);
    CHECK_ERR(ipc_fd_wait(nfd, POLLIN, 50 * MS), -EBADF);
    CHECK_ERR(ipc_fd_wait(nfd, POLLIN, IPC_FOREVER), -EBADF);
    CHECK_ERR(ipc_fd_wait(-1, POLLIN, 0), -EBADF);
    CHECK_ERR(ipc_fd_wait(-1, POLLIN, IPC_FOREVER), -EBADF);
    CHECK_EQ(th_fd_count(), fds);
}

/* The wrong end of a pipe is -EBADF at once, on every path (qemu-user lacks
   pwritev2 and takes the fallback, which must not poll for a readiness that never comes). */
TEST(fdio_wrong_pipe_end_ebadf) {
    int fds = th_fd_count(), p[2], i;
    char c = 'x';
    size_t done = 7;
    CHECK(pipe(p) == 0);
    for (i = 0; i < 2; i++) { /* blocking, then non-blocking ends */
        int64_t t0 = ipc_time_now();
        CHECK_ERR(ipc_fd_write_all(p[0], &c, 1, 500 * MS, &done), -EBADF);
        CHECK_EQ(done, 0);
        CHECK_ERR(ipc_fd_read_exact(p[1], &c, 1, 500 * MS, NULL), -EBADF);
        CHECK_ERR(ipc_fd_read_some(p[1], &c, 1, IPC_FOREVER), -EBADF);
        CHECK(ipc_time_now() - t0 < 400 * MS);
        CHECK_OK(ipc_fd_set_nonblock(p[0], 1));
        CHECK_OK(ipc_fd_set_nonblock(p[1], 1));
    }
    close_fd(p[0]);
    close_fd(p[1]);
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- flags ---- */

TEST(fdio_set_nonblock_cloexec) {
    int fds = th_fd_count(), p[2], fd, nfd;
    mk_pipe(p);
    CHECK_EQ(fl_get(p[0]) & O_NONBLOCK, 0);
    CHECK_ERR(ipc_fd_set_nonblock(p[0], 1), 0);
    CHECK(fl_get(p[0]) & O_NONBLOCK);
    CHECK_EQ(fl_get(p[1]) & O_NONBLOCK, 0); /* only that fd */
    CHECK_ERR(ipc_fd_set_nonblock(p[0], 1), 0);
    CHECK(fl_get(p[0]) & O_NONBLOCK);
    CHECK_ERR(ipc_fd_set_nonblock(p[0], 0), 0);
    CHECK_EQ(fl_get(p[0]) & O_NONBLOCK, 0);
    CHECK_ERR(ipc_fd_set_nonblock(p[0], 0), 0);
    CHECK_EQ(fl_get(p[0]) & O_NONBLOCK, 0);
    CHECK_ERR(ipc_fd_set_nonblock(p[0], 42), 0); /* any non-zero is on */
    CHECK(fl_get(p[0]) & O_NONBLOCK);

    CHECK_EQ(fcntl(p[1], F_GETFD) & FD_CLOEXEC, 0);
    CHECK_ERR(ipc_fd_set_cloexec(p[1], 1), 0);
    CHECK(fcntl(p[1], F_GETFD) & FD_CLOEXEC);
    CHECK_EQ(fcntl(p[0], F_GETFD) & FD_CLOEXEC, 0);
    CHECK_ERR(ipc_fd_set_cloexec(p[1], 0), 0);
    CHECK_EQ(fcntl(p[1], F_GETFD) & FD_CLOEXEC, 0);
    CHECK_ERR(ipc_fd_set_cloexec(p[1], 7), 0);
    CHECK(fcntl(p[1], F_GETFD) & FD_CLOEXEC);
    close_fd(p[0]);
    close_fd(p[1]);

    /* other status flags survive */
    fd = open("/dev/null", O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK_ERR(ipc_fd_set_nonblock(fd, 1), 0);
    CHECK(fl_get(fd) & O_APPEND);
    CHECK(fl_get(fd) & O_NONBLOCK);
    CHECK_ERR(ipc_fd_set_nonblock(fd, 0), 0);
    CHECK(fl_get(fd) & O_APPEND);
    CHECK_EQ(fl_get(fd) & O_ACCMODE, O_WRONLY);
    nfd = fd;
    close_fd(fd);

    CHECK_ERR(ipc_fd_set_nonblock(-1, 1), -EBADF);
    CHECK_ERR(ipc_fd_set_nonblock(-1, 0), -EBADF);
    CHECK_ERR(ipc_fd_set_cloexec(-1, 1), -EBADF);
    CHECK_ERR(ipc_fd_set_cloexec(-1, 0), -EBADF);
    CHECK_ERR(ipc_fd_set_nonblock(nfd, 1), -EBADF);
    CHECK_ERR(ipc_fd_set_cloexec(nfd, 1), -EBADF);
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- pty: no RWF_NOWAIT, a blocking fd: the poll-then-transfer fallback ---- */

TEST(fdio_pty_read_exact_timeout) {
    int fds = th_fd_count(), m, s;
    unsigned char buf[64 * 1024];
    size_t done = 99;
    int64_t t0;
    peer x;
    pid_t pid;
    mk_pty(&m, &s);
    CHECK_EQ(fl_get(s) & O_NONBLOCK, 0);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_fd_read_exact(s, buf, 16, 50 * MS, &done), -ETIMEDOUT);
    CHECK_WITHIN(t0, 50, 1000);
    CHECK_EQ(done, 0);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_fd_read_exact(s, buf, 16, 0, &done), -EAGAIN);
    CHECK_WITHIN(t0, 0, 50);
    CHECK_ERR(ipc_fd_read_some(s, buf, 16, 0), -EAGAIN);

    CHECK_EQ(write(m, "0123456789", 10), 10);
    CHECK_ERR(ipc_fd_read_exact(s, buf, 10, 1000 * MS, &done), 10);
    CHECK_EQ(done, 10);
    CHECK(memcmp(buf, "0123456789", 10) == 0);

    /* part, then the deadline */
    CHECK_EQ(write(m, "abcd", 4), 4);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_fd_read_exact(s, buf, 10, 50 * MS, &done), -ETIMEDOUT);
    CHECK_WITHIN(t0, 50, 1000);
    CHECK_EQ(done, 4);
    CHECK(memcmp(buf, "abcd", 4) == 0);

    /* 64 KiB from another process in pieces, read with one finite read_exact */
    memset(&x, 0, sizeof x);
    x.fd = m;
    x.other = s;
    x.len = sizeof buf;
    x.seed = 61;
    x.timeout = IPC_FOREVER;
    x.chunk = 1000;
    x.pause_ms = 1;
    x.every = 8;
    pid = th_spawn(writer_child, &x);
    CHECK_ERR(ipc_fd_read_exact(s, buf, sizeof buf, 5000 * MS, &done), (ssize_t)sizeof buf);
    th_pat_check(__FILE__, __LINE__, buf, 0, sizeof buf, 61);
    CHECK_EQ(th_join(pid, 3000), 0);
    CHECK_EQ(fl_get(s) & O_NONBLOCK, 0);
    close_fd(s);
    close_fd(m);
    CHECK_EQ(th_fd_count(), fds);
}

/* "0 tries once": data already there must be read, whatever the fd type. */
TEST(fdio_pty_try_once_with_data) {
    int fds = th_fd_count(), m, s, r;
    unsigned char buf[16];
    size_t done = 99;
    mk_pty(&m, &s);
    CHECK_EQ(write(m, "0123456789", 10), 10);
    r = ipc_fd_wait(s, POLLIN, 1000 * MS);
    CHECK(r > 0 && (r & POLLIN));
    CHECK_ERR(ipc_fd_read_exact(s, buf, 4, 0, &done), 4);
    CHECK_EQ(done, 4);
    CHECK(memcmp(buf, "0123", 4) == 0);
    CHECK_ERR(ipc_fd_read_some(s, buf, sizeof buf, 0), 6);
    CHECK(memcmp(buf, "456789", 6) == 0);
    CHECK_ERR(ipc_fd_write_all(s, "xy", 2, 0, &done), 2);
    close_fd(s);
    close_fd(m);
    CHECK_EQ(th_fd_count(), fds);
}

static void pty_write_round(int wfd, int rfd, unsigned seed) {
    size_t len = 256 * KiB, done = 0;
    unsigned char *buf = pat_buf(len, seed);
    peer x;
    pid_t pid;
    memset(&x, 0, sizeof x);
    x.fd = rfd;
    x.other = wfd;
    x.len = len;
    x.seed = seed;
    x.timeout = 5000 * MS;
    x.pause_ms = 1;
    x.every = 16;
    pid = th_spawn(reader_child, &x);
    CHECK_ERR(ipc_fd_write_all(wfd, buf, len, 5000 * MS, &done), (ssize_t)len);
    CHECK_EQ(done, len);
    CHECK_EQ(th_join(pid, 5000), 0);
    free(buf);
}

TEST(fdio_pty_write_all_timeout) {
    int fds = th_fd_count(), m, s;
    mk_pty(&m, &s);
    pty_write_round(m, s, 71); /* master -> slave */
    pty_write_round(s, m, 72); /* slave -> master */
    close_fd(s);
    close_fd(m);
    CHECK_EQ(th_fd_count(), fds);
}

/* Nobody reads: a finite write_all on a blocking pty must end near its deadline with
   -ETIMEDOUT, never block in write() past it. Runs in a child so a hang is reported. */
static int pty_dir;

static void pty_write_no_reader(void *arg) {
    static unsigned char big[1024 * 1024];
    int m, s, wfd;
    size_t done = 0;
    int64_t t0;
    ssize_t r;
    (void)arg;
    mk_pty(&m, &s);
    wfd = pty_dir ? s : m;
    t0 = ipc_time_now();
    r = ipc_fd_write_all(wfd, big, sizeof big, 50 * MS, &done);
    CHECK_ERR(r, -ETIMEDOUT);
    CHECK_WITHIN(t0, 50, 1000);
    CHECK(done > 0 && done < sizeof big);
}

TEST(fdio_pty_write_deadline_no_reader) {
    /* Whether write() can block depends on how far the tty layer has pushed its buffer
       when poll() reports room: a race, so several fresh ptys, both directions. */
    int attempt, code;
    for (attempt = 0; attempt < 6; attempt++) {
        for (pty_dir = 0; pty_dir < 2; pty_dir++) {
            pid_t pid = th_spawn(pty_write_no_reader, NULL);
            code = th_join(pid, 1000);
            if (code == -1)
                th_fail(__FILE__, __LINE__,
                        "attempt %d: write_all(%s, 1 MiB, 50 ms) still blocked after 1 s "
                        "(deadline ignored)",
                        attempt, pty_dir ? "pty slave" : "pty master");
            CHECK_EQ(code, 0);
        }
    }
}

/* ---- regular files ---- */

static int tmp_file(const char *dir) {
    char path[128];
    int fd;
    snprintf(path, sizeof path, "%s/ipct-fdio-XXXXXX", dir);
    fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK_EQ(unlink(path), 0);
    return fd;
}

static void file_round(const char *dir) {
    size_t len = 1 * MiB, done = 0;
    unsigned char *buf = pat_buf(len, 81), *back = (unsigned char *)malloc(len);
    int fd = tmp_file(dir);
    CHECK(back != NULL);
    CHECK_ERR(ipc_fd_write_all(fd, buf, len, IPC_FOREVER, &done), (ssize_t)len);
    CHECK_EQ(done, len);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), (off_t)len); /* the file position moved */
    CHECK_ERR(ipc_fd_write_all(fd, buf, 100, 1000 * MS, &done), 100);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), (off_t)len + 100);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_ERR(ipc_fd_read_exact(fd, back, len, 1000 * MS, &done), (ssize_t)len);
    th_pat_check(__FILE__, __LINE__, back, 0, len, 81);
    CHECK_ERR(ipc_fd_read_exact(fd, back, 100, IPC_FOREVER, &done), 100);
    th_pat_check(__FILE__, __LINE__, back, 0, 100, 81);
    /* end of file is end of stream */
    CHECK_ERR(ipc_fd_read_exact(fd, back, 10, 1000 * MS, &done), -EPIPE);
    CHECK_EQ(done, 0);
    CHECK_ERR(ipc_fd_read_some(fd, back, 10, IPC_FOREVER), -EPIPE);
    close_fd(fd);
    free(buf);
    free(back);
}

TEST(fdio_regular_file) {
    int fds = th_fd_count();
    file_round("/tmp");
    file_round("/dev/shm");
    CHECK_EQ(th_fd_count(), fds);
}

/* A regular file never blocks, so "0 tries once" must move the data. */
static void file_try_once(const char *dir) {
    unsigned char buf[100];
    size_t done = 99;
    int fd = tmp_file(dir);
    ssize_t r;
    r = ipc_fd_write_all(fd, "0123456789", 10, 0, &done);
    if (r != 10)
        th_fail(__FILE__, __LINE__, "%s file: write_all(10 bytes, timeout 0) = %zd (%s), done %zu",
                dir, r, ipc_strerror((int)r), done);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    r = ipc_fd_read_exact(fd, buf, 10, 0, &done);
    if (r != 10)
        th_fail(__FILE__, __LINE__, "%s file: read_exact(10 bytes, timeout 0) = %zd (%s), done %zu",
                dir, r, ipc_strerror((int)r), done);
    CHECK(memcmp(buf, "0123456789", 10) == 0);
    CHECK_ERR(ipc_fd_read_exact(fd, buf, 10, 0, &done), -EPIPE);
    close_fd(fd);
}

TEST(fdio_regular_file_try_once) {
    int fds = th_fd_count();
    file_try_once("/tmp");
    file_try_once("/dev/shm");
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- bad arguments ---- */

TEST(fdio_bad_args) {
    int fds = th_fd_count(), p[2], closed;
    unsigned char buf[16] = {0};
    size_t done, huge = (size_t)SSIZE_MAX + 1;
    mk_pipe(p);
    CHECK_EQ(write(p[1], "0123456789", 10), 10); /* something a bad call must not consume */

#define CHECK_DONE0(call, err)                                                                     \
    do {                                                                                           \
        done = 12345;                                                                              \
        CHECK_ERR(call, err);                                                                      \
        CHECK_EQ(done, 0);                                                                         \
    } while (0)

    CHECK_DONE0(ipc_fd_write_all(p[1], NULL, 10, 0, &done), -EINVAL);
    CHECK_DONE0(ipc_fd_write_all(p[1], buf, 0, 0, &done), -EINVAL);
    CHECK_DONE0(ipc_fd_write_all(p[1], buf, huge, 0, &done), -EINVAL);
    CHECK_DONE0(ipc_fd_write_all(p[1], buf, SIZE_MAX, IPC_FOREVER, &done), -EINVAL);
    CHECK_DONE0(ipc_fd_write_all(-1, buf, 10, 0, &done), -EBADF);
    CHECK_DONE0(ipc_fd_write_all(-1, buf, 10, IPC_FOREVER, &done), -EBADF);
    CHECK_DONE0(ipc_fd_write_all(p[1], buf, 10, -5, &done), -EINVAL);
    CHECK_DONE0(ipc_fd_write_all(p[1], buf, 10, INT64_MIN, &done), -EINVAL);
    CHECK_ERR(ipc_fd_write_all(p[1], NULL, 10, 0, NULL), -EINVAL);

    CHECK_DONE0(ipc_fd_read_exact(p[0], NULL, 10, 0, &done), -EINVAL);
    CHECK_DONE0(ipc_fd_read_exact(p[0], buf, 0, 0, &done), -EINVAL);
    CHECK_DONE0(ipc_fd_read_exact(p[0], buf, huge, 0, &done), -EINVAL);
    CHECK_DONE0(ipc_fd_read_exact(p[0], buf, SIZE_MAX, IPC_FOREVER, &done), -EINVAL);
    CHECK_DONE0(ipc_fd_read_exact(-1, buf, 10, 0, &done), -EBADF);
    CHECK_DONE0(ipc_fd_read_exact(-1, buf, 10, IPC_FOREVER, &done), -EBADF);
    CHECK_DONE0(ipc_fd_read_exact(p[0], buf, 10, -5, &done), -EINVAL);
    CHECK_DONE0(ipc_fd_read_exact(p[0], buf, 10, INT64_MIN, &done), -EINVAL);
    CHECK_ERR(ipc_fd_read_exact(p[0], NULL, 10, 0, NULL), -EINVAL);

    CHECK_ERR(ipc_fd_read_some(p[0], NULL, 10, 0), -EINVAL);
    CHECK_ERR(ipc_fd_read_some(p[0], buf, 0, 0), -EINVAL);
    CHECK_ERR(ipc_fd_read_some(p[0], buf, huge, 0), -EINVAL);
    CHECK_ERR(ipc_fd_read_some(-1, buf, 10, 0), -EBADF);
    CHECK_ERR(ipc_fd_read_some(-1, buf, 10, IPC_FOREVER), -EBADF);
    CHECK_ERR(ipc_fd_read_some(p[0], buf, 10, -5), -EINVAL);

    CHECK_ERR(ipc_fd_wait(-1, POLLIN, 0), -EBADF);
    CHECK_ERR(ipc_fd_wait(-1, POLLIN, 50 * MS), -EBADF);
    CHECK_ERR(ipc_fd_wait(p[0], POLLIN, -5), -EINVAL);
    CHECK_ERR(ipc_fd_wait(p[0], POLLIN, INT64_MIN), -EINVAL);

    CHECK_ERR(ipc_fd_set_nonblock(-1, 1), -EBADF);
    CHECK_ERR(ipc_fd_set_cloexec(-1, 1), -EBADF);

    /* none of it read or wrote anything */
    CHECK_ERR(ipc_fd_read_exact(p[0], buf, 10, 0, NULL), 10);
    CHECK(memcmp(buf, "0123456789", 10) == 0);
    CHECK_ERR(ipc_fd_wait(p[0], POLLIN, 0), -EAGAIN);

    /* a closed fd number */
    closed = p[0];
    close_fd(p[0]);
    CHECK(fcntl(closed, F_GETFD) < 0 && errno == EBADF);
    CHECK_DONE0(ipc_fd_read_exact(closed, buf, 10, IPC_FOREVER, &done), -EBADF);
    CHECK_DONE0(ipc_fd_read_exact(closed, buf, 10, 50 * MS, &done), -EBADF);
    CHECK_ERR(ipc_fd_read_some(closed, buf, 10, IPC_FOREVER), -EBADF);
    CHECK_DONE0(ipc_fd_write_all(closed, buf, 10, IPC_FOREVER, &done), -EBADF);
    CHECK_ERR(ipc_fd_set_nonblock(closed, 1), -EBADF);
    CHECK_ERR(ipc_fd_set_cloexec(closed, 1), -EBADF);
    close_fd(p[1]);
#undef CHECK_DONE0
    CHECK_EQ(th_fd_count(), fds);
}
