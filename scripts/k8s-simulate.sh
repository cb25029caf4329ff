#!/usr/bin/env bash
# Proves the Kubernetes campaign's arithmetic on one machine. Reads the shard count, scenario and
# seed from scripts/ci/kubernetes/indexed-job.yaml, runs the pods' command
# (scripts/k8s-pod.sh shard) for every JOB_COMPLETION_INDEX as parallel processes with the
# manifest's environment, runs the merge pod's command, then one unsharded run of the same
# scenario and seed, and compares them: the same cells, the same trial plans (each index's cell
# and seed), and per cell the same trials, checked trials and inconclusive trials; where a
# trial leaves one crash state, the same crash states and verdict. A power-loss cell's distinct
# images, and so whether its canary fired in a few trials, depend on where each real-time trace
# was cut: its verdict is not compared, but each run's exit code must follow from its own
# cells' verdicts. Exit 0 when they agree, 1 when they do not.
#
#   scripts/k8s-simulate.sh [extra `crashfuzz run` flags for every run, e.g. --trials 26 --jobs 1]
#
# CRASHFUZZ_BIN picks the binary (default: target/release/crashfuzz, built if missing);
# K8S_SIM_SCENARIO replaces the manifest's scenario (e.g. a smaller one in CI). The runs go to
# a temporary directory, removed at the end unless K8S_SIM_KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=scripts/ci/kubernetes/indexed-job.yaml
value() { # the value of env var $1 in the manifest
  awk -v name="$1" '$0 ~ "- name: " name "$" { getline; gsub(/.*value: *"?|"$/, ""); print; exit }' "$manifest"
}
shards="$(awk '/^  completions:/ { print $2; exit }' "$manifest")"
[ "$shards" = "$(value CRASHFUZZ_SHARDS)" ] || { echo "k8s-simulate: completions $shards != CRASHFUZZ_SHARDS $(value CRASHFUZZ_SHARDS)" >&2; exit 1; }
scenario="${K8S_SIM_SCENARIO:-$(value CRASHFUZZ_SCENARIO)}"
seed="$(value CRASHFUZZ_SEED)"
bin="${CRASHFUZZ_BIN:-target/release/crashfuzz}"
[ -x "$bin" ] || cargo build --release --quiet
bin="$(cd "$(dirname "$bin")" && pwd)/${bin##*/}"
work="$(mktemp -d)"
[ "${K8S_SIM_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
echo "k8s-simulate: $shards pods of $scenario, seed $seed, in $work"

pids=()
for ((index = 0; index < shards; index++)); do
  JOB_COMPLETION_INDEX=$index CRASHFUZZ_SHARDS=$shards CRASHFUZZ_SCENARIO="$scenario" CRASHFUZZ_SEED="$seed" \
    CRASHFUZZ_RESULTS="$work/volume" CRASHFUZZ_BIN="$bin" CRASHFUZZ_EXTRA_ARGS="$* --workdir $work/pod-$index" \
    scripts/k8s-pod.sh shard > "$work/pod-$index.log" 2>&1 &
  pids+=($!)
done
for ((index = 0; index < shards; index++)); do
  wait "${pids[$index]}" || { echo "k8s-simulate: pod $index failed:" >&2; cat "$work/pod-$index.log" >&2; exit 1; }
done
code=0
CRASHFUZZ_SHARDS=$shards CRASHFUZZ_RESULTS="$work/volume" CRASHFUZZ_BIN="$bin" scripts/k8s-pod.sh merge \
  > "$work/merge.log" 2>&1 || code=$?
[ "$code" -le 1 ] || { echo "k8s-simulate: the merge failed ($code):" >&2; cat "$work/merge.log" >&2; exit 1; }
whole=0
"$bin" run "$scenario" --seed "$seed" --no-progress --out "$work/whole" --workdir "$work" "$@" > "$work/whole.log" 2>&1 || whole=$?
[ "$whole" -le 1 ] || { echo "k8s-simulate: the unsharded run failed ($whole):" >&2; cat "$work/whole.log" >&2; exit 1; }

python3 - "$work/volume/merged" "$work/whole" "$code" "$whole" <<'PY'
import json, sys
merged_dir, whole_dir = sys.argv[1], sys.argv[2]
exits = {"merge": int(sys.argv[3]), "unsharded run": int(sys.argv[4])}
def plans(run_dirs):
    """Each trial's plan: its cell and its seed (both follow from the campaign seed and index)."""
    out = {}
    for d in run_dirs:
        for line in open(f"{d}/trials.jsonl"):
            t = json.loads(line)
            if t["trial"] in out:
                sys.exit(f"k8s-simulate: trial {t['trial']} ran twice")
            out[t["trial"]] = (t["cell"], t["seed"])
    return out
merged = json.load(open(f"{merged_dir}/summary.json"))
whole = json.load(open(f"{whole_dir}/summary.json"))
problems = []
if plans([s["dir"] for s in merged["sources"]]) != plans([whole_dir]):
    problems.append("the shards' trials (index, cell, seed) are not the unsharded run's")
for name, summary in (("merge", merged), ("unsharded run", whole)):
    failing = [c["id"] for c in summary["cells"] if c["verdict"] != "ok"]
    if summary["failed"] != bool(failing) or exits[name] != int(summary["failed"]):
        problems.append(f"the {name} exited {exits[name]} with failed={summary['failed']} and failing cells {failing}")
def key(c):
    k = {x: c[x] for x in ("trials", "checked", "inconclusive")}
    # One crash state per checked trial, except a power loss, whose distinct images (and so
    # whether a canary fired in a few trials) depend on where the real-time trace was cut.
    if not c["images"]:
        k["crash_states"] = c["crash_states"]
        k["verdict"] = c["verdict"]
    return k
m = {c["id"]: key(c) for c in merged["cells"]}
w = {c["id"]: key(c) for c in whole["cells"]}
if sorted(m) != sorted(w):
    problems.append(f"cells differ: {sorted(set(m) ^ set(w))}")
for cell in sorted(set(m) & set(w)):
    if m[cell] != w[cell]:
        problems.append(f"{cell}: merged {m[cell]}, unsharded {w[cell]}")
for p in problems:
    print(f"k8s-simulate: {p}", file=sys.stderr)
trials = sum(c["trials"] for c in merged["cells"])
print(f"k8s-simulate: {len(m)} cells, {trials} trials: merged shards {'==' if not problems else '!='} unsharded run "
      f"(trial plans, trials, checked, inconclusive; crash states and verdicts of one-state faults; "
      f"exit codes as the verdicts say)")
sys.exit(1 if problems else 0)
PY
