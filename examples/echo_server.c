/* examples/echo_server.c - one process serves many clients at once over unix and TCP
   sockets with epoll, echoing every framed message back.

   The server listens on each endpoint given on the command line, for example
       build/examples/echo_server unix:/tmp/echo.sock tcp:127.0.0.1:7000
   and runs until Ctrl-C (it then removes /tmp/echo.sock). Messages are framed (section 8:
   a 4-byte little-endian length, then the bytes), so a client from the shell sends a
   length before its text and gets the same frame back:
       printf '\005\000\000\000hello' | socat - UNIX-CONNECT:/tmp/echo.sock | tail -c +5
       printf '\005\000\000\000hello' | socat - TCP:127.0.0.1:7000 | tail -c +5
   With no arguments it demonstrates itself: it listens on an abstract unix name and on a
   free TCP port, forks 8 clients (half on each) that send 100 messages each, from empty
   to 256 KiB, and check every echo; it stops once every client has finished.

   One thread, no blocking: every socket the server holds is non-blocking and every call
   on it has timeout 0, so a call that cannot finish returns -EAGAIN at once. The
   ipc_frame state of a connection remembers how far a frame got, so a message arriving
   in pieces over several epoll wake-ups, or an echo the client is slow to read, simply
   continues on the next call with the same buffer. While an echo is stuck the server
   stops reading from that client (it waits for EPOLLOUT instead): a client that sends
   but never reads cannot make the server buffer without limit.

   Who may connect: a unix socket file is guarded by its permissions (0600 here), but an
   abstract name (unix:@name) has no file and no permissions: any process in the same
   network namespace can connect. So for unix connections the server asks the kernel for
   the client's credentials (ipc_sock_peercred, fixed at connect time, not forgeable) and
   closes connections from any other user. When the demo runs as root it forks one extra
   client that becomes user "nobody" (uid 65534) first, to show it being refused.

   Build and run:  make demo   (or: cc -I. examples/echo_server.c -pthread && ./a.out) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECOND        1000000000LL
#define MAX_MSG       (1u << 20) /* the largest message we accept (and echo) */
#define MAX_LISTENERS 16
#define PER_WAKEUP    16 /* messages served per connection per wake-up: fairness */
#define CLIENTS       8  /* demo: clients forked, half unix, half TCP */
#define MESSAGES      100

/* Everything epoll reports on starts with this, so one pointer tells what woke us. */
enum { LISTENER, CONNECTION, CLIENTS_GONE };
struct source {
    int kind;
    int fd;
};

struct listener {
    struct source src;
    int is_unix;
    char endpoint[128];
};

struct connection {
    struct source src;
    ipc_frame frame;    /* framing progress in both directions */
    unsigned char *buf; /* the message being received, then echoed: it must stay put
                           between calls until the frame is complete */
    size_t echo_len;    /* length of the echo being sent, when echo_pending */
    int echo_pending;   /* an echo is partly sent: wait for EPOLLOUT, read nothing */
    int in_pieces;      /* the message being received has already needed a second call */
    unsigned long messages;
    char name[192];
};

static int epfd = -1;
static unsigned long open_connections, served_connections, refused_connections;
static unsigned long total_messages, messages_in_pieces, echoes_waited;
static unsigned long long total_bytes;
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static int watch(struct source *src, int op, uint32_t events) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.ptr = src;
    if (epoll_ctl(epfd, op, src->fd, &ev) != 0) {
        perror("epoll_ctl");
        return -1;
    }
    return 0;
}

static void drop(struct connection *c, ssize_t why) {
    printf("server: %s gone after %lu message%s (%s)\n", c->name, c->messages,
           c->messages == 1 ? "" : "s", why == -EPIPE ? "end of stream" : ipc_strerror((int)why));
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->src.fd, NULL);
    ipc_fd_close(&c->src.fd);
    free(c->buf);
    free(c);
    open_connections--;
    served_connections++;
}

/* Send (or continue sending) the echo of c->buf. 1 done, 0 stuck (-EAGAIN), -1 dropped. */
static int echo(struct connection *c) {
    ssize_t n = ipc_frame_send(&c->frame, c->buf, c->echo_len, 0);
    if (n == -EAGAIN) {
        if (!c->echo_pending) { /* the client's receive buffer is full: wait for room */
            c->echo_pending = 1;
            echoes_waited++;
            if (watch(&c->src, EPOLL_CTL_MOD, EPOLLOUT) < 0) n = -EIO;
        }
        if (n == -EAGAIN) return 0;
    }
    if (n < 0) {
        drop(c, n);
        return -1;
    }
    if (c->echo_pending) { /* all out: listen to the client again */
        c->echo_pending = 0;
        if (watch(&c->src, EPOLL_CTL_MOD, EPOLLIN) < 0) {
            drop(c, -EIO);
            return -1;
        }
    }
    c->messages++;
    total_messages++;
    total_bytes += c->echo_len;
    return 1;
}

static void on_connection(struct connection *c) {
    int i;
    if (c->echo_pending && echo(c) <= 0) return; /* EPOLLOUT: finish the stuck echo first */
    for (i = 0; i < PER_WAKEUP; i++) {
        /* Timeout 0: take what has arrived. A frame cut short stays in c->frame and c->buf,
           and the next call with the same buffer carries on where this one stopped. */
        ssize_t n = ipc_frame_recv(&c->frame, c->buf, MAX_MSG, 0);
        if (n == -EAGAIN) {
            if (ipc_frame_pending(&c->frame) >= 0) c->in_pieces = 1; /* header in, body not */
            return;
        }
        if (n < 0) { /* -EPIPE: the client closed between messages; anything else: an error */
            drop(c, n);
            return;
        }
        if (c->in_pieces) messages_in_pieces++;
        c->in_pieces = 0;
        c->echo_len = (size_t)n;
        if (echo(c) <= 0) return;
    }
    /* More may be waiting: level-triggered epoll reports this socket again. */
}

static void on_listener(struct listener *l) {
    for (;;) {
        ipc_frame_opts fo = {0};
        struct connection *c;
        ipc_sockaddr peer;
        ipc_peercred cred;
        int fd = ipc_sock_accept(l->src.fd, &peer, 0);
        if (fd == -EAGAIN) return; /* no more waiting connections */
        if (fd < 0) {
            fprintf(stderr, "server: accept on %s: %s\n", l->endpoint, ipc_strerror(fd));
            return;
        }
        c = calloc(1, sizeof *c);
        if (!c || !(c->buf = malloc(MAX_MSG))) {
            fprintf(stderr, "server: out of memory\n");
            if (c) free(c);
            ipc_fd_close(&fd);
            return;
        }
        c->src.kind = CONNECTION;
        c->src.fd = fd;
        if (l->is_unix) {
            /* A unix client has no address worth printing ("unix:"), but the kernel
               tells who it is: the pid, uid and gid it had when it connected. */
            int r = ipc_sock_peercred(fd, &cred);
            if (r < 0 || cred.uid != (unsigned)geteuid()) {
                if (r < 0)
                    fprintf(stderr, "server: peercred: %s\n", ipc_strerror(r));
                else
                    printf("server: REFUSED a connection on %s from pid %d, uid %u (not ours)\n",
                           l->endpoint, (int)cred.pid, cred.uid);
                refused_connections++;
                ipc_fd_close(&c->src.fd);
                free(c->buf);
                free(c);
                continue;
            }
            snprintf(c->name, sizeof c->name, "%s pid %d", l->endpoint, (int)cred.pid);
        } else if (ipc_sock_format(&peer, c->name, sizeof c->name) < 0) {
            snprintf(c->name, sizeof c->name, "%s client", l->endpoint);
        }
        /* ipc_sock_accept returns a blocking socket. The ipc.h calls below never block
           with timeout 0 anyway, but a server that must never stall makes sure nothing
           else (a stray read(), a library) can block on it either. */
        fo.max_msg = MAX_MSG; /* a larger length header is garbage: the client is dropped */
        if (ipc_fd_set_nonblock(fd, 1) < 0 || ipc_frame_init(&c->frame, fd, &fo) < 0 ||
            watch(&c->src, EPOLL_CTL_ADD, EPOLLIN) < 0) {
            ipc_fd_close(&c->src.fd);
            free(c->buf);
            free(c);
            continue;
        }
        open_connections++;
        printf("server: accepted %s\n", c->name);
    }
}

/* ---- The demo's clients ---- */

static size_t message_size(int i) {
    if (i == 0) return 0;                           /* empty messages are messages too */
    if (i % 10 == 9) return 256 * 1024 - (size_t)i; /* bigger than a socket buffer */
    return 1 + (size_t)(i * 37) % 2000;
}

static void fill(unsigned char *p, size_t len, int id, int i) {
    size_t k;
    for (k = 0; k < len; k++)
        p[k] = (unsigned char)(id * 31 + i * 7 + (int)(k % 251));
}

/* Send MESSAGES messages one by one, each followed by reading its echo. 0 if all match. */
static int client(int id, const char *endpoint) {
    unsigned char *out = malloc(MAX_MSG), *in = malloc(MAX_MSG);
    ipc_frame_opts fo = {0};
    ipc_frame frame;
    ssize_t n = 0;
    int fd, i;
    if (!out || !in) return 1;
    fd = ipc_sock_connect(endpoint, NULL, 5 * SECOND);
    if (fd < 0) {
        fprintf(stderr, "client %d: connect %s: %s\n", id, endpoint, ipc_strerror(fd));
        return 1;
    }
    fo.max_msg = MAX_MSG;
    ipc_frame_init(&frame, fd, &fo);
    for (i = 0; i < MESSAGES; i++) {
        size_t len = message_size(i);
        fill(out, len, id, i);
        /* Blocking calls with a deadline: a client is simple code. */
        if ((n = ipc_frame_send(&frame, out, len, 5 * SECOND)) < 0 ||
            (n = ipc_frame_recv(&frame, in, MAX_MSG, 5 * SECOND)) < 0)
            break;
        if ((size_t)n != len || memcmp(in, out, len) != 0) {
            fprintf(stderr, "client %d: echo %d differs\n", id, i);
            n = -EBADMSG;
            break;
        }
    }
    if (n < 0) fprintf(stderr, "client %d: message %d: %s\n", id, i, ipc_strerror((int)n));
    ipc_fd_close(&fd); /* the server's next receive sees end of stream */
    free(out);
    free(in);
    return n < 0;
}

/* Run as root: become nobody, then try the unix endpoint. 0 if the server refused us. */
static int intruder(const char *endpoint) {
    unsigned char buf[16];
    ipc_frame frame;
    ssize_t n;
    int fd;
    if (setgid(65534) != 0 || setuid(65534) != 0) {
        printf("intruder: cannot become uid 65534 here (%s); skipped\n", ipc_strerror(-errno));
        return 0;
    }
    fd = ipc_sock_connect(endpoint, NULL, 5 * SECOND); /* the kernel lets us in... */
    if (fd < 0) {
        fprintf(stderr, "intruder: connect: %s\n", ipc_strerror(fd));
        return 1;
    }
    ipc_frame_init(&frame, fd, NULL);
    n = ipc_frame_send(&frame, "let me in", 9, 5 * SECOND);
    if (n >= 0) n = ipc_frame_recv(&frame, buf, sizeof buf, 5 * SECOND);
    printf("intruder (uid %u): %s\n", (unsigned)getuid(),
           n < 0 ? ipc_strerror((int)n) : "got an echo: the server let it in!");
    ipc_fd_close(&fd);
    return n >= 0; /* ...but the server closed it: no echo */
}

/* ---- The server ---- */

int main(int argc, char **argv) {
    static const char *demo_endpoints[2] = {NULL, "tcp:127.0.0.1:0"};
    struct listener listeners[MAX_LISTENERS];
    struct source clients_gone = {CLIENTS_GONE, -1};
    char abstract_name[64];
    pid_t pids[CLIENTS + 1];
    const char **endpoints = (const char **)argv + 1;
    int demo = argc < 2, nlisteners = argc - 1, npids = 0, failed = 0, i, r;
    sigset_t stop_signals, unblocked;
    struct sigaction sa;

    setvbuf(stdout, NULL, _IOLBF, 0); /* lines of the processes in the order they happen */
    if (demo) {
        /* Abstract names live as long as the socket: nothing to clean up afterwards. The
           pid keeps two demos running at once apart. */
        snprintf(abstract_name, sizeof abstract_name, "unix:@ipc-example-echo-%d", (int)getpid());
        demo_endpoints[0] = abstract_name;
        endpoints = demo_endpoints;
        nlisteners = 2;
    }
    if (nlisteners > MAX_LISTENERS) {
        fprintf(stderr, "at most %d endpoints\n", MAX_LISTENERS);
        return 2;
    }
    for (i = 0; i < nlisteners; i++) {
        struct listener *l = &listeners[i];
        ipc_sockaddr addr;
        int fd = ipc_sock_listen(endpoints[i], NULL); /* non-blocking, ready for epoll */
        if (fd < 0) {
            fprintf(stderr,
                    "listen %s: %s\n(endpoints look like unix:/path, unix:@name, "
                    "tcp:127.0.0.1:7000)\n",
                    endpoints[i], ipc_strerror(fd));
            return 1;
        }
        l->src.kind = LISTENER;
        l->src.fd = fd;
        l->is_unix = strncmp(endpoints[i], "unix:", 5) == 0;
        /* Ask the socket where it is: for tcp:...:0 this is where the port shows. */
        if ((r = ipc_sock_local(fd, &addr)) < 0 ||
            (r = ipc_sock_format(&addr, l->endpoint, sizeof l->endpoint)) < 0) {
            fprintf(stderr, "local address of %s: %s\n", endpoints[i], ipc_strerror(r));
            return 1;
        }
        printf("server: listening on %s\n", l->endpoint);
    }

    if (demo) {
        /* Each client holds the write end of this pipe until it exits, so the read end
           reports end of stream when the last one is gone. */
        ipc_pipe gone;
        if ((r = ipc_pipe_open(&gone, NULL)) < 0) {
            fprintf(stderr, "pipe: %s\n", ipc_strerror(r));
            return 1;
        }
        fflush(stdout); /* or the children inherit unprinted output */
        for (i = 0; i < CLIENTS + (geteuid() == 0); i++) {
            const char *ep =
                i == CLIENTS || i % 2 == 0 ? listeners[0].endpoint : listeners[1].endpoint;
            pid_t pid = fork();
            if (pid < 0) {
                perror("fork");
                break;
            }
            if (pid == 0) {
                int j;
                for (j = 0; j < nlisteners; j++)
                    close(listeners[j].src.fd); /* a client has no business with them */
                close(gone.rfd);
                r = i == CLIENTS ? intruder(ep) : client(i, ep);
                fflush(stdout);
                _exit(r);
            }
            pids[npids++] = pid;
        }
        ipc_fd_close(&gone.wfd);
        clients_gone.fd = gone.rfd;
    } else {
        /* Ctrl-C sets a flag. The signals stay blocked except inside epoll_pwait, which
           unblocks them atomically: one that comes while we are busy waits there and
           interrupts it (EINTR) instead of slipping in between the check and the wait. */
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGINT);
        sigaddset(&stop_signals, SIGTERM);
        sigprocmask(SIG_BLOCK, &stop_signals, &unblocked);
        printf("server: Ctrl-C to stop\n");
    }

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        perror("epoll_create1");
        return 1;
    }
    for (i = 0; i < nlisteners; i++)
        if (watch(&listeners[i].src, EPOLL_CTL_ADD, EPOLLIN) < 0) return 1;
    if (clients_gone.fd >= 0 && watch(&clients_gone, EPOLL_CTL_ADD, EPOLLIN) < 0) return 1;

    for (;;) {
        struct epoll_event ev[64];
        int n;
        fflush(stdout);
        if (stop_requested) break;
        /* Demo: the clients are gone and so are their connections (each client finished
           its exchange, so each was accepted). */
        if (clients_gone.fd < 0 && demo && open_connections == 0) break;
        n = demo ? epoll_wait(epfd, ev, 64, 10000) : epoll_pwait(epfd, ev, 64, -1, &unblocked);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            fprintf(stderr, "server: %s\n",
                    n == 0 ? "nothing for 10 s, giving up" : ipc_strerror(-errno));
            failed = 1;
            break;
        }
        for (i = 0; i < n; i++) {
            struct source *s = ev[i].data.ptr;
            if (s->kind == LISTENER) {
                on_listener((struct listener *)s);
            } else if (s->kind == CONNECTION) {
                on_connection((struct connection *)s); /* may free it: an fd is reported
                                                           once per epoll_wait, so no later
                                                           event in ev[] points at it */
            } else { /* end of stream on the pipe: every client has exited */
                epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
                ipc_fd_close(&s->fd);
                printf("server: all clients have exited\n");
            }
        }
    }

    for (i = 0; i < nlisteners; i++) {
        ipc_fd_close(&listeners[i].src.fd);
        if (listeners[i].is_unix) ipc_sock_unlink(listeners[i].endpoint); /* abstract: no-op */
    }
    close(epfd);
    printf("server: %lu connections served, %lu refused; %lu messages (%.1f MiB) echoed\n",
           served_connections + open_connections, refused_connections, total_messages,
           (double)total_bytes / (1 << 20));
    printf("server: %lu messages arrived in pieces and were resumed, %lu echoes waited for "
           "EPOLLOUT\n",
           messages_in_pieces, echoes_waited);
    for (i = 0; i < npids; i++) {
        int status;
        waitpid(pids[i], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "%s %d (pid %d) failed\n", i < CLIENTS ? "client" : "intruder", i,
                    (int)pids[i]);
            failed = 1;
        }
    }
    if (demo && total_messages != (unsigned long)CLIENTS * MESSAGES) failed = 1;
    return failed;
}
