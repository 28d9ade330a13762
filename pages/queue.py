"""Queue: what my unit must act on, in tabs, sorted by deadline, with filters."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from lib.cases import queue
from lib.cases.tick import tick_in_background
from lib.ui.cards import local_time
from lib.ui.filters import case_filters
from lib.ui.page import setup_page
from lib.ui.text import plain

page = setup_page("queue")
with page.guard():
    st.title(page.t("page.queue"))
    tick_in_background()

    head = queue.header(page.actor)
    tabs, counts, options = head.tabs, head.counts, head.options
    tab = st.segmented_control(page.t("queue.tabs"), tabs, default=tabs[0], key="queue_tab",
                               format_func=lambda k: f"{page.t('queue.tab.' + k)} ({counts.get(k, 0):,})",
                               label_visibility="collapsed") or tabs[0]

    with st.expander(page.t("queue.filters"), icon=":material/filter_list:"):
        filters = case_filters(page, options, "queue")
    signature = (tab, filters)
    if st.session_state.get("queue_signature") != signature:
        st.session_state["queue_signature"] = signature
        st.session_state["queue_page"] = 0
    page_no = st.session_state.get("queue_page", 0)
    found = queue.listing(page.actor, tab, filters, page_no)
    rows, total, names = found.rows, found.total, found.names

    now = datetime.now(timezone.utc)
    st.caption(page.t("queue.showing", shown=len(rows), total=total))
    if not rows:
        st.info(page.t("queue.empty"))
        st.stop()

    frame = pd.DataFrame([{
        page.t("queue.col.status"): page.t("deadline." + status)
        if (status := r.status(now)) else "",
        page.t("queue.col.code"): r.code + (" ★" if r.supervised else ""),
        page.t("queue.col.category"): page.name(names[("category", r.category_id)]),
        page.t("queue.col.community"): page.name(names[("unit", r.community_id)]),
        page.t("queue.col.address"): plain(r.address) if r.address is not None
        else page.t("case.content_hidden"),
        page.t("queue.col.severity"): page.t("severity." + r.severity),
        page.t("queue.col.state"): page.t("state." + r.state),
        page.t("queue.col.due"): local_time(r.due_at),
    } for r in rows])
    status_css = {page.t("deadline.overdue"): "background-color:#fde2e1;color:#a4161a",
                  page.t("deadline.due_soon"): "background-color:#fff1d6;color:#8a5a00",
                  page.t("deadline.on_time"): "background-color:#e3f4e6;color:#1d6b32"}
    styled = frame.style.map(lambda v: status_css.get(v, ""), subset=[page.t("queue.col.status")])
    selection = st.dataframe(styled, hide_index=True, width="stretch", on_select="rerun",
                             selection_mode="single-row", key="queue_table")
    st.caption(page.t("queue.legend"))
    pages = max(1, -(-total // queue.PAGE_SIZE))
    if pages > 1:
        chosen = st.number_input(page.t("queue.page", pages=pages), min_value=1, max_value=pages,
                                 value=page_no + 1, step=1)
        if chosen - 1 != page_no:
            st.session_state["queue_page"] = int(chosen) - 1
            st.rerun()
    picked = selection.selection.rows if selection else []
    if picked:
        st.switch_page("pages/case.py", query_params={"id": str(rows[picked[0]].id)})
