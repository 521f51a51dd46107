#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Peer baseline: RabbitMQ PerfTest (com.rabbitmq.perf.PerfTest) against the private node started by
# scripts/brokers/rabbitmq.sh: 1 producer, 1 consumer, publisher confirms (-c), persistent messages.
#
# usage: rabbitmq-perftest.sh SECONDS SIZE [PERFTEST_FLAG ...]
#   e.g. rabbitmq-perftest.sh 20 1024        (extra flags are passed to PerfTest as they are)
# env: RABBITMQ_PORT (5672), PERFTEST_CONFIRMS (100 = max unconfirmed publishes), PERFTEST_QUEUE
#      (peer-perftest), PERFTEST_PRODUCERS (1), PERFTEST_CONSUMERS (1), PERFTEST_HEAP (-Xmx512m),
#      PERFTEST_VERSION (2.22.1), MQ_BENCH_CACHE
# Prints PerfTest's output on stderr and one machine-readable line on stdout:
#   peer=rabbitmq-perftest seconds=S size=B msgs_per_s=<sending avg> recv_msgs_per_s=<receiving avg>
#   confirm_latency_median_us=.. confirm_latency_p99_us=.. consumer_latency_median_us=.. consumer_latency_p99_us=..
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BROKERS="$HERE/../brokers"
MQB_NAME=rabbitmq-perftest
# shellcheck source=../brokers/lib.sh
source "$BROKERS/lib.sh"

if (($# < 2)) || ! [[ "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ ]]; then
  sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
SECS="$1"; SIZE="$2"; shift 2
PORT="${RABBITMQ_PORT:-5672}"
QUEUE="${PERFTEST_QUEUE:-peer-perftest}"

"$BROKERS/rabbitmq.sh" install-perftest
LIBS="$("$BROKERS/rabbitmq.sh" perftest-libs)"
port_open "$PORT" || die "no broker listens on 127.0.0.1:$PORT: run scripts/brokers/rabbitmq.sh start first"

read -r -a heap <<<"${PERFTEST_HEAP:--Xmx512m}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
args=(-h "amqp://guest:guest@127.0.0.1:$PORT" -x "${PERFTEST_PRODUCERS:-1}" -y "${PERFTEST_CONSUMERS:-1}"
  -s "$SIZE" -z "$SECS" -c "${PERFTEST_CONFIRMS:-100}" -f persistent -u "$QUEUE" "$@")
log "PerfTest ${args[*]}"
timeout $((SECS + 120)) java "${heap[@]}" -cp "$LIBS/*" com.rabbitmq.perf.PerfTest "${args[@]}" 2>&1 |
  tee "$out" >&2 || die "PerfTest failed"

# summary lines, e.g.
#   id: test-..., sending rate avg: 10434 msg/s
#   id: test-..., receiving rate avg: 10433 msg/s
#   id: test-..., confirm latency min/median/75th/95th/99th 1024/8329/9843/12590/16154 µs
#   id: test-..., consumer latency min/median/75th/95th/99th 1163/8652/10192/12982/16580 µs
send="$(sed -n 's/.*sending rate avg: \([0-9.]*\) msg\/s.*/\1/p' "$out" | tail -n1)"
recv="$(sed -n 's/.*receiving rate avg: \([0-9.]*\) msg\/s.*/\1/p' "$out" | tail -n1)"
[[ -n "$send" ]] || die "could not find 'sending rate avg' in the PerfTest output"
lat() { # lat KIND FIELD(2=median, 5=99th)
  sed -n "s/.*$1 latency min\/median\/75th\/95th\/99th \([0-9/]*\) .*/\1/p" "$out" | tail -n1 | cut -d/ -f"$2"
}
printf 'peer=rabbitmq-perftest seconds=%s size=%s msgs_per_s=%s recv_msgs_per_s=%s confirm_latency_median_us=%s confirm_latency_p99_us=%s consumer_latency_median_us=%s consumer_latency_p99_us=%s\n' \
  "$SECS" "$SIZE" "$send" "${recv:-NA}" "$(lat confirm 2)" "$(lat confirm 5)" "$(lat consumer 2)" "$(lat consumer 5)"
