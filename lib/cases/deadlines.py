"""Deadlines (时限) from the severity rules and the working-day calendar, and deadline status.

A limit in working days ends at the close of the working day, China time (setting
``deadline.close_of_day``, default 17:30): 1 working day from a report on Monday, at any hour,
ends Tuesday at the close; limits in hours and minutes are exact (lib.core.workcal). A picked
day (an extension, a review date) means the close of that working day too. The case page and
the queue read the same ``deadline_status``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy import case as sql_case
from sqlmodel import Session

from lib.cases.models import Case
from lib.cases.states import DUE, HANDLING, OPEN, SIGN_WAIT
from lib.core.clock import time_of_day
from lib.core.models import DeadlineRule, utcnow
from lib.core.refcache import cached
from lib.core.settings import get_str
from lib.core.workcal import CHINA_TZ, CLOSE_OF_DAY, add_duration

# SQL wants a sequence, in a fixed order so that a statement is cached once.
_SIGN, _HANDLE, _DUE, _OPEN = sorted(SIGN_WAIT), sorted(HANDLING), sorted(DUE), sorted(OPEN)
DUE_SOON = timedelta(hours=4)
# The limits a deadline rule sets (its columns ``<kind>_value`` and ``<kind>_unit``).
SIGN_FOR, HANDLE, ANSWER_CALL = "sign_for", "handle", "answer_call"


def limit_of(rule: DeadlineRule | None, kind: str) -> tuple[int, str]:
    """(value, unit) of one limit of a severity's rule; one working day without a rule."""
    if rule is None:
        return 1, "working_days"
    return getattr(rule, f"{kind}_value"), getattr(rule, f"{kind}_unit")


def due_by(rule: DeadlineRule | None, kind: str, start: datetime,
           close: time = CLOSE_OF_DAY) -> datetime:
    """The deadline of ``kind`` under ``rule`` for a step made at ``start`` (the demo's
    generator dates its cases with it, as ``due`` dates a move)."""
    value, unit = limit_of(rule, kind)
    return add_duration(start, value, unit, close=close)


def due(session: Session, severity: str, kind: str, start: datetime) -> datetime:
    """The deadline of ``kind`` (sign_for, handle or answer_call) for a step made at ``start``."""
    def load() -> tuple[int, str]:
        return limit_of(session.get(DeadlineRule, severity)
                        or session.get(DeadlineRule, "general"), kind)

    value, unit = cached(session, "deadline", (severity, kind), load)
    return add_duration(start, value, unit, close=close_time(session))


def close_time(session: Session) -> time:
    """The end of a working day (``deadline.close_of_day``, "HH:MM"), 17:30 if unreadable."""
    try:
        return time_of_day(get_str(session, "deadline.close_of_day"))
    except ValueError:
        return CLOSE_OF_DAY


def close_of_day(session: Session, day: date) -> datetime:
    """A picked day as a deadline: the close of that working day, China time."""
    return datetime.combine(day, close_time(session), tzinfo=CHINA_TZ)


def current_due(case: Case) -> datetime | None:
    """The next deadline that matters for the case as it stands."""
    if case.state in SIGN_WAIT and case.sign_due_at is not None:
        return case.sign_due_at
    if case.state in HANDLING:
        return case.handle_due_at
    return None


def status_of(state: str, due_at: datetime | None, overdue: bool, now: datetime) -> str | None:
    """on_time, due_soon or overdue; None when no deadline runs in this state."""
    if state not in DUE:
        return None
    return status_by(due_at, now, overdue)


def status_by(due_at: datetime | None, now: datetime, overdue: bool = False) -> str | None:
    """on_time, due_soon or overdue against ``due_at`` (None: overdue if flagged, else none)."""
    if due_at is None:
        return "overdue" if overdue else None
    if due_at < now or overdue:
        return "overdue"
    return "due_soon" if due_at - now < DUE_SOON else "on_time"


def deadline_status(case: Case, now: datetime | None = None) -> str | None:
    return status_of(case.state, current_due(case), case.overdue, now or utcnow())


def current_due_sql():  # noqa: ANN201
    """SQL: ``current_due`` as a column expression (NULL where no deadline runs)."""
    return sql_case(
        (and_(Case.state.in_(_SIGN), Case.sign_due_at.is_not(None)), Case.sign_due_at),
        (Case.state.in_(_HANDLE), Case.handle_due_at), else_=None)


def past_due(now: datetime):  # noqa: ANN201
    """SQL: the deadline that matters in the case's state has passed (``is_past_due``)."""
    return or_(and_(Case.state.in_(_SIGN), Case.sign_due_at < now),
               and_(Case.state.in_(_HANDLE), Case.handle_due_at < now))


def is_past_due(state: str, sign_due_at: datetime | None, handle_due_at: datetime | None,
                now: datetime) -> bool:
    """``past_due`` for one case's values (the demo's generator marks its cases with it)."""
    return (state in SIGN_WAIT and sign_due_at is not None and sign_due_at < now) or \
        (state in HANDLING and handle_due_at is not None and handle_due_at < now)


def open_due() -> tuple:
    """SQL: a case in a state where a deadline runs, not yet marked overdue."""
    return (Case.overdue.is_(False), Case.state.in_(_DUE))


def overdue_open(now: datetime) -> tuple:
    """SQL: the cases counted as 超期 (overdue) wherever the word is shown — the home tile, the
    ledger's filter, the queue's tab and its rows' 超期N小时, monitoring's 当前超期: open, and
    flagged overdue by the tick or a move, or past the deadline that matters in its state now
    and not flagged yet (``past_due``: without the tick running, a first load still agrees with
    the rows). Not the assessment's 工单超期率, which counts lead work orders."""
    # "= true", not "IS TRUE": PostgreSQL reads an index for equality only.
    return (Case.state.in_(_OPEN), or_(Case.overdue == True, past_due(now)))  # noqa: E712


def mark_overdue(session: Session, now: datetime) -> int:
    """Marking overdue is a derived flag, not a move: it writes no event and leaves the version
    alone, so nobody's open form goes stale because a clock ticked."""
    return session.exec(  # type: ignore[call-overload]
        update(Case).where(*open_due(), past_due(now)).values(overdue=True)
        .execution_options(synchronize_session=False)).rowcount or 0
