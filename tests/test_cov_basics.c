/* tests/test_cov_basics.c - section 1, ipc_strerror over its whole table (written for
   coverage: the section's own tests check the documented core codes). */
#include "harness.h"

#include <limits.h>
#include <string.h>

/* Every errno value ipc.h's calls can pass on from the kernel or the C library. */
static const int codes[] = {
    EAGAIN,       ETIMEDOUT,    EPIPE,        EMSGSIZE,        EBADMSG,         EBUSY,    EEXIST,
    EINVAL,       ENOENT,       ENAMETOOLONG, ELOOP,           ENODEV,          ENOSPC,   ENOMEM,
    EFBIG,        EOVERFLOW,    EACCES,       EPERM,           EBADF,           EMFILE,   ENFILE,
    EINTR,        EIO,          ENOSYS,       EOPNOTSUPP,      EIDRM,           ENOTSOCK, ENOTCONN,
    ECONNREFUSED, ECONNRESET,   EADDRINUSE,   EADDRNOTAVAIL,   ENXIO,           ESPIPE,   EISDIR,
    ENOTDIR,      EROFS,        ETXTBSY,      E2BIG,           ECHILD,          ESRCH,    EDEADLK,
    ENOLCK,       EFAULT,       EPROTO,       ERANGE,          EDQUOT,          ENOMSG,   ENOEXEC,
    EHOSTUNREACH, ENETUNREACH,  EAFNOSUPPORT, EPROTONOSUPPORT, EINPROGRESS,     EALREADY, EISCONN,
    EDESTADDRREQ, ECONNABORTED, ENOBUFS,      EOWNERDEAD,      ENOTRECOVERABLE, ENOTTY};

/* Each has a message of its own (not the unknown one, not another code's), the same for
   -e and e; values outside the table and INT_MIN (which has no positive) are unknown. */
TEST(cov_strerror_every_code_has_its_own_message) {
    const char *unknown = ipc_strerror(-4000);
    size_t n = sizeof codes / sizeof codes[0], i, j;
    CHECK(unknown != NULL);
    CHECK_STREQ(ipc_strerror(4000), unknown);
    CHECK_STREQ(ipc_strerror(INT_MIN), unknown);
    CHECK_STREQ(ipc_strerror(INT_MAX), unknown);
    for (i = 0; i < n; i++) {
        const char *m = ipc_strerror(-codes[i]);
        if (!m || !*m || strcmp(m, unknown) == 0)
            th_fail(__FILE__, __LINE__, "errno %d has no message of its own", codes[i]);
        CHECK_STREQ(ipc_strerror(codes[i]), m);
        for (j = 0; j < i; j++)
            if (codes[j] != codes[i] && strcmp(ipc_strerror(-codes[j]), m) == 0)
                th_fail(__FILE__, __LINE__, "errno %d and %d share \"%s\"", codes[j], codes[i], m);
    }
}
