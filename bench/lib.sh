# Shared by the benchmark scripts (source it): Postfix's smtp-source and smtp-sink from Debian, without
# starting Postfix itself, and a Release build of slimmail in $DLL.
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
DLL=src/SlimMail/bin/Release/net10.0/slimmail.dll

ensure_smtp_tools() {
  if ! [ -x /usr/sbin/smtp-source ]; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
    systemctl disable --now postfix >/dev/null 2>&1 || service postfix stop >/dev/null 2>&1 || true
  fi
}

# gcc, for the C parts of the benchmarks (installed from Debian if missing).
ensure_gcc() {
  command -v gcc >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc >/dev/null
}

# The environment deploy/slimmail.service gives the runtime (GC and JIT tiering), for benchmarks to run it alike.
slimmail_env() {
  grep -oE '^Environment=DOTNET_[^ ]+' deploy/slimmail.service | grep -v TELEMETRY | cut -d= -f2-
}

# For the scripts that run smtp-sink, SlimMail and a private Postfix side by side: a work directory in $WORK
# (readable by the servers' own users), removed at exit after SINK_PID and SLIM_PID (the caller's to set) and the
# Postfix under $WORK/postfix are stopped, the file system settled before and after; the shipped build prepared.
begin_side_by_side() {
  WORK=$(mktemp -d)
  chmod 755 "$WORK"
  trap end_side_by_side EXIT
  settle_file_system
  echo "building SlimMail (deploy/publish.sh) and the load client..." >&2
  prepare_shipped_build "$WORK"
}

# Starts smtp-sink on $SINK_PORT and SlimMail (the shipped build in $DIST, the unit's environment) on $SLIM_PORT,
# configured in $WORK/slimmail.json: every recipient @bench.test goes to the user "bench", whose entry is the JSON
# object USER (default {}: a Maildir), with DELIVERIES as the Deliveries section. Sets SINK_PID and SLIM_PID.
# Usage: start_sink_and_slimmail [USER [DELIVERIES]]
start_sink_and_slimmail() {
  local user=${1:-'{}'} deliveries=${2:-'{}'}
  cat > "$WORK/slimmail.json" <<JSON
{
  "Hostname": "bench.slimmail.test",
  "DataDirectory": "$WORK/data",
  "Smtp": {
    "Listeners": [ { "Endpoint": "127.0.0.1:$SLIM_PORT", "Role": "Mx" } ],
    "MaxConnections": 2000, "MaxConnectionsPerAddress": 2000
  },
  "Domains": { "bench.test": { "Mailboxes": { "*": "bench" } } },
  "Users": { "bench": $user },
  "Deliveries": $deliveries
}
JSON
  /usr/sbin/smtp-sink -u nobody 127.0.0.1:"$SINK_PORT" 1024 &
  SINK_PID=$!
  # shellcheck disable=SC2046
  env $(slimmail_env) "$DIST/slimmail" serve --config "$WORK/slimmail.json" > "$WORK/slimmail.log" 2>&1 &
  SLIM_PID=$!
  wait_for_port "$SINK_PORT"
  wait_for_port "$SLIM_PORT"
}

end_side_by_side() {
  [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null
  [ -n "${SLIM_PID:-}" ] && kill "$SLIM_PID" 2>/dev/null
  stop_postfix_virtual "$WORK/postfix"
  rm -rf "$WORK"
  settle_file_system
}

# The shipped build (deploy/publish.sh) in $DIST, or the one $DIST already names; the load client in $LOAD.
# Usage: prepare_shipped_build WORKDIR
prepare_shipped_build() {
  DIST=${DIST:-}
  [ -z "$DIST" ] && { DIST=$1/dist; deploy/publish.sh "$DIST" >/dev/null; }
  dotnet build bench/SlimMail.Load -c Release -nologo -v quiet -o "$1/load" >/dev/null
  LOAD="$1/load/slimmail-load"
}

# Deleting many files slows the next creates for minutes on ext4 without a journal: each inode allocation skips
# every free inode deleted in the last 60 s (360 s while its inode-table block is dirty), reading the cached
# inode-table blocks to find out (recently_deleted()). Right after removing 744,000 files a durable create loop ran at
# 1,939-2,871 files/s at 610-910 µs of CPU per file instead of ~11,000 at ~150 (`bench/group-sync.c`, 32 threads), and a
# profile of SlimMail put a quarter of its CPU there. A block that is not cached counts as written out: writing
# everything and dropping the clean caches ends it at once. settle_file_system does that (as root; it drops every
# clean cache of the machine), at the start of a measuring script and after it removed its files.
settle_file_system() {
  sync
  if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; fi
}

# CPU time (user + system, in clock ticks) of process $1 and of its children it has reaped.
cpu_ticks() { awk '{print $14 + $15 + $16 + $17}' /proc/"$1"/stat; }
# Microseconds of CPU per message between two cpu_ticks readings: ticks_to_us_per TICKS COUNT
ticks_to_us_per() { echo $(( $1 * 1000000 / $(getconf CLK_TCK) / $2 )); }

# wait_for_port PORT: until something accepts on 127.0.0.1:PORT, at most 10 s; false (and says so) if nothing does.
wait_for_port() {
  for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# relay_config DATA_DIR PORT SMARTHOST_PORT: a configuration that accepts mail for anywhere on a Local listener on
# PORT and relays it to 127.0.0.1:SMARTHOST_PORT, 32 deliveries at once, a failed one retried an hour later.
relay_config() {
  cat <<JSON
{ "Hostname": "bench.slimmail.test", "DataDirectory": "$1",
  "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:$2", "Role": "Local" } ], "MaxConnections": 2000, "MaxConnectionsPerAddress": 2000 },
  "Domains": {}, "Users": {},
  "Relay": { "Mode": "Smarthost", "Smarthost": "127.0.0.1:$3", "MaxConcurrentDeliveries": 32, "MaxConcurrentPerDestination": 32, "RetryDelays": [ "01:00:00" ] },
  "Logging": { "LogLevel": { "Default": "Warning" } } }
JSON
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

build_slimmail() {
  dotnet build src/SlimMail -c Release -nologo -v quiet >/dev/null
}

# A private Postfix instance under DIR: smtpd on 127.0.0.1:PORT, every recipient @bench.test delivered by
# virtual(8) into the Maildir DIR/vmail/bench/ (fsync'd, as Postfix always does) — or, given PIPE_COMMAND, by a
# pipe(8) service that runs that command (as nobody, the message on its stdin) for each message, 32 at once.
# Started with `postfix -c`, so the machine's own Postfix (if any) is untouched; stop_postfix_virtual stops it.
# Usage: start_postfix_virtual DIR PORT [PIPE_COMMAND]
start_postfix_virtual() {
  local dir=$1 port=$2 pipe_command=${3:-}
  mkdir -p "$dir/etc" "$dir/queue" "$dir/data" "$dir/vmail"
  chown nobody:nogroup "$dir/vmail"
  chown postfix "$dir/data"
  cat > "$dir/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = bench.test
virtual_mailbox_base = $dir/vmail
virtual_mailbox_maps = static:bench/
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(getent group nogroup | cut -d: -f3)
virtual_minimum_uid = 1
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 200
biff = no
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
CF
  if [ -n "$pipe_command" ]; then
    printf 'virtual_transport = benchpipe\nbenchpipe_destination_concurrency_limit = 32\nbenchpipe_destination_recipient_limit = 1\n' >> "$dir/etc/main.cf"
  fi
  cat > "$dir/etc/master.cf" <<CF
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CF
  if [ -n "$pipe_command" ]; then
    echo "benchpipe unix - n n - - pipe flags=q user=nobody argv=$pipe_command" >> "$dir/etc/master.cf"
  fi
  postfix -c "$dir/etc" set-permissions >/dev/null 2>&1 || true
  postfix -c "$dir/etc" start >/dev/null 2>&1 || script -qc "postfix -c $dir/etc start" /dev/null >&2
  wait_for_port "$port" && return 0
  echo "the private Postfix did not start; see $dir/maillog" >&2
  return 1
}

# Postfix has only queued a message at 250; it counts as done once it has been delivered: waits (at most 60 s)
# until the queue under DIR (start_postfix_virtual's) is empty.
postfix_drained() {
  local q=$1/queue
  for _ in $(seq 6000); do
    [ -z "$(find "$q/maildrop" "$q/incoming" "$q/active" "$q/deferred" -type f -print -quit 2>/dev/null)" ] && return 0
    sleep 0.01
  done
  echo "Postfix did not deliver everything within 60 s" >&2
}

stop_postfix_virtual() {
  local pid
  pid=$(cat "$1/queue/pid/master.pid" 2>/dev/null | tr -d ' ') || true
  postfix -c "$1/etc" stop >/dev/null 2>&1 || true
  # Wait for the master to be gone before its directory is removed (it would linger, holding the port).
  for _ in $(seq 50); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
}
