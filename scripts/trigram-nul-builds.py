#!/usr/bin/env python3
"""Which SQLite builds index NUL-prefixed text in an FTS5 trigram table as empty, and how each
build judges an index another build wrote.

50 rows of "\\0json:{...value N...}" go into a trigram table (inline content, then external
content) written by one build; that build and the bundled one then run the table's
integrity-check on their own copy and count the rows matching 'value'. Every build runs in
crashfuzz's `__sql` child; versions are read from crashfuzz's caches (build them first with
`crashfuzz sqlite build V`).

    cargo build --release
    scripts/trigram-nul-builds.py bundled system 3.41.2 3.46.0 3.48.0

Prints one Markdown table per kind of content: | written by | checked by | integrity-check | MATCH |.
"""
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
EXE = os.path.join(TOP, "target", "release", "crashfuzz")
CACHES = [
    os.environ.get("CRASHFUZZ_SQLITE_CACHE", ""),
    os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "crashfuzz", "sqlite"),
    os.path.join(TOP, "target", "tmp", "sqlite-builds"),
]
ROWS = 50


def library(build):
    """What `__sql` loads for a build name."""
    if build == "bundled":
        return "bundled"
    if build == "system":
        return "libsqlite3.so.0"
    for cache in filter(None, CACHES):
        path = os.path.join(cache, build, "libsqlite3.so.0")
        if os.path.exists(path):
            return path
    sys.exit(f"SQLite {build} is not built: run `crashfuzz sqlite build {build}` first")


def run_sql(build, db, statements):
    """(the library's version, its answers) for `statements` run on `db` by `build`."""
    out = subprocess.run(
        [EXE, "__sql", str(os.getpid()), library(build), db] + statements,
        capture_output=True, text=True, timeout=120, check=False,
    )
    answers = json.loads(out.stdout)
    return answers["libversion"], answers["answers"]


def make(build, db, external):
    open(db, "wb").close()
    text = "char(0) || 'json:{{\"k\":\"value {i}\"}}'"
    if external:
        schema = [
            "CREATE TABLE m(id INTEGER PRIMARY KEY, body TEXT)",
            "CREATE VIRTUAL TABLE t USING fts5(body, content='m', content_rowid='id', tokenize='trigram')",
        ]
        rows = [f"INSERT INTO m(id, body) VALUES({i}, {text.format(i=i)})" for i in range(1, ROWS + 1)]
        rows.append("INSERT INTO t(rowid, body) SELECT id, body FROM m")
    else:
        schema = ["CREATE VIRTUAL TABLE t USING fts5(body, tokenize='trigram')"]
        rows = [f"INSERT INTO t(rowid, body) VALUES({i}, {text.format(i=i)})" for i in range(1, ROWS + 1)]
    run_sql(build, db, schema + ["BEGIN"] + rows + ["COMMIT"])


def check(build, db):
    version, answers = run_sql(
        build, db, ["INSERT INTO t(t) VALUES('integrity-check')", "SELECT count(*) FROM t WHERE t MATCH 'value'"]
    )
    integrity, match = answers
    said = "ok" if "rows" in integrity else f"{integrity['error']['message']} ({integrity['error']['extended_code']})"
    found = f"{match['rows'][0][0]} of {ROWS}" if "rows" in match else match["error"]["message"]
    return version, said, found


def main(builds):
    work = tempfile.mkdtemp(prefix="crashfuzz-trigram-")
    try:
        for external in (False, True):
            print(f"\ncontent: {'external' if external else 'inline'}\n")
            print("| written by | checked by | integrity-check | MATCH 'value' |\n|---|---|---|---|")
            # Each build's own table, checked by itself and by the bundled build; then the
            # bundled build's table checked by each of the others.
            pairs = [(build, checker) for build in builds for checker in dict.fromkeys([build, "bundled"])]
            pairs += [("bundled", build) for build in builds if build != "bundled"]
            for build, checker in pairs:
                db = os.path.join(work, f"{build.replace('/', '_')}-{external}.db")
                if not os.path.exists(db):
                    make(build, db, external)
                copy = os.path.join(work, "copy.db")
                shutil.copy(db, copy)
                version, said, found = check(checker, copy)
                print(f"| {build} | {checker} ({version}) | {said} | {found} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["bundled", "system"])
