"""Public: follow a report with its tracking code and a proof only the reporter holds (the PIN
printed on the receipt, or a code sent by SMS to the report's phone); see the result and the
expected completion; rate the result, hurry the case and claim a reward, each with a code sent
by SMS for that move (the PIN where the report left no phone). ``/track?code=...`` fills the
code box, never the proof."""

import streamlit as st

from lib.cases import tracking
from lib.core.errors import DomainError
from lib.core.inputs import clean_code
from lib.core.models import Rating
from lib.rewards import tracking as rewards
from lib.rewards.rules import yuan
from lib.ui.cards import local_time, photos, public_timeline
from lib.ui.login import client_address
from lib.ui.page import setup_page
from lib.ui.text import md_escape, plain

page = setup_page("track")


def send_code(code: str, purpose: str) -> None:
    """Ask for a one-time code by SMS; the answer never says whether the case exists."""
    try:
        tracking.send_code(None, code, purpose, client_address=client_address())
        st.success(page.t("track.code_sent", minutes=int(
            tracking.code_ttl(purpose).total_seconds() // 60)))
    except DomainError as err:
        page.error(err)


def proof_input(view: tracking.Tracking, key: str) -> tuple[str, bool]:
    """The proof for a move, inside its form: a code by SMS (with a button that sends one), or
    the PIN of a report without a phone. Returns (what was typed, whether a code was asked)."""
    if not view.by_sms:
        return st.text_input(page.t("track.pin_again"), max_chars=6, type="password",
                             key=key), False
    typed = st.text_input(page.t("track.sms_code"), max_chars=6, key=key)
    return typed, st.form_submit_button(page.t("track.send_code"))


with page.guard():
    st.title(page.t("page.track"))
    st.caption(page.t("track.intro"))

    # One box for the code (a keyed widget: a changing default would draw a second box). A link
    # with another code fills it once, and the case shown before waits for its proof again.
    link_code = clean_code(st.query_params.get("code"))  # never the proof
    if link_code and st.session_state.get("track_link_code") != link_code:
        st.session_state["track_link_code"] = st.session_state["track_code_box"] = link_code
        if st.session_state.get("track_code") != link_code:
            st.session_state.pop("track_proof", None)
    st.session_state.setdefault("track_code_box", st.session_state.get("track_code", ""))
    with st.form("track_lookup"):
        code = st.text_input(page.t("track.code"), max_chars=20, key="track_code_box")
        proof = st.text_input(page.t("track.proof"), max_chars=6, type="password")
        looked_up = st.form_submit_button(page.t("track.submit"), type="primary")
        send_view_code = st.form_submit_button(page.t("track.send_code"))
    if looked_up:
        st.session_state["track_code"], st.session_state["track_proof"] = code, proof
        st.session_state.pop("track_error", None)
    if send_view_code:
        send_code(code, "view")

    page.show_flash()
    if "track_error" in st.session_state:  # until the next look-up: reruns keep it in sight
        key, params = st.session_state["track_error"]
        page.error(DomainError(key, **params))
    if not st.session_state.get("track_code") or "track_proof" not in st.session_state:
        st.stop()

    try:
        view = tracking.track(None, st.session_state["track_code"], st.session_state["track_proof"],
                           client_address=client_address())
    except DomainError as err:
        st.session_state.pop("track_proof", None)  # a rerun must not count the failure again
        st.session_state["track_error"] = (err.key, err.params)
        page.error(err)
        st.stop()

    st.subheader(f"{view.code} · {md_escape(page.name(view.category))}")
    if view.joined:
        st.info(page.t("track.joined"))
    st.metric(page.t("track.status"), page.t("public_state." + view.state), border=True)
    if view.expected:  # our own words and a time, no user text
        st.markdown(page.t("track.closed_on" if view.expected == "closed" else "track.expected",
                           at=local_time(view.expected_at) or page.t("track.expected_pending")))
    st.caption(page.t("track.reported_at", at=local_time(view.reported_at)))
    if view.result:
        st.markdown(f"**{page.t('track.result')}**")
        st.text(plain(view.result))  # the handler's words, never rendered
    public_timeline(page, view.timeline)
    if view.result_photos:
        st.markdown(f"**{page.t('track.result_photos')}**")
        photos(view.result_photos, [""] * len(view.result_photos), width=240)  # never via /media

    if view.can_rate:
        with st.form("track_rate"):
            st.markdown(f"**{page.t('track.rate_title')}**")
            rating = st.radio(page.t("track.rating"), [r.value for r in Rating], horizontal=True,
                              index=None, format_func=lambda r: page.t("rating." + r))
            reason = st.text_area(page.t("track.reason_joined" if view.joined
                                         else "track.reason"), max_chars=tracking.REASON_MAX)
            proof_again, asked = proof_input(view, "track_rate_proof")
            if asked:
                send_code(view.code, "rate")
            if st.form_submit_button(page.t("track.rate_submit")):
                try:
                    case = tracking.rate(None, code=view.code, proof=proof_again, rating=rating,
                                      reason=reason, version=view.version,
                                      client_address=client_address())
                    page.flash("track.reopened" if case.state == "in_progress"
                               else "track.thanks_rating")
                    st.rerun()
                except DomainError as err:
                    page.error(err)
    elif view.rating:
        st.caption(page.t("track.rated", rating=page.t("rating." + view.rating)))

    reward = rewards.reward_for(None, st.session_state["track_code"],
                                st.session_state["track_proof"], client_address=client_address())
    if reward.state is not None:
        st.markdown(f"**{page.t('track.reward_title')}**")
        if reward.state == "ineligible" or reward.state == "rejected":
            st.caption(page.t("track.reward_no", reason=page.t("reward_reason." + (reward.reason
                                                                                  or "other"))))
        else:
            st.caption(page.t("track.reward_state", amount=yuan(reward.amount_fen),
                              state=page.t("claim_state." + reward.state)))
        if reward.can_claim:
            st.caption(page.t("track.reward_until", at=local_time(reward.window_ends_at)))
            with st.form("track_claim"):
                method = st.radio(page.t("claim.form.claim.method"), reward.methods, index=None,
                                  horizontal=True, format_func=lambda m: page.t("reward_method." + m))
                detail = st.text_input(page.t("claim.form.claim.payment_detail"), max_chars=100)
                st.caption(page.t("track.reward_privacy"))
                claim_proof, asked = proof_input(view, "track_claim_proof")
                if asked:
                    send_code(view.code, "claim")
                if st.form_submit_button(page.t("claim.action.claim")):
                    try:
                        rewards.claim_reward(None, code=view.code, proof=claim_proof, method=method,
                                             payment_detail=detail, version=reward.version,
                                             client_address=client_address())
                        page.flash("track.claimed")
                        st.rerun()
                    except DomainError as err:
                        page.error(err)

    if view.can_hurry:
        with st.form("track_hurry"):
            st.markdown(f"**{page.t('track.hurry_title')}**")
            st.caption(page.t("track.hurry_hint", count=view.hurry_count))
            hurry_note = st.text_input(page.t("track.hurry_note"), max_chars=200)
            hurry_proof, asked = proof_input(view, "track_hurry_proof")
            if asked:
                send_code(view.code, "hurry")
            if st.form_submit_button(page.t("track.hurry_submit")):
                try:
                    tracking.hurry(None, code=view.code, proof=hurry_proof, version=view.version,
                                   note=hurry_note, client_address=client_address())
                    page.flash("track.hurried")
                    st.rerun()
                except DomainError as err:
                    page.error(err)
