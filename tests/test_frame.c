#include "harness.h"

/* tests/test_frame.c - section 8: whole messages over byte streams (le32 length + payload).
   Round trips over pipes, socketpairs and FIFOs, the wire format, size limits, truncation,
   deadlines and resumption of cut frames, fuzzed streams, shared FIFOs, signal storms and
   interop with Python. */

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS  ((int64_t)1000000)
#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/* ---- helpers ---- */

static uint32_t rnd_seed(uint32_t seed) {
    return seed * 2654435761u + 12345u; /* never 0 for the seeds used here */
}

static void put_le32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void close_fd(int fd) {
    CHECK_EQ(close(fd), 0);
}

static void mk_pipe(int p[2]) {
    CHECK_EQ(pipe(p), 0);
}

static void mk_socketpair(int p[2]) {
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
}

/* Bytes waiting to be read. */
static int queued(int fd) {
    int n = -1;
    CHECK_EQ(ioctl(fd, FIONREAD, &n), 0);
    return n;
}

static void raw_write(int fd, const void *p, size_t n) {
    if (n) CHECK_ERR(ipc_fd_write_all(fd, p, n, 5000 * MS, NULL), (ssize_t)n);
}

static void raw_header(int fd, uint32_t len) {
    unsigned char h[4];
    put_le32(h, len);
    raw_write(fd, h, 4);
}

/* A whole frame of message `seed`, written raw. */
static void raw_frame(int fd, size_t len, uint32_t seed) {
    unsigned char *b = th_xmalloc(len + 4);
    put_le32(b, (uint32_t)len);
    th_pat_fill(b + 4, len, seed);
    raw_write(fd, b, len + 4);
    free(b);
}

static void frame_on(ipc_frame *f, int fd, uint32_t max_msg, unsigned flags) {
    ipc_frame_opts o;
    memset(&o, 0, sizeof o);
    o.max_msg = max_msg;
    o.flags = flags;
    CHECK_ERR(ipc_frame_init(f, fd, &o), 0);
}

/* Receive one message and insist it is message `seed` of len bytes. */
#define CHECK_RECV(f, buf, cap, timeout, len, seed)                                                \
    do {                                                                                           \
        ssize_t rr_ = ipc_frame_recv((f), (buf), (cap), (timeout));                                \
        if (rr_ != (ssize_t)(len))                                                                 \
            th_fail(__FILE__, __LINE__, "recv of message %u: %zd (%s), want %zu",                  \
                    (unsigned)(seed), rr_, ipc_strerror((int)rr_), (size_t)(len));                 \
        th_pat_check(__FILE__, __LINE__, (buf), 0, (size_t)(len), (seed));                         \
    } while (0)

static void tmpdir_remove(const char *dir) {
    static const char *const names[] = {"fifo", "fifo2"};
    char path[256];
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    CHECK_EQ(rmdir(dir), 0);
}

/* Both ends of a stream of one kind, opened here (children inherit what they need). */
enum kind { K_PIPE, K_SOCK, K_FIFO };

typedef struct stream {
    int rfd, wfd;
    char dir[64];
    char path[128];
} stream;

static void stream_open(stream *s, enum kind k) {
    int p[2];
    s->dir[0] = 0;
    if (k == K_FIFO) {
        th_tmpdir(s->dir, sizeof s->dir);
        snprintf(s->path, sizeof s->path, "%s/fifo", s->dir);
        CHECK_ERR(ipc_fifo_create(s->path, 0), 0);
        s->rfd = ipc_fifo_open(s->path, IPC_FIFO_READ, 0);
        CHECK_OK(s->rfd);
        s->wfd = ipc_fifo_open(s->path, IPC_FIFO_WRITE, 2000 * MS);
        CHECK_OK(s->wfd);
        return;
    }
    if (k == K_SOCK)
        mk_socketpair(p);
    else
        mk_pipe(p);
    s->rfd = p[0];
    s->wfd = p[1];
}

/* Close what is still open (-1 = already closed) and remove a FIFO's directory. */
static void stream_close(stream *s) {
    if (s->rfd >= 0) close_fd(s->rfd);
    if (s->wfd >= 0) close_fd(s->wfd);
    s->rfd = s->wfd = -1;
    if (s->dir[0]) tmpdir_remove(s->dir);
    s->dir[0] = 0;
}

/* A stream of n frames with random sizes (mostly small, a few far larger than a pipe),
   message k carrying pattern seed + k. */
static size_t fuzz_size(uint32_t *s) {
    uint32_t c = th_rnd32(s) % 100;
    if (c < 50) return th_rnd32(s) % 101;
    if (c < 85) return th_rnd32(s) % 5001;
    if (c < 97) return th_rnd32(s) % 70001;
    return 70000 + th_rnd32(s) % 230001;
}

static unsigned char *frames_build(size_t n, uint32_t seed, size_t *sizes, size_t *total) {
    uint32_t s = rnd_seed(seed);
    size_t k, len = 0, off = 0;
    unsigned char *b;
    for (k = 0; k < n; k++) {
        sizes[k] = fuzz_size(&s);
        len += 4 + sizes[k];
    }
    b = th_xmalloc(len);
    for (k = 0; k < n; k++) {
        put_le32(b + off, (uint32_t)sizes[k]);
        th_pat_fill(b + off + 4, sizes[k], seed + (uint32_t)k);
        off += 4 + sizes[k];
    }
    *total = len;
    return b;
}

/* ---- children ---- */

/* Writes a byte string in random-sized raw pieces (some of 1..8 bytes) with random pauses. */
typedef struct feeder {
    int fd, other; /* the child's end; the parent's end, closed in the child */
    const unsigned char *data;
    size_t len;
    uint32_t seed;
    size_t max_chunk;
    unsigned pause_one_in; /* pause 0..199 us after about one piece in this many; 0 = never */
    int may_be_cut;        /* the reader may leave early: -EPIPE ends the feed quietly */
} feeder;

static void feeder_child(void *arg) {
    feeder *x = (feeder *)arg;
    uint32_t s = rnd_seed(x->seed + 777);
    size_t off = 0;
    ssize_t r;
    if (x->other >= 0) close_fd(x->other);
    while (off < x->len) {
        size_t n = th_rnd32(&s) % 4 == 0 ? 1 + th_rnd32(&s) % 8 : 1 + th_rnd32(&s) % x->max_chunk;
        if (n > x->len - off) n = x->len - off;
        r = ipc_fd_write_all(x->fd, x->data + off, n, 5000 * MS, NULL);
        if (r == -EPIPE && x->may_be_cut) break;
        CHECK_ERR(r, (ssize_t)n);
        off += n;
        if (x->pause_one_in && th_rnd32(&s) % x->pause_one_in == 0) th_sleep_us(th_rnd32(&s) % 200);
    }
    close_fd(x->fd);
}

static pid_t feed(int fd, int other, const unsigned char *data, size_t len, uint32_t seed,
                  size_t max_chunk, unsigned pause_one_in, int may_be_cut) {
    static feeder x; /* copied into the child by fork */
    pid_t pid;
    x.fd = fd;
    x.other = other;
    x.data = data;
    x.len = len;
    x.seed = seed;
    x.max_chunk = max_chunk;
    x.pause_one_in = pause_one_in;
    x.may_be_cut = may_be_cut;
    pid = th_spawn(feeder_child, &x);
    CHECK(pid > 0);
    return pid;
}

/* ---- round trips ---- */

static const size_t rt_sizes[] = {0, 1, 3, 4095, 4096, 65536, 1024 * 1024};
#define NSIZES (sizeof rt_sizes / sizeof rt_sizes[0])

/* Send every size in order as messages seed, seed+1, ... */
static void send_sizes(int fd, uint32_t seed) {
    unsigned char *m = th_xmalloc(MiB);
    ipc_frame f;
    size_t k;
    frame_on(&f, fd, 0, 0);
    for (k = 0; k < NSIZES; k++) {
        th_pat_fill(m, rt_sizes[k], seed + (uint32_t)k);
        CHECK_ERR(ipc_frame_send(&f, m, rt_sizes[k], 5000 * MS), (ssize_t)rt_sizes[k]);
    }
    free(m);
}

/* Receive them in order (into a buffer of exactly the largest size), then end of stream. */
static void recv_sizes(int fd, uint32_t seed) {
    unsigned char *m = th_xmalloc(MiB);
    ipc_frame f;
    size_t k;
    frame_on(&f, fd, 0, 0);
    for (k = 0; k < NSIZES; k++)
        CHECK_RECV(&f, m, MiB, 5000 * MS, rt_sizes[k], seed + (uint32_t)k);
    CHECK_ERR(ipc_frame_pending(&f), -ENOMSG);
    CHECK_ERR(ipc_frame_recv(&f, m, MiB, 5000 * MS), -EPIPE);
    CHECK_ERR(ipc_frame_recv(&f, m, MiB, 0), -EPIPE); /* and it stays so */
    free(m);
}

typedef struct rt_arg {
    int to_parent, from_parent; /* the child's ends */
    int close1, close2;         /* the parent's ends, closed in the child */
    const char *path, *path2;   /* FIFOs the child opens itself */
} rt_arg;

/* Child: send the sizes to the parent, then receive them back. */
static void rt_child(void *arg) {
    rt_arg *a = (rt_arg *)arg;
    int out = a->to_parent, in = a->from_parent;
    if (a->close1 >= 0) close_fd(a->close1);
    if (a->close2 >= 0) close_fd(a->close2);
    if (a->path) {
        out = ipc_fifo_open(a->path, IPC_FIFO_WRITE, 5000 * MS);
        CHECK_OK(out);
    }
    send_sizes(out, 100);
    close_fd(out);
    if (a->path2) {
        in = ipc_fifo_open(a->path2, IPC_FIFO_READ, 0);
        CHECK_OK(in);
    }
    recv_sizes(in, 200);
    close_fd(in);
}

TEST(frame_roundtrip_pipe) {
    int fds = th_fd_count(), up[2], down[2];
    rt_arg a;
    pid_t pid;
    mk_pipe(up);
    mk_pipe(down);
    a.to_parent = up[1];
    a.from_parent = down[0];
    a.close1 = up[0];
    a.close2 = down[1];
    a.path = a.path2 = NULL;
    pid = th_spawn(rt_child, &a);
    close_fd(up[1]);
    close_fd(down[0]);
    recv_sizes(up[0], 100);
    send_sizes(down[1], 200);
    close_fd(down[1]);
    CHECK_EQ(th_join(pid, 8000), 0);
    close_fd(up[0]);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(frame_roundtrip_fifo) {
    int fds = th_fd_count(), in, out;
    char dir[64], path[128], path2[128];
    rt_arg a;
    pid_t pid;
    th_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/fifo", dir);
    snprintf(path2, sizeof path2, "%s/fifo2", dir);
    CHECK_ERR(ipc_fifo_create(path, 0), 0);
    CHECK_ERR(ipc_fifo_create(path2, 0), 0);
    in = ipc_fifo_open(path, IPC_FIFO_READ, 0); /* at once, before the writer comes */
    CHECK_OK(in);
    memset(&a, 0, sizeof a);
    a.close1 = in;
    a.close2 = -1;
    a.path = path;
    a.path2 = path2;
    pid = th_spawn(rt_child, &a);
    recv_sizes(in, 100);
    close_fd(in);
    out = ipc_fifo_open(path2, IPC_FIFO_WRITE, 5000 * MS); /* waits for the child's open */
    CHECK_OK(out);
    send_sizes(out, 200);
    close_fd(out);
    CHECK_EQ(th_join(pid, 8000), 0);
    CHECK_ERR(ipc_fifo_unlink(path), 0);
    CHECK_ERR(ipc_fifo_unlink(path2), 0);
    tmpdir_remove(dir);
    CHECK_EQ(th_fd_count(), fds);
}

/* Child: echo every message back over the same socket (one ipc_frame both ways). */
static void echo_child(void *arg) {
    int *sv = (int *)arg;
    unsigned char *m = th_xmalloc(MiB);
    ipc_frame f;
    ssize_t r;
    close_fd(sv[0]);
    frame_on(&f, sv[1], 0, 0);
    while ((r = ipc_frame_recv(&f, m, MiB, 10000 * MS)) >= 0)
        CHECK_ERR(ipc_frame_send(&f, m, (size_t)r, 10000 * MS), r);
    CHECK_ERR(r, -EPIPE);
    close_fd(sv[1]);
    free(m);
}

TEST(frame_roundtrip_socketpair) {
    int fds = th_fd_count(), sv[2];
    unsigned char *m = th_xmalloc(MiB), *back = th_xmalloc(MiB);
    ipc_frame f;
    size_t k;
    pid_t pid;
    mk_socketpair(sv);
    pid = th_spawn(echo_child, sv);
    close_fd(sv[1]);
    frame_on(&f, sv[0], 0, 0);
    for (k = 0; k < 2 * NSIZES; k++) { /* every size, then every size again */
        size_t len = rt_sizes[k % NSIZES];
        th_pat_fill(m, len, 300 + (uint32_t)k);
        CHECK_ERR(ipc_frame_send(&f, m, len, 5000 * MS), (ssize_t)len);
        CHECK_RECV(&f, back, MiB, 5000 * MS, len, 300 + (uint32_t)k);
    }
    CHECK_EQ(shutdown(sv[0], SHUT_WR), 0); /* the child sees the end and closes */
    CHECK_ERR(ipc_frame_recv(&f, back, MiB, 5000 * MS), -EPIPE);
    CHECK_EQ(th_join(pid, 5000), 0);
    close_fd(sv[0]);
    free(m);
    free(back);
    CHECK_EQ(th_fd_count(), fds);
}

/* One thread sends while another receives on the same ipc_frame (documented as allowed).
   Frames up to 256 KiB: a single thread doing both would deadlock against the echo. */
typedef struct duplex_arg {
    ipc_frame *f;
    size_t n;
    const size_t *sizes;
} duplex_arg;

static void *duplex_sender(void *arg) {
    duplex_arg *d = (duplex_arg *)arg;
    unsigned char *m = th_xmalloc(256 * KiB);
    size_t k;
    for (k = 0; k < d->n; k++) {
        th_pat_fill(m, d->sizes[k], 400 + (uint32_t)k);
        CHECK_ERR(ipc_frame_send(d->f, m, d->sizes[k], 5000 * MS), (ssize_t)d->sizes[k]);
    }
    free(m);
    return NULL;
}

TEST(frame_socketpair_send_and_recv_threads) {
    int fds = th_fd_count(), sv[2];
    size_t sizes[40], k;
    unsigned char *back = th_xmalloc(256 * KiB);
    uint32_t s = rnd_seed(4);
    ipc_frame f;
    duplex_arg d;
    pthread_t t;
    pid_t pid;
    for (k = 0; k < 40; k++)
        sizes[k] = k % 4 == 0 ? th_rnd32(&s) % 64 : th_rnd32(&s) % (256 * KiB + 1);
    mk_socketpair(sv);
    pid = th_spawn(echo_child, sv);
    close_fd(sv[1]);
    frame_on(&f, sv[0], 0, 0);
    d.f = &f;
    d.n = 40;
    d.sizes = sizes;
    CHECK_EQ(pthread_create(&t, NULL, duplex_sender, &d), 0);
    for (k = 0; k < 40; k++)
        CHECK_RECV(&f, back, 256 * KiB, 5000 * MS, sizes[k], 400 + (uint32_t)k);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(shutdown(sv[0], SHUT_WR), 0);
    CHECK_ERR(ipc_frame_recv(&f, back, 256 * KiB, 5000 * MS), -EPIPE);
    CHECK_EQ(th_join(pid, 5000), 0);
    close_fd(sv[0]);
    free(back);
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- wire format ---- */

static void send_child(void *arg) {
    int *p = (int *)arg;
    unsigned char *m = th_xmalloc(0x030201);
    ipc_frame f;
    close_fd(p[0]);
    frame_on(&f, p[1], 0, 0);
    th_pat_fill(m, 0x030201, 501);
    CHECK_ERR(ipc_frame_send(&f, m, 0x030201, 5000 * MS), 0x030201);
    close_fd(p[1]);
    free(m);
}

/* What ipc_frame_send writes, read raw: le32(len) then the payload, nothing else. */
TEST(frame_wire_format_send) {
    int fds = th_fd_count(), p[2];
    unsigned char h[4], *b = th_xmalloc(0x030201);
    ipc_frame f;
    pid_t pid;
    mk_pipe(p);
    frame_on(&f, p[1], 0, 0);
    CHECK_ERR(ipc_frame_send(&f, NULL, 0, 0), 0);
    CHECK_ERR(ipc_frame_send(&f, "A", 1, 0), 1);
    th_pat_fill(b, 258, 500);
    CHECK_ERR(ipc_frame_send(&f, b, 258, 0), 258);
    CHECK_EQ(queued(p[0]), 4 + 5 + 262);
    memset(b, 0xee, 300);
    CHECK_ERR(ipc_fd_read_exact(p[0], b, 4 + 5 + 262, 0, NULL), 4 + 5 + 262);
    CHECK(memcmp(b, "\0\0\0\0\1\0\0\0A\2\1\0\0", 13) == 0);
    th_pat_check(__FILE__, __LINE__, b + 13, 0, 258, 500);
    CHECK_ERR(ipc_fd_read_some(p[0], b, 1, 0), -EAGAIN);
    close_fd(p[0]);
    close_fd(p[1]);
    /* three distinct low bytes, larger than a pipe: sent by a child */
    mk_pipe(p);
    pid = th_spawn(send_child, p);
    close_fd(p[1]);
    CHECK_ERR(ipc_fd_read_exact(p[0], h, 4, 5000 * MS, NULL), 4);
    CHECK(memcmp(h, "\1\2\3\0", 4) == 0);
    CHECK_ERR(ipc_fd_read_exact(p[0], b, 0x030201, 5000 * MS, NULL), 0x030201);
    th_pat_check(__FILE__, __LINE__, b, 0, 0x030201, 501);
    CHECK_ERR(ipc_fd_read_some(p[0], h, 1, 5000 * MS), -EPIPE); /* nothing after it */
    CHECK_EQ(th_join(pid, 5000), 0);
    close_fd(p[0]);
    free(b);
    CHECK_EQ(th_fd_count(), fds);
}

/* Frames the test writes by hand are received; several in one write, one split in many. */
TEST(frame_wire_format_recv_raw) {
    int fds = th_fd_count(), p[2];
    static const unsigned char three[] = {5, 0, 0, 0, 'h', 'e', 'l', 'l',  'o', 0,
                                          0, 0, 0, 2, 0,   0,   0,   0xff, 0x00};
    unsigned char buf[64], big[300], *m;
    ipc_frame f;
    size_t i;
    mk_pipe(p);
    frame_on(&f, p[0], 0, 0);
    raw_write(p[1], three, sizeof three);
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_ERR(ipc_frame_recv(&f, NULL, 0, 0), 0);
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), 2);
    CHECK(buf[0] == 0xff && buf[1] == 0x00);
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), -EAGAIN);
    /* 0x0100 = 256 bytes: the second header byte counts 256s */
    put_le32(big, 256);
    th_pat_fill(big + 4, 256, 510);
    m = th_xmalloc(256);
    for (i = 0; i < 260; i += 13) {
        raw_write(p[1], big + i, i + 13 > 260 ? 260 - i : 13);
        if (i + 13 >= 260) break;
        if (i % 26 == 0) CHECK_ERR(ipc_frame_recv(&f, NULL, 0, 0), -EMSGSIZE);
        CHECK_ERR(ipc_frame_recv(&f, m, 256, 0), -EAGAIN);
    }
    CHECK_RECV(&f, m, 256, 0, 256, 510);
    free(m);
    close_fd(p[1]);
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), -EPIPE);
    close_fd(p[0]);
    CHECK_EQ(th_fd_count(), fds);
}

/* All four header bytes decoded little-endian, seen through pending() without a payload. */
TEST(frame_wire_format_header_byte_order) {
    int fds = th_fd_count(), p[2];
    static const unsigned char h[4] = {0x04, 0x03, 0x02, 0x01};
    unsigned char buf[8];
    ipc_frame f;
    mk_pipe(p);
    frame_on(&f, p[0], 0x7fffffff, 0);
    raw_write(p[1], h, 4);
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), -EMSGSIZE);
    CHECK_ERR(ipc_frame_pending(&f), 0x01020304);
    close_fd(p[0]);
    close_fd(p[1]);
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- sizes: the buffer, max_msg, IPC_FRAME_ATOMIC ---- */

/* A message longer than cap stays queued: pending() tells its length, a larger buffer
   gets it whole, and the messages after it are in sync. */
TEST(frame_emsgsize_stays_queued) {
    int fds = th_fd_count(), p[2];
    unsigned char *buf = th_xmalloc(200);
    ipc_frame f;
    mk_pipe(p);
    frame_on(&f, p[0], 0, 0);
    raw_frame(p[1], 100, 600);
    raw_frame(p[1], 10, 601);
    raw_frame(p[1], 0, 602);
    raw_frame(p[1], 1, 603);
    CHECK_ERR(ipc_frame_pending(&f), -ENOMSG);
    CHECK_ERR(ipc_frame_recv(&f, buf, 50, 0), -EMSGSIZE);
    CHECK_ERR(ipc_frame_pending(&f), 100);
    CHECK_EQ(queued(p[0]), 100 + 14 + 4 + 5); /* the payload was not touched */
    CHECK_ERR(ipc_frame_recv(&f, buf, 99, 1000 * MS), -EMSGSIZE);
    CHECK_ERR(ipc_frame_recv(&f, NULL, 0, IPC_FOREVER), -EMSGSIZE);
    CHECK_ERR(ipc_frame_pending(&f), 100);
    CHECK_RECV(&f, buf, 100, 0, 100, 600); /* cap == len is enough */
    CHECK_ERR(ipc_frame_pending(&f), -ENOMSG);
    CHECK_ERR(ipc_frame_recv(&f, buf, 9, 0), -EMSGSIZE);
    CHECK_ERR(ipc_frame_pending(&f), 10);
    CHECK_RECV(&f, buf, 200, 0, 10, 601);
    CHECK_ERR(ipc_frame_recv(&f, NULL, 0, 0), 0); /* a zero-length message needs no buffer */
    CHECK_ERR(ipc_frame_recv(&f, NULL, 0, 0), -EMSGSIZE);
    CHECK_ERR(ipc_frame_pending(&f), 1);
    CHECK_RECV(&f, buf, 1, 0, 1, 603);
    CHECK_ERR(ipc_frame_recv(&f, buf, 200, 0), -EAGAIN);
    close_fd(p[0]);
    close_fd(p[1]);
    free(buf);
    CHECK_EQ(th_fd_count(), fds);
}

/* A header over max_msg can only be garbage: -EPROTO, and the stream stays unusable even
   when valid frames follow. */
TEST(frame_max_msg_recv_eproto) {
    int fds = th_fd_count(), p[2];
    unsigned char *buf = th_xmalloc(4000);
    ipc_frame f;
    mk_pipe(p);
    frame_on(&f, p[0], 1000, 0);
    raw_frame(p[1], 1000, 700); /* exactly max_msg: fine */
    raw_frame(p[1], 1001, 701);
    raw_frame(p[1], 5, 702);
    CHECK_RECV(&f, buf, 4000, 0, 1000, 700);
    CHECK_ERR(ipc_frame_recv(&f, buf, 4000, 0), -EPROTO);
    CHECK_ERR(ipc_frame_recv(&f, buf, 4000, 0), -EPROTO);
    CHECK_ERR(ipc_frame_recv(&f, buf, 4000, 1000 * MS), -EPROTO);
    CHECK_ERR(ipc_frame_recv(&f, buf, 4000, IPC_FOREVER), -EPROTO);
    CHECK_ERR(ipc_frame_recv(&f, NULL, 0, 0), -EPROTO);
    CHECK(ipc_frame_pending(&f) < 0);
    close_fd(p[1]);
    CHECK_ERR(ipc_frame_recv(&f, buf, 4000, 0), -EPROTO); /* not -EPIPE either */
    close_fd(p[0]);
    free(buf);
    CHECK_EQ(th_fd_count(), fds);
}

/* The default limit is 16 MiB: one more is -EPROTO, 16 MiB itself a valid header. */
TEST(frame_max_msg_default) {
    int fds = th_fd_count(), p[2];
    unsigned char buf[16];
    ipc_frame f;
    mk_pipe(p);
    CHECK_ERR(ipc_frame_init(&f, p[0], NULL), 0);
    raw_header(p[1], 16u << 20);
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), -EMSGSIZE);
    CHECK_ERR(ipc_frame_pending(&f), 16 << 20);
    close_fd(p[0]);
    close_fd(p[1]);
    mk_pipe(p);
    CHECK_ERR(ipc_frame_init(&f, p[0], NULL), 0);
    raw_header(p[1], (16u << 20) + 1);
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), -EPROTO);
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), -EPROTO);
    close_fd(p[0]);
    close_fd(p[1]);
    mk_pipe(p);
    CHECK_ERR(ipc_frame_init(&f, p[0], NULL), 0);
    raw_header(p[1], 0xffffffffu);
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), -EPROTO);
    close_fd(p[0]);
    close_fd(p[1]);
    CHECK_EQ(th_fd_count(), fds);
}

/* The sender refuses len > max_msg before writing anything. */
TEST(frame_max_msg_send_emsgsize) {
    int fds = th_fd_count(), p[2];
    unsigned char *m = th_xmalloc((16u << 20) + 1);
    ipc_frame f;
    mk_pipe(p);
    frame_on(&f, p[1], 1000, 0);
    th_pat_fill(m, 1001, 800);
    CHECK_ERR(ipc_frame_send(&f, m, 1001, 0), -EMSGSIZE);
    CHECK_ERR(ipc_frame_send(&f, m, 1001, IPC_FOREVER), -EMSGSIZE);
    CHECK_EQ(queued(p[0]), 0);
    CHECK_ERR(ipc_frame_send(&f, m, 1000, 0), 1000);
    CHECK_EQ(queued(p[0]), 1004);
    CHECK_ERR(ipc_frame_send(&f, m, 5000, 0), -EMSGSIZE);
    CHECK_EQ(queued(p[0]), 1004);
    close_fd(p[0]);
    close_fd(p[1]);
    /* the default: 16 MiB + 1 refused (against an empty pipe, with nothing written) */
    mk_pipe(p);
    CHECK_ERR(ipc_frame_init(&f, p[1], NULL), 0);
    CHECK_ERR(ipc_frame_send(&f, m, (16u << 20) + 1, 0), -EMSGSIZE);
    CHECK_EQ(queued(p[0]), 0);
    close_fd(p[0]);
    close_fd(p[1]);
    free(m);
    CHECK_EQ(th_fd_count(), fds);
}

/* Lengths whose frame (len + 4) cannot exist even with max_msg = UINT32_MAX: refused with
   nothing written. On 32-bit targets len + 4 wraps around and len > SSIZE_MAX cannot be
   returned; on 64-bit they are simply over max_msg. */
TEST(frame_send_len_beyond_ssize_max) {
    static const size_t lens[] = {(size_t)SSIZE_MAX + 1, SIZE_MAX - 3, SIZE_MAX - 1, SIZE_MAX};
    int fds = th_fd_count(), p[2], bad = 0;
    unsigned char *m = th_xmalloc(8192);
    char why[512];
    size_t i, at = 0;
    memset(m, 0x5a, 8192);
    why[0] = 0;
    for (i = 0; i < sizeof lens / sizeof lens[0]; i++) { /* a fresh stream for each */
        ipc_frame f;
        ssize_t r;
        int q;
        mk_pipe(p);
        CHECK_OK(ipc_fd_set_nonblock(p[1], 1));
        frame_on(&f, p[1], 0xffffffffu, 0);
        r = ipc_frame_send(&f, m, lens[i], 0);
        q = queued(p[0]);
        if ((r != -EMSGSIZE && r != -EINVAL) || q != 0) {
            bad = 1;
            at += (size_t)snprintf(why + at, sizeof why - at, " [len %zu: %zd (%s), %d bytes out]",
                                   lens[i], r, ipc_strerror((int)r), q);
        } else {
            CHECK_ERR(ipc_frame_send(&f, m, 3, 0), 3); /* nothing was left half-sent */
        }
        close_fd(p[0]);
        close_fd(p[1]);
    }
    if (bad) th_fail(__FILE__, __LINE__, "want -EMSGSIZE or -EINVAL, nothing out:%s", why);
    free(m);
    CHECK_EQ(th_fd_count(), fds);
}

/* A header no ssize_t can return (32-bit targets) with max_msg = UINT32_MAX must not come
   back as a negative "length" from pending() (or recv). */
TEST(frame_recv_len_beyond_ssize_max) {
    int fds = th_fd_count(), p[2];
    unsigned char buf[16];
    ipc_frame f;
    ssize_t r;
    mk_pipe(p);
    frame_on(&f, p[0], 0xffffffffu, 0);
    raw_header(p[1], 0xfffffff0u);
    r = ipc_frame_recv(&f, buf, sizeof buf, 0);
    if (sizeof(ssize_t) > 4) {
        CHECK_ERR(r, -EMSGSIZE);
        CHECK_ERR(ipc_frame_pending(&f), (ssize_t)0xfffffff0u);
    } else {
        if (r != -EMSGSIZE && r != -EPROTO)
            th_fail(__FILE__, __LINE__, "recv: %zd (%s), want -EPROTO (or -EMSGSIZE)", r,
                    ipc_strerror((int)r));
        r = ipc_frame_pending(&f);
        if (r < 0 && r != -ENOMSG)
            th_fail(__FILE__, __LINE__, "pending() = %zd (%s): a length that wrapped", r,
                    ipc_strerror((int)r));
    }
    close_fd(p[0]);
    close_fd(p[1]);
    CHECK_EQ(th_fd_count(), fds);
}

/* IPC_FRAME_ATOMIC: at most PIPE_BUF bytes of frame, one write, all or nothing. */
TEST(frame_atomic_limits) {
    int fds = th_fd_count(), p[2];
    unsigned char *m = th_xmalloc(PIPE_BUF), *back = th_xmalloc(PIPE_BUF);
    ipc_frame f, plain;
    mk_pipe(p);
    frame_on(&f, p[1], 0, IPC_FRAME_ATOMIC);
    frame_on(&plain, p[1], 0, 0);
    th_pat_fill(m, PIPE_BUF, 900);
    CHECK_ERR(ipc_frame_send(&f, m, PIPE_BUF - 3, 0), -EMSGSIZE);
    CHECK_ERR(ipc_frame_send(&f, m, PIPE_BUF - 3, IPC_FOREVER), -EMSGSIZE);
    CHECK_ERR(ipc_frame_send(&f, m, PIPE_BUF, 0), -EMSGSIZE);
    CHECK_EQ(queued(p[0]), 0);
    CHECK_ERR(ipc_frame_send(&f, m, PIPE_BUF - 4, 0), PIPE_BUF - 4);
    CHECK_EQ(queued(p[0]), PIPE_BUF);
    CHECK_ERR(ipc_frame_send(&plain, m, PIPE_BUF - 3, 0), PIPE_BUF - 3); /* fine without */
    CHECK_ERR(ipc_fd_read_exact(p[0], back, PIPE_BUF, 0, NULL), PIPE_BUF);
    CHECK_EQ(get_le32(back), PIPE_BUF - 4);
    th_pat_check(__FILE__, __LINE__, back + 4, 0, PIPE_BUF - 4, 900);
    close_fd(p[0]);
    close_fd(p[1]);
    /* a full pipe: an atomic frame that does not fit leaves nothing behind */
    mk_pipe(p);
    CHECK_ERR(ipc_pipe_set_capacity(p[1], 4096), 4096);
    frame_on(&f, p[1], 0, IPC_FRAME_ATOMIC);
    raw_write(p[1], m, 4000);
    CHECK_ERR(ipc_frame_send(&f, m, 200, 0), -EAGAIN);
    CHECK_EQ(queued(p[0]), 4000);
    CHECK_ERR(ipc_frame_send(&f, m, 300, 20 * MS), -ETIMEDOUT); /* another size: nothing pending */
    CHECK_EQ(queued(p[0]), 4000);
    CHECK_ERR(ipc_fd_read_exact(p[0], back, 4000, 0, NULL), 4000);
    CHECK_ERR(ipc_frame_send(&f, m, 200, 0), 200);
    CHECK_ERR(ipc_fd_read_exact(p[0], back, 204, 0, NULL), 204);
    CHECK_EQ(get_le32(back), 200);
    th_pat_check(__FILE__, __LINE__, back + 4, 0, 200, 900);
    close_fd(p[0]);
    close_fd(p[1]);
    free(m);
    free(back);
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- end of stream ---- */

/* The writer closes inside a frame: -EPROTO, never a short message, and it stays so. */
TEST(frame_truncated_at_eof) {
    int fds = th_fd_count(), p[2], cut;
    unsigned char *buf = th_xmalloc(1000), hdr[4];
    ipc_frame f;
    put_le32(hdr, 100);
    for (cut = 1; cut <= 4 + 99; cut++) {
        if (cut > 8 && cut != 4 + 50 && cut != 4 + 99) continue;
        mk_pipe(p);
        frame_on(&f, p[0], 0, 0);
        raw_frame(p[1], 7, 1000); /* a whole frame first: delivered */
        if (cut <= 4) {
            raw_write(p[1], hdr, (size_t)cut);
        } else {
            unsigned char *fr = th_xmalloc(104);
            put_le32(fr, 100);
            th_pat_fill(fr + 4, 100, 1001);
            raw_write(p[1], fr, (size_t)cut);
            free(fr);
        }
        close_fd(p[1]);
        CHECK_RECV(&f, buf, 1000, 0, 7, 1000);
        CHECK_ERR(ipc_frame_recv(&f, buf, 1000, 0), -EPROTO);
        CHECK_ERR(ipc_frame_recv(&f, buf, 1000, IPC_FOREVER), -EPROTO);
        CHECK_ERR(ipc_frame_recv(&f, buf, 1000, 50 * MS), -EPROTO);
        close_fd(p[0]);
    }
    free(buf);
    CHECK_EQ(th_fd_count(), fds);
}

/* The same while the reader is blocked in recv: a child writes a header and part of the
   payload, pauses, and exits. Socket version: shutdown(SHUT_WR) in the middle. */
static void half_frame_child(void *arg) {
    int *p = (int *)arg;
    unsigned char b[4 + 5000];
    close_fd(p[0]);
    put_le32(b, 100000);
    th_pat_fill(b + 4, 5000, 1100);
    raw_write(p[1], b, sizeof b);
    th_sleep_ms(30);
    close_fd(p[1]);
}

TEST(frame_truncated_while_waiting) {
    int fds = th_fd_count(), p[2], kind;
    unsigned char *buf = th_xmalloc(100000);
    ipc_frame f;
    pid_t pid;
    for (kind = 0; kind < 2; kind++) {
        if (kind)
            mk_socketpair(p);
        else
            mk_pipe(p);
        pid = th_spawn(half_frame_child, p);
        close_fd(p[1]);
        frame_on(&f, p[0], 0, 0);
        CHECK_ERR(ipc_frame_recv(&f, buf, 100000, kind ? 5000 * MS : IPC_FOREVER), -EPROTO);
        CHECK_ERR(ipc_frame_recv(&f, buf, 100000, 0), -EPROTO);
        CHECK_EQ(th_join(pid, 5000), 0);
        close_fd(p[0]);
    }
    /* a half-closed socket (shutdown, the peer still open) ends the stream as well */
    mk_socketpair(p);
    frame_on(&f, p[0], 0, 0);
    raw_header(p[1], 10);
    raw_write(p[1], "abc", 3);
    CHECK_EQ(shutdown(p[1], SHUT_WR), 0);
    CHECK_ERR(ipc_frame_recv(&f, buf, 100, 1000 * MS), -EPROTO);
    close_fd(p[0]);
    close_fd(p[1]);
    free(buf);
    CHECK_EQ(th_fd_count(), fds);
}

/* The end of the stream between frames is -EPIPE, after every frame, and it stays so. */
TEST(frame_eof_between_frames) {
    int fds = th_fd_count(), kind;
    unsigned char buf[64];
    ipc_frame f;
    stream s;
    for (kind = K_PIPE; kind <= K_FIFO; kind++) {
        stream_open(&s, (enum kind)kind);
        frame_on(&f, s.rfd, 0, 0);
        raw_frame(s.wfd, 3, 1200);
        raw_frame(s.wfd, 0, 1201);
        raw_frame(s.wfd, 64, 1202);
        close_fd(s.wfd);
        s.wfd = -1;
        CHECK_RECV(&f, buf, sizeof buf, 0, 3, 1200);
        CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), 0);
        CHECK_RECV(&f, buf, sizeof buf, 0, 64, 1202);
        CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), -EPIPE); /* not -EAGAIN */
        CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 50 * MS), -EPIPE);
        CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, IPC_FOREVER), -EPIPE);
        CHECK_ERR(ipc_frame_pending(&f), -ENOMSG);
        stream_close(&s);
    }
    CHECK_EQ(th_fd_count(), fds);
}

/* Reader gone: -EPIPE, and the default SIGPIPE action does not kill the writer. */
static void epipe_child(void *arg) {
    static unsigned char big[1024 * 1024];
    struct sigaction sa;
    int kind, p[2];
    unsigned char *part = th_xmalloc(100);
    ipc_frame f;
    (void)arg;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGPIPE, &sa, NULL), 0);
    for (kind = 0; kind < 2; kind++) {
        if (kind)
            mk_socketpair(p);
        else
            mk_pipe(p);
        frame_on(&f, p[1], 0, 0);
        close_fd(p[0]);
        CHECK_ERR(ipc_frame_send(&f, "hi", 2, IPC_FOREVER), -EPIPE);
        CHECK_ERR(ipc_frame_send(&f, NULL, 0, 0), -EPIPE);
        CHECK_ERR(ipc_frame_send(&f, big, sizeof big, 50 * MS), -EPIPE);
        close_fd(p[1]);
        /* the reader leaves in the middle of a large frame */
        if (kind)
            mk_socketpair(p);
        else
            mk_pipe(p);
        frame_on(&f, p[1], 0, 0);
        CHECK_ERR(ipc_frame_send(&f, big, sizeof big, 0), -EAGAIN); /* part of it is out */
        CHECK(queued(p[0]) > 0);
        CHECK_ERR(ipc_fd_read_exact(p[0], part, 100, 0, NULL), 100);
        close_fd(p[0]);
        CHECK_ERR(ipc_frame_send(&f, big, sizeof big, IPC_FOREVER), -EPIPE);
        /* nothing is left to resume: another message is -EPIPE too, not -EINVAL */
        CHECK_ERR(ipc_frame_send(&f, "x", 1, 0), -EPIPE);
        close_fd(p[1]);
    }
    CHECK(!th_sig_pending(SIGPIPE));
    free(part);
}

TEST(frame_send_epipe_no_sigpipe) {
    int code, fds = th_fd_count();
    pid_t pid = th_spawn(epipe_child, NULL);
    code = th_join(pid, 5000);
    if (code == 128 + SIGPIPE) th_fail(__FILE__, __LINE__, "the writer was killed by SIGPIPE");
    CHECK_EQ(code, 0);
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- deadlines and resumption ---- */

static void recv_deadlines(int fd) {
    unsigned char buf[16];
    ipc_frame f;
    int64_t t0;
    frame_on(&f, fd, 0, 0);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), -EAGAIN);
    CHECK_WITHIN(t0, 0, 100);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
    CHECK_WITHIN(t0, 50, 1000);
    CHECK_ERR(ipc_frame_pending(&f), -ENOMSG);
}

TEST(frame_recv_deadlines) {
    int fds = th_fd_count(), kind;
    stream s;
    for (kind = K_PIPE; kind <= K_FIFO; kind++) {
        stream_open(&s, (enum kind)kind);
        recv_deadlines(s.rfd);
        CHECK_OK(ipc_fd_set_nonblock(s.rfd, 1));
        recv_deadlines(s.rfd);
        stream_close(&s);
    }
    CHECK_EQ(th_fd_count(), fds);
}

/* A FIFO no writer has opened yet is empty, not ended. */
TEST(frame_recv_fifo_before_writer) {
    int fds = th_fd_count(), rfd, wfd;
    char dir[64], path[128];
    unsigned char buf[16];
    ipc_frame f;
    th_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/fifo", dir);
    CHECK_ERR(ipc_fifo_create(path, 0), 0);
    rfd = ipc_fifo_open(path, IPC_FIFO_READ, 0);
    CHECK_OK(rfd);
    recv_deadlines(rfd);
    frame_on(&f, rfd, 0, 0);
    wfd = ipc_fifo_open(path, IPC_FIFO_WRITE, 1000 * MS);
    CHECK_OK(wfd);
    raw_frame(wfd, 16, 1300);
    close_fd(wfd);
    CHECK_RECV(&f, buf, sizeof buf, 1000 * MS, 16, 1300);
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 1000 * MS), -EPIPE);
    close_fd(rfd);
    tmpdir_remove(dir);
    CHECK_EQ(th_fd_count(), fds);
}

/* Header and half the payload, then the deadline: the next call with the same buffer
   carries on and returns the whole message. */
TEST(frame_recv_resume_payload) {
    int fds = th_fd_count(), p[2], kind;
    unsigned char *fr = th_xmalloc(1004), *buf = th_xmalloc(1000);
    ipc_frame f;
    int64_t t0;
    put_le32(fr, 1000);
    th_pat_fill(fr + 4, 1000, 1400);
    for (kind = 0; kind < 2; kind++) {
        if (kind)
            mk_socketpair(p);
        else
            mk_pipe(p);
        frame_on(&f, p[0], 0, 0);
        memset(buf, 0, 1000);
        raw_write(p[1], fr, 4 + 500);
        CHECK_ERR(ipc_frame_recv(&f, buf, 1000, 0), -EAGAIN);
        CHECK_ERR(ipc_frame_pending(&f), 1000);
        CHECK_EQ(queued(p[0]), 0); /* what arrived was taken */
        t0 = ipc_time_now();
        CHECK_ERR(ipc_frame_recv(&f, buf, 1000, 50 * MS), -ETIMEDOUT);
        CHECK_WITHIN(t0, 50, 1000);
        CHECK_ERR(ipc_frame_pending(&f), 1000);
        raw_write(p[1], fr + 504, 200);
        CHECK_ERR(ipc_frame_recv(&f, buf, 1000, 20 * MS), -ETIMEDOUT);
        CHECK_ERR(ipc_frame_pending(&f), 1000);
        CHECK_ERR(ipc_frame_recv(&f, buf, 999, 0), -EMSGSIZE); /* a smaller buffer: refused */
        raw_write(p[1], fr + 704, 300);
        raw_frame(p[1], 3, 1401);
        CHECK_RECV(&f, buf, 1000, 0, 1000, 1400);
        CHECK_ERR(ipc_frame_pending(&f), -ENOMSG);
        CHECK_RECV(&f, buf, 1000, 0, 3, 1401);
        CHECK_ERR(ipc_frame_recv(&f, buf, 1000, 0), -EAGAIN);
        close_fd(p[0]);
        close_fd(p[1]);
    }
    free(fr);
    free(buf);
    CHECK_EQ(th_fd_count(), fds);
}

/* The header itself arrives a byte at a time. */
TEST(frame_recv_resume_header) {
    int fds = th_fd_count(), p[2], i;
    unsigned char h[4], buf[8];
    ipc_frame f;
    mk_pipe(p);
    frame_on(&f, p[0], 0, 0);
    put_le32(h, 8);
    for (i = 0; i < 4; i++) {
        CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, i == 2 ? 20 * MS : 0),
                  i == 2 ? -ETIMEDOUT : -EAGAIN);
        CHECK_ERR(ipc_frame_pending(&f), -ENOMSG);
        raw_write(p[1], h + i, 1);
    }
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), -EAGAIN);
    CHECK_ERR(ipc_frame_pending(&f), 8);
    raw_write(p[1], "12345678", 8);
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), 8);
    CHECK(memcmp(buf, "12345678", 8) == 0);
    /* a zero-length message whose header comes in two pieces */
    raw_write(p[1], "\0\0", 2);
    CHECK_ERR(ipc_frame_recv(&f, NULL, 0, 0), -EAGAIN);
    raw_write(p[1], "\0\0", 2);
    CHECK_ERR(ipc_frame_recv(&f, NULL, 0, 0), 0);
    close_fd(p[0]);
    close_fd(p[1]);
    CHECK_EQ(th_fd_count(), fds);
}

/* A frame larger than the pipe, cut by deadlines while another process writes it. */
static int resume_go[2];    /* the parent writes a byte: go on */
static int resume_ready[2]; /* the child writes a byte: the first part is in the pipe */

static void resume_writer(void *arg) {
    int *p = (int *)arg;
    size_t len = 256 * KiB;
    unsigned char *fr = th_xmalloc(len + 4), c;
    close_fd(p[0]);
    close_fd(resume_go[1]);
    close_fd(resume_ready[0]);
    put_le32(fr, (uint32_t)len);
    th_pat_fill(fr + 4, len, 1500);
    raw_write(p[1], fr, 4 + 100 * KiB);
    raw_write(resume_ready[1], "r", 1);
    close_fd(resume_ready[1]);
    CHECK_ERR(ipc_fd_read_exact(resume_go[0], &c, 1, 5000 * MS, NULL), 1);
    raw_write(p[1], fr + 4 + 100 * KiB, len - 100 * KiB);
    raw_frame(p[1], 10, 1501);
    close_fd(p[1]);
    free(fr);
}

TEST(frame_recv_resume_across_processes) {
    int fds = th_fd_count(), p[2];
    unsigned char *buf = th_xmalloc(256 * KiB);
    ipc_frame f;
    pid_t pid;
    ssize_t r;
    int rounds = 0;
    mk_pipe(p);
    mk_pipe(resume_go);
    mk_pipe(resume_ready);
    pid = th_spawn(resume_writer, p);
    close_fd(p[1]);
    close_fd(resume_go[0]);
    close_fd(resume_ready[1]);
    frame_on(&f, p[0], 0, 0);
    /* take what comes, each call cut short, until the child has written the first part */
    do {
        r = ipc_frame_recv(&f, buf, 256 * KiB, 20 * MS);
        CHECK_ERR(r, -ETIMEDOUT);
        rounds++;
    } while (ipc_fd_wait(resume_ready[0], POLLIN, 0) < 0);
    CHECK_ERR(ipc_frame_recv(&f, buf, 256 * KiB, 0), -EAGAIN); /* the rest of the part */
    CHECK_EQ(queued(p[0]), 0);
    CHECK_ERR(ipc_frame_pending(&f), 256 * KiB);
    CHECK_ERR(ipc_frame_recv(&f, buf, 256 * KiB, 0), -EAGAIN);
    CHECK_ERR(ipc_frame_recv(&f, buf, 1000, 0), -EMSGSIZE);
    raw_write(resume_go[1], "g", 1);
    CHECK_RECV(&f, buf, 256 * KiB, 5000 * MS, 256 * KiB, 1500);
    CHECK_RECV(&f, buf, 256 * KiB, 5000 * MS, 10, 1501);
    CHECK_ERR(ipc_frame_recv(&f, buf, 256 * KiB, 5000 * MS), -EPIPE);
    CHECK_EQ(th_join(pid, 5000), 0);
    CHECK(rounds >= 1);
    close_fd(p[0]);
    close_fd(resume_go[1]);
    close_fd(resume_ready[0]);
    free(buf);
    CHECK_EQ(th_fd_count(), fds);
}

/* Child: receive exactly one intact 64 KiB message `seed`, then the end of the stream. */
static uint32_t one_seed;
static void one_frame_reader(void *arg) {
    int *p = (int *)arg;
    unsigned char *buf = th_xmalloc(128 * KiB);
    ipc_frame f;
    close_fd(p[1]);
    frame_on(&f, p[0], 0, 0);
    CHECK_RECV(&f, buf, 128 * KiB, 5000 * MS, 64 * KiB, one_seed);
    CHECK_ERR(ipc_frame_recv(&f, buf, 128 * KiB, 5000 * MS), -EPIPE);
    close_fd(p[0]);
    free(buf);
}

/* Finish the cut send of m (64 KiB) on f into the pipe p while a one_frame_reader reads it
   whole; closes both ends. */
static void finish_for_reader(ipc_frame *f, int p[2], const unsigned char *m) {
    pid_t pid = th_spawn(one_frame_reader, p);
    close_fd(p[0]);
    CHECK_ERR(ipc_frame_send(f, m, 64 * KiB, 5000 * MS), 64 * KiB);
    close_fd(p[1]);
    CHECK_EQ(th_join(pid, 5000), 0);
}

/* A 64 KiB frame into a 4 KiB pipe: the send stops partway; another message meanwhile is
   -EINVAL; the same message again finishes it once a reader drains the pipe. */
TEST(frame_send_resume) {
    int fds = th_fd_count(), p[2], blocking;
    unsigned char *m = th_xmalloc(64 * KiB), *other = th_xmalloc(64 * KiB);
    ipc_frame f;
    int64_t t0;
    th_pat_fill(other, 64 * KiB, 1601);
    for (blocking = 0; blocking < 2; blocking++) {
        int q;
        one_seed = 1600 + (uint32_t)blocking;
        th_pat_fill(m, 64 * KiB, one_seed);
        mk_pipe(p);
        CHECK_ERR(ipc_pipe_set_capacity(p[1], 4096), 4096);
        if (!blocking) CHECK_OK(ipc_fd_set_nonblock(p[1], 1));
        frame_on(&f, p[1], 0, 0);
        t0 = ipc_time_now();
        CHECK_ERR(ipc_frame_send(&f, m, 64 * KiB, 0), -EAGAIN);
        CHECK_WITHIN(t0, 0, 100);
        q = queued(p[0]);
        CHECK(q > 0 && q < (int)(64 * KiB));
        t0 = ipc_time_now();
        CHECK_ERR(ipc_frame_send(&f, m, 64 * KiB, 50 * MS), -ETIMEDOUT);
        CHECK_WITHIN(t0, 50, 1000);
        CHECK_ERR(ipc_frame_send(&f, other, 10, 0), -EINVAL);
        CHECK_ERR(ipc_frame_send(&f, NULL, 0, 0), -EINVAL);
        CHECK_ERR(ipc_frame_send(&f, other, 64 * KiB - 1, 0), -EINVAL);
        CHECK_EQ(queued(p[0]), q); /* none of them wrote anything */
        finish_for_reader(&f, p, m);
    }
    free(m);
    free(other);
    CHECK_EQ(th_fd_count(), fds);
}

/* "Another message is -EINVAL until then": also one of the same length in another buffer,
   whose tail would otherwise complete the first message's header and head. */
TEST(frame_send_resume_other_buffer_same_length) {
    int fds = th_fd_count(), p[2], q;
    unsigned char *m = th_xmalloc(64 * KiB), *other = th_xmalloc(64 * KiB);
    ipc_frame f;
    one_seed = 1650;
    th_pat_fill(m, 64 * KiB, one_seed);
    th_pat_fill(other, 64 * KiB, 1651);
    mk_pipe(p);
    CHECK_ERR(ipc_pipe_set_capacity(p[1], 4096), 4096);
    frame_on(&f, p[1], 0, 0);
    CHECK_ERR(ipc_frame_send(&f, m, 64 * KiB, 0), -EAGAIN);
    q = queued(p[0]);
    CHECK(q > 0);
    CHECK_ERR(ipc_frame_send(&f, other, 64 * KiB, 0), -EINVAL);
    CHECK_EQ(queued(p[0]), q);
    finish_for_reader(&f, p, m);
    free(m);
    free(other);
    CHECK_EQ(th_fd_count(), fds);
}

/* A send that times out with nothing written leaves nothing to resume. */
TEST(frame_send_deadlines) {
    int fds = th_fd_count(), p[2], kind;
    unsigned char *fillb = th_xmalloc(MiB);
    ipc_frame f;
    int64_t t0;
    memset(fillb, 0, MiB);
    for (kind = 0; kind < 2; kind++) {
        size_t done = 0;
        if (kind)
            mk_socketpair(p);
        else
            mk_pipe(p);
        /* fill the stream to the brim */
        CHECK_ERR(ipc_fd_write_all(p[1], fillb, MiB, 0, &done), -EAGAIN);
        frame_on(&f, p[1], 0, kind ? 0 : IPC_FRAME_ATOMIC);
        t0 = ipc_time_now();
        CHECK_ERR(ipc_frame_send(&f, "abc", 3, 0), -EAGAIN);
        CHECK_WITHIN(t0, 0, 100);
        t0 = ipc_time_now();
        CHECK_ERR(ipc_frame_send(&f, "abcd", 4, 50 * MS), -ETIMEDOUT);
        CHECK_WITHIN(t0, 50, 1000);
        CHECK_ERR(ipc_frame_send(&f, NULL, 0, 0), -EAGAIN); /* not -EINVAL */
        close_fd(p[0]);
        close_fd(p[1]);
    }
    free(fillb);
    CHECK_EQ(th_fd_count(), fds);
}

/* Non-blocking sender: timeout 0 and poll(POLLOUT) in a loop, the same message each time
   until it is out; a slow reader checks every frame. */
static size_t nb_sizes[30], nb_max;
static void slow_reader(void *arg) {
    int *p = (int *)arg;
    unsigned char *buf = th_xmalloc(nb_max);
    ipc_frame f;
    size_t k;
    close_fd(p[1]);
    frame_on(&f, p[0], 0, 0);
    for (k = 0; k < 30; k++) {
        CHECK_RECV(&f, buf, nb_max, 5000 * MS, nb_sizes[k], 1700 + (uint32_t)k);
        if (k % 3 == 0) th_sleep_ms(1);
    }
    CHECK_ERR(ipc_frame_recv(&f, buf, nb_max, 5000 * MS), -EPIPE);
    close_fd(p[0]);
    free(buf);
}

/* Send 30 frames of up to max bytes on the non-blocking p[1] to a slow reader on p[0]. */
static void poll_loop_send(int p[2], size_t max) {
    unsigned char *m = th_xmalloc(max);
    uint32_t s = rnd_seed(17);
    int eagain = 0;
    ipc_frame f;
    size_t k;
    pid_t pid;
    nb_max = max;
    for (k = 0; k < 30; k++)
        nb_sizes[k] = th_rnd32(&s) % (max + 1);
    nb_sizes[0] = max;
    CHECK_OK(ipc_fd_set_nonblock(p[1], 1));
    pid = th_spawn(slow_reader, p);
    close_fd(p[0]);
    frame_on(&f, p[1], 0, 0);
    for (k = 0; k < 30; k++) {
        ssize_t r;
        th_pat_fill(m, nb_sizes[k], 1700 + (uint32_t)k);
        while ((r = ipc_frame_send(&f, m, nb_sizes[k], 0)) == -EAGAIN) {
            struct pollfd pf;
            eagain++;
            pf.fd = p[1];
            pf.events = POLLOUT;
            pf.revents = 0;
            CHECK_EQ(poll(&pf, 1, 5000), 1);
        }
        CHECK_ERR(r, (ssize_t)nb_sizes[k]);
    }
    CHECK(eagain > 0);
    close_fd(p[1]);
    CHECK_EQ(th_join(pid, 5000), 0);
    free(m);
}

/* Non-blocking sender: timeout 0 and poll(POLLOUT) in a loop, the same message each time
   until it is out; a slow reader checks every frame. */
TEST(frame_send_nonblocking_poll_loop) {
    int fds = th_fd_count(), p[2];
    mk_pipe(p);
    CHECK_ERR(ipc_pipe_set_capacity(p[1], 4096), 4096);
    poll_loop_send(p, 200 * KiB);
    CHECK_EQ(th_fd_count(), fds);
}

/* The same on a socket with the smallest send buffer: sockets, unlike pipes, take part of
   even a small write, so frames are cut inside their first 4 KiB (and headers too). */
TEST(frame_send_nonblocking_socket_small_buffer) {
    int fds = th_fd_count(), p[2], one = 1;
    mk_socketpair(p);
    CHECK_EQ(setsockopt(p[1], SOL_SOCKET, SO_SNDBUF, &one, sizeof one), 0);
    poll_loop_send(p, 8 * KiB);
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- fuzzing ---- */

/* Receive the n frames of frames_build(seed) in order, then the end of the stream. With
   nonblock, every call has timeout 0 and -EAGAIN means poll and call again. Returns how
   many -EAGAIN came in the middle of a frame. */
static int recv_frames(int fd, size_t n, const size_t *sizes, uint32_t seed, int nonblock) {
    size_t cap = 300 * KiB, k;
    unsigned char *buf = th_xmalloc(cap);
    int mid = 0;
    ipc_frame f;
    ssize_t r;
    frame_on(&f, fd, 0, 0);
    for (k = 0; k <= n; k++) {
        for (;;) {
            struct pollfd pf;
            r = ipc_frame_recv(&f, buf, cap, nonblock ? 0 : 5000 * MS);
            if (!nonblock || r != -EAGAIN) break;
            if (ipc_frame_pending(&f) >= 0) mid++;
            pf.fd = fd;
            pf.events = POLLIN;
            pf.revents = 0;
            CHECK_EQ(poll(&pf, 1, 5000), 1);
        }
        if (k == n) {
            CHECK_ERR(r, -EPIPE);
            break;
        }
        if (r != (ssize_t)sizes[k])
            th_fail(__FILE__, __LINE__, "frame %zu of %zu: %zd (%s), want %zu bytes", k, n, r,
                    ipc_strerror((int)r), sizes[k]);
        th_pat_check(__FILE__, __LINE__, buf, 0, sizes[k], seed + (uint32_t)k);
    }
    free(buf);
    return mid;
}

/* A child writes random frames as a byte stream cut into random raw pieces with random
   pauses; every frame arrives whole and in order. */
static void fuzz_chunking(enum kind kind, uint32_t seed, int nonblock) {
    size_t sizes[300], total;
    unsigned char *data = frames_build(300, seed, sizes, &total);
    stream s;
    pid_t pid;
    int mid;
    stream_open(&s, kind);
    if (nonblock) CHECK_OK(ipc_fd_set_nonblock(s.rfd, 1));
    pid = feed(s.wfd, s.rfd, data, total, seed, 20000, 8, 0);
    close_fd(s.wfd);
    s.wfd = -1;
    mid = recv_frames(s.rfd, 300, sizes, seed, nonblock);
    if (nonblock) CHECK(mid > 0); /* some frames really were resumed */
    CHECK_EQ(th_join(pid, 8000), 0);
    stream_close(&s);
    free(data);
}

TEST(frame_fuzz_chunking_pipe) {
    int fds = th_fd_count();
    fuzz_chunking(K_PIPE, 1800, 0);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(frame_fuzz_chunking_socketpair) {
    int fds = th_fd_count();
    fuzz_chunking(K_SOCK, 1900, 0);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(frame_fuzz_chunking_fifo) {
    int fds = th_fd_count();
    fuzz_chunking(K_FIFO, 2000, 0);
    CHECK_EQ(th_fd_count(), fds);
}

TEST(frame_fuzz_chunking_nonblocking) {
    int fds = th_fd_count();
    fuzz_chunking(K_PIPE, 2100, 1);
    fuzz_chunking(K_SOCK, 2200, 1);
    CHECK_EQ(th_fd_count(), fds);
}

/* Garbage: a stream of plausible frames, junk bytes, wild headers and cut-off frames,
   received with max_msg G_MAX into a buffer of G_CAP (G_MAX after a -EMSGSIZE). A model
   of the documented rules says what each call must return; a guard after cap proves
   nothing is written past it. */
#define G_MAX   256
#define G_CAP   64
#define G_GUARD 64

static unsigned char *garbage_build(uint32_t seed, size_t *len) {
    uint32_t s = rnd_seed(seed);
    size_t target = th_rnd32(&s) % 4000, n = 0, i;
    unsigned char *b = th_xmalloc(target + 600);
    if (seed % 5 == 0) { /* pure noise */
        for (n = 0; n < target % 64; n++)
            b[n] = (unsigned char)th_rnd32(&s);
        *len = n;
        return b;
    }
    while (n < target) {
        uint32_t c = th_rnd32(&s) % (seed % 5 == 1 ? 14 : 20), L; /* 1 in 5: frames only */
        if (c < 14) { /* a frame: mostly fits the small buffer, some only the large one */
            L = th_rnd32(&s) % 3 ? th_rnd32(&s) % (G_CAP + 1) : th_rnd32(&s) % (G_MAX + 1);
            if (c == 0 && seed % 5 != 1) L = G_MAX + 1 + th_rnd32(&s) % 50; /* one too many */
            put_le32(b + n, L);
            n += 4;
            for (i = 0; i < L; i++)
                b[n++] = (unsigned char)th_rnd32(&s);
        } else if (c < 17) { /* junk */
            L = 1 + th_rnd32(&s) % 7;
            for (i = 0; i < L; i++)
                b[n++] = (unsigned char)th_rnd32(&s);
        } else if (c < 18) { /* a wild header */
            put_le32(b + n, th_rnd32(&s));
            n += 4;
        } else if (c < 19) { /* a frame cut off: the stream ends there */
            L = 1 + th_rnd32(&s) % G_MAX;
            put_le32(b + n, L);
            n += 4;
            L = th_rnd32(&s) % L;
            for (i = 0; i < L; i++)
                b[n++] = (unsigned char)th_rnd32(&s);
            break;
        } else { /* a header cut off */
            L = 1 + th_rnd32(&s) % 3;
            for (i = 0; i < L; i++)
                b[n++] = (unsigned char)(th_rnd32(&s) % 8);
            break;
        }
    }
    *len = n;
    return b;
}

typedef struct model {
    const unsigned char *d;
    size_t len, pos;
    int broken;
} model;

/* What ipc_frame_recv(cap) must return on the whole stream: a length (then *off is where
   the payload starts) or an error. */
static ssize_t model_next(model *m, size_t cap, size_t *off) {
    size_t rem = m->len - m->pos;
    uint32_t L;
    if (m->broken) return -EPROTO;
    if (rem == 0) return -EPIPE;
    if (rem < 4) return m->broken = 1, -EPROTO;
    L = get_le32(m->d + m->pos);
    if (L > G_MAX) return m->broken = 1, -EPROTO;
    if (L > cap) return -EMSGSIZE;
    if (rem - 4 < L) return m->broken = 1, -EPROTO;
    *off = m->pos + 4;
    m->pos += 4 + L;
    return (ssize_t)L;
}

typedef struct gcounts {
    int msgs, emsgsize, eproto, epipe;
} gcounts;

static ssize_t recv_poll(ipc_frame *f, int fd, unsigned char *buf, size_t cap, int nonblock) {
    ssize_t r;
    struct pollfd pf;
    if (!nonblock) return ipc_frame_recv(f, buf, cap, 5000 * MS);
    while ((r = ipc_frame_recv(f, buf, cap, 0)) == -EAGAIN) {
        pf.fd = fd;
        pf.events = POLLIN;
        pf.revents = 0;
        CHECK_EQ(poll(&pf, 1, 5000), 1);
    }
    return r;
}

static void garbage_check(int fd, const unsigned char *d, size_t len, int nonblock, gcounts *c) {
    unsigned char *buf = th_xmalloc(G_MAX + G_GUARD);
    model m;
    ipc_frame f;
    size_t cap = G_CAP, i, calls = 0;
    m.d = d;
    m.len = len;
    m.pos = 0;
    m.broken = 0;
    frame_on(&f, fd, G_MAX, 0);
    for (;;) {
        size_t off = 0;
        ssize_t want = model_next(&m, cap, &off), r;
        memset(buf, 0xa5, G_MAX + G_GUARD);
        r = recv_poll(&f, fd, buf, cap, nonblock);
        for (i = cap; i < G_MAX + G_GUARD; i++)
            if (buf[i] != 0xa5)
                th_fail(__FILE__, __LINE__, "recv with cap %zu wrote byte %zu", cap, i);
        if (r != want)
            th_fail(__FILE__, __LINE__,
                    "call %zu at stream offset %zu of %zu: %zd (%s), want %zd (%s)", calls, m.pos,
                    len, r, ipc_strerror((int)r), want, ipc_strerror((int)want));
        calls++;
        if (r >= 0) {
            CHECK(memcmp(buf, d + off, (size_t)r) == 0);
            c->msgs++;
            cap = G_CAP;
        } else if (r == -EMSGSIZE) {
            CHECK_ERR(ipc_frame_pending(&f), get_le32(d + m.pos));
            c->emsgsize++;
            cap = G_MAX; /* a larger buffer takes it */
        } else if (r == -EPROTO) {
            c->eproto++;
            CHECK_ERR(ipc_frame_recv(&f, buf, G_MAX, 0), -EPROTO); /* for good */
            CHECK_ERR(ipc_frame_recv(&f, buf, G_CAP, IPC_FOREVER), -EPROTO);
            CHECK_ERR(ipc_frame_recv(&f, NULL, 0, 0), -EPROTO);
            break;
        } else {
            CHECK_ERR(r, -EPIPE);
            c->epipe++;
            CHECK_ERR(ipc_frame_recv(&f, buf, G_MAX, 0), -EPIPE);
            break;
        }
    }
    free(buf);
}

TEST(frame_fuzz_garbage) {
    int fds = th_fd_count(), p[2];
    gcounts c;
    uint32_t seed;
    memset(&c, 0, sizeof c);
    for (seed = 1; seed <= 400; seed++) {
        size_t len;
        unsigned char *d = garbage_build(seed, &len);
        mk_pipe(p); /* the whole stream fits in the pipe: write it, close, read it */
        raw_write(p[1], d, len);
        close_fd(p[1]);
        garbage_check(p[0], d, len, 0, &c);
        close_fd(p[0]);
        free(d);
    }
    if (c.msgs < 1000 || c.emsgsize < 100 || c.eproto < 100 || c.epipe < 50)
        th_fail(__FILE__, __LINE__, "poor coverage: %d messages, %d EMSGSIZE, %d EPROTO, %d EPIPE",
                c.msgs, c.emsgsize, c.eproto, c.epipe);
    CHECK_EQ(th_fd_count(), fds);
}

/* The same garbage arriving in random pieces from a child, read blocking and non-blocking. */
TEST(frame_fuzz_garbage_chunked) {
    int fds = th_fd_count();
    gcounts c;
    uint32_t seed;
    memset(&c, 0, sizeof c);
    for (seed = 1001; seed <= 1024; seed++) {
        size_t len;
        unsigned char *d = garbage_build(seed, &len);
        stream s;
        pid_t pid;
        stream_open(&s, seed % 2 ? K_SOCK : K_PIPE);
        if (seed % 4 < 2) CHECK_OK(ipc_fd_set_nonblock(s.rfd, 1));
        pid = feed(s.wfd, s.rfd, d, len, seed, 100, 4, 1);
        close_fd(s.wfd);
        s.wfd = -1;
        garbage_check(s.rfd, d, len, seed % 4 < 2, &c);
        close_fd(s.rfd); /* the feeder may still be writing after an -EPROTO: it stops */
        s.rfd = -1;
        CHECK_EQ(th_join(pid, 5000), 0);
        stream_close(&s);
        free(d);
    }
    CHECK(c.msgs > 0 && c.eproto > 0);
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- many writers on one FIFO ---- */

#define AW_WRITERS 6
#define AW_FRAMES  300

static size_t aw_len(uint32_t *s, unsigned seq) {
    if (seq == 0) return PIPE_BUF - 4; /* the largest atomic frame, once each */
    return 3 + th_rnd32(s) % (PIPE_BUF - 4 - 3 + 1);
}

static const char *aw_path;
static void atomic_writer(void *arg) {
    unsigned w = (unsigned)(uintptr_t)arg, seq;
    uint32_t s = rnd_seed(w);
    unsigned char m[PIPE_BUF];
    ipc_frame f;
    int fd = ipc_fifo_open(aw_path, IPC_FIFO_WRITE, 5000 * MS);
    CHECK_OK(fd);
    frame_on(&f, fd, 0, IPC_FRAME_ATOMIC);
    CHECK_ERR(ipc_frame_send(&f, m, PIPE_BUF - 3, 0), -EMSGSIZE);
    for (seq = 0; seq < AW_FRAMES; seq++) {
        size_t len = aw_len(&s, seq);
        th_pat_fill(m, len, w * 65536 + seq);
        m[0] = (unsigned char)w;
        m[1] = (unsigned char)seq;
        m[2] = (unsigned char)(seq >> 8);
        CHECK_ERR(ipc_frame_send(&f, m, len, 5000 * MS), (ssize_t)len);
    }
    close_fd(fd);
}

TEST_T(frame_atomic_fifo_many_writers, 30000) {
    int fds = th_fd_count(), rfd, hold, i;
    unsigned next[AW_WRITERS + 1];
    uint32_t rs[AW_WRITERS + 1];
    pid_t pids[AW_WRITERS + 1];
    unsigned char buf[PIPE_BUF];
    char dir[64], path[128];
    ipc_frame f;
    th_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/fifo", dir);
    CHECK_ERR(ipc_fifo_create(path, 0), 0);
    rfd = ipc_fifo_open(path, IPC_FIFO_READ, 0);
    CHECK_OK(rfd);
    /* hold a write end, so the stream never ends between one writer and the next */
    hold = ipc_fifo_open(path, IPC_FIFO_WRITE, 0);
    CHECK_OK(hold);
    aw_path = path;
    for (i = 1; i <= AW_WRITERS; i++) {
        next[i] = 0;
        rs[i] = rnd_seed((uint32_t)i);
        pids[i] = th_spawn(atomic_writer, (void *)(uintptr_t)i);
        CHECK(pids[i] > 0);
    }
    frame_on(&f, rfd, 0, 0);
    for (i = 0; i < AW_WRITERS * AW_FRAMES; i++) {
        ssize_t r = ipc_frame_recv(&f, buf, sizeof buf, 10000 * MS);
        unsigned w, seq;
        size_t want;
        if (r < 3) th_fail(__FILE__, __LINE__, "frame %d: %zd (%s)", i, r, ipc_strerror((int)r));
        w = buf[0];
        seq = buf[1] | (unsigned)buf[2] << 8;
        if (w < 1 || w > AW_WRITERS || seq != next[w])
            th_fail(__FILE__, __LINE__, "frame %d: writer %u seq %u (want seq %u)", i, w, seq,
                    w >= 1 && w <= AW_WRITERS ? next[w] : 0);
        want = aw_len(&rs[w], seq);
        CHECK_EQ(r, want);
        buf[0] = th_pat(0, w * 65536 + seq);
        buf[1] = th_pat(1, w * 65536 + seq);
        buf[2] = th_pat(2, w * 65536 + seq);
        th_pat_check(__FILE__, __LINE__, buf, 0, want, w * 65536 + seq);
        next[w]++;
    }
    for (i = 1; i <= AW_WRITERS; i++)
        CHECK_EQ(th_join(pids[i], 5000), 0);
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), -EAGAIN); /* nothing else came */
    close_fd(hold);
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 1000 * MS), -EPIPE);
    close_fd(rfd);
    CHECK_ERR(ipc_fifo_unlink(path), 0);
    tmpdir_remove(dir);
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- signals ---- */

/* Large frames while SIGALRM arrives every 100 us (EINTR everywhere): all intact. */
typedef struct storm_arg {
    int fd, other;
    int storm; /* the child has its own storm too */
    int pause_ms;
} storm_arg;

#define STORM_N 8

/* A storm child's start: close the parent's end, start a storm of its own if asked, frame
   its end. Returns a buffer of 1 MiB. */
static unsigned char *storm_begin(storm_arg *a, ipc_frame *f) {
    unsigned char *m = th_xmalloc(MiB);
    if (a->other >= 0) close_fd(a->other);
    if (a->storm) th_storm_start();
    frame_on(f, a->fd, 0, 0);
    return m;
}

/* A storm child's end: its own storm came (20 signals at least), its end closed. */
static void storm_end(storm_arg *a, unsigned char *m) {
    if (a->storm) CHECK(th_storm_stop() >= 20);
    close_fd(a->fd);
    free(m);
}

static void storm_sender(void *arg) {
    storm_arg *a = (storm_arg *)arg;
    ipc_frame f;
    unsigned char *m = storm_begin(a, &f);
    int k;
    for (k = 0; k < STORM_N; k++) {
        th_pat_fill(m, MiB - (size_t)k, 2300 + (uint32_t)k);
        CHECK_ERR(ipc_frame_send(&f, m, MiB - (size_t)k, k % 2 ? 5000 * MS : IPC_FOREVER),
                  (ssize_t)(MiB - (size_t)k));
        if (a->pause_ms) th_sleep_ms(a->pause_ms);
    }
    storm_end(a, m);
}

static void storm_receiver(void *arg) {
    storm_arg *a = (storm_arg *)arg;
    ipc_frame f;
    unsigned char *m = storm_begin(a, &f);
    int k;
    for (k = 0; k < STORM_N; k++) {
        CHECK_RECV(&f, m, MiB, k % 2 ? 5000 * MS : IPC_FOREVER, MiB - (size_t)k,
                   2300 + (uint32_t)k);
        if (a->pause_ms) th_sleep_ms(a->pause_ms);
    }
    CHECK_ERR(ipc_frame_recv(&f, m, MiB, 5000 * MS), -EPIPE);
    storm_end(a, m);
}

TEST_T(frame_signal_storm, 30000) {
    int fds = th_fd_count(), round;
    for (round = 0; round < 4; round++) {
        int parent_sends = round % 2, p[2], n;
        storm_arg a;
        pid_t pid;
        if (round < 2)
            mk_pipe(p);
        else
            mk_socketpair(p);
        a.fd = parent_sends ? p[0] : p[1];
        a.other = parent_sends ? p[1] : p[0];
        a.storm = round >= 2;
        a.pause_ms = 2; /* the parent blocks, and is interrupted, between the pieces */
        pid = th_spawn(parent_sends ? storm_receiver : storm_sender, &a);
        close_fd(a.fd);
        a.fd = a.other;
        a.other = -1;
        a.storm = 0;
        a.pause_ms = 0;
        th_storm_start();
        if (parent_sends)
            storm_sender(&a);
        else
            storm_receiver(&a);
        n = th_storm_stop();
        if (n < 20) th_fail(__FILE__, __LINE__, "only %d signals in round %d", n, round);
        CHECK_EQ(th_join(pid, 10000), 0);
    }
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- interop with Python ---- */

static int have_python(void) {
    return system("command -v python3 >/dev/null 2>&1") == 0;
}

static void spawn_python(ipc_proc *p, const char *script) {
    char *argv[4];
    ipc_spawn_opts o;
    int r;
    memset(&o, 0, sizeof o);
    o.err = IPC_STDIO_INHERIT;
    o.flags = IPC_SPAWN_PATH;
    argv[0] = (char *)"python3";
    argv[1] = (char *)"-c";
    argv[2] = (char *)script;
    argv[3] = NULL;
    r = ipc_proc_spawn(p, "python3", argv, &o);
    if (r == -ENOENT) th_skip("python3 cannot be started");
    CHECK_ERR(r, 0);
}

static void python_done(ipc_proc *p) {
    int st = ipc_proc_wait(p, 10000 * MS);
    CHECK_OK(st);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        th_fail(__FILE__, __LINE__, "python3 ended with status 0x%x", st);
    CHECK_ERR(ipc_proc_close(p), 0);
}

/* Python writes frames with struct.pack('<I'); byte i of message k is (i + k) & 255. */
static const char py_sender[] = "import struct, sys\n"
                                "o = sys.stdout.buffer\n"
                                "base = bytes(range(256))\n"
                                "for k, n in enumerate([0, 1, 3, 4095, 4096, 65536, 1 << 20, 5]):\n"
                                "    m = (base * (n // 256 + 2))[k:k + n]\n"
                                "    o.write(struct.pack('<I', len(m)) + m)\n"
                                "    o.flush()\n";

TEST_T(frame_python_sends, 20000) {
    static const size_t sizes[] = {0, 1, 3, 4095, 4096, 65536, 1 << 20, 5};
    int fds = th_fd_count();
    unsigned char *buf = th_xmalloc(MiB);
    ipc_frame f;
    ipc_proc p;
    size_t k, i;
    if (!have_python()) th_skip("python3 not installed");
    spawn_python(&p, py_sender);
    frame_on(&f, p.out, 0, 0);
    for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        ssize_t r = ipc_frame_recv(&f, buf, MiB, 10000 * MS);
        CHECK_ERR(r, (ssize_t)sizes[k]);
        for (i = 0; i < sizes[k]; i++)
            if (buf[i] != (unsigned char)(i + k))
                th_fail(__FILE__, __LINE__, "message %zu byte %zu: 0x%02x", k, i, buf[i]);
    }
    CHECK_ERR(ipc_frame_recv(&f, buf, MiB, 10000 * MS), -EPIPE);
    python_done(&p);
    free(buf);
    CHECK_EQ(th_fd_count(), fds);
}

/* Python reads frames with struct.unpack('<I') and answers each with a frame holding
   the crc32 of the payload and the payload reversed. */
static const char py_echo[] = "import struct, sys, zlib\n"
                              "i = sys.stdin.buffer\n"
                              "o = sys.stdout.buffer\n"
                              "while True:\n"
                              "    h = i.read(4)\n"
                              "    if not h:\n"
                              "        break\n"
                              "    if len(h) != 4:\n"
                              "        sys.exit(2)\n"
                              "    (n,) = struct.unpack('<I', h)\n"
                              "    m = i.read(n)\n"
                              "    if len(m) != n:\n"
                              "        sys.exit(3)\n"
                              "    r = struct.pack('<I', zlib.crc32(m) & 0xffffffff) + m[::-1]\n"
                              "    o.write(struct.pack('<I', len(r)) + r)\n"
                              "    o.flush()\n";

static uint32_t crc32_of(const unsigned char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    size_t i;
    int b;
    for (i = 0; i < n; i++) {
        c ^= p[i];
        for (b = 0; b < 8; b++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

TEST_T(frame_python_echo, 20000) {
    int fds = th_fd_count();
    unsigned char *m = th_xmalloc(MiB), *back = th_xmalloc(MiB + 4);
    ipc_frame out, in;
    ipc_proc p;
    size_t k, i;
    if (!have_python()) th_skip("python3 not installed");
    spawn_python(&p, py_echo);
    frame_on(&out, p.in, 0, 0);
    frame_on(&in, p.out, 0, 0);
    for (k = 0; k < NSIZES + 3; k++) {
        size_t len = k < NSIZES ? rt_sizes[k] : 17 * k;
        th_pat_fill(m, len, 2400 + (uint32_t)k);
        CHECK_ERR(ipc_frame_send(&out, m, len, 10000 * MS), (ssize_t)len);
        CHECK_ERR(ipc_frame_recv(&in, back, MiB + 4, 10000 * MS), (ssize_t)(len + 4));
        CHECK_EQ(get_le32(back), crc32_of(m, len));
        for (i = 0; i < len; i++)
            if (back[4 + i] != m[len - 1 - i])
                th_fail(__FILE__, __LINE__, "message %zu: reversed byte %zu differs", k, i);
    }
    CHECK_EQ(ipc_fd_close(&p.in), 0); /* Python sees the end between frames and exits 0 */
    CHECK_ERR(ipc_frame_recv(&in, back, MiB + 4, 10000 * MS), -EPIPE);
    python_done(&p);
    free(m);
    free(back);
    CHECK_EQ(th_fd_count(), fds);
}

/* ---- bad input ---- */

TEST(frame_bad_args) {
    int fds = th_fd_count(), p[2], r, saved0;
    unsigned char buf[8];
    ipc_frame f;
    ipc_frame_opts o;
    mk_pipe(p);
    CHECK_ERR(ipc_frame_init(NULL, p[0], NULL), -EINVAL);
    /* A failed init must leave nothing usable: with fd 0 a pipe's write end, a frame that
       kept fd 0 (a zeroed struct) would write there. */
    saved0 = dup(0);
    CHECK(saved0 >= 0);
    CHECK_EQ(dup2(p[1], 0), 0);
    memset(&f, 0, sizeof f);
    r = ipc_frame_init(&f, -1, NULL);
    CHECK(r == -EBADF || r == -EINVAL);
    CHECK(ipc_frame_send(&f, "x", 1, 0) < 0);
    CHECK(ipc_frame_send(&f, NULL, 0, 0) < 0);
    CHECK(ipc_frame_recv(&f, buf, sizeof buf, 0) < 0);
    memset(&o, 0, sizeof o);
    o.flags = 0x80;
    memset(&f, 0, sizeof f);
    CHECK_ERR(ipc_frame_init(&f, 0, &o), -EINVAL);
    CHECK(ipc_frame_send(&f, "x", 1, 0) < 0);
    CHECK(ipc_frame_send(&f, NULL, 0, 0) < 0);
    CHECK_EQ(queued(p[0]), 0);
    CHECK_EQ(dup2(saved0, 0), 0);
    close_fd(saved0);

    frame_on(&f, p[1], 0, 0);
    CHECK_ERR(ipc_frame_send(NULL, "x", 1, 0), -EINVAL);
    CHECK_ERR(ipc_frame_send(&f, NULL, 1, 0), -EINVAL);
    CHECK_ERR(ipc_frame_send(&f, "x", 1, -2), -EINVAL);
    CHECK_ERR(ipc_frame_send(&f, "x", 1, INT64_MIN), -EINVAL);
    CHECK_EQ(queued(p[0]), 0);
    CHECK_ERR(ipc_frame_send(&f, NULL, 0, 0), 0); /* msg may be NULL for len 0 */
    CHECK_ERR(ipc_frame_send(&f, buf, 0, 0), 0);
    CHECK_EQ(queued(p[0]), 8);

    frame_on(&f, p[0], 0, 0);
    CHECK_ERR(ipc_frame_recv(NULL, buf, sizeof buf, 0), -EINVAL);
    CHECK_ERR(ipc_frame_recv(&f, NULL, 1, 0), -EINVAL);
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, -2), -EINVAL);
    CHECK_EQ(queued(p[0]), 8); /* nothing consumed by the refused calls */
    CHECK_ERR(ipc_frame_pending(NULL), -EINVAL);
    CHECK_ERR(ipc_frame_pending(&f), -ENOMSG);
    CHECK_ERR(ipc_frame_recv(&f, NULL, 0, 0), 0);
    CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), 0);
    CHECK_ERR(ipc_frame_recv(&f, NULL, 0, 0), -EAGAIN);
    close_fd(p[0]);
    close_fd(p[1]);
    CHECK_EQ(th_fd_count(), fds);
}

/* Whether a write with RWF_NOWAIT works on this pipe's write end (it writes one byte). */
static int have_rwf_nowait(int wfd) {
    struct iovec v;
    long r;
    v.iov_base = (void *)"x";
    v.iov_len = 1;
    r = syscall(SYS_pwritev2, wfd, &v, 1, -1L, -1L, 8 /* RWF_NOWAIT */);
    return r == 1;
}

/* An fd that is closed, or open the wrong way: -EBADF from the call, nothing else. */
TEST(frame_bad_fd) {
    int fds = th_fd_count(), p[2], r;
    unsigned char buf[8];
    ipc_frame f;
    mk_pipe(p);
    frame_on(&f, p[0], 0, 0);
    /* The read end. Where pwritev2(RWF_NOWAIT) is missing (old kernels, qemu-user) the
       section 3 fallback polls for POLLOUT first, which a read end never reports, so
       only the deadline ends the call there. */
    r = (int)ipc_frame_send(&f, "x", 1, 50 * MS);
    if (r != -EBADF && !(r == -ETIMEDOUT && !have_rwf_nowait(p[1])))
        th_fail(__FILE__, __LINE__, "send on a read end: %d (%s)", r, ipc_strerror(r));
    frame_on(&f, p[1], 0, 0);
    r = (int)ipc_frame_recv(&f, buf, sizeof buf, 50 * MS); /* the write end: the same */
    if (r != -EBADF && !(r == -ETIMEDOUT && !have_rwf_nowait(p[1])))
        th_fail(__FILE__, __LINE__, "recv on a write end: %d (%s)", r, ipc_strerror(r));
    close_fd(p[0]);
    close_fd(p[1]);
    r = ipc_frame_init(&f, p[0], NULL); /* may or may not look at the fd */
    CHECK(r == 0 || r == -EBADF);
    if (r == 0) {
        CHECK_ERR(ipc_frame_send(&f, "x", 1, 0), -EBADF);
        CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 0), -EBADF);
        CHECK_ERR(ipc_frame_recv(&f, buf, sizeof buf, 50 * MS), -EBADF);
    }
    CHECK_EQ(th_fd_count(), fds);
}
