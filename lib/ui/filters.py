"""The case filters shared by the queue and the ledger pages.

The widgets hold ids and codes, never database rows, so that a page can put a saved choice
back into them (``prefix_category`` etc. in session state) after the user comes back.
"""

from __future__ import annotations

import streamlit as st

from lib.cases.models import CaseState
from lib.cases.queue import TEXT_MAX, FilterOptions, Filters
from lib.core.models import Severity
from lib.ui.page import Page


def case_filters(page: Page, options: FilterOptions, prefix: str) -> Filters:
    """Category, community, state, severity and text in one row; widget keys carry ``prefix``."""
    categories = {c.id: c for c in options.categories}
    communities = {u.id: u for u in options.communities}

    def all_or(label):  # noqa: ANN001, ANN202
        return lambda value: page.t("queue.all") if value is None else label(value)

    cols = st.columns([2, 2, 2, 2, 3])
    category = cols[0].selectbox(page.t("queue.category"), [None, *categories],
                                 format_func=all_or(lambda i: page.name(categories[i])),
                                 key=f"{prefix}_category")
    community = cols[1].selectbox(page.t("queue.community"), [None, *communities],
                                  format_func=all_or(lambda i: page.name(communities[i])),
                                  key=f"{prefix}_community")
    state = cols[2].selectbox(page.t("queue.state"), [None] + [s.value for s in CaseState],
                              format_func=all_or(lambda s: page.t("state." + s)),
                              key=f"{prefix}_state")
    severity = cols[3].selectbox(page.t("queue.severity"), [None] + [s.value for s in Severity],
                                 format_func=all_or(lambda s: page.t("severity." + s)),
                                 key=f"{prefix}_severity")
    text = cols[4].text_input(page.t("queue.text"), max_chars=TEXT_MAX, key=f"{prefix}_text")
    return Filters(category_id=category, community_id=community, state=state, severity=severity,
                   text=text)
