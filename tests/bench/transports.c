/* tests/bench/transports.c - every message transport of ipc.h side by side, in one run,
   each through the ipc.h API, for 64-byte and 4 KiB messages:

   mechanisms  ipc ring (anonymous, fd inherited over fork); pipe with fixed-size messages
               (ipc_fd_write_all / ipc_fd_read_exact); pipe with ipc_frame_* framing; FIFO
               in a mkdtemp directory with framing; POSIX message queue (10 messages of at
               most 4096 bytes); System V message queue (IPC_PRIVATE); Unix stream socket
               with ipc_frame_* framing (a stream has no message boundaries: framing is
               how messages go over one, and it compares with the framed pipe and FIFO);
               Unix datagram and seqpacket sockets, one ipc_sock_send / ipc_sock_recv per
               message (the default SO_SNDBUF, ~200 KiB, bounds the datagrams in flight:
               plenty at these sizes); TCP on 127.0.0.1, framed, TCP_NODELAY. The Unix
               sockets are ipc_sock_pair (related processes need no name, so there is no
               socket file to remove); the TCP pair is a listener on port 0, connected to
               and accepted by the first side before it forks, so it lives and dies there
   throughput  one way: a producer sends n messages, each carrying its sequence number, a
               consumer receives them, checks the order and sums them; timed from just
               before the first send to just after the last receive
   latency     ping-pong through one channel each way (two rings, a duplex pipe, a FIFO
               pair, two queues, one socket): p50 and p99 of the round trips

   The two sides of a measurement are two processes pinned to different cores (when there
   are two), coordinated through shared anonymous memory. The run process only creates
   the named objects (queues, FIFOs), forks the first side, which forks the second, and
   waits with a watchdog; so a side that fails or hangs is reported and killed, the named
   objects are removed whatever happened, and the other mechanisms go on. Every mechanism
   runs in each of several interleaved rounds (the machine is shared and its speed drifts):
   the best throughput counts, and the round trips of the round with the lowest p50.
   BENCH=full for longer rounds. Never fails on a number. */
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
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINE   128
#define MQ_MSG 4096 /* the POSIX queues' msg_size: a receive buffer is at least this big */

enum {
    M_RING,
    M_PIPE,
    M_PIPE_FRAMED,
    M_FIFO_FRAMED,
    M_MQ,
    M_MSGQ,
    M_UNIX_STREAM, /* the sockets, from here on */
    M_UNIX_DGRAM,
    M_UNIX_SEQPACKET,
    M_TCP,
    M_KINDS
};
static const char *mnames[M_KINDS] = {
    "ipc ring",       "pipe, raw",           "pipe, framed",        "FIFO, framed",
    "POSIX mq",       "System V msgq",       "Unix stream, framed", "Unix datagram",
    "Unix seqpacket", "TCP loopback, framed"};

/* Shared between the run process and the two sides of one measurement. */
typedef struct shared {
    uint32_t ready __attribute__((aligned(LINE))); /* the second side is attached */
    int err __attribute__((aligned(LINE)));        /* first failure, as -errno */
    uint32_t failed;
    char what[64];
    int64_t t0, t_end;
    uint64_t sum;
    int64_t lat[];
} shared;

/* One side's view of a channel: what it sends on and what it receives from. */
typedef struct end {
    int kind;
    ipc_ring tx, rx;
    int txfd, rxfd; /* pipe or FIFO fds; queue fds or ids */
    ipc_frame ftx, frx;
} end;

/* Named objects of the measurement under way, removed after it or on a fatal signal. */
static char g_dir[] = "/tmp/ipc-bench-XXXXXX";
static char g_mq[2][48], g_fifo[2][sizeof g_dir + 16];
static volatile sig_atomic_t g_have_dir, g_have_mq[2], g_have_fifo[2], g_have_msgq[2];
static volatile sig_atomic_t g_msgq[2];
static volatile pid_t g_child;
static shared *g_sh;
static int full, ncpu;

static void pin(int cpu) {
    cpu_set_t set;
    if (ncpu < 2) return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* Record the first failure of either side and exit (async-signal-safe). The second side
   also kills the first, which may be blocked on a queue that a dead peer never wakes. */
static void fail(shared *sh, const char *what, int r, int second) {
    if (__atomic_exchange_n(&sh->failed, 1, __ATOMIC_ACQ_REL) == 0) {
        size_t i;
        for (i = 0; what[i] && i < sizeof sh->what - 1; i++)
            sh->what[i] = what[i];
        __atomic_store_n(&sh->err, r < 0 ? r : -EIO, __ATOMIC_RELEASE);
    }
    if (second) kill(getppid(), SIGKILL);
    _exit(1);
}

/* The first side learns at once that the second one died (killed from outside, say):
   a queue would leave it blocked until the watchdog. */
static void on_child(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)ctx;
    if (si->si_code != CLD_EXITED || si->si_status != 0) fail(g_sh, "second side died", -EPIPE, 0);
}

/* Both sides die with their parent: a killed run leaves nothing running. */
static void die_with_parent(pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
}

/* ---- the channel: setup, one send, one receive ---- */

/* A connected TCP pair on loopback: listen on a port the kernel picks, connect, accept.
   The handshake completes in the listener's backlog, so one process can do all three. */
static int tcp_pair(int fds[2]) {
    ipc_sockaddr addr;
    char ep[64];
    int lfd = ipc_sock_listen("tcp:127.0.0.1:0", NULL), r, i;
    fds[0] = fds[1] = -1;
    if (lfd < 0) return lfd;
    r = ipc_sock_local(lfd, &addr);
    if (r == 0) r = ipc_sock_format(&addr, ep, sizeof ep);
    if (r >= 0) r = fds[0] = ipc_sock_connect(ep, NULL, 10 * IPC__NS);
    if (r >= 0) r = fds[1] = ipc_sock_accept(lfd, NULL, 10 * IPC__NS);
    /* Nagle would hold a small write back while an earlier one is unacknowledged: the
       tail of a frame sent in two writes could wait for the peer's delayed ack. */
    for (i = 0; i < 2 && r >= 0; i++)
        r = ipc_sock_set(fds[i], IPC_SOCK_NODELAY, 1);
    ipc_fd_close(&lfd);
    return r < 0 ? r : 0;
}

/* Anonymous objects, made by the first side before it forks the second. pp: both ways. */
static int chan_make(int kind, int pp, end *a, end *b) {
    ipc_ring_opts o = {0};
    ipc_pipe p[2];
    int r = 0;
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
    a->kind = b->kind = kind;
    a->txfd = a->rxfd = b->txfd = b->rxfd = -1;
    if (kind == M_RING) {
        o.capacity = pp ? 64 * 1024 : 1u << 20;
        o.flags = IPC_RING_PREFAULT;
        r = ipc_ring_create(&a->tx, NULL, IPC_PRODUCER, &o);
        if (r == 0 && pp) r = ipc_ring_create(&a->rx, NULL, IPC_CONSUMER, &o);
    } else if (kind == M_PIPE || kind == M_PIPE_FRAMED) {
        r = pp ? ipc_pipe_duplex(p, NULL) : ipc_pipe_open(&p[0], NULL);
        if (r == 0 && pp) {
            a->rxfd = p[0].rfd, a->txfd = p[0].wfd;
            b->rxfd = p[1].rfd, b->txfd = p[1].wfd;
        } else if (r == 0) {
            a->txfd = p[0].wfd, b->rxfd = p[0].rfd;
        }
    } else if (kind >= M_UNIX_STREAM) { /* a socket goes both ways: one for pp too */
        static const int types[] = {IPC_SOCK_STREAM, IPC_SOCK_DGRAM, IPC_SOCK_SEQPACKET};
        int fds[2];
        r = kind == M_TCP ? tcp_pair(fds) : ipc_sock_pair(fds, types[kind - M_UNIX_STREAM]);
        if (r == 0) a->txfd = a->rxfd = fds[0], b->txfd = b->rxfd = fds[1];
    }
    return r;
}

/* Attach this side (second: the one forked last) and close what belongs to the other. */
static int chan_attach(end *e, end *other, int second, int pp, const int q[2]) {
    int r = 0;
    switch (e->kind) {
    case M_RING:
        if (!second) return 0;
        r = ipc_ring_attach_fd(&e->rx, ipc_ring_fd(&other->tx), IPC_CONSUMER);
        if (r == 0 && pp) r = ipc_ring_attach_fd(&e->tx, ipc_ring_fd(&other->rx), IPC_PRODUCER);
        return r;
    case M_PIPE:
    case M_PIPE_FRAMED:
        ipc_fd_close(&other->rxfd);
        ipc_fd_close(&other->txfd);
        break;
    case M_FIFO_FRAMED:
        if (pp) {
            ipc_pipe p;
            r = ipc_fifo_duplex_open(&p, g_fifo[1], second ? IPC_FIFO_SIDE_B : IPC_FIFO_SIDE_A,
                                     10 * IPC__NS);
            e->rxfd = p.rfd, e->txfd = p.wfd;
        } else if (second) {
            r = e->rxfd = ipc_fifo_open(g_fifo[0], IPC_FIFO_READ, 0);
        } else {
            r = e->txfd = ipc_fifo_open(g_fifo[0], IPC_FIFO_WRITE, 10 * IPC__NS);
        }
        if (r < 0) return r;
        r = 0;
        break;
    case M_UNIX_STREAM:
    case M_TCP: /* one ipc_frame per stream, for both directions */
        ipc_fd_close(&other->rxfd);
        other->txfd = -1;
        return ipc_frame_init(&e->ftx, e->txfd, NULL);
    case M_UNIX_DGRAM:
    case M_UNIX_SEQPACKET:
        ipc_fd_close(&other->rxfd);
        other->txfd = -1;
        return 0;
    default: /* queues: fds and ids made by the run process, inherited */
        e->txfd = second ? (pp ? q[1] : -1) : q[0];
        e->rxfd = second ? q[0] : (pp ? q[1] : -1);
        return 0;
    }
    if (e->kind != M_PIPE) {
        if (e->txfd >= 0) r = ipc_frame_init(&e->ftx, e->txfd, NULL);
        if (r == 0 && e->rxfd >= 0) r = ipc_frame_init(&e->frx, e->rxfd, NULL);
    }
    return r;
}

/* 0 when a stream call moved the whole message. */
static ssize_t whole(ssize_t r, size_t size) {
    return r == (ssize_t)size ? 0 : r < 0 ? r : -EIO;
}

/* buf has a long in front of it, holding 1: the System V message type. */
static ssize_t chan_send(end *e, unsigned char *buf, size_t size) {
    switch (e->kind) {
    case M_RING: return ipc_ring_send(&e->tx, buf, size, IPC_FOREVER);
    case M_PIPE: return whole(ipc_fd_write_all(e->txfd, buf, size, IPC_FOREVER, NULL), size);
    case M_PIPE_FRAMED:
    case M_FIFO_FRAMED:
    case M_UNIX_STREAM:
    case M_TCP: return whole(ipc_frame_send(&e->ftx, buf, size, IPC_FOREVER), size);
    case M_UNIX_DGRAM:
    case M_UNIX_SEQPACKET: return whole(ipc_sock_send(e->txfd, buf, size, IPC_FOREVER, NULL), size);
    case M_MQ: return ipc_mq_send(e->txfd, buf, size, 0, IPC_FOREVER);
    default: return ipc_msgq_send(e->txfd, buf - sizeof(long), size, IPC_FOREVER);
    }
}

/* Returns the message length. buf holds at least MQ_MSG bytes. */
static ssize_t chan_recv(end *e, unsigned char *buf, size_t size) {
    switch (e->kind) {
    case M_RING: return ipc_ring_recv(&e->rx, buf, size, IPC_FOREVER);
    case M_PIPE: return ipc_fd_read_exact(e->rxfd, buf, size, IPC_FOREVER, NULL);
    case M_PIPE_FRAMED:
    case M_FIFO_FRAMED: return ipc_frame_recv(&e->frx, buf, size, IPC_FOREVER);
    case M_UNIX_STREAM:
    case M_TCP: return ipc_frame_recv(&e->ftx, buf, size, IPC_FOREVER);
    case M_UNIX_DGRAM:
    case M_UNIX_SEQPACKET: return ipc_sock_recv(e->rxfd, buf, size, IPC_FOREVER);
    case M_MQ: return ipc_mq_recv(e->rxfd, buf, MQ_MSG, NULL, IPC_FOREVER);
    default: return ipc_msgq_recv(e->rxfd, buf - sizeof(long), size, 0, 0, IPC_FOREVER);
    }
}

/* ---- the two sides ---- */

static unsigned char *msg_buf(size_t size) {
    size_t cap = sizeof(long) + (size > MQ_MSG ? size : MQ_MSG);
    unsigned char *raw = (unsigned char *)calloc(1, cap);
    long type = 1;
    if (!raw) return NULL;
    memcpy(raw, &type, sizeof type);
    return raw + sizeof(long);
}

/* The second side: consumer, or echo for ping-pong. */
static int side_b(shared *sh, end *e, int pp, size_t size, long n) {
    unsigned char *buf = msg_buf(size);
    uint64_t sum = 0;
    long i;
    if (!buf) fail(sh, "malloc", -ENOMEM, 1);
    __atomic_store_n(&sh->ready, 1, __ATOMIC_RELEASE);
    for (i = 0; i < n; i++) {
        ssize_t k = chan_recv(e, buf, size);
        uint64_t seq;
        if (k != (ssize_t)size) fail(sh, "receive", k < 0 ? (int)k : -EBADMSG, 1);
        memcpy(&seq, buf, sizeof seq);
        if (seq != (uint64_t)i || buf[size - 1] != (unsigned char)i)
            fail(sh, "message out of order", -EBADMSG, 1);
        if (pp && (k = chan_send(e, buf, size)) != 0) fail(sh, "echo", (int)k, 1);
        sum += seq + buf[size - 1];
    }
    sh->sum = sum;
    __atomic_store_n(&sh->t_end, ipc_time_now(), __ATOMIC_RELEASE);
    return 0;
}

/* The first side: producer, or the pinging side that times each round trip. */
static int side_a(shared *sh, end *e, int pp, size_t size, long n) {
    unsigned char *buf = msg_buf(size);
    long i;
    if (!buf) fail(sh, "malloc", -ENOMEM, 0);
    while (!__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE))
        sched_yield();
    sh->t0 = ipc_time_now();
    for (i = 0; i < n; i++) {
        int64_t t = pp ? ipc_time_now() : 0;
        uint64_t seq = (uint64_t)i;
        ssize_t k;
        memcpy(buf, &seq, sizeof seq);
        buf[size - 1] = (unsigned char)i;
        if ((k = chan_send(e, buf, size)) != 0) fail(sh, "send", (int)k, 0);
        if (!pp) continue;
        if ((k = chan_recv(e, buf, size)) != (ssize_t)size)
            fail(sh, "receive the echo", k < 0 ? (int)k : -EBADMSG, 0);
        memcpy(&seq, buf, sizeof seq);
        if (seq != (uint64_t)i) fail(sh, "echo out of order", -EBADMSG, 0);
        sh->lat[i] = ipc_time_now() - t;
    }
    return 0;
}

/* The first side's process: make the anonymous objects, fork the second side, run. */
static void first_side(shared *sh, int kind, int pp, size_t size, long n, const int q[2]) {
    pid_t me = getpid(), pid;
    struct sigaction sa;
    end a, b;
    int r, st;
    pin(0);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_child;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
    g_sh = sh;
    sigaction(SIGCHLD, &sa, NULL);
    if ((r = chan_make(kind, pp, &a, &b)) < 0) fail(sh, "create", r, 0);
    pid = fork();
    if (pid < 0) fail(sh, "fork", -errno, 0);
    if (pid == 0) {
        die_with_parent(me);
        pin(1);
        if ((r = chan_attach(&b, &a, 1, pp, q)) < 0) fail(sh, "attach (second side)", r, 1);
        _exit(side_b(sh, &b, pp, size, n));
    }
    if ((r = chan_attach(&a, &b, 0, pp, q)) < 0) fail(sh, "attach (first side)", r, 0);
    side_a(sh, &a, pp, size, n);
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail(sh, "second side died", -EPIPE, 0);
    _exit(0);
}

/* ---- the run process: named objects, watchdog, cleanup ---- */

static void remove_named(void) {
    int i;
    for (i = 0; i < 2; i++) {
        if (g_have_mq[i]) ipc_mq_unlink(g_mq[i]);
        if (g_have_msgq[i]) ipc_msgq_remove(g_msgq[i]);
        if (g_have_fifo[i] && i == 0) ipc_fifo_unlink(g_fifo[i]);
        if (g_have_fifo[i] && i == 1) ipc_fifo_duplex_unlink(g_fifo[i]);
        g_have_mq[i] = g_have_msgq[i] = g_have_fifo[i] = 0;
    }
}

static void on_fatal(int sig) {
    if (g_child > 0) kill(g_child, SIGKILL); /* the second side follows (PDEATHSIG) */
    remove_named();
    if (g_have_dir) rmdir(g_dir);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_alarm(int sig) {
    (void)sig; /* only interrupts waitpid */
}

static void report(int kind, int pp, size_t size, const char *what, int r) {
    fprintf(stderr, "\rbench: %s, %zu B, %s: %s: %s\n", mnames[kind], size,
            pp ? "ping-pong" : "throughput", what, ipc_strerror(r));
}

/* The named objects: q[0] carries first -> second side, q[1] the way back; a FIFO, or
   for ping-pong a FIFO pair. */
static int named_make(int kind, int pp, int q[2]) {
    ipc_mq_opts o = {0};
    int i, r = 0;
    q[0] = q[1] = -1;
    o.max_msgs = 10;
    o.msg_size = MQ_MSG;
    if (kind == M_FIFO_FRAMED) {
        snprintf(g_fifo[pp], sizeof g_fifo[pp], "%s/%s", g_dir, pp ? "duplex" : "fifo");
        r = pp ? ipc_fifo_duplex_create(g_fifo[pp], 0) : ipc_fifo_create(g_fifo[pp], 0);
        g_have_fifo[pp] = r == 0;
    }
    for (i = 0; i < 1 + pp && r >= 0; i++) {
        if (kind == M_MQ) {
            snprintf(g_mq[i], sizeof g_mq[i], "/ipc-bench-%ld-%d", (long)getpid(), i);
            r = q[i] = ipc_mq_create(g_mq[i], &o);
            g_have_mq[i] = r >= 0;
        } else if (kind == M_MSGQ) {
            r = q[i] = ipc_msgq_create(IPC_PRIVATE, 0);
            g_msgq[i] = r;
            g_have_msgq[i] = r >= 0;
        }
    }
    return r < 0 ? r : 0;
}

/* One measurement. Returns 0 with the results in sh, or -1 (reported). */
static int measure(shared *sh, int kind, int pp, size_t size, long n) {
    int q[2], r, st = 0, timed_out = 0;
    pid_t pid, me = getpid();
    memset(sh, 0, sizeof *sh);
    if ((r = named_make(kind, pp, q)) < 0) {
        report(kind, pp, size, "create", r);
        remove_named();
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        die_with_parent(me);
        first_side(sh, kind, pp, size, n, q);
    }
    g_child = pid;
    if (kind == M_MQ) /* the sides have their own fds now */
        for (r = 0; r < 2; r++)
            if (q[r] >= 0) ipc_mq_close(q[r]);
    if (pid > 0) {
        alarm(full ? 300 : 60);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            timed_out = 1; /* only the watchdog interrupts us */
            kill(pid, SIGKILL);
        }
        alarm(0);
    }
    g_child = 0;
    /* A second side orphaned by a failed first one was reparented to us (subreaper). */
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    remove_named();
    if (pid < 0) {
        report(kind, pp, size, "fork", -errno);
        return -1;
    }
    if (__atomic_load_n(&sh->failed, __ATOMIC_ACQUIRE)) {
        report(kind, pp, size, sh->what, sh->err);
        return -1;
    }
    if (timed_out || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        report(kind, pp, size, timed_out ? "hung, killed" : "died",
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
}

/* Messages (or round trips) per round, [ring?][ping-pong?][4 KiB?]: the ring moves
   ~100x more than a system call per message does; a slow machine's ping-pong has a long
   tail, and the default run must stay within a minute on two noisy cores. */
static long count(int kind, int pp, size_t size) {
    static const long n[2][2][2] = {{{30000, 15000}, {4000, 4000}},
                                    {{300000, 100000}, {50000, 50000}}};
    long v = n[kind == M_RING][pp][size > 64];
    return full ? v * 5 : v;
}

int main(void) {
    static const size_t sizes[2] = {64, 4096};
    const char *mode = getenv("BENCH");
    double tp[2][M_KINDS] = {{0}};
    int64_t p50[2][M_KINDS], p99[2][M_KINDS];
    struct sigaction sa;
    size_t shsize;
    shared *sh;
    int rounds, r, s, k, pp, sigs[] = {SIGINT, SIGTERM, SIGHUP};

    full = mode && strcmp(mode, "full") == 0;
    rounds = full ? 5 : 3;
    ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    shsize = sizeof(shared) + sizeof(int64_t) * (size_t)count(M_RING, 1, 64);
    sh = (shared *)mmap(NULL, shsize, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (sh == MAP_FAILED) return 1;
    for (s = 0; s < 2; s++)
        for (k = 0; k < M_KINDS; k++)
            p50[s][k] = p99[s][k] = -1;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    for (k = 0; k < 3; k++)
        sigaction(sigs[k], &sa, NULL);
    sa.sa_handler = on_alarm; /* no SA_RESTART: it must interrupt waitpid */
    sigaction(SIGALRM, &sa, NULL);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (!mkdtemp(g_dir)) {
        perror("bench: mkdtemp");
        return 1;
    }
    g_have_dir = 1;

    machine();
    fflush(stdout); /* before the progress lines on stderr */
    for (r = 0; r < rounds; r++)
        for (s = 0; s < 2; s++)
            for (k = 0; k < M_KINDS; k++)
                for (pp = 0; pp < 2; pp++) {
                    long n = count(k, pp, sizes[s]);
                    fprintf(stderr, "\r  round %d/%d: %-20s %4zu B %-10s", r + 1, rounds, mnames[k],
                            sizes[s], pp ? "ping-pong" : "throughput");
                    if (measure(sh, k, pp, sizes[s], n) < 0) continue;
                    if (!pp) {
                        double v = (double)n * 1e9 / (double)(sh->t_end - sh->t0);
                        uint64_t want = 0, i;
                        for (i = 0; i < (uint64_t)n; i++)
                            want += i + (i & 255);
                        if (sh->sum != want) {
                            report(k, pp, sizes[s], "checksum", -EBADMSG);
                            continue;
                        }
                        if (v > tp[s][k]) tp[s][k] = v;
                        continue;
                    }
                    qsort(sh->lat, (size_t)n, sizeof sh->lat[0], cmp64);
                    if (p50[s][k] < 0 || sh->lat[n / 2] < p50[s][k]) {
                        p50[s][k] = sh->lat[n / 2];
                        p99[s][k] = sh->lat[n * 99 / 100];
                    }
                }
    fprintf(stderr, "\r%70s\r", "");
    rmdir(g_dir);
    g_have_dir = 0;

    printf("\n%d interleaved rounds. Throughput: the best round; messages per round: ring\n"
           "%ld (64 B) / %ld (4 KiB), others %ld / %ld. Round trips: the round with the lowest\n"
           "p50; %ld per round, ring %ld.\n",
           rounds, count(M_RING, 0, 64), count(M_RING, 0, 4096), count(M_PIPE, 0, 64),
           count(M_PIPE, 0, 4096), count(M_PIPE, 1, 64), count(M_RING, 1, 64));
    for (s = 0; s < 2; s++) {
        char label[32];
        snprintf(label, sizeof label, "%zu-byte messages", sizes[s]);
        printf("\n  %-20s %12s %10s %12s %12s\n", label, "msgs/s", "MB/s", "RTT p50 ns",
               "RTT p99 ns");
        for (k = 0; k < M_KINDS; k++) {
            printf("  %-20s", mnames[k]);
            if (tp[s][k] > 0)
                printf(" %12.0f %10.1f", tp[s][k], tp[s][k] * (double)sizes[s] / 1e6);
            else
                printf(" %12s %10s", "failed", "-");
            if (p50[s][k] >= 0)
                printf(" %12lld %12lld\n", (long long)p50[s][k], (long long)p99[s][k]);
            else
                printf(" %12s %12s\n", "failed", "-");
        }
    }
    printf("\nratios                 ring msgs/s / theirs   their RTT p50 / ring's\n");
    printf("  %-20s %10s %10s %12s %10s\n", "", "64 B", "4 KiB", "64 B", "4 KiB");
    for (k = 1; k < M_KINDS; k++) {
        printf("  %-20s", mnames[k]);
        for (s = 0; s < 2; s++)
            if (tp[s][k] > 0 && tp[s][M_RING] > 0)
                printf(" %9.1fx", tp[s][M_RING] / tp[s][k]);
            else
                printf(" %10s", "-");
        printf("  ");
        for (s = 0; s < 2; s++)
            if (p50[s][k] > 0 && p50[s][M_RING] > 0)
                printf(" %9.1fx", (double)p50[s][k] / (double)p50[s][M_RING]);
            else
                printf(" %10s", "-");
        printf("\n");
    }
    munmap(sh, shsize);
    return 0;
}
