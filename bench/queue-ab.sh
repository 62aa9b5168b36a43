#!/usr/bin/env bash
# Queue intake of two SlimMail builds side by side: each relays to a smarthost that is down, so every message is
# queued durably, tried at once, refused, and its envelope rewritten for a retry an hour later. smtp-source sends
# COUNT x 1 KB messages (32 sessions, a new connection each) to each server in turn, ROUNDS rounds, the order
# alternating; the queues grow by COUNT per round and nothing is deleted (see docs/benchmarks.md on ext4 after mass
# deletion). Prints messages/s per round and server. The data directories are left under /var/tmp.
# Usage: sudo bench/queue-ab.sh A_DIST B_DIST    (deploy/publish.sh outputs)   env: COUNT=6000, ROUNDS=4
set -euo pipefail
cd "$(dirname "$0")/.."
A_DIST=$1; B_DIST=$2
COUNT=${COUNT:-6000}; ROUNDS=${ROUNDS:-4}
source bench/lib.sh
ensure_smtp_tools
W=$(mktemp -d /var/tmp/slimmail-queue-ab.XXXXXX)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
settle_file_system

start() { # NAME DIST PORT
  mkdir -p "$W/$1"
  relay_config "$W/$1/data" "$3" 9 > "$W/$1/slimmail.json"   # port 9: the smarthost is down
  # shellcheck disable=SC2046
  env $(slimmail_env) "$2/slimmail" serve --config "$W/$1/slimmail.json" > "$W/$1/log" 2>&1 &
  PIDS+=($!)
  wait_for_port "$3"
}
round() { # LABEL PORT
  local s e
  s=$(date +%s.%N)
  /usr/sbin/smtp-source -s 32 -l 1024 -m "$COUNT" -f b@bench.slimmail.test -t someone@remote.test 127.0.0.1:"$2"
  e=$(date +%s.%N)
  echo "$1 $(echo "$COUNT / ($e - $s)" | bc)"
}

start a "$A_DIST" 25301
start b "$B_DIST" 25302
round warm 25301 >/dev/null; round warm 25302 >/dev/null
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then round A 25301; round B 25302; else round B 25302; round A 25301; fi
done > "$W/rounds"
for l in A B; do echo "$l msg/s: $(awk -v l=$l '$1 == l {printf "%s ", $2}' "$W/rounds")"; done
echo "data: $W"
