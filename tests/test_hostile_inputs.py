"""Hostile values from an address or a caller never crash a page or lib: the queue ignores them,
the reward ledger and the assessment views answer with a clear message, nothing is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlmodel import select

from lib.core.db import read_session
from lib.core.errors import DomainError
from lib.core.inputs import parse_int, parse_month
from lib.kpi import monitoring, rankings, report, views
from lib.kpi.views import Query
from lib.rewards import approval
from lib.rewards.models import RewardPool
from tests.factories import actor, open_page

# Each is a digit to str.isdigit(), and none to int(); the last two overflow a driver.
HOSTILE = ["²", "①", "٣", "1_0", "+5", " ", "-3", str(10**20), "0"]


@pytest.mark.parametrize("raw", HOSTILE)
def test_the_integer_parser_takes_ascii_digits_in_range_only(raw):
    assert parse_int(raw, low=1, high=2_147_483_647) is None
    assert parse_int(" 42 ", low=1, high=100) == 42 and parse_int(42, low=1, high=100) == 42
    assert parse_int(True, low=0, high=1) is None


@pytest.mark.parametrize("raw", ["9999-12", "0001-01", "2026-13", "2026-1", "２０２６-１１", "2026-11x",
                                 "²０26-11", None, 20261])
def test_the_month_parser_refuses_months_outside_the_years_or_not_written_yyyy_mm(raw):
    assert parse_month(raw) is None
    assert parse_month("2026-11") == (2026, 11)


@pytest.mark.parametrize("param", ["page", "category", "community"])
@pytest.mark.parametrize("value", ["²", "①", str(10**20)])
def test_the_queue_ignores_a_number_that_is_not_one(sqlite_db, param, value):
    """A clerk follows a link with a mangled number: the queue opens at its defaults."""
    at = open_page("community01", "pages/queue.py", **{param: value})
    assert not at.exception
    assert at.session_state["queue_page"] == 0
    assert at.session_state["queue_category"] is None
    assert not at.error


@pytest.mark.parametrize("month", ["9999-12", "0001-01", "2026-13", "²０26-11"])
def test_the_reward_ledger_says_what_a_month_looks_like(sqlite_db, month):
    with read_session(sqlite_db) as s:
        pools_before = s.exec(select(func.count()).select_from(RewardPool)).one()
    at = open_page("street_leader", "pages/reward_ledger.py")
    assert not at.exception
    at.text_input(key="reward_ledger_month").set_value(month).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["月份格式应为 2026-11，年份在 2000–2099 之间。"]
    with read_session(sqlite_db) as s:
        assert s.exec(select(func.count()).select_from(RewardPool)).one() == pools_before


@pytest.mark.parametrize("month", ["9999-12", "0001-01"])
def test_reward_ledger_reads_refuse_a_month_out_of_range(db, month):
    leader = actor(db, "street_leader")
    with pytest.raises(DomainError) as refused:
        approval.month_totals(leader, month, engine=db)
    assert refused.value.key == "error.month_invalid"
    with pytest.raises(DomainError):
        approval.ledger_rows(leader, approval.LedgerFilter(month=month), lang_name=str,
                             label=str, engine=db)


KPI_READS = {
    "overview": lambda who, q, db: views.overview(who, q, engine=db),
    "satisfaction": lambda who, q, db: views.satisfaction(who, q, engine=db),
    "closure": lambda who, q, db: views.closure(who, q, engine=db),
    "flow": lambda who, q, db: views.flow(who, q, engine=db),
    "map": lambda who, q, db: views.where(who, q, engine=db),
    "monitoring": lambda who, q, db: monitoring.monitoring(who, q, engine=db),
    "rankings": lambda who, q, db: rankings.rankings(who, q, engine=db),
    "report": lambda who, q, db: report.monthly(who, q, engine=db),
}


@pytest.mark.parametrize("query", [Query(unit_id=10**20), Query(category_id=10**20),
                                   Query(label="0001-01"), Query(label="9999-12"),
                                   Query(unit_id="²"), Query(category_id=-1), Query(label="²")],
                         ids=["unit", "category", "label_0001", "label_9999", "unit_sup",
                              "category_negative", "label_sup"])
def test_assessment_views_answer_a_hostile_filter_with_a_domain_error(db, query):
    reader = actor(db, "district01")
    for name, read in KPI_READS.items():
        with pytest.raises(DomainError) as refused:
            read(reader, query, db)
        assert refused.value.key in ("error.unit_not_found", "error.category_invalid",
                                     "error.month_invalid"), name
