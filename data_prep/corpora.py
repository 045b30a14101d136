"""Input specs to sources: folders, files, named corpora, and prepared TFDS datasets.

An input spec is `[SOURCE=]LOCATION[?OPTIONS]`. LOCATION is a path to a file or
folder, the name of a built-in corpus, or `tfds:DATASET[/CONFIG][:VERSION]/SPLIT`
for a TFDS dataset already prepared on this machine (read offline with
`tfds.data_source`; SPLIT may be a slice such as `train[:10%]`). Without SOURCE the
source is named after the folder, file, corpus or dataset. OPTIONS are `&`-joined
`key=value` pairs:

- `text=FIELD`: the field or column that holds the text (default `text`), for
  JSONL, Parquet and TFDS inputs.
- `data_dir=DIR`: where TFDS datasets are prepared (default: TFDS's own).
- `format=code`: a folder of source trees, one document per file with its language,
  vendored, lock, binary, generated and minified files removed (data_prep/code.py).
- `vendored=NAME,NAME`: with format=code, the folder names not descended (default
  code.VENDORED_FOLDERS; empty: descend everywhere).

    web=/data/crawl
    wiki=tfds:wikipedia/20230601.en/train?data_dir=/data/tfds
    /data/books.parquet?text=content
    repos=/data/repos?format=code&vendored=vendor,node_modules
"""

from __future__ import annotations

import dataclasses
import os
import re
import sysconfig
from collections.abc import Iterator

from data_prep import code, readers
from pretrain_common.errors import ConfigError

PYTHON_STDLIB = "python-stdlib"
# Third-party packages are not the standard library; test suites are full of
# generated and deliberately malformed text.
STDLIB_EXCLUDED_FOLDERS = frozenset({"site-packages", "dist-packages", "test", "tests", "__pycache__"})
_NAME_PREFIX = re.compile(r"^([\w.-]+)=(.+)$")
TFDS_SCHEME = "tfds:"
OPTIONS = frozenset({"text", "data_dir", "format", "vendored"})


@dataclasses.dataclass(frozen=True)
class TfdsSplit:
    """A split of a TFDS dataset prepared on this machine."""

    dataset: str  # name, with /config and :version when given
    split: str
    data_dir: str | None

    def records(self):
        """The split's examples as dicts (Text features come as UTF-8 bytes)."""
        import tensorflow_datasets as tfds  # slow to import: only for TFDS inputs

        try:  # never a download: the dataset must already be prepared (tfds build, or a copied data_dir)
            return tfds.data_source(self.dataset, split=self.split, data_dir=self.data_dir, download=False)
        except tfds.core.registered.DatasetNotFoundError as e:
            raise ConfigError(str(e).splitlines()[0]) from None
        except (AssertionError, FileNotFoundError, NotImplementedError) as e:  # known to TFDS, not prepared
            raise ConfigError(f"TFDS dataset {self.dataset!r} is not prepared as array_record in "
                              f"{self.data_dir or '~/tensorflow_datasets'} (`tfds build {self.dataset} "
                              f"--file_format=array_record`, or give ?data_dir=): "
                              f"{str(e).splitlines()[0]}") from None


@dataclasses.dataclass(frozen=True)
class InputSource:
    """One input: its source name, the spec it came from, and its files in read order."""

    name: str
    spec: str
    root: str  # document ids are file paths relative to this folder
    files: list[str]
    text_field: str = readers.TEXT_FIELD
    tfds: TfdsSplit | None = None  # read instead of files
    vendored: frozenset[str] | None = None  # a code tree (format=code): the folders not descended; None: not code

    @property
    def parts(self) -> int:
        """The units that reading this input splits into, for progress and for Beam's workers: its
        files, or one for a TFDS split."""
        return 1 if self.tfds is not None else len(self.files)

    def read(self, part: int | None = None, max_bytes: int | None = None) -> Iterator[readers.Result]:
        """Every document of this input, or of one of its `parts`, kept or dropped with its reason;
        documents over `max_bytes` of UTF-8 are removed (read:too_large) before they are held whole."""
        if self.tfds is not None:
            return readers.read_records(self.name, self.tfds.records(), self.text_field, max_bytes)
        files = self.files if part is None else [self.files[part]]
        if self.vendored is not None:
            return code.read_code_files(self.name, self.root, files, self.vendored, max_bytes)
        return readers.read_files(self.name, self.root, files, self.text_field, max_bytes)


def python_stdlib_files() -> tuple[str, list[str]]:
    """This Python's own standard-library sources (.py): real text on every machine (~13 MB)."""
    root = sysconfig.get_paths()["stdlib"]
    files = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d not in STDLIB_EXCLUDED_FOLDERS)
        files.extend(os.path.join(folder, name) for name in sorted(names) if name.endswith(".py"))
    return root, files


NAMED_CORPORA = {PYTHON_STDLIB: python_stdlib_files}


def resolve_input(spec: str) -> InputSource:
    """The source that an input spec names (see the module docstring)."""
    match = _NAME_PREFIX.match(spec)
    name, location = match.groups() if match else (None, spec)
    location, options = _parse_options(location)
    text_field = options.get("text", readers.TEXT_FIELD)
    if location.startswith(TFDS_SCHEME):
        dataset, _, split = location.removeprefix(TFDS_SCHEME).rpartition("/")
        if not dataset or not split:
            raise ConfigError(f"config.inputs: {spec!r}: a TFDS input is tfds:DATASET[/CONFIG][:VERSION]/SPLIT")
        tfds = TfdsSplit(dataset, split, options.get("data_dir"))
        return InputSource(name or dataset.split("/")[0].split(":")[0], spec, "", [], text_field, tfds)
    if location in NAMED_CORPORA:
        root, files = NAMED_CORPORA[location]()
    elif os.path.exists(location):
        root, files = readers.list_files(location)
    else:
        raise ConfigError(f"config.inputs: {spec!r} is not a file, a folder, a corpus ({', '.join(NAMED_CORPORA)}) "
                          f"or a {TFDS_SCHEME} dataset")
    name = name or os.path.basename(os.path.normpath(location))
    return InputSource(name, spec, root, files, text_field, vendored=_vendored(spec, options))


def _vendored(spec: str, options: dict[str, str]) -> frozenset[str] | None:
    """The folders a code input does not descend (see the module docstring); None for other inputs."""
    if options.get("format", "code") != "code":
        raise ConfigError(f"config.inputs: {spec!r}: format={options['format']} is unknown; the one format is code")
    if "format" not in options:
        if "vendored" in options:
            raise ConfigError(f"config.inputs: {spec!r}: vendored= applies to code trees; add format=code")
        return None
    if "vendored" not in options:
        return code.VENDORED_FOLDERS
    return frozenset(name.lower() for name in options["vendored"].split(",") if name)


def _parse_options(location: str) -> tuple[str, dict[str, str]]:
    """`LOCATION?key=value&...` to the location and its options."""
    location, _, query = location.partition("?")
    options = dict(pair.partition("=")[::2] for pair in query.split("&") if pair)
    unknown = set(options) - OPTIONS
    if unknown:
        raise ConfigError(f"config.inputs: {location!r} has unknown options {sorted(unknown)}; "
                          f"known: {sorted(OPTIONS)}")
    return location, options
