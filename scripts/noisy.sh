#!/usr/bin/env bash
# Runs a command with a noisy neighbour: stress-ng keeps one CPU hog per core busy beside it
# (2x CPU oversubscription), bounded in time, stopped when the command ends.
# Usage: scripts/noisy.sh COMMAND [ARGS...]
set -euo pipefail
command -v stress-ng >/dev/null 2>&1 || {
  echo "noisy: stress-ng not found: run 'make bootstrap' (apt-get install -y stress-ng)" >&2
  exit 1
}
cpus="$(nproc)"
# Bounded even if this script is killed before its trap runs: CI's limit is 90 minutes.
stress-ng --cpu "$cpus" --timeout "${NOISY_TIMEOUT:-90m}" --quiet &
hog=$!
trap 'kill "$hog" 2>/dev/null || true; wait "$hog" 2>/dev/null || true' EXIT
echo "noisy: stress-ng --cpu $cpus (pid $hog) beside: $*; load $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
"$@" || status=$?
echo "noisy: done (exit $status); load $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
