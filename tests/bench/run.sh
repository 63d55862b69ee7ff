#!/usr/bin/env bash
# `make bench` / `make bench-quick`: every figure of BENCHMARKS.md in one run,
# one after the other on this machine. Benchmarks report; nothing asserts.
set -euo pipefail
cd "$(dirname "$0")/../.."
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
B=build/bench
mkdir -p "$B"
OUT="$B/results.jsonl"
: > "$OUT"
PY=${PYTHON:-python3}
RB=${RUBY:-ruby}
export TASKER_LIBRARY="$PWD/build/libtasker.so"

if (( QUICK )); then
  N_FLOOR=300000 N_RT=50000 N_LAT=2000 N_LAT_SLEEP=100 N_MEM=200000 N_SCALE=50000 N_LANG=20000 N_GOJSON=200000 GOBENCH=0.3s
  N_PG=2000 N_PG_LAT=50 PG_PROCS="1" PG_REPS=1
else
  N_FLOOR=3000000 N_RT=500000 N_LAT=10000 N_LAT_SLEEP=500 N_MEM=1000000 N_SCALE=400000 N_LANG=100000 N_GOJSON=1000000 GOBENCH=2s
  N_PG=20000 N_PG_LAT=300 PG_PROCS="1 2 4" PG_REPS=3
fi

step() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
run() { "$@" | tee -a "$OUT" >&2; }

step "building benchmark programs"
go build -buildmode=c-shared -o "$B/libfloor.so" ./tests/bench/floor && rm -f "$B/libfloor.h"
gcc -O2 -Wall -Wextra -Werror tests/bench/floor.c -L"$B" -lfloor -Wl,-rpath,"$PWD/$B" -o "$B/floor"
gcc -O2 -Wall -Wextra -Werror -Iinclude tests/bench/bench.c -Lbuild -ltasker -Wl,-rpath,"$PWD/build" -lpthread -o "$B/bench"
go build -o "$B/gofloor" ./tests/bench/gofloor
HAVE_RUBY=0
if command -v "$RB" >/dev/null && "$RB" -e 'require "ffi"' 2>/dev/null; then HAVE_RUBY=1; else
  echo "ruby with ffi not found: Ruby figures skipped (make deps-ruby installs it)" >&2; fi

# the documents every round trip uses (bench.c, bench.py and bench.rb use the same)
export BENCH_EVENT='{"task_uuid":"0190a0a0-0000-7000-8000-000000000001","step_uuid":"0190a0a0-0000-7000-8000-000000000002","handler":"bench","payload":{"order_id":12345,"items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"note":"hello"}}'
export BENCH_RESULT='{"success":true,"result":{"ok":true,"total":42.5},"metadata":{"worker":"c"}}'

step "1. floor: a no-op call into Go"
run "$B/floor" "$N_FLOOR"
run "$PY" tests/bench/floor.py "$B/libfloor.so" "$N_FLOOR"
(( HAVE_RUBY )) && run "$RB" tests/bench/floor.rb "$B/libfloor.so" "$N_FLOOR"

step "2. round trip, one thread (and the JSON work floor)"
run "$B/gofloor" -n "$N_GOJSON"
run "$B/bench" roundtrip "$N_RT" 1
run "$B/bench" roundtrip "$N_RT" 64
run "$PY" tests/bench/bench.py jsonfloor "$N_LANG"
for mode in decoded raw; do for batch in 1 64; do
  run "$PY" tests/bench/bench.py roundtrip "$N_LANG" "$mode" "$batch"
done; done
if (( HAVE_RUBY )); then
  run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb jsonfloor "$N_LANG"
  for mode in decoded raw; do for batch in 1 64; do
    run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb roundtrip "$N_LANG" "$mode" "$batch"
  done; done
fi

step "3. latency: dispatch -> poll return, idle worker"
run "$B/bench" latency "$N_LAT" block
run "$B/bench" latency "$N_LAT_SLEEP" sleep
run "$PY" tests/bench/bench.py latency "$N_LAT" block
run "$PY" tests/bench/bench.py latency "$N_LAT_SLEEP" sleep
if (( HAVE_RUBY )); then
  run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb latency "$N_LAT" block
  run "$RB" -Ibindings/ruby/lib tests/bench/bench.rb latency "$N_LAT_SLEEP" sleep
fi

step "4. scaling (C)"
for t in 1 2 4; do run "$B/bench" scaling "$t" "$N_SCALE"; done

step "5. memory (C)"
run "$B/bench" memory "$N_MEM"

step "6. cleanup of 100,000 expired events (C)"
run "$B/bench" cleanup 100000

step "7. go test -bench (core)"
go test -run='^$' -bench=. -benchmem -benchtime="$GOBENCH" ./channel ./runtime 2>&1 | tee "$B/gobench.txt" >&2

step "8. PostgreSQL source"
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
  echo "PostgreSQL server binaries not found: section 8 skipped (make deps-pg installs them)" >&2
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
    echo "{\"bench\":\"lib_size\",\"before_commit\":\"$BEFORE\",\"before_bytes\":$(stat -c %s "$B/libtasker-$BEFORE.so"),\"after_commit\":\"$(git rev-parse --short HEAD)\",\"after_bytes\":$(stat -c %s build/libtasker.so)}" | tee -a "$OUT" >&2
  fi
fi

MD=BENCHMARKS.md; (( QUICK )) && MD="$B/BENCHMARKS-quick.md"   # a quick look never replaces the full table
"$PY" tests/bench/report.py "$OUT" "$B/gobench.txt" --json build/bench.json --markdown "$MD" \
  --command "make bench$( (( QUICK )) && echo -quick)"
