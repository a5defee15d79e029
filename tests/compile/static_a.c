/* Two TUs each with a private (IPC_STATIC) copy, linked together: no clash. */
#define IPC_STATIC
#define IPC_IMPLEMENTATION
#include "../../ipc.h"

int static_b(void);

int main(void) {
    return ipc_deadline_make(0) == 0 && static_b() == 0 ? 0 : 1;
}
