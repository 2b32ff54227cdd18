#!/usr/bin/env bash
# Handover latency and throughput under load, from a separate process on loopback.
#
# Starts the release binary with a fresh data directory, mints a demo token, then runs the
# open-loop generator (bench/handover_load.rs) twice at the same rate: GET /health/live as
# the baseline, then POST /handovers with a 20-resource dossier (a new handover each time).
# Target: p99 <= 20 ms at 500 requests/s.
#
#   bench/handover_load.sh [RATE] [SECONDS]      (defaults 500 and 10)
#
# Measured on the 2-core development machine (release build, server and generator sharing
# the cores), 500/s for 10 s, 21-resource dossier (17.7 KB STU3 Bundle):
#   GET /health/live  p50 1.69 ms  p90 2.10 ms  p99 2.60 ms   500/s, 0 errors
#   POST /handovers   p50 4.07 ms  p90 8.17 ms  p99 16.11 ms  500/s, 5000 x 201, 0 errors
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-500}"
SECONDS_="${2:-10}"
PORT="${PORT:-18181}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/overdracht-target}"

cargo build --release --quiet --bin overdracht --example handover_load
BIN="$CARGO_TARGET_DIR/release/overdracht"
LOAD="$CARGO_TARGET_DIR/release/examples/handover_load"

DATA="$(mktemp -d)"
OVERDRACHT_LOG=warn "$BIN" serve --insecure-trust-demo-key --listen "127.0.0.1:$PORT" --data-dir "$DATA" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
TOKEN="$("$BIN" token --uzi 900012345 --role 01.015 --ura 00001234 --data-dir "$DATA")"

echo "== $(nproc) cores; server and load generator share them; rate $RATE/s for $SECONDS_ s each"
"$LOAD" --url "http://127.0.0.1:$PORT" --mode live --rate "$RATE" --seconds "$SECONDS_"
"$LOAD" --url "http://127.0.0.1:$PORT" --mode handover --token "$TOKEN" --rate "$RATE" --seconds "$SECONDS_"
echo "stored handovers: $(curl -fs "http://127.0.0.1:$PORT/metrics" | grep '^overdracht_handovers_total' || true)"
