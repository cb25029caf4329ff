#!/usr/bin/env bash
# Installs the OS's SQLite library, `libsqlite3.so.0` (Debian's package libsqlite3-0: 3.40 on
# Debian 12), which is the build `system` of `[hazard] other_sqlite` and of
# `crashfuzz check --sqlite system`: the hazards scenario checks its cross_version cell with it.
# Does nothing when the dynamic loader already knows one. (Versions crashfuzz builds itself,
# `crashfuzz sqlite list`, need nothing installed.)
set -euo pipefail
known() { { /sbin/ldconfig -p 2>/dev/null || ldconfig -p 2>/dev/null; } | grep -q 'libsqlite3\.so\.0 '; }
if known; then
  echo "libsqlite3.so.0 already installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsqlite3-0
known && echo "installed libsqlite3.so.0 (libsqlite3-0)"
