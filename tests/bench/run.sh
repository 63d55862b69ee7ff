#!/usr/bin/env bash
# `make bench` / `make bench-quick`: every figure of BENCHMARKS.md in one run,
# one after the other on this machine. Benchmarks report; nothing asserts.
set -euo pipefail
cd "$(dirname "$0")/../.."
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
B=build/bench
mkdir -p "$B"
# a quick look never replaces the full run's results (nor, below, its table)
SUFFIX=""; (( QUICK )) && SUFFIX="-quick"
OUT="$B/results$SUFFIX.jsonl"
: > "$OUT"
PY=${PYTHON:-python3}
RB=${RUBY:-ruby}
export TASKER_LIBRARY="$PWD/build/libtasker.so"

if (( QUICK )); then
  N_FLOOR=100000 N_RT=30000 N_LAT=1000 N_LAT_SLEEP=50 N_MEM=200000 N_SCALE=50000 N_LANG=10000 N_GOJSON=200000 GOBENCH=0.2s
  N_CG=300 N_PP=10000
  N_PG=2000 N_PG_LAT=50 PG_PROCS="1" PG_REPS=1 ROUNDS=1
else
  N_FLOOR=3000000 N_RT=500000 N_LAT=10000 N_LAT_SLEEP=500 N_MEM=1000000 N_SCALE=400000 N_LANG=100000 N_GOJSON=1000000 GOBENCH=2s
  N_CG=5000 N_PP=200000
  N_PG=20000 N_PG_LAT=300 PG_PROCS="1 2 4" PG_REPS=3 ROUNDS=3
fi

# for the report's header, kept with the results so that a report made again from them (after
# NOTES.md changes) still says when the run started and what load it started under
printf '{"bench":"run","started":"%s","load_before":"%s"}\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT"
T0=$SECONDS
step() { printf '\033[1m== [%ss] %s\033[0m\n' "$((SECONDS - T0))" "$*" >&2; }
run() { "$@" | tee -a "$OUT" >&2; }

step "building benchmark programs"
go build -buildmode=c-shared -o "$B/libfloor.so" ./tests/bench/floor && rm -f "$B/libfloor.h"
gcc -O2 -Wall -Wextra -Werror tests/bench/floor.c -L"$B" -lfloor -Wl,-rpath,"$PWD/$B" -o "$B/floor"
# bench.c against the library in directory $1, as program $2
build_bench() { gcc -O2 -Wall -Wextra -Werror -Iinclude tests/bench/bench.c -L"$1" -ltasker -Wl,-rpath,"$PWD/$1" -lpthread -o "$2"; }
build_bench build "$B/bench"
go build -o "$B/gofloor" ./tests/bench/gofloor
gcc -O2 -Wall -Wextra -Werror -shared -fPIC tests/bench/wakefloor.c -lpthread -o "$B/libwakefloor.so"
HAVE_RUBY=0
if command -v "$RB" >/dev/null && "$RB" -e 'require "ffi"' 2>/dev/null; then HAVE_RUBY=1; else
  echo "ruby with ffi not found: Ruby figures skipped (make deps installs it)" >&2; fi

# the documents every round trip uses (bench.c, bench.py and bench.rb use the same)
export BENCH_EVENT='{"task_uuid":"0190a0a0-0000-7000-8000-000000000001","step_uuid":"0190a0a0-0000-7000-8000-000000000002","handler":"bench","payload":{"order_id":12345,"items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"note":"hello"}}'
export BENCH_RESULT='{"success":true,"result":{"ok":true,"total":42.5},"metadata":{"worker":"c"}}'

# Sections 1 and 2 run ROUNDS times, each language's floor right beside its round trips, and the
# report takes the median of each figure: a ratio of two figures measured minutes apart on this
# shared machine moved by up to 2x between runs.
floors_and_round_trips() {
  step "1-2. round $1 of $ROUNDS: C floor (a no-op call into Go), Go JSON work floor, C round trips"
  run "$B/floor" "$N_FLOOR"
  run "$B/gofloor" -n "$N_GOJSON"
  run "$B/bench" roundtrip "$N_RT" 1
  run "$B/bench" roundtrip "$N_RT" 64
  run "$B/bench" roundtrip_into "$N_RT"
  run "$B/floor" slot "$N_RT"   # the same four calls and JSON work, one event slot instead of the channel
  step "1-2. round $1 of $ROUNDS: Python floor, JSON work floor, round trips"
  run "$PY" tests/bench/floor.py "$B/libfloor.so" "$N_FLOOR"
  run "$PY" tests/bench/bench.py jsonfloor "$N_LANG"
  for mode in decoded raw; do for batch in 1 64; do
    run "$PY" tests/bench/bench.py roundtrip "$N_LANG" "$mode" "$batch"
  done; done
  run "$PY" tests/bench/bench.py roundtrip "$N_LANG" bare 1   # the four calls without the binding
  if (( HAVE_RUBY )); then
    step "1-2. round $1 of $ROUNDS: Ruby floor, JSON work floor, round trips"
    run "$RB" tests/bench/floor.rb "$B/libfloor.so" "$N_FLOOR"
    run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb jsonfloor "$N_LANG"
    for mode in decoded raw; do for batch in 1 64; do
      run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb roundtrip "$N_LANG" "$mode" "$batch"
    done; done
    run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb roundtrip "$N_LANG" bare 1
  fi
}
for round in $(seq 1 "$ROUNDS"); do floors_and_round_trips "$round"; done

step "2b. the peers: the same round trip through each language's own queue"
run "$B/bench" peer_roundtrip "$N_RT"
run "$PY" tests/bench/bench.py peer_roundtrip "$N_LANG"
(( HAVE_RUBY )) && run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb peer_roundtrip "$N_LANG"

step "2c. where a binding's raw round trip goes"
run "$PY" tests/bench/bench.py breakdown "$N_LANG"
(( HAVE_RUBY )) && run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb breakdown "$N_LANG"

step "2d. instructions per event (valgrind --tool=callgrind; do not move with machine load)"
# Only the instructions between the program's CALLGRIND_TOGGLE_COLLECT marks count.
# The Go runtime needs two GODEBUG settings under valgrind: no async preemption
# signals (callgrind asserts on them) and no RDTSCP (valgrind 3.19 lacks it).
cg() { # label events valgrind-option command...
  local label=$1 events=$2 opt=$3; shift 3
  local f="$B/callgrind.$label.out"
  if GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off valgrind --tool=callgrind $opt --callgrind-out-file="$f" "$@" >/dev/null 2>"$f.log"; then
    # with --cache-sim=yes the summary also has the simulated L1 instruction-cache misses (I1mr)
    awk -v l="$label" -v n="$events" '
      /^desc: I1 cache:/ { i1 = $4 }
      /^events:/ { for (i = 2; i <= NF; i++) if ($i == "I1mr") col = i }
      /^summary:/ {
        extra = col ? sprintf(",\"i1_bytes\":%d,\"i1mr\":%d,\"i1mr_per_event\":%.1f", i1, $col, $col / n) : ""
        printf "{\"bench\":\"callgrind\",\"what\":\"%s\",\"events\":%d,\"ir\":%d,\"ir_per_event\":%.1f%s}\n", l, n, $2, $2 / n, extra
      }' "$f" | tee -a "$OUT" >&2
  else
    echo "callgrind $label failed (see $f.log)" >&2
  fi
}
if command -v valgrind >/dev/null; then
  CG_WHAT="all batch into dispatch poll complete next peer"
  (( QUICK )) && CG_WHAT="all"   # the split by call only in the full run
  for what in $CG_WHAT; do
    cg "c_$what" "$N_CG" --collect-atstart=no "$B/bench" callgrind "$N_CG" "$what"
  done
  cg c_crossing "$N_CG" --collect-atstart=no "$B/floor" "$N_CG" callgrind
  cg c_slot "$N_CG" --collect-atstart=no "$B/floor" slot "$N_CG" callgrind
  # the same two round trips in callgrind's simulation of this machine's caches: the code a round
  # trip runs is larger than the L1 instruction cache, and the misses cost time instructions do not show
  if (( ! QUICK )); then
    cg c_into_cache "$N_CG" "--collect-atstart=no --cache-sim=yes" "$B/bench" callgrind "$N_CG" into
    cg c_slot_cache "$N_CG" "--collect-atstart=no --cache-sim=yes" "$B/floor" slot "$N_CG" callgrind
  fi
  # where the library's instructions beyond the one-slot floor go, by function:
  # build/sym is the same code with its symbols (make bench builds it; the
  # shipped library is stripped, and callgrind would see addresses), its
  # poll_into round trip split in groups (section 2e)
  if (( ! QUICK )) && [[ -e build/sym/libtasker.so ]] && command -v callgrind_annotate >/dev/null; then
    build_bench build/sym "$B/bench_sym"
    cg c_into_symbols "$N_CG" --collect-atstart=no "$B/bench_sym" callgrind "$N_CG" into
    run "$PY" tests/bench/cgsplit.py "$B/callgrind.c_into_symbols.out" "$B/callgrind.c_slot.out" "$N_CG" \
      || echo "cgsplit failed: section 2e skipped" >&2
  fi
  # the Go JSON work of one event: a pure Go loop, so the difference of two runs (each with a 10% warm-up)
  if (( ! QUICK )); then
    cg go_json_a "$N_CG" --collect-atstart=yes "$B/gofloor" -n "$N_CG"
    cg go_json_b "$((N_CG * 3))" --collect-atstart=yes "$B/gofloor" -n "$((N_CG * 3))"
    # the raw round trip through each binding, the same way (difference of two runs)
    PYBIN=$("$PY" -c 'import sys; print(sys.executable)')   # not a pyenv shim: valgrind must see python itself
    cg py_raw_a 2000 --collect-atstart=yes "$PYBIN" tests/bench/bench.py roundtrip 2000 raw 1
    cg py_raw_b 6000 --collect-atstart=yes "$PYBIN" tests/bench/bench.py roundtrip 6000 raw 1
    if (( HAVE_RUBY )); then
      RBBIN=$(readlink -f "$(command -v "$RB")")
      cg rb_raw_a 2000 --collect-atstart=yes "$RBBIN" -Ibindings/ruby/lib tests/bench/bench.rb roundtrip 2000 raw 1
      cg rb_raw_b 6000 --collect-atstart=yes "$RBBIN" -Ibindings/ruby/lib tests/bench/bench.rb roundtrip 6000 raw 1
    fi
  fi
else
  echo "valgrind not found: instruction counts skipped (make deps installs it)" >&2
fi

step "3. latency: dispatch -> poll return, idle worker (and each language's own queue)"
run "$B/bench" pingpong "$N_PP"
run "$B/bench" peer_pingpong "$N_PP"
# the rows the targets judge (the blocking wait beside each language's own queue): ROUNDS rounds,
# medians in the report, as for sections 1 and 2
for round in $(seq 1 "$ROUNDS"); do
  run "$B/bench" latency "$N_LAT" block
  run "$B/bench" peer_latency "$N_LAT"
  run "$PY" tests/bench/bench.py latency "$N_LAT" block
  run "$PY" tests/bench/bench.py peer_latency "$N_LAT"
  run "$PY" tests/bench/bench.py latency "$N_LAT" bare
  run "$PY" tests/bench/bench.py ffi_latency "$N_LAT" "$B/libwakefloor.so"
  if (( HAVE_RUBY )); then
    run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb latency "$N_LAT" block
    run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb peer_latency "$N_LAT"
    run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb latency "$N_LAT" bare
    run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb latency "$N_LAT" bare_release  # dispatch without the GVL
    run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb ffi_latency "$N_LAT" "$B/libwakefloor.so"
  fi
done
run "$B/bench" latency "$N_LAT" fd
run "$B/bench" latency "$N_LAT_SLEEP" sleep
# a longer idle gap (1 ms: the other CPU goes to sleep), then the same with both threads on one CPU
run "$B/bench" latency "$N_LAT" block 1000
run "$B/bench" peer_latency "$N_LAT" 1000
BENCH_ONE_CPU=1 run "$B/bench" latency "$N_LAT" block 1000
BENCH_ONE_CPU=1 run "$B/bench" peer_latency "$N_LAT" 1000
run "$PY" tests/bench/bench.py latency "$N_LAT" fd
run "$PY" tests/bench/bench.py latency "$N_LAT_SLEEP" sleep
if (( HAVE_RUBY )); then
  if "$RB" -e 'require "async"' 2>/dev/null; then
    run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb latency "$N_LAT" fd
  else echo "ruby async gem not found: Ruby fd-path latency skipped (make deps installs ruby-async)" >&2; fi
  run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb latency "$N_LAT_SLEEP" sleep
fi

step "4. scaling (C)"
for t in 1 2 4; do run "$B/bench" scaling "$t" "$N_SCALE"; done

step "5. memory (C)"
run "$B/bench" memory "$N_MEM"

step "6. cleanup of 100,000 expired events (C)"
run "$B/bench" cleanup 100000

step "7. checkpoint round trip vs complete round trip (C and Python, one thread)"
run "$B/bench" checkpoint "$N_RT"
for mode in decoded raw; do run "$PY" tests/bench/bench.py checkpoint "$N_LANG" "$mode"; done

step "8. go test -bench (core)"
go test -run='^$' -bench=. -benchmem -benchtime="$GOBENCH" ./channel ./runtime 2>&1 | tee "$B/gobench$SUFFIX.txt" >&2

step "9. PostgreSQL source"
PGDIR="$PWD/$B/pg"
if bash tests/pg/pg.sh check; then
  gcc -O2 -Wall -Wextra -Werror -Iinclude tests/bench/pgworker.c -Lbuild -ltasker -Wl,-rpath,"$PWD/build" -lpthread -o "$B/pgworker"
  go build -o "$B/pgsource" ./tests/bench/pgsource
  bash tests/pg/pg.sh stop "$PGDIR"
  DSN=$(bash tests/pg/pg.sh start "$PGDIR" $$)
  trap 'bash tests/pg/pg.sh stop "$PGDIR"' EXIT
  for rep in $(seq "$PG_REPS"); do
    for p in $PG_PROCS; do   # floor and source alternate, so that both see the same machine
      run "$B/pgsource" throughput -dsn "$DSN" -kind floor -procs "$p" -n "$N_PG"
      run "$B/pgsource" throughput -dsn "$DSN" -kind source -procs "$p" -n "$N_PG" -worker "$B/pgworker"
    done
  done
  run "$B/pgsource" latency -dsn "$DSN" -worker "$B/pgworker" -n "$N_PG_LAT"
  if (( ! QUICK )); then
    run "$B/pgsource" latency -dsn "$DSN" -worker "$B/pgworker" -n 40 -notify=false -poll-ms 500
    run "$B/pgsource" idle -dsn "$DSN" -worker "$B/pgworker" -seconds 10 -cmd c
    run "$B/pgsource" idle -dsn "$DSN" -worker "$B/pgworker" -seconds 10 -cmd python
  fi
  bash tests/pg/pg.sh stop "$PGDIR"
  trap - EXIT
else
  echo "PostgreSQL server binaries not found: section 9 skipped (make deps installs them)" >&2
fi
if (( ! QUICK )); then
  # the library's size before the source (main at 5f9c7a9, the last commit before issue 9), same flags
  BEFORE=5f9c7a9
  if [ ! -f "$B/libtasker-$BEFORE.so" ] && git cat-file -e "$BEFORE^{commit}" 2>/dev/null; then
    tmp=$(mktemp -d)
    git archive "$BEFORE" | tar -x -C "$tmp"
    (cd "$tmp" && go build -buildmode=c-shared -ldflags="-s -w -extldflags=-Wl,--version-script=$tmp/ffi/libtasker.map" \
       -o "$OLDPWD/$B/libtasker-$BEFORE.so" ./ffi) && rm -f "$B/libtasker-$BEFORE.h"
    rm -rf "$tmp"
  fi
  if [ -f "$B/libtasker-$BEFORE.so" ]; then
    echo "{\"bench\":\"lib_size\",\"before_commit\":\"$BEFORE\",\"before_bytes\":$(stat -c %s "$B/libtasker-$BEFORE.so"),\"after_commit\":\"$(git rev-parse --short HEAD)\",\"after_bytes\":$(stat -L -c %s build/libtasker.so)}" | tee -a "$OUT" >&2
  fi
fi

MD=BENCHMARKS.md; (( QUICK )) && MD="$B/BENCHMARKS-quick.md"
"$PY" tests/bench/report.py "$OUT" "$B/gobench$SUFFIX.txt" --json "build/bench$SUFFIX.json" --markdown "$MD" \
  --command "make bench$( (( QUICK )) && echo -quick)"
