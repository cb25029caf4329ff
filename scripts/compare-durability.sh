#!/usr/bin/env bash
# The durability comparison engineers read: runs the `durability-kill` scenario (SIGTERM then
# SIGKILL, 200 trials per cell) and the `durability-power-loss` scenario (320 crash images per
# cell) over WAL, DELETE, TRUNCATE, PERSIST x OFF, NORMAL, FULL, EXTRA (4 minutes on two
# cores), then renders results/durability-matrix.md from both, with SQLite's promise beside
# each measured cell and the median commit latency from results/write-latency.json
# (scripts/bench.sh).
#
#   scripts/compare-durability.sh [--seed S] [extra `crashfuzz run` flags, given to both...]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
status=0
dirs=()
for scenario in durability-kill durability-power-loss; do
  out="results/runs/$scenario-$stamp"
  code=0
  target/release/crashfuzz run "$scenario" --no-progress --out "$out" "$@" || code=$?
  if [ "$code" -gt 1 ]; then exit "$code"; fi
  if [ "$code" -gt "$status" ]; then status=$code; fi
  dirs+=("$out")
done
latency=()
[ -f results/write-latency.json ] && latency=(--latency results/write-latency.json)
target/release/crashfuzz durability-report results/durability-matrix.md "${dirs[@]}" "${latency[@]}"
echo "campaign verdict: exit $status (0: every cell met SQLite's promise; 1: see ${dirs[*]/%//summary.md})"
exit "$status"
