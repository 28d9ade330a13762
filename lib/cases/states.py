"""The case machine's vocabulary: its actions and its named groups of states.

This module is part of the machine's definition (``lib.cases.machine`` holds the moves). Every
other module names a case's state or move through these names (``Act.dispatch``,
``S.closed``, ``HANDLING``), never as a string: ``tests/test_architecture.py`` fails on a state
or action written out anywhere else, so a renamed state or a new group is changed here once.
"""

from __future__ import annotations

from enum import StrEnum

from lib.cases.models import CaseState, WorkOrderState
from lib.core.models import Rating

S = CaseState
W = WorkOrderState


class Act(StrEnum):
    """Every move of the case machine (``lib.cases.machine.MOVES`` has one record for each)."""

    report = "report"  # written by intake
    accept = "accept"  # 研判: the tier accepts the report
    reject = "reject"
    merge = "merge"
    add_report = "add_report"  # written on the case a report was merged into
    reassign = "reassign"
    dispatch = "dispatch"  # 派单
    take = "take"  # 自办: the owner handles it itself
    acknowledge = "acknowledge"  # 签收
    give_back = "return"  # 退单: the department returns the order
    start = "start"
    handle = "handle"  # 处置完毕
    request_extension = "request_extension"
    grant_extension = "grant_extension"
    refuse_extension = "refuse_extension"
    verify = "verify"  # 核查
    rework = "rework"
    feedback = "feedback"  # 回访
    reopen = "reopen"
    close = "close"  # 办结
    park = "park"  # 挂账
    resume = "resume"
    call_up = "call_up"  # 呼叫
    hand_back = "hand_back"  # 下派
    extend = "extend"
    supervise = "supervise"  # 督办
    co_acknowledge = "co_acknowledge"
    co_return = "co_return"
    co_handle = "co_handle"
    hurry = "hurry"  # 催办, the reporter
    rate = "rate"  # the reporter's rating on the tracking page
    rate_joined = "rate_joined"  # the rating of a report that joined another case


# ---------------------------------------------------------------- groups of states

ALL = frozenset(S)
DROPPED = frozenset({S.rejected, S.merged})  # ended without a result of its own
FINAL = DROPPED | {S.closed}  # nothing more happens to it (a reopen aside)
OPEN = ALL - FINAL
# A community's two decisions: a new report to triage (研判: accept, reject, merge), then an
# accepted case to decide on (handle it ourselves, or call the street up).
TO_TRIAGE = frozenset({S.reported})
TO_DECIDE = frozenset({S.accepted})
TRIAGE = TO_TRIAGE | TO_DECIDE  # waiting at a tier for its decision
HANDLING = frozenset({S.dispatched, S.acknowledged, S.in_progress})  # the work is on
# A sign-for or answer deadline runs: the report or call waits for a tier, the order for its
# department's signature.
SIGN_WAIT = TRIAGE | {S.dispatched}
DUE = SIGN_WAIT | HANDLING  # a deadline runs (the tick marks it overdue when missed)
CHECK = frozenset({S.handled, S.verified, S.feedback})  # back for the community's check
RESOLVED = frozenset({S.verified, S.feedback, S.closed})  # resolved, checked on site
RESULT = frozenset({S.handled}) | RESOLVED  # the handler's result is known: it can be rated
ESCALABLE = frozenset({S.reported, S.accepted, S.parked}) | HANDLING  # may be called up

GROUPS: dict[str, frozenset[str]] = {
    "open": OPEN, "final": FINAL, "dropped": DROPPED, "to_triage": TO_TRIAGE,
    "to_decide": TO_DECIDE, "triage": TRIAGE, "handling": HANDLING,
    "sign_wait": SIGN_WAIT, "due": DUE, "check": CHECK, "resolved": RESOLVED, "result": RESULT,
    "escalable": ESCALABLE,
}

# Work orders (派单 to a department) that are still the department's to do.
ORDER_OPEN = frozenset({W.dispatched, W.acknowledged})

# The answers of a call-back (回访): a rating, or the reporter could not be reached.
UNREACHABLE = "unreachable"
FEEDBACK_ANSWERS = (*(r.value for r in Rating), UNREACHABLE)


class WaitKind(StrEnum):
    """What a unit's first action is awaited for (``case_wait.kind``, the response rate)."""

    triage = "triage"  # a new report, by its community (研判)
    decide = "decide"  # an accepted case, by its owner: take it on, dispatch or call up
    sign = "sign"  # a work order, by its department (签收, or a reasoned 退单)
    answer = "answer"  # a call-up or hand-back, by the tier it went to


# The wait a response deadline opens, by the state it is set in (a move may name its own).
WAIT_OF_STATE = {S.reported: WaitKind.triage, S.accepted: WaitKind.decide,
                 S.dispatched: WaitKind.sign}
