#include "harness.h"

/* tests/test_futex.c - section 5: process-shared futexes. */

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#define MS ((int64_t)1000000)

/* What parent and children share: one page, MAP_SHARED before fork. */
typedef struct shared {
    uint32_t word;   /* the futex */
    uint32_t ready;  /* children that are about to wait */
    int64_t timeout; /* what the children pass to ipc_futex_wait */
    int result[8];   /* last return value of each child's wait */
} shared;

static shared *shared_map(void) {
    return (shared *)th_shared_map(sizeof(shared));
}

static void shared_unmap(shared *s) {
    th_shared_unmap(s, sizeof(shared));
}

/* Wait (bounded) until `n` children said they are about to wait, and each is asleep. */
static void wait_asleep(shared *s, const pid_t *pids, int n) {
    int64_t dl = ipc_deadline_make(3000 * MS);
    int i;
    while (__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE) < (uint32_t)n) {
        CHECK(ipc_deadline_left(dl) > 0);
        th_sleep_ms(1);
    }
    for (i = 0; i < n; i++) {
        while (th_proc_state(pids[i]) != 'S') {
            CHECK(ipc_deadline_left(dl) > 0);
            th_sleep_ms(1);
        }
    }
}

static int child_index;

/* Child: announce, then wait until the word becomes 1. Exits 0 only if every wait
   returned a documented value and the last one saw the wake (0). */
static void waiter(void *arg) {
    shared *s = (shared *)arg;
    int r = 0;
    __atomic_fetch_add(&s->ready, 1, __ATOMIC_RELEASE);
    while (__atomic_load_n(&s->word, __ATOMIC_ACQUIRE) == 0) {
        r = ipc_futex_wait(&s->word, 0, s->timeout);
        s->result[child_index] = r;
        if (r != 0 && r != 1)
            th_fail(__FILE__, __LINE__, "child %d: ipc_futex_wait = %d (%s)", child_index, r,
                    ipc_strerror(r));
    }
    CHECK_EQ(__atomic_load_n(&s->word, __ATOMIC_ACQUIRE), 1);
    CHECK_EQ(r, 0); /* it slept and was woken; 1 would mean it never slept */
}

static pid_t spawn_waiter(shared *s, int index) {
    pid_t p;
    child_index = index;
    p = th_spawn(waiter, s);
    CHECK(p > 0);
    return p;
}

/* Set the word and wake until `want` sleepers were woken (bounded). */
static int wake_until(shared *s, int count, int want) {
    int64_t dl = ipc_deadline_make(2000 * MS);
    int total = 0, r;
    while (total < want) {
        r = ipc_futex_wake(&s->word, count);
        CHECK(r >= 0);
        total += r;
        if (total >= want || ipc_deadline_left(dl) == 0) break;
        th_sleep_ms(1);
    }
    return total;
}

static void one_cross_process_wake(shared *s, int64_t timeout) {
    pid_t pid;
    s->word = 0;
    s->ready = 0;
    s->timeout = timeout;
    s->result[0] = -12345;
    pid = spawn_waiter(s, 0);
    wait_asleep(s, &pid, 1);
    __atomic_store_n(&s->word, 1, __ATOMIC_RELEASE);
    CHECK_EQ(wake_until(s, 1, 1), 1);
    CHECK_EQ(th_join(pid, 3000), 0);
    CHECK_EQ(s->result[0], 0);
}

TEST(futex_wake_across_processes) {
    int fds = th_fd_count();
    shared *s = shared_map();
    one_cross_process_wake(s, IPC_FOREVER);
    /* A timeout too large to add behaves as IPC_FOREVER; a finite one is woken too. */
    one_cross_process_wake(s, INT64_MAX);
    one_cross_process_wake(s, 5000 * MS);
    shared_unmap(s);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(futex_wake_across_processes_memfd) {
    int fds = th_fd_count();
    ipc_shm shm;
    shared *s;
    CHECK_OK(ipc_shm_create(&shm, NULL, 4096, NULL));
    CHECK(shm.addr != NULL && shm.size >= sizeof(shared));
    s = (shared *)shm.addr;
    memset(s, 0, sizeof *s);
    one_cross_process_wake(s, IPC_FOREVER);
    CHECK_OK(ipc_shm_close(&shm));
    CHECK_EQ(th_fd_count(), fds);
}

TEST(futex_value_mismatch_returns_1_at_once) {
    uint32_t word = 5;
    int64_t t0;
    t0 = ipc_time_now();
    CHECK_ERR(ipc_futex_wait(&word, 4, IPC_FOREVER), 1);
    CHECK(ipc_time_now() - t0 < 10 * MS);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_futex_wait(&word, 6, 1000 * MS), 1);
    CHECK(ipc_time_now() - t0 < 10 * MS);
    CHECK_ERR(ipc_futex_wait(&word, 0, 0), 1);
    CHECK_ERR(ipc_futex_wait_until(&word, 0, IPC_FOREVER), 1);
    CHECK_ERR(ipc_futex_wait_until(&word, 0xffffffffu, ipc_deadline_make(1000 * MS)), 1);
    CHECK(ipc_time_now() - t0 < 10 * MS);
    CHECK_EQ(word, 5);
}

TEST(futex_timeout_zero_eagain) {
    uint32_t word = 7;
    int64_t t0 = ipc_time_now();
    CHECK_ERR(ipc_futex_wait(&word, 7, 0), -EAGAIN);
    CHECK_ERR(ipc_futex_wait_until(&word, 7, 0), -EAGAIN);
    CHECK(ipc_time_now() - t0 < 10 * MS);
}

TEST(futex_timeout_50ms) {
    uint32_t word = 0;
    int64_t t0 = ipc_time_now(), el;
    CHECK_ERR(ipc_futex_wait(&word, 0, 50 * MS), -ETIMEDOUT);
    el = ipc_time_now() - t0;
    if (el < 50 * MS || el >= 500 * MS)
        th_fail(__FILE__, __LINE__, "50 ms wait took %.1f ms", (double)el / 1e6);
    /* a short one too: 1 ms */
    t0 = ipc_time_now();
    CHECK_ERR(ipc_futex_wait(&word, 0, 1 * MS), -ETIMEDOUT);
    el = ipc_time_now() - t0;
    CHECK(el >= 1 * MS && el < 450 * MS);
}

TEST(futex_timeout_under_signal_storm) {
    uint32_t word = 0;
    int64_t t0, el, dl;
    int r, n;
    th_storm_start();
    t0 = ipc_time_now();
    r = ipc_futex_wait(&word, 0, 50 * MS);
    el = ipc_time_now() - t0;
    n = th_storm_count();
    th_storm_stop();
    CHECK_ERR(r, -ETIMEDOUT);
    if (el < 50 * MS || el >= 500 * MS)
        th_fail(__FILE__, __LINE__, "50 ms wait under signals took %.1f ms (%d signals)",
                (double)el / 1e6, n);
    if (n < 10) th_fail(__FILE__, __LINE__, "only %d signals arrived during the wait", n);

    /* ipc_futex_wait_until under the same storm */
    th_storm_start();
    dl = ipc_deadline_make(50 * MS);
    r = ipc_futex_wait_until(&word, 0, dl);
    el = ipc_time_now();
    n = th_storm_count();
    th_storm_stop();
    CHECK_ERR(r, -ETIMEDOUT);
    CHECK(el >= dl);
    CHECK(el - dl < 450 * MS);
    CHECK(n >= 10);
}

TEST(futex_wait_until_deadline) {
    uint32_t word = 3;
    int64_t dl, now;
    int i;
    dl = ipc_deadline_make(50 * MS);
    CHECK(dl > 0);
    CHECK_ERR(ipc_futex_wait_until(&word, 3, dl), -ETIMEDOUT);
    now = ipc_time_now();
    CHECK(now >= dl);
    CHECK(now - dl < 450 * MS);
    /* A loop that re-checks keeps the same deadline: once passed, -ETIMEDOUT at once. */
    for (i = 0; i < 3; i++) {
        int64_t t0 = ipc_time_now();
        CHECK_ERR(ipc_futex_wait_until(&word, 3, dl), -ETIMEDOUT);
        CHECK(ipc_time_now() - t0 < 10 * MS);
    }
    /* A deadline already in the past (but not 0): -ETIMEDOUT, not -EAGAIN. */
    CHECK_ERR(ipc_futex_wait_until(&word, 3, ipc_time_now() - 1 * MS), -ETIMEDOUT);
    CHECK_ERR(ipc_futex_wait_until(&word, 3, 1), -ETIMEDOUT);
}

TEST(futex_bad_args) {
    uint32_t aligned[4] = {0, 0, 0, 0};
    char *bytes = (char *)aligned;
    int off;
    CHECK_ERR(ipc_futex_wait(NULL, 0, 0), -EINVAL);
    CHECK_ERR(ipc_futex_wait(NULL, 0, IPC_FOREVER), -EINVAL);
    CHECK_ERR(ipc_futex_wait(NULL, 0, 10 * MS), -EINVAL);
    CHECK_ERR(ipc_futex_wait_until(NULL, 0, IPC_FOREVER), -EINVAL);
    CHECK_ERR(ipc_futex_wait_until(NULL, 0, 0), -EINVAL);
    CHECK_ERR(ipc_futex_wake(NULL, 1), -EINVAL);
    CHECK_ERR(ipc_futex_wake(NULL, INT_MAX), -EINVAL);
    for (off = 1; off < 4; off++) {
        uint32_t *mis = (uint32_t *)(void *)(bytes + off);
        CHECK_ERR(ipc_futex_wait(mis, 0, 0), -EINVAL);
        CHECK_ERR(ipc_futex_wait(mis, 0, IPC_FOREVER), -EINVAL);
        CHECK_ERR(ipc_futex_wait(mis, 12345, IPC_FOREVER), -EINVAL);
        CHECK_ERR(ipc_futex_wait_until(mis, 0, ipc_deadline_make(10 * MS)), -EINVAL);
        CHECK_ERR(ipc_futex_wake(mis, 1), -EINVAL);
    }
    CHECK_ERR(ipc_futex_wake(&aligned[0], 0), -EINVAL);
    CHECK_ERR(ipc_futex_wake(&aligned[0], -1), -EINVAL);
    CHECK_ERR(ipc_futex_wake(&aligned[0], INT_MIN), -EINVAL);
    CHECK_ERR(ipc_futex_wait(&aligned[0], 0, -5), -EINVAL);
    CHECK_ERR(ipc_futex_wait(&aligned[0], 0, -2), -EINVAL);
    CHECK_ERR(ipc_futex_wait(&aligned[0], 0, INT64_MIN), -EINVAL);
    CHECK_ERR(ipc_futex_wait_until(&aligned[0], 0, -5), -EINVAL);
    /* the words were never touched */
    CHECK_EQ(aligned[0], 0);
    CHECK_EQ(aligned[1], 0);
}

TEST(futex_wake_no_waiters) {
    uint32_t local = 0;
    shared *s = shared_map();
    CHECK_ERR(ipc_futex_wake(&local, 1), 0);
    CHECK_ERR(ipc_futex_wake(&local, INT_MAX), 0);
    CHECK_ERR(ipc_futex_wake(&s->word, 1), 0);
    CHECK_ERR(ipc_futex_wake(&s->word, INT_MAX), 0);
    shared_unmap(s);
}

TEST(futex_wake_all_three_children) {
    int fds = th_fd_count();
    shared *s = shared_map();
    pid_t pids[3];
    int i;
    s->timeout = IPC_FOREVER;
    for (i = 0; i < 3; i++) {
        s->result[i] = -12345;
        pids[i] = spawn_waiter(s, i);
    }
    wait_asleep(s, pids, 3);
    __atomic_store_n(&s->word, 1, __ATOMIC_RELEASE);
    CHECK_EQ(wake_until(s, INT_MAX, 3), 3);
    for (i = 0; i < 3; i++) {
        CHECK_EQ(th_join(pids[i], 3000), 0);
        CHECK_EQ(s->result[i], 0);
    }
    shared_unmap(s);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(futex_wake_count_is_respected) {
    shared *s = shared_map();
    pid_t pids[3];
    int i, r;
    s->timeout = IPC_FOREVER;
    for (i = 0; i < 3; i++)
        pids[i] = spawn_waiter(s, i);
    wait_asleep(s, pids, 3);
    __atomic_store_n(&s->word, 1, __ATOMIC_RELEASE);
    /* count 1 wakes exactly one of the three sleepers */
    r = ipc_futex_wake(&s->word, 1);
    CHECK_ERR(r, 1);
    /* the two others are still asleep until the next wake; count 2 takes both */
    CHECK_EQ(wake_until(s, 2, 2), 2);
    CHECK_ERR(ipc_futex_wake(&s->word, INT_MAX), 0);
    for (i = 0; i < 3; i++)
        CHECK_EQ(th_join(pids[i], 3000), 0);
    shared_unmap(s);
}
