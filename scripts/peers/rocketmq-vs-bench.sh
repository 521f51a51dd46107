#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# bench's RocketMQ producer against a stand-in for RocketMQ's benchmark Producer
# (scripts/peers/rocketmq/MqBenchRocketProducer.java on rocketmq-client 5.3.3: rocketmq-example,
# which holds the real one, is not on Maven Central at 5.3.3), in one go, against the SAME private
# broker (started here on a non-default port, wiped at the end) with the SAME settings: sync sends
# (acked on SEND_OK), SYNC_FLUSH, THREADS sends in flight, a fresh 1-queue topic per round, N
# messages of SIZE bytes without keys, a consumer reading beside the producer.
# Rounds alternate peer / bench; the medians are compared. Exits 1 when bench < GOAL x peer.
#
# usage: scripts/peers/rocketmq-vs-bench.sh [MESSAGES] [SIZES] [ROUNDS]
#          defaults: 200000 "100 1024" 3   (SIZES: space-separated message sizes in bytes)
# env:   ROCKETMQ_VS_PORT (17900: name server; broker +10), THREADS (64, the benchmark Producer's
#        default -w; bench: options.max_in_flight), FLUSH (sync | async), PEER_CONSUMER (1),
#        GOAL (0.9), BENCH (path of the bench binary; default: build it)
# stdout, one line per size:
#   peer=rocketmq-producer size=S msgs_per_s=X bench=rocketmq size=S msgs_per_s=Y ratio=Y/X ...
# What is compared: SEND_OK answers per second (the peer's ok / seconds) vs bench's results.json
# variants[0].report.throughput.acked_msgs_per_s.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BROKERS="$ROOT/scripts/brokers"
MQB_NAME=rocketmq-vs-bench
# shellcheck source=../brokers/lib.sh
source "$BROKERS/lib.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

MESSAGES=${1:-200000}
read -r -a SIZES <<<"${2:-100 1024}"
ROUNDS=${3:-3}
PORT=${ROCKETMQ_VS_PORT:-17900}
THREADS=${THREADS:-64}
FLUSH=${FLUSH:-sync}
PEER_CONSUMER=${PEER_CONSUMER:-1}
GOAL=${GOAL:-0.9}
for v in "$MESSAGES" "$ROUNDS" "$THREADS" "$PORT"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || usage_exit
done
[[ "$FLUSH" == sync || "$FLUSH" == async ]] || die "FLUSH must be sync or async"
[[ "$PEER_CONSUMER" == 0 || "$PEER_CONSUMER" == 1 ]] || die "PEER_CONSUMER must be 0 or 1"
((THREADS <= 1000)) || die "THREADS must be at most 1000 (bench's max_in_flight)"
for s in "${SIZES[@]}"; do [[ "$s" =~ ^[1-9][0-9]*$ ]] || die "bad size '$s'"; done
NAMESRV="127.0.0.1:$PORT"

find_bench "$ROOT"

for p in "$PORT" $((PORT + 8)) $((PORT + 10)) $((PORT + 11)); do
  port_open "$p" && die "127.0.0.1:$p is taken ($(port_owner "$p")); set ROCKETMQ_VS_PORT"
done
"$BROKERS/rocketmq.sh" install
LIBS="$("$BROKERS/rocketmq.sh" libs)"

work=$(mktemp -d)
rmq() { "$BROKERS/rocketmq.sh" "$@" --port "$PORT" --flush "$FLUSH" --dir "$work/rocketmq"; }
# shellcheck disable=SC2317 # called through the trap
cleanup() {
  local rc=$?
  rmq wipe >/dev/null 2>&1 || log "WARNING: rocketmq.sh wipe failed (dir $work/rocketmq)"
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "compiling the peer producer"
mkdir -p "$work/classes"
javac -nowarn --release 17 -cp "$LIBS/*" -d "$work/classes" "$HERE/rocketmq/MqBenchRocketProducer.java"

log "starting a private name server + broker on $NAMESRV (flush $FLUSH, dir $work/rocketmq)"
rmq start >&2

# peer_round SIZE TOPIC: prints the peer's SEND_OK per second
peer_round() {
  local size=$1 topic=$2 out=$work/peer.out line
  ROCKETMQ_HOME="$work/rocketmq/home" timeout --foreground 600 java -Xms256m -Xmx512m -XX:+UseG1GC \
    -Duser.home="$work/rocketmq/home" -cp "$work/classes:$LIBS/*" MqBenchRocketProducer \
    "$NAMESRV" "$topic" "$MESSAGES" "$size" "$THREADS" "$PEER_CONSUMER" >"$out" 2>&1 ||
    { cat "$out" >&2; die "the peer producer failed"; }
  line="$(grep -E '^sent=' "$out" | tail -n1)"
  [[ -n "$line" ]] || { cat "$out" >&2; die "no summary line from the peer"; }
  sed -n 's/.*msgs_per_s=\([0-9]*\).*/\1/p' <<<"$line"
}

# bench_round SIZE NAME: prints bench's acked msgs/s
bench_round() {
  local size=$1 name=$2 toml=$work/$2.toml
  cat >"$toml" <<TOML
name = "$name"
description = "bench's RocketMQ backend, same settings as the peer producer $MESSAGES x $size B"
[workload]
messages = $MESSAGES
message_size = $size
producers = 1
consumers = 1
partitions = 1
drain_timeout = "30s"
[[variants]]
name = "rocketmq"
backend = "rocketmq"
producer_ack = "leader"
consumer_ack = "auto"
[variants.options]
mode = "external"
namesrv = "$NAMESRV"
cluster = "mqbench"
fifo = false
max_in_flight = $THREADS
TOML
  timeout --foreground 600 "$bench" run "$toml" --out "$work/$name" --quiet >"$work/bench.out" 2>&1 ||
    { cat "$work/bench.out" >&2; die "bench run failed"; }
  python3 - "$work/$name/results.json" "$MESSAGES" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))["variants"][0]
c = v["report"]["counts"]
assert v["status"] == "ok" and c["acked"] == int(sys.argv[2]), (v["status"], c)
print(round(v["report"]["throughput"]["acked_msgs_per_s"]))
PY
}

if [[ "$PEER_CONSUMER" == 1 ]]; then cons="with a lite pull consumer"; else cons="producer alone"; fi
compare_rounds rocketmq-producer rocketmq "peer producer" msgs/s "sync sends, $THREADS in flight, flush $FLUSH; bench runs a consumer; peer: $cons"
