"""Making a move on a case: the one way any case changes after intake.

``act`` loads the case with a row lock (PostgreSQL; on SQLite the write transaction already
holds the database lock from ``BEGIN IMMEDIATE``), refuses a stale version with "this case
changed, reload", checks the move against ``lib.workflow`` (state and who), applies it, and
writes exactly one event. Work orders (派单) live here too.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, select

from lib.deadlines import current_due, due
from lib.errors import NotFound, PermissionDenied, StaleObject, ValidationFailed
from lib.inputs import clean_code, clean_text, parse_id
from lib.models import (
    Attachment,
    Case,
    CaseEvent,
    CaseState,
    Rating,
    Tier,
    Unit,
    UnitKind,
    WorkOrder,
    WorkOrderState,
    utcnow,
)
from lib.orgs import Actor
from lib.photos import Photo
from lib.workflow import (
    MOVES,
    TIER_RANK,
    child_of_owner,
    may,
    next_state,
    owner_tier,
    parent_of_owner,
)

NOTE_MAX = 1000
MAX_CO_HANDLERS = 5
EXTEND_MAX_DAYS = 90
PARK_MAX_DAYS = 366
OPEN_ORDER = (WorkOrderState.dispatched, WorkOrderState.acknowledged)
RESULT_ACTIONS = {"handle", "co_handle"}
UNREACHABLE = "unreachable"  # a call-back answer: the reporter could not be reached


def clean_note(note: object, *, required: bool) -> str | None:
    try:
        return clean_text(note, field="note", max_len=NOTE_MAX, required=required)
    except ValidationFailed as err:
        if err.key == "error.fields_required":
            raise ValidationFailed("error.note_required") from None
        raise


def lock_case(session: Session, case_id: int) -> Case:
    case = session.exec(select(Case).where(Case.id == case_id).with_for_update()).first()
    if case is None:
        raise NotFound("error.case_not_found")
    session.refresh(case)  # the row as the lock holder sees it, not a cached copy
    return case


def orders_of(session: Session, case_id: int) -> list[WorkOrder]:
    return list(session.exec(select(WorkOrder).where(WorkOrder.case_id == case_id)
                             .order_by(WorkOrder.id)).all())


def open_co_units(session: Session, case_id: int) -> frozenset[int]:
    return frozenset(session.exec(select(WorkOrder.unit_id).where(
        WorkOrder.case_id == case_id, WorkOrder.lead.is_(False),
        WorkOrder.state.in_(OPEN_ORDER))).all())


def can_see(session: Session, actor: Actor, case: Case) -> bool:
    """The case is in the actor's area, or the actor's department has or had an order on it."""
    column = {UnitKind.community: case.community_id, UnitKind.street: case.street_id,
              UnitKind.district: case.district_id, UnitKind.city: case.city_id}.get(actor.unit_kind)
    if column is not None:
        return column == actor.unit_id
    if actor.unit_id in (case.unit_id, case.handler_id):
        return True
    return session.exec(select(WorkOrder.id).where(WorkOrder.case_id == case.id,
                                                   WorkOrder.unit_id == actor.unit_id)).first() is not None


def _lead_order(session: Session, case: Case) -> WorkOrder | None:
    return session.exec(select(WorkOrder).where(WorkOrder.case_id == case.id, WorkOrder.lead.is_(True))
                        .order_by(WorkOrder.id.desc())).first()


def _handling_departments(session: Session, case: Case, unit_ids: list[int]) -> list[Unit]:
    """Departments that serve the case's place: attached to its street, district or city."""
    units = []
    for unit_id in unit_ids:
        unit = session.get(Unit, unit_id)
        if unit is None or unit.kind != UnitKind.department or not unit.active or \
                unit.parent_id not in (case.street_id, case.district_id, case.city_id):
            raise ValidationFailed("error.department_invalid")
        units.append(unit)
    return units


def dispatch_targets(session: Session, case: Case) -> list[Unit]:
    """The departments a case may be dispatched to, the category's own first."""
    from lib.models import DepartmentCategory

    units = list(session.exec(select(Unit).where(
        Unit.kind == UnitKind.department, Unit.active.is_(True),
        Unit.parent_id.in_([case.street_id, case.district_id, case.city_id]))).all())
    own = set(session.exec(select(DepartmentCategory.unit_id).where(
        DepartmentCategory.category_id == case.category_id)).all())
    return sorted(units, key=lambda u: (u.id not in own, u.parent_id != case.street_id, u.code))


def _cancel_open_orders(session: Session, case: Case) -> None:
    for order in session.exec(select(WorkOrder).where(WorkOrder.case_id == case.id,
                                                      WorkOrder.state.in_(OPEN_ORDER))).all():
        order.state = WorkOrderState.cancelled
        session.add(order)


def _actor_order(session: Session, case: Case, actor: Actor) -> WorkOrder:
    order = session.exec(select(WorkOrder).where(
        WorkOrder.case_id == case.id, WorkOrder.unit_id == actor.unit_id,
        WorkOrder.lead.is_(False), WorkOrder.state.in_(OPEN_ORDER))).first()
    if order is None:
        raise PermissionDenied("error.forbidden")
    return order


def _as_utc_deadline(value: datetime, now: datetime, *, max_days: int) -> datetime:
    if value.tzinfo is None:
        raise ValidationFailed("error.date_invalid")
    if value <= now:
        raise ValidationFailed("error.date_not_future")
    if value > now + timedelta(days=max_days):
        raise ValidationFailed("error.date_too_far", days=max_days)
    return value


def act(session: Session, actor: Actor | None, case_id: int, action: str, *, version: int,
        note: str | None = None, now: datetime | None = None, lead_unit_id: int | None = None,
        co_unit_ids: list[int] | tuple[int, ...] = (), rating: str | None = None,
        until: datetime | None = None, merge_into: str | None = None,
        photos: list[Photo] | tuple[Photo, ...] = (), system: bool = False) -> Case:
    """Make ``action`` on case ``case_id`` as ``actor`` (None: the public, or the tick with
    ``system=True``). ``version`` is the case version the user saw."""
    now = now or utcnow()
    move = MOVES.get(action)
    if move is None or action == "report":
        raise ValidationFailed("error.action_unknown")
    case = lock_case(session, parse_id(case_id))
    if actor is not None and not can_see(session, actor, case):
        raise NotFound("error.case_not_found")
    if case.version != version:
        raise StaleObject("error.stale")
    if actor is None and ("system" if system else "public") not in move.who:
        raise PermissionDenied("error.forbidden")
    if case.state not in move.from_states:
        raise ValidationFailed("error.wrong_state")
    co_units = open_co_units(session, case.id) if action.startswith("co_") else frozenset()
    if not may(actor, case, action, open_co_units=co_units):
        raise PermissionDenied("error.forbidden")
    note = clean_note(note, required=move.needs_note and not system)
    from_state, from_unit = case.state, case.unit_id
    to_state = next_state(action, case.state)
    detail: dict[str, object] = {}
    with session.no_autoflush:  # one UPDATE of the case, one version step
        _APPLY[action](session, case, actor, now=now, note=note, lead_unit_id=lead_unit_id,
                       co_unit_ids=list(co_unit_ids), rating=rating, until=until,
                       merge_into=merge_into, detail=detail)
    if photos and action not in RESULT_ACTIONS | {"add_report", "reopen"}:
        raise ValidationFailed("error.photos_not_here")
    case.state = to_state
    case.updated_at = now
    # Overdue means "late now": a move that meets the missed step or sets a new deadline clears
    # it; lateness history stays in the events and the deadlines for the KPIs.
    next_due = current_due(case)
    case.overdue = next_due is not None and next_due < now
    session.add(case)
    try:
        session.flush()  # the version column turns a lost race into StaleDataError here
    except StaleDataError:
        raise StaleObject("error.stale") from None
    event = append_event(session, case, action=action, actor_id=actor.id if actor else None,
                         from_state=from_state, to_state=to_state, from_unit_id=from_unit,
                         to_unit_id=case.unit_id, note=note, at=now,
                         detail=json.dumps(detail, ensure_ascii=False) if detail else None)
    add_photos(session, case, event, photos, kind="result" if action in RESULT_ACTIONS else "report")
    return case


def append_event(session: Session, case: Case, *, action: str, actor_id: int | None,
                 to_state: str, from_state: str | None, from_unit_id: int | None,
                 to_unit_id: int | None, note: str | None = None, at: datetime | None = None,
                 detail: str | None = None) -> CaseEvent:
    from sqlalchemy import func

    last = session.exec(select(func.max(CaseEvent.seq)).where(CaseEvent.case_id == case.id)).one()
    event = CaseEvent(case_id=case.id, seq=(last or 0) + 1, action=action, at=at or utcnow(),
                      actor_id=actor_id, from_state=from_state, to_state=to_state,
                      from_unit_id=from_unit_id, to_unit_id=to_unit_id, note=note, detail=detail)
    session.add(event)
    session.flush()
    return event


def add_photos(session: Session, case: Case, event: CaseEvent, photos: list[Photo] | tuple[Photo, ...],
               *, kind: str) -> None:
    for photo in photos:
        session.add(Attachment(case_id=case.id, event_id=event.id, kind=kind, mime=photo.mime,
                               size=photo.size, sha256=photo.sha256, data=photo.data))
    if photos:
        session.flush()


# ---------------------------------------------------------------- what each move does


def _accept(session, case, actor, *, now, **_):  # noqa: ANN001, ANN202
    # Accepted is not parked: take it on, dispatch or call up within the answer time.
    case.sign_due_at = due(session, case.severity, "answer_call", now)


def _reject(session, case, actor, *, now, **_):  # noqa: ANN001, ANN202
    case.sign_due_at = None


def _merge(session, case, actor, *, now, merge_into, detail, **_):  # noqa: ANN001, ANN202
    code = clean_code(merge_into)
    found = session.exec(select(Case.id).where(Case.code == code)).first() if code else None
    target = lock_case(session, found) if found is not None else None
    if target is None or target.id == case.id or target.community_id != case.community_id \
            or target.state in (CaseState.rejected, CaseState.merged, CaseState.closed):
        raise ValidationFailed("error.merge_target_invalid")
    case.merged_into_id = target.id
    case.sign_due_at = None
    detail["into"] = target.code
    append_event(session, target, action="add_report", actor_id=actor.id if actor else None,
                 from_state=target.state, to_state=target.state, from_unit_id=target.unit_id,
                 to_unit_id=target.unit_id, at=now,
                 detail=json.dumps({"from": case.code}, ensure_ascii=False))


def _dispatch(session, case, actor, *, now, lead_unit_id, co_unit_ids, detail, **_):  # noqa: ANN001, ANN202
    if lead_unit_id is None:
        raise ValidationFailed("error.lead_required")
    co_ids = [u for u in dict.fromkeys(co_unit_ids) if u != lead_unit_id]
    if len(co_ids) > MAX_CO_HANDLERS:
        raise ValidationFailed("error.too_many_cohandlers", max=MAX_CO_HANDLERS)
    lead, *co = _handling_departments(session, case, [lead_unit_id, *co_ids])
    sign_due = due(session, case.severity, "sign_for", now)
    handle_due = due(session, case.severity, "handle", now)
    _cancel_open_orders(session, case)
    for unit in [lead, *co]:
        session.add(WorkOrder(case_id=case.id, unit_id=unit.id, lead=unit is lead,
                              state=WorkOrderState.dispatched, dispatched_by_id=case.owner_id,
                              sign_due_at=sign_due, handle_due_at=handle_due, created_at=now))
    case.unit_id = case.handler_id = lead.id
    case.sign_due_at, case.handle_due_at = sign_due, handle_due
    detail.update(lead=lead.code, co=[u.code for u in co], sign_due=sign_due.isoformat(),
                  handle_due=handle_due.isoformat())


def _take(session, case, actor, *, now, detail, **_):  # noqa: ANN001, ANN202
    case.handler_id = case.owner_id
    case.sign_due_at = None
    case.handle_due_at = due(session, case.severity, "handle", now)
    detail["handle_due"] = case.handle_due_at.isoformat()


def _acknowledge(session, case, actor, *, now, **_):  # noqa: ANN001, ANN202
    order = _lead_order(session, case)
    if order is not None:
        order.state, order.signed_at = WorkOrderState.acknowledged, now
        session.add(order)
    case.sign_due_at = None


def _return(session, case, actor, *, now, **_):  # noqa: ANN001, ANN202
    order = _lead_order(session, case)
    _cancel_open_orders(session, case)  # the co-handlers' orders; the lead's is returned below
    if order is not None:
        order.state = WorkOrderState.returned
        session.add(order)
    case.unit_id = case.owner_id
    case.handler_id = None
    case.handle_due_at = None
    case.sign_due_at = due(session, case.severity, "answer_call", now)


def _nothing(session, case, actor, **_):  # noqa: ANN001, ANN202
    return None


def _handle(session, case, actor, *, now, **_):  # noqa: ANN001, ANN202
    if open_co_units(session, case.id):
        raise ValidationFailed("error.cohandlers_pending")
    order = _lead_order(session, case)
    if order is not None and order.state in OPEN_ORDER:
        order.state, order.handled_at = WorkOrderState.handled, now
        session.add(order)
    case.unit_id = case.community_id  # the community checks on site and calls the reporter back


def _back_to_handler(session: Session, case: Case, now: datetime, *, new_deadline: bool) -> None:
    case.unit_id = case.handler_id or case.owner_id
    order = _lead_order(session, case)
    if order is not None and order.state == WorkOrderState.handled and order.unit_id == case.unit_id:
        order.state, order.handled_at = WorkOrderState.acknowledged, None
        session.add(order)
    if new_deadline:
        case.handle_due_at = due(session, case.severity, "handle", now)
        case.overdue = False


def _rework(session, case, actor, *, now, **_):  # noqa: ANN001, ANN202
    _back_to_handler(session, case, now, new_deadline=False)


def _feedback(session, case, actor, *, rating, detail, **_):  # noqa: ANN001, ANN202
    # The call-back records what the reporter said, or that they could not be reached (no
    # rating at all: a clerk who never asks must not add a 满意 to the figures).
    if rating == UNREACHABLE:
        detail["reached"] = False
        return
    if rating not in {r.value for r in Rating}:
        raise ValidationFailed("error.rating_required")
    case.rating = rating
    detail["rating"] = rating


def _reopen(session, case, actor, *, now, detail, **_):  # noqa: ANN001, ANN202
    if actor is None:
        case.rating = Rating.dissatisfied
        detail["rating"] = Rating.dissatisfied.value
    case.closed_at = None
    _back_to_handler(session, case, now, new_deadline=True)


def _close(session, case, actor, *, now, **_):  # noqa: ANN001, ANN202
    case.closed_at = now


def _park(session, case, actor, *, now, until, detail, **_):  # noqa: ANN001, ANN202
    if until is None:
        raise ValidationFailed("error.review_date_required")
    case.review_at = _as_utc_deadline(until, now, max_days=PARK_MAX_DAYS)
    _cancel_open_orders(session, case)
    case.unit_id = case.owner_id
    case.handler_id = None
    case.sign_due_at = case.handle_due_at = None
    detail["review_at"] = case.review_at.isoformat()


def _resume(session, case, actor, *, now, **_):  # noqa: ANN001, ANN202
    case.review_at = None
    case.sign_due_at = due(session, case.severity, "answer_call", now)


def _call_up(session, case, actor, *, now, detail, **_):  # noqa: ANN001, ANN202
    parent = parent_of_owner(case)
    if parent is None:
        raise ValidationFailed("error.no_higher_tier")
    waiting_here = case.unit_id == case.owner_id
    case.owner_id = parent
    tier = owner_tier(case)
    if TIER_RANK[tier] > TIER_RANK.get(case.reached_tier, 0):
        case.reached_tier = tier
    if waiting_here:
        case.unit_id = parent
        case.sign_due_at = due(session, case.severity, "answer_call", now)
        detail["answer_due"] = case.sign_due_at.isoformat()
    detail["to_tier"] = tier
    if actor is None:
        detail["auto"] = True


def _hand_back(session, case, actor, *, now, detail, **_):  # noqa: ANN001, ANN202
    child = child_of_owner(case)
    if child is None:
        raise ValidationFailed("error.no_lower_tier")
    waiting_here = case.unit_id == case.owner_id
    case.owner_id = child
    if waiting_here:
        case.unit_id = child
        case.sign_due_at = due(session, case.severity, "answer_call", now)
    detail["to_tier"] = owner_tier(case)


def _extend(session, case, actor, *, now, until, detail, **_):  # noqa: ANN001, ANN202
    if until is None:
        raise ValidationFailed("error.date_required")
    until = _as_utc_deadline(until, now, max_days=EXTEND_MAX_DAYS)
    if case.handle_due_at is not None and until <= case.handle_due_at:
        raise ValidationFailed("error.extend_not_later")
    detail.update(old_due=case.handle_due_at.isoformat() if case.handle_due_at else None,
                  new_due=until.isoformat())
    case.handle_due_at = until
    order = _lead_order(session, case)
    if order is not None and order.state in OPEN_ORDER:
        order.handle_due_at = until
        session.add(order)


def _supervise(session, case, actor, **_):  # noqa: ANN001, ANN202
    case.supervised = True


def _co_acknowledge(session, case, actor, *, now, **_):  # noqa: ANN001, ANN202
    order = _actor_order(session, case, actor)
    if order.state != WorkOrderState.dispatched:
        raise ValidationFailed("error.wrong_state")
    order.state, order.signed_at = WorkOrderState.acknowledged, now
    session.add(order)


def _co_return(session, case, actor, **_):  # noqa: ANN001, ANN202
    order = _actor_order(session, case, actor)
    order.state = WorkOrderState.returned
    session.add(order)


def _co_handle(session, case, actor, *, now, **_):  # noqa: ANN001, ANN202
    order = _actor_order(session, case, actor)
    order.state, order.handled_at = WorkOrderState.handled, now
    order.signed_at = order.signed_at or now
    session.add(order)


def _rate(session, case, actor, *, rating, detail, **_):  # noqa: ANN001, ANN202
    if rating not in (Rating.satisfied, Rating.basically_satisfied):
        raise ValidationFailed("error.rating_required")
    case.rating = rating
    detail["rating"] = rating


_APPLY = {
    "accept": _accept, "reject": _reject, "merge": _merge, "dispatch": _dispatch, "take": _take,
    "acknowledge": _acknowledge, "return": _return, "start": _nothing, "handle": _handle,
    "verify": _nothing, "rework": _rework, "feedback": _feedback, "reopen": _reopen,
    "close": _close, "park": _park, "resume": _resume, "call_up": _call_up,
    "hand_back": _hand_back, "extend": _extend, "supervise": _supervise,
    "co_acknowledge": _co_acknowledge, "co_return": _co_return, "co_handle": _co_handle,
    "add_report": _nothing, "rate": _rate,
}


def system_call_up(session: Session, case_id: int, *, tier: str, hours: int, now: datetime) -> int:
    """The tick's automatic call-up of one overdue case; 0 if someone moved it meanwhile."""
    case = lock_case(session, case_id)
    if not case.overdue or owner_tier(case) != tier or case.unit_id != case.owner_id:
        return 0
    act(session, None, case.id, "call_up", version=case.version, now=now, system=True)
    return 1


__all__ = ["act", "append_event", "can_see", "dispatch_targets", "open_co_units", "orders_of",
           "Tier"]
