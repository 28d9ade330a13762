"""Admin: the org tree of my subtree, with unit codes, kinds and user counts."""

import pandas as pd
import plotly.express as px
import streamlit as st

from lib.org.units import org_tree
from lib.ui.page import setup_page

page = setup_page("admin_org")
with page.guard():
    st.title(page.t("page.admin_org"))

    rows = org_tree(page.actor)

    frame = pd.DataFrame([{
        page.t("org.unit"): "\u3000" * row["depth"] + page.name(row["unit"]),
        page.t("org.code"): row["unit"].code,
        page.t("org.kind"): page.t("kind." + row["unit"].kind),
        page.t("org.users"): row["users"],
    } for row in rows])
    tiers = [r["unit"] for r in rows if r["unit"].kind != "department"]
    ids = {unit.id for unit in tiers}
    chart = px.sunburst(
        ids=[str(unit.id) for unit in tiers],
        names=[page.name(unit) for unit in tiers],
        parents=[str(unit.parent_id) if unit.parent_id in ids else "" for unit in tiers],
    )
    chart.update_layout(margin={"t": 10, "l": 10, "r": 10, "b": 10}, height=420)
    left, right = st.columns([3, 2])
    left.dataframe(frame, hide_index=True, width="stretch", height=560)
    right.plotly_chart(chart, width="stretch")
