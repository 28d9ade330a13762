"""Assessment periods (考核周期) and exact closure-time quantiles: what both the roll-ups and
the figures need.

An assessment month may start on any day (setting ``kpi.month_start_day``): 19 Nov – 18 Dec is
named "2026-12", the month it ends in.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session, select

from lib.cases.models import Case, CaseState
from lib.core.errors import ValidationFailed
from lib.core.inputs import parse_month
from lib.core.models import UnitKind
from lib.core.settings import get_int
from lib.core.workcal import CHINA_TZ
from lib.kpi.models import KpiMonth, KpiMonthUnit, KpiQuantile
from lib.org.models import Unit

TIER_KINDS = (UnitKind.city, UnitKind.district, UnitKind.street, UnitKind.community)

@dataclass(frozen=True)
class Period:
    """Days ``start`` to ``end`` inclusive (China dates), named by ``label``."""

    start: date
    end: date
    label: str

    def previous(self, start_day: int) -> Period:
        return month_period(self.start - timedelta(days=1), start_day)


def month_start_day(session: Session) -> int:
    """The first day of an assessment month (some places run from the 19th to the 18th)."""
    return max(1, min(28, get_int(session, "kpi.month_start_day")))


def month_period(day: date, start_day: int = 1) -> Period:
    """The assessment month that holds ``day``; labelled by the month it ends in when it does
    not start on the 1st (19 Nov – 18 Dec is "2026-12")."""
    if day.day >= start_day:
        start = day.replace(day=start_day)
    else:
        previous = day.replace(day=1) - timedelta(days=1)
        start = previous.replace(day=start_day)
    following = (start.replace(day=1) + timedelta(days=32)).replace(day=start_day)
    end = following - timedelta(days=1)
    label = (end if start_day > 1 else start).strftime("%Y-%m")
    return Period(start, end, label)


def period_of_label(label: str, start_day: int = 1) -> Period:
    """The period named ``YYYY-MM`` (the month it ends in, when it starts after the 1st);
    ``ValidationFailed`` for anything else, or a month outside ``inputs.YEARS`` (the trend
    counts twelve periods back from it: 0001-01 has none before it)."""
    parsed = parse_month(label)
    if parsed is None:
        raise ValidationFailed("error.month_invalid")
    year, month = parsed
    if start_day == 1:
        return month_period(date(year, month, 1), 1)
    return month_period(date(year, month, start_day - 1), start_day)


def last_periods(label: str, count: int, start_day: int = 1) -> list[Period]:
    """``count`` consecutive periods ending with the one named ``label``, oldest first."""
    periods = [period_of_label(label, start_day)]
    while len(periods) < count:
        periods.insert(0, periods[0].previous(start_day))
    return periods


def today() -> date:
    return datetime.now(CHINA_TZ).date()


def default_period(start_day: int = 1, day: date | None = None) -> Period:
    """The period every assessment page, the home page and the monthly report open on: the
    last complete assessment month before ``day`` (today, China time). The month under way is
    never the default: on 3 December its figures cover three days and compare them with a whole
    month. A reader may still choose it, and it is then marked as partial (``is_partial``)."""
    return month_period(day or today(), start_day).previous(start_day)


def is_partial(period: Period, day: date | None = None) -> bool:
    """Whether the period has not ended yet on ``day`` (today): its figures are so far only."""
    return period.end >= (day or today())


def so_far(period: Period, day: date | None = None) -> Period:
    """The period's days up to ``day`` (today) when it is under way; the whole period else.
    Keeps the label."""
    day = day or today()
    if period.start <= day < period.end:
        return Period(period.start, day, period.label)
    return period


def same_days_before(period: Period, start_day: int = 1, day: date | None = None) -> Period:
    """The previous period's first days, as many as the period has had up to ``day`` (today):
    what a month under way is compared with (1–3 December against 1–3 November). A period
    that has ended is compared with the whole previous one. The previous month's shorter end
    caps it (31 March against 1–28 February)."""
    before = period.previous(start_day)
    current = so_far(period, day)
    if current.end == period.end:
        return before
    last = min(before.start + (current.end - current.start), before.end)
    return Period(before.start, last, before.label)


def quantile(values: list[float], q: float, *, ordered: bool = False) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    if not ordered:
        values = sorted(values)
    position = (len(values) - 1) * q
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


@dataclass(frozen=True)
class Quantiles:
    count: int
    median_hours: float | None
    p90_hours: float | None
    median_workdays: float | None
    p90_workdays: float | None


def closed_rows(session: Session, scope: Unit, start: date, end: date, *,
                category_id: int | None = None) -> list[tuple[int, str, float | None, int | None]]:
    """(category, highest tier, hours, working days) of each case closed in the period in the
    scope's area: read from the area index alone (it carries these columns)."""
    first = datetime.combine(start, datetime.min.time(), CHINA_TZ)
    last = datetime.combine(end + timedelta(days=1), datetime.min.time(), CHINA_TZ)
    column = {UnitKind.community: Case.community_id, UnitKind.street: Case.street_id,
              UnitKind.district: Case.district_id, UnitKind.city: Case.city_id}[scope.kind]
    stmt = select(Case.category_id, Case.reached_tier, Case.closure_hours, Case.closure_workdays) \
        .where(column == scope.id, Case.state == CaseState.closed, Case.closed_at >= first,
               Case.closed_at < last)
    if category_id is not None:
        stmt = stmt.where(Case.category_id == category_id)
    # The driver's rows as they are: a month of a district is tens of thousands of rows, and
    # building a result row object for each costs more than the query.
    result = session.connection().execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def exact(rows: list[tuple]) -> Quantiles:
    """The quantiles of ``closed_rows``."""
    hours = sorted(r[2] for r in rows if r[2] is not None)
    days = sorted(float(r[3]) for r in rows if r[3] is not None)
    return Quantiles(len(rows), quantile(hours, 0.5, ordered=True), quantile(hours, 0.9, ordered=True),
                     quantile(days, 0.5, ordered=True), quantile(days, 0.9, ordered=True))


def closure_quantiles(session: Session, scope: Unit, start: date, end: date, *,
                      category_id: int | None = None) -> Quantiles:
    """Exact median and 90th percentile of closure time of the cases closed in the period: for
    a whole period of a unit as stored by the last refresh (``kpi_quantile``), else from the
    cases; for a closed month as published (``kpi_month_unit``), whatever the cases say now."""
    month = session.exec(select(KpiMonth.label).where(KpiMonth.start == start.isoformat(),
                                                      KpiMonth.end == end.isoformat())).first()
    if month is not None:
        kept = session.get(KpiMonthUnit, (month, scope.id, category_id or 0))
        if kept is None:
            return Quantiles(0, None, None, None, None)
        return Quantiles(kept.closed, kept.median_hours, kept.p90_hours, kept.median_workdays,
                         kept.p90_workdays)
    if category_id is None:
        stored = session.get(KpiQuantile, (scope.id, start.isoformat()))
        if stored is not None and stored.end == end.isoformat():
            return Quantiles(stored.count, stored.median_hours, stored.p90_hours,
                             stored.median_workdays, stored.p90_workdays)
    return exact(closed_rows(session, scope, start, end, category_id=category_id))


def community_chains(session: Session) -> dict[int, list[int]]:
    """Each community's id with its street's, district's and city's."""
    parents = dict(session.exec(select(Unit.id, Unit.parent_id)).all())
    out: dict[int, list[int]] = {}
    for community in session.exec(select(Unit.id).where(Unit.kind == UnitKind.community)).all():
        chain, unit = [], community
        while unit is not None:
            chain.append(unit)
            unit = parents.get(unit)
        out[community] = chain
    return out


def quantile_rows(session: Session, days: set[str]) -> tuple[list[str], list[dict]]:
    """Every tier unit's quantiles for the periods holding ``days`` (up to today's period):
    the periods' first days and the ``kpi_quantile`` rows to write for them."""
    start_day = month_start_day(session)
    last = today()
    touched = sorted({month_period(date.fromisoformat(d), start_day) for d in days
                      if date.fromisoformat(d) <= last}, key=lambda p: p.start)
    units = session.exec(select(Unit).where(Unit.kind.in_([k.value for k in TIER_KINDS]))).all() \
        if touched else []
    chains = community_chains(session) if touched else {}
    rows = []
    for period in touched:
        # Each community's closed cases read once (its index alone), then given to every tier
        # unit above it: a district's month is not read again for the street, district and city.
        held: dict[int, list[tuple]] = defaultdict(list)
        for unit in units:
            if unit.kind != UnitKind.community:
                continue
            found = closed_rows(session, unit, period.start, period.end)
            for holder in chains.get(unit.id, [unit.id]):
                held[holder].extend(found)
        for unit in units:
            q = exact(held.get(unit.id, []))
            rows.append({"unit_id": unit.id, "start": period.start.isoformat(),
                         "end": period.end.isoformat(), "count": q.count,
                         "median_hours": q.median_hours, "p90_hours": q.p90_hours,
                         "median_workdays": q.median_workdays, "p90_workdays": q.p90_workdays})
    return [p.start.isoformat() for p in touched], rows
