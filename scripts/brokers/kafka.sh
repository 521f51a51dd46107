#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Run Apache Kafka (KRaft, combined broker+controller) from Maven Central jars, without Docker.
# See scripts/brokers/README.md for the full story.
#
# usage: kafka.sh COMMAND [options]
#   install                       collect the jars into $MQ_BENCH_CACHE/kafka-<ver>/libs (idempotent)
#   start    [--node N]           start (formats storage on first start only); returns when ready
#   stop     [--node N]           graceful stop (SIGTERM), waits until the ports are closed
#   kill     [--node N]           SIGKILL, removes the pid file, waits until the ports are closed
#   restart  [--node N]           stop if running, then start on the same data dir (no reformat)
#   status   [--node N]           exit 0 if ready (a real metadata request succeeds)
#   wipe                          kill + delete the data dir (the data is discarded, so no
#                                 graceful shutdown: a 3-node KRaft cluster stopped as a whole
#                                 can wait minutes for a controller quorum it no longer has)
#   pid      [--node N]           print the broker pid(s) ("N PID" per node in a cluster)
#   bootstrap                     print the bootstrap servers string
#   create-topic NAME [PARTITIONS] [RF]   create a topic (RF default: broker default)
#   delete-topic NAME             delete a topic (its files go at once); a missing one is fine
#   topics                        list topics
#   libs                          print the jar folder (for java -cp "$(kafka.sh libs)/*")
# options (env in brackets):
#   --port P      [KAFKA_PORT=9092]   single node broker port; controller = KAFKA_CONTROLLER_PORT (P+1)
#   --dir DIR     [KAFKA_DIR]         data dir; default $MQ_BENCH_CACHE/run/kafka (or run/kafka-cluster)
#   --nodes 1|3   [KAFKA_NODES=1]     3 = three-node cluster on ports 19092/29092/39092 (+1 controller)
#   --node N                          act on one node of the cluster (implies --nodes 3)
#   --timeout S   [KAFKA_START_TIMEOUT=90]  bound for start/ready waits
#   KAFKA_HOSTS="A1 A2 A3"            cluster: node N listens on address AN instead of 127.0.0.1
#   KAFKA_NETNS="NS1 NS2 NS3"         cluster: node N runs inside network namespace NSN (the
#                                     harness makes them, with AN inside NSN; see harness/netns)
#   other env: KAFKA_VERSION (4.1.1), KAFKA_HEAP_OPTS (-Xms512m -Xmx512m),
#              KAFKA_OVERRIDES ("k=v k=v" appended to server.properties), MQ_BENCH_CACHE
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MQB_NAME=kafka
# shellcheck source=lib.sh
source "$HERE/lib.sh"

DEFAULT_VERSION=4.1.1
FALLBACK_VERSION=3.9.1
INSTALL_REV=1 # bump to force a re-install when the install steps change

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; }

# ---------------------------------------------------------------- options
CMD="${1:-}"
[[ -n "$CMD" ]] || { usage; exit 2; }
shift
PORT="${KAFKA_PORT:-9092}"
DIR="${KAFKA_DIR:-}"
NODES="${KAFKA_NODES:-}"
NODE=""
TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-60}"
parse_opts strict "--port=PORT --dir=DIR --nodes=NODES --node=NODE --timeout=TIMEOUT" "$@"
if [[ -z "$NODES" ]]; then
  if [[ -n "$NODE" ]]; then NODES=3; else NODES=1; fi
fi
[[ "$NODES" == 1 || "$NODES" == 3 ]] || die "--nodes must be 1 or 3 (got $NODES)"
[[ -z "$NODE" ]] || [[ "$NODE" =~ ^[1-9]$ && "$NODE" -le "$NODES" ]] || die "--node must be 1..$NODES (got $NODE)"
[[ "$PORT" =~ ^[0-9]+$ ]] || die "bad port $PORT"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "bad timeout $TIMEOUT"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
if [[ -z "$DIR" ]]; then
  if ((NODES == 1)); then DIR="$MQB_CACHE/run/kafka"; else DIR="$MQB_CACHE/run/kafka-cluster"; fi
fi

# Version: explicit env, else what install recorded, else the default.
VERSION_EXPLICIT=0
if [[ -n "${KAFKA_VERSION:-}" ]]; then
  VERSION="$KAFKA_VERSION"; VERSION_EXPLICIT=1
elif [[ -s "$MQB_CACHE/kafka-current" ]]; then
  VERSION="$(cat "$MQB_CACHE/kafka-current")"
else
  VERSION="$DEFAULT_VERSION"
fi

set_paths() {
  KHOME="$MQB_CACHE/kafka-$VERSION"
  LIBS="$KHOME/libs"
  HELPER="$KHOME/helper"
  CONF="$KHOME/config"
  if [[ "${VERSION%%.*}" -ge 4 ]]; then
    BROKER_LOG_OPTS=(-Dlog4j2.configurationFile="$CONF/log4j2-broker.properties")
    TOOL_LOG_OPTS=(-Dlog4j2.configurationFile="$CONF/log4j2-tools.properties")
  else
    BROKER_LOG_OPTS=(-Dlog4j.configuration="file:$CONF/log4j-broker.properties")
    TOOL_LOG_OPTS=(-Dlog4j.configuration="file:$CONF/log4j-tools.properties")
  fi
}
set_paths

# ---------------------------------------------------------------- install
install_signature() {
  {
    echo "rev=$INSTALL_REV version=$VERSION"
    cat "$HERE/kafka/pom.xml" "$HERE/kafka/MqBenchKafkaAdmin.java"
  } | sha256sum | cut -d' ' -f1
}

write_log_configs() {
  mkdir -p "$CONF"
  cat >"$CONF/log4j2-broker.properties" <<'EOF'
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
EOF
  cat >"$CONF/log4j2-tools.properties" <<'EOF'
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = ERR
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
EOF
  cat >"$CONF/log4j-broker.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
EOF
  cat >"$CONF/log4j-tools.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

install_version() {
  local sig tmp major
  set_paths
  sig="$(install_signature)"
  if [[ -s "$KHOME/.installed" && "$(cat "$KHOME/.installed")" == "$sig" && -d "$LIBS" ]]; then
    log "kafka $VERSION already installed in $KHOME"
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven)"
  command -v javac >/dev/null || die "javac not found (apt-get install -y openjdk-17-jdk-headless)"
  mkdir -p "$KHOME"
  major="${VERSION%%.*}"
  tmp="$KHOME/libs.tmp.$$"
  rm -rf "$tmp"
  log "collecting kafka $VERSION jars with maven into $LIBS"
  local mvn_args=(-B -q -f "$HERE/kafka/pom.xml" "-Dkafka.version=$VERSION"
    dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=$tmp")
  ((major >= 4)) || mvn_args+=(-Dkafka3)
  if ! timeout 900 mvn "${mvn_args[@]}" >"$KHOME/mvn.log" 2>&1; then
    tail_log "$KHOME/mvn.log" 20
    rm -rf "$tmp"
    return 1
  fi
  if [[ ! -f "$tmp/kafka_2.13-$VERSION.jar" || ! -f "$tmp/kafka-tools-$VERSION.jar" ]]; then
    log "maven finished but kafka_2.13-$VERSION.jar / kafka-tools-$VERSION.jar are missing in $tmp"
    rm -rf "$tmp"
    return 1
  fi
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  log "compiling the admin helper"
  rm -rf "$HELPER.tmp"
  mkdir -p "$HELPER.tmp"
  javac -nowarn --release 17 -cp "$LIBS/*" -d "$HELPER.tmp" "$HERE/kafka/MqBenchKafkaAdmin.java"
  rm -rf "$HELPER"
  mv "$HELPER.tmp" "$HELPER"
  write_log_configs
  printf '%s\n' "$sig" >"$KHOME/.installed"
  log "kafka $VERSION installed: $(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS"
}

cmd_install() {
  mkdir -p "$MQB_CACHE"
  exec 9>"$MQB_CACHE/.kafka-install.lock"
  flock -w 900 9 || die "timed out after 900s waiting for another kafka install (lock $MQB_CACHE/.kafka-install.lock)"
  if ! install_version; then
    if ((VERSION_EXPLICIT == 0)) && [[ "$VERSION" != "$FALLBACK_VERSION" ]]; then
      log "kafka $VERSION did not resolve; falling back to $FALLBACK_VERSION"
      VERSION="$FALLBACK_VERSION"
      install_version || die "kafka $FALLBACK_VERSION did not resolve either (see $KHOME/mvn.log)"
    else
      die "kafka $VERSION did not resolve (see $KHOME/mvn.log)"
    fi
  fi
  printf '%s\n' "$VERSION" >"$MQB_CACHE/kafka-current"
}

require_installed() {
  [[ -s "$KHOME/.installed" && -d "$LIBS" && -d "$HELPER" ]] ||
    die "kafka $VERSION is not installed in $KHOME: run $0 install"
}

# ---------------------------------------------------------------- topology
broker_port() { if ((NODES == 1)); then echo "$PORT"; else echo $(($1 * 10000 + 9092)); fi; }
ctrl_port() { if ((NODES == 1)); then echo "$CONTROLLER_PORT"; else echo $(($1 * 10000 + 9093)); fi; }
node_dir() { echo "$DIR/node-$1"; }
# the Nth word of a space-separated list, or the default
nth_word() { local a; read -r -a a <<<"$2"; echo "${a[$(($1 - 1))]:-$3}"; }
node_host() { nth_word "$1" "${KAFKA_HOSTS:-}" 127.0.0.1; }
node_netns() { nth_word "$1" "${KAFKA_NETNS:-}" ""; }
# node_port_open N PORT: 0 if node N's address accepts TCP connections on PORT
node_port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$(node_host "$1")/$2" 2>/dev/null; }
pid_file() { echo "$DIR/node-$1/kafka.pid"; }
out_file() { echo "$DIR/node-$1/kafka.out"; }

all_nodes() { seq 1 "$NODES"; }
target_nodes() { if [[ -n "$NODE" ]]; then echo "$NODE"; else all_nodes; fi; }

bootstrap() {
  local n list=()
  for n in $(all_nodes); do list+=("$(node_host "$n"):$(broker_port "$n")"); done
  (IFS=,; echo "${list[*]}")
}

voters() {
  local n list=()
  for n in $(all_nodes); do list+=("$n@$(node_host "$n"):$(ctrl_port "$n")"); done
  (IFS=,; echo "${list[*]}")
}

write_server_properties() {
  local n="$1" d bp cp h
  d="$(node_dir "$n")"; bp="$(broker_port "$n")"; cp="$(ctrl_port "$n")"; h="$(node_host "$n")"
  mkdir -p "$d/data" "$d/logs"
  {
    echo "# written by scripts/brokers/kafka.sh at every start"
    echo "process.roles=broker,controller"
    echo "node.id=$n"
    echo "controller.quorum.voters=$(voters)"
    echo "listeners=PLAINTEXT://$h:$bp,CONTROLLER://$h:$cp"
    echo "advertised.listeners=PLAINTEXT://$h:$bp"
    echo "inter.broker.listener.name=PLAINTEXT"
    echo "controller.listener.names=CONTROLLER"
    echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    echo "log.dirs=$d/data"
    echo "num.partitions=1"
    echo "auto.create.topics.enable=true"
    echo "group.initial.rebalance.delay.ms=0"
    echo "offsets.topic.num.partitions=4"
    echo "transaction.state.log.num.partitions=4"
    if [[ "${VERSION%%.*}" -ge 4 ]]; then
      echo "share.coordinator.state.topic.num.partitions=4"
    fi
    if ((NODES == 1)); then
      echo "default.replication.factor=1"
      echo "min.insync.replicas=1"
      echo "offsets.topic.replication.factor=1"
      echo "transaction.state.log.replication.factor=1"
      echo "transaction.state.log.min.isr=1"
      if [[ "${VERSION%%.*}" -ge 4 ]]; then
        echo "share.coordinator.state.topic.replication.factor=1"
        echo "share.coordinator.state.topic.min.isr=1"
      fi
    else
      echo "default.replication.factor=3"
      echo "min.insync.replicas=2"
      echo "offsets.topic.replication.factor=3"
      echo "transaction.state.log.replication.factor=3"
      echo "transaction.state.log.min.isr=2"
    fi
    # Fast failure detection for crash tests (defaults 9000 / 2000). Also shortens a restart
    # after kill -9: the controller refuses the new registration (DUPLICATE_BROKER_REGISTRATION)
    # until the dead incarnation's session has expired.
    echo "broker.session.timeout.ms=3000"
    echo "broker.heartbeat.interval.ms=500"
    # A deleted topic's files go at once (default 60 s later): a benchmark deletes each round's
    # topic, and its gigabytes would otherwise be written back to disk under the next round.
    echo "log.segment.delete.delay.ms=0"
    local kv
    for kv in ${KAFKA_OVERRIDES:-}; do echo "$kv"; done
  } >"$d/server.properties"
}

new_cluster_id() {
  if command -v python3 >/dev/null; then
    python3 -c 'import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break'
  else
    java -Xmx256m "${TOOL_LOG_OPTS[@]}" -cp "$LIBS/*" kafka.tools.StorageTool random-uuid
  fi
}

TOOL_JVM=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)

helper() {
  java "${TOOL_JVM[@]}" "${TOOL_LOG_OPTS[@]}" -cp "$HELPER:$LIBS/*" MqBenchKafkaAdmin "$@"
}

node_pid() { read_pid "$(pid_file "$1")"; }

# wait_node_port_closed N PORT TIMEOUT_S WHAT: wait until nothing listens on node N's PORT
wait_node_port_closed() { wait_while "$3" "port $2 of $(node_host "$1") ($4) to close" node_port_open "$1" "$2"; }

# format the nodes given as arguments (in parallel) when not yet formatted
format_nodes() {
  local n cid pids=() fmt=() i rc=0
  mkdir -p "$DIR"
  if [[ ! -s "$DIR/cluster.id" ]]; then
    new_cluster_id >"$DIR/cluster.id"
  fi
  cid="$(cat "$DIR/cluster.id")"
  for n in "$@"; do
    [[ -s "$(node_dir "$n")/data/meta.properties" ]] && continue
    log "formatting node $n storage (cluster id $cid)"
    timeout 120 java "${TOOL_JVM[@]}" "${TOOL_LOG_OPTS[@]}" -cp "$LIBS/*" kafka.tools.StorageTool \
      format -t "$cid" -c "$(node_dir "$n")/server.properties" -g >"$(node_dir "$n")/format.out" 2>&1 &
    pids+=("$!"); fmt+=("$n")
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      tail_log "$(node_dir "${fmt[$i]}")/format.out" 20
      rc=1
    fi
  done
  ((rc == 0)) || die "formatting storage failed"
}

launch_node() {
  local n="$1" bp cp out pid ns in_ns=()
  bp="$(broker_port "$n")"; cp="$(ctrl_port "$n")"; out="$(out_file "$n")"; ns="$(node_netns "$n")"
  [[ -z "$ns" ]] || in_ns=(ip netns exec "$ns")
  local jvm
  read -r -a jvm <<<"${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m}"
  jvm+=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    -XX:ErrorFile="$(node_dir "$n")/logs/hs_err_pid%p.log"
    -Dkafka.logs.dir="$(node_dir "$n")/logs")
  printf '===== %s kafka.sh start node %s (kafka %s) =====\n' "$(date -Is)" "$n" "$VERSION" >>"$out"
  # setsid: own session, so that signals aimed at the caller's process group miss the broker.
  # In a namespace, `ip netns exec` execs java: the pid stays the broker's.
  setsid nohup "${in_ns[@]}" java "${jvm[@]}" "${BROKER_LOG_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka \
    "$(node_dir "$n")/server.properties" >>"$out" 2>&1 </dev/null &
  pid=$!
  printf '%s\n' "$pid" >"$(pid_file "$n")"
  log "node $n launched: pid $pid, broker $(node_host "$n"):$bp, controller $(node_host "$n"):$cp${ns:+, namespace $ns}, log $out"
}

# wait until every node in "$@" listens (or died); then a real metadata request
wait_ready() {
  local deadline=$((SECONDS + TIMEOUT)) n pid left min nid bs
  for n in "$@"; do
    while ! node_port_open "$n" "$(broker_port "$n")"; do
      if ! pid="$(node_pid "$n")"; then
        log "node $n exited during startup"
        tail_log "$(out_file "$n")"
        return 1
      fi
      if ((SECONDS >= deadline)); then
        log "timed out after ${TIMEOUT}s waiting for node $n (pid $pid) to listen on $(node_host "$n"):$(broker_port "$n")"
        tail_log "$(out_file "$n")"
        return 1
      fi
      sleep 0.25
    done
  done
  left=$((deadline - SECONDS)); ((left > 5)) || left=5
  if [[ -n "$NODE" ]]; then
    min=1; nid="$NODE"; bs="$(node_host "$NODE"):$(broker_port "$NODE")"
  else
    min="$NODES"; nid=-1; bs="$(bootstrap)"
  fi
  if ! helper ready "$bs" "$min" "$nid" "$((left * 1000))" >"$DIR/ready.out" 2>&1; then
    log "timed out waiting for a metadata request to $bs to list >= $min broker(s): $(tail -n1 "$DIR/ready.out")"
    for n in "$@"; do tail_log "$(out_file "$n")" 25; done
    return 1
  fi
  log "ready: $(tail -n1 "$DIR/ready.out") (bootstrap $bs)"
}

cmd_start() {
  require_installed
  local t0 n launched=() bp cp pid
  t0="$(now)"
  mkdir -p "$DIR"
  printf 'nodes=%s\nversion=%s\n' "$NODES" "$VERSION" >"$DIR/cluster.env"
  for n in $(target_nodes); do
    if node_pid "$n" >/dev/null; then
      log "node $n already running (pid $(node_pid "$n"))"
      continue
    fi
    rm -f "$(pid_file "$n")"
    bp="$(broker_port "$n")"; cp="$(ctrl_port "$n")"
    if node_port_open "$n" "$bp" || node_port_open "$n" "$cp"; then
      die "port $bp or $cp is already in use ($(port_owner "$bp")$(port_owner "$cp")); stop that process or use --port"
    fi
    write_server_properties "$n"
    launched+=("$n")
  done
  if ((${#launched[@]})); then
    format_nodes "${launched[@]}"
    for n in "${launched[@]}"; do launch_node "$n"; done
  fi
  local targets
  mapfile -t targets < <(target_nodes)
  if ! wait_ready "${targets[@]}"; then
    for n in "${launched[@]}"; do
      if pid="$(node_pid "$n")"; then
        log "killing node $n (pid $pid) that did not become ready"
        kill -9 "$pid" 2>/dev/null || true
      fi
      rm -f "$(pid_file "$n")"
    done
    die "start failed (data dir $DIR)"
  fi
  log "started in $(elapsed "$t0")s (data dir $DIR)"
}

cmd_stop() {
  local n pid pids=() nodes=() i ok=0
  for n in $(target_nodes); do
    if pid="$(node_pid "$n")"; then
      log "stopping node $n (pid $pid, SIGTERM)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); nodes+=("$n")
    else
      rm -f "$(pid_file "$n")"
    fi
  done
  for i in "${!pids[@]}"; do
    n="${nodes[$i]}"
    if ! wait_pid_gone "${pids[$i]}" "$STOP_TIMEOUT" "node $n graceful shutdown"; then
      log "node $n did not stop within ${STOP_TIMEOUT}s: sending SIGKILL"
      kill -9 "${pids[$i]}" 2>/dev/null || true
      ok=1
    fi
  done
  for n in $(target_nodes); do
    wait_node_port_closed "$n" "$(broker_port "$n")" 30 "node $n broker" || ok=1
    wait_node_port_closed "$n" "$(ctrl_port "$n")" 30 "node $n controller" || ok=1
    rm -f "$(pid_file "$n")"
  done
  ((ok == 0)) || die "stop did not finish cleanly"
  log "stopped"
}

cmd_kill() {
  local n pid
  for n in $(target_nodes); do
    if pid="$(node_pid "$n")"; then
      log "killing node $n (pid $pid, SIGKILL)"
      kill -9 "$pid" 2>/dev/null || true
    else
      log "node $n not running"
    fi
    rm -f "$(pid_file "$n")"
  done
  for n in $(target_nodes); do
    wait_node_port_closed "$n" "$(broker_port "$n")" 30 "node $n broker after SIGKILL" || die "port still open"
    wait_node_port_closed "$n" "$(ctrl_port "$n")" 30 "node $n controller after SIGKILL" || die "port still open"
  done
  log "killed"
}

cmd_status() {
  require_installed
  local n pid down=0 bs min nid
  for n in $(target_nodes); do
    if pid="$(node_pid "$n")"; then
      log "node $n: pid $pid, broker $(node_host "$n"):$(broker_port "$n") $(node_port_open "$n" "$(broker_port "$n")" && echo open || echo closed)"
    else
      log "node $n: not running"
      down=1
    fi
  done
  ((down == 0)) || return 1
  if [[ -n "$NODE" ]]; then
    min=1; nid="$NODE"; bs="$(node_host "$NODE"):$(broker_port "$NODE")"
  else
    min="$NODES"; nid=-1; bs="$(bootstrap)"
  fi
  local out
  if out="$(helper ready "$bs" "$min" "$nid" "${KAFKA_STATUS_TIMEOUT:-10}000" 2>&1)"; then
    log "$out"
  else
    log "not ready: $out"
    return 1
  fi
}

cmd_pid() {
  local n pid rc=0
  for n in $(target_nodes); do
    if pid="$(node_pid "$n")"; then
      if ((NODES == 1)) || [[ -n "$NODE" ]]; then echo "$pid"; else echo "$n $pid"; fi
    else
      rc=1
    fi
  done
  return "$rc"
}

cmd_wipe() {
  [[ -z "$NODE" ]] || die "wipe acts on the whole data dir; drop --node"
  NODE=""
  cmd_kill
  if [[ -d "$DIR" ]]; then
    # refuse to delete something that does not look like our data dir
    [[ -e "$DIR/cluster.id" || -e "$DIR/cluster.env" || -d "$DIR/node-1" || -z "$(ls -A "$DIR")" ]] ||
      die "$DIR does not look like a kafka.sh data dir; not deleting it"
    rm -rf "$DIR"
    log "wiped $DIR"
  fi
}

cmd_create_topic() {
  require_installed
  local name="${ARGS[0]:-}" parts="${ARGS[1]:-1}" rf="${ARGS[2]:--1}"
  [[ -n "$name" ]] || die "usage: kafka.sh create-topic NAME [PARTITIONS] [RF]"
  helper create-topic "$(bootstrap)" "$name" "$parts" "$rf" 60000
}

cmd_delete_topic() {
  require_installed
  local name="${ARGS[0]:-}"
  [[ -n "$name" ]] || die "usage: kafka.sh delete-topic NAME"
  helper delete-topic "$(bootstrap)" "$name" 60000
}

case "$CMD" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  kill) cmd_kill ;;
  restart)
    cmd_stop
    cmd_start
    ;;
  status) cmd_status ;;
  wipe) cmd_wipe ;;
  pid) cmd_pid ;;
  bootstrap) bootstrap ;;
  create-topic) cmd_create_topic ;;
  delete-topic) cmd_delete_topic ;;
  topics) require_installed; helper topics "$(bootstrap)" 30000 ;;
  libs) require_installed; echo "$LIBS" ;;
  *) usage; exit 2 ;;
esac
