"""A clerk's day in the queue: the columns a clerk needs, batch moves (one checked move and one
event per case), the queue's state surviving a visit to a case, and 上一件 / 下一件."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from lib.cases import batch, queue
from lib.cases.detail import case_detail
from lib.cases.models import Case, CaseEvent
from lib.core.db import read_session, write_session
from lib.ui import responsive
from tests.factories import (
    POLICE,
    actor,
    category_id,
    get,
    move,
    new_case,
    open_page,
    unit_id,
)

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)


def _events(engine, case_id: int) -> list[str]:
    with read_session(engine) as s:
        return [e.action for e in s.exec(select(CaseEvent).where(CaseEvent.case_id == case_id)
                                         .order_by(CaseEvent.seq)).all()]


def _row(engine, username: str, tab: str, case_id: int) -> queue.QueueRow:
    with read_session(engine) as s:
        rows, _ = queue.queue_rows(s, actor(engine, username), tab, page_size=500)
    return next(r for r in rows if r.id == case_id)


def test_a_row_carries_excerpt_age_masked_reporter_and_time_left(sqlite_db):
    case = new_case(sqlite_db, description="楼道里堆满纸箱和旧家具，消防通道完全堵死，晚上还有人吸烟，" * 2,
                    phone="13912345678", name="李四")
    row = _row(sqlite_db, "community01", "triage", case.id)
    assert row.excerpt.startswith("楼道里堆满纸箱") and row.excerpt.endswith("…")
    assert len(row.excerpt) == queue.EXCERPT + 1
    assert row.reporter == "李* 139****5678"
    later = row.reported_at + timedelta(days=3, hours=2)
    assert row.age(later) == ("age_days", 3)
    assert row.age(row.reported_at + timedelta(hours=5)) == ("age_hours", 5)
    due = row.deadline_at()
    assert due is not None
    assert row.time_left(due - timedelta(hours=5, minutes=10)) == ("left_hours", 5)
    assert row.time_left(due + timedelta(days=3, hours=1)) == ("overdue_days", 3)
    assert row.status(due + timedelta(minutes=1)) == "overdue"


def test_a_restricted_case_shows_no_excerpt_reporter_or_call_reason_in_the_queue(sqlite_db):
    case = new_case(sqlite_db, category="vice", description="某楼有人聚众赌博", name="赵六")
    move(sqlite_db, "community01", case.id, "accept")
    move(sqlite_db, "community01", case.id, "call_up", note="涉及赌博窝点，请街道协调")
    row = _row(sqlite_db, "street01", "calls", case.id)
    assert row.excerpt is None and row.address is None and row.reporter is None
    assert row.call_reason is None


def test_the_calls_tab_says_why_the_case_was_called_up_and_how_often_it_was_hurried(sqlite_db):
    case = new_case(sqlite_db)
    move(sqlite_db, "community01", case.id, "accept")
    move(sqlite_db, "community01", case.id, "call_up", note="需要街道协调物业")
    with write_session(sqlite_db) as s:
        s.get(Case, case.id).hurry_count = 2
    row = _row(sqlite_db, "street01", "calls", case.id)
    assert row.call_reason == "需要街道协调物业" and not row.called_by_tick
    assert row.hurry_count == 2


def test_a_case_back_for_the_check_has_a_deadline_status_too(sqlite_db):
    case = new_case(sqlite_db)
    for action, params in (("accept", {}), ("take", {}), ("handle", {"note": "已清理"})):
        move(sqlite_db, "community01", case.id, action, **params)
    row = _row(sqlite_db, "community01", "verify", case.id)
    assert row.check_due is not None and row.check_due > row.reported_at
    assert row.status(row.check_due + timedelta(minutes=1)) == "overdue"
    assert row.status(row.check_due - timedelta(days=10)) == "on_time"
    # Late for the check reads 核查超时, not 超期: the case is not overdue by the rules, and the
    # overdue tab does not list it.
    assert row.time_left(row.check_due + timedelta(hours=3)) == ("check_late_hours", 3)
    assert not row.past_due(row.check_due + timedelta(hours=3))


def test_sorts_and_the_walk_agree_with_the_page(sqlite_db):
    cases = [new_case(sqlite_db, address=f"红星路{100 + i}号") for i in range(4)]
    clerk = actor(sqlite_db, "community01")
    with read_session(sqlite_db) as s:
        for sort in queue.SORTS:
            rows, _ = queue.queue_rows(s, clerk, "triage", sort=sort, page_size=500)
            assert [r.id for r in rows] == queue.walk_ids(s, clerk, "triage", sort=sort)
        newest = queue.walk_ids(s, clerk, "triage", sort="newest")
        oldest = queue.walk_ids(s, clerk, "triage", sort="oldest")
    ours = [c.id for c in cases]
    assert [i for i in newest if i in ours] == ours[::-1]
    assert [i for i in oldest if i in ours] == ours
    assert queue.neighbours(oldest, oldest[1]) == (oldest[0], oldest[2], 2)
    assert queue.neighbours(oldest, oldest[0])[0] is None
    assert queue.neighbours(oldest, -5) == (None, None, None)


def test_batch_accept_makes_one_checked_move_and_one_event_per_case(sqlite_db):
    cases = [new_case(sqlite_db, address=f"红星路{200 + i}号") for i in range(10)]
    clerk = actor(sqlite_db, "community01")
    offer = batch.offer(clerk, [c.id for c in cases])
    assert sorted(offer.eligible["accept"]) == sorted(c.id for c in cases)
    assert offer.eligible["dispatch"] == [] and offer.eligible["close"] == []
    # Someone else moves one of them first: it alone is refused, as stale.
    move(sqlite_db, "community01", cases[3].id, "reject", note="重复")
    outcome = batch.run(clerk, "accept", {c.id: c.version for c in cases}, note="批量受理")
    assert len(outcome.done) == 9 and list(outcome.refused) == [cases[3].id]
    for c in cases:
        actions = _events(sqlite_db, c.id)
        if c.id == cases[3].id:
            assert actions == ["report", "reject"]
        else:
            assert actions == ["report", "accept"]
            assert get(sqlite_db, c.id).state == "accepted"


def test_batch_refuses_what_the_user_may_not_do(sqlite_db):
    case = new_case(sqlite_db)
    neighbour = actor(sqlite_db, "staff_510104001002")
    assert batch.offer(neighbour, [case.id]).eligible["accept"] == []
    outcome = batch.run(neighbour, "accept", {case.id: case.version})
    assert outcome.done == [] and case.id in outcome.refused
    assert _events(sqlite_db, case.id) == ["report"]


def test_batch_dispatch_goes_to_the_categorys_default_department(sqlite_db):
    case = new_case(sqlite_db, category="residential_security")
    move(sqlite_db, "community01", case.id, "accept")
    called = move(sqlite_db, "community01", case.id, "call_up", note="请街道派单")
    street = actor(sqlite_db, "street01")
    offer = batch.offer(street, [case.id])
    assert offer.eligible["dispatch"] == [case.id]
    assert offer.default_unit[case.id] == unit_id(sqlite_db, POLICE)
    outcome = batch.run(street, "dispatch", {case.id: called.version})
    assert outcome.done == [case.id]
    after = get(sqlite_db, case.id)
    assert after.state == "dispatched" and after.handler_id == unit_id(sqlite_db, POLICE)
    assert _events(sqlite_db, case.id)[-1] == "dispatch"


def test_batch_close_takes_only_checked_cases(sqlite_db):
    done = new_case(sqlite_db)
    for action, params in (("accept", {}), ("take", {}), ("handle", {"note": "已清理"}),
                           ("verify", {})):
        done = move(sqlite_db, "community01", done.id, action, **params)
    fresh = new_case(sqlite_db, address="红星路300号")
    clerk = actor(sqlite_db, "community01")
    offer = batch.offer(clerk, [done.id, fresh.id])
    assert offer.eligible["close"] == [done.id]
    outcome = batch.run(clerk, "close", {done.id: done.version, fresh.id: fresh.version})
    assert outcome.done == [done.id] and fresh.id in outcome.refused
    assert get(sqlite_db, done.id).state == "closed" and get(sqlite_db, fresh.id).state == "reported"


def test_triage_sets_the_severity_and_the_timeline_says_so(sqlite_db):
    case = new_case(sqlite_db)
    before = get(sqlite_db, case.id).severity
    after = move(sqlite_db, "community01", case.id, "accept", severity="urgent")
    assert before != "urgent" and after.severity == "urgent"
    at = open_page("community01", "pages/case.py", id=str(case.id))
    assert not at.exception
    timeline = at.dataframe[-1].value.to_string()
    assert "紧急" in timeline


def test_the_queue_keeps_tab_filters_and_sort_after_a_visit_to_a_case(sqlite_db):
    fire = category_id(sqlite_db, "fire")
    case = new_case(sqlite_db)
    at = open_page("community01", "pages/queue.py", tab="triage", category=str(fire),
                   sort="newest")
    assert not at.exception
    assert at.session_state["queue_tab"] == "triage"
    assert at.session_state["queue_category"] == fire
    assert at.session_state["queue_sort"] == "newest"
    assert at.query_params["category"] == [str(fire)] or at.query_params["category"] == str(fire)
    at.selectbox(key="queue_state").set_value("reported").run()
    at.switch_page("pages/case.py")
    at.query_params.clear()
    at.query_params["id"] = str(case.id)
    at.run()
    assert not at.exception
    # Back by the menu's plain link: no query string, the session's saved view returns.
    at.switch_page("pages/queue.py")
    at.query_params.clear()
    at.run()
    assert not at.exception
    assert at.session_state["queue_tab"] == "triage"
    assert at.session_state["queue_category"] == fire
    assert at.session_state["queue_state"] == "reported"
    assert at.session_state["queue_sort"] == "newest"


def test_a_hostile_query_string_is_ignored(sqlite_db):
    at = open_page("community01", "pages/queue.py", tab="<script>", category="1 OR 1=1",
                   state="nope", sort="id;drop", page="-3")
    assert not at.exception
    assert at.session_state["queue_tab"] == "triage"
    assert at.session_state["queue_category"] is None
    assert at.session_state["queue_sort"] == "deadline"
    assert not at.error


def test_the_case_page_walks_the_queue_as_filtered(sqlite_db):
    cases = [new_case(sqlite_db, address=f"红星路{400 + i}号") for i in range(3)]
    at = open_page("community01", "pages/queue.py", sort="oldest")
    assert not at.exception
    walk = at.session_state["queue_walk"]
    ours = [i for i in walk if i in {c.id for c in cases}]
    assert ours == [c.id for c in cases]
    middle = walk.index(cases[1].id)
    at.switch_page("pages/case.py")
    at.query_params.clear()
    at.query_params["id"] = str(cases[1].id)
    at.run()
    assert not at.exception
    links = {link.proto.label: link.proto for link in at.get("page_link")}
    assert links["上一件"].query_string == f"id={walk[middle - 1]}"
    assert links["下一件"].query_string == f"id={walk[middle + 1]}"
    captions = " ".join(c.value for c in at.caption)
    assert f"{middle + 1} / {len(walk)}" in captions


def _place(engine, case_id: int, lat: float, lon: float) -> None:
    with write_session(engine) as s:
        row = s.get(Case, case_id)
        row.latitude, row.longitude = lat, lon


def test_merging_offers_the_same_category_nearest_first_from_a_list(sqlite_db):
    report = new_case(sqlite_db, address="红星路500号")
    near = new_case(sqlite_db, address="红星路502号")  # older than ``far``: distance, not age,
    far = new_case(sqlite_db, address="红星路501号")   # puts it first
    other = new_case(sqlite_db, category="gas", address="红星路503号")
    _place(sqlite_db, report.id, 30.6600, 104.0600)
    _place(sqlite_db, far.id, 30.6700, 104.0600)     # about 1.1 km
    _place(sqlite_db, near.id, 30.6601, 104.0601)    # about 15 m
    _place(sqlite_db, other.id, 30.6600, 104.0600)   # same spot, another category
    detail = case_detail(actor(sqlite_db, "community01"), report.id)
    options = detail.options["merge_into"]
    ours = [o for o in options if o.id in (far.id, near.id, other.id)]
    assert [o.id for o in ours] == [near.id, far.id, other.id]
    assert ours[0].metres < 20 and 1000 < ours[1].metres < 1200 and not ours[2].same_category
    at = open_page("community01", "pages/case.py", id=str(report.id))
    assert not at.exception
    merge = next(s for s in at.selectbox if s.label.startswith("合并到"))
    labels = [str(o) for o in merge.options]  # as drawn
    assert any(near.code in label and "约" in label and "米" in label for label in labels), labels


def test_only_an_expected_move_is_offered_as_the_next_step(sqlite_db):
    fresh = new_case(sqlite_db, address="红星路600号")
    at = open_page("community01", "pages/case.py", id=str(fresh.id))
    assert not at.exception
    assert any(m.value == "**下一步**" for m in at.markdown)
    assert at.button(key="FormSubmitter:case_form_accept-受理").proto.type == "primary"
    done = new_case(sqlite_db, address="红星路601号")
    for action, params in (("accept", {}), ("take", {}), ("handle", {"note": "已清理"}),
                           ("verify", {}), ("close", {})):
        move(sqlite_db, "community01", done.id, action, **params)
    at = open_page("community01", "pages/case.py", id=str(done.id))
    assert not at.exception
    assert not any(m.value == "**下一步**" for m in at.markdown)  # reopening is no next step
    assert at.button(key="FormSubmitter:case_form_reopen-重新办理").proto.type == "secondary"


@pytest.mark.parametrize(("agent", "phone"), [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", True),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36", True),
    ("Mozilla/5.0 (Linux; Android 14; Tab S9) AppleWebKit/537.36 Chrome/126.0 Safari/537.36", False),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36", False),
    ("", False), (None, False)])
def test_a_phone_is_told_by_its_user_agent(agent, phone):
    assert responsive.phone_agent(agent) is phone


def test_a_phone_gets_a_card_per_case_and_a_desktop_the_table(sqlite_db, monkeypatch):
    case = new_case(sqlite_db, address="红星路700号")
    at = open_page("community01", "pages/queue.py")
    assert not at.exception and len(at.dataframe) == 1
    def cards(at):  # a card's link starts with its status light
        return [link.proto for link in at.get("page_link")
                if case.code in link.proto.label and link.proto.label[0] in "🔴🟠🟢⚪"]

    assert cards(at) == []
    monkeypatch.setattr(responsive, "on_phone", lambda: True)
    at = open_page("community01", "pages/queue.py")
    assert not at.exception and len(at.dataframe) == 0
    found = cards(at)
    assert len(found) == 1 and found[0].query_string == f"id={case.id}"


def test_batch_refuses_a_case_changed_since_the_clerk_saw_it(sqlite_db):
    seen = [new_case(sqlite_db, address=f"红星路{800 + i}号") for i in range(2)]
    # Someone files one under another category meanwhile: still to triage, a new version.
    move(sqlite_db, "community01", seen[0].id, "reassign", category_id=category_id(sqlite_db, "gas"),
         note="类别有误")
    outcome = batch.run(actor(sqlite_db, "community01"), "accept", {c.id: c.version for c in seen})
    assert outcome.done == [seen[1].id] and outcome.refused == {seen[0].id: "error.stale"}
    assert _events(sqlite_db, seen[0].id) == ["report", "reassign"]
