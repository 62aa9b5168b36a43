#!/usr/bin/env bash
# SlimMail inbound benchmark, side by side with its peers on this machine, all on loopback:
#   - smtp-sink: Postfix's C null server, which discards mail: the protocol's speed limit here;
#   - Postfix: a private instance (own config, queue and Maildir under a temporary directory) whose
#     smtpd queues each message and virtual(8) delivers it into a Maildir, both fsync'd; its rate counts
#     until the last message is in the Maildir;
#   - SlimMail: the shipped build (deploy/publish.sh: self-contained, trimmed, ReadyToRun) with the GC
#     environment of deploy/slimmail.service, every message fsync'd into a Maildir (file and directory) before 250.
# Three client behaviours ("variants"):
#   new        smtp-source, one new connection per message (what most senders do);
#   reuse      smtp-source -d, all of a session's messages over one connection;
#   pipelined  bench/SlimMail.Load -d -P: one connection, MAIL+RCPT+DATA sent in one write (RFC 2920).
# Sizes 1 KB and 100 KB, 1/8/32 concurrent sessions, REPEATS interleaved rounds, medians.
# Prints a Markdown table (rates and SlimMail's ratio to each peer) and SlimMail's peak RSS, and writes
# the raw rates and a chart (rate against sessions, one panel per variant and size) into OUT.
# Usage: sudo bench/run.sh [REPEATS]
#   env: OUT=dir (default bench/results), DIST=dir (an existing deploy/publish.sh output), VARIANTS="new reuse pipelined", SIZES="1024 102400",
#        SESSIONS="1 8 32", PEERS="sink postfix slimmail"
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS=${1:-3}
VARIANTS=${VARIANTS:-new reuse pipelined}
SIZES=${SIZES:-1024 102400}
SESSIONS=${SESSIONS:-1 8 32}
PEERS=${PEERS:-sink postfix slimmail}
OUT=${OUT:-bench/results}
mkdir -p "$OUT"

source bench/lib.sh
ensure_smtp_tools
command -v gnuplot >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null
SINK_PORT=25250 SLIM_PORT=25251 POSTFIX_PORT=25252
begin_side_by_side

start_sink_and_slimmail
[[ " $PEERS " == *" postfix "* ]] && start_postfix_virtual "$WORK/postfix" $POSTFIX_PORT

port_of() { case $1 in sink) echo $SINK_PORT ;; postfix) echo $POSTFIX_PORT ;; slimmail) echo $SLIM_PORT ;; esac; }

# rate PEER VARIANT SESSIONS COUNT SIZE -> messages per second
rate() {
  local peer=$1 variant=$2 sessions=$3 count=$4 size=$5 port start end
  port=$(port_of "$peer")
  start=$(date +%s.%N)
  case $variant in
    new) /usr/sbin/smtp-source -s "$sessions" -m "$count" -l "$size" -f sender@client.test -t rcpt@bench.test 127.0.0.1:"$port" >/dev/null ;;
    reuse) /usr/sbin/smtp-source -d -s "$sessions" -m "$count" -l "$size" -f sender@client.test -t rcpt@bench.test 127.0.0.1:"$port" >/dev/null ;;
    pipelined) "$LOAD" smtp 127.0.0.1:"$port" -d -P -s "$sessions" -m "$count" -l "$size" -f sender@client.test -t rcpt@bench.test >/dev/null ;;
  esac
  # Postfix has only queued a message at 250; it counts as done once virtual(8) has delivered it.
  [ "$peer" = postfix ] && postfix_drained "$WORK/postfix"
  end=$(date +%s.%N)
  echo "$count / ($end - $start)" | bc -l
}
ratio() { [ "${2%.*}" != 0 ] && printf '%.0f%%' "$(echo "100 * $1 / $2" | bc -l)" || printf '—'; }

# Warm-up, so that the table shows steady state: SlimMail's hot code is recompiled with profile data
# (tier 1) only after it ran a while (ReadyToRun code is the first tier); a fresh server needed ~15,000
# messages for that with the unit's settings, ~40,000 without (docs/benchmarks.md). Every client
# behaviour is warmed, ~55,000 messages in all. Postfix's processes start on their first message.
for _ in 1 2 3; do
  for variant in new reuse pipelined; do rate slimmail "$variant" 32 6000 1024 >/dev/null; done
done
rate slimmail new 8 300 102400 >/dev/null
rate sink new 32 6000 1024 >/dev/null
[[ " $PEERS " == *" postfix "* ]] && rate postfix new 8 300 1024 >/dev/null
# The warm-up's peak (JIT compilation of the hot paths, the heap's first growth) is reported apart from the
# measured load's: the kernel's high-water mark is read, then reset (clear_refs 5).
WARMUP_HWM=$(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/$SLIM_PID/status)
echo 5 > /proc/$SLIM_PID/clear_refs
# Files are not deleted during the run: on ext4, allocating inodes right after mass deletion is slow
# (recently_deleted() scans) and would measure the file system's cleanup, not the server.

DATA="$OUT/smtp-rates.tsv"
printf 'variant\tsize\tsessions\tsink\tpostfix\tslimmail\n' > "$DATA"
printf '| client | size | sessions | smtp-sink msg/s | Postfix → virtual(8) msg/s | SlimMail msg/s | SlimMail / smtp-sink | SlimMail / Postfix |\n|---|---|---|---|---|---|---|---|\n'
for variant in $VARIANTS; do
  for size in $SIZES; do
    for sessions in $SESSIONS; do
      # Enough messages for a few seconds each; Postfix is ~10x slower, so it gets a tenth.
      if [ "$size" -le 10240 ]; then count=$((sessions == 1 ? 2000 : 6000)); else count=$((sessions == 1 ? 600 : 2000)); fi
      declare -A runs=([sink]="" [postfix]="" [slimmail]="")
      for _ in $(seq "$REPEATS"); do
        for peer in $PEERS; do
          n=$count
          [ "$peer" = postfix ] && n=$((count / 10))
          runs[$peer]+=" $(rate "$peer" "$variant" "$sessions" "$n" "$size")"
        done
      done
      s=0; p=0; m=0
      [ -n "${runs[sink]// /}" ] && s=$(median ${runs[sink]})
      [ -n "${runs[postfix]// /}" ] && p=$(median ${runs[postfix]})
      [ -n "${runs[slimmail]// /}" ] && m=$(median ${runs[slimmail]})
      printf '%s\t%s\t%s\t%.0f\t%.0f\t%.0f\n' "$variant" "$size" "$sessions" "$s" "$p" "$m" >> "$DATA"
      printf '| %s | %s | %d | %.0f | %.0f | %.0f | %s | %s |\n' "$variant" "$((size / 1024)) KB" \
        "$sessions" "$s" "$p" "$m" "$(ratio "$m" "$s")" "$(ratio "$m" "$p")"
    done
  done
done
echo
echo "SlimMail peak RSS under the measured load: $(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/$SLIM_PID/status) (during the warm-up: $WARMUP_HWM)"

# The chart: one panel per (variant, size), rate against sessions for the three servers.
panels=$(awk -F'\t' 'NR > 1 {print $1 "\t" $2}' "$DATA" | uniq | wc -l)
{
  echo "set terminal svg size 1200,$(( (panels + 1) / 2 * 320 )) font 'sans,11' background '#ffffff'"
  echo "set output '$OUT/smtp-rates.svg'"
  echo "set multiplot layout $(( (panels + 1) / 2 )),2 title 'SMTP messages/s against concurrent sessions (loopback, 2 cores, fsync before 250 except smtp-sink)'"
  echo "set logscale x 2; set xtics (1, 8, 32); set key top left; set grid ytics; set yrange [0:*]; set datafile separator '\t'"
  awk -F'\t' 'NR > 1 {print $1 "\t" $2}' "$DATA" | uniq | while IFS=$'\t' read -r variant size; do
    sel="(strcol(1) eq '$variant' && \$2 == $size ? \$3 : NaN)"
    echo "set title '$variant connection, $((size / 1024)) KB'"
    echo "plot '$DATA' using $sel:4 with linespoints title 'smtp-sink (discards)', '' using $sel:5 with linespoints title 'Postfix → virtual(8)', '' using $sel:6 with linespoints lw 2 title 'SlimMail'"
  done
  echo "unset multiplot"
} > "$WORK/chart.gp"
gnuplot "$WORK/chart.gp" && echo "chart: $OUT/smtp-rates.svg; data: $DATA"
