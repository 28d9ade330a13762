"""Public: follow a report with its tracking code (and the last four digits of the phone)."""

import streamlit as st

from lib import cases
from lib.db import read_session, write_session
from lib.errors import DomainError
from lib.models import Rating
from lib.ui.cards import local_time, public_timeline
from lib.ui.page import setup_page
from lib.ui.text import md_escape

page = setup_page("track")
st.title(page.t("page.track"))
st.caption(page.t("track.intro"))

with st.form("track_lookup"):
    code = st.text_input(page.t("track.code"), max_chars=20,
                         value=st.session_state.get("track_code", ""))
    last4 = st.text_input(page.t("track.last4"), max_chars=4, type="password")
    if st.form_submit_button(page.t("track.submit"), type="primary"):
        st.session_state["track_code"], st.session_state["track_last4"] = code, last4

if not st.session_state.get("track_code"):
    st.stop()
if "track_flash" in st.session_state:
    st.success(page.t(st.session_state.pop("track_flash")))

try:
    with read_session() as session:
        view = cases.track(session, st.session_state["track_code"],
                           st.session_state.get("track_last4"))
        photos = [cases.public_photo(session, view.code, st.session_state.get("track_last4"), i)
                  for i in view.result_photo_ids]
except DomainError as err:
    st.error(page.t(err.key, **err.params))
    st.stop()

st.subheader(f"{view.code} · {page.name(view.category)}")
if view.merged_into:
    st.info(page.t("track.merged", code=view.merged_into))
st.metric(page.t("track.status"), page.t("public_state." + view.state), border=True)
st.caption(page.t("track.reported_at", at=local_time(view.reported_at)))
public_timeline(page, view.timeline)
if photos:
    st.markdown(f"**{page.t('track.result_photos')}**")
    st.image(photos, width=240)

if view.can_rate:
    with st.form("track_rate"):
        st.markdown(f"**{page.t('track.rate_title')}**")
        rating = st.radio(page.t("track.rating"), [r.value for r in Rating], horizontal=True,
                          format_func=lambda r: page.t("rating." + r))
        reason = st.text_area(page.t("track.reason"), max_chars=1000)
        if st.form_submit_button(page.t("track.rate_submit")):
            try:
                with write_session() as session:
                    case = cases.rate(session, code=view.code,
                                      phone_last4=st.session_state.get("track_last4"),
                                      rating=rating, reason=reason, version=view.version)
                st.session_state["track_flash"] = ("track.reopened" if case.state != view.state
                                                   else "track.thanks_rating")
                st.rerun()
            except DomainError as err:
                st.error(page.t(err.key, **{k: md_escape(str(v)) for k, v in err.params.items()}))
elif view.rating:
    st.caption(page.t("track.rated", rating=page.t("rating." + view.rating)))
