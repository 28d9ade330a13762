"""Reading a case (the case page and the ledger's record): its facts, content and reporter as
this user may see them, its timeline, work orders, deadline and the moves this user may make.

Every change to a case writes exactly one ``CaseEvent``; the case's ``state`` is always the
``to_state`` of its last event, which ``ledger_mismatches`` checks for the whole database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases import access, timeline
from lib.cases.access import can_see
from lib.cases.deadlines import current_due, deadline_status
from lib.cases.intake import distance_m
from lib.cases.machine import CASES, allowed_actions
from lib.cases.models import Attachment, Case, CaseEvent
from lib.cases.orders import dispatch_targets, orders_of
from lib.cases.states import OPEN
from lib.core.db import read_session, write_session
from lib.core.errors import NotFound
from lib.core.inputs import parse_id
from lib.core.models import Category, Subcategory, UnitKind, utcnow
from lib.core.settings import get_int
from lib.org import permissions
from lib.org.models import Unit, User
from lib.org.units import Actor

MERGE_LOOK = 200  # recent open cases of the community weighed for the merge list


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
                                   row.category_id == case.category_id, metres, bool(restricted)))
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
            if not _restricted_listed(detail):
                return detail
    with write_session(engine) as session:
        detail = _case_detail(session, actor, case.id, now)
        access.log_views(session, actor, _restricted_listed(detail), "merge_list")
        return detail
