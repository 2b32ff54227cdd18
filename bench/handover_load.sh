#!/usr/bin/env bash
# Handover latency and throughput under load, from a separate process on loopback.
#
# Starts the release binary with a fresh data directory and, for each of SENDERS sending
# organisations (URA 00001234, 00001235, …), an agreement in force to the receiver
# (URA 87654321) and a demo token; the generator takes the tokens in turn. Then, in one run:
#   1. the CLI's conversion of N of the same dossiers (CPU per record: the baseline cost);
#   2. per offered rate (default 100 200 500 1000 requests/s): GET /health/live as the
#      baseline, then POST /handovers with a 20-resource dossier (a new handover each time);
#   3. the server's CPU per accepted handover (its CPU time over the run / handovers stored),
#      as a ratio to the CLI's CPU per conversion measured right before and right after that
#      handover phase (their mean): these shared machines change speed from minute to
#      minute (the CLI's figure moved from 1.43 to 2.05 ms within an hour here), and a
#      baseline from minutes earlier moved the ratio with it.
# The generator runs with --expect (200 for live, 201 for handovers): a rate at which any
# answer is not a new handover is reported as failed, and the script exits 1 at the end.
# A benchmark of refusals or 503s can therefore never pass for one of accepted handovers.
#
#   bench/handover_load.sh [SECONDS] [RATES...]      (defaults 10 and 100 200 500 1000)
#
# SENDERS (default 1): a service receives from many organisations, and each organisation may
# have `limits.per_caller_concurrency` requests in progress (32 by default); with one sender the
# benchmark measures that one organisation's share of the service, with several the service.
# The limit in force is printed; refusals by it are 503s and fail the run like any other.
#
# PATIENTS (default same): `new` gives every dossier a patient of its own, so the server inserts
# every resource, as a stream of first handovers does; `same` sends the example's one patient
# every time, whose 21 resources are then overwritten in place by each handover.
#
# REPEAT (default 1): the handover phase of each rate runs this many times, one after the
# other on the same server, each reporting its own figures. On these shared 2-core machines
# p99 varies a lot from run to run (see README); quote the spread, not one run.
#
# Both processes share this machine's cores; quote the figures as ratios to the baseline of
# the same run.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_="${1:-10}"
shift || true
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(100 200 500 1000)
PORT="${PORT:-18181}"
CLI_N="${CLI_N:-2000}"
SENDERS="${SENDERS:-1}"
REPEAT="${REPEAT:-1}"
PATIENTS="${PATIENTS:-same}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/overdracht-target}"

cargo build --release --quiet --bin overdracht --example handover_load || exit 2
BIN="$CARGO_TARGET_DIR/release/overdracht"
LOAD="$CARGO_TARGET_DIR/release/examples/handover_load"

DATA="$(mktemp -d)"
mkdir -p "$DATA/agreements"
sender_ura() { printf '%08d' $((1234 + $1)); }
. bench/agreement.sh
for i in $(seq 0 $((SENDERS - 1))); do
  bench_agreement "$DATA/agreements/bench-$i.json" "bench-$i" "$(sender_ura "$i")"
done

echo "== $(nproc) cores; server and load generator share them; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $SENDERS sending organisation(s); per-caller concurrency limit: ${OVERDRACHT_PER_CALLER_CONCURRENCY:-32 (default)}; patients: $PATIENTS"
echo "== 1. the CLI converts $CLI_N of the same dossiers (one process, --jobs 1)"
"$LOAD" --mode dump --patients "$PATIENTS" --rate "$CLI_N" > "$DATA/dossiers.ndjson" || exit 2
# The CPU in ms of the CLI converting the first N dossiers (start-up included).
cli_run_ms() {
  head -n "$1" "$DATA/dossiers.ndjson" > "$DATA/cli-in.ndjson"
  /usr/bin/time -f "cli: %e s wall, %U s user, %S s sys" "$BIN" convert "$DATA/cli-in.ndjson" --jobs 1 \
    --out /dev/null --rejects "$DATA/cli-rejects.ndjson" 2> "$DATA/cli.txt" >/dev/null
  awk '/^cli:/ {print ($5 + $7) * 1000}' "$DATA/cli.txt"
}
# The CLI's start-up and first conversion: the median of three runs of one dossier.
CLI_ONE_MS=$(for _ in 1 2 3; do cli_run_ms 1; done | sort -n | sed -n 2p)
# The CLI's CPU per conversion of N dossiers, in ms, without its start-up: (N runs - one) / (N - 1).
cli_cpu_ms() {
  awk -v t="$(cli_run_ms "$1")" -v one="$CLI_ONE_MS" -v n="$1" 'BEGIN {print (t - one) / (n - 1)}'
}
/usr/bin/time -f "cli: %e s wall, %U s user, %S s sys" "$BIN" convert "$DATA/dossiers.ndjson" --jobs 1 \
  --out /dev/null --rejects "$DATA/cli-rejects.ndjson" 2> "$DATA/cli.txt" >/dev/null
grep '^cli:' "$DATA/cli.txt"
CLI_CPU_MS=$(awk -v n="$CLI_N" '/^cli:/ {print ($5 + $7) * 1000 / n}' "$DATA/cli.txt")
echo "cli CPU per conversion: ${CLI_CPU_MS} ms"
# Beside each handover phase (before and after it): fewer records, a second or two each.
CLI_NEAR_N="${CLI_NEAR_N:-1000}"
echo "cli start-up and one conversion: ${CLI_ONE_MS} ms of CPU (taken off the figures beside each phase)"

OVERDRACHT_LOG=warn OVERDRACHT_AGREEMENTS_DIR="$DATA/agreements" \
  "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" --insecure-trust-demo-key 2>"$DATA/serve.log" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null || { cat "$DATA/serve.log"; exit 2; }
TOKEN=""
for i in $(seq 0 $((SENDERS - 1))); do
  t="$("$BIN" token --uzi 900012345 --role 01.015 --ura "$(sender_ura "$i")" --data-dir "$DATA")" || exit 2
  TOKEN="${TOKEN:+$TOKEN,}$t"
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
stored() { curl -fs "http://127.0.0.1:$PORT/metrics" | awk '/^overdracht_handovers_total\{.*created/ {s += $2} END {print s + 0}'; }

failed=0
echo "== 2. per offered rate, $SECONDS_ s each"
for rate in "${RATES[@]}"; do
  "$LOAD" --url "http://127.0.0.1:$PORT" --mode live --rate "$rate" --seconds "$SECONDS_" --expect 200 || failed=1
  for run in $(seq "$REPEAT"); do
    [ "$REPEAT" -gt 1 ] && echo "-- $rate/s, run $run of $REPEAT"
    cli_before=$(cli_cpu_ms "$CLI_NEAR_N")
    before_ticks=$(cpu_ticks); before_n=$(stored)
    "$LOAD" --url "http://127.0.0.1:$PORT" --mode handover --patients "$PATIENTS" --token "$TOKEN" --rate "$rate" --seconds "$SECONDS_" \
      --expect 201 || failed=1
    after_ticks=$(cpu_ticks); after_n=$(stored)
    cli_after=$(cli_cpu_ms "$CLI_NEAR_N")
    n=$((after_n - before_n))
    if [ "$n" -gt 0 ]; then
      awk -v t=$((after_ticks - before_ticks)) -v hz="$(getconf CLK_TCK)" -v n="$n" -v b="$cli_before" -v a="$cli_after" \
        'BEGIN {ms = t * 1000 / hz / n; cli = (b + a) / 2; printf "server CPU per accepted handover at this rate: %.2f ms (%d stored) = %.2f x the CLI per conversion (%.2f ms before, %.2f ms after this phase)\n", ms, n, ms / cli, b, a}'
    fi
  done
done
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$failed" -ne 0 ]; then
  echo "FAILED: at some rate not every answer was a new handover (see statuses above)"
  exit 1
fi
