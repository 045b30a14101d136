"""corpora: input specs resolve to named sources; the stdlib corpus is real, non-test code."""

import os

import pytest

from data_prep import corpora


def test_stdlib_corpus_is_python_sources_without_tests_or_third_party_packages():
    root, files = corpora.python_stdlib_files()
    assert len(files) > 300
    assert all(f.endswith(".py") and f.startswith(root) for f in files)
    folders = {part for f in files for part in os.path.relpath(f, root).split(os.sep)[:-1]}
    assert not folders & corpora.STDLIB_EXCLUDED_FOLDERS
    assert os.path.join(root, "json", "decoder.py") in files


def test_a_named_corpus_resolves_by_name():
    source = corpora.resolve_input(corpora.PYTHON_STDLIB)
    assert (source.name, source.spec) == ("python-stdlib", "python-stdlib")
    assert source.files == corpora.python_stdlib_files()[1]


@pytest.mark.parametrize("spec_name, expected_name", [(None, "docs"), ("web", "web")])
def test_a_folder_is_named_after_itself_unless_named(tmp_path, spec_name, expected_name):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("a")
    location = str(tmp_path / "docs")
    source = corpora.resolve_input(f"{spec_name}={location}" if spec_name else location)
    assert source.name == expected_name
    assert source.files == [os.path.join(location, "a.txt")]
