/* _GNU_SOURCE for O_DIRECT (packet pipes); set before harness.h pulls in system headers. */
#define _GNU_SOURCE 1
#include "harness.h"

/* tests/test_pipe.c - section 7: anonymous pipes (flags, packet mode, capacity), FIFOs
   (exclusive create, exact modes, opening without deadlock, many writers, duplex pairs,
   interop with the shell) and child processes (stdio wiring, exit status, environment,
   argv, PATH search, timeouts and kills, fd and signal hygiene, process groups). */

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS      ((int64_t)1000000)
#define SEC     (1000 * MS)
#define KiB     ((size_t)1024)
#define JOIN_MS 10000

/* ---- helpers ---- */

static int fd_flags(int fd) {
    int f = fcntl(fd, F_GETFL);
    CHECK(f >= 0);
    return f;
}

static int fd_open(int fd) {
    return fcntl(fd, F_GETFD) >= 0;
}

/* Read fd until end of stream (-EPIPE) into buf, NUL-terminated; returns the length.
   Any other error, no end within 10 s, or more than cap - 1 bytes fails the test. */
static size_t read_to_eof(int fd, char *buf, size_t cap, int line) {
    int64_t dl = ipc_deadline_make(10 * SEC);
    size_t len = 0;
    for (;;) {
        char extra;
        ssize_t r = len < cap - 1
                        ? ipc_fd_read_some(fd, buf + len, cap - 1 - len, ipc_deadline_left(dl))
                        : ipc_fd_read_some(fd, &extra, 1, ipc_deadline_left(dl));
        if (r == -EPIPE) break;
        if (r < 0) th_fail(__FILE__, line, "read after %zu bytes: %s", len, ipc_strerror((int)r));
        if (len == cap - 1) th_fail(__FILE__, line, "more than %zu bytes", cap - 1);
        len += (size_t)r;
    }
    buf[len] = 0;
    return len;
}

/* ---- the guard: each test body runs in a child, its directory removed afterwards ---- */

/* A test whose body runs in th_dir, with 2 s of the test's timeout left for the cleanup. */
#define GTEST(name, timeout_ms) TEST_GUARDED(name, timeout_ms, 2000, th_in_tmpdir)

static int path_type(const char *path) { /* S_IFMT bits, or 0 when nothing is there */
    struct stat st;
    return lstat(path, &st) == 0 ? (int)(st.st_mode & S_IFMT) : 0;
}

static unsigned path_perm(const char *path) {
    struct stat st;
    CHECK_EQ(lstat(path, &st), 0);
    return (unsigned)(st.st_mode & 07777);
}

static void make_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static size_t slurp(const char *path, unsigned char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    ssize_t r;
    CHECK(fd >= 0);
    while (len < cap && (r = read(fd, buf + len, cap - len)) > 0)
        len += (size_t)r;
    close(fd);
    return len;
}

/* ---- child-process helpers ---- */

/* /bin/sh -c script sh [a1 [a2]]: the arguments arrive as $1 and $2, never quoted. */
static void sh_spawn(ipc_proc *p, const ipc_spawn_opts *o, const char *script, const char *a1,
                     const char *a2) {
    char *argv[7];
    argv[0] = (char *)"sh";
    argv[1] = (char *)"-c";
    argv[2] = (char *)script;
    argv[3] = (char *)"sh";
    argv[4] = (char *)a1;
    argv[5] = a1 ? (char *)a2 : NULL;
    argv[6] = NULL;
    CHECK_ERR(ipc_proc_spawn(p, "/bin/sh", argv, o), 0);
    CHECK(p->pid > 0);
}

/* Reap p within 10 s and close its ends; returns the wait status. */
static int proc_finish(ipc_proc *p) {
    int st = ipc_proc_wait(p, 10 * SEC);
    CHECK_OK(st);
    CHECK_EQ(p->pid, 0);
    CHECK_EQ(p->status, st);
    CHECK_ERR(ipc_proc_close(p), 0);
    CHECK(p->in == -1 && p->out == -1 && p->err == -1 && p->pidfd == -1);
    return st;
}

static void check_exit(int st, int code, int line) {
    if (!WIFEXITED(st) || WEXITSTATUS(st) != code)
        th_fail(__FILE__, line, "wait status 0x%x, want exit code %d", (unsigned)st, code);
}

static ipc_spawn_opts spawn_opts(int in, int out, int err, unsigned flags) {
    ipc_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.in = in;
    o.out = out;
    o.err = err;
    o.flags = flags;
    return o;
}

/* Wait (5 s at most) until /proc/<pid>/comm says the child has executed `name`. */
static void wait_exec(pid_t pid, const char *name) {
    int64_t dl = ipc_deadline_make(5 * SEC);
    char path[64], comm[64];
    snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
    for (;;) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = -1;
        if (fd >= 0) {
            n = read(fd, comm, sizeof comm - 1);
            close(fd);
        }
        if (n > 0) {
            comm[n] = 0;
            comm[strcspn(comm, "\n")] = 0;
            if (strcmp(comm, name) == 0) return;
        }
        if (ipc_deadline_left(dl) == 0)
            th_fail(__FILE__, __LINE__, "pid %ld never ran %s", (long)pid, name);
        th_sleep_ms(1);
    }
}

/* A signal mask line ("SigIgn:", "SigBlk:") of /proc/<pid>/status. */
static unsigned long long status_mask(pid_t pid, const char *key) {
    char path[64], buf[4096], *at;
    int fd;
    ssize_t n;
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    CHECK(n > 0);
    buf[n] = 0;
    at = strstr(buf, key);
    if (!at) th_fail(__FILE__, __LINE__, "no %s in %s", key, path);
    return strtoull(at + strlen(key), NULL, 16);
}

#define SIGBIT(s) (1ull << ((s)-1))

/* ======================== anonymous pipes ======================== */

GTEST(pipe_open_cloexec_nonblock, 10000) {
    static const unsigned flags[] = {0, IPC_PIPE_NONBLOCK_READ, IPC_PIPE_NONBLOCK_WRITE,
                                     IPC_PIPE_NONBLOCK_READ | IPC_PIPE_NONBLOCK_WRITE};
    int fds = th_fd_count(), raw[2];
    long dflt;
    size_t i;
    char c;

    /* the kernel's default capacity, from a plain pipe */
    CHECK_EQ(pipe(raw), 0);
    dflt = fcntl(raw[0], F_GETPIPE_SZ);
    CHECK(dflt > 0);
    close(raw[0]);
    close(raw[1]);

    for (i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        ipc_pipe_opts o;
        ipc_pipe p;
        memset(&o, 0, sizeof o);
        o.flags = flags[i];
        p.rfd = p.wfd = 12345;
        CHECK_ERR(ipc_pipe_open(&p, i ? &o : NULL), 0);
        CHECK_EQ(th_fd_count(), fds + 2);
        CHECK(p.rfd >= 0 && p.wfd >= 0 && p.rfd != p.wfd);
        CHECK(th_is_cloexec(p.rfd));
        CHECK(th_is_cloexec(p.wfd));
        CHECK_EQ(fd_flags(p.rfd) & O_ACCMODE, O_RDONLY);
        CHECK_EQ(fd_flags(p.wfd) & O_ACCMODE, O_WRONLY);
        CHECK_EQ(th_is_nonblock(p.rfd), (flags[i] & IPC_PIPE_NONBLOCK_READ) != 0);
        CHECK_EQ(th_is_nonblock(p.wfd), (flags[i] & IPC_PIPE_NONBLOCK_WRITE) != 0);
        CHECK_EQ(ipc_pipe_capacity(p.rfd), dflt);
        CHECK_EQ(ipc_pipe_capacity(p.wfd), dflt);
        if (flags[i] & IPC_PIPE_NONBLOCK_READ) { /* empty: the raw read must not block */
            CHECK_EQ(read(p.rfd, &c, 1), -1);
            CHECK_EQ(errno, EAGAIN);
        }
        /* what wfd writes, rfd reads */
        CHECK_ERR(ipc_fd_write_all(p.wfd, "pipe", 4, 0, NULL), 4);
        {
            char buf[8];
            CHECK_ERR(ipc_fd_read_exact(p.rfd, buf, 4, SEC, NULL), 4);
            CHECK(memcmp(buf, "pipe", 4) == 0);
        }
        CHECK_ERR(ipc_pipe_close(&p), 0);
        CHECK(p.rfd == -1 && p.wfd == -1);
        CHECK_EQ(th_fd_count(), fds);
    }
}

GTEST(pipe_packet_mode, 10000) {
    static const size_t sizes[] = {10, 1, 300, 4096, 7};
    unsigned char buf[8192], out[4096];
    ipc_pipe_opts o;
    ipc_pipe p;
    size_t i, total = 0;
    memset(&o, 0, sizeof o);
    o.flags = IPC_PIPE_PACKET;
    CHECK_ERR(ipc_pipe_open(&p, &o), 0);
    CHECK(fd_flags(p.wfd) & O_DIRECT);
    CHECK(th_is_cloexec(p.rfd) && th_is_cloexec(p.wfd));
    /* each write is one packet: a big read returns exactly one write's bytes */
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        th_pat_fill(out, sizes[i], (uint32_t)i);
        CHECK_ERR(ipc_fd_write_all(p.wfd, out, sizes[i], SEC, NULL), (ssize_t)sizes[i]);
    }
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        CHECK_ERR(ipc_fd_read_some(p.rfd, buf, sizeof buf, SEC), (ssize_t)sizes[i]);
        th_pat_check(__FILE__, __LINE__, buf, 0, sizes[i], (uint32_t)i);
    }
    CHECK_ERR(ipc_pipe_close(&p), 0);

    /* control: a plain pipe merges the same writes into one byte stream */
    CHECK_ERR(ipc_pipe_open(&p, NULL), 0);
    CHECK_EQ(fd_flags(p.wfd) & O_DIRECT, 0);
    for (i = 0; i < 3; i++) {
        th_pat_fill(out, sizes[i], (uint32_t)i);
        CHECK_ERR(ipc_fd_write_all(p.wfd, out, sizes[i], SEC, NULL), (ssize_t)sizes[i]);
        total += sizes[i];
    }
    CHECK_ERR(ipc_fd_read_some(p.rfd, buf, sizeof buf, SEC), (ssize_t)total);
    CHECK_ERR(ipc_pipe_close(&p), 0);
}

/* The capacity the kernel makes of a request: pages, rounded up to a power of two. */
static long rounded_cap(size_t size) {
    long page = sysconf(_SC_PAGESIZE), c = page;
    while ((size_t)c < size)
        c *= 2;
    return c;
}

GTEST(pipe_capacity_option_and_set, 10000) {
    static const size_t asks[] = {1, 4096, 5000, 65536, 100000, 1 << 20};
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *buf = th_xmalloc((size_t)page);
    int fds = th_fd_count();
    size_t i;
    ipc_pipe p;

    /* opts.capacity, on both ends */
    for (i = 0; i < sizeof asks / sizeof asks[0]; i++) {
        ipc_pipe_opts o;
        memset(&o, 0, sizeof o);
        o.capacity = asks[i];
        CHECK_ERR(ipc_pipe_open(&p, &o), 0);
        CHECK_EQ(ipc_pipe_capacity(p.rfd), rounded_cap(asks[i]));
        CHECK_EQ(ipc_pipe_capacity(p.wfd), rounded_cap(asks[i]));
        CHECK_ERR(ipc_pipe_close(&p), 0);
    }

    /* set_capacity returns the rounded size, which capacity then reports */
    CHECK_ERR(ipc_pipe_open(&p, NULL), 0);
    for (i = 0; i < sizeof asks / sizeof asks[0]; i++) {
        CHECK_ERR(ipc_pipe_set_capacity(p.wfd, asks[i]), rounded_cap(asks[i]));
        CHECK_EQ(ipc_pipe_capacity(p.rfd), rounded_cap(asks[i]));
    }
    /* one page really holds one page: a further byte would block */
    CHECK_ERR(ipc_pipe_set_capacity(p.rfd, (size_t)page), page);
    th_pat_fill(buf, (size_t)page, 3);
    CHECK_ERR(ipc_fd_write_all(p.wfd, buf, (size_t)page, 0, NULL), page);
    CHECK_ERR(ipc_fd_write_all(p.wfd, "x", 1, 0, NULL), -EAGAIN);

    /* errors leave the capacity alone */
    CHECK_ERR(ipc_pipe_set_capacity(p.wfd, 0), -EINVAL);
    CHECK_ERR(ipc_pipe_set_capacity(p.wfd, (size_t)INT_MAX + 1), -EINVAL);
    CHECK_ERR(ipc_pipe_set_capacity(p.wfd, SIZE_MAX), -EINVAL);
    CHECK_EQ(ipc_pipe_capacity(p.wfd), page);
    CHECK_ERR(ipc_pipe_capacity(-1), -EBADF);
    CHECK_ERR(ipc_pipe_set_capacity(-1, 4096), -EBADF);
    {
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        CHECK(null >= 0);
        CHECK_ERR(ipc_pipe_capacity(null), -EBADF);
        CHECK_ERR(ipc_pipe_set_capacity(null, 4096), -EBADF);
        close(null);
    }
    memset(buf, 0, (size_t)page);
    CHECK_ERR(ipc_fd_read_exact(p.rfd, buf, (size_t)page, SEC, NULL), page);
    th_pat_check(__FILE__, __LINE__, buf, 0, (size_t)page, 3);
    CHECK_ERR(ipc_pipe_close(&p), 0);
    CHECK_EQ(th_fd_count(), fds);
    free(buf);
}

GTEST(pipe_set_capacity_busy, 10000) {
    long page = sysconf(_SC_PAGESIZE);
    size_t held = 3 * (size_t)page;
    unsigned char *buf = th_xmalloc(held);
    ipc_pipe p;
    CHECK_ERR(ipc_pipe_open(&p, NULL), 0);
    CHECK_ERR(ipc_pipe_set_capacity(p.wfd, 16 * (size_t)page), 16 * page);
    th_pat_fill(buf, held, 9);
    CHECK_ERR(ipc_fd_write_all(p.wfd, buf, held, SEC, NULL), (ssize_t)held);
    /* three pages held: one or two pages is too small, and nothing changes */
    CHECK_ERR(ipc_pipe_set_capacity(p.wfd, (size_t)page), -EBUSY);
    CHECK_ERR(ipc_pipe_set_capacity(p.rfd, 2 * (size_t)page), -EBUSY);
    CHECK_EQ(ipc_pipe_capacity(p.wfd), 16 * page);
    /* four pages fit */
    CHECK_ERR(ipc_pipe_set_capacity(p.wfd, 4 * (size_t)page), 4 * page);
    memset(buf, 0, held);
    CHECK_ERR(ipc_fd_read_exact(p.rfd, buf, held, SEC, NULL), (ssize_t)held);
    th_pat_check(__FILE__, __LINE__, buf, 0, held, 9);
    /* empty again: shrinking is fine */
    CHECK_ERR(ipc_pipe_set_capacity(p.wfd, (size_t)page), page);
    CHECK_ERR(ipc_pipe_close(&p), 0);
    free(buf);
}

static long read_long(const char *path) {
    char buf[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    if (fd < 0) return -1;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    return strtol(buf, NULL, 10);
}

/* Root bypasses pipe-max-size (CAP_SYS_RESOURCE): this runs after dropping to nobody. */
static void eperm_child(void *arg) {
    long max = *(long *)arg;
    int fds;
    ipc_pipe p;
    ipc_pipe_opts o;
    if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0 || geteuid() == 0)
        th_skip("cannot drop privileges to uid/gid 65534");
    fds = th_fd_count();
    CHECK_ERR(ipc_pipe_open(&p, NULL), 0);
    CHECK_ERR(ipc_pipe_set_capacity(p.wfd, (size_t)max * 2), -EPERM);
    CHECK_ERR(ipc_pipe_set_capacity(p.wfd, (size_t)max + 1), -EPERM);
    CHECK_ERR(ipc_pipe_set_capacity(p.wfd, (size_t)max), max); /* the limit itself is allowed */
    CHECK_EQ(ipc_pipe_capacity(p.rfd), max);
    CHECK_ERR(ipc_pipe_close(&p), 0);
    /* the option fails the same way, and nothing stays open */
    memset(&o, 0, sizeof o);
    o.capacity = (size_t)max * 2;
    p.rfd = p.wfd = 12345;
    CHECK_ERR(ipc_pipe_open(&p, &o), -EPERM);
    CHECK(p.rfd == -1 && p.wfd == -1);
    CHECK_EQ(th_fd_count(), fds);
}

GTEST(pipe_set_capacity_eperm_unprivileged, 10000) {
    long max = read_long("/proc/sys/fs/pipe-max-size");
    if (max <= 0) th_skip("no /proc/sys/fs/pipe-max-size");
    if (max > INT_MAX / 2 || (max & (max - 1)) != 0)
        th_skip("pipe-max-size is not a power of two below 1 GiB");
    th_join_ok(th_spawn_ok(eperm_child, &max), JOIN_MS);
}

GTEST(pipe_close_marks_closed, 10000) {
    int fds = th_fd_count(), w;
    ipc_pipe p;
    CHECK_ERR(ipc_pipe_open(&p, NULL), 0);
    w = p.wfd;
    CHECK_ERR(ipc_pipe_close(&p), 0);
    CHECK(p.rfd == -1 && p.wfd == -1);
    CHECK(!fd_open(w));
    CHECK_EQ(th_fd_count(), fds);
    CHECK_ERR(ipc_pipe_close(&p), 0); /* twice is harmless */
    /* one end already closed: the other still goes, both are marked */
    CHECK_ERR(ipc_pipe_open(&p, NULL), 0);
    w = p.wfd;
    CHECK_ERR(ipc_fd_close(&p.rfd), 0);
    CHECK_ERR(ipc_pipe_close(&p), 0);
    CHECK(p.rfd == -1 && p.wfd == -1 && !fd_open(w));
    CHECK_EQ(th_fd_count(), fds);
    CHECK_ERR(ipc_pipe_close(NULL), -EINVAL);
}

GTEST(pipe_bad_args, 10000) {
    int fds = th_fd_count(), i;
    ipc_pipe p, e[2];
    ipc_pipe_opts o;
    CHECK_ERR(ipc_pipe_open(NULL, NULL), -EINVAL);
    CHECK_ERR(ipc_pipe_duplex(NULL, NULL), -EINVAL);
    for (i = 0; i < 4; i++) {
        memset(&o, 0, sizeof o);
        if (i == 0) o.flags = 8;
        if (i == 1) o.flags = 0x80000000u | IPC_PIPE_NONBLOCK_READ;
        if (i == 2) o.capacity = SIZE_MAX;
        if (i == 3) o.capacity = (size_t)INT_MAX + 1;
        p.rfd = p.wfd = 12345;
        CHECK_ERR(ipc_pipe_open(&p, &o), -EINVAL);
        CHECK(p.rfd == -1 && p.wfd == -1);
        e[0].rfd = e[0].wfd = e[1].rfd = e[1].wfd = 12345;
        CHECK_ERR(ipc_pipe_duplex(e, &o), -EINVAL);
        CHECK(e[0].rfd == -1 && e[0].wfd == -1 && e[1].rfd == -1 && e[1].wfd == -1);
        CHECK_EQ(th_fd_count(), fds);
    }
}

/* ---- duplex pipes across fork ---- */

static ipc_pipe g_dx[2];

/* Child: echo chunks back with every byte inverted, then expect EOF, then send 256 KiB. */
static void duplex_child(void *arg) {
    unsigned char buf[4096];
    unsigned char *big = th_xmalloc(256 * KiB);
    int i;
    size_t k;
    (void)arg;
    CHECK_ERR(ipc_pipe_close(&g_dx[0]), 0);
    for (i = 0; i < 64; i++) {
        CHECK_ERR(ipc_fd_read_exact(g_dx[1].rfd, buf, sizeof buf, 5 * SEC, NULL),
                  (ssize_t)sizeof buf);
        for (k = 0; k < sizeof buf; k++)
            buf[k] = (unsigned char)~buf[k];
        CHECK_ERR(ipc_fd_write_all(g_dx[1].wfd, buf, sizeof buf, 5 * SEC, NULL),
                  (ssize_t)sizeof buf);
    }
    /* the parent closed its write end: end of stream, not a timeout */
    CHECK_ERR(ipc_fd_read_exact(g_dx[1].rfd, buf, 1, 5 * SEC, NULL), -EPIPE);
    th_pat_fill(big, 256 * KiB, 77);
    CHECK_ERR(ipc_fd_write_all(g_dx[1].wfd, big, 256 * KiB, 5 * SEC, NULL), (ssize_t)(256 * KiB));
    CHECK_ERR(ipc_pipe_close(&g_dx[1]), 0);
    free(big);
}

GTEST(pipe_duplex_fork, 10000) {
    unsigned char out[4096], in[4096];
    unsigned char *big = th_xmalloc(256 * KiB);
    int fds = th_fd_count(), i, j;
    ipc_pipe_opts o;
    size_t k;
    pid_t pid;

    memset(&o, 0, sizeof o);
    o.flags = IPC_PIPE_NONBLOCK_READ;
    CHECK_ERR(ipc_pipe_duplex(g_dx, &o), 0);
    CHECK_EQ(th_fd_count(), fds + 4);
    for (i = 0; i < 2; i++) {
        CHECK(th_is_cloexec(g_dx[i].rfd) && th_is_cloexec(g_dx[i].wfd));
        CHECK(th_is_nonblock(g_dx[i].rfd) && !th_is_nonblock(g_dx[i].wfd));
        CHECK_EQ(fd_flags(g_dx[i].rfd) & O_ACCMODE, O_RDONLY);
        CHECK_EQ(fd_flags(g_dx[i].wfd) & O_ACCMODE, O_WRONLY);
        for (j = 0; j < 2; j++) /* four distinct fds */
            CHECK(g_dx[i].rfd != g_dx[j].wfd && (i == j || g_dx[i].rfd != g_dx[j].rfd));
    }
    pid = th_spawn_ok(duplex_child, NULL);
    CHECK_ERR(ipc_pipe_close(&g_dx[1]), 0);
    for (i = 0; i < 64; i++) {
        th_pat_fill(out, sizeof out, (uint32_t)i);
        CHECK_ERR(ipc_fd_write_all(g_dx[0].wfd, out, sizeof out, 5 * SEC, NULL),
                  (ssize_t)sizeof out);
        CHECK_ERR(ipc_fd_read_exact(g_dx[0].rfd, in, sizeof in, 5 * SEC, NULL), (ssize_t)sizeof in);
        for (k = 0; k < sizeof in; k++)
            if (in[k] != (unsigned char)~out[k])
                th_fail(__FILE__, __LINE__, "round %d byte %zu: 0x%02x", i, k, in[k]);
    }
    CHECK_ERR(ipc_fd_close(&g_dx[0].wfd), 0);
    CHECK_ERR(ipc_fd_read_exact(g_dx[0].rfd, big, 256 * KiB, 5 * SEC, NULL), (ssize_t)(256 * KiB));
    th_pat_check(__FILE__, __LINE__, big, 0, 256 * KiB, 77);
    /* the child closed its end: -EPIPE after the data */
    CHECK_ERR(ipc_fd_read_exact(g_dx[0].rfd, in, 1, 5 * SEC, NULL), -EPIPE);
    th_join_ok(pid, JOIN_MS);
    CHECK_ERR(ipc_pipe_close(&g_dx[0]), 0);
    CHECK_EQ(th_fd_count(), fds);
    free(big);
}

/* A write to a duplex end whose peer is gone is -EPIPE, not a SIGPIPE death. */
GTEST(pipe_duplex_write_to_dead_peer, 10000) {
    ipc_pipe e[2];
    CHECK_ERR(ipc_pipe_duplex(e, NULL), 0);
    CHECK_ERR(ipc_pipe_close(&e[1]), 0);
    CHECK_ERR(ipc_fd_write_all(e[0].wfd, "x", 1, SEC, NULL), -EPIPE);
    CHECK_ERR(ipc_fd_read_some(e[0].rfd, e, 1, SEC), -EPIPE);
    CHECK(!th_sig_pending(SIGPIPE));
    CHECK_ERR(ipc_pipe_close(&e[0]), 0);
}

/* ======================== FIFOs ======================== */

GTEST(fifo_create_mode_exact, 10000) {
    static const unsigned modes[] = {0666, 0640, 0604, 0200, 0777};
    const char *dflt = th_path("dflt");
    mode_t old = umask(077);
    size_t i;
    CHECK_ERR(ipc_fifo_create(dflt, 0), 0);
    CHECK_EQ(path_type(dflt), S_IFIFO);
    CHECK_EQ(path_perm(dflt), 0600);
    for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char name[16];
        const char *path;
        snprintf(name, sizeof name, "m%o", modes[i]);
        path = th_path(name);
        CHECK_ERR(ipc_fifo_create(path, modes[i]), 0);
        CHECK_EQ(path_type(path), S_IFIFO);
        if (path_perm(path) != modes[i])
            th_fail(__FILE__, __LINE__, "mode %o, want %o", path_perm(path), modes[i]);
    }
    /* no temporary name left beside them */
    CHECK_EQ(th_dir_each(th_dir, NULL, NULL), 1 + (int)(sizeof modes / sizeof modes[0]));
    /* mode bits beyond the permissions are refused, and nothing is made */
    CHECK_ERR(ipc_fifo_create(th_path("suid"), 04600), -EINVAL);
    CHECK_EQ(path_type(th_path("suid")), 0);
    CHECK_EQ(th_dir_each(th_dir, NULL, NULL), 1 + (int)(sizeof modes / sizeof modes[0]));
    umask(old);
}

GTEST(fifo_create_exclusive, 10000) {
    const char *fifo = th_path("fifo"), *file = th_path("file"), *dir = th_path("dir"),
               *link = th_path("link"), *target = th_path("target");
    char long_path[PATH_MAX + 8];
    unsigned char buf[64];
    int fds = th_fd_count();
    CHECK_ERR(ipc_fifo_create(fifo, 0), 0);
    CHECK_ERR(ipc_fifo_create(fifo, 0), -EEXIST);
    CHECK_ERR(ipc_fifo_create(fifo, 0644), -EEXIST);
    CHECK_EQ(path_perm(fifo), 0600); /* untouched */
    make_file(file, "keep me");
    CHECK_ERR(ipc_fifo_create(file, 0), -EEXIST);
    CHECK_EQ(path_type(file), S_IFREG);
    CHECK_EQ(slurp(file, buf, sizeof buf), 7);
    CHECK(memcmp(buf, "keep me", 7) == 0);
    CHECK_EQ(mkdir(dir, 0700), 0);
    CHECK_ERR(ipc_fifo_create(dir, 0), -EEXIST);
    /* a dangling symlink is something too, and its target is not created */
    CHECK_EQ(symlink(target, link), 0);
    CHECK_ERR(ipc_fifo_create(link, 0), -EEXIST);
    CHECK_EQ(path_type(link), S_IFLNK);
    CHECK_EQ(path_type(target), 0);
    /* other failures */
    CHECK_ERR(ipc_fifo_create(th_path("nodir/fifo"), 0), -ENOENT);
    memset(long_path, 'a', sizeof long_path);
    long_path[PATH_MAX] = 0;
    CHECK_ERR(ipc_fifo_create(long_path, 0), -ENAMETOOLONG);
    /* no temporary names left over by any failure */
    CHECK_EQ(th_dir_each(th_dir, NULL, NULL), 4);
    CHECK_EQ(th_fd_count(), fds);
}

GTEST(fifo_open_refuses_non_fifos, 10000) {
    static const int dirs[] = {IPC_FIFO_READ, IPC_FIFO_WRITE, IPC_FIFO_READ | IPC_FIFO_NONBLOCK};
    const char *fifo = th_path("fifo"), *file = th_path("file"), *dir = th_path("dir"),
               *link = th_path("link");
    int fds = th_fd_count();
    size_t i;
    CHECK_ERR(ipc_fifo_create(fifo, 0), 0);
    make_file(file, "x");
    CHECK_EQ(mkdir(dir, 0700), 0);
    CHECK_EQ(symlink(fifo, link), 0); /* a link to a real FIFO is still refused */
    for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        CHECK_ERR(ipc_fifo_open(file, dirs[i], 0), -EINVAL);
        CHECK_ERR(ipc_fifo_open(dir, dirs[i], 0), -EINVAL);
        CHECK_ERR(ipc_fifo_open(link, dirs[i], 0), -ELOOP);
        CHECK_ERR(ipc_fifo_open("/dev/null", dirs[i], 0), -EINVAL);
        CHECK_ERR(ipc_fifo_open(th_path("missing"), dirs[i], 0), -ENOENT);
    }
    CHECK_EQ(th_fd_count(), fds);
}

GTEST(fifo_unlink_only_fifos, 10000) {
    const char *fifo = th_path("fifo"), *file = th_path("file"), *dir = th_path("dir"),
               *link = th_path("link");
    CHECK_ERR(ipc_fifo_create(fifo, 0), 0);
    make_file(file, "x");
    CHECK_EQ(mkdir(dir, 0700), 0);
    CHECK_EQ(symlink(fifo, link), 0);
    CHECK_ERR(ipc_fifo_unlink(file), -EINVAL);
    CHECK_EQ(path_type(file), S_IFREG);
    CHECK_ERR(ipc_fifo_unlink(dir), -EINVAL);
    CHECK_EQ(path_type(dir), S_IFDIR);
    CHECK_ERR(ipc_fifo_unlink(link), -EINVAL); /* the link is not a FIFO: both stay */
    CHECK_EQ(path_type(link), S_IFLNK);
    CHECK_EQ(path_type(fifo), S_IFIFO);
    CHECK_ERR(ipc_fifo_unlink(th_path("missing")), -ENOENT);
    CHECK_ERR(ipc_fifo_unlink(fifo), 0);
    CHECK_EQ(path_type(fifo), 0);
    CHECK_ERR(ipc_fifo_unlink(fifo), -ENOENT);
    CHECK_ERR(ipc_fifo_unlink(NULL), -EINVAL);
    CHECK_ERR(ipc_fifo_unlink(""), -EINVAL);
}

GTEST(fifo_bad_args, 10000) {
    static const int bad[] = {0,
                              IPC_FIFO_READ | IPC_FIFO_WRITE,
                              IPC_FIFO_NONBLOCK,
                              IPC_FIFO_READ | 8,
                              IPC_FIFO_WRITE | 0x100,
                              -1};
    const char *fifo = th_path("fifo");
    int fds = th_fd_count();
    ipc_pipe e;
    size_t i;
    CHECK_ERR(ipc_fifo_create(NULL, 0), -EINVAL);
    CHECK_ERR(ipc_fifo_create("", 0), -EINVAL);
    CHECK_ERR(ipc_fifo_create(fifo, 0), 0);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_ERR(ipc_fifo_open(fifo, bad[i], 0), -EINVAL);
    CHECK_ERR(ipc_fifo_open(NULL, IPC_FIFO_READ, 0), -EINVAL);
    CHECK_ERR(ipc_fifo_open("", IPC_FIFO_READ, 0), -EINVAL);
    CHECK_ERR(ipc_fifo_open(fifo, IPC_FIFO_READ, -2), -EINVAL);
    CHECK_ERR(ipc_fifo_open(fifo, IPC_FIFO_WRITE, -2), -EINVAL);
    CHECK_ERR(ipc_fifo_duplex_create(NULL, 0), -EINVAL);
    CHECK_ERR(ipc_fifo_duplex_create("", 0), -EINVAL);
    CHECK_ERR(ipc_fifo_duplex_unlink(NULL), -EINVAL);
    CHECK_ERR(ipc_fifo_duplex_open(NULL, fifo, IPC_FIFO_SIDE_A, 0), -EINVAL);
    e.rfd = e.wfd = 12345;
    CHECK_ERR(ipc_fifo_duplex_open(&e, NULL, IPC_FIFO_SIDE_A, 0), -EINVAL);
    CHECK(e.rfd == -1 && e.wfd == -1);
    CHECK_ERR(ipc_fifo_duplex_create(th_path("dx"), 0), 0);
    e.rfd = e.wfd = 12345;
    CHECK_ERR(ipc_fifo_duplex_open(&e, th_path("dx"), 2, 0), -EINVAL);
    CHECK(e.rfd == -1 && e.wfd == -1);
    CHECK_ERR(ipc_fifo_duplex_open(&e, th_path("dx"), -1, 0), -EINVAL);
    CHECK_ERR(ipc_fifo_duplex_open(&e, th_path("dx"), IPC_FIFO_SIDE_B, -2), -EINVAL);
    CHECK(e.rfd == -1 && e.wfd == -1);
    CHECK_EQ(path_type(fifo), S_IFIFO);
    CHECK_EQ(th_fd_count(), fds);
}

GTEST(fifo_open_fd_flags, 10000) {
    const char *fifo = th_path("fifo");
    int fds = th_fd_count(), r1, r2, w1, w2;
    CHECK_ERR(ipc_fifo_create(fifo, 0), 0);
    r1 = ipc_fifo_open(fifo, IPC_FIFO_READ, 0);
    CHECK_OK(r1);
    r2 = ipc_fifo_open(fifo, IPC_FIFO_READ | IPC_FIFO_NONBLOCK, 0);
    CHECK_OK(r2);
    w1 = ipc_fifo_open(fifo, IPC_FIFO_WRITE, 0); /* readers are there: at once */
    CHECK_OK(w1);
    w2 = ipc_fifo_open(fifo, IPC_FIFO_WRITE | IPC_FIFO_NONBLOCK, 0);
    CHECK_OK(w2);
    CHECK(th_is_cloexec(r1) && th_is_cloexec(r2) && th_is_cloexec(w1) && th_is_cloexec(w2));
    CHECK_EQ(fd_flags(r1) & O_ACCMODE, O_RDONLY);
    CHECK_EQ(fd_flags(r2) & O_ACCMODE, O_RDONLY);
    CHECK_EQ(fd_flags(w1) & O_ACCMODE, O_WRONLY);
    CHECK_EQ(fd_flags(w2) & O_ACCMODE, O_WRONLY);
    CHECK(!th_is_nonblock(r1) && th_is_nonblock(r2) && !th_is_nonblock(w1) && th_is_nonblock(w2));
    CHECK_ERR(ipc_fd_write_all(w1, "ab", 2, SEC, NULL), 2);
    {
        char buf[2];
        CHECK_ERR(ipc_fd_read_exact(r1, buf, 2, SEC, NULL), 2);
        CHECK(memcmp(buf, "ab", 2) == 0);
    }
    close(r1);
    close(r2);
    close(w1);
    close(w2);
    CHECK_EQ(th_fd_count(), fds);
}

GTEST(fifo_open_write_without_reader, 10000) {
    const char *fifo = th_path("fifo");
    int fds = th_fd_count(), n;
    CHECK_ERR(ipc_fifo_create(fifo, 0), 0);
    CHECK_TIMED(ipc_fifo_open(fifo, IPC_FIFO_WRITE, 0), -EAGAIN, 0);
    CHECK_TIMED(ipc_fifo_open(fifo, IPC_FIFO_WRITE | IPC_FIFO_NONBLOCK, 0), -EAGAIN, 0);
    CHECK_TIMED(ipc_fifo_open(fifo, IPC_FIFO_WRITE, 50 * MS), -ETIMEDOUT, 50);
    /* signals neither cut the wait short nor stretch it */
    th_storm_start();
    CHECK_TIMED(ipc_fifo_open(fifo, IPC_FIFO_WRITE, 100 * MS), -ETIMEDOUT, 100);
    n = th_storm_stop();
    CHECK(n > 10);
    CHECK_EQ(th_fd_count(), fds);
}

/* Child: sleep 100 ms, then open the FIFO for reading and read "hello". */
static void late_reader(void *arg) {
    char buf[5];
    int fd;
    (void)arg;
    th_sleep_ms(100);
    fd = ipc_fifo_open(th_path("fifo"), IPC_FIFO_READ, 0);
    CHECK_OK(fd);
    CHECK_ERR(ipc_fd_read_exact(fd, buf, 5, 5 * SEC, NULL), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_ERR(ipc_fd_read_exact(fd, buf, 1, 5 * SEC, NULL), -EPIPE);
    close(fd);
}

GTEST(fifo_open_write_waits_for_reader, 10000) {
    const char *fifo = th_path("fifo");
    int64_t t0;
    pid_t pid;
    int fd;
    CHECK_ERR(ipc_fifo_create(fifo, 0), 0);
    t0 = ipc_time_now();
    pid = th_spawn_ok(late_reader, NULL);
    th_storm_start(); /* EINTR while it waits changes nothing */
    fd = ipc_fifo_open(fifo, IPC_FIFO_WRITE, 5 * SEC);
    th_storm_stop();
    CHECK_OK(fd);
    CHECK(ipc_time_now() - t0 >= 100 * MS); /* it really waited for the reader */
    CHECK(th_is_cloexec(fd) && !th_is_nonblock(fd));
    CHECK_ERR(ipc_fd_write_all(fd, "hello", 5, 5 * SEC, NULL), 5);
    close(fd);
    th_join_ok(pid, JOIN_MS);
}

/* Child: sleep 100 ms, open for writing, write "0123456789", pause, "abcdefghij", close. */
static void late_writer(void *arg) {
    int fd;
    (void)arg;
    th_sleep_ms(100);
    fd = ipc_fifo_open(th_path("fifo"), IPC_FIFO_WRITE, 5 * SEC);
    CHECK_OK(fd);
    CHECK_ERR(ipc_fd_write_all(fd, "0123456789", 10, 5 * SEC, NULL), 10);
    th_sleep_ms(50);
    CHECK_ERR(ipc_fd_write_all(fd, "abcdefghij", 10, 5 * SEC, NULL), 10);
    close(fd);
}

GTEST(fifo_read_waits_for_late_writer, 10000) {
    const char *fifo = th_path("fifo");
    char buf[32];
    size_t done = 99;
    int64_t t0;
    pid_t pid;
    int fd;
    CHECK_ERR(ipc_fifo_create(fifo, 0), 0);
    t0 = ipc_time_now();
    fd = ipc_fifo_open(fifo, IPC_FIFO_READ, 5 * SEC); /* no writer: returns at once */
    CHECK_OK(fd);
    CHECK(ipc_time_now() - t0 < SEC);
    CHECK(!th_is_nonblock(fd));
    /* no writer yet is "no data", never end of stream */
    CHECK_ERR(ipc_fd_read_some(fd, buf, sizeof buf, 0), -EAGAIN);
    CHECK_ERR(ipc_fd_read_exact(fd, buf, 1, 0, NULL), -EAGAIN);
    CHECK_TIMED(ipc_fd_read_some(fd, buf, sizeof buf, 20 * MS), -ETIMEDOUT, 20);
    pid = th_spawn_ok(late_writer, NULL);
    CHECK_ERR(ipc_fd_read_exact(fd, buf, 20, 5 * SEC, &done), 20);
    CHECK_EQ(done, 20);
    CHECK(memcmp(buf, "0123456789abcdefghij", 20) == 0);
    /* the writer closed: now it is the end */
    CHECK_ERR(ipc_fd_read_exact(fd, buf, 1, 5 * SEC, NULL), -EPIPE);
    CHECK_ERR(ipc_fd_read_some(fd, buf, sizeof buf, 5 * SEC), -EPIPE);
    th_join_ok(pid, JOIN_MS);
    close(fd);
}

GTEST(fifo_read_without_writer_times_out, 10000) {
    const char *fifo = th_path("fifo");
    char buf[8];
    int fd;
    CHECK_ERR(ipc_fifo_create(fifo, 0), 0);
    fd = ipc_fifo_open(fifo, IPC_FIFO_READ, 0);
    CHECK_OK(fd);
    CHECK_TIMED(ipc_fd_read_exact(fd, buf, 4, 0, NULL), -EAGAIN, 0);
    CHECK_TIMED(ipc_fd_read_exact(fd, buf, 4, 50 * MS, NULL), -ETIMEDOUT, 50);
    CHECK_TIMED(ipc_fd_read_some(fd, buf, sizeof buf, 50 * MS), -ETIMEDOUT, 50);
    close(fd);
    /* the same through a non-blocking descriptor */
    fd = ipc_fifo_open(fifo, IPC_FIFO_READ | IPC_FIFO_NONBLOCK, 0);
    CHECK_OK(fd);
    CHECK_TIMED(ipc_fd_read_exact(fd, buf, 4, 50 * MS, NULL), -ETIMEDOUT, 50);
    close(fd);
}

/* ---- many writers, one reader ---- */

#define NWRITERS 8
#define NRECORDS 500

/* Record `seq` of writer `id`: both as little-endian words, then a pattern of them. */
static uint32_t rec_seed(uint32_t id, uint32_t seq) {
    return id * 100003u + seq;
}

static void rec_fill(unsigned char *r, uint32_t id, uint32_t seq) {
    memcpy(r, &id, 4);
    memcpy(r + 4, &seq, 4);
    th_pat_fill(r + 8, PIPE_BUF - 8, rec_seed(id, seq));
}

static uint32_t *g_ready; /* shared: writers that have opened the FIFO */

static void fifo_writer(void *arg) {
    static unsigned char rec[PIPE_BUF];
    uint32_t id = (uint32_t)(uintptr_t)arg, seq;
    int64_t dl = ipc_deadline_make(5 * SEC);
    int fd = ipc_fifo_open(th_path("fifo"), IPC_FIFO_WRITE, 5 * SEC);
    CHECK_OK(fd);
    /* start together, so no writer opens only after another has come and gone */
    __atomic_add_fetch(g_ready, 1, __ATOMIC_ACQ_REL);
    while (__atomic_load_n(g_ready, __ATOMIC_ACQUIRE) < NWRITERS) {
        if (ipc_deadline_left(dl) == 0) th_fail(__FILE__, __LINE__, "writers never all opened");
        th_sleep_ms(1);
    }
    for (seq = 0; seq < NRECORDS; seq++) {
        rec_fill(rec, id, seq);
        CHECK_ERR(ipc_fd_write_all(fd, rec, PIPE_BUF, 10 * SEC, NULL), PIPE_BUF);
    }
    close(fd);
}

GTEST(fifo_many_writers_atomic_records, 20000) {
    static unsigned char rec[PIPE_BUF];
    uint32_t next[NWRITERS];
    pid_t pids[NWRITERS];
    int fd, i, n;
    CHECK_ERR(ipc_fifo_create(th_path("fifo"), 0), 0);
    g_ready = (uint32_t *)th_shared_map(sizeof *g_ready);
    fd = ipc_fifo_open(th_path("fifo"), IPC_FIFO_READ, 0);
    CHECK_OK(fd);
    for (i = 0; i < NWRITERS; i++) {
        next[i] = 0;
        pids[i] = th_spawn_ok(fifo_writer, (void *)(uintptr_t)i);
    }
    for (n = 0; n < NWRITERS * NRECORDS; n++) {
        uint32_t id, seq;
        size_t done = 0;
        ssize_t r = ipc_fd_read_exact(fd, rec, PIPE_BUF, 10 * SEC, &done);
        if (r != PIPE_BUF)
            th_fail(__FILE__, __LINE__, "record %d: %zd (%s), %zu bytes", n, r,
                    ipc_strerror((int)r), done);
        memcpy(&id, rec, 4);
        memcpy(&seq, rec + 4, 4);
        if (id >= NWRITERS || seq != next[id])
            th_fail(__FILE__, __LINE__, "record %d: writer %u seq %u (interleaved or reordered)", n,
                    (unsigned)id, (unsigned)seq);
        th_pat_check(__FILE__, __LINE__, rec + 8, 0, PIPE_BUF - 8, rec_seed(id, seq));
        next[id]++;
    }
    for (i = 0; i < NWRITERS; i++)
        CHECK_EQ(next[i], NRECORDS);
    /* every writer closed: end of stream, nothing extra */
    CHECK_ERR(ipc_fd_read_exact(fd, rec, 1, 10 * SEC, NULL), -EPIPE);
    for (i = 0; i < NWRITERS; i++)
        th_join_ok(pids[i], JOIN_MS);
    close(fd);
    th_shared_unmap(g_ready, sizeof *g_ready);
}

/* ---- duplex FIFO pairs ---- */

#define DX_LEN (32 * KiB)

typedef struct dx_side {
    int side;     /* IPC_FIFO_SIDE_A or _B */
    int delay_ms; /* before opening */
} dx_side;

/* One side of the exchange: A sends stream 1, B answers with stream 2; A closes its
   write end, B sees the end, closes, and A sees the end. */
static void dx_run(const dx_side *s) {
    unsigned char *buf = th_xmalloc(DX_LEN);
    int a = s->side == IPC_FIFO_SIDE_A;
    ipc_pipe e;
    th_sleep_ms(s->delay_ms);
    CHECK_ERR(ipc_fifo_duplex_open(&e, th_path("dx"), s->side, 5 * SEC), 0);
    CHECK(th_is_cloexec(e.rfd) && th_is_cloexec(e.wfd));
    CHECK(!th_is_nonblock(e.rfd) && !th_is_nonblock(e.wfd));
    CHECK_EQ(fd_flags(e.rfd) & O_ACCMODE, O_RDONLY);
    CHECK_EQ(fd_flags(e.wfd) & O_ACCMODE, O_WRONLY);
    if (a) {
        th_pat_fill(buf, DX_LEN, 1);
        CHECK_ERR(ipc_fd_write_all(e.wfd, buf, DX_LEN, 5 * SEC, NULL), (ssize_t)DX_LEN);
        CHECK_ERR(ipc_fd_read_exact(e.rfd, buf, DX_LEN, 5 * SEC, NULL), (ssize_t)DX_LEN);
        th_pat_check(__FILE__, __LINE__, buf, 0, DX_LEN, 2);
        CHECK_ERR(ipc_fd_close(&e.wfd), 0);
        CHECK_ERR(ipc_fd_read_exact(e.rfd, buf, 1, 5 * SEC, NULL), -EPIPE);
    } else {
        CHECK_ERR(ipc_fd_read_exact(e.rfd, buf, DX_LEN, 5 * SEC, NULL), (ssize_t)DX_LEN);
        th_pat_check(__FILE__, __LINE__, buf, 0, DX_LEN, 1);
        th_pat_fill(buf, DX_LEN, 2);
        CHECK_ERR(ipc_fd_write_all(e.wfd, buf, DX_LEN, 5 * SEC, NULL), (ssize_t)DX_LEN);
        CHECK_ERR(ipc_fd_read_exact(e.rfd, buf, 1, 5 * SEC, NULL), -EPIPE);
    }
    CHECK_ERR(ipc_pipe_close(&e), 0);
    free(buf);
}

static void dx_child(void *arg) {
    dx_run((const dx_side *)arg);
}

GTEST(fifo_duplex_both_orders, 10000) {
    int fds = th_fd_count(), order;
    CHECK_ERR(ipc_fifo_duplex_create(th_path("dx"), 0), 0);
    CHECK_EQ(path_type(th_path("dx.a2b")), S_IFIFO);
    CHECK_EQ(path_type(th_path("dx.b2a")), S_IFIFO);
    CHECK_EQ(path_perm(th_path("dx.a2b")), 0600);
    CHECK_EQ(path_perm(th_path("dx.b2a")), 0600);
    CHECK_EQ(th_dir_each(th_dir, NULL, NULL), 2);
    /* order 0: A (here) opens first and waits for B; order 1: B opens first and waits;
       order 2: the child plays A and opens first */
    for (order = 0; order < 3; order++) {
        dx_side mine, theirs;
        pid_t pid;
        mine.side = order == 2 ? IPC_FIFO_SIDE_B : IPC_FIFO_SIDE_A;
        theirs.side = 1 - mine.side;
        mine.delay_ms = order == 0 ? 0 : 100; /* whoever goes second waits 100 ms */
        theirs.delay_ms = 100 - mine.delay_ms;
        pid = th_spawn_ok(dx_child, &theirs);
        dx_run(&mine);
        th_join_ok(pid, JOIN_MS);
        CHECK_EQ(th_fd_count(), fds);
    }
    CHECK_ERR(ipc_fifo_duplex_unlink(th_path("dx")), 0);
    CHECK_EQ(path_type(th_path("dx.a2b")), 0);
    CHECK_EQ(path_type(th_path("dx.b2a")), 0);
    CHECK_ERR(ipc_fifo_duplex_unlink(th_path("dx")), -ENOENT);
}

GTEST(fifo_duplex_create_errors, 10000) {
    char long_path[PATH_MAX];
    int fds = th_fd_count();
    ipc_pipe e;
    size_t n;
    mode_t old = umask(077);
    /* an explicit mode, exactly, on both */
    CHECK_ERR(ipc_fifo_duplex_create(th_path("m"), 0640), 0);
    CHECK_EQ(path_perm(th_path("m.a2b")), 0640);
    CHECK_EQ(path_perm(th_path("m.b2a")), 0640);
    umask(old);
    /* exclusive: a second create fails and both stay */
    CHECK_ERR(ipc_fifo_duplex_create(th_path("m"), 0), -EEXIST);
    CHECK_EQ(path_type(th_path("m.a2b")), S_IFIFO);
    CHECK_EQ(path_type(th_path("m.b2a")), S_IFIFO);
    /* half there (a plain file at .b2a): fails, and no .a2b is left behind */
    make_file(th_path("h.b2a"), "x");
    CHECK_ERR(ipc_fifo_duplex_create(th_path("h"), 0), -EEXIST);
    CHECK_EQ(path_type(th_path("h.a2b")), 0);
    CHECK_EQ(path_type(th_path("h.b2a")), S_IFREG);
    /* unlink removes a FIFO but not the file, and reports it */
    CHECK_ERR(ipc_fifo_create(th_path("h.a2b"), 0), 0);
    CHECK_ERR(ipc_fifo_duplex_unlink(th_path("h")), -EINVAL);
    CHECK_EQ(path_type(th_path("h.a2b")), 0);
    CHECK_EQ(path_type(th_path("h.b2a")), S_IFREG);
    /* no peer: the open times out and leaves nothing open */
    e.rfd = e.wfd = 12345;
    CHECK_TIMED(ipc_fifo_duplex_open(&e, th_path("m"), IPC_FIFO_SIDE_A, 50 * MS), -ETIMEDOUT, 50);
    CHECK(e.rfd == -1 && e.wfd == -1);
    CHECK_TIMED(ipc_fifo_duplex_open(&e, th_path("m"), IPC_FIFO_SIDE_B, 0), -EAGAIN, 0);
    CHECK(e.rfd == -1 && e.wfd == -1);
    CHECK_ERR(ipc_fifo_duplex_open(&e, th_path("none"), IPC_FIFO_SIDE_A, 0), -ENOENT);
    CHECK_EQ(th_fd_count(), fds);
    /* a path with no room for the suffix */
    n = strlen(th_dir) + 1;
    memcpy(long_path, th_dir, n - 1);
    long_path[n - 1] = '/';
    memset(long_path + n, 'x', sizeof long_path - n);
    long_path[PATH_MAX - 4] = 0; /* PATH_MAX - 4 bytes: one too many */
    CHECK_ERR(ipc_fifo_duplex_create(long_path, 0), -ENAMETOOLONG);
    CHECK_ERR(ipc_fifo_duplex_open(&e, long_path, IPC_FIFO_SIDE_A, 0), -ENAMETOOLONG);
    CHECK(e.rfd == -1 && e.wfd == -1);
    CHECK_ERR(ipc_fifo_duplex_unlink(long_path), -ENAMETOOLONG);
    CHECK_EQ(th_dir_each(th_dir, NULL, NULL), 3); /* m.a2b, m.b2a, h.b2a */
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- interop with the shell ---- */

GTEST(fifo_shell_writes_library_reads, 10000) {
    static const char script[] = "{ printf 'first\\n'; sleep 0.1; i=0; while [ $i -lt 2000 ]; "
                                 "do echo \"line $i\"; i=$((i+1)); done; } > \"$1\"";
    const char *fifo = th_path("fifo");
    ipc_spawn_opts o = spawn_opts(IPC_STDIO_NULL, IPC_STDIO_NULL, IPC_STDIO_INHERIT, 0);
    size_t cap = 64 * KiB, len = 0;
    char *want = (char *)th_xmalloc(cap), *got = (char *)th_xmalloc(cap);
    ipc_proc p;
    int fd, i;
    len += (size_t)snprintf(want + len, cap - len, "first\n");
    for (i = 0; i < 2000; i++)
        len += (size_t)snprintf(want + len, cap - len, "line %d\n", i);
    CHECK_ERR(ipc_fifo_create(fifo, 0), 0);
    fd = ipc_fifo_open(fifo, IPC_FIFO_READ, 0);
    CHECK_OK(fd);
    sh_spawn(&p, &o, script, fifo, NULL);
    CHECK(p.in == -1 && p.out == -1 && p.err == -1);
    /* the pause after "first" is no end of stream; the shell's exit is */
    CHECK_EQ(read_to_eof(fd, got, cap, __LINE__), len);
    CHECK_STREQ(got, want);
    check_exit(proc_finish(&p), 0, __LINE__);
    close(fd);
    free(want);
    free(got);
}

GTEST(fifo_library_writes_shell_reads, 10000) {
    const char *fifo = th_path("fifo"), *file = th_path("copy");
    ipc_spawn_opts o = spawn_opts(IPC_STDIO_NULL, IPC_STDIO_NULL, IPC_STDIO_INHERIT, 0);
    size_t len = 200 * KiB;
    unsigned char *buf = th_xmalloc(len + 1);
    ipc_proc p;
    int fd;
    CHECK_ERR(ipc_fifo_create(fifo, 0), 0);
    sh_spawn(&p, &o, "cat \"$1\" > \"$2\"", fifo, file);
    fd = ipc_fifo_open(fifo, IPC_FIFO_WRITE, 5 * SEC); /* waits for cat */
    CHECK_OK(fd);
    th_pat_fill(buf, len, 5);
    CHECK_ERR(ipc_fd_write_all(fd, buf, len, 5 * SEC, NULL), (ssize_t)len);
    close(fd);
    check_exit(proc_finish(&p), 0, __LINE__);
    memset(buf, 0, len + 1);
    CHECK_EQ(slurp(file, buf, len + 1), len);
    th_pat_check(__FILE__, __LINE__, buf, 0, len, 5);
    free(buf);
}

GTEST(fifo_shell_reader_leaves_early, 10000) {
    const char *fifo = th_path("fifo");
    ipc_spawn_opts o = spawn_opts(IPC_STDIO_NULL, IPC_STDIO_PIPE, IPC_STDIO_INHERIT, 0);
    unsigned char data[100];
    char got[64];
    ipc_proc p;
    int fd;
    CHECK_ERR(ipc_fifo_create(fifo, 0), 0);
    sh_spawn(&p, &o, "exec head -c 10 \"$1\"", fifo, NULL);
    fd = ipc_fifo_open(fifo, IPC_FIFO_WRITE, 5 * SEC);
    CHECK_OK(fd);
    th_pat_fill(data, sizeof data, 6);
    CHECK_ERR(ipc_fd_write_all(fd, data, sizeof data, 5 * SEC, NULL), (ssize_t)sizeof data);
    CHECK_EQ(read_to_eof(p.out, got, sizeof got, __LINE__), 10);
    CHECK(memcmp(got, data, 10) == 0);
    check_exit(proc_finish(&p), 0, __LINE__);
    /* the reader is gone: -EPIPE, and this process is alive with no SIGPIPE pending */
    CHECK_ERR(ipc_fd_write_all(fd, data, sizeof data, SEC, NULL), -EPIPE);
    CHECK(!th_sig_pending(SIGPIPE));
    close(fd);
}

/* ======================== child processes ======================== */

GTEST(proc_cat_round_trip, 10000) {
    char *argv[] = {(char *)"cat", NULL};
    size_t len = 20 * KiB;
    unsigned char *in = th_xmalloc(len), *out = th_xmalloc(len + 1);
    int fds = th_fd_count();
    ipc_proc p;
    memset(&p, 0x55, sizeof p);
    CHECK_ERR(ipc_proc_spawn(&p, "/bin/cat", argv, NULL), 0);
    CHECK(p.pid > 0);
    CHECK(p.in >= 0 && p.out >= 0 && p.err >= 0);
    CHECK(th_is_cloexec(p.in) && th_is_cloexec(p.out) && th_is_cloexec(p.err));
    CHECK(!th_is_nonblock(p.in) && !th_is_nonblock(p.out) && !th_is_nonblock(p.err));
    CHECK_EQ(fd_flags(p.in) & O_ACCMODE, O_WRONLY);
    CHECK_EQ(fd_flags(p.out) & O_ACCMODE, O_RDONLY);
    CHECK_EQ(fd_flags(p.err) & O_ACCMODE, O_RDONLY);
    if (p.pidfd >= 0) CHECK(th_is_cloexec(p.pidfd));
    /* only our ends are open here: 3 pipes + maybe the pidfd */
    CHECK_EQ(th_fd_count(), fds + 3 + (p.pidfd >= 0));
    th_pat_fill(in, len, 11);
    CHECK_ERR(ipc_fd_write_all(p.in, in, len, 5 * SEC, NULL), (ssize_t)len);
    CHECK_ERR(ipc_fd_close(&p.in), 0);
    CHECK_EQ(p.in, -1);
    CHECK_EQ(read_to_eof(p.out, (char *)out, len + 1, __LINE__), len);
    th_pat_check(__FILE__, __LINE__, out, 0, len, 11);
    CHECK_EQ(read_to_eof(p.err, (char *)out, len + 1, __LINE__), 0);
    check_exit(proc_finish(&p), 0, __LINE__);
    CHECK_EQ(th_fd_count(), fds);
    CHECK(th_no_children());
    free(in);
    free(out);
}

static int g_feed_fd;

static void feeder(void *arg) {
    size_t len = *(size_t *)arg;
    unsigned char *b = th_xmalloc(len);
    th_pat_fill(b, len, 12);
    CHECK_ERR(ipc_fd_write_all(g_feed_fd, b, len, 10 * SEC, NULL), (ssize_t)len);
    free(b);
}

/* 4 MiB through cat: more than both pipes hold, so a forked feeder writes while we read.
   Two cats run at once: neither holds the other's pipe ends, or a close would not end it. */
GTEST(proc_cat_large_two_children, 15000) {
    char *argv[] = {(char *)"cat", NULL};
    size_t len = 4 << 20;
    unsigned char *out = th_xmalloc(len + 1);
    ipc_proc a, b;
    pid_t pid;
    CHECK_ERR(ipc_proc_spawn(&a, "/bin/cat", argv, NULL), 0);
    CHECK_ERR(ipc_proc_spawn(&b, "/bin/cat", argv, NULL), 0);
    g_feed_fd = a.in;
    pid = th_spawn_ok(feeder, &len);
    CHECK_ERR(ipc_fd_close(&a.in), 0);
    CHECK_EQ(read_to_eof(a.out, (char *)out, len + 1, __LINE__), len);
    th_pat_check(__FILE__, __LINE__, out, 0, len, 12);
    th_join_ok(pid, JOIN_MS);
    check_exit(proc_finish(&a), 0, __LINE__); /* b still runs */
    CHECK_EQ(ipc_proc_wait(&b, 0), -EAGAIN);
    CHECK_ERR(ipc_fd_write_all(b.in, "b", 1, SEC, NULL), 1);
    CHECK_ERR(ipc_fd_close(&b.in), 0);
    CHECK_EQ(read_to_eof(b.out, (char *)out, len + 1, __LINE__), 1);
    CHECK_EQ(out[0], 'b');
    check_exit(proc_finish(&b), 0, __LINE__);
    free(out);
}

GTEST(proc_exit_status, 10000) {
    static const int codes[] = {0, 1, 7, 255};
    ipc_spawn_opts o = spawn_opts(IPC_STDIO_NULL, IPC_STDIO_NULL, IPC_STDIO_NULL, 0);
    size_t i;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char script[32];
        ipc_proc p;
        int st;
        snprintf(script, sizeof script, "exit %d", codes[i]);
        sh_spawn(&p, &o, script, NULL, NULL);
        st = ipc_proc_wait(&p, IPC_FOREVER);
        check_exit(st, codes[i], __LINE__);
        CHECK_EQ(p.status, st);
        CHECK_EQ(p.pid, 0);
        CHECK_EQ(p.pidfd, -1);
        CHECK_ERR(ipc_proc_close(&p), 0);
    }
    /* killed by a signal of its own */
    {
        ipc_proc p;
        int st;
        sh_spawn(&p, &o, "kill -TERM $$", NULL, NULL);
        st = ipc_proc_wait(&p, 5 * SEC);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
        CHECK_ERR(ipc_proc_close(&p), 0);
    }
    CHECK(th_no_children());
}

GTEST(proc_stdio_wiring, 10000) {
    static const char both[] = "echo out; echo err >&2";
    char buf[256], buf2[256];
    ipc_spawn_opts o;
    ipc_proc p;
    int fds = th_fd_count();

    /* separate pipes */
    sh_spawn(&p, NULL, both, NULL, NULL);
    CHECK(p.in >= 0 && p.out >= 0 && p.err >= 0);
    read_to_eof(p.out, buf, sizeof buf, __LINE__);
    CHECK_STREQ(buf, "out\n");
    read_to_eof(p.err, buf, sizeof buf, __LINE__);
    CHECK_STREQ(buf, "err\n");
    check_exit(proc_finish(&p), 0, __LINE__);

    /* 2>&1: one pipe, in order */
    o = spawn_opts(IPC_STDIO_PIPE, IPC_STDIO_PIPE, IPC_STDIO_STDOUT, 0);
    sh_spawn(&p, &o, both, NULL, NULL);
    CHECK_EQ(p.err, -1);
    read_to_eof(p.out, buf, sizeof buf, __LINE__);
    CHECK_STREQ(buf, "out\nerr\n");
    check_exit(proc_finish(&p), 0, __LINE__);

    /* /dev/null for stdout: only stderr comes */
    o = spawn_opts(IPC_STDIO_NULL, IPC_STDIO_NULL, IPC_STDIO_PIPE, 0);
    sh_spawn(&p, &o, both, NULL, NULL);
    CHECK(p.in == -1 && p.out == -1 && p.err >= 0);
    read_to_eof(p.err, buf, sizeof buf, __LINE__);
    CHECK_STREQ(buf, "err\n");
    check_exit(proc_finish(&p), 0, __LINE__);

    /* what the child's 0, 1 and 2 really are: /dev/null, and one pipe twice */
    o = spawn_opts(IPC_STDIO_NULL, IPC_STDIO_PIPE, IPC_STDIO_STDOUT, 0);
    sh_spawn(&p, &o, "readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2", NULL, NULL);
    read_to_eof(p.out, buf, sizeof buf, __LINE__);
    check_exit(proc_finish(&p), 0, __LINE__);
    {
        char l0[64], l1[64], l2[64];
        CHECK_EQ(sscanf(buf, "%63s %63s %63s", l0, l1, l2), 3);
        CHECK_STREQ(l0, "/dev/null");
        CHECK(strncmp(l1, "pipe:", 5) == 0);
        CHECK_STREQ(l2, l1);
    }

    /* stdin from /dev/null: cat ends at once */
    {
        char *argv[] = {(char *)"cat", NULL};
        o = spawn_opts(IPC_STDIO_NULL, IPC_STDIO_PIPE, IPC_STDIO_NULL, 0);
        CHECK_ERR(ipc_proc_spawn(&p, "/bin/cat", argv, &o), 0);
        CHECK(p.in == -1 && p.err == -1);
        CHECK_EQ(read_to_eof(p.out, buf, sizeof buf, __LINE__), 0);
        check_exit(proc_finish(&p), 0, __LINE__);
    }

    /* all discarded, including 2>&1 into /dev/null */
    o = spawn_opts(IPC_STDIO_NULL, IPC_STDIO_NULL, IPC_STDIO_STDOUT, 0);
    sh_spawn(&p, &o, both, NULL, NULL);
    CHECK(p.in == -1 && p.out == -1 && p.err == -1);
    check_exit(proc_finish(&p), 0, __LINE__);

    /* inherit: the child writes into our own stdout (a pipe for the test) */
    {
        int saved, cap[2];
        fflush(NULL);
        saved = dup(1);
        CHECK(saved >= 0);
        CHECK_EQ(pipe(cap), 0);
        CHECK_EQ(dup2(cap[1], 1), 1);
        close(cap[1]);
        o = spawn_opts(IPC_STDIO_NULL, IPC_STDIO_INHERIT, IPC_STDIO_PIPE, 0);
        sh_spawn(&p, &o, "echo inherited", NULL, NULL);
        CHECK_EQ(p.out, -1);
        check_exit(proc_finish(&p), 0, __LINE__);
        CHECK_EQ(dup2(saved, 1), 1); /* our last write end of cap goes: EOF follows */
        close(saved);
        read_to_eof(cap[0], buf2, sizeof buf2, __LINE__);
        close(cap[0]);
        CHECK_STREQ(buf2, "inherited\n");
    }
    CHECK_EQ(th_fd_count(), fds);
}

GTEST(proc_env_and_argv, 10000) {
    char *env[] = {(char *)"FOO=bar baz", (char *)"EMPTY=", NULL};
    char *argv[] = {(char *)"sh",
                    (char *)"-c",
                    (char *)"for a in \"$@\"; do printf '[%s]' \"$a\"; done",
                    (char *)"sh",
                    (char *)"a b",
                    (char *)"  lead",
                    (char *)"'single'",
                    (char *)"\"double\"",
                    (char *)"",
                    (char *)"$HOME",
                    (char *)"back\\slash",
                    (char *)"*",
                    (char *)"new\nline",
                    NULL};
    ipc_spawn_opts o = spawn_opts(IPC_STDIO_NULL, IPC_STDIO_PIPE, IPC_STDIO_INHERIT, 0);
    char buf[512];
    ipc_proc p;

    /* argv arrives word for word, nothing split, expanded or unquoted */
    CHECK_ERR(ipc_proc_spawn(&p, "/bin/sh", argv, &o), 0);
    read_to_eof(p.out, buf, sizeof buf, __LINE__);
    check_exit(proc_finish(&p), 0, __LINE__);
    CHECK_STREQ(buf, "[a b][  lead]['single'][\"double\"][][$HOME][back\\slash][*][new\nline]");

    /* envp replaces the environment */
    CHECK_EQ(setenv("IPCT_PARENT", "here", 1), 0);
    o.envp = env;
    sh_spawn(&p, &o, "printf '%s|%s|%s' \"$FOO\" \"${EMPTY-unset}\" \"${IPCT_PARENT-unset}\"", NULL,
             NULL);
    read_to_eof(p.out, buf, sizeof buf, __LINE__);
    check_exit(proc_finish(&p), 0, __LINE__);
    CHECK_STREQ(buf, "bar baz||unset");

    /* NULL envp: the caller's environment */
    o.envp = NULL;
    sh_spawn(&p, &o, "printf '%s|%s' \"${FOO-unset}\" \"$IPCT_PARENT\"", NULL, NULL);
    read_to_eof(p.out, buf, sizeof buf, __LINE__);
    check_exit(proc_finish(&p), 0, __LINE__);
    CHECK_STREQ(buf, "unset|here");
}

GTEST(proc_path_search, 10000) {
    char *argv[] = {(char *)"cat", NULL};
    ipc_spawn_opts o =
        spawn_opts(IPC_STDIO_PIPE, IPC_STDIO_PIPE, IPC_STDIO_INHERIT, IPC_SPAWN_PATH);
    char buf[64];
    ipc_proc p;
    CHECK_ERR(ipc_proc_spawn(&p, "cat", argv, &o), 0);
    CHECK_ERR(ipc_fd_write_all(p.in, "found", 5, SEC, NULL), 5);
    CHECK_ERR(ipc_fd_close(&p.in), 0);
    read_to_eof(p.out, buf, sizeof buf, __LINE__);
    CHECK_STREQ(buf, "found");
    check_exit(proc_finish(&p), 0, __LINE__);
    /* a slash means a path even with IPC_SPAWN_PATH */
    CHECK_ERR(ipc_proc_spawn(&p, "/bin/cat", argv, &o), 0);
    CHECK_ERR(ipc_fd_close(&p.in), 0);
    CHECK_EQ(read_to_eof(p.out, buf, sizeof buf, __LINE__), 0);
    check_exit(proc_finish(&p), 0, __LINE__);
}

GTEST(proc_spawn_missing_program, 10000) {
    char *argv[] = {(char *)"prog", NULL};
    const char *noexec = th_path("noexec");
    int fds = th_fd_count();
    ipc_proc p;
    memset(&p, 0x55, sizeof p);
    CHECK_ERR(ipc_proc_spawn(&p, "/nonexistent-ipct/prog", argv, NULL), -ENOENT);
    CHECK(p.pid == 0 && p.in == -1 && p.out == -1 && p.err == -1 && p.pidfd == -1);
    CHECK_ERR(ipc_proc_spawn(&p, th_path("missing"), argv, NULL), -ENOENT);
    /* a file without execute permission */
    make_file(noexec, "#!/bin/sh\nexit 0\n");
    CHECK_EQ(chmod(noexec, 0644), 0);
    CHECK_ERR(ipc_proc_spawn(&p, noexec, argv, NULL), -EACCES);
    CHECK(p.pid == 0 && p.in == -1 && p.out == -1 && p.err == -1);
    CHECK_EQ(th_fd_count(), fds);
    CHECK(th_no_children());
}

GTEST(proc_spawn_path_missing_program, 10000) {
    char *argv[] = {(char *)"cat", NULL};
    ipc_spawn_opts o = spawn_opts(0, 0, 0, IPC_SPAWN_PATH);
    int fds = th_fd_count();
    ipc_proc p;
    if (th_under_emulator())
        th_skip("posix_spawn runs as a plain fork under qemu: exec errors become status 127");
    CHECK_ERR(ipc_proc_spawn(&p, "ipct-no-such-program-here", argv, &o), -ENOENT);
    CHECK(p.pid == 0 && p.in == -1 && p.out == -1 && p.err == -1 && p.pidfd == -1);
    /* no slash and no IPC_SPAWN_PATH: "cat" is a file in the working directory */
    CHECK_EQ(chdir(th_dir), 0);
    CHECK_ERR(ipc_proc_spawn(&p, "cat", argv, NULL), -ENOENT);
    CHECK_EQ(th_fd_count(), fds);
    CHECK(th_no_children());
}

GTEST(proc_wait_timeout_kill, 10000) {
    char *argv[] = {(char *)"sleep", (char *)"5", NULL};
    ipc_spawn_opts o =
        spawn_opts(IPC_STDIO_NULL, IPC_STDIO_NULL, IPC_STDIO_INHERIT, IPC_SPAWN_PATH);
    int fds = th_fd_count(), st, n;
    ipc_proc p, q;
    CHECK_ERR(ipc_proc_spawn(&p, "sleep", argv, &o), 0);
    if (p.pidfd >= 0) CHECK_ERR(ipc_fd_wait(p.pidfd, POLLIN, 0), -EAGAIN);
    CHECK_TIMED(ipc_proc_wait(&p, 0), -EAGAIN, 0);
    CHECK_TIMED(ipc_proc_wait(&p, 50 * MS), -ETIMEDOUT, 50);
    CHECK(p.pid > 0);
    th_storm_start();
    CHECK_TIMED(ipc_proc_wait(&p, 100 * MS), -ETIMEDOUT, 100);
    n = th_storm_stop();
    CHECK(n > 10);
    CHECK_ERR(ipc_proc_wait(&p, -2), -EINVAL);
    CHECK_ERR(ipc_proc_kill(&p, 0), 0); /* alive */
    CHECK_ERR(ipc_proc_kill(&p, 12345), -EINVAL);
    CHECK_ERR(ipc_proc_kill(&p, SIGKILL), 0);
    st = ipc_proc_wait(&p, 5 * SEC);
    CHECK_OK(st);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
        th_fail(__FILE__, __LINE__, "wait status 0x%x, want SIGKILL", (unsigned)st);
    CHECK(p.pid == 0 && p.pidfd == -1 && p.status == st);
    /* reaped: with another child running, which neither call may touch */
    CHECK_ERR(ipc_proc_spawn(&q, "sleep", argv, &o), 0);
    CHECK_ERR(ipc_proc_wait(&p, 0), -ECHILD);
    CHECK_ERR(ipc_proc_wait(&p, IPC_FOREVER), -ECHILD);
    CHECK_ERR(ipc_proc_kill(&p, SIGTERM), -ESRCH);
    CHECK_ERR(ipc_proc_kill(&p, 0), -ESRCH);
    CHECK_ERR(ipc_proc_close(&p), 0);
    CHECK_ERR(ipc_proc_wait(&q, 0), -EAGAIN); /* still running */
    CHECK_ERR(ipc_proc_kill(&q, SIGKILL), 0);
    CHECK_OK(proc_finish(&q));
    CHECK_EQ(th_fd_count(), fds);
    CHECK(th_no_children());
}

GTEST(proc_no_parent_fd_leak, 10000) {
    char *argv[] = {(char *)"ls", (char *)"-1", (char *)"/proc/self/fd", NULL};
    ipc_spawn_opts o =
        spawn_opts(IPC_STDIO_NULL, IPC_STDIO_PIPE, IPC_STDIO_INHERIT, IPC_SPAWN_PATH);
    char buf[1024], *line, *save = NULL;
    int leak, n = 0, seen[3] = {0, 0, 0}, other = -1;
    ipc_proc p;
    /* descriptors without close-on-exec, one of them high */
    leak = open("/dev/null", O_RDONLY);
    CHECK(leak >= 0);
    CHECK(!th_is_cloexec(leak));
    CHECK_EQ(dup2(leak, 100), 100);
    CHECK(!th_is_cloexec(100));
    CHECK_ERR(ipc_proc_spawn(&p, "ls", argv, &o), 0);
    read_to_eof(p.out, buf, sizeof buf, __LINE__);
    check_exit(proc_finish(&p), 0, __LINE__);
    /* 0, 1, 2 and the one ls opens to read the directory; nothing else */
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int fd = atoi(line);
        n++;
        if (fd >= 0 && fd <= 2)
            seen[fd]++;
        else if (other < 0)
            other = fd;
        else
            th_fail(__FILE__, __LINE__, "the child had fds %d and %d open", other, fd);
    }
    CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
    CHECK(n <= 4);
    CHECK(other != 100);
    /* and the parent's own fds are untouched */
    CHECK(fd_open(leak) && fd_open(100));
    close(leak);
    close(100);
}

GTEST(proc_default_signals, 10000) {
    char *argv[] = {(char *)"sleep", (char *)"5", NULL};
    ipc_spawn_opts o =
        spawn_opts(IPC_STDIO_NULL, IPC_STDIO_NULL, IPC_STDIO_INHERIT, IPC_SPAWN_PATH);
    unsigned long long ign, blk;
    sigset_t set;
    ipc_proc p;
    int st;
    /* a parent that ignores SIGPIPE and SIGUSR1 and blocks SIGUSR2 and SIGPIPE */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGPIPE);
    CHECK_EQ(sigprocmask(SIG_BLOCK, &set, NULL), 0);
    if (!th_under_emulator()) CHECK(status_mask(getpid(), "SigIgn:") & SIGBIT(SIGPIPE));

    CHECK_ERR(ipc_proc_spawn(&p, "sleep", argv, &o), 0);
    wait_exec(p.pid, "sleep");
    ign = status_mask(p.pid, "SigIgn:");
    blk = status_mask(p.pid, "SigBlk:");
    if (ign & (SIGBIT(SIGPIPE) | SIGBIT(SIGUSR1)))
        th_fail(__FILE__, __LINE__, "the child ignores signals 0x%llx", ign);
    if (blk) th_fail(__FILE__, __LINE__, "the child blocks signals 0x%llx", blk);
    CHECK_ERR(ipc_proc_kill(&p, SIGKILL), 0);
    CHECK_OK(proc_finish(&p));

    /* by behaviour: a shell ignores for good what it inherited ignored, so SIGPIPE to
       itself kills it only if it arrived with the default disposition */
    sh_spawn(&p, &o, "kill -PIPE $$; echo survived", NULL, NULL);
    st = proc_finish(&p);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGPIPE)
        th_fail(__FILE__, __LINE__, "wait status 0x%x, want death by SIGPIPE", (unsigned)st);
}

GTEST(proc_process_group, 10000) {
    char *argv[] = {(char *)"sleep", (char *)"5", NULL};
    ipc_spawn_opts o = spawn_opts(IPC_STDIO_NULL, IPC_STDIO_NULL, IPC_STDIO_INHERIT,
                                  IPC_SPAWN_PATH | IPC_SPAWN_PGROUP);
    ipc_proc p, q;
    CHECK_ERR(ipc_proc_spawn(&p, "sleep", argv, &o), 0);
    o.flags = IPC_SPAWN_PATH;
    CHECK_ERR(ipc_proc_spawn(&q, "sleep", argv, &o), 0);
    wait_exec(p.pid, "sleep");
    wait_exec(q.pid, "sleep");
    CHECK_EQ(getpgid(p.pid), p.pid);     /* its own group */
    CHECK_EQ(getpgid(q.pid), getpgrp()); /* ours */
    /* the group can be signalled as a whole */
    CHECK_EQ(kill(-p.pid, SIGTERM), 0);
    CHECK_ERR(ipc_proc_kill(&q, SIGTERM), 0);
    CHECK(WIFSIGNALED(proc_finish(&p)));
    CHECK(WIFSIGNALED(proc_finish(&q)));
}

GTEST(proc_nonblock_flag, 10000) {
    char *argv[] = {(char *)"cat", NULL};
    ipc_spawn_opts o = spawn_opts(0, 0, 0, IPC_SPAWN_NONBLOCK);
    char buf[16];
    ipc_proc p;
    CHECK_ERR(ipc_proc_spawn(&p, "/bin/cat", argv, &o), 0);
    CHECK(th_is_nonblock(p.in) && th_is_nonblock(p.out) && th_is_nonblock(p.err));
    CHECK(th_is_cloexec(p.in) && th_is_cloexec(p.out) && th_is_cloexec(p.err));
    CHECK_EQ(read(p.out, buf, sizeof buf), -1); /* nothing yet, and no blocking */
    CHECK_EQ(errno, EAGAIN);
    CHECK_ERR(ipc_fd_write_all(p.in, "nb", 2, SEC, NULL), 2);
    CHECK_ERR(ipc_fd_close(&p.in), 0);
    read_to_eof(p.out, buf, sizeof buf, __LINE__);
    CHECK_STREQ(buf, "nb");
    check_exit(proc_finish(&p), 0, __LINE__);
}

GTEST(proc_bad_args, 10000) {
    char *argv[] = {(char *)"cat", NULL}, *empty[] = {NULL};
    int fds = th_fd_count(), i;
    ipc_spawn_opts o;
    ipc_proc p;
    CHECK_ERR(ipc_proc_spawn(NULL, "/bin/cat", argv, NULL), -EINVAL);
    for (i = 0; i < 12; i++) {
        const char *file = "/bin/cat";
        char *const *av = argv;
        o = spawn_opts(0, 0, 0, 0);
        switch (i) {
        case 0: file = NULL; break;
        case 1: av = NULL; break;
        case 2: av = empty; break;
        case 3: o.flags = 8; break;
        case 4: o.flags = ~0u; break;
        case 5: o.in = IPC_STDIO_STDOUT; break; /* 2>&1 is for stderr only */
        case 6: o.out = IPC_STDIO_STDOUT; break;
        case 7: o.in = -1; break;
        case 8: o.out = 4; break;
        case 9: o.err = 4; break;
        case 10: o.err = -1; break;
        default: o.in = 1000; break;
        }
        memset(&p, 0x55, sizeof p);
        if (ipc_proc_spawn(&p, file, av, &o) != -EINVAL)
            th_fail(__FILE__, __LINE__, "case %d was not -EINVAL", i);
        CHECK(p.pid == 0 && p.in == -1 && p.out == -1 && p.err == -1 && p.pidfd == -1);
    }
    CHECK_ERR(ipc_proc_wait(NULL, 0), -EINVAL);
    CHECK_ERR(ipc_proc_kill(NULL, SIGTERM), -EINVAL);
    CHECK_ERR(ipc_proc_close(NULL), -EINVAL);
    CHECK_EQ(th_fd_count(), fds);
    CHECK(th_no_children());
}

/* The child's pidfd becomes readable when it exits. */
GTEST(proc_pidfd_readable_on_exit, 10000) {
    ipc_spawn_opts o = spawn_opts(IPC_STDIO_PIPE, IPC_STDIO_NULL, IPC_STDIO_NULL, 0);
    ipc_proc p;
    sh_spawn(&p, &o, "read x", NULL, NULL);
    if (p.pidfd < 0) {
        ipc_proc_kill(&p, SIGKILL);
        proc_finish(&p);
        th_skip("no pidfd_open here (Linux < 5.3 or an emulator)");
    }
    CHECK_ERR(ipc_fd_wait(p.pidfd, POLLIN, 50 * MS), -ETIMEDOUT);
    CHECK_ERR(ipc_fd_write_all(p.in, "go\n", 3, SEC, NULL), 3);
    CHECK(ipc_fd_wait(p.pidfd, POLLIN, 5 * SEC) & POLLIN);
    check_exit(proc_finish(&p), 0, __LINE__);
}
