#!/usr/bin/env bash
# Installs another SQLite build for the cross-version checks (`crashfuzz check --sqlite3`, the
# `cross_version` hazard): Debian's sqlite3 shell (3.40 on Debian 12), beside the SQLite 3.54
# that crashfuzz bundles. Does nothing when a `sqlite3` is already on PATH.
set -euo pipefail
if command -v sqlite3 >/dev/null 2>&1; then
  echo "sqlite3 already installed: $(command -v sqlite3) ($(sqlite3 --version | cut -d' ' -f1))"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3
echo "installed: $(command -v sqlite3) ($(sqlite3 --version | cut -d' ' -f1))"
