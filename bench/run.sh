#!/usr/bin/env bash
# SlimMail inbound benchmark: Postfix's smtp-source sends 1 KB and 100 KB messages at 1, 8 and 32
# concurrent sessions (one new connection per message) to
#   - smtp-sink, Postfix's C null server (discards mail): the protocol's speed limit on this machine;
#   - SlimMail, delivering every message fsync'd into a Maildir before answering 250.
# Both run in the same run, interleaved, REPEATS times; the table shows medians and the ratio.
# Usage: bench/run.sh [REPEATS]   (as root, or with smtp-source/smtp-sink installed)
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS=${1:-3}

source bench/lib.sh
ensure_smtp_tools

build_slimmail
WORK=$(mktemp -d)
SINK_PORT=25250
SLIM_PORT=25251
cleanup() {
  [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null || true
  [ -n "${SLIM_PID:-}" ] && kill "$SLIM_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/slimmail.json" <<JSON
{
  "Hostname": "bench.slimmail.test",
  "DataDirectory": "$WORK/data",
  "Smtp": {
    "Listeners": [ { "Endpoint": "127.0.0.1:$SLIM_PORT", "Role": "Mx" } ],
    "MaxConnections": 2000, "MaxConnectionsPerAddress": 2000
  },
  "Domains": { "bench.test": { "Mailboxes": { "*": "bench" } } },
  "Users": { "bench": {} }
}
JSON

/usr/sbin/smtp-sink -u nobody 127.0.0.1:$SINK_PORT 1024 &
SINK_PID=$!
dotnet "$DLL" serve --config "$WORK/slimmail.json" > "$WORK/slimmail.log" 2>&1 &
SLIM_PID=$!
for _ in $(seq 100); do
  grep -q "listening on" "$WORK/slimmail.log" 2>/dev/null && break
  sleep 0.1
done

# rate PORT SESSIONS COUNT SIZE -> messages per second
rate() {
  local start end
  start=$(date +%s.%N)
  /usr/sbin/smtp-source -s "$2" -m "$3" -l "$4" -f sender@client.test -t rcpt@bench.test ${SMTP_SOURCE_EXTRA:-} 127.0.0.1:"$1" >/dev/null
  end=$(date +%s.%N)
  echo "$3 / ($end - $start)" | bc -l
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Warm-up: a server runs for days; under full load the JIT's tier-1 recompilation of the hot
# path takes ~20,000 messages to finish on 2 cores, so that many go first (both servers).
for _ in 1 2 3 4; do rate $SLIM_PORT 32 6000 1024 >/dev/null; done
rate $SLIM_PORT 8 300 102400 >/dev/null
rate $SINK_PORT 32 6000 1024 >/dev/null
# Files are not deleted during the run: on ext4, allocating inodes right after mass deletion is slow
# (recently_deleted() scans) and would measure the file system's cleanup, not the server.

before=$(find "$WORK/data/mail/bench/new" -type f | wc -l)
printf '| size | sessions | smtp-sink msg/s | SlimMail msg/s (fsync Maildir) | ratio |\n|---|---|---|---|---|\n'
for size in 1024 102400; do
  for sessions in 1 8 32; do
    if [ "$size" = 1024 ]; then count=$((sessions == 1 ? 2000 : 6000)); else count=$((sessions == 1 ? 600 : 2000)); fi
    sink=(); slim=()
    for _ in $(seq "$REPEATS"); do
      sink+=("$(rate $SINK_PORT $sessions $count $size)")
      slim+=("$(rate $SLIM_PORT $sessions $count $size)")
    done
    s=$(median "${sink[@]}"); m=$(median "${slim[@]}")
    printf '| %s | %d | %.0f | %.0f | %.0f%% |\n' "$([ $size = 1024 ] && echo "1 KB" || echo "100 KB")" "$sessions" "$s" "$m" "$(echo "100 * $m / $s" | bc -l)"
  done
done
stored=$(( $(find "$WORK/data/mail/bench/new" -type f | wc -l) - before ))
echo
echo "SlimMail peak RSS: $(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/$SLIM_PID/status); messages stored in the Maildir during the measured runs: $stored"
