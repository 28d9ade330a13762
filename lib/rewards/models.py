"""The tables of discovery rewards: rules, policies, monthly pools and caps, claims, their
events and payouts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Index,
    Integer,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from lib.core.models import Facts, utcnow


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
