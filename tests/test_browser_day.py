"""A clerk's and a handler's day in a real browser: ten reports accepted in one batch, 下一件
through the queue as filtered, the queue kept on the way back; a department handler on a
390 px phone acts from the case page without scrolling past the details."""

from __future__ import annotations

import json
import re

import pytest

pytest.register_assert_rewrite("tests.browser_support")  # before its first import

from lib.core.db import get_engine  # noqa: E402
from tests.browser_support import (  # noqa: E402
    ARTIFACTS,
    WAIT,
    click_grid,
    expect,
    load,
    login_cookie,
    new_page,
    seed_case,
    sqlite_db,
    staff_page,
    switch,
    wait_until,
)
from tests.factories import POLICE, move, unit_id  # noqa: E402

PHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")

pytest_plugins = ["tests.browser_support"]
pytestmark = pytest.mark.xdist_group("browser")


def test_the_clerk_accepts_ten_in_one_batch_and_walks_the_queue(browser_server, browser_chromium):
    cases = [seed_case(browser_server, address=f"批量路{i}号") for i in range(10)]
    ids = {c.id for c in cases}
    db = sqlite_db(browser_server.db_url)
    context, page = staff_page(browser_chromium, browser_server, "community01")
    load(page, browser_server + "/queue")
    page.get_by_text("筛选").click()
    page.get_by_label("搜索（编号、地址、描述）").fill("批量路")
    switch(page, lambda: page.keyboard.press("Enter"), "the search")
    expect(page.get_by_text("显示 10 件，共 10 件")).to_be_visible(timeout=WAIT)
    # The header's box ticks every row of the page.
    click_grid(page, 20, 17, "ticking all rows")
    button = page.get_by_role("button", name="批量受理（10 件）")
    expect(button).to_be_visible(timeout=WAIT)
    switch(page, button.click, "the batch accept")
    expect(page.get_by_text("已处理 10 件")).to_be_visible(timeout=WAIT)
    marks = ",".join("?" * len(ids))
    wait_until(lambda: db.execute(f'select count(*) from "case" where state="accepted" and id in ({marks})',
                                  tuple(ids)).fetchone()[0] == 10, "the ten cases are accepted")
    events = db.execute(f"select case_id, group_concat(action) from case_event where case_id in ({marks}) "
                        "group by case_id", tuple(ids)).fetchall()
    assert sorted(e[1] for e in events) == ["report,accept"] * 10  # one event per case

    # Accepted, they leave 待研判 for 已受理待决定 (handle them or call up).
    expect(page.get_by_role("radio", name="待研判 (0)")).to_be_visible(timeout=WAIT)
    switch(page, page.get_by_role("radio", name="已受理待决定 (10)").click, "the decide tab")
    # A click on any cell of the first row opens its case; 下一件 walks the queue as filtered.
    click_grid(page, 300, 35 + 17, "the row click")
    expect(page.get_by_text("队列中第 1 / 10 件")).to_be_visible(timeout=WAIT)
    first = re.search(r"([A-Z0-9]{10}) ·", page.locator("h1").first.inner_text()).group(1)
    switch(page, page.get_by_role("link", name="下一件").click, "下一件")
    expect(page.get_by_text("队列中第 2 / 10 件")).to_be_visible(timeout=WAIT)
    second = re.search(r"([A-Z0-9]{10}) ·", page.locator("h1").first.inner_text()).group(1)
    assert first != second
    codes = {c.code for c in cases}
    assert {first, second} <= codes

    # The browser's Back returns to the queue with its search kept.
    switch(page, page.go_back, "Back")
    switch(page, page.go_back, "Back")
    expect(page.get_by_text("显示 10 件，共 10 件")).to_be_visible(timeout=WAIT)
    assert "q=" in page.url
    # So does the plain menu link (from a case opened in the same session).
    click_grid(page, 300, 35 + 17, "the row click")
    expect(page.get_by_text("队列中第 1 / 10 件")).to_be_visible(timeout=WAIT)
    switch(page, page.get_by_test_id("stSidebar").get_by_role("link", name=re.compile("待办队列")).click,
           "the menu link")
    expect(page.get_by_text("显示 10 件，共 10 件")).to_be_visible(timeout=WAIT)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "queue.png"), full_page=True)
    context.close()


def test_the_handler_on_a_phone_acts_without_scrolling_past_the_details(browser_server,
                                                                       browser_chromium):
    engine = get_engine(browser_server.db_url)
    case = seed_case(browser_server, category="residential_security", address="手机路1号")
    move(engine, "community01", case.id, "accept")
    move(engine, "community01", case.id, "call_up", note="请街道协调")
    move(engine, "street01", case.id, "dispatch", lead_unit_id=unit_id(engine, POLICE))
    db = sqlite_db(browser_server.db_url)

    context = browser_chromium.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                           is_mobile=True, has_touch=True, user_agent=PHONE)
    page = new_page(context)
    context.add_cookies([login_cookie(browser_server, "staff_" + POLICE.lower().replace("-", "_"))])
    load(page, browser_server)
    expect(page.get_by_text("您好").first).to_be_visible(timeout=WAIT)

    # The queue is a card per case; a tap on the card opens it.
    load(page, browser_server + "/queue")
    card = page.locator(f".st-key-narrow_queue_{case.id}").get_by_role("link", name=re.compile(case.code))
    expect(card).to_be_visible(timeout=WAIT)
    expect(page.locator(".st-key-wide_queue")).to_have_count(0)
    switch(page, card.click, "the card tap")
    expect(page.get_by_role("heading", name=re.compile(case.code)).first).to_be_visible(timeout=WAIT)

    button = page.get_by_test_id("stFormSubmitButton").get_by_role("button", name="签收并开始处置",
                                                                    exact=True)
    expect(button).to_be_visible(timeout=WAIT)
    details = page.get_by_role("heading", name="详细信息").first
    timeline = page.get_by_role("heading", name="办理过程").first
    act_y = button.bounding_box()["y"]
    details_y = details.bounding_box()["y"]
    timeline_y = timeline.bounding_box()["y"]
    figures = {"viewport": [390, 844], "action_button_y": round(act_y),
               "details_y": round(details_y), "timeline_y": round(timeline_y)}
    print("handler on a phone:", json.dumps(figures))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "handler_phone.json").write_text(json.dumps(figures))
    page.screenshot(path=str(ARTIFACTS / "case_phone.png"), full_page=True)
    assert act_y < details_y < timeline_y
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # no sideways scroll

    button.click()
    wait_until(lambda: db.execute('select state from "case" where id=?', (case.id,)).fetchone()[0]
               == "in_progress", "the case is signed for and started")
    context.close()
