"""Where (分布): a category × community heat map, and the district map with each community
shaded by a chosen figure and the period's case points — drawn from the boundaries in data/geo/,
with no map tiles and nothing fetched from the internet."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import sample_colorscale

from lib.kpi import figures, views
from lib.kpi.report import kind_of
from lib.org import geo
from lib.ui import kpi, responsive
from lib.ui.page import setup_page

FIGURES = ["reported", "composite", "satisfaction_rate", "on_time_rate", "overdue_rate",
           "response_rate", "resolution_rate", "repeat_rate", "inspection_share",
           "mean_closure_hours", "hurries"]
EMPTY = "#eceff1"


def scale_for(key: str) -> str:
    if kind_of(key) in ("count", "hours") and key not in figures.BY_KEY:
        return "Blues"
    better = figures.BY_KEY[key].better if key in figures.BY_KEY else "higher"
    if key in ("reported", "closed"):
        return "Blues"
    return "RdYlGn" if better == "higher" else "RdYlGn_r"


def _dark(colour: str) -> bool:
    """Whether a fill ("rgb(8, 48, 107)" or "#eceff1") needs white text on it."""
    if colour.startswith("#"):
        red, green, blue = (int(colour[n:n + 2], 16) for n in (1, 3, 5))
    else:
        red, green, blue = (float(v) for v in colour[colour.index("(") + 1:-1].split(",")[:3])
    return 0.299 * red + 0.587 * green + 0.114 * blue < 140


page = setup_page("kpi_map")
with page.guard():
    head = kpi.page_head(page)
    query = head.query
    figure_key = st.selectbox(page.t("kpi.map.figure"), FIGURES, key="kpi_map_figure",
                              format_func=lambda k: kpi.label(page, k))
    data = views.where(page.actor, query, figure_key)
    kpi.scope_line(page, head, page.name(data.scope), data.period.label)
    kind = kind_of(figure_key)
    shown = {cid: kpi.number(v, kind) for cid, v in data.values.items()}
    known = [v for v in shown.values() if v is not None]
    low, high = (min(known), max(known)) if known else (0.0, 1.0)
    scale = scale_for(figure_key)

    st.subheader(page.t("kpi.map.title"))
    if data.problem:
        st.error(page.t("kpi.map.bad_file", detail=kpi.md_escape(data.problem)))
    if data.missing:
        st.info(page.t("kpi.map.no_file", codes="、".join(data.missing)))
    # On a phone the scale lies under the map, which then has the screen's width to itself.
    phone = responsive.on_phone()
    colorbar = {"title": kpi.label(page, figure_key), "thickness": 12,
                **({"orientation": "h", "yanchor": "top", "y": -0.02, "len": 0.9} if phone else {})}
    if data.features:
        chart = go.Figure()
        by_code = {c.code: c for c in data.communities}
        # A community's own map is one shape: a colour scale over one value means nothing
        # (plotly drew 35.6 to 36.4 around it), so its cases are drawn by category instead.
        own = len(data.features) == 1
        spread = high > low
        names_x, names_y, names_text, names_colour = [], [], [], []
        for code, feature in data.features.items():
            community = by_code[code]
            value = shown.get(community.id)
            colour = EMPTY if value is None or own else sample_colorscale(
                scale, [(value - low) / (high - low) if spread else 0.5])[0]
            figure_text = kpi.fmt(page, data.values[community.id], kind)
            hover = f"{kpi.safe(page.name(community))}<br>{kpi.label(page, figure_key)}: {figure_text}"
            basis = kpi.basis(page, data.values[community.id])
            if basis:
                hover += f"<br>{basis}"
            for xs, ys in geo.outline(feature):
                chart.add_trace(go.Scatter(x=xs, y=ys, fill="toself", fillcolor=colour, mode="lines",
                                           line={"color": "white" if not own else "#607d8b",
                                                 "width": 1 if not own else 2},
                                           hoveron="fills", text=hover, hoverinfo="text",
                                           showlegend=False))
            x, y = geo.label_point(feature)
            names_x.append(x)
            names_y.append(y)
            # "Hongxinglu<br>Community": a long name on two lines, not over its neighbours.
            label = "<br>".join(kpi.safe(page.name(community)).rsplit(" ", 1))
            names_text.append(label + (
                f"<br>{kpi.label(page, figure_key)}: {kpi.safe(figure_text)}" if own else ""))
            names_colour.append("white" if _dark(colour) else "#263238")
        if own:
            names = {c.id: kpi.safe(page.name(c)) for c in data.categories}
            for category_id in sorted({p[2] for p in data.points}):
                mine = [p for p in data.points if p[2] == category_id]
                chart.add_trace(go.Scatter(
                    x=[p[0] for p in mine], y=[p[1] for p in mine], mode="markers",
                    marker={"size": 9, "line": {"color": "white", "width": 1}},
                    name=f"{names.get(category_id, '')} ({len(mine)})", hoverinfo="name"))
        elif data.points:
            chart.add_trace(go.Scattergl(
                x=[p[0] for p in data.points], y=[p[1] for p in data.points], mode="markers",
                marker={"size": 4, "color": "rgba(33,33,33,0.55)"}, hoverinfo="skip",
                name=page.t("kpi.map.points"), showlegend=True))
        chart.add_trace(go.Scatter(
            x=names_x, y=names_y, text=names_text, mode="text", hoverinfo="skip", showlegend=False,
            textfont={"size": 12 if own else 8 if phone else 9, "color": names_colour},
            name="labels"))
        if known and spread and not own:
            chart.add_trace(go.Scatter(
                x=[None], y=[None], mode="markers", hoverinfo="skip", showlegend=False,
                marker={"colorscale": scale, "cmin": low, "cmax": high, "color": [low],
                        "showscale": True,
                        "colorbar": colorbar}))
        latitude = sum(geo.centroid(f)[1] for f in data.features.values()) / len(data.features)
        chart.update_xaxes(visible=False)
        chart.update_yaxes(visible=False, scaleanchor="x",
                           scaleratio=1 / math.cos(math.radians(latitude)))
        chart.update_layout(plot_bgcolor="white")
        kpi.show(chart, "map_communities", height=560)
        st.caption(page.t("kpi.map.points_note", shown=len(data.points), limit=data.points_limit))
        if own:
            st.caption(page.t("kpi.map.own_note"))
    st.dataframe(pd.DataFrame([{
        page.t("kpi.col.unit"): page.name(c),
        kpi.label(page, figure_key): kpi.fmt(page, data.values[c.id], kind),
        page.t("kpi.col.basis"): kpi.basis(page, data.values[c.id]),
        page.t("kpi.figure.reported"): data.counts[c.id].reported if c.id in data.counts else 0,
    } for c in data.communities]), hide_index=True, width="stretch")

    st.subheader(page.t("kpi.map.heat"))
    if data.communities and data.categories:
        # A cell with no row had no case: a count of 0; a rate there (or over 0 cases) has
        # nothing to divide by and is shown as "—", which the caption explains.
        def cell(community_id: int, category_id: int) -> float | None:
            value = kpi.number(data.cells.get((community_id, category_id)), kind)
            return 0 if value is None and kind == "count" else value

        z = [[cell(c.id, k.id) for k in data.categories] for c in data.communities]
        chart = go.Figure(go.Heatmap(
            z=z, x=[kpi.safe(page.name(k)) for k in data.categories],
            y=[kpi.safe(page.name(c)) for c in data.communities], colorscale=scale,
            hovertemplate="%{y} · %{x}: %{z}<extra></extra>", xgap=1, ygap=1,
            colorbar={"title": kpi.label(page, figure_key), "thickness": 12}))
        chart.update_yaxes(autorange="reversed")
        kpi.show(chart, "map_heat", height=max(320, 18 * len(data.communities) + 120))

        def cell_text(community_id: int, category_id: int) -> str:
            value = data.cells.get((community_id, category_id))
            if value is not None and value.value is not None:
                return kpi.fmt(page, value, kind)
            return "0" if kind == "count" else page.t("kpi.map.empty_cell")

        frame = pd.DataFrame([[cell_text(c.id, k.id) for k in data.categories]
                              for c in data.communities],
                             index=[page.name(c) for c in data.communities],
                             columns=[page.name(k) for k in data.categories])
        st.dataframe(frame, width="stretch")
        st.caption(page.t("kpi.map.empty_cell_note", empty=page.t("kpi.map.empty_cell")))
