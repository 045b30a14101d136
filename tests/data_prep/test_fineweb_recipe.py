"""configs/data/fineweb.py end to end on real HTML: every page accounted for, the right ones removed.

A small subset keeps it quick: 20 Debian handbook pages in English, French and
Japanese (one source, so untranslated copies meet in dedup) and 30 Python docs pages.
"""

import json
import tarfile

import pytest

from configs.data import fineweb
from data_prep import prepare, stats

LANGUAGES = ("en-US", "fr-FR", "ja-JP")
# Pages that some translations copy unchanged from English, and others spread over the book.
COPIED_PAGES = ("sect.aptosid.html", "sect.kali.html", "sect.selected-approach.html", "case-study.html")
HANDBOOK_PAGES = 20
DOCS_PAGES = 30


def _extract(archive, folder, wanted) -> int:
    with tarfile.open(archive, "r:xz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and wanted(m.name)]
        tar.extractall(folder, members=members, filter="data")
    return len(members)


@pytest.fixture(scope="module")
def recipe_run(shared_corpora, tmp_path_factory):
    inputs = tmp_path_factory.mktemp("inputs")
    with tarfile.open(shared_corpora / "debian-handbook-html.tar.xz", "r:xz") as tar:
        names = sorted({n.rsplit("/", 1)[1] for n in tar.getnames() if n.endswith(".html")})
    pages = set(COPIED_PAGES) | set(names[::len(names) // (HANDBOOK_PAGES - len(COPIED_PAGES))])
    pages = set(sorted(pages)[:HANDBOOK_PAGES])
    _extract(shared_corpora / "debian-handbook-html.tar.xz", inputs,
             lambda name: name.split("/")[-2] in LANGUAGES and name.split("/")[-1] in pages)
    with tarfile.open(shared_corpora / "python-3.11-docs-html.tar.xz", "r:xz") as tar:
        library = sorted(n for n in tar.getnames() if n.startswith("python-3.11-docs-html/library/"))
    docs = set(library[::len(library) // DOCS_PAGES][:DOCS_PAGES])
    _extract(shared_corpora / "python-3.11-docs-html.tar.xz", inputs, docs.__contains__)
    config = fineweb.get_config()
    config.update(dict(inputs=(f"handbook={inputs}/debian-handbook-html", f"pydocs={inputs}/python-3.11-docs-html"),
                       output_dir=str(tmp_path_factory.mktemp("fineweb")), vocab_size=1000, seq_len=128,
                       validation_fraction=0.0, num_validation_shards=0, num_train_shards=2))
    report = prepare.prepare(config)
    print(stats.format_report(report))  # the table, with `pytest -s`
    return config.output_dir, report


def test_every_page_is_kept_or_removed(recipe_run):
    _, report = recipe_run
    documents = report["documents"]
    assert documents["input"] == HANDBOOK_PAGES * len(LANGUAGES) + DOCS_PAGES
    assert documents["input"] == documents["kept"] + documents["removed"]
    stages = report["stages"]
    assert [s["stage"] for s in stages] == ["read", *fineweb.get_config().stages]
    for before, after in zip(stages, stages[1:]):
        assert after["docs_in"] == before["docs_out"]
        assert before["docs_in"] == before["docs_out"] + sum(before["removed"].values())
    assert stages[-1]["docs_out"] == documents["kept"] == report["splits"]["train"]["documents"]


def test_langid_removes_the_translated_pages(recipe_run):
    _, report = recipe_run
    langid = next(s for s in report["stages"] if s["stage"] == "langid")
    assert langid["removed"].get("langid:not_in:en", 0) >= HANDBOOK_PAGES  # most fr-FR and ja-JP pages
    assert set(langid["languages_kept"]) == {"en"}
    assert {"fr", "ja"} <= set(langid["languages_identified"])  # the removed pages' languages are reported


def test_exact_dedup_removes_untranslated_copies_of_english_pages(recipe_run):
    output_dir, report = recipe_run
    with open(f"{output_dir}/{prepare.SAMPLES_FILE}") as f:
        samples = [json.loads(line) for line in f]
    copies = [s for s in samples if s["reason"] == "dedup:exact_duplicate"]
    assert copies and all(s["id"].split("/")[1] in ("fr-FR", "ja-JP") for s in copies)
    assert all(s["kept_id"] == "handbook/en-US/" + s["id"].rsplit("/", 1)[1] for s in copies)  # what each copies
    dedup = next(s for s in report["stages"] if s["stage"] == "exact_dedup")
    assert dedup["removed"]["dedup:exact_duplicate"] == len(copies)
    assert dedup["corpus_pass"]["cluster_sizes"]


def test_removed_samples_agree_with_the_report(recipe_run):
    output_dir, report = recipe_run
    with open(f"{output_dir}/{prepare.SAMPLES_FILE}") as f:
        samples = [json.loads(line) for line in f]
    removed = {}
    for source in report["sources"].values():
        for reason, n in source["removed"].items():
            removed[reason] = removed.get(reason, 0) + n
    per_reason = {reason: sum(s["reason"] == reason for s in samples) for reason in removed}
    assert per_reason == {reason: min(n, 20) for reason, n in removed.items()}
    assert all(set(s) == {"id", "source", "url", "reason", "text", "kept_id"} and len(s["text"]) <= 500
               for s in samples)
    assert all((s["kept_id"] is not None) == s["reason"].startswith("dedup:") for s in samples)
