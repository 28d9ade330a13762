"""The tracking page as a resident uses it: the handler's result shown as typed (never rendered),
the expected completion, a link that fills the code box (never the proof), and 催办 with a code
sent by SMS for it."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from lib.cases import tracking
from lib.cases.models import Case, CaseEvent
from lib.core.clock import china_time
from lib.core.db import read_session
from lib.core.i18n import t
from tests.factories import PHONE, everything, get, move, new_case, open_page, sms_code, unit_id
from tests.factories import app as _app

RESULT = "**已清理**完毕\u202e <script>alert(1)</script> [详情](http://127.0.0.1:9/x) ![i](http://127.0.0.1:9/i.png)"
LOOKUP = "FormSubmitter:track_lookup-查询"


def _look_up(at: AppTest, code: str, proof: str | None = None) -> AppTest:
    at.text_input(key="track_code_box").input(code)
    at.text_input[1].input(proof or sms_code(None, code))
    at.button(key=LOOKUP).click().run()
    assert not at.exception
    return at


def _tracked(code: str) -> AppTest:
    return _look_up(_app().switch_page("pages/track.py").run(), code)


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _completion(at: AppTest) -> list[str]:
    """The expected completion (or the closing time) as the page says it."""
    return [m.value for m in at.markdown if "办结时间**：" in m.value]


def _a_day_ago() -> datetime:
    """A report time after which 催办 is offered (cases.hurry_after_hours, 24)."""
    return datetime.now(timezone.utc) - timedelta(hours=25)


def _handled(engine, note: str = RESULT) -> Case:
    case = new_case(engine, phone=PHONE)
    for action, params in (("accept", {}), ("take", {}), ("handle", {"note": note})):
        case = move(engine, "community01", case.id, action, **params)
    return case


def test_the_handlers_result_shows_as_the_characters_typed(sqlite_db):
    case = _handled(sqlite_db)
    at = _tracked(case.code)
    assert "处置结果" in [m.value.strip("*") for m in at.markdown]
    assert [t.value for t in at.text] == [RESULT.replace("\u202e", "")]  # no direction override
    rendered = " ".join(str(m.value) for kind in ("markdown", "caption", "info", "metric")
                        for m in getattr(at, kind))
    assert "已清理" not in rendered and "script" not in rendered and "127.0.0.1" not in rendered


def test_a_result_sent_back_for_rework_is_not_shown_until_handled_again(sqlite_db):
    case = _handled(sqlite_db, note="第一次处理")
    move(sqlite_db, "community01", case.id, "rework", note="没清干净")
    assert tracking.track(sqlite_db, case.code, sms_code(sqlite_db, case.code)).result is None
    move(sqlite_db, "community01", case.id, "handle", note="第二次处理")
    assert tracking.track(sqlite_db, case.code, sms_code(sqlite_db, case.code)).result == "第二次处理"


def test_a_restricted_case_shows_no_result_and_no_deadline(sqlite_db):
    case = new_case(sqlite_db, category="vice", phone=PHONE, description="3栋501有人聚众赌博")
    move(sqlite_db, "community01", case.id, "accept")
    move(sqlite_db, "community01", case.id, "call_up", note="请街道处理")
    move(sqlite_db, "street01", case.id, "dispatch",
         lead_unit_id=unit_id(sqlite_db, "510104001-police"))
    for action, params in (("acknowledge", {}), ("start", {}),
                           ("handle", {"note": "已抓获赌博人员张三"})):
        move(sqlite_db, "dept_police", case.id, action, **params)
    view = tracking.track(sqlite_db, case.code, sms_code(sqlite_db, case.code))
    assert (view.state, view.result, view.expected, view.expected_at) == ("received", None, None, None)
    at = _tracked(case.code)
    shown = everything(at)
    assert "张三" not in shown and "处置结果" not in shown and "办结时间" not in shown
    assert _metrics(at) == {"办理状态": "已受理，正在办理"}


def test_the_expected_completion_is_to_be_set_then_the_deadline_then_the_closing_time(sqlite_db):
    case = new_case(sqlite_db, phone=PHONE)
    at = _tracked(case.code)
    assert _completion(at) == ["**预计办结时间**：待安排处理后确定"]

    move(sqlite_db, "community01", case.id, "accept")
    move(sqlite_db, "community01", case.id, "take")
    due = get(sqlite_db, case.id).handle_due_at
    at.run()
    assert _completion(at) == [f"**预计办结时间**：{china_time(due)}"]
    assert china_time(due).endswith(" 17:30")  # 7 working days end at the close of the day

    for action in ("handle", "verify", "close"):
        move(sqlite_db, "community01", case.id, action, **({"note": "已清理"} if action == "handle"
                                                           else {}))
    at.run()
    assert _completion(at) == [f"**办结时间**：{china_time(get(sqlite_db, case.id).closed_at)}"]


def test_a_link_with_a_code_fills_the_code_box_and_never_the_proof(sqlite_db):
    case = new_case(sqlite_db, phone=PHONE)
    link = f"{case.code[:4].lower()}-{case.code[4:].lower()}"  # as a notice might print it
    at = open_page(None, "pages/track.py", code=link, proof="123456", pin="123456")
    assert not at.exception
    assert at.text_input(key="track_code_box").value == case.code
    assert at.text_input[1].value == ""
    assert not at.metric and not at.error  # nothing looked up until the resident proves it
    at.text_input[1].input(sms_code(sqlite_db, case.code))
    at.button(key=LOOKUP).click().run()
    assert _metrics(at)["办理状态"] == "已收到，等待社区核实"

    junk = open_page(None, "pages/track.py", code="<script>" + "X" * 80)
    assert not junk.exception and junk.text_input(key="track_code_box").value == ""


def _sent_codes(log) -> list[str]:
    """The one-time codes the log gateway wrote (the demo's SMS), newest last."""
    if not log.exists():
        return []
    texts = [json.loads(line)["text"] for line in log.read_text(encoding="utf-8").splitlines()]
    return [re.search(r"验证码 (\d{6})", t).group(1) for t in texts if "验证码" in t]


def test_the_resident_hurries_from_the_tracking_page_once_a_working_day(sqlite_db, tmp_path,
                                                                       monkeypatch):
    """The resident asks for a code in the 催办 form, reads it off the SMS and hurries."""
    log = tmp_path / "notices.log"
    monkeypatch.setenv("NOTICE_LOG", str(log))
    case = new_case(sqlite_db, phone=PHONE, now=_a_day_ago())
    at = _tracked(case.code)
    assert "办理太慢？可以催办" in [m.value.strip("*") for m in at.markdown]
    next(t for t in at.text_input if t.label == "想说的话（可选）").input("已经三天了")
    before = _sent_codes(log)
    at.button(key="FormSubmitter:track_hurry-发送短信验证码").click().run()
    assert not at.exception
    assert len(_sent_codes(log)) == len(before) + 1
    at.text_input(key="track_hurry_proof").input(_sent_codes(log)[-1])
    at.button(key="FormSubmitter:track_hurry-催办").click().run()
    assert not at.exception
    assert "已催办，办理单位会收到提醒。" in [s.value for s in at.success]
    assert get(sqlite_db, case.id).hurry_count == 1
    with read_session(sqlite_db) as s:
        hurried = s.exec(select(CaseEvent).where(CaseEvent.case_id == case.id,
                                                 CaseEvent.action == "hurry")).all()
    assert [e.note for e in hurried] == ["已经三天了"]
    assert "办理太慢？可以催办" not in [m.value.strip("*") for m in at.markdown]  # once a day


def _events(engine, case_id: int) -> list[str]:
    with read_session(engine) as s:
        return [e.action for e in s.exec(select(CaseEvent).where(CaseEvent.case_id == case_id)
                                         .order_by(CaseEvent.seq))]


def test_a_hurry_sent_from_a_page_drawn_before_another_move_is_refused_as_stale(sqlite_db):
    """The 催办 form keeps the version the resident first saw; a move since then (here the
    community accepts the case) makes it stale, and nothing is recorded."""
    case = new_case(sqlite_db, phone=PHONE, now=_a_day_ago())
    at = _tracked(case.code)
    move(sqlite_db, "community01", case.id, "accept")
    at.text_input(key="track_hurry_proof").input(sms_code(sqlite_db, case.code, "hurry"))
    at.button(key="FormSubmitter:track_hurry-催办").click().run()
    assert not at.exception and not at.success
    assert t("error.stale") in [e.value for e in at.error]
    assert get(sqlite_db, case.id).hurry_count == 0
    assert _events(sqlite_db, case.id) == ["report", "accept"]
    # Reloaded, the form takes the case as it is now; the proof given is held for the visit.
    at.button(key="track_reload").click().run()
    assert not at.error
    at.button(key="FormSubmitter:track_hurry-催办").click().run()
    assert "已催办，办理单位会收到提醒。" in [s.value for s in at.success]
    assert get(sqlite_db, case.id).hurry_count == 1


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_rating_sent_from_a_page_drawn_before_the_check_is_refused_as_stale(sqlite_db, lang):
    """The rating form keeps the version the resident first saw: the community's check since
    then makes it stale, said in the resident's language; no rating is recorded."""
    case = _handled(sqlite_db, note="已清理")
    at = open_page(None, "pages/track.py", **({"lang": lang} if lang != "zh" else {}))
    at.text_input(key="track_code_box").input(case.code)
    at.text_input[1].input(sms_code(sqlite_db, case.code))
    at.button(key=f"FormSubmitter:track_lookup-{t('track.submit', lang)}").click().run()
    move(sqlite_db, "community01", case.id, "verify")
    at.radio[0].set_value("satisfied")
    at.text_input(key="track_rate_proof").input(sms_code(sqlite_db, case.code, "rate"))
    at.button(key=f"FormSubmitter:track_rate-{t('track.rate_submit', lang)}").click().run()
    assert not at.exception and not at.success
    assert [e.value for e in at.error] == [t("error.stale", lang)]
    stored = get(sqlite_db, case.id)
    assert (stored.state, stored.rating) == ("verified", None)
    assert _events(sqlite_db, case.id)[-1] == "verify"
