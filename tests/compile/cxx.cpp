// ipc.h compiled as C++ (C++11 and later): declarations and implementation.
#define IPC_IMPLEMENTATION
#include "../../ipc.h"

#include <cerrno>
#include <cstring>

int main() {
    ipc_shm s;
    if (ipc_shm_create(&s, nullptr, 4096, nullptr) != 0) return 1;
    std::memset(s.addr, 0x5a, s.size);
    int ok = ipc_shm_close(&s) == 0 && ipc_fd_wait(-1, 0, 0) == -EBADF;
    return ok ? 0 : 1;
}
