"""Folders of source trees as documents: one per file, its language from its name, skipped files counted.

An input read as code (`PATH?format=code`, data_prep/corpora.py) lists every file
under the tree, and each ends as a document with metadata `language` or as a
`read:<reason>` removal, decided from its path before it is opened (in this order):

    vcs          inside a version-control folder (.git, .hg, .svn)
    vendored     inside a folder of someone else's code (VENDORED_FOLDERS, or the input's
                 `vendored=` list): listed and counted, never opened
    lock_file    a package manager's lock file (LOCK_FILES): pinned versions, not code
    binary       a suffix of compiled, archived or media files (BINARY_SUFFIXES)
    generated    a generator's output by its name (GENERATED_NAMES: protobuf, designer files)
    minified     a minified bundle by its name (MINIFIED_NAMES)
    no_language  neither name nor extension in LANGUAGES / LANGUAGE_BY_NAME

A file that passes is read whole as any text file is (data_prep/readers.py: binary by
a NUL byte, invalid_utf8, empty, too_large, unreadable), so the removals and the
documents add up to the files on disk. Generated and minified files that their names do
not give away are the code_quality stage's to find (data_prep/filters/code.py).
The language table follows the names The Stack uses, lower-cased.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from collections.abc import Iterator, Sequence

from data_prep import readers
from data_prep.document import Document, Dropped, Removed, Result
from data_prep.langid import LANGUAGE_KEY

VCS_FOLDERS = frozenset({".git", ".hg", ".svn"})
# Folders of code a project ships but did not write: package managers' installs, vendored copies,
# and installed environments (a site-packages inside a Python tree is its third-party packages).
VENDORED_FOLDERS = frozenset({
    "vendor", "vendored", "_vendor", "third_party", "third-party", "thirdparty", "external", "node_modules",
    "bower_components", "site-packages", "dist-packages", ".venv", "venv", ".tox",
})
LOCK_FILES = frozenset({
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb", "cargo.lock",
    "poetry.lock", "pipfile.lock", "pdm.lock", "uv.lock", "composer.lock", "gemfile.lock", "go.sum", "mix.lock",
    "pubspec.lock", "packages.lock.json", "flake.lock", "podfile.lock",
})
BINARY_SUFFIXES = frozenset({
    # compiled code and libraries
    ".pyc", ".pyo", ".pyd", ".so", ".dll", ".dylib", ".exe", ".o", ".a", ".obj", ".lib", ".class", ".wasm",
    # archives and compressed files
    ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".tar", ".jar", ".war", ".whl", ".egg",
    # images, fonts, audio, video, documents
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".icns", ".tif", ".tiff", ".webp", ".ttf", ".otf",
    ".woff", ".woff2", ".eot", ".mp3", ".wav", ".ogg", ".flac", ".aif", ".aiff", ".au", ".mp4", ".avi", ".mov",
    ".pdf",
    # data and models
    ".npy", ".npz", ".pkl", ".pickle", ".h5", ".hdf5", ".pt", ".pth", ".onnx", ".parquet", ".arrow", ".db",
    ".sqlite", ".mat", ".sav", ".mo", ".bin",
})
GENERATED_NAMES = ("*_pb2.py", "*_pb2_grpc.py", "*_pb2.pyi", "*.pb.go", "*.pb.cc", "*.pb.h", "*.g.dart",
                   "*.designer.cs", "*.generated.*")
MINIFIED_NAMES = ("*.min.js", "*.min.css", "*-min.js", "*.min.mjs")
LANGUAGES = {  # extension (lower case) -> language
    **dict.fromkeys((".py", ".pyi", ".pyx", ".pxd", ".pxi"), "python"),
    **dict.fromkeys((".c", ".h"), "c"),
    **dict.fromkeys((".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++", ".inl"), "c++"),
    ".cs": "c-sharp", ".java": "java", ".go": "go", ".rs": "rust", ".rb": "ruby", ".php": "php",
    ".swift": "swift", ".scala": "scala", ".dart": "dart", ".lua": "lua", ".jl": "julia", ".r": "r",
    **dict.fromkeys((".js", ".mjs", ".cjs", ".jsx"), "javascript"),
    **dict.fromkeys((".ts", ".tsx", ".mts", ".cts"), "typescript"),
    **dict.fromkeys((".kt", ".kts"), "kotlin"),
    **dict.fromkeys((".sh", ".bash", ".zsh"), "shell"),
    **dict.fromkeys((".pl", ".pm"), "perl"),
    **dict.fromkeys((".hs", ".lhs"), "haskell"),
    **dict.fromkeys((".ml", ".mli"), "ocaml"),
    **dict.fromkeys((".ex", ".exs"), "elixir"),
    **dict.fromkeys((".erl", ".hrl"), "erlang"),
    **dict.fromkeys((".clj", ".cljs", ".cljc"), "clojure"),
    **dict.fromkeys((".f", ".for", ".f90", ".f95", ".f03"), "fortran"),
    **dict.fromkeys((".s", ".asm"), "assembly"),
    **dict.fromkeys((".bat", ".cmd"), "batchfile"),
    ".ps1": "powershell", ".sql": "sql", ".proto": "protocol-buffer", ".cmake": "cmake", ".vim": "vim-script",
    ".el": "emacs-lisp", ".lisp": "common-lisp", ".scm": "scheme", ".zig": "zig", ".nim": "nim",
    **dict.fromkeys((".html", ".htm", ".xhtml"), "html"),
    **dict.fromkeys((".css", ".scss", ".sass", ".less"), "css"),
    **dict.fromkeys((".md", ".markdown"), "markdown"),
    ".rst": "restructuredtext", ".tex": "tex",
    **dict.fromkeys((".yaml", ".yml"), "yaml"),
    **dict.fromkeys((".xml", ".xsd", ".xsl", ".xslt"), "xml"),
    ".toml": "toml", ".json": "json", ".ini": "ini", ".cfg": "ini",
}
LANGUAGE_BY_NAME = {"makefile": "makefile", "gnumakefile": "makefile", "dockerfile": "dockerfile",
                    "cmakelists.txt": "cmake", "rakefile": "ruby", "gemfile": "ruby"}


def language_of(path: str) -> str | None:
    """The language a file's name or extension says, or None."""
    name = os.path.basename(path).lower()
    return LANGUAGE_BY_NAME.get(name) or LANGUAGES.get(os.path.splitext(name)[1])


def path_verdict(relative: str, vendored: frozenset[str]) -> str | Removed:
    """The language of the file at `relative` (to its tree's root), or why it is not read (see the module doc)."""
    *folders, name = relative.lower().split(os.sep)
    if VCS_FOLDERS.intersection(folders):
        return Removed(readers.STAGE, "vcs")
    if vendored.intersection(folders):
        return Removed(readers.STAGE, "vendored")
    if name in LOCK_FILES:
        return Removed(readers.STAGE, "lock_file")
    if os.path.splitext(name)[1] in BINARY_SUFFIXES:
        return Removed(readers.STAGE, "binary")
    for reason, patterns in (("generated", GENERATED_NAMES), ("minified", MINIFIED_NAMES)):
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            return Removed(readers.STAGE, reason)
    return language_of(name) or Removed(readers.STAGE, "no_language")


def read_code_files(source: str, root: str, files: Sequence[str], vendored: frozenset[str],
                    max_bytes: int | None = None) -> Iterator[Result]:
    """Every file of `files` as a document with its language, or removed with the reason (ids as read_files)."""
    for path in files:
        relative = os.path.relpath(path, root)
        doc_id = f"{source}/{relative}"
        verdict = path_verdict(relative, vendored)
        if isinstance(verdict, Removed):
            yield Dropped(doc_id, verdict)
        elif reason := readers.not_read(path):
            yield Dropped(doc_id, Removed(readers.STAGE, reason))
        else:
            yield _with_language(_read_text(source, doc_id, path, max_bytes), verdict)


def _read_text(source: str, doc_id: str, path: str, max_bytes: int | None) -> Result:
    """The file as one text document (never decompressed: compressed files are binary here)."""
    try:
        [result] = readers.read_whole(source, doc_id, path, readers.PLAIN, readers.TEXT_FIELD, max_bytes)
    except OSError as error:
        return Dropped(doc_id, Removed(readers.STAGE, f"unreadable:{type(error).__name__}"))
    return result


def _with_language(result: Result, language: str) -> Result:
    return dataclasses.replace(result, metadata={LANGUAGE_KEY: language}) if isinstance(result, Document) else result
