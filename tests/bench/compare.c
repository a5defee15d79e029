/* tests/bench/compare.c - "which IPC should I use?": every mechanism of ipc.h side by side
   in one run, each through the ipc.h API, with the hardware's floors as reference lines.

   mechanisms  the ring: SPSC spinning (spin_ns 20 ms, so a waiter never sleeps), SPSC
               blocking (spin_ns 1: every wait sleeps on the futex), MPMC and broadcast
               (one reader) with their default spin; pipe, FIFO, Unix stream and TCP
               loopback (TCP_NODELAY), each carrying messages with ipc_frame_*; POSIX mq
               (msg_size = the message size, 10 messages); System V msgq (IPC_PRIVATE);
               Unix datagram and seqpacket (ipc_sock_pair); UDP loopback (ipc_sock_bind +
               ipc_sock_connect); and the notifications that carry no payload, each next to
               slots in shared memory that hold it: eventfd, futex word (always woken),
               realtime signal queued to a signalfd, POSIX semaphore (unnamed, in the
               shared memory), System V semaphore, robust mutex + condition variable
   floors      a raw cache-line ping-pong (two words on two lines, both sides spinning: no
               round trip between cores can be faster) and an idealized fixed-slot copy
               loop (memcpy into slots, cached indices published every 16 slots, no checks:
               the least a copying channel can spend per message); every ring figure is
               also given as a ratio to them. From 4 KiB up the bytes' trip between the
               cores' caches dominates, and the rings have beaten the loop on the 2-core
               VM this was written on: how far the reader trails the writer matters more
               than the bookkeeping then
   round trip  ping-pong of a 64-byte message through one channel each way (rings, FIFOs,
               queues: two; pipes: a duplex pair; sockets: one); side A times each round
               trip; p50 / p99 / p99.9 / max over 100 000 after 2 000 untimed (BENCH=full:
               1 000 000), fewer (at least 1 000) when the run's time budget is spent
               first: 8 s (BENCH=full 60 s), so that a spinning pair on a busy machine,
               whose every round trip may wait for a time slice, cannot stall the run;
               the table says how many
   throughput  one way, 64 B, 4 KiB and 64 KiB messages: A sends for a fixed time after a
               short warm-up, B receives and checks each message (its sequence number and
               last byte), and the rate is the messages after the warm-up over the time from
               the first of them sent to the last received. The notifications hand off
               through 16 slots: the producer copies into a free slot and notifies, the
               consumer copies out and notifies back that the slot is free. UDP has no
               flow control and drops what overflows the receiver, so its producer keeps a
               window of datagrams in flight and the consumer returns credits.
               n/a where the size is impossible: UDP carries at most 65 507 bytes; POSIX
               and System V queues refuse messages over their limits (msgsize_max, msgmax)
   CPU         user + system time of each side (getrusage) over the timed part, per
               message or per round trip: CPU A is the producer (the pinging side), B the
               consumer (the echoing side)

   The two sides are two processes pinned to different cores (when there are two),
   coordinated through shared anonymous memory. The run process creates the named objects
   (queues, FIFOs, the System V semaphore), forks side A, which makes the anonymous ones and
   forks side B, and waits with a watchdog: a side that fails or hangs is reported and
   killed, the named objects are removed whatever happened (also on SIGINT/SIGTERM/SIGHUP),
   and the other mechanisms go on. Throughput runs in interleaved rounds (the best counts;
   the machine is shared and its speed drifts), the round trips in between.

   Output: tables on stdout, bench.csv and bench.md in the current directory, a progress
   line on stderr. BENCH=full for more samples; arguments, if any, pick mechanisms by
   name (substrings: compare ring "Unix" shm). Never fails on a number. */
#define _GNU_SOURCE 1
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include "bench.h"

#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE      128
#define SLOTS     16        /* the notifications' handoff slots, for throughput */
#define MAX_SIZE  65536     /* the largest message */
#define ARENA     (4 << 20) /* the ideal loop's slots, or the notifications' */
#define SPIN_NS   20000000u /* "spinning" ring: spin up to 20 ms before sleeping */
#define UDP_BYTES 65536     /* UDP: datagrams in flight, by their size + 1 KiB overhead */

enum {
    K_CACHELINE, /* floor: round trip */
    K_IDEAL,     /* floor: throughput */
    K_RING_SPIN,
    K_RING_BLOCK,
    K_RING_MPMC,
    K_RING_BCAST,
    K_PIPE,
    K_FIFO,
    K_MQ,
    K_MSGQ,
    K_USTREAM,
    K_UDGRAM,
    K_USEQ,
    K_TCP,
    K_UDP,
    K_EVENT, /* the notifications, from here on */
    K_FUTEX,
    K_SIGNAL,
    K_SEM,
    K_SEMSET,
    K_COND,
    K_KINDS
};
static const char *names[K_KINDS] = {"cache-line ping-pong",
                                     "ideal fixed-slot copy",
                                     "ring SPSC spin",
                                     "ring SPSC blocking",
                                     "ring MPMC",
                                     "ring broadcast",
                                     "pipe",
                                     "FIFO",
                                     "POSIX mq",
                                     "System V msgq",
                                     "Unix stream",
                                     "Unix datagram",
                                     "Unix seqpacket",
                                     "TCP loopback",
                                     "UDP loopback",
                                     "eventfd + shm",
                                     "futex + shm",
                                     "rt signal + shm",
                                     "POSIX sem + shm",
                                     "System V sem + shm",
                                     "mutex + cond + shm"};
static const size_t sizes[3] = {64, 4096, 65536};
static const char *size_names[3] = {"64 B", "4 KiB", "64 KiB"};

static int is_ring(int k) {
    return k >= K_RING_SPIN && k <= K_RING_BCAST;
}

/* Shared between the run process and the two sides of one measurement. */
typedef struct shared {
    uint32_t ready __attribute__((aligned(LINE))); /* side B is attached */
    long last __attribute__((aligned(LINE)));      /* messages or round trips; A may lower it */
    long warm_end;                                 /* the first timed message */
    long done __attribute__((aligned(LINE)));      /* A's progress */
    int err __attribute__((aligned(LINE)));        /* first failure, as -errno */
    uint32_t failed;
    char what[96];
    int64_t t0, t1;    /* timed part: A's start; the end (B's last receive, A's last echo) */
    int64_t cpu[2];    /* CPU ns of each side over the timed part */
    uint64_t calls[2]; /* rings: futex calls each side made, all messages */
    uint64_t sum;      /* B's checksum of the sequence numbers */
    uint32_t ping __attribute__((aligned(LINE))); /* cache-line ping-pong */
    uint32_t pong __attribute__((aligned(LINE)));
    uint64_t itail __attribute__((aligned(LINE))); /* ideal loop */
    uint64_t ihead __attribute__((aligned(LINE)));
    /* The notifications: [0] wakes side B, [1] side A. */
    uint32_t word[2][LINE / 4] __attribute__((aligned(LINE))); /* futex counts; cond counts */
    unsigned char sem[2][IPC_SEM_SIZE] __attribute__((aligned(LINE)));
    unsigned char mutex[IPC_MUTEX_SIZE] __attribute__((aligned(LINE)));
    unsigned char cond[2][IPC_COND_SIZE] __attribute__((aligned(LINE)));
} shared;

/* The anonymous objects of a measurement, made by side A before it forks B (so both
   have them), and the named ones the run process made. */
typedef struct objs {
    ipc_ring ring[2]; /* [0] A -> B, [1] B -> A; A's handles */
    int fd[2][2];     /* per side: the fd it sends on and the one it receives from */
    ipc_sockaddr to;  /* UDP: B's address, where A sends */
    int ev[2];
    ipc_sem *sem[2];
    ipc_mutex *mutex;
    ipc_cond *cond[2];
    int q[2]; /* POSIX or System V queues, [0] A -> B */
    int semid;
} objs;

/* One side's view of the channel. */
typedef struct end {
    int kind, side, pp; /* side 0 = A (producer, pinger), 1 = B; pp: ping-pong */
    size_t size;
    shared *sh;
    ipc_ring tx, rx;
    int txfd, rxfd;
    ipc_frame ftx, frx;
    long window, credits, owed; /* UDP flow control; notifications: free slots */
    long avail, ntx, nrx, stop; /* notifications: messages announced, sent, received */
    uint32_t seen;              /* futex: the count of our word already taken */
    intptr_t sig_tx, sig_rx;    /* signals sent and received: their payloads */
    int sigfd;
    pid_t peer;
    unsigned char *slot_tx, *slot_rx;
    size_t nslots;
    uint64_t ihead, itail, ibatch, islots; /* ideal loop */
} end;

static objs g_o;
static shared *g_sh;
static unsigned char *g_arena;
static int64_t *g_lat;
static int full, ncpu;

/* Named objects of the measurement under way, removed after it or on a fatal signal. */
static char g_dir[] = "/tmp/ipc-bench-XXXXXX";
static char g_mq[2][48], g_fifo[sizeof g_dir + 16];
static volatile sig_atomic_t g_have_dir, g_have_mq[2], g_have_fifo, g_fifo_duplex, g_have_msgq[2],
    g_have_semset;
static volatile sig_atomic_t g_msgq[2], g_semid;
static volatile pid_t g_child;

/* Per mode: round trips, untimed ones before them, time budget of a round-trip run;
   throughput warm-up and timed run; throughput rounds. */
static long rt_n, rt_warm, tp_rounds;
static int64_t rt_budget, tp_warm, tp_run;

static void pin(int cpu) {
    cpu_set_t set;
    if (ncpu < 2) return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static int64_t cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + (int64_t)ru.ru_stime.tv_sec) * IPC__NS +
           ((int64_t)ru.ru_utime.tv_usec + (int64_t)ru.ru_stime.tv_usec) * 1000;
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
    if (side_b) kill(getppid(), SIGKILL);
    _exit(1);
}

/* Side A learns at once that B died (killed from outside, say): it could be blocked, or
   spinning, on something that B never does. */
static void on_child(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)ctx;
    if (si->si_code != CLD_EXITED || si->si_status != 0) fail(g_sh, "side B died", -EPIPE, 0);
}

/* Both sides die with their parent: a killed run leaves nothing running. */
static void die_with_parent(pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
}

/* ---- making the channel (side A, before it forks B) ---- */

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
    /* Nagle would hold a small write back while an earlier one is unacknowledged. */
    for (i = 0; i < 2 && r >= 0; i++)
        r = ipc_sock_set(fds[i], IPC_SOCK_NODELAY, 1);
    ipc_fd_close(&lfd);
    return r < 0 ? r : 0;
}

/* UDP on loopback: A's socket bound to a port the kernel picks, B's connected to it; A
   sends to B's address. Receive buffers as large as the system allows (the window below
   keeps within the default ones anyway). */
static int udp_pair(int fds[2], ipc_sockaddr *b_addr) {
    ipc_sockaddr addr;
    char ep[64];
    int r;
    fds[1] = -1;
    r = fds[0] = ipc_sock_bind("udp:127.0.0.1:0", NULL);
    if (r >= 0) r = ipc_sock_local(fds[0], &addr);
    if (r == 0) r = ipc_sock_format(&addr, ep, sizeof ep);
    if (r >= 0) r = fds[1] = ipc_sock_connect(ep, NULL, 10 * IPC__NS);
    if (r >= 0) r = ipc_sock_local(fds[1], b_addr);
    if (r == 0) r = ipc_sock_set_buffers(fds[0], 0, 1 << 20);
    if (r == 0) r = ipc_sock_set_buffers(fds[1], 0, 1 << 20);
    return r < 0 ? r : 0;
}

static size_t ring_capacity(int pp, size_t size) {
    return pp ? 64 * 1024 : size > 4096 ? 4u << 20 : 1u << 20;
}

static int chan_make(int kind, int pp, size_t size) {
    static const int socktypes[] = {IPC_SOCK_STREAM, IPC_SOCK_DGRAM, IPC_SOCK_SEQPACKET};
    ipc_ring_opts o = {0};
    ipc_pipe p[2];
    int r = 0, i, fds[2];
    for (i = 0; i < 2; i++)
        g_o.fd[i][0] = g_o.fd[i][1] = g_o.ev[i] = -1;
    switch (kind) {
    case K_RING_SPIN:
    case K_RING_BLOCK:
    case K_RING_MPMC:
    case K_RING_BCAST:
        o.capacity = ring_capacity(pp, size);
        o.flags = IPC_RING_PREFAULT;
        o.spin_ns = kind == K_RING_SPIN ? SPIN_NS : kind == K_RING_BLOCK ? 1 : 0;
        if (kind == K_RING_MPMC) o.flags |= IPC_RING_MPMC | IPC_RING_MSG(size);
        if (kind == K_RING_BCAST) o.flags |= IPC_RING_BROADCAST | IPC_RING_MSG(size);
        r = ipc_ring_create(&g_o.ring[0], NULL, IPC_PRODUCER, &o);
        if (r == 0 && pp) r = ipc_ring_create(&g_o.ring[1], NULL, IPC_CONSUMER, &o);
        break;
    case K_PIPE:
        if (pp) {
            if ((r = ipc_pipe_duplex(p, NULL)) < 0) break;
            g_o.fd[0][0] = p[0].wfd, g_o.fd[0][1] = p[0].rfd;
            g_o.fd[1][0] = p[1].wfd, g_o.fd[1][1] = p[1].rfd;
        } else if ((r = ipc_pipe_open(&p[0], NULL)) == 0) {
            g_o.fd[0][0] = p[0].wfd, g_o.fd[1][1] = p[0].rfd;
        }
        break;
    case K_USTREAM:
    case K_UDGRAM:
    case K_USEQ:
    case K_TCP:
    case K_UDP:
        r = kind == K_TCP   ? tcp_pair(fds)
            : kind == K_UDP ? udp_pair(fds, &g_o.to)
                            : ipc_sock_pair(fds, socktypes[kind - K_USTREAM]);
        if (r == 0)
            for (i = 0; i < 2; i++)
                g_o.fd[i][0] = g_o.fd[i][1] = fds[i];
        break;
    case K_EVENT:
        for (i = 0; i < 2 && r >= 0; i++)
            r = g_o.ev[i] = ipc_event_open(0, 0);
        break;
    case K_SEM:
        for (i = 0; i < 2 && r == 0; i++)
            r = ipc_sem_init(g_sh->sem[i], 0, &g_o.sem[i]);
        break;
    case K_COND:
        r = ipc_mutex_init(g_sh->mutex, &g_o.mutex);
        for (i = 0; i < 2 && r == 0; i++)
            r = ipc_cond_init(g_sh->cond[i], &g_o.cond[i]);
        break;
    default: break; /* FIFOs, queues, semaphore set: named, made by the run process */
    }
    return r < 0 ? r : 0;
}

/* Set up this side's end of the channel made above. */
static int end_init(end *e, int kind, int side, int pp, size_t size, pid_t peer) {
    int r = 0, i;
    memset(e, 0, sizeof *e);
    e->kind = kind, e->side = side, e->pp = pp, e->size = size, e->sh = g_sh, e->peer = peer;
    e->txfd = e->rxfd = e->sigfd = -1;
    e->stop = LONG_MAX;
    switch (kind) {
    case K_CACHELINE: break;
    case K_IDEAL:
        e->islots = ring_capacity(0, size) / size;
        e->ibatch = e->islots / 4 < 16 ? e->islots / 4 : 16;
        break;
    case K_RING_SPIN:
    case K_RING_BLOCK:
    case K_RING_MPMC:
    case K_RING_BCAST:
        if (side == 0) {
            e->tx = g_o.ring[0];
            if (pp) e->rx = g_o.ring[1];
            break;
        }
        r = ipc_ring_attach_fd(&e->rx, ipc_ring_fd(&g_o.ring[0]), IPC_CONSUMER);
        if (r == 0 && pp) r = ipc_ring_attach_fd(&e->tx, ipc_ring_fd(&g_o.ring[1]), IPC_PRODUCER);
        /* The spin is a handle's, set at create: no call sets it on an attached handle,
           so B's handles get A's setting here (as the ring tests do). */
        if (kind == K_RING_SPIN || kind == K_RING_BLOCK)
            e->rx.spin_ns = e->tx.spin_ns = kind == K_RING_SPIN ? SPIN_NS : 1;
        break;
    case K_FIFO:
        if (pp) {
            ipc_pipe p;
            r = ipc_fifo_duplex_open(&p, g_fifo, side ? IPC_FIFO_SIDE_B : IPC_FIFO_SIDE_A,
                                     10 * IPC__NS);
            e->rxfd = p.rfd, e->txfd = p.wfd;
        } else if (side) {
            r = e->rxfd = ipc_fifo_open(g_fifo, IPC_FIFO_READ, 0);
        } else {
            r = e->txfd = ipc_fifo_open(g_fifo, IPC_FIFO_WRITE, 10 * IPC__NS);
        }
        if (r >= 0 && e->txfd >= 0) r = ipc_frame_init(&e->ftx, e->txfd, NULL);
        if (r >= 0 && e->rxfd >= 0) r = ipc_frame_init(&e->frx, e->rxfd, NULL);
        break;
    case K_MQ:
    case K_MSGQ:
        e->txfd = side ? (pp ? g_o.q[1] : -1) : g_o.q[0];
        e->rxfd = side ? g_o.q[0] : (pp ? g_o.q[1] : -1);
        break;
    case K_EVENT:
    case K_FUTEX:
    case K_SIGNAL:
    case K_SEM:
    case K_SEMSET:
    case K_COND:
        e->nslots = pp ? 1 : SLOTS;
        e->credits = (long)e->nslots;
        e->slot_tx = g_arena + (size_t)side * SLOTS * MAX_SIZE;
        e->slot_rx = g_arena + (size_t)!side * SLOTS * MAX_SIZE;
        if (kind == K_SIGNAL) r = e->sigfd = ipc_signal_fd(IPC_SIGBIT(SIGRTMIN));
        break;
    default: /* pipes and sockets */
        e->txfd = g_o.fd[side][0], e->rxfd = g_o.fd[side][1];
        for (i = 0; i < 2; i++) /* the other side's fds, unless they are ours too */
            if (g_o.fd[!side][i] != e->txfd && g_o.fd[!side][i] != e->rxfd)
                ipc_fd_close(&g_o.fd[!side][i]);
        /* A stream carries messages framed; one ipc_frame per stream for both ways. */
        if (kind == K_PIPE && e->txfd >= 0) r = ipc_frame_init(&e->ftx, e->txfd, NULL);
        if (kind == K_PIPE && r == 0 && e->rxfd >= 0) r = ipc_frame_init(&e->frx, e->rxfd, NULL);
        if (kind == K_USTREAM || kind == K_TCP) r = ipc_frame_init(&e->ftx, e->txfd, NULL);
        /* UDP: datagrams in flight (by size + 1 KiB of kernel overhead each); the
           consumer returns credits every half window. */
        e->window = UDP_BYTES / (long)(size + 1024);
        e->window = e->window < 2 ? 2 : e->window > 64 ? 64 : e->window;
        e->credits = e->window;
        break;
    }
    return r < 0 ? r : 0;
}

/* ---- the notifications: bell 0 wakes B, bell 1 wakes A ---- */

static void bell_ring(end *e, int bell) {
    uint32_t *w = &e->sh->word[bell][0];
    ipc_semop op;
    int r = 0;
    switch (e->kind) {
    case K_EVENT: r = ipc_event_post(g_o.ev[bell], 1); break;
    case K_FUTEX:
        __atomic_add_fetch(w, 1, __ATOMIC_RELEASE);
        r = ipc_futex_wake(w, 1);
        break;
    case K_SIGNAL: r = ipc_signal_queue(e->peer, SIGRTMIN, ++e->sig_tx); break;
    case K_SEM: r = ipc_sem_post(g_o.sem[bell]); break;
    case K_SEMSET:
        op.num = (unsigned short)bell, op.op = 1, op.flags = 0;
        r = ipc_semset_op(g_o.semid, &op, 1, IPC_FOREVER);
        break;
    default:
        if ((r = ipc_mutex_lock(g_o.mutex, IPC_FOREVER)) != 0) break;
        (*w)++;
        r = ipc_cond_signal(g_o.cond[bell]);
        if (r == 0) r = ipc_mutex_unlock(g_o.mutex);
        break;
    }
    if (r != 0 && (r < 0 || e->kind == K_COND))
        fail(e->sh, "notify", r < 0 ? r : -EOWNERDEAD, e->side);
}

/* Wait for bell: how many notifications it took (eventfd, futex and mutex + cond take
   every one pending at once; the others one). */
static long bell_wait(end *e, int bell) {
    uint32_t *w = &e->sh->word[bell][0], cur;
    ipc_siginfo si;
    ipc_semop op;
    uint64_t v = 0;
    long got = 1;
    int r;
    switch (e->kind) {
    case K_EVENT:
        r = ipc_event_wait(g_o.ev[bell], &v, IPC_FOREVER);
        got = (long)v;
        break;
    case K_FUTEX:
        while ((cur = __atomic_load_n(w, __ATOMIC_ACQUIRE)) == e->seen)
            if ((r = ipc_futex_wait(w, cur, IPC_FOREVER)) < 0)
                fail(e->sh, "futex wait", r, e->side);
        got = (long)(uint32_t)(cur - e->seen);
        e->seen = cur;
        return got;
    case K_SIGNAL:
        r = ipc_signal_read(e->sigfd, &si, IPC_FOREVER);
        if (r >= 0 && (r != SIGRTMIN || si.code != SI_QUEUE || si.value != ++e->sig_rx))
            fail(e->sh, "wrong signal or payload", -EBADMSG, e->side);
        break;
    case K_SEM: r = ipc_sem_wait(g_o.sem[bell], IPC_FOREVER); break;
    case K_SEMSET:
        op.num = (unsigned short)bell, op.op = -1, op.flags = 0;
        r = ipc_semset_op(g_o.semid, &op, 1, IPC_FOREVER);
        break;
    default:
        if ((r = ipc_mutex_lock(g_o.mutex, IPC_FOREVER)) != 0) break;
        while (*w == 0 && r == 0)
            r = ipc_cond_wait(g_o.cond[bell], g_o.mutex, IPC_FOREVER);
        got = (long)*w;
        *w = 0;
        if (r == 0) r = ipc_mutex_unlock(g_o.mutex);
        break;
    }
    if (r < 0 || (r > 0 && e->kind == K_COND))
        fail(e->sh, "wait", r < 0 ? r : -EOWNERDEAD, e->side);
    if (got < 1) fail(e->sh, "woken with nothing", -EBADMSG, e->side);
    return got;
}

/* ---- one message each way ---- */

/* 0 when a call moved the whole message. */
static ssize_t whole(ssize_t r, size_t size) {
    return r == (ssize_t)size ? 0 : r < 0 ? r : -EIO;
}

/* Send one message of e->size bytes. buf has a long in front of it holding 1, the
   System V message type. 0 or a negative errno. */
static ssize_t chan_send(end *e, unsigned char *buf) {
    size_t size = e->size;
    ssize_t k;
    uint64_t head;
    switch (e->kind) {
    case K_CACHELINE:
        __atomic_store_n(e->side ? &e->sh->pong : &e->sh->ping, (uint32_t)++e->ntx,
                         __ATOMIC_RELEASE);
        return 0;
    case K_IDEAL:
        while (e->itail - e->ihead >= e->islots)
            e->ihead = __atomic_load_n(&e->sh->ihead, __ATOMIC_ACQUIRE);
        memcpy(g_arena + (e->itail % e->islots) * size, buf, size);
        if (++e->itail % e->ibatch == 0 || (long)e->itail >= e->stop)
            __atomic_store_n(&e->sh->itail, e->itail, __ATOMIC_RELEASE);
        return 0;
    case K_RING_SPIN:
    case K_RING_BLOCK:
    case K_RING_MPMC:
    case K_RING_BCAST: return ipc_ring_send(&e->tx, buf, size, IPC_FOREVER);
    case K_PIPE:
    case K_FIFO:
    case K_USTREAM:
    case K_TCP: return whole(ipc_frame_send(&e->ftx, buf, size, IPC_FOREVER), size);
    case K_UDGRAM:
    case K_USEQ: return whole(ipc_sock_send(e->txfd, buf, size, IPC_FOREVER, NULL), size);
    case K_UDP:
        if (e->side == 1) return whole(ipc_sock_send(e->txfd, buf, size, IPC_FOREVER, NULL), size);
        while (!e->pp && e->credits == 0) { /* a credit: how many the consumer took */
            if ((k = ipc_sock_recv(e->txfd, &head, sizeof head, IPC_FOREVER)) != sizeof head)
                return k < 0 ? k : -EBADMSG;
            e->credits += (long)head;
        }
        e->credits--;
        return whole(ipc_sock_sendto(e->txfd, buf, size, &g_o.to, IPC_FOREVER), size);
    case K_MQ: return ipc_mq_send(e->txfd, buf, size, 0, IPC_FOREVER);
    case K_MSGQ: return ipc_msgq_send(e->txfd, buf - sizeof(long), size, IPC_FOREVER);
    default: /* a notification: a free slot, the payload into it, then the bell */
        if (!e->pp && e->credits == 0) e->credits += bell_wait(e, e->side);
        e->credits -= !e->pp;
        memcpy(e->slot_tx + (size_t)(e->ntx++ % (long)e->nslots) * size, buf, size);
        bell_ring(e, !e->side);
        return 0;
    }
}

/* Receive one message into buf: its length, or a negative errno. */
static ssize_t chan_recv(end *e, unsigned char *buf) {
    size_t size = e->size;
    ssize_t k;
    uint64_t seq;
    switch (e->kind) {
    case K_CACHELINE: /* no payload: the counter stands for the message */
        seq = (uint64_t)e->nrx++;
        while (__atomic_load_n(e->side ? &e->sh->ping : &e->sh->pong, __ATOMIC_ACQUIRE) !=
               (uint32_t)(seq + 1))
            ipc__cpu_relax();
        memcpy(buf, &seq, sizeof seq);
        buf[size - 1] = (unsigned char)seq;
        return (ssize_t)size;
    case K_IDEAL:
        while (e->ihead == e->itail)
            e->itail = __atomic_load_n(&e->sh->itail, __ATOMIC_ACQUIRE);
        memcpy(buf, g_arena + (e->ihead % e->islots) * size, size);
        if (++e->ihead % e->ibatch == 0)
            __atomic_store_n(&e->sh->ihead, e->ihead, __ATOMIC_RELEASE);
        return (ssize_t)size;
    case K_RING_SPIN:
    case K_RING_BLOCK:
    case K_RING_MPMC:
    case K_RING_BCAST: return ipc_ring_recv(&e->rx, buf, size, IPC_FOREVER);
    case K_PIPE:
    case K_FIFO: return ipc_frame_recv(&e->frx, buf, size, IPC_FOREVER);
    case K_USTREAM:
    case K_TCP: return ipc_frame_recv(&e->ftx, buf, size, IPC_FOREVER);
    case K_UDGRAM:
    case K_USEQ: return ipc_sock_recv(e->rxfd, buf, size, IPC_FOREVER);
    case K_UDP:
        /* A lost datagram would wait for ever: a deadline tells it apart. */
        k = ipc_sock_recv(e->rxfd, buf, size, 2 * IPC__NS);
        if (k == -ETIMEDOUT) return -ENOMSG;
        if (k < 0 || e->pp || ++e->owed < e->window / 2) return k;
        seq = (uint64_t)e->owed;
        e->owed = 0;
        return whole(ipc_sock_send(e->txfd, &seq, sizeof seq, IPC_FOREVER, NULL), sizeof seq) < 0
                   ? -EPIPE
                   : k;
    case K_MQ: return ipc_mq_recv(e->rxfd, buf, size, NULL, IPC_FOREVER);
    case K_MSGQ: return ipc_msgq_recv(e->rxfd, buf - sizeof(long), size, 0, 0, IPC_FOREVER);
    default: /* a notification: the bell, the payload out of its slot, the slot back */
        if (e->avail == 0) e->avail += bell_wait(e, e->side);
        e->avail--;
        memcpy(buf, e->slot_rx + (size_t)(e->nrx++ % (long)e->nslots) * size, size);
        if (!e->pp) bell_ring(e, !e->side);
        return (ssize_t)size;
    }
}

/* ---- the two sides ---- */

static unsigned char *msg_buf(size_t size) {
    unsigned char *raw = (unsigned char *)calloc(1, sizeof(long) + size);
    long type = 1;
    if (!raw) return NULL;
    memcpy(raw, &type, sizeof type);
    return raw + sizeof(long);
}

static void ring_calls(end *e) {
    ipc_ring_stats s;
    uint64_t n = 0;
    if (!is_ring(e->kind)) return;
    if (e->tx.base && ipc_ring_get_stats(&e->tx, &s) == 0) n += s.sleeps + s.wakes;
    if (e->rx.base && ipc_ring_get_stats(&e->rx, &s) == 0) n += s.sleeps + s.wakes;
    e->sh->calls[e->side] = n;
}

/* Side B: consumer, or echo for ping-pong. Receives while i < last, which A may lower. */
static void side_b(end *e) {
    shared *sh = e->sh;
    unsigned char *buf = msg_buf(e->size);
    uint64_t sum = 0, seq;
    int64_t c0 = 0;
    int timed = 0;
    long i;
    ssize_t k;
    if (!buf) fail(sh, "malloc", -ENOMEM, 1);
    __atomic_store_n(&sh->ready, 1, __ATOMIC_RELEASE);
    for (i = 0; i < __atomic_load_n(&sh->last, __ATOMIC_ACQUIRE); i++) {
        if (!timed && i >= __atomic_load_n(&sh->warm_end, __ATOMIC_ACQUIRE)) {
            timed = 1;
            c0 = cpu_ns();
        }
        if ((k = chan_recv(e, buf)) != (ssize_t)e->size)
            fail(sh, k == -ENOMSG ? "a datagram was lost" : "receive", k < 0 ? (int)k : -EBADMSG,
                 1);
        memcpy(&seq, buf, sizeof seq);
        if (seq != (uint64_t)i || buf[e->size - 1] != (unsigned char)i)
            fail(sh, "message out of order", -EBADMSG, 1);
        if (e->pp && (k = chan_send(e, buf)) != 0) fail(sh, "echo", (int)k, 1);
        sum += seq + buf[e->size - 1];
    }
    if (!e->pp) sh->t1 = ipc_time_now();
    sh->cpu[1] = timed ? cpu_ns() - c0 : 0;
    sh->sum = sum;
    ring_calls(e);
}

/* Side A: producer, or the pinging side that times each round trip. A throughput run
   starts timing after tp_warm and ends after tp_run; a round-trip run times rt_n after
   rt_warm, or fewer (at least 1000) once rt_budget is spent. A lowers sh->last before it
   sends the last message, so B stops with it. */
static void side_a(end *e) {
    shared *sh = e->sh;
    unsigned char *buf = msg_buf(e->size);
    long i, last = sh->last, warm = e->pp ? rt_warm : LONG_MAX;
    int64_t start, t = 0, c0 = 0;
    uint64_t seq;
    ssize_t k;
    if (!buf) fail(sh, "malloc", -ENOMEM, 0);
    while (!__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE))
        sched_yield();
    start = ipc_time_now();
    for (i = 0; i < last; i++) {
        if (e->pp) {
            t = ipc_time_now();
            if (i == warm) {
                c0 = cpu_ns();
                sh->t0 = t;
            }
            if (i >= warm + 1000 && i + 1 < last && t - start > rt_budget) {
                last = i + 1;
                __atomic_store_n(&sh->last, last, __ATOMIC_RELEASE);
            }
            if ((i & 255) == 0) __atomic_store_n(&sh->done, i, __ATOMIC_RELAXED);
        } else if ((i & 63) == 0) {
            t = ipc_time_now();
            if (warm == LONG_MAX && t - start >= tp_warm) {
                warm = i;
                c0 = cpu_ns();
                sh->t0 = t;
                __atomic_store_n(&sh->warm_end, warm, __ATOMIC_RELEASE);
            } else if (warm != LONG_MAX && t - sh->t0 >= tp_run) {
                last = i + 1;
                __atomic_store_n(&sh->last, last, __ATOMIC_RELEASE);
            }
            __atomic_store_n(&sh->done, i, __ATOMIC_RELAXED);
        }
        e->stop = last;
        seq = (uint64_t)i;
        memcpy(buf, &seq, sizeof seq);
        buf[e->size - 1] = (unsigned char)i;
        if ((k = chan_send(e, buf)) != 0) fail(sh, "send", (int)k, 0);
        if (!e->pp) continue;
        if ((k = chan_recv(e, buf)) != (ssize_t)e->size)
            fail(sh, k == -ENOMSG ? "a datagram was lost" : "receive the echo",
                 k < 0 ? (int)k : -EBADMSG, 0);
        memcpy(&seq, buf, sizeof seq);
        if (seq != (uint64_t)i) fail(sh, "echo out of order", -EBADMSG, 0);
        if (i >= warm) g_lat[i - warm] = ipc_time_now() - t;
    }
    if (e->pp) sh->t1 = ipc_time_now();
    sh->cpu[0] = cpu_ns() - c0;
    ring_calls(e);
}

/* Side A's process: make the anonymous objects, fork B, run. */
static void first_side(int kind, int pp, size_t size) {
    pid_t me = getpid(), pid;
    struct sigaction sa;
    end a, b;
    int r, st;
    pin(0);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_child;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    /* Blocked before B exists, so B inherits the mask: a signal that comes before the
       receiver's signalfd exists waits pending instead of killing it. */
    if (kind == K_SIGNAL) ipc_signal_mask(IPC_SIG_BLOCK, IPC_SIGBIT(SIGRTMIN), NULL);
    if ((r = chan_make(kind, pp, size)) < 0) fail(g_sh, "create", r, 0);
    pid = fork();
    if (pid < 0) fail(g_sh, "fork", -errno, 0);
    if (pid == 0) {
        die_with_parent(me);
        pin(1);
        if ((r = end_init(&b, kind, 1, pp, size, me)) < 0) fail(g_sh, "set up side B", r, 1);
        side_b(&b);
        _exit(0);
    }
    if ((r = end_init(&a, kind, 0, pp, size, pid)) < 0) fail(g_sh, "set up side A", r, 0);
    side_a(&a);
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail(g_sh, "side B died", -EPIPE, 0);
    _exit(0);
}

/* ---- the run process: named objects, watchdog, cleanup ---- */

static void remove_named(void) {
    int i;
    for (i = 0; i < 2; i++) {
        if (g_have_mq[i]) ipc_mq_unlink(g_mq[i]);
        if (g_have_msgq[i]) ipc_msgq_remove(g_msgq[i]);
        g_have_mq[i] = g_have_msgq[i] = 0;
    }
    if (g_have_fifo && g_fifo_duplex) ipc_fifo_duplex_unlink(g_fifo);
    if (g_have_fifo && !g_fifo_duplex) ipc_fifo_unlink(g_fifo);
    if (g_have_semset) ipc_semset_remove(g_semid);
    g_have_fifo = g_have_semset = 0;
}

static void on_fatal(int sig) {
    if (g_child > 0) kill(g_child, SIGKILL); /* side B follows (PDEATHSIG) */
    remove_named();
    if (g_have_dir) rmdir(g_dir);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_alarm(int sig) {
    (void)sig; /* only interrupts waitpid */
}

/* The named objects: a FIFO (a duplex pair for ping-pong); a queue each way. */
static int named_make(int kind, int pp, size_t size) {
    ipc_mq_opts o = {0};
    int i, r = 0;
    g_o.q[0] = g_o.q[1] = -1;
    o.max_msgs = 10;
    o.msg_size = (long)size;
    if (kind == K_FIFO) {
        snprintf(g_fifo, sizeof g_fifo, "%s/%s", g_dir, pp ? "duplex" : "fifo");
        r = pp ? ipc_fifo_duplex_create(g_fifo, 0) : ipc_fifo_create(g_fifo, 0);
        g_have_fifo = r == 0;
        g_fifo_duplex = pp;
    }
    if (kind == K_SEMSET) {
        r = g_o.semid = g_semid = ipc_semset_create(IPC_PRIVATE, 2, 0);
        g_have_semset = r >= 0;
    }
    for (i = 0; i < 1 + pp && r >= 0; i++) {
        if (kind == K_MQ) {
            snprintf(g_mq[i], sizeof g_mq[i], "/ipc-bench-%ld-%d", (long)getpid(), i);
            r = g_o.q[i] = ipc_mq_create(g_mq[i], &o);
            g_have_mq[i] = r >= 0;
        } else if (kind == K_MSGQ) {
            r = g_o.q[i] = g_msgq[i] = ipc_msgq_create(IPC_PRIVATE, 0);
            g_have_msgq[i] = r >= 0;
        }
    }
    return r < 0 ? r : 0;
}

typedef struct result {
    int state; /* 0 not measured, 1 measured, 2 n/a, 3 failed */
    char note[192];
    double rate;   /* messages a second */
    double cpu[2]; /* ns of CPU per message or round trip, A and B */
    double calls;  /* rings: futex calls per message, both sides */
    long n;        /* round trips timed */
    int64_t p50, p99, p999, max;
} result;

static result g_rt[K_KINDS], g_tp[K_KINDS][3];
static int g_picked[K_KINDS]; /* measured in this run */

/* The progress line: \r-updated on a terminal, one line per step otherwise. */
static int g_tty, g_step, g_steps;
static char g_label[96];

static void progress(double frac) {
    if (!g_tty) return;
    if (frac > 1) frac = 1;
    fprintf(stderr, "\r  [%3d/%d] %-44s %3.0f%% ", g_step, g_steps, g_label, frac * 100);
}

static void progress_clear(void) {
    if (g_tty) fprintf(stderr, "\r%72s\r", "");
}

static void step(const char *what, int kind) {
    g_step++;
    snprintf(g_label, sizeof g_label, "%s: %s", what, names[kind]);
    if (g_tty)
        progress(0);
    else
        fprintf(stderr, "bench: [%d/%d] %s\n", g_step, g_steps, g_label);
}

static void report(const char *how, int kind, const char *what, int r) {
    progress_clear();
    fprintf(stderr, "bench: %s: %s: %s: %s\n", names[kind], how, what, ipc_strerror(r));
}

/* Why a size does not fit a mechanism, for the notes. */
static void why_na(int kind, size_t size, char *note, size_t cap) {
    char path[64] = "", line[64] = "?";
    FILE *f;
    if (kind == K_UDP) {
        snprintf(note, cap, "%zu B > 65507 B, the largest UDP datagram", size);
        return;
    }
    if (kind == K_MQ) snprintf(path, sizeof path, "/proc/sys/fs/mqueue/msgsize_max");
    if (kind == K_MSGQ) snprintf(path, sizeof path, "/proc/sys/kernel/msgmax");
    if (path[0] && (f = fopen(path, "r"))) {
        if (!fgets(line, sizeof line, f)) snprintf(line, sizeof line, "?");
        line[strcspn(line, "\n")] = 0;
        fclose(f);
    }
    snprintf(note, cap, "%zu B > %s B (%s)", size, line, path[0] ? path : "its limit");
}

/* One measurement into *res. */
static void measure(int kind, int pp, size_t size, result *res) {
    static const char *how[2] = {"throughput", "round trip"};
    shared *sh = g_sh;
    int r, st = 0, timed_out = 0;
    pid_t pid, me = getpid();
    int64_t begin = ipc_time_now(), limit, expect;
    struct itimerval tick = {{0, 100000}, {0, 100000}}, off = {{0, 0}, {0, 0}};
    char how_size[32];
    snprintf(how_size, sizeof how_size, "%s %s", how[pp],
             size_names[size > 64 ? size > 4096 ? 2 : 1 : 0]);
    memset(res, 0, sizeof *res);
    memset(sh, 0, sizeof *sh);
    sh->last = pp ? rt_warm + rt_n : LONG_MAX;
    sh->warm_end = pp ? rt_warm : LONG_MAX;
    expect = pp ? rt_budget : tp_warm + tp_run;
    limit = expect + (full ? 120 : 20) * IPC__NS;
    if ((r = named_make(kind, pp, size)) < 0) {
        remove_named();
        res->state = r == -EMSGSIZE ? 2 : 3;
        if (r == -EMSGSIZE)
            why_na(kind, size, res->note, sizeof res->note);
        else
            snprintf(res->note, sizeof res->note, "%s: create: %s", how_size, ipc_strerror(r));
        if (r != -EMSGSIZE) report(how_size, kind, "create", r);
        return;
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        die_with_parent(me);
        first_side(kind, pp, size);
    }
    g_child = pid;
    for (r = 0; r < 2; r++) /* the sides have their own queue fds now */
        if (kind == K_MQ && g_o.q[r] >= 0) ipc_mq_close(g_o.q[r]);
    if (pid > 0) {
        setitimer(ITIMER_REAL, &tick, NULL);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) { /* the tick: 10 a second */
            int64_t now = ipc_time_now();
            if (now - begin > limit) {
                timed_out = 1;
                kill(pid, SIGKILL);
            }
            progress(pp ? (double)__atomic_load_n(&sh->done, __ATOMIC_RELAXED) /
                              (double)(rt_warm + rt_n)
                        : (double)(now - begin) / (double)expect);
        }
        setitimer(ITIMER_REAL, &off, NULL);
    }
    g_child = 0;
    /* A side B orphaned by a failed side A was reparented to us (subreaper). */
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    remove_named();
    if (pid < 0) {
        res->state = 3;
        snprintf(res->note, sizeof res->note, "%s: fork: %s", how_size, ipc_strerror(-errno));
        return;
    }
    if (__atomic_load_n(&sh->failed, __ATOMIC_ACQUIRE) && sh->err == -EMSGSIZE) {
        res->state = 2;
        why_na(kind, size, res->note, sizeof res->note);
        return;
    }
    if (__atomic_load_n(&sh->failed, __ATOMIC_ACQUIRE) || timed_out || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0) {
        const char *what = sh->failed ? sh->what : timed_out ? "hung, killed" : "died";
        r = sh->failed ? sh->err : timed_out ? -ETIMEDOUT : -EPIPE;
        res->state = 3;
        snprintf(res->note, sizeof res->note, "%s: %s: %s", how_size, what, ipc_strerror(r));
        report(how_size, kind, what, r);
        return;
    }
    res->state = 1;
    return;
}

static int cmp64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

/* What B's checksum must be after n messages: the sum of i + (i & 255). */
static uint64_t checksum(long n) {
    uint64_t want = 0;
    long i;
    for (i = 0; i < n; i++)
        want += (uint64_t)i + (uint64_t)(i & 255);
    return want;
}

static void measure_rt(int kind) {
    result res;
    shared *sh = g_sh;
    long n;
    step("round trips, 64 B", kind);
    measure(kind, 1, 64, &res);
    if (res.state == 1) {
        n = sh->last - rt_warm;
        if (checksum(sh->last) != sh->sum) {
            res.state = 3;
            snprintf(res.note, sizeof res.note, "round trip: checksum: %s", ipc_strerror(-EBADMSG));
        }
        if (res.state == 1) {
            qsort(g_lat, (size_t)n, sizeof g_lat[0], cmp64);
            res.n = n;
            res.p50 = g_lat[n / 2];
            res.p99 = g_lat[n * 99 / 100];
            res.p999 = g_lat[n * 999 / 1000];
            res.max = g_lat[n - 1];
            res.cpu[0] = (double)sh->cpu[0] / (double)n;
            res.cpu[1] = (double)sh->cpu[1] / (double)n;
            res.calls = (double)(sh->calls[0] + sh->calls[1]) / (double)sh->last;
        }
    }
    g_rt[kind] = res;
}

static void measure_tp(int kind, int s, int round) {
    char what[48];
    result res, *best = &g_tp[kind][s];
    shared *sh = g_sh;
    snprintf(what, sizeof what, "throughput, %s, round %d/%ld", size_names[s], round + 1,
             tp_rounds);
    step(what, kind);
    if (best->state == 2) return; /* the size does not fit: no need to try again */
    measure(kind, 0, sizes[s], &res);
    if (res.state == 1) {
        long m = sh->last - sh->warm_end;
        if (sh->warm_end == LONG_MAX || m <= 0 || sh->t1 <= sh->t0) {
            res.state = 3;
            snprintf(res.note, sizeof res.note, "throughput %s: no timed messages", size_names[s]);
        } else if (checksum(sh->last) != sh->sum) {
            res.state = 3;
            snprintf(res.note, sizeof res.note, "throughput %s: checksum: %s", size_names[s],
                     ipc_strerror(-EBADMSG));
        } else {
            res.rate = (double)m * 1e9 / (double)(sh->t1 - sh->t0);
            res.cpu[0] = (double)sh->cpu[0] / (double)m;
            res.cpu[1] = (double)sh->cpu[1] / (double)m;
            res.calls = (double)(sh->calls[0] + sh->calls[1]) / (double)sh->last;
        }
    }
    /* The best round counts; a failure only when no round succeeded. */
    if (res.state == 1 ? best->state != 1 || res.rate > best->rate : best->state == 0) *best = res;
}

/* ---- output ---- */

static char g_machine[512], g_mode[256];

static void machine(void) {
    struct utsname u;
    char model[256], load[32];
    bench_cpu_model(model, sizeof model);
    bench_loadavg(load, sizeof load, 1);
    uname(&u);
    snprintf(g_machine, sizeof g_machine, "%s, %d cores, Linux %s %s (load average %s at start)",
             model, ncpu, u.release, u.machine, load);
}

/* Latency in us, with the digits that mean something. */
static const char *us(char *buf, int64_t ns) {
    double v = (double)ns / 1e3;
    snprintf(buf, 16, v < 10 ? "%.2f" : v < 1000 ? "%.1f" : "%.0f", v);
    return buf;
}

static const char *state_word(const result *r) {
    return r->state == 2 ? "n/a" : r->state == 3 ? "failed" : "-";
}

/* The tables, as text (md 0) or markdown (md 1). */
static void tables(FILE *o, int md) {
    char a[16], b[16], c[16], d[16];
    double floor_rt = g_rt[K_CACHELINE].state == 1 ? (double)g_rt[K_CACHELINE].p50 : 0;
    int k, s;

    fprintf(o, md ? "\n## Round trip, 64-byte message\n\n" : "\nround trip, 64-byte message\n");
    if (md)
        fprintf(o, "| mechanism | round trips | p50 us | p99 us | p99.9 us | max us | p50 / floor "
                   "| CPU A us | CPU B us |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    else
        fprintf(o, "  %-22s %8s %8s %8s %8s %8s %8s %8s %8s\n", "mechanism", "rts", "p50 us",
                "p99 us", "p99.9 us", "max us", "x floor", "cpu A us", "cpu B us");
    for (k = 0; k < K_KINDS; k++) {
        const result *r = &g_rt[k];
        if (k == K_IDEAL || !g_picked[k]) continue;
        fprintf(o, md ? "| %s" : "  %-22s", names[k]);
        if (r->state != 1) {
            fprintf(o, md ? " | %s | | | | | | | |\n" : " %8s\n", state_word(r));
            continue;
        }
        if (md)
            fprintf(o, " | %ld | %s | %s | %s | %s", r->n, us(a, r->p50), us(b, r->p99),
                    us(c, r->p999), us(d, r->max));
        else
            fprintf(o, " %8ld %8s %8s %8s %8s", r->n, us(a, r->p50), us(b, r->p99), us(c, r->p999),
                    us(d, r->max));
        if (floor_rt > 0)
            fprintf(o, md ? " | %.1fx" : " %7.1fx", (double)r->p50 / floor_rt);
        else
            fprintf(o, md ? " | -" : " %8s", "-");
        fprintf(o, md ? " | %.2f | %.2f |\n" : " %8.2f %8.2f\n", r->cpu[0] / 1e3, r->cpu[1] / 1e3);
    }

    fprintf(o, md ? "\n## One-way throughput\n\n"
                  : "\none-way throughput, messages/s and MB/s; cpu: ns per 64 B message, producer "
                    "/ consumer\n");
    if (md)
        fprintf(o, "| mechanism | 64 B msgs/s | 64 B MB/s | 4 KiB msgs/s | 4 KiB MB/s | 64 KiB "
                   "msgs/s | 64 KiB MB/s | CPU tx ns/msg 64 B | CPU rx ns/msg 64 B |\n"
                   "|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    else
        fprintf(o, "  %-22s %11s %8s %10s %8s %9s %8s %7s %7s\n", "mechanism", "64 B msg/s", "MB/s",
                "4 KiB /s", "MB/s", "64 KiB /s", "MB/s", "cpu tx", "cpu rx");
    for (k = 0; k < K_KINDS; k++) {
        if (k == K_CACHELINE || !g_picked[k]) continue;
        fprintf(o, md ? "| %s" : "  %-22s", names[k]);
        for (s = 0; s < 3; s++) {
            const result *r = &g_tp[k][s];
            static const int w[3] = {11, 10, 9};
            if (r->state == 1 && md)
                fprintf(o, " | %.0f | %.1f", r->rate, r->rate * (double)sizes[s] / 1e6);
            else if (r->state == 1)
                fprintf(o, " %*.0f %8.1f", w[s], r->rate, r->rate * (double)sizes[s] / 1e6);
            else if (md)
                fprintf(o, " | %s | ", state_word(r));
            else
                fprintf(o, " %*s %8s", w[s], state_word(r), "");
        }
        if (g_tp[k][0].state == 1)
            fprintf(o, md ? " | %.0f | %.0f |\n" : " %7.0f %7.0f\n", g_tp[k][0].cpu[0],
                    g_tp[k][0].cpu[1]);
        else
            fprintf(o, md ? " | | |\n" : "\n");
    }

    fprintf(o, md ? "\n## The rings against the floors\n\n"
                  : "\nthe rings against the floors (round trip / cache-line ping-pong's, "
                    "throughput / ideal loop's)\n");
    if (md)
        fprintf(o, "| ring | RTT p50 | RTT p99 | RTT p99.9 | 64 B msgs/s | 4 KiB msgs/s | 64 KiB "
                   "msgs/s | futex calls per 64 B msg |\n|---|--:|--:|--:|--:|--:|--:|--:|\n");
    else
        fprintf(o, "  %-22s %8s %8s %8s %9s %9s %9s %12s\n", "ring", "RTT p50", "p99", "p99.9",
                "64 B", "4 KiB", "64 KiB", "futex/msg");
    for (k = K_RING_SPIN; k <= K_RING_BCAST; k++) {
        const result *r = &g_rt[k], *f = &g_rt[K_CACHELINE];
        if (!g_picked[k]) continue;
        fprintf(o, md ? "| %s" : "  %-22s", names[k]);
        if (r->state == 1 && f->state == 1)
            fprintf(o, md ? " | %.2fx | %.2fx | %.2fx" : " %7.2fx %7.2fx %7.2fx",
                    (double)r->p50 / (double)f->p50, (double)r->p99 / (double)f->p99,
                    (double)r->p999 / (double)f->p999);
        else
            fprintf(o, md ? " | - | - | -" : " %8s %8s %8s", "-", "-", "-");
        for (s = 0; s < 3; s++)
            if (g_tp[k][s].state == 1 && g_tp[K_IDEAL][s].state == 1)
                fprintf(o, md ? " | %.2fx" : " %8.2fx", g_tp[k][s].rate / g_tp[K_IDEAL][s].rate);
            else
                fprintf(o, md ? " | -" : " %9s", "-");
        if (g_tp[k][0].state == 1)
            fprintf(o, md ? " | %.4f |\n" : " %12.4f\n", g_tp[k][0].calls);
        else
            fprintf(o, md ? " | - |\n" : " %12s\n", "-");
    }
}

static void notes(FILE *o, int md) {
    int k, s, any = 0;
    for (k = 0; k < K_KINDS; k++) {
        const result *list[4];
        list[0] = &g_rt[k];
        for (s = 0; s < 3; s++)
            list[s + 1] = &g_tp[k][s];
        for (s = 0; s < 4; s++)
            if (list[s]->state >= 2 && list[s]->note[0]) {
                if (!any++) fprintf(o, md ? "\n## n/a and failures\n\n" : "\nn/a and failures\n");
                fprintf(o, "%s%s: %s%s\n", md ? "- " : "  ", names[k],
                        list[s]->state == 2 ? "n/a, " : "", list[s]->note);
            }
    }
}

static void write_md(const char *path, double secs) {
    FILE *o = fopen(path, "w");
    if (!o) {
        fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
        return;
    }
    fprintf(o, "# ipc.h: every mechanism side by side\n\n");
    fprintf(o, "- machine: %s\n- %s\n- run time %.0f s; command: `make bench`%s\n", g_machine,
            g_mode, secs, full ? " with `BENCH=full`" : "");
    tables(o, 1);
    notes(o, 1);
    fprintf(o, "\nRound trip: ping-pong of one 64-byte message, timed by side A. Throughput: one "
               "way, the best of the rounds. CPU: user + system time of each side (getrusage) "
               "per round trip or message; A sends (pings), B receives (echoes). The "
               "notifications (eventfd, futex, signal, semaphores, mutex + cond) carry no "
               "payload: it goes through shared memory next to them, one slot for round trips, "
               "16 slots for throughput. Floors: a raw cache-line ping-pong (round trip) and an "
               "idealized fixed-slot copy loop (throughput). See tests/bench/compare.c.\n");
    fclose(o);
}

static void csv_num(FILE *o, int ok, double v) {
    if (ok)
        fprintf(o, ",%.6g", v);
    else
        fprintf(o, ",");
}

static void write_csv(const char *path) {
    FILE *o = fopen(path, "w");
    int k, s;
    if (!o) {
        fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
        return;
    }
    fprintf(o, "mechanism,rtt_n,rtt_p50_us,rtt_p99_us,rtt_p999_us,rtt_max_us,rtt_cpu_a_us,"
               "rtt_cpu_b_us");
    for (s = 0; s < 3; s++) {
        const char *sz[3] = {"64", "4k", "64k"};
        fprintf(o, ",tp%s_msgs_s,tp%s_bytes_s,tp%s_cpu_tx_ns,tp%s_cpu_rx_ns", sz[s], sz[s], sz[s],
                sz[s]);
    }
    fprintf(o, ",note\n");
    for (k = 0; k < K_KINDS; k++) {
        const result *r = &g_rt[k];
        int ok = r->state == 1;
        char note[256] = "";
        if (!g_picked[k]) continue;
        fprintf(o, "%s", names[k]);
        csv_num(o, ok, (double)r->n);
        csv_num(o, ok, (double)r->p50 / 1e3);
        csv_num(o, ok, (double)r->p99 / 1e3);
        csv_num(o, ok, (double)r->p999 / 1e3);
        csv_num(o, ok, (double)r->max / 1e3);
        csv_num(o, ok, r->cpu[0] / 1e3);
        csv_num(o, ok, r->cpu[1] / 1e3);
        if (r->state >= 2) snprintf(note, sizeof note, "%s", r->note);
        for (s = 0; s < 3; s++) {
            const result *t = &g_tp[k][s];
            ok = t->state == 1;
            csv_num(o, ok, t->rate);
            csv_num(o, ok, t->rate * (double)sizes[s]);
            csv_num(o, ok, t->cpu[0]);
            csv_num(o, ok, t->cpu[1]);
            if (t->state >= 2 && strlen(note) + strlen(t->note) + 3 < sizeof note)
                snprintf(note + strlen(note), sizeof note - strlen(note), "%s%s",
                         note[0] ? "; " : "", t->note);
        }
        for (s = 0; note[s]; s++) /* a CSV field without quoting */
            if (note[s] == ',' || note[s] == '"') note[s] = ' ';
        fprintf(o, ",%s\n", note);
    }
    fclose(o);
}

/* Arguments, when given, pick the mechanisms whose names contain one of them (the
   floors always run: the ratios need them). */
static int picked(int kind, int argc, char **argv) {
    int i;
    for (i = 1; i < argc; i++)
        if (strstr(names[kind], argv[i])) return 1;
    return argc < 2 || kind <= K_IDEAL;
}

int main(int argc, char **argv) {
    const char *mode = getenv("BENCH");
    struct sigaction sa;
    int k, s, round, sigs[] = {SIGINT, SIGTERM, SIGHUP};
    int64_t t_start = ipc_time_now();
    double secs;

    full = mode && strcmp(mode, "full") == 0;
    ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    g_tty = isatty(2);
    rt_n = full ? 1000000 : 100000;
    rt_warm = rt_n / 50;
    rt_budget = (full ? 60 : 8) * IPC__NS;
    tp_warm = (full ? 50 : 20) * 1000000LL;
    tp_run = (full ? 1000 : 150) * 1000000LL;
    tp_rounds = full ? 3 : 2;
    snprintf(g_mode, sizeof g_mode,
             "%s: %ld round trips after %ld untimed (at most %.0f s each); throughput %.2f s "
             "after %.2f s warm-up, best of %ld rounds",
             full ? "BENCH=full" : "quick (BENCH=full for more samples)", rt_n, rt_warm,
             (double)rt_budget / 1e9, (double)tp_run / 1e9, (double)tp_warm / 1e9, tp_rounds);

    g_sh = (shared *)mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    g_arena = (unsigned char *)mmap(NULL, ARENA, PROT_READ | PROT_WRITE,
                                    MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    g_lat = (int64_t *)mmap(NULL, sizeof(int64_t) * (size_t)rt_n, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (g_sh == MAP_FAILED || g_arena == MAP_FAILED || g_lat == MAP_FAILED) {
        perror("bench: mmap");
        return 1;
    }

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
    printf("ipc.h: every mechanism side by side, two processes pinned to two cores\n");
    printf("machine: %s\n%s\n", g_machine, g_mode);
    fflush(stdout); /* before the progress lines on stderr */

    /* Throughput rounds with the round trips in the middle: the machine's drift then
       touches every mechanism alike. */
    for (k = 0; k < K_KINDS; k++)
        if ((g_picked[k] = picked(k, argc, argv)))
            g_steps += k == K_CACHELINE ? 1 : (int)tp_rounds * 3 + (k != K_IDEAL);
    for (round = 0; round < tp_rounds; round++) {
        if (round == tp_rounds / 2)
            for (k = 0; k < K_KINDS; k++)
                if (k != K_IDEAL && g_picked[k]) measure_rt(k);
        for (k = 0; k < K_KINDS; k++)
            for (s = 0; s < 3 && k != K_CACHELINE && g_picked[k]; s++)
                measure_tp(k, s, round);
    }
    progress_clear();
    rmdir(g_dir);
    g_have_dir = 0;

    secs = (double)(ipc_time_now() - t_start) / 1e9;
    tables(stdout, 0);
    notes(stdout, 0);
    write_md("bench.md", secs);
    write_csv("bench.csv");
    printf("\nrun time %.0f s; wrote bench.md and bench.csv (make plot: the charts)\n", secs);
    return 0;
}
