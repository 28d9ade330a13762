"""The KPI roll-ups: for each day (China time), tier unit and category, counters that add up
over any period (``kpi_day``); the same per unit over all categories, departments included
(``kpi_unit_day``); the tier flow (``kpi_flow``) and each period's exact closure quantiles per
unit (``kpi_quantile``) — so that a leader's page sums a few dozen rows instead of walking a
million cases.

A day's rows are recomputed whole from the cases, never patched: what was reported (and which
of those repeat a closed case's place), closed, and first committed to that day, the waits for
a first action begun that day, the lead work orders made that day, and the moves of that day
(definitions: lib.kpi.figures; docs/decisions.md "Assessment definitions"). ``refresh`` (the
tick, once a minute) recomputes the days that cases moved since the last refresh touch
(``touched_days``): their days before and after (``kpi_case`` keeps the days each case was
counted on), their work orders' and waits' days, the days of their new events, the days of the
later reports at the place of a case whose closure changed, and the days of work orders whose
deadline has just passed (they turn late). ``rebuild`` recomputes every day (``python -m lib kpi-rebuild``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, bindparam, delete, exists, false, func, insert, literal, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases import places
from lib.cases.machine import CASES
from lib.cases.models import Case, CaseEvent, CaseWait, WorkOrder, WorkOrderState
from lib.cases.states import DROPPED, RESOLVED, Act, S
from lib.core import jobs
from lib.core.db import read_session, write_session
from lib.core.models import Category, Rating, Source, Tier, UnitKind, utcnow
from lib.core.settings import get_int
from lib.core.workcal import CHINA_TZ, working_days_between
from lib.kpi import periods, published
from lib.kpi.models import (
    CLOSURE_BUCKETS,
    KpiCase,
    KpiDay,
    KpiFlow,
    KpiPlace,
    KpiQuantile,
    KpiRefresh,
    KpiUnitDay,
)
from lib.org.models import Unit

REPEAT_WINDOW = timedelta(days=90)
SAFETY = timedelta(seconds=60)  # moves committed a little after they were stamped
# The moves that feed a counter of their own (``Move.counts``: action → ``kpi_day`` column).
COUNTED_MOVES = {a: m.counts for a, m in CASES.where(lambda m: m.counts).items()}
OPEN = "open"  # the tier flow's outcome of a case not closed, rejected or merged


def day_of(moment: datetime | None) -> str | None:
    return moment.astimezone(CHINA_TZ).date().isoformat() if moment is not None else None


def bounds(day: str) -> tuple[datetime, datetime]:
    """The day's first moment and the next day's, China time."""
    start = datetime.combine(date.fromisoformat(day), time(0), CHINA_TZ)
    return start, start + timedelta(days=1)


@dataclass
class Counters:
    """One ``kpi_day`` row's counters (the table's columns but its key)."""

    reported: int = 0
    resident_reported: int = 0
    inspection_found: int = 0
    repeat: int = 0
    closed: int = 0
    closed_community: int = 0
    closed_street: int = 0
    closed_on_time: int = 0
    closed_late: int = 0
    closure_hours: float = 0.0
    closure_workdays: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(CLOSURE_BUCKETS) + 1))
    called_back: int = 0
    rated: int = 0
    satisfied: int = 0
    basic: int = 0
    dissatisfied: int = 0
    dispatched: int = 0
    signed_on_time: int = 0
    returned: int = 0
    late: int = 0
    due: int = 0
    resolved: int = 0
    resolved_late: int = 0
    waits: int = 0
    responded: int = 0
    handled: int = 0
    reworked: int = 0
    hurried: int = 0

    def add(self, other: Counters) -> None:
        for spec in fields(self):
            if spec.name == "buckets":
                self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]
            else:
                setattr(self, spec.name, getattr(self, spec.name) + getattr(other, spec.name))


def bucket_of(hours: float) -> int:
    for index, bound in enumerate(CLOSURE_BUCKETS):
        if hours <= bound:
            return index
    return len(CLOSURE_BUCKETS)


@dataclass
class DayRows:
    """One day's counters: per community and category (areas), per department (its work)."""

    cells: dict[tuple[int, int], Counters] = field(default_factory=lambda: defaultdict(Counters))
    departments: dict[int, Counters] = field(default_factory=lambda: defaultdict(Counters))
    # (community, category, source, highest tier, outcome) -> cases reported that day
    flow: dict[tuple[int, int, str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    # (community, category, address) -> the day's reports at a place reported before within
    # 90 days (open categories only)
    places: dict[tuple[int, int, str], int] = field(default_factory=lambda: defaultdict(int))


def outcome(state: str, owner_tier: str | None) -> str:
    """Where a case stands for the tier flow: closed at its owner's tier, rejected, merged or
    still open."""
    if state == S.closed:
        return f"closed:{owner_tier}"
    if state in DROPPED:
        return str(state)
    return OPEN


DEGREE_M = 111_195.0  # metres in a degree of latitude (and of longitude at the equator)
BOX_LATITUDE = 60.0  # the bounding box's width holds up to this latitude (China: below 54°)


def repeat_distance(session: Session) -> float:
    """How close two located reports must be to be one place (setting, metres)."""
    return float(max(0, get_int(session, "kpi.repeat_distance_m")))


def near(metres: float, a_lat, a_lon, b_lat, b_lon):  # noqa: ANN001, ANN201
    """SQL: both points known and within the bounding box of ``metres`` around each other
    (the exact distance is checked in Python, ``same_place``)."""
    d_lat = metres / DEGREE_M
    d_lon = d_lat / math.cos(math.radians(BOX_LATITUDE))
    return and_(a_lat.is_not(None), a_lon.is_not(None), b_lat.is_not(None), b_lon.is_not(None),
                b_lat >= a_lat - d_lat, b_lat <= a_lat + d_lat,
                b_lon >= a_lon - d_lon, b_lon <= a_lon + d_lon)


def place_match(metres: float, a, b):  # noqa: ANN001, ANN201
    """SQL: ``a`` and ``b`` (case tables) may be at one place: the same normalised address, or
    both located within the bounding box."""
    return or_(and_(a.c.place_key.is_not(None), a.c.place_key != "",
                    b.c.place_key == a.c.place_key),
               near(metres, a.c.latitude, a.c.longitude, b.c.latitude, b.c.longitude))


def same_place(metres: float, a: tuple, b: tuple) -> bool:
    """Two cases at one place, each given as (place_key, latitude, longitude): the same
    normalised address, or both located within ``metres`` of each other."""
    if a[0] and a[0] == b[0]:  # no address: "" (or None before it was filled)
        return True
    if None in (a[1], a[2], b[1], b[2]):
        return False
    return places.distance_m(a[1], a[2], b[1], b[2]) <= metres


def repeats(session: Session, start: datetime, end: datetime, metres: float) -> list[tuple[int, int]]:
    """(community, category) of each report made in [start, end) where a case of the same
    community and category closed in the 90 days before it, at the same place: matched in SQL by
    normalised address or bounding box, the distance then checked exactly."""
    table = Case.__table__
    later, earlier = table.alias("later"), table.alias("earlier")
    found = session.exec(
        select(later.c.id, later.c.community_id, later.c.category_id, later.c.reported_at,
               later.c.place_key, later.c.latitude, later.c.longitude, earlier.c.closed_at,
               earlier.c.place_key, earlier.c.latitude, earlier.c.longitude)
        .join(earlier, (earlier.c.community_id == later.c.community_id)
              & (earlier.c.category_id == later.c.category_id) & (earlier.c.id != later.c.id)
              & place_match(metres, later, earlier))
        .where(later.c.reported_at >= start, later.c.reported_at < end,
               earlier.c.closed_at >= start - REPEAT_WINDOW, earlier.c.closed_at < end)).all()
    out: dict[int, tuple[int, int]] = {}
    for case_id, community, category, reported_at, key, lat, lon, closed_at, e_key, e_lat, e_lon \
            in found:
        if case_id in out or not reported_at - REPEAT_WINDOW <= closed_at < reported_at:
            continue
        if same_place(metres, (key, lat, lon), (e_key, e_lat, e_lon)):
            out[case_id] = (community, category)
    return list(out.values())


def later_report_days(session: Session, case: Case, closed_days: Iterable[str],
                      metres: float) -> set[str]:
    """The days of the reports at the case's place (same community and category) made within
    90 days after any of ``closed_days`` (its old and new closure): whether they are repeats
    depends on its closure."""
    days: set[str] = set()
    table = Case.__table__
    for closed_day in closed_days:
        first, _ = bounds(closed_day)
        same_key = table.c.place_key == case.place_key if case.place_key else false()
        match = or_(same_key, near(metres, literal(case.latitude), literal(case.longitude),
                                   table.c.latitude, table.c.longitude)) \
            if case.latitude is not None and case.longitude is not None else same_key
        for reported_at, key, lat, lon in session.exec(
                select(table.c.reported_at, table.c.place_key, table.c.latitude, table.c.longitude)
                .where(table.c.community_id == case.community_id,
                       table.c.category_id == case.category_id, table.c.id != case.id,
                       table.c.reported_at >= first,
                       table.c.reported_at < first + REPEAT_WINDOW + timedelta(days=1), match)).all():
            if same_place(metres, (case.place_key, case.latitude, case.longitude), (key, lat, lon)):
                days.add(day_of(reported_at))
    return days


def compute_day(session: Session, day: str, now: datetime) -> DayRows:
    """Every community and category's counters for one day, from the cases; and every
    department's, for the work orders it led and the cases it handled."""
    start, end = bounds(day)
    out = DayRows()
    rows = out.cells
    tier_of = dict(session.exec(select(Unit.id, Unit.tier)).all())
    departments = set(session.exec(select(Unit.id).where(Unit.kind == UnitKind.department)).all())

    reported = session.exec(select(Case.community_id, Case.category_id, Case.source,
                                   Case.reached_tier, Case.state, Case.owner_id)
                            .where(Case.reported_at >= start, Case.reported_at < end)).all()
    for community, category, source, reached, state, owner in reported:
        row = rows[(community, category)]
        row.reported += 1
        row.resident_reported += source == Source.resident
        row.inspection_found += source == Source.inspection
        out.flow[(community, category, source, reached, outcome(state, tier_of.get(owner)))] += 1
    # Monitoring's repeat-place candidates: the day's reports at an address (same community,
    # category and address text) reported before within 90 days (open categories only).
    earlier = Case.__table__.alias("earlier")
    window = start - REPEAT_WINDOW
    pairs = session.exec(
        select(Case.id, Case.community_id, Case.category_id, Case.address, Case.reported_at,
               earlier.c.reported_at)
        .join(Category, Category.id == Case.category_id)
        .join(earlier, (earlier.c.community_id == Case.community_id)
              & (earlier.c.category_id == Case.category_id) & (earlier.c.address == Case.address)
              & (earlier.c.id != Case.id))
        .where(Case.reported_at >= start, Case.reported_at < end, Category.restricted.is_(False),
               earlier.c.reported_at >= window, earlier.c.reported_at < end)).all()
    placed: set[int] = set()
    for case_id, community, category, address, reported_at, earlier_at in pairs:
        if case_id not in placed and reported_at - REPEAT_WINDOW <= earlier_at < reported_at:
            placed.add(case_id)
            out.places[(community, category, address)] += 1
    # Repeats: the day's reports where a case of the same community and category closed in the
    # 90 days before, at the same place (``same_place``).
    metres = repeat_distance(session)
    for community, category in repeats(session, start, end, metres):
        rows[(community, category)].repeat += 1

    def targets(key: tuple[int, int], unit_id: int | None) -> list[Counters]:
        """The area's row, and the department's when a department did the work."""
        return [rows[key], out.departments[unit_id]] if unit_id in departments else [rows[key]]

    # A call-back recorded before closing: the checker's call-back (rated, or the reporter could
    # not be reached) or the reporter's own rating.
    # (The action wrapped in a function: SQLite would otherwise walk every feedback event of
    # the year by the (action, at) index for each case, 8 s a day at 100,000 cases, instead of
    # the case's own few events by (case_id, seq).)
    called = exists().where(CaseEvent.case_id == Case.id,
                            func.lower(CaseEvent.action).in_([Act.feedback, Act.rate]),
                            CaseEvent.at <= Case.closed_at)
    for community, category, handler, tier, closed_at, committed, hours, workdays, rating, \
            called_back in session.exec(
                select(Case.community_id, Case.category_id, Case.handler_id, Case.reached_tier,
                       Case.closed_at, Case.committed_due_at, Case.closure_hours,
                       Case.closure_workdays, Case.rating, called.label("called_back"))
                .where(Case.state == S.closed, Case.closed_at >= start,
                       Case.closed_at < end)).all():
        hours = hours or 0.0
        on_time = committed is None or closed_at <= committed
        for row in targets((community, category), handler):
            row.closed += 1
            row.closed_community += tier == Tier.community
            row.closed_street += tier in (Tier.community, Tier.street)
            row.closed_on_time += on_time
            row.closed_late += not on_time
            row.called_back += bool(called_back)
            row.closure_hours += hours
            row.closure_workdays += workdays or 0
            row.buckets[bucket_of(hours)] += 1
            if rating is not None:
                row.rated += 1
                row.satisfied += rating == Rating.satisfied
                row.basic += rating == Rating.basically_satisfied
                row.dissatisfied += rating == Rating.dissatisfied

    for community, category, unit, state, signed_at, sign_due, handled_at, handle_due in \
            session.exec(select(Case.community_id, Case.category_id, WorkOrder.unit_id,
                                WorkOrder.state, WorkOrder.signed_at, WorkOrder.sign_due_at,
                                WorkOrder.handled_at, WorkOrder.handle_due_at)
                         .join(Case, Case.id == WorkOrder.case_id)
                         .where(WorkOrder.lead.is_(True), WorkOrder.created_at >= start,
                                WorkOrder.created_at < end)).all():
        late = False
        if handle_due is not None:
            finished = handled_at if handled_at is not None else (
                None if state in (WorkOrderState.returned, WorkOrderState.cancelled) else now)
            late = finished is not None and finished > handle_due
        for row in targets((community, category), unit):
            row.dispatched += 1
            row.signed_on_time += signed_at is not None and (sign_due is None or signed_at <= sign_due)
            row.returned += state == WorkOrderState.returned
            row.late += late

    # Resolution against the first commitment: the cases whose committed deadline falls on the
    # day, resolved (verified on site) by it, or later.
    for community, category, handler, state, committed, resolved_at in session.exec(
            select(Case.community_id, Case.category_id, Case.handler_id, Case.state,
                   Case.committed_due_at, Case.resolved_at)
            .where(Case.committed_due_at >= start, Case.committed_due_at < end)).all():
        resolved = state in RESOLVED and resolved_at is not None
        for row in targets((community, category), handler):
            row.due += 1
            row.resolved += resolved and resolved_at <= committed
            row.resolved_late += resolved and resolved_at > committed

    # Response: every wait for a unit's first action begun on the day, answered by that unit
    # within its limit (the area's row; the department's too when it was the one waiting).
    for community, category, unit, answered, ended_at, due_at in session.exec(
            select(Case.community_id, Case.category_id, CaseWait.unit_id, CaseWait.answered,
                   CaseWait.ended_at, CaseWait.due_at)
            .join(Case, Case.id == CaseWait.case_id)
            .where(CaseWait.started_at >= start, CaseWait.started_at < end)).all():
        responded = bool(answered) and ended_at is not None and ended_at <= due_at
        for row in targets((community, category), unit):
            row.waits += 1
            row.responded += responded

    for community, category, handler, action in session.exec(
            select(Case.community_id, Case.category_id, Case.handler_id, CaseEvent.action)
            .join(Case, Case.id == CaseEvent.case_id)
            .where(CaseEvent.action.in_(sorted(COUNTED_MOVES)), CaseEvent.at >= start,
                   CaseEvent.at < end)).all():
        counter = COUNTED_MOVES[action]
        for row in targets((community, category), handler):
            setattr(row, counter, getattr(row, counter) + 1)
    return out


def _values(counters: Counters) -> dict:
    values = {spec.name: getattr(counters, spec.name) for spec in fields(counters)
              if spec.name != "buckets"}
    return {**values, **{f"b{n}": count for n, count in enumerate(counters.buckets)}}


def unit_rows(day: DayRows, ancestors: dict[int, list[int]]) -> tuple[
        dict[tuple[int, int], Counters], dict[int, Counters]]:
    """The day's counters per tier unit and category (each unit the sum of its communities'
    cells), and per unit over all categories, departments included."""
    cells: dict[tuple[int, int], Counters] = defaultdict(Counters)
    units: dict[int, Counters] = defaultdict(Counters)
    for (community, category), counters in day.cells.items():
        for unit in ancestors.get(community, [community]):
            cells[(unit, category)].add(counters)
            units[unit].add(counters)
    for department, counters in day.departments.items():
        units[department].add(counters)
    return cells, units


def replace_days(engine: Engine | None, days: Iterable[str], now: datetime) -> int:
    """Recompute the days (each read without the write lock, written in a short transaction)."""
    done = 0
    with read_session(engine) as session:
        ancestors = periods.community_chains(session)
    for day in sorted(set(days)):
        with read_session(engine) as session:
            rows = compute_day(session, day, now)
        cells, units = unit_rows(rows, ancestors)
        with write_session(engine) as session:
            session.exec(delete(KpiDay).where(KpiDay.day == day))  # type: ignore[call-overload]
            session.exec(delete(KpiUnitDay).where(KpiUnitDay.day == day))  # type: ignore[call-overload]
            if cells:
                session.exec(insert(KpiDay), params=[  # type: ignore[call-overload]
                    {"day": day, "unit_id": key[0], "category_id": key[1], **_values(c)}
                    for key, c in cells.items()])
            if units:
                session.exec(insert(KpiUnitDay), params=[  # type: ignore[call-overload]
                    {"day": day, "unit_id": unit, **_values(c)} for unit, c in units.items()])
            session.exec(delete(KpiPlace).where(KpiPlace.day == day))  # type: ignore[call-overload]
            if rows.places:
                session.exec(insert(KpiPlace), params=[  # type: ignore[call-overload]
                    {"day": day, "community_id": k[0], "category_id": k[1], "address": k[2],
                     "cases": n} for k, n in rows.places.items()])
            session.exec(delete(KpiFlow).where(KpiFlow.day == day))  # type: ignore[call-overload]
            if rows.flow:
                session.exec(insert(KpiFlow), params=[  # type: ignore[call-overload]
                    {"day": day, "community_id": k[0], "category_id": k[1], "source": k[2],
                     "reached_tier": k[3], "outcome": k[4], "cases": n}
                    for k, n in rows.flow.items()])
        done += 1
    store_quantiles(engine, set(days))
    return done


def store_quantiles(engine: Engine | None, days: set[str]) -> int:
    """The exact closure quantiles of every tier unit for the periods holding ``days``: read
    without the write lock, written in one short transaction."""
    with read_session(engine) as session:
        starts, rows = periods.quantile_rows(session, days)
    if starts:
        with write_session(engine) as session:
            session.exec(delete(KpiQuantile).where(KpiQuantile.start.in_(starts)))  # type: ignore[call-overload]
            if rows:
                session.exec(insert(KpiQuantile), params=rows)  # type: ignore[call-overload]
    return len(rows)


def _counted_days(case: Case) -> dict[str, str | None]:
    return {"reported_day": day_of(case.reported_at),
            "closed_day": day_of(case.closed_at) if case.state == S.closed else None,
            "due_day": day_of(case.committed_due_at)}


def touched_days(session: Session, moved: list[Case], since: datetime, now: datetime) -> set[str]:
    """The days whose rows depend on the cases that moved since ``since``: each case's days as
    last counted (``kpi_case``: reported, closed, committed due) and as they are now, its work
    orders' days, the days of its new events, the days its waits began; when its closure
    changed (closed, or reopened), the days of the later reports at its place within 90 days
    after its old and its new closure (they are repeats of it, or no longer); and the days of
    work orders whose deadline has just passed (they turn late on the day they were made)."""
    ids = [c.id for c in moved]
    days: set[str | None] = set()
    old_closed: dict[int, str | None] = {}
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        for old in session.exec(select(KpiCase).where(KpiCase.case_id.in_(part))).all():
            days |= {old.reported_day, old.closed_day, old.due_day}
            old_closed[old.case_id] = old.closed_day
        days |= {day_of(at) for at in session.exec(select(WorkOrder.created_at).where(
            WorkOrder.case_id.in_(part))).all()}
        days |= {day_of(at) for at in session.exec(select(CaseEvent.at).where(
            CaseEvent.case_id.in_(part), CaseEvent.at >= since)).all()}
        days |= {day_of(at) for at in session.exec(select(CaseWait.started_at).where(
            CaseWait.case_id.in_(part))).all()}
    metres = None
    for case in moved:
        counted = _counted_days(case)
        days |= set(counted.values())
        before, after = old_closed.get(case.id), counted["closed_day"]
        if before != after:
            metres = repeat_distance(session) if metres is None else metres
            days |= later_report_days(session, case, {d for d in (before, after) if d}, metres)
    days |= {day_of(at) for at in session.exec(select(WorkOrder.created_at).where(
        WorkOrder.lead.is_(True), WorkOrder.handle_due_at >= since,
        WorkOrder.handle_due_at < now)).all()}
    days.discard(None)
    return days  # type: ignore[return-value]


def refresh(engine: Engine | None = None, now: datetime | None = None) -> dict[str, int]:
    """Bring the roll-ups up to date with what moved since the last refresh."""
    now = now or utcnow()
    with read_session(engine) as session:
        mark = session.get(KpiRefresh, 1)
        if mark is None:
            return {"kpi_days": rebuild(engine, now)}
        since = mark.until
        moved = session.exec(select(Case).where(Case.updated_at >= since)).all()
        days = touched_days(session, moved, since, now)
    days.discard(None)
    count = published.recomputing(engine, moved, since, lambda: replace_days(engine, days, now))
    with write_session(engine) as session:
        _remember(session, moved)
        _mark(session, now - SAFETY)
    return {"kpi_days": count}


def _remember(session: Session, cases: Iterable[Case]) -> None:
    cases = list(cases)
    if not cases:
        return
    session.exec(delete(KpiCase).where(KpiCase.case_id.in_([c.id for c in cases])))  # type: ignore[call-overload]
    session.exec(insert(KpiCase), params=[{"case_id": c.id, **_counted_days(c)} for c in cases])  # type: ignore[call-overload]


def _mark(session: Session, until: datetime) -> None:
    mark = session.get(KpiRefresh, 1)
    if mark is None:
        session.add(KpiRefresh(id=1, until=until))
    else:
        mark.until = until
        session.add(mark)


def fill_durations(engine: Engine | None = None, chunk: int = 5000) -> int:
    """How long each closed case took, where not yet written (cases closed before the column
    existed): walked by id, each chunk one executemany of one compiled statement."""
    table = Case.__table__
    fill = update(table).where(table.c.id == bindparam("case_id")).values(
        closure_hours=bindparam("hours"), closure_workdays=bindparam("workdays"))
    done, last_id = 0, 0
    while True:
        with read_session(engine) as session:
            found = session.exec(select(Case.id, Case.reported_at, Case.closed_at, Case.closure_hours)
                                 .where(Case.id > last_id, Case.closed_at.is_not(None))
                                 .order_by(Case.id).limit(chunk)).all()
        if not found:
            return done
        last_id = found[-1][0]
        rows = [{"case_id": case_id, "hours": round((closed - reported).total_seconds() / 3600, 3),
                 "workdays": working_days_between(reported, closed)}
                for case_id, reported, closed, hours in found if hours is None]
        if rows:
            with write_session(engine) as session:
                session.connection().execute(fill, rows)
        done += len(rows)


def rebuild(engine: Engine | None = None, now: datetime | None = None) -> int:
    """Recompute every day from the first report to today; remember every case's days."""
    now = now or utcnow()
    fill_durations(engine)
    with read_session(engine) as session:
        first = session.exec(select(Case.reported_at).order_by(Case.reported_at).limit(1)).first()
    if first is None:
        with write_session(engine) as session:
            _mark(session, now - SAFETY)
        return 0
    with read_session(engine) as session:
        latest_due = session.exec(select(Case.committed_due_at)
                                  .where(Case.committed_due_at.is_not(None))
                                  .order_by(Case.committed_due_at.desc()).limit(1)).first()
    day = first.astimezone(CHINA_TZ).date()
    horizon = max(latest_due, now) if latest_due else now  # deadlines run ahead of today
    last = horizon.astimezone(CHINA_TZ).date()
    days = []
    while day <= last:
        days.append(day.isoformat())
        day += timedelta(days=1)
    with write_session(engine) as session:
        session.exec(delete(KpiDay))  # type: ignore[call-overload]
        session.exec(delete(KpiUnitDay))  # type: ignore[call-overload]
        session.exec(delete(KpiFlow))  # type: ignore[call-overload]
        session.exec(delete(KpiPlace))  # type: ignore[call-overload]
        session.exec(delete(KpiQuantile))  # type: ignore[call-overload]
    count = replace_days(engine, days, now)
    with write_session(engine) as session:
        session.exec(delete(KpiCase))  # type: ignore[call-overload]
    last_id = 0
    while True:
        with read_session(engine) as session:
            cases = session.exec(select(Case).where(Case.id > last_id).order_by(Case.id)
                                 .limit(5000)).all()
        if not cases:
            break
        with write_session(engine) as session:
            session.exec(insert(KpiCase), params=[{"case_id": c.id, **_counted_days(c)}  # type: ignore[call-overload]
                                                  for c in cases])
        last_id = cases[-1].id
    with write_session(engine) as session:
        _mark(session, now - SAFETY)
    return count


def computed_at(engine: Engine | None = None) -> datetime | None:
    """When the roll-ups were last brought up to date: they hold every move committed before
    that moment (None: never built)."""
    with read_session(engine) as session:
        mark = session.get(KpiRefresh, 1)
        return mark.until + SAFETY if mark is not None else None


REFRESH_JOB = "kpi-refresh"


def refresh_if_stale(engine: Engine | None = None, max_age: timedelta = timedelta(minutes=1),
                     now: datetime | None = None, *, wait: bool = False) -> datetime | None:
    """Refresh when the roll-ups are older than ``max_age`` (the KPI pages call this, so a case
    closed a moment ago shows within a minute even without cron); returns ``computed_at``.

    The refresh runs on a thread of its own (lib.core.jobs, never two at once per process) and
    the page draws the figures as they are, saying when they were computed (a refresh takes
    seconds at a million cases); it waits only for the very first build, or when asked to. The
    roll-ups' own time, in the database, says when a refresh is due, so cron's refreshes count
    too."""
    now = now or utcnow()
    at = computed_at(engine)
    if at is not None and now - at < max_age:
        return at
    waiting = wait or at is None
    if not jobs.start(REFRESH_JOB, lambda: refresh(engine, now), every=0, wait=waiting) or not waiting:
        return at
    return computed_at(engine)
