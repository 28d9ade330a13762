"""Monitoring (运行监测): overdue now by unit, this week's spikes, repeat places, long-parked
cases."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lib.kpi import monitoring
from lib.kpi.access import TIER_KINDS
from lib.ui import kpi
from lib.ui.cards import local_time
from lib.ui.page import setup_page

LEDGER = "pages/ledger.py"

page = setup_page("kpi_monitoring")
with page.guard():
    head = kpi.page_head(page)
    query = head.query
    data = monitoring.monitoring(page.actor, query)
    st.caption(page.t("kpi.mon.scope", unit=kpi.md_escape(page.name(data.scope)),
                      at=local_time(data.now)) + " " + page.t("behind.rows_hint"))

    st.subheader(page.t("kpi.mon.overdue"))
    if data.overdue:
        names = [kpi.safe(page.name(o.unit)) for o in data.overdue]
        chart = go.Figure(go.Bar(x=[o.cases for o in data.overdue], y=names, orientation="h",
                                 marker_color=kpi.BAD))
        chart.update_yaxes(autorange="reversed")
        kpi.show(chart, "mon_overdue", height=max(220, 26 * len(names) + 60))
        # A row opens its overdue cases in the ledger (a tier unit's area; a department's are
        # the ones it handles, which the ledger lists under the unit's own queue instead).
        kpi.rows_open(page, pd.DataFrame([{
            page.t("kpi.col.unit"): page.name(o.unit), page.t("kpi.mon.kind"): page.t(f"kind.{o.unit.kind}"),
            page.t("kpi.col.cases"): o.cases, page.t("kpi.mon.oldest_due"): local_time(o.oldest_due),
        } for o in data.overdue]), "mon_overdue_rows",
            [(LEDGER, {"status": "overdue", "unit": o.unit.code}) if o.unit.kind in TIER_KINDS else None
             for o in data.overdue])
    else:
        st.success(page.t("kpi.mon.no_overdue"))

    st.subheader(page.t("kpi.mon.spikes"))
    st.caption(page.t("kpi.mon.spikes_rule", start=data.week[0].isoformat(), end=data.week[1].isoformat(),
                      min=data.spike_min, sigma=data.spike_sigma))
    if data.spikes:
        labels = [kpi.safe(f"{page.name(s.community)} · {page.name(s.category)}") for s in data.spikes]
        chart = go.Figure([
            go.Bar(y=labels, x=[round(s.mean, 1) for s in data.spikes], orientation="h",
                   name=page.t("kpi.mon.baseline")),
            go.Bar(y=labels, x=[s.this_week for s in data.spikes], orientation="h",
                   name=page.t("kpi.mon.this_week"), marker_color=kpi.BAD)])
        chart.update_layout(barmode="group")
        chart.update_yaxes(autorange="reversed")
        kpi.show(chart, "mon_spikes", height=max(240, 40 * len(labels) + 60))
        kpi.rows_open(page, pd.DataFrame([{
            page.t("kpi.col.unit"): page.name(s.community), page.t("kpi.col.category"): page.name(s.category),
            page.t("kpi.mon.this_week"): s.this_week, page.t("kpi.mon.baseline"): round(s.mean, 1),
            page.t("kpi.mon.sd"): round(s.sd, 1),
        } for s in data.spikes]), "mon_spike_rows",
            [(LEDGER, {"unit": s.community.code, "category": s.category.key,
                       "from": data.week[0].isoformat(), "to": data.week[1].isoformat()})
             for s in data.spikes])
    else:
        st.success(page.t("kpi.mon.no_spikes"))

    st.subheader(page.t("kpi.mon.repeats"))
    st.caption(page.t("kpi.mon.repeats_rule", min=data.repeat_min))
    if data.repeats:
        kpi.rows_open(page, pd.DataFrame([{
            page.t("kpi.col.unit"): page.name(r.community), page.t("kpi.col.category"): page.name(r.category),
            page.t("kpi.mon.address"): kpi.plain(r.address), page.t("kpi.col.cases"): r.reports,
            page.t("kpi.mon.last"): local_time(r.last),
        } for r in data.repeats]), "mon_repeat_rows",
            [(LEDGER, {"unit": r.community.code, "category": r.category.key}) for r in data.repeats])
    else:
        st.success(page.t("kpi.mon.no_repeats"))

    st.subheader(page.t("kpi.mon.parked"))
    st.caption(page.t("kpi.mon.parked_rule", days=data.parked_days))
    if data.parked:
        kpi.rows_open(page, pd.DataFrame([{
            page.t("kpi.mon.code"): p.code, page.t("kpi.col.category"): page.name(p.category),
            page.t("kpi.col.unit"): page.name(p.community), page.t("kpi.mon.since"): local_time(p.since),
            page.t("kpi.mon.days"): p.days, page.t("kpi.mon.review_at"): local_time(p.review_at),
        } for p in data.parked]), "mon_parked_rows",
            [("pages/case.py", {"id": str(p.case_id)}) for p in data.parked])
    else:
        st.success(page.t("kpi.mon.no_parked"))
    kpi.as_of_note(page, head.computed_at)
