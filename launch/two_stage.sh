#!/usr/bin/env bash
# The two-stage example of docs/recipes.md: pretrain on one domain of the standard library, anneal on another
# from the step-500 checkpoint, and evaluate the pretraining run (before and after its own decay) and the
# anneal on both domains' held-out code. About 6 minutes on 2 CPU cores.
#
#   launch/two_stage.sh [OUTPUT_DIR]     (default workdirs/two_stage)
set -euo pipefail
out=${1:-workdirs/two_stage}
python=${PYTHON:-$(dirname "$0")/../.venv/bin/python}

"$python" -m data_prep prepare --config=configs/data/two_stage.py:general --config.output_dir="$out/data/general" \
  --config.overwrite=True
"$python" -m data_prep prepare --config=configs/data/two_stage.py:gui --config.output_dir="$out/data/gui" \
  --config.overwrite=True --config.tokenizer_model="$out/data/general/tokenizer.model"
rm -rf "$out/pretrain" "$out/anneal"
"$(dirname "$0")/local.sh" configs/two_stage.py:pretrain "$out/pretrain" --config.data.dir="$out/data/general"
"$(dirname "$0")/local.sh" configs/two_stage.py:anneal "$out/anneal" --config.data.dir="$out/data/gui" \
  --init_from="$out/pretrain@500"

echo
echo "held-out loss (nats per token) of each checkpoint on each domain:"
for run in pretrain@500 pretrain@600 anneal@100; do
  for domain in general gui; do
    loss=$("$python" -m pretrain_jax evaluate --workdir="$out/${run%@*}" --step="${run#*@}" \
             --data_dir="$out/data/$domain" | awk -F' [|] ' '/validation split/ {print $4}')
    echo "  $run on $domain: $loss"
  done
done
