"""The demo district: one account per role and tier, and a believable year of history.

History follows the case machine in ``lib.cases.machine`` move by move, so every generated case's
events agree with its state. Cases and events go in with bulk inserts in chunks, which makes a
million cases a matter of minutes.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone

from sqlalchemy import func, text
from sqlmodel import Session, select

from lib.cases.deadlines import HANDLE, close_time, due_by
from lib.cases.derive import derive
from lib.cases.intake import CODE_ALPHABET, CODE_LENGTH
from lib.cases.machine import next_state
from lib.cases.models import Case, CaseEvent
from lib.cases.places import place_key
from lib.cases.states import DROPPED, Act, S
from lib.core.clock import as_utc
from lib.core.models import (
    Category,
    CategoryDepartmentType,
    DeadlineRule,
    Rating,
    Subcategory,
    UnitKind,
    utcnow,
)
from lib.core.workcal import CLOSE_OF_DAY
from lib.org import auth, geo
from lib.org.models import Unit, User, UserRole

DEMO_PASSWORD = "Demo-2026!"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    display_name: str
    unit_code: str
    roles: tuple[str, ...]


# One account per role and tier. Units: 春熙路街道 (510104001) and its first community.
DEMO_ACCOUNTS = [
    DemoAccount("grid01", "王网格", "510104001001", ("grid_worker",)),
    DemoAccount("community01", "李社区", "510104001001", ("community_staff",)),
    DemoAccount("community_leader", "张书记", "510104001001", ("leader",)),
    DemoAccount("street01", "赵街道", "510104001", ("street_staff",)),
    DemoAccount("street_approver", "钱审核", "510104001", ("reward_approver",)),
    DemoAccount("street_leader", "孙主任", "510104001", ("leader",)),
    DemoAccount("dept_police", "周民警", "510104001-police", ("department_staff",)),
    DemoAccount("dept_fire", "吴消防", "510104-fire", ("department_staff",)),
    DemoAccount("district01", "郑区级", "510104", ("district_staff",)),
    DemoAccount("inspector01", "冯督查", "510104", ("inspector",)),
    DemoAccount("district_approver", "陈审批", "510104", ("reward_approver",)),
    DemoAccount("district_leader", "褚区长", "510104", ("leader",)),
    DemoAccount("district_privacy", "何保密", "510104", ("district_staff", "sensitive_viewer")),
    # Restricted tips (黄赌毒, special populations) go only to approvers who may read them.
    DemoAccount("vice_approver", "吕审批", "510104", ("reward_approver", "sensitive_viewer")),
    DemoAccount("vice_reviewer", "施复核", "510104", ("reward_approver", "sensitive_viewer")),
    DemoAccount("admin", "卫管理员", "510104", ("admin",)),
    DemoAccount("city01", "蒋市级", "510100", ("city_staff",)),
    DemoAccount("city_leader", "沈市长", "510100", ("leader",)),
]

ROLE_OF_KIND = {
    UnitKind.community: "community_staff",
    UnitKind.street: "street_staff",
    UnitKind.district: "district_staff",
    UnitKind.city: "city_staff",
    UnitKind.department: "department_staff",
}


def ensure_accounts(session: Session, password: str = DEMO_PASSWORD) -> int:
    """Create the demo accounts and one staff account per unit (``staff_<code>``) if missing.

    All demo accounts share one password hash: the demo must start fast.
    """
    password_hash = auth.hash_password(password)
    # The named accounts have phones (199…, a prefix the generated residents never use), so the
    # demo shows that a report from a staff phone earns no reward.
    phones = {a.username: f"199{i:08d}" for i, a in enumerate(DEMO_ACCOUNTS, start=1)}
    units = {u.code: u for u in session.exec(select(Unit)).all()}
    existing = set(session.exec(select(User.username)).all())
    wanted = list(DEMO_ACCOUNTS)
    for unit in units.values():
        wanted.append(DemoAccount(f"staff_{unit.code}".lower().replace("-", "_"),
                                  f"{unit.name_zh}工作人员", unit.code,
                                  (ROLE_OF_KIND[UnitKind(unit.kind)],)))
    created = 0
    for account in wanted:
        if account.username in existing or account.unit_code not in units:
            continue
        unit = units[account.unit_code]
        for role in account.roles:
            auth.check_role_fits_unit(role, unit)
        user = User(username=account.username, display_name=account.display_name,
                    unit_id=unit.id, password_hash=password_hash, phone=phones.get(account.username))
        session.add(user)
        session.flush()
        for role in account.roles:
            session.add(UserRole(user_id=user.id, role=role))
        created += 1
    session.flush()
    return created


# ---------------------------------------------------------------- history

# Relative weight of each category by month (1..12): fire and gas peak in winter,
# dogs and food in summer, the rest steady.
SEASONAL = {
    "fire": [1.6, 1.5, 1.2, 1.0, 0.8, 0.7, 0.7, 0.7, 0.8, 1.0, 1.3, 1.6],
    "gas": [1.5, 1.4, 1.1, 0.9, 0.7, 0.6, 0.6, 0.6, 0.7, 0.9, 1.2, 1.5],
    "dogs": [0.6, 0.6, 0.8, 1.0, 1.3, 1.5, 1.6, 1.5, 1.2, 1.0, 0.8, 0.6],
    "food_safety": [0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 1.6, 1.5, 1.2, 1.0, 0.8, 0.7],
    "illegal_construction": [0.7, 0.6, 1.0, 1.2, 1.3, 1.2, 1.1, 1.1, 1.2, 1.1, 0.9, 0.7],
}
BASE_WEIGHT = {
    "fire": 14, "power_telecom": 10, "gas": 7, "small_venues": 12, "change_of_use": 6,
    "illegal_construction": 10, "residential_security": 9, "food_safety": 8, "dogs": 10,
    "group_renting": 6, "vice": 2, "special_populations": 3,
}
RATINGS = [Rating.satisfied, Rating.basically_satisfied, Rating.dissatisfied]
SEVERITIES = (["general"] * 70) + (["major"] * 15) + (["urgent"] * 5) + (["complex"] * 10)
SOURCES = (["resident"] * 45) + (["grid_worker"] * 35) + (["staff"] * 5) + (["hotline"] * 10) + (
    ["inspection"] * 5)
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许"
            "韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢")
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红梅鑫波斌宇浩凯"
STREET_NAMES = ["红星", "东风", "新华", "人民", "光华", "锦华", "府河", "滨江"]
STREET_WORDS = ["东路", "西路", "南街", "北街", "巷", "路"]
# What residents say when not satisfied (the satisfaction page groups them by keywords).
DISSATISFIED = ["问题没有解决，还在漏", "处理太慢，拖了两个星期", "只是临时处理，过几天又坏了",
                "没人联系我，也没有回访", "工作人员态度不好，互相推诿", "处理很粗糙，不彻底",
                "下水道又堵了", "说好来修一直没人来", "不满意", "灯还是不亮"]
PLACES = ["号院", "号楼下", "号门口", "号小区南门", "号商铺", "号院内车棚", "号楼道"]


@dataclass
class _World:
    """Everything the generator needs, read once."""

    communities: list[Unit]
    parent: dict[int, int]
    categories: list[Category]
    subcategories: dict[int, list[int]]
    dept_types: dict[int, list[str]]
    departments: dict[tuple[int, str], int]  # (street or district id, dept type) -> unit id
    staff_of_unit: dict[int, int]
    rules: dict[str, DeadlineRule]
    place: dict[int, dict[str, int]] = field(default_factory=dict)
    shapes: dict[int, dict] = field(default_factory=dict)  # community id -> its boundary
    month_weights: list[list[float]] = field(default_factory=list)
    unit_of_user: dict[int, int] = field(default_factory=dict)  # the staff acting in the stories
    close: time = CLOSE_OF_DAY  # the close of a working day (deadline.close_of_day)


def _read_world(session: Session) -> _World:
    units = session.exec(select(Unit)).all()
    parent = {u.id: u.parent_id for u in units}
    communities = sorted((u for u in units if u.kind == UnitKind.community), key=lambda u: u.id)
    if not communities:
        raise RuntimeError("no communities: load the reference data first")
    departments = {(u.parent_id, u.dept_type): u.id for u in units if u.kind == UnitKind.department}
    categories = list(session.exec(select(Category).order_by(Category.sort)).all())
    subcategories: dict[int, list[int]] = {}
    for sub in session.exec(select(Subcategory)).all():
        subcategories.setdefault(sub.category_id, []).append(sub.id)
    dept_types: dict[int, list[str]] = {}
    for row in session.exec(select(CategoryDepartmentType)).all():
        types = dept_types.setdefault(row.category_id, [])
        (types.insert(0, row.dept_type) if row.is_lead else types.append(row.dept_type))
    staff_of_unit: dict[int, int] = {}
    for user_id, unit_id in session.exec(select(User.id, User.unit_id).order_by(User.id)).all():
        staff_of_unit.setdefault(unit_id, user_id)
    rules = {r.severity: r for r in session.exec(select(DeadlineRule)).all()}
    world = _World(communities, parent, categories, subcategories, dept_types,
                   departments, staff_of_unit, rules)
    world.unit_of_user = {user_id: unit_id for unit_id, user_id in staff_of_unit.items()}
    world.close = close_time(session)
    for month in range(12):
        weights = [BASE_WEIGHT.get(c.key, 5) * SEASONAL.get(c.key, [1.0] * 12)[month]
                   for c in categories]
        world.month_weights.append(list(itertools.accumulate(weights)))
    for community in communities:
        street = parent[community.id]
        district = parent[street]
        world.place[community.id] = {"community_id": community.id, "street_id": street,
                                     "district_id": district, "city_id": parent[district]}
    codes = {u.id: u.code for u in units}
    for district in {world.place[c.id]["district_id"] for c in communities}:
        try:
            found = geo.load_boundaries(codes[district])
        except ValueError:
            found = None
        features = {f["properties"]["code"]: f for f in (found or {}).get("features", [])}
        for community in communities:
            if community.code in features:
                world.shapes[community.id] = features[community.code]
    return world


class _Trail:
    """Builds one case's events, checking each move against the state machine."""

    def __init__(self, case_id: int, start: datetime) -> None:
        self.case_id = case_id
        self.events: list[dict] = []
        self.state: str | None = None
        self.unit: int | None = None
        self.at = start

    def move(self, action: str, actor: int | None, *, after: timedelta, to_unit: int | None = None,
             note: str | None = None, detail: dict | None = None) -> None:
        self.at = self.at + after
        to_state = next_state(action, self.state)
        to_unit = to_unit if to_unit is not None else self.unit
        self.events.append({
            "case_id": self.case_id, "seq": len(self.events) + 1, "action": action, "at": self.at,
            "actor_id": actor, "from_state": self.state, "to_state": to_state,
            "from_unit_id": self.unit, "to_unit_id": to_unit, "note": note,
            "detail": detail or None,  # written as JSON text by ``generate_cases``
        })
        self.state, self.unit = to_state, to_unit


def _hours(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(hours=rng.uniform(low, high))


def _pick_category(rng: random.Random, world: _World, month: int) -> Category:
    return rng.choices(world.categories, cum_weights=world.month_weights[month - 1])[0]


def _handler(world: _World, category: Category, street: int, district: int) -> int:
    for dept_type in world.dept_types.get(category.id, []):
        for owner in (street, district):
            if (owner, dept_type) in world.departments:
                return world.departments[(owner, dept_type)]
    return street


def _person(rng: random.Random) -> tuple[str, str]:
    name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
    phone = rng.choice(["138", "139", "135", "186", "159", "177", "133"]) + f"{rng.randrange(10**8):08d}"
    return name, phone


def _where(rng: random.Random, world: _World, community: Unit, source: str) -> dict:
    """An address (now and then one of the community's few trouble spots, so that places
    repeat) and, for grid workers, staff and inspectors on site and some residents, a map
    point inside the community."""
    if rng.random() < 0.08:
        spot = random.Random(f"{community.code}:{rng.randrange(3)}")
        address = f"{spot.choice(STREET_NAMES)}{spot.choice(STREET_WORDS)}{spot.randint(1, 300)}" \
            f"{spot.choice(PLACES)}"
    else:
        address = f"{rng.choice(STREET_NAMES)}{rng.choice(STREET_WORDS)}{rng.randint(1, 300)}" \
            f"{rng.choice(PLACES)}"
    latitude = longitude = None
    shape = world.shapes.get(community.id)
    if shape is not None and (source != "resident" or rng.random() < 0.4):
        longitude, latitude = geo.random_point(shape, rng)
    return {"address": address, "latitude": latitude, "longitude": longitude}


def _one_case(rng: random.Random, world: _World, case_id: int, reported_at: datetime,
              now: datetime, code: str, *, community: Unit | None = None,
              force_open: bool = False, fixed: dict | None = None) -> tuple[dict, list[dict]]:
    """One case's row and events. ``fixed``: what is given rather than drawn (``add_cases``):
    a category id, a resident's phone, an address; such a case is a named resident's report
    whose story runs to its close."""
    fixed = fixed or {}
    community = community or rng.choice(world.communities)
    place = world.place[community.id]
    category = _pick_category(rng, world, reported_at.month)
    if "category_id" in fixed:
        category = next(c for c in world.categories if c.id == fixed["category_id"])
    severity = rng.choice(SEVERITIES)
    source = "resident" if "phone" in fixed else rng.choice(SOURCES)
    subs = world.subcategories.get(category.id, [])
    anonymous = source == "resident" and (category.restricted or rng.random() < 0.1) \
        and "phone" not in fixed
    name, phone = _person(rng) if source in ("resident", "hotline") and not anonymous else (None, None)
    phone = fixed.get("phone") or phone
    staff = world.staff_of_unit
    c_id, s_id, d_id = place["community_id"], place["street_id"], place["district_id"]
    reporter = staff.get(c_id) if source in ("grid_worker", "staff") else None
    rule = world.rules[severity]
    where = _where(rng, world, community, source)
    if "address" in fixed:
        where = {"address": fixed["address"], "latitude": None, "longitude": None}

    trail = _Trail(case_id, reported_at)
    trail.move(Act.report, reporter, after=timedelta(0), to_unit=c_id)
    age_days = (now - reported_at).total_seconds() / 86400
    # How far the story has got: old cases are mostly closed, recent ones are under way.
    progress = min(1.0, age_days / 25.0)
    roll = rng.random()
    fate: str | None = S.closed  # where the story ends; None: it stops on the way
    if roll < 0.04:
        fate = S.rejected
    elif roll < 0.06:
        fate = S.merged
    elif force_open or rng.random() > progress * 0.97 + 0.02:
        fate = None
    if force_open:
        fate = None
    elif fixed:
        fate = S.closed

    def done() -> bool:
        return trail.at >= now or (fate is None and rng.random() < 0.22)

    if fate in DROPPED:
        trail.move(Act.reject if fate == S.rejected else Act.merge, staff.get(c_id),
                   after=_hours(rng, 0.2, 6),
                   note="重复或不属实" if fate == S.merged else "经核实不属于受理范围")
        row = _case_row(trail, category, subs, rng, severity, source, name, phone, anonymous,
                        reporter, place, code, reported_at, where=where)
        row.update(_derived(world, trail, row, now))
        return row, trail.events

    trail.move(Act.accept, staff.get(c_id), after=_hours(rng, 0.1, 6))
    reached = "community"
    tier_roll = rng.random()
    triage_unit = c_id

    # A community handles about half itself (小事不出村社) and calls its street for the rest;
    # departments are dispatched from the street up.
    if tier_roll < 0.48 and not done():
        trail.move(Act.call_up, staff.get(c_id), after=_hours(rng, 0.5, 24), to_unit=s_id,
                   note="社区无法解决，呼叫街道")
        reached, triage_unit = "street", s_id
        if tier_roll < 0.08 and not done():
            trail.move(Act.call_up, staff.get(s_id), after=_hours(rng, 1, 48), to_unit=d_id,
                       note="涉及多个部门，呼叫区级协调")
            reached, triage_unit = "district", d_id
            if tier_roll < 0.01 and not done():
                trail.move(Act.call_up, staff.get(d_id), after=_hours(rng, 2, 72),
                           to_unit=place["city_id"], note="需市级协调")
                reached, triage_unit = "city", place["city_id"]
    handle_due = None
    handler_unit = None
    if not done():
        if reached == "community":
            trail.move(Act.take, staff.get(c_id), after=_hours(rng, 0.1, 4))
            handler_unit = c_id
        else:
            dept = _handler(world, category, s_id, d_id)
            handler_unit = dept
            trail.move(Act.dispatch, staff.get(triage_unit), after=_hours(rng, 0.1, 8), to_unit=dept)
            if rng.random() < 0.03 and not done():
                trail.move(Act.give_back, staff.get(dept), after=_hours(rng, 1, 12), to_unit=triage_unit,
                           note="不属于本单位职责")
                trail.move(Act.dispatch, staff.get(triage_unit), after=_hours(rng, 0.5, 8), to_unit=dept)
            if not done():
                late_sign = rng.random() < 0.04
                trail.move(Act.acknowledge, staff.get(dept),
                           after=_hours(rng, 0.05, 30 if late_sign else 1.5))
            if not done() and trail.state == S.acknowledged:
                trail.move(Act.start, staff.get(dept), after=_hours(rng, 0.1, 6))
        dispatched_at = trail.at
        handle_due = due_by(rule, HANDLE, dispatched_at)  # how long the work may take
        hours_to_due = (handle_due - dispatched_at).total_seconds() / 3600
        late = rng.random() < 0.05
        work = _hours(rng, hours_to_due * 1.05, hours_to_due * 1.6) if late else \
            _hours(rng, min(1.0, hours_to_due * 0.1), hours_to_due * 0.85)
        if trail.state == S.in_progress and not done():
            trail.move(Act.handle, staff.get(handler_unit), after=work, to_unit=c_id)
            if rng.random() < 0.04 and not done():
                trail.move(Act.rework, staff.get(c_id), after=_hours(rng, 2, 24),
                           to_unit=handler_unit, note="整改不到位，返工")
                trail.move(Act.handle, staff.get(handler_unit), after=_hours(rng, 4, 48), to_unit=c_id)
            if not done():
                trail.move(Act.verify, staff.get(c_id), after=_hours(rng, 1, 24), to_unit=c_id)
    rating = None
    if trail.state == S.verified and not done():
        if name or phone:
            rating = rng.choices(RATINGS, weights=[85, 11, 4])[0]
            said = rng.choice(DISSATISFIED) if rating == Rating.dissatisfied else None
            trail.move(Act.feedback, staff.get(c_id), after=_hours(rng, 2, 48), note=said,
                       detail={"rating": rating})
            if rating == Rating.dissatisfied and not done():
                trail.move(Act.reopen, staff.get(c_id), after=_hours(rng, 0.5, 4),
                           to_unit=handler_unit, note=f"居民不满意：{said}")
                trail.move(Act.handle, staff.get(handler_unit), after=_hours(rng, 12, 96), to_unit=c_id)
                trail.move(Act.verify, staff.get(c_id), after=_hours(rng, 1, 24))
                rating = rng.choices(RATINGS, weights=[60, 30, 10])[0]
                said = rng.choice(DISSATISFIED) if rating == Rating.dissatisfied else None
                trail.move(Act.feedback, staff.get(c_id), after=_hours(rng, 2, 48), note=said,
                           detail={"rating": rating})
        if not done():
            trail.move(Act.close, staff.get(c_id), after=_hours(rng, 0.5, 24))
    if trail.at > now:
        # A story that would run into the future stops at its last event before now.
        while trail.events and trail.events[-1]["at"] > now and len(trail.events) > 1:
            trail.events.pop()
        last = trail.events[-1]
        trail.state, trail.unit, trail.at = last["to_state"], last["to_unit_id"], last["at"]
        if trail.state not in (S.feedback, S.closed):
            rating = None
    row = _case_row(trail, category, subs, rng, severity, source, name, phone, anonymous,
                    reporter, place, code, reported_at, rating=rating, where=where)
    row.update(_derived(world, trail, row, now))
    return row, trail.events


def _derived(world: _World, trail: _Trail, row: dict, now: datetime) -> dict:
    """Owner, handler, deadlines, overdue, first commitment, resolution, waits and work orders
    as the final trail leaves them: the events replayed by ``lib.cases.derive``, as the
    integrity check replays them."""
    d = derive(trail.events, place=row, severity=row["severity"], rules=world.rules, now=now,
               close=world.close, unit_of_user=world.unit_of_user, case_id=row["id"])
    return {"owner_id": d.owner_id, "handler_id": d.handler_id, "sign_due_at": d.sign_due_at,
            "handle_due_at": d.handle_due_at, "overdue": d.overdue,
            "committed_due_at": d.committed_due_at, "resolved_at": d.resolved_at,
            "reached_tier": d.reached_tier, "closed_at": d.closed_at,
            "closure_hours": d.closure_hours, "closure_workdays": d.closure_workdays,
            "_orders": d.orders, "_waits": d.waits}


def _case_row(trail: _Trail, category: Category, subs: list[int], rng: random.Random,
              severity: str, source: str, name: str | None, phone: str | None, anonymous: bool,
              reporter: int | None, place: dict[str, int], code: str, reported_at: datetime,
              *, rating: str | None = None, where: dict | None = None) -> dict:
    """The case row's own columns; what its events give comes from ``_derived``."""
    sub_id = rng.choice(subs) if subs else None
    address = where["address"]
    return {
        "id": trail.case_id, "code": code, "category_id": category.id, "subcategory_id": sub_id,
        "description": f"{category.name_zh}：{address}附近发现隐患，请尽快处理。",
        "address": address, "latitude": where["latitude"], "longitude": where["longitude"],
        "place_key": place_key(address), "severity": severity,
        "source": source, "reporter_name": name, "reporter_phone": phone,
        "anonymous": anonymous, "reported_by_id": reporter, "state": trail.state,
        **place, "unit_id": trail.unit, "supervised": False, "rating": rating,
        "reported_at": reported_at, "updated_at": trail.at,
        "version": len(trail.events), "event_seq": len(trail.events),
    }


def _codes(rng: random.Random, taken: set[str]) -> Iterator[str]:
    while True:
        code = "".join(rng.choices(CODE_ALPHABET, k=CODE_LENGTH))
        if code not in taken:
            taken.add(code)
            yield code


def generate_cases(session: Session, count: int, *, seed: int = 2019, now: datetime | None = None,
                   days: int = 365, chunk: int = 20_000,
                   progress: Callable[[int, int], None] | None = None,
                   community_code: str | None = None, force_open: bool = False) -> dict[str, int]:
    """Insert ``count`` cases reported over the last ``days`` days, with their events.

    ``community_code`` puts them all in one community; ``force_open`` leaves every story
    unfinished (the benchmark's community with a long queue).
    """
    rng = random.Random(seed)
    now = now or utcnow()
    world = _read_world(session)
    community = None
    if community_code is not None:
        community = next((c for c in world.communities if c.code == community_code), None)
        if community is None:
            raise ValueError(f"no community {community_code}")
    first_id = (session.exec(select(func.max(Case.id))).one() or 0) + 1
    first_event_id = (session.exec(select(func.max(CaseEvent.id))).one() or 0) + 1
    taken = set(session.exec(select(Case.code)).all())
    codes = _codes(rng, taken)
    span = days * 86400
    # Reports cluster in working hours: draw a day, then an hour of the day.
    offsets = sorted(rng.random() * span for _ in range(count))
    start = now - timedelta(days=days)
    made_cases = made_events = 0
    event_id = first_event_id
    conn = session.connection()
    for begin in range(0, count, chunk):
        made = []
        for i in range(begin, min(count, begin + chunk)):
            day_start = (start + timedelta(seconds=offsets[i])).replace(hour=0, minute=0, second=0,
                                                                       microsecond=0)
            hour = rng.choices(range(24), weights=_HOUR_WEIGHTS)[0]
            reported_at = day_start + timedelta(hours=hour, minutes=rng.randrange(60),
                                                seconds=rng.randrange(60))
            if reported_at >= now:
                reported_at = now - timedelta(minutes=rng.randrange(1, 600))
            made.append(_one_case(rng, world, first_id + i, reported_at, now, next(codes),
                                  community=community, force_open=force_open))
        event_id = _insert_cases(conn, made, event_id)
        made_cases += len(made)
        made_events += sum(len(events) for _row, events in made)
        if progress:
            progress(made_cases, count)
    _sequences(session)
    return {"cases": made_cases, "events": made_events}


def add_cases(session: Session, wanted: list[dict], *, seed: int = 2019,
              now: datetime | None = None) -> list[int]:
    """A few more closed resident reports, each told like any other, with what ``wanted`` fixes
    (``community_id``, ``reported_at``, and optionally ``category_id``, ``phone``, ``address``):
    the reward demo's patterns for an approver to notice. Their ids."""
    rng = random.Random(seed)
    now = now or utcnow()
    world = _read_world(session)
    communities = {c.id: c for c in world.communities}
    first_id = (session.exec(select(func.max(Case.id))).one() or 0) + 1
    event_id = (session.exec(select(func.max(CaseEvent.id))).one() or 0) + 1
    codes = _codes(rng, set(session.exec(select(Case.code)).all()))
    made = []
    for i, spec in enumerate(wanted):
        fixed = {k: spec[k] for k in ("category_id", "phone", "address") if k in spec}
        fixed.setdefault("phone", _person(rng)[1])
        made.append(_one_case(rng, world, first_id + i, as_utc(spec["reported_at"]), now,
                              next(codes), community=communities[spec["community_id"]],
                              fixed=fixed))
    _insert_cases(session.connection(), made, event_id)
    _sequences(session)
    return [row["id"] for row, _events in made]


def _insert_cases(conn, made: list[tuple[dict, list[dict]]], event_id: int) -> int:  # noqa: ANN001
    """Bulk-insert generated cases with their events, lead work orders and waits; returns the
    next event id."""
    case_rows, event_rows, order_rows, wait_rows = [], [], [], []
    for row, events in made:
        for event in events:
            event["id"] = event_id
            event_id += 1
            if event["detail"] is not None:
                # Straight to the driver (``_bulk_insert``): the facts as the JSON text the
                # column holds on SQLite, cast to jsonb by PostgreSQL.
                event["detail"] = json.dumps(event["detail"], ensure_ascii=False)
        order_rows.extend(row.pop("_orders"))
        wait_rows.extend(row.pop("_waits"))
        case_rows.append(row)
        event_rows.extend(events)
    _bulk_insert(conn, "case", case_rows)
    _bulk_insert(conn, "case_event", event_rows)
    _bulk_insert(conn, "work_order", order_rows)
    _bulk_insert(conn, "case_wait", wait_rows)
    return event_id


def _sequences(session: Session) -> None:
    """PostgreSQL: the id sequences after the rows inserted with their ids."""
    if session.get_bind().dialect.name == "postgresql":
        conn = session.connection()
        for table in ("case", "case_event", "work_order"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                              f"(SELECT COALESCE(MAX(id), 1) FROM \"{table}\"))"))


def _bulk_insert(conn, table: str, rows: list[dict]) -> None:  # noqa: ANN001
    """executemany straight to the driver: SQLAlchemy's per-value processing would double the time.

    Datetimes are aware UTC; SQLite gets them in the text form SQLAlchemy itself stores.
    """
    if not rows:
        return
    columns = list(rows[0])
    sqlite = conn.dialect.name == "sqlite"
    marker = "?" if sqlite else "%s"
    sql = (f'INSERT INTO "{table}" ({", ".join(columns)}) '
           f'VALUES ({", ".join([marker] * len(columns))})')
    if sqlite:
        def value(v):  # noqa: ANN001, ANN202
            return v.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f") \
                if isinstance(v, datetime) else v
        params = [tuple(value(row[c]) for c in columns) for row in rows]
    else:
        params = [tuple(row[c] for c in columns) for row in rows]
    conn.exec_driver_sql(sql, params)


# Reports by hour of day (China time is UTC+8; the weights are for UTC hours 0..23).
_HOUR_WEIGHTS = [9, 10, 10, 9, 8, 7, 8, 8, 9, 9, 8, 6, 4, 3, 2, 1, 1, 1, 1, 1, 2, 3, 5, 7]
