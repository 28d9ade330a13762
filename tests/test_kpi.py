"""The assessment figures on a small district built by hand, with answers worked out by hand:
rates with the counts behind them, closure times in hours and working days (holidays and
make-up days included), reopened and called-up cases, period boundaries, empty periods, and the
roll-ups kept up to date as cases move — the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
import re
from datetime import date, datetime, timedelta

import pytest
from sqlmodel import select

from lib.cases.machine import UNREACHABLE
from lib.cases.models import Case
from lib.core.db import read_session, write_session
from lib.core.i18n import t
from lib.core.workcal import CHINA_TZ, working_days_between
from lib.kpi import figures, rollup
from lib.org import geo
from lib.org.units import find_unit
from lib.ui import responsive
from tests.factories import POLICE, app, move, new_case, unit_id
from tests.test_pages_kpi import goto, kpi_db, ok  # noqa: F401 (a fixture)

DISTRICT = "510104"


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=CHINA_TZ)


def _loop(db, case, steps) -> object:
    for username, action, when, params in steps:
        case = move(db, username, case.id, action, now=when, **params)
    return case


def _self_handled(db, reported: datetime, closed: datetime, rating: str, *, reworked=False):
    case = new_case(db, now=reported)
    steps = [("community01", "accept", reported + timedelta(minutes=30), {}),
             ("community01", "take", reported + timedelta(hours=1), {}),
             ("community01", "handle", reported + timedelta(hours=2), {"note": "已清理"})]
    if reworked:
        steps += [("community01", "rework", reported + timedelta(hours=3), {"note": "没清干净"}),
                  ("community01", "handle", reported + timedelta(hours=4), {"note": "已清理"})]
    steps += [("community01", "verify", closed - timedelta(hours=2), {}),
              ("community01", "feedback", closed - timedelta(hours=1), {"rating": rating}),
              ("community01", "close", closed, {})]
    return _loop(db, case, steps)


@pytest.fixture
def march(db):
    """Six reports in March 2026 (and one the last day of February), as described per case."""
    # A: taken on and closed by the community in 24 h, satisfied.
    a = _self_handled(db, at(2, 9), at(3, 9), "satisfied")
    # B: called up to the street, dispatched to the police, signed for in time, closed after
    # 72 h, basically satisfied.
    b = new_case(db, now=at(2, 10))
    b = _loop(db, b, [
        ("community01", "accept", at(2, 10), {}),
        ("community01", "call_up", at(2, 11), {"note": "请街道协调"}),
        ("street01", "dispatch", at(2, 12), {"lead_unit_id": unit_id(db, POLICE)}),
        ("dept_police", "acknowledge", at(2, 13), {}), ("dept_police", "start", at(2, 14), {}),
        ("dept_police", "handle", at(4, 9), {"note": "已处理"}),
        ("community01", "verify", at(5, 8), {}),
        ("community01", "feedback", at(5, 9), {"rating": "basically_satisfied"}),
        ("community01", "close", at(5, 10), {})])
    # C: rejected.
    c = new_case(db, now=at(3, 8))
    move(db, "community01", c.id, "reject", now=at(3, 9), note="重复")
    # D: dissatisfied at the call-back, closed all the same after 96 h.
    d = _self_handled(db, at(3, 10), at(7, 10), "dissatisfied")
    # E: sent back once for rework; the reporter could not be reached; closed after 48 h.
    e = _self_handled(db, at(4, 9), at(6, 9), UNREACHABLE, reworked=True)
    # F: closed, then reopened: not closed in March.
    f = _self_handled(db, at(5, 9), at(5, 18), "satisfied")
    move(db, "community01", f.id, "reopen", now=at(6, 9), note="居民说又堆上了")
    # G: reported on 28 February, closed on 1 March: reported in February, closed in March.
    g = _self_handled(db, at(28, 20, month=2), at(1, 20), "satisfied")
    rollup.rebuild(db, now=at(20, 12))
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g}


def _values(db, start: date, end: date) -> dict[str, figures.Value]:
    with read_session(db) as s:
        scope = find_unit(s, DISTRICT)
        counters = figures.totals(s, scope, start, end)[None]
        return figures.evaluate(counters, figures.weights(s))


def test_the_month_figures_are_exactly_what_the_cases_say(db, march):
    v = _values(db, date(2026, 3, 1), date(2026, 3, 31))
    assert (v["reported"].value, v["closed"].value) == (6, 5)  # A-F reported; A B D E G closed
    # Rated: A, G 满意; B 基本满意; D 不满意; E could not be reached: unrated.
    assert (v["satisfaction_rate"].numerator, v["satisfaction_rate"].denominator) == (2.9, 4)
    assert v["satisfaction_rate"].value == pytest.approx(2.9 / 4)
    # Response: every wait for a first action begun in March, each answered in time — a triage
    # and a decision for A C… (C: triage only, rejected), and for B also the street's answer to
    # the call-up and the police's sign-for: 2 + 4 + 1 + 2 + 2 + 2 = 13.
    assert (v["response_rate"].value, v["response_rate"].denominator) == (1.0, 13)
    assert (v["return_rate"].value, v["overdue_rate"].value) == (0.0, 0.0)
    assert (v["community_share"].numerator, v["street_share"].numerator) == (4, 5)  # B: street
    assert v["on_time_rate"].value == 1.0
    # Handle moves in March: A, B, D, E twice, F → 6; one rework (E).
    assert (v["rework_rate"].numerator, v["rework_rate"].denominator) == (1, 6)
    assert v["mean_closure_hours"].value == pytest.approx((24 + 72 + 96 + 48 + 24) / 5)
    # Due in March: A B D E F G (F's new deadline after reopening); all but F resolved.
    assert (v["resolution_rate"].numerator, v["resolution_rate"].denominator) == (5, 6)
    assert v["composite"].value == pytest.approx(0.1 * 1.0 + 0.5 * 5 / 6 + 0.4 * 2.9 / 4)


def test_closure_time_quantiles_are_exact_in_hours_and_working_days(db, march):
    with read_session(db) as s:
        q = figures.closure_quantiles(s, find_unit(s, DISTRICT), date(2026, 3, 1), date(2026, 3, 31))
    assert q.count == 5  # hours: 24 24 48 72 96
    assert (q.median_hours, q.p90_hours) == (pytest.approx(48.0), pytest.approx(86.4))
    # Working days: G 0 (Sat 28 Feb to Sun 1 Mar), A 1 (Mon to Tue), E 2, B 3 (Mon to Thu),
    # D 3 (Tue to Sat).
    assert q.median_workdays == pytest.approx(2.0) and q.p90_workdays == pytest.approx(3.0)


def test_holidays_and_make_up_days_count_in_working_days():
    def between(a: date, b: date) -> int:
        return working_days_between(datetime.combine(a, datetime.min.time(), CHINA_TZ),
                                    datetime.combine(b, datetime.min.time(), CHINA_TZ))

    # 2026: Mid-Autumn 25–27 September and National Day 1–7 October off; Saturday 10 October
    # is a make-up working day.
    assert between(date(2026, 9, 24), date(2026, 9, 28)) == 1  # Thu to Mon: only Monday
    assert between(date(2026, 9, 30), date(2026, 10, 9)) == 2  # over the holiday: 8th and 9th
    assert between(date(2026, 10, 9), date(2026, 10, 12)) == 2  # Fri to Mon: Sat 10th works


def test_an_empty_period_has_no_data_never_an_error(db, march):
    v = _values(db, date(2025, 1, 1), date(2025, 1, 31))
    assert all(v[k].value is None for k in figures.HEADLINE)
    assert v["composite"].value is None and v["reported"].value == 0
    with read_session(db) as s:
        q = figures.closure_quantiles(s, find_unit(s, DISTRICT), date(2025, 1, 1), date(2025, 1, 31))
    assert (q.count, q.median_hours, q.p90_workdays) == (0, None, None)


def test_a_case_reported_in_one_month_and_closed_in_the_next_counts_in_each(db, march):
    february = _values(db, date(2026, 2, 1), date(2026, 2, 28))
    assert (february["reported"].value, february["closed"].value) == (1, 0)


def test_the_roll_ups_follow_the_cases_within_a_refresh(db, march):
    later = at(20, 13)
    f = march["f"]
    for action, params in (("handle", {"note": "已清理干净"}), ("verify", {}),
                           ("feedback", {"rating": "satisfied"}), ("close", {})):
        move(db, "community01", f.id, action, now=later, **params)
    assert _values(db, date(2026, 3, 1), date(2026, 3, 31))["closed"].value == 5  # not yet
    rollup.refresh(db, now=later + timedelta(seconds=30))
    v = _values(db, date(2026, 3, 1), date(2026, 3, 31))
    assert v["closed"].value == 6 and v["satisfaction_rate"].denominator == 5
    # A rebuild from nothing gives the same.
    rollup.rebuild(db, now=later + timedelta(minutes=1))
    assert _values(db, date(2026, 3, 1), date(2026, 3, 31))["closed"].value == 6


def test_assessment_months_may_start_on_another_day():
    period = figures.month_period(date(2026, 11, 29), start_day=19)
    assert (period.start, period.end, period.label) == (date(2026, 11, 19), date(2026, 12, 18),
                                                        "2026-12")
    assert figures.period_of_label("2026-12", 19) == period
    assert figures.month_period(date(2026, 11, 18), 19).label == "2026-11"
    assert [p.label for p in figures.last_periods("2026-03", 3)] == ["2026-01", "2026-02", "2026-03"]


def test_durations_missing_from_older_cases_are_filled_as_the_close_move_writes_them(db):
    """Cases closed before the closure columns existed (or bulk-loaded without them) get them
    from ``fill_durations``, exactly as the close move computes them; the demo writes them too."""
    from sqlalchemy import text
    from sqlmodel import select

    from lib.cases.models import Case
    from lib.core.db import write_session
    from lib.tools import demo

    closed = [_self_handled(db, at(2, 9), at(2 + n, 16), "satisfied") for n in range(3)]
    open_case = new_case(db, now=at(3, 9))
    with read_session(db) as s:
        written = {c.id: (c.closure_hours, c.closure_workdays) for c in
                   s.exec(select(Case).where(Case.id.in_([c.id for c in closed]))).all()}
    assert all(hours and hours > 0 for hours, _ in written.values())
    with write_session(db) as s:
        s.exec(text('UPDATE "case" SET closure_hours = NULL, closure_workdays = NULL'))
    assert rollup.fill_durations(db, chunk=2) == 3  # chunks smaller than the set
    with read_session(db) as s:
        again = {c.id: (c.closure_hours, c.closure_workdays) for c in s.exec(select(Case)).all()}
    assert again == {**written, open_case.id: (None, None)}
    assert rollup.fill_durations(db) == 0  # nothing left to fill

    with write_session(db) as s:
        demo.generate_cases(s, 60, seed=3)
    with read_session(db) as s:
        generated = {c.id: (c.closure_hours, c.closure_workdays) for c in s.exec(select(Case).where(
            Case.id.not_in(list(again)), Case.closed_at.is_not(None))).all()}
    assert generated and rollup.fill_durations(db) == 0  # the demo wrote every closed case's
    with write_session(db) as s:
        s.exec(text('UPDATE "case" SET closure_hours = NULL, closure_workdays = NULL'))
    rollup.fill_durations(db)
    with read_session(db) as s:
        assert {c.id: (c.closure_hours, c.closure_workdays) for c in s.exec(select(Case).where(
            Case.id.in_(list(generated)))).all()} == generated


def test_a_stale_page_draws_at_once_while_the_refresh_runs_beside_it(db):
    """A KPI page never waits for a refresh (seconds at a million cases): it gets the figures as
    they are, with their time, and a thread brings them up to date; only the very first build is
    waited for."""
    import time as clock

    from lib.core.models import utcnow

    assert rollup.computed_at(db) is None
    first = rollup.refresh_if_stale(db)  # never built: built now, before the page draws
    assert first is not None and rollup.computed_at(db) == first
    new_case(db)
    later = utcnow() + timedelta(minutes=5)
    assert rollup.refresh_if_stale(db, now=later) == first  # at once, as they are
    deadline = clock.monotonic() + 20
    while rollup.computed_at(db) == first and clock.monotonic() < deadline:
        clock.sleep(0.05)
    assert rollup.computed_at(db) > first  # the thread refreshed them
    with read_session(db) as s:
        district = find_unit(s, "510104")
        assert figures.totals(s, district, date(2000, 1, 1), date(2100, 1, 1))[None].reported == 1
    assert rollup.refresh_if_stale(db, now=later + timedelta(minutes=5), wait=True) > first


def test_a_report_where_a_case_of_its_category_closed_within_90_days_is_a_repeat(db):
    """Repeat rate: reports at a community, category and address where a case was closed in
    the 90 days before ÷ reports."""
    def closed_at_place(reported: datetime, closed: datetime) -> None:
        case = new_case(db, address="红星路9号", now=reported)
        _loop(db, case, [("community01", "accept", reported + timedelta(minutes=30), {}),
                         ("community01", "take", reported + timedelta(hours=1), {}),
                         ("community01", "handle", reported + timedelta(hours=2), {"note": "已清理"}),
                         ("community01", "verify", closed - timedelta(hours=1), {}),
                         ("community01", "close", closed, {})])

    closed_at_place(at(5, 9, month=1), at(5, 16, month=1))  # closed 5 January
    new_case(db, address="红星路9号", now=at(10, 9))  # 64 days later: a repeat
    new_case(db, category="dogs", address="红星路9号", now=at(11, 9))  # another category
    new_case(db, address="红星路8号", now=at(12, 9))  # another address
    new_case(db, address="红星路9号", now=at(10, 9, month=4))  # 95 days after the closure
    rollup.rebuild(db, now=at(30, 12, month=4))
    weights = {"response_rate": 0.1, "resolution_rate": 0.5, "satisfaction_rate": 0.4, "basic": 0.9}
    with read_session(db) as s:
        district = find_unit(s, "510104")
        march = figures.totals(s, district, date(2026, 3, 1), date(2026, 3, 31))[None]
        april = figures.totals(s, district, date(2026, 4, 1), date(2026, 4, 30))[None]
    assert (march.repeat, march.reported) == (1, 3)
    assert figures.evaluate(march, weights)["repeat_rate"].value == pytest.approx(1 / 3)
    assert (april.repeat, april.reported) == (0, 1)


# ---------------------------------------------------------------- the pages' charts and map (AppTest)
# On the small district of tests/test_pages_kpi.py (``kpi_db``), read from each chart's plotly
# JSON as the page sends it.

MONTH_TICK = re.compile(r"^\d{1,2}月(<br>\d{4})?$")


def _charts(at) -> dict[str, dict]:
    return {chart.proto.id: {"spec": json.loads(chart.proto.spec),
                             "config": json.loads(chart.proto.config or "{}")}
            for chart in at.main.get("plotly_chart")}


@pytest.fixture
def phone(monkeypatch):
    """Pages drawn for a phone's User-Agent (AppTest sends no request headers)."""
    monkeypatch.setattr(responsive, "on_phone", lambda: True)


def test_on_a_phone_charts_drop_the_toolbar_name_months_whole_and_lay_categories_across(kpi_db,  # noqa: F811
                                                                                       phone):
    at = app("district_leader")
    seen_months = seen_bars = 0
    for key in ("kpi_overview", "kpi_closure", "kpi_satisfaction", "kpi_rankings", "kpi_map",
                "kpi_monitoring"):
        goto(at, key)
        ok(at, key)
        for chart in at.main.get("plotly_chart"):
            spec, config = json.loads(chart.proto.spec), json.loads(chart.proto.config or "{}")
            assert config.get("displayModeBar") is False, key
            layout = spec["layout"]
            xs = [x for trace in spec["data"] for x in (trace.get("x") or [])]
            if xs and all(isinstance(x, str) and re.match(r"^\d{4}-\d{2}$", x) for x in xs):
                seen_months += 1
                axis = layout["xaxis"]
                assert axis["tickvals"] == sorted(set(xs)), key
                assert all(MONTH_TICK.match(text) for text in axis["ticktext"]), axis["ticktext"]
                assert axis["ticktext"][0].endswith("<br>" + axis["tickvals"][0][:4])
            bars = [trace for trace in spec["data"] if trace.get("type") == "bar"]
            if bars and all(isinstance(v, str) for trace in bars for v in trace.get("y", [])[:1]):
                assert all(trace.get("orientation") == "h" for trace in bars), key
                assert layout["yaxis"].get("automargin") is True, key
                seen_bars += 1
    assert seen_months >= 4  # two on the overview, one each on closure and satisfaction
    goto(at, "kpi_overview")
    [categories] = [c for c in at.main.get("plotly_chart") if c.proto.id and
                    any(t.get("orientation") == "h" and "社区公共消防" in t.get("y", [])
                        for t in json.loads(c.proto.spec)["data"])]
    assert categories
    assert seen_bars >= 2
    # The map's scale lies under it: at the side it took a third of a phone's width.
    goto(at, "kpi_map")
    spec = json.loads(at.main.get("plotly_chart")[0].proto.spec)
    [scale] = [trace for trace in spec["data"] if trace.get("marker", {}).get("showscale")]
    assert scale["marker"]["colorbar"]["orientation"] == "h"


def test_on_a_wide_screen_charts_keep_their_toolbar_and_month_labels(kpi_db):  # noqa: F811
    at = goto(app("district_leader"), "kpi_overview")
    ok(at, "kpi_overview")
    for chart in at.main.get("plotly_chart"):
        spec, config = json.loads(chart.proto.spec), json.loads(chart.proto.config or "{}")
        assert config.get("displayModeBar") is not False
        assert "ticktext" not in spec["layout"].get("xaxis", {})


def test_the_heat_map_table_says_what_an_empty_cell_means(kpi_db):  # noqa: F811
    at = goto(app("district_leader"), "kpi_map")
    ok(at, "kpi_map")
    for figure in ("reported", "satisfaction_rate"):
        at.selectbox(key="kpi_map_figure").set_value(figure).run()
        ok(at, figure)
        heat = at.main.dataframe[-1].value
        cells = [str(v) for row in heat.values.tolist() for v in row]
        assert not [c for c in cells if c in ("None", "nan", "NaN", "<NA>", "")], figure
        if figure == "reported":
            assert "0" in cells and t("kpi.map.empty_cell") not in cells
        else:
            assert t("kpi.map.empty_cell") in cells
            assert t("kpi.map.empty_cell_note", empty=t("kpi.map.empty_cell")) in \
                [c.value for c in at.main.caption]


def test_the_district_map_names_its_communities_on_their_shapes(kpi_db):  # noqa: F811
    at = goto(app("district_leader"), "kpi_map")
    ok(at, "kpi_map")
    spec = json.loads(at.main.get("plotly_chart")[0].proto.spec)
    [labels] = [trace for trace in spec["data"] if trace.get("mode") == "text"]
    boundaries = geo.load_boundaries("510104")
    assert len(labels["text"]) == len(boundaries["features"])
    assert {"红星路社区", "科甲巷社区", "书院街社区"} <= set(labels["text"])
    fills = [trace for trace in spec["data"] if trace.get("fill") == "toself"]
    assert len(fills) == len(boundaries["features"])


@pytest.fixture
def located(kpi_db):  # noqa: F811
    """The cases of 红星路社区 given a point inside it (the factory's reports have none)."""
    boundaries = {f["properties"]["code"]: f for f in geo.load_boundaries("510104")["features"]}
    rng = random.Random(7)
    with write_session(kpi_db) as s:
        community = find_unit(s, "510104001001")
        for case in s.exec(select(Case).where(Case.community_id == community.id)).all():
            case.longitude, case.latitude = geo.random_point(boundaries[community.code], rng)
            s.add(case)
    return kpi_db


def test_a_communitys_own_map_shows_its_cases_by_category_not_a_scale_of_one_value(located):
    at = goto(app("community_leader"), "kpi_map")
    ok(at, "kpi_map")
    spec = json.loads(at.main.get("plotly_chart")[0].proto.spec)
    traces = spec["data"]
    assert not [trace for trace in traces if trace.get("marker", {}).get("showscale")]
    [labels] = [trace for trace in traces if trace.get("mode") == "text"]
    assert labels["text"][0].startswith("红星路社区")
    points = [trace for trace in traces if trace.get("mode") == "markers"]
    assert points and all(trace.get("showlegend") is not False for trace in points)
    names = " ".join(trace["name"] for trace in points)
    assert "社区公共消防" in names or "消防" in names, names
    assert t("kpi.map.own_note") in [c.value for c in at.main.caption]
