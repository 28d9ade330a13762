"""Working days on mainland China's calendar: statutory holidays and make-up working days (调休).

The ``chinesecalendar`` package knows the years the State Council has published. For a year it
does not know, the rule falls back to Monday–Friday less the fixed-date holidays (1 January,
1 May, 1–3 October; the lunar ones move and cannot be guessed), and an admin may override single days in
``data/calendar_overrides.json`` (``{"2031-10-01": "holiday", "2031-10-11": "workday"}``).
Nothing here raises for an unknown year.

A limit in working days ends at the close of the working day (docs/decisions.md): N working days
from a moment is the close of the Nth working day after that moment's day, China time; the
day of the moment itself never counts (民法典 第二百零一条、第二百零三条). Limits in hours and
minutes are exact.
"""

from __future__ import annotations

import bisect
import json
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import chinese_calendar

from lib.core.config import DATA_DIR

CHINA_TZ = timezone(timedelta(hours=8), "CST")
CLOSE_OF_DAY = time(17, 30)  # the default of the setting ``deadline.close_of_day``
FIXED_HOLIDAYS = {(1, 1), (5, 1), (10, 1), (10, 2), (10, 3)}
OVERRIDES_FILE = DATA_DIR / "calendar_overrides.json"


def load_overrides(path: Path = OVERRIDES_FILE) -> dict[date, bool]:
    if not path.exists():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {date.fromisoformat(day): kind == "workday" for day, kind in raw.items()}


def is_workday(day: date, overrides: dict[date, bool] | None = None) -> bool:
    overrides = _default_overrides() if overrides is None else overrides
    if day in overrides:
        return overrides[day]
    try:
        return chinese_calendar.is_workday(day)
    except (NotImplementedError, ValueError):
        return day.weekday() < 5 and (day.month, day.day) not in FIXED_HOLIDAYS


@lru_cache(maxsize=1)
def _default_overrides() -> dict[date, bool]:
    return load_overrides()


@lru_cache(maxsize=64)
def _workdays_of_year(year: int) -> tuple[date, ...]:
    day, end = date(year, 1, 1), date(year + 1, 1, 1)
    days = []
    while day < end:
        if is_workday(day):
            days.append(day)
        day += timedelta(days=1)
    return tuple(days)


def next_workday(day: date) -> date:
    """The first working day after ``day``."""
    following = day + timedelta(days=1)
    while not is_workday(following):
        following += timedelta(days=1)
    return following


def working_days_between(start: datetime, end: datetime) -> int:
    """How many working days (China time) follow ``start``'s day up to and including ``end``'s
    day: reported on a Friday and closed the next Monday is 1, the same day is 0."""
    first = start.astimezone(CHINA_TZ).date() if start.tzinfo else start.date()
    last = end.astimezone(CHINA_TZ).date() if end.tzinfo else end.date()
    if last <= first:
        return 0
    count = 0
    for year in range(first.year, last.year + 1):
        days = _workdays_of_year(year)
        count += bisect.bisect_right(days, last) - bisect.bisect_right(days, first)
    return count


def add_working_days(start: datetime, count: int, close: time = CLOSE_OF_DAY) -> datetime:
    """The close (``close``, China time) of the ``count``-th working day after ``start``'s day:
    1 working day from Monday 01:03 or Monday 16:00 is Tuesday 17:30, from Friday evening or
    Saturday it is Monday 17:30. A naive ``start`` is UTC, as the database stores it, and the
    result is naive UTC then; an aware one gives an answer in its own time zone."""
    if count <= 0:
        return start
    moment = start if start.tzinfo else start.replace(tzinfo=timezone.utc)
    day = moment.astimezone(CHINA_TZ).date()
    year = day.year
    days = _workdays_of_year(year)
    index = bisect.bisect_right(days, day)
    remaining = count
    while remaining > len(days) - index:
        remaining -= len(days) - index
        year += 1
        days = _workdays_of_year(year)
        index = 0
    end = datetime.combine(days[index + remaining - 1], close, tzinfo=CHINA_TZ)
    if start.tzinfo is None:
        return end.astimezone(timezone.utc).replace(tzinfo=None)
    return end.astimezone(start.tzinfo)


def add_duration(start: datetime, value: int, unit: str, *, close: time = CLOSE_OF_DAY) -> datetime:
    """``start`` plus a deadline rule's duration: minutes and hours exactly, working_days to the
    close of the last working day (``close``: the setting ``deadline.close_of_day``)."""
    if unit == "minutes":
        return start + timedelta(minutes=value)
    if unit == "hours":
        return start + timedelta(hours=value)
    if unit == "working_days":
        return add_working_days(start, value, close)
    raise ValueError(f"unknown duration unit {unit!r}")
