#!/usr/bin/env bash
# Start or stop a Docker engine (Debian's docker.io) by hand, for machines without systemd.
#
#   scripts/docker-engine.sh start   # ready when the API answers /_ping; a no-op if one runs
#   scripts/docker-engine.sh stop    # stops the engine only if `start` started it
#   scripts/docker-engine.sh status
#
# `start` records the daemon's pid in $SEAMLESS_DOCKERD_STATE (default
# /var/run/seamless-dockerd.pid) only when it started the daemon itself; `stop` acts only on
# that record, so an engine someone else runs is never touched. Root is required to start.
set -euo pipefail

sock="${SEAMLESS_DOCKER_SOCKET:-/var/run/docker.sock}"
state="${SEAMLESS_DOCKERD_STATE:-/var/run/seamless-dockerd.pid}"
log="${SEAMLESS_DOCKERD_LOG:-/var/log/seamless-dockerd.log}"
data_root="${SEAMLESS_DOCKER_DATA_ROOT:-/var/lib/docker}"
ready_timeout_s="${SEAMLESS_DOCKERD_READY_S:-60}"

say() { printf 'docker-engine: %s\n' "$*"; }
die() { printf 'docker-engine: %s\n' "$*" >&2; exit 1; }

api_answers() {
  [ -S "$sock" ] && [ "$(curl -fsS --max-time 2 --unix-socket "$sock" http://localhost/_ping 2>/dev/null)" = OK ]
}

owned_pid() {
  [ -f "$state" ] || return 1
  local pid; pid="$(cat "$state")"
  kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && echo "$pid"
}

start() {
  if api_answers; then
    say "an engine already answers on $sock"
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "starting dockerd needs root (no engine answers on $sock)"
  command -v dockerd >/dev/null || die "dockerd not found: run scripts/bootstrap.sh (or apt-get install -y docker.io containerd runc iptables)"
  if pid="$(owned_pid)"; then
    say "dockerd $pid (ours) is starting; waiting for it"
  else
    mkdir -p "$(dirname "$log")" "$data_root"
    # cgroupfs: these machines have no systemd; overlay2 on the host's ext4.
    setsid nohup dockerd \
      --data-root "$data_root" \
      --host "unix://$sock" \
      --exec-opt native.cgroupdriver=cgroupfs \
      --storage-driver overlay2 \
      --pidfile /var/run/seamless-dockerd.dockerd.pid \
      >>"$log" 2>&1 </dev/null &
    echo $! >"$state"
    say "started dockerd $! (log: $log)"
  fi
  local pid; pid="$(cat "$state")"
  local deadline=$((SECONDS + ready_timeout_s))
  until api_answers; do
    # Liveness by pid only: right after the fork the process is still `setsid`/`nohup` on
    # its way to exec'ing dockerd, so owned_pid's name check would call it dead (seen: a
    # start that failed while the dockerd it launched came up a moment later, unowned).
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$log" >&2
      rm -f "$state"
      die "dockerd exited before its API answered (log: $log)"
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "dockerd's API did not answer within ${ready_timeout_s}s (log: $log)"
    sleep 0.2
  done
  say "ready: API $(curl -fsS --unix-socket "$sock" http://localhost/version | sed -E 's/.*"ApiVersion":"([^"]+)".*/\1/')"
}

stop() {
  local pid
  if ! pid="$(owned_pid)"; then
    rm -f "$state"
    say "no dockerd started by this script is running; nothing to stop"
    return 0
  fi
  kill -TERM "$pid"
  # dockerd stops its containers first (up to their stop timeouts); wait for it to exit.
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { kill -KILL "$pid"; break; }
    sleep 0.2
  done
  rm -f "$state"
  say "stopped dockerd $pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if api_answers; then
      say "running on $sock$(pid="$(owned_pid)" && printf ' (started by this script, pid %s)' "$pid")"
    else
      say "not running"; exit 1
    fi
    ;;
  *) die "usage: $0 start|stop|status" ;;
esac
