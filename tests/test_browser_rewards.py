"""A discovery reward end to end in a real browser: a resident's 黄赌毒 tip is closed, the
reward appears on the tracking page and the resident claims it with a code sent by SMS for the
claim; an approver who may read the tip's evidence approves, a second such approver gives the
second approval the amount needs, the payout is recorded, and the resident sees it paid."""

from __future__ import annotations

import re

import pytest

pytest.register_assert_rewrite("tests.browser_support")  # before its first import

from tests.browser_support import (  # noqa: E402
    ARTIFACTS,
    WAIT,
    expect,
    load,
    new_page,
    settle,
    sqlite_db,
    staff_page,
    switch,
    wait_until,
)

pytest_plugins = ["tests.browser_support"]
# Meant to keep the browser tests on one worker (one server, one browser); see the README.
pytestmark = pytest.mark.xdist_group("browser")

PHONE = {"width": 390, "height": 844}


def _closed_tip(base) -> object:
    """A resident's 黄赌毒 tip, judged major, handled and closed; its claim opened."""
    from sqlalchemy import text

    from lib.core.db import get_engine, write_session
    from lib.rewards import eligibility
    from tests.factories import move, new_case

    engine = get_engine(base.db_url)
    case = new_case(engine, category="vice", phone="13766668888", description="3栋地下室有人聚赌",
                    address="红星路12号3栋")
    with write_session(engine) as s:
        s.exec(text('UPDATE "case" SET severity = \'major\' WHERE id = :i'), params={"i": case.id})
    for action, params in (("accept", {}), ("take", {}), ("handle", {"note": "已会同派出所查处"}),
                           ("verify", {}), ("close", {})):
        case = move(engine, "community01", case.id, action, **params)
    eligibility.run(engine)
    return case


def _track(page, base, code: str) -> None:
    page.get_by_label("查询码").fill(code)
    page.get_by_label("查询密码 / 短信验证码").fill(_sms_code(base, code, "view"))
    page.get_by_role("button", name="查询", exact=True).click()


def _sms_code(base, code: str, purpose: str) -> str:
    """The one-time code the reporter's phone receives for ``purpose``."""
    from lib.core.db import get_engine
    from tests.factories import sms_code

    return sms_code(get_engine(base.db_url), code, purpose)


def _decide(page, base: str, claim_id: int, action: str, db, state: str) -> None:
    """Open the claim on the approval page and make ``action``; wait for the claim's state."""
    load(page, f"{base}/rewards?claim={claim_id}")
    form = page.get_by_test_id("stExpander").filter(
        has=page.locator("summary").get_by_text(action, exact=True)).first
    expect(form).to_be_visible(timeout=WAIT)
    form.get_by_test_id("stFormSubmitButton").get_by_role("button").click()
    wait_until(lambda: db.execute("select state from reward_claim where id=?",
                                  (claim_id,)).fetchone()[0] == state, f"the claim is {state}")
    settle(page)


def test_a_resident_claims_two_approvers_approve_and_the_payout_shows(browser_server, browser_chromium):
    case = _closed_tip(browser_server)
    db = sqlite_db(browser_server.db_url)
    claim_id = db.execute("select id from reward_claim where case_id=?", (case.id,)).fetchone()[0]

    resident = browser_chromium.new_context(viewport=PHONE, locale="zh-CN")
    page = new_page(resident)
    load(page, browser_server + "/track")
    _track(page, browser_server, case.code)
    expect(page.get_by_text("奖励 ¥2,000：可申领")).to_be_visible(timeout=WAIT)
    page.get_by_text("银行转账", exact=True).click()
    page.get_by_label("收款账号（银行卡号或积分账户；现金领取可不填）").fill("6222020200001234")
    page.get_by_label("短信验证码（先点“发送短信验证码”）").last.fill(
        _sms_code(browser_server, case.code, "claim"))
    page.get_by_role("button", name="申领奖励").click()
    expect(page.get_by_text("已提交申领，审批后发放。")).to_be_visible(timeout=WAIT)
    wait_until(lambda: db.execute("select state from reward_claim where id=?",
                                  (claim_id,)).fetchone()[0] == "pending", "the claim is pending")

    context, approver = staff_page(browser_chromium, browser_server, "vice_approver")
    switch(approver, lambda: approver.get_by_test_id("stSidebar").get_by_role(
        "link", name=re.compile("奖励审批")).click(), "the approval page")
    expect(approver.get_by_test_id("stDataFrame").first).to_contain_text(case.code, timeout=WAIT)
    expect(approver.get_by_text("6222020200001234")).to_have_count(0)  # masked in the queue
    _decide(approver, browser_server, claim_id, "批准", db, "approved_once")
    context.close()

    context, second = staff_page(browser_chromium, browser_server, "vice_reviewer")
    _decide(second, browser_server, claim_id, "复核批准", db, "approved")
    load(second, f"{browser_server}/rewards?claim={claim_id}")
    expect(second.get_by_text("收款账号：6222020200001234")).to_be_visible(timeout=WAIT)
    _decide(second, browser_server, claim_id, "登记发放", db, "paid")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    second.screenshot(path=str(ARTIFACTS / "rewards.png"), full_page=True)
    context.close()
    assert db.execute("select count(*), max(amount_fen) from reward_payout where claim_id=?",
                      (claim_id,)).fetchone() == (1, 200000)

    load(page, browser_server + "/track")
    _track(page, browser_server, case.code)
    expect(page.get_by_text("奖励 ¥2,000：已发放")).to_be_visible(timeout=WAIT)
    resident.close()
    db.close()
