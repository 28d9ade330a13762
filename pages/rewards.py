"""Reward approval (奖励审批): two lists — claims waiting for a decision (待审批) and approved
claims waiting for their payout (待发放) — searched by case code or reporter, oldest or newest
first; a click on any cell opens the claim with its evidence, the reporter's history and the
warning signals; ticked rows take a batch approval (clean small claims) or a batch payout with
one payment reference, confirmed with their count and total. The claim's own forms: approve,
reject with a reason, second approval above the threshold, and the payout."""

from __future__ import annotations

import logging

import pandas as pd
import streamlit as st

from lib.core.errors import DomainError
from lib.rewards import approval, eligibility
from lib.rewards.machine import CLAIMS, DECIDING, TO_PAY, ClaimAct
from lib.rewards.rules import yuan
from lib.ui import queue_state
from lib.ui.cards import line_text, local_time, photos, say
from lib.ui.moves import MoveForms
from lib.ui.page import setup_page
from lib.ui.queue_state import ids_at
from lib.ui.text import md_escape, plain

TABS = approval.LISTS
GENERATION = "rewards_table_generation"  # bumped by a batch or an opened claim: nothing ticked
PENDING = "rewards_pay_pending"  # a batch payout waiting for its confirmation


def untick() -> None:
    st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1
    st.session_state.pop(PENDING, None)


def refusals(codes: dict[int, str], refused: list[tuple[int, str]]) -> str:
    """Each claim not moved, by its case code, with why."""
    return page.t("rewards.refusal_joiner").join(
        page.t("rewards.refusal", code=codes.get(i, i), why=page.t(key)) for i, key in refused)


def run_approve(versions: dict[int, int], codes: dict[int, str]) -> None:
    """The batch approval's callback: the claims and versions the button was drawn with."""
    if not st.session_state.get("rewards_batch_sure"):
        page.flash("rewards.batch_not_confirmed", error=True)
        return
    try:
        done, refused = approval.batch_approve(page.actor, list(versions.items()))
    except DomainError as err:
        page.flash("rewards.batch_failed", error=True, why=page.error_text(err))
    except Exception:  # a callback runs outside the page's guard
        logging.getLogger("pages.rewards").exception("batch approval failed")
        page.flash("error.unexpected", error=True)
    else:
        page.flash("rewards.batch_done_refused" if refused else "rewards.batch_done_all",
                   error=bool(refused), done=done, n=len(refused),
                   why=refusals(codes, refused))
    untick()


def ask_payout(versions: dict[int, int], codes: dict[int, str], amounts: dict[int, int]) -> None:
    """The first step of a batch payout: hold what was ticked, at the versions drawn, and the
    reference typed, for the confirmation."""
    reference = (st.session_state.get("rewards_pay_reference") or "").strip()
    if not reference:
        page.flash("rewards.pay_reference_needed", error=True)
        return
    st.session_state[PENDING] = {"versions": versions, "codes": codes, "amounts": amounts,
                                 "reference": reference}


def run_payout() -> None:
    pending = st.session_state.get(PENDING)
    if not pending:
        return
    try:
        outcome = approval.batch_pay(page.actor, pending["versions"],
                                     reference=pending["reference"])
    except DomainError as err:
        page.flash("rewards.pay_failed", error=True, why=page.error_text(err))
        st.session_state.pop(PENDING, None)
        return
    except Exception:  # a callback runs outside the page's guard
        logging.getLogger("pages.rewards").exception("batch payout failed")
        page.flash("error.unexpected", error=True)
        st.session_state.pop(PENDING, None)
        return
    page.flash("rewards.pay_done_refused" if outcome.refused else "rewards.pay_done_all",
               error=bool(outcome.refused), done=len(outcome.paid), total=yuan(outcome.paid_fen),
               n=len(outcome.refused), why=refusals(pending["codes"], outcome.refused))
    untick()


def open_claim(claim_id: int) -> None:
    untick()  # back from the claim, the list starts with nothing clicked or ticked
    st.query_params["claim"] = str(claim_id)
    st.rerun()


def claim_list() -> None:
    """The two lists; ends the run."""
    counts = approval.list_counts(page.actor)
    if "rewards_tab" not in st.session_state:
        st.session_state["rewards_tab"] = approval.opening_list(counts, st.query_params.get("tab"))
    tab = st.segmented_control(page.t("rewards.tabs"), TABS, key="rewards_tab",
                               format_func=lambda k: page.t("rewards.tab." + k, n=counts[k]),
                               label_visibility="collapsed") or TABS[0]
    if tab != TABS[0]:
        st.query_params["tab"] = tab
    elif "tab" in st.query_params:
        del st.query_params["tab"]
    left, right = st.columns([3, 1])
    text = left.text_input(page.t("rewards.search"), key="rewards_q",
                           max_chars=approval.SEARCH_MAX,
                           placeholder=page.t("rewards.search_hint"))
    sort = right.selectbox(page.t("queue.sort"), approval.SORTS, key="rewards_sort",
                           format_func=lambda s: page.t("rewards.sort." + s))
    view = (tab, text, sort)
    if st.session_state.get("rewards_view") != view:
        st.session_state["rewards_view"] = view
        st.session_state["rewards_page"] = 0
    page_no = st.session_state.get("rewards_page", 0)
    listing = approval.approval_queue if tab == "decide" else approval.payout_queue
    rows, total = listing(page.actor, page=page_no, text=text, sort=sort)
    if not rows and page_no:  # the page emptied (claims moved on): back to the first
        st.session_state["rewards_page"] = page_no = 0
        rows, total = listing(page.actor, page=0, text=text, sort=sort)
    st.caption(page.t("rewards.shown." + tab, total=total))
    if not rows:
        st.info(page.t("rewards.no_match" if text.strip() else "rewards.empty." + tab))
        return
    hidden = page.t("rewards.reporter_hidden")
    records = []
    for r in rows:
        record = {page.t("rewards.col.since." + tab): local_time(r.waiting_since),
                  page.t("rewards.col.case"): r.case_code,
                  page.t("rewards.col.category"): page.name(r.category),
                  page.t("rewards.col.community"): page.name(r.community),
                  page.t("rewards.col.amount"): yuan(r.amount_fen)}
        if tab == "decide":  # waiting for a first or a second approval
            record[page.t("rewards.col.state")] = page.t("claim_state." + r.state)
        record[page.t("rewards.col.reporter")] = r.reporter if r.reporter is not None else hidden
        if tab == "decide":
            record[page.t("rewards.col.signals")] = "、".join(
                page.t("signal." + s) for s in r.signals) or page.t("rewards.no_signal")
        else:
            record[page.t("rewards.col.method")] = page.t("reward_method." + r.method) \
                if r.method else ""
            record[page.t("rewards.col.payment_detail")] = plain(
                r.payment_detail if r.payment_detail is not None else hidden)
        records.append(record)
    drawn = [r.id for r in rows]
    picked = st.dataframe(pd.DataFrame(records), hide_index=True, width="stretch",
                          on_select="rerun", selection_mode=["multi-row", "single-cell"],
                          key=queue_state.table_key(drawn, st.session_state.get(GENERATION, 0),
                                                    (view, page_no), prefix=f"rewards_table_{tab}"))
    st.caption(page.t("rewards.legend." + tab))
    pages = max(1, -(-total // approval.PAGE_SIZE))
    if pages > 1:
        chosen = st.number_input(page.t("queue.page", pages=pages), min_value=1,
                                 max_value=pages, value=page_no + 1, step=1)
        if chosen - 1 != page_no:
            st.session_state["rewards_page"] = int(chosen) - 1
            st.rerun()
    selection = picked.selection if picked else None
    clicked = ids_at([cell[0] for cell in selection.cells[:1]], drawn) if selection else []
    if clicked:
        open_claim(clicked[0])
    by_id = {r.id: r for r in rows}
    ticked = [by_id[i] for i in ids_at(selection.rows if selection else [], drawn)]
    if not ticked:
        st.session_state.pop(PENDING, None)
        return
    if tab == "decide":
        batch_approval(ticked)
    else:
        batch_payout(ticked)


def batch_approval(ticked: list[approval.QueueRow]) -> None:
    st.subheader(page.t("rewards.batch_title_n", n=len(ticked)))
    clean = [r for r in ticked if r.clean]
    if not clean:
        st.info(page.t("rewards.batch_none"))
        return
    st.caption(page.t("rewards.batch_hint_ticked", count=len(clean), total=yuan(
        sum(r.amount_fen for r in clean)), other=len(ticked) - len(clean)))
    st.checkbox(page.t("rewards.batch_confirm", count=len(clean)), key="rewards_batch_sure")
    st.button(page.t("rewards.batch_submit_n", n=len(clean)), key="rewards_batch_approve",
              type="primary", on_click=run_approve,
              args=({r.id: r.version for r in clean}, {r.id: r.case_code for r in clean}))


def batch_payout(ticked: list[approval.QueueRow]) -> None:
    st.subheader(page.t("rewards.pay_title_n", n=len(ticked)))
    total = sum(r.amount_fen for r in ticked)
    versions = {r.id: r.version for r in ticked}
    pending = st.session_state.get(PENDING)
    if pending and pending["versions"] != versions:  # the ticks changed: ask again
        st.session_state.pop(PENDING, None)
        pending = None
    if pending is None:
        st.caption(page.t("rewards.pay_hint", n=len(ticked), total=yuan(total)))
        st.text_input(page.t("rewards.pay_reference"), key="rewards_pay_reference",
                      max_chars=approval.REFERENCE_MAX)
        st.button(page.t("rewards.pay_ask", n=len(ticked)), key="rewards_pay_ask",
                  type="primary", on_click=ask_payout,
                  args=(versions, {r.id: r.case_code for r in ticked},
                        {r.id: r.amount_fen for r in ticked}))
        return
    with st.container(border=True, key="rewards_pay_confirm_box"):
        st.warning(page.t("rewards.pay_confirm", n=len(pending["versions"]),
                          total=yuan(sum(pending["amounts"].values())),
                          reference=md_escape(pending["reference"])))
        st.dataframe(pd.DataFrame([{
            page.t("rewards.col.case"): pending["codes"][i],
            page.t("rewards.col.amount"): yuan(pending["amounts"][i]),
        } for i in pending["versions"]]), hide_index=True)
        yes, no = st.columns(2)
        yes.button(page.t("rewards.pay_confirm_button", n=len(pending["versions"])),
                   key="rewards_pay_confirm", type="primary", on_click=run_payout)
        no.button(page.t("rewards.pay_cancel"), key="rewards_pay_cancel",
                  on_click=lambda: st.session_state.pop(PENDING, None))


page = setup_page("rewards")
with page.guard():
    st.title(page.t("page.rewards"))
    eligibility.run_in_background()
    page.show_flash()

    raw_id = st.query_params.get("claim")
    if raw_id is None:
        claim_list()
        st.stop()

    try:
        detail = approval.claim_detail(page.actor, raw_id)
    except DomainError as err:
        page.error(err)
        if st.button(page.t("rewards.back"), key="rewards_back_error"):
            del st.query_params["claim"]
            st.rerun()
        st.stop()
    claim = detail.claim
    forms = MoveForms(page, CLAIMS.name, claim.id, claim.version)
    if st.button(page.t("rewards.back"), key="rewards_back", icon=":material/arrow_back:"):
        del st.query_params["claim"]
        st.rerun()
    forms.stale_notice("claim_reload")
    st.subheader(f"{detail.case_code} · {md_escape(page.name(detail.category))} · {yuan(claim.amount_fen)}")
    head = st.columns(4, border=True)
    for column, label, value in (
            (head[0], "rewards.col.state", page.t("claim_state." + claim.state)),
            (head[1], "rewards.col.community", f"{page.name(detail.street)} · {page.name(detail.community)}"),
            (head[2], "rewards.col.reporter", page.t("rewards.reporter_hidden") if detail.restricted
             else detail.reporter or "—"),
            (head[3], "rewards.threshold", yuan(detail.threshold_fen))):
        column.caption(page.t(label))
        column.markdown(f"**{md_escape(value)}**")
    if detail.signals:
        st.warning(page.t("rewards.signals", signals="；".join(page.t("signal." + s)
                                                             for s in detail.signals)))
    left, right = st.columns([3, 2])
    with left:
        st.markdown(f"**{page.t('rewards.evidence')}**")
        if not detail.evidence:
            st.info(page.t("case.description_hidden"))
        else:
            st.text(plain(detail.description))
            st.caption(page.t("rewards.address", address=md_escape(detail.address)))
            if detail.result:
                st.markdown(f"**{page.t('rewards.result')}**")
                st.text(plain(detail.result))
        st.dataframe(pd.DataFrame([{
            page.t("timeline.at"): local_time(line.at),
            page.t("timeline.action"): say(page, line.action),
        } for line in detail.case_lines]), hide_index=True, width="stretch")
    with right:
        if detail.photos:
            # Inline, never through the media store, whose URLs answer anyone who holds them.
            photos([p.data for p in detail.photos], [page.t("photo." + p.kind) for p in detail.photos],
                   width=150)
        history = detail.history
        st.markdown(f"**{page.t('rewards.history')}**")
        st.dataframe(pd.DataFrame({
            page.t("case.field"): [page.t("rewards.history.claims"), page.t("rewards.history.awarded"),
                                   page.t("rewards.history.reports"),
                                   page.t("rewards.history.rejected")],
            page.t("case.value"): [str(history.claims_this_month), yuan(history.awarded_this_month_fen),
                                   str(history.reports), str(history.rejected_reports)],
        }), hide_index=True, width="stretch")
        st.markdown(f"**{page.t('rewards.claim_timeline')}**")
        st.dataframe(pd.DataFrame([{
            page.t("timeline.at"): local_time(line.at),
            page.t("timeline.action"): say(page, line.action),
            page.t("timeline.note"): line_text(page, line),
        } for line in detail.claim_lines]), hide_index=True, width="stretch")
        if claim.method:
            st.caption(page.t("rewards.payment", method=page.t("reward_method." + claim.method),
                              detail=md_escape(detail.payment_detail or "—")))

    st.subheader(page.t("case.actions"))
    waiting = claim.state in DECIDING | TO_PAY
    if waiting and detail.barred:
        st.warning(page.t(detail.barred))
    elif waiting and detail.staff_report:
        st.warning(page.t("rewards.staff_report"))
    if not detail.actions and not detail.barred:
        st.caption(page.t("rewards.no_actions" if waiting else "rewards.finished"))
    for index, action in enumerate(detail.actions):
        hint = None
        if action == ClaimAct.pay and detail.full_payment_detail:
            hint = page.t("rewards.pay_to", detail=md_escape(detail.full_payment_detail))
        with st.expander(page.t("claim.action." + action), expanded=index == 0):
            sent = forms.form(CLAIMS.moves[action], key=f"claim_form_{action}", options={},
                              describe=lambda field, row: str(row), primary=index == 0,
                              prefix=CLAIMS.labels, hint=hint)
        if sent is not None:
            forms.send(sent, lambda version, action=action, sent=sent: approval.decide(
                page.actor, claim.id, action, version=version, **sent.values), "rewards.done")
