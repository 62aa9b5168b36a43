#!/usr/bin/env bash
# How far the Maildir contract lets any server go on this machine: smtp-sink (discards mail), bench/ideal-server.c
# (the least a server can do and keep the contract: just enough SMTP for smtp-source, then the same durable commit
# as SlimMail, in C) and SlimMail, side by side on loopback, rounds interleaved in rotating order. Prints each
# one's messages/s, its ratio to smtp-sink and CPU per message (the server's own, from /proc), and SlimMail's rate
# as a share of the C server's.
# Usage: sudo bench/ideal.sh [ROUNDS]
#   env: DIST=dir (an existing deploy/publish.sh output), CASES="new:32 reuse:32 new:1 reuse:1", COUNT=6000
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
CASES=${CASES:-new:32 reuse:32 new:1 reuse:1}
COUNT=${COUNT:-6000}
source bench/lib.sh
ensure_smtp_tools
ensure_gcc
SINK_PORT=25270 SLIM_PORT=25271 IDEAL_PORT=25272
begin_side_by_side
gcc -O2 -pthread -o "$WORK/ideal" bench/ideal-server.c
start_sink_and_slimmail
mkdir "$WORK/ideal-maildir"
"$WORK/ideal" $IDEAL_PORT "$WORK/ideal-maildir" 32 &
IDEAL_PID=$!
trap 'kill $IDEAL_PID 2>/dev/null; end_side_by_side' EXIT
wait_for_port $IDEAL_PORT

declare -A port=([sink]=$SINK_PORT [ideal]=$IDEAL_PORT [slimmail]=$SLIM_PORT)
declare -A pid=([sink]=$SINK_PID [ideal]=$IDEAL_PID [slimmail]=$SLIM_PID)
# one SERVER VARIANT SESSIONS N -> "rate cpu_us_per_message"
one() {
  local flag="" t0 start end
  [ "$2" = reuse ] && flag=-d
  t0=$(cpu_ticks "${pid[$1]}")
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  /usr/sbin/smtp-source $flag -s "$3" -m "$4" -l 1024 -f sender@client.test -t rcpt@bench.test 127.0.0.1:"${port[$1]}" >/dev/null
  end=$(date +%s.%N)
  echo "$(echo "$4 / ($end - $start)" | bc) $(ticks_to_us_per $(( $(cpu_ticks "${pid[$1]}") - t0 )) "$4")"
}

# Warm-up: SlimMail's hot code reaches its optimised tier after some tens of thousands of messages.
for _ in 1 2 3; do for v in new reuse; do one slimmail $v 32 6000 >/dev/null; done; done
one ideal new 32 2000 >/dev/null
one sink new 32 2000 >/dev/null

printf '| client | sessions | smtp-sink msg/s | C server keeping the contract msg/s (%% of smtp-sink) | SlimMail msg/s (%% of smtp-sink) | SlimMail / C server | CPU per message: smtp-sink / C server / SlimMail |\n'
printf '|---|---|---|---|---|---|---|\n'
for case in $CASES; do
  variant=${case%%:*} sessions=${case##*:}
  n=$COUNT
  [ "$sessions" = 1 ] && n=$((COUNT / 3))
  declare -A rate=([sink]="" [ideal]="" [slimmail]="") cpu=([sink]="" [ideal]="" [slimmail]="")
  order=(sink ideal slimmail)
  for r in $(seq "$ROUNDS"); do
    for k in 0 1 2; do
      s=${order[$(( (r + k) % 3 ))]}
      read -r got us < <(one "$s" "$variant" "$sessions" "$n")
      rate[$s]+=" $got"; cpu[$s]+=" $us"
    done
  done
  k=$(median ${rate[sink]}); c=$(median ${rate[ideal]}); m=$(median ${rate[slimmail]})
  printf '| %s | %s | %.0f | %.0f (%.0f%%) | %.0f (%.0f%%) | %.0f%% | %.0f / %.0f / %.0f µs |\n' "$variant" "$sessions" "$k" \
    "$c" "$(echo "100 * $c / $k" | bc -l)" "$m" "$(echo "100 * $m / $k" | bc -l)" "$(echo "100 * $m / $c" | bc -l)" \
    "$(median ${cpu[sink]})" "$(median ${cpu[ideal]})" "$(median ${cpu[slimmail]})"
done
