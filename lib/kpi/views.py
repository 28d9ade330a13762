"""What each assessment page shows, computed in the database from the roll-ups (or, for a
chosen period's exact closure times and the tier flow, from covering indexes on the cases):
every function takes the acting user, checks that they read figures and that the unit they
chose is in their area, and returns plain data for the page to draw.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases.models import Case
from lib.core.db import read_session
from lib.core.models import Category, Source, Tier, UnitKind
from lib.core.workcal import CHINA_TZ
from lib.kpi import access, extras, figures, published, reasons, rollup
from lib.kpi.figures import Period, Quantiles, Value
from lib.kpi.models import CLOSURE_BUCKETS, KpiFlow
from lib.kpi.rollup import Counters
from lib.org import geo
from lib.org.models import Unit
from lib.org.units import Actor

TREND_PERIODS = 12
PERIOD_CHOICES = 24


@dataclass(frozen=True)
class Query:
    """A page's filters: the assessment period (its label, None: the last complete one,
    ``periods.default_period``), the unit
    (None: the reader's own) and the category (None: all)."""

    label: str | None = None
    unit_id: int | None = None
    category_id: int | None = None


@dataclass
class Context:
    scope: Unit
    period: Period
    start_day: int
    weights: dict[str, float]
    category: Category | None
    day: date | None = None  # today (None: the clock's)

    @property
    def so_far(self) -> Period:
        """The period's days up to today (the whole period once it has ended): a month under way
        counts no deadline that has not come yet."""
        return figures.so_far(self.period, self.day)

    @property
    def partial(self) -> bool:
        return self.so_far.end != self.period.end


def _context(session: Session, actor: Actor | None, query: Query, *,
             day: date | None = None) -> Context:
    scope = access.scope(session, actor, query.unit_id)
    start_day = figures.month_start_day(session)
    label = query.label or figures.default_period(start_day, day).label
    period = figures.period_of_label(label, start_day)
    kept = published.month_settings(session, period.start, period.end) or {}  # a closed month's
    return Context(scope, period, start_day, kept.get("weights") or figures.weights(session),
                   access.category(session, query.category_id), day)


def _category_id(ctx: Context) -> int | None:
    return ctx.category.id if ctx.category is not None else None


@dataclass(frozen=True)
class Options:
    """What the filters offer: periods newest first (the one under way first, partial), units
    of the reader's area, categories; ``default`` is the label a page opens on."""

    periods: list[Period]
    units: list[Unit]
    categories: list[Category]
    current: str
    default: str = ""


def options(actor: Actor | None, engine: Engine | None = None) -> Options:
    with read_session(engine) as session:
        units = access.scope_choices(session, actor)
        start_day = figures.month_start_day(session)
        current = figures.month_period(figures.today(), start_day).label
        periods = list(reversed(figures.last_periods(current, PERIOD_CHOICES, start_day)))
        return Options(periods, units, access.categories(session), current,
                       figures.default_period(start_day).label)


# The assessment pages' address: a small, fixed set, so that a view can be shared and the
# filters follow the reader from page to page. ``period`` is a label of ``Options.periods``
# ("2026-11"), ``unit`` a unit's code in the reader's area, ``category`` a category's key.
ADDRESS = ("period", "unit", "category")


@dataclass(frozen=True)
class Address:
    """The filters an address asked for, checked: ``query`` (what the page shows), ``params``
    (the address to write back: only values that are valid and not the default) and
    ``problems`` (catalog keys of the values refused, each fell back to the default)."""

    query: Query
    params: dict[str, str]
    problems: list[str]


def from_address(options: Options, params: Mapping[str, str]) -> Address:
    """The filters of an address, each checked against what the reader may choose; a value
    that is not offered (a month outside the choices, a unit outside the reader's area, an
    unknown category) falls back to the default with a message, never an error."""
    problems: list[str] = []
    out: dict[str, str] = {}
    labels = {p.label for p in options.periods}
    label = options.default or options.current
    raw = params.get("period")
    if raw:
        if raw in labels:
            label = raw
        else:
            problems.append("kpi.nav.bad_period")
    out["period"] = label
    unit_id = None
    raw = params.get("unit")
    if raw:
        by_code = {u.code: u for u in options.units}
        if raw in by_code:
            unit_id = by_code[raw].id
            if options.units and by_code[raw].id != options.units[0].id:
                out["unit"] = raw
        else:
            problems.append("kpi.nav.bad_unit")
    category_id = None
    raw = params.get("category")
    if raw:
        by_key = {c.key: c for c in options.categories}
        if raw in by_key:
            category_id = by_key[raw].id
            out["category"] = raw
        else:
            problems.append("kpi.nav.bad_category")
    return Address(Query(label=label, unit_id=unit_id, category_id=category_id), out, problems)


def address_of(options: Options, query: Query) -> dict[str, str]:
    """The address of a query (the inverse of ``from_address``)."""
    out = {"period": query.label or options.default or options.current}
    units = {u.id: u for u in options.units}
    if query.unit_id in units and options.units and query.unit_id != options.units[0].id:
        out["unit"] = units[query.unit_id].code
    categories = {c.id: c for c in options.categories}
    if query.category_id in categories:
        out["category"] = categories[query.category_id].key
    return out


def refresh_if_stale(engine: Engine | None = None) -> datetime | None:
    """Start bringing the roll-ups up to date if they are more than a minute old (beside the
    page, which does not wait); returns when the figures it draws were computed."""
    return rollup.refresh_if_stale(engine)


# ---------------------------------------------------------------- overview


@dataclass(frozen=True)
class TrendPoint:
    label: str
    values: dict[str, Value]
    counters: Counters
    median_hours: float | None  # from the roll-ups' buckets (an estimate within a bucket)
    p90_hours: float | None


@dataclass
class Overview:
    """The overview's cards: ``values`` for ``current`` against ``before`` for ``previous``.
    While the chosen period is under way (``partial``), ``current`` is its days so far and
    ``previous`` the same days of the period before (1–3 December against 1–3 November), so
    that the change compares like with like."""

    scope: Unit
    period: Period
    previous: Period
    values: dict[str, Value]
    before: dict[str, Value]
    quantiles: Quantiles
    trend: list[TrendPoint]
    categories: list[tuple[Category, Counters]]
    extra: dict[str, Value]
    extra_before: dict[str, Value]
    current: Period | None = None
    partial: bool = False


def trend(session: Session, ctx: Context, count: int = TREND_PERIODS) -> list[TrendPoint]:
    """The last ``count`` periods, the chosen one last (its days so far while under way)."""
    periods = figures.last_periods(ctx.period.label, count, ctx.start_day)
    periods[-1] = ctx.so_far
    sums = figures.by_period(session, ctx.scope, periods, category_id=_category_id(ctx))
    return [TrendPoint(p.label, figures.evaluate(sums[p.label], ctx.weights), sums[p.label],
                       figures.bucket_quantile(sums[p.label].buckets, 0.5),
                       figures.bucket_quantile(sums[p.label].buckets, 0.9)) for p in periods]


def compared(session: Session, ctx: Context) -> tuple[Period, Period, dict[str, Value],
                                                       dict[str, Value]]:
    """The chosen period's figures (so far) and the ones they are compared with: the whole
    previous period, or — while the chosen one is under way — the previous period's same days
    (read from the roll-ups, like the month under way)."""
    current = ctx.so_far
    previous = figures.same_days_before(ctx.period, ctx.start_day, ctx.day)
    category_id = _category_id(ctx)
    now = figures.totals(session, ctx.scope, current.start, current.end,
                         category_id=category_id)[None]
    before = figures.totals(session, ctx.scope, previous.start, previous.end,
                            category_id=category_id)[None]
    return current, previous, figures.evaluate(now, ctx.weights), \
        figures.evaluate(before, ctx.weights)


def overview(actor: Actor | None, query: Query, engine: Engine | None = None, *,
             day: date | None = None) -> Overview:
    with read_session(engine) as session:
        ctx = _context(session, actor, query, day=day)
        category_id = _category_id(ctx)
        points = trend(session, ctx)
        if ctx.partial:
            current, previous, values, before_values = compared(session, ctx)
        else:
            current, previous = ctx.period, ctx.period.previous(ctx.start_day)
            values = points[-1].values
            before_values = points[-2].values if len(points) > 1 \
                else figures.evaluate(Counters(), ctx.weights)
        by_category = figures.totals(session, ctx.scope, current.start, current.end,
                                     by="category", category_id=category_id)
        categories = [(c, by_category.get(c.id, Counters())) for c in access.categories(session)
                      if category_id is None or c.id == category_id]
        quantiles = figures.closure_quantiles(session, ctx.scope, ctx.period.start,
                                              ctx.period.end, category_id=category_id)
        extra = extras.values(session, ctx.scope, current, category_id)
        extra_before = extras.values(session, ctx.scope, previous, category_id)
        return Overview(ctx.scope, ctx.period, previous, values, before_values, quantiles,
                        points, categories, extra, extra_before, current, ctx.partial)


# ---------------------------------------------------------------- satisfaction


@dataclass
class Satisfaction:
    scope: Unit
    period: Period
    values: dict[str, Value]
    counters: Counters
    by_unit: list[tuple[Unit, dict[str, Value], Counters]]
    by_category: list[tuple[Category, dict[str, Value], Counters]]
    reasons: list[reasons.Group]
    trend: list[TrendPoint]

    @property
    def unrated(self) -> int:
        return self.counters.closed - self.counters.rated


def _children(session: Session, scope: Unit) -> tuple[str | None, list[Unit]]:
    """The next tier's units below the scope (a community has none)."""
    below = {UnitKind.city: UnitKind.district, UnitKind.district: UnitKind.street,
             UnitKind.street: UnitKind.community}.get(UnitKind(scope.kind))
    if below is None:
        return None, []
    units = session.exec(select(Unit).where(Unit.parent_id == scope.id, Unit.kind == below,
                                            Unit.active.is_(True)).order_by(Unit.code)).all()
    return str(below), list(units)


def satisfaction(actor: Actor | None, query: Query, engine: Engine | None = None) -> Satisfaction:
    with read_session(engine) as session:
        ctx = _context(session, actor, query)
        category_id = _category_id(ctx)
        start, end = ctx.period.start, ctx.period.end
        total = figures.totals(session, ctx.scope, start, end, category_id=category_id)[None]
        level, units = _children(session, ctx.scope)
        by_unit = []
        if level is not None:
            sums = figures.totals(session, ctx.scope, start, end, by=level, category_id=category_id)
            by_unit = [(u, figures.evaluate(sums.get(u.id, Counters()), ctx.weights),
                        sums.get(u.id, Counters())) for u in units]
        sums = figures.totals(session, ctx.scope, start, end, by="category",
                              category_id=category_id)
        by_category = [(c, figures.evaluate(sums.get(c.id, Counters()), ctx.weights),
                        sums.get(c.id, Counters())) for c in access.categories(session)
                       if category_id is None or c.id == category_id]
        groups = reasons.grouped(session, ctx.scope, start, end, category_id)
        return Satisfaction(ctx.scope, ctx.period, figures.evaluate(total, ctx.weights), total,
                            by_unit, by_category, groups, trend(session, ctx))


# ---------------------------------------------------------------- closure time


@dataclass(frozen=True)
class ClosureGroup:
    key: object  # a tier, or a Category
    quantiles: Quantiles
    on_time: Value | None = None


@dataclass
class Closure:
    scope: Unit
    period: Period
    quantiles: Quantiles
    mean: Value
    histogram: list[tuple[str, int]]  # bucket label (hours) → closed cases
    by_tier: list[ClosureGroup]
    by_category: list[ClosureGroup]
    on_time: Value
    trend: list[TrendPoint]
    overdue: Value | None = None  # closed late: one base with ``on_time``


def bucket_labels() -> list[str]:
    """"≤4", "4–8" … ">720" (hours)."""
    labels, lower = [], 0
    for bound in CLOSURE_BUCKETS:
        labels.append(f"≤{bound}" if lower == 0 else f"{lower}–{bound}")
        lower = bound
    return [*labels, f">{lower}"]


def _quantiles(rows: list[tuple[float | None, int | None]]) -> Quantiles:
    hours = [h for h, _ in rows if h is not None]
    days = [float(d) for _, d in rows if d is not None]
    return Quantiles(len(rows), figures.quantile(hours, 0.5), figures.quantile(hours, 0.9),
                     figures.quantile(days, 0.5), figures.quantile(days, 0.9))


def closure(actor: Actor | None, query: Query, engine: Engine | None = None) -> Closure:
    with read_session(engine) as session:
        ctx = _context(session, actor, query)
        category_id = _category_id(ctx)
        start, end = ctx.period.start, ctx.period.end
        rows = figures.closed_rows(session, ctx.scope, start, end, category_id=category_id)
        total = figures.totals(session, ctx.scope, start, end, category_id=category_id)[None]
        values = figures.evaluate(total, ctx.weights)
        tiers: dict[str, list] = defaultdict(list)
        cats: dict[int, list] = defaultdict(list)
        for category, tier, hours, days in rows:
            tiers[tier].append((hours, days))
            cats[category].append((hours, days))
        by_tier = [ClosureGroup(str(t), _quantiles(tiers[str(t)])) for t in Tier if tiers.get(str(t))]
        sums = figures.totals(session, ctx.scope, start, end, by="category",
                              category_id=category_id)
        by_category = [ClosureGroup(c, _quantiles(cats.get(c.id, [])),
                                    figures.evaluate(sums.get(c.id, Counters()), ctx.weights)
                                    ["on_time_rate"])
                       for c in access.categories(session)
                       if category_id is None or c.id == category_id]
        return Closure(ctx.scope, ctx.period, _quantiles([(h, d) for _, _, h, d in rows]),
                       values["mean_closure_hours"], list(zip(bucket_labels(), total.buckets,
                                                               strict=True)),
                       by_tier, by_category, values["on_time_rate"], trend(session, ctx),
                       values["overdue_rate"])


# ---------------------------------------------------------------- tier flow


@dataclass
class Flow:
    """Cases reported in the period: where they came from (every case starts at its
    community), the highest tier they were called up to, and where they stand: closed at a
    tier, still open, rejected or merged. ``links`` are (from node, to node, cases)."""

    scope: Unit
    period: Period
    links: list[tuple[str, str, int]]
    cases: int


def flow(actor: Actor | None, query: Query, engine: Engine | None = None) -> Flow:
    with read_session(engine) as session:
        ctx = _context(session, actor, query)
        stmt = select(KpiFlow.source, KpiFlow.reached_tier, KpiFlow.outcome,
                      func.sum(KpiFlow.cases)).where(
            KpiFlow.day >= ctx.period.start.isoformat(), KpiFlow.day <= ctx.period.end.isoformat(),
            KpiFlow.community_id.in_(_communities(ctx.scope))) \
            .group_by(KpiFlow.source, KpiFlow.reached_tier, KpiFlow.outcome)
        if ctx.category is not None:
            stmt = stmt.where(KpiFlow.category_id == ctx.category.id)
        links: dict[tuple[str, str], int] = defaultdict(int)
        cases = 0
        for source, reached, outcome, count in session.exec(stmt).all():
            count = int(count)
            cases += count
            end = outcome if outcome.startswith("closed:") else f"outcome:{outcome}"
            links[(f"source:{source}", f"reached:{reached}")] += count
            links[(f"reached:{reached}", end)] += count
        order = {f"source:{s}": n for n, s in enumerate(Source)} | \
            {f"reached:{t}": 10 + n for n, t in enumerate(Tier)}
        ordered = sorted(links.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1]))
        return Flow(ctx.scope, ctx.period, [(a, b, n) for (a, b), n in ordered], cases)


def _communities(scope: Unit):  # noqa: ANN202
    """SQL: the ids of the communities in the scope's area."""
    return select(Unit.id).where(Unit.kind == UnitKind.community,
                                 Unit.path.startswith(scope.path, autoescape=True))


def _bounds(period: Period) -> tuple[datetime, datetime]:
    first = datetime.combine(period.start, datetime.min.time(), CHINA_TZ)
    last = datetime.combine(period.end + timedelta(days=1), datetime.min.time(), CHINA_TZ)
    return first, last


def _area_column(scope: Unit):  # noqa: ANN202
    return {UnitKind.community: Case.community_id, UnitKind.street: Case.street_id,
            UnitKind.district: Case.district_id, UnitKind.city: Case.city_id}[UnitKind(scope.kind)]


# ---------------------------------------------------------------- where


@dataclass
class Where:
    scope: Unit
    period: Period
    figure: str
    communities: list[Unit]
    values: dict[int, Value]  # community id → the chosen figure
    counts: dict[int, Counters]
    cells: dict[tuple[int, int], Value]  # (community, category) → the chosen figure
    categories: list[Category]
    points: list[tuple[float, float, int]]  # lon, lat, category id (open content only)
    points_limit: int
    features: dict[str, dict]  # community code → its GeoJSON boundary
    missing: list[str]  # districts without a boundary file
    problem: str | None = None  # a boundary file that could not be read


POINTS_LIMIT = 2000


def where(actor: Actor | None, query: Query, figure: str = "reported",
          engine: Engine | None = None) -> Where:
    if figure not in figures.BY_KEY and figure != "composite":
        figure = "reported"
    with read_session(engine) as session:
        ctx = _context(session, actor, query)
        category_id = _category_id(ctx)
        start, end = ctx.so_far.start, ctx.so_far.end
        communities = list(session.exec(select(Unit).where(
            Unit.kind == UnitKind.community, Unit.active.is_(True),
            Unit.path.startswith(ctx.scope.path, autoescape=True)).order_by(Unit.code)).all())
        counts = figures.totals(session, ctx.scope, start, end, by="community",
                                category_id=category_id)
        values = {c.id: figures.evaluate(counts.get(c.id, Counters()), ctx.weights)[figure]
                  for c in communities}
        cells = {key: figures.evaluate(c, ctx.weights)[figure] for key, c in figures.totals(
            session, ctx.scope, start, end, by="cell", category_id=category_id).items()}
        categories = [c for c in access.categories(session)
                      if category_id is None or c.id == category_id]
        first, last = _bounds(ctx.period)
        restricted = [c.id for c in categories if c.restricted]
        # Read from the located cases' index (reported_at first, newest first).
        stmt = select(Case.longitude, Case.latitude, Case.category_id).where(
            Case.reported_at >= first, Case.reported_at < last, Case.latitude.is_not(None),
            Case.community_id.in_([c.id for c in communities]),
            Case.category_id.not_in(restricted)).order_by(Case.reported_at.desc()) \
            .limit(POINTS_LIMIT)
        if category_id is not None:
            stmt = stmt.where(Case.category_id == category_id)
        points = [(lon, lat, cat) for lon, lat, cat in session.exec(stmt).all()]
        districts = sorted({_district_code(session, c) for c in communities} - {None})
    wanted = {c.code for c in communities}
    features, missing, problem = {}, [], None
    for code in districts:
        try:
            found = geo.load_boundaries(code)
        except ValueError as err:
            found, problem = None, str(err)
        if found is None:
            missing.append(code)
            continue
        features.update({f["properties"]["code"]: f for f in found["features"]
                         if f["properties"]["code"] in wanted})
    return Where(ctx.scope, ctx.period, figure, communities, values, counts, cells, categories,
                 points, POINTS_LIMIT, features, missing, problem)


def _district_code(session: Session, community: Unit) -> str | None:
    street = session.get(Unit, community.parent_id) if community.parent_id else None
    district = session.get(Unit, street.parent_id) if street and street.parent_id else None
    return district.code if district is not None else None


# ---------------------------------------------------------------- small helpers for pages


def delta(now: Value, before: Value) -> float | None:
    """The change of a figure against the previous period (None when either has no data)."""
    if now.value is None or before.value is None:
        return None
    return now.value - before.value
