"""Per-tier queues: what my unit must act on, in tabs, sorted by deadline, with filters.

Tabs: triage (a community's new reports), decide (a community's accepted cases: handle them
itself or call its street up), calls (cases called up to a street, district or
city), orders (a department's work orders, lead or co-handling), handling (cases a tier unit
handles itself), verify (on-site check, call-back and closure), overdue and supervised (in my
area). Rows carry the reporter masked (王*, 138****5678), and no content of a restricted case
(its address, excerpt, call reason and reporter are withheld: they are read on the case page,
where the read is logged). Text search runs only over what the user may read.

A tab is walked in one order (``SORTS``); ``walk_ids`` gives the case page its 上一件 / 下一件
in that order, as filtered. A case waiting for the check and call-back has no deadline of the
rules; it should be checked within the severity's answer time from the moment it came back
(``check_due``), and the verify tab colours its rows by that (核查超时, never 超期: a case is
overdue only by the rule the overdue tab counts with, ``QueueRow.past_due``).

Each tab's set is defined once (``_tab_condition``, through the machine's groups); ``view``
counts every tab and lists one from that definition, with the same filters and the same
``now``, in one snapshot, so that a tab's count and its list always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta

from sqlalchemy import and_, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases import access
from lib.cases.access import case_scope, mask_name, mask_phone
from lib.cases.deadlines import (
    ANSWER_CALL,
    current_due_sql,
    due,
    is_past_due,
    overdue_open,
    status_by,
    status_of,
)
from lib.cases.models import Case, CaseEvent, WorkOrder
from lib.cases.orders import OPEN_ORDER
from lib.cases.states import CHECK, OPEN, TO_DECIDE, TO_TRIAGE, TRIAGE, Act, S
from lib.core.db import read_session
from lib.core.errors import PermissionDenied
from lib.core.inputs import clean_search
from lib.core.models import Category, UnitKind, utcnow
from lib.core.refcache import cached
from lib.core.workcal import CHINA_TZ
from lib.org import permissions
from lib.org.models import Unit
from lib.org.units import Actor

PAGE_SIZE = 50
TEXT_MAX = 100
EXCERPT = 40  # characters of the description a row shows
WALK_MAX = 1000  # how many cases of a tab 上一件 / 下一件 walk through
# The deadline that matters in the case's state (lib.cases.deadlines.current_due, in SQL).
DUE = current_due_sql()


def tabs_for(actor: Actor) -> list[str]:
    if actor.unit_kind == UnitKind.department:
        return ["orders", "overdue", "supervised"]
    if actor.unit_kind == UnitKind.community:
        return ["triage", "decide", "handling", "verify", "overdue", "supervised"]
    return ["calls", "handling", "verify", "overdue", "supervised"]


ACTION_TABS = ("triage", "decide", "calls", "orders", "handling", "verify")


def _tab_condition(actor: Actor, tab: str, now: datetime | None = None):  # noqa: ANN202
    """The one definition of a tab's set of cases at ``now``."""
    me = actor.unit_id
    now = now or utcnow()
    # A parked case comes back to be decided on its review date.
    review_due = (Case.state == S.parked) & (Case.review_at <= now)
    if tab == "triage":  # a community's new reports: accept, reject or merge
        return (Case.unit_id == me) & Case.state.in_(sorted(TO_TRIAGE))
    if tab == "decide":  # accepted by the community: handle it ourselves or call up
        return (Case.unit_id == me) & (Case.state.in_(sorted(TO_DECIDE)) | review_due)
    if tab == "calls":
        return (Case.unit_id == me) & (Case.state.in_(sorted(TRIAGE)) | review_due)
    if tab == "orders":
        return Case.id.in_(select(WorkOrder.case_id).where(WorkOrder.unit_id == me,
                                                           WorkOrder.state.in_(OPEN_ORDER)))
    if tab == "handling":
        return (Case.unit_id == me) & Case.state.in_([S.in_progress])
    if tab == "verify":
        return (Case.unit_id == me) & Case.state.in_(sorted(CHECK))
    open_states = sorted(OPEN)
    if tab == "overdue":
        # ``deadlines.overdue_open``: the rule of the row's 超期N小时 (``QueueRow.past_due``), so
        # a first load before the tick agrees.
        return and_(case_scope(actor, indexed=False), *overdue_open(now))
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


# How a tab may be sorted: by deadline (supervised first, then the nearest deadline, none
# last), newest or oldest report first, or most hurried first. Every order ends on the id, so
# a page and the walk of the case page agree.
SORTS = ("deadline", "newest", "oldest", "hurried")


def _order(sort: str) -> list:
    if sort == "newest":
        return [Case.reported_at.desc(), Case.id.desc()]
    if sort == "oldest":
        return [Case.reported_at, Case.id]
    if sort == "hurried":
        return [Case.hurry_count.desc(), DUE.is_(None), DUE, Case.reported_at, Case.id]
    return [Case.supervised.desc(), DUE.is_(None), DUE, Case.reported_at, Case.id]


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
        readable = access.content_readable(actor)
        conditions.append(or_(Case.code.like(pattern, escape="\\"),
                              readable & or_(Case.address.like(pattern, escape="\\"),
                                             Case.description.like(pattern, escape="\\"))))
    return conditions


def restricted_category_ids(session: Session) -> frozenset[int]:
    return cached(session, "restricted_categories", None, lambda: frozenset(session.exec(
        select(Category.id).where(Category.restricted.is_(True))).all()))


def tab_counts(session: Session, actor: Actor, filters: Filters = Filters(),
               now: datetime | None = None) -> list[tuple[str, int]]:
    """(tab, how many cases it lists with these filters at ``now``) for each of the user's tabs."""
    if not actor.has(*permissions.CASE_WORKERS):
        return []
    now = now or utcnow()
    extra = filter_conditions(actor, filters)
    return [(tab, session.exec(select(func.count()).select_from(Case)
                               .where(_tab_condition(actor, tab, now), *extra)).one())
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
    excerpt: str | None = None  # the description's start; None: withheld (restricted)
    reporter: str | None = None  # masked name and phone; None: anonymous, none, or withheld
    call_reason: str | None = None  # the note of the last call-up (呼叫理由)
    called_by_tick: bool = False  # the last call-up was the tick's (a deadline passed)
    check_due: datetime | None = None  # verify tab: check and call back by then

    def status(self, now: datetime) -> str | None:
        """The same deadline status the case page shows (lib.cases.deadlines.status_of); for a
        case back for the check, the status against ``check_due``."""
        if self.state in CHECK:
            return status_by(self.check_due, now)
        return status_of(self.state, self.due_at, self.overdue, now)

    def past_due(self, now: datetime) -> bool:
        """Overdue (超期) by the overdue tab's rule: marked by the tick, or the deadline that
        matters in its state has passed (``deadlines.is_past_due``; ``due_at`` is that one)."""
        return self.overdue or is_past_due(self.state, self.due_at, self.due_at, now)

    def deadline_at(self) -> datetime | None:
        return self.check_due if self.state in CHECK else self.due_at

    def time_left(self, now: datetime) -> tuple[str, int] | None:
        """("overdue_days" | "overdue_hours" | "left_days" | "left_hours", n) for the deadline
        that matters: 超期N天, 剩余N小时; None without one. Hours up to two days, then days.
        Overdue exactly when ``past_due``; a case back for the check past its ``check_due`` is
        "check_late_*" (核查超时), which marks nothing and is not in the overdue tab."""
        at = self.deadline_at()
        if at is None:
            return ("overdue_hours", 0) if self.overdue else None
        kind = "overdue" if self.past_due(now) else "check_late" if at < now else "left"
        span = at - now if kind == "left" else max(now - at, timedelta(0))
        if span >= timedelta(days=2):
            return f"{kind}_days", span.days
        return f"{kind}_hours", int(span.total_seconds() // 3600)

    def age(self, now: datetime) -> tuple[str, int]:
        """How long since the report: ("age_days", n) from a day on, else ("age_hours", n)."""
        span = now - self.reported_at
        if span >= timedelta(days=1):
            return "age_days", span.days
        return "age_hours", max(int(span.total_seconds() // 3600), 0)


def _conditions(actor: Actor, tab: str, filters: Filters, now: datetime | None = None) -> list:
    permissions.require(actor, permissions.CASE_WORKERS)
    if tab not in tabs_for(actor):
        raise PermissionDenied("error.forbidden")
    return [_tab_condition(actor, tab, now), *filter_conditions(actor, filters)]


def queue_rows(session: Session, actor: Actor, tab: str, filters: Filters = Filters(), *,
               page: int = 0, page_size: int = PAGE_SIZE, sort: str = "deadline",
               now: datetime | None = None) -> tuple[list[QueueRow], int]:
    """One page of a tab in the chosen order, and the tab's filtered total."""
    conditions = _conditions(actor, tab, filters, now)
    total = session.exec(select(func.count()).select_from(Case).where(*conditions)).one()
    return _page(session, conditions, page, page_size, sort), total


def _page(session: Session, conditions: list, page: int, page_size: int,
          sort: str) -> list[QueueRow]:
    rows = session.exec(
        select(Case.id, Case.code, Case.category_id, Case.subcategory_id, Case.community_id,
               Case.address, Case.severity, Case.state, DUE.label("due"), Case.overdue,
               Case.supervised, Case.reported_at, Case.version, Case.hurry_count,
               Case.extension_until.is_not(None), func.substr(Case.description, 1, EXCERPT + 1),
               Case.reporter_name, Case.reporter_phone, Case.anonymous, Case.updated_at)
        .where(*conditions)
        .order_by(*_order(sort if sort in SORTS else "deadline"))
        .offset(max(page, 0) * page_size).limit(page_size)).all()
    hidden = restricted_category_ids(session)
    out = []
    for row in rows:
        withheld = row[2] in hidden
        excerpt = row[15]
        if excerpt is not None and len(excerpt) > EXCERPT:
            excerpt = excerpt[:EXCERPT] + "…"
        reporter = None
        if not withheld and not row[18] and (row[16] or row[17]):
            reporter = " ".join(x for x in (mask_name(row[16]), mask_phone(row[17])) if x)
        check_due = due(session, row[6], ANSWER_CALL, row[19]) if row[7] in CHECK \
            else None
        out.append(QueueRow(*row[:5], None if withheld else row[5], *row[6:15],
                            excerpt=None if withheld else excerpt, reporter=reporter,
                            check_due=check_due))
    return _with_call_reasons(session, out, hidden)


def _with_call_reasons(session: Session, rows: list[QueueRow],
                       hidden: frozenset[int]) -> list[QueueRow]:
    """Each row with the note of its last call-up (呼叫理由), withheld on restricted cases."""
    ids = [r.id for r in rows]
    if not ids:
        return rows
    last: dict[int, tuple[str | None, dict | None]] = {}
    # By the case ids alone, the action tested here: on the action a planner may walk every
    # call-up of the district (ix_case_event_action_at) instead of these cases' few events.
    for case_id, action, note, detail in session.exec(
            select(CaseEvent.case_id, CaseEvent.action, CaseEvent.note, CaseEvent.detail)
            .where(CaseEvent.case_id.in_(ids)).order_by(CaseEvent.case_id, CaseEvent.seq)).all():
        if action == Act.call_up:
            last[case_id] = (note, detail)
    out = []
    for row in rows:
        if row.id not in last:
            out.append(row)
            continue
        note, detail = last[row.id]
        auto = bool(detail) and bool(detail.get("auto"))
        out.append(replace(row, call_reason=None if row.category_id in hidden else note,
                           called_by_tick=auto))
    return out


def walk_ids(session: Session, actor: Actor, tab: str, filters: Filters = Filters(), *,
             sort: str = "deadline", limit: int = WALK_MAX,
             now: datetime | None = None) -> list[int]:
    """The ids of a tab as filtered, in the page's order: what 上一件 / 下一件 walk."""
    conditions = _conditions(actor, tab, filters, now)
    return list(session.exec(select(Case.id).where(*conditions)
                             .order_by(*_order(sort if sort in SORTS else "deadline"))
                             .limit(limit)).all())


def neighbours(walk: list[int], case_id: int) -> tuple[int | None, int | None, int | None]:
    """(previous, next, position from 1) of ``case_id`` in a walk; position None if absent."""
    if case_id not in walk:
        return None, None, None
    at = walk.index(case_id)
    return (walk[at - 1] if at > 0 else None,
            walk[at + 1] if at + 1 < len(walk) else None, at + 1)


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


def month_start_china(now: datetime) -> datetime:
    """The first moment of ``now``'s month, China time (the home tile 本月办结 counts from it,
    and the ledger it opens filters from that day)."""
    local = now.astimezone(CHINA_TZ)
    return datetime.combine(local.date().replace(day=1), time(0), CHINA_TZ)


def waiting_counts(session: Session, actor: Actor, now: datetime | None = None) -> list[tuple[str, int]]:
    """The home page's tiles for this user: (catalog key, count), most urgent first."""
    if not permissions.reads_cases(actor):
        return []
    now = now or utcnow()
    open_states = sorted(OPEN)
    scope = case_scope(actor)
    tiles: list[tuple[str, int]] = [
        (f"queue.tab.{k}", n) for k, n in tab_counts(session, actor)
        if (k in ACTION_TABS and (n or k in ("triage", "calls", "orders"))) or (k == "supervised" and n)]
    tiles.append(("home.open_in_scope", _count(session, scope, Case.state.in_(open_states))))
    tiles.append(("home.overdue_in_scope", _count(session, case_scope(actor, indexed=False),
                                                  *overdue_open(now))))
    month_start = month_start_china(now)
    tiles.append(("home.closed_this_month", _count(session, scope,
                                                   Case.state == S.closed,
                                                   Case.closed_at >= month_start)))
    return tiles


# ---------------------------------------------------------------- what the pages read


@dataclass(frozen=True)
class View:
    """What the queue page draws: each tab's count and one page of the chosen tab, all read in
    one snapshot at one ``now`` from each tab's one definition, with the same filters: a tab's
    count is its list's total."""

    tabs: list[str]
    counts: dict[str, int]
    tab: str
    page: int  # the page drawn (back to the first when the one asked for has emptied)
    rows: list[QueueRow]
    names: dict[tuple[str, int], object]
    walk: list[int]  # the ids of the whole tab as filtered, in order (up to WALK_MAX)

    @property
    def total(self) -> int:
        return self.counts[self.tab]


def view(actor: Actor, tab: str, filters: Filters = Filters(), page: int = 0, *,
         sort: str = "deadline", engine: Engine | None = None,
         now: datetime | None = None) -> View:
    permissions.require(actor, permissions.CASE_WORKERS)
    tabs = tabs_for(actor)
    if tab not in tabs:
        raise PermissionDenied("error.forbidden")
    sort = sort if sort in SORTS else "deadline"
    now = now or utcnow()
    with read_session(engine, snapshot=True) as session:
        counts = dict(tab_counts(session, actor, filters, now))
        if max(page, 0) * PAGE_SIZE >= counts[tab]:
            page = 0
        conditions = _conditions(actor, tab, filters, now)
        rows = _page(session, conditions, page, PAGE_SIZE, sort)
        return View(tabs, counts, tab, page, rows, names_for(session, rows),
                    walk_ids(session, actor, tab, filters, sort=sort, now=now))


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
