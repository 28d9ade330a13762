"""The four-tier org tree (市、区、街道、社区) with departments, and data scope.

A user's scope is their unit and every unit below it. Cases carry their community, street,
district and city ids, so a scope filter on cases is one indexed equality.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.core.db import read_session
from lib.core.errors import NotFound, PermissionDenied, ValidationFailed
from lib.core.models import Role, UnitKind
from lib.org.models import Unit, User


@dataclass(frozen=True)
class Actor:
    """The acting user as lib sees it: who, where in the tree, which roles."""

    id: int
    username: str
    display_name: str
    unit_id: int
    unit_kind: str
    unit_tier: str
    unit_path: str
    roles: frozenset[str]

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


def get_unit(session: Session, unit_id: int) -> Unit:
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFound("error.unit_not_found")
    return unit


def find_unit(session: Session, code_or_name: str) -> Unit:
    """A unit by code, Chinese name or English name (exact match)."""
    text = (code_or_name or "").strip()
    if not text:
        raise ValidationFailed("error.unit_required")
    unit = session.exec(
        select(Unit).where(or_(Unit.code == text, Unit.name_zh == text, Unit.name_en == text))
    ).first()
    if unit is None:
        raise NotFound("error.unit_not_found")
    return unit


def all_units(session: Session) -> list[Unit]:
    return list(session.exec(select(Unit).order_by(Unit.path)).all())


def subtree(session: Session, unit: Unit) -> list[Unit]:
    """The unit and everything below it, ordered as a tree."""
    units = session.exec(select(Unit).where(Unit.path.startswith(unit.path, autoescape=True))).all()
    return sorted(units, key=lambda u: [int(p) for p in u.path.strip("/").split("/")])


def in_subtree(ancestor_path: str, unit: Unit) -> bool:
    return unit.path.startswith(ancestor_path)


def ancestors(session: Session, unit: Unit) -> list[Unit]:
    """From the root down to ``unit`` itself."""
    ids = [int(p) for p in unit.path.strip("/").split("/") if p]
    rows = {u.id: u for u in session.exec(select(Unit).where(Unit.id.in_(ids))).all()}
    return [rows[i] for i in ids if i in rows]


def place_of_community(session: Session, community: Unit) -> dict[str, int]:
    """The ``community_id``/``street_id``/``district_id``/``city_id`` a case there carries."""
    if community.kind != UnitKind.community:
        raise ValidationFailed("error.not_a_community")
    by_kind = {u.kind: u.id for u in ancestors(session, community)}
    missing = [k for k in ("city", "district", "street") if k not in by_kind]
    if missing:
        raise ValidationFailed("error.unit_tree_incomplete")
    return {
        "community_id": community.id,
        "street_id": by_kind["street"],
        "district_id": by_kind["district"],
        "city_id": by_kind["city"],
    }


def tree_rows(session: Session, actor: Actor) -> list[dict[str, object]]:
    """The org tree below the actor's unit, one row per unit with its depth and user count."""
    if not actor.has(Role.admin, Role.leader):
        raise PermissionDenied("error.forbidden")
    root = get_unit(session, actor.unit_id)
    units = subtree(session, root)
    counts = dict(session.exec(select(User.unit_id, func.count()).group_by(User.unit_id)).all())
    base = root.path.count("/")
    return [{"unit": u, "depth": u.path.count("/") - base, "users": counts.get(u.id, 0)}
            for u in units]


def org_tree(actor: Actor, engine: Engine | None = None) -> list[dict[str, object]]:
    """``tree_rows`` in a read transaction of its own (the org page)."""
    with read_session(engine) as session:
        return tree_rows(session, actor)


def unit_of(actor: Actor, engine: Engine | None = None) -> Unit:
    with read_session(engine) as session:
        return get_unit(session, actor.unit_id)
