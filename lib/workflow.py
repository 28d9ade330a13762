"""The case state machine as data: which move goes from which state to which.

The notice's closed loop 发现 → 报告 → 研判 → 派单 → 处置 → 反馈 maps onto
report → accept (研判) → dispatch (派单) → acknowledge (签收) → start → handle (处置)
→ verify (核查) → feedback (回访) → close (办结). Side moves keep the state and move the
case between units or flag it: call_up (呼叫), hand_back (下派), extend (延期),
supervise (督办); park (挂账) sets it aside with a review date.
"""

from __future__ import annotations

from dataclasses import dataclass

from lib.models import FINAL_STATES, CaseState

S = CaseState
OPEN_STATES = frozenset(s.value for s in CaseState if s not in FINAL_STATES)


@dataclass(frozen=True)
class Move:
    action: str
    from_states: frozenset[str]
    to_state: str | None  # None: the state stays as it is


def _move(action: str, from_states: set[str] | frozenset[str] | None, to_state: str | None) -> Move:
    return Move(action, frozenset(from_states or ()), to_state)


MOVES: dict[str, Move] = {m.action: m for m in [
    _move("report", None, S.reported),
    _move("accept", {S.reported}, S.accepted),
    _move("reject", {S.reported}, S.rejected),
    _move("merge", {S.reported, S.accepted}, S.merged),
    _move("dispatch", {S.accepted}, S.dispatched),
    _move("take", {S.accepted}, S.in_progress),          # the triaging unit handles it itself
    _move("acknowledge", {S.dispatched}, S.acknowledged),
    _move("return", {S.dispatched}, S.accepted),          # 退单: back to the dispatching unit
    _move("start", {S.acknowledged}, S.in_progress),
    _move("handle", {S.in_progress}, S.handled),
    _move("verify", {S.handled}, S.verified),
    _move("rework", {S.handled}, S.in_progress),          # 返工
    _move("feedback", {S.verified}, S.feedback),
    _move("reopen", {S.feedback, S.closed}, S.in_progress),  # the reporter is not satisfied
    _move("close", {S.verified, S.feedback}, S.closed),
    _move("park", {S.accepted, S.in_progress}, S.parked),
    _move("resume", {S.parked}, S.accepted),
    _move("call_up", OPEN_STATES, None),
    _move("hand_back", OPEN_STATES, None),
    _move("extend", OPEN_STATES, None),
    _move("supervise", OPEN_STATES, None),
]}


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
