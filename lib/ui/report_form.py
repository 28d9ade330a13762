"""The report form shared by the public report page and the staff report page.

The public form may say that similar open cases exist and offer to join one, described only by
what the server chooses (category, problem, street, date): never another reporter's code,
address or words, never a restricted category. Staff see the similar cases of their area whose
content they may read, with code and address.

Residents are not asked for a severity (triage judges it; the case starts at its category's
default), and only the staff who triage are. Nothing is chosen for a resident: category and
community start empty, and a report without them is refused with every missing field named. A
staff report starts at the reporter's own community. "Use my location" fills the map point from
the browser, and picks the community whose boundary holds it (the reporter sees it and may
change it); typed coordinates stay as the fallback, and lib checks both.
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
from lib.ui.widgets import browser_location, choose, localise_uploader

PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "gif"]


def _key(prefix: str, name: str) -> str:
    return f"{prefix}_{name}"


def _use_my_location(page: Page, prefix: str, communities: list) -> None:
    """The "use my location" button. Each tap asks the browser once (a component of its own);
    a point lib accepts fills the coordinate boxes and, where it lies inside a community's
    boundary, the community box; both are drawn after this."""
    taps, outcome = _key(prefix, "locate_taps"), _key(prefix, "located")
    if st.button(page.t("report.locate"), key=_key(prefix, "locate"),
                 icon=":material/my_location:"):
        st.session_state[taps] = st.session_state.get(taps, 0) + 1
        st.session_state.pop(outcome, None)
    tap = st.session_state.get(taps)
    if tap and outcome not in st.session_state:
        answer = browser_location(_key(prefix, f"where_{tap}"))
        if answer is None:
            st.caption(page.t("report.locating"))
            return
        try:
            latitude, longitude = intake.point_from_browser(answer)
        except DomainError as err:
            st.session_state[outcome] = err
        else:
            st.session_state[_key(prefix, "latitude")] = str(latitude)
            st.session_state[_key(prefix, "longitude")] = str(longitude)
            found = intake.community_at(latitude, longitude, communities)
            pair = next((p for p in communities if p[0].id == found), None)
            if pair is not None:
                st.session_state[_key(prefix, "community")] = pair
            st.session_state[outcome] = found
    if outcome in st.session_state:
        err = st.session_state[outcome]
        if isinstance(err, DomainError):
            page.error(err)
        elif err is None:
            st.caption(page.t("report.located_outside"))
        else:
            pair = next((p for p in communities if p[0].id == err), None)
            st.caption(page.t("report.located_in", community=md_escape(
                page.name(pair[0]) if pair else "")))


def _receipt(page: Page, prefix: str) -> None:
    """The code (and PIN) after a submit, shown until the reporter asks for a new form."""
    code, pin = st.session_state[_key(prefix, "done")]
    st.success(page.t("report.thanks"))
    if st.session_state.get(_key(prefix, "sms")):
        st.info(page.t("report.sms_follows"))
    st.markdown(f"### {page.t('report.your_code')}: `{code}`")
    if pin:
        st.markdown(f"### {page.t('report.your_pin')}: `{pin}`")
        st.warning(page.t("report.pin_once"))
        st.info(page.t("report.how_to_track"))
    else:  # a staff-entered report with the reporter's phone: codes go to that phone
        st.info(page.t("report.how_to_track_sms"))
    page.link("track")
    if st.button(page.t("report.another"), key=_key(prefix, "another")):
        for name in ("done", "sms", "submit_key", "locate_taps", "located", "category",
                     "community"):
            st.session_state.pop(_key(prefix, name), None)
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
    actor = page.actor if staff else None
    form = intake.intake_form(actor)
    options, limits = form.options, form.limits
    if not options.communities:
        st.warning(page.t("report.no_communities"))
        return
    # A resident chooses the category; staff start at the first (their own report's usual one).
    category = st.selectbox(page.t("report.category"), options.categories, format_func=page.name,
                            index=0 if staff else None, placeholder=choose(page),
                            key=_key(prefix, "category"))
    subs = options.subcategories.get(category.id, []) if category is not None else []
    if subs:
        st.caption(page.t("report.examples",
                          examples="；".join(md_escape(page.name(s)) for s in subs)))
    _use_my_location(page, prefix, list(options.communities))
    community_ids = [c.id for c, _street in options.communities]
    preset = intake.default_community(actor, options.communities)
    community, _street = st.selectbox(
        page.t("report.community"), options.communities,
        index=community_ids.index(preset) if preset in community_ids
        and _key(prefix, "community") not in st.session_state else None,
        format_func=lambda pair: f"{page.name(pair[1])} · {page.name(pair[0])}",
        placeholder=choose(page), key=_key(prefix, "community")) or (None, None)
    add_to = None
    if community is not None and category is not None:
        names = {"unit": {street.id: page.name(street) for _c, street in options.communities},
                 "sub": {s.id: page.name(s) for s in subs}}
        add_to = _similar_choice(page, prefix, staff=staff, category=category,
                                 community=community, names=names)
    sources = intake.report_sources(actor) if staff else [Source.resident]
    max_mb = limits["max_mb"]
    with st.form(_key(prefix, "form"), clear_on_submit=False, enter_to_submit=False):
        sub = st.selectbox(page.t("report.subcategory"), [None] + subs,
                           format_func=lambda s: page.t("report.not_sure") if s is None else page.name(s))
        description = st.text_area(page.t("report.description"), max_chars=intake.DESCRIPTION_MAX,
                                   placeholder=page.t("report.description_hint"))
        address = st.text_input(page.t("report.address"), max_chars=intake.ADDRESS_MAX,
                                placeholder=page.t("report.address_hint"))
        left, right = st.columns(2)
        lat_text = left.text_input(page.t("report.latitude"), key=_key(prefix, "latitude"),
                                   placeholder=page.t("report.latitude_hint"))
        lon_text = right.text_input(page.t("report.longitude"), key=_key(prefix, "longitude"),
                                    placeholder=page.t("report.longitude_hint"))
        severity = None
        if intake.triages(actor) and category is not None:
            default = intake.default_severity(category.key)
            levels = [rule.severity for rule in options.severities]
            names_of = {rule.severity: page.name(rule) for rule in options.severities}
            severity = st.selectbox(page.t("report.severity"), levels,
                                    index=levels.index(default) if default in levels else 0,
                                    format_func=names_of.get,
                                    help=page.t("report.severity_default"))
        photos = st.file_uploader(page.t("report.photos", max=limits["max_count"], max_mb=max_mb),
                                  accept_multiple_files=True, type=PHOTO_TYPES)
        localise_uploader(page, max_mb=max_mb)
        source = sources[0]
        if len(sources) > 1:
            source = st.selectbox(page.t("report.source"), sources,
                                  format_func=lambda s: page.t("source." + s))
        # A grid worker or an inspector reports what they found: the reporter's fields, for a
        # report on a resident's behalf, are folded away.
        reporter = st.expander(page.t("report.reporter"), expanded=len(sources) > 1) if staff \
            else st.container()
        anonymous = False
        if staff or (category is not None and category.allow_anonymous):
            anonymous = reporter.checkbox(page.t("report.anonymous"))
        name = reporter.text_input(page.t("report.name"), max_chars=intake.NAME_MAX)
        phone = reporter.text_input(page.t("report.phone_staff" if staff else "report.phone"),
                                    max_chars=20)
        st.caption(page.t("report.staff_privacy" if staff else "report.privacy"))
        submitted = st.form_submit_button(page.t("report.submit"), type="primary")
    if not submitted:
        return
    try:
        latitude, longitude = intake.point_from_text(lat_text, lon_text)
        report = intake.Report(
            category_id=category.id if category else None,
            community_id=community.id if community else None,
            description=description, address=address, subcategory_id=sub.id if sub else None,
            severity=severity, source=source, reporter_name=name, reporter_phone=phone,
            anonymous=anonymous, latitude=latitude, longitude=longitude,
            files=[(f.name, f.getvalue()) for f in (photos or [])])
        receipt = intake.submit(None, actor=actor, report=report,
                               submit_key=st.session_state[submit_key],
                               client_address=client_address(), add_to=add_to,
                               signed_in=None if staff else page.actor)
    except DomainError as err:
        page.error(err)
        return
    st.session_state[_key(prefix, "done")] = (receipt.case.code, receipt.pin)
    st.session_state[_key(prefix, "sms")] = receipt.sms_follows
    # The tracking page opens with the code filled in.
    st.session_state["track_code"] = st.session_state["track_code_box"] = receipt.case.code
    st.rerun()
