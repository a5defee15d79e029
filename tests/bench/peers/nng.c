/* tests/bench/peers/nng.c - `make bench-peers`: nng, one pair0 socket per side over ipc://
   (a Unix socket in the measurement's directory); the first side listens, the second dials
   in the background (so the order the two start in does not matter). Send and receive
   buffers of 1024 messages each (pair0's default is none: every send waits for the receiver,
   ~100x fewer messages per second; zmq's default high-water mark is 1000); nng_send /
   nng_recv copy each message in and out. */
#include "peer.h"

#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>

static nng_socket sock;

static const char *ng_error(int err) {
    return nng_strerror(-err);
}

static int ng_open(const peer_env *env, int second, void **h) {
    char url[sizeof env->dir + 16];
    int r;
    snprintf(url, sizeof url, "ipc://%s/nng", env->dir);
    if ((r = nng_pair0_open(&sock)) != 0) return -r;
    if ((r = nng_socket_set_int(sock, NNG_OPT_SENDBUF, 1024)) != 0) return -r;
    if ((r = nng_socket_set_int(sock, NNG_OPT_RECVBUF, 1024)) != 0) return -r;
    r = second ? nng_dial(sock, url, NULL, NNG_FLAG_NONBLOCK) : nng_listen(sock, url, NULL, 0);
    if (r != 0) return -r;
    *h = &sock;
    return 0;
}

static int ng_send_msg(void *h, const void *msg, size_t len) {
    int r = nng_send(*(nng_socket *)h, (void *)(uintptr_t)msg, len, 0);
    return r ? -r : 0;
}

static long ng_recv_msg(void *h, void *buf, size_t cap) {
    size_t len = cap;
    int r = nng_recv(*(nng_socket *)h, buf, &len, 0);
    return r ? -r : (long)len;
}

static void ng_close_chan(void *h) {
    nng_close(*(nng_socket *)h);
}

int main(int argc, char **argv) {
    static char name[64];
    peer_lib lib;
    memset(&lib, 0, sizeof lib);
    snprintf(name, sizeof name, "nng %s pair0 ipc://", nng_version());
    lib.name = name;
    lib.open = ng_open;
    lib.send = ng_send_msg;
    lib.recv = ng_recv_msg;
    lib.close = ng_close_chan;
    lib.strerror = ng_error;
    return peer_main(&lib, argc, argv);
}
