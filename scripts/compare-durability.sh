#!/usr/bin/env bash
# The durability comparison engineers read: runs the `durability` scenario (kill and power loss
# over WAL, DELETE, TRUNCATE, PERSIST x OFF, NORMAL, FULL, EXTRA; about 10 minutes on two
# cores), then renders results/durability-matrix.md with SQLite's promise beside each measured
# cell and the median commit latency from results/write-latency.json (scripts/bench.sh).
#
#   scripts/compare-durability.sh [--seed S] [extra `crashfuzz run` flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
out="results/runs/durability-$(date -u +%Y%m%dT%H%M%SZ)"
status=0
target/release/crashfuzz run durability --no-progress --out "$out" "$@" || status=$?
if [ "$status" -gt 1 ]; then exit "$status"; fi
latency=()
[ -f results/write-latency.json ] && latency=(--latency results/write-latency.json)
target/release/crashfuzz durability-report "$out" results/durability-matrix.md "${latency[@]}"
echo "campaign verdict: exit $status (0: every cell met SQLite's promise; 1: see $out/summary.md)"
exit "$status"
