#!/usr/bin/env bash
# Two measurements for docs/benchmarks.md:
#  1. start-up: from exec to the first accepted SMTP connection answered 220 (a self-contained publish);
#  2. idle connections: IDLE clients connect and stay silent; the server's RSS, then the rate of a
#     normal smtp-source load while they stay open.
# Usage: bench/startup-idle.sh [IDLE]   (as root: raises the open-file limit)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
IDLE=${1:-10000}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # each side needs IDLE descriptors
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
W=$(mktemp -d)
trap '[ -n "${SLIM:-}" ] && kill "$SLIM" 2>/dev/null; [ -n "${HOLD:-}" ] && kill "$HOLD" 2>/dev/null; rm -rf "$W"' EXIT
dotnet publish src/SlimMail -c Release -r linux-x64 --self-contained -p:PublishReadyToRun=true -o "$W/publish" -nologo -v quiet >/dev/null

cat > "$W/slimmail.json" <<JSON
{ "DataDirectory": "$W/data",
  "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:25296", "Role": "Mx" } ], "MaxConnections": 30000, "MaxConnectionsPerAddress": 30000 },
  "Domains": { "bench.test": { "Mailboxes": { "*": "bench" } } }, "Users": { "bench": {} } }
JSON

startup() {
  python3 - "$W" <<'PY'
import socket, subprocess, sys, time
w = sys.argv[1]
start = time.perf_counter()
p = subprocess.Popen([w + '/publish/slimmail', 'serve', '--config', w + '/slimmail.json'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        s = socket.create_connection(('127.0.0.1', 25296), timeout=1)
        if s.recv(64).startswith(b'220'):
            break
    except OSError:
        time.sleep(0.002)
print(f"{(time.perf_counter() - start) * 1000:.0f}")
p.terminate(); p.wait()
PY
}
runs=(); for _ in 1 2 3 4 5; do runs+=("$(startup)"); done
echo "start-up to first 220 (ms, 5 runs): ${runs[*]}"

# The idle server runs with deploy/slimmail.service's runtime environment, as shipped.
env $(slimmail_env) "$W/publish/slimmail" serve --config "$W/slimmail.json" > "$W/log" 2>&1 &
SLIM=$!
sleep 1
rate() { local s e; s=$(date +%s.%N); /usr/sbin/smtp-source -s 32 -m 6000 -l 1024 -f a@client.test -t r@bench.test 127.0.0.1:25296; e=$(date +%s.%N); echo "6000 / ($e - $s)" | bc | cut -d. -f1; }
rate >/dev/null
before=$(rate)
python3 - "$IDLE" <<'PY' &
import socket, sys, time, resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE); resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
for i in range(int(sys.argv[1])):
    held.append(socket.create_connection(('127.0.0.1', 25296)))
print('holding', len(held), flush=True)
time.sleep(120)
PY
HOLD=$!
sleep 2
for _ in $(seq 120); do [ "$(ls /proc/$SLIM/fd | wc -l)" -ge "$IDLE" ] && break; sleep 0.5; done
sleep 2
rss=$(awk '/VmRSS/ {print $2}' /proc/$SLIM/status)
peak=$(awk '/VmHWM/ {print $2}' /proc/$SLIM/status)
during=$(rate)
echo "idle connections: $(($(ls /proc/$SLIM/fd | wc -l))) fds open; RSS $((rss / 1024)) MB (peak $((peak / 1024)) MB); smtp-source 32 sessions: ${before} msg/s before, ${during} msg/s while they are held"
