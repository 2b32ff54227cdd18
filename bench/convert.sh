#!/usr/bin/env bash
# Conversion benchmarks. Prints:
#  1. in-process throughput against a serde_json parse+serialise baseline (same run);
#  2. CLI scaling from --jobs 1 to --jobs 2 on a generated NDJSON corpus;
#  3. peak RSS of the CLI while streaming DOSSIERS (default 100000) generated dossiers.
# Usage: bench/convert.sh [DOSSIERS]   (environment: CORPUS, ROUNDS for part 1; SCALE_N for part 2)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/overdracht-target}"
STREAM_N="${1:-100000}"
SCALE_N="${SCALE_N:-3000}"

cargo build --release --quiet --bin overdracht --example gen-corpus
BIN="$CARGO_TARGET_DIR/release/overdracht"
GEN="$CARGO_TARGET_DIR/release/examples/gen-corpus"

echo "== 1. throughput vs serde_json baseline (cargo bench --bench convert)"
cargo bench --quiet --bench convert

echo
echo "== 2. --jobs 1 vs --jobs 2 on $SCALE_N dossiers ($(nproc) cores)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$GEN" "$SCALE_N" > "$TMP/corpus.ndjson"
python3 - "$BIN" "$TMP/corpus.ndjson" <<'PY'
import subprocess, sys, time, statistics
binary, corpus = sys.argv[1], sys.argv[2]
def run(jobs):
    t = time.perf_counter()
    subprocess.run([binary, "convert", corpus, "--jobs", str(jobs), "--out", "/dev/null", "--rejects", "/dev/null"],
                   check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t
times = {1: [], 2: []}
for _ in range(3):            # interleaved, so that noise hits both
    for j in (1, 2):
        times[j].append(run(j))
m1, m2 = statistics.median(times[1]), statistics.median(times[2])
print(f"--jobs 1: {m1:.2f} s   --jobs 2: {m2:.2f} s   speed-up {m1/m2:.2f}x (target >= 1.7x)")
PY

echo
echo "== 3. peak RSS streaming $STREAM_N dossiers through --jobs 2"
python3 - "$BIN" "$GEN" "$STREAM_N" <<'PY'
import os, subprocess, sys, time
binary, gen, n = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
g = subprocess.Popen([gen, n], stdout=subprocess.PIPE)
c = subprocess.Popen([binary, "convert", "-", "--jobs", "2", "--output", "ndjson", "--rejects", "/dev/null"],
                     stdin=g.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
g.stdout.close()
_, status, usage = os.wait4(c.pid, 0)
g.wait()
elapsed = time.perf_counter() - t
summary = c.stderr.read().decode().strip().splitlines()[-1]
print(f"{summary}")
print(f"peak RSS of the converter: {usage.ru_maxrss / 1024:.1f} MB over {elapsed:.0f} s (target <= 200 MB); exit status {os.waitstatus_to_exitcode(status)}")
PY
