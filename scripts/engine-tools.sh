#!/usr/bin/env bash
# Builds the real-engine tools from the Go module proxy: the Pulumi CLI, its Kubernetes
# provider, etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok. Each
# binary is cached by version outside the clone (SEAMLESS_TOOL_CACHE, default
# ~/.cache/seamless-stack/tools), so a fresh clone on the same machine reuses it; .tools/bin
# only links to the cache.
# Cold, this is about an hour of two cores; warm, well under a second.
# Usage: engine-tools.sh [TOOL ...]   (default: all of them)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=versions.env
source "$root/scripts/versions.env"
cache="${SEAMLESS_TOOL_CACHE:-$HOME/.cache/seamless-stack/tools}"
bin="$root/.tools/bin"
logs="$root/.tools/logs"
mkdir -p "$cache" "$bin" "$logs"

say() { printf 'engine-tools: %s\n' "$*"; }
die() { printf 'engine-tools: %s\n' "$*" >&2; exit 1; }
command -v go >/dev/null 2>&1 || die "Go not found: install a Go >= $GO_MIN_VERSION toolchain (apt-get install -y golang-go is too old for the Pulumi CLI)"
go_version="$(go env GOVERSION)"; go_version="${go_version#go}"
[ "$(printf '%s\n%s\n' "$GO_MIN_VERSION" "$go_version" | sort -V | head -n1)" = "$GO_MIN_VERSION" ] \
  || die "Go $GO_MIN_VERSION+ required (the Pulumi CLI's go.mod), found $go_version: install a newer Go toolchain"
command -v python3 >/dev/null 2>&1 || die "python3 not found: apt-get install -y python3"
command -v flock >/dev/null 2>&1 || die "flock not found: apt-get install -y util-linux"
# lab/kube.py makes the API server's service-account key with it.
command -v openssl >/dev/null 2>&1 || die "openssl not found: apt-get install -y openssl"

# Copies a module out of the module cache into a writable build directory and prints its path.
module_copy() {  # module version
  local dir work
  dir="$(go mod download -json "$1@$2" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error","no Dir")))')" \
    || die "the Go module proxy refused $1@$2"
  work="$(mktemp -d "${TMPDIR:-/tmp}/engine-tools.XXXXXX")"
  cp -r "$dir/." "$work/"
  chmod -R u+w "$work"
  printf '%s\n' "$work"
}

# Builds a tool once per version into the cache (atomically: a half-built binary never lands)
# and links it into .tools/bin.  name version build-function
cached() {
  local name="$1" version="$2" build="$3"
  local dest="$cache/$name-$version/$name"
  # Two checkouts bootstrapping at once build each tool once: the second waits here.
  exec {lock}>"$cache/.$name-$version.lock"
  flock "$lock"
  if [ ! -x "$dest" ]; then
    say "building $name $version (log: $logs/$name.log)"
    local start=$SECONDS tmp
    tmp="$(mktemp "$cache/.$name.XXXXXX")"
    if ! "$build" "$tmp" >"$logs/$name.log" 2>&1; then
      rm -f "$tmp"
      tail -n 20 "$logs/$name.log" >&2
      die "$name $version failed to build (full log: $logs/$name.log)"
    fi
    mkdir -p "$(dirname "$dest")"
    chmod +x "$tmp"
    mv "$tmp" "$dest"
    say "built $name $version in $((SECONDS - start)) s"
  fi
  exec {lock}>&-
  ln -sfn "$dest" "$bin/$name"
}

build_etcd() {
  local work; work="$(mktemp -d)"
  cat >"$work/main.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  (cd "$work" && go mod init seamless/etcd && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" \
    && go mod tidy && CGO_ENABLED=0 go build -trimpath -o "$1" .)
  rm -rf "$work"
}

# k8s.io/kubernetes points its staging modules at ./staging; the proxy serves them as v0.x.
kubernetes_module() {
  local work; work="$(module_copy k8s.io/kubernetes "$KUBERNETES_VERSION")"
  rm -f "$work/go.work" "$work/go.work.sum"
  local staging="v0${KUBERNETES_VERSION#v1}" edits=()
  while read -r mod; do
    edits+=("-dropreplace=$mod" "-require=$mod@$staging")
  done < <(awk '$2 == "=>" && $3 ~ /^\.\/staging/ {print $1}' "$work/go.mod")
  (cd "$work" && go mod edit "${edits[@]}")
  printf '%s\n' "$work"
}
kubernetes_ldflags() {
  local v="$KUBERNETES_VERSION" minor
  minor="$(cut -d. -f2 <<<"$v")"
  local p=k8s.io/component-base/version
  printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean' \
    "$p" "$v" "$p" "$p" "$minor" "$p"
}
build_kube_apiserver() {
  local work; work="$(kubernetes_module)"
  (cd "$work" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$(kubernetes_ldflags)" -o "$1" ./cmd/kube-apiserver)
  rm -rf "$work"
}
build_kube_controller_manager() {
  local work; work="$(kubernetes_module)"
  (cd "$work" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$(kubernetes_ldflags)" -o "$1" ./cmd/kube-controller-manager)
  rm -rf "$work"
}

build_kube_scheduler() {
  local work; work="$(kubernetes_module)"
  (cd "$work" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$(kubernetes_ldflags)" -o "$1" ./cmd/kube-scheduler)
  rm -rf "$work"
}

build_kwok() {
  local gobin; gobin="$(mktemp -d)"
  GOBIN="$gobin" CGO_ENABLED=0 go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  mv "$gobin/kwok" "$1"
  rm -rf "$gobin"
}

# pkg/v3 replaces sdk/v3 with ../sdk, which `go install` refuses: build a copy without it.
build_pulumi() {
  local work; work="$(module_copy github.com/pulumi/pulumi/pkg/v3 "$PULUMI_VERSION")"
  (cd "$work" \
    && go mod edit -dropreplace=github.com/pulumi/pulumi/sdk/v3 "-require=github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" \
    && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
      -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
      -o "$1" ./cmd/pulumi)
  rm -rf "$work"
}

# The proxy serves only a January 2026 snapshot of provider/v4; we stamp it with the version
# of the pulumi_kubernetes Python package it is used with (its schema is embedded at build
# time, and the engine matches plugin and SDK by that version).
build_pulumi_kubernetes() {
  local work; work="$(module_copy github.com/pulumi/pulumi-kubernetes/provider/v4 "$PULUMI_KUBERNETES_MODULE")"
  local cmd="$work/cmd/pulumi-resource-kubernetes"
  python3 - "$cmd" "$PULUMI_KUBERNETES_VERSION" <<'EOF'
import json, pathlib, sys
cmd, version = pathlib.Path(sys.argv[1]), sys.argv[2]
schema = json.loads((cmd / "schema.json").read_text())
schema["version"] = version
(cmd / "schema-embed.json").write_text(json.dumps(schema))
mapping = json.loads((cmd / "terraform-mapping.json").read_text())
(cmd / "terraform-mapping-embed.json").write_text(json.dumps(mapping))
EOF
  (cd "$work" \
    && go mod edit -dropreplace=github.com/pulumi/pulumi-kubernetes/sdk/v4 \
    && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
      -ldflags "-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PULUMI_KUBERNETES_VERSION" \
      -o "$1" ./cmd/pulumi-resource-kubernetes)
  rm -rf "$work"
}

declare -A builders=(
  [etcd]="$ETCD_VERSION build_etcd"
  [kube-apiserver]="$KUBERNETES_VERSION build_kube_apiserver"
  [kube-controller-manager]="$KUBERNETES_VERSION build_kube_controller_manager"
  [kube-scheduler]="$KUBERNETES_VERSION build_kube_scheduler"
  [kwok]="$KWOK_VERSION build_kwok"
  [pulumi]="$PULUMI_VERSION build_pulumi"
  [pulumi-resource-kubernetes]="$PULUMI_KUBERNETES_VERSION build_pulumi_kubernetes"
)
order=(etcd kwok kube-apiserver kube-controller-manager kube-scheduler pulumi pulumi-resource-kubernetes)
[ "$#" -gt 0 ] && order=("$@")
for name in "${order[@]}"; do
  [ -n "${builders[$name]:-}" ] || die "unknown tool '$name' (known: ${!builders[*]})"
  read -r version fn <<<"${builders[$name]}"
  cached "$name" "$version" "$fn"
done
