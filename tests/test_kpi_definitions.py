"""The assessment's definitions a unit cannot game, on both databases: resolution against the
first commitment (no move takes a missed deadline out of the base), one base for on time and
closed late, the call-back rate, repeats by normalised address or distance (and a reopen
refreshing the repeats it caused), the ranking's tie rule, a unit without ratings, units of one
name, and a month under way compared with the same days of the month before.

Where a column is the case machine's to fill (``committed_due_at``, ``resolved_at``,
``place_key``, the map point), ``_as_machine`` sets it as the machine sets it, and only when it
is still empty."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import select

from lib.cases.models import Case
from lib.cases.places import distance_m, place_key
from lib.cases.states import Act
from lib.core import refcache
from lib.core.db import read_session, write_session
from lib.core.models import Setting
from lib.core.workcal import CHINA_TZ
from lib.kpi import figures, rankings, rollup, views
from lib.kpi.models import KpiRefresh, KpiUnitDay
from lib.kpi.views import Query
from lib.org.models import Unit
from lib.org.units import find_unit
from tests.factories import POLICE, actor, app, move, new_case, unit_id

DISTRICT = "510104"
STREET = "510104001"
OTHER_STREET = "510104002"


def at(day: int, hour: int = 9, month: int = 3, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=CHINA_TZ)


def _as_machine(db, case_id: int, **columns) -> None:
    """Set columns the case machine fills (first commitment, resolution time, place) where it
    has not filled them yet."""
    with write_session(db) as s:
        case = s.get(Case, case_id)
        for name, value in columns.items():
            if name in ("committed_due_at", "place_key") and getattr(case, name) is not None:
                continue
            setattr(case, name, value)
        s.add(case)


def _commit(db, case_id: int) -> datetime:
    """The first commitment, as taking on or dispatching the work sets it: its handling
    deadline."""
    with read_session(db) as s:
        due = s.get(Case, case_id).handle_due_at
    _as_machine(db, case_id, committed_due_at=due)
    with read_session(db) as s:
        return s.get(Case, case_id).committed_due_at


def _counters(db, first: date, last: date | None = None, scope: str = DISTRICT):
    with read_session(db) as s:
        return figures.totals(s, find_unit(s, scope), first, last or first)[None]


def _day(moment: datetime) -> date:
    return moment.astimezone(CHINA_TZ).date()


def _recount(db, first: date, last: date | None = None) -> None:
    """Recompute the roll-ups of these days from the cases (what a refresh or a rebuild does
    for each day)."""
    days = [(first + timedelta(days=n)).isoformat()
            for n in range(((last or first) - first).days + 1)]
    rollup.replace_days(db, days, at(1, 12, month=5))


def _taken(db, reported: datetime, **fields) -> Case:
    case = new_case(db, now=reported, **fields)
    move(db, "community01", case.id, "accept", now=reported + timedelta(minutes=10))
    return move(db, "community01", case.id, "take", now=reported + timedelta(minutes=20))


def _closed(db, reported: datetime, closed: datetime, *, answer: str | None = "satisfied",
            **fields) -> Case:
    """Taken on by the community, handled, verified (resolved), called back with ``answer``
    (None: no call-back) and closed at ``closed``."""
    case = _taken(db, reported, **fields)
    _commit(db, case.id)
    move(db, "community01", case.id, "handle", now=closed - timedelta(hours=3), note="已整改")
    move(db, "community01", case.id, "verify", now=closed - timedelta(hours=2))
    _as_machine(db, case.id, resolved_at=closed - timedelta(hours=2))
    if answer is not None:
        move(db, "community01", case.id, "feedback", now=closed - timedelta(hours=1),
             rating=answer)
    return move(db, "community01", case.id, "close", now=closed)


# ---------------------------------------------------------------- resolution


def _call_up(db, case):
    move(db, "community01", case.id, "call_up", now=at(4), note="请街道协调")


def _give_back(db, case):
    move(db, "dept_police", case.id, Act.give_back.value, now=at(3), note="不属于本单位职责")


def _hand_back(db, case):
    move(db, "community01", case.id, "call_up", now=at(4), note="请街道协调")
    move(db, "street01", case.id, "hand_back", now=at(5), note="请社区继续办理")


def _park(db, case):
    move(db, "community01", case.id, "park", now=at(4), until=date(2026, 3, 24), note="等待施工")


def _reopen(db, case):
    move(db, "community01", case.id, "handle", now=at(4), note="已整改")
    move(db, "community01", case.id, "verify", now=at(4, 10))
    _as_machine(db, case.id, resolved_at=at(4, 10))
    move(db, "community01", case.id, "reopen", now=at(5), note="居民说问题还在")
    _as_machine(db, case.id, resolved_at=None)  # a reopen clears it


def _late_extension(db, case):
    with read_session(db) as s:
        due = s.get(Case, case.id).committed_due_at
    after = due + timedelta(days=1)  # the deadline has passed: the commitment stays
    until = _day(due) + timedelta(days=20)
    move(db, "community01", case.id, "extend", now=after, until=until, note="材料未到")


GAMING = {"call_up": _call_up, "return": _give_back, "hand_back": _hand_back, "park": _park,
          "reopen": _reopen, "late_extension": _late_extension}


@pytest.mark.parametrize("path", sorted(GAMING))
def test_no_move_takes_a_missed_first_commitment_out_of_the_resolution_base(db, path):
    if path == "return":  # a work order to the police, dispatched by the street
        case = new_case(db, category="residential_security", now=at(2))
        move(db, "community01", case.id, "accept", now=at(2, 10))
        move(db, "community01", case.id, "call_up", now=at(2, 11), note="请街道协调")
        case = move(db, "street01", case.id, "dispatch", now=at(2, 12),
                    lead_unit_id=unit_id(db, POLICE))
    else:
        case = _taken(db, at(2))
    committed = _commit(db, case.id)
    _recount(db, _day(committed))
    before = _counters(db, _day(committed))
    assert (before.due, before.resolved, before.resolved_late) == (1, 0, 0)
    GAMING[path](db, case)
    _recount(db, _day(committed))
    after = _counters(db, _day(committed))
    assert (after.due, after.resolved) == (1, 0), path
    with read_session(db) as s:
        assert s.get(Case, case.id).committed_due_at == committed, path
    with read_session(db) as s:
        value = figures.evaluate(after, figures.weights(s))["resolution_rate"]
    assert (value.numerator, value.denominator, value.value) == (0, 1, 0.0)


def test_resolved_after_the_first_commitment_is_resolved_late_not_resolved(db):
    on_time = _closed(db, at(2), at(3))
    late = _taken(db, at(2, 10))
    committed = _commit(db, late.id)
    with write_session(db) as s:  # both due the same day
        s.exec(text('UPDATE "case" SET committed_due_at = :due WHERE id = :id'),
               params={"due": committed, "id": on_time.id})
    for action, params in (("handle", {"note": "已整改"}), ("verify", {})):
        move(db, "community01", late.id, action, now=committed + timedelta(hours=2), **params)
    _as_machine(db, late.id, resolved_at=committed + timedelta(hours=2))
    _recount(db, _day(committed))
    c = _counters(db, _day(committed))
    assert (c.due, c.resolved, c.resolved_late) == (2, 1, 1)
    with read_session(db) as s:
        v = figures.evaluate(c, figures.weights(s))
    assert v["resolution_rate"].value == pytest.approx(0.5)
    assert v["resolved_late_rate"].value == pytest.approx(0.5)


# ---------------------------------------------------------------- on time, overdue, call-back


def test_on_time_and_overdue_share_one_base_and_make_100_percent(db):
    _closed(db, at(2), at(3))  # closed well before its commitment
    _closed(db, at(2, 10), at(3, 10))
    late = _closed(db, at(2, 11), at(4, 11))
    with write_session(db) as s:  # its commitment had run out a day before it closed
        s.exec(text('UPDATE "case" SET committed_due_at = :due WHERE id = :id'),
               params={"due": at(3, 11), "id": late.id})
    none = _closed(db, at(2, 12), at(4, 12))
    with write_session(db) as s:  # never committed to (closed without a deadline)
        s.exec(text('UPDATE "case" SET committed_due_at = NULL WHERE id = :id'),
               params={"id": none.id})
    _recount(db, date(2026, 3, 3), date(2026, 3, 4))
    c = _counters(db, date(2026, 3, 1), date(2026, 3, 31))
    assert (c.closed, c.closed_on_time, c.closed_late) == (4, 3, 1)
    with read_session(db) as s:
        v = figures.evaluate(c, figures.weights(s))
    on_time, overdue = v["on_time_rate"], v["overdue_rate"]
    assert on_time.denominator == overdue.denominator == c.closed == 4
    assert on_time.value + overdue.value == pytest.approx(1.0)
    assert (on_time.value, overdue.value) == (pytest.approx(0.75), pytest.approx(0.25))
    assert figures.base_of("overdue_rate", v) == ("kpi.base.closed", {"count": "4"})


def test_a_close_without_a_call_back_counts_against_the_call_back_rate(db):
    _closed(db, at(2), at(3), answer="satisfied")
    _closed(db, at(2, 10), at(3, 10), answer="unreachable")  # an attempt: counts
    _closed(db, at(2, 11), at(3, 11), answer=None)  # closed without a call-back
    _recount(db, date(2026, 3, 3), date(2026, 3, 4))
    c = _counters(db, date(2026, 3, 1), date(2026, 3, 31))
    assert (c.closed, c.called_back, c.rated) == (3, 2, 1)
    with read_session(db) as s:
        v = figures.evaluate(c, figures.weights(s))
    assert (v["callback_rate"].numerator, v["callback_rate"].denominator) == (2, 3)
    assert (v["rated_share"].numerator, v["rated_share"].denominator) == (1, 3)
    assert v["satisfaction_rate"].value == 1.0  # beside it, its base says 1 of 3
    said, params = figures.base_of("satisfaction_rate", v)
    assert said == "kpi.base.rated_closed" and params == {"rated": "1", "closed": "3",
                                                          "called": "2"}


# ---------------------------------------------------------------- repeats

LAT, LON = 30.6570, 104.0810  # 红星路 in 锦江区


def _placed(db, case_id: int, address: str, point: tuple[float, float] | None) -> None:
    """The place as intake records it: the normalised address and the map point."""
    _as_machine(db, case_id, place_key=place_key(address))
    if point is not None:
        _as_machine(db, case_id, latitude=point[0], longitude=point[1])


def _north(metres: float) -> tuple[float, float]:
    return LAT + metres / 111_195.0, LON


def test_a_report_within_the_set_distance_of_a_closed_case_is_a_repeat_whatever_its_text(db):
    assert distance_m(LAT, LON, *_north(30)) == pytest.approx(30, abs=0.5)
    first = _closed(db, at(2), at(3), address="红星路12号东门")
    _placed(db, first.id, "红星路12号东门", (LAT, LON))
    near = new_case(db, now=at(10), address="红星路十二号旁边的楼道")
    _placed(db, near.id, "红星路十二号旁边的楼道", _north(30))
    far = new_case(db, now=at(11), address="红星路十六号")
    _placed(db, far.id, "红星路十六号", _north(200))
    unlocated = new_case(db, now=at(12), address="红星路12号北门")
    _placed(db, unlocated.id, "红星路12号北门", None)
    _recount(db, date(2026, 3, 10), date(2026, 3, 12))
    assert _counters(db, date(2026, 3, 10)).repeat == 1  # 30 m away: the same place
    assert _counters(db, date(2026, 3, 11)).repeat == 0  # 200 m away: another place
    assert _counters(db, date(2026, 3, 12)).repeat == 0  # no point, another address
    with write_session(db) as s:  # the distance is a setting
        s.get(Setting, "kpi.repeat_distance_m").value = "250"
    refcache.clear()
    _recount(db, date(2026, 3, 11))
    assert _counters(db, date(2026, 3, 11)).repeat == 1


def test_a_report_at_the_same_normalised_address_is_a_repeat(db):
    first = _closed(db, at(2), at(3), address="红星路 1 号（东门）")
    _placed(db, first.id, "红星路 1 号（东门）", None)
    again = new_case(db, now=at(10), address="红星路１号东门")
    _placed(db, again.id, "红星路１号东门", None)
    other = new_case(db, now=at(11), address="红星路2号东门")
    _placed(db, other.id, "红星路2号东门", None)
    elsewhere = new_case(db, now=at(12), address="红星路 1 号（东门）", category="gas")
    _placed(db, elsewhere.id, "红星路 1 号（东门）", None)
    _recount(db, date(2026, 3, 10), date(2026, 3, 12))
    assert place_key("红星路 1 号（东门）") == place_key("红星路１号东门")
    assert _counters(db, date(2026, 3, 10)).repeat == 1
    assert _counters(db, date(2026, 3, 11)).repeat == 0  # another number
    assert _counters(db, date(2026, 3, 12)).repeat == 0  # another category


def test_a_reopen_refreshes_the_repeat_it_caused_without_a_rebuild(db):
    """The issue's example: a case closed on 3 March, a report at its place on 10 March is a
    repeat; the first case is reopened on 20 March — after the next refresh the report of
    10 March is no longer a repeat (its day is recomputed, not left until a full rebuild); and
    when the case is closed again on 25 March, that later closure does not make the earlier
    report a repeat again."""
    first = _closed(db, at(2), at(3), address="红星路5号")
    _placed(db, first.id, "红星路5号", (LAT, LON))
    later = new_case(db, now=at(10), address="红星路5号")
    _placed(db, later.id, "红星路5号", (LAT, LON))
    rollup.rebuild(db, now=at(15))
    assert _counters(db, date(2026, 3, 10)).repeat == 1
    move(db, "community01", first.id, "reopen", now=at(20), note="居民说又堆上了")
    rollup.refresh(db, now=at(20, 10))
    assert _counters(db, date(2026, 3, 10)).repeat == 0
    for action, params in (("handle", {"note": "已整改"}), ("verify", {}), ("close", {})):
        move(db, "community01", first.id, action, now=at(25), **params)
    rollup.refresh(db, now=at(25, 10))
    assert _counters(db, date(2026, 3, 10)).repeat == 0
    # And a report after the new closure is a repeat of it, refreshed the same way.
    third = new_case(db, now=at(26), address="红星路5号")
    _placed(db, third.id, "红星路5号", (LAT, LON))
    rollup.refresh(db, now=at(26, 10))
    assert _counters(db, date(2026, 3, 26)).repeat == 1
    rollup.rebuild(db, now=at(27))
    assert (_counters(db, date(2026, 3, 10)).repeat, _counters(db, date(2026, 3, 26)).repeat) \
        == (0, 1)


# ---------------------------------------------------------------- rankings

MONTH = "2026-03"


def _street_communities(db, street: str = STREET) -> list[Unit]:
    with read_session(db) as s:
        parent = find_unit(s, street)
        return list(s.exec(select(Unit).where(Unit.parent_id == parent.id,
                                              Unit.kind == "community").order_by(Unit.code)))


def _roll(db, unit: Unit, day: str = "2026-03-10", **counters) -> None:
    """A unit's roll-up for a day, as the refresh writes it."""
    with write_session(db) as s:
        s.add(KpiUnitDay(day=day, unit_id=unit.id, **counters))
        if s.get(KpiRefresh, 1) is None:  # fresh: a page does not rebuild them away
            s.add(KpiRefresh(id=1, until=datetime.now(CHINA_TZ) + timedelta(days=1)))


def _profile(resolution: float, response: float, satisfied: int, rated: int, cases: int) -> dict:
    return {"due": 10, "resolved": round(resolution * 10), "waits": 10,
            "responded": round(response * 10), "rated": rated, "satisfied": satisfied,
            "closed": rated, "called_back": rated, "reported": cases}


def test_ties_are_broken_by_resolution_then_volume_then_shared(db):
    a, b, c, d, e = _street_communities(db)[:5]
    # A and B..D score 75.0: A by resolution 100 %, B C D by 80 %; C has more cases than B and
    # D, which are equal on all three and share a rank. E scores lower.
    _roll(db, a, **_profile(1.0, 0.5, 4, 8, 10))  # 0.05 + 0.5 + 0.2
    _roll(db, b, **_profile(0.8, 1.0, 5, 8, 10))  # 0.1 + 0.4 + 0.25
    _roll(db, c, **_profile(0.8, 1.0, 5, 8, 12))
    _roll(db, d, **_profile(0.8, 1.0, 5, 8, 10))
    _roll(db, e, **_profile(0.5, 0.5, 4, 8, 20))
    ranking = rankings.rankings(actor(db, "street_leader"), Query(label=MONTH), "community",
                                engine=db)
    by_id = {r.unit.id: r for r in ranking.rows}
    assert [by_id[u.id].score for u in (a, b, c, d)] == [pytest.approx(0.75)] * 4
    assert [by_id[u.id].rank for u in (a, c, b, d, e)] == [1, 2, 3, 3, 5]
    assert rankings.TIE_RULE == ("composite", "resolution_rate", "cases")
    assert [r.unit.id for r in ranking.red] == [a.id, c.id]
    assert [r.unit.id for r in ranking.black] == [e.id, d.id]


def test_a_unit_without_ratings_has_no_satisfaction_and_its_weight_is_spread(db):
    a, b = _street_communities(db)[:2]
    _roll(db, a, **_profile(0.8, 0.5, 0, 0, 10))  # closed cases, none rated
    _roll(db, b, **_profile(0.8, 0.5, 8, 8, 10))
    ranking = rankings.rankings(actor(db, "street_leader"), Query(label=MONTH), "community",
                                engine=db)
    by_id = {r.unit.id: r for r in ranking.rows}
    unrated, rated = by_id[a.id], by_id[b.id]
    assert unrated.values["satisfaction_rate"].value is None
    assert unrated.weights == {"response_rate": pytest.approx(0.1 / 0.6),
                               "resolution_rate": pytest.approx(0.5 / 0.6)}
    assert unrated.score == pytest.approx((0.1 * 0.5 + 0.5 * 0.8) / 0.6)
    assert rated.weights == {"response_rate": pytest.approx(0.1),
                             "resolution_rate": pytest.approx(0.5),
                             "satisfaction_rate": pytest.approx(0.4)}
    assert sum(unrated.weights.values()) == pytest.approx(1.0)


def test_units_of_one_name_carry_their_parent_s_name_in_rankings_and_lists(db):
    here = _street_communities(db)[0]
    there = _street_communities(db, OTHER_STREET)[0]
    with write_session(db) as s:
        for unit in (here, there):
            s.get(Unit, unit.id).name_zh = "和平社区"
        street = find_unit(s, STREET).name_zh
        other = find_unit(s, OTHER_STREET).name_zh
    others = _street_communities(db)[1:4]
    _roll(db, here, **_profile(1.0, 1.0, 8, 8, 10))
    _roll(db, there, **_profile(0.1, 0.1, 1, 8, 10))
    for unit in others:
        _roll(db, unit, **_profile(0.6, 0.6, 5, 8, 10))
    ranking = rankings.rankings(actor(db, "district_leader"), Query(label=MONTH), "community",
                                engine=db)
    names = {r.unit.id: r.unit.name_zh for r in ranking.rows}
    assert names[here.id] == f"和平社区（{street}）"
    assert names[there.id] == f"和平社区（{other}）"
    assert names[others[0].id] == others[0].name_zh  # a name of its own stays as it is
    assert ranking.red[0].unit.name_zh == f"和平社区（{street}）"
    assert ranking.black[0].unit.name_zh == f"和平社区（{other}）"
    with read_session(db) as s:  # the stored unit is unchanged
        assert s.get(Unit, here.id).name_zh == "和平社区"


# ---------------------------------------------------------------- a month under way


def test_a_month_under_way_is_compared_with_the_same_days_of_the_month_before(db):
    with read_session(db) as s:
        district = find_unit(s, DISTRICT)
    _roll(db, district, day="2026-11-02", reported=4, due=2, resolved=2)
    _roll(db, district, day="2026-11-20", reported=40, due=20, resolved=0)  # after the 3rd
    _roll(db, district, day="2026-12-02", reported=5, due=1, resolved=1)
    _roll(db, district, day="2026-12-20", reported=0, due=9, resolved=0)  # not due yet
    today = date(2026, 12, 3)
    data = views.overview(actor(db, "district_leader"), Query(label="2026-12"), db, day=today)
    assert data.partial
    assert (data.current.start, data.current.end) == (date(2026, 12, 1), today)
    assert (data.previous.start, data.previous.end) == (date(2026, 11, 1), date(2026, 11, 3))
    assert (data.values["reported"].value, data.before["reported"].value) == (5, 4)
    assert data.values["resolution_rate"].denominator == 1  # the 20th's deadlines: not yet
    assert data.before["resolution_rate"].value == 1.0
    # A month that has ended is compared with the whole month before.
    done = views.overview(actor(db, "district_leader"), Query(label="2026-12"), db,
                          day=date(2027, 1, 5))
    assert not done.partial and done.before["reported"].value == 44
    assert figures.same_days_before(figures.period_of_label("2026-03"), 1, date(2026, 3, 31)) \
        .end == date(2026, 2, 28)


def test_the_rankings_page_states_the_tie_rule_and_each_unit_s_weights(sqlite_db):
    from tests.test_pages_kpi import goto, ok, page_text

    a, b = _street_communities(sqlite_db)[:2]
    with write_session(sqlite_db) as s:
        s.get(Setting, "kpi.min_cases_to_rank").value = "1"
    refcache.clear()
    period = figures.default_period()
    day = (period.start + timedelta(days=3)).isoformat()
    _roll(sqlite_db, a, day=day, **_profile(0.8, 0.5, 0, 0, 10))
    _roll(sqlite_db, b, day=day, **_profile(0.8, 0.5, 8, 8, 10))
    at_ = goto(app("street_leader"), "kpi_rankings")
    ok(at_, "rankings")
    words = page_text(at_)
    from lib.core.i18n import t
    assert t("kpi.rank.tie_rule") in words
    assert "响应 17% · 解决 83%" in words  # no rated case: satisfaction's weight spread
    assert "响应 10% · 解决 50% · 满意 40%" in words
