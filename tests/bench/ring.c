/* tests/bench/ring.c - the SPSC ring against its baselines, measured side by side in one
   run, producer and consumer in two processes pinned to different cores:

   throughput  ring send/recv vs an idealized fixed-slot SPSC copy loop (cached indices,
               positions published every 16 slots, no checks: the floor) and vs a pipe
               doing one write and one read per message; 64 B and 64 KiB messages
   latency     ring ping-pong (two rings, default options) vs a raw cache-line ping-pong
               and a pipe ping-pong;
               ring ping-pong that sleeps every time (spin_ns = 1) vs a bare futex
               wait/wake ping-pong
   syscalls    futex calls per message while streaming

   Every mechanism runs in each of several interleaved rounds (the machine's speed drifts)
   and the best round counts. BENCH=full for longer rounds. Never fails on a number. */
#define _GNU_SOURCE 1
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include "bench.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINE 128

/* Shared between the two processes of one measurement. */
typedef struct shared {
    uint32_t go __attribute__((aligned(LINE)));
    uint64_t ideal_tail __attribute__((aligned(LINE)));
    uint64_t ideal_head __attribute__((aligned(LINE)));
    uint32_t ping __attribute__((aligned(LINE)));
    uint32_t pong __attribute__((aligned(LINE)));
    int64_t t_end __attribute__((aligned(LINE)));
    uint64_t syscalls, checksum, faults, cfaults;
    unsigned char slots[];
} shared;

static int full;

static void pin(int cpu) {
    cpu_set_t set;
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static shared *shared_new(size_t extra) {
    void *p = mmap(NULL, sizeof(shared) + extra, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) exit(1);
    return (shared *)p;
}

static void wait_go(shared *sh) {
    while (!__atomic_load_n(&sh->go, __ATOMIC_ACQUIRE))
        ipc__cpu_relax();
}

static long minflt(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static void die(const char *what, int r) {
    fprintf(stderr, "bench: %s: %s\n", what, ipc_strerror(r));
    exit(1);
}

/* ---- throughput ---- */

enum { T_RING, T_IDEAL, T_PIPE };

/* Messages per second for n messages of size bytes; for the ring also the futex calls and
   the page faults both sides took while streaming. */
static double throughput(int kind, size_t size, long n, uint64_t *syscalls, uint64_t *faults) {
    size_t slots = size <= 64 ? 16384 : 64, batch = slots / 4 < 16 ? slots / 4 : 16;
    shared *sh = shared_new(kind == T_IDEAL ? slots * size : 0);
    ipc_ring_opts o = {0};
    ipc_ring ring;
    int pfd[2] = {-1, -1}, st;
    unsigned char *buf = (unsigned char *)calloc(1, size);
    int64_t t0;
    pid_t pid;
    long i;
    if (!buf) exit(1);
    o.capacity = size <= 64 ? (1u << 20) : (4u << 20);
    o.flags = IPC_RING_PREFAULT;
    if (kind == T_RING) {
        int r = ipc_ring_create(&ring, NULL, IPC_PRODUCER, &o);
        if (r) die("ring create", r);
    }
    if (kind == T_PIPE && pipe(pfd)) exit(1);
    fflush(NULL);
    pid = fork();
    if (pid == 0) { /* consumer */
        uint64_t sum = 0;
        pin(1);
        if (kind == T_RING) {
            ipc_ring c;
            ipc_ring_stats s = {0, 0, 0};
            int r = ipc_ring_attach_fd(&c, ipc_ring_fd(&ring), IPC_CONSUMER);
            long f0;
            if (r) die("ring attach", r);
            memset(buf, 0, size); /* our own copy of the page, before the clock starts */
            wait_go(sh);
            f0 = minflt();
            for (i = 0; i < n; i++) {
                ssize_t k;
                if (i == n / 10) f0 = minflt(); /* faults after warm-up */
                k = ipc_ring_recv(&c, buf, size, IPC_FOREVER);
                if (k != (ssize_t)size) die("recv", (int)k);
                sum += buf[0];
            }
            ipc_ring_get_stats(&c, &s);
            sh->syscalls = s.sleeps + s.wakes;
            sh->cfaults = (uint64_t)(minflt() - f0);
            ipc_ring_close(&c);
        } else if (kind == T_IDEAL) {
            uint64_t head = 0, tail = 0;
            wait_go(sh);
            for (i = 0; i < n; i++) {
                while (head == tail)
                    tail = __atomic_load_n(&sh->ideal_tail, __ATOMIC_ACQUIRE);
                memcpy(buf, sh->slots + (head % slots) * size, size);
                sum += buf[0];
                if (++head % batch == 0) __atomic_store_n(&sh->ideal_head, head, __ATOMIC_RELEASE);
            }
        } else {
            close(pfd[1]);
            wait_go(sh);
            for (i = 0; i < n; i++) {
                size_t got = 0;
                while (got < size) {
                    ssize_t k = read(pfd[0], buf + got, size - got);
                    if (k <= 0) exit(1);
                    got += (size_t)k;
                }
                sum += buf[0];
            }
        }
        sh->checksum = sum;
        __atomic_store_n(&sh->t_end, ipc_time_now(), __ATOMIC_RELEASE);
        _exit(0);
    }
    pin(0);
    if (kind == T_PIPE) close(pfd[0]);
    usleep(2000); /* let the consumer reach its start line */
    t0 = ipc_time_now();
    __atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);
    if (kind == T_RING) {
        long f0;
        memset(buf, 0, size);
        f0 = minflt();
        for (i = 0; i < n; i++) {
            int r;
            if (i == n / 10) f0 = minflt(); /* faults after warm-up */
            buf[0] = (unsigned char)i;
            if ((r = ipc_ring_send(&ring, buf, size, IPC_FOREVER)) != 0) die("send", r);
        }
        sh->faults += (uint64_t)(minflt() - f0);
    } else if (kind == T_IDEAL) {
        uint64_t tail = 0, head = 0;
        for (i = 0; i < n; i++) {
            while (tail - head >= slots)
                head = __atomic_load_n(&sh->ideal_head, __ATOMIC_ACQUIRE);
            buf[0] = (unsigned char)i;
            memcpy(sh->slots + (tail % slots) * size, buf, size);
            if (++tail % batch == 0 || i == n - 1)
                __atomic_store_n(&sh->ideal_tail, tail, __ATOMIC_RELEASE);
        }
    } else {
        for (i = 0; i < n; i++) {
            buf[0] = (unsigned char)i;
            if (write(pfd[1], buf, size) != (ssize_t)size) exit(1);
        }
        close(pfd[1]);
    }
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("consumer", -EPIPE);
    if (kind == T_RING) {
        ipc_ring_stats s = {0, 0, 0};
        ipc_ring_get_stats(&ring, &s);
        sh->syscalls += s.sleeps + s.wakes;
        ipc_ring_close(&ring);
    }
    if (syscalls) *syscalls = sh->syscalls;
    if (faults) *faults = sh->faults + sh->cfaults;
    {
        double secs = (double)(sh->t_end - t0) / 1e9;
        munmap(sh, sizeof(shared) + (kind == T_IDEAL ? slots * size : 0));
        free(buf);
        return (double)n / secs;
    }
}

/* ---- latency ---- */

enum { L_SPIN, L_FUTEX, L_PIPE, L_RING, L_RING_SLEEP, L_KINDS };

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void flip_wait(uint32_t *w, uint32_t v, int futex) {
    uint32_t cur;
    while ((cur = __atomic_load_n(w, __ATOMIC_ACQUIRE)) != v)
        if (futex) ipc_futex_wait(w, cur, IPC_FOREVER);
}

static void flip_post(uint32_t *w, uint32_t v, int futex) {
    __atomic_store_n(w, v, __ATOMIC_RELEASE);
    if (futex) ipc_futex_wake(w, 1);
}

/* n round trips of 64 bytes; lat[] gets ns per round trip (sorted). */
static void latency(int kind, long n, int64_t *lat) {
    shared *sh = shared_new(0);
    ipc_ring_opts o = {0};
    ipc_ring ab, ba;
    unsigned char msg[64] = {0};
    int p1[2], p2[2];
    pid_t pid;
    long i;
    int st;
    if (kind == L_PIPE && (pipe(p1) || pipe(p2))) exit(1);
    o.capacity = 64 * 1024;
    o.spin_ns = kind == L_RING_SLEEP ? 1 : 0;
    if (kind >= L_RING) {
        int r = ipc_ring_create(&ab, NULL, IPC_PRODUCER, &o);
        if (r == 0) r = ipc_ring_create(&ba, NULL, IPC_CONSUMER, &o);
        if (r) die("ring create", r);
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        ipc_ring in, out;
        pin(1);
        if (kind >= L_RING) {
            int r = ipc_ring_attach_fd(&in, ipc_ring_fd(&ab), IPC_CONSUMER);
            if (r == 0) r = ipc_ring_attach_fd(&out, ipc_ring_fd(&ba), IPC_PRODUCER);
            if (r) die("ring attach", r);
            /* spin_ns is per handle: the echo side sleeps too. */
            in.spin_ns = out.spin_ns = o.spin_ns;
        }
        for (i = 1; i <= n; i++) {
            if (kind >= L_RING) {
                if (ipc_ring_recv(&in, msg, sizeof msg, IPC_FOREVER) != sizeof msg ||
                    ipc_ring_send(&out, msg, sizeof msg, IPC_FOREVER) != 0)
                    _exit(1);
            } else if (kind == L_PIPE) {
                if (read(p1[0], msg, sizeof msg) != sizeof msg ||
                    write(p2[1], msg, sizeof msg) != sizeof msg)
                    _exit(1);
            } else {
                flip_wait(&sh->ping, (uint32_t)i, kind == L_FUTEX);
                flip_post(&sh->pong, (uint32_t)i, kind == L_FUTEX);
            }
        }
        _exit(0);
    }
    pin(0);
    for (i = 1; i <= n; i++) {
        int64_t t0 = ipc_time_now();
        if (kind >= L_RING) {
            msg[0] = (unsigned char)i;
            if (ipc_ring_send(&ab, msg, sizeof msg, IPC_FOREVER) != 0 ||
                ipc_ring_recv(&ba, msg, sizeof msg, IPC_FOREVER) != sizeof msg)
                die("ping-pong", -EPIPE);
        } else if (kind == L_PIPE) {
            if (write(p1[1], msg, sizeof msg) != sizeof msg ||
                read(p2[0], msg, sizeof msg) != sizeof msg)
                die("pipe ping-pong", -EPIPE);
        } else {
            flip_post(&sh->ping, (uint32_t)i, kind == L_FUTEX);
            flip_wait(&sh->pong, (uint32_t)i, kind == L_FUTEX);
        }
        lat[i - 1] = ipc_time_now() - t0;
    }
    waitpid(pid, &st, 0);
    if (kind >= L_RING) {
        ipc_ring_close(&ab);
        ipc_ring_close(&ba);
    }
    if (kind == L_PIPE) {
        close(p1[0]);
        close(p1[1]);
        close(p2[0]);
        close(p2[1]);
    }
    munmap(sh, sizeof(shared));
    qsort(lat, (size_t)n, sizeof lat[0], cmp64);
}

static void machine(void) {
    struct utsname u;
    char model[256];
    bench_cpu_model(model, sizeof model);
    uname(&u);
    printf("machine: %s, %ld cores, Linux %s\n", model, sysconf(_SC_NPROCESSORS_ONLN), u.release);
}

static void progress(const char *what, int round, int rounds) {
    fprintf(stderr, "\r  round %d/%d: %-34s", round + 1, rounds, what);
}

int main(void) {
    static const char *tnames[] = {"ring send/recv", "ideal fixed-slot loop", "pipe write/read"};
    static const char *lnames[] = {"cache-line ping-pong", "futex ping-pong", "pipe ping-pong",
                                   "ring ping-pong", "ring ping-pong, sleeping"};
    const char *mode = getenv("BENCH");
    int rounds, r, k;
    long n64, n64k, nlat;
    double tp64[3] = {0}, tp64k[2] = {0};
    int64_t lat50[L_KINDS], lat99[L_KINDS], lat999[L_KINDS], latmax[L_KINDS], *lat;
    uint64_t sys = 0, best_sys = UINT64_MAX, flt = 0, most_flt = 0;

    full = mode && strcmp(mode, "full") == 0;
    rounds = full ? 5 : 3;
    n64 = full ? 20000000 : 4000000;
    n64k = full ? 100000 : 20000;
    nlat = full ? 1000000 : 100000;
    lat = (int64_t *)malloc(sizeof(int64_t) * (size_t)nlat);
    if (!lat) return 1;
    for (k = 0; k < L_KINDS; k++)
        lat50[k] = INT64_MAX;

    machine();
    for (r = 0; r < rounds; r++) {
        for (k = 0; k < 3; k++) {
            double v;
            progress(tnames[k], r, rounds);
            v = throughput(k, 64, k == T_PIPE ? n64 / 8 : n64, k == T_RING ? &sys : NULL,
                           k == T_RING ? &flt : NULL);
            if (v > tp64[k]) tp64[k] = v;
            if (k == T_RING && sys < best_sys) best_sys = sys;
            if (k == T_RING && flt > most_flt) most_flt = flt;
        }
        for (k = 0; k < 2; k++) {
            double v;
            progress(k == 0 ? "ring 64 KiB" : "ideal loop 64 KiB", r, rounds);
            v = throughput(k, 65536, n64k, NULL, NULL);
            if (v > tp64k[k]) tp64k[k] = v;
        }
        for (k = 0; k < L_KINDS; k++) {
            progress(lnames[k], r, rounds);
            latency(k, nlat, lat);
            if (lat[nlat / 2] < lat50[k]) {
                lat50[k] = lat[nlat / 2];
                lat99[k] = lat[nlat * 99 / 100];
                lat999[k] = lat[nlat * 999 / 1000];
                latmax[k] = lat[nlat - 1];
            }
        }
    }
    fprintf(stderr, "\r%60s\r", "");

    printf("\nthroughput, one-way, best of %d interleaved rounds\n", rounds);
    printf("  %-26s %14s %14s\n", "64-byte messages", "msgs/s", "MB/s");
    for (k = 0; k < 3; k++)
        printf("  %-26s %14.0f %14.1f\n", tnames[k], tp64[k], tp64[k] * 64 / 1e6);
    printf("  %-26s %14s %14s\n", "64 KiB messages", "msgs/s", "MB/s");
    for (k = 0; k < 2; k++)
        printf("  %-26s %14.0f %14.1f\n", tnames[k], tp64k[k], tp64k[k] * 65536 / 1e6);
    printf("\nround-trip latency, 64 bytes, %ld round trips, best round by p50\n", nlat);
    printf("  %-26s %10s %10s %10s %10s\n", "mechanism", "p50 ns", "p99 ns", "p99.9 ns", "max ns");
    for (k = 0; k < L_KINDS; k++)
        printf("  %-26s %10lld %10lld %10lld %10lld\n", lnames[k], (long long)lat50[k],
               (long long)lat99[k], (long long)lat999[k], (long long)latmax[k]);

    printf("\nratios (targets from the ring issue in brackets)\n");
    printf("  ring / ideal loop, 64 B             %6.2fx  [>= 0.5]\n",
           tp64[T_RING] / tp64[T_IDEAL]);
    printf("  ring / pipe, 64 B                   %6.1fx  [>= 30]\n", tp64[T_RING] / tp64[T_PIPE]);
    printf("  ring / ideal loop, 64 KiB           %6.2fx  [>= 0.8]\n", tp64k[0] / tp64k[1]);
    printf("  ring ping-pong p50 / cache line     %6.2fx  [<= 1.5]\n",
           (double)lat50[L_RING] / (double)lat50[L_SPIN]);
    printf("  sleeping ring p50 / futex ping-pong %6.2fx  [<= 1.1]\n",
           (double)lat50[L_RING_SLEEP] / (double)lat50[L_FUTEX]);
    printf("  futex calls per message, streaming  %8.4f [<= 0.01]\n",
           (double)best_sys / (double)n64);
    printf("  page faults after warm-up (both)    %8llu [0, with IPC_RING_PREFAULT]\n",
           (unsigned long long)most_flt);
    free(lat);
    return 0;
}
