"""Entry page: the login form, then "what is waiting for me" for the signed-in user."""

import streamlit as st

from lib.cases import ledger
from lib.cases.queue import home_tiles
from lib.kpi import rankings
from lib.org.permissions import KPI_READERS
from lib.rewards import approval
from lib.ui import kpi
from lib.ui.login import login_form, return_to
from lib.ui.menu import PAGE_BY_KEY, allowed
from lib.ui.page import Tile, setup_page
from lib.ui.text import md_escape

GLANCE = ["satisfaction_rate", "resolution_rate", "response_rate", "on_time_rate", "overdue_rate"]
KPI_PAGES = ["kpi_overview", "kpi_rankings", "kpi_satisfaction", "kpi_closure", "kpi_flow",
             "kpi_map", "kpi_monitoring", "kpi_report"]
page = setup_page("home")
with page.guard():
    if page.actor is None:
        st.title(page.t("app.title"))
        st.caption(page.t("app.tagline"))
        left, right = st.columns(2)
        page.link("report", label=page.t("home.report_link"), where=left)
        page.link("track", label=page.t("home.track_link"), where=right)
        login_form(page.lang)
        st.stop()
    return_to(page.lang)  # a login link followed while already logged in (another tab)

    st.title(page.t("home.title", name=md_escape(page.actor.display_name)))
    tiles = home_tiles(page.actor)
    tiles += approval.home_tiles(page.actor)
    if tiles:
        shown = []
        for key, count in tiles:
            target, params = ledger.tile_address(key)
            if target is None:
                target, params = approval.tile_address(key)
            if target is None or not allowed(PAGE_BY_KEY[target], page.actor.roles):
                target, params = None, {}
            shown.append(Tile(page.t(key), f"{count:,}", target, params))
        page.tiles(shown)
        if any(key == "home.overdue_in_scope" for key, _ in tiles):
            st.caption(page.t("kpi.nav.overdue_words"))
    elif not page.actor.has(*KPI_READERS):
        st.info(page.t("home.no_case_work"))

    if page.actor.has(*KPI_READERS) and page.actor.unit_kind != "department":
        glance = rankings.glance(page.actor)
        st.subheader(page.t("home.month_title", unit=md_escape(page.name(glance.scope)),
                            period=glance.period.label))
        columns = st.columns(len(GLANCE))
        for column, key in zip(columns, GLANCE, strict=True):
            # 超期 on a tile counts cases; this rate (工单超期率) counts lead work orders.
            kpi.card(page, column, key, glance.values[key], glance.before[key],
                     note=page.t("kpi.nav.overdue_rate_note") if key == "overdue_rate" else None)
        st.caption(page.t("home.month_compared", previous=glance.previous.label))
        if glance.worst:
            worst_title = page.t("kpi.nav.worst", period=glance.period.label,
                                 level=page.t("kpi.level." + glance.level))
            st.markdown(f"**{worst_title}**")
            for row in glance.worst:
                score = kpi.fmt(page, row.values["composite"], "score")
                st.markdown(f"- {md_escape(page.name(row.unit))} · {page.t('kpi.col.rank')} {row.rank} · "
                            f"{kpi.label(page, 'composite')} {score}")
        columns = st.columns(4)
        for index, key in enumerate(KPI_PAGES):
            page.link(key, where=columns[index % 4])
    roles = "、".join(page.t("role." + r) for r in sorted(page.actor.roles))
    st.caption(page.t("home.roles", roles=roles))
