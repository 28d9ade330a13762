"""A year of discovery rewards for the demo district, made through the claim machine so that
every claim's events agree with its state: most valid reports claimed, most claims approved and
paid, some rejected or left to expire, and a few fraud patterns for the approval page to flag
(one phone reporting several times a day, several phones at one place, one photo reused).

``bulk_pending`` fills a street with claims waiting for approval for the benchmark.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta

from sqlmodel import Session, select

from lib.cases.models import Attachment, Case, CaseState
from lib.cases.photos import PhotoKind
from lib.core import machine as move_engine
from lib.core.clock import as_utc
from lib.core.models import Category, Source, utcnow
from lib.org.auth import load_actor
from lib.org.models import User
from lib.rewards import eligibility, rules
from lib.rewards.machine import CLAIMS, REJECT_REASONS, ClaimAct, act
from lib.rewards.models import ClaimState, RewardClaim
from lib.rewards.rules import CASH
from lib.tools import demo

FRAUD_PHONE = "13900007777"


def _plant_patterns(session: Session, rng: random.Random, now: datetime) -> None:
    """A few patterns an approver should notice: reports told by the demo's generator like any
    other (their events, report moments and derived values agree), with the phone, place and
    moment of the pattern given, beside the year's latest closed resident reports."""
    closed = session.exec(select(Case).where(
        Case.source == Source.resident, Case.state == CaseState.closed,
        Case.anonymous.is_(False)).order_by(Case.id.desc()).limit(40)).all()
    if len(closed) < 12:
        return
    first, crowd = closed[0], closed[4]
    wanted = [  # one phone, four reports within hours
        {"community_id": first.community_id, "phone": FRAUD_PHONE,
         "reported_at": as_utc(first.reported_at) - timedelta(hours=rng.randint(1, 6))}
        for _ in range(4)]
    wanted += [  # several phones, one address, one day
        {"community_id": crowd.community_id, "category_id": crowd.category_id,
         "address": crowd.address,
         "reported_at": as_utc(crowd.reported_at) + timedelta(hours=rng.randint(1, 8))}
        for _ in range(4)]
    demo.add_cases(session, wanted,
                   seed=rng.randrange(10**6), now=now)
    photo = b"demo-reused-photo"
    for case in closed[8:10]:  # the same picture on two reports
        session.add(Attachment(case_id=case.id, kind=PhotoKind.report, mime="image/jpeg", size=len(photo),
                               sha256=hashlib.sha256(photo).hexdigest(), data=photo,
                               created_at=case.reported_at))
    session.flush()


def generate_claims(session: Session, *, seed: int = 2019, now: datetime | None = None) -> dict[str, int]:
    """Claims for every valid resident report so far, moved on as people would."""
    rng = random.Random(seed)
    now = now or utcnow()
    _plant_patterns(session, rng, now)
    eligibility.open_claims(session, now, everything=True, limit=1_000_000, backfill=True)
    approvers = {}
    for user in session.exec(select(User).where(User.username.in_(
            ["street_approver", "district_approver", "vice_approver", "vice_reviewer"]))).all():
        approvers[user.username] = load_actor(session, user)
    # Restricted tips are decided only by approvers who may read their evidence.
    restricted = set(session.exec(select(Case.id).join(Category, Category.id == Case.category_id)
                                  .where(Category.restricted)).all())
    counts = {"claims": 0, ClaimState.paid: 0, ClaimState.rejected: 0}
    claims = session.exec(select(RewardClaim).where(RewardClaim.state == ClaimState.eligible)
                          .order_by(RewardClaim.id)).all()
    for claim in claims:
        counts["claims"] += 1
        at = as_utc(claim.created_at)
        roll = rng.random()
        if roll < 0.15 or at + timedelta(days=1) > now:
            continue  # still claimable, or expires later
        act(session, None, claim.id, ClaimAct.claim, version=claim.version, now=at + timedelta(days=1),
            method=rng.choice(["bank", "cash", "points"]),
            payment_detail=f"6222{rng.randint(10**11, 10**12 - 1)}")
        secret = claim.case_id in restricted
        approver = approvers.get("vice_approver" if secret else "street_approver")
        if approver is None or (not secret and claim.street_id != approver.unit_id):
            approver = approvers.get("district_approver")
        if approver is None or roll < 0.25:
            continue  # waiting for approval
        decided = at + timedelta(days=rng.randint(2, 6))
        if decided + timedelta(days=3) > now:
            continue  # closed lately: the approver has not got to it yet
        try:
            if roll < 0.33:
                act(session, approver, claim.id, ClaimAct.reject, version=claim.version, now=decided,
                    reason=rng.choice(REJECT_REASONS[:5]), note="核查后不予奖励")
                counts[ClaimState.rejected] += 1
                continue
            act(session, approver, claim.id, ClaimAct.approve, version=claim.version, now=decided)
            if claim.state == ClaimState.approved_once:
                second = approvers.get("vice_reviewer" if secret else "district_approver")
                act(session, second, claim.id, ClaimAct.second_approve, version=claim.version,
                    now=decided + timedelta(days=1))
            if roll < 0.9:
                act(session, approver, claim.id, ClaimAct.pay, version=claim.version,
                    now=decided + timedelta(days=3), method=claim.method or CASH,
                    reference=f"PAY{claim.id:06d}")
                counts[ClaimState.paid] += 1
        except Exception:  # a spent pool or a cap: the claim waits, as in life
            continue
    return counts


def bulk_pending(session: Session, street_id: int, wanted: int, now: datetime | None = None) -> int:
    """Claims waiting for approval on the street's closed resident cases (benchmark data),
    opened and claimed through the claim machine."""
    now = now or utcnow()
    have = session.exec(select(RewardClaim.id).where(RewardClaim.street_id == street_id,
                                                     RewardClaim.state == ClaimState.pending)
                        .limit(wanted)).all()
    missing = wanted - len(have)
    if missing <= 0:
        return 0
    policy = rules.current_policy(session)
    claimed = select(RewardClaim.case_id)
    cases = session.exec(select(Case).where(
        Case.street_id == street_id, Case.source == Source.resident,
        Case.state == CaseState.closed, Case.id.not_in(claimed)).limit(missing)).all()
    for case in cases:
        claim = move_engine.create(session, CLAIMS, RewardClaim(
            case_id=case.id, reporter_key=case.reporter_phone or f"code:{case.code}",
            reporter_phone=case.reporter_phone, community_id=case.community_id,
            street_id=case.street_id, district_id=case.district_id, category_id=case.category_id,
            amount_fen=2000, policy_id=policy.id, window_ends_at=now + timedelta(days=30),
            created_at=now, updated_at=now), ClaimAct.open, actor=None, now=now)
        act(session, None, claim.id, ClaimAct.claim, version=claim.version, now=now,
            method=CASH, payment_detail=None)
    return len(cases)
