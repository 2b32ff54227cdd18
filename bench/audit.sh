#!/usr/bin/env bash
# Audit-trail overhead (benches/audit.rs): what the audit entry adds to a handover and to a
# read, against the request time, with the baselines measured interleaved in one release run;
# plus the throughput of 8 concurrent writers and verify speed.
#
#   bench/audit.sh               on a SQLite file
#   bench/audit.sh --postgres    on a SQLite file, then on a throw-away PostgreSQL server
#                                (scripts/postgres.sh), same build, one after the other; ends
#                                with the 8-writer figures of both
#   PROFILE=debug bench/audit.sh --postgres
#                                a debug build and a few rounds: checks the script, not the figures
#
# Extra arguments go to `cargo bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
postgres=0
if [ "${1:-}" = "--postgres" ]; then
  postgres=1
  shift
fi
case "${PROFILE:-release}" in
  release) profile=() ;;
  debug) profile=(--profile dev); export OVERDRACHT_BENCH_QUICK=1 ;;
  *) echo "PROFILE must be release or debug" >&2; exit 2 ;;
esac
cargo bench "${profile[@]}" --no-run --bench audit "$@"
# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
out=$(mktemp)
trap 'pg_stop; rm -f "$out"' EXIT
bench() { cargo bench "${profile[@]}" --bench audit "$@" | tee -a "$out"; }

echo "== SQLite"
bench "$@"
if [ "$postgres" = 1 ]; then
  pg_start
  OVERDRACHT_BENCH_DATABASE_URL="$(pg_create_database bench_audit)" bench "$@"
  echo "== 8 concurrent writers, both backends, this run"
  grep -E '^(database|concurrency):' "$out" | paste - -
fi
