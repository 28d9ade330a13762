"""The reward pages through AppTest: the approval page per approver (never another street's
claims), a decision from its form, the reporter's claim on the tracking page, and the ledger
that masks what it must."""

from __future__ import annotations

from sqlmodel import select

from lib.core.db import read_session
from lib.core.i18n import t
from lib.rewards import tracking
from lib.rewards.models import RewardClaim, RewardEvent
from tests.factories import everything, open_page, sms_code
from tests.test_rewards import _claimed, _closed, _decide, _open


def test_an_approver_sees_the_streets_claims_only_and_decides_from_the_form(sqlite_db):
    mine = _closed(sqlite_db, phone="13812340001")
    theirs = _closed(sqlite_db, phone="13812340002", community="510104002001",
                     by="staff_510104002001")
    _open(sqlite_db)
    for case in (mine, theirs):
        _claimed(sqlite_db, case, detail="6222000011112222")
    at = open_page("street_approver", "pages/rewards.py")
    shown = everything(at)
    assert mine.code in shown and theirs.code not in shown
    assert "13812340001" not in shown and "138****0001" in shown
    with read_session(sqlite_db) as s:
        claim = s.exec(select(RewardClaim).where(RewardClaim.case_id == mine.id)).one()
    at = open_page("street_approver", "pages/rewards.py", claim=str(claim.id))
    assert not at.exception
    assert "6222000011112222" not in everything(at)  # masked until it is paid
    at.button(key="FormSubmitter:claim_form_approve-批准").click().run()
    assert not at.exception and "已办理。" in [m.value for m in at.success]
    at.query_params["claim"] = str(claim.id)
    at.run()
    assert "收款账号：6222000011112222" in everything(at)  # the payer sees where to pay
    other = open_page("street_approver", "pages/rewards.py",
                      claim=str(_claim_id(sqlite_db, theirs.id)))
    assert [e.value for e in other.error] == ["找不到该奖励申请，或不在您的辖区。"]


def _claim_id(engine, case_id: int) -> int:
    with read_session(engine) as s:
        return s.exec(select(RewardClaim.id).where(RewardClaim.case_id == case_id)).one()


def test_a_decision_on_a_claim_page_drawn_before_another_approvers_is_refused_as_stale(sqlite_db):
    """The form keeps the version the approver first saw: another approver's decision since
    then makes it stale, whatever the page read when the form was sent."""
    case = _closed(sqlite_db, phone="13812340003")
    _open(sqlite_db)
    claim = _claimed(sqlite_db, case)
    at = open_page("street_approver", "pages/rewards.py", claim=str(claim.id))
    assert not at.exception
    # Meanwhile the district's approver approves it: a reject is still offered, on a claim
    # the street's approver has not seen approved.
    _decide(sqlite_db, "district_approver", claim, "approve")
    at.radio(key="claim_form_reject_reason").set_value("fraud")
    at.text_area(key="claim_form_reject_note").input("照片与另一案件相同")
    at.button(key="FormSubmitter:claim_form_reject-驳回").click().run()
    assert not at.exception and not at.success
    assert t("error.stale") in [e.value for e in at.error]
    with read_session(sqlite_db) as s:
        assert s.get(RewardClaim, claim.id).state == "approved"
        assert [e.action for e in s.exec(select(RewardEvent).where(
            RewardEvent.claim_id == claim.id).order_by(RewardEvent.seq))] == ["open", "claim",
                                                                               "approve"]
    # Reloaded, the page shows the claim as it is now, and the form works on that.
    at.button(key="claim_reload").click().run()
    assert not at.error and "已批准" in everything(at)
    at.radio(key="claim_form_reject_reason").set_value("fraud")
    at.text_area(key="claim_form_reject_note").input("照片与另一案件相同")
    at.button(key="FormSubmitter:claim_form_reject-驳回").click().run()
    assert not at.exception and "已办理。" in [m.value for m in at.success]
    with read_session(sqlite_db) as s:
        assert s.get(RewardClaim, claim.id).state == "rejected"


def test_the_reporter_claims_on_the_tracking_page_with_a_code_sent_for_it(sqlite_db):
    case = _closed(sqlite_db, phone="13812345678")
    _open(sqlite_db)
    at = open_page(None, "pages/track.py")
    at.text_input[0].input(case.code)
    at.text_input[1].input(sms_code(sqlite_db, case.code))
    at.button(key="FormSubmitter:track_lookup-查询").click().run()
    assert "奖励 ¥50：可申领" in everything(at)
    radio = next(r for r in at.radio if r.label == "领取方式")
    assert radio.value is None
    radio.set_value("cash")
    proof = next(t for t in at.text_input if t.key == "track_claim_proof")
    proof.input("5678")  # the last four digits, which staff pages once showed, prove nothing
    at.button(key="FormSubmitter:track_claim-申领奖励").click().run()
    assert not at.exception and not at.success
    next(t for t in at.text_input if t.key == "track_claim_proof").input(
        sms_code(sqlite_db, case.code, "claim"))
    at.button(key="FormSubmitter:track_claim-申领奖励").click().run()
    assert not at.exception and "已提交申领，审批后发放。" in [m.value for m in at.success]
    assert tracking.reward_for(sqlite_db, case.code, sms_code(sqlite_db, case.code)).state == \
        "pending"


def test_the_reward_ledger_shows_totals_and_masks_accounts(sqlite_db):
    case = _closed(sqlite_db, phone="13812349999")
    _open(sqlite_db)
    _claimed(sqlite_db, case, detail="6222000099998888")
    at = open_page("street_leader", "pages/reward_ledger.py")
    shown = everything(at)
    assert not at.exception and case.code in shown
    assert "6222000099998888" not in shown and "8888" in shown and "13812349999" not in shown
