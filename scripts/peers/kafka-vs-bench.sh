#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# bench's Kafka producer against Kafka's own ProducerPerformance, in one go, against the SAME
# private broker (started here on a non-default port, wiped at the end) with the SAME producer
# settings: acks=all, enable.idempotence=false, compression none, linger.ms, batch.size, one
# producer, one partition, a fresh topic per round, N records of SIZE bytes (no key).
# Rounds alternate peer / bench; the medians are compared. Exits 1 when bench < GOAL x peer.
#
# usage: scripts/peers/kafka-vs-bench.sh [RECORDS] [SIZES] [ROUNDS]
#          defaults: 1000000 "100 1024" 3   (SIZES: space-separated record sizes in bytes)
# env:   KAFKA_VS_PORT (9992; controller +1), LINGER_MS (5), BATCH_SIZE (65536), GOAL (0.9),
#        COMMON_PROPS ("max.in.flight.requests.per.connection=5": more producer properties both clients
#        know, given to ProducerPerformance --producer-props and to bench's producer_config),
#        PEER_CONSUMER (1: run ConsumerPerformance beside ProducerPerformance, see below),
#        BENCH (path of the bench binary; default: build it into $CARGO_TARGET_DIR or target/)
# stdout, one line per size:
#   peer=kafka-producer-perf size=S msgs_per_s=X bench=kafka size=S msgs_per_s=Y ratio=Y/X goal=G
#     peer_rounds=a,b,c bench_rounds=a,b,c spread_peer=..% spread_bench=..%
# What is compared: records/s acknowledged (acks=all) by the broker. ProducerPerformance's
# records/sec vs bench's results.json variants[0].report.throughput.acked_msgs_per_s.
# bench always runs a consumer beside its producer (a workload needs consumers >= 1; here
# consumer_ack = "auto"). On 2 cores that consumer competes for CPU with the producer and the
# broker, so by default the peer gets a concurrent ConsumerPerformance reading the same topic:
# both sides then do the same work (produce + consume). PEER_CONSUMER=0 runs the producer alone.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BROKERS="$ROOT/scripts/brokers"
MQB_NAME=kafka-vs-bench
# shellcheck source=../brokers/lib.sh
source "$BROKERS/lib.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

RECORDS=${1:-1000000}
read -r -a SIZES <<<"${2:-100 1024}"
ROUNDS=${3:-3}
PORT=${KAFKA_VS_PORT:-9992}
LINGER=${LINGER_MS:-5}
BATCH=${BATCH_SIZE:-65536}
GOAL=${GOAL:-0.9}
PEER_CONSUMER=${PEER_CONSUMER:-1}
read -r -a COMMON <<<"${COMMON_PROPS-max.in.flight.requests.per.connection=5}"
for kv in "${COMMON[@]}"; do [[ "$kv" =~ ^[a-z.]+=[A-Za-z0-9._-]+$ ]] || die "COMMON_PROPS: bad property '$kv'"; done
[[ "$RECORDS" =~ ^[0-9]+$ && "$ROUNDS" =~ ^[1-9][0-9]*$ && "$LINGER" =~ ^[0-9]+$ && "$BATCH" =~ ^[1-9][0-9]*$ ]] ||
  usage_exit
BOOT="127.0.0.1:$PORT"

find_bench "$ROOT"

port_open "$PORT" && die "127.0.0.1:$PORT is taken ($(port_owner "$PORT")); set KAFKA_VS_PORT"
"$BROKERS/kafka.sh" install
LIBS="$("$BROKERS/kafka.sh" libs)"
KHOME="$(dirname "$LIBS")"
LOGCONF=(-Dlog4j2.configurationFile="$KHOME/config/log4j2-tools.properties")

start_private_kafka

props=(acks=all enable.idempotence=false compression.type=none "linger.ms=$LINGER" "batch.size=$BATCH" "${COMMON[@]}")

# peer_round SIZE TOPIC: prints ProducerPerformance's records/s
peer_round() {
  local size=$1 topic=$2 out=$work/peer.out line
  kafka create-topic "$topic" 1 >&2 || die "could not create topic $topic"
  cons_pid=
  if ((PEER_CONSUMER)); then
    timeout --foreground 600 java -Xms256m -Xmx256m -XX:+UseG1GC "${LOGCONF[@]}" -cp "$LIBS/*" \
      org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$BOOT" --topic "$topic" \
      --messages "$RECORDS" --timeout 60000 >"$work/cons.out" 2>&1 &
    cons_pid=$!
    echo "$cons_pid" >"$work/cons.pid"
  fi
  timeout --foreground 600 java -Xms512m -Xmx512m -XX:+UseG1GC "${LOGCONF[@]}" -cp "$LIBS/*" \
    org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records "$RECORDS" \
    --record-size "$size" --throughput -1 --producer-props "bootstrap.servers=$BOOT" "${props[@]}" \
    >"$out" 2>&1 || { cat "$out" >&2; die "ProducerPerformance failed"; }
  if [[ -n "$cons_pid" ]]; then
    wait "$cons_pid" || { cat "$work/cons.out" >&2; die "ConsumerPerformance failed"; }
    rm -f "$work/cons.pid"
  fi
  line="$(grep -E '^[0-9]+ records sent, .* records/sec' "$out" | tail -n1)"
  [[ "${line%% *}" == "$RECORDS" ]] || { cat "$out" >&2; die "ProducerPerformance: no final summary for $RECORDS records"; }
  kafka delete-topic "$topic" >&2 || die "could not delete topic $topic" # its data goes, as bench deletes its own
  awk '{ print $4 }' <<<"$line"
}

# bench_round SIZE NAME: prints bench's acked msgs/s
bench_round() { kafka_bench_round ProducerPerformance "$@"; }

if [[ "$PEER_CONSUMER" == 1 ]]; then cons="with ConsumerPerformance"; else cons="producer alone"; fi
compare_rounds kafka-producer-perf kafka ProducerPerformance records/s "bench runs a consumer; peer: $cons"
