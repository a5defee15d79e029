/* examples/mq_priority.c - a POSIX message queue sorts messages by priority: whatever the
   order they were sent in, a receiver gets the most urgent first.

   The parent creates the queue "/ipc-example-<pid>" (the pid keeps two runs apart) and
   asks the kernel for a signal when the first message lands in the empty queue
   (ipc_mq_notify_signal). A child opens the queue by name, as an unrelated process
   would, and sends a few log messages with priorities: 1 for debug, 5 for info, 10 for
   warnings, 30 for alerts. Once the child is done, the parent drains the queue: the
   alert comes out first and the debug messages last, in the order they were sent within
   one priority. A receive with a deadline ends the loop when the queue stays empty.

   Priorities order the messages that are queued at the moment of a receive; a receiver
   that keeps up with the sender sees them in sending order. A queue is also a plain fd on
   Linux: poll or epoll it for POLLIN (a message) or POLLOUT (room), as done below with
   ipc_fd_wait. The queue lives in the kernel until it is unlinked (ls /dev/mqueue where
   that file system is mounted), so the parent removes it at the end.

   Build and run:  make demo   (or: cc -I. examples/mq_priority.c -pthread && ./a.out) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS     1000000LL
#define SECOND 1000000000LL

static const struct {
    unsigned prio;
    const char *text;
} messages[] = {
    {1, "debug: cache warmed"},  {5, "info: user alice logged in"}, {10, "warning: disk 85% full"},
    {1, "debug: 3 jobs queued"}, {30, "ALERT: disk full"},          {5, "info: backup finished"},
};
#define NMSG (int)(sizeof messages / sizeof messages[0])

static int send_all(const char *name) {
    int i, r = 0, mq = ipc_mq_open(name, IPC_MQ_WRITE);
    if (mq < 0) {
        fprintf(stderr, "child: ipc_mq_open: %s\n", ipc_strerror(mq));
        return 1;
    }
    for (i = 0; i < NMSG && r == 0; i++) {
        const char *t = messages[i].text;
        /* Waits up to 1 s for room if the queue were full (it holds 10 here). */
        r = ipc_mq_send(mq, t, strlen(t), messages[i].prio, SECOND);
        if (r < 0) fprintf(stderr, "child: ipc_mq_send: %s\n", ipc_strerror(r));
    }
    ipc_mq_close(mq);
    return r < 0;
}

int main(void) {
    ipc_mq_opts opts = {0};
    ipc_mq_attr attr;
    char name[32], buf[128];
    struct timespec wait = {5, 0};
    unsigned prio, last = ~0u;
    sigset_t usr1;
    siginfo_t si;
    int i, r, mq, status, got = 0, failed = 0;
    pid_t child;
    ssize_t n;

    snprintf(name, sizeof name, "/ipc-example-%d", (int)getpid());
    opts.max_msgs = 10;              /* the default system limit, /proc/sys/fs/mqueue/msg_max */
    opts.msg_size = 128;             /* bytes per message at most */
    mq = ipc_mq_create(name, &opts); /* exclusive: -EEXIST if the name is taken */
    if (mq < 0) {
        fprintf(stderr, "ipc_mq_create(%s): %s\n", name, ipc_strerror(mq));
        return 1;
    }
    printf("parent: created queue %s (fd %d), %ld messages of %ld bytes at most\n", name, mq,
           opts.max_msgs, opts.msg_size);

    /* Block SIGUSR1 so that it waits for sigtimedwait instead of killing us, then ask for
       it, carrying the value 42, when a message arrives in the empty queue. */
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    r = ipc_mq_notify_signal(mq, SIGUSR1, 42);
    if (r < 0) /* qemu-user, for one, has no mq_notify: polling the fd works everywhere */
        printf("parent: no notification (%s); will poll the queue fd instead\n", ipc_strerror(r));

    for (i = 0; i < NMSG; i++)
        printf("parent: the child will send with priority %2u: %s\n", messages[i].prio,
               messages[i].text);
    fflush(stdout); /* or the child inherits unprinted output */
    child = fork();
    if (child == 0) {
        ipc_mq_close(mq); /* the child opens the queue by name instead */
        _exit(send_all(name));
    }
    if (child < 0) failed = 1;

    if (r == 0 && sigtimedwait(&usr1, &si, &wait) == SIGUSR1)
        printf("parent: notified by SIGUSR1 (%s, value %d) that pid %d sent a first message\n",
               si.si_code == SI_MESGQ ? "SI_MESGQ" : "other", si.si_value.sival_int,
               (int)si.si_pid);
    else if (r < 0 && ipc_fd_wait(mq, POLLIN, 5 * SECOND) > 0)
        printf("parent: poll() says a first message arrived\n");
    else
        failed = 1;

    /* Let the child send everything, so the queue can show its ordering. */
    if (child > 0 &&
        (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0))
        failed = 1;
    if (ipc_mq_getattr(mq, &attr) == 0)
        printf("parent: the child sent %d messages; %ld are queued\n", NMSG, attr.cur_msgs);
    if (ipc_fd_wait(mq, POLLIN, 0) > 0) printf("parent: poll() says the queue fd is readable\n");

    /* The buffer must hold msg_size bytes (-EMSGSIZE otherwise, and nothing is taken). */
    while ((n = ipc_mq_recv(mq, buf, sizeof buf, &prio, 100 * MS)) >= 0) {
        printf("parent: priority %2u: %.*s\n", prio, (int)n, buf);
        if (prio > last) failed = 1; /* never a higher priority after a lower one */
        last = prio;
        got++;
    }
    /* The queue stayed empty for 100 ms: -ETIMEDOUT ends the loop. */
    printf("parent: then \"%s\" on the empty queue\n", ipc_strerror((int)n));
    if (n != -ETIMEDOUT || got != NMSG) failed = 1;

    ipc_mq_close(mq);
    r = ipc_mq_unlink(name); /* otherwise it stays in the kernel until reboot */
    if (r < 0) {
        fprintf(stderr, "ipc_mq_unlink: %s\n", ipc_strerror(r));
        failed = 1;
    }
    return failed;
}
