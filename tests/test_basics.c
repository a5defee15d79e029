#include "harness.h"

/* tests/test_basics.c - section 1 (version, errors) and section 2 (time, deadlines). */

#include <limits.h>
#include <string.h>
#include <time.h>

#define MS ((int64_t)1000000)

static int64_t clock_ns(clockid_t clock) {
    struct timespec ts;
    CHECK_EQ(clock_gettime(clock, &ts), 0);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t ts_ns(const struct timespec *ts) {
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static int64_t abs64(int64_t v) {
    return v < 0 ? -v : v;
}

/* ---- 1. version, errors ---- */

TEST(basics_version_macros) {
    CHECK_EQ(IPC_VERSION, IPC_VERSION_MAJOR * 10000 + IPC_VERSION_MINOR * 100 + IPC_VERSION_PATCH);
    CHECK(IPC_VERSION_MAJOR >= 0);
    CHECK(IPC_VERSION_MINOR >= 0 && IPC_VERSION_MINOR < 100);
    CHECK(IPC_VERSION_PATCH >= 0 && IPC_VERSION_PATCH < 100);
#if IPC_VERSION != IPC_VERSION_MAJOR * 10000 + IPC_VERSION_MINOR * 100 + IPC_VERSION_PATCH
#error "IPC_VERSION is not usable in #if or does not match its parts"
#endif
}

/* Every code ipc.h documents in its conventions or returns from its own code, plus the
   common errno values a wrapped system call passes through. */
static const int documented_codes[] = {
    EAGAIN, ETIMEDOUT, EPIPE,  EMSGSIZE, EBADMSG, EBUSY,  EEXIST, EINVAL,   ENOENT, ENAMETOOLONG,
    ELOOP,  ENODEV,    ENOSPC, EBADF,    EIO,     EISDIR, EFBIG,  ENOMEM,   EACCES, EPERM,
    EINTR,  EMFILE,    ENFILE, ENOSYS,   EIDRM,   ENXIO,  EFAULT, EOVERFLOW};

TEST(basics_strerror_documented_codes) {
    size_t i;
    for (i = 0; i < sizeof documented_codes / sizeof documented_codes[0]; i++) {
        int e = documented_codes[i];
        const char *neg = ipc_strerror(-e), *pos = ipc_strerror(e);
        if (!neg || !*neg || strcmp(neg, "unknown error") == 0)
            th_fail(__FILE__, __LINE__, "ipc_strerror(-%d) = \"%s\"", e, neg ? neg : "(null)");
        if (!pos || strcmp(neg, pos) != 0)
            th_fail(__FILE__, __LINE__, "ipc_strerror(%d) = \"%s\" but ipc_strerror(-%d) = \"%s\"",
                    e, pos ? pos : "(null)", e, neg);
    }
}

TEST(basics_strerror_distinct_for_core_codes) {
    /* The codes of the conventions block name different conditions: distinct strings. */
    static const int core[] = {EAGAIN, ETIMEDOUT, EPIPE,  EMSGSIZE, EBADMSG, EBUSY,
                               EEXIST, EINVAL,    ENOENT, ELOOP,    ENODEV,  EBADF};
    size_t i, j, n = sizeof core / sizeof core[0];
    for (i = 0; i < n; i++)
        for (j = i + 1; j < n; j++)
            if (strcmp(ipc_strerror(-core[i]), ipc_strerror(-core[j])) == 0)
                th_fail(__FILE__, __LINE__, "codes %d and %d share \"%s\"", core[i], core[j],
                        ipc_strerror(-core[i]));
}

TEST(basics_strerror_success_and_unknown) {
    static const int unknown[] = {4095, -4095, 99999, -99999, INT_MAX, -INT_MAX, INT_MIN};
    size_t i;
    CHECK(ipc_strerror(0) != NULL);
    CHECK(strcmp(ipc_strerror(0), "success") == 0);
    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = ipc_strerror(unknown[i]);
        if (!s || !*s) th_fail(__FILE__, __LINE__, "ipc_strerror(%d) is NULL or empty", unknown[i]);
    }
    /* An unknown code must not masquerade as success. */
    CHECK(strcmp(ipc_strerror(-99999), "success") != 0);
    /* The string is static: the same pointer every time. */
    CHECK(ipc_strerror(-EPIPE) == ipc_strerror(-EPIPE));
}

/* ---- 2. time, deadlines ---- */

TEST(basics_time_now_monotonic) {
    int64_t a = ipc_time_now(), c = clock_ns(CLOCK_MONOTONIC), b;
    int i;
    CHECK(a > 0);
    CHECK(abs64(c - a) < 100 * MS);
    for (i = 0; i < 1000; i++) {
        b = ipc_time_now();
        CHECK(b >= a);
        a = b;
    }
    th_sleep_ms(5);
    b = ipc_time_now();
    CHECK(b - a >= 5 * MS);
}

TEST(basics_deadline_make) {
    int64_t before, dl, after;
    CHECK_EQ(ipc_deadline_make(IPC_FOREVER), IPC_FOREVER);
    CHECK_EQ(ipc_deadline_make(0), 0);
    CHECK_EQ(ipc_deadline_make(-5), -EINVAL);
    CHECK_EQ(ipc_deadline_make(-2), -EINVAL);
    CHECK_EQ(ipc_deadline_make(INT64_MIN), -EINVAL);
    /* Too large to add to now: no limit, never a wrapped (negative) deadline. */
    CHECK_EQ(ipc_deadline_make(INT64_MAX), IPC_FOREVER);
    CHECK_EQ(ipc_deadline_make(INT64_MAX - 1), IPC_FOREVER);
    CHECK_EQ(ipc_deadline_make(INT64_MAX - ipc_time_now() + 1000), IPC_FOREVER);
    /* Finite: now + timeout on CLOCK_MONOTONIC. */
    before = ipc_time_now();
    dl = ipc_deadline_make(1);
    after = ipc_time_now();
    CHECK(dl >= before + 1 && dl <= after + 1);
    before = clock_ns(CLOCK_MONOTONIC);
    dl = ipc_deadline_make(250 * MS);
    after = clock_ns(CLOCK_MONOTONIC);
    CHECK(dl >= before + 250 * MS && dl <= after + 250 * MS);
    /* A long (a year) timeout is still finite. */
    dl = ipc_deadline_make(365LL * 24 * 3600 * 1000 * MS);
    CHECK(dl > 0);
}

TEST(basics_deadline_left) {
    int64_t dl, prev, left;
    int i;
    CHECK_EQ(ipc_deadline_left(IPC_FOREVER), IPC_FOREVER);
    CHECK_EQ(ipc_deadline_left(0), 0);
    CHECK_EQ(ipc_deadline_left(1), 0); /* long past */
    CHECK_EQ(ipc_deadline_left(ipc_time_now() - 1), 0);

    dl = ipc_deadline_make(200 * MS);
    prev = ipc_deadline_left(dl);
    CHECK(prev > 0 && prev <= 200 * MS);
    for (i = 0; i < 1000; i++) {
        left = ipc_deadline_left(dl);
        CHECK(left <= prev);
        CHECK(left >= 0);
        prev = left;
    }
    th_sleep_ms(20);
    left = ipc_deadline_left(dl);
    CHECK(left <= 180 * MS);
    CHECK(left > 0 || ipc_time_now() >= dl);

    dl = ipc_deadline_make(2 * MS);
    th_sleep_ms(5);
    CHECK_EQ(ipc_deadline_left(dl), 0);
    CHECK_EQ(ipc_deadline_left(dl), 0);
}

TEST(basics_deadline_ms) {
    int tries, got2 = 0, ms;
    CHECK_EQ(ipc_deadline_ms(IPC_FOREVER), -1);
    CHECK_EQ(ipc_deadline_ms(0), 0);
    CHECK_EQ(ipc_deadline_ms(1), 0);
    CHECK_EQ(ipc_deadline_ms(ipc_time_now() - 5 * MS), 0);

    /* 1 ns ahead: never negative, at most one (rounded up) millisecond. */
    ms = ipc_deadline_ms(ipc_time_now() + 1);
    CHECK(ms >= 0 && ms <= 1);

    /* 1.5 ms ahead rounds up to 2 (if we were not preempted for 0.5 ms meanwhile). */
    for (tries = 0; tries < 50 && !got2; tries++) {
        int64_t t0 = ipc_time_now();
        ms = ipc_deadline_ms(t0 + 1500000);
        if (ipc_time_now() - t0 < 400000) {
            CHECK_EQ(ms, 2);
            got2 = 1;
        } else {
            CHECK(ms >= 0 && ms <= 2);
        }
    }
    CHECK(got2);

    /* Just under 10 s ahead rounds up to 10000, never down to 9999. */
    for (tries = 0, got2 = 0; tries < 50 && !got2; tries++) {
        int64_t t0 = ipc_time_now();
        ms = ipc_deadline_ms(t0 + 10000 * MS);
        if (ipc_time_now() - t0 < 900000) {
            CHECK_EQ(ms, 10000);
            got2 = 1;
        }
    }
    CHECK(got2);

    /* Capped at INT_MAX. */
    CHECK_EQ(ipc_deadline_ms(ipc_time_now() + ((int64_t)INT_MAX + 1000) * MS), INT_MAX);
    CHECK_EQ(ipc_deadline_ms(INT64_MAX), INT_MAX);
}

TEST(basics_deadline_timespec) {
    struct timespec ts, *p;
    int64_t dl, now;
    memset(&ts, 0x5a, sizeof ts);
    CHECK(ipc_deadline_timespec(IPC_FOREVER, &ts) == NULL);
    CHECK(ipc_deadline_timespec(ipc_deadline_make(IPC_FOREVER), &ts) == NULL);

    dl = ipc_deadline_make(300 * MS);
    p = ipc_deadline_timespec(dl, &ts);
    CHECK(p == &ts);
    CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
    CHECK_EQ(ts_ns(&ts), dl);
    now = clock_ns(CLOCK_MONOTONIC);
    /* close to CLOCK_MONOTONIC now + left */
    CHECK(abs64(ts_ns(&ts) - (now + ipc_deadline_left(dl))) < 50 * MS);
    CHECK(ts_ns(&ts) > now && ts_ns(&ts) <= now + 300 * MS);

    /* "try once" and passed deadlines are valid timespecs at or before now. */
    p = ipc_deadline_timespec(0, &ts);
    CHECK(p == &ts);
    CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
    CHECK(ts_ns(&ts) <= clock_ns(CLOCK_MONOTONIC));
}

TEST(basics_deadline_realtime) {
    struct timespec ts, *p;
    int64_t dl, now, left;
    memset(&ts, 0x5a, sizeof ts);
    CHECK(ipc_deadline_realtime(IPC_FOREVER, &ts) == NULL);

    dl = ipc_deadline_make(300 * MS);
    p = ipc_deadline_realtime(dl, &ts);
    now = clock_ns(CLOCK_REALTIME);
    left = ipc_deadline_left(dl);
    CHECK(p == &ts);
    CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
    CHECK(abs64(ts_ns(&ts) - (now + left)) < 50 * MS);
    /* It is a wall-clock time: far from the monotonic deadline on any real system
       (CLOCK_REALTIME counts from 1970, CLOCK_MONOTONIC from boot). */
    CHECK(abs64(ts_ns(&ts) - dl) > 3600 * 1000 * MS);

    /* A deadline that passed maps to about now on the wall clock. */
    p = ipc_deadline_realtime(ipc_time_now() - 10 * MS, &ts);
    CHECK(p == &ts);
    CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
    CHECK(abs64(ts_ns(&ts) - clock_ns(CLOCK_REALTIME)) < 50 * MS);
    p = ipc_deadline_realtime(0, &ts);
    CHECK(p == &ts);
    CHECK(abs64(ts_ns(&ts) - clock_ns(CLOCK_REALTIME)) < 50 * MS);
}
