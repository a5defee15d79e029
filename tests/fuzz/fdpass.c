/* tests/fuzz/fdpass.c - fuzz the control-message handling of ipc_sock_recv_fds and
   ipc_sock_recv_ring (section 11).

   The receiver cannot be handed a forged control buffer (the kernel writes it), so the
   input drives what the kernel writes: over a stream, datagram or seqpacket socketpair,
   raw sendmsg calls with 0..3 SCM_RIGHTS messages of 0..8 descriptors each, explicit
   SCM_CREDENTIALS, SO_PASSCRED on the receiver (a credentials message on everything),
   empty seqpacket messages, half-closes, real rings sent with ipc_sock_send_ring; and
   receives with fuzz-chosen buffer sizes and descriptor room, some with RLIMIT_NOFILE
   squeezed so that the kernel cannot install what came (MSG_CTRUNC).

   Every receive must leave the fd table exactly as it says: on success *nfds new
   descriptors, each valid and close-on-exec, and no others; on any error *nfds = 0 and
   not one new descriptor. Over the input, no more descriptors arrive than were sent, and
   nothing leaks at the end. On datagram and seqpacket sockets (one message per receive)
   a model of the queue says exactly what each receive returns: the message and all its
   descriptors when buffer and room suffice, -EMSGSIZE when either is too small, -EPIPE
   for an empty seqpacket message, -EAGAIN when nothing is queued; messages may carry up
   to 253 descriptors (the kernel's SCM_MAX_FD; the API sends 252 at most). */
#define _GNU_SOURCE 1
#define IPC_IMPLEMENTATION
#include "ipc.h"
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NPOOL 4
#define NQ    80 /* messages the model queues per input */

/* datagram, seqpacket: what the socket holds, in order */
static struct {
    size_t len[NQ];
    int nfds[NQ];
    int head, tail, exact;
} Q;

static void q_push(size_t len, int nfds) {
    if (Q.tail < NQ) {
        Q.len[Q.tail] = len;
        Q.nfds[Q.tail++] = nfds;
    } else {
        Q.exact = 0;
    }
}

static int highest_fd(void) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int hi = 0;
    if (!d) return 1024;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && atoi(e->d_name) > hi) hi = atoi(e->d_name);
    closedir(d);
    return hi;
}

static long sent_fds, got_fds;

static int type_of(int fd) {
    int t = 0;
    socklen_t l = sizeof t;
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &l);
    return t;
}

static void do_send(int fd, int type, fz_in *in, unsigned op, const int *pool) {
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(sizeof(int) * 8) * 2 +
               CMSG_SPACE(sizeof(struct ucred))];
    } cb;
    unsigned char data[64];
    struct msghdr m;
    struct iovec v;
    struct cmsghdr *c;
    size_t len = fz_u8(in) % 48, ctl = 0;
    unsigned nr = (op >> 2) & 3, i, k, n = 0;
    if (type == SOCK_STREAM && len == 0) len = 1; /* a stream drops fds on empty writes */
    memset(&cb, 0, sizeof cb);
    memset(&m, 0, sizeof m);
    fz_bytes(in, data, len);
    v.iov_base = data;
    v.iov_len = len;
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    m.msg_control = cb.b;
    m.msg_controllen = sizeof cb.b;
    c = CMSG_FIRSTHDR(&m);
    for (i = 0; i < nr; i++) {
        unsigned cnt = fz_u8(in), pick = fz_u8(in);
        int fds[253];
        /* a few descriptors, or (first message only) a great many: up to SCM_MAX_FD */
        cnt = (i == 0 && (cnt & 0x80)) ? 200 + (cnt & 0x7f) % 54 : cnt % 9;
        for (k = 0; k < cnt; k++)
            fds[k] = pool[(pick + k * (pick | 1)) % NPOOL];
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * cnt);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * cnt);
        ctl += CMSG_SPACE(sizeof(int) * cnt);
        n += cnt;
        c = (struct cmsghdr *)(void *)(cb.b + ctl);
    }
    if (op & 0x10) { /* our own credentials, as the kernel allows */
        struct ucred u;
        u.pid = getpid();
        u.uid = getuid();
        u.gid = getgid();
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_CREDENTIALS;
        c->cmsg_len = CMSG_LEN(sizeof u);
        memcpy(CMSG_DATA(c), &u, sizeof u);
        ctl += CMSG_SPACE(sizeof u);
    }
    m.msg_controllen = ctl;
    if (!ctl) m.msg_control = NULL;
    if (sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
        sent_fds += n;
        q_push(len, (int)n);
    }
}

static void do_recv(int fd, fz_in *in, unsigned op) {
    unsigned char *buf;
    size_t cap = fz_u8(in) % 72;
    int want = (op & 0x40) ? (int)fz_u8(in) * 2 : (int)fz_u8(in) % 10, nf = want, i, before;
    int fds[IPC_SOCK_MAX_FDS + 260];
    struct rlimit old, lim;
    ssize_t rc;
    if (want > IPC_SOCK_MAX_FDS + 255) want = nf = IPC_SOCK_MAX_FDS + 255;
    buf = (unsigned char *)malloc(cap ? cap : 1);
    before = fz_fd_count();
    if (op & 0x20) { /* room for only a few more descriptors */
        getrlimit(RLIMIT_NOFILE, &old);
        lim = old;
        lim.rlim_cur = (rlim_t)(highest_fd() + 1 + (int)fz_u8(in) % 4);
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    rc = ipc_sock_recv_fds(fd, cap ? buf : NULL, cap, fds, &nf, 0);
    if (op & 0x20) setrlimit(RLIMIT_NOFILE, &old);
    free(buf);
    if (Q.exact && rc != -EINVAL) { /* one message, as the model says */
        long long want_rc;
        int want_nf = 0;
        if (Q.head == Q.tail) {
            want_rc = -EAGAIN;
        } else {
            size_t len = Q.len[Q.head];
            int n = Q.nfds[Q.head++];
            want_rc = type_of(fd) == SOCK_SEQPACKET && len == 0 ? -EPIPE
                      : len > cap || n > want                   ? -EMSGSIZE
                                                                : (long long)len;
            want_nf = want_rc >= 0 ? n : 0;
        }
        if (!(op & 0x20) || want_rc == -EAGAIN)
            FZ_CHECK(rc == want_rc && nf == want_nf,
                     "recv_fds (cap %zu, room %d): %zd with %d fds, want %lld with %d", cap, want,
                     rc, nf, want_rc, want_nf);
    }
    FZ_CHECK(rc >= 0 || rc == -EMSGSIZE || rc == -EMFILE || rc == -EPIPE || rc == -EAGAIN ||
                 rc == -EINVAL,
             "recv_fds: %zd", rc);
    if (cap == 0 || want > IPC_SOCK_MAX_FDS) FZ_CHECK(rc == -EINVAL, "recv_fds bad args: %zd", rc);
    if (rc < 0) {
        FZ_CHECK(nf == 0 || (rc == -EINVAL && nf == want), "recv_fds %zd left *nfds %d", rc, nf);
        FZ_CHECK(fz_fd_count() == before, "recv_fds %zd: %d fds before, %d after", rc, before,
                 fz_fd_count());
        return;
    }
    FZ_CHECK((size_t)rc <= cap && nf >= 0 && nf <= want, "recv_fds: %zd bytes, %d of %d fds", rc,
             nf, want);
    FZ_CHECK(fz_fd_count() == before + nf, "recv_fds: %d fds, %d before, %d after", nf, before,
             fz_fd_count());
    for (i = 0; i < nf; i++) {
        int fl = fcntl(fds[i], F_GETFD);
        FZ_CHECK(fl >= 0 && (fl & FD_CLOEXEC), "received fd %d: flags %d", fds[i], fl);
    }
    for (i = 0; i < nf; i++)
        close(fds[i]);
    got_fds += nf;
    FZ_CHECK(got_fds <= sent_fds, "%ld fds received, %ld sent", got_fds, sent_fds);
}

static void do_ring(int rx, int tx, fz_in *in, unsigned op) {
    ipc_ring r;
    int before = fz_fd_count(), rc;
    if (op & 0x10) { /* send a real ring first */
        ipc_ring_opts o;
        ipc_ring s;
        memset(&o, 0, sizeof o);
        o.capacity = 4096;
        o.flags = (unsigned)(fz_u8(in) & 3);
        if (ipc_ring_create(&s, NULL, o.flags == IPC_RING_BROADCAST ? IPC_CONSUMER : IPC_PRODUCER,
                            &o) == 0) {
            if (ipc_sock_send_ring(tx, &s, 0) == 0) {
                sent_fds++;
                q_push(1, 1);
            }
            ipc_ring_close(&s);
        }
        before = fz_fd_count();
    }
    rc = ipc_sock_recv_ring(rx, &r, 1 + (int)fz_u8(in) % 3, 0);
    if (rc != -EAGAIN && Q.head < Q.tail) Q.head++; /* it took one message */
    FZ_CHECK(rc == 0 || rc == -EPROTO || rc == -EBADMSG || rc == -EMSGSIZE || rc == -EMFILE ||
                 rc == -EPIPE || rc == -EAGAIN || rc == -EINVAL || rc == -EBUSY,
             "recv_ring: %d", rc);
    if (rc == 0) {
        got_fds++;
        FZ_CHECK(ipc_ring_close(&r) == 0, "close the ring received");
    }
    FZ_CHECK(fz_fd_count() == before, "recv_ring %d: %d fds before, %d after", rc, before,
             fz_fd_count());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
    fz_in in = {data, size};
    unsigned c0 = fz_u8(&in), steps = 0;
    int type = types[c0 % 3], sv[2], pool[NPOOL], p[2], start = fz_fd_count(), one = 1, k;
    sent_fds = got_fds = 0;
    memset(&Q, 0, sizeof Q);
    Q.exact = type != SOCK_STREAM; /* a stream has no message boundaries to model */
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) return 0;
    if (c0 & 4) setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    FZ_CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
    pool[0] = p[0];
    pool[1] = p[1];
    pool[2] = (int)syscall(SYS_memfd_create, "fz", MFD_CLOEXEC); /* not a ring */
    pool[3] = sv[1];                                             /* the socket itself */
    while (in.n > 0 && steps++ < 64) {
        unsigned op = fz_u8(&in);
        switch (op & 3) {
        case 0: do_send(sv[1], type, &in, op, pool); break;
        case 1: do_recv(sv[0], &in, op); break;
        case 2: do_ring(sv[0], sv[1], &in, op); break;
        default:
            if (op & 4) {
                shutdown(sv[1], SHUT_WR);
                Q.exact = 0; /* what is queued still comes, then the end: not modelled */
            }
            break;
        }
    }
    close(sv[0]);
    close(sv[1]);
    for (k = 0; k < 3; k++)
        close(pool[k]);
    FZ_CHECK(fz_fd_count() == start, "fds: %d at the start, %d at the end", start, fz_fd_count());
    FZ_CHECK(fz_memfd_maps() == 0, "%d mappings of a memfd left", fz_memfd_maps());
    return 0;
}
