"""The assessment roll-ups (考核): per day, unit, flow, place, quantile and case."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Index,
)
from sqlmodel import Field, SQLModel

from lib.core.models import Facts

# Closure-time buckets of the roll-ups (hours, inclusive upper bounds; the last is open): the
# trend lines' median and 90th percentile are read from them; a chosen period's are exact.
CLOSURE_BUCKETS = (4, 8, 24, 48, 72, 120, 168, 336, 720)


class KpiCounters(SQLModel):
    """The counters of a roll-up row: they add up over days and over rows."""

    reported: int = 0  # cases reported this day
    resident_reported: int = 0
    inspection_found: int = 0  # first found by a covert inspection
    repeat: int = 0  # reported where a case of the same category and address closed in 90 days
    closed: int = 0  # cases closed this day (and still closed)
    closed_community: int = 0  # of those, never left the community tier (小事不出村社)
    closed_street: int = 0  # of those, never reached the district (大事不出镇街)
    closed_on_time: int = 0  # of those, closed by their first commitment (or without one)
    closed_late: int = 0  # of those, closed after their first commitment
    closure_hours: float = 0.0  # their hours from report to closure, summed
    closure_workdays: int = 0  # their working days, summed
    # How many of them took at most 4, 8, 24 … 720 hours (CLOSURE_BUCKETS), and longer.
    b0: int = 0
    b1: int = 0
    b2: int = 0
    b3: int = 0
    b4: int = 0
    b5: int = 0
    b6: int = 0
    b7: int = 0
    b8: int = 0
    b9: int = 0
    called_back: int = 0  # of those closed, with a call-back recorded (rated or unreachable)
    rated: int = 0  # of those closed, rated by the reporter
    satisfied: int = 0
    basic: int = 0  # 基本满意
    dissatisfied: int = 0
    dispatched: int = 0  # lead work orders made this day
    signed_on_time: int = 0  # of those, signed for within the limit (响应)
    returned: int = 0  # of those, returned (退单)
    late: int = 0  # of those, handled after the deadline, or still open past it
    due: int = 0  # cases whose first commitment falls this day (Case.committed_due_at)
    resolved: int = 0  # of those, resolved (verified) by it (解决)
    resolved_late: int = 0  # of those, resolved after it
    waits: int = 0  # waits for a unit's first action begun this day (case_wait)
    responded: int = 0  # of those, answered by the waiting unit within the limit (响应)
    handled: int = 0  # handle moves this day
    reworked: int = 0  # rework moves this day (返工)
    hurried: int = 0  # hurry moves this day (催办)


class KpiDay(KpiCounters, table=True):
    """What happened on one day (China time) in one tier unit's area (community, street,
    district, city), for one category: counters that add up over any period. A day's rows are
    recomputed from the cases (lib.kpi.rollup): within a minute of a move by the tick, all of
    them by ``python -m lib kpi-rebuild``."""

    __tablename__ = "kpi_day"
    __table_args__ = (Index("ix_kpi_day_unit", "unit_id", "day", "category_id"),)

    day: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD
    unit_id: int = Field(primary_key=True, foreign_key="unit.id")
    category_id: int = Field(primary_key=True, foreign_key="category.id")


class KpiUnitDay(KpiCounters, table=True):
    """The same counters for one day and one unit, over all categories, written with
    ``kpi_day``: for a tier unit (community, street, district, city) everything in its area,
    so that a month of a district is one row a day; for a department, the work orders it led
    and the cases it handled (the departments' ranking)."""

    __tablename__ = "kpi_unit_day"
    __table_args__ = (Index("ix_kpi_unit_day_unit", "unit_id", "day"),)

    day: str = Field(primary_key=True, max_length=10)
    unit_id: int = Field(primary_key=True, foreign_key="unit.id")


class KpiFlow(SQLModel, table=True):
    """The cases reported on one day in one community, for one category, by where they came
    from, the highest tier they reached and where they stand now (the tier-flow diagram);
    recomputed with the day's other rows."""

    __tablename__ = "kpi_flow"

    day: str = Field(primary_key=True, max_length=10)
    community_id: int = Field(primary_key=True, foreign_key="unit.id")
    category_id: int = Field(primary_key=True, foreign_key="category.id")
    source: str = Field(primary_key=True, max_length=16)
    reached_tier: str = Field(primary_key=True, max_length=16)
    outcome: str = Field(primary_key=True, max_length=24)  # closed:<tier>, open, rejected, merged
    cases: int = 0


class KpiPlace(SQLModel, table=True):
    """Reports on one day at a place (community, category, address) that had been reported
    before within 90 days: the candidates for monitoring's repeat places, whose reports are then
    counted exactly. Restricted categories are left out (their addresses are content)."""

    __tablename__ = "kpi_place"
    __table_args__ = (Index("ix_kpi_place_community", "community_id", "day"),)

    day: str = Field(primary_key=True, max_length=10)
    community_id: int = Field(primary_key=True, foreign_key="unit.id")
    category_id: int = Field(primary_key=True, foreign_key="category.id")
    address: str = Field(primary_key=True, max_length=200)
    cases: int = 0


class KpiQuantile(SQLModel, table=True):
    """The exact median and 90th percentile of closure time of one unit's cases closed in one
    assessment period, as of the last refresh (computed by the refresh for the periods whose
    days it recomputed, so that the pages read one row instead of a month of cases)."""

    __tablename__ = "kpi_quantile"

    unit_id: int = Field(primary_key=True, foreign_key="unit.id")
    start: str = Field(primary_key=True, max_length=10)
    end: str = Field(max_length=10)
    count: int = 0
    median_hours: float | None = None
    p90_hours: float | None = None
    median_workdays: float | None = None
    p90_workdays: float | None = None


class KpiCase(SQLModel, table=True):
    """The days a case was last counted on in ``kpi_day`` (reported, closed, due): when the case
    moves, both its old and its new days are recomputed."""

    __tablename__ = "kpi_case"

    case_id: int = Field(primary_key=True, foreign_key="case.id")
    reported_day: str = Field(max_length=10)
    closed_day: str | None = Field(default=None, max_length=10)
    due_day: str | None = Field(default=None, max_length=10)


class KpiRefresh(SQLModel, table=True):
    """How far the roll-ups are up to date (one row)."""

    __tablename__ = "kpi_refresh"

    id: int = Field(default=1, primary_key=True)
    until: datetime  # cases moved before this are in the roll-ups


class KpiMonth(SQLModel, table=True):
    """An assessment month that has closed (setting ``kpi.close_after_workdays`` working days
    after its end): its figures are read from ``kpi_month_unit`` from then on, as published,
    and what changes them later is recorded in ``kpi_adjustment``."""

    __tablename__ = "kpi_month"

    label: str = Field(primary_key=True, max_length=7)  # "2026-11"
    start: str = Field(max_length=10)
    end: str = Field(max_length=10)
    closed_at: datetime
    # What the figures were computed with: weights, factors, minimum sample, list size.
    settings: dict[str, Any] | None = Field(default=None, sa_column=Column(Facts, nullable=True))


class KpiMonthUnit(KpiCounters, table=True):
    """A closed month's counters for one unit (and one category of a tier unit's area;
    ``category_id`` 0: all categories), with its exact closure quantiles and the figures from
    outside the roll-ups (``extras``), exactly as published."""

    __tablename__ = "kpi_month_unit"

    label: str = Field(primary_key=True, max_length=7)
    unit_id: int = Field(primary_key=True, foreign_key="unit.id")
    category_id: int = Field(primary_key=True, default=0)
    unit_name: str = Field(default="", max_length=100)
    median_hours: float | None = None
    p90_hours: float | None = None
    median_workdays: float | None = None
    p90_workdays: float | None = None
    extras: dict[str, Any] | None = Field(default=None, sa_column=Column(Facts, nullable=True))


class KpiAdjustment(SQLModel, table=True):
    """A change, after a month closed, to a case that month counted (a reopen, a late rating, a
    late call-back …): the closed month keeps its figures; the adjustment is listed, with its
    reason, in the 通报 of the month under way when it happened (``shown_in``)."""

    __tablename__ = "kpi_adjustment"
    __table_args__ = (Index("ix_kpi_adjustment_shown_in", "shown_in", "community_id"),)

    id: int | None = Field(default=None, primary_key=True)
    label: str = Field(max_length=7)  # the closed month it changes
    shown_in: str = Field(max_length=7)  # the month whose 通报 lists it
    case_id: int = Field(foreign_key="case.id")
    community_id: int = Field(foreign_key="unit.id")
    at: datetime
    action: str = Field(max_length=24)  # the move that changed it
    reason: str | None = Field(default=None, max_length=2000)
    changes: dict[str, Any] | None = Field(default=None, sa_column=Column(Facts, nullable=True))
