"""The leader's clicks in a real browser, on the demo district: a tap on the home tile 辖区超期
opens the ledger with those cases (one tap; before, the tile opened the whole ledger, which had
no overdue filter), and a click on a street's row in the rankings moves the page to that
street, with the street in the address."""

from __future__ import annotations

import json

import pytest

pytest.register_assert_rewrite("tests.browser_support")  # before its first import

from tests.browser_support import (  # noqa: E402
    ARTIFACTS,
    WAIT,
    click_grid,
    expect,
    load,
    staff_page,
)

pytest_plugins = ["tests.browser_support"]  # the shared server, browser and context fixtures
pytestmark = pytest.mark.xdist_group("browser")

SEARCH = "() => location.search"


def test_one_tap_on_the_overdue_tile_opens_those_cases(browser_server, browser_chromium):
    """The district leader taps 辖区超期 on the home page and sees the overdue cases."""
    context, page = staff_page(browser_chromium, browser_server, "district_leader")
    try:
        tile = page.locator('[class*="st-key-link_tile_"]').filter(has_text="辖区超期")
        expect(tile).to_be_visible(timeout=WAIT)
        count = tile.get_by_test_id("stMetricValue").inner_text().replace(",", "")
        tile.click()  # tap 1: anywhere on the tile (its link covers the figure)
        page.wait_for_function("() => location.pathname.endsWith('/ledger')", timeout=WAIT)
        expect(page.get_by_role("heading", name="台账")).to_be_visible(timeout=WAIT)
        assert "status=overdue" in page.evaluate(SEARCH)
        expect(page.get_by_text(f"共 {int(count):,} 件")).to_be_visible(timeout=WAIT)
        # The other filters read 全部 (all), not an empty "Choose an option".
        expect(page.get_by_test_id("stSelectbox").filter(has_text="类别").first) \
            .to_match_aria_snapshot('- combobox "类别": 全部', timeout=WAIT)
        expect(page.get_by_test_id("stSelectbox").filter(has_text="案件范围")) \
            .to_match_aria_snapshot('- combobox "案件范围": 超期', timeout=WAIT)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "leader_taps.json").write_text(json.dumps(
            {"overdue_tile_to_its_cases": {"before": None, "after": 1, "cases": int(count)}}),
            encoding="utf-8")
    finally:
        context.close()


def test_a_click_on_a_streets_row_moves_the_rankings_to_that_street(browser_server,
                                                                   browser_chromium):
    """The district leader clicks a street's row in the rankings: the page shows that street's
    communities and the address names the street, so the view can be shared. (Before: a select
    box under the table, and nothing in the address.)"""
    context, page = staff_page(browser_chromium, browser_server, "district_leader")
    try:
        load(page, f"{browser_server}/kpi_rankings")
        expect(page.get_by_role("heading", name="考核排名")).to_be_visible(timeout=WAIT)
        expect(page.get_by_role("tab", name="街道（乡镇）")).to_be_visible(timeout=WAIT)
        page.wait_for_function("() => location.search.includes('period=')", timeout=WAIT)
        assert "unit=" not in page.evaluate(SEARCH)
        expect(page.get_by_test_id("stSelectbox").filter(has_text="问题类别")) \
            .to_match_aria_snapshot('- combobox "问题类别": 全部', timeout=WAIT)
        click_grid(page, 200, 35 + 17, "a click on the first street's row")
        page.wait_for_function("() => location.search.includes('unit=510104')", timeout=WAIT)
        # The street's own ranking: its communities first; streets are no longer ranked here.
        expect(page.get_by_role("tab", name="社区（村）")).to_be_visible(timeout=WAIT)
        expect(page.get_by_role("tab", name="街道（乡镇）")).to_have_count(0, timeout=WAIT)
        unit = page.evaluate(SEARCH).split("unit=")[1].split("&")[0]
        assert len(unit) == 9  # a street's code
        page.reload()  # the address alone gives the same view
        expect(page.get_by_role("tab", name="社区（村）")).to_be_visible(timeout=WAIT)
        expect(page.get_by_role("tab", name="街道（乡镇）")).to_have_count(0, timeout=WAIT)
    finally:
        context.close()
