/* tests/fuzz/frame.c - fuzz the message framing of ipc.h (section 8).

   Decoder mode (first byte < 0x80): the input is a byte stream cut into chunks of
   fuzz-chosen sizes. Each chunk is written to a pipe or a stream socketpair, then
   ipc_frame_recv is called with timeout 0 until it has nothing more to say. A reference
   decoder over the same bytes says what every call must return: each whole frame once,
   byte for byte, in order; -EAGAIN while a frame is incomplete; -EMSGSIZE (and
   ipc_frame_pending telling the length) for a buffer too small; -EPROTO for a header over
   max_msg and forever after; at end of stream -EPIPE between frames, -EPROTO inside one.
   Buffers are allocated at their exact size (ASan sees a write past cap).

   Encoder mode (first byte >= 0x80): messages sent with timeout 0 into a pipe or socket
   whose buffer is small, so sends stop part way; a call with the same message resumes,
   another message is -EINVAL until then. The reader takes the bytes in fuzz-chosen
   amounts and checks that the stream is exactly the frames of the messages sent. */
#define _GNU_SOURCE 1
#define IPC_IMPLEMENTATION
#include "ipc.h"
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define BIG (1u << 20) /* the largest receive buffer the harness allocates */

static void make_pair(int sock, int fds[2]) {
    int rc = sock ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) : pipe2(fds, O_CLOEXEC);
    FZ_CHECK(rc == 0, "pair: %d", errno);
}

/* ---- decoder ---- */

typedef struct dec_model {
    unsigned char *s; /* every byte written */
    size_t n, pos;    /* bytes written; start of the frame being received */
    uint32_t max;
    int broken, eof;
} dec_model;

/* What the next recv with cap must return (len of a frame, or an error). */
static long long dec_expect(const dec_model *m, size_t cap, uint32_t *flen) {
    size_t have = m->n - m->pos;
    uint32_t len;
    *flen = 0;
    if (m->broken) return -EPROTO;
    if (have < 4) return m->eof ? (have ? -EPROTO : -EPIPE) : -EAGAIN;
    len = (uint32_t)m->s[m->pos] | (uint32_t)m->s[m->pos + 1] << 8 |
          (uint32_t)m->s[m->pos + 2] << 16 | (uint32_t)m->s[m->pos + 3] << 24;
    *flen = len;
    if (len > m->max) return -EPROTO;
    if (len > cap) return -EMSGSIZE;
    if (have - 4 < len) return m->eof ? -EPROTO : -EAGAIN;
    return len;
}

static size_t pick_cap(fz_in *in, uint32_t max) {
    unsigned v = fz_u8(in);
    switch (v & 3) {
    case 0: return v >> 2;                     /* 0..63 */
    case 1: return (size_t)(v >> 2) << 8;      /* up to 16 KiB */
    case 2: return max < BIG ? max : BIG;      /* as large as a frame may be */
    default: return (size_t)fz_u16(in) % 4096; /* anything small */
    }
}

/* Receive until the decoder has nothing more to give; check every result. */
static void dec_drain(ipc_frame *f, dec_model *m, fz_in *in, unsigned char **buf, size_t *cap) {
    int k;
    for (k = 0; k < 64; k++) {
        uint32_t flen;
        long long want = dec_expect(m, *cap, &flen);
        ssize_t rc = ipc_frame_recv(f, *buf, *cap, 0), pend = ipc_frame_pending(f);
        FZ_CHECK(rc == want, "recv cap %zu: %zd, want %lld (stream %zu of %zu)", *cap, rc, want,
                 m->pos, m->n);
        if (rc >= 0) {
            FZ_CHECK(rc == 0 || memcmp(*buf, m->s + m->pos + 4, (size_t)rc) == 0,
                     "frame at %zu arrived corrupt", m->pos);
            FZ_CHECK(pend == -ENOMSG, "pending %zd after a whole frame", pend);
            m->pos += 4 + (size_t)rc;
        } else if (rc == -EPROTO) {
            m->broken = 1;
            FZ_CHECK(pend == -ENOMSG, "pending %zd on a broken stream", pend);
            return;
        } else if (rc == -EMSGSIZE) {
            FZ_CHECK(pend == (ssize_t)flen, "pending %zd, frame %u", pend, flen);
        } else {
            /* -EAGAIN, -EPIPE: a header in, or not */
            FZ_CHECK(pend == (m->n - m->pos >= 4 ? (ssize_t)flen : -ENOMSG),
                     "pending %zd with %zu bytes of the frame in", pend, m->n - m->pos);
            return;
        }
        /* a new frame (or a new try after -EMSGSIZE): a new buffer of a new size. A frame
           cut short must be finished into the same buffer, so only here. */
        free(*buf);
        *cap = pick_cap(in, m->max);
        if (rc == -EMSGSIZE && (fz_u8(in) & 1) && flen <= BIG) *cap = flen; /* make it fit */
        *buf = *cap ? (unsigned char *)malloc(*cap) : NULL;
    }
}

static void decoder(fz_in *in, unsigned c0) {
    ipc_frame_opts o;
    ipc_frame f;
    dec_model m;
    int fds[2];
    unsigned char *buf = NULL;
    size_t cap;
    memset(&o, 0, sizeof o);
    memset(&m, 0, sizeof m);
    switch ((c0 >> 2) & 3) {
    case 0: o.max_msg = 0; break;
    case 1: o.max_msg = 1 + fz_u8(in); break;
    case 2: o.max_msg = fz_u16(in); break;
    default: o.max_msg = fz_u32(in) % (BIG + 2); break;
    }
    m.max = o.max_msg ? o.max_msg : 16u << 20;
    make_pair(c0 & 1, fds);
    if (c0 & 2) fcntl(fds[0], F_SETFL, O_NONBLOCK); /* either way must work */
    FZ_CHECK(ipc_frame_init(&f, fds[0], &o) == 0, "init");
    m.s = (unsigned char *)malloc(in->n + 1);
    cap = pick_cap(in, m.max);
    buf = cap ? (unsigned char *)malloc(cap) : NULL;
    while (in->n > 0) {
        unsigned v = fz_u8(in);
        size_t len = v < 0xf0 ? (size_t)v % 64 : (size_t)(v - 0xef) * 64, k = 0;
        if (len > in->n) len = in->n;
        memcpy(m.s + m.n, in->p, len);
        in->p += len;
        in->n -= len;
        while (k < len) { /* the reader drains after each chunk: it never fills the pipe */
            ssize_t w = write(fds[1], m.s + m.n + k, len - k);
            FZ_CHECK(w > 0, "write: %d", errno);
            k += (size_t)w;
        }
        m.n += len;
        dec_drain(&f, &m, in, &buf, &cap);
    }
    if (c0 & 0x10) { /* the writer goes: end of stream */
        close(fds[1]);
        fds[1] = -1;
        m.eof = 1;
        dec_drain(&f, &m, in, &buf, &cap);
        {
            uint32_t fl;
            long long want = dec_expect(&m, cap, &fl);
            FZ_CHECK(want < 0 && ipc_frame_recv(&f, buf, cap, 0) == want, "after the end");
        }
    }
    free(buf);
    free(m.s);
    close(fds[0]);
    if (fds[1] >= 0) close(fds[1]);
}

/* ---- encoder ---- */

typedef struct enc_model {
    unsigned char *s; /* the frames the stream must carry */
    size_t n, cap;
    size_t got;  /* bytes the reader took */
    size_t done; /* bytes of whole frames sent */
} enc_model;

static void enc_add(enc_model *e, const unsigned char *p, size_t n) {
    if (e->n + n > e->cap) {
        e->cap = (e->n + n) * 2;
        e->s = (unsigned char *)realloc(e->s, e->cap);
        FZ_CHECK(e->s != NULL, "realloc");
    }
    memcpy(e->s + e->n, p, n);
    e->n += n;
}

/* Take up to max bytes from the reader; they must continue the expected stream. */
static size_t enc_read(int fd, enc_model *e, size_t max, size_t limit) {
    unsigned char tmp[4096];
    size_t total = 0;
    while (total < max) {
        size_t want = max - total < sizeof tmp ? max - total : sizeof tmp;
        ssize_t r = read(fd, tmp, want);
        if (r <= 0) break;
        FZ_CHECK(e->got + (size_t)r <= limit, "the stream carries %zu bytes more than sent",
                 e->got + (size_t)r - limit);
        FZ_CHECK(memcmp(tmp, e->s + e->got, (size_t)r) == 0, "stream differs at byte %zu", e->got);
        e->got += (size_t)r;
        total += (size_t)r;
    }
    return total;
}

static size_t queued(int fd) {
    int n = 0;
    FZ_CHECK(ioctl(fd, FIONREAD, &n) == 0, "FIONREAD");
    return (size_t)n;
}

static void encoder(fz_in *in, unsigned c0) {
    ipc_frame_opts o;
    ipc_frame f;
    enc_model e;
    int fds[2], sock = c0 & 1, steps = 0;
    unsigned char *flight = NULL; /* the message being sent, if part of it is out */
    size_t flen = 0;
    memset(&o, 0, sizeof o);
    memset(&e, 0, sizeof e);
    o.max_msg = (c0 & 2) ? 1 + fz_u16(in) : 0;
    o.flags = (c0 & 4) ? IPC_FRAME_ATOMIC : 0;
    make_pair(sock, fds);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    if (c0 & 8) fcntl(fds[1], F_SETFL, O_NONBLOCK);
    if (sock) {
        int sz = 1024 * (1 + (int)fz_u8(in) % 8);
        setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    } else {
        fcntl(fds[1], F_SETPIPE_SZ, 4096);
    }
    FZ_CHECK(ipc_frame_init(&f, fds[1], &o) == 0, "init");
    while (in->n > 0 && steps++ < 256) {
        unsigned op = fz_u8(in);
        if (op & 1) { /* read some */
            enc_read(fds[0], &e, (size_t)fz_u16(in) % 20000, e.n);
            continue;
        }
        {
            size_t len = (op & 2) ? fz_u16(in) % 70000 : (op >> 2), i;
            int same = flight && (op & 4) == 0; /* resume the frame in flight */
            unsigned char *msg = same ? flight : (unsigned char *)malloc(len ? len : 1);
            ssize_t rc;
            if (same)
                len = flen;
            else
                for (i = 0; i < len; i++)
                    msg[i] = (unsigned char)(i * 7 + e.n);
            /* a resumed frame must name the same buffer; an empty one may name none */
            rc = ipc_frame_send(&f, same || len || !(op & 8) ? msg : NULL, len, 0);
            if (len > (o.max_msg ? o.max_msg : 16u << 20) ||
                ((o.flags & IPC_FRAME_ATOMIC) && len + 4 > PIPE_BUF)) {
                FZ_CHECK(rc == -EMSGSIZE, "send %zu: %zd", len, rc); /* even with one in flight */
                if (!same) free(msg);
                continue;
            }
            if (flight && !same) {
                FZ_CHECK(rc == -EINVAL, "another message while one is in flight: %zd", rc);
                free(msg);
                continue;
            }
            if (!same) { /* the frame the stream must now carry, if any of it goes out */
                unsigned char hdr[4] = {(unsigned char)len, (unsigned char)(len >> 8),
                                        (unsigned char)(len >> 16), (unsigned char)(len >> 24)};
                enc_add(&e, hdr, 4);
                enc_add(&e, msg, len);
            }
            FZ_CHECK(rc == (ssize_t)len || rc == -EAGAIN, "send %zu: %zd", len, rc);
            if (rc >= 0) {
                e.done = e.n;
                if (msg != flight) free(msg);
                free(flight);
                flight = NULL;
                continue;
            }
            /* How much went out: what the reader took and what waits for it. */
            if (e.got + queued(fds[0]) == e.done) { /* nothing: no frame in flight */
                e.n = e.done;
                if (msg != flight) free(msg);
                free(flight);
                flight = NULL;
            } else {
                FZ_CHECK(!(o.flags & IPC_FRAME_ATOMIC) || sock, "an atomic frame went out in part");
                flight = msg;
                flen = len;
            }
        }
    }
    /* finish the frame in flight, reading as it goes */
    while (flight) {
        ssize_t rc = ipc_frame_send(&f, flight, flen, 0);
        FZ_CHECK(rc == (ssize_t)flen || rc == -EAGAIN, "resume: %zd", rc);
        if (rc >= 0) {
            e.done = e.n;
            free(flight);
            flight = NULL;
        }
        enc_read(fds[0], &e, 1 << 20, e.n);
    }
    enc_read(fds[0], &e, (size_t)-1, e.n);
    FZ_CHECK(e.got == e.n, "the reader got %zu bytes of %zu", e.got, e.n);
    free(e.s);
    close(fds[0]);
    close(fds[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_in in = {data, size};
    unsigned c0 = fz_u8(&in);
    int start = fz_fd_count();
    if (c0 & 0x80)
        encoder(&in, c0);
    else
        decoder(&in, c0);
    FZ_CHECK(fz_fd_count() == start, "fd leak");
    return 0;
}
