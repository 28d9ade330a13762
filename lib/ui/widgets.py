"""Small widget helpers: Streamlit's own texts in the user's language where Streamlit allows it,
and the browser's location.

Streamlit draws the file uploader's texts ("Drag and drop files here", "Upload", "… per file")
in English whatever the page's language; for Chinese pages a static style sheet replaces them
with ours, which also state the limits lib enforces.

The location comes from streamlit-js-eval's geolocation component, whose page ships inside the
package (nothing is fetched from elsewhere). Its frame has nothing to show: a style sheet folds
it away. Where components do not run (AppTest), it answers None.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from streamlit_js_eval import get_geolocation

from lib.ui.page import Page
from lib.ui.text import md_escape

# The drop zone (Streamlit 1.67): a button whose Markdown label is "Upload", and an
# instructions <div> whose inner <span> says "5MB per file • JPG, …" in its own font size.
_UPLOADER_CSS = """<style>
[data-testid="stFileUploaderDropzoneInstructions"] * {{ display: none !important; }}
[data-testid="stFileUploaderDropzoneInstructions"]::after {{
  content: "{limits}"; font-size: 0.875rem; opacity: 0.7; }}
[data-testid="stFileUploaderDropzone"] button [data-testid="stMarkdownContainer"] p {{
  font-size: 0 !important; }}
[data-testid="stFileUploaderDropzone"] button [data-testid="stMarkdownContainer"] p::after {{
  content: "{button}"; font-size: 0.875rem; }}
</style>"""

# Dates are typed and shown year first, as everywhere else on our pages (2026-12-03); on a
# Chinese page an empty box reads 年-月-日 (lib/ui/page.py's date style).
DATE_FORMAT = "YYYY-MM-DD"


def _css_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("<", "").replace(">", "")


def localise_uploader(page: Page, *, max_mb: int) -> None:
    """Replace the uploader's English texts on a Chinese page (our catalog text only)."""
    if page.lang == "en":
        return
    st.html(_UPLOADER_CSS.format(limits=_css_string(page.t("upload.limits", max_mb=max_mb)),
                                 button=_css_string(page.t("upload.button"))))


def choose(page: Page) -> str:
    """The placeholder of a select box with nothing chosen yet."""
    return page.t("common.choose")


# Streamlit 1.67 gives an element with a key the class ``st-key-<key>``.
_FOLD_CSS = """<style>
[class*="st-key-{prefix}"] {{ display: none; }}
</style>"""


def browser_location(key: str) -> object:
    """What the browser's geolocation answered (``{"coords": {...}}`` or ``{"error": {...}}``),
    or None until it answers. Each new ``key`` asks again; lib checks the answer."""
    st.html(_FOLD_CSS.format(prefix=_css_string(key)))
    return get_geolocation(component_key=key)


# A table drawn twice: the interactive grid on screen, a static table of every row on paper.
# The grid is a canvas of about ten rows that scrolls inside itself, so a printed page showed
# only those rows; the static copy is hidden on screen and the grid on paper.
PRINT_TABLE_CSS = """<style>
@media screen { [class*="st-key-print_table_"] { display: none !important; } }
@media print {
  [class*="st-key-screen_table_"] { display: none !important; }
  [class*="st-key-print_table_"] table { page-break-inside: auto; }
  [class*="st-key-print_table_"] tr { page-break-inside: avoid; }
}
</style>"""


def printable_table(frame: pd.DataFrame, key: str) -> None:
    """``frame`` as a data grid on screen and, for printing, as a static table with every row
    (its text escaped: a static table renders Markdown)."""
    with st.container(key=f"screen_table_{key}"):
        st.dataframe(frame, hide_index=True, width="stretch")
    shown = frame.rename(columns=lambda c: md_escape(str(c))).map(
        lambda v: md_escape(v) if isinstance(v, str) else v)
    with st.container(key=f"print_table_{key}"):
        st.table(shown, hide_index=True)
