"""Orbax checkpoints of the full training state and the data iterator's position, verified when read.

A checkpoint holds parameters, optimizer state, step counters and the training
data's position (pretrain_jax/train_data.py), so restarting with the same workdir
continues exactly where the run stopped: same parameters, same next batch. Writes are asynchronous (the
arrays are copied to host memory, then written while training goes on) and
every process writes its own shards of the arrays.

Each checkpoint also holds a manifest of checksums (pretrain_jax/checksums.py: one per
array, one of the data position) in its `checksums` item, committed by orbax together
with the rest, so a step either has all three or is not a checkpoint. Every read
recomputes the checksums of what it read: a checkpoint that fails to read or differs is
damaged. A trainer then falls back to the newest intact checkpoint, moving the damaged
ones to `damaged_checkpoints/` beside the checkpoints folder (it will save those steps
again); a reader asked for the newest falls back too, one asked for a step stops.
A checkpoint written before manifests existed loads unverified, with a note.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from typing import Any, Callable

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils

from pretrain_common.errors import ConfigError
from pretrain_jax import checksums, metrics
from pretrain_jax.train_state import TrainState

MANIFEST = "checksums"  # the item holding the checksums manifest: <step>/checksums/
DAMAGED = "damaged_checkpoints"  # beside the checkpoints folder: where a trainer moves damaged checkpoints
STEP_METADATA = "_CHECKPOINT_METADATA"  # orbax's per-step file (orbax/checkpoint/_src/metadata/checkpoint.py)


class DamagedCheckpoint(ConfigError):
    """A checkpoint that does not read back as it was saved; the message names the step and what is wrong."""


class CheckpointWriteError(ConfigError):
    """A checkpoint could not be written (a full disk, no permission); the older ones are untouched."""


def _first_line(error: BaseException, limit: int = 320) -> str:
    """The first line of the error at the root of `error`'s chain: orbax wraps tensorstore's (which names the
    array, the file and the fault) in one that names only an array index. A long one keeps its head (what was
    read or written) and its tail (the operating system's reason), without tensorstore's spec."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    text = re.sub(r"\s*\[tensorstore_spec.*$", "", text)
    return text if len(text) <= limit else f"{text[:limit // 2 - 20]} ... {text[-(limit // 2):]}"


class _OrbaxNoise(logging.Filter):
    """Drops the tracebacks orbax logs for a failure that the Checkpointer reports in one line: a failed write
    (logged by each of its threads) or read, whose other writes or reads end as asyncio's "Task exception
    was never retrieved" or, on a closed event loop, in sys.unraisablehook: dozens of tracebacks for one fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        orbax = f"{os.sep}orbax{os.sep}"
        logged_by_orbax = orbax in record.pathname and record.levelno >= logging.ERROR
        message = record.getMessage()  # asyncio's "exception was never retrieved", after a failure: its traceback
        an_orbax_task = record.name == "asyncio" and (orbax in message or ".orbax-checkpoint-tmp" in message)
        return not (logged_by_orbax or an_orbax_task)

    @staticmethod
    def unraisable(previous: Callable[[Any], None]) -> Callable[[Any], None]:
        def hook(unraisable: Any) -> None:
            text = str(unraisable.exc_value)
            if not (text == "Event loop is closed" or text.startswith("Encountered error while reading array")):
                previous(unraisable)
        return hook


def _quiet_orbax_failures() -> None:
    """Installs _OrbaxNoise once per process (absl's logger carries orbax's records)."""
    if not any(isinstance(f, _OrbaxNoise) for f in logging.getLogger("asyncio").filters):
        for name in ("asyncio", "absl"):
            logging.getLogger(name).addFilter(_OrbaxNoise())
        sys.unraisablehook = _OrbaxNoise.unraisable(sys.unraisablehook)


def _describe(damaged: dict[int, str]) -> str:
    return "; ".join(f"step {step} ({problem})" for step, problem in damaged.items())


def _all_processes(ok: bool) -> bool:
    """Whether `ok` holds in every process, so that all of them fall back to the same checkpoint."""
    if jax.process_count() == 1:
        return ok
    return bool(np.all(multihost_utils.process_allgather(np.asarray(ok))))


class Checkpointer:
    def __init__(self, directory: str, every: int, keep: int | None, async_writes: bool = True,
                 set_aside_damaged: bool = False):
        """Saves every `every` steps (0: only when forced), keeping the newest `keep` (None: all).

        `set_aside_damaged`: move damaged checkpoints out of the folder when reading, and remove the
        unfinished writes of a killed run (a trainer's: it saves those steps again); readers leave both,
        as the run they read may be writing.
        """
        self._every, self._set_aside = every, set_aside_damaged
        _quiet_orbax_failures()
        if "://" not in directory:  # orbax wants absolute local paths; gs:// and the like stay as given
            directory = os.path.abspath(directory)
        self._directory = epath.Path(directory)
        self._manager = ocp.CheckpointManager(
            directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_writes,
                                                 create=True, cleanup_tmp_directories=set_aside_damaged))
        self._writing: int | None = None  # the step of the write that may still be in progress
        self._write_failed = False
        self._manifests: dict[int, dict | None] = {}
        self._unverified: set[int] = set()  # steps without a manifest, noted once

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def due(self, step: int) -> bool:
        """Whether `save` at `step` writes a checkpoint unforced."""
        return self._every > 0 and step % self._every == 0

    def save(self, state: TrainState, data: Any, force: bool = False) -> bool:
        """Saves at multiples of `every` (or whenever `force`); returns whether it saved.

        `data` is the training data iterator: its position (get_state, pretrain_jax/train_data.py) is
        saved beside the state; it is the same in every process, so process 0 writes it. The manifest
        is computed from the values being saved, before the next step can change them.
        """
        step = int(state.step)
        if not (force or self.due(step)):
            return False
        self.wait()  # the previous write's failure is reported as that step's
        if step == self._manager.latest_step():
            return False
        position = data.get_state()
        args = {"state": ocp.args.StandardSave(state), "data": ocp.args.JsonSave(position),
                MANIFEST: ocp.args.JsonSave(checksums.manifest(state, position))}
        return self._write(step, args)

    def save_params(self, params: Any, step: int) -> None:
        """A checkpoint of parameters alone (pretrain_jax/average.py): `restore_parts` reads it like any."""
        tree = {"params": params}
        self._write(step, {"state": ocp.args.StandardSave(tree), MANIFEST: ocp.args.JsonSave(checksums.manifest(tree))})

    def _write(self, step: int, items: dict[str, Any]) -> bool:
        """Saves `items` as step `step`, marked (orbax's step metadata) as a step that has a manifest."""
        self._writing = step
        return self._reporting_failure(lambda: self._manager.save(
            step, args=ocp.args.Composite(**items), force=True, custom_metadata={MANIFEST: checksums.VERSION}))

    def _reporting_failure(self, write: Callable[[], Any]) -> Any:
        """Runs an orbax call that may fail on a write (now, or an asynchronous one before it) as one line."""
        try:
            return write()
        except Exception as e:  # tensorstore and orbax raise ValueError, OSError, RuntimeError...
            if self._writing is None:
                raise  # this Checkpointer has written nothing: not a write's failure
            if self._write_failed:
                return None  # already reported; close() after it must not hide that report
            self._write_failed = True
            complete = sorted(int(p.name) for p in self._directory.iterdir() if p.name.isdigit())
            newest = f"newest complete checkpoint is step {complete[-1]}" if complete else "run has no checkpoint"
            raise CheckpointWriteError(
                f"could not write checkpoint step {self._writing} in {self._directory}: {_first_line(e)}. The "
                f"{newest}: free space (or fix the folder's permissions) and run the same command again") from None

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def restore(self, abstract: TrainState, data: Any = None, step: int | None = None,
                before: int | None = None) -> TrainState | None:
        """The state of the newest intact checkpoint (before step `before` if given; exactly `step` if given),
        placed by `abstract`'s shardings; None if there is none.

        With `data`, the training data iterator is set to the saved position too (training resumes),
        whatever number of processes saved it. A damaged checkpoint is skipped with one warning (and set
        aside, see __init__); DamagedCheckpoint when every one is damaged, or `step` is.
        """
        candidates = [step] if step is not None else [s for s in reversed(self.all_steps())
                                                      if before is None or s < before]
        if not candidates:
            return None
        items = {"state": ocp.args.StandardRestore(abstract)}
        if data is not None:
            items["data"] = ocp.args.JsonRestore()
        restored, _ = self._newest_intact(candidates, items, explicit=step is not None)
        if data is not None:
            data.set_state(restored["data"])
        return restored["state"]

    def restore_parts(self, parts: dict[str, Any], step: int | None = None) -> tuple[dict[str, Any], int] | None:
        """(the named fields of the state, e.g. {"params": abstract params}, step) at `step` (default: the newest
        intact), or None if there is no checkpoint.

        Reads nothing else, so a model loads in a third of its training state's memory (evaluation,
        sampling, export, averaging). Call it on a Checkpointer that has not saved: orbax then reads
        the state as a plain tree, of which it can restore a part.
        """
        candidates = [step] if step is not None else list(reversed(self.all_steps()))
        if not candidates:
            return None
        part = ocp.args.PyTreeRestore(parts, restore_args=ocp.checkpoint_utils.construct_restore_args(parts),
                                      partial_restore=True)
        restored, step = self._newest_intact(candidates, {"state": part}, explicit=step is not None)
        return restored["state"], step

    def restore_numpy(self, field: str, path: tuple[str, ...], leaf: Any, step: int) -> np.ndarray:
        """One array of the state, `field` (e.g. "params") then `path` within it, as numpy on the host."""
        item: dict = {field: {}}
        node = item[field]
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = leaf
        restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
        part = ocp.args.PyTreeRestore(item, restore_args=restore_args, partial_restore=True)
        restored = self._newest_intact([step], {"state": part}, explicit=True)[0]["state"][field]
        for name in path:
            restored = restored[name]
        return restored

    def _newest_intact(self, candidates: list[int], items: dict[str, Any], explicit: bool) -> tuple[Any, int]:
        """The first of `candidates` (newest first) that reads back as saved, and its step."""
        damaged: dict[int, str] = {}
        for step in candidates:
            restored, problem = self._read_verified(step, items)
            if problem is None:
                break
            if explicit:
                raise DamagedCheckpoint(f"checkpoint step {step} in {self._directory} is damaged: {problem}; read "
                                        f"another step (it has steps {self.all_steps()})")
            damaged[step] = problem
        else:
            raise DamagedCheckpoint(f"no intact checkpoint in {self._directory}: {_describe(damaged)}. Restore the "
                                    "files, or move the folder aside to start afresh")
        if damaged and self._set_aside:
            moved = self._move_aside(list(damaged))
            metrics.log(f"WARNING damaged checkpoint {_describe(damaged)}: moved to {moved}; resuming from step {step}")
        elif damaged:
            metrics.log(f"WARNING damaged checkpoint {_describe(damaged)} in {self._directory}: reading step {step} "
                        "instead")
        return restored, step

    def _read_verified(self, step: int, items: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """({item: what orbax read}, None) if `step` reads back as it was saved, else ({}, what is wrong)."""
        restored, record, problem = {}, None, None
        try:
            record = self._manifest(step)
            for name, args in items.items():  # one at a time, to name the item that fails
                problem = f"its {name} item"
                restored[name] = self._manager.restore(step, args=ocp.args.Composite(**{name: args}))[name]
            problem = None
        except _Unreadable as e:
            problem = str(e)
        except Exception as e:  # whatever orbax and tensorstore raise on a damaged file
            problem = f"{problem}: {_first_line(e)}"
        if not _all_processes(problem is None):  # before the checksums: every process computes them together
            return {}, problem or "damaged as another process read it"
        if record is not None:
            bad = checksums.mismatches(record, restored["state"], restored.get("data"))
            if bad:  # the same in every process: the checksums are of the global arrays
                more = f" and {len(bad) - 3} more" if bad[3:] else ""
                return {}, "checksums differ for " + ", ".join(bad[:3]) + more
        if record is None and step not in self._unverified:
            self._unverified.add(step)
            metrics.log(f"NOTE checkpoint step {step} in {self._directory} has no checksums (written by an older "
                        "version of pretrain_jax): loaded without verifying it")
        return restored, None

    def _manifest(self, step: int) -> dict | None:
        """The checksums a checkpoint recorded; None for one written before manifests existed."""
        if step not in self._manifests:
            folder = self._directory / str(step)
            if not (folder / MANIFEST).exists():
                if self._has_manifest_marker(folder):
                    raise _Unreadable(f"its {MANIFEST} item is missing")
                self._manifests[step] = None
            else:
                try:
                    record = self._manager.restore(step, args=ocp.args.Composite(
                        **{MANIFEST: ocp.args.JsonRestore()}))[MANIFEST]
                except Exception as e:
                    raise _Unreadable(f"its {MANIFEST} cannot be read ({_first_line(e)})") from None
                if not (isinstance(record, dict) and record.get("version") == checksums.VERSION
                        and isinstance(record.get("arrays"), dict)):
                    raise _Unreadable(f"its {MANIFEST} item is not a manifest of version {checksums.VERSION}")
                self._manifests[step] = record
        return self._manifests[step]

    @staticmethod
    def _has_manifest_marker(folder: epath.Path) -> bool:
        """Whether the step was saved with a manifest (marked in orbax's step metadata); a step whose step
        metadata is gone too counts as one: every version of this code had orbax write that file."""
        try:
            return MANIFEST in json.loads((folder / STEP_METADATA).read_text()).get("custom_metadata", {})
        except (OSError, ValueError, AttributeError):
            return True

    def _move_aside(self, steps: list[int]) -> str:
        """Moves damaged steps to damaged_checkpoints/ beside the folder (process 0), so the run saves them anew."""
        aside = self._directory.parent / DAMAGED
        if jax.process_index() == 0:
            aside.mkdir(parents=True, exist_ok=True)
            for step in steps:
                target, n = aside / str(step), 1
                while target.exists():
                    target, n = aside / f"{step}.{n}", n + 1
                (self._directory / str(step)).rename(target)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices("pretrain_jax damaged checkpoints moved aside")
        self._manager.reload()
        for step in steps:
            self._manifests.pop(step, None)
        return str(aside)

    def wait(self) -> None:
        """Waits for an asynchronous write in progress (before reading the checkpoints back)."""
        self._reporting_failure(self._manager.wait_until_finished)

    def close(self) -> None:
        """Waits for pending writes, then releases the manager."""
        self.wait()
        self._reporting_failure(self._manager.close)


class _Unreadable(Exception):
    """A checkpoint's manifest is missing or unreadable: the message says which."""
