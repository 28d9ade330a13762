"""Public tracking (反馈): the reporter follows their case, rates the result and hurries it
(催办), proving each time that the case is theirs.

The proof is a secret the reporter holds: the phone's last four digits, or the PIN given once at
intake to a case without a phone. Failed proofs are throttled per code and per network address,
counted for codes that do not exist too, and a wrong code and a wrong proof get the same answer.
The reporter sees plain-language states and times, never staff names, notes or personal data;
a restricted case shows only "received" and "closed". Two things staff write do reach the
reporter: the result of the handling (处置结果, the note of the last ``handle`` while that result
stands), shown as plain text, and the expected completion (the handling deadline once the case
is dispatched or taken on, "to be set" before, the closing time once closed) — neither for a
restricted case, which shows only its closing time.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases.detail import events_of
from lib.cases.intake import PIN_DIGITS, REASON_MAX, pin_hash
from lib.cases.machine import CASES, PUBLIC_ACTIONS, act, context
from lib.core.db import read_session, write_session
from lib.core.errors import NotFound, Throttled, ValidationFailed
from lib.core.inputs import clean_code, clean_text
from lib.core.models import Attachment, Case, CaseEvent, CaseState, Category, Rating, TrackAttempt, utcnow

# Failed tracking proofs: per code and per network address, in the last hour.
TRACK_WINDOW = timedelta(hours=1)
TRACK_FAILURES_PER_CODE = 5
TRACK_FAILURES_PER_ADDRESS = 20
# States in which the last handling result stands (a rework or a reopen takes it back).
RESULT_STATES = (CaseState.handled, CaseState.verified, CaseState.feedback, CaseState.closed)


@dataclass(frozen=True)
class Tracking:
    """What a reporter may see: no staff names, no personal data, no internal notes."""

    case_id: int
    code: str
    category: Category
    state: str
    restricted: bool
    reported_at: datetime
    closed_at: datetime | None
    timeline: list[tuple[datetime, str]]  # (when, action)
    result_photos: list[bytes]
    can_rate: bool
    rating: str | None
    version: int
    merged_into: str | None = None
    can_hurry: bool = False  # 催办: once per working day while the case is open
    hurry_count: int = 0
    result: str | None = None  # the handler's words, as typed: to be shown as plain text
    expected: str | None = None  # pending (set when dispatched), due, closed; None: nothing to say
    expected_at: datetime | None = None


def _proof_ok(case: Case, proof: object) -> bool:
    """The phone's last four digits, or the PIN of a case without a phone."""
    digits = re.sub(r"[^0-9]", "", proof) if isinstance(proof, str) and len(proof) <= 32 else ""
    if case.reporter_phone:
        return len(digits) == 4 and secrets.compare_digest(digits, case.reporter_phone[-4:])
    if case.pin_hash:
        return len(digits) == PIN_DIGITS and \
            secrets.compare_digest(pin_hash(case.code, digits), case.pin_hash)
    return False  # neither: nobody can prove it is theirs, so nobody opens it


def _track_throttle(session: Session, code: str, address: str, now: datetime) -> None:
    since = now - TRACK_WINDOW
    counted = select(func.count()).select_from(TrackAttempt).where(TrackAttempt.at >= since)
    by_code = session.exec(counted.where(TrackAttempt.code == code)).one() if code else 0
    by_address = session.exec(counted.where(TrackAttempt.address == address)).one()
    if by_code >= TRACK_FAILURES_PER_CODE or by_address >= TRACK_FAILURES_PER_ADDRESS:
        raise Throttled("error.track_throttled", minutes=int(TRACK_WINDOW.total_seconds() // 60))


def prove(engine: Engine | None, code: object, proof: object, client_address: str | None,
                 now: datetime) -> int:
    """The id of the case whose code and proof match, after the throttle; a failure is recorded
    and answered the same whether the code or the proof was wrong."""
    text = clean_code(code)
    address = (client_address or "unknown")[:64]
    with read_session(engine) as session:
        _track_throttle(session, text, address, now)
        case = session.exec(select(Case).where(Case.code == text)).first() if text else None
        if case is not None and _proof_ok(case, proof):
            return case.id
    with write_session(engine) as session:
        session.add(TrackAttempt(code=text or "-", address=address, at=now))
    raise NotFound("error.tracking_not_found")


def _expected(case: Case, restricted: bool) -> tuple[str | None, datetime | None]:
    """When the reporter may expect the case done: its handling deadline, "to be set" before it
    is dispatched or taken on, the closing time once closed; nothing for a rejected case, nor
    for a restricted one before it is closed (that would tell more than "received")."""
    if case.state == CaseState.closed:
        return "closed", case.closed_at
    if restricted or case.state in (CaseState.rejected, CaseState.merged):
        return None, None
    if case.handle_due_at is not None:
        return "due", case.handle_due_at
    return "pending", None


def _result(events: list[CaseEvent], case: Case) -> str | None:
    """The note of the last handling, while that result stands."""
    if case.state not in RESULT_STATES:
        return None
    handled = [e.note for e in events if e.action == "handle"]
    return handled[-1] if handled and handled[-1] else None


def _can_rate(session: Session, case: Case) -> bool:
    if case.state not in RESULT_STATES:
        return False
    last_handle = session.exec(select(func.max(CaseEvent.seq)).where(
        CaseEvent.case_id == case.id, CaseEvent.action == "handle")).one() or 0
    rated = session.exec(select(CaseEvent.id).where(
        CaseEvent.case_id == case.id, CaseEvent.seq > last_handle, CaseEvent.actor_id.is_(None),
        CaseEvent.action.in_(["rate", "reopen"]))).first()
    return rated is None


def _tracking_view(session: Session, case: Case, now: datetime) -> Tracking:
    shown = case
    merged_into = None
    if case.state == CaseState.merged and case.merged_into_id:
        target = session.get(Case, case.merged_into_id)
        if target is not None:
            shown, merged_into = target, target.code
    category = session.get(Category, shown.category_id)
    restricted = bool(category and category.restricted)
    result = None
    if restricted:
        timeline = [(shown.reported_at, "report")]
        if shown.state == CaseState.closed and shown.closed_at:
            timeline.append((shown.closed_at, "close"))
        photos: list[bytes] = []
    else:
        events = events_of(session, shown.id)
        timeline = [(e.at, e.action) for e in events if e.action in PUBLIC_ACTIONS]
        result = _result(events, shown)
        photos = list(session.exec(select(Attachment.data).where(
            Attachment.case_id == shown.id, Attachment.kind == "result")
            .order_by(Attachment.id)).all())
    can_rate = merged_into is None and not restricted and _can_rate(session, case)
    can_hurry = merged_into is None and CASES.may(None, case, "hurry", context(session, case, now))
    state = "received" if restricted and shown.state != CaseState.closed else shown.state
    expected, expected_at = _expected(shown, restricted)
    return Tracking(shown.id, case.code, category, state, restricted, case.reported_at,
                    shown.closed_at, timeline, photos, can_rate, shown.rating, shown.version,
                    merged_into, can_hurry, shown.hurry_count, result, expected, expected_at)


def track(engine: Engine | None, code: object, proof: object, *,
          client_address: str | None = None, now: datetime | None = None) -> Tracking:
    """The tracking page's view of a case, by its code and the reporter's proof (the phone's
    last four digits, or the PIN given at intake). Failed proofs are throttled per code and per
    address; a wrong code and a wrong proof get the same answer."""
    now = now or utcnow()
    case_id = prove(engine, code, proof, client_address, now)
    with read_session(engine) as session:
        return _tracking_view(session, session.get(Case, case_id), now)


def rate(engine: Engine | None, *, code: object, proof: object, rating: object,
         reason: object = None, version: int, client_address: str | None = None,
         now: datetime | None = None) -> Case:
    """The reporter rates the handling, proving again that the case is theirs. A rating must be
    chosen; 不满意 needs a reason and reopens the case."""
    now = now or utcnow()
    if rating not in {r.value for r in Rating}:
        raise ValidationFailed("error.rating_required")
    reason = clean_text(reason, field="reason", max_len=REASON_MAX)
    if rating == Rating.dissatisfied and not reason:
        raise ValidationFailed("error.reason_required")
    case_id = prove(engine, code, proof, client_address, now)
    with write_session(engine) as session:
        case = session.get(Case, case_id)
        category = session.get(Category, case.category_id)
        if not _can_rate(session, case) or case.state == CaseState.merged or \
                (category is not None and category.restricted):
            raise ValidationFailed("error.cannot_rate")
        if rating == Rating.dissatisfied:
            return act(session, None, case.id, "reopen", version=version, note=reason, now=now)
        return act(session, None, case.id, "rate", version=version, rating=rating, note=reason,
                   now=now)



def hurry(engine: Engine | None, *, code: object, proof: object, version: int,
          note: object = None, client_address: str | None = None,
          now: datetime | None = None) -> Case:
    """催办: the reporter asks for the case to be hurried, once per working day while it is
    open, proving again that it is theirs. The queue shows the flag and the count."""
    now = now or utcnow()
    case_id = prove(engine, code, proof, client_address, now)
    with write_session(engine) as session:
        case = session.get(Case, case_id)
        if case.state == CaseState.merged or not CASES.may(None, case, "hurry",
                                                            context(session, case, now)):
            raise ValidationFailed("error.cannot_hurry")
        return act(session, None, case.id, "hurry", version=version, now=now, note=note)
