"""One replay of a case's events (lib.cases.derive) gives every stored derived value: the demo's
cases agree with their events, a value changed behind the machine's back is reported by the
integrity check, cases driven through every move of the real machine derive to exactly what it
stored, and the migration's backfill writes what the machine would have; the normalised place
and the distance between two points."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from sqlalchemy import text
from sqlmodel import select

from lib.cases import integrity, tick
from lib.cases.machine import CASES, act
from lib.cases.models import Case, CaseWait
from lib.cases.places import distance_m, place_key
from lib.core.db import read_session, write_session
from lib.core.models import utcnow
from lib.tools import demo, demo_rewards
from tests.factories import NEIGHBOUR, POLICE, get, move, new_case, unit_id

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)  # a Monday, 10:00 China time


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def mismatches(db, now: datetime | None = None) -> integrity.Mismatches:
    with read_session(db) as s:
        return integrity.derived_mismatches(s, now=now, chunk=250)  # several chunks


# ---------------------------------------------------------------- places


def test_a_place_key_keeps_only_what_names_the_place():
    assert place_key("红星路１２号（南门）") == place_key("红星路12号 南门") == "红星路12南门"
    assert place_key("ＡＢＣ Road—7#·楼，。、") == "abcroad7楼"
    assert place_key("锦华路 3 号院-2栋") == place_key("锦华路3院2栋")
    assert place_key("红星路12号") != place_key("红星路13号")
    assert place_key(None) == place_key("") == place_key(" ，。") == ""


def test_the_distance_between_two_points_in_metres():
    assert distance_m(30.65, 104.06, 30.65, 104.06) == 0
    assert 55 < distance_m(30.65, 104.06, 30.6505, 104.06) < 56  # 0.0005° of latitude
    assert 110_000 < distance_m(30.0, 104.0, 31.0, 104.0) < 112_000


# ---------------------------------------------------------------- the demo and the check


def test_the_demo_agrees_with_its_events_and_the_check_finds_what_was_changed(db):
    now = utcnow()
    with write_session(db) as s:
        demo.generate_cases(s, 600, seed=11, now=now)
        # The reward demo's patterns for its approvers (one phone reporting four times within
        # hours, four phones at one place) once rewrote report moments and places of cases
        # already told; they are cases of their own now. (Its claims touch no case.)
        demo_rewards._plant_patterns(s, random.Random(11), now)
    found = mismatches(db, now)
    assert found.checked == 608
    assert found.counts == {}, found.codes
    with read_session(db) as s:
        assert s.exec(select(Case.id).where(Case.committed_due_at.is_not(None))).first()
        assert s.exec(select(Case.id).where(Case.resolved_at.is_not(None))).first()
        assert s.exec(select(CaseWait.id).where(CaseWait.answered.is_(True))).first()
        cases = s.exec(select(Case).where(Case.closed_at.is_not(None), Case.committed_due_at
                                          .is_not(None)).order_by(Case.id)).all()
        waiting = s.exec(select(CaseWait.case_id).order_by(CaseWait.id)).first()
    one, two, three, four = (c.code for c in cases[:4])

    # The migration's backfill writes what the generator (and the machine) wrote.
    with write_session(db) as s:
        s.exec(text('UPDATE "case" SET committed_due_at = NULL, resolved_at = NULL, '
                    'place_key = NULL'))
        s.exec(text("DELETE FROM case_wait"))
    emptied = mismatches(db, now)
    assert {"committed_due_at", "resolved_at", "place_key", "waits"} <= set(emptied.counts)
    with write_session(db) as s:
        assert integrity.backfill(s, chunk=113, now=now) == found.checked
    assert mismatches(db, now).counts == {}

    # Values changed behind the machine's back are reported, by value, with the case's code.
    with write_session(db) as s:
        for sql, code in (
                ('UPDATE "case" SET closure_hours = closure_hours + 1 WHERE code = :c', one),
                ('UPDATE "case" SET committed_due_at = closed_at WHERE code = :c', two),
                ('UPDATE "case" SET reported_at = reported_at - interval \'2 hours\' '
                 'WHERE code = :c' if s.get_bind().dialect.name == "postgresql" else
                 'UPDATE "case" SET reported_at = datetime(reported_at, \'-2 hours\') '
                 'WHERE code = :c', three),
                ('UPDATE "case" SET reached_tier = \'city\', resolved_at = NULL WHERE code = :c',
                 four)):
            s.exec(text(sql), params={"c": code})
        s.exec(text("UPDATE case_wait SET answered = NOT answered WHERE id = "
                    "(SELECT MIN(id) FROM case_wait WHERE case_id = :i)"), params={"i": waiting})
        waiting_code = s.get(Case, waiting).code
    found = mismatches(db, now)
    assert found.codes["closure_hours"] == [one]
    assert found.codes["committed_due_at"] == [two]
    assert found.codes["reported_at"] == [three]
    assert found.codes["reached_tier"] == [four] and found.codes["resolved_at"] == [four]
    assert found.codes["waits"] == [waiting_code]


def test_an_overdue_flag_is_judged_as_of_now(db):
    case = new_case(db, now=T0)
    due = get(db, case.id).sign_due_at
    assert mismatches(db, at(1)).counts == {}
    # Past its deadline, not yet marked: the tick's grace, then a mismatch until it marks it.
    assert mismatches(db, due + timedelta(minutes=5)).counts == {}
    assert mismatches(db, due + timedelta(hours=1)).codes == {"overdue": [case.code]}
    with write_session(db) as s:
        s.exec(text('UPDATE "case" SET overdue = true WHERE id = :i'), params={"i": case.id})
    assert mismatches(db, due + timedelta(hours=1)).counts == {}
    assert mismatches(db, at(1)).codes == {"overdue": [case.code]}  # flagged before its time


# ---------------------------------------------------------------- every move of the machine


def public(db, case_id: int, action: str, **params) -> Case:
    """A move the reporter makes on the tracking page (proved there; not under test here)."""
    with write_session(db) as s:
        return act(s, None, case_id, action, version=s.get(Case, case_id).version, **params)


def test_cases_moved_through_every_move_derive_to_what_the_machine_stored(db):
    police, fire = unit_id(db, POLICE), unit_id(db, "510104-fire")
    neighbour, staff = unit_id(db, NEIGHBOUR), "staff_510104001002"
    day = (T0 + timedelta(days=20)).date()

    # Reassigned, re-triaged with another severity, called up, supervised, dispatched with a
    # co-handler, extensions asked, refused, granted and set, hurried, handled, reworked,
    # verified, called back unreachable, reopened, rated by the reporter, called back, closed.
    a = new_case(db, now=T0).id
    move(db, "community01", a, "reassign", community_id=neighbour, note="地址属于隔壁社区", now=at(0.5))
    move(db, staff, a, "accept", severity="major", now=at(1))
    move(db, staff, a, "call_up", note="请街道协调", now=at(2))
    move(db, "district01", a, "supervise", note="尽快处理", now=at(2.5))
    move(db, "street01", a, "dispatch", lead_unit_id=police, co_unit_ids=[fire], now=at(3))
    move(db, "dept_fire", a, "co_acknowledge", now=at(3.2))
    move(db, "dept_police", a, "acknowledge", now=at(3.5))
    move(db, "dept_police", a, "start", now=at(4))
    move(db, "dept_police", a, "request_extension", until=day, note="需采购", now=at(5))
    move(db, "street01", a, "refuse_extension", note="不同意", now=at(6))
    move(db, "dept_police", a, "request_extension", until=day, note="确需采购", now=at(7))
    move(db, "street01", a, "grant_extension", now=at(8))
    move(db, "street01", a, "extend", until=day + timedelta(days=2), note="材料未到", now=at(9))
    public(db, a, "hurry", now=at(10))
    move(db, "dept_fire", a, "co_handle", note="消防部分已整改", now=at(11))
    move(db, "dept_police", a, "handle", note="已整改", now=at(12))
    move(db, staff, a, "rework", note="不彻底", now=at(13))
    move(db, "dept_police", a, "handle", note="再次整改", now=at(14))
    move(db, staff, a, "verify", now=at(15))
    move(db, staff, a, "feedback", rating="unreachable", now=at(16))
    move(db, staff, a, "reopen", note="居民来电不满意", now=at(17))
    move(db, "dept_police", a, "handle", note="第三次整改", now=at(40))
    public(db, a, "rate", rating="satisfied", now=at(41))
    move(db, staff, a, "verify", now=at(42))
    move(db, staff, a, "feedback", rating="satisfied", now=at(43))
    move(db, staff, a, "close", now=at(44))

    # Taken on, parked, resumed, called up, handed back, taken on again; a report merged in.
    b = new_case(db, now=T0).id
    move(db, "community01", b, "accept", now=at(1))
    move(db, "community01", b, "take", now=at(2))
    move(db, "community01", b, "park", until=day, note="等待业主", now=at(3))
    move(db, "community01", b, "resume", now=at(30))
    move(db, "community01", b, "call_up", note="请街道协调", now=at(31))
    move(db, "street01", b, "hand_back", note="社区可以处理", now=at(32))
    move(db, "community01", b, "take", now=at(33))
    c = new_case(db, now=at(34)).id
    move(db, "community01", c, "merge", merge_into=b, now=at(35))
    public(db, c, "rate_joined", rating="satisfied", now=at(36))
    d = new_case(db, now=at(34)).id
    move(db, "community01", d, "reject", note="不属于受理范围", now=at(35))

    # Dispatched, a co-handler returns its order, the lead returns after signing for it, the
    # street dispatches again; another waits until the tick calls it up.
    e = new_case(db, now=T0).id
    move(db, "community01", e, "accept", now=at(1))
    move(db, "community01", e, "call_up", note="请街道协调", now=at(2))
    move(db, "street01", e, "dispatch", lead_unit_id=police, co_unit_ids=[fire], now=at(3))
    move(db, "dept_fire", e, "co_return", note="不属于消防", now=at(3.5))
    move(db, "dept_police", e, "acknowledge", now=at(4))
    move(db, "dept_police", e, "return", note="不属于派出所", now=at(5))
    move(db, "street01", e, "dispatch", lead_unit_id=police, now=at(28))
    f = new_case(db, now=T0).id
    move(db, "community01", f, "accept", now=at(1))
    with write_session(db) as s:
        tick.tick(s, now=at(80))
    assert get(db, f).owner_id == get(db, f).street_id  # called up by the tick

    done = {action for action, in _actions(db)}
    assert done == set(CASES.moves), sorted(set(CASES.moves) - done)
    found = mismatches(db, at(80))
    assert found.checked == 6
    assert found.counts == {}, found.codes


def _actions(db) -> list:
    with read_session(db) as s:
        return s.exec(text("SELECT DISTINCT action FROM case_event")).all()
