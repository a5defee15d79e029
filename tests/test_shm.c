#include "harness.h"

/* tests/test_shm.c - section 4, shared memory: POSIX names, memfd, System V, files.

   Multi-process tests fork real children: the parent writes a pattern (seed 1), the
   child maps the object on its own, checks it and answers with seed 2, and the parent
   sees the answer after th_join. Tests that make things the runner does not sweep
   (System V segments, files under /tmp) run their body in a child through guarded(),
   so the parent removes them even when a CHECK exits early. */

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* Linux ABI values that libc declares only under _GNU_SOURCE. */
#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef F_SEAL_SHRINK
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW   0x0004
#endif
#ifndef SHM_DEST
#define SHM_DEST 01000
#endif

#define JOIN_MS 5000
#define SEC     ((int64_t)1000000000)
#define MiB     (1024ull * 1024)

/* ---- helpers ---- */

static unsigned char pattern(size_t i, unsigned seed) {
    return (unsigned char)(seed * 37u + i * 131u + i / 4096u);
}

static void fill(void *p, size_t n, unsigned seed) {
    unsigned char *b = (unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++)
        b[i] = pattern(i, seed);
}

static int filled(const void *p, size_t n, unsigned seed) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++)
        if (b[i] != pattern(i, seed)) return 0;
    return 1;
}

/* Where the kernel keeps the POSIX object "/name". */
static char *shm_file(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "/dev/shm%s", name);
    return buf;
}

static char *make_tmpdir(char *buf, size_t size) {
    snprintf(buf, size, "/tmp/ipct-shm-XXXXXX");
    CHECK(mkdtemp(buf) != NULL);
    return buf;
}

/* Remove a make_tmpdir() directory and the files the tests put there. */
static void rm_tmpdir(const char *dir) {
    static const char *const files[] = {"target", "key", "data", "data2"};
    char path[PATH_MAX];
    size_t i;
    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* A handle that a failed call left closed. */
static int is_closed(const ipc_shm *s) {
    return s->addr == NULL && s->size == 0 && s->fd == -1 && s->id == -1;
}

typedef struct usage {
    int fds, maps;
} usage;

/* Called twice so that whatever libc allocates on first use is not counted. */
static usage usage_now(void) {
    usage u;
    th_fd_count();
    th_map_count();
    u.fds = th_fd_count();
    u.maps = th_map_count();
    return u;
}

#define CHECK_USAGE(u)                                                                             \
    do {                                                                                           \
        CHECK_EQ(th_fd_count(), (u).fds);                                                          \
        CHECK_EQ(th_map_count(), (u).maps);                                                        \
    } while (0)

/* expr must fail with err, and leave no fd and no mapping behind: one warm-up call,
   then three more against the counts (a leak per call shows as a difference). */
#define CHECK_NO_LEAK(expr, err)                                                                   \
    do {                                                                                           \
        usage u_;                                                                                  \
        int i_;                                                                                    \
        CHECK_ERR(expr, err);                                                                      \
        u_ = usage_now();                                                                          \
        for (i_ = 0; i_ < 3; i_++)                                                                 \
            CHECK_ERR(expr, err);                                                                  \
        CHECK_USAGE(u_);                                                                           \
    } while (0)

/* Resident kB of the mapping that starts at addr, from /proc/self/smaps. Skips the
   test where smaps does not list it (user-mode emulators such as qemu-i386). */
static long rss_kb(const void *addr) {
    char line[512];
    unsigned long start = 0, want = (unsigned long)(uintptr_t)addr;
    long kb = -1;
    int found = 0;
    FILE *f = fopen("/proc/self/smaps", "r");
    CHECK(f != NULL);
    while (fgets(line, sizeof line, f)) {
        if (!found)
            found = sscanf(line, "%lx-", &start) == 1 && start == want;
        else if (sscanf(line, "Rss: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    if (kb < 0) th_skip("/proc/self/smaps does not describe this mapping (an emulator?)");
    return kb;
}

static pid_t spawn(void (*fn)(void *), void *arg) {
    pid_t pid = th_spawn(fn, arg);
    CHECK(pid > 0);
    return pid;
}

static int spawn_join(void (*fn)(void *), void *arg) {
    return th_join(spawn(fn, arg), JOIN_MS);
}

/* System V ids the body of guarded() created, in memory shared with its parent. */
#define SYSV_MAX 8
static int *sysv_ids;

static void sysv_track(int id) {
    int i;
    for (i = 0; i < SYSV_MAX; i++) {
        if (sysv_ids[i] < 0) {
            sysv_ids[i] = id;
            return;
        }
    }
    th_fail(__FILE__, __LINE__, "more than %d System V segments", SYSV_MAX);
}

/* ipc_shm_sysv_create that records the new segment for guarded() to remove. */
static int sysv_create(ipc_shm *s, key_t key, size_t size, const ipc_shm_opts *o) {
    int r = ipc_shm_sysv_create(s, key, size, o);
    if (r == 0) sysv_track(s->id);
    return r;
}

/* True once a System V segment no longer exists. */
static int sysv_gone(int id) {
    struct shmid_ds ds;
    ipc_shm s;
    if (shmctl(id, IPC_STAT, &ds) == 0 || (errno != EINVAL && errno != EIDRM)) return 0;
    return ipc_shm_sysv_attach(&s, id, NULL) < 0;
}

/* Run fn(arg) in a child and return its exit code. Every segment it created is removed
   here whatever happened to it (one it removed itself just refuses a second IPC_RMID);
   the caller removes its files the same way. */
static int guarded(void (*fn)(void *), void *arg) {
    int i, code;
    sysv_ids = (int *)mmap(NULL, SYSV_MAX * sizeof *sysv_ids, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sysv_ids != MAP_FAILED);
    for (i = 0; i < SYSV_MAX; i++)
        sysv_ids[i] = -1;
    code = th_join(spawn(fn, arg), 8000);
    for (i = 0; i < SYSV_MAX; i++)
        if (sysv_ids[i] >= 0) shmctl(sysv_ids[i], IPC_RMID, NULL);
    munmap(sysv_ids, SYSV_MAX * sizeof *sysv_ids);
    sysv_ids = NULL;
    return code;
}

/* guarded()'s exit code must be 0; a skip in the body skips the test. */
#define CHECK_BODY(code)                                                                           \
    do {                                                                                           \
        int code_ = (code);                                                                        \
        if (code_ == 77) th_skip("the test body skipped");                                         \
        if (code_ != 0) th_fail(__FILE__, __LINE__, "the test body failed: %d", code_);            \
    } while (0)

/* How a child finds the memory its parent made, and what it should find there. */
enum how { BY_NAME, BY_PATH, BY_KEY, BY_ID, BY_FD };

struct peer {
    enum how how;
    const char *name; /* POSIX name (BY_NAME) or file path (BY_PATH) */
    key_t key;
    int id, fd;
    size_t size;
    unsigned kind, flags;
};

static int peer_open(ipc_shm *c, const struct peer *p) {
    ipc_shm_opts o = {0, p->flags};
    switch (p->how) {
    case BY_NAME: return ipc_shm_open(c, p->name, &o);
    case BY_PATH: return ipc_shm_file_open(c, p->name, &o);
    case BY_KEY: return ipc_shm_sysv_open(c, p->key, &o);
    case BY_ID: return ipc_shm_sysv_attach(c, p->id, &o);
    case BY_FD: return ipc_shm_attach_fd(c, p->fd, &o);
    }
    return -EINVAL;
}

/* Child: map the parent's memory on its own, check seed 1, answer with seed 2. */
static void peer_reply(void *arg) {
    const struct peer *p = (const struct peer *)arg;
    ipc_shm c;
    CHECK_OK(peer_open(&c, p));
    CHECK_EQ(c.kind, p->kind);
    CHECK_EQ(c.size, p->size);
    if (c.kind == IPC_SHM_KIND_SYSV)
        CHECK(c.id == p->id && c.fd == -1); /* a key leads to the parent's very segment */
    else
        CHECK(c.id == -1 && c.fd >= 0);
    CHECK(filled(c.addr, c.size, 1));
    fill(c.addr, c.size, 2);
    CHECK_OK(ipc_shm_close(&c));
}

/* ---- POSIX named objects ---- */

TEST(shm_posix_shared_between_processes) {
    char name[64];
    struct stat st;
    ipc_shm s, o;
    struct peer p = {.how = BY_NAME, .name = name, .size = 12345, .kind = IPC_SHM_KIND_POSIX};

    th_name(name, sizeof name, "posix");
    CHECK_OK(ipc_shm_create(&s, name, 12345, NULL));
    CHECK_EQ(s.kind, IPC_SHM_KIND_POSIX);
    CHECK_EQ(s.size, 12345);
    CHECK(s.addr != NULL && s.fd >= 0 && s.id == -1 && s.flags == 0);
    /* creation reserves the whole size: no SIGBUS later on a full /dev/shm */
    CHECK_EQ(fstat(s.fd, &st), 0);
    CHECK_EQ(st.st_size, 12345);
    CHECK((unsigned long long)st.st_blocks * 512 >= 12345);

    fill(s.addr, s.size, 1);
    CHECK_EQ(spawn_join(peer_reply, &p), 0);
    CHECK(filled(s.addr, s.size, 2));

    CHECK_OK(ipc_shm_unlink(name));
    CHECK_ERR(ipc_shm_open(&o, name, NULL), -ENOENT);
    CHECK(is_closed(&o));
    CHECK_ERR(ipc_shm_unlink(name), -ENOENT);
    /* the mapping outlives the name */
    fill(s.addr, s.size, 3);
    CHECK(filled(s.addr, s.size, 3));
    CHECK_OK(ipc_shm_close(&s));
}

TEST(shm_posix_exclusive_create) {
    char name[64];
    struct stat st;
    ipc_shm s, t, o;

    th_name(name, sizeof name, "excl");
    CHECK_OK(ipc_shm_create(&s, name, 8192, NULL));
    fill(s.addr, s.size, 1);
    CHECK_ERR(ipc_shm_create(&t, name, 4096, NULL), -EEXIST);
    CHECK(is_closed(&t));
    CHECK_ERR(ipc_shm_create(&t, name + 1, 8192, NULL), -EEXIST); /* same name, no slash */
    CHECK_ERR(ipc_shm_create(&t, name, 8192, &(ipc_shm_opts){0, IPC_SHM_PREFAULT}), -EEXIST);

    /* the first object is intact, and its name still leads to it */
    CHECK_EQ(fstat(s.fd, &st), 0);
    CHECK_EQ(st.st_size, 8192);
    CHECK(filled(s.addr, s.size, 1));
    CHECK_OK(ipc_shm_open(&o, name, NULL));
    CHECK_EQ(o.size, 8192);
    CHECK(filled(o.addr, o.size, 1));
    fill(o.addr, o.size, 2);
    CHECK(filled(s.addr, s.size, 2));
    CHECK_OK(ipc_shm_close(&o));
    CHECK_OK(ipc_shm_close(&s));
    CHECK_OK(ipc_shm_unlink(name));
}

static unsigned mode_of_fd(int fd) {
    struct stat st;
    CHECK_EQ(fstat(fd, &st), 0);
    return (unsigned)st.st_mode & 07777u;
}

static unsigned mode_of_path(const char *path) {
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    return (unsigned)st.st_mode & 07777u;
}

TEST(shm_posix_mode) {
    static const unsigned modes[] = {0640, 0604, 0666, 0700};
    char name[64], path[96];
    ipc_shm s;
    size_t i;

    th_name(name, sizeof name, "mode");
    CHECK_OK(ipc_shm_create(&s, name, 4096, NULL));
    CHECK_EQ(mode_of_fd(s.fd), 0600);
    CHECK_EQ(mode_of_path(shm_file(path, sizeof path, name)), 0600);
    CHECK_OK(ipc_shm_close(&s));
    CHECK_OK(ipc_shm_unlink(name));

    /* the mode is applied exactly, whatever the umask */
    umask(077);
    for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        ipc_shm_opts o = {modes[i], 0};
        th_name(name, sizeof name, "mode");
        CHECK_OK(ipc_shm_create(&s, name, 4096, &o));
        CHECK_EQ(mode_of_fd(s.fd), modes[i]);
        CHECK_EQ(mode_of_path(shm_file(path, sizeof path, name)), modes[i]);
        CHECK_OK(ipc_shm_close(&s));
        CHECK_OK(ipc_shm_unlink(name));
    }
    umask(0777); /* the default 0600 is not subject to the umask either */
    th_name(name, sizeof name, "mode");
    CHECK_OK(ipc_shm_create(&s, name, 4096, NULL));
    CHECK_EQ(mode_of_fd(s.fd), 0600);
    CHECK_OK(ipc_shm_close(&s));
    CHECK_OK(ipc_shm_unlink(name));
}

struct planted {
    char dir[64], target[96], name[64], link[96];
};

#define TARGET_TEXT "precious, not to be touched\n"

static void check_target_intact(const char *path) {
    char buf[64] = {0};
    struct stat st;
    int fd;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_size, sizeof TARGET_TEXT - 1);
    CHECK_EQ(st.st_mode & 07777, 0644);
    CHECK_EQ(st.st_nlink, 1);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(read(fd, buf, sizeof buf - 1), sizeof TARGET_TEXT - 1);
    close(fd);
    CHECK(strcmp(buf, TARGET_TEXT) == 0);
}

/* Child: every way in through the planted symlink is refused; the target is untouched. */
static void symlink_body(void *arg) {
    const struct planted *t = (const struct planted *)arg;
    ipc_shm_opts ro = {0, IPC_SHM_RDONLY};
    struct stat st;
    ipc_shm s;

    CHECK_ERR(ipc_shm_create(&s, t->name, 4096, NULL), -EEXIST);
    CHECK(is_closed(&s));
    CHECK_ERR(ipc_shm_open(&s, t->name, NULL), -ELOOP);
    CHECK_ERR(ipc_shm_open(&s, t->name, &ro), -ELOOP);
    /* the same symlink seen as a file path */
    CHECK_ERR(ipc_shm_file_create(&s, t->link, 4096, NULL), -EEXIST);
    CHECK_ERR(ipc_shm_file_open(&s, t->link, NULL), -ELOOP);
    CHECK_ERR(ipc_shm_file_open(&s, t->link, &ro), -ELOOP);

    check_target_intact(t->target);
    CHECK_EQ(lstat(t->link, &st), 0);
    CHECK(S_ISLNK(st.st_mode));
}

TEST(shm_posix_symlink_not_followed) {
    struct planted t;
    int fd, code;

    make_tmpdir(t.dir, sizeof t.dir);
    snprintf(t.target, sizeof t.target, "%s/target", t.dir);
    fd = open(t.target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, TARGET_TEXT, sizeof TARGET_TEXT - 1), sizeof TARGET_TEXT - 1);
    CHECK_EQ(fchmod(fd, 0644), 0);
    close(fd);
    th_name(t.name, sizeof t.name, "symlink");
    shm_file(t.link, sizeof t.link, t.name);
    CHECK_EQ(symlink(t.target, t.link), 0);

    code = guarded(symlink_body, &t);
    unlink(t.link);
    rm_tmpdir(t.dir);
    CHECK_BODY(code);
}

TEST(shm_posix_open_fifo_dir_or_empty) {
    char name[64], path[96];
    ipc_shm_opts ro = {0, IPC_SHM_RDONLY};
    ipc_shm s;
    int64_t t0;
    int fd, r_rw, r_ro;

    /* A FIFO with no writer: a blocking open would hang right here. */
    th_name(name, sizeof name, "fifo");
    CHECK_EQ(mkfifo(shm_file(path, sizeof path, name), 0600), 0);
    t0 = ipc_time_now();
    CHECK_ERR(ipc_shm_open(&s, name, NULL), -ENODEV);
    CHECK_ERR(ipc_shm_open(&s, name, &ro), -ENODEV);
    CHECK_ERR(ipc_shm_file_open(&s, path, &ro), -ENODEV);
    CHECK(ipc_time_now() - t0 < SEC);
    CHECK(is_closed(&s));
    CHECK_ERR(ipc_shm_create(&s, name, 4096, NULL), -EEXIST);
    CHECK_OK(ipc_shm_unlink(name));

    /* A directory: O_RDWR already fails with EISDIR, read-only reaches the type check. */
    th_name(name, sizeof name, "dir");
    CHECK_EQ(mkdir(shm_file(path, sizeof path, name), 0700), 0);
    r_rw = ipc_shm_open(&s, name, NULL);
    r_ro = ipc_shm_open(&s, name, &ro);
    rmdir(path); /* before any CHECK: the runner's sweep does not remove directories */
    CHECK(r_rw == -EISDIR || r_rw == -ENODEV);
    CHECK_ERR(r_ro, -ENODEV);

    /* A regular object of size 0 has nothing to map. */
    th_name(name, sizeof name, "empty");
    fd = open(shm_file(path, sizeof path, name), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK_ERR(ipc_shm_open(&s, name, NULL), -EBADMSG);
    CHECK_ERR(ipc_shm_attach_fd(&s, fd, NULL), -EBADMSG);
    close(fd);
    CHECK_OK(ipc_shm_unlink(name));
}

TEST(shm_posix_names) {
    static const char *const bad[] = {"a/b", "/a/b", "a/", "", "/", "//", "//x", ".", "..", "/.."};
    char base[64], name[300], path[320];
    ipc_shm s, o;
    size_t i;

    /* "/" and 255 bytes is the longest name; the slash is optional */
    th_name(base, sizeof base, "long");
    snprintf(name, sizeof name, "%s", base);
    memset(name + strlen(name), 'x', 256 - strlen(name));
    name[256] = '\0';
    CHECK_OK(ipc_shm_create(&s, name, 4096, NULL));
    CHECK_EQ(access(shm_file(path, sizeof path, name), F_OK), 0);
    fill(s.addr, s.size, 1);
    CHECK_OK(ipc_shm_open(&o, name + 1, NULL));
    CHECK(filled(o.addr, o.size, 1));
    CHECK_OK(ipc_shm_close(&o));
    CHECK_OK(ipc_shm_close(&s));
    CHECK_OK(ipc_shm_unlink(name + 1));
    CHECK_ERR(access(path, F_OK), -1);

    /* 256 bytes is one too many, with or without the slash */
    strcat(name, "x");
    CHECK_ERR(ipc_shm_create(&s, name, 4096, NULL), -ENAMETOOLONG);
    CHECK(is_closed(&s));
    CHECK_ERR(ipc_shm_create(&s, name + 1, 4096, NULL), -ENAMETOOLONG);
    CHECK_ERR(ipc_shm_open(&s, name, NULL), -ENAMETOOLONG);
    CHECK_ERR(ipc_shm_unlink(name), -ENAMETOOLONG);
    CHECK_ERR(ipc_shm_unlink(name + 1), -ENAMETOOLONG);

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_ERR(ipc_shm_create(&s, bad[i], 4096, NULL), -EINVAL);
        CHECK(is_closed(&s));
        CHECK_ERR(ipc_shm_open(&s, bad[i], NULL), -EINVAL);
        CHECK_ERR(ipc_shm_unlink(bad[i]), -EINVAL);
    }

    /* a name created without the slash is the same object as with it */
    th_name(base, sizeof base, "noslash");
    CHECK_OK(ipc_shm_create(&s, base + 1, 4096, NULL));
    CHECK_EQ(access(shm_file(path, sizeof path, base), F_OK), 0);
    CHECK_OK(ipc_shm_open(&o, base, NULL));
    CHECK_OK(ipc_shm_close(&o));
    CHECK_OK(ipc_shm_close(&s));
    CHECK_OK(ipc_shm_unlink(base));
}

TEST(shm_posix_enospc) {
    char name[64], path[96];
    struct statvfs v;
    unsigned long long want;
    ipc_shm s;
    int64_t t0;
    usage u0;
    int r;

    CHECK_EQ(statvfs("/dev/shm", &v), 0);
    if (v.f_blocks == 0) th_skip("/dev/shm has no size limit");
    want = (unsigned long long)v.f_blocks * v.f_frsize + 64 * MiB;
    if (want > (unsigned long long)PTRDIFF_MAX)
        th_skip("a size larger than /dev/shm does not fit in size_t here");

    th_name(name, sizeof name, "enospc");
    u0 = usage_now();
    t0 = ipc_time_now();
    r = ipc_shm_create(&s, name, (size_t)want, NULL);
    CHECK(ipc_time_now() - t0 < 2 * SEC); /* refused up front, not after filling tmpfs */
    if (r == 0) ipc_shm_close(&s);
    if (sizeof(size_t) < 8 && r == -EFBIG) r = -ENOSPC; /* 32-bit offsets may say so */
    CHECK_ERR(r, -ENOSPC);
    CHECK(is_closed(&s));
    /* no name, no fd, no mapping left */
    CHECK_ERR(access(shm_file(path, sizeof path, name), F_OK), -1);
    CHECK_EQ(errno, ENOENT);
    CHECK_USAGE(u0);
    CHECK_ERR(ipc_shm_open(&s, name, NULL), -ENOENT);
}

/* ---- memfd and fds ---- */

/* Child: use the inherited handle, and map the inherited fd a second time. */
static void memfd_child(void *arg) {
    const ipc_shm *s = (const ipc_shm *)arg;
    ipc_shm c;
    CHECK(filled(s->addr, s->size, 1));
    CHECK_OK(ipc_shm_attach_fd(&c, s->fd, NULL));
    CHECK(c.addr != s->addr && c.fd >= 0 && c.fd != s->fd);
    CHECK_EQ(c.kind, IPC_SHM_KIND_MEMFD);
    CHECK_EQ(c.size, s->size);
    CHECK(filled(c.addr, c.size, 1));
    fill(c.addr, c.size, 2);
    CHECK(filled(s->addr, s->size, 2)); /* one memory behind both mappings */
    CHECK_OK(ipc_shm_close(&c));
}

TEST(shm_memfd_shared_with_child) {
    ipc_shm s;
    struct stat st;

    CHECK_OK(ipc_shm_create(&s, NULL, 65536 + 100, NULL));
    CHECK_EQ(s.kind, IPC_SHM_KIND_MEMFD);
    CHECK_EQ(s.size, 65536 + 100);
    CHECK(s.addr != NULL && s.fd >= 0 && s.id == -1);
    CHECK(fcntl(s.fd, F_GETFD) & FD_CLOEXEC);
    CHECK_EQ(fstat(s.fd, &st), 0);
    CHECK_EQ(st.st_size, 65536 + 100);
    CHECK((unsigned long long)st.st_blocks * 512 >= 65536 + 100);

    fill(s.addr, s.size, 1);
    CHECK_EQ(spawn_join(memfd_child, &s), 0);
    CHECK(filled(s.addr, s.size, 2));
    CHECK_OK(ipc_shm_close(&s));
}

TEST(shm_memfd_seal) {
    ipc_shm_opts sealed = {0, IPC_SHM_SEAL};
    struct stat st;
    ipc_shm s, u;

    CHECK_OK(ipc_shm_create(&s, NULL, 8192, &sealed));
    CHECK_EQ(s.kind, IPC_SHM_KIND_MEMFD);
    CHECK(s.flags & IPC_SHM_SEAL);
    CHECK_EQ(fcntl(s.fd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW), F_SEAL_SHRINK | F_SEAL_GROW);
    errno = 0;
    CHECK_EQ(ftruncate(s.fd, 4096), -1);
    CHECK_EQ(errno, EPERM);
    errno = 0;
    CHECK_EQ(ftruncate(s.fd, 16384), -1);
    CHECK_EQ(errno, EPERM);
    CHECK_EQ(fstat(s.fd, &st), 0);
    CHECK_EQ(st.st_size, 8192);
    fill(s.addr, s.size, 1); /* still whole and usable */
    CHECK(filled(s.addr, s.size, 1));
    CHECK_OK(ipc_shm_close(&s));

    /* without the flag the size is free to change */
    CHECK_OK(ipc_shm_create(&u, NULL, 8192, NULL));
    CHECK_EQ(fcntl(u.fd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW), 0);
    CHECK_EQ(ftruncate(u.fd, 16384), 0);
    CHECK_EQ(fstat(u.fd, &st), 0);
    CHECK_EQ(st.st_size, 16384);
    CHECK_EQ(ftruncate(u.fd, 4096), 0);
    CHECK_EQ(fstat(u.fd, &st), 0);
    CHECK_EQ(st.st_size, 4096);
    CHECK_EQ(ftruncate(u.fd, 8192), 0); /* back to the mapped size before closing */
    CHECK_OK(ipc_shm_close(&u));
}

TEST(shm_attach_fd_owns_duplicate) {
    ipc_shm_opts ro = {0, IPC_SHM_RDONLY};
    char name[64], path[96];
    ipc_shm src, a, m;
    usage u0;
    int fd;

    th_name(name, sizeof name, "attach");
    CHECK_OK(ipc_shm_create(&src, name, 3 * 4096 + 10, NULL));
    fill(src.addr, src.size, 1);

    u0 = usage_now();
    fd = open(shm_file(path, sizeof path, name), O_RDWR); /* no O_CLOEXEC on purpose */
    CHECK(fd >= 0);
    CHECK_OK(ipc_shm_attach_fd(&a, fd, NULL));
    CHECK(a.fd >= 0 && a.fd != fd);
    CHECK(fcntl(a.fd, F_GETFD) & FD_CLOEXEC);
    CHECK_EQ(a.size, src.size);
    CHECK_EQ(a.id, -1);
    /* the caller closes its fd; the handle lives on its own duplicate */
    CHECK_EQ(close(fd), 0);
    CHECK(fcntl(a.fd, F_GETFD) >= 0);
    CHECK(filled(a.addr, a.size, 1));
    fill(a.addr, a.size, 2);
    CHECK(filled(src.addr, src.size, 2));
    CHECK_EQ(th_fd_count(), u0.fds + 1);
    CHECK_OK(ipc_shm_close(&a));
    CHECK_USAGE(u0);

    /* a memfd, attached read-only */
    CHECK_OK(ipc_shm_create(&m, NULL, 4096, NULL));
    fill(m.addr, m.size, 3);
    u0 = usage_now();
    CHECK_OK(ipc_shm_attach_fd(&a, m.fd, &ro));
    CHECK_EQ(a.kind, IPC_SHM_KIND_MEMFD);
    CHECK(a.flags & IPC_SHM_RDONLY);
    CHECK(filled(a.addr, a.size, 3));
    CHECK_OK(ipc_shm_close(&a));
    CHECK_USAGE(u0);
    CHECK(fcntl(m.fd, F_GETFD) >= 0); /* the caller's fd stays open */

    CHECK_OK(ipc_shm_close(&m));
    CHECK_OK(ipc_shm_close(&src));
    CHECK_OK(ipc_shm_unlink(name));
}

/* ---- System V ---- */

static unsigned sysv_mode(int id) {
    struct shmid_ds ds;
    CHECK_EQ(shmctl(id, IPC_STAT, &ds), 0);
    return (unsigned)ds.shm_perm.mode & 0777u;
}

static void sysv_private_body(void *arg) {
    struct peer p = {.how = BY_ID, .size = 10000, .kind = IPC_SHM_KIND_SYSV};
    struct shmid_ds ds;
    ipc_shm s, t;
    int id, tid;
    (void)arg;

    CHECK_OK(sysv_create(&s, IPC_PRIVATE, 10000, NULL));
    CHECK_EQ(s.kind, IPC_SHM_KIND_SYSV);
    CHECK(s.addr != NULL && s.id >= 0 && s.fd == -1);
    CHECK_EQ(s.size, 10000);
    CHECK_EQ(shmctl(s.id, IPC_STAT, &ds), 0);
    CHECK_EQ(ds.shm_segsz, 10000);
    CHECK_EQ(sysv_mode(s.id), 0600);
    /* IPC_PRIVATE is always a new segment */
    CHECK_OK(sysv_create(&t, IPC_PRIVATE, 4096, NULL));
    CHECK(t.id != s.id);
    tid = t.id;
    CHECK_OK(ipc_shm_sysv_remove(tid));
    CHECK_OK(ipc_shm_close(&t));

    fill(s.addr, s.size, 1);
    p.id = s.id;
    CHECK_EQ(spawn_join(peer_reply, &p), 0);
    CHECK(filled(s.addr, s.size, 2));

    id = s.id;
    CHECK_OK(ipc_shm_sysv_remove(id));
    CHECK_OK(ipc_shm_close(&s));
    CHECK(sysv_gone(id));
    CHECK(sysv_gone(tid));
}

TEST(shm_sysv_private_attach_by_id) {
    CHECK_BODY(guarded(sysv_private_body, NULL));
}

static void sysv_key_body(void *arg) {
    const char *keyfile = (const char *)arg;
    struct peer p = {.how = BY_KEY, .size = 4096, .kind = IPC_SHM_KIND_SYSV};
    ipc_shm_opts o = {0640, 0};
    key_t k2;
    ipc_shm s, t;
    int id;

    CHECK_OK(ipc_shm_key(keyfile, 'S', &p.key));
    CHECK(p.key != IPC_PRIVATE);
    CHECK_OK(ipc_shm_key(keyfile, 'S', &k2));
    CHECK_EQ(k2, p.key);
    CHECK_OK(ipc_shm_key(keyfile, 'T', &k2));
    CHECK(k2 != p.key);

    umask(077);
    CHECK_OK(sysv_create(&s, p.key, 4096, &o));
    CHECK_EQ(sysv_mode(s.id), 0640);
    fill(s.addr, s.size, 1);
    /* exclusive: the second create fails, leaks nothing and leaves the first alone */
    CHECK_NO_LEAK(sysv_create(&t, p.key, 4096, NULL), -EEXIST);
    CHECK(is_closed(&t));
    CHECK(filled(s.addr, s.size, 1));

    p.id = s.id;
    CHECK_EQ(spawn_join(peer_reply, &p), 0);
    CHECK(filled(s.addr, s.size, 2));
    CHECK_OK(ipc_shm_sysv_open(&t, p.key, NULL));
    CHECK_EQ(t.id, s.id);
    CHECK_OK(ipc_shm_close(&t));

    /* removal frees the key at once; the memory stays until the last detach */
    id = s.id;
    CHECK_OK(ipc_shm_sysv_remove(id));
    CHECK_ERR(ipc_shm_sysv_open(&t, p.key, NULL), -ENOENT);
    CHECK(filled(s.addr, s.size, 2));
    CHECK_OK(ipc_shm_close(&s));
    CHECK(sysv_gone(id));
    CHECK_ERR(ipc_shm_sysv_remove(id), -EINVAL);
}

/* Run body (guarded: its System V segments are removed even if it fails) with the path
   of a fresh key file for ftok, in a temporary directory removed afterwards. */
static void with_key_file(void (*body)(void *)) {
    char dir[64], keyfile[96];
    int fd, code;

    make_tmpdir(dir, sizeof dir);
    snprintf(keyfile, sizeof keyfile, "%s/key", dir);
    fd = open(keyfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    close(fd);
    code = guarded(body, keyfile);
    rm_tmpdir(dir);
    CHECK_BODY(code);
}

TEST(shm_sysv_key_open_by_key) {
    with_key_file(sysv_key_body);
}

struct handoff {
    int id, ready[2], go[2];
};

/* Child: stay attached while the parent removes the segment, then detach. */
static void sysv_late_child(void *arg) {
    const struct handoff *h = (const struct handoff *)arg;
    ipc_shm c;
    char b;
    CHECK_OK(ipc_shm_sysv_attach(&c, h->id, NULL));
    CHECK_EQ(ipc_fd_write_all(h->ready[1], "r", 1, IPC_FOREVER, NULL), 1);
    CHECK_EQ(ipc_fd_read_exact(h->go[0], &b, 1, 4 * SEC, NULL), 1);
    CHECK(filled(c.addr, c.size, 1));
    CHECK_OK(ipc_shm_close(&c));
}

static void sysv_outlives_body(void *arg) {
    struct shmid_ds ds;
    struct handoff h;
    ipc_shm s;
    pid_t pid;
    char b;
    (void)arg;

    CHECK_OK(sysv_create(&s, IPC_PRIVATE, 8192, NULL));
    fill(s.addr, s.size, 1);
    h.id = s.id;
    CHECK(pipe(h.ready) == 0 && pipe(h.go) == 0);
    pid = spawn(sysv_late_child, &h);
    CHECK_EQ(ipc_fd_read_exact(h.ready[0], &b, 1, 4 * SEC, NULL), 1);

    CHECK_OK(ipc_shm_sysv_remove(h.id));
    CHECK_OK(ipc_shm_close(&s));
    /* the child's attachments (its own and the one fork gave it) keep the segment:
       marked for destruction, not gone */
    CHECK_EQ(shmctl(h.id, IPC_STAT, &ds), 0);
    CHECK(ds.shm_perm.mode & SHM_DEST);
    CHECK_EQ(ds.shm_nattch, 2);
    CHECK_EQ(ipc_fd_write_all(h.go[1], "g", 1, IPC_FOREVER, NULL), 1);
    CHECK_EQ(th_join(pid, JOIN_MS), 0);
    CHECK(sysv_gone(h.id));
}

TEST(shm_sysv_removed_lives_until_detach) {
    CHECK_BODY(guarded(sysv_outlives_body, NULL));
}

/* ---- files ---- */

struct files {
    char dir[64], path[96], path2[96];
};

static void file_body(void *arg) {
    const struct files *f = (const struct files *)arg;
    struct peer p = {.how = BY_PATH, .name = f->path, .size = 10000, .kind = IPC_SHM_KIND_FILE};
    unsigned char buf[10000];
    ipc_shm_opts o = {0640, 0};
    struct stat st;
    ipc_shm s, t;
    int fd;

    CHECK_OK(ipc_shm_file_create(&s, f->path, 10000, NULL));
    CHECK_EQ(s.kind, IPC_SHM_KIND_FILE);
    CHECK(s.addr != NULL && s.fd >= 0 && s.id == -1);
    CHECK_EQ(s.size, 10000);
    CHECK_EQ(mode_of_fd(s.fd), 0600);
    CHECK_EQ(stat(f->path, &st), 0);
    CHECK_EQ(st.st_size, 10000);
    CHECK((unsigned long long)st.st_blocks * 512 >= 10000); /* disk reserved */
    fill(s.addr, s.size, 1);
    CHECK_OK(ipc_shm_sync(&s, 0, 0, 0));
    CHECK_OK(ipc_shm_sync(&s, 5000, 100, 1));
    CHECK_OK(ipc_shm_close(&s));

    /* exclusive: an existing file is neither replaced nor resized */
    CHECK_ERR(ipc_shm_file_create(&t, f->path, 4096, NULL), -EEXIST);
    CHECK(is_closed(&t));
    CHECK_EQ(stat(f->path, &st), 0);
    CHECK_EQ(st.st_size, 10000);

    /* another process opens the file, sees the data and writes back */
    CHECK_EQ(spawn_join(peer_reply, &p), 0);

    /* with every mapping closed, the data is in the file */
    fd = open(f->path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(ipc_fd_read_exact(fd, buf, sizeof buf, SEC, NULL), sizeof buf);
    close(fd);
    CHECK(filled(buf, sizeof buf, 2));
    CHECK_OK(ipc_shm_file_open(&s, f->path, NULL));
    CHECK_EQ(s.size, 10000);
    CHECK(filled(s.addr, s.size, 2));
    CHECK_OK(ipc_shm_close(&s));

    /* an explicit mode, exactly */
    umask(077);
    CHECK_OK(ipc_shm_file_create(&s, f->path2, 4096, &o));
    CHECK_EQ(mode_of_fd(s.fd), 0640);
    CHECK_EQ(mode_of_path(f->path2), 0640);
    CHECK_OK(ipc_shm_close(&s));
}

TEST(shm_file_persists_across_processes) {
    struct files f;
    int code;
    make_tmpdir(f.dir, sizeof f.dir);
    snprintf(f.path, sizeof f.path, "%s/data", f.dir);
    snprintf(f.path2, sizeof f.path2, "%s/data2", f.dir);
    code = guarded(file_body, &f);
    rm_tmpdir(f.dir);
    CHECK_BODY(code);
}

/* ---- read-only mappings ---- */

/* Child: map read-only, read, then write, which must kill it with SIGSEGV. */
static void rdonly_writer(void *arg) {
    struct peer p = *(const struct peer *)arg;
    struct rlimit no_core = {0, 0};
    struct sigaction dfl;
    ipc_shm c;

    p.flags = IPC_SHM_RDONLY;
    CHECK_OK(peer_open(&c, &p));
    CHECK(c.flags & IPC_SHM_RDONLY);
    CHECK_EQ(c.size, p.size);
    CHECK(filled(c.addr, c.size, 1));
    /* opened read-only, so the mapping cannot be made writable either (an fd passed
       in keeps the access it was opened with) */
    if (p.how != BY_FD) CHECK_EQ(mprotect(c.addr, c.size, PROT_READ | PROT_WRITE), -1);

    setrlimit(RLIMIT_CORE, &no_core);
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL; /* not ASan's handler, which would exit(1) instead */
    sigaction(SIGSEGV, &dfl, NULL);
    ((volatile unsigned char *)c.addr)[c.size / 2] = 0xEE;
    _exit(3); /* the write went through */
}

static void check_rdonly(struct peer *p, void *parent_addr) {
    CHECK_EQ(spawn_join(rdonly_writer, p), 128 + SIGSEGV);
    CHECK(filled(parent_addr, p->size, 1));
}

TEST(shm_rdonly_write_faults) {
    char name[64], path[96];
    struct peer p = {.size = 3 * 4096};
    ipc_shm s, f;

    th_name(name, sizeof name, "ro");
    CHECK_OK(ipc_shm_create(&s, name, p.size, NULL));
    fill(s.addr, s.size, 1);
    p.how = BY_NAME;
    p.name = name;
    check_rdonly(&p, s.addr);
    p.how = BY_FD;
    p.fd = s.fd; /* an O_RDWR fd, mapped read-only on request */
    check_rdonly(&p, s.addr);
    CHECK_OK(ipc_shm_close(&s));
    CHECK_OK(ipc_shm_unlink(name));

    /* a file (kept in /dev/shm, where the runner sweeps our names) */
    th_name(name, sizeof name, "rofile");
    CHECK_OK(ipc_shm_file_create(&f, shm_file(path, sizeof path, name), p.size, NULL));
    fill(f.addr, f.size, 1);
    p.how = BY_PATH;
    p.name = path;
    check_rdonly(&p, f.addr);
    CHECK_OK(ipc_shm_close(&f));
    CHECK_EQ(unlink(path), 0);
}

static void sysv_rdonly_body(void *arg) {
    struct peer p = {.how = BY_ID, .size = 8192};
    ipc_shm s;
    (void)arg;
    CHECK_OK(sysv_create(&s, IPC_PRIVATE, p.size, NULL));
    fill(s.addr, s.size, 1);
    p.id = s.id;
    check_rdonly(&p, s.addr);
    CHECK_OK(ipc_shm_sysv_remove(s.id));
    CHECK_OK(ipc_shm_close(&s));
}

TEST(shm_sysv_rdonly_write_faults) {
    CHECK_BODY(guarded(sysv_rdonly_body, NULL));
}

/* ---- prefault ---- */

/* A macro, so that a failure names the line of the handle that was not prefaulted. */
#define CHECK_PREFAULTED(s)                                                                        \
    do {                                                                                           \
        long kb_;                                                                                  \
        CHECK(((s)->flags & IPC_SHM_PREFAULT) != 0);                                               \
        kb_ = rss_kb((s)->addr);                                                                   \
        if (kb_ < (long)((s)->size / 1024))                                                        \
            th_fail(__FILE__, __LINE__, "%s: %ld kB resident of %zu bytes", #s, kb_, (s)->size);   \
        fill((s)->addr, (s)->size, 5);                                                             \
        CHECK(filled((s)->addr, (s)->size, 5));                                                    \
    } while (0)

TEST(shm_prefault) {
    ipc_shm_opts pf = {0, IPC_SHM_PREFAULT}, pf_ro = {0, IPC_SHM_PREFAULT | IPC_SHM_RDONLY};
    const size_t size = 64 * 4096;
    char name[64], path[96];
    ipc_shm s, o, m, a, f;

    /* without the flag nothing is mapped in yet: the Rss reading means something */
    th_name(name, sizeof name, "plain");
    CHECK_OK(ipc_shm_create(&s, name, size, NULL));
    CHECK(rss_kb(s.addr) < (long)(size / 1024));
    CHECK_OK(ipc_shm_close(&s));
    CHECK_OK(ipc_shm_unlink(name));

    th_name(name, sizeof name, "prefault");
    CHECK_OK(ipc_shm_create(&s, name, size, &pf));
    CHECK_PREFAULTED(&s);
    CHECK_OK(ipc_shm_open(&o, name, &pf));
    CHECK_PREFAULTED(&o);
    CHECK_OK(ipc_shm_close(&o));
    CHECK_OK(ipc_shm_open(&o, name, &pf_ro));
    CHECK(rss_kb(o.addr) >= (long)(size / 1024));
    CHECK(filled(o.addr, o.size, 5));
    CHECK_OK(ipc_shm_close(&o));

    CHECK_OK(ipc_shm_create(&m, NULL, size, &pf));
    CHECK_PREFAULTED(&m);
    CHECK_OK(ipc_shm_attach_fd(&a, s.fd, &pf));
    CHECK_PREFAULTED(&a);
    CHECK_OK(ipc_shm_close(&a));
    CHECK_OK(ipc_shm_close(&m));
    CHECK_OK(ipc_shm_close(&s));
    CHECK_OK(ipc_shm_unlink(name));

    th_name(name, sizeof name, "pffile");
    CHECK_OK(ipc_shm_file_create(&f, shm_file(path, sizeof path, name), size, &pf));
    CHECK_PREFAULTED(&f);
    CHECK_OK(ipc_shm_close(&f));
    CHECK_OK(ipc_shm_file_open(&f, path, &pf));
    CHECK_PREFAULTED(&f);
    CHECK_OK(ipc_shm_close(&f));
    CHECK_EQ(unlink(path), 0);
}

static void sysv_prefault_body(void *arg) {
    ipc_shm_opts pf = {0, IPC_SHM_PREFAULT};
    ipc_shm s, a;
    (void)arg;
    CHECK_OK(sysv_create(&s, IPC_PRIVATE, 64 * 4096, &pf));
    CHECK_PREFAULTED(&s);
    /* a second attachment asked to prefault must come in resident too */
    CHECK_OK(ipc_shm_sysv_attach(&a, s.id, &pf));
    CHECK_PREFAULTED(&a);
    CHECK_OK(ipc_shm_close(&a));
    CHECK_OK(ipc_shm_sysv_remove(s.id));
    CHECK_OK(ipc_shm_close(&s));
}

TEST(shm_sysv_prefault) {
    CHECK_BODY(guarded(sysv_prefault_body, NULL));
}

/* ---- errors: nothing leaks, bad arguments are refused ---- */

TEST(shm_no_leaks_on_errors) {
    ipc_shm_opts ro = {0, IPC_SHM_RDONLY};
    char exists[64], missing[64], dangling[64], fifo[64], empty[64], toolong[300];
    char path[96], fpath[96], fmissing[96];
    int pfd[2], empty_fd, ro_fd, dead_fd, dead_id;
    ipc_shm s, e;

    th_name(exists, sizeof exists, "exists");
    CHECK_OK(ipc_shm_create(&e, exists, 4096, NULL));
    shm_file(fpath, sizeof fpath, exists);
    th_name(missing, sizeof missing, "missing");
    shm_file(fmissing, sizeof fmissing, missing);
    th_name(dangling, sizeof dangling, "dangling");
    CHECK_EQ(symlink("/nonexistent-ipct-target", shm_file(path, sizeof path, dangling)), 0);
    th_name(fifo, sizeof fifo, "fifo");
    CHECK_EQ(mkfifo(shm_file(path, sizeof path, fifo), 0600), 0);
    th_name(empty, sizeof empty, "empty");
    empty_fd =
        open(shm_file(path, sizeof path, empty), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    CHECK(empty_fd >= 0);
    ro_fd = open(fpath, O_RDONLY | O_CLOEXEC);
    CHECK(ro_fd >= 0);
    CHECK_EQ(pipe(pfd), 0);
    dead_fd = dup(pfd[0]); /* a number that is free once closed */
    CHECK(dead_fd >= 0);
    close(dead_fd);
    dead_id = shmget(IPC_PRIVATE, 4096, 0600); /* removed at once: a stale id */
    CHECK(dead_id >= 0);
    CHECK_EQ(shmctl(dead_id, IPC_RMID, NULL), 0);
    memset(toolong, 'x', 257);
    toolong[0] = '/';
    toolong[257] = '\0';

    CHECK_NO_LEAK(ipc_shm_create(&s, "a/b", 4096, NULL), -EINVAL);
    CHECK_NO_LEAK(ipc_shm_open(&s, "a/b", NULL), -EINVAL);
    CHECK_NO_LEAK(ipc_shm_create(&s, toolong, 4096, NULL), -ENAMETOOLONG);
    CHECK_NO_LEAK(ipc_shm_create(&s, exists, 4096, NULL), -EEXIST);
    CHECK_NO_LEAK(ipc_shm_create(&s, dangling, 4096, NULL), -EEXIST);
    CHECK_NO_LEAK(ipc_shm_open(&s, missing, NULL), -ENOENT);
    CHECK_NO_LEAK(ipc_shm_open(&s, dangling, NULL), -ELOOP);
    CHECK_NO_LEAK(ipc_shm_open(&s, fifo, NULL), -ENODEV);
    CHECK_NO_LEAK(ipc_shm_open(&s, fifo, &ro), -ENODEV);
    CHECK_NO_LEAK(ipc_shm_open(&s, empty, NULL), -EBADMSG);
    CHECK_NO_LEAK(ipc_shm_attach_fd(&s, -1, NULL), -EBADF);
    CHECK_NO_LEAK(ipc_shm_attach_fd(&s, dead_fd, NULL), -EBADF);
    CHECK_NO_LEAK(ipc_shm_attach_fd(&s, pfd[0], NULL), -ENODEV);
    CHECK_NO_LEAK(ipc_shm_attach_fd(&s, empty_fd, NULL), -EBADMSG);
    CHECK_NO_LEAK(ipc_shm_attach_fd(&s, ro_fd, NULL), -EACCES); /* fails at mmap */
    CHECK_NO_LEAK(ipc_shm_file_create(&s, fpath, 4096, NULL), -EEXIST);
    CHECK_NO_LEAK(ipc_shm_file_create(&s, "/nonexistent-ipct/f", 4096, NULL), -ENOENT);
    CHECK_NO_LEAK(ipc_shm_file_open(&s, fmissing, NULL), -ENOENT);
    CHECK_NO_LEAK(ipc_shm_file_open(&s, "/dev/null", NULL), -ENODEV);
    CHECK_NO_LEAK(ipc_shm_sysv_attach(&s, -1, NULL), -EINVAL);
    CHECK_NO_LEAK(ipc_shm_sysv_attach(&s, dead_id, NULL), -EINVAL);
    CHECK(is_closed(&s));
    /* -ENOSPC: see shm_posix_enospc; System V -EEXIST: see shm_sysv_key_open_by_key */

    close(pfd[0]);
    close(pfd[1]);
    close(ro_fd);
    close(empty_fd);
    CHECK_OK(ipc_shm_close(&e));
}

TEST(shm_args_create) {
    ipc_shm_opts sticky = {01600, 0}, setuid = {04600, 0}, high = {0x10000u | 0600, 0};
    char name[64];
    ipc_shm s;

    th_name(name, sizeof name, "args");
    CHECK_ERR(ipc_shm_create(NULL, name, 4096, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_create(NULL, NULL, 4096, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_create(&s, name, 0, NULL), -EINVAL);
    CHECK(is_closed(&s));
    CHECK_ERR(ipc_shm_create(&s, NULL, 0, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_create(&s, name, (size_t)-1, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_create(&s, NULL, (size_t)-1, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_create(&s, name, (size_t)PTRDIFF_MAX + 1, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_create(&s, NULL, (size_t)PTRDIFF_MAX + 1, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_create(&s, name, 4096, &sticky), -EINVAL);
    CHECK_ERR(ipc_shm_create(&s, name, 4096, &setuid), -EINVAL);
    CHECK_ERR(ipc_shm_create(&s, name, 4096, &high), -EINVAL);
    CHECK_ERR(ipc_shm_create(&s, NULL, 4096, &sticky), -EINVAL);
    /* none of them made anything */
    CHECK_ERR(ipc_shm_open(&s, name, NULL), -ENOENT);
}

TEST(shm_args_open_attach_unlink) {
    char name[64];
    ipc_shm s, m;
    int fd;

    th_name(name, sizeof name, "args");
    CHECK_ERR(ipc_shm_open(NULL, name, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_open(&s, NULL, NULL), -EINVAL);
    CHECK(is_closed(&s));
    CHECK_ERR(ipc_shm_open(&s, name, NULL), -ENOENT);

    CHECK_OK(ipc_shm_create(&m, NULL, 4096, NULL));
    CHECK_ERR(ipc_shm_attach_fd(NULL, m.fd, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_attach_fd(&s, -1, NULL), -EBADF);
    CHECK_ERR(ipc_shm_attach_fd(&s, INT_MIN, NULL), -EBADF);
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_ERR(ipc_shm_attach_fd(&s, fd, NULL), -ENODEV); /* a character device */
    close(fd);
    CHECK_ERR(ipc_shm_attach_fd(&s, fd, NULL), -EBADF); /* now closed */
    CHECK_OK(ipc_shm_close(&m));

    CHECK_ERR(ipc_shm_unlink(NULL), -EINVAL);
    CHECK_ERR(ipc_shm_unlink(""), -EINVAL);
    CHECK_ERR(ipc_shm_unlink(name), -ENOENT);
}

static void sysv_args_body(void *arg) {
    const char *keyfile = (const char *)arg;
    ipc_shm_opts sticky = {01600, 0};
    key_t key, missing;
    ipc_shm s;

    CHECK_ERR(ipc_shm_key(NULL, 'k', &key), -EINVAL);
    CHECK_ERR(ipc_shm_key(keyfile, 0, &key), -EINVAL);
    CHECK_ERR(ipc_shm_key(keyfile, 0x100, &key), -EINVAL); /* ftok keeps the low byte: 0 */
    CHECK_ERR(ipc_shm_key(keyfile, 'k', NULL), -EINVAL);
    CHECK_ERR(ipc_shm_key("/nonexistent-ipct/key", 'k', &key), -ENOENT);
    CHECK_OK(ipc_shm_key(keyfile, 'k', &key));
    CHECK_OK(ipc_shm_key(keyfile, 'm', &missing));

    CHECK_ERR(sysv_create(NULL, IPC_PRIVATE, 4096, NULL), -EINVAL);
    CHECK_ERR(sysv_create(&s, IPC_PRIVATE, 0, NULL), -EINVAL);
    CHECK(is_closed(&s));
    CHECK_ERR(sysv_create(&s, IPC_PRIVATE, (size_t)-1, NULL), -EINVAL);
    CHECK_ERR(sysv_create(&s, IPC_PRIVATE, (size_t)PTRDIFF_MAX + 1, NULL), -EINVAL);
    CHECK_ERR(sysv_create(&s, key, 4096, &sticky), -EINVAL);

    CHECK_ERR(ipc_shm_sysv_open(NULL, key, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_sysv_open(&s, IPC_PRIVATE, NULL), -EINVAL);
    CHECK(is_closed(&s));
    CHECK_ERR(ipc_shm_sysv_open(&s, missing, NULL), -ENOENT);

    CHECK_ERR(ipc_shm_sysv_attach(NULL, 0, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_sysv_attach(&s, -1, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_sysv_remove(-1), -EINVAL);
}

TEST(shm_args_key_sysv) {
    with_key_file(sysv_args_body);
}

TEST(shm_args_file) {
    ipc_shm_opts sticky = {01600, 0};
    char name[64], path[96];
    ipc_shm s;

    /* paths in /dev/shm under our names, so a wrong success is swept by the runner */
    th_name(name, sizeof name, "fargs");
    shm_file(path, sizeof path, name);
    CHECK_ERR(ipc_shm_file_create(NULL, path, 4096, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_file_create(&s, NULL, 4096, NULL), -EINVAL);
    CHECK(is_closed(&s));
    CHECK_ERR(ipc_shm_file_create(&s, "", 4096, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_file_create(&s, path, 0, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_file_create(&s, path, (size_t)-1, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_file_create(&s, path, (size_t)PTRDIFF_MAX + 1, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_file_create(&s, path, 4096, &sticky), -EINVAL);
    CHECK_ERR(ipc_shm_file_create(&s, "/dev/shm/", 4096, NULL), -EISDIR);
    CHECK_ERR(ipc_shm_file_create(&s, "/nonexistent-ipct/f", 4096, NULL), -ENOENT);
    CHECK_ERR(access(path, F_OK), -1);

    CHECK_ERR(ipc_shm_file_open(NULL, path, NULL), -EINVAL);
    CHECK_ERR(ipc_shm_file_open(&s, NULL, NULL), -EINVAL);
    CHECK(is_closed(&s));
    CHECK_ERR(ipc_shm_file_open(&s, "", NULL), -EINVAL);
    CHECK_ERR(ipc_shm_file_open(&s, path, NULL), -ENOENT);
    CHECK_ERR(ipc_shm_file_open(&s, "/dev/null", NULL), -ENODEV);
    CHECK_ERR(ipc_shm_file_open(&s, "/dev/shm", NULL), -EISDIR);
}

TEST(shm_args_sync_close) {
    ipc_shm s;

    CHECK_OK(ipc_shm_create(&s, NULL, 3 * 4096 + 100, NULL));
    CHECK_ERR(ipc_shm_sync(NULL, 0, 0, 0), -EINVAL);
    CHECK_OK(ipc_shm_sync(&s, 0, 0, 0));
    CHECK_OK(ipc_shm_sync(&s, 0, s.size, 1));
    CHECK_OK(ipc_shm_sync(&s, 100, s.size - 100, 0)); /* unaligned offset, to the end */
    CHECK_OK(ipc_shm_sync(&s, s.size - 1, 1, 0));
    CHECK_OK(ipc_shm_sync(&s, s.size - 1, 0, 1));
    CHECK_ERR(ipc_shm_sync(&s, s.size, 0, 0), -EINVAL);
    CHECK_ERR(ipc_shm_sync(&s, s.size, 1, 0), -EINVAL);
    CHECK_ERR(ipc_shm_sync(&s, s.size - 1, 2, 0), -EINVAL);
    CHECK_ERR(ipc_shm_sync(&s, 0, s.size + 1, 0), -EINVAL);
    CHECK_ERR(ipc_shm_sync(&s, 1, (size_t)-1, 0), -EINVAL); /* offset + len wraps */
    CHECK_ERR(ipc_shm_sync(&s, (size_t)-1, 1, 0), -EINVAL);

    CHECK_OK(ipc_shm_close(&s));
    CHECK(is_closed(&s));
    CHECK_ERR(ipc_shm_close(&s), -EBADF);
    CHECK_ERR(ipc_shm_sync(&s, 0, 0, 0), -EINVAL); /* a closed handle */
    CHECK_ERR(ipc_shm_close(NULL), -EINVAL);
}
