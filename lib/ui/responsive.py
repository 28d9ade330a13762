"""One page, two layouts: what sits in a container keyed ``wide_…`` shows on a wide window,
what sits in one keyed ``narrow_…`` on a phone (a style sheet by window width; Streamlit gives
each keyed container the class ``st-key-<key>``)."""

from __future__ import annotations

import streamlit as st

NARROW_PX = 640
_CSS = f"""<style>
@media (max-width: {NARROW_PX}px) {{ [class*="st-key-wide_"] {{ display: none !important; }} }}
@media (min-width: {NARROW_PX + 1}px) {{ [class*="st-key-narrow_"] {{ display: none !important; }} }}
</style>"""


def layouts() -> None:
    """The style sheet that shows one of the two layouts; call once per page."""
    st.html(_CSS)
