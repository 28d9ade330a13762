"""Deadlines (时限) from the severity rules and the working-day calendar, deadline status, and
the tick that marks overdue cases and, where a tier's settings say so, calls them up.

``python -m lib.cli tick`` runs it (idempotent: cron every minute is fine); queue pages run it
lazily, at most once a minute per process.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.models import Case, CaseState, DeadlineRule, Tier, utcnow
from lib.settings import get_int
from lib.workcal import add_duration

S = CaseState
SIGN_STATES = (S.reported, S.accepted, S.dispatched)  # waiting for an answer or a signature
HANDLE_STATES = (S.dispatched, S.acknowledged, S.in_progress)
DUE_SOON = timedelta(hours=4)


def due(session: Session, severity: str, kind: str, start: datetime) -> datetime:
    """``kind``: sign_for, handle or answer_call."""
    from lib.refcache import cached

    def load() -> tuple[int, str]:
        rule = session.get(DeadlineRule, severity) or session.get(DeadlineRule, "general")
        if rule is None:
            return 1, "working_days"
        return getattr(rule, f"{kind}_value"), getattr(rule, f"{kind}_unit")

    value, unit = cached(session, "deadline", (severity, kind), load)
    return add_duration(start, value, unit)


def current_due(case: Case) -> datetime | None:
    """The next deadline that matters for the case as it stands."""
    if case.state in SIGN_STATES and case.sign_due_at is not None:
        return case.sign_due_at
    if case.state in HANDLE_STATES:
        return case.handle_due_at
    return None


def deadline_status(case: Case, now: datetime | None = None) -> str | None:
    """on_time, due_soon or overdue; None when no deadline runs."""
    now = now or utcnow()
    when = current_due(case)
    if when is None:
        return "overdue" if case.overdue and case.state in SIGN_STATES + HANDLE_STATES else None
    if when < now or case.overdue:
        return "overdue"
    return "due_soon" if when - now < DUE_SOON else "on_time"


def _past_due(now: datetime):  # noqa: ANN202
    return or_(and_(Case.state.in_(SIGN_STATES), Case.sign_due_at < now),
               and_(Case.state.in_(HANDLE_STATES), Case.handle_due_at < now))


def mark_overdue(session: Session, now: datetime) -> int:
    """Marking overdue is a derived flag, not a move: it writes no event and leaves the version
    alone, so nobody's open form goes stale because a clock ticked."""
    return session.exec(  # type: ignore[call-overload]
        update(Case).where(Case.overdue == False, Case.state.in_(SIGN_STATES + HANDLE_STATES),  # noqa: E712
                           _past_due(now)).values(overdue=True)
        .execution_options(synchronize_session=False)).rowcount or 0


def due_for_call_up(session: Session, now: datetime, limit: int) -> list[tuple[int, str, int]]:
    """(case id, tier, grace hours) of overdue cases whose tier's grace has run out."""
    found: list[tuple[int, str, int]] = []
    for tier, column in ((Tier.community, Case.community_id), (Tier.street, Case.street_id),
                         (Tier.district, Case.district_id)):
        hours = get_int(session, f"auto_call_up_hours.{tier}")
        if hours <= 0:
            continue
        ids = session.exec(
            select(Case.id).where(Case.overdue == True, Case.state.in_(SIGN_STATES + HANDLE_STATES),  # noqa: E712
                                  Case.owner_id == column, Case.unit_id == Case.owner_id,
                                  _past_due(now - timedelta(hours=hours)))
            .order_by(Case.id).limit(limit)).all()
        found.extend((case_id, tier, hours) for case_id in ids)
    return found[:limit]


def tick(session: Session, now: datetime | None = None, limit: int = 1000) -> dict[str, int]:
    """Mark what went overdue; call up overdue cases where a tier's grace has run out. All in
    the caller's transaction (``run_tick`` gives each call-up its own)."""
    from lib.actions import system_call_up

    now = now or utcnow()
    marked = mark_overdue(session, now)
    called = sum(system_call_up(session, case_id, tier=tier, hours=hours, now=now)
                 for case_id, tier, hours in due_for_call_up(session, now, limit))
    return {"marked_overdue": marked, "called_up": called}


def run_tick(engine: Engine | None = None, now: datetime | None = None,
             limit: int = 1000) -> dict[str, int]:
    """The tick as cron and the queue pages run it: one short write transaction to mark, then
    one per call-up, so that a backlog of call-ups never holds the write lock for seconds."""
    from lib.actions import system_call_up
    from lib.db import read_session, write_session

    now = now or utcnow()
    with write_session(engine) as session:
        marked = mark_overdue(session, now)
    with read_session(engine) as session:
        candidates = due_for_call_up(session, now, limit)
    called = 0
    for case_id, tier, hours in candidates:
        with write_session(engine) as session:
            called += system_call_up(session, case_id, tier=tier, hours=hours, now=now)
    return {"marked_overdue": marked, "called_up": called}


_last_tick = 0.0
_tick_lock = threading.Lock()


def maybe_tick(engine: Engine | None = None, every_seconds: float = 60.0,
               limit: int = 100) -> dict[str, int] | None:
    """Run the tick if this process has not run it in the last minute (queue pages call this
    through ``tick_in_background``, so nobody waits for it)."""
    global _last_tick

    if time.monotonic() - _last_tick < every_seconds or not _tick_lock.acquire(blocking=False):
        return None
    try:
        result = run_tick(engine, limit=limit)
        _last_tick = time.monotonic()
        return result
    finally:
        _tick_lock.release()


def tick_in_background(engine: Engine | None = None) -> None:
    """Start ``maybe_tick`` on a thread if a minute has passed; returns at once."""
    if time.monotonic() - _last_tick < 60.0:
        return
    from lib.db import get_engine

    engine = engine or get_engine()
    threading.Thread(target=_quiet_tick, args=(engine,), daemon=True, name="tick").start()


def _quiet_tick(engine: Engine) -> None:
    import logging

    try:
        maybe_tick(engine)
    except Exception:  # noqa: BLE001  (a failed tick is retried next minute; the page is fine)
        logging.getLogger(__name__).exception("tick failed")
