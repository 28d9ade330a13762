"""Bad input on the action forms: refused in lib with a clear key, and nothing changes."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlmodel import select

from lib.cases.intake import Report, create_case
from lib.cases.machine import act
from lib.cases.models import Case, CaseEvent
from lib.core.db import read_session, write_session
from lib.core.errors import ValidationFailed
from lib.core.machine import NOTE_MAX
from lib.core.models import Category
from lib.org import auth
from lib.org.units import find_unit


def _new_case(s, description: str, phone: str) -> Case:
    fire = s.exec(select(Category.id).where(Category.key == "fire")).one()
    return create_case(s, Report(category_id=fire, subcategory_id=None, description=description,
                                 address="红星路3号", community_id=find_unit(s, "510104001001").id,
                                 reporter_phone=phone),
                       actor=None)


def _case_at_street(db) -> Case:
    with write_session(db) as s:
        case = _new_case(s, "消防栓无水", "13812345678")
        community = auth.actor_by_username(s, "community01")
        case = act(s, community, case.id, "accept", version=case.version)
        return act(s, community, case.id, "call_up", version=case.version, note="请街道协调")


def _try(db, username: str, case: Case, action: str, **params) -> str:
    with read_session(db) as s:
        before = (s.get(Case, case.id).version,
                  s.exec(select(func.count()).select_from(CaseEvent)).one())
    with pytest.raises(ValidationFailed) as refused, write_session(db) as s:
        act(s, auth.actor_by_username(s, username), case.id, action, version=case.version, **params)
    with read_session(db) as s:
        assert (s.get(Case, case.id).version,
                s.exec(select(func.count()).select_from(CaseEvent)).one()) == before
    return refused.value.key


def test_action_forms_refuse_bad_input_and_change_nothing(db):
    case = _case_at_street(db)
    with read_session(db) as s:
        community = find_unit(s, "510104001001").id
        police = find_unit(s, "510104001-police").id
        other_street_dept = find_unit(s, "510104002-police").id
    assert _try(db, "street01", case, "hand_back", note="x" * (NOTE_MAX + 1)) == "error.text_too_long"
    assert _try(db, "street01", case, "hand_back", note="   ") == "error.note_required"
    assert _try(db, "street01", case, "dispatch") == "error.lead_required"
    assert _try(db, "street01", case, "dispatch", lead_unit_id=community) == "error.department_invalid"
    assert _try(db, "street01", case, "dispatch",
                lead_unit_id=other_street_dept) == "error.department_invalid"
    assert _try(db, "street01", case, "dispatch", lead_unit_id=police,
                co_unit_ids=[999_999]) == "error.department_invalid"
    assert _try(db, "street01", case, "merge", merge_into="' OR 1=1--") == "error.merge_target_invalid"
    assert _try(db, "street01", case, "verify") == "error.wrong_state"
    assert _try(db, "street01", case, "park", note="需要大修") == "error.date_required"


def test_merge_and_feedback_refuse_garbage(db):
    with write_session(db) as s:
        case = _new_case(s, "重复", "13812345679")
    assert _try(db, "community01", case, "merge", merge_into="' OR 1=1--") == \
        "error.merge_target_invalid"
    assert _try(db, "community01", case, "merge", merge_into=case.code) == "error.merge_target_invalid"
    with write_session(db) as s:
        community = auth.actor_by_username(s, "community01")
        for action, params in (("accept", {}), ("take", {}), ("handle", {"note": "已修复"}),
                               ("verify", {})):
            case = act(s, community, case.id, action, version=case.version, **params)
    assert _try(db, "community01", case, "feedback", rating="bogus") == "error.choice_invalid"
    assert _try(db, "community01", case, "feedback") == "error.rating_required"
