#!/usr/bin/env bash
# The abuse figures of docs/security.md that are too slow for CI: a 1 GB message against a 10 MB limit
# (refused, memory flat). Prints the server's RSS before and its peak after.
# Usage: bench/abuse.sh [MEGABYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-1024}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build src/SlimMail -c Release -nologo -v quiet >/dev/null
DLL=$PWD/src/SlimMail/bin/Release/net10.0/slimmail.dll
W=$(mktemp -d)
trap '[ -n "${SLIM:-}" ] && kill "$SLIM" 2>/dev/null; rm -rf "$W"' EXIT
(cd "$W" && exec dotnet "$DLL" serve --Smtp:Listeners:0:Endpoint=127.0.0.1:25295 --Pop3:Listeners:0:Endpoint=127.0.0.1:11095 --Smtp:MaxMessageSize=10485760 > slimmail.log 2>&1) &
SLIM=$!
for _ in $(seq 100); do grep -q "pop3 listening" "$W/slimmail.log" 2>/dev/null && break; sleep 0.1; done
before=$(awk '/VmRSS/ {print $2}' /proc/$SLIM/status)
start=$(date +%s.%N)
python3 - "$MB" <<'PY'
import socket, sys
s = socket.create_connection(('127.0.0.1', 25295)); f = s.makefile('rb')
def reply():
    line = f.readline()
    while line[3:4] == b'-': line = f.readline()
    return line.decode().strip()
reply()
for c in [b'EHLO big.test', b'MAIL FROM:<a@remote.test>', b'RCPT TO:<root@localhost>', b'DATA']:
    s.sendall(c + b'\r\n'); reply()
chunk = (b'x' * 1022 + b'\r\n') * 1024
for _ in range(int(sys.argv[1])):
    s.sendall(chunk)
s.sendall(b'.\r\n'); print('end of data:', reply())
s.sendall(b'NOOP\r\n'); print('then:', reply())
PY
end=$(date +%s.%N)
echo "sent ${MB} MB in $(echo "$end - $start" | bc | cut -c1-5) s; RSS before ${before} kB, peak $(awk '/VmHWM/ {print $2}' /proc/$SLIM/status) kB; files stored: $(find "$W/slimmail-data/mail" -type f 2>/dev/null | wc -l)"
