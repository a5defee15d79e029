/* ipc.h - inter-process communication for Linux in one header                      v0.2.0

   Two processes on one Linux machine need to talk. ipc.h gives them lock-free
   shared-memory ring buffers (one or many producers and consumers, broadcast, pollable),
   and thin wrappers for every classic IPC facility: pipes, FIFOs, message queues, shared
   memory, sockets, signals, eventfd, semaphores, file locks, process-shared mutexes and
   pseudoterminals. Every kernel object stays visible (an fd, a key), and the tedious parts
   are done for you: close-on-exec, EINTR, partial transfers, deadlines, SIGPIPE, safe
   permissions, clear errors.

   USAGE
       #define IPC_IMPLEMENTATION      // in exactly one .c or .cpp file
       #include "ipc.h"
   Every other file includes "ipc.h" alone. Link with -pthread; nothing else is needed
   on glibc 2.34+ or musl. C99 or later, or C++11 or later; gcc or clang; Linux only.

   CONFIGURATION (optional, define before the #include)
       IPC_IMPLEMENTATION   emit the implementation in this translation unit
       IPC_STATIC           make every function static (a private copy per TU)
       IPC_API              decoration of every public function (default extern)
       IPC_ASSERT(x)        internal invariant checks (default assert(x)); never applied
                            to anything a peer can write
       IPC_TEST_KILLPOINTS  test builds only: points in the ring protocol where the crash
                            tests make a process die (see ipc__killpoint, >>ring)

   CONVENTIONS
       Errors   a function returns >= 0 on success or a negated errno value (-EAGAIN,
                -ETIMEDOUT, ...); errno is never needed. ipc_strerror(err) names it.
                -EAGAIN     zero timeout and the call would block
                -ETIMEDOUT  the deadline passed
                -EPIPE      the peer closed or died (committed data was delivered first)
                -EMSGSIZE   message too large for the object or the buffer
                -EBADMSG    memory that is not a valid object, or that a peer corrupted
                -EBUSY      role already taken      -EEXIST  name exists on create
                -EINVAL     bad argument (NULL, zero or absurd size, bad name)
       Time     int64_t timeout_ns: IPC_FOREVER (-1) waits without limit, 0 tries once,
                > 0 is relative. It becomes one CLOCK_MONOTONIC deadline at entry, so
                signals and spurious wake-ups never extend a wait. Calls retry EINTR.
       Objects  every fd is close-on-exec; named objects are created exclusively with
                mode 0600 unless told otherwise, and a symlink at the name is refused.
       Threads  functions are thread-safe on distinct handles; a handle is used by one
                thread at a time unless its section says otherwise.

   CONTENTS                                  (search the tag to jump to the code)
       1. Basics: version, API, errors       >>basics
       2. Time and deadlines                 >>time
       3. File-descriptor I/O                >>fdio
       4. Shared memory                      >>shm
       5. Futexes                            >>futex
       6. Ring buffers                       >>ring
       7. Pipes, FIFOs and child processes   >>pipe
       8. Message framing over byte streams  >>frame
       9. POSIX message queues               >>mq
      10. System V message queues            >>msgq
      11. Sockets                            >>sock
      12. Signals                            >>signal
      13. Events and process exit            >>event
      14. Semaphores                         >>sem
      15. File locks                         >>lock
      16. Process-shared mutexes, conditions >>mutex
      17. Pseudoterminals                    >>pty

   VERSION
       0.2.0  pipes, FIFOs, child processes, framing, POSIX and System V message queues,
              sockets, signals, eventfd and pidfds, semaphores, file locks, robust
              mutexes and conditions, ptys; MPMC, MPSC and broadcast rings, ring pollfds
       0.1.0  errors, deadlines, fd I/O, shared memory (POSIX, memfd, System V,
              files), futexes, lock-free SPSC ring buffers

   LICENSE: MIT, see the end of the file.
*/

#ifndef IPC_H
#define IPC_H

/* ==== 1. Basics: version, API, errors ==== */

#define IPC_VERSION_MAJOR 0
#define IPC_VERSION_MINOR 2
#define IPC_VERSION_PATCH 0
#define IPC_VERSION       (IPC_VERSION_MAJOR * 10000 + IPC_VERSION_MINOR * 100 + IPC_VERSION_PATCH)

/* The implementation uses Linux interfaces (memfd, ppoll, O_TMPFILE, ...). */
#if defined(IPC_IMPLEMENTATION) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef IPC_API
#if defined(IPC_STATIC) && (defined(__GNUC__) || defined(__clang__))
#define IPC_API static __attribute__((unused))
#elif defined(IPC_STATIC)
#define IPC_API static
#else
#define IPC_API extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct timespec;
union sigval;

/* Message for a value returned by any ipc.h call (negative errno; positive accepted).
   The string is static: thread-safe and async-signal-safe. */
IPC_API const char *ipc_strerror(int err);

/* ==== 2. Time and deadlines ==== */

/* timeout_ns value that waits without limit. */
#define IPC_FOREVER ((int64_t)-1)

/* CLOCK_MONOTONIC now, in nanoseconds. Async-signal-safe. */
IPC_API int64_t ipc_time_now(void);

/* Relative timeout -> absolute CLOCK_MONOTONIC deadline in ns. IPC_FOREVER stays
   IPC_FOREVER (so does a timeout too large to add), 0 gives the deadline 0 ("try once":
   calls report -EAGAIN rather than -ETIMEDOUT for it), other negatives give -EINVAL. */
IPC_API int64_t ipc_deadline_make(int64_t timeout_ns);

/* Nanoseconds left before the deadline: IPC_FOREVER for none, 0 once passed. */
IPC_API int64_t ipc_deadline_left(int64_t deadline);

/* Time left in milliseconds for poll()/epoll_wait(): -1 for none, rounded up so a
   wait never ends early, capped at INT_MAX. */
IPC_API int ipc_deadline_ms(int64_t deadline);

/* Absolute timespec of the deadline on CLOCK_MONOTONIC (for FUTEX_WAIT_BITSET,
   sem_clockwait, ...) or, for the few kernel calls that insist, on CLOCK_REALTIME
   (mq_timedsend, semtimedop-style APIs; a wall-clock step moves such a wait). Both
   return ts, or NULL when the deadline is IPC_FOREVER (pass NULL to the kernel). */
IPC_API struct timespec *ipc_deadline_timespec(int64_t deadline, struct timespec *ts);
IPC_API struct timespec *ipc_deadline_realtime(int64_t deadline, struct timespec *ts);

/* ==== 3. File-descriptor I/O ==== */

/* Blocking-style I/O on any fd (pipe, FIFO, socket, pty, file) with a deadline. They
   retry EINTR and partial transfers, try the transfer first and poll only when the fd
   would block (without changing its O_NONBLOCK flag), and never raise SIGPIPE: a write
   to a closed reader returns -EPIPE. `done`, when not NULL, receives the bytes moved
   even on failure, so nothing is lost. len 0 or > SSIZE_MAX is -EINVAL.
   On a blocking fd with a finite deadline on kernels without RWF_NOWAIT for that fd
   type, writes go out in PIPE_BUF pieces after poll() so they cannot block past it.
   Thread-safe; another reader or writer on the same fd may interleave its data. */

/* Write all len bytes. Returns len; -EPIPE if the reader is gone; -ETIMEDOUT/-EAGAIN. */
IPC_API ssize_t ipc_fd_write_all(int fd, const void *buf, size_t len, int64_t timeout_ns,
                                 size_t *done);

/* Read exactly len bytes. Returns len; -EPIPE at end of stream, even after a part
   (see *done); -ETIMEDOUT/-EAGAIN. */
IPC_API ssize_t ipc_fd_read_exact(int fd, void *buf, size_t len, int64_t timeout_ns, size_t *done);

/* Read what is there, 1..cap bytes, waiting for the first byte. -EPIPE at end of stream. */
IPC_API ssize_t ipc_fd_read_some(int fd, void *buf, size_t cap, int64_t timeout_ns);

/* poll() one fd for `events` (POLLIN, POLLOUT, ...) until the deadline. Returns the
   revents (> 0); -EAGAIN/-ETIMEDOUT when nothing happened; -EBADF for a closed fd. */
IPC_API int ipc_fd_wait(int fd, int events, int64_t timeout_ns);

/* Set or clear O_NONBLOCK / FD_CLOEXEC. Return 0 or -EBADF. */
IPC_API int ipc_fd_set_nonblock(int fd, int on);
IPC_API int ipc_fd_set_cloexec(int fd, int on);

/* close(*fd) unless it is < 0, then set it to -1. EINTR counts as closed (on Linux the fd
   is gone either way). 0, or -EBADF/-EIO. */
IPC_API int ipc_fd_close(int *fd);

/* ==== 4. Shared memory ==== */

/* One handle over four kinds of shared memory. Every kind is mapped MAP_SHARED and
   read-write unless IPC_SHM_RDONLY. Creation reserves the whole size (posix_fallocate,
   or populating a System V segment), so a full /dev/shm is -ENOSPC at creation and
   never a SIGBUS later. Opening maps the size the kernel reports (fstat / IPC_STAT),
   never a size read from inside the memory. A handle is not shared between threads
   while it is being closed. */
typedef struct ipc_shm {
    void *addr;     /* the mapping */
    size_t size;    /* bytes mapped */
    int fd;         /* the object's fd (POSIX, memfd, file), -1 for System V */
    int id;         /* System V shmid, -1 for the others */
    unsigned kind;  /* IPC_SHM_KIND_* */
    unsigned flags; /* IPC_SHM_* the handle was made with */
} ipc_shm;

enum {
    IPC_SHM_KIND_POSIX = 1, /* named, /dev/shm/<name> */
    IPC_SHM_KIND_MEMFD = 2, /* anonymous memfd, or any object attached by fd */
    IPC_SHM_KIND_SYSV = 3,  /* System V segment, by key or id */
    IPC_SHM_KIND_FILE = 4   /* a regular file: persists on disk */
};

enum {
    IPC_SHM_RDONLY = 1u << 0,   /* map read-only (opening side) */
    IPC_SHM_PREFAULT = 1u << 1, /* fault every page in now (MAP_POPULATE) */
    IPC_SHM_SEAL = 1u << 2      /* memfd: seal the size (F_SEAL_SHRINK | F_SEAL_GROW) */
};

typedef struct ipc_shm_opts {
    unsigned mode;  /* permission bits on create, applied exactly (no umask); 0 = 0600 */
    unsigned flags; /* IPC_SHM_*; 0 = read-write, no prefault, no seal */
} ipc_shm_opts;

/* POSIX shared memory "/name" (or "name"; the slash is added), created exclusively:
   -EEXIST if the name exists (a symlink included). The name appears only once the
   object is fully sized (O_TMPFILE, Linux 3.11+), so an opener never sees it half made.
   name NULL creates an anonymous memfd instead. Errors: -EINVAL (NULL s, size 0 or
   > PTRDIFF_MAX, a '/' inside the name, mode bits beyond 0777), -ENAMETOOLONG (name >
   255), -ENOSPC. */
IPC_API int ipc_shm_create(ipc_shm *s, const char *name, size_t size, const ipc_shm_opts *opts);

/* Open and map an existing POSIX object, whole. -ENOENT, -ELOOP for a symlink, -ENODEV
   for something not a regular file (or -EISDIR for a directory opened read-write),
   -EBADMSG for an object of size 0. opts: flags only. */
IPC_API int ipc_shm_open(ipc_shm *s, const char *name, const ipc_shm_opts *opts);

/* Map a shared-memory fd received from a peer (memfd or POSIX). The handle owns a
   close-on-exec duplicate; the caller keeps (and closes) fd. */
IPC_API int ipc_shm_attach_fd(ipc_shm *s, int fd, const ipc_shm_opts *opts);

/* Remove a POSIX name; mappings stay valid until closed. -ENOENT if absent. */
IPC_API int ipc_shm_unlink(const char *name);

/* System V key from a path and a project byte (ftok); keys are plain ints (key_t is
   int on Linux). -ENOENT if path is absent, -EINVAL for proj 0. */
IPC_API int ipc_shm_key(const char *path, int proj, int *key);

/* System V segment: create exclusively under key (IPC_PRIVATE for always new), open by
   key, or attach by id (ipc_shm.id of the creator). Removal is explicit: call
   ipc_shm_sysv_remove(id); the segment then goes when its last process detaches. */
IPC_API int ipc_shm_sysv_create(ipc_shm *s, int key, size_t size, const ipc_shm_opts *opts);
IPC_API int ipc_shm_sysv_open(ipc_shm *s, int key, const ipc_shm_opts *opts);
IPC_API int ipc_shm_sysv_attach(ipc_shm *s, int id, const ipc_shm_opts *opts);
IPC_API int ipc_shm_sysv_remove(int id);

/* A regular file as persistent shared memory: create exclusively (never through a
   symlink) and reserve size bytes of disk, or open an existing file whole. */
IPC_API int ipc_shm_file_create(ipc_shm *s, const char *path, size_t size,
                                const ipc_shm_opts *opts);
IPC_API int ipc_shm_file_open(ipc_shm *s, const char *path, const ipc_shm_opts *opts);

/* msync a byte range (rounded out to pages) to its file; async != 0 for MS_ASYNC.
   len 0 means to the end. -EINVAL if the range is outside the mapping. */
IPC_API int ipc_shm_sync(const ipc_shm *s, size_t offset, size_t len, int async);

/* Unmap and close (System V: detach). Does not unlink or remove. -EBADF if not open. */
IPC_API int ipc_shm_close(ipc_shm *s);

/* ==== 5. Futexes ==== */

/* Process-shared futexes on a 32-bit word in shared memory (4-byte aligned).
   ipc_futex_wait sleeps while *addr == expected, until a wake or the deadline. Returns
   0 when woken (or spuriously: re-check your condition), 1 if *addr != expected at
   the call, -EAGAIN (timeout 0) or -ETIMEDOUT, -EINVAL for NULL or misaligned addr.
   Signals do not end the wait and never extend it (absolute CLOCK_MONOTONIC deadline,
   FUTEX_WAIT_BITSET). ipc_futex_wait_until takes a deadline from ipc_deadline_make,
   for loops that re-check a condition. Thread-safe and async-signal-safe. */
IPC_API int ipc_futex_wait(uint32_t *addr, uint32_t expected, int64_t timeout_ns);
IPC_API int ipc_futex_wait_until(uint32_t *addr, uint32_t expected, int64_t deadline);

/* Wake up to count waiters (INT_MAX for all). Returns how many were woken. */
IPC_API int ipc_futex_wake(uint32_t *addr, int count);

/* ==== 6. Ring buffers ==== */

/* A lock-free single-producer, single-consumer ring of variable-length messages between
   two processes (other kinds further down), over one shared-memory object (named in
   /dev/shm, or an anonymous memfd shared by fd). Messages of 1..ipc_ring_max_msg() bytes
   arrive whole, in order, exactly once. The data area is mapped twice back to back, so
   every message, and every reservation, is one contiguous span: zero-copy works for
   every size.

   The fast path makes no system call and takes no lock: a side sleeps on a futex only
   after spinning spin_ns, and the other side calls FUTEX_WAKE only when it sees that
   announced. A peer that closes, or dies (SIGKILL included), is seen within 1 s by a
   blocked call: -EPIPE, after every committed message was received. Shared memory is
   never trusted: a corrupted header, index or record poisons the handle (-EBADMSG) and
   nothing is ever read or written outside the mapping.

   Roles (SPSC): the producer and the consumer each belong to one process at a time (another
   claimer gets -EBUSY); a role freed by close or by its holder's death can be claimed
   again. A handle is used by one thread at a time. After fork() the child's copy of a
   handle holds no role: calls on it return -EBADF, except ipc_ring_fd (to attach anew)
   and ipc_ring_close (which unmaps it and leaves the parent's role alone).
   Each handle holds its role through an open file description of its own: ipc_ring_open
   opens the name again, ipc_ring_create and ipc_ring_attach_fd reopen the fd through
   /proc/self/fd, so they need /proc, and attach_fd needs permission to open the object
   (a process of another uid handed a 0600 ring's fd gets -EACCES).

   Slot kinds (IPC_RING_MPMC, IPC_RING_MPSC in opts.flags, with IPC_RING_MSG(n)): any
   number of producer and consumer handles share the ring, at most 128 attached at once
   (-EBUSY beyond; MPSC: one consumer, a second is -EBUSY). Each message takes one slot of
   fixed size; the same calls send, receive, reserve and peek, lock-free (a slot claimed by
   compare-and-swap on a shared position, published by its sequence word), with the same
   spin-then-futex blocking. Each producer's messages arrive in its order; every message is
   taken by exactly one consumer. A producer killed between reserving a slot and
   committing it leaves a hole that consumers pass within about 0.2 s; a consumer killed
   holding a message it took (peek without release) loses that message only, and its slot
   is reclaimed. Both count in ipc_ring_stats.lost. -EPIPE: consumers once the ring is
   empty and every producer that attached has closed or died; producers once every
   consumer that attached has. A handle may hold both roles. Closing a handle cancels its
   reservation and consumes its peeked message.

   Broadcast (IPC_RING_BROADCAST, slots as above): one producer, up to 128 readers
   (IPC_CONSUMER handles; a handle is one or the other). Each reader receives, in order,
   every message committed after it attached. Lossless by default: the producer waits for
   the slowest live reader; a reader that dies is dropped (its lock is free: at once, or
   within 0.1 s for a producer asleep); with no reader attached nothing waits (the
   messages go to nobody). IPC_RING_OVERWRITE:
   the producer never waits; a reader that was lapped gets -EOVERFLOW once
   (ipc_ring_stats.lost counts what it missed) and goes on from the oldest message still in
   the ring. A message is never returned torn: recv checks the slot's sequence after
   copying. A peeked message may be overwritten while it is read: ipc_ring_release then
   says -EOVERFLOW (discard what was read). Readers see -EPIPE once the producer closed or
   died and they have read everything; the producer never sees -EPIPE. */
typedef struct ipc_ring_opts {
    size_t capacity;  /* bytes of message space; 0 = 1 MiB; rounded up to a power of two,
                         at least one page, at most 1 GiB */
    uint32_t spin_ns; /* spin before sleeping; 0 = adaptive (1..64 us); 1 = barely spin */
    unsigned flags;   /* IPC_RING_*; 0 = single producer, single consumer */
    unsigned mode;    /* permission bits of a named ring; 0 = 0600 */
} ipc_ring_opts;

enum { IPC_PRODUCER = 1, IPC_CONSUMER = 2 };

enum {
    IPC_RING_SPSC = 0,            /* kind: single producer, single consumer (the default) */
    IPC_RING_MPMC = 1,            /* kind: any producers, any consumers; fixed-size slots */
    IPC_RING_MPSC = 2,            /* kind: any producers, one consumer; fixed-size slots */
    IPC_RING_BROADCAST = 3,       /* kind: one producer, readers that each see every message */
    IPC_RING_PREFAULT = 1u << 16, /* every side faults the whole mapping in at attach */
    IPC_RING_OVERWRITE = 1u << 17 /* broadcast: never wait for readers; lapped ones skip */
};

/* Slot kinds: messages of up to n bytes (16 <= n < 1 GiB). A slot is n + 16 bytes rounded
   up to a power of two, so ipc_ring_max_msg may say more than n; the capacity grows to two
   slots if it is smaller. Default: 256-byte slots (messages up to 240 bytes). */
#define IPC_RING_MSG(n) ((unsigned)IPC__RING_LOG2((uint64_t)(n) + 16) << 24)
#define IPC__RING_LOG2(x)                                                                          \
    ((x) <= 32           ? 5                                                                       \
     : (x) <= 64         ? 6                                                                       \
     : (x) <= 128        ? 7                                                                       \
     : (x) <= 256        ? 8                                                                       \
     : (x) <= 512        ? 9                                                                       \
     : (x) <= 1024       ? 10                                                                      \
     : (x) <= 2048       ? 11                                                                      \
     : (x) <= 4096       ? 12                                                                      \
     : (x) <= 8192       ? 13                                                                      \
     : (x) <= 16384      ? 14                                                                      \
     : (x) <= 32768      ? 15                                                                      \
     : (x) <= 65536      ? 16                                                                      \
     : (x) <= 131072     ? 17                                                                      \
     : (x) <= 262144     ? 18                                                                      \
     : (x) <= 524288     ? 19                                                                      \
     : (x) <= 1048576    ? 20                                                                      \
     : (x) <= 2097152    ? 21                                                                      \
     : (x) <= 4194304    ? 22                                                                      \
     : (x) <= 8388608    ? 23                                                                      \
     : (x) <= 16777216   ? 24                                                                      \
     : (x) <= 33554432   ? 25                                                                      \
     : (x) <= 67108864   ? 26                                                                      \
     : (x) <= 134217728  ? 27                                                                      \
     : (x) <= 268435456  ? 28                                                                      \
     : (x) <= 536870912  ? 29                                                                      \
     : (x) <= 1073741824 ? 30                                                                      \
                         : 31)

/* Process-local handle. Its fields are private: use the functions. */
typedef struct ipc_ring {
    unsigned char *base;  /* header page, then the data area mapped twice */
    unsigned char *data;  /* base + header size */
    size_t map_size;      /* bytes of address space reserved at base */
    uint64_t cap;         /* capacity, a power of two */
    uint64_t ptail;       /* producer: our tail */
    uint64_t phead;       /* producer: last head seen; consumer: our head */
    uint64_t reserved;    /* producer: message bytes reserved, 0 if none */
    uint64_t peeked;      /* consumer: record size peeked, 0 if none */
    int64_t peer_check;   /* when the peer's liveness was last checked */
    uint32_t spin_ns;     /* configured spin, 0 = adaptive */
    uint32_t spin_cur;    /* current adaptive spin */
    int fd;               /* the object's fd, to hand to a peer */
    int lockfd;           /* private open file description holding the role locks */
    int role;             /* IPC_PRODUCER | IPC_CONSUMER held by this handle */
    unsigned gen;         /* fork generation at attach: a forked copy holds no role */
    int peer_dead;        /* last liveness check found the peer's lock free */
    uint32_t peer_claims; /* the peer's claim count at that check */
    int fence;            /* 1: no membarrier here, use full fences */
    int poisoned;         /* shared memory found corrupt: every call is -EBADMSG */
    unsigned flags;
    uint64_t nsleep, nwake; /* futex waits and wakes this handle made */
    uint32_t kind;          /* IPC_RING_SPSC, _MPMC or _MPSC */
    uint32_t slot_shift;    /* slot kinds: log2 of the slot size */
    uint64_t nslots;        /* slot kinds: slots in the ring (capacity >> slot_shift) */
    uint64_t nlost;         /* slot kinds: holes passed and slots reclaimed from the dead */
    int reg;                /* slot kinds: our registry entry */
    uint64_t bgen;          /* broadcast producer: reader joins seen at the last scan */
    uint64_t bmin;          /* broadcast producer: slowest live reader at the last scan */
    void *poller;           /* ipc_ring_pollfd's thread and eventfd, or NULL */
    int64_t unstick_at;     /* slot kinds: when to look for slots held by the dead next */
} ipc_ring;

/* Create a ring and claim role (IPC_PRODUCER, IPC_CONSUMER, or both) in it. name "/x" or
   "x" creates /dev/shm/x exclusively (-EEXIST), mode 0600, visible only once complete;
   name NULL creates an anonymous ring (sealed memfd): give ipc_ring_fd() to the peer.
   -EINVAL for a bad role, name or capacity; -ENOSPC if /dev/shm is full. */
IPC_API int ipc_ring_create(ipc_ring *r, const char *name, int role, const ipc_ring_opts *opts);

/* Open a named ring and claim role. -ENOENT, -EBUSY (role taken), -EBADMSG (not a ring
   of this layout version), -ELOOP (a symlink at the name). A named ring trusts whoever
   may open its name: one that truncates the object makes every handle fault (SIGBUS).
   Between processes that do not trust each other, pass an anonymous ring's fd. */
IPC_API int ipc_ring_open(ipc_ring *r, const char *name, int role);

/* Attach by an fd from a peer's ipc_ring_fd() (inherited over fork or received over a
   Unix socket); the caller keeps its fd. Errors as ipc_ring_open; -EBADMSG also for an
   object its sender could truncate (not sealed against shrinking, not in /dev/shm). */
IPC_API int ipc_ring_attach_fd(ipc_ring *r, int fd, int role);

/* The ring's shared-memory fd (close-on-exec), to pass to a peer. Owned by the handle. */
IPC_API int ipc_ring_fd(const ipc_ring *r);

/* Release the role, wake the peer and unmap. The peer's calls then return -EPIPE (the
   consumer after draining). A pending reservation is cancelled. -EBADF if not open. */
IPC_API int ipc_ring_close(ipc_ring *r);

/* Remove a named ring; attached handles keep working. */
IPC_API int ipc_ring_unlink(const char *name);

/* Copy one message in. 0, or -EAGAIN/-ETIMEDOUT (full), -EPIPE (consumer gone),
   -EINVAL (len 0, NULL msg), -EMSGSIZE (len > max_msg), -EBADMSG. */
IPC_API int ipc_ring_send(ipc_ring *r, const void *msg, size_t len, int64_t timeout_ns);

/* Copy one message out: its length, or -EMSGSIZE if cap is too small (the message stays
   queued; ipc_ring_peek tells its size), -EAGAIN/-ETIMEDOUT (empty), -EPIPE (producer
   gone and every message received), -EBADMSG. */
IPC_API ssize_t ipc_ring_recv(ipc_ring *r, void *buf, size_t cap, int64_t timeout_ns);

/* Zero-copy send: reserve len contiguous bytes at *msg, write them, then commit. commit
   may shrink the message (1..len) or cancel it (0); nothing is visible before it, so a
   producer that dies in between leaves nothing. Errors as ipc_ring_send; reserving
   twice is -EINVAL. */
IPC_API int ipc_ring_reserve(ipc_ring *r, size_t len, void **msg, int64_t timeout_ns);
IPC_API int ipc_ring_commit(ipc_ring *r, size_t len);

/* Zero-copy receive: *msg points at the next message in the ring (valid until release);
   returns its length. Peeking again before release returns the same message. Errors as
   ipc_ring_recv. release consumes it: 0, or -EINVAL if nothing is peeked. */
IPC_API ssize_t ipc_ring_peek(ipc_ring *r, const void **msg, int64_t timeout_ns);
IPC_API int ipc_ring_release(ipc_ring *r);

/* System calls the blocking protocol made through this handle: FUTEX_WAIT sleeps and
   FUTEX_WAKE calls. Both stay 0 while neither side ever has to sleep. lost (slot kinds):
   messages this handle passed or reclaimed because whoever held them died. */
typedef struct ipc_ring_stats {
    uint64_t sleeps, wakes;
    uint64_t lost;
} ipc_ring_stats;
IPC_API int ipc_ring_get_stats(const ipc_ring *r, ipc_ring_stats *st);

/* A file descriptor for poll, epoll, libuv or libevent: readable (POLLIN) while a call of
   the handle's role would not block: a message to receive (consumer), room to send
   (producer), or the peer gone (-EPIPE next). Level-triggered: it stays readable until a
   call of the handle returns -EAGAIN, which re-arms it; so drain with timeout 0 until
   -EAGAIN, then wait on the fd again. An eventfd, close-on-exec, owned by the handle
   (ipc_ring_close closes it); calling again returns the same fd. The first call starts a
   thread that sleeps on the ring's futex for the handle, and only while armed: the peer's
   fast path stays free of system calls and rings this doorbell only when someone waits.
   The handle's calls still belong to one thread at a time. -EINVAL for a handle with both
   roles, -ENOMEM/-EAGAIN when no thread can be made. Allocates. */
IPC_API int ipc_ring_pollfd(ipc_ring *r);

/* Largest message: capacity - 16 (a record carries an 8-byte header and is padded to 8
   bytes, and 8 bytes stay free for the next header); slot kinds: slot size - 16. 0 for
   a closed handle. */
IPC_API size_t ipc_ring_max_msg(const ipc_ring *r);

/* ==== 7. Pipes, FIFOs and child processes ==== */

/* A pipe, or one endpoint of a duplex channel: the fd this side reads and the fd it
   writes (-1 when closed). Both are plain fds: use the section 3 calls, the framing of
   section 8, poll or epoll on them. Capacity is the kernel's (64 KiB by default);
   writes of up to PIPE_BUF (4096) bytes are atomic even with many writers. */
typedef struct ipc_pipe {
    int rfd;
    int wfd;
} ipc_pipe;

enum {
    IPC_PIPE_NONBLOCK_READ = 1,  /* O_NONBLOCK on the read end(s) */
    IPC_PIPE_NONBLOCK_WRITE = 2, /* O_NONBLOCK on the write end(s) */
    IPC_PIPE_PACKET = 4          /* O_DIRECT: each write() is one packet for read() */
};

typedef struct ipc_pipe_opts {
    unsigned flags;  /* IPC_PIPE_* */
    size_t capacity; /* 0 = the kernel's default; else as ipc_pipe_set_capacity */
} ipc_pipe_opts;

/* Create a pipe, both ends close-on-exec: what p->wfd writes, p->rfd reads.
   -EMFILE/-ENFILE; capacity errors as ipc_pipe_set_capacity (nothing is left open). */
IPC_API int ipc_pipe_open(ipc_pipe *p, const ipc_pipe_opts *opts);

/* Full duplex over two pipes: end[0].rfd reads what end[1].wfd writes and the other
   way round. Give end[1] to the peer (fork, spawn) and close it here. */
IPC_API int ipc_pipe_duplex(ipc_pipe end[2], const ipc_pipe_opts *opts);

/* Close whatever ends are open and mark them -1. 0, or the first close error. */
IPC_API int ipc_pipe_close(ipc_pipe *p);

/* Bytes the pipe holds at most (F_GETPIPE_SZ), for either end's fd. */
IPC_API ssize_t ipc_pipe_capacity(int fd);

/* Resize (F_SETPIPE_SZ): returns the new capacity, size rounded up to a power-of-two
   number of pages. -EPERM above /proc/sys/fs/pipe-max-size without CAP_SYS_RESOURCE,
   or over the user's pipe quota; -EBUSY if the pipe holds more than size; -EINVAL for
   0 or a size above INT_MAX. Never silently ignored. */
IPC_API ssize_t ipc_pipe_set_capacity(int fd, size_t size);

/* FIFOs: named pipes in the file system. Any process that can open the path joins. */

enum { IPC_FIFO_READ = 1, IPC_FIFO_WRITE = 2, IPC_FIFO_NONBLOCK = 4 };

/* mkfifo path exclusively: mode 0 = 0600, applied exactly (umask ignored). -EEXIST when
   anything is at path (a FIFO too: never reuse silently). */
IPC_API int ipc_fifo_create(const char *path, unsigned mode);

/* Open a FIFO. Returns the fd (close-on-exec; O_NONBLOCK only with IPC_FIFO_NONBLOCK).
   IPC_FIFO_READ returns at once: the kernel's blocking open waits for a writer, this one
   lets the first read wait instead, and the section 3 and 8 reads treat "no writer has
   come yet" as no data rather than end of stream. So opening can never deadlock.
   IPC_FIFO_WRITE waits for a reader until the deadline: -ETIMEDOUT, or -EAGAIN for a zero
   timeout (the kernel says ENXIO). No event announces a reader, so the open is retried,
   backing off from 50 us to 5 ms. -EINVAL: flags not exactly one of READ/WRITE, or
   something other than a FIFO at path (checked before it is opened); -ELOOP: a symlink. */
IPC_API int ipc_fifo_open(const char *path, int flags, int64_t timeout_ns);

/* unlink the path if it is a FIFO: -EINVAL (and nothing removed) if it is not. */
IPC_API int ipc_fifo_unlink(const char *path);

/* Full duplex over two FIFOs named "<path>.a2b" (side A writes, side B reads) and
   "<path>.b2a". create makes both (exclusive; on error neither remains); each side opens
   its read FIFO first, then waits for the peer's to write, so the two sides may open in
   any order. path may be at most PATH_MAX - 5 bytes (-ENAMETOOLONG). */
enum { IPC_FIFO_SIDE_A = 0, IPC_FIFO_SIDE_B = 1 };
IPC_API int ipc_fifo_duplex_create(const char *path, unsigned mode);
IPC_API int ipc_fifo_duplex_open(ipc_pipe *end, const char *path, int side, int64_t timeout_ns);
IPC_API int ipc_fifo_duplex_unlink(const char *path);

/* Child processes wired to pipes: "a pipe needs a related process", in one call.
   The child runs with stdin/stdout/stderr on pipes (or as the options say), default
   signal dispositions, an empty signal mask, and no fd of the parent other than 0-2:
   descriptors without close-on-exec are closed too. The parent keeps the other ends. */
typedef struct ipc_proc {
    pid_t pid;  /* 0 once reaped */
    int pidfd;  /* readable when the child exits; -1 before Linux 5.3 */
    int in;     /* write end of the child's stdin, or -1 */
    int out;    /* read end of its stdout, or -1 */
    int err;    /* read end of its stderr, or -1 */
    int status; /* wait status (WIFEXITED, ...) once reaped */
} ipc_proc;

enum {
    IPC_STDIO_PIPE = 0,    /* a pipe to the parent (default) */
    IPC_STDIO_INHERIT = 1, /* the parent's own fd */
    IPC_STDIO_NULL = 2,    /* /dev/null */
    IPC_STDIO_STDOUT = 3   /* stderr only: into the stdout pipe (2>&1) */
};

enum {
    IPC_SPAWN_PATH = 1,    /* search PATH for file, as execvp */
    IPC_SPAWN_PGROUP = 2,  /* the child leads a new process group (signal it with -pid) */
    IPC_SPAWN_NONBLOCK = 4 /* the parent's pipe ends are O_NONBLOCK */
};

typedef struct ipc_spawn_opts {
    int in, out, err;  /* IPC_STDIO_* for each stream; 0 = a pipe */
    char *const *envp; /* the environment; NULL = the caller's */
    unsigned flags;    /* IPC_SPAWN_* */
} ipc_spawn_opts;

/* Start file with argv (argv[0] included, NULL-terminated). 0, or -ENOENT/-EACCES/...
   when it cannot be executed (nothing is left open or running). posix_spawn based, so
   safe in threaded and large processes. Allocates (file actions); not signal-safe. */
IPC_API int ipc_proc_spawn(ipc_proc *p, const char *file, char *const argv[],
                           const ipc_spawn_opts *opts);

/* Reap the child before the deadline: returns its wait status (>= 0, also in p->status),
   or -ETIMEDOUT/-EAGAIN with the child still running, -ECHILD if already reaped.
   Reaping closes p->pidfd (set to -1): take it out of any poll or epoll set first. */
IPC_API int ipc_proc_wait(ipc_proc *p, int64_t timeout_ns);

/* Send sig through the pidfd where there is one, so a recycled pid is never hit.
   -ESRCH once reaped. */
IPC_API int ipc_proc_kill(ipc_proc *p, int sig);

/* Close the pipe ends and the pidfd. Does not wait: reap first, or the child stays a
   zombie until this process exits. */
IPC_API int ipc_proc_close(ipc_proc *p);

/* ==== 8. Message framing over byte streams ==== */

/* Whole messages over any stream fd (pipe, FIFO, stream socket, pty in raw mode). On
   the wire a frame is a 4-byte little-endian length, then that many payload bytes
   (Python: struct.pack("<I", len(m)) + m). Zero-length messages are allowed.
   An ipc_frame per stream keeps the progress of a frame cut short by a deadline, so
   -EAGAIN/-ETIMEDOUT never loses or splits a frame: call again (with the same message to
   send, or the same buffer to receive into) and it carries on. This makes the calls
   usable from a non-blocking epoll loop too. */
typedef struct ipc_frame_opts {
    uint32_t max_msg; /* largest payload accepted or sent; 0 = 16 MiB */
    unsigned flags;   /* IPC_FRAME_* */
} ipc_frame_opts;

enum {
    IPC_FRAME_ATOMIC = 1 /* several writers share the stream (a FIFO): a frame goes out in
                            one write of at most PIPE_BUF bytes, larger is -EMSGSIZE */
};

/* Per-stream state, one per stream and process for both directions (one thread may send
   while another receives). Fields are private. */
typedef struct ipc_frame {
    int fd;
    unsigned flags;
    uint32_t max_msg;
    int rx_broken;      /* the incoming stream lost sync: receives are -EPROTO */
    uint32_t rx_len;    /* frame being received: payload length (once the header is in) */
    size_t rx_done;     /* its bytes received so far, header included */
    const void *tx_msg; /* frame being sent: its payload */
    size_t tx_len;      /* its length */
    size_t tx_done;     /* its bytes sent so far, header included */
    int tx_mode;        /* how the fd takes non-blocking transfers, once learnt */
    int rx_mode;
    unsigned char rx_hdr[4];
} ipc_frame;

/* Bind state to fd (not owned: closing the fd is the caller's). -EINVAL, -EBADF. */
IPC_API int ipc_frame_init(ipc_frame *f, int fd, const ipc_frame_opts *opts);

/* Send one message (msg may be NULL when len is 0). Returns len, or: -EMSGSIZE (len >
   max_msg, or IPC_FRAME_ATOMIC and 4 + len > PIPE_BUF; nothing sent), -EPIPE (reader
   gone), -EAGAIN/-ETIMEDOUT (part of the frame may be out: call again with the same
   msg and len to finish it; another message is -EINVAL until then), -EPROTO. */
IPC_API ssize_t ipc_frame_send(ipc_frame *f, const void *msg, size_t len, int64_t timeout_ns);

/* Receive one message straight into buf: its length (0..cap), or:
   -EMSGSIZE   the next message is longer than cap (it stays queued; see ipc_frame_pending)
   -EPIPE      end of stream between frames
   -EPROTO     the stream is unusable: it ended inside a frame (a truncated frame is never
               returned as a short message) or a header announced more than max_msg
   -EAGAIN/-ETIMEDOUT   nothing or part of a frame arrived: call again with the same buf */
IPC_API ssize_t ipc_frame_recv(ipc_frame *f, void *buf, size_t cap, int64_t timeout_ns);

/* Length of the message whose header has been received and whose payload has not been
   fully, or -ENOMSG if none has started. */
IPC_API ssize_t ipc_frame_pending(const ipc_frame *f);

/* ==== 9. POSIX message queues ==== */

/* Kernel message queues with priorities ("/name", as shared memory names). A queue is an
   fd on Linux (mqd_t is int): poll it for POLLIN (a message) or POLLOUT (room). Messages
   are whole and come out highest priority first, FIFO within a priority.
   System limits, each with its own error at create:
     -ERANGE     max_msgs above /proc/sys/fs/mqueue/msg_max (10 by default)
     -EMSGSIZE   msg_size above /proc/sys/fs/mqueue/msgsize_max (8192 by default)
     -ENOSPC     queues_max queues already exist (256 by default)
     -EDQUOT     the user's RLIMIT_MSGQUEUE (819200 bytes by default) would be exceeded
   (a process with CAP_SYS_RESOURCE may exceed the first two). */
typedef struct ipc_mq_opts {
    long max_msgs;  /* 0 = /proc/sys/fs/mqueue/msg_default (10) */
    long msg_size;  /* 0 = /proc/sys/fs/mqueue/msgsize_default (8192) */
    unsigned mode;  /* 0 = 0600, applied exactly */
    unsigned flags; /* IPC_MQ_NONBLOCK */
} ipc_mq_opts;

enum { IPC_MQ_READ = 1, IPC_MQ_WRITE = 2, IPC_MQ_NONBLOCK = 4 };

typedef struct ipc_mq_attr {
    long max_msgs, msg_size, cur_msgs;
    int nonblock;
} ipc_mq_attr;

/* Create exclusively (-EEXIST) and open for reading and writing. Returns the queue fd. */
IPC_API int ipc_mq_create(const char *name, const ipc_mq_opts *opts);
/* Open with IPC_MQ_READ and/or IPC_MQ_WRITE (| IPC_MQ_NONBLOCK). -ENOENT, -EACCES. */
IPC_API int ipc_mq_open(const char *name, int flags);
IPC_API int ipc_mq_close(int mq);
IPC_API int ipc_mq_unlink(const char *name);
IPC_API int ipc_mq_getattr(int mq, ipc_mq_attr *attr);

/* Send with priority prio (0..MQ_PRIO_MAX-1, 32767 on Linux; higher first). 0, or
   -EMSGSIZE (len > msg_size), -EAGAIN/-ETIMEDOUT (full), -EBADF (not open for writing).
   The kernel's timed calls take CLOCK_REALTIME; these wait with poll() on the monotonic
   deadline instead, so a wall-clock step never stretches or cuts a wait. */
IPC_API int ipc_mq_send(int mq, const void *msg, size_t len, unsigned prio, int64_t timeout_ns);
/* Receive the oldest message of the highest priority: its length; *prio gets its
   priority when not NULL. -EMSGSIZE if cap < msg_size (nothing is taken),
   -EAGAIN/-ETIMEDOUT (empty). */
IPC_API ssize_t ipc_mq_recv(int mq, void *buf, size_t cap, unsigned *prio, int64_t timeout_ns);

/* mq_notify: when a message arrives in the empty queue and no receiver is blocked,
   either send signo to this process (si_code SI_MESGQ, si_value.sival_int = value) or
   run fn on a new thread with sival_ptr = arg (the C library's SIGEV_THREAD: include
   <signal.h> to define fn). One-shot: register again from the notification. One
   process per queue may register (-EBUSY). cancel removes this process's registration. */
IPC_API int ipc_mq_notify_signal(int mq, int signo, int value);
IPC_API int ipc_mq_notify_thread(int mq, void (*fn)(union sigval), void *arg);
IPC_API int ipc_mq_notify_cancel(int mq);

/* ==== 10. System V message queues ==== */

/* Queues named by an integer key (ipc_shm_key() turns a path and id into one;
   IPC_PRIVATE, 0, makes a new queue for related processes). Messages are the kernel's
   layout: a long type > 0, then len bytes of text:
       struct { long type; char text[64]; } m = {1, "hi"};
       ipc_msgq_send(id, &m, 3, IPC_FOREVER);
   The kernel has no timed receive or send. With IPC_FOREVER these block in the kernel
   (removal wakes them at once: -EIDRM); with a finite timeout they retry with IPC_NOWAIT,
   sleeping 50 us doubling to 2 ms in between, so a message or a removal is seen at
   most 2 ms late and a long wait costs about 500 wake-ups a second. */
enum {
    IPC_MSGQ_TRUNCATE = 1, /* receive: cut a long message to cap (MSG_NOERROR) */
    IPC_MSGQ_EXCEPT = 2    /* receive: the first message whose type is not `type` */
};

typedef struct ipc_msgq_info {
    size_t msgs;      /* messages queued */
    size_t bytes;     /* bytes of text queued */
    size_t max_bytes; /* capacity in bytes (msg_qbytes) */
    pid_t last_send_pid, last_recv_pid;
    unsigned mode;
    unsigned uid;
} ipc_msgq_info;

/* Create exclusively for key (-EEXIST), mode 0 = 0600. Returns the queue id. */
IPC_API int ipc_msgq_create(int key, unsigned mode);
/* Open an existing queue: its id, or -ENOENT. */
IPC_API int ipc_msgq_open(int key);
/* Remove at once: blocked senders and receivers get -EIDRM; later calls with the id get
   -EINVAL (the kernel cannot tell a removed id from one that never was). */
IPC_API int ipc_msgq_remove(int id);
/* IPC_STAT in plain fields. */
IPC_API int ipc_msgq_stat(int id, ipc_msgq_info *info);

/* Send: msg points at {long type (> 0); len bytes}. 0, or -EINVAL (type <= 0, NULL),
   -EMSGSIZE (len > msgmax), -EAGAIN/-ETIMEDOUT (queue full), -EIDRM (removed). */
IPC_API int ipc_msgq_send(int id, const void *msg, size_t len, int64_t timeout_ns);

/* Receive into buf = {long type; cap bytes}: the text length (the type is in buf).
   type 0: the first message; > 0: the first of that type (or, with IPC_MSGQ_EXCEPT,
   of any other type); < 0: the first of the lowest type <= -type. -EMSGSIZE when the
   message is longer than cap (it stays queued, unless IPC_MSGQ_TRUNCATE),
   -EAGAIN/-ETIMEDOUT, -EIDRM (the queue was removed, also while waiting). */
IPC_API ssize_t ipc_msgq_recv(int id, void *buf, size_t cap, long type, unsigned flags,
                              int64_t timeout_ns);

/* ==== 11. Sockets ==== */

/* Unix, TCP and UDP sockets named by endpoint strings, one syntax for every call:
       unix:/run/app.sock     unix:@name (abstract: no file, no permissions)
       tcp:127.0.0.1:5000     tcp:[::1]:5000     tcp:localhost:5000     udp:0.0.0.0:0
   Host names are resolved with getaddrinfo (which may block on DNS; the first address
   counts); numeric addresses never touch the resolver. Every socket is close-on-exec,
   every send is MSG_NOSIGNAL (a closed peer is -EPIPE, never SIGPIPE), and every wait
   is bounded by its deadline. Sockets are plain fds: ipc_fd_write_all,
   ipc_fd_read_exact and the framing of section 8 work on stream sockets as they are. */

enum { IPC_SOCK_STREAM = 1, IPC_SOCK_DGRAM = 2, IPC_SOCK_SEQPACKET = 5 }; /* = SOCK_* */

/* An address as the kernel takes it (a struct sockaddr_storage and its length), and the
   socket type it is for. */
typedef struct ipc_sockaddr {
    union {
        unsigned char bytes[128];
        uint64_t align;
    } u;
    uint32_t len;
    int type; /* IPC_SOCK_* */
} ipc_sockaddr;

enum {
    IPC_SOCK_NONBLOCK = 1,   /* the returned fd is O_NONBLOCK */
    IPC_SOCK_NODELAY = 2,    /* TCP_NODELAY: no Nagle delay for small writes */
    IPC_SOCK_KEEPALIVE = 4,  /* SO_KEEPALIVE (the kernel's timers) */
    IPC_SOCK_REUSEPORT = 8,  /* SO_REUSEPORT: several listeners share a port */
    IPC_SOCK_BROADCAST = 16, /* SO_BROADCAST: UDP may send to broadcast addresses */
    IPC_SOCK_V6ONLY = 32     /* IPV6_V6ONLY: an IPv6 wildcard does not take IPv4 */
};

typedef struct ipc_sock_opts {
    int type;       /* 0 = by scheme (unix, tcp: stream; udp: datagram); for unix:
                       IPC_SOCK_DGRAM or IPC_SOCK_SEQPACKET */
    int backlog;    /* listen queue; 0 = SOMAXCONN */
    unsigned flags; /* IPC_SOCK_* */
    unsigned mode;  /* permission bits of a unix socket file; 0 = 0600 */
} ipc_sock_opts;

/* Parse an endpoint. -EINVAL for anything malformed (scheme, brackets, port outside
   0..65535, empty parts), -ENAMETOOLONG for a unix path over 107 bytes, -ENOENT for a host
   name that does not resolve. Thread-safe. */
IPC_API int ipc_sock_parse(const char *endpoint, ipc_sockaddr *addr);

/* Format an address as an endpoint: the length written (without the NUL), -ENOSPC if
   cap is too small, -EINVAL for an address family it cannot name. An unnamed unix
   socket (a socketpair end, an unbound client) formats as "unix:". */
IPC_API int ipc_sock_format(const ipc_sockaddr *addr, char *buf, size_t cap);

/* A listening stream (or unix seqpacket) socket: its fd, non-blocking so that accepts
   can keep their deadlines and epoll can drive it. TCP gets SO_REUSEADDR; port 0 picks a
   free port (ipc_sock_local tells which). A unix path is created with opts->mode exactly;
   a socket file left by a dead server is replaced, but only when it is a socket and
   connecting to it is refused (checked and replaced under a lock on the directory, so
   two servers starting at once cannot both take it); -EADDRINUSE while a server
   accepts there, -EEXIST when anything else is at the path. The probe is a real
   connect: a live server there accepts one connection that closes without data. */
IPC_API int ipc_sock_listen(const char *endpoint, const ipc_sock_opts *opts);

/* Accept one connection before the deadline: its fd (close-on-exec, blocking), and the
   peer's address in *peer when not NULL. Retries EINTR and connections aborted before
   they were accepted. */
IPC_API int ipc_sock_accept(int lfd, ipc_sockaddr *peer, int64_t timeout_ns);

/* Connect a stream or seqpacket socket (or a connected datagram socket) to endpoint
   before the deadline: the fd, or -ECONNREFUSED, -ETIMEDOUT/-EAGAIN, -ENOENT (no unix
   socket at the path). Non-blocking connect and poll underneath; a unix server whose
   backlog is full is retried until the deadline. */
IPC_API int ipc_sock_connect(const char *endpoint, const ipc_sock_opts *opts, int64_t timeout_ns);

/* A datagram socket bound to endpoint (udp:, or unix: with type IPC_SOCK_DGRAM; unix
   paths as ipc_sock_listen). "udp:0.0.0.0:0" is any port on every interface. */
IPC_API int ipc_sock_bind(const char *endpoint, const ipc_sock_opts *opts);

/* socketpair(AF_UNIX, type): the related-process shortcut. Both close-on-exec. */
IPC_API int ipc_sock_pair(int fds[2], int type);

/* The address a socket is bound to (getsockname) or connected to (getpeername). */
IPC_API int ipc_sock_local(int fd, ipc_sockaddr *addr);
IPC_API int ipc_sock_peer(int fd, ipc_sockaddr *addr);

/* Remove the socket file of a unix endpoint, if it is a socket (-EINVAL otherwise).
   A no-op for abstract names. */
IPC_API int ipc_sock_unlink(const char *endpoint);

/* Send all len bytes (a stream), or one whole message (datagram, seqpacket: the kernel
   takes it whole or not at all). Returns len; -EPIPE (peer gone), -EMSGSIZE (datagram
   too large), -ETIMEDOUT/-EAGAIN (on a stream, *done tells how much went out when not
   NULL). len 0 sends an empty datagram on a datagram socket, and is -EINVAL on the
   others (an empty seqpacket message would read as the end of the connection). */
IPC_API ssize_t ipc_sock_send(int fd, const void *buf, size_t len, int64_t timeout_ns,
                              size_t *done);

/* Receive: on a stream, 1..cap bytes (-EPIPE at end of stream); on a datagram or
   seqpacket socket, one message (a seqpacket peer that closed is -EPIPE). A datagram
   longer than cap is -EMSGSIZE and, as the kernel drops the rest, lost: ask
   ipc_sock_next_size first where that matters. */
IPC_API ssize_t ipc_sock_recv(int fd, void *buf, size_t cap, int64_t timeout_ns);

/* Datagrams with addresses: send to `to`; receive with the sender's address in *from. */
IPC_API ssize_t ipc_sock_sendto(int fd, const void *buf, size_t len, const ipc_sockaddr *to,
                                int64_t timeout_ns);
IPC_API ssize_t ipc_sock_recvfrom(int fd, void *buf, size_t cap, ipc_sockaddr *from,
                                  int64_t timeout_ns);

/* Wait for the next datagram and return its size without taking it (MSG_PEEK|MSG_TRUNC). */
IPC_API ssize_t ipc_sock_next_size(int fd, int64_t timeout_ns);

/* shutdown(): IPC_SHUT_RD, IPC_SHUT_WR (half-close: the peer reads end of stream) or
   IPC_SHUT_RDWR. */
enum { IPC_SHUT_RD = 0, IPC_SHUT_WR = 1, IPC_SHUT_RDWR = 2 };
IPC_API int ipc_sock_shutdown(int fd, int how);

/* Set IPC_SOCK_NODELAY, IPC_SOCK_KEEPALIVE, IPC_SOCK_BROADCAST (on or off) on a socket.
   Linux copies NODELAY and KEEPALIVE from a listener to the connections it accepts. */
IPC_API int ipc_sock_set(int fd, unsigned flag, int on);

/* Kernel buffer sizes (SO_SNDBUF / SO_RCVBUF; 0 leaves one as it is). The kernel doubles
   the value for its bookkeeping and caps it at net.core.wmem_max / rmem_max; returns 0,
   with what it granted readable by getsockopt. Large datagrams need room for several. */
IPC_API int ipc_sock_set_buffers(int fd, size_t sndbuf, size_t rcvbuf);

/* Multicast: join or leave group (an endpoint such as "udp:239.1.2.3:0" or
   "udp:[ff02::1234]:0"; the port is ignored) on interface ifname (NULL: the kernel's
   choice; "lo" for tests on one machine). ipc_sock_multicast_if sends this socket's
   multicast out of ifname, with loopback to local members on. */
IPC_API int ipc_sock_join(int fd, const char *group, const char *ifname);
IPC_API int ipc_sock_leave(int fd, const char *group, const char *ifname);
IPC_API int ipc_sock_multicast_if(int fd, const char *group, const char *ifname);

/* fd passing over a unix socket (SCM_RIGHTS). Send len >= 1 bytes with nfds descriptors
   (1..IPC_SOCK_MAX_FDS); they ride with the first byte. Returns len, errors as
   ipc_sock_send. */
#define IPC_SOCK_MAX_FDS 252 /* the kernel takes 253; musl's sendmsg 1024 bytes of control */
IPC_API ssize_t ipc_sock_send_fds(int fd, const void *buf, size_t len, const int *fds, int nfds,
                                  int64_t timeout_ns);

/* Receive data and up to *nfds descriptors (close-on-exec) into fds; *nfds becomes the
   number received (0 when the data carried none). Returns the bytes received. If
   anything goes wrong the call fails and every descriptor that arrived is closed, so
   the process's fd count is as before: -EMSGSIZE when more descriptors came than *nfds
   (or a datagram was truncated), -EMFILE when the fd table was full (the kernel drops
   what it cannot install), -EPIPE, -ETIMEDOUT/-EAGAIN. */
IPC_API ssize_t ipc_sock_recv_fds(int fd, void *buf, size_t cap, int *fds, int *nfds,
                                  int64_t timeout_ns);

/* The credentials of a unix peer (SO_PEERCRED): as of connect (or socketpair). */
typedef struct ipc_peercred {
    pid_t pid;
    unsigned uid, gid;
} ipc_peercred;
IPC_API int ipc_sock_peercred(int fd, ipc_peercred *cred);

/* A pidfd of the unix peer (SO_PEERPIDFD, Linux 6.5+): a handle that never names a
   recycled pid (see ipc_proc). -ENOPROTOOPT on older kernels, where there is no race-free
   way: use the pid from ipc_sock_peercred knowing that it may be reused. */
IPC_API int ipc_sock_peer_pidfd(int fd);

/* Hand a ring to an unrelated process without any name in /dev/shm: its fd rides over a
   unix socket with a one-byte message, and the peer attaches to it with role. */
IPC_API int ipc_sock_send_ring(int fd, const ipc_ring *r, int64_t timeout_ns);
IPC_API int ipc_sock_recv_ring(int fd, ipc_ring *r, int role, int64_t timeout_ns);

/* ==== 12. Signals ==== */

/* Signal sets are plain 64-bit masks: signal s is bit s-1 (IPC_SIGBIT(SIGUSR1)), so no
   sigset_t is needed to call these. Realtime signals (SIGRTMIN..SIGRTMAX) queue, each
   with its payload; ordinary signals coalesce: two SIGUSR1 sent before one is handled
   arrive once. */
#define IPC_SIGBIT(s) ((uint64_t)1 << ((s)-1))

/* What a handler or a synchronous receive learns about one signal. */
typedef struct ipc_siginfo {
    int signo;
    int code;       /* si_code: SI_USER (kill), SI_QUEUE (sigqueue), SI_MESGQ, CLD_EXITED... */
    pid_t pid;      /* sender (or child, for SIGCHLD) */
    unsigned uid;   /* sender's real uid */
    int status;     /* SIGCHLD: exit code or signal */
    int value_int;  /* the payload of ipc_signal_queue as an int (sival_int) */
    intptr_t value; /* the payload as a pointer-sized integer (sival_ptr) */
} ipc_siginfo;

enum {
    IPC_SIGNAL_RESTART = 1, /* SA_RESTART: interrupted system calls resume */
    IPC_SIGNAL_ONESHOT = 2, /* SA_RESETHAND: back to the default after one delivery */
    IPC_SIGNAL_NODEFER = 4  /* SA_NODEFER: the signal is not blocked in its own handler */
};

/* The previous disposition, for ipc_signal_restore. Opaque. */
typedef struct ipc_signal_saved {
    uint64_t opaque[40];
} ipc_signal_saved;

/* Install fn for signo (sigaction with SA_SIGINFO): fn gets the signal's ipc_siginfo. fn
   runs in signal context: only async-signal-safe calls in it. A sa_mask blocks nothing
   more. *old (when not NULL) receives the previous disposition. -EINVAL for SIGKILL,
   SIGSTOP or a bad number. */
IPC_API int ipc_signal_handle(int signo, void (*fn)(const ipc_siginfo *info), unsigned flags,
                              ipc_signal_saved *old);
/* Default action (IPC_SIGNAL_DEFAULT) or ignore (IPC_SIGNAL_IGNORE). */
enum { IPC_SIGNAL_DEFAULT = 0, IPC_SIGNAL_IGNORE = 1 };
IPC_API int ipc_signal_set(int signo, int disposition, ipc_signal_saved *old);
IPC_API int ipc_signal_restore(int signo, const ipc_signal_saved *old);

/* Block, unblock or set the calling thread's mask (pthread_sigmask). *old (when not
   NULL) receives the previous mask. */
enum { IPC_SIG_BLOCK = 0, IPC_SIG_UNBLOCK = 1, IPC_SIG_SETMASK = 2 };
IPC_API int ipc_signal_mask(int how, uint64_t set, uint64_t *old);

/* Send: kill(pid, signo) (pid < -1: the process group -pid); sigqueue with a payload
   (realtime signals queue it, the receiver reads it in value / value_int; pid > 0). pid 0
   and -1 (the caller's group, every process) are -EINVAL: too easy to pass by accident.
   The _pidfd forms use pidfd_send_signal, so a recycled pid is never hit (-ENOSYS before
   Linux 5.1). Signal 0 checks existence. -ESRCH, -EPERM. Async-signal-safe. */
IPC_API int ipc_signal_send(pid_t pid, int signo);
IPC_API int ipc_signal_queue(pid_t pid, int signo, intptr_t value);
IPC_API int ipc_signal_send_pidfd(int pidfd, int signo);
IPC_API int ipc_signal_queue_pidfd(int pidfd, int signo, intptr_t value);

/* Receive synchronously. The signals must be blocked (in every thread, or another
   thread may take them): ipc_signal_fd and ipc_signal_wait block them in the calling
   thread and leave them blocked. ipc_signal_fd returns a signalfd (close-on-exec,
   non-blocking; poll it); ipc_signal_read takes one signal from it (info may be NULL);
   ipc_signal_wait waits without an fd (sigtimedwait, re-armed from the monotonic
   deadline). Both return the signal number, or -EAGAIN/-ETIMEDOUT; -EINVAL for an empty
   set. */
IPC_API int ipc_signal_fd(uint64_t set);
IPC_API int ipc_signal_read(int fd, ipc_siginfo *info, int64_t timeout_ns);
IPC_API int ipc_signal_wait(uint64_t set, ipc_siginfo *info, int64_t timeout_ns);

/* ==== 13. Events and process exit ==== */

/* eventfd: a 64-bit counter in the kernel, pollable, the lightest fd to wake a process
   or thread. Posting adds to the counter; waiting takes all of it (or, with
   IPC_EVENT_SEMAPHORE, one). The fd is close-on-exec: inherit it by fork, or pass it. */
enum {
    IPC_EVENT_SEMAPHORE = 1, /* EFD_SEMAPHORE: each wait takes 1 */
    IPC_EVENT_NONBLOCK = 2   /* accepted for clarity: every event fd is O_NONBLOCK already,
                                so that waits keep their deadlines with many waiters */
};
IPC_API int ipc_event_open(unsigned initial, unsigned flags);
/* Add n (1..2^64-2). -EAGAIN if the counter would overflow (a stalled waiter). On a
   blocking eventfd made elsewhere, only a full counter is caught: a large n that does not
   fit blocks there until a waiter takes the count. */
IPC_API int ipc_event_post(int fd, uint64_t n);
/* Wait for a non-zero counter and take it: the amount taken (> 0) in *value (may be
   NULL); 0, or -EAGAIN/-ETIMEDOUT. Works on blocking eventfds from elsewhere too. */
IPC_API int ipc_event_wait(int fd, uint64_t *value, int64_t timeout_ns);

/* Any process as an ipc_proc (section 7): a pidfd, pollable, readable once it exits.
   -ESRCH if there is none, -ENOSYS before Linux 5.3. Only the pidfd and pid are set;
   ipc_proc_wait on a process that is not our child is -ECHILD. */
IPC_API int ipc_proc_open(ipc_proc *p, pid_t pid);
/* Wait until the process has exited (child or not): 0, or -ETIMEDOUT/-EAGAIN. A child
   stays unreaped: ipc_proc_wait then gives its status. (Without a pidfd, a process that
   is not our child counts as gone only once its parent has reaped it.) */
IPC_API int ipc_proc_exited(ipc_proc *p, int64_t timeout_ns);

/* ==== 14. Semaphores ==== */

/* POSIX semaphores: named (/dev/shm/sem.NAME on glibc, /dev/shm/NAME on musl) or unnamed
   in shared memory you provide (ipc_shm, a ring's neighbour...): IPC_SEM_SIZE bytes,
   8-aligned. Waits take the monotonic deadline: sem_clockwait on glibc 2.30+; elsewhere
   sem_timedwait with a wall-clock time made from the time left, waited again if it ends
   early (musl turns it into a relative wait at once; older glibc lets a clock step during
   the wait move it). */
typedef struct ipc_sem ipc_sem; /* a sem_t */
#define IPC_SEM_SIZE 32

/* Create a named semaphore exclusively (-EEXIST), mode 0 = 0600 applied exactly. */
IPC_API int ipc_sem_create(ipc_sem **sem, const char *name, unsigned value, unsigned mode);
IPC_API int ipc_sem_open(ipc_sem **sem, const char *name);
IPC_API int ipc_sem_close(ipc_sem *sem); /* named: unmap */
IPC_API int ipc_sem_unlink(const char *name);
/* Unnamed, process-shared, at mem (IPC_SEM_SIZE bytes of shared memory). */
IPC_API int ipc_sem_init(void *mem, unsigned value, ipc_sem **sem);
IPC_API int ipc_sem_destroy(ipc_sem *sem);
/* Take one: 0, or -EAGAIN/-ETIMEDOUT. */
IPC_API int ipc_sem_wait(ipc_sem *sem, int64_t timeout_ns);
/* Give one: 0, or -EOVERFLOW at SEM_VALUE_MAX. Async-signal-safe. */
IPC_API int ipc_sem_post(ipc_sem *sem);
/* The current value (>= 0). */
IPC_API int ipc_sem_value(ipc_sem *sem);

/* System V semaphore sets: nsems counters under one key, changed atomically together. */
typedef struct ipc_semop {
    unsigned short num; /* which semaphore */
    short op;           /* > 0 add, < 0 take (waits while it would go negative), 0 wait for 0 */
    short flags;        /* IPC_SEM_UNDO: the kernel reverts it if the process dies */
} ipc_semop;            /* the layout of struct sembuf */
enum { IPC_SEM_UNDO = 0x1000 };

/* Create a set of nsems (1..SEMMSL) exclusively for key (IPC_PRIVATE = 0 for a new one),
   every value 0, mode 0 = 0600: its id. Open by key: its id. Remove: waiters get -EIDRM,
   later calls with the id -EINVAL. */
IPC_API int ipc_semset_create(int key, int nsems, unsigned mode);
IPC_API int ipc_semset_open(int key);
IPC_API int ipc_semset_remove(int id);
/* Apply all n operations atomically before the deadline (semtimedop, re-armed from the
   monotonic deadline after a signal). 0, or -EAGAIN/-ETIMEDOUT, -EIDRM, -ERANGE. */
IPC_API int ipc_semset_op(int id, const ipc_semop *ops, size_t n, int64_t timeout_ns);
IPC_API int ipc_semset_get(int id, int num);            /* GETVAL */
IPC_API int ipc_semset_set(int id, int num, int value); /* SETVAL */

/* ==== 15. File locks ==== */

/* Advisory locks on a file (any fd open on it). The default is the open file description
   lock (F_OFD_SETLK): it belongs to the open file, not to the process, so closing some
   other fd of the same file does not drop it (the famous trap of classic fcntl locks),
   threads holding different opens exclude each other, and it is released when the last
   fd of that open closes. Classic per-process fcntl locks (IPC_LOCK_POSIX) and flock()
   locks (IPC_LOCK_FLOCK, whole file only) are there for interoperating with programs
   that use them. The kernel has no timed lock: a finite deadline retries the non-blocking
   form with a backoff of 50 us to 5 ms; IPC_FOREVER blocks in the kernel. */
enum {
    IPC_LOCK_SHARED = 1,    /* readers */
    IPC_LOCK_EXCLUSIVE = 2, /* one writer */
    IPC_LOCK_POSIX = 4,     /* classic process-associated fcntl lock */
    IPC_LOCK_FLOCK = 8      /* flock(): whole file, per open file description */
};

/* Lock len bytes from start (len 0: to the end of the file, however it grows).
   0, or -EAGAIN/-ETIMEDOUT (someone holds a conflicting lock), -EDEADLK (IPC_LOCK_POSIX
   only: waiting would deadlock). Taking a lock you hold converts it (a flock conversion
   is not atomic: one that fails leaves no lock held). */
IPC_API int ipc_lock_acquire(int fd, unsigned flags, off_t start, off_t len, int64_t timeout_ns);
IPC_API int ipc_lock_release(int fd, unsigned flags, off_t start, off_t len);

/* Who holds a lock conflicting with the one described? 0 if none, else 1 and *holder
   filled: type IPC_LOCK_SHARED/EXCLUSIVE, range, and pid (-1 for an OFD lock, which has
   no owning process). Not for IPC_LOCK_FLOCK. */
typedef struct ipc_lock_info {
    unsigned type;
    off_t start, len;
    pid_t pid;
} ipc_lock_info;
IPC_API int ipc_lock_query(int fd, unsigned flags, off_t start, off_t len, ipc_lock_info *holder);

/* A pid file that is locked while this process lives: creates or opens path (mode 0644,
   no symlinks), takes an exclusive OFD lock, and writes our pid. Returns the fd to keep
   open (closing it, or dying, releases the lock). A second instance gets -EBUSY and, in
   *holder when not NULL, the pid of the running one; a file left by a crashed process is
   not locked, so it is simply taken over. */
IPC_API int ipc_lock_pidfile(const char *path, pid_t *holder);

/* ==== 16. Process-shared mutexes and condition variables ==== */

/* pthread mutexes and condition variables in shared memory, set up for processes:
   process-shared, robust, and with waits on CLOCK_MONOTONIC. Put them at 8-aligned
   addresses in any shared mapping, IPC_MUTEX_SIZE / IPC_COND_SIZE bytes each, and
   initialise once (one process) before use.
   Robustness: when a holder dies, the next locker gets IPC_MUTEX_RECOVERED (1): it holds
   the lock, must repair the data it protects, then call ipc_mutex_consistent. Unlocking
   without that makes the mutex unrecoverable: every later lock is -ENOTRECOVERABLE.
   Never a hang. Timed locks use pthread_mutex_clocklock on glibc 2.30+, elsewhere
   pthread_mutex_timedlock as ipc_sem_wait uses sem_timedwait.
   The condition variable is ipc.h's own: a sequence word and a futex. pthread's
   process-shared condvar keeps waiter counts in shared memory that a waiter killed
   mid-wait leaves wrong (pthread_cond_destroy then hangs); this one keeps no state about
   waiters, so a dead waiter costs nothing. Signal or broadcast with the mutex held: then
   every thread waiting at that moment is a candidate and none is missed. */
typedef struct ipc_mutex ipc_mutex; /* a pthread_mutex_t */
typedef struct ipc_cond ipc_cond;   /* a futex sequence word */
#define IPC_MUTEX_SIZE 40
#define IPC_COND_SIZE  16
enum { IPC_MUTEX_RECOVERED = 1 };

/* Initialise a mutex in mem (8-aligned, IPC_MUTEX_SIZE bytes of shared memory) and point
   *m at it. -EINVAL for NULL or misaligned memory. Once, by one process, before use. */
IPC_API int ipc_mutex_init(void *mem, ipc_mutex **m);
/* 0 locked, IPC_MUTEX_RECOVERED (locked; the previous holder died), -EAGAIN/-ETIMEDOUT,
   -ENOTRECOVERABLE, -EDEADLK (this thread holds it). */
IPC_API int ipc_mutex_lock(ipc_mutex *m, int64_t timeout_ns);
IPC_API int ipc_mutex_unlock(ipc_mutex *m); /* -EPERM if not held by this thread */
/* After IPC_MUTEX_RECOVERED and the repair: mark the mutex usable again (held: unlock next). */
IPC_API int ipc_mutex_consistent(ipc_mutex *m);
IPC_API int ipc_mutex_destroy(ipc_mutex *m); /* when no process uses it any more */

/* 4-aligned memory; -EINVAL otherwise. The calls below give -EINVAL for memory that
   ipc_cond_init did not set up. */
IPC_API int ipc_cond_init(void *mem, ipc_cond **c);
/* Unlock m, wait for a signal or the deadline, lock m again (also on timeout): 0,
   -ETIMEDOUT/-EAGAIN, IPC_MUTEX_RECOVERED when relocking found the holder dead,
   -ENOTRECOVERABLE, -EPERM (m not held by this thread: nothing waited). Spurious
   wake-ups happen: wait in a loop on your condition. */
IPC_API int ipc_cond_wait(ipc_cond *c, ipc_mutex *m, int64_t timeout_ns);
/* The same with an absolute deadline from ipc_deadline_make, for a loop that waits until
   its condition holds: once the deadline has passed, -ETIMEDOUT. */
IPC_API int ipc_cond_wait_until(ipc_cond *c, ipc_mutex *m, int64_t deadline);
IPC_API int ipc_cond_signal(ipc_cond *c);
IPC_API int ipc_cond_broadcast(ipc_cond *c);
IPC_API int ipc_cond_destroy(ipc_cond *c);

/* ==== 17. Pseudoterminals ==== */

/* A master/slave terminal pair, to run a program that insists on a terminal (shells,
   password prompts, line editing) and talk to it. Both fds are close-on-exec. */
typedef struct ipc_pty {
    int master;    /* our end: read what the program writes, write what it reads */
    int slave;     /* the terminal's end (the child's stdin/stdout/stderr), -1 once handed over */
    char name[64]; /* /dev/pts/N */
} ipc_pty;

typedef struct ipc_pty_opts {
    unsigned short rows, cols; /* window size; 0 = 24 x 80 */
    int raw;                   /* 1: raw mode (no echo, no line editing, no CR/LF mapping) */
} ipc_pty_opts;

/* Open a pty pair (posix_openpt; the slave by TIOCGPTPEER where the kernel has it), sized
   and raw as opts say: 0, or posix_openpt's error (-EAGAIN: every pty is in use). */
IPC_API int ipc_pty_open(ipc_pty *p, const ipc_pty_opts *opts);
/* Raw mode (cfmakeraw) or the window size (TIOCSWINSZ: the program gets SIGWINCH) on
   either fd. */
IPC_API int ipc_pty_set_raw(int fd);
IPC_API int ipc_pty_set_size(int fd, unsigned short rows, unsigned short cols);
/* Run file in a new session whose controlling terminal is the slave, on stdin, stdout
   and stderr (opts->in/out/err are ignored; envp and flags apply; the program leads its
   own process group anyway). The parent's slave fd is closed, so the master sees the end
   when the program and its children are gone; one program per pty: a second spawn is
   -EBUSY. */
IPC_API int ipc_pty_spawn(ipc_pty *p, ipc_proc *proc, const char *file, char *const argv[],
                          const ipc_spawn_opts *opts);
/* Read what the program wrote: 1..cap bytes; -EPIPE once every slave fd is closed (the
   kernel says EIO), -EAGAIN/-ETIMEDOUT. */
IPC_API ssize_t ipc_pty_read(ipc_pty *p, void *buf, size_t cap, int64_t timeout_ns);
IPC_API int ipc_pty_close(ipc_pty *p);

#ifdef __cplusplus
}
#endif

#endif /* IPC_H */

/* ======================================================================================
   Implementation
   ====================================================================================== */

#if defined(IPC_IMPLEMENTATION) && !defined(IPC__IMPLEMENTED)
#define IPC__IMPLEMENTED

/* glibc fixes its feature set at the first system header. When a TU compiled in a
   strict ISO mode included one before us, recompute it so the headers below still
   declare the POSIX and Linux interfaces used here. */
#if defined(__GLIBC__) && !defined(__USE_GNU) && !defined(__cplusplus)
#define IPC__NARROW_GLIBC 1
#undef _FEATURES_H
#include <features.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <poll.h>
#include <mqueue.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

#ifndef IPC_ASSERT
#include <assert.h>
#define IPC_ASSERT(x) assert(x)
#endif

/* Headers included before us in strict ISO mode keep their narrow declarations. */
#if defined(__GLIBC__) && !defined(__cplusplus) && !defined(CLOCK_MONOTONIC)
extern int clock_gettime(int clock, struct timespec *ts);
#endif
#ifndef CLOCK_MONOTONIC
#define CLOCK_MONOTONIC 1
#endif
#ifndef CLOCK_REALTIME
#define CLOCK_REALTIME 0
#endif
#ifdef IPC__NARROW_GLIBC
/* pthread.h and signal.h may have been read narrow: declare what sections 12 and 16 use
   (redeclaring what they did declare is harmless), with glibc's constant values. */
extern int pthread_mutexattr_settype(pthread_mutexattr_t *a, int type);
extern int pthread_mutexattr_setrobust(pthread_mutexattr_t *a, int robust);
extern int pthread_mutex_consistent(pthread_mutex_t *m);
extern int pthread_mutex_clocklock(pthread_mutex_t *m, int clock, const struct timespec *ts);
extern int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *ts);
extern int pthread_condattr_setclock(pthread_condattr_t *a, int clock);
#define IPC__MUTEX_ROBUST     1
#define IPC__MUTEX_ERRORCHECK 2
#else
#define IPC__MUTEX_ROBUST     PTHREAD_MUTEX_ROBUST
#define IPC__MUTEX_ERRORCHECK PTHREAD_MUTEX_ERRORCHECK
#endif
#ifndef SA_RESTART
#define SA_RESTART 0x10000000
#endif
#ifndef SA_NODEFER
#define SA_NODEFER 0x40000000
#endif
#ifndef SA_RESETHAND
#define SA_RESETHAND 0x80000000
#endif
#ifndef SIGPIPE
#define SIGPIPE 13
#endif
#ifndef SIG_BLOCK
#define SIG_BLOCK 0
#endif
#ifndef SIG_SETMASK
#define SIG_SETMASK 2
#endif
#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS   1033
#define F_GET_SEALS   1034
#define F_SEAL_SEAL   0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW   0x0004
#endif

#if defined(__GNUC__) || defined(__clang__)
#define IPC__UNUSED      __attribute__((unused))
#define IPC__INLINE      static inline __attribute__((always_inline))
#define IPC__LIKELY(x)   __builtin_expect(!!(x), 1)
#define IPC__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define IPC__UNUSED
#define IPC__INLINE      static inline
#define IPC__LIKELY(x)   (x)
#define IPC__UNLIKELY(x) (x)
#endif

#define IPC__NS 1000000000LL

/* The current errno, negated; never 0 so that a failed call is never read as success. */
static IPC__UNUSED int ipc__neg_errno(void) {
    int e = errno > 0 ? -errno : -EIO;
    IPC_ASSERT(e < 0); /* also tells static analysers what the callers rely on */
    return e;
}

/* ==== 1. Basics: version, API, errors ==== >>basics */

IPC_API const char *ipc_strerror(int err) {
    if (err == INT_MIN) return "unknown error";
    if (err < 0) err = -err;
    switch (err) {
    case 0: return "success";
    case EAGAIN: return "would block (zero timeout)";
    case ETIMEDOUT: return "deadline passed";
    case EPIPE: return "peer closed or died";
    case EMSGSIZE: return "message too large for the object or the buffer";
    case EBADMSG: return "not a valid object, or corrupted by a peer";
    case EBUSY: return "role or resource already taken";
    case EEXIST: return "name already exists";
    case EINVAL: return "invalid argument";
    case ENOENT: return "no such object";
    case ENAMETOOLONG: return "name too long";
    case ELOOP: return "symbolic link refused";
    case ENODEV: return "no such device, or not mappable";
    case ENOSPC: return "no space left for the object";
    case ENOMEM: return "out of memory";
    case EFBIG: return "size too large";
    case EOVERFLOW: return "value too large";
    case EACCES: return "permission denied";
    case EPERM: return "operation not permitted";
    case EBADF: return "bad or closed file descriptor";
    case EMFILE: return "too many open files in this process";
    case ENFILE: return "too many open files in the system";
    case EINTR: return "interrupted by a signal";
    case EIO: return "input/output error";
    case ENOSYS: return "not supported by this kernel";
    case EOPNOTSUPP: return "operation not supported";
    case EIDRM: return "object removed";
    case ENOTSOCK: return "not a socket";
    case ENOTCONN: return "not connected";
    case ECONNREFUSED: return "connection refused";
    case ECONNRESET: return "connection reset by peer";
    case EADDRINUSE: return "address in use";
    case EADDRNOTAVAIL: return "address not available";
    case ENXIO: return "no reader on the other end";
    case ESPIPE: return "not seekable";
    case EISDIR: return "is a directory";
    case ENOTDIR: return "not a directory";
    case EROFS: return "read-only file system";
    case ETXTBSY: return "file busy";
    case E2BIG: return "argument list too long";
    case ECHILD: return "no such child process";
    case ESRCH: return "no such process";
    case EDEADLK: return "deadlock avoided";
    case ENOLCK: return "no locks available";
    case EFAULT: return "bad address";
    case EPROTO: return "stream out of sync (truncated or invalid frame)";
    case ERANGE: return "value beyond a system limit";
    case EDQUOT: return "over the user's quota";
    case ENOMSG: return "no message";
    case ENOEXEC: return "not an executable format";
    case EHOSTUNREACH: return "host unreachable";
    case ENETUNREACH: return "network unreachable";
    case EAFNOSUPPORT: return "address family not supported";
    case EPROTONOSUPPORT: return "protocol not supported";
    case EINPROGRESS: return "operation in progress";
    case EALREADY: return "operation already in progress";
    case EISCONN: return "already connected";
    case EDESTADDRREQ: return "destination address required";
    case ECONNABORTED: return "connection aborted";
    case ENOBUFS: return "no buffer space";
    case EOWNERDEAD: return "previous owner died";
    case ENOTRECOVERABLE: return "state not recoverable";
    case ENOTTY: return "not a terminal";
    default: return "unknown error";
    }
}

/* ==== 2. Time and deadlines ==== >>time */

/* A deadline is CLOCK_MONOTONIC nanoseconds; IPC_FOREVER is none and 0 is "try once". */

static int64_t ipc__clock_ns(int clock) {
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * IPC__NS + (int64_t)ts.tv_nsec;
}

IPC_API int64_t ipc_time_now(void) {
    return ipc__clock_ns(CLOCK_MONOTONIC);
}

IPC_API int64_t ipc_deadline_make(int64_t timeout_ns) {
    int64_t now;
    if (timeout_ns == IPC_FOREVER) return IPC_FOREVER;
    if (timeout_ns < 0) return -EINVAL;
    if (timeout_ns == 0) return 0;
    now = ipc_time_now();
    if (timeout_ns > INT64_MAX - now) return IPC_FOREVER;
    return now + timeout_ns;
}

IPC_API int64_t ipc_deadline_left(int64_t deadline) {
    int64_t now;
    if (deadline == IPC_FOREVER) return IPC_FOREVER;
    if (deadline <= 0) return 0;
    now = ipc_time_now();
    return deadline > now ? deadline - now : 0;
}

IPC_API int ipc_deadline_ms(int64_t deadline) {
    int64_t left = ipc_deadline_left(deadline);
    if (left == IPC_FOREVER) return -1;
    left = (left + 999999) / 1000000;
    return left > INT_MAX ? INT_MAX : (int)left;
}

static void ipc__ns_to_timespec(int64_t ns, struct timespec *ts) {
    ts->tv_sec = (time_t)(ns / IPC__NS);
    ts->tv_nsec = (long)(ns % IPC__NS);
}

IPC_API struct timespec *ipc_deadline_timespec(int64_t deadline, struct timespec *ts) {
    if (deadline == IPC_FOREVER || !ts) return NULL;
    ipc__ns_to_timespec(deadline > 0 ? deadline : 0, ts);
    return ts;
}

IPC_API struct timespec *ipc_deadline_realtime(int64_t deadline, struct timespec *ts) {
    int64_t left = ipc_deadline_left(deadline);
    if (left == IPC_FOREVER || !ts) return NULL;
    ipc__ns_to_timespec(ipc__clock_ns(CLOCK_REALTIME) + left, ts);
    return ts;
}

/* What a wait that ran out reports: -EAGAIN for "try once", -ETIMEDOUT otherwise. */
static IPC__UNUSED int ipc__expired(int64_t deadline) {
    return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
}

/* Sleep one step of a capped exponential backoff, never past the deadline. For the few
   kernel objects that offer no event to wait on. 0, or the expiry error. */
static IPC__UNUSED int ipc__backoff(int64_t *step, int64_t cap, int64_t deadline) {
    int64_t left = ipc_deadline_left(deadline), ns = *step;
    struct timespec ts;
    if (left == 0) return ipc__expired(deadline);
    if (left != IPC_FOREVER && ns > left) ns = left;
    ipc__ns_to_timespec(ns, &ts);
    nanosleep(&ts, NULL); /* EINTR: the caller simply tries again sooner */
    *step = *step * 2 > cap ? cap : *step * 2;
    return 0;
}

/* ==== 3. File-descriptor I/O ==== >>fdio */

/* How a transfer on an fd is attempted without blocking, learnt on the first try:
   sockets take MSG_DONTWAIT (and MSG_NOSIGNAL); pipes, FIFOs and most others take
   RWF_NOWAIT through preadv2/pwritev2 (Linux 5.x+ per fd type); where neither works we
   fall back to the fd's own O_NONBLOCK flag, or for a blocking fd to poll-then-transfer. */
enum { IPC__IO_PROBE, IPC__IO_SOCK, IPC__IO_NOWAIT, IPC__IO_NONBLOCK, IPC__IO_BLOCKING };

typedef struct ipc__io {
    int fd;
    int write;
    int mode;           /* IPC__IO_* */
    int sigpipe_held;   /* SIGPIPE blocked by us (non-socket writes) */
    int sigpipe_seen;   /* a write failed with EPIPE while it was held */
    int sigpipe_theirs; /* one was pending before we started */
    size_t piece;       /* blocking fallback: most bytes a write may take after poll() */
    uint64_t oldmask;   /* signal mask to restore */
    int64_t deadline;
} ipc__io;

/* SIGPIPE is blocked around writes to non-sockets and a SIGPIPE our write raised is
   consumed before the mask is restored. Raw syscalls: no sigset_t, no -lpthread. */
#define IPC__SIGPIPE_BIT ((uint64_t)1 << (SIGPIPE - 1))

static void ipc__sigpipe_hold(ipc__io *io) {
    uint64_t set = IPC__SIGPIPE_BIT, pending = 0;
    if (io->sigpipe_held) return;
    if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, &io->oldmask, sizeof set) != 0) return;
    io->sigpipe_held = 1;
    /* A SIGPIPE the caller had blocked and left pending is theirs: never consume it. */
    if ((io->oldmask & set) && syscall(SYS_rt_sigpending, &pending, sizeof pending) == 0)
        io->sigpipe_theirs = (pending & set) != 0;
}

static void ipc__sigpipe_release(ipc__io *io) {
    uint64_t set = IPC__SIGPIPE_BIT;
    long zero[2] = {0, 0}; /* the kernel's timespec, native word size */
    if (!io->sigpipe_held) return;
    if (io->sigpipe_seen && !io->sigpipe_theirs)
        syscall(SYS_rt_sigtimedwait, &set, NULL, zero, sizeof set);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &io->oldmask, NULL, sizeof io->oldmask);
    io->sigpipe_held = 0;
}

/* Wait for the fd to become ready until the deadline. Returns revents or -errno. */
static int ipc__poll_until(int fd, int events, int64_t deadline) {
    for (;;) {
        struct pollfd p;
        struct timespec ts, *tp = NULL;
        int64_t left = ipc_deadline_left(deadline);
        int r;
        if (left == 0) return ipc__expired(deadline);
        if (left != IPC_FOREVER) {
            ipc__ns_to_timespec(left, &ts);
            tp = &ts;
        }
        p.fd = fd;
        p.events = (short)events;
        p.revents = 0;
        r = ppoll(&p, 1, tp, NULL);
        if (r > 0) return (p.revents & POLLNVAL) ? -EBADF : p.revents;
        if (r < 0 && errno != EINTR) return ipc__neg_errno();
    }
}

/* One transfer attempt of the n (1 or 2) pieces in v; reads use v[0] only. Returns bytes
   moved (0 = end of stream on reads), -EAGAIN if the fd would block, or another -errno.
   `ready` says poll() just reported the fd. */
static ssize_t ipc__io_once(ipc__io *io, struct iovec *v, int n, int ready) {
    ssize_t r;
    for (;;) {
        switch (io->mode) {
        case IPC__IO_PROBE:
        case IPC__IO_SOCK:
            if (io->write) {
                struct msghdr m;
                memset(&m, 0, sizeof m);
                m.msg_iov = v;
                m.msg_iovlen = (size_t)n;
                r = sendmsg(io->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
            } else {
                r = recv(io->fd, v[0].iov_base, v[0].iov_len, MSG_DONTWAIT);
            }
            if (r < 0 && errno == ENOTSOCK) {
                io->mode = IPC__IO_NOWAIT;
                continue;
            }
            io->mode = IPC__IO_SOCK;
            break;
        case IPC__IO_NOWAIT:
            if (io->write) ipc__sigpipe_hold(io);
            r = syscall(io->write ? SYS_pwritev2 : SYS_preadv2, io->fd, v, io->write ? n : 1, -1L,
                        -1L, RWF_NOWAIT);
            /* Unsupported for this fd type or kernel; or a regular file whose page-cache
               miss says EAGAIN although poll() calls it ready: use the fd's own flag. (On a
               pipe, EAGAIN after poll() is another reader or writer winning the race: it
               stays here and polls again, never falls back to a blocking transfer.) */
            if (r < 0 && (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL ||
                          (errno == EAGAIN && ready))) {
                int e = errno, fl = fcntl(io->fd, F_GETFL);
                struct stat st;
                if (fl < 0 || fstat(io->fd, &st) != 0) return ipc__neg_errno();
                /* the wrong end of a pipe would only ever poll: say so as read/write do */
                if ((fl & O_ACCMODE) == (io->write ? O_RDONLY : O_WRONLY)) return -EBADF;
                if (e == EAGAIN && !S_ISREG(st.st_mode)) return -EAGAIN;
                io->mode = (fl & O_NONBLOCK) ? IPC__IO_NONBLOCK : IPC__IO_BLOCKING;
                /* After POLLOUT a pipe takes PIPE_BUF bytes without blocking and a file
                   anything; a tty promises one byte (it sleeps for room for the rest). */
                io->piece = S_ISFIFO(st.st_mode) ? PIPE_BUF : S_ISREG(st.st_mode) ? SIZE_MAX : 1;
                continue;
            }
            break;
        case IPC__IO_NONBLOCK:
            if (io->write) ipc__sigpipe_hold(io);
            r = io->write ? writev(io->fd, v, n) : read(io->fd, v[0].iov_base, v[0].iov_len);
            break;
        default: /* blocking fd: transfer only when it cannot block past the deadline (given
                    no other reader or writer on it: poll() cannot reserve the room) */
            if (io->deadline != IPC_FOREVER && !ready) {
                struct pollfd pf;
                pf.fd = io->fd;
                pf.events = io->write ? POLLOUT : POLLIN;
                pf.revents = 0;
                if (poll(&pf, 1, 0) <= 0) return -EAGAIN; /* EINTR too: the caller polls */
            }
            if (io->write) {
                ipc__sigpipe_hold(io);
                if (io->deadline != IPC_FOREVER) { /* at most one piece: it cannot block */
                    if (v[0].iov_len >= io->piece) {
                        v[0].iov_len = io->piece;
                        n = 1;
                    } else if (n > 1 && v[0].iov_len + v[1].iov_len > io->piece) {
                        v[1].iov_len = io->piece - v[0].iov_len;
                    }
                }
                r = writev(io->fd, v, n);
            } else {
                r = read(io->fd, v[0].iov_base, v[0].iov_len);
            }
            break;
        }
        if (r >= 0) return r;
        if (errno == EINTR) continue;
        if (errno == EWOULDBLOCK) return -EAGAIN;
        if (errno == EPIPE && io->sigpipe_held) io->sigpipe_seen = 1;
        if (errno == ECONNRESET) return -EPIPE; /* a TCP peer that died: still gone */
        return ipc__neg_errno();
    }
}

/* After read() returned 0: -EPIPE at end of stream; -EAGAIN (wait for data) on a FIFO
   that no writer has opened yet, where read() says 0 too but poll() reports nothing
   (POLLHUP comes only once a writer came and went); 0 to read once more, as a writer may
   have come, written and gone in between. */
static int ipc__read_zero(int fd, int *checked) {
    struct stat st;
    struct pollfd pf;
    if (*checked || fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) return -EPIPE;
    pf.fd = fd;
    pf.events = POLLIN;
    pf.revents = 0;
    if (poll(&pf, 1, 0) == 0) return -EAGAIN;
    *checked = 1;
    return 0;
}

/* The loop behind the public calls: move the bytes of a (1 or 2 pieces; reads 1) until
   the deadline. exact: 1 = all of them, 0 = some. *mode, when not NULL, carries the
   transfer mode learnt on an earlier call on the same fd (IPC__IO_PROBE at first), so a
   stream's later calls skip the probing. Arguments are the caller's to check. */
static ssize_t ipc__io_run(int fd, const struct iovec *a, int na, int write, int exact,
                           int64_t deadline, size_t *done, int *mode) {
    ipc__io io;
    struct iovec cur[2];
    size_t got = 0, len = a[0].iov_len + (na > 1 ? a[1].iov_len : 0);
    ssize_t r = 0;
    int ready = 0, eof_check = 0;
    if (done) *done = 0;
    if (fd < 0) return -EBADF;
    memset(&io, 0, sizeof io);
    io.fd = fd;
    io.write = write;
    /* Only modes that do not depend on the fd's O_NONBLOCK flag are reused, as the caller
       may change it; a reused mode that no longer fits falls back as a probe would. */
    io.mode = mode && (*mode == IPC__IO_SOCK || *mode == IPC__IO_NOWAIT) ? *mode : IPC__IO_PROBE;
    io.deadline = deadline;
    while (got < len) {
        int n = 0;
        size_t skip = got;
        int k;
        for (k = 0; k < na; k++) { /* what is left of the pieces */
            if (skip >= a[k].iov_len) {
                skip -= a[k].iov_len;
                continue;
            }
            cur[n].iov_base = (char *)a[k].iov_base + skip;
            cur[n].iov_len = a[k].iov_len - skip;
            skip = 0;
            n++;
        }
        r = ipc__io_once(&io, cur, n, ready);
        ready = 0;
        if (r > 0) {
            got += (size_t)r;
            eof_check = 0;
            if (!exact) break;
            continue;
        }
        if (r == 0 && !write) {
            r = ipc__read_zero(fd, &eof_check);
            if (r == -EPIPE) break;
            if (r == 0) continue;
        } else if (r == 0) { /* write: nothing accepted, wait for room */
        } else if (r != -EAGAIN) {
            break;
        }
        r = ipc__poll_until(fd, write ? POLLOUT : POLLIN, deadline);
        if (r < 0) break;
        ready = 1;
    }
    if (write) ipc__sigpipe_release(&io);
    if (mode) *mode = io.mode;
    if (done) *done = got;
    if (got == len || (!exact && got > 0)) return (ssize_t)got;
    return r < 0 ? r : -EIO;
}

static ssize_t ipc__io_call(int fd, void *buf, size_t len, int write, int exact, int64_t timeout_ns,
                            size_t *done) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    struct iovec v;
    if (done) *done = 0;
    if (dl < IPC_FOREVER) return -EINVAL;
    if (fd < 0) return -EBADF;
    if (!buf || len == 0 || len > (size_t)SSIZE_MAX) return -EINVAL;
    v.iov_base = buf;
    v.iov_len = len;
    return ipc__io_run(fd, &v, 1, write, exact, dl, done, NULL);
}

IPC_API ssize_t ipc_fd_write_all(int fd, const void *buf, size_t len, int64_t timeout_ns,
                                 size_t *done) {
    return ipc__io_call(fd, (void *)(uintptr_t)buf, len, 1, 1, timeout_ns, done);
}

IPC_API ssize_t ipc_fd_read_exact(int fd, void *buf, size_t len, int64_t timeout_ns, size_t *done) {
    return ipc__io_call(fd, buf, len, 0, 1, timeout_ns, done);
}

IPC_API ssize_t ipc_fd_read_some(int fd, void *buf, size_t cap, int64_t timeout_ns) {
    return ipc__io_call(fd, buf, cap, 0, 0, timeout_ns, NULL);
}

/* ipc__poll_until, except that a zero deadline ("try once") still asks the kernel. */
static int ipc__poll_dl(int fd, int events, int64_t dl) {
    struct pollfd p;
    int r;
    if (dl != 0) return ipc__poll_until(fd, events, dl);
    p.fd = fd;
    p.events = (short)events;
    p.revents = 0;
    r = poll(&p, 1, 0);
    if (r < 0) return errno == EINTR ? -EAGAIN : ipc__neg_errno();
    if (r == 0) return -EAGAIN;
    return (p.revents & POLLNVAL) ? -EBADF : p.revents;
}

IPC_API int ipc_fd_wait(int fd, int events, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    if (fd < 0) return -EBADF;
    if (dl < IPC_FOREVER) return (int)dl;
    return ipc__poll_dl(fd, events, dl);
}

static int ipc__fd_flag(int fd, int get, int set, int bit, int on) {
    int fl = fcntl(fd, get);
    if (fl < 0) return ipc__neg_errno();
    fl = on ? (fl | bit) : (fl & ~bit);
    return fcntl(fd, set, fl) < 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_fd_set_nonblock(int fd, int on) {
    return ipc__fd_flag(fd, F_GETFL, F_SETFL, O_NONBLOCK, on);
}

IPC_API int ipc_fd_set_cloexec(int fd, int on) {
    return ipc__fd_flag(fd, F_GETFD, F_SETFD, FD_CLOEXEC, on);
}

IPC_API int ipc_fd_close(int *fd) {
    int r = 0;
    if (!fd) return -EINVAL;
    if (*fd >= 0 && close(*fd) != 0 && errno != EINTR) r = ipc__neg_errno();
    *fd = -1;
    return r;
}

/* ==== 4. Shared memory ==== >>shm */

#define IPC__SHM_DIR     "/dev/shm/"
#define IPC__SHM_PATHLEN (sizeof(IPC__SHM_DIR) + NAME_MAX + 1)

/* "/name" or "name" -> "/dev/shm/name". One component of 1..NAME_MAX bytes. */
static int ipc__shm_path(const char *name, char *out) {
    size_t n;
    if (!name) return -EINVAL;
    if (*name == '/') name++;
    for (n = 0; name[n]; n++) {
        if (name[n] == '/') return -EINVAL;
        if (n >= NAME_MAX) return -ENAMETOOLONG;
    }
    if (n == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return -EINVAL;
    memcpy(out, IPC__SHM_DIR, sizeof(IPC__SHM_DIR) - 1);
    memcpy(out + sizeof(IPC__SHM_DIR) - 1, name, n + 1);
    return 0;
}

static void ipc__shm_reset(ipc_shm *s) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->id = -1;
}

/* Validate the common arguments and reset the handle, so a failed call leaves it closed. */
static int ipc__shm_check(ipc_shm *s, size_t size, const ipc_shm_opts *o, unsigned *mode) {
    if (!s) return -EINVAL;
    ipc__shm_reset(s);
    if (size == 0 || size > (size_t)PTRDIFF_MAX) return -EINVAL;
    if ((off_t)size < 0 || (size_t)(off_t)size != size) return -EFBIG;
    if (mode) {
        *mode = (o && o->mode) ? o->mode : 0600u;
        if (*mode & ~0777u) return -EINVAL;
    }
    return 0;
}

/* Reserve the backing store so a later page fault can never SIGBUS. */
static int ipc__reserve(int fd, size_t size) {
    int e;
    do
        e = posix_fallocate(fd, 0, (off_t)size);
    while (e == EINTR);
    if (e == EFBIG) e = ENOSPC; /* tmpfs reports a size past its limit this way */
    return -e;
}

static int ipc__shm_map(ipc_shm *s, int fd, size_t size, unsigned kind, unsigned flags) {
    int prot = (flags & IPC_SHM_RDONLY) ? PROT_READ : PROT_READ | PROT_WRITE;
    int mf = MAP_SHARED | ((flags & IPC_SHM_PREFAULT) ? MAP_POPULATE : 0);
    void *a = mmap(NULL, size, prot, mf, fd, 0);
    if (a == MAP_FAILED) return ipc__neg_errno();
    s->addr = a;
    s->size = size;
    s->fd = fd;
    s->kind = kind;
    s->flags = flags;
    return 0;
}

/* Map an fd by the size fstat reports. On failure the fd is left to the caller. */
static int ipc__shm_map_fd(ipc_shm *s, int fd, unsigned kind, unsigned flags) {
    struct stat st;
    if (fstat(fd, &st) != 0) return ipc__neg_errno();
    if (!S_ISREG(st.st_mode)) return -ENODEV;
    if (st.st_size <= 0) return -EBADMSG;
    if ((unsigned long long)st.st_size > (unsigned long long)PTRDIFF_MAX) return -EFBIG;
    return ipc__shm_map(s, fd, (size_t)st.st_size, kind, flags);
}

static void ipc__fmt_fd_path(char *out, int fd) {
    char digits[16];
    int n = 0;
    memcpy(out, "/proc/self/fd/", 14);
    do
        digits[n++] = (char)('0' + fd % 10);
    while ((fd /= 10) > 0);
    out += 14;
    while (n > 0)
        *out++ = digits[--n];
    *out = '\0';
}

/* Give an O_TMPFILE object its name, atomically and exclusively (EEXIST if taken). */
static int ipc__publish(int fd, const char *path) {
    char proc[32];
    ipc__fmt_fd_path(proc, fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0) return 0;
    if (errno == ENOENT && linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0) return 0;
    return ipc__neg_errno();
}

/* Create a sized, mapped object at path: build it nameless in the same directory and
   link it in when complete; where O_TMPFILE is missing, create the name exclusively.
   *named tells whether the name already exists (for cleanup). */
static int ipc__create_mapped(ipc_shm *s, const char *path, const char *dir, size_t size,
                              unsigned mode, unsigned flags, unsigned kind, int *named) {
    int fd, r;
    *named = 0;
    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, (mode_t)mode);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
        if (fd >= 0) *named = 1;
    }
    if (fd < 0) return ipc__neg_errno();
    r = fchmod(fd, (mode_t)mode) != 0 ? ipc__neg_errno() : ipc__reserve(fd, size);
    if (r == 0) r = ipc__shm_map(s, fd, size, kind, flags & ~(unsigned)IPC_SHM_RDONLY);
    if (r == 0 && !*named) r = ipc__publish(fd, path);
    if (r == 0) return 0;
    if (s->addr) munmap(s->addr, s->size);
    if (*named) unlink(path);
    close(fd);
    ipc__shm_reset(s);
    return r;
}

static int ipc__memfd(ipc_shm *s, size_t size, unsigned flags) {
    int r, fd = (int)syscall(SYS_memfd_create, "ipc.h", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return ipc__neg_errno();
    r = ipc__reserve(fd, size);
    if (r == 0 && (flags & IPC_SHM_SEAL) && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
        r = ipc__neg_errno();
    if (r == 0)
        r = ipc__shm_map(s, fd, size, IPC_SHM_KIND_MEMFD, flags & ~(unsigned)IPC_SHM_RDONLY);
    if (r != 0) close(fd);
    return r;
}

IPC_API int ipc_shm_create(ipc_shm *s, const char *name, size_t size, const ipc_shm_opts *opts) {
    char path[IPC__SHM_PATHLEN];
    unsigned mode, flags = opts ? opts->flags : 0;
    int r = ipc__shm_check(s, size, opts, &mode), named;
    if (r) return r;
    if (!name) return ipc__memfd(s, size, flags);
    if ((r = ipc__shm_path(name, path)) != 0) return r;
    return ipc__create_mapped(s, path, IPC__SHM_DIR, size, mode, flags, IPC_SHM_KIND_POSIX, &named);
}

/* Open a file for mapping: never through a symlink, never blocking on a FIFO. */
static int ipc__open_map(ipc_shm *s, const char *path, const ipc_shm_opts *opts, unsigned kind) {
    unsigned flags = opts ? opts->flags : 0;
    int r, fd;
    fd = open(path, ((flags & IPC_SHM_RDONLY) ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_CLOEXEC |
                        O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return ipc__neg_errno();
    r = ipc__shm_map_fd(s, fd, kind, flags);
    if (r != 0) close(fd);
    return r;
}

IPC_API int ipc_shm_open(ipc_shm *s, const char *name, const ipc_shm_opts *opts) {
    char path[IPC__SHM_PATHLEN];
    int r = ipc__shm_check(s, 1, NULL, NULL);
    if (r) return r;
    if ((r = ipc__shm_path(name, path)) != 0) return r;
    return ipc__open_map(s, path, opts, IPC_SHM_KIND_POSIX);
}

IPC_API int ipc_shm_attach_fd(ipc_shm *s, int fd, const ipc_shm_opts *opts) {
    unsigned flags = opts ? opts->flags : 0;
    int r = ipc__shm_check(s, 1, NULL, NULL), dup;
    if (r) return r;
    if (fd < 0) return -EBADF;
    if ((dup = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) return ipc__neg_errno();
    r = ipc__shm_map_fd(s, dup, IPC_SHM_KIND_MEMFD, flags);
    if (r != 0) close(dup);
    return r;
}

IPC_API int ipc_shm_unlink(const char *name) {
    char path[IPC__SHM_PATHLEN];
    int r = ipc__shm_path(name, path);
    if (r) return r;
    return unlink(path) == 0 ? 0 : ipc__neg_errno();
}

IPC_API int ipc_shm_key(const char *path, int proj, int *key) {
    int k;
    if (!path || !key || (proj & 0xff) == 0) return -EINVAL;
    k = ftok(path, proj);
    if (k == -1) return ipc__neg_errno();
    *key = k;
    return 0;
}

/* Fault every page in, for IPC_SHM_PREFAULT on System V (shmat has no MAP_POPULATE). */
static void ipc__prefault(void *addr, size_t size, int writable) {
    volatile char *p = (volatile char *)addr;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), i;
    char sink = 0;
#if defined(MADV_POPULATE_READ) && defined(MADV_POPULATE_WRITE)
    if (madvise(addr, size, writable ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0) return;
#else
    (void)writable;
#endif
    for (i = 0; i < size; i += pg)
        sink = (char)(sink + p[i]);
    (void)sink;
}

static int ipc__sysv_map(ipc_shm *s, int id, unsigned flags) {
    struct shmid_ds ds;
    void *a;
    if (shmctl(id, IPC_STAT, &ds) != 0) return ipc__neg_errno();
    if (ds.shm_segsz == 0) return -EBADMSG;
    a = shmat(id, NULL, (flags & IPC_SHM_RDONLY) ? SHM_RDONLY : 0);
    if (a == (void *)-1) return ipc__neg_errno();
    s->addr = a;
    s->size = (size_t)ds.shm_segsz;
    s->id = id;
    s->kind = IPC_SHM_KIND_SYSV;
    s->flags = flags;
    if (flags & IPC_SHM_PREFAULT) ipc__prefault(a, s->size, !(flags & IPC_SHM_RDONLY));
    return 0;
}

/* Touch every page for writing so the memory exists now (ENOMEM now, not later). */
static int ipc__populate(void *addr, size_t size) {
#ifdef MADV_POPULATE_WRITE
    if (madvise(addr, size, MADV_POPULATE_WRITE) == 0) return 0;
    if (errno != EINVAL) return ipc__neg_errno(); /* EINVAL: kernel before 5.14 */
#endif
    {
        volatile char *p = (volatile char *)addr;
        size_t pg = (size_t)sysconf(_SC_PAGESIZE), i;
        for (i = 0; i < size; i += pg)
            p[i] = p[i];
    }
    return 0;
}

IPC_API int ipc_shm_sysv_create(ipc_shm *s, int key, size_t size, const ipc_shm_opts *opts) {
    unsigned mode;
    int r = ipc__shm_check(s, size, opts, &mode), id;
    if (r) return r;
    id = shmget(key, size, IPC_CREAT | IPC_EXCL | (int)mode);
    if (id < 0) return ipc__neg_errno(); /* -EINVAL: over SHMMAX; -ENOSPC: over SHMALL */
    r = ipc__sysv_map(s, id, (opts ? opts->flags : 0) & ~(unsigned)IPC_SHM_RDONLY);
    if (r == 0) r = ipc__populate(s->addr, s->size);
    if (r == 0) return 0;
    if (s->addr) shmdt(s->addr);
    shmctl(id, IPC_RMID, NULL);
    ipc__shm_reset(s);
    return r;
}

IPC_API int ipc_shm_sysv_attach(ipc_shm *s, int id, const ipc_shm_opts *opts) {
    int r = ipc__shm_check(s, 1, NULL, NULL);
    if (r) return r;
    if (id < 0) return -EINVAL;
    return ipc__sysv_map(s, id, opts ? opts->flags : 0);
}

IPC_API int ipc_shm_sysv_open(ipc_shm *s, int key, const ipc_shm_opts *opts) {
    int r = ipc__shm_check(s, 1, NULL, NULL), id;
    if (r) return r;
    if (key == IPC_PRIVATE) return -EINVAL;
    if ((id = shmget(key, 0, 0)) < 0) return ipc__neg_errno();
    return ipc__sysv_map(s, id, opts ? opts->flags : 0);
}

IPC_API int ipc_shm_sysv_remove(int id) {
    if (id < 0) return -EINVAL;
    return shmctl(id, IPC_RMID, NULL) == 0 ? 0 : ipc__neg_errno();
}

IPC_API int ipc_shm_file_create(ipc_shm *s, const char *path, size_t size,
                                const ipc_shm_opts *opts) {
    char dir[PATH_MAX];
    const char *slash;
    unsigned mode;
    size_t n;
    int r = ipc__shm_check(s, size, opts, &mode), named;
    if (r) return r;
    if (!path || !*path) return -EINVAL;
    n = strlen(path);
    if (n >= PATH_MAX) return -ENAMETOOLONG;
    if (path[n - 1] == '/') return -EISDIR;
    slash = strrchr(path, '/');
    if (!slash) {
        memcpy(dir, ".", 2);
    } else {
        n = (size_t)(slash - path) + 1;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    return ipc__create_mapped(s, path, dir, size, mode, opts ? opts->flags : 0, IPC_SHM_KIND_FILE,
                              &named);
}

IPC_API int ipc_shm_file_open(ipc_shm *s, const char *path, const ipc_shm_opts *opts) {
    int r = ipc__shm_check(s, 1, NULL, NULL);
    if (r) return r;
    if (!path || !*path) return -EINVAL;
    return ipc__open_map(s, path, opts, IPC_SHM_KIND_FILE);
}

IPC_API int ipc_shm_sync(const ipc_shm *s, size_t offset, size_t len, int async) {
    size_t pg, start;
    if (!s || !s->addr) return -EINVAL;
    if (offset >= s->size) return -EINVAL;
    if (len == 0) len = s->size - offset;
    if (len > s->size - offset) return -EINVAL;
    pg = (size_t)sysconf(_SC_PAGESIZE);
    start = offset - offset % pg;
    if (msync((char *)s->addr + start, len + (offset - start), async ? MS_ASYNC : MS_SYNC) != 0)
        return ipc__neg_errno();
    return 0;
}

IPC_API int ipc_shm_close(ipc_shm *s) {
    int r = 0;
    if (!s) return -EINVAL;
    if (!s->addr) return -EBADF;
    if (s->kind == IPC_SHM_KIND_SYSV) {
        if (shmdt(s->addr) != 0) r = ipc__neg_errno();
    } else {
        if (munmap(s->addr, s->size) != 0) r = ipc__neg_errno();
        if (s->fd >= 0) close(s->fd);
    }
    ipc__shm_reset(s);
    return r;
}

/* ==== 5. Futexes ==== >>futex */

#define IPC__FUTEX_WAKE         1
#define IPC__FUTEX_WAIT_BITSET  9
#define IPC__FUTEX_WAIT_PRIVATE 128 /* FUTEX_WAIT | FUTEX_PRIVATE_FLAG */
#define IPC__FUTEX_WAKE_PRIVATE 129
#define IPC__FUTEX_BITSET_ANY   0xffffffffu

/* The futex syscall takes the kernel's native timespec (two longs on x86-64 and i386,
   whatever the libc's time_t width is). */
typedef struct ipc__kts {
    long sec, nsec;
} ipc__kts;

IPC_API int ipc_futex_wait_until(uint32_t *addr, uint32_t expected, int64_t deadline) {
    ipc__kts ts, *tp = NULL;
    if (!addr || ((uintptr_t)addr & 3u) || deadline < IPC_FOREVER) return -EINVAL;
    if (__atomic_load_n(addr, __ATOMIC_ACQUIRE) != expected) return 1;
    if (deadline == 0) return -EAGAIN;
    if (deadline != IPC_FOREVER) {
        ts.sec = (long)(deadline / IPC__NS);
        ts.nsec = (long)(deadline % IPC__NS);
        tp = &ts;
    }
    for (;;) {
        long r = syscall(SYS_futex, addr, IPC__FUTEX_WAIT_BITSET, expected, tp, NULL,
                         IPC__FUTEX_BITSET_ANY);
        if (r == 0) return 0;
        switch (errno) {
        case EAGAIN: return 1; /* the word changed before we slept */
        case EINTR: continue;  /* same absolute deadline: a signal never extends it */
        case ETIMEDOUT: return -ETIMEDOUT;
        default: return ipc__neg_errno();
        }
    }
}

IPC_API int ipc_futex_wait(uint32_t *addr, uint32_t expected, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    if (dl < IPC_FOREVER) return (int)dl;
    return ipc_futex_wait_until(addr, expected, dl);
}

IPC_API int ipc_futex_wake(uint32_t *addr, int count) {
    long r;
    if (!addr || ((uintptr_t)addr & 3u) || count <= 0) return -EINVAL;
    r = syscall(SYS_futex, addr, IPC__FUTEX_WAKE, count, NULL, NULL, 0);
    return r < 0 ? ipc__neg_errno() : (int)r;
}

/* ==== 6. Ring buffers ==== >>ring */

/* Shared layout, version 1 (little-endian, offsets in bytes). Another language can
   implement a peer from this table and the protocol notes below.

       0    u64  magic "ipc.ring" (0x676e69722e637069)        creator, then read-only
       8    u32  layout version (1)
       12   u32  header size = page size; the data area starts here
       16   u64  capacity: power of two, at least a page; the object is header + capacity
       24   u32  flags: kind in the low 16 bits (0 = SPSC); bit 16: prefault (every side
                 faults the whole mapping in when it attaches)
       128  u64  tail: bytes ever committed                     producer (release)
       256  u64  head: bytes ever consumed                      consumer (release)
       384  u32  producer state: 0 never attached, 1 attached, 2 closed
       388  u32  producer waiting: sleepers announced since the last wake (the waker resets it)
       392  u32  producer futex: the consumer adds 1 and FUTEX_WAKEs to wake it
       396  u32  producer claims: +1 each time the role is claimed
       512  u32  consumer state, 516 waiting, 520 futex, 524 claims (same roles)

   Slot kinds (flags: kind 1 = MPMC, 2 = MPSC; bits 24..29: log2 of the slot size S) use
   the same first 640 bytes, where tail and head count slots (positions), state counts the
   attached handles of a role and waiting its sleepers. At 4096 a registry of 128 entries
   of 64 bytes follows: u64 position its producer claims, u64 position its consumer takes
   (set before the claim; ~0 while the handle waits; a position already published or freed
   may stay), u32 roles (0 once closed). The header is 4096 + 8192 bytes
   rounded up to the page size. Entry k is held by an OFD write lock on byte 16 + k; MPSC's
   consumer also holds byte 1. The data area is capacity / S slots: u64 sequence, u32
   length, u32 check (length ^ (u32)position ^ 0x534c4f54), then the message. The sequence
   of the slot for position p is stored minus the slot's index, so zeroed memory is a ring
   whose every slot is free for lap 0: it reads p when the slot is free for a producer at p,
   p + 1 once the message of p is published, p + slots once it was consumed (free for the
   next lap), and p + 1 with bit 63 set for a hole, a slot whose producer died. A producer
   names the position in its registry entry, then claims it by compare-and-swap on tail;
   a consumer likewise on head (MPSC: a plain store). Whoever finds a slot left claimed by
   a handle whose lock is free and whose entry still names it (or no live entry does)
   passes it: a hole becomes p + 1 | bit 63, a taken message p + slots.

   Broadcast (kind 3; bit 17: overwrite) has the same slots. tail counts the messages
   published (stored after each), head counts the readers that ever joined (the producer
   scans the registry again when it moves), prod is SPSC's producer side with its lock on
   byte 0, cons.waiting counts sleeping readers, and a reader's entry holds, as its consumer
   position, the position it reads next. While the producer writes the slot of p, its
   sequence reads p | bit 62, so a reader can tell a message being replaced under it.

   Each group sits on its own 128-byte line (false sharing, adjacent-line prefetch).
   Positions run freely in 64 bits (slot positions in 62: their sequence words keep two
   flag bits, and 2^62 messages take centuries); a position p is data[p & (capacity - 1)],
   and the data area is mapped twice back to back so a record may cross the end. A record at
   position p is one u64 header, len | (len ^ (u32)(p >> 3) ^ 0x52494e47) << 32, then len
   bytes, padded to a multiple of 8. The header is stored last (release): it is the
   commit, and the consumer polls it instead of the tail, so the tail line does not
   bounce between the cores on every message. Before committing a record the producer
   zeroes the header word of the next one, so a header slot holds 0 (nothing yet) or a
   valid header, never stale bytes of an earlier lap; anything else is corruption. The
   producer therefore always keeps 8 bytes free beyond its records. Role locks: fcntl OFD
   write locks on byte 0 (producer) and byte 1 (consumer) of the object; liveness of a
   peer is "its lock is held".

   Wake-up protocol, and why no wake-up is lost. A sleeper (the consumer waiting for data,
   or the producer waiting for space) reads its futex word F, adds 1 to waiting, issues
   membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), re-checks the position, and only then
   sleeps on F with the value it read. A publisher stores its position (release), puts a
   compiler-only barrier, and loads the peer's waiting count; if it is not 0, it swaps it
   for 0 (so a slow sleeper costs one wake, not one per message), adds 1 to F and wakes
   every sleeper there. membarrier executes a full barrier on every CPU that is running
   the publisher (which registered for it at attach), so the pair behaves like Dekker's
   with fences on both sides: either the publisher's load sees the count and it bumps F, or the
   sleeper's re-check sees the new position. A bump after the sleeper read F makes its
   FUTEX_WAIT return at once (value changed), so a wake-up between re-check and sleep is
   not lost either. The publisher, the fast path, pays a compiler barrier only.

   membarrier costs an inter-processor interrupt when the peer is running (about 16 us in
   a VM), so the first sleep of a wait skips it: the sleeper fences only its own side and
   sleeps at most 10 ms. The one interleaving this admits is the store-buffering race:
   the publisher's load of waiting passes its own store of the position, which is still
   in its store buffer, while the sleeper's re-check runs. That store becomes visible
   within nanoseconds, so the sleeper finds it when the first sleep ends: such a wake-up
   (measured: about 1 in 100 000 sleeps) comes late by at most 10 ms, and is never lost.
   Every longer sleep is preceded by membarrier. (A shorter first sleep would bound the
   delay better, but a futex wait with a timer under a millisecond doubles the wake-up
   latency on virtual machines: measured 44 us instead of 22 us.) Where the kernel lacks
   membarrier (before 4.16, or a seccomp filter), the publishing side uses seq_cst fences,
   and a sleeper that cannot issue membarrier sleeps in 1 ms slices. */

#if defined(__GCC_ATOMIC_LLONG_LOCK_FREE) && __GCC_ATOMIC_LLONG_LOCK_FREE != 2
#error "ipc.h rings need lock-free 64-bit atomics (on i386, build with -march=i586 or later)"
#endif

#define IPC__RING_MAGIC                   0x676e69722e637069ULL
#define IPC__RING_VERSION                 1u
#define IPC__REC_CHECK                    0x52494e47u
#define IPC__RING_MAXCAP                  ((uint64_t)1 << 30)
#define IPC__RING_SLICE                   (100 * 1000000LL) /* long sleeps; liveness re-checked */
#define IPC__RING_FIRST_SLICE             (10 * 1000000LL)  /* first sleep, without membarrier */
#define IPC__MB_GLOBAL_EXPEDITED          (1 << 1)
#define IPC__MB_REGISTER_GLOBAL_EXPEDITED (1 << 2)
#define IPC__MP_REG_OFF                   4096 /* slot kinds: the registry */
#define IPC__MP_REG_MAX                   128
#define IPC__MP_LOCK0                     16 /* OFD lock byte of registry entry 0 */
#define IPC__MP_IDLE                      (~(uint64_t)0)
#define IPC__MP_HOLE                      ((uint64_t)1 << 63)
#define IPC__MP_BUSY                      ((uint64_t)1 << 62) /* broadcast: being written */
#define IPC__MP_FLAGS                     (IPC__MP_HOLE | IPC__MP_BUSY)
#define IPC__MP_CHECK                     0x534c4f54u
#define IPC__MP_SHIFT                     8u /* default slot: 256 bytes */
#define IPC__RING_FLAGS                   (IPC_RING_PREFAULT | IPC_RING_OVERWRITE)

enum { IPC__ROLE_NONE = 0, IPC__ROLE_ATTACHED = 1, IPC__ROLE_CLOSED = 2 };

typedef struct ipc__ring_side {
    uint32_t state, waiting, futex, claims;
    unsigned char pad[112];
} ipc__ring_side;

typedef struct ipc__ring_hdr {
    uint64_t magic;
    uint32_t version, hdr_size;
    uint64_t capacity;
    uint32_t flags, unused;
    unsigned char pad0[96];
    uint64_t tail;
    unsigned char pad1[120];
    uint64_t head;
    unsigned char pad2[120];
    ipc__ring_side prod, cons;
} ipc__ring_hdr;

#define IPC__HDR(r) ((ipc__ring_hdr *)(void *)(r)->base)

typedef struct ipc__mp_ent {
    uint64_t ppos, cpos;
    uint32_t role;
    unsigned char pad[44];
} ipc__mp_ent;

/* Bytes before the data area: one page, or the registry too for the slot kinds. */
static size_t ipc__ring_hdr_size(unsigned kind, size_t page) {
    size_t need = IPC__MP_REG_OFF + IPC__MP_REG_MAX * sizeof(ipc__mp_ent);
    return kind == IPC_RING_SPSC ? page : (need + page - 1) / page * page;
}

/* Test builds only: with IPC_TEST_KILLPOINTS defined, named points inside the ring
   protocol (IPC__KILL below) make the process die by SIGKILL, for the crash tests. Read
   from the environment at a process's first point (and again after fork):
       IPC_KILL_ONE_IN=N   die at a point with probability 1/N (unset or 0: never)
       IPC_KILL_AT=a,b     only at points whose names contain one of these
       IPC_KILL_SEED=n     the random stream, mixed with the pid
       IPC_KILL_LOG=fd     write "killpoint NAME\n" there first
   Without the macro the points compile to nothing. */
#ifdef IPC_TEST_KILLPOINTS
static int ipc__killpoint_match(const char *name, const char *at) {
    while (*at) {
        size_t n = strcspn(at, ",");
        const char *h;
        for (h = name; n && *h; h++)
            if (strncmp(h, at, n) == 0) return 1;
        at += n + (at[n] == ',');
    }
    return 0;
}

static void ipc__killpoint(const char *name) {
    static pid_t pid;
    static uint64_t one_in, rng;
    static int logfd = -1;
    static const char *at;
    uint64_t x;
    if (getpid() != pid) {
        const char *v = getenv("IPC_KILL_ONE_IN"), *seed = getenv("IPC_KILL_SEED");
        const char *log = getenv("IPC_KILL_LOG");
        pid = getpid();
        one_in = v ? strtoull(v, NULL, 0) : 0;
        at = getenv("IPC_KILL_AT");
        logfd = log ? atoi(log) : -1;
        rng = (uint64_t)(seed ? strtoull(seed, NULL, 0) : 1u) ^
              ((uint64_t)(uint32_t)pid * UINT64_C(0x9e3779b97f4a7c15));
    }
    if (!one_in || (at && *at && !ipc__killpoint_match(name, at))) return;
    x = __atomic_load_n(&rng, __ATOMIC_RELAXED); /* xorshift64*: threads may share a draw */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    __atomic_store_n(&rng, x, __ATOMIC_RELAXED);
    if ((x * UINT64_C(0x2545f4914f6cdd1d) >> 11) % one_in != 0) return;
    if (logfd >= 0) {
        char line[96];
        int n = snprintf(line, sizeof line, "killpoint %s\n", name);
        if (n > 0 && write(logfd, line, (size_t)n) < 0) { /* dying anyway */
        }
    }
    kill(getpid(), SIGKILL);
}
#define IPC__KILL(name) ipc__killpoint(name)
#else
#define IPC__KILL(name) ((void)0)
#endif

static void ipc__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static uint64_t ipc__rec_size(uint64_t len) {
    return 8 + ((len + 7) & ~(uint64_t)7);
}

static uint64_t *ipc__ring_word(const ipc_ring *r, uint64_t pos) {
    return (uint64_t *)(void *)(r->data + (pos & (r->cap - 1)));
}

/* A second open file description of fd's object: OFD locks then tell processes apart
   even when they share fd through fork or SCM_RIGHTS. */
static int ipc__reopen(int fd, const char *path) {
    char proc[32];
    struct stat a, b;
    int nfd;
    if (!path) { /* anonymous: only /proc names it */
        ipc__fmt_fd_path(proc, fd);
        nfd = open(proc, O_RDWR | O_CLOEXEC | O_NOCTTY);
        return nfd >= 0 ? nfd : ipc__neg_errno();
    }
    /* named: open the name again, and make sure it still is the same object */
    nfd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (nfd < 0) return ipc__neg_errno();
    if (fstat(fd, &a) != 0 || fstat(nfd, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
        close(nfd);
        return -EBUSY; /* replaced under us */
    }
    return nfd;
}

/* ---- lock fds of live handles, closed in a forked child so it holds no role ---- */

static struct {
    int lock; /* spinlock: also held across fork() by the prepare handler */
    int n, cap;
    int *fds;
} ipc__forkreg;

static void ipc__forkreg_lock(void) {
    while (__atomic_exchange_n(&ipc__forkreg.lock, 1, __ATOMIC_ACQUIRE))
        ipc__cpu_relax();
}

static void ipc__forkreg_unlock(void) {
    __atomic_store_n(&ipc__forkreg.lock, 0, __ATOMIC_RELEASE);
}

/* Bumped in every forked child: handles from before the fork no longer match. */
static unsigned ipc__fork_gen;

static void ipc__forkreg_child(void) {
    int i;
    __atomic_store_n(&ipc__fork_gen, ipc__fork_gen + 1, __ATOMIC_RELAXED);
    for (i = 0; i < ipc__forkreg.n; i++)
        close(ipc__forkreg.fds[i]);
    ipc__forkreg.n = 0;
    ipc__forkreg_unlock();
}

static pthread_once_t ipc__forkreg_once = PTHREAD_ONCE_INIT;
static int ipc__forkreg_ok;

static void ipc__forkreg_init(void) {
    ipc__forkreg_ok =
        pthread_atfork(ipc__forkreg_lock, ipc__forkreg_unlock, ipc__forkreg_child) == 0;
}

/* A private open file description of fd's object (see ipc__ring_finish), opened and
   registered under the registry lock, which fork() also takes: a child forked meanwhile
   can never inherit a lock fd that its atfork handler would not close. */
static int ipc__forkreg_open(int fd, const char *path) {
    int nfd = -ENOMEM;
    pthread_once(&ipc__forkreg_once, ipc__forkreg_init);
    if (!ipc__forkreg_ok) return -ENOMEM;
    ipc__forkreg_lock();
    if (ipc__forkreg.n == ipc__forkreg.cap) {
        int ncap = ipc__forkreg.cap ? ipc__forkreg.cap * 2 : 16;
        int *nf = (int *)realloc(ipc__forkreg.fds, (size_t)ncap * sizeof(int));
        if (nf) {
            ipc__forkreg.fds = nf;
            ipc__forkreg.cap = ncap;
        }
    }
    if (ipc__forkreg.n < ipc__forkreg.cap && (nfd = ipc__reopen(fd, path)) >= 0)
        ipc__forkreg.fds[ipc__forkreg.n++] = nfd;
    ipc__forkreg_unlock();
    return nfd;
}

/* Unregister and close a lock fd, again atomically with respect to fork(). */
static void ipc__forkreg_close(int fd) {
    int i;
    ipc__forkreg_lock();
    for (i = 0; i < ipc__forkreg.n; i++)
        if (ipc__forkreg.fds[i] == fd) {
            ipc__forkreg.fds[i] = ipc__forkreg.fds[--ipc__forkreg.n];
            break;
        }
    close(fd);
    ipc__forkreg_unlock();
}

/* ---- roles ---- */

/* An OFD lock on one byte of the ring file: a role (SPSC byte 0 producer, 1 consumer) or a
   registry entry (slot kinds). */
static int ipc__ring_lock_at(int fd, int cmd, short type, off_t byte) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = byte;
    fl.l_len = 1;
    while (fcntl(fd, cmd, &fl) != 0) {
        if (errno == EINTR) continue;
        return (errno == EAGAIN || errno == EACCES) ? -EBUSY : ipc__neg_errno();
    }
    return fl.l_type == F_UNLCK ? 0 : 1; /* for F_OFD_GETLK: 1 = someone holds it */
}

static int ipc__ring_lock(int fd, int cmd, short type, int role) {
    return ipc__ring_lock_at(fd, cmd, type, role == IPC_PRODUCER ? 0 : 1);
}

static ipc__ring_side *ipc__ring_side_of(ipc_ring *r, int role) {
    return role == IPC_PRODUCER ? &IPC__HDR(r)->prod : &IPC__HDR(r)->cons;
}

static ipc__mp_ent *ipc__mp_reg(const ipc_ring *r, int k) {
    return (ipc__mp_ent *)(void *)(r->base + IPC__MP_REG_OFF) + k;
}

/* Take a free registry entry (its lock) for a handle with these roles; its index. A dead
   holder's entry may still name a position: forgetting it is what lets the others pass
   that slot. */
static int ipc__mp_entry(ipc_ring *r, int role, uint64_t cpos) {
    ipc__mp_ent *e;
    int k, rc = -EBUSY;
    for (k = 0; k < IPC__MP_REG_MAX; k++)
        if ((rc = ipc__ring_lock_at(r->lockfd, F_OFD_SETLK, F_WRLCK, IPC__MP_LOCK0 + k)) >= 0 ||
            rc != -EBUSY)
            break;
    if (rc < 0) return rc; /* all 128 taken: -EBUSY */
    e = ipc__mp_reg(r, k);
    __atomic_store_n(&e->ppos, IPC__MP_IDLE, __ATOMIC_RELAXED);
    __atomic_store_n(&e->cpos, cpos, __ATOMIC_RELAXED);
    __atomic_store_n(&e->role, (uint32_t)role, __ATOMIC_RELEASE);
    r->reg = k;
    return k;
}

/* Slot kinds: a registry entry and, for MPSC's consumer, the consumer lock; announce the
   roles. */
static int ipc__mp_claim(ipc_ring *r, int role) {
    ipc__ring_hdr *h = IPC__HDR(r);
    uint64_t head = __atomic_load_n(&h->head, __ATOMIC_ACQUIRE);
    uint64_t tail = __atomic_load_n(&h->tail, __ATOMIC_ACQUIRE);
    int rc, solo = r->kind == IPC_RING_MPSC && (role & IPC_CONSUMER);
    if (tail - head > r->nslots) return -EBADMSG;
    if (solo && (rc = ipc__ring_lock(r->lockfd, F_OFD_SETLK, F_WRLCK, IPC_CONSUMER)) < 0) return rc;
    if ((rc = ipc__mp_entry(r, role, IPC__MP_IDLE)) < 0) {
        if (solo) ipc__ring_lock(r->lockfd, F_OFD_SETLK, F_UNLCK, IPC_CONSUMER);
        return rc;
    }
    r->role = role;
    /* attached before claimed: whoever sees the claim sees the attachment (and entry) */
    if (role & IPC_PRODUCER) {
        __atomic_fetch_add(&h->prod.state, 1, __ATOMIC_RELEASE);
        __atomic_fetch_add(&h->prod.claims, 1, __ATOMIC_RELEASE);
    }
    if (role & IPC_CONSUMER) {
        __atomic_fetch_add(&h->cons.state, 1, __ATOMIC_RELEASE);
        __atomic_fetch_add(&h->cons.claims, 1, __ATOMIC_RELEASE);
    }
    return 0;
}

static uint64_t ipc__mp_seq(const ipc_ring *r, uint64_t pos);
static int ipc__ring_heavy_barrier(void);

/* Broadcast: the producer takes SPSC's producer lock and goes on from the published tail;
   a reader takes a registry entry that names the tail as its next message, then counts
   itself in head so that the producer scans the readers again before it could lap it. */
static int ipc__bc_claim(ipc_ring *r, int role) {
    ipc__ring_hdr *h = IPC__HDR(r);
    uint64_t tail = __atomic_load_n(&h->tail, __ATOMIC_ACQUIRE);
    int rc;
    if (role == IPC_PRODUCER) {
        if ((rc = ipc__ring_lock(r->lockfd, F_OFD_SETLK, F_WRLCK, IPC_PRODUCER)) < 0) return rc;
        /* a producer that died between publishing a slot and the tail: go on after it */
        if (ipc__mp_seq(r, tail) == tail + 1) __atomic_store_n(&h->tail, ++tail, __ATOMIC_RELEASE);
        r->ptail = tail;
        r->bmin = tail;
        r->bgen = __atomic_load_n(&h->head, __ATOMIC_ACQUIRE) - 1; /* scan before the first */
        __atomic_fetch_add(&h->prod.claims, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&h->prod.waiting, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&h->prod.state, IPC__ROLE_ATTACHED, __ATOMIC_RELEASE);
    } else {
        uint64_t k, now;
        if ((rc = ipc__mp_entry(r, role, tail)) < 0) return rc;
        /* The producer may run a lap past the tail read above before it sees us. Count
           ourselves in, make the producer's CPU see it (what it begins after sees us),
           and look again; if it lapped us meanwhile, join from where it is. Bounded:
           shared memory is not trusted. */
        for (k = 0; k < 64; k++) {
            __atomic_fetch_add(&h->head, 1, __ATOMIC_SEQ_CST);
            if (ipc__ring_heavy_barrier()) { /* no membarrier: give its stores time instead */
                struct timespec ms;
                ms.tv_sec = 0;
                ms.tv_nsec = 1000000;
                nanosleep(&ms, NULL);
            }
            now = __atomic_load_n(&h->tail, __ATOMIC_ACQUIRE);
            if (now - tail < r->nslots) break;
            tail = now;
            __atomic_store_n(&ipc__mp_reg(r, r->reg)->cpos, tail, __ATOMIC_RELEASE);
        }
        r->phead = tail;
        __atomic_fetch_add(&h->cons.state, 1, __ATOMIC_RELEASE);
        __atomic_fetch_add(&h->cons.claims, 1, __ATOMIC_RELEASE);
    }
    r->role = role;
    return 0;
}

/* Take the role locks, then read and check the positions left by whoever held them. */
static int ipc__ring_claim(ipc_ring *r, int role) {
    ipc__ring_hdr *h = IPC__HDR(r);
    uint64_t head, tail;
    int rc;
    if (r->kind == IPC_RING_BROADCAST) return ipc__bc_claim(r, role);
    if (r->kind != IPC_RING_SPSC) return ipc__mp_claim(r, role);
    if ((role & IPC_PRODUCER) &&
        (rc = ipc__ring_lock(r->lockfd, F_OFD_SETLK, F_WRLCK, IPC_PRODUCER)) < 0)
        return rc;
    if ((role & IPC_CONSUMER) &&
        (rc = ipc__ring_lock(r->lockfd, F_OFD_SETLK, F_WRLCK, IPC_CONSUMER)) < 0) {
        if (role & IPC_PRODUCER) ipc__ring_lock(r->lockfd, F_OFD_SETLK, F_UNLCK, IPC_PRODUCER);
        return rc;
    }
    head = __atomic_load_n(&h->head, __ATOMIC_ACQUIRE);
    tail = __atomic_load_n(&h->tail, __ATOMIC_ACQUIRE);
    if ((tail - head > r->cap && head - tail > r->cap) || ((tail | head) & 7)) return -EBADMSG;
    if (role & IPC_PRODUCER) {
        /* A producer that died between storing a header and the tail left one committed
           record past the tail, perhaps consumed already: continue after it. */
        uint64_t w, len;
        if (head - tail <= r->cap) tail = head;
        w = __atomic_load_n(ipc__ring_word(r, tail), __ATOMIC_ACQUIRE);
        len = (uint32_t)w;
        if (w != 0 && len != 0 && len <= r->cap - 16 &&
            (uint32_t)(w >> 32) == ((uint32_t)len ^ (uint32_t)(tail >> 3) ^ IPC__REC_CHECK))
            tail += ipc__rec_size(len);
        if (tail - head > r->cap - 8) return -EBADMSG;
        __atomic_store_n(&h->tail, tail, __ATOMIC_RELEASE);
    }
    r->ptail = tail;
    r->phead = head;
    r->role = role;
    if (role & IPC_PRODUCER) {
        __atomic_fetch_add(&h->prod.claims, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&h->prod.waiting, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&h->prod.state, IPC__ROLE_ATTACHED, __ATOMIC_RELEASE);
    }
    if (role & IPC_CONSUMER) {
        __atomic_fetch_add(&h->cons.claims, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&h->cons.waiting, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&h->cons.state, IPC__ROLE_ATTACHED, __ATOMIC_RELEASE);
    }
    return 0;
}

/* ---- mapping and attaching ---- */

static int ipc__ring_map(ipc_ring *r, int fd, uint64_t cap, size_t hdr, unsigned flags) {
    int pf = (flags & IPC_RING_PREFAULT) ? MAP_POPULATE : 0;
    size_t total = hdr + 2 * (size_t)cap;
    unsigned char *base, *a, *b;
    base = (unsigned char *)mmap(NULL, total, PROT_NONE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) return ipc__neg_errno();
    a = (unsigned char *)mmap(base, hdr + (size_t)cap, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_FIXED | pf, fd, 0);
    b = a == MAP_FAILED
            ? a
            : (unsigned char *)mmap(base + hdr + cap, (size_t)cap, PROT_READ | PROT_WRITE,
                                    MAP_SHARED | MAP_FIXED | pf, fd, (off_t)hdr);
    if (a == MAP_FAILED || b == MAP_FAILED) {
        int e = ipc__neg_errno();
        munmap(base, total);
        return e;
    }
    r->base = base;
    r->data = base + hdr;
    r->map_size = total;
    r->cap = cap;
    return 0;
}

static void ipc__ring_reset(ipc_ring *r) {
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->lockfd = -1;
}

/* Undo a partial attach: unmap, close what the handle owns. */
static void ipc__ring_undo(ipc_ring *r) {
    if (r->base) munmap(r->base, r->map_size);
    if (r->lockfd >= 0) ipc__forkreg_close(r->lockfd);
    if (r->fd >= 0) close(r->fd);
    ipc__ring_reset(r);
}

/* Finish attaching r->fd (owned): lock fd, role, membarrier, registry. */
static int ipc__ring_finish(ipc_ring *r, int role, const ipc_ring_opts *o, const char *path) {
    int rc;
    r->lockfd = ipc__forkreg_open(r->fd, path);
    if (r->lockfd < 0) return r->lockfd;
    /* Nothing may fail after the claim: a peer would read "attached" over a free lock. */
    if ((rc = ipc__ring_claim(r, role)) != 0) return rc;
#ifdef SYS_membarrier
    r->fence = syscall(SYS_membarrier, IPC__MB_REGISTER_GLOBAL_EXPEDITED, 0, 0) != 0;
#else
    r->fence = 1;
#endif
    r->gen = __atomic_load_n(&ipc__fork_gen, __ATOMIC_RELAXED);
    r->peer_dead = 0;
    r->spin_ns = o ? o->spin_ns : 0;
    r->spin_cur = 8000;
    r->flags = o ? o->flags : IPC__HDR(r)->flags & IPC__RING_FLAGS; /* checked at attach */
    return 0;
}

static int ipc__ring_role_ok(int role) {
    return role == IPC_PRODUCER || role == IPC_CONSUMER || role == (IPC_PRODUCER | IPC_CONSUMER);
}

IPC_API int ipc_ring_create(ipc_ring *r, const char *name, int role, const ipc_ring_opts *opts) {
    char path[IPC__SHM_PATHLEN];
    unsigned mode = (opts && opts->mode) ? opts->mode : 0600u;
    unsigned flags = opts ? opts->flags : 0;
    unsigned kind = flags & 0xffu, shift = (flags >> 24) & 0x3fu;
    uint64_t cap = 1u << 20, want = (opts && opts->capacity) ? opts->capacity : cap;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), hdr;
    int rc, named = 0;
    ipc__ring_hdr *h;
    if (!r) return -EINVAL;
    ipc__ring_reset(r);
    if (!ipc__ring_role_ok(role) || (mode & ~0777u) || kind > IPC_RING_BROADCAST ||
        (flags & ~(unsigned)(IPC__RING_FLAGS | 0xffu | (0x3fu << 24))) ||
        ((flags & IPC_RING_OVERWRITE) && kind != IPC_RING_BROADCAST) ||
        (kind == IPC_RING_BROADCAST && role == (IPC_PRODUCER | IPC_CONSUMER)))
        return -EINVAL;
    if (kind == IPC_RING_SPSC && shift) return -EINVAL;
    if (kind != IPC_RING_SPSC) {
        if (!shift) shift = IPC__MP_SHIFT;
        if (shift < 5 || shift > 30) return -EINVAL;
        if (want < ((uint64_t)2 << shift)) want = (uint64_t)2 << shift; /* two slots at least */
    }
    hdr = ipc__ring_hdr_size(kind, page);
    if (want > IPC__RING_MAXCAP) return -EINVAL;
    for (cap = page; cap < want; cap <<= 1) {
    }
    if (name && (rc = ipc__shm_path(name, path)) != 0) return rc;
    if (!name) {
        r->fd = (int)syscall(SYS_memfd_create, "ipc.h ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    } else {
        r->fd = open(IPC__SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, (mode_t)mode);
        if (r->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
            r->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
            named = r->fd >= 0;
        }
    }
    if (r->fd < 0) {
        rc = ipc__neg_errno();
        ipc__ring_reset(r);
        return rc;
    }
    rc = (name && fchmod(r->fd, (mode_t)mode) != 0) ? ipc__neg_errno() : 0;
    if (rc == 0) rc = ipc__reserve(r->fd, hdr + (size_t)cap);
    /* F_SEAL_SEAL too: a peer must not add F_SEAL_FUTURE_WRITE and break later attaches. */
    if (rc == 0 && !name &&
        fcntl(r->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        rc = ipc__neg_errno();
    if (rc == 0) rc = ipc__ring_map(r, r->fd, cap, hdr, flags);
    if (rc == 0) {
        h = IPC__HDR(r);
        h->version = IPC__RING_VERSION;
        h->hdr_size = (uint32_t)hdr;
        h->capacity = cap;
        h->flags = kind | (flags & IPC__RING_FLAGS) | (kind ? shift << 24 : 0);
        r->kind = kind;
        r->slot_shift = kind ? shift : 0;
        r->nslots = kind ? cap >> shift : 0;
        __atomic_store_n(&h->magic, IPC__RING_MAGIC, __ATOMIC_RELEASE);
        rc = ipc__ring_finish(r, role, opts, NULL); /* still nameless: reopen by /proc */
    }
    if (rc == 0 && name && !named) rc = ipc__publish(r->fd, path);
    if (rc != 0) {
        if (named) unlink(path);
        ipc__ring_undo(r);
    }
    return rc;
}

/* Map and check an object that claims to be a ring; fd is owned by r from here on. */
static int ipc__ring_attach(ipc_ring *r, int fd, int role, const char *path) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE), hdr;
    const ipc__ring_hdr *first;
    struct stat st;
    uint64_t cap;
    uint32_t flags, kind, shift;
    ipc__ring_hdr *h;
    int rc, seals;
    r->fd = fd;
    if (fstat(fd, &st) != 0) return ipc__neg_errno();
    if (!S_ISREG(st.st_mode)) return -EBADMSG;
    /* Whoever else holds the object could truncate it under us (SIGBUS on the next
       access) unless it is sealed against shrinking, as ipc_ring_create's anonymous rings
       are. Named rings in /dev/shm cannot be sealed (F_SEAL_SEAL is preset): they trust
       their openers, as named objects must. Anything else (an unsealed memfd, a memfd
       made without MFD_ALLOW_SEALING, a file on disk) was not made by ipc_ring_create. */
    seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
        struct stat shm;
        if (seals >= 0 && !(seals & F_SEAL_SEAL)) return -EBADMSG;
        if (stat(IPC__SHM_DIR, &shm) != 0 || shm.st_dev != st.st_dev) return -EBADMSG;
    }
    if (st.st_size < (off_t)(2 * page)) return -EBADMSG;
    /* The kind, and so the header size, is in the first page. */
    first = (const ipc__ring_hdr *)mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
    if (first == MAP_FAILED) return ipc__neg_errno();
    rc = __atomic_load_n(&first->magic, __ATOMIC_ACQUIRE) == IPC__RING_MAGIC &&
                 first->version == IPC__RING_VERSION
             ? 0
             : -EBADMSG;
    flags = first->flags;
    munmap((void *)(uintptr_t)first, page);
    if (rc) return rc;
    kind = flags & 0xffu;
    shift = (flags >> 24) & 0x3fu;
    if ((flags & ~(uint32_t)(IPC__RING_FLAGS | 0xffu | (0x3fu << 24))) ||
        kind > IPC_RING_BROADCAST ||
        (kind == IPC_RING_SPSC ? shift != 0 : shift < 5 || shift > 30) ||
        ((flags & IPC_RING_OVERWRITE) && kind != IPC_RING_BROADCAST))
        return -EBADMSG;
    if (kind == IPC_RING_BROADCAST && role == (IPC_PRODUCER | IPC_CONSUMER)) return -EINVAL;
    hdr = ipc__ring_hdr_size(kind, page);
    if ((uint64_t)st.st_size <= hdr) return -EBADMSG;
    cap = (uint64_t)st.st_size - hdr;
    /* the data area is mapped twice, back to back: whole pages only */
    if ((cap & (cap - 1)) || cap < page || cap > IPC__RING_MAXCAP ||
        (kind && cap < ((uint64_t)2 << shift)))
        return -EBADMSG;
    if ((rc = ipc__ring_map(r, fd, cap, hdr, 0)) != 0) return rc;
    h = IPC__HDR(r);
    if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != IPC__RING_MAGIC ||
        h->version != IPC__RING_VERSION || h->hdr_size != hdr || h->capacity != cap ||
        h->flags != flags)
        return -EBADMSG;
    r->kind = kind;
    r->slot_shift = shift;
    r->nslots = kind ? cap >> shift : 0;
    if (flags & IPC_RING_PREFAULT) ipc__prefault(r->base, hdr + 2 * (size_t)cap, 1);
    return ipc__ring_finish(r, role, NULL, path);
}

IPC_API int ipc_ring_open(ipc_ring *r, const char *name, int role) {
    char path[IPC__SHM_PATHLEN];
    int rc, fd;
    if (!r) return -EINVAL;
    ipc__ring_reset(r);
    if (!ipc__ring_role_ok(role)) return -EINVAL;
    if ((rc = ipc__shm_path(name, path)) != 0) return rc;
    fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return ipc__neg_errno();
    if ((rc = ipc__ring_attach(r, fd, role, path)) != 0) {
        ipc__ring_undo(r);
    }
    return rc;
}

IPC_API int ipc_ring_attach_fd(ipc_ring *r, int fd, int role) {
    int rc, own;
    if (!r) return -EINVAL;
    ipc__ring_reset(r);
    if (!ipc__ring_role_ok(role)) return -EINVAL;
    if (fd < 0) return -EBADF;
    if ((own = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) return ipc__neg_errno();
    if ((rc = ipc__ring_attach(r, own, role, NULL)) != 0) {
        ipc__ring_undo(r);
    }
    return rc;
}

IPC_API int ipc_ring_fd(const ipc_ring *r) {
    if (!r) return -EINVAL;
    if (!r->base) return -EBADF;
    return r->fd;
}

IPC_API int ipc_ring_unlink(const char *name) {
    return ipc_shm_unlink(name);
}

IPC_API int ipc_ring_get_stats(const ipc_ring *r, ipc_ring_stats *st) {
    if (!r || !st) return -EINVAL;
    if (!r->base) return -EBADF;
    st->sleeps = r->nsleep;
    st->wakes = r->nwake;
    st->lost = r->nlost;
    return 0;
}

IPC_API size_t ipc_ring_max_msg(const ipc_ring *r) {
    if (!r || !r->base) return 0;
    return r->kind ? ((size_t)1 << r->slot_shift) - 16 : (size_t)(r->cap - 16);
}

/* ---- waiting ---- */

/* The publisher's side of the Dekker pair: nothing but a compiler barrier, unless this
   process could not register for membarrier. */
static void ipc__ring_light_barrier(const ipc_ring *r) {
    if (IPC__UNLIKELY(r->fence))
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    else
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* The sleeper's side. Returns 0, or 1 if membarrier is unavailable (sleep in short slices:
   a peer that registered publishes without a fence). */
static int ipc__ring_heavy_barrier(void) {
#ifdef SYS_membarrier
    if (syscall(SYS_membarrier, IPC__MB_GLOBAL_EXPEDITED, 0, 0) == 0) return 0;
#endif
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return 1;
}

/* Wake the side's sleepers, once: the announcement is taken back here, so a sleeper that
   is slow to get a CPU does not cost its publisher a system call per message meanwhile.
   All of the side's sleepers are woken; one that finds nothing announces itself again. */
static void ipc__ring_wake(ipc_ring *r, ipc__ring_side *s) {
    if (__atomic_exchange_n(&s->waiting, 0u, __ATOMIC_ACQ_REL) == 0) return;
    IPC__KILL("wake.exchanged");
    r->nwake++;
    __atomic_fetch_add(&s->futex, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &s->futex, IPC__FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* -EPIPE if the peer closed, or died (its lock is free; checked at most every 100 ms
   unless force), else 0. A peer that never attached is not gone: it may yet come. */
static int ipc__ring_peer_gone(ipc_ring *r, int peer, int force) {
    ipc__ring_side *side = ipc__ring_side_of(r, peer);
    uint32_t st = __atomic_load_n(&side->state, __ATOMIC_ACQUIRE);
    uint32_t claims = __atomic_load_n(&side->claims, __ATOMIC_RELAXED);
    int64_t now;
    if (r->role & peer) return 0; /* we hold both roles */
    if (st == IPC__ROLE_CLOSED) return -EPIPE;
    if (st != IPC__ROLE_ATTACHED) return 0;
    now = ipc_time_now();
    /* The verdict stands for a slice, unless a new peer has claimed the role since. */
    if (force || now - r->peer_check >= IPC__RING_SLICE || claims != r->peer_claims) {
        r->peer_check = now;
        r->peer_claims = claims;
        r->peer_dead = ipc__ring_lock(r->lockfd, F_OFD_GETLK, F_WRLCK, peer) == 0;
    }
    return r->peer_dead ? -EPIPE : 0;
}

/* ---- slot kinds: sequence words, liveness, holes ---- */

static unsigned char *ipc__mp_slot(const ipc_ring *r, uint64_t pos) {
    return r->data + ((pos & (r->nslots - 1)) << r->slot_shift);
}

/* A slot's sequence is stored minus the slot's index (zeroed memory: every slot free for
   lap 0); the hole bit rides on top. */
static uint64_t ipc__mp_seq(const ipc_ring *r, uint64_t pos) {
    uint64_t v = __atomic_load_n((uint64_t *)(void *)ipc__mp_slot(r, pos), __ATOMIC_ACQUIRE);
    return ((v & ~IPC__MP_FLAGS) + (pos & (r->nslots - 1))) | (v & IPC__MP_FLAGS);
}

static uint64_t ipc__mp_stored(const ipc_ring *r, uint64_t pos, uint64_t seq) {
    return ((seq & ~IPC__MP_FLAGS) - (pos & (r->nslots - 1))) | (seq & IPC__MP_FLAGS);
}

static void ipc__mp_set_seq(const ipc_ring *r, uint64_t pos, uint64_t seq) {
    __atomic_store_n((uint64_t *)(void *)ipc__mp_slot(r, pos), ipc__mp_stored(r, pos, seq),
                     __ATOMIC_RELEASE);
}

static int ipc__mp_cas_seq(const ipc_ring *r, uint64_t pos, uint64_t from, uint64_t to) {
    uint64_t want = ipc__mp_stored(r, pos, from);
    return __atomic_compare_exchange_n((uint64_t *)(void *)ipc__mp_slot(r, pos), &want,
                                       ipc__mp_stored(r, pos, to), 0, __ATOMIC_SEQ_CST,
                                       __ATOMIC_RELAXED);
}

static void ipc__ring_wake_all(ipc__ring_side *s) {
    __atomic_fetch_add(&s->futex, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &s->futex, IPC__FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Is a handle with a role in `role` attached and alive (its entry's lock held)? With pos
   other than IPC__MP_IDLE, only one whose entry names pos counts. Our own entry counts
   without asking: the lock query does not see our own locks. */
static int ipc__mp_live(ipc_ring *r, int role, uint64_t pos) {
    int k;
    for (k = 0; k < IPC__MP_REG_MAX; k++) {
        ipc__mp_ent *e = ipc__mp_reg(r, k);
        if (!(__atomic_load_n(&e->role, __ATOMIC_ACQUIRE) & (uint32_t)role)) continue;
        if (pos != IPC__MP_IDLE &&
            __atomic_load_n(role == IPC_PRODUCER ? &e->ppos : &e->cpos, __ATOMIC_ACQUIRE) != pos)
            continue;
        if (k == r->reg) return 1;
        if (ipc__ring_lock_at(r->lockfd, F_OFD_GETLK, F_WRLCK, IPC__MP_LOCK0 + k) != 0)
            return 1; /* held (or unknowable: assume alive) */
    }
    return 0;
}

/* Slot kinds: -EPIPE once every handle of the peer role that ever attached is gone. The
   attached count is exact for handles that closed; the dead are found by their free
   locks, looked at most every 100 ms unless force. */
static int ipc__mp_peer_gone(ipc_ring *r, int peer, int force) {
    ipc__ring_side *side = ipc__ring_side_of(r, peer);
    uint32_t claims = __atomic_load_n(&side->claims, __ATOMIC_ACQUIRE);
    int64_t now;
    if ((r->role & peer) || claims == 0) return 0; /* ourselves, or none yet: may come */
    if (__atomic_load_n(&side->state, __ATOMIC_ACQUIRE) == 0) return -EPIPE;
    now = ipc_time_now();
    if (force || now - r->peer_check >= IPC__RING_SLICE || claims != r->peer_claims) {
        r->peer_check = now;
        r->peer_claims = claims;
        r->peer_dead = !ipc__mp_live(r, peer, IPC__MP_IDLE);
    }
    return r->peer_dead ? -EPIPE : 0;
}

/* Pass the slots that block the ring because their holder died: the head's slot, claimed
   by a producer that never published it (it becomes a hole, which consumers take and
   drop), and the tail's slot, still holding the lap before because the consumer that took
   that message never freed it. Returns 1 if it passed one. */
static int ipc__mp_unstick(ipc_ring *r) {
    ipc__ring_hdr *h = IPC__HDR(r);
    uint64_t n = r->nslots, head, tail, pos, seq;
    int done = 0;
    head = __atomic_load_n(&h->head, __ATOMIC_ACQUIRE);
    tail = __atomic_load_n(&h->tail, __ATOMIC_ACQUIRE);
    if (ipc__mp_seq(r, head) == head && tail - head - 1 < n &&
        !ipc__mp_live(r, IPC_PRODUCER, head) &&
        ipc__mp_cas_seq(r, head, head, (head + 1) | IPC__MP_HOLE)) {
        IPC__KILL("mp.unstick.hole");
        ipc__ring_wake_all(&h->cons); /* sleeping consumers: something to pass */
        done = 1;
    }
    pos = tail - n; /* the message the tail's slot held on the lap before */
    seq = ipc__mp_seq(r, tail);
    if ((seq & ~IPC__MP_HOLE) == pos + 1 && head - pos - 1 < n &&
        !ipc__mp_live(r, IPC_CONSUMER, pos) && ipc__mp_cas_seq(r, tail, seq, pos + n)) {
        if (!(seq & IPC__MP_HOLE)) r->nlost++;
        IPC__KILL("mp.unstick.reclaim");
        ipc__ring_wake_all(&h->prod);
        done = 1;
    }
    return done;
}

/* Consumer, slot kinds: is the head's slot published (or a hole), or has the head moved? */
static int ipc__mp_has_data(ipc_ring *r, uint64_t need) {
    uint64_t pos = __atomic_load_n(&IPC__HDR(r)->head, __ATOMIC_ACQUIRE);
    (void)need;
    return (int64_t)((ipc__mp_seq(r, pos) & ~IPC__MP_HOLE) - (pos + 1)) >= 0;
}

/* Producer, slot kinds: is the tail's slot free for it, or has the tail moved? */
static int ipc__mp_has_room(ipc_ring *r, uint64_t need) {
    uint64_t pos = __atomic_load_n(&IPC__HDR(r)->tail, __ATOMIC_ACQUIRE);
    uint64_t seq = ipc__mp_seq(r, pos), s0 = seq & ~IPC__MP_FLAGS;
    (void)need;
    /* a hole of this lap means the tail moved past it; of the lap before, it is unread.
       The busy bit is broadcast's: here, corruption, which the claim itself reports. */
    if (seq & IPC__MP_BUSY) return 1;
    return (seq & IPC__MP_HOLE) ? (int64_t)(s0 - pos) > 0 : (int64_t)(seq - pos) >= 0;
}

/* Condition of a wait: 1 when it holds, 0 not yet, < 0 an error (corruption). */
typedef int (*ipc__ring_cond)(ipc_ring *r, uint64_t need);

/* Consumer: is a record committed at our head? The tail must agree with the header. It
   is stored after the header, so we may be a record ahead of it, but a tail past our head
   over an empty header is corruption. */
static int ipc__ring_has_data(ipc_ring *r, uint64_t need) {
    uint64_t t;
    (void)need;
    if (__atomic_load_n(ipc__ring_word(r, r->phead), __ATOMIC_ACQUIRE) != 0) return 1;
    t = __atomic_load_n(&IPC__HDR(r)->tail, __ATOMIC_ACQUIRE);
    if (t & 7) return -EBADMSG;
    if (r->phead - t <= r->cap) return 0; /* t <= head: nothing beyond us yet */
    if (t - r->phead > r->cap) return -EBADMSG;
    return __atomic_load_n(ipc__ring_word(r, r->phead), __ATOMIC_ACQUIRE) != 0 ? 1 : -EBADMSG;
}

/* Producer: is there room for need bytes? Refreshes the cached head. */
static int ipc__ring_has_room(ipc_ring *r, uint64_t need) {
    uint64_t h = __atomic_load_n(&IPC__HDR(r)->head, __ATOMIC_ACQUIRE);
    if (r->ptail - h > r->cap || (h & 7)) return -EBADMSG;
    r->phead = h;
    return r->cap - (r->ptail - h) >= need;
}

/* Wait until cond holds: spin for the spin budget, then sleep on our futex word, waking
   every slice to check that the peer is still there. Returns 0 or a negative error. */
static void ipc__poll_arm(ipc_ring *r, uint64_t need);

/* Announce a sleeper (on = 1): waiting counts them. A count is never taken back by its
   sleeper, only reset by the waker (ipc__ring_wake): a sleeper could not tell whether the
   waker already took its part, and there may be several (the slot kinds, or a thread
   sleeping for ipc_ring_pollfd beside the handle's own call). A stale count costs one
   needless wake-up. An SPSC side without a pollfd has one sleeper at most, which takes
   its announcement back when it leaves. */
static void ipc__ring_announce(ipc_ring *r, ipc__ring_side *side, int on) {
    if (on)
        __atomic_fetch_add(&side->waiting, 1u, __ATOMIC_RELEASE);
    else if (r->kind == IPC_RING_SPSC && !r->poller) /* the only sleeper of its side */
        __atomic_store_n(&side->waiting, 0u, __ATOMIC_RELAXED);
}

/* The peer role is gone for good: -EPIPE. Slot kinds pass the holes of the dead first,
   so that the messages behind them are still delivered. */
static int ipc__ring_gone(ipc_ring *r, int peer, int force) {
    int gone;
    if (r->kind == IPC_RING_SPSC) return ipc__ring_peer_gone(r, peer, force);
    if (r->kind == IPC_RING_BROADCAST) /* readers may all leave: the producer goes on */
        return peer == IPC_PRODUCER ? ipc__ring_peer_gone(r, peer, force) : 0;
    gone = ipc__mp_peer_gone(r, peer, force);
    if (gone) ipc__mp_unstick(r);
    return gone;
}

static int ipc__ring_wait(ipc_ring *r, int me, ipc__ring_cond cond, uint64_t need,
                          int64_t deadline) {
    ipc__ring_side *side = ipc__ring_side_of(r, me);
    int peer = me == IPC_PRODUCER ? IPC_CONSUMER : IPC_PRODUCER;
    int64_t spin_end, now;
    uint32_t spin = r->spin_ns ? r->spin_ns : r->spin_cur;
    int c, gone, n, phase;
    if ((c = cond(r, need)) != 0) return c < 0 ? c : 0;
    /* The peer is gone and everything it committed has been seen (or room cannot come;
       slot kinds: once the holes its dead left are passed). */
    if ((gone = ipc__ring_gone(r, peer, 0)) != 0) {
        c = cond(r, need);
        return c < 0 ? c : c ? 0 : gone;
    }
    if (deadline == 0) {
        /* a slot kind's head or tail held up by the dead: pass it now, not in a slice */
        if (r->kind != IPC_RING_SPSC && r->kind != IPC_RING_BROADCAST && ipc__mp_unstick(r) &&
            (c = cond(r, need)) != 0)
            return c < 0 ? c : 0;
        if (r->poller) ipc__poll_arm(r, need);
        return -EAGAIN;
    }
    now = ipc_time_now();
    spin_end = now + spin;
    for (n = 0, c = 0; spin >= 100; n++) { /* spin_ns below 100 ns: go straight to sleep */
        /* The SPSC consumer spins on its header word alone: the tail line is the producer's. */
        if (me == IPC_CONSUMER && r->kind == IPC_RING_SPSC
                ? __atomic_load_n(ipc__ring_word(r, r->phead), __ATOMIC_RELAXED) != 0
                : (c = cond(r, need)) != 0) {
            c = cond(r, need);
            break;
        }
        ipc__cpu_relax();
        if ((n & 15) == 15 &&
            ((now = ipc_time_now()) >= spin_end || (deadline != IPC_FOREVER && now >= deadline)))
            break;
    }
    if (c != 0) { /* the spin paid off: allow a longer one next time */
        if (!r->spin_ns && r->spin_cur < 64000) r->spin_cur *= 2;
        return c < 0 ? c : 0;
    }
    if (!r->spin_ns && r->spin_cur > 1000) r->spin_cur /= 2;
    for (phase = 0;; phase++) {
        uint32_t seq;
        int64_t until, slice = IPC__RING_SLICE;
        /* Slot kinds look for slots held by the dead when they start to sleep, then every
           20 ms of waiting, however short each call's deadline and whoever wakes them:
           neither may keep a hole from being passed. */
        if ((r->kind == IPC_RING_MPMC || r->kind == IPC_RING_MPSC) &&
            (now = ipc_time_now()) >= r->unstick_at) {
            r->unstick_at = now + 20000000;
            if (ipc__mp_unstick(r) && (c = cond(r, need)) != 0) return c < 0 ? c : 0;
        }
        seq = __atomic_load_n(&side->futex, __ATOMIC_ACQUIRE);
        ipc__ring_announce(r, side, 1);
        IPC__KILL("wait.announced");
        if (phase == 0) { /* short first sleep: a fence is enough (see the protocol) */
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            slice = IPC__RING_FIRST_SLICE;
        } else if (ipc__ring_heavy_barrier()) {
            slice = 1000000;
        }
        c = cond(r, need);
        if (c == 0 && (gone = ipc__ring_gone(r, peer, 0)) != 0) c = cond(r, need);
        if (c != 0 || gone) {
            ipc__ring_announce(r, side, 0);
            return c < 0 ? c : c ? 0 : gone;
        }
        now = ipc_time_now();
        if (deadline != IPC_FOREVER && now >= deadline) {
            ipc__ring_announce(r, side, 0);
            return -ETIMEDOUT;
        }
        until = (deadline == IPC_FOREVER || deadline - now > slice) ? now + slice : deadline;
        r->nsleep++;
        IPC__KILL("wait.sleep");
        ipc_futex_wait_until(&side->futex, seq, until);
        ipc__ring_announce(r, side, 0);
        if ((c = cond(r, need)) != 0) return c < 0 ? c : 0;
        if (phase > 0 && ipc_time_now() >= until) r->peer_check = 0; /* a full slice */
    }
}

static int ipc__ring_usable(const ipc_ring *r, int role) {
    if (!r) return -EINVAL;
    if (!r->base) return -EBADF;
    if (IPC__UNLIKELY(r->gen != __atomic_load_n(&ipc__fork_gen, __ATOMIC_RELAXED)))
        return -EBADF; /* a copy inherited over fork: the role is the parent's */
    if (r->poisoned) return -EBADMSG;
    if (!(r->role & role)) return -EINVAL;
    return 0;
}

static int ipc__ring_poison(ipc_ring *r, int rc) {
    if (rc == -EBADMSG) r->poisoned = 1;
    return rc;
}

/* ---- slot kinds: producer and consumer ---- */

/* Claim the tail's slot for a len-byte message, waiting for room: its position. Our
   registry entry names the position before the claim, so that whoever finds the slot
   abandoned can tell whether its claimer still lives. */
static int ipc__mp_claim_slot(ipc_ring *r, size_t len, int64_t timeout_ns, uint64_t *out) {
    ipc__ring_hdr *h = IPC__HDR(r);
    ipc__mp_ent *e = ipc__mp_reg(r, r->reg);
    int64_t dl = 0;
    int waited = 0, rc;
    if (len == 0 || r->reserved || timeout_ns < IPC_FOREVER) return -EINVAL;
    if (len > ((size_t)1 << r->slot_shift) - 16) return -EMSGSIZE;
    if (IPC__UNLIKELY(__atomic_load_n(&h->cons.state, __ATOMIC_RELAXED) == 0) &&
        ipc__mp_peer_gone(r, IPC_CONSUMER, 0))
        return -EPIPE; /* every consumer closed */
    for (;;) {
        uint64_t pos = __atomic_load_n(&h->tail, __ATOMIC_RELAXED);
        uint64_t seq = ipc__mp_seq(r, pos);
        int64_t dif = (int64_t)(seq - pos);
        if (IPC__UNLIKELY(seq & IPC__MP_BUSY)) /* broadcast's bit, in a slot kind */
            return ipc__ring_poison(r, -EBADMSG);
        if (dif == 0) {
            __atomic_store_n(&e->ppos, pos, __ATOMIC_RELAXED);
            IPC__KILL("mp.claim.named");
            if (__atomic_compare_exchange_n(&h->tail, &pos, pos + 1, 0, __ATOMIC_SEQ_CST,
                                            __ATOMIC_RELAXED)) {
                IPC__KILL("mp.claim.won");
                *out = pos;
                return 0;
            }
            continue;
        }
        /* Published (or made a hole) past us: the tail moved on (it moves before a slot
           is published, so it must have). A tail that did not is corrupt. */
        if ((seq & IPC__MP_HOLE) ? (int64_t)((seq & ~IPC__MP_FLAGS) - pos) > 0 : dif > 0) {
            if (__atomic_load_n(&h->tail, __ATOMIC_ACQUIRE) == pos)
                return ipc__ring_poison(r, -EBADMSG);
            continue;
        }
        if (!waited) {
            dl = ipc_deadline_make(timeout_ns);
            waited = 1;
        }
        /* A claim that lost its race left our entry naming a slot another producer
           holds: if that one died, we must not look like its owner while we wait. */
        __atomic_store_n(&e->ppos, IPC__MP_IDLE, __ATOMIC_RELEASE);
        if ((rc = ipc__ring_wait(r, IPC_PRODUCER, ipc__mp_has_room, 0, dl)) != 0)
            return ipc__ring_poison(r, rc);
    }
}

/* Publish the message (len 0: a cancelled reservation, which consumers pass), then wake
   a sleeping consumer if there is one. */
IPC__INLINE void ipc__mp_publish(ipc_ring *r, uint64_t pos, size_t len) {
    ipc__ring_hdr *h = IPC__HDR(r);
    uint32_t *w = (uint32_t *)(void *)(ipc__mp_slot(r, pos) + 8);
    __atomic_store_n(&w[0], (uint32_t)len, __ATOMIC_RELAXED);
    __atomic_store_n(&w[1], (uint32_t)len ^ (uint32_t)pos ^ IPC__MP_CHECK, __ATOMIC_RELAXED);
    IPC__KILL("mp.publish.len");
    ipc__mp_set_seq(r, pos, pos + 1); /* our entry may go on naming pos: it is published */
    IPC__KILL("mp.publish.seq");
    ipc__ring_light_barrier(r);
    if (__atomic_load_n(&h->cons.waiting, __ATOMIC_RELAXED)) ipc__ring_wake(r, &h->cons);
}

/* Free a consumed slot for the next lap, then wake a sleeping producer if there is one. */
IPC__INLINE void ipc__mp_free(ipc_ring *r, uint64_t pos) {
    ipc__ring_hdr *h = IPC__HDR(r);
    IPC__KILL("mp.free");
    ipc__mp_set_seq(r, pos, pos + r->nslots); /* our entry may go on naming pos: it is free */
    ipc__ring_light_barrier(r);
    if (__atomic_load_n(&h->prod.waiting, __ATOMIC_RELAXED)) ipc__ring_wake(r, &h->prod);
}

/* Take the next message, waiting for one: its length, and its position in *out. A
   message longer than cap is -EMSGSIZE and left for the taking. Holes and cancelled
   reservations are passed on the way (holes counted as lost). */
static ssize_t ipc__mp_take(ipc_ring *r, size_t cap, int64_t timeout_ns, uint64_t *out) {
    ipc__ring_hdr *h = IPC__HDR(r);
    ipc__mp_ent *e = ipc__mp_reg(r, r->reg);
    size_t max = ((size_t)1 << r->slot_shift) - 16;
    int64_t dl = 0;
    int waited = 0, rc;
    if (timeout_ns < IPC_FOREVER) return -EINVAL;
    for (;;) {
        uint64_t pos = __atomic_load_n(&h->head, __ATOMIC_RELAXED);
        uint64_t seq = ipc__mp_seq(r, pos);
        int64_t dif = (int64_t)((seq & ~IPC__MP_HOLE) - (pos + 1));
        if (dif == 0) {
            uint32_t len = 0;
            if (!(seq & IPC__MP_HOLE)) {
                const uint32_t *w = (const uint32_t *)(const void *)(ipc__mp_slot(r, pos) + 8);
                uint32_t chk;
                len = __atomic_load_n(&w[0], __ATOMIC_RELAXED);
                chk = __atomic_load_n(&w[1], __ATOMIC_RELAXED);
                /* Read before the claim, so another consumer may have taken the message
                   and a producer refilled the slot meanwhile: the sequence tells. */
                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                if (ipc__mp_seq(r, pos) != seq) continue;
                if (len > max || chk != (len ^ (uint32_t)pos ^ IPC__MP_CHECK))
                    return ipc__ring_poison(r, -EBADMSG);
                if (len > cap) { /* a claim lost before may still name a slot: drop it */
                    __atomic_store_n(&e->cpos, IPC__MP_IDLE, __ATOMIC_RELEASE);
                    return -EMSGSIZE;
                }
            }
            __atomic_store_n(&e->cpos, pos, __ATOMIC_RELAXED);
            IPC__KILL("mp.take.named");
            if (r->kind == IPC_RING_MPSC)
                __atomic_store_n(&h->head, pos + 1, __ATOMIC_RELEASE); /* the only consumer */
            else if (!__atomic_compare_exchange_n(&h->head, &pos, pos + 1, 0, __ATOMIC_SEQ_CST,
                                                  __ATOMIC_RELAXED))
                continue;
            IPC__KILL("mp.take.won");
            if (len == 0) { /* a hole or a cancelled reservation */
                if (seq & IPC__MP_HOLE) r->nlost++;
                ipc__mp_free(r, pos);
                continue;
            }
            *out = pos;
            return (ssize_t)len;
        }
        if (dif > 0) { /* consumed past us: the head moved on, or it is corrupt */
            if (__atomic_load_n(&h->head, __ATOMIC_ACQUIRE) == pos)
                return ipc__ring_poison(r, -EBADMSG);
            continue;
        }
        if (!waited) {
            dl = ipc_deadline_make(timeout_ns);
            waited = 1;
        }
        __atomic_store_n(&e->cpos, IPC__MP_IDLE, __ATOMIC_RELEASE); /* as the producer's */
        if ((rc = ipc__ring_wait(r, IPC_CONSUMER, ipc__mp_has_data, 0, dl)) != 0)
            return ipc__ring_poison(r, rc);
    }
}

/* ---- broadcast ---- */

/* The position of the slowest live reader (the tail if there is none). probe: ask the
   locks of the readers that hold the producer back, and leave out the dead. A position
   that cannot be (ahead of the tail, or a lap behind) is left out too: a reader that wrote
   it only hurts itself, as its reads check every slot's sequence. */
static uint64_t ipc__bc_min_at(const ipc_ring *r, uint64_t tail, int probe) {
    uint64_t min = tail;
    int k;
    for (k = 0; k < IPC__MP_REG_MAX; k++) {
        ipc__mp_ent *e = ipc__mp_reg(r, k);
        uint64_t at;
        if (!(__atomic_load_n(&e->role, __ATOMIC_ACQUIRE) & IPC_CONSUMER)) continue;
        at = __atomic_load_n(&e->cpos, __ATOMIC_ACQUIRE);
        if (tail - at > r->nslots || tail - at <= tail - min) continue;
        if (probe && tail - at == r->nslots &&
            ipc__ring_lock_at(r->lockfd, F_OFD_GETLK, F_WRLCK, IPC__MP_LOCK0 + k) == 0)
            continue; /* dead: dropped */
        min = at;
    }
    return min;
}

static uint64_t ipc__bc_min(ipc_ring *r, int probe) {
    return ipc__bc_min_at(r, r->ptail, probe);
}

/* Producer: may it write the slot at its tail (every live reader is past the lap before)? */
static int ipc__bc_has_room(ipc_ring *r, uint64_t need) {
    (void)need;
    r->bgen = __atomic_load_n(&IPC__HDR(r)->head, __ATOMIC_SEQ_CST);
    r->bmin = ipc__bc_min(r, 1);
    return r->ptail - r->bmin < r->nslots;
}

/* Reader: is the slot at its head published, or was it lapped? */
static int ipc__bc_has_data(ipc_ring *r, uint64_t need) {
    uint64_t pos = r->phead, seq = ipc__mp_seq(r, pos), s0 = seq & ~IPC__MP_FLAGS;
    (void)need;
    return (seq & IPC__MP_BUSY) ? s0 != pos : (int64_t)(s0 - pos) > 0;
}

/* Producer: room for the next message, waiting for the slowest reader if need be (never
   with IPC_RING_OVERWRITE), then mark the slot as being written. */
static int ipc__bc_begin(ipc_ring *r, size_t len, int64_t timeout_ns) {
    ipc__ring_hdr *h = IPC__HDR(r);
    int rc;
    if (len == 0 || r->reserved || timeout_ns < IPC_FOREVER) return -EINVAL;
    if (len > ((size_t)1 << r->slot_shift) - 16) return -EMSGSIZE;
    if (!(r->flags & IPC_RING_OVERWRITE)) {
        uint64_t gen = __atomic_load_n(&h->head, __ATOMIC_SEQ_CST);
        if (gen != r->bgen || r->ptail - r->bmin >= r->nslots) {
            r->bgen = gen;
            r->bmin = ipc__bc_min(r, 0);
            if (r->ptail - r->bmin >= r->nslots &&
                (rc = ipc__ring_wait(r, IPC_PRODUCER, ipc__bc_has_room, 0,
                                     ipc_deadline_make(timeout_ns))) != 0)
                return ipc__ring_poison(r, rc);
        }
    }
    /* a seqlock: marked before the message is touched, so a reader of the lap before sees */
    __atomic_store_n((uint64_t *)(void *)ipc__mp_slot(r, r->ptail),
                     ipc__mp_stored(r, r->ptail, r->ptail | IPC__MP_BUSY), __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    IPC__KILL("bc.begin.busy");
    return 0;
}

/* Producer: publish the message written at the tail (len 0: cancel; the slot then holds
   no message, neither of this lap nor of the one before). */
IPC__INLINE void ipc__bc_publish(ipc_ring *r, size_t len) {
    ipc__ring_hdr *h = IPC__HDR(r);
    uint64_t pos = r->ptail;
    uint32_t *w = (uint32_t *)(void *)(ipc__mp_slot(r, pos) + 8);
    if (len == 0) { /* the lap before was partly overwritten: it reads as lapped now */
        ipc__mp_set_seq(r, pos, pos);
        return;
    }
    __atomic_store_n(&w[0], (uint32_t)len, __ATOMIC_RELAXED);
    __atomic_store_n(&w[1], (uint32_t)len ^ (uint32_t)pos ^ IPC__MP_CHECK, __ATOMIC_RELAXED);
    ipc__mp_set_seq(r, pos, pos + 1);
    IPC__KILL("bc.publish.seq");
    r->ptail = pos + 1;
    __atomic_store_n(&h->tail, pos + 1, __ATOMIC_RELEASE);
    IPC__KILL("bc.publish.tail");
    ipc__ring_light_barrier(r);
    if (__atomic_load_n(&h->cons.waiting, __ATOMIC_RELAXED)) ipc__ring_wake(r, &h->cons);
}

/* Reader: move the head past the message read; wake a producer that waits for us. */
IPC__INLINE void ipc__bc_advance(ipc_ring *r) {
    ipc__ring_hdr *h = IPC__HDR(r);
    r->phead++;
    r->peeked = 0;
    IPC__KILL("bc.advance");
    __atomic_store_n(&ipc__mp_reg(r, r->reg)->cpos, r->phead, __ATOMIC_RELEASE);
    if (!(r->flags & IPC_RING_OVERWRITE)) {
        ipc__ring_light_barrier(r);
        if (__atomic_load_n(&h->prod.waiting, __ATOMIC_RELAXED)) ipc__ring_wake(r, &h->prod);
    }
}

/* Reader: lapped. Go on from the oldest message still in the ring, count what was
   missed: -EOVERFLOW. */
static int ipc__bc_overflow(ipc_ring *r) {
    uint64_t tail = __atomic_load_n(&IPC__HDR(r)->tail, __ATOMIC_ACQUIRE), from;
    if (tail - r->phead > ((uint64_t)1 << 62)) return ipc__ring_poison(r, -EBADMSG); /* behind us */
    /* The oldest message may be replaced while we read it: the slot's sequence tells, and
       that is one more -EOVERFLOW. */
    from = tail - r->phead > r->nslots ? tail - r->nslots : r->phead + 1;
    r->nlost += from - r->phead;
    r->phead = from;
    r->peeked = 0;
    __atomic_store_n(&ipc__mp_reg(r, r->reg)->cpos, from, __ATOMIC_RELEASE);
    return -EOVERFLOW;
}

/* Reader: the next message, copied into buf (cap bytes) or, with zc, pointed at (head
   left in place until release). Its length; -EMSGSIZE (it stays), -EOVERFLOW (lapped),
   -EAGAIN/-ETIMEDOUT, -EPIPE. */
static ssize_t ipc__bc_read(ipc_ring *r, void *buf, size_t cap, const void **zc,
                            int64_t timeout_ns) {
    size_t max = ((size_t)1 << r->slot_shift) - 16;
    int64_t dl = 0;
    int waited = 0, rc;
    if (timeout_ns < IPC_FOREVER) return -EINVAL;
    for (;;) {
        uint64_t pos = r->phead, seq = ipc__mp_seq(r, pos), s0 = seq & ~IPC__MP_FLAGS;
        if (seq == pos + 1) {
            const unsigned char *slot = ipc__mp_slot(r, pos);
            const uint32_t *w = (const uint32_t *)(const void *)(slot + 8);
            uint32_t len = __atomic_load_n(&w[0], __ATOMIC_RELAXED);
            uint32_t chk = __atomic_load_n(&w[1], __ATOMIC_RELAXED);
            int ok = len != 0 && len <= max && chk == (len ^ (uint32_t)pos ^ IPC__MP_CHECK);
            if (ok && len <= cap && buf) memcpy(buf, slot + 16, len);
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (ipc__mp_seq(r, pos) != seq) return ipc__bc_overflow(r); /* replaced meanwhile */
            if (!ok) return ipc__ring_poison(r, -EBADMSG);
            if (len > cap) return -EMSGSIZE;
            if (zc) {
                *zc = slot + 16;
                r->peeked = len;
            } else {
                ipc__bc_advance(r);
            }
            return (ssize_t)len;
        }
        if ((seq & IPC__MP_BUSY) ? s0 != pos : (int64_t)(s0 - pos) > 0)
            return ipc__bc_overflow(r); /* a later lap's message, or one being written */
        if (!waited) {
            dl = ipc_deadline_make(timeout_ns);
            waited = 1;
        }
        if ((rc = ipc__ring_wait(r, IPC_CONSUMER, ipc__bc_has_data, 0, dl)) != 0)
            return ipc__ring_poison(r, rc);
    }
}

/* ---- producer ---- */

/* Room for a len-byte message at our tail, waiting for it if need be. The caller has
   checked the handle. The fast path: a load of the consumer's state and a compare. */
IPC__INLINE int ipc__ring_make_room(ipc_ring *r, size_t len, int64_t timeout_ns) {
    uint64_t need;
    int rc;
    if (len == 0 || r->reserved || timeout_ns < IPC_FOREVER) return -EINVAL;
    if (len > r->cap - 16) return -EMSGSIZE;
    need = ipc__rec_size(len) + 8; /* and the next header word, zeroed at commit */
    if (IPC__UNLIKELY(__atomic_load_n(&IPC__HDR(r)->cons.state, __ATOMIC_RELAXED) ==
                      IPC__ROLE_CLOSED))
        return -EPIPE;
    if (r->cap - (r->ptail - r->phead) < need && (rc = ipc__ring_has_room(r, need)) != 1) {
        int64_t dl = ipc_deadline_make(timeout_ns);
        if (rc == 0 && dl < IPC_FOREVER) return -EINVAL;
        if (rc == 0) rc = ipc__ring_wait(r, IPC_PRODUCER, ipc__ring_has_room, need, dl);
        if (rc) return ipc__ring_poison(r, rc);
    }
    return 0;
}

/* Commit the len bytes written at our tail: zero the next header word, store this header
   (the commit), the tail, then wake the consumer if it announced that it sleeps. */
IPC__INLINE void ipc__ring_publish(ipc_ring *r, size_t len) {
    ipc__ring_hdr *h = IPC__HDR(r);
    uint64_t size = ipc__rec_size(len), word;
    IPC_ASSERT((r->ptail & 7) == 0); /* our own copy: never read back from shared memory */
    word = (uint64_t)len | (uint64_t)((uint32_t)len ^ (uint32_t)(r->ptail >> 3) ^ IPC__REC_CHECK)
                               << 32;
    __atomic_store_n(ipc__ring_word(r, r->ptail + size), 0, __ATOMIC_RELAXED);
    IPC__KILL("spsc.publish.zeroed");
    __atomic_store_n(ipc__ring_word(r, r->ptail), word, __ATOMIC_RELEASE);
    IPC__KILL("spsc.publish.committed");
    r->ptail += size;
    __atomic_store_n(&h->tail, r->ptail, __ATOMIC_RELEASE);
    IPC__KILL("spsc.publish.tail");
    ipc__ring_light_barrier(r);
    if (__atomic_load_n(&h->cons.waiting, __ATOMIC_RELAXED)) ipc__ring_wake(r, &h->cons);
}

IPC_API int ipc_ring_reserve(ipc_ring *r, size_t len, void **msg, int64_t timeout_ns) {
    int rc = ipc__ring_usable(r, IPC_PRODUCER);
    if (rc) return rc;
    if (!msg) return -EINVAL;
    if (r->kind == IPC_RING_BROADCAST) {
        if ((rc = ipc__bc_begin(r, len, timeout_ns)) != 0) return rc;
        r->reserved = len;
        *msg = ipc__mp_slot(r, r->ptail) + 16;
        return 0;
    }
    if (r->kind != IPC_RING_SPSC) {
        uint64_t pos;
        if ((rc = ipc__mp_claim_slot(r, len, timeout_ns, &pos)) != 0) return rc;
        r->reserved = len;
        r->ptail = pos;
        *msg = ipc__mp_slot(r, pos) + 16;
        return 0;
    }
    if ((rc = ipc__ring_make_room(r, len, timeout_ns)) != 0) return rc;
    IPC__KILL("spsc.reserve");
    r->reserved = len;
    *msg = r->data + (r->ptail & (r->cap - 1)) + 8;
    return 0;
}

IPC_API int ipc_ring_commit(ipc_ring *r, size_t len) {
    int rc = ipc__ring_usable(r, IPC_PRODUCER);
    if (rc) return rc;
    if (!r->reserved || len > r->reserved) return -EINVAL;
    r->reserved = 0;
    if (r->kind == IPC_RING_BROADCAST)
        ipc__bc_publish(r, len);
    else if (r->kind != IPC_RING_SPSC)
        ipc__mp_publish(r, r->ptail, len); /* 0 too: the slot is claimed, it must be passed */
    else if (len > 0)
        ipc__ring_publish(r, len);
    return 0;
}

IPC_API int ipc_ring_send(ipc_ring *r, const void *msg, size_t len, int64_t timeout_ns) {
    int rc = ipc__ring_usable(r, IPC_PRODUCER);
    if (rc) return rc;
    if (!msg) return -EINVAL;
    if (r->kind == IPC_RING_BROADCAST) {
        if ((rc = ipc__bc_begin(r, len, timeout_ns)) != 0) return rc;
        memcpy(ipc__mp_slot(r, r->ptail) + 16, msg, len);
        ipc__bc_publish(r, len);
        return 0;
    }
    if (r->kind != IPC_RING_SPSC) {
        uint64_t pos;
        if ((rc = ipc__mp_claim_slot(r, len, timeout_ns, &pos)) != 0) return rc;
        memcpy(ipc__mp_slot(r, pos) + 16, msg, len);
        ipc__mp_publish(r, pos, len);
        return 0;
    }
    if ((rc = ipc__ring_make_room(r, len, timeout_ns)) != 0) return rc;
    memcpy(r->data + (r->ptail & (r->cap - 1)) + 8, msg, len);
    IPC__KILL("spsc.send.copied");
    ipc__ring_publish(r, len);
    return 0;
}

/* ---- consumer ---- */

/* The next message at our head, waiting for it if need be: its length (and r->peeked
   set), or an error. The caller has checked the handle. */
IPC__INLINE ssize_t ipc__ring_next(ipc_ring *r, int64_t timeout_ns) {
    uint64_t *at = ipc__ring_word(r, r->phead), word;
    uint32_t len;
    int rc;
    if (timeout_ns < IPC_FOREVER) return -EINVAL;
    if ((word = __atomic_load_n(at, __ATOMIC_ACQUIRE)) == 0) {
        int64_t dl;
        int i;
        /* A consumer that caught up polls a little before anything costlier: no clock,
           no tail line (the producer's), while the next record is being written. */
        if (timeout_ns != 0 && (r->spin_ns == 0 || r->spin_ns >= 100))
            for (i = 0; i < 64 && (word = __atomic_load_n(at, __ATOMIC_ACQUIRE)) == 0; i++) {
                int k;
                for (k = 0; k < 4; k++)
                    ipc__cpu_relax(); /* let it finish the record */
            }
        if (word == 0) {
            dl = ipc_deadline_make(timeout_ns);
            rc = ipc__ring_wait(r, IPC_CONSUMER, ipc__ring_has_data, 0, dl);
            if (rc) return ipc__ring_poison(r, rc);
            word = __atomic_load_n(at, __ATOMIC_ACQUIRE);
        }
    }
    /* One load of the header, checked before anything is read on its word. */
    len = (uint32_t)word;
    if (len == 0 || len > r->cap - 16 ||
        (uint32_t)(word >> 32) != (len ^ (uint32_t)(r->phead >> 3) ^ IPC__REC_CHECK))
        return ipc__ring_poison(r, -EBADMSG);
    r->peeked = ipc__rec_size(len);
    return (ssize_t)len;
}

/* Consume the peeked message: publish our head, wake the producer if it sleeps. */
IPC__INLINE void ipc__ring_consume(ipc_ring *r) {
    ipc__ring_hdr *h = IPC__HDR(r);
    IPC_ASSERT((r->peeked & 7) == 0 && r->peeked <= r->cap);
    r->phead += r->peeked;
    r->peeked = 0;
    IPC__KILL("spsc.consume.head");
    __atomic_store_n(&h->head, r->phead, __ATOMIC_RELEASE);
    IPC__KILL("spsc.consume.stored");
    ipc__ring_light_barrier(r);
    if (__atomic_load_n(&h->prod.waiting, __ATOMIC_RELAXED)) ipc__ring_wake(r, &h->prod);
}

IPC_API ssize_t ipc_ring_peek(ipc_ring *r, const void **msg, int64_t timeout_ns) {
    ssize_t n = 0;
    int rc = ipc__ring_usable(r, IPC_CONSUMER);
    if (rc) return rc;
    if (!msg) return -EINVAL;
    if (r->kind == IPC_RING_BROADCAST) return ipc__bc_read(r, NULL, SIZE_MAX, msg, timeout_ns);
    if (r->kind != IPC_RING_SPSC) { /* peeking again gives the message taken before */
        uint64_t pos = r->phead;
        if (!r->peeked && (n = ipc__mp_take(r, SIZE_MAX, timeout_ns, &pos)) < 0) return n;
        if (!r->peeked) {
            r->peeked = (uint64_t)n;
            r->phead = pos;
        }
        *msg = ipc__mp_slot(r, r->phead) + 16;
        return (ssize_t)r->peeked;
    }
    if ((n = ipc__ring_next(r, timeout_ns)) > 0) *msg = ipc__ring_word(r, r->phead) + 1;
    return n;
}

IPC_API int ipc_ring_release(ipc_ring *r) {
    int rc = ipc__ring_usable(r, IPC_CONSUMER);
    if (rc) return rc;
    if (!r->peeked) return -EINVAL;
    if (r->kind == IPC_RING_BROADCAST) { /* was it replaced while it was being read? */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (ipc__mp_seq(r, r->phead) != r->phead + 1) return ipc__bc_overflow(r);
        ipc__bc_advance(r);
        return 0;
    }
    if (r->kind != IPC_RING_SPSC) {
        r->peeked = 0;
        ipc__mp_free(r, r->phead);
        return 0;
    }
    ipc__ring_consume(r);
    return 0;
}

IPC_API ssize_t ipc_ring_recv(ipc_ring *r, void *buf, size_t cap, int64_t timeout_ns) {
    uint64_t was;
    ssize_t n;
    int rc = ipc__ring_usable(r, IPC_CONSUMER);
    if (rc) return rc;
    if (!buf || cap == 0) return -EINVAL;
    if (r->kind == IPC_RING_BROADCAST) return ipc__bc_read(r, buf, cap, NULL, timeout_ns);
    if (r->kind != IPC_RING_SPSC) {
        uint64_t pos = r->phead;
        if (r->peeked) { /* the message peeked before is the one to receive */
            if (r->peeked > cap) return -EMSGSIZE;
            n = (ssize_t)r->peeked;
        } else if ((n = ipc__mp_take(r, cap, timeout_ns, &pos)) < 0) {
            return n;
        }
        memcpy(buf, ipc__mp_slot(r, pos) + 16, (size_t)n);
        r->peeked = 0;
        ipc__mp_free(r, pos);
        return n;
    }
    was = r->peeked;
    if ((n = ipc__ring_next(r, timeout_ns)) < 0) return n;
    if ((size_t)n > cap) { /* the message stays, and is no more peeked than it was */
        r->peeked = was;
        return -EMSGSIZE;
    }
    memcpy(buf, ipc__ring_word(r, r->phead) + 1, (size_t)n);
    ipc__ring_consume(r);
    return n;
}

/* ---- ipc_ring_pollfd: a thread that waits for the handle and rings an eventfd ---- */

typedef struct ipc__poller {
    pthread_t thread;
    ipc_ring view;  /* the handle's fixed fields (mapping, kind, role, lock fd, entry) */
    uint32_t armed; /* private futex: 0 idle, 1 watching, 2 leave */
    uint64_t snap;  /* the handle's head (consumer) or tail (producer) when armed */
    uint64_t need;  /* SPSC producer: bytes the call that armed it needed */
    int efd;
} ipc__poller;

/* Would a call of the role return at once? Shared memory and the snapshot only: the
   handle itself belongs to the caller's thread. */
static int ipc__poll_ready(ipc__poller *p) {
    ipc_ring *r = &p->view;
    ipc__ring_hdr *h = IPC__HDR(r);
    uint64_t at = __atomic_load_n(&p->snap, __ATOMIC_ACQUIRE);
    if (r->role == IPC_CONSUMER) {
        if (r->kind == IPC_RING_SPSC || r->kind == IPC_RING_BROADCAST) {
            if (r->kind == IPC_RING_SPSC
                    ? __atomic_load_n(ipc__ring_word(r, at), __ATOMIC_ACQUIRE) != 0
                    : ipc__mp_seq(r, at) == at + 1 || (r->phead = at, ipc__bc_has_data(r, 0)))
                return 1;
            return __atomic_load_n(&h->prod.state, __ATOMIC_ACQUIRE) == IPC__ROLE_CLOSED;
        }
        return ipc__mp_has_data(r, 0) || (__atomic_load_n(&h->prod.state, __ATOMIC_ACQUIRE) == 0 &&
                                          __atomic_load_n(&h->prod.claims, __ATOMIC_ACQUIRE));
    }
    if (r->kind == IPC_RING_SPSC)
        return r->cap - (at - __atomic_load_n(&h->head, __ATOMIC_ACQUIRE)) >=
                   __atomic_load_n(&p->need, __ATOMIC_ACQUIRE) ||
               __atomic_load_n(&h->cons.state, __ATOMIC_ACQUIRE) == IPC__ROLE_CLOSED;
    if (r->kind == IPC_RING_BROADCAST)
        return (r->flags & IPC_RING_OVERWRITE) || at - ipc__bc_min_at(r, at, 1) < r->nslots;
    return ipc__mp_has_room(r, 0) || (__atomic_load_n(&h->cons.state, __ATOMIC_ACQUIRE) == 0 &&
                                      __atomic_load_n(&h->cons.claims, __ATOMIC_ACQUIRE));
}

/* After a slice without news: is the peer dead, or a slot held by the dead, so that a
   call would return (-EPIPE) or get past it? */
static int ipc__poll_stuck(ipc__poller *p) {
    ipc_ring *r = &p->view;
    ipc__ring_hdr *h = IPC__HDR(r);
    int peer = r->role == IPC_PRODUCER ? IPC_CONSUMER : IPC_PRODUCER;
    uint64_t head, tail;
    if (r->kind == IPC_RING_SPSC || r->kind == IPC_RING_BROADCAST) {
        if (r->kind == IPC_RING_BROADCAST && peer == IPC_CONSUMER) return 0;
        return __atomic_load_n(&ipc__ring_side_of(r, peer)->state, __ATOMIC_ACQUIRE) ==
                   IPC__ROLE_ATTACHED &&
               ipc__ring_lock(r->lockfd, F_OFD_GETLK, F_WRLCK, peer) == 0;
    }
    if (__atomic_load_n(&ipc__ring_side_of(r, peer)->claims, __ATOMIC_ACQUIRE) &&
        !ipc__mp_live(r, peer, IPC__MP_IDLE))
        return 1;
    head = __atomic_load_n(&h->head, __ATOMIC_ACQUIRE);
    tail = __atomic_load_n(&h->tail, __ATOMIC_ACQUIRE);
    /* a slot held up by someone no longer alive: the call will pass it */
    return r->role == IPC_CONSUMER ? ipc__mp_seq(r, head) == head && tail - head - 1 < r->nslots &&
                                         !ipc__mp_live(r, IPC_PRODUCER, head)
                                   : (ipc__mp_seq(r, tail) & ~IPC__MP_FLAGS) != tail &&
                                         head - (tail - r->nslots) - 1 < r->nslots &&
                                         !ipc__mp_live(r, IPC_CONSUMER, tail - r->nslots);
}

static void *ipc__poll_thread(void *arg) {
    ipc__poller *p = (ipc__poller *)arg;
    ipc__ring_side *side = ipc__ring_side_of(&p->view, p->view.role);
    for (;;) { /* every signal is blocked here: they are for the application's threads */
        uint32_t a = __atomic_load_n(&p->armed, __ATOMIC_ACQUIRE);
        int64_t check_at, now;
        int phase, mp = p->view.kind == IPC_RING_MPMC || p->view.kind == IPC_RING_MPSC;
        if (a == 2) break;
        if (a == 0) {
            syscall(SYS_futex, &p->armed, IPC__FUTEX_WAIT_PRIVATE, 0u, NULL, NULL, 0);
            continue;
        }
        /* the sleeper's half of the ring's wake-up protocol, as in ipc__ring_wait; and as
           there, look for the dead every 20 ms of waiting, however often we are woken (a
           hole's producer-peers keep waking us while it holds the head) */
        check_at = ipc_time_now() + IPC__RING_FIRST_SLICE;
        for (phase = 0; !ipc__poll_ready(p); phase++) {
            uint32_t seq = __atomic_load_n(&side->futex, __ATOMIC_ACQUIRE);
            int64_t slice = phase == 0 ? IPC__RING_FIRST_SLICE : IPC__RING_SLICE, until;
            __atomic_fetch_add(&side->waiting, 1u, __ATOMIC_RELEASE);
            if (phase == 0)
                __atomic_thread_fence(__ATOMIC_SEQ_CST);
            else if (ipc__ring_heavy_barrier())
                slice = 1000000;
            if (ipc__poll_ready(p) || __atomic_load_n(&p->armed, __ATOMIC_ACQUIRE) != 1) break;
            until = ipc_time_now() + slice;
            ipc_futex_wait_until(&side->futex, seq, until);
            if (__atomic_load_n(&p->armed, __ATOMIC_ACQUIRE) != 1) break;
            now = ipc_time_now();
            if ((phase > 0 && now >= until) || (mp && now >= check_at)) {
                if (ipc__poll_stuck(p)) break;
                check_at = now + 20000000;
            }
        }
        a = 1;
        if (__atomic_compare_exchange_n(&p->armed, &a, 0u, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            uint64_t one = 1;
            while (write(p->efd, &one, sizeof one) < 0 && errno == EINTR) {
            }
        }
    }
    return NULL;
}

/* A call of the handle found nothing: take the doorbell's ring back, watch again. */
static void ipc__poll_arm(ipc_ring *r, uint64_t need) {
    ipc__poller *p = (ipc__poller *)r->poller;
    uint64_t junk;
    while (read(p->efd, &junk, sizeof junk) < 0 && errno == EINTR) {
    }
    __atomic_store_n(&p->need, need < 24 ? 24 : need, __ATOMIC_RELEASE);
    __atomic_store_n(&p->snap, r->role == IPC_CONSUMER ? r->phead : r->ptail, __ATOMIC_RELEASE);
    if (__atomic_exchange_n(&p->armed, 1u, __ATOMIC_ACQ_REL) == 0)
        syscall(SYS_futex, &p->armed, IPC__FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

IPC_API int ipc_ring_pollfd(ipc_ring *r) {
    ipc__poller *p;
    int rc = ipc__ring_usable(r, r ? r->role : 0);
    if (rc) return rc;
    if (r->role != IPC_PRODUCER && r->role != IPC_CONSUMER) return -EINVAL;
    if (r->poller) return ((ipc__poller *)r->poller)->efd;
    if (!(p = (ipc__poller *)calloc(1, sizeof *p))) return -ENOMEM;
    p->view = *r;
    p->view.poller = NULL;
    /* Readable at first: the application's first call tells whether there is anything,
       and its -EAGAIN arms the thread. */
    if ((p->efd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        rc = ipc__neg_errno();
        free(p);
        return rc;
    }
    {
        sigset_t all, old; /* the thread starts with every signal blocked */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        rc = pthread_create(&p->thread, NULL, ipc__poll_thread, p);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (rc != 0) {
        close(p->efd);
        free(p);
        return -rc;
    }
    r->poller = p;
    return p->efd;
}

/* Stop the thread (not in a forked child: it has none) and close the doorbell. */
static void ipc__poll_stop(ipc_ring *r, int forked) {
    ipc__poller *p = (ipc__poller *)r->poller;
    if (!p) return;
    if (!forked) {
        __atomic_store_n(&p->armed, 2u, __ATOMIC_RELEASE);
        syscall(SYS_futex, &p->armed, IPC__FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        ipc__ring_wake_all(ipc__ring_side_of(r, r->role)); /* if it sleeps on the ring */
        pthread_join(p->thread, NULL);
    }
    close(p->efd);
    free(p);
    r->poller = NULL;
}

IPC_API int ipc_ring_close(ipc_ring *r) {
    ipc__ring_hdr *h;
    if (!r) return -EINVAL;
    if (!r->base) return -EBADF;
    h = IPC__HDR(r);
    IPC__KILL("ring.close.begin");
    ipc__poll_stop(r, r->gen != __atomic_load_n(&ipc__fork_gen, __ATOMIC_RELAXED));
    /* A forked copy holds no role: its lock fd was closed at fork; just unmap. */
    if (r->gen == __atomic_load_n(&ipc__fork_gen, __ATOMIC_RELAXED) &&
        r->kind == IPC_RING_BROADCAST) {
        if (r->role & IPC_PRODUCER) {
            if (r->reserved) ipc__bc_publish(r, 0); /* cancelled */
            __atomic_store_n(&h->prod.state, IPC__ROLE_CLOSED, __ATOMIC_RELEASE);
            ipc__ring_wake_all(&h->cons);
        } else {
            __atomic_store_n(&ipc__mp_reg(r, r->reg)->role, 0u, __ATOMIC_RELEASE);
            __atomic_fetch_sub(&h->cons.state, 1u, __ATOMIC_RELEASE);
            ipc__ring_wake_all(&h->prod); /* it may wait for us */
        }
    } else if (r->gen == __atomic_load_n(&ipc__fork_gen, __ATOMIC_RELAXED) &&
               r->kind != IPC_RING_SPSC) {
        ipc__mp_ent *e = ipc__mp_reg(r, r->reg);
        if (r->reserved) ipc__mp_publish(r, r->ptail, 0); /* cancelled: consumers pass it */
        if (r->peeked) ipc__mp_free(r, r->phead);         /* it was ours: consumed */
        r->reserved = r->peeked = 0;
        __atomic_store_n(&e->role, 0u, __ATOMIC_RELEASE);
        if (r->role & IPC_PRODUCER) __atomic_fetch_sub(&h->prod.state, 1u, __ATOMIC_RELEASE);
        if (r->role & IPC_CONSUMER) __atomic_fetch_sub(&h->cons.state, 1u, __ATOMIC_RELEASE);
        ipc__ring_wake_all(&h->cons); /* so that they look whether it was the last */
        ipc__ring_wake_all(&h->prod);
    } else if (r->gen == __atomic_load_n(&ipc__fork_gen, __ATOMIC_RELAXED)) {
        if (r->role & IPC_PRODUCER) {
            __atomic_store_n(&h->prod.state, IPC__ROLE_CLOSED, __ATOMIC_RELEASE);
            ipc__ring_wake_all(&h->cons);
        }
        if (r->role & IPC_CONSUMER) {
            __atomic_store_n(&h->cons.state, IPC__ROLE_CLOSED, __ATOMIC_RELEASE);
            ipc__ring_wake_all(&h->prod);
        }
    } else {
        r->lockfd = -1; /* closed in the child at fork; the number may be reused */
    }
    IPC__KILL("ring.close.end");
    ipc__ring_undo(r);
    return 0;
}

/* ==== 7. Pipes, FIFOs and child processes ==== >>pipe */

#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#define F_GETPIPE_SZ 1032
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

IPC_API ssize_t ipc_pipe_capacity(int fd) {
    int r = fcntl(fd, F_GETPIPE_SZ);
    return r < 0 ? ipc__neg_errno() : r;
}

IPC_API ssize_t ipc_pipe_set_capacity(int fd, size_t size) {
    int r;
    if (size == 0 || size > INT_MAX) return -EINVAL;
    r = fcntl(fd, F_SETPIPE_SZ, (int)size);
    return r < 0 ? ipc__neg_errno() : r;
}

static int ipc__pipe_make(int fds[2], const ipc_pipe_opts *o) {
    unsigned fl = o ? o->flags : 0;
    int oflags = O_CLOEXEC, r;
    if (fl & ~7u) return -EINVAL;
    if (fl & IPC_PIPE_PACKET) {
#ifdef O_DIRECT
        oflags |= O_DIRECT;
#else
        return -EINVAL;
#endif
    }
    if (pipe2(fds, oflags) != 0) return ipc__neg_errno();
    r = 0;
    if (fl & IPC_PIPE_NONBLOCK_READ) r = ipc_fd_set_nonblock(fds[0], 1);
    if (r == 0 && (fl & IPC_PIPE_NONBLOCK_WRITE)) r = ipc_fd_set_nonblock(fds[1], 1);
    if (r == 0 && o && o->capacity) {
        ssize_t c = ipc_pipe_set_capacity(fds[1], o->capacity);
        r = c < 0 ? (int)c : 0;
    }
    if (r < 0) {
        close(fds[0]);
        close(fds[1]);
    }
    return r;
}

IPC_API int ipc_pipe_open(ipc_pipe *p, const ipc_pipe_opts *opts) {
    int fds[2], r;
    if (!p) return -EINVAL;
    p->rfd = p->wfd = -1;
    if ((r = ipc__pipe_make(fds, opts)) < 0) return r;
    p->rfd = fds[0];
    p->wfd = fds[1];
    return 0;
}

IPC_API int ipc_pipe_duplex(ipc_pipe end[2], const ipc_pipe_opts *opts) {
    int a[2], b[2], r;
    if (!end) return -EINVAL;
    end[0].rfd = end[0].wfd = end[1].rfd = end[1].wfd = -1;
    if ((r = ipc__pipe_make(a, opts)) < 0) return r;
    if ((r = ipc__pipe_make(b, opts)) < 0) {
        close(a[0]);
        close(a[1]);
        return r;
    }
    end[0].rfd = a[0]; /* end[1] writes a, end[0] reads it */
    end[1].wfd = a[1];
    end[1].rfd = b[0];
    end[0].wfd = b[1];
    return 0;
}

IPC_API int ipc_pipe_close(ipc_pipe *p) {
    int r, w;
    if (!p) return -EINVAL;
    r = ipc_fd_close(&p->rfd);
    w = ipc_fd_close(&p->wfd);
    return r < 0 ? r : w;
}

/* FIFOs. mkfifo obeys the umask, and fixing the mode afterwards would leave a window in
   which the FIFO exists with other permissions. So it is made under a temporary name
   beside the target, given its exact mode, and then linked in: exclusive and complete. */
IPC_API int ipc_fifo_create(const char *path, unsigned mode) {
    static unsigned seq;
    char tmp[PATH_MAX];
    const char *slash;
    size_t dir;
    int r;
    if (!path || !*path) return -EINVAL;
    if (mode == 0) mode = 0600;
    if (mode & ~0777u) return -EINVAL;
    if (strlen(path) >= PATH_MAX) return -ENAMETOOLONG;
    slash = strrchr(path, '/');
    dir = slash ? (size_t)(slash - path) + 1 : 0;
    if (dir + 40 >= PATH_MAX) return -ENAMETOOLONG;
    memcpy(tmp, path, dir);
    snprintf(tmp + dir, sizeof tmp - dir, ".ipc-fifo-%ld-%u-%llx", (long)getpid(),
             __atomic_add_fetch(&seq, 1u, __ATOMIC_RELAXED), (unsigned long long)ipc_time_now());
    if (mkfifo(tmp, mode) != 0) return ipc__neg_errno();
    r = 0;
    if (chmod(tmp, mode) != 0 || link(tmp, path) != 0) r = ipc__neg_errno();
    unlink(tmp);
    return r;
}

/* lstat first: a symlink is -ELOOP and anything but a FIFO -EINVAL, before any open (which
   could have side effects on a device). The open re-checks what it got. */
static int ipc__fifo_check(const char *path) {
    struct stat st;
    if (!path || !*path) return -EINVAL;
    if (lstat(path, &st) != 0) return ipc__neg_errno();
    if (S_ISLNK(st.st_mode)) return -ELOOP;
    return S_ISFIFO(st.st_mode) ? 0 : -EINVAL;
}

static int ipc__fifo_opened(int fd, int flags) {
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) != 0)
        r = ipc__neg_errno();
    else if (!S_ISFIFO(st.st_mode))
        r = -EINVAL; /* replaced since the lstat */
    else if (!(flags & IPC_FIFO_NONBLOCK))
        r = ipc_fd_set_nonblock(fd, 0);
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

static int ipc__fifo_open(const char *path, int flags, int64_t dl) {
    int64_t step = 50000;
    int dir = flags & (IPC_FIFO_READ | IPC_FIFO_WRITE), r, fd;
    if (dl < IPC_FOREVER || (flags & ~7) || (dir != IPC_FIFO_READ && dir != IPC_FIFO_WRITE))
        return -EINVAL;
    if ((r = ipc__fifo_check(path)) < 0) return r;
    if (dir == IPC_FIFO_READ) { /* a non-blocking open for reading never waits */
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
        return fd < 0 ? ipc__neg_errno() : ipc__fifo_opened(fd, flags);
    }
    for (;;) { /* for writing it fails with ENXIO until a reader is there */
        fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) return ipc__fifo_opened(fd, flags);
        if (errno == EINTR) continue;
        if (errno != ENXIO) return ipc__neg_errno();
        if ((r = ipc__backoff(&step, 5000000, dl)) < 0) return r;
    }
}

IPC_API int ipc_fifo_open(const char *path, int flags, int64_t timeout_ns) {
    return ipc__fifo_open(path, flags, ipc_deadline_make(timeout_ns));
}

IPC_API int ipc_fifo_unlink(const char *path) {
    int r = ipc__fifo_check(path);
    if (r == -ELOOP) r = -EINVAL;
    if (r < 0) return r;
    return unlink(path) != 0 ? ipc__neg_errno() : 0;
}

/* "<path>.a2b" (dir 0) or "<path>.b2a" (dir 1). */
static int ipc__fifo_pair_name(const char *path, int dir, char *out) {
    size_t n;
    if (!path || !*path) return -EINVAL;
    n = strlen(path);
    if (n > PATH_MAX - 5) return -ENAMETOOLONG;
    memcpy(out, path, n);
    memcpy(out + n, dir ? ".b2a" : ".a2b", 5);
    return 0;
}

IPC_API int ipc_fifo_duplex_create(const char *path, unsigned mode) {
    char a[PATH_MAX], b[PATH_MAX];
    int r;
    if ((r = ipc__fifo_pair_name(path, 0, a)) < 0 || (r = ipc__fifo_pair_name(path, 1, b)) < 0)
        return r;
    if ((r = ipc_fifo_create(a, mode)) < 0) return r;
    if ((r = ipc_fifo_create(b, mode)) < 0) unlink(a);
    return r;
}

IPC_API int ipc_fifo_duplex_open(ipc_pipe *end, const char *path, int side, int64_t timeout_ns) {
    char rd[PATH_MAX], wr[PATH_MAX];
    int64_t dl = ipc_deadline_make(timeout_ns);
    int r;
    if (!end) return -EINVAL;
    end->rfd = end->wfd = -1;
    if (dl < IPC_FOREVER || (side != IPC_FIFO_SIDE_A && side != IPC_FIFO_SIDE_B)) return -EINVAL;
    if ((r = ipc__fifo_pair_name(path, side == IPC_FIFO_SIDE_A, rd)) < 0 ||
        (r = ipc__fifo_pair_name(path, side == IPC_FIFO_SIDE_B, wr)) < 0)
        return r;
    /* Read side first (never waits), so the peer's open for writing can finish. */
    if ((r = ipc__fifo_open(rd, IPC_FIFO_READ, 0)) < 0) return r;
    end->rfd = r;
    if ((r = ipc__fifo_open(wr, IPC_FIFO_WRITE, dl)) < 0) {
        ipc_fd_close(&end->rfd);
        return r;
    }
    end->wfd = r;
    return 0;
}

IPC_API int ipc_fifo_duplex_unlink(const char *path) {
    char a[PATH_MAX], b[PATH_MAX];
    int r, r2;
    if ((r = ipc__fifo_pair_name(path, 0, a)) < 0 || (r = ipc__fifo_pair_name(path, 1, b)) < 0)
        return r;
    r = ipc_fifo_unlink(a);
    r2 = ipc_fifo_unlink(b);
    return r < 0 ? r : r2;
}

/* Child processes. */

/* Move an fd above 2, so dup2 onto 0..2 in the child can never clobber another one. */
static int ipc__fd_above2(int *fd) {
    int n;
    if (*fd > 2) return 0;
    n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (n < 0) return ipc__neg_errno();
    close(*fd);
    *fd = n;
    return 0;
}

/* Every descriptor above 2 without close-on-exec gets a close action: the child inherits
   nothing by accident. glibc 2.34+ does this in one action. */
static int ipc__spawn_close_rest(posix_spawn_file_actions_t *fa) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    return -posix_spawn_file_actions_addclosefrom_np(fa, 3);
#else
    char buf[1024];
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;
    long n;
    if (dfd < 0) return 0; /* no /proc: only close-on-exec protects the child */
    while (r == 0 && (n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
        long off = 0;
        while (off < n && r == 0) {
            unsigned short reclen;
            const char *name = buf + off + 19; /* d_ino 8, d_off 8, d_reclen 2, d_type 1 */
            long fd;
            char *end;
            memcpy(&reclen, buf + off + 16, sizeof reclen);
            off += reclen;
            fd = strtol(name, &end, 10);
            if (*end || end == name || fd < 3 || fd == dfd || fd > INT_MAX) continue;
            if (fcntl((int)fd, F_GETFD) == 0) r = -posix_spawn_file_actions_addclose(fa, (int)fd);
        }
    }
    close(dfd);
    return r;
#endif
}

static void ipc__proc_reset(ipc_proc *p) {
    p->pid = 0;
    p->pidfd = p->in = p->out = p->err = -1;
    p->status = 0;
}

#ifdef __cplusplus
extern "C" char **environ;
#else
extern char **environ;
#endif

/* tty: the slave of a pty, to become the child's controlling terminal and stdio in a
   new session (opening a terminal without O_NOCTTY does that for a session leader). */
static int ipc__spawn(ipc_proc *p, const char *file, char *const argv[], const ipc_spawn_opts *opts,
                      const char *tty) {
    static const ipc_spawn_opts defaults = {0, 0, 0, NULL, 0};
    const ipc_spawn_opts *o = opts ? opts : &defaults;
    int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}}, how[3], i, r = 0;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t mask;
    pid_t pid = 0;
    int sflags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (!p) return -EINVAL;
    ipc__proc_reset(p);
    how[0] = tty ? IPC_STDIO_INHERIT : o->in;
    how[1] = tty ? IPC_STDIO_INHERIT : o->out;
    how[2] = tty ? IPC_STDIO_INHERIT : o->err;
    if (!file || !argv || !argv[0] || (o->flags & ~7u)) return -EINVAL;
    for (i = 0; i < 3; i++)
        if (how[i] < 0 || how[i] > (i == 2 ? IPC_STDIO_STDOUT : IPC_STDIO_NULL)) return -EINVAL;
    for (i = 0; i < 3 && r == 0; i++) {
        if (how[i] != IPC_STDIO_PIPE) continue;
        if (pipe2(fds[i], O_CLOEXEC) != 0)
            r = ipc__neg_errno();
        else if ((r = ipc__fd_above2(&fds[i][0])) == 0)
            r = ipc__fd_above2(&fds[i][1]);
    }
    /* A path is checked first: where posix_spawn runs as a plain fork (qemu-user, old C
       libraries), the exec error would otherwise surface only as exit status 127. */
    if (r == 0 && strchr(file, '/') && faccessat(AT_FDCWD, file, X_OK, AT_EACCESS) != 0)
        r = ipc__neg_errno();
    if (r < 0) goto out_fds;
    if ((r = -posix_spawn_file_actions_init(&fa)) < 0) goto out_fds;
    if ((r = -posix_spawnattr_init(&at)) < 0) goto out_fa;
    for (i = 0; i < 3 && r == 0; i++) {
        if (how[i] == IPC_STDIO_PIPE) /* the child's end: stdin reads, the others write */
            r = -posix_spawn_file_actions_adddup2(&fa, fds[i][i == 0 ? 0 : 1], i);
        else if (how[i] == IPC_STDIO_NULL)
            r = -posix_spawn_file_actions_addopen(&fa, i, "/dev/null", i ? O_WRONLY : O_RDONLY, 0);
        else if (how[i] == IPC_STDIO_STDOUT) /* after fd 1 is in place, whatever it is */
            r = -posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    if (tty) {
#ifdef POSIX_SPAWN_SETSID
        sflags |= POSIX_SPAWN_SETSID;
        if (r == 0) r = -posix_spawn_file_actions_addopen(&fa, 0, tty, O_RDWR, 0);
        if (r == 0) r = -posix_spawn_file_actions_adddup2(&fa, 0, 1);
        if (r == 0) r = -posix_spawn_file_actions_adddup2(&fa, 0, 2);
#else
        r = -ENOSYS;
#endif
    }
    if (r == 0) r = ipc__spawn_close_rest(&fa);
    /* Default dispositions and an empty mask: a parent that ignores SIGPIPE or blocks
       signals must not pass that on to, say, a shell pipeline. */
    sigemptyset(&mask);
    if (r == 0) r = -posix_spawnattr_setsigmask(&at, &mask);
    sigfillset(&mask);
    sigdelset(&mask, SIGKILL);
    sigdelset(&mask, SIGSTOP);
    if (r == 0) r = -posix_spawnattr_setsigdefault(&at, &mask);
    if ((o->flags & IPC_SPAWN_PGROUP) && !tty) { /* a new session is a new group already */
        sflags |= POSIX_SPAWN_SETPGROUP;
        if (r == 0) r = -posix_spawnattr_setpgroup(&at, 0);
    }
    if (r == 0) r = -posix_spawnattr_setflags(&at, (short)sflags);
    if (r == 0) {
        char *const *env = o->envp ? o->envp : environ;
        r = (o->flags & IPC_SPAWN_PATH) ? -posix_spawnp(&pid, file, &fa, &at, argv, env)
                                        : -posix_spawn(&pid, file, &fa, &at, argv, env);
    }
    posix_spawnattr_destroy(&at);
out_fa:
    posix_spawn_file_actions_destroy(&fa);
out_fds:
    for (i = 0; i < 3; i++) { /* the child's ends always go; ours too on failure */
        int mine = i == 0 ? 1 : 0;
        if (fds[i][1 - mine] >= 0) close(fds[i][1 - mine]);
        if (r < 0 && fds[i][mine] >= 0) close(fds[i][mine]);
    }
    if (r < 0) return r;
    p->pid = pid;
    p->in = fds[0][1];
    p->out = fds[1][0];
    p->err = fds[2][0];
    if (o->flags & IPC_SPAWN_NONBLOCK)
        for (i = 0; i < 3; i++)
            if (fds[i][i == 0 ? 1 : 0] >= 0) ipc_fd_set_nonblock(fds[i][i == 0 ? 1 : 0], 1);
    /* Not yet reaped, so the pid cannot have been reused: the pidfd is the child's. */
    p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (p->pidfd < 0) p->pidfd = -1;
    return 0;
}

IPC_API int ipc_proc_spawn(ipc_proc *p, const char *file, char *const argv[],
                           const ipc_spawn_opts *opts) {
    return ipc__spawn(p, file, argv, opts, NULL);
}

IPC_API int ipc_proc_wait(ipc_proc *p, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns), step = 50000;
    int st, r;
    if (!p || dl < IPC_FOREVER) return -EINVAL;
    if (p->pid <= 0) return -ECHILD;
    for (;;) {
        pid_t w = waitpid(p->pid, &st, WNOHANG);
        if (w == p->pid) {
            p->status = st;
            p->pid = 0;
            ipc_fd_close(&p->pidfd);
            return st;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return ipc__neg_errno();
        if (p->pidfd >= 0) { /* readable once the child has exited */
            r = ipc__poll_until(p->pidfd, POLLIN, dl);
            if (r < 0 && ipc_deadline_left(dl) == 0) return ipc__expired(dl);
            if (r < 0) return r;
        } else if ((r = ipc__backoff(&step, 10000000, dl)) < 0) {
            return r;
        }
    }
}

IPC_API int ipc_proc_kill(ipc_proc *p, int sig) {
    if (!p) return -EINVAL;
    if (p->pid <= 0) return -ESRCH;
    if (p->pidfd >= 0) {
        if (syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) == 0) return 0;
        if (errno != ENOSYS) return ipc__neg_errno();
    }
    return kill(p->pid, sig) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_proc_close(ipc_proc *p) {
    int r = 0, i, e;
    int *fds[4];
    if (!p) return -EINVAL;
    fds[0] = &p->in;
    fds[1] = &p->out;
    fds[2] = &p->err;
    fds[3] = &p->pidfd;
    for (i = 0; i < 4; i++)
        if ((e = ipc_fd_close(fds[i])) < 0 && r == 0) r = e;
    return r;
}

/* ==== 8. Message framing over byte streams ==== >>frame */

#define IPC__FRAME_MAX (16u << 20)

IPC_API int ipc_frame_init(ipc_frame *f, int fd, const ipc_frame_opts *opts) {
    if (!f) return -EINVAL;
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (fd < 0) return -EBADF;
    if (opts && (opts->flags & ~(unsigned)IPC_FRAME_ATOMIC)) return -EINVAL;
    f->fd = fd;
    f->flags = opts ? opts->flags : 0;
    f->max_msg = (opts && opts->max_msg) ? opts->max_msg : IPC__FRAME_MAX;
    if (sizeof(size_t) == 4 && f->max_msg > (uint32_t)((size_t)SSIZE_MAX - 4))
        f->max_msg = (uint32_t)((size_t)SSIZE_MAX - 4); /* 32-bit: lengths must fit ssize_t */
    return 0;
}

IPC_API ssize_t ipc_frame_send(ipc_frame *f, const void *msg, size_t len, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    unsigned char hdr[4];
    struct iovec v[2];
    size_t total = len + 4, done = 0, skip;
    ssize_t r;
    int n = 0;
    if (!f || (!msg && len) || dl < IPC_FOREVER) return -EINVAL;
    if (f->fd < 0) return -EBADF;
    if (len > f->max_msg) return -EMSGSIZE;
    if ((f->flags & IPC_FRAME_ATOMIC) && total > PIPE_BUF) return -EMSGSIZE;
    if (f->tx_done && (len != f->tx_len || msg != f->tx_msg))
        return -EINVAL; /* finish the frame in progress first */
    f->tx_len = len;
    f->tx_msg = msg;
    hdr[0] = (unsigned char)len;
    hdr[1] = (unsigned char)(len >> 8);
    hdr[2] = (unsigned char)(len >> 16);
    hdr[3] = (unsigned char)(len >> 24);
    /* header and payload in one gather write: one system call, one TCP segment, no copy */
    skip = f->tx_done;
    if (skip < 4) {
        v[n].iov_base = hdr + skip;
        v[n++].iov_len = 4 - skip;
        skip = 0;
    } else {
        skip -= 4;
    }
    if (len > skip) {
        v[n].iov_base = (char *)(uintptr_t)msg + skip;
        v[n++].iov_len = len - skip;
    }
    r = ipc__io_run(f->fd, v, n, 1, 1, dl, &done, &f->tx_mode);
    f->tx_done += done;
    if (r < 0) {
        if (r == -EPIPE || f->tx_done == 0) f->tx_done = 0; /* nothing to resume */
        return r;
    }
    f->tx_done = 0;
    return (ssize_t)len;
}

IPC_API ssize_t ipc_frame_recv(ipc_frame *f, void *buf, size_t cap, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    size_t done = 0;
    ssize_t r;
    if (!f || (!buf && cap) || dl < IPC_FOREVER) return -EINVAL;
    if (f->fd < 0) return -EBADF;
    if (f->rx_broken) return -EPROTO;
    if (f->rx_done < 4) {
        struct iovec v;
        v.iov_base = f->rx_hdr + f->rx_done;
        v.iov_len = 4 - f->rx_done;
        r = ipc__io_run(f->fd, &v, 1, 0, 1, dl, &done, &f->rx_mode);
        f->rx_done += done;
        if (r == -EPIPE && f->rx_done > 0) r = -EPROTO; /* the stream ended inside a header */
        if (r < 0) {
            if (r == -EPROTO) f->rx_broken = 1;
            return r;
        }
        f->rx_len = (uint32_t)f->rx_hdr[0] | (uint32_t)f->rx_hdr[1] << 8 |
                    (uint32_t)f->rx_hdr[2] << 16 | (uint32_t)f->rx_hdr[3] << 24;
        if (f->rx_len > f->max_msg) { /* garbage or hostile: there is no way back in sync */
            f->rx_broken = 1;
            return -EPROTO;
        }
    }
    if (f->rx_len > cap) return -EMSGSIZE;
    if (f->rx_done - 4 < f->rx_len) {
        struct iovec v;
        v.iov_base = (char *)buf + (f->rx_done - 4);
        v.iov_len = f->rx_len - (f->rx_done - 4);
        r = ipc__io_run(f->fd, &v, 1, 0, 1, dl, &done, &f->rx_mode);
        f->rx_done += done;
        if (r == -EPIPE) {
            f->rx_broken = 1;
            return -EPROTO;
        }
        if (r < 0) return r;
    }
    f->rx_done = 0;
    return (ssize_t)f->rx_len;
}

IPC_API ssize_t ipc_frame_pending(const ipc_frame *f) {
    if (!f) return -EINVAL;
    return f->rx_done >= 4 && !f->rx_broken ? (ssize_t)f->rx_len : -ENOMSG;
}

/* ==== 9. POSIX message queues ==== >>mq */

/* "/name" for mq_open from the shared-memory name rules. out: NAME_MAX + 2 bytes. */
static int ipc__mq_name(const char *name, char *out) {
    char path[IPC__SHM_PATHLEN];
    int r = ipc__shm_path(name, path);
    if (r < 0) return r;
    strcpy(out, path + sizeof(IPC__SHM_DIR) - 2);
    return 0;
}

/* A number from a /proc/sys file, or dflt when it cannot be read. */
static long ipc__sysctl_long(const char *path, long dflt) {
    char buf[32];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dflt;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return dflt;
    buf[n] = 0;
    return strtol(buf, NULL, 10);
}

#define IPC__MQ_SYSCTL "/proc/sys/fs/mqueue/"

IPC_API int ipc_mq_create(const char *name, const ipc_mq_opts *opts) {
    char qn[NAME_MAX + 2];
    struct mq_attr a;
    unsigned mode = (opts && opts->mode) ? opts->mode : 0600u;
    int r, fd, fl = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC;
    if ((r = ipc__mq_name(name, qn)) < 0) return r;
    if (mode & ~0777u) return -EINVAL;
    memset(&a, 0, sizeof a);
    if (opts) {
        if (opts->max_msgs < 0 || opts->msg_size < 0 || (opts->flags & ~(unsigned)IPC_MQ_NONBLOCK))
            return -EINVAL;
        if (opts->flags & IPC_MQ_NONBLOCK) fl |= O_NONBLOCK;
        a.mq_maxmsg =
            opts->max_msgs ? opts->max_msgs : ipc__sysctl_long(IPC__MQ_SYSCTL "msg_default", 10);
        a.mq_msgsize = opts->msg_size ? opts->msg_size
                                      : ipc__sysctl_long(IPC__MQ_SYSCTL "msgsize_default", 8192);
    }
    fd = (int)mq_open(qn, fl, (mode_t)mode,
                      (opts && (opts->max_msgs || opts->msg_size)) ? &a : NULL);
    if (fd < 0) {
        int e = errno;
        if (e == EINVAL && opts) { /* the limits say more than EINVAL does */
            if (a.mq_msgsize > ipc__sysctl_long(IPC__MQ_SYSCTL "msgsize_max", LONG_MAX))
                return -EMSGSIZE;
            if (a.mq_maxmsg > ipc__sysctl_long(IPC__MQ_SYSCTL "msg_max", LONG_MAX)) return -ERANGE;
        }
        if (e == EMFILE) { /* out of fds, or over RLIMIT_MSGQUEUE? A spare fd tells. */
            int t = (int)syscall(SYS_eventfd2, 0, O_CLOEXEC);
            if (t >= 0) {
                close(t);
                return -EDQUOT;
            }
        }
        return -e;
    }
    /* mq_open applies the umask; narrowing is all it can do, so the queue was never more
       open than asked while we fix it. */
    if (fchmod(fd, (mode_t)mode) != 0) {
        r = ipc__neg_errno();
        close(fd);
        mq_unlink(qn);
        return r;
    }
    return fd;
}

IPC_API int ipc_mq_open(const char *name, int flags) {
    char qn[NAME_MAX + 2];
    int r, fd, fl;
    switch (flags & (IPC_MQ_READ | IPC_MQ_WRITE)) {
    case IPC_MQ_READ: fl = O_RDONLY; break;
    case IPC_MQ_WRITE: fl = O_WRONLY; break;
    case IPC_MQ_READ | IPC_MQ_WRITE: fl = O_RDWR; break;
    default: return -EINVAL;
    }
    if (flags & ~7) return -EINVAL;
    if (flags & IPC_MQ_NONBLOCK) fl |= O_NONBLOCK;
    if ((r = ipc__mq_name(name, qn)) < 0) return r;
    fd = (int)mq_open(qn, fl | O_CLOEXEC);
    return fd < 0 ? ipc__neg_errno() : fd;
}

IPC_API int ipc_mq_close(int mq) {
    return mq_close((mqd_t)mq) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_mq_unlink(const char *name) {
    char qn[NAME_MAX + 2];
    int r = ipc__mq_name(name, qn);
    if (r < 0) return r;
    return mq_unlink(qn) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_mq_getattr(int mq, ipc_mq_attr *attr) {
    struct mq_attr a;
    if (!attr) return -EINVAL;
    if (mq_getattr((mqd_t)mq, &a) != 0) return ipc__neg_errno();
    attr->max_msgs = a.mq_maxmsg;
    attr->msg_size = a.mq_msgsize;
    attr->cur_msgs = a.mq_curmsgs;
    attr->nonblock = (a.mq_flags & O_NONBLOCK) != 0;
    return 0;
}

/* One attempt that never sleeps whatever the queue's O_NONBLOCK: an absolute
   CLOCK_REALTIME timeout already in the past. Waiting is poll()'s job, on the monotonic
   deadline. Returns the result, or -EAGAIN when it would have to wait. */
static ssize_t ipc__mq_try(int mq, void *buf, size_t len, unsigned *prio, unsigned sprio,
                           int send) {
    static const struct timespec past = {0, 0};
    for (;;) {
        ssize_t r = send ? mq_timedsend((mqd_t)mq, (const char *)buf, len, sprio, &past)
                         : mq_timedreceive((mqd_t)mq, (char *)buf, len, prio, &past);
        if (r >= 0) return r;
        if (errno == EINTR) continue;
        return (errno == ETIMEDOUT || errno == EAGAIN) ? -EAGAIN : ipc__neg_errno();
    }
}

static ssize_t ipc__mq_xfer(int mq, void *buf, size_t len, unsigned *prio, unsigned sprio, int send,
                            int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    if (dl < IPC_FOREVER) return -EINVAL;
    if (mq < 0) return -EBADF;
    for (;;) {
        ssize_t r = ipc__mq_try(mq, buf, len, prio, sprio, send);
        int p;
        if (r != -EAGAIN) return r;
        p = ipc__poll_until(mq, send ? POLLOUT : POLLIN, dl);
        if (p < 0) return p;
    }
}

IPC_API int ipc_mq_send(int mq, const void *msg, size_t len, unsigned prio, int64_t timeout_ns) {
    ssize_t r;
    static const char empty = 0; /* mq_timedsend takes no NULL, even for 0 bytes */
    if (!msg && len) return -EINVAL;
    if (prio >= 32768) return -EINVAL;
    if (len > (size_t)LONG_MAX) return -EMSGSIZE;
    if (!msg) msg = &empty;
    r = ipc__mq_xfer(mq, (void *)(uintptr_t)msg, len, NULL, prio, 1, timeout_ns);
    return r < 0 ? (int)r : 0;
}

IPC_API ssize_t ipc_mq_recv(int mq, void *buf, size_t cap, unsigned *prio, int64_t timeout_ns) {
    if (!buf) return -EINVAL;
    return ipc__mq_xfer(mq, buf, cap, prio, 0, 0, timeout_ns);
}

IPC_API int ipc_mq_notify_signal(int mq, int signo, int value) {
    struct sigevent ev;
    if (signo <= 0) return -EINVAL; /* the kernel checks the upper bound */
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = signo;
    ev.sigev_value.sival_int = value;
    return mq_notify((mqd_t)mq, &ev) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_mq_notify_thread(int mq, void (*fn)(union sigval), void *arg) {
    struct sigevent ev;
    if (!fn) return -EINVAL;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = fn;
    ev.sigev_value.sival_ptr = arg;
    return mq_notify((mqd_t)mq, &ev) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_mq_notify_cancel(int mq) {
    return mq_notify((mqd_t)mq, NULL) != 0 ? ipc__neg_errno() : 0;
}

/* ==== 10. System V message queues ==== >>msgq */

IPC_API int ipc_msgq_create(int key, unsigned mode) {
    int id;
    if (mode == 0) mode = 0600;
    if (mode & ~0777u) return -EINVAL;
    id = msgget((key_t)key, IPC_CREAT | IPC_EXCL | (int)mode); /* no umask for System V */
    return id < 0 ? ipc__neg_errno() : id;
}

IPC_API int ipc_msgq_open(int key) {
    int id;
    if (key == IPC_PRIVATE) return -EINVAL; /* msgget would make a new queue */
    id = msgget((key_t)key, 0);
    return id < 0 ? ipc__neg_errno() : id;
}

IPC_API int ipc_msgq_remove(int id) {
    return msgctl(id, IPC_RMID, NULL) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_msgq_stat(int id, ipc_msgq_info *info) {
    struct msqid_ds ds;
    if (!info) return -EINVAL;
    if (msgctl(id, IPC_STAT, &ds) != 0) return ipc__neg_errno();
    info->msgs = (size_t)ds.msg_qnum;
#ifdef __GLIBC__
    info->bytes = (size_t)ds.__msg_cbytes;
#else
    info->bytes = (size_t)ds.msg_cbytes;
#endif
    info->max_bytes = (size_t)ds.msg_qbytes;
    info->last_send_pid = ds.msg_lspid;
    info->last_recv_pid = ds.msg_lrpid;
    info->mode = (unsigned)ds.msg_perm.mode & 0777u;
    info->uid = (unsigned)ds.msg_perm.uid;
    return 0;
}

/* The kernel has no timed msgsnd/msgrcv. IPC_FOREVER blocks in the kernel, where a
   removal wakes us; a deadline polls with IPC_NOWAIT and a capped backoff. */
static ssize_t ipc__msgq_xfer(int id, void *buf, size_t len, long type, int flags, int send,
                              int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns), step = 50000;
    int waited = 0;
    if (dl < IPC_FOREVER) return -EINVAL;
    if (id < 0) return -EINVAL;
    if (dl != IPC_FOREVER) flags |= IPC_NOWAIT;
    for (;;) {
        ssize_t r = send ? (ssize_t)msgsnd(id, buf, len, flags) : msgrcv(id, buf, len, type, flags);
        int e;
        if (r >= 0) return r;
        e = errno;
        if (e == EINTR) continue;
        if (e == EIDRM || (e == EINVAL && waited)) return -EIDRM; /* removed, id now invalid */
        if (e == E2BIG) return -EMSGSIZE;
        if (e == EINVAL && send &&
            len > (size_t)ipc__sysctl_long("/proc/sys/kernel/msgmax", LONG_MAX))
            return -EMSGSIZE;
        if (e != EAGAIN && e != ENOMSG) return -e;
        waited = 1;
        if ((e = ipc__backoff(&step, 2000000, dl)) < 0) return e;
    }
}

IPC_API int ipc_msgq_send(int id, const void *msg, size_t len, int64_t timeout_ns) {
    long type;
    ssize_t r;
    if (!msg || len > (size_t)SSIZE_MAX) return -EINVAL;
    memcpy(&type, msg, sizeof type);
    if (type <= 0) return -EINVAL;
    r = ipc__msgq_xfer(id, (void *)(uintptr_t)msg, len, 0, 0, 1, timeout_ns);
    return r < 0 ? (int)r : 0;
}

IPC_API ssize_t ipc_msgq_recv(int id, void *buf, size_t cap, long type, unsigned flags,
                              int64_t timeout_ns) {
    int fl = 0;
    if (!buf || cap > (size_t)SSIZE_MAX || (flags & ~3u)) return -EINVAL;
    if (flags & IPC_MSGQ_TRUNCATE) fl |= MSG_NOERROR;
    if (flags & IPC_MSGQ_EXCEPT) fl |= MSG_EXCEPT;
    return ipc__msgq_xfer(id, buf, cap, type, fl, 0, timeout_ns);
}

/* ==== 11. Sockets ==== >>sock */

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

#define IPC__SA(a)    ((struct sockaddr *)(uintptr_t)(a)->u.bytes)
#define IPC__UN(a)    ((struct sockaddr_un *)(uintptr_t)(a)->u.bytes)
#define IPC__SUN_OFF  offsetof(struct sockaddr_un, sun_path)
#define IPC__SUN_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

static int ipc__sock_resolve(const char *host, int bracketed, ipc_sockaddr *a, unsigned port) {
    struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)a->u.bytes;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)a->u.bytes;
    struct addrinfo hints, *res = NULL;
    const char *c;
    int r;
    if (!bracketed && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        a->len = sizeof *in4;
        return 0;
    }
    if (bracketed) { /* an IPv6 literal, with an optional %scope */
        char addr[64];
        const char *pct = strchr(host, '%');
        size_t n = pct ? (size_t)(pct - host) : strlen(host);
        if (n == 0 || n >= sizeof addr) return -EINVAL;
        memcpy(addr, host, n);
        addr[n] = 0;
        if (inet_pton(AF_INET6, addr, &in6->sin6_addr) != 1) return -EINVAL;
        if (pct) {
            char *end;
            unsigned long idx = strtoul(pct + 1, &end, 10);
            if (!pct[1]) return -EINVAL;
            if (*end) idx = if_nametoindex(pct + 1);
            if (idx == 0 || idx > UINT32_MAX) return -EINVAL;
            in6->sin6_scope_id = (uint32_t)idx;
        }
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        a->len = sizeof *in6;
        return 0;
    }
    for (c = host; *c; c++) /* a host name: letters, digits, '-', '.', '_' */
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '.' || *c == '_'))
            return -EINVAL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = a->type == IPC_SOCK_DGRAM ? SOCK_DGRAM : SOCK_STREAM;
    r = getaddrinfo(host, NULL, &hints, &res);
    if (r != 0) {
        if (r == EAI_SYSTEM) return ipc__neg_errno();
        if (r == EAI_AGAIN) return -EAGAIN;
        if (r == EAI_MEMORY) return -ENOMEM;
        return -ENOENT;
    }
    r = -ENOENT;
    if (res && res->ai_addrlen <= sizeof a->u.bytes &&
        (res->ai_family == AF_INET || res->ai_family == AF_INET6)) {
        memcpy(a->u.bytes, res->ai_addr, res->ai_addrlen);
        a->len = (uint32_t)res->ai_addrlen;
        if (res->ai_family == AF_INET)
            in4->sin_port = htons((uint16_t)port);
        else
            in6->sin6_port = htons((uint16_t)port);
        r = 0;
    }
    freeaddrinfo(res);
    return r;
}

IPC_API int ipc_sock_parse(const char *endpoint, ipc_sockaddr *addr) {
    const char *p, *hs, *he, *ps;
    char host[256];
    unsigned port = 0;
    size_t n;
    int bracketed = 0;
    if (!addr) return -EINVAL;
    memset(addr, 0, sizeof *addr);
    if (!endpoint) return -EINVAL;
    if (strncmp(endpoint, "unix:", 5) == 0) {
        struct sockaddr_un *un = IPC__UN(addr);
        p = endpoint + 5;
        n = strlen(p);
        if (n == 0 || (p[0] == '@' && n == 1)) return -EINVAL;
        /* a path needs its NUL; an abstract name's '@' becomes the leading NUL */
        if (n + (p[0] != '@') > IPC__SUN_SIZE) return -ENAMETOOLONG;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, p, n);
        if (p[0] == '@') un->sun_path[0] = 0;
        addr->len = (uint32_t)(IPC__SUN_OFF + n + (p[0] != '@'));
        addr->type = IPC_SOCK_STREAM;
        return 0;
    }
    if (strncmp(endpoint, "tcp:", 4) == 0)
        addr->type = IPC_SOCK_STREAM;
    else if (strncmp(endpoint, "udp:", 4) == 0)
        addr->type = IPC_SOCK_DGRAM;
    else
        return -EINVAL;
    p = endpoint + 4;
    if (*p == '[') {
        bracketed = 1;
        hs = p + 1;
        he = strchr(hs, ']');
        if (!he || he[1] != ':') return -EINVAL;
        ps = he + 2;
    } else {
        hs = p;
        he = strrchr(p, ':');
        if (!he) return -EINVAL;
        ps = he + 1;
        if (memchr(hs, ':', (size_t)(he - hs))) return -EINVAL; /* IPv6 needs brackets */
    }
    n = (size_t)(he - hs);
    if (n == 0 || n >= sizeof host || !*ps || strlen(ps) > 5) return -EINVAL;
    for (; *ps; ps++) {
        if (*ps < '0' || *ps > '9') return -EINVAL;
        port = port * 10 + (unsigned)(*ps - '0');
    }
    if (port > 65535) return -EINVAL;
    memcpy(host, hs, n);
    host[n] = 0;
    return ipc__sock_resolve(host, bracketed, addr, port);
}

IPC_API int ipc_sock_format(const ipc_sockaddr *addr, char *buf, size_t cap) {
    char tmp[IPC__SUN_SIZE + 16], ip[64];
    int n;
    if (!addr || !buf) return -EINVAL;
    switch (IPC__SA(addr)->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)addr->u.bytes;
        if (!inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip)) return -EINVAL;
        n = snprintf(tmp, sizeof tmp, "%s:%s:%u", addr->type == IPC_SOCK_DGRAM ? "udp" : "tcp", ip,
                     (unsigned)ntohs(a->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)addr->u.bytes;
        char scope[16] = "";
        if (!inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip)) return -EINVAL;
        if (a->sin6_scope_id) snprintf(scope, sizeof scope, "%%%u", (unsigned)a->sin6_scope_id);
        n = snprintf(tmp, sizeof tmp, "%s:[%s%s]:%u", addr->type == IPC_SOCK_DGRAM ? "udp" : "tcp",
                     ip, scope, (unsigned)ntohs(a->sin6_port));
        break;
    }
    case AF_UNIX: {
        const char *path = IPC__UN(addr)->sun_path;
        size_t plen = addr->len > IPC__SUN_OFF ? addr->len - IPC__SUN_OFF : 0, k;
        if (plen > IPC__SUN_SIZE) return -EINVAL;
        memcpy(tmp, "unix:", 5);
        n = 5;
        if (plen > 0 && path[0] == 0) { /* abstract: the bytes after the NUL, exactly */
            for (k = 1; k < plen; k++)
                if (path[k] == 0) return -EINVAL;
            tmp[n++] = '@';
            memcpy(tmp + n, path + 1, plen - 1);
            n += (int)(plen - 1);
        } else {
            if (plen > 0 && path[0] == '@') { /* a relative path "@x" is not abstract */
                memcpy(tmp + n, "./", 2);
                n += 2;
            }
            for (k = 0; k < plen && path[k]; k++)
                tmp[n++] = path[k];
        }
        tmp[n] = 0;
        break;
    }
    default: return -EINVAL;
    }
    if (n < 0 || (size_t)n >= cap) return -ENOSPC;
    memcpy(buf, tmp, (size_t)n + 1);
    return n;
}

/* Parse endpoint and settle the socket type from the scheme and the options. */
static int ipc__sock_prepare(const char *endpoint, const ipc_sock_opts *o, ipc_sockaddr *a) {
    int r = ipc_sock_parse(endpoint, a);
    if (r < 0) return r;
    if (o && ((o->flags & ~63u) || o->backlog < 0 || (o->mode & ~0777u))) return -EINVAL;
    if (o && o->type) {
        int fam = IPC__SA(a)->sa_family;
        if (o->type != IPC_SOCK_STREAM && o->type != IPC_SOCK_DGRAM &&
            o->type != IPC_SOCK_SEQPACKET)
            return -EINVAL;
        if (fam != AF_UNIX && o->type != a->type) return -EINVAL; /* tcp is a stream... */
        a->type = o->type;
    }
    return 0;
}

static int ipc__setopt(int fd, int level, int name, int v) {
    return setsockopt(fd, level, name, &v, sizeof v) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_sock_set(int fd, unsigned flag, int on) {
    on = on != 0;
    switch (flag) {
    case IPC_SOCK_NODELAY: return ipc__setopt(fd, IPPROTO_TCP, TCP_NODELAY, on);
    case IPC_SOCK_KEEPALIVE: return ipc__setopt(fd, SOL_SOCKET, SO_KEEPALIVE, on);
    case IPC_SOCK_BROADCAST: return ipc__setopt(fd, SOL_SOCKET, SO_BROADCAST, on);
    case IPC_SOCK_REUSEPORT: return ipc__setopt(fd, SOL_SOCKET, SO_REUSEPORT, on);
    case IPC_SOCK_V6ONLY: return ipc__setopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, on);
    default: return -EINVAL;
    }
}

IPC_API int ipc_sock_set_buffers(int fd, size_t sndbuf, size_t rcvbuf) {
    int r = 0;
    if (sndbuf > INT_MAX / 2 || rcvbuf > INT_MAX / 2) return -EINVAL;
    if (sndbuf) r = ipc__setopt(fd, SOL_SOCKET, SO_SNDBUF, (int)sndbuf);
    if (r == 0 && rcvbuf) r = ipc__setopt(fd, SOL_SOCKET, SO_RCVBUF, (int)rcvbuf);
    return r;
}

/* A socket for a, with the option flags that apply before bind/connect. */
static int ipc__sock_new(const ipc_sockaddr *a, unsigned flags, int *fd) {
    int fam = IPC__SA(a)->sa_family, r = 0;
    unsigned f;
    *fd = socket(fam, a->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (*fd < 0) return ipc__neg_errno();
    for (f = IPC_SOCK_NODELAY; f <= IPC_SOCK_V6ONLY && r == 0; f <<= 1) {
        if (!(flags & f) || fam == AF_UNIX) continue;
        if (f == IPC_SOCK_NODELAY && a->type != IPC_SOCK_STREAM) continue;
        if (f == IPC_SOCK_V6ONLY && fam != AF_INET6) continue;
        if (f == IPC_SOCK_REUSEPORT && a->type == IPC_SOCK_DGRAM) /* UDP groups share ports */
            r = ipc__setopt(*fd, SOL_SOCKET, SO_REUSEADDR, 1);
        if (r == 0) r = ipc_sock_set(*fd, f, 1);
    }
    if (r < 0) ipc_fd_close(fd);
    return r;
}

/* bind (and listen, when backlog >= 0) on a unix path, replacing a dead server's socket
   file. The socket inode's mode becomes the file's (less the umask), so the file is
   never more open than asked; chmod then makes it exact. */
static int ipc__sock_bind_unix(int fd, const ipc_sockaddr *a, unsigned mode, int backlog) {
    const char *path = IPC__UN(a)->sun_path;
    char dir[IPC__SUN_SIZE + 2];
    const char *slash;
    struct stat st;
    int dfd, r, probe;
    if (path[0] == 0) { /* abstract: no file, nothing stale */
        if (bind(fd, IPC__SA(a), a->len) != 0) return ipc__neg_errno();
        return (backlog >= 0 && listen(fd, backlog) != 0) ? ipc__neg_errno() : 0;
    }
    if (fchmod(fd, (mode_t)mode) != 0) return ipc__neg_errno();
    /* Under an exclusive lock on the directory (taken by every ipc.h server doing this),
       bind and listen; if something is at the path, check it is a socket that refuses
       connections and replace it. Two servers starting at once cannot both take the
       path, and neither can see the other's bound-but-not-yet-listening socket. */
    slash = strrchr(path, '/');
    if (!slash)
        memcpy(dir, ".", 2);
    else if (slash == path)
        memcpy(dir, "/", 2);
    else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = 0;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return ipc__neg_errno();
    while ((r = flock(dfd, LOCK_EX)) != 0 && errno == EINTR) {
    }
    if (r != 0) {
        r = ipc__neg_errno();
        goto unlock;
    }
    if (bind(fd, IPC__SA(a), a->len) == 0) {
        r = 0;
        goto listen;
    } else if (errno != EADDRINUSE) {
        r = ipc__neg_errno();
    } else if (lstat(path, &st) != 0) {
        r = errno == ENOENT ? 0 : ipc__neg_errno(); /* gone meanwhile: just bind */
    } else if (!S_ISSOCK(st.st_mode)) {
        r = -EEXIST;
    } else {
        probe = socket(AF_UNIX, a->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (probe < 0) {
            r = ipc__neg_errno();
        } else {
            r = connect(probe, IPC__SA(a), a->len) == 0 ? -EADDRINUSE
                : errno == ECONNREFUSED                 ? 0
                : errno == ENOENT                       ? 0
                                                        : -EADDRINUSE;
            close(probe);
            if (r == 0 && unlink(path) != 0 && errno != ENOENT) r = ipc__neg_errno();
        }
    }
    if (r == 0 && bind(fd, IPC__SA(a), a->len) != 0) r = ipc__neg_errno();
listen:
    if (r == 0 && backlog >= 0 && listen(fd, backlog) != 0) {
        r = ipc__neg_errno();
        unlink(path);
    }
unlock:
    close(dfd); /* drops the lock */
    if (r < 0) return r;
    if (chmod(path, (mode_t)mode) != 0) {
        r = ipc__neg_errno();
        unlink(path);
        return r;
    }
    return 0;
}

static int ipc__sock_serve(const char *endpoint, const ipc_sock_opts *o, int dgram) {
    ipc_sockaddr a;
    unsigned mode = (o && o->mode) ? o->mode : 0600u, flags = o ? o->flags : 0;
    int backlog = (o && o->backlog) ? o->backlog : SOMAXCONN, fd, r;
    if ((r = ipc__sock_prepare(endpoint, o, &a)) < 0) return r;
    if ((a.type == IPC_SOCK_DGRAM) != dgram) return -EINVAL;
    if ((r = ipc__sock_new(&a, flags, &fd)) < 0) return r;
    if (IPC__SA(&a)->sa_family == AF_UNIX) {
        r = ipc__sock_bind_unix(fd, &a, mode, dgram ? -1 : backlog);
    } else {
        if (!dgram) r = ipc__setopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
        if (r == 0 && bind(fd, IPC__SA(&a), a.len) != 0) r = ipc__neg_errno();
        if (r == 0 && !dgram && listen(fd, backlog) != 0) r = ipc__neg_errno();
    }
    /* Listeners stay non-blocking (accept keeps its deadline even when another process
       takes the connection first); datagram sockets follow the flag. */
    if (r == 0 && dgram && !(flags & IPC_SOCK_NONBLOCK)) r = ipc_fd_set_nonblock(fd, 0);
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

IPC_API int ipc_sock_listen(const char *endpoint, const ipc_sock_opts *opts) {
    return ipc__sock_serve(endpoint, opts, 0);
}

IPC_API int ipc_sock_bind(const char *endpoint, const ipc_sock_opts *opts) {
    return ipc__sock_serve(endpoint, opts, 1);
}

static int ipc__sock_type(int fd) {
    int t = 0;
    socklen_t l = sizeof t;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &l) != 0 ? ipc__neg_errno() : t;
}

IPC_API int ipc_sock_accept(int lfd, ipc_sockaddr *peer, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    ipc_sockaddr tmp;
    ipc_sockaddr *a = peer ? peer : &tmp;
    int fl, fd, r;
    if (dl < IPC_FOREVER) return -EINVAL;
    if ((fl = fcntl(lfd, F_GETFL)) < 0) return ipc__neg_errno();
    memset(a, 0, sizeof *a);
    for (;;) {
        socklen_t len = sizeof a->u.bytes;
        /* A blocking listener is polled first, so accept cannot block past the deadline
           (unless another process takes the connection in between: ours are non-blocking). */
        if (!(fl & O_NONBLOCK) && (r = ipc__poll_dl(lfd, POLLIN, dl)) < 0) return r;
        fd = accept4(lfd, IPC__SA(a), &len, SOCK_CLOEXEC);
        if (fd >= 0) {
            a->len = len;
            a->type = ipc__sock_type(fd);
            return fd;
        }
        switch (errno) {
        case EINTR:
        case ECONNABORTED:
        case EPROTO: /* errors of a connection that died before we took it: next one */
        case ENETDOWN:
        case EHOSTUNREACH:
        case ENETUNREACH: continue;
        case EAGAIN:
            if ((r = ipc__poll_until(lfd, POLLIN, dl)) < 0) return r;
            continue;
        default: return ipc__neg_errno();
        }
    }
}

IPC_API int ipc_sock_connect(const char *endpoint, const ipc_sock_opts *opts, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns), step = 50000;
    ipc_sockaddr a;
    int fd, r, err;
    socklen_t l = sizeof err;
    if (dl < IPC_FOREVER) return -EINVAL;
    if ((r = ipc__sock_prepare(endpoint, opts, &a)) < 0) return r;
    if ((r = ipc__sock_new(&a, opts ? opts->flags : 0, &fd)) < 0) return r;
    for (;;) {
        if (connect(fd, IPC__SA(&a), a.len) == 0) break;
        if (errno == EINPROGRESS || errno == EINTR) { /* TCP: wait for the handshake */
            if ((r = ipc__poll_dl(fd, POLLOUT, dl)) < 0) goto fail;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0) err = errno;
            if (err == 0) break;
            r = -err;
            goto fail;
        }
        if (errno == EAGAIN && IPC__SA(&a)->sa_family == AF_UNIX) { /* backlog full */
            if ((r = ipc__backoff(&step, 5000000, dl)) < 0) goto fail;
            continue;
        }
        r = ipc__neg_errno();
        goto fail;
    }
    if (!(opts && (opts->flags & IPC_SOCK_NONBLOCK)) && (r = ipc_fd_set_nonblock(fd, 0)) < 0)
        goto fail;
    return fd;
fail:
    close(fd);
    return r;
}

IPC_API int ipc_sock_pair(int fds[2], int type) {
    if (!fds || (type != IPC_SOCK_STREAM && type != IPC_SOCK_DGRAM && type != IPC_SOCK_SEQPACKET))
        return -EINVAL;
    return socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) != 0 ? ipc__neg_errno() : 0;
}

static int ipc__sock_name(int fd, ipc_sockaddr *addr, int peer) {
    socklen_t len = sizeof addr->u.bytes;
    int t;
    if (!addr) return -EINVAL;
    memset(addr, 0, sizeof *addr);
    if ((peer ? getpeername(fd, IPC__SA(addr), &len) : getsockname(fd, IPC__SA(addr), &len)) != 0)
        return ipc__neg_errno();
    if ((t = ipc__sock_type(fd)) < 0) return t;
    addr->len = len;
    addr->type = t;
    return 0;
}

IPC_API int ipc_sock_local(int fd, ipc_sockaddr *addr) {
    return ipc__sock_name(fd, addr, 0);
}

IPC_API int ipc_sock_peer(int fd, ipc_sockaddr *addr) {
    return ipc__sock_name(fd, addr, 1);
}

IPC_API int ipc_sock_unlink(const char *endpoint) {
    ipc_sockaddr a;
    struct stat st;
    int r = ipc_sock_parse(endpoint, &a);
    if (r < 0) return r;
    if (IPC__SA(&a)->sa_family != AF_UNIX) return -EINVAL;
    if (IPC__UN(&a)->sun_path[0] == 0) return 0;
    if (lstat(IPC__UN(&a)->sun_path, &st) != 0) return ipc__neg_errno();
    if (!S_ISSOCK(st.st_mode)) return -EINVAL;
    return unlink(IPC__UN(&a)->sun_path) != 0 ? ipc__neg_errno() : 0;
}

/* sendmsg/recvmsg that never block in the kernel and poll until the deadline. */
static ssize_t ipc__sock_msg(int fd, struct msghdr *m, int flags, int send, int64_t dl) {
    for (;;) {
        ssize_t r = send ? sendmsg(fd, m, flags | MSG_DONTWAIT | MSG_NOSIGNAL)
                         : recvmsg(fd, m, flags | MSG_DONTWAIT);
        int p;
        if (r >= 0) return r;
        if (errno == EINTR) continue;
        if (errno == ECONNRESET) return -EPIPE;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return ipc__neg_errno();
        if ((p = ipc__poll_until(fd, send ? POLLOUT : POLLIN, dl)) < 0) return p;
    }
}

IPC_API ssize_t ipc_sock_send(int fd, const void *buf, size_t len, int64_t timeout_ns,
                              size_t *done) {
    if (len == 0 && fd >= 0 && ipc__sock_type(fd) == IPC_SOCK_DGRAM) {
        int64_t dl = ipc_deadline_make(timeout_ns);
        struct msghdr m;
        struct iovec v;
        if (done) *done = 0;
        if (dl < IPC_FOREVER) return -EINVAL;
        memset(&m, 0, sizeof m);
        v.iov_base = &m; /* one empty piece rather than none: some emulators send nothing */
        v.iov_len = 0;
        m.msg_iov = &v;
        m.msg_iovlen = 1;
        return ipc__sock_msg(fd, &m, 0, 1, dl);
    }
    return ipc__io_call(fd, (void *)(uintptr_t)buf, len, 1, 1, timeout_ns, done);
}

/* One recvmsg with the end-of-stream and truncation rules of ipc_sock_recv. */
static ssize_t ipc__sock_recv1(int fd, struct msghdr *m, int flags, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    ssize_t r;
    if (dl < IPC_FOREVER) return -EINVAL;
    r = ipc__sock_msg(fd, m, flags, 0, dl);
    if (r == 0 && ipc__sock_type(fd) != IPC_SOCK_DGRAM) return -EPIPE;
    if (r > 0 && (m->msg_flags & MSG_TRUNC)) return -EMSGSIZE;
    return r;
}

IPC_API ssize_t ipc_sock_recv(int fd, void *buf, size_t cap, int64_t timeout_ns) {
    struct msghdr m;
    struct iovec v;
    if (!buf || cap == 0 || cap > (size_t)SSIZE_MAX) return -EINVAL;
    memset(&m, 0, sizeof m);
    v.iov_base = buf;
    v.iov_len = cap;
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    return ipc__sock_recv1(fd, &m, 0, timeout_ns);
}

IPC_API ssize_t ipc_sock_sendto(int fd, const void *buf, size_t len, const ipc_sockaddr *to,
                                int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    struct msghdr m;
    struct iovec v;
    if ((!buf && len) || len > (size_t)SSIZE_MAX || !to || dl < IPC_FOREVER) return -EINVAL;
    memset(&m, 0, sizeof m);
    v.iov_base = (void *)(uintptr_t)buf;
    v.iov_len = len;
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    m.msg_name = (void *)(uintptr_t)to->u.bytes;
    m.msg_namelen = to->len;
    return ipc__sock_msg(fd, &m, 0, 1, dl);
}

IPC_API ssize_t ipc_sock_recvfrom(int fd, void *buf, size_t cap, ipc_sockaddr *from,
                                  int64_t timeout_ns) {
    struct msghdr m;
    struct iovec v;
    ssize_t r;
    if ((!buf && cap) || cap > (size_t)SSIZE_MAX) return -EINVAL;
    memset(&m, 0, sizeof m);
    v.iov_base = buf;
    v.iov_len = cap;
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    if (from) {
        memset(from, 0, sizeof *from);
        m.msg_name = from->u.bytes;
        m.msg_namelen = sizeof from->u.bytes;
    }
    r = ipc__sock_recv1(fd, &m, 0, timeout_ns);
    if (from && r >= 0) {
        from->len = m.msg_namelen;
        from->type = IPC_SOCK_DGRAM;
        if (from->len == 0) { /* an unbound unix sender: an unnamed unix address */
            IPC__SA(from)->sa_family = AF_UNIX;
            from->len = (uint32_t)sizeof(sa_family_t);
        }
    }
    return r;
}

IPC_API ssize_t ipc_sock_next_size(int fd, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    struct msghdr m;
    struct iovec v;
    char one; /* a real buffer: some emulators report 0 for a peek into none */
    if (dl < IPC_FOREVER) return -EINVAL;
    memset(&m, 0, sizeof m);
    v.iov_base = &one;
    v.iov_len = 1;
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    return ipc__sock_msg(fd, &m, MSG_PEEK | MSG_TRUNC, 0, dl);
}

IPC_API int ipc_sock_shutdown(int fd, int how) {
    if (how < IPC_SHUT_RD || how > IPC_SHUT_RDWR) return -EINVAL;
    return shutdown(fd, how) != 0 ? ipc__neg_errno() : 0;
}

/* op 0 join, 1 leave, 2 choose the interface for sending. */
static int ipc__mcast(int fd, const char *group, const char *ifname, int op) {
    ipc_sockaddr g;
    unsigned idx = 0;
    int r = ipc_sock_parse(group, &g);
    if (r < 0) return r;
    if (ifname && (idx = if_nametoindex(ifname)) == 0) return -ENODEV;
    if (IPC__SA(&g)->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)g.u.bytes;
        struct ip_mreqn mr;
        if (!IN_MULTICAST(ntohl(in4->sin_addr.s_addr))) return -EINVAL;
        memset(&mr, 0, sizeof mr);
        mr.imr_multiaddr = in4->sin_addr;
        mr.imr_ifindex = (int)idx;
        if (op == 2) {
            if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr) != 0)
                return ipc__neg_errno();
            return ipc__setopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 1);
        }
        r = setsockopt(fd, IPPROTO_IP, op ? IP_DROP_MEMBERSHIP : IP_ADD_MEMBERSHIP, &mr, sizeof mr);
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)g.u.bytes;
        struct ipv6_mreq mr;
        if (!IN6_IS_ADDR_MULTICAST(&in6->sin6_addr)) return -EINVAL;
        if (op == 2) {
            if ((r = ipc__setopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, (int)idx)) < 0) return r;
            return ipc__setopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 1);
        }
        memset(&mr, 0, sizeof mr);
        mr.ipv6mr_multiaddr = in6->sin6_addr;
        mr.ipv6mr_interface = idx;
        r = setsockopt(fd, IPPROTO_IPV6, op ? IPV6_LEAVE_GROUP : IPV6_JOIN_GROUP, &mr, sizeof mr);
    }
    return r != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_sock_join(int fd, const char *group, const char *ifname) {
    return ipc__mcast(fd, group, ifname, 0);
}

IPC_API int ipc_sock_leave(int fd, const char *group, const char *ifname) {
    return ipc__mcast(fd, group, ifname, 1);
}

IPC_API int ipc_sock_multicast_if(int fd, const char *group, const char *ifname) {
    return ipc__mcast(fd, group, ifname, 2);
}

#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

/* Room for the most descriptors, and for what SO_PASSCRED, SO_PASSPIDFD and a security
   label may add beside them: a receiver with those options set must not lose fds to
   MSG_CTRUNC. */
typedef union ipc__cmsg_buf {
    struct cmsghdr h;
    char b[CMSG_SPACE(sizeof(int) * IPC_SOCK_MAX_FDS) + CMSG_SPACE(sizeof(struct ucred)) +
           CMSG_SPACE(sizeof(int)) + CMSG_SPACE(256)];
} ipc__cmsg_buf;

IPC_API ssize_t ipc_sock_send_fds(int fd, const void *buf, size_t len, const int *fds, int nfds,
                                  int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    ipc__cmsg_buf cb;
    struct msghdr m;
    struct iovec v;
    struct cmsghdr *c;
    size_t sent = 0;
    ssize_t r;
    if (!buf || len == 0 || len > (size_t)SSIZE_MAX || !fds || nfds < 1 ||
        nfds > IPC_SOCK_MAX_FDS || dl < IPC_FOREVER)
        return -EINVAL;
    memset(&m, 0, sizeof m);
    memset(&cb, 0, sizeof cb);
    v.iov_base = (void *)(uintptr_t)buf;
    v.iov_len = len;
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    m.msg_control = cb.b;
    m.msg_controllen = (socklen_t)CMSG_SPACE(sizeof(int) * (size_t)nfds);
    c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = (socklen_t)CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    r = ipc__sock_msg(fd, &m, 0, 1, dl);
    if (r < 0) return r;
    if ((size_t)r < len) { /* a stream took part: the descriptors went with it */
        v.iov_base = (char *)(uintptr_t)buf + r;
        v.iov_len = len - (size_t)r;
        r = ipc__io_run(fd, &v, 1, 1, 1, dl, &sent, NULL);
        if (r < 0) return r;
    }
    return (ssize_t)len;
}

IPC_API ssize_t ipc_sock_recv_fds(int fd, void *buf, size_t cap, int *fds, int *nfds,
                                  int64_t timeout_ns) {
    ipc__cmsg_buf cb;
    struct msghdr m;
    struct iovec v;
    size_t off = 0;
    ssize_t r;
    int want, got = 0, extra = 0, i;
    if (!buf || cap == 0 || cap > (size_t)SSIZE_MAX || !fds || !nfds || *nfds < 0 ||
        *nfds > IPC_SOCK_MAX_FDS)
        return -EINVAL;
    want = *nfds;
    *nfds = 0;
    memset(&m, 0, sizeof m);
    v.iov_base = buf;
    v.iov_len = cap;
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    m.msg_control = cb.b; /* room for the most the kernel ever sends, so only a full fd
                             table can truncate it */
    m.msg_controllen = sizeof cb.b;
    r = ipc__sock_recv1(fd, &m, MSG_CMSG_CLOEXEC, timeout_ns);
    if (r < 0 && r != -EMSGSIZE && r != -EPIPE) return r; /* nothing was received */
    /* Walk the control messages by hand (musl's CMSG_NXTHDR trips -Wsign-conversion). */
    while (off + sizeof(struct cmsghdr) <= (size_t)m.msg_controllen) {
        struct cmsghdr h;
        size_t n, k;
        memcpy(&h, cb.b + off, sizeof h);
        if ((size_t)h.cmsg_len < CMSG_LEN(0) || off + (size_t)h.cmsg_len > (size_t)m.msg_controllen)
            break;
        n = h.cmsg_level == SOL_SOCKET && (h.cmsg_type == SCM_RIGHTS || h.cmsg_type == SCM_PIDFD)
                ? ((size_t)h.cmsg_len - CMSG_LEN(0)) / sizeof(int)
                : 0;
        for (k = 0; k < n; k++) {
            int f;
            memcpy(&f, cb.b + off + CMSG_LEN(0) + k * sizeof(int), sizeof f);
            if (h.cmsg_type == SCM_PIDFD) /* SO_PASSPIDFD's: not asked for here, not leaked */
                close(f);
            else if (got < want)
                fds[got++] = f;
            else {
                close(f);
                extra = 1;
            }
        }
        off += CMSG_SPACE((size_t)h.cmsg_len - CMSG_LEN(0));
    }
    if (r >= 0 && (m.msg_flags & MSG_CTRUNC)) r = -EMFILE;
    if (r >= 0 && extra) r = -EMSGSIZE;
    if (r < 0) {
        for (i = 0; i < got; i++)
            close(fds[i]);
        return r;
    }
    *nfds = got;
    return r;
}

IPC_API int ipc_sock_peercred(int fd, ipc_peercred *cred) {
    struct ucred u;
    socklen_t l = sizeof u;
    if (!cred) return -EINVAL;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &u, &l) != 0) return ipc__neg_errno();
    cred->pid = u.pid;
    cred->uid = (unsigned)u.uid;
    cred->gid = (unsigned)u.gid;
    return 0;
}

IPC_API int ipc_sock_peer_pidfd(int fd) {
    int p = -1;
    socklen_t l = sizeof p;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &p, &l) != 0) return ipc__neg_errno();
    fcntl(p, F_SETFD, FD_CLOEXEC);
    return p;
}

IPC_API int ipc_sock_send_ring(int fd, const ipc_ring *r, int64_t timeout_ns) {
    int rfd = ipc_ring_fd(r);
    ssize_t n;
    if (rfd < 0) return rfd;
    n = ipc_sock_send_fds(fd, "R", 1, &rfd, 1, timeout_ns);
    return n < 0 ? (int)n : 0;
}

IPC_API int ipc_sock_recv_ring(int fd, ipc_ring *r, int role, int64_t timeout_ns) {
    char tag = 0;
    int rfd = -1, n = 1, res;
    ssize_t k;
    if (!r) return -EINVAL;
    k = ipc_sock_recv_fds(fd, &tag, 1, &rfd, &n, timeout_ns);
    if (k < 0) return (int)k;
    if (n != 1 || tag != 'R') {
        if (n == 1) close(rfd);
        return -EPROTO;
    }
    res = ipc_ring_attach_fd(r, rfd, role);
    close(rfd);
    return res;
}

/* ==== 12. Signals ==== >>signal */

#define IPC__NSIG 64 /* signals a 64-bit mask can name */

/* Handlers installed through ipc_signal_handle, by signal number; the trampoline below
   reads them in signal context, so they are only loaded and stored atomically. */
static void (*ipc__sig_fns[IPC__NSIG + 1])(const ipc_siginfo *);

typedef struct ipc__sig_saved {
    struct sigaction sa;
    void (*fn)(const ipc_siginfo *);
} ipc__sig_saved;
typedef char ipc__sig_saved_fits[sizeof(ipc__sig_saved) <= sizeof(ipc_signal_saved) ? 1 : -1];

static void ipc__siginfo_from(ipc_siginfo *o, const siginfo_t *si) {
    memset(o, 0, sizeof *o);
    o->signo = si->si_signo;
    o->code = si->si_code;
    o->pid = si->si_pid;
    o->uid = (unsigned)si->si_uid;
    if (si->si_signo == SIGCHLD) o->status = si->si_status;
    o->value_int = si->si_value.sival_int;
    o->value = (intptr_t)si->si_value.sival_ptr;
}

static void ipc__sig_tramp(int signo, siginfo_t *si, void *ctx) {
    void (*fn)(const ipc_siginfo *);
    ipc_siginfo info;
    int saved = errno; /* a handler must not change errno under the code it interrupted */
    (void)ctx;
    if (signo <= 0 || signo > IPC__NSIG) return;
    fn = __atomic_load_n(&ipc__sig_fns[signo], __ATOMIC_ACQUIRE);
    ipc__siginfo_from(&info, si);
    if (fn) fn(&info);
    errno = saved;
}

static int ipc__sig_ok(int signo) {
    return signo > 0 && signo <= IPC__NSIG && signo != SIGKILL && signo != SIGSTOP;
}

static int ipc__sig_install(int signo, struct sigaction *sa, void (*fn)(const ipc_siginfo *),
                            ipc_signal_saved *old) {
    ipc__sig_saved prev;
    if (!ipc__sig_ok(signo)) return -EINVAL;
    memset(&prev, 0, sizeof prev);
    if (sigaction(signo, NULL, &prev.sa) != 0) return ipc__neg_errno();
    prev.fn = __atomic_load_n(&ipc__sig_fns[signo], __ATOMIC_ACQUIRE);
    if (fn) __atomic_store_n(&ipc__sig_fns[signo], fn, __ATOMIC_RELEASE);
    if (sigaction(signo, sa, NULL) != 0) {
        int r = ipc__neg_errno();
        __atomic_store_n(&ipc__sig_fns[signo], prev.fn, __ATOMIC_RELEASE);
        return r;
    }
    if (old) {
        memset(old, 0, sizeof *old);
        memcpy(old, &prev, sizeof prev);
    }
    return 0;
}

IPC_API int ipc_signal_handle(int signo, void (*fn)(const ipc_siginfo *info), unsigned flags,
                              ipc_signal_saved *old) {
    struct sigaction sa;
    if (!fn || (flags & ~7u)) return -EINVAL;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = ipc__sig_tramp;
    sa.sa_flags = SA_SIGINFO | ((flags & IPC_SIGNAL_RESTART) ? SA_RESTART : 0) |
                  ((flags & IPC_SIGNAL_ONESHOT) ? (int)SA_RESETHAND : 0) |
                  ((flags & IPC_SIGNAL_NODEFER) ? SA_NODEFER : 0);
    sigemptyset(&sa.sa_mask);
    return ipc__sig_install(signo, &sa, fn, old);
}

IPC_API int ipc_signal_set(int signo, int disposition, ipc_signal_saved *old) {
    struct sigaction sa;
    if (disposition != IPC_SIGNAL_DEFAULT && disposition != IPC_SIGNAL_IGNORE) return -EINVAL;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = disposition == IPC_SIGNAL_IGNORE ? SIG_IGN : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    return ipc__sig_install(signo, &sa, NULL, old);
}

IPC_API int ipc_signal_restore(int signo, const ipc_signal_saved *old) {
    ipc__sig_saved prev;
    if (!old || !ipc__sig_ok(signo)) return -EINVAL;
    memcpy(&prev, old, sizeof prev);
    if (prev.fn) __atomic_store_n(&ipc__sig_fns[signo], prev.fn, __ATOMIC_RELEASE);
    return sigaction(signo, &prev.sa, NULL) != 0 ? ipc__neg_errno() : 0;
}

static void ipc__sigset_from(sigset_t *s, uint64_t bits) {
    int i;
    sigemptyset(s);
    for (i = 1; i <= IPC__NSIG; i++)
        if (bits & IPC_SIGBIT(i)) sigaddset(s, i); /* the C library's own ones are refused */
}

static uint64_t ipc__sigset_bits(const sigset_t *s) {
    uint64_t bits = 0;
    int i;
    for (i = 1; i <= IPC__NSIG; i++)
        if (sigismember(s, i) == 1) bits |= IPC_SIGBIT(i);
    return bits;
}

IPC_API int ipc_signal_mask(int how, uint64_t set, uint64_t *old) {
    sigset_t s, o;
    int r, h = how == IPC_SIG_BLOCK     ? SIG_BLOCK
               : how == IPC_SIG_UNBLOCK ? SIG_UNBLOCK
               : how == IPC_SIG_SETMASK ? SIG_SETMASK
                                        : -1;
    if (h < 0) return -EINVAL;
    ipc__sigset_from(&s, set);
    if ((r = pthread_sigmask(h, &s, &o)) != 0) return -r;
    if (old) *old = ipc__sigset_bits(&o);
    return 0;
}

IPC_API int ipc_signal_send(pid_t pid, int signo) {
    if (pid == 0 || pid == -1) return -EINVAL;
    return kill(pid, signo) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_signal_queue(pid_t pid, int signo, intptr_t value) {
    union sigval v;
    if (pid <= 0) return -EINVAL;
    memset(&v, 0, sizeof v);
    v.sival_ptr = (void *)value;
    return sigqueue(pid, signo, v) != 0 ? ipc__neg_errno() : 0;
}

static int ipc__pidfd_signal(int pidfd, int signo, siginfo_t *si) {
    return syscall(SYS_pidfd_send_signal, pidfd, signo, si, 0) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_signal_send_pidfd(int pidfd, int signo) {
    return ipc__pidfd_signal(pidfd, signo, NULL);
}

IPC_API int ipc_signal_queue_pidfd(int pidfd, int signo, intptr_t value) {
    siginfo_t si; /* what sigqueue would have sent */
    memset(&si, 0, sizeof si);
    si.si_signo = signo;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_ptr = (void *)value;
    return ipc__pidfd_signal(pidfd, signo, &si);
}

IPC_API int ipc_signal_fd(uint64_t set) {
    sigset_t s;
    int fd, r;
    if (set == 0) return -EINVAL;
    ipc__sigset_from(&s, set);
    if (ipc__sigset_bits(&s) == 0) return -EINVAL; /* only the C library's own signals */
    if ((r = pthread_sigmask(SIG_BLOCK, &s, NULL)) != 0) return -r;
    fd = signalfd(-1, &s, SFD_CLOEXEC | SFD_NONBLOCK);
    return fd < 0 ? ipc__neg_errno() : fd;
}

/* Read one fixed-size record (a signalfd_siginfo, an eventfd count) before the deadline.
   A blocking fd from elsewhere is polled first, so the read cannot outlive the deadline
   (unless another reader takes the record in between: our own fds are non-blocking). */
static int ipc__read_record(int fd, void *rec, size_t size, int64_t dl) {
    int fl, r;
    if (dl < IPC_FOREVER) return -EINVAL;
    if ((fl = fcntl(fd, F_GETFL)) < 0) return ipc__neg_errno();
    for (;;) {
        ssize_t n;
        if (!(fl & O_NONBLOCK) && dl != IPC_FOREVER && (r = ipc__poll_dl(fd, POLLIN, dl)) < 0)
            return r;
        n = read(fd, rec, size);
        if (n == (ssize_t)size) return 0;
        if (n >= 0) return -EIO;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return ipc__neg_errno();
        if ((r = ipc__poll_dl(fd, POLLIN, dl)) < 0) return r;
    }
}

IPC_API int ipc_signal_read(int fd, ipc_siginfo *info, int64_t timeout_ns) {
    struct signalfd_siginfo s;
    int r = ipc__read_record(fd, &s, sizeof s, ipc_deadline_make(timeout_ns));
    if (r < 0) return r;
    if (!info) return (int)s.ssi_signo;
    memset(info, 0, sizeof *info);
    info->signo = (int)s.ssi_signo;
    info->code = s.ssi_code;
    info->pid = (pid_t)s.ssi_pid;
    info->uid = s.ssi_uid;
    if (info->signo == SIGCHLD) info->status = s.ssi_status;
    info->value_int = s.ssi_int;
    info->value = (intptr_t)s.ssi_ptr;
    return info->signo;
}

IPC_API int ipc_signal_wait(uint64_t set, ipc_siginfo *info, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    sigset_t s;
    siginfo_t si;
    int r;
    if (set == 0 || dl < IPC_FOREVER) return -EINVAL;
    ipc__sigset_from(&s, set);
    if (ipc__sigset_bits(&s) == 0) return -EINVAL;
    if ((r = pthread_sigmask(SIG_BLOCK, &s, NULL)) != 0) return -r;
    for (;;) {
        /* The system call itself: musl's sigtimedwait restarts after EINTR with the same
           relative timeout, so a steady stream of handled signals would hold it forever.
           The kernel takes two longs here on every ABI, and a 64-bit mask. */
        struct {
            long tv_sec, tv_nsec;
        } kts;
        int64_t left = ipc_deadline_left(dl);
        if (left != IPC_FOREVER) {
            int64_t sec = left / IPC__NS;
            kts.tv_sec = sec > LONG_MAX ? LONG_MAX : (long)sec;
            kts.tv_nsec = (long)(left % IPC__NS);
        }
        r = (int)syscall(SYS_rt_sigtimedwait, &s, &si, left == IPC_FOREVER ? NULL : &kts,
                         sizeof(uint64_t));
        if (r > 0) break;
        if (errno == EINTR) continue; /* a handled signal: wait for what is left */
        if (errno == EAGAIN) return ipc__expired(dl);
        return ipc__neg_errno();
    }
    if (info) ipc__siginfo_from(info, &si);
    return r;
}

/* ==== 13. Events and process exit ==== >>event */

IPC_API int ipc_event_open(unsigned initial, unsigned flags) {
    int fd;
    if (flags & ~3u) return -EINVAL;
    /* Always non-blocking underneath: ipc_event_wait keeps its deadline even when
       several processes wait on one eventfd. */
    fd = eventfd(initial,
                 EFD_CLOEXEC | EFD_NONBLOCK | ((flags & IPC_EVENT_SEMAPHORE) ? EFD_SEMAPHORE : 0));
    return fd < 0 ? ipc__neg_errno() : fd;
}

IPC_API int ipc_event_post(int fd, uint64_t n) {
    int fl;
    if (n == 0 || n == UINT64_MAX) return -EINVAL;
    if ((fl = fcntl(fd, F_GETFL)) < 0) return ipc__neg_errno();
    for (;;) {
        ssize_t r;
        /* A blocking eventfd from elsewhere would sleep on a full counter: POLLOUT says
           whether 1 more fits (a larger n that does not fit still blocks there). */
        if (!(fl & O_NONBLOCK) && (r = ipc__poll_dl(fd, POLLOUT, 0)) < 0) return (int)r;
        r = write(fd, &n, sizeof n);
        if (r == (ssize_t)sizeof n) return 0;
        if (r >= 0) return -EIO;
        if (errno != EINTR) return errno == EWOULDBLOCK ? -EAGAIN : ipc__neg_errno();
    }
}

IPC_API int ipc_event_wait(int fd, uint64_t *value, int64_t timeout_ns) {
    uint64_t v;
    int r = ipc__read_record(fd, &v, sizeof v, ipc_deadline_make(timeout_ns));
    if (r == 0 && value) *value = v;
    return r;
}

IPC_API int ipc_proc_open(ipc_proc *p, pid_t pid) {
    int fd;
    if (!p) return -EINVAL;
    ipc__proc_reset(p);
    if (pid <= 0) return -EINVAL;
    fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return ipc__neg_errno();
    p->pid = pid;
    p->pidfd = fd;
    return 0;
}

IPC_API int ipc_proc_exited(ipc_proc *p, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns), step = 50000;
    int r;
    if (!p || dl < IPC_FOREVER) return -EINVAL;
    if (p->pid <= 0) return 0; /* reaped */
    if (p->pidfd >= 0) {
        r = ipc__poll_dl(p->pidfd, POLLIN, dl);
        return r < 0 ? r : 0;
    }
    for (;;) { /* no pidfd: a child is looked at without reaping it, others with kill 0 */
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0) {
            if (si.si_pid == p->pid) return 0;
        } else if (errno == ECHILD && kill(p->pid, 0) != 0 && errno == ESRCH) {
            return 0;
        }
        if ((r = ipc__backoff(&step, 10000000, dl)) < 0) return r;
    }
}

/* ==== 14. Semaphores ==== >>sem */

typedef char ipc__sem_fits[sizeof(sem_t) <= IPC_SEM_SIZE ? 1 : -1];

IPC_API int ipc_sem_create(ipc_sem **sem, const char *name, unsigned value, unsigned mode) {
    char qn[NAME_MAX + 2], path[sizeof(IPC__SHM_DIR) + NAME_MAX + 8];
    sem_t *s;
    int r;
    if (!sem) return -EINVAL;
    *sem = NULL;
    if ((r = ipc__mq_name(name, qn)) < 0) return r;
    if (mode == 0) mode = 0600;
    if ((mode & ~0777u) || value > (unsigned)SEM_VALUE_MAX) return -EINVAL;
    s = sem_open(qn, O_CREAT | O_EXCL, (mode_t)mode, value);
    if (s == SEM_FAILED) return ipc__neg_errno();
        /* sem_open applied the umask (so the file was never more open than asked): make the
       mode exact. glibc keeps named semaphores at /dev/shm/sem.NAME, musl at /dev/shm/NAME. */
#ifdef __GLIBC__
    snprintf(path, sizeof path, "%ssem.%s", IPC__SHM_DIR, qn + 1);
#else
    snprintf(path, sizeof path, "%s%s", IPC__SHM_DIR, qn + 1);
#endif
    if (chmod(path, (mode_t)mode) != 0 && errno != ENOENT) {
        r = ipc__neg_errno();
        sem_close(s);
        sem_unlink(qn);
        return r;
    }
    *sem = (ipc_sem *)(void *)s;
    return 0;
}

IPC_API int ipc_sem_open(ipc_sem **sem, const char *name) {
    char qn[NAME_MAX + 2];
    sem_t *s;
    int r;
    if (!sem) return -EINVAL;
    *sem = NULL;
    if ((r = ipc__mq_name(name, qn)) < 0) return r;
    s = sem_open(qn, 0);
    if (s == SEM_FAILED) return ipc__neg_errno();
    *sem = (ipc_sem *)(void *)s;
    return 0;
}

#define IPC__SEM(s) ((sem_t *)(void *)(s))

IPC_API int ipc_sem_close(ipc_sem *sem) {
    if (!sem) return -EINVAL;
    return sem_close(IPC__SEM(sem)) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_sem_unlink(const char *name) {
    char qn[NAME_MAX + 2];
    int r = ipc__mq_name(name, qn);
    if (r < 0) return r;
    return sem_unlink(qn) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_sem_init(void *mem, unsigned value, ipc_sem **sem) {
    if (!mem || ((uintptr_t)mem & 7) || value > (unsigned)SEM_VALUE_MAX) return -EINVAL;
    if (sem_init((sem_t *)mem, 1, value) != 0) return ipc__neg_errno();
    if (sem) *sem = (ipc_sem *)mem;
    return 0;
}

IPC_API int ipc_sem_destroy(ipc_sem *sem) {
    if (!sem) return -EINVAL;
    return sem_destroy(IPC__SEM(sem)) != 0 ? ipc__neg_errno() : 0;
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 30))
#define IPC__HAVE_CLOCKWAIT 1
#endif

IPC_API int ipc_sem_wait(ipc_sem *sem, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    if (!sem || dl < IPC_FOREVER) return -EINVAL;
    for (;;) {
        int r;
        if (dl == IPC_FOREVER)
            r = sem_wait(IPC__SEM(sem));
        else if (dl == 0)
            r = sem_trywait(IPC__SEM(sem));
        else {
#ifdef IPC__HAVE_CLOCKWAIT
            struct timespec ts;
            r = sem_clockwait(IPC__SEM(sem), CLOCK_MONOTONIC, ipc_deadline_timespec(dl, &ts));
#else
            /* No wait on CLOCK_MONOTONIC here: a wall-clock time from the time left. musl
               makes it a relative wait as it starts, so a clock step cannot move it; one
               that ends early (a step during the conversion) is waited again. */
            struct timespec ts;
            r = sem_timedwait(IPC__SEM(sem), ipc_deadline_realtime(dl, &ts));
            if (r != 0 && errno == ETIMEDOUT && ipc_deadline_left(dl) > 0) continue;
#endif
        }
        if (r == 0) return 0;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == ETIMEDOUT) return ipc__expired(dl);
        return ipc__neg_errno();
    }
}

IPC_API int ipc_sem_post(ipc_sem *sem) {
    if (!sem) return -EINVAL;
    return sem_post(IPC__SEM(sem)) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_sem_value(ipc_sem *sem) {
    int v = 0;
    if (!sem) return -EINVAL;
    if (sem_getvalue(IPC__SEM(sem), &v) != 0) return ipc__neg_errno();
    return v < 0 ? 0 : v; /* some libraries report waiters as a negative value */
}

union ipc__semun {
    int val;
    void *buf;
};
typedef char ipc__semop_fits[sizeof(ipc_semop) == sizeof(struct sembuf) &&
                                     offsetof(struct sembuf, sem_op) == offsetof(ipc_semop, op)
                                 ? 1
                                 : -1];

IPC_API int ipc_semset_create(int key, int nsems, unsigned mode) {
    int id;
    if (mode == 0) mode = 0600;
    if (nsems <= 0 || (mode & ~0777u)) return -EINVAL;
    id = semget((key_t)key, nsems, IPC_CREAT | IPC_EXCL | (int)mode);
    return id < 0 ? ipc__neg_errno() : id;
}

IPC_API int ipc_semset_open(int key) {
    int id;
    if (key == IPC_PRIVATE) return -EINVAL; /* semget would make a new set */
    id = semget((key_t)key, 0, 0);
    return id < 0 ? ipc__neg_errno() : id;
}

IPC_API int ipc_semset_remove(int id) {
    return semctl(id, 0, IPC_RMID) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_semset_op(int id, const ipc_semop *ops, size_t n, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    int waited = 0;
    if (!ops || n == 0 || n > 4096 || dl < IPC_FOREVER) return -EINVAL;
    for (;;) {
        int r;
        struct timespec ts;
        struct sembuf *sb = (struct sembuf *)(uintptr_t)ops;
        int64_t left = ipc_deadline_left(dl);
        if (left != IPC_FOREVER) ipc__ns_to_timespec(left, &ts); /* relative, re-armed */
        r = left == IPC_FOREVER ? semop(id, sb, n) : semtimedop(id, sb, n, &ts);
        if (r == 0) return 0;
        if (errno == EINTR) {
            waited = 1;
            continue;
        }
        if (errno == EAGAIN) return ipc__expired(dl);
        if (errno == EIDRM || (errno == EINVAL && waited)) return -EIDRM;
        if (errno == E2BIG || errno == EFBIG) return -EINVAL; /* too many ops, bad num */
        return ipc__neg_errno();
    }
}

IPC_API int ipc_semset_get(int id, int num) {
    int v = semctl(id, num, GETVAL);
    return v < 0 ? ipc__neg_errno() : v;
}

IPC_API int ipc_semset_set(int id, int num, int value) {
    union ipc__semun u;
    u.val = value;
    return semctl(id, num, SETVAL, u) != 0 ? ipc__neg_errno() : 0;
}

/* ==== 15. File locks ==== >>lock */

#ifndef F_OFD_GETLK
#define F_OFD_GETLK  36
#define F_OFD_SETLK  37
#define F_OFD_SETLKW 38
#endif

static int ipc__lock_args(unsigned flags, off_t start, off_t len, int need_type) {
    unsigned type = flags & 3u, kind = flags & 12u;
    if ((flags & ~15u) || kind == 12u || start < 0 || len < 0) return -EINVAL;
    if (need_type && type != IPC_LOCK_SHARED && type != IPC_LOCK_EXCLUSIVE) return -EINVAL;
    if (kind == IPC_LOCK_FLOCK && (start || len)) return -EINVAL;
    return 0;
}

static int ipc__lock_do(int fd, unsigned flags, off_t start, off_t len, short type, int wait) {
    struct flock fl;
    int posix = (flags & IPC_LOCK_POSIX) != 0;
    if (flags & IPC_LOCK_FLOCK) {
        int op = type == F_UNLCK ? LOCK_UN : type == F_RDLCK ? LOCK_SH : LOCK_EX;
        return flock(fd, op | (wait ? 0 : LOCK_NB));
    }
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
    return fcntl(fd, posix ? (wait ? F_SETLKW : F_SETLK) : (wait ? F_OFD_SETLKW : F_OFD_SETLK),
                 &fl);
}

IPC_API int ipc_lock_acquire(int fd, unsigned flags, off_t start, off_t len, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns), step = 50000;
    short type = (flags & 3u) == IPC_LOCK_SHARED ? F_RDLCK : F_WRLCK;
    int r;
    if ((r = ipc__lock_args(flags, start, len, 1)) < 0) return r;
    if (dl < IPC_FOREVER) return -EINVAL;
    for (;;) {
        if (ipc__lock_do(fd, flags, start, len, type, dl == IPC_FOREVER) == 0) return 0;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EACCES && errno != EWOULDBLOCK) return ipc__neg_errno();
        if ((r = ipc__backoff(&step, 5000000, dl)) < 0) return r;
    }
}

IPC_API int ipc_lock_release(int fd, unsigned flags, off_t start, off_t len) {
    int r;
    if ((r = ipc__lock_args(flags, start, len, 0)) < 0) return r;
    return ipc__lock_do(fd, flags, start, len, F_UNLCK, 0) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_lock_query(int fd, unsigned flags, off_t start, off_t len, ipc_lock_info *holder) {
    struct flock fl;
    int r;
    if ((r = ipc__lock_args(flags, start, len, 1)) < 0) return r;
    if (flags & IPC_LOCK_FLOCK) return -EINVAL;
    memset(&fl, 0, sizeof fl);
    fl.l_type = (flags & 3u) == IPC_LOCK_SHARED ? F_RDLCK : F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
    if (fcntl(fd, (flags & IPC_LOCK_POSIX) ? F_GETLK : F_OFD_GETLK, &fl) != 0)
        return ipc__neg_errno();
    if (fl.l_type == F_UNLCK) return 0;
    if (holder) {
        holder->type = fl.l_type == F_RDLCK ? IPC_LOCK_SHARED : IPC_LOCK_EXCLUSIVE;
        holder->start = fl.l_start;
        holder->len = fl.l_len;
        holder->pid = fl.l_pid;
    }
    return 1;
}

IPC_API int ipc_lock_pidfile(const char *path, pid_t *holder) {
    char buf[32];
    struct stat st;
    int fd, r, n;
    if (holder) *holder = 0;
    if (!path || !*path) return -EINVAL;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return ipc__neg_errno();
    r = fstat(fd, &st) != 0 ? ipc__neg_errno() : S_ISREG(st.st_mode) ? 0 : -EINVAL;
    if (r < 0) {
        close(fd);
        return r;
    }
    if ((r = ipc_lock_acquire(fd, IPC_LOCK_EXCLUSIVE, 0, 0, 0)) < 0) {
        if (r == -EAGAIN) { /* running: its pid is in the file */
            ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
            r = -EBUSY;
            if (holder && k > 0) {
                buf[k] = 0;
                *holder = (pid_t)strtol(buf, NULL, 10);
            }
        }
        close(fd);
        return r;
    }
    n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    /* written over the old content, then cut: a reader never finds the file empty */
    if (pwrite(fd, buf, (size_t)n, 0) != n || ftruncate(fd, n) != 0) {
        r = ipc__neg_errno();
        close(fd);
        return r;
    }
    return fd;
}

/* ==== 16. Process-shared mutexes and condition variables ==== >>mutex */

typedef char ipc__mutex_fits[sizeof(pthread_mutex_t) <= IPC_MUTEX_SIZE ? 1 : -1];
#define IPC__MX(m) ((pthread_mutex_t *)(void *)(m))

/* The condition variable: waiters sleep on seq as they read it under the mutex; signal
   and broadcast change it, then wake. Changed under the mutex, seq cannot move between a
   waiter's read and its unlock, so a waiter never sleeps through a signal meant for it. */
typedef struct ipc__cond {
    uint32_t seq;
    uint32_t magic;
    uint32_t spare[2]; /* 4-byte alignment is all the memory promises */
} ipc__cond;
typedef char ipc__cond_fits[sizeof(ipc__cond) <= IPC_COND_SIZE ? 1 : -1];
#define IPC__COND_MAGIC 0x436f6e64u /* "Cond" */

IPC_API int ipc_mutex_init(void *mem, ipc_mutex **m) {
    pthread_mutexattr_t a;
    int r;
    if (!mem || ((uintptr_t)mem & 7)) return -EINVAL;
    if ((r = pthread_mutexattr_init(&a)) != 0) return -r;
    r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (r == 0) r = pthread_mutexattr_setrobust(&a, IPC__MUTEX_ROBUST);
    if (r == 0) r = pthread_mutexattr_settype(&a, IPC__MUTEX_ERRORCHECK);
    if (r == 0) r = pthread_mutex_init((pthread_mutex_t *)mem, &a);
    pthread_mutexattr_destroy(&a);
    if (r != 0) return -r;
    if (m) *m = (ipc_mutex *)mem;
    return 0;
}

static int ipc__mutex_result(int r, int64_t dl) {
    if (r == 0) return 0;
    if (r == EOWNERDEAD) return IPC_MUTEX_RECOVERED;
    if (r == EBUSY || r == ETIMEDOUT) return ipc__expired(dl);
    return -r;
}

/* One attempt that never blocks. Not pthread_mutex_trylock: glibc's leaves a robust mutex
   that is not recoverable locked by the caller (its ENOTRECOVERABLE path unlocks only if
   the CAS found our own tid, never the case after a CAS from 0), and musl's answers EBUSY,
   not EDEADLK, to the holder. A timed lock whose deadline has passed does neither. */
static int ipc__mutex_try(pthread_mutex_t *m) {
    struct timespec past;
    int r;
    past.tv_sec = 0;
    past.tv_nsec = 0;
    r = pthread_mutex_timedlock(m, &past);
    return r == ETIMEDOUT ? EBUSY : r;
}

IPC_API int ipc_mutex_lock(ipc_mutex *m, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    int r;
    if (!m || dl < IPC_FOREVER) return -EINVAL;
    if (dl == IPC_FOREVER) return ipc__mutex_result(pthread_mutex_lock(IPC__MX(m)), dl);
    if (dl == 0) return ipc__mutex_result(ipc__mutex_try(IPC__MX(m)), dl);
#ifdef IPC__HAVE_CLOCKWAIT
    {
        struct timespec ts;
        r = pthread_mutex_clocklock(IPC__MX(m), CLOCK_MONOTONIC, ipc_deadline_timespec(dl, &ts));
        return ipc__mutex_result(r, dl);
    }
#else
    for (;;) { /* as ipc_sem_wait: a wall-clock time from the time left, again if early */
        struct timespec ts;
        r = pthread_mutex_timedlock(IPC__MX(m), ipc_deadline_realtime(dl, &ts));
        if (r != ETIMEDOUT || ipc_deadline_left(dl) == 0) return ipc__mutex_result(r, dl);
    }
#endif
}

IPC_API int ipc_mutex_unlock(ipc_mutex *m) {
    return m ? -pthread_mutex_unlock(IPC__MX(m)) : -EINVAL;
}

IPC_API int ipc_mutex_consistent(ipc_mutex *m) {
    return m ? -pthread_mutex_consistent(IPC__MX(m)) : -EINVAL;
}

IPC_API int ipc_mutex_destroy(ipc_mutex *m) {
    return m ? -pthread_mutex_destroy(IPC__MX(m)) : -EINVAL;
}

static ipc__cond *ipc__cond_of(ipc_cond *c) {
    ipc__cond *cv = (ipc__cond *)(void *)c;
    if (!cv || ((uintptr_t)cv & 3u)) return NULL;
    return __atomic_load_n(&cv->magic, __ATOMIC_RELAXED) == IPC__COND_MAGIC ? cv : NULL;
}

IPC_API int ipc_cond_init(void *mem, ipc_cond **c) {
    ipc__cond *cv = (ipc__cond *)mem;
    if (!cv || ((uintptr_t)cv & 3u)) return -EINVAL;
    memset(cv, 0, sizeof *cv);
    __atomic_store_n(&cv->magic, IPC__COND_MAGIC, __ATOMIC_RELEASE);
    if (c) *c = (ipc_cond *)mem;
    return 0;
}

IPC_API int ipc_cond_wait(ipc_cond *c, ipc_mutex *m, int64_t timeout_ns) {
    int64_t dl = ipc_deadline_make(timeout_ns);
    if (dl < IPC_FOREVER) return -EINVAL;
    return ipc_cond_wait_until(c, m, dl);
}

IPC_API int ipc_cond_wait_until(ipc_cond *c, ipc_mutex *m, int64_t dl) {
    ipc__cond *cv = ipc__cond_of(c);
    uint32_t seq;
    int r, w;
    if (!cv || !m || dl < IPC_FOREVER) return -EINVAL;
    seq = __atomic_load_n(&cv->seq, __ATOMIC_ACQUIRE);
    if ((r = ipc_mutex_unlock(m)) < 0) return r;
    w = ipc_futex_wait_until(&cv->seq, seq, dl);
    r = ipc_mutex_lock(m, IPC_FOREVER); /* relocked on every path, as pthread does */
    if (r != 0) return r;               /* IPC_MUTEX_RECOVERED or the lock's error */
    return w < 0 ? w : 0;               /* woken, or seq moved: both are a wake-up */
}

static int ipc__cond_wake(ipc_cond *c, int n) {
    ipc__cond *cv = ipc__cond_of(c);
    int r;
    if (!cv) return -EINVAL;
    __atomic_fetch_add(&cv->seq, 1u, __ATOMIC_SEQ_CST);
    r = ipc_futex_wake(&cv->seq, n);
    return r < 0 ? r : 0;
}

IPC_API int ipc_cond_signal(ipc_cond *c) {
    return ipc__cond_wake(c, 1);
}

IPC_API int ipc_cond_broadcast(ipc_cond *c) {
    return ipc__cond_wake(c, INT_MAX);
}

IPC_API int ipc_cond_destroy(ipc_cond *c) {
    ipc__cond *cv = ipc__cond_of(c);
    if (!cv) return -EINVAL;
    __atomic_store_n(&cv->magic, 0u, __ATOMIC_RELEASE);
    return 0;
}

/* ==== 17. Pseudoterminals ==== >>pty */

#ifndef TIOCGPTPEER
#define TIOCGPTPEER 0x5441
#endif

IPC_API int ipc_pty_set_raw(int fd) {
    struct termios t;
    if (tcgetattr(fd, &t) != 0) return ipc__neg_errno();
    cfmakeraw(&t);
    return tcsetattr(fd, TCSANOW, &t) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_pty_set_size(int fd, unsigned short rows, unsigned short cols) {
    struct winsize w;
    memset(&w, 0, sizeof w);
    w.ws_row = rows;
    w.ws_col = cols;
    return ioctl(fd, TIOCSWINSZ, &w) != 0 ? ipc__neg_errno() : 0;
}

IPC_API int ipc_pty_open(ipc_pty *p, const ipc_pty_opts *opts) {
    int r = 0;
    if (!p) return -EINVAL;
    memset(p, 0, sizeof *p);
    p->slave = -1;
    p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (p->master < 0) return ipc__neg_errno();
    if (grantpt(p->master) != 0 || unlockpt(p->master) != 0)
        r = ipc__neg_errno();
    else if ((r = ptsname_r(p->master, p->name, sizeof p->name)) != 0)
        r = r > 0 ? -r : -EIO; /* the error number is returned, not (only) in errno */
    if (r == 0) { /* the peer by the master itself where the kernel can (4.13+): no path race */
        p->slave = ioctl(p->master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (p->slave < 0) p->slave = open(p->name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (p->slave < 0) r = ipc__neg_errno();
    }
    if (r == 0)
        r = ipc_pty_set_size(p->slave, opts && opts->rows ? opts->rows : 24,
                             opts && opts->cols ? opts->cols : 80);
    if (r == 0 && opts && opts->raw) r = ipc_pty_set_raw(p->slave);
    if (r < 0) {
        ipc_fd_close(&p->slave);
        ipc_fd_close(&p->master);
    }
    return r;
}

IPC_API int ipc_pty_spawn(ipc_pty *p, ipc_proc *proc, const char *file, char *const argv[],
                          const ipc_spawn_opts *opts) {
    int r;
    if (!p || p->master < 0 || !p->name[0]) return -EINVAL;
    if (p->slave < 0) return -EBUSY; /* the terminal already controls a session */
    r = ipc__spawn(proc, file, argv, opts, p->name);
    if (r == 0) ipc_fd_close(&p->slave);
    return r;
}

IPC_API ssize_t ipc_pty_read(ipc_pty *p, void *buf, size_t cap, int64_t timeout_ns) {
    ssize_t r;
    if (!p) return -EINVAL;
    r = ipc_fd_read_some(p->master, buf, cap, timeout_ns);
    return r == -EIO ? -EPIPE : r; /* no slave left open */
}

IPC_API int ipc_pty_close(ipc_pty *p) {
    int a, b;
    if (!p) return -EINVAL;
    a = ipc_fd_close(&p->slave);
    b = ipc_fd_close(&p->master);
    return a < 0 ? a : b;
}

#endif /* IPC_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
MIT License

Copyright (c) 2026 the ipc.h authors

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
*/
