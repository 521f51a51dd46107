#!/usr/bin/env bash
# The sharded run, proven on one machine: a scenario run unsharded, then as N shards (N
# `bench run --shard I/N` processes, each in its own network namespace with its own address
# when run as root with iproute2, else on loopback) against one log server, merged with
# `bench merge`; prints both runs' counts and throughput side by side and exits 1 when the
# merged counts differ from the unsharded ones. With Kafka installed (scripts/brokers/kafka.sh
# install) the same again against one Kafka broker on loopback.
#
# usage: scripts/shards-local.sh
# env:   BENCH (target/release/bench, else target/debug/bench)   SHARDS (3)
#        MESSAGES (600000)  PRODUCERS (3)  CONSUMERS (3)  PARTITIONS (3)  SIZE (100)  RATE (0)
#        HISTORY (intervals | full)
#        PORT (21001: the log servers use PORT and PORT+1)   KAFKA_PORT (22092; +1 controller)
#        KAFKA (auto | 0)   OUT (reports/shards-local-<time>)
# Everything it makes (namespaces mqb-shard-<pid>-<i>, veth links, servers, Kafka's data) is
# removed at exit, on error and on Ctrl-C; the run folders stay in OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH=${BENCH:-}
if [[ -z $BENCH ]]; then
  if [[ -x target/release/bench ]]; then BENCH=target/release/bench; else BENCH=target/debug/bench; fi
fi
BENCH=$(realpath "$BENCH")
SHARDS=${SHARDS:-3} MESSAGES=${MESSAGES:-600000} PRODUCERS=${PRODUCERS:-3}
CONSUMERS=${CONSUMERS:-3} PARTITIONS=${PARTITIONS:-3} SIZE=${SIZE:-100} RATE=${RATE:-0}
HISTORY=${HISTORY:-intervals} PORT=${PORT:-21001} KAFKA_PORT=${KAFKA_PORT:-22092} KAFKA=${KAFKA:-auto}
OUT=$(realpath -m "${OUT:-reports/shards-local-$(date -u +%Y%m%dT%H%M%SZ)}")
[[ $SHARDS =~ ^[0-9]+$ ]] && ((SHARDS >= 1 && SHARDS <= 50)) || { echo "SHARDS: 1 to 50" >&2; exit 2; }
mkdir -p "$OUT"

PIDS=() NAMESPACES=() KAFKA_DIR=""
cleanup() {
  local p ns
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  for ns in "${NAMESPACES[@]}"; do ip netns delete "$ns" 2>/dev/null || true; done
  if [[ -n $KAFKA_DIR ]]; then
    scripts/brokers/kafka.sh wipe --port "$KAFKA_PORT" --dir "$KAFKA_DIR" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Namespaces: shard i in mqb-shard-<pid>-<i> at 10.216.i.2, its link's host side 10.216.i.1.
NETNS=0
if ((EUID == 0)) && command -v ip >/dev/null && ip netns add "mqb-shard-$$-probe" 2>/dev/null; then
  ip netns delete "mqb-shard-$$-probe"
  NETNS=1
  for ((i = 1; i <= SHARDS; i++)); do
    ns="mqb-shard-$$-$i" host="mqs$((i))h$(($$ % 100000))" peer="mqs$((i))n$(($$ % 100000))"
    ip netns add "$ns"; NAMESPACES+=("$ns")
    ip link add "$host" type veth peer name "$peer" netns "$ns"
    ip addr add "10.216.$i.1/24" dev "$host"; ip link set "$host" up
    ip -n "$ns" addr add "10.216.$i.2/24" dev "$peer"; ip -n "$ns" link set "$peer" up
    ip -n "$ns" link set lo up; ip -n "$ns" route add default via "10.216.$i.1"
  done
  echo "shards run in network namespaces mqb-shard-$$-1..$SHARDS (10.216.i.2)" >&2
else
  echo "shards run on loopback (namespaces need root and iproute2)" >&2
fi

# scenario BACKEND_LINE OPTIONS: the scenario with one variant.
scenario() {
  cat <<EOF
name = "shards-local"
description = "The same workload unsharded and as $SHARDS shards (scripts/shards-local.sh)."
[workload]
messages = $MESSAGES
message_size = $SIZE
producers = $PRODUCERS
consumers = $CONSUMERS
partitions = $PARTITIONS
rate = $RATE
history = "$HISTORY"
drain_timeout = "3s"

[[variants]]
name = "$1"
backend = "$1"
consumer_ack = "after-process"
options = $2
EOF
}

# serve DIR ADDRESS: a log server of this script's own.
serve() {
  "$BENCH" log serve --dir "$1" --listen "$2" >"$1.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q listening "$1.out" 2>/dev/null && return; sleep 0.1; done
  echo "log server at $2 did not start: $(cat "$1.out")" >&2; exit 1
}

# round NAME UNSHARDED_SCENARIO SHARDED_SCENARIO IN_NETNS: unsharded, then shards, then merge.
round() {
  local name=$1 dir="$OUT/$1" t0 t1 i ns
  mkdir -p "$dir"
  echo "== $name: unsharded" >&2
  "$BENCH" run "$2" --out "$dir/unsharded" --quiet 2>"$dir/unsharded.log"
  echo "== $name: $SHARDS shards" >&2
  local shard_pids=()
  t0=$(date +%s.%N)
  for ((i = 1; i <= SHARDS; i++)); do
    local cmd=("$BENCH" run "$3" --shard "$i/$SHARDS" --run-id $(($$ + 1000 * ${#name}))
      --barrier "$dir/barrier" --out "$dir/shard-$i" --quiet)
    if (($4)); then cmd=(ip netns exec "mqb-shard-$$-$i" "${cmd[@]}"); fi
    "${cmd[@]}" 2>"$dir/shard-$i.log" &
    shard_pids+=($!)
  done
  for p in "${shard_pids[@]}"; do wait "$p" || { echo "a shard failed: see $dir/shard-*.log" >&2; exit 1; }; done
  t1=$(date +%s.%N)
  echo "shards took $(echo "$t1 - $t0" | bc) s" >&2
  local parts=()
  for ((i = 1; i <= SHARDS; i++)); do parts+=("$dir/shard-$i"); done
  /usr/bin/time -f "merge: %e s, %M KB peak" "$BENCH" merge "${parts[@]}" --out "$dir/merged" 2>&1 \
    | grep -E "^merge:|^merged" >&2
  python3 - "$dir/unsharded/results.json" "$dir/merged/results.json" <<'EOF'
import json, sys
u, m = (json.load(open(p))["variants"][0] for p in sys.argv[1:3])
uc, mc = u["report"]["counts"], m["report"]["counts"]
keys = ["sent", "acked", "delivered", "lost", "duplicated", "reordered", "unexpected"]
print(f"{'':12}" + "".join(f"{k:>12}" for k in keys))
for label, c in (("unsharded", uc), ("merged", mc)):
    print(f"{label:12}" + "".join(f"{c[k]:>12}" for k in keys))
ut, mt = u["report"]["throughput"], m["report"]["throughput"]
ratio = mt["acked_msgs_per_s"] / ut["acked_msgs_per_s"]
print(f"acked msg/s: unsharded {ut['acked_msgs_per_s']:.0f}, merged {mt['acked_msgs_per_s']:.0f} (ratio {ratio:.2f})")
ul, ml = u["report"]["latency"]["end_to_end"], m["report"]["latency"]["end_to_end"]
print(f"end-to-end p99 µs: unsharded {ul['p99_us']:.0f}, merged {ml['p99_us']:.0f}; "
      f"latency samples {ul['count']} / {ml['count']}")
sys.exit(0 if all(uc[k] == mc[k] for k in ["sent", "acked", "delivered", "lost"]) else 1)
EOF
}

# The log: one server for the unsharded run (loopback), one the shards share.
serve "$OUT/log-unsharded" "127.0.0.1:$((PORT + 1))"
scenario log "{ mode = \"external\", address = \"127.0.0.1:$((PORT + 1))\", keep = true }" >"$OUT/log-unsharded.toml"
if ((NETNS)); then addr="10.216.1.1:$PORT"; else addr="127.0.0.1:$PORT"; fi
serve "$OUT/log-sharded" "$addr"
scenario log "{ mode = \"external\", address = \"$addr\", keep = true }" >"$OUT/log-sharded.toml"
round log "$OUT/log-unsharded.toml" "$OUT/log-sharded.toml" "$NETNS"

# Kafka, when installed: one broker on loopback (it listens on 127.0.0.1 only), so its shards
# run on loopback too; fresh topic names per run (the run's tag).
if [[ $KAFKA != 0 ]] && scripts/brokers/kafka.sh libs >/dev/null 2>&1; then
  KAFKA_DIR="$OUT/kafka-data"
  scripts/brokers/kafka.sh start --port "$KAFKA_PORT" --dir "$KAFKA_DIR" >&2
  scenario kafka "{ mode = \"external\", bootstrap = \"127.0.0.1:$KAFKA_PORT\", keep = true }" >"$OUT/kafka.toml"
  round kafka "$OUT/kafka.toml" "$OUT/kafka.toml" 0
else
  echo "kafka: not installed (scripts/brokers/kafka.sh install) or KAFKA=0: skipped" >&2
fi
echo "run folders: $OUT" >&2
