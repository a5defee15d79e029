#define IPC_STATIC
#define IPC_IMPLEMENTATION
#include "../../ipc.h"

int static_b(void);

int static_b(void) {
    return ipc_deadline_make(IPC_FOREVER) == IPC_FOREVER ? 0 : 1;
}
