"""Orbax checkpoints of the full training state and the data iterator's position.

A checkpoint holds parameters, optimizer state, step counters and the training
data's position (pretrain_jax/train_data.py), so restarting with the same workdir
continues exactly where the run stopped: same parameters, same next batch. Writes are asynchronous (the
arrays are copied to host memory, then written while training goes on) and
every process writes its own shards of the arrays.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

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

    def save(self, state: TrainState, data: Any, force: bool = False) -> bool:
        """Saves at multiples of `every` (or whenever `force`); returns whether it saved.

        `data` is the training data iterator: its position (get_state, pretrain_jax/train_data.py) is
        saved beside the state; it is the same in every process, so process 0 writes it.
        """
        step = int(state.step)
        if not (force or self.due(step)):
            return False
        if step == self._manager.latest_step():
            return False
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data.get_state()))
        return self._manager.save(step, args=args, force=True)

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def restore(self, abstract: TrainState, data: Any = None, step: int | None = None) -> TrainState | None:
        """The state at `step` (default: the newest), placed by `abstract`'s shardings; None if there is none.

        With `data`, the training data iterator is set to the saved position too (training resumes),
        whatever number of processes saved it.
        """
        step = self._manager.latest_step() if step is None else step
        if step is None:
            return None
        items = {"state": ocp.args.StandardRestore(abstract)}
        if data is not None:
            items["data"] = ocp.args.JsonRestore()
        restored = self._manager.restore(step, args=ocp.args.Composite(**items))
        if data is not None:
            data.set_state(restored.data)
        return restored.state

    def restore_parts(self, parts: dict[str, Any], step: int | None = None) -> tuple[dict[str, Any], int] | None:
        """(the named fields of the state, e.g. {"params": abstract params}, step) at `step` (default: the newest),
        or None if there is no checkpoint.

        Reads nothing else, so a model loads in a third of its training state's memory (evaluation,
        sampling, export, averaging). Call it on a Checkpointer that has not saved: orbax then reads
        the state as a plain tree, of which it can restore a part.
        """
        step = self._manager.latest_step() if step is None else step
        if step is None:
            return None
        part = ocp.args.PyTreeRestore(parts, restore_args=ocp.checkpoint_utils.construct_restore_args(parts),
                                      partial_restore=True)
        return self._manager.restore(step, args=ocp.args.Composite(state=part)).state, step

    def restore_numpy(self, field: str, path: tuple[str, ...], leaf: Any, step: int) -> np.ndarray:
        """One array of the state, `field` (e.g. "params") then `path` within it, as numpy on the host."""
        item: dict = {field: {}}
        node = item[field]
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = leaf
        restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.PyTreeRestore(item, restore_args=restore_args, partial_restore=True))).state[field]
        for name in path:
            restored = restored[name]
        return restored

    def save_params(self, params: Any, step: int) -> None:
        """A checkpoint of parameters alone (pretrain_jax/average.py): `restore_parts` reads it like any."""
        self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave({"params": params})), force=True)

    def wait(self) -> None:
        """Waits for an asynchronous write in progress (before reading the checkpoints back)."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending writes, then releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()
