"""Who may do what, defined once: the role sets that the menu, the page guards and every lib
read use. Which cases a user sees, and what of a case (its content, its reporter), is decided
in ``lib.cases.access`` from these sets.
"""

from __future__ import annotations

from lib.core.errors import PermissionDenied
from lib.core.models import Role
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
