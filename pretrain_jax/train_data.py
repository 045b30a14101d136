"""The training rows as a pure function of the position: data stages, source mixtures, batch-size schedule.

A run reads an endless stream of rows; step t takes the next `batch_size(t)` of them
(config.global_batch_schedule, else global_batch_size), and process p of P takes the
p-th contiguous block, so global batch k holds the same rows in the same order for any
process count. The stream is cut into data stages at given steps (config.data.stages,
Levanter-style step-keyed mixtures): each stage interleaves its sources in proportion
to its weights, and a source that appears in several stages continues where it stopped,
so a new stage repeats no row an earlier one took. Each source is its own seeded
shuffle, reshuffled every epoch.

The iterator's state is that position: the next step and row, the current stage's
first row and how far each source had been read when it began. A resumed run
continues exactly; so does one resumed with another batch size or number of
processes, and a rollback that skips batches (`TrainData.skip`) only moves the row.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import zlib
from typing import Any, Iterator

import grain
import jax
import ml_collections
import numpy as np

from pretrain_common import records
from pretrain_common.errors import ConfigError
from pretrain_jax import input_pipeline

STATE_VERSION = 1
WEIGHT_SCALE = 2**20  # weights become integer proportions out of about this many: exact to 1e-6


@dataclasses.dataclass(frozen=True)
class Stage:
    """From step `start` on, rows are drawn from `sources` (keys into TrainData's table) by `proportions`."""

    start: int
    data_dir: str
    weights: dict[str, float]  # source name -> normalized weight ("" names an unmixed split)
    sources: tuple[str, ...]  # source keys "<dir index>:<name>", those with a positive weight
    proportions: tuple[int, ...]

    def describe(self, dir_index: int) -> list:
        """What a checkpoint records of the stage, to refuse a resumed config that changed it."""
        return [self.start, dir_index, {name: round(w, 9) for name, w in self.weights.items()}]


def split_counts(n: np.ndarray, proportions: tuple[int, ...]) -> np.ndarray:
    """Rows of each source among the first `n` rows of a stage: [..., sources] int64.

    Source k takes ceil(n * p_k / rest) of the positions the sources before it leave, so every
    count grows by at most 1 per row, exactly one grows per row, and they sum to n.
    """
    rest, remaining = np.asarray(n, np.int64), sum(proportions)
    counts = []
    for p in proportions:
        left = rest * (remaining - p) // remaining
        counts.append(rest - left)
        rest, remaining = left, remaining - p
    return np.stack(counts, axis=-1)


def _proportions(weights: list[float]) -> tuple[int, ...]:
    return tuple(max(1, round(w * WEIGHT_SCALE)) for w in weights)


def batch_schedule(config: ml_collections.ConfigDict) -> list[tuple[int, int]]:
    """[(first step, global batch rows)], ascending: config.global_batch_schedule, else one entry."""
    return [tuple(pair) for pair in config.global_batch_schedule] or [(0, config.global_batch_size)]


def rows_between(schedule: list[tuple[int, int]], first: int, end: int) -> int:
    """Rows the steps first, ..., end - 1 take."""
    total = 0
    for i, (start, batch) in enumerate(schedule):
        stop = schedule[i + 1][0] if i + 1 < len(schedule) else end
        total += batch * max(0, min(stop, end) - max(start, first))
    return total


def batch_size(schedule: list[tuple[int, int]], step: int) -> int:
    return schedule[bisect.bisect_right([s for s, _ in schedule], step) - 1][1]


def _stage_weights(pairs: Any, metadata: records.DatasetMetadata, data_dir: str, split: str,
                   what: str) -> dict[str, float]:
    """{source: weight} of one stage: `pairs` if given, else the dataset's prepared weights."""
    sources = metadata.mixture.get(split, {})
    if not sources:
        if pairs:
            raise ConfigError(f"{what} gives source weights but split {split!r} of {data_dir} is not a mixture "
                              "(prepare it with config.mixture); leave them empty: ()")
        return {"": 1.0}
    if not pairs:
        return {name: info.weight for name, info in sources.items()}
    return records.normalized_weights(pairs, sources, what)


def _check_same_dataset_kind(base: records.DatasetMetadata, other: records.DatasetMetadata, base_dir: str,
                             data_dir: str, what: str) -> None:
    """A stage's dataset must be tokenized and packed like data.dir's: the model reads both."""
    if (other.seq_len, other.eos_id, other.vocab_size) != (base.seq_len, base.eos_id, base.vocab_size):
        raise ConfigError(f"{what} reads {data_dir} (seq_len {other.seq_len}, vocabulary {other.vocab_size}), "
                          f"which is not packed like data.dir {base_dir} (seq_len {base.seq_len}, vocabulary "
                          f"{base.vocab_size}): prepare it with --config.tokenizer_model={base_dir}/{base.tokenizer}")
    with open(f"{base_dir}/{base.tokenizer}", "rb") as a, open(f"{data_dir}/{other.tokenizer}", "rb") as b:
        if a.read() != b.read():
            raise ConfigError(f"{what} reads {data_dir}, tokenized with another tokenizer than data.dir {base_dir}: "
                              f"prepare it with --config.tokenizer_model={base_dir}/{base.tokenizer}")


def stage_entries(config: ml_collections.ConfigDict) -> list[tuple[int, Any, str]]:
    """(start step, weight pairs, data dir) of every stage, the first being data.dir from step 0."""
    entries = [(0, config.data.mixture_weights, config.data.dir)]
    for i, entry in enumerate(config.data.stages):
        what = f"config.data.stages[{i}]"
        if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3) or not isinstance(entry[0], int):
            raise ConfigError(f"{what}={entry!r}: a stage is (start step, ((source, weight), ...)) or "
                              "(start step, weights, data dir); weights () keep the dataset's own")
        start, pairs, data_dir = entry[0], entry[1], entry[2] if len(entry) == 3 else config.data.dir
        if start <= entries[-1][0]:
            raise ConfigError(f"{what} starts at step {start}, not after the stage before it (step "
                              f"{entries[-1][0]}): stages start at increasing steps after 0 (step 0 is data.dir "
                              "with data.mixture_weights)")
        if len(entry) == 3 and (not isinstance(data_dir, str) or not data_dir):
            raise ConfigError(f"{what}: the data dir must be a folder that `data_prep prepare` wrote, "
                              f"got {data_dir!r}")
        entries.append((start, pairs, data_dir))
    return entries


class TrainData(Iterator[dict[str, np.ndarray]]):
    """This process's training batches, step after step; `get_state`/`set_state` hold the position."""

    def __init__(self, config: ml_collections.ConfigDict, metadata: records.DatasetMetadata):
        self._eos_id = metadata.eos_id
        self._read_options = grain.ReadOptions(num_threads=config.data.num_threads,
                                               prefetch_buffer_size=config.data.prefetch)
        self._schedule = batch_schedule(config)
        for _, rows in self._schedule:
            input_pipeline.local_batch_size(rows)
        self._build_stages(config, metadata)
        self._set_position(step=0, row=0, stage=0, stage_row=0, source_rows={})

    def _build_stages(self, config: ml_collections.ConfigDict, metadata: records.DatasetMetadata) -> None:
        """Every stage, and its sources as shuffled, repeated row numbers into one reader of all their shards."""
        split, paths, dir_index, offset = config.data.train_split, [], {}, 0
        self.stages: list[Stage] = []
        self._dir_of_stage: list[int] = []
        self._rows: dict[str, grain.MapDataset] = {}
        for i, (start, pairs, data_dir) in enumerate(stage_entries(config)):
            what = "config.data.mixture_weights" if i == 0 else f"config.data.stages[{i - 1}]"
            meta = metadata if i == 0 else records.read_metadata(data_dir)
            if i:
                _check_same_dataset_kind(metadata, meta, config.data.dir, data_dir, what)
            index = dir_index.setdefault(data_dir, len(dir_index))
            weights = _stage_weights(pairs, meta, data_dir, split, what)
            for name, weight in weights.items():
                key = f"{index}:{name}"
                if weight <= 0 or key in self._rows:
                    continue
                shards = meta.shard_paths(data_dir, split, name or None)
                size = len(grain.sources.ArrayRecordDataSource(shards))
                if size == 0:
                    raise ConfigError(f"{what}: split {split!r} of {data_dir} has no rows"
                                      + (f" in source {name!r}" if name else ""))
                rows = grain.MapDataset.range(offset, offset + size)  # its rows' numbers in the one reader
                # Each source its own order: a seed from the run's seed and the source's name.
                seed = zlib.crc32(f"{config.seed}:{name}".encode()) if name else config.seed
                self._rows[key] = (rows.shuffle(seed=seed) if config.data.shuffle else rows).repeat()
                paths, offset = paths + shards, offset + size
            positive = [(f"{index}:{name}", w) for name, w in weights.items() if w > 0]
            self.stages.append(Stage(start, data_dir, weights, tuple(k for k, _ in positive),
                                     _proportions([w for _, w in positive])))
            self._dir_of_stage.append(index)
        self._reader = grain.sources.ArrayRecordDataSource(paths)

    def _stage_at(self, step: int) -> int:
        return bisect.bisect_right([s.start for s in self.stages], step) - 1

    def _set_position(self, step: int, row: int, stage: int, stage_row: int, source_rows: dict[str, int]) -> None:
        """Anchors the stream: the batch of `step` starts at `row`, inside `stage`, which began at `stage_row`
        when each source had given `source_rows` rows. Later stages' starts follow from the anchor."""
        self._anchor = (step, row)
        self._starts = {stage: (stage_row, dict(source_rows))}
        for j in range(stage + 1, len(self.stages)):
            before_row, before_rows = self._starts[j - 1]
            start_row = row + rows_between(self._schedule, step, self.stages[j].start)
            counts = split_counts(start_row - before_row, self.stages[j - 1].proportions)
            rows = dict(before_rows)
            for key, count in zip(self.stages[j - 1].sources, counts.tolist()):
                rows[key] = rows.get(key, 0) + count
            self._starts[j] = (start_row, rows)
        self._next_step = step
        batches = grain.MapDataset.range(step, 2**62).map(self._local_batch)
        self._iterator = iter(batches.to_iter_dataset(self._read_options))

    def _row_at(self, step: int) -> int:
        anchor_step, anchor_row = self._anchor
        return anchor_row + rows_between(self._schedule, anchor_step, step)

    def _local_batch(self, step: int) -> input_pipeline.Batch:
        """This process's rows of the batch of `step`: its contiguous block of the global batch."""
        j = self._stage_at(step)
        stage, (stage_row, source_rows) = self.stages[j], self._starts[j]
        rows = input_pipeline.local_batch_size(batch_size(self._schedule, step))
        first = self._row_at(step) - stage_row + jax.process_index() * rows
        n = np.arange(first, first + rows, dtype=np.int64)
        before, after = split_counts(n, stage.proportions), split_counts(n + 1, stage.proportions)
        which = np.argmax(after - before, axis=-1)
        keys = before[np.arange(rows), which]
        numbers = [self._rows[stage.sources[k]][source_rows.get(stage.sources[k], 0) + key]
                   for k, key in zip(which.tolist(), keys.tolist())]
        return input_pipeline.rows_to_batch([self._reader[i] for i in numbers], self._eos_id)

    def __next__(self) -> input_pipeline.Batch:
        batch = next(self._iterator)
        self._next_step += 1
        return batch

    def get_state(self) -> dict[str, Any]:
        """The position of the next batch (JSON): what a checkpoint saves."""
        step = self._next_step
        j = self._stage_at(step)
        stage_row, source_rows = self._starts[j]
        return {"version": STATE_VERSION, "step": step, "row": self._row_at(step), "stage": j,
                "stage_row": stage_row, "source_rows": source_rows,
                "stages": [s.describe(d) for s, d in zip(self.stages[:j + 1], self._dir_of_stage)]}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continues from a saved position; refuses a config whose stages differ in the part already read."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ConfigError("the checkpoint's data position was written by an older version of pretrain_jax "
                              "(no row position): resume it with that version, or start a new --workdir")
        j, step = state["stage"], state["step"]
        ours = _as_json([s.describe(d) for s, d in zip(self.stages, self._dir_of_stage)])
        changed = [saved for saved, now in zip(state["stages"], ours + [None] * len(state["stages"])) if saved != now]
        if changed or self._stage_at(step) != j:
            start = changed[0][0] if changed else state["stages"][-1][0]
            raise ConfigError(
                f"config.data.stages changes the stage that starts at step {start}, which this run (at step "
                f"{step}) has already begun: a resumed run may change only stages that start after step {step}")
        self._set_position(step, state["row"], j, state["stage_row"], state["source_rows"])

    @property
    def row(self) -> int:
        """The first row of the next batch."""
        return self._row_at(self._next_step)

    def skip(self, batches: int, to_row: int = 0) -> None:
        """Moves past the next `batches` batches without reading them, and at least to `to_row`; the step
        stays (a rollback's skip)."""
        step = self._next_step
        j = self._stage_at(step)
        stage_row, source_rows = self._starts[j]
        row = max(self.row + rows_between(self._schedule, step, step + batches), to_row)
        self._set_position(step, row, j, stage_row, source_rows)


def _as_json(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists), to compare with a saved state."""
    return json.loads(json.dumps(value))
