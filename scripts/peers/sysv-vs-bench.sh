#!/usr/bin/env bash
# bench's SysV backend against the C peer loop (scripts/peers/sysv_baseline.c), in one go, on the
# same machine: 1 producer, 1 consumer, unbounded rate. Prints both rates and their ratio; exits 1
# when bench reaches less than the goal (default 0.5x).
#
# usage: scripts/peers/sysv-vs-bench.sh [MESSAGES] [BODY_BYTES] [ROUNDS]   (defaults 1000000 100 3)
# env:   GOAL (default 0.5), CC (default cc)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
MQB_NAME=sysv-vs-bench
# shellcheck source=../brokers/lib.sh
source "$root/scripts/brokers/lib.sh"
# shellcheck source=lib.sh
source "$root/scripts/peers/lib.sh"
n=${1:-1000000} size=${2:-100} rounds=${3:-3}
goal=${GOAL:-0.5}

find_bench "$root"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
peer=$work/sysv_baseline
"${CC:-cc}" -O2 -Wall -o "$peer" "$root/scripts/peers/sysv_baseline.c"
cat >"$work/peer.toml" <<TOML
name = "sysv-peer"
description = "Same load as scripts/peers/sysv_baseline.c $n $size"
[workload]
messages = $n
message_size = $size
[[variants]]
name = "sysv"
backend = "sysv"
TOML

peer_rates=() bench_rates=()
for ((i = 1; i <= rounds; i++)); do
  line=$("$peer" "$n" "$size")
  peer_rates+=("$(sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' <<<"$line")")
  "$bench" run "$work/peer.toml" --out "$work/run-$i" --quiet 2>/dev/null
  bench_rates+=("$(python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))["variants"][0]
c = v["report"]["counts"]
assert v["status"] == "ok" and c["lost"] == 0 and c["delivered"] == c["sent"], v["status"]
print(round(v["report"]["throughput"]["delivered_msgs_per_s"]))' "$work/run-$i/results.json")")
  echo "round $i: sysv-c ${peer_rates[-1]} msgs/s, bench ${bench_rates[-1]} msgs/s" >&2
done
python3 - "$goal" "${peer_rates[*]}" "${bench_rates[*]}" <<'PY'
import statistics, sys
goal = float(sys.argv[1])
peer = statistics.median(float(x) for x in sys.argv[2].split())
bench = statistics.median(float(x) for x in sys.argv[3].split())
ratio = bench / peer
print(f"peer=sysv-c msgs_per_s={peer:.0f} bench_sysv msgs_per_s={bench:.0f} ratio={ratio:.2f} goal={goal}")
sys.exit(0 if ratio >= goal else 1)
PY
