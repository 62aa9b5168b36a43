#!/usr/bin/env bash
# SlimMail outbound benchmark: smtp-source submits N × 1 KB messages (32 sessions, one connection per
# message) to a Local listener for a remote domain; each is queued durably and relayed to Postfix's
# smtp-sink as the smarthost. Prints the inbound (accept) rate and the outbound rate: from the first
# acceptance until the queue is empty again. Usage: bench/outbound.sh [N]   (default 10000)
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
  rm -rf "$WORK"
}
trap cleanup EXIT
cat > "$WORK/slimmail.json" <<JSON
{ "Hostname": "bench.slimmail.test", "DataDirectory": "$WORK/data",
  "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:$SLIM_PORT", "Role": "Local" } ], "MaxConnections": 2000, "MaxConnectionsPerAddress": 2000 },
  "Domains": {}, "Users": {},
  "Relay": { "Mode": "Smarthost", "Smarthost": "127.0.0.1:$SINK_PORT", "MaxConcurrentDeliveries": 32, "MaxConcurrentPerDestination": 32 },
  "Logging": { "LogLevel": { "Default": "Warning" } } }
JSON
/usr/sbin/smtp-sink -u nobody 127.0.0.1:$SINK_PORT 1024 >/dev/null 2>&1 & SINK_PID=$!
dotnet "$DLL" serve --config "$WORK/slimmail.json" >"$WORK/log" 2>&1 & SLIM_PID=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$SLIM_PORT) 2>/dev/null && break; sleep 0.1; done
start=$(date +%s.%N)
/usr/sbin/smtp-source -s 32 -l 1024 -m "$N" -f bench@bench.slimmail.test -t someone@remote.test 127.0.0.1:$SLIM_PORT
accepted=$(date +%s.%N)
for _ in $(seq 1200); do ls "$WORK/data/queue/"*.env >/dev/null 2>&1 || break; sleep 0.05; done
drained=$(date +%s.%N)
python3 - "$N" "$start" "$accepted" "$drained" <<'PY'
import sys
n, start, accepted, drained = int(sys.argv[1]), *map(float, sys.argv[2:])
inbound, outbound = n / (accepted - start), n / (drained - start)
print(f"{n} messages: inbound {inbound:,.0f} msg/s (accepted in {accepted - start:.1f} s); "
      f"outbound {outbound:,.0f} msg/s (queue empty after {drained - start:.1f} s); outbound/inbound {outbound / inbound:.0%}")
PY
grep -iE "deferred|bounced|fail|error" "$WORK/log" | head -5
