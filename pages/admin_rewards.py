"""Admin: reward rules (amount by category and severity) and the policy (pools, cap, second
approval, claim window, payment methods). Every change is kept with who made it and when."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.core.errors import DomainError
from lib.core.models import Severity
from lib.rewards import rules
from lib.rewards.models import RewardRule
from lib.rewards.rules import METHODS, yuan
from lib.ui.cards import local_time
from lib.ui.page import setup_page

page = setup_page("admin_rewards")
with page.guard():
    st.title(page.t("page.admin_rewards"))
    page.show_flash()
    screen = rules.rules_screen(page.actor)
    names = {c.id: page.name(c) for c in screen.categories}
    policy = screen.policy

    st.subheader(page.t("admin_rewards.policy"))
    with st.form("admin_rewards_policy", enter_to_submit=False):
        cols = st.columns(3)
        street_pool = cols[0].text_input(page.t("admin_rewards.street_pool"),
                                         value=str(policy.street_pool_fen / 100), max_chars=12)
        district_pool = cols[1].text_input(page.t("admin_rewards.district_pool"),
                                           value=str(policy.district_pool_fen / 100), max_chars=12)
        cap = cols[2].text_input(page.t("admin_rewards.reporter_cap"),
                                 value=str(policy.reporter_cap_fen / 100), max_chars=12)
        cols = st.columns(3)
        threshold = cols[0].text_input(page.t("admin_rewards.second_approval_above"),
                                       value=str(policy.second_approval_above_fen / 100), max_chars=12)
        window = cols[1].text_input(page.t("admin_rewards.claim_window_days"),
                                    value=str(policy.claim_window_days), max_chars=3)
        methods = cols[2].multiselect(page.t("admin_rewards.methods"), list(METHODS),
                                      default=policy.methods.split(","),
                                      format_func=lambda m: page.t("reward_method." + m),
                                      placeholder=page.t("common.choose"))
        if st.form_submit_button(page.t("admin_rewards.save_policy"), type="primary"):
            try:
                rules.set_policy(page.actor, street_pool=street_pool, district_pool=district_pool,
                                 reporter_cap=cap, second_approval_above=threshold,
                                 claim_window_days=window, methods=methods)
                page.flash("admin_rewards.saved")
                st.rerun()
            except DomainError as err:
                page.error(err)

    st.subheader(page.t("admin_rewards.rules"))
    st.dataframe(pd.DataFrame([{
        page.t("admin_rewards.category"): names.get(r.category_id, page.t("admin_rewards.any")),
        page.t("admin_rewards.severity"): page.t("severity." + r.severity) if r.severity
        else page.t("admin_rewards.any"),
        page.t("admin_rewards.amount"): yuan(r.amount_fen),
        page.t("admin_rewards.since"): local_time(r.valid_from),
    } for r in screen.rules]), hide_index=True, width="stretch")
    with st.form("admin_rewards_rule", enter_to_submit=False):
        cols = st.columns(3)
        category = cols[0].selectbox(page.t("admin_rewards.category"), [None, *screen.categories],
                                     format_func=lambda c: page.t("admin_rewards.any") if c is None
                                     else page.name(c))
        severity = cols[1].selectbox(page.t("admin_rewards.severity"),
                                     [None, *(s.value for s in Severity)],
                                     format_func=lambda s: page.t("admin_rewards.any") if s is None
                                     else page.t("severity." + s))
        amount = cols[2].text_input(page.t("admin_rewards.amount_yuan"), max_chars=12)
        if st.form_submit_button(page.t("admin_rewards.save_rule")):
            try:
                rules.set_rule(page.actor, category_id=category.id if category else None,
                               severity=severity, amount=amount)
                page.flash("admin_rewards.saved")
                st.rerun()
            except DomainError as err:
                page.error(err)

    if screen.history:
        st.subheader(page.t("admin_rewards.history"))
        st.dataframe(pd.DataFrame([{
            page.t("admin_rewards.what"): (
                f"{names.get(h.category_id, page.t('admin_rewards.any'))} · "
                f"{page.t('severity.' + h.severity) if h.severity else page.t('admin_rewards.any')}"
                f" · {yuan(h.amount_fen)}") if isinstance(h, RewardRule)
            else page.t("admin_rewards.policy_row", pool=yuan(h.street_pool_fen),
                        cap=yuan(h.reporter_cap_fen)),
            page.t("admin_rewards.since"): local_time(h.valid_from),
            page.t("admin_rewards.until"): local_time(h.valid_to),
        } for h in screen.history]), hide_index=True, width="stretch")
