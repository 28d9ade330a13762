"""Ticks in the queue follow case ids, never row positions: a tick is read against the rows it
was made on, and a table whose rows changed, or after a batch, starts unticked. (The browser
test in test_browser_batch.py drives the same in Chromium.)"""

from __future__ import annotations

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
    """A sort or filter that draws the same rows in the same order still draws a new table: a
    table kept under its key across another widget's run ignored the first click on it."""
    rows = [31, 32, 33]
    view = ("triage", "filters", "deadline", 0)
    assert table_key(rows, 0, view) == table_key(list(rows), 0, tuple(view))  # same view: kept
    assert table_key(rows, 0, view) != table_key(rows, 0, ("triage", "filters", "oldest", 0))
    assert table_key(rows, 0, view) != table_key(rows, 0, ("triage", "other", "deadline", 0))
    assert table_key(rows, 0, view) != table_key(rows, 0, ("calls", "filters", "deadline", 0))


def test_a_click_opens_the_case_drawn_under_it_even_after_another_table_was_drawn():
    """The clerk clicks row 2 of the table she sees while the search she typed is being applied
    (it commits as the box loses focus to the click): the page's next run draws another table
    under another key, and the click still opens the case that was in row 2 of hers."""
    import streamlit as st

    from lib.ui import queue_state

    for name in (queue_state.TABLES, queue_state.OPENED):
        st.session_state.pop(name, None)
    seen = queue_state.table_key([31, 32, 33], 0, view=("triage", "", "deadline", 0))
    queue_state.remember(seen, [31, 32, 33])
    filtered = queue_state.table_key([33], 0, view=("triage", "33", "deadline", 0))
    queue_state.remember(filtered, [33])
    st.session_state[seen] = {"selection": {"rows": [], "columns": [], "cells": [[1, "编号"]]}}
    queue_state.picked(seen)
    assert queue_state.opened() == 32
    assert queue_state.opened() == 32  # a run overtaken before the switch: asked again
    del st.session_state[seen]  # the case page ran: Streamlit dropped the table's state
    assert queue_state.opened() is None and queue_state.OPENED not in st.session_state
    # A click outside the rows drawn, or on a table long gone, opens nothing.
    st.session_state[filtered] = {"selection": {"rows": [], "columns": [], "cells": [[4, "编号"]]}}
    queue_state.picked(filtered)
    queue_state.picked("queue_table_0_gone")
    assert queue_state.opened() is None
    for i in range(queue_state.TABLES_KEPT + 2):
        queue_state.remember(f"k{i}", [i])
    assert len(st.session_state[queue_state.TABLES]) == queue_state.TABLES_KEPT
