"""A resident on a phone (390×844) in a real browser: the status card on the tracking page shows
its whole text, and "use my location" chooses the community whose boundary holds the phone's
point. Screenshots go to test-artifacts/ for a person to look at."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("tests.browser_support")  # before its first import

from lib.core.db import get_engine  # noqa: E402
from lib.org import geo  # noqa: E402
from tests.browser_support import (  # noqa: E402
    ARTIFACTS,
    WAIT,
    expect,
    load,
    new_page,
    seed_case,
    settle,
)
from tests.factories import sms_code  # noqa: E402

pytest_plugins = ["tests.browser_support"]  # the shared server, browser and context fixtures
pytestmark = pytest.mark.xdist_group("browser")

PHONE = {"width": 390, "height": 844}
RECEIVED = "已收到，等待社区核实"
NEIGHBOUR = "510104001002"  # 科甲巷社区, not the first community of the list

# Every element of the status card's value: how wide its text is against the box it has, and
# whether the card's right edge stays inside the screen.
CARD_FITS = """el => {
  const card = el.closest('[data-testid="stMetric"]');
  const parts = [el, ...el.querySelectorAll('*')];
  return {
    cut: parts.filter(p => p.scrollWidth > p.clientWidth + 1).length,
    right: card.getBoundingClientRect().right,
    width: window.innerWidth,
    text: el.innerText,
  };
}"""


def _screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_the_status_card_shows_its_whole_text_on_a_phone(browser_server, browser_chromium):
    """A resident looks their report up on a 390×844 phone: the status card reads
    已收到，等待社区核实 in full, wrapped if need be, and nothing of it runs off the card or
    the screen."""
    case = seed_case(browser_server, category="fire", phone="13800005678",
                     description="楼道灭火器过期", address="红星路一段8号")
    context = browser_chromium.new_context(viewport=PHONE, locale="zh-CN")
    page = new_page(context)
    load(page, browser_server + "/track")
    expect(page.get_by_role("heading", name="进度查询").first).to_be_visible(timeout=WAIT)
    page.get_by_label("查询码").fill(case.code)
    page.get_by_label("查询密码 / 短信验证码").fill(
        sms_code(get_engine(browser_server.db_url), case.code))
    page.get_by_role("button", name="查询", exact=True).click()
    value = page.get_by_test_id("stMetricValue")
    expect(value).to_have_text(RECEIVED, timeout=WAIT)
    settle(page)
    fits = value.evaluate(CARD_FITS)
    _screenshot(page, "track-phone.png")
    assert fits["text"].replace("\n", "") == RECEIVED
    assert fits["cut"] == 0, fits
    assert fits["right"] <= fits["width"], fits
    context.close()


def test_the_phones_location_chooses_the_community_it_lies_in(browser_server, browser_chromium):
    """A resident stands in 科甲巷社区 and taps 使用我的位置 (the phone allows it): the map point
    is filled and the community box shows 科甲巷社区, with a line saying it was chosen by the
    location; nothing else was chosen for them."""
    feature = next(f for f in geo.load_boundaries("510104")["features"]
                   if f["properties"]["code"] == NEIGHBOUR)
    lon, lat = geo.centroid(feature)
    here = {"latitude": round(lat, 6), "longitude": round(lon, 6)}
    context = browser_chromium.new_context(viewport=PHONE, locale="zh-CN", geolocation=here,
                                           permissions=["geolocation"])
    page = new_page(context)
    load(page, browser_server + "/report")
    expect(page.get_by_role("button", name="提交")).to_be_visible(timeout=WAIT)
    community = page.get_by_role("combobox", name="所在社区 *", exact=True)
    category = page.get_by_role("combobox", name="问题类别 *", exact=True)
    expect(community).to_have_value("", timeout=WAIT)
    expect(category).to_have_value("")
    page.get_by_role("button", name="使用我的位置").click()
    expect(community).to_have_value("春熙路街道 · 科甲巷社区", timeout=WAIT)
    expect(page.get_by_text("并按位置选择了所在社区：科甲巷社区")).to_be_visible(timeout=WAIT)
    expect(page.get_by_label("纬度（可选）")).to_have_value(str(here["latitude"]))
    expect(category).to_have_value("")
    settle(page)
    _screenshot(page, "report-located.png")
    context.close()
