#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Run a private NATS server with JetStream (file store in its own data dir), or a 3-node
# JetStream cluster, without Docker. See scripts/brokers/README.md.
#
# usage: nats.sh COMMAND [options]
#   install           go install nats-server v2.15.2 and natscli (`nats`) v0.5.0 into
#                     $MQ_BENCH_CACHE/nats-bin (idempotent; needs Go and the Go module proxy)
#   start   [--node N]  start with JetStream on its data dir (kept across restarts); returns
#                     when /healthz says JetStream is ready
#   stop    [--node N]  graceful stop (SIGTERM), waits until the port is closed
#   kill    [--node N]  SIGKILL (a crash: the store stays), waits until the port is closed
#   restart [--node N]  stop if running, then start on the same data dir
#   status  [--node N]  exit 0 if /healthz answers ok
#   wipe              kill + delete the data dir
#   pid     [--node N]  print the server pid ("N PID" per node in a cluster)
#   url               print nats://127.0.0.1:PORT (cluster: every node, comma-separated)
#   bin               print the folder holding nats-server and nats
# options (env in brackets):
#   --port P      [NATS_PORT=4222]   client port; monitoring (http) port = P + 4000 [NATS_HTTP_PORT]
#   --nodes 1|3   [NATS_NODES=1]     3: a cluster; node N listens on P+N-1 (routes P+2000+N-1,
#                                    monitoring P+4000+N-1), its data in DIR/node-N
#   --node N                         act on one node of the cluster (implies --nodes 3)
#   --dir DIR     [NATS_DIR]         data dir; default $MQ_BENCH_CACHE/run/nats
#   --sync S      [NATS_SYNC]        JetStream sync_interval: "always" (fsync every write) or a
#                                    duration such as 2m (the server's default) or 100ms
#   --timeout S   [NATS_START_TIMEOUT=30]  bound for start/ready waits
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MQB_NAME=nats
# shellcheck source=lib.sh
source "$HERE/lib.sh"

SERVER_VERSION=v2.15.2
CLI_VERSION=v0.5.0 # v0.5.1 does not resolve on the module proxy

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; }

CMD="${1:-}"
[[ -n "$CMD" ]] || { usage; exit 2; }
shift
PORT="${NATS_PORT:-4222}"
DIR="${NATS_DIR:-}"
NODES="${NATS_NODES:-}"
NODE=""
SYNC="${NATS_SYNC:-}"
TIMEOUT="${NATS_START_TIMEOUT:-30}"
STOP_TIMEOUT="${NATS_STOP_TIMEOUT:-30}"
parse_opts strict "--port=PORT --dir=DIR --nodes=NODES --node=NODE --sync=SYNC --timeout=TIMEOUT" "$@"
if [[ -z "$NODES" ]]; then
  if [[ -n "$NODE" ]]; then NODES=3; else NODES=1; fi
fi
[[ "$NODES" == 1 || "$NODES" == 3 ]] || die "--nodes must be 1 or 3 (got $NODES)"
[[ -z "$NODE" ]] || [[ "$NODE" =~ ^[1-3]$ && "$NODE" -le "$NODES" ]] || die "--node must be 1..$NODES (got $NODE)"
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || ((PORT < 1 || PORT > 61533)); then
  die "bad port $PORT (1..61533: the cluster's monitoring ports go up to P+4002)"
fi
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "bad timeout $TIMEOUT"
[[ -z "$SYNC" || "$SYNC" == always || "$SYNC" =~ ^[0-9]+(ms|s|m|h)$ ]] ||
  die "bad --sync $SYNC: valid are always or a duration like 100ms, 1s, 2m"
DIR="${DIR:-$MQB_CACHE/run/nats}"
BIN="$MQB_CACHE/nats-bin"
SERVER="$BIN/nats-server"

# Node N's ports and files; a single server (N = 1 of 1) keeps everything in DIR itself.
client_port() { echo $((PORT + $1 - 1)); }
route_port() { echo $((PORT + 2000 + $1 - 1)); }
http_port() {
  if ((NODES == 1)) && [[ -n "${NATS_HTTP_PORT:-}" ]]; then echo "$NATS_HTTP_PORT"; else echo $((PORT + 4000 + $1 - 1)); fi
}
node_dir() { if ((NODES == 1)); then echo "$DIR"; else echo "$DIR/node-$1"; fi; }
pid_file() { echo "$(node_dir "$1")/nats.pid"; }
out_file() { echo "$(node_dir "$1")/nats.out"; }
conf_file() { echo "$(node_dir "$1")/nats.conf"; }
all_nodes() { seq 1 "$NODES"; }
target_nodes() { if [[ -n "$NODE" ]]; then echo "$NODE"; else all_nodes; fi; }

require_installed() {
  [[ -x "$SERVER" ]] || die "nats-server not installed ($SERVER missing): run $0 install"
}

cmd_install() {
  local go
  # Go's own tarball puts it in /usr/local/go/bin, which a non-login shell may not have in PATH.
  go="$(command -v go || echo /usr/local/go/bin/go)"
  [[ -x "$go" ]] || die "Go is needed to build nats-server (go install); not found in PATH or /usr/local/go/bin"
  mkdir -p "$BIN"
  local want="server=$SERVER_VERSION cli=$CLI_VERSION"
  if [[ -x "$SERVER" && -x "$BIN/nats" && "$(cat "$BIN/versions" 2>/dev/null)" == "$want" ]]; then
    log "already installed in $BIN ($want)"
    return
  fi
  local t0
  t0="$(now)"
  log "go install nats-server $SERVER_VERSION and natscli $CLI_VERSION into $BIN (a few minutes)"
  GOBIN="$BIN" timeout 1800 "$go" install "github.com/nats-io/nats-server/v2@$SERVER_VERSION"
  GOBIN="$BIN" timeout 1800 "$go" install "github.com/nats-io/natscli/nats@$CLI_VERSION"
  echo "$want" >"$BIN/versions"
  log "installed in $(elapsed "$t0")s: $("$SERVER" --version)"
}

node_pid() { read_pid "$(pid_file "$1")"; }

# healthy N: 0 if node N's monitoring endpoint says the server and JetStream are ready.
healthy() {
  curl -sf --max-time 2 "http://127.0.0.1:$(http_port "$1")/healthz" 2>/dev/null | grep -q '"ok"'
}

write_conf() {
  local n="$1" d i routes=()
  d="$(node_dir "$n")"
  mkdir -p "$d"
  {
    echo "# written by scripts/brokers/nats.sh at every start"
    echo "server_name: mqb-$(client_port "$n")"
    echo "listen: 127.0.0.1:$(client_port "$n")"
    echo "http: 127.0.0.1:$(http_port "$n")"
    echo "max_payload: 8MB"
    echo "jetstream {"
    echo "  store_dir: \"$d/store\""
    [[ -z "$SYNC" ]] || echo "  sync_interval: $SYNC"
    echo "}"
    if ((NODES > 1)); then
      for i in $(all_nodes); do routes+=("nats-route://127.0.0.1:$(route_port "$i")"); done
      echo "cluster {"
      echo "  name: mqb-$PORT"
      echo "  listen: 127.0.0.1:$(route_port "$n")"
      echo "  routes: [$(IFS=,; echo "${routes[*]}")]"
      echo "}"
    fi
  } >"$(conf_file "$n")"
}

launch_node() {
  local n="$1" pid p h
  p="$(client_port "$n")"; h="$(http_port "$n")"
  if port_open "$p" || port_open "$h"; then
    die "port $p or $h is already in use ($(port_owner "$p")$(port_owner "$h")); stop that process or use --port"
  fi
  write_conf "$n"
  printf '===== %s nats.sh start node %s (%s, sync_interval %s) =====\n' "$(date -Is)" "$n" "$SERVER_VERSION" "${SYNC:-default}" >>"$(out_file "$n")"
  # setsid: own session, so signals aimed at the caller's process group miss the server.
  setsid nohup "$SERVER" -c "$(conf_file "$n")" -js >>"$(out_file "$n")" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$(pid_file "$n")"
  log "node $n launched: pid $pid, 127.0.0.1:$p (monitoring $h), store $(node_dir "$n")/store, log $(out_file "$n")"
}

cmd_start() {
  require_installed
  local t0 n pid deadline launched=()
  t0="$(now)"
  mkdir -p "$DIR"
  for n in $(target_nodes); do
    if pid="$(node_pid "$n")"; then
      log "node $n already running (pid $pid)"
    else
      rm -f "$(pid_file "$n")"
      launch_node "$n"
      launched+=("$n")
    fi
  done
  deadline=$((SECONDS + TIMEOUT))
  for n in $(target_nodes); do
    until healthy "$n"; do
      if ! node_pid "$n" >/dev/null || ((SECONDS >= deadline)); then
        tail_log "$(out_file "$n")"
        local bad="$n" m
        for m in "${launched[@]}"; do
          if pid="$(node_pid "$m")"; then kill -9 "$pid" 2>/dev/null || true; fi
          rm -f "$(pid_file "$m")"
        done
        die "node $bad did not become ready within ${TIMEOUT}s (http://127.0.0.1:$(http_port "$bad")/healthz)"
      fi
      sleep 0.1
    done
  done
  log "ready in $(elapsed "$t0")s (data dir $DIR)"
}

cmd_stop() {
  local n pid
  for n in $(target_nodes); do
    if pid="$(node_pid "$n")"; then
      log "stopping node $n (pid $pid, SIGTERM)"
      kill -TERM "$pid" 2>/dev/null || true
      if ! wait_pid_gone "$pid" "$STOP_TIMEOUT" "graceful shutdown"; then
        log "node $n did not stop within ${STOP_TIMEOUT}s: sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
    rm -f "$(pid_file "$n")"
    wait_port_closed "$(client_port "$n")" 30 "nats client port" || die "port $(client_port "$n") still open"
  done
  log "stopped"
}

cmd_kill() {
  local n pid
  for n in $(target_nodes); do
    if pid="$(node_pid "$n")"; then
      log "killing node $n (pid $pid, SIGKILL)"
      kill -9 "$pid" 2>/dev/null || true
      wait_pid_gone "$pid" 30 "SIGKILL" || die "pid $pid survived SIGKILL"
    else
      log "node $n not running"
    fi
    rm -f "$(pid_file "$n")"
    wait_port_closed "$(client_port "$n")" 30 "nats client port after SIGKILL" || die "port $(client_port "$n") still open"
  done
}

cmd_status() {
  local n pid down=0
  for n in $(target_nodes); do
    if ! pid="$(node_pid "$n")"; then
      log "node $n: not running"; down=1
    elif healthy "$n"; then
      log "node $n: pid $pid, 127.0.0.1:$(client_port "$n") ready"
    else
      log "node $n: pid $pid, not ready (http://127.0.0.1:$(http_port "$n")/healthz)"; down=1
    fi
  done
  return "$down"
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

cmd_url() {
  local n list=()
  for n in $(all_nodes); do list+=("nats://127.0.0.1:$(client_port "$n")"); done
  (IFS=,; echo "${list[*]}")
}

cmd_wipe() {
  [[ -z "$NODE" ]] || die "wipe acts on the whole data dir; drop --node"
  cmd_kill
  if [[ -d "$DIR" ]]; then
    # refuse to delete something that does not look like our data dir
    [[ -e "$DIR/nats.conf" || -d "$DIR/store" || -d "$DIR/node-1" || -z "$(ls -A "$DIR")" ]] ||
      die "$DIR does not look like a nats.sh data dir; not deleting it"
    rm -rf "$DIR"
    log "wiped $DIR"
  fi
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
  url) cmd_url ;;
  bin) require_installed; echo "$BIN" ;;
  *) usage; exit 2 ;;
esac
