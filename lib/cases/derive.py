"""Every stored fact of a case, derived again from its events alone.

A case row stores what its moves left (its owner and handler, its deadlines, whether it is late,
when it closed and how long that took, its first commitment, when it was resolved) and the
``case_wait`` rows its moves wrote. ``derive`` replays the case's events with the deadline rules
and gives all of that back, so that

- the demo's generator writes its cases from the story it made up (one implementation of what a
  move does to the deadlines, not a copy of the machine's),
- the integrity check (``python -m lib check-ledger``, lib.cases.integrity) compares every stored
  value with what the events give,
- a migration can fill a new derived column for the cases that exist.

The rules are the machine's (lib.cases.machine: the effects, ``commitment_after``,
``wait_change``, ``wait_kind``); a deadline a move wrote into its event (an extension's
``new_due``, a take-on's ``handle_due``) is taken from the event, the others are computed from
the severity's deadline rule and the close of the working day, as the machine computed them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from lib.cases.deadlines import ANSWER_CALL, HANDLE, SIGN_FOR, due_by, is_past_due
from lib.cases.machine import MOVES, commitment_after, wait_change, wait_kind
from lib.cases.states import ORDER_OPEN, Act, S, W
from lib.core.clock import as_utc
from lib.core.models import DeadlineRule, Severity, Tier
from lib.core.workcal import CLOSE_OF_DAY, working_days_between

TIERS = (Tier.community, Tier.street, Tier.district, Tier.city)


@dataclass
class Derived:
    """What a case's events give: the values stored on the case row, its waits and its lead
    work orders (the demo writes those; the check compares the case's values and waits)."""

    state: str | None = None
    unit_id: int | None = None
    owner_id: int | None = None
    handler_id: int | None = None
    severity: str | None = None
    sign_due_at: datetime | None = None
    handle_due_at: datetime | None = None
    extension_until: datetime | None = None
    overdue: bool = False
    committed_due_at: datetime | None = None
    resolved_at: datetime | None = None
    reported_at: datetime | None = None
    closed_at: datetime | None = None
    closure_hours: float | None = None
    closure_workdays: int | None = None
    reached_tier: str = Tier.community
    rating: str | None = None
    waits: list[dict] = field(default_factory=list)
    orders: list[dict] = field(default_factory=list)


def _get(event: Any, name: str) -> Any:
    return event[name] if isinstance(event, Mapping) else getattr(event, name)


def _moment(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(datetime.fromisoformat(str(value)))


def first_severity(severity: str, events: Iterable[Any]) -> str:
    """The severity the case was reported with: the first triage that changed it says what it
    was before; else it never changed."""
    for event in events:
        if _get(event, "action") == Act.accept:
            detail = _get(event, "detail") or {}
            if isinstance(detail, Mapping) and detail.get("severity"):
                return detail["severity"][0]
    return severity


def derive(events: list[Any], *, place: Mapping[str, int], severity: str,
           rules: Mapping[str, DeadlineRule], now: datetime, close: time = CLOSE_OF_DAY,
           unit_of_user: Mapping[int, int] | None = None, case_id: int | None = None) -> Derived:
    """Replay ``events`` (mappings or rows with action, at, actor_id, to_state, to_unit_id and
    detail, in order) of a case whose place in the tree is ``place`` (community_id, street_id,
    district_id, city_id) and whose severity is now ``severity``. ``unit_of_user``: each
    actor's unit (whether a wait was answered by the waiting unit); ``now``: the moment
    "overdue" is judged at."""
    units = unit_of_user or {}
    path = [place["community_id"], place["street_id"], place["district_id"], place["city_id"]]
    d = Derived(severity=first_severity(severity, events))
    tier = 0  # the owner's tier (an index into ``path``)
    reached = 0
    open_wait: dict | None = None

    def rule() -> DeadlineRule | None:
        return rules.get(d.severity) or rules.get(Severity.general)

    def deadline(kind: str, at: datetime) -> datetime:
        return due_by(rule(), kind, at, close)

    def lead() -> dict | None:
        return d.orders[-1] if d.orders else None

    def cancel_open() -> None:
        for order in d.orders:
            if order["state"] in ORDER_OPEN:
                order["state"] = W.cancelled

    def back_to_handler() -> None:
        d.unit_id = d.handler_id or d.owner_id
        order = lead()
        if order is not None and order["state"] == W.handled and order["unit_id"] == d.unit_id:
            order["state"], order["handled_at"] = W.acknowledged, None

    for event in events:
        action, at = _get(event, "action"), as_utc(_get(event, "at"))
        actor = _get(event, "actor_id")
        to_unit = _get(event, "to_unit_id")
        detail = _get(event, "detail") or {}
        spec = MOVES[action]
        if action == Act.add_report:  # written by another case's move: it changes nothing here
            continue
        before_unit, before_due = d.unit_id, d.sign_due_at
        from_state = d.state
        if action == Act.report:
            d.reported_at = at
            d.owner_id = d.unit_id = to_unit or path[0]  # the community it was first filed at
            d.sign_due_at = deadline(SIGN_FOR, at)
        elif action == Act.accept:
            if detail.get("severity"):
                d.severity = detail["severity"][1]
            d.sign_due_at = deadline(ANSWER_CALL, at)
        elif action in (Act.reject, Act.merge):
            d.sign_due_at = None
        elif action == Act.reassign:
            if detail.get("community") or (to_unit is not None and to_unit != d.unit_id):
                tier = 0
                d.unit_id = d.owner_id = to_unit
                d.sign_due_at = deadline(SIGN_FOR, at)
        elif action == Act.dispatch:
            handle_due = _moment(detail.get("handle_due")) or deadline(HANDLE, at)
            sign_due = _moment(detail.get("sign_due")) or deadline(SIGN_FOR, at)
            cancel_open()
            d.orders.append({"case_id": case_id, "unit_id": to_unit, "lead": True,
                             "state": W.dispatched, "dispatched_by_id": d.owner_id,
                             "sign_due_at": sign_due, "handle_due_at": handle_due,
                             "created_at": at, "signed_at": None, "handled_at": None})
            d.unit_id = d.handler_id = to_unit
            d.sign_due_at, d.handle_due_at = sign_due, handle_due
        elif action == Act.take:
            d.handler_id = d.owner_id
            d.sign_due_at = None
            d.handle_due_at = _moment(detail.get("handle_due")) or deadline(HANDLE, at)
        elif action == Act.acknowledge:
            order = lead()
            if order is not None:
                order["state"], order["signed_at"] = W.acknowledged, at
            d.sign_due_at = None
        elif action == Act.give_back:
            order = lead()
            cancel_open()
            if order is not None:
                order["state"] = W.returned
            d.unit_id, d.handler_id = d.owner_id, None
            d.handle_due_at = d.extension_until = None
            d.sign_due_at = deadline(ANSWER_CALL, at)
        elif action == Act.handle:
            order = lead()
            if order is not None and order["state"] in ORDER_OPEN:
                order["state"], order["handled_at"] = W.handled, at
            d.extension_until = None
            d.unit_id = path[0]
        elif action == Act.rework:
            back_to_handler()
        elif action == Act.reopen:
            d.closed_at = d.closure_hours = d.closure_workdays = None
            back_to_handler()
            d.handle_due_at = deadline(HANDLE, at)
            if actor is None and detail.get("rating"):
                d.rating = detail["rating"]
        elif action == Act.close:
            d.closed_at = at
            d.closure_hours = round((at - d.reported_at).total_seconds() / 3600, 3)
            d.closure_workdays = working_days_between(d.reported_at, at)
        elif action == Act.park:
            cancel_open()
            d.unit_id, d.handler_id = d.owner_id, None
            d.sign_due_at = d.handle_due_at = d.extension_until = None
        elif action == Act.resume:
            d.sign_due_at = deadline(ANSWER_CALL, at)
        elif action in (Act.call_up, Act.hand_back):
            taken_back = from_state == S.in_progress and d.handler_id is not None \
                and d.handler_id == d.owner_id
            waiting_here = d.unit_id == d.owner_id
            tier += 1 if action == Act.call_up else -1
            d.owner_id = path[tier]
            if action == Act.call_up:
                reached = max(reached, tier)
            if taken_back:
                d.handler_id = d.handle_due_at = None
                d.unit_id = d.owner_id
                d.sign_due_at = deadline(ANSWER_CALL, at)
            elif waiting_here:
                d.unit_id = d.owner_id
                d.sign_due_at = deadline(ANSWER_CALL, at)
        elif action in (Act.extend, Act.grant_extension):
            new_due = _moment(detail.get("new_due")) or d.extension_until
            d.handle_due_at = new_due
            order = lead()
            if order is not None and order["state"] in ORDER_OPEN:
                order["handle_due_at"] = new_due
            d.extension_until = None
        elif action == Act.request_extension:
            d.extension_until = _moment(detail.get("asked_due"))
        elif action == Act.refuse_extension:
            d.extension_until = None
        elif action in (Act.feedback, Act.rate, Act.rate_joined):
            if detail.get("rating"):
                d.rating = detail["rating"]
        d.state = _get(event, "to_state")
        if to_unit is not None:
            d.unit_id = to_unit
        d.committed_due_at, d.resolved_at = commitment_after(
            spec, at, d.committed_due_at, d.handle_due_at, d.resolved_at)
        ends, starts = wait_change((before_unit, before_due, from_state),
                                   (d.unit_id, d.sign_due_at, d.state))
        if ends and open_wait is not None:
            open_wait.update(ended_at=at, end_action=action,
                             answered=actor is not None and units.get(actor) == before_unit)
            open_wait = None
        if starts:
            open_wait = {"case_id": case_id, "unit_id": d.unit_id,
                         "kind": wait_kind(spec, d.state), "started_at": at,
                         "due_at": d.sign_due_at, "ended_at": None, "end_action": None,
                         "answered": False}
            d.waits.append(open_wait)
    d.reached_tier = TIERS[reached]
    d.overdue = bool(d.state is not None and is_past_due(d.state, d.sign_due_at, d.handle_due_at,
                                                          as_utc(now)))
    return d
