/* tests/crash/crashtest.c - crash test of ipc.h: processes killed with SIGKILL at random
   moments, then an oracle checks what the survivors saw.

   A round is one configuration drawn from its seed: an object (a ring of each kind, a
   robust mutex, a mutex with a condition variable, a System V semaphore set with SEM_UNDO,
   a file lock, a pid file), how many processes use it, and how they die:
     none       the control: nobody is killed, the oracle must find exact delivery
     external   the round's supervisor sends SIGKILL to a random process after random delays
     killpoint  ipc.h's own named points (built with -DIPC_TEST_KILLPOINTS): IPC_KILL_ONE_IN,
                IPC_KILL_AT, IPC_KILL_SEED, IPC_KILL_LOG in the environment of the children
     self       the test's processes kill themselves inside their own windows: between
                reserve and commit, between peek and release, while holding a lock
     mixed      all of these
   A killed process is replaced (after a random delay, so that peers also see the role
   empty) until the round's death budget is spent; then the round drains and is checked.
   A round that makes no progress for -t seconds (default 15; nothing delivered, sent, done,
   started or ended), or lasts ten times that, is a hang: a violation, with diagnostics.
   (Progress, not a fixed round deadline: a round starved of CPU by other load goes on.)

   What the oracle knows. Every ring message names its producer stream, its sequence number
   and its length, and carries a pattern derived from them and the round seed, so any message
   can be proven whole. Producers write, in shared memory, a status byte per sequence number
   before and after each call (sending, reserving, reserved, committing, committed,
   cancelled), so after a SIGKILL the oracle knows which messages were surely committed
   (must be delivered), which were in flight (may be), and which were never committed
   (must never appear). Consumers store a pending word before each receive (taking), after
   it returned (holding, with the message's name) and around release (releasing), then
   append the message to their log: a consumer killed while taking may have taken one
   message that nobody logged, and one killed while holding a peeked SPSC message must see
   it delivered again to its successor. The rules per kind are in the oracle functions.

   Usage: crashtest [-n ROUNDS] [-j JOBS] [-s MASTER] [--seed ROUNDSEED] [-k KIND,...]
                    [-m MODE,...] [-t SECONDS] [-q] [-v]
   Every round prints "round N seed 0x... kind K mode M ...". --seed replays that round's
   configuration; the interleaving of the kills is the scheduler's, so a replay tries the
   same thing, not the same timing (run it a few hundred times: -n 300 --seed S). */
#define _GNU_SOURCE 1
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS ((int64_t)1000000)
#define US ((int64_t)1000)

#define MAXPROC 128  /* process incarnations in one round */
#define MAXSLOT 4    /* producer streams of a ring */
#define MAXSEQ  4096 /* messages of one stream (and one reserved past its end) */
#define LOGCAP  (MAXSLOT * MAXSEQ + 1024)
#define NKPN    24 /* kill point names one round remembers */

/* ---- the configuration of a round ---- */

enum { K_SPSC, K_MPMC, K_MPSC, K_BC, K_BCOW, K_MUTEX, K_COND, K_SEM, K_LOCK, K_PIDFILE, NKIND };
static const char *const kind_name[NKIND] = {"spsc",  "mpmc", "mpsc",    "bcast",    "bcast-ow",
                                             "mutex", "cond", "semundo", "lockfile", "pidfile"};
static const int kind_weight[NKIND] = {14, 14, 12, 12, 10, 8, 8, 8, 8, 6};

enum { M_NONE, M_EXT, M_KP, M_SELF, M_MIX, NMODE };
static const char *const mode_name[NMODE] = {"none", "external", "killpoint", "self", "mixed"};
static const int ring_mode_weight[NMODE] = {8, 30, 32, 10, 20};
static const int sync_mode_weight[NMODE] = {10, 40, 0, 25, 25}; /* no kill points there */

#define IS_RING(k) ((k) <= K_BCOW)
#define IS_BC(k)   ((k) == K_BC || (k) == K_BCOW)

/* Kill point names per ring kind, for IPC_KILL_AT filters (substrings of the names in ipc.h). */
static const char *const kp_spsc[] = {"spsc.reserve", "spsc.send", "spsc.publish", "spsc.consume",
                                      "wake.",        "wait.",     "ring.close",   "spsc."};
static const char *const kp_mp[] = {"mp.claim", "mp.publish", "mp.take",    "mp.free", "mp.unstick",
                                    "wake.",    "wait.",      "ring.close", "mp."};
static const char *const kp_bc[] = {"bc.begin", "bc.publish", "bc.advance", "wake.",
                                    "wait.",    "ring.close", "bc."};

typedef struct cfg {
    uint64_t seed;
    int kind, mode;
    int np, nc;              /* ring: producer streams, consumers; sync: workers (np) */
    uint32_t quota[MAXSLOT]; /* messages of each stream */
    int iters;               /* sync: critical sections of a worker */
    unsigned flags;          /* ring options */
    size_t capacity;
    uint32_t spin_ns;
    size_t lmax;       /* the usual longest message (max_msg now and then) */
    int budget;        /* deaths before the round stops killing */
    int chaos_ms;      /* external kills are spread over this */
    int kp_one_in;     /* IPC_KILL_ONE_IN */
    char kp_at[96];    /* IPC_KILL_AT, "" for every point */
    int self_one_in;   /* self kills: one window in N */
    int respawn_us[2]; /* delay before a replacement: min, spread */
    unsigned lockflags;
    int unrec; /* mutex: the first recoverer leaves it unrecoverable */
} cfg;

/* ---- random numbers: splitmix64, seeded per round and per process ---- */

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rnext(rng *r) {
    r->s += 0x9e3779b97f4a7c15ull;
    return mix64(r->s);
}

static uint64_t rbelow(rng *r, uint64_t n) {
    return n ? rnext(r) % n : 0;
}

static int rpct(rng *r, int pct) {
    return (int)rbelow(r, 100) < pct;
}

static int rweighted(rng *r, const int *w, int n) {
    int i, sum = 0, x;
    for (i = 0; i < n; i++)
        sum += w[i];
    x = (int)rbelow(r, (uint64_t)sum);
    for (i = 0; i < n; i++)
        if ((x -= w[i]) < 0) return i;
    return n - 1;
}

static void make_cfg(uint64_t seed, cfg *c) {
    rng r;
    int i;
    memset(c, 0, sizeof *c);
    r.s = seed;
    c->seed = seed;
    c->kind = rweighted(&r, kind_weight, NKIND);
    c->mode = rweighted(&r, IS_RING(c->kind) ? ring_mode_weight : sync_mode_weight, NMODE);
    c->budget = c->mode == M_NONE ? 0 : 2 + (int)rbelow(&r, 7);
    c->chaos_ms = 5 + (int)rbelow(&r, 60);
    c->self_one_in = 4 + (int)rbelow(&r, 60);
    {
        static const int one_in[] = {2, 4, 10, 30, 100, 300, 1000, 5000};
        c->kp_one_in = one_in[rbelow(&r, 8)];
    }
    switch (rbelow(&r, 3)) {
    case 0: c->respawn_us[0] = 0, c->respawn_us[1] = 1; break;
    case 1: c->respawn_us[0] = 0, c->respawn_us[1] = 2000; break;
    default: c->respawn_us[0] = 20000, c->respawn_us[1] = 130000; break;
    }
    if (IS_RING(c->kind)) {
        static const uint32_t spins[] = {0, 1, 20000};
        const char *const *names = c->kind == K_SPSC ? kp_spsc : IS_BC(c->kind) ? kp_bc : kp_mp;
        int nnames = c->kind == K_SPSC ? 8 : IS_BC(c->kind) ? 7 : 9;
        c->spin_ns = spins[rbelow(&r, 3)];
        if (rpct(&r, 55)) { /* a filter of one to three names, else every point */
            int n = 1 + (int)rbelow(&r, 3);
            for (i = 0; i < n; i++) {
                if (i) strcat(c->kp_at, ",");
                strcat(c->kp_at, names[rbelow(&r, (uint64_t)nnames)]);
            }
        }
        switch (c->kind) {
        case K_SPSC:
            c->np = c->nc = 1;
            c->capacity = (size_t)4096 << rbelow(&r, 5); /* 4 KiB .. 64 KiB */
            break;
        case K_MPMC: c->np = 1 + (int)rbelow(&r, 4), c->nc = 1 + (int)rbelow(&r, 4); break;
        case K_MPSC: c->np = 1 + (int)rbelow(&r, 4), c->nc = 1; break;
        default: c->np = 1, c->nc = 1 + (int)rbelow(&r, 4); break;
        }
        if (c->kind != K_SPSC) {
            static const unsigned msg[] = {16, 48, 112, 240, 496, 1008, 2032, 4080};
            c->flags = (unsigned)(c->kind == K_MPMC   ? IPC_RING_MPMC
                                  : c->kind == K_MPSC ? IPC_RING_MPSC
                                                      : IPC_RING_BROADCAST) |
                       (c->kind == K_BCOW ? (unsigned)IPC_RING_OVERWRITE : 0u);
            c->flags |= IPC_RING_MSG(msg[rbelow(&r, 8)]);
            c->capacity = (size_t)4096 << rbelow(&r, 3);
        }
        if (rpct(&r, 10)) c->flags |= IPC_RING_PREFAULT;
        {
            static const size_t lm[] = {16, 40, 100, 300, 1000, (size_t)1 << 20};
            c->lmax = lm[rbelow(&r, 6)]; /* clamped to max_msg once the ring exists */
        }
        for (i = 0; i < c->np; i++)
            c->quota[i] = (uint32_t)(c->np == 1 ? 100 + rbelow(&r, 1200) : 50 + rbelow(&r, 500));
    } else {
        c->np = 2 + (int)rbelow(&r, 4);
        c->iters = 20 + (int)rbelow(&r, 200);
        c->unrec = c->kind == K_MUTEX && c->mode != M_NONE && rpct(&r, 15);
        if (c->kind == K_LOCK) {
            static const unsigned lf[] = {0, IPC_LOCK_POSIX, IPC_LOCK_FLOCK};
            c->lockflags = lf[rbelow(&r, 3)];
        }
        if (c->kind == K_PIDFILE) c->iters = 5 + (int)rbelow(&r, 30);
    }
}

/* ---- state shared by the processes of a round ---- */

/* A message's status in its stream, written by its producer around each call. */
enum { ST_NONE, ST_SENDING, ST_RESERVING, ST_RESERVED, ST_COMMITTING, ST_COMMITTED, ST_CANCELLED };
static const char *const st_name[] = {"never sent", "sending",   "reserving", "reserved",
                                      "committing", "committed", "cancelled"};
#define ST_MAYBE(s) ((s) == ST_SENDING || (s) == ST_COMMITTING) /* in flight at a death */

/* A consumer's pending word: state, peek flag, message key (stream << 32 | sequence). */
enum { CS_IDLE, CS_TAKING, CS_HOLDING, CS_RELEASING };
#define PEND(st, peek, key) ((uint64_t)(st) << 56 | (uint64_t)(peek) << 52 | (key))
#define PEND_ST(w)          ((int)((w) >> 56))
#define PEND_PEEK(w)        ((int)((w) >> 52) & 1)
#define PEND_KEY(w)         ((w)&0xffffffffffull)
#define KEY(slot, seq)      ((uint64_t)(slot) << 32 | (seq))
#define OVF                 ((uint64_t)1 << 63) /* log entry: -EOVERFLOW, lost count below */

/* A worker's state (sync kinds). */
enum { W_IDLE, W_LOCKING, W_HOLDING, W_WAITING, W_UNLOCKING };
static const char *const w_name[] = {"idle", "locking", "holding", "waiting", "unlocking"};

enum { R_PROD = 1, R_CONS = 2, R_WORK = 3 };

typedef struct proc {
    pid_t pid;
    int role, slot;
    int killable;               /* it may die by our hand or its kill points */
    int self_one_in;            /* self kills, 0 = never */
    int ext_killed;             /* the supervisor sent SIGKILL */
    int self_killed;            /* it raised SIGKILL itself */
    int reaped, wstatus, clean; /* reaped: set by the supervisor, read by peers */
    int64_t t_spawn, t_end;
    uint64_t pend; /* consumer: pending word; worker: state */
    uint32_t logn;
    uint64_t lost;
    int64_t lat_max; /* slowest -EPIPE after the peer role was gone */
    uint64_t bc_lo;  /* broadcast reader: must see nothing below */
    uint64_t bc_hi;  /* broadcast reader: must see everything from (while it lives) */
    int recovered;   /* sync: IPC_MUTEX_RECOVERED returns */
    int nseen;       /* sync: owners found in place on takeover */
    int seen[8];
    int held;  /* sync: critical sections done */
    int stale; /* pidfile: -EBUSY naming a holder that had ended (or none) */
} proc;

typedef struct shared {
    int nproc;
    int producers_done;
    int64_t t_gone[3];    /* by role: when the last of it was reaped (0: one is alive) */
    uint64_t sw[MAXSLOT]; /* stream word: status << 32 | sequence in flight or next */
    uint8_t status[MAXSLOT][MAXSEQ];
    /* sync kinds */
    uint64_t mx[(IPC_MUTEX_SIZE + 7) / 8];
    uint32_t cv[IPC_COND_SIZE / 4];
    int a, b, owner, tokens, closing, unrec_done, unrecoverable;
    proc procs[MAXPROC];
    uint64_t logs[MAXPROC][LOGCAP];
} shared;

/* What a round tells the driver (shared with it). */
typedef struct result {
    int kind, mode, viol, hang, late;
    int deaths, ext, kp, self, procs;
    long msgs, lost, stale;
    int64_t lat_max;
    int semid;
    int nkp;
    char kpn[NKPN][32];
    int kpc[NKPN];
} result;

typedef struct round {
    cfg c;
    shared *sh;
    result *res;
    int fd;     /* the ring's fd, inherited by the children */
    int kpp[2]; /* kill points log here */
    size_t maxmsg, lmax;
    int deaths, viol;
    int pending_spawn[MAXPROC * 2][2]; /* role, slot */
    int64_t spawn_at[MAXPROC * 2];
    int npending;
    int semid;
    int64_t stall; /* no progress for this long: a hang */
    char path[128];
    const char *tmpdir;
} round;

static int opt_quiet, opt_verbose;

static int64_t now_ns(void) {
    return ipc_time_now();
}

static void sleep_ns(int64_t ns) {
    struct timespec ts;
    if (ns <= 0) return;
    ts.tv_sec = (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    nanosleep(&ts, NULL);
}

static void spin_ns(int64_t ns) {
    int64_t end = now_ns() + ns;
    while (now_ns() < end) {
    }
}

#define LD(p)     __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define ST(p, v)  __atomic_store_n(p, v, __ATOMIC_RELEASE)
#define SEQ(w)    ((uint32_t)(w))
#define PHASE(w)  ((int)((w) >> 32))
#define SW(ph, s) ((uint64_t)(ph) << 32 | (s))

/* A child found something wrong: say it and leave with status 3. */
static void cviol(const round *rd, int me, const char *fmt, ...) {
    char line[512];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = snprintf(line, sizeof line, "VIOLATION %s #%d pid %d: ", kind_name[rd->c.kind], me,
                 (int)getpid());
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    dprintf(2, "%s\n", line);
    _exit(3);
}

/* The supervisor found something wrong. */
static void rviol(round *rd, const char *fmt, ...) {
    va_list ap;
    rd->viol++;
    if (rd->viol > 12) return; /* enough to see the pattern */
    printf("VIOLATION %s: ", kind_name[rd->c.kind]);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* Maybe die here (self mode), or give the others a moment to run into us. */
static void window(proc *p, rng *r) {
    if (p->self_one_in && rbelow(r, (uint64_t)p->self_one_in) == 0) {
        ST(&p->self_killed, 1);
        raise(SIGKILL);
    }
    switch (rbelow(r, 16)) {
    case 0: sched_yield(); break;
    case 1: spin_ns((int64_t)rbelow(r, 20000)); break;
    default: break;
    }
}

/* ---- messages ---- */

#define MSG_MAGIC 0x43524100u /* "CRA" and the stream */

static size_t msg_len(const round *rd, int slot, uint32_t seq) {
    uint64_t h = mix64(rd->c.seed ^ ((uint64_t)slot << 48) ^ ((uint64_t)seq * 0x1000193u));
    if ((h & 63) == 0) return rd->maxmsg; /* now and then the longest there is */
    return 16 + (size_t)((h >> 8) % (rd->lmax - 15));
}

static void msg_fill(const round *rd, unsigned char *m, int slot, uint32_t seq, size_t len) {
    uint32_t hd[4];
    uint64_t h = mix64(rd->c.seed + ((uint64_t)slot << 40) + seq);
    size_t k;
    hd[0] = MSG_MAGIC | (uint32_t)slot;
    hd[1] = seq;
    hd[2] = (uint32_t)len;
    hd[3] = (uint32_t)h;
    memcpy(m, hd, sizeof hd);
    for (k = 16; k < len; k++) {
        if ((k & 7) == 0) h = mix64(h);
        m[k] = (unsigned char)(h >> ((k & 7) * 8));
    }
}

/* Is m (n bytes) a whole message of this round? Its key, or -1 with why in err. */
static int64_t msg_check(const round *rd, const unsigned char *m, size_t n, unsigned char *tmp,
                         char *err, size_t errlen) {
    uint32_t hd[4];
    int slot;
    size_t want;
    if (n < 16) {
        snprintf(err, errlen, "message of %zu bytes, shorter than any sent", n);
        return -1;
    }
    memcpy(hd, m, sizeof hd);
    slot = (int)(hd[0] & 0xffu);
    if ((hd[0] & ~0xffu) != MSG_MAGIC || slot >= rd->c.np || hd[1] >= MAXSEQ) {
        snprintf(err, errlen, "garbage header %08x %08x %08x %08x (%zu bytes)", hd[0], hd[1], hd[2],
                 hd[3], n);
        return -1;
    }
    want = msg_len(rd, slot, hd[1]);
    if (n != want || hd[2] != want) {
        snprintf(err, errlen, "stream %d seq %u: %zu bytes received, header says %u, sent %zu",
                 slot, hd[1], n, hd[2], want);
        return -1;
    }
    msg_fill(rd, tmp, slot, hd[1], n);
    if (memcmp(tmp, m, n) != 0) {
        size_t k = 0;
        while (tmp[k] == m[k])
            k++;
        snprintf(err, errlen, "stream %d seq %u (%zu bytes): torn at byte %zu", slot, hd[1], n, k);
        return -1;
    }
    return (int64_t)KEY(slot, hd[1]);
}

/* ---- children: ring producers and consumers ---- */

static int64_t pick_timeout(rng *r, int tmode) {
    switch (tmode) {
    case 0: return IPC_FOREVER;
    case 1: return 0;
    default: return (int64_t)(1 + rbelow(r, 20)) * MS;
    }
}

static void note_epipe(round *rd, proc *p, int peer, int64_t t0) {
    int64_t t1 = now_ns(), g = LD(&rd->sh->t_gone[peer]), lat;
    if (g == 0) return; /* a new peer came meanwhile */
    lat = t1 - (t0 > g ? t0 : g);
    if (lat > p->lat_max) p->lat_max = lat;
}

/* Nothing to do for now (-EAGAIN, -ETIMEDOUT): wait on the pollfd if there is one; else
   retry at once a few times, then back off, so that a process polling with timeout 0 does
   not eat the CPU its peers need. *streak counts the failures in a row. */
static void idle(rng *r, int pfd, int *streak) {
    if (pfd >= 0) {
        struct pollfd pf;
        pf.fd = pfd;
        pf.events = POLLIN;
        poll(&pf, 1, 200);
    } else if (++*streak > 8) {
        sleep_ns((int64_t)(20 + rbelow(r, 200)) * US);
    } else if (rpct(r, 50)) {
        sched_yield();
    }
}

static void ring_producer(round *rd, int me) {
    shared *sh = rd->sh;
    proc *p = &sh->procs[me];
    int slot = p->slot, tmode, pfd = -1, rc, streak = 0;
    uint8_t *status = sh->status[slot];
    unsigned char *buf = (unsigned char *)malloc(rd->maxmsg + 16);
    uint64_t w;
    uint32_t seq;
    ipc_ring ring;
    ipc_ring_stats st;
    rng r;
    memset(&st, 0, sizeof st);
    r.s = mix64(rd->c.seed ^ (0x1000u + (unsigned)me));
    if (!buf) cviol(rd, me, "out of memory");
    if ((rc = ipc_ring_attach_fd(&ring, rd->fd, IPC_PRODUCER)) != 0)
        cviol(rd, me, "producer attach: %s", ipc_strerror(rc));
    /* Go on with the stream after the last incarnation: its message in flight, if any, is
       skipped (it may or may not have been committed). */
    w = LD(&sh->sw[slot]);
    seq = SEQ(w) + (PHASE(w) != ST_NONE);
    ST(&sh->sw[slot], SW(ST_NONE, seq));
    tmode = (int)rbelow(&r, 3);
    if (tmode == 1 && rpct(&r, 40) && (pfd = ipc_ring_pollfd(&ring)) < 0)
        cviol(rd, me, "producer pollfd: %s", ipc_strerror(pfd));
    while (seq < rd->c.quota[slot]) {
        size_t len = msg_len(rd, slot, seq), want;
        int op = (int)rbelow(&r, 100);
        int64_t to = pick_timeout(&r, tmode), t0 = now_ns();
        void *m;
        msg_fill(rd, buf, slot, seq, len);
        if (op < 55) {
            ST(&status[seq], ST_SENDING);
            ST(&sh->sw[slot], SW(ST_SENDING, seq));
            if ((rc = ipc_ring_send(&ring, buf, len, to)) == 0) {
                ST(&status[seq], ST_COMMITTED);
                seq++;
                ST(&sh->sw[slot], SW(ST_NONE, seq));
                continue;
            }
        } else {
            want = rpct(&r, 50) ? len : len + (size_t)rbelow(&r, rd->maxmsg - len + 1);
            ST(&status[seq], ST_RESERVING);
            ST(&sh->sw[slot], SW(ST_RESERVING, seq));
            if ((rc = ipc_ring_reserve(&ring, want, &m, to)) == 0) {
                memcpy(m, buf, len);
                ST(&status[seq], ST_RESERVED);
                ST(&sh->sw[slot], SW(ST_RESERVED, seq));
                window(p, &r); /* died here: nothing may be seen of it */
                if (op >= 93) {
                    ST(&status[seq], ST_CANCELLED); /* never to be seen */
                    if ((rc = ipc_ring_commit(&ring, 0)) != 0)
                        cviol(rd, me, "commit(0): %s", ipc_strerror(rc));
                } else {
                    ST(&status[seq], ST_COMMITTING);
                    ST(&sh->sw[slot], SW(ST_COMMITTING, seq));
                    if ((rc = ipc_ring_commit(&ring, len)) != 0)
                        cviol(rd, me, "commit: %s", ipc_strerror(rc));
                    ST(&status[seq], ST_COMMITTED);
                }
                seq++;
                ST(&sh->sw[slot], SW(ST_NONE, seq));
                continue;
            }
        }
        ST(&status[seq], ST_NONE); /* not sent: the same number again */
        ST(&sh->sw[slot], SW(ST_NONE, seq));
        if (rc == -EAGAIN || rc == -ETIMEDOUT) {
            idle(&r, pfd, &streak);
            continue;
        }
        streak = 0;
        if (rc == -EPIPE) { /* every consumer gone for now: a replacement will come */
            note_epipe(rd, p, R_CONS, t0);
            sleep_ns(200 * US);
        } else {
            cviol(rd, me, "producer stream %d seq %u: %s", slot, seq, ipc_strerror(rc));
        }
    }
    ipc_ring_get_stats(&ring, &st);
    p->lost = st.lost;
    p->clean = 1;
    if (rpct(&r, 10)) { /* close with a reservation pending: it is cancelled, never seen */
        void *m;
        size_t len = msg_len(rd, slot, seq);
        msg_fill(rd, buf, slot, seq, len);
        ST(&status[seq], ST_RESERVING);
        if (ipc_ring_reserve(&ring, len, &m, 0) == 0) {
            memcpy(m, buf, len);
            ST(&status[seq], ST_RESERVED);
            ipc_ring_close(&ring);
            _exit(0);
        }
        ST(&status[seq], ST_NONE);
    }
    if (rpct(&r, 90)) ipc_ring_close(&ring); /* else leave as if it died, but at a rest */
    _exit(0);
}

static void ring_consumer(round *rd, int me) {
    shared *sh = rd->sh;
    proc *p = &sh->procs[me];
    uint64_t *log = sh->logs[me], w;
    int bc = IS_BC(rd->c.kind), ow = rd->c.kind == K_BCOW, tmode, peek_pct, pfd = -1, rc;
    int streak = 0;
    unsigned char *buf = (unsigned char *)malloc(rd->maxmsg + 16);
    unsigned char *tmp = (unsigned char *)malloc(rd->maxmsg + 16);
    char err[200];
    ipc_ring ring;
    ipc_ring_stats st0, st1;
    rng r;
    memset(&st0, 0, sizeof st0);
    memset(&st1, 0, sizeof st1);
    r.s = mix64(rd->c.seed ^ (0x2000u + (unsigned)me));
    if (!buf || !tmp) cviol(rd, me, "out of memory");
    if (bc) p->bc_lo = SEQ(LD(&sh->sw[0])); /* committed before we came: never ours */
    if ((rc = ipc_ring_attach_fd(&ring, rd->fd, IPC_CONSUMER)) != 0)
        cviol(rd, me, "consumer attach: %s", ipc_strerror(rc));
    if (bc) { /* begun after we came: ours */
        w = LD(&sh->sw[0]);
        p->bc_hi = SEQ(w) + (PHASE(w) != ST_NONE);
    }
    tmode = (int)rbelow(&r, 3);
    peek_pct = 50 * (int)rbelow(&r, 3);
    if (tmode == 1 && rpct(&r, 40) && (pfd = ipc_ring_pollfd(&ring)) < 0)
        cviol(rd, me, "consumer pollfd: %s", ipc_strerror(pfd));
    for (;;) {
        int done = LD(&sh->producers_done), peek = rpct(&r, peek_pct);
        int64_t to = pick_timeout(&r, tmode), t0 = now_ns(), key;
        size_t cap = rpct(&r, 3) ? 16 + (size_t)rbelow(&r, 64) : rd->maxmsg + 16;
        const void *m = NULL;
        ssize_t n;
        if (ow) ipc_ring_get_stats(&ring, &st0);
        ST(&p->pend, PEND(CS_TAKING, peek, 0));
        n = peek ? ipc_ring_peek(&ring, &m, to) : ipc_ring_recv(&ring, buf, cap, to);
        if (n != -EAGAIN && n != -ETIMEDOUT) streak = 0;
        if (n > 0 && peek && ow) { /* may be overwritten while we read: judge after release */
            memcpy(buf, m, (size_t)n);
            rc = ipc_ring_release(&ring);
            if (rc == -EOVERFLOW) {
                ipc_ring_get_stats(&ring, &st1);
                log[p->logn] = OVF | (st1.lost - st0.lost);
                ST(&p->logn, p->logn + 1);
                ST(&p->pend, PEND(CS_IDLE, 0, 0));
                continue;
            }
            if (rc != 0) cviol(rd, me, "release: %s", ipc_strerror(rc));
            m = NULL;
            peek = 0;
        }
        if (n > 0) {
            const unsigned char *msg = m ? (const unsigned char *)m : buf;
            if ((key = msg_check(rd, msg, (size_t)n, tmp, err, sizeof err)) < 0)
                cviol(rd, me, "%s", err);
            ST(&p->pend, PEND(CS_HOLDING, peek, (uint64_t)key));
            if (p->logn >= LOGCAP) cviol(rd, me, "log full");
            log[p->logn] = (uint64_t)key;
            ST(&p->logn, p->logn + 1);
            window(p, &r); /* died here holding a peeked message */
            if (peek) {
                ST(&p->pend, PEND(CS_RELEASING, peek, (uint64_t)key));
                if ((rc = ipc_ring_release(&ring)) != 0)
                    cviol(rd, me, "release: %s", ipc_strerror(rc));
            }
            ST(&p->pend, PEND(CS_IDLE, 0, 0));
            continue;
        }
        ST(&p->pend, PEND(CS_IDLE, 0, 0));
        if (n == -EOVERFLOW && ow) {
            ipc_ring_get_stats(&ring, &st1);
            log[p->logn] = OVF | (st1.lost - st0.lost);
            ST(&p->logn, p->logn + 1);
        } else if (n == -EMSGSIZE && cap < rd->maxmsg + 16) {
            continue;
        } else if (n == -EPIPE) {
            if (done) break; /* every producer had ended before the call: drained */
            note_epipe(rd, p, R_PROD, t0);
            sleep_ns(200 * US);
        } else if (n == -EAGAIN || n == -ETIMEDOUT) {
            idle(&r, pfd, &streak);
            continue;
        } else {
            cviol(rd, me, "consumer: %s", ipc_strerror((int)n));
        }
    }
    ipc_ring_get_stats(&ring, &st1);
    p->lost = st1.lost;
    p->clean = 1;
    if (rpct(&r, 90)) ipc_ring_close(&ring);
    _exit(0);
}

/* ---- children: workers of the sync kinds ---- */

#define MX(sh) ((ipc_mutex *)(void *)(sh)->mx)
#define CV(sh) ((ipc_cond *)(void *)(sh)->cv)

static void note_owner(proc *p, int owner) {
    if (owner && p->nseen < 8) p->seen[p->nseen++] = owner;
}

/* The mutex was found abandoned: repair what it protects, note whose it was. */
static void mx_recover(round *rd, int me, proc *p) {
    shared *sh = rd->sh;
    int rc;
    p->recovered++;
    note_owner(p, sh->owner);
    sh->b = sh->a; /* roll the dead holder's section forward */
    sh->owner = 0;
    if ((rc = ipc_mutex_consistent(MX(sh))) != 0) cviol(rd, me, "consistent: %s", ipc_strerror(rc));
}

/* Mutex and mutex + condition. slot: 0 plain, 1 waiter, 2 signaller. */
static void mx_worker(round *rd, int me) {
    shared *sh = rd->sh;
    proc *p = &sh->procs[me];
    int i, rc, tmode;
    int streak = 0;
    rng r;
    r.s = mix64(rd->c.seed ^ (0x3000u + (unsigned)me));
    tmode = (int)rbelow(&r, 3);
    for (i = 0; i < rd->c.iters;) {
        int64_t to = pick_timeout(&r, tmode);
        ST(&p->pend, (uint64_t)W_LOCKING);
        rc = ipc_mutex_lock(MX(sh), to);
        if (rc == -ETIMEDOUT || rc == -EAGAIN) {
            ST(&p->pend, (uint64_t)W_IDLE);
            idle(&r, -1, &streak);
            continue;
        }
        streak = 0;
        if (rc == -ENOTRECOVERABLE && LD(&sh->unrecoverable)) break;
        if (rc < 0) cviol(rd, me, "mutex_lock: %s", ipc_strerror(rc));
        ST(&p->pend, (uint64_t)W_HOLDING);
        if (rc == IPC_MUTEX_RECOVERED) {
            if (rd->c.unrec && __atomic_exchange_n(&sh->unrec_done, 1, __ATOMIC_ACQ_REL) == 0) {
                /* leave it unrecoverable: every later lock must say so, none may hang */
                p->recovered++;
                note_owner(p, sh->owner);
                sh->owner = 0;
                ST(&sh->unrecoverable, 1);
                ST(&p->pend, (uint64_t)W_UNLOCKING);
                if ((rc = ipc_mutex_unlock(MX(sh))) != 0)
                    cviol(rd, me, "unlock of an inconsistent mutex: %s", ipc_strerror(rc));
                ST(&p->pend, (uint64_t)W_IDLE);
                break;
            }
            mx_recover(rd, me, p);
        } else if (sh->owner != 0 || sh->a != sh->b) {
            cviol(rd, me, "locked without a word, but the last holder (#%d) is still in: a %d b %d",
                  sh->owner - 1, sh->a, sh->b);
        }
        sh->owner = me + 1;
        if (p->slot == 1) { /* waiter: one token, or the end */
            while (sh->tokens == 0 && !sh->closing) {
                sh->owner = 0;
                ST(&p->pend, (uint64_t)W_WAITING);
                rc = ipc_cond_wait(CV(sh), MX(sh),
                                   tmode == 0 ? IPC_FOREVER : (int64_t)(1 + rbelow(&r, 20)) * MS);
                if (rc == -ENOTRECOVERABLE && LD(&sh->unrecoverable)) goto out;
                ST(&p->pend, (uint64_t)W_HOLDING);
                if (rc == IPC_MUTEX_RECOVERED)
                    mx_recover(rd, me, p);
                else if (rc != 0 && rc != -ETIMEDOUT)
                    cviol(rd, me, "cond_wait: %s", ipc_strerror(rc));
                else if (sh->owner != 0 || sh->a != sh->b)
                    cviol(rd, me, "woken without a word, but #%d holds: a %d b %d", sh->owner - 1,
                          sh->a, sh->b);
                sh->owner = me + 1;
            }
            if (sh->tokens > 0)
                sh->tokens--;
            else
                i = rd->c.iters; /* closing and none left */
        } else if (p->slot == 2) {
            sh->tokens++;
            rc = rpct(&r, 50) ? ipc_cond_signal(CV(sh)) : ipc_cond_broadcast(CV(sh));
            if (rc != 0) cviol(rd, me, "cond signal: %s", ipc_strerror(rc));
        }
        sh->a++;
        window(p, &r); /* died here: a != b for the next holder to repair */
        sh->b++;
        sh->owner = 0;
        p->held++;
        ST(&p->pend, (uint64_t)W_UNLOCKING);
        if ((rc = ipc_mutex_unlock(MX(sh))) != 0) cviol(rd, me, "unlock: %s", ipc_strerror(rc));
        ST(&p->pend, (uint64_t)W_IDLE);
        i++;
    }
out:
    p->clean = 1;
    _exit(0);
}

/* System V set: 0 the lock (1 free), 1 live workers, 2 holders; all changed with SEM_UNDO. */
static void sem_worker(round *rd, int me) {
    shared *sh = rd->sh;
    proc *p = &sh->procs[me];
    ipc_semop alive = {1, 1, IPC_SEM_UNDO};
    ipc_semop take[2] = {{0, -1, IPC_SEM_UNDO}, {2, 1, IPC_SEM_UNDO}};
    ipc_semop give[2] = {{0, 1, IPC_SEM_UNDO}, {2, -1, IPC_SEM_UNDO}};
    int i, rc, tmode, v;
    int streak = 0;
    rng r;
    r.s = mix64(rd->c.seed ^ (0x4000u + (unsigned)me));
    tmode = (int)rbelow(&r, 3);
    if ((rc = ipc_semset_op(rd->semid, &alive, 1, IPC_FOREVER)) != 0)
        cviol(rd, me, "semop alive: %s", ipc_strerror(rc));
    for (i = 0; i < rd->c.iters;) {
        ST(&p->pend, (uint64_t)W_LOCKING);
        rc = ipc_semset_op(rd->semid, take, 2, pick_timeout(&r, tmode));
        if (rc == -EAGAIN || rc == -ETIMEDOUT) {
            ST(&p->pend, (uint64_t)W_IDLE);
            idle(&r, -1, &streak);
            continue;
        }
        streak = 0;
        if (rc != 0) cviol(rd, me, "semop take: %s", ipc_strerror(rc));
        ST(&p->pend, (uint64_t)W_HOLDING);
        if ((v = ipc_semset_get(rd->semid, 2)) != 1) cviol(rd, me, "%d holders at once", v);
        if (sh->owner != 0) { /* the last holder died inside: its undo gave the lock back */
            note_owner(p, sh->owner);
            sh->b = sh->a;
        } else if (sh->a != sh->b) {
            cviol(rd, me, "lock taken, no owner, but a %d b %d", sh->a, sh->b);
        }
        sh->owner = me + 1;
        sh->a++;
        window(p, &r);
        sh->b++;
        sh->owner = 0;
        p->held++;
        ST(&p->pend, (uint64_t)W_UNLOCKING);
        if ((rc = ipc_semset_op(rd->semid, give, 2, 0)) != 0)
            cviol(rd, me, "semop give: %s", ipc_strerror(rc));
        ST(&p->pend, (uint64_t)W_IDLE);
        i++;
    }
    p->clean = 1;
    _exit(0); /* the kernel undoes "alive" */
}

/* File locks: writers (exclusive) change a and b, readers (shared) look. */
static void lock_worker(round *rd, int me) {
    shared *sh = rd->sh;
    proc *p = &sh->procs[me];
    unsigned lf = rd->c.lockflags;
    int i, rc, tmode, fd, reader;
    off_t start = 0, len = 0;
    int streak = 0;
    rng r;
    r.s = mix64(rd->c.seed ^ (0x5000u + (unsigned)me));
    tmode = (int)rbelow(&r, 3);
    reader = me % 3 == 2;
    if (!(lf & IPC_LOCK_FLOCK) && (rd->c.seed & 1)) start = 100, len = 1; /* one byte */
    if ((fd = open(rd->path, O_RDWR | O_CLOEXEC)) < 0)
        cviol(rd, me, "open %s: %s", rd->path, strerror(errno));
    for (i = 0; i < rd->c.iters;) {
        unsigned type = reader ? IPC_LOCK_SHARED : IPC_LOCK_EXCLUSIVE;
        ST(&p->pend, (uint64_t)W_LOCKING);
        rc = ipc_lock_acquire(fd, lf | type, start, len, pick_timeout(&r, tmode));
        if (rc == -EAGAIN || rc == -ETIMEDOUT) {
            ST(&p->pend, (uint64_t)W_IDLE);
            idle(&r, -1, &streak);
            continue;
        }
        streak = 0;
        if (rc != 0) cviol(rd, me, "lock_acquire: %s", ipc_strerror(rc));
        ST(&p->pend, (uint64_t)W_HOLDING);
        if (sh->owner != 0) {
            note_owner(p, sh->owner); /* must be a dead writer */
            if (!reader) sh->b = sh->a;
        } else if (sh->a != sh->b) {
            cviol(rd, me, "lock taken, no writer in, but a %d b %d", sh->a, sh->b);
        }
        if (!reader) {
            sh->owner = me + 1;
            sh->a++;
        }
        window(p, &r);
        if (!reader) {
            sh->b++;
            sh->owner = 0;
        }
        p->held++;
        ST(&p->pend, (uint64_t)W_UNLOCKING);
        if ((rc = ipc_lock_release(fd, lf, start, len)) != 0)
            cviol(rd, me, "lock_release: %s", ipc_strerror(rc));
        ST(&p->pend, (uint64_t)W_IDLE);
        i++;
    }
    p->clean = 1;
    _exit(0);
}

static void pidfile_worker(round *rd, int me) {
    shared *sh = rd->sh;
    proc *p = &sh->procs[me];
    int i, fd, k;
    char buf[32];
    rng r;
    r.s = mix64(rd->c.seed ^ (0x6000u + (unsigned)me));
    for (i = 0; i < rd->c.iters;) {
        pid_t holder = -1;
        ST(&p->pend, (uint64_t)W_LOCKING);
        fd = ipc_lock_pidfile(rd->path, &holder);
        if (fd == -EBUSY) {
            /* 0: the file was just made and its pid not written yet */
            int j, n = LD(&sh->nproc), known = holder == 0;
            ST(&p->pend, (uint64_t)W_IDLE);
            p->stale += holder == 0;
            for (j = 0; j < n && !known; j++)
                if (LD(&sh->procs[j].pid) == holder) {
                    known = 1;
                    /* the lock is someone's, but the file still names one that has ended
                       (the new holder locked it and has not written its pid yet) */
                    p->stale += LD(&sh->procs[j].reaped);
                }
            if (!known && holder != getpid())
                cviol(rd, me, "-EBUSY names pid %d, which never held the pid file", (int)holder);
            sleep_ns((int64_t)rbelow(&r, 300) * US);
            continue;
        }
        if (fd < 0) cviol(rd, me, "lock_pidfile: %s", ipc_strerror(fd));
        ST(&p->pend, (uint64_t)W_HOLDING);
        note_owner(p, sh->owner);
        sh->owner = me + 1;
        k = (int)pread(fd, buf, sizeof buf - 1, 0);
        buf[k > 0 ? k : 0] = 0;
        if (strtol(buf, NULL, 10) != (long)getpid())
            cviol(rd, me, "pid file holds \"%s\", not our pid", buf);
        window(p, &r);
        sh->owner = 0;
        p->held++;
        ST(&p->pend, (uint64_t)W_UNLOCKING);
        close(fd);
        ST(&p->pend, (uint64_t)W_IDLE);
        i++;
        sleep_ns((int64_t)rbelow(&r, 200) * US);
    }
    p->clean = 1;
    _exit(0);
}

/* ---- the supervisor: spawning, reaping, killing ---- */

static void child_main(round *rd, int me) {
    proc *p = &rd->sh->procs[me];
    sigset_t none;
    ST(&p->pid, getpid()); /* before any peer can meet us (the parent stores it too) */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (p->killable && (rd->c.mode == M_KP || rd->c.mode == M_MIX)) {
        char v[32];
        snprintf(v, sizeof v, "%d", rd->c.kp_one_in);
        setenv("IPC_KILL_ONE_IN", v, 1);
        if (rd->c.kp_at[0]) setenv("IPC_KILL_AT", rd->c.kp_at, 1);
        snprintf(v, sizeof v, "%llu", (unsigned long long)mix64(rd->c.seed + (unsigned)me));
        setenv("IPC_KILL_SEED", v, 1);
        snprintf(v, sizeof v, "%d", rd->kpp[1]);
        setenv("IPC_KILL_LOG", v, 1);
    }
    close(rd->kpp[0]);
    switch (rd->c.kind) {
    case K_MUTEX:
    case K_COND: mx_worker(rd, me); break;
    case K_SEM: sem_worker(rd, me); break;
    case K_LOCK: lock_worker(rd, me); break;
    case K_PIDFILE: pidfile_worker(rd, me); break;
    default:
        if (p->role == R_PROD)
            ring_producer(rd, me);
        else
            ring_consumer(rd, me);
    }
    _exit(0);
}

static int alive(const shared *sh, int role) {
    int i, n = 0;
    for (i = 0; i < sh->nproc; i++)
        if (!sh->procs[i].reaped && (role == 0 || sh->procs[i].role == role)) n++;
    return n;
}

static int spawn(round *rd, int role, int slot) {
    shared *sh = rd->sh;
    int me = sh->nproc;
    proc *p;
    pid_t pid;
    if (me >= MAXPROC - 1) { /* the last entry holds the supervisor's notes */
        rviol(rd, "more than %d processes: the round cannot end", MAXPROC);
        return -1;
    }
    p = &sh->procs[me];
    memset(p, 0, sizeof *p);
    p->role = role;
    p->slot = slot;
    p->killable = rd->c.mode != M_NONE && rd->deaths < rd->c.budget;
    p->self_one_in =
        p->killable && (rd->c.mode == M_SELF || rd->c.mode == M_MIX) ? rd->c.self_one_in : 0;
    p->t_spawn = now_ns();
    if (role == R_PROD || role == R_CONS) ST(&sh->t_gone[role], 0);
    ST(&sh->nproc, me + 1);
    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        rviol(rd, "fork: %s", strerror(errno));
        p->reaped = 1;
        return -1;
    }
    if (pid == 0) child_main(rd, me);
    p->pid = pid;
    return me;
}

/* Read what the kill points said ("killpoint NAME\n" each) and count the names. */
static void read_kp(round *rd) {
    static char acc[4096];
    static size_t have;
    result *res = rd->res;
    ssize_t n;
    char *line, *nl;
    while ((n = read(rd->kpp[0], acc + have, sizeof acc - 1 - have)) > 0)
        have += (size_t)n;
    acc[have] = 0;
    line = acc;
    while ((nl = strchr(line, '\n')) != NULL) {
        int i;
        *nl = 0;
        if (strncmp(line, "killpoint ", 10) == 0) {
            const char *name = line + 10;
            for (i = 0; i < res->nkp && strcmp(res->kpn[i], name) != 0; i++) {
            }
            if (i == res->nkp && i < NKPN) {
                snprintf(res->kpn[i], sizeof res->kpn[i], "%s", name);
                res->nkp++;
            }
            if (i < NKPN) res->kpc[i]++;
        }
        line = nl + 1;
    }
    have = strlen(line);
    memmove(acc, line, have);
}

/* What to do when a child is gone: ring producers go on with their stream, consumers and
   workers that died are replaced. */
static void on_exit_child(round *rd, int i) {
    shared *sh = rd->sh;
    proc *p = &sh->procs[i];
    int st = p->wstatus, died = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
    int64_t delay;
    rng r;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && p->clean) {
        if (p->role == R_PROD && SEQ(LD(&sh->sw[p->slot])) < rd->c.quota[p->slot])
            rviol(rd, "producer #%d left before its stream's end", i);
        return;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 3) {
        rd->viol++; /* it said why */
        return;
    }
    if (!died) {
        if (WIFSIGNALED(st))
            rviol(rd, "#%d (pid %d) died of signal %d (%s)", i, (int)p->pid, WTERMSIG(st),
                  strsignal(WTERMSIG(st)));
        else
            rviol(rd, "#%d (pid %d) exited with %d", i, (int)p->pid, WEXITSTATUS(st));
        return;
    }
    rd->deaths++;
    if (p->ext_killed)
        rd->res->ext++;
    else if (p->self_killed)
        rd->res->self++;
    else if (p->killable)
        rd->res->kp++;
    else
        rviol(rd, "#%d (pid %d) got SIGKILL from nobody we know", i, (int)p->pid);
    if (rd->npending >= MAXPROC * 2) return;
    r.s = mix64(rd->c.seed ^ (uint64_t)i ^ 0x7000u);
    delay = (rd->c.respawn_us[0] + (int64_t)rbelow(&r, (uint64_t)rd->c.respawn_us[1])) * US;
    rd->pending_spawn[rd->npending][0] = p->role;
    rd->pending_spawn[rd->npending][1] = p->slot;
    rd->spawn_at[rd->npending++] = now_ns() + delay;
}

static void reap(round *rd) {
    shared *sh = rd->sh;
    pid_t pid;
    int st, i;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (i = 0; i < sh->nproc && sh->procs[i].pid != pid; i++) {
        }
        if (i == sh->nproc) continue;
        ST(&sh->procs[i].reaped, 1);
        sh->procs[i].wstatus = st;
        sh->procs[i].t_end = now_ns();
        if (sh->procs[i].role != R_WORK && alive(sh, sh->procs[i].role) == 0)
            ST(&sh->t_gone[sh->procs[i].role], sh->procs[i].t_end);
        on_exit_child(rd, i);
    }
}

/* Where is a process that does not end? Its state, and the kernel's view of it. */
static void diagnose(round *rd) {
    shared *sh = rd->sh;
    int i;
    printf("  hang: %d processes left (producers_done %d)\n", alive(sh, 0), sh->producers_done);
    for (i = 0; i < sh->nproc; i++) {
        proc *p = &sh->procs[i];
        char path[64], buf[256], st[256], sc[256];
        const char *f[3] = {"wchan", "stat", "syscall"};
        char *out[3];
        int fd, n, k;
        if (p->reaped) continue;
        out[0] = buf, out[1] = st, out[2] = sc;
        for (k = 0; k < 3; k++) { /* where it sleeps, its state, the system call it is in */
            snprintf(path, sizeof path, "/proc/%d/%s", (int)p->pid, f[k]);
            out[k][0] = 0;
            if ((fd = open(path, O_RDONLY)) >= 0) {
                n = (int)read(fd, out[k], sizeof buf - 1);
                out[k][n > 0 ? n : 0] = 0;
                close(fd);
            }
            out[k][strcspn(out[k], "\n")] = 0;
        }
        printf("  #%d pid %d role %d slot %d pend %#llx logn %u wchan %s state %c syscall %.24s", i,
               (int)p->pid, p->role, p->slot, (unsigned long long)p->pend, p->logn, buf,
               strchr(st, ')') ? strchr(st, ')')[2] : '?', sc);
        if (p->role == R_WORK && p->pend < 5) printf(" %s", w_name[p->pend]);
        if (IS_RING(rd->c.kind) && p->role == R_PROD) {
            uint64_t w = sh->sw[p->slot];
            printf(" stream seq %u %s", SEQ(w), st_name[PHASE(w) < 7 ? PHASE(w) : 0]);
        }
        printf("\n");
    }
}

/* Run the processes until every one has ended: replace the dead, kill at random, end the
   producers' part, and give up at the deadline. */
static void supervise(round *rd, int64_t deadline) {
    shared *sh = rd->sh;
    int ext = rd->c.mode == M_EXT || rd->c.mode == M_MIX;
    int64_t t0 = now_ns(), next_kill, moved = t0;
    uint64_t last_prog = 0;
    int inflight;
    sigset_t chld;
    rng r;
    r.s = mix64(rd->c.seed ^ 0x8000u);
    next_kill = t0 + (int64_t)rbelow(&r, (uint64_t)rd->c.chaos_ms * (uint64_t)MS / 2 + 1);
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
        int64_t now, wait = 2 * MS;
        struct timespec ts;
        int i;
        reap(rd);
        read_kp(rd);
        if (rd->viol) break;
        now = now_ns();
        for (i = 0; i < rd->npending;) {
            if (now >= rd->spawn_at[i]) {
                spawn(rd, rd->pending_spawn[i][0], rd->pending_spawn[i][1]);
                rd->npending--;
                rd->pending_spawn[i][0] = rd->pending_spawn[rd->npending][0];
                rd->pending_spawn[i][1] = rd->pending_spawn[rd->npending][1];
                rd->spawn_at[i] = rd->spawn_at[rd->npending];
                continue;
            }
            if (rd->spawn_at[i] - now < wait) wait = rd->spawn_at[i] - now;
            i++;
        }
        if (IS_RING(rd->c.kind) && !sh->producers_done && alive(sh, R_PROD) == 0) {
            int pend = 0;
            for (i = 0; i < rd->npending; i++)
                pend |= rd->pending_spawn[i][0] == R_PROD;
            if (!pend) ST(&sh->producers_done, 1);
        }
        if (rd->c.kind == K_COND && !sh->closing && alive(sh, R_WORK) > 0) {
            /* signallers all done: end the waiters (under the lock, as a program would) */
            int sig = 0, pend = 0;
            for (i = 0; i < sh->nproc; i++)
                sig |= !sh->procs[i].reaped && sh->procs[i].slot == 2;
            for (i = 0; i < rd->npending; i++)
                pend |= rd->pending_spawn[i][1] == 2;
            if (!sig && !pend) {
                int rc = ipc_mutex_lock(MX(sh), 50 * MS);
                if (rc == IPC_MUTEX_RECOVERED) {
                    rd->sh->procs[MAXPROC - 1].recovered++; /* counted as the supervisor's */
                    note_owner(&rd->sh->procs[MAXPROC - 1], sh->owner);
                    sh->b = sh->a;
                    sh->owner = 0;
                    ipc_mutex_consistent(MX(sh));
                }
                if (rc == 0 || rc == IPC_MUTEX_RECOVERED) {
                    ST(&sh->closing, 1);
                    ipc_cond_broadcast(CV(sh));
                    ipc_mutex_unlock(MX(sh));
                } else if (rc == -ENOTRECOVERABLE) {
                    ST(&sh->closing, 1);
                    ipc_cond_broadcast(CV(sh));
                } else if (rc != -ETIMEDOUT) {
                    rviol(rd, "supervisor's lock: %s", ipc_strerror(rc));
                }
            }
        }
        if (alive(sh, 0) == 0 && rd->npending == 0) break;
        for (i = 0, inflight = 0; i < sh->nproc; i++)
            inflight += sh->procs[i].ext_killed && !sh->procs[i].reaped;
        if (ext && rd->deaths + inflight < rd->c.budget) {
            if (now >= next_kill) {
                int cand[MAXPROC], n = 0;
                for (i = 0; i < sh->nproc; i++)
                    if (!sh->procs[i].reaped && sh->procs[i].killable && !sh->procs[i].ext_killed)
                        cand[n++] = i;
                if (n) {
                    i = cand[rbelow(&r, (uint64_t)n)];
                    sh->procs[i].ext_killed = 1;
                    kill(sh->procs[i].pid, SIGKILL);
                }
                next_kill =
                    now + (int64_t)rbelow(&r, (uint64_t)rd->c.chaos_ms * (uint64_t)MS /
                                                      (uint64_t)(rd->c.budget ? rd->c.budget : 1) +
                                                  1);
            }
            if (next_kill - now < wait) wait = next_kill - now;
        }
        /* Progress: a message delivered, a section done, a message sent, a process come or
           gone. A hang is a round that stops moving, however slowly the machine runs it (a
           round starved of CPU by other work goes on, slowly). */
        {
            uint64_t prog = (uint64_t)sh->nproc;
            for (i = 0; i < sh->nproc; i++)
                prog += LD(&sh->procs[i].logn) + (uint64_t)LD(&sh->procs[i].held) +
                        (uint64_t)sh->procs[i].reaped;
            for (i = 0; i < MAXSLOT; i++)
                prog += SEQ(LD(&sh->sw[i]));
            if (prog != last_prog) last_prog = prog, moved = now;
        }
        if (now - moved > rd->stall || now >= deadline) {
            rd->res->hang = 1;
            rviol(rd, "round stuck: no progress for %.1f s (%.1f s since it began)",
                  (double)(now - moved) / 1e9, (double)(now - t0) / 1e9);
            diagnose(rd);
            break;
        }
        if (wait < 50 * US) wait = 50 * US;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)wait;
        sigtimedwait(&chld, NULL, &ts);
    }
    /* a violation or a hang: end what is left */
    {
        int i;
        for (i = 0; i < sh->nproc; i++)
            if (!sh->procs[i].reaped) kill(sh->procs[i].pid, SIGKILL);
        while (waitpid(-1, NULL, 0) > 0) {
        }
        read_kp(rd);
    }
}

/* ---- the oracles ---- */

static int died_at(const proc *p, int state) {
    return p->reaped && WIFSIGNALED(p->wstatus) && (int)p->pend == state;
}

static int dead(const proc *p) {
    return p->reaped && WIFSIGNALED(p->wstatus);
}

/* SPSC, MPMC, MPSC: every message committed is delivered exactly once, whole, in its
   producer's order; nothing uncommitted appears. The exceptions come from dead consumers:
     - killed taking (inside recv or peek, nothing logged yet): the slot kinds lose the
       message it may have taken (counted in stats.lost); SPSC recv may have consumed one
       (lost to the log); SPSC peek consumed nothing.
     - killed holding an SPSC peeked message (not released): its successor gets it again
       (and may die holding it too), so it is delivered once more per such death; killed
       releasing: once more or not. */
static void oracle_slots(round *rd) {
    shared *sh = rd->sh;
    int spsc = rd->c.kind == K_SPSC, i, s;
    static uint8_t cnt[MAXSLOT][MAXSEQ], held[MAXSEQ], releasing[MAXSEQ];
    static uint8_t skip_ok[MAXSEQ]; /* SPSC: what a consumer killed inside recv may have eaten */
    long missing = 0, allowed = 0, reported = 0;
    uint64_t last_spsc = 0;
    int have_last = 0;
    /* SPSC: where the next consumer may start, lowest and highest (a death while releasing
       leaves both the message and the one after it possible) */
    uint32_t from = 0, from_hi = 0;
    memset(cnt, 0, sizeof cnt);
    memset(held, 0, sizeof held);
    memset(releasing, 0, sizeof releasing);
    memset(skip_ok, 0, sizeof skip_ok);
    for (i = 0; i < sh->nproc; i++) {
        proc *p = &sh->procs[i];
        uint64_t *log = sh->logs[i], pend = p->pend, last[MAXSLOT];
        uint32_t n = p->logn, k;
        int st = PEND_ST(pend), has[MAXSLOT] = {0, 0, 0, 0};
        if (p->role != R_CONS) continue;
        /* killed holding a message it had not logged yet: it was delivered */
        if (dead(p) && (st == CS_HOLDING || st == CS_RELEASING) &&
            (n == 0 || log[n - 1] != PEND_KEY(pend))) {
            if (n >= LOGCAP) continue;
            log[n++] = PEND_KEY(pend);
        }
        for (k = 0; k < n; k++) {
            uint64_t key = log[k];
            int slot = (int)(key >> 32);
            uint32_t seq = (uint32_t)key, stt;
            stt = sh->status[slot][seq];
            if (stt != ST_COMMITTED && !ST_MAYBE(stt))
                rviol(rd, "consumer #%d got stream %d seq %u, which was %s", i, slot, seq,
                      st_name[stt]);
            if (has[slot] && seq <= (uint32_t)last[slot])
                rviol(rd, "consumer #%d got stream %d seq %u after seq %u", i, slot, seq,
                      (uint32_t)last[slot]);
            has[slot] = 1;
            last[slot] = seq;
            if (cnt[slot][seq] < 255) cnt[slot][seq]++;
            if (spsc) { /* one stream, one consumer at a time: a total order across them */
                if (have_last && seq < (uint32_t)last_spsc)
                    rviol(rd, "SPSC order: seq %u delivered after seq %u", seq,
                          (uint32_t)last_spsc);
                if (have_last && seq == (uint32_t)last_spsc &&
                    (k != 0 || (!held[seq] && !releasing[seq])))
                    rviol(rd, "SPSC: seq %u delivered twice in a row (consumer #%d)", seq, i);
                last_spsc = seq;
                have_last = 1;
            }
        }
        if (n > 0) from = from_hi = (uint32_t)last_spsc + 1;
        if (!dead(p)) continue;
        /* died with a peeked message unreleased (or being released): its successor starts
           there again (or after it) */
        if (spsc && PEND_PEEK(pend) && (st == CS_HOLDING || st == CS_RELEASING)) {
            from = (uint32_t)PEND_KEY(pend);
            from_hi = from + (st == CS_RELEASING);
        }
        if (st == CS_TAKING && (!spsc || !PEND_PEEK(pend))) {
            allowed++;
            if (spsc) { /* it may have eaten the first committed message from where it
                           may have started (after what the dead before it may have eaten) */
                uint32_t q = from;
                for (; q < MAXSEQ && (q < from_hi || sh->status[0][q] != ST_COMMITTED); q++)
                    skip_ok[q] = 1;
                if (q < MAXSEQ) skip_ok[q] = 1;
                from_hi = q + 1; /* or, if it ate nothing, still from */
            }
        }
        if (spsc && PEND_PEEK(pend) && st == CS_HOLDING) held[(uint32_t)PEND_KEY(pend)]++;
        if (spsc && PEND_PEEK(pend) && st == CS_RELEASING) releasing[(uint32_t)PEND_KEY(pend)]++;
    }
    for (s = 0; s < rd->c.np; s++) {
        uint32_t q;
        for (q = 0; q < rd->c.quota[s]; q++) {
            int stt = sh->status[s][q], c = cnt[s][q];
            /* SPSC: once more per death holding it, but one of those redeliveries may have
               been eaten by a consumer killed inside recv */
            int lo = spsc ? 1 + held[q] - (held[q] && skip_ok[q]) : 1;
            int hi = spsc ? 1 + held[q] + releasing[q] : 1;
            rd->res->msgs += c;
            if (c > hi || (c > 0 && c < lo))
                rviol(rd,
                      "stream %d seq %u (%s) delivered %d times (%d..%d expected: %d deaths "
                      "holding it, %d releasing)",
                      s, q, st_name[stt], c, lo, hi, held[q], releasing[q]);
            if (stt == ST_COMMITTED && c == 0) {
                missing++;
                if (spsc && skip_ok[q] && missing <= allowed) continue;
                if (!spsc && missing <= allowed) continue;
                if (reported++ < 4)
                    rviol(rd,
                          "stream %d seq %u committed, never delivered (%ld consumers died "
                          "taking)",
                          s, q, allowed);
            }
        }
    }
}

/* Broadcast: each reader sees, in order and without gaps, every message from its first one
   to its last; nothing committed before it came; everything begun after it came (if it
   lived to the end, up to the last message). Overwrite mode: a gap is allowed only where
   the reader got -EOVERFLOW, and the lost count says its size. */
static void oracle_bc(round *rd) {
    shared *sh = rd->sh;
    static uint8_t got[MAXSEQ];
    uint32_t quota = rd->c.quota[0], q, lastc = 0;
    int i, have_lastc = 0;
    memset(got, 0, sizeof got);
    for (i = 0; i < sh->nproc; i++) {
        uint32_t k;
        if (sh->procs[i].role != R_CONS) continue;
        for (k = 0; k < sh->procs[i].logn; k++)
            if (!(sh->logs[i][k] & OVF)) got[(uint32_t)sh->logs[i][k]] = 1;
    }
    for (q = 0; q < quota; q++) {
        int stt = sh->status[0][q];
        if (got[q] && stt != ST_COMMITTED && !ST_MAYBE(stt))
            rviol(rd, "seq %u delivered but %s", q, st_name[stt]);
        if (stt == ST_COMMITTED || got[q]) lastc = q, have_lastc = 1;
    }
#define COMMITTED(q) (sh->status[0][q] == ST_COMMITTED || got[q])
    for (i = 0; i < sh->nproc; i++) {
        proc *p = &sh->procs[i];
        uint64_t *log = sh->logs[i];
        uint32_t k, prev = 0, def, amb, x;
        int have_prev = 0, ovf = 0, lead_ovf = 0;
        uint64_t lost = 0;
        if (p->role != R_CONS) continue;
        for (k = 0; k < p->logn; k++) {
            uint32_t seq;
            if (log[k] & OVF) {
                if (rd->c.kind != K_BCOW) rviol(rd, "reader #%d: -EOVERFLOW in lossless mode", i);
                ovf = 1;
                lost += log[k] & ~OVF;
                if (!have_prev) lead_ovf = 1;
                continue;
            }
            seq = (uint32_t)log[k];
            if (!have_prev) {
                if (seq < p->bc_lo)
                    rviol(rd, "reader #%d got seq %u, committed before it attached (from %u)", i,
                          seq, (uint32_t)p->bc_lo);
                if (!lead_ovf)
                    for (x = (uint32_t)p->bc_hi; x < seq; x++)
                        if (COMMITTED(x)) {
                            rviol(rd,
                                  "reader #%d missed seq %u, sent after it attached (first "
                                  "got %u)",
                                  i, x, seq);
                            break;
                        }
            } else {
                if (seq <= prev) rviol(rd, "reader #%d got seq %u after %u", i, seq, prev);
                for (x = prev + 1, def = amb = 0; x < seq; x++) {
                    def += sh->status[0][x] == ST_COMMITTED || got[x];
                    amb += ST_MAYBE(sh->status[0][x]) && !got[x];
                }
                if (!ovf && def)
                    rviol(rd, "reader #%d: gap of %u committed between seq %u and %u", i, def, prev,
                          seq);
                if (ovf && (lost < def || lost > def + amb))
                    rviol(rd,
                          "reader #%d: -EOVERFLOW lost %llu, but %u (+%u maybe) were "
                          "committed between seq %u and %u",
                          i, (unsigned long long)lost, def, amb, prev, seq);
            }
            prev = seq;
            have_prev = 1;
            ovf = 0;
            lost = 0;
        }
        /* a reader that ended normally saw everything up to the end */
        if (p->clean && have_lastc && !ovf) {
            uint32_t from = have_prev ? prev + 1 : (uint32_t)p->bc_hi;
            for (x = from; x <= lastc; x++)
                if (COMMITTED(x)) {
                    rviol(rd, "reader #%d ended at %s%u without seq %u (last committed %u)", i,
                          have_prev ? "seq " : "attach, from ", from - (have_prev ? 1 : 0), x,
                          lastc);
                    break;
                }
        }
        for (k = 0; k < p->logn; k++)
            rd->res->msgs += !(log[k] & OVF);
    }
#undef COMMITTED
}

/* Sync kinds: whoever found an owner in place must have found a dead one, dead holding. */
static void oracle_owners(round *rd, int n_extra) {
    shared *sh = rd->sh;
    int i, k;
    for (i = 0; i < sh->nproc + n_extra; i++) {
        proc *p = &sh->procs[i < sh->nproc ? i : MAXPROC - 1];
        for (k = 0; k < p->nseen; k++) {
            int o = p->seen[k] - 1;
            if (o < 0 || o >= sh->nproc || !dead(&sh->procs[o]) ||
                (int)sh->procs[o].pend != W_HOLDING)
                rviol(rd, "#%d found #%d in the critical section, %s", i, o,
                      o < 0 || o >= sh->nproc ? "no such process"
                      : !dead(&sh->procs[o])  ? "which did not die"
                                              : "which did not die holding");
        }
    }
}

/* ---- the rounds ---- */

static void ring_reuse(round *rd) {
    static const char m[] = "reused, at last"; /* 16 bytes: fits the smallest slot */
    char buf[64];
    ipc_ring cons, prod;
    ssize_t n;
    int rc;
    if ((rc = ipc_ring_attach_fd(&cons, rd->fd, IPC_CONSUMER)) != 0) {
        rviol(rd, "not reusable: consumer attach: %s", ipc_strerror(rc));
        return;
    }
    if ((rc = ipc_ring_attach_fd(&prod, rd->fd, IPC_PRODUCER)) != 0) {
        rviol(rd, "not reusable: producer attach: %s", ipc_strerror(rc));
        ipc_ring_close(&cons);
        return;
    }
    if ((rc = ipc_ring_send(&prod, m, sizeof m, 2000 * MS)) != 0)
        rviol(rd, "not reusable: send: %s", ipc_strerror(rc));
    else if ((n = ipc_ring_recv(&cons, buf, sizeof buf, 2000 * MS)) != (ssize_t)sizeof m ||
             memcmp(buf, m, sizeof m) != 0)
        rviol(rd, "not reusable: recv gave %zd (%s) instead of the new message", n,
              n < 0 ? ipc_strerror((int)n) : "another message");
    ipc_ring_close(&prod);
    ipc_ring_close(&cons);
}

static void ring_round(round *rd, int64_t deadline) {
    ipc_ring r;
    ipc_ring_opts o;
    int i, rc;
    memset(&o, 0, sizeof o);
    o.capacity = rd->c.capacity;
    o.spin_ns = rd->c.spin_ns;
    o.flags = rd->c.flags;
    if ((rc = ipc_ring_create(&r, NULL, IPC_PRODUCER, &o)) != 0) {
        rviol(rd, "create: %s", ipc_strerror(rc));
        return;
    }
    rd->maxmsg = ipc_ring_max_msg(&r);
    rd->lmax = rd->c.lmax < rd->maxmsg ? rd->c.lmax : rd->maxmsg;
    if (rd->lmax < 16) rd->lmax = 16;
    rd->fd = fcntl(ipc_ring_fd(&r), F_DUPFD_CLOEXEC, 0);
    ipc_ring_close(&r); /* the ring now lives on rd->fd alone; its roles are free */
    if (rd->fd < 0) {
        rviol(rd, "dup: %s", strerror(errno));
        return;
    }
    for (i = 0; i < rd->c.np; i++)
        spawn(rd, R_PROD, i);
    for (i = 0; i < rd->c.nc; i++)
        spawn(rd, R_CONS, 0);
    supervise(rd, deadline);
    if (rd->viol) return;
    if (IS_BC(rd->c.kind))
        oracle_bc(rd);
    else
        oracle_slots(rd);
    for (i = 0; i < rd->sh->nproc; i++) {
        proc *p = &rd->sh->procs[i];
        rd->res->lost += (long)p->lost;
        if (p->lat_max > rd->res->lat_max) rd->res->lat_max = p->lat_max;
    }
    /* slot kinds: each death leaves one hole or one taken message at most */
    if ((rd->c.kind == K_MPMC || rd->c.kind == K_MPSC) && rd->res->lost > rd->deaths)
        rviol(rd, "ipc.h counted %ld lost, for %d deaths", rd->res->lost, rd->deaths);
    if (!rd->viol) ring_reuse(rd);
    close(rd->fd);
}

static void sync_round(round *rd, int64_t deadline) {
    shared *sh = rd->sh;
    proc *sup = &sh->procs[MAXPROC - 1]; /* the supervisor's own notes */
    int i, rc, hold = 0, maybe = 0, rec = 0, v;
    memset(sup, 0, sizeof *sup);
    switch (rd->c.kind) {
    case K_MUTEX:
    case K_COND:
        if ((rc = ipc_mutex_init(sh->mx, NULL)) != 0 || (rc = ipc_cond_init(sh->cv, NULL)) != 0) {
            rviol(rd, "init: %s", ipc_strerror(rc));
            return;
        }
        break;
    case K_SEM:
        if ((rd->semid = ipc_semset_create(0, 3, 0600)) < 0) {
            rviol(rd, "semset_create: %s", ipc_strerror(rd->semid));
            return;
        }
        rd->res->semid = rd->semid;
        ipc_semset_set(rd->semid, 0, 1);
        break;
    case K_LOCK:
    case K_PIDFILE:
        snprintf(rd->path, sizeof rd->path, "%s/r%d", rd->tmpdir, (int)getpid());
        if (rd->c.kind == K_LOCK) {
            int fd = open(rd->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0) {
                rviol(rd, "create %s: %s", rd->path, strerror(errno));
                return;
            }
            close(fd);
        }
        break;
    default: break;
    }
    for (i = 0; i < rd->c.np; i++)
        spawn(rd, R_WORK, rd->c.kind == K_COND ? 1 + i % 2 : 0);
    supervise(rd, deadline);
    if (rd->viol) goto cleanup;
    for (i = 0; i < sh->nproc; i++) {
        proc *p = &sh->procs[i];
        hold += died_at(p, W_HOLDING);
        maybe += died_at(p, W_LOCKING) || died_at(p, W_UNLOCKING) || died_at(p, W_WAITING);
        rec += p->recovered;
        rd->res->msgs += p->held;
        rd->res->stale += p->stale;
    }
    switch (rd->c.kind) {
    case K_MUTEX:
    case K_COND:
        /* the last holder may have died: the supervisor is the next locker */
        rc = ipc_mutex_lock(MX(sh), 1000 * MS);
        if (rc == IPC_MUTEX_RECOVERED) {
            sup->recovered++;
            note_owner(sup, sh->owner);
            sh->b = sh->a;
            sh->owner = 0;
            ipc_mutex_consistent(MX(sh));
        }
        rec += sup->recovered;
        if (rc == -ENOTRECOVERABLE) {
            if (!sh->unrecoverable) rviol(rd, "-ENOTRECOVERABLE, but nobody left it so");
            /* cleanly dead: made anew, it works */
            ipc_mutex_destroy(MX(sh));
            if ((rc = ipc_mutex_init(sh->mx, NULL)) != 0 ||
                (rc = ipc_mutex_lock(MX(sh), 1000 * MS)) != 0)
                rviol(rd, "mutex made anew: %s", ipc_strerror(rc));
        } else if (rc < 0) {
            rviol(rd, "final lock: %s (every holder has ended)", ipc_strerror(rc));
            break;
        } else if (sh->unrecoverable) {
            rviol(rd, "left unrecoverable, yet locked: %d", rc);
        }
        /* (left unrecoverable, the data was abandoned unrepaired, as the owner-died
           contract allows) */
        if (!sh->unrecoverable && (sh->a != sh->b || sh->owner))
            rviol(rd, "state a %d b %d owner %d", sh->a, sh->b, sh->owner);
        ipc_mutex_unlock(MX(sh));
        if (!sh->unrecoverable && (rec < hold || rec > hold + maybe))
            rviol(rd, "%d owner-died returns for %d holders killed holding (+%d maybe)", rec, hold,
                  maybe);
        if (sh->unrecoverable && rec > hold + maybe)
            rviol(rd, "%d owner-died returns for %d deaths that could cause them", rec,
                  hold + maybe);
        oracle_owners(rd, 1);
        break;
    case K_SEM:
        if ((v = ipc_semset_get(rd->semid, 0)) != 1) rviol(rd, "lock semaphore %d, not 1", v);
        if ((v = ipc_semset_get(rd->semid, 1)) != 0) rviol(rd, "live count %d, not 0", v);
        if ((v = ipc_semset_get(rd->semid, 2)) != 0) rviol(rd, "holder count %d, not 0", v);
        oracle_owners(rd, 0);
        break;
    case K_LOCK: {
        int fd = open(rd->path, O_RDWR | O_CLOEXEC);
        if (fd < 0 ||
            (rc = ipc_lock_acquire(fd, rd->c.lockflags | IPC_LOCK_EXCLUSIVE, 0, 0, 0)) != 0)
            rviol(rd, "lock not free after every holder ended: %s",
                  fd < 0 ? strerror(errno) : ipc_strerror(rc));
        if (fd >= 0) close(fd);
        oracle_owners(rd, 0);
        break;
    }
    case K_PIDFILE: {
        pid_t h = 0;
        int fd = ipc_lock_pidfile(rd->path, &h);
        if (fd < 0)
            rviol(rd, "pid file not reusable: %s (holder %d)", ipc_strerror(fd), (int)h);
        else
            close(fd);
        oracle_owners(rd, 0);
        break;
    }
    default: break;
    }
cleanup:
    if (rd->c.kind == K_SEM && rd->semid >= 0) {
        ipc_semset_remove(rd->semid);
        rd->res->semid = -1;
    }
    if (rd->path[0]) unlink(rd->path);
}

/* One round, in a process of its own (the driver's deadline kills its process group). */
static int run_round(uint64_t seed, result *res, const char *tmpdir, int64_t stall) {
    round rd;
    sigset_t chld;
    memset(&rd, 0, sizeof rd);
    memset(res, 0, sizeof *res);
    make_cfg(seed, &rd.c);
    rd.res = res;
    rd.semid = -1;
    rd.tmpdir = tmpdir;
    res->kind = rd.c.kind;
    res->mode = rd.c.mode;
    res->semid = -1;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    rd.sh = (shared *)mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (rd.sh == MAP_FAILED || pipe2(rd.kpp, O_NONBLOCK) != 0) {
        printf("VIOLATION setup: %s\n", strerror(errno));
        return 1;
    }
    rd.stall = stall;
    if (IS_RING(rd.c.kind))
        ring_round(&rd, now_ns() + 10 * stall);
    else
        sync_round(&rd, now_ns() + 10 * stall);
    if (opt_verbose) { /* who lived when, and how it ended */
        int i;
        int64_t t0 = rd.sh->nproc ? rd.sh->procs[0].t_spawn : 0;
        for (i = 0; i < rd.sh->nproc; i++) {
            proc *p = &rd.sh->procs[i];
            int st = p->wstatus;
            printf("  #%-3d %s%d %7.1f .. %7.1f ms  %s%s%s%s logn %u lost %llu epipe %.1f ms\n", i,
                   p->role == R_PROD   ? "prod"
                   : p->role == R_CONS ? "cons"
                                       : "work",
                   p->slot, (double)(p->t_spawn - t0) / 1e6, (double)(p->t_end - t0) / 1e6,
                   WIFSIGNALED(st) ? "killed" : "exit", p->ext_killed ? " ext" : "",
                   p->self_killed ? " self" : "",
                   WIFSIGNALED(st) && !p->ext_killed && !p->self_killed ? " kp" : "", p->logn,
                   (unsigned long long)p->lost, (double)p->lat_max / 1e6);
            if (p->role == R_CONS && IS_RING(rd.c.kind)) {
                uint64_t *lg = rd.sh->logs[i];
                printf("       pend %d%s key %llu:%u", PEND_ST(p->pend),
                       PEND_PEEK(p->pend) ? " peek" : "",
                       (unsigned long long)(PEND_KEY(p->pend) >> 32), (uint32_t)p->pend);
                if (p->logn)
                    printf(", logged %u:%u .. %u:%u", (uint32_t)(lg[0] >> 32) & 0xff,
                           (uint32_t)lg[0], (uint32_t)(lg[p->logn - 1] >> 32) & 0xff,
                           (uint32_t)lg[p->logn - 1]);
                printf("\n");
            }
        }
    }
    res->viol = rd.viol;
    res->deaths = rd.deaths;
    res->procs = rd.sh->nproc;
    res->late = res->lat_max > 1000 * MS;
    fflush(stdout);
    return rd.viol ? 1 : 0;
}

/* ---- the driver ---- */

typedef struct job {
    pid_t pid;
    long idx;
    uint64_t seed;
    int64_t t0;
    int out;
    result *res;
} job;

static void describe(const cfg *c, char *s, size_t n) {
    int k = 0;
    k += snprintf(s + k, n - (size_t)k, "kind %s mode %s", kind_name[c->kind], mode_name[c->mode]);
    if (IS_RING(c->kind)) {
        k += snprintf(s + k, n - (size_t)k, " p%d c%d cap %zu", c->np, c->nc, c->capacity);
        if (c->kind != K_SPSC)
            k += snprintf(s + k, n - (size_t)k, " slot %u", 1u << (c->flags >> 24));
        if (c->mode == M_KP || c->mode == M_MIX)
            k += snprintf(s + k, n - (size_t)k, " kp 1/%d %s", c->kp_one_in,
                          c->kp_at[0] ? c->kp_at : "all");
    } else {
        k += snprintf(s + k, n - (size_t)k, " workers %d iters %d%s", c->np, c->iters,
                      c->unrec ? " unrecoverable" : "");
    }
    if (c->mode != M_NONE) snprintf(s + k, n - (size_t)k, " budget %d", c->budget);
}

static int has_name(const char *list, const char *name) {
    size_t n = strlen(name);
    const char *p = list;
    if (!list) return 1;
    while ((p = strstr(p, name)) != NULL) {
        if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
        p += n;
    }
    return 0;
}

int main(int argc, char **argv) {
    long rounds = 300, next = 0, done = 0, i;
    int jobs = 4 * (int)sysconf(_SC_NPROCESSORS_ONLN), single = 0, nset = 0, jset = 0, a, k, m,
        viol_rounds = 0, hangs = 0, late = 0;
    uint64_t master = 0, one_seed = 0;
    const char *kinds = NULL, *modes = NULL, *env;
    int64_t timeout = 15000 * MS, t_start, lat_max = 0; /* -t: no progress for this long */
    long per[NKIND][NMODE], deaths[3] = {0, 0, 0}, msgs = 0, lost = 0, stale = 0;
    char kpn[64][32], tmpdir[] = "/tmp/crashtest.XXXXXX", desc[256];
    long kpc[64];
    uint64_t fail_seeds[32];
    int nkpn = 0, nfail = 0;
    job *jb;
    result *res;
    sigset_t chld;
    memset(per, 0, sizeof per);
    if ((env = getenv("CRASH_ROUNDS")) != NULL) rounds = atol(env);
    master = mix64((uint64_t)now_ns() ^ ((uint64_t)getpid() << 32));
    for (a = 1; a < argc; a++) {
        const char *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(argv[a], "-q"))
            opt_quiet = 1;
        else if (!strcmp(argv[a], "-v"))
            opt_verbose = 1;
        else if (!strcmp(argv[a], "-n") && v)
            rounds = atol(v), nset = 1, a++;
        else if (!strcmp(argv[a], "-j") && v)
            jobs = atoi(v), jset = 1, a++;
        else if (!strcmp(argv[a], "-s") && v)
            master = strtoull(v, NULL, 0), a++;
        else if (!strcmp(argv[a], "--seed") && v)
            one_seed = strtoull(v, NULL, 0), single = 1, a++;
        else if (!strcmp(argv[a], "-k") && v)
            kinds = v, a++;
        else if (!strcmp(argv[a], "-m") && v)
            modes = v, a++;
        else if (!strcmp(argv[a], "-t") && v)
            timeout = (int64_t)(atof(v) * 1e9), a++;
        else {
            fprintf(stderr,
                    "usage: %s [-n ROUNDS] [-j JOBS] [-s MASTER] [--seed ROUNDSEED] [-k KIND,...]\n"
                    "          [-m MODE,...] [-t SECONDS] [-q] [-v]\n"
                    "kinds: spsc mpmc mpsc bcast bcast-ow mutex cond semundo lockfile pidfile\n"
                    "modes: none external killpoint self mixed\n",
                    argv[0]);
            return 2;
        }
    }
    if (single && !nset) rounds = 1;
    if (jobs < 1) jobs = 1;
    if (jobs > 16 && !jset) jobs = 16; /* the rounds mostly sleep: more than the CPUs */
    if (jobs > 64) jobs = 64;
    /* kill points only where a round puts them */
    unsetenv("IPC_KILL_ONE_IN");
    unsetenv("IPC_KILL_AT");
    unsetenv("IPC_KILL_SEED");
    unsetenv("IPC_KILL_LOG");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    jb = (job *)calloc((size_t)jobs, sizeof *jb);
    res = (result *)mmap(NULL, (size_t)jobs * sizeof(result), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (!jb || res == MAP_FAILED) return 2;
    for (k = 0; k < jobs; k++)
        jb[k].pid = 0, jb[k].res = &res[k];
    printf("crashtest: %ld rounds, %d jobs, master seed %#llx\n", rounds, jobs,
           (unsigned long long)master);
    t_start = now_ns();
    while (done < rounds) {
        int64_t now;
        struct timespec ts;
        pid_t pid;
        int st;
        for (k = 0; k < jobs && next < rounds; k++) {
            uint64_t seed;
            cfg c;
            int att = 0;
            if (jb[k].pid) continue;
            do { /* a seed whose kind and mode pass the filters */
                seed = single ? one_seed : mix64(master ^ (uint64_t)(next * 1024 + att));
                make_cfg(seed, &c);
                att++;
            } while (!single && att < 100000 &&
                     (!has_name(kinds, kind_name[c.kind]) || !has_name(modes, mode_name[c.mode])));
            jb[k].idx = next++;
            jb[k].seed = seed;
            jb[k].t0 = now_ns();
            jb[k].res->semid = -1;
            jb[k].out = (int)syscall(SYS_memfd_create, "crashtest round", 1u /* MFD_CLOEXEC */);
            fflush(stdout);
            pid = fork();
            if (pid == 0) {
                setpgid(0, 0);
                dup2(jb[k].out, 1);
                dup2(jb[k].out, 2);
                _exit(run_round(seed, jb[k].res, tmpdir, timeout));
            }
            setpgid(pid, pid);
            jb[k].pid = pid;
        }
        ts.tv_sec = 0;
        ts.tv_nsec = 20 * 1000000;
        sigtimedwait(&chld, NULL, &ts);
        now = now_ns();
        for (k = 0; k < jobs; k++)
            if (jb[k].pid && now - jb[k].t0 > 12 * timeout) { /* the round's own check failed */
                kill(-jb[k].pid, SIGKILL);
                jb[k].res->hang = 1;
            }
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            char out[8192];
            ssize_t n;
            result *r;
            cfg c;
            int bad;
            for (k = 0; k < jobs && jb[k].pid != pid; k++) {
            }
            if (k == jobs) continue;
            r = jb[k].res;
            kill(-pid, SIGKILL); /* anything the round left behind */
            if (r->semid >= 0) ipc_semset_remove(r->semid);
            make_cfg(jb[k].seed, &c);
            bad = !WIFEXITED(st) || WEXITSTATUS(st) != 0 || r->viol || r->hang;
            describe(&c, desc, sizeof desc);
            if (!opt_quiet || bad || single)
                printf("round %ld seed %#018llx %s procs %d deaths %d (ext %d kp %d self %d) "
                       "msgs %ld lost %ld %lld ms %s\n",
                       jb[k].idx, (unsigned long long)jb[k].seed, desc, r->procs, r->deaths, r->ext,
                       r->kp, r->self, r->msgs, r->lost, (long long)((now_ns() - jb[k].t0) / MS),
                       !bad              ? "ok"
                       : r->hang         ? "FAIL (hang)"
                       : WIFSIGNALED(st) ? "FAIL (supervisor killed)"
                                         : "FAIL");
            if (bad || opt_verbose || single) {
                lseek(jb[k].out, 0, SEEK_SET);
                while ((n = read(jb[k].out, out, sizeof out)) > 0)
                    fwrite(out, 1, (size_t)n, stdout);
            }
            close(jb[k].out);
            if (bad) {
                viol_rounds++;
                hangs += r->hang;
                if (nfail < 32) fail_seeds[nfail++] = jb[k].seed;
            }
            per[c.kind][c.mode]++;
            deaths[0] += r->ext;
            deaths[1] += r->kp;
            deaths[2] += r->self;
            msgs += r->msgs;
            lost += r->lost;
            stale += r->stale;
            late += r->late;
            if (r->lat_max > lat_max) lat_max = r->lat_max;
            for (i = 0; i < r->nkp; i++) {
                for (m = 0; m < nkpn && strcmp(kpn[m], r->kpn[i]) != 0; m++) {
                }
                if (m == nkpn && m < 64) {
                    memcpy(kpn[m], r->kpn[i], sizeof kpn[m]);
                    kpc[nkpn++] = 0;
                }
                if (m < 64) kpc[m] += r->kpc[i];
            }
            jb[k].pid = 0;
            done++;
        }
    }
    rmdir(tmpdir);
    printf("== crashtest: %ld rounds in %.1f s (master seed %#llx, %d jobs)\n", done,
           (double)(now_ns() - t_start) / 1e9, (unsigned long long)master, jobs);
    if (single && rounds == 1) return viol_rounds ? 1 : 0;
    printf("%-10s", "kind");
    for (m = 0; m < NMODE; m++)
        printf(" %9s", mode_name[m]);
    printf("\n");
    for (k = 0; k < NKIND; k++) {
        printf("%-10s", kind_name[k]);
        for (m = 0; m < NMODE; m++)
            printf(" %9ld", per[k][m]);
        printf("\n");
    }
    for (k = 0, i = 0; k < NKIND; k++)
        for (m = 1; m < NMODE; m++)
            i += per[k][m];
    printf("kill rounds (all but none): %ld; deaths: %ld external, %ld at kill points, %ld self\n",
           i, deaths[0], deaths[1], deaths[2]);
    printf("checked: %ld messages delivered or critical sections run; %ld counted lost by "
           "ipc.h (holes, taken by the dead, overwritten); %ld -EBUSY pid-file reads naming an "
           "earlier holder\n",
           msgs, lost, stale);
    printf("slowest -EPIPE after the peer was gone: %.3f s; over 1 s: %d rounds\n",
           (double)lat_max / 1e9, late);
    if (nkpn) {
        printf("kill points that fired:");
        for (m = 0; m < nkpn; m++)
            printf(" %s %ld", kpn[m], kpc[m]);
        printf("\n");
    }
    printf("%d rounds with violations (%d hangs)\n", viol_rounds, hangs);
    for (i = 0; i < nfail; i++)
        printf("  replay: %s --seed %#018llx\n", argv[0], (unsigned long long)fail_seeds[i]);
    return viol_rounds ? 1 : 0;
}
