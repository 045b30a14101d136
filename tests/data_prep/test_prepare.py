"""prepare: the whole pipeline on real text; metadata and report agree with the shards; bad input is counted."""

import gzip
import inspect
import io
import json
import json.decoder
import json.encoder
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from fastwarc import warc

from data_prep import mixture, prepare, stats, tokenizer

from configs.data import base
from pretrain_common import records

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(output_dir, inputs=(), **overrides):
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
    """report.json holds the counts, timings.json where and how long the run (and each stage) took."""
    data_dir, report = dataset
    with open(os.path.join(data_dir, prepare.REPORT_FILE)) as f:
        counts = json.load(f)
    with open(os.path.join(data_dir, prepare.TIMINGS_FILE)) as f:
        timings = json.load(f)
    assert prepare.joined_report(counts, timings) == report
    assert "seconds" not in json.dumps(counts) and "output_dir" not in counts
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


def test_a_vocabulary_too_large_for_the_corpus_is_a_config_error(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a short document of a few words")
    with pytest.raises(prepare.ConfigError, match=r"config.vocab_size=1000 is too large .* at most \d+"):
        prepare.prepare(_config(tmp_path / "out", [str(tmp_path / "in")], validation_fraction=0.0,
                                num_validation_shards=0, num_train_shards=1))


@pytest.mark.parametrize("kept, expected", [
    ({"a": 100, "b": 100, "c": 100}, {"a": 3, "b": 3, "c": 2}),  # they sum to num_train_shards
    ({"a": 10, "b": 60}, {"a": 1, "b": 7}),  # in proportion, at least one each
    ({"a": 2, "b": 3}, {"a": 2, "b": 3}),  # never more shards than documents
    ({name: 50 for name in "abcdefghij"}, {name: 1 for name in "abcdefghij"}),  # more sources than shards
])
def test_a_mixtures_train_shards_are_shared_out_by_kept_documents(kept, expected):
    mix = mixture.Mixture(dict.fromkeys(kept, 1 / len(kept)), by_epochs=False)
    parts = {f"train-{name}": count for name, count in kept.items()}
    shards = prepare.num_shards({**parts, "validation": 5}, _config("", num_train_shards=8), mix)
    assert shards == {**{f"train-{name}": n for name, n in expected.items()}, "validation": 1}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "data_prep", *args], cwd=REPO, capture_output=True, text=True)


def test_cli_rejects_an_unknown_config_key(tmp_path):
    result = _cli("prepare", "--config=configs/data/demo.py", f"--config.output_dir={tmp_path}", "--config.vocab=8")
    assert result.returncode != 0
    assert "unknown config key 'vocab'" in result.stderr
    assert not os.listdir(tmp_path)


def test_cli_rejects_an_unknown_command():
    result = _cli("prepar", "--config=configs/data/demo.py")
    assert result.returncode == 2 and result.stderr.startswith("FATAL unknown command 'prepar'")


def _gzip_cut(lines: list[str]) -> bytes:
    """A .jsonl.gz of `lines` cut in half: the reader must keep what comes before the cut."""
    data = gzip.compress("".join(lines).encode())
    return data[: len(data) // 2]


def _warc_cut(uri: str, html: str) -> bytes:
    """A WARC response record cut inside its payload."""
    record = warc.WarcRecord()
    record.init_headers(warc.WarcRecordType.response)
    record.set_bytes_content(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + html.encode())
    record.headers["WARC-Target-URI"] = uri
    out = io.BytesIO()
    record.write(out)
    return out.getvalue()[:-200]


@pytest.fixture(scope="module")
def bad_input(tmp_path_factory):
    """One folder of every kind of bad input beside real text (stdlib modules), and the counts expected."""
    folder = tmp_path_factory.mktemp("bad")
    texts = [inspect.getsource(module) for module in (json.decoder, json.encoder, gzip, io)]
    for index, text in enumerate(texts):
        (folder / f"good{index}.txt").write_text(text)
    (folder / "copy.txt").write_text(texts[0])  # an exact duplicate
    lines = [json.dumps({"text": texts[1]}) + "\n", "{not json\n", json.dumps({"text": "  "}) + "\n"]
    (folder / "mixed.jsonl").write_bytes("".join(lines).encode() + b'{"text": "caf\xe9"}\n')
    (folder / "cut.jsonl.gz").write_bytes(_gzip_cut([json.dumps({"text": t}) + "\n" for t in texts * 20]))
    (folder / "cut.warc").write_bytes(_warc_cut("https://example.com/", "<html>" + texts[2] + "</html>"))
    (folder / "binary.dat").write_bytes(b"\x7fELF\x00\x01" + bytes(range(256)) * 8)
    (folder / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (folder / "empty.txt").write_text("")
    (folder / "huge.txt").write_text(texts[3] * (50_000_000 // len(texts[3]) + 1))  # 50 MB of real text
    expected = {"read:malformed_json": 1, "read:empty": 2, "read:invalid_utf8": 2, "read:binary": 1,
                "read:too_large": 1, "read:truncated_gzip": 1, "read:truncated_file": 1}
    return folder, expected


def test_bad_input_is_counted_and_the_run_completes(tmp_path, bad_input):
    folder, expected = bad_input
    config = _config(tmp_path, [f"bad={folder}"], stages=("extract", "exact_dedup"), vocab_size=400,
                     validation_fraction=0.0, num_validation_shards=0, num_train_shards=1)
    report = prepare.prepare(config)
    removed = report["sources"]["bad"]["removed"]
    assert {reason: removed[reason] for reason in expected} == expected
    assert removed["dedup:exact_duplicate"] >= 2  # copy.txt, and the gzip lines repeat each other
    documents = report["documents"]
    assert documents["input"] == documents["kept"] + documents["removed"] == report["stages"][0]["docs_in"]
    assert documents["kept"] == report["splits"]["train"]["documents"] >= 4
    assert sum(removed.values()) == documents["removed"]


def _shards(folder) -> dict[str, bytes]:
    """The shards."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix == ".array_record"}


def test_two_runs_write_identical_shards(tmp_path, stdlib_folders):
    inputs = [f"{name}={folder}" for name, folder in zip(("a", "b"), stdlib_folders[3:5])]
    outputs = [tmp_path / "first", tmp_path / "second"]
    reports = [prepare.prepare(_config(out, inputs, stages=("exact_dedup", "minhash_dedup"), validation_fraction=0.0,
                                       num_validation_shards=0)) for out in outputs]
    assert _shards(outputs[0]) == _shards(outputs[1]) and len(_shards(outputs[0])) == 3
    assert [s["removed"] for s in reports[0]["stages"]] == [s["removed"] for s in reports[1]["stages"]]
    assert (outputs[0] / prepare.SAMPLES_FILE).read_bytes() == (outputs[1] / prepare.SAMPLES_FILE).read_bytes()


@pytest.mark.parametrize("command", ["run", "prepare"])
def test_cli_runs_the_config_with_inputs_and_output_from_the_command_line(tmp_path, stdlib_folders, command):
    result = _cli(command, "--config=configs/data/demo.py", f"--config.inputs=('{stdlib_folders[3]}',)",
                  f"--config.output_dir={tmp_path}", "--config.vocab_size=400", "--config.num_validation_shards=0",
                  "--config.validation_fraction=0.0", "--config.stages=('exact_dedup',)")
    assert result.returncode == 0, result.stderr
    assert "exact_dedup" in result.stdout and "documents:" in result.stdout
    assert json.loads((tmp_path / prepare.REPORT_FILE).read_text())["stages"][1]["stage"] == "exact_dedup"


def test_cli_names_an_unknown_stage_in_one_line(tmp_path):
    result = _cli("run", "--config=configs/data/demo.py", f"--config.output_dir={tmp_path}",
                  "--config.stages=('gopher',)")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("FATAL config.stages has unknown stages ['gopher']")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, stdlib_folders):
    """Two stdlib folders as two sources, weighted 1:3."""
    root = os.path.dirname(stdlib_folders[0])
    output_dir = tmp_path_factory.mktemp("mixed")
    config = _config(output_dir, [f"json={root}/json", f"email={root}/email"], vocab_size=400,
                     validation_fraction=0.1, num_train_shards=4)
    config.mixture.weights = (("json", 1.0), ("email", 3.0))
    return str(output_dir), prepare.prepare(config)


def test_a_mixture_packs_each_source_into_its_own_shards(mixed, read_shard):
    data_dir, _ = mixed
    metadata = records.read_metadata(data_dir)
    sources = metadata.mixture["train"]
    assert {name: info.weight for name, info in sources.items()} == {"json": 0.25, "email": 0.75}
    assert metadata.splits["train"].shards == sources["json"].shards + sources["email"].shards
    for name, info in sources.items():
        assert all(shard.startswith(f"train-{name}-") for shard in info.shards)
        rows = [row for path in metadata.shard_paths(data_dir, "train", name) for row in read_shard(path)]
        assert info.sequences == len(rows) and info.tokens == np.sum(np.concatenate(rows) != records.PAD)
        assert info.documents == metadata.sources[name]["kept"]["train"]
    assert metadata.splits["train"].tokens == sum(info.tokens for info in sources.values())
    assert metadata.splits["validation"].shards == ["validation-00000-of-00001.array_record"]


def test_the_report_gives_each_sources_share_weight_and_implied_epochs(mixed):
    data_dir, report = mixed
    sources = records.read_metadata(data_dir).mixture["train"]
    shares = report["mixture"]["train"]
    total = sum(info.tokens for info in sources.values())
    for name, info in sources.items():
        assert shares[name]["share_of_tokens"] == pytest.approx(info.tokens / total)
        assert shares[name]["epochs_per_1b_training_tokens"] == pytest.approx(info.weight * 1e9 / info.tokens)
    assert 0 < shares["json"]["share_of_tokens"] < shares["email"]["share_of_tokens"]
    assert "epochs per 1B training tokens" in stats.format_report(report)


def test_target_epochs_give_weights_in_proportion_to_epochs_times_tokens():
    config = base.get_config().mixture
    config.epochs = (("wiki", 2.0), ("web", 1.0))
    mix = mixture.from_config(config, ["web", "wiki"])
    assert mix.weights({"web": 900, "wiki": 50}) == pytest.approx({"web": 0.9, "wiki": 0.1})


@pytest.mark.parametrize("weights, epochs, error", [
    ((("web", 1.0),), (("web", 1.0),), "not both"),
    ((("web", 1.0),), (), "each of the sources"),
    ((("web", 1.0), ("wiki", -1.0)), (), ">= 0"),
])
def test_a_bad_mixture_is_a_config_error(weights, epochs, error):
    config = base.get_config().mixture
    config.update(weights=weights, epochs=epochs)
    with pytest.raises(prepare.ConfigError, match=error):
        mixture.from_config(config, ["web", "wiki"])


def _outputs(folder) -> dict[str, bytes]:
    """Every file of a finished dataset but timings.json, which says where and how long the run took."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != prepare.TIMINGS_FILE}


def test_a_run_killed_midway_and_run_again_writes_what_an_uninterrupted_run_writes(tmp_path, stdlib_folders):
    settings = dict(inputs=tuple(stdlib_folders), vocab_size=400, num_train_shards=8, stages=("exact_dedup",))
    flags = [f"--config.{key}={value!r}" for key, value in settings.items()]
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "data_prep", "run", "--config=configs/data/base.py", *flags,
               f"--config.output_dir={killed}", "--config.seq_len=128", "--config.validation_fraction=0.05",
               "--config.num_workers=2"]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True) as run:
        while not list(killed.glob("train-00000-*.array_record")) and run.poll() is None:
            time.sleep(0.01)
        os.killpg(run.pid, signal.SIGKILL)
    assert not (killed / records.METADATA_FILE).exists(), "the run finished before it could be killed"
    first = next(killed.glob("train-00000-*.array_record")).stat()
    assert subprocess.run(command, cwd=REPO, capture_output=True).returncode == 0
    assert next(killed.glob("train-00000-*.array_record")).stat().st_mtime_ns == first.st_mtime_ns  # skipped
    prepare.prepare(_config(tmp_path / "whole", **settings))
    assert _outputs(killed) == _outputs(tmp_path / "whole")  # report.json included, byte for byte
    assert prepare.REPORT_FILE in _outputs(killed) and (killed / prepare.TIMINGS_FILE).exists()


def test_a_given_tokenizer_is_used_instead_of_training_one(tmp_path, dataset, stdlib_folders):
    data_dir, _ = dataset
    given = os.path.join(data_dir, tokenizer.TOKENIZER_FILE)
    prepare.prepare(_config(tmp_path, stdlib_folders[:1], tokenizer_model=given, vocab_size=300))
    with open(given, "rb") as a, open(tmp_path / tokenizer.TOKENIZER_FILE, "rb") as b:
        assert a.read() == b.read()
    assert records.read_metadata(str(tmp_path)).vocab_size == records.read_metadata(data_dir).vocab_size


def test_a_given_tokenizer_that_is_not_a_model_is_a_config_error(tmp_path):
    (tmp_path / "bad.model").write_bytes(b"not a model")
    with pytest.raises(prepare.ConfigError, match="tokenizer_model=.*bad.model"):
        prepare.prepare(_config(tmp_path / "out", [str(tmp_path)], tokenizer_model=str(tmp_path / "bad.model")))
