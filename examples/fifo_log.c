/* examples/fifo_log.c - a log collector on a FIFO (named pipe) that several writer
   processes feed at the same time.

   The collector makes a FIFO in a fresh temporary directory and opens it for reading.
   Writer processes find it by its path, as unrelated programs would, open it for writing
   and send short log records. All of them share the one pipe, so their writes could mix:
   a record written in two pieces might get another writer's bytes between its halves.
   The kernel guarantees that a single write of at most PIPE_BUF (4096) bytes to a pipe is
   never interleaved with other writes, so the writers frame their records with
   IPC_FRAME_ATOMIC: each record (a 4-byte length, then the text) goes out in exactly one
   write, and a record that would not fit is refused with -EMSGSIZE rather than split.

   A FIFO reports end of stream once no writer has it open. Writers come and go at their
   own pace, so a collector that waited for the first end of stream could stop between
   one writer leaving and the next arriving. This one holds a write end of its own until
   every writer has said hello, then lets go: the receive that returns -EPIPE then really
   means that all writers are done. Finally it removes the FIFO and its directory.

   Any other program can log here too while the FIFO exists; from bash, for example:
       printf '\x0b\x00\x00\x00hello, log!' > /tmp/ipc-fifo-log-XXXXXX/log
   (a little-endian length, then the bytes).

   Build and run:  make demo   (or: cc -I. examples/fifo_log.c -pthread && ./a.out) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <limits.h> /* PIPE_BUF */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WRITERS 4
#define RECORDS 3 /* records per writer, besides its hello */
#define SECOND  1000000000LL

static int writer(const char *path, int id) {
    ipc_frame_opts fo = {0};
    ipc_frame f;
    char rec[128];
    ssize_t n;
    int i, r, fd;

    /* A FIFO opened for writing needs a reader; the collector is one already. */
    fd = ipc_fifo_open(path, IPC_FIFO_WRITE, 5 * SECOND);
    if (fd < 0) {
        fprintf(stderr, "writer %d: ipc_fifo_open: %s\n", id, ipc_strerror(fd));
        return 1;
    }
    fo.flags = IPC_FRAME_ATOMIC; /* one write() per record: never mixed with another's */
    ipc_frame_init(&f, fd, &fo);
    r = 0;
    for (i = 0; i <= RECORDS && r == 0; i++) {
        if (i == 0)
            snprintf(rec, sizeof rec, "writer %d (pid %d): hello", id, (int)getpid());
        else
            snprintf(rec, sizeof rec, "writer %d: event %d of %d", id, i, RECORDS);
        n = ipc_frame_send(&f, rec, strlen(rec), 5 * SECOND);
        if (n < 0) {
            fprintf(stderr, "writer %d: send: %s\n", id, ipc_strerror((int)n));
            r = 1;
        }
        usleep(1000); /* let the writers' records alternate a little */
    }
    ipc_fd_close(&fd); /* the last writer to close ends the collector's stream */
    return r;
}

int main(void) {
    char dir[] = "/tmp/ipc-fifo-log-XXXXXX", path[64];
    int i, r, fd, keep, hellos = 0, records = 0, failed = 0;
    pid_t pids[WRITERS];
    ipc_frame f;
    ssize_t n;

    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/log", dir);
    r = ipc_fifo_create(path, 0600); /* exclusive: -EEXIST if anything is there */
    if (r < 0) {
        fprintf(stderr, "ipc_fifo_create: %s\n", ipc_strerror(r));
        rmdir(dir);
        return 1;
    }
    /* Opening for reading never waits for a writer (the kernel's open would). */
    fd = ipc_fifo_open(path, IPC_FIFO_READ, 0);
    keep = fd < 0 ? fd : ipc_fifo_open(path, IPC_FIFO_WRITE, 0); /* our own write end */
    if (fd < 0 || keep < 0) {
        fprintf(stderr, "ipc_fifo_open: %s\n", ipc_strerror(fd < 0 ? fd : keep));
        ipc_fd_close(&fd);
        ipc_fifo_unlink(path);
        rmdir(dir);
        return 1;
    }
    printf("collector: FIFO %s, %d writers\n", path, WRITERS);

    fflush(stdout); /* or the children inherit unprinted output */
    for (i = 0; i < WRITERS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            ipc_fd_close(&fd);   /* a writer needs neither the collector's read end */
            ipc_fd_close(&keep); /* nor its write end */
            _exit(writer(path, i + 1));
        }
        if (pids[i] < 0) failed = 1;
    }

    ipc_frame_init(&f, fd, NULL); /* the reading side needs no flag */
    for (;;) {
        char rec[PIPE_BUF];
        n = ipc_frame_recv(&f, rec, sizeof rec, 5 * SECOND);
        if (n < 0) break;
        printf("collector: got \"%.*s\"\n", (int)n, rec);
        records++;
        if (n >= 5 && memcmp(rec + n - 5, "hello", 5) == 0 && ++hellos == WRITERS) {
            /* Every writer has the FIFO open: stop holding it open ourselves. */
            ipc_fd_close(&keep);
            printf("collector: all %d writers are connected; closed our own write end\n", WRITERS);
        }
    }
    /* -EPIPE: every writer closed the FIFO and everything they wrote has been read. */
    printf("collector: %d records, then \"%s\": every writer has closed the FIFO\n", records,
           ipc_strerror((int)n));
    if (n != -EPIPE) failed = 1;

    ipc_fd_close(&keep); /* still open if a writer never said hello (an error above) */
    ipc_fd_close(&fd);
    for (i = 0; i < WRITERS; i++) {
        int status;
        if (pids[i] <= 0) continue;
        waitpid(pids[i], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
    }
    r = ipc_fifo_unlink(path); /* refuses to remove anything that is not a FIFO */
    if (r < 0) fprintf(stderr, "ipc_fifo_unlink: %s\n", ipc_strerror(r));
    rmdir(dir);
    return failed || r < 0 || records != WRITERS * (RECORDS + 1) ? 1 : 0;
}
