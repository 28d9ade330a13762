"""Small widget helpers: Streamlit's own texts in the user's language where Streamlit allows it.

Streamlit draws the file uploader's texts ("Drag and drop files here", "Upload", "… per file")
in English whatever the page's language; for Chinese pages a static style sheet replaces them
with ours, which also state the limits lib enforces.
"""

from __future__ import annotations

import streamlit as st

from lib.ui.page import Page

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
