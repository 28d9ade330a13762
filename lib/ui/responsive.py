"""Phones and wide screens: the queue draws a card per case on a phone and a table elsewhere.

Which one is decided on the server from the browser's User-Agent (a phone's says "Mobile",
"iPhone" or "Android … Mobile"), so a page sends one layout, not both (drawing both and hiding
one by window width cost the queue page about 100 ms at 50 rows). A desktop window made narrow
keeps the table; the case page has one layout that reads well at any width.
"""

from __future__ import annotations

import re

import streamlit as st

_PHONE = re.compile(r"Mobi|iPhone|iPod|Android.+Mobile|Windows Phone|HarmonyOS", re.IGNORECASE)


def phone_agent(user_agent: str | None) -> bool:
    """Whether a User-Agent is a phone's."""
    return bool(user_agent) and bool(_PHONE.search(user_agent))


def on_phone() -> bool:
    """Whether this page is drawn for a phone (no request, as in AppTest: no)."""
    try:
        agent = st.context.headers.get("User-Agent")
    except Exception:  # no request context
        agent = None
    return phone_agent(agent)
