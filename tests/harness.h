/* tests/harness.h - the ipc.h test runner: every test runs in its own forked process
   group with a timeout, so a crash or a hang fails that test and the suite goes on.

       TEST(shm_create) { ... CHECK(x); CHECK_EQ(a, b); CHECK_ERR(call(), -EINVAL); }
       TEST_T(slow_one, 30000) { ... }   // timeout in ms (default 10000)

   Run: ./test [-l] [--label NAME] [PATTERN...]  (shell globs or substrings of names). */
#ifndef IPC_TESTS_HARNESS_H
#define IPC_TESTS_HARNESS_H

#include "../ipc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

void th_register(const char *name, void (*fn)(void), int timeout_ms);
void th_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
void th_skip(const char *why) __attribute__((noreturn));

#define TEST_T(name, timeout_ms)                                                                   \
    static void name(void);                                                                        \
    __attribute__((constructor)) static void name##_register(void) {                               \
        th_register(#name, name, timeout_ms);                                                      \
    }                                                                                              \
    static void name(void)
#define TEST(name) TEST_T(name, 10000)

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) th_fail(__FILE__, __LINE__, "CHECK(%s)", #c);                                    \
    } while (0)
#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long th_a_ = (long long)(a), th_b_ = (long long)(b);                                  \
        if (th_a_ != th_b_)                                                                        \
            th_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, th_a_, th_b_);           \
    } while (0)
/* expr must return exactly err (a negative errno, or 0 / a count). */
#define CHECK_ERR(expr, err)                                                                       \
    do {                                                                                           \
        long long th_r_ = (long long)(expr), th_e_ = (long long)(err);                             \
        if (th_r_ != th_e_)                                                                        \
            th_fail(__FILE__, __LINE__, "%s: want %lld (%s), got %lld (%s)", #expr, th_e_,         \
                    ipc_strerror((int)th_e_), th_r_, ipc_strerror((int)th_r_));                    \
    } while (0)
/* expr must give exactly err after at least min_ms and well under a second (a deadline
   check: generous by design, never a measure of speed). */
#define CHECK_TIMED(expr, err, min_ms)                                                             \
    do {                                                                                           \
        int64_t t0_ = ipc_time_now(), el_;                                                         \
        CHECK_ERR(expr, err);                                                                      \
        el_ = ipc_time_now() - t0_;                                                                \
        if (el_ < (int64_t)(min_ms)*1000000 || el_ >= 1000000000)                                  \
            th_fail(__FILE__, __LINE__, "%s took %.1f ms, want [%d ms, 1 s)", #expr,               \
                    (double)el_ / 1e6, (int)(min_ms));                                             \
    } while (0)
/* expr must succeed (>= 0). */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        long long th_r_ = (long long)(expr);                                                       \
        if (th_r_ < 0)                                                                             \
            th_fail(__FILE__, __LINE__, "%s failed: %lld (%s)", #expr, th_r_,                      \
                    ipc_strerror((int)th_r_));                                                     \
    } while (0)

/* Entries in /proc/self/fd and lines in /proc/self/maps, for leak checks. */
int th_fd_count(void);
int th_map_count(void);

/* A name unique to this test process: "/ipct-<pid>-<n>-<tag>" (the runner removes any
   /dev/shm/ipct-<pid>-* the test leaves). Returns buf. */
char *th_name(char *buf, size_t size, const char *tag);

/* Zeroed MAP_SHARED anonymous memory, shared with children forked afterwards. */
void *th_shared_map(size_t size);
void th_shared_unmap(void *p, size_t size);

/* Fork a child that runs fn(arg) and exits 0 (a failed CHECK in it exits 1). */
pid_t th_spawn(void (*fn)(void *), void *arg);
/* Wait for a child: its exit code, 128+signal if killed, or -1 after timeout_ms (then
   it is SIGKILLed and reaped). */
int th_join(pid_t pid, int timeout_ms);

/* A storm of signals: SIGALRM every 100 us to a handler installed without SA_RESTART, so
   blocking calls in between keep seeing EINTR. th_storm_stop ends it (the handler stays,
   so a late signal does no harm) and returns how many arrived, as th_storm_count does. */
void th_storm_start(void);
int th_storm_stop(void);
int th_storm_count(void);

/* Sleep for ms milliseconds, retrying EINTR. */
void th_sleep_ms(int ms);

#ifdef __cplusplus
}
#endif

#endif
