"""Fine-tuning: a classification head on a briefly pretrained model (masked or causal) learns a real task,
head-only and all weights; the saved classifier loads back; malformed data is reported by line."""

import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from data_prep.extract import html_to_text
from pretrain_jax import finetune

# The task: is an English paragraph from the Python library reference or from the Debian administrator's
# handbook (../shared/corpora)? Held-out paragraphs come from held-out pages (every 4th).
CORPORA = (("python-docs", "python-3.11-docs-html.tar.xz", "python-3.11-docs-html/library/", 8),
           ("debian-handbook", "debian-handbook-html.tar.xz", "debian-handbook-html/en-US/", 3))
MIN_PARAGRAPH_CHARS = 200
PER_CLASS = {"train": 200, "heldout": 100}
WINDOWS = 3  # up to 3 x 64 tokens of each paragraph


def _pages(archive, prefix, every):
    """The extracted text of every `every`-th page under `prefix`, in name order."""
    with tarfile.open(archive, "r:xz") as tar:
        members = sorted((m for m in tar.getmembers() if m.name.startswith(prefix) and m.name.endswith(".html")),
                         key=lambda m: m.name)[::every]
        return [html_to_text(tar.extractfile(m).read().decode("utf-8")) or "" for m in members]


@pytest.fixture(scope="module")
def corpus_task(shared_corpora, tmp_path_factory):
    """(train.jsonl, heldout.jsonl): paragraphs labeled by corpus, balanced per split."""
    splits = {"train": [], "heldout": []}
    for label, archive, prefix, every in CORPORA:
        for i, text in enumerate(_pages(shared_corpora / archive, prefix, every)):
            split = "heldout" if i % 4 == 0 else "train"
            splits[split] += [{"text": p, "label": label} for p in text.split("\n") if len(p) >= MIN_PARAGRAPH_CHARS]
    folder = tmp_path_factory.mktemp("corpus_task")
    paths = []
    for split, examples in splits.items():
        per_label = {label: [e for e in examples if e["label"] == label] for label, *_ in CORPORA}
        kept = [e for label_examples in per_label.values() for e in label_examples[:PER_CLASS[split]]]
        path = folder / f"{split}.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in kept), encoding="utf-8")
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def head_only(tiny_mlm_run, corpus_task, tmp_path_factory):
    """(output folder, held-out report) of a head-only fine-tuning of the 40-step tiny masked LM."""
    output = str(tmp_path_factory.mktemp("head_only"))
    return output, finetune.finetune(tiny_mlm_run, *corpus_task, output,
                                     finetune.Hyperparameters(train="head", windows=WINDOWS, epochs=3, learning_rate=3e-2))


def test_head_only_and_all_weights_beat_chance_on_a_real_task(tiny_mlm_run, corpus_task, head_only, tmp_path):
    _, head = head_only
    full = finetune.finetune(tiny_mlm_run, *corpus_task, str(tmp_path / "all"),
                             finetune.Hyperparameters(train="all", windows=WINDOWS, epochs=3, learning_rate=1e-3))
    print(f"held-out accuracy over {head['examples']} paragraphs: head-only {head['accuracy']:.3f}, "
          f"all weights {full['accuracy']:.3f}, chance (majority class) {head['chance']:.3f}")
    # 0.10 above chance over 200 held-out paragraphs is 2.8 standard deviations of guessing (p < 0.003); the
    # pretraining corpus is the running Python's standard library, so the exact accuracy moves with its version
    assert head["accuracy"] >= head["chance"] + 0.10
    assert full["accuracy"] >= head["accuracy"] - 0.03


def test_a_causal_run_fine_tunes_as_well(tiny_run, corpus_task, tmp_path):
    report = finetune.finetune(tiny_run, *corpus_task, str(tmp_path),
                               finetune.Hyperparameters(train="head", epochs=3, learning_rate=3e-2))
    print(f"10-step causal backbone, head-only: held-out accuracy {report['accuracy']:.3f}, "
          f"chance {report['chance']:.3f}")
    assert report["accuracy"] >= report["chance"] + 0.15


def test_the_saved_classifier_reproduces_its_held_out_accuracy(corpus_task, head_only):
    output, report = head_only
    texts, labels = finetune.read_examples(corpus_task[1])
    classifier = finetune.load_classifier(output)
    assert classifier.labels == sorted(label for label, *_ in CORPORA)
    predicted = classifier(texts)
    assert np.mean([p == label for p, label in zip(predicted, labels)]) == pytest.approx(report["accuracy"])
    with open(os.path.join(output, finetune.INFO_FILE)) as f:
        assert json.load(f)["accuracy"] == report["accuracy"]


def test_malformed_lines_are_reported_with_their_line_numbers(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine", "label": "a"}\n'
                    'not json\n'
                    '\n'
                    '["text", "label"]\n'
                    '{"text": "no label"}\n'
                    '{"text": 3, "label": "a"}\n'
                    '{"text": "float label", "label": 1.5}\n'
                    '{"text": "bool label", "label": true}\n'
                    '{"text": "int label", "label": 7}\n', encoding="utf-8")
    with pytest.raises(ValueError) as error:
        finetune.read_examples(str(path))
    message = str(error.value)
    assert "6 malformed" in message
    for line in (2, 4, 5, 6, 7, 8):
        assert f"bad.jsonl:{line}:" in message
    assert "bad.jsonl:1:" not in message and "bad.jsonl:9:" not in message


def test_labels_are_numbered_in_sorted_order_and_unseen_held_out_labels_fail():
    names = finetune.label_list(["b", 2, "a", 10, "b"])
    assert names == [2, 10, "a", "b"]
    np.testing.assert_array_equal(finetune.label_indices(["a", 10], names, "x.jsonl"), [2, 1])
    with pytest.raises(ValueError, match="'c'"):
        finetune.label_indices(["a", "c"], names, "heldout.jsonl")


def test_the_command_line_reports_malformed_data_by_line(tiny_run, corpus_task, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n', encoding="utf-8")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "-m", "pretrain_jax.finetune", f"--workdir={tiny_run}",
                             f"--data={bad}", f"--eval_data={corpus_task[1]}", f"--output={tmp_path / 'out'}",
                             "--train=all", "--epochs=1", "--learning_rate=1e-4"],
                            cwd=repo, env={**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"},
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "bad.jsonl:2:" in result.stdout + result.stderr
