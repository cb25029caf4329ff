#!/usr/bin/env bash
# Write-latency benchmarks and their report: runs the criterion benches of
# harness/benches/write_latency.rs (commit latency per journal mode x synchronous x payload x
# rows, WAL checkpoints, the fsync floor, the tracing VFS's overhead), then renders
# results/write-latency.md and results/write-latency.svg with `crashfuzz bench-report`.
#
#   scripts/bench.sh            # 20 samples per benchmark, criterion's HTML report with plots:
#                               # about 7 minutes on 2 cores
#   scripts/bench.sh --quick    # 10 short samples, no plots: under a minute on 2 cores
#
# Both times are with everything already built; a first build adds about 4 minutes. The
# databases live in ${CARGO_TARGET_DIR:-target}/bench-db on the real disk; set
# CRASHFUZZ_BENCH_DIR (e.g. /dev/shm/crashfuzz-bench) to measure another file system — the
# report names the one it ran on. Criterion's HTML report: target/criterion/report/index.html
# (full run only).
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  "") criterion_args=() ;;
  --quick) criterion_args=(--sample-size 10 --warm-up-time 0.1 --measurement-time 0.3 --noplot) ;;
  -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
  *) echo "usage: scripts/bench.sh [--quick]" >&2; exit 2 ;;
esac

# Recorded by the bench in its run file, so the report names the command that produced it.
export CRASHFUZZ_BENCH_COMMAND="scripts/bench.sh${1:+ $1}"
criterion_dir="${CRITERION_HOME:-${CARGO_TARGET_DIR:-target}/criterion}"

cargo bench --bench write_latency -- "${criterion_args[@]}"
cargo run --release --quiet -- bench-report "$criterion_dir" results/write-latency.md --svg results/write-latency.svg \
  --json results/write-latency.json
