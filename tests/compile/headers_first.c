/* ipc.h included after other system headers, with and without _GNU_SOURCE (set by the
   build), in strict ISO and GNU modes. */
#include <stdio.h>
#include <signal.h>
#include <pthread.h>

#define IPC_IMPLEMENTATION
#include "../../ipc.h"

int main(void) {
    uint32_t word = 0;
    int r = ipc_futex_wait(&word, 0, 0); /* -EAGAIN: would block */
    printf("%s\n", ipc_strerror(r));
    return r == -11 ? 0 : 1;
}
