/* tests/bench/peers/ring.c - `make bench-peers`: ipc.h's SPSC ring, the reference row.

   Anonymous rings (a sealed memfd) made by the first side before it forks the second, which
   attaches through the inherited fd; round trips over two rings (one each way, 64 KiB),
   one way over one ring (1 MiB, the default capacity); prefaulted, default (adaptive) spin,
   ipc_ring_send / ipc_ring_recv copying each message in and out. */
#include "peer.h"

#define IPC_IMPLEMENTATION
#include "ipc.h"

typedef struct chan {
    ipc_ring tx, rx; /* this side sends on tx and receives from rx */
} chan;

static chan made, attached; /* made: the first side's; attached: the second side's */

static int ring_make(const peer_env *env) {
    ipc_ring_opts o;
    int r;
    memset(&o, 0, sizeof o);
    o.capacity = env->pp ? 64 * 1024 : 1u << 20;
    o.flags = IPC_RING_PREFAULT;
    r = ipc_ring_create(&made.tx, NULL, IPC_PRODUCER, &o);
    if (r == 0 && env->pp) r = ipc_ring_create(&made.rx, NULL, IPC_CONSUMER, &o);
    return r;
}

static int ring_open(const peer_env *env, int second, void **h) {
    int r;
    if (!second) {
        *h = &made;
        return 0;
    }
    /* Our copies of the first side's handles hold no role: attach anew through their fds,
       then drop the copies (which leaves the first side's roles alone). */
    r = ipc_ring_attach_fd(&attached.rx, ipc_ring_fd(&made.tx), IPC_CONSUMER);
    if (r == 0 && env->pp)
        r = ipc_ring_attach_fd(&attached.tx, ipc_ring_fd(&made.rx), IPC_PRODUCER);
    ipc_ring_close(&made.tx);
    if (env->pp) ipc_ring_close(&made.rx);
    *h = &attached;
    return r;
}

static int ring_send(void *h, const void *msg, size_t len) {
    return ipc_ring_send(&((chan *)h)->tx, msg, len, IPC_FOREVER);
}

static long ring_recv(void *h, void *buf, size_t cap) {
    return (long)ipc_ring_recv(&((chan *)h)->rx, buf, cap, IPC_FOREVER);
}

static void ring_close(void *h) {
    chan *c = (chan *)h;
    if (ipc_ring_fd(&c->tx) >= 0) ipc_ring_close(&c->tx);
    if (ipc_ring_fd(&c->rx) >= 0) ipc_ring_close(&c->rx);
}

int main(int argc, char **argv) {
    static char name[64];
    peer_lib lib;
    memset(&lib, 0, sizeof lib);
    snprintf(name, sizeof name, "ipc.h %d.%d.%d SPSC ring", IPC_VERSION_MAJOR, IPC_VERSION_MINOR,
             IPC_VERSION_PATCH);
    lib.name = name;
    lib.ref = 1;
    lib.make = ring_make;
    lib.open = ring_open;
    lib.send = ring_send;
    lib.recv = ring_recv;
    lib.close = ring_close;
    lib.strerror = ipc_strerror;
    return peer_main(&lib, argc, argv);
}
