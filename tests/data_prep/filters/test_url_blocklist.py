"""URL blocklist: domains block their subdomains, substrings block anywhere in the URL."""

import pytest

from data_prep.filters.url import UrlBlocklist

BLOCKLIST = UrlBlocklist(frozenset({"example.com", "*.bad.org", "Shouting.NET."}), ("casino", "/ads/"))


@pytest.mark.parametrize(
    "url, reason",
    [
        ("https://example.com/page", "url:blocked_domain"),
        ("https://www.example.com/page", "url:blocked_domain"),
        ("http://a.b.example.com:8080/page?q=1", "url:blocked_domain"),
        ("https://user:secret@EXAMPLE.COM/", "url:blocked_domain"),
        ("example.com/without/scheme", "url:blocked_domain"),
        ("https://bad.org/", "url:blocked_domain"),  # "*." and case and a final dot are tolerated
        ("https://shouting.net/", "url:blocked_domain"),
        ("https://notexample.com/page", None),  # same ending, different domain
        ("https://example.com.evil.io/page", None),
        ("https://example.org/page", None),
        ("https://games.io/Casino-night", "url:banned_substring"),
        ("https://news.io/ads/banner", "url:banned_substring"),
        ("https://news.io/adsorption", None),
        ("http://[broken", None),
    ],
)
def test_blocked_domains_cover_subdomains_and_substrings_match_anywhere(url, reason):
    assert BLOCKLIST(url) == reason


def test_the_default_blocklist_blocks_nothing():
    assert UrlBlocklist()("https://example.com/casino") is None


def test_lists_load_from_files_with_comments(tmp_path):
    domains = tmp_path / "domains"
    domains.write_text("# adult\nexample.com  # a comment\n\n", encoding="utf-8")
    substrings = tmp_path / "substrings"
    substrings.write_text("casino\n", encoding="utf-8")
    blocklist = UrlBlocklist.from_files(domains, substrings)
    assert blocklist.domains == frozenset({"example.com"})
    assert blocklist("https://www.example.com/") == "url:blocked_domain"
    assert blocklist("https://other.com/casino") == "url:banned_substring"
    assert UrlBlocklist.from_files(domains)("https://other.com/casino") is None


@pytest.mark.parametrize("entry", ["badsite.com", "BadSite.COM.", "bücher.de", "xn--bcher-kva.de", "straße.de"])
def test_an_entry_blocks_every_spelling_of_its_host(entry):
    """A host is compared as DNS resolves it: case, a final dot, userinfo and port do not matter, and a
    unicode host is its punycode form (IDNA), so an entry written either way blocks both."""
    ascii_entry = {"bücher.de": "xn--bcher-kva.de", "straße.de": "xn--strae-oqa.de"}.get(entry, entry)
    unicode_entry = {"xn--bcher-kva.de": "bücher.de"}.get(entry, entry)
    blocklist = UrlBlocklist(frozenset({entry}))
    for host in {ascii_entry, unicode_entry, ascii_entry.upper(), unicode_entry.upper()}:
        for url in (f"https://{host}./", f"https://{host}/x", f"http://user:pw@{host}.:8443/x?y=1",
                    f"https://www.{host}../", f"{host}./no-scheme"):
            assert blocklist(url) == "url:blocked_domain", (entry, url)
    assert blocklist("https://notbadsite.com./") is None
    assert blocklist("https://bcher.de/") is None


def test_a_host_that_is_not_valid_idna_is_compared_as_written():
    blocklist = UrlBlocklist(frozenset({"example.com"}))
    assert blocklist("https://" + "x" * 70 + ".example.com/") == "url:blocked_domain"  # a label over 63 chars
    assert blocklist("https://a..example.com./") == "url:blocked_domain"
