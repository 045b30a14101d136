"""Orbax checkpoints of the full training state and the data iterator's position.

A checkpoint holds parameters, optimizer state, step counters and the Grain
iterator state, so restarting with the same workdir continues exactly where the
run stopped: same parameters, same next batch. Writes are asynchronous (the
arrays are copied to host memory, then written while training goes on) and
every process writes its own shards.
"""

from __future__ import annotations

import grain
import orbax.checkpoint as ocp

from pretrain_jax.train_state import TrainState


class Checkpointer:
    def __init__(self, directory: str, every: int, keep: int, async_writes: bool = True):
        self._every = every
        self._manager = ocp.CheckpointManager(
            directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_writes,
                                                 create=True))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, state: TrainState, data_iterator: grain.DatasetIterator, force: bool = False) -> bool:
        """Saves at multiples of `every` (or whenever `force`); returns whether it saved."""
        step = int(state.step)
        if not force and (self._every <= 0 or step % self._every):
            return False
        if step == self._manager.latest_step():
            return False
        args = ocp.args.Composite(state=ocp.args.StandardSave(state),
                                  data=grain.checkpoint.CheckpointSave(data_iterator))
        return self._manager.save(step, args=args, force=True)

    def restore_latest(self, abstract: TrainState, data_iterator: grain.DatasetIterator) -> TrainState | None:
        """The newest state (placed by `abstract`'s shardings), also rewinding `data_iterator`; None if none."""
        step = self._manager.latest_step()
        if step is None:
            return None
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                  data=grain.checkpoint.CheckpointRestore(data_iterator))
        return self._manager.restore(step, args=args).state

    def close(self) -> None:
        """Waits for pending writes, then releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()
