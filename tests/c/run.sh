#!/usr/bin/env bash
# tests/c/run.sh — the C harness of libtasker (see tests/c/README.md).
#
#   bash tests/c/run.sh                 compile everything, run every scenario
#   bash tests/c/run.sh NAME...         only scenarios whose name contains NAME
#
# Run from the repository root after `make build` (`make test-c` does both).
# Every scenario runs in its own process under `timeout` (and alarm() inside
# as a second guard), so a crash or a hang cannot hide another. One line per
# scenario: PASS/FAIL, name, time, and the NOTE lines the scenario printed;
# a failure is followed by the tail of its log (full logs in
# tests/c/bin/logs/). The last line is exactly "N passed, M failed"; the exit
# status is non-zero if anything failed.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
ROOT=$PWD
SRC=tests/c
BIN=$SRC/bin
LOGS=$BIN/logs
LIB=build/libtasker.so
CC=${CC:-gcc}
CXX=${CXX:-g++}
CFLAGS=(-Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Og -g -Iinclude -I"$SRC")
LDFLAGS=(-Lbuild -ltasker -Wl,-rpath,"$ROOT/build" -lpthread)

pass=0
fail=0
t_all=$(date +%s.%N)

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

report_fail() { # name seconds reason log
    printf 'FAIL %-28s %7ss  (%s)\n' "$1" "$2" "$3"
    if [ -s "$4" ]; then tail -n 40 "$4" | sed 's/^/    | /'; fi
    fail=$((fail + 1))
}

if [ ! -f "$LIB" ]; then
    echo "$LIB is missing: run 'make build' first (or 'make test-c')"
    echo "0 passed, 1 failed"
    exit 2
fi

mkdir -p "$BIN" "$LOGS"
rm -f "$LOGS"/*.log

# ---- compile ----
# fast files first, volume last; any other t_*.c is picked up too
srcs=()
for n in t_badinput t_bounds t_blocking t_roundtrip t_fork t_stress t_memory; do
    [ -f "$SRC/$n.c" ] && srcs+=("$SRC/$n.c")
done
for src in "$SRC"/t_*.c; do
    case " ${srcs[*]} " in *" $src "*) ;; *) srcs+=("$src") ;; esac
done
# compile in parallel (one job per file), then collect
t0=$(date +%s.%N)
pids=()
for src in "${srcs[@]}"; do
    name=$(basename "$src" .c)
    "$CC" "${CFLAGS[@]}" "$src" -o "$BIN/$name" "${LDFLAGS[@]}" >"$LOGS/compile-$name.log" 2>&1 &
    pids+=($!)
done
bins=()
for i in "${!srcs[@]}"; do
    name=$(basename "${srcs[$i]}" .c)
    if wait "${pids[$i]}"; then
        bins+=("$BIN/$name")
    else
        report_fail "compile:$name" "$(elapsed "$t0")" "gcc -Wall -Wextra -Werror failed" "$LOGS/compile-$name.log"
    fi
done

# The header from C++ (several standards, syntax only) and C99 -pedantic,
# then a tiny C++ program that is run as the scenario "cxx_header".
cxx_ok=1
log=$LOGS/compile-cxx_header.log
t0=$(date +%s.%N)
: >"$log"
for std in c++11 c++17 c++20; do
    "$CXX" -Wall -Wextra -Werror -pedantic -std=$std -x c++ -fsyntax-only -Iinclude "$SRC/cxx_header.cc" >>"$log" 2>&1 || cxx_ok=0
done
echo '#include "tasker.h"' | "$CC" -Wall -Wextra -Werror -pedantic -std=c99 -x c -fsyntax-only -Iinclude - >>"$log" 2>&1 || cxx_ok=0
"$CXX" -Wall -Wextra -Werror -std=c++11 -Iinclude "$SRC/cxx_header.cc" -o "$BIN/cxx_header" "${LDFLAGS[@]}" >>"$log" 2>&1 || cxx_ok=0
if [ $cxx_ok = 0 ]; then
    report_fail "compile:cxx_header" "$(elapsed "$t0")" "the header does not compile as C++/C99" "$log"
fi

# ---- the scenario list: "binary name timeout" ----
list=()
for b in "${bins[@]}"; do
    while read -r name to; do
        [ -n "$name" ] && list+=("$b $name $to")
    done < <("$b" --list)
done
[ $cxx_ok = 1 ] && list+=("$BIN/cxx_header cxx_header 30")

selected() {
    [ $# -eq 1 ] && return 0
    local n=$1
    shift
    for f in "$@"; do [[ $n == *"$f"* ]] && return 0; done
    return 1
}

# ---- run, each scenario in its own process ----
for entry in "${list[@]}"; do
    read -r b name to <<<"$entry"
    selected "$name" "$@" || continue
    log=$LOGS/$name.log
    t0=$(date +%s.%N)
    # (in a subshell, so that bash's own "Segmentation fault" line stays out of the report)
    if [ "$name" = cxx_header ]; then
        (timeout -k 5 "$to" "$b" >"$log" 2>&1; exit $?) 2>/dev/null
    else
        (timeout -k 5 $((to + 15)) "$b" "$name" >"$log" 2>&1; exit $?) 2>/dev/null
    fi
    rc=$?
    secs=$(elapsed "$t0")
    if [ $rc -eq 0 ] && grep -qx "ok $name" "$log"; then
        notes=$(awk '/^NOTE: / { sub(/^NOTE: /, ""); printf "%s%s", (n++ ? " ;; " : ""), $0 }' "$log")
        printf 'PASS %-28s %7ss%s\n' "$name" "$secs" "${notes:+  [$notes]}"
        pass=$((pass + 1))
    else
        case $rc in
        0) why="exit 0 without the final \"ok\" line" ;;
        1) why="a check failed" ;;
        3) why="alarm: the scenario hung" ;;
        124) why="killed by timeout after ${to}+15 s: hung" ;;
        137) why="killed (SIGKILL) after the timeout: hung" ;;
        *) if [ $rc -gt 128 ]; then why="crashed: signal $(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"; else why="exit status $rc"; fi ;;
        esac
        report_fail "$name" "$secs" "$why" "$log"
    fi
done

echo "C harness: $((pass + fail)) checks in $(elapsed "$t_all") s; logs in $LOGS/"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
