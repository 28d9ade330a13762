"""End to end in a real browser: a Streamlit server on a demo SQLite db, driven by Chromium."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def browser_server(tmp_path_factory):
    """A migrated demo database and a Streamlit server on it; yields the base URL."""
    tmp = tmp_path_factory.mktemp("browser")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/app.db",
           "COOKIE_KEY": secrets.token_urlsafe(48), "BCRYPT_ROUNDS": "4"}
    for args in (["migrate"], ["demo", "--cases", "50"]):
        subprocess.run([sys.executable, "-m", "lib.cli", *args], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=120)
    port = _free_port()
    log = (tmp / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
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
