#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# bench's Kafka producer against librdkafka's own rdkafka_performance, built from the SAME
# librdkafka that bench links (the rdkafka-sys crate's bundled source and the librdkafka.a cargo
# built for bench), in one go, against the SAME private broker (started here on a non-default
# port, wiped at the end) with the SAME producer settings: acks=all, enable.idempotence=false,
# compression none, linger.ms, batch.size, one producer, one partition, a fresh topic per round,
# N records of SIZE bytes (no key). Rounds alternate peer / bench; the medians are compared.
# Exits 1 when bench < GOAL x peer.
#
# usage: scripts/peers/kafka-vs-rdkafka-perf.sh [RECORDS] [SIZES] [ROUNDS]
#          defaults: 1000000 "100 1024" 3   (SIZES: space-separated record sizes in bytes)
# env:   KAFKA_VS_PORT (9993; controller +1), LINGER_MS (5), BATCH_SIZE (65536), GOAL (0.9),
#        COMMON_PROPS ("max.in.flight.requests.per.connection=5": more librdkafka properties,
#        given to rdkafka_performance as -X k=v and to bench's producer_config),
#        PEER_CONSUMER (1: run `rdkafka_performance -C` beside the producer, see below),
#        BENCH (path of the bench binary; default: build it into $CARGO_TARGET_DIR or target/),
#        RDKAFKA_SYS_OUT (the rdkafka-sys build's out/ dir holding src/librdkafka.a; default:
#        found next to the bench binary, <target>/release/build/rdkafka-sys-*/out),
#        MQ_BENCH_CACHE (~/.cache/mq-bench: the peer is built once into
#        $MQ_BENCH_CACHE/rdkafka-perf-<librdkafka version>/ and reused while its inputs match)
# stdout, one line per size:
#   peer=rdkafka-performance size=S msgs_per_s=X bench=kafka size=S msgs_per_s=Y ratio=Y/X goal=G
#     peer_rounds=a,b,c bench_rounds=a,b,c spread_peer=..% spread_bench=..%
#   then `cpu (...)` lines: the CPU seconds per million messages of each side's processes, and of
#   the broker during each side's rounds (/proc/PID/stat before and after each round)
# What is compared: records/s acknowledged (acks=all) by the broker. rdkafka_performance's final
# summary "N delivered ... in Tms: R msgs/s" (R = successful delivery reports / time from its
# first produce call to its last delivery report) vs bench's results.json
# variants[0].report.throughput.acked_msgs_per_s (acked / time from start to the last ack).
# By default both sides read what they write: bench with one consumer (consumer_ack = "auto"),
# the peer with a concurrent `rdkafka_performance -C` reading the same topic from the beginning,
# started first and fetching before the producer's first record (as bench's consumer is).
# rdkafka_performance sets queued.min.messages=1000000 for its consumer (a deeper prefetch than
# librdkafka's default 100000) and message.send.max.retries=3, retry.backoff.ms=500 for its
# producer; bench's consumer and producer are given the same.
# On 2 cores a consumer competes for CPU with the producer and the broker, so both sides do the
# same work. PEER_CONSUMER=0 runs the producer alone on both sides (bench with consumers = 0).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BROKERS="$ROOT/scripts/brokers"
MQB_NAME=kafka-vs-rdkafka-perf
# shellcheck source=../brokers/lib.sh
source "$BROKERS/lib.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

RECORDS=${1:-1000000}
read -r -a SIZES <<<"${2:-100 1024}"
ROUNDS=${3:-3}
PORT=${KAFKA_VS_PORT:-9993}
LINGER=${LINGER_MS:-5}
BATCH=${BATCH_SIZE:-65536}
GOAL=${GOAL:-0.9}
PEER_CONSUMER=${PEER_CONSUMER:-1}
[[ "$PEER_CONSUMER" == 0 || "$PEER_CONSUMER" == 1 ]] || die "PEER_CONSUMER must be 0 or 1 (got $PEER_CONSUMER)"
read -r -a COMMON <<<"${COMMON_PROPS-max.in.flight.requests.per.connection=5}"
# what rdkafka_performance.c sets itself before its options, given to bench too
PEER_OWN_PRODUCER=(message.send.max.retries=3 retry.backoff.ms=500)
PEER_OWN_CONSUMER="queued.min.messages=1000000"
for kv in "${COMMON[@]}"; do [[ "$kv" =~ ^[a-z.]+=[A-Za-z0-9._-]+$ ]] || die "COMMON_PROPS: bad property '$kv'"; done
[[ "$RECORDS" =~ ^[1-9][0-9]*$ && "$ROUNDS" =~ ^[1-9][0-9]*$ && "$LINGER" =~ ^[0-9]+$ && "$BATCH" =~ ^[1-9][0-9]*$ ]] ||
  usage_exit
((RECORDS <= 2147483647)) || die "RECORDS: rdkafka_performance counts in an int"
for size in "${SIZES[@]}"; do [[ "$size" =~ ^[1-9][0-9]*$ ]] || usage_exit; done
BOOT="127.0.0.1:$PORT"

find_bench "$ROOT"

# ---------------------------------------------------------------- the peer, built once
# build_peer: set `rdkperf` to rdkafka_performance compiled from the rdkafka-sys crate's
# examples/rdkafka_performance.c and linked against the librdkafka.a (and the static zlib/zstd)
# that cargo built for bench. Cached under $MQB_CACHE/rdkafka-perf-<version>/ with a stamp of its
# inputs (checksums of the .c and the .a, the link line); a second run reuses it.
build_peer() {
  local crate_ver lib_ver hexver src out cfg ldflags libs cache stamp want t
  crate_ver="$(awk '/^name = "rdkafka-sys"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$ROOT/Cargo.lock")"
  [[ "$crate_ver" == *+* ]] || die "Cargo.lock: no rdkafka-sys version (got '$crate_ver')"
  lib_ver=${crate_ver#*+}
  src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"rdkafka-sys-$crate_ver"/librdkafka 2>/dev/null | head -n1)"
  [[ -f "$src/examples/rdkafka_performance.c" ]] ||
    die "no rdkafka-sys-$crate_ver sources in ${CARGO_HOME:-$HOME/.cargo}/registry/src (cargo fetch)"
  hexver="0x$(printf '%02x%02x%02x' ${lib_ver//./ })ff"
  if [[ -n "${RDKAFKA_SYS_OUT:-}" ]]; then
    out=$RDKAFKA_SYS_OUT
  else
    # the newest rdkafka-sys build next to the bench binary whose librdkafka has this version
    out=
    for t in $(ls -td "$(dirname "$bench")"/build/rdkafka-sys-*/out 2>/dev/null); do
      [[ -f "$t/src/librdkafka.a" ]] && grep -q "RD_KAFKA_VERSION  *$hexver" "$t/src/rdkafka.h" 2>/dev/null || continue
      out=$t
      break
    done
    [[ -n "$out" ]] || die "no librdkafka $lib_ver build under $(dirname "$bench")/build/rdkafka-sys-*/out (set RDKAFKA_SYS_OUT)"
  fi
  [[ -f "$out/src/librdkafka.a" && -f "$out/Makefile.config" && -f "$out/config.h" ]] ||
    die "$out: no src/librdkafka.a, Makefile.config or config.h (not an rdkafka-sys build dir?)"
  grep -q "RD_KAFKA_VERSION  *$hexver" "$out/src/rdkafka.h" || die "$out/src/rdkafka.h is not librdkafka $lib_ver"
  # the build dir is a copy of the crate's librdkafka/ plus ./configure's output: same example
  cmp -s "$src/examples/rdkafka_performance.c" "$out/examples/rdkafka_performance.c" ||
    die "$out is not a build of $src (examples/rdkafka_performance.c differs)"
  # link flags exactly as ./configure found them for that build (-L to the static zlib/zstd of
  # the libz-sys / zstd-sys builds, -lzstd -lz -lm -ldl -lpthread -lrt)
  cfg=$out/Makefile.config
  ldflags="$(sed -n 's/^LDFLAGS+=[[:space:]]*//p' "$cfg" | tr '\n' ' ')"
  libs="$(sed -n 's/^LIBS+=[[:space:]]*//p' "$cfg" | tr '\n' ' ')"
  cache="$MQB_CACHE/rdkafka-perf-$lib_ver"
  want="$(
    printf 'crate %s\nlibrdkafka %s\nout %s\nlink %s %s\n' "$crate_ver" "$lib_ver" "$out" "$ldflags" "$libs"
    sha256sum "$src/examples/rdkafka_performance.c" "$out/src/librdkafka.a" | awk '{ print $1 }'
  )"
  rdkperf=$cache/rdkafka_performance
  stamp=$cache/build.stamp
  if [[ -x "$rdkperf" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "peer: $rdkperf (cached, librdkafka $lib_ver from $out)"
    return
  fi
  log "peer: building rdkafka_performance (librdkafka $lib_ver) against $out/src/librdkafka.a"
  mkdir -p "$cache"
  rm -f "$stamp"
  # shellcheck disable=SC2086 # ldflags and libs are word lists
  "${CC:-cc}" -g -O2 -Wall -I"$out/src" "$src/examples/rdkafka_performance.c" \
    -o "$cache/rdkafka_performance.tmp" "$out/src/librdkafka.a" $ldflags $libs ||
    die "could not build rdkafka_performance"
  # without arguments it prints its usage with the library's version (and exits 1)
  [[ "$("$cache/rdkafka_performance.tmp" 2>&1)" == *"librdkafka version $lib_ver ("* ]] ||
    die "the built rdkafka_performance does not report librdkafka $lib_ver"
  mv -f "$cache/rdkafka_performance.tmp" "$rdkperf"
  printf '%s\n' "$want" >"$stamp"
  log "peer: built $rdkperf"
}
build_peer
[[ "${PEER_BUILD_ONLY:-0}" == 1 ]] && { printf '%s\n' "$rdkperf"; exit 0; }

# ---------------------------------------------------------------- the broker
port_open "$PORT" && die "127.0.0.1:$PORT is taken ($(port_owner "$PORT")); set KAFKA_VS_PORT"
port_open $((PORT + 1)) && die "127.0.0.1:$((PORT + 1)) (controller) is taken ($(port_owner $((PORT + 1)))); set KAFKA_VS_PORT"
"$BROKERS/kafka.sh" install

start_private_kafka
broker_pid="$(kafka pid)"
[[ "$broker_pid" =~ ^[0-9]+$ ]] || die "kafka.sh pid: no broker pid (got '$broker_pid')"
clk_tck="$(getconf CLK_TCK)"

# broker_cpu_s: the private broker's CPU seconds so far (user + system, /proc/PID/stat)
broker_cpu_s() { awk -v hz="$clk_tck" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$broker_pid/stat"; }
# broker_cpu_around NAME CMD...: runs CMD; appends the broker's CPU seconds meanwhile to
# $work/broker.NAME (read by compare_cpu broker)
broker_cpu_around() {
  local name=$1 t0 rc=0
  shift
  t0="$(broker_cpu_s)"
  "$@" || rc=$?
  awk -v a="$t0" -v b="$(broker_cpu_s)" 'BEGIN { printf "%.2f\n", b - a }' >>"$work/broker.$name"
  return "$rc"
}

props=(acks=all enable.idempotence=false compression.type=none "linger.ms=$LINGER" "batch.size=$BATCH" "${COMMON[@]}")
xprops=()
for kv in "${props[@]}"; do xprops+=(-X "$kv"); done

# the peer's consumer has logged its partition's fetch state turning active (-d topic)
peer_consumer_fetching() { grep -q "fetch state offset-wait -> active" "$work/cons.out"; }
# ... not yet, and it is still running
peer_consumer_starting() { ! peer_consumer_fetching && kill -0 "$cons_pid" 2>/dev/null; }

# peer_round SIZE TOPIC: prints rdkafka_performance's delivered (acked) msgs/s
peer_round() { broker_cpu_around "$2" peer_round_here "$@"; }
# shellcheck disable=SC2317 # called through broker_cpu_around
peer_round_here() {
  local size=$1 topic=$2 out=$work/peer.out line re
  kafka create-topic "$topic" 1 >&2 || die "could not create topic $topic"
  cons_pid=
  if ((PEER_CONSUMER)); then
    # simple consumer of partition 0 from the beginning, until it has RECORDS messages. -d topic
    # logs its partition's fetch states (a few dozen lines a run, none per fetch): the producer
    # starts once it is fetching, as bench's producers start once its consumers are ready.
    # Started together, the consumer would begin about 0.5 s late (its first offset query waits
    # for a 500 ms timer) and then read that backlog in 1 MiB fetches, work bench's consumer,
    # fetching at the head from the first message, does not get to skip.
    cpu_run "$work/cpu.$topic" timeout --foreground 600 "$rdkperf" -C -q -t "$topic" -p 0 -o beginning -c "$RECORDS" \
      -b "$BOOT" -d topic >"$work/cons.out" 2>&1 &
    cons_pid=$!
    echo "$cons_pid" >"$work/cons.pid"
    wait_while 30 "rdkafka_performance -C to start fetching $topic" peer_consumer_starting ||
      { cat "$work/cons.out" >&2; die "rdkafka_performance -C did not start fetching $topic"; }
    peer_consumer_fetching || { cat "$work/cons.out" >&2; die "rdkafka_performance -C exited before fetching $topic"; }
  fi
  # -q: only the final summary (no per-second line); -p 0: the one partition; no -k: no key;
  # no -D: one payload buffer for all records (librdkafka copies it into the batch)
  local prc=0
  cpu_run "$work/cpu.$topic" timeout --foreground 600 "$rdkperf" -P -q -t "$topic" -p 0 -s "$size" -c "$RECORDS" \
    -b "$BOOT" "${xprops[@]}" >"$out" 2>&1 || prc=$?
  # It exits 1 when its produced count differs from its delivered one, and it takes
  # rd_kafka_outq_len() off the produced count at the end, which also counts a statistics event
  # still waiting: "4999999 messages produced ..., 5000000 delivered (..., 0 failed)". The
  # summary is checked below; any other failure (or no summary) ends the run.
  ((prc == 0 || prc == 1)) || { cat "$out" >&2; die "rdkafka_performance -P failed (exit $prc)"; }
  if [[ -n "$cons_pid" ]]; then
    wait "$cons_pid" || { cat "$work/cons.out" >&2; die "rdkafka_performance -C failed"; }
    rm -f "$work/cons.pid"
    grep -qE "^% $RECORDS messages \([0-9]+ bytes\) consumed" "$work/cons.out" ||
      { cat "$work/cons.out" >&2; die "rdkafka_performance -C: did not consume $RECORDS messages"; }
  fi
  # final summary (print_stats, producer mode):
  # "% <produced> messages produced (<bytes> bytes), <delivered> delivered (offset <o>, <failed>
  #  failed) in <ms>ms: <delivered/s> msgs/s and <MB/s> MB/s, <e> produce failures, <q> in queue, ..."
  re="^% ([0-9]+) messages produced \\([0-9]+ bytes\\), ([0-9]+) delivered \\(offset -?[0-9]+, ([0-9]+) failed\\) in [0-9]+ms: ([0-9]+) msgs/s .* ([0-9]+) in queue"
  line="$(grep -E '^% [0-9]+ messages produced' "$out" | tail -n1)"
  [[ "$line" =~ $re ]] || { cat "$out" >&2; die "rdkafka_performance -P: no final summary"; }
  [[ "${BASH_REMATCH[2]}" == "$RECORDS" && "${BASH_REMATCH[3]}" == 0 && "${BASH_REMATCH[5]}" == 0 ]] ||
    { cat "$out" >&2; die "rdkafka_performance -P: not all $RECORDS records delivered ($line)"; }
  if [[ "${BASH_REMATCH[1]}" != "$RECORDS" || "$prc" != 0 ]]; then
    log "note: rdkafka_performance -P exited $prc with all $RECORDS records delivered (its produced count: ${BASH_REMATCH[1]}; see above)"
  fi
  # its RECORDS x SIZE bytes go, as bench deletes its own topic: 8 rounds of 5 M x 1 KiB would
  # otherwise keep 40 GB on disk
  kafka delete-topic "$topic" >&2 || die "could not delete topic $topic"
  echo "${BASH_REMATCH[4]}"
}

# bench_round SIZE NAME: prints bench's acked msgs/s
bench_round() { broker_cpu_around "$2" bench_round_here "$@"; }
# shellcheck disable=SC2317 # called through broker_cpu_around
bench_round_here() {
  local -a COMMON=("${PEER_OWN_PRODUCER[@]}" "${COMMON[@]}")
  BENCH_CONSUMERS=$PEER_CONSUMER BENCH_CONSUMER_PROPS=$PEER_OWN_CONSUMER kafka_bench_round "rdkafka_performance -P" "$@"
}

if [[ "$PEER_CONSUMER" == 1 ]]; then cons="a consumer beside the producer on both sides"; else cons="the producer alone on both sides"; fi
rc=0
compare_rounds rdkafka-performance kafka rdkafka_performance "delivered msgs/s" "$cons" || rc=1
if [[ "$PEER_CONSUMER" == 1 ]]; then compare_cpu; else compare_cpu producer; fi
compare_cpu broker
exit "$rc"
