/* A TU with the declarations only, linked against impl_twice.c: one definition of
   each function, and a second include of the implementation in one TU is harmless. */
#include "../../ipc.h"
#include "../../ipc.h"

int decl_only(void);

int decl_only(void) {
    return ipc_strerror(0)[0] == 's' ? 0 : 1;
}
