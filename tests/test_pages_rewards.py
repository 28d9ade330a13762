"""The reward pages through AppTest: the approval page per approver (never another street's
claims), a decision from its form, the reporter's claim on the tracking page, and the ledger
that masks what it must."""

from __future__ import annotations

from sqlmodel import select

from lib.cases.models import Case
from lib.core.db import read_session
from lib.core.i18n import t
from lib.rewards import tracking
from lib.rewards.models import RewardClaim, RewardEvent, RewardPayout
from lib.ui.text import md_escape
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


# ---------------------------------------------------------------- the lists: clicks, ticks, search


def _new_claim(engine, **fields):
    """A resident's closed case, its claim opened and claimed by the reporter."""
    case = _closed(engine, **fields)
    _open(engine)
    return _claimed(engine, case)


def _table(at, *, rows=(), cells=(), index=0):
    """Tick ``rows`` and click ``cells`` ((row, column name)) of the page's first table, as the
    browser's grid reports them, and run the page."""
    key = at.dataframe[index].proto.id.split("-", 2)[2]
    at.session_state[key] = {"selection": {"rows": list(rows), "columns": [],
                                           "cells": [list(c) for c in cells]}}
    return at.run()


def _states(engine, claims) -> list[str]:
    with read_session(engine) as s:
        return [s.get(RewardClaim, c.id).state for c in claims]


def _code(engine, claim) -> str:
    with read_session(engine) as s:
        return s.get(Case, claim.case_id).code


def test_a_click_on_any_cell_of_the_approval_list_opens_the_claim(sqlite_db):
    claims = [_new_claim(sqlite_db) for _ in range(2)]
    _open(sqlite_db)
    at = open_page("street_approver", "pages/rewards.py")
    assert not at.exception and "待审批 2 件" in everything(at)
    _table(at, cells=[(1, "金额")])  # any cell, not only the tick box
    assert not at.exception
    assert at.query_params["claim"] == str(claims[1].id)
    assert _code(sqlite_db, claims[1]) in [s.value.split(" · ")[0] for s in at.subheader]
    at.button(key="rewards_back").click().run()
    assert not at.exception and "claim" not in at.query_params
    assert at.dataframe and not any(e.value.startswith(_code(sqlite_db, claims[1]))
                                    for e in at.subheader)  # the list, nothing clicked


def test_only_the_ticked_claims_are_approved_in_a_batch(sqlite_db):
    claims = [_new_claim(sqlite_db) for _ in range(3)]
    at = open_page("street_approver", "pages/rewards.py")
    _table(at, rows=[0, 2])
    assert "批量批准（已勾选 2 件）" in everything(at)
    at.button(key="rewards_batch_approve").click().run()  # not yet confirmed
    assert _states(sqlite_db, claims) == ["pending"] * 3
    assert "请先勾选确认。" in [e.value for e in at.error]
    _table(at, rows=[0, 2])
    at.checkbox(key="rewards_batch_sure").check().run()
    at.button(key="rewards_batch_approve").click().run()
    assert not at.exception
    assert _states(sqlite_db, claims) == ["approved", "pending", "approved"]
    assert "已批准 2 件，每件各记一条记录。" in [m.value for m in at.success]


def test_the_approval_list_searches_by_case_code_and_sorts_newest_first(sqlite_db):
    claims = [_new_claim(sqlite_db, phone=f"1381234600{i}") for i in range(3)]
    codes = [_code(sqlite_db, c) for c in claims]
    at = open_page("street_approver", "pages/rewards.py")

    def listed() -> list[str]:
        frame = at.dataframe[0].value
        return list(frame["案件"]) if at.dataframe else []

    assert listed() == codes
    at.selectbox(key="rewards_sort").set_value("newest").run()
    assert listed() == codes[::-1]
    at.text_input(key="rewards_q").input(codes[1]).run()
    assert listed() == [codes[1]] and "待审批 1 件" in everything(at)
    at.text_input(key="rewards_q").input("46002").run()  # the reporter's last digits
    assert listed() == [codes[2]]
    at.text_input(key="rewards_q").input("%' OR 1=1--").run()
    assert not at.exception and "没有符合搜索条件的申请。" in [i.value for i in at.info]


def _approved_claims(engine, n: int) -> list:
    claims = [_new_claim(engine) for _ in range(n)]
    return [_decide(engine, "street_approver", c, "approve") for c in claims]


def test_the_to_pay_list_shows_approved_claims_and_a_click_opens_the_pay_form(sqlite_db):
    claims = _approved_claims(sqlite_db, 2)
    waiting = _new_claim(sqlite_db)
    at = open_page("street_approver", "pages/rewards.py", tab="to_pay")
    shown = everything(at)
    assert not at.exception and "已批准、待发放 2 件" in shown
    assert [_code(sqlite_db, c) for c in claims] == list(at.dataframe[0].value["案件"])
    assert _code(sqlite_db, waiting) not in shown
    assert "6222020200112233445" not in shown and "****3445" in shown  # masked in the list
    _table(at, cells=[(0, "收款账号")])
    assert at.query_params["claim"] == str(claims[0].id)
    at.text_input(key="claim_form_pay_reference").input("RCPT-1")
    at.button(key="FormSubmitter:claim_form_pay-登记发放").click().run()
    assert not at.exception and "已办理。" in [m.value for m in at.success]
    assert _states(sqlite_db, claims) == ["paid", "approved"]
    at.button(key="rewards_back").click().run()
    assert "已批准、待发放 1 件" in everything(at)  # back on the list it came from


def test_a_batch_payout_asks_for_a_reference_confirms_count_and_total_and_pays_the_ticked(sqlite_db):
    claims = _approved_claims(sqlite_db, 3)
    at = open_page("street_approver", "pages/rewards.py", tab="to_pay")
    _table(at, rows=[0, 1])
    assert "勾选 2 件，合计 ¥100。" in everything(at)
    at.button(key="rewards_pay_ask").click().run()
    assert "请填写发放凭证号。" in [e.value for e in at.error]
    assert not any(b.key == "rewards_pay_confirm" for b in at.button)
    _table(at, rows=[0, 1])
    at.text_input(key="rewards_pay_reference").input("BATCH-1203")
    at.button(key="rewards_pay_ask").click().run()
    assert f"确认登记发放 2 件，合计 ¥100，凭证号 {md_escape('BATCH-1203')}。登记后不能撤回。" in [
        w.value for w in at.warning]  # the reference as typed, never as Markdown
    assert _states(sqlite_db, claims) == ["approved"] * 3  # nothing before the confirmation
    # Meanwhile another approver rejects the second: it is refused, by its code, with why.
    _decide(sqlite_db, "district_approver", claims[1], "reject", reason="fraud", note="照片重复")
    at.button(key="rewards_pay_confirm").click().run()
    assert not at.exception
    assert _states(sqlite_db, claims) == ["paid", "rejected", "approved"]
    message = [e.value for e in at.error]
    assert message == [f"已登记发放 1 件，合计 ¥50；1 件未发放：{_code(sqlite_db, claims[1])}"
                       "（自您打开列表后已被他人处理或更改，请刷新后再看）"]
    with read_session(sqlite_db) as s:
        assert [p.reference for p in s.exec(select(RewardPayout))] == ["BATCH-1203"]
    assert not any(b.key == "rewards_pay_confirm" for b in at.button)  # nothing ticked now


def test_a_payout_confirmation_is_dropped_when_the_ticks_change(sqlite_db):
    claims = _approved_claims(sqlite_db, 2)
    at = open_page("street_approver", "pages/rewards.py", tab="to_pay")
    _table(at, rows=[0])
    at.text_input(key="rewards_pay_reference").input("B-1")
    at.button(key="rewards_pay_ask").click().run()
    assert any(b.key == "rewards_pay_confirm" for b in at.button)
    _table(at, rows=[0, 1])  # one more ticked: the confirmation named one claim, ask again
    assert not any(b.key == "rewards_pay_confirm" for b in at.button)
    assert _states(sqlite_db, claims) == ["approved", "approved"]


def test_a_ledger_row_opens_the_claim_for_an_approver_and_the_month_reads_the_approval(sqlite_db):
    claims = _approved_claims(sqlite_db, 1)
    at = open_page("street_approver", "pages/reward_ledger.py")
    assert not at.exception
    at.selectbox(key="reward_ledger_dated").set_value("payout").run()
    assert "奖励申请（0 件）" in everything(at)
    at.selectbox(key="reward_ledger_dated").set_value("approval").run()
    assert "奖励申请（1 件）" in everything(at)
    _table(at, cells=[(0, "状态")], index=-1)
    assert not at.exception
    assert _code(sqlite_db, claims[0]) in [s.value.split(" · ")[0] for s in at.subheader]
    assert "登记发放" in [e.label for e in at.expander]
    # A leader reads the ledger; its rows open nothing (the approval page is not theirs).
    leader = open_page("street_leader", "pages/reward_ledger.py")
    assert not leader.exception and "点击任一单元格打开这件申请。" not in everything(leader)


def test_with_nothing_to_decide_the_page_opens_on_the_claims_to_pay(sqlite_db):
    claims = _approved_claims(sqlite_db, 2)
    at = open_page("street_approver", "pages/rewards.py")
    assert not at.exception and "已批准、待发放 2 件" in everything(at)
    assert at.query_params["tab"] == "to_pay"  # a reload or a copied link keeps the list
    _new_claim(sqlite_db)  # something to decide again: decisions come first
    at = open_page("street_approver", "pages/rewards.py")
    assert "待审批 1 件" in everything(at) and "tab" not in at.query_params
    assert _states(sqlite_db, claims) == ["approved", "approved"]
