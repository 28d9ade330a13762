"""The translation catalog: Chinese first, English beside it.

A language's catalog is ``data/i18n/<lang>.json`` merged with the parts of one capability,
``data/i18n/<lang>.<part>.json`` (e.g. ``zh.notices.json``); a key defined twice is an error.
"""

from __future__ import annotations

import json
from functools import lru_cache

from lib.core.config import DATA_DIR

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"


@lru_cache(maxsize=4)
def catalog(lang: str) -> dict[str, str]:
    folder = DATA_DIR / "i18n"
    merged: dict[str, str] = {}
    for path in [folder / f"{lang}.json", *sorted(folder.glob(f"{lang}.*.json"))]:
        part = json.loads(path.read_text(encoding="utf-8"))
        twice = set(part) & set(merged)
        if twice:
            raise ValueError(f"{path.name} defines keys again: {sorted(twice)[:5]}")
        merged.update(part)
    return merged


def t(key: str, lang: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """The text for ``key``; falls back to Chinese, then to the key itself."""
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    text = catalog(lang).get(key) or catalog(DEFAULT_LANGUAGE).get(key) or key
    if params:
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return text
    return text


def name(row: object, lang: str) -> str:
    """The localised name of a row with ``name_zh``/``name_en``."""
    return getattr(row, "name_en" if lang == "en" else "name_zh")
