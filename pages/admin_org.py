"""Admin: the org tree of my subtree, with unit codes, kinds and user counts."""

import pandas as pd
import plotly.express as px
import streamlit as st

from lib.db import read_session
from lib.orgs import tree_rows
from lib.ui.page import setup_page

page = setup_page("admin_org")
st.title(page.t("page.admin_org"))

with read_session() as session:
    rows = tree_rows(session, page.actor)


def label(unit) -> str:  # noqa: ANN001
    return unit.name_en if page.lang == "en" else unit.name_zh


frame = pd.DataFrame([{
    page.t("org.unit"): "\u3000" * row["depth"] + label(row["unit"]),
    page.t("org.code"): row["unit"].code,
    page.t("org.kind"): page.t("kind." + row["unit"].kind),
    page.t("org.users"): row["users"],
} for row in rows])
tiers = [r for r in rows if r["unit"].kind != "department"]
chart = px.sunburst(
    names=[label(r["unit"]) for r in tiers],
    parents=[""] + [next((label(p["unit"]) for p in tiers if p["unit"].id == r["unit"].parent_id), "")
                    for r in tiers[1:]],
    ids=None,
)
chart.update_layout(margin={"t": 10, "l": 10, "r": 10, "b": 10}, height=420)
left, right = st.columns([3, 2])
left.dataframe(frame, hide_index=True, width="stretch", height=560)
right.plotly_chart(chart, width="stretch")
