"""The reward figures' bases (docs/decisions.md, "Reward figures"): claims made are claims a
reporter made, awards are claims approved in full, each dated by its own move and read the same
way by the assessment pages and the reward ledger, whose pools hold the month's awards — on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlmodel import select

from lib.core.clock import as_utc
from lib.core.db import read_session, write_session
from lib.core.errors import ValidationFailed
from lib.core.workcal import CHINA_TZ
from lib.kpi import extras
from lib.kpi.figures import Period
from lib.org.models import Unit
from lib.org.units import find_unit
from lib.rewards import approval, figures, machine
from lib.rewards.machine import ClaimAct
from lib.rewards.models import ClaimState, RewardClaim, RewardPool
from tests.factories import actor, everything, open_page, unit_id
from tests.test_rewards import _claim_of, _claimed, _closed, _decide, _large, _open

C = ClaimState
STREET = "510104001"
DISTRICT = "510104"
JANUARY = Period(date(2026, 1, 1), date(2026, 1, 31), "2026-01")
FEBRUARY = Period(date(2026, 2, 1), date(2026, 2, 28), "2026-02")


def china(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=CHINA_TZ)


# The last minutes of January and the first of February in China time: both are 31 January
# in UTC, so a figure that read UTC months would put them together.
LAST_OF_JANUARY = china(1, 31, 23, 50)
FIRST_OF_FEBRUARY = china(2, 1, 0, 10)


def _make(db, case, when: datetime) -> RewardClaim:
    """The reporter claims the case's reward at ``when``, through the claim machine."""
    _open(db)
    claim = _claim_of(db, case.id)
    with write_session(db) as s:
        return machine.act(s, None, claim.id, ClaimAct.claim, version=claim.version, now=when,
                           method="cash", payment_detail=None)


def _kpi(db, username: str, period: Period) -> dict[str, float]:
    """The reward figures of the assessment pages for the user's unit."""
    with read_session(db) as s:
        scope = s.get(Unit, actor(db, username).unit_id)
        return {k: v.value for k, v in extras.values(s, scope, period, None).items()}


def _per_street(db, period: Period) -> dict[str, tuple[float, float]]:
    """The district's rankings' reward figures per street (those with anything counted)."""
    with read_session(db) as s:
        district = find_unit(s, DISTRICT)
        found = extras.by_unit(s, district, period, "street", None)
        codes = {u.id: u.code for u in s.exec(select(Unit)).all()}
    made, given = found["reward_claims"], found["reward_awarded_yuan"]
    return {codes[u]: (made[u].value if u in made else 0, given[u].value if u in given else 0)
            for u in set(made) | set(given)}


def _ledger(db, username: str, month: str) -> list[tuple]:
    """The reward ledger's month totals: (street, claims, awards, approved, paid, rejected,
    street pool committed)."""
    return [(t.street.code, t.claims, t.awarded, t.approved_fen, t.paid_fen, t.rejected,
             t.pool.committed_fen)
            for t in approval.month_totals(actor(db, username), month, engine=db)]


def _pool(db, month: str) -> tuple[int, int, int, int, int]:
    """The district pool as its readers see it: (committed, awarded, reserved, paid, left)."""
    p = approval.district_pool(actor(db, "district_leader"), month, engine=db)
    return p.committed_fen, p.awarded_fen, p.reserved_fen, p.paid_fen, p.left_fen


def test_the_claimed_states_are_those_reached_only_by_the_reporters_claim():
    assert figures.NEVER_CLAIMED == {C.eligible, C.expired, C.ineligible}
    assert figures.CLAIMED == {C.pending, C.approved_once, C.approved, C.paid, C.rejected}
    assert figures.FULLY_APPROVED == {C.approved, C.paid}


def test_a_large_claim_with_one_of_its_two_approvals_is_not_awarded(db):
    claim = _make(db, _large(db), china(1, 10, 9))  # ¥2,000: above the ¥500 threshold
    once = _decide(db, "street_approver", claim, "approve", now=china(1, 11, 9))
    assert once.state == C.approved_once
    assert _kpi(db, "district_leader", JANUARY) == {"reward_claims": 1, "reward_awarded_yuan": 0}
    assert _kpi(db, "street_leader", JANUARY) == {"reward_claims": 1, "reward_awarded_yuan": 0}
    assert _per_street(db, JANUARY) == {STREET: (1, 0)}
    assert _ledger(db, "district_leader", "2026-01") == [(STREET, 1, 0, 0, 0, 0, 0)]
    # The money is reserved in the district's pool, not yet awarded.
    budget = approval.district_pool(actor(db, "district_leader"), "2026-01", engine=db).budget_fen
    assert _pool(db, "2026-01") == (200000, 0, 200000, 0, budget - 200000)

    done = _decide(db, "district_approver", claim, "second_approve", now=china(1, 12, 9))
    assert done.state == C.approved
    assert _kpi(db, "district_leader", JANUARY) == {"reward_claims": 1,
                                                    "reward_awarded_yuan": 2000}
    assert _per_street(db, JANUARY) == {STREET: (1, 2000)}
    # The street's line counts the award; the money is the district pool's, not the street's.
    assert _ledger(db, "district_leader", "2026-01") == [(STREET, 1, 1, 200000, 0, 0, 0)]
    assert _pool(db, "2026-01") == (200000, 200000, 0, 0, budget - 200000)
    _decide(db, "district_approver", claim, "pay", method="cash", reference="PAY-1",
            now=china(1, 20, 9))
    assert _ledger(db, "district_leader", "2026-01") == [(STREET, 1, 1, 200000, 200000, 0, 0)]
    assert _pool(db, "2026-01") == (200000, 200000, 0, 200000, budget - 200000)


def test_rows_never_claimed_or_ineligible_are_not_claims(db):
    claimed = _closed(db)
    waiting = _closed(db)  # eligible: the reporter has not claimed it
    lapsed = _closed(db)  # eligible, then expired unclaimed
    ineligible = _closed(db, category="dogs", phone=None, name=None, anonymous=True)
    rejected = _closed(db)
    _make(db, claimed, china(1, 5, 9))
    refused = _make(db, rejected, china(1, 6, 9))
    _decide(db, "street_approver", refused, "reject", reason="fraud", note="重复申领",
            now=china(1, 7, 9))
    late = _claim_of(db, lapsed.id)
    with write_session(db) as s:
        machine.act(s, None, late.id, ClaimAct.expire, version=late.version, system=True,
                    now=as_utc(late.window_ends_at) + timedelta(days=1))
    states = [_claim_of(db, c.id).state for c in (claimed, waiting, lapsed, ineligible, rejected)]
    assert states == [C.pending, C.eligible, C.expired, C.ineligible, C.rejected]
    # Five rows, two claims made in January (the pending and the rejected one); none awarded.
    assert _kpi(db, "district_leader", JANUARY) == {"reward_claims": 2, "reward_awarded_yuan": 0}
    assert _kpi(db, "community_leader", JANUARY) == {"reward_claims": 2,
                                                     "reward_awarded_yuan": 0}
    assert _ledger(db, "street_leader", "2026-01") == [(STREET, 2, 0, 0, 0, 1, 0)]
    # The rows were opened this month, when their cases closed; opening is not claiming.
    assert _ledger(db, "street_leader", approval.pools.month_of(
        _claim_of(db, waiting.id).created_at)) == []


def test_a_claim_made_in_one_month_and_approved_in_the_next_counts_in_each_by_its_move(db):
    claim = _make(db, _closed(db), LAST_OF_JANUARY)  # ¥50
    _decide(db, "street_approver", claim, "approve", now=FIRST_OF_FEBRUARY)
    # Made in January; awarded in February, in the assessment figures and the ledger alike.
    assert _kpi(db, "street_leader", JANUARY) == {"reward_claims": 1, "reward_awarded_yuan": 0}
    assert _kpi(db, "street_leader", FEBRUARY) == {"reward_claims": 0, "reward_awarded_yuan": 50}
    assert _per_street(db, JANUARY) == {STREET: (1, 0)}
    assert _per_street(db, FEBRUARY) == {STREET: (0, 50)}
    assert _ledger(db, "street_leader", "2026-01") == [(STREET, 1, 0, 0, 0, 0, 0)]
    # The approved column and the street's pool read the same month: February's.
    assert _ledger(db, "street_leader", "2026-02") == [(STREET, 0, 1, 5000, 0, 0, 5000)]
    with read_session(db) as s:
        pools = {p.month: p.committed_fen for p in s.exec(select(RewardPool)).all()}
    assert pools == {"2026-02": 5000}
    # The ledger's list by approval month shows the same claim in February, none in January.
    for month, expected in (("2026-01", []), ("2026-02", [claim.id])):
        rows = approval.ledger_rows(actor(db, "street_leader"),
                                    approval.LedgerFilter(month=month, dated="approval"),
                                    lang_name=lambda u: u.name_zh, label=str, engine=db)
        assert [r["id"] for r in rows] == expected, month
    # Paid in March: counted with its award in February (the pool's month), not in March.
    _decide(db, "street_approver", claim, "pay", method="cash", reference="PAY-2",
            now=china(3, 2, 9))
    assert _ledger(db, "street_leader", "2026-02") == [(STREET, 0, 1, 5000, 5000, 0, 5000)]
    assert _ledger(db, "street_leader", "2026-03") == []


def test_a_large_award_approved_in_full_next_month_takes_its_money_from_that_months_pool(db):
    claim = _make(db, _large(db), china(1, 20, 9))
    _decide(db, "street_approver", claim, "approve", now=LAST_OF_JANUARY)
    assert _pool(db, "2026-01")[:3] == (200000, 0, 200000)
    _decide(db, "district_approver", claim, "second_approve", now=FIRST_OF_FEBRUARY)
    assert _pool(db, "2026-01")[:3] == (0, 0, 0)
    assert _pool(db, "2026-02")[:3] == (200000, 200000, 0)
    assert _kpi(db, "district_leader", JANUARY) == {"reward_claims": 1, "reward_awarded_yuan": 0}
    assert _kpi(db, "district_leader", FEBRUARY) == {"reward_claims": 0,
                                                     "reward_awarded_yuan": 2000}
    with read_session(db) as s:
        assert s.get(RewardPool, _claim_of(db, claim.case_id).pool_id).month == "2026-02"
        assert figures.ledger_problems(s) == []


def test_a_second_approval_is_refused_when_its_months_pool_cannot_hold_the_award(db):
    claim = _make(db, _large(db), china(1, 20, 9))
    _decide(db, "street_approver", claim, "approve", now=china(1, 21, 9))
    with write_session(db) as s:  # February's district pool has ¥1,000 left
        s.add(RewardPool(unit_id=unit_id(db, DISTRICT), month="2026-02", budget_fen=100000))
    with pytest.raises(ValidationFailed) as refused:
        _decide(db, "district_approver", claim, "second_approve", now=china(2, 3, 9))
    assert refused.value.key == "error.reward_pool_spent"
    assert _claim_of(db, claim.case_id).state == C.approved_once
    assert _pool(db, "2026-01")[:3] == (200000, 0, 200000)  # still reserved in January
    assert _pool(db, "2026-02")[:3] == (0, 0, 0)


def test_the_district_pool_is_shown_to_district_readers_only(db):
    assert approval.district_pool(actor(db, "street_leader"), "2026-01", engine=db) is None
    with read_session(db) as s:
        policy = approval.current_policy(s)
    fresh = approval.district_pool(actor(db, "district_leader"), "2026-01", engine=db)
    assert (fresh.budget_fen, fresh.committed_fen, fresh.left_fen) == (
        policy.district_pool_fen, 0, policy.district_pool_fen)
    with pytest.raises(ValidationFailed):
        approval.district_pool(actor(db, "district_leader"), "2026-13", engine=db)


def test_the_reward_ledger_page_shows_the_district_pool_and_the_basis(sqlite_db):
    case = _large(sqlite_db)
    _open(sqlite_db)
    claim = _claimed(sqlite_db, case, method="cash", detail="")
    _decide(sqlite_db, "street_approver", claim, "approve")
    at = open_page("district_leader", "pages/reward_ledger.py")
    shown = everything(at)
    assert not at.exception
    assert "区级资金池（大额奖励）" in shown and "口径：申领件数按上报人申领的时间" in shown
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["其中待复核预留"] == "¥2,000" and metrics["已占用"] == "¥2,000"
    street = open_page("street_leader", "pages/reward_ledger.py")
    assert not street.exception and "区级资金池（大额奖励）" not in everything(street)
