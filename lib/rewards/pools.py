"""Monthly reward pools (奖励资金池): one per street for ordinary awards and one for the district
for awards above the second-approval threshold, each month's budget taken from the policy when
the pool is first used.

Committing money is one UPDATE that adds only while the budget holds
(``committed + amount <= budget``); two approvers racing for the last of a pool cannot both
win, and the database's CHECK refuses an overdrawn or negative pool whatever the code does.
The per-reporter monthly cap is kept the same way, in a row per reporter and month
(``reward_cap_use``): summing the reporter's approved claims and then approving let three
approvals at once pass a ¥1,000 cap with ¥1,500 on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from lib.core.clock import china
from lib.core.errors import ValidationFailed
from lib.core.inputs import parse_month
from lib.core.workcal import CHINA_TZ
from lib.rewards.models import RewardCapUse, RewardClaim, RewardPolicy, RewardPool


def month_of(moment: datetime) -> str:
    """The month (China time) of a moment: ``2026-11``."""
    return china(moment).strftime("%Y-%m")


def month_start_of(month: str) -> datetime:
    """The first moment of a month ``YYYY-MM`` in China time; ``ValidationFailed`` if it is
    not one or lies outside ``inputs.YEARS`` (9999-12 has no next month, 0001-01 no UTC)."""
    parsed = parse_month(month)
    if parsed is None:
        raise ValidationFailed("error.month_invalid")
    return datetime(parsed[0], parsed[1], 1, tzinfo=CHINA_TZ)


def next_month_start(start: datetime) -> datetime:
    return start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)


def pool_unit(claim: RewardClaim, policy: RewardPolicy) -> int:
    """Large awards (above the second-approval threshold) come from the district's pool."""
    return claim.district_id if claim.amount_fen > policy.second_approval_above_fen else claim.street_id


def _pool(session: Session, unit_id: int, month: str, budget: int) -> RewardPool:
    found = session.exec(select(RewardPool).where(RewardPool.unit_id == unit_id,
                                                  RewardPool.month == month)).first()
    if found is not None:
        return found
    try:
        with session.begin_nested():
            session.exec(insert(RewardPool).values(unit_id=unit_id, month=month, budget_fen=budget,  # type: ignore[call-overload]
                                                   committed_fen=0))
    except IntegrityError:
        pass  # created by someone else at the same moment
    return session.exec(select(RewardPool).where(RewardPool.unit_id == unit_id,
                                                 RewardPool.month == month)).one()


def commit(session: Session, claim: RewardClaim, policy: RewardPolicy, now: datetime) -> RewardPool:
    """Reserve the claim's amount in its pool for this month, or refuse: the pool is spent."""
    return _reserve(session, claim, pool_unit(claim, policy), policy, now)


def _reserve(session: Session, claim: RewardClaim, unit_id: int, policy: RewardPolicy,
             now: datetime) -> RewardPool:
    budget = policy.district_pool_fen if unit_id == claim.district_id else policy.street_pool_fen
    pool = _pool(session, unit_id, month_of(now), budget)
    done = session.exec(update(RewardPool)  # type: ignore[call-overload]
                        .where(RewardPool.id == pool.id,
                               RewardPool.committed_fen + claim.amount_fen <= RewardPool.budget_fen)
                        .values(committed_fen=RewardPool.committed_fen + claim.amount_fen)
                        .execution_options(synchronize_session=False))
    if done.rowcount != 1:
        raise ValidationFailed("error.reward_pool_spent", month=pool.month)
    session.refresh(pool)
    return pool


def settle(session: Session, claim: RewardClaim, policy: RewardPolicy, now: datetime) -> None:
    """At the second approval of a large claim: an award belongs to the pool of the month it is
    approved in full (the ledger's awarded and pool columns read one month). A reservation made
    by the first approval in an earlier month moves into this month's pool of the same unit, or
    the approval is refused: this month's pool is spent."""
    if claim.pool_id is None:
        return
    held = session.get(RewardPool, claim.pool_id)
    if held.month == month_of(now):
        return
    pool = _reserve(session, claim, held.unit_id, policy, now)
    release(session, claim)
    claim.pool_id = pool.id


def take_cap(session: Session, claim: RewardClaim, policy: RewardPolicy, now: datetime) -> None:
    """Count the claim against its reporter's cap for this month, or refuse: the cap is reached.
    The check and the addition are one guarded UPDATE: a concurrent approval waits for the row
    (PostgreSQL) or the write lock (SQLite) and then sees the new total."""
    month = month_of(now)
    mine = (RewardCapUse.reporter_key == claim.reporter_key, RewardCapUse.month == month)
    if session.exec(select(RewardCapUse.id).where(*mine)).first() is None:
        try:
            with session.begin_nested():
                session.exec(insert(RewardCapUse).values(  # type: ignore[call-overload]
                    reporter_key=claim.reporter_key, month=month, used_fen=0))
        except IntegrityError:
            pass  # made by another approval at the same moment
    done = session.exec(update(RewardCapUse)  # type: ignore[call-overload]
                        .where(*mine,
                               RewardCapUse.used_fen + claim.amount_fen <= policy.reporter_cap_fen)
                        .values(used_fen=RewardCapUse.used_fen + claim.amount_fen)
                        .execution_options(synchronize_session=False))
    if done.rowcount != 1:
        raise ValidationFailed("error.reward_over_cap")


def release_cap(session: Session, claim: RewardClaim) -> None:
    """Give back to the reporter's cap what an approved small claim had counted (it was
    rejected before it was paid), in the month of the pool it was approved from."""
    if claim.pool_id is None:
        return
    month = session.get(RewardPool, claim.pool_id).month
    session.exec(update(RewardCapUse)  # type: ignore[call-overload]
                 .where(RewardCapUse.reporter_key == claim.reporter_key, RewardCapUse.month == month)
                 .values(used_fen=RewardCapUse.used_fen - claim.amount_fen)
                 .execution_options(synchronize_session=False))


def release(session: Session, claim: RewardClaim) -> None:
    """Give back what a claim had reserved in its pool (it was rejected after an approval)."""
    if claim.pool_id is None:
        return
    session.exec(update(RewardPool).where(RewardPool.id == claim.pool_id)  # type: ignore[call-overload]
                 .values(committed_fen=RewardPool.committed_fen - claim.amount_fen)
                 .execution_options(synchronize_session=False))
    claim.pool_id = None
