#!/bin/sh
# tests/suite.sh - what `make test` runs. Checks the format, compiles ipc.h in every
# supported dialect and mode, then builds and runs the test suite with gcc, clang,
# gcc under ASan+UBSan, musl-gcc and gcc -m32 (the last two when installed). Each
# compile check counts as one test. Ends with "N passed, N failed" over everything.
#   tests/suite.sh [PATTERN...]   run only the tests matching PATTERN in each suite
set -u
set -f # test patterns are globs for the runner, not for the shell
PATTERNS="$*"
cd "$(dirname "$0")/.." || exit 2

B=build/test
BASE="-Wall -Wextra -Wpedantic -Werror -Wshadow"
CXXWARN="$BASE -Wsign-conversion"
WARN="$BASE -Wstrict-prototypes"
STRICT="$WARN -Wsign-conversion -Wconversion -Wcast-qual -Wmissing-prototypes"
set +f
SRCS="tests/harness.c $(echo tests/test_*.c)"
set -f
passed=0
failed=0
skipped=0
mkdir -p "$B"

ok() { passed=$((passed + 1)); printf '  ok    %s\n' "$1"; }
bad() { failed=$((failed + 1)); printf '  FAIL  %s\n' "$1"; sed 's/^/        /' "$B/log" | head -n 30; }
skip() { skipped=$((skipped + 1)); printf 'skipped: %s\n' "$1"; }
have() { command -v "$1" >/dev/null 2>&1; }

# check NAME CMD...: one test that passes when CMD succeeds.
check() {
    name=$1
    shift
    if "$@" >"$B/log" 2>&1; then ok "$name"; else bad "$name"; fi
}

# compile NAME OUT COMPILER FLAGS... SOURCES: build, then run the result.
compile() {
    name=$1 out=$2
    shift 2
    if "$@" -o "$out" >"$B/log" 2>&1 && "$out" >>"$B/log" 2>&1; then ok "$name"; else bad "$name"; fi
}

echo "== format"
check "format-check" make -s format-check

echo "== compile matrix"
C=tests/compile
for cc in gcc clang; do
    have $cc || { skip "$cc not installed"; continue; }
    for std in c99 c11 gnu11; do
        compile "$cc -std=$std" "$B/impl-$cc-$std" $cc -std=$std $STRICT $C/impl.c
    done
    for std in c99 gnu11; do
        compile "$cc -std=$std, headers first" "$B/hf-$cc-$std" $cc -std=$std $STRICT \
            $C/headers_first.c -pthread
        compile "$cc -std=$std, headers first, _GNU_SOURCE" "$B/hfg-$cc-$std" $cc -std=$std \
            -D_GNU_SOURCE $STRICT $C/headers_first.c -pthread
    done
    compile "$cc -std=c99, crash-test kill points" "$B/kp-$cc" $cc -std=c99 -DIPC_TEST_KILLPOINTS \
        $STRICT $C/impl.c
    compile "$cc IPC_STATIC in two TUs" "$B/static-$cc" $cc $STRICT $C/static_a.c $C/static_b.c
    compile "$cc declarations + implementation TUs" "$B/two-$cc" $cc $STRICT $C/decl_only.c \
        $C/impl_twice.c
done
if have g++; then
    compile "g++ -std=c++11" "$B/cxx-gxx" g++ -std=c++11 $CXXWARN $C/cxx.cpp
else skip "g++ not installed"; fi
if have clang++; then
    compile "clang++ -std=c++20" "$B/cxx-clangxx" clang++ -std=c++20 $CXXWARN $C/cxx.cpp
else skip "clang++ not installed"; fi

echo "== examples and benchmarks"
check "examples build" make -s all
check "benchmarks build" make -s benches
check "every example runs (make demo)" make -s demo

# suite LABEL COMPILER FLAGS...: build the suite and run it (under $RUN, if set).
RUN=
suite() {
    label=$1
    shift
    echo "== suite: $label"
    mkdir -p "$B/$label"
    if ! "$@" -I. $SRCS -o "$B/$label/test" -pthread >"$B/log" 2>&1; then
        bad "build $label"
        return
    fi
    $RUN "$B/$label/test" --label "$label" $PATTERNS | tee "$B/$label/out"
    line=$(grep "^$label: .* passed, .* failed" "$B/$label/out" | tail -n 1)
    if [ -z "$line" ]; then
        failed=$((failed + 1))
        echo "  FAIL  $label: the runner died before its summary"
        return
    fi
    set -- $line
    passed=$((passed + $2))
    failed=$((failed + $4))
    skipped=$((skipped + $6))
}
suite gcc gcc -std=gnu11 -O2 -g $WARN
if have clang; then suite clang clang -std=gnu11 -O2 -g $WARN; else skip "clang not installed"; fi
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
suite asan gcc -std=gnu11 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
    -fno-omit-frame-pointer $WARN
if have musl-gcc; then
    suite musl musl-gcc -std=gnu11 -O2 -g $WARN
else
    skip "musl-gcc not installed (apt-get install musl-tools)"
fi
if echo 'int main(void){return 0;}' | gcc -m32 -x c - -o "$B/m32probe" >/dev/null 2>&1; then
    if "$B/m32probe" 2>/dev/null; then
        suite m32 gcc -m32 -std=gnu11 -O2 -g $WARN
    elif command -v qemu-i386-static >/dev/null 2>&1; then
        # The kernel runs no i386 binaries (no IA32 emulation): emulate the CPU instead.
        RUN=qemu-i386-static
        suite m32 gcc -m32 -std=gnu11 -O2 -g $WARN
        RUN=
    else
        check "gcc -m32 builds the suite" gcc -m32 -std=gnu11 $WARN -I. $SRCS -o "$B/m32test" -pthread
        skip "gcc -m32 suite not run: no IA32 emulation in this kernel, no qemu-i386-static"
    fi
else
    skip "gcc -m32 cannot link (apt-get install gcc-multilib)"
fi

echo "== crash test (make crashtest runs the long one)"
check "crashtest (short, 250 rounds)" make -s crashtest CRASH_ROUNDS=250 CRASH_FLAGS=-q

echo "== static analysis (ipc.h's implementation: tests/analyze.c)"
if have cppcheck; then
    # One configuration (gcc, Linux, x86-64) instead of every #ifdef combination; false
    # positives are listed, with their reasons, in the suppressions file.
    check "cppcheck" cppcheck -q --std=c11 --enable=warning,performance,portability \
        --library=posix --library=gnu -D__GNUC__=12 -D__linux__ -D__x86_64__ --inline-suppr \
        --suppress-xml=tests/cppcheck-suppressions.xml --error-exitcode=1 tests/analyze.c
else skip "cppcheck not installed"; fi
if have clang-tidy; then
    check "clang-tidy (.clang-tidy)" sh tests/tidy.sh
else skip "clang-tidy not installed"; fi

# ThreadSanitizer, on the tests whose threads share a ring in one process (harness.h says
# why only those). Left out: ringpoll_api_fd_and_thread_lifetime and _no_leak_repeated,
# which count the process's threads (TSan starts one of its own).
if have clang; then
    tsan_srcs=$SRCS tsan_patterns=$PATTERNS
    SRCS="tests/harness.c tests/test_threads.c tests/test_ringpoll.c tests/test_frame.c"
    [ -n "$PATTERNS" ] || PATTERNS="threads_ ringpoll_[!a]* ringpoll_api_[!fn]*
        ringpoll_api_fork_copy frame_socketpair_send_and_recv_threads"
    export TSAN_OPTIONS=suppressions=tests/tsan.supp
    suite tsan clang -std=gnu11 -O1 -g -fsanitize=thread $WARN
    unset TSAN_OPTIONS
    SRCS=$tsan_srcs PATTERNS=$tsan_patterns
else skip "clang not installed: no tsan suite"; fi

# valgrind memcheck of a fast subset, each test in a process of its own (tests/memcheck.sh;
# make memcheck runs every test): the rings from threads and records of every size, framing
# resumed mid-frame, fd passing in parts, relative paths, ipc_strerror's table.
echo "== memcheck (valgrind)"
if have valgrind; then
    set +f
    mc_srcs="$(echo tests/test_cov_*.c) tests/test_threads.c tests/test_frame.c tests/test_ring.c"
    set -f
    check "memcheck (a subset; make memcheck runs all)" env MEMCHECK_STRICT=1 \
        MEMCHECK_SRCS="$mc_srcs" sh tests/memcheck.sh cov_ threads_mpmc threads_broadcast_lossless \
        threads_pollfd frame_recv_resume_header frame_recv_resume_payload ring_message_sizes \
        ring_reserve_commit_peek_release_rules ring_recv_buffer_too_small_keeps_message
else skip "valgrind not installed: no memcheck"; fi

# Coverage: the tool on the coverage tests alone (build, gcov, the report by section);
# make coverage runs the whole suite and judges it against 90% of lines, 80% of branches.
echo "== coverage (make coverage judges the whole suite)"
if have gcov; then
    check "coverage report (the cov_ tests)" sh tests/coverage.sh cov_
else skip "gcov not installed: no coverage"; fi

# The committed fuzz corpus, replayed by each harness built with gcc and ASan+UBSan but
# without libFuzzer (tests/fuzz/replay.c); make fuzz searches for more.
echo "== fuzz corpus (tests/fuzz)"
for f in ring_spsc ring_mpmc ring_mpsc ring_broadcast frame endpoint fdpass; do
    check "fuzz corpus: $f" sh -c "make -s CC=gcc build/fuzz/replay/$f &&
        build/fuzz/replay/$f tests/fuzz/corpus/$f"
done

# The rings' wake-up protocol, model-checked (tests/model; make verify runs every check).
echo "== model checks (tests/model, spin)"
if have spin; then
    check "model: no lost wake-up (SPSC)" sh tests/model/verify.sh spsc-lost
    check "model: no deadlock (SPSC)" sh tests/model/verify.sh spsc-deadlock
    check "model: close always observed (SPSC)" sh tests/model/verify.sh spsc-close
    check "model: death always observed (SPSC)" sh tests/model/verify.sh spsc-death
    check "model: first sleep, late only by its timer" sh tests/model/verify.sh spsc-first-sleep
    check "model: no lost wake-up, several sleepers (MPMC, broadcast)" \
        sh tests/model/verify.sh mp-lost bc-lost
    check "model: mutants are caught" sh tests/model/verify.sh mutant-no-waitcheck \
        mutant-no-recheck mutant-no-mb mutant-close-nowake mutant-mp-reset
else skip "spin not installed (apt-get install spin): no model checks"; fi

echo "== total ($skipped skipped)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
