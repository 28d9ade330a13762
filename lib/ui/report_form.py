"""The report form shared by the public report page and the staff report page.

The public form may say that similar open cases exist and offer to join one, described only by
what the server chooses (category, problem, street, date): never another reporter's code,
address or words, never a restricted category. Staff see the similar cases of their area whose
content they may read, with code and address.
"""

from __future__ import annotations

import uuid

import streamlit as st

from lib.cases import intake
from lib.core.clock import china_date
from lib.core.errors import DomainError
from lib.core.models import Source
from lib.ui.login import client_address
from lib.ui.page import Page
from lib.ui.text import md_escape
from lib.ui.widgets import localise_uploader

STAFF_SOURCES = [Source.grid_worker, Source.staff, Source.hotline]
PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "gif"]


def _key(prefix: str, name: str) -> str:
    return f"{prefix}_{name}"


def _parse_point(lat_text: str, lon_text: str) -> tuple[float | None, float | None]:
    if not (lat_text or "").strip() and not (lon_text or "").strip():
        return None, None
    try:
        return float(lat_text), float(lon_text)
    except ValueError:
        raise DomainError("error.point_invalid") from None


def _receipt(page: Page, prefix: str) -> None:
    """The code (and PIN) after a submit, shown until the reporter asks for a new form."""
    code, pin = st.session_state[_key(prefix, "done")]
    st.success(page.t("report.thanks"))
    st.markdown(f"### {page.t('report.your_code')}: `{code}`")
    if pin:
        st.markdown(f"### {page.t('report.your_pin')}: `{pin}`")
        st.warning(page.t("report.pin_once"))
        st.info(page.t("report.how_to_track_pin"))
    else:
        st.info(page.t("report.how_to_track"))
    st.page_link("pages/track.py", label=page.t("page.track"), icon=":material/search:")
    if st.button(page.t("report.another"), key=_key(prefix, "another")):
        del st.session_state[_key(prefix, "done")]
        st.session_state.pop(_key(prefix, "submit_key"), None)
        st.rerun()


def _similar_choice(page: Page, prefix: str, *, staff: bool, category, community, names) -> int | None:  # noqa: ANN001
    """The "is it the same problem?" choice; returns the id of the case to join, or None."""
    found = intake.similar_for(page.actor if staff else None, category_id=category.id,
                               community_id=community.id)
    if staff:
        labels = {d.id: page.t("report.duplicate_row", code=d.code, date=china_date(d.reported_at),
                               state=page.t("state." + d.state), address=md_escape(d.address))
                  for d in found}
    else:
        labels = {s.ref: page.t(
            "report.similar_row", number=number, date=s.reported_on.isoformat(),
            street=md_escape(names["unit"].get(s.street_id, "")),
            problem=md_escape(names["sub"].get(s.subcategory_id) or page.name(category)))
            for number, s in enumerate(found, start=1)}
    if not labels:
        return None
    st.warning(page.t("report.duplicates", count=len(labels)))
    return st.radio(page.t("report.duplicate_choice"), [None, *labels], key=_key(prefix, "add_to"),
                    format_func=lambda ref: page.t("report.new_case") if ref is None else labels[ref])


def report_form(page: Page, *, staff: bool) -> None:
    prefix = "staff_report" if staff else "report"
    if _key(prefix, "done") in st.session_state:
        _receipt(page, prefix)
        return
    submit_key = _key(prefix, "submit_key")
    st.session_state.setdefault(submit_key, uuid.uuid4().hex)
    form = intake.intake_form(page.actor if staff else None)
    options, limits = form.options, form.limits
    if not options.communities:
        st.warning(page.t("report.no_communities"))
        return
    category = st.selectbox(page.t("report.category"), options.categories, format_func=page.name,
                            key=_key(prefix, "category"))
    subs = options.subcategories.get(category.id, [])
    st.caption(page.t("report.examples", examples="；".join(md_escape(page.name(s)) for s in subs)))
    community, _street = st.selectbox(
        page.t("report.community"), options.communities,
        format_func=lambda pair: f"{page.name(pair[1])} · {page.name(pair[0])}",
        key=_key(prefix, "community"))
    names = {"unit": {street.id: page.name(street) for _c, street in options.communities},
             "sub": {s.id: page.name(s) for s in subs}}
    add_to = _similar_choice(page, prefix, staff=staff, category=category, community=community,
                             names=names)
    max_mb = limits["max_mb"]
    with st.form(_key(prefix, "form"), clear_on_submit=False):
        sub = st.selectbox(page.t("report.subcategory"), [None] + subs,
                           format_func=lambda s: page.t("report.not_sure") if s is None else page.name(s))
        description = st.text_area(page.t("report.description"), max_chars=intake.DESCRIPTION_MAX,
                                   placeholder=page.t("report.description_hint"))
        address = st.text_input(page.t("report.address"), max_chars=intake.ADDRESS_MAX,
                                placeholder=page.t("report.address_hint"))
        left, right = st.columns(2)
        lat_text = left.text_input(page.t("report.latitude"), placeholder=page.t("report.latitude_hint"))
        lon_text = right.text_input(page.t("report.longitude"),
                                    placeholder=page.t("report.longitude_hint"))
        severity = st.selectbox(page.t("report.severity"), options.severities,
                                index=min(2, len(options.severities) - 1), format_func=page.name)
        photos = st.file_uploader(page.t("report.photos", max=limits["max_count"], max_mb=max_mb),
                                  accept_multiple_files=True, type=PHOTO_TYPES)
        localise_uploader(page, max_mb=max_mb)
        source = Source.resident
        if staff:
            source = st.selectbox(page.t("report.source"), STAFF_SOURCES,
                                  format_func=lambda s: page.t("source." + s))
        anonymous = False
        if category.allow_anonymous or staff:
            anonymous = st.checkbox(page.t("report.anonymous"))
        name = st.text_input(page.t("report.name"), max_chars=intake.NAME_MAX)
        phone = st.text_input(page.t("report.phone_staff" if staff else "report.phone"),
                              max_chars=20)
        st.caption(page.t("report.privacy"))
        submitted = st.form_submit_button(page.t("report.submit"), type="primary")
    if not submitted:
        return
    try:
        latitude, longitude = _parse_point(lat_text, lon_text)
        report = intake.Report(
            category_id=category.id, community_id=community.id, description=description,
            address=address, subcategory_id=sub.id if sub else None,
            severity=severity.severity, source=source, reporter_name=name, reporter_phone=phone,
            anonymous=anonymous, latitude=latitude, longitude=longitude,
            files=[(f.name, f.getvalue()) for f in (photos or [])])
        receipt = intake.submit(None, actor=page.actor if staff else None, report=report,
                               submit_key=st.session_state[submit_key],
                               client_address=client_address(), add_to=add_to)
    except DomainError as err:
        page.error(err)
        return
    st.session_state[_key(prefix, "done")] = (receipt.case.code, receipt.pin)
    # The tracking page opens with the code filled in.
    st.session_state["track_code"] = st.session_state["track_code_box"] = receipt.case.code
    st.rerun()
