"""In a real browser: a batch acts only on the cases the clerk ticked, however the rows moved
since; a case photo is drawn inline, so no /media URL hands it to someone without a login."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest

pytest.register_assert_rewrite("tests.browser_support")  # before its first import

from lib.cases.machine import act_on  # noqa: E402
from lib.core.db import get_engine  # noqa: E402
from tests.browser_support import (  # noqa: E402
    WAIT,
    click_grid,
    expect,
    load,
    seed_case,
    sqlite_db,
    staff_page,
    switch,
    wait_until,
)
from tests.factories import actor, move  # noqa: E402
from tests.test_case_photos import photo  # noqa: E402

pytest_plugins = ["tests.browser_support"]
pytestmark = pytest.mark.xdist_group("browser")

ROW = 35  # px: the grid's header and each row


def _tick(page, row: int, what: str) -> None:
    """Tick the box of a row (0: the first under the header)."""
    click_grid(page, 20, ROW * (row + 1) + ROW / 2, what)


def test_a_batch_acts_only_on_the_rows_ticked_even_after_the_rows_moved(browser_server,
                                                                       browser_chromium):
    """A clerk accepts rows 3 and 4; with their new, later deadlines they move to the bottom and
    two other cases take their rows. Ticking one more row offers that one case, and only it is
    accepted."""
    cases = [seed_case(browser_server, address=f"勾选路{i}号") for i in range(6)]
    db = sqlite_db(browser_server.db_url)

    def states() -> list[str]:
        return [db.execute('select state from "case" where id=?', (c.id,)).fetchone()[0]
                for c in cases]

    context, page = staff_page(browser_chromium, browser_server, "community01")
    load(page, browser_server + "/queue?q=勾选路")  # by deadline: as seeded
    expect(page.get_by_text("显示 6 件，共 6 件")).to_be_visible(timeout=WAIT)

    _tick(page, 2, "ticking row 3")
    _tick(page, 3, "ticking row 4")
    button = page.get_by_role("button", name="批量受理（2 件）")
    expect(button).to_be_visible(timeout=WAIT)
    switch(page, button.click, "the batch accept")
    expect(page.get_by_text("已处理 2 件")).to_be_visible(timeout=WAIT)
    wait_until(lambda: states() == ["reported"] * 2 + ["accepted"] * 2 + ["reported"] * 2,
               "rows 3 and 4 are accepted")
    # Nothing stays ticked: the batch bar is gone until the clerk ticks again.
    expect(page.get_by_text(re.compile("已勾选"))).to_have_count(0)

    _tick(page, 0, "ticking the first row")
    expect(page.get_by_text("批量处理（已勾选 1 件）")).to_be_visible(timeout=WAIT)
    button = page.get_by_role("button", name="批量受理（1 件）")
    expect(button).to_be_visible(timeout=WAIT)
    switch(page, button.click, "the second batch accept")
    wait_until(lambda: states() == ["accepted", "reported", "accepted", "accepted", "reported",
                                    "reported"], "only the ticked case is accepted")
    context.close()


def test_a_case_photo_is_inline_and_no_media_url_serves_it_without_a_login(browser_server,
                                                                          browser_chromium):
    """The handler opens a restricted case with a result photo; whatever address the page's
    images have, fetching it without the page's session returns no photo."""
    engine = get_engine(browser_server.db_url)
    case = seed_case(browser_server, category="vice", address="勾选路9号3栋501")
    move(engine, "community01", case.id, "accept")
    taken = move(engine, "community01", case.id, "take")
    act_on(actor(engine, "community01"), case.id, "handle", version=taken.version,
           files=[("result.jpg", photo())], note="已处置", engine=engine)

    context, page = staff_page(browser_chromium, browser_server, "community01")
    load(page, f"{browser_server}/case?id={case.id}")
    image = page.get_by_test_id("stImage").locator("img").first
    expect(image).to_be_visible(timeout=WAIT)
    sources = page.get_by_test_id("stImage").locator("img").evaluate_all(
        "images => images.map(i => i.getAttribute('src'))")
    assert sources
    for source in sources:
        if source.startswith("data:"):
            continue
        url = source if source.startswith("http") else browser_server + "/" + source.lstrip("/")
        try:  # a plain request: no cookie, no websocket session
            with urllib.request.urlopen(url, timeout=5) as resp:
                status = resp.status
        except urllib.error.HTTPError as err:
            status = err.code
        assert status != 200, f"{url} serves the photo to anyone holding the address"
    assert all(s.startswith("data:image/jpeg;base64,") for s in sources), sources
    context.close()
