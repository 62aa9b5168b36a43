#!/usr/bin/env bash
# Start-up time and memory of each way SlimMail ships, for docs/benchmarks.md:
#   framework-dependent (dotnet slimmail.dll), self-contained single file, the same with ReadyToRun,
#   and trimmed (+ReadyToRun). Native AOT is tried and reported if this machine can build it.
# For each: the file size, the time from exec to the first SMTP 220 (median of 5), and the RSS after
# start-up and after 200 messages.  Usage: bench/packaging.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
W=$(mktemp -d)
trap 'pkill -f "$W/" 2>/dev/null || true; rm -rf "$W"' EXIT

publish() { # name, extra publish arguments...
  local name=$1; shift
  if dotnet publish src/SlimMail -c Release -o "$W/$name" -nologo -v quiet -p:TreatWarningsAsErrors=false "$@" >"$W/$name.log" 2>&1; then
    echo ok
  else
    echo "failed: $(grep -m1 -oE 'error [A-Z]+[0-9]+: .{0,120}' "$W/$name.log")"
  fi
}

cat > "$W/slimmail.json" <<JSON
{ "DataDirectory": "$W/data",
  "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:25298", "Role": "Mx" } ] },
  "Domains": { "bench.test": { "Mailboxes": { "*": "bench" } } }, "Users": { "bench": {} } }
JSON

measure() { # command...
  python3 - "$W" "$@" <<'PY'
import socket, subprocess, sys, time, statistics, smtplib
w, cmd = sys.argv[1], sys.argv[2:]
def rss(pid):
    for line in open(f'/proc/{pid}/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) // 1024
times = []
for run in range(5):
    start = time.perf_counter()
    p = subprocess.Popen(cmd + ['serve', '--config', w + '/slimmail.json'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            s = socket.create_connection(('127.0.0.1', 25298), timeout=1)
            if s.recv(64).startswith(b'220'):
                s.close(); break
        except OSError:
            time.sleep(0.002)
    times.append((time.perf_counter() - start) * 1000)
    if run < 4:
        p.terminate(); p.wait()
time.sleep(1)
idle = rss(p.pid)
s = smtplib.SMTP('127.0.0.1', 25298)
for i in range(200):
    s.sendmail('a@b.test', ['x@bench.test'], b'Subject: m\r\n\r\n' + b'x' * 1000 + b'\r\n')
s.quit()
time.sleep(0.5)
busy = rss(p.pid)
p.terminate(); p.wait()
print(f"{statistics.median(times):.0f} ms | {idle} MB | {busy} MB")
PY
}

printf '| build | size | start-up to first 220 (median of 5) | RSS idle | RSS after 200 messages |\n|---|---|---|---|---|\n'
echo "$(publish fdd)" >/dev/null
printf '| framework-dependent (`dotnet slimmail.dll`) | %s | %s |\n' "$(du -sh "$W/fdd" | cut -f1) (dir)" "$(measure dotnet "$W/fdd/slimmail.dll")"
for variant in "single:-r linux-x64 --self-contained -p:PublishSingleFile=true" \
               "single-r2r:-r linux-x64 --self-contained -p:PublishSingleFile=true -p:PublishReadyToRun=true" \
               "trimmed:-r linux-x64 --self-contained -p:PublishSingleFile=true -p:PublishTrimmed=true" \
               "trimmed-r2r:-r linux-x64 --self-contained -p:PublishSingleFile=true -p:PublishTrimmed=true -p:PublishReadyToRun=true" \
               "aot:-r linux-x64 -p:PublishAot=true"; do
  name=${variant%%:*}
  # shellcheck disable=SC2086
  result=$(publish "$name" ${variant#*:})
  if [ "$result" = ok ]; then
    printf '| %s | %s | %s |\n' "$name" "$(du -h "$W/$name/slimmail" | cut -f1)" "$(measure "$W/$name/slimmail")"
  else
    printf '| %s | — | %s | | |\n' "$name" "$result"
  fi
done
