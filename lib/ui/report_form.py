"""The report form shared by the public report page and the staff report page."""

from __future__ import annotations

import uuid

import streamlit as st

from lib import cases
from lib.db import read_session
from lib.errors import DomainError
from lib.models import Source
from lib.ui.login import client_address
from lib.ui.page import Page
from lib.ui.text import md_escape

STAFF_SOURCES = [Source.grid_worker, Source.staff, Source.hotline]


def _key(prefix: str, name: str) -> str:
    return f"{prefix}_{name}"


def _parse_point(page: Page, lat_text: str, lon_text: str) -> tuple[float | None, float | None]:
    if not (lat_text or "").strip() and not (lon_text or "").strip():
        return None, None
    try:
        return float(lat_text), float(lon_text)
    except ValueError:
        raise DomainError("error.point_invalid") from None


def report_form(page: Page, *, staff: bool) -> None:
    prefix = "staff_report" if staff else "report"
    done_key = _key(prefix, "done")
    submit_key = _key(prefix, "submit_key")
    if done_key in st.session_state:
        code = st.session_state[done_key]
        st.success(page.t("report.thanks"))
        st.markdown(f"### {page.t('report.your_code')}: `{code}`")
        st.info(page.t("report.how_to_track"))
        st.page_link("pages/track.py", label=page.t("page.track"), icon=":material/search:")
        if st.button(page.t("report.another"), key=_key(prefix, "another")):
            del st.session_state[done_key]
            st.session_state.pop(submit_key, None)
            st.rerun()
        return
    st.session_state.setdefault(submit_key, uuid.uuid4().hex)
    with read_session() as session:
        options = cases.intake_options(session, page.actor if staff else None)
    if not options.communities:
        st.warning(page.t("report.no_communities"))
        return
    category = st.selectbox(page.t("report.category"), options.categories, format_func=page.name,
                            key=_key(prefix, "category"))
    subs = options.subcategories.get(category.id, [])
    st.caption(page.t("report.examples", examples="；".join(page.name(s) for s in subs)))
    community, _street = st.selectbox(
        page.t("report.community"), options.communities,
        format_func=lambda pair: f"{page.name(pair[1])} · {page.name(pair[0])}",
        key=_key(prefix, "community"))
    with read_session() as session:
        duplicates = cases.find_duplicates(session, category_id=category.id,
                                           community_id=community.id)
    add_to = None
    if duplicates:
        st.warning(page.t("report.duplicates", count=len(duplicates)))
        choices = [None] + [d.code for d in duplicates]
        labels = {d.code: page.t("report.duplicate_row", code=d.code,
                                 date=d.reported_at.strftime("%Y-%m-%d"),
                                 state=page.t("state." + d.state), address=d.address)
                  for d in duplicates}
        add_to = st.radio(page.t("report.duplicate_choice"), choices, key=_key(prefix, "add_to"),
                          format_func=lambda c: page.t("report.new_case") if c is None else labels[c])
    with st.form(_key(prefix, "form"), clear_on_submit=False):
        sub = st.selectbox(page.t("report.subcategory"), [None] + subs,
                           format_func=lambda s: page.t("report.not_sure") if s is None else page.name(s))
        description = st.text_area(page.t("report.description"), max_chars=cases.DESCRIPTION_MAX,
                                   placeholder=page.t("report.description_hint"))
        address = st.text_input(page.t("report.address"), max_chars=cases.ADDRESS_MAX,
                                placeholder=page.t("report.address_hint"))
        left, right = st.columns(2)
        lat_text = left.text_input(page.t("report.latitude"), placeholder="30.6570")
        lon_text = right.text_input(page.t("report.longitude"), placeholder="104.0800")
        severity = st.selectbox(page.t("report.severity"), options.severities,
                                index=min(2, len(options.severities) - 1), format_func=page.name)
        photos = st.file_uploader(page.t("report.photos"), accept_multiple_files=True,
                                  type=["jpg", "jpeg", "png", "webp", "gif"])
        source = Source.resident
        if staff:
            source = st.selectbox(page.t("report.source"), STAFF_SOURCES,
                                  format_func=lambda s: page.t("source." + s))
        anonymous = False
        if category.allow_anonymous or staff:
            anonymous = st.checkbox(page.t("report.anonymous"))
        name = st.text_input(page.t("report.name"), max_chars=cases.NAME_MAX)
        phone = st.text_input(page.t("report.phone_staff" if staff else "report.phone"),
                              max_chars=20)
        st.caption(page.t("report.privacy"))
        submitted = st.form_submit_button(page.t("report.submit"), type="primary")
    if not submitted:
        return
    try:
        latitude, longitude = _parse_point(page, lat_text, lon_text)
        files = [(f.name, f.getvalue()) for f in (photos or [])]
        with read_session() as session:
            checked = cases.checked_photos(session, files)
        report = cases.Report(
            category_id=category.id, community_id=community.id, description=description,
            address=address, subcategory_id=sub.id if sub else None,
            severity=severity.severity, source=source, reporter_name=name, reporter_phone=phone,
            anonymous=anonymous, latitude=latitude, longitude=longitude, photos=checked)
        case = cases.submit(None, actor=page.actor if staff else None, report=report,
                            submit_key=st.session_state[submit_key],
                            client_address=client_address(), add_to=add_to)
    except DomainError as err:
        st.error(page.t(err.key, **{k: md_escape(str(v)) for k, v in err.params.items()}))
        return
    st.session_state[done_key] = case.code
    st.session_state["track_code"] = case.code  # the tracking page opens with it filled in
    st.rerun()
