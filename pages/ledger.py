"""Ledger (台账): every case in my area, searchable, with CSV and Excel export."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.cases import ledger
from lib.cases.queue import options_for
from lib.core.errors import DomainError
from lib.ui.filters import case_filters
from lib.ui.page import setup_page
from lib.ui.text import plain

PAGE_SIZE = 100
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHOWN = ["code", "category", "community", "address", "severity", "state", "reporter_name",
         "reporter_phone", "reported_at", "closed_at", "overdue", "rating"]

page = setup_page("ledger")
with page.guard():
    st.title(page.t("page.ledger"))

    options = options_for(page.actor)

    filters = case_filters(page, options, "ledger")
    dates = st.date_input(page.t("ledger.period"), value=(), key="ledger_period")
    start, end = (tuple(dates) + (None, None))[:2] if isinstance(dates, (tuple, list)) else (dates, None)

    period = ledger.Period(start, end)
    signature = (filters, period)
    if st.session_state.get("ledger_signature") != signature:
        st.session_state["ledger_signature"] = signature
        st.session_state["ledger_page"] = 1

    def label(key: str) -> str:
        return page.t(key)

    try:
        found, total = ledger.page(page.actor, filters, period, offset=(st.session_state["ledger_page"] - 1)
                                   * PAGE_SIZE, limit=PAGE_SIZE, lang_name=page.name, label=label)
    except DomainError as err:
        page.error(err)
        st.stop()

    st.caption(page.t("ledger.total", total=total))
    if found:
        frame = pd.DataFrame([{page.t("ledger.col." + c): plain(str(row[c])) for c in SHOWN}
                              for row in found])
        selection = st.dataframe(frame, hide_index=True, width="stretch", on_select="rerun",
                                 selection_mode="single-row", key="ledger_table")
        pages = max(1, -(-total // PAGE_SIZE))
        if pages > 1:
            st.number_input(page.t("queue.page", pages=pages), min_value=1, max_value=pages, step=1,
                            key="ledger_page")
        picked = selection.selection.rows if selection else []
        if picked:
            st.switch_page("pages/case.py", query_params={"id": str(found[picked[0]]["id"])})
    else:
        st.info(page.t("queue.empty"))

    st.subheader(page.t("ledger.export"))
    st.caption(page.t("ledger.export_note", max=f"{ledger.EXPORT_MAX:,}"))
    left, right = st.columns(2)
    for column, fmt, mime in ((left, "csv", "text/csv"),
                              (right, "xlsx", XLSX)):
        with column:
            if st.button(page.t("ledger.prepare_" + fmt), key=f"ledger_prepare_{fmt}"):
                bar = st.progress(0.0, text=page.t("ledger.preparing"))

                def progress(done: int, all_rows: int) -> None:
                    bar.progress(done / all_rows if all_rows else 1.0,
                                 text=page.t("ledger.progress", done=f"{done:,}", total=f"{all_rows:,}"))

                try:
                    st.session_state[f"ledger_file_{fmt}"] = ledger.export(
                        page.actor, filters, period, fmt=fmt, lang_name=page.name, label=label,
                        progress=progress)
                except DomainError as err:
                    page.error(err)
            if f"ledger_file_{fmt}" in st.session_state:
                st.download_button(page.t("ledger.download_" + fmt), st.session_state[f"ledger_file_{fmt}"],
                                   file_name=f"ledger.{fmt}", mime=mime, key=f"ledger_download_{fmt}",
                                   on_click="ignore")
