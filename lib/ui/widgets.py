"""Small widget helpers: Streamlit's own texts in the user's language where Streamlit allows it.

Streamlit draws the file uploader's texts ("Drag and drop files here", "Upload", "… per file")
in English whatever the page's language; for Chinese pages a static style sheet replaces them
with ours, which also state the limits lib enforces.
"""

from __future__ import annotations

import streamlit as st

from lib.ui.page import Page

_UPLOADER_CSS = """<style>
[data-testid="stFileUploaderDropzone"] [data-testid="stFileUploaderDropzoneInstructions"] {{
  font-size: 0 !important; }}
[data-testid="stFileUploaderDropzone"] [data-testid="stFileUploaderDropzoneInstructions"]::after {{
  content: "{limits}"; font-size: 0.875rem; }}
[data-testid="stFileUploaderDropzone"] > span, [data-testid="stFileUploaderDropzone"] > div > span {{
  font-size: 0 !important; }}
[data-testid="stFileUploaderDropzone"] button p {{ font-size: 0 !important; }}
[data-testid="stFileUploaderDropzone"] button p::after {{ content: "{button}"; font-size: 0.875rem; }}
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
