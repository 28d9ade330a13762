"""Reward ledger (奖励台账): claims and payouts in my area by month — of eligibility, approval
or payout — with the month's totals per street (claims made, awards, payouts, the street's pool;
``lib.rewards.figures``' one basis, the assessment pages' too), the district's pool for a
district reader, and exports (amounts as numbers and dates as dates in the
workbook, formulas neutralised, phones and payment details masked, the unit and the period in
the file name). An approver opens a claim with a click on its row."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import plotly.express as px
import streamlit as st

from lib.core.clock import china_time
from lib.core.errors import DomainError
from lib.org.permissions import REWARD_APPROVERS
from lib.rewards import approval, pools
from lib.rewards.models import ClaimState
from lib.rewards.rules import yuan
from lib.ui.page import setup_page
from lib.ui.queue_state import ids_at
from lib.ui.text import plain

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHOWN = ["id", "created_at", "case", "category", "street", "community", "reporter", "amount_fen",
         "state", "reason", "method", "payment_detail", "approved_at", "paid_at", "paid_by",
         "reference"]


def shown(column: str, value: object) -> str:
    if column == "amount_fen":
        return yuan(value)
    if column in approval.MOMENTS:
        return china_time(value)
    return plain(str(value))


page = setup_page("reward_ledger")
with page.guard():
    st.title(page.t("page.reward_ledger"))
    left, middle, right = st.columns(3)
    month = left.text_input(page.t("reward_ledger.month"), key="reward_ledger_month",
                            value=pools.month_of(datetime.now(timezone.utc)), max_chars=7)
    dated = middle.selectbox(page.t("reward_ledger.dated"), approval.DATED,
                             format_func=lambda d: page.t("reward_ledger.dated." + d),
                             key="reward_ledger_dated")
    state = right.selectbox(page.t("queue.state"), [None, *(s.value for s in ClaimState)],
                            format_func=lambda s: page.t("queue.all") if s is None
                            else page.t("claim_state." + s), key="reward_ledger_state")
    chosen = approval.LedgerFilter(month=month.strip() or None, state=state, dated=dated)

    def label(key: str) -> str:
        return page.t(key)

    try:
        totals = approval.month_totals(page.actor, chosen.month) if chosen.month else []
        district = approval.district_pool(page.actor, chosen.month) if chosen.month else None
        rows = approval.ledger_rows(page.actor, chosen, lang_name=page.name, label=label)
    except DomainError as err:
        page.error(err)
        st.stop()

    if totals:
        st.subheader(page.t("reward_ledger.totals", month=chosen.month))
        frame = pd.DataFrame([{
            page.t("reward_ledger.street"): page.name(total.street),
            page.t("reward_figures.claims_made"): total.claims,
            page.t("reward_figures.awarded_count"): total.awarded,
            page.t("reward_ledger.awarded"): total.approved_fen / 100,
            page.t("reward_ledger.paid"): total.paid_fen / 100,
            page.t("reward_ledger.rejected"): total.rejected,
            page.t("reward_figures.street_pool"): page.t(
                "reward_figures.pool_cell", committed=yuan(total.pool.committed_fen),
                budget=yuan(total.pool.budget_fen), left=yuan(total.pool.left_fen)),
        } for total in totals])
        chart = px.bar(frame, x=page.t("reward_ledger.street"),
                       y=[page.t("reward_ledger.awarded"), page.t("reward_ledger.paid")],
                       barmode="group", labels={"value": page.t("reward_ledger.yuan"), "variable": ""})
        chart.update_layout(margin={"t": 10, "l": 10, "r": 10, "b": 10}, height=320)
        st.plotly_chart(chart, width="stretch")
        st.dataframe(frame, hide_index=True, width="stretch")
    if chosen.month:
        st.caption(page.t("reward_figures.basis"))
    if district is not None:
        st.subheader(page.t("reward_figures.district_pool", month=chosen.month))
        columns = st.columns(5)
        for column, key, fen in ((columns[0], "budget", district.budget_fen),
                                 (columns[1], "committed", district.committed_fen),
                                 (columns[2], "reserved", district.reserved_fen),
                                 (columns[3], "paid_out", district.paid_fen),
                                 (columns[4], "left", district.left_fen)):
            column.metric(page.t("reward_figures.pool." + key), yuan(fen),
                          help=page.t("reward_figures.pool_help." + key), border=True)
        st.caption(page.t("reward_figures.district_pool_note"))

    st.subheader(page.t("reward_ledger.claims_title", count=len(rows)))
    if rows:
        # The page shows ¥50 under 金额; the exports a number under 金额（元）.
        heads = {c: page.t("reward_ledger.col." + ("amount" if c == "amount_fen" else c))
                 for c in SHOWN}
        table = pd.DataFrame([{heads[c]: shown(c, row[c]) for c in SHOWN} for row in rows])
        if page.actor.has(*REWARD_APPROVERS):
            # A click opens the claim on the approval page, which shows what lib lets this
            # approver see and do there.
            drawn = [int(row["id"]) for row in rows]
            picked = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun",
                                  selection_mode="single-cell",
                                  key=f"reward_ledger_table_{hash((chosen, tuple(drawn)))}")
            st.caption(page.t("reward_ledger.legend_open"))
            cells = picked.selection.cells if picked else []
            clicked = ids_at([cell[0] for cell in cells[:1]], drawn)
            if clicked:
                st.switch_page("pages/rewards.py", query_params=page.query({"claim": str(clicked[0])}))
        else:
            st.dataframe(table, hide_index=True, width="stretch")
    else:
        st.info(page.t("queue.empty"))

    st.subheader(page.t("ledger.export"))
    left, right = st.columns(2)
    for column, fmt, mime in ((left, "csv", "text/csv"), (right, "xlsx", XLSX)):
        with column:
            if st.button(page.t("ledger.prepare_" + fmt), key=f"reward_ledger_prepare_{fmt}"):
                try:
                    st.session_state[f"reward_ledger_file_{fmt}"] = (
                        approval.export(page.actor, chosen, fmt=fmt, lang_name=page.name,
                                        label=label),
                        approval.export_name(page.actor, chosen, fmt=fmt, lang_name=page.name,
                                             label=label))
                except DomainError as err:
                    page.error(err)
            held = st.session_state.get(f"reward_ledger_file_{fmt}")
            if held is not None:
                data, file_name = held
                st.download_button(page.t("ledger.download_" + fmt), data, file_name=file_name,
                                   mime=mime, key=f"reward_ledger_download_{fmt}",
                                   on_click="ignore")
