#!/usr/bin/env bash
# Installs everything the tests and the lab need into the git-ignored .tools/ and .venv/:
# the pinned Python environment, Redis (Debian), toxiproxy and MinIO (go install), the
# QuestDB server jar (Maven Central), the Apicurio schema registry (Maven Central, built by
# scripts/registry.sh), and the real-engine tools (scripts/engine-tools.sh).
# Idempotent: each step leaves a stamp named after its pinned version, so a second run with
# nothing changed takes seconds.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
stamps="$tools/stamps"
# shellcheck source=versions.env
source "$root/scripts/versions.env"
mkdir -p "$tools/bin" "$stamps" "$tools/logs"

say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
stamped() { [ -f "$stamps/$1" ]; }
stamp() { touch "$stamps/$1"; }
# Run a step quietly, keeping its log; on failure show the log's tail and name the step.
run_logged() {
  local name="$1"; shift
  local log="$tools/logs/$name.log"
  if ! "$@" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "$name failed (full log: $log)"
  fi
}

# `apt-get update` once per bootstrap, and only when something is to be installed.
apt_updated=""
apt_update() {
  [ -n "$apt_updated" ] || { run_logged apt-get-update apt-get update; apt_updated=1; }
}

# --- prerequisites: one line each, naming what is missing and how to get it ----------------
have python3.11 || have python3 || die "Python 3.11 not found: install it (e.g. apt-get install -y python3.11 python3.11-venv)"
python_bin="$(command -v python3.11 || command -v python3)"
"$python_bin" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || die "Python 3.11 required, found $("$python_bin" --version 2>&1): install python3.11"
have go || die "Go not found: install it (apt-get install -y golang-go, or a Go >= 1.24 toolchain)"
have java || die "Java $JAVA_MIN_MAJOR+ not found: install it (apt-get install -y openjdk-17-jre-headless)"
java_major="$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}' | cut -d. -f1)"
[ "${java_major:-0}" -ge "$JAVA_MIN_MAJOR" ] || die "Java $JAVA_MIN_MAJOR+ required, found $java_major: install openjdk-17-jre-headless"
have mvn || die "Maven not found (it fetches the QuestDB jar from Maven Central): apt-get install -y maven"

# --- Python environment ---------------------------------------------------------------------
if ! stamped "uv-$UV_VERSION"; then
  say "installing uv $UV_VERSION"
  run_logged uv "$python_bin" -m venv "$tools/uv-venv"
  run_logged uv "$tools/uv-venv/bin/pip" install --quiet "uv==$UV_VERSION"
  ln -sf "$tools/uv-venv/bin/uv" "$tools/bin/uv"
  stamp "uv-$UV_VERSION"
fi
uv="$tools/bin/uv"
lock_sum="$(sha256sum "$root/requirements/lock.txt" | cut -c1-16)"
if [ ! -x "$root/.venv/bin/python" ] || ! stamped "venv-$lock_sum"; then
  say "installing the pinned Python environment into .venv"
  [ -x "$root/.venv/bin/python" ] || run_logged venv "$uv" venv --quiet --python "$python_bin" "$root/.venv"
  (cd "$root" && run_logged venv "$uv" pip sync --python "$root/.venv/bin/python" requirements/lock.txt) \
    || die "could not install Python packages: is PyPI reachable?"
  rm -f "$stamps"/venv-*
  stamp "venv-$lock_sum"
fi

# --- Redis and Redis Sentinel from Debian ----------------------------------------------------
redis_ok() {
  have redis-server && have redis-sentinel \
    && [ "$(redis-server --version | sed -E 's/.* v=([0-9]+).*/\1/')" -ge "$REDIS_MIN_MAJOR" ]
}
if ! redis_ok; then
  [ "$(id -u)" = 0 ] || die "redis-server >= $REDIS_MIN_MAJOR or redis-sentinel not found and not root: run 'sudo apt-get update && sudo apt-get install -y redis-server redis-sentinel'"
  say "installing redis-server and redis-sentinel from Debian"
  # RUNLEVEL=1 keeps the packages from starting system-wide servers: tests start their own.
  apt_update
  run_logged apt-get-redis env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
    apt-get install -y --no-install-recommends redis-server redis-sentinel
  redis_ok || die "redis-server >= $REDIS_MIN_MAJOR or redis-sentinel still missing after apt-get install"
fi
ln -sf "$(command -v redis-server)" "$tools/bin/redis-server"
ln -sf "$(command -v redis-sentinel)" "$tools/bin/redis-sentinel"

# --- stress-ng from Debian (the noisy neighbour of `make test-noisy`) -------------------------
if ! have stress-ng; then
  [ "$(id -u)" = 0 ] || die "stress-ng not found and not root: run 'sudo apt-get install -y stress-ng'"
  say "installing stress-ng from Debian"
  apt_update
  run_logged apt-get-stress-ng env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends stress-ng
fi

# --- Go-built servers -----------------------------------------------------------------------
go_install() {  # name version module binary-name-go-gives-it
  local name="$1" version="$2" module="$3" built="$4"
  # The stamp carries the version, so bumping versions.env rebuilds.
  if ! stamped "$name-$version" || [ ! -x "$tools/bin/$name" ]; then
    say "building $name $version with go install"
    local gobin; gobin="$(mktemp -d)"
    run_logged "$name" env GOBIN="$gobin" GOFLAGS=-buildvcs=false go install "$module@$version" \
      || die "could not build $name: is the Go module proxy reachable?"
    mv "$gobin/$built" "$tools/bin/$name"
    rm -rf "$gobin" "$stamps/$name"-*
    stamp "$name-$version"
  fi
}
go_install toxiproxy-server "$TOXIPROXY_VERSION" github.com/Shopify/toxiproxy/v2/cmd/server server
go_install minio "$MINIO_VERSION" github.com/minio/minio minio

# --- QuestDB from Maven Central -------------------------------------------------------------
questdb_jar="$tools/questdb/questdb-$QUESTDB_VERSION.jar"
if [ ! -f "$questdb_jar" ]; then
  say "fetching QuestDB $QUESTDB_VERSION from Maven Central"
  mkdir -p "$tools/questdb"
  run_logged questdb mvn -B -q dependency:copy \
    "-Dartifact=org.questdb:questdb:$QUESTDB_VERSION:jar" "-DoutputDirectory=$tools/questdb"
fi
ln -sf "$questdb_jar" "$tools/questdb/questdb.jar"

# --- Apicurio Registry from Maven Central (the schema registry of the tests and the lab) ----
# Built once per version into ~/.cache/seamless-stack/tools (about two minutes cold, 20 s with
# a warm ~/.m2) and linked at .tools/apicurio; warm, this takes well under a second.
bash "$root/scripts/registry.sh" || die "the Apicurio schema registry did not build (see the registry line above)"

# --- Docker engine + mmdebstrap (the engine tests' dev stack on a real dockerd) -------------
bash "$root/scripts/docker-bootstrap.sh" || die "could not install the Docker engine packages"

# --- checkov in a virtualenv of its own (its pins clash with Pulumi's) -----------------------
run_logged checkov-venv bash "$root/scripts/checkov-venv.sh" \
  || die "could not install checkov's virtualenv: is PyPI reachable?"

# --- real-engine tools: the Pulumi CLI, its Kubernetes provider, a Kubernetes control plane --
# Built from the Go module proxy once per version into ~/.cache/seamless-stack/tools (about
# an hour of two cores, cold) and linked into .tools/bin; warm, this takes under a second.
bash "$root/scripts/engine-tools.sh" \
  || die "the real-engine tools did not build (see the engine-tools line above)"

say "ready: $("$tools/bin/redis-server" --version | cut -d' ' -f3), toxiproxy $TOXIPROXY_VERSION, minio $MINIO_VERSION, questdb $QUESTDB_VERSION, apicurio registry $APICURIO_VERSION"
