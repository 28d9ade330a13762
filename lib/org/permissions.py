"""Who may do what, defined once: the role sets that the menu, the page guards and every lib
read use, and the rules for reading a case's content and its reporter.

A case has three layers:
- its *record* (code, category, place down to the community, state, deadlines): every case
  reader in whose area it lies;
- its *content* (description, address, map point, photos, event notes): every case reader,
  except for the restricted categories (黄赌毒, special populations), where only the handling
  chain and district or city holders of ``sensitive_viewer`` read it;
- its *reporter* (name, phone): in full for the units handling it, masked for other readers;
  for restricted categories hidden from all but the handling department and ``sensitive_viewer``.

Every full read of a restricted case's content or reporter is written to the access log
(lib.privacy).
"""

from __future__ import annotations

from sqlalchemy import false, or_, select
from sqlalchemy.sql.elements import ColumnElement

from lib.core.errors import PermissionDenied
from lib.core.models import Case, Category, Role, UnitKind
from lib.org.units import Actor

R = Role
# Staff of a tier unit or a department: they work cases in a queue.
CASE_WORKERS = frozenset({R.grid_worker, R.community_staff, R.street_staff, R.district_staff,
                          R.city_staff, R.department_staff})
# Who may file a report on someone's behalf (grid workers on patrol, hotline, inspectors).
# Who judges severity (研判) as they report: staff of a tier unit, who triage cases. Residents,
# grid workers and inspectors report without one; the case starts at its category's default.
TRIAGERS = frozenset({R.community_staff, R.street_staff, R.district_staff, R.city_staff})
REPORTERS = frozenset({R.grid_worker, R.community_staff, R.street_staff, R.district_staff,
                       R.city_staff, R.inspector})
# Who may read cases at all (queue, ledger, case page); each only in their area.
CASE_READERS = CASE_WORKERS | {R.leader, R.inspector}
ADMINS = frozenset({R.admin})
# Discovery rewards: approvers decide and pay; leaders read the ledger and the figures.
REWARD_APPROVERS = frozenset({R.reward_approver})
REWARD_READERS = REWARD_APPROVERS | {R.leader}
# Who reads the assessment figures (考核): leaders and tier staff for their area, inspectors.
KPI_READERS = frozenset({R.leader, R.community_staff, R.street_staff, R.district_staff,
                         R.city_staff, R.inspector})
# Staff who act for the unit they sit in (the handling chain).
UNIT_STAFF = frozenset({R.grid_worker, R.community_staff, R.street_staff, R.district_staff,
                        R.city_staff, R.department_staff})


def require(actor: Actor | None, roles: frozenset[str]) -> Actor:
    """The actor, if they hold one of ``roles``; else ``PermissionDenied``."""
    if actor is None or not actor.has(*roles):
        raise PermissionDenied("error.forbidden")
    return actor


def reads_cases(actor: Actor | None) -> bool:
    return actor is not None and actor.has(*CASE_READERS)


def handles(actor: Actor | None, case: Case) -> bool:
    """The actor is staff of a unit that handles the case: its community (which checks on site
    and calls the reporter back), its owner tier, its handler, or the unit it waits at."""
    return actor is not None and actor.has(*UNIT_STAFF) and actor.unit_id in {
        case.community_id, case.owner_id, case.handler_id, case.unit_id}


def holds_sensitive_permit(actor: Actor) -> bool:
    """The actor may read restricted content somewhere: the permission, at a district or city
    (``sensitive_permit`` for one case, ``content_readable`` in SQL)."""
    return actor.has(R.sensitive_viewer) and actor.unit_kind in (UnitKind.district, UnitKind.city)


def sensitive_permit(actor: Actor | None, case: Case) -> bool:
    """District or city staff with the explicit permission for restricted categories."""
    return actor is not None and actor.has(R.sensitive_viewer) and \
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


def never_restricted() -> ColumnElement[bool]:
    return Case.category_id.not_in(restricted_categories())
