/* examples/lock_pidfile.c - file locks: a pid file that keeps a program single-instance,
   and byte-range locks that let processes update different records of one file at once.

   Part 1: ipc_lock_pidfile creates (or opens) a pid file, locks it and writes our pid. The
   lock, not the file, says "running": it belongs to the open file, so the kernel drops it
   when the process dies, however it dies. Instance A takes the pid file in a fresh
   directory under /tmp. Instance B, started while A runs, is refused with -EBUSY and
   learns A's pid. Then A is killed with SIGKILL: no exit handler runs, the file stays
   behind with A's pid in it, but unlocked. Instance C takes that stale file over without
   any "is that pid still alive?" guesswork.

   Part 2: a file of three fixed-size records, and open file description (OFD) locks on
   byte ranges (ipc_lock_acquire). Process A holds record 0 and updates it several times;
   meanwhile process B updates record 1, locking it with a zero timeout, and is never
   blocked: locks on different ranges do not conflict. Process C wants record 0: it asks
   who holds it (ipc_lock_query), tries with a 50 ms deadline (-ETIMEDOUT), then waits with
   a 5 s deadline and gets it as soon as A lets go. Each process opens the file itself:
   an OFD lock belongs to one open of the file, and a child that merely inherited our fd
   through fork would share our locks instead of competing for them.

   Everything is removed at the end.

   Build and run:  make demo   (or: cc -I. examples/lock_pidfile.c -pthread && ./a.out) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS      1000000LL
#define SECOND  1000000000LL
#define RECSIZE 32 /* bytes per record */
#define NREC    3
#define UPDATES 20 /* by A to record 0 and by B to record 1 */

static char dir[] = "/tmp/ipc-lock-example-XXXXXX";

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Fork a child running fn(arg); the child's return value is its exit status. */
static pid_t start(int (*fn)(const char *, int), const char *path, int arg) {
    pid_t pid;
    fflush(stdout); /* or the child inherits unprinted output */
    pid = fork();
    if (pid == 0) {
        int r = fn(path, arg);
        fflush(stdout);
        _exit(r);
    }
    if (pid < 0) perror("fork");
    return pid;
}

/* Reap pid; 1 if it exited with status 0. */
static int succeeded(pid_t pid) {
    int st;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void show_file(const char *what, const char *path) {
    char buf[256];
    ssize_t n = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) n = read(fd, buf, sizeof buf - 1);
    if (fd >= 0) close(fd);
    buf[n > 0 ? n : 0] = '\0';
    printf("%s:\n%s", what, buf);
}

/* ---- Part 1: one instance at a time ---- */

/* Instance A: takes the pid file, says so through the eventfd, runs until killed. */
static int instance_a(const char *pidfile, int ready) {
    int fd = ipc_lock_pidfile(pidfile, NULL);
    if (fd < 0) {
        fprintf(stderr, "A: ipc_lock_pidfile: %s\n", ipc_strerror(fd));
        return 1;
    }
    printf("A (pid %d): running; the pid file is mine (fd %d, kept open)\n", (int)getpid(), fd);
    fflush(stdout);
    ipc_event_post(ready, 1);
    for (;;)
        pause();
}

/* Instance B: must be refused, and told that A (expect_pid) runs. */
static int instance_b(const char *pidfile, int expect_pid) {
    pid_t holder;
    int fd = ipc_lock_pidfile(pidfile, &holder);
    if (fd >= 0) {
        printf("B (pid %d): got the pid file although A runs: wrong\n", (int)getpid());
        return 1;
    }
    printf("B (pid %d): refused (%s); already running as pid %d\n", (int)getpid(), ipc_strerror(fd),
           (int)holder);
    return fd == -EBUSY && holder == expect_pid ? 0 : 1;
}

/* Instance C: the file is stale; it must get it. */
static int instance_c(const char *pidfile, int unused) {
    pid_t holder;
    int fd = ipc_lock_pidfile(pidfile, &holder);
    (void)unused;
    if (fd < 0) {
        fprintf(stderr, "C: ipc_lock_pidfile: %s\n", ipc_strerror(fd));
        return 1;
    }
    printf("C (pid %d): took the stale pid file over\n", (int)getpid());
    show_file("C: the pid file now says", pidfile);
    return 0; /* exiting closes fd: the lock goes with us */
}

static int single_instance(const char *pidfile) {
    ipc_proc a;
    pid_t pa, pb, pc;
    int r, st, ready, failed = 0;

    ready = ipc_event_open(0, 0);
    if (ready < 0) {
        fprintf(stderr, "ipc_event_open: %s\n", ipc_strerror(ready));
        return 1;
    }
    pa = start(instance_a, pidfile, ready);
    if (pa < 0) {
        ipc_fd_close(&ready);
        return 1;
    }
    r = ipc_proc_open(&a, pa); /* to kill A by pidfd later */
    if (r < 0) {
        fprintf(stderr, "ipc_proc_open: %s\n", ipc_strerror(r));
        kill(pa, SIGKILL);
        waitpid(pa, NULL, 0);
        ipc_fd_close(&ready);
        return 1;
    }
    r = ipc_event_wait(ready, NULL, 5 * SECOND);
    if (r < 0) {
        fprintf(stderr, "waiting for A: %s\n", ipc_strerror(r));
        failed = 1;
    }

    if (!failed) {
        pb = start(instance_b, pidfile, (int)pa);
        if (!succeeded(pb)) failed = 1;
    }

    ipc_proc_kill(&a, SIGKILL);
    st = ipc_proc_wait(&a, 5 * SECOND);
    ipc_proc_close(&a);
    ipc_fd_close(&ready);
    if (st < 0 || !WIFSIGNALED(st)) return 1;
    printf("A: killed with SIGKILL; nothing cleaned up\n");
    if (failed) return 1;
    show_file("the pid file is still there, unlocked, and says", pidfile);

    pc = start(instance_c, pidfile, 0);
    if (!succeeded(pc)) failed = 1;
    if (unlink(pidfile) != 0) {
        perror("unlink pid file");
        failed = 1;
    }
    return failed;
}

/* ---- Part 2: record locks ---- */

static off_t rec_off(int i) {
    return (off_t)i * RECSIZE;
}

/* Record i with count n: fixed width, blank-padded, one record per line. */
static void rec_format(char *rec, int i, long n) {
    char text[64];
    int len = snprintf(text, sizeof text, "record %d: %6ld updates", i, n);
    memset(rec, ' ', RECSIZE);
    memcpy(rec, text, len < RECSIZE - 1 ? (size_t)len : RECSIZE - 1);
    rec[RECSIZE - 1] = '\n';
}

/* Read record i, add one to its count, write it back. Call with the record locked. */
static int rec_bump(int fd, int i, long *count) {
    char buf[RECSIZE + 1];
    long n = 0;
    if (pread(fd, buf, RECSIZE, rec_off(i)) != RECSIZE) return -EIO;
    buf[RECSIZE] = '\0';
    if (sscanf(buf, "record %*d: %ld", &n) != 1) return -EBADMSG;
    rec_format(buf, i, n + 1);
    if (pwrite(fd, buf, RECSIZE, rec_off(i)) != RECSIZE) return -EIO;
    if (count) *count = n + 1;
    return 0;
}

static int open_records(const char *path, const char *who) {
    int fd = open(path, O_RDWR | O_CLOEXEC); /* our own open file description */
    if (fd < 0) fprintf(stderr, "%s: open %s: %s\n", who, path, strerror(errno));
    return fd;
}

static int holds = -1, tried = -1; /* eventfds: "A holds record 0", "C has tried" */

/* A: hold record 0 through all its updates, which start once C has seen it busy. */
static int writer_a(const char *path, int unused) {
    int i, r, fd = open_records(path, "A");
    (void)unused;
    if (fd < 0) return 1;
    r = ipc_lock_acquire(fd, IPC_LOCK_EXCLUSIVE, rec_off(0), RECSIZE, 5 * SECOND);
    if (r < 0) {
        fprintf(stderr, "A: ipc_lock_acquire: %s\n", ipc_strerror(r));
        return 1;
    }
    printf("A: locked record 0 (bytes %d..%d)\n", 0, RECSIZE - 1);
    fflush(stdout);
    ipc_event_post(holds, 2);                    /* one each for B and C */
    r = ipc_event_wait(tried, NULL, 5 * SECOND); /* C must find it busy: wait for its try */
    for (i = 0; i < UPDATES && r == 0; i++) {
        r = rec_bump(fd, 0, NULL);
        sleep_ms(2); /* slow work: C keeps waiting meanwhile */
    }
    if (r < 0) fprintf(stderr, "A: %s\n", ipc_strerror(r));
    printf("A: %d updates of record 0 done; unlocking it\n", UPDATES);
    fflush(stdout);
    ipc_lock_release(fd, 0, rec_off(0), RECSIZE);
    close(fd);
    return r < 0;
}

/* B: update record 1 while A holds record 0; a zero timeout proves it never waits. */
static int writer_b(const char *path, int unused) {
    int i, r, fd = open_records(path, "B");
    long n = 0;
    (void)unused;
    if (fd < 0) return 1;
    r = ipc_event_wait(holds, NULL, 5 * SECOND);
    for (i = 0; i < UPDATES && r == 0; i++) {
        r = ipc_lock_acquire(fd, IPC_LOCK_EXCLUSIVE, rec_off(1), RECSIZE, 0);
        if (r == 0) r = rec_bump(fd, 1, &n);
        ipc_lock_release(fd, 0, rec_off(1), RECSIZE);
        sleep_ms(1); /* spread out over A's updates */
    }
    close(fd);
    if (r < 0) {
        fprintf(stderr, "B: %s\n", ipc_strerror(r));
        return 1;
    }
    printf("B: %d updates of record 1, each locked with a zero timeout: never blocked\n", UPDATES);
    return 0;
}

/* C: wait for record 0 with a deadline. */
static int waiter_c(const char *path, int unused) {
    ipc_lock_info who;
    int64_t t0;
    long n = 0;
    int r, fd = open_records(path, "C");
    (void)unused;
    if (fd < 0) return 1;
    r = ipc_event_wait(holds, NULL, 5 * SECOND);
    if (r == 0) r = ipc_lock_query(fd, IPC_LOCK_EXCLUSIVE, rec_off(0), RECSIZE, &who);
    if (r == 1)
        printf("C: record 0 is held: %s lock on %ld bytes from %ld, pid %d (an OFD lock has "
               "no owning process)\n",
               who.type == IPC_LOCK_EXCLUSIVE ? "an exclusive" : "a shared", (long)who.len,
               (long)who.start, (int)who.pid);
    if (r == 1) r = ipc_lock_acquire(fd, IPC_LOCK_EXCLUSIVE, rec_off(0), RECSIZE, 50 * MS);
    if (r != -ETIMEDOUT) {
        fprintf(stderr, "C: expected record 0 busy, got %s\n", r == 0 ? "free" : ipc_strerror(r));
        ipc_event_post(tried, 1);
        close(fd);
        return 1;
    }
    printf("C: lock with a 50 ms deadline: %s\n", ipc_strerror(r));
    fflush(stdout);
    ipc_event_post(tried, 1);
    t0 = ipc_time_now();
    r = ipc_lock_acquire(fd, IPC_LOCK_EXCLUSIVE, rec_off(0), RECSIZE, 5 * SECOND);
    if (r == 0) {
        printf("C: lock with a 5 s deadline: got it after %lld ms\n",
               (long long)((ipc_time_now() - t0) / MS));
        r = rec_bump(fd, 0, &n);
        if (r == 0) printf("C: record 0 had A's %ld updates; mine makes %ld\n", n - 1, n);
        ipc_lock_release(fd, 0, rec_off(0), RECSIZE);
    }
    close(fd);
    if (r < 0) fprintf(stderr, "C: %s\n", ipc_strerror(r));
    return r < 0 || n != UPDATES + 1;
}

static int records(const char *path) {
    char buf[RECSIZE * NREC + 1];
    pid_t pa, pb, pc;
    int i, fd, failed = 0;

    /* The file: NREC blank-padded lines of RECSIZE bytes, counts at 0. */
    for (i = 0; i < NREC; i++)
        rec_format(buf + i * RECSIZE, i, 0);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, buf, sizeof buf - 1) != (ssize_t)sizeof buf - 1) {
        perror("records file");
        if (fd >= 0) close(fd);
        unlink(path);
        return 1;
    }
    close(fd);

    holds = ipc_event_open(0, IPC_EVENT_SEMAPHORE); /* each wait takes one post */
    tried = ipc_event_open(0, 0);
    if (holds < 0 || tried < 0) {
        fprintf(stderr, "ipc_event_open: %s\n", ipc_strerror(holds < 0 ? holds : tried));
        failed = 1;
    } else {
        pa = start(writer_a, path, 0);
        pb = start(writer_b, path, 0);
        pc = start(waiter_c, path, 0);
        /* Reap all three, even after a failure. */
        failed |= !succeeded(pa);
        failed |= !succeeded(pb);
        failed |= !succeeded(pc);
    }
    ipc_fd_close(&holds);
    ipc_fd_close(&tried);
    show_file("the records file at the end", path);
    if (unlink(path) != 0) {
        perror("unlink records file");
        failed = 1;
    }
    return failed;
}

int main(void) {
    char pidfile[sizeof dir + 16], recfile[sizeof dir + 16];
    int r;

    if (!mkdtemp(dir)) { /* a private directory: mode 0700, a name nobody could predict */
        perror("mkdtemp");
        return 1;
    }
    snprintf(pidfile, sizeof pidfile, "%s/daemon.pid", dir);
    snprintf(recfile, sizeof recfile, "%s/records", dir);
    printf("pid file: %s\n", pidfile);
    r = single_instance(pidfile);
    printf("\n");
    r |= records(recfile);
    unlink(pidfile); /* in case a failure left them */
    unlink(recfile);
    if (rmdir(dir) != 0) {
        perror("rmdir");
        r = 1;
    }
    return r;
}
