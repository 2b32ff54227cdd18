#!/usr/bin/env bash
# Audit-trail overhead (benches/audit.rs): what the audit entry adds to a handover and to a
# read, against the request time, with the baselines measured interleaved in one release run;
# plus concurrent-writer throughput and verify speed.
#
#   bench/audit.sh               on a SQLite file
#   bench/audit.sh --postgres    on a throw-away PostgreSQL server (scripts/with-postgres.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--postgres" ]; then
  shift
  cargo bench --no-run --bench audit "$@"
  exec bash scripts/with-postgres.sh bash -c '
    set -euo pipefail
    db="bench_$$"
    psql_url="$OVERDRACHT_TEST_POSTGRES_URL"
    psql "$psql_url" -qc "CREATE DATABASE $db"
    OVERDRACHT_BENCH_DATABASE_URL="${psql_url%/*}/$db" cargo bench --bench audit '"$*"'
  '
fi
cargo bench --bench audit "$@"
