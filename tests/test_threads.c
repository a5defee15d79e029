/* tests/test_threads.c - section 6 with threads: rings shared by threads of one process, each
   thread with a handle of its own (ipc_ring_attach_fd on the creator's fd). Rings are built
   for processes, and every other ring test runs its peers as processes; these are the ones
   ThreadSanitizer can judge (tests/suite.sh runs them, and ringpoll_*, under TSan), because
   TSan sees every access and every atomic of the threads of one process - as long as they
   touch the same addresses: see "one mapping" below.

   Every message names its sender and sequence number and carries a check word and a
   pattern derived from both, so a torn, shifted or foreign message shows; receivers mark a
   bitmap (an atomic fetch-or per message), so a duplicate shows at once and a loss at the
   end. Calls mix the copying and the zero-copy API and the three kinds of timeout. */
#include "harness.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN 1
#endif
#endif
#ifndef TSAN
#define TSAN 0
#endif

#define MS ((int64_t)1000000)

#define NT_MAX 8 /* threads of one role at most */
#if TH_SLOW
#define PER_THREAD 1500u /* messages per producer (ASan, qemu: many times slower) */
#else
#define PER_THREAD 6000u
#endif
#define HDR     16u   /* id, seq, len, check */
#define LEN_MAX 1024u /* longest message: several records fit even a one-page ring */

typedef struct tmsg {
    uint32_t id, seq, len, check;
} tmsg;

/* What the threads of one test share (in-process, so plain memory and atomics). */
typedef struct world {
    int fd;               /* the creator's ring fd, to attach to */
    unsigned flags;       /* ring kind */
    size_t max_msg;       /* largest message */
    int attached;         /* handles attached so far (atomic) */
    uint64_t got;         /* messages received, over every consumer (atomic) */
    uint64_t *bits;       /* one bit per (producer, seq) */
    uint32_t per;         /* messages per producer */
    uint32_t torn_ok;     /* broadcast overwrite: lapped readers skip messages */
    unsigned char *abase; /* TSan: the one mapping every handle uses (NULL otherwise) */
    size_t ahdr, amap;    /* its header bytes and its size */
} world;

typedef struct worker {
    world *w;
    int id;
    uint64_t seed;
    uint64_t got;     /* this consumer's messages */
    uint64_t lapped;  /* broadcast overwrite: -EOVERFLOW seen */
    pthread_t thread; /* set by start */
} worker;

static uint32_t check_of(uint32_t id, uint32_t seq) {
    return (uint32_t)th_mix64(((uint64_t)id << 32) | seq);
}

/* Length of message (id, seq): spread over [HDR, max] so records of every size mix. */
static uint32_t len_of(uint32_t id, uint32_t seq, size_t max) {
    return HDR + (uint32_t)(th_mix64(((uint64_t)seq << 8) ^ id) % (max - HDR + 1));
}

static void fill(unsigned char *b, uint32_t id, uint32_t seq, size_t max) {
    tmsg m;
    m.id = id;
    m.seq = seq;
    m.len = len_of(id, seq, max);
    m.check = check_of(id, seq);
    memcpy(b, &m, sizeof m);
    th_pat_fill(b + HDR, m.len - HDR, m.check);
}

/* A message must be whole: its header consistent with its length, its pattern intact.
   Returns its (id, seq). */
static tmsg parse(const unsigned char *b, ssize_t n, size_t max, int line) {
    tmsg m;
    if (n < (ssize_t)HDR) th_fail(__FILE__, line, "a message of %zd bytes", n);
    memcpy(&m, b, sizeof m);
    if (m.id >= NT_MAX || m.check != check_of(m.id, m.seq) || m.len != (uint32_t)n ||
        m.len != len_of(m.id, m.seq, max))
        th_fail(__FILE__, line, "bad message: id %u seq %u len %u (got %zd) check %08x", m.id,
                m.seq, m.len, n, m.check);
    th_pat_check(__FILE__, line, b + HDR, 0, m.len - HDR, m.check);
    return m;
}

/* Mark (id, seq) received: a second time is a duplicate. */
static void mark(world *w, tmsg m) {
    uint64_t bit = (uint64_t)m.id * w->per + m.seq, old;
    if (m.seq >= w->per) th_fail(__FILE__, __LINE__, "seq %u beyond %u", m.seq, w->per);
    old = __atomic_fetch_or(&w->bits[bit / 64], (uint64_t)1 << (bit % 64), __ATOMIC_RELAXED);
    if (old & ((uint64_t)1 << (bit % 64)))
        th_fail(__FILE__, __LINE__, "message %u/%u received twice", m.id, m.seq);
}

/* A timeout for one call: try once, 1 ms, or none. */
static int64_t pick_timeout(uint64_t *rs) {
    unsigned k = (unsigned)(th_rnd64(rs) % 4);
    return k == 0 ? 0 : k == 1 ? 1 * MS : IPC_FOREVER;
}

/* A full or empty ring: 1 to try again. The error must match the timeout. */
static int again(long long rc, int64_t to, int line) {
    if (rc != -EAGAIN && rc != -ETIMEDOUT) return 0;
    if (to == IPC_FOREVER || (to == 0) != (rc == -EAGAIN))
        th_fail(__FILE__, line, "timeout %lld gave %lld (%s)", (long long)to, rc,
                ipc_strerror((int)rc));
    if (to == 0) sched_yield();
    return 1;
}

/* ---- one mapping (TSan builds) ----
   Each handle maps the ring itself, at addresses of its own, and TSan tells memory apart by
   address: it would see neither two threads' conflicting accesses to a slot nor the atomics
   that order them, and would judge nothing of the ring. So under TSan every handle of a test
   is pointed at one mapping that the test makes the way ipc.h does (header and data area,
   the data area again behind it): same object, same layout, same bytes. This reaches into
   the handle's private fields base and data (ipc.h keeps data = base + header); each handle
   gets its own mapping back before ipc_ring_close, which unmaps it. */
static void anchor_map(world *w, const ipc_ring *own) {
    unsigned char *b;
    size_t cap = (size_t)own->cap;
    if (!TSAN) return;
    w->ahdr = (size_t)(own->data - own->base);
    w->amap = own->map_size;
    CHECK_EQ(w->amap, w->ahdr + 2 * cap);
    b = (unsigned char *)mmap(NULL, w->amap, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                              -1, 0);
    CHECK(b != MAP_FAILED);
    CHECK(mmap(b, w->ahdr + cap, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, w->fd, 0) == b);
    CHECK(mmap(b + w->ahdr + cap, cap, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, w->fd,
               (off_t)w->ahdr) == b + w->ahdr + cap);
    w->abase = b;
}

static void anchor_unmap(world *w) {
    if (w->abase) CHECK_EQ(munmap(w->abase, w->amap), 0);
    w->abase = NULL;
}

/* Point r at the test's mapping, keeping its own in save[2]. */
static void alias(world *w, ipc_ring *r, unsigned char **save) {
    save[0] = r->base;
    save[1] = r->data;
    if (!w->abase) return;
    r->base = w->abase;
    r->data = w->abase + w->ahdr;
}

static void close_ring(ipc_ring *r, unsigned char **save) {
    r->base = save[0];
    r->data = save[1];
    CHECK_OK(ipc_ring_close(r));
}

static void attach(world *w, ipc_ring *r, int role, unsigned char **save) {
    CHECK_OK(ipc_ring_attach_fd(r, w->fd, role));
    alias(w, r, save);
    __atomic_fetch_add(&w->attached, 1, __ATOMIC_RELEASE);
}

/* Wait (bounded) until n handles have attached. */
static void await_attached(world *w, int n) {
    int64_t dl = ipc_deadline_make(5000 * MS);
    while (__atomic_load_n(&w->attached, __ATOMIC_ACQUIRE) < n) {
        if (ipc_deadline_left(dl) == 0) th_fail(__FILE__, __LINE__, "threads did not attach");
        th_sleep_ms(1);
    }
}

/* Send messages (id, 0..per-1) on r, by send or by reserve + commit. */
static void produce(world *w, ipc_ring *r, uint32_t id, uint64_t *rs) {
    unsigned char buf[4096];
    uint32_t seq;
    for (seq = 0; seq < w->per; seq++) {
        for (;;) {
            int64_t to = pick_timeout(rs);
            int rc;
            if (th_rnd64(rs) & 1) {
                fill(buf, id, seq, w->max_msg);
                rc = ipc_ring_send(r, buf, len_of(id, seq, w->max_msg), to);
            } else {
                void *p;
                rc = ipc_ring_reserve(r, len_of(id, seq, w->max_msg), &p, to);
                if (rc == 0) {
                    fill((unsigned char *)p, id, seq, w->max_msg);
                    rc = ipc_ring_commit(r, len_of(id, seq, w->max_msg));
                    CHECK_ERR(rc, 0);
                }
            }
            if (rc == 0) break;
            if (!again(rc, to, __LINE__)) CHECK_ERR(rc, 0);
        }
    }
}

/* Take one message from r, by recv or by peek + release: its length, or the error (for an
   overwrite ring, release's -EOVERFLOW: the peeked message was overwritten meanwhile). */
static ssize_t take(world *w, ipc_ring *r, unsigned char *buf, size_t size, int64_t to,
                    uint64_t *rs) {
    const void *p;
    ssize_t n;
    int rc;
    if (th_rnd64(rs) & 1) return ipc_ring_recv(r, buf, size, to);
    n = ipc_ring_peek(r, &p, to);
    if (n < 0) return n;
    if ((size_t)n > w->max_msg) th_fail(__FILE__, __LINE__, "peeked %zd bytes", n);
    memcpy(buf, p, (size_t)n);
    rc = ipc_ring_release(r);
    if (rc == -EOVERFLOW && (w->flags & IPC_RING_OVERWRITE)) return rc; /* overwritten: discard */
    CHECK_ERR(rc, 0);
    return n;
}

/* Receive until -EPIPE, checking and marking every message; per-producer order too
   (each producer's messages arrive in its order, whichever consumer takes them). */
static void consume(worker *k, ipc_ring *r) {
    world *w = k->w;
    unsigned char buf[4096];
    uint32_t next[NT_MAX];
    memset(next, 0, sizeof next);
    for (;;) {
        int64_t to = pick_timeout(&k->seed);
        ssize_t n = take(w, r, buf, sizeof buf, to, &k->seed);
        tmsg m;
        if (n == -EPIPE) break;
        if (n < 0) {
            if (!again(n, to, __LINE__)) CHECK_ERR(n, 0);
            continue;
        }
        m = parse(buf, n, w->max_msg, __LINE__);
        if (m.seq < next[m.id])
            th_fail(__FILE__, __LINE__, "producer %u: seq %u after %u", m.id, m.seq,
                    next[m.id] - 1);
        next[m.id] = m.seq + 1;
        mark(w, m);
        k->got++;
    }
    __atomic_fetch_add(&w->got, k->got, __ATOMIC_RELAXED);
}

static void *producer_thread(void *arg) {
    worker *k = (worker *)arg;
    unsigned char *save[2];
    ipc_ring r;
    attach(k->w, &r, IPC_PRODUCER, save);
    produce(k->w, &r, (uint32_t)k->id, &k->seed);
    close_ring(&r, save);
    return NULL;
}

static void *consumer_thread(void *arg) {
    worker *k = (worker *)arg;
    unsigned char *save[2];
    ipc_ring r;
    attach(k->w, &r, IPC_CONSUMER, save);
    consume(k, &r);
    close_ring(&r, save);
    return NULL;
}

static void start(worker *k, void *(*fn)(void *)) {
    CHECK_EQ(pthread_create(&k->thread, NULL, fn, k), 0);
}

static void finish(worker *k) {
    CHECK_EQ(pthread_join(k->thread, NULL), 0);
}

static world *world_new(unsigned flags, uint32_t per, int np) {
    world *w = (world *)th_xmalloc(sizeof *w);
    size_t words = ((size_t)np * per + 63) / 64;
    memset(w, 0, sizeof *w);
    w->flags = flags;
    w->per = per;
    w->bits = (uint64_t *)th_xmalloc(words * sizeof(uint64_t));
    memset(w->bits, 0, words * sizeof(uint64_t));
    return w;
}

static void world_free(world *w) {
    free(w->bits);
    free(w);
}

/* Every message of np producers received exactly once (mark() caught duplicates). */
static void all_received(const world *w, int np) {
    uint64_t i, total = (uint64_t)np * w->per;
    for (i = 0; i < total; i++)
        if (!(w->bits[i / 64] & ((uint64_t)1 << (i % 64))))
            th_fail(__FILE__, __LINE__, "message %u/%u lost", (unsigned)(i / w->per),
                    (unsigned)(i % w->per));
    CHECK_EQ(w->got, total);
}

/* The creator's handle is producer 0, run by the test's own thread; np - 1 producer threads
   and nc consumer threads attach. Producer 0 starts once every thread has attached, so -EPIPE
   (every producer that attached has closed) can only come after the last one closed. */
static void many_to_many(unsigned flags, size_t cap, int np, int nc) {
    world *w = world_new(flags, PER_THREAD, np);
    worker pk[NT_MAX], ck[NT_MAX];
    ipc_ring_opts o;
    unsigned char *save[2];
    ipc_ring own;
    uint64_t rs = 99;
    int i;
    memset(&o, 0, sizeof o);
    o.flags = flags;
    o.capacity = cap;
    CHECK_OK(ipc_ring_create(&own, NULL, IPC_PRODUCER, &o));
    w->fd = ipc_ring_fd(&own);
    w->max_msg = ipc_ring_max_msg(&own);
    CHECK(w->max_msg >= HDR);
    anchor_map(w, &own);
    alias(w, &own, save);
    if (w->max_msg > LEN_MAX) w->max_msg = LEN_MAX;
    memset(pk, 0, sizeof pk);
    memset(ck, 0, sizeof ck);
    for (i = 0; i < nc; i++) {
        ck[i].w = w;
        ck[i].seed = 1000u + (uint64_t)i;
        start(&ck[i], consumer_thread);
    }
    for (i = 1; i < np; i++) {
        pk[i].w = w;
        pk[i].id = i;
        pk[i].seed = 2000u + (uint64_t)i;
        start(&pk[i], producer_thread);
    }
    await_attached(w, np - 1 + nc);
    produce(w, &own, 0, &rs);
    close_ring(&own, save);
    for (i = 1; i < np; i++)
        finish(&pk[i]);
    for (i = 0; i < nc; i++)
        finish(&ck[i]);
    anchor_unmap(w);
    all_received(w, np);
    for (i = 0; i < nc; i++) /* every consumer got some: they really took turns */
        if (nc > 1 && ck[i].got == 0) th_fail(__FILE__, __LINE__, "consumer %d got nothing", i);
    world_free(w);
}

TEST_T(threads_mpmc_4_producers_4_consumers, 60000) {
    many_to_many(IPC_RING_MPMC | IPC_RING_MSG(200), 16 * 1024, 4, 4);
}

TEST_T(threads_mpsc_4_producers, 60000) {
    many_to_many(IPC_RING_MPSC | IPC_RING_MSG(100), 8 * 1024, 4, 1);
}

/* SPSC: variable-length records that wrap a small ring, both sides blocking in turn. */
TEST_T(threads_spsc_producer_and_consumer, 60000) {
    many_to_many(IPC_RING_SPSC, 4096, 1, 1);
}

/* ---- broadcast: every reader gets every message, in order ---- */

static void *reader_thread(void *arg) {
    worker *k = (worker *)arg;
    world *w = k->w;
    unsigned char buf[4096];
    unsigned char *save[2];
    uint32_t next = 0;
    ipc_ring r;
    attach(w, &r, IPC_CONSUMER, save);
    for (;;) {
        int64_t to = pick_timeout(&k->seed);
        ssize_t n = take(w, &r, buf, sizeof buf, to, &k->seed);
        tmsg m;
        if (n == -EPIPE) break;
        if (n == -EOVERFLOW && w->torn_ok) { /* lapped or overwritten: later messages only */
            k->lapped++;
            continue;
        }
        if (n < 0) {
            if (!again(n, to, __LINE__)) CHECK_ERR(n, 0);
            continue;
        }
        m = parse(buf, n, w->max_msg, __LINE__);
        if (m.id != 0) th_fail(__FILE__, __LINE__, "message from producer %u", m.id);
        if (w->torn_ok ? m.seq < next : m.seq != next)
            th_fail(__FILE__, __LINE__, "reader %d: seq %u, want %u", k->id, m.seq, next);
        next = m.seq + 1;
        k->got++;
    }
    if (!w->torn_ok) CHECK_EQ(next, w->per);
    close_ring(&r, save);
    return NULL;
}

static void broadcast(unsigned flags, int nreaders) {
    world *w = world_new(flags, PER_THREAD, 1);
    worker rk[NT_MAX];
    unsigned char *save[2];
    ipc_ring_opts o;
    ipc_ring p;
    uint64_t rs = 77;
    int i;
    memset(&o, 0, sizeof o);
    o.flags = flags;
    o.capacity = 8 * 1024;
    w->torn_ok = (flags & IPC_RING_OVERWRITE) != 0;
    CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
    w->fd = ipc_ring_fd(&p);
    w->max_msg = ipc_ring_max_msg(&p);
    if (w->max_msg > LEN_MAX) w->max_msg = LEN_MAX;
    anchor_map(w, &p);
    alias(w, &p, save);
    memset(rk, 0, sizeof rk);
    for (i = 0; i < nreaders; i++) {
        rk[i].w = w;
        rk[i].id = i;
        rk[i].seed = 3000u + (uint64_t)i;
        start(&rk[i], reader_thread);
    }
    await_attached(w, nreaders); /* a reader gets what is committed after it attached */
    produce(w, &p, 0, &rs);
    close_ring(&p, save);
    for (i = 0; i < nreaders; i++) {
        finish(&rk[i]);
        if (!w->torn_ok) CHECK_EQ(rk[i].got, w->per);
        CHECK(rk[i].got > 0);
    }
    anchor_unmap(w);
    world_free(w);
}

TEST_T(threads_broadcast_lossless_3_readers, 60000) {
    broadcast(IPC_RING_BROADCAST | IPC_RING_MSG(200), 3);
}

/* Overwrite: readers may be lapped (-EOVERFLOW, then on from the oldest message), but what
   they get is never torn and never out of order. Not under TSan: an overwrite ring is a
   seqlock by design (a reader copies a slot, or reads a peeked one, while the producer may
   be writing it, and the sequence check after the copy discards what was torn), which TSan
   reports as the data race it formally is. */
TEST_T(threads_broadcast_overwrite_3_readers, 60000) {
    if (TSAN) th_skip("seqlock reads race with the producer by design (see above)");
    broadcast(IPC_RING_BROADCAST | IPC_RING_OVERWRITE | IPC_RING_MSG(200), 3);
}

/* ---- pollfd: the handle's poll thread and the handle's own thread, with a producer thread ---- */

/* The consumer waits on its pollfd only, draining with timeout 0 until -EAGAIN. */
TEST_T(threads_pollfd_consumer, 60000) {
    world *w = world_new(IPC_RING_SPSC, PER_THREAD, 1);
    unsigned char buf[4096];
    unsigned char *save[2];
    worker pk;
    ipc_ring_opts o;
    ipc_ring c;
    uint32_t next = 0;
    int pfd, done = 0;
    memset(&o, 0, sizeof o);
    o.capacity = 4096;
    CHECK_OK(ipc_ring_create(&c, NULL, IPC_CONSUMER, &o));
    w->fd = ipc_ring_fd(&c);
    w->max_msg = LEN_MAX;
    anchor_map(w, &c);
    alias(w, &c, save); /* before the poll thread starts: it uses the handle's mapping */
    pfd = ipc_ring_pollfd(&c);
    CHECK(pfd >= 0);
    memset(&pk, 0, sizeof pk);
    pk.w = w;
    pk.seed = 5;
    start(&pk, producer_thread);
    await_attached(w, 1);
    while (!done) {
        struct pollfd p;
        int r;
        p.fd = pfd;
        p.events = POLLIN;
        p.revents = 0;
        r = poll(&p, 1, 5000);
        if (r < 0 && errno == EINTR) continue;
        CHECK_EQ(r, 1);
        for (;;) {
            ssize_t n = ipc_ring_recv(&c, buf, sizeof buf, 0);
            tmsg m;
            if (n == -EAGAIN) break;
            if (n == -EPIPE) {
                done = 1;
                break;
            }
            m = parse(buf, n, w->max_msg, __LINE__);
            CHECK_EQ(m.seq, next);
            next++;
        }
    }
    CHECK_EQ(next, w->per);
    finish(&pk);
    close_ring(&c, save);
    anchor_unmap(w);
    world_free(w);
}
