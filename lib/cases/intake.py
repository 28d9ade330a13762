"""Intake (发现、报告): a resident's or a staff member's report becomes a case with its first event,
and the similar open cases a reporter may join instead.

The public form shows nobody else's data: it may say that similar open cases exist and offer to
join one, described only by what the server picks (problem, street, date) — never a code, an
address or someone's words, never a restricted category. Checks run in the cheapest order: the
double-submit check, every field and the rate limit first; photos are decoded last, outside any
transaction.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache

from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from lib.cases import access
from lib.cases.access import case_scope
from lib.cases.deadlines import SIGN_FOR, due
from lib.cases.machine import CASES, act
from lib.cases.models import Case
from lib.cases.photos import Photo, checked_photos, photo_limits
from lib.cases.places import distance_m, place_key
from lib.cases.states import OPEN, Act
from lib.core import machine as move_engine
from lib.core import throttle
from lib.core.clock import china_day
from lib.core.config import DATA_DIR
from lib.core.db import read_session, write_session
from lib.core.errors import PermissionDenied, ValidationFailed
from lib.core.inputs import clean_text
from lib.core.models import Category, DeadlineRule, Role, Severity, Source, Subcategory, UnitKind, utcnow
from lib.core.refcache import cached
from lib.core.settings import get_int
from lib.org import geo, permissions
from lib.org.models import Unit
from lib.org.units import Actor, place_of_community

# No 0/O, 1/I/L, 2/Z, 5/S: easy to read out over the phone.
CODE_ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"
CODE_LENGTH = 10
PIN_DIGITS = 6

DESCRIPTION_MAX = 2000
ADDRESS_MAX = 200
NAME_MAX = 60
REASON_MAX = 1000
PHONE_RE = re.compile(r"^(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})$")  # ASCII digits only
CATEGORIES_FILE = DATA_DIR / "categories.json"
# Inside China's bounding box: a point in the sea off Africa is a typo.
LATITUDES = (3, 54)
LONGITUDES = (73, 136)


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
    """Both or neither; inside China's bounding box (``LATITUDES``, ``LONGITUDES``)."""
    if latitude is None and longitude is None:
        return None, None
    if not isinstance(latitude, (int, float)) or not isinstance(longitude, (int, float)) \
            or isinstance(latitude, bool) or isinstance(longitude, bool):
        raise ValidationFailed("error.point_invalid")
    if not (math.isfinite(latitude) and math.isfinite(longitude)
            and LATITUDES[0] <= latitude <= LATITUDES[1]
            and LONGITUDES[0] <= longitude <= LONGITUDES[1]):
        raise ValidationFailed("error.point_outside", lat_min=LATITUDES[0], lat_max=LATITUDES[1],
                               lon_min=LONGITUDES[0], lon_max=LONGITUDES[1])
    return round(latitude, 6), round(longitude, 6)


def point_from_text(latitude: object, longitude: object) -> tuple[float | None, float | None]:
    """A map point typed as two numbers (both boxes empty: no point), checked by ``check_point``."""
    lat_text = latitude.strip() if isinstance(latitude, str) else ""
    lon_text = longitude.strip() if isinstance(longitude, str) else ""
    if not lat_text and not lon_text:
        return None, None
    try:
        return check_point(float(lat_text), float(lon_text))
    except ValueError:
        raise ValidationFailed("error.point_invalid") from None


def point_from_browser(answer: object) -> tuple[float, float]:
    """The point a browser's geolocation gave (``{"coords": {"latitude": …, "longitude": …}}``),
    checked like a typed one. A refusal, an error or anything else: ``error.location_unavailable``.
    """
    coords = answer.get("coords") if isinstance(answer, Mapping) else None
    if not isinstance(coords, Mapping) or coords.get("latitude") is None \
            or coords.get("longitude") is None:
        raise ValidationFailed("error.location_unavailable")
    latitude, longitude = check_point(coords.get("latitude"), coords.get("longitude"))
    return latitude, longitude  # type: ignore[return-value]


@lru_cache(maxsize=1)
def default_severities() -> dict[str, str]:
    """Each category's default severity (``default_severity`` in data/categories.json, else
    general): what a report starts at until triage judges it."""
    rows = json.loads(CATEGORIES_FILE.read_text(encoding="utf-8"))
    found = {row["key"]: row.get("default_severity", Severity.general.value) for row in rows}
    unknown = {key: value for key, value in found.items() if value not in {s.value for s in Severity}}
    if unknown:
        raise ValueError(f"{CATEGORIES_FILE.name}: unknown default_severity {unknown}")
    return found


def default_severity(category_key: str) -> str:
    """The severity a case of this category starts at, until triage judges it."""
    return default_severities().get(category_key, Severity.general.value)


def triages(actor: Actor | None) -> bool:
    """The actor judges severity as they report (``permissions.TRIAGERS``)."""
    return actor is not None and actor.has(*permissions.TRIAGERS)


def report_sources(actor: Actor) -> list[str]:
    """The sources a staff report may name, the usual one first: a grid worker's or an
    inspector's own finding has one source; tier staff also report for residents and calls."""
    if not triages(actor):
        if actor.has(Role.grid_worker):
            return [Source.grid_worker]
        if actor.has(Role.inspector):
            return [Source.inspection]
    return [Source.grid_worker, Source.staff, Source.hotline]


def default_community(actor: Actor | None, communities: Sequence[tuple[Unit, Unit]]) -> int | None:
    """The community a staff report starts at: the reporter's own, or the only one offered.
    None for the public and for staff above a community: they choose, nothing is assumed."""
    if actor is None:
        return None
    ids = [community.id for community, _street in communities]
    if actor.unit_id in ids:
        return actor.unit_id
    return ids[0] if len(ids) == 1 else None


def community_at(latitude: float | None, longitude: float | None,
                 communities: Sequence[tuple[Unit, Unit]]) -> int | None:
    """The id of the offered community whose boundary (lib.org.geo) holds the point; None
    outside every boundary, or in a community not offered."""
    if latitude is None or longitude is None:
        return None
    code = geo.community_at(longitude, latitude)
    return next((community.id for community, _street in communities if community.code == code), None)


# ---------------------------------------------------------------- intake


@dataclass
class Report:
    """What a reporter filled in. Checked by ``submit``/``create_case``, never trusted before.

    ``files`` are raw uploads (name, bytes), decoded only after the rate limit and the
    double-submit check; ``photos`` are photos already checked (tests, the demo).
    """

    category_id: int | None
    community_id: int | None
    description: str
    address: str
    subcategory_id: int | None = None
    severity: str | None = None  # None: the category's default; only triaging staff set one
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
    """What a reporter takes away: the case, and its PIN (shown once; None for a staff-entered
    report with a phone, and when the same form was submitted again and the first submit
    already showed it)."""

    case: Case
    pin: str | None = None

    @property
    def sms_follows(self) -> bool:
        """Whether the reporter will hear of the progress by SMS (a phone given, not anonymous:
        the rule of lib.cases.notices)."""
        return bool(self.case.reporter_phone) and not self.case.anonymous


INTAKE_WINDOW = timedelta(hours=1)


def _throttle_public(session: Session, phone: str | None, address: str, now: datetime) -> None:
    """Count this public report against its phone and its network address, and refuse it if
    either is at its hourly limit (lib.core.throttle: counted and checked at once, so reports
    sent together cannot all pass a limit that each alone would meet)."""
    limits: dict[str, int | None] = {}
    errors: dict[str, str] = {}
    if phone:
        limits[f"phone:{phone}"] = get_int(session, "intake.per_phone_per_hour")
        errors[f"phone:{phone}"] = "error.intake_throttled_phone"
    limits[f"addr:{address}"] = get_int(session, "intake.per_address_per_hour")
    errors[f"addr:{address}"] = "error.intake_throttled_address"
    throttle.take(session, "intake", limits, window=INTAKE_WINDOW, now=now, error_key=errors)


def _intake_refs(session: Session, category_id: object, community_id: object) -> dict | None:
    """Category and community facts an intake checks, cached briefly (lib.core.refcache)."""
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
                "restricted": category.restricted, "subcategories": subs,
                "default_severity": default_severity(category.key)}

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


def _check_refs(actor: Actor | None, report: Report, refs: dict) -> tuple[str, dict]:
    """The chosen category, subcategory, severity, source and community make sense together:
    the severity the case starts at and the community's place."""
    if report.subcategory_id is not None and report.subcategory_id not in refs["subcategories"]:
        raise ValidationFailed("error.subcategory_invalid")
    severity = refs["default_severity"] if report.severity is None else report.severity
    if severity not in {s.value for s in Severity}:
        raise ValidationFailed("error.severity_invalid")
    if report.source not in {s.value for s in Source}:
        raise ValidationFailed("error.source_invalid")
    if refs["place"] is None:
        raise ValidationFailed("error.not_a_community")
    if actor is not None and not refs["community_path"].startswith(actor.unit_path):
        raise PermissionDenied("error.out_of_scope")
    return severity, refs["place"]


def _check_report(session: Session, actor: Actor | None, report: Report) -> _Checked:
    """Every check of a report that needs no photo decoding; names all missing fields at once."""
    if actor is not None:
        permissions.require(actor, permissions.REPORTERS)
    elif report.source != Source.resident:
        raise PermissionDenied("error.forbidden")
    if report.severity is not None and not triages(actor):
        raise PermissionDenied("error.severity_by_triage")
    # Nothing is chosen for the reporter: a missing category or community is named with every
    # other missing field.
    missing = [name for name, value in (("category", report.category_id),
                                        ("community", report.community_id)) if value is None]
    refs = None if missing else _intake_refs(session, report.category_id, report.community_id)
    if not missing and (refs is None or not refs["category_active"]):
        raise ValidationFailed("error.category_invalid")
    severity, place = _check_refs(actor, report, refs) if refs is not None else ("", {})
    anonymous = bool(report.anonymous)
    if refs is not None and anonymous and actor is None and not refs["allow_anonymous"]:
        raise ValidationFailed("error.anonymous_not_allowed")
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
        longitude=longitude, severity=severity, source=report.source,
        reporter_name=texts["name"], reporter_phone=phone, anonymous=anonymous,
        reported_by_id=actor.id if actor else None, **place),
        restricted=refs["restricted"])


def _insert(session: Session, checked: _Checked, *, actor: Actor | None,
            photos: list[Photo] | tuple[Photo, ...], submit_key: str | None, pin: str | None,
            now: datetime) -> Case:
    """The case row and, through the machine, its first event. ``actor``: the account the event
    names (the staff member, or the one logged in when the public form was sent)."""
    # Core inserts: the ORM's unit of work cost more than the SQL on this, the busiest write.
    conn = session.connection()
    values = checked.values
    code = new_tracking_code()
    case_id = conn.execute(_INSERT_CASE, dict(
        values, code=code, state=CASES.moves[Act.report].to_state, unit_id=values["community_id"],
        owner_id=values["community_id"], reached_tier="community", supervised=False,
        overdue=False, reported_at=now, updated_at=now, version=1, event_seq=1, hurry_count=0,
        extension_until=None, hurried_at=None,
        sign_due_at=due(session, values["severity"], SIGN_FOR, now), submit_key=submit_key,
        pin_hash=pin_hash(code, pin) if pin else None,
        handler_id=None, merged_into_id=None, review_at=None, handle_due_at=None, rating=None,
        closed_at=None, committed_due_at=None, resolved_at=None,
        place_key=place_key(values["address"]))).scalar_one()
    case = session.get(Case, case_id)
    # The first event, the photos, the community's notice of its new work and its wait for the
    # community's triage, as the machine writes them (lib.core.machine.create).
    return move_engine.create(session, CASES, case, Act.report, actor=actor, now=now,
                         values={"photos": list(photos)})


_INSERT_CASE = insert(Case).returning(Case.id)


def _by_submit_key(session: Session, submit_key: str | None) -> Case | None:
    if not submit_key:
        return None
    return session.exec(select(Case).where(Case.submit_key == submit_key)).first()


def create_case(session: Session, report: Report, *, actor: Actor | None,
                now: datetime | None = None, submit_key: str | None = None,
                client_address: str | None = None, pin: str | None = None) -> Case:
    """Store a new case at its community with its first event, in the caller's transaction.
    ``actor`` None: a resident (rate-limited). A ``submit_key`` already used returns that case.
    ``report.photos`` are photos already checked; raw ``files`` go through ``submit``."""
    now = now or utcnow()
    existing = _by_submit_key(session, submit_key)
    if existing is not None:
        return existing
    checked = _check_report(session, actor, report)
    if actor is None:
        _throttle_public(session, checked.values["reporter_phone"],
                         (client_address or "unknown")[:64], now)
    return _insert(session, checked, actor=actor, photos=report.photos, submit_key=submit_key,
                   pin=pin, now=now)


def submit(engine: Engine | None, *, actor: Actor | None, report: Report, submit_key: str,
           client_address: str | None = None, add_to: int | None = None,
           now: datetime | None = None, signed_in: Actor | None = None) -> Receipt:
    """Check and store a report; a second submit of the same form (double click, rerun, two
    tabs racing) returns the first case.

    Order: the double-submit check, every field check and the rate limit come first, in one
    short transaction; photos are decoded after them, outside any transaction; then the case is
    stored. A refused photo still counts against the rate limit, so a throttled client cannot
    make the server decode images. ``signed_in``: the account logged in when the public form was
    sent (a staff member reporting as a resident); the public rules apply, and the account is
    recorded as the reporter's, so the report earns no reward. ``add_to``: the id of an open
    similar case the reporter chose
    to join (offered by ``similar_open_cases`` or, for staff, ``find_duplicates``); the new case
    is merged into it at once.
    """
    now = now or utcnow()
    address = (client_address or "unknown")[:64]
    photos = list(report.photos)

    def check(session: Session, *, throttle: bool) -> tuple[Case | None, _Checked, Case | None]:
        """(the case this form already made, or the checked report and the case to join)."""
        existing = _by_submit_key(session, submit_key)
        if existing is not None:
            return existing, None, None  # type: ignore[return-value]
        checked = _check_report(session, actor, report)
        if actor is None and signed_in is not None:
            checked.values["reported_by_id"] = signed_in.id
        target = _join_target(session, actor, report, add_to, now)
        if throttle and actor is None:
            _throttle_public(session, checked.values["reporter_phone"], address, now)
        return None, checked, target

    try:
        if report.files:
            with write_session(engine) as session:
                existing, _, _ = check(session, throttle=True)
                if existing is not None:
                    return Receipt(existing)
            photos += checked_photos(engine, report.files)
        with write_session(engine) as session:
            existing, checked, target = check(session, throttle=not report.files)
            if existing is not None:
                return Receipt(existing)
            # The PIN opens the case's status: every resident gets one (nothing a staff page
            # shows may do that); staff-entered reports only without a phone.
            pin = new_pin() if actor is None or not checked.values["reporter_phone"] else None
            case = _insert(session, checked, actor=actor or signed_in, photos=photos,
                           submit_key=submit_key, pin=pin, now=now)
            if target is not None:
                case = act(session, None, case.id, Act.merge, version=case.version,
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
    restricted: bool = False  # its listing is a read of restricted content: logged


def _open_similar(session: Session, *, category_id: int, community_id: int,
                  latitude: float | None, longitude: float | None, now: datetime,
                  conditions: tuple = ()) -> list[tuple[Case, float | None]]:
    """Open cases of the same category in the same community in the last N days (setting),
    nearest first when a map point is given; farther than the radius drops out then."""
    since = now - timedelta(days=get_int(session, "intake.duplicate_days"))
    rows = session.exec(select(Case).where(
        Case.community_id == community_id, Case.category_id == category_id,
        Case.reported_at >= since, Case.state.in_(sorted(OPEN)), *conditions)
        .order_by(Case.reported_at.desc()).limit(200)).all()
    radius = get_int(session, "intake.duplicate_radius_m")
    found = []
    for case in rows:
        distance = None
        if latitude is not None and longitude is not None and case.latitude is not None \
                and case.longitude is not None:
            distance = distance_m(latitude, longitude, case.latitude, case.longitude)
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
    """For staff intake: similar open cases in the actor's area whose content they may read
    (a restricted case's code and address are its content; ``similar_for`` logs the listing)."""
    permissions.require(actor, permissions.REPORTERS | permissions.CASE_READERS)
    found = _open_similar(session, category_id=category_id, community_id=community_id,
                          latitude=latitude, longitude=longitude, now=now or utcnow(),
                          conditions=(case_scope(actor), access.content_readable(actor)))
    category = session.get(Category, category_id) if found else None
    restricted = bool(category and category.restricted)
    return [Duplicate(c.id, c.code, c.reported_at, c.state, c.address, c.subcategory_id, d,
                      restricted) for c, d in found[:limit]]


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



@dataclass(frozen=True)
class IntakeOptions:
    categories: list[Category]
    subcategories: dict[int, list[Subcategory]]
    communities: list[tuple[Unit, Unit]]  # (community, its street)
    severities: list  # DeadlineRule rows, in order


def intake_options(session: Session, actor: Actor | None = None) -> IntakeOptions:
    """What the report forms offer: active categories with their problems, the communities
    (all of them for the public; those in the actor's area for staff), severities."""
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




# ---------------------------------------------------------------- what the report forms read


@dataclass(frozen=True)
class IntakeForm:
    options: IntakeOptions
    limits: dict[str, int]  # photo limits, with ``max_mb``


def intake_form(actor: Actor | None, engine: Engine | None = None) -> IntakeForm:
    """The report form's choices: the public's (actor None) or a staff member's area."""
    if actor is not None:
        permissions.require(actor, permissions.REPORTERS)
    with read_session(engine) as session:
        options = intake_options(session, actor)
        limits = photo_limits(session)
    return IntakeForm(options, {**limits, "max_mb": limits["max_bytes"] // (1024 * 1024)})


def similar_for(actor: Actor | None, *, category_id: int, community_id: int,
                engine: Engine | None = None) -> list[SimilarCase] | list[Duplicate]:
    """What the form offers to join: neutral lines for the public, cases for staff. Restricted
    cases listed to staff are logged before they are handed out."""
    with read_session(engine) as session:
        if actor is None:
            return similar_open_cases(session, category_id=category_id, community_id=community_id)
        found = find_duplicates(session, actor, category_id=category_id, community_id=community_id)
    if any(d.restricted for d in found):
        with write_session(engine) as session:
            access.log_views(session, actor, [d.id for d in found if d.restricted], "similar")
    return found
