"""The assessment figures (考核指标), from the roll-ups: definitions in one table, each computed
with the counts behind it, for any period, part of the tree and category.

Definitions (domain.md §4; weights and the 基本满意 factor are settings):

  response_rate      lead work orders signed for in time / lead work orders made
  resolution_rate    cases handled and verified / cases whose handling deadline fell in it
  satisfaction_rate  (满意 + 0.9 × 基本满意) / cases closed and rated (unreached: unrated)
  on_time_rate       cases closed before their handling deadline / cases closed
  overdue_rate       lead work orders handled late or open past their deadline / made
  community_share    cases closed without leaving the community tier / closed (小事不出村社)
  street_share       cases closed without reaching the district / closed (大事不出镇街)
  return_rate        lead work orders returned / made (退单)
  rework_rate        rework moves / handle moves (返工)
  repeat_rate        reports at a place and category closed in the 90 days before / reports
  inspection_share   problems first found by covert inspection / reports (lower is better)
  mean_closure_hours hours from report to closure, averaged over cases closed
  hurries            催办 by reporters
  composite          response × 0.1 + resolution × 0.5 + satisfaction × 0.4 (by the weights of
                     the parts a unit has; none: no score)

A figure whose denominator is 0 is "no data" (None), never an error. The median and 90th
percentile of closure time for a chosen period are exact (``closure_quantiles``, from the
cases); trend lines read them from the roll-ups' buckets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta

from sqlalchemy import func, literal
from sqlmodel import Session, select

from lib.core.models import CLOSURE_BUCKETS, Case, CaseState, KpiDay, KpiUnitDay, Unit, UnitKind
from lib.core.settings import get_str
from lib.core.workcal import CHINA_TZ
from lib.kpi.rollup import Counters

COUNTER_NAMES = [f.name for f in fields(Counters) if f.name != "buckets"]


@dataclass(frozen=True)
class Figure:
    key: str
    kind: str  # rate | hours | count | score
    better: str  # higher | lower
    numerator: Callable[[Counters, dict], float]
    denominator: Callable[[Counters, dict], float] | None = None  # None: the value itself


def _satisfied(c: Counters, w: dict) -> float:
    return c.satisfied + w["basic"] * c.basic


FIGURES: list[Figure] = [
    Figure("response_rate", "rate", "higher", lambda c, w: c.signed_on_time, lambda c, w: c.dispatched),
    Figure("resolution_rate", "rate", "higher", lambda c, w: c.resolved, lambda c, w: c.due),
    Figure("satisfaction_rate", "rate", "higher", _satisfied, lambda c, w: c.rated),
    Figure("on_time_rate", "rate", "higher", lambda c, w: c.closed_on_time, lambda c, w: c.closed),
    Figure("overdue_rate", "rate", "lower", lambda c, w: c.late, lambda c, w: c.dispatched),
    Figure("community_share", "rate", "higher", lambda c, w: c.closed_community,
           lambda c, w: c.closed),
    Figure("street_share", "rate", "higher", lambda c, w: c.closed_street, lambda c, w: c.closed),
    Figure("return_rate", "rate", "lower", lambda c, w: c.returned, lambda c, w: c.dispatched),
    Figure("rework_rate", "rate", "lower", lambda c, w: c.reworked, lambda c, w: c.handled),
    Figure("repeat_rate", "rate", "lower", lambda c, w: c.repeat, lambda c, w: c.reported),
    Figure("inspection_share", "rate", "lower", lambda c, w: c.inspection_found,
           lambda c, w: c.reported),
    Figure("mean_closure_hours", "hours", "lower", lambda c, w: c.closure_hours,
           lambda c, w: c.closed),
    Figure("hurries", "count", "lower", lambda c, w: c.hurried),
    Figure("reported", "count", "higher", lambda c, w: c.reported),
    Figure("closed", "count", "higher", lambda c, w: c.closed),
]
BY_KEY = {f.key: f for f in FIGURES}
HEADLINE = ["response_rate", "resolution_rate", "satisfaction_rate", "on_time_rate",
            "overdue_rate", "community_share", "street_share", "mean_closure_hours"]
COMPOSITE_PARTS = ("response_rate", "resolution_rate", "satisfaction_rate")


@dataclass(frozen=True)
class Value:
    """A figure's value with the counts behind it (``value`` None: no data)."""

    key: str
    value: float | None
    numerator: float
    denominator: float | None


def weights(session: Session) -> dict[str, float]:
    """Composite weights and the 基本满意 factor, from the settings."""
    def number(key: str, default: float) -> float:
        try:
            return float(get_str(session, key))
        except ValueError:
            return default

    return {"response_rate": number("kpi.weight_response", 0.1),
            "resolution_rate": number("kpi.weight_resolution", 0.5),
            "satisfaction_rate": number("kpi.weight_satisfaction", 0.4),
            "basic": number("kpi.basic_satisfied_factor", 0.9)}


def evaluate(counters: Counters, w: dict) -> dict[str, Value]:
    out: dict[str, Value] = {}
    for figure in FIGURES:
        top = figure.numerator(counters, w)
        if figure.denominator is None:
            out[figure.key] = Value(figure.key, float(top), top, None)
            continue
        bottom = figure.denominator(counters, w)
        out[figure.key] = Value(figure.key, top / bottom if bottom else None, top, bottom)
    out["composite"] = composite(out, w)
    return out


def composite(values: dict[str, Value], w: dict) -> Value:
    """The weighted sum of the parts a unit has data for, over those parts' weights."""
    parts = [(w[k], values[k].value) for k in COMPOSITE_PARTS if values[k].value is not None]
    total = sum(weight for weight, _ in parts)
    if not total:
        return Value("composite", None, 0, None)
    return Value("composite", sum(weight * v for weight, v in parts) / total, total, None)


# ---------------------------------------------------------------- periods


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
    try:
        return max(1, min(28, int(get_str(session, "kpi.month_start_day"))))
    except ValueError:
        return 1


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
    """The period named ``YYYY-MM`` (the month it ends in, when it starts after the 1st)."""
    year, month = (int(x) for x in label.split("-"))
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


# ---------------------------------------------------------------- summing the roll-ups


def _community_scope(scope: Unit):  # noqa: ANN202
    """SQL: the communities in the scope unit's subtree."""
    if scope.kind == UnitKind.community:
        return KpiDay.community_id == scope.id
    return KpiDay.community_id.in_(select(Unit.id).where(
        Unit.kind == UnitKind.community, Unit.path.startswith(scope.path, autoescape=True)))


def _sums(table) -> list:  # noqa: ANN001
    return [func.coalesce(func.sum(getattr(table, name)), 0).label(name) for name in COUNTER_NAMES] \
        + [func.coalesce(func.sum(getattr(table, f"b{n}")), 0).label(f"b{n}")
           for n in range(len(CLOSURE_BUCKETS) + 1)]


def _counters(row) -> Counters:  # noqa: ANN001
    values = dict(row._mapping)
    counters = Counters(**{name: values[name] for name in COUNTER_NAMES})
    counters.buckets = [int(values[f"b{n}"]) for n in range(len(CLOSURE_BUCKETS) + 1)]
    return counters


UNIT_GROUPS = ("community", "street", "district", "department")


def totals(session: Session, scope: Unit, start: date, end: date, *, by: str | None = None,
           category_id: int | None = None) -> dict[object, Counters]:
    """Counters summed over the days (China dates, inclusive) and the scope's area, grouped
    ``by``: None (one total, key None), "day", "category", "cell" (key (community, category)),
    or a kind of unit in the scope — "community", "street", "district" — or "department" (the
    departments under the scope, by the work they led; not by category).

    Without a category the per-unit roll-up answers (one row per unit and day); with one, or by
    category, the per-community-and-category roll-up."""
    first, last = start.isoformat(), end.isoformat()
    if category_id is None and by not in ("category", "cell"):
        if by == "department" or (by in UNIT_GROUPS and by != scope.kind):
            units = select(Unit.id).where(Unit.kind == by,
                                          Unit.path.startswith(scope.path, autoescape=True))
            where = KpiUnitDay.unit_id.in_(units)
            key = KpiUnitDay.unit_id
        else:
            where = KpiUnitDay.unit_id == scope.id
            key = {None: literal(None), "day": KpiUnitDay.day}.get(by, KpiUnitDay.unit_id)
        stmt = select(key.label("key"), *_sums(KpiUnitDay)).where(
            KpiUnitDay.day >= first, KpiUnitDay.day <= last, where)
        keys = [key]
    else:
        if by == "department":
            raise ValueError("departments are rolled up over all categories")
        parent = Unit.__table__.alias("parent")
        keys = {None: [literal(None)], "community": [KpiDay.community_id],
                "category": [KpiDay.category_id], "day": [KpiDay.day], "street": [Unit.parent_id],
                "district": [parent.c.parent_id],
                "cell": [KpiDay.community_id, KpiDay.category_id]}[by]
        stmt = select(*(k.label(f"key{n}") for n, k in enumerate(keys)), *_sums(KpiDay)).where(
            KpiDay.day >= first, KpiDay.day <= last, _community_scope(scope))
        if by in ("street", "district"):
            stmt = stmt.join(Unit, Unit.id == KpiDay.community_id)
        if by == "district":
            stmt = stmt.join(parent, parent.c.id == Unit.parent_id)
        if category_id is not None:
            stmt = stmt.where(KpiDay.category_id == category_id)
    if by is not None:
        stmt = stmt.group_by(*keys)
    out: dict[object, Counters] = {}
    for row in session.exec(stmt).all():
        values = row._mapping
        if by == "cell":
            out[(values["key0"], values["key1"])] = _counters(row)
        else:
            out[values["key"] if "key" in values else values["key0"]] = _counters(row)
    if by is None and None not in out:
        out[None] = Counters()
    return out


def by_period(session: Session, scope: Unit, periods: list[Period], *,
              category_id: int | None = None) -> dict[str, Counters]:
    """Counters for each of consecutive periods (one query by day, folded in Python)."""
    if not periods:
        return {}
    days = totals(session, scope, periods[0].start, periods[-1].end, by="day",
                  category_id=category_id)
    out = {p.label: Counters() for p in periods}
    for day, counters in days.items():
        moment = date.fromisoformat(day)
        for period in periods:
            if period.start <= moment <= period.end:
                out[period.label].add(counters)
                break
    return out


def quantile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bucket_quantile(buckets: list[int], q: float) -> float | None:
    """A quantile read from the roll-ups' buckets (the bucket's upper bound, linearly within)."""
    total = sum(buckets)
    if not total:
        return None
    target = q * total
    seen = 0
    lower = 0.0
    for index, count in enumerate(buckets):
        upper = float(CLOSURE_BUCKETS[index]) if index < len(CLOSURE_BUCKETS) else lower * 2
        if seen + count >= target and count:
            return lower + (upper - lower) * (target - seen) / count
        seen += count
        lower = upper
    return lower


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
    return [tuple(row) for row in session.connection().execute(stmt).all()]


def closure_quantiles(session: Session, scope: Unit, start: date, end: date, *,
                      category_id: int | None = None) -> Quantiles:
    """Exact median and 90th percentile of closure time of the cases closed in the period."""
    rows = closed_rows(session, scope, start, end, category_id=category_id)
    hours = [h for _, _, h, _ in rows if h is not None]
    days = [float(d) for _, _, _, d in rows if d is not None]
    return Quantiles(len(rows), quantile(hours, 0.5), quantile(hours, 0.9), quantile(days, 0.5),
                     quantile(days, 0.9))
