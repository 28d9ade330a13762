"""Discovery rewards (问题发现奖励): who may claim and why not, two-step approval, separation of
duties, caps and pools (also when two approvers race for the last of a pool), payouts, the
ledger and its exports — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from lib.cases.intake import Report, create_case, submit
from lib.core.db import read_session, write_session
from lib.core.errors import NotFound, PermissionDenied, StaleObject, ValidationFailed
from lib.core.i18n import name, t
from lib.core.models import utcnow
from lib.org import auth
from lib.org.models import User
from lib.org.units import find_unit
from lib.rewards import approval, eligibility, figures, rules, tracking
from lib.rewards.models import RewardClaim, RewardEvent, RewardPayout, RewardPool
from tests.factories import (
    COMMUNITY,
    actor,
    category_id,
    closed_case,
    move,
    new_case,
    sms_code,
    unit_id,
)

POLICE = "510104001-police"


def _closed(db, **fields):
    return closed_case(db, **fields)


def _open(db) -> int:
    with write_session(db) as s:
        return eligibility.open_claims(s, everything=True)


def _claim_of(db, case_id: int) -> RewardClaim:
    with read_session(db) as s:
        return s.exec(select(RewardClaim).where(RewardClaim.case_id == case_id)).one()


def _claimed(db, case, *, method: str = "bank", detail: str = "6222020200112233445"):
    view = tracking.reward_for(db, case.code, sms_code(db, case.code))
    return tracking.claim_reward(db, code=case.code, proof=sms_code(db, case.code, "claim"),
                                 method=method, payment_detail=detail, version=view.version)


def _decide(db, username: str, claim: RewardClaim, action: str, **params) -> RewardClaim:
    with read_session(db) as s:
        version = s.get(RewardClaim, claim.id).version
    return approval.decide(actor(db, username), claim.id, action, version=version, engine=db, **params)


def _approver(db, username: str, unit: str, *, roles=("reward_approver",), phone=None) -> str:
    with write_session(db) as s:
        auth.bootstrap_user(s, username=username, display_name=username, password="long-password-1",
                            unit=find_unit(s, unit), roles=list(roles), phone=phone)
    return username


# ---------------------------------------------------------------- who may claim


def test_a_residents_closed_case_earns_the_amount_its_rule_sets(db):
    case = _closed(db)
    staff = new_case(db)  # still open: nothing yet
    assert _open(db) == 1
    claim = _claim_of(db, case.id)
    assert (claim.state, claim.amount_fen, claim.reason) == ("eligible", 5000, None)  # fire: ¥50
    assert claim.window_ends_at > utcnow() + timedelta(days=29)
    with read_session(db) as s:
        assert s.exec(select(RewardClaim).where(RewardClaim.case_id == staff.id)).first() is None
    assert _open(db) == 0  # once


def test_staff_reports_rejected_and_anonymous_cases_earn_nothing_with_a_reason(db):
    with write_session(db) as s:  # a grid worker's own report
        grid = create_case(s, Report(category_id=category_id(db, "fire"), subcategory_id=None,
                                     description="巡查发现灭火器过期", address="红星路8号",
                                     community_id=unit_id(db, COMMUNITY), source="grid_worker"),
                           actor=auth.actor_by_username(s, "grid01"))
    for action, params in (("accept", {}), ("take", {}), ("handle", {"note": "已更换"}),
                           ("verify", {}), ("close", {})):
        move(db, "community01", grid.id, action, **params)
    rejected = new_case(db)
    move(db, "community01", rejected.id, "reject", note="无此问题")
    with write_session(db) as s:
        user = s.exec(select(User).where(User.username == "grid01")).one()
        user.phone = "13512340000"
        s.add(user)
    own_phone = _closed(db, phone="13512340000")
    anonymous = _closed(db, category="dogs", phone=None, name=None, anonymous=True)
    _open(db)
    with read_session(db) as s:
        reasons = {c.case_id: (c.state, c.reason) for c in s.exec(select(RewardClaim)).all()}
    assert reasons == {own_phone.id: ("ineligible", "staff_reporter"),
                       anonymous.id: ("ineligible", "anonymous_no_pin")}
    # Cases that never get a claim still tell their reporter why on the tracking page; a case
    # still open says nothing yet.
    waiting = new_case(db, phone="13512349999")
    for case, expected in ((rejected, ("ineligible", "case_rejected")),
                           (waiting, (None, None))):
        view = tracking.reward_for(db, case.code, sms_code(db, case.code))
        assert (view.state, view.reason, view.can_claim) == (*expected, False), case.id
    with write_session(db) as s:  # the hotline registers a resident's call
        hotline = create_case(s, Report(category_id=category_id(db, "fire"), subcategory_id=None,
                                        description="电话反映楼道堆物", address="红星路9号",
                                        community_id=unit_id(db, COMMUNITY), source="hotline",
                                        reporter_phone="13512348888"),
                              actor=auth.actor_by_username(s, "community01"))
    view = tracking.reward_for(db, hotline.code, sms_code(db, hotline.code))
    assert (view.state, view.reason) == ("ineligible", "not_resident_report")


def test_joint_reports_count_once_and_the_earliest_reporter_wins(db):
    first = new_case(db, phone="13600000001")
    fire, community = category_id(db, "fire"), unit_id(db, COMMUNITY)
    joined = submit(db, actor=None, submit_key=uuid.uuid4().hex, client_address="j", add_to=first.id,
                    report=Report(category_id=fire, community_id=community, description="同一处",
                                  address="红星路1号", reporter_phone="13600000002")).case
    for action, params in (("accept", {}), ("take", {}), ("handle", {"note": "已整改"}),
                           ("verify", {})):
        move(db, "community01", first.id, action, **params)
    assert _open(db) == 2
    assert (_claim_of(db, first.id).state, _claim_of(db, joined.id).reason) == ("eligible", "not_first")


def test_a_rule_change_applies_to_claims_created_after_it(db):
    before = _closed(db)
    _open(db)
    rules.set_rule(actor(db, "admin"), category_id=category_id(db, "fire"), severity="general",
                   amount="80", engine=db)
    after = _closed(db)
    _open(db)
    assert (_claim_of(db, before.id).amount_fen, _claim_of(db, after.id).amount_fen) == (5000, 8000)
    with read_session(db) as s:
        assert s.exec(select(func.count()).select_from(rules.RewardRule).where(
            rules.RewardRule.valid_to.is_not(None))).one() == 1  # the old rule kept, closed


@pytest.mark.parametrize("amount", ["-1", "abc", "1e12", "nan", "inf", "", None, True, "1e400"])
def test_a_bad_amount_is_refused_and_nothing_changes(db, amount):
    with read_session(db) as s:
        rules_before = s.exec(select(func.count()).select_from(rules.RewardRule)).one()
    with pytest.raises(ValidationFailed):
        rules.set_rule(actor(db, "admin"), category_id=None, severity="general", amount=amount,
                       engine=db)
    with pytest.raises(PermissionDenied):
        rules.set_rule(actor(db, "street_approver"), category_id=None, severity="general",
                       amount="30", engine=db)
    with read_session(db) as s:
        assert s.exec(select(func.count()).select_from(rules.RewardRule)).one() == rules_before


# ---------------------------------------------------------------- claiming and deciding


def test_the_reporter_claims_an_approver_approves_and_pays_once(db):
    case = _closed(db)
    _open(db)
    with pytest.raises(ValidationFailed):  # a bank transfer needs the account
        view = tracking.reward_for(db, case.code, sms_code(db, case.code))
        tracking.claim_reward(db, code=case.code, proof=sms_code(db, case.code, "claim"),
                              method="bank", payment_detail="", version=view.version)
    with pytest.raises(NotFound):  # a code sent for claiming, not the last four digits
        tracking.claim_reward(db, code=case.code, proof=case.reporter_phone[-4:], method="cash",
                              payment_detail="", version=view.version)
    claim = _claimed(db, case)
    assert claim.state == "pending"
    approved = _decide(db, "street_approver", claim, "approve")
    assert approved.state == "approved"
    with pytest.raises(StaleObject):  # a double click: the second sees the first's version
        approval.decide(actor(db, "street_approver"), claim.id, "approve", version=claim.version,
                        engine=db)
    paid = _decide(db, "street_approver", claim, "pay", method="bank", reference="BANK-0001")
    assert paid.state == "paid"
    with read_session(db) as s:
        payouts = s.exec(select(RewardPayout).where(RewardPayout.claim_id == claim.id)).all()
        pool = s.get(RewardPool, paid.pool_id)
        assert [(p.amount_fen, p.method, p.reference) for p in payouts] == [(5000, "bank", "BANK-0001")]
        assert pool.committed_fen == 5000 and figures.ledger_problems(s) == []
    view = tracking.reward_for(db, case.code, sms_code(db, case.code))
    assert (view.state, view.paid_at is not None) == ("paid", True)


def _large(db):
    """A closed ordinary case whose award is ¥2,000, above the ¥500 threshold (a restricted
    category's large tip goes only to approvers with the permission: tests/test_rewards_separation)."""
    rules.set_rule(actor(db, "admin"), category_id=category_id(db, "fire"), severity="major",
                   amount="2000", engine=db)
    return _closed(db, category="fire", severity="major")


def test_a_large_award_needs_a_second_different_approver_and_the_district_pool(db):
    case = _large(db)
    _open(db)
    claim = _claimed(db, case, method="cash", detail="")
    once = _decide(db, "street_approver", claim, "approve")
    assert once.state == "approved_once"
    with pytest.raises(PermissionDenied):
        _decide(db, "street_approver", claim, "second_approve")
    done = _decide(db, "district_approver", claim, "second_approve")
    assert done.state == "approved" and done.second_approver_id == actor(db, "district_approver").id
    with read_session(db) as s:
        assert s.get(RewardPool, done.pool_id).unit_id == unit_id(db, "510104")


def test_an_approver_never_decides_a_claim_on_a_case_they_worked_on(db):
    case = new_case(db, category="residential_security")
    _approver(db, "street_clerk_approver", "510104001", roles=("street_staff", "reward_approver"))
    move(db, "community01", case.id, "accept")
    move(db, "community01", case.id, "call_up", note="请街道协调")
    move(db, "street_clerk_approver", case.id, "dispatch", lead_unit_id=unit_id(db, POLICE))
    for username, action, params in (("dept_police", "acknowledge", {}), ("dept_police", "start", {}),
                                     ("dept_police", "handle", {"note": "已处理"}),
                                     ("community01", "verify", {}), ("community01", "close", {})):
        move(db, username, case.id, action, **params)
    _open(db)
    claim = _claimed(db, case)
    with pytest.raises(PermissionDenied):
        _decide(db, "street_clerk_approver", claim, "approve")
    # Nor another street's approver: the claim is not in their area at all.
    _approver(db, "other_street_approver", "510104002")
    with pytest.raises(NotFound):
        _decide(db, "other_street_approver", claim, "approve")
    assert "approve" in approval.claim_detail(actor(db, "street_approver"), claim.id,
                                              engine=db).actions
    # Nor one whose phone is the reporter's: the report is then a staff report, which nobody
    # may approve, only reject.
    _approver(db, "same_phone_approver", "510104001", phone=case.reporter_phone)
    with pytest.raises(PermissionDenied):
        _decide(db, "same_phone_approver", claim, "approve")
    with pytest.raises(PermissionDenied):
        _decide(db, "street_approver", claim, "approve")
    assert _decide(db, "street_approver", claim, "reject", reason="staff_reporter",
                   note="上报人是工作人员").state == "rejected"


def test_the_monthly_cap_per_reporter_holds(db):
    rules.set_policy(actor(db, "admin"), street_pool="5000", district_pool="50000",
                     reporter_cap="60", second_approval_above="500", claim_window_days="30",
                     methods=["cash"], engine=db)
    first, second = _closed(db, phone="13700001111"), _closed(db, phone="13700001111")
    _open(db)
    claims = [_claimed(db, c, method="cash", detail="") for c in (first, second)]
    assert _decide(db, "street_approver", claims[0], "approve").state == "approved"
    with pytest.raises(ValidationFailed) as err:
        _decide(db, "street_approver", claims[1], "approve")
    assert err.value.key == "error.reward_over_cap"
    rejected = _decide(db, "street_approver", claims[1], "reject", reason="over_cap",
                       note="本月已达上限")
    assert (rejected.state, rejected.reason) == ("rejected", "over_cap")


def test_two_approvers_racing_for_the_last_of_a_pool_never_overdraw_it(db):
    rules.set_policy(actor(db, "admin"), street_pool="60", district_pool="50000",
                     reporter_cap="1000", second_approval_above="500", claim_window_days="30",
                     methods=["cash"], engine=db)
    cases = [_closed(db), _closed(db)]
    _open(db)
    claims = [_claimed(db, c, method="cash", detail="") for c in cases]
    _approver(db, "second_street_approver", "510104001")
    barrier = threading.Barrier(2, timeout=30)
    results: list[object] = [None, None]

    def approve(i: int, username: str) -> None:
        barrier.wait()
        try:
            results[i] = approval.decide(actor(db, username), claims[i].id, "approve",
                                         version=claims[i].version, engine=db).state
        except ValidationFailed as err:
            results[i] = err.key

    threads = [threading.Thread(target=approve, args=(i, u))
               for i, u in enumerate(("street_approver", "second_street_approver"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == ["approved", "error.reward_pool_spent"]
    with read_session(db) as s:
        pools = s.exec(select(RewardPool)).all()
        assert [(p.committed_fen, p.budget_fen) for p in pools] == [(5000, 6000)]
        assert figures.ledger_problems(s) == []
    with pytest.raises(DBAPIError), write_session(db) as s:  # and the database agrees
        s.exec(text("UPDATE reward_pool SET committed_fen = budget_fen + 1"))


def test_a_rejection_gives_the_pool_back_and_needs_a_reason(db):
    case = _large(db)
    _open(db)
    claim = _claimed(db, case, method="cash", detail="")
    _decide(db, "street_approver", claim, "approve")
    with pytest.raises(ValidationFailed):
        _decide(db, "district_approver", claim, "reject", reason="fraud")
    rejected = _decide(db, "district_approver", claim, "reject", reason="fraud",
                       note="[核实](javascript:x) 照片系网上下载")
    assert rejected.state == "rejected"
    with read_session(db) as s:
        assert [p.committed_fen for p in s.exec(select(RewardPool)).all()] == [0]
        events = s.exec(select(RewardEvent.action).where(RewardEvent.claim_id == claim.id)
                        .order_by(RewardEvent.seq)).all()
    assert events == ["open", "claim", "approve", "reject"]


def test_an_unclaimed_reward_expires_after_the_window(db):
    case = _closed(db)
    _open(db)
    later = utcnow() + timedelta(days=31)
    with pytest.raises(ValidationFailed):
        view = tracking.reward_for(db, case.code, sms_code(db, case.code, now=later), now=later)
        assert not view.can_claim
        tracking.claim_reward(db, code=case.code, proof=sms_code(db, case.code, "claim", now=later),
                              method="cash", payment_detail="", version=view.version, now=later)
    assert eligibility.expire_claims(db, now=later) == 1
    assert _claim_of(db, case.id).state == "expired"


def test_batch_approval_takes_only_clean_small_claims(db):
    clean = [_closed(db) for _ in range(2)]
    busy_phone = "13911119999"
    noisy = [_closed(db, phone=busy_phone) for _ in range(3)]  # three reports in a day: a signal
    _open(db)
    claims = [_claimed(db, c, method="cash", detail="") for c in [*clean, *noisy]]
    done, refused = approval.batch_approve(actor(db, "street_approver"),
                                           [(c.id, c.version) for c in claims], engine=db)
    assert done == 2 and {key for _, key in refused} == {"error.reward_not_clean"}
    rows, total = approval.approval_queue(actor(db, "street_approver"), engine=db)
    assert total == 3 and all("many_reports" in r.signals and not r.clean for r in rows)


def test_reward_events_and_payouts_are_append_only(db):
    case = _closed(db)
    _open(db)
    claim = _claimed(db, case, method="cash", detail="")
    _decide(db, "street_approver", claim, "approve")
    _decide(db, "street_approver", claim, "pay", method="cash")
    for statement in ("UPDATE reward_event SET note = 'x'", "DELETE FROM reward_event",
                      "UPDATE reward_payout SET amount_fen = 1", "DELETE FROM reward_payout"):
        with pytest.raises(DBAPIError), write_session(db) as s:
            s.exec(text(statement))


def test_the_claims_ledger_masks_details_and_neutralises_formulas(db):
    case = _closed(db)
    _open(db)
    claim = _claimed(db, case, method="bank", detail="=HYPERLINK(\"http://x\")6222")
    _decide(db, "street_approver", claim, "approve")
    data = approval.export(actor(db, "street_leader"), approval.LedgerFilter(), fmt="csv",
                           lang_name=lambda r: name(r, "zh"), label=lambda k: t(k, "zh"), engine=db)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    text_all = "\n".join(",".join(r) for r in rows)
    assert "HYPERLINK" not in text_all and case.reporter_phone not in text_all
    assert "6222" in text_all  # the last four characters, to tell accounts apart
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    totals = approval.month_totals(actor(db, "street_leader"),
                                   rules_month := approval.pools.month_of(utcnow()), engine=db)
    assert rules_month and [(t_.claims, t_.approved_fen) for t_ in totals] == [(1, 5000)]


def test_a_street_approver_sees_only_the_claims_of_the_street(db):
    mine = _closed(db)
    theirs = _closed(db, community="510104002001", by="staff_510104002001")
    _open(db)
    for case in (mine, theirs):
        _claimed(db, case, method="cash", detail="")
    rows, total = approval.approval_queue(actor(db, "street_approver"), engine=db)
    assert [r.case_code for r in rows] == [mine.code] and total == 1
    rows, total = approval.approval_queue(actor(db, "district_approver"), engine=db)
    assert {r.case_code for r in rows} == {mine.code, theirs.code}
    with pytest.raises(PermissionDenied):
        approval.approval_queue(actor(db, "community01"), engine=db)


def test_the_tick_opens_claims_of_cases_closed_lately_without_walking_every_case(db):
    recent = _closed(db)
    assert eligibility.run(db) == {"claims_opened": 1, "claims_expired": 0}
    assert _claim_of(db, recent.id).state == "eligible"
    assert eligibility.run(db) == {"claims_opened": 0, "claims_expired": 0}
    # A tick that did not run for four days (a server down over a holiday) still finds the cases
    # validated meanwhile: it looks back from the newest claim written, not from its own clock.
    old = _closed(db)
    later = utcnow() + eligibility.CATCH_UP + timedelta(days=1)
    assert eligibility.run(db, now=later)["claims_opened"] == 1
    assert _claim_of(db, old.id).state == "eligible" and _open(db) == 0
    # The search still starts three days before the newest claim, never at the first case.
    with read_session(db) as s:
        newest = _claim_of(db, old.id).created_at
        assert eligibility._since(s, later + timedelta(days=30)) == later - eligibility.CATCH_UP
        assert newest.replace(tzinfo=None) == later.replace(tzinfo=None)
