#!/usr/bin/env bash
# Train on this machine's devices (one process).
#
#   launch/local.sh CONFIG WORKDIR [--config.KEY=VALUE ...]
#   launch/local.sh --dry-run configs/demo.py workdirs/demo --config.data.dir=data/demo  (prints the command)
#
# The train command starts itself on a fast allocator (pretrain_jax/host_memory.py).
set -euo pipefail

dry_run=0
if [[ "${1:-}" == "--dry-run" ]]; then dry_run=1; shift; fi
for arg in "$@"; do
  if [[ "$arg" == "--dry-run" ]]; then echo "--dry-run goes first, before the other arguments" >&2; exit 2; fi
done
if [[ $# -lt 2 ]]; then
  echo "usage: launch/local.sh [--dry-run] CONFIG WORKDIR [--config.KEY=VALUE ...]" >&2
  exit 2
fi
config=$1 workdir=$2
shift 2
python=${PYTHON:-$(dirname "$0")/../.venv/bin/python}
cmd=("$python" -m pretrain_jax train "--config=$config" "--workdir=$workdir" "$@")
if (( dry_run )); then
  printf '%q ' "${cmd[@]}"; echo
else
  exec "${cmd[@]}"
fi
