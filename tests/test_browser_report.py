"""The grid worker's report in a real browser, measured: a grid worker on her phone in the
street reports a hazard she found, with her community already chosen and the map point taken
from the phone, in at most 6 fields and 8 taps. The figures are printed (run with ``-s``) and
written to test-artifacts/grid_report.json."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import Error as PlaywrightError

pytest.register_assert_rewrite("tests.browser_support")  # before its first import

from tests.browser_support import (  # noqa: E402
    ARTIFACTS,
    WAIT,
    expect,
    load,
    login_cookie,
    new_page,
    settle,
    sqlite_db,
)

pytest_plugins = ["tests.browser_support"]  # the shared server, browser and context fixtures
# Meant to keep the browser tests on one worker (one server, one browser); see the README.
pytestmark = pytest.mark.xdist_group("browser")

PHONE = {"width": 390, "height": 844}
HERE = {"latitude": 30.66, "longitude": 104.06}  # where the phone says she stands
COMMUNITY = "510104001001"  # 红星路社区, grid01's community
CATEGORY = "燃气设施"
MAX_FIELDS, MAX_TAPS = 6, 8
RESIDENTS_NOTE = "您的姓名和电话仅用于办理和回访"


class Measure:
    """What a reporter does on the page: the fields she types into or chooses in, and her taps
    (a click on a button, a select box or an option; typing text counts as its field)."""

    def __init__(self, page) -> None:
        self.page = page
        self.fields: list[str] = []
        self.taps = 0

    def tap(self, target) -> None:
        target.click()
        self.taps += 1

    def type(self, label: str, text: str) -> None:
        self.page.get_by_label(label, exact=True).fill(text)
        self.fields.append(label)

    def choose(self, label: str, option: str) -> None:
        """Open the select box and tap the option: two taps, one field."""
        box = self.page.get_by_role("combobox", name=label, exact=True)
        self.tap(box)
        self.tap(self.page.get_by_role("option", name=option, exact=True))
        expect(box).to_have_value(option, timeout=WAIT)
        self.fields.append(label)
        settle(self.page)  # the rest of the form is drawn again for this choice


INPUTS = ["stTextInput", "stTextArea", "stSelectbox", "stMultiSelect", "stFileUploader",
          "stCheckbox", "stRadio", "stNumberInput"]


def _inputs_shown(page) -> int:
    """How many inputs the form shows before anything is opened (a folded section hides its)."""
    settle(page)
    return sum(page.get_by_test_id("stMain").get_by_test_id(kind).filter(visible=True).count()
               for kind in INPUTS)


def _shows(page, label: str, value: str) -> None:
    """Wait until the form shows one box called ``label`` holding ``value``. While the page is
    drawn again the old box and the new one are both there for a moment: that is not an answer
    yet, so it is waited out rather than read."""
    box = page.get_by_label(label)
    deadline = time.monotonic() + WAIT / 1000
    while True:
        try:
            if box.count() == 1 and box.input_value(timeout=1000) == value:
                return
        except PlaywrightError:
            pass  # the box went away under the read: the redraw is still going on
        assert time.monotonic() < deadline, f"{label} never showed {value} alone"
        page.wait_for_timeout(100)


def _use_my_location(measure: Measure) -> None:
    """One tap; the phone's point shows in the coordinate boxes."""
    page = measure.page
    measure.tap(page.get_by_role("button", name="使用我的位置"))
    _shows(page, "纬度（可选）", "30.66")
    _shows(page, "经度（可选）", "104.06")
    settle(page)


def _screenshot(page, name: str) -> None:
    """The whole form, phone-wide, for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = page.get_by_test_id("stMain").evaluate("el => el.scrollHeight")
    page.set_viewport_size({"width": PHONE["width"], "height": max(height, PHONE["height"])})
    page.screenshot(path=str(ARTIFACTS / name))
    page.set_viewport_size(PHONE)


def test_grid_worker_reports_in_six_fields_and_eight_taps(browser_server, browser_chromium):
    """The grid worker 王网格 finds a gas pipe crushed under a parked cart. On her phone she
    opens 代为上报: her community is already chosen, and the privacy note written for residents
    is not there. She picks 燃气设施, taps 使用我的位置 (the phone allows it), says what and
    where, and submits: she gets a tracking code, and the case is stored at her community with
    the phone's point, as a grid worker's report, at the category's default severity (triage
    may change it)."""
    db = sqlite_db(browser_server.db_url)
    context = browser_chromium.new_context(viewport=PHONE, locale="zh-CN", geolocation=HERE,
                                           permissions=["geolocation"])
    page = new_page(context)
    context.add_cookies([login_cookie(browser_server, "grid01")])
    load(page, browser_server)
    expect(page.get_by_role("heading", name="王网格，您好").first).to_be_visible(timeout=WAIT)
    load(page, browser_server + "/staff_report")
    expect(page.get_by_role("button", name="提交")).to_be_visible(timeout=WAIT)
    community = page.get_by_role("combobox", name="所在社区 *", exact=True)
    expect(community).to_have_value("春熙路街道 · 红星路社区")
    expect(page.get_by_text(RESIDENTS_NOTE)).to_have_count(0)
    shown = _inputs_shown(page)
    measure = Measure(page)
    started = time.monotonic()
    measure.choose("问题类别 *", CATEGORY)
    _use_my_location(measure)
    measure.type("问题描述 *", "红星路一段35号院北门燃气管被三轮车压住，管皮已破")
    measure.type("详细地址 *", "红星路一段35号院北门")
    paused = time.monotonic()
    _screenshot(page, "grid-report.png")
    started += time.monotonic() - paused
    measure.tap(page.get_by_role("button", name="提交"))
    expect(page.get_by_text("已收到，谢谢！")).to_be_visible(timeout=WAIT)
    seconds = round(time.monotonic() - started, 1)
    expect(page.get_by_role("heading", name=re.compile(r"查询码"))).to_be_visible(timeout=WAIT)
    code = re.search(r"查询码: ?([A-Z0-9]{10})\b", page.inner_text("body")).group(1)

    figures = {"fields": len(measure.fields), "taps": measure.taps, "seconds": seconds,
               "fields_touched": measure.fields, "inputs_shown": shown}
    print(f"\ngrid worker's report: {figures}")
    (ARTIFACTS / "grid_report.json").write_text(json.dumps(figures, ensure_ascii=False, indent=1),
                                                encoding="utf-8")
    row = db.execute('select c.latitude, c.longitude, u.code, c.source, c.severity from "case" c '
                     "join unit u on u.id = c.community_id where c.code = ?", (code,)).fetchone()
    assert row == (HERE["latitude"], HERE["longitude"], COMMUNITY, "grid_worker", "major")
    assert figures["fields"] <= MAX_FIELDS and figures["taps"] <= MAX_TAPS, figures
    context.close()
    db.close()
