"""End to end in a real browser: a Streamlit server on a demo SQLite db, driven by Chromium."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlmodel import select as sync_select

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "Demo-2026!"
COOKIE = "safe_community_auth"
WAIT = 20000
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing; browser tests need Debian's chromium",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Base(str):
    """The server's base URL, which also knows its database."""

    db_url: str


@pytest.fixture(scope="module")
def browser_server(tmp_path_factory):
    """A migrated demo database and a Streamlit server on it; yields the base URL."""
    tmp = tmp_path_factory.mktemp("browser")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/app.db",
           "COOKIE_KEY": secrets.token_urlsafe(48), "BCRYPT_ROUNDS": "4"}
    for args in (["migrate"], ["demo", "--cases", "50"]):
        subprocess.run([sys.executable, "-m", "lib", *args], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=120)
    port = _free_port()
    log = (tmp / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = _Base(f"http://127.0.0.1:{port}")
    base.db_url = env["DATABASE_URL"]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("streamlit did not start:\n" + (tmp / "streamlit.log").read_text())
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser_chromium():
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_context(browser_chromium):
    context = browser_chromium.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    yield context
    context.close()


def _log_in(page, base: str, username: str) -> None:
    page.goto(base)
    expect(page.get_by_role("heading", name="平安社区建设信息平台").first).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("登录", exact=True).first).to_be_visible(timeout=WAIT)
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="登录").click()


def _wait_for_cookie(context, seconds: float = 8.0) -> None:
    deadline = time.monotonic() + seconds
    while not any(c["name"] == COOKIE for c in context.cookies()):
        assert time.monotonic() < deadline, f"login cookie {COOKIE!r} was never set"
        time.sleep(0.2)


def test_admin_logs_in_reloads_deep_links_and_logs_out(browser_server, browser_context):
    """The admin logs in, sees the home page and admin menu, reloads and is still logged in,
    opens the users page by its URL, logs out, and that URL then asks them to log in."""
    page = browser_context.new_page()
    _log_in(page, browser_server, "admin")

    # .first: during a rerun a stale copy of an element may briefly sit beside the new one.
    greeting = page.get_by_role("heading", name="卫管理员，您好").first
    expect(greeting).to_be_visible(timeout=WAIT)
    sidebar = page.get_by_test_id("stSidebar")
    for label in ("用户管理", "组织架构", "问题分类与时限"):
        expect(sidebar.get_by_role("link", name=label)).to_be_visible(timeout=WAIT)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)

    _wait_for_cookie(browser_context)
    page.reload()
    expect(greeting).to_be_visible(timeout=WAIT)

    page.goto(browser_server + "/admin_users")
    expect(page.get_by_role("heading", name="用户管理").first).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("请先登录")).to_have_count(0)

    sidebar.get_by_role("button", name="退出登录").click()
    expect(page.get_by_role("button", name="登录")).to_be_visible(timeout=WAIT)
    deadline = time.monotonic() + 10
    while any(c["name"] == "safe_community_auth" for c in browser_context.cookies()):
        assert time.monotonic() < deadline, "the login cookie outlived the logout"
        page.wait_for_timeout(200)

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
    _log_in(page, browser_server, "grid01")
    expect(page.get_by_role("heading", name="王网格，您好").first).to_be_visible(timeout=WAIT)
    _wait_for_cookie(browser_context)
    page.goto(browser_server + "/admin_users")
    expect(page.get_by_text("您没有访问此页面的权限。")).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("stDataFrame")).to_have_count(0)
    page.close()


# ---------------------------------------------------------------- the closed loop, end to end


def _db(base_env_url: str):  # noqa: ANN202
    import sqlite3

    return sqlite3.connect(base_env_url.removeprefix("sqlite:///"))


def _staff_page(browser, base: str, username: str):  # noqa: ANN001, ANN202
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = context.new_page()
    _log_in(page, base, username)
    expect(page.get_by_text("您好").first).to_be_visible(timeout=WAIT)
    _wait_for_cookie(context)
    return context, page


def _act(page, db, case_id: int, label: str, note: str | None = None, photo: Path | None = None,
         choose: str | None = None) -> None:
    """Open the action's small form on the case page, fill it, submit, and wait until the case
    in the database has moved on."""
    before = db.execute('select version from "case" where id=?', (case_id,)).fetchone()[0]
    form = page.get_by_test_id("stExpander").filter(
        has=page.locator("summary").get_by_text(label, exact=True)).first
    expect(form).to_be_visible(timeout=WAIT)
    button = form.get_by_test_id("stFormSubmitButton").get_by_role("button")
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
    if note:
        form.get_by_role("textbox").last.fill(note)
    if choose:
        form.get_by_text(choose, exact=True).click()
    if photo:
        form.locator("input[type=file]").set_input_files(str(photo))
        expect(form.get_by_text(photo.name)).to_be_visible(timeout=WAIT)
    button.click()
    deadline = time.monotonic() + 20
    while db.execute('select version from "case" where id=?', (case_id,)).fetchone()[0] == before:
        assert time.monotonic() < deadline, f"{label!r} did not move the case"
        time.sleep(0.2)
    expect(page.get_by_text("已办理。")).to_be_visible(timeout=WAIT)


def test_a_report_goes_round_the_whole_loop(browser_server, browser_chromium, tmp_path):
    """A resident reports with a photo and gets a code; community staff accept and call the
    street; street staff dispatch to a department; the department signs for it and records the
    result with a photo; community staff verify and record the call-back and close it; the
    resident sees it closed on the tracking page and rates it."""
    from PIL import Image

    photo = tmp_path / "hazard.jpg"
    Image.new("RGB", (320, 240), "orange").save(photo)
    db = _db(browser_server.db_url)

    resident = browser_chromium.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = resident.new_page()
    page.goto(browser_server + "/report")
    expect(page.get_by_role("heading", name="隐患上报").first).to_be_visible(timeout=WAIT)
    page.get_by_label("问题描述 *").fill("3栋一楼楼道堆满纸箱，消防通道被堵")
    page.get_by_label("详细地址 *").fill("红星路一段35号院3栋")
    page.get_by_label("联系电话 *（用于查询和回访，不会公开）").fill("13812345678")
    page.locator("input[type=file]").set_input_files(str(photo))
    expect(page.get_by_text(photo.name)).to_be_visible(timeout=WAIT)
    page.get_by_test_id("stFormSubmitButton").get_by_role("button").click()
    expect(page.get_by_text("已收到，谢谢！")).to_be_visible(timeout=WAIT)
    code = re.search(r"查询码: ?([A-Z0-9]{10})", page.inner_text("body")).group(1)
    case_id, state = db.execute('select id, state from "case" where code=?', (code,)).fetchone()
    assert state == "reported"
    assert db.execute("select count(*) from attachment where case_id=?", (case_id,)).fetchone()[0] == 1

    context, staff = _staff_page(browser_chromium, browser_server, "community01")
    staff.get_by_test_id("stSidebar").get_by_role("link", name=re.compile("待办队列")).click()
    expect(staff.get_by_role("heading", name="待办队列").first).to_be_visible(timeout=WAIT)
    staff.get_by_text("筛选").click()
    staff.get_by_label("搜索（编号、地址、描述）").fill(code)
    staff.keyboard.press("Enter")
    expect(staff.get_by_text("显示 1 件，共 1 件")).to_be_visible(timeout=WAIT)
    grid = staff.get_by_test_id("stDataFrame").first.bounding_box()
    staff.mouse.click(grid["x"] + 20, grid["y"] + 35 + 17)  # the first row under the header
    expect(staff.get_by_role("heading", name=re.compile(code)).first).to_be_visible(timeout=WAIT)
    _act(staff, db, case_id, "受理")
    _act(staff, db, case_id, "呼叫上级", note="涉及多个单位，请街道协调")
    context.close()

    context, staff = _staff_page(browser_chromium, browser_server, "street01")
    staff.goto(f"{browser_server}/case?id={case_id}")
    _act(staff, db, case_id, "派单")
    lead = db.execute('select u.code from "case" c join unit u on u.id = c.handler_id where c.id=?',
                      (case_id,)).fetchone()[0]
    context.close()

    context, staff = _staff_page(browser_chromium, browser_server,
                                 "staff_" + lead.lower().replace("-", "_"))
    staff.goto(f"{browser_server}/case?id={case_id}")
    _act(staff, db, case_id, "签收")
    _act(staff, db, case_id, "开始处置")
    _act(staff, db, case_id, "处置完毕", note="已清理楼道杂物，通道畅通", photo=photo)
    context.close()

    context, staff = _staff_page(browser_chromium, browser_server, "community01")
    staff.goto(f"{browser_server}/case?id={case_id}")
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

    page.goto(browser_server + "/track")
    page.get_by_label("查询码").fill(code)
    page.get_by_label("手机号后四位 / 查询密码").fill("5678")
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_text("已办结").first).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("周民警")).to_have_count(0)
    expect(page.get_by_text("13812345678")).to_have_count(0)
    page.get_by_text("满意", exact=True).click()
    page.get_by_label("请再次输入手机号后四位或查询密码，确认是您本人").fill("5678")
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
    import http.server
    import threading

    hits: list[str] = []

    class Listener(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args) -> None:  # noqa: ANN002
            return

    listener = http.server.HTTPServer(("127.0.0.1", 0), Listener)
    port = listener.server_address[1]
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    hostile = (f"![x](http://127.0.0.1:{port}/img.png) [点我](http://127.0.0.1:{port}/link) "
               f"<img src=\"http://127.0.0.1:{port}/tag.png\"><script>fetch('http://127.0.0.1:{port}/js')"
               f"</script> \u202e反向")
    from lib.cases.intake import create_case
    from lib.core.db import get_engine, write_session
    from lib.core.models import Category
    from lib.org.units import find_unit

    engine = get_engine(browser_server.db_url)
    with write_session(engine) as s:
        fire = s.exec(sync_select(Category).where(Category.key == "fire")).one()
        case = create_case(s, actor=None, category_id=fire.id, subcategory_id=None,
                           description=hostile, address="红星路1号",
                           community_id=find_unit(s, "510104001001").id,
                           reporter_phone="13800009999")
    context, page = _staff_page(browser_chromium, browser_server, "community01")
    page.goto(f"{browser_server}/case?id={case.id}")
    expect(page.get_by_text(f"![x](http://127.0.0.1:{port}/img.png)", exact=False)).to_be_visible(
        timeout=WAIT)
    page.wait_for_timeout(2000)
    assert hits == []
    assert page.locator(f"img[src*='127.0.0.1:{port}']").count() == 0
    assert page.locator(f"a[href*='127.0.0.1:{port}']").count() == 0
    context.close()
    listener.shutdown()
