"""Entry page: the login form, then "what is waiting for me" for the signed-in user."""

import streamlit as st

from lib.cases.queue import home_tiles
from lib.org.permissions import REWARD_APPROVERS
from lib.rewards import approval
from lib.ui.login import login_form
from lib.ui.page import setup_page
from lib.ui.text import md_escape

page = setup_page("home")
with page.guard():
    if page.actor is None:
        st.title(page.t("app.title"))
        st.caption(page.t("app.tagline"))
        left, right = st.columns(2)
        left.page_link("pages/report.py", label=page.t("home.report_link"), icon=":material/campaign:")
        right.page_link("pages/track.py", label=page.t("home.track_link"), icon=":material/search:")
        login_form(page.lang)
        st.stop()

    st.title(page.t("home.title", name=md_escape(page.actor.display_name)))
    tiles = home_tiles(page.actor)
    if page.actor.has(*REWARD_APPROVERS):
        tiles.append(("rewards.tile", approval.waiting_count(page.actor)))
    if tiles:
        columns = st.columns(min(4, len(tiles)))
        for index, (key, count) in enumerate(tiles):
            columns[index % len(columns)].metric(page.t(key), f"{count:,}", border=True)
    else:
        st.info(page.t("home.no_case_work"))
    roles = "、".join(page.t("role." + r) for r in sorted(page.actor.roles))
    st.caption(page.t("home.roles", roles=roles))
