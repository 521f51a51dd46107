#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# bench's RabbitMQ backend against RabbitMQ PerfTest (com.rabbitmq.perf.PerfTest), in one go,
# against the SAME private node (started here on a non-default port, wiped at the end) with the
# SAME settings: 1 producer, 1 consumer, one durable classic queue (fresh each round), persistent
# messages, mandatory publishes, publisher confirms with a window of CONFIRMS unconfirmed
# publishes, manual consumer acks with prefetch PREFETCH, MESSAGES messages of SIZE bytes.
# Rounds alternate peer / bench; the medians are compared. Exits 1 when bench < GOAL x peer.
#
# usage: scripts/peers/rabbitmq-vs-bench.sh [MESSAGES] [SIZES] [ROUNDS]
#          defaults: 200000 "1024 100" 3   (SIZES: space-separated message sizes in bytes)
# env:   RABBITMQ_VS_PORT (5992; distribution +20000), CONFIRMS (100), PREFETCH (1000),
#        MULTI_ACK (100: PerfTest -A, acks with multiple=true every N deliveries; bench the same
#        with options.ack_every = N, 0 being 1), GOAL (0.9),
#        BENCH (path of the bench binary; default: build it into $CARGO_TARGET_DIR or target/)
# PerfTest: -x 1 -y 1 -s SIZE -C N -D N -c CONFIRMS -q PREFETCH -A MULTI_ACK -f persistent -f mandatory
# bench:    producer_ack = "leader" (confirms), durability = "persistent", consumer_ack =
#           "after-process", options.max_in_flight = CONFIRMS, options.prefetch = PREFETCH,
#           options.ack_every = MULTI_ACK
# What is compared: messages/s published and confirmed. PerfTest's "sending rate avg" (its
# producer never has more than CONFIRMS unconfirmed, so sent ~ confirmed) vs bench's results.json
# variants[0].report.throughput.acked_msgs_per_s. Both runs also consume every message.
# stdout, one line per size:
#   peer=rabbitmq-perftest size=S msgs_per_s=X bench=rabbitmq size=S msgs_per_s=Y ratio=Y/X goal=G
#     peer_rounds=a,b,c bench_rounds=a,b,c spread_peer=..% spread_bench=..%
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BROKERS="$ROOT/scripts/brokers"
MQB_NAME=rabbitmq-vs-bench
# shellcheck source=../brokers/lib.sh
source "$BROKERS/lib.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

MESSAGES=${1:-200000}
read -r -a SIZES <<<"${2:-1024 100}"
ROUNDS=${3:-3}
PORT=${RABBITMQ_VS_PORT:-5992}
CONFIRMS=${CONFIRMS:-100}
PREFETCH=${PREFETCH:-1000}
MULTI_ACK=${MULTI_ACK:-100}
GOAL=${GOAL:-0.9}
for v in "$MESSAGES" "$ROUNDS" "$CONFIRMS" "$PREFETCH"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || usage_exit
done
[[ "$MULTI_ACK" =~ ^[0-9]+$ ]] || die "MULTI_ACK must be a number"
((MULTI_ACK <= PREFETCH)) || die "MULTI_ACK ($MULTI_ACK) must not be above PREFETCH ($PREFETCH)"

find_bench "$ROOT"

port_open "$PORT" && die "127.0.0.1:$PORT is taken ($(port_owner "$PORT")); set RABBITMQ_VS_PORT"
"$BROKERS/rabbitmq.sh" install
"$BROKERS/rabbitmq.sh" install-perftest
LIBS="$("$BROKERS/rabbitmq.sh" perftest-libs)"

work=$(mktemp -d)
rabbit() { "$BROKERS/rabbitmq.sh" "$@" --port "$PORT" --dir "$work/rabbitmq"; }
# shellcheck disable=SC2317 # called through the trap
cleanup() {
  local rc=$?
  rabbit wipe >/dev/null 2>&1 || log "WARNING: rabbitmq.sh wipe failed (dir $work/rabbitmq)"
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting a private node on 127.0.0.1:$PORT (dir $work/rabbitmq)"
rabbit start >&2

# peer_round SIZE QUEUE: prints PerfTest's sending rate
peer_round() {
  local size=$1 queue=$2 out=$work/peer.out rate
  timeout --foreground 600 java -Xms256m -Xmx512m -cp "$LIBS/*" com.rabbitmq.perf.PerfTest \
    -h "amqp://guest:guest@127.0.0.1:$PORT" -x 1 -y 1 -s "$size" -C "$MESSAGES" -D "$MESSAGES" \
    -c "$CONFIRMS" -q "$PREFETCH" -A "$MULTI_ACK" -f persistent -f mandatory -u "$queue" \
    >"$out" 2>&1 || { cat "$out" >&2; die "PerfTest failed"; }
  rate="$(sed -n 's/.*sending rate avg: \([0-9.]*\) msg\/s.*/\1/p' "$out" | tail -n1)"
  [[ -n "$rate" ]] || { cat "$out" >&2; die "no 'sending rate avg' in the PerfTest output"; }
  printf '%s\n' "$rate"
}

# bench_round SIZE NAME: prints bench's acked msgs/s
bench_round() {
  local size=$1 name=$2 toml=$work/$2.toml
  cat >"$toml" <<TOML
name = "$name"
description = "bench's RabbitMQ backend, same settings as PerfTest $MESSAGES x $size B"
[workload]
messages = $MESSAGES
message_size = $size
producers = 1
consumers = 1
partitions = 1
drain_timeout = "20s"
[[variants]]
name = "rabbitmq"
backend = "rabbitmq"
producer_ack = "leader"
consumer_ack = "after-process"
durability = "persistent"
[variants.options]
mode = "external"
uri = "amqp://127.0.0.1:$PORT/%2f"
queue_type = "classic"
max_in_flight = $CONFIRMS
prefetch = $PREFETCH
ack_every = $((MULTI_ACK > 0 ? MULTI_ACK : 1))
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

compare_rounds rabbitmq-perftest rabbitmq PerfTest msgs/s "both produce with confirms and consume with manual acks"
