"""Grain over the packed ArrayRecord shards written by data_prep (format: data_prep/records.py).

Each process reads its own slice of a seeded global shuffle and yields numpy
batches of `global_batch / process_count` rows:

    tokens       [rows, seq_len] int32   padding replaced by 0
    segment_ids  [rows, seq_len] int32   1, 2, ... per document in the row; 0 is padding
    positions    [rows, seq_len] int32   restart at 0 at every document and every row

A mixed dataset (data_prep/mixture.py) is read as one seeded shuffle per source,
repeated, and interleaved by Grain in proportion to the sources' weights, so every
window of rows holds each source at its share.

The iterator's state (`get_state`/`set_state`) is saved in checkpoints, so a
resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import zlib

import grain
import jax
import ml_collections
import numpy as np

from data_prep import records
from pretrain_jax import sharding

Batch = dict[str, np.ndarray]


def segments_and_positions(rows: np.ndarray, eos_id: int) -> Batch:
    """Derives segment ids and positions from the end-of-document separators.

    A separator ends its document (it belongs to it), so the next token starts a new
    segment; PAD positions get segment 0.
    """
    rows = np.asarray(rows)
    length = rows.shape[-1]
    is_pad = rows == records.PAD
    ends = np.pad(rows[:, :-1] == eos_id, ((0, 0), (1, 0)))  # True where the previous token was a separator
    segment_ids = np.where(is_pad, 0, 1 + np.cumsum(ends, axis=1)).astype(np.int32)
    index = np.broadcast_to(np.arange(length), rows.shape)
    starts = np.maximum.accumulate(np.where(ends, index, 0), axis=1)
    return {"tokens": np.where(is_pad, 0, rows).astype(np.int32), "segment_ids": segment_ids,
            "positions": (index - starts).astype(np.int32)}


def check_compatible(metadata: records.DatasetMetadata, config: ml_collections.ConfigDict) -> None:
    """Fails early when the dataset and the model disagree."""
    if metadata.seq_len != config.seq_len:
        raise ValueError(f"dataset {config.data.dir} has sequences of {metadata.seq_len} tokens but "
                         f"config.seq_len={config.seq_len}; set --config.seq_len={metadata.seq_len}")
    if metadata.vocab_size > config.model.vocab_size:
        raise ValueError(f"the dataset's tokenizer has {metadata.vocab_size} tokens but "
                         f"config.model.vocab_size={config.model.vocab_size}; raise it to at least "
                         f"{metadata.vocab_size}")
    if config.objective == "masked_lm" and metadata.vocab_size >= config.model.vocab_size:
        raise ValueError(f"objective='masked_lm' uses id model.vocab_size - 1 as the mask token, so the model needs "
                         f"more ids than the tokenizer's {metadata.vocab_size}; set "
                         f"--config.model.vocab_size={metadata.vocab_size + 1}")


def _local_batch_size(global_batch_size: int) -> int:
    if global_batch_size % jax.process_count():
        raise ValueError(f"global_batch_size={global_batch_size} is not divisible by the "
                         f"{jax.process_count()} processes")
    return global_batch_size // jax.process_count()


def _source(metadata: records.DatasetMetadata, data_dir: str, split: str, source: str | None = None
            ) -> grain.MapDataset:
    paths = metadata.shard_paths(data_dir, split, source)
    return grain.MapDataset.source(grain.sources.ArrayRecordDataSource(paths))


def mixture_weights(config: ml_collections.ConfigDict, metadata: records.DatasetMetadata) -> dict[str, float]:
    """The train split's sampling weight per source: config.data.mixture_weights, else the dataset's.

    Empty for a split that is not mixed.
    """
    sources = metadata.mixture.get(config.data.train_split, {})
    if not sources and config.data.mixture_weights:
        raise ValueError(f"config.data.mixture_weights is set but split {config.data.train_split!r} of "
                         f"{config.data.dir} is not a mixture (prepare it with config.mixture)")
    if not config.data.mixture_weights:
        return {name: info.weight for name, info in sources.items()}
    return records.normalized_weights(config.data.mixture_weights, sources, "config.data.mixture_weights")


def _train_rows(config: ml_collections.ConfigDict, metadata: records.DatasetMetadata) -> grain.MapDataset:
    """Endless train rows: the split reshuffled every epoch, or each source so and mixed by weight."""
    def shuffled(ds: grain.MapDataset, seed: int) -> grain.MapDataset:
        return (ds.shuffle(seed=seed) if config.data.shuffle else ds).repeat()

    weights = {name: w for name, w in mixture_weights(config, metadata).items() if w > 0}
    if not weights:
        return shuffled(_source(metadata, config.data.dir, config.data.train_split), config.seed)
    # Each source its own order: a seed from the run's seed and the source's name.
    sources = [shuffled(_source(metadata, config.data.dir, config.data.train_split, name),
                        zlib.crc32(f"{config.seed}:{name}".encode())) for name in weights]
    return grain.MapDataset.mix(sources, list(weights.values()))


def _to_batch(eos_id: int):
    def to_batch(encoded_rows: list[bytes]) -> Batch:
        return segments_and_positions(np.stack([records.decode_sequence(r) for r in encoded_rows]), eos_id)

    return to_batch


def train_iterator(config: ml_collections.ConfigDict, metadata: records.DatasetMetadata) -> grain.DatasetIterator:
    """Endless, reshuffled every epoch (per source when mixed), sliced by process, batched."""
    ds = _train_rows(config, metadata)[jax.process_index()::jax.process_count()]
    ds = ds.batch(_local_batch_size(config.global_batch_size), drop_remainder=True,
                  batch_fn=_to_batch(metadata.eos_id))
    read = grain.ReadOptions(num_threads=config.data.num_threads, prefetch_buffer_size=config.data.prefetch)
    return ds.to_iter_dataset(read).__iter__()


def eval_batches(config: ml_collections.ConfigDict, metadata: records.DatasetMetadata):
    """One pass over the evaluation split in order, as full batches.

    Every process yields the same number of batches (collectives need that); rows
    past the end of the split are padding, which carries no targets.
    """
    ds = _source(metadata, config.data.dir, config.data.eval_split)
    num_batches = -(-len(ds) // config.global_batch_size)
    ds = ds[jax.process_index()::jax.process_count()]
    rows = _local_batch_size(config.global_batch_size)
    pad_row = np.full(metadata.seq_len, records.PAD, records.TOKEN_DTYPE).tobytes()
    to_batch = _to_batch(metadata.eos_id)
    for b in range(num_batches):
        encoded = [ds[i] for i in range(b * rows, min((b + 1) * rows, len(ds)))]
        yield to_batch(encoded + [pad_row] * (rows - len(encoded)))


def global_batch(local: Batch, mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
    """Assembles the global batch, sharded over data x fsdp, from each process's rows."""
    sh = sharding.batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sh, v) for k, v in local.items()}
