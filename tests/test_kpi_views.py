"""The assessment pages' lib on small hand-built months, with every answer worked out by hand from
the rules in lib/kpi's docstrings: the per-unit roll-up against the per-community-and-category one,
rankings and the red and black lists, who may read what, empty months, the reasons residents give,
monitoring, the tier flow, the monthly workbook and the reward figures beside the case figures —
the same on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import itertools
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from lib.cases import ledger
from lib.cases.deadlines import mark_overdue
from lib.cases.intake import Report, create_case
from lib.cases.models import Case
from lib.cases.queue import waiting_counts
from lib.core import refcache
from lib.core.db import read_session, write_session
from lib.core.errors import PermissionDenied
from lib.core.i18n import t
from lib.core.models import Category, Setting, Source
from lib.core.workcal import CHINA_TZ
from lib.kpi import figures, monitoring, rankings, reasons, report, rollup, views
from lib.kpi.models import KpiPlace
from lib.kpi.rankings import BLACK, RED
from lib.kpi.rollup import Counters
from lib.kpi.views import Query
from lib.org import auth
from lib.org.models import Unit
from lib.org.units import find_unit
from lib.rewards.machine import ClaimAct
from lib.rewards.models import ClaimState, RewardClaim, RewardEvent
from tests.factories import COMMUNITY, NEIGHBOUR, POLICE, STREET, actor, move, new_case, unit_id

DISTRICT = "510104"
OTHER_STREET = "510104002"
ELSEWHERE = "510104002001"  # a community of another street
MARCH = "2026-03"
MARCH_START, MARCH_END = date(2026, 3, 1), date(2026, 3, 31)


def at(day: int, hour: int = 9, month: int = 3, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=CHINA_TZ)


def community(n: int) -> str:
    """The n-th community of street 510104001 (1: 510104001001, the demo's own)."""
    return f"{STREET}{n:03d}"


def staff(code: str) -> str:
    """The staff account the demo makes for every unit."""
    return f"staff_{code}".replace("-", "_")


_streets = itertools.count(1)


def address() -> str:
    """An address of its own, so that no two cases look like one place."""
    return f"测试街{next(_streets)}号"


def set_setting(db, key: str, value: object) -> None:
    with write_session(db) as s:
        row = s.get(Setting, key)
        row.value = str(value)
        s.add(row)
    refcache.clear()  # settings are cached per process for a while


def category(db, key: str) -> int:
    with read_session(db) as s:
        return s.exec(select(Category.id).where(Category.key == key)).one()


def steps(db, case, trail) -> Case:
    for username, action, when, params in trail:
        case = move(db, username, case.id, action, now=when, **params)
    return case


def closed_here(db, code: str, key: str, day: int, rating: str, *, address_: str | None = None,
                month: int = 3) -> Case:
    """Reported at 9:00 and taken on, handled and closed by its community by 16:00 (7 hours);
    taken at 10:00, so due 7 working days later at 10:00."""
    case = new_case(db, community=code, category=key, address=address_ or address(),
                    now=at(day, 9, month))
    who = staff(code)
    return steps(db, case, [
        (who, "accept", at(day, 9, month, 30), {}), (who, "take", at(day, 10, month), {}),
        (who, "handle", at(day, 12, month), {"note": "已整改"}), (who, "verify", at(day, 14, month), {}),
        (who, "feedback", at(day, 15, month), {"rating": rating}), (who, "close", at(day, 16, month), {})])


def to_police(db, code: str, day: int) -> Case:
    """A residential-security report at 9:00, called up at 10:00, dispatched by the street to its
    police station at 12:00: sign for it by 12:00 the next working day, handle it within 7."""
    case = new_case(db, community=code, category="residential_security", address=address(),
                    now=at(day, 9))
    return steps(db, case, [
        (staff(code), "accept", at(day, 9, minute=30), {}),
        (staff(code), "call_up", at(day, 10), {"note": "请街道协调"}),
        ("street01", "dispatch", at(day, 12), {"lead_unit_id": unit_id(db, POLICE)})])


# ---------------------------------------------------------------- a month in street 510104001


@pytest.fixture
def month(db):
    """March 2026 (2 March is a Monday) in street 510104001's communities c1…c8, and one case in
    another street:

      c1  x1 fire, closed by the community, 满意
          x2 residential security, dispatched to the police on Mon 2 March 12:00 (sign by Tue
             12:00, handle by Wed 11 March 12:00), signed for late on Wed 4 March, handled on the
             5th, closed the 5th at 16:00 (79 hours), 基本满意
      c2  two fire, closed, 满意 and 满意
      c3  fire 满意, dogs 基本满意
      c4  dogs 满意, dogs 基本满意
      c5  fire 满意, fire 不满意
      c6  one fire, 满意
      c7  r1 residential security, dispatched to the police on Mon 9 March 12:00, signed for in
          time at 15:00, returned on the 10th (open at the street since)
      c8  nothing
      510104002001  one dogs case, closed, 满意

    Every community-closed case takes 7 hours and meets its deadline."""
    c = {}
    c["x1"] = closed_here(db, community(1), "fire", 2, "satisfied")
    c["x2"] = steps(db, to_police(db, community(1), 2), [
        ("dept_police", "acknowledge", at(4, 9), {}), ("dept_police", "start", at(4, 10), {}),
        ("dept_police", "handle", at(5, 9), {"note": "已处理"}),
        ("community01", "verify", at(5, 14), {}),
        ("community01", "feedback", at(5, 15), {"rating": "basically_satisfied"}),
        ("community01", "close", at(5, 16), {})])
    closed_here(db, community(2), "fire", 3, "satisfied")
    closed_here(db, community(2), "fire", 4, "satisfied")
    closed_here(db, community(3), "fire", 3, "satisfied")
    closed_here(db, community(3), "dogs", 4, "basically_satisfied")
    closed_here(db, community(4), "dogs", 5, "satisfied")
    closed_here(db, community(4), "dogs", 6, "basically_satisfied")
    closed_here(db, community(5), "fire", 9, "satisfied")
    closed_here(db, community(5), "fire", 10, "dissatisfied")
    closed_here(db, community(6), "fire", 11, "satisfied")
    c["r1"] = steps(db, to_police(db, community(7), 9), [
        ("dept_police", "acknowledge", at(9, 15), {}),
        ("dept_police", "return", at(10, 9), {"note": "不属本所职责"})])
    closed_here(db, ELSEWHERE, "dogs", 12, "satisfied")
    rollup.rebuild(db, now=at(31, 12))
    return c


def _sum(parts) -> Counters:
    total = Counters()
    for part in parts:
        total.add(part)
    return total


def test_the_unit_roll_up_agrees_with_the_community_and_category_roll_up(db, month):
    with read_session(db) as s:
        cats = [c.id for c in s.exec(select(Category)).all()]
        units = {code: find_unit(s, code) for code in (DISTRICT, STREET, COMMUNITY, OTHER_STREET)}

        def cell_path(scope: Unit, by: str | None) -> dict:
            """The same sums from ``kpi_day``: one category at a time, added up."""
            out: dict = {}
            for cat in cats:
                for key, counters in figures.totals(s, scope, MARCH_START, MARCH_END, by=by,
                                                    category_id=cat).items():
                    out.setdefault(key, Counters()).add(counters)
            return {k: v for k, v in out.items() if k is None or v != Counters()}

        for code, scope in units.items():
            whole = figures.totals(s, scope, MARCH_START, MARCH_END)  # kpi_unit_day
            assert whole == cell_path(scope, None), code
            by_category = figures.totals(s, scope, MARCH_START, MARCH_END, by="category")
            assert whole[None] == _sum(by_category.values()), code
        for code, by in ((DISTRICT, "street"), (DISTRICT, "community"), (STREET, "community")):
            found = figures.totals(s, units[code], MARCH_START, MARCH_END, by=by)
            assert found == cell_path(units[code], by), (code, by)

        street = figures.totals(s, units[STREET], MARCH_START, MARCH_END)[None]
        # Reported: c1 2, c2 2, c3 2, c4 2, c5 2, c6 1, c7 1 = 12; all but r1 closed; x2 reached
        # the street, the other ten stayed in their community.
        assert (street.reported, street.closed, street.closed_community, street.closed_street) \
            == (12, 11, 10, 11)
        # 满意: x1, c2 ×2, c3 fire, c4 one, c5 one, c6 = 7; 基本满意: x2, c3 dogs, c4 one = 3.
        assert (street.rated, street.satisfied, street.basic, street.dissatisfied) == (11, 7, 3, 1)
        # Lead work orders: x2 (signed late), r1 (signed in time, returned).
        assert (street.dispatched, street.signed_on_time, street.returned, street.late) == (2, 1, 1, 0)
        # First commitments in March: the ten taken cases, x2 and r1 (returned, it stays in the
        # base: a return never takes a missed deadline out), all but r1 resolved.
        assert (street.due, street.resolved, street.handled) == (12, 11, 11)
        # Waits for a first action: two a community-closed case (triage, decision), x2 four
        # (triage, call-up, the street's dispatch, the police's sign-for: late), r1 five (the
        # same, then the street's decision after the return: still waiting).
        assert (street.waits, street.responded) == (2 * 10 + 4 + 5, 2 * 10 + 3 + 4)
        assert street.closure_hours == pytest.approx(10 * 7 + 79)
        assert street.buckets == [0, 10, 0, 0, 0, 1, 0, 0, 0, 0]  # ≤8 h: ten; 72–120 h: x2
        c1 = figures.totals(s, units[COMMUNITY], MARCH_START, MARCH_END)[None]
        assert (c1.reported, c1.closed, c1.closed_community, c1.dispatched, c1.signed_on_time) \
            == (2, 2, 1, 1, 0)
        district = figures.totals(s, units[DISTRICT], MARCH_START, MARCH_END)[None]
        assert (district.reported, district.closed, district.satisfied) == (13, 12, 8)
        streets = figures.totals(s, units[DISTRICT], MARCH_START, MARCH_END, by="street")
        assert {k: v.reported for k, v in streets.items()} == {
            units[STREET].id: 12, units[OTHER_STREET].id: 1}

        # The police station's row: the work orders it led and the case it handled.
        police = unit_id(db, POLICE)
        for scope in (units[DISTRICT], units[STREET]):
            departments = figures.totals(s, scope, MARCH_START, MARCH_END, by="department")
            assert list(departments) == [police]  # no other department did anything
            row = departments[police]
            assert (row.dispatched, row.signed_on_time, row.returned, row.late) == (2, 1, 1, 0)
            # x2: handled by the police, closed on time after 79 hours, 基本满意, due 11 March.
            assert (row.closed, row.closed_community, row.closed_street, row.closed_on_time) \
                == (1, 0, 1, 1)
            assert (row.rated, row.basic, row.due, row.resolved, row.handled) == (1, 1, 1, 1, 1)
            assert row.closure_hours == pytest.approx(79) and row.reported == 0
        # A department's work is not counted again in the area: the street's row is its
        # communities' sum, not that plus the police.
        communities = figures.totals(s, units[STREET], MARCH_START, MARCH_END, by="community")
        assert _sum(communities.values()) == street


# ---------------------------------------------------------------- rankings


# Composite = (0.1·response + 0.5·resolution + 0.4·satisfaction) / the weights of the parts the
# unit has. Response counts every wait for a first action (a community-closed case: its triage
# and its decision, both in time). Every ranked community resolved all it was due (resolution 1):
C1_SCORE = 0.1 * 5 / 6 + 0.5 * 1 + 0.4 * (1 + 0.9) / 2  # x2 signed for late: 5/6 → 0.9633
C2_SCORE = 0.1 * 1 + 0.5 * 1 + 0.4 * 1  # → 1.0
C3_SCORE = 0.1 * 1 + 0.5 * 1 + 0.4 * 0.95  # 满意 + 基本满意 → 0.98 (c4 the same)
C5_SCORE = 0.1 * 1 + 0.5 * 1 + 0.4 * 0.5  # 满意 + 不满意 → 0.8


def test_communities_rank_by_composite_with_ties_and_lists(db, month):
    set_setting(db, "kpi.min_cases_to_rank", 2)
    ranking = rankings.rankings(actor(db, "street_leader"), Query(MARCH), engine=db)
    assert (ranking.scope.code, ranking.level, ranking.levels) == (STREET, "community",
                                                                  ["community", "department"])
    rows = {r.unit.code: r for r in ranking.rows}
    assert set(rows) == {community(n) for n in range(1, 9)}  # every community is shown
    for n, score in ((1, C1_SCORE), (2, C2_SCORE), (3, C3_SCORE), (4, C3_SCORE), (5, C5_SCORE)):
        assert rows[community(n)].score == pytest.approx(score), n
    assert C1_SCORE == pytest.approx(0.9633, abs=1e-4)
    # Ties (equal composite, resolution and cases: c3, c4) share a rank and the next rank
    # skips: 1, 2, 2, 4, 5. c6 and c7 have one case each, below the minimum of 2; c8 has none.
    assert [(r.unit.code, r.rank) for r in ranking.rows] == [
        (community(2), 1), (community(3), 2), (community(4), 2), (community(1), 4),
        (community(5), 5), (community(6), None), (community(7), None), (community(8), None)]
    # c7: r1's waits 4 of 5 answered, its first commitment missed (returned), no rating: the
    # satisfaction weight spread over response and resolution.
    assert (rows[community(6)].score, rows[community(7)].score) == (
        pytest.approx(1.0), pytest.approx((0.1 * 4 / 5 + 0.5 * 0) / 0.6))
    assert (rows[community(6)].cases, rows[community(8)].score) == (1, None)
    assert (ranking.ranked, ranking.min_cases) == (5, 2)
    # Lists: at most half of the 5 ranked (2) each, never overlapping; the black list worst first.
    assert [r.unit.code for r in ranking.red] == [community(2), community(3)]
    assert [r.unit.code for r in ranking.black] == [community(5), community(1)]
    assert {code for code, r in rows.items() if r.listed == RED} == {community(2), community(3)}
    assert {code for code, r in rows.items() if r.listed == BLACK} == {community(1), community(5)}

    # A list of one: the best and the worst.
    set_setting(db, "kpi.list_size", 1)
    ranking = rankings.rankings(actor(db, "street_leader"), Query(MARCH), engine=db)
    assert ([r.unit.code for r in ranking.red], [r.unit.code for r in ranking.black]) == (
        [community(2)], [community(5)])

    # A minimum nobody reaches: everybody shown, nobody ranked, no lists.
    set_setting(db, "kpi.min_cases_to_rank", 100)
    ranking = rankings.rankings(actor(db, "street_leader"), Query(MARCH), engine=db)
    assert len(ranking.rows) == 8 and ranking.ranked == 0
    assert all(r.rank is None and r.listed is None for r in ranking.rows)
    assert ranking.red == [] and ranking.black == []


def test_a_community_sees_only_its_own_row_and_its_place(db, month):
    set_setting(db, "kpi.min_cases_to_rank", 2)
    for username in ("community_leader", "community01"):
        ranking = rankings.rankings(actor(db, username), Query(MARCH), engine=db)
        assert ranking.own_only and ranking.scope.code == COMMUNITY
        assert [r.unit.code for r in ranking.rows] == [COMMUNITY]  # no neighbour's figures
        own = ranking.rows[0]
        # 4th of the 5 ranked in its street, and on the black list there.
        assert (own.rank, ranking.ranked, own.listed) == (4, 5, BLACK)
        assert own.score == pytest.approx(C1_SCORE)
        assert ranking.red == [] and ranking.black == []
        assert (ranking.level, ranking.levels) == ("community", ["community"])
        # Asking for another level changes nothing.
        again = rankings.rankings(actor(db, username), Query(MARCH), level="street", engine=db)
        assert [r.unit.code for r in again.rows] == [COMMUNITY]


def test_the_district_ranks_streets_communities_and_departments(db, month):
    set_setting(db, "kpi.min_cases_to_rank", 2)
    leader = actor(db, "district_leader")
    ranking = rankings.rankings(leader, Query(MARCH), engine=db)
    assert (ranking.level, ranking.levels) == ("street", ["street", "community", "department"])
    assert len(ranking.rows) == 6
    first = ranking.rows[0]
    # Street 510104001: response 27/29 waits, resolution 11/12 (r1 returned: still due),
    # satisfaction (7 + 0.9·3)/11.
    assert (first.unit.code, first.rank, first.cases) == (STREET, 1, 12)
    assert first.score == pytest.approx(0.1 * 27 / 29 + 0.5 * 11 / 12 + 0.4 * 9.7 / 11)
    other = next(r for r in ranking.rows if r.unit.code == OTHER_STREET)
    assert (other.cases, other.rank) == (1, None)  # below the minimum
    # One ranked street: lists of min(5, 1 // 2) = 0.
    assert ranking.ranked == 1 and ranking.red == [] and ranking.black == []

    ranking = rankings.rankings(leader, Query(MARCH), level="community", engine=db)
    assert len(ranking.rows) == 48 and ranking.ranked == 5
    assert [r.unit.code for r in ranking.rows[:5]] == [community(n) for n in (2, 3, 4, 1, 5)]

    ranking = rankings.rankings(leader, Query(MARCH), level="department", engine=db)
    police = next(r for r in ranking.rows if r.unit.code == POLICE)
    # Ranked on the work orders it led (2); response 1/2, resolution 1/1, satisfaction 0.9/1.
    assert (police.cases, police.rank, ranking.ranked) == (2, 1, 1)
    assert police.score == pytest.approx(0.1 * 0.5 + 0.5 * 1 + 0.4 * 0.9)
    assert len(ranking.rows) == 40  # 10 district departments and 5 in each of 6 streets

    # A street leader ranks its communities (and its departments), never streets.
    street = rankings.rankings(actor(db, "street_leader"), Query(MARCH), level="street", engine=db)
    assert street.level == "community" and len(street.rows) == 8


# ---------------------------------------------------------------- access


def _every_view(who, query: Query, db) -> list:
    """Each assessment read, as a call."""
    return [
        lambda: views.overview(who, query, db),
        lambda: views.satisfaction(who, query, db),
        lambda: views.closure(who, query, db),
        lambda: views.flow(who, query, db),
        lambda: views.where(who, query, engine=db),
        lambda: rankings.rankings(who, query, engine=db),
        lambda: monitoring.monitoring(who, query, db, now=at(20, 12)),
        lambda: report.monthly(who, query, db),
    ]


def test_only_readers_read_and_only_their_own_area(db):
    for username in ("grid01", "dept_police", "dept_fire", "street_approver", "admin", None):
        who = actor(db, username) if username else None
        for call in _every_view(who, Query(MARCH), db):
            with pytest.raises(PermissionDenied):
                call()
        with pytest.raises(PermissionDenied):
            rankings.glance(who, db)
        with pytest.raises(PermissionDenied):
            views.options(who, db)

    for username, code in (("street_leader", OTHER_STREET), ("street_leader", DISTRICT),
                           ("street_leader", ELSEWHERE), ("street_leader", POLICE),
                           ("community_leader", STREET), ("community01", STREET),
                           ("community01", NEIGHBOUR), ("district01", "510100")):
        for call in _every_view(actor(db, username), Query(MARCH, unit_id=unit_id(db, code)), db):
            with pytest.raises(PermissionDenied):
                call()

    # Readers in their area: an inspector at the district and below, leaders at their unit and
    # below, staff of a street at one of its communities.
    for username, code in (("inspector01", None), ("inspector01", OTHER_STREET),
                           ("district_leader", ELSEWHERE), ("city_leader", DISTRICT),
                           ("street01", NEIGHBOUR), ("community_leader", None)):
        who = actor(db, username)
        query = Query(MARCH, unit_id=unit_id(db, code) if code else None)
        for call in _every_view(who, query, db):
            result = call()
            assert getattr(result, "scope", None) or result.scope_unit
        assert views.overview(who, query, db).scope.code == (code or {
            "inspector01": DISTRICT, "community_leader": COMMUNITY}[username])


# ---------------------------------------------------------------- a month with nothing in it


def test_every_view_of_an_empty_month_says_no_data(db):
    closed_here(db, COMMUNITY, "fire", 2, "satisfied")  # something in March, nothing in January
    rollup.rebuild(db, now=at(31, 12))
    empty = Query("2026-01")
    for username in ("district_leader", "street_leader", "community_leader"):
        who = actor(db, username)
        o = views.overview(who, empty, db)
        assert all(o.values[k].value is None for k in [*figures.HEADLINE, "composite"]), username
        assert (o.values["reported"].value, o.quantiles.count, o.quantiles.median_hours) == (0, 0, None)
        assert all(c.reported == 0 for _, c in o.categories)
        assert {k: v.value for k, v in o.extra.items()} == {"reward_claims": 0.0,
                                                            "reward_awarded_yuan": 0.0}
        s = views.satisfaction(who, empty, db)
        assert s.values["satisfaction_rate"].value is None and s.unrated == 0 and s.reasons == []
        assert all(v["satisfaction_rate"].value is None for _, v, _ in s.by_unit)
        c = views.closure(who, empty, db)
        assert (c.quantiles.count, c.quantiles.median_hours, c.quantiles.p90_workdays) == (0, None, None)
        assert c.mean.value is None and c.on_time.value is None and c.by_tier == []
        assert all(n == 0 for _, n in c.histogram)
        assert all(g.on_time.value is None and g.quantiles.count == 0 for g in c.by_category)
        f = views.flow(who, empty, db)
        assert (f.links, f.cases) == ([], 0)
        w = views.where(who, empty, "satisfaction_rate", engine=db)
        assert all(v.value is None for v in w.values.values()) and w.cells == {} and w.points == []
        r = rankings.rankings(who, empty, engine=db)
        assert r.ranked == 0 and all(row.rank is None and row.score is None for row in r.rows)
        assert r.red == [] and r.black == []
        m = monitoring.monitoring(who, empty, db, now=at(15, 12, month=1))
        assert (m.overdue, m.spikes, m.repeats, m.parked) == ([], [], [], [])
        rankings.glance(who, db)  # this month: nothing either, and no error
        monthly = report.monthly(who, empty, db)
        assert all(monthly.values[k].value is None for k in [*figures.HEADLINE, "composite"])
        assert monthly.quantiles.median_hours is None
        for lang in ("zh", "en"):
            book = load_workbook(io.BytesIO(report.workbook(monthly, lang)))
            assert book.sheetnames[0] == t("kpi.report.sheet_summary", lang)


# ---------------------------------------------------------------- reasons


# Each note, and the group its first matching keyword puts it in (data/dissatisfaction_reasons.json).
REOPEN_NOTES = [
    ("还在堆着，没解决", "unresolved"),
    ("临时清了一下又出现了", "temporary"),
    ("等了两个星期，太慢", "slow"),
    ("没人联系我", "contact"),
    ("工作人员态度很差", "attitude"),
    ("做得很粗糙", "quality"),
    ("Nobody called me back", "contact"),
    ("It is STILL broken", "unresolved"),  # keywords match in any case
    ("还在漏，态度也差", "unresolved"),  # also 态度 (attitude): the first group wins
    ("我不满意", "other"),  # no keyword
]


def test_dissatisfaction_reasons_are_grouped_and_counted(db):
    who = staff(COMMUNITY)
    r1 = new_case(db, category="fire", address=address(), now=at(25, 9, month=2))
    r1 = steps(db, r1, [
        (who, "accept", at(25, 10, month=2), {}), (who, "take", at(25, 11, month=2), {}),
        (who, "handle", at(25, 12, month=2), {"note": "已清理"}),
        (who, "reopen", at(27, 10, month=2), {"note": "等太久了，太慢"}),  # February: not counted
        (who, "handle", at(2, 9), {"note": "已清理"})])
    clock = itertools.count()
    for note, _group in REOPEN_NOTES:
        r1 = steps(db, r1, [(who, "reopen", at(2, 10, minute=next(clock)), {"note": note}),
                            (who, "handle", at(2, 10, minute=next(clock)), {"note": "已清理"})])
    r1 = steps(db, r1, [
        (who, "rework", at(3, 9), {"note": "态度敷衍，返工"}),  # a rework is not a resident's reason
        (who, "handle", at(3, 10), {"note": "已清理"}), (who, "verify", at(3, 11), {}),
        (who, "feedback", at(3, 12), {"rating": "dissatisfied", "note": "处理太慢"}),  # slow
        (who, "reopen", at(3, 13), {"note": "还是没修好"}),  # unresolved
        (who, "handle", at(4, 9), {"note": "已修好"}), (who, "verify", at(4, 10), {}),
        (who, "feedback", at(4, 11), {"rating": "satisfied", "note": "态度很差"}),  # not 不满意
        (who, "close", at(4, 12), {})])
    # A dogs case in the same community, and a fire case in another street: one "没解决" each.
    for code, key in ((COMMUNITY, "dogs"), (ELSEWHERE, "fire")):
        case = new_case(db, community=code, category=key, address=address(), now=at(5, 9))
        steps(db, case, [(staff(code), "accept", at(5, 10), {}), (staff(code), "take", at(5, 11), {}),
                         (staff(code), "handle", at(5, 12), {"note": "已处理"}),
                         (staff(code), "reopen", at(5, 13), {"note": "没解决"})])
    assert [reasons.group_of(n) for n, _ in REOPEN_NOTES] == [g for _, g in REOPEN_NOTES]

    def counts(username: str, **query) -> list[tuple[str, int]]:
        found = views.satisfaction(actor(db, username), Query(**{"label": MARCH, **query}), db).reasons
        return [(g.key, g.count) for g in found]

    # Street 510104001 in March: unresolved — 3 of the notes above, 还是没修好, and the dogs
    # case = 5; contact 2; slow 2 (等了两个星期 and the 不满意 call-back); one each of
    # attitude, quality, temporary and other. Largest first, then by key, "other" last.
    street = [("unresolved", 5), ("contact", 2), ("slow", 2), ("attitude", 1), ("quality", 1),
              ("temporary", 1), ("other", 1)]
    assert counts("street_leader") == street
    assert counts("community_leader") == street  # all of it happened in community 001
    # Fire only: the dogs case's note is left out.
    assert counts("street_leader", category_id=category(db, "fire")) == \
        [("unresolved", 4), *street[1:]]
    # The district also has the other street's case.
    assert counts("district_leader") == [("unresolved", 6), *street[1:]]
    assert counts("street_leader", unit_id=unit_id(db, NEIGHBOUR)) == []
    assert counts("street_leader", label="2026-02") == [("slow", 1)]
    groups = views.satisfaction(actor(db, "street_leader"), Query(MARCH), db).reasons
    assert (groups[-1].name_zh, groups[-1].name_en) == ("其他", "Other")


# ---------------------------------------------------------------- monitoring


def test_monitoring_spikes_and_repeat_places(db):
    now = at(20, 12)  # this week: Sat 14 – Fri 20 March; the baseline the 8 weeks before
    for day, hour in ((16, 9), (16, 10), (17, 9), (17, 10), (18, 9), (18, 10)):
        new_case(db, category="dogs", address=address(), now=at(day, hour))
    new_case(db, category="dogs", address=address(), now=at(2, 9))  # the baseline: one report
    for day in (16, 17, 18, 19):
        new_case(db, community=NEIGHBOUR, category="dogs", address=address(), now=at(day, 9))
    # Community 003's gas: 5 this week, but 5 a week in the two weeks before too.
    for day in (2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 16, 17, 18, 19, 20):
        new_case(db, community=community(3), category="gas", address=address(), now=at(day, 9))
    # One place, one category, three reports in 90 days.
    for day in (1, 10, 15):
        new_case(db, category="fire", address="锦江大道9号", now=at(day, 11))
    # Three reports of a restricted category at one place: never listed.
    for day in (3, 4, 5):
        new_case(db, category="vice", address="锦江大道7号", now=at(day, 11))
    # Two reports in 90 days, and one 101 days before.
    for when in (at(9, 11, month=12).replace(year=2025), at(11, 11), at(12, 11)):
        new_case(db, category="fire", address="锦江大道11号", now=when)
    rollup.rebuild(db, now=now)
    leader = actor(db, "street_leader")
    # The candidates kept by the roll-up: each report made within 90 days after another at its
    # place; never a restricted category's address.
    with read_session(db) as s:
        places = sorted((p.day, p.address, p.cases) for p in s.exec(select(KpiPlace)).all())
    assert places == [("2026-03-10", "锦江大道9号", 1), ("2026-03-12", "锦江大道11号", 1),
                      ("2026-03-15", "锦江大道9号", 1)]

    m = monitoring.monitoring(leader, Query(), db, now=now)
    assert m.week == (date(2026, 3, 14), date(2026, 3, 20)) and m.spike_min == 5
    # Community 001's dogs: 6 this week against weekly counts 0,0,0,0,0,0,1,0 (mean 1/8,
    # population sd √(1/8 − 1/64)): 6 ≥ 5 and 6 > 0.125 + 2 × max(sd, 1). The neighbour's 4
    # are below the minimum of 5. Community 003's gas: weekly 0,0,0,0,0,0,5,5 (mean 1.25, sd
    # √(50/8 − 1.25²) ≈ 2.17): 5 is not above 1.25 + 2 × 2.17.
    assert [(s.community.code, s.category.key, s.this_week) for s in m.spikes] == [
        (COMMUNITY, "dogs", 6)]
    assert m.spikes[0].mean == pytest.approx(0.125)
    assert m.spikes[0].sd == pytest.approx((1 / 8 - 1 / 64) ** 0.5)
    assert [(r.community.code, r.category.key, r.address, r.reports) for r in m.repeats] == [
        (COMMUNITY, "fire", "锦江大道9号", 3)]
    assert m.repeats[0].last == at(15, 11)
    assert m.repeats[0].last.tzinfo is not None

    set_setting(db, "kpi.spike_min_cases", 4)
    set_setting(db, "kpi.repeat_place_min", 2)
    m = monitoring.monitoring(leader, Query(), db, now=now)
    # The neighbour's 4 now count (4 > 0 + 2 × 1); the larger rise first.
    assert [(s.community.code, s.this_week) for s in m.spikes] == [(COMMUNITY, 6), (NEIGHBOUR, 4)]
    # Two in 90 days now suffice for 锦江大道11号; the vice place stays out.
    assert sorted((r.address, r.reports) for r in m.repeats) == [("锦江大道11号", 2),
                                                                  ("锦江大道9号", 3)]
    assert all(not r.category.restricted for r in m.repeats)
    # A category filter applies to both lists.
    m = monitoring.monitoring(leader, Query(category_id=category(db, "fire")), db, now=now)
    assert m.spikes == [] and len(m.repeats) == 2
    m = monitoring.monitoring(leader, Query(category_id=category(db, "dogs")), db, now=now)
    assert len(m.spikes) == 2 and m.repeats == []
    # Another street sees none of it.
    m = monitoring.monitoring(actor(db, "district_leader"), Query(unit_id=unit_id(db, OTHER_STREET)),
                              db, now=now)
    assert m.spikes == [] and m.repeats == []


def test_long_parked_cases_appear_after_the_setting_s_days(db):
    who = staff(COMMUNITY)
    p1 = new_case(db, category="fire", address=address(), now=at(1, 9, month=2))
    p1 = steps(db, p1, [(who, "accept", at(1, 9, month=2, minute=30), {}),
                        (who, "park", at(1, 10, month=2), {"until": date(2026, 6, 30),
                                                           "note": "等待旧改"})])
    p2 = new_case(db, category="fire", address=address(), now=at(2, 9, month=2))
    steps(db, p2, [(who, "accept", at(2, 9, month=2, minute=30), {}),
                   (who, "park", at(2, 10, month=2), {"until": date(2026, 6, 30), "note": "等待"}),
                   (who, "resume", at(3, 10, month=2), {})])  # no longer parked
    p3 = new_case(db, category="dogs", address=address(), now=at(1, 9))
    p3 = steps(db, p3, [(who, "accept", at(1, 9, minute=30), {}),
                        (who, "park", at(1, 10), {"until": date(2026, 5, 29), "note": "等待"})])
    leader = actor(db, "street_leader")
    # Parked at 10:00 on 1 February; 30 days on is 10:00 on 3 March (February has 28 days).
    assert monitoring.monitoring(leader, Query(), db, now=at(3, 9)).parked == []
    m = monitoring.monitoring(leader, Query(), db, now=at(3, 11))
    assert [(p.case_id, p.days, p.since) for p in m.parked] == [(p1.id, 30, at(1, 10, month=2))]
    assert m.parked[0].review_at == datetime(2026, 6, 30, 17, 30, tzinfo=CHINA_TZ)
    assert m.parked_days == 30
    set_setting(db, "kpi.long_parked_days", 10)
    m = monitoring.monitoring(leader, Query(), db, now=at(20, 12))  # p3: 19 days
    assert [p.case_id for p in m.parked] == [p1.id, p3.id]  # longest parked first
    m = monitoring.monitoring(leader, Query(category_id=category(db, "dogs")), db, now=at(20, 12))
    assert [p.case_id for p in m.parked] == [p3.id]
    assert monitoring.monitoring(actor(db, "district_leader"), Query(unit_id=unit_id(db, OTHER_STREET)),
                                 db, now=at(20, 12)).parked == []


@pytest.fixture
def overdue(db):
    """At 12:00 on 20 March, after the tick's marking: in community 001 o1 (accepted 2 March
    10:00, answer due 3 March 10:00) and o2 (reported 2 March 9:00, sign-for due 3 March
    9:00) late at the community; o3 dispatched to the police on 2 March 12:00, signed for and
    started, handling due 11 March 12:00, late at the police; o4 handled (no deadline runs);
    o5 reported in another street, late there."""
    who = staff(COMMUNITY)
    o1 = new_case(db, category="fire", address=address(), now=at(2, 9))
    o1 = move(db, who, o1.id, "accept", now=at(2, 10))
    o2 = new_case(db, category="fire", address=address(), now=at(2, 9))
    o3 = steps(db, to_police(db, COMMUNITY, 2), [("dept_police", "acknowledge", at(2, 15), {}),
                                                ("dept_police", "start", at(2, 16), {})])
    o4 = new_case(db, category="dogs", address=address(), now=at(2, 9))
    steps(db, o4, [(who, "accept", at(2, 10), {}), (who, "take", at(2, 11), {}),
                   (who, "handle", at(3, 9), {"note": "已处理"})])
    new_case(db, community=ELSEWHERE, category="fire", address=address(), now=at(2, 9))
    with write_session(db) as s:
        assert mark_overdue(s, at(20, 12)) == 4
    return {"o1": o1, "o2": o2, "o3": o3}


def test_overdue_cases_are_counted_by_the_unit_holding_them(db, overdue):
    m = monitoring.monitoring(actor(db, "street_leader"), Query(), db, now=at(20, 12))
    # Most first; equal counts by code ("510104001-police" sorts before "510104002001").
    assert [(o.unit.code, o.cases) for o in m.overdue] == [(COMMUNITY, 2), (POLICE, 1)]
    # The police's handling deadline: the close of that working day (17:30 China time).
    assert m.overdue[1].oldest_due == at(11, 17, minute=30)
    m = monitoring.monitoring(actor(db, "district_leader"), Query(), db, now=at(20, 12))
    assert [(o.unit.code, o.cases) for o in m.overdue] == [(COMMUNITY, 2), (POLICE, 1),
                                                            (ELSEWHERE, 1)]
    m = monitoring.monitoring(actor(db, "street_leader"),
                              Query(category_id=category(db, "residential_security")), db,
                              now=at(20, 12))
    assert [(o.unit.code, o.cases) for o in m.overdue] == [(POLICE, 1)]


def test_the_oldest_deadline_of_a_unit_s_overdue_cases_is_the_one_they_missed(db, overdue):
    # BUG: monitoring.monitoring takes min(Case.handle_due_at) as a unit's oldest deadline, but
    # a case late to be accepted or signed for missed its sign_due_at and has no handling
    # deadline (or a later one): community 001's two late cases show no deadline at all. The
    # oldest missed deadline is o2's sign-for deadline, the close of 3 March.
    m = monitoring.monitoring(actor(db, "street_leader"), Query(), db, now=at(20, 12))
    assert m.overdue[0].unit.code == COMMUNITY
    assert m.overdue[0].oldest_due == at(3, 17, minute=30)


# ---------------------------------------------------------------- tier flow


def test_the_flow_follows_every_case_reported_in_the_month(db):
    who = staff(COMMUNITY)
    # F1 closed by the community.
    closed_here(db, COMMUNITY, "fire", 2, "satisfied")
    # F2 called up to the street, which handles it itself; the community checks and closes it.
    f2 = new_case(db, category="fire", address=address(), now=at(3, 9))
    steps(db, f2, [(who, "accept", at(3, 10), {}), (who, "call_up", at(3, 11), {"note": "请街道协调"}),
                   ("street01", "take", at(3, 12), {}),
                   ("street01", "handle", at(4, 9), {"note": "街道已处理"}),
                   (who, "verify", at(4, 10), {}), (who, "close", at(4, 11), {})])
    # F3 rejected; F4 left open; F5 merged into F4; F6 found by an inspector, open.
    f3 = new_case(db, category="fire", address=address(), now=at(5, 9))
    move(db, who, f3.id, "reject", now=at(5, 10), note="不属实")
    f4 = new_case(db, category="dogs", address=address(), now=at(6, 9))
    f5 = new_case(db, category="dogs", address=address(), now=at(6, 10))
    move(db, who, f5.id, "merge", now=at(6, 11), merge_into=f4.code)
    with write_session(db) as s:
        create_case(s, Report(category_id=s.exec(
            select(Category.id).where(Category.key == "fire")).one(),
                              subcategory_id=None, description="暗访发现消防通道堵塞", address=address(),
                              community_id=find_unit(s, NEIGHBOUR).id, source=Source.inspection),
                    actor=auth.actor_by_username(s, "inspector01"), now=at(9, 11))
    # Not in the month, or not in the street.
    new_case(db, category="fire", address=address(), now=at(28, 20, month=2))
    new_case(db, community=ELSEWHERE, category="fire", address=address(), now=at(9, 9))
    rollup.rebuild(db, now=at(31, 12))

    flow = views.flow(actor(db, "street_leader"), Query(MARCH), db)
    links = {(a, b): n for a, b, n in flow.links}
    assert links == {
        ("source:resident", "reached:community"): 4,  # F1 F3 F4 F5
        ("source:resident", "reached:street"): 1,  # F2
        ("source:inspection", "reached:community"): 1,  # F6
        ("reached:community", "closed:community"): 1,
        ("reached:community", "outcome:open"): 2,  # F4 F6
        ("reached:community", "outcome:rejected"): 1,
        ("reached:community", "outcome:merged"): 1,
        ("reached:street", "closed:street"): 1,
    }
    assert flow.cases == 6
    # Every case leaves its source once and arrives at one outcome.
    assert sum(n for (a, _), n in links.items() if a.startswith("source:")) == flow.cases
    assert sum(n for (a, _), n in links.items() if a.startswith("reached:")) == flow.cases
    assert len(flow.links) == len(links)  # no pair twice
    assert flow.links[0][0].startswith("source:resident")  # sources first

    # Community 001: all but F6 (reported in the neighbour community).
    own = views.flow(actor(db, "community_leader"), Query(MARCH), db)
    assert own.cases == 5 and ("source:inspection", "reached:community") not in {
        (a, b) for a, b, _ in own.links}
    dogs = views.flow(actor(db, "street_leader"), Query(MARCH, category_id=category(db, "dogs")), db)
    assert {(a, b): n for a, b, n in dogs.links} == {
        ("source:resident", "reached:community"): 2, ("reached:community", "outcome:open"): 1,
        ("reached:community", "outcome:merged"): 1}


# ---------------------------------------------------------------- the monthly workbook


EVIL_ZH = '=HYPERLINK("https://example.com/x","点这里")'
EVIL_EN = "+cmd|' /C calc'!A0"


def test_the_monthly_workbook_holds_values_only(db, month):
    set_setting(db, "kpi.min_cases_to_rank", 2)
    with write_session(db) as s:
        unit = find_unit(s, community(2))
        unit.name_zh, unit.name_en = EVIL_ZH, EVIL_EN
        s.add(unit)
    monthly = report.monthly(actor(db, "district_leader"), Query(MARCH), db)
    assert [r.level for r in monthly.rankings] == ["street", "community", "department"]
    for lang, evil in (("zh", EVIL_ZH), ("en", EVIL_EN)):
        book = load_workbook(io.BytesIO(report.workbook(monthly, lang)))
        levels = [t(f"kpi.level.{level}", lang) for level in ("street", "community", "department")]
        assert book.sheetnames == [
            t("kpi.report.sheet_summary", lang), t("kpi.months.sheet_adjustments", lang),
            t("kpi.report.sheet_lists", lang),
            *(t("kpi.report.sheet_ranking", lang, level=level) for level in levels),
            t("kpi.report.sheet_categories", lang)]
        texts = []
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (sheet.title, cell.coordinate)
                    if isinstance(cell.value, str):
                        assert not cell.value.startswith(("=", "+", "-", "@")), cell.value
                        texts.append(cell.value)
        assert "'" + evil in texts and evil not in texts
        ranking = book.worksheets[4]  # communities
        # The first row: community 002, rank 1, composite 100.0 (per cent); c1 4th with 96.3.
        assert [ranking.cell(2, n).value for n in (1, 2, 3)] == [1, "'" + evil, 100.0]
        assert [ranking.cell(5, n).value for n in (1, 2, 3)] == [4, t_name(db, 1, lang), 96.3]
        # One native bar chart on each ranking sheet and on the category sheet.
        assert [len(sheet._charts) for sheet in book.worksheets] == [0, 0, 0, 1, 1, 1, 1]
        summary = book.worksheets[0]
        assert summary.cell(1, 1).value == t("kpi.report.title", lang, unit=t_name(db, 0, lang),
                                             period=MARCH)


def t_name(db, n: int, lang: str) -> str:
    """Community n's name in ``lang`` (0: the district)."""
    with read_session(db) as s:
        unit = find_unit(s, community(n) if n else DISTRICT)
        return unit.name_en if lang == "en" else unit.name_zh


# ---------------------------------------------------------------- reward figures


def _claim(db, case: Case, state: str, fen: int, when: datetime) -> None:
    """A claim row made and decided at ``when`` with the moves the figures read."""
    C = ClaimState
    with write_session(db) as s:
        row = s.get(Case, case.id)
        claim = RewardClaim(case_id=row.id, reporter_key=row.reporter_phone,
                            reporter_phone=row.reporter_phone, community_id=row.community_id,
                            street_id=row.street_id, district_id=row.district_id,
                            category_id=row.category_id, amount_fen=fen, state=state,
                            created_at=when, updated_at=when)
        s.add(claim)
        s.flush()
        moves = [(ClaimAct.claim, C.eligible, C.pending)]
        if state in (C.approved_once, C.approved, C.paid):
            moves.append((ClaimAct.approve, C.pending, C.approved_once if state == C.approved_once
                          else C.approved))
        if state == C.paid:
            moves.append((ClaimAct.pay, C.approved, C.paid))
        if state == C.rejected:
            moves.append((ClaimAct.reject, C.pending, C.rejected))
        for seq, (action, before, after) in enumerate(moves, start=1):
            s.add(RewardEvent(claim_id=claim.id, seq=seq, action=action, at=when,
                              from_state=before, to_state=after))


def test_reward_figures_stand_beside_the_case_figures(db):
    claims = [  # (community, category, state, fen, made and decided): awarded = approved, paid
        # (approved in full: a large claim with one of its two approvals is not awarded)
        (community(1), "fire", ClaimState.paid, 5000, at(3)),
        (community(1), "dogs", ClaimState.pending, 3000, at(4)),
        (community(2), "fire", ClaimState.approved, 2000, at(5)),
        (community(2), "fire", ClaimState.rejected, 1000, at(6)),
        (community(3), "fire", ClaimState.approved_once, 1500, at(31, 23)),
        (ELSEWHERE, "fire", ClaimState.approved, 10000, at(7)),
        (community(1), "fire", ClaimState.paid, 4000, at(28, 23, month=2)),  # February
        (community(1), "fire", ClaimState.paid, 700, at(1, 0, month=4)),  # April
    ]
    for code, key, state, fen, when in claims:
        case = new_case(db, community=code, category=key, address=address(), now=when - timedelta(days=1))
        _claim(db, case, state, fen, when)

    def extra(username: str, **query) -> dict[str, float]:
        found = views.overview(actor(db, username), Query(MARCH, **query), db)
        return {k: v.value for k, v in found.extra.items()}

    # District, March: six claims; awarded 50 + 20 + 100 = 170 yuan.
    assert extra("district_leader") == {"reward_claims": 6, "reward_awarded_yuan": 170.0}
    before = views.overview(actor(db, "district_leader"), Query(MARCH), db).extra_before
    assert {k: v.value for k, v in before.items()} == {"reward_claims": 1,
                                                       "reward_awarded_yuan": 40.0}
    # Street 510104001: five; 50 + 20 = 70 yuan. Fire only: four, the same 70.
    assert extra("street_leader") == {"reward_claims": 5, "reward_awarded_yuan": 70.0}
    assert extra("street_leader", category_id=category(db, "fire")) == {
        "reward_claims": 4, "reward_awarded_yuan": 70.0}
    assert extra("community_leader") == {"reward_claims": 2, "reward_awarded_yuan": 50.0}

    ranking = rankings.rankings(actor(db, "street_leader"), Query(MARCH), engine=db)
    per_unit = {r.unit.code: (r.extra["reward_claims"].value, r.extra["reward_awarded_yuan"].value)
                for r in ranking.rows}
    assert per_unit == {community(1): (2, 50.0), community(2): (2, 20.0), community(3): (1, 0.0),
                        **{community(n): (0, 0.0) for n in range(4, 9)}}
    ranking = rankings.rankings(actor(db, "district_leader"), Query(MARCH), engine=db)
    per_street = {r.unit.code: r.extra["reward_claims"].value for r in ranking.rows
                  if r.extra["reward_claims"].value}
    assert per_street == {STREET: 5, OTHER_STREET: 1}
    ranking = rankings.rankings(actor(db, "street_leader"), Query(MARCH), level="department",
                                engine=db)
    assert all(r.extra == {} for r in ranking.rows)  # departments hold no claims


def test_the_overdue_tile_the_ledger_and_monitoring_count_the_same_cases(db, overdue):
    """超期 is one set of cases wherever it is shown: the home tile, the ledger it opens and
    monitoring's overdue now (the assessment's work-order rate has a name of its own)."""
    for username in ("street_leader", "district_leader"):
        who = actor(db, username)
        with read_session(db) as s:
            tiles = dict(waiting_counts(s, who, now=at(20, 12)))
            listed = ledger.count(s, who, ledger.LedgerFilters(status="overdue"))
            everything = ledger.count(s, who, ledger.LedgerFilters())
        shown = sum(o.cases for o in monitoring.monitoring(who, Query(), db, now=at(20, 12)).overdue)
        assert tiles["home.overdue_in_scope"] == listed == shown, username
        assert everything > listed  # the filter filters: o4 (handled) is in the ledger, not late
    rows, total = ledger.page(actor(db, "street_leader"), ledger.LedgerFilters(status="overdue"),
                              offset=0, limit=50, engine=db, lang_name=lambda row: row.name_zh,
                              label=lambda key: t(key))
    assert {r["id"] for r in rows} == {overdue[k].id for k in ("o1", "o2", "o3")} and total == 3


# ---------------------------------------------------------------- the period pages open on


@pytest.mark.parametrize("today,start_day,expected", [
    (date(2026, 12, 3), 1, "2026-11"),    # the day: November, not three days of December
    (date(2026, 12, 31), 1, "2026-11"),   # the last day of a month is not a complete month yet
    (date(2027, 1, 1), 1, "2026-12"),
    (date(2026, 3, 1), 1, "2026-02"),
    (date(2026, 12, 3), 19, "2026-11"),   # 19 Nov – 18 Dec is "2026-12", under way
    (date(2026, 12, 18), 19, "2026-11"),
    (date(2026, 12, 19), 19, "2026-12"),  # 19 Nov – 18 Dec ended yesterday
])
def test_pages_open_on_the_last_complete_assessment_month(today, start_day, expected):
    period = figures.default_period(start_day, today)
    assert period.label == expected
    assert period.end < today and not figures.is_partial(period, today)
    assert figures.is_partial(figures.month_period(today, start_day), today)


def test_views_default_to_the_last_complete_month(db, monkeypatch):
    monkeypatch.setattr("lib.kpi.periods.today", lambda: date(2026, 12, 3))
    monkeypatch.setattr("lib.kpi.figures.today", lambda: date(2026, 12, 3))
    leader = actor(db, "district_leader")
    assert views.overview(leader, Query(), db).period.label == "2026-11"
    assert rankings.glance(leader, db).period.label == "2026-11"
    options = views.options(leader, db)
    assert (options.default, options.current) == ("2026-11", "2026-12")
    assert options.periods[0].label == "2026-12"  # the month under way can still be chosen


def test_an_address_is_checked_and_each_bad_value_falls_back_with_a_message(db, monkeypatch):
    monkeypatch.setattr("lib.kpi.periods.today", lambda: date(2026, 12, 3))
    monkeypatch.setattr("lib.kpi.figures.today", lambda: date(2026, 12, 3))
    leader = actor(db, "street_leader")
    options = views.options(leader, db)
    fire = category(db, "fire")
    good = views.from_address(options, {"period": "2026-10", "unit": COMMUNITY, "category": "fire"})
    assert good.query == Query(label="2026-10", unit_id=unit_id(db, COMMUNITY), category_id=fire)
    assert good.params == {"period": "2026-10", "unit": COMMUNITY, "category": "fire"}
    assert good.problems == []
    assert views.address_of(options, good.query) == good.params
    own = views.from_address(options, {"unit": STREET})  # the reader's own unit: no parameter
    assert own.query.unit_id == unit_id(db, STREET) and own.params == {"period": "2026-11"}
    for params, problem in (({"period": "2026-13"}, "kpi.nav.bad_period"),
                            ({"period": "1999-01"}, "kpi.nav.bad_period"),
                            ({"period": "<script>"}, "kpi.nav.bad_period"),
                            ({"unit": ELSEWHERE}, "kpi.nav.bad_unit"),  # another street's
                            ({"unit": DISTRICT}, "kpi.nav.bad_unit"),  # above the reader
                            ({"unit": "9" * 40}, "kpi.nav.bad_unit"),
                            ({"category": "nope"}, "kpi.nav.bad_category")):
        found = views.from_address(options, params)
        assert found.problems == [problem], params
        assert found.query == Query(label="2026-11"), params
        assert found.params == {"period": "2026-11"}, params
