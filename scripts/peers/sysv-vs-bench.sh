#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# bench's SysV backend against the C peer loop (scripts/peers/sysv_baseline.c, built here), on the
# same machine: 1 producer, 1 consumer, unbounded rate, MESSAGES messages of each size in SIZES.
# WARMUP rounds left out, then ROUNDS rounds alternating which side goes first; the medians are
# compared. Exits 1 when bench < GOAL x the peer for any size.
#
# usage: scripts/peers/sysv-vs-bench.sh [MESSAGES] [SIZES] [ROUNDS]
#          defaults: 1000000 100 3   (SIZES: space-separated body sizes in bytes, 8 to 8192)
# env:   GOAL (0.9), WARMUP (1), CC (cc), SETTLE (1: `sync` before each round; 0: not),
#        BENCH (path of the bench binary; default: build it into $CARGO_TARGET_DIR or target/)
# What is compared: messages/s delivered: the peer's msgs_per_s (its whole loop, fork to the
# receiver's exit) vs bench's results.json variants[0].report.throughput.delivered_msgs_per_s
# (every message delivered once, none lost, or the round fails). Beside it, CPU seconds per
# million messages (user + system, kernel work included): the C loop's two processes vs bench's
# producer and consumer workers (results.json's cost), which moves far less than throughput on
# a shared machine.
# stdout, two lines per size:
#   peer=sysv-c size=S msgs_per_s=X bench=sysv size=S msgs_per_s=Y ratio=Y/X goal=G
#     peer_rounds=a,b,c bench_rounds=a,b,c spread_peer=..% spread_bench=..%
#   cpu (bench's producer + consumer) size=S peer_cpu_s_per_million=.. bench_cpu_s_per_million=..
#     ratio=.. peer_rounds=.. bench_rounds=..
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
MQB_NAME=sysv-vs-bench
# shellcheck source=../brokers/lib.sh
source "$ROOT/scripts/brokers/lib.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

MESSAGES=${1:-1000000}
RECORDS=$MESSAGES # compare_cpu's count
read -r -a SIZES <<<"${2:-100}"
ROUNDS=${3:-3}
GOAL=${GOAL:-0.9}
for v in "$MESSAGES" "$ROUNDS" "${SIZES[@]}"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || usage_exit
done
for size in "${SIZES[@]}"; do
  ((size >= 8 && size <= 8192)) || die "a size must be 8 to 8192 bytes (got $size)"
done

find_bench "$ROOT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
c_loop=$work/sysv_baseline
"${CC:-cc}" -O2 -Wall -o "$c_loop" "$HERE/sysv_baseline.c"

# peer_round SIZE NAME: prints the C loop's msgs/s; its CPU time goes to $work/cpu.NAME
peer_round() {
  local line
  line=$(cpu_run "$work/cpu.$2" timeout --foreground 600 "$c_loop" "$MESSAGES" "$1") ||
    die "the C loop failed: $line"
  sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' <<<"$line"
}

# bench_round SIZE NAME: prints bench's delivered msgs/s; its workers' CPU time goes to
# $work/cpu.NAME
bench_round() {
  local size=$1 name=$2 toml=$work/$2.toml
  cat >"$toml" <<TOML
name = "$name"
description = "Same load as scripts/peers/sysv_baseline.c $MESSAGES $size"
[workload]
messages = $MESSAGES
message_size = $size
[[variants]]
name = "sysv"
backend = "sysv"
TOML
  timeout --foreground 600 "$bench" run "$toml" --out "$work/$name" --quiet >"$work/bench.out" 2>&1 ||
    { cat "$work/bench.out" >&2; die "bench run failed"; }
  python3 - "$work/$name/results.json" <<'PY' || return 1
import json, sys
v = json.load(open(sys.argv[1]))["variants"][0]
c = v["report"]["counts"]
assert v["status"] == "ok" and c["lost"] == 0 and c["delivered"] == c["sent"], (v["status"], c)
print(round(v["report"]["throughput"]["delivered_msgs_per_s"]))
PY
  bench_cpu "$work/$name/results.json" "$work/cpu.$name"
  rm -rf "${work:?}/$name"
}

rc=0
compare_rounds sysv-c sysv "sysv-c" msgs/s "both move each message from one process to another through one queue" || rc=1
compare_cpu
exit "$rc"
