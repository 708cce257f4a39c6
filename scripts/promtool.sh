#!/usr/bin/env bash
# Builds promtool (Prometheus' rule checker) from the Go module proxy into .tools/bin.
# Pinned; idempotent: a second run with the binary present and at the right version is a no-op.
set -euo pipefail
PROMETHEUS_MODULE_VERSION="${PROMETHEUS_MODULE_VERSION:-v0.316.0}"   # = Prometheus 3.16.0
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.tools/bin"
stamp="$bin/.promtool-$PROMETHEUS_MODULE_VERSION"
if [[ -x "$bin/promtool" && -f "$stamp" ]]; then
  exit 0
fi
mkdir -p "$bin"
GOBIN="$bin" CGO_ENABLED=0 go install \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
touch "$stamp"
