"""Batch moves from the queue: accept, dispatch to the category's default department, close.

A batch is a convenience, never a new rule: each case gets the one checked move the case page
would make (``lib.cases.machine.act``), in a write transaction of its own, with the version the
clerk saw, so each case has exactly one event and a case someone else changed meanwhile is
refused alone (stale) while the others go through.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import select

from lib.cases.access import can_see
from lib.cases.machine import CASES, allowed_actions
from lib.cases.machine import act as case_act
from lib.cases.models import Case
from lib.cases.orders import default_department
from lib.cases.states import Act
from lib.core.db import read_session, write_session
from lib.core.errors import DomainError
from lib.core.inputs import parse_id
from lib.core.models import utcnow
from lib.org import permissions
from lib.org.units import Actor

BATCH_ACTIONS = (Act.accept, Act.dispatch, Act.close)
BATCH_MAX = 50  # one page of the queue


# Why a chosen case cannot take a batch move (catalog keys, ``queue.batch.why.*``).
WHY_STATE = "queue.batch.why.state"  # its state does not take the move
WHY_PERMISSION = "queue.batch.why.permission"  # not this user's (unit's, tier's) move
WHY_NO_DEPARTMENT = "queue.batch.why.no_department"  # no default department to dispatch to
# A case a run refused, by the error it raised: the short reason shown beside its code.
_WHY_REFUSED = {"error.stale": "queue.batch.why.stale", "error.forbidden": WHY_PERMISSION}


def why_refused(error_key: str) -> str:
    """The catalog key of the short reason for a case a batch run refused with ``error_key``
    (the error's own message where there is no short one)."""
    return _WHY_REFUSED.get(error_key, error_key)


@dataclass(frozen=True)
class Offer:
    """Which of the chosen cases each batch move may take, the default department of each
    case that may be dispatched in a batch, and for each move the chosen cases it leaves out
    with the reason (case id → ``WHY_*``)."""

    eligible: dict[str, list[int]]
    default_unit: dict[int, int]
    left_out: dict[str, dict[int, str]] = field(default_factory=dict)


@dataclass
class Outcome:
    done: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)  # case id → message key


def _ids(case_ids: list[object]) -> list[int]:
    if len(case_ids) > BATCH_MAX:
        raise DomainError("error.batch_too_large", max=BATCH_MAX)
    return list(dict.fromkeys(parse_id(i) for i in case_ids))


def offer(actor: Actor, case_ids: list[object], engine: Engine | None = None) -> Offer:
    """What the batch buttons offer for the chosen cases (the same guards as the case page)."""
    permissions.require(actor, permissions.CASE_WORKERS)
    ids = _ids(case_ids)
    eligible: dict[str, list[int]] = {a: [] for a in BATCH_ACTIONS}
    left_out: dict[str, dict[int, str]] = {a: {} for a in BATCH_ACTIONS}
    default_unit: dict[int, int] = {}
    now = utcnow()
    with read_session(engine) as session:
        found = {case.id: case for case in
                 session.exec(select(Case).where(Case.id.in_(ids)).order_by(Case.id)).all()}
        for case_id in ids:
            case = found.get(case_id)
            # A case the user may not see is named only as not theirs, never by its state.
            visible = case is not None and can_see(session, actor, case)
            allowed = set(allowed_actions(session, actor, case, now)) if visible else set()
            for action in BATCH_ACTIONS:
                if action not in allowed:
                    left_out[action][case_id] = WHY_STATE if visible and \
                        case.state not in CASES.moves[action].from_states else WHY_PERMISSION
                elif action == Act.dispatch:
                    unit = default_department(session, case)
                    if unit is None:
                        left_out[action][case_id] = WHY_NO_DEPARTMENT
                    else:
                        eligible[action].append(case_id)
                        default_unit[case_id] = unit
                else:
                    eligible[action].append(case_id)
    return Offer(eligible, default_unit, left_out)


def run(actor: Actor, action: str, versions: dict[object, int], *, note: str = "",
        engine: Engine | None = None) -> Outcome:
    """Make ``action`` on each case (id → the version the clerk saw), one transaction each."""
    permissions.require(actor, permissions.CASE_WORKERS)
    if action not in BATCH_ACTIONS:
        raise DomainError("error.forbidden")
    chosen = {parse_id(k): int(v) for k, v in versions.items()}
    _ids(list(chosen))
    outcome = Outcome()
    for case_id, version in chosen.items():
        params: dict[str, object] = {"note": note}
        try:
            with write_session(engine) as session:
                if action == Act.dispatch:
                    case = session.get(Case, case_id)
                    unit = default_department(session, case) if case is not None else None
                    if unit is None:
                        raise DomainError("error.no_default_department")
                    params.update(lead_unit_id=unit, co_unit_ids=[])
                case_act(session, actor, case_id, action, version=version, **params)
        except DomainError as err:
            outcome.refused[case_id] = err.key
        else:
            outcome.done.append(case_id)
    return outcome
