"""Tier flow (层级流转): a Sankey diagram of the period's cases — where they came from (every case
starts at its community), the highest tier they were called up to, and where they stand."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lib.kpi import views
from lib.ui import kpi
from lib.ui.page import setup_page


def node_name(node: str) -> str:
    kind, _, value = node.partition(":")
    if kind == "source":
        return page.t(f"source.{value}")
    if kind == "reached":
        return page.t("kpi.flow.reached", tier=page.t(f"kind.{value}"))
    if kind == "closed":
        return page.t("kpi.flow.closed_at", tier=page.t(f"kind.{value}"))
    return page.t(f"kpi.flow.{value}")


page = setup_page("kpi_flow")
with page.guard():
    head = kpi.page_head(page)
    query = head.query
    data = views.flow(page.actor, query)
    kpi.scope_line(page, head, page.name(data.scope), data.period.label)
    st.caption(page.t("kpi.flow.note", count=data.cases))
    if not data.links:
        st.info(page.t("kpi.no_data"))
        st.stop()
    nodes: list[str] = []
    for a, b, _ in data.links:
        for node in (a, b):
            if node not in nodes:
                nodes.append(node)
    index = {node: n for n, node in enumerate(nodes)}
    names = [node_name(node) for node in nodes]
    figure = go.Figure(go.Sankey(
        arrangement="snap",
        node={"label": names, "pad": 18, "thickness": 18,
              "hovertemplate": "%{label}: %{value:,}<extra></extra>"},
        link={"source": [index[a] for a, _, _ in data.links],
              "target": [index[b] for _, b, _ in data.links],
              "value": [n for _, _, n in data.links],
              "hovertemplate": "%{source.label} → %{target.label}: %{value:,}<extra></extra>"}))
    kpi.show(figure, "flow_sankey", height=520)
    st.dataframe(pd.DataFrame([{page.t("kpi.flow.from"): node_name(a), page.t("kpi.flow.to"): node_name(b),
                                page.t("kpi.col.cases"): n} for a, b, n in data.links]),
                 hide_index=True, width="stretch")
