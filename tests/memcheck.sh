#!/bin/sh
# tests/memcheck.sh - the suite under valgrind --tool=memcheck: `make memcheck` runs every
# test, tests/suite.sh a fast subset of single-process tests. Each test runs alone in the
# runner's own process (--in-process); the peers it forks run under memcheck too, each with
# a log of its own. Judged: invalid accesses, uninitialised bytes used or passed to the
# kernel, bad frees, in any process of the test; definite leaks in the test's own process
# only, since peers end with _exit or SIGKILL holding what their parent allocated before
# the fork, which would read as leaks that are not.
#   tests/memcheck.sh [PATTERN...]   only the tests matching a pattern
#   MEMCHECK_SRCS="tests/test_x.c ..."   build only these test files (with the harness)
# A memcheck error fails the run. A test that fails or times out under valgrind for other
# reasons (it runs 20-50 times slower, and valgrind's own fds and mappings upset the
# leak-count tests) is listed but not counted; MEMCHECK_STRICT=1 counts it as a failure
# (the subset in suite.sh runs so).
set -u
set -f
PATTERNS="$*"
cd "$(dirname "$0")/.." || exit 2
B=build/memcheck
T=${MEMCHECK_TIMEOUT:-120}
WARN="-Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes"
set +f
SRCS="tests/harness.c ${MEMCHECK_SRCS:-$(echo tests/test_*.c)}"
set -f
command -v valgrind >/dev/null 2>&1 || {
    echo "memcheck: valgrind not installed"
    exit 2
}
mkdir -p "$B"
# shellcheck disable=SC2086
gcc -std=gnu11 -O1 -g $WARN -I. $SRCS -o "$B/test" -pthread || exit 1
VG="valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite
    --errors-for-leak-kinds=none --suppressions=tests/valgrind.supp --log-file=$B/vg.%p"
# shellcheck disable=SC2086
tests=$("$B/test" -l $PATTERNS)
[ -n "$tests" ] || {
    echo "memcheck: no test matches"
    exit 2
}
ok=0 skip=0 bad=0 other=0
t0=$(date +%s)
set +f # from here on, globs are for the logs
for t in $tests; do
    rm -f "$B"/vg.*
    # shellcheck disable=SC2086
    timeout -k 5 "$T" $VG "$B/test" --in-process "$t" >"$B/log" 2>&1
    rc=$?
    # The test's own log: the one whose parent (timeout) left none.
    main=
    errs=
    for f in "$B"/vg.*; do
        [ -f "$f" ] || continue
        ppid=$(sed -n 's/^==[0-9]*== Parent PID: \([0-9]*\)$/\1/p' "$f")
        [ -f "$B/vg.$ppid" ] || main=$f
        grep -q '^==[0-9]*== ERROR SUMMARY: [1-9]' "$f" && errs="$errs $f"
    done
    leak=
    if [ -n "$main" ] && [ "$rc" -eq 0 ] &&
        grep -q '^==[0-9]*==    definitely lost: [1-9]' "$main"; then
        leak=$main
    fi
    if [ -n "$errs$leak" ] || { [ "$rc" -gt 128 ] && [ "$rc" -ne 137 ]; }; then
        bad=$((bad + 1))
        echo "  MEMCHECK  $t (rc $rc)"
        for f in $errs $leak; do
            grep -v -e '^==[0-9]*== *$' -e 'Memcheck, a memory' -e 'Copyright (C)' \
                -e 'Using Valgrind' -e 'Command:' -e 'Parent PID' "$f" | head -n 40 |
                sed 's/^/        /'
        done
        [ -n "$errs$leak" ] || tail -n 15 "$B/log" | sed 's/^/        /'
    elif [ "$rc" -eq 0 ]; then
        ok=$((ok + 1))
    elif [ "$rc" -eq 77 ]; then
        skip=$((skip + 1))
    else
        other=$((other + 1))
        if [ "${MEMCHECK_STRICT:-0}" = 1 ]; then
            echo "  FAIL  $t under valgrind (rc $rc)"
            tail -n 15 "$B/log" | sed 's/^/        /'
        else
            echo "  not judged  $t: failed or timed out under valgrind (rc $rc)"
        fi
    fi
done
echo "memcheck: $ok clean, $bad with memory errors, $other failed otherwise, $skip skipped" \
    "($(($(date +%s) - t0)) s)"
[ "$bad" -eq 0 ] || exit 1
[ "${MEMCHECK_STRICT:-0}" != 1 ] || [ "$other" -eq 0 ]
