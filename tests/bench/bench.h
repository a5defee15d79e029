/* tests/bench/bench.h - what every benchmark program says about the machine it ran on,
   so that a figure is never read without it. Header-only, C and C++. */
#ifndef IPC_BENCH_H
#define IPC_BENCH_H

#include <stdio.h>
#include <string.h>

/* The CPU's model name from /proc/cpuinfo, or "unknown CPU". */
static inline void bench_cpu_model(char *out, size_t n) {
    char line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(out, n, "unknown CPU");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            const char *c = strchr(line, ':');
            if (c) snprintf(out, n, "%.*s", (int)strcspn(c + 2, "\n"), c + 2);
            break;
        }
    if (f) fclose(f);
}

/* The first `count` (1 to 3) load averages from /proc/loadavg, or "?". */
static inline void bench_loadavg(char *out, size_t n, int count) {
    char line[256];
    FILE *f = fopen("/proc/loadavg", "r");
    size_t end = 0;
    int sp = 0;
    snprintf(out, n, "?");
    if (!f) return;
    if (fgets(line, sizeof line, f)) {
        while (line[end] && !(line[end] == ' ' && ++sp == count))
            end++;
        snprintf(out, n, "%.*s", (int)end, line);
    }
    fclose(f);
}

#endif
