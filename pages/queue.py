"""Queue: what my unit must act on, in tabs, sorted, with filters; a click on a row opens the
case, ticked rows take a batch move; on a phone, a card per case."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

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

page = setup_page("queue")
with page.guard():
    st.title(page.t("page.queue"))
    tick_in_background()
    page.show_flash()

    head = queue.header(page.actor)
    tabs, counts, options = head.tabs, head.counts, head.options
    queue_state.restore(tabs, options)
    st.session_state.setdefault("queue_tab", tabs[0])
    tab = st.segmented_control(page.t("queue.tabs"), tabs, key="queue_tab",
                               format_func=lambda k: f"{page.t('queue.tab.' + k)} ({counts.get(k, 0):,})",
                               label_visibility="collapsed") or tabs[0]

    with st.expander(page.t("queue.filters"), icon=":material/filter_list:"):
        filters = case_filters(page, options, "queue")
        sort = st.selectbox(page.t("queue.sort"), queue.SORTS, key="queue_sort",
                            format_func=lambda s: page.t("queue.sort." + s))
    page_no = queue_state.page_of((tab, filters, sort))
    found = queue.listing(page.actor, tab, filters, page_no, sort=sort)
    rows, total, names = found.rows, found.total, found.names
    if not rows and page_no:  # the page emptied (cases moved on): back to the first
        st.session_state["queue_page"] = page_no = 0
        found = queue.listing(page.actor, tab, filters, 0, sort=sort)
        rows, total, names = found.rows, found.total, found.names
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

    show_community = len(options.communities) > 1
    show_call = tab in ("calls", "overdue", "supervised") or any(r.call_reason for r in rows)
    col = {k: page.t("queue.col." + k) for k in (
        "time_left", "code", "category", "excerpt", "address", "community", "reporter", "age",
        "hurry", "call_reason", "severity", "state")}
    records = []
    for r in rows:
        record = {col["time_left"]: time_left(r),
                  col["code"]: r.code + (" ★" if r.supervised else ""),
                  col["category"]: page.name(names[("category", r.category_id)]),
                  col["excerpt"]: hidden_or(r.excerpt),
                  col["address"]: hidden_or(r.address)}
        if show_community:
            record[col["community"]] = page.name(names[("unit", r.community_id)])
        record[col["reporter"]] = plain(r.reporter or "")
        record[col["age"]] = age(r)
        record[col["hurry"]] = str(r.hurry_count) if r.hurry_count else ""
        if show_call:
            record[col["call_reason"]] = call_reason(r)
        record[col["severity"]] = page.t("severity." + r.severity)
        record[col["state"]] = page.t("state." + r.state) + \
            (page.t("queue.extension_asked") if r.extension_asked else "")
        records.append(record)
    frame = pd.DataFrame(records)
    statuses = [r.status(now) for r in rows]
    styled = frame.style.apply(lambda column: [STATUS_CSS.get(s or "", "") for s in statuses],
                               subset=[col["time_left"]])

    # Ticks and clicks come back as row positions: they are turned into case ids against the
    # rows drawn here, under a key that changes with those rows and with the view (see
    # ``queue_state.table_key``).
    drawn = [r.id for r in rows]
    selection = None
    if not on_phone():
        with st.container(key="wide_queue"):
            selection = st.dataframe(
                styled, hide_index=True, width="stretch", on_select="rerun",
                selection_mode=["multi-row", "single-cell"],
                key=queue_state.table_key(drawn, queue_state.generation(),
                                          view=(tab, filters, sort, page_no)))
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

    pages = max(1, -(-total // queue.PAGE_SIZE))
    if pages > 1:
        chosen = st.number_input(page.t("queue.page", pages=pages), min_value=1, max_value=pages,
                                 value=min(page_no + 1, pages), step=1)
        if chosen - 1 != page_no:
            st.session_state["queue_page"] = int(chosen) - 1
            st.rerun()

    picked = selection.selection if selection else None
    clicked = queue_state.ids_at([cell[0] for cell in picked.cells[:1]], drawn) if picked else []
    if clicked:
        st.switch_page("pages/case.py", query_params=page.query({"id": str(clicked[0])}))

    by_id = {r.id: r for r in rows}
    ticked = [by_id[i] for i in queue_state.ids_at(picked.rows if picked else [], drawn)]

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
                           codes="、".join(codes[i] for i in outcome.refused))
            else:
                page.flash("queue.batch.done", done=len(outcome.done))
        queue_state.untick()

    if ticked:
        st.subheader(page.t("queue.batch.title", n=len(ticked)))
        offer = batch.offer(page.actor, [r.id for r in ticked])
        if not any(offer.eligible.values()):
            st.info(page.t("queue.batch.none"))
        else:
            st.text_input(page.t("queue.batch.note"), max_chars=200, key="queue_batch_note")
            buttons = st.columns(len(batch.BATCH_ACTIONS))
            for column, action in zip(buttons, batch.BATCH_ACTIONS, strict=True):
                ids = offer.eligible[action]
                column.button(page.t("queue.batch." + action, n=len(ids)), disabled=not ids,
                              key=f"queue_batch_{action}", type="primary", on_click=run_batch,
                              args=(action, {i: by_id[i].version for i in ids},
                                    {i: by_id[i].code for i in ids}))
