"""The tick: marks overdue cases and, where a tier's settings say so, calls them up; tells the
units of cases that went overdue or whose deadline is near (lib.cases.notices).

``python -m lib tick`` runs it (idempotent: cron every minute is fine); queue pages run it
lazily, at most once a minute per process, on a thread of their own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases import notices
from lib.cases.deadlines import past_due
from lib.cases.machine import act, owner_tier
from lib.cases.models import Case
from lib.cases.states import DUE, Act
from lib.core import jobs
from lib.core.db import get_engine, read_session, write_session
from lib.core.machine import lock
from lib.core.models import Tier, utcnow
from lib.core.settings import get_int


def due_for_call_up(session: Session, now: datetime, limit: int) -> list[tuple[int, str]]:
    """(case id, tier) of overdue cases waiting at (or handled by) their owner whose tier's
    grace has run out."""
    found: list[tuple[int, str]] = []
    for tier, column in ((Tier.community, Case.community_id), (Tier.street, Case.street_id),
                         (Tier.district, Case.district_id)):
        hours = get_int(session, f"auto_call_up_hours.{tier}")
        if hours <= 0:
            continue
        ids = session.exec(
            select(Case.id).where(Case.overdue.is_(True), Case.state.in_(sorted(DUE)),
                                  Case.owner_id == column, Case.unit_id == Case.owner_id,
                                  past_due(now - timedelta(hours=hours)))
            .order_by(Case.id).limit(limit)).all()
        found.extend((case_id, tier) for case_id in ids)
    return found[:limit]


def call_up_overdue(session: Session, case_id: int, *, tier: str, now: datetime) -> int:
    """The tick's automatic call-up of one overdue case; 0 if someone moved it meanwhile."""
    case = lock(session, Case, case_id)
    if not case.overdue or owner_tier(case) != tier or case.unit_id != case.owner_id:
        return 0
    act(session, None, case.id, Act.call_up, version=case.version, now=now, system=True)
    return 1


def tick(session: Session, now: datetime | None = None, limit: int = 1000) -> dict[str, int]:
    """Mark what went overdue; call up overdue cases where a tier's grace has run out. All in
    the caller's transaction (``run_tick`` gives each call-up its own)."""
    now = now or utcnow()
    marked = notices.on_tick(session, now)
    called = sum(call_up_overdue(session, case_id, tier=tier, now=now)
                 for case_id, tier in due_for_call_up(session, now, limit))
    return {"marked_overdue": marked, "called_up": called}


def run_tick(engine: Engine | None = None, now: datetime | None = None,
             limit: int = 1000) -> dict[str, int]:
    """The tick as cron and the queue pages run it: one short write transaction to mark, then
    one per call-up, so that a backlog of call-ups never holds the write lock for seconds."""
    now = now or utcnow()
    with write_session(engine) as session:
        marked = notices.on_tick(session, now)
    with read_session(engine) as session:
        candidates = due_for_call_up(session, now, limit)
    called = 0
    for case_id, tier in candidates:
        with write_session(engine) as session:
            called += call_up_overdue(session, case_id, tier=tier, now=now)
    return {"marked_overdue": marked, "called_up": called}


TICK_JOB = "tick"


def tick_in_background(engine: Engine | None = None, limit: int = 100) -> bool:
    """Start the tick on a thread (lib.core.jobs: at most once a minute per process, never twice
    at once, a failure logged and retried a minute later); returns at once."""
    engine = engine or get_engine()
    return jobs.start(TICK_JOB, lambda: run_tick(engine, limit=limit))
