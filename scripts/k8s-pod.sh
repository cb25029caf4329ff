#!/usr/bin/env bash
# What each pod of the Kubernetes campaign runs (scripts/ci/kubernetes/indexed-job.yaml), and
# what scripts/k8s-simulate.sh runs to prove it on one machine.
#
#   scripts/k8s-pod.sh shard   # pod JOB_COMPLETION_INDEX (0-based) of the Indexed Job: shard
#                              # JOB_COMPLETION_INDEX+1 of CRASHFUZZ_SHARDS into
#                              # $CRASHFUZZ_RESULTS/shard-<i>. A pod that restarts on the same
#                              # index (its node was lost) resumes that shard where it stopped.
#   scripts/k8s-pod.sh merge   # the merge Job: every shard merged into $CRASHFUZZ_RESULTS/merged;
#                              # exits with crashfuzz report's code (0 ok, 1 a failing cell).
#
# Environment: CRASHFUZZ_SHARDS, CRASHFUZZ_RESULTS (the shared volume), CRASHFUZZ_SCENARIO
# (default ci-gate), CRASHFUZZ_SEED (default 1), CRASHFUZZ_BIN (default crashfuzz on PATH),
# CRASHFUZZ_EXTRA_ARGS (more `crashfuzz run` flags for a fresh shard, e.g. --trials 24).
# A shard exits 0 when one of its cells failed (1): the merge gives the campaign's verdict, and
# a failed pod would only be retried. 2 (bad input), 3 (harness error) and 130 fail the pod.
set -euo pipefail
: "${CRASHFUZZ_RESULTS:?the mount point of the shared volume}"
bin="${CRASHFUZZ_BIN:-crashfuzz}"
case "${1:-}" in
  shard)
    : "${JOB_COMPLETION_INDEX:?set by Kubernetes in a pod of an Indexed Job}"
    : "${CRASHFUZZ_SHARDS:?how many shards: the completions of the Job}"
    i=$((JOB_COMPLETION_INDEX + 1))
    out="$CRASHFUZZ_RESULTS/shard-$i"
    if [ -f "$out/run.json" ]; then
      args=(run --resume "$out" --no-progress)
    else
      # shellcheck disable=SC2206 # extra flags are words by design
      args=(run "${CRASHFUZZ_SCENARIO:-ci-gate}" --seed "${CRASHFUZZ_SEED:-1}" --shard "$i/$CRASHFUZZ_SHARDS"
        --no-progress --out "$out" ${CRASHFUZZ_EXTRA_ARGS:-})
    fi
    code=0
    "$bin" "${args[@]}" || code=$?
    if [ "$code" -gt 1 ]; then exit "$code"; fi
    ;;
  merge)
    shopt -s nullglob
    shards=("$CRASHFUZZ_RESULTS"/shard-*/)
    if [ -n "${CRASHFUZZ_SHARDS:-}" ] && [ "${#shards[@]}" -ne "$CRASHFUZZ_SHARDS" ]; then
      echo "k8s-pod: ${#shards[@]} of $CRASHFUZZ_SHARDS shard directories in $CRASHFUZZ_RESULTS" >&2
      exit 2
    fi
    rm -rf "$CRASHFUZZ_RESULTS/merged"
    exec "$bin" report "${shards[@]}" --out "$CRASHFUZZ_RESULTS/merged"
    ;;
  *)
    sed -n '2,17p' "$0" >&2
    exit 2
    ;;
esac
