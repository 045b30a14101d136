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
import jax.numpy as jnp
import ml_collections
import numpy as np

from data_prep import records
from data_prep.errors import ConfigError
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


def _local_batch_size(global_batch_size: int) -> int:
    if global_batch_size % jax.process_count():
        raise ConfigError(f"global_batch_size={global_batch_size} is not divisible by the "
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
        raise ConfigError(f"config.data.mixture_weights is set but split {config.data.train_split!r} of "
                         f"{config.data.dir} is not a mixture (prepare it with config.mixture)")
    if not config.data.mixture_weights:
        return {name: info.weight for name, info in sources.items()}
    return records.normalized_weights(config.data.mixture_weights, sources, "config.data.mixture_weights")


def _train_rows(config: ml_collections.ConfigDict, metadata: records.DatasetMetadata
                ) -> tuple[grain.MapDataset, grain.sources.ArrayRecordDataSource]:
    """Endless train row numbers, and the one reader of the train shards they index.

    The split reshuffled every epoch, or each source so and mixed by weight. Rows are
    numbers until a batch reads them (`_read_batch`): Grain's per-row work on a number
    costs half what it costs on a record source, and the batches are the same.
    """
    def shuffled(ds: grain.MapDataset, seed: int) -> grain.MapDataset:
        return (ds.shuffle(seed=seed) if config.data.shuffle else ds).repeat()

    split = config.data.train_split
    weights = {name: w for name, w in mixture_weights(config, metadata).items() if w > 0}
    if not weights:
        reader = grain.sources.ArrayRecordDataSource(metadata.shard_paths(config.data.dir, split))
        return shuffled(grain.MapDataset.range(len(reader)), config.seed), reader
    # The sources' shards end to end in one reader: source k's rows are numbered from its offset.
    paths = [metadata.shard_paths(config.data.dir, split, name) for name in weights]
    sizes = [len(grain.sources.ArrayRecordDataSource(source_paths)) for source_paths in paths]
    offsets = np.cumsum([0, *sizes[:-1]]).tolist()
    # Each source its own order: a seed from the run's seed and the source's name.
    sources = [shuffled(grain.MapDataset.range(offset, offset + size), zlib.crc32(f"{config.seed}:{name}".encode()))
               for name, offset, size in zip(weights, offsets, sizes)]
    reader = grain.sources.ArrayRecordDataSource([path for source_paths in paths for path in source_paths])
    return grain.MapDataset.mix(sources, list(weights.values())), reader


def _to_batch(encoded_rows: list[bytes], eos_id: int) -> Batch:
    return segments_and_positions(np.stack([records.decode_sequence(r) for r in encoded_rows]), eos_id)


def _read_batch(reader: grain.sources.ArrayRecordDataSource, eos_id: int):
    def read_batch(rows: list[int]) -> Batch:
        return _to_batch([reader[row] for row in rows], eos_id)

    return read_batch


def train_iterator(config: ml_collections.ConfigDict, metadata: records.DatasetMetadata) -> grain.DatasetIterator:
    """Endless, reshuffled every epoch (per source when mixed), sliced by process, batched."""
    rows, reader = _train_rows(config, metadata)
    ds = rows[jax.process_index()::jax.process_count()]
    ds = ds.batch(_local_batch_size(config.global_batch_size), drop_remainder=True,
                  batch_fn=_read_batch(reader, metadata.eos_id))
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
    for b in range(num_batches):
        encoded = [ds[i] for i in range(b * rows, min((b + 1) * rows, len(ds)))]
        yield _to_batch(encoded + [pad_row] * (rows - len(encoded)), metadata.eos_id)


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
