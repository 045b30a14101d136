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


def test_options_set_the_text_field_and_unknown_options_are_errors(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"content": "from the content field"}\n')
    source = corpora.resolve_input(f"{tmp_path}?text=content")
    assert (source.name, source.text_field) == (tmp_path.name, "content")
    assert [doc.text for doc in source.read()] == ["from the content field"]
    with pytest.raises(ValueError, match="unknown options"):
        corpora.resolve_input(f"{tmp_path}?txt=content")


@pytest.mark.parametrize("spec, dataset, split, name", [
    ("tfds:wikipedia/20230601.en/train[:10%]", "wikipedia/20230601.en", "train[:10%]", "wikipedia"),
    ("books=tfds:pg19:0.1.1/validation", "pg19:0.1.1", "validation", "books"),
])
def test_tfds_specs_name_a_dataset_and_split(spec, dataset, split, name):
    source = corpora.resolve_input(spec + "?data_dir=/data/tfds")
    assert source.tfds == corpora.TfdsSplit(dataset, split, "/data/tfds")
    assert source.name == name


def test_a_tfds_spec_without_a_split_is_an_error():
    with pytest.raises(ValueError, match="tfds:DATASET"):
        corpora.resolve_input("tfds:wikipedia")
