"""The assessment pages in a real browser: the district leader opens the overview and the map on
the demo server; the plotly charts are drawn (trend lines and bars, the community polygons and the
heat map), and nothing is fetched from anywhere but the app's own server (no map tiles, no CDN
boundary files, no fonts or scripts from the internet)."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest

pytest.register_assert_rewrite("tests.browser_support")  # before its first import

from tests.browser_support import (  # noqa: E402
    ARTIFACTS,
    ROOT,
    WAIT,
    expect,
    load,
    login_cookie,
    new_page,
)

pytest_plugins = ["tests.browser_support"]  # the shared server, browser and context fixtures
# Meant to keep the browser tests on one worker (one server, one browser); see the README.
pytestmark = pytest.mark.xdist_group("browser")

BOUNDARIES = ROOT / "data" / "geo" / "510104.geojson"

# True once the page holds ``count`` plotly charts whose SVG is drawn and ``selector`` matches
# an element with a drawn path in one of them.
DRAWN = """([count, selector]) => {
  const plots = document.querySelectorAll('.js-plotly-plot');
  if (plots.length < count) return false;
  for (const plot of plots) if (!plot.querySelector('.main-svg')) return false;
  return [...document.querySelectorAll(selector)].some(
    (el) => el.tagName !== 'path' || (el.getAttribute('d') || '').length > 4);
}"""


def _outside(requests: list[str], base: str) -> list[str]:
    """The requests to a host other than the app's server (data: and blob: are in-page)."""
    ours = urlsplit(base).netloc
    return [url for url in requests
            if urlsplit(url).scheme not in ("data", "blob", "about") and urlsplit(url).netloc != ours]


def test_the_overview_and_the_map_draw_their_charts_from_the_server_alone(browser_server,
                                                                            browser_chromium):
    context = browser_chromium.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = new_page(context)
    page.on("websocket", lambda socket: requests.append(socket.url))
    try:
        context.add_cookies([login_cookie(browser_server, "district_leader")])
        load(page, browser_server)
        expect(page.get_by_text("您好").first).to_be_visible(timeout=WAIT)

        load(page, f"{browser_server}/kpi_overview")
        expect(page.get_by_role("heading", name="考核总览")).to_be_visible(timeout=WAIT)
        expect(page.get_by_text("锦江区 · ").first).to_be_visible(timeout=WAIT)
        # Three charts: the rates and the closure time by month (lines), cases by category (bars).
        page.wait_for_function(DRAWN, arg=[3, ".js-plotly-plot .scatterlayer .trace path.js-line"],
                               timeout=WAIT)
        page.wait_for_function(DRAWN, arg=[3, ".js-plotly-plot .barlayer .trace"], timeout=WAIT)
        expect(page.get_by_test_id("stMetric").first).to_be_visible(timeout=WAIT)

        load(page, f"{browser_server}/kpi_map")
        expect(page.get_by_role("heading", name="分布地图")).to_be_visible(timeout=WAIT)
        communities = len(json.loads(BOUNDARIES.read_text(encoding="utf-8"))["features"])
        polygons = page.locator(".js-plotly-plot .scatterlayer path.js-fill")
        expect(polygons.nth(communities - 1)).to_be_attached(timeout=WAIT)  # every community
        page.wait_for_function(DRAWN, arg=[2, ".js-plotly-plot .scatterlayer path.js-fill"],
                               timeout=WAIT)
        page.wait_for_function(DRAWN, arg=[2, ".js-plotly-plot .heatmaplayer .hm image"],
                               timeout=WAIT)
        expect(page.get_by_text("类别 × 社区热力图")).to_be_visible(timeout=WAIT)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "kpi_map.png"), full_page=True)
    finally:
        context.close()

    assert any(urlsplit(url).path.endswith("/kpi_map") for url in requests)  # recorded at all
    assert not _outside(requests, browser_server), sorted(set(_outside(requests, browser_server)))


# The elements around ``selector``'s first match that scroll or clip, and by how much their
# content overflows them (an empty list: everything inside is laid out at full height).
CLIPPED = """(selector) => {
  const out = [];
  for (const table of document.querySelectorAll(selector)) {
    for (let el = table; el && el !== document.documentElement; el = el.parentElement) {
      const style = getComputedStyle(el);
      if (['auto', 'scroll', 'hidden'].includes(style.overflowY) &&
          el.scrollHeight > el.clientHeight + 1) {
        out.push(`${el.tagName}.${el.className} ${el.scrollHeight}>${el.clientHeight}`);
      }
    }
  }
  return out;
}"""


def test_the_printed_monthly_report_holds_every_row_of_every_table(browser_server, browser_chromium):
    """A district leader prints the 月度通报: each table prints every row (all 48 communities,
    not the ten a scrolling grid shows), with nothing clipped, and the grids stay off paper."""
    context = browser_chromium.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = new_page(context)
    try:
        context.add_cookies([login_cookie(browser_server, "district_leader")])
        load(page, browser_server)
        expect(page.get_by_text("您好").first).to_be_visible(timeout=WAIT)
        load(page, f"{browser_server}/kpi_report")
        expect(page.get_by_text("平安社区建设月度通报").first).to_be_visible(timeout=WAIT)
        page.emulate_media(media="print")
        printed = page.locator('[class*="st-key-print_table_"] table')
        expect(printed.first).to_be_visible(timeout=WAIT)
        expect(page.get_by_test_id("stDataFrame").first).to_be_hidden(timeout=WAIT)
        communities = len(json.loads(BOUNDARIES.read_text(encoding="utf-8"))["features"])
        rows = page.locator('[class*="st-key-print_table_ranking_community"] tbody tr')
        expect(rows).to_have_count(communities, timeout=WAIT)
        expect(rows.last).to_be_visible(timeout=WAIT)
        tables = '[class*="st-key-print_table_"] table'
        page.wait_for_function(f"(selector) => ({CLIPPED})(selector).length === 0", arg=tables,
                               timeout=WAIT)
        assert page.evaluate(CLIPPED, tables) == []
        pdf = page.pdf(format="A4", print_background=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "kpi_report.pdf").write_bytes(pdf)
        # 48 communities, 6 streets, 40 departments and 12 categories: more than two pages.
        assert len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 3
    finally:
        context.close()
