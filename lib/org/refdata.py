"""Reference data from ``data/``: department types, categories, deadlines, org units.

Loading is idempotent: rows are matched by their key or code and updated in place, so the
files can be edited and loaded again without duplicates or lost ids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.core.config import DATA_DIR
from lib.core.db import read_session
from lib.core.models import (
    Category,
    CategoryDepartmentType,
    DeadlineRule,
    DepartmentType,
    Subcategory,
    UnitKind,
)
from lib.core.refcache import clear
from lib.core.settings import load_defaults
from lib.org.models import DepartmentCategory, Unit

TIER_OF_KIND = {"city": "city", "district": "district", "street": "street", "community": "community"}


def _read(name: str, data_dir: Path) -> Any:
    return json.loads((data_dir / name).read_text(encoding="utf-8"))


def load_all(session: Session, data_dir: Path = DATA_DIR) -> dict[str, int]:
    """Load every reference file; returns how many rows of each kind the files hold."""
    counts = {
        "department_types": load_department_types(session, _read("department_types.json", data_dir)),
        "categories": load_categories(session, _read("categories.json", data_dir)),
        "deadlines": load_deadlines(session, _read("deadlines.json", data_dir)),
        "units": load_units(session, _read("org_units.json", data_dir)),
    }
    link_departments_to_categories(session)
    counts["settings"] = load_defaults(session)
    clear()
    return counts


def _upsert(session: Session, model: type, match: dict[str, Any], values: dict[str, Any]):  # noqa: ANN202
    stmt = select(model)
    for column, value in match.items():
        stmt = stmt.where(getattr(model, column) == value)
    row = session.exec(stmt).first()
    if row is None:
        row = model(**match, **values)
    else:
        for column, value in values.items():
            setattr(row, column, value)
    session.add(row)
    session.flush()
    return row


def load_department_types(session: Session, rows: list[dict[str, str]]) -> int:
    for row in rows:
        _upsert(session, DepartmentType, {"key": row["key"]},
                {"name_zh": row["name_zh"], "name_en": row["name_en"]})
    return len(rows)


def load_categories(session: Session, rows: list[dict[str, Any]]) -> int:
    for sort, row in enumerate(rows, start=1):
        departments = row.get("departments", [])
        category = _upsert(session, Category, {"key": row["key"]}, {
            "name_zh": row["name_zh"], "name_en": row["name_en"], "sort": sort,
            "restricted": bool(row.get("restricted", False)),
            "allow_anonymous": bool(row.get("allow_anonymous", row.get("restricted", False))),
            "lead_dept_type": departments[0] if departments else None,
        })
        for sub_sort, sub in enumerate(row.get("subcategories", []), start=1):
            _upsert(session, Subcategory, {"category_id": category.id, "key": sub["key"]},
                    {"name_zh": sub["name_zh"], "name_en": sub["name_en"], "sort": sub_sort})
        for position, dept_type in enumerate(departments):
            _upsert(session, CategoryDepartmentType,
                    {"category_id": category.id, "dept_type": dept_type}, {"is_lead": position == 0})
    return len(rows)


def load_deadlines(session: Session, rows: list[dict[str, Any]]) -> int:
    for sort, row in enumerate(rows, start=1):
        _upsert(session, DeadlineRule, {"severity": row["severity"]}, {
            "name_zh": row["name_zh"], "name_en": row["name_en"], "sort": sort,
            "sign_for_value": row["sign_for"]["value"], "sign_for_unit": row["sign_for"]["unit"],
            "handle_value": row["handle"]["value"], "handle_unit": row["handle"]["unit"],
            "answer_call_value": row["answer_call"]["value"],
            "answer_call_unit": row["answer_call"]["unit"],
        })
    return len(rows)


def load_units(session: Session, tree: dict[str, Any]) -> int:
    return _load_unit(session, tree, parent=None)


def _load_unit(session: Session, node: dict[str, Any], parent: Unit | None) -> int:
    kind = UnitKind(node["kind"])
    if kind == UnitKind.department:
        if parent is None:
            raise ValueError(f"department {node['code']} needs a parent unit")
        tier = parent.tier
    else:
        tier = TIER_OF_KIND[kind]
    unit = _upsert(session, Unit, {"code": node["code"]}, {
        "kind": kind.value, "tier": tier, "parent_id": parent.id if parent else None,
        "name_zh": node["name_zh"], "name_en": node["name_en"],
        "dept_type": node.get("dept_type"),
    })
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    session.add(unit)
    count = 1
    for child in node.get("children", []):
        count += _load_unit(session, child, unit)
    return count


def link_departments_to_categories(session: Session) -> None:
    """Give each department the categories its type owns, unless it already has some."""
    owners = session.exec(select(CategoryDepartmentType)).all()
    categories_of_type: dict[str, list[int]] = {}
    for owner in owners:
        categories_of_type.setdefault(owner.dept_type, []).append(owner.category_id)
    linked = {row.unit_id for row in session.exec(select(DepartmentCategory)).all()}
    departments = session.exec(select(Unit).where(Unit.kind == UnitKind.department)).all()
    for dept in departments:
        if dept.id in linked:
            continue
        for category_id in categories_of_type.get(dept.dept_type or "", []):
            session.add(DepartmentCategory(unit_id=dept.id, category_id=category_id))
    session.flush()


def category_overview(session: Session) -> list[dict[str, Any]]:
    """Every category with its subcategories and owning department types, in order."""
    categories = session.exec(select(Category).order_by(Category.sort)).all()
    subs = session.exec(select(Subcategory).order_by(Subcategory.sort)).all()
    owners = session.exec(select(CategoryDepartmentType)).all()
    types = {d.key: d for d in session.exec(select(DepartmentType)).all()}
    result = []
    for category in categories:
        owning = sorted((o for o in owners if o.category_id == category.id),
                        key=lambda o: not o.is_lead)
        result.append({
            "category": category,
            "subcategories": [s for s in subs if s.category_id == category.id],
            "departments": [(types[o.dept_type], o.is_lead) for o in owning if o.dept_type in types],
        })
    return result


def deadline_rules(session: Session) -> list[DeadlineRule]:
    return list(session.exec(select(DeadlineRule).order_by(DeadlineRule.sort)).all())


def categories_screen(engine: Engine | None = None) -> tuple[list[dict[str, Any]], list[DeadlineRule]]:
    """The categories page: every category with its owners, and the deadline rules."""
    with read_session(engine) as session:
        return category_overview(session), deadline_rules(session)
