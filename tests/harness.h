/* tests/harness.h - the ipc.h test runner: every test runs in its own forked process
   group with a timeout, so a crash or a hang fails that test and the suite goes on.

       TEST(shm_create) { ... CHECK(x); CHECK_EQ(a, b); CHECK_ERR(call(), -EINVAL); }
       TEST_T(slow_one, 30000) { ... }   // timeout in ms (default 10000)

   Run: ./test [-l] [--label NAME] [PATTERN...]  (shell globs or substrings of names).
   --in-process runs the selected tests in the runner itself, without fork or timeout
   (for valgrind: tests/memcheck.sh).

   ThreadSanitizer runs only the tests whose threads share a ring in one process
   (tests/test_threads.c, ringpoll_*; the tsan suite in tests/suite.sh). Across processes
   it cannot judge anything: each process has its own TSan runtime, which sees neither the
   other process's accesses to the shared memory nor the atomics and futex wake-ups that
   order them, so a race between processes is invisible to it. Even in one process it
   tells memory apart by address, and every ring handle maps the ring at addresses of its
   own: test_threads.c points its handles at one mapping so that TSan sees both sides. */
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

/* ==== helpers shared by several test files (one copy here instead of one per file) ==== */

/* 1 when built with AddressSanitizer (gcc or clang), else 0. */
#if defined(__SANITIZE_ADDRESS__)
#define TH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TH_ASAN 1
#endif
#endif
#ifndef TH_ASAN
#define TH_ASAN 0
#endif
/* 1 where tests run many times slower (ASan, or qemu-i386 for the -m32 suite): they do less. */
#if TH_ASAN || defined(__i386__)
#define TH_SLOW 1
#else
#define TH_SLOW 0
#endif

/* th_spawn that must succeed. */
pid_t th_spawn_ok(void (*fn)(void *), void *arg);
/* Wait for a child that must exit 0; one that exited 77 (it skipped) skips the test.
   th_join_ok reports a failure at the caller's line. */
void th_join_ok_at(const char *file, int line, pid_t pid, int timeout_ms);
#define th_join_ok(pid, timeout_ms) th_join_ok_at(__FILE__, __LINE__, (pid), (timeout_ms))
/* SIGKILL a child and reap it: it must end by that signal. */
void th_kill_join(pid_t pid, int timeout_ms);
/* Sleep for us microseconds, retrying EINTR. */
void th_sleep_us(int64_t us);
/* Busy for us microseconds: a window in which a signal or a SIGKILL finds us mid-call. */
void th_spin_us(int64_t us);
/* Nanoseconds as milliseconds, for messages. */
double th_ms_of(int64_t ns);

/* splitmix64's finalizer: a well-spread 64-bit hash of x. */
uint64_t th_mix64(uint64_t x);
/* splitmix64: the next number after *state (a fixed seed gives the same run every time). */
uint64_t th_rnd64(uint64_t *state);
/* xorshift32: the next number after *state, which must not be 0. */
uint32_t th_rnd32(uint32_t *state);
/* Byte i of pattern stream `seed`: a lost, repeated, shifted or foreign byte shows. */
unsigned char th_pat(size_t i, uint32_t seed);
/* Fill b with bytes [0, len) of stream seed. */
void th_pat_fill(unsigned char *b, size_t len, uint32_t seed);
/* Fail (reported at file:line) unless b holds bytes [off, off + len) of stream seed. */
void th_pat_check(const char *file, int line, const unsigned char *b, size_t off, size_t len,
                  uint32_t seed);
/* malloc of n bytes (at least 1) that fails the test when there is no memory. */
void *th_xmalloc(size_t n);

/* fd's FD_CLOEXEC flag; fails the test if fd is not open. */
int th_is_cloexec(int fd);
/* fd's O_NONBLOCK flag; fails the test if fd is not open. */
int th_is_nonblock(int fd);
/* Whether signo is pending (for this thread or the process). */
int th_sig_pending(int signo);
/* This process has no child, running or zombie. */
int th_no_children(void);
/* Whether we run under qemu-user (the -m32 suite), whose emulation differs in places. */
int th_under_emulator(void);
/* The scheduler state of a process ('R', 'S', 'Z', ...) from /proc/<pid>/stat, or '?'. */
char th_proc_state(pid_t pid);
/* Mappings, for leak checks: th_map_count(), but under ASan (whose allocator maps anonymous
   memory as it goes) only the mappings of a file or memfd. */
int th_maps_now(void);

/* Call fn(dir, name, arg) (when fn is not NULL) for each entry of dir but "." and "..", by raw
   getdents64 (a 32-bit readdir fails on 64-bit inode numbers): the count, -1 if no dir. */
int th_dir_each(const char *dir, void (*fn)(const char *dir, const char *name, void *arg),
                void *arg);
/* Remove path: a file, or a directory and everything in it. */
void th_rm_tree(const char *path);
/* Make a fresh directory "/tmp/ipct-XXXXXX" in buf (size >= 20) or fail; returns buf. */
char *th_tmpdir(char *buf, size_t size);
/* The path (in path, size bytes) of an empty file "key" in the directory dir (dsize bytes),
   a fresh th_tmpdir made on the first call (dir[0] == 0); for ftok. Returns path. */
char *th_key_file(char *dir, size_t dsize, char *path, size_t size);
/* Run body in a forked child: its exit code as th_join gives it (-2 if fork failed). */
int th_run_body(void (*body)(void), int timeout_ms);
/* The verdict on a guarded body's exit code: 0 passes, 77 skips the test, others fail it. */
void th_body_verdict(int code);
/* A python3 ("/usr/bin/python3" or one on PATH) that can import module, or NULL. */
const char *th_python_with(const char *module);
/* The temporary directory of a th_in_tmpdir body. */
extern char th_dir[64];
/* Run body in a child with a fresh th_tmpdir in th_dir, remove the directory, then judge. */
void th_in_tmpdir(void (*body)(void), int timeout_ms);
/* "<th_dir>/name", in one of 8 rotating buffers. */
const char *th_path(const char *name);

/* A test `name` whose body runs through guard(name_body, timeout_ms - slack_ms), so that the
   guard keeps slack_ms of the test's timeout for its cleanup. */
#define TEST_GUARDED(name, timeout_ms, slack_ms, guard)                                            \
    static void name##_body(void);                                                                 \
    TEST_T(name, timeout_ms) {                                                                     \
        guard(name##_body, (timeout_ms) - (slack_ms));                                             \
    }                                                                                              \
    static void name##_body(void)

/* The time since t0 (ipc_time_now) must be in [lo_ms, hi_ms). */
#define CHECK_WITHIN(t0, lo_ms, hi_ms)                                                             \
    do {                                                                                           \
        int64_t th_el_ = ipc_time_now() - (t0);                                                    \
        if (th_el_ < (int64_t)(lo_ms)*1000000 || th_el_ >= (int64_t)(hi_ms)*1000000)               \
            th_fail(__FILE__, __LINE__, "took %.1f ms, want [%d, %d) ms", (double)th_el_ / 1e6,    \
                    (int)(lo_ms), (int)(hi_ms));                                                   \
    } while (0)
/* Two C strings must be equal. */
#define CHECK_STREQ(got, want)                                                                     \
    do {                                                                                           \
        const char *th_g_ = (got), *th_w_ = (want);                                                \
        if (strcmp(th_g_, th_w_) != 0)                                                             \
            th_fail(__FILE__, __LINE__, "%s: got \"%s\", want \"%s\"", #got, th_g_, th_w_);        \
    } while (0)

/* Rings under a scribbler (a third process writing over their shared memory). */

/* Fail unless a ring call started at t0 with a 20 ms timeout came back within a second. */
void th_ring_prompt(int64_t t0, const char *what, long long rc);
/* Take one message from c with a 20 ms timeout, by recv into buf (size bytes) or, at random
   by *rs, by peek, a copy of at most copy_max bytes into buf and release: the length taken,
   or the error (release's -EOVERFLOW too). Fails if the call is slow or release fails else. */
ssize_t th_ring_take(ipc_ring *c, void *buf, size_t size, size_t copy_max, uint64_t *rs);
/* A consumer handle that said -EBADMSG stays poisoned: every call says so at once. Closes it. */
void th_ring_poisoned_consumer(ipc_ring *c, void *buf, size_t size);
/* The same for a producer handle (buf: at least 1 byte to send). Closes it. */
void th_ring_poisoned_producer(ipc_ring *p, const void *buf);
/* Tallies of a scribbler game, in memory its processes share (counted atomically). */
typedef struct th_scrib {
    uint64_t msgs;     /* messages taken */
    uint64_t bad;      /* -EBADMSG on taking */
    uint64_t over;     /* -EOVERFLOW on taking (broadcast) */
    uint64_t timeouts; /* -EAGAIN or -ETIMEDOUT on taking */
    uint64_t pipes;    /* -EPIPE on taking */
    uint64_t sent;     /* messages sent or committed */
    uint64_t send_bad; /* -EBADMSG on sending */
    uint64_t writes;   /* the scribbler's writes */
    uint64_t attaches; /* attaches or restarts after the first */
} th_scrib;
/* One more in the tally *n. */
void th_scrib_count(uint64_t *n);
/* Count what taking from c gave (n, from th_ring_take) in t: a message (no longer than
   max_msg), a timeout, -EPIPE (then a 1 ms nap), -EOVERFLOW where overflow_ok, or -EBADMSG,
   after which c must be poisoned (th_ring_poisoned_consumer closes it). Anything else
   fails. Returns whether c is still attached. */
int th_scrib_took(th_scrib *t, ipc_ring *c, ssize_t n, size_t max_msg, int overflow_ok, void *buf,
                  size_t size);
/* Count what a send or reserve + commit on p, begun at t0 with a 20 ms timeout, gave (rc) in
   t: 0, a timeout, -EPIPE where pipe_ok (then a 1 ms nap) or -EBADMSG, after which p must be
   poisoned (th_ring_poisoned_producer closes it). Anything else, or a slow call, fails.
   Returns whether p is still attached. */
int th_scrib_sent(th_scrib *t, ipc_ring *p, int64_t t0, int rc, int pipe_ok, const void *buf);
/* Fail, showing every tally, unless ok (what the game must have seen). */
void th_scrib_check(const th_scrib *t, int ok);
/* Attaching (attach(r, role), for each role from IPC_PRODUCER to last_role) must fail with
   -EBADMSG and leave the fd and mapping counts at fds and maps; what, how: for messages. */
void th_ring_attach_rejected(int (*attach)(ipc_ring *r, int role), int last_role, const char *what,
                             const char *how, int fds, int maps);

/* Flags and counters in memory shared across fork. */

/* Wait (ms at most, looking every millisecond) until *p >= v; fails naming what. */
void th_int_wait(const int *p, int v, int ms, const char *what);
/* Store v in the futex word *w and wake all its waiters. */
void th_word_set(uint32_t *w, uint32_t v);
/* Add 1 to the futex word *w and wake all its waiters. */
void th_word_add(uint32_t *w);
/* Wait (ms at most, else fail at file:line) until the futex word *w >= v. */
void th_word_wait_at(const char *file, int line, uint32_t *w, uint32_t v, int ms);
#define th_word_wait(w, v, ms) th_word_wait_at(__FILE__, __LINE__, (w), (v), (ms))

#ifdef __cplusplus
}
#endif

#endif
