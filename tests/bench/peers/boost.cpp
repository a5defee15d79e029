/* tests/bench/peers/boost.cpp - `make bench-peers`: Boost.Interprocess message_queue, named
   queues in shared memory (one each way for round trips). The first side creates them
   before it forks the second, which opens them by name; the run process removes them.
   Messages of at most 64 bytes, QUEUE_DEPTH of them (zmq's default high-water mark is
   1000 messages); send / receive copy each message in and out, priority 0. */
#include "peer.h"

#include <boost/interprocess/ipc/message_queue.hpp>
#include <boost/version.hpp>
#include <memory>

namespace bip = boost::interprocess;

enum { QUEUE_DEPTH = 1024 };

struct chan {
    bip::message_queue *tx, *rx;
};

/* [0] carries first side -> second side, [1] the way back */
static std::unique_ptr<bip::message_queue> queues[2];
static chan mine;
static char last_error[160];

static void queue_name(char *out, size_t cap, const peer_env *env, int i) {
    snprintf(out, cap, "%s-%c", env->tag, (char)('0' + i));
}

/* Exceptions stop at this file's functions: a code for the harness, the text kept for
   boost_error. */
static int caught(const std::exception &e) {
    const bip::interprocess_exception *ie = dynamic_cast<const bip::interprocess_exception *>(&e);
    int native = ie ? ie->get_native_error() : 0;
    snprintf(last_error, sizeof last_error, "%s", e.what());
    return native > 0 ? -native : -EIO;
}

static const char *boost_error(int err) {
    return last_error[0] ? last_error : strerror(-err);
}

static int boost_make(const peer_env *env) {
    char name[sizeof env->tag + 8];
    try {
        for (int i = 0; i < 1 + env->pp; i++) {
            queue_name(name, sizeof name, env, i);
            queues[i].reset(new bip::message_queue(bip::create_only, name, QUEUE_DEPTH, PEER_SIZE));
        }
    } catch (const std::exception &e) {
        return caught(e);
    }
    return 0;
}

static int boost_open(const peer_env *env, int second, void **h) {
    char name[sizeof env->tag + 8];
    try {
        if (second) /* our own mapping rather than the first side's inherited one */
            for (int i = 0; i < 1 + env->pp; i++) {
                queue_name(name, sizeof name, env, i);
                queues[i].reset(new bip::message_queue(bip::open_only, name));
            }
    } catch (const std::exception &e) {
        return caught(e);
    }
    mine.tx = queues[second ? 1 : 0].get();
    mine.rx = queues[second ? 0 : 1].get();
    *h = &mine;
    return 0;
}

static int boost_send(void *h, const void *msg, size_t len) {
    try {
        static_cast<chan *>(h)->tx->send(msg, len, 0);
    } catch (const std::exception &e) {
        return caught(e);
    }
    return 0;
}

static long boost_recv(void *h, void *buf, size_t cap) {
    try {
        bip::message_queue::size_type len = 0;
        unsigned prio = 0;
        static_cast<chan *>(h)->rx->receive(buf, cap, len, prio);
        return static_cast<long>(len);
    } catch (const std::exception &e) {
        return caught(e);
    }
}

static void boost_close(void *h) {
    (void)h;
    queues[0].reset();
    queues[1].reset();
}

/* The run process: after both sides ended, however they ended. */
static void boost_remove(const peer_env *env) {
    char name[sizeof env->tag + 8];
    for (int i = 0; i < 2; i++) {
        queue_name(name, sizeof name, env, i);
        bip::message_queue::remove(name);
    }
}

int main(int argc, char **argv) {
    static char name[64];
    peer_lib lib;
    memset(&lib, 0, sizeof lib);
    snprintf(name, sizeof name, "Boost %d.%d message_queue", BOOST_VERSION / 100000,
             BOOST_VERSION / 100 % 1000);
    lib.name = name;
    lib.make = boost_make;
    lib.open = boost_open;
    lib.send = boost_send;
    lib.recv = boost_recv;
    lib.close = boost_close;
    lib.remove = boost_remove;
    lib.strerror = boost_error;
    return peer_main(&lib, argc, argv);
}
