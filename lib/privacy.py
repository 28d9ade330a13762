"""Personal data of reporters: who sees it in full, masking for everyone else, and the access
log for restricted categories (黄赌毒, special populations; PIPL Art. 28).

Rules (docs/decisions.md):
- ordinary categories: name and phone in full for staff of a unit that handles the case (its
  community, which calls the reporter back; its owner tier; its handling department); masked
  (王**, 138****5678) for everyone else;
- restricted categories: hidden ("保密") from everyone except the handling department and
  holders of the ``sensitive_viewer`` role at district or city; the description (it may name
  persons) only for the units handling the case and those role holders; each full view of
  either is logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from lib.models import AccessLog, Case, Category, Role, utcnow
from lib.orgs import Actor

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


def handles(actor: Actor | None, case: Case) -> bool:
    """The actor is staff of a unit that handles the case: its community, owner, handler, or
    the unit it waits at."""
    if actor is None:
        return False
    return actor.unit_id in {case.community_id, case.owner_id, case.handler_id, case.unit_id} \
        and actor.has(Role.grid_worker, Role.community_staff, Role.street_staff,
                      Role.district_staff, Role.city_staff, Role.department_staff)


def _permitted(actor: Actor, case: Case) -> bool:
    return actor.has(Role.sensitive_viewer) and actor.unit_id in (case.district_id, case.city_id)


def sees_in_full(actor: Actor | None, case: Case, restricted: bool) -> bool:
    """Reporter name and phone unmasked."""
    if actor is None:
        return False
    if restricted:
        return (actor.unit_id == case.handler_id and handles(actor, case)) or _permitted(actor, case)
    return handles(actor, case)


def reads_content(actor: Actor | None, case: Case, restricted: bool) -> bool:
    """The description (which may name persons) of a restricted case: the handling chain needs
    it to act; leaders, inspectors and supervising tiers do not."""
    if not restricted:
        return actor is not None
    return actor is not None and (handles(actor, case) or _permitted(actor, case))


def description_for(session: Session, actor: Actor | None, case: Case) -> str | None:
    """The description, or None when it must stay hidden; full reads of restricted cases are
    logged."""
    restricted = is_restricted(session, case)
    if not reads_content(actor, case, restricted):
        return None
    if restricted:
        session.add(AccessLog(user_id=actor.id, case_id=case.id, at=utcnow(), what="description"))
        session.flush()
    return case.description


def is_restricted(session: Session, case: Case) -> bool:
    category = session.get(Category, case.category_id)
    return bool(category and category.restricted)


def reporter_for(session: Session, actor: Actor | None, case: Case, *, log: bool = True) -> Reporter:
    """The reporter as this actor may see them; writes the access log for restricted cases."""
    restricted = is_restricted(session, case)
    if sees_in_full(actor, case, restricted):
        if restricted and log and (case.reporter_name or case.reporter_phone):
            session.add(AccessLog(user_id=actor.id, case_id=case.id, at=utcnow(), what="reporter"))
            session.flush()
        return Reporter(case.reporter_name, case.reporter_phone, full=True)
    if restricted:
        return Reporter(HIDDEN if case.reporter_name else None,
                        HIDDEN if case.reporter_phone else None, full=False, hidden=True)
    return Reporter(mask_name(case.reporter_name), mask_phone(case.reporter_phone), full=False)
