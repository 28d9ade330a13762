"""Ledger (台账): every case in my area, searchable, with CSV and Excel export.

Its filters live in the address (``ledger.ADDRESS``: unit, category, status, from, to,
closed_since), so that a home tile or an assessment chart opens exactly the cases it counts and
a view can be shared; a value the reader may not choose is dropped with a message.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from lib.cases import ledger
from lib.cases.queue import options_for
from lib.core.errors import DomainError
from lib.kpi import behind
from lib.org.units import unit_of
from lib.ui.filters import case_filters
from lib.ui.page import setup_page, write_query
from lib.ui.text import md_escape, plain
from lib.ui.widgets import DATE_FORMAT

PAGE_SIZE = 100
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHOWN = ["code", "category", "community", "address", "severity", "state", "reporter_name",
         "reporter_phone", "reported_at", "closed_at", "overdue", "rating"]
APPLIED = "ledger_applied"  # the address whose filters the widgets hold
AREA = "ledger_area"  # (id, kind, code, name) of a unit above a community the address chose


DRILL = "ledger_drill"  # the figure's cases the address asked for: behind.Found


def address_now() -> dict[str, str]:
    return {k: st.query_params[k] for k in (*ledger.ADDRESS, *ledger.DRILL_ADDRESS)
            if st.query_params.get(k)}


def put(key: str, value: object) -> None:
    """A select box's value; None ("all", its first option) by leaving the widget to its default:
    a select box whose state is None shows no choice at all."""
    if value is None:
        st.session_state.pop(key, None)
    else:
        st.session_state[key] = value


def apply_address(asked: dict[str, str]) -> None:
    """Put the address's filters into the widgets (a tile or a chart opened this view)."""
    drill = None
    if behind.wanted(asked):  # a figure's cases: its unit and category belong to the figure
        drill = behind.open_address(page.actor, asked)
        for problem in drill.problems:
            (st.error if drill.refused else st.warning)(page.t(problem))
        if drill.drill is not None or drill.refused:
            asked = {k: v for k, v in asked.items() if k not in ("unit", "category")}
    st.session_state[DRILL] = drill if drill is not None and (drill.drill or drill.refused) \
        else None
    found = ledger.from_address(page.actor, asked)
    for problem in found.problems:
        st.warning(page.t(problem))
    communities = {u.id for u in options.communities}
    unit = found.unit
    put("ledger_community", unit.id if unit is not None and unit.id in communities else None)
    st.session_state[AREA] = (unit.id, str(unit.kind), unit.code, page.name(unit)) \
        if unit is not None and unit.id not in communities else None
    put("ledger_category", found.category_id)
    put("ledger_state", None)
    put("ledger_severity", None)
    st.session_state["ledger_text"] = ""
    put("ledger_status", found.status)
    st.session_state["ledger_closed_since"] = found.closed_since
    period = found.period
    st.session_state["ledger_period"] = tuple(d for d in (period.start, period.end) if d) \
        if period.start else ()


def write_address(filters: ledger.LedgerFilters, period: ledger.Period) -> None:
    community = {u.id: u for u in options.communities}.get(filters.community_id)
    area = st.session_state.get(AREA)
    category = {c.id: c for c in options.categories}.get(filters.category_id)
    params = ledger.address_of(filters, period,
                               community.code if community else (area[2] if area else None),
                               category.key if category else None)
    drill = st.session_state.get(DRILL)
    if drill is not None and drill.drill is not None:
        params = {k: v for k, v in params.items() if k not in ("unit", "category")} \
            | drill.drill.params()
    write_query(ledger.DRILL_ADDRESS, params)
    write_query(ledger.ADDRESS, params)
    st.session_state[APPLIED] = params


page = setup_page("ledger")
with page.guard():
    st.title(page.t("page.ledger"))

    options = options_for(page.actor)
    asked = address_now()
    if asked:
        if asked != st.session_state.get(APPLIED) or "ledger_category" not in st.session_state:
            apply_address(asked)
    elif "ledger_category" not in st.session_state:  # from the menu: the last view, if any
        apply_address(st.session_state.get(APPLIED) or {})

    drilled = st.session_state.get(DRILL)
    if drilled is not None and drilled.refused:  # another unit's cases: nothing is listed
        st.info(page.t("behind.refused_note"))
        if st.button(page.t("behind.clear"), key="ledger_drill_clear"):
            st.session_state[DRILL] = None
            write_query(ledger.DRILL_ADDRESS, {})
            st.rerun()
        st.stop()
    drill = drilled.drill if drilled is not None else None
    if drill is not None:
        _, line = behind.describe(page.actor, drill, page.lang)
        left, right = st.columns([4, 1])
        left.info(md_escape(line))
        if right.button(page.t("behind.clear"), key="ledger_drill_clear"):
            st.session_state[DRILL] = None
            write_query(ledger.DRILL_ADDRESS, {})
            st.rerun()
        others = [p for p in behind.parts_of(drill.figure) if p != drill.part]
        if others:
            row = st.columns(len(others) + 1)
            row[0].caption(page.t("behind.switch"))
            for column, part in zip(row[1:], others, strict=True):
                page.link("ledger", label=behind.part_name(drill.figure, part, page.lang),
                          icon=":material/list:", params=drill.params(part), where=column)
        st.caption(page.t("behind.note"))
    area = st.session_state.get(AREA)
    if area is not None:
        left, right = st.columns([4, 1])
        left.info(page.t("ledger.filter.area", unit=md_escape(area[3])))
        if right.button(page.t("ledger.filter.area_clear"), key="ledger_area_clear"):
            st.session_state[AREA] = None
            area = None
    filters = case_filters(page, options, "ledger")
    left, middle, right = st.columns([2, 2, 3])
    status = left.selectbox(page.t("ledger.filter.status"), [None, *ledger.STATUSES],
                            format_func=lambda s: page.t("queue.all") if s is None
                            else page.t("ledger.status." + s), key="ledger_status",
                            help=page.t("ledger.filter.status_help"))
    dates = middle.date_input(page.t("ledger.period"), key="ledger_period", format=DATE_FORMAT)
    start, end = (tuple(dates) + (None, None))[:2] if isinstance(dates, (tuple, list)) else (dates, None)
    since: date | None = st.session_state.get("ledger_closed_since")
    if since is not None:
        right.info(page.t("ledger.filter.closed_since", day=since.isoformat()))
        if right.button(page.t("ledger.filter.area_clear"), key="ledger_since_clear"):
            st.session_state["ledger_closed_since"] = since = None

    filters = ledger.LedgerFilters(
        category_id=filters.category_id, community_id=filters.community_id, state=filters.state,
        severity=filters.severity, text=filters.text, status=status, closed_since=since,
        unit_id=area[0] if area else None, unit_kind=area[1] if area else None, drill=drill)
    period = ledger.Period(start, end)
    write_address(filters, period)
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
    community = {u.id: u for u in options.communities}.get(filters.community_id)
    unit_name = area[3] if area else page.name(community) if community else \
        page.name(unit_of(page.actor))
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
                    data = ledger.export(page.actor, filters, period, fmt=fmt, lang_name=page.name,
                                         label=label, progress=progress)
                    st.session_state[f"ledger_file_{fmt}"] = (data, ledger.file_name(
                        unit_name, period, fmt, today=ledger.china_today(), label=label))
                except DomainError as err:
                    page.error(err)
            if f"ledger_file_{fmt}" in st.session_state:
                data, name = st.session_state[f"ledger_file_{fmt}"]
                st.download_button(page.t("ledger.download_" + fmt), data,
                                   file_name=name, mime=mime, key=f"ledger_download_{fmt}",
                                   on_click="ignore")
