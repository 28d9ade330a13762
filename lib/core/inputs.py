"""Checks every text and id a user sends before it reaches the database.

- NUL and other control characters are refused (PostgreSQL cannot store NUL; the others have no
  business in a report), with the field named;
- text made only of spaces and invisible characters (zero-width spaces, direction marks, the
  Hangul filler …) counts as empty, so "required" means something was written;
- over-long text is refused, never cut;
- ids outside the database's integer range are "not found", never an overflow.

Errors carry field *keys* (``description``, ``address`` …); pages name them in the user's
language (``field.<key>`` in the catalog).
"""

from __future__ import annotations

import re

from lib.core.errors import NotFound, ValidationFailed

# PostgreSQL's integer; SQLite's is wider, so this bound fits both.
ID_MAX = 2_147_483_647
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_INVISIBLE = re.compile("[\u00ad\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
                        "\u2066-\u206f\u3164\ufeff\uffa0]")


def is_blank(text: str) -> bool:
    """Nothing visible: only whitespace and invisible characters."""
    return not _INVISIBLE.sub("", text).strip()


def clean_text(value: object, *, field: str, max_len: int, required: bool = False,
               multiline: bool = True) -> str | None:
    """The text trimmed, or None when empty and optional; ``ValidationFailed`` otherwise."""
    if value is not None and not isinstance(value, str):
        raise ValidationFailed("error.text_invalid", field=field)
    text = (value or "").strip()
    if _CONTROL.search(text) or (not multiline and ("\n" in text or "\r" in text)):
        raise ValidationFailed("error.text_bad_chars", field=field)
    if is_blank(text):
        if required:
            raise ValidationFailed("error.fields_required", fields=[field])
        return None
    if len(text) > max_len:
        raise ValidationFailed("error.text_too_long", field=field, max=max_len)
    return text


def clean_search(value: object, *, max_len: int) -> str:
    """Search text: control characters dropped (a filter box never refuses), cut to length."""
    if not isinstance(value, str):
        return ""
    return _CONTROL.sub("", value).strip()[:max_len]


def clean_code(value: object, *, max_len: int = 20) -> str:
    """A tracking code as typed: spaces and dashes dropped, upper case; '' when unusable."""
    if not isinstance(value, str) or len(value) > 64:
        return ""
    text = re.sub(r"[\s\-]", "", _INVISIBLE.sub("", value)).upper()
    if _CONTROL.search(text) or len(text) > max_len or not text.isascii():
        return ""
    return text


# A mainland mobile, or a landline with its area code (the numbers public intake takes), as digits.
_PHONE_DIGITS = re.compile(r"^(1[3-9][0-9]{9}|0[0-9]{9,11})$")


def phone_digits(value: object) -> str | None:
    """A phone number as digits only (``+86``, spaces, brackets and dashes dropped), so that a
    staff phone and a reporter's compare equal however either was typed; None when empty;
    ``ValidationFailed('error.phone_invalid')`` when it is not a phone number."""
    if value is not None and not isinstance(value, str):
        raise ValidationFailed("error.phone_invalid")
    text = re.sub(r"[\s()\-]", "", value or "")
    if text.startswith("+86"):
        text = text[3:]
    if not text:
        return None
    if not _PHONE_DIGITS.match(text):
        raise ValidationFailed("error.phone_invalid")
    return text


# ASCII digits only: str.isdigit() also takes "²" and "①", which int() then refuses, and int()
# alone takes "٣", "1_000", "+5" and " 5"; the length bound keeps int() cheap.
_WHOLE = re.compile(r"[0-9]{1,18}")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
# The months a ledger or an assessment period may name: wide enough for any real record,
# narrow enough that a month before or after it never reaches date arithmetic's limits.
YEARS = (2000, 2099)


def parse_int(value: object, *, low: int, high: int) -> int | None:
    """A whole number from a URL, a form or a caller, if it lies in ``low``–``high``; None for
    anything else (the caller decides whether that is ignored or refused)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        return None
    return number if low <= number <= high else None


def parse_month(value: object) -> tuple[int, int] | None:
    """(year, month) of a month written ``YYYY-MM`` within ``YEARS``; None for anything else."""
    found = _MONTH.fullmatch(value.strip()) if isinstance(value, str) else None
    if found is None:
        return None
    year, month = int(found.group(1)), int(found.group(2))
    return (year, month) if YEARS[0] <= year <= YEARS[1] and 1 <= month <= 12 else None


def parse_id(value: object) -> int:
    """A record id from a URL or a form; ``NotFound`` for anything that is not one."""
    number = parse_int(value, low=1, high=ID_MAX)
    if number is None:
        raise NotFound("error.case_not_found")
    return number


# Characters a file system refuses in a name (Windows' list, and control characters).
_FILE_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def file_safe(text: str, replacement: str = "-") -> str:
    """``text`` fit for a file's name: each character a file system refuses replaced."""
    return _FILE_UNSAFE.sub(replacement, text)
