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
    char buf[4096];
    int fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
    long got, off;
    if (fd < 0) return -1;
    while ((got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
        for (off = 0; off < got;) {
            unsigned short reclen;
            const char *name = buf + off + 19; /* d_ino 8, d_off 8, d_reclen 2, d_type 1 */
            memcpy(&reclen, buf + off + 16, sizeof reclen);
            if (name[0] != '.') n++;
            off += reclen;
        }
    close(fd);
    return n - 1; /* our own fd */
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
    int i, first = 1, list = 0, passed = 0, failed = 0, skipped = 0;
    while (first < argc && argv[first][0] == '-') {
        if (strcmp(argv[first], "-l") == 0) {
            list = 1;
            first++;
        } else if (strcmp(argv[first], "--label") == 0 && first + 1 < argc) {
            label = argv[first + 1];
            first += 2;
        } else {
            fprintf(stderr, "usage: %s [-l] [--label NAME] [PATTERN...]\n", argv[0]);
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
        code = th_run(&th_tests[i]);
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
