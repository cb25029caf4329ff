#!/usr/bin/env bash
# A CI regression gate in one line: run a scenario (default: the embedded default) and exit
# with crashfuzz's code — 0 every cell met its expectation, 1 a regression or a silent canary,
# 2 bad input, 3 harness failure. Point your CI's JUnit reader at results/runs/ci/junit.xml.
#
#   scripts/ci-gate.sh [SCENARIO] [extra `crashfuzz run` flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
scenario="${1:-default}"
shift || true
out="results/runs/ci-$(date -u +%Y%m%dT%H%M%SZ)"
cargo build --release --quiet
exec target/release/crashfuzz run "$scenario" --no-progress --out "$out" "$@"
