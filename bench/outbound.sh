#!/usr/bin/env bash
# SlimMail outbound benchmark: smtp-source submits N × 1 KB messages (32 sessions, one connection per
# message) to a Local listener for a remote domain; each is queued durably and relayed to Postfix's
# smtp-sink as the smarthost. Prints the inbound (accept) rate and the outbound rate: from the first
# acceptance until the queue is empty again. Then a backlog: the same N submitted while the smarthost is down
# (each attempt fails and is deferred for an hour), the smarthost started, `slimmail queue flush`, and the time
# until the queue is empty. Usage: bench/outbound.sh [N]   (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
source bench/lib.sh
ensure_smtp_tools
build_slimmail
WORK=$(mktemp -d)
SINK_PORT=25260
SLIM_PORT=25261
cleanup() {
  [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null || true
  [ -n "${SLIM_PID:-}" ] && kill "$SLIM_PID" 2>/dev/null || true
  wait 2>/dev/null || true   # the server may still be writing into $WORK
  rm -rf "$WORK"
  settle_file_system
}
trap cleanup EXIT
settle_file_system
relay_config "$WORK/data" "$SLIM_PORT" "$SINK_PORT" > "$WORK/slimmail.json"
/usr/sbin/smtp-sink -u nobody 127.0.0.1:$SINK_PORT 1024 >/dev/null 2>&1 & SINK_PID=$!
dotnet "$DLL" serve --config "$WORK/slimmail.json" >"$WORK/log" 2>&1 & SLIM_PID=$!
wait_for_port "$SLIM_PORT"
start=$(date +%s.%N)
/usr/sbin/smtp-source -s 32 -l 1024 -m "$N" -f bench@bench.slimmail.test -t someone@remote.test 127.0.0.1:$SLIM_PORT
accepted=$(date +%s.%N)
for _ in $(seq 1200); do ls "$WORK/data/queue/"*.msg >/dev/null 2>&1 || break; sleep 0.05; done
drained=$(date +%s.%N)
python3 - "$N" "$start" "$accepted" "$drained" <<'PY'
import sys
n, start, accepted, drained = int(sys.argv[1]), *map(float, sys.argv[2:])
inbound, outbound = n / (accepted - start), n / (drained - start)
print(f"{n} messages: inbound {inbound:,.0f} msg/s (accepted in {accepted - start:.1f} s); "
      f"outbound {outbound:,.0f} msg/s (queue empty after {drained - start:.1f} s); outbound/inbound {outbound / inbound:.0%}")
PY
grep -iE "deferred|bounced|fail|error" "$WORK/log" | head -5 || true

# The backlog: a fresh queue, the smarthost down while the messages arrive.
kill "$SINK_PID" "$SLIM_PID"; wait "$SINK_PID" "$SLIM_PID" 2>/dev/null || true
mv "$WORK/data" "$WORK/data-delivered"   # not deleted: see docs/benchmarks.md on ext4 after mass deletion
dotnet "$DLL" serve --config "$WORK/slimmail.json" >"$WORK/log" 2>&1 & SLIM_PID=$!
wait_for_port "$SLIM_PORT"
start=$(date +%s.%N)
/usr/sbin/smtp-source -s 32 -l 1024 -m "$N" -f bench@bench.slimmail.test -t someone@remote.test 127.0.0.1:$SLIM_PORT
accepted=$(date +%s.%N)
/usr/sbin/smtp-sink -u nobody 127.0.0.1:$SINK_PORT 1024 >/dev/null 2>&1 & SINK_PID=$!
wait_for_port "$SINK_PORT"
flushed=$(date +%s.%N)
dotnet "$DLL" queue flush --config "$WORK/slimmail.json" >/dev/null
for _ in $(seq 6000); do ls "$WORK/data/queue/"*.msg >/dev/null 2>&1 || break; sleep 0.05; done
drained=$(date +%s.%N)
python3 - "$N" "$start" "$accepted" "$flushed" "$drained" <<'PY'
import sys
n, start, accepted, flushed, drained = int(sys.argv[1]), *map(float, sys.argv[2:])
inbound, outbound = n / (accepted - start), n / (drained - flushed)
print(f"backlog of {n}: queued {inbound:,.0f} msg/s with the smarthost down; after the flush delivered {outbound:,.0f} msg/s "
      f"(queue empty after {drained - flushed:.1f} s); outbound/inbound {outbound / inbound:.0%}")
PY
