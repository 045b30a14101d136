"""Faults a long data_prep run meets: hostile input files, a bad output folder, a killed main process.

Each bad input must end as a removal with a reason in the report, a bad output
folder as one `FATAL` line; never a traceback, a hang or unbounded memory.
"""

import json
import os
import subprocess
import sys

import pytest

from configs.data import base
from data_prep import prepare

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(output_dir, inputs, **overrides):
    """A one-shard run without validation, small enough for a few documents."""
    config = base.get_config()
    config.update(dict(inputs=tuple(inputs), output_dir=str(output_dir), vocab_size=300, seq_len=64,
                       validation_fraction=0.0, num_validation_shards=0, num_train_shards=1, num_workers=1,
                       stages=()), **overrides)
    return config


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "data_prep", "run", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("output", ["out", "out/below"])
def test_an_output_dir_that_is_or_lies_below_a_file_is_one_fatal_line(tmp_path, output):
    (tmp_path / "in.txt").write_text("A document to prepare.")
    (tmp_path / "out").write_text("a file where the dataset folder should go")
    result = _cli("--config=configs/data/base.py", f"--config.inputs=('{tmp_path / 'in.txt'}',)",
                  f"--config.output_dir={tmp_path / output}")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"FATAL config.output_dir={str(tmp_path / output)!r}")
    assert (tmp_path / "out").read_text() == "a file where the dataset folder should go"
