"""Reward figures for the assessment pages and the reward ledger, computed in the database, and
the checks ``check-ledger`` runs on the reward ledger.

One definition of each figure, read by the assessment pages (``lib.kpi.extras``) and the
reward ledger alike (docs/decisions.md, "Reward figures"):

- a claim made: a reward the reporter actually claimed (the ``claim`` move), dated by that
  move. A row that was never claimed (eligible, expired unclaimed) or never claimable
  (ineligible) is not a claim.
- awarded: a claim approved in full (every approval its amount needs: one, or two above the
  second-approval threshold), dated by that final approval, and still approved or paid (a
  rejection after approval takes it out, as it gives its money back to the pool).
- paid: of the awards of the month, what has been paid out.
- a month's pool holds the money of the awards approved in full in that month, and the money
  reserved by a first approval in that month of large claims awaiting their second approval:
  ``committed = awarded + reserved``, so the ledger's awarded and pool columns read one month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case as when
from sqlalchemy import func, literal
from sqlmodel import Session, select

from lib.cases.models import Case
from lib.cases.states import RESOLVED
from lib.core.models import Source, UnitKind
from lib.org.models import Unit
from lib.rewards.machine import AWARDED, DECIDING, MOVES, ClaimAct
from lib.rewards.models import ClaimState, RewardClaim, RewardEvent, RewardPayout, RewardPolicy, RewardPool
from lib.rewards.pools import month_start_of, next_month_start
from lib.rewards.rules import current_policy

C = ClaimState


def _reachable(starts: frozenset[str], skip: str) -> frozenset[str]:
    """The states a claim can reach from ``starts`` by any moves but ``skip``."""
    found, todo = set(starts), list(starts)
    while todo:
        state = todo.pop()
        for move in MOVES.values():
            if move.action != skip and state in move.from_states:
                for nxt in move.to_states(state) - found:
                    found.add(nxt)
                    todo.append(nxt)
    return frozenset(found)


# The move by which a reporter makes a claim, and the states of rows that were never claimed:
# those a claim reaches from its opening without that move (eligible, expired, ineligible).
MADE_BY = ClaimAct.claim
NEVER_CLAIMED = _reachable(MOVES[ClaimAct.open].to_states(C.eligible), MADE_BY)
CLAIMED = frozenset(C) - NEVER_CLAIMED  # pending, approved_once, approved, paid, rejected
# Approved in full: money taken from a pool and no approval awaited any more (approved, paid).
FULLY_APPROVED = AWARDED - DECIDING


def _per(key, *columns):  # noqa: ANN001, ANN002, ANN202
    """SELECT ``key`` (None: one total) and ``columns``, and the GROUP BY it needs."""
    stmt = select(literal(None) if key is None else key, *columns).select_from(RewardClaim)
    return stmt if key is None else stmt.group_by(key)


def made_moves():  # noqa: ANN201
    """SQL: each claim's claim move, as (claim_id, at): when the reporter made the claim."""
    return select(RewardEvent.claim_id.label("claim_id"), RewardEvent.at.label("at")).where(
        RewardEvent.action == MADE_BY).subquery()


def award_moves():  # noqa: ANN201
    """SQL: each claim's move into approval in full (the one approval of a small claim, the
    second of a large one), as (claim_id, at): at most one per claim, the state is never entered
    twice."""
    return select(RewardEvent.claim_id.label("claim_id"), RewardEvent.at.label("at")).where(
        RewardEvent.to_state.in_(sorted(FULLY_APPROVED)),
        RewardEvent.from_state.not_in(sorted(FULLY_APPROVED))).subquery()


def claims_made(session: Session, key, start: datetime, end: datetime,  # noqa: ANN001
                conditions: list) -> dict[object, int]:
    """Claims made in [start, end) (``conditions`` on ``RewardClaim``), counted per ``key``
    (a ``RewardClaim`` column, or None for one total)."""
    made = made_moves()
    return {row[0]: int(row[1]) for row in session.exec(
        _per(key, func.count()).join(made, made.c.claim_id == RewardClaim.id)
        .where(made.c.at >= start, made.c.at < end, *conditions)).all()}


def awarded(session: Session, key, start: datetime, end: datetime,  # noqa: ANN001
            conditions: list) -> dict[object, tuple[int, int, int]]:
    """Claims approved in full in [start, end) and still approved or paid, per ``key``:
    (count, amount, amount paid out), in fen."""
    moved = award_moves()
    paid = func.coalesce(func.sum(when((RewardClaim.state == C.paid, RewardClaim.amount_fen),
                                       else_=0)), 0)
    return {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in session.exec(
        _per(key, func.count(), func.coalesce(func.sum(RewardClaim.amount_fen), 0), paid)
        .join(moved, moved.c.claim_id == RewardClaim.id)
        .where(moved.c.at >= start, moved.c.at < end,
               RewardClaim.state.in_(sorted(FULLY_APPROVED)), *conditions)).all()}


def rejected(session: Session, key, start: datetime, end: datetime,  # noqa: ANN001
             conditions: list) -> dict[object, int]:
    """Claims rejected in [start, end) (by the reject move), per ``key``."""
    moves = select(RewardEvent.claim_id).where(
        RewardEvent.action == ClaimAct.reject, RewardEvent.at >= start, RewardEvent.at < end)
    return {row[0]: int(row[1]) for row in session.exec(
        _per(key, func.count())
        .where(RewardClaim.state == C.rejected, RewardClaim.id.in_(moves), *conditions)).all()}


@dataclass(frozen=True)
class PoolFigures:
    """A unit's reward pool for a month (China time): its budget, what is committed from it
    (``awarded`` approved in full + ``reserved`` by a first approval of a large claim awaiting
    its second), of the awards what was paid out, and what is left."""

    unit: Unit
    month: str
    budget_fen: int
    committed_fen: int
    awarded_fen: int
    reserved_fen: int
    paid_fen: int

    @property
    def left_fen(self) -> int:
        return self.budget_fen - self.committed_fen


def pool_figures(session: Session, unit: Unit, month: str) -> PoolFigures:
    """The pool of ``unit`` (a street, or the district for large awards) in ``month``. A pool
    nobody has drawn on yet has the budget the policy in force gives it, nothing committed."""
    month_start_of(month)  # a clear refusal of anything but YYYY-MM
    pool = session.exec(select(RewardPool).where(RewardPool.unit_id == unit.id,
                                                 RewardPool.month == month)).first()
    if pool is None:
        policy: RewardPolicy = current_policy(session)
        budget = policy.district_pool_fen if unit.kind == UnitKind.district else policy.street_pool_fen
        return PoolFigures(unit, month, budget, 0, 0, 0, 0)
    sums = dict(session.exec(select(RewardClaim.state, func.sum(RewardClaim.amount_fen))
                             .where(RewardClaim.pool_id == pool.id)
                             .group_by(RewardClaim.state)).all())
    full = sum(int(sums.get(s) or 0) for s in FULLY_APPROVED)
    reserved = sum(int(v or 0) for s, v in sums.items() if s not in FULLY_APPROVED)
    return PoolFigures(unit, month, pool.budget_fen, pool.committed_fen, full, reserved,
                       int(sums.get(C.paid) or 0))


@dataclass(frozen=True)
class MonthTotal:
    """One street's line of the reward ledger's month: claims made, awarded and paid of the
    awards, rejected (each dated as the module says), and the street's pool of the month."""

    street: Unit
    claims: int
    awarded: int  # how many approved in full
    approved_fen: int  # their amount (still approved or paid)
    paid_fen: int  # of that, paid out
    rejected: int
    pool: PoolFigures


def month_totals(session: Session, condition, month: str) -> list[MonthTotal]:  # noqa: ANN001
    """Per street of the claims ``condition`` selects (the reader's area), the month's figures
    on the one basis above; streets with nothing in the month are left out."""
    start = month_start_of(month)
    end = next_month_start(start)
    key = RewardClaim.street_id
    made = claims_made(session, key, start, end, [condition])
    given = awarded(session, key, start, end, [condition])
    refused = rejected(session, key, start, end, [condition])
    ids = set(made) | set(given) | set(refused)
    streets = {u.id: u for u in session.exec(select(Unit).where(Unit.id.in_(ids))).all()} \
        if ids else {}
    return sorted([MonthTotal(streets[s], made.get(s, 0), *given.get(s, (0, 0, 0)),
                              refused.get(s, 0), pool_figures(session, streets[s], month))
                   for s in ids], key=lambda t: t.street.code)


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
