/* tests/test_faults.c - what ipc.h survives: the fault classes of the README table
   "What ipc.h survives" that no section's own tests prove in one place. Each test sets up
   one kind of fault across the library (a full /dev/shm, a truncated object, a full fd
   table, a storm of signals from another process, names removed under waiters, stale and
   planted names, odd message sizes, positions about to wrap) and checks what every
   affected call returns, and that a failed call leaves nothing behind: no fd, no mapping,
   no name. Peers are real processes. The tests that need root (a private tmpfs on
   /dev/shm) skip without it. */
#define _GNU_SOURCE 1
#include "harness.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef F_ADD_SEALS
#define F_ADD_SEALS   1033
#define F_GET_SEALS   1034
#define F_SEAL_SEAL   0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW   0x0004
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif

#define MS      ((int64_t)1000000)
#define SEC     ((int64_t)1000000000)
#define KiB     ((size_t)1024)
#define JOIN_MS 8000

/* ---- helpers ---- */

static pid_t spawn(void (*fn)(void *), void *arg) {
    pid_t pid = th_spawn(fn, arg);
    CHECK(pid > 0);
    return pid;
}

static void join_ok(pid_t pid, const char *what) {
    int code = th_join(pid, JOIN_MS);
    if (code == 77) th_skip("a child skipped");
    if (code != 0) th_fail(__FILE__, __LINE__, "%s: child exited with %d", what, code);
}

/* Call fn(name, arg) for each entry of dir but "." and "..", through getdents64 (a 32-bit
   readdir fails on 64-bit inode numbers) and with one fd. Returns how many fn accepted
   (returned non-zero), or -1 if dir cannot be opened. */
struct scan {
    int (*fn)(const char *, void *);
    void *arg;
    int n;
};

static void scan_one(const char *dir, const char *name, void *arg) {
    struct scan *s = (struct scan *)arg;
    (void)dir;
    if (s->fn(name, s->arg)) s->n++;
}

static int dir_scan(const char *dir, int (*fn)(const char *, void *), void *arg) {
    struct scan s;
    s.fn = fn;
    s.arg = arg;
    s.n = 0;
    return th_dir_each(dir, scan_one, &s) < 0 ? -1 : s.n;
}

static int any_name(const char *name, void *arg) {
    (void)name;
    (void)arg;
    return 1;
}

/* Entries in a directory ("." and ".." aside), or -1. */
static int dir_entries(const char *dir) {
    return dir_scan(dir, any_name, NULL);
}

static char *shm_path(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "/dev/shm%s", name);
    return buf;
}

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* A private directory under /tmp for paths (FIFOs, sockets, lock files). */
static char g_dir[64];

static void make_dir(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/ipct-faults-%ld-XXXXXX", (long)getpid());
    CHECK(mkdtemp(g_dir) != NULL);
}

static char *in_dir(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/%s", g_dir, name);
    return buf;
}

static int unlink_in_dir(const char *name, void *arg) {
    char p[512];
    (void)arg;
    return unlink(in_dir(p, sizeof p, name)) == 0;
}

/* Remove g_dir and what a test left in it (flat). */
static void remove_dir(void) {
    dir_scan(g_dir, unlink_in_dir, NULL);
    rmdir(g_dir);
}

static ipc_ring_opts ring_opts(size_t cap, unsigned flags) {
    ipc_ring_opts o;
    memset(&o, 0, sizeof o);
    o.capacity = cap;
    o.flags = flags;
    return o;
}

/* What the runner does not sweep: named semaphores, POSIX queues, System V objects and
   g_dir. A test that makes them names them here, runs its body in a child (guarded), and
   the parent removes them whatever happened. */
static char g_sem_names[4][64], g_mq_names[4][64];
static int g_msgq_id = -1, g_semset_id = -1;

static void guarded(void (*body)(void *), void *arg, int ms) {
    pid_t pid = spawn(body, arg);
    int code = th_join(pid, ms), i;
    for (i = 0; i < 4; i++) {
        if (g_sem_names[i][0]) ipc_sem_unlink(g_sem_names[i]);
        if (g_mq_names[i][0]) ipc_mq_unlink(g_mq_names[i]);
    }
    if (g_msgq_id >= 0) ipc_msgq_remove(g_msgq_id);
    if (g_semset_id >= 0) ipc_semset_remove(g_semset_id);
    if (g_dir[0]) remove_dir();
    if (code == 77) th_skip("the test body skipped");
    if (code != 0) th_fail(__FILE__, __LINE__, "the test body failed: %d", code);
}

/* ---- 1. a full /dev/shm ---- */

/* Put a fresh tmpfs mounted with opts on /dev/shm, in a mount namespace of this test
   process alone (it goes when the process does). Needs root: skips otherwise. */
static void private_devshm(const char *opts) {
    if (geteuid() != 0) th_skip("a private /dev/shm needs root");
    if (unshare(CLONE_NEWNS) != 0) th_skip("unshare(CLONE_NEWNS) refused");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        th_skip("cannot make the mounts private");
    if (mount("ipct-faults", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
        th_skip("cannot mount a tmpfs on /dev/shm");
    CHECK_EQ(dir_entries("/dev/shm"), 0);
}

/* A first sem_open sets up what the C library keeps for all of them (musl: its table of
   open semaphores): do it now, so that the leak checks after a failed create do not see
   it as the failure's. */
static void sem_warm_up(void) {
    ipc_sem *s;
    CHECK_ERR(ipc_sem_open(&s, "/ipct-faults-no-such-sem"), -ENOENT);
}

static unsigned long long shm_free_bytes(void) {
    struct statvfs v;
    CHECK_EQ(statvfs("/dev/shm", &v), 0);
    return (unsigned long long)v.f_bfree * v.f_frsize;
}

/* What a failed create must leave: the same fds, mappings, names and free space. */
typedef struct snapshot {
    int fds, maps, names;
    unsigned long long free;
} snapshot;

static snapshot snap(void) {
    snapshot s;
    s.fds = th_fd_count();
    s.maps = th_maps_now();
    s.names = dir_entries("/dev/shm");
    s.free = shm_free_bytes();
    return s;
}

static void same_snap(snapshot a, const char *what) {
    snapshot b = snap();
    if (a.fds != b.fds || a.maps != b.maps || a.names != b.names || a.free != b.free)
        th_fail(__FILE__, __LINE__,
                "%s left something: fds %d -> %d, maps %d -> %d, names %d -> %d, "
                "free %llu -> %llu",
                what, a.fds, b.fds, a.maps, b.maps, a.names, b.names, a.free, b.free);
}

static void devshm_ring_child(void *arg) {
    ipc_ring p;
    CHECK_OK(ipc_ring_open(&p, (const char *)arg, IPC_PRODUCER));
    CHECK_OK(ipc_ring_send(&p, "fits", 4, SEC));
    CHECK_OK(ipc_ring_close(&p));
}

TEST(faults_devshm_full_bytes) {
    ipc_ring_opts big = ring_opts(1024 * KiB, 0), mid = ring_opts(32 * KiB, 0);
    ipc_ring_opts fits = ring_opts(8 * KiB, 0), mp = ring_opts(32 * KiB, IPC_RING_MPMC);
    char rn[64], sn[64], sn2[64], semn[64], buf[16];
    ipc_shm s, s2, rest;
    ipc_ring r, c;
    ipc_sem *sem;
    snapshot z;
    int code;

    private_devshm("size=64k");
    sem_warm_up();
    th_name(rn, sizeof rn, "ring");
    th_name(sn, sizeof sn, "shm");
    th_name(sn2, sizeof sn2, "shm2");
    th_name(semn, sizeof semn, "sem");

    /* larger than the whole file system: refused up front */
    z = snap();
    CHECK_ERR(ipc_ring_create(&r, rn, IPC_PRODUCER, &big), -ENOSPC);
    same_snap(z, "ring 1 MiB");
    CHECK_ERR(ipc_shm_create(&s, sn, 1024 * KiB, NULL), -ENOSPC);
    same_snap(z, "shm 1 MiB");

    /* larger than what is left: the reservation fails part way and is given back */
    CHECK_OK(ipc_shm_create(&s, sn, 40 * KiB, NULL));
    z = snap();
    CHECK_ERR(ipc_shm_create(&s2, sn2, 40 * KiB, NULL), -ENOSPC);
    same_snap(z, "shm 40 KiB into 24 KiB");
    CHECK_ERR(ipc_ring_create(&r, rn, IPC_CONSUMER, &mid), -ENOSPC);
    same_snap(z, "ring 32 KiB into 24 KiB");
    CHECK_ERR(ipc_ring_create(&r, rn, IPC_CONSUMER, &mp), -ENOSPC);
    same_snap(z, "mpmc ring 32 KiB into 24 KiB");

    /* what fits still works, across processes */
    CHECK_OK(ipc_ring_create(&c, rn, IPC_CONSUMER, &fits));
    code = th_join(spawn(devshm_ring_child, rn), JOIN_MS);
    CHECK_EQ(code, 0);
    CHECK_EQ(ipc_ring_recv(&c, buf, sizeof buf, SEC), 4);
    CHECK(memcmp(buf, "fits", 4) == 0);

    /* nothing left at all: a named semaphore cannot be made either */
    CHECK_OK(ipc_shm_create(&rest, sn2, (size_t)shm_free_bytes(), NULL));
    CHECK_EQ(shm_free_bytes(), 0);
    z = snap();
    CHECK_ERR(ipc_sem_create(&sem, semn, 1, 0), -ENOSPC);
    CHECK(sem == NULL);
    same_snap(z, "named semaphore");

    /* an anonymous ring is a memfd, outside /dev/shm: a full /dev/shm does not stop it */
    CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER, &big));
    CHECK_OK(ipc_ring_close(&r));
    CHECK_OK(ipc_shm_create(&s2, NULL, 1024 * KiB, NULL));
    CHECK_OK(ipc_shm_close(&s2));

    CHECK_OK(ipc_ring_close(&c));
    CHECK_OK(ipc_shm_close(&rest));
    CHECK_OK(ipc_shm_close(&s));
}

TEST(faults_devshm_full_inodes) {
    ipc_ring_opts small = ring_opts(4 * KiB, 0);
    char rn[64], sn[64], semn[64], path[128];
    int i, fd, made = 0;
    ipc_sem *sem;
    ipc_shm s;
    ipc_ring r;
    snapshot z;

    private_devshm("size=1m,nr_inodes=8");
    sem_warm_up();
    th_name(rn, sizeof rn, "ring");
    th_name(sn, sizeof sn, "shm");
    th_name(semn, sizeof semn, "sem");
    /* take every inode there is */
    for (i = 0; i < 64; i++) {
        snprintf(path, sizeof path, "/dev/shm/filler-%d", i);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) break;
        close(fd);
        made++;
    }
    CHECK(made > 0 && made < 64);
    CHECK_EQ(errno, ENOSPC);

    z = snap();
    CHECK_ERR(ipc_ring_create(&r, rn, IPC_PRODUCER, &small), -ENOSPC);
    same_snap(z, "ring without an inode");
    CHECK_ERR(ipc_shm_create(&s, sn, 4096, NULL), -ENOSPC);
    same_snap(z, "shm without an inode");
    CHECK_ERR(ipc_sem_create(&sem, semn, 0, 0), -ENOSPC);
    same_snap(z, "semaphore without an inode");
    /* anonymous objects do not need one here */
    CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER, &small));
    CHECK_OK(ipc_ring_close(&r));
    /* one inode back: the ring fits */
    CHECK_EQ(unlink("/dev/shm/filler-0"), 0);
    CHECK_OK(ipc_ring_create(&r, rn, IPC_PRODUCER, &small));
    CHECK_OK(ipc_ring_close(&r));
    CHECK_OK(ipc_ring_unlink(rn));
}

/* ---- 2. a truncated shared object ---- */

static ipc_ring g_ring;  /* a parent's handle: a forked child gets a copy */
static ipc_shm g_shm;    /* likewise */
static char g_name[64];  /* a name for children */
static uint32_t *g_flag; /* a shared word: a child's progress */

/* Child: try to shrink and grow the sealed memfd behind the parent's ring and shm, then
   use the ring as its producer. */
static void sealed_truncater(void *arg) {
    int fd = ipc_ring_fd(&g_ring);
    ipc_ring p;
    (void)arg;
    CHECK(fd >= 0);
    CHECK_ERR(ftruncate(fd, 0), -1);
    CHECK_EQ(errno, EPERM);
    CHECK_ERR(ftruncate(fd, 4096), -1);
    CHECK_EQ(errno, EPERM);
    CHECK_ERR(ftruncate(fd, 64 * 1024 * 1024), -1);
    CHECK_EQ(errno, EPERM);
    CHECK_ERR(ftruncate(g_shm.fd, 0), -1);
    CHECK_EQ(errno, EPERM);
    CHECK_OK(ipc_ring_attach_fd(&p, fd, IPC_PRODUCER));
    CHECK_OK(ipc_ring_send(&p, "still here", 10, SEC));
    CHECK_OK(ipc_ring_close(&p));
}

TEST(faults_truncate_sealed_anonymous_objects) {
    ipc_ring_opts o = ring_opts(8 * KiB, 0);
    ipc_shm_opts seal = {0, IPC_SHM_SEAL};
    unsigned char *m;
    char buf[32];
    size_t i;
    CHECK_OK(ipc_ring_create(&g_ring, NULL, IPC_CONSUMER, &o));
    CHECK_OK(ipc_shm_create(&g_shm, NULL, 64 * KiB, &seal));
    join_ok(spawn(sealed_truncater, NULL), "truncater");
    CHECK_EQ(ipc_ring_recv(&g_ring, buf, sizeof buf, SEC), 10);
    CHECK(memcmp(buf, "still here", 10) == 0);
    CHECK_ERR(ipc_ring_recv(&g_ring, buf, sizeof buf, SEC), -EPIPE);
    /* every page of the shm is still there: no SIGBUS */
    m = (unsigned char *)g_shm.addr;
    for (i = 0; i < g_shm.size; i += 4096)
        m[i] = (unsigned char)i;
    CHECK_OK(ipc_shm_close(&g_shm));
    CHECK_OK(ipc_ring_close(&g_ring));
}

/* Resize a named object behind the library's back, as a hostile peer with write access
   to it can. */
static void resize_name(const char *name, off_t size) {
    char path[128];
    int fd = open(shm_path(path, sizeof path, name), O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, size), 0);
    close(fd);
}

TEST(faults_truncated_named_objects_refused_at_open) {
    static const off_t sizes[] = {0, 100, 4096, 8192, 3 * 4096, 4096 + 16 * 4096};
    ipc_ring_opts o = ring_opts(8 * KiB, 0);
    ipc_ring r;
    ipc_shm s;
    size_t i;
    int fds, maps;
    th_name(g_name, sizeof g_name, "trunc");
    CHECK_OK(ipc_ring_create(&r, g_name, IPC_PRODUCER, &o));
    CHECK_OK(ipc_ring_close(&r));
    fds = th_fd_count();
    maps = th_maps_now();
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int rc;
        resize_name(g_name, sizes[i]);
        rc = ipc_ring_open(&r, g_name, IPC_CONSUMER);
        if (rc != -EBADMSG)
            th_fail(__FILE__, __LINE__, "ring cut to %ld bytes: open gave %d (%s)", (long)sizes[i],
                    rc, ipc_strerror(rc));
    }
    CHECK_EQ(th_fd_count(), fds);
    CHECK_EQ(th_maps_now(), maps);
    /* plain shared memory maps the size the kernel reports, and refuses an empty one */
    resize_name(g_name, 0);
    CHECK_ERR(ipc_shm_open(&s, g_name, NULL), -EBADMSG);
    resize_name(g_name, 100);
    CHECK_OK(ipc_shm_open(&s, g_name, NULL));
    CHECK_EQ(s.size, 100);
    CHECK_OK(ipc_shm_close(&s));
    CHECK_OK(ipc_ring_unlink(g_name));
}

/* Before a call that is meant to fault: under ASan, keep its report of the SIGBUS (which
   it turns into exit code 1) out of the suite's output. */
static void quiet_fault(void) {
    int fd;
    if (!TH_ASAN) return;
    fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) dup2(fd, 2);
}

/* Child: hold the ring's role given by arg, report that it is attached, wait for
   the truncation, then make one call. It must not get past that call. */
static void truncated_user(void *arg) {
    int role = *(const int *)arg;
    ipc_ring r;
    char buf[16];
    CHECK_OK(ipc_ring_open(&r, g_name, role));
    __atomic_store_n(&g_flag[0], 1, __ATOMIC_RELEASE);
    while (__atomic_load_n(&g_flag[0], __ATOMIC_ACQUIRE) != 2)
        th_sleep_ms(1);
    quiet_fault();
    if (role == IPC_CONSUMER)
        (void)ipc_ring_recv(&r, buf, sizeof buf, 100 * MS);
    else
        (void)ipc_ring_send(&r, "x", 1, 100 * MS);
    __atomic_store_n(&g_flag[1], 1, __ATOMIC_RELEASE); /* survived */
}

/* The documented limit: a named ring trusts whoever can open its name for writing. One that
   truncates it makes the next access of every attached handle fault (SIGBUS): no library
   can catch that without a signal handler. Anonymous rings are sealed against it (above). */
TEST(faults_truncated_named_ring_under_handles_sigbus) {
    static const int roles[] = {IPC_CONSUMER, IPC_PRODUCER};
    ipc_ring_opts o = ring_opts(8 * KiB, 0);
    ipc_ring keep;
    size_t i;
    g_flag = (uint32_t *)th_shared_map(4096);
    for (i = 0; i < 2; i++) {
        int role = roles[i], code;
        pid_t pid;
        th_name(g_name, sizeof g_name, "cut");
        /* no handle of ours may be mapped at the truncation: closing it would fault too */
        CHECK_OK(ipc_ring_create(&keep, g_name, roles[1 - i], &o));
        if (role == IPC_CONSUMER) CHECK_OK(ipc_ring_send(&keep, "m", 1, 0));
        CHECK_OK(ipc_ring_close(&keep));
        __atomic_store_n(&g_flag[0], 0, __ATOMIC_RELAXED);
        __atomic_store_n(&g_flag[1], 0, __ATOMIC_RELAXED);
        pid = spawn(truncated_user, &role);
        while (__atomic_load_n(&g_flag[0], __ATOMIC_ACQUIRE) != 1)
            th_sleep_ms(1);
        resize_name(g_name, 0);
        __atomic_store_n(&g_flag[0], 2, __ATOMIC_RELEASE);
        code = th_join(pid, JOIN_MS);
        CHECK_EQ(__atomic_load_n(&g_flag[1], __ATOMIC_ACQUIRE), 0);
        /* ASan catches the SIGBUS itself and exits 1 */
        if (code != 128 + SIGBUS && !(TH_ASAN && code == 1))
            th_fail(__FILE__, __LINE__, "role %d: the child ended with %d, want SIGBUS", role,
                    code);
        CHECK_OK(ipc_ring_unlink(g_name));
    }
    th_shared_unmap(g_flag, 4096);
}

/* Child: truncate the memfd it was handed as a ring, after the parent attached. */
static void memfd_truncater(void *arg) {
    int fd = *(const int *)arg;
    while (__atomic_load_n(&g_flag[0], __ATOMIC_ACQUIRE) != 1)
        th_sleep_ms(1);
    CHECK_EQ(ftruncate(fd, 0), 0);
    __atomic_store_n(&g_flag[0], 2, __ATOMIC_RELEASE);
}

/* Child: attach to a ring image in a memfd that cannot be sealed; a sender that keeps the
   fd can truncate it under us, so the attach must be refused. */
static void unsealable_attacher(void *arg) {
    int fd = *(const int *)arg, rc;
    ipc_ring r;
    char buf[16];
    rc = ipc_ring_attach_fd(&r, fd, IPC_CONSUMER);
    __atomic_store_n(&g_flag[0], 1, __ATOMIC_RELEASE);
    if (rc == 0) {
        while (__atomic_load_n(&g_flag[0], __ATOMIC_ACQUIRE) != 2)
            th_sleep_ms(1);
        quiet_fault();
        (void)ipc_ring_recv(&r, buf, sizeof buf, 100 * MS); /* faults if it got here */
    }
    CHECK_ERR(rc, -EBADMSG);
}

/* Regression: ipc_ring_attach_fd once took F_SEAL_SEAL for "a named tmpfs file", but a
   memfd made without MFD_ALLOW_SEALING has exactly that seal too. */
TEST(faults_ring_attach_refuses_truncatable_memfd) {
    ipc_ring_opts o = ring_opts(8 * KiB, 0);
    ipc_ring src;
    struct stat st;
    unsigned char *img;
    int m, code;
    pid_t t;
    g_flag = (uint32_t *)th_shared_map(4096);
    /* a faithful ring image, in a memfd without sealing */
    CHECK_OK(ipc_ring_create(&src, NULL, IPC_PRODUCER, &o));
    CHECK_EQ(fstat(ipc_ring_fd(&src), &st), 0);
    img = (unsigned char *)malloc((size_t)st.st_size);
    CHECK(img != NULL);
    CHECK_EQ(pread(ipc_ring_fd(&src), img, (size_t)st.st_size, 0), st.st_size);
    CHECK_OK(ipc_ring_close(&src));
    m = (int)syscall(SYS_memfd_create, "not sealable", MFD_CLOEXEC);
    CHECK(m >= 0);
    CHECK_EQ(pwrite(m, img, (size_t)st.st_size, 0), st.st_size);
    free(img);
    CHECK_EQ(fcntl(m, F_GET_SEALS), F_SEAL_SEAL);
    t = spawn(memfd_truncater, &m);
    code = th_join(spawn(unsealable_attacher, &m), JOIN_MS);
    __atomic_store_n(&g_flag[0], 1, __ATOMIC_RELEASE); /* release the truncater either way */
    th_join(t, JOIN_MS);
    if (code != 0)
        th_fail(__FILE__, __LINE__, "attaching a truncatable memfd: child ended with %d%s", code,
                code == 128 + SIGBUS || (TH_ASAN && code == 1) ? " (SIGBUS)" : "");
    close(m);
    th_shared_unmap(g_flag, 4096);
}

/* ---- 3. a full fd table ---- */

static int g_fill[4096], g_nfill;
static struct rlimit g_lim0;

static int fd_max(const char *name, void *arg) {
    int f = atoi(name), *top = (int *)arg;
    if (f > *top) *top = f;
    return 1;
}

/* The highest open fd (the scan's own, closed by then, may count: harmless). */
static int highest_fd(void) {
    int top = -1;
    CHECK(dir_scan("/proc/self/fd", fd_max, &top) > 0);
    return top;
}

/* Leave exactly k free fd slots: fill every hole below the highest open fd, then lower the
   soft RLIMIT_NOFILE to just above it. fd_unsqueeze undoes both. */
static void fd_squeeze(int k) {
    struct rlimit lim;
    int top = highest_fd(), f;
    g_nfill = 0;
    for (;;) {
        f = open("/dev/null", O_RDONLY | O_CLOEXEC);
        CHECK(f >= 0);
        if (f > top) {
            close(f);
            break;
        }
        CHECK(g_nfill < 4096);
        g_fill[g_nfill++] = f;
    }
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &g_lim0), 0);
    lim = g_lim0;
    lim.rlim_cur = (rlim_t)(f + k);
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) th_skip("cannot lower RLIMIT_NOFILE");
}

static void fd_unsqueeze(void) {
    int i;
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &g_lim0), 0);
    for (i = 0; i < g_nfill; i++)
        close(g_fill[i]);
    g_nfill = 0;
}

static long g_test_pid; /* the test process, whose th_name names the runner sweeps */

static int is_mine(const char *name, void *arg) {
    return strstr(name, (const char *)arg) != NULL;
}

/* Names the test process owns in /dev/shm ("ipct-<pid>-..." and glibc's "sem.ipct-..."). */
static int my_shm_names(void) {
    char mine[32];
    snprintf(mine, sizeof mine, "ipct-%ld-", g_test_pid);
    return dir_scan("/dev/shm", is_mine, mine);
}

/* What the creators below use, made before the fd table is squeezed. */
static struct {
    ipc_ring ring;      /* a named ring, consumer role held here */
    char ring_name[64]; /* its name */
    char name[64];      /* a fresh name for objects that creators make and remove */
    char shm_name[64];  /* an existing shm object */
    char mq_name[64];   /* an existing POSIX queue */
    char mq_new[64];    /* a fresh queue name */
    char sem_name[64];  /* an existing named semaphore */
    char sem_new[64];   /* a fresh semaphore name */
    char fifo[256];     /* a FIFO with a reader (rfifo) */
    int rfifo;          /* its read end */
    char sock[256];     /* a fresh unix socket path */
    char stale[256];    /* a unix socket path with a dead server's socket file */
    char conn_ep[64];   /* an abstract listener to connect to */
    char acc_ep[64];    /* an abstract listener with one connection queued */
    int conn_l, acc_l, acc_c;
    int sv[2];      /* a socketpair for passing the ring's fd */
    char file[256]; /* a fresh path for a pidfile or a file-backed shm */
} g_fx;

static int mk_ring_named(void) {
    ipc_ring_opts o = ring_opts(4 * KiB, 0);
    ipc_ring r;
    int rc = ipc_ring_create(&r, g_fx.name, IPC_PRODUCER, &o);
    if (rc == 0) {
        ipc_ring_close(&r);
        ipc_ring_unlink(g_fx.name);
    }
    return rc;
}

static int mk_ring_anon(void) {
    ipc_ring_opts o = ring_opts(4 * KiB, IPC_RING_MPMC);
    ipc_ring r;
    int rc = ipc_ring_create(&r, NULL, IPC_PRODUCER | IPC_CONSUMER, &o);
    if (rc == 0) ipc_ring_close(&r);
    return rc;
}

static int mk_ring_open(void) {
    ipc_ring r;
    int rc = ipc_ring_open(&r, g_fx.ring_name, IPC_PRODUCER);
    if (rc == 0) ipc_ring_close(&r);
    return rc;
}

static int mk_ring_attach_fd(void) {
    ipc_ring r;
    int rc = ipc_ring_attach_fd(&r, ipc_ring_fd(&g_fx.ring), IPC_PRODUCER);
    if (rc == 0) ipc_ring_close(&r);
    return rc;
}

static int mk_ring_pollfd(void) {
    ipc_ring_opts o = ring_opts(4 * KiB, 0);
    ipc_ring r;
    int rc = ipc_ring_create(&r, NULL, IPC_CONSUMER, &o);
    if (rc < 0) return rc;
    rc = ipc_ring_pollfd(&r);
    ipc_ring_close(&r);
    return rc < 0 ? rc : 0;
}

/* The ring's fd rides over a unix socket: the kernel installs it (or, with no slot,
   drops it: MSG_CTRUNC), then attaching needs two more. */
static int mk_recv_ring(void) {
    ipc_ring r;
    int rc;
    CHECK_OK(ipc_sock_send_ring(g_fx.sv[0], &g_fx.ring, SEC));
    rc = ipc_sock_recv_ring(g_fx.sv[1], &r, IPC_PRODUCER, SEC);
    if (rc == 0) ipc_ring_close(&r);
    return rc;
}

static int mk_shm_named(void) {
    ipc_shm s;
    int rc = ipc_shm_create(&s, g_fx.name, 8192, NULL);
    if (rc == 0) {
        ipc_shm_close(&s);
        ipc_shm_unlink(g_fx.name);
    }
    return rc;
}

static int mk_shm_anon(void) {
    ipc_shm_opts seal = {0, IPC_SHM_SEAL};
    ipc_shm s;
    int rc = ipc_shm_create(&s, NULL, 8192, &seal);
    if (rc == 0) ipc_shm_close(&s);
    return rc;
}

static int mk_shm_open(void) {
    ipc_shm s;
    int rc = ipc_shm_open(&s, g_fx.shm_name, NULL);
    if (rc == 0) ipc_shm_close(&s);
    return rc;
}

static int mk_shm_file(void) {
    ipc_shm s;
    int rc = ipc_shm_file_create(&s, g_fx.file, 8192, NULL);
    if (rc == 0) {
        ipc_shm_close(&s);
        unlink(g_fx.file);
    }
    return rc;
}

static int mk_pipe(void) {
    ipc_pipe p;
    int rc = ipc_pipe_open(&p, NULL);
    if (rc == 0) ipc_pipe_close(&p);
    return rc;
}

static int mk_pipe_duplex(void) {
    ipc_pipe e[2];
    int rc = ipc_pipe_duplex(e, NULL);
    if (rc == 0) {
        ipc_pipe_close(&e[0]);
        ipc_pipe_close(&e[1]);
    }
    return rc;
}

static int mk_sock_pair(void) {
    int sv[2], rc = ipc_sock_pair(sv, IPC_SOCK_SEQPACKET);
    if (rc == 0) {
        close(sv[0]);
        close(sv[1]);
    }
    return rc;
}

static int mk_listen(void) {
    int fd = ipc_sock_listen(g_fx.sock, NULL);
    if (fd < 0) return fd;
    close(fd);
    ipc_sock_unlink(g_fx.sock);
    return 0;
}

/* Replacing a dead server's file takes a probe socket too; short of it the file stays. */
static int mk_listen_stale(void) {
    int fd = ipc_sock_listen(g_fx.stale, NULL);
    if (fd < 0) {
        struct stat st;
        CHECK_EQ(lstat(g_fx.stale + 5, &st), 0);
        CHECK(S_ISSOCK(st.st_mode));
        return fd;
    }
    close(fd);
    ipc_sock_unlink(g_fx.stale);
    return 0;
}

static void stale_server(void *arg) {
    CHECK_OK(ipc_sock_listen((const char *)arg, NULL)); /* and exit without cleaning up */
}

static void prep_stale(void) {
    if (!exists(g_fx.stale + 5)) join_ok(spawn(stale_server, g_fx.stale), "stale server");
}

static int mk_connect(void) {
    int fd = ipc_sock_connect(g_fx.conn_ep, NULL, SEC);
    if (fd < 0) return fd;
    close(fd);
    return 0;
}

static void prep_accept(void) {
    if (g_fx.acc_c >= 0) close(g_fx.acc_c);
    CHECK_OK(g_fx.acc_c = ipc_sock_connect(g_fx.acc_ep, NULL, SEC));
}

/* A queued connection that cannot be accepted stays queued for a later accept. */
static int mk_accept(void) {
    int fd = ipc_sock_accept(g_fx.acc_l, NULL, SEC);
    if (fd < 0) return fd;
    close(fd);
    return 0;
}

static int mk_mq_create(void) {
    ipc_mq_opts o = {2, 64, 0, 0};
    int q = ipc_mq_create(g_fx.mq_new, &o);
    if (q < 0) {
        CHECK_ERR(ipc_mq_unlink(g_fx.mq_new), -ENOENT); /* no queue left behind */
        return q;
    }
    ipc_mq_close(q);
    ipc_mq_unlink(g_fx.mq_new);
    return 0;
}

static int mk_mq_open(void) {
    int q = ipc_mq_open(g_fx.mq_name, IPC_MQ_READ | IPC_MQ_WRITE);
    if (q < 0) return q;
    ipc_mq_close(q);
    return 0;
}

static int mk_sem_create(void) {
    ipc_sem *s;
    int rc = ipc_sem_create(&s, g_fx.sem_new, 1, 0);
    if (rc < 0) {
        CHECK(s == NULL);
        CHECK_ERR(ipc_sem_unlink(g_fx.sem_new), -ENOENT);
        return rc;
    }
    ipc_sem_close(s);
    ipc_sem_unlink(g_fx.sem_new);
    return 0;
}

static int mk_sem_open(void) {
    ipc_sem *s;
    int rc = ipc_sem_open(&s, g_fx.sem_name);
    if (rc == 0) ipc_sem_close(s);
    return rc;
}

static int mk_event(void) {
    int fd = ipc_event_open(0, 0);
    if (fd < 0) return fd;
    close(fd);
    return 0;
}

static int mk_signalfd(void) {
    int fd = ipc_signal_fd(IPC_SIGBIT(SIGUSR2));
    if (fd < 0) return fd;
    close(fd);
    return 0;
}

static int mk_fifo_read(void) {
    int fd = ipc_fifo_open(g_fx.fifo, IPC_FIFO_READ, 0);
    if (fd < 0) return fd;
    close(fd);
    return 0;
}

static int mk_fifo_write(void) {
    int fd = ipc_fifo_open(g_fx.fifo, IPC_FIFO_WRITE, 0);
    if (fd < 0) return fd;
    close(fd);
    return 0;
}

static int mk_pidfile(void) {
    int fd = ipc_lock_pidfile(g_fx.file, NULL);
    if (fd < 0) {
        CHECK(!exists(g_fx.file));
        return fd;
    }
    close(fd);
    unlink(g_fx.file);
    return 0;
}

static int mk_pty(void) {
    ipc_pty p;
    int rc = ipc_pty_open(&p, NULL);
    if (rc == 0) ipc_pty_close(&p);
    return rc;
}

static int mk_spawn(void) {
    char *argv[] = {(char *)"true", NULL};
    ipc_proc p;
    int rc = ipc_proc_spawn(&p, "/bin/true", argv, NULL), st;
    if (rc < 0) {
        CHECK_ERR(waitpid(-1, &st, WNOHANG), -1); /* no child was left running */
        CHECK_EQ(errno, ECHILD);
        return rc;
    }
    CHECK_OK(ipc_proc_wait(&p, 5 * SEC));
    ipc_proc_close(&p);
    return 0;
}

static int mk_proc_open(void) {
    ipc_proc p;
    int rc = ipc_proc_open(&p, getppid());
    if (rc == -ENOSYS) return 0; /* no pidfds here: nothing to check */
    if (rc == 0) ipc_proc_close(&p);
    return rc;
}

static const struct {
    const char *what;
    int (*make)(void);
    void (*prep)(void); /* run before each try, unsqueezed */
} g_makers[] = {
    {"ipc_ring_create named", mk_ring_named, NULL},
    {"ipc_ring_create anonymous mpmc", mk_ring_anon, NULL},
    {"ipc_ring_open", mk_ring_open, NULL},
    {"ipc_ring_attach_fd", mk_ring_attach_fd, NULL},
    {"ipc_ring_pollfd", mk_ring_pollfd, NULL},
    {"ipc_sock_recv_ring", mk_recv_ring, NULL},
    {"ipc_shm_create named", mk_shm_named, NULL},
    {"ipc_shm_create memfd", mk_shm_anon, NULL},
    {"ipc_shm_open", mk_shm_open, NULL},
    {"ipc_shm_file_create", mk_shm_file, NULL},
    {"ipc_pipe_open", mk_pipe, NULL},
    {"ipc_pipe_duplex", mk_pipe_duplex, NULL},
    {"ipc_sock_pair", mk_sock_pair, NULL},
    {"ipc_sock_listen", mk_listen, NULL},
    {"ipc_sock_listen over a stale socket", mk_listen_stale, prep_stale},
    {"ipc_sock_connect", mk_connect, NULL},
    {"ipc_sock_accept", mk_accept, prep_accept},
    {"ipc_mq_create", mk_mq_create, NULL},
    {"ipc_mq_open", mk_mq_open, NULL},
    {"ipc_sem_create", mk_sem_create, NULL},
    {"ipc_sem_open", mk_sem_open, NULL},
    {"ipc_event_open", mk_event, NULL},
    {"ipc_signal_fd", mk_signalfd, NULL},
    {"ipc_fifo_open read", mk_fifo_read, NULL},
    {"ipc_fifo_open write", mk_fifo_write, NULL},
    {"ipc_lock_pidfile", mk_pidfile, NULL},
    {"ipc_pty_open", mk_pty, NULL},
    {"ipc_proc_spawn", mk_spawn, NULL},
    {"ipc_proc_open", mk_proc_open, NULL},
};

/* Every call that makes fds, with 0, 1, 2... slots left: -EMFILE until it fits, and a
   failure leaves the fd table, the mappings and the names as they were. */
static void fd_limit_body(void *arg) {
    ipc_ring_opts o = ring_opts(4 * KiB, 0);
    ipc_mq_opts mo = {2, 64, 0, 0};
    ipc_sem *sem;
    ipc_shm shm;
    size_t i;
    int q, c;
    (void)arg;
    memcpy(g_fx.mq_name, g_mq_names[0], sizeof g_fx.mq_name);
    memcpy(g_fx.mq_new, g_mq_names[1], sizeof g_fx.mq_new);
    memcpy(g_fx.sem_name, g_sem_names[0], sizeof g_fx.sem_name);
    memcpy(g_fx.sem_new, g_sem_names[1], sizeof g_fx.sem_new);
    CHECK_OK(ipc_ring_create(&g_fx.ring, g_fx.ring_name, IPC_CONSUMER, &o));
    CHECK_OK(ipc_shm_create(&shm, g_fx.shm_name, 4096, NULL));
    CHECK_OK(q = ipc_mq_create(g_fx.mq_name, &mo));
    CHECK_OK(ipc_sem_create(&sem, g_fx.sem_name, 0, 0));
    in_dir(g_fx.fifo, sizeof g_fx.fifo, "fifo");
    CHECK_OK(ipc_fifo_create(g_fx.fifo, 0));
    CHECK_OK(g_fx.rfifo = ipc_fifo_open(g_fx.fifo, IPC_FIFO_READ, 0));
    snprintf(g_fx.sock, sizeof g_fx.sock, "unix:%s/sock", g_dir);
    snprintf(g_fx.stale, sizeof g_fx.stale, "unix:%s/stale", g_dir);
    snprintf(g_fx.conn_ep, sizeof g_fx.conn_ep, "unix:@ipct-faults-%ld-c", (long)getpid());
    snprintf(g_fx.acc_ep, sizeof g_fx.acc_ep, "unix:@ipct-faults-%ld-a", (long)getpid());
    CHECK_OK(g_fx.conn_l = ipc_sock_listen(g_fx.conn_ep, NULL));
    CHECK_OK(g_fx.acc_l = ipc_sock_listen(g_fx.acc_ep, NULL));
    g_fx.acc_c = -1;
    CHECK_OK(ipc_sock_pair(g_fx.sv, IPC_SOCK_STREAM));
    in_dir(g_fx.file, sizeof g_fx.file, "file");

    for (i = 0; i < sizeof g_makers / sizeof g_makers[0]; i++) {
        int fds, maps, names, files, k, rc = -1;
        /* once unsqueezed first: what the C library sets up lazily (a thread stack it keeps
           for reuse, say) is not a leak */
        if (g_makers[i].prep) g_makers[i].prep();
        if ((rc = g_makers[i].make()) < 0)
            th_fail(__FILE__, __LINE__, "%s: %d (%s)", g_makers[i].what, rc, ipc_strerror(rc));
        fds = th_fd_count();
        maps = th_maps_now();
        names = my_shm_names();
        files = dir_entries(g_dir);
        if (g_makers[i].prep) g_makers[i].prep();
        fds = th_fd_count();
        files = dir_entries(g_dir);
        for (k = 0; k <= 8; k++) {
            fd_squeeze(k);
            rc = g_makers[i].make();
            fd_unsqueeze();
            if (rc >= 0 && g_makers[i].prep == prep_stale) files = dir_entries(g_dir); /* taken */
            if (th_fd_count() != fds || th_maps_now() != maps || my_shm_names() != names ||
                dir_entries(g_dir) != files)
                th_fail(__FILE__, __LINE__,
                        "%s with %d free fds (%d: %s) left fds %d -> %d, maps %d -> %d, "
                        "names %d -> %d, files %d -> %d",
                        g_makers[i].what, k, rc, ipc_strerror(rc), fds, th_fd_count(), maps,
                        th_maps_now(), names, my_shm_names(), files, dir_entries(g_dir));
            if (rc >= 0) break;
            if (rc != -EMFILE)
                th_fail(__FILE__, __LINE__, "%s with %d free fds: %d (%s), want -EMFILE",
                        g_makers[i].what, k, rc, ipc_strerror(rc));
        }
        if (rc < 0) th_fail(__FILE__, __LINE__, "%s: no success with 8 free fds", g_makers[i].what);
        if (k == 0 && g_makers[i].make != mk_proc_open)
            th_fail(__FILE__, __LINE__, "%s succeeded without a free fd", g_makers[i].what);
    }
    /* the connection that could not be accepted was, later; nothing else is queued */
    CHECK_ERR(ipc_sock_accept(g_fx.acc_l, NULL, 0), -EAGAIN);
    c = g_fx.acc_c;
    close(c);
    close(g_fx.acc_l);
    close(g_fx.conn_l);
    close(g_fx.sv[0]);
    close(g_fx.sv[1]);
    close(g_fx.rfifo);
    CHECK_OK(ipc_sem_close(sem));
    CHECK_OK(ipc_mq_close(q));
    CHECK_OK(ipc_shm_close(&shm));
    CHECK_OK(ipc_ring_close(&g_fx.ring));
}

TEST_T(faults_fd_table_full_every_creator, 20000) {
    /* /dev/shm names of the test process, which the runner sweeps whatever happens */
    g_test_pid = (long)getpid();
    th_name(g_fx.ring_name, sizeof g_fx.ring_name, "ring");
    th_name(g_fx.name, sizeof g_fx.name, "fresh");
    th_name(g_fx.shm_name, sizeof g_fx.shm_name, "shm");
    th_name(g_mq_names[0], sizeof g_mq_names[0], "mq");
    th_name(g_mq_names[1], sizeof g_mq_names[1], "mqnew");
    th_name(g_sem_names[0], sizeof g_sem_names[0], "sem");
    th_name(g_sem_names[1], sizeof g_sem_names[1], "semnew");
    make_dir();
    guarded(fd_limit_body, NULL, 18000);
}

/* ---- 4. a storm of signals from another process during timed waits ---- */

#define STORM_WAIT    (200 * MS)
#define STORM_GROUPS  3
#define STORM_WAITERS (2 * STORM_GROUPS) /* each group once without SA_RESTART, once with */

typedef struct storm {
    unsigned char mutex[64] __attribute__((aligned(64))); /* held by the hammer */
    uint32_t held;                                        /* the hammer holds its locks */
    uint32_t stop;
    pid_t hammer;
    pid_t waiter[STORM_WAITERS];
    uint32_t done[STORM_WAITERS];
    int mq_empty, mq_full; /* opened by each waiter: these are the parent's, unused */
    char lockfile[256], fifo[256];
} storm;

static storm *g_st;
static volatile sig_atomic_t g_hits;
static int64_t g_took; /* how long the last op's wait took */

static void on_storm(int sig) {
    (void)sig;
    g_hits = g_hits + 1;
}

static void sleep_us(long us) {
    struct timespec ts;
    ts.tv_sec = 0;
    ts.tv_nsec = us * 1000;
    nanosleep(&ts, NULL);
}

/* Holds a robust mutex and an OFD lock for the waiters to time out on, and signals every
   waiter still waiting, about every 100 us, until told to stop. */
static void storm_hammer(void *arg) {
    int fd = open(g_st->lockfile, O_RDWR | O_CLOEXEC), i;
    (void)arg;
    CHECK(fd >= 0);
    CHECK_OK(ipc_mutex_lock((ipc_mutex *)(void *)g_st->mutex, SEC));
    CHECK_OK(ipc_lock_acquire(fd, IPC_LOCK_EXCLUSIVE, 0, 0, 0));
    __atomic_store_n(&g_st->held, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&g_st->stop, __ATOMIC_ACQUIRE)) {
        for (i = 0; i < STORM_WAITERS; i++) {
            pid_t p = __atomic_load_n(&g_st->waiter[i], __ATOMIC_ACQUIRE);
            if (p > 0 && !__atomic_load_n(&g_st->done[i], __ATOMIC_ACQUIRE)) kill(p, SIGUSR1);
        }
        sleep_us(100);
    }
    CHECK_OK(ipc_mutex_unlock((ipc_mutex *)(void *)g_st->mutex));
}

#define TIMED(call)                                                                                \
    do {                                                                                           \
        int64_t t0_ = ipc_time_now();                                                              \
        r = (int)(call);                                                                           \
        g_took = ipc_time_now() - t0_;                                                             \
    } while (0)

static int op_ring_recv(void) {
    ipc_ring_opts o = ring_opts(4 * KiB, 0);
    ipc_ring c, p;
    char b[8];
    int r;
    CHECK_OK(ipc_ring_create(&c, NULL, IPC_CONSUMER, &o));
    CHECK_OK(ipc_ring_attach_fd(&p, ipc_ring_fd(&c), IPC_PRODUCER));
    TIMED(ipc_ring_recv(&c, b, sizeof b, STORM_WAIT));
    ipc_ring_close(&p);
    ipc_ring_close(&c);
    return r;
}

static int op_ring_send_full(void) {
    ipc_ring_opts o = ring_opts(4 * KiB, 0);
    ipc_ring c, p;
    int r;
    CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
    CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&p), IPC_CONSUMER));
    while (ipc_ring_send(&p, "0123456789abcdef", 16, 0) == 0) {
    }
    TIMED(ipc_ring_send(&p, "x", 1, STORM_WAIT));
    ipc_ring_close(&p);
    ipc_ring_close(&c);
    return r;
}

static int op_ring_recv_mpmc(void) {
    ipc_ring_opts o = ring_opts(4 * KiB, IPC_RING_MPMC);
    ipc_ring h;
    char b[256];
    int r;
    CHECK_OK(ipc_ring_create(&h, NULL, IPC_PRODUCER | IPC_CONSUMER, &o));
    TIMED(ipc_ring_recv(&h, b, sizeof b, STORM_WAIT));
    ipc_ring_close(&h);
    return r;
}

static int op_ring_recv_broadcast(void) {
    ipc_ring_opts o = ring_opts(4 * KiB, IPC_RING_BROADCAST);
    ipc_ring p, c;
    char b[256];
    int r;
    CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
    CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&p), IPC_CONSUMER));
    TIMED(ipc_ring_recv(&c, b, sizeof b, STORM_WAIT));
    ipc_ring_close(&c);
    ipc_ring_close(&p);
    return r;
}

static int op_futex(void) {
    static uint32_t word;
    int r;
    TIMED(ipc_futex_wait(&word, 0, STORM_WAIT));
    return r;
}

static int op_mq_recv(void) {
    char b[64];
    int q = ipc_mq_open(g_mq_names[0], IPC_MQ_READ), r;
    CHECK_OK(q);
    TIMED(ipc_mq_recv(q, b, sizeof b, NULL, STORM_WAIT));
    ipc_mq_close(q);
    return r;
}

static int op_mq_send_full(void) {
    int q = ipc_mq_open(g_mq_names[1], IPC_MQ_WRITE), r;
    CHECK_OK(q);
    TIMED(ipc_mq_send(q, "x", 1, 0, STORM_WAIT));
    ipc_mq_close(q);
    return r;
}

static int op_msgq_recv(void) {
    struct {
        long type;
        char text[64];
    } m;
    int r;
    TIMED(ipc_msgq_recv(g_msgq_id, &m, sizeof m.text, 0, 0, STORM_WAIT));
    return r;
}

static int op_semset(void) {
    ipc_semop take = {0, -1, 0};
    int r;
    TIMED(ipc_semset_op(g_semset_id, &take, 1, STORM_WAIT));
    return r;
}

static int op_sem_unnamed(void) {
    static unsigned char mem[64] __attribute__((aligned(64)));
    ipc_sem *s;
    int r;
    CHECK_OK(ipc_sem_init(mem, 0, &s));
    TIMED(ipc_sem_wait(s, STORM_WAIT));
    ipc_sem_destroy(s);
    return r;
}

static int op_mutex(void) {
    int r;
    TIMED(ipc_mutex_lock((ipc_mutex *)(void *)g_st->mutex, STORM_WAIT));
    return r;
}

static int op_cond(void) {
    static unsigned char mm[64] __attribute__((aligned(64)));
    static unsigned char cm[64] __attribute__((aligned(64)));
    ipc_mutex *m;
    ipc_cond *c;
    int r;
    CHECK_OK(ipc_mutex_init(mm, &m));
    CHECK_OK(ipc_cond_init(cm, &c));
    CHECK_OK(ipc_mutex_lock(m, 0));
    TIMED(ipc_cond_wait(c, m, STORM_WAIT));
    CHECK_OK(ipc_mutex_unlock(m)); /* relocked on timeout */
    ipc_cond_destroy(c);
    ipc_mutex_destroy(m);
    return r;
}

static int op_event(void) {
    int fd = ipc_event_open(0, 0), r;
    CHECK_OK(fd);
    TIMED(ipc_event_wait(fd, NULL, STORM_WAIT));
    close(fd);
    return r;
}

static int op_read_some(void) {
    ipc_pipe p;
    char b[16];
    int r;
    CHECK_OK(ipc_pipe_open(&p, NULL));
    TIMED(ipc_fd_read_some(p.rfd, b, sizeof b, STORM_WAIT));
    ipc_pipe_close(&p);
    return r;
}

/* EINTR in the middle of a read: 3 of 10 bytes are there, the call must keep them. */
static int op_read_exact_partial(void) {
    ipc_pipe p;
    char b[16];
    size_t done = 0;
    int r;
    CHECK_OK(ipc_pipe_open(&p, NULL));
    CHECK_EQ(write(p.wfd, "abc", 3), 3);
    TIMED(ipc_fd_read_exact(p.rfd, b, 10, STORM_WAIT, &done));
    CHECK_EQ(done, 3);
    CHECK(memcmp(b, "abc", 3) == 0);
    ipc_pipe_close(&p);
    return r;
}

static int op_write_all_full(void) {
    static char big[256 * 1024];
    ipc_pipe p;
    size_t done = 0;
    int r;
    CHECK_OK(ipc_pipe_open(&p, NULL));
    TIMED(ipc_fd_write_all(p.wfd, big, sizeof big, STORM_WAIT, &done));
    CHECK(done > 0 && done < sizeof big);
    CHECK_EQ(done, (size_t)ipc_pipe_capacity(p.rfd));
    ipc_pipe_close(&p);
    return r;
}

static int op_sock_recv(void) {
    int sv[2], r;
    char b[16];
    CHECK_OK(ipc_sock_pair(sv, IPC_SOCK_STREAM));
    TIMED(ipc_sock_recv(sv[0], b, sizeof b, STORM_WAIT));
    close(sv[0]);
    close(sv[1]);
    return r;
}

static int op_accept(void) {
    char ep[64];
    int l, r;
    snprintf(ep, sizeof ep, "unix:@ipct-faults-%ld-storm", (long)getpid());
    CHECK_OK(l = ipc_sock_listen(ep, NULL));
    TIMED(ipc_sock_accept(l, NULL, STORM_WAIT));
    close(l);
    return r;
}

/* A frame cut short: its header and 3 of 10 payload bytes arrived. */
static int op_frame_partial(void) {
    static const unsigned char part[] = {10, 0, 0, 0, 'a', 'b', 'c'};
    ipc_frame f;
    char b[16];
    int sv[2], r;
    CHECK_OK(ipc_sock_pair(sv, IPC_SOCK_STREAM));
    CHECK_OK(ipc_frame_init(&f, sv[0], NULL));
    CHECK_EQ(write(sv[1], part, sizeof part), (ssize_t)sizeof part);
    TIMED(ipc_frame_recv(&f, b, sizeof b, STORM_WAIT));
    CHECK_EQ(ipc_frame_pending(&f), 10); /* kept, for the next call */
    close(sv[0]);
    close(sv[1]);
    return r;
}

static int op_file_lock(void) {
    int fd = open(g_st->lockfile, O_RDWR | O_CLOEXEC), r;
    CHECK(fd >= 0);
    TIMED(ipc_lock_acquire(fd, IPC_LOCK_EXCLUSIVE, 0, 0, STORM_WAIT));
    close(fd);
    return r;
}

static int op_signal_wait(void) {
    int r;
    TIMED(ipc_signal_wait(IPC_SIGBIT(SIGUSR2), NULL, STORM_WAIT));
    return r;
}

static int op_signal_read(void) {
    int fd = ipc_signal_fd(IPC_SIGBIT(SIGUSR2)), r;
    CHECK_OK(fd);
    TIMED(ipc_signal_read(fd, NULL, STORM_WAIT));
    close(fd);
    return r;
}

static int op_proc_exited(void) {
    ipc_proc p;
    int r = ipc_proc_open(&p, g_st->hammer);
    if (r == -ENOSYS) return 1; /* no pidfds: not applicable */
    CHECK_OK(r);
    TIMED(ipc_proc_exited(&p, STORM_WAIT));
    ipc_proc_close(&p);
    return r;
}

static int op_fifo_open_write(void) {
    int r;
    TIMED(ipc_fifo_open(g_st->fifo, IPC_FIFO_WRITE, STORM_WAIT)); /* no reader comes */
    return r;
}

static int op_pty_read(void) {
    ipc_pty p;
    char b[16];
    int r;
    CHECK_OK(ipc_pty_open(&p, NULL));
    TIMED(ipc_pty_read(&p, b, sizeof b, STORM_WAIT));
    ipc_pty_close(&p);
    return r;
}

static const struct {
    const char *what;
    int (*op)(void);
} g_ops[] = {
    {"ipc_ring_recv spsc", op_ring_recv},
    {"ipc_ring_send spsc full", op_ring_send_full},
    {"ipc_ring_recv mpmc", op_ring_recv_mpmc},
    {"ipc_ring_recv broadcast", op_ring_recv_broadcast},
    {"ipc_futex_wait", op_futex},
    {"ipc_mq_recv", op_mq_recv},
    {"ipc_mq_send full", op_mq_send_full},
    {"ipc_msgq_recv", op_msgq_recv},
    {"ipc_semset_op", op_semset},
    {"ipc_sem_wait", op_sem_unnamed},
    {"ipc_mutex_lock", op_mutex},
    {"ipc_cond_wait", op_cond},
    {"ipc_event_wait", op_event},
    {"ipc_fd_read_some", op_read_some},
    {"ipc_fd_read_exact partial", op_read_exact_partial},
    {"ipc_fd_write_all full pipe", op_write_all_full},
    {"ipc_sock_recv", op_sock_recv},
    {"ipc_sock_accept", op_accept},
    {"ipc_frame_recv partial", op_frame_partial},
    {"ipc_lock_acquire", op_file_lock},
    {"ipc_signal_wait", op_signal_wait},
    {"ipc_signal_read", op_signal_read},
    {"ipc_proc_exited", op_proc_exited},
    {"ipc_fifo_open write", op_fifo_open_write},
    {"ipc_pty_read", op_pty_read},
};

static void storm_waiter(void *arg) {
    int w = *(const int *)arg, restart = w >= STORM_GROUPS, first;
    struct sigaction sa;
    size_t i;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_storm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = restart ? SA_RESTART : 0;
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    __atomic_store_n(&g_st->waiter[w], getpid(), __ATOMIC_RELEASE);
    while (g_hits == 0) /* the storm has reached us */
        sleep_us(100);
    first = g_hits;
    for (i = (size_t)(w % STORM_GROUPS); i < sizeof g_ops / sizeof g_ops[0]; i += STORM_GROUPS) {
        int hits = g_hits, r = g_ops[i].op();
        if (r == 1) continue;
        if (r != -ETIMEDOUT || g_took < STORM_WAIT || g_took >= 2 * SEC)
            th_fail(__FILE__, __LINE__, "%s%s: %d (%s) after %.1f ms, %d signals in between",
                    g_ops[i].what, restart ? " (SA_RESTART)" : "", r, ipc_strerror(r),
                    (double)g_took / 1e6, (int)(g_hits - hits));
    }
    /* the storm went on through the waits (not necessarily through each: the machine may
       be busy enough to keep the hammer off a CPU for 200 ms) */
    CHECK(g_hits - first > STORM_GROUPS);
    __atomic_store_n(&g_st->done[w], 1, __ATOMIC_RELEASE);
}

static void storm_body(void *arg) {
    pid_t pid[STORM_WAITERS];
    int idx[STORM_WAITERS], i, failed = 0;
    (void)arg;
    g_st->hammer = spawn(storm_hammer, NULL);
    while (!__atomic_load_n(&g_st->held, __ATOMIC_ACQUIRE))
        th_sleep_ms(1);
    for (i = 0; i < STORM_WAITERS; i++) {
        idx[i] = i;
        pid[i] = spawn(storm_waiter, &idx[i]);
    }
    for (i = 0; i < STORM_WAITERS; i++) {
        int code = th_join(pid[i], 15000);
        if (code != 0) {
            fprintf(stderr, "    waiter %d ended with %d\n", i, code);
            failed = 1;
        }
    }
    __atomic_store_n(&g_st->stop, 1, __ATOMIC_RELEASE);
    join_ok(g_st->hammer, "hammer");
    CHECK(!failed);
}

/* Every timed wait of the library, hammered by another process with signals (handled with
   and without SA_RESTART): -ETIMEDOUT after the 200 ms asked, never much later, and never
   an -EINTR or an early return. */
TEST_T(faults_signal_storm_from_another_process, 20000) {
    ipc_mq_opts one = {1, 64, 0, 0};
    ipc_mutex *m;
    int q;
    g_st = (storm *)th_shared_map(sizeof *g_st);
    CHECK_OK(ipc_mutex_init(g_st->mutex, &m));
    make_dir();
    in_dir(g_st->lockfile, sizeof g_st->lockfile, "lock");
    CHECK_EQ(close(open(g_st->lockfile, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)), 0);
    in_dir(g_st->fifo, sizeof g_st->fifo, "fifo");
    CHECK_OK(ipc_fifo_create(g_st->fifo, 0));
    th_name(g_mq_names[0], sizeof g_mq_names[0], "empty");
    th_name(g_mq_names[1], sizeof g_mq_names[1], "full");
    CHECK_OK(q = ipc_mq_create(g_mq_names[0], &one));
    ipc_mq_close(q);
    CHECK_OK(q = ipc_mq_create(g_mq_names[1], &one));
    CHECK_OK(ipc_mq_send(q, "f", 1, 0, 0));
    ipc_mq_close(q);
    CHECK_OK(g_msgq_id = ipc_msgq_create(0, 0));
    CHECK_OK(g_semset_id = ipc_semset_create(0, 1, 0));
    guarded(storm_body, NULL, 18000);
    th_shared_unmap(g_st, sizeof *g_st);
}

/* ---- 5. names removed under waiters ---- */

typedef struct removal {
    uint32_t ready[8];
    char ring[64], fifo[256], sock[256];
} removal;

static removal *g_rm;

static void mark_ready(int i) {
    __atomic_store_n(&g_rm->ready[i], 1, __ATOMIC_RELEASE);
}

static void wait_ready(int i) {
    int64_t dl = ipc_deadline_make(5 * SEC);
    while (!__atomic_load_n(&g_rm->ready[i], __ATOMIC_ACQUIRE)) {
        if (ipc_deadline_left(dl) == 0) th_fail(__FILE__, __LINE__, "waiter %d never ready", i);
        th_sleep_ms(1);
    }
}

static void rm_mq_waiter(void *arg) {
    char b[64];
    unsigned prio = 0;
    int q = ipc_mq_open(g_mq_names[0], IPC_MQ_READ);
    ssize_t n;
    (void)arg;
    CHECK_OK(q);
    mark_ready(0);
    n = ipc_mq_recv(q, b, sizeof b, &prio, 5 * SEC);
    CHECK_EQ(n, 4);
    CHECK(memcmp(b, "kept", 4) == 0 && prio == 7);
    CHECK_ERR(ipc_mq_recv(q, b, sizeof b, NULL, 0), -EAGAIN); /* not the new queue's */
    ipc_mq_close(q);
}

static void rm_sem_waiter(void *arg) {
    ipc_sem *s;
    (void)arg;
    CHECK_OK(ipc_sem_open(&s, g_sem_names[0]));
    mark_ready(1);
    CHECK_OK(ipc_sem_wait(s, 5 * SEC));
    CHECK_ERR(ipc_sem_wait(s, 0), -EAGAIN);
    ipc_sem_close(s);
}

static void rm_ring_waiter(void *arg) {
    ipc_ring c;
    char b[16];
    (void)arg;
    CHECK_OK(ipc_ring_open(&c, g_rm->ring, IPC_CONSUMER));
    mark_ready(2);
    CHECK_EQ(ipc_ring_recv(&c, b, sizeof b, 5 * SEC), 4);
    CHECK(memcmp(b, "kept", 4) == 0);
    CHECK_ERR(ipc_ring_recv(&c, b, sizeof b, 5 * SEC), -EPIPE);
    ipc_ring_close(&c);
}

static void rm_fifo_waiter(void *arg) {
    char b[8];
    int fd = ipc_fifo_open(g_rm->fifo, IPC_FIFO_READ, 0);
    (void)arg;
    CHECK_OK(fd);
    mark_ready(3);
    CHECK_EQ(ipc_fd_read_exact(fd, b, 4, 5 * SEC, NULL), 4);
    CHECK(memcmp(b, "kept", 4) == 0);
    CHECK_ERR(ipc_fd_read_some(fd, b, sizeof b, 5 * SEC), -EPIPE);
    close(fd);
}

static void rm_sock_waiter(void *arg) {
    char b[8];
    int fd = ipc_sock_connect(g_rm->sock, NULL, SEC);
    (void)arg;
    CHECK_OK(fd);
    mark_ready(4);
    CHECK_EQ(ipc_fd_read_exact(fd, b, 4, 5 * SEC, NULL), 4);
    CHECK(memcmp(b, "kept", 4) == 0);
    close(fd);
}

static void removal_body(void *arg) {
    ipc_ring_opts o = ring_opts(4 * KiB, 0);
    ipc_mq_opts mo = {4, 64, 0, 0};
    pid_t pid[5];
    ipc_ring p, r;
    ipc_sem *s, *s2;
    int q, q2, w, l, a, i;
    (void)arg;
    CHECK_OK(q = ipc_mq_create(g_mq_names[0], &mo));
    CHECK_OK(ipc_sem_create(&s, g_sem_names[0], 0, 0));
    CHECK_OK(ipc_ring_create(&p, g_rm->ring, IPC_PRODUCER, &o));
    CHECK_OK(ipc_fifo_create(g_rm->fifo, 0));
    CHECK_OK(l = ipc_sock_listen(g_rm->sock, NULL));
    pid[0] = spawn(rm_mq_waiter, NULL);
    pid[1] = spawn(rm_sem_waiter, NULL);
    pid[2] = spawn(rm_ring_waiter, NULL);
    pid[3] = spawn(rm_fifo_waiter, NULL);
    pid[4] = spawn(rm_sock_waiter, NULL);
    for (i = 0; i < 5; i++)
        wait_ready(i);
    CHECK_OK(w = ipc_fifo_open(g_rm->fifo, IPC_FIFO_WRITE, SEC));
    th_sleep_ms(50); /* let them block */

    /* every name goes while its waiter waits */
    CHECK_OK(ipc_mq_unlink(g_mq_names[0]));
    CHECK_OK(ipc_sem_unlink(g_sem_names[0]));
    CHECK_OK(ipc_ring_unlink(g_rm->ring));
    CHECK_OK(ipc_fifo_unlink(g_rm->fifo));
    CHECK_OK(ipc_sock_unlink(g_rm->sock));
    /* the names are gone for newcomers */
    CHECK_ERR(ipc_mq_open(g_mq_names[0], IPC_MQ_READ), -ENOENT);
    CHECK_ERR(ipc_sem_open(&s2, g_sem_names[0]), -ENOENT);
    CHECK_ERR(ipc_ring_open(&r, g_rm->ring, IPC_CONSUMER), -ENOENT);
    CHECK_ERR(ipc_fifo_open(g_rm->fifo, IPC_FIFO_READ, 0), -ENOENT);
    CHECK_ERR(ipc_sock_connect(g_rm->sock, NULL, SEC), -ENOENT);
    /* a new object under the old name is another object */
    CHECK_OK(q2 = ipc_mq_create(g_mq_names[0], &mo));
    CHECK_OK(ipc_mq_send(q2, "new", 3, 0, 0));

    /* the objects live on for who holds them: each waiter gets its message */
    CHECK_OK(ipc_mq_send(q, "kept", 4, 7, SEC));
    CHECK_OK(ipc_sem_post(s));
    CHECK_OK(ipc_ring_send(&p, "kept", 4, SEC));
    CHECK_OK(ipc_ring_close(&p));
    CHECK_EQ(ipc_fd_write_all(w, "kept", 4, SEC, NULL), 4);
    close(w);
    CHECK_OK(a = ipc_sock_accept(l, NULL, SEC)); /* it had connected before the unlink */
    CHECK_EQ(ipc_sock_send(a, "kept", 4, SEC, NULL), 4);
    for (i = 0; i < 5; i++)
        join_ok(pid[i], "removal waiter");
    close(a);
    close(l);
    ipc_sem_close(s);
    ipc_mq_close(q);
    ipc_mq_close(q2);
    CHECK_OK(ipc_mq_unlink(g_mq_names[0]));
}

/* A POSIX queue, named semaphore, named ring, FIFO or unix socket whose name is removed
   while a process waits on it: the waiter keeps its object and gets what is sent through
   it; only newcomers see -ENOENT. (System V objects differ: removal is destruction, and
   waiters get -EIDRM; see msgq_removal_wakes_waiters, semset_remove_wakes_waiters.) */
TEST(faults_names_removed_under_waiters) {
    g_rm = (removal *)th_shared_map(sizeof *g_rm);
    make_dir();
    th_name(g_mq_names[0], sizeof g_mq_names[0], "mq");
    th_name(g_sem_names[0], sizeof g_sem_names[0], "sem");
    th_name(g_rm->ring, sizeof g_rm->ring, "ring");
    in_dir(g_rm->fifo, sizeof g_rm->fifo, "fifo");
    snprintf(g_rm->sock, sizeof g_rm->sock, "unix:%s/sock", g_dir);
    guarded(removal_body, NULL, 9000);
    th_shared_unmap(g_rm, sizeof *g_rm);
}

/* A System V queue or semaphore set removed before the call: the id names nothing any
   more, and every call says so with -EINVAL (a caller blocked at the removal gets -EIDRM). */
TEST(faults_sysv_ids_used_after_removal) {
    struct {
        long type;
        char text[16];
    } m = {1, "x"};
    ipc_msgq_info in;
    ipc_semop take = {0, -1, 0};
    int q, s;
    CHECK_OK(q = ipc_msgq_create(0, 0));
    CHECK_OK(ipc_msgq_remove(q));
    CHECK_ERR(ipc_msgq_send(q, &m, 1, 0), -EINVAL);
    CHECK_ERR(ipc_msgq_send(q, &m, 1, 50 * MS), -EINVAL);
    CHECK_ERR(ipc_msgq_recv(q, &m, sizeof m.text, 0, 0, 0), -EINVAL);
    CHECK_ERR(ipc_msgq_recv(q, &m, sizeof m.text, 0, 0, 50 * MS), -EINVAL);
    CHECK_ERR(ipc_msgq_stat(q, &in), -EINVAL);
    CHECK_ERR(ipc_msgq_remove(q), -EINVAL);
    CHECK_OK(s = ipc_semset_create(0, 1, 0));
    CHECK_OK(ipc_semset_remove(s));
    CHECK_ERR(ipc_semset_op(s, &take, 1, 0), -EINVAL);
    CHECK_ERR(ipc_semset_op(s, &take, 1, 50 * MS), -EINVAL);
    CHECK_ERR(ipc_semset_get(s, 0), -EINVAL);
    CHECK_ERR(ipc_semset_remove(s), -EINVAL);
}

/* ---- 6. names left by a process killed with SIGKILL ---- */

typedef struct stale {
    uint32_t ready;
    pid_t pid;
    char ring[64], shm[64], fifo[256], sock[256], pidfile[256];
} stale;

static stale *g_sl;

/* Makes one of everything by name, puts something in, then waits to be killed. */
static void doomed_owner(void *arg) {
    ipc_ring_opts o = ring_opts(4 * KiB, 0);
    ipc_mq_opts mo = {4, 64, 0, 0};
    ipc_ring p;
    ipc_shm s;
    ipc_sem *sem;
    int q;
    (void)arg;
    CHECK_OK(ipc_ring_create(&p, g_sl->ring, IPC_PRODUCER, &o));
    CHECK_OK(ipc_ring_send(&p, "one", 3, 0));
    CHECK_OK(ipc_ring_send(&p, "two", 3, 0));
    CHECK_OK(ipc_shm_create(&s, g_sl->shm, 4096, NULL));
    memcpy(s.addr, "data", 4);
    CHECK_OK(q = ipc_mq_create(g_mq_names[0], &mo));
    CHECK_OK(ipc_mq_send(q, "left", 4, 3, 0));
    CHECK_OK(ipc_sem_create(&sem, g_sem_names[0], 2, 0));
    CHECK_OK(ipc_fifo_create(g_sl->fifo, 0));
    CHECK_OK(ipc_sock_listen(g_sl->sock, NULL));
    CHECK_OK(ipc_lock_pidfile(g_sl->pidfile, NULL));
    __atomic_store_n(&g_sl->ready, 1, __ATOMIC_RELEASE);
    for (;;)
        th_sleep_ms(100);
}

static void stale_body(void *arg) {
    ipc_ring_opts o = ring_opts(4 * KiB, 0);
    ipc_ring c, p;
    ipc_shm s;
    ipc_sem *sem;
    pid_t pid, holder = 1;
    char b[64];
    unsigned prio = 0;
    int q, fd, code;
    (void)arg;
    pid = spawn(doomed_owner, NULL);
    while (!__atomic_load_n(&g_sl->ready, __ATOMIC_ACQUIRE))
        th_sleep_ms(1);
    CHECK_EQ(kill(pid, SIGKILL), 0);
    code = th_join(pid, JOIN_MS);
    CHECK_EQ(code, 128 + SIGKILL);

    /* ring: the name stays taken; what was committed arrives, then -EPIPE; its role is free */
    CHECK_ERR(ipc_ring_create(&c, g_sl->ring, IPC_CONSUMER, &o), -EEXIST);
    CHECK_OK(ipc_ring_open(&c, g_sl->ring, IPC_CONSUMER));
    CHECK_EQ(ipc_ring_recv(&c, b, sizeof b, SEC), 3);
    CHECK(memcmp(b, "one", 3) == 0);
    CHECK_EQ(ipc_ring_recv(&c, b, sizeof b, SEC), 3);
    CHECK(memcmp(b, "two", 3) == 0);
    CHECK_ERR(ipc_ring_recv(&c, b, sizeof b, 3 * SEC), -EPIPE);
    CHECK_OK(ipc_ring_open(&p, g_sl->ring, IPC_PRODUCER));
    CHECK_OK(ipc_ring_close(&p));
    CHECK_OK(ipc_ring_close(&c));
    CHECK_OK(ipc_ring_unlink(g_sl->ring));
    /* shm: taken, and its content is there */
    CHECK_ERR(ipc_shm_create(&s, g_sl->shm, 4096, NULL), -EEXIST);
    CHECK_OK(ipc_shm_open(&s, g_sl->shm, NULL));
    CHECK(memcmp(s.addr, "data", 4) == 0);
    CHECK_OK(ipc_shm_close(&s));
    CHECK_OK(ipc_shm_unlink(g_sl->shm));
    /* POSIX queue and semaphore: taken, with what they held */
    CHECK_ERR(ipc_mq_create(g_mq_names[0], NULL), -EEXIST);
    CHECK_OK(q = ipc_mq_open(g_mq_names[0], IPC_MQ_READ));
    CHECK_EQ(ipc_mq_recv(q, b, sizeof b, &prio, 0), 4);
    CHECK(memcmp(b, "left", 4) == 0 && prio == 3);
    ipc_mq_close(q);
    CHECK_OK(ipc_mq_unlink(g_mq_names[0]));
    CHECK_ERR(ipc_sem_create(&sem, g_sem_names[0], 0, 0), -EEXIST);
    CHECK_OK(ipc_sem_open(&sem, g_sem_names[0]));
    CHECK_EQ(ipc_sem_value(sem), 2);
    ipc_sem_close(sem);
    CHECK_OK(ipc_sem_unlink(g_sem_names[0]));
    /* FIFO: never reused silently; nobody reads it, so a writer waits in vain */
    CHECK_ERR(ipc_fifo_create(g_sl->fifo, 0), -EEXIST);
    CHECK_ERR(ipc_fifo_open(g_sl->fifo, IPC_FIFO_WRITE, 0), -EAGAIN);
    CHECK_OK(fd = ipc_fifo_open(g_sl->fifo, IPC_FIFO_READ, 0));
    CHECK_ERR(ipc_fd_read_some(fd, b, sizeof b, 0), -EAGAIN);
    close(fd);
    CHECK_OK(ipc_fifo_unlink(g_sl->fifo));
    CHECK_OK(ipc_fifo_create(g_sl->fifo, 0));
    CHECK_OK(ipc_fifo_unlink(g_sl->fifo));
    /* unix socket: the dead server's file refuses connections, so it is replaced */
    CHECK_ERR(ipc_sock_connect(g_sl->sock, NULL, SEC), -ECONNREFUSED);
    CHECK_OK(fd = ipc_sock_listen(g_sl->sock, NULL));
    close(fd);
    CHECK_OK(ipc_sock_unlink(g_sl->sock));
    /* pid file: not locked any more, so it is taken over */
    CHECK_OK(fd = ipc_lock_pidfile(g_sl->pidfile, &holder));
    CHECK_EQ(holder, 0);
    close(fd);
    CHECK_EQ(unlink(g_sl->pidfile), 0);
}

TEST(faults_names_left_by_sigkill) {
    g_sl = (stale *)th_shared_map(sizeof *g_sl);
    make_dir();
    th_name(g_sl->ring, sizeof g_sl->ring, "ring");
    th_name(g_sl->shm, sizeof g_sl->shm, "shm");
    th_name(g_mq_names[0], sizeof g_mq_names[0], "mq");
    th_name(g_sem_names[0], sizeof g_sem_names[0], "sem");
    in_dir(g_sl->fifo, sizeof g_sl->fifo, "fifo");
    snprintf(g_sl->sock, sizeof g_sl->sock, "unix:%s/sock", g_dir);
    in_dir(g_sl->pidfile, sizeof g_sl->pidfile, "pid");
    guarded(stale_body, NULL, 9000);
    th_shared_unmap(g_sl, sizeof *g_sl);
}

/* ---- 7. symlinks planted at names ---- */

#define PRECIOUS "precious, not to be touched"

/* A regular file with known content and mode, the target of planted links. */
static void make_target(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, PRECIOUS, sizeof PRECIOUS - 1), (ssize_t)sizeof PRECIOUS - 1);
    CHECK_EQ(fchmod(fd, 0640), 0);
    close(fd);
}

static void target_intact(const char *path) {
    char b[64];
    struct stat st;
    int fd;
    CHECK_EQ(lstat(path, &st), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0640);
    CHECK_EQ(st.st_size, (off_t)sizeof PRECIOUS - 1);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(read(fd, b, sizeof b), (ssize_t)sizeof PRECIOUS - 1);
    close(fd);
    CHECK(memcmp(b, PRECIOUS, sizeof PRECIOUS - 1) == 0);
}

static void still_link(const char *path) {
    struct stat st;
    CHECK_EQ(lstat(path, &st), 0);
    CHECK(S_ISLNK(st.st_mode));
}

/* Sem file of a name, as the C library keeps it. */
static char *sem_file(char *buf, size_t size, const char *name) {
#ifdef __GLIBC__
    snprintf(buf, size, "/dev/shm/sem.%s", name + 1);
#else
    snprintf(buf, size, "/dev/shm/%s", name + 1);
#endif
    return buf;
}

static void symlink_body(void *arg) {
    char target[256], nowhere[256], p[512], q[512], ep[600], rn[64], sn[64];
    ipc_ring_opts o = ring_opts(4 * KiB, 0);
    ipc_ring r;
    ipc_shm s;
    ipc_sem *sem;
    ipc_pipe e;
    int fds = th_fd_count(), pass, fd;
    (void)arg;
    in_dir(target, sizeof target, "target");
    in_dir(nowhere, sizeof nowhere, "nowhere");
    make_target(target);
    for (pass = 0; pass < 2; pass++) {
        const char *to = pass ? nowhere : target; /* a live link, then a dangling one */
        /* ring and shm names */
        th_name(rn, sizeof rn, "lring");
        th_name(sn, sizeof sn, "lshm");
        CHECK_EQ(symlink(to, shm_path(p, sizeof p, rn)), 0);
        CHECK_EQ(symlink(to, shm_path(q, sizeof q, sn)), 0);
        CHECK_ERR(ipc_ring_create(&r, rn, IPC_PRODUCER, &o), -EEXIST);
        CHECK_ERR(ipc_ring_open(&r, rn, IPC_CONSUMER), -ELOOP);
        CHECK_ERR(ipc_shm_create(&s, sn, 4096, NULL), -EEXIST);
        CHECK_ERR(ipc_shm_open(&s, sn, NULL), -ELOOP);
        still_link(p);
        still_link(q);
        CHECK_EQ(unlink(p), 0);
        CHECK_EQ(unlink(q), 0);
        /* a named semaphore */
        CHECK_EQ(symlink(to, sem_file(p, sizeof p, g_sem_names[0])), 0);
        CHECK_ERR(ipc_sem_create(&sem, g_sem_names[0], 1, 0), -EEXIST);
        still_link(p);
        CHECK_EQ(unlink(p), 0);
        /* a file-backed shm, a FIFO, a pid file */
        CHECK_EQ(symlink(to, in_dir(p, sizeof p, "link")), 0);
        CHECK_ERR(ipc_shm_file_create(&s, p, 4096, NULL), -EEXIST);
        CHECK_ERR(ipc_shm_file_open(&s, p, NULL), -ELOOP);
        CHECK_ERR(ipc_fifo_create(p, 0), -EEXIST);
        CHECK_ERR(ipc_fifo_open(p, IPC_FIFO_READ, 0), -ELOOP);
        CHECK_ERR(ipc_fifo_open(p, IPC_FIFO_WRITE, 0), -ELOOP);
        CHECK_ERR(ipc_fifo_unlink(p), -EINVAL);
        CHECK_ERR(ipc_lock_pidfile(p, NULL), -ELOOP);
        /* unix sockets of every type */
        snprintf(ep, sizeof ep, "unix:%s", p);
        CHECK_ERR(ipc_sock_listen(ep, NULL), -EEXIST);
        {
            ipc_sock_opts d;
            memset(&d, 0, sizeof d);
            d.type = IPC_SOCK_DGRAM;
            CHECK_ERR(ipc_sock_bind(ep, &d), -EEXIST);
            d.type = IPC_SOCK_SEQPACKET;
            CHECK_ERR(ipc_sock_listen(ep, &d), -EEXIST);
        }
        CHECK_ERR(ipc_sock_unlink(ep), -EINVAL);
        still_link(p);
        /* a duplex FIFO pair with a link at its second name: neither FIFO remains */
        CHECK_EQ(symlink(to, in_dir(q, sizeof q, "dx.b2a")), 0);
        CHECK_ERR(ipc_fifo_duplex_create(in_dir(q, sizeof q, "dx"), 0), -EEXIST);
        CHECK(!exists(in_dir(q, sizeof q, "dx.a2b")));
        CHECK_ERR(ipc_fifo_duplex_open(&e, in_dir(q, sizeof q, "dx"), IPC_FIFO_SIDE_A, 0), -ELOOP);
        CHECK(e.rfd == -1 && e.wfd == -1);
        still_link(in_dir(q, sizeof q, "dx.b2a"));
        CHECK_EQ(unlink(q), 0);
        CHECK_EQ(unlink(p), 0);
        if (pass) CHECK(!exists(nowhere)); /* nothing was made through the dangling link */
    }
    target_intact(target);
    /* and a link to a live server's socket is not taken for it */
    snprintf(ep, sizeof ep, "unix:%s", in_dir(p, sizeof p, "live"));
    CHECK_OK(fd = ipc_sock_listen(ep, NULL));
    CHECK_EQ(symlink(p, in_dir(q, sizeof q, "tolive")), 0);
    snprintf(ep, sizeof ep, "unix:%s", q);
    CHECK_ERR(ipc_sock_unlink(ep), -EINVAL);
    CHECK_ERR(ipc_sock_listen(ep, NULL), -EEXIST);
    CHECK(exists(p));
    close(fd);
    CHECK_EQ(th_fd_count(), fds);
}

/* A symlink planted at the name of every kind of named object, pointing at a file of the
   victim's or at nothing: create says -EEXIST, open -ELOOP, remove -EINVAL; the link, its
   target and the place it points to stay as they were. */
TEST(faults_symlinks_at_every_name) {
    make_dir();
    th_name(g_sem_names[0], sizeof g_sem_names[0], "lsem");
    guarded(symlink_body, NULL, 9000);
}

/* ---- 8. zero-length and oversized messages ---- */

/* Every ring kind: 0 bytes is -EINVAL, over max_msg -EMSGSIZE, a buffer too small
   -EMSGSIZE with the message kept; nothing refused shows up, and the next one arrives. */
TEST(faults_ring_sizes_every_kind) {
    static const unsigned kinds[] = {IPC_RING_SPSC, IPC_RING_MPMC, IPC_RING_MPSC,
                                     IPC_RING_BROADCAST};
    static unsigned char big[16 * 1024], back[16 * 1024];
    size_t i, j, maxm;
    for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        ipc_ring_opts o = ring_opts(8 * KiB, kinds[i] ? kinds[i] | IPC_RING_MSG(1000) : 0);
        ipc_ring p, c;
        void *w;
        CHECK_OK(ipc_ring_create(&p, NULL, IPC_PRODUCER, &o));
        CHECK_OK(ipc_ring_attach_fd(&c, ipc_ring_fd(&p), IPC_CONSUMER));
        maxm = ipc_ring_max_msg(&p);
        CHECK(maxm > 0 && maxm < sizeof big);
        for (j = 0; j < maxm; j++)
            big[j] = (unsigned char)(j * 7 + i);
        CHECK_ERR(ipc_ring_send(&p, big, 0, 0), -EINVAL);
        CHECK_ERR(ipc_ring_reserve(&p, 0, &w, 0), -EINVAL);
        CHECK_ERR(ipc_ring_send(&p, big, maxm + 1, 0), -EMSGSIZE);
        CHECK_ERR(ipc_ring_send(&p, big, maxm + 1, IPC_FOREVER), -EMSGSIZE); /* no wait */
        CHECK_ERR(ipc_ring_send(&p, big, (size_t)-1, 0), -EMSGSIZE);
        CHECK_ERR(ipc_ring_reserve(&p, maxm + 1, &w, 0), -EMSGSIZE);
        CHECK_ERR(ipc_ring_recv(&c, back, sizeof back, 0), -EAGAIN); /* none of them */
        CHECK_OK(ipc_ring_send(&p, big, maxm, 0));
        CHECK_ERR(ipc_ring_recv(&c, back, maxm - 1, 0), -EMSGSIZE);
        CHECK_ERR(ipc_ring_recv(&c, back, maxm - 1, IPC_FOREVER), -EMSGSIZE);
        CHECK_EQ(ipc_ring_recv(&c, back, maxm, 0), (ssize_t)maxm);
        CHECK(memcmp(back, big, maxm) == 0);
        CHECK_OK(ipc_ring_send(&p, "next", 4, 0));
        CHECK_EQ(ipc_ring_recv(&c, back, sizeof back, 0), 4);
        CHECK(memcmp(back, "next", 4) == 0);
        CHECK_ERR(ipc_ring_recv(&c, back, sizeof back, 0), -EAGAIN);
        CHECK_OK(ipc_ring_close(&c));
        CHECK_OK(ipc_ring_close(&p));
    }
}

typedef struct sizes {
    int mq, msgq, dgram[2], seqp[2], udp, pipe[2];
    ipc_sockaddr udp_addr;
} sizes;

static sizes g_sz;

typedef struct smsg {
    long type;
    char text[64];
} smsg;

#define SZ_BIG (8 * 1024 * 1024)

/* The sending process: each refused message first, then what must arrive. */
static void sizes_sender(void *arg) {
    unsigned char *big = (unsigned char *)malloc(SZ_BIG);
    ipc_frame_opts fo = {16, 0}, fa = {0, IPC_FRAME_ATOMIC};
    ipc_frame f, fat;
    smsg m;
    (void)arg;
    CHECK(big != NULL);
    memset(big, 'b', SZ_BIG);
    /* POSIX queue (msg_size 64): empty messages are messages */
    CHECK_ERR(ipc_mq_send(g_sz.mq, big, 65, 0, 0), -EMSGSIZE);
    CHECK_ERR(ipc_mq_send(g_sz.mq, big, (size_t)-1, 0, IPC_FOREVER), -EMSGSIZE);
    CHECK_OK(ipc_mq_send(g_sz.mq, NULL, 0, 0, SEC));
    CHECK_OK(ipc_mq_send(g_sz.mq, big, 64, 0, SEC));
    /* System V queue: empty text too; over msgmax refused */
    m.type = 5;
    memcpy(big, &m.type, sizeof m.type); /* a whole message of that size, type first */
    CHECK_ERR(ipc_msgq_send(g_sz.msgq, big, SZ_BIG - sizeof(long), 0), -EMSGSIZE);
    CHECK_ERR(ipc_msgq_send(g_sz.msgq, &m, (size_t)-1, 0), -EINVAL);
    CHECK_OK(ipc_msgq_send(g_sz.msgq, &m, 0, SEC));
    memcpy(m.text, "after", 5);
    CHECK_OK(ipc_msgq_send(g_sz.msgq, &m, 5, SEC));
    /* unix datagrams: an empty one is sent; one over the socket's limit is not */
    CHECK_ERR(ipc_sock_send(g_sz.dgram[0], big, SZ_BIG, SEC, NULL), -EMSGSIZE);
    CHECK_ERR(ipc_sock_send(g_sz.dgram[0], NULL, 0, SEC, NULL), 0);
    CHECK_ERR(ipc_sock_send(g_sz.dgram[0], big, 100, SEC, NULL), 100); /* read short: lost */
    CHECK_ERR(ipc_sock_send(g_sz.dgram[0], "next", 4, SEC, NULL), 4);
    /* seqpacket: no empty message (it would read as the end); too big refused */
    CHECK_ERR(ipc_sock_send(g_sz.seqp[0], big, 0, SEC, NULL), -EINVAL);
    CHECK_ERR(ipc_sock_send(g_sz.seqp[0], big, SZ_BIG, SEC, NULL), -EMSGSIZE);
    CHECK_ERR(ipc_sock_send(g_sz.seqp[0], "next", 4, SEC, NULL), 4);
    /* UDP: over 65507 bytes refused, empty sent */
    CHECK_ERR(ipc_sock_sendto(g_sz.udp, big, 70000, &g_sz.udp_addr, SEC), -EMSGSIZE);
    CHECK_ERR(ipc_sock_sendto(g_sz.udp, NULL, 0, &g_sz.udp_addr, SEC), 0);
    CHECK_ERR(ipc_sock_sendto(g_sz.udp, "next", 4, &g_sz.udp_addr, SEC), 4);
    /* frames over a pipe: empty frames exist; over max_msg (or PIPE_BUF when atomic) not */
    CHECK_OK(ipc_frame_init(&f, g_sz.pipe[1], &fo));
    CHECK_OK(ipc_frame_init(&fat, g_sz.pipe[1], &fa));
    CHECK_ERR(ipc_frame_send(&f, big, 17, SEC), -EMSGSIZE);
    CHECK_ERR(ipc_frame_send(&fat, big, 4093, SEC), -EMSGSIZE);
    CHECK_ERR(ipc_frame_send(&f, NULL, 0, SEC), 0);
    CHECK_ERR(ipc_frame_send(&fat, big, 4092, SEC), 4092);
    CHECK_ERR(ipc_frame_send(&f, "next", 4, SEC), 4);
    free(big);
}

/* The same sizes through the queues, sockets and framing, from another process: refused
   messages never arrive (nothing half-sent), empty ones arrive empty, and the stream goes
   on. */
static void sizes_body(void *arg) {
    ipc_mq_opts mo = {4, 64, 0, 0};
    ipc_sock_opts uo;
    ipc_frame f;
    ipc_frame_opts fo = {8192, 0};
    static char b[8192];
    unsigned prio = 9;
    smsg m;
    (void)arg;
    CHECK_OK(g_sz.mq = ipc_mq_create(g_mq_names[0], &mo));
    g_sz.msgq = g_msgq_id;
    CHECK_OK(ipc_sock_pair(g_sz.dgram, IPC_SOCK_DGRAM));
    CHECK_OK(ipc_sock_pair(g_sz.seqp, IPC_SOCK_SEQPACKET));
    memset(&uo, 0, sizeof uo);
    CHECK_OK(g_sz.udp = ipc_sock_bind("udp:127.0.0.1:0", &uo));
    CHECK_OK(ipc_sock_local(g_sz.udp, &g_sz.udp_addr));
    CHECK_EQ(pipe(g_sz.pipe), 0);
    join_ok(spawn(sizes_sender, NULL), "sender");

    CHECK_ERR(ipc_mq_recv(g_sz.mq, b, 63, NULL, 0), -EMSGSIZE); /* below msg_size: kept */
    CHECK_EQ(ipc_mq_recv(g_sz.mq, b, 64, &prio, 0), 0);
    CHECK_EQ(ipc_mq_recv(g_sz.mq, b, 64, NULL, 0), 64);
    CHECK_ERR(ipc_mq_recv(g_sz.mq, b, 64, NULL, 0), -EAGAIN);

    CHECK_EQ(ipc_msgq_recv(g_sz.msgq, &m, sizeof m.text, 0, 0, 0), 0);
    CHECK_EQ(m.type, 5);
    CHECK_ERR(ipc_msgq_recv(g_sz.msgq, &m, 4, 0, 0, 0), -EMSGSIZE); /* kept */
    CHECK_EQ(ipc_msgq_recv(g_sz.msgq, &m, sizeof m.text, 0, 0, 0), 5);
    CHECK(memcmp(m.text, "after", 5) == 0);

    CHECK_EQ(ipc_sock_recv(g_sz.dgram[1], b, sizeof b, 0), 0);
    CHECK_ERR(ipc_sock_recv(g_sz.dgram[1], b, 10, 0), -EMSGSIZE); /* documented: lost */
    CHECK_EQ(ipc_sock_recv(g_sz.dgram[1], b, sizeof b, 0), 4);
    CHECK(memcmp(b, "next", 4) == 0);
    CHECK_ERR(ipc_sock_recv(g_sz.dgram[1], b, sizeof b, 0), -EAGAIN);

    CHECK_EQ(ipc_sock_recv(g_sz.seqp[1], b, sizeof b, 0), 4);
    CHECK(memcmp(b, "next", 4) == 0);
    CHECK_ERR(ipc_sock_recv(g_sz.seqp[1], b, sizeof b, 0), -EAGAIN);

    CHECK_EQ(ipc_sock_recv(g_sz.udp, b, sizeof b, SEC), 0);
    CHECK_EQ(ipc_sock_recv(g_sz.udp, b, sizeof b, SEC), 4);
    CHECK(memcmp(b, "next", 4) == 0);

    CHECK_OK(ipc_frame_init(&f, g_sz.pipe[0], &fo));
    CHECK_EQ(ipc_frame_recv(&f, b, sizeof b, 0), 0);
    CHECK_ERR(ipc_frame_recv(&f, b, 100, 0), -EMSGSIZE); /* kept */
    CHECK_EQ(ipc_frame_recv(&f, b, sizeof b, 0), 4092);
    CHECK_EQ(ipc_frame_recv(&f, b, sizeof b, 0), 4);
    CHECK(memcmp(b, "next", 4) == 0);
    CHECK_ERR(ipc_frame_recv(&f, b, sizeof b, 0), -EAGAIN);

    close(g_sz.pipe[0]);
    close(g_sz.pipe[1]);
    close(g_sz.udp);
    close(g_sz.seqp[0]);
    close(g_sz.seqp[1]);
    close(g_sz.dgram[0]);
    close(g_sz.dgram[1]);
    ipc_mq_close(g_sz.mq);
}

TEST(faults_message_sizes_queues_sockets_frames) {
    th_name(g_mq_names[0], sizeof g_mq_names[0], "mq");
    CHECK_OK(g_msgq_id = ipc_msgq_create(0, 0));
    guarded(sizes_body, NULL, 9000);
}

/* ---- 9. positions about to wrap ---- */

#define WRAP_MSGS 3000

static int g_wrap_fd;

static size_t wrap_len(uint32_t i, size_t maxm) {
    return 1 + (size_t)(i * 2654435761u % 97u) % (maxm < 200 ? maxm : 200);
}

static void wrap_fill(unsigned char *b, size_t len, uint32_t i) {
    size_t k;
    for (k = 0; k < len; k++)
        b[k] = (unsigned char)(i * 31 + k);
}

static void wrap_producer(void *arg) {
    unsigned char b[256];
    ipc_ring p;
    uint32_t i;
    (void)arg;
    CHECK_OK(ipc_ring_attach_fd(&p, g_wrap_fd, IPC_PRODUCER));
    __atomic_store_n(&g_flag[0], 1, __ATOMIC_RELEASE);
    while (__atomic_load_n(&g_flag[0], __ATOMIC_ACQUIRE) != 2)
        th_sleep_ms(1);
    for (i = 0; i < WRAP_MSGS; i++) {
        size_t len = wrap_len(i, ipc_ring_max_msg(&p));
        wrap_fill(b, len, i);
        CHECK_OK(ipc_ring_send(&p, b, len, 5 * SEC));
    }
    CHECK_OK(ipc_ring_close(&p));
}

/* Positions count bytes (SPSC) or slots and run freely; a record's check word keeps only
   their low 32 bits (SPSC: of position / 8). Where they roll over takes 32 GiB, 4 G
   messages or 2^64 bytes to reach, so an idle ring's positions are set just short of it
   and a producer process streams across: every message arrives whole, in order, once.
   (Slot positions end at 2^62, where their sequence words keep two flag bits: 2^62
   messages are centuries away at any rate, and are not tested.) */
TEST(faults_ring_positions_roll_over) {
    static const struct {
        unsigned kind;
        uint64_t at; /* where the positions roll over; the ring starts 1 KiB or 4 laps short */
    } cases[] = {{IPC_RING_SPSC, (uint64_t)1 << 35},
                 {IPC_RING_SPSC, 0},
                 {IPC_RING_MPMC, (uint64_t)1 << 32},
                 {IPC_RING_MPSC, (uint64_t)1 << 32}};
    size_t k;
    g_flag = (uint32_t *)th_shared_map(4096);
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        unsigned kind = cases[k].kind;
        ipc_ring_opts o = ring_opts(4 * KiB, kind ? kind | IPC_RING_MSG(200) : 0);
        ipc_ring r, c;
        unsigned char b[256], want[256], *m;
        uint64_t w, tail, nslots, slot, i;
        uint32_t hdr, n;
        struct stat st;
        pid_t pid;
        CHECK_OK(ipc_ring_create(&r, NULL, IPC_PRODUCER, &o));
        CHECK((g_wrap_fd = fcntl(ipc_ring_fd(&r), F_DUPFD_CLOEXEC, 0)) >= 0);
        slot = kind ? ipc_ring_max_msg(&r) + 16 : 0;
        CHECK_OK(ipc_ring_close(&r));
        /* rewrite the idle ring's positions (layout: the ring header table in ipc.h) */
        CHECK_EQ(fstat(g_wrap_fd, &st), 0);
        m = (unsigned char *)mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                                  g_wrap_fd, 0);
        CHECK(m != MAP_FAILED);
        memcpy(&hdr, m + 12, 4);
        nslots = slot ? ((uint64_t)st.st_size - hdr) / slot : 0;
        w = cases[k].at - (slot ? 4 * nslots : 1024);
        memcpy(m + 128, &w, 8);      /* tail */
        memcpy(m + 256, &w, 8);      /* head */
        for (i = 0; i < nslots; i++) /* slot i is free for position w + i: stored minus i */
            memcpy(m + hdr + i * slot, &w, 8);
        pid = spawn(wrap_producer, NULL);
        while (__atomic_load_n(&g_flag[0], __ATOMIC_ACQUIRE) != 1)
            th_sleep_ms(1);
        CHECK_OK(ipc_ring_attach_fd(&c, g_wrap_fd, IPC_CONSUMER));
        __atomic_store_n(&g_flag[0], 2, __ATOMIC_RELEASE);
        for (n = 0; n < WRAP_MSGS; n++) {
            size_t len = wrap_len(n, ipc_ring_max_msg(&c));
            ssize_t got = ipc_ring_recv(&c, b, sizeof b, 5 * SEC);
            wrap_fill(want, len, n);
            if (got != (ssize_t)len || memcmp(b, want, len) != 0)
                th_fail(__FILE__, __LINE__, "kind %u at %llx, message %u: got %ld (%s), want %zu",
                        kind, (unsigned long long)cases[k].at, n, (long)got,
                        got < 0 ? ipc_strerror((int)got) : "bytes", len);
        }
        CHECK_ERR(ipc_ring_recv(&c, b, sizeof b, 5 * SEC), -EPIPE);
        join_ok(pid, "wrap producer");
        memcpy(&tail, m + 128, 8);
        CHECK(tail - cases[k].at < (uint64_t)1 << 30); /* it went past */
        CHECK_OK(ipc_ring_close(&c));
        munmap(m, (size_t)st.st_size);
        close(g_wrap_fd);
        __atomic_store_n(&g_flag[0], 0, __ATOMIC_RELEASE);
    }
    th_shared_unmap(g_flag, 4096);
}
