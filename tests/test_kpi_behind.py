"""Every number opens its cases: for every counter a figure reads, the cases (or waits, work
orders, moves) the drill-down lists for a unit and a period are exactly what the roll-up counted
there; the ledger opened from a figure lists them in the reader's scope only, names what it
lists, and drops a bad address with a message; the monthly workbook's sheets add up to the
figures — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import shutil
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import select

from lib.cases import ledger
from lib.cases.machine import UNREACHABLE, act
from lib.cases.models import Case, CaseWait
from lib.core.db import get_engine, read_session, write_session
from lib.core.i18n import name, t
from lib.core.workcal import CHINA_TZ
from lib.kpi import behind, figures, rollup
from lib.org.units import find_unit
from tests.conftest import _postgres_engine, need, postgres_available
from tests.factories import (
    COMMUNITY,
    NEIGHBOUR,
    POLICE,
    STREET,
    actor,
    move,
    new_case,
    unit_id,
)

pytestmark = pytest.mark.xdist_group("kpi_behind")  # one worker builds the month once
DISTRICT = "510104"
OTHER_STREET_COMMUNITY = "510104002001"
MARCH, APRIL = "2026-03", "2026-04"
BUILT_AT = datetime(2026, 5, 20, 12, tzinfo=CHINA_TZ)
# Every counter a figure reads (and the contract's new ones, before a figure reads them).
COUNTERS = sorted({c for key in behind.drillable_figures() for part in behind.figure_counters(key)
                   for c in part if c in behind.MEASURES} | set(behind.MEASURES))


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=CHINA_TZ)


def _loop(db, case, steps):
    for username, action, when, params in steps:
        case = move(db, username, case.id, action, now=when, **params)
    return case


def _self_handled(db, reported, closed, rating, *, community=COMMUNITY, by="community01",
                  reworked=False, category="fire", address=None):
    case = new_case(db, now=reported, community=community, category=category,
                    address=address or f"红星路{reported.day}{reported.hour}号")
    steps = [(by, "accept", reported + timedelta(minutes=30), {}),
             (by, "take", reported + timedelta(hours=1), {}),
             (by, "handle", reported + timedelta(hours=2), {"note": "已清理"})]
    if reworked:
        steps += [(by, "rework", reported + timedelta(hours=3), {"note": "没清干净"}),
                  (by, "handle", reported + timedelta(hours=4), {"note": "已清理"})]
    steps.append((by, "verify", closed - timedelta(hours=2), {}))
    if rating is not None:
        steps.append((by, "feedback", closed - timedelta(hours=1), {"rating": rating}))
    steps.append((by, "close", closed, {}))
    return _loop(db, case, steps)


def _sql(db, statement: str, **params) -> None:
    with write_session(db) as s:
        s.exec(text(statement), params=params)


def _contract_facts(db) -> None:
    """The facts the case machine records under the assessment's contract (first commitment,
    resolution time, normalised place, waits), written here where a case lacks them."""
    with write_session(db) as s:
        cases = s.exec(select(Case)).all()
        for case in cases:
            if case.committed_due_at is None and case.handle_due_at is not None:
                case.committed_due_at = case.handle_due_at
            if case.place_key is None:
                case.place_key = case.address.replace(" ", "")
            s.add(case)
        s.flush()
        waited = set(s.exec(select(CaseWait.case_id)).all())
        police = find_unit(s, POLICE).id
        for n, case in enumerate(sorted(cases, key=lambda c: c.id)):
            if case.id in waited:
                continue
            start = case.reported_at
            answered = n % 3 != 2
            s.add(CaseWait(case_id=case.id, unit_id=case.community_id, kind="triage",
                           started_at=start, due_at=start + timedelta(hours=2),
                           ended_at=start + timedelta(hours=1 if n % 2 else 3),
                           answered=answered))
            if n % 4 == 1:
                s.add(CaseWait(case_id=case.id, unit_id=police, kind="sign", started_at=start,
                               due_at=start + timedelta(hours=4),
                               ended_at=start + timedelta(hours=1), answered=True))


def build_month(db) -> dict:
    """March 2026 in 春熙路街道 and beyond: self-handled cases (satisfied, basic, dissatisfied,
    unreachable, reworked, reopened), a call-up dispatched to the police and handled, a work
    order returned, a rejected report, hurries, repeats at one place and at a point 20 m away,
    a case resolved after its commitment, one in another street."""
    police = unit_id(db, POLICE)
    _self_handled(db, at(2, 9), at(3, 9), "satisfied")
    _self_handled(db, at(3, 10), at(7, 10), "dissatisfied", reworked=True)
    _self_handled(db, at(4, 9), at(6, 9), UNREACHABLE)
    _self_handled(db, at(5, 9), at(6, 18), None)  # closed with no call-back at all
    reopened = _self_handled(db, at(6, 9), at(6, 18), "satisfied")
    move(db, "community01", reopened.id, "reopen", now=at(8, 9), note="居民说又堆上了")
    _self_handled(db, at(9, 9), at(10, 9), "basically_satisfied", community=NEIGHBOUR,
                  by="staff_510104001002")
    _self_handled(db, at(9, 10), at(10, 10), "satisfied", community=OTHER_STREET_COMMUNITY,
                  by="staff_510104002001", category="gas")
    # A call-up to the street, dispatched to the police, handled and closed, basically satisfied.
    called = new_case(db, now=at(11, 10), category="residential_security")
    _loop(db, called, [
        ("community01", "accept", at(11, 10), {}),
        ("community01", "call_up", at(11, 11), {"note": "请街道协调"}),
        ("street01", "dispatch", at(11, 12), {"lead_unit_id": police}),
        ("dept_police", "acknowledge", at(11, 13), {}), ("dept_police", "start", at(11, 14), {}),
        ("dept_police", "handle", at(13, 9), {"note": "已处理"}),
        ("community01", "verify", at(14, 8), {}),
        ("community01", "feedback", at(14, 9), {"rating": "basically_satisfied"}),
        ("community01", "close", at(14, 10), {})])
    # A work order returned by the police, then left open past its deadline.
    sent = new_case(db, now=at(12, 10), category="residential_security")
    _loop(db, sent, [
        ("community01", "accept", at(12, 10), {}),
        ("community01", "call_up", at(12, 11), {"note": "请街道协调"}),
        ("street01", "dispatch", at(12, 12), {"lead_unit_id": police}),
        ("dept_police", "return", at(12, 13), {"note": "不属于本单位职责"}),
        ("street01", "dispatch", at(12, 15), {"lead_unit_id": police}),
        ("dept_police", "acknowledge", at(12, 16), {})])
    found = new_case(db, now=at(13, 7))
    _sql(db, 'UPDATE "case" SET source = :s WHERE id = :i', s=str(behind.Source.inspection),
         i=found.id)
    rejected = new_case(db, now=at(13, 8))
    move(db, "community01", rejected.id, "reject", now=at(13, 9), note="重复")
    # Hurried twice by the reporter (two working days apart).
    waiting = new_case(db, now=at(16, 9))
    move(db, "community01", waiting.id, "accept", now=at(16, 10))
    for day in (17, 18):
        with write_session(db) as s:
            act(s, None, waiting.id, "hurry", version=s.get(Case, waiting.id).version,
                now=at(day, 9), note="请尽快")
    # Repeats: a report where a case closed on the 3rd (same place), one 20 m from another.
    _self_handled(db, at(20, 9), at(21, 9), "satisfied", address="红星路29号")
    first = _self_handled(db, at(22, 9), at(23, 9), "satisfied", address="红星路甲1号")
    second = new_case(db, now=at(25, 9), address="红星路乙2号")
    _sql(db, 'UPDATE "case" SET latitude = 30.65, longitude = 104.08 WHERE id = :i', i=first.id)
    _sql(db, 'UPDATE "case" SET latitude = 30.65018, longitude = 104.08 WHERE id = :i',
         i=second.id)
    new_case(db, now=at(26, 9), address="红星路29号")
    # Resolved after its first commitment: verified a week after the deadline.
    late = _self_handled(db, at(27, 9), at(29, 18), "satisfied")
    _contract_facts(db)
    _sql(db, 'UPDATE "case" SET committed_due_at = :due WHERE id = :i', due=at(28, 9), i=late.id)
    with write_session(db) as s:
        for case in s.exec(select(Case).where(Case.state.in_(sorted(behind.RESOLVED)),
                                              Case.resolved_at.is_(None))).all():
            case.resolved_at = case.closed_at - timedelta(hours=2) if case.closed_at else \
                case.updated_at
            s.add(case)
    rollup.rebuild(db, now=BUILT_AT)
    return {"late": late, "called": called}


_AGREEMENT: dict[str, dict[str, tuple[list, int]]] = {}


UNITS = [COMMUNITY, NEIGHBOUR, STREET, POLICE, OTHER_STREET_COMMUNITY]


def _agreement(db) -> dict[str, tuple[list, int]]:
    """For every counter: where the drill-down's number differs from the roll-up's (unit,
    period, category, listed, rolled up), and how many it listed in all."""
    out: dict[str, tuple[list, int]] = {c: ([], 0) for c in COUNTERS}
    with read_session(db) as s:
        distance = behind.distance_setting(s)
        fire = s.exec(select(behind.Category.id).where(behind.Category.key == "fire")).one()
        for code in UNITS:
            unit = find_unit(s, code)
            for label in (MARCH, APRIL):
                period = figures.period_of_label(label)
                for category in (None, fire):
                    if category is not None and (unit.kind == "department" or label == APRIL):
                        continue
                    rolled = figures.totals(s, unit, period.start, period.end,
                                            category_id=category)[None]
                    scope = behind.scope_of(unit, period.start, period.end, category, BUILT_AT)
                    for counter in COUNTERS:
                        listed = behind.counter_rows(s, counter, scope, distance)
                        wrong, found = out[counter]
                        if listed != getattr(rolled, counter):
                            wrong.append((code, label, category, listed, getattr(rolled, counter)))
                        out[counter] = (wrong, found + listed)
    return out


# The month is built once per database (and worker) and every check run on it then; each test
# below reads its own check's outcome (the database is reset between tests).
_MONTH: dict[str, dict[str, object]] = {}


def month_checks(request, backend: str) -> dict[str, object]:
    if backend not in _MONTH:
        db = _database(request, backend)  # only for the first test that needs it
        build_month(db)
        out: dict[str, object] = {"agreement": _agreement(db)}
        for check in CHECKS:
            try:
                check(db)
                out[check.__name__] = None
            except Exception as err:  # re-raised by the check's own test
                out[check.__name__] = err
        if backend == "sqlite":
            db.dispose()
            get_engine.cache_clear()
        _MONTH[backend] = out
    return _MONTH[backend]


BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgres"])


def _database(request, backend: str):
    """The ``db`` fixture's database, made only when a test needs it (not for each test)."""
    if backend == "postgres":
        need(postgres_available())
        return _postgres_engine()
    path = request.getfixturevalue("tmp_path") / "month.db"
    shutil.copy(request.getfixturevalue("sqlite_template"), path)
    get_engine.cache_clear()
    return get_engine(f"sqlite:///{path}")


@BACKENDS
@pytest.mark.parametrize("counter", COUNTERS)
def test_the_cases_listed_are_what_the_roll_up_counted(request, backend, counter):
    wrong, found = month_checks(request, backend)["agreement"][counter]
    assert wrong == []
    assert found > 0, f"the month has no {counter} to list"


def _label(key: str) -> str:
    return t(key, "zh")


def _ledger(db, username: str, drill, **filters):
    return ledger.page(actor(db, username), ledger.LedgerFilters(drill=drill, **filters),
                       offset=0, limit=500, engine=db, lang_name=lambda row: name(row, "zh"),
                       label=_label)


def _drill(db, username: str, **params):
    with read_session(db) as s:
        return behind.from_address(s, actor(db, username), params)


def _each_part_lists_the_figures_counts_and_missed_is_base_minus_counted(db):
    with read_session(db) as s:
        street = find_unit(s, STREET)
        period = figures.period_of_label(MARCH)
        values = figures.evaluate(figures.totals(s, street, period.start, period.end)[None],
                                  figures.weights(s))
    checked = 0
    for key in behind.drillable_figures():
        parts = behind.parts_of(key)
        numbers = {}
        for part in parts:
            found = _drill(db, "street01", figure=key, part=part, period=MARCH, unit=STREET)
            assert found.problems == [] and found.drill is not None, (key, part)
            with read_session(db) as s:
                tally = behind.tally(s, actor(db, "street01"), found.drill)
            with read_session(db) as s:
                total = ledger.count(s, actor(db, "street01"),
                                     ledger.LedgerFilters(drill=found.drill))
            assert total == tally.cases, (key, part)
            numbers[part] = tally.number
        value = values[key]
        top, bottom = behind.figure_counters(key)
        if behind.COUNTED in parts and len(top) == 1:
            assert numbers[behind.COUNTED] == value.numerator, key
        if behind.BASE in parts:
            assert numbers[behind.BASE] == value.denominator, key
        if behind.MISSED in parts:
            assert numbers[behind.MISSED] == numbers[behind.BASE] - numbers[behind.COUNTED], key
        checked += 1
    assert checked >= 10


def _the_banner_names_unit_period_figure_and_part_with_the_cards_number(db):
    found = _drill(db, "district_leader", figure="satisfaction_rate", part="base", period=MARCH,
                   unit=STREET)
    with read_session(db) as s:
        street = find_unit(s, STREET)
        period = figures.period_of_label(MARCH)
        card = figures.evaluate(figures.totals(s, street, period.start, period.end)[None],
                                figures.weights(s))["satisfaction_rate"]
        tally = behind.tally(s, actor(db, "district_leader"), found.drill)
        line = behind.banner(s, found.drill, tally, lang="zh")
    assert card.denominator == tally.number == 7
    assert line == "春熙路街道 · 2026年3月 · 满意率 · 已评价 7 件"
    missed = _drill(db, "district_leader", figure="satisfaction_rate", part="missed",
                    period=MARCH, unit=STREET)
    with read_session(db) as s:
        line = behind.banner(s, missed.drill, behind.tally(s, actor(db, "district_leader"),
                                                           missed.drill), lang="zh")
    assert line == "春熙路街道 · 2026年3月 · 满意率 · 不满意 1 件（基数 7 件）"
    listed, total = _ledger(db, "district_leader", missed.drill)
    assert total == 1 and listed[0]["rating"] == t("rating.dissatisfied", "zh")


def _a_community_cannot_open_another_communitys_cases_by_editing_the_address(db):
    found = _drill(db, "community01", figure="resolution_rate", part="base", period=MARCH,
                   unit=NEIGHBOUR)
    assert found.refused and found.drill is None and "behind.bad_unit" in found.problems
    found = _drill(db, "community01", figure="resolution_rate", part="base", period=MARCH,
                   unit=STREET)
    assert found.refused
    # Even a drill-down built for the street lists only the community's own cases to it.
    street = _drill(db, "street01", figure="closed", part="counted", period=MARCH, unit=STREET)
    listed, total = _ledger(db, "community01", street.drill)
    with read_session(db) as s:
        own = find_unit(s, COMMUNITY).id
        communities = {s.get(Case, row["id"]).community_id for row in listed}
    assert total > 0 and communities == {own}
    everything, whole = _ledger(db, "street01", street.drill)
    assert whole > total


def _a_street_leader_sees_only_their_street(db):
    refused = _drill(db, "street01", figure="closed", part="counted", period=MARCH,
                     unit=OTHER_STREET_COMMUNITY)
    assert refused.refused and refused.drill is None
    district = _drill(db, "district_leader", figure="closed", part="counted", period=MARCH,
                      unit=DISTRICT)
    mine, total = _ledger(db, "street01", district.drill)
    _, whole = _ledger(db, "district_leader", district.drill)
    with read_session(db) as s:
        streets = {s.get(Case, row["id"]).street_id for row in mine}
        assert streets == {find_unit(s, STREET).id}
    assert 0 < total < whole


BAD = [
    ({"figure": "no_such_figure", "part": "base", "period": MARCH}, "behind.bad_figure"),
    ({"figure": "<script>", "part": "base", "period": MARCH}, "behind.bad_figure"),
    ({"figure": "mean_closure_hours", "part": "counted", "period": MARCH}, "behind.bad_part"),
    ({"figure": "resolution_rate", "part": "everything", "period": MARCH}, "behind.bad_part"),
    ({"figure": "resolution_rate", "part": "base", "period": "2026-13"}, "behind.bad_period"),
    ({"figure": "resolution_rate", "part": "base", "period": "9999-99-99'--"},
     "behind.bad_period"),
    ({"figure": "resolution_rate", "part": "base"}, "behind.bad_period"),
    ({"figure": "resolution_rate", "part": "base", "period": MARCH, "category": "nope"},
     "behind.bad_category"),
]


def test_a_bad_address_drops_the_drill_down_with_a_message(db):
    for params, problem in BAD:
        found = _drill(db, "street01", unit=STREET, **params)
        assert found.drill is None and problem in found.problems and not found.refused, params
        assert t(problem, "zh") != problem and t(problem, "en") != problem


def test_an_unknown_unit_is_refused_and_a_plain_ledger_address_is_no_drill_down(db):
    found = _drill(db, "street01", figure="closed", part="counted", period=MARCH,
                   unit="x" * 500)
    assert found.refused
    assert _drill(db, "street01", unit=STREET).drill is None
    assert _drill(db, "street01", unit=STREET).problems == []


def _a_departments_drill_down_lists_the_work_it_did(db):
    found = _drill(db, "district_leader", figure="return_rate", part="counted", period=MARCH,
                   unit=POLICE)
    with read_session(db) as s:
        tally = behind.tally(s, actor(db, "district_leader"), found.drill)
    assert tally.rows and tally.number == 1 and tally.cases == 1
    base = _drill(db, "district_leader", figure="return_rate", part="base", period=MARCH,
                  unit=POLICE)
    with read_session(db) as s:
        tally = behind.tally(s, actor(db, "district_leader"), base.drill)
    assert (tally.number, tally.cases) == (3, 2)  # three orders on two cases


def _the_export_keeps_the_drill_down(db):
    found = _drill(db, "street01", figure="satisfaction_rate", part="missed", period=MARCH,
                   unit=STREET)
    data = ledger.export(actor(db, "street01"), ledger.LedgerFilters(drill=found.drill),
                         fmt="csv", engine=db, lang_name=lambda row: name(row, "zh"),
                         label=_label)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) == 2  # the header and the one dissatisfied case


def _the_workbooks_sheets_add_up_to_each_figures_counts(db):
    with read_session(db) as s:
        street = find_unit(s, STREET)
        period = figures.period_of_label(MARCH)
        values = figures.evaluate(figures.totals(s, street, period.start, period.end)[None],
                                  figures.weights(s))
        sheets = behind.case_sheets(s, actor(db, "street01"), street, period, None, now=BUILT_AT)
        own = behind.case_sheets(s, actor(db, "community01"), street, period, None,
                                 now=BUILT_AT)
    titles = [title for title, _, _ in sheets]
    assert t("kpi.figure.resolution_rate", "zh") in titles
    by_title = {title: (header, rows) for title, header, rows in sheets}
    for key in ("satisfaction_rate", "on_time_rate", "community_share", "return_rate"):
        header, rows = by_title[t(f"kpi.figure.{key}", "zh")]
        base = sum(r[-2] for r in rows)
        counted = sum(r[-1] for r in rows)
        assert base == values[key].denominator, key
        if key != "satisfaction_rate":
            assert counted == values[key].numerator, key
        assert len(header) == len(rows[0])
    # A community's reader gets only its own cases, whatever unit it asks for.
    with read_session(db) as s:
        mine = find_unit(s, COMMUNITY).id
        codes = {r[0] for _, _, rows in own for r in rows}
        communities = set(s.exec(select(Case.community_id).where(Case.code.in_(codes))).all())
    assert communities == {mine}


def _the_case_lists_workbook_has_a_sheet_per_figure_in_the_readers_scope(db):
    """The monthly report's companion download: the same case lists, one sheet per figure."""
    from openpyxl import load_workbook

    from lib.kpi import report
    from lib.kpi.views import Query

    name_, content = report.cases_workbook(actor(db, "street01"), Query(MARCH), "zh", db,
                                           now=BUILT_AT)
    assert name_.endswith(f"-{MARCH}.xlsx")
    book = load_workbook(io.BytesIO(content))
    title = t("kpi.figure.satisfaction_rate", "zh")
    assert title in book.sheetnames and t("kpi.figure.resolution_rate", "zh") in book.sheetnames
    with read_session(db) as s:
        street = find_unit(s, STREET)
        period = figures.period_of_label(MARCH)
        rated = figures.totals(s, street, period.start, period.end)[None].rated
    sheet = book[title]
    assert sum(row[-2] for row in sheet.iter_rows(min_row=2, values_only=True)) == rated
    _, own = report.cases_workbook(actor(db, "community01"), Query(MARCH), "zh", db,
                                   now=BUILT_AT)
    codes = {row[0] for ws in load_workbook(io.BytesIO(own)).worksheets[:-1]
             for row in ws.iter_rows(min_row=2, values_only=True)}
    with read_session(db) as s:
        mine = find_unit(s, COMMUNITY).id
        communities = set(s.exec(select(Case.community_id).where(Case.code.in_(codes))).all())
    assert communities == {mine}


CHECKS = [_each_part_lists_the_figures_counts_and_missed_is_base_minus_counted,
          _the_banner_names_unit_period_figure_and_part_with_the_cards_number,
          _a_departments_drill_down_lists_the_work_it_did, _the_export_keeps_the_drill_down,
          _a_community_cannot_open_another_communitys_cases_by_editing_the_address,
          _a_street_leader_sees_only_their_street,
          _the_workbooks_sheets_add_up_to_each_figures_counts,
          _the_case_lists_workbook_has_a_sheet_per_figure_in_the_readers_scope]


@BACKENDS
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.strip("_"))
def test_on_the_month(request, backend, check):
    """Every part of every figure in the ledger with its banner, a department's, the export,
    each reader's scope, the workbook's sheets."""
    failed = month_checks(request, backend)[check.__name__]
    if failed is not None:
        raise failed


def test_the_ledger_page_names_the_figure_and_refuses_another_communitys(sqlite_db):
    from tests.factories import everything, open_page

    _self_handled(sqlite_db, at(2, 9), at(3, 9), "dissatisfied")
    _self_handled(sqlite_db, at(4, 9), at(5, 9), "satisfied")
    rollup.rebuild(sqlite_db, now=BUILT_AT)
    page = open_page("street01", "pages/ledger.py", figure="satisfaction_rate", part="missed",
                     period=MARCH, unit=COMMUNITY)
    assert not page.exception
    assert "红星路社区 · 2026年3月 · 满意率 · 不满意 1 件（基数 2 件）" in [i.value for i in page.info]
    assert page.dataframe[0].value.shape[0] == 1
    refused = open_page("community01", "pages/ledger.py", figure="satisfaction_rate",
                        part="missed", period=MARCH, unit=NEIGHBOUR)
    assert not refused.exception and not refused.dataframe
    assert t("behind.bad_unit", "zh") in [e.value for e in refused.error]
    bad = open_page("street01", "pages/ledger.py", figure="nope", part="missed", period=MARCH,
                    unit=COMMUNITY)
    assert not bad.exception and t("behind.bad_figure", "zh") in everything(bad)
    assert bad.dataframe[0].value.shape[0] == 2  # the filter dropped: the street's cases
