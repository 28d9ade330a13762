"""In a real browser: an approver pays an approved claim from the 待发放 list in four taps from
the home page (the approval page in the menu, the 待发放 tab, the claim's row, 登记发放), where
before this list the only way was to type the claim's address; then ticks two rows and pays them
in one batch with a payment reference, after a confirmation with their count and total. The
taps are printed (run with ``-s``) and written to test-artifacts/payout_taps.json."""

from __future__ import annotations

import json
import re

import pytest

pytest.register_assert_rewrite("tests.browser_support")  # before its first import

from tests.browser_support import (  # noqa: E402
    ARTIFACTS,
    WAIT,
    click_grid,
    expect,
    sqlite_db,
    staff_page,
    switch,
    wait_until,
)

pytest_plugins = ["tests.browser_support"]
pytestmark = pytest.mark.xdist_group("browser")

ROW = 35  # px: the grid's header and each row
APPROVER = "street_approver"
MAX_TAPS = 4


def _seed(base, approved: int, pending: int) -> None:
    """Claims of the approver's street, claimed by their reporters: ``approved`` of them
    approved by the street's approver, ``pending`` left to decide."""
    from sqlmodel import select

    from lib.core.db import get_engine, write_session
    from lib.rewards import approval, eligibility
    from lib.rewards.machine import ClaimAct
    from lib.rewards.machine import act as claim_act
    from lib.rewards.models import RewardClaim
    from tests.factories import actor, closed_case

    engine = get_engine(base.db_url)
    cases = [closed_case(engine, address=f"发放路{i}号") for i in range(approved + pending)]
    with write_session(engine) as s:
        eligibility.open_claims(s, everything=True)
    for index, case in enumerate(cases):
        with write_session(engine) as s:
            claim = s.exec(select(RewardClaim).where(RewardClaim.case_id == case.id)).one()
            claim = claim_act(s, None, claim.id, ClaimAct.claim, version=claim.version,
                              method="bank", payment_detail="6222020200112233445")
        if index < approved:
            approval.decide(actor(engine, APPROVER), claim.id, ClaimAct.approve,
                            version=claim.version, engine=engine)


def _to_pay(base) -> list[int]:
    """The claims of the approver's 待发放 list, in its order (oldest approval first)."""
    from lib.core.db import get_engine
    from lib.rewards import approval
    from tests.factories import actor

    engine = get_engine(base.db_url)
    return [r.id for r in approval.payout_queue(actor(engine, APPROVER), engine=engine)[0]]


def test_an_approver_pays_one_claim_in_four_taps_and_two_in_one_batch(browser_server,
                                                                     browser_chromium):
    _seed(browser_server, approved=3, pending=1)
    db = sqlite_db(browser_server.db_url)

    def state(claim_id: int) -> str:
        return db.execute("select state from reward_claim where id=?", (claim_id,)).fetchone()[0]

    context, page = staff_page(browser_chromium, browser_server, APPROVER)
    taps = 0
    # The approval page, from the menu: decisions wait, so it opens on 待审批.
    switch(page, lambda: page.get_by_test_id("stSidebar").get_by_role(
        "link", name=re.compile("奖励审批")).click(), "the approval page")
    taps += 1
    tab = page.get_by_role("radio", name=re.compile(r"待发放（\d+）"))
    expect(tab).to_be_visible(timeout=WAIT)
    switch(page, tab.click, "the 待发放 tab")
    taps += 1
    expect(page.get_by_text(re.compile(r"已批准、待发放 \d+ 件"))).to_be_visible(timeout=WAIT)
    first = _to_pay(browser_server)[0]
    click_grid(page, 300, ROW + ROW / 2, "the first row's cell")  # not its tick box
    taps += 1
    pay = page.get_by_test_id("stExpander").filter(
        has=page.locator("summary").get_by_text("登记发放", exact=True)).first
    expect(pay).to_be_visible(timeout=WAIT)
    # The claim opened is the list's first (the demo's own approved claims may come first).
    code = db.execute("select c.code from reward_claim r join \"case\" c on c.id = r.case_id "
                      "where r.id = ?", (first,)).fetchone()[0]
    expect(page.get_by_role("heading", name=re.compile(code))).to_be_visible(timeout=WAIT)
    pay.get_by_test_id("stFormSubmitButton").get_by_role("button").click()
    taps += 1
    wait_until(lambda: state(first) == "paid", "the first claim to pay is paid")
    expect(page.get_by_text("已办理。")).to_be_visible(timeout=WAIT)

    figures = {"task": "approver pays one approved claim, from the home page",
               "before": "no list: type the address /rewards?claim=<id> (an id no page showed), "
                         "then 1 tap (登记发放)",
               "taps": taps, "typed": 0}
    print(figures)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "payout_taps.json").write_text(json.dumps(figures, ensure_ascii=False, indent=1),
                                                encoding="utf-8")
    assert taps <= MAX_TAPS, figures

    # Back to the list, two rows ticked, one reference, confirmed with count and total.
    switch(page, page.get_by_role("button", name="返回列表").click, "back to the list")
    expect(page.get_by_text(re.compile(r"已批准、待发放 \d+ 件"))).to_be_visible(timeout=WAIT)
    chosen, rest = _to_pay(browser_server)[:2], _to_pay(browser_server)[2:]
    click_grid(page, 20, ROW + ROW / 2, "ticking the first row")
    click_grid(page, 20, 2 * ROW + ROW / 2, "ticking the second row")
    expect(page.get_by_text("批量登记发放（已勾选 2 件）")).to_be_visible(timeout=WAIT)
    page.get_by_label("发放凭证号").fill("BATCH-20261203")
    switch(page, page.get_by_role("button", name="登记发放（2 件）…").click, "the payout's question")
    expect(page.get_by_text(re.compile(r"确认登记发放 2 件，合计 ¥\d+"))).to_be_visible(timeout=WAIT)
    assert [state(i) for i in chosen] == ["approved", "approved"]  # nothing before the answer
    page.screenshot(path=str(ARTIFACTS / "rewards-to-pay.png"), full_page=True)
    switch(page, page.get_by_role("button", name="确认发放（2 件）").click, "the confirmation")
    wait_until(lambda: [state(i) for i in chosen] == ["paid", "paid"], "the two ticked are paid")
    expect(page.get_by_text(re.compile(r"已登记发放 2 件，合计 ¥\d+"))).to_be_visible(timeout=WAIT)
    assert all(state(i) == "approved" for i in rest)  # the rows not ticked stay to pay
    assert [r[0] for r in db.execute("select reference from reward_payout where claim_id in (?, ?)",
                                     chosen)] == ["BATCH-20261203"] * 2
    context.close()
    db.close()
