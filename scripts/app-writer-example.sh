#!/usr/bin/env bash
# The example of an application's own writer (scenarios/examples/app-writer: Python's sqlite3 on
# the system SQLite) as a team would gate it: the clean program must pass every cell (exit 0)
# and the one with its health-check bug must fail the run (exit 1). Exits 0 when both hold.
#
#   scripts/app-writer-example.sh [extra `crashfuzz run` flags...]
#
# CRASHFUZZ_BIN picks the crashfuzz executable (default: a release build made here); the run
# directories go under $CRASHFUZZ_OUT (default results/runs/app-writer), replaced at each run.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "app-writer-example: python3 is needed (apt-get install python3)" >&2; exit 2; }
bin="${CRASHFUZZ_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=target/release/crashfuzz
fi
out="${CRASHFUZZ_OUT:-results/runs/app-writer}"
rm -rf "$out"
mkdir -p "$out"
failed=0
for pair in clean:0 health-check-bug:1; do
  name="${pair%%:*}"
  want="${pair##*:}"
  status=0
  "$bin" run "scenarios/examples/app-writer/$name.toml" --no-progress --out "$out/$name" "$@" || status=$?
  if [ "$status" -eq "$want" ]; then
    echo "app-writer-example: $name exited $status, as it must"
  else
    echo "app-writer-example: $name exited $status, expected $want (summary: $out/$name/summary.md)" >&2
    failed=1
  fi
done
exit "$failed"
