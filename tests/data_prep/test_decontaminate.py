"""decontaminate: documents sharing a 13-gram with an evaluation set go, whole or by paragraph, in both runners.

The corpus is real: English Debian handbook pages (their extracted text). The evaluation
set is real prose of another origin: paragraphs of standard-library module docstrings,
written as pretrain_jax few-shot cloze items (context, continuation). Copies of handbook
pages get an item planted three ways: whole, paraphrased (two words changed), and split
in two halves several paragraphs apart. Which documents truly share a 13-gram with an
item is decided here by plain Python sets of word tuples, not by the stage's hashes.
"""

import importlib
import json
import os
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from configs.data import base
from data_prep import beam_runner, extract, prepare, stages
from data_prep.contamination import build_index, normalized_words
from data_prep.document import Document
from data_prep.eval_sets import read_texts
from pretrain_common.errors import ConfigError

N = 13
PAGES = 60  # English handbook pages
MODULES = ("argparse", "asyncio", "collections", "concurrent.futures", "contextlib", "csv", "dataclasses",
           "decimal", "doctest", "email", "enum", "fractions", "functools", "gettext", "heapq", "inspect",
           "ipaddress", "logging", "mailbox", "multiprocessing", "optparse", "pickle", "pydoc", "queue",
           "sched", "shelve", "statistics", "string", "tarfile", "textwrap", "threading", "typing",
           "unittest", "uuid", "weakref", "zipfile")
DIRECT_RUNNER = ["--runner=DirectRunner", "--prism_location=/nonexistent/prism"]


@pytest.fixture(scope="module")
def pages(shared_corpora):
    """The extracted text of PAGES English handbook pages with at least six paragraphs, by file name."""
    texts = {}
    with tarfile.open(shared_corpora / "debian-handbook-html.tar.xz", "r:xz") as tar:
        for member in sorted((m for m in tar.getmembers() if m.isfile() and "/en-US/" in m.name
                              and m.name.endswith(".html")), key=lambda m: m.name):
            text = extract.html_to_text(tar.extractfile(member).read().decode("utf-8"))
            if text and len(text.split("\n\n")) >= 6:
                texts[member.name.rsplit("/", 1)[1]] = text
            if len(texts) == PAGES:
                return texts
    raise AssertionError(f"fewer than {PAGES} handbook pages")


@pytest.fixture(scope="module")
def items():
    """Cloze items: docstring paragraphs of 40+ words, cut at 60% of their words."""
    found = []
    for name in MODULES:
        doc = importlib.import_module(name).__doc__ or ""
        for paragraph in doc.split("\n\n"):
            words = paragraph.split()
            if len(words) >= 40:
                cut = len(words) * 3 // 5
                found.append({"context": " ".join(words[:cut]), "continuation": " " + " ".join(words[cut:])})
    assert len(found) >= 25, len(found)
    return found


@pytest.fixture(scope="module")
def task_file(items, tmp_path_factory):
    path = tmp_path_factory.mktemp("tasks") / "docstrings.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return str(path)


def _ngrams(text):
    words = normalized_words(text)
    return {tuple(words[i:i + N]) for i in range(len(words) - N + 1)}


def _paraphrased(passage):
    """Two words changed, at a third and two thirds of the passage."""
    words = passage.split()
    for at in (len(words) // 3, 2 * len(words) // 3):
        words[at] = "indeed" if words[at].lower() != "indeed" else "surely"
    return " ".join(words)


def _planted(page, passage, how):
    paragraphs = page.split("\n\n")
    middle = len(paragraphs) // 2
    if how == "whole":
        paragraphs.insert(middle, passage)
    elif how == "paraphrased":
        paragraphs.insert(middle, _paraphrased(passage))
    else:  # split: the halves three paragraphs apart
        words = passage.split()
        paragraphs.insert(middle + 3, " ".join(words[len(words) // 2:]))
        paragraphs.insert(middle, " ".join(words[:len(words) // 2]))
    return "\n\n".join(paragraphs)


@pytest.fixture(scope="module")
def corpus(pages, items, tmp_path_factory):
    """{id: text}: every page as it is, and per item and way a page with the item planted."""
    docs = {f"page/{name}": text for name, text in pages.items()}
    names = list(pages)
    for i, item in enumerate(items):
        for j, how in enumerate(("whole", "paraphrased", "split")):
            page = names[(3 * i + j) % len(names)]
            docs[f"planted/{how}/{i:03d}"] = _planted(pages[page], item["context"] + item["continuation"], how)
    return docs


@pytest.fixture(scope="module")
def corpus_file(corpus, tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    path.write_text("".join(json.dumps({"id": doc_id, "text": text}) + "\n" for doc_id, text in corpus.items()))
    return str(path)


def _config(task_file, **settings):
    config = base.get_config()
    config.stages = ("decontaminate",)
    config.decontaminate.eval_sets = (f"docstrings={task_file}",)
    config.decontaminate.update(settings)
    return config


def test_planted_overlaps_are_found_and_unrelated_real_documents_kept(corpus, items, task_file):
    stage = stages.REGISTRY["decontaminate"].from_config(_config(task_file))
    item_ngrams = set().union(*(_ngrams(item["context"] + item["continuation"]) for item in items))
    truly = {doc_id for doc_id, text in corpus.items() if _ngrams(text) & item_ngrams}
    removed = {doc_id for doc_id, text in corpus.items() if stage.decide(Document(doc_id, "s", "", text)) != Document(
        doc_id, "s", "", text)}
    planted = {doc_id for doc_id in truly if doc_id.startswith("planted/")}
    assert not {doc_id for doc_id in truly if doc_id.startswith("page/")}  # the pages share nothing with the items
    assert len(planted) >= 2.5 * len(items)  # nearly every plant keeps a 13-gram, paraphrased ones too
    for how in ("whole", "paraphrased", "split"):
        of_kind = {doc_id for doc_id in planted if f"/{how}/" in doc_id}
        assert len(of_kind & removed) / len(of_kind) >= 0.99, how
    assert not {doc_id for doc_id in removed if doc_id.startswith("page/")}
    assert removed == truly  # and nothing beyond a true overlap


@pytest.mark.parametrize("remove", ["document", "paragraph"])
def test_both_runners_write_the_same_bytes_and_count_per_benchmark(corpus, corpus_file, task_file, tmp_path,
                                                                 remove):
    outputs = {}
    for runner in ("local", "beam"):
        config = _config(task_file, remove=remove)
        config.update(dict(inputs=(f"web={corpus_file}",), output_dir=str(tmp_path / runner), vocab_size=2000,
                           seq_len=256, num_train_shards=2, num_workers=2, removed_samples_per_reason=1000))
        if runner == "local":
            outputs[runner] = prepare.prepare(config)
        else:
            outputs[runner] = beam_runner.run(config, DIRECT_RUNNER)
    names = sorted(set(os.listdir(tmp_path / "local")) - {prepare.TIMINGS_FILE})
    assert names == sorted(set(os.listdir(tmp_path / "beam")) - {prepare.TIMINGS_FILE})
    for name in names:
        assert (tmp_path / "beam" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    [stage] = [s for s in outputs["local"]["stages"] if s["stage"] == "decontaminate"]
    planted = sum(doc_id.startswith("planted/") for doc_id in corpus)
    assert stage["contaminated_documents"]["docstrings"] >= 0.8 * planted
    assert stage["built"]["benchmarks"]["docstrings"]["items"] > 25 and stage["built"]["bytes"] == 16 * stage[
        "built"]["ngrams"]
    if remove == "document":
        assert stage["removed"] == {"decontaminate:ngram_overlap": stage["contaminated_documents"]["docstrings"]}
    else:  # paragraphs go, the documents stay
        assert stage["removed"] == {} and stage["paragraphs_removed"]["total"] >= stage["contaminated_documents"][
            "docstrings"]
        assert stage["chars_out"] < stage["chars_in"]


def test_paragraph_mode_removes_only_the_paragraphs_that_overlap(pages, items, task_file):
    stage = stages.REGISTRY["decontaminate"].from_config(_config(task_file, remove="paragraph"))
    page = next(iter(pages.values()))
    passage = items[0]["context"] + items[0]["continuation"]
    text = _planted(page, passage, "split")
    kept = stage.decide(Document("d", "s", "", text))
    halves = set(passage.split()[:len(passage.split()) // 2]), set(passage.split()[len(passage.split()) // 2:])
    paragraphs = kept.text.split("\n\n")
    assert paragraphs == page.split("\n\n") and all(not half <= set(p.split()) for p in paragraphs for half in halves)
    alone = stage.decide(Document("e", "s", "", passage))
    assert str(alone.removed) == "decontaminate:ngram_overlap" and alone.metadata["contamination"]["docstrings"]


def test_every_evaluation_set_format_is_read(tmp_path, items):
    passage = items[1]["context"] + items[1]["continuation"]
    words = passage.split()
    mc = {"context": " ".join(words[:20]), "choices": [" wrong answer", " " + " ".join(words[20:])], "label": 1}
    (tmp_path / "mc.jsonl").write_text(json.dumps(mc) + "\n")
    (tmp_path / "lm_eval.jsonl").write_text(json.dumps({"question": passage, "answers": ["a", "b"], "idx": 3}) + "\n")
    pq.write_table(pa.table({"passage": [passage], "label": [0]}), tmp_path / "set.parquet")
    (tmp_path / "plain.txt").write_text(passage)
    for name in ("mc.jsonl", "lm_eval.jsonl", "set.parquet", "plain.txt"):
        index = build_index([(name, read_texts(str(tmp_path / name), "key"))], N)
        starts, masks = index.matches(normalized_words(f"Some text first. {passage} and after."))
        assert len(starts) == len(normalized_words(passage)) - N + 1, name  # every n-gram of the passage
        assert index.benchmarks(masks) == {name: len(starts)}, name


@pytest.mark.parametrize("change, message", [
    (dict(eval_sets=()), "the decontaminate stage needs config.decontaminate.eval_sets"),
    (dict(eval_sets=("gone=/nonexistent/set.jsonl",)), "config.decontaminate.eval_sets: '/nonexistent/set.jsonl' is"),
    (dict(remove="sentence"), "config.decontaminate.remove is 'sentence'; use one of"),
    (dict(ngram=0), "config.decontaminate.ngram=0"),
    (dict(max_ngrams=10), "over config.decontaminate.max_ngrams=10"),
])
def test_a_bad_setting_is_one_config_error_before_any_document(task_file, change, message):
    config = _config(task_file)
    config.decontaminate.update(change)
    with pytest.raises(ConfigError, match=message):
        stages.check(config)


def test_a_malformed_line_names_the_file_and_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"context": "a", "continuation": "b"}\n{broken\n')
    config = _config(str(tmp_path / "bad.jsonl"))
    with pytest.raises(ConfigError, match=r"bad.jsonl:2 is not a JSON object"):
        stages.check(config)


def test_an_evaluation_set_is_in_the_resume_hash(task_file, corpus_file, tmp_path):
    copy = tmp_path / "set.jsonl"
    copy.write_bytes(open(task_file, "rb").read())
    config = _config(str(copy))
    config.inputs = (corpus_file,)
    before = prepare._config_hash(config)
    os.utime(copy, ns=(0, 1))  # rewritten, as far as a stat can tell
    assert prepare._config_hash(config) != before
