"""Reward figures for the KPI pages, computed in the database, and the checks ``check-ledger``
runs on the reward ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case as when
from sqlalchemy import func
from sqlmodel import Session, select

from lib.cases.models import Case
from lib.cases.states import RESOLVED
from lib.core.models import Source
from lib.rewards.machine import AWARDED
from lib.rewards.models import ClaimState, RewardClaim, RewardEvent, RewardPayout, RewardPool

C = ClaimState


@dataclass(frozen=True)
class UnitFigures:
    unit_id: int
    claims: int
    awarded_fen: int
    paid_fen: int
    rejections: dict[str, int]
    resident_reports: int
    valid_reports: int  # verified or closed, not rejected or merged

    @property
    def valid_ratio(self) -> float | None:
        return self.valid_reports / self.resident_reports if self.resident_reports else None


def by_unit(session: Session, column, start: datetime, end: datetime,  # noqa: ANN001
            scope=None) -> list[UnitFigures]:  # noqa: ANN001
    """Claims created in [start, end) and residents' reports of the period, grouped by the
    claims' and cases' ``column`` name (``street_id`` or ``community_id``)."""
    claim_col = getattr(RewardClaim, column)
    case_col = getattr(Case, column)
    conditions = [RewardClaim.created_at >= start, RewardClaim.created_at < end]
    if scope is not None:
        conditions.append(scope(RewardClaim))
    claims = {row[0]: row[1:] for row in session.exec(select(
        claim_col, func.count(),
        func.coalesce(func.sum(when((RewardClaim.state.in_(sorted(AWARDED)), RewardClaim.amount_fen),
                                    else_=0)), 0),
        func.coalesce(func.sum(when((RewardClaim.state == C.paid, RewardClaim.amount_fen),
                                    else_=0)), 0))
        .where(*conditions).group_by(claim_col)).all()}
    reasons: dict[int, dict[str, int]] = {}
    for unit_id, reason, count in session.exec(select(claim_col, RewardClaim.reason, func.count())
                                               .where(*conditions, RewardClaim.state == C.rejected)
                                               .group_by(claim_col, RewardClaim.reason)).all():
        reasons.setdefault(unit_id, {})[reason or "other"] = count
    case_conditions = [Case.source == Source.resident, Case.reported_at >= start,
                       Case.reported_at < end]
    if scope is not None:
        case_conditions.append(scope(Case))
    reports = {row[0]: row[1:] for row in session.exec(select(
        case_col, func.count(),
        func.coalesce(func.sum(when((Case.state.in_(sorted(RESOLVED)), 1), else_=0)), 0))
        .where(*case_conditions).group_by(case_col)).all()}
    units = sorted(set(claims) | set(reports))
    return [UnitFigures(u, *(claims.get(u) or (0, 0, 0)), reasons.get(u, {}),
                        *(reports.get(u) or (0, 0))) for u in units]


def ledger_problems(session: Session, limit: int = 20) -> list[str]:
    """What is wrong with the reward ledger (should be nothing): an overdrawn or negative pool,
    a paid claim without exactly one payout, a payout of an unpaid claim, a claim whose state
    differs from its last event's."""
    problems = [f"pool {p.id} ({p.month}) committed {p.committed_fen} of {p.budget_fen}"
                for p in session.exec(select(RewardPool).where(
                    (RewardPool.committed_fen < 0)
                    | (RewardPool.committed_fen > RewardPool.budget_fen)).limit(limit)).all()]
    payouts = select(RewardPayout.claim_id, func.count().label("n")).group_by(
        RewardPayout.claim_id).subquery()
    for claim_id, state, n in session.exec(
            select(RewardClaim.id, RewardClaim.state, payouts.c.n)
            .outerjoin(payouts, payouts.c.claim_id == RewardClaim.id)
            .where(((RewardClaim.state == C.paid) & (func.coalesce(payouts.c.n, 0) != 1))
                   | ((RewardClaim.state != C.paid) & (func.coalesce(payouts.c.n, 0) > 0)))
            .limit(limit)).all():
        problems.append(f"claim {claim_id} is {state} with {n or 0} payouts")
    last = select(RewardEvent.claim_id, func.max(RewardEvent.seq).label("seq")).group_by(
        RewardEvent.claim_id).subquery()
    for claim_id, state, to_state in session.exec(
            select(RewardClaim.id, RewardClaim.state, RewardEvent.to_state)
            .join(last, last.c.claim_id == RewardClaim.id)
            .join(RewardEvent, (RewardEvent.claim_id == last.c.claim_id)
                  & (RewardEvent.seq == last.c.seq))
            .where(RewardEvent.to_state != RewardClaim.state).limit(limit)).all():
        problems.append(f"claim {claim_id} is {state} but its last event says {to_state}")
    return problems
