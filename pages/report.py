"""Public: report a problem, no login needed; a tracking code comes back."""

import streamlit as st

from lib.ui.page import setup_page
from lib.ui.report_form import report_form

page = setup_page("report")
with page.guard():
    st.title(page.t("page.report"))
    st.caption(page.t("report.intro"))
    report_form(page, staff=False)
