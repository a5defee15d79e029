# ipc.h - build, test, demo, bench. `make help` lists the targets.
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes
PREFIX  ?= /usr/local
B       := build
FORMAT  := ipc.h $(wildcard tests/*.c tests/*.h tests/compile/*.c tests/compile/*.cpp \
                            tests/bench/*.[ch] tests/bench/peers/*.[ch] tests/bench/peers/*.cpp \
                            examples/*.c)
FORMAT  += $(wildcard tests/fuzz/*.c tests/fuzz/*.h)
EXAMPLES := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))
BENCHES  := $(patsubst tests/bench/%.c,$(B)/bench/%,$(wildcard tests/bench/*.c))
VERSION  := $(shell sed -n 's/^\#define IPC_VERSION_\(MAJOR\|MINOR\|PATCH\) *\([0-9]*\)/\2/p' ipc.h | paste -sd.)

.PHONY: FORCE all benches test demo bench format format-check install uninstall clean help

all: $(EXAMPLES)

benches: $(BENCHES)

help:
	@echo "make            build the examples into $(B)/examples (make benches: the benchmarks)"
	@echo "make test       format check, compile matrix, suite under gcc/clang/ASan/musl/-m32"
	@echo "make test T=shm_   only the tests whose names match (glob or substring)"
	@echo "make demo       build and run every example, a guided tour"
	@echo "make bench      every mechanism side by side: a table, bench.md, bench.csv (< 2 min;"
	@echo "                BENCH=full: more samples; never fails on a number)"
	@echo "make plot       bench-latency.png, bench-throughput.png from bench.csv (gnuplot)"
	@echo "make bench-ring the ring's deep dives: against its floors, its kinds scaling"
	@echo "make bench-peers  the ring against Boost.Interprocess, ZeroMQ, nng (those installed)"
	@echo "make crashtest  SIGKILL at random and at ipc.h's kill points, an oracle per round"
	@echo "                (CRASH_ROUNDS=10000; CRASH_FLAGS=-q: failures only; --seed S replays)"
	@echo "make coverage   line and branch coverage of ipc.h's implementation (gcov), by section"
	@echo "make memcheck   every test under valgrind memcheck, one at a time (long: ~20 min)"
	@echo "make fuzz       each libFuzzer harness of tests/fuzz in turn, FUZZ_SECONDS=60 each"
	@echo "                (clang; new inputs in $(B)/fuzz/corpus, failures in $(B)/fuzz/artifacts)"
	@echo "make fuzz-replay  the committed corpus through every harness, without libFuzzer"
	@echo "make verify     model-check the rings' wake-up protocol (tests/model, spin)"
	@echo "make format     clang-format every source; format-check only checks"
	@echo "make install PREFIX=/usr/local   ipc.h and ipc.pc; make uninstall"

$(B)/examples/%: examples/%.c ipc.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -I. $< -o $@ -pthread

$(B)/bench/%: tests/bench/%.c tests/bench/bench.h ipc.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -g $(WARN) -I. $< -o $@ -pthread

test:
	@sh tests/suite.sh $(T)

demo: $(EXAMPLES)
	@for e in $(EXAMPLES); do \
	    echo; echo "=== $$e"; \
	    timeout 60 $$e || { echo "demo $$e failed"; exit 1; }; \
	done; echo; echo "demo: every example ran"

# The comparison of every mechanism (tests/bench/compare.c); the ring's own, longer
# benchmarks run with bench-ring.
bench: $(B)/bench/compare
	@$(B)/bench/compare || true

.PHONY: bench-ring plot
bench-ring: $(B)/bench/ring $(B)/bench/ringmp
	@for b in $^; do $$b || true; done

plot:
	@if command -v gnuplot >/dev/null; then gnuplot tests/bench/plot.gp && \
	    echo "wrote bench-latency.png, bench-throughput.png"; \
	else echo "plot: gnuplot is not installed (apt-get install gnuplot-nox)"; fi

# One program per library, each built only if the library is installed; BENCH=full: longer.
.PHONY: bench-peers
bench-peers:
	@CC="$(CC)" CXX="$(CXX)" sh tests/bench/peers/run.sh $(B)/peers

# Crash test: rounds of processes killed with SIGKILL (tests/crash/crashtest.c says how);
# the kill points inside ipc.h exist in this build only (IPC_TEST_KILLPOINTS).
CRASH_ROUNDS ?= 10000
.PHONY: crashtest
crashtest: $(B)/crash/crashtest
	$(B)/crash/crashtest -n $(CRASH_ROUNDS) $(CRASH_FLAGS)

$(B)/crash/crashtest: tests/crash/crashtest.c ipc.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -g $(WARN) -DIPC_TEST_KILLPOINTS -I. $< -o $@ -pthread

# Model checking of the rings' wake-up protocol (tests/model/README); CHECK=name: one.
.PHONY: verify
verify:
	@sh tests/model/verify.sh $(CHECK)

# Coverage (tests/coverage.sh: gcc --coverage, a summary by section, the lines never run)
# and valgrind memcheck of each test in its own process (tests/memcheck.sh); T= as for test.
.PHONY: coverage memcheck
coverage:
	@sh tests/coverage.sh $(T)

memcheck:
	@sh tests/memcheck.sh $(T)

# Fuzzing (tests/fuzz/*.c, libFuzzer from clang). ring.c is built once per ring kind.
# make fuzz: each harness FUZZ_SECONDS in turn, from the committed corpus; what it adds
# goes to $(B)/fuzz/corpus, never into tests/fuzz/corpus. make fuzz-replay: the committed
# corpus through each harness built with $(CC) and ASan+UBSan but no libFuzzer
# (tests/fuzz/replay.c), as make test does.
FUZZ_SECONDS ?= 60
FUZZERS  := ring_spsc ring_mpmc ring_mpsc ring_broadcast frame endpoint fdpass
FUZZ_CC  ?= clang
FZ_FLAGS := -std=gnu11 -g $(WARN) -I. -fno-sanitize-recover=all
FZ_DEPS  := ipc.h tests/fuzz/fuzz.h
FZ_KIND_spsc := 0
FZ_KIND_mpmc := 1
FZ_KIND_mpsc := 2
FZ_KIND_broadcast := 3
.PHONY: fuzz fuzz-replay

fuzz: $(FUZZERS:%=$(B)/fuzz/bin/%)
	@mkdir -p $(B)/fuzz/artifacts
	@for f in $(FUZZERS); do \
	    mkdir -p $(B)/fuzz/corpus/$$f; \
	    case $$f in frame) len=2048;; endpoint) len=300;; *) len=512;; esac; \
	    echo "== fuzz $$f for $(FUZZ_SECONDS) s"; \
	    $(B)/fuzz/bin/$$f -max_total_time=$(FUZZ_SECONDS) -timeout=20 -max_len=$$len \
	        -print_final_stats=1 -artifact_prefix=$(B)/fuzz/artifacts/$$f- \
	        $(B)/fuzz/corpus/$$f tests/fuzz/corpus/$$f 2>$(B)/fuzz/$$f.log || { \
	        tail -n 40 $(B)/fuzz/$$f.log; echo "fuzz: $$f failed, input in $(B)/fuzz/artifacts"; \
	        exit 1; }; \
	    grep '^stat::' $(B)/fuzz/$$f.log; \
	done

fuzz-replay: $(FUZZERS:%=$(B)/fuzz/replay/%)
	@for f in $(FUZZERS); do \
	    printf '%-16s ' $$f; \
	    $(B)/fuzz/replay/$$f tests/fuzz/corpus/$$f 2>$(B)/fuzz/replay/$$f.log || { \
	        tail -n 40 $(B)/fuzz/replay/$$f.log; echo "fuzz-replay: $$f failed"; exit 1; }; \
	done

$(B)/fuzz/bin/ring_%: tests/fuzz/ring.c $(FZ_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FZ_FLAGS) -O1 -fsanitize=fuzzer,address,undefined -DFZ_KIND=$(FZ_KIND_$*) \
	    $< -o $@ -pthread

$(B)/fuzz/bin/%: tests/fuzz/%.c $(FZ_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FZ_FLAGS) -O1 -fsanitize=fuzzer,address,undefined $< -o $@ -pthread

$(B)/fuzz/replay/ring_%: tests/fuzz/ring.c tests/fuzz/replay.c $(FZ_DEPS)
	@mkdir -p $(@D)
	$(CC) $(FZ_FLAGS) -O0 -fsanitize=address,undefined -DFZ_KIND=$(FZ_KIND_$*) $< \
	    tests/fuzz/replay.c -o $@ -pthread

$(B)/fuzz/replay/%: tests/fuzz/%.c tests/fuzz/replay.c $(FZ_DEPS)
	@mkdir -p $(@D)
	$(CC) $(FZ_FLAGS) -O0 -fsanitize=address,undefined $< tests/fuzz/replay.c -o $@ -pthread

format:
	clang-format -i $(FORMAT)

format-check:
	@clang-format --dry-run --Werror $(FORMAT)

$(B)/ipc.pc: ipc.h Makefile FORCE
	@mkdir -p $(@D)
	@printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include' '' \
	    'Name: ipc.h' 'Description: Linux inter-process communication in one header' \
	    'Version: $(VERSION)' 'Cflags: -I$${includedir}' 'Libs: -pthread' > $@

install: $(B)/ipc.pc
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 ipc.h $(DESTDIR)$(PREFIX)/include/ipc.h
	install -m 644 $(B)/ipc.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/ipc.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/ipc.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/ipc.pc

clean:
	rm -rf $(B) bench.csv bench.md bench-*.png
