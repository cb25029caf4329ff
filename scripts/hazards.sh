#!/usr/bin/env bash
# The hazards page: installs the OS's libsqlite3.so.0 (the cross_version cell checks with it, and
# the lock_cancel cells run writers on it), runs the `hazards` scenario (616 trials, about four
# minutes on two cores, plus a few minutes once to compile the shared-library writer and the
# SQLite versions it names) and renders results/hazards.md from it: per hazard, journal mode and
# SQLite build, damaged and lost-acknowledgement rates with their Wilson intervals, beside the
# plain kill cells of the same workload.
#
#   scripts/hazards.sh [--seed S] [extra `crashfuzz run` flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-sqlite3.sh
cargo build --release --quiet
out="results/runs/hazards-$(date -u +%Y%m%dT%H%M%SZ)"
status=0
target/release/crashfuzz run hazards --no-progress --out "$out" "$@" || status=$?
if [ "$status" -gt 1 ]; then exit "$status"; fi
target/release/crashfuzz hazards-report results/hazards.md "$out"
echo "campaign verdict: exit $status (0: every canary fired and every kill cell stayed clean; 1: see $out/summary.md)"
exit "$status"
