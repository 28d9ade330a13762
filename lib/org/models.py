"""The tables of the org: units (the four tiers and departments), users and their roles, and
which categories a department handles."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from lib.core.models import utcnow


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


class DepartmentCategory(SQLModel, table=True):
    """The categories one department unit handles."""

    __tablename__ = "department_category"

    unit_id: int = Field(foreign_key="unit.id", primary_key=True)
    category_id: int = Field(foreign_key="category.id", primary_key=True)



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
