"""Public: follow a report with its tracking code and a proof only the reporter holds (the PIN
printed on the receipt, or a code sent by SMS to the report's phone); see the result and the
expected completion; rate the result, hurry the case and claim a reward, each with a code sent
by SMS for that move (the PIN where the report left no phone). Once proved, a move's proof is
held for a few minutes of the visit (lib's ``Held``, kept in the session on the server): the
next moves on the same case do not ask again. ``/track?code=...`` fills the code box, never the
proof."""

import streamlit as st

from lib.cases import tracking
from lib.cases.machine import MOVES
from lib.cases.states import Act, S
from lib.core.errors import DomainError
from lib.core.inputs import clean_code
from lib.rewards import tracking as rewards
from lib.rewards.machine import CLAIMS, REFUSED, ClaimAct
from lib.rewards.rules import yuan
from lib.ui.cards import local_time, photos, public_timeline
from lib.ui.login import client_address
from lib.ui.moves import MoveForms
from lib.ui.page import setup_page
from lib.ui.text import md_escape, plain

page = setup_page("track")
HELD = "track_held"  # the proof held for moves (tracking.Held), bound to its case's code
# The status card wraps its text on a narrow phone instead of cutting it ("已收到，等待社区…").
STATUS_CSS = """<style>
.st-key-track_status [data-testid="stMetricValue"],
.st-key-track_status [data-testid="stMetricValue"] * {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  overflow-wrap: anywhere; height: auto !important; line-height: 1.3;
}
.st-key-track_status [data-testid="stMetricValue"] { font-size: clamp(1.25rem, 6.5vw, 2.25rem); }
</style>"""


def send_code(code: str, purpose: str) -> None:
    """Ask for a one-time code by SMS; the answer never says whether the case exists."""
    try:
        tracking.send_code(None, code, purpose, client_address=client_address())
        st.success(page.t("track.code_sent", minutes=int(
            tracking.code_ttl(purpose).total_seconds() // 60)))
    except DomainError as err:
        page.error(err)


def held(view: tracking.Tracking) -> tracking.Held | None:
    """The proof this visit holds for moves on the case shown, while it lasts."""
    proof = st.session_state.get(HELD)
    return proof if isinstance(proof, tracking.Held) and proof.holds(view.code) else None


def proof_for(view: tracking.Tracking, typed: object, purpose: str) -> tracking.Held:
    """The proof a move is sent with: the one held, else the typed one, held from now on (an
    empty box is refused by lib before anything is looked up)."""
    proof = held(view) or tracking.hold(None, view.code, typed, purpose,
                                        client_address=client_address())
    st.session_state[HELD] = proof
    return proof


def proof_input(view: tracking.Tracking, key: str) -> tuple[str, bool]:
    """The proof for a move, inside its form: a code by SMS (with a button that sends one), or
    the PIN of a report without a phone. Returns (what was typed, whether a code was asked)."""
    if not view.by_sms:
        return st.text_input(page.t("track.pin_again"), max_chars=6, type="password",
                             key=key), False
    typed = st.text_input(page.t("track.sms_code"), max_chars=6, key=key)
    return typed, st.form_submit_button(page.t("track.send_code"))


def proof_inputs(view: tracking.Tracking, key: str, purpose: str):
    """The proof's inputs for a move's form (``move_form``'s ``extra``): {"proof": typed}."""
    def draw() -> dict[str, object]:
        if held(view) is not None:
            st.caption(page.t("track.proof_held", minutes=tracking.held_minutes()))
            return {"proof": None}
        typed, asked = proof_input(view, key)
        if asked:
            send_code(view.code, purpose)
        return {"proof": typed}
    return draw


def no_options(field: str, row: object) -> str:
    return str(row)


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
    with st.form("track_lookup", enter_to_submit=False):
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
                              client_address=client_address(), hold=looked_up)
    except DomainError as err:
        st.session_state.pop("track_proof", None)  # a rerun must not count the failure again
        st.session_state["track_error"] = (err.key, err.params)
        page.error(err)
        st.stop()

    st.subheader(f"{view.code} · {md_escape(page.name(view.category))}")
    if view.joined:
        st.info(page.t("track.joined"))
    if view.held is not None:  # a phone-less case: the PIN just typed proves its moves too
        st.session_state[HELD] = view.held
    st.html(STATUS_CSS)
    with st.container(key="track_status"):
        st.metric(page.t("track.status"), page.t("public_state." + view.state), border=True)
    if view.expected:  # our own words and a time, no user text
        st.markdown(page.t("track.closed_on" if view.expected == S.closed else "track.expected",
                           at=local_time(view.expected_at) or page.t("track.expected_pending")))
    st.caption(page.t("track.reported_at", at=local_time(view.reported_at)))
    if view.result:
        st.markdown(f"**{page.t('track.result')}**")
        st.text(plain(view.result))  # the handler's words, never rendered
    public_timeline(page, view.lines)
    if view.result_photos:
        st.markdown(f"**{page.t('track.result_photos')}**")
        photos(view.result_photos, [""] * len(view.result_photos), width=240)  # never via /media

    # Each move's form is sent with the version the reporter first saw it with (MoveForms).
    forms = MoveForms(page, "case", view.case_id, view.version)
    forms.stale_notice("track_reload")
    if view.can_rate:
        st.markdown(f"**{page.t('track.rate_title')}**")
        sent = forms.form(tracking.RATING_FORM, key="track_rate", options={},
                          describe=no_options, primary=False, submit="track.rate_submit",
                          labels={"rating": "track.rating",
                                  "note": "track.reason_joined" if view.joined else "track.reason"},
                          extra=proof_inputs(view, "track_rate_proof", Act.rate))
        if sent is not None:
            forms.send(sent, lambda version: tracking.rate(
                None, code=view.code, proof=proof_for(view, sent.values["proof"], Act.rate),
                rating=sent.values["rating"],
                reason=sent.values["note"], version=version, client_address=client_address()),
                lambda case: "track.reopened" if case.state == S.in_progress
                else "track.thanks_rating")
    elif view.rating:
        st.caption(page.t("track.rated", rating=page.t("rating." + view.rating)))

    reward = rewards.reward_for(None, st.session_state["track_code"],
                                st.session_state["track_proof"], client_address=client_address())
    if reward.state is not None:
        st.markdown(f"**{page.t('track.reward_title')}**")
        if reward.state in REFUSED:
            st.caption(page.t("track.reward_no", reason=page.t("reward_reason." + (reward.reason
                                                                                  or "other"))))
        else:
            st.caption(page.t("track.reward_state", amount=yuan(reward.amount_fen),
                              state=page.t("claim_state." + reward.state)))
        if reward.can_claim:
            st.caption(page.t("track.reward_until", at=local_time(reward.window_ends_at)))
            claim_forms = MoveForms(page, CLAIMS.name, reward.claim_id, reward.version)
            claim_forms.stale_notice("track_claim_reload")
            sent = claim_forms.form(
                CLAIMS.moves[ClaimAct.claim], key="track_claim", options={"method": reward.methods},
                describe=no_options, primary=False, prefix=CLAIMS.labels,
                labels={"method": "claim.form.claim.method"},  # the reporter's form: no star
                hint=page.t("track.reward_privacy"),
                extra=proof_inputs(view, "track_claim_proof", tracking.CLAIM))
            if sent is not None:
                claim_forms.send(sent, lambda version: rewards.claim_reward(
                    None, code=view.code,
                    proof=proof_for(view, sent.values["proof"], tracking.CLAIM),
                    method=sent.values["method"],
                    payment_detail=sent.values["payment_detail"], version=version,
                    client_address=client_address()), "track.claimed")

    if view.hurry_from is not None:
        st.caption(page.t("track.hurry_later", at=local_time(view.hurry_from)))
    if view.can_hurry:
        st.markdown(f"**{page.t('track.hurry_title')}**")
        sent = forms.form(MOVES[Act.hurry], key="track_hurry", options={}, describe=no_options,
                          primary=False, hint=page.t("track.hurry_hint", count=view.hurry_count),
                          labels={"note": "track.hurry_note"}, submit="track.hurry_submit",
                          extra=proof_inputs(view, "track_hurry_proof", Act.hurry))
        if sent is not None:
            forms.send(sent, lambda version: tracking.hurry(
                None, code=view.code, proof=proof_for(view, sent.values["proof"], Act.hurry), version=version,
                note=sent.values["note"], client_address=client_address()), "track.hurried")
