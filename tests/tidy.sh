#!/bin/sh
# tests/tidy.sh - clang-tidy (checks in .clang-tidy) over tests/analyze.c, ipc.h's
# implementation alone; run by tests/suite.sh. Fails on any finding but the known false
# positives below. clang-tidy 14 has no suppression outside the source, and ipc.h is not
# ours to annotate, so each is matched here by check name and the text of the flagged line
# (never its number, which edits to ipc.h move). A known one that no longer appears is
# reported, so the list cannot outlive its reason.
set -u
cd "$(dirname "$0")/.." || exit 2

# check<TAB>flagged line, trimmed, one per line, each with its reason above it. None
# today: the last one (ipc_event_wait reading a value only set on success, where the
# analyser could not tell that ipc__neg_errno is negative) went when ipc__neg_errno
# asserted it.
KNOWN=''

out=$(clang-tidy --quiet tests/analyze.c -- -std=gnu11 -I. 2>&1)
rc=$?
tab=$(printf '\t')
bad=0
seen=
findings=$(printf '%s\n' "$out" | grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error): .*\[[^]]+\]$')
while IFS= read -r f; do
    [ -n "$f" ] || continue
    file=${f%%:*}
    rest=${f#*:}
    line=${rest%%:*}
    check=$(printf '%s\n' "$f" | sed 's/.*\[\([^],]*\).*\]$/\1/')
    text=$(sed -n "${line}p" "$file" 2>/dev/null | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
    if printf '%s\n' "$KNOWN" | grep -qxF "$check$tab$text"; then
        seen="$seen$check$tab$text
"
        echo "known false positive: $f"
    else
        bad=$((bad + 1))
        echo "$f"
        printf '%s\n' "$out" | grep -A12 -F "$f" | tail -n +2 | grep -v '^/usr/' | head -n 12
    fi
done <<EOF
$findings
EOF
printf '%s\n' "$KNOWN" | while IFS= read -r k; do
    [ -n "$k" ] || continue
    printf '%s' "$seen" | grep -qxF "$k" || echo "note: known false positive no longer found: $k"
done
if [ "$bad" -gt 0 ]; then
    echo "clang-tidy: $bad finding(s)"
    exit 1
fi
if [ "$rc" -ne 0 ] && [ -z "$seen" ]; then
    printf '%s\n' "$out" | tail -n 20
    echo "clang-tidy failed (rc $rc) without a finding"
    exit 1
fi
echo "clang-tidy: clean"
