/* examples/event_exit.c - one poll() loop that hears both "a worker made progress" and
   "a worker exited", with no signal handler, no waitpid(-1) and no busy wait.

   The parent forks four workers. Each finished step of work adds 1 to a shared eventfd
   (ipc_event_post). An eventfd is a single counter in the kernel: posts from every
   worker add up, and one read (ipc_event_wait) takes the sum and resets it, so the parent
   may see "+2" when two steps landed between two looks. For each worker the parent also
   opens a pidfd (ipc_proc_open), an fd that becomes readable when that process exits.
   One poll() watches all five fds under one deadline and prints events as they come; a
   readable pidfd is reaped at once with ipc_proc_wait, which gives the exit status. One
   worker fails on purpose and exits with status 3.

   The fourth worker hangs and ignores SIGTERM, as stuck programs do. When it is the only
   one left, the parent stops it the careful way: SIGTERM, wait up to 200 ms for it to go
   (ipc_proc_exited: a wait with a deadline that does not reap), and only then SIGKILL.

   Why pidfds: process exit becomes an fd event in the same poll/epoll loop as sockets and
   pipes, and a pidfd names one process, so a recycled pid is never mistaken for it
   (Linux 5.3+).

   Build and run:  make demo   (or: cc -I. examples/event_exit.c -pthread && ./a.out) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS     1000000LL
#define SECOND 1000000000LL

static const struct {
    int steps;   /* how many times it posts progress */
    int step_ms; /* how long one step takes */
    int exit_code;
} plan[] = {
    {3, 40, 0},
    {6, 25, 0},
    {2, 60, 3}, /* fails after its two steps */
    {1, 10, -1} /* -1: hangs after its step, deaf to SIGTERM */
};
#define NWORK (int)(sizeof plan / sizeof plan[0])
#define HUNG  3

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int worker(int w, int efd) {
    int i, r;
    if (plan[w].exit_code < 0) ipc_signal_set(SIGTERM, IPC_SIGNAL_IGNORE, NULL);
    for (i = 0; i < plan[w].steps; i++) {
        sleep_ms(plan[w].step_ms);
        r = ipc_event_post(efd, 1);
        if (r < 0) {
            fprintf(stderr, "worker %d: ipc_event_post: %s\n", w, ipc_strerror(r));
            return 1;
        }
    }
    if (plan[w].exit_code < 0)
        for (;;)
            pause(); /* stuck until SIGKILL */
    return plan[w].exit_code;
}

static void print_status(int w, int st) {
    if (WIFEXITED(st))
        printf("worker %d: exited with status %d\n", w, WEXITSTATUS(st));
    else
        printf("worker %d: killed by signal %d (%s)\n", w, WTERMSIG(st),
               WTERMSIG(st) == SIGKILL ? "SIGKILL" : "other");
}

/* SIGTERM, a grace period, then SIGKILL. Returns the wait status, or an error. */
static int stop(ipc_proc *p, int w) {
    int r = ipc_proc_kill(p, SIGTERM);
    if (r < 0) return r;
    printf("worker %d: sent SIGTERM\n", w);
    r = ipc_proc_exited(p, 200 * MS);
    if (r == -ETIMEDOUT) {
        printf("worker %d: still running 200 ms later; sent SIGKILL\n", w);
        if ((r = ipc_proc_kill(p, SIGKILL)) < 0) return r;
        r = ipc_proc_exited(p, 5 * SECOND); /* SIGKILL cannot be refused: quick */
    }
    if (r < 0) return r;
    return ipc_proc_wait(p, 0); /* it has exited: reaping does not wait */
}

int main(void) {
    struct pollfd pfd[1 + NWORK];
    ipc_proc w[NWORK];
    uint64_t total = 0, expected = 0;
    int64_t deadline;
    int i, r, efd, started = 0, running, failed = 0;

    efd = ipc_event_open(0, 0);
    if (efd < 0) {
        fprintf(stderr, "ipc_event_open: %s\n", ipc_strerror(efd));
        return 1;
    }
    fflush(stdout); /* or the children inherit unprinted output */
    for (i = 0; i < NWORK; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            failed = 1;
            break;
        }
        if (pid == 0) _exit(worker(i, efd));
        /* Ours and not yet reaped: the pid is still this child's, so is the pidfd. */
        r = ipc_proc_open(&w[i], pid);
        if (r < 0) {
            fprintf(stderr, "ipc_proc_open(%d): %s\n", (int)pid, ipc_strerror(r));
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            failed = 1;
            break;
        }
        printf("worker %d: pid %d, pidfd %d, will do %d step(s)\n", i, (int)pid, w[i].pidfd,
               plan[i].steps);
        expected += (uint64_t)plan[i].steps;
        started++;
    }

    pfd[0].fd = efd;
    pfd[0].events = POLLIN;
    for (i = 0; i < NWORK; i++) {
        pfd[1 + i].fd = i < started ? w[i].pidfd : -1; /* poll skips negative fds */
        pfd[1 + i].events = POLLIN;
    }
    running = started;
    deadline = ipc_deadline_make(10 * SECOND); /* for the whole loop, not each poll */

    /* Until every step is reported and only the hung worker is left. */
    while (!failed && (total < expected || running > (started > HUNG ? 1 : 0))) {
        int n = poll(pfd, 1 + NWORK, ipc_deadline_ms(deadline));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            fprintf(stderr, "poll: %s\n", n == 0 ? "nothing happened for 10 s" : "failed");
            failed = 1;
            break;
        }
        if (pfd[0].revents & POLLIN) { /* progress first: a worker posts before it exits */
            uint64_t v;
            r = ipc_event_wait(efd, &v, 0);
            if (r == 0) {
                total += v;
                printf("progress: +%llu (%llu of %llu steps)\n", (unsigned long long)v,
                       (unsigned long long)total, (unsigned long long)expected);
            } else if (r != -EAGAIN) {
                fprintf(stderr, "ipc_event_wait: %s\n", ipc_strerror(r));
                failed = 1;
            }
        }
        for (i = 0; i < started; i++) {
            if (!(pfd[1 + i].revents & POLLIN)) continue;
            /* The pidfd says it exited; reap it now (no wait) for its status. Reaping
               closes the pidfd, so it leaves the poll set. */
            r = ipc_proc_wait(&w[i], 0);
            pfd[1 + i].fd = -1;
            running--;
            if (r < 0) {
                fprintf(stderr, "worker %d: ipc_proc_wait: %s\n", i, ipc_strerror(r));
                failed = 1;
                continue;
            }
            print_status(i, r);
            if (!WIFEXITED(r) || WEXITSTATUS(r) != plan[i].exit_code) failed = 1;
        }
    }

    if (started > HUNG && w[HUNG].pid > 0) {
        r = stop(&w[HUNG], HUNG);
        if (r < 0) {
            fprintf(stderr, "worker %d: stop: %s\n", HUNG, ipc_strerror(r));
            failed = 1;
        } else {
            print_status(HUNG, r);
            if (!WIFSIGNALED(r) || WTERMSIG(r) != SIGKILL) failed = 1;
        }
    }
    for (i = 0; i < started; i++) { /* after a failure: nothing left running or unreaped */
        if (w[i].pid > 0) {
            ipc_proc_kill(&w[i], SIGKILL);
            ipc_proc_wait(&w[i], IPC_FOREVER);
        }
        ipc_proc_close(&w[i]);
    }
    ipc_fd_close(&efd);
    printf("done: %llu of %llu steps reported\n", (unsigned long long)total,
           (unsigned long long)expected);
    return failed || total != expected;
}
