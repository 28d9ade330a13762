"""Closure time (办结时长): the median and 90th percentile trend, the period's histogram, by tier
and by category, on time against overdue."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lib.kpi import views
from lib.ui import kpi
from lib.ui.page import setup_page


def hours(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


page = setup_page("kpi_closure")
with page.guard():
    head = kpi.page_head(page)
    query = head.query
    data = views.closure(page.actor, query)
    kpi.scope_line(page, head, page.name(data.scope), data.period.label)
    kpi.link_cards(page, head, data.scope.code)  # each card opens its cases

    q = data.quantiles
    columns = st.columns(5)
    for column, key, value in ((columns[0], "median_hours", q.median_hours),
                               (columns[1], "p90_hours", q.p90_hours),
                               (columns[2], "median_workdays", q.median_workdays),
                               (columns[3], "p90_workdays", q.p90_workdays)):
        column.metric(page.t(f"kpi.closure.{key}"),
                      page.t("kpi.no_data") if value is None else f"{value:.1f}",
                      help=page.t("kpi.def.closure_quantiles") + "\n\n"
                      + page.t("kpi.closed_count", count=q.count), border=True)
    kpi.card(page, columns[4], "on_time_rate", data.on_time, None, partial=head.partial,
             note=page.t("kpi.base.closed", count=f"{data.on_time.denominator or 0:,.0f}"))

    left, right = st.columns(2)
    with left:
        st.subheader(page.t("kpi.closure.trend"))
        labels = [p.label for p in data.trend]
        figure = go.Figure([
            go.Scatter(x=labels, y=[hours(p.median_hours) for p in data.trend], mode="lines+markers",
                       name=page.t("kpi.closure.median_hours_est")),
            go.Scatter(x=labels, y=[hours(p.p90_hours) for p in data.trend], mode="lines+markers",
                       name=page.t("kpi.closure.p90_hours_est"))])
        figure.update_yaxes(title=page.t("kpi.hours_axis"), rangemode="tozero")
        kpi.show(figure, "closure_trend", periods=True)
        st.caption(page.t("kpi.trend_note"))
    with right:
        st.subheader(page.t("kpi.closure.histogram"))
        figure = go.Figure(go.Bar(x=[label for label, _ in data.histogram],
                                  y=[n for _, n in data.histogram], marker_color=kpi.NEUTRAL))
        figure.update_xaxes(title=page.t("kpi.hours_axis"), type="category")
        figure.update_yaxes(title=page.t("kpi.col.cases"))
        kpi.show(figure, "closure_histogram")
    st.dataframe(pd.DataFrame([{page.t("kpi.hours_axis"): label, page.t("kpi.col.cases"): n}
                               for label, n in data.histogram]).set_index(page.t("kpi.hours_axis")).T,
                 width="stretch")

    def groups_table(groups, name) -> pd.DataFrame:
        return pd.DataFrame([{
            page.t("kpi.col.unit_or_category"): name(g.key),
            page.t("kpi.col.cases"): g.quantiles.count,
            page.t("kpi.closure.median_hours"): hours(g.quantiles.median_hours),
            page.t("kpi.closure.p90_hours"): hours(g.quantiles.p90_hours),
            page.t("kpi.closure.median_workdays"): hours(g.quantiles.median_workdays),
            **({kpi.label(page, "on_time_rate") + "%": kpi.number(g.on_time)}
               if g.on_time else {}),
        } for g in groups])

    def box(groups, name, key: str) -> None:
        shown = [g for g in groups if g.quantiles.count]
        if not shown:
            st.info(page.t("kpi.no_data"))
            return
        names = [kpi.safe(name(g.key)) for g in shown]
        figure = go.Figure([
            go.Bar(x=names, y=[hours(g.quantiles.median_hours) for g in shown],
                   name=page.t("kpi.closure.median_hours")),
            go.Bar(x=names, y=[hours(g.quantiles.p90_hours) for g in shown],
                   name=page.t("kpi.closure.p90_hours"))])
        figure.update_layout(barmode="group")
        figure.update_yaxes(title=page.t("kpi.hours_axis"))
        kpi.show(figure, key)

    left, right = st.columns(2)
    with left:
        st.subheader(page.t("kpi.closure.by_tier"))
        st.caption(page.t("kpi.closure.by_tier_note"))
        box(data.by_tier, lambda tier: page.t(f"kind.{tier}"), "closure_tiers")
        st.dataframe(kpi.readable(page, groups_table(data.by_tier, lambda tier: page.t(f"kind.{tier}"))),
                     hide_index=True, width="stretch")
    with right:
        st.subheader(page.t("kpi.closure.on_time_split"))
        on_time = data.on_time
        late = data.overdue.numerator  # one base: on time and late add up to the cases closed
        st.caption(page.t("kpi.base.closed", count=f"{on_time.denominator or 0:,.0f}") + " · "
                   + kpi.label(page, "on_time_rate") + " " + kpi.fmt(page, on_time) + " · "
                   + kpi.label(page, "overdue_rate") + " " + kpi.fmt(page, data.overdue))
        if on_time.denominator:
            figure = go.Figure(go.Pie(labels=[page.t("kpi.closure.on_time"), page.t("kpi.closure.late")],
                                      values=[on_time.numerator, late], hole=0.5, sort=False,
                                      marker_colors=[kpi.GOOD, kpi.BAD]))
            kpi.show(figure, "closure_on_time")
        else:
            st.info(page.t("kpi.no_data"))
    st.subheader(page.t("kpi.closure.by_category"))
    box(data.by_category, page.name, "closure_categories")
    st.dataframe(kpi.readable(page, groups_table(data.by_category, page.name)), hide_index=True,
                 width="stretch")
    st.caption(page.t("kpi.nav.empty_closure"))
