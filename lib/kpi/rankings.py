"""Rankings by composite score (考核排名) and the month's red and black lists (红黑榜).

Units are ranked among their peers: the streets of a district, the communities of a street (or
of a whole district), the departments under a unit. A unit with fewer cases than the minimum
(setting ``kpi.min_cases_to_rank``: reports in its area, or work orders it led for a department)
is shown with its figures but not ranked; so is one with no figure of the composite.

The composite is taken over the parts a unit has data for: a unit with no rated case has no
satisfaction score, and the satisfaction weight is spread over its other parts in proportion;
each row carries the weights it was scored with (``RankRow.weights``), and the page shows them.

Tie rule (TIE_RULE, docs/decisions.md "Assessment definitions"): units are ordered by composite
score; equal scores (to six decimals) by resolution rate (no case due: below any rate); then by
volume (the cases the minimum counts, more first); units equal on all three share a rank
(1, 2, 2, 4) and are listed by code. The red list is the best ``kpi.list_size`` (5), the black
list the worst, never more than half of the ranked units each, so no unit is on both.

Two units of one name among the rows (two 和平社区 under different streets) are named with their
parent's: "和平社区（春熙路街道）" — ``RankRow.unit`` is the unit as the ranking names it, so the
page, the lists, the month at a glance and the report show the same name.

A community reader sees only its own row: its figures, its place among its street's
communities and whether it is on a list — not its neighbours' figures.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.core.db import read_session
from lib.core.models import UnitKind
from lib.core.settings import get_int
from lib.kpi import access, extras, figures, published
from lib.kpi.figures import Period, Value
from lib.kpi.rollup import Counters
from lib.kpi.views import Context, Query, _context, compared
from lib.org.models import Unit
from lib.org.units import Actor

RED, BLACK = "red", "black"
TIE_RULE = ("composite", "resolution_rate", "cases")  # then a shared rank
PRECISION = 6  # decimals compared: scores equal to this are a tie


@dataclass(frozen=True)
class RankRow:
    unit: Unit
    values: dict[str, Value]
    extra: dict[str, Value]
    counters: Counters
    cases: int  # what the minimum is counted on
    rank: int | None  # None: not ranked (too few cases, or no data)
    listed: str | None = None  # RED, BLACK or None
    # The composite's weights this unit was scored with (part → share, adding up to 1; a part
    # without data is absent, its weight spread over the others). Empty: no score.
    weights: dict[str, float] = field(default_factory=dict)

    @property
    def score(self) -> float | None:
        return self.values["composite"].value


@dataclass
class Ranking:
    scope: Unit  # the unit whose units are ranked (a community reader: its street)
    period: Period
    level: str
    levels: list[str]
    rows: list[RankRow]
    ranked: int
    min_cases: int
    red: list[RankRow] = field(default_factory=list)
    black: list[RankRow] = field(default_factory=list)
    own_only: bool = False  # a community's view: its own row only
    category_ignored: bool = False  # departments are ranked over all categories


def settings(session: Session, period: Period | None = None) -> tuple[int, int]:
    """The minimum number of cases to be ranked, and the length of each list (for a closed
    month, those it was published with)."""
    kept = published.month_settings(session, period.start, period.end) if period else None
    if kept and "min_cases" in kept and "list_size" in kept:
        return int(kept["min_cases"]), int(kept["list_size"])
    return (max(0, get_int(session, "kpi.min_cases_to_rank")),
            max(1, get_int(session, "kpi.list_size")))


def order_key(row: RankRow) -> tuple[float, float, int]:
    """The tie rule as a sort key (smaller first): composite, then resolution rate (none: last),
    then volume. Rows with equal keys share a rank."""
    resolution = row.values["resolution_rate"].value
    return (-round(row.score or 0.0, PRECISION),
            -round(resolution, PRECISION) if resolution is not None else 1.0, -row.cases)


def named(session: Session, units: list[Unit]) -> dict[int, Unit]:
    """The units as a ranking names them: a unit whose name another of them shares carries its
    parent's name, "和平社区（春熙路街道）" ("Heping Community (Chunxilu Street)"). A copy, for
    showing only; the others are returned as they are."""
    counts_zh = Counter(u.name_zh for u in units)
    counts_en = Counter(u.name_en for u in units)
    twins = [u for u in units if counts_zh[u.name_zh] > 1 or counts_en[u.name_en] > 1]
    parents = {p.id: p for p in session.exec(select(Unit).where(
        Unit.id.in_({u.parent_id for u in twins if u.parent_id is not None})))} if twins else {}
    out = {u.id: u for u in units}
    for unit in twins:
        parent = parents.get(unit.parent_id)
        if parent is None:
            continue
        copy = Unit.model_validate(unit.model_dump())
        copy.name_zh = f"{unit.name_zh}（{parent.name_zh}）"
        copy.name_en = f"{unit.name_en} ({parent.name_en})"
        out[unit.id] = copy
    return out


def rank(session: Session, ctx: Context, peers: Unit, level: str) -> Ranking:
    """Every unit of ``level`` below ``peers`` with its figures and rank for the period."""
    min_cases, size = settings(session, ctx.period)
    category_id = None if level == "department" or ctx.category is None else ctx.category.id
    units = session.exec(select(Unit).where(
        Unit.kind == level, Unit.active.is_(True),
        Unit.path.startswith(peers.path, autoescape=True)).order_by(Unit.code)).all()
    span = ctx.so_far  # a month under way: its days so far (no deadline yet to come)
    sums = figures.totals(session, peers, span.start, span.end, by=level,
                          category_id=category_id) if units else {}
    more = extras.by_unit(session, peers, span, level, category_id)
    shown = named(session, list(units))
    rows = []
    for unit in units:
        counters = sums.get(unit.id, Counters())
        values = figures.evaluate(counters, ctx.weights)
        extra = {key: found.get(unit.id, extras.zero(key)) for key, found in more.items()}
        cases = counters.dispatched if level == "department" else counters.reported
        rows.append(RankRow(shown[unit.id], values, extra, counters, cases, None,
                            weights=figures.composite_weights(values, ctx.weights)))
    rankable = sorted((r for r in rows if r.cases >= min_cases and r.score is not None),
                      key=lambda r: (*order_key(r), r.unit.code))
    ranks: dict[int, int] = {}
    for position, row in enumerate(rankable, start=1):
        previous = rankable[position - 2] if position > 1 else None
        same = previous is not None and order_key(previous) == order_key(row)
        ranks[row.unit.id] = ranks[previous.unit.id] if same else position
    length = min(size, len(rankable) // 2)
    red_ids = {r.unit.id for r in rankable[:length]}
    black_ids = {r.unit.id for r in rankable[len(rankable) - length:]} if length else set()
    rows = [RankRow(r.unit, r.values, r.extra, r.counters, r.cases, ranks.get(r.unit.id),
                    RED if r.unit.id in red_ids else BLACK if r.unit.id in black_ids else None,
                    r.weights)
            for r in rows]
    rows.sort(key=lambda r: (r.rank is None, r.rank or 0, r.unit.code))
    by_id = {r.unit.id: r for r in rows}
    red = [by_id[r.unit.id] for r in rankable[:length]]
    black = [by_id[r.unit.id] for r in reversed(rankable[len(rankable) - length:])] if length else []
    return Ranking(peers, ctx.period, level, access.ranking_levels(peers), rows, len(rankable),
                   min_cases, red, black,
                   category_ignored=level == "department" and ctx.category is not None)


def rankings(actor: Actor | None, query: Query, level: str | None = None,
             engine: Engine | None = None) -> Ranking:
    """The ranking of the units of ``level`` (default: the nearest) below the chosen unit; for
    a community, its own row among its street's communities."""
    with read_session(engine) as session:
        ctx = _context(session, actor, query)
        if ctx.scope.kind == UnitKind.community:
            street = session.get(Unit, ctx.scope.parent_id)
            full = rank(session, ctx, street, "community")
            own = [r for r in full.rows if r.unit.id == ctx.scope.id]
            return Ranking(ctx.scope, ctx.period, "community", ["community"], own, full.ranked,
                           full.min_cases, own_only=True)
        levels = access.ranking_levels(ctx.scope)
        chosen = level if level in levels else levels[0]
        return rank(session, ctx, ctx.scope, chosen)


# ---------------------------------------------------------------- the leader's month at a glance


@dataclass
class Glance:
    """The month at a glance: ``values`` for ``current`` against ``before`` for ``previous``;
    while the period is under way (``partial``) its days so far against the previous period's
    same days."""

    scope: Unit
    period: Period
    previous: Period
    values: dict[str, Value]
    before: dict[str, Value]
    level: str | None
    worst: list[RankRow]
    current: Period | None = None
    partial: bool = False


WORST = 3


def glance(actor: Actor | None, engine: Engine | None = None, *,
           day: date | None = None) -> Glance:
    """The reader's area this month: the headline figures against last month's (the same days
    of it while the month is under way), and the three lowest-ranked units of the first level
    below with at least two ranked units."""
    with read_session(engine) as session:
        ctx = _context(session, actor, Query(), day=day)
        current, previous, values, before = compared(session, ctx)
        level, worst = None, []
        for candidate in access.ranking_levels(ctx.scope):
            if candidate == "department" or ctx.scope.kind == UnitKind.community:
                continue
            ranking = rank(session, ctx, ctx.scope, candidate)
            if ranking.ranked >= 2:
                ranked = [r for r in ranking.rows if r.rank is not None]
                level, worst = candidate, list(reversed(ranked))[:WORST]
                break
        return Glance(ctx.scope, ctx.period, previous, values, before, level, worst, current,
                      ctx.partial)
