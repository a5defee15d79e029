/* tests/test_ringbc.c - section 6: broadcast rings (IPC_RING_BROADCAST), one producer and
   up to 128 readers that each receive every message, lossless or with IPC_RING_OVERWRITE.

   Every message names itself: its first 8 bytes are its sequence number, its length is a
   function of that number, the bytes after follow a pattern of it and the last 4 bytes are
   a checksum over all the others. A reader can so tell a lost, repeated, reordered, torn or
   damaged message from the right one without knowing which one should come. Readers and
   producers are real processes (th_spawn); what they find goes back to the parent through
   a MAP_SHARED struct (bc_sh). */
#include "harness.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define MS      ((int64_t)1000000)
#define JOIN_MS 8000
#define BC_MAXR 16   /* reader processes a test may have */
#define BC_BUF  4096 /* the largest message the tests use */

/* Offsets in the shared layout (see the layout table in ipc.h). */
#define OFF_FLAGS 24
#define OFF_TAIL  128
#define OFF_HEAD  256
#define OFF_PROD  384 /* state, waiting, futex, claims */
#define OFF_CONS  512
#define OFF_REG   4096 /* 128 entries of 64 bytes: ppos, cpos, role */

/* ---- helpers ---- */

static uint32_t fnv32(const unsigned char *p, size_t n) {
    uint32_t h = 2166136261u;
    size_t i;
    for (i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Length of message seq in a ring whose messages go up to max bytes (12 at least). */
static size_t bc_len(uint64_t seq, size_t max) {
    return 12 + (size_t)(th_mix64(seq ^ 0x6c656e) % (max - 11));
}

static unsigned char bc_byte(uint64_t seq, size_t i) {
    return (unsigned char)(th_mix64(seq) + i * 131u + (i >> 8));
}

static void bc_fill(void *p, size_t len, uint64_t seq) {
    unsigned char *b = (unsigned char *)p;
    uint32_t sum;
    size_t i;
    memcpy(b, &seq, 8);
    for (i = 8; i < len - 4; i++)
        b[i] = bc_byte(seq, i);
    sum = fnv32(b, len - 4);
    memcpy(b + len - 4, &sum, 4);
}

/* 1 if p holds an intact message (n bytes) of a ring with messages up to max bytes; its
   sequence number in *seq. */
static int bc_intact(const void *p, ssize_t n, size_t max, uint64_t *seq) {
    const unsigned char *b = (const unsigned char *)p;
    uint32_t sum;
    size_t i;
    if (n < 12 || (size_t)n > max) return 0;
    memcpy(seq, b, 8);
    if (bc_len(*seq, max) != (size_t)n) return 0;
    for (i = 8; i < (size_t)n - 4; i++)
        if (b[i] != bc_byte(*seq, i)) return 0;
    memcpy(&sum, b + n - 4, 4);
    return sum == fnv32(b, (size_t)n - 4);
}

/* Fail unless buf holds message want intact. */
static void bc_expect(const char *what, const void *buf, ssize_t n, size_t max, uint64_t want) {
    uint64_t seq = ~(uint64_t)0;
    if (n < 0)
        th_fail(__FILE__, __LINE__, "%s: message %llu: got %lld (%s)", what,
                (unsigned long long)want, (long long)n, ipc_strerror((int)n));
    if (!bc_intact(buf, n, max, &seq) || seq != want) {
        uint64_t said = 0;
        if (n >= 8) memcpy(&said, buf, 8);
        th_fail(__FILE__, __LINE__,
                "%s: want message %llu (%zu bytes), got %lld bytes %s (it says %llu)", what,
                (unsigned long long)want, bc_len(want, max), (long long)n,
                bc_intact(buf, n, max, &seq) ? "intact" : "damaged", (unsigned long long)said);
    }
}

static int bc_send(ipc_ring *p, uint64_t seq, size_t max, int64_t timeout) {
    unsigned char buf[BC_BUF];
    size_t len = bc_len(seq, max);
    bc_fill(buf, len, seq);
    return ipc_ring_send(p, buf, len, timeout);
}

static void bc_recv(ipc_ring *c, uint64_t want, size_t max, int64_t timeout) {
    unsigned char buf[BC_BUF];
    ssize_t n = ipc_ring_recv(c, buf, sizeof buf, timeout);
    bc_expect("recv", buf, n, max, want);
}

/* Options of a broadcast ring with slots of `slot` bytes (a power of two, so messages up
   to slot - 16) and `cap` bytes in all. */
static ipc_ring_opts bc_opts(size_t slot, size_t cap, unsigned extra) {
    ipc_ring_opts o;
    memset(&o, 0, sizeof o);
    o.capacity = cap;
    o.flags = IPC_RING_BROADCAST | IPC_RING_MSG(slot - 16) | extra;
    return o;
}

/* What a reader process found. */
typedef struct bc_res {
    uint64_t got;   /* messages received intact */
    uint64_t first; /* sequence numbers of the first and the last */
    uint64_t last;
    uint64_t lost;      /* stats.lost at the end */
    uint64_t overflows; /* -EOVERFLOW seen */
    uint64_t bad;       /* -EBADMSG seen */
    uint64_t pipes;     /* -EPIPE seen */
    uint64_t timeouts;  /* -EAGAIN / -ETIMEDOUT seen */
    uint64_t sleeps;    /* stats.sleeps at the end */
} bc_res;

/* Shared by the parent and its children (MAP_SHARED, made before fork). */
typedef struct bc_sh {
    int flag[16];
    int ready;      /* readers attached */
    int64_t t[8];   /* CLOCK_MONOTONIC times handed over */
    uint64_t sent;  /* the producer's messages committed so far */
    uint64_t total; /* the producer's count at close */
    uint64_t ack[BC_MAXR];
    th_scrib sc; /* the scribbler test's tallies */
    bc_res res[BC_MAXR];
} bc_sh;

static bc_sh *g_sh;
static ipc_ring g_ring;   /* the parent's handle; children attach by its fd or g_name */
static char g_name[300];  /* "" for an anonymous ring */
static size_t g_max;      /* max_msg of the ring */
static uint64_t g_nslots; /* slots of the ring */
static uint64_t g_n;      /* messages the test sends */
static int g_fd = -1;     /* the ring's fd, for children to attach by */
static int64_t g_end;     /* when time-bound children stop */

static void sh_map(void) {
    g_sh = (bc_sh *)th_shared_map(sizeof(bc_sh));
}

static void sh_unmap(void) {
    th_shared_unmap(g_sh, sizeof(bc_sh));
}

static void flag_set(int i, int v) {
    __atomic_store_n(&g_sh->flag[i], v, __ATOMIC_RELEASE);
}

static int flag_get(int i) {
    return __atomic_load_n(&g_sh->flag[i], __ATOMIC_ACQUIRE);
}

/* Wait (bounded) until flag i reaches v. */
static void flag_wait(int i, int v, int ms) {
    char what[16];
    snprintf(what, sizeof what, "flag %d", i);
    th_int_wait(&g_sh->flag[i], v, ms, what);
}

static void ready_wait(int n, int ms) {
    th_int_wait(&g_sh->ready, n, ms, "readers attached");
}

static void ready_add(void) {
    __atomic_fetch_add(&g_sh->ready, 1, __ATOMIC_RELEASE);
}

static uint64_t sent_get(void) {
    return __atomic_load_n(&g_sh->sent, __ATOMIC_ACQUIRE);
}

static void sent_set(uint64_t v) {
    __atomic_store_n(&g_sh->sent, v, __ATOMIC_RELEASE);
}

/* Slots in a broadcast ring: the capacity as ipc_ring_create rounds it, over the slot. */
static uint64_t bc_nslots(const ipc_ring_opts *o, size_t slot) {
    uint64_t cap = (uint64_t)sysconf(_SC_PAGESIZE);
    while (cap < o->capacity)
        cap <<= 1;
    return cap / slot;
}

/* The parent makes the ring (named or anonymous) and takes role in it; children attach
   with bc_attach. */
static void ring_setup(const ipc_ring_opts *o, size_t slot, int named, int role) {
    if (named)
        th_name(g_name, sizeof g_name, "bc");
    else
        g_name[0] = 0;
    CHECK_OK(ipc_ring_create(&g_ring, named ? g_name : NULL, role, o));
    g_fd = ipc_ring_fd(&g_ring);
    g_max = ipc_ring_max_msg(&g_ring);
    CHECK_EQ(g_max, slot - 16);
    g_nslots = bc_nslots(o, slot);
}

static void ring_teardown(void) {
    if (g_ring.base) CHECK_OK(ipc_ring_close(&g_ring));
    if (g_name[0]) CHECK_OK(ipc_ring_unlink(g_name));
}

/* Attach to the parent's ring: by name, or by the fd inherited with the parent's handle. */
static int bc_attach(ipc_ring *r, int role) {
    if (g_name[0]) return ipc_ring_open(r, g_name, role);
    return ipc_ring_attach_fd(r, g_fd, role);
}

/* A child's verdict, or a failure naming who. */
static void join_ok(pid_t pid, const char *who, int ms) {
    int rc = th_join(pid, ms);
    if (rc != 0) th_fail(__FILE__, __LINE__, "%s: exit %d (-1: timed out)", who, rc);
}

static void check_quick(int64_t t0, const char *what) {
    int64_t el = ipc_time_now() - t0;
    if (el > 1000 * MS) th_fail(__FILE__, __LINE__, "%s took %.1f ms", what, th_ms_of(el));
}

/* ---- 1. lossless: every reader gets the full stream, in order ---- */

/* A reader attached before the first message: reads (recv and peek/release, blocking or
   not) until -EPIPE, and checks every message in turn. While it holds message i peeked,
   the producer cannot have committed i + slots: it waits for the slowest reader. */
static void stream_reader(void *arg) {
    int id = (int)(intptr_t)arg;
    unsigned char buf[BC_BUF];
    uint64_t rs = 100 + (uint64_t)id, want = 0;
    ipc_ring_stats st;
    ipc_ring c;
    int64_t t0;
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    CHECK_EQ(ipc_ring_max_msg(&c), g_max);
    ready_add();
    for (;;) {
        unsigned k = (unsigned)(th_rnd64(&rs) % 8);
        const void *m;
        ssize_t n;
        if (k < 3) {
            n = ipc_ring_recv(&c, buf, sizeof buf, IPC_FOREVER);
        } else if (k == 3) {
            n = ipc_ring_recv(&c, buf, sizeof buf, 0);
            if (n == -EAGAIN) continue;
        } else if (k == 4) {
            n = ipc_ring_recv(&c, buf, sizeof buf, 1 * MS);
            if (n == -ETIMEDOUT) continue;
        } else {
            n = ipc_ring_peek(&c, &m, k == 5 ? 0 : IPC_FOREVER);
            if (n == -EAGAIN && k == 5) continue;
            if (n > 0) {
                uint64_t sent = sent_get();
                bc_expect("peek", m, n, g_max, want);
                if (sent > want + g_nslots)
                    th_fail(__FILE__, __LINE__,
                            "reader %d holds message %llu peeked, yet the producer committed "
                            "%llu (%llu slots)",
                            id, (unsigned long long)want, (unsigned long long)sent,
                            (unsigned long long)g_nslots);
                memcpy(buf, m, (size_t)n);
                CHECK_ERR(ipc_ring_release(&c), 0);
            }
        }
        if (n == -EPIPE) break;
        bc_expect("reader", buf, n, g_max, want);
        want++;
        if (id == 0 && th_rnd64(&rs) % 256 == 0) th_sleep_ms(1); /* the slowest reader */
    }
    CHECK_EQ(want, g_n);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EPIPE);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, IPC_FOREVER), -EPIPE);
    {
        const void *m;
        CHECK_ERR(ipc_ring_peek(&c, &m, IPC_FOREVER), -EPIPE);
    }
    check_quick(t0, "-EPIPE calls");
    CHECK_OK(ipc_ring_get_stats(&c, &st));
    CHECK_EQ(st.lost, 0);
    g_sh->res[id].got = want;
    g_sh->res[id].sleeps = st.sleeps;
    CHECK_OK(ipc_ring_close(&c));
}

/* The producer's side of the stream: every API, blocking or not, shrunk commits and
   cancelled reservations (whose bytes say a message number no reader may see). */
static void stream_produce(ipc_ring *p, uint64_t n, uint64_t seed) {
    uint64_t rs = seed, i = 0;
    while (i < n) {
        unsigned k = (unsigned)(th_rnd64(&rs) % 16);
        size_t len = bc_len(i, g_max);
        void *m;
        int rc;
        if (k < 6) {
            rc = bc_send(p, i, g_max, IPC_FOREVER);
        } else if (k == 6) {
            if ((rc = bc_send(p, i, g_max, 0)) == -EAGAIN) continue;
        } else if (k == 7) {
            if ((rc = bc_send(p, i, g_max, 1 * MS)) == -ETIMEDOUT) continue;
        } else if (k < 13) {
            if ((rc = ipc_ring_reserve(p, len, &m, k == 12 ? 0 : IPC_FOREVER)) == -EAGAIN) continue;
            CHECK_ERR(rc, 0);
            bc_fill(m, len, i);
            rc = ipc_ring_commit(p, len);
        } else if (k < 15) { /* reserve the most, commit less */
            CHECK_ERR(ipc_ring_reserve(p, g_max, &m, IPC_FOREVER), 0);
            bc_fill(m, len, i);
            rc = ipc_ring_commit(p, len);
        } else { /* cancelled: nobody may see it */
            size_t l2 = bc_len(i + 1000000, g_max);
            CHECK_ERR(ipc_ring_reserve(p, l2, &m, IPC_FOREVER), 0);
            bc_fill(m, l2, i + 1000000);
            CHECK_ERR(ipc_ring_commit(p, 0), 0);
            continue;
        }
        if (rc != 0)
            th_fail(__FILE__, __LINE__, "producer: message %llu: %d (%s)", (unsigned long long)i,
                    rc, ipc_strerror(rc));
        sent_set(++i);
    }
}

static void lossless_stream(int readers, size_t slot, size_t cap, int named, uint64_t n) {
    ipc_ring_opts o = bc_opts(slot, cap, 0);
    pid_t pid[BC_MAXR];
    int i;
    sh_map();
    g_n = n;
    ring_setup(&o, slot, named, IPC_PRODUCER);
    for (i = 0; i < readers; i++)
        pid[i] = th_spawn(stream_reader, (void *)(intptr_t)i);
    ready_wait(readers, 5000);
    stream_produce(&g_ring, g_n, 7);
    CHECK_OK(ipc_ring_close(&g_ring));
    for (i = 0; i < readers; i++) {
        join_ok(pid[i], "reader", 20000);
        CHECK_EQ(g_sh->res[i].got, g_n);
    }
    ring_teardown();
    sh_unmap();
}

TEST_T(ringbc_lossless_1_reader_anonymous, 30000) {
    lossless_stream(1, 512, 4096, 0, TH_SLOW ? 600 : 5000); /* 8 slots */
}

TEST_T(ringbc_lossless_3_readers_named, 30000) {
    lossless_stream(3, 1024, 4096, 1, TH_SLOW ? 600 : 5000); /* 4 slots */
}

TEST_T(ringbc_lossless_8_readers_anonymous, 30000) {
    lossless_stream(8, 256, 4096, 0, TH_SLOW ? 600 : 5000); /* 16 slots */
}

TEST_T(ringbc_lossless_8_readers_named_two_slots, 30000) {
    lossless_stream(8, 2048, 4096, 1, TH_SLOW ? 400 : 2000); /* the fewest slots there can be */
}

/* ---- 2. readers that join and leave while the producer streams ---- */

/* Rounds of: sleep a little, attach, read. All rounds but the last leave (close, perhaps
   with a message peeked) after a few messages; the last reads until -EPIPE. What a round
   sees is a contiguous run of the stream that starts at or after the count committed
   before it attached, and at most one past the count after (the producer counts after
   each send returns), and the last round's run goes on to the end. Lossless: never
   -EOVERFLOW. */
static void joining_reader(void *arg) {
    int id = (int)(intptr_t)arg, r, rounds;
    unsigned char buf[BC_BUF];
    uint64_t rs = 500 + (uint64_t)id;
    rounds = 2 + (int)(th_rnd64(&rs) % 4);
    for (r = 0; r < rounds; r++) {
        int last = r == rounds - 1;
        uint64_t c0, c1, want = 0, got = 0, stop = 1 + th_rnd64(&rs) % 200;
        ipc_ring c;
        th_sleep_ms((int)(th_rnd64(&rs) % 30));
        c0 = sent_get();
        CHECK_OK(bc_attach(&c, IPC_CONSUMER));
        c1 = sent_get();
        for (;;) {
            uint64_t seq;
            const void *m;
            ssize_t n;
            if (th_rnd64(&rs) % 2) {
                n = ipc_ring_recv(&c, buf, sizeof buf, IPC_FOREVER);
            } else if ((n = ipc_ring_peek(&c, &m, IPC_FOREVER)) > 0) {
                memcpy(buf, m, (size_t)n);
                if (!last && got + 1 == stop && th_rnd64(&rs) % 2) break; /* leave holding it */
                CHECK_ERR(ipc_ring_release(&c), 0);
            }
            if (n == -EPIPE) break;
            if (n == -EOVERFLOW)
                th_fail(__FILE__, __LINE__,
                        "reader %d round %d (attached while %llu..%llu were committed): "
                        "-EOVERFLOW after %llu messages in a lossless ring",
                        id, r, (unsigned long long)c0, (unsigned long long)c1,
                        (unsigned long long)got);
            if (!bc_intact(buf, n, g_max, &seq)) bc_expect("joiner", buf, n, g_max, want);
            if (got == 0) {
                if (seq < c0 || seq > c1 + 1)
                    th_fail(__FILE__, __LINE__,
                            "reader %d round %d: first message %llu, but %llu were committed "
                            "before it attached and %llu after",
                            id, r, (unsigned long long)seq, (unsigned long long)c0,
                            (unsigned long long)c1);
                want = seq;
            }
            bc_expect("joiner", buf, n, g_max, want);
            want++;
            if (++got == stop && !last) break;
        }
        if (last) {
            uint64_t total = __atomic_load_n(&g_sh->total, __ATOMIC_ACQUIRE);
            if (got)
                CHECK_EQ(want, total);
            else
                CHECK(c1 + 1 >= total); /* it came after the end: nothing was due */
            g_sh->res[id].got += got;
        }
        CHECK_OK(ipc_ring_close(&c));
    }
}

static void joiners(int named) {
    ipc_ring_opts o = bc_opts(512, 4096, 0); /* 8 slots */
    int64_t t0, end, worst = 0;
    uint64_t i = 0;
    pid_t pid[4];
    int k;
    sh_map();
    ring_setup(&o, 512, named, IPC_PRODUCER);
    for (k = 0; k < 4; k++)
        pid[k] = th_spawn(joining_reader, (void *)(intptr_t)k);
    t0 = ipc_time_now();
    end = t0 + 250 * MS;
    while (ipc_time_now() < end) {
        int64_t s = ipc_time_now();
        CHECK_ERR(bc_send(&g_ring, i, g_max, IPC_FOREVER), 0);
        if (ipc_time_now() - s > worst) worst = ipc_time_now() - s;
        sent_set(++i);
        if (i % 32 == 0) th_sleep_ms(1);
    }
    __atomic_store_n(&g_sh->total, i, __ATOMIC_RELEASE);
    CHECK_OK(ipc_ring_close(&g_ring));
    /* readers that came and went (closing, perhaps holding a peek) never held it up */
    if (worst > 500 * MS)
        th_fail(__FILE__, __LINE__, "a send took %.1f ms with readers coming and going",
                th_ms_of(worst));
    for (k = 0; k < 4; k++)
        join_ok(pid[k], "joining reader", JOIN_MS);
    ring_teardown();
    sh_unmap();
}

TEST_T(ringbc_readers_join_and_leave_mid_stream_anonymous, 15000) {
    joiners(0);
}

TEST_T(ringbc_readers_join_and_leave_mid_stream_named, 15000) {
    joiners(1);
}

/* The producer streams flat out, with nobody to wait for between rounds. */
static void flat_out_producer(void *arg) {
    uint64_t i = 0;
    ipc_ring p;
    (void)arg;
    CHECK_OK(bc_attach(&p, IPC_PRODUCER));
    flag_set(0, 1);
    while (!flag_get(1)) {
        CHECK_ERR(bc_send(&p, i, g_max, 100 * MS), 0);
        sent_set(++i);
    }
    CHECK_OK(ipc_ring_close(&p));
}

/* A reader that attaches while the producer runs free (no other reader) must not be
   lapped before its entry counts: in a lossless ring it gets the messages from where it
   attached on, never -EOVERFLOW. Many short rounds, two slots. */
TEST_T(ringbc_join_while_producer_runs_free_no_overflow, 15000) {
    ipc_ring_opts o = bc_opts(2048, 4096, 0);
    int rounds = TH_SLOW ? 100 : 400, r, overflows = 0, first_bad = -1;
    unsigned char buf[BC_BUF];
    pid_t pid;
    sh_map();
    ring_setup(&o, 2048, 0, IPC_CONSUMER);
    g_fd = fcntl(g_fd, F_DUPFD_CLOEXEC, 0); /* the ring outlives the parent's handle */
    CHECK(g_fd >= 0);
    CHECK_OK(ipc_ring_close(&g_ring)); /* no reader: the producer waits for nobody */
    pid = th_spawn(flat_out_producer, NULL);
    flag_wait(0, 1, 3000);
    for (r = 0; r < rounds; r++) {
        uint64_t c0 = sent_get(), c1, seq = 0, j;
        ipc_ring c;
        ssize_t n;
        CHECK_OK(bc_attach(&c, IPC_CONSUMER));
        c1 = sent_get();
        for (j = 0; j < 3; j++) {
            n = ipc_ring_recv(&c, buf, sizeof buf, 2000 * MS);
            if (n == -EOVERFLOW) {
                overflows++;
                if (first_bad < 0) first_bad = r;
                break;
            }
            if (j == 0) {
                CHECK(bc_intact(buf, n, g_max, &seq));
                CHECK(seq >= c0 && seq <= c1 + 1); /* from where it attached */
            }
            bc_expect("joined reader", buf, n, g_max, seq + j);
        }
        CHECK_OK(ipc_ring_close(&c));
    }
    flag_set(1, 1);
    join_ok(pid, "producer", JOIN_MS);
    if (overflows)
        th_fail(__FILE__, __LINE__,
                "%d of %d readers that attached to a lossless ring got -EOVERFLOW (first in "
                "round %d): lapped between reading the tail and publishing their position",
                overflows, rounds, first_bad);
    close(g_fd);
    g_fd = -1;
    sh_unmap();
}

/* ---- 3. a dead reader is dropped; a live one that stops holds the producer ---- */

#define STOP_AT 20 /* messages the stopping readers read first */

/* id 0 reads everything. id 1 reads STOP_AT messages, says so (flag 1), waits for flag 2,
   then reads the rest. id 2 reads STOP_AT (flag 3), peeks the next and sits on it
   (flag 4) until it is killed. Readers 0 and 1 check the whole stream. */
static void holding_reader(void *arg) {
    int id = (int)(intptr_t)arg;
    unsigned char buf[BC_BUF];
    uint64_t i = 0;
    ipc_ring c;
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    ready_add();
    for (;;) {
        ssize_t n;
        if (id > 0 && i == STOP_AT) {
            if (id == 2) {
                const void *m;
                flag_set(3, 1);
                n = ipc_ring_peek(&c, &m, IPC_FOREVER);
                bc_expect("peek", m, n, g_max, i);
                flag_set(4, 1);
                th_sleep_ms(30000);
            }
            flag_set(1, 1);
            flag_wait(2, 1, 10000);
        }
        n = ipc_ring_recv(&c, buf, sizeof buf, IPC_FOREVER);
        if (n == -EPIPE) break;
        bc_expect("reader", buf, n, g_max, i);
        i++;
    }
    CHECK_EQ(i, g_n);
    g_sh->res[id].got = i;
    CHECK_OK(ipc_ring_close(&c));
}

/* Wait 50 ms, note the time and SIGKILL reader 2. */
static void killer(void *arg) {
    pid_t victim = *(pid_t *)arg;
    th_sleep_ms(50);
    __atomic_store_n(&g_sh->t[0], ipc_time_now(), __ATOMIC_RELEASE);
    kill(victim, SIGKILL);
}

static void dead_reader_dropped(int named) {
    ipc_ring_opts o = bc_opts(1024, 4096, 0); /* 4 slots */
    int64_t t0, tk, t1;
    pid_t pid[3], kp;
    uint64_t i;
    int k, rc;
    sh_map();
    g_n = 200;
    ring_setup(&o, 1024, named, IPC_PRODUCER);
    CHECK_EQ(g_nslots, 4);
    for (k = 0; k < 3; k++)
        pid[k] = th_spawn(holding_reader, (void *)(intptr_t)k);
    ready_wait(3, 5000);
    for (i = 0; i < STOP_AT; i++)
        CHECK_ERR(bc_send(&g_ring, i, g_max, IPC_FOREVER), 0);
    flag_wait(1, 1, 5000);
    flag_wait(3, 1, 5000);
    /* readers 1 and 2 stay at STOP_AT: room for one lap, then nothing */
    for (; i < STOP_AT + g_nslots; i++) /* reader 0 may lag: wait for it */
        CHECK_ERR(bc_send(&g_ring, i, g_max, 5000 * MS), 0);
    t0 = ipc_time_now();
    CHECK_ERR(bc_send(&g_ring, i, g_max, 0), -EAGAIN);
    check_quick(t0, "send(timeout 0) on a full ring");
    CHECK_TIMED(bc_send(&g_ring, i, g_max, 50 * MS), -ETIMEDOUT, 50);
    /* reader 1 goes on; reader 2 is alive and still holds the producer */
    flag_wait(4, 1, 5000);
    flag_set(2, 1);
    CHECK_TIMED(bc_send(&g_ring, i, g_max, 50 * MS), -ETIMEDOUT, 50);
    /* killed while the producer sleeps in send: it goes on within a second */
    kp = th_spawn(killer, &pid[2]);
    rc = bc_send(&g_ring, i, g_max, 5000 * MS);
    t1 = ipc_time_now();
    tk = __atomic_load_n(&g_sh->t[0], __ATOMIC_ACQUIRE);
    CHECK_ERR(rc, 0);
    if (tk == 0 || t1 < tk)
        th_fail(__FILE__, __LINE__, "send went through before the reader that held it was killed");
    if (t1 - tk >= 1000 * MS)
        th_fail(__FILE__, __LINE__, "send returned %.1f ms after the reader was killed",
                th_ms_of(t1 - tk));
    join_ok(kp, "killer", JOIN_MS);
    CHECK_EQ(th_join(pid[2], JOIN_MS), 128 + SIGKILL);
    for (i++; i < g_n; i++)
        CHECK_ERR(bc_send(&g_ring, i, g_max, 5000 * MS), 0);
    CHECK_OK(ipc_ring_close(&g_ring));
    for (k = 0; k < 2; k++) {
        join_ok(pid[k], "reader", JOIN_MS);
        CHECK_EQ(g_sh->res[k].got, g_n);
    }
    ring_teardown();
    sh_unmap();
}

TEST(ringbc_dead_reader_dropped_live_one_waited_for_anonymous) {
    dead_reader_dropped(0);
}

TEST(ringbc_dead_reader_dropped_live_one_waited_for_named) {
    dead_reader_dropped(1);
}

/* A reader that is killed at once when the producer is not waiting: the next time the
   producer wraps around to it, it must not wait either (no sleep, no timeout). */
TEST(ringbc_dead_reader_never_waited_for) {
    ipc_ring_opts o = bc_opts(1024, 4096, 0);
    ipc_ring c;
    ipc_ring_stats st;
    pid_t pid;
    uint64_t i;
    sh_map();
    g_n = 0;
    ring_setup(&o, 1024, 0, IPC_PRODUCER);
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    pid = th_spawn(holding_reader, (void *)(intptr_t)2); /* sits at STOP_AT */
    ready_wait(1, 5000);
    for (i = 0; i < STOP_AT + g_nslots; i++) {
        CHECK_ERR(bc_send(&g_ring, i, g_max, 5000 * MS), 0);
        bc_recv(&c, i, g_max, 0);
    }
    flag_wait(4, 1, 5000);
    CHECK_ERR(bc_send(&g_ring, i, g_max, 0), -EAGAIN); /* it holds the producer */
    kill(pid, SIGKILL);
    CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
    /* the lock is free the moment it is reaped: timeout 0 suffices */
    CHECK_OK(ipc_ring_get_stats(&g_ring, &st));
    for (; i < STOP_AT + 10 * g_nslots; i++) {
        CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
        bc_recv(&c, i, g_max, 0);
    }
    {
        ipc_ring_stats st2;
        CHECK_OK(ipc_ring_get_stats(&g_ring, &st2));
        CHECK_EQ(st2.sleeps, st.sleeps);
    }
    CHECK_OK(ipc_ring_close(&c));
    ring_teardown();
    sh_unmap();
}

/* Readers killed at random moments while the producer streams (in a child): the producer
   ends, and the readers that stay get every message. The dead leave their registry
   entries, which new readers take again. */
static void stream_producer_child(void *arg) {
    ipc_ring p;
    (void)arg;
    CHECK_OK(bc_attach(&p, IPC_PRODUCER));
    stream_produce(&p, g_n, 99);
    CHECK_OK(ipc_ring_close(&p));
}

static void victim_reader(void *arg) {
    unsigned char buf[BC_BUF];
    ipc_ring c;
    (void)arg;
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    for (;;) {
        ssize_t n = ipc_ring_recv(&c, buf, sizeof buf, IPC_FOREVER);
        uint64_t seq;
        if (n == -EPIPE) break;
        CHECK(bc_intact(buf, n, g_max, &seq));
        if (seq % 7 == 0) th_sleep_ms(1); /* slow: the producer often waits for it */
    }
    th_sleep_ms(30000); /* to be killed */
}

TEST_T(ringbc_readers_killed_at_random_moments, 20000) {
    ipc_ring_opts o = bc_opts(512, 4096, 0);
    int rounds = TH_SLOW ? 10 : 30, r, k;
    uint64_t rs = 4242;
    pid_t pid[3], pp;
    sh_map();
    g_n = TH_SLOW ? 1000 : 4000;
    ring_setup(&o, 512, 1, IPC_CONSUMER); /* the parent reads too (reader 2) */
    for (k = 0; k < 2; k++)
        pid[k] = th_spawn(stream_reader, (void *)(intptr_t)(k + 1));
    ready_wait(2, 5000);
    pp = th_spawn(stream_producer_child, NULL);
    for (r = 0; r < rounds; r++) {
        pid_t v = th_spawn(victim_reader, NULL);
        unsigned char buf[BC_BUF];
        int j;
        for (j = 0; j < (int)(th_rnd64(&rs) % 40); j++) { /* the parent reads meanwhile */
            ssize_t n = ipc_ring_recv(&g_ring, buf, sizeof buf, 0);
            if (n == -EAGAIN) break;
            CHECK(n > 0 && bc_intact(buf, n, g_max, &g_sh->res[3].last));
            CHECK_EQ(g_sh->res[3].last, g_sh->res[3].got);
            g_sh->res[3].got++;
        }
        th_sleep_ms((int)(th_rnd64(&rs) % 8));
        kill(v, SIGKILL);
        CHECK(th_join(v, JOIN_MS) == 128 + SIGKILL);
    }
    for (;;) {
        unsigned char buf[BC_BUF];
        ssize_t n = ipc_ring_recv(&g_ring, buf, sizeof buf, 5000 * MS);
        if (n == -EPIPE) break;
        bc_expect("parent reader", buf, n, g_max, g_sh->res[3].got);
        g_sh->res[3].got++;
    }
    CHECK_EQ(g_sh->res[3].got, g_n);
    join_ok(pp, "producer", 10000);
    for (k = 0; k < 2; k++) {
        join_ok(pid[k], "reader", 10000);
        CHECK_EQ(g_sh->res[k + 1].got, g_n);
    }
    ring_teardown();
    sh_unmap();
}

/* ---- 4. IPC_RING_OVERWRITE: the producer never waits, lapped readers skip ---- */

/* Read one message by recv or by peek, copy, release: its length, or an error (release's
   -EOVERFLOW included: what was copied is then to be thrown away). nap: sleep between
   peek and release, so that the producer may lap the peeked message. */
static ssize_t bc_get(ipc_ring *c, unsigned char *buf, int peek, int nap, int64_t timeout) {
    const void *m;
    ssize_t n;
    int rc;
    if (!peek) return ipc_ring_recv(c, buf, BC_BUF, timeout);
    if ((n = ipc_ring_peek(c, &m, timeout)) <= 0) return n;
    if (n > BC_BUF) return -EMSGSIZE;
    memcpy(buf, m, (size_t)n);
    if (nap) th_sleep_ms(nap);
    if ((rc = ipc_ring_release(c)) != 0) return rc;
    return n;
}

/* A reader of an overwrite ring, until -EPIPE. Every message it gets is intact and the one
   after the last, unless -EOVERFLOW came in between: then exactly as many later as
   stats.lost grew. id 0 keeps up (the producer paces itself by its acks: never lapped);
   id 1 naps and is lapped. */
static void overwrite_reader(void *arg) {
    int id = (int)(intptr_t)arg;
    unsigned char buf[BC_BUF];
    uint64_t rs = 77 + (uint64_t)id, next = 0, lost = 0, got = 0, overflows = 0;
    ipc_ring_stats st;
    ipc_ring c;
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    ready_add();
    for (;;) {
        int peek = (int)(th_rnd64(&rs) % 2), nap = 0;
        uint64_t seq;
        ssize_t n;
        if (id == 1 && th_rnd64(&rs) % 16 == 0) {
            if (peek)
                nap = 1;
            else
                th_sleep_ms(1);
        }
        n = bc_get(&c, buf, peek, nap, IPC_FOREVER);
        CHECK_OK(ipc_ring_get_stats(&c, &st));
        if (n == -EPIPE) break;
        if (n == -EOVERFLOW) {
            if (id == 0) th_fail(__FILE__, __LINE__, "the reader that keeps up was lapped");
            if (st.lost <= lost)
                th_fail(__FILE__, __LINE__, "-EOVERFLOW, but stats.lost stayed %llu",
                        (unsigned long long)st.lost);
            overflows++;
            continue;
        }
        if (n < 0 || !bc_intact(buf, n, g_max, &seq))
            th_fail(__FILE__, __LINE__, "reader %d: after message %llu: %lld, %s", id,
                    (unsigned long long)next, (long long)n, n < 0 ? ipc_strerror((int)n) : "torn");
        if (seq != next + (st.lost - lost))
            th_fail(__FILE__, __LINE__,
                    "reader %d: got message %llu after %llu, with %llu more lost meanwhile", id,
                    (unsigned long long)seq, (unsigned long long)next,
                    (unsigned long long)(st.lost - lost));
        lost = st.lost;
        next = seq + 1;
        got++;
        if (id == 0) __atomic_store_n(&g_sh->ack[0], next, __ATOMIC_RELEASE);
    }
    CHECK_EQ(lost, st.lost);
    CHECK_EQ(got + lost, g_n);
    CHECK_ERR(ipc_ring_recv(&c, buf, BC_BUF, 0), -EPIPE);
    g_sh->res[id].got = got;
    g_sh->res[id].lost = lost;
    g_sh->res[id].overflows = overflows;
    CHECK_OK(ipc_ring_close(&c));
}

static void overwrite_stream(int named) {
    ipc_ring_opts o = bc_opts(256, 4096, IPC_RING_OVERWRITE); /* 16 slots */
    uint64_t rs = 3, i;
    ipc_ring_stats st;
    pid_t pid[2];
    int k;
    sh_map();
    g_n = TH_SLOW ? 3000 : 30000;
    ring_setup(&o, 256, named, IPC_PRODUCER);
    for (k = 0; k < 2; k++)
        pid[k] = th_spawn(overwrite_reader, (void *)(intptr_t)k);
    ready_wait(2, 5000);
    for (i = 0; i < g_n; i++) {
        size_t len = bc_len(i, g_max);
        int64_t dl = ipc_deadline_make(5000 * MS);
        void *m;
        /* stay within half a lap of reader 0 */
        while (__atomic_load_n(&g_sh->ack[0], __ATOMIC_ACQUIRE) + g_nslots / 2 <= i) {
            if (ipc_deadline_left(dl) == 0)
                th_fail(__FILE__, __LINE__, "reader 0 stuck at %llu",
                        (unsigned long long)g_sh->ack[0]);
            sched_yield();
        }
        if (th_rnd64(&rs) % 2) {
            CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
        } else {
            CHECK_ERR(ipc_ring_reserve(&g_ring, len, &m, 0), 0);
            bc_fill(m, len, i);
            CHECK_ERR(ipc_ring_commit(&g_ring, len), 0);
        }
    }
    CHECK_OK(ipc_ring_get_stats(&g_ring, &st));
    CHECK_EQ(st.sleeps, 0); /* never waited */
    CHECK_OK(ipc_ring_close(&g_ring));
    for (k = 0; k < 2; k++)
        join_ok(pid[k], k ? "slow reader" : "fast reader", 20000);
    CHECK_EQ(g_sh->res[0].got, g_n);
    CHECK_EQ(g_sh->res[0].lost, 0);
    if (g_sh->res[1].overflows == 0 || g_sh->res[1].lost == 0 || g_sh->res[1].got == 0)
        th_fail(__FILE__, __LINE__, "slow reader: %llu received, %llu lost, %llu -EOVERFLOW",
                (unsigned long long)g_sh->res[1].got, (unsigned long long)g_sh->res[1].lost,
                (unsigned long long)g_sh->res[1].overflows);
    ring_teardown();
    sh_unmap();
}

TEST_T(ringbc_overwrite_slow_reader_skips_fast_one_complete_anonymous, 30000) {
    overwrite_stream(0);
}

TEST_T(ringbc_overwrite_slow_reader_skips_fast_one_complete_named, 30000) {
    overwrite_stream(1);
}

/* Two slots of 2 KiB rewritten without pause while two readers read them: whatever recv
   returns, and whatever peek showed when release says 0, is one whole message. */
static void racing_reader(void *arg) {
    int id = (int)(intptr_t)arg;
    unsigned char buf[BC_BUF];
    uint64_t rs = 11 + (uint64_t)id, last = 0, got = 0, over = 0;
    ipc_ring c;
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    ready_add();
    for (;;) {
        uint64_t seq;
        ssize_t n = bc_get(&c, buf, (int)(th_rnd64(&rs) % 2), 0, IPC_FOREVER);
        if (n == -EPIPE) break;
        if (n == -EOVERFLOW) {
            over++;
            continue;
        }
        if (n < 0 || !bc_intact(buf, n, g_max, &seq))
            th_fail(__FILE__, __LINE__, "reader %d: %lld bytes, %s", id, (long long)n,
                    n < 0 ? ipc_strerror((int)n) : "a torn or damaged message");
        if (got && seq <= last)
            th_fail(__FILE__, __LINE__, "message %llu after %llu", (unsigned long long)seq,
                    (unsigned long long)last);
        last = seq;
        got++;
    }
    g_sh->res[id].got = got;
    g_sh->res[id].overflows = over;
    CHECK_OK(ipc_ring_close(&c));
}

TEST_T(ringbc_overwrite_never_returns_a_torn_message, 20000) {
    ipc_ring_opts o = bc_opts(2048, 4096, IPC_RING_OVERWRITE);
    int64_t end;
    uint64_t i = 0;
    pid_t pid[2];
    int k;
    sh_map();
    ring_setup(&o, 2048, 0, IPC_PRODUCER);
    for (k = 0; k < 2; k++)
        pid[k] = th_spawn(racing_reader, (void *)(intptr_t)k);
    ready_wait(2, 5000);
    end = ipc_time_now() + (TH_SLOW ? 400 : 250) * MS;
    while (ipc_time_now() < end)
        for (k = 0; k < 64; k++, i++) /* the largest messages take longest to write */
            CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
    g_n = i;
    CHECK_OK(ipc_ring_close(&g_ring));
    for (k = 0; k < 2; k++) {
        join_ok(pid[k], "reader", JOIN_MS);
        if (g_sh->res[k].got == 0)
            th_fail(__FILE__, __LINE__, "reader %d got nothing of %llu messages", k,
                    (unsigned long long)g_n);
    }
    ring_teardown();
    sh_unmap();
}

/* One process, four slots: a peeked message overwritten before release. release says
   -EOVERFLOW, the peeked message counts as lost with every other skipped one, and the
   reader goes on in order from an older message still in the ring. */
TEST(ringbc_overwrite_peeked_message_lapped_release_eoverflow) {
    ipc_ring_opts o = bc_opts(1024, 4096, IPC_RING_OVERWRITE);
    unsigned char buf[BC_BUF];
    ipc_ring_stats st;
    const void *m;
    ipc_ring c;
    uint64_t i, seq;
    ssize_t n;
    ring_setup(&o, 1024, 0, IPC_PRODUCER);
    CHECK_EQ(g_nslots, 4);
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    for (i = 0; i < 4; i++)
        CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
    n = ipc_ring_peek(&c, &m, 0);
    bc_expect("peek", m, n, g_max, 0);
    CHECK_ERR(bc_send(&g_ring, 4, g_max, 0), 0); /* into the peeked slot */
    CHECK_ERR(ipc_ring_release(&c), -EOVERFLOW);
    CHECK_ERR(ipc_ring_release(&c), -EINVAL); /* nothing is peeked any more */
    CHECK_OK(ipc_ring_get_stats(&c, &st));
    n = ipc_ring_recv(&c, buf, sizeof buf, 0);
    CHECK(bc_intact(buf, n, g_max, &seq));
    /* message 0 is gone, 4 the newest: the reader resumes at 1..4, having lost the rest */
    if (seq < 1 || seq > 4 || st.lost != seq)
        th_fail(__FILE__, __LINE__, "after -EOVERFLOW: message %llu, stats.lost %llu",
                (unsigned long long)seq, (unsigned long long)st.lost);
    for (i = seq + 1; i < 5; i++)
        bc_recv(&c, i, g_max, 0);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
    /* and it goes on: once lapped is once -EOVERFLOW */
    for (i = 5; i < 9; i++)
        CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
    for (i = 5; i < 9; i++)
        bc_recv(&c, i, g_max, 0);
    CHECK_OK(ipc_ring_get_stats(&c, &st));
    CHECK_EQ(st.lost, seq);
    /* lapped by two laps, recv */
    for (i = 9; i < 9 + 9; i++)
        CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EOVERFLOW);
    {
        ipc_ring_stats st2;
        uint64_t s2;
        n = ipc_ring_recv(&c, buf, sizeof buf, 0);
        CHECK(bc_intact(buf, n, g_max, &s2));
        CHECK_OK(ipc_ring_get_stats(&c, &st2));
        CHECK(s2 >= 18 - 4 && s2 < 18);
        CHECK_EQ(st2.lost - st.lost, s2 - 9);
        for (i = s2 + 1; i < 18; i++)
            bc_recv(&c, i, g_max, 0);
    }
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
    CHECK_OK(ipc_ring_close(&c));
    ring_teardown();
}

/* The documented resume point: "goes on from the oldest message still in the ring". With
   the producer idle, the oldest message in a four-slot ring after messages 0..5 is 2 (its
   slot still holds it whole), so a reader lapped at 0 loses 0 and 1 only. Likewise a
   peeked message 0 lapped by message 4: the oldest is 1. */
TEST(ringbc_overwrite_resumes_at_oldest_message) {
    ipc_ring_opts o = bc_opts(1024, 4096, IPC_RING_OVERWRITE);
    unsigned char buf[BC_BUF];
    ipc_ring_stats st;
    const void *m;
    ipc_ring c;
    uint64_t i, seq;
    ssize_t n;
    ring_setup(&o, 1024, 0, IPC_PRODUCER);
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    for (i = 0; i < 6; i++)
        CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EOVERFLOW);
    n = ipc_ring_recv(&c, buf, sizeof buf, 0);
    CHECK(bc_intact(buf, n, g_max, &seq));
    CHECK_OK(ipc_ring_get_stats(&c, &st));
    if (seq != 2 || st.lost != 2)
        th_fail(__FILE__, __LINE__,
                "lapped reader resumed at message %llu (stats.lost %llu); the oldest still in "
                "the ring is 2 (lost 2)",
                (unsigned long long)seq, (unsigned long long)st.lost);
    for (i = seq + 1; i < 6; i++)
        bc_recv(&c, i, g_max, 0);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
    for (i = 6; i < 10; i++)
        CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
    n = ipc_ring_peek(&c, &m, 0);
    bc_expect("peek", m, n, g_max, 6);
    CHECK_ERR(bc_send(&g_ring, 10, g_max, 0), 0);
    CHECK_ERR(ipc_ring_release(&c), -EOVERFLOW);
    n = ipc_ring_recv(&c, buf, sizeof buf, 0);
    CHECK(bc_intact(buf, n, g_max, &seq));
    CHECK_OK(ipc_ring_get_stats(&c, &st));
    if (seq != 7 || st.lost != 3)
        th_fail(__FILE__, __LINE__,
                "reader lapped while peeking 6 resumed at %llu (stats.lost %llu); the oldest "
                "still in the ring is 7 (lost 3 in all)",
                (unsigned long long)seq, (unsigned long long)st.lost);
    CHECK_OK(ipc_ring_close(&c));
    ring_teardown();
}

/* A reservation cancelled (commit 0, or close) in an overwrite ring: its slot held an older
   message that a lapped reader may still read, and the producer has written over it. That
   reader may get -EOVERFLOW, or the old message whole, never the bytes written into the
   cancelled reservation under the old message's header. */
TEST(ringbc_overwrite_cancelled_reservation_never_delivered) {
    int how;
    for (how = 0; how < 2; how++) {
        ipc_ring_opts o = bc_opts(1024, 4096, IPC_RING_OVERWRITE);
        unsigned char buf[BC_BUF];
        ipc_ring c;
        uint64_t i, seq = 0;
        void *m;
        ssize_t n;
        ring_setup(&o, 1024, 0, IPC_PRODUCER);
        CHECK_OK(bc_attach(&c, IPC_CONSUMER));
        for (i = 0; i < 4; i++)
            CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
        /* the slot of message 0, reserved for message 4, written over, then cancelled */
        CHECK_ERR(ipc_ring_reserve(&g_ring, g_max, &m, 0), 0);
        memset(m, 0xee, g_max);
        if (how == 0) CHECK_ERR(ipc_ring_commit(&g_ring, 0), 0);
        CHECK_OK(ipc_ring_close(&g_ring));
        n = ipc_ring_recv(&c, buf, sizeof buf, 0);
        if (n != -EOVERFLOW && !bc_intact(buf, n, g_max, &seq))
            th_fail(__FILE__, __LINE__,
                    "%s: recv returned %lld bytes that are not message 0 (they start %02x %02x "
                    "%02x %02x)",
                    how ? "close with a reservation" : "commit(0)", (long long)n, buf[0], buf[1],
                    buf[2], buf[3]);
        if (n == -EOVERFLOW) {
            n = ipc_ring_recv(&c, buf, sizeof buf, 0);
            CHECK(bc_intact(buf, n, g_max, &seq));
            CHECK(seq >= 1);
        } else {
            CHECK_EQ(seq, 0);
        }
        for (i = seq + 1; i < 4; i++)
            bc_recv(&c, i, g_max, 0);
        CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EPIPE);
        CHECK_OK(ipc_ring_close(&c));
        ring_teardown();
    }
}

/* Lossless: a cancelled reservation (commit 0) and a reservation pending at close are
   never delivered, and the messages around them all are, in order. */
TEST(ringbc_lossless_cancel_and_close_with_reservation) {
    ipc_ring_opts o = bc_opts(1024, 4096, 0);
    unsigned char buf[BC_BUF];
    ipc_ring c;
    uint64_t i;
    void *m;
    ring_setup(&o, 1024, 1, IPC_PRODUCER);
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    for (i = 0; i < 4; i++)
        CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
    bc_recv(&c, 0, g_max, 0);
    bc_recv(&c, 1, g_max, 0);
    CHECK_ERR(ipc_ring_reserve(&g_ring, g_max, &m, 0), 0);
    memset(m, 0xee, g_max);
    CHECK_ERR(ipc_ring_commit(&g_ring, 0), 0);
    CHECK_ERR(bc_send(&g_ring, 4, g_max, 0), 0); /* the same slot, for real */
    CHECK_ERR(ipc_ring_reserve(&g_ring, 100, &m, 0), 0);
    memset(m, 0xdd, 100);
    CHECK_OK(ipc_ring_close(&g_ring));
    for (i = 2; i < 5; i++)
        bc_recv(&c, i, g_max, 0);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, IPC_FOREVER), -EPIPE);
    CHECK_OK(ipc_ring_close(&c));
    ring_teardown();
}

/* The overwrite flag is the ring's, not the creator's: a producer that attaches by name
   or fd to a ring that a reader created never waits either. */
TEST(ringbc_overwrite_producer_attached_later_never_waits) {
    int named;
    for (named = 0; named < 2; named++) {
        ipc_ring_opts o = bc_opts(1024, 4096, IPC_RING_OVERWRITE);
        ipc_ring p;
        uint64_t i;
        ring_setup(&o, 1024, named, IPC_CONSUMER); /* a reader that reads nothing */
        CHECK_OK(bc_attach(&p, IPC_PRODUCER));
        for (i = 0; i < 3 * g_nslots; i++) {
            int rc = bc_send(&p, i, g_max, 0);
            if (rc != 0)
                th_fail(__FILE__, __LINE__,
                        "%s overwrite ring, producer by %s: message %llu (%llu slots): %d (%s)",
                        named ? "named" : "anonymous", named ? "ipc_ring_open" : "attach_fd",
                        (unsigned long long)i, (unsigned long long)g_nslots, rc, ipc_strerror(rc));
        }
        CHECK_OK(ipc_ring_close(&p));
        ring_teardown();
    }
}

/* ---- 5. -EPIPE: after the producer closed or died, and a new producer after it ---- */

/* Reads until -EPIPE, checking messages 0.. in order; their count goes to res[id]. */
static void draining_reader(void *arg) {
    int id = (int)(intptr_t)arg;
    unsigned char buf[BC_BUF];
    uint64_t i = 0;
    int64_t t0;
    ipc_ring c;
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    ready_add();
    for (;;) {
        ssize_t n = ipc_ring_recv(&c, buf, sizeof buf, 5000 * MS);
        if (n == -EPIPE) break;
        bc_expect("draining reader", buf, n, g_max, i);
        i++;
    }
    __atomic_store_n(&g_sh->t[1 + id], ipc_time_now(), __ATOMIC_RELEASE);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EPIPE); /* and it stays */
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, IPC_FOREVER), -EPIPE);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 50 * MS), -EPIPE);
    check_quick(t0, "-EPIPE calls");
    g_sh->res[id].got = i;
    CHECK_OK(ipc_ring_close(&c));
}

TEST(ringbc_epipe_after_producer_close_and_drain) {
    ipc_ring_opts o = bc_opts(256, 4096, 0);
    unsigned char buf[BC_BUF];
    pid_t pid[3];
    ipc_ring late;
    int64_t t0;
    uint64_t i;
    int k;
    sh_map();
    g_n = 100;
    ring_setup(&o, 256, 1, IPC_PRODUCER);
    for (k = 0; k < 3; k++)
        pid[k] = th_spawn(draining_reader, (void *)(intptr_t)k);
    ready_wait(3, 5000);
    for (i = 0; i < g_n; i++)
        CHECK_ERR(bc_send(&g_ring, i, g_max, 5000 * MS), 0);
    CHECK_OK(ipc_ring_close(&g_ring));
    for (k = 0; k < 3; k++) {
        join_ok(pid[k], "reader", JOIN_MS);
        CHECK_EQ(g_sh->res[k].got, g_n);
    }
    /* a reader that comes after the end: nothing is due to it, -EPIPE at once */
    CHECK_OK(bc_attach(&late, IPC_CONSUMER));
    t0 = ipc_time_now();
    CHECK_ERR(ipc_ring_recv(&late, buf, sizeof buf, IPC_FOREVER), -EPIPE);
    CHECK_ERR(ipc_ring_recv(&late, buf, sizeof buf, 0), -EPIPE);
    check_quick(t0, "-EPIPE calls of a late reader");
    CHECK_OK(ipc_ring_close(&late));
    ring_teardown();
    sh_unmap();
}

/* Attach, peek one message and sit on it (flag 4) until killed. */
static void sitting_reader(void *arg) {
    const void *m;
    ipc_ring c;
    (void)arg;
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    ready_add();
    CHECK(ipc_ring_peek(&c, &m, IPC_FOREVER) > 0);
    flag_set(4, 1);
    th_sleep_ms(30000);
}

/* The producer never sees -EPIPE: not with no reader ever, not after every reader closed
   or died. */
TEST(ringbc_producer_never_epipe) {
    ipc_ring_opts o = bc_opts(1024, 4096, 0);
    ipc_ring c;
    uint64_t i = 0;
    pid_t pid;
    sh_map();
    ring_setup(&o, 1024, 0, IPC_PRODUCER);
    for (; i < 20; i++) /* nobody attached: nothing waits */
        CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
    bc_recv(&c, i++, g_max, 0);
    CHECK_OK(ipc_ring_close(&c));
    for (; i < 40; i++) /* every reader closed */
        CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
    pid = th_spawn(sitting_reader, NULL);
    ready_wait(1, 5000);
    for (; i < 40 + g_nslots; i++)
        CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
    flag_wait(4, 1, 5000);
    CHECK_ERR(bc_send(&g_ring, i, g_max, 0), -EAGAIN);
    kill(pid, SIGKILL);
    CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
    for (; i < 80; i++) /* every reader died */
        CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
    ring_teardown();
    sh_unmap();
}

/* Producer child: send g_n messages, reserve the next, write it whole, flag 0, sleep. */
static void reserving_producer(void *arg) {
    ipc_ring p;
    uint64_t i;
    size_t len;
    void *m;
    (void)arg;
    CHECK_OK(bc_attach(&p, IPC_PRODUCER));
    for (i = 0; i < g_n; i++)
        CHECK_ERR(bc_send(&p, i, g_max, 5000 * MS), 0);
    len = bc_len(i, g_max);
    CHECK_ERR(ipc_ring_reserve(&p, len, &m, 5000 * MS), 0);
    bc_fill(m, len, i);
    flag_set(0, 1);
    th_sleep_ms(30000);
}

/* Reader child: messages 0..g_n-1, then -EPIPE (flag 5), then, once a new producer came,
   messages 1000.. (the new producer's) up to 1000 + g_n - 1, then -EPIPE again. */
static void two_producers_reader(void *arg) {
    unsigned char buf[BC_BUF];
    uint64_t i;
    ipc_ring c;
    ssize_t n;
    (void)arg;
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    ready_add();
    for (i = 0; i < g_n; i++)
        bc_recv(&c, i, g_max, IPC_FOREVER);
    n = ipc_ring_recv(&c, buf, sizeof buf, IPC_FOREVER);
    if (n != -EPIPE)
        th_fail(__FILE__, __LINE__, "after the dead producer's messages: %lld (%s)%s", (long long)n,
                ipc_strerror((int)n), n > 0 ? ": its reservation was delivered" : "");
    __atomic_store_n(&g_sh->t[1], ipc_time_now(), __ATOMIC_RELEASE);
    flag_set(5, 1);
    flag_wait(6, 1, 5000); /* a new producer holds the role */
    for (i = 1000; i < 1000 + g_n; i++)
        bc_recv(&c, i, g_max, 5000 * MS);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 5000 * MS), -EPIPE);
    CHECK_OK(ipc_ring_close(&c));
}

/* A producer killed while it holds a reservation (written in full): readers get what it
   committed, then -EPIPE within a second, never the reserved message. -EPIPE holds until
   a new producer claims the role; then the readers get its messages. */
TEST(ringbc_producer_killed_mid_reservation_then_new_producer) {
    int named;
    for (named = 0; named < 2; named++) {
        ipc_ring_opts o = bc_opts(512, 4096, 0);
        unsigned char buf[BC_BUF];
        pid_t pp, pr;
        ipc_ring c, late, p;
        int64_t tk;
        uint64_t i;
        sh_map();
        g_n = 5;
        ring_setup(&o, 512, named, IPC_CONSUMER); /* the parent reads too */
        pr = th_spawn(two_producers_reader, NULL);
        ready_wait(1, 5000);
        pp = th_spawn(reserving_producer, NULL);
        flag_wait(0, 1, 5000);
        tk = ipc_time_now();
        kill(pp, SIGKILL);
        CHECK_EQ(th_join(pp, JOIN_MS), 128 + SIGKILL);
        for (i = 0; i < g_n; i++)
            bc_recv(&g_ring, i, g_max, 0);
        CHECK_ERR(ipc_ring_recv(&g_ring, buf, sizeof buf, 2000 * MS), -EPIPE);
        if (ipc_time_now() - tk > 1000 * MS)
            th_fail(__FILE__, __LINE__, "-EPIPE came %.1f ms after the producer was killed",
                    th_ms_of(ipc_time_now() - tk));
        flag_wait(5, 1, 5000);
        CHECK(__atomic_load_n(&g_sh->t[1], __ATOMIC_ACQUIRE) - tk < 1000 * MS);
        /* sticky until someone claims the role */
        CHECK_ERR(ipc_ring_recv(&g_ring, buf, sizeof buf, 0), -EPIPE);
        CHECK_ERR(ipc_ring_recv(&g_ring, buf, sizeof buf, 50 * MS), -EPIPE);
        CHECK_OK(bc_attach(&late, IPC_CONSUMER));
        CHECK_ERR(ipc_ring_recv(&late, buf, sizeof buf, IPC_FOREVER), -EPIPE);
        /* a new producer: everyone attached gets all it sends */
        CHECK_OK(bc_attach(&p, IPC_PRODUCER));
        flag_set(6, 1);
        CHECK_OK(bc_attach(&c, IPC_CONSUMER)); /* one more, attached after the claim */
        for (i = 1000; i < 1000 + g_n; i++)
            CHECK_ERR(bc_send(&p, i, g_max, 5000 * MS), 0);
        for (i = 1000; i < 1000 + g_n; i++) {
            bc_recv(&g_ring, i, g_max, 0);
            bc_recv(&late, i, g_max, 0);
            bc_recv(&c, i, g_max, 0);
        }
        CHECK_ERR(ipc_ring_recv(&g_ring, buf, sizeof buf, 0), -EAGAIN);
        CHECK_OK(ipc_ring_close(&p));
        CHECK_ERR(ipc_ring_recv(&g_ring, buf, sizeof buf, 0), -EPIPE);
        CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, IPC_FOREVER), -EPIPE);
        join_ok(pr, "reader", JOIN_MS);
        CHECK_OK(ipc_ring_close(&late));
        CHECK_OK(ipc_ring_close(&c));
        ring_teardown();
        sh_unmap();
    }
}

/* Producer child for rounds of deaths: messages base + 0, 1, ... with reservations held
   across short pauses, until killed. */
static void mortal_producer(void *arg) {
    uint64_t base = (uint64_t)(uintptr_t)arg, rs = base, i = 0;
    ipc_ring p;
    CHECK_OK(bc_attach(&p, IPC_PRODUCER));
    flag_set(0, (int)(base / 1000000)); /* attached: from now on its death is -EPIPE */
    for (;;) {
        size_t len = bc_len(base + i, g_max);
        void *m;
        if (th_rnd64(&rs) % 2) {
            CHECK_ERR(bc_send(&p, base + i, g_max, 5000 * MS), 0);
        } else {
            CHECK_ERR(ipc_ring_reserve(&p, len, &m, 5000 * MS), 0);
            bc_fill(m, len, base + i);
            if (th_rnd64(&rs) % 8 == 0) th_sleep_ms(1);
            CHECK_ERR(ipc_ring_commit(&p, len), 0);
        }
        sent_set(++i);
        if (th_rnd64(&rs) % 32 == 0) th_sleep_ms(1);
    }
}

/* Producers killed at random moments, one after another on the same ring. The parent
   reader drains each to -EPIPE (within a second of the kill) and finds base + 0.. in
   order, as many as were committed (the count the producer kept, or one more if it died
   between a commit and counting it). */
TEST_T(ringbc_producers_killed_at_random_moments, 20000) {
    ipc_ring_opts o = bc_opts(512, 4096, 0);
    int rounds = TH_SLOW ? 4 : 6, r;
    unsigned char buf[BC_BUF];
    uint64_t rs = 9;
    sh_map();
    ring_setup(&o, 512, 0, IPC_CONSUMER);
    for (r = 0; r < rounds; r++) {
        uint64_t base = (uint64_t)(r + 1) * 1000000, i = 0, sent;
        int64_t tk;
        pid_t pp;
        sent_set(0);
        pp = th_spawn(mortal_producer, (void *)(uintptr_t)base);
        flag_wait(0, r + 1, 5000);
        /* read along for a while, so that the producer also waits for this reader */
        tk = ipc_time_now() + (int64_t)(th_rnd64(&rs) % 20) * MS;
        while (ipc_time_now() < tk) {
            ssize_t n = ipc_ring_recv(&g_ring, buf, sizeof buf, 1 * MS);
            if (n == -ETIMEDOUT || n == -EPIPE) continue; /* not started yet, or the last */
            bc_expect("reader", buf, n, g_max, base + i);
            i++;
        }
        tk = ipc_time_now();
        kill(pp, SIGKILL);
        CHECK_EQ(th_join(pp, JOIN_MS), 128 + SIGKILL);
        sent = sent_get();
        for (;;) {
            ssize_t n = ipc_ring_recv(&g_ring, buf, sizeof buf, 2000 * MS);
            if (n == -EPIPE) break;
            bc_expect("reader", buf, n, g_max, base + i);
            i++;
        }
        if (ipc_time_now() - tk > 1000 * MS)
            th_fail(__FILE__, __LINE__, "round %d: -EPIPE %.1f ms after the kill", r,
                    th_ms_of(ipc_time_now() - tk));
        if (i < sent || i > sent + 1)
            th_fail(__FILE__, __LINE__, "round %d: %llu messages received, %llu committed", r,
                    (unsigned long long)i, (unsigned long long)sent);
    }
    ring_teardown();
    sh_unmap();
}

/* A producer that dies after publishing a message's slot and before storing the tail: the
   state is made exactly by sending and then putting the tail back by one. The readers got
   (or will get) that message, so whether it counts or not, every message of the next
   producer must still reach every reader attached before it, in order. */
TEST(ringbc_producer_death_between_publish_and_tail_store) {
    ipc_ring_opts o = bc_opts(512, 4096, 0);
    unsigned char buf[BC_BUF], *mem;
    struct stat sb;
    uint64_t tail, i;
    ipc_ring p;
    pid_t pp;
    sh_map();
    g_n = 3;
    ring_setup(&o, 512, 0, IPC_CONSUMER);
    pp = th_spawn(reserving_producer, NULL); /* sends 0..2, holds a reservation of 3 */
    flag_wait(0, 1, 5000);
    for (i = 0; i < g_n; i++)
        bc_recv(&g_ring, i, g_max, 0);
    CHECK_EQ(fstat(g_fd, &sb), 0);
    mem = (unsigned char *)mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, g_fd,
                                0);
    CHECK(mem != MAP_FAILED);
    memcpy(&tail, mem + OFF_TAIL, 8);
    CHECK_EQ(tail, 3);
    kill(pp, SIGKILL);
    CHECK_EQ(th_join(pp, JOIN_MS), 128 + SIGKILL);
    CHECK_ERR(ipc_ring_recv(&g_ring, buf, sizeof buf, 2000 * MS), -EPIPE);
    /* message 2 was the last: its slot is published, but say the tail never got there */
    tail = 2;
    memcpy(mem + OFF_TAIL, &tail, 8);
    CHECK_OK(bc_attach(&p, IPC_PRODUCER));
    for (i = 100; i < 104; i++)
        CHECK_ERR(bc_send(&p, i, g_max, 0), 0);
    for (i = 100; i < 104; i++) {
        ssize_t n = ipc_ring_recv(&g_ring, buf, sizeof buf, 0);
        uint64_t seq = 0;
        if (n < 0 || !bc_intact(buf, n, g_max, &seq) || seq != i)
            th_fail(__FILE__, __LINE__,
                    "the new producer's message %llu: got %lld (%s), message %llu",
                    (unsigned long long)i, (long long)n, n < 0 ? ipc_strerror((int)n) : "intact",
                    (unsigned long long)seq);
    }
    CHECK_OK(ipc_ring_close(&p));
    CHECK_EQ(munmap(mem, (size_t)sb.st_size), 0);
    ring_teardown();
    sh_unmap();
}

/* ---- 6. blocking, timeouts, wake-ups, signals ---- */

/* An empty ring: try-once is -EAGAIN at once, 50 ms is -ETIMEDOUT after 50 ms, for recv and
   peek, whether the producer is attached or never came (it may yet: no -EPIPE). */
TEST(ringbc_empty_ring_timeouts) {
    int with_producer;
    for (with_producer = 0; with_producer < 2; with_producer++) {
        ipc_ring_opts o = bc_opts(256, 4096, with_producer ? 0 : IPC_RING_OVERWRITE);
        unsigned char buf[BC_BUF];
        const void *m;
        ipc_ring p, c;
        int64_t t0;
        ring_setup(&o, 256, with_producer, IPC_CONSUMER);
        if (with_producer) CHECK_OK(bc_attach(&p, IPC_PRODUCER));
        CHECK_OK(bc_attach(&c, IPC_CONSUMER));
        t0 = ipc_time_now();
        CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
        CHECK_ERR(ipc_ring_peek(&c, &m, 0), -EAGAIN);
        check_quick(t0, "try-once calls");
        CHECK_TIMED(ipc_ring_recv(&c, buf, sizeof buf, 50 * MS), -ETIMEDOUT, 50);
        CHECK_TIMED(ipc_ring_peek(&g_ring, &m, 50 * MS), -ETIMEDOUT, 50);
        CHECK_ERR(ipc_ring_release(&c), -EINVAL);
        if (with_producer) {
            CHECK_ERR(bc_send(&p, 7, g_max, 0), 0);
            bc_recv(&c, 7, g_max, 0);
            bc_recv(&g_ring, 7, g_max, 0);
            CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
            CHECK_OK(ipc_ring_close(&p));
        }
        CHECK_OK(ipc_ring_close(&c));
        ring_teardown();
    }
}

/* Lossless, a reader that reads nothing: after one lap the producer waits. Try-once is
   -EAGAIN, 50 ms is -ETIMEDOUT, for send and reserve; one message read makes room for
   one; the reader closing frees the producer. */
TEST(ringbc_full_ring_timeouts) {
    ipc_ring_opts o = bc_opts(1024, 4096, 0);
    ipc_ring c;
    int64_t t0;
    uint64_t i;
    void *m;
    ring_setup(&o, 1024, 0, IPC_PRODUCER);
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    for (i = 0; i < g_nslots; i++)
        CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
    t0 = ipc_time_now();
    CHECK_ERR(bc_send(&g_ring, i, g_max, 0), -EAGAIN);
    CHECK_ERR(ipc_ring_reserve(&g_ring, 1, &m, 0), -EAGAIN);
    check_quick(t0, "try-once calls");
    CHECK_TIMED(bc_send(&g_ring, i, g_max, 50 * MS), -ETIMEDOUT, 50);
    CHECK_TIMED(ipc_ring_reserve(&g_ring, 1, &m, 50 * MS), -ETIMEDOUT, 50);
    CHECK_ERR(ipc_ring_commit(&g_ring, 1), -EINVAL); /* nothing was reserved */
    bc_recv(&c, 0, g_max, 0);
    CHECK_ERR(bc_send(&g_ring, i++, g_max, 0), 0);
    CHECK_ERR(bc_send(&g_ring, i, g_max, 0), -EAGAIN);
    CHECK_OK(ipc_ring_close(&c));
    for (; i < 5 * g_nslots; i++)
        CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
    ring_teardown();
}

/* Reader child: block in recv (or peek) until a message comes; note when it returned. */
static void sleeping_reader(void *arg) {
    int id = (int)(intptr_t)arg;
    ipc_ring_stats st;
    unsigned char buf[BC_BUF];
    const void *m;
    ipc_ring c;
    ssize_t n;
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    ready_add();
    if (id % 2) {
        n = ipc_ring_peek(&c, &m, IPC_FOREVER);
        bc_expect("peek", m, n, g_max, 42);
        CHECK_ERR(ipc_ring_release(&c), 0);
    } else {
        n = ipc_ring_recv(&c, buf, sizeof buf, IPC_FOREVER);
        bc_expect("recv", buf, n, g_max, 42);
    }
    __atomic_store_n(&g_sh->t[1 + id], ipc_time_now(), __ATOMIC_RELEASE);
    CHECK_OK(ipc_ring_get_stats(&c, &st));
    g_sh->res[id].sleeps = st.sleeps;
    CHECK_OK(ipc_ring_close(&c));
}

/* Three readers asleep in recv/peek: one send from another process wakes them all. */
TEST(ringbc_sleeping_readers_woken_by_send) {
    ipc_ring_opts o = bc_opts(256, 4096, 0);
    ipc_ring_stats st;
    pid_t pid[3];
    int64_t t0;
    int k;
    sh_map();
    ring_setup(&o, 256, 1, IPC_PRODUCER);
    for (k = 0; k < 3; k++)
        pid[k] = th_spawn(sleeping_reader, (void *)(intptr_t)k);
    ready_wait(3, 5000);
    th_sleep_ms(150); /* past any spin and the first short sleep */
    t0 = ipc_time_now();
    CHECK_ERR(bc_send(&g_ring, 42, g_max, 0), 0);
    for (k = 0; k < 3; k++) {
        int64_t t;
        join_ok(pid[k], "reader", JOIN_MS);
        t = g_sh->t[1 + k];
        if (t < t0 || t - t0 > 1000 * MS)
            th_fail(__FILE__, __LINE__, "reader %d returned %.1f ms after the send", k,
                    th_ms_of(t - t0));
        CHECK(g_sh->res[k].sleeps >= 1);
    }
    CHECK_OK(ipc_ring_get_stats(&g_ring, &st));
    CHECK(st.wakes >= 1);
    CHECK_EQ(st.sleeps, 0);
    ring_teardown();
    sh_unmap();
}

/* Producer child: fill the ring, then a blocking send that the parent's reading ends. */
static void blocked_producer(void *arg) {
    ipc_ring_stats st;
    ipc_ring p;
    uint64_t i;
    (void)arg;
    CHECK_OK(bc_attach(&p, IPC_PRODUCER));
    for (i = 0; i < g_nslots; i++)
        CHECK_ERR(bc_send(&p, i, g_max, 0), 0);
    flag_set(0, 1);
    CHECK_ERR(bc_send(&p, i, g_max, IPC_FOREVER), 0);
    __atomic_store_n(&g_sh->t[1], ipc_time_now(), __ATOMIC_RELEASE);
    CHECK_OK(ipc_ring_get_stats(&p, &st));
    g_sh->res[0].sleeps = st.sleeps;
    CHECK_OK(ipc_ring_close(&p));
}

/* A producer asleep on a full lossless ring: the reader's recv in another process wakes
   it. */
TEST(ringbc_sleeping_producer_woken_by_reader) {
    ipc_ring_opts o = bc_opts(1024, 4096, 0);
    ipc_ring_stats st;
    int64_t t0, t1;
    uint64_t i;
    pid_t pp;
    sh_map();
    ring_setup(&o, 1024, 0, IPC_CONSUMER);
    pp = th_spawn(blocked_producer, NULL);
    flag_wait(0, 1, 5000);
    th_sleep_ms(150);
    t0 = ipc_time_now();
    bc_recv(&g_ring, 0, g_max, 0);
    join_ok(pp, "producer", JOIN_MS);
    t1 = g_sh->t[1];
    if (t1 < t0 || t1 - t0 > 1000 * MS)
        th_fail(__FILE__, __LINE__, "the producer returned %.1f ms after the recv",
                th_ms_of(t1 - t0));
    CHECK(g_sh->res[0].sleeps >= 1);
    CHECK_OK(ipc_ring_get_stats(&g_ring, &st));
    CHECK(st.wakes >= 1);
    for (i = 1; i <= g_nslots; i++)
        bc_recv(&g_ring, i, g_max, 0);
    CHECK_ERR(ipc_ring_recv(&g_ring, &i, sizeof i, 0), -EPIPE);
    ring_teardown();
    sh_unmap();
}

/* Reader child under a signal storm: the whole stream, blocking calls included. */
static void storm_reader(void *arg) {
    th_storm_start();
    stream_reader(arg);
    if (th_storm_stop() < 10) th_fail(__FILE__, __LINE__, "the storm never came");
}

/* A signal storm (SIGALRM every 100 us, no SA_RESTART) in the producer and in every
   reader while they block on each other: no call returns -EINTR or early, nothing is lost. */
TEST_T(ringbc_signal_storm, 20000) {
    ipc_ring_opts o = bc_opts(1024, 4096, 0);
    unsigned char buf[BC_BUF];
    pid_t pid[2];
    uint64_t n;
    ipc_ring c;
    int k;
    sh_map();
    ring_setup(&o, 1024, 0, IPC_PRODUCER);
    n = TH_SLOW ? 300 : 3000;
    g_n = n + g_nslots; /* the stream, then one lap that a reader in the parent holds */
    for (k = 0; k < 2; k++)
        pid[k] = th_spawn(storm_reader, (void *)(intptr_t)k);
    ready_wait(2, 5000);
    th_storm_start();
    stream_produce(&g_ring, n, 5);
    /* timeouts under the storm are still whole */
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    CHECK_TIMED(ipc_ring_recv(&c, buf, sizeof buf, 50 * MS), -ETIMEDOUT, 50);
    for (; n < g_n; n++)
        CHECK_ERR(bc_send(&g_ring, n, g_max, IPC_FOREVER), 0);
    CHECK_TIMED(bc_send(&g_ring, n, g_max, 50 * MS), -ETIMEDOUT, 50);
    CHECK_OK(ipc_ring_close(&c));
    if (th_storm_stop() < 10) th_fail(__FILE__, __LINE__, "the storm never came");
    CHECK_OK(ipc_ring_close(&g_ring));
    for (k = 0; k < 2; k++)
        join_ok(pid[k], "reader", 15000);
    ring_teardown();
    sh_unmap();
}

/* ---- 7. limits and bad arguments ---- */

static ipc_ring g_many[130];

/* 128 readers in one process; the 129th is -EBUSY and leaks nothing; each of the 128 gets
   every message; one closed makes room for one more; the producer is not one of the 128. */
TEST(ringbc_128_readers_then_ebusy) {
    ipc_ring_opts o = bc_opts(256, 4096, 0);
    unsigned char buf[BC_BUF];
    int i, fds, maps, fds0 = 0, maps0 = 0, round;
    ipc_ring p2;
    uint64_t m;
    for (round = 0; round < 2; round++) { /* the first warms up process-wide tables */
        if (round == 1) {
            fds0 = th_fd_count();
            maps0 = th_maps_now();
        }
        ring_setup(&o, 256, round, IPC_PRODUCER);
        for (i = 0; i < 128; i++) {
            int rc = bc_attach(&g_many[i], IPC_CONSUMER);
            if (rc != 0) th_fail(__FILE__, __LINE__, "reader %d: %d (%s)", i, rc, ipc_strerror(rc));
        }
        fds = th_fd_count();
        maps = th_maps_now();
        CHECK_ERR(bc_attach(&g_many[128], IPC_CONSUMER), -EBUSY);
        CHECK_ERR(ipc_ring_close(&g_many[128]), -EBADF);
        CHECK_ERR(bc_attach(&p2, IPC_PRODUCER), -EBUSY); /* taken anyway */
        CHECK_EQ(th_fd_count(), fds);
        CHECK_EQ(th_maps_now(), maps);
        for (m = 0; m < 3; m++) {
            CHECK_ERR(bc_send(&g_ring, m, g_max, 0), 0);
            for (i = 0; i < 128; i++)
                bc_recv(&g_many[i], m, g_max, 0);
        }
        /* with 128 readers the producer still waits for each: reader 77 holds it */
        for (m = 3; m < 3 + g_nslots; m++) {
            CHECK_ERR(bc_send(&g_ring, m, g_max, 0), 0);
            for (i = 0; i < 128; i++)
                if (i != 77) bc_recv(&g_many[i], m, g_max, 0);
        }
        CHECK_ERR(bc_send(&g_ring, m, g_max, 0), -EAGAIN);
        CHECK_OK(ipc_ring_close(&g_many[77]));
        CHECK_ERR(bc_send(&g_ring, m, g_max, 0), 0);
        CHECK_OK(bc_attach(&g_many[128], IPC_CONSUMER));
        CHECK_ERR(bc_attach(&g_many[129], IPC_CONSUMER), -EBUSY);
        CHECK_ERR(bc_send(&g_ring, m + 1, g_max, 0), 0);
        bc_recv(&g_many[128], m + 1, g_max, 0); /* the newcomer starts at its attach */
        CHECK_ERR(ipc_ring_recv(&g_many[128], buf, sizeof buf, 0), -EAGAIN);
        for (i = 0; i < 128; i++)
            if (i != 77) {
                bc_recv(&g_many[i], m, g_max, 0);
                bc_recv(&g_many[i], m + 1, g_max, 0);
            }
        for (i = 0; i <= 128; i++)
            if (i != 77) CHECK_OK(ipc_ring_close(&g_many[i]));
        ring_teardown();
    }
    CHECK_EQ(th_fd_count(), fds0);
    CHECK_EQ(th_maps_now(), maps0);
}

/* Child: try to claim the producer role; the result in res[0].got (as a negative errno +
   1000). Then hold it (flag 0) until flag 1 if it got it. */
static void producer_claimer(void *arg) {
    ipc_ring p;
    int rc;
    (void)arg;
    rc = bc_attach(&p, IPC_PRODUCER);
    g_sh->res[0].got = (uint64_t)(rc + 1000);
    flag_set(0, 1);
    if (rc == 0) {
        flag_wait(1, 1, 10000);
        CHECK_OK(ipc_ring_close(&p));
    }
}

/* One producer at a time, in any process; the role comes free by close and by death. */
TEST(ringbc_one_producer_at_a_time) {
    ipc_ring_opts o = bc_opts(256, 4096, 0);
    ipc_ring p, c;
    pid_t pid;
    sh_map();
    ring_setup(&o, 256, 1, IPC_PRODUCER);
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    CHECK_ERR(bc_attach(&p, IPC_PRODUCER), -EBUSY);
    CHECK_ERR(ipc_ring_create(&p, g_name, IPC_PRODUCER, &o), -EEXIST);
    pid = th_spawn(producer_claimer, NULL);
    join_ok(pid, "claimer", JOIN_MS);
    CHECK_EQ((int64_t)g_sh->res[0].got - 1000, -EBUSY);
    CHECK_OK(ipc_ring_close(&g_ring)); /* free by close */
    memset(g_sh, 0, sizeof *g_sh);
    pid = th_spawn(producer_claimer, NULL);
    flag_wait(0, 1, 5000);
    CHECK_EQ((int64_t)g_sh->res[0].got - 1000, 0);
    CHECK_ERR(bc_attach(&p, IPC_PRODUCER), -EBUSY);
    kill(pid, SIGKILL); /* free by death */
    CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
    CHECK_OK(bc_attach(&p, IPC_PRODUCER));
    CHECK_ERR(bc_send(&p, 5, g_max, 0), 0);
    bc_recv(&c, 5, g_max, 0);
    CHECK_OK(ipc_ring_close(&p));
    CHECK_OK(ipc_ring_close(&c));
    ring_teardown();
    sh_unmap();
}

/* A broadcast handle is a producer or a reader, never both: -EINVAL from create (leaving
   no name behind), open and attach_fd, with nothing leaked. IPC_RING_OVERWRITE belongs to
   broadcast only. */
TEST(ringbc_both_roles_and_bad_flags_einval) {
    static const unsigned bad[] = {
        IPC_RING_SPSC | IPC_RING_OVERWRITE,
        IPC_RING_MPMC | IPC_RING_OVERWRITE,
        IPC_RING_MPSC | IPC_RING_OVERWRITE,
        IPC_RING_MPMC | IPC_RING_MSG(100) | IPC_RING_OVERWRITE,
        IPC_RING_BROADCAST | (1u << 18),
        IPC_RING_BROADCAST | (4u << 24), /* 16-byte slots: no room for a message */
        IPC_RING_BROADCAST | (31u << 24),
        IPC_RING_BROADCAST | 4u, /* kind 7 */
    };
    ipc_ring_opts o = bc_opts(256, 4096, IPC_RING_OVERWRITE);
    int both = IPC_PRODUCER | IPC_CONSUMER, fds, maps;
    char path[400], name[300];
    struct stat st;
    ipc_ring r;
    unsigned i;
    ring_setup(&o, 256, 1, IPC_PRODUCER); /* warm up process-wide state first */
    CHECK_OK(bc_attach(&r, IPC_CONSUMER));
    CHECK_OK(ipc_ring_close(&r));
    fds = th_fd_count();
    maps = th_maps_now();
    th_name(name, sizeof name, "both");
    snprintf(path, sizeof path, "/dev/shm%s", name);
    CHECK_ERR(ipc_ring_create(&r, NULL, both, &o), -EINVAL);
    CHECK_ERR(ipc_ring_create(&r, name, both, &o), -EINVAL);
    CHECK(stat(path, &st) != 0);
    CHECK_ERR(ipc_ring_open(&r, g_name, both), -EINVAL);
    CHECK_ERR(ipc_ring_attach_fd(&r, g_fd, both), -EINVAL);
    CHECK_ERR(ipc_ring_close(&r), -EBADF);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ipc_ring_opts b = o;
        b.flags = bad[i];
        CHECK_ERR(ipc_ring_create(&r, NULL, IPC_PRODUCER, &b), -EINVAL);
        CHECK_ERR(ipc_ring_create(&r, name, IPC_CONSUMER, &b), -EINVAL);
        CHECK(stat(path, &st) != 0);
    }
    CHECK_EQ(th_fd_count(), fds);
    CHECK_EQ(th_maps_now(), maps);
    /* one role per handle, two handles in one process are fine */
    CHECK_OK(bc_attach(&r, IPC_CONSUMER));
    CHECK_ERR(bc_send(&g_ring, 1, g_max, 0), 0);
    bc_recv(&r, 1, g_max, 0);
    CHECK_OK(ipc_ring_close(&r));
    ring_teardown();
}

/* Sizes and call rules, with the exact codes, on both ends. */
TEST(ringbc_sizes_and_call_rules) {
    ipc_ring_opts o = bc_opts(512, 8192, 0);
    unsigned char buf[BC_BUF], small[16], small2[100];
    const void *cm;
    ipc_ring c, z;
    int fds, maps;
    ssize_t n;
    void *m;
    ring_setup(&o, 512, 0, IPC_PRODUCER);
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    CHECK_EQ(ipc_ring_max_msg(&c), 496);
    CHECK_EQ(ipc_ring_max_msg(&g_ring), 496);
    fds = th_fd_count();
    maps = th_maps_now();
    memset(buf, 0x33, sizeof buf);
    /* producer */
    CHECK_ERR(ipc_ring_send(&g_ring, buf, 497, 0), -EMSGSIZE);
    CHECK_ERR(ipc_ring_send(&g_ring, buf, (size_t)-1, 0), -EMSGSIZE);
    CHECK_ERR(ipc_ring_reserve(&g_ring, 497, &m, 0), -EMSGSIZE);
    CHECK_ERR(ipc_ring_send(&g_ring, buf, 0, 0), -EINVAL);
    CHECK_ERR(ipc_ring_send(&g_ring, NULL, 1, 0), -EINVAL);
    CHECK_ERR(ipc_ring_send(&g_ring, buf, 1, -2), -EINVAL);
    CHECK_ERR(ipc_ring_reserve(&g_ring, 0, &m, 0), -EINVAL);
    CHECK_ERR(ipc_ring_reserve(&g_ring, 1, NULL, 0), -EINVAL);
    CHECK_ERR(ipc_ring_reserve(&g_ring, 1, &m, -5), -EINVAL);
    CHECK_ERR(ipc_ring_commit(&g_ring, 0), -EINVAL); /* nothing reserved */
    CHECK_ERR(ipc_ring_commit(&g_ring, 1), -EINVAL);
    CHECK_ERR(ipc_ring_recv(&g_ring, buf, sizeof buf, 0), -EINVAL); /* not a reader */
    CHECK_ERR(ipc_ring_peek(&g_ring, &cm, 0), -EINVAL);
    CHECK_ERR(ipc_ring_release(&g_ring), -EINVAL);
    CHECK_ERR(ipc_ring_reserve(&g_ring, 100, &m, 0), 0);
    CHECK_ERR(ipc_ring_reserve(&g_ring, 1, &m, 0), -EINVAL); /* twice */
    CHECK_ERR(ipc_ring_send(&g_ring, buf, 1, 0), -EINVAL);   /* while reserved */
    CHECK_ERR(ipc_ring_commit(&g_ring, 101), -EINVAL);       /* more than reserved */
    bc_fill(m, 100, 1);
    CHECK_ERR(ipc_ring_commit(&g_ring, 100), 0);
    CHECK_ERR(ipc_ring_send(&g_ring, buf, 496, 0), 0); /* max_msg */
    /* reader */
    CHECK_ERR(ipc_ring_send(&c, buf, 1, 0), -EINVAL); /* not the producer */
    CHECK_ERR(ipc_ring_reserve(&c, 1, &m, 0), -EINVAL);
    CHECK_ERR(ipc_ring_commit(&c, 0), -EINVAL);
    CHECK_ERR(ipc_ring_release(&c), -EINVAL); /* nothing peeked */
    CHECK_ERR(ipc_ring_recv(&c, NULL, 10, 0), -EINVAL);
    CHECK_ERR(ipc_ring_recv(&c, buf, 0, 0), -EINVAL);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, -2), -EINVAL);
    CHECK_ERR(ipc_ring_peek(&c, NULL, 0), -EINVAL);
    CHECK_ERR(ipc_ring_peek(&c, &cm, -2), -EINVAL);
    CHECK_ERR(ipc_ring_recv(&c, small, sizeof small, 0), -EMSGSIZE); /* it stays */
    CHECK_ERR(ipc_ring_recv(&c, small, sizeof small, IPC_FOREVER), -EMSGSIZE);
    CHECK_ERR(ipc_ring_peek(&c, &cm, 0), 100); /* peek tells the size */
    CHECK_ERR(ipc_ring_peek(&c, &cm, 0), 100); /* again: the same one */
    CHECK_ERR(ipc_ring_recv(&c, buf, 99, 0), -EMSGSIZE);
    n = ipc_ring_recv(&c, buf, 100, 0); /* exactly enough; consumes the peeked one */
    CHECK_EQ(n, 100);
    bc_fill(small2, 100, 1);
    CHECK(memcmp(buf, small2, 100) == 0);
    CHECK_ERR(ipc_ring_release(&c), -EINVAL);
    CHECK_ERR(ipc_ring_recv(&c, buf, 495, 0), -EMSGSIZE);
    CHECK_ERR(ipc_ring_recv(&c, buf, 496, 0), 496);
    CHECK_EQ(buf[0], 0x33);
    CHECK_EQ(buf[495], 0x33);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
    CHECK_EQ(th_fd_count(), fds);
    CHECK_EQ(th_maps_now(), maps);
    /* closed and zeroed handles */
    CHECK_OK(ipc_ring_close(&c));
    memset(&z, 0, sizeof z);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EBADF);
    CHECK_ERR(ipc_ring_peek(&z, &cm, 0), -EBADF);
    CHECK_ERR(ipc_ring_release(&c), -EBADF);
    CHECK_ERR(ipc_ring_close(&c), -EBADF);
    CHECK_EQ(ipc_ring_max_msg(&c), 0);
    CHECK_ERR(ipc_ring_get_stats(&c, NULL), -EINVAL);
    ring_teardown();
}

/* Child: its copies of the parent's handles hold no role. */
static void fork_copy_child(void *arg) {
    unsigned char buf[BC_BUF];
    ipc_ring *c = (ipc_ring *)arg;
    const void *cm;
    CHECK_ERR(bc_send(&g_ring, 9, g_max, 0), -EBADF);
    CHECK_ERR(ipc_ring_recv(c, buf, sizeof buf, 0), -EBADF);
    CHECK_ERR(ipc_ring_peek(c, &cm, 0), -EBADF);
    CHECK_OK(ipc_ring_close(c));
    CHECK_OK(ipc_ring_close(&g_ring));
}

/* After fork the child's copies are inert and closing them leaves the parent's roles (the
   reader's registry entry, the producer lock) alone. */
TEST(ringbc_fork_copies_hold_no_role) {
    ipc_ring_opts o = bc_opts(1024, 4096, 0);
    ipc_ring c, p;
    uint64_t i;
    pid_t pid;
    ring_setup(&o, 1024, 0, IPC_PRODUCER);
    CHECK_OK(bc_attach(&c, IPC_CONSUMER));
    pid = th_spawn(fork_copy_child, &c);
    join_ok(pid, "child", JOIN_MS);
    CHECK_ERR(bc_attach(&p, IPC_PRODUCER), -EBUSY);
    for (i = 0; i < g_nslots; i++)
        CHECK_ERR(bc_send(&g_ring, i, g_max, 0), 0);
    CHECK_ERR(bc_send(&g_ring, i, g_max, 0), -EAGAIN); /* the reader still counts */
    for (i = 0; i < g_nslots; i++)
        bc_recv(&c, i, g_max, 0);
    CHECK_OK(ipc_ring_close(&c));
    ring_teardown();
}

/* Creating, attaching every way, failing to attach and closing leave fds and mappings as
   they were. */
TEST(ringbc_no_fd_or_map_leaks) {
    ipc_ring_opts o = bc_opts(256, 4096, IPC_RING_OVERWRITE);
    int fds = 0, maps = 0, round;
    ipc_ring a, b, x;
    for (round = 0; round < 3; round++) {
        if (round == 1) {
            fds = th_fd_count();
            maps = th_maps_now();
        }
        ring_setup(&o, 256, round % 2, IPC_PRODUCER);
        CHECK_OK(bc_attach(&a, IPC_CONSUMER));
        CHECK_OK(bc_attach(&b, IPC_CONSUMER));
        CHECK_ERR(bc_attach(&x, IPC_PRODUCER), -EBUSY);
        CHECK_ERR(bc_attach(&x, 3), -EINVAL);
        CHECK_ERR(bc_send(&g_ring, 1, g_max, 0), 0);
        bc_recv(&a, 1, g_max, 0);
        CHECK_OK(ipc_ring_close(&a));
        CHECK_OK(ipc_ring_close(&b));
        ring_teardown();
    }
    CHECK_EQ(th_fd_count(), fds);
    CHECK_EQ(th_maps_now(), maps);
}

/* ---- 8. hostile shared memory ---- */

#define SCRIB_MS (TH_ASAN ? 500 : 600)

/* Re-attach after the handle was poisoned (or stalled): 0, or -EBADMSG while the header
   is broken (after a 1 ms nap). Anything else fails. */
static int scrib_attach(ipc_ring *r, int role) {
    int rc = bc_attach(r, role);
    if (rc != 0 && rc != -EBADMSG)
        th_fail(__FILE__, __LINE__, "attach (role %d) over a scribbled header: %d (%s)", role, rc,
                ipc_strerror(rc));
    if (rc != 0) th_sleep_ms(1);
    return rc;
}

static void scrib_reader(void *arg) {
    unsigned char *buf = (unsigned char *)th_xmalloc(1 << 16);
    uint64_t rs = 1234 + (uint64_t)(uintptr_t)arg;
    int have = 0, idle = 0;
    ipc_ring c;
    while (ipc_time_now() < g_end) {
        ssize_t n;
        if (!have) {
            if (scrib_attach(&c, IPC_CONSUMER) != 0) continue;
            have = 1;
            ready_add();
        }
        n = th_ring_take(&c, buf, 1 << 16, g_max, &rs);
        idle = n == -EAGAIN || n == -ETIMEDOUT || n == -EPIPE ? idle + 1 : 0;
        have = th_scrib_took(&g_sh->sc, &c, n, g_max, 1, buf, 1 << 16);
        if (have && idle >= 10) { /* stalled by what was written: start afresh */
            CHECK_OK(ipc_ring_close(&c));
            th_scrib_count(&g_sh->sc.attaches);
            have = 0;
            idle = 0;
        }
    }
    if (have) CHECK_OK(ipc_ring_close(&c));
    free(buf);
}

static void scrib_producer(void *arg) {
    unsigned char buf[BC_BUF];
    uint64_t rs = 99, i = 0;
    int have = 0;
    ipc_ring p;
    (void)arg;
    while (ipc_time_now() < g_end) {
        size_t len = 1 + (size_t)(th_rnd64(&rs) % g_max);
        int64_t t0;
        void *m;
        int rc;
        if (!have) {
            if (scrib_attach(&p, IPC_PRODUCER) != 0) continue;
            have = 1;
            flag_set(0, 1);
        }
        if (len >= 12) len = bc_len(i, g_max);
        t0 = ipc_time_now();
        if (th_rnd64(&rs) % 2) {
            bc_fill(buf, len < 12 ? 12 : len, i);
            rc = ipc_ring_send(&p, buf, len, 20 * MS);
        } else if ((rc = ipc_ring_reserve(&p, len, &m, 20 * MS)) == 0) {
            memset(m, 0x5a, len);
            rc = ipc_ring_commit(&p, th_rnd64(&rs) % 16 ? len : 0);
            CHECK_ERR(rc, 0);
        }
        have = th_scrib_sent(&g_sh->sc, &p, t0, rc, 0, buf);
        if (rc == 0) i++;
        if (th_rnd64(&rs) % 64 == 0) th_sleep_ms(1); /* readers sleep and wake too */
    }
    if (have) CHECK_OK(ipc_ring_close(&p));
}

/* The third process: random and plausible values in the positions, the wake-up words,
   the registry, the slots' sequence, length and check words, and anywhere else. Every few
   rounds the identity (magic .. flags) and the producer's state are put back, so that
   attaching works again and the game goes on. */
static void scrib_writer(void *arg) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), hdr, size, slot = g_max + 16;
    unsigned char *mem, *data, ident[32];
    uint64_t rs = 31337, i = 0;
    struct stat st;
    (void)arg;
    CHECK_EQ(fstat(g_fd, &st), 0);
    size = (size_t)st.st_size;
    hdr = (OFF_REG + 128 * 64 + pg - 1) / pg * pg;
    CHECK_EQ(size, hdr + g_nslots * slot);
    mem = (unsigned char *)mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, g_fd, 0);
    CHECK(mem != MAP_FAILED);
    data = mem + hdr;
    memcpy(ident, mem, sizeof ident);
    flag_wait(0, 1, 3000);
    th_sleep_ms(30); /* some messages first */
    while (ipc_time_now() < g_end) {
        unsigned k = (unsigned)(th_rnd64(&rs) % 16), b, burst = 1 + (unsigned)(th_rnd64(&rs) % 3);
        for (b = 0; b < burst; b++) {
            uint64_t v = th_rnd64(&rs), tail, w;
            uint32_t u;
            memcpy(&tail, mem + OFF_TAIL, 8);
            if (k < 2) { /* tail or head: nudged, or anything */
                size_t off = v % 2 ? OFF_TAIL : OFF_HEAD;
                memcpy(&w, mem + off, 8);
                w = v % 3 == 0 ? w + (v >> 8) % 5 : v % 3 == 1 ? w - (v >> 8) % 5 : v >> 4;
                memcpy(mem + off, &w, 8);
            } else if (k < 4) { /* states, sleeper counts, futex words, claims */
                size_t off = (v % 2 ? OFF_PROD : OFF_CONS) + 4 * ((v >> 1) % 4);
                u = (uint32_t)((v >> 8) % 4 ? (v >> 8) % 4 : v >> 32);
                memcpy(mem + off, &u, 4);
            } else if (k < 7) { /* a registry entry: position near the tail, or roles */
                unsigned char *e = mem + OFF_REG + 64 * ((v >> 8) % 128);
                if (v % 3 == 2) {
                    u = (uint32_t)((v >> 16) % 4);
                    memcpy(e + 16, &u, 4);
                } else {
                    w = tail - (v >> 16) % (2 * g_nslots + 2) + g_nslots;
                    memcpy(e + (v % 3) * 8, &w, 8);
                }
            } else if (k < 10) { /* a sequence word near the tail */
                uint64_t pos = tail - (v >> 8) % (g_nslots + 1);
                unsigned char *s = data + (pos % g_nslots) * slot;
                uint64_t idx = pos % g_nslots, seqv[6];
                seqv[0] = pos + 1 - idx; /* published for pos */
                seqv[1] = pos + 1 + g_nslots - idx;
                seqv[2] = (pos - idx) | ((uint64_t)1 << 62);
                seqv[3] = (pos + 2 - idx) | ((uint64_t)1 << 63);
                seqv[4] = v >> 3;
                seqv[5] = pos - g_nslots - idx;
                memcpy(s, &seqv[(v >> 40) % 6], 8);
            } else if (k < 13) { /* a length and check word pair, often a matching one */
                uint64_t pos = tail - 1 - (v >> 8) % g_nslots;
                unsigned char *s = data + (pos % g_nslots) * slot;
                uint32_t len = (uint32_t)((v >> 20) % 4 == 0 ? (v >> 24) : (v >> 24) % (slot * 2));
                uint32_t chk = (v >> 20) % 2 ? len ^ (uint32_t)pos ^ 0x534c4f54u : (uint32_t)v;
                memcpy(s + 8, &len, 4);
                memcpy(s + 12, &chk, 4);
            } else if (k < 14) { /* anywhere in the first 640 header bytes */
                mem[v % 640] = (unsigned char)(v >> 32);
            } else { /* message bytes */
                data[(v >> 8) % (g_nslots * slot)] = (unsigned char)(v >> 32);
            }
            th_scrib_count(&g_sh->sc.writes);
        }
        if (++i % 8 == 0) {
            uint32_t one = 1;
            memcpy(mem, ident, sizeof ident);
            memcpy(mem + OFF_PROD, &one, 4);
        }
        th_sleep_ms(1);
    }
    CHECK_EQ(munmap(mem, size), 0);
}

static void scribble(int named, unsigned extra) {
    ipc_ring_opts o = bc_opts(256, 4096, extra); /* 16 slots */
    pid_t pid[4];
    int k;
    sh_map();
    ring_setup(&o, 256, named, IPC_CONSUMER);
    g_fd = fcntl(g_fd, F_DUPFD_CLOEXEC, 0); /* the ring without the parent's role */
    CHECK(g_fd >= 0);
    CHECK_OK(ipc_ring_close(&g_ring));
    g_end = ipc_time_now() + SCRIB_MS * MS;
    pid[0] = th_spawn(scrib_producer, NULL);
    pid[1] = th_spawn(scrib_reader, (void *)(uintptr_t)1);
    pid[2] = th_spawn(scrib_reader, (void *)(uintptr_t)2);
    pid[3] = th_spawn(scrib_writer, NULL);
    for (k = 0; k < 4; k++)
        join_ok(pid[k], k == 0 ? "producer" : k == 3 ? "scribbler" : "reader", SCRIB_MS + 5000);
    th_scrib_check(&g_sh->sc, g_sh->sc.msgs > 0 && g_sh->sc.writes >= 100 &&
                                  g_sh->sc.bad + g_sh->sc.over + g_sh->sc.send_bad > 0);
    close(g_fd);
    g_fd = -1;
    ring_teardown();
    sh_unmap();
}

TEST_T(ringbc_scribbler_lossless_named, 15000) {
    scribble(1, 0);
}

TEST_T(ringbc_scribbler_overwrite_anonymous, 15000) {
    scribble(0, IPC_RING_OVERWRITE);
}

/* Attaching to a broadcast ring whose header says an impossible kind or flags is -EBADMSG
   for either role, and leaks nothing; put back, the ring works. */
TEST(ringbc_attach_corrupted_header) {
    static const struct {
        size_t off, width;
        uint64_t value;
        const char *what;
    } cases[] = {
        {OFF_FLAGS, 1, 4, "kind 4"},
        {OFF_FLAGS, 1, 0x83, "kind 0x83"},
        {OFF_FLAGS, 1, 0, "SPSC with a slot size"},
        {OFF_FLAGS + 2, 1, 0x06, "an unknown flag with overwrite"},
        {OFF_FLAGS + 2, 1, 0x80, "an unknown high flag"},
        {OFF_FLAGS + 3, 1, 0, "no slot size"},
        {OFF_FLAGS + 3, 1, 4, "slot shift 4"},
        {OFF_FLAGS + 3, 1, 31, "slot shift 31"},
        {OFF_FLAGS + 3, 1, 13, "one slot only"},
        {OFF_FLAGS + 3, 1, 0x48, "bits above the slot shift"},
        {0, 1, 'x', "magic"},
        {8, 4, 7, "version"},
        {12, 4, 4096, "header size"},
        {16, 8, 1 << 20, "capacity"},
    };
    ipc_ring_opts o = bc_opts(1024, 8192, IPC_RING_OVERWRITE);
    unsigned char save[8], *mem;
    int named, fds, maps;
    struct stat st;
    ipc_ring r, p;
    size_t i;
    for (named = 0; named < 2; named++) {
        ring_setup(&o, 1024, named, IPC_CONSUMER);
        CHECK_EQ(fstat(g_fd, &st), 0);
        mem = (unsigned char *)mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                                    g_fd, 0);
        CHECK(mem != MAP_FAILED);
        CHECK_EQ(mem[OFF_FLAGS], IPC_RING_BROADCAST);
        CHECK_EQ(mem[OFF_FLAGS + 2], 0x02);    /* bit 17 */
        CHECK_EQ(mem[OFF_FLAGS + 3], 10);      /* 1024-byte slots */
        CHECK_OK(bc_attach(&r, IPC_CONSUMER)); /* warm up */
        CHECK_OK(ipc_ring_close(&r));
        fds = th_fd_count();
        maps = th_maps_now();
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            memcpy(save, mem + cases[i].off, cases[i].width);
            memcpy(mem + cases[i].off, &cases[i].value, cases[i].width);
            th_ring_attach_rejected(bc_attach, IPC_CONSUMER, cases[i].what,
                                    named ? "named" : "anonymous", fds, maps);
            memcpy(mem + cases[i].off, save, cases[i].width);
            CHECK_OK(bc_attach(&p, IPC_PRODUCER));
            CHECK_OK(bc_attach(&r, IPC_CONSUMER));
            CHECK_ERR(bc_send(&p, i, g_max, 0), 0);
            bc_recv(&r, i, g_max, 0);
            bc_recv(&g_ring, i, g_max, 0);
            CHECK_OK(ipc_ring_close(&r));
            CHECK_OK(ipc_ring_close(&p));
        }
        CHECK_EQ(munmap(mem, (size_t)st.st_size), 0);
        ring_teardown();
    }
}
