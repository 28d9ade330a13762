"""The schema's base and the tables of core: the metadata and its naming convention, the
shared vocabularies (tiers, unit kinds, roles, severities, sources, ratings), reference data
(categories, department types, deadlines), settings and throttle hits.

Each package owns its tables in its own ``models`` module (lib.org.models, lib.cases.models,
lib.rewards.models, lib.kpi.models) and imports only the tables of the packages below it;
``lib.schema`` imports them all, for Alembic and for reading the schema whole. Alembic
migrations in ``migrations/`` own the database; these classes describe it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Index,
    MetaData,
    UniqueConstraint,
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


class DeadlineRule(SQLModel, table=True):
    """Deadlines by severity (data/deadlines.json). Units: minutes, hours, working_days."""

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
