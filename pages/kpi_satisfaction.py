"""Satisfaction (满意度): how residents rated closed cases, by unit and by category, and the
reasons given by those not satisfied, grouped."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lib.kpi import figures, views
from lib.ui import kpi
from lib.ui.page import setup_page

COLOURS = {"satisfied": "#2e7d32", "basic": "#9ccc65", "dissatisfied": "#c62828",
           "unrated": "#b0bec5"}


def stacked(rows: list[tuple[str, object]], key: str, *, clickable: bool = False) -> list[int]:
    """A horizontal stacked bar per row: satisfied, basic, dissatisfied, unrated; with
    ``clickable``, the rows whose bar was clicked."""
    figure = go.Figure()
    names = [kpi.safe(name) for name, _ in rows]
    for part, attr in (("satisfied", "satisfied"), ("basic", "basic"),
                       ("dissatisfied", "dissatisfied"), ("unrated", None)):
        values = [(c.closed - c.rated) if attr is None else getattr(c, attr) for _, c in rows]
        figure.add_trace(go.Bar(y=names, x=values, name=page.t(f"kpi.rating.{part}"),
                                orientation="h", marker_color=COLOURS[part]))
    figure.update_layout(barmode="stack")
    figure.update_yaxes(autorange="reversed")
    height = max(240, 28 * len(rows) + 80)
    if clickable:
        return kpi.clickable(figure, key, height=height)
    kpi.show(figure, key, height=height)
    return []


def table(rows: list[tuple[str, dict, object]]) -> pd.DataFrame:
    return pd.DataFrame([{
        page.t("kpi.col.unit_or_category"): name,
        kpi.label(page, "satisfaction_rate") + "%": kpi.number(values["satisfaction_rate"]),
        kpi.label(page, "callback_rate") + "%": kpi.number(values["callback_rate"]),
        kpi.label(page, "rated_share") + "%": kpi.number(values["rated_share"]),
        page.t("kpi.rating.satisfied"): c.satisfied, page.t("kpi.rating.basic"): c.basic,
        page.t("kpi.rating.dissatisfied"): c.dissatisfied,
        page.t("kpi.rating.unrated"): c.closed - c.rated, page.t("kpi.figure.closed"): c.closed,
    } for name, values, c in rows])


page = setup_page("kpi_satisfaction")
with page.guard():
    head = kpi.page_head(page)
    query = head.query
    data = views.satisfaction(page.actor, query)
    kpi.scope_line(page, head, page.name(data.scope), data.period.label)
    kpi.link_cards(page, head, data.scope.code)  # each card opens its cases

    c = data.counters
    # Satisfaction beside its base: how many closed cases were called back, and rated.
    columns = st.columns(6)
    for column, key in zip(columns[:3], ("satisfaction_rate", "callback_rate", "rated_share"),
                           strict=True):
        base = figures.base_of(key, data.values)
        kpi.card(page, column, key, data.values[key], None, partial=head.partial,
                 note=page.t(base[0], **base[1]) if base else None)
    columns[3].metric(page.t("kpi.rating.rated"), f"{c.rated:,}", border=True)
    columns[4].metric(page.t("kpi.rating.dissatisfied"), f"{c.dissatisfied:,}", border=True)
    columns[5].metric(page.t("kpi.rating.unrated"), f"{data.unrated:,}", border=True,
                      help=page.t("kpi.rating.unrated_help"))
    said, params = figures.base_of("satisfaction_rate", data.values)
    st.caption(page.t(said, **params))

    left, right = st.columns(2)
    with left:
        st.subheader(page.t("kpi.sat.distribution"))
        parts = [("satisfied", c.satisfied), ("basic", c.basic), ("dissatisfied", c.dissatisfied),
                 ("unrated", data.unrated)]
        if c.closed:
            figure = go.Figure(go.Pie(labels=[page.t(f"kpi.rating.{p}") for p, _ in parts],
                                      values=[n for _, n in parts], hole=0.5, sort=False,
                                      marker_colors=[COLOURS[p] for p, _ in parts]))
            kpi.show(figure, "sat_distribution", height=320)
        else:
            st.info(page.t("kpi.no_data"))
    with right:
        st.subheader(page.t("kpi.sat.trend"))
        rates = [p.values["satisfaction_rate"] for p in data.trend]
        figure = go.Figure(go.Scatter(
            x=[p.label for p in data.trend], y=[kpi.number(v) for v in rates], mode="lines+markers",
            customdata=[kpi.basis(page, v) for v in rates],
            hovertemplate="%{x}: %{y:.1f}%<br>%{customdata}<extra></extra>"))
        figure.update_yaxes(title=page.t("kpi.percent"))
        kpi.show(figure, "sat_trend", height=320, periods=True)
    st.dataframe(pd.DataFrame([{page.t(f"kpi.rating.{p}"): n for p, n in parts}]), hide_index=True,
                 width="stretch")

    if data.by_unit:
        st.subheader(page.t("kpi.sat.by_unit"))
        # A click on a unit's bar or row moves the page to that unit.
        clicked = stacked([(page.name(u), counters) for u, _, counters in data.by_unit],
                          f"sat_units_{data.scope.code}", clickable=True)
        event = st.dataframe(kpi.readable(page, table([(page.name(u), v, counters)
                                                       for u, v, counters in data.by_unit])),
                             hide_index=True, width="stretch", on_select="rerun",
                             selection_mode=["single-row", "single-cell"],
                             key=f"sat_units_table_{data.scope.code}")
        st.caption(page.t("kpi.nav.empty_satisfaction") + " " + page.t("kpi.nav.drill_hint"))
        for index in [*clicked, *kpi.picked_rows(event)]:
            if 0 <= index < len(data.by_unit):
                kpi.drill_to(head.options, query, data.by_unit[index][0].code)

    st.subheader(page.t("kpi.sat.by_category"))
    stacked([(page.name(cat), counters) for cat, _, counters in data.by_category], "sat_categories")
    st.dataframe(kpi.readable(page, table([(page.name(cat), v, counters)
                                          for cat, v, counters in data.by_category])),
                 hide_index=True, width="stretch")
    st.caption(page.t("kpi.nav.empty_satisfaction"))

    st.subheader(page.t("kpi.sat.reasons"))
    st.caption(page.t("kpi.sat.reasons_note"))
    if data.reasons:
        names = [page.t("kpi.reason.other") if g.key == "other" else page.name(g) for g in data.reasons]
        figure = go.Figure(go.Bar(x=[g.count for g in data.reasons], y=[kpi.safe(n) for n in names],
                                  orientation="h", marker_color=COLOURS["dissatisfied"]))
        figure.update_yaxes(autorange="reversed")
        kpi.show(figure, "sat_reasons", height=max(220, 30 * len(names) + 60))
        st.dataframe(pd.DataFrame({page.t("kpi.sat.reason_group"): names,
                                   page.t("kpi.col.count"): [g.count for g in data.reasons]}),
                     hide_index=True, width="stretch")
    else:
        st.info(page.t("kpi.sat.no_reasons"))
