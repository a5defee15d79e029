/* tests/fuzz/ring.c - fuzz the ring buffers of ipc.h against arbitrary shared memory.

   Built once per ring kind (-DFZ_KIND=0..3: SPSC, MPMC, MPSC, broadcast). An input is a
   ring configuration and then a program of operations run on up to four handles of one
   anonymous ring, all in this process: send, recv, reserve, commit, peek, release with a
   zero or tiny timeout; close, attach, and "die" (a handle's role lock and mapping vanish
   as if its process were SIGKILLed); scribbles into the shared memory through a mapping
   of our own, before or after the others attach; and attaches to memfds built from the
   input (any kind, size, header and seals).

   What must hold for every input (safety):
     no crash, no read or write outside the mapping (ASan; and each reservation of address
     space gets a PROT_NONE guard page on both sides, see fz_mmap), every call returns
     within its timeout (plus slack), return codes are in the documented set, received
     lengths are 1..max_msg and fit the buffer, zero-copy pointers lie in the mapping, a
     handle that said -EBADMSG says it again on every later call, and nothing leaks fds.
   What must hold until the input first scribbles (the model, exact because one thread
   runs everything): no -EBADMSG at all; every message arrives whole, in position order,
   exactly once (once per reader for broadcast); a message that is deliverable is
   delivered (not -EAGAIN, -EPIPE); a producer with room is not refused; a lossless
   broadcast reader is never lapped; and at the end, once the producers have closed,
   the consumers drain every message that was committed and then see -EPIPE.

   The harness includes the implementation and reaches a few private fields (base,
   map_size, lockfd, fd, phead, ptail) and ipc__forkreg_close, to simulate a death in-process
   and to check pointers against the mapping. */
#define _GNU_SOURCE 1
#define mmap        fz_mmap /* the implementation's mmap calls come here (guard pages) */
#define IPC_IMPLEMENTATION
#include "ipc.h"
#undef mmap
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef FZ_KIND
#define FZ_KIND IPC_RING_SPSC
#endif

#define NH        4                         /* handles per input */
#define MAXM      1024                      /* messages the model tracks per input */
#define SLACK_NS  (3 * (int64_t)1000000000) /* a loaded machine with ASan is slow */
#define TIMED_MAX 2                         /* calls with a real timeout per input */
#define REG_OFF   4096
#define HDR_SLOT  (4096 + 8192)

/* ---- guard pages around every reservation of address space made by ipc.h ---- */

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off); /* the real one */

#define NGUARD 256
static char *fz_guard[NGUARD];
static int fz_nguard;

/* ipc__ring_map reserves hdr + 2 * capacity bytes PROT_NONE, then maps the object over
   it: a slightly larger reservation leaves an inaccessible page on both sides, so a
   stray access just outside the ring faults instead of landing in a neighbour. */
void *fz_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (!addr && prot == PROT_NONE && (flags & MAP_ANONYMOUS) && fz_nguard + 2 <= NGUARD) {
        char *p = (char *)mmap(NULL, len + 8192, prot, flags, fd, off);
        if (p == (char *)MAP_FAILED) return p;
        fz_guard[fz_nguard++] = p;
        fz_guard[fz_nguard++] = p + 4096 + len;
        return p + 4096;
    }
    return mmap(addr, len, prot, flags, fd, off);
}

static void fz_guards_free(void) {
    while (fz_nguard > 0)
        munmap(fz_guard[--fz_nguard], 4096);
}

/* ---- the model ---- */

enum { M_PENDING, M_COMMITTED, M_CANCELLED, M_TAKEN, M_FREED };

typedef struct fz_msg {
    uint64_t pos;  /* position (SPSC: byte position; others: slot position) */
    uint32_t len;  /* committed length */
    uint8_t state; /* M_* (SPSC, broadcast: M_FREED once consumed) */
    uint8_t prod;  /* handle that claimed it */
    uint8_t dead;  /* its producer died while it was pending */
} fz_msg;

typedef struct fz_h {
    ipc_ring r;
    int open, role;
    int poisoned;    /* a call said -EBADMSG: every later one must */
    size_t reserved; /* bytes reserved, 0 if none */
    unsigned char *res_ptr;
    int res_msg;     /* model entry of the reservation */
    int peeked;      /* a message is peeked (process-local state) */
    int peek_msg;    /* its model entry, -1 if unknown */
    uint64_t cursor; /* broadcast reader: position it reads next */
} fz_h;

static struct {
    int kind;
    unsigned flags;
    size_t cap, hdr, max, size;
    uint64_t nslots;
    unsigned shift;
    int memfd;
    unsigned char *view; /* our own mapping of the ring's object, for scribbles */
    fz_h h[NH];
    fz_msg m[MAXM];
    int nm;
    int tainted; /* shared memory was scribbled: only the safety checks hold */
    int deaths;
    int timed;        /* calls with a real timeout left */
    int prod_ever;    /* a producer attached at some point */
    uint64_t tailpos; /* broadcast: position of the next message to publish */
    uint64_t bc_hi;   /* broadcast: 1 + highest position a producer began to write */
} S;

/* FZ_TRACE=1 in the environment: print every operation and its result (triage). */
static int fz_tr = -1;
#define TR(...)                                                                                    \
    do {                                                                                           \
        if (fz_tr) fprintf(stderr, __VA_ARGS__);                                                   \
    } while (0)

static int64_t fz_now(void) {
    return ipc_time_now();
}

static int is_bc(void) {
    return S.kind == IPC_RING_BROADCAST;
}

static int is_slot(void) {
    return S.kind == IPC_RING_MPMC || S.kind == IPC_RING_MPSC;
}

/* The kind and largest message of a handle: those of the ring until a scribble rewrites
   the header, after which a handle that attaches takes what it says (its own geometry). */
static int hbc(const fz_h *h) {
    return h->open ? h->r.kind == IPC_RING_BROADCAST : is_bc();
}

static int hslot(const fz_h *h) {
    return h->open ? h->r.kind == IPC_RING_MPMC || h->r.kind == IPC_RING_MPSC : is_slot();
}

static size_t hmax(const fz_h *h) {
    return h->open ? ipc_ring_max_msg(&h->r) : S.max;
}

static unsigned char fz_pat(int idx, uint32_t len, uint32_t i) {
    return (unsigned char)(idx * 131 + (int)len * 7 + (int)i * 13 + 1);
}

static void fz_fill(unsigned char *p, int idx, uint32_t len) {
    uint32_t i;
    for (i = 0; i < len; i++)
        p[i] = fz_pat(idx, len, i);
}

static int fz_same(const unsigned char *p, int idx, uint32_t len) {
    uint32_t i;
    for (i = 0; i < len; i++)
        if (p[i] != fz_pat(idx, len, i)) return 0;
    return 1;
}

static int in_set(long long rc, const int *set, int n) {
    int i;
    if (rc >= 0) return 1;
    for (i = 0; i < n; i++)
        if (rc == -set[i]) return 1;
    return 0;
}

static uint64_t ld64(size_t off) {
    uint64_t v;
    memcpy(&v, S.view + off, 8);
    return v;
}

static void st64(size_t off, uint64_t v) {
    memcpy(S.view + off, &v, 8);
}

static uint32_t ld32(size_t off) {
    uint32_t v;
    memcpy(&v, S.view + off, 4);
    return v;
}

static void st32(size_t off, uint32_t v) {
    memcpy(S.view + off, &v, 4);
}

static void check_time(int64_t t0, int64_t timeout, const char *what) {
    int64_t el = fz_now() - t0;
    FZ_CHECK(el <= (timeout > 0 ? timeout : 0) + SLACK_NS, "%s took %lld ns (timeout %lld)", what,
             (long long)el, (long long)timeout);
}

/* The checks every call of a role makes first: closed handle, poisoned, wrong role. */
static int common_expect(fz_h *h, int role, long long rc, const char *what) {
    if (!h->open) {
        FZ_CHECK(rc == -EBADF, "%s on a closed handle: %lld", what, rc);
        return 1;
    }
    if (h->poisoned) {
        FZ_CHECK(rc == -EBADMSG, "%s on a poisoned handle: %lld", what, rc);
        return 1;
    }
    if (!(h->role & role)) {
        FZ_CHECK(rc == -EINVAL, "%s without the role: %lld", what, rc);
        return 1;
    }
    if (rc == -EBADMSG) {
        FZ_CHECK(S.tainted, "%s: -EBADMSG on memory nobody corrupted", what);
        h->poisoned = 1;
        return 1;
    }
    return 0;
}

static void check_span(const fz_h *h, const void *p, size_t len, const char *what) {
    const unsigned char *c = (const unsigned char *)p;
    FZ_CHECK(c >= h->r.data && c + len <= h->r.data + 2 * S.cap, "%s: pointer outside data", what);
}

/* ---- what the model expects of a consumer ---- */

enum { E_NONE, E_DELIVER, E_LAPPED };

/* The next message for consumer h: E_DELIVER with its entry, E_NONE, or (broadcast)
   E_LAPPED when a producer began writing over the reader's position. */
static int expect_next(const fz_h *h, int *idx) {
    int i;
    *idx = -1;
    if (is_bc()) {
        if ((int64_t)(S.bc_hi - h->cursor - S.nslots) > 0) /* began at cursor + nslots or later */
            return E_LAPPED;
        for (i = 0; i < S.nm; i++)
            if (S.m[i].state != M_CANCELLED && S.m[i].state != M_PENDING &&
                S.m[i].pos == h->cursor) {
                *idx = i;
                return E_DELIVER;
            }
        return E_NONE;
    }
    if (is_slot() && h->peeked && h->peek_msg >= 0) {
        *idx = h->peek_msg;
        return E_DELIVER;
    }
    for (i = 0; i < S.nm; i++) {
        const fz_msg *m = &S.m[i];
        if (m->state == M_PENDING && !m->dead) return E_NONE; /* blocks what follows */
        if (m->state == M_COMMITTED) {
            *idx = i;
            return E_DELIVER;
        }
    }
    return E_NONE;
}

/* A group consumer took entry idx: the holes before it were passed on the way. */
static void passed_before(int idx) {
    int i;
    for (i = 0; i < idx; i++)
        if (S.m[i].state == M_CANCELLED || (S.m[i].state == M_PENDING && S.m[i].dead))
            S.m[i].state = M_FREED;
}

/* Would a producer find room now? 1 when the model says it must. */
static int room_for(const fz_h *self) {
    int i, k;
    if (S.tainted) return 0;
    if (S.kind == IPC_RING_SPSC) {
        for (i = 0; i < S.nm; i++)
            if (S.m[i].state == M_COMMITTED) return 0;
        return 1;
    }
    if (is_slot()) {
        if ((uint64_t)S.nm < S.nslots) return 1;
        return S.m[S.nm - (int)S.nslots].state == M_FREED;
    }
    if (S.flags & IPC_RING_OVERWRITE) return 1;
    for (k = 0; k < NH; k++) {
        const fz_h *h = &S.h[k];
        if (h == self || !h->open || !(h->role & IPC_CONSUMER)) continue;
        if (S.tailpos - h->cursor >= S.nslots) return 0;
    }
    return 1;
}

/* ---- operations ---- */

/* Must a call with timeout t see what the model sees? A slot that the dead hold up is
   passed at once by a call that tries once, but a waiting call looks for the dead only
   every 20 ms (documented: within about 0.2 s), so it may time out first. */
static int lenient_ok(int64_t t) {
    return t <= 0 || !S.deaths;
}

static int64_t pick_timeout(fz_in *in, unsigned mod) {
    if (mod == 2 && S.timed > 0) {
        S.timed--;
        return 100000 * (int64_t)(1 + fz_u8(in) % 8); /* 0.1 .. 0.8 ms */
    }
    return mod == 3 ? -2 : 0;
}

static size_t pick_len(fz_in *in) {
    unsigned v = fz_u16(in), a = v & 0x3fff;
    switch (v >> 14) {
    case 0: return 1 + a % (S.max < 64 ? S.max : 64);
    case 1: return 1 + a % S.max;
    case 2: return S.max - a % 8;
    default: return (a & 1) ? S.max + 1 + (a >> 1) % 64 : 0;
    }
}

static size_t pick_cap(fz_in *in) {
    unsigned v = fz_u16(in), a = v & 0x3fff;
    switch (v >> 14) {
    case 0: return S.max + a % 16;
    case 1: return 1 + a % S.max;
    case 2: return 1 + a % 16;
    default: return 0;
    }
}

/* The position the next claim of producer h gets (model, before the call). */
static uint64_t next_pos(const fz_h *h) {
    if (is_slot()) return ld64(128);
    return is_bc() ? S.tailpos : h->r.ptail;
}

static int add_msg(const fz_h *h, uint64_t pos, int state, uint32_t len) {
    fz_msg *m;
    if (S.nm == MAXM) {
        S.tainted = 1; /* the model is full: keep fuzzing the safety checks only */
        return -1;
    }
    m = &S.m[S.nm];
    m->pos = pos;
    m->len = len;
    m->state = (uint8_t)state;
    m->prod = (uint8_t)(h - S.h);
    m->dead = 0;
    return S.nm++;
}

/* Broadcast producer began writing the slot of pos. */
static void bc_begin(uint64_t pos) {
    if ((int64_t)(pos + 1 - S.bc_hi) > 0) S.bc_hi = pos + 1;
}

static void op_send(fz_h *h, fz_in *in, unsigned mod) {
    static const int ok[] = {EAGAIN, ETIMEDOUT, EPIPE, EMSGSIZE, EINVAL, EBADMSG, EBADF};
    size_t len = pick_len(in);
    int64_t t = pick_timeout(in, mod), t0;
    unsigned char *msg = (unsigned char *)malloc(len ? len : 1);
    uint64_t pos = h->open ? next_pos(h) : 0;
    int rc, room;
    fz_fill(msg, S.nm, (uint32_t)len);
    t0 = fz_now();
    room = h->open && room_for(h) && lenient_ok(t);
    rc = ipc_ring_send(&h->r, msg, len, t);
    check_time(t0, t, "send");
    TR("send h%d len %zu t %lld: %d\n", (int)(h - S.h), len, (long long)t, rc);
    free(msg);
    FZ_CHECK(in_set(rc, ok, 7), "send: %d", rc);
    FZ_CHECK(!hbc(h) || rc != -EPIPE, "a broadcast producer got -EPIPE");
    if (common_expect(h, IPC_PRODUCER, rc, "send")) return;
    if (len == 0 || h->reserved || t < -1) {
        FZ_CHECK(rc == -EINVAL, "send len %zu reserved %zu t %lld: %d", len, h->reserved,
                 (long long)t, rc);
        return;
    }
    if (len > hmax(h)) {
        FZ_CHECK(rc == -EMSGSIZE, "send len %zu > max %zu: %d", len, hmax(h), rc);
        return;
    }
    FZ_CHECK(rc != -EMSGSIZE && rc != -EINVAL, "send len %zu: %d", len, rc);
    if (rc == 0) {
        if (!S.tainted && is_bc() && !(S.flags & IPC_RING_OVERWRITE))
            FZ_CHECK(room_for(h), "broadcast send lapped a live reader");
        if (is_bc()) {
            bc_begin(pos);
            S.tailpos = pos + 1;
        }
        add_msg(h, pos, M_COMMITTED, (uint32_t)len);
        return;
    }
    if (room) FZ_CHECK(rc == -EPIPE, "send refused with room: %d", rc);
}

static void op_reserve(fz_h *h, fz_in *in, unsigned mod) {
    static const int ok[] = {EAGAIN, ETIMEDOUT, EPIPE, EMSGSIZE, EINVAL, EBADMSG, EBADF};
    size_t len = pick_len(in);
    int64_t t = pick_timeout(in, mod), t0;
    void *p = NULL;
    int rc, room = h->open && room_for(h) && lenient_ok(t);
    uint64_t pos;
    t0 = fz_now();
    rc = ipc_ring_reserve(&h->r, len, &p, t);
    check_time(t0, t, "reserve");
    TR("reserve h%d len %zu t %lld: %d\n", (int)(h - S.h), len, (long long)t, rc);
    FZ_CHECK(in_set(rc, ok, 7), "reserve: %d", rc);
    FZ_CHECK(!hbc(h) || rc != -EPIPE, "a broadcast producer got -EPIPE");
    if (common_expect(h, IPC_PRODUCER, rc, "reserve")) return;
    if (len == 0 || h->reserved || t < -1) {
        FZ_CHECK(rc == -EINVAL, "reserve len %zu reserved %zu: %d", len, h->reserved, rc);
        return;
    }
    if (len > hmax(h)) {
        FZ_CHECK(rc == -EMSGSIZE, "reserve len %zu > max %zu: %d", len, hmax(h), rc);
        return;
    }
    if (rc != 0) {
        FZ_CHECK(rc != -EMSGSIZE && rc != -EINVAL, "reserve len %zu: %d", len, rc);
        if (room) FZ_CHECK(rc == -EPIPE, "reserve refused with room: %d", rc);
        return;
    }
    check_span(h, p, len, "reserve");
    if (hslot(h)) {
        size_t mask = ((size_t)1 << h->r.slot_shift) - 1;
        FZ_CHECK(((uintptr_t)((unsigned char *)p - 16 - h->r.data) & mask) == 0,
                 "reserve: not a slot");
    }
    memset(p, 0xee, len); /* the whole span must be ours to write */
    h->reserved = len;
    h->res_ptr = (unsigned char *)p;
    pos = h->r.ptail; /* SPSC, broadcast: the tail; slot kinds: the slot claimed */
    if (!S.tainted && is_slot()) FZ_CHECK(pos == ld64(128) - 1, "reserve: claimed position");
    if (is_bc()) bc_begin(pos);
    h->res_msg = add_msg(h, pos, M_PENDING, 0);
}

static void op_commit(fz_h *h, fz_in *in) {
    static const int ok[] = {EINVAL, EBADMSG, EBADF};
    unsigned sel = fz_u16(in);
    size_t res = h->reserved, n;
    int rc;
    switch (sel & 3) {
    case 0: n = res; break;
    case 1: n = 0; break;
    case 2: n = res + 1 + (sel >> 2) % 4; break;
    default: n = (sel >> 2) % (res + 1); break;
    }
    if (h->open && res && n > 0 && n <= res && h->res_msg >= 0)
        fz_fill(h->res_ptr, h->res_msg, (uint32_t)n);
    rc = ipc_ring_commit(&h->r, n);
    TR("commit h%d %zu of %zu: %d\n", (int)(h - S.h), n, res, rc);
    FZ_CHECK(in_set(rc, ok, 3), "commit: %d", rc);
    if (common_expect(h, IPC_PRODUCER, rc, "commit")) return;
    if (!res || n > res) {
        FZ_CHECK(rc == -EINVAL, "commit %zu of %zu reserved: %d", n, res, rc);
        return;
    }
    FZ_CHECK(rc == 0, "commit %zu of %zu: %d", n, res, rc);
    h->reserved = 0;
    if (h->res_msg >= 0) {
        fz_msg *m = &S.m[h->res_msg];
        m->len = (uint32_t)n;
        m->state = n ? M_COMMITTED : M_CANCELLED;
        if (is_bc() && n) S.tailpos = m->pos + 1;
    }
    h->res_msg = -1;
}

/* A consumer got message idx of length n (data at p): check and account for it. */
static void delivered(fz_h *h, int idx, const unsigned char *p, long long n, int consume) {
    fz_msg *m = &S.m[idx];
    FZ_CHECK(n == (long long)m->len, "got %lld bytes, message %d has %u", n, idx, m->len);
    FZ_CHECK(fz_same(p, idx, m->len), "message %d (%u bytes) arrived corrupt", idx, m->len);
    if (is_bc()) {
        if (consume) h->cursor = m->pos + 1;
        return;
    }
    if (is_slot()) {
        passed_before(idx);
        m->state = consume ? M_FREED : M_TAKEN;
        return;
    }
    if (consume) m->state = M_FREED;
}

static void bc_overflowed(fz_h *h) {
    uint64_t to = h->r.phead;
    FZ_CHECK((int64_t)(to - h->cursor) > 0 && (int64_t)(S.tailpos - to) >= 0,
             "overflow moved the reader from %llu to %llu (tail %llu)",
             (unsigned long long)h->cursor, (unsigned long long)to, (unsigned long long)S.tailpos);
    h->cursor = to;
}

static void op_recv(fz_h *h, fz_in *in, unsigned mod) {
    static const int ok[] = {EAGAIN, ETIMEDOUT, EPIPE, EMSGSIZE, EINVAL, EBADMSG, EBADF, EOVERFLOW};
    size_t cap = pick_cap(in);
    int64_t t = pick_timeout(in, mod), t0;
    unsigned char *buf = (unsigned char *)malloc(cap ? cap : 1);
    int idx = -1, e = h->open ? expect_next(h, &idx) : E_NONE;
    int was_peeked = h->peeked;
    ssize_t rc;
    t0 = fz_now();
    rc = ipc_ring_recv(&h->r, cap ? buf : NULL, cap, t);
    check_time(t0, t, "recv");
    TR("recv h%d cap %zu t %lld: %zd (expect %d msg %d)\n", (int)(h - S.h), cap, (long long)t, rc,
       e, idx);
    FZ_CHECK(in_set(rc, ok, hbc(h) ? 8 : 7), "recv: %zd", rc);
    if (rc > 0)
        FZ_CHECK((size_t)rc <= cap && (size_t)rc <= hmax(h),
                 "recv returned %zd bytes, cap %zu, max %zu", rc, cap, hmax(h));
    if (common_expect(h, IPC_CONSUMER, rc, "recv")) goto out;
    if (cap == 0) {
        FZ_CHECK(rc == -EINVAL, "recv cap 0: %zd", rc);
        goto out;
    }
    FZ_CHECK(rc != 0, "recv returned 0 bytes");
    if (rc > 0) h->peeked = 0;
    if (rc == -EOVERFLOW) h->peeked = 0;
    if (t < -1 && !(hslot(h) && was_peeked)) {
        FZ_CHECK(rc == -EINVAL, "recv timeout %lld: %zd", (long long)t, rc);
        goto out;
    }
    if (S.tainted) goto out;
    if (e == E_LAPPED) {
        FZ_CHECK(S.flags & IPC_RING_OVERWRITE, "lossless broadcast reader lapped");
        FZ_CHECK(rc == -EOVERFLOW, "lapped reader: recv %zd", rc);
        bc_overflowed(h);
    } else if (e == E_DELIVER) {
        if (S.m[idx].len > cap) {
            FZ_CHECK(rc == -EMSGSIZE, "message %u bytes, cap %zu: %zd", S.m[idx].len, cap, rc);
        } else {
            FZ_CHECK(rc > 0 || !lenient_ok(t), "deliverable message %d (%u bytes): recv %zd", idx,
                     S.m[idx].len, rc);
            if (rc <= 0) goto out;
            delivered(h, idx, buf, rc, 1);
            h->peek_msg = -1;
        }
    } else {
        FZ_CHECK(rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EPIPE, "nothing to receive: %zd", rc);
    }
out:
    free(buf);
}

static void op_peek(fz_h *h, fz_in *in, unsigned mod) {
    static const int ok[] = {EAGAIN, ETIMEDOUT, EPIPE, EINVAL, EBADMSG, EBADF, EOVERFLOW};
    int64_t t = pick_timeout(in, mod), t0;
    const void *p = NULL;
    int idx = -1, e = h->open ? expect_next(h, &idx) : E_NONE;
    int was_peeked = h->peeked;
    ssize_t rc;
    t0 = fz_now();
    rc = ipc_ring_peek(&h->r, &p, t);
    check_time(t0, t, "peek");
    TR("peek h%d t %lld: %zd (expect %d msg %d)\n", (int)(h - S.h), (long long)t, rc, e, idx);
    FZ_CHECK(in_set(rc, ok, hbc(h) ? 7 : 6), "peek: %zd", rc);
    if (rc > 0) {
        const unsigned char *c = (const unsigned char *)p;
        unsigned sum = 0;
        ssize_t i;
        FZ_CHECK((size_t)rc <= hmax(h), "peek returned %zd bytes, max %zu", rc, hmax(h));
        check_span(h, p, (size_t)rc, "peek");
        for (i = 0; i < rc; i++) /* every byte must be readable */
            sum += c[i];
        (void)sum;
    }
    if (common_expect(h, IPC_CONSUMER, rc, "peek")) return;
    FZ_CHECK(rc != 0, "peek returned 0 bytes");
    if (rc == -EOVERFLOW) h->peeked = 0;
    if (t < -1 && !(hslot(h) && was_peeked)) {
        FZ_CHECK(rc == -EINVAL, "peek timeout %lld: %zd", (long long)t, rc);
        return;
    }
    if (rc > 0) {
        h->peeked = 1;
        h->peek_msg = -1;
    }
    if (S.tainted) return;
    if (e == E_LAPPED) {
        FZ_CHECK(S.flags & IPC_RING_OVERWRITE, "lossless broadcast reader lapped");
        FZ_CHECK(rc == -EOVERFLOW, "lapped reader: peek %zd", rc);
        bc_overflowed(h);
    } else if (e == E_DELIVER) {
        FZ_CHECK(rc > 0 || !lenient_ok(t), "deliverable message %d: peek %zd", idx, rc);
        if (rc <= 0) return;
        delivered(h, idx, (const unsigned char *)p, rc, 0);
        h->peek_msg = idx;
    } else {
        FZ_CHECK(rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EPIPE, "nothing to peek: %zd", rc);
    }
}

static void op_release(fz_h *h) {
    static const int ok[] = {EINVAL, EBADMSG, EBADF, EOVERFLOW};
    int idx = -1, e = h->open && is_bc() ? expect_next(h, &idx) : E_NONE;
    int rc = ipc_ring_release(&h->r);
    TR("release h%d: %d\n", (int)(h - S.h), rc);
    FZ_CHECK(in_set(rc, ok, hbc(h) ? 4 : 3), "release: %d", rc);
    if (common_expect(h, IPC_CONSUMER, rc, "release")) return;
    if (!h->peeked) {
        FZ_CHECK(rc == -EINVAL, "release with nothing peeked: %d", rc);
        return;
    }
    FZ_CHECK(rc == 0 || rc == -EOVERFLOW, "release: %d", rc);
    h->peeked = 0;
    if (S.tainted || h->peek_msg < 0) return;
    if (is_bc()) {
        if (e == E_LAPPED) {
            FZ_CHECK(rc == -EOVERFLOW, "release of a lapped message: %d", rc);
            bc_overflowed(h);
        } else {
            FZ_CHECK(rc == 0 && e == E_DELIVER && idx == h->peek_msg, "release: %d", rc);
            h->cursor = S.m[idx].pos + 1;
        }
    } else {
        FZ_CHECK(rc == 0, "release: %d", rc);
        S.m[h->peek_msg].state = M_FREED;
    }
    h->peek_msg = -1;
}

/* The model's side of a handle going away: closed (dead = 0) or killed (dead = 1). */
static void forget(fz_h *h, int dead) {
    if (h->reserved && h->res_msg >= 0) {
        if (dead && is_slot())
            S.m[h->res_msg].dead = 1; /* a hole, passed by the consumers */
        else
            S.m[h->res_msg].state = M_CANCELLED;
    }
    if (h->peeked && h->peek_msg >= 0 && is_slot()) S.m[h->peek_msg].state = M_FREED;
    h->open = 0;
    h->reserved = 0;
    h->res_msg = -1;
    h->peeked = 0;
    h->peek_msg = -1;
    h->poisoned = 0;
}

static void op_close(fz_h *h) {
    int rc = ipc_ring_close(&h->r);
    TR("close h%d: %d\n", (int)(h - S.h), rc);
    FZ_CHECK(rc == (h->open ? 0 : -EBADF), "close: %d", rc);
    if (h->open) forget(h, 0);
}

/* As if the handle's process were killed: its role lock and its mapping vanish, the
   shared memory stays as it was. */
static void op_die(fz_h *h) {
    TR("die h%d\n", (int)(h - S.h));
    if (!h->open) return;
    ipc__forkreg_close(h->r.lockfd);
    munmap(h->r.base, h->r.map_size);
    close(h->r.fd);
    ipc__ring_reset(&h->r);
    forget(h, 1);
    S.deaths++;
}

/* Is role held by another live handle (clean model)? */
static int role_taken(const fz_h *self, int role) {
    int k;
    for (k = 0; k < NH; k++)
        if (&S.h[k] != self && S.h[k].open && (S.h[k].role & role)) return 1;
    return 0;
}

static void op_attach(fz_h *h, int role) {
    static const int ok[] = {EBUSY, EINVAL, EBADMSG};
    int before, rc, busy;
    if (h->open) op_close(h);
    busy = S.kind == IPC_RING_MPMC   ? 0
           : S.kind == IPC_RING_MPSC ? (role & IPC_CONSUMER) && role_taken(h, IPC_CONSUMER)
           : is_bc()                 ? role == IPC_PRODUCER && role_taken(h, IPC_PRODUCER)
                                     : ((role & IPC_PRODUCER) && role_taken(h, IPC_PRODUCER)) ||
                           ((role & IPC_CONSUMER) && role_taken(h, IPC_CONSUMER));
    before = fz_fd_count();
    rc = ipc_ring_attach_fd(&h->r, S.memfd, role);
    TR("attach h%d role %d: %d\n", (int)(h - S.h), role, rc);
    FZ_CHECK(in_set(rc, ok, 3), "attach: %d", rc);
    if (rc < 0) {
        FZ_CHECK(fz_fd_count() == before, "attach %d leaked an fd", rc);
        if (!S.tainted) {
            if (is_bc() && role == (IPC_PRODUCER | IPC_CONSUMER))
                FZ_CHECK(rc == -EINVAL, "broadcast attach with both roles: %d", rc);
            else
                FZ_CHECK(rc == -EBUSY && busy, "attach role %d: %d", role, rc);
        }
        return;
    }
    FZ_CHECK(rc == 0, "attach: %d", rc);
    if (!S.tainted) FZ_CHECK(!busy, "attach took a role that is held");
    if (!S.tainted)
        FZ_CHECK(ipc_ring_max_msg(&h->r) == S.max, "attach: max_msg %zu, want %zu",
                 ipc_ring_max_msg(&h->r), S.max);
    memset((char *)h + sizeof h->r, 0, sizeof *h - sizeof h->r);
    h->open = 1;
    h->role = role;
    h->res_msg = h->peek_msg = -1;
    if (role & IPC_PRODUCER) S.prod_ever = 1;
    if (is_bc() && role == IPC_CONSUMER) {
        h->cursor = h->r.phead;
        if (!S.tainted)
            FZ_CHECK(h->cursor == S.tailpos, "reader joined at %llu, tail %llu",
                     (unsigned long long)h->cursor, (unsigned long long)S.tailpos);
    }
}

static void op_stats(fz_h *h) {
    ipc_ring_stats st;
    int rc = ipc_ring_get_stats(&h->r, &st);
    FZ_CHECK(rc == (h->open ? 0 : -EBADF), "stats: %d", rc);
    FZ_CHECK(h->open ? hmax(h) >= 16 && (S.tainted || hmax(h) == S.max)
                     : ipc_ring_max_msg(&h->r) == 0,
             "max_msg");
    FZ_CHECK(ipc_ring_fd(&h->r) == (h->open ? h->r.fd : -EBADF), "fd");
}

/* ---- scribbles ---- */

static uint64_t special(unsigned k, uint64_t cur) {
    const uint64_t v[] = {
        0,           ~(uint64_t)0, (uint64_t)1 << 63, (uint64_t)1 << 62, S.cap,
        S.cap - 8,   S.cap + 8,    S.nslots,          S.nslots + 1,      (uint64_t)1 << 32,
        cur + S.cap, cur - S.cap,  cur + S.nslots,    cur - S.nslots,    ld64(128),
        ld64(256)};
    return v[k % (sizeof v / sizeof v[0])];
}

/* Offset of the u64 word (SPSC) or slot (slot kinds) d steps past position p. */
static size_t data_off(uint64_t p, int d) {
    if (S.kind == IPC_RING_SPSC)
        return S.hdr + (size_t)((p + 8 * (uint64_t)(int64_t)d) & (S.cap - 1) & ~(uint64_t)7);
    return S.hdr + (size_t)(((p + (uint64_t)(int64_t)d) & (S.nslots - 1)) << S.shift);
}

static void op_scribble_field(fz_in *in) {
    unsigned sel = fz_u8(in), how = fz_u8(in), k = fz_u8(in);
    int d = (int8_t)fz_u8(in);
    size_t off;
    int w = 8;
    uint64_t cur, v;
    switch (sel % 22) {
    case 0: off = 0; break;
    case 1: off = 8, w = 4; break;
    case 2: off = 12, w = 4; break;
    case 3: off = 16; break;
    case 4: off = 24, w = 4; break;
    case 5: off = 128; break;
    case 6: off = 256; break;
    case 7:
    case 8:
    case 9:
    case 10: off = 384 + 4 * (sel % 22 - 7), w = 4; break;
    case 11:
    case 12:
    case 13:
    case 14: off = 512 + 4 * (sel % 22 - 11), w = 4; break;
    case 15:
    case 16:
    case 17:
        if (S.kind == IPC_RING_SPSC) {
            off = data_off(ld64(256), d);
        } else {
            off = REG_OFF + 64 * (k % 8) + 8 * (sel % 22 - 15);
            if (sel % 22 == 17) w = 4;
        }
        break;
    case 18: off = data_off(ld64(256), d); break;
    case 19: off = data_off(ld64(128), d); break;
    case 20:
    case 21:
        off = data_off(ld64(sel & 32 ? 128 : 256), d);
        if (S.kind != IPC_RING_SPSC) off += 8 + 4 * (sel % 22 - 20);
        w = S.kind == IPC_RING_SPSC ? 8 : 4;
        break;
    default: off = 0; break;
    }
    cur = w == 8 ? ld64(off) : ld32(off);
    switch (how & 3) {
    case 0: v = cur + (uint64_t)(int64_t)d * (how & 4 ? 8 : 1); break;
    case 1: v = special(k, cur); break;
    case 2: v = cur ^ ((uint64_t)1 << (k & (w * 8 - 1))); break;
    default: v = fz_u64(in); break;
    }
    TR("scribble @%zu (%d bytes): %llx -> %llx\n", off, w, (unsigned long long)cur,
       (unsigned long long)v);
    if (w == 8)
        st64(off, v);
    else
        st32(off, (uint32_t)v);
    S.tainted = 1;
}

static void op_scribble_raw(fz_in *in) {
    size_t off = fz_u32(in) % S.size, n = 1 + fz_u8(in) % 16;
    if (n > S.size - off) n = S.size - off;
    fz_bytes(in, S.view + off, n);
    TR("scribble raw @%zu, %zu bytes\n", off, n);
    S.tainted = 1;
}

/* ---- attaching to an object built from the input ---- */

static void op_foreign(fz_in *in) {
    unsigned a = fz_u8(in), b = fz_u8(in), c = fz_u8(in), v, nosealing = a & 0x40;
    unsigned kind = a & 3, shift = 5 + (a >> 2) % 9, nedit = (b >> 4) & 3, i;
    size_t cap = (size_t)4096 << (b & 3), hdr = kind ? HDR_SLOT : 4096, size = hdr + cap;
    unsigned seals = c & 0x1f;
    int role = 1 + (int)((c >> 5) % 3), fd, before, rc;
    unsigned char head[64];
    ipc_ring r;
    uint64_t u;
    uint32_t w;
    if (kind && cap < ((size_t)2 << shift)) cap = (size_t)2 << shift;
    switch ((b >> 2) & 3) {
    case 1: size = hdr + cap + ((b & 0x40) ? 4096 : (size_t)0 - 4096); break;
    case 2:
        v = fz_u8(in); /* whole pages, or a data area smaller than a page */
        size = (v & 0x80) ? hdr + ((size_t)64 << (v % 7)) : 4096 * (1 + v % 16);
        break;
    case 3: size = hdr + 2 * cap; break;
    default: break;
    }
    /* without MFD_ALLOW_SEALING, F_GET_SEALS says F_SEAL_SEAL, as for a named tmpfs file */
    fd = (int)syscall(SYS_memfd_create, "fz", MFD_CLOEXEC | (nosealing ? 0 : MFD_ALLOW_SEALING));
    if (fd < 0) return;
    if (ftruncate(fd, (off_t)size) != 0) {
        close(fd);
        return;
    }
    memset(head, 0, sizeof head);
    u = 0x676e69722e637069ULL; /* the documented layout: magic, version, ... */
    memcpy(head, &u, 8);
    w = 1;
    memcpy(head + 8, &w, 4);
    w = (uint32_t)hdr;
    memcpy(head + 12, &w, 4);
    u = cap;
    memcpy(head + 16, &u, 8);
    w = kind | (kind ? shift << 24 : 0) | (a & 0x80 ? 1u << 16 : 0);
    memcpy(head + 24, &w, 4);
    for (i = 0; i < nedit; i++)
        head[fz_u8(in) % 32] = (unsigned char)fz_u8(in);
    if (pwrite(fd, head, sizeof head, 0) != (ssize_t)sizeof head) {
        close(fd);
        return;
    }
    if (b & 0x80) { /* and some bytes anywhere in the first pages */
        unsigned char raw[16];
        off_t at = (off_t)(fz_u16(in) % (size ? size : 1));
        fz_bytes(in, raw, sizeof raw);
        if (pwrite(fd, raw, sizeof raw, at) < 0) {
        }
    }
    if (seals) fcntl(fd, F_ADD_SEALS, (int)seals);
    before = fz_fd_count();
    rc = ipc_ring_attach_fd(&r, fd, role);
    TR("foreign kind %u size %zu seals %x role %d: %d\n", kind, size, seals, role, rc);
    /* Not a ring, or not one to trust: -EBADMSG. A role taken: -EBUSY. -EINVAL only for a
       bad role (both roles of a broadcast ring); -EPERM/-EACCES only where a seal forbids
       the writable mapping. */
    FZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EBUSY || (rc == -EINVAL && role == 3) ||
                 ((rc == -EPERM || rc == -EACCES) && !nosealing && (seals & 0x18)),
             "foreign attach (kind %u size %zu seals %x role %d): %d", kind, size, seals, role, rc);
    if (rc == 0) {
        size_t max = ipc_ring_max_msg(&r);
        unsigned char *buf = (unsigned char *)calloc(1, max);
        const void *p;
        ssize_t n;
        FZ_CHECK(max >= 16 && max <= (1u << 30), "foreign max_msg %zu", max);
        v = fz_u8(in);
        if (v & 1) { /* the sender shrinks the object under us, where no seal stops it */
            int t = ftruncate(fd, (v & 2) ? (off_t)(size / 2) : 0);
            TR("foreign: truncate to %zu: %d\n", (v & 2) ? size / 2 : (size_t)0, t);
        }
        for (i = 0; i < 4; i++) {
            unsigned op = fz_u8(in);
            if (op & 1) {
                n = ipc_ring_send(&r, buf, 1 + (op >> 1) % max, 0);
                FZ_CHECK(n == 0 || n == -EAGAIN || n == -EPIPE || n == -EBADMSG || n == -EINVAL,
                         "foreign send: %zd", n);
            } else if (op & 2) {
                n = ipc_ring_peek(&r, &p, 0);
                FZ_CHECK(n > 0 || n == -EAGAIN || n == -EPIPE || n == -EBADMSG || n == -EINVAL ||
                             n == -EOVERFLOW,
                         "foreign peek: %zd", n);
                if (n > 0) {
                    FZ_CHECK((size_t)n <= max, "foreign peek %zd > %zu", n, max);
                    FZ_CHECK((const unsigned char *)p >= r.data &&
                                 (const unsigned char *)p + n <= r.data + 2 * r.cap,
                             "foreign peek: pointer outside data");
                    memcpy(buf, p, (size_t)n);
                }
            } else {
                n = ipc_ring_recv(&r, buf, max, 0);
                FZ_CHECK(n > 0 || n == -EAGAIN || n == -EPIPE || n == -EBADMSG || n == -EINVAL ||
                             n == -EOVERFLOW,
                         "foreign recv: %zd", n);
                FZ_CHECK(n <= (ssize_t)max, "foreign recv %zd > %zu", n, max);
            }
        }
        free(buf);
        FZ_CHECK(ipc_ring_close(&r) == 0, "foreign close");
    }
    FZ_CHECK(fz_fd_count() == before, "foreign attach %d leaked an fd", rc);
    close(fd);
}

/* ---- setting up, draining, tearing down ---- */

/* Positions start at base instead of 0: a ring nobody is attached to, whose counters
   are zero and whose positions are base (slot kinds: every slot free for the lap of
   base). Slot kinds keep the top two bits of a position for the flags of the slots. */
static void rebase(uint64_t base) {
    uint64_t i;
    if (S.kind == IPC_RING_SPSC)
        base &= ~(uint64_t)7;
    else
        base &= ((uint64_t)1 << 61) - 1;
    memset(S.view + 128, 0, 512); /* tail, head, both sides */
    if (S.kind == IPC_RING_BROADCAST)
        st64(128, base);
    else {
        st64(128, base);
        st64(256, base);
    }
    for (i = 0; is_slot() || is_bc() ? i < S.nslots : 0; i++) {
        uint64_t p = base + ((i - base) & (S.nslots - 1)); /* the position slot i serves */
        st64(S.hdr + (size_t)(i << S.shift), p - i);
    }
    S.tailpos = S.bc_hi = base;
}

static void teardown(int start_fds) {
    int k;
    for (k = 0; k < NH; k++)
        if (S.h[k].open) op_close(&S.h[k]);
    if (S.view) munmap(S.view, S.size);
    if (S.memfd >= 0) close(S.memfd);
    fz_guards_free();
    FZ_CHECK(fz_fd_count() == start_fds, "fds: %d at the start, %d at the end", start_fds,
             fz_fd_count());
    FZ_CHECK(fz_memfd_maps() == 0, "%d mappings of a memfd left", fz_memfd_maps());
}

/* Producers close; consumers then receive every committed message and see -EPIPE. */
static void drain(void) {
    int k, i, cons = 0;
    for (k = 0; k < NH; k++)
        if (S.h[k].open && (S.h[k].role & IPC_PRODUCER)) op_close(&S.h[k]);
    for (k = 0; k < NH; k++) {
        fz_h *h = &S.h[k];
        if (!h->open) continue;
        cons++;
        if (h->peeked) op_release(h);
    }
    if (S.tainted || !cons) return;
    for (k = 0; k < NH; k++) {
        fz_h *h = &S.h[k];
        ssize_t rc = 0;
        int idx, e;
        if (!h->open) continue;
        for (i = 0; i < MAXM + 8 && !S.tainted; i++) {
            unsigned char *buf = (unsigned char *)malloc(S.max);
            e = expect_next(h, &idx);
            rc = ipc_ring_recv(&h->r, buf, S.max, 0);
            if (rc > 0) {
                FZ_CHECK(e == E_DELIVER, "drain: got %zd bytes, none expected", rc);
                delivered(h, idx, buf, rc, 1);
            } else if (rc == -EOVERFLOW && e == E_LAPPED) {
                bc_overflowed(h);
            }
            free(buf);
            if (rc <= 0 && rc != -EOVERFLOW) break;
        }
        if (S.tainted) return;
        /* -EAGAIN: no producer ever came, or the last one died and this consumer looked at
           its lock less than 100 ms ago (the verdict stands for a slice) */
        FZ_CHECK(rc == -EPIPE || (rc == -EAGAIN && (!S.prod_ever || S.deaths)),
                 "drain ended with %zd", rc);
        if (is_bc()) {
            FZ_CHECK(h->cursor == S.tailpos, "reader %d stopped at %llu, tail %llu", k,
                     (unsigned long long)h->cursor, (unsigned long long)S.tailpos);
        } else if (!is_bc()) {
            for (i = 0; i < S.nm; i++)
                FZ_CHECK(S.m[i].state != M_COMMITTED, "message %d committed, never received", i);
            break; /* a group: the first consumer got them all */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_in in = {data, size};
    unsigned c0 = fz_u8(&in), c1 = fz_u8(&in), steps = 0;
    ipc_ring_opts o;
    int start_fds = fz_fd_count(), role, rc, k;
    if (fz_tr < 0) fz_tr = getenv("FZ_TRACE") != NULL;
    memset(&S, 0, sizeof S);
    S.memfd = -1;
    for (k = 0; k < NH; k++)
        S.h[k].res_msg = S.h[k].peek_msg = -1;
    S.kind = FZ_KIND;
    S.timed = TIMED_MAX;
    memset(&o, 0, sizeof o);
    o.capacity = (size_t)4096 << (c0 & 3);
    o.spin_ns = (c1 & 0x80) ? 1 : 0;
    S.shift = 5 + ((c0 >> 2) & 15) % 9;
    o.flags =
        (unsigned)S.kind | (is_slot() || is_bc() ? IPC_RING_MSG(((size_t)1 << S.shift) - 16) : 0) |
        ((c0 & 0x40) && is_bc() ? IPC_RING_OVERWRITE : 0) | ((c1 & 0x40) ? IPC_RING_PREFAULT : 0);
    S.flags = o.flags;
    role = 1 + (int)(c1 & 3) % 3;
    if (is_bc() && role == 3) role = IPC_PRODUCER;
    rc = ipc_ring_create(&S.h[0].r, NULL, role, &o);
    TR("create kind %d flags %x cap %zu role %d: %d\n", S.kind, o.flags, o.capacity, role, rc);
    FZ_CHECK(rc == 0, "create: %d", rc);
    S.h[0].open = 1;
    S.h[0].role = role;
    if (role & IPC_PRODUCER) S.prod_ever = 1;
    S.max = ipc_ring_max_msg(&S.h[0].r);
    S.cap = S.h[0].r.cap;
    S.hdr = (size_t)(S.h[0].r.data - S.h[0].r.base);
    S.nslots = is_slot() || is_bc() ? S.cap >> S.shift : 0;
    S.size = S.hdr + S.cap;
    S.memfd = fcntl(ipc_ring_fd(&S.h[0].r), F_DUPFD_CLOEXEC, 0);
    S.view = (unsigned char *)mmap(NULL, S.size, PROT_READ | PROT_WRITE, MAP_SHARED, S.memfd, 0);
    FZ_CHECK(S.memfd >= 0 && S.view != MAP_FAILED, "own mapping");
    FZ_CHECK(S.max == (is_slot() || is_bc() ? ((size_t)1 << S.shift) - 16 : S.cap - 16), "max_msg");
    if (c0 & 0x80) { /* a ring whose positions start elsewhere: close, rebase */
        uint64_t base = fz_u64(&in);
        op_close(&S.h[0]);
        rebase(base);
        S.prod_ever = 0;
    }
    while (in.n > 0 && steps++ < 4096) {
        unsigned op = fz_u8(&in), hi = (op >> 4) & 3, mod = op >> 6, j;
        fz_h *h = &S.h[hi];
        switch (op & 15) {
        case 0: op_send(h, &in, mod); break;
        case 1: op_recv(h, &in, mod); break;
        case 2: op_reserve(h, &in, mod); break;
        case 3: op_commit(h, &in); break;
        case 4: op_peek(h, &in, mod); break;
        case 5: op_release(h); break;
        case 6: op_scribble_field(&in); break;
        case 7: op_scribble_raw(&in); break;
        case 8: op_close(h); break;
        case 9: op_attach(h, mod == 0 ? IPC_PRODUCER : mod == 2 ? 3 : IPC_CONSUMER); break;
        case 10: op_die(h); break;
        case 11: op_stats(h); break;
        case 12: op_foreign(&in); break;
        case 13: /* a burst of sends: reach the end of the ring and wrap */
            for (j = 0; j <= mod * 4; j++)
                op_send(h, &in, 0);
            break;
        case 14:
            for (j = 0; j <= mod * 4; j++)
                op_recv(h, &in, 0);
            break;
        default: /* a burst that costs one byte: same length, whole buffer */
            for (j = 0; j <= mod * 8; j++) {
                fz_in one = {(const uint8_t *)"\0\0\0", 3};
                op_send(h, &one, 0);
                one.n = 3;
                one.p = (const uint8_t *)"\0\0\0";
                op_recv(&S.h[(hi + 1) % NH], &one, 0);
            }
            break;
        }
    }
    TR("drain\n");
    drain();
    teardown(start_fds);
    return 0;
}
