/* tests/bench/peers/zmq.c - `make bench-peers`: ZeroMQ, one PAIR socket per side over ipc://
   (a Unix socket in the measurement's directory); the first side binds, the second
   connects. Default context (one I/O thread, pinned with its side) and default high-water
   marks (1000 messages); zmq_send / zmq_recv copy each message in and out. */
#include "peer.h"

#include <zmq.h>

typedef struct chan {
    void *ctx, *sock;
} chan;

static chan z;

static int zm_fail(void) {
    return -zmq_errno();
}

static const char *zm_error(int err) {
    return zmq_strerror(-err);
}

static int zm_open(const peer_env *env, int second, void **h) {
    char ep[sizeof env->dir + 16];
    snprintf(ep, sizeof ep, "ipc://%s/zmq", env->dir);
    if (!(z.ctx = zmq_ctx_new())) return zm_fail();
    if (!(z.sock = zmq_socket(z.ctx, ZMQ_PAIR))) return zm_fail();
    if ((second ? zmq_connect(z.sock, ep) : zmq_bind(z.sock, ep)) != 0) return zm_fail();
    *h = &z;
    return 0;
}

static int zm_send_msg(void *h, const void *msg, size_t len) {
    int k;
    while ((k = zmq_send(((chan *)h)->sock, msg, len, 0)) < 0 && zmq_errno() == EINTR)
        ;
    return k == (int)len ? 0 : k < 0 ? zm_fail() : -EIO;
}

static long zm_recv_msg(void *h, void *buf, size_t cap) {
    int k;
    while ((k = zmq_recv(((chan *)h)->sock, buf, cap, 0)) < 0 && zmq_errno() == EINTR)
        ;
    return k < 0 ? zm_fail() : k;
}

static void zm_close_chan(void *h) {
    chan *c = (chan *)h;
    int linger = 0; /* both sides are done: nothing is left to deliver */
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(c->sock);
    zmq_ctx_term(c->ctx);
}

int main(int argc, char **argv) {
    static char name[64];
    peer_lib lib;
    int major, minor, patch;
    zmq_version(&major, &minor, &patch);
    memset(&lib, 0, sizeof lib);
    snprintf(name, sizeof name, "ZeroMQ %d.%d.%d PAIR ipc://", major, minor, patch);
    lib.name = name;
    lib.open = zm_open;
    lib.send = zm_send_msg;
    lib.recv = zm_recv_msg;
    lib.close = zm_close_chan;
    lib.strerror = zm_error;
    return peer_main(&lib, argc, argv);
}
