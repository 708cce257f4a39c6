#!/usr/bin/env bash
# Builds Apicurio Registry (the real Confluent-compatible schema registry of the tests and the
# lab, lab/registry.py) from Maven Central: lab/apicurio/pom.xml has the quarkus-maven-plugin
# turn the apicurio-registry-app library into a runnable server. Cached by version and pom
# outside the clone (SEAMLESS_TOOL_CACHE, default ~/.cache/seamless-stack/tools), so a fresh
# clone on the same machine reuses it; .tools/apicurio only links to the cache.
# Cold (empty ~/.m2), about a minute; warm, well under a second.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=versions.env
source "$root/scripts/versions.env"
cache="${SEAMLESS_TOOL_CACHE:-$HOME/.cache/seamless-stack/tools}"
tools="$root/.tools"
logs="$tools/logs"
mkdir -p "$cache" "$logs"

say() { printf 'registry: %s\n' "$*"; }
die() { printf 'registry: %s\n' "$*" >&2; exit 1; }
command -v mvn >/dev/null 2>&1 || die "Maven not found: apt-get install -y maven"
command -v java >/dev/null 2>&1 || die "Java not found: apt-get install -y openjdk-17-jre-headless"
command -v flock >/dev/null 2>&1 || die "flock not found: apt-get install -y util-linux"

pom="$root/lab/apicurio/pom.xml"
pom_sum="$(sha256sum "$pom" | cut -c1-8)"
name="apicurio-registry-$APICURIO_VERSION-$pom_sum"
dest="$cache/$name"
# Two checkouts bootstrapping at once build it once: the second waits here.
exec {lock}>"$cache/.$name.lock"
flock "$lock"
if [ ! -f "$dest/apicurio-registry-runner.jar" ]; then
  say "building Apicurio Registry $APICURIO_VERSION on Quarkus $APICURIO_QUARKUS_VERSION (log: $logs/apicurio-registry.log)"
  start=$SECONDS
  work="$(mktemp -d "$cache/.$name.XXXXXX")"
  cp "$pom" "$work/pom.xml"
  if ! mvn -B -f "$work/pom.xml" package \
      "-Dapicurio.version=$APICURIO_VERSION" "-Dquarkus.version=$APICURIO_QUARKUS_VERSION" \
      >"$logs/apicurio-registry.log" 2>&1; then
    rm -rf "$work"
    tail -n 20 "$logs/apicurio-registry.log" >&2
    die "Apicurio Registry $APICURIO_VERSION failed to build (full log: $logs/apicurio-registry.log): is Maven Central reachable?"
  fi
  # The runner jar finds its libraries through relative Class-Path entries: keep both.
  mkdir "$work/out"
  mv "$work/target/apicurio-registry-runner.jar" "$work/target/lib" "$work/out/"
  rm -rf "$dest"
  mv "$work/out" "$dest"
  rm -rf "$work"
  say "built Apicurio Registry $APICURIO_VERSION in $((SECONDS - start)) s"
fi
exec {lock}>&-
ln -sfn "$dest" "$tools/apicurio"
