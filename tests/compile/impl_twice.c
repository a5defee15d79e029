#define IPC_IMPLEMENTATION
#include "../../ipc.h"
#include "../../ipc.h"

int decl_only(void);

int main(void) {
    return decl_only();
}
