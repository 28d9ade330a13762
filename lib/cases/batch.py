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
from lib.cases.machine import act as case_act
from lib.cases.machine import allowed_actions
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


@dataclass(frozen=True)
class Offer:
    """Which of the chosen cases each batch move may take, and the default department of each
    case that may be dispatched in a batch."""

    eligible: dict[str, list[int]]
    default_unit: dict[int, int]


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
    default_unit: dict[int, int] = {}
    now = utcnow()
    with read_session(engine) as session:
        for case in session.exec(select(Case).where(Case.id.in_(ids)).order_by(Case.id)).all():
            if not can_see(session, actor, case):
                continue
            allowed = set(allowed_actions(session, actor, case, now))
            for action in (Act.accept, Act.close):
                if action in allowed:
                    eligible[action].append(case.id)
            if Act.dispatch in allowed:
                unit = default_department(session, case)
                if unit is not None:
                    eligible[Act.dispatch].append(case.id)
                    default_unit[case.id] = unit
    return Offer(eligible, default_unit)


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
