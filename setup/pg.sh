#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server on loopback, for the test suite (setup/test.sh).
#
#   setup/pg.sh start DIR   fresh cluster in DIR; prints its URL, postgres://rbv@127.0.0.1:PORT/postgres
#   setup/pg.sh stop DIR    stops it (if running) and removes DIR
#   setup/pg.sh halt DIR    stops it, keeping its data (a database lost mid-run)
#   setup/pg.sh resume DIR  starts it again on the same port
#
# Trust authentication, no fsync, no Unix socket: for tests only, never for data.
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
[ $# -eq 2 ] || { echo "usage: $0 start|stop|halt|resume DIR" >&2; exit 2; }

# PostgreSQL refuses to run as root: root (CI) runs it as nobody, anyone else as itself.
as_pg=()
[ "$(id -u)" -ne 0 ] || as_pg=(runuser -u nobody --)

pg_start() {
  "${as_pg[@]}" "$bin/pg_ctl" start -w -t 60 -D "$1/data" -l "$1/pg.log" -o "-p $2 \
    -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200 \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null 2>>"$1/pg.log"
}

case $1 in
start)
  mkdir -p "$2"
  dir=$(cd "$2" && pwd)
  [ ${#as_pg[@]} -eq 0 ] || chown nobody "$dir"
  cd "$dir"  # nobody may not be able to read the caller's working directory
  "${as_pg[@]}" touch pg.log  # pg_ctl appends to it as that user
  # --locale=C: the machine's locale may not be generated; C sorts the same everywhere.
  "${as_pg[@]}" "$bin/initdb" -D "$dir/data" -A trust -U rbv --no-sync -E UTF8 --locale=C >"$dir/pg.log" 2>&1 \
    || { echo "rbv pg: initdb failed:" >&2; tail -n 20 "$dir/pg.log" >&2; exit 1; }
  # A free port from the kernel; another process may take it before the server
  # binds it, so a start that fails to bind tries again with a new one.
  for _ in 1 2 3 4 5; do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if pg_start "$dir" "$port"; then
      echo "$port" >"$dir/port"
      echo "postgres://rbv@127.0.0.1:$port/postgres"
      exit 0
    fi
    grep -q "could not bind" "$dir/pg.log" || break
  done
  echo "rbv pg: the server did not start:" >&2
  tail -n 20 "$dir/pg.log" >&2
  exit 1
  ;;
stop)
  [ -d "$2" ] || exit 0
  dir=$(cd "$2" && pwd)
  cd "$dir"
  if [ -f "$dir/data/postmaster.pid" ]; then
    "${as_pg[@]}" "$bin/pg_ctl" stop -w -m fast -D "$dir/data" >/dev/null || true
  fi
  cd /
  rm -rf "$dir"
  ;;
halt)
  dir=$(cd "$2" && pwd)
  cd "$dir"
  "${as_pg[@]}" "$bin/pg_ctl" stop -w -m fast -D "$dir/data" >/dev/null
  ;;
resume)
  dir=$(cd "$2" && pwd)
  cd "$dir"
  pg_start "$dir" "$(cat "$dir/port")" || { tail -n 20 "$dir/pg.log" >&2; exit 1; }
  ;;
*)
  echo "usage: $0 start|stop|halt|resume DIR" >&2; exit 2
  ;;
esac
