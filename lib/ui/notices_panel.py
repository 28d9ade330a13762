"""The sidebar's unread notices: how many, the latest ones linking to their cases, and
"mark all read" (lib.cases.notices reads and writes them). A notice's link opens its case with
``notice=<id>``: the panel marks that notice read before it counts, and drops the parameter."""

from __future__ import annotations

import streamlit as st

from lib.cases import notices
from lib.core.clock import china_time
from lib.ui.text import md_escape

NOTICE_PARAM = "notice"  # the notice a link opened, marked read on arrival


def unread_panel(page) -> None:  # noqa: ANN001  (lib.ui.page.Page, which imports this module)
    """Inside the sidebar: nothing when all is read; else the count, and in an expander the
    latest notices in the page's language, each a link to its case."""
    if page.actor is None:
        return
    opened = st.query_params.get(NOTICE_PARAM)
    if opened is not None:
        if page.key == "case":
            notices.mark_one(page.actor, opened)
        del st.query_params[NOTICE_PARAM]
    box = notices.unread(page.actor, page.lang)
    if not box.count:
        return
    with st.expander(page.t("notice.panel.unread", count=box.count), icon=":material/notifications:"):
        for item in box.latest:
            page.link("case", label=md_escape(item.text),
                      params={"id": str(item.case_id), NOTICE_PARAM: str(item.id)})
            st.caption(china_time(item.at))
        if st.button(page.t("notice.panel.mark_read"), key="sidebar_notices_read"):
            notices.mark_read(page.actor, up_to=box.last_id)
            st.rerun()
