"""The integrity check of every stored derived value: each case's row and its waits against what
its events give (lib.cases.derive), in chunks of cases so that a million cases are checked in
bounded memory (``python -m lib check-ledger``).

Compared, per case: the report's moment (``reported_at`` is the report event's), closure hours
and working days, the highest tier reached, overdue (as of now, see ``overdue_differs``), the
current deadlines (sign-for or answer, and handling), the first commitment, when it was resolved,
the normalised place, and its waits (unit, kind, start, limit, end, ending move, answered).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from sqlalchemy import bindparam, func
from sqlmodel import Session, select

from lib.cases.deadlines import close_time
from lib.cases.derive import Derived, derive
from lib.cases.models import Case, CaseEvent, CaseWait
from lib.cases.places import place_key
from lib.cases.states import SIGN_WAIT
from lib.core.clock import as_utc
from lib.core.models import DeadlineRule, utcnow
from lib.org.models import User

CHUNK = 2000
SHOWN = 20  # case codes listed per value
# The tick marks a case overdue within a minute of its deadline; a deadline missed longer ago
# than this and not marked is a mismatch.
OVERDUE_GRACE = timedelta(minutes=15)
# The values compared, in the order reported.
VALUES = ("reported_at", "closure_hours", "closure_workdays", "reached_tier", "overdue",
          "sign_due_at", "handle_due_at", "committed_due_at", "resolved_at", "place_key",
          "waits")
_CASE_COLUMNS = (Case.id, Case.code, Case.state, Case.severity, Case.address, Case.community_id,
                 Case.street_id, Case.district_id, Case.city_id, Case.reported_at,
                 Case.closure_hours, Case.closure_workdays, Case.reached_tier, Case.overdue,
                 Case.sign_due_at, Case.handle_due_at, Case.committed_due_at, Case.resolved_at,
                 Case.place_key)
_EVENT_COLUMNS = (CaseEvent.case_id, CaseEvent.action, CaseEvent.at, CaseEvent.actor_id,
                  CaseEvent.to_state, CaseEvent.to_unit_id, CaseEvent.detail)
_WAIT_COLUMNS = (CaseWait.case_id, CaseWait.unit_id, CaseWait.kind, CaseWait.started_at,
                 CaseWait.due_at, CaseWait.ended_at, CaseWait.end_action, CaseWait.answered)


@dataclass
class Mismatches:
    """Per value compared: how many cases differ, and the first ``SHOWN`` of their codes."""

    checked: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    codes: dict[str, list[str]] = field(default_factory=dict)

    def add(self, value: str, code: str) -> None:
        self.counts[value] = self.counts.get(value, 0) + 1
        shown = self.codes.setdefault(value, [])
        if len(shown) < SHOWN:
            shown.append(code)

    def __bool__(self) -> bool:
        return bool(self.counts)


@dataclass(frozen=True)
class Inputs:
    """What a replay needs besides the events, read once."""

    rules: dict
    close: object
    unit_of_user: dict[int, int]
    now: datetime


def inputs(session: Session, now: datetime | None = None, close: time | None = None) -> Inputs:
    """``close``: the close of a working day when the caller read it (a migration, whose
    session runs on its connection, reads the setting itself)."""
    return Inputs({r.severity: r for r in session.exec(select(DeadlineRule)).all()},
                  close or close_time(session),
                  dict(session.exec(select(User.id, User.unit_id)).all()), as_utc(now or utcnow()))


def _same_moment(a: datetime | None, b: datetime | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and as_utc(a) == as_utc(b))


def overdue_differs(stored: bool, derived: Derived, now: datetime) -> bool:
    """Overdue is judged as of now: a case flagged overdue must be past its deadline now, and a
    case past its deadline longer than the tick's grace must be flagged (the tick marks it within
    a minute; no event says so)."""
    if stored:
        return not derived.overdue
    if not derived.overdue:
        return False
    moment = derived.sign_due_at if derived.state in SIGN_WAIT and derived.sign_due_at \
        is not None else derived.handle_due_at
    return moment is None or moment < now - OVERDUE_GRACE


def _wait_tuple(w: object) -> tuple:
    get = (lambda k: w[k]) if isinstance(w, dict) else (lambda k: getattr(w, k))
    return (get("unit_id"), get("kind"), as_utc(get("started_at")), as_utc(get("due_at")),
            as_utc(get("ended_at")) if get("ended_at") is not None else None,
            get("end_action"), bool(get("answered")))


def compare(row: object, derived: Derived, waits: list, now: datetime) -> list[str]:
    """The values of one case (``row``: the stored columns of ``_CASE_COLUMNS``) that differ from
    what its events give."""
    bad = []
    if not _same_moment(row.reported_at, derived.reported_at):
        bad.append("reported_at")
    if (row.closure_hours is None) != (derived.closure_hours is None) or (
            row.closure_hours is not None and abs(row.closure_hours - derived.closure_hours) > 1e-6):
        bad.append("closure_hours")
    if row.closure_workdays != derived.closure_workdays:
        bad.append("closure_workdays")
    if row.reached_tier != derived.reached_tier:
        bad.append("reached_tier")
    if overdue_differs(bool(row.overdue), derived, now):
        bad.append("overdue")
    for name in ("sign_due_at", "handle_due_at", "committed_due_at", "resolved_at"):
        if not _same_moment(getattr(row, name), getattr(derived, name)):
            bad.append(name)
    if (row.place_key or "") != place_key(row.address):
        bad.append("place_key")
    if [_wait_tuple(w) for w in waits] != [_wait_tuple(w) for w in derived.waits]:
        bad.append("waits")
    return bad


def _chunks(session: Session, size: int) -> Iterator[tuple[int, int]]:
    low, high = session.exec(select(func.min(Case.id), func.max(Case.id))).one()
    if low is None:
        return
    for start in range(low, high + 1, size):
        yield start, start + size


def replayed(session: Session, start: int, stop: int, given: Inputs) -> Iterator[tuple]:
    """(stored row, derived, stored waits) of the cases with ids in [start, stop)."""
    rows = session.exec(select(*_CASE_COLUMNS).where(Case.id >= start, Case.id < stop)
                        .order_by(Case.id)).all()
    if not rows:
        return
    events: dict[int, list] = {}
    for event in session.exec(select(*_EVENT_COLUMNS).where(
            CaseEvent.case_id >= start, CaseEvent.case_id < stop)
            .order_by(CaseEvent.case_id, CaseEvent.seq)).all():
        events.setdefault(event.case_id, []).append(event)
    waits: dict[int, list] = {}
    for wait in session.exec(select(*_WAIT_COLUMNS).where(
            CaseWait.case_id >= start, CaseWait.case_id < stop)
            .order_by(CaseWait.case_id, CaseWait.id)).all():
        waits.setdefault(wait.case_id, []).append(wait)
    for row in rows:
        derived = derive(events.get(row.id, []), place=row._mapping, severity=row.severity,
                         rules=given.rules, now=given.now, close=given.close,
                         unit_of_user=given.unit_of_user, case_id=row.id)
        yield row, derived, waits.get(row.id, [])


def derived_mismatches(session: Session, *, now: datetime | None = None,
                       chunk: int = CHUNK) -> Mismatches:
    """Every case's stored derived values against its events, chunk by chunk of case ids."""
    given = inputs(session, now)
    found = Mismatches()
    for start, stop in _chunks(session, chunk):
        for row, derived, waits in replayed(session, start, stop, given):
            found.checked += 1
            if not derived.reported_at:
                found.add("events", row.code)
                continue
            for value in compare(row, derived, waits, given.now):
                found.add(value, row.code)
    return found


def backfill(session: Session, *, chunk: int = CHUNK, now: datetime | None = None,
             close: time | None = None) -> int:
    """Write each case's first commitment, resolution moment, normalised place and waits as its
    events give them (a migration's data step for the cases that existed before these were
    kept). Idempotent: a case's waits are written afresh. Returns the number of cases."""
    given = inputs(session, now, close)
    conn = session.connection()
    update_case = Case.__table__.update().where(Case.__table__.c.id == bindparam("case_id")) \
        .values(committed_due_at=bindparam("committed"), resolved_at=bindparam("resolved"),
                place_key=bindparam("key"))
    done = 0
    for start, stop in _chunks(session, chunk):
        changes, waits = [], []
        for row, derived, _stored in replayed(session, start, stop, given):
            changes.append({"case_id": row.id, "committed": derived.committed_due_at,
                            "resolved": derived.resolved_at, "key": place_key(row.address)})
            waits += derived.waits
        if not changes:
            continue
        conn.execute(CaseWait.__table__.delete().where(CaseWait.__table__.c.case_id >= start,
                                                       CaseWait.__table__.c.case_id < stop))
        conn.execute(update_case, changes)
        if waits:
            conn.execute(CaseWait.__table__.insert(), waits)
        done += len(changes)
    return done
