#!/usr/bin/env bash
# Throughput of POST /handovers with 2 `serve` instances against 1, on one PostgreSQL
# database, and where the time goes.
#
# Starts a throw-away PostgreSQL server (scripts/postgres.sh), then for 1 and for 2
# instances: a fresh database, the instances (one data directory, so one demo key signs the
# token for both; an agreement in force from the token's organisation, URA 00001234, to the
# receiver, URA 87654321), a warm-up, and a closed-loop run of the load generator
# (bench/handover_load.rs) with CONCURRENCY clients spreading their requests over the
# instances. Every answer must be 201 (a new handover), or the script fails. It prints the
# sustained accepted handovers per second and the CPU time of each process (the instances,
# the PostgreSQL server with its backends, the load generator) per handover and as a share
# of the wall time.
#
#   bench/instances.sh [SECONDS]          (default 20; environment: CONCURRENCY=16, WARMUP=3)
#   PROFILE=debug bench/instances.sh 3    (a debug build: checks the script, not the figures)
#
# All processes share this machine's cores: the figures are ratios within one run.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_="${1:-20}"
CONCURRENCY="${CONCURRENCY:-16}"
WARMUP="${WARMUP:-3}"
PROFILE="${PROFILE:-release}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/overdracht-target}"
case "$PROFILE" in
  release) cargo build --release --quiet --bin overdracht --example handover_load || exit 2; OUT=release ;;
  debug) cargo build --quiet --bin overdracht --example handover_load || exit 2; OUT=debug ;;
  *) echo "PROFILE must be release or debug" >&2; exit 2 ;;
esac
BIN="$CARGO_TARGET_DIR/$OUT/overdracht"
LOAD="$CARGO_TARGET_DIR/$OUT/examples/handover_load"

# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
DATA="$(mktemp -d)"
SERVERS=()
stop_servers() {
  for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${SERVERS[@]}"; do wait "$pid" 2>/dev/null; done
  SERVERS=()
}
cleanup() { stop_servers; pg_stop; rm -rf "$DATA"; }
trap cleanup EXIT
pg_start || exit 2

mkdir -p "$DATA/agreements"
. bench/agreement.sh
bench_agreement "$DATA/agreements/bench.json" bench 00001234
TOKEN="$("$BIN" token --uzi 900012345 --role 01.015 --ura 00001234 --data-dir "$DATA")" || exit 2
HZ=$(getconf CLK_TCK)

ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
seconds_of() { awk -v t="$1" -v hz="$HZ" 'BEGIN {printf "%.2f", t / hz}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# run N: N instances on a fresh database; prints the figures and sets RATE_<N>.
run() {
  local n=$1 url urls=() ports=() i
  url=$(pg_create_database "bench_$n") || exit 2
  for i in $(seq "$n"); do
    local port
    port=$(free_port)
    # Enough room for the clients: the per-caller limit would refuse them with 503.
    OVERDRACHT_LOG=warn OVERDRACHT_DATABASE_URL="$url" OVERDRACHT_AGREEMENTS_DIR="$DATA/agreements" \
      OVERDRACHT_PER_CALLER_CONCURRENCY=$((CONCURRENCY * 2)) \
      "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$DATA" --insecure-trust-demo-key \
      2>>"$DATA/serve-$n-$i.log" &
    SERVERS+=($!)
    ports+=("$port")
    urls+=("http://127.0.0.1:$port")
  done
  for u in "${urls[@]}"; do
    for _ in $(seq 300); do
      curl -fs "$u/health/ready" >/dev/null 2>&1 && break
      sleep 0.1
    done
    curl -fs "$u/health/ready" >/dev/null || { cat "$DATA"/serve-"$n"-*.log; exit 2; }
  done
  local targets
  targets=$(IFS=,; echo "${urls[*]}")
  echo "== $n instance(s): warm-up ${WARMUP} s, then ${SECONDS_} s with $CONCURRENCY clients"
  "$LOAD" --url "$targets" --mode handover --token "$TOKEN" --concurrency "$CONCURRENCY" --seconds "$WARMUP" \
    --expect 201 >/dev/null || { echo "FAILED: warm-up answers were not all 201"; exit 1; }
  local before=() pg_before pg_after wall_start wall_end out
  for pid in "${SERVERS[@]}"; do before+=("$(ticks "$pid")"); done
  pg_before=$(pg_cpu_ticks)
  wall_start=$(date +%s.%N)
  out=$(/usr/bin/time -f "load-cpu %U %S" "$LOAD" --url "$targets" --mode handover --token "$TOKEN" \
    --concurrency "$CONCURRENCY" --seconds "$SECONDS_" --expect 201 2>&1)
  local status=$?
  wall_end=$(date +%s.%N)
  pg_after=$(pg_cpu_ticks)
  echo "$out" | grep -v '^load-cpu\|^dossier:'
  [ "$status" -eq 0 ] || { echo "FAILED: not every answer was 201"; exit 1; }
  local accepted wall rate
  accepted=$(echo "$out" | sed -n 's/.* requests=\([0-9]*\) .*/\1/p')
  wall=$(awk -v a="$wall_start" -v b="$wall_end" 'BEGIN {print b - a}')
  # The generator's rate: answers over the time from its first request to its last answer.
  rate=$(echo "$out" | sed -n 's/.* achieved_rate=\([0-9.]*\)\/s.*/\1/p')
  echo "accepted: $accepted handovers, sustained $rate/s (all 201)"
  echo "where the time goes (CPU seconds over the ${wall} s run; per handover; share of one core):"
  local k=0 serve_total=0
  for pid in "${SERVERS[@]}"; do
    local t=$(( $(ticks "$pid") - before[k] ))
    serve_total=$((serve_total + t))
    k=$((k + 1))
    awk -v name="serve #$k" -v t="$t" -v hz="$HZ" -v n="$accepted" -v w="$wall" \
      'BEGIN {printf "  %-12s %7.2f s  %6.2f ms/handover  %5.0f %%\n", name, t / hz, t * 1000 / hz / n, 100 * t / hz / w}'
  done
  awk -v t="$((pg_after - pg_before))" -v hz="$HZ" -v n="$accepted" -v w="$wall" \
    'BEGIN {printf "  %-12s %7.2f s  %6.2f ms/handover  %5.0f %%\n", "postgresql", t / hz, t * 1000 / hz / n, 100 * t / hz / w}'
  echo "$out" | awk -v n="$accepted" -v w="$wall" '/^load-cpu/ {t = $2 + $3;
    printf "  %-12s %7.2f s  %6.2f ms/handover  %5.0f %%   (includes its start)\n", "load", t, t * 1000 / n, 100 * t / w}'
  awk -v c="$(nproc)" 'BEGIN {printf "  (%d cores: %d %% would be all of them)\n", c, 100 * c}'
  printf -v "RATE_$n" '%s' "$rate"
  stop_servers
}

echo "== $(nproc) cores shared by the instances, PostgreSQL and the load generator; profile $PROFILE"
run 1
run 2
awk -v a="$RATE_1" -v b="$RATE_2" 'BEGIN {printf "== 2 instances vs 1: %.0f/s vs %.0f/s accepted = %.2f x\n", b, a, (a > 0 ? b / a : 0)}'
