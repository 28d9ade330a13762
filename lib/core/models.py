"""The whole schema in one place: org units, categories, deadlines, users, cases and the ledger.

Alembic migrations in ``migrations/`` own the database; these classes describe it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """Aware UTC; SQLModel stores it as UTC on both databases and returns it aware."""
    return datetime.now(timezone.utc)


FACTS_MAX = 1000  # characters of an event's facts written as JSON


class Facts(TypeDecorator):
    """An event's facts: a small JSON object, ``jsonb`` on PostgreSQL, JSON text on SQLite.
    Written as a dict, read back as a dict, queried by key (``detail["rating"].as_string()``).
    Anything but a dict, or facts longer than ``FACTS_MAX`` characters as JSON, is refused
    before it reaches the database: facts are a few keys, never a document."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect):  # noqa: ANN001, ANN201
        # None is SQL NULL (no facts), never the JSON text 'null'.
        kind = JSONB if dialect.name == "postgresql" else JSON
        return dialect.type_descriptor(kind(none_as_null=True))

    def process_bind_param(self, value: Any, dialect) -> Any:  # noqa: ANN001
        if value is None:
            return None
        if not isinstance(value, dict):
            raise TypeError(f"event facts are a dict, not {type(value).__name__}")
        if len(json.dumps(value, ensure_ascii=False)) > FACTS_MAX:
            raise ValueError(f"event facts longer than {FACTS_MAX} characters as JSON")
        return value


class Tier(StrEnum):
    city = "city"
    district = "district"
    street = "street"
    community = "community"


TIER_ORDER = [Tier.community, Tier.street, Tier.district, Tier.city]


class UnitKind(StrEnum):
    city = "city"
    district = "district"
    street = "street"
    community = "community"
    department = "department"


class Role(StrEnum):
    grid_worker = "grid_worker"
    community_staff = "community_staff"
    street_staff = "street_staff"
    department_staff = "department_staff"
    district_staff = "district_staff"
    city_staff = "city_staff"
    inspector = "inspector"
    reward_approver = "reward_approver"
    leader = "leader"
    admin = "admin"
    # District staff with the explicit permission to see reporters of restricted categories.
    sensitive_viewer = "sensitive_viewer"


class Severity(StrEnum):
    urgent = "urgent"
    major = "major"
    general = "general"
    complex = "complex"


class Source(StrEnum):
    resident = "resident"
    grid_worker = "grid_worker"
    staff = "staff"
    hotline = "hotline"
    inspection = "inspection"


class Rating(StrEnum):
    satisfied = "satisfied"
    basically_satisfied = "basically_satisfied"
    dissatisfied = "dissatisfied"


# ---------------------------------------------------------------- org and reference data


class Unit(SQLModel, table=True):
    """An org unit: city, district, street, community (the four tiers) or a department.

    ``path`` is the chain of ancestor ids, e.g. ``/1/2/9/``, for subtree look-ups.
    A department's ``tier`` is the tier of the unit it is attached to.
    """

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True)
    kind: str = Field(max_length=16)
    tier: str = Field(max_length=16)
    parent_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    path: str = Field(default="", max_length=200, index=True)
    name_zh: str = Field(max_length=100)
    name_en: str = Field(max_length=100)
    dept_type: str | None = Field(default=None, max_length=40, foreign_key="department_type.key")
    active: bool = True


class DepartmentType(SQLModel, table=True):
    __tablename__ = "department_type"

    key: str = Field(primary_key=True, max_length=40)
    name_zh: str = Field(max_length=100)
    name_en: str = Field(max_length=100)


class Category(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=40, unique=True)
    name_zh: str = Field(max_length=100)
    name_en: str = Field(max_length=100)
    sort: int = 0
    restricted: bool = False
    allow_anonymous: bool = False
    lead_dept_type: str | None = Field(default=None, max_length=40, foreign_key="department_type.key")
    active: bool = True


class Subcategory(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("category_id", "key", name="uq_subcategory_category_key"),)

    id: int | None = Field(default=None, primary_key=True)
    category_id: int = Field(foreign_key="category.id", index=True)
    key: str = Field(max_length=40)
    name_zh: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    sort: int = 0
    active: bool = True


class CategoryDepartmentType(SQLModel, table=True):
    """Which department types own a category; ``is_lead`` marks the default lead (主办)."""

    __tablename__ = "category_department_type"

    category_id: int = Field(foreign_key="category.id", primary_key=True)
    dept_type: str = Field(foreign_key="department_type.key", primary_key=True, max_length=40)
    is_lead: bool = False


class DepartmentCategory(SQLModel, table=True):
    """The categories one department unit handles."""

    __tablename__ = "department_category"

    unit_id: int = Field(foreign_key="unit.id", primary_key=True)
    category_id: int = Field(foreign_key="category.id", primary_key=True)


class DeadlineRule(SQLModel, table=True):
    """Deadlines by severity (domain.md §3). Units: minutes, hours, working_days."""

    __tablename__ = "deadline_rule"

    severity: str = Field(primary_key=True, max_length=16)
    name_zh: str = Field(max_length=20)
    name_en: str = Field(max_length=20)
    sort: int = 0
    sign_for_value: int
    sign_for_unit: str = Field(max_length=16)
    handle_value: int
    handle_unit: str = Field(max_length=16)
    answer_call_value: int
    answer_call_unit: str = Field(max_length=16)


class Setting(SQLModel, table=True):
    key: str = Field(primary_key=True, max_length=60)
    value: str = Field(max_length=2000)


# ---------------------------------------------------------------- people


class User(SQLModel, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=40, unique=True)
    display_name: str = Field(max_length=60)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    phone: str | None = Field(default=None, max_length=20)
    password_hash: str = Field(max_length=200)
    active: bool = True
    # Sessions and cookies issued before this moment no longer log in (logout, password change).
    tokens_valid_after: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)


class UserRole(SQLModel, table=True):
    __tablename__ = "user_role"

    user_id: int = Field(foreign_key="app_user.id", primary_key=True)
    role: str = Field(primary_key=True, max_length=30)


class ThrottleHit(SQLModel, table=True):
    """One counted attempt against a throttle (lib/core/throttle.py): a login, a public report,
    a tracking proof, an SMS code asked for. ``key`` names what is limited ("addr:203.0.113.7",
    "phone:138…", "pair:admin|…"); a hit stops counting when it leaves the window or when the
    attempt succeeded (``counted`` false: the app's role may UPDATE, never DELETE)."""

    __tablename__ = "throttle_hit"
    __table_args__ = (Index("ix_throttle_hit_kind_key_at", "kind", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # login, intake, track, reporter_code
    key: str = Field(max_length=128)
    at: datetime = Field(default_factory=utcnow)
    counted: bool = True


# ---------------------------------------------------------------- cases and the ledger


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


FINAL_STATES = {CaseState.rejected, CaseState.merged, CaseState.closed}

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


# ---------------------------------------------------------------- discovery rewards (问题发现奖励)


class RewardRule(SQLModel, table=True):
    """How much a valid first report earns, by category and severity (None: any). A change is a
    new row: the old one gets ``valid_to``; a claim keeps the rule it was priced by."""

    __tablename__ = "reward_rule"
    __table_args__ = (Index("ix_reward_rule_lookup", "category_id", "severity", "valid_to"),)

    id: int | None = Field(default=None, primary_key=True)
    category_id: int | None = Field(default=None, foreign_key="category.id")
    severity: str | None = Field(default=None, max_length=16)
    amount_fen: int
    valid_from: datetime = Field(default_factory=utcnow)
    valid_to: datetime | None = None
    set_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    note: str | None = Field(default=None, max_length=200)


class RewardPolicy(SQLModel, table=True):
    """Pools, caps, the second-approval threshold, the claim window and payment methods. A
    change is a new row (the old one gets ``valid_to``), recorded with who made it."""

    __tablename__ = "reward_policy"

    id: int | None = Field(default=None, primary_key=True)
    street_pool_fen: int
    district_pool_fen: int
    reporter_cap_fen: int
    second_approval_above_fen: int
    claim_window_days: int
    methods: str = Field(max_length=200)  # comma-separated: bank,cash,points
    valid_from: datetime = Field(default_factory=utcnow)
    valid_to: datetime | None = None
    set_by_id: int | None = Field(default=None, foreign_key="app_user.id")


class RewardPool(SQLModel, table=True):
    """A month's reward budget of one unit (a street, or the district for large awards).
    ``committed`` only grows by an UPDATE that checks the budget, and the database refuses a
    negative or overdrawn pool."""

    __tablename__ = "reward_pool"
    __table_args__ = (
        UniqueConstraint("unit_id", "month", name="uq_reward_pool_unit_id_month"),
        CheckConstraint("committed_fen >= 0 AND committed_fen <= budget_fen", name="within_budget"),
    )

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id")
    month: str = Field(max_length=7)  # YYYY-MM, China time
    budget_fen: int
    committed_fen: int = 0


class RewardCapUse(SQLModel, table=True):
    """What one reporter was awarded under the monthly cap in one month (China time). ``used``
    only grows by an UPDATE that checks the cap, like a pool: two approvers at once cannot
    both pass it."""

    __tablename__ = "reward_cap_use"
    __table_args__ = (
        UniqueConstraint("reporter_key", "month", name="uq_reward_cap_use_reporter_key_month"),
        CheckConstraint("used_fen >= 0", name="not_negative"),
    )

    id: int | None = Field(default=None, primary_key=True)
    reporter_key: str = Field(max_length=40)  # as on the claim: the phone, or "code:<case code>"
    month: str = Field(max_length=7)  # YYYY-MM, China time
    used_fen: int = 0


class ClaimState(StrEnum):
    eligible = "eligible"  # the reporter may claim it until the window closes
    pending = "pending"  # claimed, waiting for an approver
    approved_once = "approved_once"  # above the threshold: waiting for a second approver
    approved = "approved"
    paid = "paid"
    rejected = "rejected"
    expired = "expired"
    ineligible = "ineligible"  # never claimable; ``reason`` says why


_claim_version = Column("version", Integer, nullable=False, default=1)


class RewardClaim(SQLModel, table=True):
    """A discovery reward for one case's first reporter (one claim per case)."""

    __tablename__ = "reward_claim"
    __table_args__ = (
        Index("ix_reward_claim_street_state", "street_id", "state", "created_at"),
        Index("ix_reward_claim_district_state", "district_id", "state", "created_at"),
        Index("ix_reward_claim_reporter", "reporter_key", "state"),
        # The assessment pages' reward figures of a district's month, from the index alone.
        Index("ix_reward_claim_month", "district_id", "created_at", "street_id", "community_id",
              "category_id", "state", "amount_fen"),
    )
    __mapper_args__ = {"version_id_col": _claim_version}

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", unique=True)
    reporter_key: str = Field(max_length=40)  # the phone, or "code:<case code>" without one
    reporter_phone: str | None = Field(default=None, max_length=20)
    community_id: int = Field(foreign_key="unit.id")
    street_id: int = Field(foreign_key="unit.id")
    district_id: int = Field(foreign_key="unit.id")
    category_id: int = Field(foreign_key="category.id")
    amount_fen: int = 0
    rule_id: int | None = Field(default=None, foreign_key="reward_rule.id")
    policy_id: int | None = Field(default=None, foreign_key="reward_policy.id")
    state: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=40)  # why ineligible or rejected
    window_ends_at: datetime | None = None
    method: str | None = Field(default=None, max_length=16)
    payment_detail: str | None = Field(default=None, max_length=100)  # personal data
    first_approver_id: int | None = Field(default=None, foreign_key="app_user.id")
    second_approver_id: int | None = Field(default=None, foreign_key="app_user.id")
    pool_id: int | None = Field(default=None, foreign_key="reward_pool.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    event_seq: int = 0
    version: int = Field(default=1, sa_column=_claim_version)


class RewardEvent(SQLModel, table=True):
    """One move of a claim: append-only like the case ledger."""

    __tablename__ = "reward_event"
    __table_args__ = (UniqueConstraint("claim_id", "seq", name="uq_reward_event_claim_id_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="reward_claim.id", index=True)
    seq: int
    action: str = Field(max_length=24)
    at: datetime = Field(default_factory=utcnow)
    actor_id: int | None = Field(default=None, foreign_key="app_user.id")
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str = Field(max_length=16)
    note: str | None = Field(default=None, max_length=1000)
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(Facts, nullable=True))


class RewardPayout(SQLModel, table=True):
    """How, when and by whom a claim was paid: exactly one per paid claim."""

    __tablename__ = "reward_payout"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="reward_claim.id", unique=True)
    amount_fen: int
    method: str = Field(max_length=16)
    reference: str | None = Field(default=None, max_length=60)
    paid_at: datetime = Field(default_factory=utcnow)
    paid_by_id: int = Field(foreign_key="app_user.id")


# ---------------------------------------------------------------- KPI roll-ups (考核)

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
    closed_on_time: int = 0  # of those, closed before their handling deadline
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
    rated: int = 0  # of those closed, rated by the reporter
    satisfied: int = 0
    basic: int = 0  # 基本满意
    dissatisfied: int = 0
    dispatched: int = 0  # lead work orders made this day
    signed_on_time: int = 0  # of those, signed for within the limit (响应)
    returned: int = 0  # of those, returned (退单)
    late: int = 0  # of those, handled after the deadline, or still open past it
    due: int = 0  # cases whose handling deadline falls this day
    resolved: int = 0  # of those, handled and verified (解决)
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


# ---------------------------------------------------------------- notices (通知)


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
