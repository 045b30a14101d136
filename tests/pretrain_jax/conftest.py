"""A small real dataset for training tests: part of this Python's standard library, prepared once."""

import os

import jax
import pytest

from configs import tiny
from configs.data import base as data_base
from data_prep import corpora, prepare
from pretrain_common import records
from pretrain_jax import sharding, train_data, trained

STDLIB_FOLDERS = ("json", "email", "importlib", "asyncio")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> str:
    """Prepared with the tiny config's vocabulary and sequence length."""
    root, _ = corpora.python_stdlib_files()
    config = data_base.get_config()
    config.inputs = tuple(os.path.join(root, folder) for folder in STDLIB_FOLDERS)
    config.output_dir = str(tmp_path_factory.mktemp("tiny_dataset"))
    train_config = tiny.get_config()
    config.vocab_size = train_config.model.vocab_size
    config.seq_len = train_config.seq_len
    config.validation_fraction = 0.05
    config.num_train_shards = 2
    config.num_workers = 1  # in this process: a small corpus is not worth starting workers for
    prepare.prepare(config)
    return config.output_dir


@pytest.fixture
def tiny_config(tiny_dataset):
    config = tiny.get_config()
    config.data.dir = tiny_dataset
    return config


@pytest.fixture
def restore():
    """(config, workdir, with_data=True) -> (latest state, the batch tokens its data iterator yields next).

    Reads on one device. Without data, only the state is read (any process count wrote it)
    and the second item is None.
    """

    def read(config, workdir, with_data=True):
        mesh = sharding.make_mesh(config.mesh, jax.devices()[:1])
        iterator = train_data.TrainData(config, records.read_metadata(config.data.dir)) if with_data else None
        state = trained.restore_state(config, workdir, mesh, iterator)
        return state, next(iterator)["tokens"] if with_data else None

    return read


def read_scalars(workdir: str) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} of every TensorBoard scalar a run wrote."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    events = EventAccumulator(os.path.join(workdir, "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    return {tag: {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)}
            for tag in events.Tags()["tensors"]}


@pytest.fixture
def scalars():
    """read_scalars: workdir -> {tag: {step: value}} of its TensorBoard scalars."""
    return read_scalars


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset, tmp_path_factory) -> str:
    """The workdir of a finished 10-step tiny run: checkpoints, config.json, tokenizer.model."""
    from pretrain_jax import train

    config = tiny.get_config()
    config.data.dir = tiny_dataset
    workdir = str(tmp_path_factory.mktemp("tiny_run"))
    train.train(config, workdir, jax.devices()[:1])
    return workdir


@pytest.fixture(scope="session")
def tiny_mlm_run(tiny_dataset, tmp_path_factory) -> str:
    """The workdir of a finished 40-step tiny masked-LM run (configs/tiny_mlm.py).

    Its schedule is fixed at 40 steps, so a shorter run of its config.json is a prefix of it.
    """
    from configs import tiny_mlm
    from pretrain_jax import train

    config = tiny_mlm.get_config()
    config.data.dir = tiny_dataset
    config.num_train_steps = 40
    config.optimizer.update(warmup_steps=4, decay_steps=36)
    config.eval_batches = 0  # the whole validation split
    workdir = str(tmp_path_factory.mktemp("tiny_mlm_run"))
    train.train(config, workdir, jax.devices()[:1])
    return workdir


TASK_MODULES = ("textwrap.py", "shutil.py", "calendar.py", "string.py")  # not in tiny_dataset's folders


def _stdlib_functions() -> list[tuple[str, str, str]]:
    """(first docstring line, name, source) of public documented functions of TASK_MODULES, names unique."""
    import ast
    import sysconfig

    seen, found = set(), []
    for name in TASK_MODULES:
        with open(os.path.join(sysconfig.get_paths()["stdlib"], name), encoding="utf-8") as f:
            source = f.read()
        for node in ast.walk(ast.parse(source)):
            doc = ast.get_docstring(node) if isinstance(node, ast.FunctionDef) else None
            if doc and not node.name.startswith("_") and node.name not in seen and doc.split("\n")[0].strip():
                seen.add(node.name)
                found.append((doc.split("\n")[0].strip(), node.name, ast.get_source_segment(source, node)))
    return found


@pytest.fixture(scope="session")
def stdlib_tasks(tmp_path_factory) -> dict[str, str]:
    """Real task files from the standard library, {kind: path}:

    multiple_choice: a function's first docstring line, then `def`; choose its name among 4 real names.
    cloze: the first half of a real line of code (after the line before it); the rest of the line.
    """
    import json

    import numpy as np

    functions = _stdlib_functions()[:24]
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("tasks")
    mc, cloze = [], []
    for i, (doc, name, source) in enumerate(functions):
        others = [functions[j][1] for j in rng.choice([j for j in range(len(functions)) if j != i], 3, replace=False)]
        label = int(rng.integers(4))
        choices = others[:label] + [name] + others[label:]
        mc.append({"context": f"# {doc}\ndef", "choices": [f" {c}" for c in choices], "label": label})
        lines = [line for line in source.split("\n") if len(line.strip()) >= 24]
        if len(lines) >= 2:
            cut = len(lines[1]) // 2
            cloze.append({"context": lines[0] + "\n" + lines[1][:cut], "continuation": lines[1][cut:]})
    paths = {}
    for kind, items in (("multiple_choice", mc), ("cloze", cloze)):
        paths[kind] = str(folder / f"stdlib_{kind}.jsonl")
        with open(paths[kind], "w", encoding="utf-8") as f:
            f.writelines(json.dumps(item) + "\n" for item in items)
    return paths
