#!/usr/bin/env bash
# The raw file system's cost of a durable Maildir commit on this machine (bench/disk-commit.c): what any
# durable server here pays per message before its own work. Run it beside the servers' numbers.
# Usage: sudo bench/disk.sh [DIR] [N] [THREADS]   (default: a new directory under /var/tmp, 2000, 1; installs gcc if missing)
# The directory is left in place: on ext4 without a journal, deleting many files makes the next creations
# slower for minutes (docs/benchmarks.md), so remove it when the measurements are done.
set -euo pipefail
cd "$(dirname "$0")"
command -v gcc >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc >/dev/null
DIR=${1:-$(mktemp -d /var/tmp/slimmail-disk.XXXXXX)}
mkdir -p "$DIR"
BIN=$(mktemp)
trap 'rm -f "$BIN"' EXIT
gcc -O2 -pthread -o "$BIN" disk-commit.c
echo "directory: $DIR"
"$BIN" "$DIR" "${2:-2000}" "${3:-1}"
