"""The move engine and the case machine on it: every move is a whole record, one ``act`` checks
and applies it, events are numbered by the case's own counter, and the moves 12345 practice
needs (改派, 申请延期, a return after sign-for, 催办) work with their who-rules."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func
from sqlmodel import select

from lib.cases import queue, tick, tracking
from lib.cases.intake import Report, submit
from lib.cases.machine import CASES, act, allowed_actions
from lib.cases.models import Case, CaseEvent, WorkOrderState
from lib.cases.orders import orders_of
from lib.core.db import NestedWrite, read_session, write_session
from lib.core.errors import NotFound, PermissionDenied, ValidationFailed
from lib.core.i18n import catalog
from lib.core.machine import FIELD_KINDS, nothing
from lib.core.workcal import CHINA_TZ, next_workday
from lib.rewards.machine import CLAIMS
from tests.factories import (
    COMMUNITY,
    NEIGHBOUR,
    POLICE,
    actor,
    category_id,
    dispatched_to_police,
    get,
    move,
    new_case,
    sms_code,
    unit_id,
)

MACHINES = [CASES, CLAIMS]


# ---------------------------------------------------------------- every move is a whole record


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_every_move_does_something_and_is_labelled_in_both_languages(machine):
    missing = []
    for action, spec in machine.moves.items():
        if spec.from_states:  # movable through act (not written by intake or another move)
            assert spec.effect is not nothing or spec.to_state is not None, action
            assert spec.who, action
        prefix = machine.labels
        keys = [f"{prefix}action.{action}"]
        for field in spec.fields:
            assert field.kind in FIELD_KINDS, (action, field.name)
            keys.append(f"{prefix}note.{action}" if field.name == "note"
                        else f"{prefix}form.{action}.{field.name}")
            keys += [f"{field.labels}.{choice}" for choice in field.choices]
        if spec.public:
            keys.append(f"{prefix}public_action.{action}")
        for lang in ("zh", "en"):
            missing += [f"{lang}:{key}" for key in keys if not catalog(lang).get(key)]
    assert missing == []


def test_a_move_refuses_a_field_it_does_not_take(db):
    case = new_case(db)
    with write_session(db) as s, pytest.raises(ValidationFailed) as err:
        act(s, actor(db, "community01"), case.id, "accept", version=case.version, rating="满意")
    assert err.value.key == "error.field_unknown"
    assert get(db, case.id).state == "reported"


def test_the_expected_next_step_comes_first(db):
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    called = move(db, "community01", case.id, "call_up", note="请街道协调")
    fresh = new_case(db)
    with read_session(db) as s:
        street = allowed_actions(s, actor(db, "street01"), s.get(Case, called.id))
        community = allowed_actions(s, actor(db, "community01"), s.get(Case, fresh.id))
    assert street[0] == "dispatch" and "merge" in street and street.index("merge") > 1
    assert community[0] == "accept"


# ---------------------------------------------------------------- events numbered by a counter


def test_event_numbers_come_from_the_cases_counter(db):
    case = new_case(db)
    for action in ("accept", "take"):
        case = move(db, "community01", case.id, action)
    with read_session(db) as s:
        seqs = s.exec(select(CaseEvent.seq).where(CaseEvent.case_id == case.id)
                      .order_by(CaseEvent.seq)).all()
    assert seqs == [1, 2, 3] and get(db, case.id).event_seq == 3


def test_sixty_residents_joining_one_case_at_once_are_all_stored(db):
    """'Add to that case' from 60 residents at the same moment: every report stored, merged into
    the target, whose events stay numbered without a gap (39 of 60 were lost on PostgreSQL)."""
    target = new_case(db)
    fire, community = category_id(db, "fire"), unit_id(db, COMMUNITY)
    barrier = threading.Barrier(60, timeout=60)
    errors: list[BaseException] = []

    def join(i: int) -> None:
        try:
            barrier.wait()
            submit(db, actor=None, submit_key=uuid.uuid4().hex, client_address=f"203.0.113.{i}",
                   add_to=target.id, report=Report(category_id=fire, community_id=community,
                                                   description="同一处消防通道被堵",
                                                   address="红星路1号",
                                                   reporter_phone=f"1370000{i:04d}"))
        except BaseException as err:  # the test reports what each thread met
            errors.append(err)

    threads = [threading.Thread(target=join, args=(i,)) for i in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with read_session(db) as s:
        merged = s.exec(select(func.count()).select_from(Case).where(
            Case.merged_into_id == target.id)).one()
        seqs = s.exec(select(CaseEvent.seq).where(CaseEvent.case_id == target.id)
                      .order_by(CaseEvent.seq)).all()
    assert merged == 60
    assert seqs == list(range(1, 62)) and get(db, target.id).event_seq == 61


def test_a_nested_write_transaction_fails_at_once(db):
    with write_session(db), pytest.raises(NestedWrite):
        with write_session(db):
            pass
    case = new_case(db)  # and the thread writes again afterwards
    assert get(db, case.id).state == "reported"


# ---------------------------------------------------------------- calling up a case under handling


def test_calling_up_a_case_the_community_handles_itself_takes_the_work_back(db):
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    taken = move(db, "community01", case.id, "take")
    called = move(db, "community01", taken.id, "call_up", note="社区处理不了")
    street = unit_id(db, "510104001")
    assert (called.state, called.unit_id, called.owner_id, called.handler_id) == (
        "accepted", street, street, None)
    with pytest.raises((PermissionDenied, ValidationFailed)):  # no longer its work
        move(db, "community01", case.id, "handle", note="还在处理")
    dispatched = move(db, "street01", case.id, "dispatch", lead_unit_id=unit_id(db, POLICE))
    assert dispatched.state == "dispatched"


def test_the_tick_calls_up_an_overdue_case_the_community_sat_on(db):
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    taken = move(db, "community01", case.id, "take")
    late = taken.handle_due_at + timedelta(hours=25)
    assert tick.run_tick(db, now=late) == {"marked_overdue": 1, "called_up": 1}
    called = get(db, case.id)
    street = unit_id(db, "510104001")
    assert (called.state, called.unit_id, called.owner_id, called.handler_id) == (
        "accepted", street, street, None)
    with read_session(db) as s:
        rows, _ = queue.queue_rows(s, actor(db, "street01"), "calls")
    assert case.id in [r.id for r in rows]


def test_calling_up_while_a_department_works_keeps_the_department_on_it(db):
    case = new_case(db, category="residential_security")
    move(db, "community01", case.id, "accept")
    move(db, "community01", case.id, "call_up", note="请街道协调")
    police = unit_id(db, POLICE)
    move(db, "street01", case.id, "dispatch", lead_unit_id=police)
    move(db, "dept_police", case.id, "acknowledge")
    called = move(db, "street01", case.id, "call_up", note="需要区里协调")
    district = unit_id(db, "510104")
    assert (called.state, called.unit_id, called.owner_id, called.handler_id) == (
        "acknowledged", police, district, police)
    move(db, "dept_police", case.id, "start")
    handled = move(db, "dept_police", case.id, "handle", note="已加装门禁")
    assert handled.state == "handled"


# ---------------------------------------------------------------- 改派, 申请延期, 退单, 催办


def test_a_triager_reassigns_a_report_filed_under_the_wrong_community(db):
    case = new_case(db)
    neighbour = unit_id(db, NEIGHBOUR)
    with pytest.raises(ValidationFailed):  # a reason is needed
        move(db, "community01", case.id, "reassign", community_id=neighbour)
    with pytest.raises(ValidationFailed) as err:
        move(db, "community01", case.id, "reassign", note="不是我们的")
    assert err.value.key == "error.reassign_nothing"
    moved = move(db, "community01", case.id, "reassign", community_id=neighbour,
                 note="地址在隔壁社区")
    assert (moved.code, moved.state, moved.community_id, moved.unit_id, moved.owner_id) == (
        case.code, "reported", neighbour, neighbour, neighbour)
    with pytest.raises(NotFound):
        move(db, "community01", case.id, "accept")
    accepted = move(db, "staff_510104001002", case.id, "accept")
    assert accepted.state == "accepted"
    recategorised = move(db, "staff_510104001002", case.id, "reassign",
                         category_id=category_id(db, "gas"), note="其实是燃气管道")
    assert (recategorised.state, recategorised.category_id) == ("accepted", category_id(db, "gas"))
    with read_session(db) as s:
        actions = s.exec(select(CaseEvent.action).where(CaseEvent.case_id == case.id)
                         .order_by(CaseEvent.seq)).all()
    assert actions == ["report", "reassign", "accept", "reassign"]


def test_a_department_asks_for_more_time_and_the_owner_decides(db):
    case = dispatched_to_police(db)
    move(db, "dept_police", case.id, "acknowledge")
    wanted = (case.handle_due_at + timedelta(days=10)).astimezone(CHINA_TZ).date()
    with pytest.raises(PermissionDenied):  # only the handler asks
        move(db, "street01", case.id, "request_extension", until=wanted, note="等材料")
    asked = move(db, "dept_police", case.id, "request_extension", until=wanted, note="需采购门禁")
    assert asked.extension_until is not None and asked.handle_due_at == case.handle_due_at
    with pytest.raises(PermissionDenied):  # one request at a time
        move(db, "dept_police", case.id, "request_extension", until=wanted, note="再申请")
    with pytest.raises(ValidationFailed):  # refusing needs a reason
        move(db, "street01", case.id, "refuse_extension")
    granted = move(db, "street01", case.id, "grant_extension")
    assert granted.extension_until is None and granted.handle_due_at == asked.extension_until
    with read_session(db) as s:
        lead = [o for o in orders_of(s, case.id) if o.lead][0]
    assert lead.handle_due_at == granted.handle_due_at
    again = move(db, "dept_police", case.id, "request_extension",
                 until=wanted + timedelta(days=5), note="还需要一周")
    refused = move(db, "street01", again.id, "refuse_extension", note="请按时完成")
    assert refused.extension_until is None and refused.handle_due_at == granted.handle_due_at


def test_a_department_returns_a_case_after_signing_for_it(db):
    case = dispatched_to_police(db)
    move(db, "dept_police", case.id, "acknowledge")
    move(db, "dept_police", case.id, "start")
    returned = move(db, "dept_police", case.id, "return", note="不属于派出所职责")
    street = unit_id(db, "510104001")
    assert (returned.state, returned.unit_id, returned.handler_id) == ("accepted", street, None)
    with read_session(db) as s:
        assert [o.state for o in orders_of(s, case.id)] == [WorkOrderState.returned]
    # A community handling a case itself has nobody to return it to: it calls up instead.
    own = new_case(db)
    move(db, "community01", own.id, "accept")
    move(db, "community01", own.id, "take")
    with pytest.raises(PermissionDenied):
        move(db, "community01", own.id, "return", note="不想办")


def test_a_resident_hurries_once_per_working_day(db):
    # 催办 is offered a day after the report (cases.hurry_after_hours), or once a deadline is missed.
    case = new_case(db, phone="13812345678", now=datetime.now(timezone.utc) - timedelta(hours=25))
    seen = sms_code(db, case.code)
    version = track_version = tracking.track(db, case.code, seen).version
    assert tracking.track(db, case.code, seen).can_hurry
    with pytest.raises(NotFound):  # a code sent for viewing does not hurry
        tracking.hurry(db, code=case.code, proof=seen, version=version)
    hurried = tracking.hurry(db, code=case.code, proof=sms_code(db, case.code, "hurry"),
                             version=track_version, note="已经很久了")
    assert (hurried.hurry_count, hurried.state) == (1, "reported")
    view = tracking.track(db, case.code, seen)
    assert not view.can_hurry and view.hurry_count == 1
    with pytest.raises(ValidationFailed) as err:
        tracking.hurry(db, code=case.code, proof=sms_code(db, case.code, "hurry"),
                       version=view.version)
    assert err.value.key == "error.cannot_hurry"
    next_day = datetime.combine(next_workday(datetime.now(CHINA_TZ).date()),
                                datetime.min.time(), CHINA_TZ) + timedelta(hours=9)
    next_day = next_day.astimezone(timezone.utc)
    again = tracking.hurry(db, code=case.code, proof=sms_code(db, case.code, "hurry", now=next_day),
                           version=view.version, now=next_day)
    assert again.hurry_count == 2
    with read_session(db) as s:
        rows, _ = queue.queue_rows(s, actor(db, "community01"), "triage")
    assert [r.hurry_count for r in rows if r.id == case.id] == [2]
