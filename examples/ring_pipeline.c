/* examples/ring_pipeline.c - a producer process streams records to a consumer process
   through a named lock-free ring in shared memory.

   The parent creates the ring "/ipc-example-pipeline" as the producer and forks. The
   child opens it by name as the consumer (any unrelated process could do the same),
   receives records until the producer closes, checks them, and reports. Closing the
   producer is the end-of-stream signal: once the consumer has drained every message,
   ipc_ring_recv returns -EPIPE.

   Build and run:  make demo   (or: cc -I. examples/ring_pipeline.c -pthread && ./a.out) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NAME    "/ipc-example-pipeline"
#define RECORDS 1000000

struct record {
    uint64_t seq;
    double value;
    char label[16];
};

static int consume(void) {
    struct record rec;
    uint64_t expected = 0;
    double sum = 0;
    ipc_ring ring;
    ssize_t n;
    int r = ipc_ring_open(&ring, NAME, IPC_CONSUMER);
    if (r < 0) {
        fprintf(stderr, "consumer: ipc_ring_open: %s\n", ipc_strerror(r));
        return 1;
    }
    /* A 5 s timeout: a producer that hangs is reported instead of waited on forever. */
    while ((n = ipc_ring_recv(&ring, &rec, sizeof rec, 5000000000LL)) > 0) {
        if ((size_t)n != sizeof rec || rec.seq != expected) {
            fprintf(stderr, "consumer: record %llu out of order\n", (unsigned long long)rec.seq);
            return 1;
        }
        expected++;
        sum += rec.value;
    }
    printf("consumer: %llu records, sum of values %.0f, then \"%s\" (end of stream)\n",
           (unsigned long long)expected, sum, ipc_strerror((int)n));
    ipc_ring_close(&ring);
    return n == -EPIPE && expected == RECORDS ? 0 : 1;
}

int main(void) {
    ipc_ring_opts opts = {0};
    ipc_ring ring;
    int64_t t0;
    uint64_t i;
    int r, status;
    pid_t child;

    opts.capacity = 256 * 1024; /* bytes of message space */
    ipc_ring_unlink(NAME);      /* a leftover from a crashed run */
    r = ipc_ring_create(&ring, NAME, IPC_PRODUCER, &opts);
    if (r < 0) {
        fprintf(stderr, "producer: ipc_ring_create: %s\n", ipc_strerror(r));
        return 1;
    }
    printf("producer: created ring %s, %zu-byte messages at most\n", NAME, ipc_ring_max_msg(&ring));

    fflush(stdout); /* or the child inherits unprinted output */
    child = fork();
    if (child == 0) {
        r = consume();
        fflush(stdout);
        _exit(r);
    }

    t0 = ipc_time_now();
    for (i = 0; i < RECORDS; i++) {
        struct record rec;
        rec.seq = i;
        rec.value = (double)(i % 100);
        snprintf(rec.label, sizeof rec.label, "rec-%llu", (unsigned long long)(i % 1000));
        r = ipc_ring_send(&ring, &rec, sizeof rec, 5000000000LL);
        if (r < 0) {
            fprintf(stderr, "producer: send: %s\n", ipc_strerror(r));
            break;
        }
    }
    printf("producer: sent %llu records of %zu bytes in %.1f ms; closing\n", (unsigned long long)i,
           sizeof(struct record), (double)(ipc_time_now() - t0) / 1e6);
    ipc_ring_close(&ring); /* the consumer drains, then sees -EPIPE */
    ipc_ring_unlink(NAME);
    waitpid(child, &status, 0);
    return r == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
