"""Public tracking (反馈): the reporter follows their case, rates the result and hurries it
(催办), proving that the case is theirs.

The code (查询码) names the case; it is no secret, since staff see it. The proof is a secret only
the reporter holds, and nothing a staff member can read (a masked phone, a code, an export)
is ever enough:

- to **view** the case: the PIN (查询密码) printed once on the receipt of a public report (and of
  a phone-less report staff entered), or a one-time code (验证码) sent by SMS to the case's
  phone, good for viewing until it expires;
- to **move** it (rate, reopen, hurry, claim a reward): a one-time code sent by SMS to the
  case's phone for that purpose, used once; a case without a phone proves with its PIN.
  A move's proof may be held for the rest of a short visit (``Held``, tracking.held_minutes):
  ``hold`` spends the typed proof and returns a random token, kept only as a hash, bound to the
  case, that proves the next moves on that case until it expires. The page keeps it in the
  browser session on the server, never in an address.

Failed proofs are throttled per code and per network address through lib.core.throttle, counted
and checked in one transaction; codes that do not exist count too, and a wrong code and a wrong
proof get the same answer. Asking for an SMS code answers the same whether or not the case
exists or has a phone, and is throttled per code and per address.

The reporter sees plain-language states and times, never staff names, notes or personal data;
a restricted case shows only "received" and "closed". Two things staff write do reach the
reporter: the result of the handling (处置结果, the note of the last ``handle`` while that result
stands), shown as plain text, and the expected completion (the handling deadline once the case
is dispatched or taken on, "to be set" before, the closing time once closed) — neither for a
restricted case, which shows only its closing time. A report that joined another case (merged)
shows its own report, the plain progress of the shared work and its own rating: never the other
report's code, words, photos, timeline or rating.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases import notices, outbox, timeline
from lib.cases.deadlines import deadline_status
from lib.cases.detail import events_of
from lib.cases.intake import PIN_DIGITS, REASON_MAX, pin_hash
from lib.cases.machine import CASES, PUBLIC_ACTIONS, act, context
from lib.cases.models import Attachment, Case, CaseEvent, ReporterCode
from lib.cases.photos import PhotoKind
from lib.cases.states import DROPPED, RESULT, Act, S
from lib.core import settings, throttle
from lib.core.clock import as_utc
from lib.core.db import write_session
from lib.core.errors import NotFound, ValidationFailed
from lib.core.inputs import clean_code, clean_text
from lib.core.machine import Field, move
from lib.core.models import Category, Rating, utcnow

# Failed tracking proofs are counted per code and per network address over the last hour
# (settings tracking.failures_per_code, tracking.failures_per_address); so are the SMS codes asked
# for (tracking.codes_per_case, tracking.codes_per_address).
TRACK_WINDOW = timedelta(hours=1)
# One-time codes by SMS: what each is for; each lives tracking.code_minutes.<purpose>.
# A code for a move is named after the move: the case machine's rate and hurry, the claim
# machine's claim (a machine of a package above this one).
VIEW, CLAIM = "view", "claim"
PURPOSES = (VIEW, Act.rate, Act.hurry, CLAIM)
HELD = "held"  # a reporter_code row that holds a proven move for the rest of a visit (``hold``)
CODE_DIGITS = 6
RECEIVED = "received"  # all a restricted case shows before it is closed (not a state of its own)
# The reporter's rating as the tracking page asks it (the form's record; no machine runs it):
# one of the three answers, nothing chosen, and a reason, needed for 不满意. ``rate`` makes it
# a rate, a reopen (不满意), or for a report that joined another case a rate_joined.
RATING_FORM = move(Act.rate, None, None, "public", fields=[
    Field("rating", "choice", required=True, choices=tuple(r.value for r in Rating),
          labels="rating"),
    Field("note", "text", max_len=REASON_MAX)])


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
    joined: bool = False  # the report joined another case; its progress is shown, nothing else
    can_hurry: bool = False  # 催办: once per working day while the case is open
    hurry_count: int = 0
    hurry_from: datetime | None = None  # not offered yet: when it will be (or the deadline first)
    result: str | None = None  # the handler's words, as typed: to be shown as plain text
    expected: str | None = None  # pending (set when dispatched), due, closed; None: nothing to say
    expected_at: datetime | None = None
    by_sms: bool = False  # moves are proved with a code sent by SMS (else with the PIN)
    held: Held | None = None  # ``track(hold=True)`` of a phone-less case: its PIN proves moves too

    @property
    def lines(self) -> list[timeline.Line]:
        """The timeline in the reporter's words."""
        return [timeline.public_line(at, action) for at, action in self.timeline]


@dataclass(frozen=True)
class Held:
    """A reporter's proof for moves, held for the rest of a visit: the case's code, a random
    token (only its hash is stored, in ``reporter_code`` with purpose ``held``) and when it
    ends. Pass it as the ``proof`` of ``rate``, ``hurry`` or a claim."""

    code: str
    token: str = field(repr=False)
    expires_at: datetime

    def holds(self, code: object, now: datetime | None = None) -> bool:
        """Whether it may still prove a move on the case with this code."""
        return clean_code(code) == self.code and (now or utcnow()) < self.expires_at


# ---------------------------------------------------------------- one-time codes


def _code_hash(case_code: str, salt: str, digits: str) -> str:
    return "sha256$" + hashlib.sha256(f"{case_code}:{salt}:{digits}".encode("ascii")).hexdigest()


def _purpose(purpose: object) -> str:
    if purpose not in PURPOSES:
        raise ValidationFailed("error.code_purpose_invalid")
    return str(purpose)


def _address(client_address: str | None) -> str:
    return (client_address or "unknown")[:64]


def held_minutes() -> int:
    """How long a proof is held for moves after it was given (tracking.held_minutes)."""
    return settings.get_int(None, "tracking.held_minutes")


def code_ttl(purpose: str) -> timedelta:
    """How long a one-time code sent for ``purpose`` lives."""
    return timedelta(minutes=settings.get_int(None, f"tracking.code_minutes.{_purpose(purpose)}"))


def send_code(engine: Engine | None, code: object, purpose: object, *,
              client_address: str | None = None, gateway: outbox.Gateway | None = None,
              now: datetime | None = None) -> None:
    """Send a one-time code for ``purpose`` by SMS to the phone of the case with this code.
    The answer is the same whether or not the case exists or has a phone (no oracle for codes
    or phones); asking is throttled per code and per address. The SMS leaves at once, quiet
    hours or not: the reporter is waiting for it."""
    purpose = _purpose(purpose)
    now = now or utcnow()
    text = clean_code(code)
    notice_id = None
    with write_session(engine) as session:
        throttle.take(session, "reporter_code",
                      {f"code:{text or '-'}": settings.get_int(None, "tracking.codes_per_case"),
                       f"addr:{_address(client_address)}":
                           settings.get_int(None, "tracking.codes_per_address")},
                      window=TRACK_WINDOW, now=now, error_key="error.code_throttled")
        case = session.exec(select(Case).where(Case.code == text)).first() if text else None
        if case is not None and case.reporter_phone:
            digits = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
            row = ReporterCode(case_id=case.id, purpose=purpose, salt=secrets.token_hex(8),
                               code_hash="", created_at=now, expires_at=now + code_ttl(purpose))
            row.code_hash = _code_hash(case.code, row.salt, digits)
            session.add(row)
            session.flush()
            notice_id = notices.reporter_code(session, case, code_id=row.id, purpose=purpose,
                                              digits=digits, minutes=int(
                                                  code_ttl(purpose).total_seconds() // 60), now=now)
    if notice_id is not None:
        outbox.send_now(engine, notice_id, gateway=gateway, now=now)


def _digits(proof: object) -> str:
    return re.sub(r"[^0-9]", "", proof) if isinstance(proof, str) and len(proof) <= 32 else ""


def _pin_ok(case: Case, digits: str) -> bool:
    return bool(case.pin_hash) and len(digits) == PIN_DIGITS and \
        secrets.compare_digest(pin_hash(case.code, digits), case.pin_hash)


def _sms_code_ok(session: Session, case: Case, digits: str, purpose: str, now: datetime) -> bool:
    """A live code sent for this purpose; a code for a move is used up here (the caller's
    transaction: if the move fails, the code is not spent)."""
    if len(digits) != CODE_DIGITS:
        return False
    live = session.exec(select(ReporterCode).where(
        ReporterCode.case_id == case.id, ReporterCode.purpose == purpose,
        ReporterCode.expires_at > now, ReporterCode.used_at.is_(None))
        .order_by(ReporterCode.id.desc()).limit(settings.get_int(None, "tracking.codes_per_case"))).all()
    for row in live:
        if secrets.compare_digest(_code_hash(case.code, row.salt, digits), row.code_hash):
            if purpose == VIEW:
                return True
            return session.exec(update(ReporterCode).where(  # type: ignore[call-overload]
                ReporterCode.id == row.id, ReporterCode.used_at.is_(None))
                .values(used_at=now)).rowcount == 1
    return False


def _held_ok(session: Session, case: Case, held: Held, now: datetime) -> bool:
    """A proof held for this case that has not expired."""
    if held.code != case.code or not isinstance(held.token, str) or len(held.token) > 64:
        return False
    rows = session.exec(select(ReporterCode).where(
        ReporterCode.case_id == case.id, ReporterCode.purpose == HELD,
        ReporterCode.expires_at > now, ReporterCode.used_at.is_(None))
        .order_by(ReporterCode.id.desc()).limit(20)).all()
    return any(secrets.compare_digest(_code_hash(case.code, row.salt, held.token), row.code_hash)
               for row in rows)


def _hold(session: Session, case: Case, now: datetime) -> Held:
    token = secrets.token_urlsafe(32)
    row = ReporterCode(case_id=case.id, purpose=HELD, salt=secrets.token_hex(8), code_hash="",
                       created_at=now, expires_at=now + timedelta(minutes=held_minutes()))
    row.code_hash = _code_hash(case.code, row.salt, token)
    session.add(row)
    return Held(case.code, token, row.expires_at)


def _proof_ok(session: Session, case: Case, proof: object, purpose: str, now: datetime) -> bool:
    """Viewing: the PIN, or a code sent for viewing. A move: a code sent for that move to the
    case's phone; the PIN only where there is no phone; or a proof held from such a move (or
    from the PIN of a phone-less case) a few minutes ago. A case with neither: nobody."""
    if isinstance(proof, Held):
        return purpose != VIEW and _held_ok(session, case, proof, now)
    digits = _digits(proof)
    if purpose == VIEW or not case.reporter_phone:
        if _pin_ok(case, digits):
            return True
    return bool(case.reporter_phone) and _sms_code_ok(session, case, digits, purpose, now)


def proved(session: Session, code: object, proof: object, purpose: str,
           client_address: str | None, now: datetime) -> Case | None:
    """The case whose code and proof match, inside the caller's write transaction; None after
    a failure, which stays counted (the caller commits, then answers "not found")."""
    text = clean_code(code)
    token = throttle.take(session, "track",
                          {f"code:{text or '-'}": settings.get_int(None, "tracking.failures_per_code"),
                           f"addr:{_address(client_address)}":
                               settings.get_int(None, "tracking.failures_per_address")},
                          window=TRACK_WINDOW, now=now, error_key="error.track_throttled")
    case = session.exec(select(Case).where(Case.code == text)).first() if text else None
    if case is None or not _proof_ok(session, case, proof, purpose, now):
        return None
    throttle.forgive(session, token)
    return case


def prove(engine: Engine | None, code: object, proof: object, client_address: str | None,
          now: datetime, *, purpose: str = VIEW) -> int:
    """The id of the case whose code and proof (for ``purpose``) match, after the throttle; a
    failure is recorded and answered the same whether the code or the proof was wrong. A code
    for a move is used up: prove and move in one transaction where the move can fail
    (``rate``, ``hurry``; lib.rewards.tracking does the same)."""
    with write_session(engine) as session:
        case = proved(session, code, proof, _purpose(purpose), client_address, now)
    if case is None:
        raise NotFound("error.tracking_not_found")
    return case.id


def require_typed(proof: object) -> None:
    """A move's proof box left empty: said so at once, nothing looked up, nothing counted."""
    if not isinstance(proof, Held) and not _digits(proof):
        raise ValidationFailed("error.proof_required")


def hold(engine: Engine | None, code: object, proof: object, purpose: object, *,
         client_address: str | None = None, now: datetime | None = None) -> Held:
    """Prove a move once and hold the proof for the rest of the visit: the typed proof (a code
    sent by SMS for ``purpose``, or the PIN of a phone-less case) is checked and spent like a
    move's, and the answer proves any move on this case until tracking.held_minutes have
    passed. An empty proof is refused before anything is looked up or counted."""
    if isinstance(proof, Held):
        return proof
    require_typed(proof)
    now = now or utcnow()
    purpose = _purpose(purpose)
    if purpose == VIEW:
        raise ValidationFailed("error.code_purpose_invalid")
    with write_session(engine) as session:
        case = proved(session, code, proof, purpose, client_address, now)
        held = _hold(session, case, now) if case is not None else None
    if held is None:
        raise NotFound("error.tracking_not_found")
    return held


def hurry_from(session: Session, case: Case, now: datetime) -> datetime | None:
    """When 催办 is offered: once the case has missed its deadline (now), or
    cases.hurry_after_hours after the report, whichever comes first; and then once per working
    day while the case is open (the machine's guard). None: not while the case stands so."""
    if case.state == S.merged or not CASES.may(None, case, Act.hurry, context(session, case, now)):
        return None
    after = as_utc(case.reported_at) + timedelta(
        hours=settings.get_int(session, "cases.hurry_after_hours"))
    return now if deadline_status(case, now) == "overdue" else after


def hurry_offered(session: Session, case: Case, now: datetime) -> bool:
    """Whether the reporter may hurry the case now (``hurry_from``)."""
    start = hurry_from(session, case, now)
    return start is not None and now >= start


def _expected(case: Case, restricted: bool) -> tuple[str | None, datetime | None]:
    """When the reporter may expect the case done: its handling deadline, "to be set" before it
    is dispatched or taken on, the closing time once closed; nothing for a rejected case, nor
    for a restricted one before it is closed (that would tell more than "received")."""
    if case.state == S.closed:
        return S.closed, case.closed_at
    if restricted or case.state in DROPPED:
        return None, None
    if case.handle_due_at is not None:
        return "due", case.handle_due_at
    return "unset", None  # not dispatched or taken on yet: no date to give


def _result(events: list[CaseEvent], case: Case) -> str | None:
    """The note of the last handling, while that result stands."""
    if case.state not in RESULT:  # a rework or a reopen takes the result back
        return None
    handled = [e.note for e in events if e.action == Act.handle]
    return handled[-1] if handled and handled[-1] else None


def _rated_since_result(session: Session, case_id: int, since_seq: int) -> bool:
    return session.exec(select(CaseEvent.id).where(
        CaseEvent.case_id == case_id, CaseEvent.seq > since_seq, CaseEvent.actor_id.is_(None),
        CaseEvent.action.in_([Act.rate, Act.reopen, Act.rate_joined]))).first() is not None


def _last_handle(session: Session, case_id: int) -> int:
    return session.exec(select(func.max(CaseEvent.seq)).where(
        CaseEvent.case_id == case_id, CaseEvent.action == Act.handle)).one() or 0


def _can_rate(session: Session, case: Case) -> bool:
    """The reporter's own report has a result to rate, and they have not rated it yet. A report
    that joined another case rates the shared result once, on its own report."""
    if case.state == S.merged:
        target = session.get(Case, case.merged_into_id) if case.merged_into_id else None
        return target is not None and target.state in RESULT and case.rating is None
    if case.state not in RESULT:
        return False
    return not _rated_since_result(session, case.id, _last_handle(session, case.id))


def _joined_view(session: Session, case: Case, target: Case, category: Category | None,
                 restricted: bool, now: datetime) -> Tracking:
    """A report merged into another case: its own report and merge, the shared work's plain
    state and expected completion, its own rating. Never the other report's code, words,
    photos, timeline or rating."""
    own = [(e.at, e.action) for e in events_of(session, case.id) if e.action in PUBLIC_ACTIONS]
    if restricted:
        state = S.closed if target.state == S.closed else RECEIVED
    else:
        state = target.state
    expected, expected_at = _expected(target, restricted)
    return Tracking(case.id, case.code, category, state, restricted, case.reported_at,
                    target.closed_at if target.state == S.closed else None, own, [],
                    not restricted and _can_rate(session, case), case.rating, case.version,
                    joined=True, expected=expected, expected_at=expected_at,
                    by_sms=bool(case.reporter_phone))


def _tracking_view(session: Session, case: Case, now: datetime) -> Tracking:
    category = session.get(Category, case.category_id)
    restricted = bool(category and category.restricted)
    if case.state == S.merged and case.merged_into_id:
        target = session.get(Case, case.merged_into_id)
        if target is not None:
            target_category = session.get(Category, target.category_id)
            return _joined_view(session, case, target, category, restricted or bool(
                target_category and target_category.restricted), now)
    result = None
    if restricted:
        timeline = [(case.reported_at, Act.report)]
        if case.state == S.closed and case.closed_at:
            timeline.append((case.closed_at, Act.close))
        photos: list[bytes] = []
    else:
        events = events_of(session, case.id)
        timeline = [(e.at, e.action) for e in events if e.action in PUBLIC_ACTIONS]
        result = _result(events, case)
        photos = list(session.exec(select(Attachment.data).where(
            Attachment.case_id == case.id, Attachment.kind == PhotoKind.result)
            .order_by(Attachment.id)).all())
    can_rate = not restricted and _can_rate(session, case)
    hurry_start = hurry_from(session, case, now)
    can_hurry = hurry_start is not None and now >= hurry_start
    state = RECEIVED if restricted and case.state != S.closed else case.state
    expected, expected_at = _expected(case, restricted)
    return Tracking(case.id, case.code, category, state, restricted, case.reported_at,
                    case.closed_at, timeline, photos, can_rate, case.rating, case.version,
                    can_hurry=can_hurry, hurry_count=case.hurry_count, result=result,
                    hurry_from=None if can_hurry else hurry_start,
                    expected=expected, expected_at=expected_at, by_sms=bool(case.reporter_phone))


def track(engine: Engine | None, code: object, proof: object, *,
          client_address: str | None = None, now: datetime | None = None,
          hold: bool = False) -> Tracking:
    """The tracking page's view of a case, by its code and a proof for viewing (the PIN, or a
    code sent by SMS for viewing). Failed proofs are throttled per code and per address; a
    wrong code and a wrong proof get the same answer. With ``hold``, a phone-less case's view
    carries its PIN held for moves (``Held``): that PIN is the proof its moves ask for."""
    now = now or utcnow()
    with write_session(engine) as session:
        case = proved(session, code, proof, VIEW, client_address, now)
        view = _tracking_view(session, case, now) if case is not None else None
        if view is not None and hold and not case.reporter_phone and _pin_ok(case, _digits(proof)):
            view = replace(view, held=_hold(session, case, now))
    if view is None:
        raise NotFound("error.tracking_not_found")
    return view


def rate(engine: Engine | None, *, code: object, proof: object, rating: object,
         reason: object = None, version: int, client_address: str | None = None,
         now: datetime | None = None) -> Case:
    """The reporter rates the handling with a code sent for rating (or the PIN of a phone-less
    case). A rating must be chosen; 不满意 needs a reason and reopens the case. A report that
    joined another case records its own rating, 不满意 with its reason, on its own report: it
    does not reopen the other reporter's case."""
    now = now or utcnow()
    if rating not in {r.value for r in Rating}:
        raise ValidationFailed("error.rating_required")
    reason = clean_text(reason, field="reason", max_len=REASON_MAX)
    if rating == Rating.dissatisfied and not reason:
        raise ValidationFailed("error.reason_required")
    with write_session(engine) as session:
        case = proved(session, code, proof, Act.rate, client_address, now)
        if case is not None:
            category = session.get(Category, case.category_id)
            if not _can_rate(session, case) or (category is not None and category.restricted):
                raise ValidationFailed("error.cannot_rate")
            if case.state == S.merged:
                return act(session, None, case.id, Act.rate_joined, version=version, rating=rating,
                           note=reason, now=now)
            if rating == Rating.dissatisfied:
                return act(session, None, case.id, Act.reopen, version=version, note=reason,
                           now=now)
            return act(session, None, case.id, Act.rate, version=version, rating=rating,
                       note=reason, now=now)
    raise NotFound("error.tracking_not_found")


def hurry(engine: Engine | None, *, code: object, proof: object, version: int,
          note: object = None, client_address: str | None = None,
          now: datetime | None = None) -> Case:
    """催办: the reporter asks for the case to be hurried, once per working day while it is
    open, with a code sent for hurrying (or the PIN of a phone-less case). The queue shows the
    flag and the count."""
    now = now or utcnow()
    with write_session(engine) as session:
        case = proved(session, code, proof, Act.hurry, client_address, now)
        if case is not None:
            if not hurry_offered(session, case, now):
                raise ValidationFailed("error.cannot_hurry")
            return act(session, None, case.id, Act.hurry, version=version, now=now, note=note)
    raise NotFound("error.tracking_not_found")
