#!/bin/sh
# tests/coverage.sh - what `make coverage` runs: builds the suite with gcc --coverage at
# -O0, runs it, and summarises line and branch coverage of ipc.h's implementation part
# (from "#if defined(IPC_IMPLEMENTATION)" to its #endif) by section, then lists the lines
# never run. Fails when the whole suite covers less than COV_LINES % of the lines or
# COV_BRANCHES % of the branch outcomes (defaults 90 and 80).
#   tests/coverage.sh [PATTERN...]   run only matching tests (no threshold check then)
# Writes build/coverage/ipc.h.gcov (annotated source: "#####" = line never run).
set -u
set -f
PATTERNS="$*"
cd "$(dirname "$0")/.." || exit 2
B=build/coverage
COV_LINES=${COV_LINES:-90}
COV_BRANCHES=${COV_BRANCHES:-80}
WARN="-Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes"
set +f
SRCS="$PWD/tests/harness.c $(echo "$PWD"/tests/test_*.c)"
set -f

mkdir -p "$B"
rm -f "$B"/*.gcda "$B"/*.gcno "$B"/*.gcov
# --wrap=_exit routes every _exit through tests/cov_exit.c, which writes the counters of
# the forked test processes first (the harness runs each test in a child that _exits).
# Absolute source paths let gcov, run in $B, find the sources. Plain (non-atomic) counter
# updates: -pthread would make them atomic, slowing the stress tests for no gain (a count
# off by a race still tells run from never run). -fno-builtin-fork: gcc otherwise wraps
# fork() in __gcov_fork, which zeroes the child's counters after the atfork handlers ran,
# so ipc.h's atfork child handler would never count; a child now re-counts what its
# parent ran before the fork, which only inflates counts.
# shellcheck disable=SC2086
gcc -std=gnu11 -O0 -g --coverage -fprofile-update=single -fno-builtin-fork $WARN -I"$PWD" \
    $SRCS "$PWD/tests/cov_exit.c" -Wl,--wrap=_exit -o "$B/test" -pthread || exit 1
# Object names are "test-<source>": gcov finds the counters of harness.c (the one TU with
# IPC_IMPLEMENTATION) there and annotates ipc.h from it.
# shellcheck disable=SC2086
timeout 1800 "$B/test" --label coverage $PATTERNS >"$B/out" 2>&1
rc=$?
grep -E '^(  FAIL|coverage: )' "$B/out"
[ $rc -eq 0 ] || echo "coverage: the suite failed (rc $rc); the numbers below still count"
(cd "$B" && gcov -b -c -o . test-harness.gcda >gcov.log 2>&1) || {
    cat "$B/gcov.log"
    exit 1
}
[ -f "$B/ipc.h.gcov" ] || {
    echo "coverage: gcov wrote no ipc.h.gcov"
    exit 1
}

# Lines of ipc.h that bound the implementation part.
first=$(grep -n '^#if defined(IPC_IMPLEMENTATION) && !defined(IPC__IMPLEMENTED)' ipc.h |
    cut -d: -f1)
last=$(grep -n '^#endif /\* IPC_IMPLEMENTATION \*/' ipc.h | cut -d: -f1)
[ -n "$first" ] && [ -n "$last" ] || {
    echo "coverage: cannot find the implementation part of ipc.h"
    exit 1
}

# gcov text: "  count:  line:source" ("-" = no code, "#####"/"=====" = never run, a "*"
# suffix = some blocks of the line not run), then "branch N taken C" / "branch N never
# executed" for the line's conditional branches, "function NAME called C ..." before each
# function. A branch counts as covered once taken.
awk -v first="$first" -v last="$last" -v minl="$COV_LINES" -v minb="$COV_BRANCHES" \
    -v check="$([ -z "$PATTERNS" ] && echo 1 || echo 0)" '
function flush_range() {
    if (rstart) {
        printf "  %5d%s  %-28s %s\n", rstart, (rend > rstart ? "-" rend : "     "), rfn, rtext
        nranges++
    }
    rstart = 0
}
/^function / { fn = $2; if ($4 == "0") uncalled[++nuncalled] = fn; next }
/^branch / {
    if (cur < first || cur > last) next
    bt[sec]++; btot++
    if ($3 == "taken" && $4 + 0 > 0) { bc[sec]++; bcov++ }
    next
}
/^ *[-0-9#=]+[*]?: *[0-9]+:/ {
    split($0, f, ":")
    count = f[1]; gsub(/ /, "", count); cur = f[2] + 0
    text = substr($0, length(f[1]) + length(f[2]) + 3)
    if (match(text, />>[a-z]+ \*\//)) {
        sec = substr(text, RSTART + 2, RLENGTH - 5)
        order[++nsec] = sec
    }
    if (cur < first || cur > last || count == "-") next
    lt[sec]++; ltot++
    if (count ~ /^[#=]/) {
        gsub(/^ +/, "", text)
        if (rstart && cur == rend + 1) rend = cur
        else { flush_range(); rstart = rend = cur; rfn = fn; rtext = substr(text, 1, 60) }
    } else { lc[sec]++; lcov++ }
}
END {
    flush_range()
    if (nranges) printf "(%d ranges of lines never run)\n\n", nranges
    printf "  %-10s %20s %22s\n", "section", "lines", "branches"
    for (i = 1; i <= nsec; i++) {
        s = order[i]
        if (!lt[s]) continue
        printf "  %-10s %5d/%-5d %6.1f%% %6d/%-5d %6.1f%%\n", s, lc[s], lt[s], 100 * lc[s] / lt[s],
            bc[s], bt[s], bt[s] ? 100 * bc[s] / bt[s] : 100
    }
    pl = ltot ? 100 * lcov / ltot : 0; pb = btot ? 100 * bcov / btot : 0
    printf "  %-10s %5d/%-5d %6.1f%% %6d/%-5d %6.1f%%\n", "ipc.h", lcov, ltot, pl, bcov, btot, pb
    if (nuncalled) {
        line = "functions never called:"
        for (i = 1; i <= nuncalled; i++) {
            if (length(line) + length(uncalled[i]) >= 99) { print line; line = " " }
            line = line " " uncalled[i]
        }
        print line
    }
    if (!check) exit 0
    if (pl < minl || pb < minb) {
        printf "coverage: below the target of %d%% lines, %d%% branches\n", minl, minb
        exit 1
    }
    printf "coverage: target met (%d%% lines, %d%% branches)\n", minl, minb
}' "$B/ipc.h.gcov" >"$B/summary" || fail=1
echo "ipc.h lines never run (implementation part, lines $first-$last):"
cat "$B/summary"
[ "${fail:-0}" -eq 0 ] && [ $rc -eq 0 ]
