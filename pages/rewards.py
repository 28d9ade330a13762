"""Reward approval (奖励审批): claims waiting in my street or district, oldest first, with the
evidence, the reporter's history and warning signals; approve, reject with a reason, second
approval above the threshold, batch approval of clean small claims, and the payout."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.core.errors import DomainError
from lib.rewards import approval, eligibility
from lib.rewards.machine import CLAIMS, DECIDING, TO_PAY, ClaimAct
from lib.rewards.rules import yuan
from lib.ui.cards import line_text, local_time, photos, say
from lib.ui.moves import MoveForms
from lib.ui.page import setup_page
from lib.ui.text import md_escape, plain

page = setup_page("rewards")
with page.guard():
    st.title(page.t("page.rewards"))
    eligibility.run_in_background()
    page.show_flash()

    raw_id = st.query_params.get("claim")
    if raw_id is None:
        page_no = st.session_state.get("rewards_page", 0)
        rows, total = approval.approval_queue(page.actor, page=page_no)
        st.caption(page.t("rewards.waiting", total=total))
        if not rows:
            st.info(page.t("rewards.empty"))
            st.stop()
        frame = pd.DataFrame([{
            page.t("rewards.col.since"): local_time(r.waiting_since),
            page.t("rewards.col.case"): r.case_code,
            page.t("rewards.col.category"): page.name(r.category),
            page.t("rewards.col.community"): page.name(r.community),
            page.t("rewards.col.amount"): yuan(r.amount_fen),
            page.t("rewards.col.state"): page.t("claim_state." + r.state),
            page.t("rewards.col.reporter"): r.reporter if r.reporter is not None
            else page.t("rewards.reporter_hidden"),
            page.t("rewards.col.signals"): "、".join(page.t("signal." + s) for s in r.signals)
            or page.t("rewards.no_signal"),
        } for r in rows])
        picked = st.dataframe(frame, hide_index=True, width="stretch", on_select="rerun",
                              selection_mode="single-row", key="rewards_table")
        st.caption(page.t("rewards.legend"))
        pages = max(1, -(-total // approval.PAGE_SIZE))
        if pages > 1:
            chosen = st.number_input(page.t("queue.page", pages=pages), min_value=1,
                                     max_value=pages, value=page_no + 1, step=1)
            if chosen - 1 != page_no:
                st.session_state["rewards_page"] = int(chosen) - 1
                st.rerun()
        clean = [(r.id, r.version) for r in rows if r.clean]
        if clean:
            with st.form("rewards_batch"):
                st.markdown(f"**{page.t('rewards.batch_title')}**")
                st.caption(page.t("rewards.batch_hint", count=len(clean)))
                sure = st.checkbox(page.t("rewards.batch_confirm", count=len(clean)))
                if st.form_submit_button(page.t("rewards.batch_submit")):
                    if not sure:
                        st.error(page.t("rewards.batch_not_confirmed"))
                    else:
                        done, refused = approval.batch_approve(page.actor, clean)
                        page.flash("rewards.batch_done", done=done, refused=len(refused))
                        st.rerun()
        selected = picked.selection.rows if picked else []
        if selected:
            st.query_params["claim"] = str(rows[selected[0]].id)
            st.rerun()
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
