"""One case: its facts (personal data masked by rule), photos, timeline, deadline, and the
moves this user may make, each as a small form. The expected next step comes right under the
title (on a phone, on the first screen); after a move the page says what it did, and
"办理并打开下一件" opens the next case of the clerk's queue view, read again."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from lib.cases import queue
from lib.cases.detail import SIGN_AND_START, Outcome, case_detail, make_move, sign_and_start, walk_after
from lib.cases.machine import MOVES
from lib.cases.photos import upload_limits
from lib.core.clock import china_date
from lib.core.errors import DomainError
from lib.core.inputs import parse_id
from lib.core.workcal import CHINA_TZ
from lib.ui import queue_state
from lib.ui.cards import countdown, line_text, local_time, photos, status_badge
from lib.ui.moves import MoveForms
from lib.ui.page import setup_page
from lib.ui.text import md_escape, plain

LEFT = "case_left_queue"  # case id → (previous, next) in the view it left after a move here

page = setup_page("case")
with page.guard():

    raw_id = st.query_params.get("id") or st.session_state.get("case_id")
    if raw_id is None:
        st.title(page.t("page.case"))
        st.info(page.t("case.pick_from_queue"))
        page.link("queue")
        st.stop()
    try:
        case_id = parse_id(raw_id)
        detail = case_detail(page.actor, case_id)
    except DomainError as err:
        st.title(page.t("page.case"))
        page.error(err)
        page.link("queue")
        st.stop()
    st.session_state["case_id"] = case_id
    st.query_params["id"] = str(case_id)

    case = detail.case
    forms = MoveForms(page, "case", case.id, case.version)
    page.show_flash()
    forms.stale_notice("case_reload")


    def unit_name(unit_id: int | None) -> str:
        unit = detail.units.get(unit_id) if unit_id else None
        return page.name(unit) if unit else ""


    # 上一件 / 下一件 walk the queue view the clerk came from. A case that left it after a move
    # here keeps its place (``LEFT``): the view was read again then, so the count is fresh.
    walk = st.session_state.get("queue_walk") or []
    previous, following, position = queue.neighbours(walk, case.id)
    left_queue = st.session_state.get(LEFT, {}).get(case.id) if position is None else None
    if left_queue is not None:
        previous, following = left_queue
    in_queue = position is not None or left_queue is not None
    nav = st.columns([1, 1, 1, 2], vertical_alignment="center")
    page.link("queue", label=page.t("case.back_to_queue"), icon=":material/arrow_back:",
              where=nav[0])
    if previous is not None:
        page.link("case", params={"id": str(previous)}, label=page.t("case.prev"),
                  icon=":material/chevron_left:", where=nav[1])
    if following is not None:
        page.link("case", params={"id": str(following)}, label=page.t("case.next"),
                  icon=":material/chevron_right:", where=nav[2])
    if position is not None:
        nav[3].caption(page.t("case.position", at=position, total=len(walk)))
    elif left_queue is not None:
        nav[3].caption(page.t("case.left_queue", total=len(walk)))

    st.title(f"{case.code} · {md_escape(page.name(detail.category))}")
    # The facts in brief, then the expected next step, then the rest: on a phone the next
    # step's form is on the first screen, before the description, the photos and the tables.
    brief = [page.t("state." + case.state), page.t("severity." + case.severity),
             unit_name(case.unit_id)]
    mine = detail.order_due
    if mine is not None and mine.at is not None:
        # A department's handler: its own order's sign-for deadline, then its handling one.
        brief.append(f"{page.t('order.' + mine.kind)} {local_time(mine.at)} · "
                     f"{countdown(page, mine.at, datetime.now(CHINA_TZ))}")
    elif detail.deadline:
        brief.append(f"{page.t('case.deadline')} {local_time(detail.deadline)} · "
                     f"{countdown(page, detail.deadline, datetime.now(CHINA_TZ))}")
    st.markdown(md_escape(" · ".join(b for b in brief if b)))
    status_badge(page, mine.status if mine is not None and mine.at is not None else detail.status)
    if case.supervised:
        st.warning(page.t("case.supervised"))
    if case.extension_until is not None:
        st.info(page.t("case.extension_pending", at=local_time(case.extension_until)))

    # ---------------------------------------------------------------- actions

    def describe(field: str, row) -> str:
        """An option of a field's widget: a unit or category by name; a case by code, the
        start of its description and its distance, so that two at one address differ."""
        if hasattr(row, "code") and hasattr(row, "reported_at"):
            near = page.t("case.metres", n=row.metres) if getattr(row, "metres", None) is not None \
                else ""
            other = "" if getattr(row, "same_category", True) else page.t("case.other_category")
            return " · ".join(x for x in (row.code, plain(getattr(row, "excerpt", "")), near,
                                          china_date(row.reported_at), other) if x)
        return page.name(row)

    def after_move(outcome: Outcome, then_next: bool) -> None:
        """Read the clerk's queue view again, so that the position is fresh; with "办理并打开
        下一件", open the view's next case."""
        view = queue_state.last_view(queue.tabs_for(page.actor), queue.options_for(page.actor)) \
            if in_queue else None
        if view is None:
            return
        filters = queue.Filters(category_id=view["queue_category"],
                                community_id=view["queue_community"], state=view["queue_state"],
                                severity=view["queue_severity"], text=view["queue_text"])
        try:
            place = walk_after(page.actor, view["queue_tab"], filters, view["queue_sort"], walk,
                               outcome.case_id)
        except DomainError:
            return
        st.session_state["queue_walk"] = place.walk
        if place.position is None:
            st.session_state[LEFT] = {outcome.case_id: (place.previous, place.following)}
        if then_next and place.following is not None:
            st.session_state["case_id"] = place.following
            st.query_params["id"] = str(place.following)

    def act(action: str, sent) -> None:
        if action == SIGN_AND_START:
            def make(version: int) -> Outcome:
                return sign_and_start(page.actor, case.id, version=version,
                                      note=sent.values.get("note"))
        else:
            def make(version: int) -> Outcome:
                return make_move(page.actor, case.id, action, version=version, files=sent.files,
                                 **sent.values)
        forms.send(sent, make, lambda done: ("case.moved", {"text": md_escape(done.text(page.lang))}),
                   then=lambda done: after_move(done, sent.then_next))

    moves = {a: MOVES[a] for a in detail.actions}
    if detail.quick is not None:
        moves[detail.quick.action] = detail.quick
    limits = upload_limits() if any(m.photos for m in moves.values()) else None
    also = "case.act_and_next" if in_queue else None
    # The expected next step, open, with the primary button (签收并开始处置 before 签收 alone);
    # side moves (reopen, call up, supervise …) are offered closed further down, never as "the
    # next step".
    expected = [detail.quick.action] if detail.quick is not None else \
        detail.actions[:1] if detail.actions and MOVES[detail.actions[0]].expected else []
    others = [a for a in detail.actions if a not in expected]
    with st.container(key="case_next_step"):
        if expected:
            st.markdown(f"**{page.t('case.next_action')}**")
        for action in expected:
            with st.expander(page.t("action." + action), expanded=True):
                sent = forms.form(moves[action], key=f"case_form_{action}",
                                  options=detail.options, describe=describe, primary=True,
                                  limits=limits, also=also)
            if sent is not None:
                act(action, sent)

    content = detail.content
    left, right = st.columns([3, 2])
    with left:
        st.markdown(f"**{page.t('case.description')}**")
        if not content.readable:
            st.info(page.t("case.description_hidden"))
        else:
            st.text(plain(content.description))
            st.caption(md_escape(f"{page.t('case.address')}: {plain(content.address)}"))
        if detail.duplicates:
            with st.container(border=True, key="case_duplicates"):
                st.markdown(f"**{page.t('case.duplicates')}**")
                for dup in detail.duplicates:
                    where = page.t("case.metres", n=dup.metres) if dup.metres is not None \
                        else page.t("case.same_address")
                    page.link("case", params={"id": str(dup.id)}, icon=":material/content_copy:",
                              label=md_escape(" · ".join((dup.code, plain(dup.excerpt), where,
                                                          china_date(dup.reported_at)))))
        if detail.photos:
            st.markdown(f"**{page.t('case.photos')}**")
            photos([p.data for p in detail.photos], [page.t("photo." + p.kind) for p in detail.photos])

    with right:
        if not expected and not others:
            st.caption(page.t("case.no_actions"))
        if others:
            st.caption(page.t("case.more_actions"))
        for action in others:
            with st.expander(page.t("action." + action)):
                sent = forms.form(moves[action], key=f"case_form_{action}",
                                  options=detail.options, describe=describe, primary=False,
                                  limits=limits, also=also)
            if sent is not None:
                act(action, sent)

    st.subheader(page.t("case.details"))
    facts = {
        page.t("case.subcategory"): page.name(detail.subcategory) if detail.subcategory else "—",
        page.t("case.address"): plain(content.address) if content.readable
        else page.t("case.content_hidden"),
        page.t("case.community"): f"{unit_name(case.street_id)} · {unit_name(case.community_id)}",
        page.t("case.source"): page.t("source." + case.source),
        page.t("case.reported_at"): local_time(case.reported_at),
        page.t("case.owner"): unit_name(case.owner_id),
        page.t("case.handler"): unit_name(case.handler_id) or "—",
        page.t("case.reached_tier"): page.t("kind." + case.reached_tier),
    }
    if content.latitude is not None:
        facts[page.t("case.point")] = f"{content.latitude:.5f}, {content.longitude:.5f}"
    reporter = detail.reporter
    if case.anonymous:
        facts[page.t("case.reporter")] = page.t("case.anonymous")
    elif reporter.name or reporter.phone:
        facts[page.t("case.reporter")] = " ".join(plain(x) for x in (reporter.name, reporter.phone) if x)
    if case.rating:
        facts[page.t("case.rating")] = page.t("rating." + case.rating)
    st.dataframe(pd.DataFrame({page.t("case.field"): list(facts),
                               page.t("case.value"): list(facts.values())}),
                 hide_index=True, width="stretch")
    if detail.orders:
        st.markdown(f"**{page.t('case.work_orders')}**")
        st.dataframe(pd.DataFrame([{
            page.t("order.unit"): unit_name(o.unit_id),
            page.t("order.role"): page.t("order.lead" if o.lead else "order.co"),
            page.t("order.state"): page.t("order_state." + o.state),
            page.t("order.sign_due"): local_time(o.sign_due_at),
            page.t("order.handle_due"): local_time(o.handle_due_at),
        } for o in detail.orders]), hide_index=True, width="stretch")

    st.subheader(page.t("case.timeline"))
    st.dataframe(pd.DataFrame([{
        page.t("timeline.at"): local_time(e.at),
        page.t("timeline.action"): page.t("action." + e.action),
        page.t("timeline.by"): plain(detail.actor_names.get(e.actor_id, page.t("timeline.public")
                                                             if e.actor_id is None else "")),
        page.t("timeline.to_unit"): unit_name(e.to_unit_id),
        page.t("timeline.state"): page.t("state." + e.to_state),
        page.t("timeline.note"): line_text(page, e.line),
    } for e in reversed(detail.events)]), hide_index=True, width="stretch")

