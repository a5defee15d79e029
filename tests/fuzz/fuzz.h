/* tests/fuzz/fuzz.h - what the fuzz harnesses share: a reader that turns the fuzzer's bytes
   into choices (running out of bytes reads zeros, so every input is a valid program), a
   failure macro that aborts (libFuzzer and the replay driver both report the input), and
   the fd count used for leak checks. Each harness is one .c file that defines
   LLVMFuzzerTestOneInput and includes the implementation of ipc.h. */
#ifndef IPC_FUZZ_H
#define IPC_FUZZ_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;

static inline unsigned fz_u8(fz_in *in) {
    unsigned v = 0;
    if (in->n) {
        v = *in->p++;
        in->n--;
    }
    return v;
}

static inline unsigned fz_u16(fz_in *in) {
    unsigned v = fz_u8(in);
    return v | fz_u8(in) << 8;
}

static inline uint32_t fz_u32(fz_in *in) {
    uint32_t v = fz_u16(in);
    return v | (uint32_t)fz_u16(in) << 16;
}

static inline uint64_t fz_u64(fz_in *in) {
    uint64_t v = fz_u32(in);
    return v | (uint64_t)fz_u32(in) << 32;
}

/* Up to n bytes into out; the rest (input exhausted) is zero. */
static inline void fz_bytes(fz_in *in, void *out, size_t n) {
    size_t k = n < in->n ? n : in->n;
    memcpy(out, in->p, k);
    memset((char *)out + k, 0, n - k);
    in->p += k;
    in->n -= k;
}

#define FZ_FAIL(...)                                                                               \
    do {                                                                                           \
        fprintf(stderr, "FUZZ FAILURE %s:%d: ", __FILE__, __LINE__);                               \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        fflush(stderr);                                                                            \
        abort();                                                                                   \
    } while (0)

#define FZ_CHECK(c, ...)                                                                           \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "CHECK(%s)\n", #c);                                                    \
            FZ_FAIL(__VA_ARGS__);                                                                  \
        }                                                                                          \
    } while (0)

/* Entries in /proc/self/fd (the directory's own fd excluded). */
static inline int fz_fd_count(void) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1;
}

/* Mappings of memfds (rings, and the objects the harnesses make) still in the address
   space: 0 once an input has closed everything. Reads without allocating, so that the
   count does not disturb what it counts. */
#include <fcntl.h>
#include <unistd.h>
static inline int fz_memfd_maps(void) {
    static const char key[] = "/memfd:";
    char buf[4096];
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC), n = 0;
    size_t k = 0;
    ssize_t r, i;
    if (fd < 0) return -1;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        for (i = 0; i < r; i++) { /* a match may span two reads: k carries it over */
            k = buf[i] == key[k] ? k + 1 : buf[i] == key[0] ? 1 : 0;
            if (k == sizeof key - 1) {
                n++;
                k = 0;
            }
        }
    close(fd);
    return n;
}

#endif
