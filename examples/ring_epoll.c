/* examples/ring_epoll.c - several rings and a socket in one epoll loop.

   A server that waits for many things at once usually sits in epoll_wait. A ring has no
   fd of its own to wait on, so ipc_ring_pollfd hands out one: an eventfd that becomes
   readable when the ring has messages. Nothing costs a system call while messages flow:
   the doorbell rings only after a receive found the ring empty.

   Three workers each feed a ring of their own (one SPSC, one MPSC shared by two of them)
   and a fourth talks over a Unix socket. The loop drains whatever is ready, with timeout
   0 until -EAGAIN (which re-arms the doorbell), and ends when every ring says -EPIPE (its
   producers are gone and it is empty) and the socket is at end of stream.

   Build and run:  make build/examples/ring_epoll && build/examples/ring_epoll */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#define PER_WORKER 20000

static void die(const char *what, int r) {
    fprintf(stderr, "ring_epoll: %s: %s\n", what, ipc_strerror(r));
    exit(1);
}

/* A worker: attach to the ring by its fd and send numbered messages in bursts. */
static void worker(int ring_fd, int id) {
    ipc_ring r;
    int i, rc = ipc_ring_attach_fd(&r, ring_fd, IPC_PRODUCER);
    if (rc) die("worker attach", rc);
    for (i = 0; i < PER_WORKER; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "w%d #%d", id, i);
        if ((rc = ipc_ring_send(&r, msg, (size_t)n, IPC_FOREVER)) != 0) die("send", rc);
        if (i % 5000 == 4999) usleep(20000); /* a pause: the server's rings run dry */
    }
    ipc_ring_close(&r);
}

int main(void) {
    enum { NRINGS = 2 };
    ipc_ring rings[NRINGS];
    ipc_ring_opts o;
    int ep, sv[2], i, rc, open_rings = NRINGS, sock_open = 1, st;
    long got[NRINGS] = {0}, lines = 0, wakeups = 0;
    struct epoll_event ev;

    /* ring 0: SPSC for worker 0; ring 1: MPSC for workers 1 and 2 */
    for (i = 0; i < NRINGS; i++) {
        memset(&o, 0, sizeof o);
        o.capacity = 64 * 1024;
        o.flags = i == 0 ? IPC_RING_SPSC : IPC_RING_MPSC | IPC_RING_MSG(32);
        if ((rc = ipc_ring_create(&rings[i], NULL, IPC_CONSUMER, &o)) != 0) die("create", rc);
    }
    if ((rc = ipc_sock_pair(sv, IPC_SOCK_STREAM)) != 0) die("socketpair", rc);

    fflush(NULL);
    for (i = 0; i < 4; i++) {
        pid_t pid = fork();
        if (pid < 0) die("fork", -1);
        if (pid > 0) continue;
        close(sv[0]);
        if (i < 3) {
            worker(ipc_ring_fd(&rings[i == 0 ? 0 : 1]), i);
        } else { /* the socket talker */
            int k;
            for (k = 0; k < 5; k++) {
                char line[32];
                int n = snprintf(line, sizeof line, "hello %d\n", k);
                ipc_sock_send(sv[1], line, (size_t)n, IPC_FOREVER, NULL);
                usleep(10000);
            }
        }
        _exit(0);
    }
    close(sv[1]);

    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1", -1);
    for (i = 0; i < NRINGS; i++) {
        int fd = ipc_ring_pollfd(&rings[i]);
        if (fd < 0) die("pollfd", fd);
        ev.events = EPOLLIN;
        ev.data.u32 = (uint32_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    ev.events = EPOLLIN;
    ev.data.u32 = NRINGS; /* the socket */
    epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev);

    while (open_rings > 0 || sock_open) {
        struct epoll_event ready[8];
        int n = epoll_wait(ep, ready, 8, 10000), k;
        if (n <= 0) die("epoll_wait: nothing for 10 s", -1);
        wakeups++;
        for (k = 0; k < n; k++) {
            uint32_t which = ready[k].data.u32;
            if (which == NRINGS) { /* the socket: what is there, or its end */
                char buf[256];
                ssize_t m = ipc_sock_recv(sv[0], buf, sizeof buf, 0);
                if (m > 0) {
                    for (i = 0; i < m; i++)
                        lines += buf[i] == '\n';
                } else if (m == -EPIPE) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, sv[0], NULL);
                    sock_open = 0;
                }
                continue;
            }
            for (;;) { /* drain the ring: -EAGAIN re-arms its doorbell */
                char msg[64];
                ssize_t m = ipc_ring_recv(&rings[which], msg, sizeof msg, 0);
                if (m > 0) {
                    got[which]++;
                    continue;
                }
                if (m == -EPIPE) { /* its producers are gone and it is empty */
                    epoll_ctl(ep, EPOLL_CTL_DEL, ipc_ring_pollfd(&rings[which]), NULL);
                    open_rings--;
                } else if (m != -EAGAIN) {
                    die("recv", (int)m);
                }
                break;
            }
        }
    }
    while (wait(&st) > 0) {
    }
    printf("ring 0 (SPSC, one worker):  %ld messages\n", got[0]);
    printf("ring 1 (MPSC, two workers): %ld messages\n", got[1]);
    printf("socket: %ld lines; %ld epoll wake-ups in all\n", lines, wakeups);
    for (i = 0; i < NRINGS; i++)
        ipc_ring_close(&rings[i]); /* closes the doorbells too */
    close(ep);
    close(sv[0]);
    return got[0] == PER_WORKER && got[1] == 2 * PER_WORKER && lines == 5 ? 0 : 1;
}
