/* The implementation TU as users write it; built as C99, C11 and GNU11. */
#define IPC_IMPLEMENTATION
#include "../../ipc.h"

#include <errno.h>

int main(void) {
    ipc_shm s;
    int r = ipc_shm_create(&s, NULL, 4096, NULL);
    if (r != 0) return 1;
    ((volatile char *)s.addr)[0] = 1;
    if (ipc_shm_close(&s) != 0) return 1;
    return ipc_shm_create(NULL, NULL, 1, NULL) == -EINVAL ? 0 : 1;
}
