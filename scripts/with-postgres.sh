#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL server: installs Debian's `postgresql` if no
# initdb is found, starts a server as an unprivileged user in a temporary directory on a
# free port of 127.0.0.1, exports OVERDRACHT_TEST_POSTGRES_URL for the command, and stops the
# server and removes its files afterwards, however the command ends.
#
#   bash scripts/with-postgres.sh cargo test --test instances -- --ignored postgres_
set -euo pipefail

find_bin() {
  command -v "$1" 2>/dev/null && return
  ls /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -1
}
if [ -z "$(find_bin initdb)" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
INITDB=$(find_bin initdb)
PG_CTL=$(find_bin pg_ctl)
[ -n "$INITDB" ] && [ -n "$PG_CTL" ] || { echo "no PostgreSQL server programs (initdb, pg_ctl)" >&2; exit 1; }

dir=$(mktemp -d /tmp/overdracht-pg.XXXXXX)
chmod 755 "$dir"
# PostgreSQL refuses to run as root: as root, the server runs as `postgres` (the Debian
# package's user; created if missing), otherwise as the caller.
as_user() { "$@"; }
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  chown postgres "$dir"
  as_user() { su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; }
fi

# A free port: ask the kernel for one, as the tests do.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
  || shuf -i 20000-60000 -n 1)

stop() {
  as_user "$PG_CTL" -D "$dir/data" stop -m fast >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

as_user "$INITDB" -D "$dir/data" -A trust -U postgres --no-locale -E UTF8 >/dev/null
as_user "$PG_CTL" -D "$dir/data" -l "$dir/log" -w start \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off" >/dev/null \
  || { cat "$dir/log" >&2; exit 1; }
echo "$("$INITDB" --version) on 127.0.0.1:$port (data in $dir)"

export OVERDRACHT_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
"$@"
