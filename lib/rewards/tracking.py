"""The reporter's side of a reward, on the tracking page: whether the case earned one and why
not, how much (after the proof for viewing), and the claim itself with payment details — after
a code sent by SMS for claiming (the PIN where the report left no phone), like every public
move (lib.cases.tracking)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import select

from lib.cases.models import Case
from lib.cases.tracking import CLAIM, prove, proved
from lib.core.db import read_session, write_session
from lib.core.errors import NotFound, ValidationFailed
from lib.core.models import utcnow
from lib.rewards import eligibility
from lib.rewards.machine import CLAIMS, ClaimAct, act, context
from lib.rewards.models import ClaimState, RewardClaim, RewardPayout, RewardPolicy


@dataclass(frozen=True)
class RewardView:
    state: str | None  # None: no reward decision yet (the case is not verified or closed)
    reason: str | None
    amount_fen: int
    window_ends_at: datetime | None
    can_claim: bool
    methods: list[str]
    version: int
    paid_at: datetime | None
    claim_id: int | None = None


def reward_for(engine: Engine | None, code: object, proof: object, *,
               client_address: str | None = None, now: datetime | None = None) -> RewardView:
    now = now or utcnow()
    case_id = prove(engine, code, proof, client_address, now)
    with read_session(engine) as session:
        claim = session.exec(select(RewardClaim).where(RewardClaim.case_id == case_id)).first()
        if claim is None:
            reason = eligibility.no_claim_reason(session, session.get(Case, case_id))
            return RewardView(ClaimState.ineligible if reason else None, reason, 0, None, False, [],
                              0, None)
        policy = session.get(RewardPolicy, claim.policy_id) if claim.policy_id else None
        payout = session.exec(select(RewardPayout).where(RewardPayout.claim_id == claim.id)).first()
        return RewardView(claim.state, claim.reason, claim.amount_fen, claim.window_ends_at,
                          CLAIMS.may(None, claim, ClaimAct.claim, context(session, claim, now)),
                          policy.methods.split(",") if policy else [], claim.version,
                          payout.paid_at if payout else None, claim.id)


def claim_reward(engine: Engine | None, *, code: object, proof: object, method: object,
                 payment_detail: object, version: int, client_address: str | None = None,
                 now: datetime | None = None) -> RewardClaim:
    """The reporter claims the reward, leaving how to be paid (personal data)."""
    now = now or utcnow()
    with write_session(engine) as session:
        case = proved(session, code, proof, CLAIM, client_address, now)
        if case is not None:
            claim = session.exec(select(RewardClaim).where(RewardClaim.case_id == case.id)).first()
            if claim is None or claim.state != ClaimState.eligible:
                raise ValidationFailed("error.cannot_claim")
            if claim.window_ends_at is not None and now > claim.window_ends_at:
                raise ValidationFailed("error.claim_window_passed")
            return act(session, None, claim.id, ClaimAct.claim, version=version, now=now, method=method,
                       payment_detail=payment_detail)
    raise NotFound("error.tracking_not_found")
