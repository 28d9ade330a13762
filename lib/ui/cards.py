"""Small drawing helpers shared by the case, queue and tracking pages."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from lib.core.clock import china_time
from lib.ui.page import Page

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


def status_badge(page: Page, status: str | None) -> None:
    if status:
        st.badge(page.t("deadline." + status), color=STATUS_COLOUR[status])


def public_timeline(page: Page, timeline: list[tuple[datetime, str]]) -> None:
    """What the reporter sees: when and what, no names, no notes."""
    for at, action in timeline:
        st.markdown(f"- {local_time(at)} · {page.t('public_action.' + action)}")
