/* tests/test_cov_mq.c - section 9 paths the section's own tests leave out (found by make
   coverage): limits beyond what the kernel allows at creation. */
#include "harness.h"

#include <string.h>

/* A message size or a queue length beyond every limit (even a privileged process's: 16 MiB,
   65536 messages) is named for what it is, and creates nothing. */
TEST(cov_mq_create_beyond_the_limits) {
    char name[64];
    ipc_mq_opts o;
    th_name(name, sizeof name, "mqlim");
    memset(&o, 0, sizeof o);
    o.max_msgs = 1;
    o.msg_size = 64L * 1024 * 1024;
    CHECK_ERR(ipc_mq_create(name, &o), -EMSGSIZE);
    o.max_msgs = 1L << 20;
    o.msg_size = 16;
    CHECK_ERR(ipc_mq_create(name, &o), -ERANGE);
    CHECK_ERR(ipc_mq_open(name, IPC_MQ_READ), -ENOENT);
}
