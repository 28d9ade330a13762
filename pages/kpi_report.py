"""Monthly assessment report (月度通报): the chosen month's figures, rankings, red and black lists
and categories, printable from the browser and as an Excel workbook."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.core.errors import DomainError
from lib.kpi import report
from lib.kpi.figures import HEADLINE
from lib.kpi.report import CATEGORY_FIGURES, RANKED_FIGURES, kind_of
from lib.ui import kpi, months
from lib.ui.cards import local_time
from lib.ui.page import setup_page
from lib.ui.widgets import PRINT_TABLE_CSS, printable_table

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Printing: only the report (no sidebar, toolbar or buttons), tables unclipped.
PRINT_CSS = """
<style>
@media print {
  section[data-testid="stSidebar"], header, [data-testid="stToolbar"], .stDownloadButton,
  .stButton, [data-testid="stSelectbox"] { display: none !important; }
  .main .block-container { padding: 0 !important; max-width: 100% !important; }
}
</style>
"""

page = setup_page("kpi_report")
with page.guard():
    st.markdown(PRINT_CSS, unsafe_allow_html=True)
    st.html(PRINT_TABLE_CSS)
    heading = st.empty()  # the report's own title, once the filters have chosen unit and month
    head = kpi.page_head(page, title=False, category=False)
    query = head.query
    data = report.monthly(page.actor, query)
    heading.title(page.t("kpi.report.title", unit=kpi.md_escape(page.name(data.scope_unit)),
                         period=data.period.label))
    st.caption(page.t("kpi.report.range", start=data.period.start.isoformat(),
                      end=data.period.end.isoformat(), previous=data.previous.label,
                      made=local_time(data.made_at)))
    if data.closed_at is not None:  # as published when the month closed, whatever came after
        months.month_note(page, query)
    else:
        kpi.as_of_note(page, head.computed_at)

    def offer(key: str, prepare: str, download: str, make, icon: str, hint: str | None = None):
        """A button that makes a workbook, then its download (kept for the page's next runs)."""
        if st.button(page.t(prepare), key=f"{key}_prepare", icon=icon,
                     help=page.t(hint) if hint else None):
            try:
                st.session_state[f"{key}_file"] = make(page.actor, query, page.lang)
            except DomainError as err:
                page.error(err)
        if f"{key}_file" in st.session_state:
            name, content = st.session_state[f"{key}_file"]
            st.download_button(page.t(download), content, file_name=name, mime=XLSX,
                               key=f"{key}_download", on_click="ignore")

    offer("kpi_report", "kpi.report.prepare", "kpi.report.download", report.report_file,
          ":material/table:")
    offer("kpi_cases", "behind.cases_file.prepare", "behind.cases_file.download",
          report.cases_workbook, ":material/list_alt:", "behind.cases_file.hint")
    st.caption(page.t("kpi.report.print_hint"))

    st.subheader(page.t("kpi.report.sheet_summary"))
    rows = []
    for key in [*HEADLINE, "composite"]:
        now, before = data.values[key], data.before[key]
        rows.append({page.t("kpi.col.figure"): kpi.label(page, key),
                     data.period.label: kpi.fmt(page, now), data.previous.label: kpi.fmt(page, before),
                     page.t("kpi.col.basis"): kpi.basis(page, now)})
    q = data.quantiles
    for key, value in (("median_hours", q.median_hours), ("p90_hours", q.p90_hours),
                       ("median_workdays", q.median_workdays)):
        rows.append({page.t("kpi.col.figure"): page.t(f"kpi.closure.{key}"),
                     data.period.label: page.t("kpi.no_data") if value is None else f"{value:.1f}",
                     data.previous.label: "",
                     page.t("kpi.col.basis"): page.t("kpi.closed_count", count=q.count)})
    printable_table(pd.DataFrame(rows), "summary")

    for ranking in data.rankings:
        level = page.t(f"kpi.level.{ranking.level}")
        st.subheader(page.t("kpi.report.sheet_ranking", level=level))
        if not ranking.own_only:
            left, right = st.columns(2)
            for column, listed, key in ((left, ranking.red, "red"), (right, ranking.black, "black")):
                column.markdown(f"**{page.t('kpi.rank.' + key)}**")
                # Each unit's own rank, as a bullet: a Markdown ordered list would number the
                # lines itself (a black list from the 6th read "6. 7. 8.", one counting down
                # from 29 read "29. 30. 31.").
                lines = ["- " + page.t("kpi.report.list_line", rank=r.rank,
                                       unit=kpi.md_escape(page.name(r.unit)),
                                       score=kpi.fmt(page, r.values["composite"], "score"))
                         for r in listed]
                column.markdown("\n".join(lines) or page.t("kpi.rank.none_listed"))
        printable_table(pd.DataFrame([{
            page.t("kpi.col.rank"): str(r.rank) if r.rank is not None else page.t("kpi.rank.unranked"),
            page.t("kpi.col.unit"): page.name(r.unit),
            **{kpi.label(page, k): kpi.fmt(page, r.values[k], kind_of(k)) for k in RANKED_FIGURES},
            page.t("kpi.col.cases"): r.cases,
            page.t("kpi.col.list"): page.t(f"kpi.rank.{r.listed}") if r.listed else "",
        } for r in ranking.rows]), f"ranking_{ranking.level}")

    st.subheader(page.t("kpi.report.sheet_categories"))
    printable_table(pd.DataFrame([{
        page.t("kpi.col.category"): page.name(c),
        **{kpi.label(page, k): kpi.fmt(page, v[k], kind_of(k)) for k in CATEGORY_FIGURES},
    } for c, v, _ in data.categories]), "categories")

    st.subheader(page.t("kpi.months.sheet_adjustments"))
    st.caption(page.t("kpi.months.adjustments_note"))
    if data.adjustments:
        printable_table(pd.DataFrame(report.adjustment_rows(data, page.lang),
                                     columns=report.adjustment_header(page.lang)).astype(str),
                        "adjustments")
    else:
        st.caption(page.t("kpi.months.adjustments_none"))
