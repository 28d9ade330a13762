"""Months that close (结账): an assessment month closes ``kpi.close_after_workdays`` working days
after its end (docs/decisions.md, "Months that close").

Closing refreshes the roll-ups, then stores, in one short transaction, the month's counters of
every tier unit and department (``category_id`` 0) and of every tier unit and category, the
exact closure quantiles, the figures from outside the roll-ups (extras), the units' names and
the settings the figures were computed with. From then on the pages, the rankings and the 通报
read the month from that store (``lib.kpi.published``), and later changes are adjustments.

``close_due`` is idempotent and safe to run from two processes at once: the month's primary key
lets one of them store it; the other stores nothing. ``python -m lib tick`` runs it; so does
``python -m lib kpi-close [--month YYYY-MM]``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import func, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from lib.cases.models import Case
from lib.cases.states import S
from lib.core.db import read_session, write_session
from lib.core.errors import ValidationFailed
from lib.core.models import Category, UnitKind, utcnow
from lib.core.settings import get_int
from lib.core.workcal import CHINA_TZ, next_workday
from lib.kpi import extras, figures, periods, published, rankings, rollup
from lib.kpi.figures import Period, Value
from lib.kpi.models import KpiDay, KpiMonth, KpiMonthUnit, KpiUnitDay
from lib.kpi.views import Query, _context
from lib.org.models import Unit
from lib.org.units import Actor

COLUMNS = published.COLUMNS
TIER_KINDS = [str(k) for k in periods.TIER_KINDS]


def closes_at(period: Period, workdays: int) -> datetime:
    """When a month closes: at midnight (China time) after the ``workdays``-th working day
    after its last day, so that units have that many whole working days to settle it (November
    2026, 5 working days: 1–4 and 7 December; it closes as 8 December begins)."""
    day = period.end
    for _ in range(max(0, workdays)):
        day = next_workday(day)
    return datetime.combine(day + timedelta(days=1), time(0), CHINA_TZ)


def due(session: Session, now: datetime) -> list[Period]:
    """The months that have ended, may close by ``now`` and are not closed, oldest first: from
    the month of the first report."""
    first = session.exec(select(Case.reported_at).order_by(Case.reported_at).limit(1)).first()
    if first is None:
        return []
    start_day = periods.month_start_day(session)
    workdays = get_int(session, "kpi.close_after_workdays")
    closed = {m.label for m in published.months(session).values()}
    period = periods.month_period(first.astimezone(CHINA_TZ).date(), start_day)
    out = []
    while closes_at(period, workdays) <= now:
        if period.label not in closed:
            out.append(period)
        period = periods.month_period(period.end + timedelta(days=1), start_day)
    return out


def close_due(engine: Engine | None = None, now: datetime | None = None) -> dict[str, int]:
    """Close every month due by ``now`` (oldest first, one transaction each): the routine tick's
    part. Returns how many this call closed."""
    now = now or utcnow()
    with read_session(engine) as session:
        months = due(session, now)
    return _close_all(engine, months, now)


def _close_all(engine: Engine | None, months: list[periods.Period], now: datetime) -> dict[str, int]:
    """Close ``months`` in order, the roll-ups brought up to date first."""
    closed = 0
    if months:
        rollup.refresh(engine, now)
        for period in months:
            closed += close_month(engine, period, now)
    return {"kpi_months_closed": closed}


def close_until(engine: Engine | None, label: str, now: datetime | None = None) -> dict[str, int]:
    """Close the month ``label`` now (``kpi-close --month``), and every earlier month not yet
    closed, whatever the working days since: a month must have ended; ``ValidationFailed``
    otherwise."""
    now = now or utcnow()
    with read_session(engine) as session:
        start_day = periods.month_start_day(session)
        target = periods.period_of_label(label, start_day)
        if target.end >= now.astimezone(CHINA_TZ).date():
            raise ValidationFailed("kpi.months.not_ended", month=label)
        first = session.exec(select(Case.reported_at).order_by(Case.reported_at).limit(1)).first()
        closed = {m.label for m in published.months(session).values()}
    months = []
    period = periods.month_period(first.astimezone(CHINA_TZ).date(), start_day) \
        if first is not None else target
    while period.start <= target.start:
        if period.label not in closed:
            months.append(period)
        period = periods.month_period(period.end + timedelta(days=1), start_day)
    if target.label not in closed and target not in months:
        months.append(target)
    return _close_all(engine, months, now)


# ---------------------------------------------------------------- what a month stores


def _sums(session: Session, table, period: Period, keys: list) -> dict[tuple, dict[str, Any]]:  # noqa: ANN001
    """Every stored counter of ``table`` summed over the period's days, per ``keys``."""
    stmt = select(*keys, *(func.coalesce(func.sum(getattr(table, name)), 0) for name in COLUMNS)) \
        .where(table.day >= period.start.isoformat(), table.day <= period.end.isoformat()) \
        .group_by(*keys)
    return {tuple(row[:len(keys)]): dict(zip(COLUMNS, row[len(keys):], strict=True))
            for row in session.exec(stmt).all()}


def _quantiles(session: Session, period: Period, chains: dict[int, list[int]]) \
        -> dict[tuple[int, int], periods.Quantiles]:
    """The exact closure quantiles of every tier unit (category 0) and tier unit and category,
    from the cases closed in the period (one read; each community's cases given to the units
    above it)."""
    first = datetime.combine(period.start, time(0), CHINA_TZ)
    last = datetime.combine(period.end + timedelta(days=1), time(0), CHINA_TZ)
    held: dict[tuple[int, int], list[tuple]] = defaultdict(list)
    stmt = select(Case.community_id, Case.category_id, Case.reached_tier, Case.closure_hours,
                  Case.closure_workdays).where(Case.state == S.closed, Case.closed_at >= first,
                                               Case.closed_at < last)
    for community, category, tier, hours, workdays in session.exec(stmt).all():
        row = (category, tier, hours, workdays)
        for unit in chains.get(community, [community]):
            held[(unit, 0)].append(row)
            held[(unit, category)].append(row)
    return {key: periods.exact(found) for key, found in held.items()}


def _pair(value: Value) -> list:
    return [value.numerator, value.denominator]


def _extras(session: Session, period: Period, categories: list[int]) -> dict[tuple[int, int], dict]:
    """The extra figures (lib.kpi.extras) of every unit they apply to, for all categories (0)
    and each category: {(unit, category): {figure: [numerator, denominator]}}."""
    out: dict[tuple[int, int], dict] = defaultdict(dict)
    tops = session.exec(select(Unit).where(Unit.kind == UnitKind.district)).all()
    for top in tops:
        for category in [None, *categories]:
            key = category or 0
            for figure, value in extras.values(session, top, period, category).items():
                if value.numerator or value.denominator:
                    out[(top.id, key)][figure] = _pair(value)
            for level in ("street", "community"):
                for figure, found in extras.by_unit(session, top, period, level, category).items():
                    for unit, value in found.items():
                        if unit is not None and (value.numerator or value.denominator):
                            out[(unit, key)][figure] = _pair(value)
    return out


def _settings(session: Session, period: Period) -> dict[str, Any]:
    min_cases, size = rankings.settings(session)
    return {"weights": figures.weights(session), "min_cases": min_cases, "list_size": size,
            "month_start_day": periods.month_start_day(session),
            "close_after_workdays": get_int(session, "kpi.close_after_workdays"),
            "first_day": period.start.isoformat(), "last_day": period.end.isoformat()}


def month_rows(session: Session, period: Period) -> list[dict[str, Any]]:
    """The ``kpi_month_unit`` rows of a month, from the roll-ups as they are."""
    units = {u.id: u for u in session.exec(select(Unit).where(
        Unit.kind.in_([*TIER_KINDS, str(UnitKind.department)]))).all()}
    by_unit = _sums(session, KpiUnitDay, period, [KpiUnitDay.unit_id])
    by_cell = _sums(session, KpiDay, period, [KpiDay.unit_id, KpiDay.category_id])
    quantiles = _quantiles(session, period, periods.community_chains(session))
    categories = list(session.exec(select(Category.id).order_by(Category.id)).all())
    more = _extras(session, period, categories)
    keys = {(unit, 0) for unit, u in units.items() if u.active} | {(k[0], 0) for k in by_unit} \
        | set(by_cell) | set(quantiles) | set(more)
    empty = dict.fromkeys(COLUMNS, 0)
    rows = []
    for unit_id, category_id in sorted(keys):
        unit = units.get(unit_id)
        if unit is None:
            continue
        counters = (by_unit if category_id == 0 else by_cell).get(
            (unit_id,) if category_id == 0 else (unit_id, category_id), empty)
        q = quantiles.get((unit_id, category_id))
        rows.append({**empty, **counters, "unit_id": unit_id, "category_id": category_id,
                     "unit_name": unit.name_zh[:100],
                     "median_hours": q.median_hours if q else None,
                     "p90_hours": q.p90_hours if q else None,
                     "median_workdays": q.median_workdays if q else None,
                     "p90_workdays": q.p90_workdays if q else None,
                     "extras": {"figures": more.get((unit_id, category_id), {}),
                                "name_en": unit.name_en}})
    return rows


def close_month(engine: Engine | None, period: Period, now: datetime) -> int:
    """Store one month as it stands (1), or nothing if it is closed already (0): read without
    the write lock, written in one transaction whose primary key lets only one writer in."""
    with read_session(engine) as session:
        if published.month_of(session, period.start, period.end) is not None:
            return 0
        rows = month_rows(session, period)
        settings = _settings(session, period)
    try:
        with write_session(engine) as session:
            if session.get(KpiMonth, period.label) is not None:
                return 0
            session.add(KpiMonth(label=period.label, start=period.start.isoformat(),
                                 end=period.end.isoformat(), closed_at=now, settings=settings))
            session.flush()
            if rows:
                session.exec(insert(KpiMonthUnit),  # type: ignore[call-overload]
                             params=[{**r, "label": period.label} for r in rows])
    except IntegrityError:  # another process closed it meanwhile: its rows stand
        return 0
    return 1


# ---------------------------------------------------------------- what the pages say


@dataclass(frozen=True)
class Status:
    """Whether the chosen month is closed: when, and how many adjustments were recorded to it
    since in the reader's area; or, open, when it will close."""

    label: str
    closed_at: datetime | None
    adjustments: int
    closes_at: datetime | None = None


def status(actor: Actor | None, query: Query, engine: Engine | None = None) -> Status:
    """The chosen month's status for the reader (the unit and month checked as every page's)."""
    with read_session(engine) as session:
        ctx = _context(session, actor, query)
        month = published.month_of(session, ctx.period.start, ctx.period.end)
        if month is None:
            return Status(ctx.period.label, None, 0,
                          closes_at(ctx.period, get_int(session, "kpi.close_after_workdays")))
        return Status(ctx.period.label, month.closed_at, published.adjustments_since(
            session, month.label, _communities(session, ctx.scope)))


def _communities(session: Session, scope: Unit) -> list[int] | None:
    """The communities whose adjustments the scope sees (None: a department sees all)."""
    if scope.kind == UnitKind.community:
        return [scope.id]
    if scope.kind == UnitKind.department:
        return None
    return list(session.exec(select(Unit.id).where(
        Unit.kind == UnitKind.community, Unit.path.startswith(scope.path, autoescape=True))).all())
