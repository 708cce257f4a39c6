#!/usr/bin/env bash
# Creates .tools/checkov-venv from requirements/checkov.lock. Idempotent: when the venv
# exists and was built from the same lock (hash stamp), it does nothing.
# checkov has its own venv because it pins packaging 23.2 and Pulumi needs packaging >= 26.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.tools/checkov-venv"
lock="$root/requirements/checkov.lock"
stamp="$venv/.lock-sha256"
want="$(sha256sum "$lock" | cut -d' ' -f1)"
if [[ -x "$venv/bin/checkov" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
# bootstrap.sh installs the pinned uv here (it is not expected on PATH).
uv="$root/.tools/bin/uv"
[[ -x "$uv" ]] || { echo "checkov-venv: $uv missing: run scripts/bootstrap.sh" >&2; exit 1; }
mkdir -p "$root/.tools"
"$uv" venv --quiet --allow-existing --python 3.11 "$venv"
"$uv" pip install --quiet --python "$venv/bin/python" -r "$lock"
echo "$want" > "$stamp"
