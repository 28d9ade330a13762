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


def clean_texts(specs: dict[str, tuple[object, int, bool]]) -> dict[str, str | None]:
    """Several fields at once: every missing required field is named in one error.

    ``specs``: field key → (value, max length, required).
    """
    missing: list[str] = []
    out: dict[str, str | None] = {}
    for field, (value, max_len, required) in specs.items():
        try:
            out[field] = clean_text(value, field=field, max_len=max_len, required=required)
        except ValidationFailed as err:
            if err.key != "error.fields_required":
                raise
            missing.append(field)
    if missing:
        raise ValidationFailed("error.fields_required", fields=missing)
    return out


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


def parse_id(value: object) -> int:
    """A record id from a URL or a form; ``NotFound`` for anything that is not one."""
    if isinstance(value, bool):
        raise NotFound("error.case_not_found")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() \
            and len(value.strip()) <= 12:
        number = int(value.strip())
    else:
        raise NotFound("error.case_not_found")
    if not 1 <= number <= ID_MAX:
        raise NotFound("error.case_not_found")
    return number
