"""The queue page's state — tab, filters, sort, page — kept in the address and the session.

Streamlit forgets a page's widgets when another page runs, so a clerk coming back from a case
would find the queue reset. Each run writes the state to the query string (the browser's Back
and a copied link return to the same view) and to the session (the menu's plain link returns to
it too); when the widgets are gone, they are put back from the query string if it says
anything, else from the session. Every value is checked against what the user may choose.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

import streamlit as st

from lib.cases.models import CaseState
from lib.cases.queue import SORTS, TEXT_MAX, FilterOptions
from lib.core.inputs import ID_MAX, parse_int
from lib.core.models import Severity

SAVED = "queue_saved"
# widget key → query parameter
PARAMS = {"queue_tab": "tab", "queue_category": "category", "queue_community": "community",
          "queue_state": "state", "queue_severity": "severity", "queue_text": "q",
          "queue_sort": "sort", "queue_columns": "cols"}
PAGE_PARAM = "page"
PAGE_MAX = 99_999
TABLE_GENERATION = "queue_table_generation"  # bumped by each batch: the table starts unticked
TABLES = "queue_tables"  # rows mark → the case ids drawn with it, the last few tables
TABLES_KEPT = 8
EPOCH = "queue_table_epoch"  # bumped when the rows change under ticks: the table starts unticked
LAST_DRAWN = "queue_table_drawn"  # the table's widget key → the case ids last drawn under it
# Zero-width characters: the rows mark appended to each column name (``rows_mark``).
MARK_ALPHABET = "\u200b\u200c\u200d\u2060"
OPENED = "queue_opened"  # the case a click on a cell asked to open
# Columns a clerk may add to the table (``queue.col.*``); the others are always shown.
OPTIONAL_COLUMNS = ("address", "community", "reporter", "call_reason")


def _int_in(allowed: set[int]) -> Callable[[str], int | None]:
    def check(raw: str) -> int | None:
        number = parse_int(raw, low=1, high=ID_MAX)
        return number if number in allowed else None
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
        "queue_columns": lambda raw: [c for c in OPTIONAL_COLUMNS if c in raw.split(",")] or None,
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
    # A page number that is not one (², ①, -3, 10**20) is ignored like any hostile value.
    st.session_state["queue_page"] = (parse_int(source.get(PAGE_PARAM), low=1, high=PAGE_MAX)
                                      or 1) - 1
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
        if isinstance(value, list):  # the columns chosen: one parameter, comma-separated
            value = ",".join(value)
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


def table_key(ids: Sequence[int], generation: int, view: object = None, *,
              prefix: str = "queue_table") -> str:
    """A widget key for a table drawn with these rows (ids in order) for this ``view`` (tab,
    filters, sort, page). The queue page now keys its table with ``table_for``, which changes
    the key only when rows change under ticks; the reward lists key theirs with this.

    Streamlit keeps a table's ticks as row *positions* and sends them back whatever is drawn
    next; clearing the key's session state does not untick the browser's grid. So each list of
    rows gets a key of its own: when the rows change (a case moved on, another clerk's move, a
    new report) or a batch ran (``generation``), the table is a new widget, unticked, and a tick
    can never land on a case nobody chose.

    The view is in the key too, so a new sort or filter draws a new, unticked table. A click
    on a cell does not depend on the key staying the same: ``picked`` reads it against the
    rows of the table that was clicked, whichever table the next run draws."""
    drawn = ",".join(map(str, ids)) + "|" + repr(view)
    digest = hashlib.blake2b(drawn.encode(), digest_size=8).hexdigest()
    return f"{prefix}_{generation}_{digest}"


def generation() -> int:
    return st.session_state.get(TABLE_GENERATION, 0)


def untick() -> None:
    """After a batch: the next run draws the table under a new key, with nothing ticked."""
    st.session_state[TABLE_GENERATION] = generation() + 1


def ids_at(positions: Iterable[object], ids: Sequence[int]) -> list[int]:
    """The case ids at the ticked ``positions`` of the table drawn with ``ids``: each once, in
    the order ticked, positions outside the table dropped."""
    return [ids[p] for p in dict.fromkeys(positions)
            if isinstance(p, int) and not isinstance(p, bool) and 0 <= p < len(ids)]


def last_view(tabs: list[str], options: FilterOptions) -> dict[str, object] | None:
    """The tab, filters and sort the clerk last drew the queue with (widget key → value), as
    ``save`` kept them and checked as ``restore`` checks them, the defaults filled in; None
    before the queue was drawn in this session. The case page reads the queue again with them
    after a move, so that its position and next case are fresh."""
    saved = st.session_state.get(SAVED)
    if saved is None:
        return None
    value = {key: check(str(saved[PARAMS[key]])) if PARAMS[key] in saved else None
             for key, check in _validators(tabs, options).items()}
    value["queue_tab"] = value["queue_tab"] or tabs[0]
    value["queue_sort"] = value["queue_sort"] or "deadline"
    value["queue_text"] = value["queue_text"] or ""
    return value


def rows_mark(ids: Sequence[int]) -> str:
    """An invisible mark of the rows drawn (their ids, in order), in zero-width characters.

    It is appended to every column name of the table: a clicked cell comes back as (row
    position, column name), so the click itself says which rows it was counted on."""
    digest = hashlib.blake2b(",".join(map(str, ids)).encode(), digest_size=4).digest()
    return "".join(MARK_ALPHABET[(byte >> shift) & 3] for byte in digest for shift in (6, 4, 2, 0))


def mark_of(column: str) -> str:
    """The rows mark at the end of a column name ("" if none)."""
    stripped = column.rstrip(MARK_ALPHABET)
    return column[len(stripped):]


def table_for(ids: Sequence[int]) -> tuple[str, str]:
    """(widget key, rows mark) of the table drawn now with ``ids``; remembers the rows.

    The key stays the same while the rows change (a sort, a filter, a new report), so the
    browser keeps the same grid and a click pressed on it as the rows are drawn anew is not
    dropped (a grid drawn under a new key between the press and the release of a click dropped
    it). Ticks, which the grid keeps as row positions, must not move onto other cases: when
    the rows change while some are ticked, or a batch ran (``generation``), the key changes
    and the table starts unticked."""
    epoch = st.session_state.get(EPOCH, 0)
    key = f"queue_table_{generation()}_{epoch}"
    state = st.session_state.get(key) or {}
    ticked = (state.get("selection") or {}).get("rows")
    drawn = st.session_state.setdefault(LAST_DRAWN, {})
    if ticked and drawn.get(key) != list(ids):
        st.session_state[EPOCH] = epoch + 1
        key = f"queue_table_{generation()}_{epoch + 1}"
    drawn.clear()
    drawn[key] = list(ids)
    mark = rows_mark(ids)
    remember(mark, ids)
    return key, mark


def remember(mark: str, ids: Sequence[int]) -> None:
    """Keep the case ids drawn with the rows mark ``mark`` (see ``picked``)."""
    tables = st.session_state.setdefault(TABLES, {})
    tables.pop(mark, None)
    tables[mark] = list(ids)
    while len(tables) > TABLES_KEPT:
        tables.pop(next(iter(tables)))


def picked(key: str) -> None:
    """The table's ``on_select`` callback: a click on a cell asks to open the case that was in
    that row of the rows the click was counted on.

    The click used to be read in the page's next run, against the rows and under the key of
    that run. When the clerk clicked while another widget's change was still being drawn (the
    sort, a filter, the search box that commits as it loses focus to the click), or the rows
    changed meanwhile (a report arrived, the tick marked a case), the next run drew the table
    under a new key, so the click belonged to a table no longer drawn and was lost. A callback
    runs before that run, and the clicked column's name carries the mark of the rows the
    position counts in (``rows_mark``)."""
    cells = _cells(key)
    if not cells or not cells[0]:
        return
    row, column = cells[0][0], str(cells[0][1]) if len(cells[0]) > 1 else ""
    drawn = st.session_state.get(TABLES, {}).get(mark_of(column), [])
    clicked = ids_at([row], drawn)
    if clicked:
        st.session_state[OPENED] = (clicked[0], key)


def _cells(key: str) -> list:
    state = st.session_state.get(key) or {}
    return (state.get("selection") or {}).get("cells") or []


def opened() -> int | None:
    """The case a click asked to open, for as long as the click stands.

    Not taken once: a run that switches to the case page can be overtaken by the browser's next
    request (the search box committing as it loses focus to the same click), and the queue runs
    again instead. The click stands while the clicked table's widget still holds it; once the
    case page has run, Streamlit has dropped that widget's state and the click is forgotten."""
    held = st.session_state.get(OPENED)
    if held is None:
        return None
    case_id, key = held
    if _cells(key):
        return case_id
    del st.session_state[OPENED]
    return None
