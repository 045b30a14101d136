"""Input specs to sources: folders, files, and named corpora every machine has.

An input spec is a path to a file or folder, or the name of a built-in corpus,
optionally prefixed with a source name: `web=/data/crawl`. Without a prefix the
source is named after the folder, file or corpus.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sysconfig

from data_prep import readers

PYTHON_STDLIB = "python-stdlib"
# Third-party packages are not the standard library; test suites are full of
# generated and deliberately malformed text.
STDLIB_EXCLUDED_FOLDERS = frozenset({"site-packages", "dist-packages", "test", "tests", "__pycache__"})
_NAME_PREFIX = re.compile(r"^([\w.-]+)=(.+)$")


@dataclasses.dataclass(frozen=True)
class InputSource:
    """One input: its source name, the spec it came from, and its files in read order."""

    name: str
    spec: str
    root: str  # document ids are file paths relative to this folder
    files: list[str]


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
    if location in NAMED_CORPORA:
        root, files = NAMED_CORPORA[location]()
    else:
        root, files = readers.list_files(location)
    return InputSource(name or os.path.basename(os.path.normpath(location)), spec, root, files)
