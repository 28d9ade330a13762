"""What the browser tests share: one Streamlit server on a demo SQLite database, one Chromium,
and small helpers.

Each browser test module names this module in ``pytest_plugins``. pytest then loads it once, as
a plugin, so its session-scoped fixtures are shared by every browser test of the run: one server
start (~10 s) and one browser start, whichever of the modules run. Test modules import only the
helpers below, never the fixtures (an imported fixture would be a second copy with a second
server).
"""

from __future__ import annotations

import http.server
import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lib.core.db import get_engine
from lib.ui.login import encode_cookie
from tests.conftest import under_ci
from tests.factories import new_case

# Found the way .ci/run checks for it (``command -v chromium``).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "Demo-2026!"
COOKIE = "safe_community_auth"
WAIT = 20000  # ms: how long a state may take to show on the busy 2-core machine
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

if not Path(CHROMIUM).exists():
    if under_ci():
        pytest.fail("CI needs the browser tests to run: chromium is missing "
                    "(apt-get install -y chromium)", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing; browser tests need Debian's chromium",
                allow_module_level=True)
try:
    from playwright import sync_api
except ImportError:
    if under_ci():
        pytest.fail("CI needs the browser tests to run: playwright is not installed", pytrace=False)
    pytest.skip("playwright is not installed", allow_module_level=True)
expect = sync_api.expect

from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Base(str):
    """The server's base URL, which also knows its database and where its SMS go (the log
    gateway's file: residents' one-time codes are read there)."""

    db_url: str
    sms_log: Path
    cookie_key: str


def last_sms_code(base: Base, code: str) -> str:
    """The newest one-time code the server sent for the case ``code``."""
    texts = [json.loads(line)["text"] for line in
             base.sms_log.read_text(encoding="utf-8").splitlines()] if base.sms_log.exists() else []
    found = [re.search(r"验证码 (\d{6})", t).group(1) for t in texts if "验证码" in t and code in t]
    assert found, f"no code was sent for {code}"
    return found[-1]


@pytest.fixture(scope="session")
def browser_server(tmp_path_factory) -> Iterator[Base]:
    """A migrated demo database and a Streamlit server on it; yields the base URL."""
    tmp = tmp_path_factory.mktemp("browser")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/app.db",
           "COOKIE_KEY": secrets.token_urlsafe(48), "BCRYPT_ROUNDS": "4",
           "NOTICE_LOG": str(tmp / "notices.log")}
    for args in (["migrate"], ["demo", "--cases", "50"]):
        subprocess.run([sys.executable, "-m", "lib", *args], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=120)
    port = free_port()
    log = (tmp / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false",
         # The code it started with, whatever is edited in the tree while the tests run.
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = Base(f"http://127.0.0.1:{port}")
    base.db_url = env["DATABASE_URL"]
    base.sms_log = tmp / "notices.log"
    base.cookie_key = env["COOKIE_KEY"]
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


@pytest.fixture(scope="session")
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


# ---------------------------------------------------------------- helpers


def wait_until(condition: Callable[[], object], what: str, seconds: float = WAIT / 1000) -> None:
    """Poll ``condition`` (a database read, a cookie) until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def settle(page) -> None:
    """Wait until the app has finished its current script run."""
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning",
                                                           timeout=WAIT)


class _Runs:
    """Reads a page's Streamlit websocket: how many script runs the browser has asked for, and
    how many of them had been asked for when the server last finished a run."""

    def __init__(self) -> None:
        self.requested = 0
        self.finished_after = -1

    def watch(self, socket) -> None:
        socket.on("framesent", self._sent)
        socket.on("framereceived", self._received)

    def _sent(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes) and BackMsg.FromString(payload).WhichOneof("type") == "rerun_script":
            self.requested += 1

    def _received(self, payload: str | bytes) -> None:
        if not isinstance(payload, bytes):
            return
        msg = ForwardMsg.FromString(payload)
        if msg.WhichOneof("type") == "script_finished" and \
                msg.script_finished == ForwardMsg.ScriptFinishedStatus.FINISHED_SUCCESSFULLY:
            self.finished_after = self.requested


def _runs(page) -> _Runs:
    """The page's run counter, attached before its first connection (``new_page``)."""
    runs = getattr(page, "_script_runs", None)
    if runs is None:
        runs = page._script_runs = _Runs()
        page.on("websocket", runs.watch)
    return runs


def new_page(context):
    """A page whose script runs ``load`` and ``switch`` can count."""
    page = context.new_page()
    _runs(page)
    return page


def switch(page, do: Callable[[], object], what: str = "the page switch", runs: int = 1) -> None:
    """Do something that opens another page (``page.goto``, a menu link, a table row) and wait
    until the app is idle there: the browser has asked for ``runs`` script runs and the server
    has finished a run after the last request.

    A logged-in page runs once. A page that draws the login library's cookie component (the
    anonymous home page with its form; the run that sets the cookie after a login or deletes it
    after a logout) runs once more when the component reports the browser's cookies, about half
    a second after the page already looks ready; pass ``runs=2`` there.
    """
    counter = _runs(page)
    before = counter.requested
    do()
    deadline = time.monotonic() + WAIT / 1000
    while counter.requested < before + runs or counter.finished_after < counter.requested:
        assert time.monotonic() < deadline, (
            f"{what}: {counter.requested - before} script runs asked for, expected {runs}, or "
            "the last one never finished")
        page.wait_for_timeout(100)
    settle(page)


def grid_box(page, what: str) -> dict:
    """The box of the page's (first) data grid once it has stopped moving: the same box in
    two reads a few frames apart, with no script run going on. An expander opening above it,
    a scroll or a grid drawn again under a new key all move it after the run has finished."""
    grid = page.get_by_test_id("stDataFrame").first
    deadline = time.monotonic() + WAIT / 1000
    box = None
    while True:
        settle(page)
        grid.scroll_into_view_if_needed(timeout=WAIT)  # as a reader scrolls to it
        previous, box = box, grid.bounding_box()
        if box is not None and box == previous:
            return box
        assert time.monotonic() < deadline, f"{what}: the grid never stood still ({box})"
        page.wait_for_timeout(150)


GRID_ANSWER = 5  # s: how long a clicked grid may take to ask for a run on the busy machine


def click_grid(page, dx: float, dy: float, what: str, attempts: int = 4) -> None:
    """Click the point (``dx``, ``dy``) of the page's data grid (a cell, a row's box) and wait
    as ``switch`` does. The grid is a canvas: a click that lands while it is moved or drawn
    again is lost, so, as a user would, the grid is looked at again and clicked again if the
    browser asked for no run within a few seconds."""
    counter = _runs(page)
    before = counter.requested
    for _attempt in range(attempts):
        box = grid_box(page, what)
        page.mouse.click(box["x"] + dx, box["y"] + dy)
        deadline = time.monotonic() + GRID_ANSWER
        while counter.requested == before and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        if counter.requested > before:
            break
    assert counter.requested > before, (
        f"{what}: the grid never answered the click ({attempts} clicks on a grid standing still)")
    switch(page, lambda: None, what, runs=0)


def load(page, url: str, runs: int = 1) -> None:
    """Open ``url`` and wait until the app is idle there (see ``switch``)."""
    switch(page, lambda: page.goto(url), url, runs)


def log_in(page, base: str, username: str) -> None:
    """Type the login form on the home page, once the page has finished both its runs (the
    second comes when the cookie component reports; typing before it ends can lose the submit)."""
    load(page, base, runs=2)
    expect(page.get_by_role("heading", name="平安社区建设信息平台").first).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("登录", exact=True).first).to_be_visible(timeout=WAIT)
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="登录").click()


def pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the select box labelled ``label`` (typing filters the long lists)."""
    box = page.get_by_role("combobox", name=label, exact=True)
    if box.input_value() == option:
        return
    box.click()
    box.fill(option)
    # The choice runs the page again (the rest of the form is drawn for it): wait for that run
    # itself, not only for an idle page, or text typed next can be lost to it.
    switch(page, page.get_by_role("option", name=option, exact=True).click,
           f"the choice of {option}")
    expect(box).to_have_value(option, timeout=WAIT)


def upload(page, where, path: Path) -> None:
    """Put the file ``path`` into the file box inside ``where`` (a page or a locator) and wait
    until the box names it. A rerun still under way (the form drawn again after a choice) can
    replace the box and drop the file: the file is put in again then."""
    deadline = time.monotonic() + WAIT / 1000
    while True:
        where.locator("input[type=file]").last.set_input_files(str(path))
        try:
            expect(where.get_by_text(path.name).first).to_be_visible(timeout=4000)
            return
        except AssertionError:
            assert time.monotonic() < deadline, f"the file box never took {path.name}"
            settle(page)


def wait_for_cookie(context, seconds: float = WAIT / 1000) -> None:
    wait_until(lambda: any(c["name"] == COOKIE for c in context.cookies()),
               f"the login cookie {COOKIE!r} is set", seconds)


def login_cookie(base: Base, username: str) -> dict:
    """The login cookie the server would set for ``username`` logging in now, made by the
    app's own cookie code with the server's key (``lib.ui.login.encode_cookie``)."""
    now = time.time()
    value = encode_cookie(username, datetime.fromtimestamp(now, tz=timezone.utc),
                          now + 7 * 86400, base.cookie_key)
    return {"name": COOKIE, "value": value, "url": str(base)}


def staff_page(browser, base: Base, username: str, **context_args):
    """A fresh browser context logged in as ``username`` and idle on the home page; returns
    (context, page). The login comes from a cookie (``login_cookie``): the login form itself
    is tested by the tests that call ``log_in``."""
    context = browser.new_context(**{"viewport": {"width": 1400, "height": 900},
                                     "locale": "zh-CN", **context_args})
    context.add_cookies([login_cookie(base, username)])
    page = new_page(context)
    load(page, base)
    expect(page.get_by_text("您好").first).to_be_visible(timeout=WAIT)
    return context, page


def sqlite_db(db_url: str) -> sqlite3.Connection:
    """A plain sqlite3 connection to the server's database, for reading state in asserts."""
    return sqlite3.connect(db_url.removeprefix("sqlite:///"))


def seed_case(base: Base, **fields):
    """A resident's report stored through lib (``tests.factories.new_case``: a fresh phone and
    client address unless given) on the server's database; returns the case."""
    return new_case(get_engine(base.db_url), **fields)


@contextmanager
def local_listener() -> Iterator[tuple[int, list[str]]]:
    """An HTTP server on 127.0.0.1; yields its port and the list of paths it was asked for."""
    hits: list[str] = []

    class Listener(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args) -> None:
            return

    server = http.server.HTTPServer(("127.0.0.1", 0), Listener)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], hits
    finally:
        server.shutdown()
        server.server_close()
