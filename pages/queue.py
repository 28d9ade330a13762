"""Queue: what my unit must act on, in tabs, sorted, with filters; a click on a row opens the
case, ticked rows take a batch move; on a phone, a card per case."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from functools import partial

import pandas as pd
import streamlit as st

from lib.cases import batch, queue
from lib.cases.tick import tick_in_background
from lib.core.errors import DomainError
from lib.ui import queue_state
from lib.ui.filters import case_filters
from lib.ui.page import setup_page
from lib.ui.responsive import on_phone
from lib.ui.text import md_escape, plain

STATUS_CSS = {"overdue": "background-color:#fde2e1;color:#a4161a",
              "due_soon": "background-color:#fff1d6;color:#8a5a00",
              "on_time": "background-color:#e3f4e6;color:#1d6b32"}
STATUS_ICON = {"overdue": "🔴", "due_soon": "🟠", "on_time": "🟢"}
# Why a case was left out of a batch that ran (the move's refusal) in the clerk's words.

BAR_CSS = """<style>
[data-testid="stLayoutWrapper"]:has(> .st-key-queue_batch_bar) { position: sticky; bottom: 0;
  z-index: 5; background: #fff; border-top: 1px solid rgba(49, 51, 63, 0.2);
  padding: 0.5rem 0 0.25rem; }
</style>"""
# The columns a clerk decides on, always drawn, narrow ones first so that 状态 and 紧急程度 are in
# view on a 1366-px screen; the optional ones (``queue_state.OPTIONAL_COLUMNS``) follow when chosen.
NEEDED = ("time_left", "code", "state", "severity", "category", "age", "hurry", "excerpt")
WIDTH = {"time_left": 90, "code": 105, "state": 90, "severity": 72, "category": 110, "age": 64,
         "hurry": 44, "excerpt": 250, "address": 160, "community": 110, "reporter": 130,
         "call_reason": 200}

page = setup_page("queue")
with page.guard():
    opened = queue_state.opened()
    if opened is not None:  # a click on a cell of the table (``queue_state.picked``)
        st.switch_page("pages/case.py", query_params=page.query({"id": str(opened)}))
    st.title(page.t("page.queue"))
    tick_in_background()
    page.show_flash()

    tabs = queue.tabs_for(page.actor)
    options = queue.options_for(page.actor)
    queue_state.restore(tabs, options)
    if st.session_state.get("queue_tab") not in tabs:
        st.session_state["queue_tab"] = tabs[0]
    tab = st.session_state["queue_tab"]
    tab_slot = st.container()  # drawn once the counts are read, with the same filters

    with st.expander(page.t("queue.filters"), icon=":material/filter_list:"):
        filters = case_filters(page, options, "queue")
        left, right = st.columns(2)
        sort = left.selectbox(page.t("queue.sort"), queue.SORTS, key="queue_sort",
                              format_func=lambda s: page.t("queue.sort." + s))
        extra = right.multiselect(page.t("queue.columns"), queue_state.OPTIONAL_COLUMNS,
                                  key="queue_columns",
                                  format_func=lambda c: page.t("queue.col." + c))
    page_no = queue_state.page_of((tab, filters, sort))
    found = queue.view(page.actor, tab, filters, page_no, sort=sort)
    rows, total, names, counts = found.rows, found.total, found.names, found.counts
    st.session_state["queue_page"] = page_no = found.page
    tab_slot.segmented_control(
        page.t("queue.tabs"), tabs, key="queue_tab", label_visibility="collapsed",
        format_func=lambda k: f"{page.t('queue.tab.' + k)} ({counts.get(k, 0):,})")
    queue_state.save({"queue_tab": tabs[0], "queue_sort": "deadline"})
    # What 上一件 / 下一件 walk on the case page: this tab as filtered, in this order.
    st.session_state["queue_walk"] = found.walk

    now = datetime.now(timezone.utc)
    st.caption(page.t("queue.showing", shown=len(rows), total=total))
    if not rows:
        st.info(page.t("queue.empty"))
        st.stop()

    def time_left(row: queue.QueueRow) -> str:
        left = row.time_left(now)
        return page.t("queue.time." + left[0], n=left[1]) if left else "—"

    def age(row: queue.QueueRow) -> str:
        kind, n = row.age(now)
        return page.t("queue.age." + kind, n=n)

    def call_reason(row: queue.QueueRow) -> str:
        if row.called_by_tick:
            return page.t("queue.auto_call")
        return plain(row.call_reason or "")

    def hidden_or(value: str | None) -> str:
        return plain(value) if value is not None else page.t("case.content_hidden")

    shown = [*NEEDED, *(c for c in queue_state.OPTIONAL_COLUMNS if c in (extra or []))]
    # Ticks and clicks come back as row positions: they are turned into case ids against the
    # rows drawn (``queue_state.table_for``); each column's name ends with the invisible mark of
    # these rows, so that a click says which rows it was counted on (``queue_state.picked``).
    drawn = [r.id for r in rows]
    key, mark = queue_state.table_for(drawn) if not on_phone() else ("", "")
    col = {k: page.t("queue.col." + k) + mark for k in shown}
    cell = {
        "time_left": time_left,
        "code": lambda r: r.code + (" ★" if r.supervised else ""),
        "state": lambda r: page.t("state." + r.state)
        + (page.t("queue.extension_asked") if r.extension_asked else ""),
        "severity": lambda r: page.t("severity." + r.severity),
        "category": lambda r: page.name(names[("category", r.category_id)]),
        "age": age,
        "hurry": lambda r: str(r.hurry_count) if r.hurry_count else "",
        "excerpt": lambda r: hidden_or(r.excerpt),
        "address": lambda r: hidden_or(r.address),
        "community": lambda r: page.name(names[("unit", r.community_id)]),
        "reporter": lambda r: plain(r.reporter or ""),
        "call_reason": call_reason,
    }
    # Only the columns shown are sent (st.dataframe sends every column it is given).
    frame = pd.DataFrame([{col[k]: cell[k](r) for k in shown} for r in rows], columns=list(col.values()))
    statuses = [r.status(now) for r in rows]
    styled = frame.style.apply(lambda column: [STATUS_CSS.get(s or "", "") for s in statuses],
                               subset=[col["time_left"]])

    selection = None
    if key:
        with st.container(key="wide_queue"):
            selection = st.dataframe(
                styled, hide_index=True, width="stretch", key=key,
                on_select=partial(queue_state.picked, key),
                selection_mode=["multi-row", "single-cell"],
                column_config={col[k]: st.column_config.TextColumn(width=WIDTH[k]) for k in shown})
            st.caption(page.t("queue.legend"))
    else:
        for r, status in zip(rows, statuses, strict=True):
            with st.container(border=True, key=f"narrow_queue_{r.id}"):
                icon = STATUS_ICON.get(status or "", "⚪")
                page.link("case", params={"id": str(r.id)},
                          label=f"{icon} {r.code}{' ★' if r.supervised else ''} · "
                                   f"{page.name(names[('category', r.category_id)])} · {time_left(r)}")
                lines = [hidden_or(r.excerpt), hidden_or(r.address)]
                facts = [page.t("state." + r.state), age(r)]
                if r.hurry_count:
                    facts.append(page.t("queue.hurried", n=r.hurry_count))
                if r.call_reason or r.called_by_tick:
                    facts.append(call_reason(r))
                st.caption(md_escape(" · ".join(lines)) + "  \n" + md_escape(" · ".join(facts)))

    by_id = {r.id: r for r in rows}
    picked = selection.selection if selection else None
    ticked = [by_id[i] for i in queue_state.ids_at(picked.rows if picked else [], drawn)]

    def why(key: str, case: queue.QueueRow) -> str:
        return page.t(key, state=page.t("state." + case.state))

    def run_batch(action: str, versions: dict[int, int], codes: dict[int, str]) -> None:
        """The button's callback: the cases and versions it was drawn with, nothing else; the
        table starts unticked afterwards."""
        try:
            outcome = batch.run(page.actor, action, versions,
                                note=st.session_state.get("queue_batch_note", ""))
        except DomainError as err:
            page.flash(err.key, error=True, **err.params)
        except Exception:  # a callback runs outside the page's guard
            logging.getLogger("pages.queue").exception("batch %s failed", action)
            page.flash("error.unexpected", error=True)
        else:
            if outcome.refused:
                page.flash("queue.batch.refused", error=True, done=len(outcome.done),
                           n=len(outcome.refused),
                           codes=page.t("queue.batch.joiner").join(
                               page.t("queue.batch.case_why", code=codes[i],
                                      why=page.t(batch.why_refused(k)))
                               for i, k in outcome.refused.items()))
            else:
                page.flash("queue.batch.done", done=len(outcome.done))
        queue_state.untick()

    if ticked:
        # Below the table and sticky at the window's foot: in view while rows are ticked, and
        # never moving the rows under the clerk's pointer as it appears.
        st.html(BAR_CSS)
        with st.container(key="queue_batch_bar"):
            offer = batch.offer(page.actor, [r.id for r in ticked])
            st.markdown("**" + md_escape(page.t("queue.batch.title", n=len(ticked))) + "**")
            # The cases themselves, by code: a tick made as the rows were redrawn lands on the
            # row now at its place, and the clerk sees which case that is before any move.
            st.caption(md_escape(page.t("queue.batch.ticked", codes=page.t("queue.batch.joiner")
                                        .join(r.code for r in ticked))))
            if not any(offer.eligible.values()):
                st.info(page.t("queue.batch.none"))
            else:
                note_col, *buttons = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
                note_col.text_input(page.t("queue.batch.note"), max_chars=200,
                                    key="queue_batch_note")
                for column, action in zip(buttons, batch.BATCH_ACTIONS, strict=True):
                    ids = offer.eligible[action]
                    column.button(page.t("queue.batch." + action, n=len(ids)), disabled=not ids,
                                  key=f"queue_batch_{action}", type="primary", width="stretch",
                                  on_click=run_batch,
                                  args=(action, {i: by_id[i].version for i in ids},
                                        {i: by_id[i].code for i in ids}))
            # Which ticked cases a move leaves out, and why: for each move offered (every move
            # when none is).
            anything = any(offer.eligible.values())
            for action in batch.BATCH_ACTIONS:
                left_out = offer.left_out.get(action, {})
                if left_out and (offer.eligible[action] or not anything):
                    st.caption(md_escape(page.t(
                        "queue.batch.left_out", n=len(left_out),
                        move=page.t("queue.batch.verb." + action),
                        cases=page.t("queue.batch.joiner").join(
                            page.t("queue.batch.case_why", code=by_id[i].code,
                                   why=why(k, by_id[i])) for i, k in left_out.items()))))

    pages = max(1, -(-total // queue.PAGE_SIZE))
    if pages > 1:
        chosen = st.number_input(page.t("queue.page", pages=pages), min_value=1, max_value=pages,
                                 value=min(page_no + 1, pages), step=1)
        if chosen - 1 != page_no:
            st.session_state["queue_page"] = int(chosen) - 1
            st.rerun()
