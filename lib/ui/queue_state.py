"""The queue page's state — tab, filters, sort, page — kept in the address and the session.

Streamlit forgets a page's widgets when another page runs, so a clerk coming back from a case
would find the queue reset. Each run writes the state to the query string (the browser's Back
and a copied link return to the same view) and to the session (the menu's plain link returns to
it too); when the widgets are gone, they are put back from the query string if it says
anything, else from the session. Every value is checked against what the user may choose.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from lib.cases.queue import SORTS, TEXT_MAX, FilterOptions
from lib.core.models import CaseState, Severity

SAVED = "queue_saved"
# widget key → query parameter
PARAMS = {"queue_tab": "tab", "queue_category": "category", "queue_community": "community",
          "queue_state": "state", "queue_severity": "severity", "queue_text": "q",
          "queue_sort": "sort"}
PAGE_PARAM = "page"


def _int_in(allowed: set[int]) -> Callable[[str], int | None]:
    def check(raw: str) -> int | None:
        return int(raw) if raw.isdigit() and int(raw) in allowed else None
    return check


def _validators(tabs: list[str], options: FilterOptions) -> dict[str, Callable[[str], object]]:
    states = {s.value for s in CaseState}
    severities = {s.value for s in Severity}
    return {
        "queue_tab": lambda raw: raw if raw in tabs else None,
        "queue_category": _int_in({c.id for c in options.categories}),
        "queue_community": _int_in({u.id for u in options.communities}),
        "queue_state": lambda raw: raw if raw in states else None,
        "queue_severity": lambda raw: raw if raw in severities else None,
        "queue_text": lambda raw: raw[:TEXT_MAX] if raw else None,
        "queue_sort": lambda raw: raw if raw in SORTS else None,
    }


def restore(tabs: list[str], options: FilterOptions) -> None:
    """Put the widgets' values back when Streamlit dropped them (first run of the page)."""
    if "queue_tab" in st.session_state:
        return
    query = st.query_params
    if any(name in query for name in (*PARAMS.values(), PAGE_PARAM)):
        source = {name: query.get(name) for name in (*PARAMS.values(), PAGE_PARAM)}
    else:
        source = st.session_state.get(SAVED, {})
    for key, check in _validators(tabs, options).items():
        raw = source.get(PARAMS[key])
        value = check(str(raw)) if raw is not None else None
        if value is not None:
            st.session_state[key] = value
    raw_page = str(source.get(PAGE_PARAM) or "")
    st.session_state["queue_page"] = int(raw_page) - 1 if raw_page.isdigit() and \
        0 < int(raw_page) < 100_000 else 0
    st.session_state["queue_signature"] = None  # keep the restored page (see ``page_of``)


def page_of(signature: object) -> int:
    """The page number, back to the first when the tab, filters or sort changed."""
    if st.session_state.get("queue_signature") is None:
        st.session_state["queue_signature"] = signature
    elif st.session_state["queue_signature"] != signature:
        st.session_state["queue_signature"] = signature
        st.session_state["queue_page"] = 0
    return st.session_state.get("queue_page", 0)


def save(defaults: dict[str, object]) -> None:
    """Write the current state to the session and the query string (defaults left out)."""
    saved: dict[str, str] = {}
    for key, name in PARAMS.items():
        value = st.session_state.get(key)
        if value not in (None, "", defaults.get(key)):
            saved[name] = str(value)
    page = st.session_state.get("queue_page", 0)
    if page:
        saved[PAGE_PARAM] = str(page + 1)
    st.session_state[SAVED] = saved
    for name in (*PARAMS.values(), PAGE_PARAM):
        if name in saved:
            if st.query_params.get(name) != saved[name]:
                st.query_params[name] = saved[name]
        elif name in st.query_params:
            del st.query_params[name]
