"""Work orders (派单): one per department a case is dispatched to, the lead (主办) or a co-handler
(协办), each with its own sign-for and handling deadline. The case's state follows the lead
order; co-handlers sign for and report on their own."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from lib.cases.models import Case, WorkOrder, WorkOrderState
from lib.cases.states import ORDER_OPEN
from lib.core.errors import PermissionDenied, ValidationFailed
from lib.core.models import UnitKind
from lib.org.models import DepartmentCategory, Unit
from lib.org.units import Actor

OPEN_ORDER = sorted(ORDER_OPEN)  # as SQL wants it


def orders_of(session: Session, case_id: int) -> list[WorkOrder]:
    return list(session.exec(select(WorkOrder).where(WorkOrder.case_id == case_id)
                             .order_by(WorkOrder.id)).all())


def open_co_units(session: Session, case_id: int) -> frozenset[int]:
    return frozenset(session.exec(select(WorkOrder.unit_id).where(
        WorkOrder.case_id == case_id, WorkOrder.lead.is_(False),
        WorkOrder.state.in_(OPEN_ORDER))).all())


def has_order(session: Session, case_id: int, unit_id: int) -> bool:
    return session.exec(select(WorkOrder.id).where(WorkOrder.case_id == case_id,
                                                   WorkOrder.unit_id == unit_id)).first() is not None


def lead_order(session: Session, case: Case) -> WorkOrder | None:
    return session.exec(select(WorkOrder).where(WorkOrder.case_id == case.id, WorkOrder.lead.is_(True))
                        .order_by(WorkOrder.id.desc())).first()


def actor_order(session: Session, case: Case, actor: Actor) -> WorkOrder:
    """The open co-handling order of the actor's department on the case."""
    order = session.exec(select(WorkOrder).where(
        WorkOrder.case_id == case.id, WorkOrder.unit_id == actor.unit_id,
        WorkOrder.lead.is_(False), WorkOrder.state.in_(OPEN_ORDER))).first()
    if order is None:
        raise PermissionDenied("error.forbidden")
    return order


def cancel_open(session: Session, case: Case) -> None:
    for order in session.exec(select(WorkOrder).where(WorkOrder.case_id == case.id,
                                                      WorkOrder.state.in_(OPEN_ORDER))).all():
        order.state = WorkOrderState.cancelled
        session.add(order)


def add(session: Session, case: Case, unit: Unit, *, lead: bool, sign_due: datetime,
        handle_due: datetime, now: datetime) -> None:
    session.add(WorkOrder(case_id=case.id, unit_id=unit.id, lead=lead,
                          state=WorkOrderState.dispatched, dispatched_by_id=case.owner_id,
                          sign_due_at=sign_due, handle_due_at=handle_due, created_at=now))


def serving_departments(session: Session, case: Case, unit_ids: list[int]) -> list[Unit]:
    """The departments, each checked to serve the case's place: attached to its street,
    district or city, and active."""
    units = []
    for unit_id in unit_ids:
        unit = session.get(Unit, unit_id) if isinstance(unit_id, int) else None
        if unit is None or unit.kind != UnitKind.department or not unit.active or \
                unit.parent_id not in (case.street_id, case.district_id, case.city_id):
            raise ValidationFailed("error.department_invalid")
        units.append(unit)
    return units


def dispatch_targets(session: Session, case: Case) -> list[Unit]:
    """The departments a case may be dispatched to, the category's own first, the street's
    before the district's."""
    units = list(session.exec(select(Unit).where(
        Unit.kind == UnitKind.department, Unit.active.is_(True),
        Unit.parent_id.in_([case.street_id, case.district_id, case.city_id]))).all())
    own = _serving(session, case)
    return sorted(units, key=lambda u: (u.id not in own, u.parent_id != case.street_id, u.code))


def _serving(session: Session, case: Case) -> set[int]:
    """The departments whose type handles the case's category."""
    return set(session.exec(select(DepartmentCategory.unit_id).where(
        DepartmentCategory.category_id == case.category_id)).all())


def default_department(session: Session, case: Case) -> int | None:
    """The first of ``dispatch_targets`` when it serves the case's category (street before
    district), the department a batch dispatch sends the case to; None when none serves it."""
    targets = dispatch_targets(session, case)
    return targets[0].id if targets and targets[0].id in _serving(session, case) else None
