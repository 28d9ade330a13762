"""Per-tier queues: what my unit must act on, in tabs, sorted by deadline, with filters.

Tabs: triage (a community's new reports), calls (cases called up to a street, district or
city), orders (a department's work orders, lead or co-handling), handling (cases a tier unit
handles itself), verify (on-site check, call-back and closure), overdue and supervised (in my
area). Rows carry no personal data, and no content of a restricted case (its address is
withheld: it is read on the case page, where the read is logged), so nothing needs masking
before it reaches a table. Text search runs only over what the user may read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case as when
from sqlalchemy import func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases.deadlines import HANDLE_STATES, SIGN_STATES, status_of
from lib.cases.machine import OPEN_STATES
from lib.cases.orders import OPEN_ORDER
from lib.core.db import read_session
from lib.core.errors import PermissionDenied
from lib.core.inputs import clean_search
from lib.core.models import Case, CaseState, Category, Unit, UnitKind, WorkOrder, utcnow
from lib.core.refcache import cached
from lib.org import permissions
from lib.org.units import Actor, case_scope

S = CaseState
PAGE_SIZE = 50
TEXT_MAX = 100
# The deadline that matters in the case's state (lib.cases.deadlines.current_due, in SQL).
DUE = when((Case.state.in_(SIGN_STATES) & Case.sign_due_at.is_not(None), Case.sign_due_at),
           (Case.state.in_(HANDLE_STATES), Case.handle_due_at), else_=None)


def tabs_for(actor: Actor) -> list[str]:
    if actor.unit_kind == UnitKind.department:
        return ["orders", "overdue", "supervised"]
    if actor.unit_kind == UnitKind.community:
        return ["triage", "handling", "verify", "overdue", "supervised"]
    return ["calls", "handling", "verify", "overdue", "supervised"]


ACTION_TABS = ("triage", "calls", "orders", "handling", "verify")


def _tab_condition(actor: Actor, tab: str):  # noqa: ANN202
    me = actor.unit_id
    if tab in ("triage", "calls"):
        # A parked case comes back here on its review date.
        review_due = (Case.state == S.parked) & (Case.review_at <= utcnow())
        return (Case.unit_id == me) & (Case.state.in_([S.reported, S.accepted]) | review_due)
    if tab == "orders":
        return Case.id.in_(select(WorkOrder.case_id).where(WorkOrder.unit_id == me,
                                                           WorkOrder.state.in_(OPEN_ORDER)))
    if tab == "handling":
        return (Case.unit_id == me) & Case.state.in_([S.in_progress])
    if tab == "verify":
        return (Case.unit_id == me) & Case.state.in_([S.handled, S.verified, S.feedback])
    open_states = sorted(OPEN_STATES)
    if tab == "overdue":
        return case_scope(actor, indexed=False) & (Case.overdue == True) & Case.state.in_(open_states)  # noqa: E712
    if tab == "supervised":
        return case_scope(actor, indexed=False) & (Case.supervised == True) \
            & Case.state.in_(open_states)  # noqa: E712
    raise ValueError(tab)


@dataclass(frozen=True)
class Filters:
    category_id: int | None = None
    community_id: int | None = None
    state: str | None = None
    severity: str | None = None
    text: str = ""


def like_pattern(text: str) -> str:
    """A LIKE pattern that matches ``text`` literally (``%`` and ``_`` are not wildcards)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def filter_conditions(actor: Actor, filters: Filters) -> list:
    """SQL conditions for the filters; the text matches the code always, the address and the
    description only where the actor may read the case's content."""
    conditions = []
    if filters.category_id is not None:
        conditions.append(Case.category_id == filters.category_id)
    if filters.community_id is not None:
        conditions.append(Case.community_id == filters.community_id)
    if filters.state:
        conditions.append(Case.state == filters.state)
    if filters.severity:
        conditions.append(Case.severity == filters.severity)
    text = clean_search(filters.text, max_len=TEXT_MAX)
    if text:
        pattern = like_pattern(text)
        readable = permissions.content_readable(actor)
        conditions.append(or_(Case.code.like(pattern, escape="\\"),
                              readable & or_(Case.address.like(pattern, escape="\\"),
                                             Case.description.like(pattern, escape="\\"))))
    return conditions


def restricted_category_ids(session: Session) -> frozenset[int]:
    return cached(session, "restricted_categories", None, lambda: frozenset(session.exec(
        select(Category.id).where(Category.restricted.is_(True))).all()))


def tab_counts(session: Session, actor: Actor) -> list[tuple[str, int]]:
    if not actor.has(*permissions.CASE_WORKERS):
        return []
    return [(tab, session.exec(select(func.count()).select_from(Case)
                               .where(_tab_condition(actor, tab))).one())
            for tab in tabs_for(actor)]


def waiting_total(session: Session, actor: Actor) -> int:
    """The number beside the queue in the menu: what waits in the action tabs."""
    return sum(n for tab, n in tab_counts(session, actor) if tab in ACTION_TABS)


@dataclass(frozen=True)
class QueueRow:
    id: int
    code: str
    category_id: int
    subcategory_id: int | None
    community_id: int
    address: str | None  # None: a restricted case, read on the case page
    severity: str
    state: str
    due_at: datetime | None
    overdue: bool
    supervised: bool
    reported_at: datetime
    version: int
    hurry_count: int = 0  # 催办 by the reporter
    extension_asked: bool = False  # a department asked for a later deadline (申请延期)

    def status(self, now: datetime) -> str | None:
        """The same deadline status the case page shows (lib.cases.deadlines.status_of)."""
        return status_of(self.state, self.due_at, self.overdue, now)


def queue_rows(session: Session, actor: Actor, tab: str, filters: Filters = Filters(), *,
               page: int = 0, page_size: int = PAGE_SIZE) -> tuple[list[QueueRow], int]:
    """One page of a tab, sorted by deadline (none last), and the tab's filtered total."""
    permissions.require(actor, permissions.CASE_WORKERS)
    if tab not in tabs_for(actor):
        raise PermissionDenied("error.forbidden")
    conditions = [_tab_condition(actor, tab), *filter_conditions(actor, filters)]
    total = session.exec(select(func.count()).select_from(Case).where(*conditions)).one()
    rows = session.exec(
        select(Case.id, Case.code, Case.category_id, Case.subcategory_id, Case.community_id,
               Case.address, Case.severity, Case.state, DUE.label("due"), Case.overdue,
               Case.supervised, Case.reported_at, Case.version, Case.hurry_count,
               Case.extension_until.is_not(None))
        .where(*conditions)
        .order_by(Case.supervised.desc(), DUE.is_(None), DUE, Case.reported_at)
        .offset(max(page, 0) * page_size).limit(page_size)).all()
    hidden = restricted_category_ids(session)
    return [QueueRow(*row[:5], None if row[2] in hidden else row[5], *row[6:]) for row in rows], \
        total


@dataclass(frozen=True)
class FilterOptions:
    categories: list
    communities: list


def filter_options(session: Session, actor: Actor) -> FilterOptions:
    categories = list(session.exec(select(Category).order_by(Category.sort)).all())
    if actor.unit_kind == UnitKind.department:
        communities: list = []
    else:
        communities = list(session.exec(select(Unit).where(
            Unit.kind == UnitKind.community,
            Unit.path.startswith(actor.unit_path, autoescape=True)).order_by(Unit.code)).all())
    return FilterOptions(categories, communities)


def names_for(session: Session, rows: list[QueueRow]) -> dict[tuple[str, int], object]:
    """Category and community rows for a page of queue rows, keyed ("category"|"unit", id)."""
    out: dict[tuple[str, int], object] = {}
    category_ids = {r.category_id for r in rows}
    unit_ids = {r.community_id for r in rows}
    if category_ids:
        for c in session.exec(select(Category).where(Category.id.in_(category_ids))).all():
            out[("category", c.id)] = c
    if unit_ids:
        for u in session.exec(select(Unit).where(Unit.id.in_(unit_ids))).all():
            out[("unit", u.id)] = u
    return out


# ---------------------------------------------------------------- what waits for me


def _count(session: Session, *conditions) -> int:  # noqa: ANN002
    return session.exec(select(func.count()).select_from(Case).where(*conditions)).one()


def waiting_counts(session: Session, actor: Actor, now: datetime | None = None) -> list[tuple[str, int]]:
    """The home page's tiles for this user: (catalog key, count), most urgent first."""
    if not permissions.reads_cases(actor):
        return []
    now = now or utcnow()
    open_states = sorted(OPEN_STATES)
    scope = case_scope(actor)
    tiles: list[tuple[str, int]] = [
        (f"queue.tab.{k}", n) for k, n in tab_counts(session, actor)
        if (k in ACTION_TABS and (n or k in ("triage", "calls", "orders"))) or (k == "supervised" and n)]
    tiles.append(("home.open_in_scope", _count(session, scope, Case.state.in_(open_states))))
    tiles.append(("home.overdue_in_scope", _count(session, case_scope(actor, indexed=False),
                                                  Case.overdue == True,  # noqa: E712
                                                  Case.state.in_(open_states))))
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    tiles.append(("home.closed_this_month", _count(session, scope,
                                                   Case.state == S.closed,
                                                   Case.closed_at >= month_start)))
    return tiles


# ---------------------------------------------------------------- what the pages read


@dataclass(frozen=True)
class Header:
    """The queue page's tabs with their counts, and the filters' choices."""

    tabs: list[str]
    counts: dict[str, int]
    options: FilterOptions


@dataclass(frozen=True)
class Listing:
    """One page of a tab: the rows, the filtered total, and the names the rows refer to."""

    rows: list[QueueRow]
    total: int
    names: dict[tuple[str, int], object]


def header(actor: Actor, engine: Engine | None = None) -> Header:
    permissions.require(actor, permissions.CASE_WORKERS)
    with read_session(engine) as session:
        return Header(tabs_for(actor), dict(tab_counts(session, actor)),
                      filter_options(session, actor))


def listing(actor: Actor, tab: str, filters: Filters = Filters(), page: int = 0,
            engine: Engine | None = None) -> Listing:
    with read_session(engine) as session:
        rows, total = queue_rows(session, actor, tab, filters, page=page)
        return Listing(rows, total, names_for(session, rows))


def options_for(actor: Actor, engine: Engine | None = None) -> FilterOptions:
    permissions.require(actor, permissions.CASE_READERS)
    with read_session(engine) as session:
        return filter_options(session, actor)


def home_tiles(actor: Actor, engine: Engine | None = None) -> list[tuple[str, int]]:
    with read_session(engine) as session:
        return waiting_counts(session, actor)


def menu_count(actor: Actor, engine: Engine | None = None) -> int:
    with read_session(engine) as session:
        return waiting_total(session, actor)
