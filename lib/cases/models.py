"""The tables of a case: the case, its events (the ledger), photos, work orders, reporter
codes, the access log of restricted reads, and the notices outbox."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    Index,
    Integer,
    LargeBinary,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from lib.core.models import Facts, Tier, utcnow


class CaseState(StrEnum):
    reported = "reported"
    accepted = "accepted"
    rejected = "rejected"
    merged = "merged"
    dispatched = "dispatched"
    acknowledged = "acknowledged"
    in_progress = "in_progress"
    handled = "handled"
    verified = "verified"
    feedback = "feedback"
    closed = "closed"
    parked = "parked"

_case_version = Column("version", Integer, nullable=False, default=1)


# Carried in the area indexes so that a period's closure times (exact median and 90th
# percentile) are read from the index alone.
_CLOSURE_COLUMNS = ("category_id", "reached_tier", "closure_hours", "closure_workdays")


class Case(SQLModel, table=True):
    """One reported problem. Its state always equals the ``to_state`` of its last event.

    ``community_id``/``street_id``/``district_id``/``city_id`` are the case's place in the org
    tree, copied at intake so that scope filters are one indexed equality.
    """

    __tablename__ = "case"
    __table_args__ = (
        Index("ix_case_community_state", "community_id", "state", "closed_at", *_CLOSURE_COLUMNS),
        Index("ix_case_street_state", "street_id", "state", "closed_at", *_CLOSURE_COLUMNS),
        Index("ix_case_district_state", "district_id", "state", "closed_at", *_CLOSURE_COLUMNS),
        Index("ix_case_city_state", "city_id", "state", "closed_at", *_CLOSURE_COLUMNS),
        Index("ix_case_unit_state", "unit_id", "state"),
        Index("ix_case_owner_state", "owner_id", "state"),
        Index("ix_case_reported_at", "reported_at"),
        # The tick and the overdue / supervised counts of any scope read only these indexes
        # (lib.cases.access.case_scope(indexed=False) keeps the planner off the place indexes there).
        Index("ix_case_overdue", "overdue", "state", "community_id", "street_id", "district_id",
              "city_id", "sign_due_at", "handle_due_at", "unit_id"),
        Index("ix_case_supervised", "supervised", "state", "community_id", "street_id",
              "district_id", "city_id"),
        # Similar open cases at intake; repeat places (the address makes it cover the query).
        Index("ix_case_dup", "community_id", "category_id", "reported_at", "address"),
        Index("uq_case_submit_key", "submit_key", unique=True),
        # The KPI roll-ups recompute the days of what changed: cases moved lately, and the days
        # cases closed and fall due.
        Index("ix_case_updated_at", "updated_at"),
        Index("ix_case_place", "community_id", "category_id", "address", "reported_at", "closed_at"),
        # Repeats by place: the normalised address, and the located reports of a community.
        Index("ix_case_place_key", "community_id", "category_id", "place_key", "reported_at",
              "closed_at"),
        # The assessment's resolution base: cases by the day their first commitment fell due.
        Index("ix_case_committed_due_at", "committed_due_at"),
        Index("ix_case_closed_at", "closed_at"),
        Index("ix_case_handle_due_at", "handle_due_at"),
        # The map's points: the period's latest located cases, from the index alone.
        Index("ix_case_located", "reported_at", "community_id", "category_id", "longitude",
              "latitude", sqlite_where=text("latitude IS NOT NULL"),
              postgresql_where=text("latitude IS NOT NULL")),
        # The reports merged into a case: a claim's group, whose events bar an approver (the
        # approval queue asks this per waiting claim; a scan per claim took minutes at 60,000 cases).
        Index("ix_case_merged_into", "merged_into_id", sqlite_where=text("merged_into_id IS NOT NULL"),
              postgresql_where=text("merged_into_id IS NOT NULL")),
    )
    __mapper_args__ = {"version_id_col": _case_version}

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)
    category_id: int = Field(foreign_key="category.id", index=True)
    subcategory_id: int | None = Field(default=None, foreign_key="subcategory.id")
    description: str = Field(max_length=2000)
    address: str = Field(max_length=200)
    latitude: float | None = None
    longitude: float | None = None
    severity: str = Field(max_length=16)
    source: str = Field(max_length=16)
    reporter_name: str | None = Field(default=None, max_length=60)
    reporter_phone: str | None = Field(default=None, max_length=20, index=True)
    anonymous: bool = False
    reported_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    state: str = Field(max_length=16)
    community_id: int = Field(foreign_key="unit.id")
    street_id: int = Field(foreign_key="unit.id")
    district_id: int = Field(foreign_key="unit.id")
    city_id: int = Field(foreign_key="unit.id")
    # The unit that must act next (triaging tier, handling department, or the community
    # for verification and call-back).
    unit_id: int = Field(foreign_key="unit.id")
    # The tier unit that owns the case: triages, dispatches, extends, parks. Moves on call-up.
    owner_id: int | None = Field(default=None, foreign_key="unit.id")
    # The unit that handles it: the lead department, or the owner itself (小事不出村社).
    handler_id: int | None = Field(default=None, foreign_key="unit.id")
    merged_into_id: int | None = Field(default=None, foreign_key="case.id")
    review_at: datetime | None = None  # a parked case's review date
    # One submitted form makes one case: a double click or a rerun finds this key taken.
    submit_key: str | None = Field(default=None, max_length=40)
    # The PIN (查询密码) shown once on a resident's receipt, and to staff who enter a phone-less
    # report; only its hash is kept. It opens the case's status; without a phone it also proves
    # the public moves (with a phone, those take a one-time code sent by SMS).
    pin_hash: str | None = Field(default=None, max_length=100)
    # How many events the case has: the next event takes this + 1, bumped in the same UPDATE
    # that steps the version (never max(seq)+1, which loses events under concurrency).
    event_seq: int = 0
    # A department asked for a later handling deadline (申请延期); the owner grants or refuses.
    extension_until: datetime | None = None
    # The reporter hurried the case (催办): how often, and when last.
    hurry_count: int = 0
    hurried_at: datetime | None = None
    # How long it took, written when it closes (cleared when it reopens), for the KPIs: hours
    # from report to closure, and working days on China's calendar.
    closure_hours: float | None = None
    closure_workdays: int | None = None
    # Highest tier the case reached: community, street, district or city.
    reached_tier: str = Field(default=Tier.community, max_length=16)
    supervised: bool = False
    overdue: bool = False
    sign_due_at: datetime | None = None
    handle_due_at: datetime | None = None
    # The first commitment (首次承诺时限): the handling deadline set when the work was first
    # taken on or dispatched, moved only by an extension granted before it expired. No later
    # move (call-up, return, hand-back, park, reopen) clears or moves it: the assessment's
    # resolution base (lib.kpi) is the cases whose first commitment fell in the period.
    committed_due_at: datetime | None = None
    # When the case was last found resolved (verified on site); None while it is not (a reopen
    # clears it).
    resolved_at: datetime | None = None
    # The address normalised (lib.cases.places.place_key): where repeats are matched.
    place_key: str | None = Field(default=None, max_length=200)
    rating: str | None = Field(default=None, max_length=24)
    reported_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = Field(default=1, sa_column=_case_version)


class CaseEvent(SQLModel, table=True):
    """One move of a case: append-only, enforced by the database (see the first migration).

    ``seq`` numbers the events of one case 1, 2, 3 … with no gap; the unique key on
    (case_id, seq) makes a duplicate move impossible.
    """

    __tablename__ = "case_event"
    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_case_event_case_id_seq"),
                      # What moved lately (the reward and KPI ticks read this, not every case).
                      Index("ix_case_event_action_at", "action", "at"))

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id")
    seq: int
    action: str = Field(max_length=24)
    at: datetime = Field(default_factory=utcnow)
    actor_id: int | None = Field(default=None, foreign_key="app_user.id")
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str = Field(max_length=16)
    from_unit_id: int | None = Field(default=None, foreign_key="unit.id")
    to_unit_id: int | None = Field(default=None, foreign_key="unit.id")
    note: str | None = Field(default=None, max_length=2000)
    # Structured facts of the move (rating, new deadline, departments), for the timeline.
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(Facts, nullable=True))


class CaseWait(SQLModel, table=True):
    """One wait for a unit's first action on a case, with its limit (响应): a report waiting for
    its community's triage, an accepted case for the owner's decision, a work order for its
    department's signature, a call for the called tier's answer. It starts when a move sets a
    sign-for or answer deadline at a unit and ends with the next move that ends or replaces
    that deadline; ``answered`` when that move was the waiting unit's own (a person of that
    unit, not the tick). The assessment's response rate counts the waits begun in a period
    and answered within their limit."""

    __tablename__ = "case_wait"
    __table_args__ = (Index("ix_case_wait_started_at", "started_at"),
                      Index("ix_case_wait_case_id", "case_id", "ended_at"))

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id")
    unit_id: int = Field(foreign_key="unit.id")
    kind: str = Field(max_length=16)  # triage | decide | sign | answer
    started_at: datetime
    due_at: datetime
    ended_at: datetime | None = None
    end_action: str | None = Field(default=None, max_length=24)
    answered: bool = False  # ended by the waiting unit's own move


class Attachment(SQLModel, table=True):
    """A photo on a report or on a result, stored re-encoded (no EXIF)."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    event_id: int | None = Field(default=None, foreign_key="case_event.id")
    kind: str = Field(default="report", max_length=16)
    mime: str = Field(max_length=40)
    size: int
    sha256: str = Field(max_length=64, index=True)  # a photo reused on another case is a signal
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class WorkOrderState(StrEnum):
    dispatched = "dispatched"
    acknowledged = "acknowledged"
    handled = "handled"
    returned = "returned"
    cancelled = "cancelled"


class WorkOrder(SQLModel, table=True):
    """A dispatch (派单) to one department: the lead (主办) or a co-handler (协办).

    The case's state follows the lead order; co-handlers sign for and report on their own order.
    """

    __tablename__ = "work_order"
    __table_args__ = (Index("ix_work_order_unit_state", "unit_id", "state"),
                      Index("ix_work_order_created_at", "created_at"),
                      Index("ix_work_order_handle_due_at", "handle_due_at"))

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")
    lead: bool = False
    state: str = Field(default=WorkOrderState.dispatched, max_length=16)
    dispatched_by_id: int | None = Field(default=None, foreign_key="unit.id")
    sign_due_at: datetime | None = None
    handle_due_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    signed_at: datetime | None = None
    handled_at: datetime | None = None


class ReporterCode(SQLModel, table=True):
    """A one-time code sent by SMS to a case's reporter (验证码), for one purpose: to view the
    case (reusable until it expires) or to make one public move (rate, hurry, claim; used once).
    Only a hash is kept, salted with the case's code and the row's own salt; the SMS that carried
    it keeps no copy once sent."""

    __tablename__ = "reporter_code"
    __table_args__ = (Index("ix_reporter_code_case_at", "case_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id")
    purpose: str = Field(max_length=16)
    salt: str = Field(max_length=32)
    code_hash: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class AccessLog(SQLModel, table=True):
    """Who saw the personal data of a restricted-category case, and when (PIPL Art. 28)."""

    __tablename__ = "access_log"
    __table_args__ = (Index("ix_access_log_case_at", "case_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id")
    case_id: int = Field(foreign_key="case.id")
    at: datetime = Field(default_factory=utcnow)
    what: str = Field(max_length=40)



class NoticeState(StrEnum):
    pending = "pending"  # an SMS waiting for the sender (or for its next attempt)
    sending = "sending"  # claimed by a sender; it becomes sent or pending again
    sent = "sent"  # handed to the gateway; an in-app notice is written sent (the sidebar shows it)
    failed = "failed"  # given up: ``error`` says why


class Notice(SQLModel, table=True):
    """One notice about a case (the outbox): an SMS to its reporter, sent by
    ``python -m lib notices-send``, or an in-app notice to a unit's staff, shown in the sidebar.

    It is written in the transaction of the move (or the tick) it tells of. ``key`` names the
    event and the recipient (``e:<event id>:sms``, ``e:<event id>:<kind>:<unit id>``, or for
    the tick ``<kind>:<case id>:<due moment>:<unit id>``), so one event never makes two notices.
    An SMS keeps its text as sent; an in-app notice keeps its kind and ``params`` (JSON) and is
    written in the reader's language when shown. Neither holds the reporter's name or phone.
    """

    __tablename__ = "notice"
    __table_args__ = (
        Index("ix_notice_unit", "unit_id", "created_at"),
        Index("ix_notice_outbox", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=80, unique=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    event_id: int | None = Field(default=None, foreign_key="case_event.id")
    kind: str = Field(max_length=16)
    channel: str = Field(max_length=8)  # sms (the reporter) or app (a unit's staff)
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    lang: str = Field(default="zh", max_length=8)
    params: str | None = Field(default=None, max_length=500)
    body: str | None = Field(default=None, max_length=1000)
    state: str = Field(max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    error: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class NoticeRead(SQLModel, table=True):
    """A staff member has read an in-app notice to their unit (each member reads it for
    themselves)."""

    __tablename__ = "notice_read"

    notice_id: int = Field(foreign_key="notice.id", primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", primary_key=True)
    read_at: datetime = Field(default_factory=utcnow)
