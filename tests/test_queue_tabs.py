"""The queue's tabs: each tab's set is defined once, its count is its list's total (with the
filters, at one moment, in one snapshot), the overdue tab counts what the rows call 超期, and a
community's accepted cases leave 待研判 for a tab of their own."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import event, update

from lib.cases import batch, queue
from lib.cases.models import Case
from lib.cases.queue import Filters
from lib.core.db import write_session
from lib.core.i18n import t
from lib.ui import queue_state
from tests.factories import actor, category_id, move, new_case, open_page


def _view(engine, *args, **kwargs) -> queue.View:
    return queue.view(*args, engine=engine, **kwargs)


def _past_sign_deadline(engine, case_id: int) -> None:
    """The case's sign-for deadline passed an hour ago, and the tick has not run since."""
    with write_session(engine) as s:
        s.exec(update(Case).where(Case.id == case_id).values(
            sign_due_at=datetime.now(timezone.utc) - timedelta(hours=1), overdue=False))


def test_an_accepted_case_leaves_triage_for_the_decide_tab(db):
    """A clerk accepts five of her reports: 待研判 falls by five, 已受理待决定 rises by five; a case
    she then takes on herself goes on to 自办中."""
    cases = [new_case(db, address=f"分页路{i}号") for i in range(6)]
    clerk = actor(db, "community01")
    before = _view(db, clerk, "triage").counts
    for case in cases[:5]:
        move(db, "community01", case.id, "accept")
    after = _view(db, clerk, "decide")
    assert after.counts["triage"] == before["triage"] - 5
    assert after.counts["decide"] == before["decide"] + 5
    assert {c.id for c in cases[:5]} <= set(after.walk)
    assert not {c.id for c in cases[:5]} & set(_view(db, clerk, "triage").walk)
    move(db, "community01", cases[0].id, "take")
    assert cases[0].id in _view(db, clerk, "handling").walk
    assert cases[0].id not in _view(db, clerk, "decide").walk
    # A street has no such split: a call-up arrives accepted, in its calls from below.
    assert queue.tabs_for(actor(db, "street01"))[0] == "calls"
    assert "decide" not in queue.tabs_for(actor(db, "street01"))


def test_the_overdue_tab_counts_what_the_rows_call_overdue_before_the_tick(db):
    """On a first load the tick has not marked a late report yet: the overdue tab still counts
    and lists it, because its row already says 超期."""
    late = new_case(db, address="超期路1号")
    on_time = new_case(db, address="超期路2号")
    _past_sign_deadline(db, late.id)
    clerk = actor(db, "community01")
    now = datetime.now(timezone.utc)
    overdue = _view(db, clerk, "overdue", now=now)
    assert late.id in overdue.walk and on_time.id not in overdue.walk
    assert overdue.counts["overdue"] == len(overdue.walk)
    # Every row of every tab that reads 超期 is in the overdue tab, and only those.
    said_overdue = set()
    for tab in queue.tabs_for(clerk):
        for row in _view(db, clerk, tab, now=now).rows:
            kind = row.time_left(now)
            if kind and kind[0].startswith("overdue"):
                said_overdue.add(row.id)
    assert said_overdue == set(overdue.walk)


def test_a_tabs_count_is_its_lists_total_with_the_filters(db):
    fire = [new_case(db, address=f"过滤路{i}号") for i in range(3)]
    gas = new_case(db, category="gas", address="过滤路9号")
    move(db, "community01", fire[0].id, "accept")
    clerk = actor(db, "community01")
    only_gas = Filters(category_id=category_id(db, "gas"))
    for filters in (Filters(), only_gas, Filters(text="过滤路")):
        for tab in queue.tabs_for(clerk):
            shown = _view(db, clerk, tab, filters)
            assert shown.counts[tab] == shown.total == len(shown.walk), (tab, filters)
    triage = _view(db, clerk, "triage", only_gas)
    assert triage.counts["triage"] == 1 and [r.id for r in triage.rows] == [gas.id]
    counts = _view(db, clerk, "decide", Filters(text="过滤路")).counts
    assert counts["triage"] == 3 and counts["decide"] == 1


def test_the_counts_and_the_list_are_one_picture_while_a_report_arrives(db):
    """A report arrives between the counting and the listing: the tab's count and its list
    still agree (the tab read (1) while its list said 没有符合条件的案件)."""
    clerk = actor(db, "community01")
    seen = _view(db, clerk, "triage")
    arrived: list[int] = []
    started: list[bool] = []

    def report() -> None:
        arrived.append(new_case(db, address="快照路1号").id)

    def in_between(conn, cursor, statement, *_args) -> None:  # noqa: ANN001
        if not started and "count(" in statement.lower():
            started.append(True)  # another clerk's resident, on another connection
            other = threading.Thread(target=report)
            other.start()
            other.join()

    event.listen(db, "after_cursor_execute", in_between)
    try:
        shown = _view(db, clerk, "triage")
    finally:
        event.remove(db, "after_cursor_execute", in_between)
    assert arrived  # the report did arrive during the read
    assert shown.counts["triage"] == seen.counts["triage"] == len(shown.walk)
    assert arrived[0] not in shown.walk
    assert _view(db, clerk, "triage").counts["triage"] == seen.counts["triage"] + 1


def test_the_batch_names_each_ticked_case_a_move_leaves_out_and_why(sqlite_db):
    fresh = new_case(sqlite_db, address="理由路1号")
    accepted = new_case(sqlite_db, address="理由路2号")
    move(sqlite_db, "community01", accepted.id, "accept")
    neighbours = new_case(sqlite_db, community="510104001002", address="理由路3号")
    offer = batch.offer(actor(sqlite_db, "community01"), [fresh.id, accepted.id, neighbours.id])
    assert offer.eligible["accept"] == [fresh.id]
    assert offer.left_out["accept"] == {accepted.id: batch.WHY_STATE,
                                        neighbours.id: batch.WHY_PERMISSION}
    # A community does not dispatch (it handles or calls up): not its move, whatever the state.
    assert offer.left_out["dispatch"][accepted.id] == batch.WHY_PERMISSION
    assert offer.left_out["close"][fresh.id] == batch.WHY_STATE


def test_every_reason_a_batch_gives_has_words_in_both_languages():
    """The page names each left-out case with one of these (tests/test_browser_queue.py shows
    one in the browser)."""
    for lang in ("zh", "en"):
        for key in (batch.WHY_STATE, batch.WHY_PERMISSION, batch.WHY_NO_DEPARTMENT,
                    "queue.batch.why.stale", "queue.batch.left_out", "queue.tab.decide"):
            assert t(key, lang, state="x", n=1, move="y", cases="z") != key


def test_the_page_draws_the_tabs_counts_with_the_filters_and_the_needed_columns(sqlite_db):
    gas = new_case(sqlite_db, category="gas", address="列路1号")
    new_case(sqlite_db, address="列路2号")
    at = open_page("community01", "pages/queue.py", category=str(category_id(sqlite_db, "gas")))
    assert not at.exception
    tabs = at.get("button_group")[0].proto.options
    labels = [o.content for o in tabs]
    assert labels[0] == "待研判 (1)" and labels[1].startswith("已受理待决定")
    frame = at.dataframe[0].value.data if hasattr(at.dataframe[0].value, "data") \
        else at.dataframe[0].value
    frame.columns = [c.rstrip(queue_state.MARK_ALPHABET) for c in frame.columns]
    assert list(frame.columns) == ["时限", "编号", "状态", "紧急程度", "类别", "已等待", "催办", "摘要"]
    assert list(frame["编号"]) == [gas.code]
    # The clerk adds the reporter and the address; the choice lives in the address.
    at.multiselect(key="queue_columns").set_value(["address", "reporter"]).run()
    assert not at.exception
    frame = at.dataframe[0].value.data if hasattr(at.dataframe[0].value, "data") \
        else at.dataframe[0].value
    frame.columns = [c.rstrip(queue_state.MARK_ALPHABET) for c in frame.columns]
    assert list(frame.columns)[-2:] == ["地址", "上报人"]
    cols = at.query_params["cols"]
    assert (cols if isinstance(cols, str) else cols[0]) == "address,reporter"
    again = open_page("community01", "pages/queue.py", cols="reporter,<b>,address")
    assert again.session_state["queue_columns"] == ["address", "reporter"]
