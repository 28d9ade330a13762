"""Showing user-supplied text inside Markdown-rendering elements (titles, captions, alerts)."""

from __future__ import annotations

import re

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def md_escape(text: str | None) -> str:
    """Backslash-escape every Markdown and HTML character and drop direction overrides, so
    links, images and tags in user text render as the characters typed."""
    text = _INVISIBLE.sub("", text or "")
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text).replace("\n", " ")


def plain(text: str | None) -> str:
    """User text for ``st.text`` and table cells: shown as typed, minus direction overrides
    (U+202E and friends would let a reporter make text read backwards)."""
    return _INVISIBLE.sub("", text or "")
