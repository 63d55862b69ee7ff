#!/usr/bin/env bash
# A throwaway PostgreSQL for tests, demos and benchmarks.
#
#   tests/pg/pg.sh start   DIR [OWNER_PID]   initdb into DIR/data (first time) and start the server;
#                                            prints the DSN on stdout (the only line it prints there)
#   tests/pg/pg.sh stop    DIR               stop the server and remove DIR
#   tests/pg/pg.sh restart DIR               stop (fast) and start the server again, keeping the data
#   tests/pg/pg.sh halt    DIR               stop (fast), keeping the data: `start DIR` brings it back
#   tests/pg/pg.sh dsn     DIR               print the DSN of a running server
#   tests/pg/pg.sh check                     exit 0 when the server binaries are installed
#
# The server listens on no TCP address (listen_addresses=''), only on a unix socket in DIR, with
# fsync off (tests, not production). As root it runs as the `postgres` user (PostgreSQL refuses to
# run as root). With OWNER_PID a watchdog stops the server and removes DIR once that process is
# gone, so that a test binary that panics or is killed leaves nothing running.
#
# Environment: PG_BINDIR overrides where initdb/pg_ctl/postgres are looked for.
set -euo pipefail

die() { echo "pg.sh: $*" >&2; exit 1; }

bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return; fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return; }
  done
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"; return
  fi
  return 1
}

BIN=$(bindir) || { [ "${1:-}" = check ] && exit 1; die "PostgreSQL server binaries not found (install: apt-get install -y postgresql)"; }

# as_pg runs a command as the user that owns the cluster.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

dsn() { echo "postgres://postgres@/postgres?host=$1&sslmode=disable"; }

start() {
  local dir=$1 owner=${2:-}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ ${#dir} -le 90 ] || die "$dir is too long for a unix socket path (at most 90 characters)"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync --locale=C >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  fi
  as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null 2>&1 || { tail -20 "$dir/server.log" >&2 || true; die "pg_ctl start failed (log: $dir/server.log)"; }
  if [ -n "$owner" ] && [ ! -f "$dir/watchdog.pid" ]; then
    # the watchdog outlives this script (setsid, no inherited stdio) and ends with its owner
    setsid bash -c '
      owner=$1 dir=$2 bin=$3
      while kill -0 "$owner" 2>/dev/null && [ -d "$dir" ]; do sleep 1; done
      if [ -f "$dir/data/postmaster.pid" ]; then
        if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop
        else "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop; fi
      fi
      rm -rf "$dir"' _ "$owner" "$dir" "$BIN" </dev/null >/dev/null 2>&1 &
    echo $! >"$dir/watchdog.pid"
  fi
  dsn "$dir"
}

stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
      || as_pg "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [ -f "$dir/watchdog.pid" ]; then kill "$(cat "$dir/watchdog.pid")" 2>/dev/null || true; fi
  rm -rf "$dir"
}

halt() {
  local dir
  dir=$(cd "$1" && pwd) || die "$1: no such directory"
  as_pg "$BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || die "pg_ctl stop failed"
}

restart() {
  local dir
  dir=$(cd "$1" && pwd) || die "$1: no such directory"
  as_pg "$BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || die "pg_ctl stop failed"
  as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null 2>&1 || { tail -20 "$dir/server.log" >&2 || true; die "pg_ctl start failed"; }
}

case "${1:-}" in
  start)   [ $# -ge 2 ] || die "usage: pg.sh start DIR [OWNER_PID]"; start "$2" "${3:-}" ;;
  stop)    [ $# -eq 2 ] || die "usage: pg.sh stop DIR"; stop "$2" ;;
  restart) [ $# -eq 2 ] || die "usage: pg.sh restart DIR"; restart "$2" ;;
  halt)    [ $# -eq 2 ] || die "usage: pg.sh halt DIR"; halt "$2" ;;
  dsn)     [ $# -eq 2 ] || die "usage: pg.sh dsn DIR"; dsn "$(cd "$2" && pwd)" ;;
  check)   exit 0 ;;
  *)       die "usage: pg.sh start|stop|restart|halt|dsn DIR, or pg.sh check" ;;
esac
