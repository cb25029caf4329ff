#!/usr/bin/env bash
# The CI regression gate: builds crashfuzz, runs a scenario (default: ci-gate, about two
# minutes on two cores: kills in every journalled mode, power loss WAL+FULL and DELETE+EXTRA,
# every canary) and exits with crashfuzz's code: 0 every cell met its expectation, 1 a
# regression, a cell without evidence (no-data) or a silent canary, 2 bad input, 3 harness
# failure, 130 interrupted.
#
#   scripts/ci-gate.sh [SCENARIO] [extra `crashfuzz run` flags...]
#
# The run directory is $CRASHFUZZ_OUT if set (it must not hold a run yet), otherwise
# results/runs/ci-gate, replaced at each run, so that a CI job finds the JUnit file at
# results/runs/ci-gate/junit.xml and the summary at results/runs/ci-gate/summary.md. Inside
# GitHub Actions crashfuzz also appends the summary to the job summary and annotates each
# failing cell. To gate your own SQLite build, add `--sqlite BUILD` (a version, `system`, or
# the path of your libsqlite3.so) or pass a scenario of yours whose matrix names it.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario="${1:-ci-gate}"
shift || true
if [ -n "${CRASHFUZZ_OUT:-}" ]; then
  out="$CRASHFUZZ_OUT"
else
  out=results/runs/ci-gate
  rm -rf "$out"
fi
cargo build --release --quiet
status=0
target/release/crashfuzz run "$scenario" --no-progress --out "$out" "$@" || status=$?
echo "ci-gate: run directory $out (junit: $out/junit.xml, summary: $out/summary.md); exit $status"
exit "$status"
