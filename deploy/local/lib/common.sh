# shellcheck shell=bash
# Shared paths and helpers for deploy/local/stack. Sourced, never run.
#
# Two directories matter:
#   STACK_CACHE  downloaded and built artifacts, keyed by version, outside the clone so a fresh
#                clone (CI) reuses them. Override with SEGMENT_AUTOSCALER_CACHE.
#   STACK_RUN    what `up` started: pid files, logs, data, generated config. Override with
#                SEGMENT_AUTOSCALER_RUN_DIR. Defaults to .stack/ in the clone (git-ignored).

STACK_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
STACK_CACHE=${SEGMENT_AUTOSCALER_CACHE:-$HOME/.cache/segment-autoscaler}
STACK_RUN=${SEGMENT_AUTOSCALER_RUN_DIR:-$STACK_REPO/.stack}
STACK_HOST=127.0.0.1
# Shifts every default port, so a second stack (the demo's test) can run beside the first.
STACK_PORT_OFFSET=${STACK_PORT_OFFSET:-0}
[[ $STACK_PORT_OFFSET =~ ^[0-9]+$ ]] || { echo "STACK_PORT_OFFSET must be a whole number" >&2; exit 2; }

log() { printf '%s [stack] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# run_logged NAME CMD...: runs an install step, its output in $STACK_CACHE/logs/NAME.log;
# on failure prints the log's tail so the reason is on screen.
run_logged() {
  local name=$1; shift
  mkdir -p "$STACK_CACHE/logs"
  local logf="$STACK_CACHE/logs/$name.log"
  if ! "$@" >"$logf" 2>&1; then
    log "$name failed; last lines of $logf:"
    tail -n 40 "$logf" >&2
    return 1
  fi
}

# apt_lists_know PACKAGE=VERSION...: package lists may be missing on a fresh machine; refreshes
# them once when one of the pinned versions is unknown.
apt_lists_know() {
  local spec
  for spec in "$@"; do
    apt-cache show "$spec" >/dev/null 2>&1 && continue
    run_logged apt-update apt-get update || die "apt-get update failed"
    return
  done
}

# port_open PORT: something accepts TCP connections on loopback PORT.
port_open() { (exec 3<>"/dev/tcp/$STACK_HOST/$1") 2>/dev/null; }

# ensure_ports_free COMPONENT PORT...: fails, naming the port, if another process still listens
# on one after 10 s (a process that was just stopped may hold its sockets for a moment).
ensure_ports_free() {
  local component=$1 port i
  shift
  for port in "$@"; do
    for ((i = 0; i < 20; i++)); do
      port_open "$port" || continue 2
      sleep 0.5
    done
    die "$component: port $port is already in use by another process"
  done
}

# wait_for SECONDS NAME CMD...: polls CMD every half second until it succeeds; gives up early
# when the process recorded for NAME (if any) has exited.
wait_for() {
  local timeout=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [[ -f $STACK_RUN/pids/$what.pid ]] && ! process_alive "$what"; then
      log "$what exited while starting"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$what not ready after ${timeout}s"
      return 1
    fi
    sleep 0.5
  done
}

# Descriptors on which this script holds a lock (flock). start_process closes them in what it
# starts: a long-lived child would otherwise hold the lock after the script has ended.
STACK_LOCK_FDS=()

# start_process NAME LOGFILE CMD...: starts CMD detached in its own process group, in the
# log's folder (some components write relative paths), and records "PID START" in
# $STACK_RUN/pids/NAME.pid, START being the kernel's start time of the process: a pid alone may
# name another program once ours is gone. `down` kills that group, so children die with it.
start_process() {
  local name=$1 logf=$2; shift 2
  local dir pid
  dir=$(dirname "$logf")
  mkdir -p "$STACK_RUN/pids" "$dir"
  (
    for lock_fd in "${STACK_LOCK_FDS[@]}"; do exec {lock_fd}>&-; done
    cd "$dir" && exec setsid "$@"
  ) >>"$logf" 2>&1 </dev/null &
  pid=$!
  echo "$pid $(process_start_time "$pid")" >"$STACK_RUN/pids/$name.pid"
}

# process_start_time PID: when PID started, in clock ticks since boot (field 22 of
# /proc/PID/stat, read after the command name, which may hold spaces); fails when PID is gone.
process_start_time() {
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -ra fields <<<"${stat##*) }"
  echo "${fields[19]}"
}

# recorded_pid NAME: prints the pid recorded for NAME when that very process still runs (same
# pid and start time); fails when there is no record, or it names a process that is gone or
# another program that now has the pid.
recorded_pid() {
  local pidf="$STACK_RUN/pids/$1.pid" pid start
  [[ -f $pidf ]] || return 1
  read -r pid start <"$pidf" || true
  [[ $pid =~ ^[0-9]+$ && -n $start ]] || return 1
  [[ $(process_start_time "$pid") == "$start" ]] || return 1
  echo "$pid"
}

# process_alive NAME: the process recorded for NAME is running.
process_alive() { recorded_pid "$1" >/dev/null; }

# stop_process NAME: TERM the process group recorded for NAME, KILL it after 15 s. A record
# whose process is gone (or whose pid now names another program) is removed, nothing signalled.
stop_process() {
  local pidf="$STACK_RUN/pids/$1.pid" pid
  [[ -f $pidf ]] || return 0
  if pid=$(recorded_pid "$1"); then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 30; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  else
    log "$1: its recorded process is gone; nothing to stop"
  fi
  rm -f "$pidf"
}

# fail_with_log COMPONENT LOGFILE: a readiness failure, with the component's log tail.
fail_with_log() {
  log "$1 failed to become ready; last lines of $2:"
  tail -n 40 "$2" >&2 || true
  return 1
}
