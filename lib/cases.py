"""Cases and their ledger (台账): intake, duplicates, public tracking and rating, reading a case.

Every change to a case writes exactly one ``CaseEvent``; the case's ``state`` is always the
``to_state`` of its last event, which ``ledger_mismatches`` checks for the whole database.
Moves after intake go through ``lib.actions.act``.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from lib.actions import act, can_see
from lib.deadlines import due
from lib.errors import NotFound, PermissionDenied, Throttled, ValidationFailed
from lib.models import (
    FINAL_STATES,
    Attachment,
    Case,
    CaseEvent,
    CaseState,
    Category,
    IntakeAttempt,
    Rating,
    Role,
    Severity,
    Source,
    Subcategory,
    Unit,
    UnitKind,
    utcnow,
)
from lib.orgs import Actor, case_scope, place_of_community
from lib.photos import Photo
from lib.settings import get_int
from lib.workflow import OPEN_STATES, next_state

# No 0/O, 1/I/L, 2/Z, 5/S: easy to read out over the phone.
CODE_ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"
CODE_LENGTH = 10

DESCRIPTION_MAX = 2000
ADDRESS_MAX = 200
NAME_MAX = 60
PHONE_RE = re.compile(r"^(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})$")  # ASCII digits only
STAFF_SOURCES = {Source.grid_worker, Source.staff, Source.hotline, Source.inspection}


def new_tracking_code() -> str:
    """About 47 bits of randomness: not guessable, short enough to read out."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _clean_text(value: str | None, *, field: str, max_len: int, required: bool) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise ValidationFailed("error.field_required", field=field)
        return None
    if len(text) > max_len:
        raise ValidationFailed("error.text_too_long", field=field, max=max_len)
    return text


def clean_phone(phone: str | None, *, required: bool) -> str | None:
    text = re.sub(r"[\s()]", "", phone or "")
    if text.startswith("+86"):
        text = text[3:]
    if not text:
        if required:
            raise ValidationFailed("error.phone_required")
        return None
    if not PHONE_RE.match(text):
        raise ValidationFailed("error.phone_invalid")
    return text


def check_point(latitude: float | None, longitude: float | None) -> tuple[float | None, float | None]:
    """Both or neither; inside China's bounding box (a point in the sea off Africa is a typo)."""
    if latitude is None and longitude is None:
        return None, None
    if latitude is None or longitude is None:
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
    """What a reporter filled in. Checked by ``create_case``, never trusted before."""

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

    if not isinstance(category_id, int) or not isinstance(community_id, int):
        return None

    def category_facts() -> dict | None:
        category = session.get(Category, category_id)
        if category is None:
            return None
        subs = set(session.exec(select(Subcategory.id).where(
            Subcategory.category_id == category_id)).all())
        return {"category_active": category.active, "allow_anonymous": category.allow_anonymous,
                "subcategories": subs}

    def community_facts() -> dict:
        community = session.get(Unit, community_id)
        if community is None or community.kind != UnitKind.community:
            return {"place": None, "community_path": ""}
        return {"place": place_of_community(session, community), "community_path": community.path}

    facts = cached(session, "category", category_id, category_facts)
    if facts is None:
        return None
    return {**facts, **cached(session, "community", community_id, community_facts)}


def create_case(session: Session, *, actor: Actor | None, category_id: int,
                subcategory_id: int | None, description: str, address: str, community_id: int,
                severity: str = Severity.general, source: str = Source.resident,
                reporter_name: str | None = None, reporter_phone: str | None = None,
                anonymous: bool = False, latitude: float | None = None,
                longitude: float | None = None, now: datetime | None = None,
                photos: list[Photo] | tuple[Photo, ...] = (), submit_key: str | None = None,
                client_address: str | None = None) -> Case:
    """Store a new case at its community with its first event. ``actor`` None: a resident.

    A ``submit_key`` already used returns that case: a double click makes one case.
    """
    now = now or utcnow()
    if submit_key:
        existing = session.exec(select(Case).where(Case.submit_key == submit_key)).first()
        if existing is not None:
            return existing
    if actor is not None:
        if not actor.has(Role.grid_worker, Role.community_staff, Role.street_staff,
                         Role.district_staff, Role.city_staff, Role.inspector):
            raise PermissionDenied("error.forbidden")
    elif source != Source.resident:
        raise PermissionDenied("error.forbidden")
    refs = _intake_refs(session, category_id, community_id)
    if refs is None or not refs["category_active"]:
        raise ValidationFailed("error.category_invalid")
    if subcategory_id is not None and subcategory_id not in refs["subcategories"]:
        raise ValidationFailed("error.subcategory_invalid")
    if severity not in {s.value for s in Severity}:
        raise ValidationFailed("error.severity_invalid")
    if source not in {s.value for s in Source}:
        raise ValidationFailed("error.source_invalid")
    place = refs["place"]
    if place is None:
        raise ValidationFailed("error.not_a_community")
    if actor is not None and not refs["community_path"].startswith(actor.unit_path):
        raise PermissionDenied("error.out_of_scope")
    description = _clean_text(description, field="description", max_len=DESCRIPTION_MAX,
                              required=True)
    address = _clean_text(address, field="address", max_len=ADDRESS_MAX, required=True)
    latitude, longitude = check_point(latitude, longitude)
    if anonymous and actor is None and not refs["allow_anonymous"]:
        raise ValidationFailed("error.anonymous_not_allowed")
    reporter_name = None if anonymous else _clean_text(reporter_name, field="name",
                                                        max_len=NAME_MAX, required=False)
    reporter_phone = None if anonymous else clean_phone(
        reporter_phone, required=actor is None)
    if len(photos) > get_int(session, "photo.max_count"):
        raise ValidationFailed("error.photo_too_many", max=get_int(session, "photo.max_count"))
    if actor is None:
        _throttle_public(session, reporter_phone, (client_address or "unknown")[:64], now)
    # Core inserts: the ORM's unit of work cost more than the SQL on this, the busiest write.
    conn = session.connection()  # Core, past the ORM's bulk-insert machinery
    case_id = conn.execute(_INSERT_CASE, dict(
        code=new_tracking_code(), category_id=category_id, subcategory_id=subcategory_id,
        description=description, address=address, latitude=latitude, longitude=longitude,
        severity=severity, source=source, reporter_name=reporter_name,
        reporter_phone=reporter_phone, anonymous=anonymous,
        reported_by_id=actor.id if actor else None, state=CaseState.reported.value,
        unit_id=community_id, owner_id=community_id, reached_tier="community", supervised=False,
        overdue=False, reported_at=now, updated_at=now, version=1,
        sign_due_at=due(session, severity, "sign_for", now), submit_key=submit_key,
        handler_id=None, merged_into_id=None, review_at=None, handle_due_at=None, rating=None,
        closed_at=None, **place)).scalar_one()
    event_id = conn.execute(_INSERT_EVENT, dict(
        case_id=case_id, seq=1, action="report", at=now, actor_id=actor.id if actor else None,
        from_state=None, to_state=next_state("report", None), from_unit_id=None,
        to_unit_id=community_id, note=None, detail=None)).scalar_one()
    for photo in photos:
        conn.execute(insert(Attachment), dict(
            case_id=case_id, event_id=event_id, kind="report", mime=photo.mime, size=photo.size,
            sha256=photo.sha256, data=photo.data, created_at=now))
    return session.get(Case, case_id)


_INSERT_CASE = insert(Case).returning(Case.id)
_INSERT_EVENT = insert(CaseEvent).returning(CaseEvent.id)


def submit(engine: Engine | None, *, actor: Actor | None, report: Report, submit_key: str,
           client_address: str | None = None, add_to: str | None = None) -> Case:
    """Create the case in its own write transaction; a second submit of the same form (double
    click, rerun, two tabs racing) returns the first case. ``add_to``: the tracking code of an
    open duplicate the reporter chose to join; the new case is merged into it at once."""
    from lib.db import read_session, write_session

    try:
        with write_session(engine) as session:
            case = create_case(session, actor=actor, category_id=report.category_id,
                               subcategory_id=report.subcategory_id,
                               description=report.description, address=report.address,
                               community_id=report.community_id, severity=report.severity,
                               source=report.source, reporter_name=report.reporter_name,
                               reporter_phone=report.reporter_phone, anonymous=report.anonymous,
                               latitude=report.latitude, longitude=report.longitude,
                               photos=report.photos, submit_key=submit_key,
                               client_address=client_address)
            if add_to and case.state == CaseState.reported:
                act(session, None, case.id, "merge", version=case.version, merge_into=add_to)
            return case
    except IntegrityError:
        with read_session(engine) as session:
            case = session.exec(select(Case).where(Case.submit_key == submit_key)).first()
        if case is None:
            raise
        return case


@dataclass(frozen=True)
class Duplicate:
    code: str
    reported_at: datetime
    state: str
    address: str
    subcategory_id: int | None
    distance_m: float | None


def find_duplicates(session: Session, *, category_id: int, community_id: int,
                    latitude: float | None = None, longitude: float | None = None,
                    now: datetime | None = None, limit: int = 5) -> list[Duplicate]:
    """Open cases of the same category in the same community in the last N days (setting),
    nearest first when a map point is given; farther than the radius drops out then."""
    now = now or utcnow()
    since = now - timedelta(days=get_int(session, "intake.duplicate_days"))
    rows = session.exec(select(Case).where(
        Case.community_id == community_id, Case.category_id == category_id,
        Case.reported_at >= since, Case.state.in_(sorted(OPEN_STATES)))
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
        found.append(Duplicate(case.code, case.reported_at, case.state, case.address,
                               case.subcategory_id, distance))
    found.sort(key=lambda d: (d.distance_m is None, d.distance_m or 0, -d.reported_at.timestamp()))
    return found[:limit]


# ---------------------------------------------------------------- reading


def get_case(session: Session, actor: Actor, case_id: int) -> Case:
    case = session.get(Case, case_id) if isinstance(case_id, int) else None
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
    result_photo_ids: list[int]
    can_rate: bool
    rating: str | None
    version: int
    merged_into: str | None = None


def _last4_ok(case: Case, last4: str | None) -> bool:
    if not case.reporter_phone:
        return True
    digits = re.sub(r"[^0-9]", "", last4 or "")
    return len(digits) == 4 and secrets.compare_digest(digits, case.reporter_phone[-4:])


def _public_case(session: Session, code: str | None, last4: str | None) -> Case:
    text = re.sub(r"[\s-]", "", code or "").upper()
    case = session.exec(select(Case).where(Case.code == text)).first() if \
        0 < len(text) <= 16 else None
    if case is None or not _last4_ok(case, last4):
        raise NotFound("error.tracking_not_found")
    return case


def _can_rate(session: Session, case: Case) -> bool:
    if case.state not in (CaseState.handled, CaseState.verified, CaseState.feedback, CaseState.closed):
        return False
    last_handle = session.exec(select(func.max(CaseEvent.seq)).where(
        CaseEvent.case_id == case.id, CaseEvent.action == "handle")).one() or 0
    rated = session.exec(select(CaseEvent.id).where(
        CaseEvent.case_id == case.id, CaseEvent.seq > last_handle, CaseEvent.actor_id.is_(None),
        CaseEvent.action.in_(["rate", "reopen"]))).first()
    return rated is None


def track(session: Session, code: str | None, phone_last4: str | None) -> Tracking:
    """The tracking page's view of a case, by its code and the last 4 digits of the phone."""
    case = _public_case(session, code, phone_last4)
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
        photos: list[int] = []
    else:
        timeline = [(e.at, e.action) for e in events_of(session, shown.id)
                    if e.action in PUBLIC_ACTIONS]
        photos = list(session.exec(select(Attachment.id).where(
            Attachment.case_id == shown.id, Attachment.kind == "result")).all())
    can_rate = merged_into is None and not restricted and _can_rate(session, case)
    return Tracking(shown.id, case.code, category,
                    "received" if restricted and shown.state not in (CaseState.closed,) else shown.state,
                    restricted, case.reported_at, shown.closed_at, timeline, photos, can_rate,
                    shown.rating, shown.version, merged_into)


def rate(session: Session, *, code: str, phone_last4: str | None, rating: str,
         reason: str | None = None, version: int) -> Case:
    """The reporter rates the handling; 不满意 needs a reason and reopens the case."""
    case = _public_case(session, code, phone_last4)
    if not _can_rate(session, case) or case.state == CaseState.merged:
        raise ValidationFailed("error.cannot_rate")
    category = session.get(Category, case.category_id)
    if category is not None and category.restricted:
        raise ValidationFailed("error.cannot_rate")
    if rating == Rating.dissatisfied:
        if not (reason or "").strip():
            raise ValidationFailed("error.reason_required")
        return act(session, None, case.id, "reopen", version=version, note=reason)
    if rating not in (Rating.satisfied, Rating.basically_satisfied):
        raise ValidationFailed("error.rating_invalid")
    return act(session, None, case.id, "rate", version=version, rating=rating,
               note=reason if (reason or "").strip() else None)


def public_photo(session: Session, code: str, phone_last4: str | None, attachment_id: int) -> bytes:
    tracking = track(session, code, phone_last4)
    if attachment_id not in tracking.result_photo_ids:
        raise NotFound("error.tracking_not_found")
    return session.get(Attachment, attachment_id).data


# ---------------------------------------------------------------- what waits for me


def _count(session: Session, *conditions) -> int:  # noqa: ANN002
    return session.exec(select(func.count()).select_from(Case).where(*conditions)).one()


def waiting_counts(session: Session, actor: Actor, now: datetime | None = None) -> list[tuple[str, int]]:
    """The home page's tiles for this user: (catalog key, count), most urgent first."""
    from lib.queue import ACTION_TABS, tab_counts

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


__all__ = ["FINAL_STATES", "Report", "create_case", "submit", "track", "rate", "find_duplicates",
           "get_case", "events_of", "attachments_of", "waiting_counts", "clean_phone"]


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


def checked_photos(session: Session, files: list[tuple[str, bytes]]) -> list[Photo]:
    """Uploaded files as re-encoded photos, under the configured count, size and pixel caps."""
    from lib.photos import check_photos

    return check_photos(files, max_count=get_int(session, "photo.max_count"),
                        max_bytes=get_int(session, "photo.max_bytes"),
                        max_pixels=get_int(session, "photo.max_pixels"))


# ---------------------------------------------------------------- the case page


@dataclass
class CaseDetail:
    case: Case
    category: Category
    subcategory: Subcategory | None
    units: dict[int, Unit]
    description: str | None  # None: hidden from this user
    reporter: object  # lib.privacy.Reporter
    restricted: bool
    events: list[CaseEvent]
    actor_names: dict[int, str]
    photos: list[Attachment]
    orders: list  # WorkOrder rows
    actions: list[str]
    dispatch_targets: list[Unit]
    deadline: datetime | None
    status: str | None


def _case_detail(session: Session, actor: Actor, case_id: int, now: datetime) -> CaseDetail:
    from lib import privacy
    from lib.actions import dispatch_targets, open_co_units, orders_of
    from lib.deadlines import current_due, deadline_status
    from lib.models import User
    from lib.workflow import allowed_actions

    case = get_case(session, actor, case_id)
    category = session.get(Category, case.category_id)
    restricted = bool(category.restricted)
    events = events_of(session, case.id)
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
    content = privacy.reads_content(actor, case, restricted)
    return CaseDetail(
        case=case, category=category,
        subcategory=session.get(Subcategory, case.subcategory_id) if case.subcategory_id else None,
        units=units, description=privacy.description_for(session, actor, case),
        reporter=privacy.reporter_for(session, actor, case), restricted=restricted,
        events=events, actor_names=names,
        photos=attachments_of(session, case.id) if content else [],
        orders=orders, actions=actions,
        dispatch_targets=dispatch_targets(session, case) if "dispatch" in actions else [],
        deadline=current_due(case), status=deadline_status(case, now))


def case_detail(actor: Actor, case_id: int, engine: Engine | None = None,
                now: datetime | None = None) -> CaseDetail:
    """Everything the case page shows to this actor. A restricted case is read in a write
    transaction, so that the access log of what was shown is stored with certainty."""
    from lib.db import read_session, write_session

    now = now or utcnow()
    with read_session(engine) as session:
        case = get_case(session, actor, case_id)
        restricted = bool(session.get(Category, case.category_id).restricted)
        if not restricted:
            return _case_detail(session, actor, case_id, now)
    with write_session(engine) as session:
        return _case_detail(session, actor, case_id, now)
