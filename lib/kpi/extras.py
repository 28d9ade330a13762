"""Figures from outside the case roll-ups, shown beside them on the overview and in the
rankings: each capability adds its own here (discovery rewards today). A figure is a key, a
kind ("count", "yuan", "rate"), which way is better, and a query that returns a value per unit
of a level, or for the scope; the pages draw every figure listed without a change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from lib.core.models import UnitKind
from lib.core.workcal import CHINA_TZ
from lib.kpi import published
from lib.kpi.figures import Period, Value
from lib.org.models import Unit
from lib.rewards import figures as reward_figures
from lib.rewards.models import RewardClaim

# A query: (session, scope, first moment, last moment, level or None, category) → {unit or None:
# (numerator, denominator or None)}.
Query = Callable[[Session, Unit, datetime, datetime, str | None, int | None],
                 dict[object, tuple[float, float | None]]]


@dataclass(frozen=True)
class Extra:
    key: str
    kind: str
    better: str
    query: Query
    levels: frozenset[str] = frozenset({"community", "street", "district"})

    def applies(self, scope: Unit, level: str | None = None) -> bool:
        return scope.kind in self.levels and (level is None or level in self.levels)


def _claims(session: Session, scope: Unit, first: datetime, last: datetime, level: str | None,
            category_id: int | None, amount: bool) -> dict[object, tuple[float, float | None]]:
    """Claims made in the period (count, dated by the claim move) or awarded (yuan: approved in
    full, dated by that approval), per unit of ``level`` or in all: ``lib.rewards.figures``'
    definitions, the reward ledger's too. Kept for the rest of the session's work."""
    memo = session.info.setdefault("kpi_claims", {})
    args = (scope.id, scope.kind, first, last, level, category_id, amount)
    if args not in memo:
        area = {UnitKind.community: RewardClaim.community_id,
                UnitKind.street: RewardClaim.street_id, UnitKind.district: RewardClaim.district_id}
        key = area[UnitKind(level)] if level is not None else None
        conditions = [area[UnitKind(scope.kind)] == scope.id]
        if category_id is not None:
            conditions.append(RewardClaim.category_id == category_id)
        if amount:
            found = {unit: fen / 100.0 for unit, (_, fen, _) in
                     reward_figures.awarded(session, key, first, last, conditions).items()}
        else:
            found = {unit: float(n) for unit, n in
                     reward_figures.claims_made(session, key, first, last, conditions).items()}
        memo[args] = found
    return {unit: (value, None) for unit, value in memo[args].items()}


EXTRAS: list[Extra] = [
    Extra("reward_claims", "count", "higher",
          lambda s, u, a, b, lv, c: _claims(s, u, a, b, lv, c, amount=False)),
    Extra("reward_awarded_yuan", "yuan", "higher",
          lambda s, u, a, b, lv, c: _claims(s, u, a, b, lv, c, amount=True)),
]


def _bounds(period: Period) -> tuple[datetime, datetime]:
    first = datetime.combine(period.start, datetime.min.time(), CHINA_TZ)
    return first, datetime.combine(period.end + timedelta(days=1), datetime.min.time(), CHINA_TZ)


def _value(key: str, pair: tuple[float, float | None] | None) -> Value:
    if pair is None:
        return zero(key)
    top, bottom = pair
    if bottom is None:
        return Value(key, top, top, None)
    return Value(key, top / bottom if bottom else None, top, bottom)


def values(session: Session, scope: Unit, period: Period, category_id: int | None) -> dict[str, Value]:
    """Every extra figure for the scope (figures that do not apply to it are left out)."""
    first, last = _bounds(period)
    kept = published.extras(session, period.start, period.end, scope, None, category_id)
    if kept is not None:  # a closed month: as published
        return {e.key: _value(e.key, kept.get(scope.id, {}).get(e.key)) for e in EXTRAS
                if e.applies(scope)}
    out = {}
    for extra in EXTRAS:
        if extra.applies(scope):
            found = extra.query(session, scope, first, last, None, category_id)
            out[extra.key] = _value(extra.key, found.get(None))
    return out


def by_unit(session: Session, scope: Unit, period: Period, level: str,
            category_id: int | None) -> dict[str, dict[int, Value]]:
    """Every extra figure that applies, per unit of ``level`` below the scope:
    {figure: {unit: value}}; a unit with nothing counted is absent (its value is ``zero``)."""
    first, last = _bounds(period)
    kept = published.extras(session, period.start, period.end, scope, level, category_id)
    if kept is not None:  # a closed month: as published
        return {e.key: {unit: _value(e.key, found[e.key]) for unit, found in kept.items()
                        if e.key in found} for e in EXTRAS if e.applies(scope, level)}
    out: dict[str, dict[int, Value]] = {}
    for extra in EXTRAS:
        if extra.applies(scope, level):
            found = extra.query(session, scope, first, last, level, category_id)
            out[extra.key] = {unit: _value(extra.key, pair) for unit, pair in found.items()}
    return out


def zero(key: str) -> Value:
    return Value(key, 0.0, 0.0, None)
