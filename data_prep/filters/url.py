"""Drop documents by where they come from: blocked domains and banned URL substrings.

No list ships with the project, and the default blocks nothing. Users bring their own,
for example the adult and malware categories of the UT1 blacklists
(dsi.ut-capitole.fr/blacklists, used by RefinedWeb and FineWeb), one domain a line.
"""

from __future__ import annotations

import dataclasses
import encodings.idna
import functools
import os
import re
from collections.abc import Iterable
from urllib.parse import urlsplit


def _read_entries(path: str | os.PathLike[str] | None) -> list[str]:
    """Non-empty lines of a list file, without `#` comments; none for no file."""
    if path is None:
        return []
    with open(path, encoding="utf-8") as f:
        entries = (line.split("#", 1)[0].strip() for line in f)
        return [entry for entry in entries if entry]


_LABEL_DOTS = re.compile("[.\u3002\uff0e\uff61]")  # the full stops IDNA separates labels with (RFC 3490 3.1)


def _hostname(url: str) -> str:
    """The host of `url` (see `normalized_host`), also for URLs written without a scheme; userinfo and
    port are not part of it."""
    try:
        return normalized_host(urlsplit(url if "//" in url else "//" + url).hostname or "")
    except ValueError:  # a malformed URL, e.g. an unclosed IPv6 bracket
        return ""


def normalized_host(host: str) -> str:
    """A host name as DNS compares it, so that every spelling of one host matches one blocklist entry.

    Lower case, no final dot (`badsite.com.` is the fully qualified `badsite.com`), and
    each label in its IDNA ASCII form: `bücher.de`, `BÜCHER.de` and `xn--bcher-kva.de` are
    all `xn--bcher-kva.de`. A punycode label is decoded and encoded again, so an IDNA 2008
    spelling (`xn--strae-oqa`, "straße") meets the IDNA 2003 one that Python encodes
    (`strasse`). A label IDNA refuses (too long, empty) stays as written, lowercased.
    """
    labels = _LABEL_DOTS.split(host.strip().lower().rstrip(".\u3002\uff0e\uff61"))
    return ".".join(_ascii_label(label) for label in labels)


def _ascii_label(label: str) -> str:
    if label.startswith("xn--"):
        try:
            label = label[4:].encode("ascii").decode("punycode")
        except UnicodeError:
            return label
    try:
        return encodings.idna.ToASCII(label).decode("ascii").lower()
    except UnicodeError:
        return label


@dataclasses.dataclass(frozen=True)
class UrlBlocklist:
    """A callable filter: `blocklist(url)` is None to keep, or the reason to drop.

    A domain blocks itself and all its subdomains (`example.com` blocks
    `www.example.com`, not `notexample.com`), however the host is spelled (see
    `normalized_host`). A banned substring blocks any URL that contains it,
    case-insensitively.
    """

    domains: frozenset[str] = frozenset()
    banned_substrings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        domains = frozenset(normalized_host(d.strip().lstrip("*.")) for d in self.domains)
        object.__setattr__(self, "domains", domains - {""})
        substrings = tuple(s.lower() for s in self.banned_substrings if s)
        object.__setattr__(self, "banned_substrings", substrings)

    @classmethod
    def from_files(
        cls,
        domains_path: str | os.PathLike[str] | None = None,
        substrings_path: str | os.PathLike[str] | None = None,
    ) -> UrlBlocklist:
        """Read one domain (substring) a line; `#` starts a comment."""
        return cls(frozenset(_read_entries(domains_path)), tuple(_read_entries(substrings_path)))

    @functools.cached_property
    def _substring_re(self) -> re.Pattern[str] | None:
        if not self.banned_substrings:
            return None
        return re.compile("|".join(map(re.escape, self.banned_substrings)))

    def __call__(self, url: str) -> str | None:
        if self.domains and any(suffix in self.domains for suffix in _domain_suffixes(_hostname(url))):
            return "url:blocked_domain"
        if self._substring_re is not None and self._substring_re.search(url.lower()):
            return "url:banned_substring"
        return None


def _domain_suffixes(host: str) -> Iterable[str]:
    """`a.b.c` -> `a.b.c`, `b.c`, `c`: the host and every domain above it."""
    labels = host.split(".")
    return (".".join(labels[i:]) for i in range(len(labels)))
