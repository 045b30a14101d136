"""langid: the model names real pages' languages; the stage keeps, drops and records as configured."""

import difflib
import tarfile

import pytest

from data_prep import langid
from data_prep.document import Document
from data_prep.extract import html_to_text
from data_prep.readers import Dropped

HANDBOOK = "debian-handbook-html.tar.xz"
PAGES_PER_LANGUAGE = 8  # every 16th of 127 pages, in name order: about 200 pages, ~15 s of extraction
MAX_COPIED = 0.5  # a page with half its text copied from the en-US page is not a translation


def _copied_fraction(page: str, english: str) -> float:
    """The fraction of the page's characters in word runs that also appear, in order, in the English page."""
    words, english_words = page.split(), english.split()
    blocks = difflib.SequenceMatcher(None, words, english_words, autojunk=False).get_matching_blocks()
    copied = sum(len(word) for block in blocks for word in words[block.a:block.a + block.size])
    return copied / max(1, sum(map(len, words)))


@pytest.fixture(scope="module")
def handbook_sample(shared_corpora):
    """(folder, text) for a fixed sample of handbook pages: the same file names in every language."""
    with tarfile.open(shared_corpora / HANDBOOK, "r:xz") as tar:
        members = {m.name: m for m in tar.getmembers() if m.name.endswith(".html")}
        names = sorted({name.rsplit("/", 1)[1] for name in members})
        sample = set(names[::len(names) // PAGES_PER_LANGUAGE][:PAGES_PER_LANGUAGE])
        pages = {}
        for path in sorted(members):
            folder, name = path.split("/")[-2:]
            if name in sample:
                pages[folder, name] = html_to_text(tar.extractfile(members[path]).read().decode("utf-8")) or ""
    return [(folder, text) for (folder, name), text in pages.items()
            if text.strip() and (folder == "en-US" or _copied_fraction(text, pages["en-US", name]) < MAX_COPIED)]


def test_handbook_pages_get_their_folders_language(handbook_sample):
    report = langid.accuracy_report((folder, langid.identify(text)[0]) for folder, text in handbook_sample)
    table = langid.format_report(report)
    print(table)  # the per-language report, with `pytest -s`
    correct, total = sum(r.correct for r in report.values()), sum(r.total for r in report.values())
    assert total >= 80, table  # enough translated pages in the sample to mean something
    assert len(report) >= 15, table
    assert correct / total >= 0.95, table


def test_accuracy_report_counts_per_true_language_after_normalizing_codes():
    report = langid.accuracy_report([("pt-BR", "pt"), ("pt-BR", "es"), ("nb-NO", "no"), ("zh-TW", "zh"),
                                     ("zh-CN", "en"), ("zh-CN", "en"), ("zh-CN", "ja")])
    assert {code: (r.correct, r.total) for code, r in report.items()} == {"no": (1, 1), "pt": (1, 2), "zh": (1, 4)}
    assert report["zh"].confused_with == {"en": 2, "ja": 1}
    assert report["pt"].accuracy == 0.5
    assert langid.format_report(report).splitlines()[-1].split()[1:3] == ["3", "7"]


# Real sentences: the opening of the json module's documentation and its French and German translations.
ENGLISH = ("JSON (JavaScript Object Notation) is a lightweight data interchange format inspired by "
           "JavaScript object literal syntax.")
FRENCH = ("JSON (JavaScript Object Notation) est un format très simple d'échange de données inspiré par "
          "la syntaxe des objets littéraux de JavaScript.")
GERMAN = "Das json-Modul stellt eine API zur Verfügung, die dem Modul pickle der Standardbibliothek ähnelt."


def _doc(text: str) -> Document:
    return Document(id="t/1", source="t", url="t/1", text=text, metadata={"format": "text"})


@pytest.mark.parametrize("text, language", [(ENGLISH, "en"), (FRENCH, "fr"), (GERMAN, "de")])
def test_identify_names_the_language_with_a_probability(text, language):
    code, score = langid.identify(text)
    assert code == language and 0.65 < score <= 1.0


def test_the_stage_writes_language_and_score_and_keeps_other_metadata():
    kept = langid.language_filter({"en", "fr"})(_doc(FRENCH))
    assert kept.metadata["format"] == "text"
    assert kept.metadata["language"] == "fr"
    assert kept.metadata["language_score"] == pytest.approx(langid.identify(FRENCH)[1])


def test_a_language_outside_the_set_is_dropped_with_the_set_in_the_reason():
    dropped = langid.language_filter({"en", "pt-BR"})(_doc(GERMAN))
    assert isinstance(dropped, Dropped) and str(dropped.removed) == "langid:not_in:en,pt"
    assert isinstance(langid.language_filter(None)(_doc(GERMAN)), Document)  # None keeps every language


def test_the_score_threshold_keeps_above_and_drops_at_or_below():
    _, score = langid.identify(ENGLISH)
    assert isinstance(langid.language_filter(None, min_score=score - 1e-3)(_doc(ENGLISH)), Document)
    dropped = langid.language_filter(None, min_score=score)(_doc(ENGLISH))
    assert isinstance(dropped, Dropped) and str(dropped.removed) == "langid:low_score"


def test_the_default_threshold_drops_text_of_no_clear_language():
    command = "apt-get install -y python3-venv"  # a shell command: no natural language
    assert langid.identify(command)[1] <= langid.MIN_SCORE
    assert str(langid.language_filter(None)(_doc(command)).removed) == "langid:low_score"
