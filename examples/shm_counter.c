/* examples/shm_counter.c - two processes take turns incrementing one counter in shared
   memory, and wake each other with futexes instead of spinning or sleeping.

   The parent creates an anonymous shared-memory object (a memfd) and forks; the child
   inherits the mapping. A 32-bit `turn` word says whose move it is: each process sleeps
   on it with ipc_futex_wait until it becomes its own number, bumps the counter, hands the
   turn over and wakes the other side with ipc_futex_wake.

   Build and run:  make demo   (or: cc -I. examples/shm_counter.c -pthread && ./a.out) */
#define IPC_IMPLEMENTATION
#include "ipc.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 100000

struct shared {
    uint32_t turn;    /* 0: parent's move, 1: child's move */
    uint32_t counter; /* only touched by the process whose turn it is */
};

static int play(struct shared *sh, uint32_t me) {
    int i;
    for (i = 0; i < ROUNDS; i++) {
        /* Sleep until it is our turn; a wake-up for the other value just loops. */
        uint32_t t;
        while ((t = __atomic_load_n(&sh->turn, __ATOMIC_ACQUIRE)) != me) {
            int r = ipc_futex_wait(&sh->turn, t, 5 * 1000000000LL); /* 5 s: peer stuck */
            if (r < 0) {
                fprintf(stderr, "wait: %s\n", ipc_strerror(r));
                return 1;
            }
        }
        sh->counter++;
        __atomic_store_n(&sh->turn, 1 - me, __ATOMIC_RELEASE);
        ipc_futex_wake(&sh->turn, 1);
    }
    return 0;
}

int main(void) {
    ipc_shm shm;
    struct shared *sh;
    int64_t t0;
    int r, status;
    pid_t child;

    r = ipc_shm_create(&shm, NULL, sizeof *sh, NULL); /* NULL name: anonymous memfd */
    if (r < 0) {
        fprintf(stderr, "ipc_shm_create: %s\n", ipc_strerror(r));
        return 1;
    }
    sh = (struct shared *)shm.addr; /* memory starts zeroed: turn 0, counter 0 */
    printf("shm_counter: %zu bytes of shared memory (memfd fd %d)\n", shm.size, shm.fd);
    printf("shm_counter: parent and child take %d turns each, waking each other by futex\n",
           ROUNDS);

    t0 = ipc_time_now();
    fflush(stdout); /* or the child inherits unprinted output */
    child = fork();
    if (child < 0) return 1;
    if (child == 0) _exit(play(sh, 1));
    r = play(sh, 0);
    waitpid(child, &status, 0);
    if (r != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;

    printf("shm_counter: counter = %u (expected %d), %.0f ns per hand-over\n", sh->counter,
           2 * ROUNDS, (double)(ipc_time_now() - t0) / (2.0 * ROUNDS));
    r = sh->counter == 2 * ROUNDS ? 0 : 1;
    ipc_shm_close(&shm);
    return r;
}
