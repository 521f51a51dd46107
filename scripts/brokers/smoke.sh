#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Smoke test of the broker scripts: install both, start both, check ready, kill -9 and restart each
# (timed), stop both. Exits non-zero on any failure. Uses throw-away data dirs; ports from
# KAFKA_PORT / RABBITMQ_PORT (9092 / 5672), which must be free.
#
# usage: smoke.sh [--cluster]
#   --cluster   also start a 3-node Kafka cluster, kill -9 node 2, restart it, stop the cluster
# Prints one line per step on stderr and a summary on stdout:
#   smoke result=ok kafka_install_s=.. kafka_start_s=.. kafka_restart_after_kill_s=.. ...
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MQB_NAME=smoke
# shellcheck source=lib.sh
source "$HERE/lib.sh"

CLUSTER=0
case "${1:-}" in
  --cluster) CLUSTER=1 ;;
  "") ;;
  *) sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac

mkdir -p "$MQB_CACHE/run"
WORK="$(mktemp -d "$MQB_CACHE/run/smoke.XXXXXX")"
KDIR="$WORK/kafka"; RDIR="$WORK/rabbitmq"; CDIR="$WORK/kafka-cluster"
K=("$HERE/kafka.sh")
R=("$HERE/rabbitmq.sh")
SUMMARY=()

cleanup() {
  local rc=$?
  # leave nothing running: SIGKILL whatever is still up in our throw-away dirs
  "${K[@]}" kill --dir "$KDIR" >/dev/null 2>&1 || true
  "${R[@]}" stop --dir "$RDIR" >/dev/null 2>&1 || "${R[@]}" kill --dir "$RDIR" >/dev/null 2>&1 || true
  if ((CLUSTER)) && [[ -d "$CDIR" ]]; then "${K[@]}" kill --nodes 3 --dir "$CDIR" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
  if ((rc == 0)); then
    echo "smoke result=ok ${SUMMARY[*]}"
  else
    echo "smoke result=FAILED ${SUMMARY[*]}"
  fi
  exit "$rc"
}
trap cleanup EXIT

# step KEY CMD...: run CMD, record its duration as KEY=seconds, fail the smoke test on error
step() {
  local key="$1" t0 t
  shift
  t0="$(now)"
  if ! "$@" >&2; then
    log "FAILED: $key ($*)"
    exit 1
  fi
  t="$(elapsed "$t0")"
  SUMMARY+=("${key}_s=$t")
  log "ok: $key in ${t}s"
}

step kafka_install "${K[@]}" install
step rabbitmq_install "${R[@]}" install
step kafka_start "${K[@]}" start --dir "$KDIR"
step rabbitmq_start "${R[@]}" start --dir "$RDIR"
step kafka_status "${K[@]}" status --dir "$KDIR"
step rabbitmq_status "${R[@]}" status --dir "$RDIR"
step kafka_create_topic "${K[@]}" create-topic smoke 2 --dir "$KDIR"

step kafka_kill "${K[@]}" kill --dir "$KDIR"
if "${K[@]}" status --dir "$KDIR" 2>/dev/null; then log "FAILED: kafka still ready after kill"; exit 1; fi
step kafka_restart_after_kill "${K[@]}" start --dir "$KDIR"
topics="$("${K[@]}" topics --dir "$KDIR")"
grep -qx smoke <<<"$topics" || { log "FAILED: topic 'smoke' missing after restart (topics: $topics)"; exit 1; }
log "ok: topic 'smoke' survived kill -9"

step rabbitmq_kill "${R[@]}" kill --dir "$RDIR"
if "${R[@]}" status --dir "$RDIR" 2>/dev/null; then log "FAILED: rabbitmq still ready after kill"; exit 1; fi
step rabbitmq_restart_after_kill "${R[@]}" start --dir "$RDIR"
step rabbitmq_status_after_restart "${R[@]}" status --dir "$RDIR"

step kafka_stop "${K[@]}" stop --dir "$KDIR"
step rabbitmq_stop "${R[@]}" stop --dir "$RDIR"
if "${K[@]}" pid --dir "$KDIR" >/dev/null 2>&1; then log "FAILED: kafka still has a pid after stop"; exit 1; fi
if "${R[@]}" pid --dir "$RDIR" >/dev/null 2>&1; then log "FAILED: rabbitmq still has a pid after stop"; exit 1; fi

if ((CLUSTER)); then
  C=(--nodes 3 --dir "$CDIR")
  step cluster_start "${K[@]}" start "${C[@]}"
  step cluster_create_topic "${K[@]}" create-topic smoke3 3 3 "${C[@]}"
  step cluster_kill_node2 "${K[@]}" kill --node 2 "${C[@]}"
  step cluster_restart_node2 "${K[@]}" start --node 2 "${C[@]}"
  step cluster_status "${K[@]}" status "${C[@]}"
  step cluster_stop "${K[@]}" stop "${C[@]}"
fi
