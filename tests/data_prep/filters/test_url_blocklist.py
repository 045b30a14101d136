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
