/* tests/test_ringpoll.c - section 6, ipc_ring_pollfd: the eventfd that puts a ring in a
   poll or epoll loop.

   The peers are real processes that attach by the ring's inherited fd; parent and
   children step each other through futex words in shared memory (struct ctl), so every
   "not readable" check is made at a moment when nothing can be ready. Messages carry
   their producer's id, a sequence number and a check word: a loss, a duplicate or a
   message out of its producer's order shows. Every wait on the doorbell is bounded
   (SAFETY_MS): one that runs out is a lost wake-up, reported as such. */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define MS        ((int64_t)1000000)
#define US        ((int64_t)1000)
#define JOIN_MS   10000
#define SAFETY_MS 2000 /* no wait on the doorbell may last longer: that is a lost wake-up */
#define KiB       ((size_t)1024)

/* The ring kinds, as opts.flags; slot kinds with 128-byte slots. */
#define K_SPSC   ((unsigned)IPC_RING_SPSC)
#define K_MPSC   ((unsigned)IPC_RING_MPSC | IPC_RING_MSG(64))
#define K_MPMC   ((unsigned)IPC_RING_MPMC | IPC_RING_MSG(64))
#define K_BC     ((unsigned)IPC_RING_BROADCAST | IPC_RING_MSG(64))
#define K_BCOVER ((unsigned)IPC_RING_BROADCAST | IPC_RING_OVERWRITE | IPC_RING_MSG(64))
#define KIND(f)  ((f)&0xffu)

/* ---- helpers ---- */

/* What the parent and its children share (MAP_SHARED before fork). The words are futexes. */
typedef struct ctl {
    uint32_t go;    /* parent -> children: the step released */
    uint32_t ready; /* children -> parent: attached / step done */
    uint32_t stop;  /* parent -> children: finish now */
    uint32_t pad;
    int64_t when;  /* a child's timestamp (ipc_time_now: one clock for every process) */
    uint64_t sent; /* messages a child committed */
    uint64_t got;  /* messages a child received */
} ctl;

/* A child's work. */
typedef struct job {
    ctl *c;
    int fd; /* the ring's fd, inherited over fork */
    uint32_t id;
    int n;
    uint64_t seed;
    int64_t delay_us; /* child_taker: pause before each take */
} job;

/* A message: producer id, sequence number, and a word derived from both. */
typedef struct pmsg {
    uint32_t id, seq, check;
} pmsg;

static uint32_t check_of(uint32_t id, uint32_t seq) {
    uint32_t x = id * 2654435761u ^ seq * 40503u ^ 0x5bd1e995u;
    x ^= x >> 15;
    return x * 2246822519u;
}

static ipc_ring_opts ropts(unsigned flags, size_t cap) {
    ipc_ring_opts o;
    memset(&o, 0, sizeof o);
    o.flags = flags;
    o.capacity = cap;
    return o;
}

static ctl *ctl_map(int n) {
    return (ctl *)th_shared_map(sizeof(ctl) * (size_t)n);
}

static void post(uint32_t *w, uint32_t v) {
    __atomic_store_n(w, v, __ATOMIC_SEQ_CST);
    ipc_futex_wake(w, INT_MAX);
}

/* One more child arrived. */
static void arrive(uint32_t *w) {
    __atomic_fetch_add(w, 1u, __ATOMIC_SEQ_CST);
    ipc_futex_wake(w, INT_MAX);
}

static uint32_t peek_word(uint32_t *w) {
    return __atomic_load_n(w, __ATOMIC_SEQ_CST);
}

/* Wait (bounded) until *w >= v. */
static void await_word(uint32_t *w, uint32_t v, int line) {
    int64_t dl = ipc_deadline_make(JOIN_MS * MS);
    for (;;) {
        uint32_t cur = peek_word(w);
        if (cur >= v) return;
        if (ipc_deadline_left(dl) == 0)
            th_fail(__FILE__, line, "waited %d ms for a step: word is %u, want %u", JOIN_MS,
                    (unsigned)cur, (unsigned)v);
        ipc_futex_wait_until(w, cur, dl);
    }
}

/* A random pause: none, a short spin, a yield or a short sleep. */
static void gap(uint64_t *s) {
    uint64_t x = th_rnd64(s);
    switch (x & 3) {
    case 0: break;
    case 1: th_spin_us((int64_t)(x >> 8) % 20); break;
    case 2: sched_yield(); break;
    default: th_sleep_us((int64_t)(x >> 8) % 300); break;
    }
}

static pid_t spawn(void (*fn)(void *), void *arg) {
    pid_t pid = th_spawn(fn, arg);
    CHECK(pid > 0);
    return pid;
}

static void join_ok(pid_t pid) {
    int code = th_join(pid, JOIN_MS);
    if (code == 77) th_skip("a child skipped");
    if (code != 0) th_fail(__FILE__, __LINE__, "child %ld exited with %d", (long)pid, code);
}

/* Kill a child that is parked and reap it. */
static void kill_child(pid_t pid) {
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_EQ(th_join(pid, JOIN_MS), 128 + SIGKILL);
}

/* Park for good (until SIGKILL), bounded so that a stray child cannot outlive the test. */
static void park(void) {
    int i;
    for (i = 0; i < 30000; i++)
        th_sleep_us(1000);
    _exit(3);
}

/* Is fd readable now (ms 0) or within ms? Signals do not cut the wait short. */
static int readable(int fd, int ms) {
    int64_t dl = ipc_deadline_make((int64_t)ms * MS);
    for (;;) {
        struct pollfd p;
        int n;
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        n = poll(&p, 1, ms == 0 ? 0 : ipc_deadline_ms(dl));
        if (n > 0) {
            CHECK(!(p.revents & (POLLERR | POLLNVAL)));
            return (p.revents & POLLIN) != 0;
        }
        if (n == 0) return 0;
        CHECK_EQ(errno, EINTR);
    }
}

static int ep_new(void) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    return ep;
}

static void ep_add(int ep, int fd, uint32_t tag) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u32 = tag;
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
}

/* epoll_wait for at most ms (EINTR retried within the same deadline): the number of
   events, 0 when the time ran out. */
static int ep_wait(int ep, struct epoll_event *ev, int max, int ms) {
    int64_t dl = ipc_deadline_make((int64_t)ms * MS);
    for (;;) {
        int n = epoll_wait(ep, ev, max, ipc_deadline_ms(dl));
        if (n >= 0) return n;
        CHECK_EQ(errno, EINTR);
    }
}

/* One event, within SAFETY_MS: anything else is a lost wake-up. */
static void ep_must(int ep, int line, const char *what) {
    struct epoll_event ev[4];
    int n = ep_wait(ep, ev, 4, SAFETY_MS);
    if (n <= 0) th_fail(__FILE__, line, "lost wake-up: %s: nothing for %d ms", what, SAFETY_MS);
}

/* The doorbell of r in *fd, and a new epoll set that holds it (returned). */
static int doorbell_ep(ipc_ring *r, int *fd) {
    int ep;
    *fd = ipc_ring_pollfd(r);
    CHECK(*fd >= 0);
    ep = ep_new();
    ep_add(ep, *fd, 0);
    return ep;
}

/* A child's job on ring r (attached by its fd): step words c, producer id, count n. */
static job job_of(ctl *c, const ipc_ring *r, uint32_t id, int n) {
    job j;
    memset(&j, 0, sizeof j);
    j.c = c;
    j.fd = ipc_ring_fd(r);
    j.id = id;
    j.n = n;
    return j;
}

/* Fail (at line) unless `what` came within 1 s of t0, when `event` happened. */
static void within_1s(int64_t t0, const char *what, const char *event, int line) {
    int64_t el = ipc_time_now() - t0;
    if (el >= 1000 * MS)
        th_fail(__FILE__, line, "%s %.0f ms after %s", what, (double)el / 1e6, event);
}

static void send_msg(ipc_ring *r, uint32_t id, uint32_t seq, size_t len, int64_t timeout) {
    unsigned char buf[2048];
    pmsg m;
    m.id = id;
    m.seq = seq;
    m.check = check_of(id, seq);
    if (len < sizeof m) len = sizeof m;
    CHECK(len <= sizeof buf);
    memset(buf, (int)(seq & 0xff), len);
    memcpy(buf, &m, sizeof m);
    CHECK_OK(ipc_ring_send(r, buf, len, timeout));
}

static int try_send(ipc_ring *r, uint32_t id, uint32_t seq, size_t len) {
    unsigned char buf[2048];
    pmsg m;
    m.id = id;
    m.seq = seq;
    m.check = check_of(id, seq);
    if (len < sizeof m) len = sizeof m;
    memset(buf, (int)(seq & 0xff), len);
    memcpy(buf, &m, sizeof m);
    return ipc_ring_send(r, buf, len, 0);
}

/* A received message must be whole: returns it. */
static pmsg parse(const unsigned char *buf, ssize_t n, int line) {
    pmsg m;
    if (n < (ssize_t)sizeof m) th_fail(__FILE__, line, "message of %ld bytes", (long)n);
    memcpy(&m, buf, sizeof m);
    if (m.check != check_of(m.id, m.seq))
        th_fail(__FILE__, line, "torn message: id %u seq %u", (unsigned)m.id, (unsigned)m.seq);
    return m;
}

/* Threads of this process, from /proc/self/task. */
static int thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    CHECK(d != NULL);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The thread count comes back to want within 1 s (a joined thread leaves /proc a moment
   after pthread_join returns). */
static void threads_back_to(int want, int line) {
    int64_t dl = ipc_deadline_make(1000 * MS);
    int n;
    while ((n = thread_count()) != want) {
        if (ipc_deadline_left(dl) == 0)
            th_fail(__FILE__, line, "%d threads, want %d: the poll thread was left behind", n,
                    want);
        th_sleep_ms(1);
    }
}

static int fd_open(int fd) {
    return fcntl(fd, F_GETFD) >= 0;
}

/* ---- children ---- */

/* Producer of the round tests: one message per round, released by ctl.go, after a random
   pause; then close. */
static void child_rounds(void *arg) {
    job *j = (job *)arg;
    ipc_ring r;
    uint64_t s = j->seed;
    uint32_t i;
    CHECK_OK(ipc_ring_attach_fd(&r, j->fd, IPC_PRODUCER));
    post(&j->c->ready, 1);
    for (i = 1; i <= (uint32_t)j->n; i++) {
        await_word(&j->c->go, i, __LINE__);
        gap(&s);
        send_msg(&r, j->id, i, sizeof(pmsg), IPC_FOREVER);
    }
    CHECK_OK(ipc_ring_close(&r));
}

/* Consumer of the producer tests: one message per step (ctl.go 1..n), acknowledged in
   ctl.ready; then (ctl.go n + 1) everything up to -EPIPE. The count goes to ctl.got. */
static void child_taker(void *arg) {
    job *j = (job *)arg;
    ipc_ring r;
    unsigned char buf[2048];
    uint32_t k;
    uint64_t got = 0;
    ssize_t n;
    CHECK_OK(ipc_ring_attach_fd(&r, j->fd, IPC_CONSUMER));
    post(&j->c->ready, 1);
    for (k = 1; k <= (uint32_t)j->n; k++) {
        await_word(&j->c->go, k, __LINE__);
        if (j->delay_us) th_sleep_us(j->delay_us);
        n = ipc_ring_recv(&r, buf, sizeof buf, 2000 * MS);
        CHECK(n > 0);
        parse(buf, n, __LINE__);
        got++;
        post(&j->c->ready, k + 1);
    }
    await_word(&j->c->go, k, __LINE__);
    while ((n = ipc_ring_recv(&r, buf, sizeof buf, 2000 * MS)) > 0) {
        parse(buf, n, __LINE__);
        got++;
    }
    CHECK_ERR(n, -EPIPE);
    __atomic_store_n(&j->c->got, got, __ATOMIC_SEQ_CST);
    CHECK_OK(ipc_ring_close(&r));
}

/* Sends j->n messages, posts ready = 1, then (ctl.go 1) closes, or parks to be killed
   (ctl.stop set before go). */
static void child_send_then_end(void *arg) {
    job *j = (job *)arg;
    ipc_ring r;
    uint32_t i;
    CHECK_OK(ipc_ring_attach_fd(&r, j->fd, IPC_PRODUCER));
    for (i = 1; i <= (uint32_t)j->n; i++)
        send_msg(&r, j->id, i, sizeof(pmsg), IPC_FOREVER);
    __atomic_store_n(&j->c->sent, (uint64_t)j->n, __ATOMIC_SEQ_CST);
    post(&j->c->ready, 1);
    await_word(&j->c->go, 1, __LINE__);
    if (peek_word(&j->c->stop)) park();
    __atomic_store_n(&j->c->when, ipc_time_now(), __ATOMIC_SEQ_CST);
    CHECK_OK(ipc_ring_close(&r));
}

/* Attaches with role j->id, posts ready, then parks (to be killed) or closes on go. */
static void child_attach_park(void *arg) {
    job *j = (job *)arg;
    ipc_ring r;
    CHECK_OK(ipc_ring_attach_fd(&r, j->fd, (int)j->id));
    post(&j->c->ready, 1);
    await_word(&j->c->go, 1, __LINE__);
    if (peek_word(&j->c->stop)) park();
    CHECK_OK(ipc_ring_close(&r));
}

/* ---- 1. consumer readiness, every kind ---- */

/* Strict rounds first: the parent waits on the doorbell before every receive, so after
   the drain nothing can be pending and the fd must not be readable. Then rounds where the
   send races the parent's drain and re-arm: only that nothing is lost or stuck counts. */
static void consumer_rounds(unsigned flags) {
    enum { STRICT = 40, RACY = TH_SLOW ? 100 : 200 };
    ctl *c = ctl_map(1);
    ipc_ring r;
    ipc_ring_opts o = ropts(flags, 64 * KiB);
    unsigned char buf[256];
    uint64_t s = 0x1234 + flags;
    job j;
    pid_t pid;
    int fd, ep;
    uint32_t i;
    ssize_t n;

    CHECK_OK(ipc_ring_create(&r, NULL, IPC_CONSUMER, &o));
    fd = ipc_ring_pollfd(&r);
    CHECK(fd >= 0);
    CHECK(readable(fd, 0)); /* documented: readable at first, the first call decides */
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
    CHECK(!readable(fd, 100));
    ep = ep_new();
    ep_add(ep, fd, 0);

    j = job_of(c, &r, 7, STRICT + RACY);
    j.seed = 99 + flags;
    pid = spawn(child_rounds, &j);
    await_word(&c->ready, 1, __LINE__);
    CHECK(!readable(fd, 20)); /* a producer attaching is not a message */

    for (i = 1; i <= STRICT; i++) {
        int64_t t0 = ipc_time_now();
        struct epoll_event ev[2];
        pmsg m;
        post(&c->go, i);
        if (ep_wait(ep, ev, 2, 1000) != 1)
            th_fail(__FILE__, __LINE__, "round %u: not readable 1 s after the release",
                    (unsigned)i);
        CHECK(ipc_time_now() - t0 < 1000 * MS);
        n = ipc_ring_recv(&r, buf, sizeof buf, 0);
        CHECK_EQ(n, sizeof(pmsg));
        m = parse(buf, n, __LINE__);
        CHECK_EQ(m.id, 7);
        CHECK_EQ(m.seq, i);
        CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
        if (readable(fd, 0))
            th_fail(__FILE__, __LINE__, "round %u: readable after the drain to -EAGAIN",
                    (unsigned)i);
    }
    for (; i <= STRICT + RACY; i++) {
        post(&c->go, i);
        gap(&s);
        for (;;) {
            n = ipc_ring_recv(&r, buf, sizeof buf, 0);
            if (n > 0) break;
            CHECK_ERR(n, -EAGAIN);
            ep_must(ep, __LINE__, "waiting for a round's message");
        }
        CHECK_EQ(parse(buf, n, __LINE__).seq, i);
    }
    /* the producer closes: readable, then -EPIPE, and it stays readable */
    for (;;) {
        n = ipc_ring_recv(&r, buf, sizeof buf, 0);
        if (n != -EAGAIN) break;
        ep_must(ep, __LINE__, "waiting for the producer's close");
    }
    CHECK_ERR(n, -EPIPE);
    CHECK(readable(fd, 0));
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EPIPE);
    join_ok(pid);
    close(ep);
    CHECK_OK(ipc_ring_close(&r));
}

TEST(ringpoll_consumer_spsc) {
    consumer_rounds(K_SPSC);
}

TEST(ringpoll_consumer_mpsc) {
    consumer_rounds(K_MPSC);
}

TEST(ringpoll_consumer_mpmc) {
    consumer_rounds(K_MPMC);
}

TEST(ringpoll_consumer_broadcast) {
    consumer_rounds(K_BC);
}

TEST(ringpoll_consumer_broadcast_overwrite) {
    consumer_rounds(K_BCOVER);
}

/* A lapped reader of an overwrite ring is woken and told: -EOVERFLOW once, then the
   newest messages in order, then -EPIPE. */
TEST(ringpoll_consumer_broadcast_lapped) {
    ctl *c = ctl_map(1);
    ipc_ring r;
    ipc_ring_opts o = ropts(K_BCOVER, 4 * KiB); /* 32 slots */
    unsigned char buf[256];
    job j;
    pid_t pid;
    int fd, ep, overflows = 0;
    uint32_t last = 0, count = 0;
    ssize_t n;

    CHECK_OK(ipc_ring_create(&r, NULL, IPC_CONSUMER, &o));
    fd = ipc_ring_pollfd(&r);
    CHECK(fd >= 0);
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
    ep = ep_new();
    ep_add(ep, fd, 0);
    j = job_of(c, &r, 3, 100); /* three laps and more */
    pid = spawn(child_send_then_end, &j);
    await_word(&c->ready, 1, __LINE__);
    CHECK(readable(fd, 1000));
    for (;;) {
        n = ipc_ring_recv(&r, buf, sizeof buf, 0);
        if (n == -EOVERFLOW) {
            overflows++;
            continue;
        }
        if (n > 0) {
            pmsg m = parse(buf, n, __LINE__);
            CHECK_EQ(overflows, 1); /* told before the first message */
            if (count) CHECK_EQ(m.seq, last + 1);
            last = m.seq;
            count++;
            continue;
        }
        if (n == -EAGAIN) {
            if (peek_word(&c->go) == 0) post(&c->go, 1); /* all read: now close */
            ep_must(ep, __LINE__, "a lapped reader waiting for the close");
            continue;
        }
        break;
    }
    CHECK_ERR(n, -EPIPE);
    CHECK_EQ(overflows, 1);
    CHECK_EQ(last, 100);
    CHECK(count < 100 && count >= 16);
    join_ok(pid);
    close(ep);
    CHECK_OK(ipc_ring_close(&r));
}

/* ---- 2. producer readiness ---- */

/* Fill the ring with len-byte messages to -EAGAIN; the fd must not be readable. Each step
   a consumer in another process takes one: the fd becomes readable, one send goes
   through, the next is -EAGAIN and the fd is quiet again. */
static void producer_steps(unsigned flags, size_t cap, size_t len) {
    enum { STEPS = 20 };
    ctl *c = ctl_map(1);
    ipc_ring r;
    ipc_ring_opts o = ropts(flags, cap);
    job j;
    pid_t pid;
    int fd, ep, rc;
    uint32_t k, seq = 0;

    CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o));
    fd = ipc_ring_pollfd(&r);
    CHECK(fd >= 0);
    CHECK(readable(fd, 0));
    ep = ep_new();
    ep_add(ep, fd, 0);
    j = job_of(c, &r, 0, STEPS);
    pid = spawn(child_taker, &j);
    await_word(&c->ready, 1, __LINE__); /* attached: a broadcast producer now waits for it */

    while ((rc = try_send(&r, 1, ++seq, len)) == 0) {
    }
    CHECK_ERR(rc, -EAGAIN);
    seq--;
    CHECK(seq > 1);
    if (readable(fd, 50))
        th_fail(__FILE__, __LINE__,
                "full ring (%u messages of %zu bytes, send(0) -EAGAIN), yet the fd is readable",
                (unsigned)seq, len);
    for (k = 1; k <= STEPS; k++) {
        struct epoll_event ev[2];
        post(&c->go, k);
        if (ep_wait(ep, ev, 2, 1000) != 1)
            th_fail(__FILE__, __LINE__, "step %u: not readable 1 s after the consumer took one",
                    (unsigned)k);
        await_word(&c->ready, k + 1, __LINE__);
        CHECK_OK(try_send(&r, 1, ++seq, len));
        CHECK_ERR(try_send(&r, 1, seq + 1, len), -EAGAIN);
        if (readable(fd, 0))
            th_fail(__FILE__, __LINE__, "step %u: readable after send(0) said -EAGAIN",
                    (unsigned)k);
    }
    post(&c->go, STEPS + 1);
    CHECK_OK(ipc_ring_close(&r));
    join_ok(pid);
    CHECK_EQ(c->got, seq);
    close(ep);
}

TEST(ringpoll_producer_spsc) {
    producer_steps(K_SPSC, 4 * KiB, 12); /* 24-byte records: 16 bytes stay, too few */
}

TEST(ringpoll_producer_mpsc) {
    producer_steps(K_MPSC, 4 * KiB, 64);
}

TEST(ringpoll_producer_mpmc) {
    producer_steps(K_MPMC, 4 * KiB, 64);
}

TEST(ringpoll_producer_broadcast) {
    producer_steps(K_BC, 4 * KiB, 64);
}

/* Messages that do not divide the capacity: after -EAGAIN some room is left, too little
   for the message. A send of that size would block, so the fd must not say readable (an
   epoll loop would spin: readable, -EAGAIN, readable ...). */
TEST(ringpoll_producer_spsc_large) {
    producer_steps(K_SPSC, 4 * KiB, 1000);
}

/* ---- 3. peer gone ---- */

/* Wait on the doorbell, draining, until the handle's call says -EPIPE: the messages
   received on the way (whole, from producer id, in order after *last). */
static uint32_t drain_to_epipe(ipc_ring *r, int ep, uint32_t id, uint32_t *last) {
    unsigned char buf[256];
    uint32_t got = 0;
    for (;;) {
        ssize_t n = ipc_ring_recv(r, buf, sizeof buf, 0);
        if (n > 0) {
            pmsg m = parse(buf, n, __LINE__);
            CHECK_EQ(m.id, id);
            CHECK_EQ(m.seq, *last + 1);
            *last = m.seq;
            got++;
            continue;
        }
        if (n == -EPIPE) return got;
        CHECK_ERR(n, -EAGAIN);
        ep_must(ep, __LINE__, "waiting for the end of the ring");
    }
}

/* The producer sends 3 and closes (or, kill, parks and is SIGKILLed) while the consumer
   waits on its doorbell: readable, the 3 messages, then -EPIPE within 1 s. */
static void producer_gone(unsigned flags, int kill_it) {
    ctl *c = ctl_map(1);
    ipc_ring r;
    ipc_ring_opts o = ropts(flags, 64 * KiB);
    unsigned char buf[256];
    job j;
    pid_t pid;
    int fd, ep;
    uint32_t last = 0;
    int64_t t0;

    CHECK_OK(ipc_ring_create(&r, NULL, IPC_CONSUMER, &o));
    ep = doorbell_ep(&r, &fd);
    j = job_of(c, &r, 5, 3);
    c->stop = (uint32_t)kill_it;
    /* take the first message through the doorbell, leave two queued for after the end */
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
    pid = spawn(child_send_then_end, &j);
    await_word(&c->ready, 1, __LINE__);
    ep_must(ep, __LINE__, "three messages sent");
    CHECK_EQ(parse(buf, ipc_ring_recv(&r, buf, sizeof buf, 0), __LINE__).seq, 1);
    last = 1;
    t0 = ipc_time_now();
    if (kill_it) {
        kill_child(pid);
    } else {
        post(&c->go, 1);
        join_ok(pid);
        t0 = c->when;
    }
    CHECK_EQ(drain_to_epipe(&r, ep, 5, &last), 2);
    within_1s(t0, "-EPIPE", kill_it ? "the producer was killed" : "the producer closed", __LINE__);
    CHECK(readable(fd, 0)); /* -EPIPE does not re-arm: the fd stays readable */
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EPIPE);
    close(ep);
    CHECK_OK(ipc_ring_close(&r));
}

TEST(ringpoll_eof_close_spsc) {
    producer_gone(K_SPSC, 0);
}

TEST(ringpoll_eof_close_mpsc) {
    producer_gone(K_MPSC, 0);
}

TEST(ringpoll_eof_close_mpmc) {
    producer_gone(K_MPMC, 0);
}

TEST(ringpoll_eof_close_broadcast) {
    producer_gone(K_BC, 0);
}

TEST(ringpoll_eof_close_broadcast_overwrite) {
    producer_gone(K_BCOVER, 0);
}

TEST(ringpoll_eof_kill_spsc) {
    producer_gone(K_SPSC, 1);
}

TEST(ringpoll_eof_kill_mpsc) {
    producer_gone(K_MPSC, 1);
}

TEST(ringpoll_eof_kill_mpmc) {
    producer_gone(K_MPMC, 1);
}

TEST(ringpoll_eof_kill_broadcast) {
    producer_gone(K_BC, 1);
}

/* The producer attaches and is SIGKILLed without a message while the consumer waits on
   its doorbell, with no call of its own: the doorbell alone must notice, within 1 s. */
static void producer_killed_idle(unsigned flags) {
    ctl *c = ctl_map(1);
    ipc_ring r;
    ipc_ring_opts o = ropts(flags, 64 * KiB);
    unsigned char buf[256];
    job j;
    pid_t pid;
    int fd, ep;
    uint32_t last = 0;
    int64_t t0;

    CHECK_OK(ipc_ring_create(&r, NULL, IPC_CONSUMER, &o));
    ep = doorbell_ep(&r, &fd);
    j = job_of(c, &r, IPC_PRODUCER, 0);
    c->stop = 1;
    pid = spawn(child_attach_park, &j);
    await_word(&c->ready, 1, __LINE__);
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
    CHECK(!readable(fd, 20));
    t0 = ipc_time_now();
    kill_child(pid);
    ep_must(ep, __LINE__, "a producer killed while the consumer waits");
    CHECK_EQ(drain_to_epipe(&r, ep, 0, &last), 0);
    within_1s(t0, "-EPIPE", "the producer was killed", __LINE__);
    close(ep);
    CHECK_OK(ipc_ring_close(&r));
}

TEST(ringpoll_eof_kill_idle_spsc) {
    producer_killed_idle(K_SPSC);
}

TEST(ringpoll_eof_kill_idle_mpsc) {
    producer_killed_idle(K_MPSC);
}

TEST(ringpoll_eof_kill_idle_mpmc) {
    producer_killed_idle(K_MPMC);
}

TEST(ringpoll_eof_kill_idle_broadcast) {
    producer_killed_idle(K_BC);
}

/* MPMC with two producers: one closing is not the end (the fd stays quiet); the last one
   dying is: readable and -EPIPE within 1 s. */
TEST(ringpoll_eof_mpmc_last_producer_killed) {
    ctl *c = ctl_map(2);
    ipc_ring r;
    ipc_ring_opts o = ropts(K_MPMC, 64 * KiB);
    unsigned char buf[256];
    job j[2];
    pid_t pid[2];
    int fd, ep, k;
    int64_t t0;

    CHECK_OK(ipc_ring_create(&r, NULL, IPC_CONSUMER, &o));
    ep = doorbell_ep(&r, &fd);
    for (k = 0; k < 2; k++) {
        memset(&j[k], 0, sizeof j[k]);
        j[k].c = &c[k];
        j[k].fd = ipc_ring_fd(&r);
        j[k].id = IPC_PRODUCER;
        c[k].stop = (uint32_t)k; /* the second parks to be killed */
        pid[k] = spawn(child_attach_park, &j[k]);
        await_word(&c[k].ready, 1, __LINE__);
    }
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
    post(&c[0].go, 1); /* the first closes */
    join_ok(pid[0]);
    if (readable(fd, 150))
        th_fail(__FILE__, __LINE__, "readable after one of two producers closed");
    t0 = ipc_time_now();
    kill_child(pid[1]);
    ep_must(ep, __LINE__, "the last producer killed"); /* the doorbell must see it itself */
    {
        uint32_t last = 0;
        CHECK_EQ(drain_to_epipe(&r, ep, 0, &last), 0);
    }
    within_1s(t0, "-EPIPE", "the last producer was killed", __LINE__);
    close(ep);
    CHECK_OK(ipc_ring_close(&r));
}

/* A producer on a full ring whose consumer closes, or is SIGKILLed: its fd becomes
   readable and send says -EPIPE, within 1 s. */
static void consumer_gone(unsigned flags, int kill_it) {
    ctl *c = ctl_map(1);
    ipc_ring r;
    ipc_ring_opts o = ropts(flags, 4 * KiB);
    job j;
    pid_t pid;
    int fd, ep, rc;
    uint32_t seq = 0;
    int64_t t0;

    CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o));
    ep = doorbell_ep(&r, &fd);
    j = job_of(c, &r, IPC_CONSUMER, 0);
    c->stop = (uint32_t)kill_it;
    pid = spawn(child_attach_park, &j);
    await_word(&c->ready, 1, __LINE__);
    while ((rc = try_send(&r, 1, ++seq, 12)) == 0) {
    }
    CHECK_ERR(rc, -EAGAIN);
    CHECK(!readable(fd, 50));
    t0 = ipc_time_now();
    if (kill_it) {
        kill_child(pid);
    } else {
        post(&c->go, 1);
        join_ok(pid);
    }
    ep_must(ep, __LINE__, "a producer whose consumer left"); /* armed: only it can tell */
    for (;;) {
        rc = try_send(&r, 1, seq, 12);
        if (rc != -EAGAIN) break;
        ep_must(ep, __LINE__, "a producer waiting for its consumer");
    }
    CHECK_ERR(rc, -EPIPE);
    within_1s(t0, "-EPIPE", kill_it ? "the consumer was killed" : "the consumer closed", __LINE__);
    CHECK(readable(fd, 0));
    close(ep);
    CHECK_OK(ipc_ring_close(&r));
}

TEST(ringpoll_epipe_consumer_closed_spsc) {
    consumer_gone(K_SPSC, 0);
}

TEST(ringpoll_epipe_consumer_killed_spsc) {
    consumer_gone(K_SPSC, 1);
}

TEST(ringpoll_epipe_consumer_killed_mpsc) {
    consumer_gone(K_MPSC, 1);
}

/* Holds a reservation (posts ready) until SIGKILL: a hole. */
static void child_reserve_park(void *arg) {
    job *j = (job *)arg;
    ipc_ring r;
    void *p;
    CHECK_OK(ipc_ring_attach_fd(&r, j->fd, IPC_PRODUCER));
    CHECK_OK(ipc_ring_reserve(&r, sizeof(pmsg), &p, IPC_FOREVER));
    memset(p, 0xee, sizeof(pmsg));
    post(&j->c->ready, 1);
    park();
}

/* Sends a message every 1 ms from go until stop (at most j->n), stamps the first send
   in ctl.when and the count in ctl.sent, then closes. */
static void child_steady(void *arg) {
    job *j = (job *)arg;
    ipc_ring r;
    uint32_t i;
    CHECK_OK(ipc_ring_attach_fd(&r, j->fd, IPC_PRODUCER));
    post(&j->c->ready, 1);
    await_word(&j->c->go, 1, __LINE__);
    __atomic_store_n(&j->c->when, ipc_time_now(), __ATOMIC_SEQ_CST);
    for (i = 1; i <= (uint32_t)j->n && !peek_word(&j->c->stop); i++) {
        send_msg(&r, j->id, i, sizeof(pmsg), IPC_FOREVER);
        __atomic_store_n(&j->c->sent, (uint64_t)i, __ATOMIC_SEQ_CST);
        th_sleep_us(1000);
    }
    CHECK_OK(ipc_ring_close(&r));
}

/* A producer killed between reserve and commit leaves a hole at the head while another
   keeps sending: the epoll loop must get past it (documented: about 0.2 s) while the
   messages keep coming, not only once they stop, and receive every committed one. */
static void hole_passed(unsigned flags) {
    enum { STEADY = 1500 }; /* 1.5 s of sending at most; the ring holds them all */
    ctl *c = ctl_map(2);
    ipc_ring r;
    ipc_ring_opts o = ropts(flags, 64 * KiB); /* 2048 slots of 32 bytes */
    unsigned char buf[64];
    ipc_ring_stats st;
    job j[2];
    pid_t pid[2];
    int fd, ep;
    uint32_t last = 0;
    int64_t first = 0;

    CHECK_OK(ipc_ring_create(&r, NULL, IPC_CONSUMER, &o));
    ep = doorbell_ep(&r, &fd);
    memset(j, 0, sizeof j);
    j[0].c = &c[0];
    j[0].fd = j[1].fd = ipc_ring_fd(&r);
    j[1].c = &c[1];
    j[1].id = 2;
    j[1].n = STEADY;
    pid[1] = spawn(child_steady, &j[1]);
    await_word(&c[1].ready, 1, __LINE__);
    pid[0] = spawn(child_reserve_park, &j[0]);
    await_word(&c[0].ready, 1, __LINE__);
    /* armed while the reserver lives (a call now would pass the hole at once) */
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
    kill_child(pid[0]); /* the slot at the head is now a hole; only the doorbell watches */
    post(&c[1].go, 1);
    /* the doorbell's protocol: wait first (a call of ours would pass the hole itself),
       then drain to -EAGAIN */
    for (;;) {
        ssize_t n;
        ep_must(ep, __LINE__, "a consumer behind a hole");
        while ((n = ipc_ring_recv(&r, buf, sizeof buf, 0)) > 0) {
            pmsg m = parse(buf, n, __LINE__);
            CHECK_EQ(m.id, 2);
            CHECK_EQ(m.seq, last + 1);
            last = m.seq;
            if (!first) { /* the producer stamped its first send before making it */
                first = ipc_time_now();
                if (first - c[1].when >= 1000 * MS)
                    th_fail(__FILE__, __LINE__,
                            "the hole kept the doorbell quiet for %.0f ms while another "
                            "producer kept sending (%u messages committed behind it)",
                            (double)(first - c[1].when) / 1e6,
                            (unsigned)__atomic_load_n(&c[1].sent, __ATOMIC_SEQ_CST));
            }
            if (last == 50) post(&c[1].stop, 1);
        }
        if (n == -EPIPE) break;
        CHECK_ERR(n, -EAGAIN);
    }
    join_ok(pid[1]);
    CHECK_EQ(last, c[1].sent);
    CHECK_OK(ipc_ring_get_stats(&r, &st));
    CHECK(st.lost >= 1);
    close(ep);
    CHECK_OK(ipc_ring_close(&r));
}

TEST(ringpoll_hole_passed_mpmc) {
    hole_passed((unsigned)IPC_RING_MPMC | IPC_RING_MSG(16));
}

TEST(ringpoll_hole_passed_mpsc) {
    hole_passed((unsigned)IPC_RING_MPSC | IPC_RING_MSG(16));
}

/* Reserves, posts ready, holds the reservation until ctl.go, then commits it and closes. */
static void child_reserve_hold(void *arg) {
    job *j = (job *)arg;
    ipc_ring r;
    void *p;
    pmsg m;
    CHECK_OK(ipc_ring_attach_fd(&r, j->fd, IPC_PRODUCER));
    CHECK_OK(ipc_ring_reserve(&r, sizeof m, &p, IPC_FOREVER));
    post(&j->c->ready, 1);
    await_word(&j->c->go, 1, __LINE__);
    m.id = j->id;
    m.seq = 1;
    m.check = check_of(m.id, m.seq);
    memcpy(p, &m, sizeof m);
    CHECK_OK(ipc_ring_commit(&r, sizeof m));
    await_word(&j->c->go, 2, __LINE__);
    CHECK_OK(ipc_ring_close(&r));
}

/* A live producer that takes its time between reserve and commit is no hole: nothing can
   be received meanwhile, so the doorbell stays quiet (counted: every time it says readable
   and the call then says -EAGAIN), and rings for the commit. */
static void reservation_held(unsigned flags) {
    ctl *c = ctl_map(1);
    ipc_ring r;
    ipc_ring_opts o = ropts(flags, 64 * KiB);
    unsigned char buf[256];
    job j;
    pid_t pid;
    int fd, ep, idle = 0;
    int64_t until;

    CHECK_OK(ipc_ring_create(&r, NULL, IPC_CONSUMER, &o));
    ep = doorbell_ep(&r, &fd);
    j = job_of(c, &r, 6, 0);
    pid = spawn(child_reserve_hold, &j);
    await_word(&c->ready, 1, __LINE__);
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
    until = ipc_time_now() + 300 * MS;
    while (ipc_time_now() < until) {
        int left = (int)((until - ipc_time_now()) / MS) + 1;
        struct epoll_event ev[2];
        if (ep_wait(ep, ev, 2, left) == 0) break;
        CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
        idle++;
    }
    if (idle)
        th_fail(__FILE__, __LINE__,
                "the doorbell rang %d times in 300 ms while a live producer held a "
                "reservation (nothing to receive)",
                idle);
    post(&c->go, 1);
    ep_must(ep, __LINE__, "the commit of a held reservation");
    CHECK_EQ(parse(buf, ipc_ring_recv(&r, buf, sizeof buf, 0), __LINE__).seq, 1);
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
    post(&c->go, 2);
    join_ok(pid);
    close(ep);
    CHECK_OK(ipc_ring_close(&r));
}

TEST(ringpoll_reservation_held_quiet_mpmc) {
    reservation_held(K_MPMC);
}

TEST(ringpoll_reservation_held_quiet_mpsc) {
    reservation_held(K_MPSC);
}

/* A lossless broadcast producer held up by a reader: the reader is SIGKILLed, so it is
   dropped and the producer may go on. Its doorbell rings within 1 s and send(0) works. */
TEST(ringpoll_producer_broadcast_reader_killed) {
    ctl *c = ctl_map(1);
    ipc_ring r;
    ipc_ring_opts o = ropts(K_BC, 4 * KiB);
    job j;
    pid_t pid;
    int fd, ep, rc;
    uint32_t seq = 0;
    int64_t t0;

    CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o));
    ep = doorbell_ep(&r, &fd);
    j = job_of(c, &r, IPC_CONSUMER, 0);
    c->stop = 1;
    pid = spawn(child_attach_park, &j);
    await_word(&c->ready, 1, __LINE__);
    while ((rc = try_send(&r, 1, ++seq, 12)) == 0) {
    }
    CHECK_ERR(rc, -EAGAIN);
    CHECK(!readable(fd, 50));
    t0 = ipc_time_now();
    kill_child(pid);
    ep_must(ep, __LINE__, "a broadcast producer whose only reader died");
    for (;;) {
        rc = try_send(&r, 1, seq, 12);
        if (rc != -EAGAIN) break;
        ep_must(ep, __LINE__, "a broadcast producer whose only reader died");
    }
    CHECK_OK(rc);
    within_1s(t0, "room", "the reader was killed", __LINE__);
    close(ep);
    CHECK_OK(ipc_ring_close(&r));
}

/* ---- 4. several rings and a socket in one epoll loop, under a signal storm ---- */

/* Sends j->n numbered messages in bursts with pauses (the rings run dry), then closes. */
static void child_bursts(void *arg) {
    job *j = (job *)arg;
    ipc_ring r;
    uint64_t s = j->seed;
    uint32_t i;
    CHECK_OK(ipc_ring_attach_fd(&r, j->fd, IPC_PRODUCER));
    arrive(&j->c->ready);
    await_word(&j->c->go, 1, __LINE__);
    for (i = 1; i <= (uint32_t)j->n; i++) {
        send_msg(&r, j->id, i, 12 + (size_t)(th_rnd64(&s) % 40), IPC_FOREVER);
        if (th_rnd64(&s) % 64 == 0) th_sleep_us((int64_t)(th_rnd64(&s) % 2000));
    }
    CHECK_OK(ipc_ring_close(&r));
}

static void child_socket(void *arg) {
    job *j = (job *)arg;
    uint32_t i;
    await_word(&j->c->go, 1, __LINE__);
    for (i = 1; i <= (uint32_t)j->n; i++) {
        CHECK_EQ(ipc_sock_send(j->fd, &i, sizeof i, 2000 * MS, NULL), sizeof i);
        if (i % 8 == 0) th_sleep_us(1000);
    }
    close(j->fd);
}

TEST(ringpoll_many_rings_storm) {
    enum { NR = 4, NP = 5, PER = TH_SLOW ? 800 : 4000, LINES = 200 };
    /* ring of each producer: 0 SPSC, 1 MPSC (two), 2 MPMC, 3 broadcast */
    static const int ring_of[NP] = {0, 1, 1, 2, 3};
    static const unsigned kinds[NR] = {K_SPSC, K_MPSC, K_MPMC, K_BC};
    ctl *c = ctl_map(1);
    ipc_ring r[NR];
    job j[NP + 1];
    pid_t pid[NP + 1];
    uint32_t last[NP] = {0}, lines = 0, next_line = 1;
    int ep, sv[2], k, open_rings = NR, sock_open = 1, storms;
    int64_t dl;

    for (k = 0; k < NR; k++) {
        ipc_ring_opts o = ropts(kinds[k], 8 * KiB);
        int fd;
        CHECK_OK(ipc_ring_create(&r[k], NULL, IPC_CONSUMER, &o));
        fd = ipc_ring_pollfd(&r[k]);
        CHECK(fd >= 0);
    }
    for (k = 0; k < NP; k++) {
        memset(&j[k], 0, sizeof j[k]);
        j[k].c = c;
        j[k].fd = ipc_ring_fd(&r[ring_of[k]]);
        j[k].id = (uint32_t)k;
        j[k].n = PER;
        j[k].seed = 1000u + (unsigned)k;
        pid[k] = spawn(child_bursts, &j[k]);
    }
    /* every producer attached before any sends: an MPSC ring whose only attached
       producer closed would rightly say -EPIPE before the second came */
    await_word(&c->ready, NP, __LINE__);
    CHECK_OK(ipc_sock_pair(sv, IPC_SOCK_SEQPACKET)); /* made now: no ring child holds it */
    memset(&j[NP], 0, sizeof j[NP]);
    j[NP].c = c;
    j[NP].fd = sv[1];
    j[NP].n = LINES;
    pid[NP] = spawn(child_socket, &j[NP]);
    close(sv[1]);

    ep = ep_new();
    for (k = 0; k < NR; k++)
        ep_add(ep, ipc_ring_pollfd(&r[k]), (uint32_t)k);
    ep_add(ep, sv[0], NR);
    th_storm_start();
    post(&c->go, 1);
    dl = ipc_deadline_make(20000 * MS);
    while (open_rings > 0 || sock_open) {
        struct epoll_event ev[8];
        int n = ep_wait(ep, ev, 8, SAFETY_MS), e;
        if (n == 0)
            th_fail(__FILE__, __LINE__, "lost wake-up: epoll slept %d ms (rings open %d)",
                    SAFETY_MS, open_rings);
        CHECK(ipc_deadline_left(dl) > 0);
        for (e = 0; e < n; e++) {
            uint32_t w = ev[e].data.u32;
            if (w == NR) {
                uint32_t v;
                ssize_t m;
                while ((m = ipc_sock_recv(sv[0], &v, sizeof v, 0)) == (ssize_t)sizeof v) {
                    CHECK_EQ(v, next_line);
                    next_line++;
                    lines++;
                }
                if (m == -EPIPE || m == 0) {
                    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_DEL, sv[0], NULL));
                    sock_open = 0;
                } else {
                    CHECK_ERR(m, -EAGAIN);
                }
                continue;
            }
            for (;;) { /* drain to -EAGAIN, which re-arms */
                unsigned char buf[256];
                ssize_t m = ipc_ring_recv(&r[w], buf, sizeof buf, 0);
                if (m > 0) {
                    pmsg p = parse(buf, m, __LINE__);
                    CHECK(p.id < NP && ring_of[p.id] == (int)w);
                    CHECK_EQ(p.seq, last[p.id] + 1);
                    last[p.id] = p.seq;
                    continue;
                }
                if (m == -EPIPE) {
                    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_DEL, ipc_ring_pollfd(&r[w]), NULL));
                    open_rings--;
                } else {
                    CHECK_ERR(m, -EAGAIN);
                }
                break;
            }
        }
    }
    storms = th_storm_stop();
    for (k = 0; k <= NP; k++)
        join_ok(pid[k]);
    for (k = 0; k < NP; k++)
        CHECK_EQ(last[k], PER);
    CHECK_EQ(lines, LINES);
    CHECK(storms > 0);
    for (k = 0; k < NR; k++)
        CHECK_OK(ipc_ring_close(&r[k]));
    close(ep);
    close(sv[0]);
}

/* MPMC with two consumer processes, each in its own epoll loop, and two producers: every
   message is taken exactly once (a bitmap in shared memory), and no loop sleeps past the
   safety bound while messages are left. Both doorbell threads sleep on one futex word. */
typedef struct mc_shared {
    ctl c;
    uint32_t taken[2];
    uint8_t seen[2][8192];
} mc_shared;

typedef struct mc_job {
    mc_shared *m;
    int fd;
    int who;
} mc_job;

static void child_epoll_consumer(void *arg) {
    mc_job *mj = (mc_job *)arg;
    ipc_ring r;
    unsigned char buf[256];
    int fd, ep;
    CHECK_OK(ipc_ring_attach_fd(&r, mj->fd, IPC_CONSUMER));
    ep = doorbell_ep(&r, &fd);
    arrive(&mj->m->c.ready);
    for (;;) {
        ssize_t n = ipc_ring_recv(&r, buf, sizeof buf, 0);
        if (n > 0) {
            pmsg p = parse(buf, n, __LINE__);
            CHECK(p.id < 2 && p.seq >= 1 && p.seq <= 8192);
            if (__atomic_fetch_add(&mj->m->seen[p.id][p.seq - 1], 1, __ATOMIC_SEQ_CST) != 0)
                th_fail(__FILE__, __LINE__, "message %u/%u taken twice", (unsigned)p.id,
                        (unsigned)p.seq);
            mj->m->taken[mj->who]++;
            continue;
        }
        if (n == -EPIPE) break;
        CHECK_ERR(n, -EAGAIN);
        ep_must(ep, __LINE__, "an MPMC consumer among two");
    }
    close(ep);
    CHECK_OK(ipc_ring_close(&r));
}

TEST(ringpoll_mpmc_two_consumer_loops) {
    enum { PER = TH_SLOW ? 1000 : 5000 };
    mc_shared *m = (mc_shared *)th_shared_map(sizeof(mc_shared));
    ipc_ring r;
    ipc_ring_opts o = ropts(K_MPMC, 8 * KiB);
    mc_job cj[2];
    job pj[2];
    pid_t cons[2], prod[2];
    int k, i;

    CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o)); /* holds it open; sends nothing */
    for (k = 0; k < 2; k++) {
        cj[k].m = m;
        cj[k].fd = ipc_ring_fd(&r);
        cj[k].who = k;
        cons[k] = spawn(child_epoll_consumer, &cj[k]);
    }
    await_word(&m->c.ready, 2, __LINE__);
    for (k = 0; k < 2; k++) {
        memset(&pj[k], 0, sizeof pj[k]);
        pj[k].c = &m->c;
        pj[k].fd = ipc_ring_fd(&r);
        pj[k].id = (uint32_t)k;
        pj[k].n = PER;
        pj[k].seed = 77u + (unsigned)k;
        prod[k] = spawn(child_bursts, &pj[k]);
    }
    await_word(&m->c.ready, 4, __LINE__);
    post(&m->c.go, 1);
    for (k = 0; k < 2; k++)
        join_ok(prod[k]);
    CHECK_OK(ipc_ring_close(&r)); /* the last producer: the consumers see -EPIPE */
    for (k = 0; k < 2; k++)
        join_ok(cons[k]);
    for (k = 0; k < 2; k++)
        for (i = 0; i < PER; i++)
            if (m->seen[k][i] != 1)
                th_fail(__FILE__, __LINE__, "message %d/%d taken %d times", k, i + 1,
                        m->seen[k][i]);
    CHECK_EQ(m->taken[0] + m->taken[1], 2 * PER);
}

/* ---- 5. API rules ---- */

TEST(ringpoll_api_bad_handles) {
    ipc_ring r, z;
    ipc_ring_opts o = ropts(K_SPSC, 0);
    int fds = th_fd_count(), thr = thread_count();
    CHECK_ERR(ipc_ring_pollfd(NULL), -EINVAL);
    memset(&z, 0, sizeof z);
    CHECK_ERR(ipc_ring_pollfd(&z), -EBADF); /* never opened */
    CHECK_OK(ipc_ring_create(&r, NULL, IPC_CONSUMER, &o));
    CHECK_OK(ipc_ring_close(&r));
    CHECK_ERR(ipc_ring_pollfd(&r), -EBADF); /* closed */
    CHECK_EQ(th_fd_count(), fds);
    CHECK_EQ(thread_count(), thr);
}

/* A handle with both roles has no single meaning for "would not block": -EINVAL, and
   nothing made (no fd, no thread). */
TEST(ringpoll_api_both_roles) {
    static const unsigned kinds[] = {K_SPSC, K_MPSC, K_MPMC};
    int k;
    for (k = 0; k < 3; k++) {
        ipc_ring r;
        ipc_ring_opts o = ropts(kinds[k], 0);
        int fds, thr;
        CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER | IPC_CONSUMER, &o));
        fds = th_fd_count();
        thr = thread_count();
        CHECK_ERR(ipc_ring_pollfd(&r), -EINVAL);
        CHECK_ERR(ipc_ring_pollfd(&r), -EINVAL);
        CHECK_EQ(th_fd_count(), fds);
        CHECK_EQ(thread_count(), thr);
        CHECK_OK(ipc_ring_close(&r));
    }
}

/* Same fd each call, close-on-exec, one fd and one thread, both gone after close; for
   every kind and role, armed at close or not. */
TEST(ringpoll_api_fd_and_thread_lifetime) {
    static const unsigned kinds[] = {K_SPSC, K_MPSC, K_MPMC, K_BC, K_BCOVER};
    int fds0 = th_fd_count(), thr0 = thread_count(), k, role, armed;
    for (k = 0; k < 5; k++)
        for (role = IPC_PRODUCER; role <= IPC_CONSUMER; role++)
            for (armed = 0; armed < 2; armed++) {
                ipc_ring r;
                ipc_ring_opts o = ropts(kinds[k], 0);
                unsigned char buf[256];
                int fds, fds_before = th_fd_count(), thr, fd, fl;
                int64_t t0;
                CHECK_OK(ipc_ring_create(&r, NULL, role, &o));
                fds = th_fd_count();
                thr = thread_count();
                fd = ipc_ring_pollfd(&r);
                CHECK(fd >= 0);
                CHECK_EQ(ipc_ring_pollfd(&r), fd);
                CHECK_EQ(ipc_ring_pollfd(&r), fd);
                CHECK(fd != ipc_ring_fd(&r));
                fl = fcntl(fd, F_GETFD);
                CHECK(fl >= 0 && (fl & FD_CLOEXEC));
                CHECK_EQ(th_fd_count(), fds + 1);
                CHECK_EQ(thread_count(), thr + 1);
                if (armed) { /* the thread then sleeps on the ring's futex */
                    if (role == IPC_CONSUMER) {
                        CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
                        CHECK(!readable(fd, 20));
                    } else if (KIND(kinds[k]) != IPC_RING_BROADCAST) {
                        /* no consumer attached: room until full */
                        uint32_t seq = 0;
                        int rc;
                        while ((rc = try_send(&r, 1, ++seq, 12)) == 0) {
                        }
                        CHECK_ERR(rc, -EAGAIN);
                        if (readable(fd, 20))
                            th_fail(__FILE__, __LINE__,
                                    "kind %u: a full ring's producer (no consumer ever "
                                    "attached) is readable",
                                    KIND(kinds[k]));
                    }
                }
                t0 = ipc_time_now();
                CHECK_OK(ipc_ring_close(&r));
                CHECK(ipc_time_now() - t0 < 1000 * MS); /* the thread was told, not waited out */
                CHECK(!fd_open(fd));
                CHECK_EQ(errno, EBADF);
                CHECK_EQ(th_fd_count(), fds_before);
                threads_back_to(thr, __LINE__);
                CHECK_ERR(ipc_ring_close(&r), -EBADF);
            }
    CHECK_EQ(th_fd_count(), fds0);
    CHECK_EQ(thread_count(), thr0);
}

/* Over fork the child's copy has no thread: pollfd on it is -EBADF, its close returns at
   once and leaves the parent's fd and thread alone. */
static void child_fork_copy(void *arg) {
    ipc_ring *r = (ipc_ring *)arg;
    int64_t t0;
    int fd = ipc_ring_pollfd(r);
    CHECK_ERR(fd, -EBADF);
    t0 = ipc_time_now();
    CHECK_OK(ipc_ring_close(r));
    CHECK(ipc_time_now() - t0 < 1000 * MS);
    CHECK_ERR(ipc_ring_close(r), -EBADF);
}

TEST(ringpoll_api_fork_copy) {
    ctl *c = ctl_map(1);
    ipc_ring r;
    ipc_ring_opts o = ropts(K_SPSC, 0);
    unsigned char buf[256];
    job j;
    pid_t pid;
    int fd, fds, thr;

    CHECK_OK(ipc_ring_create(&r, NULL, IPC_CONSUMER, &o));
    fd = ipc_ring_pollfd(&r);
    CHECK(fd >= 0);
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN); /* armed: the thread sleeps */
    fds = th_fd_count();
    thr = thread_count();
    pid = spawn(child_fork_copy, &r);
    join_ok(pid);
    CHECK(fd_open(fd));
    CHECK_EQ(th_fd_count(), fds);
    CHECK_EQ(thread_count(), thr);
    CHECK(!readable(fd, 20));
    /* and the parent's doorbell still works */
    j = job_of(c, &r, 1, 1);
    pid = spawn(child_rounds, &j);
    post(&c->go, 1);
    CHECK(readable(fd, 1000));
    CHECK_EQ(parse(buf, ipc_ring_recv(&r, buf, sizeof buf, 0), __LINE__).seq, 1);
    join_ok(pid);
    CHECK_OK(ipc_ring_close(&r));
    CHECK(!fd_open(fd));
}

/* Many handles made and closed with their doorbells: nothing accumulates. The first
   round is not counted: the C library keeps a dead thread's stack for the next one. */
TEST(ringpoll_api_no_leak_repeated) {
    int fds = th_fd_count(), thr = thread_count(), maps = 0, i;
    for (i = 0; i < 51; i++) {
        ipc_ring r;
        ipc_ring_opts o = ropts(i & 1 ? K_MPMC : K_SPSC, 0);
        unsigned char buf[64];
        CHECK_OK(ipc_ring_create(&r, NULL, IPC_CONSUMER, &o));
        CHECK(ipc_ring_pollfd(&r) >= 0);
        if (i % 3) CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
        CHECK_OK(ipc_ring_close(&r));
        if (i == 0) maps = th_map_count();
    }
    CHECK_EQ(th_fd_count(), fds);
    threads_back_to(thr, __LINE__);
    if (!TH_ASAN) CHECK_EQ(th_map_count(), maps); /* ASan maps as it goes */
}

/* ---- 6. the handle's own blocking calls while the doorbell is armed ---- */

/* Sends one message 30 ms after each ctl.go step (j->n steps), then (one step more)
   closes. */
static void child_late_sender(void *arg) {
    job *j = (job *)arg;
    ipc_ring r;
    uint32_t i;
    CHECK_OK(ipc_ring_attach_fd(&r, j->fd, IPC_PRODUCER));
    post(&j->c->ready, 1);
    for (i = 1; i <= (uint32_t)j->n; i++) {
        await_word(&j->c->go, i, __LINE__);
        th_sleep_us(30000); /* the parent is asleep in its call by then */
        send_msg(&r, j->id, i, sizeof(pmsg), IPC_FOREVER);
    }
    await_word(&j->c->go, (uint32_t)j->n + 1, __LINE__);
    th_sleep_us(30000);
    CHECK_OK(ipc_ring_close(&r));
}

static void blocking_while_armed(unsigned flags) {
    ctl *c = ctl_map(1);
    ipc_ring r;
    ipc_ring_opts o = ropts(flags, 64 * KiB);
    unsigned char buf[256];
    job j;
    pid_t pid;
    int fd, ep;
    int64_t t0, el;
    ssize_t n;

    CHECK_OK(ipc_ring_create(&r, NULL, IPC_CONSUMER, &o));
    ep = doorbell_ep(&r, &fd);
    j = job_of(c, &r, 4, 2);
    pid = spawn(child_late_sender, &j);
    await_word(&c->ready, 1, __LINE__);
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN); /* armed */

    /* a blocking receive from the same thread: woken by the send 30 ms later */
    post(&c->go, 1);
    t0 = ipc_time_now();
    n = ipc_ring_recv(&r, buf, sizeof buf, 3000 * MS);
    el = ipc_time_now() - t0;
    CHECK_EQ(parse(buf, n, __LINE__).seq, 1);
    if (el >= 1000 * MS)
        th_fail(__FILE__, __LINE__, "a blocking recv beside the armed doorbell took %.0f ms",
                (double)el / 1e6);
    /* a timeout beside it keeps its deadline */
    t0 = ipc_time_now();
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
    el = ipc_time_now() - t0;
    CHECK(el >= 50 * MS && el < 1000 * MS);
    /* the doorbell still works: quiet after -EAGAIN, rings for the next message */
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
    CHECK(!readable(fd, 20));
    post(&c->go, 2);
    ep_must(ep, __LINE__, "the message after a blocking call");
    CHECK_EQ(parse(buf, ipc_ring_recv(&r, buf, sizeof buf, 0), __LINE__).seq, 2);
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 0), -EAGAIN);
    /* a blocking receive sees the close too */
    post(&c->go, 3);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_ring_recv(&r, buf, sizeof buf, 3000 * MS), -EPIPE);
    CHECK(ipc_time_now() - t0 < 1000 * MS);
    join_ok(pid);
    CHECK(readable(fd, 1000));
    close(ep);
    CHECK_OK(ipc_ring_close(&r));
}

TEST(ringpoll_blocking_recv_armed_spsc) {
    blocking_while_armed(K_SPSC);
}

TEST(ringpoll_blocking_recv_armed_mpsc) {
    blocking_while_armed(K_MPSC);
}

TEST(ringpoll_blocking_recv_armed_mpmc) {
    blocking_while_armed(K_MPMC);
}

TEST(ringpoll_blocking_recv_armed_broadcast) {
    blocking_while_armed(K_BC);
}

/* The producer's side: a blocking send on a full ring beside the armed doorbell is woken
   when the consumer (50 ms later) takes one. */
static void blocking_send_armed(unsigned flags) {
    ctl *c = ctl_map(1);
    ipc_ring r;
    ipc_ring_opts o = ropts(flags, 4 * KiB);
    job j;
    pid_t pid;
    int fd, rc;
    uint32_t seq = 0;
    int64_t t0, el;

    CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o));
    fd = ipc_ring_pollfd(&r);
    CHECK(fd >= 0);
    j = job_of(c, &r, 0, 1);
    j.delay_us = 50000; /* the send below is asleep by then */
    pid = spawn(child_taker, &j);
    await_word(&c->ready, 1, __LINE__);
    while ((rc = try_send(&r, 1, ++seq, 12)) == 0) {
    }
    CHECK_ERR(rc, -EAGAIN); /* armed */
    CHECK(!readable(fd, 20));
    post(&c->go, 1);
    t0 = ipc_time_now();
    send_msg(&r, 1, seq, 12, 3000 * MS);
    el = ipc_time_now() - t0;
    if (el >= 1000 * MS)
        th_fail(__FILE__, __LINE__, "a blocking send beside the armed doorbell took %.0f ms",
                (double)el / 1e6);
    th_sleep_ms(20); /* the doorbell rang for the room the send took: let it settle */
    CHECK_ERR(try_send(&r, 1, seq + 1, 12), -EAGAIN);
    CHECK(!readable(fd, 20));
    post(&c->go, 2);
    CHECK_OK(ipc_ring_close(&r));
    join_ok(pid);
    CHECK_EQ(c->got, seq);
}

TEST(ringpoll_blocking_send_armed_spsc) {
    blocking_send_armed(K_SPSC);
}

TEST(ringpoll_blocking_send_armed_mpmc) {
    blocking_send_armed(K_MPMC);
}
