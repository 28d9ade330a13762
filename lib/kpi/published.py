"""What a closed assessment month published, and what changed after (docs/decisions.md,
"Months that close").

Reading: a whole closed month of a unit is read from ``kpi_month_unit`` (its counters,
quantiles and extras as they were when it closed), never from the live roll-ups, so that a
leader sees the figures exactly as published. Recording: when a refresh of the roll-ups
recomputes days of a closed month because a case moved, ``recomputing`` records the move as an
adjustment (``kpi_adjustment``), with its reason and the counters it changed in the case's
community (and the department that handled it), to be listed in the 通报 of the month under
way; the closed month's rows are never rewritten.

This module sits under the roll-ups and the figures (both read it): it knows the tables, not
the figures' definitions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases.models import Case, CaseEvent, WorkOrder
from lib.core.db import read_session, write_session
from lib.core.models import UnitKind
from lib.core.workcal import CHINA_TZ
from lib.kpi import periods
from lib.kpi.models import KpiAdjustment, KpiCase, KpiCounters, KpiMonth, KpiMonthUnit, KpiUnitDay
from lib.org.models import Unit

# The stored counters: every column of a roll-up row (the figures' definitions may add some;
# nothing here lists them by hand).
COLUMNS = list(KpiCounters.model_fields)
MONTHS_MEMO = "kpi_months"


def months(session: Session) -> dict[tuple[str, str], KpiMonth]:
    """Every closed month by its (first day, last day), read once per session."""
    memo = session.info.get(MONTHS_MEMO)
    if memo is None:
        memo = {(m.start, m.end): m for m in session.exec(select(KpiMonth)).all()}
        session.info[MONTHS_MEMO] = memo
    return memo


def month_of(session: Session, start: date, end: date) -> KpiMonth | None:
    """The closed month that is exactly these days, or None (a month still open, or any other
    span of days: those are read from the live roll-ups)."""
    return months(session).get((start.isoformat(), end.isoformat()))


def values(row: KpiMonthUnit) -> dict[str, Any]:
    return {name: getattr(row, name) for name in COLUMNS}


def _units(scope: Unit, kind: str | None):  # noqa: ANN202
    """SQL: the units of ``kind`` in the scope's area (None, or the scope's own kind: itself)."""
    if kind is None or kind == scope.kind:
        return select(Unit.id).where(Unit.id == scope.id)
    return select(Unit.id).where(Unit.kind == kind, Unit.path.startswith(scope.path, autoescape=True))


LEVELS = ("community", "street", "district", "department")


def rows(session: Session, scope: Unit, start: date, end: date, *, by: str | None = None,
         category_id: int | None = None) -> dict[object, dict[str, Any]] | None:
    """A closed month's stored counters for the groupings of ``figures.totals`` (None, "category",
    "cell", a unit level, "department"), keyed as it keys them; None when the days are not a
    closed month or the grouping is not stored (by day)."""
    month = month_of(session, start, end)
    if month is None or by not in (None, "category", "cell", *LEVELS):
        return None
    stmt = select(KpiMonthUnit).where(KpiMonthUnit.label == month.label)
    level = "community" if by == "cell" else by if by in LEVELS else None
    stmt = stmt.where(KpiMonthUnit.unit_id.in_(_units(scope, level)))
    if by in ("category", "cell"):
        stmt = stmt.where(KpiMonthUnit.category_id != 0)
        if category_id is not None:
            stmt = stmt.where(KpiMonthUnit.category_id == category_id)
    else:
        stmt = stmt.where(KpiMonthUnit.category_id == (category_id or 0))
    out: dict[object, dict[str, Any]] = {}
    for row in session.exec(stmt).all():
        key = {None: None, "category": row.category_id,
               "cell": (row.unit_id, row.category_id)}.get(by, row.unit_id)
        out[key] = values(row)
    return out


def by_labels(session: Session, scope: Unit, spans: Iterable[tuple[date, date, str]], *,
              category_id: int | None = None) -> dict[str, dict[str, Any] | None]:
    """For each (first day, last day, label) that is a closed month, the scope's stored counters
    (None: nothing stored for the scope, i.e. nothing counted): one query for all of them."""
    closed = {}
    for start, end, label in spans:
        month = month_of(session, start, end)
        if month is not None:
            closed[month.label] = label
    if not closed:
        return {}
    found = {row.label: values(row) for row in session.exec(select(KpiMonthUnit).where(
        KpiMonthUnit.label.in_(sorted(closed)), KpiMonthUnit.unit_id == scope.id,
        KpiMonthUnit.category_id == (category_id or 0))).all()}
    return {label: found.get(stored) for stored, label in closed.items()}


def month_settings(session: Session, start: date, end: date) -> dict[str, Any] | None:
    """The settings a closed month's figures were computed with (weights, factors, minimum
    sample, list size), or None for a month still open."""
    month = month_of(session, start, end)
    return dict(month.settings or {}) if month is not None else None


def extras(session: Session, start: date, end: date, scope: Unit, level: str | None,
           category_id: int | None) -> dict[int, dict[str, tuple]] | None:
    """A closed month's stored extra figures of the units of ``level`` in the scope's area
    (None: the scope) as {unit: {figure: (numerator, denominator)}}; None for a month still
    open."""
    month = month_of(session, start, end)
    if month is None:
        return None
    found = session.exec(select(KpiMonthUnit.unit_id, KpiMonthUnit.extras).where(
        KpiMonthUnit.label == month.label, KpiMonthUnit.unit_id.in_(_units(scope, level)),
        KpiMonthUnit.category_id == (category_id or 0))).all()
    return {unit: {key: tuple(pair) for key, pair in (stored or {}).get("figures", {}).items()}
            for unit, stored in found}


def adjustments_since(session: Session, label: str, community_ids: Iterable[int] | None = None) -> int:
    """How many adjustments to the closed month ``label`` were recorded since it closed (in the
    communities given, None: all)."""
    stmt = select(func.count()).select_from(KpiAdjustment).where(KpiAdjustment.label == label)
    if community_ids is not None:
        stmt = stmt.where(KpiAdjustment.community_id.in_(list(community_ids)))
    return int(session.exec(stmt).one())


# ---------------------------------------------------------------- adjustments


def _day(moment: datetime | None) -> str | None:
    return moment.astimezone(CHINA_TZ).date().isoformat() if moment is not None else None


def _month_sums(session: Session, units: set[int], month: KpiMonth) -> dict[int, dict[str, Any]]:
    """The live roll-ups' counters of ``units`` over the closed month's days."""
    if not units:
        return {}
    stmt = select(KpiUnitDay.unit_id, *(func.coalesce(func.sum(getattr(KpiUnitDay, name)), 0)
                                        for name in COLUMNS)).where(
        KpiUnitDay.unit_id.in_(sorted(units)), KpiUnitDay.day >= month.start,
        KpiUnitDay.day <= month.end).group_by(KpiUnitDay.unit_id)
    return {row[0]: dict(zip(COLUMNS, row[1:], strict=True)) for row in session.exec(stmt).all()}


def _candidates(session: Session, moved: list[Case], closed: list[KpiMonth]) \
        -> dict[str, list[Case]]:
    """The moved cases that were or are counted on a day of a closed month (reported, closed,
    due, resolved there, or a work order made there), by month."""
    by_day = {}
    for month in closed:
        by_day[month.label] = (month.start, month.end)
    ids = [c.id for c in moved]
    days: dict[int, set[str]] = defaultdict(set)
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        for old in session.exec(select(KpiCase).where(KpiCase.case_id.in_(part))).all():
            days[old.case_id] |= {old.reported_day, old.closed_day, old.due_day}
        for case_id, at in session.exec(select(WorkOrder.case_id, WorkOrder.created_at)
                                        .where(WorkOrder.case_id.in_(part))).all():
            days[case_id].add(_day(at))
    for case in moved:
        days[case.id] |= {_day(getattr(case, column, None)) for column in
                          ("reported_at", "closed_at", "handle_due_at", "committed_due_at",
                           "resolved_at")}
    out: dict[str, list[Case]] = defaultdict(list)
    for case in moved:
        touched = {d for d in days[case.id] if d is not None}
        for label, (start, end) in by_day.items():
            if any(start <= d <= end for d in touched):
                out[label].append(case)
    return out


def recomputing(engine: Engine | None, moved: list[Case], since: datetime,
                recompute: Callable[[], int]) -> int:
    """Run ``recompute`` (the refresh's recomputation of days); if it changes days of a closed
    month because cases moved, record each such case as an adjustment of that month: the first
    move since the last refresh (its action, and the moves' notes as the reason), shown in the
    month under way when it was made, with the counters it changed in the month for the case's
    community and its handling department (``changes``). Cases of one community moved in the
    same refresh share their change and name each other (``with``). A case whose moves change
    nothing in the closed month records nothing."""
    if not moved:
        return recompute()
    with read_session(engine) as session:
        closed = list(months(session).values())
        found = _candidates(session, moved, closed) if closed else {}
        kinds = dict(session.exec(select(Unit.id, Unit.kind)).all()) if found else {}
        by_label = {m.label: m for m in closed}
        watched = {label: {c.community_id for c in cases} |
                   {c.handler_id for c in cases if kinds.get(c.handler_id) == UnitKind.department}
                   for label, cases in found.items()}
        before = {label: _month_sums(session, units, by_label[label])
                  for label, units in watched.items()}
    count = recompute()
    if not found:
        return count
    with read_session(engine) as session:
        after = {label: _month_sums(session, units, by_label[label])
                 for label, units in watched.items()}
        case_ids = sorted({c.id for cases in found.values() for c in cases})
        events: dict[int, list[CaseEvent]] = defaultdict(list)
        for event in session.exec(select(CaseEvent).where(
                CaseEvent.case_id.in_(case_ids), CaseEvent.at >= since)
                .order_by(CaseEvent.case_id, CaseEvent.seq)).all():
            events[event.case_id].append(event)
        start_day = periods.month_start_day(session)
    adjustments = []
    for label, cases in found.items():
        changed = {}
        for unit in watched[label]:
            old, new = before[label].get(unit, {}), after[label].get(unit, {})
            delta = {name: _delta(new.get(name, 0), old.get(name, 0)) for name in COLUMNS}
            delta = {name: d for name, d in delta.items() if d}
            if delta:
                changed[unit] = delta
        for case in cases:
            moves = events.get(case.id)
            mine = [u for u in (case.community_id, case.handler_id) if u in changed]
            if not moves or not mine:
                continue
            first = moves[0]
            notes = [m.note.strip() for m in moves if m.note and m.note.strip()]
            sharing = sorted(c.id for c in cases if c.id != case.id
                             and (c.community_id == case.community_id
                                  or (c.handler_id is not None and c.handler_id == case.handler_id)))
            adjustments.append({
                "label": label, "case_id": case.id, "community_id": case.community_id,
                "at": first.at, "action": first.action,
                "shown_in": periods.month_period(first.at.astimezone(CHINA_TZ).date(),
                                                 start_day).label,
                "reason": "；".join(dict.fromkeys(notes))[:2000] or None,
                "changes": {"units": {str(u): changed[u] for u in mine},
                            "moves": [m.action for m in moves],
                            **({"with": sharing} if sharing else {})}})
    if adjustments:
        with write_session(engine) as session:
            session.exec(insert(KpiAdjustment), params=adjustments)  # type: ignore[call-overload]
    return count


def _delta(new: Any, old: Any) -> float | int:
    change = (new or 0) - (old or 0)
    return round(change, 3) if isinstance(change, float) else change
