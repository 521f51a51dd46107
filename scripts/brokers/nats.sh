#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Run a private NATS server with JetStream (file store in its own data dir), without Docker.
# See scripts/brokers/README.md.
#
# usage: nats.sh COMMAND [options]
#   install     go install nats-server v2.15.2 and natscli (`nats`) v0.5.0 into
#               $MQ_BENCH_CACHE/nats-bin (idempotent; needs Go and the Go module proxy)
#   start       start with JetStream on its data dir (kept across restarts); returns when
#               /healthz says JetStream is ready
#   stop        graceful stop (SIGTERM), waits until the port is closed
#   kill        SIGKILL (a crash: the store stays), waits until the port is closed
#   restart     stop if running, then start on the same data dir
#   status      exit 0 if /healthz answers ok
#   wipe        kill + delete the data dir
#   pid         print the server pid
#   url         print nats://127.0.0.1:PORT
#   bin         print the folder holding nats-server and nats
# options (env in brackets):
#   --port P      [NATS_PORT=4222]   client port; monitoring (http) port = P + 4000 [NATS_HTTP_PORT]
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
SYNC="${NATS_SYNC:-}"
TIMEOUT="${NATS_START_TIMEOUT:-30}"
STOP_TIMEOUT="${NATS_STOP_TIMEOUT:-30}"
parse_opts strict "--port=PORT --dir=DIR --sync=SYNC --timeout=TIMEOUT" "$@"
[[ "$PORT" =~ ^[0-9]+$ ]] && ((PORT > 0 && PORT < 61536)) || die "bad port $PORT (1..61535)"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "bad timeout $TIMEOUT"
[[ -z "$SYNC" || "$SYNC" == always || "$SYNC" =~ ^[0-9]+(ms|s|m|h)$ ]] ||
  die "bad --sync $SYNC: valid are always or a duration like 100ms, 1s, 2m"
HTTP_PORT="${NATS_HTTP_PORT:-$((PORT + 4000))}"
DIR="${DIR:-$MQB_CACHE/run/nats}"
BIN="$MQB_CACHE/nats-bin"
SERVER="$BIN/nats-server"
PID_FILE="$DIR/nats.pid"
OUT="$DIR/nats.out"
CONF="$DIR/nats.conf"

require_installed() {
  [[ -x "$SERVER" ]] || die "nats-server not installed ($SERVER missing): run $0 install"
}

cmd_install() {
  command -v go >/dev/null || die "Go is needed to build nats-server (go install)"
  mkdir -p "$BIN"
  local want="server=$SERVER_VERSION cli=$CLI_VERSION"
  if [[ -x "$SERVER" && -x "$BIN/nats" && "$(cat "$BIN/versions" 2>/dev/null)" == "$want" ]]; then
    log "already installed in $BIN ($want)"
    return
  fi
  local t0
  t0="$(now)"
  log "go install nats-server $SERVER_VERSION and natscli $CLI_VERSION into $BIN (a few minutes)"
  GOBIN="$BIN" timeout 1800 go install "github.com/nats-io/nats-server/v2@$SERVER_VERSION"
  GOBIN="$BIN" timeout 1800 go install "github.com/nats-io/natscli/nats@$CLI_VERSION"
  echo "$want" >"$BIN/versions"
  log "installed in $(elapsed "$t0")s: $("$SERVER" --version)"
}

server_pid() { read_pid "$PID_FILE"; }

# healthy: 0 if the monitoring endpoint says the server and JetStream are ready.
healthy() {
  curl -sf --max-time 2 "http://127.0.0.1:$HTTP_PORT/healthz" 2>/dev/null | grep -q '"ok"'
}

write_conf() {
  {
    echo "# written by scripts/brokers/nats.sh at every start"
    echo "server_name: mqb-$PORT"
    echo "listen: 127.0.0.1:$PORT"
    echo "http: 127.0.0.1:$HTTP_PORT"
    echo "max_payload: 8MB"
    echo "jetstream {"
    echo "  store_dir: \"$DIR/store\""
    [[ -z "$SYNC" ]] || echo "  sync_interval: $SYNC"
    echo "}"
  } >"$CONF"
}

cmd_start() {
  require_installed
  local t0 pid deadline
  t0="$(now)"
  mkdir -p "$DIR"
  if pid="$(server_pid)"; then
    log "already running (pid $pid)"
  else
    rm -f "$PID_FILE"
    if port_open "$PORT" || port_open "$HTTP_PORT"; then
      die "port $PORT or $HTTP_PORT is already in use ($(port_owner "$PORT")$(port_owner "$HTTP_PORT")); stop that process or use --port"
    fi
    write_conf
    printf '===== %s nats.sh start (%s, sync_interval %s) =====\n' "$(date -Is)" "$SERVER_VERSION" "${SYNC:-default}" >>"$OUT"
    # setsid: own session, so signals aimed at the caller's process group miss the server.
    setsid nohup "$SERVER" -c "$CONF" -js >>"$OUT" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PID_FILE"
    log "launched: pid $pid, 127.0.0.1:$PORT (monitoring $HTTP_PORT), store $DIR/store, log $OUT"
  fi
  deadline=$((SECONDS + TIMEOUT))
  until healthy; do
    if ! server_pid >/dev/null; then
      tail_log "$OUT"
      die "nats-server exited during startup"
    fi
    if ((SECONDS >= deadline)); then
      tail_log "$OUT"
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      die "timed out after ${TIMEOUT}s waiting for http://127.0.0.1:$HTTP_PORT/healthz"
    fi
    sleep 0.1
  done
  log "ready in $(elapsed "$t0")s (data dir $DIR)"
}

cmd_stop() {
  local pid
  if pid="$(server_pid)"; then
    log "stopping pid $pid (SIGTERM)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_pid_gone "$pid" "$STOP_TIMEOUT" "graceful shutdown"; then
      log "did not stop within ${STOP_TIMEOUT}s: sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$PID_FILE"
  wait_port_closed "$PORT" 30 "nats client port" || die "port $PORT still open"
  log "stopped"
}

cmd_kill() {
  local pid
  if pid="$(server_pid)"; then
    log "killing pid $pid (SIGKILL)"
    kill -9 "$pid" 2>/dev/null || true
    wait_pid_gone "$pid" 30 "SIGKILL" || die "pid $pid survived SIGKILL"
  else
    log "not running"
  fi
  rm -f "$PID_FILE"
  wait_port_closed "$PORT" 30 "nats client port after SIGKILL" || die "port $PORT still open"
}

cmd_status() {
  local pid
  pid="$(server_pid)" || { log "not running"; return 1; }
  if healthy; then
    log "pid $pid, 127.0.0.1:$PORT ready"
  else
    log "pid $pid, not ready (http://127.0.0.1:$HTTP_PORT/healthz)"
    return 1
  fi
}

cmd_wipe() {
  cmd_kill
  if [[ -d "$DIR" ]]; then
    # refuse to delete something that does not look like our data dir
    [[ -e "$CONF" || -d "$DIR/store" || -z "$(ls -A "$DIR")" ]] ||
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
  pid) server_pid ;;
  url) echo "nats://127.0.0.1:$PORT" ;;
  bin) require_installed; echo "$BIN" ;;
  *) usage; exit 2 ;;
esac
