#include "harness.h"

/* tests/test_mq.c - sections 9 and 10: POSIX message queues (ipc_mq_*) and System V
   message queues (ipc_msgq_*).

   Neither kind of queue is swept by the runner, and leftovers count against system-wide
   limits (queues_max, msgmni) and the user's RLIMIT_MSGQUEUE. So every test body runs in
   a child through guarded(): the names and ids it makes are recorded in shared memory,
   and the parent unlinks / removes them whatever happened to the body. Bodies still
   unlink and remove their queues themselves, checking those calls. */

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS      ((int64_t)1000000)
#define SEC     ((int64_t)1000000000)
#define JOIN_MS 5000

/* ---- helpers ---- */

static long sysctl_long(const char *path, long dflt) {
    char buf[32];
    long v = dflt;
    FILE *f = fopen(path, "r");
    if (!f) return dflt;
    if (fgets(buf, sizeof buf, f)) v = strtol(buf, NULL, 10);
    fclose(f);
    return v;
}

#define MQ_SYSCTL(x) sysctl_long("/proc/sys/fs/mqueue/" x, -1)

/* Drop root for good (root bypasses msg_max and msgsize_max), or skip. Returns 1 if the
   user changed, 0 if it was not root to begin with. */
static int drop_privileges(void) {
    if (geteuid() != 0) return 0;
    if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0 || geteuid() == 0)
        th_skip("cannot drop privileges to uid/gid 65534");
    return 1;
}

/* ---- the guard: what a body made is removed by its parent ---- */

#define NAME_SLOT 300 /* room for a name one byte over NAME_MAX, plus the slash */

typedef struct made {
    char mq[6][NAME_SLOT]; /* POSIX queue names */
    int msgq[8];           /* System V queue ids */
    char dir[64];          /* a temporary directory with a file "key" */
} made;

static made *g_made;

/* A fresh POSIX queue name, recorded for removal. Writable: NAME_SLOT bytes. */
static char *mq_name(const char *tag) {
    int i;
    for (i = 0; i < 6; i++) {
        if (!g_made->mq[i][0]) return th_name(g_made->mq[i], NAME_SLOT, tag);
    }
    th_fail(__FILE__, __LINE__, "more than 6 queue names");
}

static int msgq_new(int key, unsigned mode) {
    int i, id = ipc_msgq_create(key, mode);
    if (id < 0) return id;
    for (i = 0; i < 8; i++) {
        if (g_made->msgq[i] < 0) {
            g_made->msgq[i] = id;
            return id;
        }
    }
    msgctl(id, IPC_RMID, NULL);
    th_fail(__FILE__, __LINE__, "more than 8 System V queues");
}

/* Remove a queue and forget it, so the guard never removes a reused id. */
static void msgq_remove(int id) {
    int i;
    CHECK_OK(ipc_msgq_remove(id));
    for (i = 0; i < 8; i++)
        if (g_made->msgq[i] == id) g_made->msgq[i] = -1;
}

/* A temporary directory holding an empty file "key", for ftok; returns the file's path. */
static char *key_file(char *path, size_t size) {
    return th_key_file(g_made->dir, sizeof g_made->dir, path, size);
}

static void guarded(void (*body)(void), int timeout_ms) {
    int i, code;
    g_made = (made *)th_shared_map(sizeof *g_made);
    for (i = 0; i < 8; i++)
        g_made->msgq[i] = -1;
    code = th_run_body(body, timeout_ms);
    for (i = 0; i < 6; i++)
        if (g_made->mq[i][0]) mq_unlink(g_made->mq[i]);
    for (i = 0; i < 8; i++)
        if (g_made->msgq[i] >= 0) msgctl(g_made->msgq[i], IPC_RMID, NULL);
    if (g_made->dir[0]) th_rm_tree(g_made->dir);
    th_shared_unmap(g_made, sizeof *g_made);
    th_body_verdict(code);
}

/* A test whose body runs guarded, with 2 s of the test's timeout left for the cleanup. */
#define GTEST(name, timeout_ms) TEST_GUARDED(name, timeout_ms, 2000, guarded)

/* ======================== POSIX message queues ======================== */

static ipc_mq_opts small_opts(long max_msgs, long msg_size) {
    ipc_mq_opts o;
    memset(&o, 0, sizeof o);
    o.max_msgs = max_msgs;
    o.msg_size = msg_size;
    return o;
}

static void check_attr(int mq, long max_msgs, long msg_size, long cur_msgs, int nonblock) {
    ipc_mq_attr a;
    memset(&a, 0x55, sizeof a);
    CHECK_OK(ipc_mq_getattr(mq, &a));
    CHECK_EQ(a.max_msgs, max_msgs);
    CHECK_EQ(a.msg_size, msg_size);
    CHECK_EQ(a.cur_msgs, cur_msgs);
    CHECK_EQ(a.nonblock, nonblock);
}

static void send_str(int mq, const char *s, unsigned prio) {
    CHECK_OK(ipc_mq_send(mq, s, strlen(s), prio, 0));
}

/* Receive at once and compare text and priority. */
static void recv_str(int mq, const char *want, unsigned want_prio) {
    char buf[256];
    unsigned prio = 99999;
    ssize_t n = ipc_mq_recv(mq, buf, sizeof buf, &prio, 0);
    if (n < 0) th_fail(__FILE__, __LINE__, "recv of \"%s\": %s", want, ipc_strerror((int)n));
    if ((size_t)n != strlen(want) || memcmp(buf, want, (size_t)n) != 0 || prio != want_prio)
        th_fail(__FILE__, __LINE__, "got \"%.*s\" prio %u, want \"%s\" prio %u", (int)n, buf, prio,
                want, want_prio);
}

GTEST(mq_create_exclusive_attrs, 10000) {
    char *name = mq_name("excl"), *dflt = mq_name("dflt");
    ipc_mq_opts o = small_opts(5, 100);
    long dmax = MQ_SYSCTL("msg_default"), dsize = MQ_SYSCTL("msgsize_default");
    int fds = th_fd_count(), mq, r;

    mq = ipc_mq_create(name, &o);
    CHECK_OK(mq);
    CHECK(th_is_cloexec(mq));
    CHECK_EQ(th_fd_count(), fds + 1);
    check_attr(mq, 5, 100, 0, 0);
    send_str(mq, "kept", 7);

    /* exclusive, with or without the slash; the failures leak no fd */
    CHECK_ERR(ipc_mq_create(name, &o), -EEXIST);
    CHECK_ERR(ipc_mq_create(name + 1, NULL), -EEXIST);
    CHECK_ERR(ipc_mq_create(name, &(ipc_mq_opts){1, 16, 0644, 0}), -EEXIST);
    CHECK_EQ(th_fd_count(), fds + 1);

    /* the queue is untouched and its name still leads to it */
    r = ipc_mq_open(name, IPC_MQ_READ);
    CHECK_OK(r);
    CHECK(th_is_cloexec(r));
    check_attr(r, 5, 100, 1, 0);
    recv_str(r, "kept", 7);
    CHECK_OK(ipc_mq_close(r));
    CHECK_OK(ipc_mq_close(mq));
    CHECK_EQ(th_fd_count(), fds);

    CHECK_OK(ipc_mq_unlink(name));
    CHECK_ERR(ipc_mq_unlink(name), -ENOENT);
    CHECK_ERR(ipc_mq_open(name, IPC_MQ_READ), -ENOENT);

    /* zero fields take the system defaults, one by one */
    if (dmax <= 0 || dsize <= 0) th_skip("no /proc/sys/fs/mqueue");
    mq = ipc_mq_create(dflt, NULL);
    CHECK_OK(mq);
    check_attr(mq, dmax, dsize, 0, 0);
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(dflt));
    o = small_opts(0, 0);
    CHECK_OK(mq = ipc_mq_create(dflt, &o));
    check_attr(mq, dmax, dsize, 0, 0);
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(dflt));
    o = small_opts(3, 0);
    CHECK_OK(mq = ipc_mq_create(dflt, &o));
    check_attr(mq, 3, dsize, 0, 0);
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(dflt));
    o = small_opts(0, 64);
    CHECK_OK(mq = ipc_mq_create(dflt, &o));
    check_attr(mq, dmax, 64, 0, 0);
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(dflt));
    CHECK_EQ(th_fd_count(), fds);
}

static unsigned mq_mode(int mq) {
    struct stat st;
    if (fstat(mq, &st) != 0) th_skip("fstat does not work on a queue fd here");
    return (unsigned)st.st_mode & 07777u;
}

GTEST(mq_create_mode, 10000) {
    static const unsigned modes[] = {0640, 0604, 0666, 0700, 0400, 0777};
    char *name = mq_name("mode");
    ipc_mq_opts o = small_opts(2, 16);
    size_t i;
    int mq;

    umask(077); /* an explicit mode is applied exactly anyway */
    CHECK_OK(mq = ipc_mq_create(name, &o));
    CHECK_EQ(mq_mode(mq), 0600);
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(name));
    CHECK_OK(mq = ipc_mq_create(name, NULL));
    CHECK_EQ(mq_mode(mq), 0600);
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(name));

    for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        o.mode = modes[i];
        CHECK_OK(mq = ipc_mq_create(name, &o));
        CHECK_EQ(mq_mode(mq), modes[i]);
        /* the creator's fd is read-write whatever the mode */
        send_str(mq, "m", 1);
        recv_str(mq, "m", 1);
        CHECK_OK(ipc_mq_close(mq));
        CHECK_OK(ipc_mq_unlink(name));
    }

    /* bits beyond 0777 are a bad argument, and nothing is created */
    o.mode = 04600;
    CHECK_ERR(ipc_mq_create(name, &o), -EINVAL);
    o.mode = 01777;
    CHECK_ERR(ipc_mq_create(name, &o), -EINVAL);
    CHECK_ERR(ipc_mq_unlink(name), -ENOENT);
}

GTEST(mq_open_flags, 10000) {
    char *name = mq_name("open"), *missing = mq_name("missing");
    ipc_mq_opts o = small_opts(4, 64);
    int mq, r, w, rw, nb, fds;

    CHECK_OK(mq = ipc_mq_create(name, &o));
    fds = th_fd_count();
    CHECK_OK(r = ipc_mq_open(name, IPC_MQ_READ));
    CHECK_OK(w = ipc_mq_open(name, IPC_MQ_WRITE));
    CHECK_OK(rw = ipc_mq_open(name + 1, IPC_MQ_READ | IPC_MQ_WRITE));
    CHECK_OK(nb = ipc_mq_open(name, IPC_MQ_READ | IPC_MQ_NONBLOCK));
    CHECK(th_is_cloexec(r) && th_is_cloexec(w) && th_is_cloexec(rw) && th_is_cloexec(nb));
    check_attr(r, 4, 64, 0, 0);
    check_attr(nb, 4, 64, 0, 1);

    /* each fd does what it was opened for, and only that */
    CHECK_ERR(ipc_mq_send(r, "x", 1, 0, 0), -EBADF);
    CHECK_ERR(ipc_mq_send(nb, "x", 1, 0, 0), -EBADF);
    {
        char buf[64];
        CHECK_ERR(ipc_mq_recv(w, buf, sizeof buf, NULL, 0), -EBADF);
    }
    send_str(w, "from w", 2);
    recv_str(r, "from w", 2);
    send_str(rw, "from rw", 3);
    recv_str(rw, "from rw", 3);
    send_str(mq, "to nb", 4);
    recv_str(nb, "to nb", 4);

    /* O_NONBLOCK on the fd: a zero timeout still says -EAGAIN, and a finite one is still
       honoured (waits run in poll on the monotonic deadline) */
    {
        char buf[64];
        CHECK_ERR(ipc_mq_recv(nb, buf, sizeof buf, NULL, 0), -EAGAIN);
        CHECK_TIMED(ipc_mq_recv(nb, buf, sizeof buf, NULL, 30 * MS), -ETIMEDOUT, 30);
    }

    /* bad flags and missing names fail without an fd */
    CHECK_ERR(ipc_mq_open(name, 0), -EINVAL);
    CHECK_ERR(ipc_mq_open(name, IPC_MQ_NONBLOCK), -EINVAL);
    CHECK_ERR(ipc_mq_open(name, IPC_MQ_READ | 8), -EINVAL);
    CHECK_ERR(ipc_mq_open(missing, IPC_MQ_READ), -ENOENT);
    CHECK_ERR(ipc_mq_open(missing, IPC_MQ_WRITE | IPC_MQ_NONBLOCK), -ENOENT);
    CHECK_EQ(th_fd_count(), fds + 4);

    CHECK_OK(ipc_mq_close(r));
    CHECK_OK(ipc_mq_close(w));
    CHECK_OK(ipc_mq_close(rw));
    CHECK_OK(ipc_mq_close(nb));
    CHECK_ERR(ipc_mq_close(nb), -EBADF);
    CHECK_EQ(th_fd_count(), fds);
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(name));

    /* created non-blocking */
    o.flags = IPC_MQ_NONBLOCK;
    CHECK_OK(mq = ipc_mq_create(name, &o));
    check_attr(mq, 4, 64, 0, 1);
    send_str(mq, "nb", 0);
    recv_str(mq, "nb", 0);
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(name));
}

/* Every call that takes a name rejects it with err, and makes nothing. */
static void bad_name(const char *name, int err, int alt) {
    ipc_mq_opts o = small_opts(1, 16);
    int r;
    r = ipc_mq_create(name, &o);
    if (r != err && r != alt) th_fail(__FILE__, __LINE__, "create: %s", ipc_strerror(r));
    r = ipc_mq_open(name, IPC_MQ_READ);
    if (r != err && r != alt) th_fail(__FILE__, __LINE__, "open: %s", ipc_strerror(r));
    r = ipc_mq_unlink(name);
    if (r != err && r != alt) th_fail(__FILE__, __LINE__, "unlink: %s", ipc_strerror(r));
}

GTEST(mq_names, 10000) {
    char *name = mq_name("names"), *longn = mq_name("long"), *missing = mq_name("gone");
    ipc_mq_opts o = small_opts(2, 16);
    int mq, w, fds = th_fd_count();
    size_t n;

    /* "x" and "/x" are one queue */
    CHECK_OK(mq = ipc_mq_create(name, &o));
    CHECK_OK(w = ipc_mq_open(name + 1, IPC_MQ_WRITE));
    send_str(w, "same", 5);
    recv_str(mq, "same", 5);
    CHECK_ERR(ipc_mq_create(name + 1, &o), -EEXIST);
    CHECK_OK(ipc_mq_close(w));
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(name + 1));
    CHECK_ERR(ipc_mq_unlink(name), -ENOENT);

    bad_name("/a/b", -EINVAL, -EINVAL);
    bad_name("a/b", -EINVAL, -EINVAL);
    bad_name("", -EINVAL, -EINVAL);
    bad_name("/", -EINVAL, -EINVAL);
    bad_name(NULL, -EINVAL, -EINVAL);
    CHECK_ERR(ipc_mq_unlink(missing), -ENOENT);

    /* NAME_MAX bytes after the slash is the longest name; one more is refused */
    n = strlen(longn);
    memset(longn + n, 'y', NAME_MAX + 1 - n);
    longn[NAME_MAX + 1] = 0;
    CHECK_OK(mq = ipc_mq_create(longn, &o));
    CHECK_OK(w = ipc_mq_open(longn + 1, IPC_MQ_WRITE));
    send_str(w, "long", 1);
    recv_str(mq, "long", 1);
    CHECK_OK(ipc_mq_close(w));
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(longn));
    longn[NAME_MAX + 1] = 'y';
    longn[NAME_MAX + 2] = 0;
    bad_name(longn, -ENAMETOOLONG, -EINVAL);
    bad_name(longn + 1, -ENAMETOOLONG, -EINVAL);
    longn[0] = 0; /* nothing of this name can exist */
    CHECK_EQ(th_fd_count(), fds);
}

/* Messages (text, priority) in send order, and the order they must come out in. */
static const struct {
    const char *text;
    unsigned prio;
} prio_msgs[] = {{"a0", 0}, {"b5", 5}, {"c0", 0}, {"d-top", 32767},
                 {"e5", 5}, {"f1", 1}, {"g0", 0}, {"h5-and-a-longer-text", 5}},
  prio_order[] = {{"d-top", 32767}, {"b5", 5}, {"e5", 5}, {"h5-and-a-longer-text", 5},
                  {"f1", 1},        {"a0", 0}, {"c0", 0}, {"g0", 0}};
#define N_PRIO_MSGS ((long)(sizeof prio_msgs / sizeof prio_msgs[0]))

static void prio_sender(void *arg) {
    const char *name = (const char *)arg;
    int w = ipc_mq_open(name, IPC_MQ_WRITE);
    long i;
    CHECK_OK(w);
    for (i = 0; i < N_PRIO_MSGS; i++)
        send_str(w, prio_msgs[i].text, prio_msgs[i].prio);
    /* out-of-range priorities queue nothing */
    CHECK_ERR(ipc_mq_send(w, "bad", 3, 32768, 0), -EINVAL);
    CHECK_ERR(ipc_mq_send(w, "bad", 3, UINT_MAX, IPC_FOREVER), -EINVAL);
    CHECK_OK(ipc_mq_close(w));
}

static void prio_receiver(void *arg) {
    const char *name = (const char *)arg;
    int r = ipc_mq_open(name, IPC_MQ_READ);
    CHECK_OK(r);
    recv_str(r, "late", 2);
    recv_str(r, "early", 0);
    recv_str(r, "middle", 0);
    CHECK_OK(ipc_mq_close(r));
}

GTEST(mq_priorities_across_fork, 10000) {
    char *name = mq_name("prio");
    ipc_mq_opts o = small_opts(10, 64);
    char buf[64];
    int mq;
    long i;

    CHECK_OK(mq = ipc_mq_create(name, &o));
    th_join_ok(th_spawn_ok(prio_sender, name), JOIN_MS);
    check_attr(mq, 10, 64, N_PRIO_MSGS, 0);
    for (i = 0; i < N_PRIO_MSGS; i++)
        recv_str(mq, prio_order[i].text, prio_order[i].prio);
    CHECK_ERR(ipc_mq_recv(mq, buf, sizeof buf, NULL, 0), -EAGAIN);

    /* the other way round; a NULL prio pointer is fine */
    send_str(mq, "early", 0);
    send_str(mq, "middle", 0);
    send_str(mq, "late", 2);
    th_join_ok(th_spawn_ok(prio_receiver, name), JOIN_MS);
    check_attr(mq, 10, 64, 0, 0);
    send_str(mq, "no prio wanted", 9);
    CHECK_EQ(ipc_mq_recv(mq, buf, sizeof buf, NULL, 0), 14);
    CHECK(memcmp(buf, "no prio wanted", 14) == 0);

    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(name));
}

GTEST(mq_message_size, 10000) {
    char *name = mq_name("size");
    ipc_mq_opts o = small_opts(4, 32);
    char msg[64], buf[1000];
    unsigned prio = 0;
    int mq, i;

    for (i = 0; i < 64; i++)
        msg[i] = (char)('A' + i % 26);
    CHECK_OK(mq = ipc_mq_create(name, &o));
    CHECK_ERR(ipc_mq_send(mq, msg, 33, 0, 0), -EMSGSIZE);
    CHECK_ERR(ipc_mq_send(mq, msg, 64, 0, IPC_FOREVER), -EMSGSIZE);
    check_attr(mq, 4, 32, 0, 0);
    CHECK_OK(ipc_mq_send(mq, msg, 32, 6, 0));

    /* a buffer below msg_size is refused, whatever the timeout, and nothing is taken */
    CHECK_ERR(ipc_mq_recv(mq, buf, 31, &prio, 0), -EMSGSIZE);
    CHECK_ERR(ipc_mq_recv(mq, buf, 1, &prio, IPC_FOREVER), -EMSGSIZE);
    check_attr(mq, 4, 32, 1, 0);
    CHECK_EQ(ipc_mq_recv(mq, buf, 32, &prio, 0), 32);
    CHECK(memcmp(buf, msg, 32) == 0);
    CHECK_EQ(prio, 6);
    /* even on an empty queue: -EMSGSIZE at once, no wait */
    CHECK_ERR(ipc_mq_recv(mq, buf, 31, NULL, IPC_FOREVER), -EMSGSIZE);

    /* short messages keep their length; a big buffer is fine */
    CHECK_OK(ipc_mq_send(mq, msg, 1, 0, 0));
    CHECK_EQ(ipc_mq_recv(mq, buf, sizeof buf, NULL, 0), 1);
    CHECK_EQ(buf[0], 'A');
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(name));
}

GTEST(mq_deadlines, 10000) {
    char *name = mq_name("dl");
    ipc_mq_opts o = small_opts(3, 16);
    char buf[16];
    int mq;

    CHECK_OK(mq = ipc_mq_create(name, &o));
    CHECK_TIMED(ipc_mq_recv(mq, buf, sizeof buf, NULL, 0), -EAGAIN, 0);
    CHECK_TIMED(ipc_mq_recv(mq, buf, sizeof buf, NULL, 50 * MS), -ETIMEDOUT, 50);
    CHECK_ERR(ipc_mq_recv(mq, buf, sizeof buf, NULL, -2), -EINVAL);

    send_str(mq, "1", 0);
    send_str(mq, "2", 0);
    send_str(mq, "3", 0);
    CHECK_TIMED(ipc_mq_send(mq, "4", 1, 0, 0), -EAGAIN, 0);
    CHECK_TIMED(ipc_mq_send(mq, "4", 1, 9, 50 * MS), -ETIMEDOUT, 50);
    CHECK_ERR(ipc_mq_send(mq, "4", 1, 0, -2), -EINVAL);
    check_attr(mq, 3, 16, 3, 0);
    recv_str(mq, "1", 0);
    recv_str(mq, "2", 0);
    recv_str(mq, "3", 0);
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(name));
}

static void late_sender(void *arg) {
    int w = ipc_mq_open((const char *)arg, IPC_MQ_WRITE);
    CHECK_OK(w);
    th_sleep_ms(50);
    send_str(w, "wake", 3);
    CHECK_OK(ipc_mq_close(w));
}

static void late_receiver(void *arg) {
    int r = ipc_mq_open((const char *)arg, IPC_MQ_READ);
    CHECK_OK(r);
    th_sleep_ms(50);
    recv_str(r, "full", 0);
    CHECK_OK(ipc_mq_close(r));
}

GTEST(mq_blocked_calls_woken_by_other_process, 10000) {
    char *name = mq_name("wake");
    ipc_mq_opts o = small_opts(1, 16);
    char buf[16];
    unsigned prio = 0;
    pid_t pid;
    int mq;

    CHECK_OK(mq = ipc_mq_create(name, &o));
    pid = th_spawn_ok(late_sender, name);
    CHECK_EQ(ipc_mq_recv(mq, buf, sizeof buf, &prio, IPC_FOREVER), 4);
    CHECK(memcmp(buf, "wake", 4) == 0 && prio == 3);
    th_join_ok(pid, JOIN_MS);

    pid = th_spawn_ok(late_sender, name);
    CHECK_EQ(ipc_mq_recv(mq, buf, sizeof buf, &prio, 5 * SEC), 4);
    CHECK(memcmp(buf, "wake", 4) == 0 && prio == 3);
    th_join_ok(pid, JOIN_MS);

    /* a full queue: the send waits until the child takes a message */
    send_str(mq, "full", 0);
    pid = th_spawn_ok(late_receiver, name);
    CHECK_OK(ipc_mq_send(mq, "room", 4, 0, IPC_FOREVER));
    th_join_ok(pid, JOIN_MS);
    recv_str(mq, "room", 0);
    send_str(mq, "full", 0);
    pid = th_spawn_ok(late_receiver, name);
    CHECK_OK(ipc_mq_send(mq, "room", 4, 1, 5 * SEC));
    th_join_ok(pid, JOIN_MS);
    recv_str(mq, "room", 1);

    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(name));
}

#define STORM_MSGS 2000

static void mq_storm_sender(void *arg) {
    int w = ipc_mq_open((const char *)arg, IPC_MQ_WRITE);
    uint32_t i;
    CHECK_OK(w);
    th_storm_start();
    for (i = 0; i < STORM_MSGS; i++)
        CHECK_OK(ipc_mq_send(w, &i, sizeof i, i % 2, i % 3 ? IPC_FOREVER : 10 * SEC));
    CHECK(th_storm_stop() > 0);
    CHECK_OK(ipc_mq_close(w));
}

GTEST(mq_signal_storm, 30000) {
    char *name = mq_name("storm");
    ipc_mq_opts o = small_opts(10, 16);
    uint32_t i, next[2] = {0, 1};
    pid_t pid;
    int mq;

    CHECK_OK(mq = ipc_mq_create(name, &o));
    pid = th_spawn_ok(mq_storm_sender, name);
    th_storm_start();
    /* the two priorities interleave, so each is checked on its own: every message once,
       in order (the even ones at priority 0, the odd ones at 1) */
    for (i = 0; i < STORM_MSGS; i++) {
        uint32_t v[4];
        unsigned prio = 7;
        CHECK_EQ(ipc_mq_recv(mq, v, sizeof v, &prio, i % 5 ? IPC_FOREVER : 10 * SEC), sizeof v[0]);
        if (prio > 1 || v[0] != next[prio])
            th_fail(__FILE__, __LINE__, "message %u at priority %u, want %u or %u", v[0], prio,
                    next[0], next[1]);
        next[prio] += 2;
    }
    CHECK(th_storm_stop() > 0);
    th_join_ok(pid, JOIN_MS);
    check_attr(mq, 10, 16, 0, 0);
    CHECK_EQ(next[0], STORM_MSGS);
    CHECK_EQ(next[1], STORM_MSGS + 1);
    CHECK_OK(ipc_mq_unlink(name));
}

/* Whether this process has CAP_SYS_RESOURCE (bit 24 of CapEff in /proc/self/status). */
static int has_sys_resource(void) {
    char line[128];
    unsigned long long caps = 0;
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "CapEff: %llx", &caps) == 1) break;
    fclose(f);
    return (int)((caps >> 24) & 1);
}

struct limits_arg {
    const char *closed, *open, *fresh;
};

static void limits_child(void *arg) {
    const struct limits_arg *a = (const struct limits_arg *)arg;
    long msg_max = MQ_SYSCTL("msg_max"), msgsize_max = MQ_SYSCTL("msgsize_max");
    ipc_mq_opts o;
    struct rlimit rl;
    int fds, mq, other_user;

    other_user = drop_privileges();
    if (msg_max <= 0 || msgsize_max <= 0) th_skip("no /proc/sys/fs/mqueue");
    /* the creator's mode is what keeps other users out */
    if (other_user) {
        CHECK_ERR(ipc_mq_open(a->closed, IPC_MQ_READ), -EACCES);
        CHECK_ERR(ipc_mq_open(a->closed, IPC_MQ_WRITE), -EACCES);
    }
    CHECK_OK(mq = ipc_mq_open(a->open, IPC_MQ_READ | IPC_MQ_WRITE));
    send_str(mq, "nobody", 1);
    recv_str(mq, "nobody", 1);
    CHECK_OK(ipc_mq_close(mq));

    fds = th_fd_count();
    o = small_opts(msg_max + 1, 16);
    CHECK_ERR(ipc_mq_create(a->fresh, &o), -ERANGE);
    o = small_opts(1, msgsize_max + 1);
    CHECK_ERR(ipc_mq_create(a->fresh, &o), -EMSGSIZE);
    CHECK_ERR(ipc_mq_unlink(a->fresh), -ENOENT);
    /* the limits themselves are allowed */
    o = small_opts(msg_max, 16);
    CHECK_OK(mq = ipc_mq_create(a->fresh, &o));
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(a->fresh));

    /* RLIMIT_MSGQUEUE: this queue needs about 2 * 4096 bytes, more than the 4096 allowed */
    rl.rlim_cur = rl.rlim_max = 4096;
    CHECK_EQ(setrlimit(RLIMIT_MSGQUEUE, &rl), 0);
    o = small_opts(2, msgsize_max < 4096 ? msgsize_max : 4096);
    CHECK_ERR(ipc_mq_create(a->fresh, &o), -EDQUOT);
    CHECK_ERR(ipc_mq_unlink(a->fresh), -ENOENT);
    o = small_opts(1, 16);
    CHECK_OK(mq = ipc_mq_create(a->fresh, &o));
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(a->fresh));
    CHECK_EQ(th_fd_count(), fds);
}

GTEST(mq_system_limits_unprivileged, 10000) {
    struct limits_arg a;
    ipc_mq_opts o = small_opts(1, 16);
    long msg_max;
    int c, op, f;

    a.closed = mq_name("closed");
    a.open = mq_name("open");
    a.fresh = mq_name("fresh");
    CHECK_OK(c = ipc_mq_create(a.closed, &o));
    o.mode = 0666;
    CHECK_OK(op = ipc_mq_create(a.open, &o));
    th_join_ok(th_spawn_ok(limits_child, &a), JOIN_MS);
    CHECK_ERR(ipc_mq_unlink(a.fresh), -ENOENT);
    /* with CAP_SYS_RESOURCE msg_max may be exceeded; without it (a container may drop it
       even for root) the limit holds here too */
    if ((msg_max = MQ_SYSCTL("msg_max")) > 0) {
        o = small_opts(msg_max + 1, 16);
        if (has_sys_resource()) {
            CHECK_OK(f = ipc_mq_create(a.fresh, &o));
            check_attr(f, msg_max + 1, 16, 0, 0);
            CHECK_OK(ipc_mq_close(f));
            CHECK_OK(ipc_mq_unlink(a.fresh));
        } else {
            CHECK_ERR(ipc_mq_create(a.fresh, &o), -ERANGE);
        }
    }
    CHECK_OK(ipc_mq_close(c));
    CHECK_OK(ipc_mq_close(op));
    CHECK_OK(ipc_mq_unlink(a.closed));
    CHECK_OK(ipc_mq_unlink(a.open));
}

/* mq_notify needs the mq_notify syscall, which qemu-user lacks: skip there. */
static void notify_or_skip(int r) {
    if (r == -ENOSYS) th_skip("mq_notify is not available (an emulator?)");
    CHECK_OK(r);
}

static void notify_busy_sender(void *arg) {
    int q = ipc_mq_open((const char *)arg, IPC_MQ_READ | IPC_MQ_WRITE);
    CHECK_OK(q);
    CHECK_ERR(ipc_mq_notify_signal(q, SIGUSR2, 1), -EBUSY);
    /* cancel touches only this process's registration: the parent's stays */
    CHECK_OK(ipc_mq_notify_cancel(q));
    send_str(q, "ping", 4);
    CHECK_OK(ipc_mq_close(q));
}

/* Wait up to ms for SIGUSR1 (blocked): 1 and *si filled, or 0. */
static int wait_usr1(int ms, siginfo_t *si) {
    sigset_t set;
    struct timespec ts;
    int r;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    do
        r = sigtimedwait(&set, si, &ts);
    while (r < 0 && errno == EINTR);
    if (r < 0) CHECK_EQ(errno, EAGAIN);
    return r == SIGUSR1;
}

GTEST(mq_notify_signal, 10000) {
    char *name = mq_name("nsig");
    ipc_mq_opts o = small_opts(4, 16);
    sigset_t set;
    siginfo_t si;
    int mq;

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK_EQ(sigprocmask(SIG_BLOCK, &set, NULL), 0);
    CHECK_OK(mq = ipc_mq_create(name, &o));
    notify_or_skip(ipc_mq_notify_signal(mq, SIGUSR1, 4242));
    CHECK_OK(ipc_mq_notify_cancel(mq));
    CHECK_ERR(ipc_mq_notify_signal(mq, 0, 1), -EINVAL);
    CHECK_ERR(ipc_mq_notify_signal(mq, 1000, 1), -EINVAL);
    CHECK_ERR(ipc_mq_notify_signal(-1, SIGUSR1, 0), -EBADF);
    CHECK_ERR(ipc_mq_notify_cancel(-1), -EBADF);
    CHECK_OK(ipc_mq_notify_signal(mq, SIGUSR1, 4242));
    CHECK_ERR(ipc_mq_notify_signal(mq, SIGUSR1, 1), -EBUSY); /* already registered */
    th_join_ok(th_spawn_ok(notify_busy_sender, name), JOIN_MS);

    memset(&si, 0, sizeof si);
    CHECK(wait_usr1(2000, &si));
    CHECK_EQ(si.si_signo, SIGUSR1);
    CHECK_EQ(si.si_value.sival_int, 4242);
#ifdef SI_MESGQ
    CHECK_EQ(si.si_code, SI_MESGQ);
#endif
    recv_str(mq, "ping", 4);

    /* one-shot: the next message into the empty queue raises nothing */
    send_str(mq, "again", 0);
    CHECK(!wait_usr1(100, &si));
    recv_str(mq, "again", 0);

    /* register, cancel: nothing either; then another registration is allowed */
    CHECK_OK(ipc_mq_notify_signal(mq, SIGUSR1, 7));
    CHECK_OK(ipc_mq_notify_cancel(mq));
    send_str(mq, "quiet", 0);
    CHECK(!wait_usr1(100, &si));
    recv_str(mq, "quiet", 0);
    CHECK_OK(ipc_mq_notify_signal(mq, SIGUSR1, 8));
    send_str(mq, "loud", 0);
    CHECK(wait_usr1(2000, &si));
    CHECK_EQ(si.si_value.sival_int, 8);
    recv_str(mq, "loud", 0);

    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(name));
}

static uint32_t g_notified;
static char g_notify_tag;

/* On the C library's notification thread: say whether the argument came through. */
static void on_message(union sigval v) {
    th_word_set(&g_notified, v.sival_ptr == &g_notify_tag ? 1u : 2u);
}

static void notify_sender(void *arg) {
    int q = ipc_mq_open((const char *)arg, IPC_MQ_WRITE);
    CHECK_OK(q);
    CHECK_ERR(ipc_mq_notify_signal(q, SIGUSR2, 1), -EBUSY);
    send_str(q, "thread", 2);
    CHECK_OK(ipc_mq_close(q));
}

GTEST(mq_notify_thread, 10000) {
    char *name = mq_name("nthr");
    ipc_mq_opts o = small_opts(4, 16);
    int mq;

    CHECK_OK(mq = ipc_mq_create(name, &o));
    CHECK_ERR(ipc_mq_notify_thread(mq, NULL, NULL), -EINVAL);
    notify_or_skip(ipc_mq_notify_thread(mq, on_message, &g_notify_tag));
    th_join_ok(th_spawn_ok(notify_sender, name), JOIN_MS);
    th_word_wait(&g_notified, 1, 2000);
    CHECK_EQ(g_notified, 1);
    recv_str(mq, "thread", 2);

    /* cancelled: a message comes and goes unannounced */
    __atomic_store_n(&g_notified, 0, __ATOMIC_RELEASE);
    CHECK_OK(ipc_mq_notify_thread(mq, on_message, &g_notify_tag));
    CHECK_OK(ipc_mq_notify_cancel(mq));
    send_str(mq, "quiet", 0);
    th_sleep_ms(100);
    CHECK_EQ(__atomic_load_n(&g_notified, __ATOMIC_ACQUIRE), 0);
    recv_str(mq, "quiet", 0);

    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(name));
}

static void poll_sender(void *arg) {
    int w = ipc_mq_open((const char *)arg, IPC_MQ_WRITE);
    CHECK_OK(w);
    th_sleep_ms(30);
    send_str(w, "polled", 1);
    CHECK_OK(ipc_mq_close(w));
}

GTEST(mq_fd_pollable, 10000) {
    char *name = mq_name("poll");
    ipc_mq_opts o = small_opts(2, 16);
    pid_t pid;
    int mq, r;

    CHECK_OK(mq = ipc_mq_create(name, &o));
    CHECK_ERR(ipc_fd_wait(mq, POLLIN, 0), -EAGAIN);
    CHECK_TIMED(ipc_fd_wait(mq, POLLIN, 30 * MS), -ETIMEDOUT, 30);
    r = ipc_fd_wait(mq, POLLOUT, 0);
    CHECK(r > 0 && (r & POLLOUT));

    pid = th_spawn_ok(poll_sender, name);
    r = ipc_fd_wait(mq, POLLIN, 2 * SEC);
    CHECK(r > 0 && (r & POLLIN));
    th_join_ok(pid, JOIN_MS);
    recv_str(mq, "polled", 1);
    CHECK_ERR(ipc_fd_wait(mq, POLLIN, 0), -EAGAIN);

    /* full: no POLLOUT */
    send_str(mq, "a", 0);
    send_str(mq, "b", 0);
    CHECK_ERR(ipc_fd_wait(mq, POLLOUT, 0), -EAGAIN);
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(name));
}

GTEST(mq_bad_arguments, 10000) {
    char *name = mq_name("args");
    ipc_mq_opts o = small_opts(2, 16);
    ipc_mq_attr a;
    char buf[16];
    int mq, p[2], fds;

    CHECK_OK(mq = ipc_mq_create(name, &o));
    CHECK_EQ(pipe(p), 0);
    fds = th_fd_count();
    CHECK_ERR(ipc_mq_getattr(mq, NULL), -EINVAL);
    CHECK_ERR(ipc_mq_getattr(-1, &a), -EBADF);
    CHECK_ERR(ipc_mq_send(-1, "x", 1, 0, 0), -EBADF);
    CHECK_ERR(ipc_mq_recv(-1, buf, sizeof buf, NULL, 0), -EBADF);
    CHECK_ERR(ipc_mq_send(p[1], "x", 1, 0, 0), -EBADF); /* not a queue */
    CHECK_ERR(ipc_mq_recv(p[0], buf, sizeof buf, NULL, 0), -EBADF);
    CHECK_ERR(ipc_mq_send(mq, NULL, 5, 0, 0), -EINVAL);
    CHECK_ERR(ipc_mq_recv(mq, NULL, 16, NULL, 0), -EINVAL);
    CHECK_ERR(ipc_mq_close(-1), -EBADF);
    CHECK_EQ(th_fd_count(), fds);
    close(p[0]);
    close(p[1]);
    CHECK_OK(ipc_mq_close(mq));
    CHECK_OK(ipc_mq_unlink(name));

    /* bad options create nothing */
    o = small_opts(-1, 16);
    CHECK_ERR(ipc_mq_create(name, &o), -EINVAL);
    o = small_opts(2, -1);
    CHECK_ERR(ipc_mq_create(name, &o), -EINVAL);
    o = small_opts(2, 16);
    o.flags = 8;
    CHECK_ERR(ipc_mq_create(name, &o), -EINVAL);
    CHECK_ERR(ipc_mq_unlink(name), -ENOENT);
}

/* ======================== System V message queues ======================== */

typedef struct smsg {
    long type;
    char text[8200];
} smsg;

static void msgq_send_str(int id, long type, const char *s, int64_t timeout) {
    smsg m;
    m.type = type;
    memcpy(m.text, s, strlen(s));
    CHECK_OK(ipc_msgq_send(id, &m, strlen(s), timeout));
}

/* Receive with the selector (type, flags) at once; compare the type and the text. */
static void msgq_recv_str(int id, long sel, unsigned flags, long want_type, const char *want) {
    smsg m;
    ssize_t n;
    m.type = -12345;
    n = ipc_msgq_recv(id, &m, 64, sel, flags, 0);
    if (n < 0)
        th_fail(__FILE__, __LINE__, "recv(type %ld) of \"%s\": %s", sel, want,
                ipc_strerror((int)n));
    if ((size_t)n != strlen(want) || memcmp(m.text, want, (size_t)n) != 0 || m.type != want_type)
        th_fail(__FILE__, __LINE__, "recv(type %ld): got %ld \"%.*s\", want %ld \"%s\"", sel,
                m.type, (int)n, m.text, want_type, want);
}

static void check_stat(int id, size_t msgs, size_t bytes) {
    ipc_msgq_info in;
    CHECK_OK(ipc_msgq_stat(id, &in));
    CHECK_EQ(in.msgs, msgs);
    CHECK_EQ(in.bytes, bytes);
}

static void private_sender(void *arg) {
    msgq_send_str(*(const int *)arg, 4, "child", 0);
}

GTEST(msgq_private_create_stat, 10000) {
    long mnb = sysctl_long("/proc/sys/kernel/msgmnb", -1);
    ipc_msgq_info in;
    pid_t pid;
    int id, id2, r;

    umask(077); /* System V modes ignore it */
    CHECK_OK(id = msgq_new(IPC_PRIVATE, 0));
    CHECK_OK(id2 = msgq_new(0, 0666));
    CHECK(id != id2);
    memset(&in, 0x55, sizeof in);
    CHECK_OK(ipc_msgq_stat(id, &in));
    CHECK_EQ(in.msgs, 0);
    CHECK_EQ(in.bytes, 0);
    if (mnb > 0) CHECK_EQ(in.max_bytes, mnb);
    CHECK_EQ(in.mode, 0600);
    CHECK_EQ(in.uid, geteuid());
    CHECK_EQ(in.last_send_pid, 0);
    CHECK_EQ(in.last_recv_pid, 0);
    CHECK_OK(ipc_msgq_stat(id2, &in));
    CHECK_EQ(in.mode, 0666);
    CHECK_ERR(ipc_msgq_create(IPC_PRIVATE, 01600), -EINVAL);
    CHECK_ERR(ipc_msgq_stat(id, NULL), -EINVAL);

    /* removed: gone for every call */
    msgq_remove(id2);
    r = ipc_msgq_stat(id2, &in);
    CHECK(r == -EINVAL || r == -EIDRM);
    r = ipc_msgq_remove(id2);
    CHECK(r == -EINVAL || r == -EIDRM);

    /* a child knows the id and sends; stat shows it */
    pid = th_spawn_ok(private_sender, &id);
    th_join_ok(pid, JOIN_MS);
    CHECK_OK(ipc_msgq_stat(id, &in));
    CHECK_EQ(in.msgs, 1);
    CHECK_EQ(in.bytes, 5);
    CHECK_EQ(in.last_send_pid, pid);
    CHECK_EQ(in.last_recv_pid, 0);
    msgq_recv_str(id, 0, 0, 4, "child");
    CHECK_OK(ipc_msgq_stat(id, &in));
    CHECK_EQ(in.msgs, 0);
    CHECK_EQ(in.bytes, 0);
    CHECK_EQ(in.last_recv_pid, getpid());
    msgq_remove(id);
}

struct key_arg {
    int key, id;
};

static void key_sender(void *arg) {
    const struct key_arg *a = (const struct key_arg *)arg;
    CHECK_EQ(ipc_msgq_open(a->key), a->id);
    msgq_send_str(ipc_msgq_open(a->key), 9, "by key", 0);
}

GTEST(msgq_key_exclusive_open, 10000) {
    char path[128];
    struct key_arg a;
    ipc_msgq_info in;
    int other;

    key_file(path, sizeof path);
    CHECK_OK(ipc_shm_key(path, 'q', &a.key));
    CHECK(a.key != IPC_PRIVATE);
    CHECK_ERR(ipc_msgq_open(a.key), -ENOENT);
    CHECK_OK(a.id = msgq_new(a.key, 0));
    CHECK_OK(ipc_msgq_stat(a.id, &in));
    CHECK_EQ(in.mode, 0600);
    CHECK_ERR(ipc_msgq_create(a.key, 0), -EEXIST);
    CHECK_ERR(ipc_msgq_create(a.key, 0666), -EEXIST);
    CHECK_EQ(ipc_msgq_open(a.key), a.id);

    /* another key from the same file is another queue */
    CHECK_OK(ipc_shm_key(path, 'r', &other));
    CHECK(other != a.key);
    CHECK_ERR(ipc_msgq_open(other), -ENOENT);

    th_join_ok(th_spawn_ok(key_sender, &a), JOIN_MS);
    check_stat(a.id, 1, 6);
    msgq_recv_str(a.id, 0, 0, 9, "by key");
    msgq_remove(a.id);
    CHECK_ERR(ipc_msgq_open(a.key), -ENOENT);
    CHECK(ipc_msgq_open(IPC_PRIVATE) < 0); /* never makes a queue */
}

static const struct {
    long type;
    const char *text;
} typed_msgs[] = {{3, "c1"}, {1, "a1"}, {2, "b1"}, {1, "a2"}, {5, "e1"}, {3, "c2"}, {2, "b2"}};

static void typed_sender(void *arg) {
    int id = *(const int *)arg;
    smsg m;
    size_t i;
    for (i = 0; i < sizeof typed_msgs / sizeof typed_msgs[0]; i++)
        msgq_send_str(id, typed_msgs[i].type, typed_msgs[i].text, IPC_FOREVER);
    /* types must be positive */
    memcpy(m.text, "bad", 3);
    m.type = 0;
    CHECK_ERR(ipc_msgq_send(id, &m, 3, 0), -EINVAL);
    m.type = -3;
    CHECK_ERR(ipc_msgq_send(id, &m, 3, IPC_FOREVER), -EINVAL);
    CHECK_ERR(ipc_msgq_send(id, NULL, 3, 0), -EINVAL);
}

GTEST(msgq_types_across_fork, 10000) {
    smsg m;
    int id;

    CHECK_OK(id = msgq_new(IPC_PRIVATE, 0));
    th_join_ok(th_spawn_ok(typed_sender, &id), JOIN_MS);
    check_stat(id, 7, 14);
    /* queue: 3c1 1a1 2b1 1a2 5e1 3c2 2b2 */
    msgq_recv_str(id, 0, 0, 3, "c1");                        /* the first */
    msgq_recv_str(id, 2, 0, 2, "b1");                        /* the first of type 2 */
    msgq_recv_str(id, -4, 0, 1, "a1");                       /* the lowest type <= 4 */
    msgq_recv_str(id, 1, IPC_MSGQ_EXCEPT, 5, "e1");          /* the first not of type 1 */
    msgq_recv_str(id, -1, 0, 1, "a2");                       /* type 1 */
    CHECK_ERR(ipc_msgq_recv(id, &m, 64, 7, 0, 0), -EAGAIN);  /* no type 7 */
    CHECK_ERR(ipc_msgq_recv(id, &m, 64, -1, 0, 0), -EAGAIN); /* no type <= 1 left */
    CHECK_TIMED(ipc_msgq_recv(id, &m, 64, 4, 0, 30 * MS), -ETIMEDOUT, 30);
    msgq_recv_str(id, 3, IPC_MSGQ_EXCEPT, 2, "b2"); /* skips 3c2 */
    msgq_recv_str(id, -100, 0, 3, "c2");
    check_stat(id, 0, 0);
    CHECK_ERR(ipc_msgq_recv(id, &m, 64, 0, 0, 0), -EAGAIN);
    msgq_remove(id);
}

GTEST(msgq_message_size, 10000) {
    long msgmax = sysctl_long("/proc/sys/kernel/msgmax", -1);
    static smsg m, r;
    ipc_msgq_info in;
    int id, i;

    CHECK_OK(id = msgq_new(IPC_PRIVATE, 0));
    m.type = 2;
    for (i = 0; i < 100; i++)
        m.text[i] = (char)('a' + i % 26);
    CHECK_OK(ipc_msgq_send(id, &m, 100, 0));

    /* too small a buffer: refused, whatever the timeout, and the message stays */
    CHECK_ERR(ipc_msgq_recv(id, &r, 10, 0, 0, 0), -EMSGSIZE);
    CHECK_ERR(ipc_msgq_recv(id, &r, 99, 2, 0, IPC_FOREVER), -EMSGSIZE);
    check_stat(id, 1, 100);
    /* IPC_MSGQ_TRUNCATE takes it, cut */
    r.type = 0;
    memset(r.text, 0, 20);
    CHECK_EQ(ipc_msgq_recv(id, &r, 10, 0, IPC_MSGQ_TRUNCATE, 0), 10);
    CHECK_EQ(r.type, 2);
    CHECK(memcmp(r.text, m.text, 10) == 0 && r.text[10] == 0);
    check_stat(id, 0, 0);

    /* exactly fitting */
    CHECK_OK(ipc_msgq_send(id, &m, 100, 0));
    CHECK_EQ(ipc_msgq_recv(id, &r, 100, 0, 0, 0), 100);
    CHECK(memcmp(r.text, m.text, 100) == 0);

    /* msgmax is the largest message */
    if (msgmax > 0 && msgmax < (long)sizeof m.text) {
        CHECK_ERR(ipc_msgq_send(id, &m, (size_t)msgmax + 1, 0), -EMSGSIZE);
        CHECK_OK(ipc_msgq_stat(id, &in));
        CHECK_EQ(in.msgs, 0);
        if ((size_t)msgmax <= in.max_bytes) {
            CHECK_OK(ipc_msgq_send(id, &m, (size_t)msgmax, 0));
            CHECK_EQ(ipc_msgq_recv(id, &r, (size_t)msgmax, 0, 0, 0), msgmax);
        }
    }
    CHECK_ERR(ipc_msgq_recv(id, &r, 64, 0, 4, 0), -EINVAL); /* unknown flag */
    msgq_remove(id);
}

/* Fill a queue with type-1 messages up to max_bytes; return how many were sent. */
static int msgq_fill(int id) {
    static smsg m;
    ipc_msgq_info in;
    size_t sent = 0;
    int n = 0;
    CHECK_OK(ipc_msgq_stat(id, &in));
    m.type = 1;
    while (sent < in.max_bytes) {
        size_t len = in.max_bytes - sent < 4096 ? in.max_bytes - sent : 4096;
        CHECK_OK(ipc_msgq_send(id, &m, len, 0));
        sent += len;
        n++;
    }
    check_stat(id, (size_t)n, in.max_bytes);
    return n;
}

GTEST(msgq_deadlines, 10000) {
    ipc_msgq_info in;
    smsg m;
    int id, n;

    CHECK_OK(id = msgq_new(IPC_PRIVATE, 0));
    CHECK_TIMED(ipc_msgq_recv(id, &m, 64, 0, 0, 0), -EAGAIN, 0);
    CHECK_TIMED(ipc_msgq_recv(id, &m, 64, 0, 0, 50 * MS), -ETIMEDOUT, 50);
    CHECK_ERR(ipc_msgq_recv(id, &m, 64, 0, 0, -2), -EINVAL);

    n = msgq_fill(id);
    m.type = 2;
    m.text[0] = 'z';
    CHECK_TIMED(ipc_msgq_send(id, &m, 1, 0), -EAGAIN, 0);
    CHECK_TIMED(ipc_msgq_send(id, &m, 1, 50 * MS), -ETIMEDOUT, 50);
    CHECK_ERR(ipc_msgq_send(id, &m, 1, -2), -EINVAL);
    /* nothing was added by the refused sends */
    CHECK_OK(ipc_msgq_stat(id, &in));
    CHECK_EQ(in.msgs, n);
    CHECK_EQ(in.bytes, in.max_bytes);
    msgq_remove(id);
}

struct waiter {
    int id;
    int send;        /* 1: send to the full queue; 0: receive a type nobody sends */
    int64_t timeout; /* IPC_FOREVER or finite */
};

struct removal {
    uint32_t ready[4];
    int result[4];
    int64_t done_at[4];
};

static struct removal *g_removal;
static int g_slot;

static void removal_waiter(void *arg) {
    const struct waiter *w = (const struct waiter *)arg;
    smsg m;
    int r;
    th_word_set(&g_removal->ready[g_slot], 1);
    if (w->send) {
        m.type = 1;
        m.text[0] = 'w';
        r = ipc_msgq_send(w->id, &m, 1, w->timeout);
    } else {
        r = (int)ipc_msgq_recv(w->id, &m, 64, 777, 0, w->timeout);
    }
    g_removal->result[g_slot] = r;
    g_removal->done_at[g_slot] = ipc_time_now();
}

GTEST(msgq_removal_wakes_waiters, 10000) {
    struct waiter w[4];
    pid_t pid[4];
    int64_t t0;
    int id, i;

    g_removal = (struct removal *)th_shared_map(sizeof *g_removal);
    CHECK_OK(id = msgq_new(IPC_PRIVATE, 0));
    msgq_fill(id);
    for (i = 0; i < 4; i++) {
        w[i].id = id;
        w[i].send = i >= 2;
        w[i].timeout = i % 2 ? 5 * SEC : IPC_FOREVER;
        g_slot = i;
        pid[i] = th_spawn_ok(removal_waiter, &w[i]);
    }
    for (i = 0; i < 4; i++)
        th_word_wait(&g_removal->ready[i], 1, 2000);
    th_sleep_ms(100); /* let them all reach their wait */
    t0 = ipc_time_now();
    msgq_remove(id);
    for (i = 0; i < 4; i++)
        th_join_ok(pid[i], JOIN_MS);
    for (i = 0; i < 4; i++) {
        int64_t late = g_removal->done_at[i] - t0;
        if (g_removal->result[i] != -EIDRM)
            th_fail(__FILE__, __LINE__, "waiter %d (%s, %s): %s", i, w[i].send ? "send" : "recv",
                    w[i].timeout < 0 ? "forever" : "5 s", ipc_strerror(g_removal->result[i]));
        if (late >= 500 * MS)
            th_fail(__FILE__, __LINE__, "waiter %d woke %.1f ms after the removal", i,
                    (double)late / 1e6);
    }
}

#define MSGQ_STORM_LEN 1000

struct seqmsg {
    long type;
    uint32_t seq;
    char pad[MSGQ_STORM_LEN - sizeof(uint32_t)];
};

static void msgq_storm_sender(void *arg) {
    int id = *(const int *)arg;
    struct seqmsg m;
    uint32_t i;
    memset(&m, 0, sizeof m);
    th_storm_start();
    for (i = 0; i < STORM_MSGS; i++) {
        m.type = 1 + i % 3;
        m.seq = i;
        m.pad[sizeof m.pad - 1] = (char)i;
        CHECK_OK(ipc_msgq_send(id, &m, MSGQ_STORM_LEN, i % 2 ? IPC_FOREVER : 10 * SEC));
    }
    CHECK(th_storm_stop() > 0);
}

GTEST(msgq_signal_storm, 30000) {
    struct seqmsg m;
    pid_t pid;
    uint32_t i;
    int id;

    CHECK_OK(id = msgq_new(IPC_PRIVATE, 0));
    pid = th_spawn_ok(msgq_storm_sender, &id);
    th_storm_start();
    for (i = 0; i < STORM_MSGS; i++) {
        memset(&m, 0xff, sizeof m);
        CHECK_EQ(ipc_msgq_recv(id, &m, MSGQ_STORM_LEN, 0, 0, i % 3 ? IPC_FOREVER : 10 * SEC),
                 MSGQ_STORM_LEN);
        if (m.seq != i || m.type != (long)(1 + i % 3) || m.pad[sizeof m.pad - 1] != (char)i)
            th_fail(__FILE__, __LINE__, "message %u: got seq %u type %ld", i, m.seq, m.type);
    }
    CHECK(th_storm_stop() > 0);
    th_join_ok(pid, JOIN_MS);
    check_stat(id, 0, 0);
    msgq_remove(id);
}

static const char py_peer[] = "import sys, sysv_ipc\n"
                              "q = sysv_ipc.MessageQueue(int(sys.argv[1]))\n"
                              "q.send(b'hello from python', type=7)\n"
                              "m, t = q.receive(type=9)\n"
                              "sys.exit(0 if (m, t) == (b'hello from C', 9) else 3)\n";

GTEST(msgq_python_interop, 15000) {
    const char *py = th_python_with("sysv_ipc");
    char path[128], keystr[32];
    smsg m;
    pid_t pid;
    int key, id, st;

    if (!py) th_skip("no python3 with the sysv_ipc module (Debian: python3-sysv-ipc)");
    key_file(path, sizeof path);
    CHECK_OK(ipc_shm_key(path, 'p', &key));
    CHECK_OK(id = msgq_new(key, 0600));
    snprintf(keystr, sizeof keystr, "%d", key);
    fflush(NULL);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        execlp(py, py, "-c", py_peer, keystr, (char *)NULL);
        _exit(127);
    }
    m.type = 0;
    CHECK_EQ(ipc_msgq_recv(id, &m, sizeof m.text, 0, 0, 5 * SEC), 17);
    CHECK_EQ(m.type, 7);
    CHECK(memcmp(m.text, "hello from python", 17) == 0);
    msgq_send_str(id, 9, "hello from C", 0);
    st = th_join(pid, JOIN_MS);
    CHECK_EQ(st, 0);
    check_stat(id, 0, 0);
    msgq_remove(id);
}

GTEST(msgq_bad_arguments, 10000) {
    smsg m;
    int id, r;

    m.type = 1;
    m.text[0] = 'b';
    CHECK_OK(id = msgq_new(IPC_PRIVATE, 0));
    CHECK_ERR(ipc_msgq_recv(id, NULL, 64, 0, 0, 0), -EINVAL);
    CHECK_ERR(ipc_msgq_recv(id, &m, 64, 0, 4, 0), -EINVAL);
    CHECK_ERR(ipc_msgq_recv(id, &m, 64, 0, 0, -5), -EINVAL);
    CHECK_ERR(ipc_msgq_send(id, NULL, 1, 0), -EINVAL);
    CHECK_ERR(ipc_msgq_send(id, &m, 1, -5), -EINVAL);
    CHECK_ERR(ipc_msgq_send(-1, &m, 1, 0), -EINVAL);
    CHECK_ERR(ipc_msgq_recv(-1, &m, 64, 0, 0, 0), -EINVAL);
    CHECK_ERR(ipc_msgq_stat(-1, &(ipc_msgq_info){0}), -EINVAL);
    CHECK_ERR(ipc_msgq_remove(-1), -EINVAL);
    check_stat(id, 0, 0);
    msgq_remove(id);
    /* a removed id: refused at once, even with IPC_FOREVER */
    r = ipc_msgq_send(id, &m, 1, IPC_FOREVER);
    CHECK(r == -EIDRM || r == -EINVAL);
    r = (int)ipc_msgq_recv(id, &m, 64, 0, 0, IPC_FOREVER);
    CHECK(r == -EIDRM || r == -EINVAL);
    r = (int)ipc_msgq_recv(id, &m, 64, 0, 0, 20 * MS);
    CHECK(r == -EIDRM || r == -EINVAL);
}
