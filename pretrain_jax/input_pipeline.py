"""Batches from the packed ArrayRecord shards written by data_prep (format: pretrain_common/records.py).

Each process yields numpy batches of `global_batch / process_count` rows:

    tokens       [rows, seq_len] int32   padding replaced by 0
    segment_ids  [rows, seq_len] int32   1, 2, ... per document in the row; 0 is padding
    positions    [rows, seq_len] int32   restart at 0 at every document and every row

Which rows training reads, step by step, is pretrain_jax/train_data.py; validation
reads its split in order (`eval_batches`). `global_batch` puts a batch on the mesh.
"""

from __future__ import annotations

import os

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from pretrain_common import records
from pretrain_common import tokenizer as tokenizer_lib
from pretrain_common.errors import ConfigError
from pretrain_jax import sharding

Batch = dict[str, np.ndarray]


def segments_and_positions(rows: np.ndarray, eos_id: int) -> Batch:
    """Derives segment ids and positions from the end-of-document separators.

    A separator ends its document (it belongs to it), so the next token starts a new
    segment; PAD positions get segment 0. int32 and in place throughout: the host runs
    this for every batch (benchmarks/input_pipeline.py).
    """
    rows = np.asarray(rows)
    is_pad = rows == records.PAD
    ends = np.zeros(rows.shape, bool)  # True where the previous token was a separator
    ends[:, 1:] = rows[:, :-1] == eos_id
    segment_ids = np.cumsum(ends, axis=1, dtype=np.int32)
    segment_ids += 1
    segment_ids[is_pad] = 0
    index = np.arange(rows.shape[-1], dtype=np.int32)
    starts = np.maximum.accumulate(ends * index, axis=1)  # each token's segment start
    return {"tokens": np.where(is_pad, 0, rows).astype(np.int32, copy=False), "segment_ids": segment_ids,
            "positions": index - starts}


def check_compatible(metadata: records.DatasetMetadata, config: ml_collections.ConfigDict) -> None:
    """Fails early when the dataset and the model disagree."""
    if metadata.seq_len != config.seq_len:
        raise ConfigError(f"dataset {config.data.dir} has sequences of {metadata.seq_len} tokens but "
                         f"config.seq_len={config.seq_len}; set --config.seq_len={metadata.seq_len}")
    if metadata.vocab_size > config.model.vocab_size:
        raise ConfigError(f"the dataset's tokenizer has {metadata.vocab_size} tokens but "
                         f"config.model.vocab_size={config.model.vocab_size}; raise it to at least "
                         f"{metadata.vocab_size}")
    if config.objective == "masked_lm" and metadata.vocab_size >= config.model.vocab_size:
        raise ConfigError(f"objective='masked_lm' uses id model.vocab_size - 1 as the mask token, so the model needs "
                         f"more ids than the tokenizer's {metadata.vocab_size}; set "
                         f"--config.model.vocab_size={metadata.vocab_size + 1}")


SAMPLED_ROWS = 8  # rows read from each shard by check_shards: its first, its last and evenly between


def check_shards(data_dir: str, metadata: records.DatasetMetadata, splits: list[str]) -> None:
    """Fails before the first step, naming the file, on a shard of `splits` that is missing or unreadable, whose
    records are not seq_len int32 rows, or whose sampled rows hold ids outside the dataset's tokenizer.model
    (shards of another tokenizer): each would otherwise stop the run later, or train on garbage silently."""
    tokenizer = os.path.join(data_dir, metadata.tokenizer)
    try:
        vocab = tokenizer_lib.load_tokenizer(tokenizer).get_piece_size()
    except (OSError, RuntimeError) as e:
        raise ConfigError(f"{tokenizer} is not a readable SentencePiece model ({e}): prepare the dataset again") \
            from None
    row_bytes = metadata.seq_len * records.TOKEN_DTYPE.itemsize
    for split in splits:
        for path in metadata.shard_paths(data_dir, split):
            try:
                source = grain.sources.ArrayRecordDataSource([path])
                rows = np.unique(np.linspace(0, len(source) - 1, SAMPLED_ROWS).round()) if len(source) else []
                sample = [source[int(i)] for i in rows]
            except Exception as e:  # array_record raises RuntimeError, or OSError, ValueError, ... per fault
                reason = "it does not exist" if not os.path.exists(path) else f"it cannot be read: {e}"
                raise ConfigError(f"shard {path} of split {split!r}: {reason}; prepare the dataset again (or restore "
                                  "the file)") from None
            for record in sample:
                if len(record) != row_bytes:
                    raise ConfigError(f"shard {path} holds records of {len(record)} bytes, not {metadata.seq_len} "
                                      f"int32 tokens ({row_bytes} bytes) as {data_dir}/{records.METADATA_FILE} says: "
                                      "it is not a shard of this dataset; prepare the dataset again")
                ids = records.decode_sequence(record)
                outside = ids[(ids < records.PAD) | (ids >= vocab)]
                if outside.size:
                    raise ConfigError(f"shard {path} holds token id {int(outside[0])}, outside the {vocab} ids of "
                                      f"{tokenizer}: it was tokenized with another tokenizer; prepare it again with "
                                      f"--config.tokenizer_model={tokenizer}")


def local_batch_size(global_batch_size: int) -> int:
    """This process's rows of a global batch."""
    if global_batch_size % jax.process_count():
        raise ConfigError(f"global_batch_size={global_batch_size} is not divisible by the "
                          f"{jax.process_count()} processes")
    return global_batch_size // jax.process_count()


def rows_to_batch(encoded_rows: list[bytes], eos_id: int) -> Batch:
    """Records (pretrain_common/records.py) -> a batch of tokens, segment ids and positions."""
    return segments_and_positions(np.stack([records.decode_sequence(r) for r in encoded_rows]), eos_id)


def eval_batches(config: ml_collections.ConfigDict, metadata: records.DatasetMetadata):
    """One pass over the evaluation split in order, as full batches.

    Every process yields the same number of batches (collectives need that); rows
    past the end of the split are padding, which carries no targets.
    """
    ds = grain.MapDataset.source(grain.sources.ArrayRecordDataSource(
        metadata.shard_paths(config.data.dir, config.data.eval_split)))
    num_batches = -(-len(ds) // config.global_batch_size)
    ds = ds[jax.process_index()::jax.process_count()]
    rows = local_batch_size(config.global_batch_size)
    pad_row = np.full(metadata.seq_len, records.PAD, records.TOKEN_DTYPE).tobytes()
    for b in range(num_batches):
        encoded = [ds[i] for i in range(b * rows, min((b + 1) * rows, len(ds)))]
        yield rows_to_batch(encoded + [pad_row] * (rows - len(encoded)), metadata.eos_id)


def microbatches(batch: dict[str, jax.Array], count: int) -> dict[str, jax.Array]:
    """[rows, ...] -> [count, rows/count, ...]; microbatch m takes rows m, m+count, ...

    Strided rows keep every microbatch spread over all data-parallel devices.
    """
    return jax.tree.map(lambda x: jnp.swapaxes(x.reshape(-1, count, *x.shape[1:]), 0, 1), batch)


def global_batch(local: Batch, mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
    """Assembles the global batch, sharded over data x fsdp, from each process's rows.

    One call for the whole dict: on one process it is one batched device_put. The global
    shape is given, so a mesh whose batch shards two processes would share (each loads
    its own rows) is an error here rather than a silently inconsistent batch.
    """
    rows, length = next(iter(local.values())).shape
    shape = (rows * jax.process_count(), length)
    return jax.make_array_from_process_local_data(sharding.batch_sharding(mesh), local, global_shape=shape)
