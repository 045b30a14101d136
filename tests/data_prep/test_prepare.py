"""prepare: the whole pipeline on real text; metadata and report agree with the shards."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from data_prep import prepare, records, tokenizer
from configs.data import base

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(output_dir, inputs, **overrides):
    config = base.get_config()
    config.update(dict(inputs=tuple(inputs), output_dir=str(output_dir), vocab_size=1000, seq_len=128,
                       validation_fraction=0.05, num_train_shards=3, num_workers=2), **overrides)
    return config


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, stdlib_folders):
    """The stdlib folders plus a JSONL with a bad line, prepared once for every test here."""
    extra = tmp_path_factory.mktemp("extra")
    (extra / "docs.jsonl").write_text('{"text": "hello world"}\n{broken\n')
    output_dir = tmp_path_factory.mktemp("prepared")
    report = prepare.prepare(_config(output_dir, [*stdlib_folders, f"extra={extra}"]))
    return str(output_dir), report


@pytest.fixture(scope="module")
def metadata_and_tokenizer(dataset):
    data_dir, _ = dataset
    metadata = records.read_metadata(data_dir)
    return metadata, tokenizer.load_tokenizer(os.path.join(data_dir, metadata.tokenizer))


@pytest.mark.parametrize("split", ["train", "validation"])
def test_metadata_counts_match_the_records(dataset, read_shard, split):
    data_dir, _ = dataset
    metadata = records.read_metadata(data_dir)
    rows = [row for path in metadata.shard_paths(data_dir, split) for row in read_shard(path)]
    flat = np.concatenate(rows)
    info = metadata.splits[split]
    assert all(len(row) == metadata.seq_len == 128 for row in rows)
    assert info.sequences == len(rows)
    assert info.tokens == np.sum(flat != records.PAD)
    assert info.documents == np.sum(flat == metadata.eos_id) > 0
    assert np.all((flat >= 0) & (flat < metadata.vocab_size) | (flat == records.PAD))


def test_metadata_describes_the_tokenizer(metadata_and_tokenizer):
    metadata, sp = metadata_and_tokenizer
    assert (metadata.vocab_size, metadata.eos_id, metadata.bos_id) == (sp.vocab_size(), sp.eos_id(), sp.bos_id())
    assert len(metadata.splits["train"].shards) == 3


def test_records_decode_back_to_the_input_text(dataset, metadata_and_tokenizer, read_shard):
    data_dir, _ = dataset
    metadata, sp = metadata_and_tokenizer
    flat = np.concatenate(read_shard(metadata.shard_paths(data_dir, "train")[0]))
    first_doc = flat[: np.argmax(flat == metadata.eos_id)]
    assert sp.decode(first_doc.tolist()).startswith('"""')  # a stdlib module docstring


def test_every_document_read_is_kept_or_removed(dataset):
    data_dir, report = dataset
    sources = records.read_metadata(data_dir).sources
    assert sources == report["sources"]
    extra = sources["extra"]
    assert extra["documents"] == 2 and extra["removed"] == {"read:malformed_json": 1}
    for counts in sources.values():
        assert counts["documents"] == sum(counts["removed"].values()) + sum(counts["kept"].values())
    for split in ("train", "validation"):
        kept = sum(c["kept"].get(split, 0) for c in sources.values())
        assert report["splits"][split]["documents"] == kept


def test_report_is_written_with_the_dataset(dataset):
    data_dir, report = dataset
    with open(os.path.join(data_dir, prepare.REPORT_FILE)) as f:
        assert json.load(f) == report
    assert not [name for name in os.listdir(data_dir) if name.startswith(".work") or name.endswith(".tmp")]


def test_an_existing_dataset_is_not_overwritten_by_accident(dataset):
    data_dir, _ = dataset
    with pytest.raises(prepare.ConfigError, match="overwrite"):
        prepare.prepare(_config(data_dir, ["python-stdlib"]))


def test_a_split_with_fewer_documents_than_shards_is_an_error(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("only one document")
    with pytest.raises(prepare.ConfigError, match="train split has 1 documents for 3 shards"):
        prepare.prepare(_config(tmp_path / "out", [str(tmp_path / "in")], validation_fraction=0.0,
                                num_validation_shards=0))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "data_prep", *args], cwd=REPO, capture_output=True, text=True)


def test_cli_rejects_an_unknown_config_key(tmp_path):
    result = _cli("prepare", "--config=configs/data/demo.py", f"--config.output_dir={tmp_path}", "--config.vocab=8")
    assert result.returncode != 0
    assert "unknown config key 'vocab'" in result.stderr
    assert not os.listdir(tmp_path)


def test_cli_rejects_an_unknown_command():
    result = _cli("prepar", "--config=configs/data/demo.py")
    assert result.returncode != 0 and "usage: python -m data_prep" in result.stderr
