#!/usr/bin/env bash
# POP3 retrieval benchmark: the same Maildir (COUNT messages of SIZE bytes, delivered by SlimMail over
# SMTP) is served by SlimMail and by a private Dovecot POP3 instance on loopback; one Python poplib
# client logs in and runs LIST, UIDL and RETR of every message (no DELE, so runs repeat), REPEATS
# times interleaved. Prints messages per second for each and the ratio.
# Usage: bench/pop3.sh [COUNT] [SIZE] [REPEATS]   (as root: installs dovecot-pop3d if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-1000}; SIZE=${2:-1024}; REPEATS=${3:-3}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
command -v /usr/sbin/dovecot >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-pop3d >/dev/null
command -v /usr/sbin/smtp-source >/dev/null 2>&1 || {
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null; }

dotnet build src/SlimMail -c Release -nologo -v quiet >/dev/null
DLL=src/SlimMail/bin/Release/net10.0/slimmail.dll
W=$(mktemp -d)
chmod 755 "$W"   # Dovecot's auth process runs as its own user and must read the passwd file
cleanup() { [ -n "${SLIM:-}" ] && kill "$SLIM" 2>/dev/null; [ -f "$W/run/master.pid" ] && kill "$(cat "$W/run/master.pid")" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

# SlimMail, zero-config defaults moved to free ports.
(cd "$W" && exec dotnet "$OLDPWD/$DLL" serve --Smtp:Listeners:0:Endpoint=127.0.0.1:25270 --Pop3:Listeners:0:Endpoint=127.0.0.1:11000 > slimmail.log 2>&1) &
SLIM=$!
for _ in $(seq 100); do grep -q "pop3 listening" "$W/slimmail.log" 2>/dev/null && break; sleep 0.1; done
/usr/sbin/smtp-source -s 8 -m "$COUNT" -l "$SIZE" -f bench@client.test -t root@localhost 127.0.0.1:25270
PASSWORD=$(cat "$W/slimmail-data/local-password")

# Dovecot over a copy of the same Maildir.
mkdir -p "$W/run" "$W/home/local"
cp -a "$W/slimmail-data/mail/local" "$W/home/local/Maildir"
chown -R dovecot:dovecot "$W/home"
echo "local:{PLAIN}$PASSWORD::::::" > "$W/passwd"
chmod 644 "$W/passwd"
cat > "$W/dovecot.conf" <<CONF
base_dir = $W/run
state_dir = $W/run
log_path = $W/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = $W/passwd
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$W/home/%u
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = 11001
  }
}
CONF
/usr/sbin/dovecot -c "$W/dovecot.conf"
sleep 1

fetch() {
  python3 - "$1" "$PASSWORD" <<'PY'
import poplib, sys, time
port, password = int(sys.argv[1]), sys.argv[2]
start = time.perf_counter()
p = poplib.POP3('127.0.0.1', port)
p.user('local'); p.pass_(password)
listing = p.list()[1]; p.uidl()
total = 0
for i in range(1, len(listing) + 1):
    total += p.retr(i)[2]
p.quit()
elapsed = time.perf_counter() - start
print(f"{len(listing) / elapsed:.0f} {len(listing)} {total}")
PY
}

fetch 11000 >/dev/null; fetch 11001 >/dev/null   # warm-up (JIT, Dovecot's index)
slim=(); dove=()
for _ in $(seq "$REPEATS"); do
  slim+=("$(fetch 11000 | cut -d' ' -f1)")
  dove+=("$(fetch 11001 | cut -d' ' -f1)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
s=$(median "${slim[@]}"); d=$(median "${dove[@]}")
echo "| $COUNT x $SIZE B | $d | $s | $(echo "100 * $s / $d" | bc)% |"
