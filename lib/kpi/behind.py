"""The cases behind every assessment figure (考核下钻): for a figure, a part of it, an assessment
period and a unit's area, the condition on ``case`` that lists exactly the cases the figure
counted, so that a unit can check every point of its score in the ledger.

Each counter of the roll-ups (``lib.kpi.rollup.Counters``) has one condition here, written from
the counters' definitions (docs/decisions.md, "The cases behind a figure"), so that for every
counter, period and unit the cases listed are the ones the roll-up counted:

- counters of cases (reported, closed, due, rated …): the cases themselves;
- counters of rows of another table — waits for a first action (``case_wait``: waits,
  responded), lead work orders (dispatched, signed_on_time, returned, late) and moves
  (``case_event``: handled, reworked, hurried) — list the cases that have such rows in the
  period; the roll-up's number is then the number of rows, which ``tally`` gives beside the
  number of cases.

A figure's parts (``PARTS``): ``counted`` — the cases of its numerator, ``base`` — of its
denominator, ``missed`` — the base's rows that are not counted (only where the numerator is a
part of the denominator: resolved of due, responded of waits …). Which counters a figure reads
is found by asking the figure itself (``figure_counters``), so a figure whose definition changes
keeps opening the right cases.

A unit is a tier unit (its area: the cases of its communities) or a department (the work it
did: the cases it handles, the waits at it, the work orders it led), as the roll-ups attribute
them. The reader's scope (``lib.cases.access.case_scope``) always applies on top.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta

from sqlalchemy import DateTime, and_, exists, false, func, literal, not_, or_, true
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, select

from lib.cases.access import case_scope
from lib.cases.machine import CASES
from lib.cases.models import Case, CaseEvent, CaseWait, WorkOrder
from lib.cases.states import RESOLVED, Act, S, W
from lib.core.clock import china_time
from lib.core.db import read_session
from lib.core.errors import ValidationFailed
from lib.core.i18n import name as lang_name
from lib.core.i18n import t
from lib.core.models import Category, Rating, Source, Tier, UnitKind, utcnow
from lib.core.settings import get_int
from lib.core.workcal import CHINA_TZ
from lib.kpi import figures, periods
from lib.kpi.rollup import Counters
from lib.org import permissions
from lib.org.models import Unit
from lib.org.units import Actor

COUNTED, MISSED, BASE = "counted", "missed", "base"
PARTS = (COUNTED, MISSED, BASE)
ADDRESS = ("figure", "part", "period")  # with the ledger's ``unit`` and ``category``
REPEAT_WINDOW_DAYS = 90
METRES_PER_DEGREE = 111_320.0
TIER_COLUMNS = {UnitKind.community: Case.community_id, UnitKind.street: Case.street_id,
                UnitKind.district: Case.district_id, UnitKind.city: Case.city_id}
SHEET_MAX = 50_000  # cases per figure's sheet of the monthly workbook

# The moves a counter counts (``Move.counts``), from the machine.
MOVES_COUNTED: dict[str, list[str]] = {}
for _action, _move in CASES.where(lambda m: m.counts).items():
    MOVES_COUNTED.setdefault(_move.counts, []).append(str(_action))


@dataclass(frozen=True)
class Scope:
    """Where and when: the period's first moment and the next period's (China time), the unit,
    the category (None: all) and the moment open work orders are judged late at."""

    first: datetime
    last: datetime
    unit_id: int
    department: bool
    unit_kind: str
    category_id: int | None
    now: datetime


# ---------------------------------------------------------------- one condition per counter


def _in(column, s: Scope) -> list:  # noqa: ANN001
    return [column >= s.first, column < s.last]


class _DaysBefore(FunctionElement):
    """A moment ``days`` days before a column's (SQLite keeps moments as text)."""

    type = DateTime()
    inherit_cache = True
    name = "days_before"


@compiles(_DaysBefore)
def _days_before_pg(element, compiler, **kw: object) -> str:  # noqa: ANN001
    column, days = list(element.clauses)
    return f"({compiler.process(column, **kw)} - make_interval(days => {compiler.process(days, **kw)}))"


@compiles(_DaysBefore, "sqlite")
def _days_before_sqlite(element, compiler, **kw: object) -> str:  # noqa: ANN001
    column, days = list(element.clauses)
    return (f"strftime('%Y-%m-%d %H:%M:%f', {compiler.process(column, **kw)}, "
            f"'-' || {compiler.process(days, **kw)} || ' days')")


def _repeat(s: Scope, distance: float):  # noqa: ANN202
    """SQL: an earlier case of the same community and category closed in the 90 days before
    this one was reported, at the same place (the normalised address, or both located within
    ``kpi.repeat_distance_m`` metres)."""
    earlier = aliased(Case, name="earlier")
    dy = (earlier.latitude - Case.latitude) * METRES_PER_DEGREE
    dx = (earlier.longitude - Case.longitude) * METRES_PER_DEGREE * func.cos(
        func.radians(Case.latitude))
    near = and_(Case.latitude.is_not(None), Case.longitude.is_not(None),
                earlier.latitude.is_not(None), earlier.longitude.is_not(None),
                dx * dx + dy * dy <= distance * distance)
    same = and_(Case.place_key.is_not(None), earlier.place_key == Case.place_key)
    return exists().where(
        earlier.community_id == Case.community_id, earlier.category_id == Case.category_id,
        earlier.id != Case.id, earlier.closed_at.is_not(None),
        earlier.closed_at < Case.reported_at,
        earlier.closed_at >= _DaysBefore(Case.reported_at, literal(REPEAT_WINDOW_DAYS)),
        or_(same, near))


def _called_back():  # noqa: ANN202
    """SQL: the case has a call-back recorded before it closed: a feedback event (a rating or
    "unreachable"), or the reporter's own rating."""
    # The action in a function, so that SQLite reads the case's own events (case_id, seq), not
    # every feedback of the year by the (action, at) index for each case.
    return exists().where(CaseEvent.case_id == Case.id,
                          func.lower(CaseEvent.action).in_([str(Act.feedback), str(Act.rate)]),
                          CaseEvent.at <= Case.closed_at)


@dataclass(frozen=True)
class Measure:
    """A counter's condition: on ``case`` (``table`` None) or on the rows of ``table`` that
    belong to a case; ``parent``: the counter it is a part of (resolved of due)."""

    name: str
    table: type | None
    where: Callable[[Scope, float], list]
    parent: str | None = None


def _closed(s: Scope, _d: float) -> list:
    return [Case.state == S.closed, *_in(Case.closed_at, s)]


def _due(s: Scope, _d: float) -> list:
    return _in(Case.committed_due_at, s)


def _reported(s: Scope, _d: float) -> list:
    return _in(Case.reported_at, s)


def _waits(s: Scope, _d: float) -> list:
    return _in(CaseWait.started_at, s)


def _orders(s: Scope, _d: float) -> list:
    return [WorkOrder.lead.is_(True), *_in(WorkOrder.created_at, s)]


def _moves(counter: str) -> Callable[[Scope, float], list]:
    def where(s: Scope, _d: float) -> list:
        return [CaseEvent.action.in_(MOVES_COUNTED.get(counter, [])), *_in(CaseEvent.at, s)]
    return where


def _plus(base: Callable[[Scope, float], list], *extra: Callable[[Scope, float], object]):  # noqa: ANN202
    def where(s: Scope, d: float) -> list:
        return [*base(s, d), *(e(s, d) for e in extra)]
    return where


def _late_order(s: Scope, _d: float):  # noqa: ANN202
    return and_(WorkOrder.handle_due_at.is_not(None), or_(
        WorkOrder.handled_at > WorkOrder.handle_due_at,
        and_(WorkOrder.handled_at.is_(None),
             WorkOrder.state.not_in([str(W.returned), str(W.cancelled)]),
             WorkOrder.handle_due_at < s.now)))


MEASURES: dict[str, Measure] = {m.name: m for m in [
    Measure("reported", None, _reported),
    Measure("resident_reported", None, _plus(_reported, lambda s, d: Case.source == Source.resident),
            "reported"),
    Measure("inspection_found", None,
            _plus(_reported, lambda s, d: Case.source == Source.inspection), "reported"),
    Measure("repeat", None, _plus(_reported, lambda s, d: _repeat(s, d)), "reported"),
    Measure("closed", None, _closed),
    Measure("closed_community", None,
            _plus(_closed, lambda s, d: Case.reached_tier == Tier.community), "closed"),
    Measure("closed_street", None,
            _plus(_closed, lambda s, d: Case.reached_tier.in_([str(Tier.community),
                                                               str(Tier.street)])), "closed"),
    Measure("closed_on_time", None, _plus(_closed, lambda s, d: or_(
        Case.committed_due_at.is_(None), Case.closed_at <= Case.committed_due_at)), "closed"),
    Measure("closed_late", None, _plus(_closed, lambda s, d: and_(
        Case.committed_due_at.is_not(None), Case.closed_at > Case.committed_due_at)), "closed"),
    Measure("called_back", None, _plus(_closed, lambda s, d: _called_back()), "closed"),
    Measure("rated", None, _plus(_closed, lambda s, d: Case.rating.is_not(None)), "closed"),
    Measure("satisfied", None, _plus(_closed, lambda s, d: Case.rating == Rating.satisfied), "rated"),
    Measure("basic", None, _plus(_closed, lambda s, d: Case.rating == Rating.basically_satisfied),
            "rated"),
    Measure("dissatisfied", None, _plus(_closed, lambda s, d: Case.rating == Rating.dissatisfied),
            "rated"),
    Measure("due", None, _due),
    Measure("resolved", None, _plus(_due, lambda s, d: and_(
        Case.state.in_(sorted(RESOLVED)), Case.resolved_at.is_not(None),
        Case.resolved_at <= Case.committed_due_at)), "due"),
    Measure("resolved_late", None, _plus(_due, lambda s, d: and_(
        Case.state.in_(sorted(RESOLVED)), Case.resolved_at > Case.committed_due_at)), "due"),
    Measure("waits", CaseWait, _waits),
    Measure("responded", CaseWait, _plus(_waits, lambda s, d: and_(
        CaseWait.answered.is_(True), CaseWait.ended_at.is_not(None),
        CaseWait.ended_at <= CaseWait.due_at)), "waits"),
    Measure("dispatched", WorkOrder, _orders),
    Measure("signed_on_time", WorkOrder, _plus(_orders, lambda s, d: and_(
        WorkOrder.signed_at.is_not(None), or_(WorkOrder.sign_due_at.is_(None),
                                              WorkOrder.signed_at <= WorkOrder.sign_due_at))),
            "dispatched"),
    Measure("returned", WorkOrder, _plus(_orders, lambda s, d: WorkOrder.state == W.returned),
            "dispatched"),
    Measure("late", WorkOrder, _plus(_orders, _late_order), "dispatched"),
    Measure("handled", CaseEvent, _moves("handled")),
    Measure("reworked", CaseEvent, _moves("reworked")),
    Measure("hurried", CaseEvent, _moves("hurried")),
]}
# Roll-up counters that are not a number of cases or rows (summed hours and days).
NOT_LISTED = ("closure_hours", "closure_workdays")
# The counters a tier unit's area counts but a department's work does not (reports).
AREA_ONLY = ("reported", "resident_reported", "inspection_found", "repeat")


def _unit_on_case(s: Scope, measure: Measure):  # noqa: ANN202
    """SQL on ``case``: the case is the unit's (its area, or a department's handling)."""
    if not s.department:
        return TIER_COLUMNS[UnitKind(s.unit_kind)] == s.unit_id
    if measure.table is None:
        return false() if measure.name in AREA_ONLY else Case.handler_id == s.unit_id
    if measure.table is CaseEvent:
        return Case.handler_id == s.unit_id
    return true()


def _unit_on_rows(s: Scope, measure: Measure):  # noqa: ANN202
    """SQL on the measure's rows: a department's own waits and work orders."""
    if s.department and measure.table is CaseWait:
        return CaseWait.unit_id == s.unit_id
    if s.department and measure.table is WorkOrder:
        return WorkOrder.unit_id == s.unit_id
    return true()


def _row_where(s: Scope, measure: Measure, distance: float):  # noqa: ANN202
    return and_(*measure.where(s, distance), _unit_on_rows(s, measure))


def _none_of(conditions: list):  # noqa: ANN202
    """SQL: none of the conditions holds (one that is unknown, NULL, does not hold)."""
    return not_(func.coalesce(or_(*conditions), false()))


def _case_where(s: Scope, measures: list[Measure], distance: float, *,  # noqa: ANN202
                missed: list[Measure] | None = None):
    """SQL on ``case``: the case is one of ``measures``' (and, with ``missed``, has a row of
    them that is none of ``missed``')."""
    ors = []
    for measure in measures:
        area = _unit_on_case(s, measure)
        if measure.table is None:
            own = and_(*measure.where(s, distance))
            if missed:
                own = and_(own, _none_of([and_(*m.where(s, distance)) for m in missed]))
            ors.append(and_(area, own))
            continue
        table = measure.table
        rows = _row_where(s, measure, distance)
        if missed:
            rows = and_(rows, _none_of([_row_where(s, m, distance) for m in missed]))
        ors.append(and_(area, Case.id.in_(select(table.case_id).where(rows))))
    out = or_(*ors) if ors else false()
    if s.category_id is not None:
        out = and_(Case.category_id == s.category_id, out)
    return out


def _row_count(session: Session, actor: Actor | None, s: Scope, measures: list[Measure],
               distance: float, missed: list[Measure] | None = None) -> int:
    """The number of rows (waits, orders, moves) of ``measures`` on the unit's cases."""
    total = 0
    for measure in measures:
        table = measure.table
        rows = _row_where(s, measure, distance)
        if missed:
            rows = and_(rows, _none_of([_row_where(s, m, distance) for m in missed]))
        conditions = [rows, _unit_on_case(s, measure)]
        if s.category_id is not None:
            conditions.append(Case.category_id == s.category_id)
        if actor is not None:
            conditions.append(case_scope(actor))
        total += session.exec(select(func.count()).select_from(table)
                              .join(Case, Case.id == table.case_id).where(*conditions)).one()
    return total


# ---------------------------------------------------------------- figures and their parts


def _probe(fn: Callable[[Counters, dict], float]) -> list[str]:
    """The counters a figure's numerator or denominator reads: each set alone to 1."""
    weights = {key: 1.0 for key in ("response_rate", "resolution_rate", "satisfaction_rate",
                                    "basic")}
    found = []
    for spec in fields(Counters):
        if spec.name == "buckets":
            continue
        counters = Counters()
        setattr(counters, spec.name, 1)
        if fn(counters, weights):
            found.append(spec.name)
    return found


def figure_counters(key: str) -> tuple[list[str], list[str]]:
    """(numerator's counters, denominator's counters) of a figure (the second empty for a
    count)."""
    figure = figures.BY_KEY[key]
    return _probe(figure.numerator), _probe(figure.denominator) if figure.denominator else []


def _ancestors(counter: str) -> set[str]:
    out, at = set(), MEASURES[counter].parent if counter in MEASURES else None
    while at is not None:
        out.add(at)
        at = MEASURES[at].parent
    return out


def parts_of(key: str) -> list[str]:
    """The parts of a figure that list cases: ``counted`` when its numerator counts cases or
    rows, ``base`` when its denominator does, ``missed`` when the numerator is a part of the
    denominator."""
    if key not in figures.BY_KEY:
        return []
    top, bottom = figure_counters(key)
    out = []
    if top and all(c in MEASURES for c in top):
        out.append(COUNTED)
    if bottom and all(c in MEASURES for c in bottom):
        if COUNTED in out and all(set(bottom) & (_ancestors(c) | {c}) for c in top) \
                and len({MEASURES[c].table for c in top + bottom}) == 1:
            out.append(MISSED)
        out.append(BASE)
    return out


def drillable_figures() -> list[str]:
    return [f.key for f in figures.FIGURES if parts_of(f.key)]


def problem_part(key: str) -> str | None:
    """The part a card's "not met" link opens: the missed cases of a figure where higher is
    better, the counted ones where lower is (overdue, returned, repeat …)."""
    parts = parts_of(key)
    if figures.BY_KEY[key].better == "higher":
        return MISSED if MISSED in parts else None
    return COUNTED if COUNTED in parts and BASE in parts else None


def _measures(key: str, part: str) -> tuple[list[Measure], list[Measure] | None]:
    top, bottom = figure_counters(key)
    if part == COUNTED:
        return [MEASURES[c] for c in top], None
    if part == BASE:
        return [MEASURES[c] for c in bottom], None
    return [MEASURES[c] for c in bottom], [MEASURES[c] for c in top]


def counter_condition(counter: str, s: Scope, distance: float):  # noqa: ANN201
    """SQL on ``case``: the cases behind one counter for the scope."""
    return _case_where(s, [MEASURES[counter]], distance)


def counter_rows(session: Session, counter: str, s: Scope, distance: float) -> int:
    """The counter's number for the scope: its cases, or its rows (waits, orders, moves)."""
    measure = MEASURES[counter]
    if measure.table is None:
        return session.exec(select(func.count()).select_from(Case)
                            .where(counter_condition(counter, s, distance))).one()
    return _row_count(session, None, s, [measure], distance)


# ---------------------------------------------------------------- a drill-down


def distance_setting(session: Session) -> float:
    return float(max(0, get_int(session, "kpi.repeat_distance_m")))


def scope_of(unit: Unit, start: date, end: date, category_id: int | None,
             now: datetime | None = None) -> Scope:
    first = datetime.combine(start, time(0), CHINA_TZ)
    last = datetime.combine(end + timedelta(days=1), time(0), CHINA_TZ)
    return Scope(first, last, unit.id, unit.kind == UnitKind.department, str(unit.kind),
                 category_id, now or utcnow())


@dataclass(frozen=True)
class Drill:
    """The cases behind one part of one figure of one unit in one assessment period: what the
    ledger lists (``conditions``) when opened from a figure. Plain values only, so that two
    runs of a page compare equal."""

    figure: str
    part: str
    label: str  # the assessment period ("2026-11")
    start: date
    end: date
    unit_id: int
    unit_kind: str
    unit_code: str
    category_id: int | None
    category_key: str | None
    distance: float

    def scope(self, now: datetime | None = None) -> Scope:
        first = datetime.combine(self.start, time(0), CHINA_TZ)
        last = datetime.combine(self.end + timedelta(days=1), time(0), CHINA_TZ)
        return Scope(first, last, self.unit_id, self.unit_kind == UnitKind.department,
                     self.unit_kind, self.category_id, now or utcnow())

    def conditions(self, part: str | None = None) -> list:
        """SQL on ``case``: the cases of this part (or another part of the same figure)."""
        measures, missed = _measures(self.figure, part or self.part)
        return [_case_where(self.scope(), measures, self.distance, missed=missed)]

    def params(self, part: str | None = None) -> dict[str, str]:
        """The ledger's address of this drill-down (another part: the same figure's)."""
        out = {"figure": self.figure, "part": part or self.part, "period": self.label,
               "unit": self.unit_code}
        if self.category_key:
            out["category"] = self.category_key
        return out


@dataclass(frozen=True)
class Found:
    """A drill-down read from an address: ``drill`` (None: none asked, or dropped), the
    problems (catalog keys, each with a message), and ``refused``: the unit is outside the
    reader's area — nothing may be listed."""

    drill: Drill | None
    problems: list[str]
    refused: bool = False


def wanted(params: dict[str, str]) -> bool:
    """The address asks for the cases behind a figure."""
    return any(params.get(k) for k in ADDRESS)


def from_address(session: Session, actor: Actor, params: dict[str, str]) -> Found:
    """The drill-down an address asks for, checked: an unknown figure, part or period drops
    the drill-down with a message; a unit outside the reader's area (or unknown) refuses it:
    a message and nothing listed."""
    permissions.require(actor, permissions.CASE_READERS)
    if not wanted(params):
        return Found(None, [])
    problems: list[str] = []
    key = (params.get("figure") or "")[:40]
    if key not in figures.BY_KEY or not parts_of(key):
        problems.append("behind.bad_figure")
    part = params.get("part") or ""
    if not problems and part not in parts_of(key):
        problems.append("behind.bad_part")
    try:
        period = periods.period_of_label((params.get("period") or "")[:10],
                                         periods.month_start_day(session))
    except ValidationFailed:
        period = None
        problems.append("behind.bad_period")
    own = session.get(Unit, actor.unit_id)
    code = (params.get("unit") or "")[:40]
    unit = session.exec(select(Unit).where(Unit.code == code)).first() if code else own
    if unit is None or own is None or not unit.path.startswith(own.path) or \
            (unit.kind not in TIER_COLUMNS and unit.kind != UnitKind.department):
        return Found(None, [*problems, "behind.bad_unit"], refused=True)
    category = None
    raw = params.get("category")
    if raw:
        category = session.exec(select(Category).where(Category.key == raw[:40])).first()
        if category is None:
            problems.append("behind.bad_category")
    if problems:
        return Found(None, problems)
    assert period is not None
    return Found(Drill(key, part, period.label, period.start, period.end, unit.id, str(unit.kind),
                       unit.code, category.id if category else None,
                       category.key if category else None, distance_setting(session)), [])


@dataclass(frozen=True)
class Tally:
    """A part's numbers: the cases listed, and the figure's number (rows — waits, orders,
    moves — where it counts rows; else the cases); the same for the base."""

    cases: int
    number: int
    rows: bool
    base_cases: int | None
    base_number: int | None


def _count(session: Session, actor: Actor, drill: Drill, part: str) -> tuple[int, int, bool]:
    measures, missed = _measures(drill.figure, part)
    cases = session.exec(select(func.count()).select_from(Case).where(
        case_scope(actor), *drill.conditions(part))).one()
    if all(m.table is None for m in measures):
        return cases, cases, False
    return cases, _row_count(session, actor, drill.scope(), measures, drill.distance, missed), True


def tally(session: Session, actor: Actor, drill: Drill) -> Tally:
    permissions.require(actor, permissions.CASE_READERS)
    cases, number, rows = _count(session, actor, drill, drill.part)
    base_cases = base_number = None
    if drill.part != BASE and BASE in parts_of(drill.figure):
        base_cases, base_number, _ = _count(session, actor, drill, BASE)
    return Tally(cases, number, rows, base_cases, base_number)


def banner(session: Session, drill: Drill, found: Tally, *, lang: str) -> str:
    """"书院街街道 · 2026年11月 · 解决率 · 未按期解决 2 件（基数 40 件）"."""
    unit = session.get(Unit, drill.unit_id)
    year, month = drill.label.split("-")
    what = part_name(drill.figure, drill.part, lang)
    unit_word = "behind.rows" if found.rows else "behind.cases"
    text = t(unit_word, lang, count=f"{found.number:,}")
    if found.rows:
        text += t("behind.of_cases", lang, count=f"{found.cases:,}")
    pieces = [lang_name(unit, lang) if unit else drill.unit_code,
              t("behind.period", lang, year=year, month=int(month))]
    if drill.category_id is not None:
        category = session.get(Category, drill.category_id)
        if category is not None:
            pieces.append(lang_name(category, lang))
    pieces += [t(f"kpi.figure.{drill.figure}", lang), f"{what} {text}"]
    line = t("behind.separator", lang).join(pieces)
    if found.base_number is not None:
        line += t("behind.base_note", lang, base=t(unit_word, lang,
                                                    count=f"{found.base_number:,}"))
    return line


def part_name(figure: str, part: str, lang: str) -> str:
    """A part's name for this figure ("未按期解决"), or the general one ("未达标")."""
    key = f"behind.part.{figure}.{part}"
    text = t(key, lang)
    return text if text != key else t(f"behind.part.{part}", lang)


# ---------------------------------------------------------------- the monthly workbook


def case_sheets(session: Session, actor: Actor, scope: Unit, period: periods.Period,
                category: Category | int | None = None, *, lang: str = "zh",
                now: datetime | None = None) -> list[tuple[str, list[str], list[list[object]]]]:
    """A sheet per figure for the monthly workbook: (title, header, rows). Each lists the cases
    of the figure's base and numerator in the scope's area for the period, each with what it
    counts for (its base and counted numbers: 1 per case, or its waits, orders or moves), so
    that the columns add up to the figure's counts; in the reader's scope. No content (address,
    description) nor reporter: the codes open the cases."""
    permissions.require(actor, permissions.CASE_READERS)
    category_id = category.id if isinstance(category, Category) else category
    s = scope_of(scope, period.start, period.end, category_id, now)
    distance = distance_setting(session)
    units = {u.id: u for u in session.exec(select(Unit)).all()}
    categories = {c.id: c for c in session.exec(select(Category)).all()}
    header = [t(f"behind.sheet.{c}", lang) for c in
              ("code", "category", "community", "state", "reported_at", "committed_due_at",
               "resolved_at", "closed_at", "base", "counted")]
    out = []
    for key in drillable_figures():
        parts = parts_of(key)
        if figures.BY_KEY[key].kind != "rate" or BASE not in parts or COUNTED not in parts:
            continue
        top, bottom = figure_counters(key)
        counts = {}
        for column, counters in ((0, bottom), (1, top)):
            for case_id, n in _per_case(session, actor, s, [MEASURES[c] for c in counters],
                                        distance).items():
                counts.setdefault(case_id, [0, 0])[column] += n
        ids = sorted(counts)[:SHEET_MAX]
        found = {}
        for chunk in range(0, len(ids), 900):
            for case in session.exec(select(Case).where(
                    Case.id.in_(ids[chunk:chunk + 900]))).all():
                found[case.id] = case
        rows = []
        for case_id in sorted(ids, key=lambda i: (found[i].reported_at, i)):
            case = found[case_id]
            community = units.get(case.community_id)
            rows.append([case.code, lang_name(categories[case.category_id], lang),
                         lang_name(community, lang) if community else "",
                         t(f"state.{case.state}", lang), china_time(case.reported_at),
                         china_time(case.committed_due_at), china_time(case.resolved_at),
                         china_time(case.closed_at), *counts[case_id]])
        title = t(f"kpi.figure.{key}", lang)[:31]
        out.append((title, header, rows))
    return out


def _per_case(session: Session, actor: Actor, s: Scope, measures: list[Measure],
              distance: float) -> dict[int, int]:
    """Each case of the measures with its number: 1, or its rows."""
    out: dict[int, int] = {}
    for measure in measures:
        area = [_unit_on_case(s, measure), case_scope(actor)]
        if s.category_id is not None:
            area.append(Case.category_id == s.category_id)
        if measure.table is None:
            for case_id in session.exec(select(Case.id).where(
                    *area, *measure.where(s, distance))).all():
                out[case_id] = 1
            continue
        table = measure.table
        for case_id, n in session.exec(
                select(table.case_id, func.count()).join(Case, Case.id == table.case_id)
                .where(*area, _row_where(s, measure, distance)).group_by(table.case_id)).all():
            out[case_id] = out.get(case_id, 0) + int(n)
    return out


# ---------------------------------------------------------------- for the ledger page


def open_address(actor: Actor, params: dict[str, str], engine: Engine | None = None) -> Found:
    """``from_address`` in a read session of its own."""
    with read_session(engine) as session:
        return from_address(session, actor, params)


def describe(actor: Actor, drill: Drill, lang: str, engine: Engine | None = None) -> tuple[Tally, str]:
    """The drill-down's numbers and its banner line, in a read session of its own."""
    with read_session(engine) as session:
        found = tally(session, actor, drill)
        return found, banner(session, drill, found, lang=lang)
