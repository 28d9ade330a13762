"""Cases and their ledger (台账): creation, events, consistency, and what waits for a unit.

Every change to a case writes exactly one ``CaseEvent``; the case's ``state`` is always the
``to_state`` of its last event, which ``ledger_mismatches`` checks for the whole database.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from lib.errors import NotFound, PermissionDenied, ValidationFailed
from lib.models import (
    Case,
    CaseEvent,
    CaseState,
    Category,
    Role,
    Severity,
    Source,
    Subcategory,
    Unit,
    UnitKind,
    utcnow,
)
from lib.orgs import Actor, case_scope, in_subtree, place_of_community
from lib.workflow import OPEN_STATES, next_state

# No 0/O, 1/I/L, 2/Z, 5/S: easy to read out over the phone.
CODE_ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"
CODE_LENGTH = 10

DESCRIPTION_MAX = 2000
ADDRESS_MAX = 200
NAME_MAX = 60


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


def append_event(session: Session, case: Case, *, action: str, actor_id: int | None,
                 to_state: str, from_state: str | None, from_unit_id: int | None,
                 to_unit_id: int | None, note: str | None = None,
                 at: datetime | None = None) -> CaseEvent:
    last = session.exec(select(func.max(CaseEvent.seq)).where(CaseEvent.case_id == case.id)).one()
    event = CaseEvent(case_id=case.id, seq=(last or 0) + 1, action=action, at=at or utcnow(),
                      actor_id=actor_id, from_state=from_state, to_state=to_state,
                      from_unit_id=from_unit_id, to_unit_id=to_unit_id, note=note)
    session.add(event)
    session.flush()
    return event


def create_case(session: Session, *, actor: Actor | None, category_id: int,
                subcategory_id: int | None, description: str, address: str, community_id: int,
                severity: str = Severity.general, source: str = Source.resident,
                reporter_name: str | None = None, reporter_phone: str | None = None,
                anonymous: bool = False, latitude: float | None = None,
                longitude: float | None = None, now: datetime | None = None) -> Case:
    """Store a new case at its community with its first event. ``actor`` None: a resident."""
    now = now or utcnow()
    if actor is not None:
        if not actor.has(Role.grid_worker, Role.community_staff, Role.street_staff,
                         Role.district_staff, Role.city_staff, Role.inspector):
            raise PermissionDenied("error.forbidden")
    elif source != Source.resident:
        raise PermissionDenied("error.forbidden")
    category = session.get(Category, category_id)
    if category is None or not category.active:
        raise ValidationFailed("error.category_invalid")
    if subcategory_id is not None:
        sub = session.get(Subcategory, subcategory_id)
        if sub is None or sub.category_id != category.id:
            raise ValidationFailed("error.subcategory_invalid")
    if severity not in {s.value for s in Severity}:
        raise ValidationFailed("error.severity_invalid")
    if source not in {s.value for s in Source}:
        raise ValidationFailed("error.source_invalid")
    community = session.get(Unit, community_id)
    if community is None or community.kind != UnitKind.community:
        raise ValidationFailed("error.not_a_community")
    if actor is not None and not in_subtree(actor.unit_path, community):
        raise PermissionDenied("error.out_of_scope")
    description = _clean_text(description, field="description", max_len=DESCRIPTION_MAX,
                              required=True)
    address = _clean_text(address, field="address", max_len=ADDRESS_MAX, required=True)
    reporter_name = _clean_text(reporter_name, field="name", max_len=NAME_MAX, required=False)
    case = Case(code=new_tracking_code(), category_id=category.id, subcategory_id=subcategory_id,
                description=description, address=address, latitude=latitude,
                longitude=longitude, severity=severity, source=source,
                reporter_name=None if anonymous else reporter_name,
                reporter_phone=None if anonymous else reporter_phone, anonymous=anonymous,
                reported_by_id=actor.id if actor else None, state=CaseState.reported,
                unit_id=community.id, reported_at=now, updated_at=now,
                **place_of_community(session, community))
    session.add(case)
    session.flush()
    append_event(session, case, action="report", actor_id=actor.id if actor else None,
                 from_state=None, to_state=next_state("report", None), from_unit_id=None,
                 to_unit_id=community.id, at=now)
    return case


def get_case(session: Session, actor: Actor, case_id: int) -> Case:
    case = session.exec(select(Case).where(Case.id == case_id, case_scope(actor))).first()
    if case is None:
        raise NotFound("error.case_not_found")
    return case


def events_of(session: Session, case_id: int) -> list[CaseEvent]:
    return list(session.exec(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)).all())


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


# ---------------------------------------------------------------- what waits for me


def _count(session: Session, *conditions) -> int:  # noqa: ANN002
    return session.exec(select(func.count()).select_from(Case).where(*conditions)).one()


def waiting_counts(session: Session, actor: Actor, now: datetime | None = None) -> list[tuple[str, int]]:
    """The home page's tiles for this user: (catalog key, count), most urgent first."""
    now = now or utcnow()
    open_states = sorted(OPEN_STATES)
    at_my_unit = Case.unit_id == actor.unit_id
    scope = case_scope(actor)
    tiles: list[tuple[str, int]] = []
    if actor.has(Role.community_staff, Role.grid_worker):
        tiles.append(("home.to_triage", _count(session, at_my_unit,
                                               Case.state == CaseState.reported)))
    if actor.has(Role.street_staff, Role.district_staff, Role.city_staff):
        tiles.append(("home.calls_from_below", _count(
            session, at_my_unit, Case.state.in_([CaseState.reported, CaseState.accepted]))))
    if actor.has(Role.department_staff):
        tiles.append(("home.work_orders", _count(session, at_my_unit, Case.state.in_(
            [CaseState.dispatched, CaseState.acknowledged, CaseState.in_progress]))))
        tiles.append(("home.to_sign", _count(session, at_my_unit,
                                             Case.state == CaseState.dispatched)))
    if actor.has(Role.community_staff, Role.street_staff, Role.district_staff,
                 Role.city_staff):
        tiles.append(("home.to_verify", _count(session, at_my_unit,
                                               Case.state == CaseState.handled)))
    tiles.append(("home.open_in_scope", _count(session, scope, Case.state.in_(open_states))))
    tiles.append(("home.overdue_in_scope", _count(session, scope, Case.state.in_(open_states),
                                                  Case.overdue.is_(True))))
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    tiles.append(("home.closed_this_month", _count(session, scope,
                                                   Case.state == CaseState.closed,
                                                   Case.closed_at >= month_start)))
    return tiles
