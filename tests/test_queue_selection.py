"""Ticks in the queue follow case ids, never row positions: a tick is read against the rows it
was made on, and a table whose rows changed under ticks, or after a batch, starts unticked; a
click is read against the rows it was counted on. (The browser
test in test_browser_batch.py drives the same in Chromium.)"""

from __future__ import annotations

import pytest
import streamlit as st

from lib.ui import queue_state
from lib.ui.queue_state import ids_at, table_key


def test_ticked_positions_become_the_ids_of_the_rows_drawn():
    drawn = [31, 32, 33, 34, 35]
    assert ids_at([2, 3], drawn) == [33, 34]
    assert ids_at([3, 2, 3], drawn) == [34, 33]  # each once, as ticked
    assert ids_at([5, -1, True, "1", None], drawn) == []  # never a row that was not drawn
    assert ids_at([0], []) == []


def test_the_table_is_a_new_widget_when_its_rows_change_or_a_batch_ran():
    before = [31, 32, 33, 34, 35]
    # Rows 3 and 4 accepted: they move down, two other cases take their places.
    after = [31, 32, 35, 36, 33, 34]
    assert table_key(before, 0) == table_key(list(before), 0)  # same rows: the ticks stay
    assert table_key(before, 0) != table_key(after, 0)
    assert table_key(before, 0) != table_key([31, 32, 34, 33, 35], 0)  # same cases, new order
    assert table_key(before, 0) != table_key(before, 1)  # a batch unticks even unchanged rows


def test_the_table_is_a_new_widget_when_the_view_changes_even_with_the_same_rows():
    """``table_key`` (kept for other callers; the queue page keys its grid with ``table_for``)
    gives each view a key of its own."""
    rows = [31, 32, 33]
    view = ("triage", "filters", "deadline", 0)
    assert table_key(rows, 0, view) == table_key(list(rows), 0, tuple(view))  # same view: kept
    assert table_key(rows, 0, view) != table_key(rows, 0, ("triage", "filters", "oldest", 0))
    assert table_key(rows, 0, view) != table_key(rows, 0, ("triage", "other", "deadline", 0))
    assert table_key(rows, 0, view) != table_key(rows, 0, ("calls", "filters", "deadline", 0))


@pytest.fixture
def session():
    """Streamlit's session state, bare (no script run), emptied of the queue's keys."""
    for name in [k for k in st.session_state if str(k).startswith("queue_")]:
        del st.session_state[name]
    return st.session_state


def _click(key: str, row: int, column: str) -> None:
    st.session_state[key] = {"selection": {"rows": [], "columns": [], "cells": [[row, column]]}}


def test_a_click_opens_the_case_in_the_rows_it_was_counted_on(session):
    """The clerk clicks row 2 of the list she sees as the search she typed is applied (it
    commits as the box loses focus to the click): the table is drawn again with other rows
    under the same key, and the click, counted on her rows, still opens the case of row 2."""
    key, seen = queue_state.table_for([31, 32, 33])
    key_after, found = queue_state.table_for([33])
    assert key_after == key and found != seen  # the same grid, rows marked anew
    _click(key, 1, "编号" + seen)
    queue_state.picked(key)
    assert queue_state.opened() == 32
    assert queue_state.opened() == 32  # a run overtaken before the switch: asked again
    del session[key]  # the case page ran: Streamlit dropped the table's state
    assert queue_state.opened() is None and queue_state.OPENED not in session
    # Counted on the new rows, the same position is the case found.
    _click(key, 0, "编号" + found)
    queue_state.picked(key)
    assert queue_state.opened() == 33
    # A click outside the rows, on rows long gone, or without a mark opens nothing.
    del session[queue_state.OPENED]
    for row, column in ((4, "编号" + found), (0, "编号" + queue_state.rows_mark([99])), (0, "编号")):
        _click(key, row, column)
        queue_state.picked(key)
        assert queue_state.OPENED not in session
    for i in range(queue_state.TABLES_KEPT + 2):
        queue_state.remember(queue_state.rows_mark([i]), [i])
    assert len(session[queue_state.TABLES]) == queue_state.TABLES_KEPT


def test_the_grid_starts_unticked_when_its_rows_change_under_ticks_or_a_batch_ran(session):
    key, _ = queue_state.table_for([31, 32, 33, 34, 35])
    session[key] = {"selection": {"rows": [2, 3], "columns": [], "cells": []}}
    assert queue_state.table_for([31, 32, 33, 34, 35])[0] == key  # same rows: ticks stay
    # Rows 3 and 4 moved down (accepted elsewhere), two other cases took their places.
    moved, _ = queue_state.table_for([31, 32, 35, 36, 33, 34])
    assert moved != key
    assert queue_state.table_for([31, 32, 35])[0] == moved  # nothing ticked there: kept
    queue_state.untick()
    assert queue_state.table_for([31, 32, 35])[0] != moved  # a batch ran


def test_the_rows_mark_is_invisible_and_differs_with_the_rows():
    mark = queue_state.rows_mark([31, 32])
    assert mark and set(mark) <= set(queue_state.MARK_ALPHABET)
    assert mark != queue_state.rows_mark([32, 31]) != queue_state.rows_mark([31, 32, 33])
    assert queue_state.mark_of("时限" + mark) == mark and queue_state.mark_of("时限") == ""
