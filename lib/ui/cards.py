"""Small drawing helpers shared by the case, queue and tracking pages."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from datetime import datetime

import streamlit as st
from PIL import Image

from lib.cases.timeline import Line, Phrase
from lib.core.clock import china_time
from lib.ui.page import Page
from lib.ui.text import plain

STATUS_COLOUR = {"overdue": "red", "due_soon": "orange", "on_time": "green"}


def local_time(value: datetime | None) -> str:
    """China time, to the minute; empty for none."""
    return china_time(value)


def countdown(page: Page, due: datetime | None, now: datetime) -> str:
    if due is None:
        return ""
    seconds = int((due - now).total_seconds())
    hours, rest = divmod(abs(seconds), 3600)
    days, hours = divmod(hours, 24)
    minutes = rest // 60
    span = page.t("time.dhm", d=days, h=hours, m=minutes) if days else \
        page.t("time.hm", h=hours, m=minutes)
    return page.t("time.left" if seconds >= 0 else "time.late", span=span)


def inline_photo(data: bytes, width: int) -> str:
    """A stored photo as a JPEG ``data:`` URI, scaled to twice ``width`` (sharp on dense
    screens). Photos are re-encoded JPEGs of at most 2048 px, so the decode is bounded."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (width * 2, width * 4))  # a JPEG decodes at 1/2–1/8 scale: faster
        thumb = image.convert("RGB")
    thumb.thumbnail((width * 2, width * 4))
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def photos(data: Sequence[bytes], captions: list[str], width: int = 160) -> None:
    """Case photos drawn inline, never through Streamlit's media store: a ``/media/…`` URL
    answers anyone who holds it, without a login, for as long as any session still shows the
    photo, while a ``data:`` URI travels only in the page of the reader lib allowed to see it."""
    st.image([inline_photo(d, width) for d in data], width=width, caption=captions)


def status_badge(page: Page, status: str | None) -> None:
    if status:
        st.badge(page.t("deadline." + status), color=STATUS_COLOUR[status])


def say(page: Page, phrase: Phrase) -> str:
    """A phrase of lib (lib.cases.timeline) in the page's language: phrases among its
    parameters translated first, moments in China time, anything else as it is."""
    params = {name: say(page, value) if isinstance(value, Phrase)
              else local_time(value) if isinstance(value, datetime) else value
              for name, value in phrase.params.items()}
    return page.t(phrase.key, **params)


def line_text(page: Page, line: Line) -> str:
    """A timeline line's facts and note, joined: the note as typed (plain text, never
    rendered — for table cells and ``st.text``)."""
    parts = [say(page, p) for p in line.facts]
    if line.note:
        parts.append(plain(line.note))
    return " · ".join(parts)


def public_timeline(page: Page, lines: list[Line]) -> None:
    """What the reporter sees: when and what, no names, no notes."""
    for line in lines:
        st.markdown(f"- {local_time(line.at)} · {say(page, line.action)}")
