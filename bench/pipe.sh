#!/usr/bin/env bash
# Pipe delivery benchmark: every message handed to a program on its stdin, side by side on loopback with
#   - smtp-sink: Postfix's C null server (no program at all: the protocol's speed limit here);
#   - Postfix: a private instance whose pipe(8) service runs the same program for each message (as nobody,
#     up to 32 at once); its rate counts until its queue is empty, i.e. until every program has run;
#   - SlimMail: the shipped build with a Pipe delivery running the program, `250` once it exited 0.
# Before the servers, bench/spawn-loop.c runs the program the same number of times from C (posix_spawn, the
# message through a pipe, waitpid) on 1, 8 and 32 threads: what the program alone costs here.
# smtp-source with a new connection per message, 1 KB, 1/8/32 sessions, REPEATS interleaved rounds, medians.
# Usage: sudo bench/pipe.sh [REPEATS]
#   env: PROGRAM="/bin/dd of=/dev/null bs=64k status=none" (reads the message and exits 0), DIST=dir (an existing
#        deploy/publish.sh output), SESSIONS="1 8 32", COUNT=2000 (per round; Postfix gets half)
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS=${1:-3}
PROGRAM=${PROGRAM:-/bin/dd of=/dev/null bs=64k status=none}
SESSIONS=${SESSIONS:-1 8 32}
COUNT=${COUNT:-2000}
source bench/lib.sh
ensure_smtp_tools
ensure_gcc
SINK_PORT=25260 SLIM_PORT=25261 POSTFIX_PORT=25262
begin_side_by_side
gcc -O2 -pthread -o "$WORK/spawn" bench/spawn-loop.c

# The program as a JSON string for SlimMail (which splits it like a shell would); pipe(8) splits its argv on blanks.
command_json=$(printf '%s' "$PROGRAM" | sed 's/\\/\\\\/g; s/"/\\"/g')
start_sink_and_slimmail '{ "Delivery": "program" }' "{ \"program\": { \"Type\": \"Pipe\", \"Command\": \"$command_json\" } }"
start_postfix_virtual "$WORK/postfix" $POSTFIX_PORT "$PROGRAM"

port_of() { case $1 in sink) echo $SINK_PORT ;; postfix) echo $POSTFIX_PORT ;; slimmail) echo $SLIM_PORT ;; esac; }

# rate PEER SESSIONS COUNT -> messages per second, until every program has run
rate() {
  local start end
  start=$(date +%s.%N)
  /usr/sbin/smtp-source -s "$2" -m "$3" -l 1024 -f sender@client.test -t rcpt@bench.test 127.0.0.1:"$(port_of "$1")" >/dev/null
  [ "$1" = postfix ] && postfix_drained "$WORK/postfix"
  end=$(date +%s.%N)
  echo "$3 / ($end - $start)" | bc -l
}
ratio() { [ "${2%.*}" != 0 ] && printf '%.0f%%' "$(echo "100 * $1 / $2" | bc -l)" || printf '—'; }

# Warm-up: SlimMail's hot code reaches its optimised tier only after some thousands of messages.
for _ in 1 2 3; do rate slimmail 32 4000 >/dev/null; done
rate postfix 8 200 >/dev/null
sent_slimmail=12000 sent_postfix=200
rate sink 32 2000 >/dev/null

echo "program: $PROGRAM"
printf '| sessions | the program alone, from C (runs/s) | smtp-sink msg/s | Postfix → pipe(8) msg/s | SlimMail msg/s | SlimMail / program alone | SlimMail / Postfix | SlimMail CPU per message (its own / the program) |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for sessions in $SESSIONS; do
  n=$COUNT
  [ "$sessions" = 1 ] && n=$((COUNT / 2))
  # shellcheck disable=SC2086
  alone=$("$WORK/spawn" "$n" "$sessions" $PROGRAM | sed -E 's/.*: ([0-9]+) runs\/s.*/\1/')
  declare -A runs=([sink]="" [postfix]="" [slimmail]="")
  self=0 children=0
  for _ in $(seq "$REPEATS"); do
    runs[sink]+=" $(rate sink "$sessions" "$n")"
    runs[postfix]+=" $(rate postfix "$sessions" $((n / 2)))"
    read -r s0 c0 < <(awk '{print $14 + $15, $16 + $17}' /proc/$SLIM_PID/stat)
    runs[slimmail]+=" $(rate slimmail "$sessions" "$n")"
    read -r s1 c1 < <(awk '{print $14 + $15, $16 + $17}' /proc/$SLIM_PID/stat)
    self=$((self + s1 - s0)); children=$((children + c1 - c0))
    sent_slimmail=$((sent_slimmail + n)); sent_postfix=$((sent_postfix + n / 2))
  done
  s=$(median ${runs[sink]}); p=$(median ${runs[postfix]}); m=$(median ${runs[slimmail]})
  printf '| %d | %s | %.0f | %.0f | %.0f | %s | %s | %s / %s µs |\n' "$sessions" "$alone" "$s" "$p" "$m" \
    "$(ratio "$m" "$alone")" "$(ratio "$m" "$p")" \
    "$(ticks_to_us_per "$self" $((n * REPEATS)))" "$(ticks_to_us_per "$children" $((n * REPEATS)))"
done
echo
echo "SlimMail peak RSS: $(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/$SLIM_PID/status)"
# A program that failed would make a rate meaningless: each server must have delivered every message it was sent.
echo "delivered: SlimMail $(grep -c ' accepted from=' "$WORK/slimmail.log") of $sent_slimmail," \
  "Postfix $(grep -c ' status=sent ' "$WORK/postfix/maillog") of $sent_postfix"
