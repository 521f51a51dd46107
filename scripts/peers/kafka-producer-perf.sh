#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Peer baseline: Kafka's own producer benchmark (org.apache.kafka.tools.ProducerPerformance,
# what bin/kafka-producer-perf-test.sh runs) against a running broker, acks=all.
#
# usage: kafka-producer-perf.sh RECORDS RECORD_SIZE [PRODUCER_PROP=VALUE ...]
#   e.g. kafka-producer-perf.sh 200000 1024 linger.ms=5 batch.size=65536
# env: KAFKA_PORT (9092) or KAFKA_BOOTSTRAP (overrides it), KAFKA_PERF_TOPIC (peer-producer-perf),
#      KAFKA_PERF_PARTITIONS (1), KAFKA_PERF_RF (broker default), KAFKA_PERF_THROUGHPUT (-1 = unthrottled),
#      KAFKA_PERF_HEAP (-Xms512m -Xmx512m), MQ_BENCH_CACHE
# The broker must be running (scripts/brokers/kafka.sh start). The topic is created first.
# Prints the tool's output on stderr and one machine-readable line on stdout:
#   peer=kafka-producer-perf records=N record_size=S records_per_s=X mb_per_s=Y avg_latency_ms=..
#   max_latency_ms=.. p50_ms=.. p95_ms=.. p99_ms=.. p999_ms=..
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BROKERS="$HERE/../brokers"
MQB_NAME=kafka-producer-perf
# shellcheck source=../brokers/lib.sh
source "$BROKERS/lib.sh"

if (($# < 2)) || ! [[ "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ ]]; then
  sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
RECORDS="$1"; SIZE="$2"; shift 2
PORT="${KAFKA_PORT:-9092}"
BOOTSTRAP="${KAFKA_BOOTSTRAP:-127.0.0.1:$PORT}"
TOPIC="${KAFKA_PERF_TOPIC:-peer-producer-perf}"
PARTITIONS="${KAFKA_PERF_PARTITIONS:-1}"
RF="${KAFKA_PERF_RF:--1}"
THROUGHPUT="${KAFKA_PERF_THROUGHPUT:--1}"

"$BROKERS/kafka.sh" install
LIBS="$("$BROKERS/kafka.sh" libs)"
KHOME="$(dirname "$LIBS")"
LOGCONF=(-Dlog4j2.configurationFile="$KHOME/config/log4j2-tools.properties" -Dlog4j.configuration="file:$KHOME/config/log4j-tools.properties")

first="${BOOTSTRAP%%,*}"
port_open "${first##*:}" || die "no broker listens on $first: run scripts/brokers/kafka.sh start first"

log "creating topic $TOPIC (partitions $PARTITIONS)"
java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "${LOGCONF[@]}" -cp "$KHOME/helper:$LIBS/*" \
  MqBenchKafkaAdmin create-topic "$BOOTSTRAP" "$TOPIC" "$PARTITIONS" "$RF" 60000 >&2

read -r -a heap <<<"${KAFKA_PERF_HEAP:--Xms512m -Xmx512m}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
log "ProducerPerformance: $RECORDS records x $SIZE B, acks=all, bootstrap $BOOTSTRAP, props: acks=all $*"
timeout "${KAFKA_PERF_TIMEOUT:-1800}" java "${heap[@]}" -XX:+UseG1GC "${LOGCONF[@]}" -cp "$LIBS/*" \
  org.apache.kafka.tools.ProducerPerformance --topic "$TOPIC" --num-records "$RECORDS" \
  --record-size "$SIZE" --throughput "$THROUGHPUT" \
  --producer-props "bootstrap.servers=$BOOTSTRAP" acks=all "$@" 2>&1 | tee "$out" >&2 ||
  die "ProducerPerformance failed"

# final summary line, e.g.
# 200000 records sent, 61823.2 records/sec (60.37 MB/sec), 412.5 ms avg latency, 720.0 ms max latency,
#   410 ms 50th, 650 ms 95th, 700 ms 99th, 718 ms 99.9th.
summary="$(grep -E '^[0-9]+ records sent, .* records/sec .* 99\.9th' "$out" | tail -n1 || true)"
[[ -n "$summary" ]] || die "could not find the final summary line in the ProducerPerformance output"
awk -v size="$SIZE" '{
  gsub(/[(),]/, " ");
  printf "peer=kafka-producer-perf records=%s record_size=%s records_per_s=%s mb_per_s=%s avg_latency_ms=%s max_latency_ms=%s p50_ms=%s p95_ms=%s p99_ms=%s p999_ms=%s\n",
    $1, size, $4, $6, $8, $12, $16, $19, $22, $25
}' <<<"$summary"
