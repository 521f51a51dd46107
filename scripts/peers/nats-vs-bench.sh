#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# bench's NATS backend against natscli's `nats bench js pub async` (natscli v0.5.0), in one go,
# against the SAME private nats-server (started here on a non-default port with JetStream, wiped
# at the end) with the SAME settings: 1 publisher, JetStream publishes waiting for their PubAck
# with up to WINDOW outstanding, a fresh file-storage stream of 1 replica per round, MESSAGES
# messages of SIZE bytes. Rounds alternate peer / bench; the medians are compared. Exits 1 when
# bench < GOAL x peer.
#
# usage: scripts/peers/nats-vs-bench.sh [MESSAGES] [SIZES] [ROUNDS]
#          defaults: 200000 "100 1024" 3   (SIZES: space-separated message sizes in bytes)
# env:   NATS_VS_PORT (14292; monitoring +4000), WINDOW (500), GOAL (0.9),
#        BENCH_CONSUMERS (0: bench publishes alone, like the peer; 1: bench also consumes),
#        CONSUMER_ACK (auto: bench's consumer with AckPolicy None, the lightest; after-process),
#        BENCH (path of the bench binary; default: build it into $CARGO_TARGET_DIR or target/)
# peer:  nats bench js pub async --create --purge --storage file --replicas 1 --batch WINDOW
#          --msgs N --size S --stream <fresh> --no-progress <fresh>.0
# bench: producer_ack = "leader" (PubAck), durability = "persistent" (file storage),
#        consumer_ack = CONSUMER_ACK, options.max_in_flight = WINDOW, 1 partition
# What is compared: messages/s published and PubAcked: the peer's "NATS JetStream asynchronous
# publisher stats: X msgs/sec" vs
# bench's results.json variants[0].report.throughput.acked_msgs_per_s. The peer publishes in
# batches of WINDOW and waits for each batch's acks; bench keeps a sliding window of WINDOW.
# The peer publishes alone, and so does bench by default (consumers = 0). BENCH_CONSUMERS=1 adds
# bench's consumer (CONSUMER_ACK), which takes CPU from the publisher and the server on a small
# machine (`nats bench js consume` beside the peer never finished here: the peer has none).
# stdout, one line per size:
#   peer=nats-bench size=S msgs_per_s=X bench=nats size=S msgs_per_s=Y ratio=Y/X goal=G
#     peer_rounds=a,b,c bench_rounds=a,b,c spread_peer=..% spread_bench=..%
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BROKERS="$ROOT/scripts/brokers"
MQB_NAME=nats-vs-bench
# shellcheck source=../brokers/lib.sh
source "$BROKERS/lib.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

MESSAGES=${1:-200000}
read -r -a SIZES <<<"${2:-100 1024}"
ROUNDS=${3:-3}
PORT=${NATS_VS_PORT:-14292}
WINDOW=${WINDOW:-500}
GOAL=${GOAL:-0.9}
CONSUMER_ACK=${CONSUMER_ACK:-auto}
[[ "$CONSUMER_ACK" == auto || "$CONSUMER_ACK" == after-process ]] ||
  die "CONSUMER_ACK must be auto or after-process (got $CONSUMER_ACK)"
BENCH_CONSUMERS=${BENCH_CONSUMERS:-0}
[[ "$BENCH_CONSUMERS" == 0 || "$BENCH_CONSUMERS" == 1 ]] || die "BENCH_CONSUMERS must be 0 or 1 (got $BENCH_CONSUMERS)"
for v in "$MESSAGES" "$ROUNDS" "$WINDOW" "$PORT" "${SIZES[@]}"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || usage_exit
done

find_bench "$ROOT"

port_open "$PORT" && die "127.0.0.1:$PORT is taken ($(port_owner "$PORT")); set NATS_VS_PORT"
"$BROKERS/nats.sh" install
NATS="$("$BROKERS/nats.sh" bin)/nats"

work=$(mktemp -d)
server() { "$BROKERS/nats.sh" "$@" --port "$PORT" --dir "$work/nats"; }
# shellcheck disable=SC2317 # called through the trap
cleanup() {
  local rc=$?
  server wipe >/dev/null 2>&1 || log "WARNING: nats.sh wipe failed (dir $work/nats)"
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting a private server on 127.0.0.1:$PORT (dir $work/nats)"
server start >&2

# peer_round SIZE STREAM: prints the peer's published (and acked) msgs/s
peer_round() {
  local size=$1 stream=$2 out=$work/peer.out rate
  timeout --foreground 600 "$NATS" --server "nats://127.0.0.1:$PORT" bench js pub async \
    --create --purge --storage file --replicas 1 --batch "$WINDOW" --msgs "$MESSAGES" \
    --size "$size" --stream "$stream" --no-progress "$stream.0" >"$out" 2>&1 ||
    { cat "$out" >&2; die "nats bench failed"; }
  rate="$(sed -n 's/.*publisher stats: \([0-9,.]*\) msgs\/sec.*/\1/p' "$out" | tail -n1 | tr -d ,)"
  [[ -n "$rate" ]] || { cat "$out" >&2; die "no '... publisher stats: N msgs/sec' in the nats bench output"; }
  "$NATS" --server "nats://127.0.0.1:$PORT" stream rm -f "$stream" >/dev/null 2>&1 ||
    log "WARNING: could not remove stream $stream"
  printf '%s\n' "$rate"
}

# bench_round SIZE NAME: prints bench's acked msgs/s
bench_round() {
  local size=$1 name=$2 toml=$work/$2.toml
  cat >"$toml" <<TOML
name = "$name"
description = "bench's NATS backend, same settings as nats bench js pub async $MESSAGES x $size B"
[workload]
messages = $MESSAGES
message_size = $size
producers = 1
consumers = $BENCH_CONSUMERS
partitions = 1
drain_timeout = "20s"
[[variants]]
name = "nats"
backend = "nats"
producer_ack = "leader"
consumer_ack = "$CONSUMER_ACK"
durability = "persistent"
[variants.options]
mode = "external"
url = "nats://127.0.0.1:$PORT"
max_in_flight = $WINDOW
TOML
  timeout --foreground 600 "$bench" run "$toml" --out "$work/$name" --quiet >"$work/bench.out" 2>&1 ||
    { cat "$work/bench.out" >&2; die "bench run failed"; }
  python3 - "$work/$name/results.json" "$MESSAGES" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))["variants"][0]
c = v["report"]["counts"]
assert v["status"] == "ok" and c["acked"] == int(sys.argv[2]) and c["lost"] == 0, (v["status"], c)
print(round(v["report"]["throughput"]["acked_msgs_per_s"]))
PY
}

if [[ "$BENCH_CONSUMERS" == 0 ]]; then alone="both publish alone"; else alone="bench also consumes, consumer_ack $CONSUMER_ACK"; fi
compare_rounds nats-bench nats "nats bench" msgs/s "both publish to JetStream awaiting PubAcks; $alone"
