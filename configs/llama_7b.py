"""Llama 7B from the Llama table (configs/llama.py).

    pretrain-jax train --config=configs/llama_7b.py --workdir=gs://BUCKET/llama_7b \
        --config.data.dir=/mnt/BUCKET/data  # gs://BUCKET/data mounted with gcsfuse
"""

from configs.llama import get_llama_config


def get_config():
    return get_llama_config("7b")
