"""The reasons residents give when they are not satisfied, grouped by keywords
(``data/dissatisfaction_reasons.json``): the notes of every reopen (on the tracking page or
after a call-back) and of every call-back that recorded 不满意, in the period and the area.
Only the groups and their counts leave this module, never the notes: they may name people."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from sqlalchemy import and_, func, or_
from sqlmodel import Session, select

from lib.cases.models import Case, CaseEvent
from lib.cases.states import Act
from lib.core.config import DATA_DIR
from lib.core.models import Rating, UnitKind
from lib.core.workcal import CHINA_TZ
from lib.org.models import Unit

OTHER = "other"
# A call-back that heard 不满意: its event's facts say so (lib.cases.machine._feedback).
DISSATISFIED_FEEDBACK = and_(CaseEvent.action == Act.feedback,
                             CaseEvent.detail["rating"].as_string() == Rating.dissatisfied.value)


@dataclass(frozen=True)
class Group:
    key: str
    name_zh: str
    name_en: str
    count: int


@lru_cache(maxsize=1)
def groups_config() -> list[dict]:
    data = json.loads((DATA_DIR / "dissatisfaction_reasons.json").read_text(encoding="utf-8"))
    return [{**g, "keywords": [k.lower() for k in g["keywords"]]} for g in data["groups"]]


def group_of(note: str | None) -> str:
    """The key of the first group with a keyword in the note; ``other`` for none."""
    text = (note or "").lower()
    for group in groups_config():
        if any(keyword in text for keyword in group["keywords"]):
            return group["key"]
    return OTHER


def grouped(session: Session, scope: Unit, start: date, end: date,
            category_id: int | None = None) -> list[Group]:
    """Each group's count for the period, largest first (groups with none left out)."""
    first = datetime.combine(start, datetime.min.time(), CHINA_TZ)
    last = datetime.combine(end + timedelta(days=1), datetime.min.time(), CHINA_TZ)
    column = {UnitKind.community: Case.community_id, UnitKind.street: Case.street_id,
              UnitKind.district: Case.district_id, UnitKind.city: Case.city_id}[scope.kind]
    stmt = select(CaseEvent.note, func.count()).join(Case, Case.id == CaseEvent.case_id).where(
        or_(CaseEvent.action == Act.reopen,
            DISSATISFIED_FEEDBACK),
        CaseEvent.at >= first, CaseEvent.at < last, column == scope.id).group_by(CaseEvent.note)
    if category_id is not None:
        stmt = stmt.where(Case.category_id == category_id)
    counts: dict[str, int] = {}
    for note, count in session.exec(stmt).all():
        key = group_of(note)
        counts[key] = counts.get(key, 0) + count
    names = {g["key"]: g for g in groups_config()}
    out = [Group(key, names[key]["name_zh"] if key in names else "其他",
                 names[key]["name_en"] if key in names else "Other", count)
           for key, count in counts.items()]
    return sorted(out, key=lambda g: (-g.count, g.key == OTHER, g.key))
