"""The closed-loop pages through AppTest: report, track, queue, case, with the rules that must
hold on screen (one case per submit, plain text, masking, stale forms)."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from lib.cases.models import AccessLog, Case, CaseEvent
from lib.core.db import read_session
from lib.rewards import eligibility
from tests.factories import PHONE, actor, choose_place, everything, move, new_case, sms_code
from tests.factories import app as _app

HOSTILE = "[点我](javascript:alert(1)) <script>x</script> ![i](http://127.0.0.1:9/i.png)"


def _count(engine) -> int:
    with read_session(engine) as s:
        return s.exec(select(func.count()).select_from(Case)).one()


def _case(engine, **fields) -> Case:
    fields.setdefault("phone", PHONE)
    fields.setdefault("description", "楼道堆放杂物")
    return new_case(engine, **fields)


def _move(engine, username: str, case: Case, action: str, **params) -> Case:
    return move(engine, username, case.id, action, **params)


def _fill_report(at: AppTest, *, description: str, address: str, phone: str) -> None:
    if at.selectbox(key="report_community").value is None:  # nothing is chosen for a resident
        choose_place(at)
    at.text_area[0].input(description)
    inputs = {w.label: w for w in at.text_input}
    inputs["详细地址 *"].input(address)
    inputs["联系电话 *（用于查询和回访，不会公开）"].input(phone)


def test_a_resident_reports_and_gets_one_case_however_often_submit_is_pressed(sqlite_db):
    at = _app().switch_page("pages/report.py").run()
    _fill_report(at, description="消防通道被电动车堵住", address="红星路2号", phone="13812345678")
    submit_key = at.session_state["report_submit_key"]
    at.button(key="FormSubmitter:report_form-提交").click().run()
    assert not at.exception
    code, pin = at.session_state["report_done"]
    assert pin is not None and len(pin) == 6  # every resident's receipt carries a PIN
    assert any(code in m.value for m in at.markdown) and any(pin in m.value for m in at.markdown)
    assert _count(sqlite_db) == 1
    # The same form sent again (a double click or a rerun carries the same key): still one case.
    del at.session_state["report_done"]
    at.session_state["report_submit_key"] = submit_key
    at.run()
    _fill_report(at, description="消防通道被电动车堵住", address="红星路2号", phone="13812345678")
    at.button(key="FormSubmitter:report_form-提交").click().run()
    assert at.session_state["report_done"] == (code, None)
    assert _count(sqlite_db) == 1
    with read_session(sqlite_db) as s:
        case = s.exec(select(Case).where(Case.code == code)).one()
    assert case.source == "resident" and case.state == "reported"


def test_bad_report_input_shows_a_clear_message_and_stores_nothing(sqlite_db):
    at = _app().switch_page("pages/report.py").run()
    _fill_report(at, description="有隐患", address="红星路2号", phone="12345")
    at.button(key="FormSubmitter:report_form-提交").click().run()
    assert [e.value for e in at.error] == ["请填写正确的手机号（11位）或座机号（如 028-12345678）。"]
    _fill_report(at, description="有隐患", address="", phone="13812345678")
    at.button(key="FormSubmitter:report_form-提交").click().run()
    assert [e.value for e in at.error] == ["请填写必填项：详细地址。"]
    inputs = {w.label: w for w in at.text_input}
    inputs["详细地址 *"].input("红星路2号")
    inputs["纬度（可选）"].input("91")
    inputs["经度（可选）"].input("104")
    at.button(key="FormSubmitter:report_form-提交").click().run()
    assert at.error[0].value.startswith("坐标无效")
    # Every missing field is named at once, in Chinese; invisible characters are not text.
    _fill_report(at, description=" \u200b\u200b ", address="", phone="")
    inputs = {w.label: w for w in at.text_input}
    inputs["纬度（可选）"].input("")
    inputs["经度（可选）"].input("")
    at.button(key="FormSubmitter:report_form-提交").click().run()
    assert [e.value for e in at.error] == ["请填写必填项：问题描述、详细地址、联系电话。"]
    assert not at.exception and _count(sqlite_db) == 0


def test_a_report_sent_on_the_public_form_while_logged_in_records_the_account(sqlite_db):
    """An approver fills in the residents' form from her own login: the report is the public
    one in every rule, but it carries her account, so it earns her no reward."""
    at = _app("street_approver").switch_page("pages/report.py").run()
    assert not at.exception
    _fill_report(at, description="楼道电动车充电", address="红星路3号", phone="13812340001")
    at.button(key="FormSubmitter:report_form-提交").click().run()
    assert not at.exception
    code, pin = at.session_state["report_done"]
    with read_session(sqlite_db) as s:
        case = s.exec(select(Case).where(Case.code == code)).one()
        approver = actor(sqlite_db, "street_approver").id
        assert (case.reported_by_id, case.source) == (approver, "resident")
        assert eligibility.staff_identity(s, case) == "staff_account"


def test_tracking_needs_the_reporters_code_and_shows_no_staff_or_personal_data(sqlite_db):
    case = _case(sqlite_db)
    case = _move(sqlite_db, "community01", case, "accept")
    at = _app().switch_page("pages/track.py").run()
    at.text_input[0].input(case.code)
    at.text_input[1].input("5678")  # the phone's last four digits prove nothing
    at.button(key="FormSubmitter:track_lookup-查询").click().run()
    assert [e.value for e in at.error] == [
        "查询不到：请检查查询码，以及查询密码或短信验证码（验证码只能用一次，过期需重新获取）。"]
    at.text_input[1].input(sms_code(sqlite_db, case.code))
    at.button(key="FormSubmitter:track_lookup-查询").click().run()
    shown = everything(at)
    assert "已受理，正在安排处理" in shown
    assert "13812345678" not in shown and "王小二" not in shown and "李社区" not in shown


def test_a_dissatisfied_resident_reopens_the_case_from_the_tracking_page(sqlite_db):
    case = _case(sqlite_db)
    for username, action, params in [("community01", "accept", {}), ("community01", "take", {}),
                                     ("community01", "handle", {"note": "已清理"})]:
        case = _move(sqlite_db, username, case, action, **params)
    at = _app().switch_page("pages/track.py").run()
    at.text_input[0].input(case.code)
    at.text_input[1].input(sms_code(sqlite_db, case.code))
    at.button(key="FormSubmitter:track_lookup-查询").click().run()
    assert at.radio[0].value is None  # nothing is chosen for the resident
    at.radio[0].set_value("dissatisfied")
    at.text_area[0].input("杂物又堆回来了")
    at.text_input(key="track_rate_proof").input(sms_code(sqlite_db, case.code, "rate"))
    at.button(key="FormSubmitter:track_rate-提交评价").click().run()
    assert not at.exception
    with read_session(sqlite_db) as s:
        assert s.get(Case, case.id).state == "in_progress"
    assert "已收到您的意见，案件已重新交办。" in [m.value for m in at.success]


def test_the_queue_shows_a_communitys_new_report_to_it_and_not_to_its_neighbour(sqlite_db):
    case = _case(sqlite_db)
    at = _app("community01").switch_page("pages/queue.py").run()
    assert not at.exception
    assert case.code in at.dataframe[0].value.iloc[:, 1].tolist()
    other = _app("staff_510104001002").switch_page("pages/queue.py").run()
    assert not other.exception and not other.dataframe
    at.text_input(key="queue_text").input("' OR 1=1--").run()
    assert not at.dataframe and "没有符合条件的案件。" in [i.value for i in at.info]


def test_the_case_page_shows_reporter_text_as_text_and_accepts_by_form(sqlite_db):
    case = _case(sqlite_db, description=HOSTILE)
    at = _app("community01")
    at.session_state["case_id"] = case.id
    at.switch_page("pages/case.py").run()
    assert not at.exception
    assert HOSTILE in [t.value for t in at.text]
    assert not any("javascript" in m.value and "\\" not in m.value for m in at.markdown)
    at.button(key="FormSubmitter:case_form_accept-受理").click().run()
    with read_session(sqlite_db) as s:
        assert s.get(Case, case.id).state == "accepted"
        events = s.exec(select(func.count()).select_from(CaseEvent)
                        .where(CaseEvent.case_id == case.id)).one()
    assert events == 2 and f"{case.code}：已受理。" in [m.value for m in at.success]


def test_a_stale_case_form_is_refused_with_a_reload(sqlite_db):
    case = _case(sqlite_db)
    at = _app("community01")
    at.session_state["case_id"] = case.id
    at.switch_page("pages/case.py").run()
    # Meanwhile the street supervises it: same state, new version.
    _move(sqlite_db, "street01", case, "supervise", note="三天内处理")
    at.button(key="FormSubmitter:case_form_accept-受理").click().run()
    assert "此案件已被他人更新，请重新加载后再操作。" in [e.value for e in at.error]
    with read_session(sqlite_db) as s:
        assert s.get(Case, case.id).state == "reported"
        assert s.exec(select(func.count()).select_from(CaseEvent)
                      .where(CaseEvent.case_id == case.id)).one() == 2
    at.button(key="case_reload").click().run()
    at.button(key="FormSubmitter:case_form_accept-受理").click().run()
    with read_session(sqlite_db) as s:
        assert s.get(Case, case.id).state == "accepted"


def test_another_community_cannot_open_the_case(sqlite_db):
    case = _case(sqlite_db)
    at = _app("staff_510104001002")
    at.session_state["case_id"] = case.id
    at.switch_page("pages/case.py").run()
    assert [e.value for e in at.error] == ["找不到该案件，或您无权查看。"]
    assert "楼道堆放杂物" not in everything(at)


def test_phone_is_masked_for_a_street_leader_and_a_restricted_reporter_is_hidden(sqlite_db):
    case = _case(sqlite_db)
    shown = {}
    for username in ("community01", "street_leader"):
        at = _app(username)
        at.session_state["case_id"] = case.id
        shown[username] = everything(at.switch_page("pages/case.py").run())
    assert "13812345678" in shown["community01"]
    assert "138****5678" in shown["street_leader"] and "13812345678" not in shown["street_leader"]

    vice = _case(sqlite_db, category="vice", description="某楼有人聚众赌博，组织者张某",
                 phone="13812340000")
    for username in ("community01", "district01"):
        at = _app(username)
        at.session_state["case_id"] = vice.id
        text = everything(at.switch_page("pages/case.py").run())
        assert "13812340000" not in text and "王小二" not in text
    with read_session(sqlite_db) as s:
        before = s.exec(select(func.count()).select_from(AccessLog)).one()
    at = _app("district_privacy")
    at.session_state["case_id"] = vice.id
    text = everything(at.switch_page("pages/case.py").run())
    assert "13812340000" in text and "张某" in text
    with read_session(sqlite_db) as s:
        assert s.exec(select(func.count()).select_from(AccessLog)).one() > before
