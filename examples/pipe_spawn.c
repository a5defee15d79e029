/* examples/pipe_spawn.c - talk to child processes through pipes: feed a program its
   input and collect its output, then run a request/response service over a duplex pipe.

   Part 1: ipc_proc_spawn starts `sort` (found on PATH) with its stdin and stdout on pipes.
   The parent writes some lines, closes the write end (sort's end of input), reads the
   sorted lines under one overall deadline until end of stream (-EPIPE), and reaps the
   child with ipc_proc_wait to get its exit status. Writing everything before reading is
   safe here only because sort reads all its input before it prints anything; a filter
   that answers as it goes (cat, grep) with more than a pipe's 64 KiB in flight needs the
   parent to poll both pipes, or both processes wait on each other for ever.

   Part 2: ipc_pipe_duplex makes two pipes, one each way. A forked child keeps one end and
   serves requests on it; the parent keeps the other. A byte stream has no message
   boundaries, so both sides use the framing layer (ipc_frame_send / ipc_frame_recv: a
   4-byte length, then the bytes). When the parent closes its end the child's next
   receive returns -EPIPE and it exits.

   Build and run:  make demo   (or: cc -I. examples/pipe_spawn.c -pthread && ./a.out) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECOND 1000000000LL

/* ---- Part 1: a pipeline to `sort` ---- */

static int run_sort(void) {
    static const char input[] = "pear\nbanana\ncherry\napple\nfig\ndate\n";
    char *const argv[] = {"sort", NULL};
    char *const envp[] = {"LC_ALL=C", NULL}; /* byte order, whatever the user's locale */
    ipc_spawn_opts opts = {0};
    char out[512];
    size_t len = 0;
    int64_t deadline;
    ipc_proc p;
    ssize_t n;
    int r;

    opts.err = IPC_STDIO_INHERIT; /* sort's complaints, if any, go to our stderr */
    opts.envp = envp;
    opts.flags = IPC_SPAWN_PATH; /* look "sort" up on PATH, as a shell would */
    r = ipc_proc_spawn(&p, "sort", argv, &opts);
    if (r < 0) {
        fprintf(stderr, "ipc_proc_spawn(sort): %s\n", ipc_strerror(r));
        return 1;
    }
    printf("sort: started pid %d; its stdin is our fd %d, its stdout our fd %d\n", (int)p.pid, p.in,
           p.out);

    n = ipc_fd_write_all(p.in, input, sizeof input - 1, 5 * SECOND, NULL);
    if (n < 0) fprintf(stderr, "write to sort: %s\n", ipc_strerror((int)n));
    ipc_fd_close(&p.in); /* end of input: now sort prints */

    /* One deadline for the whole reply, however many pieces it comes in. Once it has
       passed, ipc_deadline_left gives 0 ("try once"), so a late read fails at once. */
    deadline = ipc_deadline_make(5 * SECOND);
    while ((n = ipc_fd_read_some(p.out, out + len, sizeof out - 1 - len,
                                 ipc_deadline_left(deadline))) > 0) {
        len += (size_t)n;
        if (len == sizeof out - 1) break; /* our buffer is full: enough for a demo */
    }
    out[len] = '\0';
    if (n < 0 && n != -EPIPE) { /* -EPIPE is the normal end: sort closed its stdout */
        fprintf(stderr, "read from sort: %s; killing it\n", ipc_strerror((int)n));
        ipc_proc_kill(&p, SIGKILL);
    }
    printf("sort: replied %zu bytes:\n%s", len, out);

    r = ipc_proc_wait(&p, 5 * SECOND); /* reap it: no zombie left behind */
    ipc_proc_close(&p);
    if (r < 0) {
        fprintf(stderr, "ipc_proc_wait: %s\n", ipc_strerror(r));
        return 1;
    }
    printf("sort: exited with status %d\n", WIFEXITED(r) ? WEXITSTATUS(r) : 128 + WTERMSIG(r));
    return WIFEXITED(r) && WEXITSTATUS(r) == 0 && n == -EPIPE &&
                   strcmp(out, "apple\nbanana\ncherry\ndate\nfig\npear\n") == 0
               ? 0
               : 1;
}

/* ---- Part 2: request/response over a duplex pipe ---- */

/* The child's service: reply to each request with the text reversed. */
static int serve(ipc_pipe *end) {
    ipc_frame rx, tx; /* framing state, one per fd: requests come in on rfd, replies leave on wfd */
    char req[256], rep[256];
    ssize_t n;
    ipc_frame_init(&rx, end->rfd, NULL);
    ipc_frame_init(&tx, end->wfd, NULL);
    while ((n = ipc_frame_recv(&rx, req, sizeof req, 5 * SECOND)) >= 0) {
        ssize_t i;
        for (i = 0; i < n; i++)
            rep[i] = req[n - 1 - i];
        if ((n = ipc_frame_send(&tx, rep, (size_t)n, 5 * SECOND)) < 0) break;
    }
    ipc_pipe_close(end);
    /* -EPIPE: the client closed its end between two requests, the normal way to finish. */
    if (n != -EPIPE) fprintf(stderr, "server: %s\n", ipc_strerror((int)n));
    return n == -EPIPE ? 0 : 1;
}

static int run_duplex(void) {
    static const char *const requests[] = {"hello", "duplex pipes", "", "ipc.h"};
    ipc_frame rx, tx;
    ipc_pipe end[2];
    int i, r, status, bad = 0;
    pid_t child;

    r = ipc_pipe_duplex(end, NULL);
    if (r < 0) {
        fprintf(stderr, "ipc_pipe_duplex: %s\n", ipc_strerror(r));
        return 1;
    }
    fflush(stdout); /* or the child inherits unprinted output */
    child = fork();
    if (child < 0) return 1;
    if (child == 0) { /* the server keeps end[1] */
        /* Close the other end, or our own copy of its write side would keep the request
           pipe open: the server would never see the end of the stream. */
        ipc_pipe_close(&end[0]);
        _exit(serve(&end[1]));
    }
    /* The client keeps end[0]. Likewise, closing end[1] here means that a server that
       dies makes our receive fail with -EPIPE at once, not wait out its deadline. */
    ipc_pipe_close(&end[1]);

    ipc_frame_init(&rx, end[0].rfd, NULL);
    ipc_frame_init(&tx, end[0].wfd, NULL);
    for (i = 0; i < (int)(sizeof requests / sizeof requests[0]); i++) {
        const char *q = requests[i];
        char reply[256];
        ssize_t n = ipc_frame_send(&tx, q, strlen(q), 5 * SECOND);
        if (n >= 0) n = ipc_frame_recv(&rx, reply, sizeof reply, 5 * SECOND);
        if (n < 0) {
            fprintf(stderr, "client: %s\n", ipc_strerror((int)n));
            bad = 1;
            break;
        }
        /* Each message arrives whole, even the empty one. */
        printf("duplex: sent \"%s\" (%zu bytes), got \"%.*s\" (%zd bytes)\n", q, strlen(q), (int)n,
               reply, n);
    }
    ipc_pipe_close(&end[0]); /* the server's next receive says -EPIPE */
    waitpid(child, &status, 0);
    printf("duplex: server exited with status %d\n",
           WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return !bad && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int main(void) {
    int r = run_sort();
    printf("\n");
    r |= run_duplex();
    return r;
}
