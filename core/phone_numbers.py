"""The one place phone numbers are parsed; every other module passes E.164 strings."""

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat

# "00" is the international prefix in most of the world but not in the US ("011"), so a number
# written "0044 20 ..." must be read as "+44 20 ..." whatever the default region is.
_DOUBLE_ZERO = re.compile(r"^\s*00(?=[1-9])")


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    raw: str
    e164: str | None  # None when the input cannot be read as a phone number at all
    is_valid: bool  # a number that exists in the numbering plan, not merely a plausible length
    extension: str = ""


def normalize(raw: str, region: str | None) -> PhoneNumber:
    """Read a number in any format, using region when it has no country code; never raise."""
    # Written with its country code, a number reads the same in every region: one cache entry.
    return _normalize(raw, None if (raw or "").lstrip().startswith("+") else region)


# Parsing costs tens of microseconds; shared office numbers and re-synced records repeat.
@functools.lru_cache(maxsize=65_536)
def _normalize(raw: str, region: str | None) -> PhoneNumber:
    number = _read(raw, region)
    if number is None:
        return PhoneNumber(raw=raw, e164=None, is_valid=False)
    return PhoneNumber(
        raw=raw,
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        is_valid=phonenumbers.is_valid_number(number),
        extension=number.extension or "",
    )


@functools.lru_cache(maxsize=65_536)  # routing reads the caller, then looks the number up
def e164_of(raw: str, region: str | None) -> str | None:
    """Return normalize(raw, region).e164, skipping the validity check a lookup does not need."""
    if _already_e164(raw):
        return raw
    number = _read(raw, region)
    return None if number is None else phonenumbers.format_number(number, PhoneNumberFormat.E164)


_E164 = re.compile(r"\+([1-9]\d{0,2})(\d+)")
_LITERAL_PREFIXES = re.compile(r"\d+(?:\|\d+)*")


def _already_e164(raw: str) -> bool:
    """Whether raw is a possible number written in E.164 that parsing would leave as it is.

    What a phone system sends, a quarter of a lookup's CPU to parse. Parsing "+" and digits only
    changes them by stripping a national prefix written after the country code ("+44 0...",
    "+1 1..."): that needs the country's prefix to be plain digits the number does not start
    with. Anything else is parsed.
    """
    match = _E164.fullmatch(raw)
    if match is None:
        return False
    digits = match[1] + match[2]
    for length in (1, 2, 3):  # country codes are prefix-free, as the library reads them
        country_code = int(digits[:length])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = digits[length:]
            break
    else:
        return False
    metadata = _metadata(country_code)
    prefixes = metadata.national_prefix_for_parsing if metadata else None
    if prefixes is not None and (
        metadata.national_prefix_transform_rule is not None  # type: ignore[union-attr]
        or not _LITERAL_PREFIXES.fullmatch(prefixes)
        or national.startswith(tuple(prefixes.split("|")))
    ):
        return False
    if not national or national.startswith("0"):  # none, or Italian leading zeros: parsed
        return False
    number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))
    return bool(phonenumbers.is_possible_number(number))


@functools.cache
def _metadata(country_code: int) -> PhoneMetadata | None:
    region = phonenumbers.region_code_for_country_code(country_code)
    return PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)


def to_e164(raw: str, region: str | None) -> str:
    """Return the E.164 form of a real number, or raise ValueError saying what is wrong.

    `region` is the tenant's default_region (None: the number must carry its country code).
    """
    number = normalize(raw, region)
    if number.e164 is None or not number.is_valid:
        e164_form = "E.164 form: '+', the country code and the number, e.g. +442045205757"
        if not region or (raw or "").lstrip().startswith(("+", "00")):
            raise ValueError(f"'{raw}' is not a valid phone number; write it in {e164_form}.")
        raise ValueError(
            f"'{raw}' is not a valid phone number in the tenant's default_region {region}. "
            f"Write it in {e164_form}, or change default_region "
            '(PATCH /api/v1/tenant {"default_region": "IN"}).'
        )
    return number.e164


@functools.lru_cache(maxsize=65_536)
def region_of(e164: str) -> str | None:
    """The ISO region a number belongs to (GB for +44 20 ...), or None when it names none."""
    number = _parse(e164, None)
    region = phonenumbers.region_code_for_number(number) if number else None
    non_geographic = (phonenumbers.UNKNOWN_REGION, phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY)
    return region if region and region not in non_geographic else None


def _read(raw: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    text = (raw or "").strip()
    number = _parse(text, region)
    if not _is_possible(number) and _DOUBLE_ZERO.match(text):
        number = _parse(_DOUBLE_ZERO.sub("+", text), None)
    return number if _is_possible(number) else None


def _is_possible(number: phonenumbers.PhoneNumber | None) -> bool:
    return number is not None and phonenumbers.is_possible_number(number)


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    if not text:
        return None
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None


def national_forms(e164: str) -> tuple[str, ...]:
    """The digits a CRM may store for e164 without its country code: significant, then dialled."""
    number = _parse(e164, None)
    if number is None:
        return ()
    significant = phonenumbers.national_significant_number(number)
    dialled = re.sub(r"\D", "", phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL))
    return tuple(dict.fromkeys(f for f in (significant, dialled) if f))


def stored_forms(e164: str) -> tuple[str, ...]:
    """The ways a CRM may hold e164 as typed, for searches that match the stored text exactly.

    E.164, the international and national formats, then digits: with the country code, the
    national significant number and the number as dialled at home.
    """
    number = _parse(e164, None)
    if number is None:
        return (e164,)
    international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    forms = (e164, international, national, e164.lstrip("+"), *national_forms(e164))
    return tuple(dict.fromkeys(forms))
