/* examples/ring_zero_copy.c - zero-copy messages: the producer builds each message in
   place inside the shared ring, the consumer reads it in place, and no byte is copied.

   ipc_ring_reserve hands out a contiguous span in the ring even where the message crosses
   the end of the buffer (the data area is mapped twice, back to back). The producer
   writes a variable-length text line straight into it and ipc_ring_commit publishes only
   the bytes actually used. ipc_ring_peek gives the consumer a pointer into the ring;
   ipc_ring_release frees the space once it is done with it.

   The ring here is anonymous (a memfd): the child attaches through the inherited fd.

   Build and run:  make demo   (or: cc -I. examples/ring_zero_copy.c -pthread && ./a.out) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINES 200000

static int consume(int fd) {
    unsigned long lines = 0, bytes = 0, longest = 0;
    const void *msg;
    ipc_ring ring;
    ssize_t n;
    int r = ipc_ring_attach_fd(&ring, fd, IPC_CONSUMER);
    if (r < 0) {
        fprintf(stderr, "consumer: attach: %s\n", ipc_strerror(r));
        return 1;
    }
    while ((n = ipc_ring_peek(&ring, &msg, 5000000000LL)) > 0) {
        /* msg points into shared memory: parse it where it lies. */
        if (memcmp(msg, "line ", 5) != 0) return 1;
        if (lines == 0)
            printf("consumer: first message in place: \"%.*s\"\n", (int)n, (const char *)msg);
        lines++;
        bytes += (unsigned long)n;
        if ((unsigned long)n > longest) longest = (unsigned long)n;
        ipc_ring_release(&ring);
    }
    printf("consumer: %lu lines, %lu bytes, longest %lu bytes, read in place\n", lines, bytes,
           longest);
    ipc_ring_close(&ring);
    return n == -EPIPE && lines == LINES ? 0 : 1;
}

int main(void) {
    ipc_ring_opts opts = {0};
    ipc_ring ring;
    int i, r, status;
    pid_t child;

    opts.capacity = 64 * 1024;
    r = ipc_ring_create(&ring, NULL, IPC_PRODUCER, &opts); /* NULL name: anonymous */
    if (r < 0) {
        fprintf(stderr, "ipc_ring_create: %s\n", ipc_strerror(r));
        return 1;
    }
    printf("producer: anonymous ring, fd %d, messages up to %zu bytes\n", ipc_ring_fd(&ring),
           ipc_ring_max_msg(&ring));
    fflush(stdout); /* or the child inherits unprinted output */
    child = fork();
    if (child == 0) {
        int fd = ipc_ring_fd(&ring); /* our copy of the producer handle holds no role */
        r = consume(fd);
        fflush(stdout);
        _exit(r);
    }
    for (i = 0; i < LINES; i++) {
        char *p;
        int len;
        /* Reserve room for the longest line we might write, then commit what we wrote. */
        r = ipc_ring_reserve(&ring, 128, (void **)&p, 5000000000LL);
        if (r < 0) break;
        len = snprintf(p, 128, "line %d: %.*s", i, i % 97,
                       "abcdefghijklmnopqrstuvwxyz"
                       "abcdefghijklmnopqrstuvwxyz"
                       "abcdefghijklmnopqrstuvwxyz"
                       "abcdefghijklmnopqrstuvwxyz");
        r = ipc_ring_commit(&ring, (size_t)len);
        if (r < 0) break;
    }
    printf("producer: %d lines written in place; closing\n", i);
    ipc_ring_close(&ring);
    waitpid(child, &status, 0);
    return r == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
