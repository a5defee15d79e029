/* examples/signal_queue.c - realtime signals carry a payload and queue up; ordinary
   signals carry nothing and coalesce.

   A forked child takes SIGUSR1 and SIGRTMIN from a signalfd (ipc_signal_fd): the signals
   stay blocked, so instead of interrupting the child they wait in the kernel until it
   reads them from an fd it polls like any other. The parent opens a pidfd for the child
   (ipc_proc_open) and sends, through it, SIGUSR1 three times (ipc_signal_send_pidfd) and
   SIGRTMIN five times with a job number as payload (ipc_signal_queue_pidfd), then a last
   SIGRTMIN with payload 0 that means "that was all".

   The child does not look until the parent says it is done sending (an eventfd), so every
   signal is pending at the same moment. It then finds SIGUSR1 once: a pending ordinary
   signal is one bit, and setting it again changes nothing. It finds all six SIGRTMIN, in
   the order they were sent, each with its payload: realtime signals form a queue (up to
   RLIMIT_SIGPENDING entries per user). A signalfd hands out the lowest signal number
   first, which is why SIGUSR1 (10) comes before SIGRTMIN (34 with glibc).

   A pidfd names one process for as long as it is open: a signal sent through it can never
   reach an unrelated process that was given the pid after the child died (Linux 5.3+).

   Build and run:  make demo   (or: cc -I. examples/signal_queue.c -pthread && ./a.out) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECOND 1000000000LL
#define NUSR1  3 /* times SIGUSR1 is sent */
#define NJOBS  5 /* SIGRTMIN with payloads 101..105, then one with 0 */

static const char *code_name(int code) {
    return code == SI_USER    ? "SI_USER: a plain send"
           : code == SI_QUEUE ? "SI_QUEUE: sent with a value"
                              : "?";
}

/* The child: read signals from a signalfd until the "that was all" payload. Returns the
   exit status: 0 when it saw what the comment at the top promises. */
static int receiver(int go) {
    int fd, r, usr1 = 0, jobs = 0, bad = 0, done = 0;
    ipc_siginfo si;

    /* The mask came blocked from the parent (see main); ipc_signal_fd blocks the set
       again, which is harmless, and gives the fd to read them from. */
    fd = ipc_signal_fd(IPC_SIGBIT(SIGUSR1) | IPC_SIGBIT(SIGRTMIN));
    if (fd < 0) {
        fprintf(stderr, "child: ipc_signal_fd: %s\n", ipc_strerror(fd));
        return 1;
    }
    /* Wait for "done sending". Meanwhile the signals pile up, pending. */
    r = ipc_event_wait(go, NULL, 5 * SECOND);
    if (r < 0) {
        fprintf(stderr, "child: ipc_event_wait: %s\n", ipc_strerror(r));
        return 1;
    }
    printf("child: the parent is done sending; now reading the signalfd\n");

    while (!done) {
        struct pollfd pfd = {fd, POLLIN, 0};
        r = poll(&pfd, 1, 5000); /* a real program would poll its other fds here too */
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            fprintf(stderr, "child: poll: %s\n", r == 0 ? "no signal for 5 s" : "failed");
            return 1;
        }
        /* Readable: take every signal that is there; -EAGAIN once none is left. */
        while (!done && (r = ipc_signal_read(fd, &si, 0)) > 0) {
            if (r == SIGUSR1) {
                usr1++;
                printf("child: SIGUSR1 from pid %d (%s), no payload\n", (int)si.pid,
                       code_name(si.code));
            } else if (si.value == 0) {
                printf("child: SIGRTMIN from pid %d (%s), payload 0: end of jobs\n", (int)si.pid,
                       code_name(si.code));
                done = 1;
            } else {
                jobs++;
                printf("child: SIGRTMIN from pid %d (%s), payload %ld\n", (int)si.pid,
                       code_name(si.code), (long)si.value);
                if (si.value != 100 + jobs) bad = 1; /* out of order or lost */
            }
        }
        if (!done && r != -EAGAIN) {
            fprintf(stderr, "child: ipc_signal_read: %s\n", ipc_strerror(r));
            return 1;
        }
    }
    printf("child: SIGUSR1 sent %d times, received %d; SIGRTMIN jobs sent %d, received %d\n", NUSR1,
           usr1, NJOBS, jobs);
    ipc_fd_close(&fd);
    return usr1 == 1 && jobs == NJOBS && !bad ? 0 : 1;
}

int main(void) {
    uint64_t set = IPC_SIGBIT(SIGUSR1) | IPC_SIGBIT(SIGRTMIN), old;
    int i, r, go, status, failed = 0;
    ipc_proc child;
    pid_t pid;

    go = ipc_event_open(0, 0);
    if (go < 0) {
        fprintf(stderr, "ipc_event_open: %s\n", ipc_strerror(go));
        return 1;
    }
    /* Block the signals before fork, so the child is born with them blocked: one sent
       before it reaches ipc_signal_fd waits instead of killing it (the default action of
       both is to terminate). */
    r = ipc_signal_mask(IPC_SIG_BLOCK, set, &old);
    if (r < 0) {
        fprintf(stderr, "ipc_signal_mask: %s\n", ipc_strerror(r));
        return 1;
    }
    fflush(stdout); /* or the child inherits unprinted output */
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        r = receiver(go);
        fflush(stdout); /* _exit does not flush stdio */
        _exit(r);
    }
    ipc_signal_mask(IPC_SIG_SETMASK, old, NULL); /* the parent's mask as it was */

    /* Our own child, not yet reaped: its pid cannot have been reused, so the pidfd is
       surely for it. */
    r = ipc_proc_open(&child, pid);
    if (r < 0) {
        fprintf(stderr, "ipc_proc_open(%d): %s\n", (int)pid, ipc_strerror(r));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return 1;
    }
    printf("parent: child %d has pidfd %d; SIGRTMIN is signal %d here\n", (int)pid, child.pidfd,
           (int)SIGRTMIN);

    for (i = 0; i < NUSR1 && !failed; i++) {
        r = ipc_signal_send_pidfd(child.pidfd, SIGUSR1);
        if (r < 0) {
            fprintf(stderr, "ipc_signal_send_pidfd: %s\n", ipc_strerror(r));
            failed = 1;
        }
    }
    printf("parent: sent SIGUSR1 %d times\n", NUSR1);
    for (i = 1; i <= NJOBS + 1 && !failed; i++) {
        intptr_t payload = i <= NJOBS ? 100 + i : 0; /* 0: no more jobs */
        r = ipc_signal_queue_pidfd(child.pidfd, SIGRTMIN, payload);
        if (r < 0) { /* -EAGAIN: the queue limit (RLIMIT_SIGPENDING) is reached */
            fprintf(stderr, "ipc_signal_queue_pidfd: %s\n", ipc_strerror(r));
            failed = 1;
        } else {
            printf("parent: queued SIGRTMIN with payload %ld\n", (long)payload);
        }
    }
    fflush(stdout);            /* our lines before the child's */
    r = ipc_event_post(go, 1); /* "done sending": the child starts reading */
    if (r < 0) {
        fprintf(stderr, "ipc_event_post: %s\n", ipc_strerror(r));
        failed = 1;
    }

    status = ipc_proc_wait(&child, 5 * SECOND);
    if (status == -ETIMEDOUT) { /* never expected; do not leave it running */
        fprintf(stderr, "parent: the child did not finish in 5 s; killing it\n");
        ipc_proc_kill(&child, SIGKILL);
        status = ipc_proc_wait(&child, IPC_FOREVER);
    }
    ipc_proc_close(&child);
    ipc_fd_close(&go);
    if (status < 0) {
        fprintf(stderr, "ipc_proc_wait: %s\n", ipc_strerror(status));
        return 1;
    }
    printf("parent: child exited with status %d\n",
           WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return failed || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}
