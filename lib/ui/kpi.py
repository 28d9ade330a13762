"""Drawing helpers shared by the assessment pages: the filters, the figure cards with their
counts and definitions, value formatting, chart layout and the note saying when the figures were computed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import plotly.graph_objects as go
import streamlit as st

from lib.core.clock import china_time
from lib.core.i18n import DEFAULT_LANGUAGE, t
from lib.kpi import figures, views
from lib.kpi.extras import EXTRAS
from lib.kpi.figures import Value
from lib.kpi.report import kind_of
from lib.kpi.views import Options, Query
from lib.ui import responsive
from lib.ui.page import Page
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


def card(page: Page, column, key: str, now: Value, before: Value | None) -> None:  # noqa: ANN001
    """A metric with the change against the previous period; its help gives the definition and
    the counts."""
    kind = kind_of(key)
    delta = None
    if before is not None and now.value is not None and before.value is not None:
        change = now.value - before.value
        if kind in ("rate", "score"):
            delta = page.t("kpi.delta_points", value=f"{change * 100:+.1f}")
        elif kind == "hours":
            delta = page.t("kpi.hours", value=f"{change:+.1f}")
        else:
            delta = f"{change:+,.0f}"
    better = figures.BY_KEY[key].better if key in figures.BY_KEY else \
        next((e.better for e in EXTRAS if e.key == key), "higher")
    help_text = page.t(f"kpi.def.{key}")
    if now.denominator is not None:
        help_text += "\n\n" + basis(page, now)
    shown = fmt(page, now)
    title = label(page, key)
    if kind == "hours" and now.value is not None:  # the unit in the title: the card is narrow
        title, shown = title + page.t("kpi.unit.hours"), f"{now.value:.1f}"
    column.metric(title, shown, delta,
                  delta_color="normal" if better == "higher" else "inverse",
                  help=help_text, border=True)


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


def filters(page: Page, options: Options, *, unit: bool = True, category: bool = True) -> Query:
    """Period, unit and category in one row."""
    columns = st.columns(3)
    labels = [p.label for p in options.periods]
    spans = {p.label: p for p in options.periods}
    period = columns[0].selectbox(
        page.t("kpi.period"), labels, key="kpi_period",
        format_func=lambda x: page.t("kpi.period_label", label=x, start=spans[x].start.isoformat(),
                                     end=spans[x].end.isoformat()))
    unit_id = None
    if unit and len(options.units) > 1:
        depth = {u.id: u.path.count("/") for u in options.units}
        top = min(depth.values())
        ids = [u.id for u in options.units]
        unit_names = {u.id: "\u3000" * (depth[u.id] - top) + page.name(u) for u in options.units}
        unit_id = columns[1].selectbox(page.t("kpi.unit_filter"), ids, key="kpi_unit",
                                       format_func=lambda x: unit_names.get(x, str(x)))
    category_id = None
    if category:
        category_ids = [None] + [c.id for c in options.categories]
        category_names = {c.id: page.name(c) for c in options.categories}
        category_id = columns[2].selectbox(
            page.t("kpi.category_filter"), category_ids, key="kpi_category",
            format_func=lambda x: page.t("queue.all") if x is None else category_names.get(x, str(x)))
    return Query(label=period, unit_id=unit_id, category_id=category_id)


@dataclass(frozen=True)
class Head:
    """What an assessment page's head chose and knows: the filters, and when the roll-ups
    were computed."""

    query: Query
    computed_at: datetime | None


def page_head(page: Page, *, title: bool = True, category: bool = True) -> Head:
    """The head every assessment page shares: its title, a refresh of roll-ups gone stale (on a
    thread, see ``views.refresh_if_stale``), and the period, unit and category filters."""
    if title:
        st.title(page.t("page." + page.key))
    computed_at = views.refresh_if_stale()
    return Head(filters(page, views.options(page.actor), category=category), computed_at)


def scope_line(page: Page, head: Head, scope_name: str, period_label: str) -> None:
    """Under the head: whose figures, which period, and as of when."""
    heading(page, scope_name, period_label)
    as_of_note(page, head.computed_at)


def heading(page: Page, scope_name: str, period_label: str) -> None:
    """Under the title and filters: whose figures, which period."""
    st.caption(page.t("kpi.scope_caption", unit=md_escape(scope_name), period=period_label))


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


def show(chart: go.Figure, key: str, height: int = 360, *, periods: bool = False) -> None:
    """``periods``: the x axis is assessment months ("2026-03"), shown as written, not read as
    dates (which plotly would label in English).

    On a phone (``responsive.on_phone``) the chart fits a 390-px screen: no toolbar over the
    plot, months as "11月", vertical bars over categories turned horizontal, axes that make
    room for their labels."""
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
    st.plotly_chart(layout(chart, height, phone=phone), width="stretch", config=config, key=key)
