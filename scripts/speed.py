#!/usr/bin/env python3
"""The figures of README § Speed, measured in one run: one-cell campaigns of WAL+FULL kills
(jobs 1, 2 and 4) and WAL+FULL power losses (jobs 2), each trial's phases and checks read back
from the run's summary.json and trials.jsonl, written to results/speed.md.

    scripts/speed.py                 # about two minutes on 2 cores, after a release build
    scripts/speed.py --rounds 3      # alternate writers forked and exec'd, 3 rounds of each

The floor of a check is SQLite's own `PRAGMA integrity_check` on the same image (FTS5
included), which every cell of summary.json reports as timing_ms.integrity_check. Rates are
trials (or images) over the campaign's duration_s, start-up included. `--rounds N` also runs
the jobs-1 kill campaign N times with CRASHFUZZ_FORK_SERVER=0 and N times without, alternating,
so that the fork server's gain shows on a machine whose speed drifts.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

KILL = """name = "speed-kill"
description = "One cell for the speed table: WAL+FULL kill, window 0-5 ms."
[budget]
trials = 300
[fault.kill]
kill_at_ms_min = 0
kill_at_ms_max = 5
[[matrix]]
journal_mode = ["wal"]
synchronous = ["full"]
fault = ["kill"]
"""

POWER_LOSS = """name = "speed-power-loss"
description = "One cell for the speed table: WAL+FULL power loss, 8 images per trace."
[budget]
trials = 100
[fault.kill]
kill_at_ms_min = 0
kill_at_ms_max = 5
[fault.power_loss]
images_per_trace = 8
[[matrix]]
journal_mode = ["wal"]
synchronous = ["full"]
fault = ["power_loss"]
"""

CHECKS = ["open", "integrity", "fts", "fts_miss", "lost_ack", "atomicity", "reopen_write"]


def campaign(exe, scenario, out, jobs, fork_server=True):
    """Runs one campaign; returns its one cell's figures."""
    env = dict(os.environ, CRASHFUZZ_FORK_SERVER="1" if fork_server else "0")
    args = [exe, "run", str(scenario), "--seed", "1", "--jobs", str(jobs), "--no-progress", "--out", str(out)]
    done = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    summary = json.loads((out / "summary.json").read_text())
    cell = summary["cells"][0]
    checks = {}
    built = 0
    for line in (out / "trials.jsonl").read_text().splitlines():
        trial = json.loads(line)
        built += len(trial.get("images", []))
        for c in trial.get("checks", []):
            checks.setdefault(c["check"], []).append(c["elapsed_us"] / 1000)
    t = cell["timing_ms"]
    return {
        "trials": summary["trials"],
        "states": cell["crash_states"],
        "built": built,
        "duration_s": summary["duration_s"],
        "verdict": cell["verdict"],
        "timing": t,
        "checks": {k: statistics.median(v) for k, v in checks.items()},
        "harness_ms": t["setup"] + t["spawn"] + t["kill"],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--exe", default=None, help="the crashfuzz binary (default: built with cargo build --release)")
    p.add_argument("--rounds", type=int, default=0, help="alternating rounds of forked and exec'd writers")
    p.add_argument("--out", default=str(ROOT / "results" / "speed.md"))
    a = p.parse_args()
    exe = a.exe
    if exe is None:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        exe = str(target / "release" / "crashfuzz")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="crashfuzz-speed-") as tmp:
        tmp = Path(tmp)
        (tmp / "kill.toml").write_text(KILL)
        (tmp / "power-loss.toml").write_text(POWER_LOSS)
        kill = {j: campaign(exe, tmp / "kill.toml", tmp / f"kill-{j}", j) for j in (1, 2, 4)}
        power = campaign(exe, tmp / "power-loss.toml", tmp / "power-loss-2", 2)
        rounds = []
        for r in range(a.rounds):
            pair = {}
            for forked in (False, True):
                pair[forked] = campaign(exe, tmp / "kill.toml", tmp / f"ab-{r}-{forked}", 1, fork_server=forked)
            rounds.append(pair)
    report = render(version, kill, power, rounds)
    Path(a.out).write_text(report)
    print(report)


def render(version, kill, power, rounds):
    k1 = kill[1]
    t1 = k1["timing"]
    floor = t1["integrity_check"]
    lines = [
        "# Speed",
        "",
        f"Written by `scripts/speed.py` on {datetime.date.today()} ({version}, {os.cpu_count()} cores, seed 1):",
        "one-cell campaigns of `wal/full/kill`",
        "(300 trials, kill window 0–5 ms) and `wal/full/power_loss` (100 traces of 8 images), fresh",
        "database seeded with 100 messages. The floor is SQLite's own `PRAGMA integrity_check` on the",
        "same images (FTS5 included). Rates are trials or images over the campaign's duration,",
        "start-up included. README § Speed says what the figures mean and what the targets are.",
        "",
        "| figure | measured | target | floor |",
        "|---|--:|--:|--:|",
    ]
    for j in (1, 2, 4):
        k = kill[j]
        target = {1: "about 40", 2: "≥ 75", 4: "—"}[j]
        lines.append(f"| kill trials/s, `--jobs {j}` | {k['trials'] / k['duration_s']:.1f} | {target} | — |")
    lines.append(
        f"| harness share per kill trial: setup + spawn + kill (medians) | "
        f"{t1['setup']:.2f} + {t1['spawn']:.2f} + {t1['kill']:.2f} = {k1['harness_ms']:.2f} ms | ≤ 2 ms | — |"
    )
    lines.append(
        f"| check of one kill image (median) | {t1['check_per_state']:.1f} ms "
        f"({t1['check_per_state'] / floor:.2f}× floor) | ≤ 1.15× floor ({1.15 * floor:.1f} ms) | {floor:.1f} ms |"
    )
    tp = power["timing"]
    lines.append(
        f"| one power-loss crash state, built and checked (median per distinct image) | {tp['check_per_state']:.1f} ms "
        f"({tp['check_per_state'] / t1['check_per_state']:.2f}× the kill check) | ≤ 1.2× a kill check | "
        f"{tp['integrity_check']:.1f} ms |"
    )
    lines.append(
        f"| power-loss images/s, `--jobs 2`: distinct ones checked (all built) | "
        f"{power['states'] / power['duration_s']:.1f} ({power['built'] / power['duration_s']:.1f}): "
        f"{power['states']} of {power['built']} | ≥ 60 | — |"
    )
    lines += ["", "Per check of a kill image (medians, `--jobs 1`):", ""]
    lines.append("| " + " | ".join(CHECKS) + " |")
    lines.append("|" + "--:|" * len(CHECKS))
    lines.append("| " + " | ".join(f"{k1['checks'].get(c, float('nan')):.2f}" for c in CHECKS) + " |")
    lines.append("")
    verdicts = sorted({k["verdict"] for k in [*kill.values(), power]})
    lines.append("Verdicts: " + ", ".join(f"`{v}`" for v in verdicts) + ".")
    if rounds:
        lines += [
            "",
            "Writers forked by the fork server against exec'd (`CRASHFUZZ_FORK_SERVER=0`), `--jobs 1`,",
            "alternating (medians, ms):",
            "",
            "| round | writers | setup | spawn | kill | check | floor | trials/s |",
            "|--:|---|--:|--:|--:|--:|--:|--:|",
        ]
        for i, pair in enumerate(rounds, 1):
            for forked in (False, True):
                k = pair[forked]
                t = k["timing"]
                how = "forked" if forked else "exec'd"
                lines.append(
                    f"| {i} | {how} | {t['setup']:.2f} | {t['spawn']:.2f} | "
                    f"{t['kill']:.2f} | {t['check']:.1f} | {t['integrity_check']:.1f} | "
                    f"{k['trials'] / k['duration_s']:.1f} |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
