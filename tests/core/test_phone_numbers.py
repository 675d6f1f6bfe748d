"""core.phone_numbers: real-world formats in, E.164 out; unreadable input kept, never raised."""

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat

from core import phone_numbers
from core.phone_numbers import (
    PhoneNumber,
    national_forms,
    normalize,
    region_of,
    stored_forms,
    to_e164,
)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        # US / Canada
        ("(415) 555-0123", "US", "+14155550123"),
        ("415.555.0123", "US", "+14155550123"),
        ("1-415-555-0123", "US", "+14155550123"),
        ("+1 416 555 0199", "GB", "+14165550199"),
        ("011 44 20 7946 0018", "US", "+442079460018"),
        ("tel:+14155550123", None, "+14155550123"),
        # UK
        ("020 7946 0018", "GB", "+442079460018"),
        ("+44 (0)20 7946 0018", "US", "+442079460018"),
        ("07911 123456", "GB", "+447911123456"),
        ("0044 20 7946 0018", "GB", "+442079460018"),
        ("0044 20 7946 0018", "US", "+442079460018"),  # "00" even where it is not the prefix
        ("+442045205757", None, "+442045205757"),  # the seed 003 request
        # Turkey: local numbers as seed 003 writes them
        ("05321234567", "TR", "+905321234567"),
        ("5321234567", "TR", "+905321234567"),
        ("0532 123 45 67", "TR", "+905321234567"),
        ("(0212) 555 12 34", "TR", "+902125551234"),
        ("+90 532 123-45-67", "GB", "+905321234567"),
        ("00905321234567", None, "+905321234567"),
        # India: 10-digit mobiles
        ("9876543210", "IN", "+919876543210"),
        ("098765 43210", "IN", "+919876543210"),
        ("+91 98765 43210", "US", "+919876543210"),
        # Germany
        ("030 901820", "DE", "+4930901820"),
        ("+49 (30) 901820", "GB", "+4930901820"),
        ("0049 30 901820", "US", "+4930901820"),
        ("0151 23456789", "DE", "+4915123456789"),
        # letters and non-ASCII digits
        ("1-800-FLOWERS", "US", "+18003569377"),
        ("+٤٤ ٢٠ ٧٩٤٦ ٠٠١٨", None, "+442079460018"),
    ],
)
def test_it_reads_real_world_formats_into_e164(raw, region, e164):
    number = normalize(raw, region)

    assert number == PhoneNumber(raw=raw, e164=e164, is_valid=True)


@pytest.mark.parametrize(
    ("raw", "extension"),
    [("(415) 555-0123 ext. 42", "42"), ("+1 415 555 0123 x42", "42"), ("4155550123#7", "7")],
)
def test_it_keeps_the_extension_out_of_the_e164(raw, extension):
    number = normalize(raw, "US")

    assert (number.e164, number.extension) == ("+14155550123", extension)


def test_it_needs_a_region_or_a_country_code():
    assert normalize("020 7946 0018", None).e164 is None
    assert normalize("020 7946 0018", "GB").e164 == "+442079460018"


@pytest.mark.parametrize("raw", ["+1 212 555 0100", " +44 (0)20 7946 0018 ext. 3", "+90 12", "+"])
def test_a_number_with_its_country_code_reads_the_same_in_every_region(raw):
    regions = ("GB", "US", "TR", "DE", None)
    uncached = {phone_numbers._normalize.__wrapped__(raw, region) for region in regions}

    assert {normalize(raw, region) for region in regions} == uncached
    assert len(uncached) == 1


def test_it_keeps_a_plausible_but_unassigned_number_flagged_invalid():
    number = normalize("+1 555 555 5555", None)

    assert number.e164 == "+15555555555"
    assert number.is_valid is False


@pytest.mark.parametrize(
    "raw", ["", "   ", "call me", "12", "+999 123 456", "1; DROP TABLE contacts", "x" * 10_000]
)
def test_it_keeps_unreadable_input_raw_and_flagged_invalid(raw):
    assert normalize(raw, "GB") == PhoneNumber(raw=raw, e164=None, is_valid=False)


def test_to_e164_says_what_is_wrong():
    with pytest.raises(ValueError, match=r"E\.164 form: '\+', the country code"):
        to_e164("020 7946 0018", None)


def test_to_e164_names_the_default_region_it_read_the_number_with_and_how_to_change_it():
    with pytest.raises(ValueError) as refused:
        to_e164("9876543210", "US")

    message = str(refused.value)
    assert "default_region US" in message and "E.164 form" in message
    assert "PATCH /api/v1/tenant" in message
    assert to_e164("9876543210", "IN") == "+919876543210"  # seed 002's number, read as Indian


@given(raw=st.text(max_size=300), region=st.sampled_from([None, "GB", "US", "TR", "IN", "DE"]))
def test_it_never_raises_whatever_the_input(raw, region):
    number = normalize(raw, region)

    assert number.raw == raw
    assert number.e164 is None or number.e164.startswith("+")


@pytest.mark.parametrize(
    ("e164", "region"),
    [
        ("+442079460018", "GB"),
        ("+905321234567", "TR"),
        ("+14165550199", "CA"),
        ("+14155550123", "US"),
        ("+8005550123", None),
        ("nonsense", None),
        ("", None),
    ],
)
def test_it_tells_the_region_a_number_belongs_to(e164, region):
    assert region_of(e164) == region


def test_the_national_number_drops_the_country_code_and_reads_nothing_from_junk():
    assert national_forms("+442079460018") == ("2079460018", "02079460018")
    assert national_forms("+14155550132") == ("4155550132",)
    assert national_forms("n/a") == ()


def test_stored_forms_are_the_formats_and_digits_a_crm_may_hold_exactly():
    assert stored_forms("+442079460018") == (
        "+442079460018",
        "+44 20 7946 0018",
        "020 7946 0018",
        "442079460018",
        "2079460018",
        "02079460018",
    )
    assert stored_forms("+14155550132") == (
        "+14155550132",
        "+1 415-555-0132",
        "(415) 555-0132",
        "14155550132",
        "4155550132",
    )


def parsed_e164(raw: str) -> str | None:
    """What e164_of answers by parsing, without its shortcut for numbers already in E.164."""
    number = phone_numbers._read(raw, None)
    return None if number is None else phonenumbers.format_number(number, PhoneNumberFormat.E164)


def e164_candidates() -> list[str]:
    """Every country's example numbers, each also with its national prefixes after the country
    code ("+44 0...") and with a digit changed, dropped or added."""
    candidates = []
    for region in phonenumbers.SUPPORTED_REGIONS | {"001"}:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
            phonenumbers.country_code_for_region(region), region
        )
        for number_type in range(12):
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is None:
                continue
            code, national = str(example.country_code), str(example.national_number)
            national_prefix = (metadata.national_prefix if metadata else None) or ""
            prefixes = {"0", "1", "8", "9", "00", *national_prefix.split("|")}
            for digits in (national, national[:-1], national + "5", "7" + national[1:]):
                candidates += [f"+{code}{prefix}{digits}" for prefix in ("", *prefixes)]
    return candidates


def test_a_number_already_in_e164_is_answered_as_parsing_would():
    shortcut = 0
    for raw in e164_candidates():
        if phone_numbers._already_e164(raw):
            shortcut += 1
            assert parsed_e164(raw) == raw
    assert shortcut > 1000  # the shortcut is taken, not always declined


@pytest.mark.parametrize("raw", ["+4402045205757", "+11415555012", "+390612345678", "+1 415"])
def test_a_number_parsing_would_change_is_parsed(raw):
    assert not phone_numbers._already_e164(raw)
    assert phone_numbers.e164_of(raw, None) == parsed_e164(raw)


@given(st.from_regex(r"\+[0-9]{1,18}", fullmatch=True))
def test_the_e164_shortcut_agrees_with_parsing_on_any_digits(raw):
    if phone_numbers._already_e164(raw):
        assert parsed_e164(raw) == raw
