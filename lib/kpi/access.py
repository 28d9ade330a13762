"""Who reads which figures. A KPI reader (leaders, tier staff, inspectors) reads the figures of
their own unit's area and of any tier unit below it; the scope of a page is that unit, or a
unit below it that they chose.

Ranks: a unit is ranked among its peers (the streets of a district, the communities of a street
or district, the departments under it). A reader sees the whole ranking of the units below
their own; a community sees only its own row and its place among its street's communities
("3rd of 13"), never its neighbours' figures.
"""

from __future__ import annotations

from sqlmodel import Session, select

from lib.core.errors import NotFound, PermissionDenied, ValidationFailed
from lib.core.inputs import ID_MAX, parse_int
from lib.core.models import Category, UnitKind
from lib.org import permissions
from lib.org.models import Unit
from lib.org.units import Actor, get_unit

TIER_KINDS = (UnitKind.city, UnitKind.district, UnitKind.street, UnitKind.community)
# The kinds of unit a scope's ranking ranks, from the nearest below it.
BELOW = {UnitKind.city: ["district", "street", "community", "department"],
         UnitKind.district: ["street", "community", "department"],
         UnitKind.street: ["community", "department"],
         UnitKind.community: ["community"]}


def require_reader(actor: Actor | None) -> Actor:
    actor = permissions.require(actor, permissions.KPI_READERS)
    if actor.unit_kind not in TIER_KINDS:
        raise PermissionDenied("error.forbidden")
    return actor


def scope(session: Session, actor: Actor | None, unit_id: int | None = None) -> Unit:
    """The unit whose area a page shows: the actor's own, or a tier unit below it."""
    actor = require_reader(actor)
    # Checked before the query: 10**20 would overflow the database driver.
    number = actor.unit_id if unit_id is None else parse_int(unit_id, low=1, high=ID_MAX)
    if number is None:
        raise NotFound("error.unit_not_found")
    unit = get_unit(session, number)
    if unit.kind not in TIER_KINDS or not unit.path.startswith(actor.unit_path):
        raise PermissionDenied("error.kpi_scope")
    return unit


def scope_choices(session: Session, actor: Actor | None) -> list[Unit]:
    """The actor's unit and the tier units below it, as a tree."""
    actor = require_reader(actor)
    units = session.exec(select(Unit).where(Unit.path.startswith(actor.unit_path, autoescape=True),
                                            Unit.kind.in_([str(k) for k in TIER_KINDS]),
                                            Unit.active.is_(True))).all()
    return sorted(units, key=lambda u: [int(p) for p in u.path.strip("/").split("/")])


def category(session: Session, category_id: object) -> Category | None:
    """The category a page chose (None: all); ``ValidationFailed`` for one that is not."""
    if category_id is None:
        return None
    number = parse_int(category_id, low=1, high=ID_MAX)
    found = session.get(Category, number) if number is not None else None
    if found is None:
        raise ValidationFailed("error.category_invalid")
    return found


def categories(session: Session) -> list[Category]:
    return list(session.exec(select(Category).where(Category.active.is_(True))
                             .order_by(Category.sort, Category.id)).all())


def ranking_levels(unit: Unit) -> list[str]:
    return BELOW.get(UnitKind(unit.kind), [])
