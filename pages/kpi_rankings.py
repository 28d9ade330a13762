"""Rankings (考核排名): streets, communities and departments by composite score with the month's
red and black lists; a click on a street's or community's bar or row moves the page to that unit
(its own communities' ranking, in the address). A community sees its own place only."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lib.kpi import rankings
from lib.kpi.rankings import BLACK, RED
from lib.kpi.report import RANKED_FIGURES, kind_of
from lib.ui import kpi
from lib.ui.page import setup_page

LIST_COLOUR = {RED: "#c62828", BLACK: "#37474f", None: "#90a4ae"}


def table(ranking: rankings.Ranking) -> pd.DataFrame:
    extra_keys = list(ranking.rows[0].extra) if ranking.rows else []
    return pd.DataFrame([{
        page.t("kpi.col.rank"): str(row.rank) if row.rank is not None else page.t("kpi.rank.unranked"),
        page.t("kpi.col.unit"): page.name(row.unit),
        **{kpi.label(page, k) + page.t(f"kpi.unit.{kind_of(k)}"):
           kpi.number(row.values[k], kind_of(k)) for k in RANKED_FIGURES},
        **{kpi.label(page, k): kpi.number(row.extra[k], "count") for k in extra_keys},
        page.t("kpi.col.cases"): row.cases,
        page.t("kpi.col.weights"): weights(row.weights),
        page.t("kpi.col.list"): page.t(f"kpi.rank.{row.listed}") if row.listed else "",
    } for row in ranking.rows])


def weights(used: dict[str, float]) -> str:
    """The composite's weights a unit was scored with: "响应 10% · 解决 50% · 满意 40%"."""
    if not used:
        return page.t("kpi.nav.empty")
    return " · ".join(page.t("kpi.weight_part", part=page.t(f"kpi.weight.{key}"),
                             share=f"{share * 100:.0f}") for key, share in used.items())


def drillable(unit) -> bool:  # noqa: ANN001
    """A ranked unit a click can move the page to: a street or community (not a department,
    nor the page's own unit)."""
    return unit.kind in ("street", "community") and unit.id != first.scope.id


def chart(ranking: rankings.Ranking, key: str) -> None:
    ranked = [r for r in ranking.rows if r.rank is not None]
    if not ranked:
        st.info(page.t("kpi.rank.nobody_ranked", count=ranking.min_cases))
        return
    ranked = list(reversed(ranked))  # best on top of a horizontal bar chart
    figure = go.Figure(go.Bar(
        y=[f"{r.rank}. {kpi.safe(page.name(r.unit))}" for r in ranked],
        x=[kpi.number(r.values["composite"], "score") for r in ranked], orientation="h",
        marker_color=[LIST_COLOUR[r.listed] for r in ranked],
        customdata=[[kpi.fmt(page, r.values[k]) for k in RANKED_FIGURES[1:4]] + [r.cases]
                    for r in ranked],
        hovertemplate="%{y}<br>" + kpi.label(page, "composite") + " %{x:.1f}<br>"
        + "<br>".join(f"{kpi.label(page, k)} %{{customdata[{n}]}}"
                      for n, k in enumerate(RANKED_FIGURES[1:4]))
        + "<br>" + page.t("kpi.col.cases") + " %{customdata[3]}<extra></extra>"))
    figure.update_xaxes(title=kpi.label(page, "composite"), range=[0, 100])
    height = max(260, 26 * len(ranked) + 60)
    if not any(drillable(r.unit) for r in ranked):
        kpi.show(figure, key, height=height)
        return
    for index in kpi.clickable(figure, f"{key}_{first.scope.code}", height=height):
        if 0 <= index < len(ranked) and drillable(ranked[index].unit):
            kpi.drill_to(head.options, query, ranked[index].unit.code)


def rows_table(ranking: rankings.Ranking, key: str) -> None:
    """The ranking's table; a click on a street's or community's row moves the page there."""
    shown = table(ranking)
    if not any(drillable(r.unit) for r in ranking.rows):
        st.dataframe(kpi.readable(page, shown), hide_index=True, width="stretch")
    else:
        event = st.dataframe(kpi.readable(page, shown), hide_index=True, width="stretch", on_select="rerun",
                             selection_mode=["single-row", "single-cell"],
                             key=f"{key}_{first.scope.code}")
        kpi.ranking_cell(page, event, ranking.rows, [(kpi.label(page, k) + page.t(
            f"kpi.unit.{kind_of(k)}"), k) for k in RANKED_FIGURES], head)  # a figure's cell: its cases
        for index in kpi.picked_rows(event):
            if 0 <= index < len(ranking.rows) and drillable(ranking.rows[index].unit):
                kpi.drill_to(head.options, query, ranking.rows[index].unit.code)
    st.caption(page.t("kpi.nav.empty_rank"))


def lists(ranking: rankings.Ranking) -> None:
    left, right = st.columns(2)
    for column, rows, key in ((left, ranking.red, "red"), (right, ranking.black, "black")):
        with column:
            st.markdown(f"**{page.t('kpi.rank.' + key)}**")
            if not rows:
                st.caption(page.t("kpi.rank.none_listed"))
            for row in rows:
                st.markdown(f"{row.rank}. {kpi.md_escape(page.name(row.unit))} · "
                            f"{kpi.fmt(page, row.values['composite'], 'score')}")


page = setup_page("kpi_rankings")
with page.guard():
    head = kpi.page_head(page)
    query = head.query
    first = rankings.rankings(page.actor, query)
    kpi.scope_line(page, head, page.name(first.scope), first.period.label)
    st.caption(page.t("kpi.rank.rules", count=first.min_cases))
    with st.expander(page.t("kpi.rank.how")):
        st.caption(page.t("kpi.rank.tie_rule"))
        st.caption(page.t("kpi.rank.weights_note") + " " + page.t("kpi.rank.twins_note"))

    if first.own_only:
        row = first.rows[0] if first.rows else None
        if row is None or row.rank is None:
            st.info(page.t("kpi.rank.own_unranked", total=first.ranked, count=first.min_cases))
        else:
            st.metric(page.t("kpi.rank.own_place"), page.t("kpi.rank.place_of", rank=row.rank,
                                                           total=first.ranked), border=True)
            if row.listed:
                st.warning(page.t(f"kpi.rank.own_{row.listed}"))
        st.dataframe(kpi.readable(page, table(first)), hide_index=True, width="stretch")
        st.caption(page.t("kpi.nav.empty_rank"))
        st.stop()

    tabs = st.tabs([page.t(f"kpi.level.{level}") for level in first.levels])
    for tab, level in zip(tabs, first.levels, strict=True):
        with tab:
            ranking = first if level == first.level else rankings.rankings(page.actor, query, level)
            if ranking.category_ignored:
                st.caption(page.t("kpi.rank.category_ignored"))
            lists(ranking)
            chart(ranking, f"ranking_{level}")
            rows_table(ranking, f"ranking_table_{level}")
    if first.levels and first.levels[0] in ("street", "community"):
        st.caption(page.t("kpi.nav.drill_hint"))
