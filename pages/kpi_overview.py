"""Assessment overview (考核总览): a card per headline figure against the previous period,
monthly trends of satisfaction and closure time, and the volume by category."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lib.kpi import figures, views
from lib.kpi.extras import EXTRAS
from lib.kpi.figures import HEADLINE
from lib.ui import kpi
from lib.ui.page import setup_page

page = setup_page("kpi_overview")
with page.guard():
    head = kpi.page_head(page)
    query = head.query
    data = views.overview(page.actor, query)
    kpi.scope_line(page, head, page.name(data.scope), data.period.label)
    kpi.link_cards(page, head, data.scope.code)  # each card opens its cases

    # A month under way is compared with the same days of the month before: like with like.
    if data.partial and data.current is not None:
        st.caption(page.t("kpi.compare.same_days", label=data.period.label,
                          first=data.current.start.day, last=data.current.end.day,
                          prev_start=data.previous.start.isoformat(),
                          prev_end=data.previous.end.isoformat()))
    else:
        st.caption(page.t("kpi.compare.whole", label=data.previous.label,
                          start=data.previous.start.isoformat(), end=data.previous.end.isoformat()))
    keys = [*HEADLINE, "composite"]
    for start in range(0, len(keys), 5):
        columns = st.columns(5)
        for column, key in zip(columns, keys[start:start + 5], strict=False):
            base = figures.base_of(key, data.values)
            kpi.card(page, column, key, data.values[key], data.before[key],
                     partial=head.partial and not data.partial,
                     note=page.t(base[0], **base[1]) if base else None)
    q = data.quantiles
    columns = st.columns(5)
    for column, key, value in ((columns[0], "median_hours", q.median_hours),
                               (columns[1], "p90_hours", q.p90_hours)):
        column.metric(page.t(f"kpi.closure.{key}"),
                      page.t("kpi.no_data") if value is None else f"{value:.1f}",
                      help=page.t("kpi.def.closure_quantiles") + "\n\n"
                      + page.t("kpi.closed_count", count=q.count), border=True)
    for column, extra in zip(columns[2:], EXTRAS, strict=False):
        if extra.key in data.extra:
            kpi.card(page, column, extra.key, data.extra[extra.key], data.extra_before.get(extra.key),
                     partial=head.partial)
    kpi.definitions(page, [*keys, "closure_quantiles", *data.extra])

    labels = [p.label for p in data.trend]
    left, right = st.columns(2)
    with left:
        st.subheader(page.t("kpi.trend_rates"))
        chart = go.Figure()
        for key in ("satisfaction_rate", "resolution_rate", "response_rate"):
            chart.add_trace(go.Scatter(
                x=labels, y=[kpi.number(p.values[key]) for p in data.trend], name=kpi.label(page, key),
                mode="lines+markers", customdata=[kpi.basis(page, p.values[key]) for p in data.trend],
                hovertemplate="%{x}: %{y:.1f}%<br>%{customdata}<extra>" + kpi.label(page, key) + "</extra>"))
        chart.update_yaxes(title=page.t("kpi.percent"), rangemode="tozero")
        kpi.show(chart, "overview_rates", periods=True)
    with right:
        st.subheader(page.t("kpi.trend_closure"))
        chart = go.Figure()
        chart.add_trace(go.Scatter(x=labels, y=[p.median_hours for p in data.trend], mode="lines+markers",
                                   name=page.t("kpi.closure.median_hours_est")))
        chart.add_trace(go.Scatter(x=labels, y=[p.p90_hours for p in data.trend], mode="lines+markers",
                                   name=page.t("kpi.closure.p90_hours_est")))
        means = [kpi.number(p.values["mean_closure_hours"]) for p in data.trend]
        chart.add_trace(go.Scatter(x=labels, y=means, mode="lines+markers", line={"dash": "dot"},
                                   name=kpi.label(page, "mean_closure_hours")))
        chart.update_yaxes(title=page.t("kpi.hours_axis"), rangemode="tozero")
        kpi.show(chart, "overview_closure", periods=True)
    st.caption(page.t("kpi.trend_note"))
    trend_table = pd.DataFrame([{
        page.t("kpi.period"): p.label,
        page.t("kpi.figure.reported"): p.counters.reported,
        page.t("kpi.figure.closed"): p.counters.closed,
        **{kpi.label(page, k): kpi.fmt(page, p.values[k]) for k in
           ("response_rate", "resolution_rate", "satisfaction_rate", "mean_closure_hours")},
        page.t("kpi.closure.median_hours_est"): None if p.median_hours is None
                                                         else round(p.median_hours, 1),
        page.t("kpi.closure.p90_hours_est"): None if p.p90_hours is None
                                                      else round(p.p90_hours, 1),
    } for p in data.trend])
    st.dataframe(kpi.readable(page, trend_table), hide_index=True, width="stretch")
    st.caption(page.t("kpi.nav.empty_closure"))

    st.subheader(page.t("kpi.by_category_volume"))
    names = [kpi.safe(page.name(c)) for c, _ in data.categories]
    chart = go.Figure([
        go.Bar(x=names, y=[c.reported for _, c in data.categories], name=page.t("kpi.figure.reported")),
        go.Bar(x=names, y=[c.closed for _, c in data.categories], name=page.t("kpi.figure.closed")),
    ])
    chart.update_layout(barmode="group")
    # A click on a category's bar opens the ledger with the cases reported in it this period.
    for index in kpi.clickable(chart, "overview_categories"):
        if 0 <= index < len(data.categories):
            st.switch_page("pages/ledger.py", query_params=page.query(kpi.ledger_params(
                head, data.scope.code, category_key=data.categories[index][0].key)))
    st.caption(page.t("kpi.nav.category_hint"))
    st.dataframe(pd.DataFrame([{
        page.t("kpi.col.category"): page.name(category),
        page.t("kpi.figure.reported"): c.reported,
        page.t("kpi.figure.closed"): c.closed,
        page.t("kpi.col.inspection_found"): c.inspection_found,
        page.t("kpi.figure.hurries"): c.hurried,
    } for category, c in data.categories]), hide_index=True, width="stretch")
