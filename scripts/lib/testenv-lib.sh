# shellcheck shell=bash
# Helpers for scripts/testenv: logging, pid files, health waits. Sourced, not executed.

te_log() { printf 'testenv: %s\n' "$*" >&2; }
te_die() { printf 'testenv: error: %s\n' "$*" >&2; exit 1; }

# Monotonic-ish wall time in milliseconds.
te_now_ms() { date +%s%3N; }

# te_pid_alive PIDFILE MARKER: true when the pid in PIDFILE is alive and its command line
# contains MARKER (guards against a recycled pid after a reboot or a crash).
te_pid_alive() {
  local pidfile=$1 marker=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"
}

# te_port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
te_port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# te_http_code URL [curl args...]: prints the HTTP status (000 when unreachable).
te_http_code() {
  local url=$1; shift
  curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$@" "$url" 2>/dev/null || true
}

# te_spawn PIDFILE LOGFILE CMD...: start CMD detached in its own session (so it outlives the
# caller's terminal and can be stopped as a process group), stdout+stderr to LOGFILE.
te_spawn() {
  local pidfile=$1 logfile=$2; shift 2
  : >"$logfile"
  # A background child of a non-interactive shell is not a process-group leader, so setsid
  # execs CMD in place and $! is CMD's own pid.
  # fd 9 is testenv's lock file: the service must not inherit (and so hold) it.
  setsid "$@" >>"$logfile" 2>&1 </dev/null 9>&- &
  echo $! >"$pidfile"
}

# te_wait NAME PIDFILE LOGFILE TIMEOUT_S PROBE...: poll PROBE (a command) until it succeeds;
# fail with the log tail when the process dies or the timeout passes.
te_wait() {
  local name=$1 pidfile=$2 logfile=$3 timeout=$4; shift 4
  local start now pid
  start=$(te_now_ms)
  pid=$(<"$pidfile")
  while :; do
    if "$@"; then
      now=$(te_now_ms)
      te_log "$name: healthy after $(( (now - start) / 1000 )).$(printf '%03d' $(( (now - start) % 1000 )))s (pid $pid)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      te_log "$name: process $pid exited during startup; last lines of $logfile:"
      tail -n 30 "$logfile" >&2 || true
      rm -f "$pidfile"
      return 1
    fi
    now=$(te_now_ms)
    if (( now - start > timeout * 1000 )); then
      te_log "$name: not healthy after ${timeout}s; last lines of $logfile:"
      tail -n 30 "$logfile" >&2 || true
      te_stop_pid "$name" "$pidfile"
      return 1
    fi
    sleep 0.2
  done
}

# te_stop_pid NAME PIDFILE: SIGTERM the process group we started, wait up to 20 s, then SIGKILL.
te_stop_pid() {
  local name=$1 pidfile=$2 pid i
  [[ -s $pidfile ]] || return 0
  pid=$(<"$pidfile")
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
    # The service was started with setsid, so pid is its process-group id.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      te_log "$name: pid $pid ignored SIGTERM for 20s; sending SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
    te_log "$name: stopped (pid $pid)"
  fi
  rm -f "$pidfile"
}
