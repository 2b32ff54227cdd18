# Functions for a throw-away PostgreSQL server, sourced by scripts/with-postgres.sh and the
# benchmarks that need one (bench/instances.sh, bench/audit.sh --postgres):
#
#   source scripts/postgres.sh
#   pg_start              # installs Debian's `postgresql` if no initdb is found, starts a
#                         # server as an unprivileged user in a temporary directory on a
#                         # free port of 127.0.0.1; sets PG_URL (the `postgres` database),
#                         # PG_DIR (its files) and PG_BIN (its programs' directory)
#   pg_create_database NAME   # prints the URL of a new, empty database NAME
#   pg_cpu_ticks          # CPU ticks (user + system) of the server and all its processes
#   pg_stop               # stops the server and removes its files (safe to call twice)
#
# The caller arranges for pg_stop to run however it ends (trap pg_stop EXIT).

# `return 0`, not `return`: called from pg_stop in an EXIT trap, a bare `return` gives the
# status of the command before the trap, so a failed command made the lookup "fail" and
# `set -e` ended the trap before the server was stopped (it was left running).
pg_find_bin() {
  command -v "$1" 2>/dev/null && return 0
  ls /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -1
}

# PostgreSQL refuses to run as root: as root, the server runs as `postgres` (the Debian
# package's user; created if missing), otherwise as the caller.
pg_as_user() {
  if [ "$(id -u)" = 0 ]; then
    su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}

pg_start() {
  if [ -z "$(pg_find_bin initdb)" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local initdb pg_ctl port
  initdb=$(pg_find_bin initdb)
  pg_ctl=$(pg_find_bin pg_ctl)
  [ -n "$initdb" ] && [ -n "$pg_ctl" ] || { echo "no PostgreSQL server programs (initdb, pg_ctl)" >&2; return 1; }
  PG_BIN=$(dirname "$pg_ctl")
  PG_DIR=$(mktemp -d /tmp/overdracht-pg.XXXXXX)
  chmod 755 "$PG_DIR"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    chown postgres "$PG_DIR"
  fi
  # A free port: ask the kernel for one, as the tests do.
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
    || shuf -i 20000-60000 -n 1)
  pg_as_user "$initdb" -D "$PG_DIR/data" -A trust -U postgres --no-locale -E UTF8 >/dev/null
  pg_as_user "$pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w start \
    -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off" >/dev/null \
    || { cat "$PG_DIR/log" >&2; return 1; }
  echo "$("$initdb" --version) on 127.0.0.1:$port (data in $PG_DIR)"
  PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

pg_create_database() {
  local psql
  psql=$(pg_find_bin psql)
  [ -n "$psql" ] || { echo "no psql" >&2; return 1; }
  "$psql" "$PG_URL" -qc "CREATE DATABASE $1" >&2 || return 1
  echo "${PG_URL%/*}/$1"
}

pg_cpu_ticks() {
  local main stat line pid rest total=0
  main=$(head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
  # The postmaster (with the children it has reaped) and its live children: backends,
  # checkpointer, WAL writer, ... Fields after the command name's ")": state ppid ...,
  # utime and stime are the 12th and 13th, cutime and cstime the 14th and 15th.
  for stat in /proc/[0-9]*/stat; do
    read -r line < "$stat" 2>/dev/null || continue
    pid=${line%% *}
    rest=${line##*) }
    # shellcheck disable=SC2086
    set -- $rest
    if [ "$pid" = "$main" ]; then
      total=$((total + ${12} + ${13} + ${14} + ${15}))
    elif [ "$2" = "$main" ]; then
      total=$((total + ${12} + ${13}))
    fi
  done
  echo "$total"
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  local pg_ctl
  pg_ctl=$(pg_find_bin pg_ctl)
  pg_as_user "$pg_ctl" -D "$PG_DIR/data" stop -m fast >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=
}
