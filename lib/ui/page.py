"""The one call at the top of every page: ``page = setup_page("key")``.

It sets the page config, picks the language, restores the login from the cookie, checks that
the session still holds, draws our role-based sidebar menu and stops with a clear message when
the user may not see the page. lib checks permissions again on every call; this only keeps
people away from pages that would refuse them anyway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from lib.cases import queue
from lib.core import config
from lib.core.config import ConfigError
from lib.core.errors import DomainError
from lib.core.i18n import LANGUAGES, name, t
from lib.org.units import Actor, unit_of
from lib.rewards import approval
from lib.ui import login
from lib.ui.menu import PAGE_BY_KEY, PAGES, allowed, language_query, return_query
from lib.ui.notices_panel import unread_panel
from lib.ui.text import md_escape

LANGUAGE_LABELS = {"zh": "中文", "en": "English"}
FLASH_SECONDS = 4.0
# A tile whose whole face is a link: its page link's ::after covers the bordered container
# (the "stretched link" pattern), so a tap anywhere on the figure opens the page. Our own CSS,
# no user text.
TILE_CSS = """<style>
[class*="st-key-link_tile_"] { position: relative; }
[class*="st-key-link_tile_"] [data-testid="stElementContainer"]:has([data-testid="stPageLink"]) {
  position: static;
}
[class*="st-key-link_tile_"] [data-testid="stPageLink"] a::after {
  content: ""; position: absolute; inset: 0; z-index: 1;
}
[class*="st-key-link_tile_"]:hover { background: rgba(151, 166, 195, 0.12); }
</style>"""

# Every page (our own CSS, no user text):
# - Streamlit writes "Press Enter to submit form" / "Press Enter to apply" and a "3/40" counter
#   under a focused text box, in English whatever the page's language; the box's label and its
#   submit button say what to do, so the line is hidden.
# - An empty date box shows its format as "yyyy-mm-dd", in English: a Chinese page shows the
#   empty parts as 年-月-日 (``_DATE_CSS``, our catalog's words).
# - On a phone (Streamlit stacks columns one per row below 640 px) a row of figure cards keeps
#   two cards a row: fourteen cards one per row were 4,900 px tall.
GLOBAL_CSS = """<style>
[data-testid="InputInstructions"] { display: none !important; }
@media (max-width: 640px) {
  [data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] > [data-testid="stVerticalBlock"]
      > [data-testid="stElementContainer"] > [data-testid="stMetric"]) > [data-testid="stColumn"] {
    flex: 0 0 calc(50% - 0.5rem) !important; min-width: calc(50% - 0.5rem) !important;
    max-width: calc(50% - 0.5rem) !important;
  }
}
</style>"""


@dataclass(frozen=True)
class Tile:
    """A figure for ``Page.tiles``; ``target`` (a page key) and ``params`` make it a link."""

    label: str
    value: str
    target: str | None = None
    params: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Page:
    key: str
    lang: str
    actor: Actor | None

    def t(self, key: str, **params: object) -> str:
        return t(key, self.lang, **params)

    def name(self, row: object) -> str:
        """The row's ``name_zh`` or ``name_en``, by the page's language."""
        return name(row, self.lang)

    def error_text(self, err: DomainError) -> str:
        """A lib error in the user's language: field keys become the fields' names, every other
        value is escaped (it may be user text, and alerts render Markdown)."""
        params: dict[str, object] = {}
        for key, value in err.params.items():
            if key == "fields":
                params[key] = "、".join(self.t("field." + str(f)) for f in value)  # type: ignore[union-attr]
            elif key == "field":
                params[key] = self.t("field." + str(value))
            else:
                params[key] = md_escape(str(value))
        return self.t(err.key, **params)

    def query(self, params: Mapping[str, str] | None = None) -> dict[str, str]:
        """A link's query: ``params`` and the page's language when it is not the default."""
        return {**language_query(self.lang), **(params or {})}

    def link(self, key: str, *, label: str | None = None, icon: str | None = None,
             params: Mapping[str, str] | None = None, where: DeltaGenerator | None = None,
             width: int | Literal["content", "stretch"] = "content") -> None:
        """A link to our page ``key`` that keeps the language (and carries ``params``)."""
        spec = PAGE_BY_KEY[key]
        (where or st).page_link(spec.path, label=label or self.t("page." + key),
                                icon=icon or spec.icon, query_params=self.query(params) or None,
                                width=width)

    def tiles(self, tiles: Sequence[Tile], per_row: int = 4) -> None:
        """Figures on bordered tiles, ``per_row`` a row; a tile with a target page is a link to
        it, all of its face (a tap on the figure opens the page)."""
        if any(tile.target for tile in tiles):
            st.html(TILE_CSS)
        columns = st.columns(min(per_row, len(tiles)))
        for index, tile in enumerate(tiles):
            column = columns[index % len(columns)]
            if tile.target is None:
                column.metric(tile.label, tile.value, border=True)
                continue
            with column.container(border=True, key=f"link_tile_{index}"):
                st.metric(tile.label, tile.value)
                self.link(tile.target, params=tile.params,
                          label=self.t("home.open_page", page=self.t("page." + tile.target)))

    def error(self, err: DomainError) -> None:
        st.error(self.error_text(err))

    def flash(self, key: str, *, error: bool = False, **params: object) -> None:
        """A message for the next runs of this page (after ``st.rerun``): success, or an error."""
        st.session_state[f"{self.key}_flash"] = (key, {**params, "_error": error}, None)

    def show_flash(self) -> None:
        """Show this page's success message. It stays for a few seconds of runs, not one: the
        login library's cookie component reruns the page just after it is drawn, and a
        message shown once would vanish before anyone read it."""
        held = st.session_state.get(f"{self.key}_flash")
        if held is None:
            return
        key, params, first_shown = held
        now = time.monotonic()
        if first_shown is None:
            st.session_state[f"{self.key}_flash"] = (key, params, now)
        elif now - first_shown > FLASH_SECONDS:
            del st.session_state[f"{self.key}_flash"]
            return
        error = params.get("_error", False)
        text = self.t(key, **{k: v for k, v in params.items() if k != "_error"})
        (st.error if error else st.success)(text)

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Around a page's body: an unexpected error shows a friendly message in the user's
        language; the traceback goes to the server log only. (Streamlit's stop, rerun and page
        switch are not ``Exception``s and pass through.)"""
        try:
            yield
        except DomainError as err:
            self.error(err)
        except Exception:
            logging.getLogger("pages." + self.key).exception("page %s failed", self.key)
            st.error(self.t("error.unexpected"))


def write_query(names: Iterable[str], params: Mapping[str, str]) -> None:
    """Make the address hold ``params`` for the parameters ``names`` (a filter's set): each set
    one written where it differs, each empty one removed; other parameters stay."""
    for param in names:
        if params.get(param):
            if st.query_params.get(param) != params[param]:
                st.query_params[param] = params[param]
        elif param in st.query_params:
            del st.query_params[param]


def current_language() -> str:
    """The language of this run: the URL's ``lang`` (a link, a reload, a bookmark), else this
    session's choice, else the default. A language other than the default is written back to the
    URL on every page, so that a reload or a copied link keeps it even after a page switch that
    did not carry it; the other query parameters stay as they are."""
    from_url = st.query_params.get("lang")
    if from_url in LANGUAGES:
        st.session_state["lang"] = from_url
    elif st.session_state.get("lang") not in LANGUAGES:
        st.session_state["lang"] = config.default_language()
    lang = st.session_state["lang"]
    if from_url != lang and language_query(lang):
        st.query_params["lang"] = lang
    return lang


def _choose_language() -> None:
    """The sidebar's choice, applied before the run that follows it: to the session and the URL."""
    lang = st.session_state["sidebar_lang"]
    st.session_state["lang"] = lang
    if language_query(lang):
        st.query_params["lang"] = lang
    else:
        st.query_params.pop("lang", None)


# The empty parts of a date box (Streamlit 1.67 draws each as a span marked data-placeholder).
_DATE_CSS = """<style>
[data-testid="stDateInputField"] [data-placeholder="true"] {{ font-size: 0 !important; }}
[data-testid="stDateInputField"] [data-placeholder="true"][data-type="year"]::after {{
  content: "{year}"; font-size: 1rem; }}
[data-testid="stDateInputField"] [data-placeholder="true"][data-type="month"]::after {{
  content: "{month}"; font-size: 1rem; }}
[data-testid="stDateInputField"] [data-placeholder="true"][data-type="day"]::after {{
  content: "{day}"; font-size: 1rem; }}
</style>"""


def _date_css(lang: str) -> str:
    """The empty date box in the page's language (English keeps Streamlit's yyyy-mm-dd)."""
    if lang == "en":
        return ""
    words = {part: t(f"date.empty.{part}", lang).replace('"', "").replace("\\", "")
             for part in ("year", "month", "day")}
    return _DATE_CSS.format(**words)


def setup_page(key: str) -> Page:
    spec = PAGE_BY_KEY[key]
    lang = current_language()
    st.set_page_config(page_title=f"{t('page.' + key, lang)} · {t('app.title', lang)}",
                       page_icon="🛡️", layout="wide")
    st.html(GLOBAL_CSS + _date_css(lang))
    try:
        actor = login.current_actor()
    except ConfigError as err:
        st.error(t("error.config", lang, detail=str(err)))
        st.stop()
    except Exception:  # the database is down, say: a message, not a traceback
        logging.getLogger("pages." + key).exception("login restore failed")
        st.error(t("error.unexpected", lang))
        st.stop()
    page = Page(key=key, lang=lang, actor=actor)
    with page.guard():
        _sidebar(page)
    if not allowed(spec, actor.roles if actor else None):
        if actor is None:
            st.warning(page.t("guard.login_required"))
            # Back to this page (and case) after the login: only our page keys and checked
            # parameters travel (lib/ui/menu.py).
            page.link("home", label=page.t("guard.go_login"), icon=":material/login:",
                      params=return_query(key, st.query_params))
        else:
            st.error(page.t("guard.forbidden"))
        st.stop()
    return page


def _sidebar(page: Page) -> None:
    with st.sidebar:
        st.markdown(f"### {page.t('app.title')}")
        # The widget shows the page's language, whatever it held on the page before (the URL
        # may have changed it); a choice is applied by the callback, before the next run.
        st.session_state["sidebar_lang"] = page.lang
        st.selectbox(page.t("sidebar.language"), LANGUAGES,
                     format_func=lambda code: LANGUAGE_LABELS[code], key="sidebar_lang",
                     on_change=_choose_language)
        if page.actor is None:
            for spec in PAGES:
                if spec.public:
                    page.link(spec.key)
            return
        unit = unit_of(page.actor)
        waiting = queue.menu_count(page.actor)
        st.caption(page.t("sidebar.signed_in_as", name=md_escape(page.actor.display_name),
                          unit=md_escape(page.name(unit))))
        for spec in PAGES:
            if (spec.public and spec.key != "home") or not spec.in_menu:
                continue
            if allowed(spec, page.actor.roles):
                label = page.t("page." + spec.key)
                if spec.key == "queue":
                    label = page.t("sidebar.queue_count", label=label, count=waiting)
                if spec.key == "rewards":
                    label = page.t("sidebar.queue_count", label=label,
                                   count=approval.waiting_count(page.actor))
                page.link(spec.key, label=label)
        unread_panel(page)
        if st.button(page.t("sidebar.logout"), key="sidebar_logout", icon=":material/logout:"):
            login.logout(page.actor)
            st.switch_page("app.py", query_params=page.query() or None)

