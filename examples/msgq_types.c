/* examples/msgq_types.c - a System V message queue: every message carries a type, and a
   receiver picks which type it wants next.

   The parent creates a private queue (key IPC_PRIVATE: no name, the id is passed to
   related processes, here through fork). A child sends a mix of messages: type 1 for
   log lines, 2 for jobs, 3 for statistics, and one oversized type 4 "blob". Then the
   parent takes them out selectively:
     - type 2: only the jobs, in the order they were sent, the rest stays queued;
     - type 4 into a small buffer: -EMSGSIZE, and the blob stays queued, until a receive
       with IPC_MSGQ_TRUNCATE takes it cut to the buffer's size;
     - type -3: "the lowest type up to 3 first": all the logs, then the statistics,
       which makes the type a priority (smaller = more urgent).
   A queue outlives its processes (ipcs -q lists it), so the parent removes it.

   Build and run:  make demo   (or: cc -I. examples/msgq_types.c -pthread && ./a.out) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <stdio.h>
#include <string.h>
#include <sys/ipc.h> /* IPC_PRIVATE */
#include <sys/wait.h>
#include <unistd.h>

#define MS     1000000LL
#define SECOND 1000000000LL

enum { LOG = 1, JOB = 2, STATS = 3, BLOB = 4 };

/* The kernel's message layout: a long type > 0, then the text. */
struct msg {
    long type;
    char text[64];
};

static int send_all(int id) {
    static const struct {
        long type;
        const char *text;
    } out[] = {
        {LOG, "log: worker started"}, {JOB, "job: resize photo.jpg"}, {STATS, "stats: 2 jobs/s"},
        {LOG, "log: cache hit"},      {JOB, "job: send invoice 17"},  {LOG, "log: worker idle"},
    };
    struct {
        long type;
        char text[200];
    } blob;
    size_t i;
    int r;
    for (i = 0; i < sizeof out / sizeof out[0]; i++) {
        struct msg m;
        m.type = out[i].type;
        snprintf(m.text, sizeof m.text, "%s", out[i].text);
        /* len counts the text only (here with its '\0'), not the type. */
        r = ipc_msgq_send(id, &m, strlen(m.text) + 1, SECOND);
        if (r < 0) {
            fprintf(stderr, "child: ipc_msgq_send: %s\n", ipc_strerror(r));
            return 1;
        }
    }
    blob.type = BLOB;
    memset(blob.text, 'x', sizeof blob.text);
    memcpy(blob.text, "blob: ", 6);
    r = ipc_msgq_send(id, &blob, sizeof blob.text, SECOND);
    if (r < 0) fprintf(stderr, "child: ipc_msgq_send(blob): %s\n", ipc_strerror(r));
    return r < 0;
}

/* Receive every message that `type` selects, without waiting (timeout 0 -> -EAGAIN when
   none is left). Returns how many. */
static int drain(int id, long type, const char *what) {
    struct msg m;
    ssize_t n;
    int count = 0;
    while ((n = ipc_msgq_recv(id, &m, sizeof m.text, type, 0, 0)) >= 0) {
        printf("parent: %s: type %ld, %zd bytes: %s\n", what, m.type, n, m.text);
        count++;
    }
    if (n != -EAGAIN) fprintf(stderr, "parent: ipc_msgq_recv: %s\n", ipc_strerror((int)n));
    return count;
}

int main(void) {
    ipc_msgq_info info;
    struct msg m;
    int id, r, status, failed = 0;
    pid_t child;
    ssize_t n;

    id = ipc_msgq_create(IPC_PRIVATE, 0600);
    if (id < 0) {
        fprintf(stderr, "ipc_msgq_create: %s\n", ipc_strerror(id));
        return 1;
    }
    printf("parent: created private queue id %d\n", id);

    fflush(stdout); /* or the child inherits unprinted output */
    child = fork();
    if (child == 0) _exit(send_all(id)); /* the id is all a child needs */
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        failed = 1;
    if (ipc_msgq_stat(id, &info) == 0)
        printf("parent: the child (pid %d) queued %zu messages, %zu bytes of text\n",
               (int)info.last_send_pid, info.msgs, info.bytes);

    /* A positive type selects that type only. */
    if (drain(id, JOB, "jobs only") != 2) failed = 1;

    /* The blob has 200 bytes and our buffer 64: refused, and it stays in the queue. */
    n = ipc_msgq_recv(id, &m, sizeof m.text, BLOB, 0, 0);
    printf("parent: blob into %zu bytes: \"%s\"\n", sizeof m.text, ipc_strerror((int)n));
    if (n != -EMSGSIZE) failed = 1;
    n = ipc_msgq_recv(id, &m, sizeof m.text, BLOB, IPC_MSGQ_TRUNCATE, 0);
    printf("parent: blob with IPC_MSGQ_TRUNCATE: %zd bytes: %.20s...\n", n, m.text);
    if (n != (ssize_t)sizeof m.text) failed = 1;

    /* A negative type -3: the lowest type <= 3 first, so logs (1) before stats (3). */
    if (drain(id, -STATS, "lowest type first") != 4) failed = 1;

    /* Empty now: a receive with a deadline gives up when it passes. */
    n = ipc_msgq_recv(id, &m, sizeof m.text, 0, 0, 50 * MS);
    printf("parent: any type, waiting 50 ms: \"%s\"\n", ipc_strerror((int)n));
    if (n != -ETIMEDOUT) failed = 1;

    r = ipc_msgq_remove(id); /* or it stays until reboot: ipcrm -q <id> */
    if (r < 0) {
        fprintf(stderr, "ipc_msgq_remove: %s\n", ipc_strerror(r));
        failed = 1;
    }
    return failed;
}
