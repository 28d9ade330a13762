"""Staff: report what a grid worker found, or a hotline call on a resident's behalf."""

import streamlit as st

from lib.ui.page import setup_page
from lib.ui.report_form import report_form

page = setup_page("staff_report")
with page.guard():
    st.title(page.t("page.staff_report"))
    st.caption(page.t("report.staff_intro"))
    report_form(page, staff=True)
