"""Deadlines in working days end at the close of the working day (China time, the setting
``deadline.close_of_day``, default 17:30); the day of the report never counts; limits in hours
and minutes are exact, whatever the hour, the weekend or the holiday (docs/decisions.md)."""

from __future__ import annotations

from datetime import datetime, time, timezone

import pytest
from sqlalchemy import text

from lib.cases.deadlines import close_time, due
from lib.core import refcache
from lib.core.clock import as_utc
from lib.core.db import read_session, write_session
from lib.core.workcal import CHINA_TZ, add_duration, add_working_days
from tests.factories import get, move, new_case


def china(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=CHINA_TZ)


def in_china(moment: datetime) -> datetime:
    return moment.astimezone(CHINA_TZ)


def set_close_of_day(engine, value: str) -> None:
    with write_session(engine) as s:
        s.exec(text("UPDATE setting SET value = :v WHERE key = 'deadline.close_of_day'"),
               params={"v": value})
    refcache.clear()


# 2026-11-30 is a Monday; 2026-12-04 a Friday.


@pytest.mark.parametrize("reported", [
    china(2026, 11, 30, 1, 3),    # before the office opens: the day still does not count
    china(2026, 11, 30, 9, 0),
    china(2026, 11, 30, 16, 0),   # before the close
    china(2026, 11, 30, 17, 45),  # after the close
    china(2026, 11, 30, 23, 59),
])
def test_one_working_day_from_any_hour_of_monday_ends_tuesday_at_the_close(reported):
    assert add_working_days(reported, 1) == china(2026, 12, 1, 17, 30)
    assert add_duration(reported, 1, "working_days") == china(2026, 12, 1, 17, 30)


def test_a_report_just_after_midnight_in_china_counts_from_its_china_day():
    """00:30 on Monday in Chengdu is still Sunday in UTC, where the database keeps it."""
    stored = china(2026, 11, 30, 0, 30).astimezone(timezone.utc)
    assert stored.weekday() == 6
    end = add_working_days(stored, 1)
    assert in_china(end) == china(2026, 12, 1, 17, 30) and end.tzinfo == timezone.utc
    naive = add_working_days(stored.replace(tzinfo=None), 1)  # as SQLite hands it back
    assert naive.tzinfo is None
    assert naive.replace(tzinfo=timezone.utc) == china(2026, 12, 1, 17, 30)


@pytest.mark.parametrize(("reported", "count", "ends"), [
    # A weekend: Friday afternoon, Friday evening and Saturday all end on Monday.
    (china(2026, 12, 4, 16, 0), 1, china(2026, 12, 7, 17, 30)),
    (china(2026, 12, 4, 20, 0), 1, china(2026, 12, 7, 17, 30)),
    (china(2026, 12, 5, 10, 0), 1, china(2026, 12, 7, 17, 30)),
    (china(2026, 12, 4, 10, 0), 3, china(2026, 12, 9, 17, 30)),
    # National Day 2026: 1–7 October off, Saturday 10 October a make-up working day (调休).
    (china(2026, 9, 30, 10, 0), 1, china(2026, 10, 8, 17, 30)),
    (china(2026, 10, 3, 10, 0), 1, china(2026, 10, 8, 17, 30)),
    (china(2026, 10, 9, 10, 0), 1, china(2026, 10, 10, 17, 30)),
    (china(2026, 9, 29, 10, 0), 7, china(2026, 10, 14, 17, 30)),
    # Spring Festival 2026: Saturday 14 February works, 15–23 February off.
    (china(2026, 2, 13, 16, 0), 1, china(2026, 2, 14, 17, 30)),
    (china(2026, 2, 14, 16, 0), 1, china(2026, 2, 24, 17, 30)),
    # Across the year: 1–3 January 2026 off, Sunday 4 January works.
    (china(2025, 12, 31, 12, 0), 1, china(2026, 1, 4, 17, 30)),
])
def test_working_days_skip_weekends_and_statutory_holidays_and_end_at_the_close(reported, count,
                                                                                 ends):
    assert add_working_days(reported, count) == ends


@pytest.mark.parametrize(("start", "value", "unit", "ends"), [
    (china(2026, 11, 30, 16, 45), 2, "hours", china(2026, 11, 30, 18, 45)),   # past 17:30
    (china(2026, 12, 4, 23, 0), 2, "hours", china(2026, 12, 5, 1, 0)),        # into Saturday
    (china(2026, 9, 30, 23, 50), 30, "minutes", china(2026, 10, 1, 0, 20)),   # into a holiday
    (china(2026, 12, 4, 10, 0), 24, "hours", china(2026, 12, 5, 10, 0)),
])
def test_limits_in_hours_and_minutes_stay_exact(start, value, unit, ends):
    assert add_duration(start, value, unit) == ends
    assert add_duration(start, value, unit, close=time(9, 0)) == ends


def test_due_reads_the_rules_and_the_close_of_day(db):
    monday = china(2026, 11, 30, 1, 3)
    with read_session(db) as s:
        assert close_time(s) == time(17, 30)
        assert in_china(due(s, "general", "sign_for", monday)) == china(2026, 12, 1, 17, 30)
        assert in_china(due(s, "general", "handle", monday)) == china(2026, 12, 9, 17, 30)
        # An urgent fire hazard: 30 minutes to sign for, 24 hours to handle, exactly.
        assert in_china(due(s, "urgent", "sign_for", monday)) == china(2026, 11, 30, 1, 33)
        assert in_china(due(s, "urgent", "handle", monday)) == china(2026, 12, 1, 1, 3)
        friday = china(2026, 12, 4, 16, 45)  # a major case: 2 hours past the close and Friday
        assert in_china(due(s, "major", "sign_for", friday)) == china(2026, 12, 4, 18, 45)
        assert in_china(due(s, "major", "handle", friday)) == china(2026, 12, 9, 17, 30)


def test_a_changed_close_of_day_moves_the_deadline_and_not_the_exact_limits(db):
    monday = china(2026, 11, 30, 16, 0)
    set_close_of_day(db, "18:00")
    try:
        with read_session(db) as s:
            assert in_china(due(s, "general", "sign_for", monday)) == china(2026, 12, 1, 18, 0)
            assert in_china(due(s, "urgent", "sign_for", monday)) == china(2026, 11, 30, 16, 30)
        set_close_of_day(db, "not a time")  # unreadable: the default close
        with read_session(db) as s:
            assert in_china(due(s, "general", "sign_for", monday)) == china(2026, 12, 1, 17, 30)
    finally:
        refcache.clear()


def test_a_report_at_01_03_must_be_triaged_by_the_close_of_the_next_working_day(db):
    """The issue's case: "1个工作日" from 01:03 ended at 01:03 the next day."""
    case = new_case(db, now=china(2026, 11, 30, 1, 3).astimezone(timezone.utc))
    assert in_china(as_utc(get(db, case.id).sign_due_at)) == china(2026, 12, 1, 17, 30)
    taken_at = china(2026, 12, 1, 10, 0).astimezone(timezone.utc)
    move(db, "community01", case.id, "accept", now=taken_at)
    move(db, "community01", case.id, "take", now=taken_at)
    assert in_china(as_utc(get(db, case.id).handle_due_at)) == china(2026, 12, 10, 17, 30)
