"""The claim machine (奖励申领): a discovery reward as data on the move engine.

eligible → claim (the reporter, with payment details) → pending → approve → approved (above the
threshold: approved_once → second_approve by another approver → approved) → pay → paid; or
reject (a reason) before it is paid; or expire when the window closes unclaimed.

Who:
  approver  a reward approver of the claim's street or district who has no event of their own
            on the case or on a case merged with it (any move whose record says it
            involves its actor, ``Move.involves``: every case move today), did not report it
            and does not share the reporter's phone; for a restricted category (黄赌毒,
            special populations) only one who may read its content
            (``access.sensitive_permit``), so that nobody decides money on evidence they
            have not seen; a second approval needs a different approver
  public    the reporter on the tracking page, after proving the case is theirs
  system    the tick (claims expire)

Money moves (approve, second approval, pay) are also refused while the report carries a staff
identity (made from a staff account, or from a phone a staff account has): such a claim can
only be rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, exists, func, or_
from sqlmodel import Session, select

from lib.cases.access import is_restricted, sensitive_permit
from lib.cases.machine import CASES
from lib.cases.models import Case, CaseEvent
from lib.core import machine as engine
from lib.core.errors import ValidationFailed
from lib.core.inputs import phone_digits
from lib.core.machine import Field, Machine, Step, move, note
from lib.core.models import Role, UnitKind
from lib.org.models import User
from lib.org.units import Actor
from lib.rewards import pools
from lib.rewards.models import ClaimState, RewardClaim, RewardEvent, RewardPayout, RewardPolicy, RewardPool
from lib.rewards.rules import CASH, METHODS

C = ClaimState


class ClaimAct(StrEnum):
    """Every move of the claim machine (``MOVES`` has one record for each)."""

    open = "open"  # written by eligibility: eligible, or ineligible with its reason
    claim = "claim"
    approve = "approve"
    second_approve = "second_approve"
    reject = "reject"
    pay = "pay"
    expire = "expire"


# Named groups of the claim's states; other modules ask for these, never spell them out.
DECIDING = frozenset({C.pending, C.approved_once})  # an approver's decision is awaited
AWARDED = frozenset({C.approved_once, C.approved, C.paid})  # money taken from a pool
TO_PAY = frozenset({C.approved})
REFUSED = frozenset({C.ineligible, C.rejected})  # no money, with a reason
GROUPS = {"deciding": DECIDING, "awarded": AWARDED, "to_pay": TO_PAY, "refused": REFUSED}
# The case moves that give their actor a hand in the case (``Move.involves``): such an
# approver may not decide the reward of its report.
INVOLVING = sorted(CASES.where(lambda m: m.involves))
PAYMENT_DETAIL_MAX = 100
REFERENCE_MAX = 60
REJECT_REASONS = ("not_valid", "not_first", "staff_reporter", "insufficient_facts", "fraud",
                  "over_cap", "other")


def _joined(case_id):  # noqa: ANN001, ANN202
    """SQL: the case that ``case_id`` was merged into (NULL if none), correlated to the claim of
    the enclosing query when ``case_id`` is its column."""
    claimed = Case.__table__.alias("claimed")
    return select(claimed.c.merged_into_id).where(claimed.c.id == case_id) \
        .correlate(RewardClaim).scalar_subquery()


def case_group(case_id) -> ColumnElement:  # noqa: ANN001
    """SQL: the ids of the claim's case, the case it was merged into, and the reports merged
    into either — the cases whose work decided the claim. ``case_id``: an id."""
    member = Case.__table__.alias("member")
    joined = _joined(case_id)
    return select(member.c.id).where(or_(member.c.id == case_id, member.c.id == joined,
                                         member.c.merged_into_id == case_id,
                                         member.c.merged_into_id == joined))


def acted_on(user_id: int, case_id) -> ColumnElement[bool]:  # noqa: ANN001
    """SQL: the user has any event on the group of the case (``case_group``: reported, triaged,
    called up, sent back, parked …: every move there is or will be, since it reads the events
    themselves). ``case_id`` may be the claim's column: each part is an indexed look-up per
    claim (one IN over the whole group let PostgreSQL scan every event per claim)."""
    joined = _joined(case_id)
    member = Case.__table__.alias("member")
    mine = (CaseEvent.actor_id == user_id) & CaseEvent.action.in_(INVOLVING)
    return or_(exists().where(CaseEvent.case_id == case_id, mine).correlate(RewardClaim),
               exists().where(CaseEvent.case_id == joined, mine).correlate(RewardClaim),
               exists().where(CaseEvent.case_id == member.c.id, mine,
                              member.c.merged_into_id.in_([case_id, joined])).correlate(RewardClaim))


def staff_identity(session: Session, case: Case) -> str | None:
    """Why the report carries a staff identity (a ``reward_reason``), or None: it was made while
    logged in to a staff account (``staff_account``), or from a phone that a staff account has,
    active or not (``staff_reporter``)."""
    if case.reported_by_id is not None:  # the actor of its report event, stored on the case
        return "staff_account"
    digits = comparable_phone(case.reporter_phone)
    if digits is not None and session.exec(select(User.id).where(
            User.phone == digits)).first() is not None:
        return "staff_reporter"
    return None


def comparable_phone(phone: str | None) -> str | None:
    """A phone as digits only, to compare a reporter's with a staff account's."""
    try:
        return phone_digits(phone)
    except ValidationFailed:
        return phone  # stored before the check existed: compared as it is


@dataclass(frozen=True)
class Context:
    case: Case
    acted: frozenset[int]  # users with any event on the case's group
    reporters: frozenset[int]  # users who are the reporter: the account that filed it, or the phone
    staff_report: bool  # the report carries a staff identity: no money moves, only a rejection
    restricted: bool  # a restricted category: decided only by who may read its content
    policy: RewardPolicy | None
    now: datetime


def context(session: Session, claim: RewardClaim, now: datetime) -> Context:
    case = session.get(Case, claim.case_id)
    acted = frozenset(session.exec(select(CaseEvent.actor_id).where(
        CaseEvent.case_id.in_(case_group(claim.case_id)), CaseEvent.actor_id.is_not(None),
        CaseEvent.action.in_(INVOLVING))
        .distinct()).all())
    digits = comparable_phone(claim.reporter_phone)
    reporters = set(session.exec(select(User.id).where(User.phone == digits)).all()) \
        if digits else set()
    if case.reported_by_id is not None:
        reporters.add(case.reported_by_id)
    policy = session.get(RewardPolicy, claim.policy_id) if claim.policy_id else None
    return Context(case, acted, frozenset(reporters), staff_identity(session, case) is not None,
                   is_restricted(session, case), policy, now)


def in_scope(actor: Actor, claim: RewardClaim) -> bool:
    return (actor.unit_kind == UnitKind.street and claim.street_id == actor.unit_id) or \
        (actor.unit_kind == UnitKind.district and claim.district_id == actor.unit_id)


def barred(actor: Actor, ctx: Context) -> str | None:
    """Why this approver may not decide or pay the claim (a catalog key), or None."""
    if actor.id in ctx.reporters:
        return "rewards.barred.own_report"
    if actor.id in ctx.acted:
        return "rewards.barred.acted"
    if ctx.restricted and not sensitive_permit(actor, ctx.case):
        return "rewards.barred.restricted"
    return None


def _approver(actor: Actor, claim: RewardClaim, ctx: Context) -> bool:
    return actor.has(Role.reward_approver) and in_scope(actor, claim) and ctx is not None \
        and barred(actor, ctx) is None


def _money(actor, claim, ctx) -> bool:  # noqa: ANN001
    """Money moves wait for no staff identity on the report (such a claim is only rejected)."""
    return ctx is not None and not ctx.staff_report


def _other_approver(actor, claim, ctx) -> bool:  # noqa: ANN001
    return actor is not None and actor.id != claim.first_approver_id and _money(actor, claim, ctx)


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
    if method != CASH and not step.values["payment_detail"]:
        raise ValidationFailed("error.fields_required", fields=["payment_detail"])
    claim.method = method
    claim.payment_detail = step.values["payment_detail"]


def month_total(session: Session, reporter_key: str, month: str) -> int:
    """What a reporter was awarded in a month (claims approved from that month's pools, large
    ones too), for the approver's view of their history; the cap is ``pools.take_cap``'s."""
    return session.exec(select(func.coalesce(func.sum(RewardClaim.amount_fen), 0))
                        .join(RewardPool, RewardPool.id == RewardClaim.pool_id)
                        .where(RewardClaim.reporter_key == reporter_key,
                               RewardClaim.state.in_(sorted(AWARDED)),
                               RewardPool.month == month)).one()


def _approve(step: Step) -> None:
    session, claim = step.session, step.subject
    policy = session.get(RewardPolicy, claim.policy_id)
    small = claim.amount_fen <= policy.second_approval_above_fen
    # The monthly cap limits everyday micro-rewards; a large award (a 黄赌毒 tip, say) is
    # weighed on its own by two approvers instead.
    if small:
        pools.take_cap(session, claim, policy, step.now)
    pool = pools.commit(session, claim, policy, step.now)
    claim.pool_id = pool.id
    claim.first_approver_id = step.actor.id
    step.detail.update(pool=pool.month, amount_fen=claim.amount_fen)
    if not small:
        step.to_state = C.approved_once


def _second_approve(step: Step) -> None:
    step.subject.second_approver_id = step.actor.id
    # The award is dated by this approval: its money moves to this month's pool if need be.
    pools.settle(step.session, step.subject, step.session.get(RewardPolicy, step.subject.policy_id),
                 step.now)


def _reject(step: Step) -> None:
    # An approved award not yet paid may still be rejected (a staff identity found after the
    # approval, say): its money goes back to the pool and, for a small one, to the cap.
    policy = step.session.get(RewardPolicy, step.subject.policy_id)
    if policy is not None and step.subject.amount_fen <= policy.second_approval_above_fen:
        pools.release_cap(step.session, step.subject)
    pools.release(step.session, step.subject)
    step.subject.reason = step.values["reason"]
    step.detail["reason"] = step.values["reason"]


def _pay(step: Step) -> None:
    claim = step.subject
    method = step.values["method"] or claim.method or CASH
    step.session.add(RewardPayout(claim_id=claim.id, amount_fen=claim.amount_fen, method=method,
                                  reference=step.values["reference"], paid_at=step.now,
                                  paid_by_id=step.actor.id))
    step.detail.update(method=method, amount_fen=claim.amount_fen)
    if step.values["reference"]:  # the payment's own number (a bank batch, a receipt)
        step.detail["reference"] = step.values["reference"]


def _expire(step: Step) -> None:
    step.detail["window_ends_at"] = step.subject.window_ends_at.isoformat()


MOVES = {m.action: m for m in [
    move(ClaimAct.open, None, C.eligible, "system", public=True,  # written by eligibility
         also_to={C.ineligible}),
    move(ClaimAct.claim, {C.eligible}, C.pending, "public", effect=_claim, guard=_within_window,
         fields=[Field("method", "choice", required=True, choices=METHODS, labels="reward_method"),
                 Field("payment_detail", "text", max_len=PAYMENT_DETAIL_MAX)],
         public=True),
    move(ClaimAct.approve, {C.pending}, C.approved, "approver", effect=_approve, guard=_money,
         fields=[note()], public=True, expected=True, also_to={C.approved_once}),
    move(ClaimAct.second_approve, {C.approved_once}, C.approved, "approver", effect=_second_approve,
         guard=_other_approver, fields=[note()], public=True, expected=True),
    move(ClaimAct.reject, {C.pending, C.approved_once, C.approved}, C.rejected, "approver", effect=_reject,
         fields=[Field("reason", "choice", required=True, choices=REJECT_REASONS,
                       labels="reward_reason"), note(required=True)],
         public=True),
    move(ClaimAct.pay, {C.approved}, C.paid, "approver", effect=_pay, guard=_money,
         # The method the reporter chose, unless the approver says otherwise.
         fields=[Field("method", "choice", choices=METHODS, labels="reward_method"),
                 Field("reference", "text", max_len=REFERENCE_MAX), note()],
         public=True, expected=True),
    move(ClaimAct.expire, {C.eligible}, C.expired, "system", effect=_expire, guard=_window_passed,
         public=True),
]}


def can_see(session: Session, actor: Actor, claim: RewardClaim) -> bool:
    return in_scope(actor, claim)


def _event(claim: RewardClaim, seq: int, action: str, step: Step, from_state: str) -> RewardEvent:
    return RewardEvent(claim_id=claim.id, seq=seq, action=action, at=step.now,
                       actor_id=step.actor.id if step.actor else None, from_state=from_state,
                       to_state=claim.state, note=step.values.get("note"),
                       detail=dict(step.detail) or None)


CLAIMS = Machine(name="claim", model=RewardClaim, moves=MOVES, roles={"approver": _approver},
                 event=_event, can_see=can_see, context=context,
                 not_found="error.claim_not_found", labels="claim.", groups=GROUPS)


def act(session: Session, actor: Actor | None, claim_id: object, action: str, *, version: int,
        now: datetime | None = None, system: bool = False, **params: object) -> RewardClaim:
    return engine.act(session, CLAIMS, actor, claim_id, action, version=version, now=now,
                      system=system, **params)
