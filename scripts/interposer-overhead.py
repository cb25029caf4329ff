#!/usr/bin/env python3
"""The LD_PRELOAD interposer's cost on an application's commit latency.

Runs the example application writer (scenarios/examples/app-writer/app_writer.py, Python's
sqlite3 on the system SQLite) as a transient writer of MESSAGES one-message transactions in
WAL+FULL, in paired rounds: once plain, once with crashfuzz's interposer preloaded and tracing
into a trace file, in alternating order. A round's per-commit time is (its run of MESSAGES
messages minus a run of 0 messages, the interpreter's start and the open) / MESSAGES. Prints
the medians, the median of the per-round differences with a distribution-free 95% interval
(sign-test ranks), and writes them as Markdown to --out.

  scripts/interposer-overhead.py [--rounds 15] [--messages 200] [--out results/interposer-overhead.md]
"""
import argparse, math, os, platform, sqlite3, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "scenarios/examples/app-writer/app_writer.py")


def interposer():
    target = os.path.join(ROOT, "target/interposer")
    subprocess.run(["cargo", "build", "--quiet", "--release", "--manifest-path",
                    os.path.join(ROOT, "src/interposer/Cargo.toml"), "--target-dir", target], check=True)
    return os.path.join(target, "release/libcrashfuzz_interposer.so")


def run(db_dir, messages, library):
    """Seconds for one transient writer of `messages` messages on a fresh copy of the template."""
    db = os.path.join(db_dir, "db.sqlite")
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    env = dict(os.environ, CRASHFUZZ_DB=db, CRASHFUZZ_JOURNAL_MODE="WAL", CRASHFUZZ_SYNCHRONOUS="FULL",
               CRASHFUZZ_SEED="7", CRASHFUZZ_WRITER_ID="1", CRASHFUZZ_ROLE="transient")
    subprocess.run([sys.executable, APP, "--init"], env=env, check=True)
    acks = os.open(os.path.join(db_dir, "acks"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    env["CRASHFUZZ_ACK_FD"] = str(acks)
    if library:
        trace = os.path.join(db_dir, "trace.bin")
        for f in (trace, trace + ".order"):
            if os.path.exists(f):
                os.remove(f)
        env.update(LD_PRELOAD=library, CRASHFUZZ_TRACE=trace)
    start = time.perf_counter()
    subprocess.run([sys.executable, APP, "--messages", str(messages)], env=env, pass_fds=(acks,), check=True)
    elapsed = time.perf_counter() - start
    os.close(acks)
    return elapsed


def median_interval(values):
    """The median and a distribution-free ~95% interval (order statistics of the sign test)."""
    v = sorted(values)
    n = len(v)
    k = max(0, int(math.floor((n - 1.96 * math.sqrt(n)) / 2)))
    return statistics.median(v), v[k], v[n - 1 - k]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--messages", type=int, default=200)
    p.add_argument("--out", default=os.path.join(ROOT, "results/interposer-overhead.md"))
    args = p.parse_args()
    library = interposer()
    plain, traced, diffs = [], [], []
    with tempfile.TemporaryDirectory(prefix="crashfuzz-overhead-") as d:
        for r in range(args.rounds):
            per = {}
            order = [None, library] if r % 2 == 0 else [library, None]
            for lib in order:
                full = run(d, args.messages, lib)
                empty = run(d, 0, lib)
                per[lib is not None] = (full - empty) / args.messages * 1e6
            plain.append(per[False])
            traced.append(per[True])
            diffs.append(per[True] - per[False])
    p50, lo, hi = median_interval(diffs)
    base = statistics.median(plain)
    lines = [
        "# The interposer's cost on an application's commits",
        "",
        f"`scripts/interposer-overhead.py --rounds {args.rounds} --messages {args.messages}`: the example application "
        f"writer (Python {platform.python_version()}, system SQLite {sqlite3.sqlite_version}) appending "
        f"{args.messages} one-message transactions in WAL+FULL (FTS5 unicode61 and trigram indexes filled by "
        "triggers), plain and with crashfuzz's LD_PRELOAD interposer tracing every write and sync, in paired "
        "rounds of alternating order; a round's per-commit time excludes the interpreter's start and the open.",
        "",
        "| | per commit, median µs |",
        "|---|--:|",
        f"| plain | {base:.0f} |",
        f"| interposed (traced) | {statistics.median(traced):.0f} |",
        f"| difference, median of rounds [95% interval] | {p50:+.0f} [{lo:+.0f}, {hi:+.0f}] ({p50 / base * 100:+.1f}%) |",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
