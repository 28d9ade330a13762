"""The closed loop of a case (发现 → 研判 → 派单 → 处置 → 核查 → 回访 → 办结) and the moves that
must be refused: wrong role, wrong tier, wrong unit, wrong state.

Every test runs on SQLite and on PostgreSQL (the ``db`` fixture). After every accepted move the
ledger must hold: events numbered 1..n without a gap, the last one's ``to_state`` the case's
state.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import pytest
from sqlmodel import select

from lib.cases.detail import events_of
from lib.cases.intake import Report, submit
from lib.cases.machine import act, allowed_actions, replay
from lib.cases.models import Case, WorkOrderState
from lib.cases.orders import dispatch_targets, orders_of
from lib.cases.tick import tick
from lib.cases.tracking import rate, track
from lib.core.db import read_session, write_session
from lib.core.errors import NotFound, PermissionDenied, ValidationFailed
from lib.core.models import Category, utcnow
from lib.org import auth
from lib.org.models import Unit
from lib.org.units import find_unit
from tests.factories import sms_code

COMMUNITY = "510104001001"
STREET = "510104001"
POLICE = "510104001-police"         # dept_police, attached to the street
FIRE = "510104001-fire_rescue"      # staff_510104001_fire_rescue, attached to the street
FIRE_STAFF = "staff_510104001_fire_rescue"
OTHER_COMMUNITY_SAME_STREET = "staff_510104001002"
OTHER_STREET = "staff_510104002"

_phones = itertools.count(13900000000)




# ---------------------------------------------------------------- helpers


def actor(session, username):
    return auth.actor_by_username(session, username)


def unit_id(db, code: str) -> int:
    with read_session(db) as s:
        return find_unit(s, code).id


def report(db, *, category: str = "residential_security", community: str = COMMUNITY) -> Case:
    """A resident's report from the public form, with a fresh phone and client address."""
    phone = str(next(_phones))
    with read_session(db) as s:
        category_id = s.exec(select(Category.id).where(Category.key == category)).one()
        community_id = find_unit(s, community).id
    return submit(db, actor=None, submit_key=uuid.uuid4().hex, client_address=f"198.51.100.{phone[-2:]}",
                  report=Report(category_id=category_id, community_id=community_id,
                                description="小区后门门禁损坏，夜间有陌生人进出", address="红星路2号",
                                reporter_phone=phone)).case


def move(db, username: str, case_id: int, action: str, *, version: int | None = None, **extra) -> Case:
    """``username`` makes ``action`` on the case, with the version now stored unless given."""
    with write_session(db) as s:
        if version is None:
            version = s.get(Case, case_id).version
        return act(s, actor(s, username), case_id, action, version=version, **extra)


def refused(db, username: str, case_id: int, action: str, error: type, key: str | None = None,
            **extra) -> None:
    """The move is refused with ``error`` (and ``key``), and the case and its ledger are unchanged."""
    before = snapshot(db, case_id)
    with pytest.raises(error) as err:
        move(db, username, case_id, action, **extra)
    if key is not None:
        assert err.value.key == key
    assert snapshot(db, case_id) == before


def snapshot(db, case_id: int) -> tuple:
    with read_session(db) as s:
        case = s.get(Case, case_id)
        return (case.state, case.version, case.unit_id, case.owner_id, case.handler_id,
                len(events_of(s, case_id)))


def check_ledger(db, case_id: int) -> list:
    """Events 1..n with no gap, agreeing with the state machine and with the case's state."""
    with read_session(db) as s:
        case = s.get(Case, case_id)
        events = events_of(s, case_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].to_state == case.state
    assert events[-1].to_unit_id == case.unit_id
    assert replay([(e.action, e.from_state, e.to_state) for e in events]) == case.state
    return events


def expect(db, case: Case, state: str, at: str, action: str) -> None:
    """After a move: the case is in ``state`` at unit ``at``; the last event is that move."""
    with read_session(db) as s:
        stored = s.get(Case, case.id)
        assert (stored.state, s.get(Unit, stored.unit_id).code) == (state, at)
    events = check_ledger(db, case.id)
    assert events[-1].action == action


def accepted_at_street(db) -> Case:
    """A reported case, accepted by its community and called up to the street."""
    case = report(db)
    move(db, "community01", case.id, "accept")
    return move(db, "community01", case.id, "call_up", note="需要街道协调派出所")


def dispatched_to_police(db, *, co_handler: bool = False) -> Case:
    case = accepted_at_street(db)
    co = [unit_id(db, FIRE)] if co_handler else []
    return move(db, "street01", case.id, "dispatch", lead_unit_id=unit_id(db, POLICE), co_unit_ids=co)


def handled_by_police(db) -> Case:
    case = dispatched_to_police(db)
    move(db, "dept_police", case.id, "acknowledge")
    move(db, "dept_police", case.id, "start")
    return move(db, "dept_police", case.id, "handle", note="已更换门禁并加强巡逻")


# ---------------------------------------------------------------- the whole loop


def test_resident_report_goes_round_the_whole_loop_and_a_dissatisfied_rating_reopens_it(db):
    police, fire = unit_id(db, POLICE), unit_id(db, FIRE)
    case = report(db)
    expect(db, case, "reported", COMMUNITY, "report")

    case = move(db, "community01", case.id, "accept")
    expect(db, case, "accepted", COMMUNITY, "accept")

    case = move(db, "community01", case.id, "call_up", note="需要街道协调派出所")
    expect(db, case, "accepted", STREET, "call_up")
    assert case.owner_id == unit_id(db, STREET) and case.reached_tier == "street"

    with read_session(db) as s:
        targets = [u.code for u in dispatch_targets(s, s.get(Case, case.id))]
    assert POLICE in targets and FIRE in targets
    case = move(db, "street01", case.id, "dispatch", lead_unit_id=police, co_unit_ids=[fire])
    expect(db, case, "dispatched", POLICE, "dispatch")
    assert case.handler_id == police and case.sign_due_at and case.handle_due_at
    with read_session(db) as s:
        orders = {(o.unit_id, o.lead, o.state) for o in orders_of(s, case.id)}
    assert orders == {(police, True, "dispatched"), (fire, False, "dispatched")}

    case = move(db, "dept_police", case.id, "acknowledge")
    expect(db, case, "acknowledged", POLICE, "acknowledge")
    case = move(db, FIRE_STAFF, case.id, "co_acknowledge")
    expect(db, case, "acknowledged", POLICE, "co_acknowledge")
    case = move(db, "dept_police", case.id, "start")
    expect(db, case, "in_progress", POLICE, "start")

    # The lead cannot report the case handled while a co-handler's order is open.
    refused(db, "dept_police", case.id, "handle", ValidationFailed, "error.cohandlers_pending",
            note="已处置")
    case = move(db, FIRE_STAFF, case.id, "co_handle", note="消防通道已检查")
    expect(db, case, "in_progress", POLICE, "co_handle")
    refused(db, "dept_police", case.id, "handle", ValidationFailed, "error.note_required", note="  ")
    case = move(db, "dept_police", case.id, "handle", note="已更换门禁并加强巡逻")
    expect(db, case, "handled", COMMUNITY, "handle")
    with read_session(db) as s:
        assert {o.unit_id: o.state for o in orders_of(s, case.id)} == {
            police: WorkOrderState.handled, fire: WorkOrderState.handled}

    case = move(db, "community01", case.id, "verify")
    expect(db, case, "verified", COMMUNITY, "verify")
    refused(db, "community01", case.id, "feedback", ValidationFailed, "error.choice_invalid",
            rating="great")
    case = move(db, "community01", case.id, "feedback", rating="satisfied")
    expect(db, case, "feedback", COMMUNITY, "feedback")
    case = move(db, "community01", case.id, "close")
    expect(db, case, "closed", COMMUNITY, "close")
    assert case.closed_at is not None

    # The reporter is not satisfied: with a reason, on the tracking page, the case reopens.
    seen = sms_code(db, case.code)
    tracking = track(db, case.code, seen)
    assert tracking.can_rate and tracking.state == "closed"
    with pytest.raises(ValidationFailed) as err:
        rate(db, code=case.code, proof=sms_code(db, case.code, "rate"), rating="dissatisfied",
             reason=" ", version=tracking.version)
    assert err.value.key == "error.reason_required"
    case = rate(db, code=case.code, proof=sms_code(db, case.code, "rate"), rating="dissatisfied",
                reason="晚上门禁又坏了", version=tracking.version)
    expect(db, case, "in_progress", POLICE, "reopen")
    assert (case.rating, case.closed_at, case.handler_id) == ("dissatisfied", None, police)
    assert not track(db, case.code, seen).can_rate
    with read_session(db) as s:
        events = events_of(s, case.id)
    assert events[-1].actor_id is None and events[-1].note == "晚上门禁又坏了"
    assert [e.action for e in events] == [
        "report", "accept", "call_up", "dispatch", "acknowledge", "co_acknowledge", "start",
        "co_handle", "handle", "verify", "feedback", "close", "reopen"]


def test_public_rates_a_handled_case_once(db):
    case = handled_by_police(db)
    seen = sms_code(db, case.code)
    tracking = track(db, case.code, seen)
    code = sms_code(db, case.code, "rate")
    with pytest.raises(NotFound):  # the code sent for viewing does not rate
        rate(db, code=case.code, proof=seen, rating="satisfied", version=tracking.version)
    with pytest.raises(ValidationFailed) as err:  # nothing chosen: nothing recorded
        rate(db, code=case.code, proof=code, rating=None, version=tracking.version)
    assert err.value.key == "error.rating_required"
    rated = rate(db, code=case.code, proof=code, rating="basically_satisfied",
                 version=tracking.version)
    assert (rated.state, rated.rating) == ("handled", "basically_satisfied")
    check_ledger(db, case.id)
    assert not track(db, case.code, seen).can_rate
    with pytest.raises(NotFound):  # a code rates once
        rate(db, code=case.code, proof=code, rating="dissatisfied", reason="再评一次",
             version=rated.version)
    with pytest.raises(ValidationFailed) as err:
        rate(db, code=case.code, proof=sms_code(db, case.code, "rate"), rating="dissatisfied",
             reason="再评一次", version=rated.version)
    assert err.value.key == "error.cannot_rate"


def test_merge_joins_a_duplicate_and_both_ledgers_stay_whole(db):
    first = report(db)
    second = report(db)
    elsewhere = report(db, community="510104001002")
    refused(db, "community01", second.id, "merge", ValidationFailed, "error.merge_target_invalid",
            merge_into=second.code)
    refused(db, "community01", second.id, "merge", ValidationFailed, "error.merge_target_invalid",
            merge_into=elsewhere.code)
    refused(db, "community01", second.id, "merge", ValidationFailed, "error.merge_target_invalid",
            merge_into="NOSUCHCODE")
    merged = move(db, "community01", second.id, "merge", merge_into=" " + first.code.lower() + " ")
    expect(db, merged, "merged", COMMUNITY, "merge")
    expect(db, first, "reported", COMMUNITY, "add_report")
    with read_session(db) as s:
        assert s.get(Case, second.id).merged_into_id == first.id
    # A resident who picks the open duplicate on the form joins it the same way.
    with read_session(db) as s:
        category_id = s.exec(select(Category.id).where(Category.key == "residential_security")).one()
        community_id = find_unit(s, COMMUNITY).id
    joined = submit(db, actor=None, submit_key=uuid.uuid4().hex, client_address="198.51.100.200",
                    add_to=first.id,
                    report=Report(category_id=category_id, community_id=community_id,
                                  description="同一个门禁坏了", address="红星路2号",
                                  reporter_phone="13911112222")).case
    expect(db, joined, "merged", COMMUNITY, "merge")
    assert len(check_ledger(db, first.id)) == 3


# ---------------------------------------------------------------- refused: role, tier, unit, state


def test_only_the_communitys_own_staff_triage_a_report(db):
    case = report(db)
    # Staff of another community, even in the same street, do not even see it.
    refused(db, OTHER_COMMUNITY_SAME_STREET, case.id, "accept", NotFound, "error.case_not_found")
    refused(db, OTHER_COMMUNITY_SAME_STREET, case.id, "reject", NotFound, note="不是我们的")
    # Its own leader and grid worker see it but do not triage.
    for username in ("community_leader", "grid01"):
        refused(db, username, case.id, "accept", PermissionDenied, "error.forbidden")
        refused(db, username, case.id, "reject", PermissionDenied, "error.forbidden", note="重复")
    with read_session(db) as s:
        stored = s.get(Case, case.id)
        assert allowed_actions(s, actor(s, "grid01"), stored) == []
        assert {"accept", "reject", "merge"} <= set(allowed_actions(s, actor(s, "community01"), stored))


def test_community_cannot_dispatch_it_handles_the_case_itself_or_calls_it_up(db):
    case = report(db)
    move(db, "community01", case.id, "accept")
    refused(db, "community01", case.id, "dispatch", PermissionDenied, "error.forbidden",
            lead_unit_id=unit_id(db, POLICE))
    with read_session(db) as s:
        actions = allowed_actions(s, actor(s, "community01"), s.get(Case, case.id))
    assert "dispatch" not in actions and {"take", "call_up", "park"} <= set(actions)
    taken = move(db, "community01", case.id, "take")
    expect(db, taken, "in_progress", COMMUNITY, "take")
    assert taken.handler_id == unit_id(db, COMMUNITY) and taken.handle_due_at is not None
    refused(db, "street01", case.id, "handle", PermissionDenied, note="街道代办")
    case = move(db, "community01", case.id, "handle", note="社区已自行清理")
    expect(db, case, "handled", COMMUNITY, "handle")
    case = move(db, "community01", case.id, "verify")
    expect(db, case, "verified", COMMUNITY, "verify")


def test_street_cannot_dispatch_another_streets_case(db):
    case = accepted_at_street(db)
    other_police = unit_id(db, "510104002-police")
    refused(db, OTHER_STREET, case.id, "dispatch", NotFound, "error.case_not_found",
            lead_unit_id=other_police)
    # Its own street may not send it to a department of another street either.
    refused(db, "street01", case.id, "dispatch", ValidationFailed, "error.department_invalid",
            lead_unit_id=other_police)
    refused(db, "street01", case.id, "dispatch", ValidationFailed, "error.department_invalid",
            lead_unit_id=unit_id(db, STREET))
    refused(db, "street_leader", case.id, "dispatch", PermissionDenied,
            lead_unit_id=unit_id(db, POLICE))
    with read_session(db) as s:
        assert "510104002-police" not in {u.code for u in dispatch_targets(s, s.get(Case, case.id))}


def test_only_the_lead_department_signs_for_and_handles_the_case(db):
    case = dispatched_to_police(db, co_handler=True)
    # A department without an order on the case does not even see it.
    refused(db, "dept_fire", case.id, "acknowledge", NotFound, "error.case_not_found")
    # The co-handler sees it but acts only on its own work order.
    for action, extra in (("acknowledge", {}), ("return", {"note": "不归我们"})):
        refused(db, FIRE_STAFF, case.id, action, PermissionDenied, "error.forbidden", **extra)
    refused(db, "dept_police", case.id, "co_acknowledge", PermissionDenied, "error.forbidden")
    # A tier unit does not sign for a department's order.
    refused(db, "street01", case.id, "acknowledge", PermissionDenied)
    move(db, "dept_police", case.id, "acknowledge")
    refused(db, FIRE_STAFF, case.id, "start", PermissionDenied)


def test_verify_before_handle_is_the_wrong_state(db):
    case = dispatched_to_police(db)
    refused(db, "community01", case.id, "verify", ValidationFailed, "error.wrong_state")
    refused(db, "community01", case.id, "close", ValidationFailed, "error.wrong_state")
    refused(db, "dept_police", case.id, "handle", ValidationFailed, "error.wrong_state", note="提前")
    refused(db, "dept_police", case.id, "no_such_move", ValidationFailed, "error.action_unknown")


# ---------------------------------------------------------------- side moves


def test_return_puts_the_case_back_with_its_owner(db):
    case = dispatched_to_police(db, co_handler=True)
    refused(db, "dept_police", case.id, "return", ValidationFailed, "error.note_required")
    case = move(db, "dept_police", case.id, "return", note="不属于派出所职责")
    expect(db, case, "accepted", STREET, "return")
    # Back with its owner, who must dispatch again or act otherwise within the answer time.
    assert case.handler_id is None and case.handle_due_at is None and case.sign_due_at is not None
    with read_session(db) as s:
        orders = orders_of(s, case.id)
    assert not [o for o in orders if o.state in (WorkOrderState.dispatched, WorkOrderState.acknowledged)]
    assert [o.state for o in orders if not o.lead] == [WorkOrderState.cancelled]
    refused(db, "dept_police", case.id, "acknowledge", ValidationFailed, "error.wrong_state")
    # The street dispatches again, to someone else.
    case = move(db, "street01", case.id, "dispatch", lead_unit_id=unit_id(db, FIRE))
    expect(db, case, "dispatched", FIRE, "dispatch")


def test_a_departments_return_is_recorded_on_its_work_order(db):
    case = dispatched_to_police(db, co_handler=True)
    move(db, "dept_police", case.id, "return", note="不属于派出所职责")
    with read_session(db) as s:
        states = {o.lead: o.state for o in orders_of(s, case.id)}
    assert states == {True: WorkOrderState.returned, False: WorkOrderState.cancelled}


def test_rework_sends_a_handled_case_back_to_the_department(db):
    case = handled_by_police(db)
    refused(db, "community01", case.id, "rework", ValidationFailed, "error.note_required")
    refused(db, "dept_police", case.id, "rework", PermissionDenied, note="自己返工")
    case = move(db, "community01", case.id, "rework", note="现场核查门禁仍未修好")
    expect(db, case, "in_progress", POLICE, "rework")
    with read_session(db) as s:
        assert [o.state for o in orders_of(s, case.id) if o.lead] == [WorkOrderState.acknowledged]
    case = move(db, "dept_police", case.id, "handle", note="已再次维修")
    expect(db, case, "handled", COMMUNITY, "handle")


def test_park_needs_a_review_date_and_resume_brings_the_case_back(db):
    case = report(db)
    move(db, "community01", case.id, "accept")
    refused(db, "community01", case.id, "park", ValidationFailed, "error.date_required",
            note="等待拆迁")
    refused(db, "community01", case.id, "park", ValidationFailed, "error.date_not_future",
            note="等待拆迁", until=utcnow() - timedelta(days=1))
    refused(db, "community01", case.id, "park", ValidationFailed, "error.date_invalid",
            note="等待拆迁", until=(utcnow() + timedelta(days=30)).replace(tzinfo=None))
    review = utcnow() + timedelta(days=30)
    case = move(db, "community01", case.id, "park", note="等待拆迁", until=review)
    expect(db, case, "parked", COMMUNITY, "park")
    with read_session(db) as s:
        assert abs((s.get(Case, case.id).review_at - review).total_seconds()) < 1
    refused(db, "street01", case.id, "resume", PermissionDenied)
    case = move(db, "community01", case.id, "resume")
    expect(db, case, "accepted", COMMUNITY, "resume")
    assert case.review_at is None


def test_extend_needs_a_later_deadline(db):
    case = dispatched_to_police(db)
    with read_session(db) as s:
        old_due = s.get(Case, case.id).handle_due_at
    refused(db, "street01", case.id, "extend", ValidationFailed, "error.date_required", note="延期")
    refused(db, "street01", case.id, "extend", ValidationFailed, "error.extend_not_later",
            note="延期", until=old_due - timedelta(minutes=1))
    refused(db, "street01", case.id, "extend", ValidationFailed, "error.note_required",
            until=old_due + timedelta(days=3))
    refused(db, "dept_police", case.id, "extend", PermissionDenied, note="我们想延期",
            until=old_due + timedelta(days=3))
    case = move(db, "street01", case.id, "extend", note="需要协调物业", until=old_due + timedelta(days=3))
    expect(db, case, "dispatched", POLICE, "extend")
    with read_session(db) as s:
        assert s.get(Case, case.id).handle_due_at - old_due == timedelta(days=3)
        lead = [o for o in orders_of(s, case.id) if o.lead][0]
        assert lead.handle_due_at - old_due == timedelta(days=3)


def test_hand_back_returns_a_called_up_case_to_the_community(db):
    case = accepted_at_street(db)
    refused(db, "community01", case.id, "hand_back", PermissionDenied, note="我们没权限")
    refused(db, "street01", case.id, "hand_back", ValidationFailed, "error.note_required")
    case = move(db, "street01", case.id, "hand_back", note="社区可以自行处理")
    expect(db, case, "accepted", COMMUNITY, "hand_back")
    assert case.owner_id == unit_id(db, COMMUNITY)
    assert case.reached_tier == "street"  # the record of how far it went stays
    with read_session(db) as s:
        assert "hand_back" not in allowed_actions(s, actor(s, "community01"), s.get(Case, case.id))


def test_supervise_by_a_higher_tier_only_once(db):
    case = report(db)
    refused(db, "community01", case.id, "supervise", PermissionDenied, note="自己督办自己")
    refused(db, "dept_police", case.id, "supervise", NotFound, note="部门督办")
    refused(db, "street01", case.id, "supervise", ValidationFailed, "error.note_required")
    case = move(db, "street01", case.id, "supervise", note="请尽快处理")
    expect(db, case, "reported", COMMUNITY, "supervise")
    assert case.supervised
    refused(db, "district01", case.id, "supervise", PermissionDenied, note="再督办一次")

    # A case the street owns is supervised from the district, not by the street itself.
    owned = accepted_at_street(db)
    refused(db, "street01", owned.id, "supervise", PermissionDenied, note="街道自己督办")
    owned = move(db, "district01", owned.id, "supervise", note="区级督办")
    expect(db, owned, "accepted", STREET, "supervise")
    assert owned.supervised


def test_tick_marks_overdue_once_and_calls_a_community_case_up_after_the_grace(db):
    case = report(db)
    waiting = accepted_at_street(db)  # already at the street: never auto-called further
    with read_session(db) as s:
        sign_due = s.get(Case, case.id).sign_due_at
        street_due = s.get(Case, waiting.id).sign_due_at
        version = s.get(Case, case.id).version
    last_due = max(sign_due, street_due)

    with write_session(db) as s:
        assert tick(s, now=sign_due - timedelta(minutes=1)) == {"marked_overdue": 0, "called_up": 0}
    with write_session(db) as s:
        assert tick(s, now=last_due + timedelta(hours=1)) == {"marked_overdue": 2, "called_up": 0}
    with write_session(db) as s:
        assert tick(s, now=last_due + timedelta(hours=2)) == {"marked_overdue": 0, "called_up": 0}
    with read_session(db) as s:
        stored = s.get(Case, case.id)
        assert stored.overdue and stored.version == version  # a flag, not a move
        assert len(events_of(s, case.id)) == 1

    later = sign_due + timedelta(hours=25)  # past the community's 24-hour grace
    with write_session(db) as s:
        assert tick(s, now=max(later, last_due + timedelta(hours=2))) == {
            "marked_overdue": 0, "called_up": 1}
    expect(db, case, "reported", STREET, "call_up")
    with read_session(db) as s:
        stored = s.get(Case, case.id)
        event = events_of(s, case.id)[-1]
        assert stored.owner_id == unit_id(db, STREET) and stored.reached_tier == "street"
        assert event.actor_id is None and event.detail["auto"] is True
        assert s.get(Case, waiting.id).owner_id == unit_id(db, STREET)
    with write_session(db) as s:
        assert tick(s, now=max(later, last_due) + timedelta(hours=3)) == {
            "marked_overdue": 0, "called_up": 0}
    assert len(check_ledger(db, case.id)) == 2
