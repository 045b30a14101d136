"""Multilingual curation on the Debian handbook's 26 languages (real pages, paired by file name).

A page is a real translation when less than half of its characters lie in word runs
copied from the en-US page of the same name (test_langid's measure): many translations
leave whole pages or paragraphs in English. Chinese and Japanese translations must be
kept by the FineWeb filters at the rate of their English originals, now that their
words are split by ICU and their thresholds and stop words come from the language table.
"""

import collections
import tarfile

import pytest

from configs.data import base
from data_prep import prepare, stages, stats
from data_prep.document import Document
from data_prep.extract import html_to_text
from data_prep.stage import run_document
from data_prep.stats import StageStats
from pretrain_common.errors import ConfigError
from tests.data_prep.test_langid import HANDBOOK, MAX_COPIED, _copied_fraction

FILTERS = ("gopher_repetition", "gopher_quality", "c4", "fineweb_quality")
STAGES = ("langid", *FILTERS)
NO_SPACES = ("ja-JP", "zh-CN", "zh-TW")
# Kept share of a language's translations may fall at most this far below the English pages'.
TOLERANCE = 0.10


@pytest.fixture(scope="module")
def handbook(shared_corpora) -> dict[tuple[str, str], str]:
    """(locale folder, file name) -> main text, for every page of every language (about 3 s)."""
    pages = {}
    with tarfile.open(shared_corpora / HANDBOOK, "r:xz") as tar:
        for member in tar:
            if member.name.endswith(".html"):
                folder, name = member.name.split("/")[-2:]
                pages[folder, name] = html_to_text(tar.extractfile(member).read().decode("utf-8")) or ""
    return pages


def _fates(pages: dict[tuple[str, str], str], folders, **settings) -> dict[tuple[str, str], str]:
    """Each page of `folders` through STAGES: "kept" or its removal reason."""
    config = base.get_config()
    config.update(dict(stages=STAGES, **settings))
    steps = [(stage.name, stage) for stage in stages.build(config)]
    counts = {name: StageStats() for name, _ in steps}
    fates = {}
    for (folder, name), text in pages.items():
        if folder in folders:
            result = run_document(Document(f"{folder}/{name}", "handbook", name, text), steps, counts)
            fates[folder, name] = "kept" if isinstance(result, Document) else result.reason
    return fates


def _keep_rates(pages, fates, folder) -> tuple[int, float, float]:
    """Translated pages of `folder`: how many, the share kept, and the share of their en-US originals kept."""
    names = [name for f, name in fates if f == folder
             and _copied_fraction(pages[folder, name], pages["en-US", name]) < MAX_COPIED]
    kept = sum(fates[folder, name] == "kept" for name in names) / len(names)
    english = sum(fates["en-US", name] == "kept" for name in names) / len(names)
    return len(names), kept, english


def test_chinese_and_japanese_translations_are_kept_at_the_rate_of_the_english_originals(handbook):
    fates = _fates(handbook, ("en-US", *NO_SPACES))
    rates = {folder: _keep_rates(handbook, fates, folder) for folder in NO_SPACES}
    print(rates)  # measured 2026-12-06: ja-JP (36, 0.94, 0.81), zh-CN (31, 0.94, 0.84), zh-TW (10, 0.90, 0.80)
    for folder, (n, kept, english) in rates.items():
        assert n >= 10 and kept >= english - TOLERANCE, (folder, rates)
    assert not [page for page, fate in fates.items() if "mean_word_length" in fate]


def test_without_the_language_table_english_thresholds_remove_most_of_them(handbook):
    """What the table does: Gopher's English stop words and mean word length of 3 remove most translations."""
    fates = _fates(handbook, ("en-US", *NO_SPACES), language_table=None)
    for folder in NO_SPACES:
        _, kept, english = _keep_rates(handbook, fates, folder)
        assert kept < english - 0.3, (folder, kept, english)


def test_the_report_counts_kept_and_removed_per_reason_for_each_language(handbook, tmp_path):
    """The local runner on every 8th page of all 26 languages: each filter's `by_language` tally
    accounts for every document it saw, under the language langid found."""
    inputs = tmp_path / "handbook"
    for (folder, name), text in sorted(handbook.items())[::8]:
        (inputs / folder).mkdir(parents=True, exist_ok=True)
        (inputs / folder / f"{name}.txt").write_text(text)
    config = base.get_config()
    config.update(dict(inputs=(f"handbook={inputs}",), output_dir=str(tmp_path / "out"), stages=STAGES,
                       vocab_size=4000, seq_len=128, num_train_shards=1, validation_fraction=0.0,
                       num_validation_shards=0, num_workers=1))
    report = prepare.prepare(config)
    print(stats.format_report(report))  # the per-language tallies, with `pytest -s`
    by_stage = {stage["stage"]: stage for stage in report["stages"]}
    for name in FILTERS:
        tally = by_stage[name]["by_language"]
        outcomes = collections.Counter()
        for key, n in tally.items():
            outcomes[key.split(":", 1)[1]] += n  # "zh:kept", "zh:too_few_stop_words"
        assert outcomes.pop("kept", 0) == by_stage[name]["docs_out"]
        assert {f"{name}:{rule}": n for rule, n in outcomes.items()} == by_stage[name]["removed"]
    assert len({key.split(":")[0] for key in by_stage["gopher_repetition"]["by_language"]}) >= 18


@pytest.mark.parametrize("table, message", [
    ('{"languages": {"zh": {"gopher_qualty": {}}}}',
     r"config.language_table zh has unknown filter groups \['gopher_qualty'\]; known: \['c4', "),
    ('{"languages": {"zh": {"gopher_quality": {"min_word": 1}}}}',
     "config.language_table zh.gopher_quality has no key 'min_word'; known: .*'min_words'"),
    ('{"languages": {"zh": {"gopher_quality": {"min_words": "few"}}}}',
     "config.language_table zh.gopher_quality.min_words must be int | None, got 'few'"),
    ('{"languages": {"zh": {"gopher_quality": {"rules": "c4"}}}}', "config.gopher_quality: rules must be one of"),
    ('{"languages": ["zh"]}', r'is not \{"languages": \{code: \{filter group: \{threshold: value\}\}\}\}; give'),
    ("not json", r"config.language_table: cannot read a language table from .*; give \['fineweb2'\], a JSON file"),
])
def test_a_bad_language_table_is_one_line_naming_the_key(tmp_path, table, message):
    (tmp_path / "table.json").write_text(table)
    config = base.get_config()
    config.update(dict(stages=STAGES, language_table=str(tmp_path / "table.json")))
    with pytest.raises(ConfigError, match=message) as error:
        stages.check(config)
    assert "\n" not in str(error.value)


def test_a_table_given_by_path_is_a_file_the_output_depends_on(tmp_path):
    (tmp_path / "table.json").write_text('{"languages": {}}')
    config = base.get_config()
    config.update(dict(stages=STAGES, language_table=str(tmp_path / "table.json")))
    assert set(stages.files(config)) == {str(tmp_path / "table.json")}
    config.language_table = "fineweb2"  # the shipped table is the package's, like its code
    assert stages.files(config) == []
