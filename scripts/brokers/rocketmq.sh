#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Run Apache RocketMQ 5.x (a name server and one broker) from Maven Central jars, without Docker.
# See scripts/brokers/README.md for the full story.
#
# usage: rocketmq.sh COMMAND [options]
#   install     collect the jars into $MQ_BENCH_CACHE/rocketmq-<ver>/libs (idempotent)
#   start       start the name server and the broker (each unless running); returns when the
#               broker answers and the name server lists it
#   stop        graceful stop (SIGTERM) of the broker, then the name server
#   kill        SIGKILL of the broker (the name server stays); waits until its port is closed
#   restart     stop the broker if running, then start on the same store
#   status      exit 0 if ready (the same requests as start)
#   wipe        kill both + delete the data dir
#   pid         print the broker pid
#   addr        print the name server address (what clients dial)
#   libs        print the jar folder (for java -cp "$(rocketmq.sh libs)/*")
#   admin ARGS  run mqadmin (org.apache.rocketmq.tools) against the name server
# options (env in brackets):
#   --port P         [ROCKETMQ_PORT=9876]   name server port
#   --broker-port B  [ROCKETMQ_BROKER_PORT=P+10]  broker port; it also listens on B-2 (VIP
#                                           channel) and B+1 (HA)
#   --flush F        [ROCKETMQ_FLUSH=async] flushDiskType: sync (SYNC_FLUSH: the broker answers a
#                                           send once the commit log is fsynced) or async
#                                           (ASYNC_FLUSH: once it is in the page cache)
#   --dir DIR        [ROCKETMQ_DIR]         data dir; default $MQ_BENCH_CACHE/run/rocketmq
#   --timeout S      [ROCKETMQ_START_TIMEOUT=90]  bound for start/ready waits
#   other env: ROCKETMQ_VERSION (5.3.3), ROCKETMQ_HEAP_OPTS (-Xms256m -Xmx512m, each JVM),
#              ROCKETMQ_OVERRIDES ("k=v k=v" appended to broker.conf), MQ_BENCH_CACHE
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MQB_NAME=rocketmq
# shellcheck source=lib.sh
source "$HERE/lib.sh"

INSTALL_REV=1 # bump to force a re-install when the install steps change

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; }

# ---------------------------------------------------------------- options
CMD="${1:-}"
[[ -n "$CMD" ]] || { usage; exit 2; }
shift
PORT="${ROCKETMQ_PORT:-9876}"
BPORT="${ROCKETMQ_BROKER_PORT:-}"
FLUSH="${ROCKETMQ_FLUSH:-async}"
DIR="${ROCKETMQ_DIR:-$MQB_CACHE/run/rocketmq}"
TIMEOUT="${ROCKETMQ_START_TIMEOUT:-90}"
STOP_TIMEOUT="${ROCKETMQ_STOP_TIMEOUT:-60}"
parse_opts pass "--port=PORT --broker-port=BPORT --flush=FLUSH --dir=DIR --timeout=TIMEOUT" "$@"
[[ "$PORT" =~ ^[0-9]+$ && "$PORT" -ge 1 && "$PORT" -le 65525 ]] || die "bad --port $PORT (1..65525)"
[[ -n "$BPORT" ]] || BPORT=$((PORT + 10))
[[ "$BPORT" =~ ^[0-9]+$ && "$BPORT" -ge 3 && "$BPORT" -le 65534 ]] || die "bad --broker-port $BPORT (3..65534)"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "bad --timeout $TIMEOUT"
case "$FLUSH" in
  sync) FLUSH_TYPE=SYNC_FLUSH ;;
  async) FLUSH_TYPE=ASYNC_FLUSH ;;
  *) die "bad --flush $FLUSH (sync or async)" ;;
esac
if [[ "$CMD" != admin ]] && ((${#ARGS[@]})); then die "unexpected argument(s): ${ARGS[*]}"; fi

VERSION="${ROCKETMQ_VERSION:-5.3.3}"
RHOME="$MQB_CACHE/rocketmq-$VERSION"
LIBS="$RHOME/libs"
NS_ADDR="127.0.0.1:$PORT"
BROKER_ADDR="127.0.0.1:$BPORT"

# ---------------------------------------------------------------- install
install_signature() {
  { echo "rev=$INSTALL_REV version=$VERSION"; cat "$HERE/rocketmq/pom.xml"; } | sha256sum | cut -d' ' -f1
}

cmd_install() {
  local sig tmp
  mkdir -p "$MQB_CACHE"
  exec 9>"$MQB_CACHE/.rocketmq-install.lock"
  flock -w 900 9 || die "timed out after 900s waiting for another rocketmq install (lock $MQB_CACHE/.rocketmq-install.lock)"
  sig="$(install_signature)"
  if [[ -s "$RHOME/.installed" && "$(cat "$RHOME/.installed")" == "$sig" && -d "$LIBS" ]]; then
    log "rocketmq $VERSION already installed in $RHOME"
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven)"
  command -v java >/dev/null || die "java not found (apt-get install -y openjdk-17-jdk-headless)"
  command -v python3 >/dev/null || die "python3 not found (the readiness probe is scripts/brokers/rocketmq/probe.py)"
  mkdir -p "$RHOME"
  tmp="$RHOME/libs.tmp.$$"
  rm -rf "$tmp"
  log "collecting rocketmq $VERSION jars with maven into $LIBS"
  if ! timeout 900 mvn -B -q -f "$HERE/rocketmq/pom.xml" "-Drocketmq.version=$VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=$tmp" >"$RHOME/mvn.log" 2>&1; then
    tail_log "$RHOME/mvn.log" 20
    rm -rf "$tmp"
    die "rocketmq $VERSION did not resolve (see $RHOME/mvn.log)"
  fi
  local j
  for j in namesrv broker tools; do
    [[ -f "$tmp/rocketmq-$j-$VERSION.jar" ]] || { rm -rf "$tmp"; die "maven finished but rocketmq-$j-$VERSION.jar is missing"; }
  done
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  printf '%s\n' "$sig" >"$RHOME/.installed"
  log "rocketmq $VERSION installed: $(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS"
}

require_installed() {
  [[ -s "$RHOME/.installed" && -d "$LIBS" ]] ||
    die "rocketmq $VERSION is not installed in $RHOME: run $0 install"
}

# ---------------------------------------------------------------- processes
ns_pid_file() { echo "$DIR/namesrv.pid"; }
broker_pid_file() { echo "$DIR/broker.pid"; }
probe() { python3 "$HERE/rocketmq/probe.py" "$@"; }

write_confs() {
  mkdir -p "$DIR/store" "$DIR/home"
  {
    echo "# written by scripts/brokers/rocketmq.sh at every start"
    echo "listenPort=$PORT"
    echo "bindAddress=127.0.0.1"
  } >"$DIR/namesrv.conf"
  {
    echo "# written by scripts/brokers/rocketmq.sh at every start"
    echo "brokerClusterName=mqbench"
    echo "brokerName=broker-a"
    echo "brokerId=0"
    echo "brokerRole=ASYNC_MASTER"
    echo "listenPort=$BPORT"
    echo "haListenPort=$((BPORT + 1))"
    echo "bindAddress=127.0.0.1"
    echo "brokerIP1=127.0.0.1"
    echo "namesrvAddr=$NS_ADDR"
    echo "storePathRootDir=$DIR/store"
    echo "storePathCommitLog=$DIR/store/commitlog"
    echo "flushDiskType=$FLUSH_TYPE"
    # 128 MiB commit log files (1 GiB by default): small runs, small disks
    echo "mappedFileSizeCommitLog=134217728"
    echo "autoCreateTopicEnable=true"
    echo "autoCreateSubscriptionGroup=true"
    # seconds, not the default minutes, before a killed broker's route is dropped
    echo "registerBrokerTimeoutMills=6000"
    local kv
    for kv in ${ROCKETMQ_OVERRIDES:-}; do echo "$kv"; done
  } >"$DIR/broker.conf"
}

# launch NAME MAINCLASS ARGS...: a detached JVM writing $DIR/NAME.out and $DIR/NAME.pid
launch() {
  local name="$1" main="$2" jvm pid
  shift 2
  read -r -a jvm <<<"${ROCKETMQ_HEAP_OPTS:--Xms256m -Xmx512m}"
  jvm+=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    -XX:ErrorFile="$DIR/home/hs_err_pid%p.log" -Duser.home="$DIR/home" -Drocketmq.home.dir="$DIR/home"
    # the broker's netty writes a self-signed TLS key pair (keyutil_*) to java.io.tmpdir: keep
    # them in the data dir that wipe removes, not in /tmp
    -Djava.io.tmpdir="$DIR/home")
  printf '===== %s rocketmq.sh start %s (rocketmq %s) =====\n' "$(date -Is)" "$name" "$VERSION" >>"$DIR/$name.out"
  # setsid: own session, so that signals aimed at the caller's process group miss the broker
  ROCKETMQ_HOME="$DIR/home" setsid nohup java "${jvm[@]}" -cp "$LIBS/*" "$main" "$@" \
    >>"$DIR/$name.out" 2>&1 </dev/null &
  pid=$!
  printf '%s\n' "$pid" >"$DIR/$name.pid"
  log "$name launched: pid $pid, log $DIR/$name.out"
}

# wait_up NAME PORT: until PORT listens (or NAME's process died)
wait_up() {
  local name="$1" port="$2" deadline=$((SECONDS + TIMEOUT))
  while ! port_open "$port"; do
    if ! read_pid "$DIR/$name.pid" >/dev/null; then
      log "$name exited during startup"
      tail_log "$DIR/$name.out"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "timed out after ${TIMEOUT}s waiting for $name to listen on 127.0.0.1:$port"
      tail_log "$DIR/$name.out"
      return 1
    fi
    sleep 0.25
  done
}

# ready [TIMEOUT_S]: the broker answers and the name server lists it
ready() {
  local deadline=$((SECONDS + ${1:-$TIMEOUT})) out
  until out="$(probe broker "$BROKER_ADDR" 2>&1)" && out="$(probe cluster "$NS_ADDR" "$BROKER_ADDR" 2>&1)"; do
    if ((SECONDS >= deadline)); then
      log "timed out waiting for the broker to be ready: $out"
      return 1
    fi
    sleep 0.5
  done
  log "ready: $out"
}

cmd_start() {
  require_installed
  local t0
  t0="$(now)"
  mkdir -p "$DIR"
  write_confs
  if ! read_pid "$(ns_pid_file)" >/dev/null; then
    port_open "$PORT" && die "port $PORT is already in use ($(port_owner "$PORT")); stop that process or use --port"
    launch namesrv org.apache.rocketmq.namesrv.NamesrvStartup -c "$DIR/namesrv.conf"
    wait_up namesrv "$PORT" || die "name server start failed (data dir $DIR)"
  fi
  if ! read_pid "$(broker_pid_file)" >/dev/null; then
    local p
    for p in "$BPORT" $((BPORT - 2)) $((BPORT + 1)); do
      port_open "$p" && die "port $p is already in use ($(port_owner "$p")); stop that process or use --broker-port"
    done
    launch broker org.apache.rocketmq.broker.BrokerStartup -c "$DIR/broker.conf"
    if ! wait_up broker "$BPORT" || ! ready; then
      local pid
      if pid="$(read_pid "$(broker_pid_file)")"; then kill -9 "$pid" 2>/dev/null || true; fi
      rm -f "$(broker_pid_file)"
      die "broker start failed (data dir $DIR)"
    fi
  else
    ready || die "the running broker is not ready"
  fi
  printf 'flush=%s\nport=%s\nbroker_port=%s\n' "$FLUSH" "$PORT" "$BPORT" >"$DIR/cluster.env"
  log "started in $(elapsed "$t0")s (flushDiskType=$FLUSH_TYPE, name server $NS_ADDR, broker $BROKER_ADDR, data dir $DIR)"
}

# stop_one NAME PORT: SIGTERM, wait, SIGKILL past the timeout
stop_one() {
  local name="$1" port="$2" pid
  if pid="$(read_pid "$DIR/$name.pid")"; then
    log "stopping $name (pid $pid, SIGTERM)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_pid_gone "$pid" "$STOP_TIMEOUT" "$name graceful shutdown"; then
      log "$name did not stop within ${STOP_TIMEOUT}s: sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$DIR/$name.pid"
  wait_port_closed "$port" 30 "$name"
}

kill_one() {
  local name="$1" port="$2" pid
  if pid="$(read_pid "$DIR/$name.pid")"; then
    log "killing $name (pid $pid, SIGKILL)"
    kill -9 "$pid" 2>/dev/null || true
  else
    log "$name not running"
  fi
  rm -f "$DIR/$name.pid"
  wait_port_closed "$port" 30 "$name after SIGKILL" || die "port $port still open"
}

cmd_stop() {
  stop_one broker "$BPORT" || die "the broker did not stop cleanly"
  stop_one namesrv "$PORT" || die "the name server did not stop cleanly"
  log "stopped"
}

cmd_status() {
  require_installed
  local pid
  pid="$(read_pid "$(broker_pid_file)")" || { log "broker: not running"; return 1; }
  log "broker: pid $pid, $BROKER_ADDR; name server: pid $(read_pid "$(ns_pid_file)" || echo none), $NS_ADDR"
  ready "${ROCKETMQ_STATUS_TIMEOUT:-5}"
}

cmd_wipe() {
  kill_one broker "$BPORT"
  kill_one namesrv "$PORT"
  if [[ -d "$DIR" ]]; then
    # refuse to delete something that does not look like our data dir
    [[ -e "$DIR/broker.conf" || -e "$DIR/namesrv.conf" || -z "$(ls -A "$DIR")" ]] ||
      die "$DIR does not look like a rocketmq.sh data dir; not deleting it"
    rm -rf "$DIR"
    log "wiped $DIR"
  fi
}

cmd_admin() {
  require_installed
  ROCKETMQ_HOME="$DIR/home" java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Duser.home="$DIR/home" -Djava.io.tmpdir="$DIR/home" \
    -cp "$LIBS/*" org.apache.rocketmq.tools.command.MQAdminStartup "${ARGS[@]}" -n "$NS_ADDR"
}

case "$CMD" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  kill) kill_one broker "$BPORT"; log "killed" ;;
  restart)
    stop_one broker "$BPORT" || die "the broker did not stop cleanly"
    cmd_start
    ;;
  status) cmd_status ;;
  wipe) cmd_wipe ;;
  pid) read_pid "$(broker_pid_file)" ;;
  addr) echo "$NS_ADDR" ;;
  libs) require_installed; echo "$LIBS" ;;
  admin) cmd_admin ;;
  *) usage; exit 2 ;;
esac
