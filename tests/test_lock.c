/* _GNU_SOURCE for the F_OFD_* commands; set before harness.h pulls in system headers. */
#define _GNU_SOURCE 1
#include "harness.h"

/* tests/test_lock.c - section 15: file locks between real processes. OFD locks (the
   default), classic per-process fcntl locks (IPC_LOCK_POSIX) and flock() locks: conflicts,
   byte ranges, deadlines, conversion, query, the close-another-fd trap, release on death,
   pid files, and interop with Python's fcntl.lockf / fcntl.flock. */

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS      ((int64_t)1000000)
#define SEC     (1000 * MS)
#define JOIN_MS 10000

#define EX IPC_LOCK_EXCLUSIVE
#define SH IPC_LOCK_SHARED

/* ---- a temporary directory per test, removed whatever the body does ---- */

/* A test whose body runs in a child (a failed CHECK exits it) in th_dir. */
#define LTEST(name, timeout_ms) TEST_GUARDED(name, timeout_ms, 2000, th_in_tmpdir)

/* Create "<test dir>/name" holding 4 KiB and return its path; tests open it as they need. */
static const char *lk_file(const char *name) {
    static const char page[4096];
    const char *path = th_path(name);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, page, sizeof page), (ssize_t)sizeof page);
    close(fd);
    return path;
}

static int lk_open(const char *path) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    return fd;
}

static void lk_join_ok(pid_t pid) {
    int code = th_join(pid, JOIN_MS);
    if (code != 0) th_fail(__FILE__, __LINE__, "child %ld exited with %d", (long)pid, code);
}

/* ---- a process that holds a lock until told to let go ---- */

typedef struct lk_holder {
    pid_t pid;
    int go;  /* ours: one byte b makes it wait b * 10 ms, release and exit */
    int ack; /* ours: 'L' once it holds the lock, 'U' once it released it */
    /* what the child does */
    const char *path;
    unsigned flags;
    off_t start, len;
    int go_r, ack_w;
} lk_holder;

static void lk_holder_main(void *arg) {
    lk_holder *h = (lk_holder *)arg;
    unsigned char b = 0;
    int fd;
    close(h->go);
    close(h->ack);
    fd = lk_open(h->path);
    CHECK_ERR(ipc_lock_acquire(fd, h->flags, h->start, h->len, 0), 0);
    CHECK_EQ(write(h->ack_w, "L", 1), 1);
    CHECK_ERR(ipc_fd_read_exact(h->go_r, &b, 1, IPC_FOREVER, NULL), 1);
    th_sleep_ms(b * 10);
    CHECK_ERR(ipc_lock_release(fd, h->flags, h->start, h->len), 0);
    CHECK_EQ(write(h->ack_w, "U", 1), 1);
    close(fd);
}

/* Fork a holder of (flags, start, len) on path; returns once it holds the lock. */
static void lk_hold(lk_holder *h, const char *path, unsigned flags, off_t start, off_t len) {
    ipc_pipe go, ack;
    char c = 0;
    CHECK_ERR(ipc_pipe_open(&go, NULL), 0);
    CHECK_ERR(ipc_pipe_open(&ack, NULL), 0);
    h->path = path;
    h->flags = flags;
    h->start = start;
    h->len = len;
    h->go = go.wfd;
    h->go_r = go.rfd;
    h->ack = ack.rfd;
    h->ack_w = ack.wfd;
    h->pid = th_spawn(lk_holder_main, h);
    CHECK(h->pid > 0);
    CHECK_EQ(ipc_fd_close(&h->go_r), 0);
    CHECK_EQ(ipc_fd_close(&h->ack_w), 0);
    CHECK_ERR(ipc_fd_read_exact(h->ack, &c, 1, 10 * SEC, NULL), 1);
    CHECK_EQ(c, 'L');
}

/* Tell the holder to release after delay_ms (rounded to 10 ms). */
static void lk_let_go(lk_holder *h, int delay_ms) {
    unsigned char b = (unsigned char)(delay_ms / 10);
    CHECK_ERR(ipc_fd_write_all(h->go, &b, 1, 10 * SEC, NULL), 1);
}

/* Wait for the holder's release report and its exit. */
static void lk_holder_done(lk_holder *h) {
    char c = 0;
    CHECK_ERR(ipc_fd_read_exact(h->ack, &c, 1, 10 * SEC, NULL), 1);
    CHECK_EQ(c, 'U');
    lk_join_ok(h->pid);
    CHECK_EQ(ipc_fd_close(&h->go), 0);
    CHECK_EQ(ipc_fd_close(&h->ack), 0);
}

static void lk_release_holder(lk_holder *h) {
    lk_let_go(h, 0);
    lk_holder_done(h);
}

/* ---- a process that tries a lock once and reports ---- */

typedef struct lk_probe_req {
    const char *path;
    unsigned flags;
    off_t start, len;
    int *result;
} lk_probe_req;

static void lk_probe_main(void *arg) {
    lk_probe_req *q = (lk_probe_req *)arg;
    int fd = lk_open(q->path);
    *q->result = ipc_lock_acquire(fd, q->flags, q->start, q->len, 0);
    close(fd);
}

/* What ipc_lock_acquire(flags, start, len, 0) gives in another process, on its own open. */
static int lk_probe(const char *path, unsigned flags, off_t start, off_t len) {
    lk_probe_req q;
    int r;
    q.path = path;
    q.flags = flags;
    q.start = start;
    q.len = len;
    q.result = (int *)th_shared_map(sizeof(int));
    *q.result = 1; /* neither 0 nor an error: the child never reported */
    lk_join_ok(th_spawn(lk_probe_main, &q));
    r = *q.result;
    th_shared_unmap(q.result, sizeof(int));
    return r;
}

/* ---- conflicts between processes ---- */

LTEST(lock_exclusive_conflicts, 10000) {
    const char *f = lk_file("f");
    lk_holder h;
    int fd = lk_open(f);
    lk_hold(&h, f, EX, 0, 0);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_acquire(fd, SH, 0, 0, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 4095, 1, 0), -EAGAIN);
    CHECK_ERR(lk_probe(f, EX, 0, 0), -EAGAIN);
    CHECK_ERR(lk_probe(f, SH, 0, 0), -EAGAIN);
    lk_release_holder(&h);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, 0), 0);
    CHECK_ERR(lk_probe(f, EX, 0, 0), -EAGAIN); /* now we exclude the others */
    CHECK_ERR(ipc_lock_release(fd, EX, 0, 0), 0);
    CHECK_ERR(lk_probe(f, EX, 0, 0), 0);
    close(fd);
}

LTEST(lock_shared_vs_exclusive, 10000) {
    const char *f = lk_file("f");
    lk_holder h;
    int fd = lk_open(f);
    lk_hold(&h, f, SH, 0, 0);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_acquire(fd, SH, 0, 0, 0), 0); /* readers coexist */
    CHECK_ERR(lk_probe(f, SH, 0, 0), 0);             /* a third one too */
    CHECK_ERR(lk_probe(f, EX, 0, 0), -EAGAIN);
    lk_release_holder(&h);
    CHECK_ERR(lk_probe(f, EX, 0, 0), -EAGAIN); /* our shared lock still stands */
    CHECK_ERR(lk_probe(f, SH, 0, 0), 0);
    CHECK_ERR(ipc_lock_release(fd, SH, 0, 0), 0);
    CHECK_ERR(lk_probe(f, EX, 0, 0), 0);
    close(fd);
}

LTEST(lock_byte_ranges, 10000) {
    const char *f = lk_file("f");
    lk_holder h;
    int fd = lk_open(f);
    lk_hold(&h, f, EX, 100, 100);                        /* bytes 100..199 */
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 100, 0), 0);   /* just below */
    CHECK_ERR(ipc_lock_acquire(fd, EX, 200, 100, 0), 0); /* just above */
    CHECK_ERR(ipc_lock_acquire(fd, EX, 300, 0, 0), 0);   /* from 300 to the end */
    CHECK_ERR(lk_probe(f, EX, 99, 2), -EAGAIN);          /* overlaps the first byte */
    CHECK_ERR(lk_probe(f, EX, 199, 1), -EAGAIN);         /* the last byte */
    CHECK_ERR(lk_probe(f, SH, 150, 1), -EAGAIN);
    CHECK_ERR(ipc_lock_release(fd, 0, 0, 0), 0);            /* drop all of ours; type not needed */
    CHECK_ERR(ipc_lock_acquire(fd, EX, 50, 0, 0), -EAGAIN); /* to the end covers 100..199 */
    CHECK_ERR(ipc_lock_acquire(fd, SH, 0, 100, 0), 0);
    CHECK_ERR(ipc_lock_acquire(fd, SH, 200, 0, 0), 0);
    CHECK_ERR(lk_probe(f, EX, 150, 100), -EAGAIN); /* the holder's and then ours */
    lk_release_holder(&h);
    CHECK_ERR(lk_probe(f, EX, 100, 100), 0);
    CHECK_ERR(lk_probe(f, EX, 100, 101), -EAGAIN);
    CHECK_ERR(ipc_lock_release(fd, 0, 0, 0), 0);

    /* len 0 reaches past the current end, however the file grows. */
    lk_hold(&h, f, EX, 8192, 0);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 1 << 30, 1, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 8191, 2, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_acquire(fd, SH, 100000, 0, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 8192, 0), 0);
    lk_release_holder(&h);
    close(fd);
}

/* ---- deadlines ---- */

LTEST(lock_try_and_timeout, 10000) {
    const char *f = lk_file("f");
    lk_holder h;
    int fd = lk_open(f);
    lk_hold(&h, f, EX, 0, 0);
    CHECK_TIMED(ipc_lock_acquire(fd, EX, 0, 0, 0), -EAGAIN, 0);
    CHECK_TIMED(ipc_lock_acquire(fd, EX, 0, 0, 50 * MS), -ETIMEDOUT, 50);
    CHECK_TIMED(ipc_lock_acquire(fd, SH, 10, 10, 50 * MS), -ETIMEDOUT, 50);
    CHECK_TIMED(ipc_lock_acquire(fd, EX | IPC_LOCK_POSIX, 0, 0, 50 * MS), -ETIMEDOUT, 50);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, -2), -EINVAL);
    lk_release_holder(&h);
    close(fd);
}

/* IPC_FOREVER blocks in the kernel; a finite deadline polls. Both get the lock once the
   holder lets go while they wait. */
LTEST(lock_wait_until_released, 10000) {
    const char *f = lk_file("f");
    lk_holder h;
    int fd = lk_open(f);
    int64_t t0;
    lk_hold(&h, f, EX, 0, 0);
    t0 = ipc_time_now();
    lk_let_go(&h, 100);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, IPC_FOREVER), 0);
    CHECK(ipc_time_now() - t0 >= 50 * MS); /* it did wait for the release */
    lk_holder_done(&h);
    CHECK_ERR(lk_probe(f, SH, 0, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_release(fd, EX, 0, 0), 0);

    lk_hold(&h, f, SH, 0, 0);
    t0 = ipc_time_now();
    lk_let_go(&h, 100);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, 5 * SEC), 0);
    CHECK(ipc_time_now() - t0 >= 50 * MS);
    lk_holder_done(&h);
    CHECK_ERR(lk_probe(f, SH, 0, 0), -EAGAIN);
    close(fd);
}

LTEST(lock_wait_signal_storm, 10000) {
    const char *f = lk_file("f");
    lk_holder h;
    int fd = lk_open(f);
    lk_hold(&h, f, EX, 0, 0);
    th_storm_start();
    CHECK_TIMED(ipc_lock_acquire(fd, EX, 0, 0, 50 * MS), -ETIMEDOUT, 50);
    CHECK_TIMED(ipc_lock_acquire(fd, EX | IPC_LOCK_POSIX, 0, 0, 50 * MS), -ETIMEDOUT, 50);
    lk_let_go(&h, 100); /* the kernel wait sees EINTR again and again, and goes on */
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, IPC_FOREVER), 0);
    CHECK(th_storm_stop() > 10);
    lk_holder_done(&h);
    close(fd);
}

/* ---- OFD semantics within one process ---- */

LTEST(lock_ofd_same_process, 10000) {
    const char *f = lk_file("f");
    int a = lk_open(f), b = lk_open(f), c;
    CHECK_ERR(ipc_lock_acquire(a, EX, 0, 0, 0), 0);
    /* Another open of the same file is another owner, even in this process. */
    CHECK_ERR(ipc_lock_acquire(b, EX, 0, 0, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_acquire(b, SH, 0, 10, 0), -EAGAIN);
    CHECK_TIMED(ipc_lock_acquire(b, EX, 0, 0, 50 * MS), -ETIMEDOUT, 50);
    /* A dup shares the open file description, so it shares the lock. */
    c = dup(a);
    CHECK(c >= 0);
    CHECK_ERR(ipc_lock_acquire(c, EX, 0, 0, 0), 0);
    close(c); /* closing a dup keeps the lock: the description is still open through a */
    CHECK_ERR(ipc_lock_acquire(b, EX, 0, 0, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_release(a, EX, 0, 0), 0);
    CHECK_ERR(ipc_lock_acquire(b, EX, 0, 0, 0), 0);
    CHECK_ERR(ipc_lock_acquire(a, SH, 0, 0, 0), -EAGAIN);
    close(b); /* the last fd of b's description: its lock goes */
    CHECK_ERR(ipc_lock_acquire(a, SH, 0, 0, 0), 0);
    close(a);

    /* Classic locks belong to the process: its two opens never conflict. */
    a = lk_open(f);
    b = lk_open(f);
    CHECK_ERR(ipc_lock_acquire(a, EX | IPC_LOCK_POSIX, 0, 0, 0), 0);
    CHECK_ERR(ipc_lock_acquire(b, EX | IPC_LOCK_POSIX, 0, 0, 0), 0);
    CHECK_ERR(lk_probe(f, SH | IPC_LOCK_POSIX, 0, 0), -EAGAIN);
    close(a);
    close(b);
}

LTEST(lock_release_ranges, 10000) {
    const char *f = lk_file("f");
    int fd = lk_open(f);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 100, 0), 0);
    CHECK_ERR(ipc_lock_release(fd, EX, 40, 20), 0); /* a hole in the middle */
    CHECK_ERR(lk_probe(f, EX, 40, 20), 0);
    CHECK_ERR(lk_probe(f, EX, 39, 1), -EAGAIN);
    CHECK_ERR(lk_probe(f, EX, 60, 1), -EAGAIN);
    CHECK_ERR(ipc_lock_release(fd, EX, 1000, 10), 0); /* nothing held there: still 0 */
    CHECK_ERR(ipc_lock_release(fd, EX, 0, 0), 0);
    CHECK_ERR(lk_probe(f, EX, 0, 0), 0);
    CHECK_ERR(ipc_lock_release(fd, EX, 0, 0), 0); /* twice is harmless */
    close(fd);
}

LTEST(lock_convert, 10000) {
    const char *f = lk_file("f");
    lk_holder h;
    int fd = lk_open(f);
    CHECK_ERR(ipc_lock_acquire(fd, SH, 0, 0, 0), 0);
    lk_hold(&h, f, SH, 0, 0);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, 0), -EAGAIN); /* another reader is there */
    CHECK_ERR(lk_probe(f, SH, 0, 0), 0);                   /* and we still read-lock */
    lk_release_holder(&h);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, 0), 0); /* upgrade in place */
    CHECK_ERR(lk_probe(f, SH, 0, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_acquire(fd, SH, 0, 0, 0), 0); /* and down again */
    CHECK_ERR(lk_probe(f, SH, 0, 0), 0);
    CHECK_ERR(lk_probe(f, EX, 0, 0), -EAGAIN);
    /* Converting part of the range splits it. */
    CHECK_ERR(ipc_lock_acquire(fd, EX, 10, 10, 0), 0);
    CHECK_ERR(lk_probe(f, SH, 0, 10), 0);
    CHECK_ERR(lk_probe(f, SH, 15, 1), -EAGAIN);
    close(fd);
}

/* ---- query ---- */

LTEST(lock_query, 10000) {
    const char *f = lk_file("f");
    ipc_lock_info li;
    lk_holder h;
    int fd = lk_open(f);
    CHECK_ERR(ipc_lock_query(fd, EX, 0, 0, &li), 0); /* free */

    lk_hold(&h, f, EX, 10, 20);
    memset(&li, 0x5a, sizeof li);
    CHECK_ERR(ipc_lock_query(fd, SH, 0, 0, &li), 1);
    CHECK_EQ(li.type, EX);
    CHECK_EQ(li.start, 10);
    CHECK_EQ(li.len, 20);
    CHECK_EQ(li.pid, -1); /* an OFD lock has no owning process */
    CHECK_ERR(ipc_lock_query(fd, EX, 29, 1, &li), 1);
    CHECK_ERR(ipc_lock_query(fd, EX, 30, 0, &li), 0); /* past it */
    CHECK_ERR(ipc_lock_query(fd, EX, 0, 10, &li), 0); /* before it */
    CHECK_ERR(ipc_lock_query(fd, EX, 0, 0, NULL), 1); /* holder may be NULL */
    /* A classic query sees the OFD lock too, with the same pid -1. */
    CHECK_ERR(ipc_lock_query(fd, EX | IPC_LOCK_POSIX, 0, 0, &li), 1);
    CHECK_EQ(li.pid, -1);
    lk_release_holder(&h);
    CHECK_ERR(ipc_lock_query(fd, EX, 0, 0, &li), 0);

    lk_hold(&h, f, SH, 0, 0);
    CHECK_ERR(ipc_lock_query(fd, SH, 0, 0, &li), 0); /* readers do not conflict */
    CHECK_ERR(ipc_lock_query(fd, EX, 0, 0, &li), 1);
    CHECK_EQ(li.type, SH);
    CHECK_EQ(li.start, 0);
    CHECK_EQ(li.len, 0);
    lk_release_holder(&h);

    /* A classic lock names its process, whichever query kind asks. */
    lk_hold(&h, f, EX | IPC_LOCK_POSIX, 0, 100);
    CHECK_ERR(ipc_lock_query(fd, EX, 0, 0, &li), 1);
    CHECK_EQ(li.type, EX);
    CHECK_EQ(li.pid, h.pid);
    CHECK_EQ(li.len, 100);
    CHECK_ERR(ipc_lock_query(fd, SH | IPC_LOCK_POSIX, 50, 1, &li), 1);
    CHECK_EQ(li.pid, h.pid);
    lk_release_holder(&h);

    /* Our own locks never conflict with us: a query on the holding fd says free. */
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, 0), 0);
    CHECK_ERR(ipc_lock_query(fd, EX, 0, 0, &li), 0);

    CHECK_ERR(ipc_lock_query(fd, EX | IPC_LOCK_FLOCK, 0, 0, &li), -EINVAL);
    CHECK_ERR(ipc_lock_query(fd, 0, 0, 0, &li), -EINVAL);
    CHECK_ERR(ipc_lock_query(-1, EX, 0, 0, &li), -EBADF);
    close(fd);
}

/* ---- the classic-lock trap ---- */

/* With classic fcntl locks, closing ANY fd of the file drops every lock the process holds
   on it: a library that merely opens and closes the file (to read a config, say) silently
   unlocks it. The OFD default is immune. */
LTEST(lock_posix_close_trap, 10000) {
    const char *f = lk_file("f");
    int fd = lk_open(f), other;
    CHECK_ERR(ipc_lock_acquire(fd, EX | IPC_LOCK_POSIX, 0, 0, 0), 0);
    CHECK_ERR(lk_probe(f, EX, 0, 0), -EAGAIN);
    other = lk_open(f);
    close(other);
    CHECK_ERR(lk_probe(f, EX, 0, 0), 0); /* the trap: our lock is gone */
    CHECK_ERR(lk_probe(f, EX | IPC_LOCK_POSIX, 0, 0), 0);
    close(fd);

    fd = lk_open(f);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, 0), 0);
    CHECK_ERR(lk_probe(f, EX, 0, 0), -EAGAIN);
    other = lk_open(f);
    close(other);
    CHECK_ERR(lk_probe(f, EX, 0, 0), -EAGAIN); /* an OFD lock stays */
    CHECK_ERR(lk_probe(f, SH | IPC_LOCK_POSIX, 0, 0), -EAGAIN);
    close(fd);
    CHECK_ERR(lk_probe(f, EX, 0, 0), 0); /* closing its own description releases it */
}

/* ---- flock ---- */

LTEST(lock_flock, 10000) {
    const char *f = lk_file("f");
    unsigned FL = IPC_LOCK_FLOCK;
    lk_holder h;
    int fd = lk_open(f), b;
    CHECK_ERR(ipc_lock_acquire(fd, EX | FL, 1, 0, 0), -EINVAL); /* whole file only */
    CHECK_ERR(ipc_lock_acquire(fd, EX | FL, 0, 1, 0), -EINVAL);
    CHECK_ERR(ipc_lock_release(fd, FL, 0, 10), -EINVAL);

    lk_hold(&h, f, EX | FL, 0, 0);
    CHECK_ERR(ipc_lock_acquire(fd, EX | FL, 0, 0, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_acquire(fd, SH | FL, 0, 0, 0), -EAGAIN);
    CHECK_TIMED(ipc_lock_acquire(fd, SH | FL, 0, 0, 50 * MS), -ETIMEDOUT, 50);
    /* flock and fcntl locks live apart on Linux: neither sees the other. */
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, 0), 0);
    CHECK_ERR(ipc_lock_query(fd, EX, 0, 0, NULL), 0);
    CHECK_ERR(ipc_lock_release(fd, EX, 0, 0), 0);
    CHECK_ERR(ipc_lock_acquire(fd, EX | IPC_LOCK_POSIX, 0, 0, 0), 0);
    CHECK_ERR(ipc_lock_release(fd, IPC_LOCK_POSIX, 0, 0), 0);
    lk_let_go(&h, 100);
    CHECK_ERR(ipc_lock_acquire(fd, EX | FL, 0, 0, 5 * SEC), 0);
    lk_holder_done(&h);
    CHECK_ERR(lk_probe(f, SH | FL, 0, 0), -EAGAIN);

    /* Shared flocks coexist; two opens in one process are two owners. */
    CHECK_ERR(ipc_lock_acquire(fd, SH | FL, 0, 0, 0), 0);
    CHECK_ERR(lk_probe(f, SH | FL, 0, 0), 0);
    b = lk_open(f);
    CHECK_ERR(ipc_lock_acquire(b, SH | FL, 0, 0, 0), 0);
    CHECK_ERR(ipc_lock_acquire(b, EX | FL, 0, 0, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_release(fd, FL, 0, 0), 0);
    CHECK_ERR(ipc_lock_acquire(b, EX | FL, 0, 0, 0), 0); /* converts, now alone */
    CHECK_ERR(lk_probe(f, SH | FL, 0, 0), -EAGAIN);
    close(b);
    CHECK_ERR(lk_probe(f, EX | FL, 0, 0), 0);
    close(fd);
}

/* ---- death releases ---- */

typedef struct lk_wait_req {
    const char *path;
    unsigned flags;
    int *result;
} lk_wait_req;

static void lk_waiter_main(void *arg) {
    lk_wait_req *w = (lk_wait_req *)arg;
    int fd = lk_open(w->path);
    __atomic_store_n(w->result, 1, __ATOMIC_RELEASE); /* about to wait */
    *w->result = ipc_lock_acquire(fd, w->flags, 0, 0, IPC_FOREVER);
    close(fd);
}

static void lk_killed_case(const char *f, unsigned flags) {
    int *res = (int *)th_shared_map(sizeof(int));
    lk_wait_req w;
    lk_holder h;
    pid_t waiter;
    int64_t dl = ipc_deadline_make(5 * SEC);
    *res = 2;
    lk_hold(&h, f, flags, 0, 0);
    w.path = f;
    w.flags = flags;
    w.result = res;
    waiter = th_spawn(lk_waiter_main, &w);
    CHECK(waiter > 0);
    while (__atomic_load_n(res, __ATOMIC_ACQUIRE) == 2) {
        CHECK(ipc_deadline_left(dl) > 0);
        th_sleep_ms(1);
    }
    th_sleep_ms(20); /* let it block; the result is the same if it has not yet */
    CHECK_EQ(__atomic_load_n(res, __ATOMIC_ACQUIRE), 1);
    CHECK_EQ(kill(h.pid, SIGKILL), 0);
    CHECK_EQ(th_join(h.pid, JOIN_MS), 128 + SIGKILL);
    lk_join_ok(waiter);
    CHECK_EQ(*res, 0);
    close(h.go);
    close(h.ack);
    th_shared_unmap(res, sizeof(int));
}

LTEST(lock_holder_killed, 10000) {
    const char *f = lk_file("f");
    lk_killed_case(f, EX);
    lk_killed_case(f, EX | IPC_LOCK_POSIX);
    lk_killed_case(f, EX | IPC_LOCK_FLOCK);
    CHECK_ERR(lk_probe(f, EX, 0, 0), 0);
}

/* ---- classic locks: deadlock detection ---- */

typedef struct lk_dl_req {
    const char *path;
    int ack_w;
    int *result;
} lk_dl_req;

/* Holds byte 1, then waits for byte 0 without limit. */
static void lk_dl_child(void *arg) {
    lk_dl_req *q = (lk_dl_req *)arg;
    int fd = lk_open(q->path);
    CHECK_ERR(ipc_lock_acquire(fd, EX | IPC_LOCK_POSIX, 1, 1, 0), 0);
    CHECK_EQ(write(q->ack_w, "L", 1), 1);
    *q->result = ipc_lock_acquire(fd, EX | IPC_LOCK_POSIX, 0, 1, IPC_FOREVER);
    close(fd); /* a classic lock goes with any close, and with the exit */
}

/* Two processes each hold a byte and wait for the other's: the kernel breaks the cycle
   by failing one wait with -EDEADLK; the other then gets its lock. Which one fails
   depends on who waited first, so the test accepts either, but exactly one. */
LTEST(lock_posix_deadlock, 10000) {
    const char *f = lk_file("f");
    int *res = (int *)th_shared_map(sizeof(int));
    int fd = lk_open(f), mine;
    ipc_pipe ack;
    lk_dl_req q;
    pid_t pid;
    char c = 0;
    *res = 1;
    CHECK_ERR(ipc_lock_acquire(fd, EX | IPC_LOCK_POSIX, 0, 1, 0), 0);
    CHECK_ERR(ipc_pipe_open(&ack, NULL), 0);
    q.path = f;
    q.ack_w = ack.wfd;
    q.result = res;
    pid = th_spawn(lk_dl_child, &q);
    CHECK(pid > 0);
    CHECK_EQ(ipc_fd_close(&ack.wfd), 0);
    CHECK_ERR(ipc_fd_read_exact(ack.rfd, &c, 1, 10 * SEC, NULL), 1);
    th_sleep_ms(20); /* most likely the child waits by now; either order is checked */
    mine = ipc_lock_acquire(fd, EX | IPC_LOCK_POSIX, 1, 1, IPC_FOREVER);
    if (mine == -EDEADLK) /* let the child have byte 0 */
        CHECK_ERR(ipc_lock_release(fd, IPC_LOCK_POSIX, 0, 1), 0);
    else
        CHECK_ERR(mine, 0);
    lk_join_ok(pid);
    if (mine == -EDEADLK)
        CHECK_ERR(*res, 0);
    else
        CHECK_ERR(*res, -EDEADLK);
    /* OFD locks have no owner process, so the kernel does not detect their cycles: a
       finite deadline is the way out there, and it reports -ETIMEDOUT. */
    close(fd);
    ipc_pipe_close(&ack);
    th_shared_unmap(res, sizeof(int));
}

/* ---- bad arguments ---- */

LTEST(lock_bad_args, 10000) {
    const char *f = lk_file("f");
    int fd = lk_open(f), fds, ro;
    fds = th_fd_count();
    CHECK_ERR(ipc_lock_acquire(-1, EX, 0, 0, 0), -EBADF);
    CHECK_ERR(ipc_lock_acquire(999, EX, 0, 0, 0), -EBADF);
    CHECK_ERR(ipc_lock_acquire(-1, EX | IPC_LOCK_FLOCK, 0, 0, 0), -EBADF);
    CHECK_ERR(ipc_lock_acquire(-1, EX, 0, 0, IPC_FOREVER), -EBADF);
    CHECK_ERR(ipc_lock_release(-1, EX, 0, 0), -EBADF);
    CHECK_ERR(ipc_lock_acquire(fd, EX | IPC_LOCK_POSIX | IPC_LOCK_FLOCK, 0, 0, 0), -EINVAL);
    CHECK_ERR(ipc_lock_release(fd, IPC_LOCK_POSIX | IPC_LOCK_FLOCK, 0, 0), -EINVAL);
    CHECK_ERR(ipc_lock_query(fd, EX | IPC_LOCK_POSIX | IPC_LOCK_FLOCK, 0, 0, NULL), -EINVAL);
    CHECK_ERR(ipc_lock_acquire(fd, EX, -1, 0, 0), -EINVAL);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, -1, 0), -EINVAL);
    CHECK_ERR(ipc_lock_release(fd, EX, -5, 1), -EINVAL);
    CHECK_ERR(ipc_lock_release(fd, EX, 0, -5), -EINVAL);
    CHECK_ERR(ipc_lock_query(fd, EX, -1, 0, NULL), -EINVAL);
    CHECK_ERR(ipc_lock_query(fd, EX, 0, -1, NULL), -EINVAL);
    CHECK_ERR(ipc_lock_acquire(fd, 0, 0, 0, 0), -EINVAL); /* no type */
    CHECK_ERR(ipc_lock_acquire(fd, IPC_LOCK_POSIX, 0, 0, 0), -EINVAL);
    CHECK_ERR(ipc_lock_acquire(fd, IPC_LOCK_FLOCK, 0, 0, 0), -EINVAL);
    CHECK_ERR(ipc_lock_acquire(fd, SH | EX, 0, 0, 0), -EINVAL); /* both types */
    CHECK_ERR(ipc_lock_acquire(fd, EX | 16u, 0, 0, 0), -EINVAL);
    CHECK_ERR(ipc_lock_acquire(fd, EX | 0x80000000u, 0, 0, 0), -EINVAL);
    CHECK_ERR(ipc_lock_release(fd, 16u, 0, 0), -EINVAL);
    CHECK_ERR(ipc_lock_query(fd, SH | 64u, 0, 0, NULL), -EINVAL);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, -2), -EINVAL);
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, INT64_MIN), -EINVAL);
    /* A write lock needs a descriptor open for writing (the kernel's EBADF). */
    ro = open(f, O_RDONLY | O_CLOEXEC);
    CHECK(ro >= 0);
    CHECK_ERR(ipc_lock_acquire(ro, EX, 0, 0, 0), -EBADF);
    CHECK_ERR(ipc_lock_acquire(ro, SH, 0, 0, 0), 0);
    close(ro);
    /* Nothing was taken by any failed call. */
    CHECK_ERR(lk_probe(f, EX, 0, 0), 0);
    CHECK_EQ(th_fd_count(), fds);
    close(fd);
}

/* ---- pid files ---- */

static int lk_read_pid(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    CHECK(fd >= 0);
    n = read(fd, buf, cap - 1);
    CHECK(n >= 0);
    buf[n] = 0;
    close(fd);
    return (int)n;
}

static void lk_pidfile_check(const char *path, pid_t pid) {
    char want[32], got[64];
    snprintf(want, sizeof want, "%ld\n", (long)pid);
    lk_read_pid(path, got, sizeof got);
    if (strcmp(got, want) != 0)
        th_fail(__FILE__, __LINE__, "pid file holds \"%s\", want \"%s\"", got, want);
}

typedef struct lk_pid_req {
    const char *path;
    int go_r, ack_w;
} lk_pid_req;

static void lk_pid_instance(void *arg) {
    lk_pid_req *q = (lk_pid_req *)arg;
    pid_t h = 12345;
    char c;
    int fd = ipc_lock_pidfile(q->path, &h);
    CHECK_OK(fd);
    CHECK_EQ(write(q->ack_w, "P", 1), 1);
    (void)ipc_fd_read_exact(q->go_r, &c, 1, IPC_FOREVER, NULL); /* killed while here */
}

typedef struct lk_busy_req {
    const char *path;
    pid_t want;
} lk_busy_req;

static void lk_pid_second(void *arg) {
    lk_busy_req *q = (lk_busy_req *)arg;
    pid_t h = 0;
    int fds = th_fd_count();
    CHECK_ERR(ipc_lock_pidfile(q->path, &h), -EBUSY);
    CHECK_EQ(h, q->want);
    CHECK_ERR(ipc_lock_pidfile(q->path, NULL), -EBUSY);
    CHECK_EQ(th_fd_count(), fds);
}

LTEST(lock_pidfile, 10000) {
    const char *path = th_path("app.pid");
    ipc_pipe go, ack;
    lk_pid_req q;
    lk_busy_req b;
    pid_t first, h;
    char c = 0;
    int fd, fds, flags;
    struct stat st;

    CHECK_ERR(ipc_pipe_open(&go, NULL), 0);
    CHECK_ERR(ipc_pipe_open(&ack, NULL), 0);
    q.path = path;
    q.go_r = go.rfd;
    q.ack_w = ack.wfd;
    first = th_spawn(lk_pid_instance, &q);
    CHECK(first > 0);
    CHECK_EQ(ipc_fd_close(&ack.wfd), 0);
    CHECK_ERR(ipc_fd_read_exact(ack.rfd, &c, 1, 10 * SEC, NULL), 1);
    lk_pidfile_check(path, first);
    CHECK_EQ(lstat(path, &st), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & 0133, 0); /* 0644 at most: nobody else may write it */

    /* A second instance, in this process and in another. */
    fds = th_fd_count();
    h = 0;
    CHECK_ERR(ipc_lock_pidfile(path, &h), -EBUSY);
    CHECK_EQ(h, first);
    CHECK_EQ(th_fd_count(), fds);
    b.path = path;
    b.want = first;
    lk_join_ok(th_spawn(lk_pid_second, &b));
    lk_pidfile_check(path, first); /* the losers wrote nothing */

    /* The first one crashes: its file stays, unlocked, and is taken over. */
    CHECK_EQ(kill(first, SIGKILL), 0);
    CHECK_EQ(th_join(first, JOIN_MS), 128 + SIGKILL);
    lk_pidfile_check(path, first);
    fd = open(path, O_WRONLY | O_CLOEXEC); /* a longer stale content must not show through */
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "2147483647999\n", 14), 14);
    close(fd);
    h = 777;
    fd = ipc_lock_pidfile(path, &h);
    CHECK_OK(fd);
    flags = fcntl(fd, F_GETFD);
    CHECK(flags >= 0 && (flags & FD_CLOEXEC));
    lk_pidfile_check(path, getpid()); /* exactly: the stale tail was cut */
    b.want = getpid();
    lk_join_ok(th_spawn(lk_pid_second, &b));
    /* A second open in this very process is another owner: busy as well. */
    h = 0;
    CHECK_ERR(ipc_lock_pidfile(path, &h), -EBUSY);
    CHECK_EQ(h, getpid());
    close(fd);
    /* Closed: free again, for anyone. */
    fd = ipc_lock_pidfile(path, NULL);
    CHECK_OK(fd);
    close(fd);
    ipc_pipe_close(&go);
    ipc_pipe_close(&ack);
}

LTEST(lock_pidfile_bad_paths, 10000) {
    const char *target = th_path("target.pid"), *link = th_path("link.pid");
    const char *dir = th_path("adir"), *fifo = th_path("fifo.pid");
    pid_t h;
    int fds = th_fd_count(), r;
    struct stat st;

    h = 99;
    CHECK_ERR(ipc_lock_pidfile(NULL, &h), -EINVAL);
    CHECK_EQ(h, 0);
    CHECK_ERR(ipc_lock_pidfile("", &h), -EINVAL);
    CHECK_ERR(ipc_lock_pidfile(NULL, NULL), -EINVAL);

    /* A symlink planted at the path is refused, dangling or not; nothing is created. */
    CHECK_EQ(symlink(target, link), 0);
    CHECK_ERR(ipc_lock_pidfile(link, &h), -ELOOP);
    CHECK(lstat(target, &st) != 0);
    CHECK_EQ(close(open(target, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644)), 0);
    CHECK_ERR(ipc_lock_pidfile(link, &h), -ELOOP);
    CHECK_EQ(lstat(target, &st), 0);
    CHECK_EQ(st.st_size, 0); /* untouched */

    CHECK_EQ(mkdir(dir, 0700), 0);
    r = ipc_lock_pidfile(dir, &h);
    if (r != -EISDIR && r != -EINVAL)
        th_fail(__FILE__, __LINE__, "a directory gave %d (%s)", r, ipc_strerror(r));
    /* Not a regular file: refused, and opening it did not block. */
    CHECK_EQ(mkfifo(fifo, 0600), 0);
    CHECK_ERR(ipc_lock_pidfile(fifo, &h), -EINVAL);
    CHECK_ERR(ipc_lock_pidfile(th_path("no/such/dir.pid"), &h), -ENOENT);
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- interop with Python's fcntl module ---- */

static const char *lk_python(void) {
    if (access("/usr/bin/python3", X_OK) != 0) th_skip("no /usr/bin/python3");
    return "/usr/bin/python3";
}

/* Holds fcntl.lockf (a classic POSIX lock) or fcntl.flock on argv[1] and prints
   "locked PID" once it does; lets go when its stdin ends. */
static const char lk_py_hold[] = "import fcntl, os, sys\n"
                                 "f = open(sys.argv[1], 'r+')\n"
                                 "if sys.argv[2] == 'lockf':\n"
                                 "    fcntl.lockf(f, fcntl.LOCK_EX)\n"
                                 "else:\n"
                                 "    fcntl.flock(f, fcntl.LOCK_EX)\n"
                                 "sys.stdout.write('locked %d\\n' % os.getpid())\n"
                                 "sys.stdout.flush()\n"
                                 "sys.stdin.read()\n";

/* Tries a non-blocking lock and prints "free" or "busy ERRNO". */
static const char lk_py_try[] = "import fcntl, sys\n"
                                "f = open(sys.argv[1], 'r+')\n"
                                "k = sys.argv[2]\n"
                                "try:\n"
                                "    if k == 'lockf':\n"
                                "        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
                                "    elif k == 'lockf_sh':\n"
                                "        fcntl.lockf(f, fcntl.LOCK_SH | fcntl.LOCK_NB)\n"
                                "    else:\n"
                                "        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
                                "    print('free')\n"
                                "except OSError as e:\n"
                                "    print('busy %d' % e.errno)\n";

static void lk_py_spawn(ipc_proc *p, const char *script, const char *path, const char *kind) {
    char *argv[6];
    ipc_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.err = IPC_STDIO_INHERIT;
    argv[0] = (char *)"python3";
    argv[1] = (char *)"-c";
    argv[2] = (char *)script;
    argv[3] = (char *)path;
    argv[4] = (char *)kind;
    argv[5] = NULL;
    CHECK_ERR(ipc_proc_spawn(p, lk_python(), argv, &o), 0);
}

/* One line from fd (without its newline) within 10 s. */
static void lk_read_line(int fd, char *buf, size_t cap) {
    int64_t dl = ipc_deadline_make(10 * SEC);
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = ipc_fd_read_some(fd, &c, 1, ipc_deadline_left(dl));
        if (r < 0)
            th_fail(__FILE__, __LINE__, "reading a line after \"%.*s\": %s", (int)n, buf,
                    ipc_strerror((int)r));
        if (c == '\n') break;
        CHECK(n + 1 < cap);
        buf[n++] = c;
    }
    buf[n] = 0;
}

static void lk_py_finish(ipc_proc *p) {
    int st = ipc_proc_wait(p, 10 * SEC);
    CHECK_OK(st);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        th_fail(__FILE__, __LINE__, "python3 ended with status 0x%x", st);
    CHECK_ERR(ipc_proc_close(p), 0);
}

/* What Python's non-blocking attempt says: "free" or "busy ERRNO". */
static void lk_py_try_run(const char *path, const char *kind, char *out, size_t cap) {
    ipc_proc p;
    lk_py_spawn(&p, lk_py_try, path, kind);
    CHECK_EQ(ipc_fd_close(&p.in), 0);
    lk_read_line(p.out, out, cap);
    lk_py_finish(&p);
}

static void lk_expect_busy(const char *path, const char *kind) {
    char line[64];
    lk_py_try_run(path, kind, line, sizeof line);
    if (strcmp(line, "busy 11") != 0 && strcmp(line, "busy 13") != 0) /* EAGAIN or EACCES */
        th_fail(__FILE__, __LINE__, "python %s: \"%s\", want busy", kind, line);
}

static void lk_expect_free(const char *path, const char *kind) {
    char line[64];
    lk_py_try_run(path, kind, line, sizeof line);
    if (strcmp(line, "free") != 0)
        th_fail(__FILE__, __LINE__, "python %s: \"%s\", want free", kind, line);
}

LTEST(lock_python_lockf_holds, 15000) {
    const char *f = lk_file("f");
    char line[64], want[64];
    ipc_lock_info li;
    ipc_proc p;
    int fd = lk_open(f);
    lk_py_spawn(&p, lk_py_hold, f, "lockf");
    lk_read_line(p.out, line, sizeof line);
    snprintf(want, sizeof want, "locked %ld", (long)p.pid);
    if (strcmp(line, want) != 0) th_fail(__FILE__, __LINE__, "python said \"%s\"", line);
    /* OFD and classic locks conflict with each other. */
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_acquire(fd, SH, 100, 1, 0), -EAGAIN);
    CHECK_TIMED(ipc_lock_acquire(fd, EX, 0, 0, 50 * MS), -ETIMEDOUT, 50);
    CHECK_ERR(ipc_lock_acquire(fd, EX | IPC_LOCK_POSIX, 0, 0, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_query(fd, SH, 0, 0, &li), 1);
    CHECK_EQ(li.type, EX);
    CHECK_EQ(li.start, 0);
    CHECK_EQ(li.len, 0);
    CHECK_EQ(li.pid, p.pid);
    /* fcntl and flock locks are separate: Python's lockf does not stop a flock. */
    CHECK_ERR(ipc_lock_acquire(fd, EX | IPC_LOCK_FLOCK, 0, 0, 0), 0);
    CHECK_ERR(ipc_lock_release(fd, IPC_LOCK_FLOCK, 0, 0), 0);
    CHECK_EQ(ipc_fd_close(&p.in), 0); /* Python lets go and exits */
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, 5 * SEC), 0);
    lk_py_finish(&p);
    close(fd);
}

LTEST(lock_python_flock_holds, 15000) {
    const char *f = lk_file("f");
    char line[64];
    ipc_proc p;
    int fd = lk_open(f);
    lk_py_spawn(&p, lk_py_hold, f, "flock");
    lk_read_line(p.out, line, sizeof line);
    CHECK(strncmp(line, "locked ", 7) == 0);
    CHECK_ERR(ipc_lock_acquire(fd, EX | IPC_LOCK_FLOCK, 0, 0, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_acquire(fd, SH | IPC_LOCK_FLOCK, 0, 0, 0), -EAGAIN);
    CHECK_ERR(ipc_lock_query(fd, EX, 0, 0, NULL), 0); /* fcntl locks see nothing */
    CHECK_EQ(ipc_fd_close(&p.in), 0);
    CHECK_ERR(ipc_lock_acquire(fd, EX | IPC_LOCK_FLOCK, 0, 0, 5 * SEC), 0);
    lk_py_finish(&p);
    close(fd);
}

LTEST(lock_python_sees_ours, 20000) {
    const char *f = lk_file("f");
    int fd = lk_open(f);
    lk_expect_free(f, "lockf");
    CHECK_ERR(ipc_lock_acquire(fd, EX, 0, 0, 0), 0);
    lk_expect_busy(f, "lockf");
    lk_expect_busy(f, "lockf_sh");
    lk_expect_free(f, "flock");
    CHECK_ERR(ipc_lock_acquire(fd, SH, 0, 0, 0), 0); /* readers let a reader in */
    lk_expect_free(f, "lockf_sh");
    lk_expect_busy(f, "lockf");
    CHECK_ERR(ipc_lock_release(fd, 0, 0, 0), 0);
    CHECK_ERR(ipc_lock_acquire(fd, EX | IPC_LOCK_POSIX, 0, 0, 0), 0);
    lk_expect_busy(f, "lockf");
    CHECK_ERR(ipc_lock_release(fd, IPC_LOCK_POSIX, 0, 0), 0);
    CHECK_ERR(ipc_lock_acquire(fd, EX | IPC_LOCK_FLOCK, 0, 0, 0), 0);
    lk_expect_busy(f, "flock");
    lk_expect_free(f, "lockf");
    CHECK_ERR(ipc_lock_release(fd, IPC_LOCK_FLOCK, 0, 0), 0);
    lk_expect_free(f, "flock");
    close(fd);
}
