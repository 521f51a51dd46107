# shellcheck shell=bash
# Shared helpers for scripts/brokers/*.sh and scripts/peers/*.sh. Source it, do not run it.
# Everything here talks to 127.0.0.1 only and every wait is bounded.

# shellcheck disable=SC2034 # used by the scripts that source this file
MQB_CACHE="${MQ_BENCH_CACHE:-$HOME/.cache/mq-bench}"

# log MSG...: a short progress line on stderr, prefixed with the script name.
log() { printf '[%s] %s\n' "${MQB_NAME:-mq-bench}" "$*" >&2; }

# die MSG...: log and exit 1.
die() { log "ERROR: $*"; exit 1; }

# now: seconds since the epoch with microseconds (bash 5 EPOCHREALTIME).
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }

# elapsed START: seconds since START (from now), one decimal.
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# port_open PORT: 0 if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# pid_alive PID: 0 if PID is a live process (zombies count as dead).
pid_alive() {
  local pid="$1" stat state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  state="${stat##*) }"
  state="${state%% *}"
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# read_pid FILE: print the pid stored in FILE if that process is alive; 1 otherwise.
read_pid() {
  local f="$1" pid
  [[ -s "$f" ]] || return 1
  pid="$(tr -dc '0-9' <"$f")"
  pid_alive "$pid" || return 1
  printf '%s\n' "$pid"
}

# wait_while TIMEOUT_S WHAT CMD...: poll CMD every 0.2 s until it fails; after TIMEOUT_S, log
# "timed out ... waiting for WHAT" and return 1.
wait_while() {
  local timeout_s="$1" what="$2" deadline
  shift 2
  deadline=$((SECONDS + timeout_s))
  while "$@"; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout_s}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}

# wait_port_closed PORT TIMEOUT_S WHAT: wait until nothing listens on PORT.
wait_port_closed() { wait_while "$2" "port $1 ($3) to close" port_open "$1"; }

# wait_pid_gone PID TIMEOUT_S WHAT: wait until PID has exited (or is a zombie).
wait_pid_gone() { wait_while "$2" "pid $1 ($3) to exit" pid_alive "$1"; }

# port_owner PORT: best-effort description of who listens on PORT (for error messages).
port_owner() {
  ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -n1
}

# tail_log FILE [N]: print the last N lines of FILE on stderr, indented.
tail_log() {
  local f="$1" n="${2:-40}"
  if [[ -s "$f" ]]; then
    log "last $n lines of $f:"
    tail -n "$n" "$f" | sed 's/^/    /' >&2
  else
    log "(log $f is empty or missing)"
  fi
}

# need_value OPT VALUE: fail when an option has no value.
need_value() { [[ -n "${2:-}" ]] || die "option $1 needs a value"; }

# parse_opts strict|pass "--opt=VAR ..." ARGS...: a broker script's options. Each listed --opt
# takes a value into VAR; -h/--help prints usage (the caller's) and exits 0; any other word goes
# to the array ARGS. An unlisted --option is an error when strict; with pass it goes to ARGS too,
# and everything after -- does.
parse_opts() {
  local unknown="$1" spec=" $2 " var
  shift 2
  ARGS=()
  while (($#)); do
    if [[ "$1" == --?* && "$spec" == *" $1="* ]]; then
      var="${spec#*" $1="}"
      var="${var%% *}"
      need_value "$1" "${2:-}"
      printf -v "$var" '%s' "$2"
      shift 2
      continue
    fi
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --*) [[ "$unknown" == pass ]] || die "unknown option $1" ;;&
      --) shift; ARGS+=("$@"); break ;;
      *) ARGS+=("$1"); shift ;;
    esac
  done
}
