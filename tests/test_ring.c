/* tests/test_ring.c - section 6: lock-free SPSC ring buffers between processes.

   Messages carry their sequence number: byte i of message `seq` is a pattern derived from
   seq (and its first 4 bytes, when it has them, are seq itself), so any loss, duplicate,
   reordering or damaged byte is caught. Multi-process tests fork real processes; a child
   that fails a CHECK exits 1 and the parent sees it in th_join. Results that a child must
   hand back to the parent go through a MAP_SHARED page (struct shared). */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#ifndef F_ADD_SEALS
#define F_ADD_SEALS   1033
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW   0x0004
#define F_SEAL_WRITE  0x0008
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC       0x0001U
#define MFD_ALLOW_SEALING 0x0002U
#endif
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/syscall.h>

#define MS      ((int64_t)1000000)
#define SEC     ((int64_t)1000000000)
#define JOIN_MS 5000
#define KiB     ((size_t)1024)

/* max_msg of a ring of capacity cap: the capacity less the record header and whatever
   the layout keeps free (8 or 16 bytes in all). */
#define CHECK_MAXMSG(m, cap)                                                                       \
    CHECK((size_t)(m) + 16 >= (size_t)(cap) && (size_t)(m) + 8 <= (size_t)(cap))

/* ---- helpers ---- */

static size_t page_size(void) {
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* Message `seq`: its first 4 bytes are seq (when len >= 4), the rest a pattern of seq. */
static void msg_fill(void *p, size_t len, uint64_t seq) {
    unsigned char *b = (unsigned char *)p;
    unsigned char base = (unsigned char)th_mix64(seq);
    size_t i;
    for (i = 0; i < len; i++)
        b[i] = (unsigned char)(base + i * 7u + (i >> 8));
    if (len >= 4) {
        uint32_t s = (uint32_t)seq;
        memcpy(b, &s, 4);
    }
}

/* -1 if p holds message seq of len bytes, else the index of the first wrong byte. */
static long msg_bad(const void *p, size_t len, uint64_t seq) {
    const unsigned char *b = (const unsigned char *)p;
    unsigned char base = (unsigned char)th_mix64(seq), diff = 0;
    size_t i = len >= 4 ? 4 : 0;
    if (len >= 4) {
        uint32_t s = (uint32_t)seq, got;
        memcpy(&got, b, 4);
        if (got != s) return 0;
    }
    for (; i < len; i++)
        diff |= (unsigned char)(b[i] ^ (unsigned char)(base + i * 7u + (i >> 8)));
    if (!diff) return -1;
    for (i = len >= 4 ? 4 : 0; i < len; i++)
        if (b[i] != (unsigned char)(base + i * 7u + (i >> 8))) return (long)i;
    return -1;
}

/* Fail unless buf holds message seq of want bytes (n is what the call returned). */
static void msg_expect(const char *what, const void *buf, ssize_t n, size_t want, uint64_t seq) {
    long bad;
    if (n < 0)
        th_fail(__FILE__, __LINE__, "%s: message %llu: got %lld (%s)", what,
                (unsigned long long)seq, (long long)n, ipc_strerror((int)n));
    if ((size_t)n != want) {
        uint32_t s = 0;
        if (n >= 4) memcpy(&s, buf, 4);
        th_fail(__FILE__, __LINE__, "%s: message %llu: length %lld, want %zu (it says seq %u)",
                what, (unsigned long long)seq, (long long)n, want, (unsigned)s);
    }
    if ((bad = msg_bad(buf, want, seq)) >= 0) {
        uint32_t s = 0;
        if (want >= 4) memcpy(&s, buf, 4);
        th_fail(__FILE__, __LINE__, "%s: message %llu (len %zu): byte %ld wrong (it says seq %u)",
                what, (unsigned long long)seq, want, bad, (unsigned)s);
    }
}

/* Fixed-length test messages: length of message seq in the simple tests. */
static size_t small_len(uint64_t seq) {
    return 1 + (size_t)(th_mix64(seq ^ 0xabcdef) % 300);
}

static void send_msg(ipc_ring *r, uint64_t seq, size_t len, int64_t timeout) {
    unsigned char buf[4096];
    CHECK(len <= sizeof buf);
    msg_fill(buf, len, seq);
    CHECK_ERR(ipc_ring_send(r, buf, len, timeout), 0);
}

static void recv_msg(ipc_ring *r, uint64_t seq, size_t len, int64_t timeout) {
    unsigned char buf[4096];
    ssize_t n = ipc_ring_recv(r, buf, sizeof buf, timeout);
    msg_expect("recv", buf, n, len, seq);
}

static ipc_ring_opts opts_cap(size_t cap) {
    ipc_ring_opts o;
    memset(&o, 0, sizeof o);
    o.capacity = cap;
    return o;
}

/* What parent and children share: one MAP_SHARED page made before fork. Flags and
   counters are accessed atomically; the 64-bit times are written before a flag is
   released and read after it is acquired. */
typedef struct shared {
    int flag[8];
    int rc[8];
    uint32_t count[16];
    int64_t t[8];
    pid_t pid[4];
    th_scrib sc; /* the scribbler test's tallies */
} shared;

static shared *shared_map(void) {
    return (shared *)th_shared_map(sizeof(shared));
}

static void shared_unmap(shared *s) {
    th_shared_unmap(s, sizeof(shared));
}

static void flag_set(shared *s, int i, int v) {
    __atomic_store_n(&s->flag[i], v, __ATOMIC_RELEASE);
}

static int flag_get(shared *s, int i) {
    return __atomic_load_n(&s->flag[i], __ATOMIC_ACQUIRE);
}

/* Wait (bounded) until flag i reaches at least v. */
static void flag_wait(shared *s, int i, int v, int ms) {
    char what[16];
    snprintf(what, sizeof what, "flag %d", i);
    th_int_wait(&s->flag[i], v, ms, what);
}

static int ring_fd_cloexec(int fd) {
    int f = fcntl(fd, F_GETFD);
    return f >= 0 && (f & FD_CLOEXEC);
}

/* "/dev/shm" + name ("/ipct-..."). */
static char *shm_path(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "/dev/shm%s", name);
    return buf;
}

static ipc_ring g_ring;  /* a parent's handle: the forked child gets a copy */
static char g_name[300]; /* a ring name for children */
static shared *g_sh;     /* the page parent and children share */
static int g_fd = -1;    /* an fd for children to attach by */
static uint64_t g_n;     /* a message count for children */
static int64_t g_end;    /* a CLOCK_MONOTONIC time when children stop */
static int g_variant;    /* which flavour of a test a child runs */

/* ---- 1. stress: two million messages, all four APIs, across two processes ---- */

#define STRESS_N   (TH_ASAN ? 200000u : 2000000u)
#define STRESS_CAP (64 * KiB)

/* Length of stress message seq: mostly tiny or small, some large, a few at max_msg. */
static size_t stress_len(uint64_t seq, size_t maxm) {
    uint64_t h = th_mix64(seq ^ 0x5bd1e995ull);
    unsigned k = (unsigned)(h % 2000);
    size_t r = (size_t)(h >> 32);
    if (k == 0) return maxm - r % 8;  /* max_msg, or just under it */
    if (k < 5) return 1 + r % maxm;   /* anything */
    if (k < 700) return 1 + r % 8;    /* tiny */
    if (k < 1900) return 1 + r % 256; /* small */
    return 1 + r % 4096;
}

/* A timeout for one call: mostly blocking, sometimes try-once or 2 ms. */
static int64_t stress_timeout(uint64_t *rs) {
    unsigned k = (unsigned)(th_rnd64(rs) % 8);
    return k == 0 ? 0 : k == 1 ? 2 * MS : IPC_FOREVER;
}

/* A full or empty ring gives -EAGAIN for timeout 0 and -ETIMEDOUT otherwise; anything
   else ends the retry loop. Returns 1 to retry. */
static int stress_retry(long long rc, int64_t to, const char *what, uint64_t seq) {
    if (rc != -EAGAIN && rc != -ETIMEDOUT) return 0;
    if (to == IPC_FOREVER || (to == 0) != (rc == -EAGAIN))
        th_fail(__FILE__, __LINE__, "%s: message %llu: timeout %lld gave %lld (%s)", what,
                (unsigned long long)seq, (long long)to, rc, ipc_strerror((int)rc));
    return 1;
}

static void stress_producer(void *arg) {
    ipc_ring p;
    uint64_t seq, rs = 12345;
    unsigned char *buf;
    size_t maxm;
    (void)arg;
    CHECK_OK(ipc_ring_attach_fd(&p, ipc_ring_fd(&g_ring), IPC_PRODUCER));
    CHECK_OK(ipc_ring_close(&g_ring)); /* the forked copy: only unmaps */
    maxm = ipc_ring_max_msg(&p);
    CHECK_MAXMSG(maxm, STRESS_CAP);
    buf = (unsigned char *)malloc(maxm);
    CHECK(buf != NULL);
    for (seq = 0; seq < g_n; seq++) {
        size_t len = stress_len(seq, maxm), rlen;
        unsigned op = (unsigned)(th_rnd64(&rs) % 16);
        int64_t to = stress_timeout(&rs);
        void *m;
        int rc;
        if (op < 5) { /* send */
            msg_fill(buf, len, seq);
            while (stress_retry(rc = ipc_ring_send(&p, buf, len, to), to, "send", seq)) {
            }
            CHECK_ERR(rc, 0);
            continue;
        }
        /* reserve + commit; shrunken (reserve more, commit len) or after a cancel */
        rlen = op < 10 ? len : len + 1 + (size_t)(th_rnd64(&rs) % 100);
        if (rlen > maxm) rlen = maxm;
        if (op == 15) {
            while (stress_retry(rc = ipc_ring_reserve(&p, rlen, &m, to), to, "reserve", seq)) {
            }
            CHECK_ERR(rc, 0);
            msg_fill(m, rlen, seq + 1); /* looks like the next message: must vanish */
            CHECK_ERR(ipc_ring_commit(&p, 0), 0);
        }
        while (stress_retry(rc = ipc_ring_reserve(&p, rlen, &m, to), to, "reserve", seq)) {
        }
        CHECK_ERR(rc, 0);
        if (rlen > len) memset((char *)m + len, 0xee, rlen - len);
        msg_fill(m, len, seq);
        CHECK_ERR(ipc_ring_commit(&p, len), 0);
    }
    CHECK_OK(ipc_ring_close(&p));
    free(buf);
}

TEST_T(ring_stress_2m_mixed_apis_two_processes, 50000) {
    ipc_ring_opts o = opts_cap(STRESS_CAP);
    uint64_t seq, rs = 777;
    unsigned char *buf;
    size_t maxm;
    pid_t pid;
    CHECK_OK(ipc_ring_create(&g_ring, NULL, IPC_CONSUMER, &o));
    maxm = ipc_ring_max_msg(&g_ring);
    CHECK_MAXMSG(maxm, STRESS_CAP);
    buf = (unsigned char *)malloc(maxm + 64);
    CHECK(buf != NULL);
    g_n = STRESS_N;
    pid = th_spawn(stress_producer, NULL);
    CHECK(pid > 0);
    for (seq = 0; seq < g_n; seq++) {
        size_t want = stress_len(seq, maxm);
        unsigned op = (unsigned)(th_rnd64(&rs) % 16);
        int64_t to = stress_timeout(&rs);
        const void *m, *m2;
        ssize_t n;
        if (op < 6) { /* recv, big buffer */
            while (stress_retry(n = ipc_ring_recv(&g_ring, buf, maxm + 64, to), to, "recv", seq)) {
            }
            msg_expect("recv", buf, n, want, seq);
        } else if (op < 9) { /* recv into a buffer of exactly the message's size */
            while (stress_retry(n = ipc_ring_recv(&g_ring, buf, want, to), to, "recv", seq)) {
            }
            msg_expect("recv exact", buf, n, want, seq);
        } else if (op < 14) { /* peek (sometimes twice) + release */
            while (stress_retry(n = ipc_ring_peek(&g_ring, &m, to), to, "peek", seq)) {
            }
            msg_expect("peek", m, n, want, seq);
            if (op == 13) {
                CHECK_EQ(ipc_ring_peek(&g_ring, &m2, 0), n);
                CHECK(m2 == m);
            }
            CHECK_ERR(ipc_ring_release(&g_ring), 0);
        } else { /* a buffer one byte short first: -EMSGSIZE and the message stays */
            while (stress_retry(n = ipc_ring_peek(&g_ring, &m, to), to, "peek", seq)) {
            }
            CHECK_EQ(n, want);
            if (want > 1) CHECK_ERR(ipc_ring_recv(&g_ring, buf, want - 1, 0), -EMSGSIZE);
            n = ipc_ring_recv(&g_ring, buf, want, 0);
            msg_expect("recv after -EMSGSIZE", buf, n, want, seq);
        }
    }
    /* The producer closed after the last one: -EPIPE, never a further message. */
    CHECK_ERR(ipc_ring_recv(&g_ring, buf, maxm, 5000 * MS), -EPIPE);
    CHECK_EQ(th_join(pid, 10000), 0);
    CHECK_OK(ipc_ring_close(&g_ring));
    free(buf);
}

/* ---- 2. named and anonymous rings across processes, roles ---- */

static void named_producer(void *arg) {
    ipc_ring p;
    uint64_t i;
    (void)arg;
    CHECK_OK(ipc_ring_open(&p, g_name, IPC_PRODUCER));
    for (i = 0; i < 200; i++)
        send_msg(&p, i, small_len(i), 5000 * MS);
    CHECK_OK(ipc_ring_close(&p));
}

static void named_creator(void *arg) {
    ipc_ring_opts o = opts_cap(8 * KiB);
    ipc_ring p;
    uint64_t i;
    (void)arg;
    CHECK_OK(ipc_ring_create(&p, g_name, IPC_PRODUCER, &o));
    flag_set(g_sh, 0, 1);
    for (i = 0; i < 200; i++)
        send_msg(&p, i, small_len(i), 5000 * MS);
    CHECK_OK(ipc_ring_close(&p));
}

TEST(ring_named_create_open_across_processes) {
    ipc_ring_opts o = opts_cap(8 * KiB);
    ipc_ring c;
    uint64_t i;
    pid_t pid;
    /* The parent creates, the child opens by name. */
    th_name(g_name, sizeof g_name, "named");
    CHECK_OK(ipc_ring_create(&c, g_name, IPC_CONSUMER, &o));
    CHECK_MAXMSG(ipc_ring_max_msg(&c), 8 * KiB);
    pid = th_spawn(named_producer, NULL);
    for (i = 0; i < 200; i++)
        recv_msg(&c, i, small_len(i), 5000 * MS);
    CHECK_ERR(ipc_ring_recv(&c, &i, sizeof i, 5000 * MS), -EPIPE);
    CHECK_EQ(th_join(pid, JOIN_MS), 0);
    /* Unlinked: attached handles keep their memory; the name is gone. */
    CHECK_OK(ipc_ring_unlink(g_name));
    CHECK_ERR(ipc_ring_unlink(g_name), -ENOENT);
    CHECK_ERR(ipc_ring_open(&g_ring, g_name, IPC_PRODUCER), -ENOENT);
    CHECK_OK(ipc_ring_close(&c));

    /* The child creates, the parent opens. */
    g_sh = shared_map();
    th_name(g_name, sizeof g_name, "named2");
    pid = th_spawn(named_creator, NULL);
    flag_wait(g_sh, 0, 1, 3000);
    CHECK_OK(ipc_ring_open(&c, g_name, IPC_CONSUMER));
    CHECK_MAXMSG(ipc_ring_max_msg(&c), 8 * KiB);
    for (i = 0; i < 200; i++)
        recv_msg(&c, i, small_len(i), 5000 * MS);
    CHECK_ERR(ipc_ring_recv(&c, &i, sizeof i, 5000 * MS), -EPIPE);
    CHECK_EQ(th_join(pid, JOIN_MS), 0);
    CHECK_OK(ipc_ring_close(&c));
    CHECK_OK(ipc_ring_unlink(g_name));
    shared_unmap(g_sh);
}

static void anon_consumer(void *arg) {
    ipc_ring c;
    uint64_t i;
    (void)arg;
    CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&g_ring), IPC_CONSUMER));
    for (i = 0; i < 500; i++)
        recv_msg(&c, i, small_len(i), 5000 * MS);
    CHECK_ERR(ipc_ring_recv(&c, &i, sizeof i, 5000 * MS), -EPIPE);
    CHECK_OK(ipc_ring_close(&c));
}

TEST(ring_anonymous_attach_fd_across_processes) {
    ipc_ring_opts o = opts_cap(4 * KiB); /* smaller than the 500 messages: it wraps */
    uint64_t i;
    pid_t pid;
    CHECK_OK(ipc_ring_create(&g_ring, NULL, IPC_PRODUCER, &o));
    CHECK(ipc_ring_fd(&g_ring) >= 0);
    CHECK_MAXMSG(ipc_ring_max_msg(&g_ring), 4096);
    pid = th_spawn(anon_consumer, NULL);
    for (i = 0; i < 500; i++)
        send_msg(&g_ring, i, small_len(i), 5000 * MS);
    CHECK_OK(ipc_ring_close(&g_ring));
    CHECK_EQ(th_join(pid, JOIN_MS), 0);
}

TEST(ring_both_roles_in_one_handle) {
    ipc_ring r;
    ipc_ring_opts o = opts_cap(4 * KiB);
    uint64_t i;
    CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER | IPC_CONSUMER, &o));
    for (i = 0; i < 1000; i++) {
        send_msg(&r, i, small_len(i), 0);
        recv_msg(&r, i, small_len(i), 0);
    }
    /* We are our own peer: an empty ring is -EAGAIN / -ETIMEDOUT, never -EPIPE. */
    CHECK_ERR(ipc_ring_recv(&r, &i, sizeof i, 0), -EAGAIN);
    CHECK_ERR(ipc_ring_recv(&r, &i, sizeof i, 20 * MS), -ETIMEDOUT);
    CHECK_OK(ipc_ring_close(&r));
}

/* Child: hold role g_variant of the ring g_name (or g_fd), announce it on flag 0, wait
   for flag 1, then close it (flag 1 == 1) and stay alive until killed, or just stay. */
static void role_holder(void *arg) {
    ipc_ring r;
    (void)arg;
    if (g_fd >= 0)
        CHECK_OK(ipc_ring_attach_fd(&r, g_fd, g_variant));
    else
        CHECK_OK(ipc_ring_open(&r, g_name, g_variant));
    if (g_variant & IPC_PRODUCER) send_msg(&r, 1, 10, 1000 * MS);
    flag_set(g_sh, 0, 1);
    flag_wait(g_sh, 1, 1, 9000);
    if (flag_get(g_sh, 1) == 1) {
        CHECK_OK(ipc_ring_close(&r));
        flag_set(g_sh, 2, 1);
    }
    th_sleep_ms(10000);
}

/* Child: try to open role g_variant of g_name; the result goes to rc[0]. */
static void role_try(void *arg) {
    ipc_ring r;
    (void)arg;
    g_sh->rc[0] = ipc_ring_open(&r, g_name, g_variant);
    if (g_sh->rc[0] == 0) CHECK_OK(ipc_ring_close(&r));
}

/* In another process: the role it holds is -EBUSY here, and the other one is free. */
TEST(ring_role_busy_other_process) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring c, p;
    pid_t pid;
    int role;
    g_sh = shared_map();
    th_name(g_name, sizeof g_name, "busy");
    CHECK_OK(ipc_ring_create(&c, g_name, IPC_CONSUMER, &o));
    for (role = IPC_PRODUCER; role <= IPC_CONSUMER; role++) {
        memset(g_sh, 0, sizeof *g_sh);
        g_variant = role;
        if (role == IPC_CONSUMER) CHECK_OK(ipc_ring_close(&c));
        pid = th_spawn(role_holder, NULL);
        flag_wait(g_sh, 0, 1, 3000);
        CHECK_ERR(ipc_ring_open(&p, g_name, role), -EBUSY);
        CHECK_ERR(ipc_ring_open(&p, g_name, IPC_PRODUCER | IPC_CONSUMER), -EBUSY);
        CHECK_ERR(ipc_ring_close(&p), -EBADF); /* a failed open leaves the handle closed */
        if (role == IPC_PRODUCER) {
            /* the parent holds the consumer: the child could not take it either */
            CHECK_ERR(ipc_ring_open(&p, g_name, IPC_CONSUMER), -EBUSY);
            recv_msg(&c, 1, 10, 1000 * MS);
        } else {
            CHECK_OK(ipc_ring_open(&p, g_name, IPC_PRODUCER));
            CHECK_OK(ipc_ring_close(&p));
        }
        flag_set(g_sh, 1, 2); /* keep it */
        kill(pid, SIGKILL);
        CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
    }
    /* The reverse: the parent holds a role, the child is refused. */
    CHECK_OK(ipc_ring_open(&c, g_name, IPC_CONSUMER));
    memset(g_sh, 0, sizeof *g_sh);
    g_variant = IPC_CONSUMER;
    pid = th_spawn(role_try, NULL);
    CHECK_EQ(th_join(pid, JOIN_MS), 0);
    CHECK_ERR(g_sh->rc[0], -EBUSY);
    g_variant = IPC_PRODUCER;
    pid = th_spawn(role_try, NULL);
    CHECK_EQ(th_join(pid, JOIN_MS), 0);
    CHECK_ERR(g_sh->rc[0], 0);
    CHECK_OK(ipc_ring_close(&c));
    CHECK_OK(ipc_ring_unlink(g_name));
    shared_unmap(g_sh);
}

TEST(ring_role_busy_same_process) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring a, b, c;
    int fds;
    th_name(g_name, sizeof g_name, "busy1");
    CHECK_OK(ipc_ring_create(&a, g_name, IPC_PRODUCER, &o));
    fds = th_fd_count();
    CHECK_ERR(ipc_ring_open(&b, g_name, IPC_PRODUCER), -EBUSY);
    CHECK_ERR(ipc_ring_attach_fd(&b, ipc_ring_fd(&a), IPC_PRODUCER), -EBUSY);
    CHECK_ERR(ipc_ring_open(&b, g_name, IPC_PRODUCER | IPC_CONSUMER), -EBUSY);
    CHECK_EQ(th_fd_count(), fds);
    CHECK_OK(ipc_ring_open(&b, g_name, IPC_CONSUMER));
    CHECK_ERR(ipc_ring_open(&c, g_name, IPC_CONSUMER), -EBUSY);
    CHECK_ERR(ipc_ring_attach_fd(&c, ipc_ring_fd(&b), IPC_CONSUMER), -EBUSY);
    CHECK_ERR(ipc_ring_attach_fd(&c, ipc_ring_fd(&a), IPC_CONSUMER), -EBUSY);
    /* the two handles of this process talk to each other */
    send_msg(&a, 5, 100, 0);
    recv_msg(&b, 5, 100, 0);
    CHECK_OK(ipc_ring_close(&b));
    CHECK_OK(ipc_ring_close(&a));
    CHECK_OK(ipc_ring_unlink(g_name));
    /* anonymous, both roles in one handle: neither role can be had again */
    CHECK_OK(ipc_ring_create(&a, NULL, IPC_PRODUCER | IPC_CONSUMER, &o));
    fds = th_fd_count();
    CHECK_ERR(ipc_ring_attach_fd(&b, ipc_ring_fd(&a), IPC_PRODUCER), -EBUSY);
    CHECK_ERR(ipc_ring_attach_fd(&b, ipc_ring_fd(&a), IPC_CONSUMER), -EBUSY);
    CHECK_EQ(th_fd_count(), fds);
    CHECK_OK(ipc_ring_close(&a));
}

/* A role freed by close can be claimed again: in this process, and while the process
   that closed it lives on. */
TEST(ring_role_reclaimed_after_close) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring c, p;
    pid_t pid;
    int i;
    g_sh = shared_map();
    th_name(g_name, sizeof g_name, "reclaim");
    CHECK_OK(ipc_ring_create(&c, g_name, IPC_CONSUMER, &o));
    for (i = 0; i < 3; i++) {
        CHECK_OK(ipc_ring_open(&p, g_name, IPC_PRODUCER));
        send_msg(&p, (uint64_t)i, 50, 0);
        CHECK_OK(ipc_ring_close(&p));
        recv_msg(&c, (uint64_t)i, 50, 0);
    }
    /* another process takes the producer and closes it, staying alive */
    g_variant = IPC_PRODUCER;
    pid = th_spawn(role_holder, NULL);
    flag_wait(g_sh, 0, 1, 3000);
    CHECK_ERR(ipc_ring_open(&p, g_name, IPC_PRODUCER), -EBUSY);
    recv_msg(&c, 1, 10, 1000 * MS);
    flag_set(g_sh, 1, 1);
    flag_wait(g_sh, 2, 1, 3000);
    /* the closed producer is -EPIPE to the consumer until a new one attaches */
    CHECK_ERR(ipc_ring_recv(&c, &i, sizeof i, 0), -EPIPE);
    CHECK_OK(ipc_ring_open(&p, g_name, IPC_PRODUCER));
    CHECK_ERR(ipc_ring_recv(&c, &i, sizeof i, 0), -EAGAIN);
    send_msg(&p, 9, 77, 0);
    recv_msg(&c, 9, 77, 0);
    CHECK_OK(ipc_ring_close(&p));
    kill(pid, SIGKILL);
    CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
    /* the consumer role too */
    CHECK_OK(ipc_ring_close(&c));
    CHECK_OK(ipc_ring_open(&c, g_name, IPC_CONSUMER));
    CHECK_OK(ipc_ring_close(&c));
    CHECK_OK(ipc_ring_unlink(g_name));
    shared_unmap(g_sh);
}

/* A role freed by its holder's death (SIGKILL) can be claimed again; messages the dead
   producer committed are still delivered, then the new producer's. */
TEST(ring_role_reclaimed_after_sigkill) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring c, p;
    pid_t pid;
    int named, role;
    g_sh = shared_map();
    for (named = 0; named < 2; named++) {
        for (role = IPC_PRODUCER; role <= IPC_CONSUMER; role++) {
            ipc_ring *mine = role == IPC_PRODUCER ? &c : &p;
            memset(g_sh, 0, sizeof *g_sh);
            g_fd = -1;
            if (named) {
                th_name(g_name, sizeof g_name, "death");
                CHECK_OK(ipc_ring_create(mine, g_name, IPC_PRODUCER + IPC_CONSUMER - role, &o));
            } else {
                CHECK_OK(ipc_ring_create(mine, NULL, IPC_PRODUCER + IPC_CONSUMER - role, &o));
                g_fd = ipc_ring_fd(mine);
            }
            g_variant = role;
            pid = th_spawn(role_holder, NULL);
            flag_wait(g_sh, 0, 1, 3000);
            if (named)
                CHECK_ERR(ipc_ring_open(&g_ring, g_name, role), -EBUSY);
            else
                CHECK_ERR(ipc_ring_attach_fd(&g_ring, g_fd, role), -EBUSY);
            kill(pid, SIGKILL);
            CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
            if (named)
                CHECK_OK(ipc_ring_open(&g_ring, g_name, role));
            else
                CHECK_OK(ipc_ring_attach_fd(&g_ring, g_fd, role));
            if (role == IPC_PRODUCER) {
                send_msg(&g_ring, 2, 20, 0);
                recv_msg(&c, 1, 10, 0); /* the dead producer's message */
                recv_msg(&c, 2, 20, 0);
                CHECK_ERR(ipc_ring_recv(&c, &pid, sizeof pid, 0), -EAGAIN);
            } else {
                /* the new consumer picks up where the dead one left off: nothing */
                CHECK_ERR(ipc_ring_recv(&g_ring, &pid, sizeof pid, 0), -EAGAIN);
                send_msg(&p, 3, 30, 0);
                recv_msg(&g_ring, 3, 30, 0);
            }
            CHECK_OK(ipc_ring_close(&g_ring));
            CHECK_OK(ipc_ring_close(mine));
            if (named) CHECK_OK(ipc_ring_unlink(g_name));
        }
    }
    g_fd = -1;
    shared_unmap(g_sh);
}

TEST(ring_create_existing_name_eexist) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring a, b;
    char path[400];
    int fds, maps, fd;
    ipc_shm s;
    th_name(g_name, sizeof g_name, "exist");
    CHECK_OK(ipc_ring_create(&a, g_name, IPC_PRODUCER, &o));
    fds = th_fd_count();
    maps = th_maps_now();
    CHECK_ERR(ipc_ring_create(&b, g_name, IPC_CONSUMER, &o), -EEXIST);
    CHECK_ERR(ipc_ring_create(&b, g_name, IPC_PRODUCER, NULL), -EEXIST);
    CHECK_ERR(ipc_ring_create(&b, g_name + 1, IPC_CONSUMER, &o), -EEXIST); /* without '/' */
    CHECK_ERR(ipc_ring_close(&b), -EBADF);
    CHECK_EQ(th_fd_count(), fds);
    CHECK_EQ(th_maps_now(), maps);
    /* the existing ring is untouched */
    CHECK_OK(ipc_ring_open(&b, g_name, IPC_CONSUMER));
    send_msg(&a, 4, 44, 0);
    recv_msg(&b, 4, 44, 0);
    CHECK_OK(ipc_ring_close(&b));
    CHECK_OK(ipc_ring_close(&a));
    CHECK_OK(ipc_ring_unlink(g_name));
    /* a plain file or a shm object at the name */
    th_name(g_name, sizeof g_name, "exist2");
    fd = open(shm_path(path, sizeof path, g_name), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    close(fd);
    CHECK_ERR(ipc_ring_create(&a, g_name, IPC_PRODUCER, &o), -EEXIST);
    CHECK_EQ(unlink(path), 0);
    CHECK_OK(ipc_shm_create(&s, g_name, 8192, NULL));
    CHECK_ERR(ipc_ring_create(&a, g_name, IPC_PRODUCER, &o), -EEXIST);
    CHECK_OK(ipc_shm_close(&s));
    CHECK_OK(ipc_shm_unlink(g_name));
}

TEST(ring_named_mode) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring r;
    struct stat st;
    char path[400];
    mode_t old = umask(0);
    th_name(g_name, sizeof g_name, "mode");
    CHECK_OK(ipc_ring_create(&r, g_name, IPC_PRODUCER, &o));
    CHECK_EQ(stat(shm_path(path, sizeof path, g_name), &st), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0600);
    CHECK_EQ(st.st_size, (off_t)(page_size() + 4 * KiB)); /* header page + capacity */
    CHECK_EQ(fstat(ipc_ring_fd(&r), &st), 0);
    CHECK_EQ(st.st_mode & 07777, 0600);
    CHECK_OK(ipc_ring_close(&r));
    CHECK_OK(ipc_ring_unlink(g_name));
    /* the mode asked for, exactly: no umask */
    umask(077);
    o.mode = 0644;
    th_name(g_name, sizeof g_name, "mode2");
    CHECK_OK(ipc_ring_create(&r, g_name, IPC_PRODUCER, &o));
    CHECK_EQ(stat(shm_path(path, sizeof path, g_name), &st), 0);
    CHECK_EQ(st.st_mode & 07777, 0644);
    CHECK_OK(ipc_ring_close(&r));
    CHECK_OK(ipc_ring_unlink(g_name));
    umask(old);
}

TEST(ring_open_missing_enoent) {
    ipc_ring r;
    int fds = th_fd_count(), maps = th_maps_now();
    th_name(g_name, sizeof g_name, "missing");
    CHECK_ERR(ipc_ring_open(&r, g_name, IPC_CONSUMER), -ENOENT);
    CHECK_ERR(ipc_ring_open(&r, g_name, IPC_PRODUCER), -ENOENT);
    CHECK_ERR(ipc_ring_close(&r), -EBADF);
    CHECK_ERR(ipc_ring_unlink(g_name), -ENOENT);
    CHECK_EQ(th_fd_count(), fds);
    CHECK_EQ(th_maps_now(), maps);
}

TEST(ring_bad_names) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    char longname[400], okname[400];
    size_t n;
    ipc_ring r;
    int fds = th_fd_count();
    const char *bad[] = {"a/b", "/a/b", "", "/", ".", "/..", "//x"};
    unsigned i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_ERR(ipc_ring_create(&r, bad[i], IPC_PRODUCER, &o), -EINVAL);
        CHECK_ERR(ipc_ring_open(&r, bad[i], IPC_PRODUCER), -EINVAL);
        CHECK_ERR(ipc_ring_unlink(bad[i]), -EINVAL);
    }
    CHECK_ERR(ipc_ring_open(&r, NULL, IPC_CONSUMER), -EINVAL);
    CHECK_ERR(ipc_ring_unlink(NULL), -EINVAL);
    /* 256 characters after the slash: too long; 255 is fine */
    th_name(okname, sizeof okname, "n");
    n = strlen(okname);
    memset(okname + n, 'x', 256 - n);
    okname[256] = '\0'; /* "/" + 255 */
    memcpy(longname, okname, 256);
    longname[256] = 'y';
    longname[257] = '\0'; /* "/" + 256 */
    CHECK_ERR(ipc_ring_create(&r, longname, IPC_PRODUCER, &o), -ENAMETOOLONG);
    CHECK_ERR(ipc_ring_open(&r, longname, IPC_PRODUCER), -ENAMETOOLONG);
    CHECK_ERR(ipc_ring_unlink(longname), -ENAMETOOLONG);
    CHECK_ERR(ipc_ring_create(&r, longname + 1, IPC_PRODUCER, &o), -ENAMETOOLONG);
    CHECK_EQ(th_fd_count(), fds);
    CHECK_OK(ipc_ring_create(&r, okname, IPC_PRODUCER, &o));
    CHECK_OK(ipc_ring_close(&r));
    CHECK_OK(ipc_ring_unlink(okname));
}

/* A /dev/shm object (or an fd) that is not a ring: -EBADMSG, and nothing leaks. */
static void not_a_ring(const char *name, size_t size, int how) {
    ipc_shm s;
    ipc_ring r;
    uint64_t st = 99;
    size_t i;
    int fds, maps;
    CHECK_OK(ipc_shm_create(&s, name, size, NULL));
    if (how == 1)
        for (i = 0; i < size; i++)
            ((unsigned char *)s.addr)[i] = (unsigned char)th_rnd64(&st);
    fds = th_fd_count();
    maps = th_maps_now();
    CHECK_ERR(ipc_ring_open(&r, name, IPC_CONSUMER), -EBADMSG);
    CHECK_ERR(ipc_ring_open(&r, name, IPC_PRODUCER), -EBADMSG);
    CHECK_ERR(ipc_ring_attach_fd(&r, s.fd, IPC_CONSUMER), -EBADMSG);
    CHECK_ERR(ipc_ring_close(&r), -EBADF);
    CHECK_EQ(th_fd_count(), fds);
    CHECK_EQ(th_maps_now(), maps);
    CHECK_OK(ipc_shm_close(&s));
    CHECK_OK(ipc_shm_unlink(name));
}

/* Make a real ring, close it, change one field of its header, and try to open it. */
static void damaged_ring(size_t off, uint64_t value, int width) {
    ipc_ring_opts o = opts_cap(8 * KiB);
    ipc_ring r;
    ipc_shm s;
    int fds, maps;
    th_name(g_name, sizeof g_name, "damaged");
    CHECK_OK(ipc_ring_create(&r, g_name, IPC_PRODUCER | IPC_CONSUMER, &o));
    send_msg(&r, 1, 8, 0);
    CHECK_OK(ipc_ring_close(&r));
    CHECK_OK(ipc_shm_open(&s, g_name, NULL));
    if (width == 8)
        memcpy((char *)s.addr + off, &value, 8);
    else {
        uint32_t v = (uint32_t)value;
        memcpy((char *)s.addr + off, &v, 4);
    }
    fds = th_fd_count();
    maps = th_maps_now();
    if (ipc_ring_open(&r, g_name, IPC_CONSUMER) != -EBADMSG)
        th_fail(__FILE__, __LINE__, "header offset %zu = %llu: open did not give -EBADMSG", off,
                (unsigned long long)value);
    CHECK_ERR(ipc_ring_attach_fd(&r, s.fd, IPC_PRODUCER), -EBADMSG);
    CHECK_EQ(th_fd_count(), fds);
    CHECK_EQ(th_maps_now(), maps);
    CHECK_OK(ipc_shm_close(&s));
    CHECK_OK(ipc_ring_unlink(g_name));
}

TEST(ring_open_not_a_ring_ebadmsg) {
    size_t pg = page_size();
    char path[400];
    ipc_ring r;
    int pfd[2], fd;
    th_name(g_name, sizeof g_name, "garbage");
    not_a_ring(g_name, pg + 8 * KiB, 1);                                  /* random bytes */
    not_a_ring(th_name(g_name, sizeof g_name, "zeros"), pg + 8 * KiB, 0); /* all zeros */
    not_a_ring(th_name(g_name, sizeof g_name, "small"), pg, 0);           /* no data area */
    not_a_ring(th_name(g_name, sizeof g_name, "tiny"), 100, 0);           /* under a page */
    not_a_ring(th_name(g_name, sizeof g_name, "npow2"), pg + 3 * pg, 0);  /* cap not 2^n */
    /* a real ring with one header field wrong */
    damaged_ring(0, 0x676e69722e637068ull, 8); /* magic */
    damaged_ring(8, 2, 4);                     /* layout version */
    damaged_ring(12, pg * 2, 4);               /* header size */
    damaged_ring(16, 16 * KiB, 8);             /* capacity */
    damaged_ring(24, 1, 4);                    /* kind */
    damaged_ring(128, 8 * KiB + 32, 8);        /* tail - head > capacity */
    damaged_ring(128, 12, 8);                  /* tail not a multiple of 8 */
    damaged_ring(256, 3 * 8 * KiB, 8);         /* head over a capacity past tail */
    /* a FIFO at the name (opening it must not block), a pipe, /dev/null */
    th_name(g_name, sizeof g_name, "fifo");
    CHECK_EQ(mkfifo(shm_path(path, sizeof path, g_name), 0600), 0);
    CHECK_ERR(ipc_ring_open(&r, g_name, IPC_CONSUMER), -EBADMSG);
    CHECK_EQ(unlink(path), 0);
    CHECK_EQ(pipe(pfd), 0);
    CHECK_ERR(ipc_ring_attach_fd(&r, pfd[0], IPC_CONSUMER), -EBADMSG);
    CHECK_ERR(ipc_ring_attach_fd(&r, pfd[1], IPC_PRODUCER), -EBADMSG);
    close(pfd[0]);
    close(pfd[1]);
    fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_ERR(ipc_ring_attach_fd(&r, fd, IPC_CONSUMER), -EBADMSG);
    close(fd);
}

TEST(ring_symlink_at_name) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    char target[300], tpath[400], lpath[400];
    ipc_ring t, r;
    struct stat st;
    /* a symlink to a real ring */
    th_name(target, sizeof target, "target");
    CHECK_OK(ipc_ring_create(&t, target, IPC_PRODUCER, &o));
    th_name(g_name, sizeof g_name, "link");
    shm_path(tpath, sizeof tpath, target);
    shm_path(lpath, sizeof lpath, g_name);
    CHECK_EQ(symlink(tpath, lpath), 0);
    CHECK_ERR(ipc_ring_open(&r, g_name, IPC_CONSUMER), -ELOOP);
    CHECK_ERR(ipc_ring_create(&r, g_name, IPC_CONSUMER, &o), -EEXIST);
    CHECK_EQ(lstat(lpath, &st), 0);
    CHECK(S_ISLNK(st.st_mode)); /* still the link */
    CHECK_EQ(unlink(lpath), 0);
    CHECK_OK(ipc_ring_close(&t));
    /* a dangling one: create must not make its target */
    CHECK_OK(ipc_ring_unlink(target));
    CHECK_EQ(symlink(tpath, lpath), 0);
    CHECK_ERR(ipc_ring_create(&r, g_name, IPC_PRODUCER, &o), -EEXIST);
    CHECK_ERR(ipc_ring_open(&r, g_name, IPC_PRODUCER), -ELOOP);
    CHECK(lstat(tpath, &st) != 0 && errno == ENOENT);
    CHECK_EQ(unlink(lpath), 0);
}

/* ---- 3. full and empty, timeouts ---- */

static void check_fast(int64_t t0, const char *what) {
    int64_t el = ipc_time_now() - t0;
    if (el >= 50 * MS)
        th_fail(__FILE__, __LINE__, "%s: a zero timeout took %.1f ms", what, th_ms_of(el));
}

TEST(ring_empty_timeouts) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring c, p;
    const void *m;
    char buf[64];
    int64_t t0;
    int i;
    CHECK_OK(ipc_ring_create(&c, NULL, IPC_CONSUMER, &o));
    /* no producer yet: that is not a dead one, just an empty ring */
    t0 = ipc_time_now();
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
    check_fast(t0, "recv");
    CHECK_TIMED(ipc_ring_recv(&c, buf, sizeof buf, 50 * MS), -ETIMEDOUT, 50);
    CHECK_OK(ipc_ring_attach_fd(&p, ipc_ring_fd(&c), IPC_PRODUCER));
    for (i = 0; i < 3; i++) {
        t0 = ipc_time_now();
        CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
        CHECK_ERR(ipc_ring_peek(&c, &m, 0), -EAGAIN);
        check_fast(t0, "recv/peek");
        CHECK_TIMED(ipc_ring_recv(&c, buf, sizeof buf, 50 * MS), -ETIMEDOUT, 50);
        CHECK_TIMED(ipc_ring_peek(&c, &m, 50 * MS), -ETIMEDOUT, 50);
        /* and it still works afterwards */
        send_msg(&p, (uint64_t)i, 33, 0);
        recv_msg(&c, (uint64_t)i, 33, 0);
    }
    CHECK_OK(ipc_ring_close(&p));
    CHECK_OK(ipc_ring_close(&c));
}

TEST(ring_full_timeouts) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring c, p;
    char buf[64];
    void *m;
    int64_t t0;
    int i, n, round;
    CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
    for (round = 0; round < 2; round++) {
        /* records of 1..8 bytes take 16 bytes each: about 256 fill 4 KiB */
        for (n = 0; ipc_ring_send(&p, buf, 1, 0) != -EAGAIN; n++)
            CHECK(n < 300);
        CHECK(n >= 254);
        t0 = ipc_time_now();
        CHECK_ERR(ipc_ring_send(&p, buf, 1, 0), -EAGAIN);
        CHECK_ERR(ipc_ring_reserve(&p, 1, &m, 0), -EAGAIN);
        check_fast(t0, "send/reserve");
        CHECK_TIMED(ipc_ring_send(&p, buf, 1, 50 * MS), -ETIMEDOUT, 50);
        CHECK_TIMED(ipc_ring_reserve(&p, 8, &m, 50 * MS), -ETIMEDOUT, 50);
        if (round == 0) CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&p), IPC_CONSUMER));
        /* one record out: room for exactly one more record of 16 bytes */
        CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, 0), 1);
        send_msg(&p, 256, 8, 0);
        CHECK_ERR(ipc_ring_send(&p, buf, 1, 0), -EAGAIN);
        for (i = 1; i < n; i++)
            CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, 0), 1);
        recv_msg(&c, 256, 8, 0);
        CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
    }
    CHECK_OK(ipc_ring_close(&c));
    CHECK_OK(ipc_ring_close(&p));
}

/* ---- 4. sizes and the zero-copy calls ---- */

TEST(ring_recv_buffer_too_small_keeps_message) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring c, p;
    unsigned char buf[512];
    const void *m;
    CHECK_OK(ipc_ring_create(&c, NULL, IPC_CONSUMER, &o));
    CHECK_OK(ipc_ring_attach_fd(&p, ipc_ring_fd(&c), IPC_PRODUCER));
    send_msg(&p, 1, 300, 0);
    send_msg(&p, 2, 5, 0);
    CHECK_ERR(ipc_ring_recv(&c, buf, 299, 0), -EMSGSIZE);
    CHECK_ERR(ipc_ring_recv(&c, buf, 1, 0), -EMSGSIZE);
    CHECK_ERR(ipc_ring_recv(&c, buf, 1, IPC_FOREVER), -EMSGSIZE);
    /* regression (tests/fuzz): a refused recv peeked nothing, so there is nothing to
       release; once this consumed the message unread */
    CHECK_ERR(ipc_ring_release(&c), -EINVAL);
    CHECK_EQ(ipc_ring_peek(&c, &m, 0), 300); /* peek tells the size */
    msg_expect("peek", m, 300, 300, 1);
    CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, 0), 300);
    msg_expect("recv", buf, 300, 300, 1);
    CHECK_ERR(ipc_ring_recv(&c, buf, 4, 0), -EMSGSIZE);
    CHECK_EQ(ipc_ring_recv(&c, buf, 5, 0), 5); /* exactly the size */
    msg_expect("recv", buf, 5, 5, 2);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
    CHECK_OK(ipc_ring_close(&p));
    CHECK_OK(ipc_ring_close(&c));
}

TEST(ring_message_sizes) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring c, p;
    unsigned char *buf;
    size_t maxm, pg = page_size();
    void *m;
    int i;
    CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
    CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&p), IPC_CONSUMER));
    maxm = ipc_ring_max_msg(&p);
    CHECK_MAXMSG(maxm, pg); /* 4 KiB is at least one page */
    CHECK_EQ(ipc_ring_max_msg(&c), maxm);
    buf = (unsigned char *)malloc(maxm + 16);
    CHECK(buf != NULL);
    CHECK_ERR(ipc_ring_send(&p, buf, 0, 0), -EINVAL);
    CHECK_ERR(ipc_ring_reserve(&p, 0, &m, 0), -EINVAL);
    CHECK_ERR(ipc_ring_send(&p, buf, maxm + 1, 0), -EMSGSIZE);
    CHECK_ERR(ipc_ring_send(&p, buf, maxm + 1, IPC_FOREVER), -EMSGSIZE);
    CHECK_ERR(ipc_ring_reserve(&p, maxm + 1, &m, 0), -EMSGSIZE);
    CHECK_ERR(ipc_ring_send(&p, buf, (size_t)-1, 0), -EMSGSIZE);
    CHECK_ERR(ipc_ring_send(&p, buf, (size_t)1 << 31, 0), -EMSGSIZE);
    CHECK_ERR(ipc_ring_recv(&c, buf, maxm, 0), -EAGAIN); /* none of those arrived */
    /* exactly max_msg fits an empty ring, wherever head is (it crosses the end) */
    for (i = 0; i < 12; i++) {
        size_t lead = 1 + (size_t)i * 331 % 2000;
        send_msg(&p, 100 + (uint64_t)i, lead, 0);
        msg_fill(buf, maxm, (uint64_t)i);
        CHECK_ERR(ipc_ring_send(&p, buf, maxm, 0), -EAGAIN); /* not while lead is in */
        recv_msg(&c, 100 + (uint64_t)i, lead, 0);
        CHECK_ERR(ipc_ring_send(&p, buf, maxm, 0), 0);
        CHECK_ERR(ipc_ring_send(&p, buf, 1, 0), -EAGAIN); /* it fills the ring */
        memset(buf, 0, maxm);
        CHECK_EQ(ipc_ring_recv(&c, buf, maxm, 0), maxm);
        msg_expect("max_msg", buf, (ssize_t)maxm, maxm, (uint64_t)i);
    }
    CHECK_OK(ipc_ring_close(&c));
    CHECK_OK(ipc_ring_close(&p));
    free(buf);
    /* capacity: 0 is 1 MiB, others round up to a power of two, at least a page */
    o.capacity = 0;
    CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
    CHECK_MAXMSG(ipc_ring_max_msg(&p), 1024 * KiB);
    CHECK_OK(ipc_ring_close(&p));
    CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, NULL));
    CHECK_MAXMSG(ipc_ring_max_msg(&p), 1024 * KiB);
    CHECK_OK(ipc_ring_close(&p));
    o.capacity = 1;
    CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
    CHECK_MAXMSG(ipc_ring_max_msg(&p), pg);
    CHECK_OK(ipc_ring_close(&p));
    o.capacity = 2 * pg + 1;
    CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
    CHECK_MAXMSG(ipc_ring_max_msg(&p), 4 * pg);
    CHECK_OK(ipc_ring_close(&p));
    CHECK_EQ(ipc_ring_max_msg(&p), 0);
}

/* Records that cross the end of the data area are one contiguous span to both sides. */
TEST(ring_wraparound_contiguous) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring r;
    size_t cap = page_size();
    unsigned char buf[4096];
    const void *cm;
    void *m;
    uint64_t i, pos = 0;
    CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER | IPC_CONSUMER, &o));
    for (i = 0; i < 400; i++) {
        size_t len = 1 + (size_t)(th_mix64(i) % (cap / 2));
        int how = (int)(i % 3);
        if (how == 0) {
            send_msg(&r, i, len, 0);
        } else {
            CHECK_ERR(ipc_ring_reserve(&r, len, &m, 0), 0);
            msg_fill(m, len, i);
            CHECK_ERR(ipc_ring_commit(&r, len), 0);
        }
        if (how == 2) {
            recv_msg(&r, i, len, 0);
        } else {
            CHECK_EQ(ipc_ring_peek(&r, &cm, 0), len);
            msg_expect("peek", cm, (ssize_t)len, len, i);
            memcpy(buf, cm, len);
            CHECK_ERR(ipc_ring_release(&r), 0);
        }
        pos += 8 + ((len + 7) & ~(uint64_t)7);
    }
    CHECK(pos > 50 * cap); /* it went round many times */
    CHECK_OK(ipc_ring_close(&r));
}

TEST(ring_reserve_commit_peek_release_rules) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring c, p;
    const void *m1, *m2;
    unsigned char buf[512];
    void *m, *mm;
    CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
    CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&p), IPC_CONSUMER));
    /* commit without a reservation */
    CHECK_ERR(ipc_ring_commit(&p, 1), -EINVAL);
    CHECK_ERR(ipc_ring_commit(&p, 0), -EINVAL);
    /* commit(0) cancels: nothing arrives */
    CHECK_ERR(ipc_ring_reserve(&p, 100, &m, 0), 0);
    msg_fill(m, 100, 1);
    CHECK_ERR(ipc_ring_commit(&p, 0), 0);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 20 * MS), -ETIMEDOUT);
    CHECK_ERR(ipc_ring_commit(&p, 0), -EINVAL); /* nothing reserved any more */
    /* commit larger than reserved; reserve twice; send during a reservation */
    CHECK_ERR(ipc_ring_reserve(&p, 96, &m, 0), 0);
    CHECK_ERR(ipc_ring_commit(&p, 97), -EINVAL);
    CHECK_ERR(ipc_ring_commit(&p, 4000), -EINVAL);
    CHECK_ERR(ipc_ring_reserve(&p, 10, &mm, 0), -EINVAL);
    CHECK_ERR(ipc_ring_send(&p, buf, 10, 0), -EINVAL);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
    /* the reservation is still there and still works */
    msg_fill(m, 96, 2);
    CHECK_ERR(ipc_ring_commit(&p, 96), 0);
    recv_msg(&c, 2, 96, 0);
    /* shrink: reserve 200, commit 50 */
    CHECK_ERR(ipc_ring_reserve(&p, 200, &m, 0), 0);
    memset(m, 0xee, 200);
    msg_fill(m, 50, 3);
    CHECK_ERR(ipc_ring_commit(&p, 50), 0);
    recv_msg(&c, 3, 50, 0);
    /* the space the shrink gave back is reused */
    send_msg(&p, 4, 7, 0);
    CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, 0), 7);
    msg_expect("recv", buf, 7, 7, 4);
    /* release without peek */
    CHECK_ERR(ipc_ring_release(&c), -EINVAL);
    send_msg(&p, 5, 60, 0);
    send_msg(&p, 6, 61, 0);
    CHECK_ERR(ipc_ring_release(&c), -EINVAL); /* still nothing peeked */
    /* peek twice: the same message; release consumes it */
    CHECK_EQ(ipc_ring_peek(&c, &m1, 0), 60);
    CHECK_EQ(ipc_ring_peek(&c, &m2, 1000 * MS), 60);
    CHECK(m1 == m2);
    msg_expect("peek", m2, 60, 60, 5);
    CHECK_ERR(ipc_ring_release(&c), 0);
    CHECK_ERR(ipc_ring_release(&c), -EINVAL);
    CHECK_EQ(ipc_ring_peek(&c, &m1, 0), 61);
    msg_expect("peek", m1, 61, 61, 6);
    CHECK_ERR(ipc_ring_release(&c), 0);
    CHECK_ERR(ipc_ring_peek(&c, &m1, 0), -EAGAIN);
    /* close with a pending reservation cancels it */
    CHECK_ERR(ipc_ring_reserve(&p, 30, &m, 0), 0);
    msg_fill(m, 30, 7);
    CHECK_OK(ipc_ring_close(&p));
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EPIPE);
    CHECK_OK(ipc_ring_close(&c));
}

/* commit may shrink a reservation (1..len) or cancel it (0): len + 1 is -EINVAL even
   where it still fits the 8-byte padding of the record. */
TEST(ring_commit_larger_than_reserved_unpadded) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring r;
    unsigned char buf[64];
    void *m;
    CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER | IPC_CONSUMER, &o));
    CHECK_ERR(ipc_ring_reserve(&r, 5, &m, 0), 0);
    msg_fill(m, 5, 1);
    CHECK_ERR(ipc_ring_commit(&r, 6), -EINVAL);
    CHECK_ERR(ipc_ring_commit(&r, 5), 0);
    CHECK_EQ(ipc_ring_recv(&r, buf, sizeof buf, 0), 5);
    CHECK_ERR(ipc_ring_reserve(&r, 1, &m, 0), 0);
    CHECK_ERR(ipc_ring_commit(&r, 8), -EINVAL);
    CHECK_ERR(ipc_ring_commit(&r, 0), 0);
    CHECK_OK(ipc_ring_close(&r));
}

/* ---- 5. a peer that dies or closes ---- */

#define KILL_ROUNDS 30

/* Producer child: count every committed message in shared count[0] (after the commit). */
static void streaming_producer(void *arg) {
    ipc_ring p;
    unsigned char buf[4096];
    uint64_t seq, rs = 99 + (uint64_t)g_variant;
    (void)arg;
    if (g_variant & 1)
        CHECK_OK(ipc_ring_open(&p, g_name, IPC_PRODUCER));
    else
        CHECK_OK(ipc_ring_attach_fd(&p, ipc_ring_fd(&g_ring), IPC_PRODUCER));
    flag_set(g_sh, 0, 1);
    for (seq = 0;; seq++) {
        size_t len = small_len(seq);
        void *m;
        if (th_rnd64(&rs) % 2) {
            msg_fill(buf, len, seq);
            CHECK_ERR(ipc_ring_send(&p, buf, len, IPC_FOREVER), 0);
        } else {
            CHECK_ERR(ipc_ring_reserve(&p, len, &m, IPC_FOREVER), 0);
            msg_fill(m, len, seq);
            CHECK_ERR(ipc_ring_commit(&p, len), 0);
        }
        __atomic_store_n(&g_sh->count[0], (uint32_t)(seq + 1), __ATOMIC_RELEASE);
    }
}

/* SIGKILL the producer at random moments: everything it committed arrives intact and in
   order, then -EPIPE within a second. */
TEST_T(ring_producer_sigkill_random_moments, 40000) {
    ipc_ring_opts o = opts_cap(8 * KiB);
    unsigned char buf[4096];
    uint64_t rs = 2024;
    int round;
    g_sh = shared_map();
    for (round = 0; round < KILL_ROUNDS; round++) {
        int64_t until, t_last, t_pipe;
        uint32_t committed, got = 0;
        ssize_t n;
        pid_t pid;
        int delay_us = (int)(th_rnd64(&rs) % 30000), eat = (int)(th_rnd64(&rs) % 3);
        memset(g_sh, 0, sizeof *g_sh);
        g_variant = round;
        if (round & 1) {
            th_name(g_name, sizeof g_name, "kill");
            CHECK_OK(ipc_ring_create(&g_ring, g_name, IPC_CONSUMER, &o));
        } else {
            CHECK_OK(ipc_ring_create(&g_ring, NULL, IPC_CONSUMER, &o));
        }
        pid = th_spawn(streaming_producer, NULL);
        CHECK(pid > 0);
        flag_wait(g_sh, 0, 1, 3000);
        /* consume for a while (or not at all: then the producer blocks on a full ring) */
        until = ipc_time_now() + delay_us * (int64_t)1000;
        while (eat && ipc_time_now() < until) {
            n = ipc_ring_recv(&g_ring, buf, sizeof buf, eat == 1 ? 0 : 1 * MS);
            if (n == -EAGAIN || n == -ETIMEDOUT) continue;
            msg_expect("recv", buf, n, small_len(got), got);
            got++;
        }
        if (!eat) th_sleep_ms(delay_us / 1000);
        kill(pid, SIGKILL);
        CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
        committed = __atomic_load_n(&g_sh->count[0], __ATOMIC_ACQUIRE);
        /* drain: in order, no gaps, then -EPIPE well before the 5 s timeout */
        t_last = ipc_time_now();
        for (;;) {
            n = ipc_ring_recv(&g_ring, buf, sizeof buf, 5000 * MS);
            if (n < 0) break;
            msg_expect("drain", buf, n, small_len(got), got);
            got++;
            t_last = ipc_time_now();
        }
        t_pipe = ipc_time_now();
        if (n != -EPIPE)
            th_fail(__FILE__, __LINE__, "round %d: after %u messages: %lld (%s), want -EPIPE",
                    round, got, (long long)n, ipc_strerror((int)n));
        if (t_pipe - t_last >= 1500 * MS)
            th_fail(__FILE__, __LINE__, "round %d: -EPIPE %.1f ms after the ring was drained",
                    round, th_ms_of(t_pipe - t_last));
        /* every committed message arrived: the kill may fall between a commit and its count */
        if (got != committed && got != committed + 1)
            th_fail(__FILE__, __LINE__, "round %d: received %u messages, %u were committed", round,
                    got, committed);
        CHECK_OK(ipc_ring_close(&g_ring));
        if (round & 1) CHECK_OK(ipc_ring_unlink(g_name));
    }
    shared_unmap(g_sh);
}

/* Once a blocked call has reported the peer's death (-EPIPE), the next call, even one
   with a zero timeout, reports it too: the peer is gone and everything was received
   (consumer), or no room can come (producer); it is not "empty" or "full" (-EAGAIN). */
static void dying_peer(void *arg) {
    ipc_ring r;
    (void)arg;
    CHECK_OK(ipc_ring_attach_fd(&r, ipc_ring_fd(&g_ring), g_variant));
    if (g_variant == IPC_PRODUCER) send_msg(&r, 1, 10, 1000 * MS);
    flag_set(g_sh, 0, 1);
    th_sleep_ms(20000);
}

TEST(ring_epipe_stays_after_peer_death) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    unsigned char buf[64];
    int role;
    g_sh = shared_map();
    for (role = IPC_PRODUCER; role <= IPC_CONSUMER; role++) {
        int mine = IPC_PRODUCER + IPC_CONSUMER - role, rc;
        pid_t pid;
        memset(g_sh, 0, sizeof *g_sh);
        g_variant = role;
        CHECK_OK(ipc_ring_create(&g_ring, NULL, mine, &o));
        pid = th_spawn(dying_peer, NULL);
        flag_wait(g_sh, 0, 1, 3000);
        kill(pid, SIGKILL);
        CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
        if (mine == IPC_CONSUMER) {
            recv_msg(&g_ring, 1, 10, 1000 * MS);
            CHECK_ERR(ipc_ring_recv(&g_ring, buf, sizeof buf, 3000 * MS), -EPIPE);
            rc = (int)ipc_ring_recv(&g_ring, buf, sizeof buf, 0);
            if (rc != -EPIPE)
                th_fail(__FILE__, __LINE__,
                        "consumer: recv(timeout 0) right after -EPIPE: %d (%s), want -EPIPE", rc,
                        ipc_strerror(rc));
            CHECK_ERR(ipc_ring_recv(&g_ring, buf, sizeof buf, 20 * MS), -EPIPE);
        } else {
            while (ipc_ring_send(&g_ring, buf, 1, 0) == 0) {
            }
            CHECK_ERR(ipc_ring_send(&g_ring, buf, 1, 3000 * MS), -EPIPE);
            rc = ipc_ring_send(&g_ring, buf, 1, 0);
            if (rc != -EPIPE)
                th_fail(__FILE__, __LINE__,
                        "producer: send(timeout 0) right after -EPIPE: %d (%s), want -EPIPE", rc,
                        ipc_strerror(rc));
            CHECK_ERR(ipc_ring_send(&g_ring, buf, 1, 20 * MS), -EPIPE);
        }
        CHECK_OK(ipc_ring_close(&g_ring));
    }
    shared_unmap(g_sh);
}

/* Producer child for the test below: send message 1 (10 bytes), announce, sleep. */
static void one_shot_producer(void *arg) {
    ipc_ring p;
    (void)arg;
    CHECK_OK(ipc_ring_open(&p, g_name, IPC_PRODUCER));
    send_msg(&p, 1, 10, 1000 * MS);
    flag_set(g_sh, 0, 1);
    th_sleep_ms(20000);
}

/* A producer SIGKILLed inside ipc_ring_commit, after the record (header and payload) was
   stored and before the shared tail was: the state is made exactly by sending, then
   putting the tail back by the record's size (24 bytes for 10 bytes), then killing the
   producer. Whether or not that message counts as committed, the ring must stay usable:
   a new producer can claim the role, and every message arrives at most once (message 1)
   or exactly once (those of the new producer), in order. Variants: the consumer reads
   before or after the new producer claims the role; the record at offset 0 or crossing
   the end of the data area. */
TEST(ring_producer_death_between_record_and_tail_store) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    unsigned char buf[4096];
    int variant;
    g_sh = shared_map();
    for (variant = 0; variant < 4; variant++) {
        int claim_first = variant & 1, got1 = 0, rc;
        uint64_t tail, pos = 0;
        ipc_ring c, p;
        ipc_shm s;
        ssize_t n;
        pid_t pid;
        memset(g_sh, 0, sizeof *g_sh);
        th_name(g_name, sizeof g_name, "midcommit");
        CHECK_OK(ipc_ring_create(&c, g_name, IPC_CONSUMER, &o));
        if (variant & 2) { /* move both positions to 16 bytes before the end */
            CHECK_OK(ipc_ring_open(&p, g_name, IPC_PRODUCER));
            send_msg(&p, 50, page_size() - 24, 0);
            recv_msg(&c, 50, page_size() - 24, 0);
            CHECK_OK(ipc_ring_close(&p));
            pos = page_size() - 16;
        }
        pid = th_spawn(one_shot_producer, NULL);
        flag_wait(g_sh, 0, 1, 3000);
        CHECK_OK(ipc_shm_open(&s, g_name, NULL));
        memcpy(&tail, (char *)s.addr + 128, 8);
        CHECK_EQ(tail, pos + 24);
        tail -= 24;
        memcpy((char *)s.addr + 128, &tail, 8);
        kill(pid, SIGKILL);
        CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
        if (!claim_first) {
            /* message 1 is delivered (the record was its commit) or not (the tail was) */
            n = ipc_ring_recv(&c, buf, sizeof buf, 3000 * MS);
            if (n != -EPIPE) {
                msg_expect("the dying producer's message", buf, n, 10, 1);
                got1 = 1;
                n = ipc_ring_recv(&c, buf, sizeof buf, 3000 * MS);
                if (n != -EPIPE)
                    th_fail(__FILE__, __LINE__,
                            "variant %d: message 1 was delivered, then recv: %lld (%s), want "
                            "-EPIPE (head is now past the tail the producer never stored)",
                            variant, (long long)n, ipc_strerror((int)n));
            }
        }
        rc = ipc_ring_open(&p, g_name, IPC_PRODUCER);
        if (rc != 0)
            th_fail(__FILE__, __LINE__,
                    "variant %d: message 1 %s; then a new producer's ipc_ring_open: %d (%s)",
                    variant,
                    claim_first ? "not read yet"
                    : got1      ? "delivered"
                                : "not delivered",
                    rc, ipc_strerror(rc));
        send_msg(&p, 2, 100, 0);
        send_msg(&p, 3, 33, 0);
        if (claim_first) {
            n = ipc_ring_recv(&c, buf, sizeof buf, 1000 * MS);
            if (n == 10) {
                msg_expect("the dying producer's message", buf, n, 10, 1);
            } else {
                msg_expect("recv", buf, n, 100, 2);
                recv_msg(&c, 3, 33, 1000 * MS);
                n = -1;
            }
        }
        if (n != -1) {
            recv_msg(&c, 2, 100, 1000 * MS);
            recv_msg(&c, 3, 33, 1000 * MS);
        }
        CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
        /* and it goes on working */
        send_msg(&p, 4, 3000, 0);
        recv_msg(&c, 4, 3000, 0);
        CHECK_OK(ipc_ring_close(&p));
        CHECK_OK(ipc_ring_close(&c));
        CHECK_OK(ipc_shm_close(&s));
        CHECK_OK(ipc_ring_unlink(g_name));
    }
    shared_unmap(g_sh);
}

/* Producer child: commit 5 messages, then reserve a 6th, write it, tell the parent
   through the pipe (g_fd), and sleep until killed. */
static void reserving_producer(void *arg) {
    ipc_ring p;
    uint64_t i;
    void *m;
    (void)arg;
    CHECK_OK(ipc_ring_attach_fd(&p, ipc_ring_fd(&g_ring), IPC_PRODUCER));
    for (i = 0; i < 5; i++)
        send_msg(&p, i, small_len(i), IPC_FOREVER);
    CHECK_ERR(ipc_ring_reserve(&p, (size_t)g_n, &m, IPC_FOREVER), 0);
    msg_fill(m, (size_t)g_n, 5);
    CHECK_EQ(write(g_fd, "r", 1), 1);
    th_sleep_ms(20000);
}

TEST(ring_producer_killed_between_reserve_and_commit) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    unsigned char buf[4096];
    ipc_ring p;
    int pfd[2], variant;
    for (variant = 0; variant < 2; variant++) {
        int64_t t0;
        uint64_t i;
        char ch;
        pid_t pid;
        CHECK_EQ(pipe(pfd), 0);
        g_fd = pfd[1];
        g_n = variant ? 2000 : 16; /* the big one crosses the end of the data area */
        CHECK_OK(ipc_ring_create(&g_ring, NULL, IPC_CONSUMER, &o));
        if (variant) { /* move head so that the reservation wraps */
            CHECK_OK(ipc_ring_attach_fd(&p, ipc_ring_fd(&g_ring), IPC_PRODUCER));
            send_msg(&p, 77, 2500, 0);
            recv_msg(&g_ring, 77, 2500, 0);
            CHECK_OK(ipc_ring_close(&p));
            /* the closed producer is -EPIPE until the child attaches */
        }
        pid = th_spawn(reserving_producer, NULL);
        CHECK_EQ(ipc_fd_read_exact(pfd[0], &ch, 1, 3000 * MS, NULL), 1);
        kill(pid, SIGKILL);
        CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
        for (i = 0; i < 5; i++)
            recv_msg(&g_ring, i, small_len(i), 5000 * MS);
        t0 = ipc_time_now();
        CHECK_ERR(ipc_ring_recv(&g_ring, buf, sizeof buf, 5000 * MS), -EPIPE);
        CHECK(ipc_time_now() - t0 < 1500 * MS);
        /* a new producer: its message comes next, nothing of the dead reservation */
        CHECK_OK(ipc_ring_attach_fd(&p, ipc_ring_fd(&g_ring), IPC_PRODUCER));
        send_msg(&p, 1000, 40, 0);
        recv_msg(&g_ring, 1000, 40, 0);
        CHECK_ERR(ipc_ring_recv(&g_ring, buf, sizeof buf, 0), -EAGAIN);
        CHECK_OK(ipc_ring_close(&p));
        CHECK_OK(ipc_ring_close(&g_ring));
        close(pfd[0]);
        close(pfd[1]);
    }
    g_fd = -1;
}

/* Consumer child: receive one message, wait, note the time and SIGKILL itself (variant
   0) or close its handle and live on (variant 1). */
static void leaving_consumer(void *arg) {
    ipc_ring c;
    (void)arg;
    CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&g_ring), IPC_CONSUMER));
    recv_msg(&c, 1, 10, 3000 * MS);
    flag_set(g_sh, 0, 1);
    th_sleep_ms(150);
    g_sh->t[0] = ipc_time_now();
    if (g_variant == 0) {
        flag_set(g_sh, 1, 1);
        kill(getpid(), SIGKILL);
    }
    CHECK_OK(ipc_ring_close(&c));
    flag_set(g_sh, 1, 1);
    th_sleep_ms(10000);
}

/* A producer blocked on a full ring gets -EPIPE when the consumer dies (within about a
   second) or closes (at once), and every later send is -EPIPE too. */
static void producer_sees_consumer_leave(int variant) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    unsigned char buf[512];
    int64_t t0, t1, limit = variant == 0 ? 1500 * MS : 1000 * MS;
    pid_t pid;
    int rc, n = 0;
    void *m;
    g_sh = shared_map();
    g_variant = variant;
    CHECK_OK(ipc_ring_create(&g_ring, NULL, IPC_PRODUCER, &o));
    pid = th_spawn(leaving_consumer, NULL);
    send_msg(&g_ring, 1, 10, 0);
    flag_wait(g_sh, 0, 1, 3000);
    memset(buf, 1, sizeof buf);
    while ((rc = ipc_ring_send(&g_ring, buf, 100, 0)) == 0)
        n++;
    CHECK_ERR(rc, -EAGAIN);
    CHECK(n > 10);
    while ((rc = ipc_ring_send(&g_ring, buf, 1, 0)) == 0) {
    }
    CHECK_ERR(rc, -EAGAIN);         /* full even for the smallest message */
    CHECK_EQ(flag_get(g_sh, 1), 0); /* the consumer is still there: we block below */
    t0 = ipc_time_now();
    rc = ipc_ring_send(&g_ring, buf, 100, 5000 * MS);
    t1 = ipc_time_now();
    flag_wait(g_sh, 1, 1, 1000); /* (set just after the close that woke us) */
    if (rc != -EPIPE || t1 - g_sh->t[0] >= limit)
        th_fail(__FILE__, __LINE__,
                "blocked send: %d (%s) %.1f ms after the consumer %s (blocked %.1f ms)", rc,
                ipc_strerror(rc), th_ms_of(t1 - g_sh->t[0]), variant ? "closed" : "died",
                th_ms_of(t1 - t0));
    CHECK(t1 - t0 >= 100 * MS); /* it did block */
    if (variant) {
        CHECK_ERR(ipc_ring_send(&g_ring, buf, 1, 0), -EPIPE);
        CHECK_ERR(ipc_ring_reserve(&g_ring, 1, &m, 0), -EPIPE);
        CHECK_ERR(ipc_ring_send(&g_ring, buf, 1, 1000 * MS), -EPIPE);
    } else {
        /* a try-once sender learns it within the same second */
        int64_t dl = ipc_deadline_make(1500 * MS);
        while ((rc = ipc_ring_send(&g_ring, buf, 1, 0)) == -EAGAIN && ipc_deadline_left(dl))
            th_sleep_ms(1);
        CHECK_ERR(rc, -EPIPE);
        CHECK_ERR(ipc_ring_send(&g_ring, buf, 1, 200 * MS), -EPIPE);
    }
    kill(pid, SIGKILL);
    CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
    CHECK_OK(ipc_ring_close(&g_ring));
    shared_unmap(g_sh);
}

TEST(ring_consumer_sigkill_unblocks_producer) {
    producer_sees_consumer_leave(0);
}

TEST(ring_consumer_close_unblocks_producer) {
    producer_sees_consumer_leave(1);
}

/* Producer child: send 300 messages (or, variant 1, one after 150 ms), close, note the
   time, and live on. */
static void closing_producer(void *arg) {
    ipc_ring p;
    uint64_t i, n = g_variant ? 1 : 300;
    (void)arg;
    CHECK_OK(ipc_ring_attach_fd(&p, ipc_ring_fd(&g_ring), IPC_PRODUCER));
    if (g_variant) th_sleep_ms(150);
    for (i = 0; i < n; i++)
        send_msg(&p, i, small_len(i), 5000 * MS);
    g_sh->t[0] = ipc_time_now();
    CHECK_OK(ipc_ring_close(&p));
    flag_set(g_sh, 0, 1);
    th_sleep_ms(10000);
}

TEST(ring_producer_close_drains_then_epipe) {
    ipc_ring_opts o = opts_cap(64 * KiB);
    unsigned char buf[512];
    int64_t t0, t1;
    uint64_t i;
    pid_t pid;
    g_sh = shared_map();
    /* everything is in the ring when the producer closes */
    g_variant = 0;
    CHECK_OK(ipc_ring_create(&g_ring, NULL, IPC_CONSUMER, &o));
    pid = th_spawn(closing_producer, NULL);
    flag_wait(g_sh, 0, 1, 3000);
    for (i = 0; i < 300; i++)
        recv_msg(&g_ring, i, small_len(i), i % 2 ? 0 : 1000 * MS);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_ring_recv(&g_ring, buf, sizeof buf, 0), -EPIPE);
    CHECK_ERR(ipc_ring_recv(&g_ring, buf, sizeof buf, 5000 * MS), -EPIPE);
    CHECK(ipc_time_now() - t0 < 100 * MS);
    kill(pid, SIGKILL);
    CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
    CHECK_OK(ipc_ring_close(&g_ring));
    /* the consumer is blocked when the producer closes */
    memset(g_sh, 0, sizeof *g_sh);
    g_variant = 1;
    CHECK_OK(ipc_ring_create(&g_ring, NULL, IPC_CONSUMER, &o));
    pid = th_spawn(closing_producer, NULL);
    recv_msg(&g_ring, 0, small_len(0), 5000 * MS);
    CHECK_ERR(ipc_ring_recv(&g_ring, buf, sizeof buf, 5000 * MS), -EPIPE);
    t1 = ipc_time_now();
    flag_wait(g_sh, 0, 1, 1000); /* (set just after the close that woke us) */
    if (t1 - g_sh->t[0] >= 1000 * MS)
        th_fail(__FILE__, __LINE__, "-EPIPE %.1f ms after the producer closed",
                th_ms_of(t1 - g_sh->t[0]));
    kill(pid, SIGKILL);
    CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
    CHECK_OK(ipc_ring_close(&g_ring));
    shared_unmap(g_sh);
}

/* ---- 6. a third process scribbles over the shared memory ---- */

#define SCRIB_CAP (16 * KiB)
#define SCRIB_MS  (TH_ASAN ? 600 : 700)

/* Attach: 0, or -EBADMSG while the header is scribbled (after a 1 ms nap); anything else
   fails. */
static int scrib_attach(ipc_ring *r, int role) {
    int rc = g_variant ? ipc_ring_open(r, g_name, role) : ipc_ring_attach_fd(r, g_fd, role);
    if (rc != 0 && rc != -EBADMSG)
        th_fail(__FILE__, __LINE__, "re-attach role %d: %d (%s)", role, rc, ipc_strerror(rc));
    if (rc != 0) th_sleep_ms(1);
    return rc;
}

static void scrib_consumer(void *arg) {
    unsigned char *buf = (unsigned char *)th_xmalloc(SCRIB_CAP);
    ipc_ring c;
    int have = 0;
    (void)arg;
    flag_wait(g_sh, 0, 1, 3000); /* the producer attached */
    CHECK_OK(scrib_attach(&c, IPC_CONSUMER));
    have = 1;
    flag_set(g_sh, 1, 1);
    while (ipc_time_now() < g_end) {
        ssize_t n;
        if (!have) {
            th_scrib_count(&g_sh->sc.attaches);
            if (scrib_attach(&c, IPC_CONSUMER) != 0) continue;
            have = 1;
        }
        n = th_ring_take(&c, buf, SCRIB_CAP, SCRIB_CAP, &g_n);
        have = th_scrib_took(&g_sh->sc, &c, n, ipc_ring_max_msg(&c), 0, buf, SCRIB_CAP);
    }
    if (have) CHECK_OK(ipc_ring_close(&c));
    free(buf);
}

static void scrib_producer(void *arg) {
    unsigned char *buf = (unsigned char *)th_xmalloc(SCRIB_CAP);
    uint64_t rs = 5;
    ipc_ring p;
    int have;
    (void)arg;
    memset(buf, 0x5a, SCRIB_CAP);
    CHECK_OK(scrib_attach(&p, IPC_PRODUCER));
    have = 1;
    flag_set(g_sh, 0, 1);
    while (ipc_time_now() < g_end) {
        size_t len;
        int64_t t0;
        void *m;
        int rc;
        if (!have) {
            if (scrib_attach(&p, IPC_PRODUCER) != 0) continue;
            have = 1;
        }
        if (th_rnd64(&rs) % 64 == 0) th_sleep_ms(1); /* the consumer waits (and sleeps) too */
        len = 1 + (size_t)(th_rnd64(&rs) % (th_rnd64(&rs) % 16 ? 200 : ipc_ring_max_msg(&p)));
        t0 = ipc_time_now();
        if (th_rnd64(&rs) % 2) {
            rc = ipc_ring_send(&p, buf, len, 20 * MS);
        } else {
            rc = ipc_ring_reserve(&p, len, &m, 20 * MS);
            if (rc == 0) {
                memset(m, 0x5a, len);
                CHECK_ERR(ipc_ring_commit(&p, len), 0);
            }
        }
        have = th_scrib_sent(&g_sh->sc, &p, t0, rc, 1, buf);
    }
    if (have) CHECK_OK(ipc_ring_close(&p));
    free(buf);
}

static void scrib_writer(void *arg) {
    static const size_t hot[] = {128, 132, 256, 260, 384, 388, 392, 512, 516, 520};
    size_t pg = page_size(), size = pg + SCRIB_CAP, i = 0;
    unsigned char *mem, ident[32];
    uint64_t rs = 31337;
    ipc_shm s;
    (void)arg;
    if (g_variant) {
        CHECK_OK(ipc_shm_open(&s, g_name, NULL));
        CHECK_EQ(s.size, size);
        mem = (unsigned char *)s.addr;
    } else {
        struct stat st;
        CHECK_EQ(fstat(g_fd, &st), 0);
        CHECK_EQ(st.st_size, (off_t)size);
        mem = (unsigned char *)mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, g_fd, 0);
        CHECK(mem != MAP_FAILED);
    }
    memcpy(ident, mem, sizeof ident);
    flag_wait(g_sh, 1, 1, 3000);
    th_sleep_ms(30); /* let some messages through first */
    while (ipc_time_now() < g_end) {
        unsigned k = (unsigned)(th_rnd64(&rs) % 16), burst = 1 + (unsigned)(th_rnd64(&rs) % 4), b;
        for (b = 0; b < burst; b++) {
            uint64_t v = th_rnd64(&rs), old;
            if (k < 4) { /* the positions and wake-up words */
                size_t off = hot[v % (sizeof hot / sizeof hot[0])];
                v >>= 8;
                if (off == 128 || off == 256) { /* positions: nudge, or anything */
                    memcpy(&old, mem + off, 8);
                    if (v % 3 == 0)
                        old += (v >> 8) % 8 * 8;
                    else if (v % 3 == 1)
                        old -= (v >> 8) % 8 * 8;
                    else
                        old = v;
                    memcpy(mem + off, &old, 8);
                } else {
                    uint32_t w = (uint32_t)(v % 4 ? v % 4 : v >> 32);
                    memcpy(mem + off, &w, 4);
                }
            } else if (k < 5) { /* anywhere in the header */
                mem[v % pg] = (unsigned char)(v >> 32);
            } else if (k < 8) { /* a plausible record header somewhere in the data */
                uint32_t rec[2];
                rec[0] = (uint32_t)((v >> 32) % (v % 2 ? 64 : SCRIB_CAP + 64));
                rec[1] = rec[0] ^ 0x52494e47u;
                memcpy(mem + pg + (size_t)(v % SCRIB_CAP) / 8 * 8, rec, 8);
            } else { /* random data bytes */
                mem[pg + (size_t)(v % SCRIB_CAP)] = (unsigned char)(v >> 32);
            }
            th_scrib_count(&g_sh->sc.writes);
        }
        if (++i % 8 == 0) { /* heal, so that re-attaching succeeds and the game goes on */
            uint64_t head;
            memcpy(mem, ident, sizeof ident);
            memcpy(&head, mem + 256, 8);
            head &= ~(uint64_t)7;
            memcpy(mem + 256, &head, 8);
            memcpy(mem + 128, &head, 8);
            memset(mem + pg + (size_t)(head & (SCRIB_CAP - 1)), 0, 8);
        }
        th_sleep_ms(1);
    }
    if (g_variant)
        CHECK_OK(ipc_shm_close(&s));
    else
        CHECK_EQ(munmap(mem, size), 0);
}

static void scribble(int named) {
    ipc_ring_opts o = opts_cap(SCRIB_CAP);
    ipc_ring r;
    pid_t pc, pp, pw;
    g_sh = shared_map();
    g_variant = named;
    g_fd = -1;
    /* nobody holds a role: the children claim them */
    if (named) {
        th_name(g_name, sizeof g_name, "scribble");
        CHECK_OK(ipc_ring_create(&r, g_name, IPC_PRODUCER | IPC_CONSUMER, &o));
    } else {
        CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER | IPC_CONSUMER, &o));
        g_fd = fcntl(ipc_ring_fd(&r), F_DUPFD_CLOEXEC, 0);
        CHECK(g_fd >= 0);
    }
    CHECK_OK(ipc_ring_close(&r));
    g_end = ipc_time_now() + SCRIB_MS * MS;
    g_n = 4242; /* the consumer's random state */
    pp = th_spawn(scrib_producer, NULL);
    pc = th_spawn(scrib_consumer, NULL);
    pw = th_spawn(scrib_writer, NULL);
    CHECK_EQ(th_join(pc, SCRIB_MS + 5000), 0);
    CHECK_EQ(th_join(pp, SCRIB_MS + 5000), 0);
    CHECK_EQ(th_join(pw, SCRIB_MS + 5000), 0);
    /* it did something: messages went through, and corruption was seen */
    th_scrib_check(&g_sh->sc, g_sh->sc.msgs > 0 && g_sh->sc.bad > 0 && g_sh->sc.writes >= 100);
    if (named)
        CHECK_OK(ipc_ring_unlink(g_name));
    else
        close(g_fd);
    g_fd = -1;
    shared_unmap(g_sh);
}

TEST_T(ring_scribbler_named, 15000) {
    scribble(1);
}

TEST_T(ring_scribbler_anonymous, 15000) {
    scribble(0);
}

/* ---- 7. fds and mappings ---- */

TEST(ring_no_fd_or_map_leaks) {
    ipc_ring_opts o = opts_cap(8 * KiB);
    ipc_ring a, b, c;
    ipc_shm s;
    int fds, maps, i, pfd[2];
    char other[300];
    /* warm up: the first ring sets up process-wide state (fork handler, registry) */
    CHECK_OK(ipc_ring_create(&a, NULL, IPC_PRODUCER, &o));
    CHECK_OK(ipc_ring_close(&a));
    fds = th_fd_count();
    maps = th_maps_now();
    th_name(g_name, sizeof g_name, "leak");
    th_name(other, sizeof other, "leak-other");
    for (i = 0; i < 20; i++) {
        CHECK_OK(ipc_ring_create(&a, NULL, IPC_PRODUCER | IPC_CONSUMER, &o));
        CHECK_OK(ipc_ring_close(&a));
        CHECK_OK(ipc_ring_create(&a, g_name, IPC_PRODUCER, &o));
        CHECK_OK(ipc_ring_open(&b, g_name, IPC_CONSUMER));
        CHECK_ERR(ipc_ring_attach_fd(&c, ipc_ring_fd(&a), IPC_CONSUMER), -EBUSY);
        send_msg(&a, (uint64_t)i, 99, 0);
        recv_msg(&b, (uint64_t)i, 99, 0);
        CHECK_OK(ipc_ring_close(&b));
        CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&a), IPC_CONSUMER));
        CHECK_OK(ipc_ring_close(&c));
        /* error paths */
        CHECK_ERR(ipc_ring_open(&b, g_name, IPC_PRODUCER), -EBUSY);
        CHECK_ERR(ipc_ring_attach_fd(&b, ipc_ring_fd(&a), IPC_PRODUCER), -EBUSY);
        CHECK_ERR(ipc_ring_create(&b, g_name, IPC_CONSUMER, &o), -EEXIST);
        CHECK_ERR(ipc_ring_open(&b, other, IPC_CONSUMER), -ENOENT);
        CHECK_ERR(ipc_ring_create(&b, NULL, 0, &o), -EINVAL);
        CHECK_ERR(ipc_ring_create(&b, "a/b", IPC_PRODUCER, &o), -EINVAL);
        CHECK_OK(ipc_ring_close(&a));
        CHECK_OK(ipc_ring_unlink(g_name));
        /* not a ring */
        CHECK_OK(ipc_shm_create(&s, other, 3 * page_size(), NULL));
        CHECK_ERR(ipc_ring_open(&b, other, IPC_CONSUMER), -EBADMSG);
        CHECK_ERR(ipc_ring_attach_fd(&b, s.fd, IPC_PRODUCER), -EBADMSG);
        CHECK_OK(ipc_shm_close(&s));
        CHECK_OK(ipc_shm_unlink(other));
        CHECK_EQ(pipe(pfd), 0);
        CHECK_ERR(ipc_ring_attach_fd(&b, pfd[0], IPC_PRODUCER), -EBADMSG);
        close(pfd[0]);
        close(pfd[1]);
        CHECK_ERR(ipc_ring_attach_fd(&b, -1, IPC_PRODUCER), -EBADF);
        if (th_fd_count() != fds || th_maps_now() != maps)
            th_fail(__FILE__, __LINE__, "round %d: fds %d (were %d), maps %d (were %d)", i,
                    th_fd_count(), fds, th_maps_now(), maps);
    }
    /* a poisoned handle closes cleanly too */
    CHECK_OK(ipc_ring_create(&a, g_name, IPC_PRODUCER | IPC_CONSUMER, &o));
    CHECK_OK(ipc_shm_open(&s, g_name, NULL));
    ((uint64_t *)s.addr)[128 / 8] = 12345; /* tail */
    CHECK_ERR(ipc_ring_recv(&a, pfd, sizeof pfd, 0), -EBADMSG);
    CHECK_ERR(ipc_ring_send(&a, pfd, sizeof pfd, 0), -EBADMSG);
    CHECK_OK(ipc_shm_close(&s));
    CHECK_OK(ipc_ring_close(&a));
    CHECK_OK(ipc_ring_unlink(g_name));
    CHECK_EQ(th_fd_count(), fds);
    CHECK_EQ(th_maps_now(), maps);
}

/* fd numbers open now, as a bitmap over 0..4095. */
static void fd_snapshot(unsigned char *open_fds) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int self;
    CHECK(d != NULL);
    self = dirfd(d);
    memset(open_fds, 0, 4096);
    while ((e = readdir(d)) != NULL) {
        int fd;
        if (e->d_name[0] == '.') continue;
        fd = atoi(e->d_name);
        if (fd != self && fd >= 0 && fd < 4096) open_fds[fd] = 1;
    }
    closedir(d);
}

/* Every fd opened since `before` is close-on-exec. Returns how many there are. */
static int new_fds_cloexec(const unsigned char *before, const char *what) {
    unsigned char now[4096];
    int fd, n = 0;
    fd_snapshot(now);
    for (fd = 0; fd < 4096; fd++) {
        if (!now[fd] || before[fd]) continue;
        n++;
        if (!ring_fd_cloexec(fd))
            th_fail(__FILE__, __LINE__, "%s: fd %d lacks FD_CLOEXEC", what, fd);
    }
    return n;
}

TEST(ring_fds_are_cloexec) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    unsigned char before[4096];
    ipc_ring a, b, c;
    fd_snapshot(before);
    CHECK_OK(ipc_ring_create(&a, NULL, IPC_PRODUCER, &o));
    CHECK(ring_fd_cloexec(ipc_ring_fd(&a)));
    CHECK(new_fds_cloexec(before, "anonymous create") >= 1);
    fd_snapshot(before);
    CHECK_OK(ipc_ring_attach_fd(&b, ipc_ring_fd(&a), IPC_CONSUMER));
    CHECK(ring_fd_cloexec(ipc_ring_fd(&b)));
    CHECK(ipc_ring_fd(&b) != ipc_ring_fd(&a)); /* its own */
    CHECK(new_fds_cloexec(before, "attach_fd") >= 1);
    CHECK_OK(ipc_ring_close(&b));
    CHECK_OK(ipc_ring_close(&a));
    th_name(g_name, sizeof g_name, "cloexec");
    fd_snapshot(before);
    CHECK_OK(ipc_ring_create(&a, g_name, IPC_PRODUCER, &o));
    CHECK(ring_fd_cloexec(ipc_ring_fd(&a)));
    CHECK(new_fds_cloexec(before, "named create") >= 1);
    fd_snapshot(before);
    CHECK_OK(ipc_ring_open(&c, g_name, IPC_CONSUMER));
    CHECK(ring_fd_cloexec(ipc_ring_fd(&c)));
    CHECK(new_fds_cloexec(before, "open") >= 1);
    CHECK_OK(ipc_ring_close(&c));
    CHECK_OK(ipc_ring_close(&a));
    CHECK_OK(ipc_ring_unlink(g_name));
}

/* ---- 8. a signal storm during blocking waits ---- */

/* Child: producer that sends message 1 (3000 bytes) 50 ms after attaching. */
static void late_producer(void *arg) {
    ipc_ring p;
    (void)arg;
    CHECK_OK(ipc_ring_attach_fd(&p, ipc_ring_fd(&g_ring), IPC_PRODUCER));
    flag_set(g_sh, 0, 1);
    th_sleep_ms(50);
    send_msg(&p, 1, 3000, 1000 * MS);
    flag_wait(g_sh, 1, 1, 5000);
    CHECK_OK(ipc_ring_close(&p));
}

/* Child: consumer that starts draining 50 ms after attaching. */
static void late_consumer(void *arg) {
    ipc_ring c;
    uint64_t i;
    (void)arg;
    CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&g_ring), IPC_CONSUMER));
    flag_set(g_sh, 0, 1);
    flag_wait(g_sh, 1, 1, 3000);
    th_sleep_ms(50);
    for (i = 0; i <= g_n; i++)
        recv_msg(&c, i, small_len(i), 3000 * MS);
    CHECK_OK(ipc_ring_close(&c));
}

TEST(ring_signal_storm_blocking_recv) {
    ipc_ring_opts o = opts_cap(8 * KiB);
    unsigned char buf[4096];
    int64_t t0;
    ssize_t n;
    pid_t pid;
    g_sh = shared_map();
    CHECK_OK(ipc_ring_create(&g_ring, NULL, IPC_CONSUMER, &o));
    pid = th_spawn(late_producer, NULL);
    flag_wait(g_sh, 0, 1, 3000);
    th_storm_start();
    t0 = ipc_time_now();
    n = ipc_ring_recv(&g_ring, buf, sizeof buf, IPC_FOREVER);
    th_storm_stop();
    msg_expect("recv in a signal storm", buf, n, 3000, 1);
    CHECK(ipc_time_now() - t0 >= 20 * MS); /* it did wait */
    CHECK(th_storm_count() > 20);
    flag_set(g_sh, 1, 1);
    CHECK_EQ(th_join(pid, JOIN_MS), 0);
    CHECK_OK(ipc_ring_close(&g_ring));
    shared_unmap(g_sh);
}

TEST(ring_signal_storm_timeouts) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    unsigned char buf[64];
    ipc_ring p;
    int i;
    g_sh = shared_map();
    CHECK_OK(ipc_ring_create(&g_ring, NULL, IPC_CONSUMER, &o));
    CHECK_OK(ipc_ring_attach_fd(&p, ipc_ring_fd(&g_ring), IPC_PRODUCER));
    th_storm_start();
    for (i = 0; i < 3; i++) {
        CHECK_TIMED(ipc_ring_recv(&g_ring, buf, sizeof buf, 50 * MS), -ETIMEDOUT, 50);
    }
    while (ipc_ring_send(&p, buf, 8, 0) == 0) {
    }
    for (i = 0; i < 3; i++) {
        CHECK_TIMED(ipc_ring_send(&p, buf, 8, 50 * MS), -ETIMEDOUT, 50);
    }
    th_storm_stop();
    CHECK(th_storm_count() > 100);
    CHECK_OK(ipc_ring_close(&p));
    CHECK_OK(ipc_ring_close(&g_ring));
    shared_unmap(g_sh);
}

TEST(ring_signal_storm_blocking_send) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    unsigned char buf[512];
    uint64_t i;
    pid_t pid;
    int rc;
    g_sh = shared_map();
    CHECK_OK(ipc_ring_create(&g_ring, NULL, IPC_PRODUCER, &o));
    pid = th_spawn(late_consumer, NULL);
    flag_wait(g_sh, 0, 1, 3000);
    for (i = 0;; i++) {
        size_t len = small_len(i);
        msg_fill(buf, len, i);
        if ((rc = ipc_ring_send(&g_ring, buf, len, 0)) != 0) break;
    }
    CHECK_ERR(rc, -EAGAIN);
    g_n = i; /* message i is sent below, blocking */
    th_storm_start();
    flag_set(g_sh, 1, 1);
    CHECK_ERR(ipc_ring_send(&g_ring, buf, small_len(i), IPC_FOREVER), 0);
    th_storm_stop();
    CHECK(th_storm_count() > 20);
    CHECK_EQ(th_join(pid, JOIN_MS), 0);
    CHECK_OK(ipc_ring_close(&g_ring));
    shared_unmap(g_sh);
}

/* ---- 9. bad arguments ---- */

TEST(ring_bad_arguments) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring c, p, z, r;
    unsigned char buf[64];
    const void *cm;
    void *m;
    int pfd[2], fd, roles[] = {0, 4, -1, 8, 5, 7, INT_MIN};
    unsigned i;
    memset(buf, 0, sizeof buf);
    CHECK_OK(ipc_ring_create(&c, NULL, IPC_CONSUMER, &o));
    CHECK_OK(ipc_ring_attach_fd(&p, ipc_ring_fd(&c), IPC_PRODUCER));
    th_name(g_name, sizeof g_name, "badargs");

    /* NULL handle */
    CHECK_ERR(ipc_ring_create(NULL, NULL, IPC_PRODUCER, &o), -EINVAL);
    CHECK_ERR(ipc_ring_create(NULL, g_name, IPC_PRODUCER, &o), -EINVAL);
    CHECK_ERR(ipc_ring_open(NULL, g_name, IPC_PRODUCER), -EINVAL);
    CHECK_ERR(ipc_ring_attach_fd(NULL, ipc_ring_fd(&c), IPC_PRODUCER), -EINVAL);
    CHECK_ERR(ipc_ring_close(NULL), -EINVAL);
    CHECK_ERR(ipc_ring_send(NULL, buf, 1, 0), -EINVAL);
    CHECK_ERR(ipc_ring_recv(NULL, buf, sizeof buf, 0), -EINVAL);
    CHECK_ERR(ipc_ring_reserve(NULL, 1, &m, 0), -EINVAL);
    CHECK_ERR(ipc_ring_commit(NULL, 1), -EINVAL);
    CHECK_ERR(ipc_ring_peek(NULL, &cm, 0), -EINVAL);
    CHECK_ERR(ipc_ring_release(NULL), -EINVAL);
    CHECK_EQ(ipc_ring_max_msg(NULL), 0);
    CHECK(ipc_ring_fd(NULL) < 0);
    {
        char path[400];
        struct stat st;
        CHECK(stat(shm_path(path, sizeof path, g_name), &st) != 0);
    }

    /* zeroed and closed handles */
    memset(&z, 0, sizeof z);
    CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER | IPC_CONSUMER, &o));
    CHECK_OK(ipc_ring_close(&r));
    for (i = 0; i < 2; i++) {
        ipc_ring *h = i ? &r : &z;
        CHECK_ERR(ipc_ring_send(h, buf, 1, 0), -EBADF);
        CHECK_ERR(ipc_ring_recv(h, buf, sizeof buf, 0), -EBADF);
        CHECK_ERR(ipc_ring_reserve(h, 1, &m, 0), -EBADF);
        CHECK_ERR(ipc_ring_commit(h, 1), -EBADF);
        CHECK_ERR(ipc_ring_peek(h, &cm, 0), -EBADF);
        CHECK_ERR(ipc_ring_release(h), -EBADF);
        CHECK_ERR(ipc_ring_close(h), -EBADF);
        CHECK_ERR(ipc_ring_fd(h), -EBADF);
        CHECK_EQ(ipc_ring_max_msg(h), 0);
    }

    /* roles */
    for (i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        CHECK_ERR(ipc_ring_create(&r, NULL, roles[i], &o), -EINVAL);
        CHECK_ERR(ipc_ring_create(&r, g_name, roles[i], &o), -EINVAL);
        CHECK_ERR(ipc_ring_attach_fd(&r, ipc_ring_fd(&c), roles[i]), -EINVAL);
        CHECK_ERR(ipc_ring_attach_fd(&r, -1, roles[i]), -EINVAL);
    }
    CHECK_OK(ipc_ring_create(&r, g_name, IPC_PRODUCER | IPC_CONSUMER, &o));
    CHECK_OK(ipc_ring_close(&r));
    for (i = 0; i < sizeof roles / sizeof roles[0]; i++)
        CHECK_ERR(ipc_ring_open(&r, g_name, roles[i]), -EINVAL);
    CHECK_ERR(ipc_ring_create(&r, g_name, IPC_PRODUCER, &o), -EEXIST);
    CHECK_OK(ipc_ring_unlink(g_name));

    /* options */
    o.capacity = ((size_t)1 << 30) + 1;
    CHECK_ERR(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o), -EINVAL);
    CHECK_ERR(ipc_ring_create(&r, g_name, IPC_PRODUCER, &o), -EINVAL);
    o.capacity = (size_t)-1;
    CHECK_ERR(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o), -EINVAL);
    o.capacity = ((size_t)1 << 31);
    CHECK_ERR(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o), -EINVAL);
    o.capacity = 4 * KiB;
    o.flags = 4; /* no such kind */
    CHECK_ERR(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o), -EINVAL);
    o.flags = IPC_RING_SPSC | IPC_RING_MSG(64); /* a slot size means nothing to SPSC */
    CHECK_ERR(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o), -EINVAL);
    o.flags = IPC_RING_MPMC | (1u << 24); /* 2-byte slots */
    CHECK_ERR(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o), -EINVAL);
    o.flags = IPC_RING_MPMC | IPC_RING_MSG((size_t)1 << 30); /* a slot beyond 1 GiB */
    CHECK_ERR(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o), -EINVAL);
    o.flags = 1u << 31;
    CHECK_ERR(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o), -EINVAL);
    o.flags = IPC_RING_PREFAULT | (1u << 18);
    CHECK_ERR(ipc_ring_create(&r, g_name, IPC_PRODUCER, &o), -EINVAL);
    o.flags = IPC_RING_OVERWRITE; /* only for broadcast */
    CHECK_ERR(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o), -EINVAL);
    o.flags = IPC_RING_MPMC | IPC_RING_OVERWRITE;
    CHECK_ERR(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o), -EINVAL);
    o.flags = IPC_RING_BROADCAST; /* one role per broadcast handle */
    CHECK_ERR(ipc_ring_create(&r, NULL, IPC_PRODUCER | IPC_CONSUMER, &o), -EINVAL);
    o.flags = IPC_RING_PREFAULT | (1u << 17) | (1u << 18);
    CHECK_ERR(ipc_ring_create(&r, g_name, IPC_PRODUCER, &o), -EINVAL);
    o.flags = IPC_RING_PREFAULT; /* a known flag is fine */
    CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o));
    CHECK_OK(ipc_ring_close(&r));
    o.flags = 0;
    o.mode = 01000;
    CHECK_ERR(ipc_ring_create(&r, g_name, IPC_PRODUCER, &o), -EINVAL);
    o.mode = 04600;
    CHECK_ERR(ipc_ring_create(&r, g_name, IPC_PRODUCER, &o), -EINVAL);
    o.mode = 0x10000 | 0600;
    CHECK_ERR(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o), -EINVAL);
    o.mode = 0;
    {
        char path[400];
        struct stat st;
        CHECK(stat(shm_path(path, sizeof path, g_name), &st) != 0); /* nothing made */
    }
    CHECK_ERR(ipc_ring_close(&r), -EBADF); /* every failed create leaves it closed */

    /* attach_fd: bad fds, fds that are not rings */
    CHECK_ERR(ipc_ring_attach_fd(&r, -1, IPC_PRODUCER), -EBADF);
    CHECK_ERR(ipc_ring_attach_fd(&r, -5, IPC_CONSUMER), -EBADF);
    CHECK_ERR(ipc_ring_attach_fd(&r, 4000, IPC_CONSUMER), -EBADF); /* not open */
    CHECK_EQ(pipe(pfd), 0);
    CHECK_ERR(ipc_ring_attach_fd(&r, pfd[0], IPC_CONSUMER), -EBADMSG);
    close(pfd[0]);
    close(pfd[1]);
    fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_ERR(ipc_ring_attach_fd(&r, fd, IPC_PRODUCER), -EBADMSG);
    close(fd);

    /* NULL message and buffer pointers, cap 0 */
    CHECK_ERR(ipc_ring_send(&p, NULL, 1, 0), -EINVAL);
    CHECK_ERR(ipc_ring_reserve(&p, 1, NULL, 0), -EINVAL);
    CHECK_ERR(ipc_ring_recv(&c, NULL, 10, 0), -EINVAL);
    CHECK_ERR(ipc_ring_recv(&c, buf, 0, 0), -EINVAL);
    CHECK_ERR(ipc_ring_peek(&c, NULL, 0), -EINVAL);
    send_msg(&p, 1, 10, 0);
    CHECK_ERR(ipc_ring_recv(&c, NULL, 10, 0), -EINVAL);
    CHECK_ERR(ipc_ring_recv(&c, buf, 0, 0), -EINVAL);
    CHECK_ERR(ipc_ring_peek(&c, NULL, 0), -EINVAL);

    /* the wrong role */
    CHECK_ERR(ipc_ring_send(&c, buf, 1, 0), -EINVAL);
    CHECK_ERR(ipc_ring_reserve(&c, 1, &m, 0), -EINVAL);
    CHECK_ERR(ipc_ring_commit(&c, 0), -EINVAL);
    CHECK_ERR(ipc_ring_recv(&p, buf, sizeof buf, 0), -EINVAL);
    CHECK_ERR(ipc_ring_peek(&p, &cm, 0), -EINVAL);
    CHECK_ERR(ipc_ring_release(&p), -EINVAL);

    /* a negative timeout other than IPC_FOREVER, where the call would wait */
    recv_msg(&c, 1, 10, 0);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, -2), -EINVAL);
    CHECK_ERR(ipc_ring_peek(&c, &cm, -1000), -EINVAL);
    while (ipc_ring_send(&p, buf, 32, 0) == 0) {
    }
    CHECK_ERR(ipc_ring_send(&p, buf, 32, -2), -EINVAL);
    CHECK_ERR(ipc_ring_reserve(&p, 32, &m, INT64_MIN), -EINVAL);

    /* none of that broke the ring */
    CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, 0), 32);

    /* close twice */
    CHECK_OK(ipc_ring_close(&p));
    CHECK_ERR(ipc_ring_close(&p), -EBADF);
    CHECK_ERR(ipc_ring_send(&p, buf, 1, 0), -EBADF);
    CHECK_EQ(ipc_ring_max_msg(&p), 0);
    CHECK_OK(ipc_ring_close(&c));
    CHECK_ERR(ipc_ring_close(&c), -EBADF);
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EBADF);
    CHECK_EQ(ipc_ring_max_msg(&c), 0);
}

/* Every call taking a handle returns -EINVAL for NULL (the CONVENTIONS: "-EINVAL bad
   argument (NULL, ...)"); -EBADF is for a handle that is not open. */
TEST(ring_fd_of_null_handle_einval) {
    CHECK_ERR(ipc_ring_fd(NULL), -EINVAL);
}

/* ---- 10. fork ---- */

/* Child of a parent that holds the producer of g_ring (and of g_name). */
static void forked_child(void *arg) {
    ipc_ring c, p;
    (void)arg;
    /* the inherited copy holds no role: the parent's producer stays taken */
    CHECK_ERR(ipc_ring_attach_fd(&p, ipc_ring_fd(&g_ring), IPC_PRODUCER), -EBUSY);
    CHECK_ERR(ipc_ring_open(&p, g_name, IPC_PRODUCER), -EBUSY);
    CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&g_ring), IPC_CONSUMER));
    flag_set(g_sh, 0, 1);
    recv_msg(&c, 1, 123, 3000 * MS);
    /* closing the copy only unmaps it: the parent's role is not released or closed */
    CHECK_OK(ipc_ring_close(&g_ring));
    CHECK_ERR(ipc_ring_close(&g_ring), -EBADF);
    CHECK_ERR(ipc_ring_open(&p, g_name, IPC_PRODUCER), -EBUSY);
    flag_set(g_sh, 1, 1);
    recv_msg(&c, 2, 45, 3000 * MS);
    CHECK_ERR(ipc_ring_recv(&c, &p, sizeof p, 0), -EAGAIN); /* not -EPIPE */
    CHECK_OK(ipc_ring_close(&c));
}

TEST(ring_fork_child_holds_no_role) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring x;
    pid_t pid;
    g_sh = shared_map();
    th_name(g_name, sizeof g_name, "fork");
    CHECK_OK(ipc_ring_create(&g_ring, g_name, IPC_PRODUCER, &o));
    pid = th_spawn(forked_child, NULL);
    flag_wait(g_sh, 0, 1, 3000);
    send_msg(&g_ring, 1, 123, 0);
    flag_wait(g_sh, 1, 1, 3000);
    send_msg(&g_ring, 2, 45, 0);
    CHECK_EQ(th_join(pid, JOIN_MS), 0);
    /* the parent still holds the producer, the consumer was closed by the child */
    CHECK_ERR(ipc_ring_open(&x, g_name, IPC_PRODUCER), -EBUSY);
    CHECK_ERR(ipc_ring_send(&g_ring, &x, 1, 0), -EPIPE);
    CHECK_OK(ipc_ring_close(&g_ring));
    CHECK_OK(ipc_ring_unlink(g_name));
    shared_unmap(g_sh);
}

static void copy_sender(void *arg) {
    int rc;
    (void)arg;
    rc = ipc_ring_send(&g_ring, "x", 1, 0);
    g_sh->rc[0] = rc;
    flag_set(g_sh, 0, 1);
}

/* The forked copy of a producer handle holds no role, so it cannot send: a send there
   would break single-producer (the parent is sending too). */
TEST(ring_fork_child_copy_cannot_send) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    unsigned char buf[64];
    ipc_ring c;
    pid_t pid;
    g_sh = shared_map();
    CHECK_OK(ipc_ring_create(&g_ring, NULL, IPC_PRODUCER, &o));
    CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&g_ring), IPC_CONSUMER));
    pid = th_spawn(copy_sender, NULL);
    CHECK_EQ(th_join(pid, JOIN_MS), 0);
    CHECK_EQ(flag_get(g_sh, 0), 1);
    if (g_sh->rc[0] >= 0)
        th_fail(__FILE__, __LINE__, "ipc_ring_send on the forked copy returned %d; recv now: %d",
                g_sh->rc[0], (int)ipc_ring_recv(&c, buf, sizeof buf, 0));
    CHECK_ERR(ipc_ring_recv(&c, buf, sizeof buf, 0), -EAGAIN);
    CHECK_OK(ipc_ring_close(&c));
    CHECK_OK(ipc_ring_close(&g_ring));
    shared_unmap(g_sh);
}

/* B: consumer of A's ring, attached through (or opened beside) fds inherited from A.
   Receives "hello", then waits (5 s) and reports what it got and when. */
static void process_b(void *arg) {
    ipc_ring c;
    unsigned char buf[64];
    ssize_t n;
    (void)arg;
    if (g_variant)
        CHECK_OK(ipc_ring_open(&c, g_name, IPC_CONSUMER));
    else
        CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&g_ring), IPC_CONSUMER));
    /* g_ring, A's handle, stays open here on purpose: B inherited all of A's fds */
    flag_set(g_sh, 0, 1);
    recv_msg(&c, 7, 20, 3000 * MS);
    flag_set(g_sh, 2, 1); /* about to block */
    n = ipc_ring_recv(&c, buf, sizeof buf, 5000 * MS);
    g_sh->t[1] = ipc_time_now();
    g_sh->rc[0] = (int)n;
    flag_set(g_sh, 3, 1);
    CHECK_OK(ipc_ring_close(&c));
}

/* A: create the ring as producer, fork B, send it one message, then wait to be killed. */
static void process_a(void *arg) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    pid_t b;
    (void)arg;
    if (g_variant)
        CHECK_OK(ipc_ring_create(&g_ring, g_name, IPC_PRODUCER, &o));
    else
        CHECK_OK(ipc_ring_create(&g_ring, NULL, IPC_PRODUCER, &o));
    b = th_spawn(process_b, NULL);
    CHECK(b > 0);
    g_sh->pid[0] = b;
    flag_wait(g_sh, 0, 1, 3000);
    send_msg(&g_ring, 7, 20, 1000 * MS);
    flag_set(g_sh, 1, 1);
    th_sleep_ms(20000);
}

/* A creates the ring and forks B, B consumes; A is SIGKILLed: B's blocking recv gets
   -EPIPE within about a second, although B inherited every fd of A. */
TEST(ring_fork_inherited_fds_do_not_keep_dead_producer) {
    int variant;
    g_sh = shared_map();
    for (variant = 0; variant < 2; variant++) {
        int64_t t_kill, dl;
        pid_t a;
        memset(g_sh, 0, sizeof *g_sh);
        g_variant = variant;
        th_name(g_name, sizeof g_name, "forka");
        a = th_spawn(process_a, NULL);
        CHECK(a > 0);
        flag_wait(g_sh, 1, 1, 3000);
        flag_wait(g_sh, 2, 1, 3000);
        th_sleep_ms(30); /* B is asleep in recv */
        t_kill = ipc_time_now();
        kill(a, SIGKILL);
        CHECK_EQ(th_join(a, JOIN_MS), 128 + SIGKILL);
        dl = ipc_deadline_make(7000 * MS);
        while (!flag_get(g_sh, 3) && ipc_deadline_left(dl) > 0)
            th_sleep_ms(1);
        if (g_sh->pid[0] > 0) kill(g_sh->pid[0], SIGKILL); /* B is not our child */
        if (!flag_get(g_sh, 3))
            th_fail(__FILE__, __LINE__, "variant %d: B never returned", variant);
        if (g_sh->rc[0] != -EPIPE || g_sh->t[1] - t_kill >= 1500 * MS)
            th_fail(__FILE__, __LINE__, "variant %d: B's recv: %d (%s) %.1f ms after A died",
                    variant, g_sh->rc[0], ipc_strerror(g_sh->rc[0]), th_ms_of(g_sh->t[1] - t_kill));
        if (variant) CHECK_OK(ipc_ring_unlink(g_name));
    }
    shared_unmap(g_sh);
}

/* ---- stats ---- */

static void sleepy_consumer(void *arg) {
    ipc_ring c;
    unsigned char buf[64];
    CHECK_OK(ipc_ring_attach_fd(&c, *(int *)arg, IPC_CONSUMER));
    c.spin_ns = 1; /* sleep at once, so the producer has to wake us */
    CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, 5000 * MS), 3);
    CHECK_OK(ipc_ring_close(&c));
}

/* The counters are real: a consumer that sleeps costs the producer one FUTEX_WAKE; no
   sleep, no system call. Bad arguments are clear errors. */
TEST(ring_stats_count_futex_calls) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring_stats st;
    ipc_ring p, z;
    pid_t pid;
    int fd, i;
    CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER | IPC_CONSUMER, &o));
    CHECK_OK(ipc_ring_send(&p, "abc", 3, 0));
    CHECK_OK(ipc_ring_get_stats(&p, &st));
    CHECK_EQ(st.sleeps, 0);
    CHECK_EQ(st.wakes, 0);
    CHECK_OK(ipc_ring_close(&p));

    CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
    fd = ipc_ring_fd(&p);
    pid = th_spawn(sleepy_consumer, &fd);
    /* Wait until the consumer announces its sleep: the waiting word at offset 516. */
    for (i = 0; i < 3000 && !__atomic_load_n((uint32_t *)(void *)(p.base + 516), __ATOMIC_ACQUIRE);
         i++)
        th_sleep_ms(1);
    CHECK(i < 3000);
    CHECK_OK(ipc_ring_send(&p, "abc", 3, 0));
    CHECK_EQ(th_join(pid, JOIN_MS), 0);
    CHECK_OK(ipc_ring_get_stats(&p, &st));
    CHECK(st.wakes >= 1);
    CHECK_EQ(st.sleeps, 0);

    CHECK_ERR(ipc_ring_get_stats(NULL, &st), -EINVAL);
    CHECK_ERR(ipc_ring_get_stats(&p, NULL), -EINVAL);
    CHECK_OK(ipc_ring_close(&p));
    CHECK_ERR(ipc_ring_get_stats(&p, &st), -EBADF);
    memset(&z, 0, sizeof z);
    CHECK_ERR(ipc_ring_get_stats(&z, &st), -EBADF);
}

/* An anonymous ring cannot be truncated under its users (SIGBUS) nor sealed further;
   and an unsealed memfd with a perfect ring layout, which its sender could truncate at
   will, is refused. */
TEST(ring_anonymous_seals) {
    ipc_ring_opts o = opts_cap(4 * KiB);
    ipc_ring a, b;
    struct stat st;
    void *src, *dst;
    int fd, copy;
    CHECK_OK(ipc_ring_create(&a, NULL, IPC_PRODUCER, &o));
    fd = ipc_ring_fd(&a);
    CHECK_EQ(fstat(fd, &st), 0);
    CHECK_EQ(ftruncate(fd, 4096), -1);
    CHECK_EQ(errno, EPERM);
    CHECK_EQ(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
    CHECK_EQ(errno, EPERM);

    copy = (int)syscall(SYS_memfd_create, "copy", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHECK(copy >= 0);
    CHECK_EQ(ftruncate(copy, st.st_size), 0);
    src = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    dst = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, copy, 0);
    CHECK(src != MAP_FAILED && dst != MAP_FAILED);
    memcpy(dst, src, (size_t)st.st_size);
    CHECK_ERR(ipc_ring_attach_fd(&b, copy, IPC_CONSUMER), -EBADMSG);
    CHECK_EQ(fcntl(copy, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
    CHECK_OK(ipc_ring_attach_fd(&b, copy, IPC_CONSUMER)); /* sealed: a ring like any other */
    CHECK_OK(ipc_ring_close(&b));
    munmap(src, (size_t)st.st_size);
    munmap(dst, (size_t)st.st_size);
    close(copy);
    CHECK_OK(ipc_ring_close(&a));
}
