"""PII scrubbing: contact data becomes placeholders; numbers that only look alike stay."""

import pytest

from data_prep.pii import KINDS, scrub_pii


@pytest.mark.parametrize(
    "pii, placeholder",
    [
        ("john.doe@example.com", "<EMAIL>"),
        ("first+tag@mail.co.uk", "<EMAIL>"),
        ("8.8.8.8", "<IP_ADDRESS>"),
        ("203.0.114.7", "<IP_ADDRESS>"),
        ("2001:4860:4860::8888", "<IP_ADDRESS>"),
        ("2a00:1450:4001:82a:0:0:0:200e", "<IP_ADDRESS>"),
        ("+1 415 555 2671", "<PHONE_NUMBER>"),
        ("+44 20 7946 0958", "<PHONE_NUMBER>"),
        ("+49 (0)30 1234567", "<PHONE_NUMBER>"),
        ("+33.1.42.68.53.00", "<PHONE_NUMBER>"),
        ("(415) 555-2671", "<PHONE_NUMBER>"),
        ("415-555-2671", "<PHONE_NUMBER>"),
        ("415.555.2671", "<PHONE_NUMBER>"),
    ],
)
def test_contact_data_is_replaced_by_its_placeholder(pii, placeholder):
    assert scrub_pii(f"Write to {pii}, please.").text == f"Write to {placeholder}, please."


@pytest.mark.parametrize(
    "text",
    [
        "Python 3.11.2 was released.",
        "Released on 2024-01-15 at 12:30:45.",
        "Dated 15.01.2024 and 01/15/2024.",
        "We counted 1,000,000 visitors and 4155552671 clicks.",  # bare digit runs stay
        "The sum 1+1 234 567 890 is large.",
        "Use std::vector and a[1::2] and x[10::3] in code.",
        "MAC 00:1a:2b:3c:4d:5e and ISBN 978-0-13-110362-7.",
        "Retina image icon@2x.png and decorator @property.",
        "Private 10.0.0.1, 192.168.1.1, 127.0.0.1 and docs 192.0.2.1.",
        "Loopback ::1, link-local fe80::1 and docs 2001:db8::1.",
        "Version v1.2.3.4 and 1.2.3.4.5 are not addresses.",
        "Short +1 234 and 555-1234 are not full numbers.",
    ],
)
def test_numbers_that_only_look_like_pii_are_kept(text):
    assert scrub_pii(text).text == text


def test_counts_are_per_kind_and_include_zeros():
    text = "Mail a@b.io or c@d.org, host 8.8.4.4, phone 415-555-2671."
    scrubbed = scrub_pii(text)
    assert scrubbed.text == "Mail <EMAIL> or <EMAIL>, host <IP_ADDRESS>, phone <PHONE_NUMBER>."
    assert scrubbed.counts == {"email": 2, "ip_address": 1, "phone_number": 1}
    assert scrub_pii("Nothing here.").counts == {"email": 0, "ip_address": 0, "phone_number": 0}


def test_digits_inside_an_email_are_not_a_phone_number():
    assert scrub_pii("Reach 4155552671.415-555-2671@example.com now.").counts["phone_number"] == 0


def test_kinds_can_be_chosen():
    emails_only = tuple(kind for kind in KINDS if kind.name == "email")
    scrubbed = scrub_pii("a@b.io at 8.8.8.8", kinds=emails_only)
    assert scrubbed == ("<EMAIL> at 8.8.8.8", {"email": 1})
