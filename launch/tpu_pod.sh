#!/usr/bin/env bash
# Train on a Cloud TPU pod slice: create the TPU VM slice (or reuse it), copy this checkout to every
# worker, install it with libtpu, and run the same training command on all workers at once.
# jax.distributed joins the workers; a maintenance event sends SIGTERM, the run checkpoints and
# exits 0, and running this script again resumes it.
#
#   launch/tpu_pod.sh [--dry-run] NAME ZONE TYPE CONFIG WORKDIR [--config.KEY=VALUE ...]
#   launch/tpu_pod.sh --dry-run llama7b us-east5-a v5p-128 configs/llama_7b.py gs://bucket/runs/llama7b \
#       --config.data.dir=/mnt/bucket/data
#
# RUNTIME (default v2-alpha-tpuv5) picks the TPU VM image; WORKER_PYTHON (default python3.12) the workers'
# Python, 3.12 or later (jax 0.12), which the image may need installed. Every worker must see the same files:
# WORKDIR on GCS, the data on local disk or a GCS bucket mounted at the same path on every worker
# (gcsfuse: ArrayRecord shards are read as local files).
set -euo pipefail

dry_run=0
if [[ "${1:-}" == "--dry-run" ]]; then dry_run=1; shift; fi
for arg in "$@"; do
  if [[ "$arg" == "--dry-run" ]]; then echo "--dry-run goes first, before the other arguments" >&2; exit 2; fi
done
if [[ $# -lt 5 ]]; then
  echo "usage: launch/tpu_pod.sh [--dry-run] NAME ZONE TYPE CONFIG WORKDIR [--config.KEY=VALUE ...]" >&2
  exit 2
fi
name=$1 zone=$2 type=$3 config=$4 workdir=$5
shift 5
runtime=${RUNTIME:-v2-alpha-tpuv5}
worker_python=${WORKER_PYTHON:-python3.12}
repo=$(cd "$(dirname "$0")/.." && pwd)

run() {  # prints the command; runs it unless --dry-run
  printf '%q ' "$@"; echo
  if (( ! dry_run )); then "$@"; fi
}

tpu=(gcloud compute tpus tpu-vm)
if (( dry_run )) || ! "${tpu[@]}" describe "$name" --zone="$zone" >/dev/null 2>&1; then
  run "${tpu[@]}" create "$name" --zone="$zone" --accelerator-type="$type" --version="$runtime"
fi
archive=/tmp/pretrain-jax-$$.tar.gz
run git -C "$repo" archive --format=tar.gz --prefix=pretrain-jax/ -o "$archive" HEAD
run "${tpu[@]}" scp "$archive" "$name:pretrain-jax.tar.gz" --zone="$zone" --worker=all
run "${tpu[@]}" ssh "$name" --zone="$zone" --worker=all --command="rm -rf pretrain-jax && tar xzf pretrain-jax.tar.gz \
&& cd pretrain-jax && $worker_python -m venv .venv && .venv/bin/pip install --quiet -e '.[tpu]'"
train="cd pretrain-jax && .venv/bin/python -m pretrain_jax train --distributed=on"
for arg in "--config=$config" "--workdir=$workdir" "$@"; do train+=" $(printf '%q' "$arg")"; done
run "${tpu[@]}" ssh "$name" --zone="$zone" --worker=all --command="$train"
