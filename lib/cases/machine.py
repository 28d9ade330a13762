"""The case machine (案件): the notice's closed loop as data on the move engine.

发现 → 报告 → 研判 → 派单 → 处置 → 反馈 maps onto report → accept (研判) → dispatch (派单)
→ acknowledge (签收) → start → handle (处置) → verify (核查) → feedback (回访) → close (办结).
Side moves change the case's unit, owner or flags: call_up (呼叫), hand_back (下派),
reassign (改派), extend (延期), request / grant / refuse an extension (申请延期), park (挂账),
supervise (督办), hurry (催办, the reporter). Co-handling departments (协办) sign for and report
on their own work orders (co_acknowledge, co_return, co_handle).

Who (``ROLES``; every name is checked on the case as it stands):
  triager    staff of the tier unit the case waits at, when that unit owns it
  owner      staff of the tier unit that owns the case (triages, dispatches, extends, parks)
  handler    staff of the lead department, or of the owner handling it itself, while it is there
  checker    staff of the case's community or its owner, once it is back for the check
  higher     staff or leaders of a tier above the owner, with the case in their area
  cohandler  a department holding an open co-handling work order
  public     the reporter on the tracking page (after proving the case is theirs)
  system     the scheduled tick

Calling up a case under handling (docs/decisions.md): when the owner handles it itself (自办),
the work is taken back and the tier above triages it again (accepted, at that tier); when a
department handles it, the department keeps working and the tier above becomes the owner that
checks, extends and supervises. The tick's automatic call-up follows the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases import notices, orders
from lib.cases.access import can_see
from lib.cases.deadlines import ANSWER_CALL, HANDLE, SIGN_FOR, close_of_day, current_due, due
from lib.cases.models import Attachment, Case, CaseEvent, CaseWait, WorkOrderState
from lib.cases.photos import PhotoKind, checked_photos
from lib.cases.states import (
    ESCALABLE,
    FEEDBACK_ANSWERS,
    GROUPS,
    HANDLING,
    OPEN,
    RESULT,
    TRIAGE,
    UNREACHABLE,
    WAIT_OF_STATE,
    Act,
    S,
    WaitKind,
)
from lib.core import machine as engine
from lib.core.clock import as_utc
from lib.core.db import read_session, write_session
from lib.core.errors import NotFound, PermissionDenied, ValidationFailed
from lib.core.inputs import clean_code, parse_id
from lib.core.machine import Field, Machine, Step, move, note
from lib.core.models import Category, Rating, Role, Severity, Tier, UnitKind, utcnow
from lib.core.settings import get_int
from lib.core.workcal import CHINA_TZ, next_workday, working_days_between
from lib.org.models import Unit
from lib.org.units import Actor, place_of_community

MAX_CO_HANDLERS = 5

# The staff role that acts for each kind of unit.
STAFF_ROLE = {
    UnitKind.community: Role.community_staff,
    UnitKind.street: Role.street_staff,
    UnitKind.district: Role.district_staff,
    UnitKind.city: Role.city_staff,
    UnitKind.department: Role.department_staff,
}
TIER_RANK = {Tier.community: 0, Tier.street: 1, Tier.district: 2, Tier.city: 3}


# ---------------------------------------------------------------- the case's place in the tree


def owner_tier(case: Case) -> str:
    """The tier of the unit that owns the case, read from the case's place in the tree."""
    for tier, unit_id in ((Tier.community, case.community_id), (Tier.street, case.street_id),
                          (Tier.district, case.district_id), (Tier.city, case.city_id)):
        if case.owner_id == unit_id:
            return tier
    return Tier.community


def parent_of_owner(case: Case) -> int | None:
    """The unit a call-up goes to: the next tier up on the case's own path."""
    return {Tier.community: case.street_id, Tier.street: case.district_id,
            Tier.district: case.city_id}.get(owner_tier(case))


def child_of_owner(case: Case) -> int | None:
    """The unit a hand-back goes to: the next tier down on the case's own path."""
    return {Tier.street: case.community_id, Tier.district: case.street_id,
            Tier.city: case.district_id}.get(owner_tier(case))


def self_handled(case: Case) -> bool:
    """The owner handles the case itself (小事不出村社), no department."""
    return case.handler_id is not None and case.handler_id == case.owner_id


def department_handles(case: Case) -> bool:
    return case.handler_id is not None and case.handler_id != case.owner_id


# ---------------------------------------------------------------- who


@dataclass(frozen=True)
class Context:
    """Facts a guard needs that are not on the case row."""

    open_co_units: frozenset[int]
    now: datetime


def _staff_of(actor: Actor, unit_id: int | None) -> bool:
    role = STAFF_ROLE.get(actor.unit_kind)
    return unit_id is not None and actor.unit_id == unit_id and role is not None and actor.has(role)


def _triager(actor: Actor, case: Case, _ctx: Context) -> bool:
    return case.unit_id == case.owner_id and _staff_of(actor, case.unit_id)


def _owner(actor: Actor, case: Case, _ctx: Context) -> bool:
    return _staff_of(actor, case.owner_id)


def _handler(actor: Actor, case: Case, _ctx: Context) -> bool:
    return case.unit_id == case.handler_id and _staff_of(actor, case.handler_id)


def _checker(actor: Actor, case: Case, _ctx: Context) -> bool:
    return case.unit_id in (case.community_id, case.owner_id) and (
        _staff_of(actor, case.community_id) or _staff_of(actor, case.owner_id))


def _higher(actor: Actor, case: Case, _ctx: Context) -> bool:
    return actor.unit_kind != UnitKind.department \
        and actor.has(Role.street_staff, Role.district_staff, Role.city_staff, Role.leader) \
        and TIER_RANK.get(actor.unit_tier, -1) > TIER_RANK[owner_tier(case)] \
        and actor.unit_id in (case.street_id, case.district_id, case.city_id)


def _cohandler(actor: Actor, case: Case, ctx: Context) -> bool:
    return ctx is not None and actor.unit_id in ctx.open_co_units and actor.has(Role.department_staff)


ROLES = {"triager": _triager, "owner": _owner, "handler": _handler, "checker": _checker,
         "higher": _higher, "cohandler": _cohandler}


# ---------------------------------------------------------------- guards


def _at_owner(actor, case, ctx) -> bool:  # noqa: ANN001
    return case.unit_id == case.owner_id


def _dispatching_tier(actor, case, ctx) -> bool:  # noqa: ANN001
    """A community handles a case or calls its street; dispatching starts at the street."""
    return owner_tier(case) != Tier.community and case.unit_id == case.owner_id


def _can_call_up(actor, case, ctx) -> bool:  # noqa: ANN001
    return parent_of_owner(case) is not None


def _can_hand_back(actor, case, ctx) -> bool:  # noqa: ANN001
    return child_of_owner(case) is not None


def _has_handle_deadline(actor, case, ctx) -> bool:  # noqa: ANN001
    return case.handle_due_at is not None


def _department_may_ask(actor, case, ctx) -> bool:  # noqa: ANN001
    return department_handles(case) and case.handle_due_at is not None \
        and case.extension_until is None


def _extension_asked(actor, case, ctx) -> bool:  # noqa: ANN001
    return case.extension_until is not None


def _not_supervised(actor, case, ctx) -> bool:  # noqa: ANN001
    return not case.supervised


def _hurry_allowed(actor, case, ctx) -> bool:  # noqa: ANN001
    """Once per working day: again only when the next working day after the last has begun."""
    if case.hurried_at is None or ctx is None:
        return True
    last = as_utc(case.hurried_at).astimezone(CHINA_TZ).date()
    return ctx.now.astimezone(CHINA_TZ).date() >= next_workday(last)


# ---------------------------------------------------------------- effects


def _until(step: Step, *, max_days: int, after: datetime | None = None) -> datetime:
    """A picked day as the close of that working day, China time, in the future, not too far."""
    value = step.values["until"]
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationFailed("error.date_invalid")
        moment = value
    elif isinstance(value, date):
        moment = close_of_day(step.session, value)
    else:
        raise ValidationFailed("error.date_invalid")
    if moment <= step.now:
        raise ValidationFailed("error.date_not_future")
    if moment > step.now + timedelta(days=max_days):
        raise ValidationFailed("error.date_too_far", days=max_days)
    if after is not None and moment <= after:
        raise ValidationFailed("error.extend_not_later")
    return moment


def _accept(step: Step) -> None:
    # Accepted is not parked: take it on, dispatch or call up within the answer time. Triage
    # sets the severity (the resident's form does not ask; intake gave the category's default).
    case = step.subject
    severity = step.values.get("severity")
    if severity and severity != case.severity:
        step.detail["severity"] = [case.severity, severity]
        case.severity = severity
    case.sign_due_at = due(step.session, case.severity, ANSWER_CALL, step.now)


def _reject(step: Step) -> None:
    step.subject.sign_due_at = None


def _merge_target(session: Session, case: Case, ref: object) -> Case:
    if isinstance(ref, str) and not ref.strip().isdigit():
        code = clean_code(ref)
        found = session.exec(select(Case.id).where(Case.code == code)).first() if code else None
    else:
        try:
            found = parse_id(ref)
        except Exception:  # any unusable reference is simply not a target
            found = None
    target = session.get(Case, found) if found is not None else None
    if target is None or target.id == case.id or target.community_id != case.community_id \
            or target.state not in OPEN:
        raise ValidationFailed("error.merge_target_invalid")
    return target


def _merge(step: Step) -> None:
    session, case = step.session, step.subject
    target = _merge_target(session, case, step.values["merge_into"])
    case.merged_into_id = target.id
    case.sign_due_at = None
    step.detail["into"] = target.code
    # The target gets its own numbered event; taking the number locks its row.
    engine.append(session, CASES, target.id, Act.add_report, actor=step.actor, now=step.now,
                  detail={"from": case.code})


def _reassign(step: Step) -> None:
    """改派: the case was filed under the wrong community or category; it keeps its code and
    history. A new community takes it from the start (reported, at its triage)."""
    session, case = step.session, step.subject
    community_id, category_id = step.values["community_id"], step.values["category_id"]
    changed = False
    if category_id is not None and category_id != case.category_id:
        category = session.get(Category, parse_id(category_id))
        if category is None or not category.active:
            raise ValidationFailed("error.category_invalid")
        step.detail["category"] = [session.get(Category, case.category_id).key, category.key]
        case.category_id, case.subcategory_id = category.id, None
        changed = True
    if community_id is not None and community_id != case.community_id:
        community = session.get(Unit, parse_id(community_id))
        if community is None or community.kind != UnitKind.community or not community.active:
            raise ValidationFailed("error.not_a_community")
        place = place_of_community(session, community)
        if place["district_id"] != case.district_id:
            raise ValidationFailed("error.out_of_scope")
        step.detail["community"] = [session.get(Unit, case.community_id).code, community.code]
        for column, value in place.items():
            setattr(case, column, value)
        case.unit_id = case.owner_id = community.id
        case.sign_due_at = due(session, case.severity, SIGN_FOR, step.now)
        step.to_state = S.reported
        changed = True
    if not changed:
        raise ValidationFailed("error.reassign_nothing")


def _dispatch(step: Step) -> None:
    session, case = step.session, step.subject
    lead_id = step.values["lead_unit_id"]
    co_ids = [u for u in step.values["co_unit_ids"] if u != lead_id]
    if len(co_ids) > MAX_CO_HANDLERS:
        raise ValidationFailed("error.too_many_cohandlers", max=MAX_CO_HANDLERS)
    lead, *co = orders.serving_departments(session, case, [lead_id, *co_ids])
    sign_due = due(session, case.severity, SIGN_FOR, step.now)
    handle_due = due(session, case.severity, HANDLE, step.now)
    orders.cancel_open(session, case)
    for unit in [lead, *co]:
        orders.add(session, case, unit, lead=unit is lead, sign_due=sign_due,
                   handle_due=handle_due, now=step.now)
    case.unit_id = case.handler_id = lead.id
    case.sign_due_at, case.handle_due_at = sign_due, handle_due
    step.detail.update(lead=lead.code, co=[u.code for u in co], sign_due=sign_due.isoformat(),
                       handle_due=handle_due.isoformat())


def _take(step: Step) -> None:
    case = step.subject
    case.handler_id = case.owner_id
    case.sign_due_at = None
    case.handle_due_at = due(step.session, case.severity, HANDLE, step.now)
    step.detail["handle_due"] = case.handle_due_at.isoformat()


def _acknowledge(step: Step) -> None:
    order = orders.lead_order(step.session, step.subject)
    if order is not None:
        order.state, order.signed_at = WorkOrderState.acknowledged, step.now
        step.session.add(order)
    step.subject.sign_due_at = None


def _return(step: Step) -> None:
    """退单, before or after signing for it: back to the owner, who dispatches again."""
    session, case = step.session, step.subject
    order = orders.lead_order(session, case)
    orders.cancel_open(session, case)  # the co-handlers' orders; the lead's is returned below
    if order is not None:
        order.state = WorkOrderState.returned
        session.add(order)
    case.unit_id = case.owner_id
    case.handler_id = None
    case.handle_due_at = None
    case.extension_until = None
    case.sign_due_at = due(session, case.severity, ANSWER_CALL, step.now)


def _handle(step: Step) -> None:
    session, case = step.session, step.subject
    if orders.open_co_units(session, case.id):
        raise ValidationFailed("error.cohandlers_pending")
    order = orders.lead_order(session, case)
    if order is not None and order.state in orders.OPEN_ORDER:
        order.state, order.handled_at = WorkOrderState.handled, step.now
        session.add(order)
    case.extension_until = None
    case.unit_id = case.community_id  # the community checks on site and calls the reporter back


def _back_to_handler(step: Step, *, new_deadline: bool) -> None:
    session, case = step.session, step.subject
    case.unit_id = case.handler_id or case.owner_id
    order = orders.lead_order(session, case)
    if order is not None and order.state == WorkOrderState.handled and order.unit_id == case.unit_id:
        order.state, order.handled_at = WorkOrderState.acknowledged, None
        session.add(order)
    if new_deadline:
        case.handle_due_at = due(session, case.severity, HANDLE, step.now)


def _rework(step: Step) -> None:
    _back_to_handler(step, new_deadline=False)


def _feedback(step: Step) -> None:
    # The call-back records what the reporter said, or that they could not be reached (no rating
    # at all: a clerk who never asks must not add a 满意 to the figures).
    answer = step.values["rating"]
    if answer == UNREACHABLE:
        step.detail["reached"] = False
        return
    step.subject.rating = answer
    step.detail["rating"] = answer


def _reopen(step: Step) -> None:
    case = step.subject
    if step.actor is None:
        case.rating = Rating.dissatisfied
        step.detail["rating"] = Rating.dissatisfied.value
    if case.closed_at is not None:  # the KPIs take the closure back from that day
        step.detail["was_closed_at"] = case.closed_at.isoformat()
    case.closed_at = None
    case.closure_hours = case.closure_workdays = None
    _back_to_handler(step, new_deadline=True)


def _close(step: Step) -> None:
    case = step.subject
    case.closed_at = step.now
    case.closure_hours = round((step.now - case.reported_at).total_seconds() / 3600, 3)
    case.closure_workdays = working_days_between(case.reported_at, step.now)


def _park(step: Step) -> None:
    session, case = step.session, step.subject
    case.review_at = _until(step, max_days=get_int(step.session, "cases.park_max_days"))
    orders.cancel_open(session, case)
    case.unit_id = case.owner_id
    case.handler_id = None
    case.sign_due_at = case.handle_due_at = None
    case.extension_until = None
    step.detail["review_at"] = case.review_at.isoformat()


def _resume(step: Step) -> None:
    case = step.subject
    case.review_at = None
    case.sign_due_at = due(step.session, case.severity, ANSWER_CALL, step.now)


def _take_back_work(step: Step, unit_id: int) -> None:
    """The owner was handling the case itself and hands it to another tier: that tier triages
    it again, with an answer deadline."""
    case = step.subject
    case.handler_id = None
    case.handle_due_at = None
    case.unit_id = unit_id
    case.sign_due_at = due(step.session, case.severity, ANSWER_CALL, step.now)
    step.to_state = S.accepted


def _call_up(step: Step) -> None:
    case = step.subject
    parent = parent_of_owner(case)
    taken_back = case.state == S.in_progress and self_handled(case)
    waiting_here = case.unit_id == case.owner_id
    case.owner_id = parent
    tier = owner_tier(case)
    if TIER_RANK[tier] > TIER_RANK.get(case.reached_tier, 0):
        case.reached_tier = tier
    if taken_back:
        _take_back_work(step, parent)
        step.detail["taken_back"] = True
    elif waiting_here:
        case.unit_id = parent
        case.sign_due_at = due(step.session, case.severity, ANSWER_CALL, step.now)
        step.detail["answer_due"] = case.sign_due_at.isoformat()
    step.detail["to_tier"] = tier
    if step.actor is None:
        step.detail["auto"] = True


def _hand_back(step: Step) -> None:
    case = step.subject
    child = child_of_owner(case)
    taken_back = case.state == S.in_progress and self_handled(case)
    waiting_here = case.unit_id == case.owner_id
    case.owner_id = child
    if taken_back:
        _take_back_work(step, child)
    elif waiting_here:
        case.unit_id = child
        case.sign_due_at = due(step.session, case.severity, ANSWER_CALL, step.now)
    step.detail["to_tier"] = owner_tier(case)


def _set_handle_due(step: Step, until: datetime) -> None:
    case = step.subject
    step.detail.update(old_due=case.handle_due_at.isoformat() if case.handle_due_at else None,
                       new_due=until.isoformat())
    case.handle_due_at = until
    order = orders.lead_order(step.session, case)
    if order is not None and order.state in orders.OPEN_ORDER:
        order.handle_due_at = until
        step.session.add(order)


def _extend(step: Step) -> None:
    case = step.subject
    _set_handle_due(step, _until(step, max_days=get_int(step.session, "cases.extend_max_days"),
                                 after=case.handle_due_at))
    case.extension_until = None


def _request_extension(step: Step) -> None:
    case = step.subject
    case.extension_until = _until(step, max_days=get_int(step.session, "cases.extend_max_days"),
                                  after=case.handle_due_at)
    step.detail["asked_due"] = case.extension_until.isoformat()


def _grant_extension(step: Step) -> None:
    case = step.subject
    _set_handle_due(step, case.extension_until)
    case.extension_until = None


def _refuse_extension(step: Step) -> None:
    step.detail["asked_due"] = step.subject.extension_until.isoformat()
    step.subject.extension_until = None


def _supervise(step: Step) -> None:
    step.subject.supervised = True


def _hurry(step: Step) -> None:
    case = step.subject
    case.hurry_count = (case.hurry_count or 0) + 1
    case.hurried_at = step.now
    step.detail["count"] = case.hurry_count


def _co_acknowledge(step: Step) -> None:
    order = orders.actor_order(step.session, step.subject, step.actor)
    if order.state != WorkOrderState.dispatched:
        raise ValidationFailed("error.wrong_state")
    order.state, order.signed_at = WorkOrderState.acknowledged, step.now
    step.session.add(order)


def _co_return(step: Step) -> None:
    order = orders.actor_order(step.session, step.subject, step.actor)
    order.state = WorkOrderState.returned
    step.session.add(order)


def _co_handle(step: Step) -> None:
    order = orders.actor_order(step.session, step.subject, step.actor)
    order.state, order.handled_at = WorkOrderState.handled, step.now
    order.signed_at = order.signed_at or step.now
    step.session.add(order)


def _rate(step: Step) -> None:
    step.subject.rating = step.values["rating"]
    step.detail["rating"] = step.values["rating"]


# ---------------------------------------------------------------- the table


def _until_field() -> Field:
    return Field("until", "date", required=True)


A = Act
MOVES = {m.action: m for m in [
    move(A.report, None, S.reported, "public triager", public=True),  # written by intake
    move(A.accept, {S.reported}, S.accepted, "triager", effect=_accept,
         fields=[Field("severity", "choice", choices=tuple(s.value for s in Severity),
                       labels="severity"), note()],
         public=True, expected=True, sms=True),
    move(A.reject, {S.reported}, S.rejected, "triager", effect=_reject,
         fields=[note(required=True)], public=True),
    move(A.merge, TRIAGE, S.merged, "triager public", effect=_merge,
         fields=[Field("merge_into", "ref", required=True, options="merge_candidates"), note()],
         public=True),
    move(A.add_report, None, None, "public", public=True),  # written by a merge
    move(A.reassign, TRIAGE, None, "triager", effect=_reassign,
         fields=[Field("community_id", "unit", options="district_communities"),
                 Field("category_id", "ref", options="categories"), note(required=True)],
         also_to={S.reported}),
    move(A.dispatch, {S.accepted}, S.dispatched, "owner", effect=_dispatch, guard=_dispatching_tier,
         commits=True,
         fields=[Field("lead_unit_id", "unit", required=True, options="dispatch_targets"),
                 Field("co_unit_ids", "units", max_items=MAX_CO_HANDLERS,
                       options="dispatch_targets"), note()],
         public=True, expected=True, tells={"co_units": "work"}),
    move(A.take, {S.accepted}, S.in_progress, "owner", effect=_take, guard=_at_owner,
         fields=[note()], public=True, expected=True, commits=True),
    move(A.acknowledge, {S.dispatched}, S.acknowledged, "handler", effect=_acknowledge,
         fields=[note()], public=True, expected=True),
    move(A.give_back, HANDLING, S.accepted, "handler", effect=_return,
         guard=lambda a, c, x: department_handles(c), fields=[note(required=True)]),
    move(A.start, {S.acknowledged}, S.in_progress, "handler", fields=[note()], public=True,
         expected=True),
    move(A.handle, {S.in_progress}, S.handled, "handler", effect=_handle,
         fields=[note(required=True)], photos=True, public=True, expected=True, sms=True,
         counts="handled"),
    move(A.request_extension, HANDLING, None, "handler", effect=_request_extension,
         guard=_department_may_ask, fields=[_until_field(), note(required=True)]),
    move(A.grant_extension, HANDLING, None, "owner", effect=_grant_extension,
         guard=_extension_asked, fields=[note()], public=True, expected=True,
         extends_commitment=True),
    move(A.refuse_extension, HANDLING, None, "owner", effect=_refuse_extension,
         guard=_extension_asked, fields=[note(required=True)]),
    move(A.verify, {S.handled}, S.verified, "checker", fields=[note()], public=True, expected=True,
         resolves=True),
    move(A.rework, {S.handled}, S.in_progress, "checker", effect=_rework,
         fields=[note(required=True)], public=True, counts="reworked"),
    move(A.feedback, {S.verified}, S.feedback, "checker", effect=_feedback,
         fields=[Field("rating", "choice", required=True, choices=FEEDBACK_ANSWERS,
                       labels="feedback"), note()],
         public=True, expected=True),
    # The reporter is not satisfied: on the tracking page once handled, or by call-back.
    move(A.reopen, RESULT, S.in_progress, "checker public",
         effect=_reopen, fields=[note(required=True)], photos=True, public=True, unresolves=True),
    move(A.close, {S.verified, S.feedback}, S.closed, "checker", effect=_close, fields=[note()],
         public=True, expected=True, sms=True),
    move(A.park, {S.accepted, S.in_progress}, S.parked, "owner", effect=_park,
         fields=[_until_field(), note(required=True)], public=True),
    move(A.resume, {S.parked}, S.accepted, "owner", effect=_resume, fields=[note()], public=True,
         expected=True),
    move(A.call_up, ESCALABLE, None, "owner system", effect=_call_up, guard=_can_call_up,
         fields=[note(required=True)], public=True, also_to={S.accepted},
         tells={"owner": "work"}, wait=WaitKind.answer),
    move(A.hand_back, ESCALABLE, None, "owner", effect=_hand_back, guard=_can_hand_back,
         fields=[note(required=True)], public=True, also_to={S.accepted},
         tells={"owner": "work"}, wait=WaitKind.answer),
    move(A.extend, HANDLING, None, "owner", effect=_extend, guard=_has_handle_deadline,
         fields=[_until_field(), note(required=True)], public=True, extends_commitment=True),
    move(A.supervise, OPEN, None, "higher", effect=_supervise, guard=_not_supervised,
         fields=[note(required=True)], tells={"unit": "supervised", "owner": "supervised"}),
    move(A.co_acknowledge, HANDLING, None, "cohandler", effect=_co_acknowledge, fields=[note()]),
    move(A.co_return, HANDLING, None, "cohandler", effect=_co_return, fields=[note(required=True)]),
    move(A.co_handle, HANDLING | {S.handled}, None, "cohandler", effect=_co_handle,
         fields=[note(required=True)], photos=True),
    move(A.hurry, ESCALABLE, None, "public", effect=_hurry, guard=_hurry_allowed,
         fields=[note(max_len=200)], public=True, counts="hurried", tells={"unit": "hurried"}),
    move(A.rate, RESULT, None, "public", effect=_rate,
         fields=[Field("rating", "choice", required=True,
                       choices=(Rating.satisfied.value, Rating.basically_satisfied.value),
                       labels="rating"), note()],
         public=True),
    # A reporter whose report joined another case rates the shared result on their own report:
    # recorded there (不满意 with its reason), it neither reopens nor rates the other report.
    move(A.rate_joined, {S.merged}, None, "public", effect=_rate,
         fields=[Field("rating", "choice", required=True, choices=tuple(r.value for r in Rating),
                       labels="rating"), note()],
         public=True),
]}

PUBLIC_ACTIONS = frozenset(a for a, m in MOVES.items() if m.public)
RESULT_ACTIONS = frozenset({A.handle, A.co_handle})  # their photos show the result


# ---------------------------------------------------------------- the machine


def context(session: Session, case: Case, now: datetime) -> Context:
    return Context(orders.open_co_units(session, case.id), now)


def _after(step: Step) -> None:
    # Overdue means "late now": a move that meets the missed step or sets a new deadline clears
    # it; lateness history stays in the events and the deadlines, for the KPIs.
    case = step.subject
    next_due = current_due(case)
    case.overdue = next_due is not None and next_due < step.now
    case.committed_due_at, case.resolved_at = commitment_after(
        MOVES[step.action], step.now, case.committed_due_at, case.handle_due_at, case.resolved_at)


def commitment_after(spec: engine.Move, now: datetime, committed: datetime | None,
                     handle_due: datetime | None, resolved: datetime | None,
                     ) -> tuple[datetime | None, datetime | None]:
    """(committed_due_at, resolved_at) after the move ``spec`` made at ``now``, given the first
    commitment before it and the handling deadline the move left (lib.cases.derive replays the
    events with this same rule).

    The first commitment is the handling deadline the first take-on or dispatch set; only an
    extension made at or before it moves it (to the new handling deadline). Nothing else — a
    call-up, a return, a hand-back, parking, a reopen, a re-dispatch — clears or moves it."""
    if spec.commits and committed is None:
        committed = handle_due
    elif spec.extends_commitment and committed is not None and handle_due is not None \
            and now <= as_utc(committed):
        committed = handle_due
    if spec.resolves:
        resolved = now
    elif spec.unresolves:
        resolved = None
    return committed, resolved


def wait_kind(spec: engine.Move, state: str) -> str:
    """The kind of wait a response deadline set by ``spec`` in ``state`` opens."""
    return spec.wait or WAIT_OF_STATE.get(state, WaitKind.decide)


def wait_change(before: tuple, after: tuple) -> tuple[bool, bool]:
    """(ends, starts): whether a move that took the case from ``before`` to ``after`` (each
    (unit, response deadline, state)) ends the wait that ran before it, and starts a new one.
    A wait runs while a response deadline (``sign_due_at``) is set at one unit in one state; a
    move that clears or replaces the deadline, moves the case to another unit or to another
    state (a decision made: a triage, a dispatch) ends it."""
    same = before[1] is not None and after[1] is not None and before[0] == after[0] \
        and as_utc(before[1]) == as_utc(after[1]) and before[2] == after[2]
    return before[1] is not None and not same, after[1] is not None and not same


def _record_wait(step: Step, event: CaseEvent) -> None:
    """End the wait the move ended (answered when made by a person of the waiting unit) and
    open the one it started."""
    case, before = step.subject, step.before
    ends, starts = wait_change(
        (before.get("unit_id"), before.get("sign_due_at"), before.get("state")),
        (case.unit_id, case.sign_due_at, case.state))
    if ends:
        answered = step.actor is not None and step.actor.unit_id == before.get("unit_id")
        step.session.exec(update(CaseWait).where(  # type: ignore[call-overload]
            CaseWait.case_id == case.id, CaseWait.ended_at.is_(None))
            .values(ended_at=step.now, end_action=event.action, answered=answered)
            .execution_options(synchronize_session=False))
    if starts:
        step.session.add(CaseWait(case_id=case.id, unit_id=case.unit_id,
                                  kind=wait_kind(MOVES[event.action], case.state),
                                  started_at=step.now, due_at=case.sign_due_at))


def _event(case: Case, seq: int, action: str, step: Step, from_state: str) -> CaseEvent:
    return CaseEvent(case_id=case.id, seq=seq, action=action, at=step.now,
                     actor_id=step.actor.id if step.actor else None, from_state=from_state,
                     to_state=case.state, from_unit_id=step.before.get("unit_id"),
                     to_unit_id=case.unit_id, note=step.values.get("note"),
                     detail=dict(step.detail) or None)


def _recorded(step: Step, event: CaseEvent) -> None:
    _record_wait(step, event)
    kind = PhotoKind.result if event.action in RESULT_ACTIONS else PhotoKind.report
    for photo in step.values.get("photos") or ():
        step.session.add(Attachment(case_id=step.subject.id, event_id=event.id, kind=kind,
                                    mime=photo.mime, size=photo.size, sha256=photo.sha256,
                                    data=photo.data, created_at=step.now))
    notices.on_move(step.session, step.subject, MOVES[event.action], event)
    step.session.flush()


CASES = Machine(name="case", model=Case, moves=MOVES, roles=ROLES, event=_event, can_see=can_see,
                context=context, after=_after, recorded=_recorded,
                remember=lambda case: {"unit_id": case.unit_id, "sign_due_at": case.sign_due_at,
                                       "state": case.state},
                not_found="error.case_not_found",
                groups=GROUPS)


def next_state(action: str, state: str | None) -> str:
    """The state after ``action`` from ``state`` when it names one (the demo's generator and
    ``replay`` use it); raises ``ValueError`` if the move is not allowed from there."""
    spec = MOVES.get(action)
    if spec is None:
        raise ValueError(f"unknown action {action!r}")
    if action == Act.report:
        if state is not None:
            raise ValueError("a case is reported once")
        return S.reported
    if state not in spec.from_states:
        raise ValueError(f"{action} is not allowed from {state}")
    return spec.to_state or state


def replay(trail: list[tuple[str, str | None, str]]) -> str | None:
    """Check a trail of (action, from_state, to_state); returns the final state or raises."""
    state: str | None = None
    for action, from_state, to_state in trail:
        if from_state != state:
            raise ValueError(f"{action}: trail says from {from_state}, case was {state}")
        spec = MOVES.get(action)
        if action == Act.report:
            allowed = {next_state(action, state)}
        elif spec is None or (state not in spec.from_states and action != Act.add_report):
            raise ValueError(f"{action} is not allowed from {state}")
        else:
            allowed = spec.to_states(state)
        if to_state not in allowed:
            raise ValueError(f"{action}: trail says to {to_state}, machine allows {sorted(allowed)}")
        state = to_state
    return state


def act(session: Session, actor: Actor | None, case_id: object, action: str, *, version: int,
        now: datetime | None = None, system: bool = False, **params: object) -> Case:
    """Make ``action`` on the case (lib.core.machine.act on the case machine)."""
    return engine.act(session, CASES, actor, case_id, action, version=version, now=now,
                      system=system, **params)


def allowed_actions(session: Session, actor: Actor | None, case: Case,
                    now: datetime | None = None) -> list[str]:
    """The moves ``actor`` may make on the case now, expected next steps first."""
    return CASES.allowed(actor, case, context(session, case, now or utcnow()))


def act_on(actor: Actor, case_id: object, action: str, *, version: int,
           files: list[tuple[str, bytes]] = (), engine: Engine | None = None,
           now: datetime | None = None, **params: object) -> Case:
    """The case page's move, in a write transaction of its own. Uploaded photos are decoded
    only once the move is known to be this user's to make, and outside any transaction."""
    photos = list(params.pop("photos", None) or ())
    if files:
        with read_session(engine) as session:
            case = _get(session, case_id)
            if not can_see(session, actor, case) or not CASES.may(
                    actor, case, action, context(session, case, now or utcnow())):
                raise PermissionDenied("error.forbidden")
        photos += checked_photos(engine, list(files))
    with write_session(engine) as session:
        return act(session, actor, case_id, action, version=version, now=now, photos=photos,
                   **params)


def _get(session: Session, case_id: object) -> Case:
    case = session.get(Case, parse_id(case_id))
    if case is None:
        raise NotFound("error.case_not_found")
    return case
