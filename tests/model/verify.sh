#!/bin/sh
# tests/model/verify.sh - model-check the wake-up protocol of ipc.h's rings with spin
# (`make verify`). Every check builds tests/model/ring.pml with its parameters (spin -a,
# gcc), runs pan and prints the states explored. A check of the real protocol passes when
# spin finds no error; an "expect violation" check (a mutant, or a timer turned off)
# passes only when spin finds one, whose replay goes to build/model/NAME/trail.txt.
#   tests/model/verify.sh [NAME...]   only these checks (shell globs: 'mutant-*')
set -u
cd "$(dirname "$0")/../.." || exit 2
if ! command -v spin >/dev/null 2>&1; then
    echo "verify: spin is not installed (apt-get install spin)"
    exit 2
fi
B=build/model
M=tests/model/ring.pml
CC=${CC_MODEL:-gcc}

# name | expect (pass: no error; fail: spin must find one) | pan mode | -D parameters |
# what. Modes: E assertions (lost wake-ups at quiescence, drained before -EPIPE, no
# -EBADMSG); A invalid end states only; ltl:NAME that claim under weak fairness.
# tests/model/README explains each check.
CHECKS='
spsc-lost|pass|E|-DENDING=2 -DTO_SLICE=0|SPSC: no lost wake-up (no slice timer)
spsc-deadlock|pass|A|-DENDING=1 -DSTRICT_END -DTO_SLICE=0|SPSC: no deadlock, every process ends
spsc-close|pass|ltl:epipe_seen|-DENDING=1 -DTO_SLICE=0|SPSC: close observed (no slice timer)
spsc-death|pass|ltl:epipe_seen|-DDEATH=1 -DENDING=2 -DTO_SLICE=1|SPSC: death observed (slices)
spsc-first-sleep|fail|E|-DENDING=0 -DTO_FIRST=0 -DTO_SLICE=0|SPSC: no timer, the first sleep
spsc-fence|pass|E|-DPUB_FENCE=1 -DMB_FAIL=1 -DTO_FIRST=0 -DTO_SLICE=0|SPSC: fences, no timer
spsc-mb-fails|fail|E|-DENDING=0 -DMB_FAIL=1 -DTO_SLICE=0|SPSC: no membarrier for the sleeper
spsc-mb-fails-live|pass|ltl:all_received|-DENDING=0 -DMB_FAIL=1 -DTO_SLICE=1|the same, 1 ms slices
mp-lost|pass|E|-DMP=1 -DQUOTA=1 -DENDING=2|MPMC, two sleepers: no lost wake-up
mp-deadlock|pass|A|-DMP=1 -DQUOTA=1 -DENDING=1 -DSTRICT_END|MPMC, two sleepers: no deadlock
bc-lost|pass|E|-DMP=1 -DBCAST=1 -DNMSG=1 -DENDING=2|broadcast, two sleepers: no lost wake-up
mutant-no-waitcheck|fail|E|-DMUT_NO_WAITCHECK|mutant: the publisher never loads waiting
mutant-no-recheck|fail|E|-DMUT_NO_RECHECK|mutant: no re-check after the announcement
mutant-no-recheck-dl|fail|A|-DMUT_NO_RECHECK -DENDING=1 -DSTRICT_END|the same, as a deadlock
mutant-seq-late|fail|E|-DMUT_SEQ_LATE|mutant: futex word read after the re-check
mutant-no-mb|fail|E|-DMUT_NO_MB|mutant: later sleeps without membarrier
mutant-close-nowake|fail|E|-DMUT_CLOSE_NOWAKE -DENDING=1|mutant: close wakes nobody
mutant-mp-reset|fail|E|-DMP=1 -DQUOTA=1 -DMUT_MP_RESET|mutant: a leaving sleeper resets waiting
mutant-wake-one|fail|E|-DMP=1 -DQUOTA=1 -DMUT_WAKE_ONE|mutant: FUTEX_WAKE 1 instead of all
'

selected() { # is check $1 asked for?
    [ -z "$ARGS" ] && return 0
    for pat in $ARGS; do
        # shellcheck disable=SC2254
        case $1 in $pat) return 0 ;; esac
    done
    return 1
}

set -f
ARGS="$*"
fail=0
ran=0
mkdir -p "$B"
IFS_NL='
'
oldifs=$IFS
IFS=$IFS_NL
for line in $CHECKS; do
    IFS=$oldifs
    [ -n "$line" ] || continue
    name=${line%%|*}
    rest=${line#*|}
    expect=${rest%%|*}
    rest=${rest#*|}
    mode=${rest%%|*}
    rest=${rest#*|}
    defs=${rest%%|*}
    what=${rest#*|}
    selected "$name" || continue
    ran=$((ran + 1))
    d=$B/$name
    rm -rf "$d"
    mkdir -p "$d"
    cp "$M" "$d/ring.pml"
    case $mode in
    ltl:*) live=-DLIVE cflags="-DNFAIR=3" run="-a -f -N ${mode#ltl:}" ;;
    E) live='' cflags=-DSAFETY run=-E ;;
    A) live='' cflags=-DSAFETY run=-A ;;
    esac
    # spin writes pan.* in the current directory, pan its trail beside the model.
    # $live $defs $cflags $run: lists of words, split on purpose.
    # shellcheck disable=SC2086
    if ! (cd "$d" && timeout 60 spin $live $defs -a ring.pml >spin.log 2>&1 &&
        timeout 120 $CC -O0 -w $cflags -o pan pan.c >>spin.log 2>&1); then
        echo "  FAIL  $name: the model did not build"
        sed 's/^/        /' "$d/spin.log" | head -n 20
        fail=$((fail + 1))
        continue
    fi
    # shellcheck disable=SC2086
    (cd "$d" && timeout 300 ./pan -m100000 -w22 $run >pan.log 2>&1)
    errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$d/pan.log" | tail -n 1)
    states=$(awk '/states, stored/ { print $1; exit }' "$d/pan.log")
    depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$d/pan.log" | tail -n 1)
    secs=$(sed -n 's/^pan: elapsed time \([0-9.e+]*\).*/\1/p' "$d/pan.log")
    found=$(grep -m 1 -o 'assertion violated\|invalid end state\|acceptance cycle' "$d/pan.log")
    stats="${states:-?} states, depth ${depth:-?}, ${secs:-?} s"
    if [ -z "$errors" ] || grep -q 'max search depth too small' "$d/pan.log"; then
        echo "  FAIL  $name: the search did not complete"
        tail -n 5 "$d/pan.log" | sed 's/^/        /'
        fail=$((fail + 1))
        continue
    fi
    if [ "$errors" != 0 ]; then # replay the counterexample as the model's log lines
        # shellcheck disable=SC2086
        (cd "$d" && timeout 60 spin $live $defs -T -t ring.pml >trail.txt 2>&1)
    fi
    if [ "$expect" = pass ] && [ "$errors" = 0 ]; then
        echo "  ok    $name: $what ($stats)"
    elif [ "$expect" = fail ] && [ "$errors" != 0 ]; then
        echo "  ok    $name: $what: caught, $found ($stats; $d/trail.txt)"
    elif [ "$expect" = pass ]; then
        echo "  FAIL  $name: $what: $found; counterexample in $d/trail.txt"
        sed -n '1,/trail ends/p' "$d/trail.txt" | grep -v '^ *$' | tail -n 40 | sed 's/^/        /'
        fail=$((fail + 1))
    else
        echo "  FAIL  $name: $what: not caught ($stats)"
        fail=$((fail + 1))
    fi
done
IFS=$oldifs
if [ "$ran" -eq 0 ]; then
    echo "verify: no check named $ARGS"
    exit 2
fi
echo "verify: $ran checks, $fail failed"
[ "$fail" -eq 0 ]
