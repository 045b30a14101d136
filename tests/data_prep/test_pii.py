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


# --- phone numbers: recall and precision on a labeled sample of number-like text ---

# (sentence, the phone number in it): North American forms, then international ones with a country code,
# then national forms that UK and French pages write.
PHONES = [
    ("Call 415 555 2671 today.", "415 555 2671"),
    ("Toll free: 1-800-555-0199.", "1-800-555-0199"),
    ("Office (415) 555-2671, ask for Ann.", "(415) 555-2671"),
    ("Fax (415)555-2671 anytime", "(415)555-2671"),
    ("Reach us at 415-555-2671.", "415-555-2671"),
    ("Dial 415.555.2671 now", "415.555.2671"),
    ("US line +1 415 555 2671 works", "+1 415 555 2671"),
    ("US line +1 (415) 555-2671 works", "+1 (415) 555-2671"),
    ("Phone: +1-415-555-2671", "+1-415-555-2671"),
    ("Phone: +1.415.555.2671;", "+1.415.555.2671"),
    ("Call 1 (800) 555-0199 for help.", "1 (800) 555-0199"),
    ("Call 1 800 555 0199 for help.", "1 800 555 0199"),
    ("Call 1.800.555.0199 for help.", "1.800.555.0199"),
    ("Desk (800) 555 0199, weekdays", "(800) 555 0199"),
    ("Text 312 555-0143 to vote", "312 555-0143"),
    ("Compact +14155552671 is E.164", "+14155552671"),
    ("Support (212) 555.0188 or chat", "(212) 555.0188"),
    ("Mobile: 646\u2013555\u20130175.", "646\u2013555\u20130175"),
    ("tel:+16175550123", "+16175550123"),
    ("Call 1-888-555-0100 ext. 12.", "1-888-555-0100"),
    ("London office: +44 20 7946 0958.", "+44 20 7946 0958"),
    ("London office: +44 (0)20 7946 0958.", "+44 (0)20 7946 0958"),
    ("UK mobile +44 7700 900123 is a test number", "+44 7700 900123"),
    ("Berlin: +49 30 123456.", "+49 30 123456"),
    ("Berlin: +49 (0)30 1234567.", "+49 (0)30 1234567"),
    ("Munich +49 89 636 48018 weekdays", "+49 89 636 48018"),
    ("Paris: +33 1 23 45 67 89.", "+33 1 23 45 67 89"),
    ("Portable +33 6 12 34 56 78 le soir", "+33 6 12 34 56 78"),
    ("Paris +33.1.42.68.53.00 bureau", "+33.1.42.68.53.00"),
    ("Madrid +34 912 345 678", "+34 912 345 678"),
    ("Rome +39 06 6982 1234.", "+39 06 6982 1234"),
    ("Amsterdam +31 20 123 4567.", "+31 20 123 4567"),
    ("Sydney +61 2 9876 5432 (AEST).", "+61 2 9876 5432"),
    ("Tokyo +81 3-1234-5678 office", "+81 3-1234-5678"),
    ("Beijing +86 10 1234 5678.", "+86 10 1234 5678"),
    ("Delhi +91 98765 43210 mobile", "+91 98765 43210"),
    ("Sao Paulo +55 11 91234-5678.", "+55 11 91234-5678"),
    ("Moscow +7 495 123-45-67.", "+7 495 123-45-67"),
    ("Dublin +353 1 234 5678.", "+353 1 234 5678"),
    ("Stockholm +46 8 123 456 78", "+46 8 123 456 78"),
    ("Zurich +41 44 668 18 00.", "+41 44 668 18 00"),
    ("Mexico City +52 55 1234 5678.", "+52 55 1234 5678"),
    ("Cape Town +27 21 123 4567.", "+27 21 123 4567"),
    ("Call (+44 20 7946 0958) after 9.", "+44 20 7946 0958"),
    ("Appelez le 01 23 45 67 89 demain.", "01 23 45 67 89"),
    ("Portable : 06.12.34.56.78", "06.12.34.56.78"),
    ("London 020 7946 0958 (office)", "020 7946 0958"),
    ("Manchester 0161 496 0000.", "0161 496 0000"),
    ("Mobile 07700 900123 evenings", "07700 900123"),
]

# Number-like text that is not a phone number: years, versions, prices, dates, times, addresses, ids, codes.
NOT_PHONES = [
    "The war lasted from 1914 to 1918, and 1939-1945 followed.",
    "Between 1990 and 2020 the population doubled.",
    "Upgrade to Python 3.11.2 or 3.12.0rc1.",
    "macOS 10.15.7 and iOS 17.4.1 are supported.",
    "Version v1.2.3-4.5.6 fixed it.",
    "It costs $1,299.99 or EUR 1 234,56.",
    "Revenue was $4,155,552,671 last year.",
    "Prices: 1 000 000 dollars, 25 000 euros.",
    "Released 2024-01-15, patched 2024/02/01.",
    "Dated 15.01.2024 and 01/15/2024.",
    "Timestamp 2024-01-15T12:30:45Z in UTC.",
    "Open 09:00-17:00, closed 12:30-13:30.",
    "Server at 192.168.1.1 and 8.8.8.8 and 203.0.113.195.",
    "Order id 4155552671 shipped.",
    "ISBN 978-0-13-110362-7 and ISBN 0-306-40615-2.",
    "SSN-like 123-45-6789 and ZIP 94105-1234.",
    "Card 4111 1111 1111 1111 expires 12/27.",
    "Coordinates 37.7749, -122.4194 mark the city.",
    "The sequence 1 2 3 4 5 6 7 8 9 10 continues.",
    "Hex dump: 00 11 22 33 44 55 66 77 88 99 aa bb.",
    "Commit a3f5c21 and 0x7fff5fbff8a8.",
    "Page 415 of 555, paragraph 2671.",
    "A score of 3-2 after 101-99 overtime.",
    "Serial SN 123-456-789 on the label.",
    "Scores +5 points and +10% growth.",
    "Temperature +3.5 degrees, -40 at night.",
    "Short +1 234 and 555-1234 are not full numbers.",
    "The sum 1+1 234 567 890 is large.",
    "Weights [+0.5 0.25 0.125] in the file.",
    "Series +1.5 2.25 3.125 diverges.",
    "UUID 123e4567-e89b-12d3-a456-426614174000.",
    "IBAN DE89 3704 0044 0532 0130 00 for the transfer.",
    "Resolution 1920x1080 at 60 Hz, 3840 x 2160 too.",
    "Unix time 1700000000 and 1700000000123 ms.",
    "Range 10.0.0.0/8 and port 8080.",
    "Ratio 16:9, 4:3 and 21:9.",
    "GMT+1 and UTC+05:30 offsets.",
    "Chapter 12.3.4 on page 256.",
    "In 2023 we sold 12 345 678 units.",
    "Model T-1000 and R2-D2.",
    "The PIN is 1234 and the code 5678.",
    "Lottery numbers 04 15 23 42 in draw 2024.",
    "Offset 1e+10 2024 in the log.",
    "Build 2024.01.15.1234 shipped.",
]


def _phones_replaced(text):
    return scrub_pii(text).counts["phone_number"]


def test_phone_numbers_are_found_in_common_formats_and_numbers_that_only_look_alike_stay():
    """Recall over PHONES (the whole number replaced, nothing around it) and false positives over NOT_PHONES."""
    found = [scrub_pii(text).text == text.replace(phone, "<PHONE_NUMBER>") for text, phone in PHONES]
    false_positives = [text for text in NOT_PHONES if _phones_replaced(text)]
    recall = sum(found) / len(PHONES)
    precision = sum(found) / (sum(found) + len(false_positives))
    print(f"phone recall {recall:.3f} ({sum(found)}/{len(PHONES)}), precision {precision:.3f} "
          f"({len(false_positives)} false positives in {len(NOT_PHONES)} negatives)")
    assert len(PHONES) >= 40 and len(NOT_PHONES) >= 40
    assert recall >= 0.95, [text for (text, _), hit in zip(PHONES, found) if not hit]
    assert not false_positives
