"""The public pages in a real browser, as a resident without an account uses them: the report
form shows nobody else's case, a phone-less reporter tracks with the PIN alone, and wrong
proofs on the tracking page are throttled per code, even the right code after them."""

from __future__ import annotations

import re
import secrets

import pytest

pytest.register_assert_rewrite("tests.browser_support")  # before its first import

from lib.core.db import get_engine  # noqa: E402
from tests.browser_support import (  # noqa: E402
    ARTIFACTS,
    WAIT,
    expect,
    load,
    local_listener,
    new_page,
    pick,
    seed_case,
    sqlite_db,
    wait_until,
)
from tests.factories import sms_code  # noqa: E402

pytest_plugins = ["tests.browser_support"]  # the shared server, browser and context fixtures
# Meant to keep the browser tests on one worker (one server, one browser); see the README.
pytestmark = pytest.mark.xdist_group("browser")

PHONE = {"width": 390, "height": 844}
COMMUNITY = "春熙路街道 · 红星路社区"  # 510104001001 under street 510104001
SIMILAR = "本社区近30天已有"
SAME_PROBLEM = "您要上报的是否是同一问题？"
NOT_FOUND = "查询不到：请检查查询码，以及查询密码或短信验证码（验证码只能用一次，过期需重新获取）。"
THROTTLED = "查询失败次数过多，请约 60 分钟后再试。"
ANONYMOUS = "匿名上报（不留姓名和电话）"


def _word(prefix: str) -> str:
    """A word no page would show unless it came from the seeded case."""
    return f"{prefix}{secrets.token_hex(4).upper()}"


def _open_report(page, base: str) -> None:
    load(page, base + "/report")
    expect(page.get_by_role("heading", name="隐患上报").first).to_be_visible(timeout=WAIT)
    expect(page.get_by_role("button", name="提交")).to_be_visible(timeout=WAIT)


def _track(page, code: str, proof: str) -> None:
    """Look the case up on the tracking page. Call it once the previous look-up's answer shows:
    the first submit redraws the code box as a new widget (its default becomes the code), and
    the old box stays beside it until that run ends."""
    code_box = page.get_by_label("查询码")
    expect(code_box).to_have_count(1, timeout=WAIT)
    code_box.fill(code)
    page.get_by_label("查询密码 / 短信验证码").fill(proof)
    page.get_by_role("button", name="查询", exact=True).click()


def _failures(db, code: str) -> int:
    """Failed proofs on the code still counted by the throttle."""
    return db.execute("select count(*) from throttle_hit where kind = 'track' and key = ? "
                      "and counted", (f"code:{code}",)).fetchone()[0]


def _uploader_english(page) -> list[str]:
    """Texts with Latin letters that the uploader's drop zone actually draws (width > 0), apart
    from the icon's ligature."""
    return page.get_by_test_id("stFileUploaderDropzone").evaluate("""zone => {
        const out = [];
        const walk = document.createTreeWalker(zone, NodeFilter.SHOW_TEXT);
        for (let node = walk.nextNode(); node; node = walk.nextNode()) {
            if (!/[A-Za-z]/.test(node.textContent)) continue;
            if (node.parentElement.closest('[data-testid="stIconMaterial"]')) continue;
            const range = document.createRange();
            range.selectNodeContents(node);
            const box = range.getBoundingClientRect();
            if (box.width > 0 && box.height > 0) out.push(node.textContent.trim());
        }
        return out;
    }""")


def _after(page, selector: str) -> str:
    return page.get_by_test_id("stFileUploaderDropzone").locator(selector).first.evaluate(
        "el => getComputedStyle(el, '::after').content")


def test_public_form_shows_no_one_elses_case_and_fetches_nothing(browser_server, browser_chromium):
    """Someone reported a fire hazard in 红星路社区 with an address that is a Markdown image and
    a link to a local listener, and someone else reported vice in the same community. A resident
    on a phone opens the report form, picks 社区公共消防 and 红星路社区: they are told similar
    cases are being handled and asked whether theirs is the same problem, but see neither case's
    code, address nor words, no link or image of the listener is drawn and it is never asked for
    anything. They switch to 社区“黄赌毒”: no similar-case hint at all, nothing of the vice case."""
    fire_word, vice_word, vice_place = _word("FIREWORD"), _word("VICEWORD"), _word("VICEPLACE")
    with local_listener() as (port, hits):
        fire = seed_case(browser_server, category="fire",
                         description=f"楼道灭火器过期 {fire_word}",
                         address=f"![p](http://127.0.0.1:{port}/x.png) "
                                 f"[点此核实身份](http://127.0.0.1:{port}/link)")
        vice = seed_case(browser_server, category="vice",
                         description=f"某楼有人聚众赌博 {vice_word}", address=f"红星路{vice_place}号")
        secret_fire = [fire.code, fire_word, "点此核实身份", f"127.0.0.1:{port}"]
        secret_vice = [vice.code, vice_word, vice_place]

        context = browser_chromium.new_context(viewport=PHONE, locale="zh-CN")
        page = new_page(context)
        _open_report(page, browser_server)
        pick(page, "所在社区 *", COMMUNITY)
        pick(page, "问题类别 *", "社区公共消防")
        expect(page.get_by_text(SIMILAR)).to_be_visible(timeout=WAIT)
        choice = page.get_by_role("radiogroup", name=SAME_PROBLEM)
        expect(choice.get_by_text("不是，这是一个新问题", exact=True)).to_be_visible(timeout=WAIT)
        neutral = re.compile(r"^第 \d+ 件：\d{4}-\d\d-\d\d 在春熙路街道上报的“.+”问题$")
        expect(choice.get_by_text(neutral).first).to_be_visible(timeout=WAIT)
        html = page.content()
        assert [s for s in secret_fire + secret_vice if s in html] == []
        expect(page.locator(f"img[src*='127.0.0.1:{port}']")).to_have_count(0)
        expect(page.locator(f"a[href*='127.0.0.1:{port}']")).to_have_count(0)

        # The whole form, phone-wide, for a person to look at; the uploader's texts in Chinese.
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        height = page.get_by_test_id("stMain").evaluate("el => el.scrollHeight")
        page.set_viewport_size({"width": PHONE["width"], "height": max(height, PHONE["height"])})
        page.screenshot(path=str(ARTIFACTS / "report-similar.png"))
        page.set_viewport_size(PHONE)
        assert _after(page, "button p") == '"选择照片"'
        assert _after(page, "[data-testid=stFileUploaderDropzoneInstructions]").startswith(
            '"每张不超过 5 MB')

        pick(page, "问题类别 *", "社区“黄赌毒”")
        # The checkbox sits below the hint in the same run: once it shows, a hint would too.
        expect(page.get_by_text(ANONYMOUS)).to_be_visible(timeout=WAIT)
        expect(page.get_by_text(SIMILAR)).to_have_count(0, timeout=WAIT)
        expect(page.get_by_text(SAME_PROBLEM)).to_have_count(0)
        expect(page.get_by_role("radiogroup")).to_have_count(0)
        html = page.content()
        assert [s for s in secret_fire + secret_vice if s in html] == []
        context.close()
    assert hits == []


def test_resident_without_phone_tracks_with_the_pin_only(browser_server, browser_chromium):
    """A resident reports a dog problem anonymously (no name, no phone) on a phone and is given a
    tracking code and a 6-digit PIN. On the tracking page the code with an empty proof box finds
    nothing; the code with the PIN shows the case as received."""
    db = sqlite_db(browser_server.db_url)
    context = browser_chromium.new_context(viewport=PHONE, locale="zh-CN")
    page = new_page(context)
    _open_report(page, browser_server)
    pick(page, "所在社区 *", COMMUNITY)
    pick(page, "问题类别 *", "不文明养犬")
    page.get_by_text(ANONYMOUS).click()
    page.get_by_label("问题描述 *").fill("小区花园里有大型犬不拴绳，追咬老人")
    page.get_by_label("详细地址 *").fill("红星路一段35号院花园")
    page.get_by_role("button", name="提交").click()
    expect(page.get_by_text("已收到，谢谢！")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("查询密码只显示这一次")).to_be_visible(timeout=WAIT)
    text = page.inner_text("body")
    code = re.search(r"查询码: ?([A-Z0-9]{10})\b", text).group(1)
    pin = re.search(r"查询密码: ?(\d{6})\b", text).group(1)
    row = db.execute('select c.reporter_phone, c.pin_hash is not null, k.key from "case" c '
                     "join category k on k.id = c.category_id where c.code=?", (code,)).fetchone()
    assert row == (None, 1, "dogs")

    load(page, browser_server + "/track")
    expect(page.get_by_role("heading", name="进度查询").first).to_be_visible(timeout=WAIT)
    _track(page, code, "")
    wait_until(lambda: _failures(db, code) == 1, "the empty proof is counted as a failure")
    expect(page.get_by_text(NOT_FOUND)).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("stMetric")).to_have_count(0)

    _track(page, code, pin)
    expect(page.get_by_test_id("stMetricValue")).to_have_text("已收到，等待社区核实", timeout=WAIT)
    expect(page.get_by_text(NOT_FOUND)).to_have_count(0)
    assert _failures(db, code) == 1
    context.close()
    db.close()


def test_wrong_proofs_are_throttled_per_code(browser_server, browser_context):
    """Someone who has a resident's tracking code and the masked phone a staff page shows tries
    its digits: five wrong guesses each find nothing, and after them even the reporter's own
    code sent by SMS is refused with "try again later" and shows no status."""
    db = sqlite_db(browser_server.db_url)
    case = seed_case(browser_server, category="fire", phone="13800004321",
                     description="消防通道被电动车堵住", address="红星路一段12号")
    page = new_page(browser_context)
    load(page, browser_server + "/track")
    expect(page.get_by_role("heading", name="进度查询").first).to_be_visible(timeout=WAIT)
    for tried, guess in enumerate(("4321", "004321", "138000", "9999", "5678"), start=1):
        _track(page, case.code, guess)
        wait_until(lambda n=tried: _failures(db, case.code) == n, f"wrong proof {tried} is counted")
        expect(page.get_by_text(NOT_FOUND)).to_be_visible(timeout=WAIT)
        expect(page.get_by_test_id("stMetric")).to_have_count(0)

    _track(page, case.code, sms_code(get_engine(browser_server.db_url), case.code))
    expect(page.get_by_text(THROTTLED)).to_be_visible(timeout=WAIT)
    expect(page.get_by_text(NOT_FOUND)).to_have_count(0)
    expect(page.get_by_test_id("stMetric")).to_have_count(0)
    expect(page.get_by_text(case.code)).to_have_count(0)
    assert _failures(db, case.code) == 5
    db.close()


def test_uploader_draws_no_english_text(browser_server, browser_context):
    """A resident opens the report form in Chinese: the photo uploader says 选择照片 and the
    limits in Chinese, and draws none of Streamlit's English texts beside them."""
    page = new_page(browser_context)
    _open_report(page, browser_server)
    expect(page.get_by_test_id("stFileUploaderDropzone")).to_be_visible(timeout=WAIT)
    assert _after(page, "button p") == '"选择照片"'
    assert _uploader_english(page) == []
