"""Months that close: November 2026 closes five working days after its end (as 8 December
begins, not before); from then on its figures, ranking and 通报 (the page's data and the
workbook's bytes) are what it published, whatever happens to its cases after (a reopen, a late
rating) and even after the live roll-ups are rebuilt; those later changes are adjustments listed,
with their reason, in December's 通报 — to the communities whose cases they are. Closing twice
stores the month once. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import threading
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func
from sqlmodel import select

from lib.cases.machine import act
from lib.cases.models import Case
from lib.core import refcache, settings
from lib.core.db import read_session, write_session
from lib.core.workcal import CHINA_TZ
from lib.kpi import figures, months, rankings, report, rollup, views
from lib.kpi.models import KpiAdjustment, KpiMonth, KpiMonthUnit, KpiUnitDay
from lib.org import auth
from lib.org.units import find_unit
from lib.tools import cli
from tests.factories import NEIGHBOUR, actor, move, new_case

DISTRICT = "510104"
STREET = "510104001"
COMMUNITY = "510104001001"
NOVEMBER = views.Query(label="2026-11")
DECEMBER = views.Query(label="2026-12")


def at(month: int, day: int, hour: int) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=CHINA_TZ)


def _handled(db, reported: datetime, *, community: str = COMMUNITY, rating: str | None = "satisfied",
             hours: int = 24, by: str = "community01"):
    case = new_case(db, community=community, now=reported, address=f"红星路{reported.day}{hours}号")
    steps = [("accept", {}), ("take", {}), ("handle", {"note": "已清理"}), ("verify", {})]
    for n, (action, params) in enumerate(steps):
        case = move(db, by, case.id, action, now=reported + timedelta(minutes=10 * (n + 1)), **params)
    if rating is not None:
        case = move(db, by, case.id, "feedback", now=reported + timedelta(hours=hours - 1),
                    rating=rating)
    return move(db, by, case.id, "close", now=reported + timedelta(hours=hours))


@pytest.fixture
def november(db):
    """Cases in November 2026 in two communities of one street, the roll-ups built on the last
    day of the month: ``unrated`` closed without a rating, ``reopened`` closed and reopened
    later (in December, after the month closed)."""
    with write_session(db) as s:
        auth.bootstrap_user(s, username="community02", display_name="邻社区", password="x" * 12,
                            unit=find_unit(s, NEIGHBOUR), roles=["community_staff"])
    cases = {}
    for day in (2, 3, 4, 5, 6, 9):
        _handled(db, at(11, day, 9), hours=20 + day)
    cases["unrated"] = _handled(db, at(11, 10, 9), rating=None)
    cases["reopened"] = _handled(db, at(11, 11, 9), rating="basically_satisfied", hours=50)
    for day in (2, 3, 4, 5, 6, 9, 10):
        _handled(db, at(11, day, 10), community=NEIGHBOUR, by="community02",
                 rating="dissatisfied" if day % 2 else "satisfied", hours=30 + day)
    rollup.rebuild(db, now=at(11, 30, 20))
    return cases


def _leader(db):
    return actor(db, "district_leader")


def _published(db, who=None) -> dict:
    """What a leader reads of November: totals of every grouping the pages use, the trend,
    quantiles, the ranking, the 通报's data and its workbook in both languages."""
    leader = who or _leader(db)
    with read_session(db) as s:
        district = find_unit(s, DISTRICT)
        start, end = date(2026, 11, 1), date(2026, 11, 30)
        sums = {by: figures.totals(s, district, start, end, by=by)
                for by in (None, "category", "street", "community", "cell", "department")}
        trend = figures.by_period(s, district, figures.last_periods("2026-12", 3))["2026-11"]
        quantiles = figures.closure_quantiles(s, district, start, end)
    ranking = rankings.rankings(leader, NOVEMBER, "community", db)
    data = report.monthly(leader, NOVEMBER, db)
    return {"sums": sums, "trend": trend, "quantiles": quantiles,
            "ranking": [(r.unit.code, r.rank, r.listed, r.values, r.counters) for r in ranking.rows],
            "report": _report_data(data),
            "xlsx_zh": report.workbook(data, "zh"), "xlsx_en": report.workbook(data, "en")}


def _report_data(data: report.Report) -> tuple:
    return (data.period, data.previous, data.values, data.before, data.quantiles, data.made_at,
            data.closed_at, [(c.id, v, n) for c, v, n in data.categories],
            [(r.level, r.ranked, r.min_cases, [(x.unit.code, x.unit.name_zh, x.rank, x.listed,
                                                x.values, x.extra) for x in r.rows],
              [x.unit.code for x in r.red], [x.unit.code for x in r.black])
             for r in data.rankings], data.adjustments)


def _live_november(db) -> tuple[int, int]:
    """The live roll-ups' November of the district (closed, rated), read around the store."""
    with read_session(db) as s:
        district = find_unit(s, DISTRICT)
        return tuple(s.exec(select(func.sum(KpiUnitDay.closed), func.sum(KpiUnitDay.rated)).where(
            KpiUnitDay.unit_id == district.id, KpiUnitDay.day >= "2026-11-01",
            KpiUnitDay.day <= "2026-11-30")).one())


def _later_events(db, cases) -> None:
    """On 10 December: the reopened case is reopened with its reason, the unrated one rated (each
    seen by a refresh of its own, as the tick's refreshes a minute apart would)."""
    move(db, "community01", cases["reopened"].id, "reopen", now=at(12, 10, 9),
         note="居民反映问题复发")
    rollup.refresh(db, now=at(12, 10, 10))
    with write_session(db) as s:
        case = s.get(Case, cases["unrated"].id)
        act(s, None, case.id, "rate", version=case.version, rating="satisfied", now=at(12, 10, 11))
    rollup.refresh(db, now=at(12, 10, 12))


def test_a_month_closes_the_set_number_of_working_days_after_its_end_not_before(db, november):
    november_period = figures.Period(date(2026, 11, 1), date(2026, 11, 30), "2026-11")
    # Monday 30 November; working days 1–4 and 7 December: it closes as 8 December begins.
    assert months.closes_at(november_period, 5) == at(12, 8, 0)
    assert months.close_due(db, now=at(12, 7, 23) + timedelta(minutes=59)) == {"kpi_months_closed": 0}
    with read_session(db) as s:
        assert s.exec(select(func.count()).select_from(KpiMonth)).one() == 0
    assert months.close_due(db, now=at(12, 8, 0)) == {"kpi_months_closed": 1}
    with read_session(db) as s:
        month = s.get(KpiMonth, "2026-11")
        assert (month.start, month.end, month.closed_at) == ("2026-11-01", "2026-11-30", at(12, 8, 0))
        assert month.settings["weights"]["resolution_rate"] == 0.5
        assert (month.settings["min_cases"], month.settings["list_size"]) == (5, 5)
        community = find_unit(s, COMMUNITY)
        row = s.get(KpiMonthUnit, ("2026-11", community.id, 0))
        assert (row.unit_name, row.reported, row.closed, row.rated) == ("红星路社区", 8, 8, 7)
        assert row.median_hours is not None


def test_a_closed_month_reads_as_published_after_a_reopen_a_late_rating_and_a_rebuild(db, november):
    months.close_due(db, now=at(12, 8, 0))
    before = _published(db)
    live_before = _live_november(db)
    _later_events(db, november)
    live_after = _live_november(db)
    # The live roll-ups did change: one case fewer closed (and its rating with it), one rated …
    assert live_after == (live_before[0] - 1, live_before[1])
    assert live_after != live_before
    # … and the closed month did not, in any grouping, nor its ranking and 通报, byte for byte.
    after = _published(db)
    for key in before:
        assert after[key] == before[key], key
    assert after["sums"][None][None].closed == live_before[0]
    # New weights, minimum sample and list size apply from the month under way, not to November.
    with write_session(db) as s:
        for key, value in (("kpi.weight_resolution", 0.2), ("kpi.weight_satisfaction", 0.7),
                           ("kpi.min_cases_to_rank", 8), ("kpi.list_size", 1)):
            settings.store(s, key, value)
    refcache.clear()  # settings are cached per process for a while
    assert _published(db) == before
    rollup.rebuild(db, now=at(12, 11, 9))
    assert _published(db) == before


def test_the_adjustment_shows_in_the_next_months_report_with_its_reason(db, november):
    months.close_due(db, now=at(12, 8, 0))
    _later_events(db, november)
    with read_session(db) as s:
        rows = s.exec(select(KpiAdjustment).order_by(KpiAdjustment.at)).all()
    assert [(a.case_id, a.label, a.shown_in) for a in rows] == [
        (november["reopened"].id, "2026-11", "2026-12"), (november["unrated"].id, "2026-11", "2026-12")]
    reopened = rows[0]
    assert reopened.reason == "居民反映问题复发"
    community = str(november["reopened"].community_id)
    assert reopened.changes["units"][community]["closed"] == -1
    assert rows[1].changes["units"][community]["rated"] == 1
    data = report.monthly(_leader(db), DECEMBER, db)
    listed = report.adjustment_rows(data, "zh")
    assert [r[0] for r in listed] == [november["reopened"].code, november["unrated"].code]
    assert listed[0][1] == "2026-11" and listed[0][4] == "居民反映问题复发"
    assert "满意率" in listed[1][5] and "→" in listed[1][5]
    # The workbook carries them on a sheet of their own, second after the summary; November's
    # own 通报 lists nothing of it.
    book = load_workbook(io.BytesIO(report.workbook(data, "zh")))
    assert book.sheetnames[1] == "上月结账后的调整"
    cells = [[c.value for c in row] for row in book.worksheets[1].iter_rows()]
    assert cells[1][0] == november["reopened"].code
    assert cells[1][4] == "居民反映问题复发"
    assert report.monthly(_leader(db), NOVEMBER, db).adjustments == []
    # Scope: the neighbour community sees none of these; the case's own community both.
    own = report.monthly(actor(db, "community01"), DECEMBER, db)
    other = report.monthly(actor(db, "community02"), DECEMBER, db)
    assert len(own.adjustments) == 2 and other.adjustments == []
    assert months.status(_leader(db), NOVEMBER, db).adjustments == 2
    assert months.status(actor(db, "community02"), NOVEMBER, db).adjustments == 0


def test_closing_twice_or_at_once_stores_the_month_once(db, november):
    results = []

    def close() -> None:
        results.append(months.close_due(db, now=at(12, 9, 0))["kpi_months_closed"])

    threads = [threading.Thread(target=close) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 1]
    with read_session(db) as s:
        stored = s.exec(select(func.count()).select_from(KpiMonthUnit)).one()
        first = s.get(KpiMonth, "2026-11").closed_at
    assert months.close_due(db, now=at(12, 20, 0)) == {"kpi_months_closed": 0}
    with read_session(db) as s:
        assert s.exec(select(func.count()).select_from(KpiMonthUnit)).one() == stored
        assert s.get(KpiMonth, "2026-11").closed_at == first


def test_the_report_of_a_closed_month_was_made_when_it_closed(db, november):
    months.close_due(db, now=at(12, 8, 0))
    data = report.monthly(_leader(db), NOVEMBER, db)
    assert data.made_at == data.closed_at == at(12, 8, 0)
    first = report.workbook(data, "zh")
    assert report.workbook(report.monthly(_leader(db), NOVEMBER, db), "zh") == first


def test_kpi_close_refuses_a_month_that_has_not_ended(sqlite_db, capsys):
    under_way = figures.month_period(figures.today()).label
    assert cli.main(["kpi-close", "--month", under_way]) == 2
    assert "has not ended" in capsys.readouterr().err
    assert cli.main(["kpi-close", "--month", "2026-13"]) == 2
    with read_session(sqlite_db) as s:
        assert s.exec(select(func.count()).select_from(KpiMonth)).one() == 0
