"""The first commitment a unit cannot game, when a case was resolved, and the waits for each
tier's first action, as the case machine keeps them — and each case's events derive to exactly
what the machine stored (lib.cases.derive)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlmodel import select

from lib.cases import integrity, tick
from lib.cases.models import Case, CaseWait
from lib.core.clock import as_utc
from lib.core.db import read_session, write_session
from tests.factories import POLICE, get, move, new_case, unit_id

# A Monday, 10:00 China time: deadlines in working days end at the close of a working day.
T0 = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def committed(db, case_id: int) -> datetime | None:
    value = get(db, case_id).committed_due_at
    return as_utc(value) if value is not None else None


def waits(db, case_id: int) -> list[CaseWait]:
    with read_session(db) as s:
        return list(s.exec(select(CaseWait).where(CaseWait.case_id == case_id)
                           .order_by(CaseWait.id)).all())


def events_give_what_is_stored(db, now: datetime) -> None:
    """Every case's stored derived values are what its events give (judged at ``now``)."""
    with read_session(db) as s:
        found = integrity.derived_mismatches(s, now=now)
    assert found.checked > 0
    assert found.counts == {}, found.codes


def accepted(db, now: datetime = T0) -> Case:
    case = new_case(db, now=now)
    return move(db, "community01", case.id, "accept", now=now + timedelta(hours=1))


def at_the_street(db) -> Case:
    """Accepted by the community at +1 h, called up to its street at +2 h."""
    case = accepted(db)
    return move(db, "community01", case.id, "call_up", note="请街道协调", now=at(2))


def dispatched(db) -> tuple[Case, datetime]:
    """At the street, dispatched to the police at +3 h: (case, its first commitment)."""
    case = at_the_street(db)
    case = move(db, "street01", case.id, "dispatch", lead_unit_id=unit_id(db, POLICE), now=at(3))
    return case, as_utc(case.committed_due_at)


# ---------------------------------------------------------------- the first commitment


def test_taking_it_on_sets_the_first_commitment_and_a_call_up_keeps_it(db):
    case = accepted(db)
    assert get(db, case.id).committed_due_at is None
    taken = move(db, "community01", case.id, "take", now=at(2))
    first = as_utc(taken.committed_due_at)
    assert first == as_utc(taken.handle_due_at)
    called = move(db, "community01", case.id, "call_up", note="社区无法解决", now=at(3))
    assert called.handle_due_at is None  # the work was taken back: no deadline runs
    assert committed(db, case.id) == first
    redone = move(db, "street01", case.id, "dispatch", lead_unit_id=unit_id(db, POLICE), now=at(28))
    assert as_utc(redone.handle_due_at) > first  # dispatched a day later
    assert committed(db, case.id) == first
    events_give_what_is_stored(db, at(28))


def test_a_return_and_a_second_dispatch_keep_the_first_commitment(db):
    case, first = dispatched(db)
    returned = move(db, "dept_police", case.id, "return", note="不属于本单位职责", now=at(4))
    assert returned.handle_due_at is None
    assert committed(db, case.id) == first
    again = move(db, "street01", case.id, "dispatch", lead_unit_id=unit_id(db, POLICE), now=at(28))
    assert as_utc(again.handle_due_at) > first
    assert committed(db, case.id) == first
    events_give_what_is_stored(db, at(28))


def test_a_hand_back_keeps_the_first_commitment(db):
    case = at_the_street(db)
    taken = move(db, "street01", case.id, "take", now=at(3))
    first = as_utc(taken.committed_due_at)
    back = move(db, "street01", case.id, "hand_back", note="请社区处理", now=at(4))
    assert back.handle_due_at is None and back.state == "accepted"
    retaken = move(db, "community01", case.id, "take", now=at(28))
    assert as_utc(retaken.handle_due_at) > first
    assert committed(db, case.id) == first
    events_give_what_is_stored(db, at(28))


def test_parking_and_resuming_keep_the_first_commitment(db):
    case = accepted(db)
    first = as_utc(move(db, "community01", case.id, "take", now=at(2)).committed_due_at)
    parked = move(db, "community01", case.id, "park", until=(T0 + timedelta(days=20)).date(),
                  note="等待业主回国", now=at(3))
    assert parked.handle_due_at is None
    assert committed(db, case.id) == first
    move(db, "community01", case.id, "resume", now=at(200))
    retaken = move(db, "community01", case.id, "take", now=at(201))
    assert as_utc(retaken.handle_due_at) > first
    assert committed(db, case.id) == first
    events_give_what_is_stored(db, at(201))


def test_a_reopen_keeps_the_first_commitment_and_clears_the_resolution(db):
    case = accepted(db)
    first = as_utc(move(db, "community01", case.id, "take", now=at(2)).committed_due_at)
    move(db, "community01", case.id, "handle", note="已清理", now=at(3))
    verified = move(db, "community01", case.id, "verify", now=at(4))
    assert as_utc(verified.resolved_at) == at(4)
    reopened = move(db, "community01", case.id, "reopen", note="居民说又堆上了", now=at(28))
    assert reopened.resolved_at is None
    assert as_utc(reopened.handle_due_at) > first
    assert committed(db, case.id) == first
    move(db, "community01", case.id, "handle", note="再次清理", now=at(29))
    move(db, "community01", case.id, "verify", now=at(30))
    closed = move(db, "community01", case.id, "close", now=at(31))
    assert as_utc(closed.resolved_at) == at(30)
    assert committed(db, case.id) == first
    events_give_what_is_stored(db, at(31))


def test_an_extension_granted_after_expiry_leaves_the_first_commitment(db):
    case, first = dispatched(db)
    move(db, "dept_police", case.id, "acknowledge", now=at(3.5))
    late = first + timedelta(hours=1)
    wanted = (first + timedelta(days=5)).date()
    move(db, "dept_police", case.id, "request_extension", until=wanted, note="需采购门禁", now=late)
    granted = move(db, "street01", case.id, "grant_extension", now=late + timedelta(hours=1))
    assert as_utc(granted.handle_due_at) > first
    assert committed(db, case.id) == first
    extended = move(db, "street01", case.id, "extend", until=(first + timedelta(days=9)).date(),
                    note="再延期", now=late + timedelta(hours=2))
    assert as_utc(extended.handle_due_at) > as_utc(granted.handle_due_at)
    assert committed(db, case.id) == first
    events_give_what_is_stored(db, late + timedelta(hours=2))


def test_an_extension_granted_before_expiry_moves_the_first_commitment(db):
    case, first = dispatched(db)
    move(db, "dept_police", case.id, "acknowledge", now=at(3.5))
    move(db, "dept_police", case.id, "request_extension", until=(first + timedelta(days=5)).date(),
         note="需采购门禁", now=at(4))
    granted = move(db, "street01", case.id, "grant_extension", now=at(5))
    moved = as_utc(granted.handle_due_at)
    assert moved > first and committed(db, case.id) == moved
    extended = move(db, "street01", case.id, "extend", until=(moved + timedelta(days=3)).date(),
                    note="材料未到", now=at(6))
    assert committed(db, case.id) == as_utc(extended.handle_due_at) > moved
    events_give_what_is_stored(db, at(6))


# ---------------------------------------------------------------- waits (response)


def test_a_triage_answered_in_time(db):
    case = new_case(db, now=T0)
    (wait,) = waits(db, case.id)
    assert (wait.kind, wait.unit_id, wait.ended_at) == ("triage", case.community_id, None)
    assert as_utc(wait.started_at) == T0 and as_utc(wait.due_at) == as_utc(case.sign_due_at)
    move(db, "community01", case.id, "accept", now=at(1))
    triage, decide = waits(db, case.id)
    assert triage.answered and as_utc(triage.ended_at) == at(1) <= as_utc(triage.due_at)
    assert triage.end_action == "accept"
    assert (decide.kind, decide.ended_at) == ("decide", None)
    events_give_what_is_stored(db, at(1))


def test_the_ticks_call_up_ends_a_wait_unanswered(db):
    case = accepted(db)
    due = as_utc(get(db, case.id).sign_due_at)
    later = due + timedelta(hours=30)
    with write_session(db) as s:
        assert tick.tick(s, now=later)
    after = get(db, case.id)
    assert after.owner_id == after.street_id
    _triage, decide, answer = waits(db, case.id)
    assert (decide.end_action, decide.answered) == ("call_up", False)
    assert as_utc(decide.ended_at) == later
    assert (answer.kind, answer.unit_id, answer.ended_at) == ("answer", after.street_id, None)
    events_give_what_is_stored(db, later)


def test_a_call_is_answered_by_the_streets_dispatch(db):
    case, _first = dispatched(db)
    _triage, decide, answer, sign = waits(db, case.id)
    assert decide.answered and decide.end_action == "call_up"  # the community's own decision
    assert (answer.kind, answer.unit_id) == ("answer", case.street_id)
    assert answer.answered and answer.end_action == "dispatch"
    assert (sign.kind, sign.unit_id, sign.ended_at) == ("sign", unit_id(db, POLICE), None)
    events_give_what_is_stored(db, at(3))


def test_a_department_answers_by_signing_for_it_or_by_a_reasoned_return(db):
    case, _first = dispatched(db)
    move(db, "dept_police", case.id, "acknowledge", now=at(3.5))
    sign = waits(db, case.id)[-1]
    assert sign.answered and sign.end_action == "acknowledge"
    assert as_utc(sign.ended_at) <= as_utc(sign.due_at)

    other, _first = dispatched(db)
    move(db, "dept_police", other.id, "return", note="不属于本单位职责", now=at(4))
    sign, decide = waits(db, other.id)[-2:]
    assert sign.kind == "sign" and sign.answered and sign.end_action == "return"
    assert (decide.kind, decide.unit_id, decide.ended_at) == ("decide", other.street_id, None)
    events_give_what_is_stored(db, at(4))
