/* tests/bench/peers/peer.h - the harness behind `make bench-peers`: ipc.h's SPSC ring and the
   IPC libraries people would otherwise pick, measured the same way, one program per library,
   one table row per program.

   Each program fills a peer_lib (open, send, receive, close, and optionally objects to make
   before the fork and named objects to remove after) and calls peer_main. The harness:

   processes   the run process forks the first side, which makes the library's objects and
               forks the second side; the two sides are pinned to two different CPUs (the
               first two the run may use; nothing is pinned with one CPU), and every thread
               a library starts inherits its side's CPU. The run process waits with a
               watchdog: a side that fails or dies, or a measurement that makes no progress
               for PEER_STALL seconds (slow is fine, stuck is not), is killed and reported,
               and the named objects are removed whatever happened.
   round trip  64-byte messages, first side -> second side -> first side; 0.2 s of warm-up,
               then PEER_RTT timed round trips (one clock read before the send, one after
               the echo): p50, p99, p99.9 and max
   one way     64-byte messages, each carrying its sequence number (checked: none lost,
               none reordered, none truncated); 0.1 s of warm-up, then the producer sends
               for 1 s; timed from the first send after warm-up to the receipt of the end
               marker; the best of 2 runs (the machine is shared and its speed drifts)

   BENCH=full: 10x the round trips, 5 runs of 2 s. `prog --header` prints the header. With
   PEERS_REF=file, the reference program (the ring) writes its p50 and msgs/s there and the
   others print their ratios to it. Never fails on a number: the exit status is 0 unless a
   measurement failed.

   Include this header first (it sets _GNU_SOURCE). Compiles as C (gnu11) and C++ (17). */
#ifndef PEER_H
#define PEER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "../bench.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PEER_SIZE  64         /* message size, both measurements */
#define PEER_CAP   256        /* receive buffer: a longer message shows up as an error */
#define PEER_RTT   100000L    /* timed round trips (BENCH=full: 10x) */
#define PEER_END   UINT64_MAX /* sequence number of the last message */
#define PEER_LINE  128        /* keeps the flags the two sides poll on apart */
#define PEER_NS    1000000000LL
#define PEER_STALL 10 /* seconds without progress: hung */

/* What a library's callbacks get to name and find their objects. */
typedef struct peer_env {
    char dir[64]; /* a fresh empty directory for socket files; emptied and removed after */
    char tag[64]; /* a name unique to this measurement, for named objects */
    int pp;       /* 1: round trips (messages go both ways); 0: one way, first -> second */
} peer_env;

/* One library. Callbacks return >= 0 on success and a negative code for strerror. */
typedef struct peer_lib {
    const char *name; /* the row's label */
    int ref;          /* 1: the reference the other rows are compared with */
    /* The first side, before it forks the second: what the second side inherits or opens
       (the second side's copy may be used only to attach). NULL: nothing. */
    int (*make)(const peer_env *env);
    /* Each side, after the fork: connect. second: 1 in the forked side. */
    int (*open)(const peer_env *env, int second, void **h);
    int (*send)(void *h, const void *msg, size_t len); /* 0: sent */
    long (*recv)(void *h, void *buf, size_t cap);      /* the message's length */
    void (*close)(void *h);                            /* both sides are done by now */
    void (*remove)(const peer_env *env);               /* run process; NULL: nothing */
    const char *(*strerror)(int err);
} peer_lib;

/* Shared by the run process and both sides of one measurement. */
typedef struct peer_shared {
    uint32_t ready __attribute__((aligned(PEER_LINE)));    /* the second side is open */
    uint32_t done0 __attribute__((aligned(PEER_LINE)));    /* the first side's loop is over */
    uint32_t done1 __attribute__((aligned(PEER_LINE)));    /* the second side's */
    uint64_t progress __attribute__((aligned(PEER_LINE))); /* the first side's count */
    uint32_t failed __attribute__((aligned(PEER_LINE)));
    char what[160]; /* first failure: what and why */
    int64_t t0, t1; /* one way: clock at the first timed send; at the end marker */
    uint64_t warm;  /* one way: messages sent before t0 */
    uint64_t sent;  /* one way: messages sent in all, end marker excluded */
    uint64_t got;   /* one way: messages received in order, end marker excluded */
    int64_t rtt[4]; /* round trip: p50, p99, p99.9, max, ns */
    long n;         /* round trip: timed round trips */
} peer_shared;

static const peer_lib *peer_g_lib;
static peer_shared *peer_g_sh;
static peer_env peer_g_env;
static volatile sig_atomic_t peer_g_have_env;
static volatile pid_t peer_g_child;
static int peer_g_full, peer_g_cpu[2] = {-1, -1};

static int64_t peer_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * PEER_NS + ts.tv_nsec;
}

/* The first two CPUs this run may use, or -1 when there are fewer than two. */
static void peer_pick_cpus(void) {
    cpu_set_t set;
    int c, k = 0;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return;
    for (c = 0; c < CPU_SETSIZE && k < 2; c++)
        if (CPU_ISSET(c, &set)) peer_g_cpu[k++] = c;
    if (k < 2) peer_g_cpu[0] = peer_g_cpu[1] = -1;
}

static void peer_pin(int side) {
    cpu_set_t set;
    if (peer_g_cpu[side] < 0) return;
    CPU_ZERO(&set);
    CPU_SET(peer_g_cpu[side], &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* Record the first failure of either side and exit. Async-signal-safe (the SIGCHLD handler
   uses it): no stdio. The second side also kills the first, which may be blocked in a
   library that a dead peer never wakes. */
static void peer_fail(const char *what, const char *why, int second) {
    peer_shared *sh = peer_g_sh;
    if (__atomic_exchange_n(&sh->failed, 1, __ATOMIC_ACQ_REL) == 0) {
        size_t i = 0, j;
        for (j = 0; what[j] && i < sizeof sh->what - 1; j++)
            sh->what[i++] = what[j];
        for (j = 0; j < 2 && i < sizeof sh->what - 1; j++)
            sh->what[i++] = ": "[j];
        for (j = 0; why && why[j] && i < sizeof sh->what - 1; j++)
            sh->what[i++] = why[j];
        sh->what[i] = 0;
    }
    if (second) kill(getppid(), SIGKILL);
    _exit(1);
}

static void peer_fail_code(const char *what, int err, int second) {
    peer_fail(what, peer_g_lib->strerror(err), second);
}

/* The first side learns at once that the second one died rather than at the watchdog. */
static void peer_on_child(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)ctx;
    if (si->si_code != CLD_EXITED || si->si_status != 0) peer_fail("second side", "died", 0);
}

/* Both sides die with their parent: a killed run leaves nothing running. */
static void peer_die_with_parent(pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
}

/* Tell the other side this one's loop is over, and wait until the other's is too, so no
   library closes with messages still in flight (or tears down under a peer still busy). */
static void peer_barrier(int second) {
    struct timespec ts = {0, 100000};
    __atomic_store_n(second ? &peer_g_sh->done1 : &peer_g_sh->done0, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(second ? &peer_g_sh->done0 : &peer_g_sh->done1, __ATOMIC_ACQUIRE))
        nanosleep(&ts, NULL);
}

static void peer_stamp(unsigned char *buf, uint64_t seq) {
    memcpy(buf, &seq, sizeof seq);
    buf[PEER_SIZE - 1] = (unsigned char)seq;
}

/* The sequence number of a received message, after checking its length and last byte. */
static uint64_t peer_check(const unsigned char *buf, long k, const char *what, int second) {
    uint64_t seq;
    if (k < 0) peer_fail_code(what, (int)k, second);
    if (k != PEER_SIZE) peer_fail(what, "wrong message length", second);
    memcpy(&seq, buf, sizeof seq);
    if (buf[PEER_SIZE - 1] != (unsigned char)seq) peer_fail(what, "corrupt message", second);
    return seq;
}

static int peer_cmp64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

/* ---- the two sides ---- */

/* First side, round trips: warm up, then time each one. */
static void peer_ping(void *h, unsigned char *buf) {
    const peer_lib *lib = peer_g_lib;
    long n = peer_g_full ? PEER_RTT * 10 : PEER_RTT, i;
    int64_t *lat = (int64_t *)calloc((size_t)n, sizeof *lat), warm_end;
    uint64_t seq = 0;
    int r;
    if (!lat) peer_fail("round trips", "out of memory", 0);
    memset(lat, 0, (size_t)n * sizeof *lat); /* fault the pages in before the clock runs */
    warm_end = peer_now() + PEER_NS / 5;
    for (i = -1; i < n; seq++) {
        int64_t t = peer_now();
        if (i < 0 && t >= warm_end && seq >= 1000) i = 0;
        peer_stamp(buf, seq);
        if ((r = lib->send(h, buf, PEER_SIZE)) < 0) peer_fail_code("send", r, 0);
        if (peer_check(buf, lib->recv(h, buf, PEER_CAP), "receive the echo", 0) != seq)
            peer_fail("receive the echo", "out of order", 0);
        if (i >= 0) lat[i++] = peer_now() - t;
        __atomic_store_n(&peer_g_sh->progress, seq, __ATOMIC_RELAXED);
    }
    peer_stamp(buf, PEER_END);
    if ((r = lib->send(h, buf, PEER_SIZE)) < 0) peer_fail_code("send", r, 0);
    if (peer_check(buf, lib->recv(h, buf, PEER_CAP), "receive the echo", 0) != PEER_END)
        peer_fail("receive the echo", "out of order", 0);
    qsort(lat, (size_t)n, sizeof *lat, peer_cmp64);
    peer_g_sh->rtt[0] = lat[n / 2];
    peer_g_sh->rtt[1] = lat[n * 99 / 100];
    peer_g_sh->rtt[2] = lat[n * 999 / 1000];
    peer_g_sh->rtt[3] = lat[n - 1];
    peer_g_sh->n = n;
    free(lat);
}

/* Second side, round trips: echo every message, the end marker included. */
static void peer_echo(void *h, unsigned char *buf) {
    const peer_lib *lib = peer_g_lib;
    for (;;) {
        uint64_t seq = peer_check(buf, lib->recv(h, buf, PEER_CAP), "receive", 1);
        int r = lib->send(h, buf, PEER_SIZE);
        if (r < 0) peer_fail_code("echo", r, 1);
        if (seq == PEER_END) break;
    }
}

/* First side, one way: send for the warm-up, then for the timed run, then the end marker.
   The clock is read every 256 messages only. */
static void peer_produce(void *h, unsigned char *buf) {
    const peer_lib *lib = peer_g_lib;
    int64_t warm_end = peer_now() + PEER_NS / 10, run = peer_g_full ? 2 * PEER_NS : PEER_NS;
    uint64_t seq;
    int timing = 0, r;
    for (seq = 0;; seq++) {
        if ((seq & 255) == 0) {
            int64_t t = peer_now();
            __atomic_store_n(&peer_g_sh->progress, seq, __ATOMIC_RELAXED);
            if (!timing && t >= warm_end) {
                peer_g_sh->warm = seq;
                peer_g_sh->t0 = t;
                timing = 1;
            } else if (timing && t - peer_g_sh->t0 >= run) {
                break;
            }
        }
        peer_stamp(buf, seq);
        if ((r = lib->send(h, buf, PEER_SIZE)) < 0) peer_fail_code("send", r, 0);
    }
    peer_g_sh->sent = seq;
    peer_stamp(buf, PEER_END);
    if ((r = lib->send(h, buf, PEER_SIZE)) < 0) peer_fail_code("send the end marker", r, 0);
}

/* Second side, one way: receive in order up to the end marker. */
static void peer_consume(void *h, unsigned char *buf) {
    const peer_lib *lib = peer_g_lib;
    uint64_t want = 0;
    for (;; want++) {
        uint64_t seq = peer_check(buf, lib->recv(h, buf, PEER_CAP), "receive", 1);
        if (seq == PEER_END) break;
        if (seq != want) peer_fail("receive", "message lost or out of order", 1);
    }
    peer_g_sh->t1 = peer_now();
    peer_g_sh->got = want;
}

/* The first side's process: make the objects, fork the second side, run both. */
static void peer_first_side(void) {
    static unsigned char buf[PEER_CAP];
    const peer_lib *lib = peer_g_lib;
    const peer_env *env = &peer_g_env;
    pid_t me = getpid(), pid;
    struct sigaction sa;
    struct timespec ts = {0, 100000};
    void *h = NULL;
    int r, st;
    peer_pin(0);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = peer_on_child;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    if (lib->make && (r = lib->make(env)) < 0) peer_fail_code("make", r, 0);
    fflush(NULL);
    pid = fork();
    if (pid < 0) peer_fail("fork", strerror(errno), 0);
    if (pid == 0) {
        peer_die_with_parent(me);
        peer_pin(1);
        if ((r = lib->open(env, 1, &h)) < 0) peer_fail_code("open (second side)", r, 1);
        __atomic_store_n(&peer_g_sh->ready, 1, __ATOMIC_RELEASE);
        if (env->pp)
            peer_echo(h, buf);
        else
            peer_consume(h, buf);
        peer_barrier(1);
        lib->close(h);
        _exit(0);
    }
    if ((r = lib->open(env, 0, &h)) < 0) peer_fail_code("open (first side)", r, 0);
    while (!__atomic_load_n(&peer_g_sh->ready, __ATOMIC_ACQUIRE))
        nanosleep(&ts, NULL);
    if (env->pp)
        peer_ping(h, buf);
    else
        peer_produce(h, buf);
    peer_barrier(0);
    lib->close(h);
    while ((r = (int)waitpid(pid, &st, 0)) < 0 && errno == EINTR)
        ;
    if (r != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) peer_fail("second side", "died", 0);
    _exit(0);
}

/* ---- the run process ---- */

/* Remove the library's named objects and the socket directory. Async-signal-safe as far
   as the library's remove is. */
static void peer_cleanup(void) {
    DIR *d;
    if (!peer_g_have_env) return;
    peer_g_have_env = 0;
    if (peer_g_lib->remove) peer_g_lib->remove(&peer_g_env);
    if ((d = opendir(peer_g_env.dir)) != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    rmdir(peer_g_env.dir);
}

static void peer_on_fatal(int sig) {
    if (peer_g_child > 0) kill(peer_g_child, SIGKILL); /* the second side follows */
    peer_cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void peer_on_alarm(int sig) {
    (void)sig; /* only interrupts waitpid, once a second */
}

/* One measurement: 0 with its results in peer_g_sh, or -1 with the reason in why. */
static int peer_measure(int pp, int k, char *why, size_t cap) {
    peer_shared *sh = peer_g_sh;
    pid_t me = getpid(), pid;
    int st = 0, stalled = 0, secs = 0;
    uint64_t last = 0;
    memset(sh, 0, sizeof *sh);
    memset(&peer_g_env, 0, sizeof peer_g_env);
    snprintf(peer_g_env.dir, sizeof peer_g_env.dir, "/tmp/ipc-peers-XXXXXX");
    snprintf(peer_g_env.tag, sizeof peer_g_env.tag, "ipc-peers-%ld-%d", (long)me, k);
    peer_g_env.pp = pp;
    if (!mkdtemp(peer_g_env.dir)) {
        snprintf(why, cap, "mkdtemp: %s", strerror(errno));
        return -1;
    }
    peer_g_have_env = 1;
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        peer_die_with_parent(me);
        peer_first_side();
    }
    peer_g_child = pid;
    if (pid > 0) {
        alarm(1);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) { /* a second went by */
            uint64_t now = __atomic_load_n(&sh->progress, __ATOMIC_RELAXED);
            secs = now == last ? secs + 1 : 0;
            last = now;
            if (secs < PEER_STALL) {
                alarm(1);
            } else if (!stalled) {
                stalled = 1;
                kill(pid, SIGKILL);
            }
        }
        alarm(0);
    }
    peer_g_child = 0;
    /* A second side orphaned by a failed first one was reparented to us (subreaper). */
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    peer_cleanup();
    if (pid < 0)
        snprintf(why, cap, "fork: %s", strerror(errno));
    else if (__atomic_load_n(&sh->failed, __ATOMIC_ACQUIRE))
        snprintf(why, cap, "%s", sh->what);
    else if (stalled)
        snprintf(why, cap, "hung (no progress in %d s), killed", PEER_STALL);
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        snprintf(why, cap, "died");
    else if (!pp && sh->got != sh->sent)
        snprintf(why, cap, "sent %llu messages, received %llu", (unsigned long long)sh->sent,
                 (unsigned long long)sh->got);
    else
        return 0;
    return -1;
}

static void peer_header(void) {
    struct utsname u;
    char model[256], load[64];
    bench_cpu_model(model, sizeof model);
    bench_loadavg(load, sizeof load, 3);
    uname(&u);
    peer_pick_cpus();
    printf("ipc.h's ring against the IPC libraries you would otherwise pick: 64-byte messages\n");
    printf("between two processes");
    if (peer_g_cpu[0] >= 0)
        printf(" pinned to CPUs %d and %d (threads a library starts included)", peer_g_cpu[0],
               peer_g_cpu[1]);
    printf(
        ".\nround trip: %ld timed after 0.2 s of warm-up; one way: the best of %d runs of %d s\n",
        peer_g_full ? PEER_RTT * 10 : PEER_RTT, peer_g_full ? 5 : 2, peer_g_full ? 2 : 1);
    printf("machine: %s, %ld CPUs, Linux %s, load %s\n", model, sysconf(_SC_NPROCESSORS_ONLN),
           u.release, load);
    printf("vs ring: this row / the ring's (p50 above 1x and msgs/s below 1x: the ring wins)\n\n");
    printf("  %-26s %36s %22s %19s\n", "", "---------- round trip, ns ----------",
           "----- one way -----", "---- vs ring ----");
    printf("  %-26s %8s %8s %8s %9s %12s %9s %9s %9s\n", "library", "p50", "p99", "p99.9", "max",
           "msgs/s", "MB/s", "p50", "msgs/s");
}

/* A ratio in a 9-column cell, with the digits that matter at its size. */
static void peer_ratio(double v) {
    char s[32];
    if (v >= 100)
        snprintf(s, sizeof s, "%.0fx", v);
    else if (v >= 10)
        snprintf(s, sizeof s, "%.1fx", v);
    else if (v >= 0.1)
        snprintf(s, sizeof s, "%.2fx", v);
    else
        snprintf(s, sizeof s, "%.3fx", v);
    printf(" %9s", s);
}

/* The program's main: --header prints the header; otherwise measure and print one row. */
static int peer_main(const peer_lib *lib, int argc, char **argv) {
    const char *mode = getenv("BENCH"), *ref = getenv("PEERS_REF");
    char rtt_why[200] = "", tp_why[200] = "";
    int64_t rtt[4] = {-1, -1, -1, -1};
    double best = 0, ref_p50 = 0, ref_tp = 0;
    struct sigaction sa;
    int k, runs, sigs[] = {SIGINT, SIGTERM, SIGHUP};
    peer_g_full = mode && strcmp(mode, "full") == 0;
    if (argc > 1 && strcmp(argv[1], "--header") == 0) {
        peer_header();
        return 0;
    }
    peer_g_lib = lib;
    peer_pick_cpus();
    peer_g_sh = (peer_shared *)mmap(NULL, sizeof(peer_shared), PROT_READ | PROT_WRITE,
                                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (peer_g_sh == MAP_FAILED) {
        perror("bench-peers: mmap");
        return 1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = peer_on_fatal;
    for (k = 0; k < 3; k++)
        sigaction(sigs[k], &sa, NULL);
    sa.sa_handler = peer_on_alarm; /* no SA_RESTART: it must interrupt waitpid */
    sigaction(SIGALRM, &sa, NULL);
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    if (isatty(2)) fprintf(stderr, "  %-26s round trips...", lib->name);
    if (peer_measure(1, 0, rtt_why, sizeof rtt_why) == 0) memcpy(rtt, peer_g_sh->rtt, sizeof rtt);
    runs = peer_g_full ? 5 : 2;
    for (k = 1; k <= runs; k++) {
        if (isatty(2)) fprintf(stderr, "\r  %-26s one way, run %d of %d...", lib->name, k, runs);
        if (peer_measure(0, k, tp_why, sizeof tp_why) == 0) {
            peer_shared *sh = peer_g_sh;
            double v = (double)(sh->got - sh->warm) * 1e9 / (double)(sh->t1 - sh->t0);
            if (v > best) best = v;
        }
    }
    if (isatty(2)) fprintf(stderr, "\r%70s\r", "");

    if (ref && lib->ref) {
        FILE *f = fopen(ref, "w");
        if (f && rtt[0] > 0 && best > 0) fprintf(f, "%lld %.0f\n", (long long)rtt[0], best);
        if (f) fclose(f);
    } else if (ref) {
        FILE *f = fopen(ref, "r");
        if (f && fscanf(f, "%lf %lf", &ref_p50, &ref_tp) != 2) ref_p50 = ref_tp = 0;
        if (f) fclose(f);
    }
    printf("  %-26s", lib->name);
    if (rtt[0] >= 0)
        printf(" %8lld %8lld %8lld %9lld", (long long)rtt[0], (long long)rtt[1], (long long)rtt[2],
               (long long)rtt[3]);
    else
        printf(" %8s %8s %8s %9s", "failed", "-", "-", "-");
    if (best > 0)
        printf(" %12.0f %9.1f", best, best * PEER_SIZE / 1e6);
    else
        printf(" %12s %9s", "failed", "-");
    if (lib->ref) {
        printf(" %9s %9s", "1x", "1x");
    } else if (ref_p50 > 0) {
        if (rtt[0] > 0)
            peer_ratio((double)rtt[0] / ref_p50);
        else
            printf(" %9s", "-");
        if (best > 0)
            peer_ratio(best / ref_tp);
        else
            printf(" %9s", "-");
    }
    printf("\n");
    if (rtt_why[0]) printf("  %-26s round trip failed: %s\n", "", rtt_why);
    if (tp_why[0]) printf("  %-26s one way failed (a run): %s\n", "", tp_why);
    fflush(stdout);
    munmap(peer_g_sh, sizeof(peer_shared));
    return rtt_why[0] || tp_why[0] ? 1 : 0;
}

#endif
