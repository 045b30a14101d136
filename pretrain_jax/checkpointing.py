"""Orbax checkpoints of the full training state and the data iterator's position.

A checkpoint holds parameters, optimizer state, step counters and the Grain
iterator state, so restarting with the same workdir continues exactly where the
run stopped: same parameters, same next batch. Writes are asynchronous (the
arrays are copied to host memory, then written while training goes on) and
every process writes its own shards.
"""

from __future__ import annotations

import json
import os
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from etils import epath

from pretrain_jax.train_state import TrainState


class Checkpointer:
    def __init__(self, directory: str, every: int, keep: int | None, async_writes: bool = True):
        """Saves every `every` steps (0: only when forced), keeping the newest `keep` (None: all)."""
        self._every = every
        if "://" not in directory:  # orbax wants absolute local paths; gs:// and the like stay as given
            directory = os.path.abspath(directory)
        self._manager = ocp.CheckpointManager(
            directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_writes,
                                                 create=True))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def due(self, step: int) -> bool:
        """Whether `save` at `step` writes a checkpoint unforced."""
        return self._every > 0 and step % self._every == 0

    def save(self, state: TrainState, data_iterator: grain.DatasetIterator, force: bool = False) -> bool:
        """Saves at multiples of `every` (or whenever `force`); returns whether it saved."""
        step = int(state.step)
        if not (force or self.due(step)):
            return False
        if step == self._manager.latest_step():
            return False
        args = ocp.args.Composite(state=ocp.args.StandardSave(state),
                                  data=grain.checkpoint.CheckpointSave(data_iterator))
        return self._manager.save(step, args=args, force=True)

    def restore_latest(self, abstract: TrainState,
                       data_iterator: grain.DatasetIterator | None = None) -> TrainState | None:
        """The newest state (placed by `abstract`'s shardings), or None if there is none.

        With `data_iterator`, it is rewound to the saved position too (training resumes),
        also by another number of processes than saved it: every process saves the same
        position (global batches taken), and global batch k holds the same rows for any
        process count (pretrain_jax/input_pipeline.py). Without, only the state is read.
        """
        step = self._manager.latest_step()
        if step is None:
            return None
        items = {"state": ocp.args.StandardRestore(abstract)}
        writers = self._data_writers(step) if data_iterator is not None else None
        if writers == jax.process_count():
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        state = self._manager.restore(step, args=ocp.args.Composite(**items)).state
        if writers not in (None, jax.process_count()):
            position = self._data_dir(step) / f"process_0-of-{writers}.json"
            data_iterator.set_state(json.loads(position.read_text()))
        return state

    def _data_dir(self, step: int) -> epath.Path:
        return epath.Path(self._manager.directory) / str(step) / "data"

    def _data_writers(self, step: int) -> int | None:
        """How many processes saved the data position at `step` (files process_<i>-of-<n>.json)."""
        names = [path.name for path in self._data_dir(step).glob("process_*-of-*.json")]
        return int(names[0].removesuffix(".json").rsplit("-of-", 1)[1]) if names else None

    def restore_latest_params(self, abstract_params: Any) -> tuple[Any, int] | None:
        """(parameters, step) of the newest checkpoint, or None if there is none.

        Reads no optimizer state, so a model loads in a third of its training state's memory
        (evaluation, sampling, export). Call it on a Checkpointer that has not saved: orbax then
        reads the state as a plain tree, of which it can restore a part.
        """
        step = self._manager.latest_step()
        if step is None:
            return None
        item = {"params": abstract_params}
        part = ocp.args.PyTreeRestore(item, restore_args=ocp.checkpoint_utils.construct_restore_args(item),
                                      partial_restore=True)
        return self._manager.restore(step, args=ocp.args.Composite(state=part)).state["params"], step

    def close(self) -> None:
        """Waits for pending writes, then releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()
