/* tests/test_cov_shm.c - section 4 paths the section's own tests leave out (found by make
   coverage): a file-backed segment named relative to the working directory. */
#include "harness.h"

#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/* A name without a slash: the file is made (exclusively, mode 0600, full size) in the
   working directory, and opening it by the same name maps the same bytes. */
TEST_GUARDED(cov_shm_file_relative_name, 10000, 2000, th_in_tmpdir) {
    ipc_shm s, t;
    struct stat st;
    CHECK_EQ(chdir(th_dir), 0);
    CHECK_OK(ipc_shm_file_create(&s, "seg", 8192, NULL));
    CHECK_EQ(s.kind, IPC_SHM_KIND_FILE);
    CHECK_EQ(lstat("seg", &st), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_EQ(st.st_size, 8192);
    memcpy((char *)s.addr + 8000, "relative", 8);
    CHECK_ERR(ipc_shm_file_create(&t, "seg", 8192, NULL), -EEXIST);
    CHECK_OK(ipc_shm_file_open(&t, "seg", NULL));
    CHECK_EQ(t.size, 8192);
    CHECK(memcmp((char *)t.addr + 8000, "relative", 8) == 0);
    CHECK_OK(ipc_shm_close(&t));
    CHECK_OK(ipc_shm_close(&s));
    CHECK_EQ(unlink("seg"), 0);
}
