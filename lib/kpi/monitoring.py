"""Monitoring (运行监测): what needs a leader's eye now, not at month end.

- Overdue now, by the unit holding the case (a tier unit, or the department handling it).
- Spikes: a category in a community with this week's reports (the last 7 days) above its
  baseline, the 8 weeks before: at least ``kpi.spike_min_cases`` reports and more than
  ``kpi.spike_sigma`` standard deviations (at least 1) above the baseline's weekly mean.
- Repeat places: an address with at least ``kpi.repeat_place_min`` reports of one category in
  90 days. Restricted categories are left out (their addresses are content only the handling
  chain reads).
- Long-parked cases: parked (挂账) for more than ``kpi.long_parked_days`` days.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Integer, String, case, column, func, text, values
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases.deadlines import current_due_sql, overdue_open
from lib.cases.models import Case, CaseEvent, CaseState
from lib.cases.states import Act
from lib.core.db import read_session
from lib.core.models import Category, UnitKind, utcnow
from lib.core.settings import get_int
from lib.core.workcal import CHINA_TZ
from lib.kpi import access
from lib.kpi.figures import _community_scope
from lib.kpi.models import KpiDay, KpiPlace
from lib.kpi.views import Query, _area_column, _context
from lib.org.models import Unit
from lib.org.units import Actor

WEEKS = 8
REPEAT_DAYS = 90
LIST_LIMIT = 20


@dataclass(frozen=True)
class Overdue:
    unit: Unit
    cases: int
    oldest_due: datetime | None


@dataclass(frozen=True)
class Spike:
    community: Unit
    category: Category
    this_week: int
    mean: float
    sd: float


@dataclass(frozen=True)
class RepeatPlace:
    community: Unit
    category: Category
    address: str
    reports: int
    last: datetime


@dataclass(frozen=True)
class Parked:
    case_id: int
    code: str
    category: Category
    community: Unit
    since: datetime | None
    review_at: datetime | None
    days: int


@dataclass
class Monitoring:
    scope: Unit
    now: datetime
    overdue: list[Overdue]
    spikes: list[Spike]
    repeats: list[RepeatPlace]
    parked: list[Parked]
    week: tuple[date, date]
    spike_min: int
    spike_sigma: int
    repeat_min: int
    parked_days: int


def _repeat_places(session: Session, communities: list[int], categories: list[int],
                   category_id: int | None, since: datetime, repeat_min: int) -> list[tuple]:
    """(community, category, address, reports, last) of the places with at least
    ``repeat_min`` reports since ``since``, most reports first. A place with n reports in the
    window has n − 1 of them reported within 90 days after another, each a row of ``kpi_place``:
    those rows name the few candidates, whose reports are then counted from the cases (the place
    index covers it)."""
    def counted(stmt):  # noqa: ANN001, ANN202
        if category_id is not None:
            stmt = stmt.where(Case.category_id == category_id)
        return session.exec(stmt.group_by(Case.community_id, Case.category_id, Case.address)
                            .having(func.count() >= repeat_min)
                            .order_by(func.count().desc(), Case.address).limit(LIST_LIMIT)).all()

    columns = (Case.community_id, Case.category_id, Case.address, func.count(),
               func.max(Case.reported_at))
    if repeat_min <= 1:  # every place reported at all: no candidates to narrow it down
        return counted(select(*columns).where(Case.community_id.in_(communities),
                                              Case.category_id.in_(categories),
                                              Case.reported_at >= since))
    first_day = since.astimezone(CHINA_TZ).date().isoformat()
    stmt = select(KpiPlace.community_id, KpiPlace.category_id, KpiPlace.address).where(
        KpiPlace.community_id.in_(communities), KpiPlace.category_id.in_(categories),
        KpiPlace.day >= first_day) \
        .group_by(KpiPlace.community_id, KpiPlace.category_id, KpiPlace.address) \
        .having(func.sum(KpiPlace.cases) >= repeat_min - 1)
    if category_id is not None:
        stmt = stmt.where(KpiPlace.category_id == category_id)
    candidates = [tuple(row) for row in session.exec(stmt).all()]
    found = []
    for chunk in range(0, len(candidates), 300):
        # Joined from a list of values, so each candidate is one search of the place index
        # (SQLite scans the whole index for a multi-column IN).
        part = values(column("c", Integer), column("k", Integer), column("a", String),
                      name="candidate").data(candidates[chunk:chunk + 300]).cte("candidate")
        found += counted(select(*columns).select_from(part).join(
            Case, (Case.community_id == part.c.c) & (Case.category_id == part.c.k)
            & (Case.address == part.c.a)).where(Case.reported_at >= since))
    found.sort(key=lambda row: (-row[3], row[2]))
    return found[:LIST_LIMIT]


def monitoring(actor: Actor | None, query: Query, engine: Engine | None = None,
               now: datetime | None = None) -> Monitoring:
    now = now or utcnow()
    with read_session(engine) as session:
        ctx = _context(session, actor, query)
        scope, area = ctx.scope, _area_column(ctx.scope)
        category_id = ctx.category.id if ctx.category is not None else None
        units = {u.id: u for u in session.exec(select(Unit)).all()}
        categories = {c.id: c for c in access.categories(session)}

        stmt = select(Case.unit_id, func.count(), func.min(current_due_sql())).where(
            *overdue_open(now), area == scope.id) \
            .group_by(Case.unit_id)
        if category_id is not None:
            stmt = stmt.where(Case.category_id == category_id)
        overdue = sorted((Overdue(units[u], n, due) for u, n, due in session.exec(stmt).all()
                          if u in units), key=lambda o: (-o.cases, o.unit.code))

        spike_min = get_int(session, "kpi.spike_min_cases")
        sigma = get_int(session, "kpi.spike_sigma")
        today = now.astimezone(CHINA_TZ).date()
        week_start = today - timedelta(days=6)
        first = week_start - timedelta(days=7 * WEEKS)
        # Weeks numbered 0 (the oldest of the baseline) to WEEKS (this week), summed in SQL.
        week = case(*[(KpiDay.day >= (week_start - timedelta(days=7 * (WEEKS - n))).isoformat(), n)
                      for n in range(WEEKS, 0, -1)], else_=0)
        stmt = select(KpiDay.unit_id, KpiDay.category_id, week, func.sum(KpiDay.reported)) \
            .where(KpiDay.day >= first.isoformat(), KpiDay.day <= today.isoformat(),
                   KpiDay.reported > 0, _community_scope(scope)).group_by(text("1"), text("2"),
                                                                        text("3"))
        if category_id is not None:
            stmt = stmt.where(KpiDay.category_id == category_id)
        weeks: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0] * (WEEKS + 1))
        for community, category, index, reported in session.exec(stmt).all():
            weeks[(community, category)][int(index)] += int(reported)
        spikes = []
        for (community, category), counts in weeks.items():
            baseline, current = counts[:WEEKS], counts[WEEKS]
            mean, sd = statistics.fmean(baseline), statistics.pstdev(baseline)
            if current >= spike_min and current > mean + sigma * max(sd, 1.0) \
                    and community in units and category in categories:
                spikes.append(Spike(units[community], categories[category], current, mean, sd))
        spikes.sort(key=lambda s: (-(s.this_week - s.mean), s.community.code))

        repeat_min = get_int(session, "kpi.repeat_place_min")
        since = now - timedelta(days=REPEAT_DAYS)
        open_categories = [c for c in categories.values() if not c.restricted]
        communities = session.exec(select(Unit.id).where(
            Unit.kind == UnitKind.community, Unit.path.startswith(scope.path, autoescape=True))).all()
        repeats = _repeat_places(session, list(communities), [c.id for c in open_categories],
                                 category_id, since, repeat_min)
        repeats = [RepeatPlace(units[c], categories[k], address, n, last)
                   for c, k, address, n, last in repeats]

        parked_days = get_int(session, "kpi.long_parked_days")
        parked_since = func.max(CaseEvent.at)
        stmt = select(Case.id, Case.code, Case.category_id, Case.community_id, Case.review_at,
                      parked_since).join(CaseEvent, (CaseEvent.case_id == Case.id)
                                         & (CaseEvent.action == Act.park)) \
            .where(area == scope.id, Case.state == CaseState.parked) \
            .group_by(Case.id, Case.code, Case.category_id, Case.community_id, Case.review_at) \
            .having(parked_since < now - timedelta(days=parked_days)) \
            .order_by(parked_since).limit(LIST_LIMIT * 5)
        if category_id is not None:
            stmt = stmt.where(Case.category_id == category_id)
        parked = [Parked(i, code, categories[k], units[c], at, review, (now - at).days)
                  for i, code, k, c, review, at in session.exec(stmt).all()]
        return Monitoring(scope, now, overdue, spikes[:LIST_LIMIT], repeats, parked,
                          (week_start, today), spike_min, sigma, repeat_min, parked_days)
