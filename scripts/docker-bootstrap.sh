#!/usr/bin/env bash
# Installs what the engine tests need to run the dev stack's containers on a real Docker
# engine: Debian's docker.io (+ containerd, runc, iptables) and mmdebstrap (the images'
# Debian roots). Idempotent: a no-op when all are installed. The engine itself is started
# by scripts/docker-engine.sh (by the tests' fixture), not here.
set -euo pipefail

say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v containerd >/dev/null 2>&1 || missing+=(containerd)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
[ "${#missing[@]}" -eq 0 ] && exit 0

[ "$(id -u)" = 0 ] || die "missing ${missing[*]} and not root: run 'sudo apt-get install -y --no-install-recommends ${missing[*]}'"
say "installing ${missing[*]} from Debian"
log="$(mktemp)"
# RUNLEVEL=1: the packages must not start a system-wide daemon (the tests start their own).
if ! { apt-get update && env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
    apt-get install -y -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  die "could not install ${missing[*]} (log: $log)"
fi
rm -f "$log"
