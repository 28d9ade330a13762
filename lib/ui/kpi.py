"""Drawing helpers shared by the assessment pages: the filters, the figure cards with their
counts and definitions, value formatting, chart layout and the note saying when the figures were computed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lib.core.clock import china_time
from lib.core.i18n import DEFAULT_LANGUAGE, t
from lib.kpi import behind, figures, views
from lib.kpi.extras import EXTRAS
from lib.kpi.figures import Period, Value
from lib.kpi.report import kind_of
from lib.kpi.views import Options, Query
from lib.ui import responsive
from lib.ui.months import month_note
from lib.ui.page import Page, write_query
from lib.ui.text import md_escape, plain

CHART_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
GOOD, BAD, NEUTRAL = "#2e7d32", "#c62828", "#1565c0"
_MONTH = re.compile(r"^\d{4}-\d{2}$")


def safe(text: str | None) -> str:
    """Text for plotly labels and hovers (which render a few HTML tags): shown as typed."""
    return plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def label(page: Page, key: str) -> str:
    return page.t(f"kpi.figure.{key}")


def fmt(page: Page, value: Value | None, kind: str | None = None) -> str:
    """"93.2%", "12.5 小时", "1,204", or "无数据"."""
    if value is None or value.value is None:
        return page.t("kpi.no_data")
    kind = kind or kind_of(value.key)
    if kind in ("rate", "score"):
        return f"{value.value * 100:.1f}" + ("%" if kind == "rate" else "")
    if kind == "hours":
        return page.t("kpi.hours", value=f"{value.value:.1f}")
    if kind == "yuan":
        return page.t("kpi.yuan", value=f"{value.value:,.0f}")
    return f"{value.value:,.0f}"


def number(value: Value | None, kind: str | None = None) -> float | None:
    """The figure as a chart or table column holds it: per cent for rates and scores."""
    if value is None or value.value is None:
        return None
    kind = kind or kind_of(value.key)
    return round(value.value * 100, 2) if kind in ("rate", "score") else round(value.value, 2)


def basis(page: Page, value: Value) -> str:
    """The counts behind a figure: "412 / 450"."""
    if value.denominator is None:
        return ""
    return page.t("kpi.basis", top=f"{value.numerator:,.1f}".rstrip("0").rstrip("."),
                  bottom=f"{value.denominator:,.0f}")


def card(page: Page, column, key: str, now: Value, before: Value | None, *,  # noqa: ANN001
         partial: bool = False, note: str | None = None) -> None:
    """A metric with the change against the previous period; its help gives the definition and
    the counts. A change that shows as zero is neutral (no arrow, no colour); against a period
    still under way (``partial``) the change is shown uncoloured, since part of a month is not
    better or worse than a whole one. ``note`` adds to the definition where a page must tell
    the figure apart from another one beside it."""
    kind = kind_of(key)
    delta, zero = None, False
    if before is not None and now.value is not None and before.value is not None:
        change = now.value - before.value
        if kind in ("rate", "score"):
            shown_change = f"{change * 100:+.1f}"
            delta = page.t("kpi.delta_points", value=shown_change)
        elif kind == "hours":
            shown_change = f"{change:+.1f}"
            delta = page.t("kpi.hours", value=shown_change)
        else:
            shown_change = f"{change:+,.0f}"
            delta = shown_change
        zero = float(shown_change.replace(",", "")) == 0
        if zero:
            delta = delta.replace(shown_change, shown_change.lstrip("+-"))
    better = figures.BY_KEY[key].better if key in figures.BY_KEY else \
        next((e.better for e in EXTRAS if e.key == key), "higher")
    help_text = page.t(f"kpi.def.{key}")
    if note:
        help_text += "\n\n" + note
    if now.denominator is not None:
        help_text += "\n\n" + basis(page, now)
    if partial:
        help_text += "\n\n" + page.t("kpi.nav.partial_delta")
    shown = fmt(page, now)
    title = label(page, key)
    if kind == "hours" and now.value is not None:  # the unit in the title: the card is narrow
        title, shown = title + page.t("kpi.unit.hours"), f"{now.value:.1f}"
    colour = "off" if zero or partial else ("normal" if better == "higher" else "inverse")
    column.metric(title, shown, delta, delta_color=colour,
                  delta_arrow="off" if zero else "auto", help=help_text, border=True)
    case_links(page, column, key, now)


CARD_DRILL = "kpi_card_drill"  # (page key, the ledger's address of this page's unit and period)


def link_cards(page: Page, head: Head, unit_code: str) -> None:
    """The cards drawn next on this page open their cases: the ledger filtered by this unit,
    the period and category chosen, the figure and a part of it (``lib.kpi.behind``)."""
    params = {"period": head.query.label or (head.options.default if head.options else ""),
              "unit": unit_code}
    if head.options is not None and head.query.category_id is not None:
        params |= {"category": c.key for c in head.options.categories
                   if c.id == head.query.category_id}
    st.session_state[CARD_DRILL] = (page.key, params)


def drill_params(page: Page, key: str, part: str) -> dict[str, str] | None:
    """The ledger's address of a figure's part on this page (None: the page set no unit)."""
    found = st.session_state.get(CARD_DRILL)
    if not found or found[0] != page.key or part not in behind.parts_of(key):
        return None
    return {**found[1], "figure": key, "part": part}


def case_links(page: Page, column, key: str, value: Value) -> None:  # noqa: ANN001
    """Under a card: "未按期解决 3" (the cases that missed it, or for a figure where lower is
    better the ones it counts) and "全部 40" (its base), each opening the ledger."""
    if key == "composite":
        for part_key in figures.COMPOSITE_PARTS:
            params = drill_params(page, part_key, behind.problem_part(part_key) or behind.BASE)
            if params:
                page.link("ledger", label=label(page, part_key), icon=":material/list:",
                          params=params, where=column)
        return
    links = []
    problem = behind.problem_part(key) if key in figures.BY_KEY else None
    if problem is not None and value.denominator is not None:
        count = value.denominator - value.numerator if problem == behind.MISSED else value.numerator
        links.append((problem, page.t("behind.link.missed", part=behind.part_name(
            key, problem, page.lang), count=f"{count:,.0f}")))
    if key in figures.BY_KEY and behind.BASE in behind.parts_of(key) and value.denominator:
        links.append((behind.BASE, page.t("behind.link.base", count=f"{value.denominator:,.0f}")))
    elif key in figures.BY_KEY and behind.parts_of(key) == [behind.COUNTED]:
        links.append((behind.COUNTED, page.t("behind.link.cases")))
    for part, text in links:
        params = drill_params(page, key, part)
        if params:
            page.link("ledger", label=text, icon=":material/list:", params=params, where=column)


def ranking_cell(page: Page, event: object, rows: list, columns: list[str], head: Head) -> None:
    """A click on a figure's cell of a ranking table opens the cases behind that unit's figure
    (``columns``: the figure key of each column, None where a column is no figure)."""
    selection = event.get("selection") if isinstance(event, dict) else getattr(event, "selection", None)
    cells = (selection.get("cells") if isinstance(selection, dict)
             else getattr(selection, "cells", [])) if selection else []
    for cell in cells or []:
        row, column = int(cell[0]), cell[1]
        names = dict(columns) if columns and isinstance(columns[0], tuple) else {}
        key = names.get(column)
        if key is None or not 0 <= row < len(rows) or not behind.parts_of(key):
            continue
        part = behind.problem_part(key) or behind.BASE
        params = {"period": head.query.label or (head.options.default if head.options else ""),
                  "unit": rows[row].unit.code, "figure": key, "part": part}
        if head.options is not None and head.query.category_id is not None and \
                rows[row].unit.kind != "department":
            params |= {"category": c.key for c in head.options.categories
                       if c.id == head.query.category_id}
        st.switch_page("pages/ledger.py", query_params=page.query(params))


def readable(page: Page, frame: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """A table whose empty cells read "—" (the page's caption says what it means there), never
    "None": the browser's grid shows a missing number as "None" whatever a Styler says, so a
    column with an empty cell is written as text ("93.2", "—"); the others stay numbers."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.isna().any():
            out[column] = [page.t("kpi.nav.empty") if pd.isna(v) else _text(v, digits)
                           for v in values]
    return out


def _text(value: object, digits: int) -> str:
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def definitions(page: Page, keys: list[str]) -> None:
    with st.expander(page.t("kpi.definitions")):
        for key in keys:
            st.markdown(f"**{label(page, key)}**{page.t('kpi.colon')}{page.t(f'kpi.def.{key}')}")


def as_of_note(page: Page, computed_at: datetime | None) -> None:
    """A caption: the figures as of when the roll-ups were computed, or not computed yet."""
    if computed_at is None:
        st.caption(page.t("kpi.fresh_never"))
    else:
        st.caption(page.t("kpi.fresh", at=china_time(computed_at)))


SAVED = "kpi_address"  # the filters as last chosen in this session, for pages opened by the menu
ALL = 0  # the category filter's "all"


def _address_now(page: Page) -> dict[str, str]:
    """The address's filters; when it has none (a page opened from the menu), the ones this
    session chose last, so that the period, unit and category follow the reader."""
    asked = {k: st.query_params[k] for k in views.ADDRESS if k in st.query_params}
    if not asked:
        asked = dict(st.session_state.get(SAVED, {}))
    return asked


def go_to(params: dict[str, str]) -> None:
    """Make ``params`` the assessment filters: in the address (other parameters stay) and in
    this session."""
    write_query(views.ADDRESS, params)
    st.session_state[SAVED] = {k: v for k, v in params.items() if k in views.ADDRESS and v}


def _chosen(options: Options) -> None:
    """A widget's choice, applied before the next run: to the address and the session."""
    query = Query(label=st.session_state.get("kpi_period"),
                  unit_id=st.session_state.get("kpi_unit"),
                  category_id=st.session_state.get("kpi_category") or None)
    go_to(views.address_of(options, query))


def period_name(page: Page, period: Period, partial: bool) -> str:
    """"2026-11（2026-11-01 至 2026-11-30）"; "2026-12 · 进行中（…）" while under way (the mark
    right after the month, where a narrow select box still shows it)."""
    label = period.label + (page.t("kpi.nav.partial_mark") if partial else "")
    return page.t("kpi.period_label", label=label, start=period.start.isoformat(),
                  end=period.end.isoformat())


def filters(page: Page, options: Options, *, unit: bool = True, category: bool = True) -> Query:
    """Period, unit and category in one row, read from and written to the address
    (``views.ADDRESS``); a value the reader may not choose falls back with a message."""
    address = views.from_address(options, _address_now(page))
    for problem in address.problems:
        st.warning(page.t(problem))
    go_to(address.params)
    query = address.query
    columns = st.columns(3)
    labels = [p.label for p in options.periods]
    spans = {p.label: p for p in options.periods}
    st.session_state["kpi_period"] = query.label
    columns[0].selectbox(
        page.t("kpi.period"), labels, key="kpi_period", on_change=_chosen, args=(options,),
        format_func=lambda x: period_name(page, spans[x], figures.is_partial(spans[x])))
    unit_id = query.unit_id
    if unit and len(options.units) > 1:
        depth = {u.id: u.path.count("/") for u in options.units}
        top = min(depth.values())
        ids = [u.id for u in options.units]
        unit_names = {u.id: "\u3000" * (depth[u.id] - top) + page.name(u) for u in options.units}
        st.session_state["kpi_unit"] = unit_id if unit_id is not None else ids[0]
        unit_id = columns[1].selectbox(page.t("kpi.unit_filter"), ids, key="kpi_unit",
                                       on_change=_chosen, args=(options,),
                                       format_func=lambda x: unit_names.get(x, str(x)))
    category_id = None
    if category:
        # 0 stands for all categories: a widget whose state is None shows no choice at all.
        category_ids = [ALL] + [c.id for c in options.categories]
        category_names = {c.id: page.name(c) for c in options.categories}
        st.session_state["kpi_category"] = query.category_id or ALL
        category_id = columns[2].selectbox(
            page.t("kpi.category_filter"), category_ids, key="kpi_category",
            on_change=_chosen, args=(options,),
            format_func=lambda x: page.t("queue.all") if x == ALL else category_names.get(x, str(x))) \
            or None
    return Query(label=query.label, unit_id=unit_id, category_id=category_id)


@dataclass(frozen=True)
class Head:
    """What an assessment page's head chose and knows: the filters, and when the roll-ups
    were computed."""

    query: Query
    computed_at: datetime | None
    options: Options | None = None

    @property
    def partial(self) -> bool:
        """The chosen period is still under way."""
        if self.options is None:
            return False
        spans = {p.label: p for p in self.options.periods}
        chosen = spans.get(self.query.label or self.options.default)
        return chosen is not None and figures.is_partial(chosen)


def page_head(page: Page, *, title: bool = True, category: bool = True) -> Head:
    """The head every assessment page shares: its title, a refresh of roll-ups gone stale (on a
    thread, see ``views.refresh_if_stale``), and the period, unit and category filters."""
    if title:
        st.title(page.t("page." + page.key))
    computed_at = views.refresh_if_stale()
    options = views.options(page.actor)
    return Head(filters(page, options, category=category), computed_at, options)


def scope_line(page: Page, head: Head, scope_name: str, period_label: str) -> None:
    """Under the head: whose figures, which period, and as of when."""
    heading(page, scope_name, period_label)
    if head.partial:
        st.info(page.t("kpi.nav.partial_note", label=period_label))
    month_note(page, head.query, partial=head.partial)  # closed: as published (lib.ui.months)
    as_of_note(page, head.computed_at)


def heading(page: Page, scope_name: str, period_label: str) -> None:
    """Under the title and filters: whose figures, which period."""
    st.caption(page.t("kpi.scope_caption", unit=md_escape(scope_name), period=period_label))


def clickable(chart: go.Figure, key: str, height: int = 360) -> list[int]:
    """A chart whose points (bars) can be clicked: drawn like ``show``; returns the indexes of
    the points clicked on this run (empty when none)."""
    chart, height, config, phone = _for_screen(chart, height)
    event = st.plotly_chart(layout(chart, height, phone=phone), width="stretch", config=config,
                            key=key, on_select="rerun", selection_mode="points")
    return picked_points(event)


def picked_points(event: object) -> list[int]:
    """The point indexes (the bars' positions, whichever trace) of a plotly selection event (a
    dict or an attribute object, whichever Streamlit returns)."""
    selection = event.get("selection") if isinstance(event, dict) else getattr(event, "selection", None)
    if not selection:
        return []
    points = selection.get("points") if isinstance(selection, dict) else getattr(selection, "points", [])
    out = []
    for point in points or []:
        index = point.get("point_index", point.get("pointIndex"))
        if index is not None:
            out.append(int(index))
    return out


def picked_rows(event: object) -> list[int]:
    """The rows of a dataframe selection event: a ticked row, or the row of a clicked cell."""
    selection = event.get("selection") if isinstance(event, dict) else getattr(event, "selection", None)
    if not selection:
        return []
    rows = selection.get("rows") if isinstance(selection, dict) else getattr(selection, "rows", [])
    cells = selection.get("cells") if isinstance(selection, dict) else getattr(selection, "cells", [])
    return [int(r) for r in rows or []] + [int(cell[0]) for cell in cells or []]


def rows_open(page: Page, frame: pd.DataFrame, key: str,
              targets: list[tuple[str, dict[str, str]] | None]) -> None:
    """A table whose click on a row opens what that row counts: ``targets[i]`` is the page
    file and its address for row ``i`` (None: the row opens nothing)."""
    if not any(targets):
        st.dataframe(frame, hide_index=True, width="stretch")
        return
    event = st.dataframe(frame, hide_index=True, width="stretch", on_select="rerun",
                         selection_mode=["single-row", "single-cell"], key=key)
    for index in picked_rows(event):
        if 0 <= index < len(targets) and targets[index] is not None:
            target, params = targets[index]
            st.switch_page(target, query_params=page.query(params))


def drill_to(options: Options, query: Query, unit_code: str) -> None:
    """A click on a unit: the page moves to that unit, the rest of the filters kept."""
    params = views.address_of(options, query)
    params["unit"] = unit_code
    go_to(params)
    st.rerun()


def ledger_params(head: Head, data_scope_code: str, *, category_key: str | None = None,
                  overdue: bool = False) -> dict[str, str]:
    """The ledger's address for the cases behind a figure of this page: the unit, the period's
    days of report, the category."""
    query, options = head.query, head.options
    spans = {p.label: p for p in options.periods} if options else {}
    period = spans.get(query.label or (options.default if options else ""))
    params = {"unit": data_scope_code}
    if period is not None:
        params |= {"from": period.start.isoformat(), "to": period.end.isoformat()}
    if category_key:
        params["category"] = category_key
    elif options is not None and query.category_id is not None:
        found = [c.key for c in options.categories if c.id == query.category_id]
        params |= {"category": found[0]} if found else {}
    if overdue:
        params["status"] = "overdue"
    return params


def layout(chart: go.Figure, height: int = 360, *, phone: bool = False) -> go.Figure:
    """Margins, height and legend; on a phone, axes that make room for their labels and a
    legend under the chart."""
    chart.update_layout(margin={"t": 30, "l": 10, "r": 10, "b": 10}, height=height,
                        legend={"orientation": "h", "y": -0.15})
    if phone:
        chart.update_xaxes(automargin=True)
        chart.update_yaxes(automargin=True)
        chart.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.2,
                                    "xanchor": "left", "x": 0})
    return chart


def _month_ticks(labels: list[str], lang: str) -> list[str]:
    """"2026-11" as "11月" ("Nov"); the first month and each January with its year on a second
    line, so that a phone's narrow axis shows whole labels, not "2026"."""
    out = []
    for n, text in enumerate(labels):
        year, month = text.split("-")
        name = t(f"kpi.tick.month.{month}", lang)
        out.append(t("kpi.tick.month_year", lang, month=name, year=year)
                   if n == 0 or month == "01" else name)
    return out


def _period_labels(chart: go.Figure) -> list[str]:
    """The assessment months on the x axis, in order of first appearance."""
    seen: list[str] = []
    for trace in chart.data:
        for x in getattr(trace, "x", None) or ():
            if isinstance(x, str) and _MONTH.match(x) and x not in seen:
                seen.append(x)
    return seen


def _bars_across(chart: go.Figure) -> int:
    """On a phone, vertical bars over named categories (their labels would be clipped to
    "社区公…") become horizontal bars, names on the left read whole. Returns the number of
    bars a trace has (0: nothing changed)."""
    bars = [trace for trace in chart.data if isinstance(trace, go.Bar)]
    if not bars or len(bars) != len(chart.data) or any(
            trace.orientation == "h" or not trace.x or not all(isinstance(x, str) for x in trace.x)
            or _MONTH.match(str(trace.x[0])) for trace in bars):
        return 0
    x_title, y_title = chart.layout.xaxis.title.text, chart.layout.yaxis.title.text
    for trace in bars:
        trace.update(x=trace.y, y=trace.x, orientation="h")
    chart.update_xaxes(title=y_title, type=None)
    chart.update_yaxes(title=x_title, autorange="reversed", type="category")
    return max(len(trace.y) for trace in bars)


def _for_screen(chart: go.Figure, height: int, *,
                periods: bool = False) -> tuple[go.Figure, int, dict, bool]:
    """The chart, its height and its toolbar for this screen; and whether it is a phone's."""
    phone = responsive.on_phone()
    if periods:
        chart.update_xaxes(type="category")
    config = CHART_CONFIG
    if phone:
        config = {**CHART_CONFIG, "displayModeBar": False}
        months = _period_labels(chart) if periods else []
        if months:
            lang = st.session_state.get("lang", DEFAULT_LANGUAGE)
            chart.update_xaxes(tickmode="array", tickvals=months,
                               ticktext=_month_ticks(months, lang), tickangle=0)
        bars = _bars_across(chart)
        if bars:
            height = max(height, 34 * bars + 90)
    return chart, height, config, phone


def show(chart: go.Figure, key: str, height: int = 360, *, periods: bool = False) -> None:
    """``periods``: the x axis is assessment months ("2026-03"), shown as written, not read as
    dates (which plotly would label in English).

    On a phone (``responsive.on_phone``) the chart fits a 390-px screen: no toolbar over the
    plot, months as "11月", vertical bars over categories turned horizontal, axes that make
    room for their labels."""
    chart, height, config, phone = _for_screen(chart, height, periods=periods)
    st.plotly_chart(layout(chart, height, phone=phone), width="stretch", config=config, key=key)
