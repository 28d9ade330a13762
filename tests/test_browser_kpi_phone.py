"""The assessment pages on a phone (390 × 844, a phone's User-Agent): nothing wider than the
screen, the figure cards two a row, no plotly toolbar over the charts; and Streamlit's English
"Press Enter to submit form" never shows under a text box. What the charts' labels say is read
from their plotly JSON in tests/test_kpi.py; here only what needs a browser: layout."""

from __future__ import annotations

import json

import pytest

pytest.register_assert_rewrite("tests.browser_support")  # before its first import

from tests.browser_support import (  # noqa: E402
    ARTIFACTS,
    WAIT,
    expect,
    load,
    new_page,
    staff_page,
    switch,
)

pytest_plugins = ["tests.browser_support"]  # the shared server, browser and context fixtures
pytestmark = pytest.mark.xdist_group("browser")

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                       "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"}

# Elements reaching past the right edge of the screen that nothing clips (a grid scrolling
# inside itself, say, is fine).
TOO_WIDE = """() => {
  const width = window.innerWidth;
  const clipped = (el) => {
    for (let up = el.parentElement; up; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (['auto', 'scroll', 'hidden', 'clip'].includes(style.overflowX) &&
          up.getBoundingClientRect().right <= width + 1) return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.querySelectorAll('[data-testid="stMain"] *')) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 1 && !clipped(el)) {
      out.push(`${el.tagName}.${el.getAttribute('data-testid') || el.className} ${Math.round(box.right)}`);
    }
  }
  return {scroll: document.documentElement.scrollWidth, width, wide: out.slice(0, 10)};
}"""

# The figure cards: their boxes, and how many share each row.
CARDS = """() => [...document.querySelectorAll('[data-testid="stMetric"]')].map((el) => {
  const box = el.getBoundingClientRect();
  return {top: Math.round(box.top + window.scrollY), left: box.left, width: box.width,
          bottom: Math.round(box.bottom + window.scrollY)};
})"""

DRAWN = """(count) => {
  const plots = document.querySelectorAll('.js-plotly-plot');
  return plots.length >= count && [...plots].every((p) => p.querySelector('.main-svg'));
}"""


def test_the_overview_on_a_phone_fits_the_screen_with_cards_two_a_row_and_no_toolbar(
        browser_server, browser_chromium):
    """A district leader opens the overview on a phone: the page is no wider than the phone,
    the cards stand two a row, and the charts carry no toolbar."""
    context, page = staff_page(browser_chromium, browser_server, "district_leader", **PHONE)
    try:
        load(page, f"{browser_server}/kpi_overview")
        expect(page.get_by_role("heading", name="考核总览")).to_be_visible(timeout=WAIT)
        page.wait_for_function(DRAWN, arg=3, timeout=WAIT)
        expect(page.get_by_test_id("stMetric").first).to_be_visible(timeout=WAIT)

        fit = page.evaluate(TOO_WIDE)
        assert fit["scroll"] <= fit["width"] and not fit["wide"], fit

        cards = page.evaluate(CARDS)
        rows: dict[int, list[dict]] = {}
        for card in cards:
            rows.setdefault(card["top"], []).append(card)
        assert len(cards) >= 10
        assert max(len(row) for row in rows.values()) == 2, sorted(rows)
        assert all(card["width"] < 0.6 * fit["width"] for card in cards)
        span = max(c["bottom"] for c in cards) - min(c["top"] for c in cards)

        expect(page.locator(".js-plotly-plot .modebar-btn")).to_have_count(0, timeout=WAIT)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "kpi_overview_phone.png"), full_page=True)
        (ARTIFACTS / "kpi_phone.json").write_text(json.dumps(
            {"cards": len(cards), "card_rows": len(rows), "cards_span_px": span}), encoding="utf-8")
    finally:
        context.close()


KPI_PAGES = ["kpi_overview", "kpi_rankings", "kpi_satisfaction", "kpi_closure", "kpi_flow",
             "kpi_map", "kpi_monitoring", "kpi_report"]


def test_every_assessment_page_on_a_phone_fits_the_screen_without_a_chart_toolbar(
        browser_server, browser_chromium):
    """A district leader opens each assessment page on a phone: nothing reaches past the
    screen's edge and no chart carries plotly's toolbar."""
    context, page = staff_page(browser_chromium, browser_server, "district_leader", **PHONE)
    try:
        for key in KPI_PAGES:
            load(page, f"{browser_server}/{key}")
            expect(page.get_by_test_id("stSelectbox").filter(has_text="考核周期")).to_be_visible(
                timeout=WAIT)
            # The charts the run drew, each once plotly has laid it out (the report has none; a
            # month with nobody ranked has no ranking chart).
            page.wait_for_function(DRAWN, arg=page.locator(".js-plotly-plot").count(),
                                   timeout=WAIT)
            fit = page.evaluate(TOO_WIDE)
            assert fit["scroll"] <= fit["width"] and not fit["wide"], (key, fit)
            assert page.locator(".js-plotly-plot .modebar-btn").count() == 0, key
    finally:
        context.close()


def test_a_focused_text_box_shows_no_english_instructions(browser_server, browser_chromium):
    """Anyone types in the login form's user name: no "Press Enter to submit form" under it."""
    context = browser_chromium.new_context(**PHONE, locale="zh-CN")
    page = new_page(context)
    try:
        load(page, browser_server, runs=2)
        box = page.get_by_label("用户名")
        expect(box).to_be_visible(timeout=WAIT)
        box.click()
        box.type("community01")
        instructions = page.get_by_test_id("InputInstructions")
        expect(instructions.first).to_be_attached(timeout=WAIT)  # Streamlit drew it ...
        expect(instructions.first).to_be_hidden(timeout=WAIT)  # ... and nobody sees it
        expect(page.get_by_text("Press Enter").first).to_be_hidden(timeout=WAIT)
    finally:
        context.close()


def test_an_empty_date_box_shows_no_english_format(browser_server, browser_chromium):
    """The district clerk opens the ledger: its empty date boxes read 年-月-日, not yyyy-mm-dd."""
    context, page = staff_page(browser_chromium, browser_server, "district01")
    try:
        switch(page, lambda: page.goto(f"{browser_server}/ledger"), "the ledger")
        field = page.get_by_test_id("stDateInputField").first
        expect(field).to_be_visible(timeout=WAIT)
        shown = field.evaluate("""f => [...f.querySelectorAll('[data-placeholder="true"]')].map(
            s => [s.dataset.type, getComputedStyle(s).fontSize,
                  getComputedStyle(s, '::after').content])""")
        assert shown[:3] == [["year", "0px", '"年"'], ["month", "0px", '"月"'],
                             ["day", "0px", '"日"']], shown
    finally:
        context.close()
