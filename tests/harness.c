/* tests/harness.c - the runner behind tests/harness.h. Holds the one IPC_IMPLEMENTATION. */
#define _GNU_SOURCE 1
#define IPC_IMPLEMENTATION
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TH_MAX 1024

typedef struct th_test {
    const char *name;
    void (*fn)(void);
    int timeout_ms;
} th_test;

static th_test th_tests[TH_MAX];
static int th_ntests;

void th_register(const char *name, void (*fn)(void), int timeout_ms) {
    if (th_ntests == TH_MAX) {
        fprintf(stderr, "harness: more than %d tests\n", TH_MAX);
        exit(2);
    }
    th_tests[th_ntests].name = name;
    th_tests[th_ntests].fn = fn;
    th_tests[th_ntests].timeout_ms = timeout_ms;
    th_ntests++;
}

void th_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(NULL);
    _exit(1);
}

void th_skip(const char *why) {
    fprintf(stderr, "    skipped: %s\n", why);
    fflush(NULL);
    _exit(77);
}

/* Both counters allocate nothing: a malloc that maps or unmaps (musl does so eagerly)
   would change the very count it measures. */
int th_fd_count(void) {
    int n = th_dir_each("/proc/self/fd", NULL, NULL);
    return n < 0 ? -1 : n - 1; /* less the fd that read the directory */
}

int th_map_count(void) {
    char buf[4096];
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC), n = 0;
    ssize_t got, i;
    if (fd < 0) return -1;
    while ((got = read(fd, buf, sizeof buf)) > 0)
        for (i = 0; i < got; i++)
            n += buf[i] == '\n';
    close(fd);
    return n;
}

char *th_name(char *buf, size_t size, const char *tag) {
    static int seq;
    snprintf(buf, size, "/ipct-%ld-%d-%s", (long)getpid(), seq++, tag ? tag : "x");
    return buf;
}

void *th_shared_map(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) th_fail(__FILE__, __LINE__, "mmap of %zu shared bytes", size);
    return p;
}

void th_shared_unmap(void *p, size_t size) {
    if (munmap(p, size) != 0) th_fail(__FILE__, __LINE__, "munmap");
}

pid_t th_spawn(void (*fn)(void *), void *arg) {
    pid_t p;
    fflush(NULL);
    p = fork();
    if (p == 0) {
        fn(arg);
        fflush(NULL);
        _exit(0);
    }
    return p;
}

int th_join(pid_t pid, int timeout_ms) {
    int64_t dl = ipc_deadline_make((int64_t)timeout_ms * 1000000);
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) return -2;
        if (ipc_deadline_left(dl) == 0) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
            return -1;
        }
        th_sleep_ms(1);
    }
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

void th_sleep_ms(int ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static volatile sig_atomic_t th_alarms;

static void th_on_alarm(int sig) {
    (void)sig;
    th_alarms++;
}

static void th_itimer(long usec) {
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_interval.tv_usec = usec;
    it.it_value.tv_usec = usec;
    if (setitimer(ITIMER_REAL, &it, NULL) != 0) th_fail(__FILE__, __LINE__, "setitimer");
}

void th_storm_start(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = th_on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: interrupted calls see EINTR */
    if (sigaction(SIGALRM, &sa, NULL) != 0) th_fail(__FILE__, __LINE__, "sigaction");
    th_alarms = 0;
    th_itimer(100);
}

int th_storm_stop(void) {
    th_itimer(0);
    return (int)th_alarms;
}

int th_storm_count(void) {
    return (int)th_alarms;
}

/* Remove the /dev/shm names a test process left behind. */
static void th_sweep(pid_t pid) {
    char prefix[64];
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    size_t n;
    if (!d) return;
    n = (size_t)snprintf(prefix, sizeof prefix, "ipct-%ld-", (long)pid);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, n) == 0) {
            char path[512];
            snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

static int th_cmp(const void *a, const void *b) {
    return strcmp(((const th_test *)a)->name, ((const th_test *)b)->name);
}

static int th_selected(const char *name, int argc, char **argv, int first) {
    int i, any = 0;
    for (i = first; i < argc; i++) {
        any = 1;
        if (fnmatch(argv[i], name, 0) == 0 || strstr(name, argv[i])) return 1;
    }
    return !any;
}

static int th_run(const th_test *t) {
    int64_t t0 = ipc_time_now();
    int code;
    pid_t pid;
    fflush(NULL);
    pid = fork();
    if (pid < 0) return -2;
    if (pid == 0) {
        setpgid(0, 0);
        alarm(0);
        t->fn();
        fflush(NULL);
        _exit(0);
    }
    setpgid(pid, pid);
    code = th_join(pid, t->timeout_ms);
    kill(-pid, SIGKILL); /* anything the test forked and left behind */
    th_sweep(pid);
    if (code == 0)
        printf("  ok    %-44s %6.1f ms\n", t->name, (double)(ipc_time_now() - t0) / 1e6);
    else if (code == 77)
        printf("  skip  %s\n", t->name);
    else if (code == -1)
        printf("  FAIL  %s: timed out after %d ms\n", t->name, t->timeout_ms);
    else if (code > 128)
        printf("  FAIL  %s: killed by signal %d (%s)\n", t->name, code - 128,
               strsignal(code - 128));
    else
        printf("  FAIL  %s: exit code %d\n", t->name, code);
    fflush(stdout);
    return code;
}

int main(int argc, char **argv) {
    const char *label = "tests";
    int i, first = 1, list = 0, passed = 0, failed = 0, skipped = 0, inproc = 0;
    while (first < argc && argv[first][0] == '-') {
        if (strcmp(argv[first], "-l") == 0) {
            list = 1;
            first++;
        } else if (strcmp(argv[first], "--in-process") == 0) {
            /* No fork per test (for valgrind, whose checks then cover the test's own
               process; tests/memcheck.sh): a failing test ends the run, and there is no
               timeout but the caller's. */
            inproc = 1;
            first++;
        } else if (strcmp(argv[first], "--label") == 0 && first + 1 < argc) {
            label = argv[first + 1];
            first += 2;
        } else {
            fprintf(stderr, "usage: %s [-l] [--in-process] [--label NAME] [PATTERN...]\n", argv[0]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_DFL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    qsort(th_tests, (size_t)th_ntests, sizeof th_tests[0], th_cmp);
    for (i = 0; i < th_ntests; i++) {
        int code;
        if (!th_selected(th_tests[i].name, argc, argv, first)) continue;
        if (list) {
            puts(th_tests[i].name);
            continue;
        }
        if (inproc) {
            setpgid(0, 0); /* as th_run's child: a test may signal its own group */
            th_tests[i].fn();
            th_sweep(getpid());
            printf("  ok    %s\n", th_tests[i].name);
            code = 0;
        } else {
            code = th_run(&th_tests[i]);
        }
        if (code == 0)
            passed++;
        else if (code == 77)
            skipped++;
        else
            failed++;
    }
    if (!list) printf("%s: %d passed, %d failed, %d skipped\n", label, passed, failed, skipped);
    return failed ? 1 : 0;
}

/* ==== helpers shared by several test files (declared at the end of harness.h) ==== */

#include <sys/stat.h>

pid_t th_spawn_ok(void (*fn)(void *), void *arg) {
    pid_t pid = th_spawn(fn, arg);
    CHECK(pid > 0);
    return pid;
}

void th_join_ok_at(const char *file, int line, pid_t pid, int timeout_ms) {
    int code = th_join(pid, timeout_ms);
    if (code == 77) th_skip("a child skipped");
    if (code != 0) th_fail(file, line, "child %ld exited with %d", (long)pid, code);
}

void th_kill_join(pid_t pid, int timeout_ms) {
    CHECK_EQ(kill(pid, SIGKILL), 0);
    CHECK_EQ(th_join(pid, timeout_ms), 128 + SIGKILL);
}

void th_sleep_us(int64_t us) {
    struct timespec ts;
    ts.tv_sec = (time_t)(us / 1000000);
    ts.tv_nsec = (long)(us % 1000000) * 1000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void th_spin_us(int64_t us) {
    int64_t until = ipc_time_now() + us * 1000;
    while (ipc_time_now() < until) {
    }
}

double th_ms_of(int64_t ns) {
    return (double)ns / 1e6;
}

uint64_t th_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t th_rnd64(uint64_t *state) {
    *state += 0x9e3779b97f4a7c15ull;
    return th_mix64(*state);
}

uint32_t th_rnd32(uint32_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

unsigned char th_pat(size_t i, uint32_t seed) {
    uint32_t x = (uint32_t)i * 2654435761u + seed * 40503u + 0x9e3779b9u;
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    return (unsigned char)x;
}

void th_pat_fill(unsigned char *b, size_t len, uint32_t seed) {
    size_t i;
    for (i = 0; i < len; i++)
        b[i] = th_pat(i, seed);
}

void th_pat_check(const char *file, int line, const unsigned char *b, size_t off, size_t len,
                  uint32_t seed) {
    size_t i;
    for (i = 0; i < len; i++)
        if (b[i] != th_pat(off + i, seed))
            th_fail(file, line, "stream %u (%zu bytes from %zu): byte %zu is 0x%02x, want 0x%02x",
                    (unsigned)seed, len, off, off + i, b[i], th_pat(off + i, seed));
}

void *th_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    return p;
}

int th_is_cloexec(int fd) {
    int f = fcntl(fd, F_GETFD);
    if (f < 0) th_fail(__FILE__, __LINE__, "fd %d is not open", fd);
    return (f & FD_CLOEXEC) != 0;
}

int th_is_nonblock(int fd) {
    int f = fcntl(fd, F_GETFL);
    if (f < 0) th_fail(__FILE__, __LINE__, "fd %d is not open", fd);
    return (f & O_NONBLOCK) != 0;
}

int th_sig_pending(int signo) {
    sigset_t s;
    sigemptyset(&s);
    CHECK_EQ(sigpending(&s), 0);
    return sigismember(&s, signo) == 1;
}

int th_no_children(void) {
    int st;
    return waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD;
}

int th_under_emulator(void) {
    char comm[32] = "";
    int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, comm, sizeof comm - 1);
        if (n > 0) comm[n] = 0;
        close(fd);
    }
    return strncmp(comm, "qemu-", 5) == 0;
}

char th_proc_state(pid_t pid) {
    char path[64], buf[512], *p;
    ssize_t n;
    int fd;
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) return '?';
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return '?';
    buf[n] = 0;
    p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

int th_maps_now(void) {
#if TH_ASAN
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int n = 0;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strstr(line, " /") || strstr(line, "memfd:")) n++;
    fclose(f);
    return n;
#else
    return th_map_count();
#endif
}

int th_dir_each(const char *dir, void (*fn)(const char *dir, const char *name, void *arg),
                void *arg) {
    char buf[4096];
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
    long got, off;
    if (fd < 0) return -1;
    while ((got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
        for (off = 0; off < got;) {
            unsigned short reclen;
            const char *name = buf + off + 19; /* d_ino 8, d_off 8, d_reclen 2, d_type 1 */
            memcpy(&reclen, buf + off + 16, sizeof reclen);
            off += reclen;
            if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
            n++;
            if (fn) fn(dir, name, arg);
        }
    close(fd);
    return n;
}

static void th_rm_entry(const char *dir, const char *name, void *arg) {
    char sub[4096];
    (void)arg;
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    th_rm_tree(sub);
}

void th_rm_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        th_dir_each(path, th_rm_entry, NULL);
        rmdir(path);
    } else {
        unlink(path);
    }
}

char *th_tmpdir(char *buf, size_t size) {
    snprintf(buf, size, "/tmp/ipct-XXXXXX");
    if (!mkdtemp(buf)) th_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
    return buf;
}

static void (*th_body)(void);

static void th_body_run(void *arg) {
    (void)arg;
    th_body();
}

int th_run_body(void (*body)(void), int timeout_ms) {
    pid_t pid;
    th_body = body;
    pid = th_spawn(th_body_run, NULL);
    return pid > 0 ? th_join(pid, timeout_ms) : -2;
}

void th_body_verdict(int code) {
    if (code == 77) th_skip("the test body skipped");
    if (code != 0) th_fail(__FILE__, __LINE__, "the test body failed: %d", code);
}

char th_dir[64];

void th_in_tmpdir(void (*body)(void), int timeout_ms) {
    int code;
    th_tmpdir(th_dir, sizeof th_dir);
    code = th_run_body(body, timeout_ms);
    th_rm_tree(th_dir);
    th_body_verdict(code);
}

const char *th_path(const char *name) {
    static char buf[8][sizeof th_dir + 256];
    static unsigned n;
    char *b = buf[n++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", th_dir, name);
    return b;
}

void th_ring_prompt(int64_t t0, const char *what, long long rc) {
    int64_t el = ipc_time_now() - t0;
    if (el >= 1000000000)
        th_fail(__FILE__, __LINE__, "%s with a 20 ms timeout took %.1f ms (returned %lld)", what,
                th_ms_of(el), rc);
}

ssize_t th_ring_take(ipc_ring *c, void *buf, size_t size, size_t copy_max, uint64_t *rs) {
    int64_t t0 = ipc_time_now();
    const void *m;
    ssize_t n;
    if (th_rnd64(rs) % 2) {
        n = ipc_ring_recv(c, buf, size, 20000000);
    } else if ((n = ipc_ring_peek(c, &m, 20000000)) > 0) {
        int rc;
        memcpy(buf, m, (size_t)n <= copy_max ? (size_t)n : copy_max); /* every byte readable */
        rc = ipc_ring_release(c);
        if (rc != 0 && rc != -EOVERFLOW)
            th_fail(__FILE__, __LINE__, "release: %d (%s)", rc, ipc_strerror(rc));
        if (rc == -EOVERFLOW) n = rc;
    }
    th_ring_prompt(t0, "recv/peek", (long long)n);
    return n;
}

void th_ring_poisoned_consumer(ipc_ring *c, void *buf, size_t size) {
    int64_t t0 = ipc_time_now();
    const void *m;
    CHECK_ERR(ipc_ring_recv(c, buf, size, 0), -EBADMSG);
    CHECK_ERR(ipc_ring_recv(c, buf, size, IPC_FOREVER), -EBADMSG);
    CHECK_ERR(ipc_ring_peek(c, &m, 20000000), -EBADMSG);
    CHECK_ERR(ipc_ring_peek(c, &m, IPC_FOREVER), -EBADMSG);
    CHECK_ERR(ipc_ring_release(c), -EBADMSG);
    th_ring_prompt(t0, "poisoned calls", -EBADMSG);
    CHECK_OK(ipc_ring_close(c));
}

void th_ring_poisoned_producer(ipc_ring *p, const void *buf) {
    int64_t t0 = ipc_time_now();
    void *m;
    CHECK_ERR(ipc_ring_send(p, buf, 1, 0), -EBADMSG);
    CHECK_ERR(ipc_ring_send(p, buf, 1, IPC_FOREVER), -EBADMSG);
    CHECK_ERR(ipc_ring_reserve(p, 1, &m, IPC_FOREVER), -EBADMSG);
    CHECK_ERR(ipc_ring_commit(p, 1), -EBADMSG);
    th_ring_prompt(t0, "poisoned calls", -EBADMSG);
    CHECK_OK(ipc_ring_close(p));
}

void th_ring_attach_rejected(int (*attach)(ipc_ring *r, int role), int last_role, const char *what,
                             const char *how, int fds, int maps) {
    ipc_ring r;
    int role;
    for (role = IPC_PRODUCER; role <= last_role; role++) {
        int rc = attach(&r, role);
        if (rc != -EBADMSG)
            th_fail(__FILE__, __LINE__, "%s (%s, role %d): attach gave %d (%s)", what, how, role,
                    rc, ipc_strerror(rc));
        CHECK_ERR(ipc_ring_close(&r), -EBADF);
    }
    if (th_fd_count() != fds || th_maps_now() != maps)
        th_fail(__FILE__, __LINE__, "%s: fds %d (were %d), maps %d (were %d)", what, th_fd_count(),
                fds, th_maps_now(), maps);
}

void th_int_wait(const int *p, int v, int ms, const char *what) {
    int64_t dl = ipc_deadline_make((int64_t)ms * 1000000);
    while (__atomic_load_n(p, __ATOMIC_ACQUIRE) < v) {
        if (ipc_deadline_left(dl) == 0)
            th_fail(__FILE__, __LINE__, "%s stayed %d (want %d) for %d ms", what,
                    __atomic_load_n(p, __ATOMIC_ACQUIRE), v, ms);
        th_sleep_ms(1);
    }
}

void th_word_set(uint32_t *w, uint32_t v) {
    __atomic_store_n(w, v, __ATOMIC_SEQ_CST);
    ipc_futex_wake(w, 0x7fffffff);
}

void th_word_add(uint32_t *w) {
    __atomic_fetch_add(w, 1u, __ATOMIC_SEQ_CST);
    ipc_futex_wake(w, 0x7fffffff);
}

void th_word_wait_at(const char *file, int line, uint32_t *w, uint32_t v, int ms) {
    int64_t dl = ipc_deadline_make((int64_t)ms * 1000000);
    for (;;) {
        uint32_t cur = __atomic_load_n(w, __ATOMIC_SEQ_CST);
        int64_t left;
        if (cur >= v) return;
        if ((left = ipc_deadline_left(dl)) == 0)
            th_fail(file, line, "waited %d ms for a word to reach %u: it is %u", ms, (unsigned)v,
                    (unsigned)cur);
        ipc_futex_wait(w, cur, left > 10000000 ? 10000000 : left); /* a store without a wake too */
    }
}

void th_scrib_count(uint64_t *n) {
    __atomic_fetch_add(n, 1, __ATOMIC_RELAXED);
}

int th_scrib_took(th_scrib *t, ipc_ring *c, ssize_t n, size_t max_msg, int overflow_ok, void *buf,
                  size_t size) {
    if (n > 0) {
        if ((size_t)n > max_msg)
            th_fail(__FILE__, __LINE__, "a message of %lld bytes > max_msg %zu", (long long)n,
                    max_msg);
        th_scrib_count(&t->msgs);
    } else if (n == -EAGAIN || n == -ETIMEDOUT) {
        th_scrib_count(&t->timeouts);
    } else if (n == -EPIPE) {
        th_scrib_count(&t->pipes);
        th_sleep_ms(1);
    } else if (n == -EOVERFLOW && overflow_ok) {
        th_scrib_count(&t->over);
    } else if (n == -EBADMSG) {
        th_scrib_count(&t->bad);
        th_ring_poisoned_consumer(c, buf, size);
        return 0;
    } else {
        th_fail(__FILE__, __LINE__, "recv/peek: %lld (%s)", (long long)n, ipc_strerror((int)n));
    }
    return 1;
}

int th_scrib_sent(th_scrib *t, ipc_ring *p, int64_t t0, int rc, int pipe_ok, const void *buf) {
    th_ring_prompt(t0, "send/reserve", rc);
    if (rc == 0) {
        th_scrib_count(&t->sent);
    } else if (rc == -EAGAIN || rc == -ETIMEDOUT) {
    } else if (rc == -EPIPE && pipe_ok) {
        th_sleep_ms(1);
    } else if (rc == -EBADMSG) {
        th_scrib_count(&t->send_bad);
        th_ring_poisoned_producer(p, buf);
        return 0;
    } else {
        th_fail(__FILE__, __LINE__, "send/reserve: %d (%s)", rc, ipc_strerror(rc));
    }
    return 1;
}

void th_scrib_check(const th_scrib *t, int ok) {
    if (!ok)
        th_fail(__FILE__, __LINE__,
                "received %llu, -EBADMSG %llu, -EOVERFLOW %llu, timeouts %llu, -EPIPE %llu, "
                "sent %llu, send -EBADMSG %llu, writes %llu, attaches %llu",
                (unsigned long long)t->msgs, (unsigned long long)t->bad,
                (unsigned long long)t->over, (unsigned long long)t->timeouts,
                (unsigned long long)t->pipes, (unsigned long long)t->sent,
                (unsigned long long)t->send_bad, (unsigned long long)t->writes,
                (unsigned long long)t->attaches);
}

char *th_key_file(char *dir, size_t dsize, char *path, size_t size) {
    int made = !dir[0], fd;
    if (made) th_tmpdir(dir, dsize);
    snprintf(path, size, "%s/key", dir);
    if (made) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) th_fail(__FILE__, __LINE__, "create %s: %s", path, strerror(errno));
        close(fd);
    }
    return path;
}

const char *th_python_with(const char *module) {
    static const char *const cands[] = {"/usr/bin/python3", "python3"};
    char import[128];
    size_t i;
    snprintf(import, sizeof import, "import %s", module);
    for (i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        int st;
        pid_t pid;
        fflush(NULL);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            int nul = open("/dev/null", O_RDWR);
            if (nul >= 0) {
                dup2(nul, 1);
                dup2(nul, 2);
            }
            execlp(cands[i], cands[i], "-c", import, (char *)NULL);
            _exit(127);
        }
        CHECK_EQ(waitpid(pid, &st, 0), pid);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return cands[i];
    }
    return NULL;
}
