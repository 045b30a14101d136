"""Llama 13B from the Llama table (configs/llama.py).

    pretrain-jax train --config=configs/llama_13b.py --workdir=gs://BUCKET/llama_13b \
        --config.data.dir=/mnt/BUCKET/data  # gs://BUCKET/data mounted with gcsfuse
"""

from configs.llama import get_llama_config


def get_config():
    return get_llama_config("13b")
