#!/usr/bin/env bash
# POP3 retrieval benchmark: SlimMail and a private Dovecot POP3 instance (own config, passwd-file, on
# loopback, started and stopped by this script) serve copies of the same Maildirs. The client is
# bench/SlimMail.Load (C#, so that the client is not what limits the rate): each session logs in, runs
# STAT, LIST, UIDL, then RETR of every message one at a time (no DELE, so runs repeat), QUIT.
#   1 session:  one maildrop of COUNT messages;   4 sessions: four maildrops of COUNT/4 each.
# Runs are interleaved, REPEATS times, after one warm-up each; medians and SlimMail / Dovecot.
# Usage: sudo bench/pop3.sh [COUNT] [SIZE] [REPEATS]   (default 20000 1024 3; installs dovecot-pop3d if missing)
#   env: DIST=dir (an existing deploy/publish.sh output, to skip publishing)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-20000}; SIZE=${2:-1024}; REPEATS=${3:-3}
source bench/lib.sh
ensure_smtp_tools
command -v /usr/sbin/dovecot >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-pop3d >/dev/null
W=$(mktemp -d)
chmod 755 "$W"   # Dovecot's auth process runs as its own user and must read the passwd file
cleanup() { [ -n "${SLIM:-}" ] && kill "$SLIM" 2>/dev/null; [ -f "$W/run/master.pid" ] && kill "$(cat "$W/run/master.pid")" 2>/dev/null; rm -rf "$W"; settle_file_system; }
trap cleanup EXIT
settle_file_system

prepare_shipped_build "$W"
PASSWORD=bench-password
HASH=$(echo "$PASSWORD" | "$DIST/slimmail" hash-password)
USERS="one q1 q2 q3 q4"

users_json=""
for u in $USERS; do users_json+="\"$u\": { \"PasswordHash\": \"$HASH\" },"; done
cat > "$W/slimmail.json" <<JSON
{ "Hostname": "bench.slimmail.test", "DataDirectory": "$W/data",
  "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:25270", "Role": "Mx" } ], "MaxConnections": 2000, "MaxConnectionsPerAddress": 2000 },
  "Pop3": { "Listeners": [ { "Endpoint": "127.0.0.1:11000" } ] },
  "Domains": { "bench.test": { "Mailboxes": { "one": "one", "q1": "q1" } } },
  "Users": { ${users_json%,} },
  "Logging": { "LogLevel": { "Default": "Warning" } } }
JSON
env $(slimmail_env) "$DIST/slimmail" serve --config "$W/slimmail.json" > "$W/slimmail.log" 2>&1 &
SLIM=$!
wait_for_port 11000

# The maildrops: COUNT messages for "one", COUNT/4 for q1, copied to q2..q4.
"$LOAD" smtp 127.0.0.1:25270 -d -P -s 8 -m "$COUNT" -l "$SIZE" -t one@bench.test >/dev/null
"$LOAD" smtp 127.0.0.1:25270 -d -P -s 8 -m $((COUNT / 4)) -l "$SIZE" -t q1@bench.test >/dev/null
for u in q2 q3 q4; do cp -a "$W/data/mail/q1" "$W/data/mail/$u"; done

# Dovecot over copies of the same Maildirs.
mkdir -p "$W/run"
: > "$W/passwd"
for u in $USERS; do
  mkdir -p "$W/home/$u"
  cp -a "$W/data/mail/$u" "$W/home/$u/Maildir"
  echo "$u:{PLAIN}$PASSWORD::::::" >> "$W/passwd"
done
chown -R dovecot:dovecot "$W/home"
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

DOVE=$(cat "$W/run/master.pid")
# client_ms OUTFILE COMMAND...: runs the command, its stdout into OUTFILE; prints its CPU time (user + system) in ms
client_ms() {
  local out=$1 t; shift
  t=$( { TIMEFORMAT='%3U %3S'; time "$@" > "$out"; } 2>&1 )
  echo "$t" | awk '{printf "%d", ($1 + $2) * 1000}'
}
# fetch PORT SESSIONS SERVER_PID -> "messages/s, server CPU µs per message, client CPU µs per message" (and
# checks every session saw its whole maildrop). CPU is counted over the whole pass less what the same
# sessions cost when they only log in and quit (SlimMail's password hash is deliberately slow, Dovecot's here
# is {PLAIN}; the client's start-up). Dovecot's CPU is its master's reaped children's (a pop3 process per session).
fetch() {
  local user=one t0 t1 t2 c1 c2
  [ "$2" -gt 1 ] && user='q{0}'
  t0=$(cpu_ticks "$3")
  c1=$(client_ms "$W/fetch.out" "$LOAD" pop3 127.0.0.1:"$1" -s "$2" -u "$user" -w "$PASSWORD" -L)
  sleep 0.3
  t1=$(cpu_ticks "$3")
  c2=$(client_ms "$W/fetch.out" "$LOAD" pop3 127.0.0.1:"$1" -s "$2" -u "$user" -w "$PASSWORD")
  sleep 0.3
  t2=$(cpu_ticks "$3")
  read -r rate count bytes _ < "$W/fetch.out"
  [ "$count" = "$COUNT" ] || { echo "port $1: retrieved $count of $COUNT" >&2; exit 1; }
  echo "$bytes" > "$W/bytes.$1"
  echo "$rate $(ticks_to_us_per $(( t2 - t1 - (t1 - t0) )) "$COUNT") $(( (c2 - c1) * 1000 / COUNT ))"
}

echo '| messages | sessions | Dovecot msg/s | SlimMail msg/s | SlimMail / Dovecot | server CPU per message (Dovecot / SlimMail) | client CPU per message (with Dovecot / SlimMail) |'
echo '|---|---|---|---|---|---|---|'
for sessions in 1 4; do
  fetch 11000 "$sessions" "$SLIM" >/dev/null; fetch 11001 "$sessions" "$DOVE" >/dev/null   # warm-up (JIT, Dovecot's index)
  # Both serve copies of the same Maildirs: the same bytes must come back.
  [ "$(cat "$W/bytes.11000")" = "$(cat "$W/bytes.11001")" ] ||
    { echo "SlimMail sent $(cat "$W/bytes.11000") bytes, Dovecot $(cat "$W/bytes.11001")" >&2; exit 1; }
  slim=(); dove=(); slim_cpu=(); dove_cpu=(); slim_client=(); dove_client=()
  for _ in $(seq "$REPEATS"); do
    read -r rate cpu client < <(fetch 11000 "$sessions" "$SLIM"); slim+=("$rate"); slim_cpu+=("$cpu"); slim_client+=("$client")
    read -r rate cpu client < <(fetch 11001 "$sessions" "$DOVE"); dove+=("$rate"); dove_cpu+=("$cpu"); dove_client+=("$client")
  done
  s=$(median "${slim[@]}"); d=$(median "${dove[@]}")
  printf '| %d x %s | %d | %.0f | %.0f | %.2fx | %d / %d µs | %d / %d µs |\n' "$COUNT" "$([ "$SIZE" -lt 10240 ] && echo "${SIZE} B" || echo "$((SIZE / 1024)) KB")" \
    "$sessions" "$d" "$s" "$(echo "$s / $d" | bc -l)" "$(median "${dove_cpu[@]}")" "$(median "${slim_cpu[@]}")" \
    "$(median "${dove_client[@]}")" "$(median "${slim_client[@]}")"
done
