"""The case state machine as data: which move goes from which state to which.

The notice's closed loop 发现 → 报告 → 研判 → 派单 → 处置 → 反馈 maps onto
report → accept (研判) → dispatch (派单) → acknowledge (签收) → start → handle (处置)
→ verify (核查) → feedback (回访) → close (办结). Side moves keep the state and move the
case between units or flag it: call_up (呼叫), hand_back (下派), extend (延期),
supervise (督办); park (挂账) sets it aside with a review date. Co-handling departments (协办)
sign for and report on their own work orders (co_acknowledge, co_return, co_handle).

Each move names who may make it; ``may`` reads that. lib/actions.py applies the moves.
"""

from __future__ import annotations

from dataclasses import dataclass

from lib.models import FINAL_STATES, Case, CaseState, Role, Tier, UnitKind
from lib.orgs import Actor

S = CaseState
OPEN_STATES = frozenset(s.value for s in CaseState if s not in FINAL_STATES)


# Who may make a move (checked by ``may``):
#   triager  the unit the case is waiting at, when that is a tier unit (its staff)
#   owner    the tier unit that owns the case (triages, dispatches, extends, parks, calls up)
#   handler  the lead department or the owner handling it itself, while the case is with it
#   checker  the case's community or its owner: on-site check, call-back and closure
#   higher   staff or leaders of a tier above the owner, with the case in their area
#   cohandler  a department holding an open co-handling work order on the case
#   public   the resident, on the public pages (no login)
#   system   the scheduled tick
@dataclass(frozen=True)
class Move:
    action: str
    from_states: frozenset[str]
    to_state: str | None  # None: the state stays as it is
    who: frozenset[str]
    needs_note: bool = False


def _move(action: str, from_states: set[str] | frozenset[str] | None, to_state: str | None,
          who: str, needs_note: bool = False) -> Move:
    return Move(action, frozenset(from_states or ()), to_state, frozenset(who.split()), needs_note)


HANDLING = {S.dispatched, S.acknowledged, S.in_progress}

MOVES: dict[str, Move] = {m.action: m for m in [
    _move("report", None, S.reported, "public triager"),
    _move("accept", {S.reported}, S.accepted, "triager"),
    _move("reject", {S.reported}, S.rejected, "triager", needs_note=True),
    _move("merge", {S.reported, S.accepted}, S.merged, "triager public"),
    _move("dispatch", {S.accepted}, S.dispatched, "owner"),
    _move("take", {S.accepted}, S.in_progress, "owner"),  # the owner handles it itself
    _move("acknowledge", {S.dispatched}, S.acknowledged, "handler"),
    _move("return", {S.dispatched}, S.accepted, "handler", needs_note=True),  # 退单
    _move("start", {S.acknowledged}, S.in_progress, "handler"),
    _move("handle", {S.in_progress}, S.handled, "handler", needs_note=True),
    _move("verify", {S.handled}, S.verified, "checker"),
    _move("rework", {S.handled}, S.in_progress, "checker", needs_note=True),  # 返工
    _move("feedback", {S.verified}, S.feedback, "checker"),
    # The reporter is not satisfied: on the tracking page once handled, or by call-back.
    _move("reopen", {S.handled, S.verified, S.feedback, S.closed}, S.in_progress,
          "checker public", needs_note=True),
    _move("close", {S.verified, S.feedback}, S.closed, "checker"),
    _move("park", {S.accepted, S.in_progress}, S.parked, "owner", needs_note=True),
    _move("resume", {S.parked}, S.accepted, "owner"),
    _move("call_up", OPEN_STATES, None, "owner system", needs_note=True),
    _move("hand_back", OPEN_STATES, None, "owner", needs_note=True),
    _move("extend", HANDLING, None, "owner", needs_note=True),
    _move("supervise", OPEN_STATES, None, "higher", needs_note=True),
    _move("co_acknowledge", HANDLING, None, "cohandler"),
    _move("co_return", HANDLING, None, "cohandler", needs_note=True),
    _move("co_handle", HANDLING | {S.handled}, None, "cohandler", needs_note=True),
    _move("add_report", OPEN_STATES, None, "public"),  # another resident reports the same
    _move("rate", {S.handled, S.verified, S.feedback, S.closed}, None, "public"),
]}

# The staff role that acts for each kind of unit.
STAFF_ROLE = {
    UnitKind.community: Role.community_staff,
    UnitKind.street: Role.street_staff,
    UnitKind.district: Role.district_staff,
    UnitKind.city: Role.city_staff,
    UnitKind.department: Role.department_staff,
}
TIER_RANK = {Tier.community: 0, Tier.street: 1, Tier.district: 2, Tier.city: 3}


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


def _staff_of(actor: Actor, unit_id: int | None) -> bool:
    """The actor is staff of exactly this unit."""
    role = STAFF_ROLE.get(actor.unit_kind)
    return unit_id is not None and actor.unit_id == unit_id and role is not None and actor.has(role)


def may(actor: Actor | None, case: Case, action: str, *,
        open_co_units: frozenset[int] = frozenset()) -> bool:
    """Whether ``actor`` (None: the public or the system) may make ``action`` on ``case`` now.

    Checks the state and who; scope (which cases an actor can load at all) is checked where the
    case is loaded.
    """
    move = MOVES.get(action)
    if move is None or action == "report":
        return False
    if case.state not in move.from_states:
        return False
    if actor is None:
        return bool(move.who & {"public", "system"})
    who = move.who
    if "triager" in who and case.unit_id == case.owner_id and _staff_of(actor, case.unit_id):
        return True
    if "owner" in who and _staff_of(actor, case.owner_id):
        if action == "dispatch":  # a community handles or calls up; dispatch starts at a street
            return owner_tier(case) != Tier.community and case.unit_id == case.owner_id
        if action == "take":
            return case.unit_id == case.owner_id
        if action == "call_up":
            return parent_of_owner(case) is not None
        if action == "hand_back":
            return child_of_owner(case) is not None
        if action == "extend":
            return case.handle_due_at is not None
        return True
    if "handler" in who and case.unit_id == case.handler_id and _staff_of(actor, case.handler_id):
        return True
    if "checker" in who and case.unit_id in (case.community_id, case.owner_id) and (
            _staff_of(actor, case.community_id) or _staff_of(actor, case.owner_id)):
        return True
    if "cohandler" in who and actor.unit_id in open_co_units and actor.has(Role.department_staff):
        return True
    if "higher" in who and not case.supervised and actor.unit_kind != UnitKind.department \
            and actor.has(Role.street_staff, Role.district_staff, Role.city_staff, Role.leader):
        return TIER_RANK.get(actor.unit_tier, -1) > TIER_RANK[owner_tier(case)] and \
            actor.unit_id in (case.street_id, case.district_id, case.city_id)
    return False


def allowed_actions(actor: Actor | None, case: Case, *,
                    open_co_units: frozenset[int] = frozenset()) -> list[str]:
    """The moves this actor may make on the case now, in the order of the table."""
    return [a for a in MOVES if may(actor, case, a, open_co_units=open_co_units)]


def next_state(action: str, state: str | None) -> str:
    """The state after ``action`` from ``state``; raises ``ValueError`` if the move is not allowed."""
    move = MOVES.get(action)
    if move is None:
        raise ValueError(f"unknown action {action!r}")
    if action == "report":
        if state is not None:
            raise ValueError("a case is reported once")
        return move.to_state  # type: ignore[return-value]
    if state not in move.from_states:
        raise ValueError(f"{action} is not allowed from {state}")
    return move.to_state or state


def replay(actions_and_states: list[tuple[str, str | None, str]]) -> str | None:
    """Check a trail of (action, from_state, to_state); returns the final state or raises."""
    state: str | None = None
    for action, from_state, to_state in actions_and_states:
        if from_state != state:
            raise ValueError(f"{action}: trail says from {from_state}, case was {state}")
        expected = next_state(action, state)
        if to_state != expected:
            raise ValueError(f"{action}: trail says to {to_state}, machine says {expected}")
        state = to_state
    return state
