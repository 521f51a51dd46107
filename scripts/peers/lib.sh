# shellcheck shell=bash
# Shared by scripts/peers/*-vs-bench.sh: the bench binary, usage on bad arguments, and the
# alternating peer / bench rounds with their summary. Source it (after scripts/brokers/lib.sh),
# do not run it.

# usage_exit: print the calling script's header (line 3 to `set -euo`) on stderr and exit 2.
usage_exit() {
  sed -n '3,/^set -euo/p' "${BASH_SOURCE[-1]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# find_bench ROOT: set `bench` to $BENCH, or build mq-bench (release) and use that binary.
find_bench() {
  local root="$1"
  if [[ -n "${BENCH:-}" ]]; then
    bench=$BENCH
  else
    cargo build --release -q -p mq-bench --manifest-path "$root/Cargo.toml"
    bench="${CARGO_TARGET_DIR:-$root/target}/release/bench"
  fi
  [[ -x "$bench" ]] || die "no bench binary at $bench"
}

# settle: before a round, writes the dirty pages earlier rounds left (a broker's log of the last
# round is still being written back for seconds after it; that writeback would land in
# whichever round came next). SETTLE=0 leaves them.
settle() { [[ "${SETTLE:-1}" == 0 ]] || sync; }

# one_round peer|bench SIZE NAME: settles, runs the side's round and prints its figure; a round
# that fails or prints no number ends the script (compare_rounds is called where `set -e` does
# not reach, and a round left out would change the medians without a word)
one_round() {
  local side=$1 figure
  shift
  settle
  case "$side" in
    peer) figure="$(peer_round "$@")" || die "the peer's round $2 (size $1) failed" ;;
    bench) figure="$(bench_round "$@")" || die "bench's round $2 (size $1) failed" ;;
    *) die "one_round: no side '$side'" ;;
  esac
  [[ "$figure" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$side's round $2 (size $1) printed no figure (got '$figure')"
  echo "$figure"
}

# compare_rounds PEER_NAME BENCH_NAME PEER_TOOL PEER_UNIT NOTE: for each size in SIZES, WARMUP
# (default 1) rounds left out, then ROUNDS rounds of `peer_round SIZE peer-SIZE-I` and
# `bench_round SIZE bench-SIZE-I` (the caller's; each prints one rate), the peer first in odd
# rounds and bench first in even ones (a broker still warming up favours whoever goes second),
# then one line on stdout comparing the medians. Returns 1 when bench's median is below GOAL x
# the peer's for any size.
compare_rounds() {
  local peer_name="$1" bench_name="$2" tool="$3" unit="$4" note="$5" size i fail=0 p b
  local -a peer mine
  local warmup=${WARMUP:-1}
  [[ "$warmup" =~ ^[0-9]+$ ]] || die "WARMUP must be a count of rounds (got $warmup)"
  for size in "${SIZES[@]}"; do
    peer=() mine=()
    for ((i = 1; i <= warmup; i++)); do
      # the JVM brokers' JIT and the page cache: the first rounds are slower, on both sides
      p="$(one_round peer "$size" "warm-peer-$size-$i")" || exit 1
      b="$(one_round bench "$size" "warm-bench-$size-$i")" || exit 1
      log "size $size warm-up round $i (left out): $tool $p $unit, bench $b acked msgs/s"
    done
    for ((i = 1; i <= ROUNDS; i++)); do
      if ((i % 2)); then
        p="$(one_round peer "$size" "peer-$size-$i")" || exit 1
        b="$(one_round bench "$size" "bench-$size-$i")" || exit 1
      else
        b="$(one_round bench "$size" "bench-$size-$i")" || exit 1
        p="$(one_round peer "$size" "peer-$size-$i")" || exit 1
      fi
      peer+=("$p") mine+=("$b")
      log "size $size round $i: $tool $p $unit, bench $b acked msgs/s"
    done
    python3 - "$GOAL" "$size" "${peer[*]}" "${mine[*]}" "$peer_name" "$bench_name" "$note" <<'PY' || fail=1
import statistics, sys
goal, size = float(sys.argv[1]), sys.argv[2]
p = [float(x) for x in sys.argv[3].split()]
b = [float(x) for x in sys.argv[4].split()]
peer_name, bench_name, note = sys.argv[5:8]
pm, bm = statistics.median(p), statistics.median(b)
spread = lambda xs, m: (max(xs) - min(xs)) / m * 100
r = bm / pm
print(f"peer={peer_name} size={size} msgs_per_s={pm:.0f} bench={bench_name} size={size} msgs_per_s={bm:.0f} "
      f"ratio={r:.2f} goal={goal} peer_rounds={','.join(f'{x:.0f}' for x in p)} "
      f"bench_rounds={','.join(f'{x:.0f}' for x in b)} spread_peer={spread(p, pm):.0f}% "
      f"spread_bench={spread(b, bm):.0f}% ({note})")
sys.exit(0 if r >= goal else 1)
PY
  done
  return "$fail"
}

# cpu_run FILE CMD...: runs CMD and appends the CPU seconds (user + system) it and its children
# used to FILE; exits with CMD's status. SIGTERM / SIGINT go on to CMD (a trap may kill the
# wrapper's pid).
cpu_run() {
  python3 - "$@" <<'PY'
import resource, signal, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, lambda n, _f: child.send_signal(n))
rc = child.wait()
r = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "a") as f:
    f.write(f"{r.ru_utime + r.ru_stime:.3f}\n")
sys.exit(rc)
PY
}

# bench_cpu RESULTS FILE: appends the CPU seconds of the first variant's workers in RESULTS
# (results.json's cost: producers + consumers) to FILE, and of its producers alone to
# FILE.producer, for compare_cpu.
bench_cpu() {
  python3 - "$1" "$2" <<'PY'
import json, sys
cost = json.load(open(sys.argv[1]))["variants"][0].get("cost") or {}
cpu = {part: (cost.get(part) or {}).get("cpu_s", 0.0) for part in ("producers", "consumers")}
with open(sys.argv[2], "a") as f:
    f.write(f"{cpu['producers'] + cpu['consumers']:.3f}\n")
with open(sys.argv[2] + ".producer", "a") as f:
    f.write(f"{cpu['producers']:.3f}\n")
PY
}

# compare_cpu [producer|broker]: one line per size on stdout: the median CPU seconds per million
# messages of the peer's processes ($work/cpu.peer-SIZE-I, written by cpu_run) and of bench's
# workers ($work/cpu.bench-SIZE-I: producers + consumers from results.json's cost, from the load's
# start; with `producer`, its producers alone, for a peer that ran no consumer), and their ratio
# (bench / peer: below 1, bench spends less). With `broker`: the broker's CPU during each side's
# rounds ($work/broker.SIDE-SIZE-I, written by the calling script; nothing if there are none).
# CPU time is much less disturbed by other load than throughput is.
compare_cpu() {
  python3 - "$work" "$RECORDS" "${1:-}" "${SIZES[@]}" <<'PY'
import glob, statistics, sys
work, n, only, sizes = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
def per_m(side, size):
    xs = []
    tail = ".producer" if side == "bench" and only == "producer" else ""
    prefix = "broker" if only == "broker" else "cpu"
    for f in sorted(glob.glob(f"{work}/{prefix}.{side}-{size}-[0-9]*{tail}")):
        if not tail and f.endswith(".producer"):
            continue
        xs.append(sum(float(l) for l in open(f) if l.strip()) / n * 1e6)
    return xs
for size in sizes:
    p, b = per_m("peer", size), per_m("bench", size)
    if not p or not b:
        continue
    pm, bm = statistics.median(p), statistics.median(b)
    what = {"": "bench's producer + consumer", "producer": "bench's producer",
            "broker": "the broker, during each side's rounds"}[only]
    print(f"cpu ({what}) size={size} peer_cpu_s_per_million={pm:.2f} bench_cpu_s_per_million={bm:.2f} "
          f"ratio={bm / pm:.2f} peer_rounds={','.join(f'{x:.2f}' for x in p)} "
          f"bench_rounds={','.join(f'{x:.2f}' for x in b)}")
PY
}

# kafka_bench_round PEER SIZE NAME: runs bench's Kafka producer with the settings of the calling
# script (RECORDS, BOOT, LINGER, BATCH, COMMON; work dir $work, binary $bench) as PEER is run,
# and prints its acked msgs/s. BENCH_CONSUMERS (default 1) is the workload's consumers: 0 runs
# the producer alone, as a producer-only peer does. BENCH_CONSUMER_PROPS (k=v words) go to its
# consumer_config.
kafka_bench_round() {
  local peer=$1 size=$2 name=$3 toml=$work/$3.toml
  cat >"$toml" <<TOML
name = "$name"
description = "bench's Kafka producer, same settings as $peer $RECORDS x $size B"
[workload]
messages = $RECORDS
message_size = $size
producers = 1
consumers = ${BENCH_CONSUMERS:-1}
partitions = 1
drain_timeout = "20s"
[[variants]]
name = "kafka"
backend = "kafka"
producer_ack = "all"
consumer_ack = "auto"
[variants.options]
mode = "external"
bootstrap = "$BOOT"
idempotence = false
compression = "none"
linger_ms = $LINGER
batch_size = $BATCH
[variants.options.producer_config]
$(for kv in "${COMMON[@]}"; do printf '"%s" = "%s"\n' "${kv%%=*}" "${kv#*=}"; done)
[variants.options.consumer_config]
$(for kv in ${BENCH_CONSUMER_PROPS:-}; do printf '"%s" = "%s"\n' "${kv%%=*}" "${kv#*=}"; done)
TOML
  timeout --foreground 600 "$bench" run "$toml" --out "$work/$name" --quiet >"$work/bench.out" 2>&1 ||
    { cat "$work/bench.out" >&2; die "bench run failed"; }
  python3 - "$work/$name/results.json" "$RECORDS" <<'PY' || return 1
import json, sys
v = json.load(open(sys.argv[1]))["variants"][0]
c = v["report"]["counts"]
assert v["status"] == "ok" and c["acked"] == int(sys.argv[2]), (v["status"], c)
print(round(v["report"]["throughput"]["acked_msgs_per_s"]))
PY
  bench_cpu "$work/$name/results.json" "$work/cpu.$name"
}

# start_private_kafka: the calling script's private broker on $PORT ($BOOT) in a new temp dir
# $work, driven through kafka(); on exit, error or Ctrl-C the trap stops the peer's consumer (its
# pid in $work/cons.pid), wipes the broker and removes $work. Then starts the broker.
kafka() { "$BROKERS/kafka.sh" "$@" --port "$PORT" --dir "$work/kafka"; }
# shellcheck disable=SC2317 # called through the trap
private_kafka_cleanup() {
  local rc=$?
  # peer_round runs in a command substitution: its consumer's pid is in a file
  # `|| true`: under set -e a failed kill (the consumer already gone) would end the trap here,
  # before the wipe, and leave the broker running
  if [[ -s "$work/cons.pid" ]]; then kill "$(cat "$work/cons.pid")" 2>/dev/null || true; fi
  kafka wipe >/dev/null 2>&1 || log "WARNING: kafka.sh wipe failed (dir $work/kafka)"
  rm -rf "$work"
  exit "$rc"
}
start_private_kafka() {
  work=$(mktemp -d)
  trap private_kafka_cleanup EXIT
  trap 'exit 130' INT TERM
  log "starting a private broker on $BOOT (dir $work/kafka)"
  kafka start >&2
}
