"""Cases and their ledger (台账): intake, duplicates, public tracking and rating, reading a case.

Every change to a case writes exactly one ``CaseEvent``; the case's ``state`` is always the
``to_state`` of its last event, which ``ledger_mismatches`` checks for the whole database.
Moves after intake go through ``lib.actions.act``.

The public side shows nobody else's data: the duplicate hint on the public form names no code,
address or text and never a restricted category; tracking needs a secret the reporter holds
(the phone's last four digits, or a PIN given once at intake), and failed proofs are throttled.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, func, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from lib import permissions, privacy
from lib.actions import act, can_see
from lib.clock import china_day
from lib.db import read_session, write_session
from lib.deadlines import due
from lib.errors import NotFound, PermissionDenied, Throttled, ValidationFailed
from lib.inputs import clean_code, clean_text, parse_id
from lib.models import (
    FINAL_STATES,
    Attachment,
    Case,
    CaseEvent,
    CaseState,
    Category,
    IntakeAttempt,
    Rating,
    Severity,
    Source,
    Subcategory,
    TrackAttempt,
    Unit,
    UnitKind,
    utcnow,
)
from lib.orgs import Actor, case_scope, place_of_community
from lib.photos import Photo, check_photos
from lib.settings import get_int
from lib.workflow import OPEN_STATES, next_state

# No 0/O, 1/I/L, 2/Z, 5/S: easy to read out over the phone.
CODE_ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"
CODE_LENGTH = 10
PIN_DIGITS = 6

DESCRIPTION_MAX = 2000
ADDRESS_MAX = 200
NAME_MAX = 60
REASON_MAX = 1000
PHONE_RE = re.compile(r"^(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})$")  # ASCII digits only
STAFF_SOURCES = {Source.grid_worker, Source.staff, Source.hotline, Source.inspection}

# Failed tracking proofs: per code and per network address, in the last hour.
TRACK_WINDOW = timedelta(hours=1)
TRACK_FAILURES_PER_CODE = 5
TRACK_FAILURES_PER_ADDRESS = 20


def new_tracking_code() -> str:
    """About 47 bits of randomness: not guessable, short enough to read out."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def new_pin() -> str:
    return f"{secrets.randbelow(10 ** PIN_DIGITS):0{PIN_DIGITS}d}"


def pin_hash(code: str, pin: str) -> str:
    """The PIN is kept only as a hash, salted with the case's own code."""
    return "sha256$" + hashlib.sha256(f"{code}:{pin}".encode("ascii")).hexdigest()


def clean_phone(phone: object, *, required: bool) -> str | None:
    if phone is not None and not isinstance(phone, str):
        raise ValidationFailed("error.phone_invalid")
    text = re.sub(r"[\s()]", "", phone or "")
    if text.startswith("+86"):
        text = text[3:]
    if not text:
        if required:
            raise ValidationFailed("error.fields_required", fields=["phone"])
        return None
    if not PHONE_RE.match(text):
        raise ValidationFailed("error.phone_invalid")
    return text


def check_point(latitude: float | None, longitude: float | None) -> tuple[float | None, float | None]:
    """Both or neither; inside China's bounding box (a point in the sea off Africa is a typo)."""
    if latitude is None and longitude is None:
        return None, None
    if not isinstance(latitude, (int, float)) or not isinstance(longitude, (int, float)):
        raise ValidationFailed("error.point_invalid")
    if not (math.isfinite(latitude) and math.isfinite(longitude)
            and 3.0 <= latitude <= 54.0 and 73.0 <= longitude <= 136.0):
        raise ValidationFailed("error.point_invalid")
    return round(latitude, 6), round(longitude, 6)


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dlat = math.radians(lat2 - lat1)
    dlon = math.radians(lon2 - lon1)
    a = math.sin(dlat / 2) ** 2 + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)) \
        * math.sin(dlon / 2) ** 2
    return 6_371_000 * 2 * math.asin(math.sqrt(a))


# ---------------------------------------------------------------- intake


@dataclass
class Report:
    """What a reporter filled in. Checked by ``submit``/``create_case``, never trusted before.

    ``files`` are raw uploads (name, bytes), decoded only after the rate limit and the
    double-submit check; ``photos`` are photos already checked (tests, the demo).
    """

    category_id: int
    community_id: int
    description: str
    address: str
    subcategory_id: int | None = None
    severity: str = Severity.general
    source: str = Source.resident
    reporter_name: str | None = None
    reporter_phone: str | None = None
    anonymous: bool = False
    latitude: float | None = None
    longitude: float | None = None
    photos: list[Photo] = field(default_factory=list)
    files: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class Receipt:
    """What a reporter takes away: the case, and its PIN when it has no phone (shown once;
    None when the same form was submitted again and the first submit already showed it)."""

    case: Case
    pin: str | None = None


_counted = select(func.count()).select_from(IntakeAttempt)
_THROTTLE_COUNTS = select(
    _counted.where(IntakeAttempt.phone == bindparam("phone"),
                   IntakeAttempt.at >= bindparam("since", type_=IntakeAttempt.__table__.c.at.type))
    .scalar_subquery(),
    _counted.where(IntakeAttempt.address == bindparam("address"),
                   IntakeAttempt.at >= bindparam("since", type_=IntakeAttempt.__table__.c.at.type))
    .scalar_subquery())


def _throttle_public(session: Session, phone: str | None, address: str, now: datetime) -> None:
    since = now - timedelta(hours=1)
    by_phone, by_address = session.connection().execute(_THROTTLE_COUNTS, {
        "phone": phone, "address": address, "since": since}).one()
    if phone and by_phone >= get_int(session, "intake.per_phone_per_hour"):
        raise Throttled("error.intake_throttled_phone", minutes=60)
    if by_address >= get_int(session, "intake.per_address_per_hour"):
        raise Throttled("error.intake_throttled_address", minutes=60)
    session.connection().execute(insert(IntakeAttempt),
                                 {"phone": phone, "address": address, "at": now})


def _intake_refs(session: Session, category_id: object, community_id: object) -> dict | None:
    """Category and community facts an intake checks, cached briefly (lib.refcache)."""
    from lib.refcache import cached

    if not isinstance(category_id, int) or not isinstance(community_id, int) \
            or isinstance(category_id, bool) or isinstance(community_id, bool):
        return None

    def category_facts() -> dict | None:
        category = session.get(Category, category_id)
        if category is None:
            return None
        subs = set(session.exec(select(Subcategory.id).where(
            Subcategory.category_id == category_id)).all())
        return {"category_active": category.active, "allow_anonymous": category.allow_anonymous,
                "restricted": category.restricted, "subcategories": subs}

    def community_facts() -> dict:
        community = session.get(Unit, community_id)
        if community is None or community.kind != UnitKind.community:
            return {"place": None, "community_path": ""}
        return {"place": place_of_community(session, community), "community_path": community.path}

    if not 0 < category_id <= 2_147_483_647 or not 0 < community_id <= 2_147_483_647:
        return None
    facts = cached(session, "category", category_id, category_facts)
    if facts is None:
        return None
    return {**facts, **cached(session, "community", community_id, community_facts)}


@dataclass(frozen=True)
class _Checked:
    """A report that passed every check: the values to store."""

    values: dict
    restricted: bool


def _check_report(session: Session, actor: Actor | None, report: Report) -> _Checked:
    """Every check of a report that needs no photo decoding; names all missing fields at once."""
    if actor is not None:
        permissions.require(actor, permissions.REPORTERS)
    elif report.source != Source.resident:
        raise PermissionDenied("error.forbidden")
    refs = _intake_refs(session, report.category_id, report.community_id)
    if refs is None or not refs["category_active"]:
        raise ValidationFailed("error.category_invalid")
    if report.subcategory_id is not None and report.subcategory_id not in refs["subcategories"]:
        raise ValidationFailed("error.subcategory_invalid")
    if report.severity not in {s.value for s in Severity}:
        raise ValidationFailed("error.severity_invalid")
    if report.source not in {s.value for s in Source}:
        raise ValidationFailed("error.source_invalid")
    place = refs["place"]
    if place is None:
        raise ValidationFailed("error.not_a_community")
    if actor is not None and not refs["community_path"].startswith(actor.unit_path):
        raise PermissionDenied("error.out_of_scope")
    anonymous = bool(report.anonymous)
    if anonymous and actor is None and not refs["allow_anonymous"]:
        raise ValidationFailed("error.anonymous_not_allowed")
    missing: list[str] = []
    texts: dict[str, str | None] = {}
    for name, value, max_len, required in (
            ("description", report.description, DESCRIPTION_MAX, True),
            ("address", report.address, ADDRESS_MAX, True),
            ("name", None if anonymous else report.reporter_name, NAME_MAX, False)):
        try:
            texts[name] = clean_text(value, field=name, max_len=max_len, required=required,
                                     multiline=name == "description")
        except ValidationFailed as err:
            if err.key != "error.fields_required":
                raise
            missing.append(name)
    phone = None
    if not anonymous:
        try:
            phone = clean_phone(report.reporter_phone, required=actor is None)
        except ValidationFailed as err:
            if err.key != "error.fields_required":
                raise
            missing.append("phone")
    if missing:
        raise ValidationFailed("error.fields_required", fields=missing)
    latitude, longitude = check_point(report.latitude, report.longitude)
    max_count = get_int(session, "photo.max_count")
    if len(report.photos) + len(report.files) > max_count:
        raise ValidationFailed("error.photo_too_many", max=max_count)
    return _Checked(dict(
        category_id=report.category_id, subcategory_id=report.subcategory_id,
        description=texts["description"], address=texts["address"], latitude=latitude,
        longitude=longitude, severity=report.severity, source=report.source,
        reporter_name=texts["name"], reporter_phone=phone, anonymous=anonymous,
        reported_by_id=actor.id if actor else None, **place),
        restricted=refs["restricted"])


def _insert(session: Session, checked: _Checked, *, photos: list[Photo] | tuple[Photo, ...],
            submit_key: str | None, pin: str | None, now: datetime) -> Case:
    # Core inserts: the ORM's unit of work cost more than the SQL on this, the busiest write.
    conn = session.connection()
    values = checked.values
    code = new_tracking_code()
    case_id = conn.execute(_INSERT_CASE, dict(
        values, code=code, state=CaseState.reported.value, unit_id=values["community_id"],
        owner_id=values["community_id"], reached_tier="community", supervised=False,
        overdue=False, reported_at=now, updated_at=now, version=1,
        sign_due_at=due(session, values["severity"], "sign_for", now), submit_key=submit_key,
        pin_hash=pin_hash(code, pin) if pin else None,
        handler_id=None, merged_into_id=None, review_at=None, handle_due_at=None, rating=None,
        closed_at=None)).scalar_one()
    event_id = conn.execute(_INSERT_EVENT, dict(
        case_id=case_id, seq=1, action="report", at=now, actor_id=values["reported_by_id"],
        from_state=None, to_state=next_state("report", None), from_unit_id=None,
        to_unit_id=values["community_id"], note=None, detail=None)).scalar_one()
    for photo in photos:
        conn.execute(insert(Attachment), dict(
            case_id=case_id, event_id=event_id, kind="report", mime=photo.mime, size=photo.size,
            sha256=photo.sha256, data=photo.data, created_at=now))
    return session.get(Case, case_id)


_INSERT_CASE = insert(Case).returning(Case.id)
_INSERT_EVENT = insert(CaseEvent).returning(CaseEvent.id)


def _by_submit_key(session: Session, submit_key: str | None) -> Case | None:
    if not submit_key:
        return None
    return session.exec(select(Case).where(Case.submit_key == submit_key)).first()


def create_case(session: Session, *, actor: Actor | None, category_id: int,
                subcategory_id: int | None, description: str, address: str, community_id: int,
                severity: str = Severity.general, source: str = Source.resident,
                reporter_name: str | None = None, reporter_phone: str | None = None,
                anonymous: bool = False, latitude: float | None = None,
                longitude: float | None = None, now: datetime | None = None,
                photos: list[Photo] | tuple[Photo, ...] = (), submit_key: str | None = None,
                client_address: str | None = None, pin: str | None = None) -> Case:
    """Store a new case at its community with its first event, in the caller's transaction.
    ``actor`` None: a resident (rate-limited). A ``submit_key`` already used returns that case."""
    now = now or utcnow()
    existing = _by_submit_key(session, submit_key)
    if existing is not None:
        return existing
    report = Report(category_id=category_id, community_id=community_id, description=description,
                    address=address, subcategory_id=subcategory_id, severity=severity,
                    source=source, reporter_name=reporter_name, reporter_phone=reporter_phone,
                    anonymous=anonymous, latitude=latitude, longitude=longitude,
                    photos=list(photos))
    checked = _check_report(session, actor, report)
    if actor is None:
        _throttle_public(session, checked.values["reporter_phone"],
                         (client_address or "unknown")[:64], now)
    return _insert(session, checked, photos=photos, submit_key=submit_key, pin=pin, now=now)


def submit(engine: Engine | None, *, actor: Actor | None, report: Report, submit_key: str,
           client_address: str | None = None, add_to: int | None = None,
           now: datetime | None = None) -> Receipt:
    """Check and store a report; a second submit of the same form (double click, rerun, two
    tabs racing) returns the first case.

    Order: the double-submit check, every field check and the rate limit come first, in one
    short transaction; photos are decoded after them, outside any transaction; then the case is
    stored. A refused photo still counts against the rate limit, so a throttled client cannot
    make the server decode images. ``add_to``: the id of an open similar case the reporter chose
    to join (offered by ``similar_open_cases`` or, for staff, ``find_duplicates``); the new case
    is merged into it at once.
    """
    now = now or utcnow()
    address = (client_address or "unknown")[:64]
    photos = list(report.photos)
    try:
        if report.files:
            with write_session(engine) as session:
                existing = _by_submit_key(session, submit_key)
                if existing is not None:
                    return Receipt(existing)
                checked = _check_report(session, actor, report)
                target = _join_target(session, actor, report, add_to, now)
                if actor is None:
                    _throttle_public(session, checked.values["reporter_phone"], address, now)
            photos += checked_photos(engine, report.files)
        with write_session(engine) as session:
            existing = _by_submit_key(session, submit_key)
            if existing is not None:
                return Receipt(existing)
            checked = _check_report(session, actor, report)
            target = _join_target(session, actor, report, add_to, now)
            if actor is None and not report.files:
                _throttle_public(session, checked.values["reporter_phone"], address, now)
            pin = None if checked.values["reporter_phone"] else new_pin()
            case = _insert(session, checked, photos=photos, submit_key=submit_key, pin=pin,
                           now=now)
            if target is not None:
                case = act(session, None, case.id, "merge", version=case.version,
                           merge_into=target.code, now=now)
            return Receipt(case, pin)
    except IntegrityError:
        with read_session(engine) as session:
            case = _by_submit_key(session, submit_key)
        if case is None:
            raise
        return Receipt(case)


# ---------------------------------------------------------------- similar open cases


@dataclass(frozen=True)
class SimilarCase:
    """What the public form may say of an open case like the one being reported: its category
    and problem, its street and the day it was reported. ``ref`` is the case id, which the form
    keeps on the server and never draws."""

    ref: int
    category_id: int
    subcategory_id: int | None
    street_id: int
    reported_on: date


@dataclass(frozen=True)
class Duplicate:
    """An open similar case as staff see it (in their area, content they may read)."""

    id: int
    code: str
    reported_at: datetime
    state: str
    address: str
    subcategory_id: int | None
    distance_m: float | None


def _open_similar(session: Session, *, category_id: int, community_id: int,
                  latitude: float | None, longitude: float | None, now: datetime,
                  conditions: tuple = ()) -> list[tuple[Case, float | None]]:
    """Open cases of the same category in the same community in the last N days (setting),
    nearest first when a map point is given; farther than the radius drops out then."""
    since = now - timedelta(days=get_int(session, "intake.duplicate_days"))
    rows = session.exec(select(Case).where(
        Case.community_id == community_id, Case.category_id == category_id,
        Case.reported_at >= since, Case.state.in_(sorted(OPEN_STATES)), *conditions)
        .order_by(Case.reported_at.desc()).limit(200)).all()
    radius = get_int(session, "intake.duplicate_radius_m")
    found = []
    for case in rows:
        distance = None
        if latitude is not None and longitude is not None and case.latitude is not None \
                and case.longitude is not None:
            distance = _distance_m(latitude, longitude, case.latitude, case.longitude)
            if distance > radius:
                continue
        found.append((case, distance))
    found.sort(key=lambda pair: (pair[1] is None, pair[1] or 0, -pair[0].reported_at.timestamp()))
    return found


def similar_open_cases(session: Session, *, category_id: int, community_id: int,
                       latitude: float | None = None, longitude: float | None = None,
                       now: datetime | None = None, limit: int = 5) -> list[SimilarCase]:
    """For the public form: never a restricted category, never a code, address or text."""
    refs = _intake_refs(session, category_id, community_id)
    if refs is None or refs["restricted"] or refs["place"] is None:
        return []
    found = _open_similar(session, category_id=category_id, community_id=community_id,
                          latitude=latitude, longitude=longitude, now=now or utcnow())
    return [SimilarCase(c.id, c.category_id, c.subcategory_id, c.street_id,
                        china_day(c.reported_at)) for c, _ in found[:limit]]


def find_duplicates(session: Session, actor: Actor, *, category_id: int, community_id: int,
                    latitude: float | None = None, longitude: float | None = None,
                    now: datetime | None = None, limit: int = 5) -> list[Duplicate]:
    """For staff intake: similar open cases in the actor's area whose content they may read."""
    permissions.require(actor, permissions.REPORTERS | permissions.CASE_READERS)
    found = _open_similar(session, category_id=category_id, community_id=community_id,
                          latitude=latitude, longitude=longitude, now=now or utcnow(),
                          conditions=(case_scope(actor), permissions.content_readable(actor)))
    return [Duplicate(c.id, c.code, c.reported_at, c.state, c.address, c.subcategory_id, d)
            for c, d in found[:limit]]


def _join_target(session: Session, actor: Actor | None, report: Report, add_to: int | None,
                 now: datetime) -> Case | None:
    """The case a reporter chose to join, if it is one the form could have offered them."""
    if add_to is None:
        return None
    kwargs = dict(category_id=report.category_id, community_id=report.community_id,
                  latitude=report.latitude, longitude=report.longitude, now=now, limit=200)
    if actor is None:
        offered = {s.ref for s in similar_open_cases(session, **kwargs)}
    else:
        offered = {d.id for d in find_duplicates(session, actor, **kwargs)}
    if add_to not in offered:
        raise ValidationFailed("error.merge_target_invalid")
    return session.get(Case, add_to)


# ---------------------------------------------------------------- reading


def get_case(session: Session, actor: Actor, case_id: object) -> Case:
    """The case, if ``actor`` may read cases and it lies in their area."""
    permissions.require(actor, permissions.CASE_READERS)
    case = session.get(Case, parse_id(case_id))
    if case is None or not can_see(session, actor, case):
        raise NotFound("error.case_not_found")
    return case


def events_of(session: Session, case_id: int) -> list[CaseEvent]:
    return list(session.exec(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)).all())


def attachments_of(session: Session, case_id: int) -> list[Attachment]:
    return list(session.exec(select(Attachment).where(Attachment.case_id == case_id)
                             .order_by(Attachment.id)).all())


def ledger_mismatches(session: Session, limit: int = 20) -> list[int]:
    """Ids of cases whose state differs from their last event's ``to_state`` (should be none)."""
    last_seq = (select(CaseEvent.case_id, func.max(CaseEvent.seq).label("seq"))
                .group_by(CaseEvent.case_id).subquery())
    last = (select(CaseEvent.case_id, CaseEvent.to_state)
            .join(last_seq, (CaseEvent.case_id == last_seq.c.case_id)
                  & (CaseEvent.seq == last_seq.c.seq)).subquery())
    rows = session.exec(
        select(Case.id).outerjoin(last, last.c.case_id == Case.id)
        .where((last.c.to_state.is_(None)) | (last.c.to_state != Case.state)).limit(limit)
    ).all()
    return list(rows)


# ---------------------------------------------------------------- public tracking


PUBLIC_ACTIONS = {"report", "accept", "reject", "merge", "dispatch", "take", "acknowledge",
                  "start", "handle", "verify", "rework", "feedback", "reopen", "close", "park",
                  "resume", "call_up", "hand_back", "extend", "rate", "add_report"}


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


def _public_case(engine: Engine | None, code: object, proof: object, client_address: str | None,
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


def _can_rate(session: Session, case: Case) -> bool:
    if case.state not in (CaseState.handled, CaseState.verified, CaseState.feedback, CaseState.closed):
        return False
    last_handle = session.exec(select(func.max(CaseEvent.seq)).where(
        CaseEvent.case_id == case.id, CaseEvent.action == "handle")).one() or 0
    rated = session.exec(select(CaseEvent.id).where(
        CaseEvent.case_id == case.id, CaseEvent.seq > last_handle, CaseEvent.actor_id.is_(None),
        CaseEvent.action.in_(["rate", "reopen"]))).first()
    return rated is None


def _tracking_view(session: Session, case: Case) -> Tracking:
    shown = case
    merged_into = None
    if case.state == CaseState.merged and case.merged_into_id:
        target = session.get(Case, case.merged_into_id)
        if target is not None:
            shown, merged_into = target, target.code
    category = session.get(Category, shown.category_id)
    restricted = bool(category and category.restricted)
    if restricted:
        timeline = [(shown.reported_at, "report")]
        if shown.state == CaseState.closed and shown.closed_at:
            timeline.append((shown.closed_at, "close"))
        photos: list[bytes] = []
    else:
        timeline = [(e.at, e.action) for e in events_of(session, shown.id)
                    if e.action in PUBLIC_ACTIONS]
        photos = list(session.exec(select(Attachment.data).where(
            Attachment.case_id == shown.id, Attachment.kind == "result")
            .order_by(Attachment.id)).all())
    can_rate = merged_into is None and not restricted and _can_rate(session, case)
    state = "received" if restricted and shown.state != CaseState.closed else shown.state
    return Tracking(shown.id, case.code, category, state, restricted, case.reported_at,
                    shown.closed_at, timeline, photos, can_rate, shown.rating, shown.version,
                    merged_into)


def track(engine: Engine | None, code: object, proof: object, *,
          client_address: str | None = None, now: datetime | None = None) -> Tracking:
    """The tracking page's view of a case, by its code and the reporter's proof (the phone's
    last four digits, or the PIN given at intake). Failed proofs are throttled per code and per
    address; a wrong code and a wrong proof get the same answer."""
    case_id = _public_case(engine, code, proof, client_address, now or utcnow())
    with read_session(engine) as session:
        return _tracking_view(session, session.get(Case, case_id))


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
    case_id = _public_case(engine, code, proof, client_address, now)
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


# ---------------------------------------------------------------- what waits for me


def _count(session: Session, *conditions) -> int:  # noqa: ANN002
    return session.exec(select(func.count()).select_from(Case).where(*conditions)).one()


def waiting_counts(session: Session, actor: Actor, now: datetime | None = None) -> list[tuple[str, int]]:
    """The home page's tiles for this user: (catalog key, count), most urgent first."""
    from lib.queue import ACTION_TABS, tab_counts

    if not permissions.reads_cases(actor):
        return []
    now = now or utcnow()
    open_states = sorted(OPEN_STATES)
    scope = case_scope(actor)
    tiles: list[tuple[str, int]] = [
        (f"queue.tab.{k}", n) for k, n in tab_counts(session, actor)
        if (k in ACTION_TABS and (n or k in ("triage", "calls", "orders"))) or (k == "supervised" and n)]
    tiles.append(("home.open_in_scope", _count(session, scope, Case.state.in_(open_states))))
    tiles.append(("home.overdue_in_scope", _count(session, case_scope(actor, indexed=False),
                                                  Case.overdue == True,  # noqa: E712
                                                  Case.state.in_(open_states))))
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    tiles.append(("home.closed_this_month", _count(session, scope,
                                                   Case.state == CaseState.closed,
                                                   Case.closed_at >= month_start)))
    return tiles


__all__ = ["FINAL_STATES", "Report", "Receipt", "create_case", "submit", "track", "rate",
           "find_duplicates", "similar_open_cases", "get_case", "events_of", "attachments_of",
           "waiting_counts", "clean_phone"]


@dataclass(frozen=True)
class IntakeOptions:
    categories: list[Category]
    subcategories: dict[int, list[Subcategory]]
    communities: list[tuple[Unit, Unit]]  # (community, its street)
    severities: list  # DeadlineRule rows, in order


def intake_options(session: Session, actor: Actor | None = None) -> IntakeOptions:
    """What the report forms offer: active categories with their problems, the communities
    (all of them for the public; those in the actor's area for staff), severities."""
    from lib.models import DeadlineRule

    categories = list(session.exec(select(Category).where(Category.active.is_(True))
                                   .order_by(Category.sort)).all())
    subs: dict[int, list[Subcategory]] = {}
    for sub in session.exec(select(Subcategory).where(Subcategory.active.is_(True))
                            .order_by(Subcategory.category_id, Subcategory.sort)).all():
        subs.setdefault(sub.category_id, []).append(sub)
    units = {u.id: u for u in session.exec(select(Unit).where(Unit.active.is_(True))).all()}
    communities = sorted(
        ((u, units[u.parent_id]) for u in units.values()
         if u.kind == UnitKind.community and u.parent_id in units
         and (actor is None or u.path.startswith(actor.unit_path))),
        key=lambda pair: (pair[1].code, pair[0].code))
    severities = list(session.exec(select(DeadlineRule).order_by(DeadlineRule.sort)).all())
    return IntakeOptions(categories, subs, communities, severities)


def photo_limits(session: Session) -> dict[str, int]:
    return {"max_count": get_int(session, "photo.max_count"),
            "max_bytes": get_int(session, "photo.max_bytes"),
            "max_pixels": get_int(session, "photo.max_pixels")}


def upload_limits(engine: Engine | None = None) -> dict[str, int]:
    """The photo limits lib enforces, for the upload widgets' captions."""
    with read_session(engine) as session:
        limits = photo_limits(session)
    return {**limits, "max_mb": limits["max_bytes"] // (1024 * 1024)}


def checked_photos(engine: Engine | None, files: list[tuple[str, bytes]]) -> list[Photo]:
    """Uploaded files as re-encoded photos, under the configured count, size and pixel caps.
    Decoding runs outside any transaction."""
    if not files:
        return []
    with read_session(engine) as session:
        limits = photo_limits(session)
    return check_photos(files, **limits)


# ---------------------------------------------------------------- the case page


@dataclass(frozen=True)
class EventView:
    """One line of a case's timeline as this user may read it (``note`` None when hidden)."""

    seq: int
    action: str
    at: datetime
    actor_id: int | None
    from_state: str | None
    to_state: str
    from_unit_id: int | None
    to_unit_id: int | None
    note: str | None
    detail: str | None
    note_hidden: bool = False


@dataclass
class CaseDetail:
    case: Case
    category: Category
    subcategory: Subcategory | None
    units: dict[int, Unit]
    content: privacy.Content  # description, address, point: withheld when not readable
    reporter: privacy.Reporter
    restricted: bool
    events: list[EventView]
    actor_names: dict[int, str]
    photos: list[Attachment]
    orders: list  # WorkOrder rows
    actions: list[str]
    dispatch_targets: list[Unit]
    deadline: datetime | None
    status: str | None

    @property
    def description(self) -> str | None:
        return self.content.description


def _case_detail(session: Session, actor: Actor, case_id: int, now: datetime) -> CaseDetail:
    from lib.actions import dispatch_targets, open_co_units, orders_of
    from lib.deadlines import current_due, deadline_status
    from lib.models import User
    from lib.workflow import allowed_actions

    case = get_case(session, actor, case_id)
    category = session.get(Category, case.category_id)
    restricted = bool(category.restricted)
    content = privacy.content_for(session, actor, case)
    events = [EventView(e.seq, e.action, e.at, e.actor_id, e.from_state, e.to_state,
                        e.from_unit_id, e.to_unit_id,
                        e.note if content.readable else None, e.detail,
                        note_hidden=bool(e.note) and not content.readable)
              for e in events_of(session, case.id)]
    orders = orders_of(session, case.id)
    unit_ids = {case.community_id, case.street_id, case.district_id, case.city_id, case.unit_id,
                case.owner_id, case.handler_id} | {o.unit_id for o in orders} | \
        {e.to_unit_id for e in events} | {e.from_unit_id for e in events}
    unit_ids.discard(None)
    units = {u.id: u for u in session.exec(select(Unit).where(Unit.id.in_(unit_ids))).all()}
    actor_ids = {e.actor_id for e in events if e.actor_id is not None}
    names = dict(session.exec(select(User.id, User.display_name).where(User.id.in_(actor_ids))).all()) \
        if actor_ids else {}
    actions = allowed_actions(actor, case, open_co_units=open_co_units(session, case.id))
    return CaseDetail(
        case=case, category=category,
        subcategory=session.get(Subcategory, case.subcategory_id) if case.subcategory_id else None,
        units=units, content=content, reporter=privacy.reporter_for(session, actor, case),
        restricted=restricted, events=events, actor_names=names,
        photos=attachments_of(session, case.id) if content.readable else [],
        orders=orders, actions=actions,
        dispatch_targets=dispatch_targets(session, case) if "dispatch" in actions else [],
        deadline=current_due(case), status=deadline_status(case, now))


def case_detail(actor: Actor, case_id: object, engine: Engine | None = None,
                now: datetime | None = None) -> CaseDetail:
    """Everything the case page shows to this actor. A restricted case is read in a write
    transaction, so that the access log of what was shown is stored with certainty."""
    now = now or utcnow()
    with read_session(engine) as session:
        case = get_case(session, actor, case_id)
        if not privacy.is_restricted(session, case):
            return _case_detail(session, actor, case.id, now)
    with write_session(engine) as session:
        return _case_detail(session, actor, case.id, now)
