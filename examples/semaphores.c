/* examples/semaphores.c - counting semaphores between processes: POSIX named ones as a
   pool of slots, and System V ones that the kernel gives back when their holder dies.

   Part 1: a POSIX named semaphore "/ipc-sem-example-<pid>" counts free slots (2 of
   them: say, licences or database connections). It is created exclusively with mode 0600
   (it lives as /dev/shm/sem.NAME), and five forked clients open it by name, as unrelated
   programs would. Each takes a slot (ipc_sem_wait, with a deadline), works 50 ms, and
   gives it back (ipc_sem_post). A counter in shared memory records how many clients were
   inside at once: never more than 2. The name is unlinked at the end; otherwise the
   semaphore stays in /dev/shm until reboot.

   Part 2: a System V semaphore used as a lock (value 1 = free). A child takes it and is
   then killed with SIGKILL while holding it, the one signal no program can clean up
   after. Taken with IPC_SEM_UNDO, the kernel reverts the child's operation when it dies:
   the value is 1 again and the lock is usable. The same run without IPC_SEM_UNDO leaves
   the value at 0: the lock is lost, and every later taker would wait for ever. POSIX
   semaphores have no such undo; for a lock that survives its holder's death see
   examples/robust_mutex.c. The set is removed at the end (ipcs -s lists sets).

   Build and run:  make demo   (or: cc -I. examples/semaphores.c -pthread && ./a.out) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS      1000000LL
#define SECOND  1000000000LL
#define SLOTS   2
#define CLIENTS 5

/* ---- Part 1: a pool of slots ---- */

struct stats {
    int inside;     /* clients holding a slot now */
    int max_inside; /* the most at once */
};

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int client(int id, const char *name, struct stats *st) {
    ipc_sem *sem;
    int r, now, max;

    r = ipc_sem_open(&sem, name); /* by name: works from any process with access */
    if (r < 0) {
        fprintf(stderr, "client %d: ipc_sem_open: %s\n", id, ipc_strerror(r));
        return 1;
    }
    r = ipc_sem_wait(sem, 5 * SECOND); /* a slot, or give up after 5 s */
    if (r < 0) {
        fprintf(stderr, "client %d: ipc_sem_wait: %s\n", id, ipc_strerror(r));
        ipc_sem_close(sem);
        return 1;
    }
    now = __atomic_add_fetch(&st->inside, 1, __ATOMIC_SEQ_CST);
    max = __atomic_load_n(&st->max_inside, __ATOMIC_SEQ_CST);
    while (now > max && !__atomic_compare_exchange_n(&st->max_inside, &max, now, 0,
                                                     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
    printf("client %d: got a slot\n", id);
    fflush(stdout);
    sleep_ms(50); /* the work */
    __atomic_sub_fetch(&st->inside, 1, __ATOMIC_SEQ_CST);
    printf("client %d: done, gives the slot back\n", id);
    fflush(stdout);        /* printed before the post, so lines come in the order of events */
    r = ipc_sem_post(sem); /* the slot is free again */
    if (r < 0) fprintf(stderr, "client %d: ipc_sem_post: %s\n", id, ipc_strerror(r));
    ipc_sem_close(sem); /* unmaps our view; the semaphore itself stays */
    return r < 0;
}

static int slot_pool(void) {
    char name[64], path[80];
    struct stat sb;
    struct stats *st;
    ipc_shm shm;
    ipc_sem *sem;
    pid_t pids[CLIENTS];
    int i, r, status, started = 0, failed = 0;

    /* Anonymous shared memory (a memfd) for the statistics, inherited by fork. */
    r = ipc_shm_create(&shm, NULL, sizeof *st, NULL);
    if (r < 0) {
        fprintf(stderr, "ipc_shm_create: %s\n", ipc_strerror(r));
        return 1;
    }
    st = (struct stats *)shm.addr; /* zeroed */

    snprintf(name, sizeof name, "/ipc-sem-example-%d", (int)getpid());
    r = ipc_sem_create(&sem, name, SLOTS, 0600); /* exclusive: -EEXIST if taken */
    if (r < 0) {
        fprintf(stderr, "ipc_sem_create(%s): %s\n", name, ipc_strerror(r));
        ipc_shm_close(&shm);
        return 1;
    }
    snprintf(path, sizeof path, "/dev/shm/sem.%s", name + 1);
    if (stat(path, &sb) == 0)
        printf("pool: created %s with %d slots: %s, mode %04o\n", name, SLOTS, path,
               (unsigned)(sb.st_mode & 0777));

    fflush(stdout); /* or the children inherit unprinted output */
    for (i = 0; i < CLIENTS; i++) {
        pids[i] = fork();
        if (pids[i] < 0) {
            perror("fork");
            failed = 1;
            break;
        }
        if (pids[i] == 0) {
            r = client(i, name, st);
            fflush(stdout);
            _exit(r);
        }
        started++;
    }
    for (i = 0; i < started; i++)
        if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            failed = 1;

    r = ipc_sem_value(sem);
    printf("pool: %d clients done; at most %d held a slot at once; %d slots free\n", started,
           st->max_inside, r);
    if (st->max_inside > SLOTS || r != SLOTS) failed = 1;

    ipc_sem_close(sem);
    r = ipc_sem_unlink(name); /* the name goes now; open handles would keep working */
    if (r < 0) {
        fprintf(stderr, "ipc_sem_unlink: %s\n", ipc_strerror(r));
        failed = 1;
    }
    ipc_shm_close(&shm);
    return failed;
}

/* ---- Part 2: a System V lock whose holder is killed ---- */

/* A child takes the lock (with `flags`), says so through the eventfd, and waits to be
   killed. Returns the lock's value after its death, or a negative error. */
static int hold_and_die(int id, short flags, int ready) {
    ipc_semop take = {0, -1, 0};
    ipc_proc child;
    int r, st;
    pid_t pid;

    take.flags = flags;
    fflush(stdout);
    pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
        r = ipc_semset_op(id, &take, 1, 5 * SECOND);
        if (r < 0) _exit(1);
        ipc_event_post(ready, 1);
        for (;;)
            pause();
    }
    r = ipc_proc_open(&child, pid);
    if (r < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return r;
    }
    r = ipc_event_wait(ready, NULL, 5 * SECOND);
    if (r == 0) {
        printf("lock: child %d holds it%s; value %d\n", (int)pid,
               flags & IPC_SEM_UNDO ? " (IPC_SEM_UNDO)" : " (no undo)", ipc_semset_get(id, 0));
        /* It is held: a take with a deadline times out. */
        take.flags = 0;
        r = ipc_semset_op(id, &take, 1, 100 * MS);
        printf("lock: our take with a 100 ms deadline: %s\n", ipc_strerror(r));
        if (r == 0) { /* cannot happen: give it back before failing */
            take.op = 1;
            ipc_semset_op(id, &take, 1, 0);
            r = -EPROTO;
        } else if (r == -ETIMEDOUT) {
            r = 0;
        }
    }
    ipc_proc_kill(&child, SIGKILL);
    st = ipc_proc_wait(&child, 5 * SECOND);
    ipc_proc_close(&child);
    if (r < 0) return r;
    if (st < 0) return st;
    printf("lock: child killed by signal %d while holding it\n",
           WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return ipc_semset_get(id, 0);
}

static int undo_demo(void) {
    int id, ready, v, r, failed = 0;
    ipc_semop op = {0, -1, 0};

    /* IPC_PRIVATE: a new set that only its id reaches, never a key clash. */
    id = ipc_semset_create(IPC_PRIVATE, 1, 0600);
    if (id < 0) {
        fprintf(stderr, "ipc_semset_create: %s\n", ipc_strerror(id));
        return 1;
    }
    ready = ipc_event_open(0, 0);
    if (ready < 0) {
        fprintf(stderr, "ipc_event_open: %s\n", ipc_strerror(ready));
        ipc_semset_remove(id);
        return 1;
    }
    r = ipc_semset_set(id, 0, 1); /* sets start at 0: make the lock free */
    printf("lock: System V set %d, semaphore 0 = %d (free)\n", id, ipc_semset_get(id, 0));

    v = r < 0 ? r : hold_and_die(id, IPC_SEM_UNDO, ready);
    if (v < 0) {
        fprintf(stderr, "lock: %s\n", ipc_strerror(v));
        failed = 1;
    } else {
        printf("lock: with IPC_SEM_UNDO the value is %d again: the kernel undid the take\n", v);
        if (v != 1) failed = 1;
        r = ipc_semset_op(id, &op, 1, 100 * MS); /* and it works: take, give back */
        printf("lock: we take it: %s\n", ipc_strerror(r));
        if (r < 0) failed = 1;
        op.op = 1;
        if (r == 0) ipc_semset_op(id, &op, 1, 0);
    }

    v = failed ? -1 : hold_and_die(id, 0, ready);
    if (!failed && v < 0) {
        fprintf(stderr, "lock: %s\n", ipc_strerror(v));
        failed = 1;
    } else if (!failed) {
        printf("lock: without undo the value stays %d: the lock is lost for good\n", v);
        if (v != 0) failed = 1;
    }

    ipc_fd_close(&ready);
    r = ipc_semset_remove(id); /* a waiter would now get -EIDRM */
    if (r < 0) {
        fprintf(stderr, "ipc_semset_remove: %s\n", ipc_strerror(r));
        failed = 1;
    }
    return failed;
}

int main(void) {
    int r = slot_pool();
    printf("\n");
    r |= undo_demo();
    return r;
}
