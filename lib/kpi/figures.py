"""The assessment figures (考核指标), from the roll-ups: definitions in one table, each computed
with the counts behind it, for any period, part of the tree and category.

Definitions (docs/decisions.md, "Assessment definitions"; weights and the 基本满意 factor are
settings). Each rate says its base; none of them can be improved by moving a case out of it:

  response_rate      waits for a unit's first action begun in the period (a community's triage
                     of a report, an owner's decision, a department's sign-for of a work order —
                     a prompt, reasoned 退单 answers it — a called tier's answer), answered by
                     that unit within the limit / those waits
  resolution_rate    cases whose first commitment (the handling deadline set when the work was
                     taken on or dispatched, moved only by an extension granted before it
                     expired) fell in the period, resolved (verified on site) by it / those cases.
                     A call-up, return, hand-back, parking or reopen never takes a case out.
  resolved_late_rate of the same base, resolved after the first commitment (lower is better;
                     resolved late is not resolved)
  satisfaction_rate  (满意 + 0.9 × 基本满意) / cases closed in the period and rated (unreached:
                     unrated); shown with its base:
  callback_rate      cases closed with a call-back recorded before closing (the checker's 回访,
                     rated or "unreachable", or the reporter's own rating) / cases closed: a
                     close without any call-back attempt counts against it
  on_time_rate       cases closed in the period by their first commitment (or without one) /
                     cases closed in the period
  overdue_rate       cases closed in the period after their first commitment / cases closed in
                     the period (one base with on_time_rate: together 100 %)
  order_late_rate    lead work orders handled late or open past their deadline / made (工单)
  community_share    cases closed without leaving the community tier / closed (小事不出村社)
  street_share       cases closed without reaching the district / closed (大事不出镇街)
  return_rate        lead work orders returned / made (退单)
  rework_rate        rework moves / handle moves (返工)
  repeat_rate        reports where a case of the same community and category closed in the 90
                     days before at the same place — the same normalised address, or both on
                     the map within ``kpi.repeat_distance_m`` metres — / reports
  inspection_share   problems first found by covert inspection / reports (lower is better)
  mean_closure_hours hours from report to closure, averaged over cases closed
  hurries            催办 by reporters
  composite          response × 0.1 + resolution × 0.5 + satisfaction × 0.4 over the parts a
                     unit has data for: a part with no data (no rated case, no wait, no case
                     due) drops out and its weight is spread over the others in proportion
                     (``composite_weights``, shown per unit); none: no score

A figure whose denominator is 0 is "no data" (None), never an error. The median and 90th
percentile of closure time for a chosen period are exact (``closure_quantiles``, from the
cases); trend lines read them from the roll-ups' buckets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date
from functools import lru_cache

from sqlalchemy import and_, case, func, literal, text
from sqlmodel import Session, select

from lib.core.models import UnitKind
from lib.core.settings import get_float
from lib.kpi import published
from lib.kpi.models import CLOSURE_BUCKETS, KpiDay, KpiUnitDay
from lib.kpi.periods import (  # noqa: F401  (the figures' public names)
    Period,
    Quantiles,
    closed_rows,
    closure_quantiles,
    default_period,
    is_partial,
    last_periods,
    month_period,
    month_start_day,
    period_of_label,
    quantile,
    same_days_before,
    so_far,
    today,
)
from lib.kpi.rollup import Counters
from lib.org.models import Unit

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
    Figure("response_rate", "rate", "higher", lambda c, w: c.responded, lambda c, w: c.waits),
    Figure("resolution_rate", "rate", "higher", lambda c, w: c.resolved, lambda c, w: c.due),
    Figure("resolved_late_rate", "rate", "lower", lambda c, w: c.resolved_late,
           lambda c, w: c.due),
    Figure("satisfaction_rate", "rate", "higher", _satisfied, lambda c, w: c.rated),
    Figure("callback_rate", "rate", "higher", lambda c, w: c.called_back, lambda c, w: c.closed),
    Figure("rated_share", "rate", "higher", lambda c, w: c.rated, lambda c, w: c.closed),
    Figure("on_time_rate", "rate", "higher", lambda c, w: c.closed_on_time, lambda c, w: c.closed),
    Figure("overdue_rate", "rate", "lower", lambda c, w: c.closed_late, lambda c, w: c.closed),
    Figure("order_late_rate", "rate", "lower", lambda c, w: c.late, lambda c, w: c.dispatched),
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
# The overview's cards: the three parts of the composite, each with the figure that shows its
# base or its other side beside it (resolved late; the call-back rate), then closure.
HEADLINE = ["response_rate", "resolution_rate", "resolved_late_rate", "satisfaction_rate",
            "callback_rate", "on_time_rate", "overdue_rate", "community_share", "street_share",
            "mean_closure_hours"]
COMPOSITE_PARTS = ("response_rate", "resolution_rate", "satisfaction_rate")
# Which figure sits beside which on a page to show its base (figure → its companions).
BESIDE = {"satisfaction_rate": ("callback_rate", "rated_share"),
          "resolution_rate": ("resolved_late_rate",),
          "on_time_rate": ("overdue_rate",), "overdue_rate": ("on_time_rate",)}


# The base each rate is shown with on the pages ("基数：本期办结 N 件"): a catalog key taking
# ``count``, the rate's denominator.
BASE_TEXT = {"response_rate": "kpi.base.waits", "resolution_rate": "kpi.base.due",
             "resolved_late_rate": "kpi.base.due", "callback_rate": "kpi.base.closed",
             "rated_share": "kpi.base.closed", "on_time_rate": "kpi.base.closed",
             "overdue_rate": "kpi.base.closed"}


@dataclass(frozen=True)
class Value:
    """A figure's value with the counts behind it (``value`` None: no data)."""

    key: str
    value: float | None
    numerator: float
    denominator: float | None


def base_of(key: str, values: dict[str, Value]) -> tuple[str, dict[str, object]] | None:
    """The text stating a figure's base, as (catalog key, parameters), or None: the cases it
    is counted on; for satisfaction, the rated and closed cases and the call-backs beside it."""
    if key == "satisfaction_rate":
        back = values["callback_rate"]
        return "kpi.base.rated_closed", {"rated": f"{values[key].denominator or 0:,.0f}",
                                         "closed": f"{back.denominator or 0:,.0f}",
                                         "called": f"{back.numerator:,.0f}"}
    if key in BASE_TEXT and key in values:
        return BASE_TEXT[key], {"count": f"{values[key].denominator or 0:,.0f}"}
    return None


def weights(session: Session) -> dict[str, float]:
    """Composite weights and the 基本满意 factor, from the settings."""
    return {"response_rate": get_float(session, "kpi.weight_response"),
            "resolution_rate": get_float(session, "kpi.weight_resolution"),
            "satisfaction_rate": get_float(session, "kpi.weight_satisfaction"),
            "basic": get_float(session, "kpi.basic_satisfied_factor")}


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


def composite_weights(values: dict[str, Value], w: dict) -> dict[str, float]:
    """The weights a unit's composite used: each part's setting over the total of the parts the
    unit has data for (they add up to 1); a part with no data (e.g. no rated case) is left out,
    its weight spread over the others in proportion. Empty: no part, no score."""
    present = {k: w[k] for k in COMPOSITE_PARTS if values[k].value is not None}
    total = sum(present.values())
    if not total:
        return {}
    return {k: weight / total for k, weight in present.items()}


def composite(values: dict[str, Value], w: dict) -> Value:
    """The weighted sum of the parts a unit has data for, over those parts' weights
    (``composite_weights``)."""
    used = composite_weights(values, w)
    if not used:
        return Value("composite", None, 0, None)
    total = sum(w[k] for k in used)
    return Value("composite", sum(weight * values[k].value for k, weight in used.items()),
                 total, None)


# ---------------------------------------------------------------- summing the roll-ups


def _units(scope: Unit, kind: str | None = None):  # noqa: ANN202
    """SQL: the ids of the units of ``kind`` in the scope's area (None: the scope itself)."""
    if kind is None or kind == scope.kind:
        return select(Unit.id).where(Unit.id == scope.id)
    return select(Unit.id).where(Unit.kind == kind, Unit.path.startswith(scope.path, autoescape=True))


def _community_scope(scope: Unit):  # noqa: ANN202
    """SQL: ``kpi_day`` rows of the communities in the scope's area."""
    return KpiDay.unit_id.in_(_units(scope, UnitKind.community))


@lru_cache(maxsize=4)
def _sums(table) -> tuple:  # noqa: ANN001
    """The summed counters' columns, built once per table (expressions are immutable; building
    forty of them for every query cost more than running it)."""
    return tuple(_sum_columns(table))


def _sum_columns(table) -> list:  # noqa: ANN001
    return [func.coalesce(func.sum(getattr(table, name)), 0).label(name) for name in COUNTER_NAMES] \
        + [func.coalesce(func.sum(getattr(table, f"b{n}")), 0).label(f"b{n}")
           for n in range(len(CLOSURE_BUCKETS) + 1)]


def counters_of(values: dict) -> Counters:
    """Counters from a stored closed month's columns (the same names as a summed row's)."""
    counters = Counters(**{name: values.get(name, 0) for name in COUNTER_NAMES})
    counters.buckets = [int(values.get(f"b{n}", 0)) for n in range(len(CLOSURE_BUCKETS) + 1)]
    return counters


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
    or a kind of unit in the scope — "community", "street", "district" (key: the unit) — or
    "department" (the departments under the scope, by the work they led; not by category).

    Without a category the per-unit roll-up answers, with one (or by category) the per-unit-
    and-category one; either way a row per unit and day (and category)."""
    if by == "department" and category_id is not None:
        raise ValueError("departments are rolled up over all categories")
    stored = published.rows(session, scope, start, end, by=by, category_id=category_id)
    if stored is not None:  # a closed month: as published (docs/decisions.md, "Months that close")
        out = {key: counters_of(values) for key, values in stored.items()}
        return out if by is not None or None in out else {None: Counters()}
    by_category = category_id is not None or by in ("category", "cell")
    table = KpiDay if by_category else KpiUnitDay
    level = "community" if by == "cell" else by if by in UNIT_GROUPS else None
    keys = {None: [literal(None)], "day": [table.day], "category": [KpiDay.category_id],
            "cell": [KpiDay.unit_id, KpiDay.category_id]}.get(by, [table.unit_id])
    stmt = select(*(k.label(f"key{n}") for n, k in enumerate(keys)), *_sums(table)).where(
        table.day >= start.isoformat(), table.day <= end.isoformat(),
        table.unit_id.in_(_units(scope, level)))
    if category_id is not None:
        stmt = stmt.where(KpiDay.category_id == category_id)
    if by is not None:
        stmt = stmt.group_by(*keys)
    out: dict[object, Counters] = {}
    for row in session.exec(stmt).all():
        values = row._mapping
        key = (values["key0"], values["key1"]) if by == "cell" else values["key0"]
        out[key] = _counters(row)
    if by is None and None not in out:
        out[None] = Counters()
    return out


def by_period(session: Session, scope: Unit, periods: list[Period], *,
              category_id: int | None = None) -> dict[str, Counters]:
    """Counters for each of consecutive periods, summed in the database (one row each)."""
    if not periods:
        return {}
    table = KpiUnitDay if category_id is None else KpiDay
    where = KpiUnitDay.unit_id == scope.id if category_id is None else \
        and_(KpiDay.unit_id == scope.id, KpiDay.category_id == category_id)
    key = case(*[(and_(table.day >= p.start.isoformat(), table.day <= p.end.isoformat()), p.label)
                 for p in periods])
    stmt = select(key.label("key"), *_sums(table)).where(
        table.day >= periods[0].start.isoformat(), table.day <= periods[-1].end.isoformat(),
        where).group_by(text("1"))
    out = {p.label: Counters() for p in periods}
    for row in session.exec(stmt).all():
        if row._mapping["key"] in out:
            out[row._mapping["key"]] = _counters(row)
    # Closed months as published, whatever the live roll-ups say now.
    for label, values in published.by_labels(session, scope, [(p.start, p.end, p.label)
                                                              for p in periods],
                                             category_id=category_id).items():
        out[label] = counters_of(values) if values is not None else Counters()
    return out


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
