"""Who may claim a discovery reward, decided in lib with a reason a person can read.

A case reported by a resident becomes claimable once it is verified or closed as valid (not
rejected, not merged away). Joint reports count once: among a case and the reports merged into
it, the earliest reporter is the one who found it; the others are told they were not first.
Refusals (``RewardClaim.reason``):

  not_first         someone reported the same problem earlier
  staff_account     the report was made while logged in to a staff account
  staff_reporter    the reporter's phone is a staff account's (staff, grid worker, approver …)
  anonymous_no_pin  an anonymous report without a PIN: nobody can prove it is theirs
  no_rule           no reward is set for this category and severity

Later refusals come with the decision (an approver's reason, the monthly cap, a spent pool, a
passed window); see lib.rewards.machine.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lib.cases.machine import CASES
from lib.cases.models import Case, CaseEvent
from lib.cases.states import RESOLVED, S
from lib.core import jobs
from lib.core import machine as move_engine
from lib.core.clock import as_utc
from lib.core.db import get_engine, read_session, write_session
from lib.core.errors import DomainError
from lib.core.models import Source, utcnow
from lib.rewards import rules
from lib.rewards.machine import CLAIMS, ClaimAct, act, staff_identity
from lib.rewards.models import ClaimState, RewardClaim

VALIDATING = sorted(CASES.moves_into(RESOLVED))  # the moves that make a case valid
CATCH_UP = timedelta(days=3)  # the tick looks at cases moved in this window


def _since(session: Session, now: datetime) -> datetime | None:
    """Where the tick's search starts: three days before the newest claim written (so a tick
    that did not run for a week still finds that week's cases), at most three days ago; None
    (every case) before the first claim."""
    newest = session.exec(select(func.max(RewardClaim.created_at))).one()
    if newest is None:
        return None
    return min(now, as_utc(newest)) - CATCH_UP


def _members(session: Session, target: Case) -> list[Case]:
    """The case and the reports merged into it, earliest first."""
    merged = session.exec(select(Case).where(Case.merged_into_id == target.id)).all()
    return sorted([target, *merged], key=lambda c: (c.reported_at, c.id))


def _refusal(session: Session, case: Case) -> str | None:
    if case.anonymous and not case.pin_hash:
        return "anonymous_no_pin"
    return staff_identity(session, case)


def no_claim_reason(session: Session, case: Case) -> str | None:
    """Why a case that will never have a claim earns nothing; None while one may still come."""
    if case.source != Source.resident:
        return "not_resident_report"  # registered by staff, a grid worker or the hotline
    target = session.get(Case, case.merged_into_id) if case.merged_into_id else case
    if target is not None and target.state == S.rejected:
        return "case_rejected"
    return None


def _insert(session: Session, case: Case, *, state: str, reason: str | None, amount: int,
            rule_id: int | None, policy_id: int | None, window_ends_at: datetime | None,
            now: datetime) -> None:
    claim = RewardClaim(
        case_id=case.id, reporter_key=case.reporter_phone or f"code:{case.code}",
        reporter_phone=case.reporter_phone, community_id=case.community_id,
        street_id=case.street_id, district_id=case.district_id, category_id=case.category_id,
        amount_fen=amount, rule_id=rule_id, policy_id=policy_id, reason=reason,
        window_ends_at=window_ends_at, created_at=now, updated_at=now)
    move_engine.create(session, CLAIMS, claim, ClaimAct.open, actor=None, now=now, state=state,
                       detail={"reason": reason} if reason else None)


def open_group(session: Session, target: Case, now: datetime) -> int:
    """Claims for a valid case and the reports merged into it; how many were written."""
    members = _members(session, target)
    first = members[0]
    policy = rules.current_policy(session)
    written = 0
    for case in members:
        if case.source != Source.resident:
            continue
        common = dict(rule_id=None, policy_id=policy.id, window_ends_at=None, now=now, amount=0)
        if case is not first:
            _insert(session, case, state=ClaimState.ineligible, reason="not_first", **common)
        elif (reason := _refusal(session, case)) is not None:
            _insert(session, case, state=ClaimState.ineligible, reason=reason, **common)
        elif (rule := rules.rule_for(session, case.category_id, case.severity)) is None \
                or rule.amount_fen <= 0:
            _insert(session, case, state=ClaimState.ineligible, reason="no_rule", **common)
        else:
            _insert(session, case, state=ClaimState.eligible, reason=None, amount=rule.amount_fen,
                    rule_id=rule.id, policy_id=policy.id,
                    window_ends_at=now + timedelta(days=policy.claim_window_days), now=now)
        written += 1
    return written


def _waiting(since: datetime | None):  # noqa: ANN202
    """SQL: valid cases with a resident among their reporters and no claim written yet; with
    ``since``, only cases verified or closed since then (read from the events' index, not by
    walking every case)."""
    member = Case.__table__.alias("member")
    has_resident = or_(Case.source == Source.resident, exists().where(
        member.c.merged_into_id == Case.id, member.c.source == Source.resident))
    has_claim = exists().where(RewardClaim.case_id == Case.id) | exists().where(
        and_(member.c.merged_into_id == Case.id, exists().where(RewardClaim.case_id == member.c.id)))
    conditions = [Case.state.in_(sorted(RESOLVED)), Case.merged_into_id.is_(None), has_resident, ~has_claim]
    if since is not None:
        conditions.append(Case.id.in_(select(CaseEvent.case_id).where(
            CaseEvent.action.in_(VALIDATING), CaseEvent.at >= since)))
    return conditions


def open_claims(session: Session, now: datetime | None = None, *, everything: bool = False,
                limit: int = 500, backfill: bool = False) -> int:
    """Write the claims of cases that became valid (in the last days, or ``everything``); a
    ``backfill`` dates each claim when its case was closed (or last moved), as the tick would
    have."""
    now = now or utcnow()
    since = None if everything else _since(session, now)
    targets = session.exec(select(Case).where(*_waiting(since)).order_by(Case.id).limit(limit)).all()
    return sum(open_group(session, target,
                          min(now, as_utc(target.closed_at or target.updated_at)) if backfill else now)
               for target in targets)


def expire_claims(engine: Engine | None, now: datetime | None = None, limit: int = 500) -> int:
    """Close the claims nobody claimed in their window, each in a transaction of its own."""
    now = now or utcnow()
    with read_session(engine) as session:
        due = session.exec(select(RewardClaim.id, RewardClaim.version).where(
            RewardClaim.state == ClaimState.eligible, RewardClaim.window_ends_at < now)
            .limit(limit)).all()
    done = 0
    for claim_id, version in due:
        try:
            with write_session(engine) as session:
                act(session, None, claim_id, ClaimAct.expire, version=version, now=now, system=True)
            done += 1
        except DomainError:
            continue  # claimed or changed meanwhile: the next tick looks again
    return done


def run(engine: Engine | None = None, now: datetime | None = None,
        limit: int = 500) -> dict[str, int]:
    """The rewards' part of the tick: open new claims, expire stale ones. The search reads
    without the write lock; each case's claims are written in a short transaction of its own."""
    now = now or utcnow()
    with read_session(engine) as session:
        targets = session.exec(select(Case.id).where(*_waiting(_since(session, now)))
                               .order_by(Case.id).limit(limit)).all()
    opened = 0
    for case_id in targets:
        with write_session(engine) as session:
            target = session.exec(select(Case).where(Case.id == case_id, *_waiting(None))).first()
            if target is not None:  # nobody wrote them meanwhile
                opened += open_group(session, target, now)
    return {"claims_opened": opened, "claims_expired": expire_claims(engine, now)}


CLAIMS_JOB = "reward-claims"


def run_in_background(engine: Engine | None = None) -> bool:
    """Start ``run`` on a thread (lib.core.jobs: at most once a minute per process, never twice
    at once); the reward pages call this, so that claims open and expire even without cron.
    Returns at once."""
    engine = engine or get_engine()
    return jobs.start(CLAIMS_JOB, lambda: run(engine))
