/* tests/bench/pingpong.c - round-trip latency of the primitives the ring builds on,
   measured side by side in one run: a raw cache-line ping-pong (the hardware floor),
   a futex wait/wake ping-pong over shared memory, and a pipe ping-pong (one write and
   one read each way). Two processes, pinned to different cores where there are two.
   Prints p50/p99/p99.9/max per mechanism and each as a ratio to the cache-line floor.
   BENCH=full for more rounds. Never fails on a number. */
#define _GNU_SOURCE 1
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct shared {
    uint32_t ping __attribute__((aligned(128)));
    uint32_t pong __attribute__((aligned(128)));
} shared;

enum { SPIN, FUTEX, PIPE };

static void pin(int cpu) {
    cpu_set_t set;
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* Wait until *w == v: spin for the floor, futex otherwise. */
static void await(uint32_t *w, uint32_t v, int kind) {
    uint32_t cur;
    while ((cur = __atomic_load_n(w, __ATOMIC_ACQUIRE)) != v)
        if (kind == FUTEX) ipc_futex_wait(w, cur, IPC_FOREVER);
}

static void post(uint32_t *w, uint32_t v, int kind) {
    __atomic_store_n(w, v, __ATOMIC_RELEASE);
    if (kind == FUTEX) ipc_futex_wake(w, 1);
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Run n round trips of one kind; fills lat[] with ns per round trip. */
static void run(int kind, int n, int64_t *lat) {
    ipc_shm shm;
    shared *sh;
    int p1[2], p2[2], i;
    char b = 0;
    pid_t pid;
    if (ipc_shm_create(&shm, NULL, sizeof(shared), NULL) != 0 || pipe(p1) || pipe(p2)) exit(1);
    sh = (shared *)shm.addr;
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        pin(1);
        for (i = 1; i <= n; i++) {
            if (kind == PIPE) {
                if (read(p1[0], &b, 1) != 1 || write(p2[1], &b, 1) != 1) _exit(1);
            } else {
                await(&sh->ping, (uint32_t)i, kind);
                post(&sh->pong, (uint32_t)i, kind);
            }
        }
        _exit(0);
    }
    pin(0);
    for (i = 1; i <= n; i++) {
        int64_t t0 = ipc_time_now();
        if (kind == PIPE) {
            if (write(p1[1], &b, 1) != 1 || read(p2[0], &b, 1) != 1) exit(1);
        } else {
            post(&sh->ping, (uint32_t)i, kind);
            await(&sh->pong, (uint32_t)i, kind);
        }
        lat[i - 1] = ipc_time_now() - t0;
    }
    waitpid(pid, NULL, 0);
    close(p1[0]), close(p1[1]), close(p2[0]), close(p2[1]);
    ipc_shm_close(&shm);
}

static void machine(void) {
    struct utsname u;
    char line[256], model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) snprintf(model, sizeof model, "%s", c + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    if (f) fclose(f);
    uname(&u);
    printf("machine: %s, %ld cores, Linux %s\n", model, sysconf(_SC_NPROCESSORS_ONLN), u.release);
}

int main(void) {
    static const char *names[] = {"cache-line spin", "futex wait/wake", "pipe write/read"};
    const char *mode = getenv("BENCH");
    int n = (mode && strcmp(mode, "full") == 0) ? 1000000 : 100000, rounds = 3, k, r;
    int64_t *lat = (int64_t *)malloc(sizeof(int64_t) * (size_t)n);
    int64_t p50[3] = {0}, best[3][4];
    if (!lat) return 1;
    machine();
    printf("round trip, 1 byte/1 word, %d round trips x %d interleaved rounds (best round)\n", n,
           rounds);
    for (k = 0; k < 3; k++)
        best[k][0] = INT64_MAX;
    /* Interleave the kinds over several rounds: the machine's speed drifts. */
    for (r = 0; r < rounds; r++)
        for (k = 0; k < 3; k++) {
            fprintf(stderr, "\r  round %d/%d: %-16s", r + 1, rounds, names[k]);
            run(k, n, lat);
            qsort(lat, (size_t)n, sizeof lat[0], cmp64);
            if (lat[n / 2] < best[k][0]) {
                best[k][0] = lat[n / 2];
                best[k][1] = lat[(int64_t)n * 99 / 100];
                best[k][2] = lat[(int64_t)n * 999 / 1000];
                best[k][3] = lat[n - 1];
            }
        }
    fprintf(stderr, "\r%40s\r", "");
    printf("%-18s %10s %10s %10s %10s %12s\n", "mechanism", "p50 ns", "p99 ns", "p99.9 ns",
           "max ns", "p50 / floor");
    for (k = 0; k < 3; k++) {
        p50[k] = best[k][0];
        printf("%-18s %10lld %10lld %10lld %10lld %11.1fx\n", names[k], (long long)best[k][0],
               (long long)best[k][1], (long long)best[k][2], (long long)best[k][3],
               (double)p50[k] / (double)(p50[0] ? p50[0] : 1));
    }
    free(lat);
    return 0;
}
