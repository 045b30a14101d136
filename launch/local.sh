#!/usr/bin/env bash
# Train on this machine's devices (one process).
#
#   launch/local.sh CONFIG WORKDIR [--config.KEY=VALUE ...]
#   launch/local.sh --dry-run configs/demo.py workdirs/demo --config.data.dir=data/demo
#     (prints the allocator's exports, if any, and the command)
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
# On jemalloc when installed: XLA's CPU runtime would otherwise page-fault every step's
# temporaries back in (pretrain_jax/host_memory.py).
allocator=$("$python" -m pretrain_jax.host_memory)
eval "$allocator"
cmd=("$python" -m pretrain_jax.train "--config=$config" "--workdir=$workdir" "$@")
if (( dry_run )); then
  if [[ -n "$allocator" ]]; then echo "$allocator"; fi
  printf '%q ' "${cmd[@]}"; echo
else
  exec "${cmd[@]}"
fi
