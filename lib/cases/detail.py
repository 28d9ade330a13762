"""Reading a case (the case page and the ledger's record): its facts, content and reporter as
this user may see them, its timeline, work orders, deadline, likely duplicates and the moves this
user may make; and the case page's moves with what each did, in words (``make_move``,
``sign_and_start``), and where the clerk's queue stands afterwards (``walk_after``).

Every change to a case writes exactly one ``CaseEvent``; the case's ``state`` is always the
``to_state`` of its last event, which ``ledger_mismatches`` checks for the whole database.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases import access, queue, timeline
from lib.cases.access import can_see
from lib.cases.deadlines import current_due, deadline_status, status_by
from lib.cases.intake import distance_m, find_duplicates
from lib.cases.machine import CASES, act, act_on, allowed_actions
from lib.cases.models import Attachment, Case, CaseEvent, WorkOrder, WorkOrderState
from lib.cases.orders import dispatch_targets, orders_of
from lib.cases.states import OPEN, ORDER_OPEN, Act, S
from lib.core import i18n
from lib.core.clock import china_time
from lib.core.db import read_session, write_session
from lib.core.errors import NotFound
from lib.core.inputs import parse_id
from lib.core.machine import Move, move, note
from lib.core.models import Category, Subcategory, UnitKind, utcnow
from lib.core.settings import get_int
from lib.org import permissions
from lib.org.models import Unit, User
from lib.org.units import Actor

MERGE_LOOK = 200  # recent open cases of the community weighed for the merge list
EXCERPT = 24  # characters of another case's description in the merge list and duplicate hint
DUPLICATES_SHOWN = 5


def get_case(session: Session, actor: Actor, case_id: object) -> Case:
    """The case, if ``actor`` may read cases and it lies in their area."""
    permissions.require(actor, permissions.CASE_READERS)
    case = session.get(Case, parse_id(case_id))
    if case is None or not can_see(session, actor, case):
        raise NotFound("error.case_not_found")
    return case


def events_of(session: Session, case_id: int) -> list[CaseEvent]:
    return list(session.exec(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)).all())


def attachments_of(session: Session, case_id: int) -> list[Attachment]:
    return list(session.exec(select(Attachment).where(Attachment.case_id == case_id)
                             .order_by(Attachment.id)).all())


def ledger_mismatches(session: Session, limit: int = 20) -> list[int]:
    """Ids of cases whose state differs from their last event's ``to_state`` (should be none)."""
    last_seq = (select(CaseEvent.case_id, func.max(CaseEvent.seq).label("seq"))
                .group_by(CaseEvent.case_id).subquery())
    last = (select(CaseEvent.case_id, CaseEvent.to_state)
            .join(last_seq, (CaseEvent.case_id == last_seq.c.case_id)
                  & (CaseEvent.seq == last_seq.c.seq)).subquery())
    rows = session.exec(
        select(Case.id).outerjoin(last, last.c.case_id == Case.id)
        .where((last.c.to_state.is_(None)) | (last.c.to_state != Case.state)).limit(limit)
    ).all()
    return list(rows)



# ---------------------------------------------------------------- the case page


@dataclass(frozen=True)
class EventView:
    """One line of a case's timeline as this user may read it (``note`` None when hidden)."""

    seq: int
    action: str
    at: datetime
    actor_id: int | None
    from_state: str | None
    to_state: str
    from_unit_id: int | None
    to_unit_id: int | None
    note: str | None
    detail: dict | None  # the move's facts
    note_hidden: bool = False

    @property
    def line(self) -> timeline.Line:
        """The event in words, as the case page shows it."""
        return timeline.staff_line(self.at, self.action, self.detail, self.note, self.note_hidden)


@dataclass(frozen=True)
class OrderDue:
    """The deadline of the actor's own work order that runs now: "sign_due" or "handle_due"."""

    kind: str
    at: datetime | None
    status: str | None


@dataclass(frozen=True)
class LikelyDuplicate:
    """An open case of the same category close by (within the duplicate radius on the map, or
    at the same address written the same way), which this user may read."""

    id: int
    code: str
    reported_at: datetime
    excerpt: str
    metres: int | None
    same_address: bool
    restricted: bool = False  # its listing is a read of restricted content: logged


@dataclass
class CaseDetail:
    case: Case
    category: Category
    subcategory: Subcategory | None
    units: dict[int, Unit]
    content: access.Content  # description, address, point: withheld when not readable
    reporter: access.Reporter
    restricted: bool
    events: list[EventView]
    actor_names: dict[int, str]
    photos: list[Attachment]
    orders: list  # WorkOrder rows
    actions: list[str]  # the moves this user may make now, expected next steps first
    options: dict[str, list]  # field name → the rows its widget offers (units, cases, categories)
    deadline: datetime | None
    status: str | None
    # The actor's own open work order: its sign-for deadline while it waits to be signed, then
    # its handling deadline (None when the actor holds no open order on the case).
    order_due: OrderDue | None = None
    quick: Move | None = None  # a form that makes two moves at once (签收并开始处置), offered first
    duplicates: list[LikelyDuplicate] = field(default_factory=list)

    @property
    def description(self) -> str | None:
        return self.content.description


def _case_detail(session: Session, actor: Actor, case_id: int, now: datetime) -> CaseDetail:
    case = get_case(session, actor, case_id)
    category = session.get(Category, case.category_id)
    restricted = bool(category.restricted)
    content = access.content_for(session, actor, case)
    events = [EventView(e.seq, e.action, e.at, e.actor_id, e.from_state, e.to_state,
                        e.from_unit_id, e.to_unit_id,
                        e.note if content.readable else None, e.detail,
                        note_hidden=bool(e.note) and not content.readable)
              for e in events_of(session, case.id)]
    orders = orders_of(session, case.id)
    unit_ids = {case.community_id, case.street_id, case.district_id, case.city_id, case.unit_id,
                case.owner_id, case.handler_id} | {o.unit_id for o in orders} | \
        {e.to_unit_id for e in events} | {e.from_unit_id for e in events}
    unit_ids.discard(None)
    units = {u.id: u for u in session.exec(select(Unit).where(Unit.id.in_(unit_ids))).all()}
    actor_ids = {e.actor_id for e in events if e.actor_id is not None}
    names = dict(session.exec(select(User.id, User.display_name).where(User.id.in_(actor_ids))).all()) \
        if actor_ids else {}
    actions = allowed_actions(session, actor, case, now)
    return CaseDetail(
        order_due=_order_due(case, orders, actor, now),
        quick=SIGN_AND_START_FORM if Act.acknowledge in actions else None,
        duplicates=likely_duplicates(session, actor, case, now) if content.readable else [],
        case=case, category=category,
        subcategory=session.get(Subcategory, case.subcategory_id) if case.subcategory_id else None,
        units=units, content=content, reporter=access.reporter_for(session, actor, case),
        restricted=restricted, events=events, actor_names=names,
        photos=attachments_of(session, case.id) if content.readable else [],
        orders=orders, actions=actions, options=field_options(session, actor, case, actions, now),
        deadline=current_due(case), status=deadline_status(case, now))


@dataclass(frozen=True)
class MergeOption:
    """A case a report could be merged into, as the merge form lists it."""

    id: int
    code: str
    reported_at: datetime
    address: str
    same_category: bool
    metres: int | None  # from the report's map point, where both have one
    restricted: bool = False  # its listing is a read of restricted content: logged
    excerpt: str = ""  # the start of its description: two cases at one address differ here


def merge_candidates(session: Session, actor: Actor, case: Case, now: datetime,
                     limit: int = 20) -> list[MergeOption]:
    """Open cases a report could be merged into: same community, reported in the last 90 days
    (setting ``cases.merge_window_days``), content readable by the actor; the same category
    first, then the nearest (by map point, where both have one), then the newest. The code and
    address of a restricted case are its content: listed only for those who read it, and
    ``case_detail`` logs the listing."""
    since = now - timedelta(days=get_int(session, "cases.merge_window_days"))
    rows = session.exec(select(Case, Category.restricted).join(
        Category, Category.id == Case.category_id).where(
        Case.community_id == case.community_id, Case.id != case.id,
        Case.state.in_(sorted(OPEN)), Case.reported_at >= since,
        access.content_readable(actor))
        .order_by((Case.category_id != case.category_id), Case.reported_at.desc())
        .limit(MERGE_LOOK)).all()
    options = []
    for row, restricted in rows:
        metres = None
        if None not in (case.latitude, case.longitude, row.latitude, row.longitude):
            metres = round(distance_m(case.latitude, case.longitude, row.latitude, row.longitude))
        options.append(MergeOption(row.id, row.code, row.reported_at, row.address,
                                   row.category_id == case.category_id, metres, bool(restricted),
                                   excerpt_of(row.description)))
    options.sort(key=lambda o: (not o.same_category, o.metres is None, o.metres or 0,
                                -o.reported_at.timestamp()))
    return options[:limit]


def _communities(session: Session, actor: Actor, case: Case, now: datetime) -> list[Unit]:
    """The district's active communities (改派 to another community)."""
    return list(session.exec(select(Unit).where(
        Unit.kind == UnitKind.community, Unit.active.is_(True),
        Unit.path.startswith(session.get(Unit, case.district_id).path, autoescape=True))
        .order_by(Unit.code)).all())


def _categories(session: Session, actor: Actor, case: Case, now: datetime) -> list[Category]:
    return list(session.exec(select(Category).where(Category.active.is_(True))
                             .order_by(Category.sort)).all())


# The lists a move's field offers, by the name its record gives (``Field.options``).
OPTION_SOURCES = {
    "dispatch_targets": lambda session, actor, case, now: dispatch_targets(session, case),
    "merge_candidates": merge_candidates,
    "district_communities": _communities,
    "categories": _categories,
}


def field_options(session: Session, actor: Actor, case: Case, actions: list[str],
                  now: datetime) -> dict[str, list]:
    """What each field of the allowed moves offers to choose from (field name → rows), each
    list read once however many fields offer it."""
    lists: dict[str, list] = {}
    options: dict[str, list] = {}
    for action in actions:
        for spec in CASES.moves[action].fields:
            if spec.options:
                if spec.options not in lists:
                    lists[spec.options] = OPTION_SOURCES[spec.options](session, actor, case, now)
                options[spec.name] = lists[spec.options]
    return options


def _restricted_listed(detail: CaseDetail) -> list[int]:
    """Restricted cases the page names in the merge list (their code and address)."""
    return [o.id for o in detail.options.get("merge_into", []) if o.restricted]


def _restricted_hinted(detail: CaseDetail) -> list[int]:
    """Restricted cases the page names as likely duplicates."""
    return [d.id for d in detail.duplicates if d.restricted]


def case_detail(actor: Actor, case_id: object, engine: Engine | None = None,
                now: datetime | None = None) -> CaseDetail:
    """Everything the case page shows to this actor. A page that shows restricted content (the
    case itself, or a restricted case in its merge list) is read in a write transaction, so
    that the access log of what was shown is stored with certainty."""
    now = now or utcnow()
    with read_session(engine) as session:
        case = get_case(session, actor, case_id)
        if not access.is_restricted(session, case):
            detail = _case_detail(session, actor, case.id, now)
            if not _restricted_listed(detail) and not _restricted_hinted(detail):
                return detail
    with write_session(engine) as session:
        detail = _case_detail(session, actor, case.id, now)
        access.log_views(session, actor, _restricted_listed(detail), "merge_list")
        access.log_views(session, actor, _restricted_hinted(detail), "similar")
        return detail


# ---------------------------------------------------------------- helpers of the case page


def excerpt_of(text: str | None, length: int = EXCERPT) -> str:
    """The start of a description on one line, with "…" when cut."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= length else flat[:length] + "…"


def same_address(a: str | None, b: str | None) -> bool:
    """Two addresses written the same way once width, case, spaces and punctuation are set
    aside (红星路 1 号 = 红星路1号 = 红星路１号)."""
    def norm(text: str | None) -> str:
        return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text or "")).lower()
    return bool(norm(a)) and norm(a) == norm(b)


def likely_duplicates(session: Session, actor: Actor, case: Case,
                      now: datetime) -> list[LikelyDuplicate]:
    """Open cases that may report the same problem as ``case``: the same category and community,
    reported within ``intake.duplicate_days``, and either within ``intake.duplicate_radius_m``
    of its map point or at the same address (normalised); only those in the actor's area whose
    content the actor reads (``intake.find_duplicates``). Nearest first."""
    if case.state not in OPEN:
        return []
    found = find_duplicates(session, actor, category_id=case.category_id,
                            community_id=case.community_id, latitude=case.latitude,
                            longitude=case.longitude, now=now, limit=200)
    near = [d for d in found if d.id != case.id and (
        d.distance_m is not None or same_address(d.address, case.address))][:DUPLICATES_SHOWN]
    if not near:
        return []
    words = dict(session.exec(select(Case.id, Case.description)
                              .where(Case.id.in_([d.id for d in near]))).all())
    return [LikelyDuplicate(d.id, d.code, d.reported_at, excerpt_of(words.get(d.id)),
                            None if d.distance_m is None else round(d.distance_m),
                            same_address(d.address, case.address), d.restricted) for d in near]


def _order_due(case: Case, orders: list[WorkOrder], actor: Actor,
               now: datetime) -> OrderDue | None:
    """The deadline of the actor's own open work order: while it waits to be signed for, its
    sign-for deadline; then its handling deadline — the case's for the lead order (extensions
    and reopenings move the case's), the order's own for a co-handler."""
    mine = [o for o in orders if o.unit_id == actor.unit_id and o.state in ORDER_OPEN]
    if not mine:
        return None
    order = next((o for o in mine if o.lead), mine[0])
    if order.state == WorkOrderState.dispatched:
        kind, at = "sign_due", order.sign_due_at
    else:
        kind, at = "handle_due", case.handle_due_at if order.lead and case.handle_due_at \
            else order.handle_due_at
    return OrderDue(kind, at, status_by(at, now) if at is not None else None)


# ---------------------------------------------------------------- moves from the case page

# 签收并开始处置: the handler signs for the order and starts work in one submit. Two moves of the
# case machine, each checked by the engine and written as its own event, in one transaction
# (``sign_and_start``); this record only draws the form (a note, kept on the sign-for event).
SIGN_AND_START = "acknowledge_start"
SIGN_AND_START_FORM = move(SIGN_AND_START, {S.dispatched}, S.in_progress, "handler",
                           fields=[note()], expected=True)


@dataclass(frozen=True)
class Outcome:
    """What a move from the case page did, to say so: the move, the case, and its object —
    where the case waits now, its owner, the departments dispatched to, the case merged into,
    the new date."""

    case_id: int
    code: str
    action: str
    version: int
    units: dict[str, Unit]  # "unit" (waits at), "owner", "lead"
    co: list[Unit]
    target: str | None = None  # the code of the case merged into
    at: datetime | None = None  # the date the move set (deadline, review day, asked day)

    def text(self, lang: str) -> str:
        """"红星路社区-2026-0001：已呼叫春熙路街道。" in ``lang``."""
        params: dict[str, object] = {role: i18n.name(unit, lang) for role, unit in self.units.items()}
        params["co"] = ("、" if lang == "zh" else ", ").join(i18n.name(u, lang) for u in self.co)
        params["target"] = self.target or ""
        params["at"] = china_time(self.at)
        key = f"done.{self.action}"
        if self.action == Act.dispatch and self.co:
            key = "done.dispatch_co"
        what = i18n.t(key, lang, **params)
        return i18n.t("done.line", lang, code=self.code, what=what)


DATE_FACTS = ("new_due", "asked_due", "review_at", "handle_due")  # in an event's facts


def _outcome(session: Session, case: Case, action: str) -> Outcome:
    event = session.exec(select(CaseEvent).where(CaseEvent.case_id == case.id)
                         .order_by(CaseEvent.seq.desc())).first()
    facts = (event.detail if event is not None else None) or {}
    roles = {"unit": case.unit_id, "owner": case.owner_id, "lead": case.handler_id}
    rows = {u.id: u for u in session.exec(select(Unit).where(
        Unit.id.in_([i for i in roles.values() if i is not None]))).all()}
    units = {role: rows[i] for role, i in roles.items() if i in rows}
    co: list[Unit] = []
    if action == Act.dispatch:
        co_ids = [o.unit_id for o in orders_of(session, case.id)
                  if not o.lead and o.state in ORDER_OPEN]
        co = list(session.exec(select(Unit).where(Unit.id.in_(co_ids)).order_by(Unit.code)).all()) \
            if co_ids else []
    at = None
    if action == SIGN_AND_START:
        at = case.handle_due_at
    else:
        stamp = next((facts[k] for k in DATE_FACTS if facts.get(k)), None)
        at = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    target = None
    if case.merged_into_id is not None and action == Act.merge:
        target = session.exec(select(Case.code).where(Case.id == case.merged_into_id)).first()
    return Outcome(case.id, case.code, action, case.version, units, co, target, at)


def make_move(actor: Actor, case_id: object, action: str, *, version: int,
              files: list[tuple[str, bytes]] = (), engine: Engine | None = None,
              now: datetime | None = None, **params: object) -> Outcome:
    """The case page's move (``machine.act_on``: checked, one event, its own transaction) and
    what it did, to say so."""
    case = act_on(actor, case_id, action, version=version, files=files, engine=engine, now=now,
                  **params)
    with read_session(engine) as session:
        return _outcome(session, case, action)


def sign_and_start(actor: Actor, case_id: object, *, version: int, note: str | None = None,
                   engine: Engine | None = None, now: datetime | None = None) -> Outcome:
    """签收并开始处置: sign for the order (``acknowledge``, with the note) and start work
    (``start``) in one transaction. Each is a move of the case machine, checked by the engine
    (who, state, version, scope) and written as its own event; if either is refused, neither
    is made."""
    now = now or utcnow()
    with write_session(engine) as session:
        case = act(session, actor, case_id, Act.acknowledge, version=version, now=now, note=note)
        case = act(session, actor, case.id, Act.start, version=case.version, now=now)
        return _outcome(session, case, SIGN_AND_START)


# ---------------------------------------------------------------- the queue after a move


@dataclass(frozen=True)
class QueuePlace:
    """Where a case stands in the clerk's queue view as it is now: the view's ids in order,
    the case before and after it, and its position (None once it has left the view)."""

    walk: list[int]
    previous: int | None
    following: int | None
    position: int | None


def place_in_walk(old: list[int], fresh: list[int], case_id: int) -> QueuePlace:
    """The case's neighbours in ``fresh`` (the view read again). A case that left the view
    keeps its place: the next is the first case after it in ``old`` still in the view (else
    the view's first), the previous the last before it still there."""
    if case_id in fresh:
        at = fresh.index(case_id)
        return QueuePlace(fresh, fresh[at - 1] if at else None,
                          fresh[at + 1] if at + 1 < len(fresh) else None, at + 1)
    still = set(fresh)
    at = old.index(case_id) if case_id in old else len(old)
    following = next((i for i in old[at + 1:] if i in still), None)
    if following is None and fresh:
        following = fresh[0]
    previous = next((i for i in reversed(old[:at]) if i in still), None)
    return QueuePlace(fresh, previous if previous != following else None, following, None)


def walk_after(actor: Actor, tab: str, filters: queue.Filters, sort: str, old: list[int],
               case_id: int, engine: Engine | None = None) -> QueuePlace:
    """The queue view (tab, filters, sort) read again after a move, and the case's place in it
    (``place_in_walk``)."""
    with read_session(engine) as session:
        fresh = queue.walk_ids(session, actor, tab, filters, sort=sort)
    return place_in_walk(old, fresh, parse_id(case_id))
