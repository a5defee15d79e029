/* tests/bench/ringmp.c - the ring kinds side by side, in one run: SPSC, MPSC, MPMC and
   broadcast with one producer and one consumer (the price of the slot kinds' compare-and-
   swap and sequence words), broadcast to 2, 4 and 8 readers, then MPMC and MPSC
   throughput as producers and consumers are added.

   Every side is a process pinned to core (index % cores); 64-byte messages through
   ipc_ring_send / ipc_ring_recv with IPC_FOREVER; each producer sends its share, closes,
   and the consumers drain until -EPIPE. Timed from the start signal to the last consumer's
   end. Interleaved rounds, the best counts (the machine is shared and drifts). With more
   sides than cores the figures measure the scheduler as much as the ring: the table says
   how many cores there were. BENCH=full for longer rounds; BENCH_MAXP=n to scale to n
   producers and consumers (default: 2 x cores, at most 16). Never fails on a number. */
#define _GNU_SOURCE 1
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include "bench.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG 64

typedef struct shared {
    uint32_t go __attribute__((aligned(128)));
    uint32_t ready __attribute__((aligned(128)));
    uint64_t received, sum;
    int failed;
} shared;

static long ncpu;

static void pin(int i) {
    cpu_set_t set;
    if (ncpu < 2) return;
    CPU_ZERO(&set);
    CPU_SET(i % (int)ncpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void fail(shared *sh, const char *what, int r) {
    fprintf(stderr, "\n%s: %s\n", what, ipc_strerror(r));
    __atomic_store_n(&sh->failed, 1, __ATOMIC_RELAXED);
    _exit(1);
}

static void wait_go(shared *sh) {
    while (!__atomic_load_n(&sh->go, __ATOMIC_ACQUIRE))
        sched_yield();
}

static void send_share(shared *sh, ipc_ring *me, long share) {
    unsigned char buf[MSG];
    long k;
    int r;
    memset(buf, 0, sizeof buf);
    for (k = 0; k < share; k++) {
        buf[0] = (unsigned char)k;
        if ((r = ipc_ring_send(me, buf, MSG, IPC_FOREVER)) != 0) fail(sh, "send", r);
    }
    ipc_ring_close(me);
}

/* One measurement: kind, p producers, c consumers, n messages in all. Messages/s, or -1.
   The parent creates the ring as its producer. SPSC: it stays the producer. Slot kinds:
   it closes once every side has attached (a role that never attached cannot end it). */
static double run(unsigned kind, int p, int c, long n) {
    shared *sh = (shared *)mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    /* SPSC and broadcast: the parent is the one producer; p counts nothing */
    int spsc = kind == IPC_RING_SPSC || (kind & 0xffu) == IPC_RING_BROADCAST, i, r, st, ok = 1;
    ipc_ring_opts o;
    ipc_ring ring;
    int64_t t0;
    if (sh == MAP_FAILED) return -1;
    memset(&o, 0, sizeof o);
    o.capacity = 1u << 20;
    o.flags = kind | IPC_RING_PREFAULT | (kind == IPC_RING_SPSC ? 0 : IPC_RING_MSG(MSG));
    if ((r = ipc_ring_create(&ring, NULL, IPC_PRODUCER, &o)) != 0) fail(sh, "create", r);
    if (spsc) p = 0;
    fflush(NULL);
    for (i = 0; i < c + p; i++)
        if (fork() == 0) {
            int role = i < c ? IPC_CONSUMER : IPC_PRODUCER;
            ipc_ring me;
            pin(spsc ? 1 : i);
            if ((r = ipc_ring_attach_fd(&me, ipc_ring_fd(&ring), role)) != 0) fail(sh, "attach", r);
            ipc_ring_close(&ring); /* the fork copy: unmapped, the parent's role untouched */
            __atomic_fetch_add(&sh->ready, 1, __ATOMIC_RELEASE);
            wait_go(sh);
            if (role == IPC_PRODUCER) {
                send_share(sh, &me, n / p + (i - c < n % p));
            } else {
                unsigned char buf[MSG];
                uint64_t got = 0, sum = 0;
                for (;;) {
                    ssize_t k = ipc_ring_recv(&me, buf, sizeof buf, IPC_FOREVER);
                    if (k == -EPIPE) break;
                    if (k != MSG) fail(sh, "recv", (int)k);
                    got++;
                    sum += buf[0];
                }
                __atomic_fetch_add(&sh->received, got, __ATOMIC_RELAXED);
                __atomic_fetch_add(&sh->sum, sum, __ATOMIC_RELAXED);
                ipc_ring_close(&me);
            }
            _exit(0);
        }
    while (__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE) < (uint32_t)(c + p))
        usleep(1000);
    if (!spsc) ipc_ring_close(&ring);
    pin(0);
    t0 = ipc_time_now();
    __atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);
    if (spsc) send_share(sh, &ring, n);
    while (wait(&st) > 0)
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) ok = 0;
    t0 = ipc_time_now() - t0;
    /* broadcast: every reader gets every message */
    ok = ok && !sh->failed &&
         sh->received == (uint64_t)n * (uint64_t)((kind & 0xffu) == IPC_RING_BROADCAST ? c : 1);
    munmap(sh, sizeof *sh);
    return ok ? (double)n / ((double)t0 / 1e9) : -1;
}

static void machine(void) {
    struct utsname u;
    char model[256];
    bench_cpu_model(model, sizeof model);
    uname(&u);
    printf("machine: %s, %ld cores, Linux %s\n", model, ncpu, u.release);
}

int main(void) {
    static const unsigned kinds[3] = {IPC_RING_SPSC, IPC_RING_MPSC, IPC_RING_MPMC};
    static const char *knames[3] = {"SPSC", "MPSC", "MPMC"};
    const char *mode = getenv("BENCH"), *maxp = getenv("BENCH_MAXP");
    int full, rounds, r, k, p, c, top, np = 0, counts[8];
    long n;
    double one[4] = {0}, grid[8][8][2], bc[8] = {0};
    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    full = mode && strcmp(mode, "full") == 0;
    rounds = full ? 5 : 3;
    n = full ? 10000000 : 2000000;
    top = maxp ? atoi(maxp) : (int)(2 * ncpu > 16 ? 16 : 2 * ncpu);
    if (top < 1) top = 1;
    for (p = 1; p <= top && np < 8; p *= 2)
        counts[np++] = p;
    memset(grid, 0, sizeof grid);
    machine();
    for (r = 0; r < rounds; r++) {
        for (k = 0; k < 4; k++) {
            double v;
            fprintf(stderr, "\r  round %d/%d: %s 1 x 1          ", r + 1, rounds,
                    k < 3 ? knames[k] : "broadcast");
            v = run(k < 3 ? kinds[k] : IPC_RING_BROADCAST, 1, 1, n);
            if (v > one[k]) one[k] = v;
        }
        for (c = 1; c < 4; c++) { /* 2, 4, 8 readers */
            double v;
            fprintf(stderr, "\r  round %d/%d: broadcast to %d          ", r + 1, rounds, 1 << c);
            v = run(IPC_RING_BROADCAST, 1, 1 << c, n / 2);
            if (v > bc[c]) bc[c] = v;
        }
        for (p = 0; p < np; p++)
            for (c = 0; c < np; c++)
                for (k = 0; k < 2; k++) {
                    double v;
                    if (k == 0 && c > 0) continue; /* MPSC: one consumer */
                    fprintf(stderr, "\r  round %d/%d: %s %d x %d          ", r + 1, rounds,
                            knames[k + 1], counts[p], counts[c]);
                    v = run(kinds[k + 1], counts[p], counts[c], n / 2);
                    if (v > grid[p][c][k]) grid[p][c][k] = v;
                }
    }
    fprintf(stderr, "\r%50s\r", "");
    printf("\n64-byte messages, one producer and one consumer, best of %d rounds\n", rounds);
    printf("  %-8s %14s %10s\n", "kind", "msgs/s", "/ SPSC");
    for (k = 0; k < 3; k++)
        printf("  %-8s %14.0f %9.2fx\n", knames[k], one[k], one[k] / one[0]);
    printf("  %-8s %14.0f %9.2fx\n", "bcast", one[3], one[3] / one[0]);
    printf("  MPMC / SPSC %.2fx [>= 0.5]; broadcast to one reader / SPSC %.2fx [>= 0.7]\n",
           one[2] / one[0], one[3] / one[0]);
    printf("\nbroadcast (lossless), messages/s each reader receives\n");
    printf("  %2d reader   %12.0f\n", 1, one[3]);
    for (c = 1; c < 4; c++)
        printf("  %2d readers  %12.0f  (%.2fx of one reader)\n", 1 << c, bc[c], bc[c] / one[3]);
    printf("\nMPMC, million msgs/s in all; rows: producers, columns: consumers (%ld cores)\n",
           ncpu);
    printf("  %4s", "");
    for (c = 0; c < np; c++)
        printf(" %8d", counts[c]);
    printf("\n");
    for (p = 0; p < np; p++) {
        printf("  %4d", counts[p]);
        for (c = 0; c < np; c++)
            printf(" %8.2f", grid[p][c][1] / 1e6);
        printf("\n");
    }
    printf("\nMPSC, million msgs/s in all, one consumer\n");
    for (p = 0; p < np; p++)
        printf("  %2d producer%s %8.2f\n", counts[p], counts[p] > 1 ? "s" : " ",
               grid[p][0][0] / 1e6);
    return 0;
}
