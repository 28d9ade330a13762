"""The note an assessment page shows for a month that has closed (结账), or is about to."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from lib.core.clock import china
from lib.kpi import months
from lib.kpi.views import Query
from lib.ui.page import Page


def day(page: Page, moment: datetime) -> str:
    """"12月8日" / "8 Dec": the day a month closed or will close, China time."""
    local = china(moment)
    return page.t("kpi.months.day", month=page.t(f"kpi.tick.month.{local.month:02d}"),
                  day=local.day)


def closed_text(page: Page, status: months.Status) -> str | None:
    """"2026-11 已于 12月8日 结账发布 … 调整 2 项", or when an ended month will close; None for the
    month under way."""
    if status.closed_at is not None:
        return page.t("kpi.months.closed_note", label=status.label,
                      date=day(page, status.closed_at), count=status.adjustments)
    if status.closes_at is not None:
        return page.t("kpi.months.open_note", label=status.label, date=day(page, status.closes_at))
    return None


def month_note(page: Page, query: Query, *, partial: bool = False) -> None:
    """Under a page's heading: the month as published (closed), or when it will close."""
    status = months.status(page.actor, query)
    if status.closed_at is not None:
        st.info(closed_text(page, status), icon=":material/lock:")
    elif not partial:
        text = closed_text(page, status)
        if text:
            st.caption(text)
