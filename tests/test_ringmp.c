/* tests/test_ringmp.c - section 6, the slot kinds: MPMC and MPSC rings between processes.

   Stress messages name their producer and sequence number and carry a check word and a
   pattern derived from both (struct layout in m_fill), so any message can be told apart
   and proven whole. Consumers mark what they get in a bitmap shared by every process (one
   bit per producer and sequence number): a bit set twice is a duplicate, a bit never set
   a loss. Producers publish how far they got (after their commit returned) in the same
   shared memory, so that after SIGKILLs the parent can tell committed from uncommitted.
   A few tests reach into the shared layout that ipc.h documents (the >>ring table): the
   registry at 4096, the sequence words of the slots, the header words. */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define MS      ((int64_t)1000000)
#define US      ((int64_t)1000)
#define KiB     ((size_t)1024)
#define JOIN_MS 10000

#define NP_MAX  8                 /* producers of one test at most */
#define NC_MAX  8                 /* consumers of one test at most */
#define SEQS    (1u << 16)        /* sequence numbers per producer that the bitmap holds */
#define MARK_ID (NP_MAX - 1)      /* producer id of the parent's own messages */
#define CANCEL  0xfffffff0u       /* sequence number written into reservations that are cancelled */
#define MSG_200 IPC_RING_MSG(200) /* 256-byte slots, max_msg 240 */

/* The documented shared layout (version 1). */
#define OFF_VERSION 8
#define OFF_HDRSIZE 12
#define OFF_CAP     16
#define OFF_FLAGS   24
#define OFF_TAIL    128
#define OFF_HEAD    256
#define REG_OFF     4096
#define REG_ENT     64
#define REG_N       128
#define HOLE_BIT    ((uint64_t)1 << 63)

/* ---- helpers ---- */

static size_t page_size(void) {
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* Bytes of the header before the slots: the first page and the registry, page-rounded. */
static size_t hdr_size(void) {
    size_t pg = page_size(), need = REG_OFF + REG_N * REG_ENT;
    return (need + pg - 1) / pg * pg;
}

/* Slots in a ring made with capacity cap and slot size slot: the capacity is a power of
   two, at least a page and two slots. */
static size_t slots_for(size_t cap, size_t slot) {
    size_t c = page_size(), want = cap > 2 * slot ? cap : 2 * slot;
    while (c < want)
        c <<= 1;
    return c / slot;
}

static ipc_ring_opts mp_opts(unsigned flags, size_t cap) {
    ipc_ring_opts o;
    memset(&o, 0, sizeof o);
    o.flags = flags;
    o.capacity = cap;
    return o;
}

/* A timeout for one call: try once, a short wait, or none. */
static int64_t pick_timeout(uint64_t *rs) {
    unsigned k = (unsigned)(th_rnd64(rs) % 8);
    return k == 0 ? 0 : k == 1 ? 2 * MS : IPC_FOREVER;
}

/* A full or empty ring: -EAGAIN for timeout 0, -ETIMEDOUT otherwise. 1 to retry. */
static int retry(long long rc, int64_t to, const char *what) {
    if (rc != -EAGAIN && rc != -ETIMEDOUT) return 0;
    if (to == IPC_FOREVER || (to == 0) != (rc == -EAGAIN))
        th_fail(__FILE__, __LINE__, "%s: timeout %lld gave %lld (%s)", what, (long long)to, rc,
                ipc_strerror((int)rc));
    return 1;
}

/* Fail unless a call with a timeout of want_ms returned after at least want_ms and well
   within a second. */
static void check_waited(int64_t t0, int want_ms, const char *what) {
    int64_t el = ipc_time_now() - t0;
    if (el < want_ms * MS - 100 * US || el >= 1000 * MS)
        th_fail(__FILE__, __LINE__, "%s: a %d ms timeout returned after %.2f ms", what, want_ms,
                th_ms_of(el));
}

/* ---- what parent and children share ---- */

enum { F_READY, F_GO, F_STOP, F_HELD, F_A, F_B, F_C, F_D, F_QUIT };

typedef struct shared {
    int flag[16];
    int rc[16];
    int64_t t[16];
    uint64_t v[16];
    uint32_t intent[NP_MAX]; /* producer p: seq + 1 of the message it is committing */
    uint32_t done[NP_MAX];   /* producer p: messages whose send or commit returned */
    uint32_t got[NC_MAX];    /* consumer c: messages it received */
    uint64_t lost;           /* ipc_ring_stats.lost, summed over the children's handles */
    uint64_t bits[NP_MAX][SEQS / 64];
    th_scrib sc; /* the scribbler test's tallies */
} shared;

static shared *g_sh;

static void sh_map(void) {
    g_sh = (shared *)th_shared_map(sizeof(shared));
}

static void sh_unmap(void) {
    th_shared_unmap(g_sh, sizeof(shared));
    g_sh = NULL;
}

static void flag_set(int i, int v) {
    __atomic_store_n(&g_sh->flag[i], v, __ATOMIC_RELEASE);
}

static int flag_get(int i) {
    return __atomic_load_n(&g_sh->flag[i], __ATOMIC_ACQUIRE);
}

static void flag_add(int i) {
    __atomic_fetch_add(&g_sh->flag[i], 1, __ATOMIC_ACQ_REL);
}

/* Wait (bounded) until flag i reaches at least v. */
static void flag_wait(int i, int v, int ms) {
    char what[16];
    snprintf(what, sizeof what, "flag %d", i);
    th_int_wait(&g_sh->flag[i], v, ms, what);
}

static void add_lost(const ipc_ring *r) {
    ipc_ring_stats st;
    CHECK_OK(ipc_ring_get_stats(r, &st));
    __atomic_fetch_add(&g_sh->lost, st.lost, __ATOMIC_ACQ_REL);
}

static uint64_t lost_of(const ipc_ring *r) {
    ipc_ring_stats st;
    CHECK_OK(ipc_ring_get_stats(r, &st));
    return st.lost;
}

/* ---- stress messages: id, seq, len, check (4 x u32), then a pattern of (id, seq) ---- */

static uint32_t m_check(uint32_t id, uint32_t seq, uint32_t len) {
    return (uint32_t)th_mix64(((uint64_t)id << 32 | seq) ^ 0x6d70) ^ len * 0x9e3779b1u;
}

static unsigned char m_byte(uint32_t id, uint32_t seq, size_t i) {
    return (unsigned char)((unsigned char)(th_mix64((uint64_t)seq * 131 + id) >> 8) + i * 13u +
                           (i >> 7));
}

static void m_fill(void *p, size_t len, uint32_t id, uint32_t seq) {
    unsigned char *b = (unsigned char *)p;
    uint32_t w[4];
    size_t i;
    w[0] = id;
    w[1] = seq;
    w[2] = (uint32_t)len;
    w[3] = m_check(id, seq, (uint32_t)len);
    memcpy(b, w, sizeof w);
    for (i = sizeof w; i < len; i++)
        b[i] = m_byte(id, seq, i);
}

/* Fail unless p holds a whole stress message of n bytes; its id and seq. */
static void m_parse_at(const char *file, int line, const char *what, const void *p, ssize_t n,
                       uint32_t *id, uint32_t *seq) {
    const unsigned char *b = (const unsigned char *)p;
    uint32_t w[4];
    size_t i;
    if (n < 16)
        th_fail(file, line, "%s: %lld (%s), want a message", what, (long long)n,
                ipc_strerror((int)n));
    memcpy(w, b, sizeof w);
    if (w[2] != (uint32_t)n || w[3] != m_check(w[0], w[1], w[2]))
        th_fail(file, line, "%s: %lld bytes, header id %u seq %u len %u: not a message", what,
                (long long)n, w[0], w[1], w[2]);
    for (i = sizeof w; i < (size_t)n; i++)
        if (b[i] != m_byte(w[0], w[1], i))
            th_fail(file, line, "%s: message %u/%u (%lld bytes): byte %zu wrong", what, w[0], w[1],
                    (long long)n, i);
    *id = w[0];
    *seq = w[1];
}
#define m_parse(what, p, n, id, seq) m_parse_at(__FILE__, __LINE__, what, p, n, id, seq)

/* Mark (id, seq) delivered: 1 if it already was (a duplicate). */
static int m_mark(uint32_t id, uint32_t seq) {
    uint64_t bit = (uint64_t)1 << (seq & 63);
    return (__atomic_fetch_or(&g_sh->bits[id][seq >> 6], bit, __ATOMIC_ACQ_REL) & bit) != 0;
}

static int m_marked(uint32_t id, uint32_t seq) {
    return (__atomic_load_n(&g_sh->bits[id][seq >> 6], __ATOMIC_ACQUIRE) >> (seq & 63)) & 1;
}

/* Small messages of any length (1..max_msg) for the size tests: a pattern of seq. */
static void s_fill(void *p, size_t len, uint64_t seq) {
    unsigned char *b = (unsigned char *)p;
    size_t i;
    for (i = 0; i < len; i++)
        b[i] = (unsigned char)(th_mix64(seq) + i * 7u + (i >> 8));
}

static void s_expect_at(int line, const void *p, ssize_t n, size_t len, uint64_t seq) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    if (n != (ssize_t)len)
        th_fail(__FILE__, line, "message %llu: got %lld (%s), want %zu bytes",
                (unsigned long long)seq, (long long)n, ipc_strerror((int)n), len);
    for (i = 0; i < len; i++)
        if (b[i] != (unsigned char)(th_mix64(seq) + i * 7u + (i >> 8)))
            th_fail(__FILE__, line, "message %llu (%zu bytes): byte %zu wrong",
                    (unsigned long long)seq, len, i);
}
#define s_expect(p, n, len, seq) s_expect_at(__LINE__, p, n, len, seq)

/* ---- the ring of a multi-process test ---- */

static char g_name[300]; /* named rings */
static int g_named;      /* 1: children open g_name; 0: they attach g_fd */
static int g_fd = -1;    /* anonymous rings: an fd the children inherit */
static uint32_t g_n;     /* messages per producer */
static int g_np;         /* producers of the test */
static uint64_t g_seed;  /* random seed of the children */
static int g_variant;

/* Make the ring, keeping the creating handle (role) in *own: named (g_name) or anonymous
   (g_fd, a duplicate the children attach by). */
static void ring_make(ipc_ring *own, int role, unsigned flags, size_t cap, int named) {
    ipc_ring_opts o = mp_opts(flags, cap);
    g_named = named;
    g_fd = -1;
    if (named) {
        th_name(g_name, sizeof g_name, "mp");
        CHECK_OK(ipc_ring_create(own, g_name, role, &o));
    } else {
        CHECK_OK(ipc_ring_create(own, NULL, role, &o));
        g_fd = fcntl(ipc_ring_fd(own), F_DUPFD_CLOEXEC, 0);
        CHECK(g_fd >= 0);
    }
}

/* Make the ring and close the creating handle: the children attach the roles they need.
   The creator counted as a producer and a consumer that came and went, so a producer
   alone sees -EPIPE until a consumer attaches, and the reverse: tests attach both before
   traffic starts. */
static void ring_setup(unsigned flags, size_t cap, int named) {
    ipc_ring r;
    ring_make(&r, IPC_PRODUCER | IPC_CONSUMER, flags, cap, named);
    CHECK_OK(ipc_ring_close(&r));
}

static void ring_teardown(void) {
    if (g_named) CHECK_OK(ipc_ring_unlink(g_name));
    if (g_fd >= 0) close(g_fd);
    g_fd = -1;
}

static int ring_attach(ipc_ring *r, int role) {
    return g_named ? ipc_ring_open(r, g_name, role) : ipc_ring_attach_fd(r, g_fd, role);
}

/* The whole shared object, mapped read-write: for tests that play a hostile peer. */
static unsigned char *raw_map(size_t *size) {
    struct stat st;
    unsigned char *m;
    int fd = g_fd;
    if (g_named) {
        char path[400];
        snprintf(path, sizeof path, "/dev/shm%s", g_name);
        fd = open(path, O_RDWR | O_CLOEXEC);
        CHECK(fd >= 0);
    }
    CHECK_EQ(fstat(fd, &st), 0);
    *size = (size_t)st.st_size;
    m = (unsigned char *)mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    if (g_named) close(fd);
    return m;
}

/* Registry entry k of a raw mapping: u64 ppos, u64 cpos, u32 roles. */
static uint64_t *reg_pos(unsigned char *mem, int k, int consumer) {
    return (uint64_t *)(void *)(mem + REG_OFF + (size_t)k * REG_ENT + (consumer ? 8 : 0));
}

static uint32_t reg_role(unsigned char *mem, int k) {
    return __atomic_load_n((uint32_t *)(void *)(mem + REG_OFF + (size_t)k * REG_ENT + 16),
                           __ATOMIC_ACQUIRE);
}

/* The only registry entry whose roles are exactly role (fails if none or several). */
static int reg_find(unsigned char *mem, uint32_t role) {
    int k, found = -1;
    for (k = 0; k < REG_N; k++)
        if (reg_role(mem, k) == role) {
            CHECK(found < 0);
            found = k;
        }
    CHECK(found >= 0);
    return found;
}

/* ---- 1. exactly once, in each producer's order ---- */

/* Length of a stress message: mostly small, sometimes anything up to max_msg. */
static size_t st_len(uint64_t *rs, size_t maxm) {
    uint64_t v = th_rnd64(rs);
    if (v % 16 == 0) return 16 + (size_t)(v >> 8) % (maxm - 15);
    if (v % 64 == 1) return maxm;
    return 16 + (size_t)(v >> 8) % 48;
}

/* Producer `arg`: g_n messages, by send, reserve + commit, shrunken commits, and
   reservations cancelled first (whose content must never show). */
static void st_producer(void *arg) {
    uint32_t id = (uint32_t)(uintptr_t)arg, seq;
    uint64_t rs = g_seed * 1000 + id;
    unsigned char buf[4096];
    ipc_ring p;
    size_t maxm;
    CHECK_OK(ring_attach(&p, IPC_PRODUCER));
    maxm = ipc_ring_max_msg(&p);
    CHECK(maxm >= 16 && maxm <= sizeof buf);
    flag_add(F_READY);
    flag_wait(F_GO, 1, 5000);
    for (seq = 0; seq < g_n; seq++) {
        size_t len = st_len(&rs, maxm), rlen;
        unsigned op = (unsigned)(th_rnd64(&rs) % 8);
        int64_t to = pick_timeout(&rs);
        void *m;
        int rc;
        if (op < 3) {
            m_fill(buf, len, id, seq);
            while (retry(rc = ipc_ring_send(&p, buf, len, to), to, "send")) {
            }
            CHECK_ERR(rc, 0);
        } else {
            if (op == 7) {
                while (retry(rc = ipc_ring_reserve(&p, len, &m, to), to, "reserve")) {
                }
                CHECK_ERR(rc, 0);
                m_fill(m, len, id, CANCEL);
                CHECK_ERR(ipc_ring_commit(&p, 0), 0);
            }
            rlen = op >= 5 ? len + (size_t)(th_rnd64(&rs) % 64) : len;
            if (rlen > maxm) rlen = maxm;
            while (retry(rc = ipc_ring_reserve(&p, rlen, &m, to), to, "reserve")) {
            }
            CHECK_ERR(rc, 0);
            memset(m, 0xee, rlen);
            m_fill(m, len, id, seq);
            CHECK_ERR(ipc_ring_commit(&p, len), 0);
        }
        __atomic_store_n(&g_sh->done[id], seq + 1, __ATOMIC_RELEASE);
    }
    add_lost(&p);
    CHECK_OK(ipc_ring_close(&p));
}

/* Consumer `arg`: until -EPIPE, by recv, peek (sometimes twice) + release, and recv into a
   buffer too small (-EMSGSIZE, the message stays). Every message is whole, new, and later
   than the last one of its producer. */
static void st_consumer(void *arg) {
    uint32_t cid = (uint32_t)(uintptr_t)arg, id, seq;
    uint64_t rs = g_seed * 2000 + cid;
    int64_t last[NP_MAX];
    unsigned char buf[4096];
    ipc_ring c;
    size_t maxm;
    int i;
    for (i = 0; i < NP_MAX; i++)
        last[i] = -1;
    CHECK_OK(ring_attach(&c, IPC_CONSUMER));
    maxm = ipc_ring_max_msg(&c);
    flag_add(F_READY);
    flag_wait(F_GO, 1, 5000);
    for (;;) {
        unsigned op = (unsigned)(th_rnd64(&rs) % 8);
        int64_t to = pick_timeout(&rs);
        const void *m, *m2;
        ssize_t n;
        if (op < 3) {
            n = ipc_ring_recv(&c, buf, op == 0 ? maxm : sizeof buf, to);
            if (n > 0) m_parse("recv", buf, n, &id, &seq);
        } else if (op == 3) {
            n = ipc_ring_recv(&c, buf, 15, to); /* every stress message is longer */
            if (n == -EMSGSIZE) continue;
            if (n >= 0) th_fail(__FILE__, __LINE__, "recv into 15 bytes gave %lld", (long long)n);
        } else {
            n = ipc_ring_peek(&c, &m, to);
            if (n > 0) {
                m_parse("peek", m, n, &id, &seq);
                if (op == 7) {
                    CHECK_EQ(ipc_ring_peek(&c, &m2, 0), n);
                    CHECK(m2 == m);
                }
                CHECK_ERR(ipc_ring_release(&c), 0);
            }
        }
        if (retry(n, to, "recv/peek")) continue;
        if (n == -EPIPE) break;
        CHECK(n > 0);
        if (id >= (uint32_t)g_np || seq >= g_n)
            th_fail(__FILE__, __LINE__, "consumer %u: message %u/%u was never sent", cid, id, seq);
        if ((int64_t)seq <= last[id])
            th_fail(__FILE__, __LINE__, "consumer %u: producer %u's message %u after %lld", cid, id,
                    seq, (long long)last[id]);
        last[id] = seq;
        if (m_mark(id, seq))
            th_fail(__FILE__, __LINE__, "consumer %u: message %u/%u delivered twice", cid, id, seq);
        g_sh->got[cid]++;
    }
    /* -EPIPE stays, and nobody died: nothing was lost */
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EPIPE);
    CHECK_EQ(lost_of(&c), 0);
    CHECK_OK(ipc_ring_close(&c));
}

/* np producers of n messages each, nc consumers, on a ring of 64 slots of 256 bytes. */
static void exactly_once(unsigned flags, int named, int np, int nc, uint32_t n) {
    pid_t pid[NP_MAX + NC_MAX];
    uint32_t total = 0, id, seq;
    int i;
    CHECK(np <= NP_MAX && nc <= NC_MAX && n <= SEQS);
    sh_map();
    ring_setup(flags | MSG_200, 16 * KiB, named);
    g_np = np;
    g_n = n;
    g_seed = (uint64_t)np * 100 + (uint64_t)nc;
    for (i = 0; i < np; i++)
        pid[i] = th_spawn(st_producer, (void *)(uintptr_t)i);
    flag_wait(F_READY, np, 5000); /* producers first: see ring_setup */
    for (i = 0; i < nc; i++)
        pid[np + i] = th_spawn(st_consumer, (void *)(uintptr_t)i);
    flag_wait(F_READY, np + nc, 5000);
    flag_set(F_GO, 1);
    for (i = 0; i < np + nc; i++)
        CHECK_EQ(th_join(pid[i], 30000), 0);
    for (id = 0; id < (uint32_t)np; id++) {
        CHECK_EQ(g_sh->done[id], n);
        for (seq = 0; seq < n; seq++)
            if (!m_marked(id, seq))
                th_fail(__FILE__, __LINE__, "message %u/%u was never delivered", id, seq);
    }
    for (i = 0; i < nc; i++)
        total += g_sh->got[i];
    CHECK_EQ(total, (uint32_t)np * n);
    CHECK_EQ(g_sh->lost, 0);
    ring_teardown();
    sh_unmap();
}

TEST_T(ringmp_exactly_once_mpmc_1p1c_anonymous, 30000) {
    exactly_once(IPC_RING_MPMC, 0, 1, 1, 40000);
}

TEST_T(ringmp_exactly_once_mpmc_3p3c_named, 30000) {
    exactly_once(IPC_RING_MPMC, 1, 3, 3, 12000);
}

TEST_T(ringmp_exactly_once_mpmc_4p1c_anonymous, 30000) {
    exactly_once(IPC_RING_MPMC, 0, 4, 1, 10000);
}

TEST_T(ringmp_exactly_once_mpmc_2p4c_named, 30000) {
    exactly_once(IPC_RING_MPMC, 1, 2, 4, 15000);
}

TEST_T(ringmp_exactly_once_mpsc_4p1c_anonymous, 30000) {
    exactly_once(IPC_RING_MPSC, 0, 4, 1, 10000);
}

TEST_T(ringmp_exactly_once_mpsc_4p1c_named, 30000) {
    exactly_once(IPC_RING_MPSC, 1, 4, 1, 10000);
}

/* One handle holding both roles talks to itself: never -EPIPE (it is its own peer). */
TEST(ringmp_both_roles_one_handle) {
    unsigned kinds[2] = {IPC_RING_MPMC, IPC_RING_MPSC};
    unsigned char buf[256];
    int k;
    for (k = 0; k < 2; k++) {
        ipc_ring_opts o = mp_opts(kinds[k] | MSG_200, 4 * KiB);
        size_t nslots = slots_for(4 * KiB, 256), i;
        uint32_t id, seq;
        ipc_ring r;
        int64_t t0;
        CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER | IPC_CONSUMER, &o));
        for (i = 0; i < 1000; i++) {
            m_fill(buf, 16 + i % 200, 0, (uint32_t)i);
            CHECK_ERR(ipc_ring_send(&r, buf, 16 + i % 200, 0), 0);
            m_parse("recv", buf, ipc_ring_recv(&r, buf, sizeof buf, 0), &id, &seq);
            CHECK_EQ(seq, i);
        }
        CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
        t0 = ipc_time_now();
        CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 20 * MS), -ETIMEDOUT);
        check_waited(t0, 20, "recv on an empty ring, both roles");
        for (i = 0; i < nslots; i++)
            CHECK_ERR(ipc_ring_send(&r, buf, 20, 0), 0);
        CHECK_ERR(ipc_ring_send(&r, buf, 20, 0), -EAGAIN);
        t0 = ipc_time_now();
        CHECK_ERR(ipc_ring_send(&r, buf, 20, 20 * MS), -ETIMEDOUT);
        check_waited(t0, 20, "send on a full ring, both roles");
        for (i = 0; i < nslots; i++)
            CHECK_EQ(ipc_ring_recv(&r, buf, sizeof buf, 0), 20);
        CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
        CHECK_EQ(lost_of(&r), 0);
        CHECK_OK(ipc_ring_close(&r));
    }
}

/* Child `arg` of the test below: a handle with both roles sends g_n messages of its own
   and receives whatever comes, until every message of both children has arrived. */
static void both_roles_child(void *arg) {
    uint32_t me = (uint32_t)(uintptr_t)arg, sent = 0, id, seq;
    int64_t last[2] = {-1, -1}, dl = ipc_deadline_make(8000 * MS);
    unsigned char buf[256];
    ipc_ring r;
    CHECK_OK(ring_attach(&r, IPC_PRODUCER | IPC_CONSUMER));
    flag_add(F_READY);
    flag_wait(F_READY, 2, 5000);
    while (sent < g_n || __atomic_load_n(&g_sh->v[0], __ATOMIC_ACQUIRE) < 2 * (uint64_t)g_n) {
        ssize_t n;
        int rc;
        if (ipc_deadline_left(dl) == 0)
            th_fail(__FILE__, __LINE__, "child %u: sent %u, all got %llu after 8 s", me, sent,
                    (unsigned long long)g_sh->v[0]);
        if (sent < g_n) {
            m_fill(buf, 16 + sent % 100, me, sent);
            rc = ipc_ring_send(&r, buf, 16 + sent % 100, 0);
            if (rc == 0)
                sent++;
            else
                CHECK_ERR(rc, -EAGAIN);
        }
        n = ipc_ring_recv(&r, buf, sizeof buf, sent < g_n ? 0 : 1 * MS);
        if (n == -EAGAIN || n == -ETIMEDOUT) continue;
        m_parse("recv", buf, n, &id, &seq);
        CHECK(id < 2 && seq < g_n);
        CHECK((int64_t)seq > last[id]);
        last[id] = seq;
        CHECK(!m_mark(id, seq));
        __atomic_fetch_add(&g_sh->v[0], 1, __ATOMIC_ACQ_REL);
    }
    CHECK_OK(ipc_ring_close(&r));
}

/* Two processes, each with one handle holding both roles, on one MPMC ring. */
TEST(ringmp_both_roles_two_processes) {
    pid_t a, b;
    uint32_t seq;
    sh_map();
    ring_setup(IPC_RING_MPMC | MSG_200, 4 * KiB, 0);
    g_n = 5000;
    a = th_spawn(both_roles_child, (void *)(uintptr_t)0);
    b = th_spawn(both_roles_child, (void *)(uintptr_t)1);
    CHECK_EQ(th_join(a, JOIN_MS), 0);
    CHECK_EQ(th_join(b, JOIN_MS), 0);
    for (seq = 0; seq < g_n; seq++)
        CHECK(m_marked(0, seq) && m_marked(1, seq));
    CHECK_EQ(g_sh->v[0], 2 * g_n);
    ring_teardown();
    sh_unmap();
}

/* ---- 2. sizes and the rules of the calls ---- */

TEST(ringmp_max_msg_and_slot_count) {
    static const struct {
        size_t n, max;
    } cases[] = {{1, 16},    {16, 16},     {17, 48},     {48, 48},     {200, 240},    {240, 240},
                 {241, 496}, {1000, 1008}, {4080, 4080}, {4081, 8176}, {65520, 65520}};
    unsigned char buf[64];
    size_t i;
    int k;
    for (k = 0; k < 2; k++) {
        unsigned kind = k ? IPC_RING_MPSC : IPC_RING_MPMC;
        ipc_ring r;
        ipc_ring_opts o = mp_opts(kind, 0);
        /* default: 256-byte slots, 1 MiB */
        CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o));
        CHECK_EQ(ipc_ring_max_msg(&r), 240);
        CHECK_OK(ipc_ring_close(&r));
        CHECK_EQ(ipc_ring_max_msg(&r), 0);
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            size_t slot = cases[i].max + 16, nslots = slots_for(8 * KiB, slot), sent = 0;
            o = mp_opts(kind | IPC_RING_MSG(cases[i].n), 8 * KiB);
            CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o));
            if (ipc_ring_max_msg(&r) != cases[i].max)
                th_fail(__FILE__, __LINE__, "IPC_RING_MSG(%zu): max_msg %zu, want %zu", cases[i].n,
                        ipc_ring_max_msg(&r), cases[i].max);
            /* one message per slot: the ring holds capacity / slot of them, whatever size */
            memset(buf, 1, sizeof buf);
            while (ipc_ring_send(&r, buf, 1, 0) == 0)
                sent++;
            CHECK_ERR(ipc_ring_send(&r, buf, 1, 0), -EAGAIN);
            if (sent != nslots)
                th_fail(__FILE__, __LINE__,
                        "IPC_RING_MSG(%zu): %zu one-byte messages fit, want %zu", cases[i].n, sent,
                        nslots);
            CHECK_OK(ipc_ring_close(&r));
        }
    }
}

/* Producer child of the size test: g_n messages of 1..max_msg bytes (the first two at
   the extremes), by send or reserve + commit. */
static void size_producer(void *arg) {
    unsigned char *buf;
    uint64_t seq;
    ipc_ring p;
    size_t maxm;
    (void)arg;
    CHECK_OK(ring_attach(&p, IPC_PRODUCER));
    maxm = ipc_ring_max_msg(&p);
    buf = (unsigned char *)malloc(maxm);
    CHECK(buf != NULL);
    flag_set(F_READY, 1);
    for (seq = 0; seq < g_n; seq++) {
        size_t len = seq == 0 ? maxm : seq == 1 ? 1 : 1 + (size_t)(th_mix64(seq) % maxm);
        void *m;
        if (seq % 2) {
            s_fill(buf, len, seq);
            CHECK_ERR(ipc_ring_send(&p, buf, len, 5000 * MS), 0);
        } else {
            CHECK_ERR(ipc_ring_reserve(&p, len, &m, 5000 * MS), 0);
            s_fill(m, len, seq);
            CHECK_ERR(ipc_ring_commit(&p, len), 0);
        }
    }
    CHECK_OK(ipc_ring_close(&p));
    free(buf);
}

/* Messages of every size cross between processes whole; receive buffers of exactly the
   message's size are enough. */
TEST(ringmp_message_sizes_across_processes) {
    static const unsigned flags[] = {IPC_RING_MPMC | IPC_RING_MSG(16), IPC_RING_MPSC | MSG_200,
                                     IPC_RING_MPMC | IPC_RING_MSG(1000),
                                     IPC_RING_MPSC | IPC_RING_MSG(4000)};
    size_t k;
    sh_map();
    for (k = 0; k < sizeof flags / sizeof flags[0]; k++) {
        unsigned char *buf;
        uint64_t seq;
        ipc_ring c;
        size_t maxm;
        pid_t pid;
        memset(g_sh, 0, sizeof *g_sh);
        ring_make(&c, IPC_CONSUMER, flags[k], 16 * KiB, (int)(k & 1));
        g_n = 400;
        pid = th_spawn(size_producer, NULL);
        maxm = ipc_ring_max_msg(&c);
        buf = (unsigned char *)malloc(maxm);
        CHECK(buf != NULL);
        for (seq = 0; seq < g_n; seq++) {
            size_t len = seq == 0 ? maxm : seq == 1 ? 1 : 1 + (size_t)(th_mix64(seq) % maxm);
            const void *m;
            if (seq % 3 == 0) {
                ssize_t n = ipc_ring_peek(&c, &m, 5000 * MS);
                s_expect(m, n, len, seq);
                CHECK_ERR(ipc_ring_release(&c), 0);
            } else {
                s_expect(buf, ipc_ring_recv(&c, buf, len, 5000 * MS), len, seq);
            }
        }
        CHECK_ERR(ipc_ring_recv(&c, buf, maxm, 5000 * MS), -EPIPE);
        CHECK_EQ(th_join(pid, JOIN_MS), 0);
        CHECK_OK(ipc_ring_close(&c));
        free(buf);
        ring_teardown();
    }
    sh_unmap();
}

TEST(ringmp_call_rules) {
    int k;
    for (k = 0; k < 2; k++) {
        ipc_ring_opts o = mp_opts((k ? IPC_RING_MPSC : IPC_RING_MPMC) | IPC_RING_MSG(1000), 0);
        unsigned char buf[2048], big[2048];
        const void *m, *m2;
        ipc_ring p, c;
        size_t maxm;
        void *w, *w2;
        ssize_t n;
        CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
        CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&p), IPC_CONSUMER));
        maxm = ipc_ring_max_msg(&p);
        CHECK_EQ(maxm, 1008);
        CHECK_EQ(ipc_ring_max_msg(&c), maxm);
        memset(big, 0x33, sizeof big);
        /* too big, empty, NULL */
        CHECK_ERR(ipc_ring_send(&p, big, maxm + 1, 0), -EMSGSIZE);
        CHECK_ERR(ipc_ring_send(&p, big, sizeof big, IPC_FOREVER), -EMSGSIZE);
        CHECK_ERR(ipc_ring_reserve(&p, maxm + 1, &w, 0), -EMSGSIZE);
        CHECK_ERR(ipc_ring_reserve(&p, SIZE_MAX, &w, 0), -EMSGSIZE);
        CHECK_ERR(ipc_ring_send(&p, big, 0, 0), -EINVAL);
        CHECK_ERR(ipc_ring_reserve(&p, 0, &w, 0), -EINVAL);
        CHECK_ERR(ipc_ring_send(&p, NULL, 5, 0), -EINVAL);
        CHECK_ERR(ipc_ring_reserve(&p, 5, NULL, 0), -EINVAL);
        CHECK_ERR(ipc_ring_send(&p, big, 5, -2), -EINVAL);
        CHECK_ERR(ipc_ring_recv(&c, NULL, 5, 0), -EINVAL);
        CHECK_ERR(ipc_ring_recv(&c, buf, 0, 0), -EINVAL);
        CHECK_ERR(ipc_ring_peek(&c, NULL, 0), -EINVAL);
        CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, -2), -EINVAL);
        /* the wrong role */
        CHECK_ERR(ipc_ring_send(&c, big, 5, 0), -EINVAL);
        CHECK_ERR(ipc_ring_recv(&p, buf, sizeof buf, 0), -EINVAL);
        CHECK_ERR(ipc_ring_commit(&c, 0), -EINVAL);
        CHECK_ERR(ipc_ring_release(&p), -EINVAL);
        /* none of that left anything behind: empty, and a full-size message goes through */
        CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
        s_fill(big, maxm, 1);
        CHECK_ERR(ipc_ring_send(&p, big, maxm, 0), 0);
        s_expect(buf, ipc_ring_recv(&c, buf, sizeof buf, 0), maxm, 1);
        /* a buffer one byte short: -EMSGSIZE and the message stays, for recv or peek */
        s_fill(big, 100, 2);
        CHECK_ERR(ipc_ring_send(&p, big, 100, 0), 0);
        CHECK_ERR(ipc_ring_recv(&c, buf, 99, 0), -EMSGSIZE);
        CHECK_ERR(ipc_ring_recv(&c, buf, 1, 1000 * MS), -EMSGSIZE);
        s_expect(buf, ipc_ring_recv(&c, buf, 100, 0), 100, 2);
        /* peek twice: the same message; recv too small after a peek: it stays peeked */
        s_fill(big, 300, 3);
        CHECK_ERR(ipc_ring_send(&p, big, 300, 0), 0);
        s_fill(big, 40, 4);
        CHECK_ERR(ipc_ring_send(&p, big, 40, 0), 0);
        CHECK_ERR(ipc_ring_release(&c), -EINVAL); /* nothing peeked */
        n = ipc_ring_peek(&c, &m, 0);
        s_expect(m, n, 300, 3);
        n = ipc_ring_peek(&c, &m2, 0);
        s_expect(m2, n, 300, 3);
        CHECK(m == m2);
        CHECK_ERR(ipc_ring_recv(&c, buf, 299, 0), -EMSGSIZE);
        n = ipc_ring_peek(&c, &m2, 0);
        s_expect(m2, n, 300, 3);
        CHECK_ERR(ipc_ring_release(&c), 0);
        CHECK_ERR(ipc_ring_release(&c), -EINVAL);
        /* peek, then recv: the peeked message is the one received */
        n = ipc_ring_peek(&c, &m, 0);
        s_expect(m, n, 40, 4);
        s_expect(buf, ipc_ring_recv(&c, buf, sizeof buf, 0), 40, 4);
        CHECK_ERR(ipc_ring_release(&c), -EINVAL);
        CHECK_ERR(ipc_ring_peek(&c, &m, 0), -EAGAIN);
        CHECK_ERR(ipc_ring_release(&c), -EINVAL);
        /* reserve twice: -EINVAL, the first stands; commit more than reserved: -EINVAL,
           the reservation stands; a shrunken commit */
        CHECK_ERR(ipc_ring_commit(&p, 1), -EINVAL); /* nothing reserved */
        CHECK_ERR(ipc_ring_reserve(&p, 200, &w, 0), 0);
        CHECK_ERR(ipc_ring_reserve(&p, 10, &w2, 0), -EINVAL);
        CHECK_ERR(ipc_ring_send(&p, big, 10, 0), -EINVAL);
        CHECK_ERR(ipc_ring_commit(&p, 201), -EINVAL);
        CHECK_ERR(ipc_ring_commit(&p, maxm), -EINVAL);
        s_fill(w, 150, 5);
        CHECK_ERR(ipc_ring_commit(&p, 150), 0);
        CHECK_ERR(ipc_ring_commit(&p, 150), -EINVAL);
        s_expect(buf, ipc_ring_recv(&c, buf, sizeof buf, 0), 150, 5);
        /* commit(0) cancels: never seen, not lost; the next message comes */
        CHECK_ERR(ipc_ring_reserve(&p, 64, &w, 0), 0);
        s_fill(w, 64, 6);
        CHECK_ERR(ipc_ring_commit(&p, 0), 0);
        CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
        CHECK_ERR(ipc_ring_peek(&c, &m, 0), -EAGAIN);
        s_fill(big, 64, 7);
        CHECK_ERR(ipc_ring_send(&p, big, 64, 0), 0);
        s_expect(buf, ipc_ring_recv(&c, buf, sizeof buf, 0), 64, 7);
        CHECK_EQ(lost_of(&c), 0);
        CHECK_EQ(lost_of(&p), 0);
        CHECK_OK(ipc_ring_close(&c));
        CHECK_OK(ipc_ring_close(&p));
        /* on a closed handle */
        CHECK_ERR(ipc_ring_send(&p, big, 1, 0), -EBADF);
        CHECK_ERR(ipc_ring_recv(&c, buf, 1, 0), -EBADF);
        CHECK_ERR(ipc_ring_close(&c), -EBADF);
    }
}

/* Closing a handle cancels its reservation (nobody sees it, nothing is lost) and consumes
   its peeked message (nobody else gets it, and its slot is free again). */
TEST(ringmp_close_cancels_reservation_consumes_peek) {
    int k;
    for (k = 0; k < 2; k++) {
        ipc_ring_opts o = mp_opts((k ? IPC_RING_MPSC : IPC_RING_MPMC) | MSG_200, 4 * KiB);
        size_t nslots = slots_for(4 * KiB, 256), i;
        unsigned char buf[256];
        ipc_ring p, p2, c, c2;
        const void *m;
        ssize_t n;
        void *w;
        CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
        CHECK_OK(ipc_ring_attach_fd(&p2, ipc_ring_fd(&p), IPC_PRODUCER));
        CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&p), IPC_CONSUMER));
        CHECK_ERR(ipc_ring_reserve(&p2, 100, &w, 0), 0);
        s_fill(w, 100, 1);
        CHECK_OK(ipc_ring_close(&p2));
        CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
        s_fill(buf, 50, 2);
        CHECK_ERR(ipc_ring_send(&p, buf, 50, 0), 0);
        s_fill(buf, 60, 3);
        CHECK_ERR(ipc_ring_send(&p, buf, 60, 0), 0);
        s_expect(buf, ipc_ring_recv(&c, buf, sizeof buf, 0), 50, 2);
        /* the consumer peeks 3 and closes: a new consumer never sees 3 */
        n = ipc_ring_peek(&c, &m, 0);
        s_expect(m, n, 60, 3);
        CHECK_OK(ipc_ring_close(&c));
        CHECK_OK(ipc_ring_attach_fd(&c2, ipc_ring_fd(&p), IPC_CONSUMER));
        CHECK_ERR(ipc_ring_recv(&c2, buf, sizeof buf, 0), -EAGAIN);
        /* every slot is free: a whole ring's worth goes in at once */
        for (i = 0; i < nslots; i++) {
            s_fill(buf, 20, 10 + i);
            CHECK_ERR(ipc_ring_send(&p, buf, 20, 0), 0);
        }
        CHECK_ERR(ipc_ring_send(&p, buf, 20, 0), -EAGAIN);
        for (i = 0; i < nslots; i++)
            s_expect(buf, ipc_ring_recv(&c2, buf, sizeof buf, 0), 20, 10 + i);
        CHECK_EQ(lost_of(&p), 0);
        CHECK_EQ(lost_of(&c2), 0);
        CHECK_OK(ipc_ring_close(&c2));
        CHECK_OK(ipc_ring_close(&p));
    }
}

/* ---- 3. blocking, timeouts, wake-ups, signals ---- */

TEST(ringmp_empty_and_full_timeouts) {
    int k, peer;
    for (k = 0; k < 2; k++)
        for (peer = 0; peer < 2; peer++) {
            /* peer 0: the other role never attached (it may still come: wait, no -EPIPE) */
            ipc_ring_opts o = mp_opts((k ? IPC_RING_MPSC : IPC_RING_MPMC) | MSG_200, 4 * KiB);
            size_t nslots = slots_for(4 * KiB, 256), i;
            unsigned char buf[256];
            ipc_ring p, c;
            const void *m;
            int64_t t0;
            void *w;
            memset(buf, 7, sizeof buf);
            CHECK_OK(ipc_ring_create(&c, NULL, IPC_CONSUMER, &o));
            if (peer) CHECK_OK(ipc_ring_attach_fd(&p, ipc_ring_fd(&c), IPC_PRODUCER));
            CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
            CHECK_ERR(ipc_ring_peek(&c, &m, 0), -EAGAIN);
            t0 = ipc_time_now();
            CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
            check_waited(t0, 50, "recv on an empty ring");
            t0 = ipc_time_now();
            CHECK_ERR(ipc_ring_peek(&c, &m, 50 * MS), -ETIMEDOUT);
            check_waited(t0, 50, "peek on an empty ring");
            CHECK_OK(ipc_ring_close(&c));
            if (peer) CHECK_OK(ipc_ring_close(&p));

            CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
            if (peer) CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&p), IPC_CONSUMER));
            for (i = 0; i < nslots; i++)
                CHECK_ERR(ipc_ring_send(&p, buf, 1 + i, 0), 0);
            CHECK_ERR(ipc_ring_send(&p, buf, 1, 0), -EAGAIN);
            CHECK_ERR(ipc_ring_reserve(&p, 1, &w, 0), -EAGAIN);
            t0 = ipc_time_now();
            CHECK_ERR(ipc_ring_send(&p, buf, 1, 50 * MS), -ETIMEDOUT);
            check_waited(t0, 50, "send on a full ring");
            t0 = ipc_time_now();
            CHECK_ERR(ipc_ring_reserve(&p, 1, &w, 50 * MS), -ETIMEDOUT);
            check_waited(t0, 50, "reserve on a full ring");
            CHECK_ERR(ipc_ring_commit(&p, 1), -EINVAL); /* a failed reserve holds nothing */
            if (peer) {
                for (i = 0; i < nslots; i++)
                    CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, 0), 1 + i);
                CHECK_OK(ipc_ring_close(&c));
            }
            CHECK_OK(ipc_ring_close(&p));
        }
}

/* Child: attach role g_variant with spin_ns left adaptive, flag READY, wait for flag A,
   sleep 50 ms, then send one message (producer) or receive one (consumer); report its
   stats.wakes in v[1]. */
static void waker(void *arg) {
    unsigned char buf[64];
    ipc_ring_stats st;
    ipc_ring r;
    (void)arg;
    CHECK_OK(ring_attach(&r, g_variant));
    flag_set(F_READY, 1);
    flag_wait(F_A, 1, 5000);
    th_sleep_ms(50);
    if (g_variant == IPC_PRODUCER) {
        s_fill(buf, 33, 1);
        g_sh->t[0] = ipc_time_now();
        CHECK_ERR(ipc_ring_send(&r, buf, 33, 0), 0);
    } else {
        g_sh->t[0] = ipc_time_now();
        s_expect(buf, ipc_ring_recv(&r, buf, sizeof buf, 0), 33, 0);
    }
    CHECK_OK(ipc_ring_get_stats(&r, &st));
    g_sh->v[1] = st.wakes;
    flag_set(F_B, 1);
    flag_wait(F_QUIT, 1, 5000);
    CHECK_OK(ipc_ring_close(&r));
}

/* A consumer asleep on an empty ring is woken by a producer in another process, and a
   producer asleep on a full ring by a consumer there; stats count the sleeps and wakes. */
TEST(ringmp_sleepers_woken_across_processes) {
    int k, side;
    sh_map();
    for (k = 0; k < 2; k++)
        for (side = 0; side < 2; side++) {
            /* side 0: the parent consumes and sleeps; side 1: the parent produces */
            unsigned kind = k ? IPC_RING_MPSC : IPC_RING_MPMC;
            ipc_ring_opts o = mp_opts(kind | MSG_200, 4 * KiB);
            int mine = side ? IPC_PRODUCER : IPC_CONSUMER;
            unsigned char buf[64];
            ipc_ring_stats st;
            ipc_ring r;
            int64_t t0, t1;
            pid_t pid;
            memset(g_sh, 0, sizeof *g_sh);
            o.spin_ns = 1; /* sleep at once: the other side has to wake us */
            CHECK_OK(ipc_ring_create(&r, NULL, mine, &o));
            g_named = 0;
            g_fd = ipc_ring_fd(&r);
            g_variant = IPC_PRODUCER + IPC_CONSUMER - mine;
            pid = th_spawn(waker, NULL);
            flag_wait(F_READY, 1, 5000);
            if (side) { /* fill, the one message the child receives first */
                s_fill(buf, 33, 0);
                CHECK_ERR(ipc_ring_send(&r, buf, 33, 0), 0);
                while (ipc_ring_send(&r, buf, 5, 0) == 0) {
                }
            }
            CHECK_OK(ipc_ring_get_stats(&r, &st));
            CHECK_EQ(st.sleeps, 0);
            flag_set(F_A, 1);
            t0 = ipc_time_now();
            if (side)
                CHECK_ERR(ipc_ring_send(&r, buf, 5, 3000 * MS), 0);
            else
                s_expect(buf, ipc_ring_recv(&r, buf, sizeof buf, 3000 * MS), 33, 1);
            t1 = ipc_time_now();
            flag_wait(F_B, 1, 5000);
            if (t1 - t0 < 40 * MS || t1 - g_sh->t[0] > 1000 * MS)
                th_fail(__FILE__, __LINE__,
                        "kind %d side %d: waited %.1f ms, %.1f ms after the peer", k, side,
                        th_ms_of(t1 - t0), th_ms_of(t1 - g_sh->t[0]));
            CHECK_OK(ipc_ring_get_stats(&r, &st));
            CHECK(st.sleeps >= 1);
            CHECK(g_sh->v[1] >= 1); /* the peer's FUTEX_WAKE */
            flag_set(F_QUIT, 1);
            CHECK_EQ(th_join(pid, JOIN_MS), 0);
            CHECK_OK(ipc_ring_close(&r));
            g_fd = -1;
        }
    sh_unmap();
}

/* Child: producer of g_n messages with a 1 ms pause every 16, so the consumer sleeps. */
static void slow_producer(void *arg) {
    unsigned char buf[256];
    uint32_t seq;
    ipc_ring p;
    (void)arg;
    CHECK_OK(ring_attach(&p, IPC_PRODUCER));
    flag_set(F_READY, 1);
    flag_wait(F_GO, 1, 5000);
    for (seq = 0; seq < g_n; seq++) {
        if (seq % 16 == 0) th_sleep_ms(1);
        m_fill(buf, 16 + seq % 200, 0, seq);
        CHECK_ERR(ipc_ring_send(&p, buf, 16 + seq % 200, 5000 * MS), 0);
    }
    CHECK_OK(ipc_ring_close(&p));
}

/* Child: consumer of g_n messages with a 1 ms pause every 8, so the producer sleeps;
   then -EPIPE. */
static void slow_consumer(void *arg) {
    unsigned char buf[256];
    uint32_t seq, id, got;
    ipc_ring c;
    (void)arg;
    CHECK_OK(ring_attach(&c, IPC_CONSUMER));
    flag_set(F_READY, 1);
    flag_wait(F_GO, 1, 5000);
    for (seq = 0; seq < g_n; seq++) {
        if (seq % 8 == 0) th_sleep_ms(1);
        m_parse("recv", buf, ipc_ring_recv(&c, buf, sizeof buf, 5000 * MS), &id, &got);
        CHECK_EQ(id, 0);
        CHECK_EQ(got, seq);
    }
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 5000 * MS), -EPIPE);
    CHECK_OK(ipc_ring_close(&c));
}

/* Blocking calls in a storm of signals (EINTR every 100 us): nothing lost or doubled,
   every deadline kept. */
TEST(ringmp_signal_storm) {
    int k;
    sh_map();
    for (k = 0; k < 2; k++) {
        unsigned kind = k ? IPC_RING_MPSC : IPC_RING_MPMC;
        unsigned char buf[256];
        uint32_t seq, id, got;
        ipc_ring r, x;
        int64_t t0;
        pid_t pid;
        int i;
        /* blocking recv, the producer in another process */
        memset(g_sh, 0, sizeof *g_sh);
        ring_setup(kind | MSG_200, 4 * KiB, k);
        g_n = 400;
        pid = th_spawn(slow_producer, NULL);
        flag_wait(F_READY, 1, 5000);
        CHECK_OK(ring_attach(&r, IPC_CONSUMER));
        th_storm_start();
        flag_set(F_GO, 1);
        for (seq = 0; seq < g_n; seq++) {
            m_parse("recv in a storm", buf, ipc_ring_recv(&r, buf, sizeof buf, IPC_FOREVER), &id,
                    &got);
            CHECK_EQ(got, seq);
        }
        CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, IPC_FOREVER), -EPIPE);
        th_storm_stop();
        CHECK(th_storm_count() > 20);
        CHECK_EQ(th_join(pid, JOIN_MS), 0);
        /* timeouts in the storm: empty, then full */
        CHECK_OK(ring_attach(&x, IPC_PRODUCER));
        th_storm_start();
        for (i = 0; i < 3; i++) {
            t0 = ipc_time_now();
            CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
            check_waited(t0, 50, "recv in a signal storm");
        }
        while (ipc_ring_send(&x, buf, 8, 0) == 0) {
        }
        for (i = 0; i < 3; i++) {
            t0 = ipc_time_now();
            CHECK_ERR(ipc_ring_send(&x, buf, 8, 50 * MS), -ETIMEDOUT);
            check_waited(t0, 50, "send in a signal storm");
        }
        th_storm_stop();
        CHECK_OK(ipc_ring_close(&x));
        CHECK_OK(ipc_ring_close(&r));
        ring_teardown();

        /* blocking send, the consumer in another process */
        memset(g_sh, 0, sizeof *g_sh);
        ring_setup(kind | MSG_200, 4 * KiB, !k);
        CHECK_OK(ring_attach(&r, IPC_PRODUCER));
        pid = th_spawn(slow_consumer, NULL);
        flag_wait(F_READY, 1, 5000);
        th_storm_start();
        flag_set(F_GO, 1);
        for (seq = 0; seq < g_n; seq++) {
            m_fill(buf, 16 + seq % 200, 0, seq);
            CHECK_ERR(ipc_ring_send(&r, buf, 16 + seq % 200, IPC_FOREVER), 0);
        }
        th_storm_stop();
        CHECK(th_storm_count() > 20);
        CHECK_OK(ipc_ring_close(&r));
        CHECK_EQ(th_join(pid, JOIN_MS), 0);
        ring_teardown();
    }
    sh_unmap();
}

/* ---- 4. -EPIPE ---- */

/* Child: producer `arg` sends g_n messages when flag A reaches its turn (arg + 1), then
   closes (flag B counts it), or with g_variant set, sleeps until killed. */
static void turn_producer(void *arg) {
    uint32_t id = (uint32_t)(uintptr_t)arg, seq;
    unsigned char buf[256];
    ipc_ring p;
    CHECK_OK(ring_attach(&p, IPC_PRODUCER));
    flag_add(F_READY);
    flag_wait(F_A, (int)id + 1, 5000);
    for (seq = 0; seq < g_n; seq++) {
        m_fill(buf, 20 + seq, id, seq);
        CHECK_ERR(ipc_ring_send(&p, buf, 20 + seq, 5000 * MS), 0);
    }
    if (g_variant) {
        flag_add(F_B);
        th_sleep_ms(20000);
    }
    CHECK_OK(ipc_ring_close(&p));
    flag_add(F_B);
}

/* Receive producer id's g_n messages, in order. */
static void recv_turn(ipc_ring *c, uint32_t id) {
    unsigned char buf[256];
    uint32_t seq, gid, gseq;
    for (seq = 0; seq < g_n; seq++) {
        m_parse("recv", buf, ipc_ring_recv(c, buf, sizeof buf, 3000 * MS), &gid, &gseq);
        CHECK_EQ(gid, id);
        CHECK_EQ(gseq, seq);
    }
}

/* Consumers see -EPIPE once every producer that attached is gone (closed or killed) and
   the ring is drained; not while one remains, even idle. */
TEST(ringmp_epipe_for_consumers_after_every_producer) {
    int k, die;
    sh_map();
    for (k = 0; k < 2; k++)
        for (die = 0; die < 2; die++) {
            unsigned char buf[256];
            pid_t pid[3];
            int64_t t0;
            ipc_ring c;
            int i;
            memset(g_sh, 0, sizeof *g_sh);
            ring_setup((k ? IPC_RING_MPSC : IPC_RING_MPMC) | MSG_200, 4 * KiB, die);
            g_n = 10;
            g_variant = die;
            for (i = 0; i < 3; i++)
                pid[i] = th_spawn(turn_producer, (void *)(uintptr_t)i);
            flag_wait(F_READY, 3, 5000);
            CHECK_OK(ring_attach(&c, IPC_CONSUMER));
            for (i = 0; i < 3; i++) {
                flag_set(F_A, i + 1);
                flag_wait(F_B, i + 1, 5000); /* all sent and closed (or sleeping) */
                if (die) {
                    kill(pid[i], SIGKILL);
                    CHECK_EQ(th_join(pid[i], JOIN_MS), 128 + SIGKILL);
                }
                recv_turn(&c, (uint32_t)i); /* what was committed before close or death */
                if (i < 2) {                /* producers remain: empty, not -EPIPE */
                    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
                    t0 = ipc_time_now();
                    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 150 * MS), -ETIMEDOUT);
                    check_waited(t0, 150, "recv with producers left");
                }
            }
            t0 = ipc_time_now();
            CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 3000 * MS), -EPIPE);
            if (ipc_time_now() - t0 >= 1000 * MS)
                th_fail(__FILE__, __LINE__, "-EPIPE after %.1f ms", th_ms_of(ipc_time_now() - t0));
            CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EPIPE);
            CHECK_ERR(ipc_ring_peek(&c, (const void **)&t0, 50 * MS), -EPIPE);
            for (i = 0; i < 3; i++)
                if (!die) CHECK_EQ(th_join(pid[i], JOIN_MS), 0);
            CHECK_OK(ipc_ring_close(&c));
            ring_teardown();
        }
    sh_unmap();
}

/* Child: consumer that receives one message, flags READY... then closes when flag A
   reaches arg + 1, or is killed (g_variant). */
static void turn_consumer(void *arg) {
    uint32_t me = (uint32_t)(uintptr_t)arg;
    unsigned char buf[256];
    ipc_ring c;
    CHECK_OK(ring_attach(&c, IPC_CONSUMER));
    flag_add(F_READY);
    flag_wait(F_A, (int)me + 1, 5000);
    CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, 3000 * MS), 20);
    if (g_variant) {
        flag_add(F_B);
        th_sleep_ms(20000);
    }
    CHECK_OK(ipc_ring_close(&c));
    flag_add(F_B);
}

/* Producers see -EPIPE once every consumer that attached is gone: at once (even with room)
   when they all closed, when the ring is full (room cannot come) when they died. A new
   consumer makes the ring usable again. */
TEST(ringmp_epipe_for_producers_after_every_consumer) {
    int k, die;
    sh_map();
    for (k = 0; k < 2; k++)
        for (die = 0; die < 2; die++) {
            int nc = k ? 1 : 2, i;
            unsigned char buf[256];
            ipc_ring p, c;
            pid_t pid[2];
            int64_t t0;
            void *w;
            memset(g_sh, 0, sizeof *g_sh);
            memset(buf, 1, sizeof buf);
            ring_setup((k ? IPC_RING_MPSC : IPC_RING_MPMC) | MSG_200, 4 * KiB, !die);
            g_variant = die;
            CHECK_OK(ring_attach(&p, IPC_PRODUCER));
            /* MPSC: one consumer at a time, so the second comes after the first is gone */
            for (i = 0; i < nc; i++)
                pid[i] = th_spawn(turn_consumer, (void *)(uintptr_t)i);
            flag_wait(F_READY, nc, 5000);
            for (i = 0; i < nc; i++) {
                CHECK_ERR(ipc_ring_send(&p, buf, 20, 0), 0);
                flag_set(F_A, i + 1);
                flag_wait(F_B, i + 1, 5000);
                if (die) {
                    kill(pid[i], SIGKILL);
                    CHECK_EQ(th_join(pid[i], JOIN_MS), 128 + SIGKILL);
                } else {
                    CHECK_EQ(th_join(pid[i], JOIN_MS), 0);
                }
                if (i + 1 < nc) { /* a consumer remains */
                    CHECK_ERR(ipc_ring_send(&p, buf, 20, 0), 0);
                    CHECK_OK(ipc_ring_reserve(&p, 20, &w, 0));
                    CHECK_OK(ipc_ring_commit(&p, 0));
                }
            }
            if (!die) {
                CHECK_ERR(ipc_ring_send(&p, buf, 20, 0), -EPIPE);
                CHECK_ERR(ipc_ring_send(&p, buf, 20, 50 * MS), -EPIPE);
                CHECK_ERR(ipc_ring_reserve(&p, 20, &w, IPC_FOREVER), -EPIPE);
            } else {
                int rc;
                t0 = ipc_time_now();
                while ((rc = ipc_ring_send(&p, buf, 20, 2000 * MS)) == 0) {
                }
                CHECK_ERR(rc, -EPIPE);
                if (ipc_time_now() - t0 >= 1000 * MS)
                    th_fail(__FILE__, __LINE__, "-EPIPE %.1f ms after the consumers died",
                            th_ms_of(ipc_time_now() - t0));
                CHECK_ERR(ipc_ring_send(&p, buf, 20, 0), -EPIPE);
            }
            /* a new consumer: usable again */
            CHECK_OK(ring_attach(&c, IPC_CONSUMER));
            while (ipc_ring_recv(&c, buf, sizeof buf, 0) > 0) {
            }
            CHECK_ERR(ipc_ring_send(&p, buf, 21, 0), 0);
            CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, 0), 21);
            CHECK_OK(ipc_ring_close(&c));
            CHECK_OK(ipc_ring_close(&p));
            ring_teardown();
        }
    sh_unmap();
}

/* ---- 5. SIGKILL: a producer between reserve and commit ---- */

enum { VICTIM_ID = 5 };

/* Child: reserve a slot, write a whole valid-looking message in it, flag HELD, wait to be
   killed. Its pid goes to rc[0]. */
static void reserve_victim(void *arg) {
    ipc_ring p;
    void *w;
    (void)arg;
    g_sh->rc[0] = (int)getpid();
    CHECK_OK(ring_attach(&p, IPC_PRODUCER));
    CHECK_OK(ipc_ring_reserve(&p, 100, &w, 3000 * MS));
    m_fill(w, 100, VICTIM_ID, 0);
    flag_set(F_HELD, 1);
    th_sleep_ms(20000);
}

/* Child: producer 0. Sends g_n messages, flags A; after flag B, g_n more and flags C;
   then with g_variant > 0 one more every g_variant ms until QUIT (a trickle); closes. */
static void other_producer(void *arg) {
    unsigned char buf[256];
    uint32_t seq = 0, i;
    ipc_ring p;
    (void)arg;
    CHECK_OK(ring_attach(&p, IPC_PRODUCER));
    for (i = 0; i < g_n; i++, seq++) {
        m_fill(buf, 30, 0, seq);
        CHECK_ERR(ipc_ring_send(&p, buf, 30, 3000 * MS), 0);
    }
    flag_set(F_A, 1);
    flag_wait(F_B, 1, 5000);
    for (i = 0; i < g_n; i++, seq++) {
        m_fill(buf, 30, 0, seq);
        CHECK_ERR(ipc_ring_send(&p, buf, 30, 3000 * MS), 0);
    }
    g_sh->t[1] = ipc_time_now();
    flag_set(F_C, 1);
    while (g_variant > 0 && !flag_get(F_QUIT)) {
        th_sleep_ms(g_variant);
        m_fill(buf, 30, 0, seq);
        CHECK_ERR(ipc_ring_send(&p, buf, 30, 3000 * MS), 0);
        seq++;
    }
    flag_wait(F_QUIT, 1, 10000);
    CHECK_OK(ipc_ring_close(&p));
}

/* Child: wait for flag D, sleep 60 ms, then SIGKILL the victim (pid in rc[0]) and note
   the time: the parent is asleep in recv meanwhile. */
static void killer(void *arg) {
    (void)arg;
    flag_wait(F_D, 1, 5000);
    th_sleep_ms(60);
    g_sh->t[0] = ipc_time_now();
    CHECK_EQ(kill((pid_t)g_sh->rc[0], SIGKILL), 0);
}

/* A producer SIGKILLed between reserve and commit leaves a hole. The other producer's
   messages, those committed after the hole included, all arrive in order; the victim's
   content never; the consumer passes the hole within a second of the death; stats.lost
   counts it once. Variants: the consumer already asleep on the hole when the victim dies
   (the kill comes from a third process), or reading only after the death; MPMC, MPSC. */
TEST(ringmp_producer_killed_between_reserve_and_commit) {
    int variant;
    sh_map();
    for (variant = 0; variant < 4; variant++) {
        int asleep = variant & 1, k = variant >> 1;
        unsigned char buf[256];
        uint32_t seq, id, gseq;
        pid_t other, victim, kl = -1;
        int64_t t_first = 0;
        ipc_ring c;
        memset(g_sh, 0, sizeof *g_sh);
        ring_make(&c, IPC_CONSUMER, (k ? IPC_RING_MPSC : IPC_RING_MPMC) | MSG_200, 4 * KiB,
                  variant & 1);
        g_n = 4; /* 4 before the hole, the hole, 4 after: 9 of 16 slots */
        g_variant = 0;
        other = th_spawn(other_producer, NULL);
        flag_wait(F_A, 1, 5000);
        victim = th_spawn(reserve_victim, NULL);
        flag_wait(F_HELD, 1, 5000);
        flag_set(F_B, 1);
        flag_wait(F_C, 1, 5000);
        if (asleep) {
            kl = th_spawn(killer, NULL);
        } else {
            g_sh->t[0] = ipc_time_now();
            kill(victim, SIGKILL);
        }
        for (seq = 0; seq < 2 * g_n; seq++) {
            if (seq == g_n) flag_set(F_D, 1); /* at the hole: the killer may start */
            m_parse("recv", buf, ipc_ring_recv(&c, buf, sizeof buf, 3000 * MS), &id, &gseq);
            if (id != 0 || gseq != seq)
                th_fail(__FILE__, __LINE__, "variant %d: got %u/%u, want 0/%u", variant, id, gseq,
                        seq);
            if (seq == g_n) t_first = ipc_time_now();
        }
        CHECK_EQ(th_join(victim, JOIN_MS), 128 + SIGKILL);
        if (kl > 0) CHECK_EQ(th_join(kl, JOIN_MS), 0);
        if (t_first - g_sh->t[0] >= 1000 * MS)
            th_fail(__FILE__, __LINE__, "variant %d: the hole was passed %.1f ms after the death",
                    variant, th_ms_of(t_first - g_sh->t[0]));
        CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
        CHECK_EQ(lost_of(&c), 1);
        flag_set(F_QUIT, 1);
        CHECK_EQ(th_join(other, JOIN_MS), 0);
        CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 3000 * MS), -EPIPE);
        CHECK_EQ(lost_of(&c), 1);
        CHECK_OK(ipc_ring_close(&c));
        ring_teardown();
    }
    sh_unmap();
}

/* The same hole, while the other producer keeps sending one message every 20 ms (so the
   consumer is woken again and again) on a ring that does not fill up: the hole is still
   passed within a second of the death. */
TEST(ringmp_hole_passed_while_others_keep_sending) {
    double took[2];
    int k;
    sh_map();
    for (k = 0; k < 2; k++) {
        unsigned char buf[256];
        uint32_t id, seq;
        pid_t other, victim;
        int64_t t_kill, t_got;
        ipc_ring c;
        memset(g_sh, 0, sizeof *g_sh);
        ring_make(&c, IPC_CONSUMER, (k ? IPC_RING_MPSC : IPC_RING_MPMC) | MSG_200, 64 * KiB,
                  k); /* 256 slots */
        g_n = 0;
        g_variant = 20;
        other = th_spawn(other_producer, NULL);
        flag_wait(F_A, 1, 5000);
        victim = th_spawn(reserve_victim, NULL);
        flag_wait(F_HELD, 1, 5000);
        flag_set(F_B, 1);
        t_kill = ipc_time_now();
        kill(victim, SIGKILL);
        CHECK_EQ(th_join(victim, JOIN_MS), 128 + SIGKILL);
        m_parse("recv behind the hole", buf, ipc_ring_recv(&c, buf, sizeof buf, 4000 * MS), &id,
                &seq);
        t_got = ipc_time_now();
        flag_set(F_QUIT, 1);
        CHECK_EQ(id, 0);
        CHECK_EQ(seq, 0);
        took[k] = th_ms_of(t_got - t_kill);
        CHECK_EQ(th_join(other, JOIN_MS), 0);
        CHECK_OK(ipc_ring_close(&c));
        ring_teardown();
    }
    if (took[0] >= 1000 || took[1] >= 1000)
        th_fail(__FILE__, __LINE__,
                "with a producer sending every 20 ms, the hole was passed %.1f ms (MPMC) and "
                "%.1f ms (MPSC) after the death (want < 1000)",
                took[0], took[1]);
    sh_unmap();
}

/* The same hole, with a consumer that polls (timeout 0, then 1 ms of sleep): it too gets
   past the hole within a second. */
TEST(ringmp_hole_passed_by_polling_consumer) {
    double took[2];
    int k;
    sh_map();
    for (k = 0; k < 2; k++) {
        unsigned char buf[256];
        pid_t other, victim;
        int64_t t_kill, t_got = 0;
        ipc_ring c;
        ssize_t n;
        memset(g_sh, 0, sizeof *g_sh);
        ring_make(&c, IPC_CONSUMER, (k ? IPC_RING_MPSC : IPC_RING_MPMC) | MSG_200, 4 * KiB, k);
        g_n = 2;
        g_variant = 0;
        other = th_spawn(other_producer, NULL);
        flag_wait(F_A, 1, 5000);
        victim = th_spawn(reserve_victim, NULL);
        flag_wait(F_HELD, 1, 5000);
        flag_set(F_B, 1);
        flag_wait(F_C, 1, 5000);
        CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, 0), 30);
        CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, 0), 30);
        t_kill = ipc_time_now();
        kill(victim, SIGKILL);
        CHECK_EQ(th_join(victim, JOIN_MS), 128 + SIGKILL);
        while (ipc_time_now() - t_kill < 2000 * MS) {
            n = ipc_ring_recv(&c, buf, sizeof buf, 0);
            if (n > 0) {
                t_got = ipc_time_now();
                break;
            }
            CHECK_ERR(n, -EAGAIN);
            th_sleep_ms(1);
        }
        flag_set(F_QUIT, 1);
        CHECK_EQ(th_join(other, JOIN_MS), 0);
        took[k] = t_got ? th_ms_of(t_got - t_kill) : -1;
        CHECK_OK(ipc_ring_close(&c));
        ring_teardown();
    }
    if (took[0] < 0 || took[0] >= 1000 || took[1] < 0 || took[1] >= 1000)
        th_fail(__FILE__, __LINE__,
                "a polling consumer (timeout 0) passed the hole after %.1f ms (MPMC), %.1f ms "
                "(MPSC); -1: never, in 2 s of -EAGAIN",
                took[0], took[1]);
    sh_unmap();
}

/* ---- 6. SIGKILL: a consumer between peek and release ---- */

/* Child: peek a message (it must be 0/0), flag HELD, wait to be killed. */
static void peek_victim(void *arg) {
    const void *m;
    uint32_t id, seq;
    ipc_ring c;
    ssize_t n;
    (void)arg;
    CHECK_OK(ring_attach(&c, IPC_CONSUMER));
    n = ipc_ring_peek(&c, &m, 3000 * MS);
    m_parse("peek", m, n, &id, &seq);
    CHECK_EQ(id, 0);
    CHECK_EQ(seq, 0);
    flag_set(F_HELD, 1);
    th_sleep_ms(20000);
}

/* Child: consumer of messages 1..g_n-1 of producer 0, in order, then -EPIPE; its lost
   count goes to v[0]. */
static void rest_consumer(void *arg) {
    unsigned char buf[256];
    uint32_t seq, id, gseq;
    ipc_ring c;
    (void)arg;
    CHECK_OK(ring_attach(&c, IPC_CONSUMER));
    flag_set(F_READY, 1);
    for (seq = 1; seq < g_n; seq++) {
        m_parse("recv", buf, ipc_ring_recv(&c, buf, sizeof buf, 3000 * MS), &id, &gseq);
        CHECK_EQ(id, 0);
        CHECK_EQ(gseq, seq);
    }
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 3000 * MS), -EPIPE);
    g_sh->v[0] = lost_of(&c);
    CHECK_OK(ipc_ring_close(&c));
}

/* A consumer SIGKILLed between peek and release loses that message only: the producer
   keeps going through three laps of the ring (so it needs the dead consumer's slot), and
   another consumer gets every other message exactly once, in order. The reclaimed slot
   is counted once, by whichever handle reclaimed it. MPSC: the second consumer can attach
   only once the first is dead. */
TEST(ringmp_consumer_killed_between_peek_and_release) {
    int k;
    sh_map();
    for (k = 0; k < 2; k++) {
        size_t nslots = slots_for(4 * KiB, 256);
        unsigned char buf[256];
        pid_t victim, rest;
        int64_t t_kill;
        uint32_t seq;
        ipc_ring p, x;
        memset(g_sh, 0, sizeof *g_sh);
        ring_make(&p, IPC_PRODUCER, (k ? IPC_RING_MPSC : IPC_RING_MPMC) | MSG_200, 4 * KiB, !k);
        g_n = (uint32_t)(3 * nslots);
        m_fill(buf, 40, 0, 0);
        CHECK_ERR(ipc_ring_send(&p, buf, 40, 0), 0);
        victim = th_spawn(peek_victim, NULL);
        flag_wait(F_HELD, 1, 5000);
        if (k) CHECK_ERR(ring_attach(&x, IPC_CONSUMER), -EBUSY);
        t_kill = ipc_time_now();
        kill(victim, SIGKILL);
        CHECK_EQ(th_join(victim, JOIN_MS), 128 + SIGKILL);
        rest = th_spawn(rest_consumer, NULL);
        flag_wait(F_READY, 1, 5000);
        for (seq = 1; seq < g_n; seq++) {
            m_fill(buf, 40, 0, seq);
            CHECK_ERR(ipc_ring_send(&p, buf, 40, 3000 * MS), 0);
        }
        if (ipc_time_now() - t_kill >= 2000 * MS)
            th_fail(__FILE__, __LINE__, "%s: %u messages took %.1f ms after the death",
                    k ? "MPSC" : "MPMC", g_n, th_ms_of(ipc_time_now() - t_kill));
        g_sh->v[1] = lost_of(&p);
        CHECK_OK(ipc_ring_close(&p));
        CHECK_EQ(th_join(rest, JOIN_MS), 0);
        if (g_sh->v[0] + g_sh->v[1] != 1)
            th_fail(__FILE__, __LINE__, "%s: lost: producer %llu + consumer %llu, want 1",
                    k ? "MPSC" : "MPMC", (unsigned long long)g_sh->v[1],
                    (unsigned long long)g_sh->v[0]);
        ring_teardown();
    }
    sh_unmap();
}

/* ---- 7. a stale claim of a live, idle handle ---- */

/* Child: producer that reserves the next slot, flags HELD and waits to be killed. */
static void stale_reserver(void *arg) {
    ipc_ring p;
    void *w;
    (void)arg;
    CHECK_OK(ring_attach(&p, IPC_PRODUCER));
    CHECK_OK(ipc_ring_reserve(&p, 50, &w, 3000 * MS));
    m_fill(w, 50, VICTIM_ID, 0);
    g_sh->v[0] = 1;
    flag_set(F_HELD, 1);
    th_sleep_ms(20000);
}

/* Two producers race for position P (the ring full right behind it): B wins by
   compare-and-swap on the tail and is SIGKILLed before committing; A lost the race, so it
   named P in its registry entry, then found no room at P + 1 and its call timed out; A
   lives on, idle. The dead B's slot must still become a hole that consumers pass: A
   never claimed it. The race cannot be forced from outside, so the test makes B's part
   for real and writes into A's entry the position it names after losing (the documented
   registry layout); nothing else is touched. */
TEST(ringmp_stale_claim_of_idle_producer_does_not_pin_hole) {
    int k;
    sh_map();
    for (k = 0; k < 2; k++) {
        size_t nslots = slots_for(4 * KiB, 256), size, i;
        unsigned char buf[256], *mem;
        ipc_ring a, filler, c;
        uint32_t id, seq;
        pid_t b;
        int ka;
        memset(g_sh, 0, sizeof *g_sh);
        ring_setup((k ? IPC_RING_MPSC : IPC_RING_MPMC) | MSG_200, 4 * KiB, k);
        mem = raw_map(&size);
        CHECK_OK(ring_attach(&a, IPC_PRODUCER));
        ka = reg_find(mem, IPC_PRODUCER);
        CHECK_OK(ring_attach(&filler, IPC_PRODUCER));
        CHECK_OK(ring_attach(&c, IPC_CONSUMER));
        for (i = 0; i < nslots; i++) { /* positions 0..n-1 */
            m_fill(buf, 30, 0, (uint32_t)i);
            CHECK_ERR(ipc_ring_send(&filler, buf, 30, 0), 0);
        }
        m_parse("recv", buf, ipc_ring_recv(&c, buf, sizeof buf, 0), &id, &seq);
        CHECK_EQ(seq, 0);
        b = th_spawn(stale_reserver, NULL); /* position n */
        flag_wait(F_HELD, 1, 5000);
        kill(b, SIGKILL);
        CHECK_EQ(th_join(b, JOIN_MS), 128 + SIGKILL);
        /* A's lost race: it named n, then waited for room at n + 1 in vain */
        __atomic_store_n(reg_pos(mem, ka, 0), (uint64_t)nslots, __ATOMIC_RELEASE);
        CHECK_ERR(ipc_ring_send(&a, buf, 30, 20 * MS), -ETIMEDOUT);
        for (i = 1; i < nslots; i++) {
            m_parse("recv", buf, ipc_ring_recv(&c, buf, sizeof buf, 0), &id, &seq);
            CHECK_EQ(seq, i);
        }
        m_fill(buf, 30, 0, (uint32_t)nslots + 1); /* behind the hole */
        CHECK_ERR(ipc_ring_send(&filler, buf, 30, 0), 0);
        {
            int64_t t0 = ipc_time_now();
            ssize_t n = ipc_ring_recv(&c, buf, sizeof buf, 1500 * MS);
            if (n < 0)
                th_fail(__FILE__, __LINE__,
                        "%s: the dead producer's slot was not passed in %.0f ms (%s): an idle "
                        "live producer's stale registry entry still names it",
                        k ? "MPSC" : "MPMC", th_ms_of(ipc_time_now() - t0), ipc_strerror((int)n));
            m_parse("recv behind the hole", buf, n, &id, &seq);
            CHECK_EQ(seq, nslots + 1);
        }
        CHECK_EQ(lost_of(&c), 1);
        CHECK_OK(ipc_ring_close(&c));
        CHECK_OK(ipc_ring_close(&filler));
        CHECK_OK(ipc_ring_close(&a));
        CHECK_EQ(munmap(mem, size), 0);
        ring_teardown();
    }
    sh_unmap();
}

/* Child: consumer that peeks the next message, flags HELD and waits to be killed. */
static void stale_peeker(void *arg) {
    const void *m;
    ipc_ring c;
    (void)arg;
    CHECK_OK(ring_attach(&c, IPC_CONSUMER));
    CHECK_EQ(ipc_ring_peek(&c, &m, 3000 * MS), 30);
    flag_set(F_HELD, 1);
    th_sleep_ms(20000);
}

/* The consumers' side of the race above (MPMC): consumers A and B race for position 0;
   B wins and is SIGKILLed holding the message; A named 0, lost, and its call returned
   without a message: variant 0, it found the ring empty and timed out; variant 1, the
   next message was larger than its buffer (-EMSGSIZE). A lives on, idle. The producer
   then needs B's slot for its next lap: the dead consumer's slot must be reclaimed. */
TEST(ringmp_stale_claim_of_idle_consumer_does_not_pin_slot) {
    int variant;
    sh_map();
    for (variant = 0; variant < 2; variant++) {
        size_t nslots = slots_for(4 * KiB, 256), size, i;
        unsigned char buf[256], *mem;
        ipc_ring a, p, c;
        int64_t t0;
        pid_t b;
        int ka, rc;
        memset(g_sh, 0, sizeof *g_sh);
        ring_setup(IPC_RING_MPMC | MSG_200, 4 * KiB, variant);
        mem = raw_map(&size);
        CHECK_OK(ring_attach(&p, IPC_PRODUCER));
        CHECK_OK(ring_attach(&a, IPC_CONSUMER));
        ka = reg_find(mem, IPC_CONSUMER);
        CHECK_OK(ring_attach(&c, IPC_CONSUMER));
        memset(buf, 9, sizeof buf);
        CHECK_ERR(ipc_ring_send(&p, buf, 30, 0), 0); /* position 0 */
        b = th_spawn(stale_peeker, NULL);
        flag_wait(F_HELD, 1, 5000);
        kill(b, SIGKILL);
        CHECK_EQ(th_join(b, JOIN_MS), 128 + SIGKILL);
        __atomic_store_n(reg_pos(mem, ka, 1), (uint64_t)0, __ATOMIC_RELEASE);
        if (variant == 0) {
            CHECK_ERR(ipc_ring_recv(&a, buf, sizeof buf, 20 * MS), -ETIMEDOUT);
            for (i = 1; i < nslots; i++)
                CHECK_ERR(ipc_ring_send(&p, buf, 31, 0), 0);
        } else {
            for (i = 1; i < nslots; i++)
                CHECK_ERR(ipc_ring_send(&p, buf, 31, 0), 0);
            CHECK_ERR(ipc_ring_recv(&a, buf, 10, 20 * MS), -EMSGSIZE);
        }
        /* 1..n-1 fill the rest; c takes them; position n needs slot 0 */
        for (i = 1; i < nslots; i++)
            CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, 0), 31);
        t0 = ipc_time_now();
        rc = ipc_ring_send(&p, buf, 32, 1500 * MS);
        if (rc != 0)
            th_fail(__FILE__, __LINE__,
                    "variant %d (A's call %s): the dead consumer's slot was not reclaimed in "
                    "%.0f ms (%s): the idle live consumer A's registry entry still names it",
                    variant, variant ? "gave -EMSGSIZE" : "timed out",
                    th_ms_of(ipc_time_now() - t0), ipc_strerror(rc));
        CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, 0), 32);
        CHECK_EQ(lost_of(&p) + lost_of(&c), 1);
        CHECK_OK(ipc_ring_close(&c));
        CHECK_OK(ipc_ring_close(&a));
        CHECK_OK(ipc_ring_close(&p));
        CHECK_EQ(munmap(mem, size), 0);
        ring_teardown();
    }
    sh_unmap();
}

/* ---- 8. SIGKILL at random moments ---- */

#define KR_ROUNDS 24

/* Producer `arg` of a round: messages until STOP (or -EPIPE: every consumer died), with
   pauses inside reservations so that kills land there. intent = seq + 1 is stored right
   before the committing call, done = seq + 1 once it returned. */
static void kr_producer(void *arg) {
    uint32_t id = (uint32_t)(uintptr_t)arg, seq = 0;
    uint64_t rs = g_seed * 7919 + id;
    unsigned char buf[256];
    ipc_ring p;
    size_t maxm;
    CHECK_OK(ring_attach(&p, IPC_PRODUCER));
    maxm = ipc_ring_max_msg(&p);
    CHECK(maxm <= sizeof buf);
    flag_add(F_READY);
    flag_wait(F_GO, 1, 5000);
    while (seq < SEQS - 1 && !flag_get(F_STOP)) {
        size_t len = 16 + (size_t)(th_rnd64(&rs) % (maxm - 15));
        unsigned op = (unsigned)(th_rnd64(&rs) % 8), t = (unsigned)(th_rnd64(&rs) % 3);
        int64_t to = t == 0 ? 0 : t == 1 ? 1 * MS : 10 * MS;
        void *w;
        int rc;
        if (op < 3) {
            m_fill(buf, len, id, seq);
            __atomic_store_n(&g_sh->intent[id], seq + 1, __ATOMIC_RELEASE);
            rc = ipc_ring_send(&p, buf, len, to);
        } else if ((rc = ipc_ring_reserve(&p, len, &w, to)) == 0) {
            m_fill(w, len, id, seq);
            if (op >= 6) th_spin_us((int64_t)(th_rnd64(&rs) % 300)); /* a kill here: a hole */
            if (op == 5) {                                           /* cancelled: retried below */
                CHECK_ERR(ipc_ring_commit(&p, 0), 0);
                continue;
            }
            __atomic_store_n(&g_sh->intent[id], seq + 1, __ATOMIC_RELEASE);
            CHECK_ERR(ipc_ring_commit(&p, len), 0);
        }
        if (rc == -EPIPE) break;
        if (retry(rc, to, "send/reserve")) continue;
        CHECK_ERR(rc, 0);
        __atomic_store_n(&g_sh->done[id], ++seq, __ATOMIC_RELEASE);
    }
    add_lost(&p);
    CHECK_OK(ipc_ring_close(&p));
}

/* Consumer `arg` of a round: until -EPIPE (every producer closed or died), pausing
   sometimes while it holds a peeked message. */
static void kr_consumer(void *arg) {
    uint32_t cid = (uint32_t)(uintptr_t)arg, id, seq;
    uint64_t rs = g_seed * 104729 + cid;
    int64_t last[NP_MAX];
    unsigned char buf[256];
    ipc_ring c;
    int i;
    for (i = 0; i < NP_MAX; i++)
        last[i] = -1;
    CHECK_OK(ring_attach(&c, IPC_CONSUMER));
    flag_add(F_READY);
    flag_wait(F_GO, 1, 5000);
    for (;;) {
        unsigned op = (unsigned)(th_rnd64(&rs) % 4), t = (unsigned)(th_rnd64(&rs) % 3);
        int64_t to = t == 0 ? 0 : t == 1 ? 1 * MS : 10 * MS;
        const void *m;
        ssize_t n;
        if (op == 0) {
            n = ipc_ring_recv(&c, buf, sizeof buf, to);
        } else {
            n = ipc_ring_peek(&c, &m, to);
            if (n > 0) {
                CHECK((size_t)n <= sizeof buf);
                memcpy(buf, m, (size_t)n);
                if (op == 3)
                    th_spin_us((int64_t)(th_rnd64(&rs) % 300)); /* a kill here: it is lost */
                CHECK_ERR(ipc_ring_release(&c), 0);
            }
        }
        if (retry(n, to, "recv/peek")) continue;
        if (n == -EPIPE) break;
        m_parse("recv", buf, n, &id, &seq);
        if (id >= (uint32_t)g_np || seq >= SEQS)
            th_fail(__FILE__, __LINE__, "seed %llu: consumer %u: message %u/%u was never sent",
                    (unsigned long long)g_seed, cid, id, seq);
        if ((int64_t)seq <= last[id])
            th_fail(__FILE__, __LINE__, "seed %llu: consumer %u: message %u/%u after %u/%lld",
                    (unsigned long long)g_seed, cid, id, seq, id, (long long)last[id]);
        last[id] = seq;
        if (m_mark(id, seq))
            th_fail(__FILE__, __LINE__, "seed %llu: consumer %u: message %u/%u delivered twice",
                    (unsigned long long)g_seed, cid, id, seq);
        g_sh->got[cid]++;
    }
    add_lost(&c);
    CHECK_OK(ipc_ring_close(&c));
}

#define KR_FAIL(...)                                                                               \
    do {                                                                                           \
        fprintf(stderr,                                                                            \
                "    round %d, seed %llu (%s, %s, %d producers, %d consumers; replay: "            \
                "RINGMP_SEED=%llu):\n",                                                            \
                round, (unsigned long long)seed, mpsc ? "MPSC" : "MPMC",                           \
                named ? "named" : "anonymous", np, nc, (unsigned long long)seed);                  \
        th_fail(__FILE__, __LINE__, __VA_ARGS__);                                                  \
    } while (0)

static void kr_round(int round, uint64_t seed) {
    uint64_t rs = seed;
    int mpsc = (int)(seed & 1), named = (int)((seed >> 1) & 1);
    int np = 2 + (int)(th_rnd64(&rs) % 2), nc = mpsc ? 1 : 1 + (int)(th_rnd64(&rs) % 3);
    int n = np + nc, i, killed[NP_MAX + NC_MAX], kp = 0, kc = 0, marks = 0, sent = 0, want_marks;
    size_t nslots = slots_for(4 * KiB, 256);
    uint64_t lost, missing = 0;
    pid_t pid[NP_MAX + NC_MAX];
    unsigned char buf[256];
    int64_t last[NP_MAX], t0, el;
    ipc_ring p, c;
    uint32_t id, seq;
    memset(g_sh, 0, sizeof *g_sh);
    g_seed = seed;
    g_np = np;
    ring_setup((mpsc ? IPC_RING_MPSC : IPC_RING_MPMC) | MSG_200, 4 * KiB, named);
    for (i = 0; i < np; i++)
        pid[i] = th_spawn(kr_producer, (void *)(uintptr_t)i);
    flag_wait(F_READY, np, 5000);
    for (i = 0; i < nc; i++)
        pid[np + i] = th_spawn(kr_consumer, (void *)(uintptr_t)i);
    flag_wait(F_READY, n, 5000);
    flag_set(F_GO, 1);
    /* let them stream, then kill some (at least one) at random moments */
    th_sleep_us((int64_t)(th_rnd64(&rs) % 15000));
    for (i = 0; i < n; i++)
        killed[i] = (int)(th_rnd64(&rs) % 2);
    killed[th_rnd64(&rs) % (uint64_t)n] = 1;
    for (i = 0; i < n; i++)
        if (killed[i]) {
            kill(pid[i], SIGKILL);
            th_sleep_us((int64_t)(th_rnd64(&rs) % 3000));
        }
    th_sleep_us((int64_t)(th_rnd64(&rs) % 5000));
    flag_set(F_STOP, 1); /* the surviving producers close; the consumers drain to -EPIPE */
    for (i = 0; i < n; i++) {
        int st = th_join(pid[i], 5000);
        if (st == 128 + SIGKILL && killed[i]) {
            if (i < np)
                kp++;
            else
                kc++;
        } else if (st != 0) {
            KR_FAIL("%s %d: exit status %d%s", i < np ? "producer" : "consumer",
                    i < np ? i : i - np, st, st == -1 ? " (hung: killed after 5 s)" : "");
        }
    }
    /* survivors: a new consumer and producer attach; what the dead left behind, then our
       own messages (two laps, so every slot is used again), arrive within a second */
    for (i = 0; i < NP_MAX; i++)
        last[i] = -1;
    t0 = ipc_time_now();
    CHECK_OK(ring_attach(&c, IPC_CONSUMER));
    CHECK_OK(ring_attach(&p, IPC_PRODUCER));
    want_marks = (int)(2 * nslots);
    while (marks < want_marks && ipc_time_now() - t0 < 1000 * MS) {
        ssize_t got;
        int rc;
        if (sent < want_marks) {
            m_fill(buf, 24, MARK_ID, (uint32_t)sent);
            rc = ipc_ring_send(&p, buf, 24, 20 * MS);
            if (rc == 0)
                sent++;
            else if (rc != -ETIMEDOUT)
                KR_FAIL("recovery send: %d (%s)", rc, ipc_strerror(rc));
        }
        got = ipc_ring_recv(&c, buf, sizeof buf, 20 * MS);
        if (got == -ETIMEDOUT) continue;
        if (got < 0) KR_FAIL("recovery recv: %lld (%s)", (long long)got, ipc_strerror((int)got));
        m_parse("recovery recv", buf, got, &id, &seq);
        if (id == MARK_ID) {
            if (seq != (uint32_t)marks) KR_FAIL("recovery: our message %u, want %d", seq, marks);
            marks++;
        } else {
            if (id >= (uint32_t)np || (int64_t)seq <= last[id])
                KR_FAIL("recovery: message %u/%u (last of it %lld)", id, seq,
                        (long long)(id < NP_MAX ? last[id] : -2));
            last[id] = seq;
            if (m_mark(id, seq)) KR_FAIL("message %u/%u delivered twice", id, seq);
        }
    }
    el = ipc_time_now() - t0;
    if (marks < want_marks)
        KR_FAIL("recovery: %d of %d messages of a new producer arrived in %.1f ms", marks,
                want_marks, th_ms_of(el));
    lost = g_sh->lost + lost_of(&c) + lost_of(&p);
    CHECK_OK(ipc_ring_close(&p));
    {
        ssize_t r = ipc_ring_recv(&c, buf, sizeof buf, 2000 * MS);
        if (r != -EPIPE) KR_FAIL("after the recovery: %lld, want -EPIPE", (long long)r);
    }
    CHECK_OK(ipc_ring_close(&c));
    /* the oracle */
    for (i = 0; i < np; i++) {
        uint32_t done = g_sh->done[i], intent = g_sh->intent[i];
        for (seq = 0; seq < done; seq++)
            if (!m_marked((uint32_t)i, seq)) missing++;
        for (seq = done; seq < SEQS; seq++)
            if (m_marked((uint32_t)i, seq) && !(seq == done && intent == done + 1))
                KR_FAIL("producer %d: message %u delivered, but only %u were committed (and "
                        "%u was being committed)",
                        i, seq, done, intent - 1);
    }
    if (missing > (uint64_t)kc)
        KR_FAIL("%llu committed messages never delivered, %d consumers killed",
                (unsigned long long)missing, kc);
    if (lost > (uint64_t)(kp + kc))
        KR_FAIL("stats.lost %llu, with %d producers and %d consumers killed",
                (unsigned long long)lost, kp, kc);
    ring_teardown();
}

TEST_T(ringmp_sigkill_random_rounds, 120000) {
    const char *env = getenv("RINGMP_SEED");
    int round;
    sh_map();
    if (env && *env) {
        kr_round(0, strtoull(env, NULL, 0));
    } else {
        for (round = 0; round < KR_ROUNDS; round++)
            kr_round(round, 0x5eed00ull + (uint64_t)round);
    }
    sh_unmap();
}

/* ---- 9. a third process scribbles over the shared memory ---- */

#define SCRIB_CAP (16 * KiB)
#define SCRIB_MS  700

/* Attach: 0, or -EBADMSG while the header is scribbled (after a 1 ms nap); anything else
   fails. */
static int scrib_attach(ipc_ring *r, int role) {
    int rc = ring_attach(r, role);
    if (rc != 0 && rc != -EBADMSG)
        th_fail(__FILE__, __LINE__, "re-attach role %d: %d (%s)", role, rc, ipc_strerror(rc));
    th_scrib_count(&g_sh->sc.attaches);
    if (rc != 0) th_sleep_ms(1);
    return rc;
}

static void scrib_consumer(void *arg) {
    uint64_t rs = 4242 + (uint64_t)(uintptr_t)arg;
    unsigned char *buf = (unsigned char *)th_xmalloc(SCRIB_CAP);
    ipc_ring c;
    int have = 0;
    flag_wait(F_READY, 1, 5000); /* a producer attached first */
    while (ipc_time_now() < g_sh->t[0]) {
        ssize_t n;
        if (!have) {
            if (scrib_attach(&c, IPC_CONSUMER) != 0) continue;
            have = 1;
            flag_set(F_A, 1);
        }
        n = th_ring_take(&c, buf, SCRIB_CAP, SCRIB_CAP, &rs);
        have = th_scrib_took(&g_sh->sc, &c, n, ipc_ring_max_msg(&c), 0, buf, SCRIB_CAP);
    }
    if (have) CHECK_OK(ipc_ring_close(&c));
    free(buf);
}

static void scrib_producer(void *arg) {
    uint64_t rs = 5 + (uint64_t)(uintptr_t)arg;
    unsigned char buf[8192];
    ipc_ring p;
    int have = 0;
    memset(buf, 0x5a, sizeof buf);
    while (ipc_time_now() < g_sh->t[0]) {
        size_t len, maxm;
        int64_t t0;
        void *w;
        int rc;
        if (!have) {
            if (scrib_attach(&p, IPC_PRODUCER) != 0) continue;
            have = 1;
            flag_add(F_READY);
        }
        maxm = ipc_ring_max_msg(&p);
        CHECK(maxm <= sizeof buf);
        if (th_rnd64(&rs) % 64 == 0) th_sleep_ms(1); /* so that consumers sleep too */
        len = 1 + (size_t)(th_rnd64(&rs) % (th_rnd64(&rs) % 16 ? 64 : maxm));
        t0 = ipc_time_now();
        if (th_rnd64(&rs) % 2) {
            rc = ipc_ring_send(&p, buf, len, 20 * MS);
        } else {
            rc = ipc_ring_reserve(&p, len, &w, 20 * MS);
            if (rc == 0) {
                memset(w, 0x5a, len);
                CHECK_ERR(ipc_ring_commit(&p, th_rnd64(&rs) % 8 ? len : 0), 0);
            }
        }
        have = th_scrib_sent(&g_sh->sc, &p, t0, rc, 1, buf);
    }
    if (have) CHECK_OK(ipc_ring_close(&p));
}

/* Write a plausible or random sequence word into the slot of position pos. */
static void scrib_seq(unsigned char *data, size_t nslots, size_t shift, uint64_t pos, uint64_t v) {
    uint64_t idx = pos & (nslots - 1), seq;
    switch (v % 6) {
    case 0: seq = pos; break;                  /* free for pos */
    case 1: seq = pos + 1; break;              /* published */
    case 2: seq = pos + nslots; break;         /* consumed */
    case 3: seq = (pos + 1) | HOLE_BIT; break; /* a hole */
    case 4: seq = pos + 2 + v % 5; break;      /* from the future */
    default: seq = v; break;
    }
    seq = ((seq & ~HOLE_BIT) - idx) | (seq & HOLE_BIT);
    memcpy(data + (idx << shift), &seq, 8);
}

static void scrib_writer(void *arg) {
    size_t size, hdr = hdr_size(), nslots, shift = 8, i = 0;
    unsigned char *mem = raw_map(&size), ident[32], *data;
    uint64_t rs = 31337;
    (void)arg;
    CHECK(size > hdr);
    nslots = (size - hdr) >> shift;
    data = mem + hdr;
    memcpy(ident, mem, sizeof ident);
    flag_wait(F_A, 1, 5000); /* a consumer attached */
    th_sleep_ms(20);         /* let some messages through first */
    while (ipc_time_now() < g_sh->t[0]) {
        unsigned k = (unsigned)(th_rnd64(&rs) % 16), burst = 1 + (unsigned)(th_rnd64(&rs) % 4), b;
        for (b = 0; b < burst; b++) {
            uint64_t v = th_rnd64(&rs), head, tail, pos;
            memcpy(&head, mem + OFF_HEAD, 8);
            memcpy(&tail, mem + OFF_TAIL, 8);
            pos = (v & 1 ? head : tail) + (v >> 8) % 4 - 1;
            v >>= 12;
            if (k < 2) { /* the positions: nudged, or anything */
                size_t off = v % 2 ? OFF_HEAD : OFF_TAIL;
                uint64_t x;
                memcpy(&x, mem + off, 8);
                x = v % 3 == 0 ? x + (v >> 4) % 4 : v % 3 == 1 ? x - (v >> 4) % 4 : v;
                memcpy(mem + off, &x, 8);
            } else if (k < 3) { /* state, waiting, futex, claims of either side */
                uint32_t w = (uint32_t)(v % 4 ? v % 4 : v >> 16);
                memcpy(mem + 384 + (v >> 40) % 2 * 128 + (v >> 44) % 4 * 4, &w, 4);
            } else if (k < 5) { /* a registry entry of the first few */
                unsigned char *e = mem + REG_OFF + (size_t)((v >> 40) % 8) * REG_ENT;
                uint64_t x = v % 4 == 0 ? ~(uint64_t)0 : v % 4 == 3 ? v : pos;
                if ((v >> 2) % 3 == 2) {
                    uint32_t role = (uint32_t)((v >> 8) % 4);
                    memcpy(e + 16, &role, 4);
                } else {
                    memcpy(e + ((v >> 2) % 3) * 8, &x, 8);
                }
            } else if (k < 6) { /* anywhere in the header */
                mem[v % hdr] = (unsigned char)(v >> 32);
            } else if (k < 9) { /* a sequence word */
                scrib_seq(data, nslots, shift, pos, v);
            } else if (k < 11) { /* a length and check that agree, too long sometimes */
                uint32_t w[2];
                w[0] = (uint32_t)(v % 3 == 0 ? (v >> 8) : (v >> 8) % 300);
                w[1] = w[0] ^ (uint32_t)pos ^ 0x534c4f54u;
                memcpy(data + ((pos & (nslots - 1)) << shift) + 8, w, 8);
            } else { /* message bytes */
                data[(size_t)(v % (nslots << shift))] = (unsigned char)(v >> 32);
            }
            th_scrib_count(&g_sh->sc.writes);
        }
        if (++i % 8 == 0) { /* heal: an empty ring at the head, so the game goes on */
            uint64_t head, p;
            memcpy(mem, ident, sizeof ident);
            memcpy(&head, mem + OFF_HEAD, 8);
            memcpy(mem + OFF_TAIL, &head, 8);
            for (p = head; p < head + nslots; p++) {
                uint64_t stored = p - (p & (nslots - 1));
                memcpy(data + ((p & (nslots - 1)) << shift), &stored, 8);
            }
        }
        th_sleep_ms(1);
    }
    CHECK_EQ(munmap(mem, size), 0);
}

/* Two producers and two consumers (one for MPSC) work while a third process writes random
   and plausible values over the positions, the registry, sequence words, lengths and
   message bytes. Nothing crashes or hangs, every call returns within its deadline, the
   only errors are -EBADMSG (after which the handle stays poisoned), -EPIPE and timeouts,
   and no message is longer than max_msg. Under ASan: no access outside the mapping. */
static void scribble(unsigned kind, int named) {
    pid_t pid[5];
    int i, nc = kind == IPC_RING_MPSC ? 1 : 2, n = 0;
    sh_map();
    ring_setup(kind | MSG_200, SCRIB_CAP, named);
    g_sh->t[0] = ipc_time_now() + SCRIB_MS * MS;
    for (i = 0; i < 2; i++)
        pid[n++] = th_spawn(scrib_producer, (void *)(uintptr_t)i);
    for (i = 0; i < nc; i++)
        pid[n++] = th_spawn(scrib_consumer, (void *)(uintptr_t)i);
    pid[n++] = th_spawn(scrib_writer, NULL);
    for (i = 0; i < n; i++)
        CHECK_EQ(th_join(pid[i], SCRIB_MS + 5000), 0);
    th_scrib_check(&g_sh->sc, g_sh->sc.msgs > 0 && g_sh->sc.bad + g_sh->sc.send_bad > 0 &&
                                  g_sh->sc.writes >= 100);
    ring_teardown();
    sh_unmap();
}

TEST_T(ringmp_scribbler_mpmc_named, 15000) {
    scribble(IPC_RING_MPMC, 1);
}

TEST_T(ringmp_scribbler_mpmc_anonymous, 15000) {
    scribble(IPC_RING_MPMC, 0);
}

TEST_T(ringmp_scribbler_mpsc_anonymous, 15000) {
    scribble(IPC_RING_MPSC, 0);
}

/* The tail's slot says "a hole of this lap" but the tail never moved: corrupt memory,
   which a producer must report, not spin on (even with timeout 0). */
TEST(ringmp_hole_at_unmoved_tail_is_ebadmsg) {
    ipc_ring p;
    ipc_ring_opts o;
    uint64_t stored = ((uint64_t)1 << 63) | 1; /* slot 0: sequence 1 with the hole bit */
    int64_t t0;
    memset(&o, 0, sizeof o);
    o.capacity = 4096;
    o.flags = IPC_RING_MPMC | IPC_RING_MSG(200);
    CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
    memcpy(p.data, &stored, sizeof stored);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_ring_send(&p, "x", 1, 0), -EBADMSG);
    CHECK(ipc_time_now() - t0 < 500 * MS);
    CHECK_ERR(ipc_ring_send(&p, "x", 1, 0), -EBADMSG); /* poisoned */
    CHECK_OK(ipc_ring_close(&p));
}

/* Regression (tests/fuzz): a slot with both the hole bit and broadcast's busy bit set made
   the producer's wait condition and its claim disagree, and a send spun past its
   deadline. */
TEST(ringmp_hole_and_busy_bits_are_ebadmsg) {
    unsigned kinds[2] = {IPC_RING_MPMC, IPC_RING_MPSC}, k;
    for (k = 0; k < 2; k++) {
        ipc_ring p;
        ipc_ring_opts o;
        uint64_t stored = (uint64_t)3 << 62; /* slot 0: sequence 0, both flag bits */
        int64_t t0;
        memset(&o, 0, sizeof o);
        o.capacity = 4096;
        o.flags = kinds[k] | IPC_RING_MSG(200);
        CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
        memcpy(p.data, &stored, sizeof stored);
        t0 = ipc_time_now();
        CHECK_ERR(ipc_ring_send(&p, "x", 1, 1000 * MS), -EBADMSG);
        CHECK(ipc_time_now() - t0 < 500 * MS);
        CHECK_OK(ipc_ring_close(&p));
    }
}

/* Attaching to an object whose header says something impossible is -EBADMSG, leaks
   nothing, and the same object attaches again once the header is put back. */
TEST(ringmp_attach_corrupted_header) {
    static const struct {
        size_t off, width;
        uint64_t value;
        const char *what;
    } cases[] = {
        {OFF_FLAGS, 1, 4, "kind 4"},
        {OFF_FLAGS + 2, 1, 0x02, "MPMC with the broadcast-only overwrite bit"},
        {OFF_FLAGS, 1, 0xff, "kind 255"},
        {OFF_FLAGS, 1, 0, "kind SPSC with a slot size"},
        {OFF_FLAGS + 3, 1, 4, "slot shift 4"},
        {OFF_FLAGS + 3, 1, 31, "slot shift 31"},
        {OFF_FLAGS + 3, 1, 63, "slot shift 63"},
        {OFF_FLAGS + 3, 1, 12, "slot larger than half the capacity"},
        {OFF_FLAGS + 2, 1, 0x10, "an unknown flag"},
        {OFF_HDRSIZE, 4, 4096, "header size one page"},
        {OFF_HDRSIZE, 4, 0, "header size 0"},
        {OFF_CAP, 8, 8192, "capacity unlike the object's size"},
        {OFF_VERSION, 4, 2, "version 2"},
        {0, 1, 'x', "magic"},
        {OFF_TAIL, 8, 17, "tail more than the slots ahead of head"}, /* head + 17 */
        {OFF_HEAD, 8, 5, "head ahead of tail"},                      /* tail + 5 */
    };
    unsigned char save[8], *mem;
    size_t i, size;
    int named, fds, maps;
    ipc_ring r;
    /* warm up: process-wide state (fork handlers, the lock-fd registry) */
    ring_setup(IPC_RING_MPMC | MSG_200, 4 * KiB, 0);
    CHECK_OK(ring_attach(&r, IPC_CONSUMER));
    CHECK_OK(ipc_ring_close(&r));
    ring_teardown();
    for (named = 0; named < 2; named++) {
        ring_setup(IPC_RING_MPMC | MSG_200, 4 * KiB, named); /* 16 slots */
        mem = raw_map(&size);
        fds = th_fd_count();
        maps = th_maps_now();
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            uint64_t value = cases[i].value;
            if (cases[i].off == OFF_TAIL || cases[i].off == OFF_HEAD) {
                uint64_t other; /* relative to the other position */
                memcpy(&other, mem + (cases[i].off == OFF_TAIL ? OFF_HEAD : OFF_TAIL), 8);
                value += other;
            }
            memcpy(save, mem + cases[i].off, cases[i].width);
            memcpy(mem + cases[i].off, &value, cases[i].width);
            th_ring_attach_rejected(ring_attach, IPC_PRODUCER | IPC_CONSUMER, cases[i].what,
                                    named ? "named" : "anonymous", fds, maps);
            memcpy(mem + cases[i].off, save, cases[i].width);
            CHECK_OK(ring_attach(&r, IPC_PRODUCER | IPC_CONSUMER));
            CHECK_ERR(ipc_ring_send(&r, "abc", 3, 0), 0);
            CHECK_EQ(ipc_ring_recv(&r, save, sizeof save, 0), 3);
            CHECK_OK(ipc_ring_close(&r));
        }
        CHECK_EQ(munmap(mem, size), 0);
        ring_teardown();
    }
}

/* ---- 10. limits, bad arguments, fork, leaks ---- */

static ipc_ring g_many[130];

/* 128 handles at once, in one process: the 129th is -EBUSY for any role and leaks
   nothing; one closed frees a place; all close cleanly. */
TEST(ringmp_128_handles_then_ebusy) {
    int k;
    for (k = 0; k < 2; k++) {
        unsigned kind = k ? IPC_RING_MPSC : IPC_RING_MPMC;
        ipc_ring_opts o = mp_opts(kind | IPC_RING_MSG(16), 4 * KiB);
        unsigned char buf[16];
        int i, fds, maps, fds0, maps0;
        fds0 = th_fd_count();
        maps0 = th_maps_now();
        CHECK_OK(ipc_ring_create(&g_many[0], NULL, IPC_CONSUMER, &o));
        for (i = 1; i < 128; i++)
            if (ipc_ring_attach_fd(&g_many[i], ipc_ring_fd(&g_many[0]), IPC_PRODUCER) != 0)
                th_fail(__FILE__, __LINE__, "handle %d: %d", i,
                        ipc_ring_attach_fd(&g_many[i], ipc_ring_fd(&g_many[0]), IPC_PRODUCER));
        fds = th_fd_count();
        maps = th_maps_now();
        CHECK_ERR(ipc_ring_attach_fd(&g_many[128], ipc_ring_fd(&g_many[0]), IPC_PRODUCER), -EBUSY);
        CHECK_ERR(ipc_ring_attach_fd(&g_many[128], ipc_ring_fd(&g_many[0]), IPC_CONSUMER), -EBUSY);
        CHECK_ERR(
            ipc_ring_attach_fd(&g_many[128], ipc_ring_fd(&g_many[0]), IPC_PRODUCER | IPC_CONSUMER),
            -EBUSY);
        CHECK_ERR(ipc_ring_close(&g_many[128]), -EBADF);
        CHECK_EQ(th_fd_count(), fds);
        CHECK_EQ(th_maps_now(), maps);
        /* every handle works */
        for (i = 1; i < 128; i++) {
            buf[0] = (unsigned char)i;
            CHECK_ERR(ipc_ring_send(&g_many[i], buf, 1, 0), 0);
            CHECK_EQ(ipc_ring_recv(&g_many[0], buf, sizeof buf, 0), 1);
            CHECK_EQ(buf[0], i);
        }
        /* one closed: a place for one more */
        CHECK_OK(ipc_ring_close(&g_many[77]));
        CHECK_OK(ipc_ring_attach_fd(&g_many[128], ipc_ring_fd(&g_many[0]), IPC_PRODUCER));
        CHECK_ERR(ipc_ring_attach_fd(&g_many[129], ipc_ring_fd(&g_many[0]), IPC_PRODUCER), -EBUSY);
        CHECK_ERR(ipc_ring_send(&g_many[128], "z", 1, 0), 0);
        CHECK_EQ(ipc_ring_recv(&g_many[0], buf, sizeof buf, 0), 1);
        for (i = 1; i <= 128; i++)
            if (i != 77) CHECK_OK(ipc_ring_close(&g_many[i]));
        CHECK_OK(ipc_ring_close(&g_many[0]));
        CHECK_EQ(th_fd_count(), fds0);
        /* The first pass grows ipc.h's process-wide table of lock fds for good (musl's
           malloc maps it): mappings are compared from the second pass on. */
        if (k) CHECK_EQ(th_maps_now(), maps0);
    }
}

/* Child: attach g_n producer handles, flag READY, wait to be killed. */
static void many_holder(void *arg) {
    uint32_t i;
    (void)arg;
    for (i = 0; i < g_n; i++)
        CHECK_OK(ring_attach(&g_many[i], IPC_PRODUCER));
    flag_set(F_READY, 1);
    th_sleep_ms(20000);
}

/* The limit counts the handles of every process, and the places of a process that died
   are free again. */
TEST(ringmp_128_handles_across_processes_freed_by_death) {
    ipc_ring c, x;
    pid_t pid;
    int i;
    sh_map();
    ring_setup(IPC_RING_MPMC | IPC_RING_MSG(16), 4 * KiB, 1);
    CHECK_OK(ring_attach(&c, IPC_CONSUMER));
    g_n = 100;
    pid = th_spawn(many_holder, NULL);
    flag_wait(F_READY, 1, 5000);
    for (i = 0; i < 27; i++)
        CHECK_OK(ring_attach(&g_many[i], IPC_PRODUCER));
    CHECK_ERR(ring_attach(&x, IPC_PRODUCER), -EBUSY);
    CHECK_ERR(ring_attach(&x, IPC_CONSUMER), -EBUSY);
    kill(pid, SIGKILL);
    CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
    for (i = 27; i < 127; i++)
        CHECK_OK(ring_attach(&g_many[i], IPC_PRODUCER));
    CHECK_ERR(ring_attach(&x, IPC_PRODUCER), -EBUSY);
    for (i = 0; i < 127; i++)
        CHECK_OK(ipc_ring_close(&g_many[i]));
    CHECK_ERR(ipc_ring_recv(&c, &x, sizeof x, 3000 * MS), -EPIPE);
    CHECK_OK(ipc_ring_close(&c));
    ring_teardown();
    sh_unmap();
}

/* Child: hold the MPSC consumer (flag READY) until killed. */
static void solo_consumer(void *arg) {
    ipc_ring c;
    (void)arg;
    CHECK_OK(ring_attach(&c, IPC_CONSUMER));
    flag_set(F_READY, 1);
    th_sleep_ms(20000);
}

/* Child: try to attach the consumer; the result goes to rc[1]. */
static void try_consumer(void *arg) {
    ipc_ring c;
    (void)arg;
    g_sh->rc[1] = ring_attach(&c, IPC_CONSUMER);
    if (g_sh->rc[1] == 0) CHECK_OK(ipc_ring_close(&c));
}

/* MPSC: one consumer at a time, in any process; any number of producers. A consumer role
   freed by close or by death can be taken again. */
TEST(ringmp_mpsc_single_consumer) {
    unsigned char buf[64];
    ipc_ring p[4], c, x;
    int fds, i;
    pid_t pid;
    sh_map();
    ring_setup(IPC_RING_MPSC | MSG_200, 4 * KiB, 1);
    for (i = 0; i < 4; i++)
        CHECK_OK(ring_attach(&p[i], IPC_PRODUCER));
    CHECK_OK(ring_attach(&c, IPC_CONSUMER));
    fds = th_fd_count();
    CHECK_ERR(ring_attach(&x, IPC_CONSUMER), -EBUSY);
    CHECK_ERR(ring_attach(&x, IPC_PRODUCER | IPC_CONSUMER), -EBUSY);
    CHECK_ERR(ipc_ring_attach_fd(&x, ipc_ring_fd(&c), IPC_CONSUMER), -EBUSY);
    CHECK_EQ(th_fd_count(), fds);
    pid = th_spawn(try_consumer, NULL);
    CHECK_EQ(th_join(pid, JOIN_MS), 0);
    CHECK_ERR(g_sh->rc[1], -EBUSY);
    for (i = 0; i < 4; i++)
        CHECK_ERR(ipc_ring_send(&p[i], "abcd", (size_t)i + 1, 0), 0);
    for (i = 0; i < 4; i++)
        CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, 0), i + 1);
    /* freed by close */
    CHECK_OK(ipc_ring_close(&c));
    CHECK_OK(ring_attach(&x, IPC_PRODUCER | IPC_CONSUMER));
    CHECK_ERR(ring_attach(&c, IPC_CONSUMER), -EBUSY);
    CHECK_OK(ipc_ring_close(&x));
    /* freed by death */
    pid = th_spawn(solo_consumer, NULL);
    flag_wait(F_READY, 1, 5000);
    CHECK_ERR(ring_attach(&c, IPC_CONSUMER), -EBUSY);
    kill(pid, SIGKILL);
    CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
    CHECK_OK(ring_attach(&c, IPC_CONSUMER));
    CHECK_ERR(ipc_ring_send(&p[2], "xyz", 3, 0), 0);
    CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, 0), 3);
    for (i = 0; i < 4; i++)
        CHECK_OK(ipc_ring_close(&p[i]));
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 1000 * MS), -EPIPE);
    CHECK_OK(ipc_ring_close(&c));
    ring_teardown();
    sh_unmap();
}

/* Impossible kinds, slot sizes and flags are -EINVAL and leak nothing. */
TEST(ringmp_bad_flags) {
    static const struct {
        unsigned flags;
        size_t cap;
        const char *what;
    } bad[] = {
        {4, 0, "kind 4"},
        {0xff, 0, "kind 255"},
        {IPC_RING_MPMC | (1u << 17), 0, "MPMC with IPC_RING_OVERWRITE (bit 17, broadcast only)"},
        {IPC_RING_MPSC | (1u << 17), 0, "MPSC with IPC_RING_OVERWRITE (bit 17, broadcast only)"},
        {IPC_RING_MPMC | 0x80, 0, "kind 129"},
        {IPC_RING_SPSC | IPC_RING_MSG(64), 0, "SPSC with a slot size"},
        {IPC_RING_MPMC | (4u << 24), 0, "slot shift 4"},
        {IPC_RING_MPSC | (1u << 24), 0, "slot shift 1"},
        {IPC_RING_MPMC | IPC_RING_MSG(1u << 30), 0, "a slot over 1 GiB"},
        {IPC_RING_MPMC | IPC_RING_MSG((1u << 29) + 1), 0, "two 1 GiB slots"},
        {IPC_RING_MPMC | (63u << 24), 0, "slot shift 63"},
        {IPC_RING_MPMC | (1u << 20), 0, "an unknown flag bit"},
        {IPC_RING_MPMC | (1u << 30), 0, "an unknown high flag bit"},
        {IPC_RING_MPMC | MSG_200, ((size_t)1 << 30) + 1, "capacity over 1 GiB"},
    };
    ipc_ring r;
    ipc_ring_opts o;
    size_t i;
    int fds, maps;
    /* warm up, then nothing may change */
    o = mp_opts(IPC_RING_MPMC, 0);
    CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o));
    CHECK_OK(ipc_ring_close(&r));
    fds = th_fd_count();
    maps = th_maps_now();
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc;
        o = mp_opts(bad[i].flags, bad[i].cap);
        if ((rc = ipc_ring_create(&r, NULL, IPC_PRODUCER, &o)) != -EINVAL)
            th_fail(__FILE__, __LINE__, "%s (flags %#x): create gave %d (%s)", bad[i].what,
                    bad[i].flags, rc, ipc_strerror(rc));
        CHECK_ERR(ipc_ring_close(&r), -EBADF);
        th_name(g_name, sizeof g_name, "badflags");
        CHECK_ERR(ipc_ring_create(&r, g_name, IPC_CONSUMER, &o), -EINVAL);
        CHECK_ERR(ipc_ring_unlink(g_name), -ENOENT); /* no half-made name left */
    }
    o = mp_opts(IPC_RING_MPMC | MSG_200, 0);
    CHECK_ERR(ipc_ring_create(&r, NULL, 0, &o), -EINVAL);
    CHECK_ERR(ipc_ring_create(&r, NULL, 4, &o), -EINVAL);
    CHECK_ERR(ipc_ring_create(NULL, NULL, IPC_PRODUCER, &o), -EINVAL);
    CHECK_EQ(th_fd_count(), fds);
    CHECK_EQ(th_maps_now(), maps);
    /* a slot larger than the capacity asked for: the ring is made bigger (two slots) */
    o = mp_opts(IPC_RING_MPMC | IPC_RING_MSG(8000), 4 * KiB);
    CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o));
    CHECK_EQ(ipc_ring_max_msg(&r), 8176);
    CHECK_ERR(ipc_ring_send(&r, "a", 1, 0), 0);
    CHECK_ERR(ipc_ring_send(&r, "b", 1, 0), 0);
    CHECK_ERR(ipc_ring_send(&r, "c", 1, 0), -EAGAIN);
    CHECK_OK(ipc_ring_close(&r));
    /* prefault combines with the slot kinds */
    o = mp_opts(IPC_RING_MPSC | MSG_200 | IPC_RING_PREFAULT, 8 * KiB);
    CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER | IPC_CONSUMER, &o));
    CHECK_ERR(ipc_ring_send(&r, "abc", 3, 0), 0);
    CHECK_EQ(ipc_ring_recv(&r, g_name, sizeof g_name, 0), 3);
    CHECK_OK(ipc_ring_close(&r));
}

static ipc_ring g_pa, g_ca; /* the parent's handles, copied into the forked child */

/* Child: every call on the copies of the parent's handles is -EBADF (the roles are the
   parent's); the fd still attaches anew; closing the copies leaves the parent alone. */
static void fork_child(void *arg) {
    unsigned char buf[64];
    const void *m;
    ipc_ring mine;
    void *w;
    (void)arg;
    CHECK_ERR(ipc_ring_send(&g_pa, "x", 1, 0), -EBADF);
    CHECK_ERR(ipc_ring_reserve(&g_pa, 1, &w, 0), -EBADF);
    CHECK_ERR(ipc_ring_commit(&g_pa, 1), -EBADF); /* the parent holds a reservation */
    CHECK_ERR(ipc_ring_recv(&g_ca, buf, sizeof buf, 0), -EBADF);
    CHECK_ERR(ipc_ring_peek(&g_ca, &m, 0), -EBADF);
    CHECK_ERR(ipc_ring_release(&g_ca), -EBADF); /* the parent holds a peeked message */
    CHECK(ipc_ring_fd(&g_pa) >= 0);
    CHECK_OK(ipc_ring_attach_fd(&mine, ipc_ring_fd(&g_pa), IPC_PRODUCER));
    CHECK_ERR(ipc_ring_send(&mine, "child", 5, 0), 0);
    CHECK_OK(ipc_ring_close(&mine));
    CHECK_OK(ipc_ring_close(&g_pa));
    CHECK_OK(ipc_ring_close(&g_ca));
}

TEST(ringmp_fork_copies_hold_no_role) {
    int k;
    for (k = 0; k < 2; k++) {
        ipc_ring_opts o = mp_opts((k ? IPC_RING_MPSC : IPC_RING_MPMC) | MSG_200, 4 * KiB);
        unsigned char buf[64];
        const void *m;
        ipc_ring x;
        void *w;
        pid_t pid;
        CHECK_OK(ipc_ring_create(&g_pa, NULL, IPC_PRODUCER, &o));
        CHECK_OK(ipc_ring_attach_fd(&g_ca, ipc_ring_fd(&g_pa), IPC_CONSUMER));
        CHECK_ERR(ipc_ring_send(&g_pa, "first", 5, 0), 0);
        CHECK_EQ(ipc_ring_peek(&g_ca, &m, 0), 5);
        CHECK_OK(ipc_ring_reserve(&g_pa, 6, &w, 0));
        memcpy(w, "second", 6);
        pid = th_spawn(fork_child, NULL);
        CHECK_EQ(th_join(pid, JOIN_MS), 0);
        /* the parent's reservation, peek and roles are intact */
        CHECK(memcmp(m, "first", 5) == 0);
        CHECK_ERR(ipc_ring_release(&g_ca), 0);
        CHECK_ERR(ipc_ring_commit(&g_pa, 6), 0);
        CHECK_EQ(ipc_ring_recv(&g_ca, buf, sizeof buf, 0), 6); /* reserved before the fork */
        CHECK(memcmp(buf, "second", 6) == 0);
        CHECK_EQ(ipc_ring_recv(&g_ca, buf, sizeof buf, 0), 5);
        CHECK(memcmp(buf, "child", 5) == 0);
        if (k) CHECK_ERR(ipc_ring_attach_fd(&x, ipc_ring_fd(&g_pa), IPC_CONSUMER), -EBUSY);
        CHECK_EQ(lost_of(&g_ca), 0);
        CHECK_OK(ipc_ring_close(&g_ca));
        CHECK_OK(ipc_ring_close(&g_pa));
    }
}

/* Create, open, attach, fail, poison and close MPMC and MPSC rings many times: the fds
   and mappings of the process come back to where they were. */
TEST(ringmp_no_fd_or_map_leaks) {
    ipc_ring_opts o;
    ipc_ring a, b, c;
    unsigned char buf[64], *mem;
    size_t size;
    int fds, maps, i;
    o = mp_opts(IPC_RING_MPSC | MSG_200, 4 * KiB);
    CHECK_OK(ipc_ring_create(&a, NULL, IPC_PRODUCER, &o));
    CHECK_OK(ipc_ring_close(&a));
    fds = th_fd_count();
    maps = th_maps_now();
    for (i = 0; i < 20; i++) {
        unsigned kind = i % 2 ? IPC_RING_MPSC : IPC_RING_MPMC;
        o = mp_opts(kind | IPC_RING_MSG(100), 8 * KiB);
        th_name(g_name, sizeof g_name, "leak");
        CHECK_OK(ipc_ring_create(&a, g_name, IPC_PRODUCER, &o));
        CHECK_OK(ipc_ring_open(&b, g_name, IPC_CONSUMER));
        if (kind == IPC_RING_MPSC)
            CHECK_ERR(ipc_ring_attach_fd(&c, ipc_ring_fd(&a), IPC_CONSUMER), -EBUSY);
        CHECK_ERR(ipc_ring_create(&c, g_name, IPC_CONSUMER, &o), -EEXIST);
        CHECK_ERR(ipc_ring_send(&a, buf, 200, 0), -EMSGSIZE);
        CHECK_ERR(ipc_ring_send(&a, "hello", 5, 0), 0);
        CHECK_EQ(ipc_ring_recv(&b, buf, sizeof buf, 0), 5);
        CHECK_OK(ipc_ring_reserve(&a, 10, (void **)&mem, 0)); /* closed while reserved */
        CHECK_OK(ipc_ring_close(&a));
        CHECK_OK(ipc_ring_close(&b));
        CHECK_OK(ipc_ring_unlink(g_name));
        CHECK_ERR(ipc_ring_open(&b, g_name, IPC_CONSUMER), -ENOENT);
        /* a poisoned handle closes cleanly */
        CHECK_OK(ipc_ring_create(&a, NULL, IPC_PRODUCER | IPC_CONSUMER, &o));
        CHECK_ERR(ipc_ring_send(&a, "x", 1, 0), 0);
        g_named = 0;
        g_fd = ipc_ring_fd(&a);
        mem = raw_map(&size);
        memset(mem + hdr_size() + 8, 0xff, 8); /* length and check of slot 0 */
        CHECK_ERR(ipc_ring_recv(&a, buf, sizeof buf, 0), -EBADMSG);
        CHECK_ERR(ipc_ring_send(&a, "x", 1, 0), -EBADMSG);
        CHECK_EQ(munmap(mem, size), 0);
        CHECK_OK(ipc_ring_close(&a));
        g_fd = -1;
        if (th_fd_count() != fds || th_maps_now() != maps)
            th_fail(__FILE__, __LINE__, "round %d: fds %d (were %d), maps %d (were %d)", i,
                    th_fd_count(), fds, th_maps_now(), maps);
    }
}

/* Every fd a slot-kind ring opens is close-on-exec. */
TEST(ringmp_fds_cloexec) {
    ipc_ring_opts o = mp_opts(IPC_RING_MPMC | MSG_200, 4 * KiB);
    unsigned char before[1024];
    ipc_ring a, b, c;
    int fd, n = 0;
    for (fd = 0; fd < 1024; fd++)
        before[fd] = fcntl(fd, F_GETFD) >= 0;
    th_name(g_name, sizeof g_name, "cloexec");
    CHECK_OK(ipc_ring_create(&a, g_name, IPC_PRODUCER, &o));
    CHECK_OK(ipc_ring_open(&b, g_name, IPC_CONSUMER));
    CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&a), IPC_PRODUCER));
    for (fd = 0; fd < 1024; fd++) {
        int f = fcntl(fd, F_GETFD);
        if (f < 0 || before[fd]) continue;
        n++;
        if (!(f & FD_CLOEXEC)) th_fail(__FILE__, __LINE__, "fd %d lacks FD_CLOEXEC", fd);
    }
    CHECK(n >= 3); /* three handles */
    CHECK_OK(ipc_ring_close(&c));
    CHECK_OK(ipc_ring_close(&b));
    CHECK_OK(ipc_ring_close(&a));
    CHECK_OK(ipc_ring_unlink(g_name));
}
