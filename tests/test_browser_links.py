"""Links in a real browser: a deep link survives the login and a reload, in its language."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

pytest.register_assert_rewrite("tests.browser_support")  # before its first import

from lib.core.i18n import t  # noqa: E402
from tests.browser_support import (  # noqa: E402
    PASSWORD,
    WAIT,
    expect,
    load,
    new_page,
    seed_case,
    staff_page,
    switch,
    wait_for_cookie,
)

pytest_plugins = ["tests.browser_support"]  # the shared server, browser and context fixtures
# Meant to keep the browser tests on one worker (one server, one browser); see the README.
pytestmark = pytest.mark.xdist_group("browser")


def _address(page) -> tuple[str, dict[str, list[str]]]:
    url = urlsplit(page.url)
    return url.path, parse_qs(url.query)


def test_a_deep_linked_case_opens_after_the_login_in_english_and_stays_so(browser_server,
                                                                          browser_context):
    """Someone opens an English link to a case without being logged in, follows "Go to login",
    logs in as the community clerk and lands on that case, in English; a reload keeps both."""
    case = seed_case(browser_server)
    page = new_page(browser_context)
    load(page, f"{browser_server}/case?id={case.id}&lang=en")
    expect(page.get_by_text(t("guard.login_required", "en"))).to_be_visible(timeout=WAIT)

    # The home page with the login form runs twice (its cookie component reports back).
    switch(page, lambda: page.get_by_role("link", name=t("guard.go_login", "en")).click(),
           "the login link", runs=2)
    page.get_by_label(t("login.username", "en")).fill("community01")
    page.get_by_label(t("login.password", "en"), exact=True).fill(PASSWORD)
    page.get_by_role("button", name=t("login.submit", "en")).click()

    title = page.get_by_role("heading", name=case.code).first
    expect(title).to_be_visible(timeout=WAIT)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("button", name=t("sidebar.logout", "en"))).to_be_visible(timeout=WAIT)
    assert _address(page) == ("/case", {"id": [str(case.id)], "lang": ["en"]})

    wait_for_cookie(browser_context)
    switch(page, page.reload, "the reload")
    expect(title).to_be_visible(timeout=WAIT)
    expect(sidebar.get_by_role("button", name=t("sidebar.logout", "en"))).to_be_visible(timeout=WAIT)
    expect(page.get_by_text(t("guard.login_required", "en"))).to_have_count(0)
    assert _address(page) == ("/case", {"id": [str(case.id)], "lang": ["en"]})
    page.close()


def test_a_tap_anywhere_on_a_home_tile_opens_its_page(browser_server, browser_chromium):
    """The clerk, logged in, taps the figure of the 辖区在办 tile (not its small link under it):
    the ledger opens."""
    context, page = staff_page(browser_chromium, browser_server, "community01")
    tile = page.get_by_test_id("stVerticalBlock").filter(
        has=page.get_by_test_id("stMetricLabel").get_by_text(t("home.open_in_scope"), exact=True)
    ).filter(has=page.get_by_test_id("stPageLink")).last
    expect(tile).to_be_visible(timeout=WAIT)
    # A tap where the figure is drawn (the link's cover takes it; the figure itself is no link).
    figure = tile.get_by_test_id("stMetricValue")
    expect(figure).to_have_count(1, timeout=WAIT)  # a stale copy beside it may linger a moment
    box = figure.bounding_box()
    switch(page, lambda: page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2),
           "the tap on the tile")
    expect(page.get_by_role("heading", name=t("page.ledger")).first).to_be_visible(timeout=WAIT)
    assert _address(page)[0] == "/ledger"
    context.close()
