"""Times as users read them: every date and time shown or exported is China time (UTC+8).

The database stores UTC; this is the one place that turns a stored moment into what a person
reads, so that a case reported at 01:43 in Chengdu never shows as the day before.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone

from lib.core.workcal import CHINA_TZ


def as_utc(value: datetime) -> datetime:
    """A moment read from the database (naive on SQLite, which stores UTC) made aware."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def time_of_day(text: str) -> time:
    """A setting's time of day, "H:MM" or "HH:MM"; raises ValueError when unreadable."""
    hours, minutes = (int(part) for part in text.strip().split(":"))
    return time(hours, minutes)


def china(value: datetime) -> datetime:
    """The moment in China time."""
    return as_utc(value).astimezone(CHINA_TZ)


def china_day(value: datetime) -> date:
    return china(value).date()


def spreadsheet_time(value: datetime | None) -> datetime | None:
    """The moment in China time without a zone, to the second: a spreadsheet has no time zones,
    and its readers read China time."""
    return china(value).replace(tzinfo=None, microsecond=0) if value is not None else None


def china_time(value: datetime | None) -> str:
    """``2026-03-01 01:43``; empty for none."""
    return china(value).strftime("%Y-%m-%d %H:%M") if value is not None else ""


def china_date(value: datetime | None) -> str:
    """``2026-03-01``; empty for none."""
    return china(value).strftime("%Y-%m-%d") if value is not None else ""
