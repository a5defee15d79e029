/* tests/bench/notify.c - the wake-up round trip of every notification mechanism of ipc.h,
   side by side in one run, each through the ipc.h API:

   mechanisms  futex word (ipc_futex_wait/wake: the reference line); eventfd, one each way,
               inherited over fork; realtime signal with its payload (ipc_signal_queue, or
               ipc_signal_queue_pidfd) received from a signalfd (ipc_signal_fd/read), or with
               ipc_signal_wait (sigtimedwait); POSIX semaphore, unnamed in shared memory and
               named (created by name, opened by name in each side, unlinked after); a
               System V semaphore set of two (IPC_PRIVATE, removed after); a robust mutex
               with one condition variable each way, guarding a flag; a pipe each way
               carrying one byte (ipc_fd_write_all / ipc_fd_read_exact)
   measure     ping-pong: side A notifies B and waits, B wakes and notifies A. Both sleep in
               the kernel in between (no spinning by the caller), unless a wait finds the
               notification already there: then it returns at once, so a round trip takes
               either a cross-core wake-up (tens of us in a VM) or only the calls (a few us),
               and p50 can land on either. A times each round trip.
               Every wait has a 1 s deadline, not IPC_FOREVER: a lost wake-up shows up as a
               timeout (counted, then waited for again; three in a row fail the line)
               rather than a hang. CPU is user+sys of both sides (getrusage) per round trip.

   The two sides are two processes pinned to different cores (when there are two),
   coordinated through shared anonymous memory. The run process creates the objects of a
   measurement (named ones included), forks side A, which forks side B, and waits with a
   watchdog; so a side that fails or hangs is reported and killed, the named objects are
   removed whatever happened (also on SIGINT/SIGTERM/SIGHUP), and the other mechanisms go
   on. Every mechanism runs in each of several interleaved rounds (the machine is shared
   and its speed drifts); the best round counts, judged by round trips per second: the
   p50 of a two-mode distribution flips between the modes on small changes, the mean
   does not. BENCH=full for longer rounds; arguments, if any, pick mechanisms by name
   (substrings: notify futex cond). Never fails on a number. */
#define _GNU_SOURCE 1
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINE         128
#define WAIT_NS      IPC__NS /* the deadline of every wait */
#define MAX_TIMEOUTS 3       /* in a row, on one wait: the wake-up is lost for good */

enum {
    M_FUTEX,
    M_EVENT,
    M_SIGFD,
    M_SIGFD_PIDFD,
    M_SIGWAIT,
    M_SEM,
    M_SEM_NAMED,
    M_SEMSET,
    M_COND,
    M_PIPE,
    M_KINDS
};
static const char *mnames[M_KINDS] = {"futex word",
                                      "eventfd",
                                      "rt signal -> signalfd",
                                      "rt signal pidfd -> signalfd",
                                      "rt signal -> sigtimedwait",
                                      "POSIX sem, unnamed",
                                      "POSIX sem, named",
                                      "System V semaphore set",
                                      "mutex + cond var",
                                      "pipe, 1 byte"};

/* Shared between the run process and the two sides of one measurement. */
typedef struct shared {
    uint32_t ready __attribute__((aligned(LINE))); /* side B is set up */
    uint32_t last; /* the last round trip: A may cut the round short */
    long done;     /* round trips timed */
    uint32_t word[2][LINE / 4] __attribute__((aligned(LINE))); /* futex words, a line each */
    uint32_t flag[2] __attribute__((aligned(LINE)));           /* guarded by the mutex */
    unsigned char sem[2][IPC_SEM_SIZE] __attribute__((aligned(LINE)));
    unsigned char mutex[IPC_MUTEX_SIZE] __attribute__((aligned(LINE)));
    unsigned char cond[2][IPC_COND_SIZE] __attribute__((aligned(LINE)));
    int err __attribute__((aligned(LINE))); /* first failure, as -errno */
    uint32_t failed;
    char what[96];
    uint32_t timeouts;
    int64_t t0, t1, cpu_a, cpu_b; /* A's timed loop; CPU ns of each side over it */
    int64_t lat[];
} shared;

/* The objects of the measurement under way, made by the run process before it forks,
   inherited by both sides; [0] carries A -> B, [1] B -> A. */
typedef struct objs {
    int ev[2];
    ipc_pipe pipe[2];
    ipc_sem *sem[2];
    ipc_mutex *mutex;
    ipc_cond *cond[2];
} objs;

/* One side's view: what it notifies on and what it waits on. */
typedef struct end {
    int kind, side; /* side 0 = A, 1 = B */
    shared *sh;
    int txfd, rxfd, sigfd, signo;
    pid_t peer;
    ipc_proc peerproc; /* its pidfd, for ipc_signal_queue_pidfd */
    ipc_sem *tx, *rx;
    ipc_mutex *m;
    ipc_cond *ctx, *crx;
    uint32_t *wtx, *wrx; /* futex words, or the flags under the mutex */
} end;

static objs g_o;
/* Named objects of the measurement under way, removed after it or on a fatal signal. */
static char g_name[2][64];
static volatile sig_atomic_t g_have_name[2], g_have_semset, g_semid;
static volatile pid_t g_child, g_side_a;
static shared *g_sh;
static int full, ncpu;

static void pin(int cpu) {
    cpu_set_t set;
    if (ncpu < 2) return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* Record the first failure of either side and exit (async-signal-safe). Side B also kills
   A, which may be blocked on an object that a dead peer never wakes. */
static void fail(shared *sh, const char *what, int r, int side_b) {
    if (__atomic_exchange_n(&sh->failed, 1, __ATOMIC_ACQ_REL) == 0) {
        size_t i;
        for (i = 0; what[i] && i < sizeof sh->what - 1; i++)
            sh->what[i] = what[i];
        __atomic_store_n(&sh->err, r < 0 ? r : -EIO, __ATOMIC_RELEASE);
    }
    if (side_b && g_side_a > 0) kill(g_side_a, SIGKILL);
    _exit(1);
}

/* Side A learns at once that B died (killed from outside, say), rather than after its
   waits time out. */
static void on_child(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)ctx;
    if (si->si_code != CLD_EXITED || si->si_status != 0) fail(g_sh, "side B died", -EPIPE, 0);
}

/* Both sides die with their parent: a killed run leaves nothing running. */
static void die_with_parent(pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
}

static int64_t cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + (int64_t)ru.ru_stime.tv_sec) * IPC__NS +
           ((int64_t)ru.ru_utime.tv_usec + (int64_t)ru.ru_stime.tv_usec) * 1000;
}

/* ---- one side: set up, notify, wait ---- */

static int end_init(end *e, shared *sh, int kind, int side, pid_t peer) {
    int r = 0;
    memset(e, 0, sizeof *e);
    e->kind = kind, e->side = side, e->sh = sh, e->peer = peer;
    e->txfd = e->rxfd = e->sigfd = e->peerproc.pidfd = -1;
    e->signo = SIGRTMIN;
    switch (kind) {
    case M_FUTEX: e->wtx = &sh->word[side][0], e->wrx = &sh->word[!side][0]; break;
    case M_EVENT: e->txfd = g_o.ev[side], e->rxfd = g_o.ev[!side]; break;
    case M_PIPE: e->txfd = g_o.pipe[side].wfd, e->rxfd = g_o.pipe[!side].rfd; break;
    case M_SIGFD_PIDFD:
        if ((r = ipc_proc_open(&e->peerproc, peer)) < 0) return r;
        if (e->peerproc.pidfd < 0) return -ENOSYS;
        /* fall through */
    case M_SIGFD: r = e->sigfd = ipc_signal_fd(IPC_SIGBIT(e->signo)); break;
    case M_SEM: e->tx = g_o.sem[side], e->rx = g_o.sem[!side]; break;
    case M_SEM_NAMED:
        r = ipc_sem_open(&e->tx, g_name[side]);
        if (r == 0) r = ipc_sem_open(&e->rx, g_name[!side]);
        break;
    case M_COND:
        e->m = g_o.mutex, e->ctx = g_o.cond[side], e->crx = g_o.cond[!side];
        e->wtx = &sh->flag[side], e->wrx = &sh->flag[!side];
        break;
    default: break; /* M_SIGWAIT: the mask set before the fork; M_SEMSET: g_semid */
    }
    return r < 0 ? r : 0;
}

/* The peer's time on a CPU and waiting for one, in ns (/proc/PID/schedstat). */
static int peer_sched(pid_t pid, long long *run, long long *wait) {
    char path[64];
    FILE *f;
    int n = 0;
    snprintf(path, sizeof path, "/proc/%ld/schedstat", (long)pid);
    if ((f = fopen(path, "r"))) {
        n = fscanf(f, "%lld %lld", run, wait);
        fclose(f);
    }
    return n == 2 ? 0 : -1;
}

/* What the peer is doing, for the report of a timeout: its state (S sleeping, R running
   or runnable, T stopped), the system call it is in, with the shared word a futex call is
   on, and over the next 100 ms how long it ran and how long it waited for a CPU: a lost
   wake-up leaves it asleep, a starved peer (R, waiting) got its wake-up but no CPU. */
static void peer_doing(const end *e, char *out, size_t size) {
    static const char *names[] = {"futex word A->B", "futex word B->A", "sem A->B", "sem B->A",
                                  "mutex",           "cond A->B",       "cond B->A"};
    const void *at[7];
    char path[64], buf[512], state = '?', where[48] = "";
    unsigned long long arg = 0;
    long long run0, wait0, run1, wait1;
    long nr = -2;
    FILE *f;
    int i;
    at[0] = e->sh->word[0], at[1] = e->sh->word[1], at[2] = e->sh->sem[0];
    at[3] = e->sh->sem[1], at[4] = e->sh->mutex, at[5] = e->sh->cond[0], at[6] = e->sh->cond[1];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)e->peer);
    if ((f = fopen(path, "r"))) {
        char *p = fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
        if (p && p[1] && p[2]) state = p[2];
        fclose(f);
    }
    snprintf(path, sizeof path, "/proc/%ld/syscall", (long)e->peer);
    if ((f = fopen(path, "r"))) {
        if (fscanf(f, "%ld %llx", &nr, &arg) < 1) nr = -2;
        fclose(f);
    }
    for (i = 0; i < 7 && nr >= 0; i++)
        if (arg == (unsigned long long)(uintptr_t)at[i])
            snprintf(where, sizeof where, " on the %s", names[i]);
    if (nr >= 0)
        snprintf(buf, sizeof buf, "peer: state %c, in system call %ld%s", state, nr, where);
    else
        snprintf(buf, sizeof buf, "peer: state %c, %s", state,
                 nr == -1 ? "not in a system call" : "running or unknown");
    if (peer_sched(e->peer, &run0, &wait0) == 0) {
        usleep(100000);
        if (peer_sched(e->peer, &run1, &wait1) == 0)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf),
                     "; in the next 100 ms it ran %.1f ms, waited for a CPU %.1f ms",
                     (double)(run1 - run0) / 1e6, (double)(wait1 - wait0) / 1e6);
    }
    snprintf(out, size, "%s", buf);
}

/* A timed-out wait: count it, and give up after MAX_TIMEOUTS in a row. */
static void timed_out(end *e, int *streak, const char *call, uint32_t seq) {
    char what[96], peer[256];
    snprintf(what, sizeof what, "%s, side %c, round trip %u: %d timeouts in a row", call,
             "AB"[e->side], seq, MAX_TIMEOUTS);
    __atomic_add_fetch(&e->sh->timeouts, 1, __ATOMIC_RELAXED);
    peer_doing(e, peer, sizeof peer);
    fprintf(stderr, "\rbench: %s: %s, side %c, round trip %u: no wake-up within 1 s (%s)\n",
            mnames[e->kind], call, "AB"[e->side], seq, peer);
    if (++*streak >= MAX_TIMEOUTS) fail(e->sh, what, -ETIMEDOUT, e->side);
}

static void notify(end *e, uint32_t seq) {
    unsigned char c = (unsigned char)seq;
    ipc_semop op;
    ssize_t k;
    int r = 0, streak = 0;
    switch (e->kind) {
    case M_FUTEX:
        __atomic_store_n(e->wtx, seq, __ATOMIC_RELEASE);
        r = ipc_futex_wake(e->wtx, 1);
        break;
    case M_EVENT: r = ipc_event_post(e->txfd, 1); break;
    case M_SIGFD:
    case M_SIGWAIT: r = ipc_signal_queue(e->peer, e->signo, (intptr_t)seq); break;
    case M_SIGFD_PIDFD:
        r = ipc_signal_queue_pidfd(e->peerproc.pidfd, e->signo, (intptr_t)seq);
        break;
    case M_SEM:
    case M_SEM_NAMED: r = ipc_sem_post(e->tx); break;
    case M_SEMSET:
        op.num = (unsigned short)e->side, op.op = 1, op.flags = 0;
        r = ipc_semset_op(g_semid, &op, 1, WAIT_NS);
        break;
    case M_COND:
        while ((r = ipc_mutex_lock(e->m, WAIT_NS)) == -ETIMEDOUT)
            timed_out(e, &streak, "mutex lock", seq);
        if (r != 0) fail(e->sh, "mutex lock", r == IPC_MUTEX_RECOVERED ? -EOWNERDEAD : r, e->side);
        *e->wtx = seq;
        r = ipc_cond_signal(e->ctx);
        if (r == 0) r = ipc_mutex_unlock(e->m);
        break;
    default:
        k = ipc_fd_write_all(e->txfd, &c, 1, WAIT_NS, NULL);
        r = k == 1 ? 0 : k < 0 ? (int)k : -EIO;
        break;
    }
    if (r < 0) fail(e->sh, "notify", r, e->side);
}

static void check_signal(end *e, int r, const ipc_siginfo *si, uint32_t seq) {
    if (r != e->signo || si->code != SI_QUEUE || si->value != (intptr_t)seq)
        fail(e->sh, "wrong signal or payload", -EBADMSG, e->side);
}

/* Wait for the peer's notification number seq. */
static void await(end *e, uint32_t seq) {
    int streak = 0;
    for (;;) {
        unsigned char c = 0;
        ipc_siginfo si;
        ipc_semop op;
        uint64_t v = 0;
        uint32_t cur;
        ssize_t k;
        int r;
        switch (e->kind) {
        case M_FUTEX:
            if ((cur = __atomic_load_n(e->wrx, __ATOMIC_ACQUIRE)) == seq) return;
            if ((r = ipc_futex_wait(e->wrx, cur, WAIT_NS)) >= 0) continue;
            break;
        case M_EVENT:
            if ((r = ipc_event_wait(e->rxfd, &v, WAIT_NS)) == 0) {
                if (v != 1) fail(e->sh, "eventfd counter not 1", -EBADMSG, e->side);
                return;
            }
            break;
        case M_SIGFD:
        case M_SIGFD_PIDFD:
            if ((r = ipc_signal_read(e->sigfd, &si, WAIT_NS)) >= 0) {
                check_signal(e, r, &si, seq);
                return;
            }
            break;
        case M_SIGWAIT:
            if ((r = ipc_signal_wait(IPC_SIGBIT(e->signo), &si, WAIT_NS)) >= 0) {
                check_signal(e, r, &si, seq);
                return;
            }
            break;
        case M_SEM:
        case M_SEM_NAMED:
            if ((r = ipc_sem_wait(e->rx, WAIT_NS)) == 0) return;
            break;
        case M_SEMSET:
            op.num = (unsigned short)!e->side, op.op = -1, op.flags = 0;
            if ((r = ipc_semset_op(g_semid, &op, 1, WAIT_NS)) == 0) return;
            break;
        case M_COND:
            while ((r = ipc_mutex_lock(e->m, WAIT_NS)) == -ETIMEDOUT)
                timed_out(e, &streak, "mutex lock", seq);
            if (r != 0)
                fail(e->sh, "mutex lock", r == IPC_MUTEX_RECOVERED ? -EOWNERDEAD : r, e->side);
            while (*e->wrx != seq) {
                r = ipc_cond_wait(e->crx, e->m, WAIT_NS);
                if (r == -ETIMEDOUT)
                    timed_out(e, &streak, "cond wait", seq);
                else if (r != 0)
                    fail(e->sh, "cond wait", r == IPC_MUTEX_RECOVERED ? -EOWNERDEAD : r, e->side);
            }
            if ((r = ipc_mutex_unlock(e->m)) < 0) fail(e->sh, "mutex unlock", r, e->side);
            return;
        default:
            k = ipc_fd_read_exact(e->rxfd, &c, 1, WAIT_NS, NULL);
            if (k == 1) {
                if (c != (unsigned char)seq)
                    fail(e->sh, "pipe byte out of order", -EBADMSG, e->side);
                return;
            }
            r = k < 0 ? (int)k : -EIO;
            break;
        }
        if (r != -ETIMEDOUT) fail(e->sh, "wait", r, e->side);
        timed_out(e, &streak, "wait", seq);
    }
}

/* Side A: fork B, then time warm + n round trips (the first warm are not recorded), or
   fewer when the time budget runs out (but at least 100): then it tells B the last one in
   sh->last before notifying it. */
static void side_a(shared *sh, int kind, long warm, long n, int64_t budget) {
    pid_t me = getpid(), b;
    struct sigaction sa;
    end e;
    long i, last = warm + n;
    int64_t t_begin;
    int r, st;
    pin(0);
    g_sh = sh;
    g_side_a = me;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_child;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    /* Blocked before B exists, so B inherits the mask: a signal that arrives before the
       receiver's signalfd exists waits pending instead of killing it. */
    if (kind == M_SIGFD || kind == M_SIGFD_PIDFD || kind == M_SIGWAIT)
        ipc_signal_mask(IPC_SIG_BLOCK, IPC_SIGBIT(SIGRTMIN), NULL);
    b = fork();
    if (b < 0) fail(sh, "fork", -errno, 0);
    if (b == 0) {
        int64_t c0 = 0;
        die_with_parent(me);
        pin(1);
        if ((r = end_init(&e, sh, kind, 1, me)) < 0) fail(sh, "set up side B", r, 1);
        __atomic_store_n(&sh->ready, 1, __ATOMIC_RELEASE);
        for (i = 1;; i++) {
            await(&e, (uint32_t)i);
            notify(&e, (uint32_t)i);
            if (i == warm) c0 = cpu_ns(); /* it sleeps from here to A's first timed notify */
            if ((uint32_t)i >= __atomic_load_n(&sh->last, __ATOMIC_ACQUIRE)) break;
        }
        sh->cpu_b = cpu_ns() - c0;
        _exit(0);
    }
    if ((r = end_init(&e, sh, kind, 0, b)) < 0) fail(sh, "set up side A", r, 0);
    while (!__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE))
        sched_yield();
    t_begin = ipc_time_now();
    for (i = 1; i <= last; i++) {
        int64_t t;
        if (i == warm + 1) {
            sh->cpu_a = cpu_ns();
            sh->t0 = ipc_time_now();
        }
        t = ipc_time_now();
        if (i > warm + 100 && i < last && t - t_begin > budget) {
            last = i;
            __atomic_store_n(&sh->last, (uint32_t)i, __ATOMIC_RELEASE);
        }
        notify(&e, (uint32_t)i);
        await(&e, (uint32_t)i);
        if (i > warm) sh->lat[i - warm - 1] = ipc_time_now() - t;
    }
    sh->t1 = ipc_time_now();
    sh->cpu_a = cpu_ns() - sh->cpu_a;
    sh->done = last - warm;
    if (waitpid(b, &st, 0) != b || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail(sh, "side B died", -EPIPE, 0);
    _exit(0);
}

/* ---- the run process: objects, watchdog, cleanup ---- */

static void remove_named(void) {
    int i;
    for (i = 0; i < 2; i++) {
        if (g_have_name[i]) ipc_sem_unlink(g_name[i]);
        g_have_name[i] = 0;
    }
    if (g_have_semset) ipc_semset_remove(g_semid);
    g_have_semset = 0;
}

static void on_fatal(int sig) {
    if (g_child > 0) kill(g_child, SIGKILL); /* side B follows (PDEATHSIG) */
    remove_named();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_alarm(int sig) {
    (void)sig; /* only interrupts waitpid */
}

static void report(int kind, const char *what, int r) {
    fprintf(stderr, "\rbench: %s: %s: %s%40s\n", mnames[kind], what, ipc_strerror(r), "");
}

static void objs_close(void) {
    int i;
    for (i = 0; i < 2; i++) {
        ipc_fd_close(&g_o.ev[i]);
        ipc_fd_close(&g_o.pipe[i].rfd);
        ipc_fd_close(&g_o.pipe[i].wfd);
        if (g_o.sem[i]) ipc_sem_destroy(g_o.sem[i]);
        if (g_o.cond[i]) ipc_cond_destroy(g_o.cond[i]);
        g_o.sem[i] = NULL, g_o.cond[i] = NULL;
    }
    if (g_o.mutex) ipc_mutex_destroy(g_o.mutex);
    g_o.mutex = NULL;
    remove_named();
}

/* Make the objects of kind; on failure what is made is undone by objs_close. */
static int objs_make(shared *sh, int kind) {
    static int seq;
    const char *dir[2] = {"ab", "ba"};
    int i, r = 0;
    memset(&g_o, 0, sizeof g_o);
    for (i = 0; i < 2; i++)
        g_o.ev[i] = g_o.pipe[i].rfd = g_o.pipe[i].wfd = -1;
    for (i = 0; i < 2 && r >= 0; i++) {
        ipc_sem *s = NULL;
        switch (kind) {
        case M_EVENT: r = g_o.ev[i] = ipc_event_open(0, 0); break;
        case M_PIPE: r = ipc_pipe_open(&g_o.pipe[i], NULL); break;
        case M_SEM: r = ipc_sem_init(sh->sem[i], 0, &g_o.sem[i]); break;
        case M_SEM_NAMED:
            snprintf(g_name[i], sizeof g_name[i], "/ipcb-%ld-%d-%s", (long)getpid(), seq++, dir[i]);
            r = ipc_sem_create(&s, g_name[i], 0, 0);
            g_have_name[i] = r == 0;
            if (r == 0) ipc_sem_close(s); /* the sides open it by name */
            break;
        case M_SEMSET:
            if (i == 1) break;
            r = g_semid = ipc_semset_create(IPC_PRIVATE, 2, 0);
            g_have_semset = r >= 0;
            break;
        case M_COND:
            if (i == 0) r = ipc_mutex_init(sh->mutex, &g_o.mutex);
            if (r == 0) r = ipc_cond_init(sh->cond[i], &g_o.cond[i]);
            break;
        default: break;
        }
    }
    return r < 0 ? r : 0;
}

/* One measurement. Returns 0 with the results in sh, or -1 (reported). */
static int measure(shared *sh, int kind, long warm, long n, int64_t budget) {
    int r, st = 0, timed_out = 0;
    pid_t pid, me = getpid();
    memset(sh, 0, sizeof *sh);
    sh->last = (uint32_t)(warm + n);
    if ((r = objs_make(sh, kind)) < 0) {
        report(kind, "create", r);
        objs_close();
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        die_with_parent(me);
        side_a(sh, kind, warm, n, budget);
    }
    g_child = pid;
    if (pid > 0) {
        alarm(full ? 120 : 20);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            timed_out = 1; /* only the watchdog interrupts us */
            kill(pid, SIGKILL);
        }
        alarm(0);
    }
    g_child = 0;
    /* A side B orphaned by a failed side A was reparented to us (subreaper). */
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    objs_close();
    if (pid < 0) {
        report(kind, "fork", -errno);
        return -1;
    }
    if (__atomic_load_n(&sh->failed, __ATOMIC_ACQUIRE)) {
        report(kind, sh->what, sh->err);
        return -1;
    }
    if (timed_out || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        report(kind, timed_out ? "hung, killed by the watchdog" : "died",
               timed_out ? -ETIMEDOUT : -EPIPE);
        return -1;
    }
    return 0;
}

/* ---- main ---- */

static int cmp64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

static void machine(void) {
    struct utsname u;
    char line[256], model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) snprintf(model, sizeof model, "%s", c + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    if (f) fclose(f);
    uname(&u);
    printf("machine: %s, %d cores, Linux %s\n", model, ncpu, u.release);
    /* Wake-ups cross cores: other work on the machine shows in every number. */
    if ((f = fopen("/proc/loadavg", "r")) && fgets(line, sizeof line, f))
        printf("load average at start: %.*s\n", (int)strcspn(line, " "), line);
    if (f) fclose(f);
}

typedef struct result {
    long done; /* round trips in the counted round */
    double rate, cpu_us;
    int64_t p50, p99, max; /* p50 < 0: no round succeeded */
    unsigned timeouts, failures;
} result;

/* Arguments, when given, pick the mechanisms whose names contain one of them. */
static int picked(int kind, int argc, char **argv) {
    int i;
    for (i = 1; i < argc; i++)
        if (strstr(mnames[kind], argv[i])) return 1;
    return argc < 2;
}

int main(int argc, char **argv) {
    const char *mode = getenv("BENCH");
    result res[M_KINDS];
    struct sigaction sa;
    size_t shsize;
    shared *sh;
    long n, warm, m;
    double rate;
    int64_t budget;
    int rounds, r, k, sigs[] = {SIGINT, SIGTERM, SIGHUP};
    int64_t t_start = ipc_time_now();

    full = mode && strcmp(mode, "full") == 0;
    /* Others' work comes and goes in bursts of seconds: more, shorter rounds give each
       mechanism more chances of a quiet one. A round trip under load can take 10x its
       quiet time (~30 us here), so a round (warm-up included) also stops when its time
       budget is spent, which keeps the default run well within a minute. */
    rounds = full ? 7 : 5;
    n = full ? 100000 : 10000;
    warm = n / 50;
    budget = full ? 8 * IPC__NS : IPC__NS * 6 / 10;
    ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    shsize = sizeof(shared) + sizeof(int64_t) * (size_t)n;
    sh = (shared *)mmap(NULL, shsize, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (sh == MAP_FAILED) return 1;
    memset(res, 0, sizeof res);
    for (k = 0; k < M_KINDS; k++)
        res[k].p50 = -1;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    for (k = 0; k < 3; k++)
        sigaction(sigs[k], &sa, NULL);
    sa.sa_handler = on_alarm; /* no SA_RESTART: it must interrupt waitpid */
    sigaction(SIGALRM, &sa, NULL);
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    machine();
    fflush(stdout); /* before the progress lines on stderr */
    for (r = 0; r < rounds; r++)
        for (k = 0; k < M_KINDS; k++) {
            result *o = &res[k];
            if (!picked(k, argc, argv)) continue;
            fprintf(stderr, "\r  round %d/%d: %-30s", r + 1, rounds, mnames[k]);
            if (measure(sh, k, warm, n, budget) < 0) {
                o->failures++;
                o->timeouts += sh->timeouts;
                continue;
            }
            o->timeouts += sh->timeouts;
            m = sh->done;
            rate = (double)m * 1e9 / (double)(sh->t1 - sh->t0);
            if (rate > o->rate) {
                qsort(sh->lat, (size_t)m, sizeof sh->lat[0], cmp64);
                o->done = m;
                o->p50 = sh->lat[m / 2];
                o->p99 = sh->lat[m * 99 / 100];
                o->max = sh->lat[m - 1];
                o->rate = rate;
                o->cpu_us = (double)(sh->cpu_a + sh->cpu_b) / 1e3 / (double)m;
            }
        }
    fprintf(stderr, "\r%70s\r", "");

    printf("\nwake-up round trips (A notifies B, B notifies A, both asleep in between):\n"
           "%ld per round after %ld untimed, or fewer if the round's %.1f s run out (rts: how\n"
           "many); %d interleaved rounds, the one with the most rt/s counts. Every wait has a\n"
           "1 s deadline; timeouts: over all rounds (each one a wake-up late by a second, or\n"
           "lost). cpu: user+sys of both sides per round trip.\n\n",
           n, warm, (double)budget / 1e9, rounds);
    printf("  %-28s %6s %8s %8s %8s %8s %9s %7s %8s\n", "mechanism", "rts", "rt/s", "p50 us",
           "p99 us", "max us", "p50/futex", "cpu us", "timeouts");
    for (k = 0; k < M_KINDS; k++) {
        const result *o = &res[k];
        if (!picked(k, argc, argv)) continue;
        printf("  %-28s", mnames[k]);
        if (o->p50 < 0) {
            printf(" %6s %8s %8s %8s %8s %9s %7s", "failed", "-", "-", "-", "-", "-", "-");
        } else {
            printf(" %6ld %8.0f %8.1f %8.1f %8.0f", o->done, o->rate, (double)o->p50 / 1e3,
                   (double)o->p99 / 1e3, (double)o->max / 1e3);
            if (res[M_FUTEX].p50 > 0)
                printf(" %8.2fx", (double)o->p50 / (double)res[M_FUTEX].p50);
            else
                printf(" %9s", "-");
            printf(" %7.1f", o->cpu_us);
        }
        printf(" %8u", o->timeouts);
        if (o->failures) printf("  (%u of %d rounds failed)", o->failures, rounds);
        printf("\n");
    }
    printf("\nrun time %.1f s\n", (double)(ipc_time_now() - t_start) / 1e9);
    munmap(sh, shsize);
    return 0;
}
