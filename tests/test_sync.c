#include "harness.h"

/* tests/test_sync.c - sections 14 and 16: POSIX semaphores (named and unnamed), System V
   semaphore sets, and process-shared robust mutexes and condition variables, all across
   real processes.

   Named semaphores live at /dev/shm/sem.NAME, which the runner does not sweep, and System V
   sets outlive every process. So the tests that make either run their body in a child
   through guarded(): the names, ids and keys it makes are recorded in shared memory, and
   the parent removes whatever is left, however the body ended. Bodies still unlink and
   remove their objects themselves, checking those calls. */

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SEM_VALUE_MAX
#define SEM_VALUE_MAX 0x7fffffff
#endif

#define MS      ((int64_t)1000000)
#define SEC     ((int64_t)1000000000)
#define JOIN_MS 5000

/* ---- helpers ---- */

/* Wait (2 s at most) until pid sleeps: after it raised a flag just before a blocking
   call, that is the call blocking. */
static void wait_asleep(pid_t pid) {
    int64_t dl = ipc_deadline_make(2 * SEC);
    while (th_proc_state(pid) != 'S') {
        if (ipc_deadline_left(dl) == 0)
            th_fail(__FILE__, __LINE__, "process %ld never went to sleep", (long)pid);
        th_sleep_ms(1);
    }
}

/* A child that must stay until it is killed. */
static void sleep_forever(void) {
    for (;;)
        pause();
}

/* Busy work the compiler cannot drop. */
static void spin(int n) {
    volatile int i;
    for (i = 0; i < n; i++) {
    }
}

/* ---- the guard: what a body makes is removed by its parent ---- */

#define NAME_SLOT 320 /* room for a name longer than NAME_MAX, plus the slash */
#define MAX_SEMS  6
#define MAX_SETS  12
#define MAX_KEYS  4

typedef struct guard {
    char sem[MAX_SEMS][NAME_SLOT]; /* POSIX semaphore names */
    int set[MAX_SETS];             /* System V set ids */
    int key[MAX_KEYS];             /* keys of sets another program makes */
    int nkeys;
    char dir[64]; /* a temporary directory with a file "key", for ftok */
} guard;

static guard *g_guard;

/* A handle that is not NULL, for checking that a failed call clears its out-pointer. */
static char junk_byte;
#define JUNK_SEM ((ipc_sem *)(void *)&junk_byte)

/* A fresh semaphore name, recorded for unlinking. Writable: NAME_SLOT bytes. */
static char *sem_name(const char *tag) {
    int i;
    for (i = 0; i < MAX_SEMS; i++)
        if (!g_guard->sem[i][0]) return th_name(g_guard->sem[i], NAME_SLOT, tag);
    th_fail(__FILE__, __LINE__, "more than %d semaphore names", MAX_SEMS);
}

static void set_record(int id) {
    int i;
    for (i = 0; i < MAX_SETS; i++) {
        if (g_guard->set[i] < 0) {
            g_guard->set[i] = id;
            return;
        }
    }
    semctl(id, 0, IPC_RMID);
    th_fail(__FILE__, __LINE__, "more than %d System V sets", MAX_SETS);
}

/* ipc_semset_create, recording the set for removal. */
static int semset_new(int key, int nsems, unsigned mode) {
    int id = ipc_semset_create(key, nsems, mode);
    if (id >= 0) set_record(id);
    return id;
}

/* Forget a set someone removed, so the guard never removes a reused id. */
static void semset_forget(int id) {
    int i;
    for (i = 0; i < MAX_SETS; i++)
        if (g_guard->set[i] == id) g_guard->set[i] = -1;
}

static void semset_gone(int id) {
    CHECK_OK(ipc_semset_remove(id));
    semset_forget(id);
}

static void key_record(int key) {
    if (g_guard->nkeys == MAX_KEYS) th_fail(__FILE__, __LINE__, "more than %d keys", MAX_KEYS);
    g_guard->key[g_guard->nkeys++] = key;
}

/* The path of an empty file of ours, in a fresh temporary directory the guard removes. */
static char *guard_file(char *path, size_t size) {
    return th_key_file(g_guard->dir, sizeof g_guard->dir, path, size);
}

/* A System V key: ftok of that file. */
static int make_key(int proj) {
    char path[128];
    key_t k = ftok(guard_file(path, sizeof path), proj);
    CHECK(k != (key_t)-1 && k != IPC_PRIVATE);
    return (int)k;
}

static void guarded(void (*body)(void), int timeout_ms) {
    int i, code;
    g_guard = (guard *)th_shared_map(sizeof *g_guard);
    for (i = 0; i < MAX_SETS; i++)
        g_guard->set[i] = -1;
    code = th_run_body(body, timeout_ms);
    for (i = 0; i < MAX_SEMS; i++)
        if (g_guard->sem[i][0]) sem_unlink(g_guard->sem[i]);
    for (i = 0; i < MAX_SETS; i++)
        if (g_guard->set[i] >= 0) semctl(g_guard->set[i], 0, IPC_RMID);
    for (i = 0; i < g_guard->nkeys; i++) {
        int id = semget((key_t)g_guard->key[i], 0, 0);
        if (id >= 0) semctl(id, 0, IPC_RMID);
    }
    if (g_guard->dir[0]) th_rm_tree(g_guard->dir);
    th_shared_unmap(g_guard, sizeof *g_guard);
    th_body_verdict(code);
}

/* A test whose body runs guarded, with 2 s of the test's timeout left for the cleanup. */
#define GTEST(name, timeout_ms) TEST_GUARDED(name, timeout_ms, 2000, guarded)

/* ======================== POSIX named semaphores ======================== */

/* Where the C library keeps named semaphores: glibc at /dev/shm/sem.NAME ("sem."), musl
   at /dev/shm/NAME (""). Found once, by creating one and looking. */
static const char *sem_prefix(void) {
    static const char *prefix;
    char probe[64], path[96];
    struct stat st;
    sem_t *s;
    if (prefix) return prefix;
    th_name(probe, sizeof probe, "where");
    s = sem_open(probe, O_CREAT | O_EXCL, 0600, 0);
    CHECK(s != SEM_FAILED);
    snprintf(path, sizeof path, "/dev/shm/sem.%s", probe + 1);
    if (lstat(path, &st) == 0) prefix = "sem.";
    snprintf(path, sizeof path, "/dev/shm/%s", probe + 1);
    if (!prefix && lstat(path, &st) == 0) prefix = "";
    sem_close(s);
    sem_unlink(probe);
    if (!prefix) th_fail(__FILE__, __LINE__, "no file in /dev/shm for semaphore %s", probe);
    return prefix;
}

/* The file behind the named semaphore NAME (given with or without its slash). */
static void sem_path(const char *name, char *out, size_t size) {
    snprintf(out, size, "/dev/shm/%s%s", sem_prefix(), name + (name[0] == '/'));
}

/* st_mode of the file behind the named semaphore, or 0 when there is none. */
static unsigned sem_file_mode(const char *name) {
    char path[NAME_SLOT + 32];
    struct stat st;
    sem_path(name, path, sizeof path);
    if (lstat(path, &st) != 0) return 0;
    return (unsigned)st.st_mode;
}

/* Mappings of files in /dev/shm: where a named semaphore lives. Counting only those
   keeps the C library's and a sanitizer's heap growth out of the leak check. */
static int shm_maps(void) {
    static char buf[1 << 20];
    size_t len = 0;
    ssize_t got;
    char *p;
    int n = 0, fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    while (len < sizeof buf - 1 && (got = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)got;
    close(fd);
    CHECK(len < sizeof buf - 1);
    buf[len] = 0;
    for (p = buf; (p = strstr(p, " /dev/shm/")) != NULL; p++)
        n++;
    return n;
}

GTEST(sem_named_create_exclusive_mode, 10000) {
    char *a = sem_name("excl"), *b = sem_name("m0640"), *c = sem_name("m0");
    ipc_sem *s, *s2;
    mode_t old;
    int fds, maps;

    fds = th_fd_count();
    maps = shm_maps();
    s = JUNK_SEM;
    CHECK_ERR(ipc_sem_open(&s, a), -ENOENT);
    CHECK(s == NULL);
    CHECK_OK(ipc_sem_create(&s, a, 3, 0));
    CHECK(s != NULL);
    CHECK_EQ(shm_maps(), maps + 1); /* the count sees a semaphore */
    CHECK_EQ(ipc_sem_value(s), 3);
    CHECK(S_ISREG(sem_file_mode(a)));
    CHECK_EQ(sem_file_mode(a) & 07777, 0600);

    /* exclusive whatever the mode and value, with or without the slash; nothing changes */
    s2 = JUNK_SEM;
    CHECK_ERR(ipc_sem_create(&s2, a, 5, 0), -EEXIST);
    CHECK(s2 == NULL);
    CHECK_ERR(ipc_sem_create(&s2, a + 1, 0, 0666), -EEXIST);
    CHECK_EQ(sem_file_mode(a) & 07777, 0600);
    CHECK_EQ(ipc_sem_value(s), 3);

    /* an explicit mode is applied exactly: umask 077 does not narrow 0640 ... */
    old = umask(077);
    CHECK_OK(ipc_sem_create(&s2, b, 0, 0640));
    umask(old);
    CHECK_EQ(sem_file_mode(b) & 07777, 0640);
    CHECK_OK(ipc_sem_close(s2));
    CHECK_OK(ipc_sem_unlink(b));
    CHECK_EQ(sem_file_mode(b), 0);
    /* ... and umask 0 does not widen the default */
    old = umask(0);
    CHECK_OK(ipc_sem_create(&s2, c, 1, 0));
    umask(old);
    CHECK_EQ(sem_file_mode(c) & 07777, 0600);
    CHECK_OK(ipc_sem_close(s2));
    CHECK_OK(ipc_sem_unlink(c));

    /* bad mode or value: refused, and no file is left */
    CHECK_ERR(ipc_sem_create(&s2, c, 0, 01600), -EINVAL);
    CHECK_ERR(ipc_sem_create(&s2, c, 0, 04600), -EINVAL);
    CHECK_ERR(ipc_sem_create(&s2, c, (unsigned)SEM_VALUE_MAX + 1u, 0), -EINVAL);
    CHECK_ERR(ipc_sem_create(&s2, c, UINT_MAX, 0), -EINVAL);
    CHECK_EQ(sem_file_mode(c), 0);

    /* a second handle through open sees the same counter */
    CHECK_OK(ipc_sem_open(&s2, a + 1));
    CHECK_OK(ipc_sem_wait(s2, 0));
    CHECK_EQ(ipc_sem_value(s), 2);
    CHECK_OK(ipc_sem_close(s2));
    CHECK_EQ(ipc_sem_value(s), 2); /* closing one handle leaves the other working */
    CHECK_OK(ipc_sem_post(s));
    CHECK_EQ(ipc_sem_value(s), 3);

    CHECK_OK(ipc_sem_close(s));
    CHECK_OK(ipc_sem_unlink(a));
    CHECK_EQ(sem_file_mode(a), 0);
    CHECK_ERR(ipc_sem_open(&s, a), -ENOENT);
    CHECK_ERR(ipc_sem_unlink(a), -ENOENT);
    CHECK_EQ(th_fd_count(), fds);
    CHECK_EQ(shm_maps(), maps);
}

GTEST(sem_named_symlink_refused, 10000) {
    char *a = sem_name("link"), target[128], link_path[NAME_SLOT + 32];
    struct stat st;
    ipc_sem *s;
    int r;

    /* a symlink planted at the name, pointing at an empty file of ours */
    guard_file(target, sizeof target);
    sem_path(a, link_path, sizeof link_path);
    CHECK_EQ(symlink(target, link_path), 0);
    CHECK_ERR(ipc_sem_create(&s, a, 1, 0644), -EEXIST);
    r = ipc_sem_open(&s, a);
    if (r == 0) ipc_sem_close(s);
    CHECK(r < 0);
    /* the target was neither written nor chmod'ed through the link */
    CHECK_EQ(stat(target, &st), 0);
    CHECK_EQ(st.st_size, 0);
    CHECK_EQ(st.st_mode & 07777, 0600);
    CHECK_EQ(unlink(link_path), 0);
}

GTEST(sem_named_bad_names, 10000) {
    static const char *const bad[] = {"", "/", "a/b", "/a/b", "a/", ".", "..", "/.."};
    char long_name[NAME_SLOT], *edge = sem_name("edge");
    ipc_sem *s;
    size_t i, max;
    int fds, maps;

    fds = th_fd_count();
    maps = shm_maps();
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = JUNK_SEM;
        CHECK_ERR(ipc_sem_create(&s, bad[i], 0, 0), -EINVAL);
        CHECK(s == NULL);
        CHECK_ERR(ipc_sem_open(&s, bad[i]), -EINVAL);
        CHECK_ERR(ipc_sem_unlink(bad[i]), -EINVAL);
    }
    CHECK_ERR(ipc_sem_create(&s, NULL, 0, 0), -EINVAL);
    CHECK_ERR(ipc_sem_open(&s, NULL), -EINVAL);
    CHECK_ERR(ipc_sem_unlink(NULL), -EINVAL);

    /* 300 characters: over NAME_MAX */
    memset(long_name, 'n', 300);
    long_name[300] = 0;
    CHECK_ERR(ipc_sem_create(&s, long_name, 0, 0), -ENAMETOOLONG);
    CHECK_ERR(ipc_sem_open(&s, long_name), -ENAMETOOLONG);
    CHECK_ERR(ipc_sem_unlink(long_name), -ENAMETOOLONG);

    /* NULL out-pointer: refused before anything is created */
    CHECK_ERR(ipc_sem_create(NULL, edge, 0, 0), -EINVAL);
    CHECK_EQ(sem_file_mode(edge), 0);
    CHECK_ERR(ipc_sem_open(NULL, edge), -EINVAL);

    /* NULL handles */
    CHECK_ERR(ipc_sem_close(NULL), -EINVAL);
    CHECK_ERR(ipc_sem_wait(NULL, 0), -EINVAL);
    CHECK_ERR(ipc_sem_wait(NULL, IPC_FOREVER), -EINVAL);
    CHECK_ERR(ipc_sem_post(NULL), -EINVAL);
    CHECK_ERR(ipc_sem_value(NULL), -EINVAL);
    CHECK_ERR(ipc_sem_destroy(NULL), -EINVAL);

    /* The file name is the prefix and the name, at most NAME_MAX: so 251 characters with
       glibc's "sem.", 255 with musl. One more is -ENAMETOOLONG and leaves nothing. */
    max = NAME_MAX - strlen(sem_prefix());
    while (strlen(edge) < 1 + max + 1)
        strcat(edge, "e");
    CHECK_ERR(ipc_sem_create(&s, edge, 0, 0), -ENAMETOOLONG);
    CHECK_EQ(sem_file_mode(edge), 0);
    edge[1 + max] = 0;
    CHECK_OK(ipc_sem_create(&s, edge, 2, 0));
    CHECK_EQ(ipc_sem_value(s), 2);
    CHECK_OK(ipc_sem_close(s));
    CHECK_OK(ipc_sem_unlink(edge));
    CHECK_EQ(sem_file_mode(edge), 0);
    CHECK_EQ(th_fd_count(), fds);
    CHECK_EQ(shm_maps(), maps);
}

#define NAMED_ROUNDS 500

typedef struct named_pp {
    char ping[NAME_SLOT], pong[NAME_SLOT];
    uint32_t turn;
} named_pp;

/* Child: open both by name (nothing inherited is used), then answer every ping. */
static void named_ponger(void *arg) {
    named_pp *p = (named_pp *)arg;
    ipc_sem *ping, *pong;
    int i;
    CHECK_OK(ipc_sem_open(&ping, p->ping));
    CHECK_OK(ipc_sem_open(&pong, p->pong));
    for (i = 0; i < NAMED_ROUNDS; i++) {
        CHECK_OK(ipc_sem_wait(ping, i % 2 ? IPC_FOREVER : 5 * SEC));
        CHECK_EQ(p->turn, 2 * i + 1);
        p->turn++;
        CHECK_OK(ipc_sem_post(pong));
    }
    for (i = 0; i < 5; i++)
        CHECK_OK(ipc_sem_post(pong));
    CHECK_OK(ipc_sem_close(ping));
    CHECK_OK(ipc_sem_close(pong));
}

GTEST(sem_named_across_processes, 20000) {
    named_pp *p = (named_pp *)th_shared_map(sizeof *p);
    ipc_sem *ping, *pong, *again;
    pid_t pid;
    int i;

    strcpy(p->ping, sem_name("ping"));
    strcpy(p->pong, sem_name("pong"));
    CHECK_OK(ipc_sem_create(&ping, p->ping, 0, 0));
    CHECK_OK(ipc_sem_create(&pong, p->pong, 0, 0));
    pid = th_spawn_ok(named_ponger, p);
    for (i = 0; i < NAMED_ROUNDS; i++) {
        p->turn++;
        CHECK_OK(ipc_sem_post(ping));
        CHECK_OK(ipc_sem_wait(pong, 5 * SEC));
        CHECK_EQ(p->turn, 2 * i + 2);
    }
    th_join_ok(pid, JOIN_MS);
    CHECK_EQ(ipc_sem_value(ping), 0);
    CHECK_EQ(ipc_sem_value(pong), 5);

    /* unlinked while open: the name is gone, the object works until closed, and the name
       can be created afresh as a new, independent semaphore */
    CHECK_OK(ipc_sem_unlink(p->pong));
    CHECK_ERR(ipc_sem_open(&again, p->pong), -ENOENT);
    CHECK_OK(ipc_sem_wait(pong, 0));
    CHECK_EQ(ipc_sem_value(pong), 4);
    CHECK_OK(ipc_sem_create(&again, p->pong, 0, 0));
    CHECK_EQ(ipc_sem_value(again), 0);
    CHECK_EQ(ipc_sem_value(pong), 4);
    CHECK_OK(ipc_sem_close(again));
    CHECK_OK(ipc_sem_unlink(p->pong));
    CHECK_OK(ipc_sem_close(pong));
    CHECK_OK(ipc_sem_close(ping));
    CHECK_OK(ipc_sem_unlink(p->ping));
    th_shared_unmap(p, sizeof *p);
}

/* ======================== POSIX unnamed semaphores ======================== */

/* Shared memory with room for semaphores at 64-byte steps. */
typedef struct sem_area {
    unsigned char slot[4][64] __attribute__((aligned(64)));
    ipc_sem *a, *b;
    uint32_t turn;
} sem_area;

static sem_area *sem_area_map(void) {
    return (sem_area *)th_shared_map(sizeof(sem_area));
}

TEST(sem_init_bad_args) {
    unsigned char *mem = (unsigned char *)th_shared_map(4096);
    ipc_sem *s = NULL;
    int off, i;

    memset(mem, 0xa5, 64);
    CHECK_ERR(ipc_sem_init(NULL, 0, &s), -EINVAL);
    for (off = 1; off < 8; off++)
        CHECK_ERR(ipc_sem_init(mem + off, 0, &s), -EINVAL);
    CHECK_ERR(ipc_sem_init(mem, (unsigned)SEM_VALUE_MAX + 1u, &s), -EINVAL);
    CHECK_ERR(ipc_sem_init(mem, UINT_MAX, &s), -EINVAL);
    for (i = 0; i < 64; i++)
        if (mem[i] != 0xa5) th_fail(__FILE__, __LINE__, "a refused init wrote byte %d", i);
    CHECK(s == NULL);

    /* 8-aligned is enough */
    CHECK_OK(ipc_sem_init(mem + 8, 2, &s));
    CHECK(s != NULL);
    CHECK_EQ(ipc_sem_value(s), 2);
    CHECK_ERR(ipc_sem_wait(s, -2), -EINVAL);
    CHECK_ERR(ipc_sem_wait(s, INT64_MIN), -EINVAL);
    CHECK_EQ(ipc_sem_value(s), 2); /* the refused waits took nothing */
    CHECK_OK(ipc_sem_destroy(s));
    th_shared_unmap(mem, 4096);
}

TEST(sem_post_overflow_at_max) {
    sem_area *m = sem_area_map();
    ipc_sem *s;
    CHECK_OK(ipc_sem_init(m->slot[0], (unsigned)SEM_VALUE_MAX, &s));
    CHECK_EQ(ipc_sem_value(s), SEM_VALUE_MAX);
    CHECK_ERR(ipc_sem_post(s), -EOVERFLOW);
    CHECK_EQ(ipc_sem_value(s), SEM_VALUE_MAX);
    CHECK_OK(ipc_sem_wait(s, 0));
    CHECK_EQ(ipc_sem_value(s), SEM_VALUE_MAX - 1);
    CHECK_OK(ipc_sem_post(s));
    CHECK_ERR(ipc_sem_post(s), -EOVERFLOW);
    CHECK_EQ(ipc_sem_value(s), SEM_VALUE_MAX);
    CHECK_OK(ipc_sem_destroy(s));
    th_shared_unmap(m, sizeof *m);
}

#define PP_ROUNDS 2000

/* Wait on a semaphore in one of three ways, by round: unbounded, timed, polling. */
static void sem_take(ipc_sem *s, int round) {
    int r;
    switch (round % 3) {
    case 0: CHECK_OK(ipc_sem_wait(s, IPC_FOREVER)); break;
    case 1: CHECK_OK(ipc_sem_wait(s, 5 * SEC)); break;
    default: {
        int64_t dl = ipc_deadline_make(5 * SEC);
        while ((r = ipc_sem_wait(s, 0)) == -EAGAIN) {
            CHECK(ipc_deadline_left(dl) > 0);
            sched_yield();
        }
        CHECK_OK(r);
    }
    }
}

static void unnamed_ponger(void *arg) {
    sem_area *m = (sem_area *)arg;
    int i;
    for (i = 0; i < PP_ROUNDS; i++) {
        sem_take(m->a, i + 1);
        CHECK_EQ(m->turn, 2 * i + 1);
        m->turn++;
        CHECK_OK(ipc_sem_post(m->b));
    }
}

TEST_T(sem_unnamed_ping_pong, 20000) {
    sem_area *m = sem_area_map();
    pid_t pid;
    int i;
    CHECK_OK(ipc_sem_init(m->slot[0], 0, &m->a));
    CHECK_OK(ipc_sem_init(m->slot[1], 0, &m->b));
    pid = th_spawn_ok(unnamed_ponger, m);
    for (i = 0; i < PP_ROUNDS; i++) {
        m->turn++;
        CHECK_OK(ipc_sem_post(m->a));
        sem_take(m->b, i);
        CHECK_EQ(m->turn, 2 * i + 2);
    }
    th_join_ok(pid, JOIN_MS);
    CHECK_EQ(ipc_sem_value(m->a), 0);
    CHECK_EQ(ipc_sem_value(m->b), 0);
    CHECK_OK(ipc_sem_destroy(m->a));
    CHECK_OK(ipc_sem_destroy(m->b));
    th_shared_unmap(m, sizeof *m);
}

#define POSTERS 4
#define POSTS   500

static void poster(void *arg) {
    sem_area *m = (sem_area *)arg;
    int i;
    for (i = 0; i < POSTS; i++)
        CHECK_OK(ipc_sem_post(m->a));
}

TEST(sem_unnamed_many_posters) {
    sem_area *m = sem_area_map();
    pid_t pids[POSTERS];
    int i;
    CHECK_OK(ipc_sem_init(m->slot[0], 0, &m->a));
    for (i = 0; i < POSTERS; i++)
        pids[i] = th_spawn_ok(poster, m);
    for (i = 0; i < POSTERS * POSTS; i++)
        sem_take(m->a, i);
    for (i = 0; i < POSTERS; i++)
        th_join_ok(pids[i], JOIN_MS);
    CHECK_ERR(ipc_sem_wait(m->a, 0), -EAGAIN);
    CHECK_EQ(ipc_sem_value(m->a), 0);
    CHECK_OK(ipc_sem_destroy(m->a));
    th_shared_unmap(m, sizeof *m);
}

TEST(sem_wait_timeouts) {
    sem_area *m = sem_area_map();
    ipc_sem *s;
    CHECK_OK(ipc_sem_init(m->slot[0], 0, &s));
    CHECK_TIMED(ipc_sem_wait(s, 0), -EAGAIN, 0);
    CHECK_TIMED(ipc_sem_wait(s, 50 * MS), -ETIMEDOUT, 50);
    CHECK_TIMED(ipc_sem_wait(s, 1 * MS), -ETIMEDOUT, 1);
    CHECK_EQ(ipc_sem_value(s), 0);
    /* available: every kind of wait takes it at once */
    CHECK_OK(ipc_sem_post(s));
    CHECK_OK(ipc_sem_post(s));
    CHECK_OK(ipc_sem_post(s));
    CHECK_TIMED(ipc_sem_wait(s, 0), 0, 0);
    CHECK_TIMED(ipc_sem_wait(s, 50 * MS), 0, 0);
    CHECK_TIMED(ipc_sem_wait(s, IPC_FOREVER), 0, 0);
    CHECK_ERR(ipc_sem_wait(s, 0), -EAGAIN);
    CHECK_OK(ipc_sem_destroy(s));
    th_shared_unmap(m, sizeof *m);
}

/* Child: sleep 100 ms, then post. */
static void late_poster(void *arg) {
    sem_area *m = (sem_area *)arg;
    th_sleep_ms(100);
    CHECK_OK(ipc_sem_post(m->a));
}

TEST(sem_wait_signal_storm) {
    sem_area *m = sem_area_map();
    int64_t t0, el;
    pid_t pid;
    int n;

    CHECK_OK(ipc_sem_init(m->slot[0], 0, &m->a));
    /* the storm does not shorten or stretch the deadline */
    th_storm_start();
    CHECK_TIMED(ipc_sem_wait(m->a, 50 * MS), -ETIMEDOUT, 50);
    n = th_storm_count();
    if (n < 3) th_fail(__FILE__, __LINE__, "only %d signals arrived during the wait", n);
    /* a post that comes later still arrives, to a timed and to an unbounded wait */
    t0 = ipc_time_now();
    pid = th_spawn_ok(late_poster, m);
    CHECK_OK(ipc_sem_wait(m->a, 3 * SEC));
    el = ipc_time_now() - t0;
    CHECK(el >= 100 * MS && el < 3 * SEC);
    th_join_ok(pid, JOIN_MS);
    t0 = ipc_time_now();
    pid = th_spawn_ok(late_poster, m);
    CHECK_OK(ipc_sem_wait(m->a, IPC_FOREVER));
    el = ipc_time_now() - t0;
    CHECK(el >= 100 * MS && el < 3 * SEC);
    n = th_storm_stop();
    th_join_ok(pid, JOIN_MS);
    CHECK(n >= 10); /* over 200 ms of waiting */
    CHECK_EQ(ipc_sem_value(m->a), 0);
    CHECK_OK(ipc_sem_destroy(m->a));
    th_shared_unmap(m, sizeof *m);
}

/* ======================== System V semaphore sets ======================== */

union semarg {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
};

static unsigned set_mode(int id) {
    struct semid_ds ds;
    union semarg a;
    a.buf = &ds;
    CHECK_EQ(semctl(id, 0, IPC_STAT, a), 0);
    return (unsigned)ds.sem_perm.mode & 0777u;
}

static int set_nsems(int id) {
    struct semid_ds ds;
    union semarg a;
    a.buf = &ds;
    CHECK_EQ(semctl(id, 0, IPC_STAT, a), 0);
    return (int)ds.sem_nsems;
}

/* Wait (2 s at most) until n processes are blocked taking from semaphore num. */
static void wait_ncnt(int id, int num, int n) {
    int64_t dl = ipc_deadline_make(2 * SEC);
    int c;
    while ((c = semctl(id, num, GETNCNT)) != n) {
        if (ipc_deadline_left(dl) == 0)
            th_fail(__FILE__, __LINE__, "%d waiters on semaphore %d, not %d", c, num, n);
        th_sleep_ms(1);
    }
}

static ipc_semop semop_of(int num, int op, int flags) {
    ipc_semop o;
    o.num = (unsigned short)num;
    o.op = (short)op;
    o.flags = (short)flags;
    return o;
}

typedef struct set_area {
    int id, key, result;
    int64_t timeout, t_done;
    uint32_t flag;
    int storm;
} set_area;

static void open_by_key(void *arg) {
    set_area *a = (set_area *)arg;
    int id = ipc_semset_open(a->key);
    CHECK_EQ(id, a->id);
    CHECK_EQ(ipc_semset_get(id, 2), 0);
    CHECK_OK(ipc_semset_set(id, 1, 7));
}

GTEST(semset_create_exclusive_open_by_key, 10000) {
    set_area *a = (set_area *)th_shared_map(sizeof *a);
    int key = make_key('s'), key2 = make_key('t'), id, id2, p1, p2, i;
    mode_t old;

    CHECK_ERR(ipc_semset_open(key), -ENOENT);
    CHECK_OK(id = semset_new(key, 3, 0));
    CHECK_EQ(set_mode(id), 0600);
    CHECK_EQ(set_nsems(id), 3);
    for (i = 0; i < 3; i++)
        CHECK_EQ(ipc_semset_get(id, i), 0);
    /* the same key twice: -EEXIST, whatever the size and mode */
    CHECK_ERR(ipc_semset_create(key, 3, 0), -EEXIST);
    CHECK_ERR(ipc_semset_create(key, 1, 0666), -EEXIST);
    CHECK_EQ(set_mode(id), 0600);
    CHECK_EQ(ipc_semset_open(key), id);

    /* another process finds it by key */
    a->key = key;
    a->id = id;
    th_join_ok(th_spawn_ok(open_by_key, a), JOIN_MS);
    CHECK_EQ(ipc_semset_get(id, 1), 7);

    /* an explicit mode, exactly (the umask has no say) */
    old = umask(077);
    CHECK_OK(id2 = semset_new(key2, 1, 0640));
    umask(old);
    CHECK_EQ(set_mode(id2), 0640);
    CHECK(id2 != id);

    /* IPC_PRIVATE makes a new set every time; it cannot be opened */
    CHECK_OK(p1 = semset_new(IPC_PRIVATE, 1, 0));
    CHECK_OK(p2 = semset_new(IPC_PRIVATE, 1, 0));
    CHECK(p1 != p2 && p1 != id && p2 != id);
    CHECK_EQ(set_mode(p1), 0600);
    CHECK_ERR(ipc_semset_open(IPC_PRIVATE), -EINVAL);

    semset_gone(p1);
    semset_gone(p2);
    semset_gone(id2);
    semset_gone(id);
    CHECK_ERR(ipc_semset_open(key), -ENOENT);
    CHECK_ERR(ipc_semset_get(id, 0), -EINVAL);
    CHECK_ERR(ipc_semset_remove(id), -EINVAL);
    th_shared_unmap(a, sizeof *a);
}

/* semopm from /proc/sys/kernel/sem (its third field), or -1. */
static long sem_opm(void) {
    char buf[128];
    long v[4];
    ssize_t n;
    int fd = open("/proc/sys/kernel/sem", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    if (sscanf(buf, "%ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3]) != 4) return -1;
    return v[2];
}

GTEST(semset_bad_args, 10000) {
    static ipc_semop many[4100];
    ipc_semop op = semop_of(0, 1, 0);
    long opm = sem_opm();
    int id, fds = th_fd_count();
    size_t i;

    CHECK_ERR(ipc_semset_create(IPC_PRIVATE, 0, 0), -EINVAL);
    CHECK_ERR(ipc_semset_create(IPC_PRIVATE, -1, 0), -EINVAL);
    CHECK_ERR(ipc_semset_create(IPC_PRIVATE, INT_MAX, 0), -EINVAL);
    CHECK_ERR(ipc_semset_create(IPC_PRIVATE, 1, 01600), -EINVAL);
    CHECK_ERR(ipc_semset_create(IPC_PRIVATE, 1, 04600), -EINVAL);

    CHECK_OK(id = semset_new(IPC_PRIVATE, 2, 0));
    CHECK_ERR(ipc_semset_op(id, NULL, 1, 0), -EINVAL);
    CHECK_ERR(ipc_semset_op(id, NULL, 1, IPC_FOREVER), -EINVAL);
    CHECK_ERR(ipc_semset_op(id, &op, 0, 0), -EINVAL);
    CHECK_ERR(ipc_semset_op(id, &op, 0, IPC_FOREVER), -EINVAL);
    CHECK_ERR(ipc_semset_op(id, &op, SIZE_MAX, 0), -EINVAL);
    CHECK_ERR(ipc_semset_op(id, &op, (size_t)INT_MAX + 1u, 0), -EINVAL);
    CHECK_ERR(ipc_semset_op(id, &op, 1, -2), -EINVAL);
    CHECK_ERR(ipc_semset_op(id, &op, 1, INT64_MIN), -EINVAL);
    /* more operations than the kernel takes at once (semopm): each would succeed alone */
    for (i = 0; i < sizeof many / sizeof many[0]; i++)
        many[i] = semop_of(1, 1, 0);
    CHECK_ERR(ipc_semset_op(id, many, sizeof many / sizeof many[0], 0), -EINVAL);
    if (opm > 0 && opm < 4096) CHECK_ERR(ipc_semset_op(id, many, (size_t)opm + 1, 0), -EINVAL);
    CHECK_EQ(ipc_semset_get(id, 0), 0); /* none of the refused calls changed anything */
    CHECK_EQ(ipc_semset_get(id, 1), 0);
    if (opm > 0 && opm < 4096) {
        CHECK_OK(ipc_semset_op(id, many, (size_t)opm, 0));
        CHECK_EQ(ipc_semset_get(id, 1), opm);
    }

    /* bad ids: refused at once, even when asked to wait */
    CHECK_ERR(ipc_semset_op(-1, &op, 1, 0), -EINVAL);
    CHECK_TIMED(ipc_semset_op(-1, &op, 1, IPC_FOREVER), -EINVAL, 0);
    CHECK_TIMED(ipc_semset_op(-1, &op, 1, 50 * MS), -EINVAL, 0);
    CHECK_ERR(ipc_semset_get(-1, 0), -EINVAL);
    CHECK_ERR(ipc_semset_set(-1, 0, 1), -EINVAL);
    CHECK_ERR(ipc_semset_remove(-1), -EINVAL);

    /* bad semaphore numbers and values */
    CHECK_ERR(ipc_semset_get(id, 2), -EINVAL);
    CHECK_ERR(ipc_semset_get(id, -1), -EINVAL);
    CHECK_ERR(ipc_semset_set(id, 2, 1), -EINVAL);
    CHECK_ERR(ipc_semset_set(id, 0, -1), -ERANGE);
    CHECK_ERR(ipc_semset_set(id, 0, 32768), -ERANGE); /* over SEMVMX */
    CHECK_OK(ipc_semset_set(id, 0, 32767));
    CHECK_ERR(ipc_semset_op(id, &op, 1, 0), -ERANGE); /* 32767 + 1 */
    CHECK_EQ(ipc_semset_get(id, 0), 32767);

    semset_gone(id);
    /* a removed set: a bad id to a new caller */
    CHECK_ERR(ipc_semset_op(id, &op, 1, 0), -EINVAL);
    CHECK_TIMED(ipc_semset_op(id, &op, 1, IPC_FOREVER), -EINVAL, 0);
    CHECK_ERR(ipc_semset_remove(id), -EINVAL);
    CHECK_EQ(th_fd_count(), fds);
}

/* The conventions make a bad argument -EINVAL; the kernel says EFBIG for a semaphore
   number past the end of the set. */
GTEST(semset_op_bad_num_einval, 10000) {
    ipc_semop op = semop_of(2, 1, 0);
    int id;
    CHECK_OK(id = semset_new(IPC_PRIVATE, 2, 0));
    CHECK_ERR(ipc_semset_op(id, &op, 1, 0), -EINVAL);
    op.num = 65535;
    CHECK_ERR(ipc_semset_op(id, &op, 1, IPC_FOREVER), -EINVAL);
    CHECK_EQ(ipc_semset_get(id, 0), 0);
    CHECK_EQ(ipc_semset_get(id, 1), 0);
    semset_gone(id);
}

static void take_pair(void *arg) {
    set_area *a = (set_area *)arg;
    ipc_semop ops[2];
    ops[0] = semop_of(0, -1, 0);
    ops[1] = semop_of(1, -1, 0);
    CHECK_OK(ipc_semset_op(a->id, ops, 2, IPC_FOREVER));
    __atomic_store_n(&a->result, 1, __ATOMIC_RELEASE);
}

GTEST(semset_op_atomic, 10000) {
    set_area *a = (set_area *)th_shared_map(sizeof *a);
    ipc_semop ops[64];
    pid_t pid;
    int id, i;

    CHECK_OK(id = semset_new(IPC_PRIVATE, 2, 0));
    CHECK_OK(ipc_semset_set(id, 0, 1));
    ops[0] = semop_of(0, -1, 0);
    ops[1] = semop_of(1, -1, 0);
    /* semaphore 1 would block: nothing is taken from semaphore 0 either */
    CHECK_TIMED(ipc_semset_op(id, ops, 2, 0), -EAGAIN, 0);
    CHECK_EQ(ipc_semset_get(id, 0), 1);
    CHECK_TIMED(ipc_semset_op(id, ops, 2, 50 * MS), -ETIMEDOUT, 50);
    CHECK_EQ(ipc_semset_get(id, 0), 1);
    CHECK_EQ(ipc_semset_get(id, 1), 0);

    /* a process blocked on the pair is not released by half of it */
    a->id = id;
    pid = th_spawn_ok(take_pair, a);
    wait_ncnt(id, 1, 1);
    ops[2] = semop_of(0, 1, 0);
    CHECK_OK(ipc_semset_op(id, &ops[2], 1, 0));
    th_sleep_ms(30);
    CHECK_EQ(__atomic_load_n(&a->result, __ATOMIC_ACQUIRE), 0);
    CHECK_EQ(ipc_semset_get(id, 0), 2);
    ops[2] = semop_of(1, 1, 0);
    CHECK_OK(ipc_semset_op(id, &ops[2], 1, 0));
    th_join_ok(pid, JOIN_MS);
    CHECK_EQ(a->result, 1);
    CHECK_EQ(ipc_semset_get(id, 0), 1);
    CHECK_EQ(ipc_semset_get(id, 1), 0);

    /* take and give in one call */
    ops[0] = semop_of(0, -1, 0);
    ops[1] = semop_of(1, 2, 0);
    CHECK_OK(ipc_semset_op(id, ops, 2, 0));
    CHECK_EQ(ipc_semset_get(id, 0), 0);
    CHECK_EQ(ipc_semset_get(id, 1), 2);
    /* wait-for-zero, with an add that must not happen when the zero test fails */
    ops[0] = semop_of(0, 5, 0);
    ops[1] = semop_of(1, 0, 0);
    CHECK_ERR(ipc_semset_op(id, ops, 2, 0), -EAGAIN);
    CHECK_EQ(ipc_semset_get(id, 0), 0);
    CHECK_OK(ipc_semset_set(id, 1, 0));
    CHECK_OK(ipc_semset_op(id, ops, 2, 0));
    CHECK_EQ(ipc_semset_get(id, 0), 5);
    /* 64 operations in one call */
    for (i = 0; i < 64; i++)
        ops[i] = semop_of(i % 2, i % 2 ? 3 : -1, 0);
    CHECK_ERR(ipc_semset_op(id, ops, 64, 0), -EAGAIN); /* 32 takes from 5 */
    CHECK_EQ(ipc_semset_get(id, 0), 5);
    CHECK_EQ(ipc_semset_get(id, 1), 0);
    CHECK_OK(ipc_semset_set(id, 0, 40));
    CHECK_OK(ipc_semset_op(id, ops, 64, 0));
    CHECK_EQ(ipc_semset_get(id, 0), 8);
    CHECK_EQ(ipc_semset_get(id, 1), 96);
    semset_gone(id);
    th_shared_unmap(a, sizeof *a);
}

static void late_giver(void *arg) {
    set_area *a = (set_area *)arg;
    ipc_semop give = semop_of(0, 1, 0);
    th_sleep_ms(100);
    CHECK_OK(ipc_semset_op(a->id, &give, 1, 0));
}

GTEST(semset_timeouts_and_storm, 10000) {
    set_area *a = (set_area *)th_shared_map(sizeof *a);
    ipc_semop take = semop_of(0, -1, 0);
    int64_t t0, el;
    pid_t pid;
    int n;

    CHECK_OK(a->id = semset_new(IPC_PRIVATE, 1, 0));
    CHECK_TIMED(ipc_semset_op(a->id, &take, 1, 0), -EAGAIN, 0);
    CHECK_TIMED(ipc_semset_op(a->id, &take, 1, 50 * MS), -ETIMEDOUT, 50);
    CHECK_TIMED(ipc_semset_op(a->id, &take, 1, 1 * MS), -ETIMEDOUT, 1);

    /* a signal storm neither cuts the wait short nor stretches it */
    th_storm_start();
    CHECK_TIMED(ipc_semset_op(a->id, &take, 1, 50 * MS), -ETIMEDOUT, 50);
    n = th_storm_count();
    if (n < 3) th_fail(__FILE__, __LINE__, "only %d signals arrived during the wait", n);
    /* and a give that comes later still arrives, to a timed and to an unbounded wait */
    t0 = ipc_time_now();
    pid = th_spawn_ok(late_giver, a);
    CHECK_OK(ipc_semset_op(a->id, &take, 1, 3 * SEC));
    el = ipc_time_now() - t0;
    CHECK(el >= 100 * MS && el < 3 * SEC);
    th_join_ok(pid, JOIN_MS);
    t0 = ipc_time_now();
    pid = th_spawn_ok(late_giver, a);
    CHECK_OK(ipc_semset_op(a->id, &take, 1, IPC_FOREVER));
    el = ipc_time_now() - t0;
    CHECK(el >= 100 * MS && el < 3 * SEC);
    th_storm_stop();
    th_join_ok(pid, JOIN_MS);
    CHECK_EQ(ipc_semset_get(a->id, 0), 0);
    semset_gone(a->id);
    th_shared_unmap(a, sizeof *a);
}

/* Child: take semaphore 0 with undo and semaphore 1 without, then wait to be killed. */
static void undo_taker(void *arg) {
    set_area *a = (set_area *)arg;
    ipc_semop ops[2];
    ops[0] = semop_of(0, -1, IPC_SEM_UNDO);
    ops[1] = semop_of(1, -1, 0);
    CHECK_OK(ipc_semset_op(a->id, ops, 2, 0));
    th_word_add(&a->flag);
    sleep_forever();
}

/* Child: add 2 to semaphore 0 with undo, then exit normally. */
static void undo_adder(void *arg) {
    set_area *a = (set_area *)arg;
    ipc_semop op = semop_of(0, 2, IPC_SEM_UNDO);
    CHECK_OK(ipc_semset_op(a->id, &op, 1, 0));
    CHECK_EQ(ipc_semset_get(a->id, 0), 3);
}

GTEST(semset_undo_on_kill, 10000) {
    set_area *a = (set_area *)th_shared_map(sizeof *a);
    pid_t pid;
    CHECK_OK(a->id = semset_new(IPC_PRIVATE, 2, 0));
    CHECK_OK(ipc_semset_set(a->id, 0, 1));
    CHECK_OK(ipc_semset_set(a->id, 1, 1));
    pid = th_spawn_ok(undo_taker, a);
    th_word_wait(&a->flag, 1, 3000);
    CHECK_EQ(ipc_semset_get(a->id, 0), 0);
    CHECK_EQ(ipc_semset_get(a->id, 1), 0);
    th_kill_join(pid, JOIN_MS);
    /* the kernel gave back what was taken with undo, and only that */
    CHECK_EQ(ipc_semset_get(a->id, 0), 1);
    CHECK_EQ(ipc_semset_get(a->id, 1), 0);
    /* an add with undo is taken back at a normal exit too */
    th_join_ok(th_spawn_ok(undo_adder, a), JOIN_MS);
    CHECK_EQ(ipc_semset_get(a->id, 0), 1);
    semset_gone(a->id);
    th_shared_unmap(a, sizeof *a);
}

/* Child: take from semaphore 0 (value 0) with a->timeout; record the result and when. */
static void blocked_taker(void *arg) {
    set_area *a = (set_area *)arg;
    ipc_semop take = semop_of(0, -1, 0);
    if (a->storm) th_storm_start();
    a->result = ipc_semset_op(a->id, &take, 1, a->timeout);
    a->t_done = ipc_time_now();
    if (a->storm) CHECK(th_storm_stop() > 0);
}

static void remover(void *arg) {
    set_area *a = (set_area *)arg;
    CHECK_OK(ipc_semset_remove(a->id));
}

GTEST(semset_remove_wakes_waiters, 15000) {
    static const int64_t timeouts[] = {IPC_FOREVER, 10 * SEC, IPC_FOREVER, 10 * SEC};
    set_area *a = (set_area *)th_shared_map(sizeof *a);
    size_t i;
    for (i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        int64_t t0;
        pid_t pid;
        CHECK_OK(a->id = semset_new(IPC_PRIVATE, 1, 0));
        a->timeout = timeouts[i];
        a->storm = i >= 2; /* the last two wait under a signal storm */
        a->result = 12345;
        pid = th_spawn_ok(blocked_taker, a);
        wait_ncnt(a->id, 0, 1);
        t0 = ipc_time_now();
        th_join_ok(th_spawn_ok(remover, a), JOIN_MS); /* another process removes the set */
        semset_forget(a->id);
        th_join_ok(pid, JOIN_MS);
        if (a->result != -EIDRM)
            th_fail(__FILE__, __LINE__, "waiter %zu got %d (%s), want -EIDRM", i, a->result,
                    ipc_strerror(a->result));
        if (a->t_done - t0 >= SEC)
            th_fail(__FILE__, __LINE__, "waiter %zu took %.1f ms to see the removal", i,
                    (double)(a->t_done - t0) / 1e6);
    }
    th_shared_unmap(a, sizeof *a);
}

/* Python opens the library's set by key and releases it, makes a set of its own for the
   library to open, waits for the library to set the value to 3, then takes all three. */
static const char py_sem_peer[] =
    "import sys, time, sysv_ipc\n"
    "s = sysv_ipc.Semaphore(int(sys.argv[1]))\n"
    "t = sysv_ipc.Semaphore(int(sys.argv[2]), sysv_ipc.IPC_CREX, 0o600, 2)\n"
    "s.release()\n"
    "end = time.monotonic() + 5\n"
    "while s.value != 3:\n"
    "    if time.monotonic() > end: sys.exit(3)\n"
    "    time.sleep(0.001)\n"
    "for _ in range(3): s.acquire(5)\n"
    "sys.exit(0)\n";

GTEST(semset_python_interop, 15000) {
    const char *py = th_python_with("sysv_ipc");
    ipc_semop take = semop_of(0, -1, 0);
    char k1[32], k2[32];
    int key1, key2, id, id2;
    pid_t pid;

    if (!py) th_skip("no python3 with the sysv_ipc module (Debian: python3-sysv-ipc)");
    key1 = make_key('a');
    key2 = make_key('b');
    key_record(key2); /* python makes that one */
    CHECK_OK(id = semset_new(key1, 1, 0));
    snprintf(k1, sizeof k1, "%d", key1);
    snprintf(k2, sizeof k2, "%d", key2);
    fflush(NULL);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        execlp(py, py, "-c", py_sem_peer, k1, k2, (char *)NULL);
        _exit(127);
    }
    /* python's release reaches our wait; its own set exists by then */
    CHECK_OK(ipc_semset_op(id, &take, 1, 5 * SEC));
    CHECK_OK(id2 = ipc_semset_open(key2));
    CHECK_EQ(ipc_semset_get(id2, 0), 2);
    CHECK_OK(ipc_semset_set(id, 0, 3));
    CHECK_EQ(th_join(pid, JOIN_MS), 0);
    CHECK_EQ(ipc_semset_get(id, 0), 0);
    CHECK_OK(ipc_semset_remove(id2));
    CHECK_ERR(ipc_semset_open(key2), -ENOENT);
    semset_gone(id);
}

/* ======================== robust mutexes ======================== */

/* What parent and children share: a mutex, two condition variables, and the data. */
typedef struct mx {
    unsigned char mbuf[64] __attribute__((aligned(64)));
    unsigned char cbuf[64] __attribute__((aligned(64)));
    unsigned char c2buf[64] __attribute__((aligned(64)));
    ipc_mutex *m;
    ipc_cond *c, *c2;
    uint32_t flag, flag2, go, tokens;
    uint32_t progress, bad, repairs;
    uint32_t sum, nprod;
    int waiting, woken;
    int64_t timeout;
    int result[8];
    volatile int64_t a, b; /* protected data: a == b whenever the mutex is free */
    int queue[8], head, count;
} mx;

static mx *mx_map(void) {
    mx *s = (mx *)th_shared_map(sizeof(mx));
    CHECK_OK(ipc_mutex_init(s->mbuf, &s->m));
    CHECK_OK(ipc_cond_init(s->cbuf, &s->c));
    CHECK_OK(ipc_cond_init(s->c2buf, &s->c2));
    return s;
}

static void mx_unmap(mx *s) {
    CHECK_OK(ipc_cond_destroy(s->c));
    CHECK_OK(ipc_cond_destroy(s->c2));
    CHECK_OK(ipc_mutex_destroy(s->m));
    th_shared_unmap(s, sizeof *s);
}

/* qemu-user cannot hand robust futex lists to the kernel (it answers ENOSYS to both
   calls), so there a dead holder is never reported and its mutex stays locked. */
static void need_robust_futexes(void) {
    void *head = NULL;
    size_t len = 0;
    if (syscall(SYS_get_robust_list, 0, &head, &len) != 0 && errno == ENOSYS)
        th_skip("no robust futex lists (get_robust_list: ENOSYS, as under qemu-user): a "
                "dead holder cannot be detected");
}

TEST(mutex_init_bad_args) {
    unsigned char *mem = (unsigned char *)th_shared_map(4096);
    ipc_mutex *m = NULL;
    int off, i;

    memset(mem, 0x5a, 64);
    CHECK_ERR(ipc_mutex_init(NULL, &m), -EINVAL);
    for (off = 1; off < 8; off++)
        CHECK_ERR(ipc_mutex_init(mem + off, &m), -EINVAL);
    for (i = 0; i < 64; i++)
        if (mem[i] != 0x5a) th_fail(__FILE__, __LINE__, "a refused init wrote byte %d", i);
    CHECK(m == NULL);
    CHECK_ERR(ipc_mutex_lock(NULL, 0), -EINVAL);
    CHECK_ERR(ipc_mutex_lock(NULL, 50 * MS), -EINVAL);
    CHECK_ERR(ipc_mutex_lock(NULL, IPC_FOREVER), -EINVAL);
    CHECK_ERR(ipc_mutex_unlock(NULL), -EINVAL);
    CHECK_ERR(ipc_mutex_consistent(NULL), -EINVAL);
    CHECK_ERR(ipc_mutex_destroy(NULL), -EINVAL);

    CHECK_OK(ipc_mutex_init(mem + 8, &m));
    CHECK(m != NULL);
    CHECK_ERR(ipc_mutex_lock(m, -2), -EINVAL);
    CHECK_ERR(ipc_mutex_lock(m, INT64_MIN), -EINVAL);
    CHECK_ERR(ipc_mutex_unlock(m), -EPERM); /* the refused lock took nothing */
    CHECK_OK(ipc_mutex_lock(m, 0));
    CHECK_ERR(ipc_mutex_consistent(m), -EINVAL); /* nothing to recover */
    CHECK_OK(ipc_mutex_unlock(m));
    CHECK_OK(ipc_mutex_destroy(m));
    th_shared_unmap(mem, 4096);
}

#define LOCKERS 4
#define INCS    2000

static void counter_worker(void *arg) {
    mx *s = (mx *)arg;
    int k;
    for (k = 0; k < INCS; k++) {
        int64_t v;
        CHECK_ERR(ipc_mutex_lock(s->m, k % 4 == 0 ? 5 * SEC : IPC_FOREVER), 0);
        v = s->a; /* a read-modify-write that loses updates unless excluded */
        if (k % 64 == 0) sched_yield();
        spin(20);
        s->a = v + 1;
        CHECK_OK(ipc_mutex_unlock(s->m));
        spin(50);
    }
}

TEST_T(mutex_counter_across_processes, 30000) {
    mx *s = mx_map();
    pid_t pids[LOCKERS];
    int i;
    for (i = 0; i < LOCKERS; i++)
        pids[i] = th_spawn_ok(counter_worker, s);
    for (i = 0; i < LOCKERS; i++)
        CHECK_EQ(th_join(pids[i], 20000), 0);
    CHECK_EQ(s->a, LOCKERS * INCS);
    CHECK_OK(ipc_mutex_lock(s->m, 0)); /* left free */
    CHECK_OK(ipc_mutex_unlock(s->m));
    mx_unmap(s);
}

/* Child: lock, say so, wait for the word to release it, unlock. */
static void holder(void *arg) {
    mx *s = (mx *)arg;
    CHECK_OK(ipc_mutex_lock(s->m, IPC_FOREVER));
    th_word_add(&s->flag);
    th_word_wait(&s->go, 1, 3000);
    th_sleep_ms(30);
    CHECK_OK(ipc_mutex_unlock(s->m));
}

TEST(mutex_timeouts_held_elsewhere) {
    mx *s = mx_map();
    int64_t t0;
    pid_t pid;
    int n;

    pid = th_spawn_ok(holder, s);
    th_word_wait(&s->flag, 1, 3000);
    CHECK_TIMED(ipc_mutex_lock(s->m, 0), -EAGAIN, 0);
    CHECK_TIMED(ipc_mutex_lock(s->m, 50 * MS), -ETIMEDOUT, 50);
    CHECK_TIMED(ipc_mutex_lock(s->m, 1 * MS), -ETIMEDOUT, 1);
    th_storm_start();
    CHECK_TIMED(ipc_mutex_lock(s->m, 50 * MS), -ETIMEDOUT, 50);
    n = th_storm_stop();
    if (n < 3) th_fail(__FILE__, __LINE__, "only %d signals arrived during the wait", n);
    /* not ours to unlock or to mark consistent */
    CHECK_ERR(ipc_mutex_unlock(s->m), -EPERM);
    CHECK_ERR(ipc_mutex_consistent(s->m), -EINVAL);
    /* a timed lock gets it when the holder lets go (30 ms after the word) */
    t0 = ipc_time_now();
    th_word_add(&s->go);
    CHECK_ERR(ipc_mutex_lock(s->m, 3 * SEC), 0);
    CHECK(ipc_time_now() - t0 >= 30 * MS);
    th_join_ok(pid, JOIN_MS);
    CHECK_OK(ipc_mutex_unlock(s->m));
    mx_unmap(s);
}

TEST(mutex_relock_edeadlk) {
    mx *s = mx_map();
    CHECK_OK(ipc_mutex_lock(s->m, 0));
    CHECK_TIMED(ipc_mutex_lock(s->m, IPC_FOREVER), -EDEADLK, 0);
    CHECK_TIMED(ipc_mutex_lock(s->m, 0), -EDEADLK, 0);
    CHECK_TIMED(ipc_mutex_lock(s->m, 50 * MS), -EDEADLK, 0);
    CHECK_OK(ipc_mutex_unlock(s->m));
    CHECK_ERR(ipc_mutex_unlock(s->m), -EPERM);
    CHECK_OK(ipc_mutex_lock(s->m, 50 * MS));
    CHECK_OK(ipc_mutex_unlock(s->m));
    mx_unmap(s);
}

/* Child: lock, leave the data half-updated, say so, and wait to be killed. */
static void dying_holder(void *arg) {
    mx *s = (mx *)arg;
    CHECK_OK(ipc_mutex_lock(s->m, IPC_FOREVER));
    s->a++;
    th_word_add(&s->flag);
    sleep_forever();
}

/* Child: the lock must be busy (a live holder has it). */
static void try_busy(void *arg) {
    mx *s = (mx *)arg;
    CHECK_ERR(ipc_mutex_lock(s->m, 0), -EAGAIN);
}

/* Child: a normal lock and unlock. */
static void lock_once(void *arg) {
    mx *s = (mx *)arg;
    CHECK_ERR(ipc_mutex_lock(s->m, s->timeout), 0);
    CHECK_EQ(s->a, s->b);
    CHECK_OK(ipc_mutex_unlock(s->m));
}

/* Child: lock (blocking, s->timeout) while a holder is alive; record what came back. */
static void blocked_locker(void *arg) {
    mx *s = (mx *)arg;
    int r;
    th_word_add(&s->flag2);
    r = ipc_mutex_lock(s->m, s->timeout);
    s->result[0] = r;
    if (r == IPC_MUTEX_RECOVERED) {
        s->b = s->a;
        CHECK_OK(ipc_mutex_consistent(s->m));
    }
    if (r >= 0) CHECK_OK(ipc_mutex_unlock(s->m));
}

/* Kill a child that holds the mutex (it made a != b). */
static void kill_holder(mx *s) {
    pid_t pid;
    s->flag = 0;
    pid = th_spawn_ok(dying_holder, s);
    th_word_wait(&s->flag, 1, 3000);
    th_kill_join(pid, JOIN_MS);
    CHECK(s->a != s->b);
}

TEST(mutex_robust_owner_dead) {
    static const int64_t timeouts[] = {5 * SEC, IPC_FOREVER};
    mx *s;
    size_t i;

    need_robust_futexes();
    s = mx_map();
    kill_holder(s);
    CHECK_ERR(ipc_mutex_lock(s->m, 2 * SEC), IPC_MUTEX_RECOVERED);
    th_join_ok(th_spawn_ok(try_busy, s), JOIN_MS); /* recovered means held */
    s->b = s->a;                                   /* the repair */
    CHECK_OK(ipc_mutex_consistent(s->m));
    CHECK_OK(ipc_mutex_unlock(s->m));
    /* back to normal, in another process and here */
    s->timeout = IPC_FOREVER;
    th_join_ok(th_spawn_ok(lock_once, s), JOIN_MS);
    CHECK_ERR(ipc_mutex_lock(s->m, 0), 0);
    CHECK_OK(ipc_mutex_unlock(s->m));

    /* the same by a try-lock, and for a process already blocked when the holder dies */
    kill_holder(s);
    CHECK_ERR(ipc_mutex_lock(s->m, 0), IPC_MUTEX_RECOVERED);
    s->b = s->a;
    CHECK_OK(ipc_mutex_consistent(s->m));
    CHECK_OK(ipc_mutex_unlock(s->m));
    for (i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        pid_t h, w;
        s->flag = 0;
        s->flag2 = 0;
        s->result[0] = 12345;
        s->timeout = timeouts[i];
        h = th_spawn_ok(dying_holder, s);
        th_word_wait(&s->flag, 1, 3000);
        w = th_spawn_ok(blocked_locker, s);
        th_word_wait(&s->flag2, 1, 3000);
        wait_asleep(w);
        th_kill_join(h, JOIN_MS);
        th_join_ok(w, JOIN_MS);
        CHECK_ERR(s->result[0], IPC_MUTEX_RECOVERED);
        CHECK_EQ(s->a, s->b);
    }
    CHECK_ERR(ipc_mutex_lock(s->m, 0), 0);
    CHECK_OK(ipc_mutex_unlock(s->m));
    mx_unmap(s);
}

/* Child: every kind of lock must fail at once with -ENOTRECOVERABLE. */
static void lock_unrecoverable(void *arg) {
    mx *s = (mx *)arg;
    CHECK_TIMED(ipc_mutex_lock(s->m, IPC_FOREVER), -ENOTRECOVERABLE, 0);
    CHECK_TIMED(ipc_mutex_lock(s->m, 50 * MS), -ENOTRECOVERABLE, 0);
    CHECK_TIMED(ipc_mutex_lock(s->m, 0), -ENOTRECOVERABLE, 0);
}

/* Child: one try-lock, then exit. */
static void try_unrecoverable(void *arg) {
    mx *s = (mx *)arg;
    CHECK_ERR(ipc_mutex_lock(s->m, 0), -ENOTRECOVERABLE);
}

TEST(mutex_robust_not_recoverable) {
    mx *s;
    int code;
    need_robust_futexes();
    s = mx_map();
    kill_holder(s);
    CHECK_ERR(ipc_mutex_lock(s->m, 2 * SEC), IPC_MUTEX_RECOVERED);
    CHECK_OK(ipc_mutex_unlock(s->m)); /* without ipc_mutex_consistent */
    /* a failed try-lock by a process that then exits must leave nothing held ... */
    th_join_ok(th_spawn_ok(try_unrecoverable, s), JOIN_MS);
    /* ... so that every later lock, anywhere, fails at once; in a child, so that a hang
       is reported as one */
    code = th_join(th_spawn_ok(lock_unrecoverable, s), 3000);
    if (code == -1) th_fail(__FILE__, __LINE__, "a lock of the unrecoverable mutex hung");
    CHECK_EQ(code, 0);
    lock_unrecoverable(s);
    lock_unrecoverable(s);
    CHECK_ERR(ipc_mutex_unlock(s->m), -EPERM);
    /* a fresh init makes the memory a working mutex again */
    CHECK_OK(ipc_mutex_destroy(s->m));
    CHECK_OK(ipc_mutex_init(s->mbuf, &s->m));
    CHECK_OK(ipc_mutex_lock(s->m, 0));
    CHECK_OK(ipc_mutex_unlock(s->m));
    mx_unmap(s);
}

/* Contender: lock, check and update the data, unlock, until killed. Killed at any moment,
   it can only leave the data half-updated while holding the lock. Errors go to s->bad. */
static void contender(void *arg) {
    mx *s = (mx *)arg;
    for (;;) {
        int r = ipc_mutex_lock(s->m, IPC_FOREVER);
        if (r == IPC_MUTEX_RECOVERED) {
            if (s->a - s->b != 0 && s->a - s->b != 1)
                __atomic_store_n(&s->bad, 1, __ATOMIC_SEQ_CST);
            s->b = s->a;
            __atomic_fetch_add(&s->repairs, 1, __ATOMIC_SEQ_CST);
            r = ipc_mutex_consistent(s->m);
            if (r != 0) __atomic_store_n(&s->bad, 2, __ATOMIC_SEQ_CST);
        } else if (r != 0) {
            __atomic_store_n(&s->bad, 3, __ATOMIC_SEQ_CST);
            sleep_forever();
        } else if (s->a != s->b) {
            __atomic_store_n(&s->bad, 4, __ATOMIC_SEQ_CST);
        }
        s->a++;
        spin(1000);
        s->b++;
        __atomic_fetch_add(&s->progress, 1, __ATOMIC_SEQ_CST);
        if (ipc_mutex_unlock(s->m) != 0) __atomic_store_n(&s->bad, 5, __ATOMIC_SEQ_CST);
        spin(100);
    }
}

#define KILL_ROUNDS 12
#define CONTENDERS  3

TEST_T(mutex_robust_random_kills, 30000) {
    uint32_t seed = ((uint32_t)ipc_time_now() ^ ((uint32_t)getpid() << 16)) | 1u;
    mx *s;
    int round, recovered = 0;

    need_robust_futexes();
    s = mx_map();
    for (round = 0; round < KILL_ROUNDS; round++) {
        pid_t pids[CONTENDERS];
        int64_t dl = ipc_deadline_make(3 * SEC);
        int i, r;
        s->progress = 0;
        for (i = 0; i < CONTENDERS; i++)
            pids[i] = th_spawn_ok(contender, s);
        while (__atomic_load_n(&s->progress, __ATOMIC_SEQ_CST) < 30) {
            if (ipc_deadline_left(dl) == 0)
                th_fail(__FILE__, __LINE__, "round %d: no progress (seed %u)", round, seed);
            th_sleep_ms(1);
        }
        /* kill them all, in a random order, at random moments */
        th_sleep_us((long)(th_rnd32(&seed) % 2000));
        for (i = 0; i < CONTENDERS; i++) {
            int j = i + (int)(th_rnd32(&seed) % (uint32_t)(CONTENDERS - i));
            pid_t t = pids[i];
            pids[i] = pids[j];
            pids[j] = t;
            CHECK_EQ(kill(pids[i], SIGKILL), 0);
            th_sleep_us((long)(th_rnd32(&seed) % 300));
        }
        for (i = 0; i < CONTENDERS; i++)
            CHECK_EQ(th_join(pids[i], JOIN_MS), 128 + SIGKILL);
        if (s->bad)
            th_fail(__FILE__, __LINE__, "round %d: a contender saw error %u (seed %u)", round,
                    s->bad, seed);
        /* free and consistent, or a clear RECOVERED: never a hang, never anything else */
        r = ipc_mutex_lock(s->m, 2 * SEC);
        if (r == 0) {
            if (s->a != s->b)
                th_fail(__FILE__, __LINE__,
                        "round %d: lock gave 0 over half-updated data "
                        "(seed %u)",
                        round, seed);
        } else if (r == IPC_MUTEX_RECOVERED) {
            CHECK(s->a - s->b == 1 || s->a == s->b);
            s->b = s->a;
            CHECK_OK(ipc_mutex_consistent(s->m));
            recovered++;
        } else {
            th_fail(__FILE__, __LINE__, "round %d: lock gave %d (%s) (seed %u)", round, r,
                    ipc_strerror(r), seed);
        }
        CHECK_OK(ipc_mutex_unlock(s->m));
        s->timeout = 2 * SEC;
        th_join_ok(th_spawn_ok(lock_once, s), JOIN_MS);
    }
    /* Whether a round ends in RECOVERED is up to the scheduler (the last one killed may or
       may not hold the lock); mutex_robust_owner_dead proves recovery deterministically.
       These rounds prove that no interleaving of deaths leaves anything but those two. */
    (void)recovered;
    mx_unmap(s);
}

/* ======================== condition variables ======================== */

TEST(cond_init_bad_args) {
    unsigned char *mem = (unsigned char *)th_shared_map(4096);
    ipc_cond *c = NULL, *z = (ipc_cond *)(void *)(mem + 256);
    ipc_mutex *m;
    int off, i;

    memset(mem, 0x5a, 64);
    CHECK_ERR(ipc_cond_init(NULL, &c), -EINVAL);
    for (off = 1; off < 4; off++)
        CHECK_ERR(ipc_cond_init(mem + off, &c), -EINVAL);
    for (i = 0; i < 64; i++)
        if (mem[i] != 0x5a) th_fail(__FILE__, __LINE__, "a refused init wrote byte %d", i);
    CHECK(c == NULL);

    /* zeroed memory was never set up: every call refuses it */
    CHECK_OK(ipc_mutex_init(mem + 512, &m));
    CHECK_OK(ipc_mutex_lock(m, 0));
    CHECK_ERR(ipc_cond_wait(z, m, 0), -EINVAL);
    CHECK_ERR(ipc_cond_wait(z, m, IPC_FOREVER), -EINVAL);
    CHECK_ERR(ipc_cond_signal(z), -EINVAL);
    CHECK_ERR(ipc_cond_broadcast(z), -EINVAL);
    CHECK_ERR(ipc_cond_destroy(z), -EINVAL);
    CHECK_ERR(ipc_cond_signal(NULL), -EINVAL);
    CHECK_ERR(ipc_cond_broadcast(NULL), -EINVAL);
    CHECK_ERR(ipc_cond_destroy(NULL), -EINVAL);
    CHECK_ERR(ipc_cond_wait(NULL, m, 0), -EINVAL);

    /* 4-aligned is enough */
    CHECK_OK(ipc_cond_init(mem + 4, &c));
    CHECK(c != NULL);
    CHECK_ERR(ipc_cond_wait(c, NULL, 0), -EINVAL);
    CHECK_ERR(ipc_cond_wait(c, m, -2), -EINVAL);
    CHECK_OK(ipc_cond_signal(c));
    CHECK_OK(ipc_cond_broadcast(c));
    CHECK_OK(ipc_mutex_unlock(m)); /* every refused wait left the mutex held */
    CHECK_OK(ipc_cond_destroy(c));
    /* destroyed: refused like zeroed memory, and can be set up again */
    CHECK_ERR(ipc_cond_signal(c), -EINVAL);
    CHECK_ERR(ipc_cond_destroy(c), -EINVAL);
    CHECK_OK(ipc_mutex_lock(m, 0));
    CHECK_ERR(ipc_cond_wait(c, m, 0), -EINVAL);
    CHECK_OK(ipc_cond_init(mem + 4, &c));
    CHECK_TIMED(ipc_cond_wait(c, m, 0), -EAGAIN, 0);
    CHECK_OK(ipc_mutex_unlock(m));
    CHECK_OK(ipc_cond_destroy(c));
    CHECK_OK(ipc_mutex_destroy(m));
    th_shared_unmap(mem, 4096);
}

#define ITEMS  3000
#define QSLOTS 8
#define PAIRS  2

/* Producer p puts p * 100000 + 1 .. + ITEMS/PAIRS into the bounded queue. */
static void producer(void *arg) {
    mx *s = (mx *)arg;
    int p = (int)__atomic_fetch_add(&s->nprod, 1, __ATOMIC_SEQ_CST), i;
    for (i = 1; i <= ITEMS / PAIRS; i++) {
        CHECK_OK(ipc_mutex_lock(s->m, IPC_FOREVER));
        while (s->count == QSLOTS)
            CHECK_OK(ipc_cond_wait(s->c2, s->m, i % 2 ? IPC_FOREVER : 5 * SEC));
        s->queue[(s->head + s->count) % QSLOTS] = p * 100000 + i;
        s->count++;
        CHECK_OK(ipc_cond_signal(s->c));
        CHECK_OK(ipc_mutex_unlock(s->m));
    }
}

/* Consumer: takes ITEMS/PAIRS items; each producer's items come in order. */
static void consumer(void *arg) {
    mx *s = (mx *)arg;
    int last[PAIRS], i, v;
    memset(last, 0, sizeof last);
    for (i = 0; i < ITEMS / PAIRS; i++) {
        CHECK_OK(ipc_mutex_lock(s->m, 5 * SEC));
        while (s->count == 0)
            CHECK_OK(ipc_cond_wait(s->c, s->m, i % 2 ? 5 * SEC : IPC_FOREVER));
        v = s->queue[s->head];
        s->head = (s->head + 1) % QSLOTS;
        s->count--;
        CHECK_OK(ipc_cond_signal(s->c2));
        CHECK_OK(ipc_mutex_unlock(s->m));
        CHECK(v / 100000 >= 0 && v / 100000 < PAIRS);
        CHECK(v % 100000 > last[v / 100000]);
        last[v / 100000] = v % 100000;
        __atomic_fetch_add(&s->sum, (uint32_t)(v % 100000), __ATOMIC_SEQ_CST);
    }
}

TEST_T(cond_producer_consumer, 20000) {
    mx *s = mx_map();
    pid_t pids[2 * PAIRS];
    int i;
    for (i = 0; i < PAIRS; i++) {
        pids[2 * i] = th_spawn_ok(consumer, s);
        pids[2 * i + 1] = th_spawn_ok(producer, s);
    }
    for (i = 0; i < 2 * PAIRS; i++)
        CHECK_EQ(th_join(pids[i], 15000), 0);
    CHECK_EQ(s->count, 0);
    CHECK_EQ(s->sum, PAIRS * (ITEMS / PAIRS) * (ITEMS / PAIRS + 1) / 2);
    mx_unmap(s);
}

/* Child: wait under the mutex until s->go, counted in s->waiting and then s->woken. */
static void go_waiter(void *arg) {
    mx *s = (mx *)arg;
    CHECK_OK(ipc_mutex_lock(s->m, IPC_FOREVER));
    s->waiting++;
    while (!s->go)
        CHECK_OK(ipc_cond_wait(s->c, s->m, IPC_FOREVER));
    s->woken++;
    CHECK_OK(ipc_mutex_unlock(s->m));
}

/* Child: take one token, waiting for it under the mutex. */
static void token_waiter(void *arg) {
    mx *s = (mx *)arg;
    CHECK_OK(ipc_mutex_lock(s->m, IPC_FOREVER));
    s->waiting++;
    while (s->tokens == 0)
        CHECK_OK(ipc_cond_wait(s->c, s->m, 5 * SEC));
    s->tokens--;
    s->woken++;
    CHECK_OK(ipc_mutex_unlock(s->m));
}

/* Wait until n children are waiting on the cond: each counted itself under the mutex, so
   once we hold it they are in (or past) the wait. Then until each sleeps. */
static void wait_waiters(mx *s, const pid_t *pids, int n) {
    int64_t dl = ipc_deadline_make(3 * SEC);
    int i, w;
    for (;;) {
        CHECK_OK(ipc_mutex_lock(s->m, 2 * SEC));
        w = s->waiting;
        CHECK_OK(ipc_mutex_unlock(s->m));
        if (w >= n) break;
        if (ipc_deadline_left(dl) == 0) th_fail(__FILE__, __LINE__, "%d of %d waiting", w, n);
        th_sleep_ms(1);
    }
    for (i = 0; i < n; i++)
        wait_asleep(pids[i]);
}

#define WAITERS 4

TEST(cond_broadcast_and_signal) {
    mx *s = mx_map();
    pid_t pids[WAITERS];
    int i;

    for (i = 0; i < WAITERS; i++)
        pids[i] = th_spawn_ok(go_waiter, s);
    wait_waiters(s, pids, WAITERS);
    CHECK_OK(ipc_mutex_lock(s->m, 0));
    s->go = 1;
    CHECK_OK(ipc_cond_broadcast(s->c));
    CHECK_OK(ipc_mutex_unlock(s->m));
    for (i = 0; i < WAITERS; i++)
        CHECK_EQ(th_join(pids[i], 2000), 0);
    CHECK_EQ(s->woken, WAITERS);

    /* one signal per token: none is lost, every waiter gets one */
    s->waiting = s->woken = 0;
    for (i = 0; i < WAITERS; i++)
        pids[i] = th_spawn_ok(token_waiter, s);
    wait_waiters(s, pids, WAITERS);
    for (i = 0; i < WAITERS; i++) {
        CHECK_OK(ipc_mutex_lock(s->m, 2 * SEC));
        s->tokens++;
        CHECK_OK(ipc_cond_signal(s->c));
        CHECK_OK(ipc_mutex_unlock(s->m));
    }
    for (i = 0; i < WAITERS; i++)
        CHECK_EQ(th_join(pids[i], 3000), 0);
    CHECK_EQ(s->woken, WAITERS);
    CHECK_EQ(s->tokens, 0);
    mx_unmap(s);
}

TEST(cond_timeouts) {
    mx *s = mx_map();
    pid_t pid;
    int n;

    CHECK_OK(ipc_mutex_lock(s->m, 0));
    CHECK_TIMED(ipc_cond_wait(s->c, s->m, 50 * MS), -ETIMEDOUT, 50);
    CHECK_OK(ipc_mutex_unlock(s->m)); /* held again after the timeout */
    CHECK_OK(ipc_mutex_lock(s->m, 0));
    CHECK_TIMED(ipc_cond_wait(s->c, s->m, 0), -EAGAIN, 0);
    CHECK_OK(ipc_mutex_unlock(s->m));
    CHECK_OK(ipc_mutex_lock(s->m, 0));
    th_storm_start();
    CHECK_TIMED(ipc_cond_wait(s->c, s->m, 50 * MS), -ETIMEDOUT, 50);
    n = th_storm_stop();
    if (n < 3) th_fail(__FILE__, __LINE__, "only %d signals arrived during the wait", n);
    CHECK_OK(ipc_mutex_unlock(s->m));

    /* without the mutex: -EPERM at once, nothing waited, nothing locked */
    CHECK_TIMED(ipc_cond_wait(s->c, s->m, 2 * SEC), -EPERM, 0);
    CHECK_TIMED(ipc_cond_wait(s->c, s->m, IPC_FOREVER), -EPERM, 0);
    CHECK_ERR(ipc_mutex_unlock(s->m), -EPERM);
    /* nor while another process holds it */
    pid = th_spawn_ok(holder, s);
    th_word_wait(&s->flag, 1, 3000);
    CHECK_TIMED(ipc_cond_wait(s->c, s->m, 2 * SEC), -EPERM, 0);
    th_word_add(&s->go);
    th_join_ok(pid, JOIN_MS);
    CHECK_OK(ipc_mutex_lock(s->m, 0));
    CHECK_OK(ipc_mutex_unlock(s->m));
    mx_unmap(s);
}

/* Child: after a while, set the flag under the mutex and signal. */
static void late_signaller(void *arg) {
    mx *s = (mx *)arg;
    th_sleep_ms(30);
    CHECK_OK(ipc_mutex_lock(s->m, IPC_FOREVER));
    s->flag = 1;
    CHECK_OK(ipc_cond_signal(s->c));
    CHECK_OK(ipc_mutex_unlock(s->m));
}

/* ipc_cond_wait_until: a deadline for a predicate loop, -ETIMEDOUT once it has passed
   (never the "try once" -EAGAIN that 0 time left would mean to ipc_cond_wait). */
TEST(cond_wait_until_deadline) {
    mx *s = mx_map();
    int64_t dl, t0;
    int r = 0;
    pid_t pid;
    CHECK_OK(ipc_mutex_lock(s->m, 0));
    t0 = ipc_time_now();
    dl = ipc_deadline_make(50 * MS);
    while (r == 0)
        r = ipc_cond_wait_until(s->c, s->m, dl);
    CHECK_ERR(r, -ETIMEDOUT);
    CHECK(ipc_time_now() - t0 >= 50 * MS && ipc_time_now() - t0 < SEC);
    CHECK_ERR(ipc_cond_wait_until(s->c, s->m, dl), -ETIMEDOUT); /* passed: at once */
    CHECK_ERR(ipc_cond_wait_until(s->c, s->m, 0), -EAGAIN);     /* 0 is "try once" */
    CHECK_OK(ipc_mutex_unlock(s->m));                           /* held again each time */
    /* the predicate loop it is made for, woken from another process */
    s->flag = 0;
    pid = th_spawn_ok(late_signaller, s);
    CHECK_OK(ipc_mutex_lock(s->m, IPC_FOREVER));
    dl = ipc_deadline_make(5 * SEC);
    r = 0;
    while (!s->flag && r == 0)
        r = ipc_cond_wait_until(s->c, s->m, dl);
    CHECK_ERR(r, 0);
    CHECK(s->flag == 1);
    CHECK_OK(ipc_mutex_unlock(s->m));
    th_join_ok(pid, JOIN_MS);
    /* bad arguments: nothing waited, nothing unlocked */
    CHECK_OK(ipc_mutex_lock(s->m, 0));
    CHECK_ERR(ipc_cond_wait_until(NULL, s->m, dl), -EINVAL);
    CHECK_ERR(ipc_cond_wait_until(s->c, NULL, dl), -EINVAL);
    CHECK_ERR(ipc_cond_wait_until(s->c, s->m, -5), -EINVAL);
    {
        uint32_t zeroed[4] = {0, 0, 0, 0}; /* never initialised */
        CHECK_ERR(ipc_cond_wait_until((ipc_cond *)(void *)zeroed, s->m, dl), -EINVAL);
    }
    CHECK_OK(ipc_mutex_unlock(s->m));                       /* still ours */
    CHECK_ERR(ipc_cond_wait_until(s->c, s->m, dl), -EPERM); /* not held */
    mx_unmap(s);
}

TEST(cond_waiter_killed) {
    mx *s = mx_map();
    pid_t pids[3], pid;
    int i;

    for (i = 0; i < 3; i++)
        pids[i] = th_spawn_ok(go_waiter, s); /* killed before go */
    wait_waiters(s, pids, 3);
    for (i = 0; i < 3; i++)
        th_kill_join(pids[i], JOIN_MS);
    /* they died in the wait, not holding the mutex: it is simply free */
    CHECK_ERR(ipc_mutex_lock(s->m, 0), 0);
    CHECK_OK(ipc_cond_signal(s->c));
    CHECK_OK(ipc_cond_broadcast(s->c));
    CHECK_TIMED(ipc_cond_wait(s->c, s->m, 20 * MS), -ETIMEDOUT, 20);
    s->waiting = 0;
    CHECK_OK(ipc_mutex_unlock(s->m));
    /* a new waiter is woken as usual */
    pid = th_spawn_ok(token_waiter, s);
    wait_waiters(s, &pid, 1);
    CHECK_OK(ipc_mutex_lock(s->m, 2 * SEC));
    s->tokens = 1;
    CHECK_OK(ipc_cond_signal(s->c));
    CHECK_OK(ipc_mutex_unlock(s->m));
    CHECK_EQ(th_join(pid, 3000), 0);
    CHECK_EQ(s->tokens, 0);
    mx_unmap(s); /* destroys both: no hang */
}

/* Child: wait for s->go; the relock after the wake-up finds the holder dead. */
static void recovering_waiter(void *arg) {
    mx *s = (mx *)arg;
    int r = 0;
    CHECK_OK(ipc_mutex_lock(s->m, IPC_FOREVER));
    s->waiting++;
    while (!s->go) {
        r = ipc_cond_wait(s->c, s->m, s->timeout);
        if (r == IPC_MUTEX_RECOVERED) {
            s->b = s->a;
            CHECK_OK(ipc_mutex_consistent(s->m));
        } else {
            CHECK_OK(r);
        }
    }
    s->result[0] = r;
    CHECK_OK(ipc_mutex_unlock(s->m));
}

/* Child: lock, set go and signal, then die holding the mutex with the data half-updated. */
static void signal_and_die(void *arg) {
    mx *s = (mx *)arg;
    CHECK_OK(ipc_mutex_lock(s->m, IPC_FOREVER));
    s->go = 1;
    s->a++;
    CHECK_OK(ipc_cond_signal(s->c));
    th_word_add(&s->flag);
    sleep_forever();
}

TEST(cond_wait_holder_died_recovered) {
    static const int64_t timeouts[] = {IPC_FOREVER, 5 * SEC};
    mx *s;
    size_t i;

    need_robust_futexes();
    s = mx_map();
    for (i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        pid_t w, h;
        s->go = 0;
        s->flag = 0;
        s->waiting = 0;
        s->timeout = timeouts[i];
        s->result[0] = 12345;
        w = th_spawn_ok(recovering_waiter, s);
        wait_waiters(s, &w, 1);
        h = th_spawn_ok(signal_and_die, s);
        th_word_wait(&s->flag, 1, 3000);
        th_sleep_ms(10); /* the waiter wakes and blocks on the mutex (or finds it dead later) */
        th_kill_join(h, JOIN_MS);
        th_join_ok(w, JOIN_MS);
        CHECK_ERR(s->result[0], IPC_MUTEX_RECOVERED);
        CHECK_EQ(s->a, s->b);
    }
    CHECK_ERR(ipc_mutex_lock(s->m, 0), 0);
    CHECK_OK(ipc_mutex_unlock(s->m));
    mx_unmap(s);
}
