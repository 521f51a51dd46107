#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Run a private RabbitMQ node (Debian package, no systemd, no Docker) on 127.0.0.1.
# See scripts/brokers/README.md for the full story.
#
# usage: rabbitmq.sh COMMAND [options]
#   install            apt-get install rabbitmq-server (idempotent), stop + disable the packaged node
#   install-perftest   collect com.rabbitmq:perf-test jars into $MQ_BENCH_CACHE/perftest-<ver>/libs
#   start    [--node N]  start the private node(s); returns when booted, listening (and joined)
#   stop     [--node N]  graceful shutdown, waits until the ports are closed
#   kill     [--node N]  SIGKILL the node(s), remove the pid file, wait until the ports are closed
#   restart  [--node N]  stop if running, then start on the same data dir
#   status   [--node N]  exit 0 if the node(s) run and listen
#   wipe               SIGKILL every node + delete the data dir
#   pid      [--node N]  print the node's OS pid ("N PID" per node in a cluster)
#   leader QUEUE       cluster: print "leader=N type=T" for the node holding QUEUE's leader
#   ctl ARGS...        run rabbitmqctl against the private node (cluster: --node N, default 1)
#   perftest-libs      print the PerfTest jar folder
# options (env in brackets):
#   --port P     [RABBITMQ_PORT=5672]   AMQP port; Erlang distribution port = RABBITMQ_DIST_PORT (P+20000)
#                                       (cluster: node N on P+N-1, default base 5771)
#   --nodes 1|3  [RABBITMQ_NODES=1]     3 = three nodes named mqb-<port>@localhost sharing a cookie,
#                                       joined into one cluster (pause_minority)
#   --node N                            act on node N of the cluster (implies --nodes 3)
#   --dir DIR    [RABBITMQ_DIR]         data dir; default $MQ_BENCH_CACHE/run/rabbitmq(-cluster)
#   --timeout S  [RABBITMQ_START_TIMEOUT=90]  bound for the start wait
#   other env: RABBITMQ_NODENAME (mqb-PORT@localhost: one per port, so private nodes on other
#              ports never collide in epmd), RABBITMQ_MANAGEMENT=1 (enable the management
#              plugin on 127.0.0.1:RABBITMQ_MGMT_PORT, default 15672), RABBITMQ_STOP_TIMEOUT (60),
#              PERFTEST_VERSION (2.22.1), MQ_BENCH_CACHE
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MQB_NAME=rabbitmq
# shellcheck source=lib.sh
source "$HERE/lib.sh"

usage() { sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; }

CMD="${1:-}"
[[ -n "$CMD" ]] || { usage; exit 2; }
shift
PORT="${RABBITMQ_PORT:-}"
DIR="${RABBITMQ_DIR:-}"
NODES="${RABBITMQ_NODES:-}"
NODE=""
TIMEOUT="${RABBITMQ_START_TIMEOUT:-90}"
STOP_TIMEOUT="${RABBITMQ_STOP_TIMEOUT:-60}"
parse_opts pass "--port=PORT --dir=DIR --nodes=NODES --node=NODE --timeout=TIMEOUT" "$@"
if [[ -z "$NODES" ]]; then
  if [[ -n "$NODE" ]]; then NODES=3; else NODES=1; fi
fi
[[ "$NODES" == 1 || "$NODES" == 3 ]] || die "--nodes must be 1 or 3 (got $NODES)"
[[ -z "$NODE" ]] || [[ "$NODE" =~ ^[1-9]$ && "$NODE" -le "$NODES" ]] || die "--node must be 1..$NODES (got $NODE)"
if [[ -z "$PORT" ]]; then
  if ((NODES == 1)); then PORT=5672; else PORT=5771; fi
fi
if [[ -z "$DIR" ]]; then
  if ((NODES == 1)); then DIR="$MQB_CACHE/run/rabbitmq"; else DIR="$MQB_CACHE/run/rabbitmq-cluster"; fi
fi
[[ "$PORT" =~ ^[0-9]+$ ]] || die "bad port $PORT"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "bad timeout $TIMEOUT"
BASE_PORT="$PORT"
DIST_PORT="${RABBITMQ_DIST_PORT:-$((PORT + 20000))}"
NODENAME="${RABBITMQ_NODENAME:-mqb-$PORT@localhost}"
MGMT="${RABBITMQ_MANAGEMENT:-0}"
MGMT_PORT="${RABBITMQ_MGMT_PORT:-15672}"
PERFTEST_VERSION="${PERFTEST_VERSION:-2.22.1}"
PERFTEST_HOME="$MQB_CACHE/perftest-$PERFTEST_VERSION"
B=/usr/lib/rabbitmq/bin
# NDIR is the data dir of the node acted on: DIR itself for a single node, DIR/node-N in a cluster.
NDIR="$DIR"
PIDFILE="$NDIR/rabbitmq.pid"
NODE_LOG="$NDIR/log/$NODENAME.log"

# ---------------------------------------------------------------- cluster topology
all_nodes() { seq 1 "$NODES"; }
target_nodes() { if [[ -n "$NODE" ]]; then echo "$NODE"; else all_nodes; fi; }
node_port() { echo $((BASE_PORT + $1 - 1)); }
node_name() { echo "mqb-$(node_port "$1")@localhost"; }

# select_node N: point the node globals (port, name, dir, pid file, log) at node N of the cluster.
select_node() {
  ((NODES > 1)) || return 0
  PORT="$(node_port "$1")"
  DIST_PORT=$((PORT + 20000))
  NODENAME="$(node_name "$1")"
  NDIR="$DIR/node-$1"
  PIDFILE="$NDIR/rabbitmq.pid"
  NODE_LOG="$NDIR/log/$NODENAME.log"
  MQB_NAME="rabbitmq node-$1"
}

# The private node's environment (names from rabbit_env.erl). Exported for the server and CLIs.
node_env() {
  export HOME="$NDIR/home"
  export RABBITMQ_NODENAME="$NODENAME"
  export RABBITMQ_NODE_PORT="$PORT"
  export RABBITMQ_DIST_PORT="$DIST_PORT"
  export RABBITMQ_MNESIA_BASE="$NDIR/mnesia"
  export RABBITMQ_LOG_BASE="$NDIR/log"
  export RABBITMQ_PID_FILE="$PIDFILE"
  export RABBITMQ_CONFIG_FILE="$NDIR/rabbitmq.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$NDIR/advanced.config"
  export RABBITMQ_CONF_ENV_FILE="$NDIR/rabbitmq-env.conf"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$NDIR/enabled_plugins"
  # Erlang distribution and epmd on loopback only.
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export ERL_EPMD_ADDRESS=127.0.0.1
  # a crashing node writes erl_crash.dump here, not into the caller's working directory
  export ERL_CRASH_DUMP="$NDIR/log/erl_crash.dump"
}

# cli TOOL ARGS...: a CLI tool against the private node. No crash dumps at all
# (ERL_CRASH_DUMP_SECONDS=0), HOME must exist (cookie).
cli() {
  local tool="$1"
  shift
  mkdir -p "$HOME"
  ERL_CRASH_DUMP_SECONDS=0 timeout "${CTL_TIMEOUT:-60}" "$B/$tool" -n "$NODENAME" "$@"
}
ctl() { cli rabbitmqctl "$@"; }
diag() { cli rabbitmq-diagnostics "$@"; }

# ---------------------------------------------------------------- install
packaged_node_pids() { pgrep -u rabbitmq beam.smp 2>/dev/null || true; }

stop_packaged_node() {
  if [[ -n "$(packaged_node_pids)" ]]; then
    log "stopping the packaged rabbit@$(hostname -s) node (it holds 5672/25672)"
    timeout 90 /etc/init.d/rabbitmq-server stop >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 30))
    while [[ -n "$(packaged_node_pids)" ]]; do
      ((SECONDS < deadline)) || die "the packaged node (user rabbitmq) is still running after 30s"
      sleep 0.5
    done
    stop_idle_epmd # the packaged node's epmd listens on 0.0.0.0; ours binds 127.0.0.1
  fi
  # keep it from coming back (sysv links; systemd unit if systemd is ever PID 1)
  if [[ ! -e /etc/rabbitmq/.mq-bench-disabled ]]; then
    update-rc.d rabbitmq-server disable >/dev/null 2>&1 || true
    if command -v systemctl >/dev/null; then systemctl disable rabbitmq-server >/dev/null 2>&1 || true; fi
    mkdir -p /etc/rabbitmq && touch /etc/rabbitmq/.mq-bench-disabled
  fi
}

cmd_install() {
  # (no "| grep -q" here: with pipefail, grep's early exit can fail the pipeline with SIGPIPE)
  local status policy_out
  status="$(dpkg-query -W -f='${Status}' rabbitmq-server 2>/dev/null || true)"
  if [[ -x "$B/rabbitmq-server" && "$status" == *"install ok installed"* ]]; then
    stop_packaged_node
    log "rabbitmq-server $(dpkg-query -W -f='${Version}' rabbitmq-server) already installed"
    return 0
  fi
  ((EUID == 0)) || die "install needs root (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  policy_out="$(apt-cache policy rabbitmq-server 2>/dev/null || true)"
  if [[ "$policy_out" != *"Candidate: "[0-9]* ]]; then
    log "apt-get update (rabbitmq-server not in the package lists yet)"
    timeout 600 apt-get update -q >/dev/null || die "apt-get update failed"
  fi
  # Keep the package from auto-starting its node: a policy-rc.d that denies service starts,
  # only for the duration of the install and only if none exists already.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\n# temporary, written by mq-bench rabbitmq.sh install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  log "apt-get install -y rabbitmq-server"
  local rc=0
  timeout 900 apt-get install -y -q --no-install-recommends rabbitmq-server >"/tmp/mq-bench-apt.$$.log" 2>&1 || rc=$?
  if ((rc != 0)); then
    log "apt-get install failed (rc $rc); retrying after apt-get update"
    timeout 600 apt-get update -q >/dev/null || true
    rc=0
    timeout 900 apt-get install -y -q --no-install-recommends rabbitmq-server >"/tmp/mq-bench-apt.$$.log" 2>&1 || rc=$?
  fi
  if ((own_policy)); then rm -f "$policy"; trap - EXIT; fi
  if ((rc != 0)); then
    tail_log "/tmp/mq-bench-apt.$$.log" 20
    die "apt-get install rabbitmq-server failed"
  fi
  rm -f "/tmp/mq-bench-apt.$$.log"
  stop_packaged_node
  log "rabbitmq-server $(dpkg-query -W -f='${Version}' rabbitmq-server) installed"
}

cmd_install_perftest() {
  local sig tmp
  sig="$(sha256sum "$HERE/perftest/pom.xml" | cut -d' ' -f1)-$PERFTEST_VERSION"
  if [[ -s "$PERFTEST_HOME/.installed" && "$(cat "$PERFTEST_HOME/.installed")" == "$sig" ]]; then
    log "perf-test $PERFTEST_VERSION already installed in $PERFTEST_HOME"
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven)"
  mkdir -p "$PERFTEST_HOME"
  exec 9>"$PERFTEST_HOME/.lock"
  flock -w 600 9 || die "timed out waiting for another perf-test install"
  tmp="$PERFTEST_HOME/libs.tmp.$$"
  rm -rf "$tmp"
  log "collecting com.rabbitmq:perf-test:$PERFTEST_VERSION with maven into $PERFTEST_HOME/libs"
  if ! timeout 900 mvn -B -q -f "$HERE/perftest/pom.xml" "-Dperftest.version=$PERFTEST_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=$tmp" >"$PERFTEST_HOME/mvn.log" 2>&1; then
    tail_log "$PERFTEST_HOME/mvn.log" 20
    rm -rf "$tmp"
    die "maven could not collect perf-test $PERFTEST_VERSION"
  fi
  [[ -f "$tmp/perf-test-$PERFTEST_VERSION.jar" ]] || die "perf-test-$PERFTEST_VERSION.jar missing after maven"
  rm -rf "$PERFTEST_HOME/libs"
  mv "$tmp" "$PERFTEST_HOME/libs"
  printf '%s\n' "$sig" >"$PERFTEST_HOME/.installed"
  log "perf-test installed: $(find "$PERFTEST_HOME/libs" -name '*.jar' | wc -l) jars"
}

require_installed() {
  [[ -x "$B/rabbitmq-server" ]] || die "rabbitmq-server is not installed: run $0 install"
}

# ---------------------------------------------------------------- node
node_pid() { read_pid "$PIDFILE"; }

write_config() {
  mkdir -p "$NDIR/home" "$NDIR/mnesia" "$NDIR/log"
  {
    echo "# written by scripts/brokers/rabbitmq.sh at every start"
    echo "listeners.tcp.default = 127.0.0.1:$PORT"
    echo "loopback_users.guest = true"
    echo "disk_free_limit.absolute = 50MB"
    if [[ "$MGMT" == 1 ]]; then
      echo "management.tcp.ip = 127.0.0.1"
      echo "management.tcp.port = $((MGMT_PORT + PORT - BASE_PORT))"
    fi
    # A node cut off from the majority pauses instead of going on alone (no split brain).
    if ((NODES > 1)); then echo "cluster_partition_handling = pause_minority"; fi
  } >"$NDIR/rabbitmq.conf"
  if [[ "$MGMT" == 1 ]]; then
    echo '[rabbitmq_management].' >"$NDIR/enabled_plugins"
  else
    echo '[].' >"$NDIR/enabled_plugins"
  fi
  : >"$NDIR/rabbitmq-env.conf"
}

node_start() {
  require_installed
  local t0 deadline pid left out
  t0="$(now)"
  node_env
  if pid="$(node_pid)"; then
    log "node $NODENAME already running (pid $pid)"
  else
    rm -f "$PIDFILE"
    if port_open "$PORT" || port_open "$DIST_PORT"; then
      die "port $PORT or $DIST_PORT is already in use ($(port_owner "$PORT")$(port_owner "$DIST_PORT")); stop that process or use --port (the packaged node? run $0 install)"
    fi
    write_config
    [[ -f "$NODE_LOG" ]] && printf '===== %s rabbitmq.sh start =====\n' "$(date -Is)" >>"$NODE_LOG"
    log "starting $NODENAME on 127.0.0.1:$PORT (dist $DIST_PORT), data $NDIR"
    timeout 60 "$B/rabbitmq-server" -detached >>"$NDIR/server.out" 2>&1 ||
      { tail_log "$NDIR/server.out" 20; die "rabbitmq-server -detached failed"; }
  fi
  deadline=$((SECONDS + TIMEOUT))
  # await_startup errors at once until the node has registered with epmd: retry until the deadline.
  while true; do
    left=$((deadline - SECONDS))
    if ((left <= 0)); then
      log "timed out after ${TIMEOUT}s waiting for $NODENAME to boot (rabbitmqctl await_startup): ${out:-}"
      tail_log "$NODE_LOG" 30
      tail_log "$NDIR/server.out" 10
      if pid="$(node_pid)"; then log "killing pid $pid"; kill -9 "$pid" 2>/dev/null || true; fi
      rm -f "$PIDFILE"
      die "start failed (data dir $NDIR)"
    fi
    if out="$(CTL_TIMEOUT=$((left + 5)) ctl -q await_startup --timeout "$left" 2>&1)"; then
      break
    fi
    if [[ -s "$PIDFILE" ]] && ! node_pid >/dev/null; then
      log "the node exited during startup: $out"
      tail_log "$NODE_LOG" 30
      tail_log "$NDIR/server.out" 10
      rm -f "$PIDFILE"
      die "start failed (data dir $NDIR)"
    fi
    sleep 0.5
  done
  while ! port_open "$PORT"; do
    ((SECONDS < deadline)) || die "node booted but nothing listens on 127.0.0.1:$PORT after ${TIMEOUT}s"
    sleep 0.2
  done
  log "ready: $NODENAME pid $(node_pid || echo '?') amqp://127.0.0.1:$PORT$([[ "$MGMT" == 1 ]] && echo " management http://127.0.0.1:$MGMT_PORT") in $(elapsed "$t0")s"
}

# epmd stays behind after the last node stops; end it when no node is registered (epmd -kill
# itself refuses while names are registered).
stop_idle_epmd() {
  local out
  command -v epmd >/dev/null || return 0
  if out="$(timeout 5 epmd -names 2>/dev/null)" && ! grep -q '^name ' <<<"$out"; then
    timeout 5 epmd -kill >/dev/null 2>&1 || true
  fi
}

node_stop() {
  local pid rc=0
  node_env
  if ! pid="$(node_pid)"; then
    rm -f "$PIDFILE"
    if [[ -s "$HOME/.erlang.cookie" ]] && port_open "$PORT" && [[ -x "$B/rabbitmqctl" ]] &&
      CTL_TIMEOUT=15 ctl -q ping >/dev/null 2>&1; then
      log "pid file missing but $NODENAME answers: shutting it down"
    else
      log "not running"
      stop_idle_epmd
      return 0
    fi
  fi
  log "stopping $NODENAME${pid:+ (pid $pid)} (rabbitmqctl shutdown)"
  if ! CTL_TIMEOUT="$STOP_TIMEOUT" ctl -q shutdown >/dev/null 2>&1; then
    if pid="$(node_pid)"; then
      log "graceful shutdown did not finish within ${STOP_TIMEOUT}s: sending SIGKILL to $pid"
      kill -9 "$pid" 2>/dev/null || true
      rc=1
    fi
  fi
  wait_port_closed "$PORT" 30 "AMQP listener" || rc=1
  wait_port_closed "$DIST_PORT" 30 "Erlang distribution listener" || rc=1
  rm -f "$PIDFILE"
  stop_idle_epmd
  ((rc == 0)) || die "stop did not finish cleanly"
  log "stopped"
}

node_kill() {
  local pid
  node_env
  if pid="$(node_pid)"; then
    log "killing $NODENAME (pid $pid, SIGKILL)"
    kill -9 "$pid" 2>/dev/null || true
  else
    log "not running"
  fi
  rm -f "$PIDFILE"
  wait_port_closed "$PORT" 30 "AMQP listener after SIGKILL" || die "port $PORT still open"
  wait_port_closed "$DIST_PORT" 30 "Erlang distribution listener after SIGKILL" || die "port $DIST_PORT still open"
  log "killed"
}

node_status() {
  local pid out
  node_env
  if ! pid="$(node_pid)"; then
    log "$NODENAME: not running"
    return 1
  fi
  if ! out="$(CTL_TIMEOUT=20 diag -q check_running 2>&1)"; then
    log "$NODENAME (pid $pid) is not running the rabbit app: $out"
    return 1
  fi
  if ! port_open "$PORT"; then
    log "$NODENAME (pid $pid) runs but nothing listens on 127.0.0.1:$PORT"
    return 1
  fi
  log "$NODENAME: pid $pid, amqp://127.0.0.1:$PORT ready"
}

# ---------------------------------------------------------------- cluster
# each_node FN: FN on every target node (one node: the node itself), each in a subshell so the
# node globals of one do not leak into the next. Fails if any failed.
each_node() {
  local fn="$1" n rc=0
  for n in $(target_nodes); do
    (select_node "$n"; "$fn") || rc=1
  done
  return "$rc"
}

# in_parallel FN: FN on every target node at once; fails if any failed.
in_parallel() {
  local fn="$1" n p pids=() rc=0
  for n in $(target_nodes); do
    (select_node "$n"; "$fn") &
    pids+=("$!")
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return "$rc"
}

# The cluster's nodes share one Erlang cookie (each has its own HOME): made once per data dir,
# copied into every node's HOME before it starts.
share_cookie() {
  local n
  mkdir -p "$DIR"
  if [[ ! -s "$DIR/cookie" ]]; then
    (umask 077; head -c 32 /dev/urandom | sha256sum | cut -c1-32 | tr a-f A-F >"$DIR/cookie")
  fi
  for n in $(target_nodes); do
    mkdir -p "$DIR/node-$n/home"
    install -m 400 "$DIR/cookie" "$DIR/node-$n/home/.erlang.cookie"
  done
}

# join_cluster: every target node but node 1 that has not joined yet joins node 1's cluster.
# A joined node remembers its cluster in its data: a restart needs no join.
join_cluster() {
  local n first
  first="$(node_name 1)"
  for n in $(target_nodes); do
    ((n > 1)) || continue
    (
      select_node "$n"
      [[ -e "$NDIR/joined" ]] && exit 0
      node_env
      log "joining $NODENAME to $first"
      { ctl -q stop_app && ctl -q join_cluster "$first" && ctl -q start_app; } >>"$NDIR/server.out" 2>&1 ||
        { tail_log "$NDIR/server.out" 10; die "$NODENAME could not join $first"; }
      touch "$NDIR/joined"
    ) || return 1
  done
}

cmd_start() {
  if ((NODES == 1)); then
    node_start
    return
  fi
  require_installed
  local t0
  t0="$(now)"
  share_cookie
  in_parallel node_start || die "not every node started (data dir $DIR)"
  join_cluster || die "the cluster did not form (data dir $DIR)"
  log "cluster of $NODES nodes ready ($(target_nodes | tr '\n' ' ')started) in $(elapsed "$t0")s"
}

cmd_stop() {
  if ((NODES == 1)); then node_stop; else in_parallel node_stop; fi
}

cmd_pid() {
  local n pid rc=0
  if ((NODES == 1)); then
    node_pid
    return
  fi
  for n in $(target_nodes); do
    if pid="$(select_node "$n"; node_pid)"; then
      if [[ -n "$NODE" ]]; then echo "$pid"; else echo "$n $pid"; fi
    else
      rc=1
    fi
  done
  return "$rc"
}

# leader QUEUE: which node holds QUEUE's leader (quorum) or the queue itself (classic), asked of
# the first node that answers; prints "leader=N type=T".
cmd_leader() {
  require_installed
  local q="${ARGS[0]:-}" n out="" name type leader pid
  [[ -n "$q" ]] || die "usage: rabbitmq.sh leader QUEUE [--nodes 3]"
  for n in $(all_nodes); do
    if out="$(select_node "$n"; node_env; node_pid >/dev/null &&
      CTL_TIMEOUT=20 ctl -q list_queues name type leader pid --no-table-headers 2>&1)"; then
      break
    fi
    out=""
  done
  [[ -n "$out" ]] || die "no node of $DIR answered list_queues"
  # Tab-separated, and a classic queue's leader column is empty: read splits with awk, which
  # keeps empty fields (read would collapse the two tabs).
  while IFS='|' read -r name type leader pid; do
    [[ "$name" == "$q" ]] || continue
    # A classic queue has no leader column value in 3.10: its process's node is where it lives.
    [[ "$leader" == *@* ]] || leader="$(sed -n 's/^<\(.*\)\.[0-9]*\.[0-9]*\.[0-9]*>$/\1/p' <<<"$pid")"
    for n in $(all_nodes); do
      if [[ "$leader" == "$(node_name "$n")" || ($NODES == 1 && "$leader" == "$NODENAME") ]]; then
        echo "leader=$n type=$type"
        return 0
      fi
    done
    die "queue $q: leader '$leader' is none of this cluster's nodes"
  done < <(awk -F'\t' '{ print $1 "|" $2 "|" $3 "|" $4 }' <<<"$out")
  die "queue $q not found (list_queues: $(head -c 300 <<<"$out"))"
}

cmd_wipe() {
  [[ -z "$NODE" ]] || die "wipe acts on the whole data dir; drop --node"
  # The data goes anyway: SIGKILL is as good as a shutdown here, and seconds faster per node.
  # Without a pid file a node may still answer: node_stop finds it through rabbitmqctl.
  wipe_node() { node_env; if node_pid >/dev/null; then node_kill; else node_stop; fi; }
  each_node wipe_node || die "a node did not stop (data dir $DIR)"
  stop_idle_epmd
  if [[ -d "$DIR" ]]; then
    [[ -e "$DIR/rabbitmq.conf" || -d "$DIR/mnesia" || -d "$DIR/node-1" || -e "$DIR/cookie" ||
      -z "$(ls -A "$DIR")" ]] ||
      die "$DIR does not look like a rabbitmq.sh data dir; not deleting it"
    rm -rf "$DIR"
    log "wiped $DIR"
  fi
}

case "$CMD" in
  install) cmd_install ;;
  install-perftest) cmd_install_perftest ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  kill) each_node node_kill ;;
  restart)
    cmd_stop
    cmd_start
    ;;
  status) each_node node_status ;;
  wipe) cmd_wipe ;;
  pid) cmd_pid ;;
  leader) cmd_leader ;;
  ctl) require_installed; select_node "${NODE:-1}"; node_env; ctl "${ARGS[@]}" ;;
  perftest-libs)
    [[ -s "$PERFTEST_HOME/.installed" ]] || die "perf-test not installed: run $0 install-perftest"
    echo "$PERFTEST_HOME/libs"
    ;;
  *) usage; exit 2 ;;
esac
