/* tests/cov_exit.c - linked only into the coverage build (make coverage), together with
   -Wl,--wrap=_exit. Every test runs in a forked child that ends with _exit (and tests fork
   children of their own that do too); _exit skips the atexit hook that writes the gcov
   counters, so whatever those processes executed would never be counted. The wrapper
   writes the counters first. A process killed by a signal still loses its counts. */
void __gcov_dump(void);
void __real__exit(int code) __attribute__((noreturn));
void __wrap__exit(int code) __attribute__((noreturn));

void __wrap__exit(int code) {
    __gcov_dump();
    __real__exit(code);
}
