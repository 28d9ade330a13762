"""Admin: the 12 categories, their subcategories and owning departments; deadline rules."""

import pandas as pd
import streamlit as st

from lib.org.refdata import categories_screen
from lib.ui.page import setup_page
from lib.ui.text import md_escape

page = setup_page("admin_categories")
with page.guard():
    st.title(page.t("page.admin_categories"))
    st.caption(page.t("categories.how_to_edit"))

    overview, rules = categories_screen()

    for number, item in enumerate(overview, start=1):
        category = item["category"]
        title = f"{number}\\. {md_escape(page.name(category))}"
        if category.restricted:
            title += f" · {page.t('categories.restricted')}"
        with st.expander(title):
            owners = [page.name(d) + (f" ({page.t('categories.lead')})" if lead else "")
                      for d, lead in item["departments"]]
            st.text(page.t("categories.departments") + ": " + "、".join(owners))
            st.dataframe(pd.DataFrame({page.t("categories.subcategory"):
                                       [page.name(s) for s in item["subcategories"]]}),
                         hide_index=True, width="stretch")

    st.subheader(page.t("categories.deadlines"))

    def duration(value: int, unit: str) -> str:
        return page.t("duration." + unit, n=value)

    st.dataframe(pd.DataFrame([{
        page.t("categories.severity"): page.name(r),
        page.t("categories.sign_for"): duration(r.sign_for_value, r.sign_for_unit),
        page.t("categories.handle_by"): duration(r.handle_value, r.handle_unit),
        page.t("categories.answer_call"): duration(r.answer_call_value, r.answer_call_unit),
    } for r in rules]), hide_index=True, width="stretch")
