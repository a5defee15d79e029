/* tests/fuzz/replay.c - runs a harness over saved inputs without libFuzzer, so that any
   compiler (gcc with ASan+UBSan in `make test`) can replay the committed corpus:

       replay FILE|DIR...   each file is one input; a directory, every file in it

   Every input gets a fresh copy of exactly its size (ASan sees a read past the end) and
   10 s (a hang is a failure: SIGALRM kills the run). Exits 0 after the last input. */
#include "fuzz.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (!f) {
        perror(path);
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        perror(path);
        return -1;
    }
    buf = (uint8_t *)malloc(n ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        fprintf(stderr, "%s: cannot read\n", path);
        return -1;
    }
    fclose(f);
    fprintf(stderr, "replay %s (%ld bytes)\n", path, n);
    alarm(10);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    alarm(0);
    free(buf);
    return 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files of a directory in name order: a failure replays the same way every time. */
static int replay_dir(const char *dir, int *count) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0, i;
    int rc = 0;
    if (!d) {
        perror(dir);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            char **nn = (char **)realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        names[n] = (char *)malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (!names[n]) break;
        sprintf(names[n], "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_names);
    for (i = 0; i < n; i++) {
        if (rc == 0 && replay_file(names[i]) != 0) rc = -1;
        if (rc == 0) ++*count;
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv) {
    int i, count = 0;
    signal(SIGALRM, SIG_DFL);
    for (i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 2;
        }
        if (S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count) != 0
                                : (replay_file(argv[i]) != 0 || (++count, 0)))
            return 2;
    }
    printf("replayed %d inputs\n", count);
    return 0;
}
