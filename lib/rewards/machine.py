"""The claim machine (奖励申领): a discovery reward as data on the move engine.

eligible → claim (the reporter, with payment details) → pending → approve → approved (above the
threshold: approved_once → second_approve by another approver → approved) → pay → paid; or
reject (a reason) from pending or approved_once; or expire when the window closes unclaimed.

Who:
  approver  a reward approver of the claim's street or district who had no hand in the case
            (did not report, triage, dispatch or handle it) and does not share the reporter's
            phone; a second approval needs a different approver from the first
  public    the reporter on the tracking page, after proving the case is theirs
  system    the tick (claims expire)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from lib.core import machine as engine
from lib.core.errors import ValidationFailed
from lib.core.machine import Field, Machine, Step, move, note
from lib.core.models import (
    CaseEvent,
    ClaimState,
    RewardClaim,
    RewardEvent,
    RewardPayout,
    RewardPolicy,
    RewardPool,
    Role,
    UnitKind,
    User,
)
from lib.org.units import Actor
from lib.rewards import pools
from lib.rewards.rules import METHODS

C = ClaimState
PAYMENT_DETAIL_MAX = 100
REFERENCE_MAX = 60
REJECT_REASONS = ("not_valid", "not_first", "staff_reporter", "insufficient_facts", "fraud",
                  "over_cap", "other")
# The case moves that make a user part of the case: reported, triaged, dispatched, handled.
INVOLVING = ("report", "accept", "reject", "merge", "reassign", "dispatch", "take", "acknowledge",
             "start", "handle", "co_acknowledge", "co_handle", "verify", "feedback", "close")


@dataclass(frozen=True)
class Context:
    involved: frozenset[int]  # users who reported, triaged, dispatched or handled the case
    same_phone: frozenset[int]  # users whose phone is the reporter's
    policy: RewardPolicy
    now: datetime


def context(session: Session, claim: RewardClaim, now: datetime) -> Context:
    involved = frozenset(session.exec(select(CaseEvent.actor_id).where(
        CaseEvent.case_id == claim.case_id, CaseEvent.actor_id.is_not(None),
        CaseEvent.action.in_(INVOLVING))).all())
    same_phone = frozenset(session.exec(select(User.id).where(
        User.phone == claim.reporter_phone)).all()) if claim.reporter_phone else frozenset()
    policy = session.get(RewardPolicy, claim.policy_id) if claim.policy_id else None
    return Context(involved, same_phone, policy, now)


def in_scope(actor: Actor, claim: RewardClaim) -> bool:
    return (actor.unit_kind == UnitKind.street and claim.street_id == actor.unit_id) or \
        (actor.unit_kind == UnitKind.district and claim.district_id == actor.unit_id)


def _approver(actor: Actor, claim: RewardClaim, ctx: Context) -> bool:
    return actor.has(Role.reward_approver) and in_scope(actor, claim) and ctx is not None \
        and actor.id not in ctx.involved and actor.id not in ctx.same_phone


def _other_approver(actor, claim, ctx) -> bool:  # noqa: ANN001
    return actor is not None and actor.id != claim.first_approver_id


def _within_window(actor, claim, ctx) -> bool:  # noqa: ANN001
    return ctx is not None and claim.window_ends_at is not None and ctx.now <= claim.window_ends_at


def _window_passed(actor, claim, ctx) -> bool:  # noqa: ANN001
    return ctx is not None and claim.window_ends_at is not None and ctx.now > claim.window_ends_at


# ---------------------------------------------------------------- effects


def _claim(step: Step) -> None:
    claim = step.subject
    policy = step.session.get(RewardPolicy, claim.policy_id)
    method = step.values["method"]
    if policy is not None and method not in policy.methods.split(","):
        raise ValidationFailed("error.choice_invalid", field="method")
    if method != "cash" and not step.values["payment_detail"]:
        raise ValidationFailed("error.fields_required", fields=["payment_detail"])
    claim.method = method
    claim.payment_detail = step.values["payment_detail"]


def month_total(session: Session, reporter_key: str, month: str, *, but: int | None = None,
                up_to: int | None = None) -> int:
    """What a reporter was awarded in a month (claims approved from that month's pools);
    ``up_to``: only awards of at most that amount."""
    conditions = [RewardClaim.reporter_key == reporter_key, RewardClaim.id != (but or 0),
                  RewardClaim.state.in_([C.approved_once, C.approved, C.paid]),
                  RewardPool.month == month]
    if up_to is not None:
        conditions.append(RewardClaim.amount_fen <= up_to)
    return session.exec(select(func.coalesce(func.sum(RewardClaim.amount_fen), 0))
                        .join(RewardPool, RewardPool.id == RewardClaim.pool_id)
                        .where(*conditions)).one()


def _approve(step: Step) -> None:
    session, claim = step.session, step.subject
    policy = session.get(RewardPolicy, claim.policy_id)
    small = claim.amount_fen <= policy.second_approval_above_fen
    # The monthly cap limits everyday micro-rewards; a large award (a 黄赌毒 tip, say) is
    # weighed on its own by two approvers instead.
    if small and month_total(session, claim.reporter_key, pools.month_of(step.now), but=claim.id,
                             up_to=policy.second_approval_above_fen) + claim.amount_fen > \
            policy.reporter_cap_fen:
        raise ValidationFailed("error.reward_over_cap")
    pool = pools.commit(session, claim, policy, step.now)
    claim.pool_id = pool.id
    claim.first_approver_id = step.actor.id
    step.detail.update(pool=pool.month, amount_fen=claim.amount_fen)
    if not small:
        step.to_state = C.approved_once


def _second_approve(step: Step) -> None:
    step.subject.second_approver_id = step.actor.id


def _reject(step: Step) -> None:
    pools.release(step.session, step.subject)
    step.subject.reason = step.values["reason"]
    step.detail["reason"] = step.values["reason"]


def _pay(step: Step) -> None:
    claim = step.subject
    method = step.values["method"] or claim.method or "cash"
    step.session.add(RewardPayout(claim_id=claim.id, amount_fen=claim.amount_fen, method=method,
                                  reference=step.values["reference"], paid_at=step.now,
                                  paid_by_id=step.actor.id))
    step.detail.update(method=method, amount_fen=claim.amount_fen)


def _expire(step: Step) -> None:
    step.detail["window_ends_at"] = step.subject.window_ends_at.isoformat()


MOVES = {m.action: m for m in [
    move("open", None, C.eligible, "system", public=True),  # written by eligibility
    move("claim", {C.eligible}, C.pending, "public", effect=_claim, guard=_within_window,
         fields=[Field("method", "choice", required=True, choices=METHODS, labels="reward_method"),
                 Field("payment_detail", "text", max_len=PAYMENT_DETAIL_MAX)],
         public=True),
    move("approve", {C.pending}, C.approved, "approver", effect=_approve, fields=[note()],
         public=True, expected=True, also_to={C.approved_once}),
    move("second_approve", {C.approved_once}, C.approved, "approver", effect=_second_approve,
         guard=_other_approver, fields=[note()], public=True, expected=True),
    move("reject", {C.pending, C.approved_once}, C.rejected, "approver", effect=_reject,
         fields=[Field("reason", "choice", required=True, choices=REJECT_REASONS,
                       labels="reward_reason"), note(required=True)],
         public=True),
    move("pay", {C.approved}, C.paid, "approver", effect=_pay,
         # The method the reporter chose, unless the approver says otherwise.
         fields=[Field("method", "choice", choices=METHODS, labels="reward_method"),
                 Field("reference", "text", max_len=REFERENCE_MAX), note()],
         public=True, expected=True),
    move("expire", {C.eligible}, C.expired, "system", effect=_expire, guard=_window_passed,
         public=True),
]}


def can_see(session: Session, actor: Actor, claim: RewardClaim) -> bool:
    return in_scope(actor, claim)


def _event(claim: RewardClaim, seq: int, action: str, step: Step, from_state: str) -> RewardEvent:
    return RewardEvent(claim_id=claim.id, seq=seq, action=action, at=step.now,
                       actor_id=step.actor.id if step.actor else None, from_state=from_state,
                       to_state=claim.state, note=step.values.get("note"),
                       detail=json.dumps(step.detail, ensure_ascii=False) if step.detail else None)


CLAIMS = Machine(name="claim", model=RewardClaim, moves=MOVES, roles={"approver": _approver},
                 event=_event, can_see=can_see, context=context,
                 not_found="error.claim_not_found", labels="claim.")


def act(session: Session, actor: Actor | None, claim_id: object, action: str, *, version: int,
        now: datetime | None = None, system: bool = False, **params: object) -> RewardClaim:
    return engine.act(session, CLAIMS, actor, claim_id, action, version=version, now=now,
                      system=system, **params)
