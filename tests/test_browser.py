"""End to end in a real browser: a Streamlit server on a demo SQLite db, driven by Chromium."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.browser_support")  # before its first import

from tests.browser_support import (  # noqa: E402
    ARTIFACTS,
    COOKIE,
    WAIT,
    click_grid,
    expect,
    last_sms_code,
    load,
    local_listener,
    log_in,
    new_page,
    pick,
    seed_case,
    settle,
    sqlite_db,
    staff_page,
    switch,
    upload,
    wait_for_cookie,
    wait_until,
)

pytest_plugins = ["tests.browser_support"]  # the shared server, browser and context fixtures
# Meant to keep the browser tests on one worker (one server, one browser); see the README.
pytestmark = pytest.mark.xdist_group("browser")


def test_admin_logs_in_reloads_deep_links_and_logs_out(browser_server, browser_context):
    """The admin logs in, sees the home page and admin menu, reloads and is still logged in,
    opens the users page by its URL, logs out, and that URL then asks them to log in."""
    page = new_page(browser_context)
    log_in(page, browser_server, "admin")

    # .first: during a rerun a stale copy of an element may briefly sit beside the new one.
    greeting = page.get_by_role("heading", name="卫管理员，您好").first
    expect(greeting).to_be_visible(timeout=WAIT)
    sidebar = page.get_by_test_id("stSidebar")
    for label in ("用户管理", "组织架构", "问题分类与时限"):
        expect(sidebar.get_by_role("link", name=label)).to_be_visible(timeout=WAIT)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)

    wait_for_cookie(browser_context)
    page.reload()
    expect(greeting).to_be_visible(timeout=WAIT)

    load(page, browser_server + "/admin_users")
    expect(page.get_by_role("heading", name="用户管理").first).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("请先登录")).to_have_count(0)

    sidebar.get_by_role("button", name="退出登录").click()
    expect(page.get_by_role("button", name="登录")).to_be_visible(timeout=WAIT)
    wait_until(lambda: not any(c["name"] == COOKIE for c in browser_context.cookies()),
               "the login cookie is gone after the logout")

    fresh = browser_context.new_page()
    fresh.goto(browser_server + "/admin_users")
    expect(fresh.get_by_text("请先登录后再访问此页面。")).to_be_visible(timeout=WAIT)
    expect(fresh.get_by_role("heading", name="用户管理")).to_have_count(0)
    expect(fresh.get_by_test_id("stDataFrame")).to_have_count(0)
    page.close()
    fresh.close()


def test_non_admin_is_refused_admin_page(browser_server, browser_context):
    """A grid worker logs in and opens the users page by its URL: access is refused."""
    page = browser_context.new_page()
    log_in(page, browser_server, "grid01")
    expect(page.get_by_role("heading", name="王网格，您好").first).to_be_visible(timeout=WAIT)
    wait_for_cookie(browser_context)
    page.goto(browser_server + "/admin_users")
    expect(page.get_by_text("您没有访问此页面的权限。")).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("stDataFrame")).to_have_count(0)
    page.close()


# ---------------------------------------------------------------- the closed loop, end to end


def _act(page, db, case_id: int, label: str, note: str | None = None, photo: Path | None = None,
         choose: str | None = None) -> None:
    """Open the action's small form on the case page, fill it, submit, and wait until the case
    in the database has moved on."""
    before = db.execute('select version from "case" where id=?', (case_id,)).fetchone()[0]
    form = page.get_by_test_id("stExpander").filter(
        has=page.locator("summary").get_by_text(label, exact=True)).first
    expect(form).to_be_visible(timeout=WAIT)
    # By its name: during the rerun after the previous action, this expander (same place on the
    # page) may still hold that action's stale form and button beside the new ones.
    button = form.get_by_test_id("stFormSubmitButton").get_by_role("button", name=label, exact=True)
    # The first form starts open, the others closed (their body is ``inert``); a click on an open
    # expander would close it, so read its state rather than guess from what is visible yet.
    # A rerun may still replace the expander with a fresh, closed one: open it until it stays.
    body = form.get_by_test_id("stExpanderDetails")
    deadline = time.monotonic() + WAIT / 1000
    while not button.is_visible():
        assert time.monotonic() < deadline, f"the {label!r} form never opened"
        if body.count() and body.get_attribute("inert") is not None:
            form.locator("summary").click()
        page.wait_for_timeout(200)
    fields = form.get_by_test_id("stForm").filter(  # this action's form, not a stale one
        has=page.get_by_role("button", name=label, exact=True))
    if note:
        fields.get_by_role("textbox").last.fill(note)
    if choose:
        fields.get_by_text(choose, exact=True).click()
    if photo:
        upload(page, fields, photo)
    button.click()
    deadline = time.monotonic() + 20
    while db.execute('select version from "case" where id=?', (case_id,)).fetchone()[0] == before:
        assert time.monotonic() < deadline, f"{label!r} did not move the case"
        time.sleep(0.2)
    # The page says what the move did: "<code>：已…。"
    expect(page.get_by_text(re.compile(r"^[A-Z0-9]{10}：已")).first).to_be_visible(timeout=WAIT)
    settle(page)  # the forms below the message are drawn later in the same run


def test_a_report_goes_round_the_whole_loop(browser_server, browser_chromium, tmp_path):
    """A resident reports with a photo and gets a code; community staff accept and call the
    street; street staff dispatch to a department; the department signs for it and records the
    result with a photo; community staff verify and record the call-back and close it; the
    resident sees it closed on the tracking page and rates it."""
    from PIL import Image

    photo = tmp_path / "hazard.jpg"
    Image.new("RGB", (320, 240), "orange").save(photo)
    db = sqlite_db(browser_server.db_url)

    resident = browser_chromium.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = new_page(resident)
    load(page, browser_server + "/report")
    expect(page.get_by_role("heading", name="隐患上报").first).to_be_visible(timeout=WAIT)
    pick(page, "所在社区 *", "春熙路街道 · 红星路社区")
    pick(page, "问题类别 *", "社区公共消防")
    page.get_by_label("问题描述 *").fill("3栋一楼楼道堆满纸箱，消防通道被堵")
    page.get_by_label("详细地址 *").fill("红星路一段35号院3栋")
    page.get_by_label("联系电话 *（用于查询和回访，不会公开）").fill("13812345678")
    upload(page, page, photo)
    page.get_by_test_id("stFormSubmitButton").get_by_role("button").click()
    expect(page.get_by_text("已收到，谢谢！")).to_be_visible(timeout=WAIT)
    # The receipt is drawn line by line: read it once its last line, the PIN's warning, is there.
    expect(page.get_by_text("查询密码只显示这一次")).to_be_visible(timeout=WAIT)
    settle(page)
    text = page.inner_text("body")
    code = re.search(r"查询码: ?([A-Z0-9]{10})", text).group(1)
    pin = re.search(r"查询密码: ?(\d{6})\b", text).group(1)
    case_id, state = db.execute('select id, state from "case" where code=?', (code,)).fetchone()
    assert state == "reported"
    assert db.execute("select count(*) from attachment where case_id=?", (case_id,)).fetchone()[0] == 1

    context, staff = staff_page(browser_chromium, browser_server, "community01")
    switch(staff, staff.get_by_test_id("stSidebar").get_by_role("link", name=re.compile("待办队列")).click)
    expect(staff.get_by_role("heading", name="待办队列").first).to_be_visible(timeout=WAIT)
    staff.get_by_text("筛选").click()
    staff.get_by_label("搜索（编号、地址、描述）").fill(code)
    staff.keyboard.press("Enter")
    expect(staff.get_by_text("显示 1 件，共 1 件")).to_be_visible(timeout=WAIT)
    # The first row under the header.
    click_grid(staff, 200, 35 + 17, "the row click")
    expect(staff.get_by_role("heading", name=re.compile(code)).first).to_be_visible(timeout=WAIT)
    _act(staff, db, case_id, "受理")
    _act(staff, db, case_id, "呼叫上级", note="涉及多个单位，请街道协调")
    context.close()

    context, staff = staff_page(browser_chromium, browser_server, "street01")
    load(staff, f"{browser_server}/case?id={case_id}")
    _act(staff, db, case_id, "派单")
    lead = db.execute('select u.code from "case" c join unit u on u.id = c.handler_id where c.id=?',
                      (case_id,)).fetchone()[0]
    context.close()

    context, staff = staff_page(browser_chromium, browser_server,
                                 "staff_" + lead.lower().replace("-", "_"))
    load(staff, f"{browser_server}/case?id={case_id}")
    _act(staff, db, case_id, "签收并开始处置")
    _act(staff, db, case_id, "处置完毕", note="已清理楼道杂物，通道畅通", photo=photo)
    context.close()

    context, staff = staff_page(browser_chromium, browser_server, "community01")
    load(staff, f"{browser_server}/case?id={case_id}")
    _act(staff, db, case_id, "核查通过")
    _act(staff, db, case_id, "回访", note="电话回访，居民认可", choose="满意")
    _act(staff, db, case_id, "办结")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    staff.screenshot(path=str(ARTIFACTS / "case.png"))
    context.close()
    actions = [row[0] for row in db.execute(
        "select action from case_event where case_id=? order by seq", (case_id,))]
    assert actions == ["report", "accept", "call_up", "dispatch", "acknowledge", "start", "handle",
                       "verify", "feedback", "close"]

    load(page, browser_server + "/track")
    page.get_by_label("查询码").fill(code)
    page.get_by_label("查询密码 / 短信验证码").fill(pin)  # from the receipt
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_text("已办结").first).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("周民警")).to_have_count(0)
    expect(page.get_by_text("13812345678")).to_have_count(0)
    page.get_by_text("满意", exact=True).click()
    page.get_by_role("button", name="发送短信验证码").last.click()  # inside the rating form
    expect(page.get_by_text("验证码已发送")).to_be_visible(timeout=WAIT)
    page.get_by_label("短信验证码（先点“发送短信验证码”）").fill(last_sms_code(browser_server, code))
    page.get_by_role("button", name="提交评价").click()
    expect(page.get_by_text("感谢您的评价！")).to_be_visible(timeout=WAIT)
    page.screenshot(path=str(ARTIFACTS / "track.png"))
    assert db.execute('select state, rating from "case" where id=?', (case_id,)).fetchone() == (
        "closed", "satisfied")
    resident.close()
    db.close()


def test_hostile_description_is_shown_as_text_and_fetches_nothing(browser_server, browser_chromium):
    """A report carries a Markdown image and link, HTML and a direction override pointing at a
    local listener; when community staff open the case, the text shows as typed and the
    listener receives no request."""
    with local_listener() as (port, hits):
        hostile = (f"![x](http://127.0.0.1:{port}/img.png) [点我](http://127.0.0.1:{port}/link) "
                   f"<img src=\"http://127.0.0.1:{port}/tag.png\"><script>"
                   f"fetch('http://127.0.0.1:{port}/js')</script> \u202e反向")
        case = seed_case(browser_server, category="fire", description=hostile, address="红星路1号",
                         phone="13800009999")
        context, page = staff_page(browser_chromium, browser_server, "community01")
        page.goto(f"{browser_server}/case?id={case.id}")
        expect(page.get_by_text(f"![x](http://127.0.0.1:{port}/img.png)", exact=False)).to_be_visible(
            timeout=WAIT)
        page.wait_for_timeout(2000)
        assert hits == []
        assert page.locator(f"img[src*='127.0.0.1:{port}']").count() == 0
        assert page.locator(f"a[href*='127.0.0.1:{port}']").count() == 0
        context.close()
