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

# wait_port_closed PORT TIMEOUT_S WHAT: wait until nothing listens on PORT.
wait_port_closed() {
  local port="$1" timeout_s="$2" what="$3" deadline
  deadline=$((SECONDS + timeout_s))
  while port_open "$port"; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout_s}s waiting for port $port ($what) to close"
      return 1
    fi
    sleep 0.2
  done
}

# wait_pid_gone PID TIMEOUT_S WHAT: wait until PID has exited (or is a zombie).
wait_pid_gone() {
  local pid="$1" timeout_s="$2" what="$3" deadline
  deadline=$((SECONDS + timeout_s))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout_s}s waiting for pid $pid ($what) to exit"
      return 1
    fi
    sleep 0.2
  done
}

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
