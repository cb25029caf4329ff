#!/usr/bin/env bash
# A CI regression gate in one line: run a scenario (default: the embedded default) and exit
# with crashfuzz's code — 0 every cell met its expectation, 1 a regression, a cell without
# evidence (no-data) or a silent canary, 2 bad input, 3 harness failure, 130 interrupted.
#
#   scripts/ci-gate.sh [SCENARIO] [extra `crashfuzz run` flags...]
#
# The run directory is $CRASHFUZZ_OUT if set (it must not hold a run yet), otherwise
# results/runs/ci-<UTC timestamp>; the script prints it last. Point your CI's JUnit reader at
# <run directory>/junit.xml and show <run directory>/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario="${1:-default}"
shift || true
out="${CRASHFUZZ_OUT:-results/runs/ci-$(date -u +%Y%m%dT%H%M%SZ)}"
cargo build --release --quiet
status=0
target/release/crashfuzz run "$scenario" --no-progress --out "$out" "$@" || status=$?
echo "ci-gate: run directory $out (junit: $out/junit.xml, summary: $out/summary.md); exit $status"
exit "$status"
