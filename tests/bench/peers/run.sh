#!/bin/sh
# tests/bench/peers/run.sh OUTDIR - `make bench-peers`: build the program of every peer library
# that is installed (pkg-config where the library ships a .pc, else a test compile), print the
# table's header, run the ring first (the reference), then each peer, one row each, then say
# which libraries were skipped and how to install them. CC, CXX and BENCH come from make.
# Never fails on a number: only a failed build of ipc.h's own program fails it.
set -u
out=${1:-build/peers}
src=tests/bench/peers
cc=${CC:-cc}
cxx=${CXX:-c++}
warn="-Wall -Wextra -Wpedantic -Werror -Wshadow"
mkdir -p "$out" || exit 1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ipc-peers-build-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM HUP

# build PROGRAM COMPILER FLAGS SOURCE LIBS: rebuild when a source or this script is newer.
build() {
    prog=$out/$1
    if [ -x "$prog" ] &&
        [ -z "$(find "$4" "$src/peer.h" "$src/run.sh" tests/bench/bench.h ipc.h -newer "$prog" 2>/dev/null)" ]; then
        return 0
    fi
    echo "bench-peers: building $prog" >&2
    # shellcheck disable=SC2086 # flags are word lists
    $2 $3 -O2 -g $warn -I. "$4" -o "$prog" $5 -pthread
}

# probe COMPILER LANGUAGE HEADER LIBS: does a program using HEADER compile and link?
probe() {
    printf '#include <%s>\nint main(void) { return 0; }\n' "$3" >"$tmp/probe.$2"
    # shellcheck disable=SC2086
    $1 "$tmp/probe.$2" -o "$tmp/probe" $4 >/dev/null 2>&1
}

# flags PKG HEADER LIBS: the compile and link flags of a C library, "" if it is missing.
flags() {
    if pkg-config --exists "$1" 2>/dev/null; then
        echo "$(pkg-config --cflags "$1") @ $(pkg-config --libs "$1")"
    elif probe "$cc" c "$2" "$3"; then
        echo "@ $3"
    fi
}

build ring "$cc" "-std=gnu11 -Wstrict-prototypes" "$src/ring.c" "" || exit 1
progs="ring" skipped=""

if probe "$cxx" cpp boost/interprocess/ipc/message_queue.hpp ""; then
    build boost "$cxx" "-std=c++17" "$src/boost.cpp" "" && progs="$progs boost"
else
    skipped="$skipped boost:libboost-dev"
fi
f=$(flags libzmq zmq.h -lzmq)
if [ -n "$f" ]; then
    build zmq "$cc" "-std=gnu11 -Wstrict-prototypes ${f%@*}" "$src/zmq.c" "${f#*@}" &&
        progs="$progs zmq"
else
    skipped="$skipped zmq:libzmq3-dev"
fi
f=$(flags nng nng/nng.h -lnng)
if [ -n "$f" ]; then
    build nng "$cc" "-std=gnu11 -Wstrict-prototypes ${f%@*}" "$src/nng.c" "${f#*@}" &&
        progs="$progs nng"
else
    skipped="$skipped nng:libnng-dev"
fi

"$out/ring" --header
ref=$out/ring.ref
rm -f "$ref"
for p in $progs; do
    PEERS_REF=$ref "$out/$p" || true
done
rm -f "$ref"
for s in $skipped; do
    echo "skipped: ${s%%:*} (apt-get install ${s#*:})"
done
exit 0
