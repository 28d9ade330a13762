"""Who may see a case, and what of it: the one module that decides it.

- **Scope**: the cases a user's unit may see at all: a tier unit the cases of the communities
  below it, a department the cases it holds or has had a work order on. ``case_scope`` says it
  in SQL for lists, ``can_see`` in Python for one row; they must agree (a test checks it for
  every demo account against cases of every kind).
- **Content** (description, address, map point, photos, event notes) of a restricted case
  (黄赌毒, special populations; PIPL Art. 28): only for the handling chain and district or
  city ``sensitive_viewer`` holders (``reads_content``; ``content_readable`` in SQL).
- **Reporter** name and phone: in full for the units handling the case, masked (王*,
  138****5678) for other readers; for restricted categories hidden ("***") from all but the
  handling department and ``sensitive_viewer`` holders (``sees_reporter``).
- Each full read of a restricted case's content or reporter writes an ``access_log`` row.

The role sets (who reads cases at all) stay in ``lib.org.permissions``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, or_, select
from sqlmodel import Session

from lib.cases import orders
from lib.cases.models import AccessLog, Case, WorkOrder
from lib.core.models import Category, Role, UnitKind, utcnow
from lib.org.permissions import UNIT_STAFF, reads_cases
from lib.org.units import Actor

# ---------------------------------------------------------------- scope

_SCOPE_COLUMN = {
    UnitKind.city: Case.city_id,
    UnitKind.district: Case.district_id,
    UnitKind.street: Case.street_id,
    UnitKind.community: Case.community_id,
}


def case_scope(actor: Actor, *, indexed: bool = True) -> ColumnElement[bool]:
    """SQL condition: the cases this actor's unit may see (``can_see`` for a list).

    A tier unit sees the cases of the communities below it (a case with a tier unit is always
    inside that unit's subtree, so one indexed equality suffices); a department sees the cases
    it holds or has had a work order on.
    """
    column = _SCOPE_COLUMN.get(UnitKind(actor.unit_kind))
    if column is not None:
        # ``indexed=False``: "col + 0" keeps the planner on a narrower index (overdue,
        # supervised) that covers the scope columns, instead of walking the whole area.
        return column == actor.unit_id if indexed else (column + 0) == actor.unit_id
    return or_(Case.unit_id == actor.unit_id, Case.handler_id == actor.unit_id,
               Case.id.in_(select(WorkOrder.case_id).where(WorkOrder.unit_id == actor.unit_id)))


def can_see(session: Session, actor: Actor, case: Case) -> bool:
    """The case is in the actor's area, or the actor's department has or had an order on it
    (``case_scope`` for one row)."""
    column = _SCOPE_COLUMN.get(UnitKind(actor.unit_kind))
    if column is not None:
        return getattr(case, column.key) == actor.unit_id
    return actor.unit_id in (case.unit_id, case.handler_id) or \
        orders.has_order(session, case.id, actor.unit_id)


# ---------------------------------------------------------------- content and reporter


def handles(actor: Actor | None, case: Case) -> bool:
    """The actor is staff of a unit that handles the case: its community (which checks on site
    and calls the reporter back), its owner tier, its handler, or the unit it waits at."""
    return actor is not None and actor.has(*UNIT_STAFF) and actor.unit_id in {
        case.community_id, case.owner_id, case.handler_id, case.unit_id}


def holds_sensitive_permit(actor: Actor) -> bool:
    """The actor may read restricted content somewhere: the permission, at a district or city
    (``sensitive_permit`` for one case, ``content_readable`` in SQL)."""
    return actor.has(Role.sensitive_viewer) and actor.unit_kind in (UnitKind.district, UnitKind.city)


def sensitive_permit(actor: Actor | None, case: Case) -> bool:
    """District or city staff with the explicit permission for restricted categories."""
    return actor is not None and actor.has(Role.sensitive_viewer) and \
        actor.unit_id in (case.district_id, case.city_id)


def reads_content(actor: Actor | None, case: Case, restricted: bool) -> bool:
    """Description, address, map point, photos and event notes."""
    if not reads_cases(actor):
        return False
    if not restricted:
        return True
    return handles(actor, case) or sensitive_permit(actor, case)


def sees_reporter(actor: Actor | None, case: Case, restricted: bool) -> bool:
    """Reporter name and phone unmasked."""
    if actor is None:
        return False
    if restricted:
        return (actor.unit_id == case.handler_id and handles(actor, case)) or \
            sensitive_permit(actor, case)
    return handles(actor, case)


def restricted_categories():  # noqa: ANN201
    """Subquery of the restricted categories' ids."""
    return select(Category.id).where(Category.restricted.is_(True))


def content_readable(actor: Actor) -> ColumnElement[bool]:
    """SQL: the case's content is readable by ``actor`` (``reads_content`` as a condition), so
    that search and filters run only over what the user may read."""
    if not reads_cases(actor):
        return false()
    chain = or_(Case.community_id == actor.unit_id, Case.owner_id == actor.unit_id,
                Case.handler_id == actor.unit_id, Case.unit_id == actor.unit_id) \
        if actor.has(*UNIT_STAFF) else false()
    permit = or_(Case.district_id == actor.unit_id, Case.city_id == actor.unit_id) \
        if holds_sensitive_permit(actor) else false()
    return or_(Case.category_id.not_in(restricted_categories()), chain, permit)


# ---------------------------------------------------------------- masking and the access log

HIDDEN = "***"


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "*" * max(len(name) - 1, 1)


@dataclass(frozen=True)
class Reporter:
    name: str | None
    phone: str | None
    full: bool  # False: masked or hidden
    hidden: bool = False


@dataclass(frozen=True)
class Content:
    """What a case says and where, or ``readable=False`` with all of it withheld."""

    readable: bool
    description: str | None = None
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None


def is_restricted(session: Session, case: Case) -> bool:
    category = session.get(Category, case.category_id)
    return bool(category and category.restricted)


def log_view(session: Session, actor: Actor, case_id: int, what: str) -> None:
    log_views(session, actor, [case_id], what)


def log_views(session: Session, actor: Actor, case_ids: Iterable[int], what: str) -> None:
    """One access-log row per restricted case shown (``what``: content, reporter, or the list
    that named it: merge_list, similar)."""
    now = utcnow()
    for case_id in dict.fromkeys(case_ids):
        session.add(AccessLog(user_id=actor.id, case_id=case_id, at=now, what=what))
    session.flush()


def content_for(session: Session, actor: Actor | None, case: Case, *, log: bool = True) -> Content:
    """The case's content as ``actor`` may read it; a full read of a restricted case is logged."""
    restricted = is_restricted(session, case)
    if not reads_content(actor, case, restricted):
        return Content(readable=False)
    if restricted and log:
        log_view(session, actor, case.id, "content")
    return Content(True, case.description, case.address, case.latitude, case.longitude)


def reporter_for(session: Session, actor: Actor | None, case: Case, *, log: bool = True) -> Reporter:
    """The reporter as this actor may see them; a full view of a restricted one is logged."""
    restricted = is_restricted(session, case)
    if sees_reporter(actor, case, restricted):
        if restricted and log and (case.reporter_name or case.reporter_phone):
            log_view(session, actor, case.id, "reporter")
        return Reporter(case.reporter_name, case.reporter_phone, full=True)
    if restricted:
        return Reporter(HIDDEN if case.reporter_name else None,
                        HIDDEN if case.reporter_phone else None, full=False, hidden=True)
    return Reporter(mask_name(case.reporter_name), mask_phone(case.reporter_phone), full=False)
