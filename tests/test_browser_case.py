"""The case page in a real phone-size browser: a department's handler opens a dispatched case
that carries the resident's photo and finds the next move on the first screen, under the
order's own sign-for deadline; one tap signs for it and starts the work."""

from __future__ import annotations

import hashlib
import io
import json
import random
import re

import pytest

pytest.register_assert_rewrite("tests.browser_support")  # before its first import

from PIL import Image  # noqa: E402
from sqlmodel import select  # noqa: E402

from lib.cases.models import Attachment, CaseEvent  # noqa: E402
from lib.core.db import get_engine, write_session  # noqa: E402
from tests.browser_support import (  # noqa: E402
    ARTIFACTS,
    WAIT,
    expect,
    load,
    login_cookie,
    new_page,
    seed_case,
    sqlite_db,
    switch,
    wait_until,
)
from tests.factories import POLICE, move, unit_id  # noqa: E402

pytest_plugins = ["tests.browser_support"]
pytestmark = pytest.mark.xdist_group("browser")

PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
SCREEN = {"width": 390, "height": 844}


def _photo(engine, case_id: int) -> None:
    """The resident's photo on the report, as intake stores it (a tall one, as phones take)."""
    rng = random.Random(7)
    image = Image.new("RGB", (1200, 1600))
    image.putdata([(rng.randrange(256), rng.randrange(256), 128) for _ in range(1200 * 1600)])
    out = io.BytesIO()
    image.save(out, "JPEG", quality=70)
    data = out.getvalue()
    with write_session(engine) as s:
        first = s.exec(select(CaseEvent.id).where(CaseEvent.case_id == case_id)
                       .order_by(CaseEvent.seq)).first()
        s.add(Attachment(case_id=case_id, event_id=first, kind="report", mime="image/jpeg",
                         size=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data))


def test_the_handler_signs_for_and_starts_from_the_first_screen_of_a_phone(browser_server,
                                                                          browser_chromium):
    """The police station's handler opens a dispatched case with a photo on a 390×844 phone:
    without scrolling, the order's sign-for deadline and the 签收并开始处置 button are on the
    screen; one tap signs for the order and starts the work (before: 签收 sat below the photo,
    and handling took three submits)."""
    engine = get_engine(browser_server.db_url)
    case = seed_case(browser_server, address="手机路2号",
                     description="小区东门消防通道被私家车长期占用，夜间尤其严重，多次劝离无效")
    _photo(engine, case.id)
    move(engine, "community01", case.id, "accept")
    move(engine, "community01", case.id, "call_up", note="请街道协调")
    move(engine, "street01", case.id, "dispatch", lead_unit_id=unit_id(engine, POLICE))
    db = sqlite_db(browser_server.db_url)

    context = browser_chromium.new_context(viewport=SCREEN, locale="zh-CN", is_mobile=True,
                                           has_touch=True, user_agent=PHONE_UA)
    context.add_cookies([login_cookie(browser_server, "dept_police")])
    page = new_page(context)
    load(page, f"{browser_server}/case?id={case.id}")
    expect(page.get_by_role("heading", name=re.compile(case.code)).first).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("stImage").first).to_be_visible(timeout=WAIT)
    button = page.get_by_test_id("stFormSubmitButton").get_by_role(
        "button", name="签收并开始处置", exact=True)
    expect(button).to_be_visible(timeout=WAIT)
    expect(page.get_by_text(re.compile("签收时限")).first).to_be_visible(timeout=WAIT)

    assert page.evaluate("window.scrollY") == 0
    box = button.bounding_box()
    photo_y = page.get_by_test_id("stImage").first.bounding_box()["y"]
    figures = {"viewport": [SCREEN["width"], SCREEN["height"]], "button_top": round(box["y"]),
               "button_bottom": round(box["y"] + box["height"]), "photo_y": round(photo_y),
               "submits_to_handle_before": 3, "submits_to_handle_after": 2}
    print("handler's first screen:", json.dumps(figures))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "handler_first_screen.json").write_text(json.dumps(figures))
    page.screenshot(path=str(ARTIFACTS / "case_phone_first_screen.png"))
    assert box["y"] >= 0 and box["y"] + box["height"] <= SCREEN["height"]  # on the first screen
    assert box["y"] < photo_y  # above the photo
    assert page.evaluate("document.documentElement.scrollWidth") <= SCREEN["width"] + 1

    switch(page, button.click, "签收并开始处置")
    wait_until(lambda: db.execute('select state from "case" where id=?', (case.id,)).fetchone()[0]
               == "in_progress", "the case is signed for and started")
    expect(page.get_by_text(f"{case.code}：已签收并开始处置", exact=False)).to_be_visible(timeout=WAIT)
    events = [a for (a,) in db.execute(
        "select action from case_event where case_id=? order by seq", (case.id,)).fetchall()]
    assert events[-2:] == ["acknowledge", "start"]
    # The next step is the result, on the first screen as well.
    result = page.get_by_test_id("stExpander").filter(
        has=page.locator("summary").get_by_text("处置完毕", exact=True)).first
    expect(result).to_be_visible(timeout=WAIT)
    assert result.bounding_box()["y"] < SCREEN["height"]
    context.close()
