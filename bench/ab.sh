#!/usr/bin/env bash
# A/B of two SlimMail builds (or one build under two environments) side by side on loopback: both servers
# run at once, get the same warm-up, and are measured in alternating order, round after round, with
# smtp-sink between them as the reference. Per round and server: messages/s, CPU per message (user +
# system, from /proc) and context switches per message (every thread's, from /proc); at the end each
# server's peak RSS. This is how the "Changes measured" rows of docs/benchmarks.md were taken.
# Usage: sudo bench/ab.sh A_DIST B_DIST      (each a deploy/publish.sh output directory; may be the same)
#   env: AENV="VAR=value ...", BENV=..., VARIANT=new|reuse|pipelined, SESSIONS=32, COUNT=6000, SIZE=1024,
#        ROUNDS=4, WARM=1 (the run.sh warm-up, ~55,000 messages each), USER_JSON and DELIVERIES_JSON (the bench
#        user's entry and the Deliveries section, default {} and {}: a Maildir; e.g. a Pipe delivery)
set -euo pipefail
cd "$(dirname "$0")/.."
A_DIST=$1; B_DIST=$2
VARIANT=${VARIANT:-new}; SESSIONS=${SESSIONS:-32}; COUNT=${COUNT:-6000}; SIZE=${SIZE:-1024}; ROUNDS=${ROUNDS:-4}
source bench/lib.sh
ensure_smtp_tools
W=$(mktemp -d)
chmod 755 "$W"
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$W"; settle_file_system; }
trap cleanup EXIT
settle_file_system
dotnet build bench/SlimMail.Load -c Release -nologo -v quiet -o "$W/load" >/dev/null
LOAD="$W/load/slimmail-load"

# start NAME DIST ENV PORT: a server delivering into its own Maildir; prints its PID
start() {
  mkdir -p "$W/$1"
  cat > "$W/$1/slimmail.json" <<JSON
{ "Hostname": "bench.slimmail.test", "DataDirectory": "$W/$1/data",
  "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:$4", "Role": "Mx" } ], "MaxConnections": 2000, "MaxConnectionsPerAddress": 2000 },
  "Domains": { "bench.test": { "Mailboxes": { "*": "bench" } } }, "Users": { "bench": ${USER_JSON:-{\}} },
  "Deliveries": ${DELIVERIES_JSON:-{\}} }
JSON
  # shellcheck disable=SC2046,SC2086
  env $(slimmail_env) $3 "$2/slimmail" serve --config "$W/$1/slimmail.json" > "$W/$1/log" 2>&1 &
  echo $!
}
load() { # VARIANT PORT COUNT
  case $1 in
    new) /usr/sbin/smtp-source -s "$SESSIONS" -m "$3" -l "$SIZE" -f s@client.test -t r@bench.test 127.0.0.1:"$2" ;;
    reuse) /usr/sbin/smtp-source -d -s "$SESSIONS" -m "$3" -l "$SIZE" -f s@client.test -t r@bench.test 127.0.0.1:"$2" ;;
    pipelined) "$LOAD" smtp 127.0.0.1:"$2" -d -P -s "$SESSIONS" -m "$3" -l "$SIZE" -f s@client.test -t r@bench.test >/dev/null ;;
  esac
}
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {n += $2} END {print n}'; }
# measure LABEL PID PORT: one round; PID 0 for smtp-sink (rate only)
measure() {
  local c0=0 t0=0 start end
  [ "$2" != 0 ] && { c0=$(switches "$2"); t0=$(cpu_ticks "$2"); }
  start=$(date +%s.%N); load "$VARIANT" "$3" "$COUNT"; end=$(date +%s.%N)
  local rate; rate=$(echo "$COUNT / ($end - $start)" | bc)
  if [ "$2" != 0 ]; then
    echo "$1 $rate $(ticks_to_us_per $(( $(cpu_ticks "$2") - t0 )) "$COUNT") $(( ($(switches "$2") - c0) / COUNT ))"
  else
    echo "$1 $rate - -"
  fi
}

A=$(start a "$A_DIST" "${AENV:-}" 25281); PIDS+=("$A")
B=$(start b "$B_DIST" "${BENV:-}" 25282); PIDS+=("$B")
/usr/sbin/smtp-sink -u nobody 127.0.0.1:25280 1024 & PIDS+=($!)
for port in 25281 25282; do
  wait_for_port "$port"
done
if [ "${WARM:-1}" = 1 ]; then
  for _ in 1 2 3; do for v in new reuse pipelined; do load $v 25281 6000; load $v 25282 6000; done; done
fi
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then measure A "$A" 25281; measure B "$B" 25282; else measure B "$B" 25282; measure A "$A" 25281; fi
  measure sink 0 25280
done > "$W/rounds"
echo "$VARIANT, $SESSIONS sessions, $SIZE bytes, $COUNT messages per round:"
for l in A B sink; do
  printf '%-5s msg/s: %-30s CPU us/msg: %-24s switches/msg: %s\n' "$l" \
    "$(awk -v l=$l '$1 == l {printf "%s ", $2}' "$W/rounds")" "$(awk -v l=$l '$1 == l {printf "%s ", $3}' "$W/rounds")" \
    "$(awk -v l=$l '$1 == l {printf "%s ", $4}' "$W/rounds")"
done
echo "peak RSS: A $(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/"$A"/status), B $(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/"$B"/status)"
