/* examples/robust_mutex.c - a mutex and a condition variable shared by processes, and
   what happens when a process dies while holding the mutex.

   The parent puts a mutex (ipc_mutex_init: process-shared, robust), a condition variable
   (ipc_cond_init) and the data they protect in anonymous shared memory (a memfd), which
   the forked children inherit. The data is a counter updated in two steps: `count` first,
   then `committed` (the count as of the last complete update). While the mutex is free
   the two are equal.

   A victim process makes 100 complete updates, then takes the mutex, does step one of an
   update, and stops there. Three workers and a consumer start and queue up on the
   mutex. The parent kills the victim with SIGKILL. An ordinary mutex would now be locked
   for ever; a robust one passes to the next locker with IPC_MUTEX_RECOVERED: it holds the
   lock, and it is told that the data may be half-updated. That process repairs it (here:
   count goes back to committed, undoing the half-done update) and calls
   ipc_mutex_consistent, and everyone carries on. Which process gets that role depends on
   timing. (Unlocking without ipc_mutex_consistent would make the mutex unusable for good:
   -ENOTRECOVERABLE for every later locker, never a hang.)

   Each worker makes 1000 updates and broadcasts the condition variable now and then. The
   consumer waits on it (ipc_cond_wait, with one deadline for the whole wait) until the
   count reaches 100 + 3 x 1000.

   Build and run:  make demo   (or: cc -I. examples/robust_mutex.c -pthread && ./a.out) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS     1000000LL
#define SECOND 1000000000LL
#define EARLY  100  /* complete updates by the victim before it dies */
#define NWORK  3    /* workers */
#define ROUNDS 1000 /* updates per worker */
#define TARGET (EARLY + NWORK * ROUNDS)

struct shared {
    uint64_t mutex[(IPC_MUTEX_SIZE + 7) / 8]; /* uint64_t: 8-aligned storage */
    uint64_t cond[(IPC_COND_SIZE + 7) / 8];
    uint32_t count;     /* protected by the mutex: step one of an update */
    uint32_t committed; /* step two: count once the update is complete */
};

static struct shared *sh; /* the same address in every process: mapped before fork */
static ipc_mutex *mx;
static ipc_cond *cv;

/* The lock was taken with IPC_MUTEX_RECOVERED: its previous holder died inside its
   critical section. Make the data consistent again, then say so to the mutex. */
static int repair(const char *who) {
    int r;
    printf("%s: IPC_MUTEX_RECOVERED: the holder died with count %u but committed %u; "
           "rolled back to %u\n",
           who, sh->count, sh->committed, sh->committed);
    fflush(stdout);
    sh->count = sh->committed;
    r = ipc_mutex_consistent(mx);
    if (r < 0) fprintf(stderr, "%s: ipc_mutex_consistent: %s\n", who, ipc_strerror(r));
    return r;
}

/* Lock, repairing first if need be: 0 with the lock held and the data consistent. */
static int lock(const char *who) {
    int r = ipc_mutex_lock(mx, 5 * SECOND);
    if (r == IPC_MUTEX_RECOVERED) r = repair(who);
    if (r < 0) fprintf(stderr, "%s: ipc_mutex_lock: %s\n", who, ipc_strerror(r));
    return r;
}

/* One complete update; wakes the consumer every 500 counts and at the target. */
static int update(const char *who) {
    int r = lock(who);
    if (r < 0) return r;
    sh->count++;
    sh->committed = sh->count;
    if (sh->count % 500 == 0 || sh->count == TARGET) ipc_cond_broadcast(cv); /* mutex held */
    return ipc_mutex_unlock(mx);
}

static int victim(int ready) {
    int i;
    for (i = 0; i < EARLY; i++)
        if (update("victim") < 0) return 1;
    if (lock("victim") < 0) return 1;
    sh->count++; /* step one of an update... */
    printf("victim (pid %d): holds the mutex, update half done: count %u, committed %u\n",
           (int)getpid(), sh->count, sh->committed);
    fflush(stdout);
    ipc_event_post(ready, 1);
    for (;;) /* ...and never step two */
        pause();
}

static int worker(int id) {
    char who[16];
    int i;
    snprintf(who, sizeof who, "worker %d", id);
    for (i = 0; i < ROUNDS; i++) {
        if (update(who) < 0) return 1;
        if (i % 100 == 99) { /* some work outside the lock now and then: others get in */
            struct timespec ts = {0, 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    printf("%s: %d updates done\n", who, ROUNDS);
    return 0;
}

static int consumer(void) {
    int64_t deadline = ipc_deadline_make(5 * SECOND); /* one for all the waits below */
    int r = lock("consumer"), wakeups = 0;
    if (r < 0) return 1;
    printf("consumer: count %u; waiting for %d\n", sh->count, TARGET);
    while (sh->count < TARGET) { /* the condition, re-checked after every wake-up */
        r = ipc_cond_wait(cv, mx, ipc_deadline_left(deadline)); /* relocks, also on error */
        if (r == IPC_MUTEX_RECOVERED) r = repair("consumer");
        if (r == -EAGAIN) r = -ETIMEDOUT; /* time left 0 means "try once": same thing here */
        if (r < 0) {
            fprintf(stderr, "consumer: ipc_cond_wait: %s at count %u\n", ipc_strerror(r),
                    sh->count);
            if (r != -ENOTRECOVERABLE) ipc_mutex_unlock(mx);
            return 1;
        }
        wakeups++;
        printf("consumer: woken, count %u\n", sh->count);
    }
    printf("consumer: count reached %u after %d wake-up(s)\n", sh->count, wakeups);
    ipc_mutex_unlock(mx);
    return 0;
}

static pid_t start(int which, int arg) {
    pid_t pid;
    fflush(stdout); /* or the child inherits unprinted output */
    pid = fork();
    if (pid == 0) {
        int r = which == 0 ? victim(arg) : which == 1 ? worker(arg) : consumer();
        fflush(stdout);
        _exit(r);
    }
    if (pid < 0) perror("fork");
    return pid;
}

int main(void) {
    pid_t pids[NWORK + 1];
    ipc_proc vp;
    ipc_shm shm;
    int i, r, st, ready, failed = 0;

    r = ipc_shm_create(&shm, NULL, sizeof *sh, NULL); /* anonymous memfd, zeroed */
    if (r < 0) {
        fprintf(stderr, "ipc_shm_create: %s\n", ipc_strerror(r));
        return 1;
    }
    sh = (struct shared *)shm.addr;
    r = ipc_mutex_init(sh->mutex, &mx); /* once, before any other process uses it */
    if (r == 0) r = ipc_cond_init(sh->cond, &cv);
    ready = r < 0 ? r : ipc_event_open(0, 0);
    if (r < 0 || ready < 0) {
        fprintf(stderr, "setup: %s\n", ipc_strerror(r < 0 ? r : ready));
        ipc_shm_close(&shm);
        return 1;
    }

    pids[0] = start(0, ready);
    r = ipc_proc_open(&vp, pids[0]); /* a pidfd, to kill it by */
    if (r < 0) {                     /* no victim: nothing to show */
        fprintf(stderr, "victim: %s\n", ipc_strerror(r));
        if (pids[0] > 0) {
            kill(pids[0], SIGKILL);
            waitpid(pids[0], NULL, 0);
        }
        ipc_shm_close(&shm);
        return 1;
    }
    r = ipc_event_wait(ready, NULL, 5 * SECOND);
    if (r < 0) {
        fprintf(stderr, "waiting for the victim: %s\n", ipc_strerror(r));
        failed = 1;
    }

    for (i = 0; i < NWORK + 1; i++) /* they all block on the mutex the victim holds */
        pids[i] = i < NWORK ? start(1, i) : start(2, 0);
    if (!failed) {
        struct timespec pause_ts = {0, 50 * 1000000L};
        nanosleep(&pause_ts, NULL); /* let them queue up, for the show; not needed */
    }

    printf("parent: SIGKILL to the victim, which holds the mutex\n");
    fflush(stdout);
    r = ipc_proc_kill(&vp, SIGKILL);
    st = ipc_proc_wait(&vp, 5 * SECOND);
    ipc_proc_close(&vp);
    if (r < 0 || st < 0 || !WIFSIGNALED(st)) failed = 1;

    for (i = 0; i < NWORK + 1; i++) {
        if (pids[i] < 0 || waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) ||
            WEXITSTATUS(st) != 0)
            failed = 1;
    }

    r = ipc_mutex_lock(mx, SECOND); /* 0: nobody died holding it this time */
    if (r == 0) {
        printf("parent: count %u, committed %u, expected %d\n", sh->count, sh->committed, TARGET);
        if (sh->count != TARGET || sh->committed != TARGET) failed = 1;
        ipc_mutex_unlock(mx);
    } else {
        fprintf(stderr, "parent: ipc_mutex_lock: %s\n",
                r == IPC_MUTEX_RECOVERED ? "IPC_MUTEX_RECOVERED" : ipc_strerror(r));
        failed = 1;
    }
    ipc_cond_destroy(cv);
    ipc_mutex_destroy(mx);
    ipc_fd_close(&ready);
    ipc_shm_close(&shm);
    return failed;
}
