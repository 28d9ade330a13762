"""Privacy and the public pages (security.md, Access; issue: nothing restricted leaks, no
stranger acts on a case, no input crashes a page). Each test names what must be left out as
well as what must be shown, in lib on SQLite and PostgreSQL and on the pages through AppTest.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func
from sqlmodel import select

from lib.cases import deadlines, intake, ledger, photos, queue, tracking
from lib.cases.detail import case_detail
from lib.cases.intake import Report, similar_open_cases, submit
from lib.cases.machine import UNREACHABLE, act
from lib.cases.models import AccessLog, Case, CaseEvent
from lib.cases.queue import Filters, queue_rows, tab_counts
from lib.cases.tracking import track
from lib.core import settings
from lib.core.db import read_session, write_session
from lib.core.errors import NotFound, PermissionDenied, Throttled, ValidationFailed
from lib.core.i18n import name, t
from lib.core.models import ThrottleHit
from lib.core.workcal import CHINA_TZ
from tests.factories import (
    COMMUNITY,
    NEIGHBOUR,
    actor,
    category_id,
    choose_place,
    everything,
    get,
    move,
    new_case,
    open_page,
    sms_code,
    unit_id,
)

SECRET_NOTE = "嫌疑人张某某，电话13955556666"


def _report(db, *, category: str = "fire", phone: str | None = "13811112222",
            anonymous: bool = False, client: str = "198.51.100.1", add_to: int | None = None,
            files: list | None = None, submit_key: str | None = None, **fields) -> intake.Receipt:
    fields.setdefault("description", "楼道里堆满纸箱")
    fields.setdefault("address", "红星路5号")
    return submit(db, actor=None, submit_key=submit_key or uuid.uuid4().hex, client_address=client,
                  add_to=add_to, report=Report(
                      category_id=category_id(db, category), community_id=unit_id(db, COMMUNITY),
                      reporter_phone=phone, anonymous=anonymous, files=files or [], **fields))


def _stored(db) -> tuple[int, int]:
    with read_session(db) as s:
        return (s.exec(select(func.count()).select_from(Case)).one(),
                s.exec(select(func.count()).select_from(CaseEvent)).one())


def _logs(db, case_id: int) -> list[tuple[str, str]]:
    with read_session(db) as s:
        from lib.org.models import User

        return [(u, w) for u, w in s.exec(
            select(User.username, AccessLog.what).join(User, User.id == AccessLog.user_id)
            .where(AccessLog.case_id == case_id).order_by(AccessLog.id)).all()]


# ---------------------------------------------------------------- 1, 2: the public form's hint


def test_the_public_hint_names_no_code_address_or_words_and_never_a_restricted_case(db):
    fire = new_case(db, description="独特词甲乙", address="光华西路128号小区南门")
    vice = new_case(db, category="vice", address="红星路9号3栋501")
    special = new_case(db, category="special_populations", address="红星路7号")
    with read_session(db) as s:
        found = similar_open_cases(s, category_id=fire.category_id, community_id=fire.community_id)
        assert [f.ref for f in found] == [fire.id]
        # What the form may draw: category, problem, street, date. No code, address or text.
        assert set(vars(found[0])) == {"ref", "category_id", "subcategory_id", "street_id",
                                       "reported_on"}
        assert found[0].street_id == fire.street_id
        for restricted in (vice, special):
            assert similar_open_cases(s, category_id=restricted.category_id,
                                      community_id=restricted.community_id) == []


def test_a_reporter_may_join_only_a_case_the_form_offered(db):
    fire = new_case(db)
    vice = new_case(db, category="vice")
    elsewhere = new_case(db, community=NEIGHBOUR)
    before = _stored(db)
    for target, category in ((vice.id, "vice"), (elsewhere.id, "fire"), (10 ** 20, "fire"),
                             (vice.id, "fire")):
        with pytest.raises((ValidationFailed, NotFound)):
            _report(db, category=category, add_to=target)
    assert _stored(db) == before
    joined = _report(db, add_to=fire.id).case
    assert (joined.state, get(db, joined.id).merged_into_id) == ("merged", fire.id)


def test_the_public_report_page_shows_no_one_elses_case(sqlite_db):
    fire = new_case(sqlite_db, description="独特词丙丁",
                    address="![p](http://127.0.0.1:9/x.png) [点此核实身份](http://127.0.0.1:9/l)")
    vice = new_case(sqlite_db, category="vice", description="3栋501三楼暗室赌局",
                    address="红星路9号3栋501")
    at = choose_place(open_page(None, "pages/report.py"))
    shown = everything(at)
    assert "本社区近30天已有 1 件同类问题正在办理" in shown  # the hint itself is wanted
    for secret in (fire.code, "独特词丙丁", "127.0.0.1", "点此核实身份"):
        assert secret not in shown
    box = at.selectbox(key="report_category")
    box.select_index([o for o in box.options].index("社区“黄赌毒”")).run()
    shown = everything(at)
    assert "同类问题" not in shown
    for secret in (vice.code, "红星路9号3栋501", "三楼暗室赌局"):
        assert secret not in shown


def test_staff_see_similar_cases_with_code_and_the_address_escaped(sqlite_db):
    fire = new_case(sqlite_db, address="![p](http://127.0.0.1:9/x.png) 红星路1号")
    vice = new_case(sqlite_db, category="vice", address="红星路9号3栋501")
    at = open_page("grid01", "pages/staff_report.py")
    options = [str(o) for radio in at.radio for o in radio.options]
    assert any(fire.code in o for o in options)
    labelled = next(o for o in options if fire.code in o)
    assert "\\!\\[p\\]\\(http\\:" in labelled and "![p](" not in labelled
    box = at.selectbox(key="staff_report_category")
    box.select_index(list(box.options).index("社区“黄赌毒”")).run()
    # The community's own staff handle a restricted case, so they may see it is there.
    assert any(vice.code in str(o) for radio in at.radio for o in radio.options)
    # A leader of the district reads no restricted content: no such hint for them.
    with read_session(sqlite_db) as s:
        assert intake.find_duplicates(s, actor(sqlite_db, "inspector01"), category_id=vice.category_id,
                                     community_id=vice.community_id) == []


# ---------------------------------------------------------------- 3: tracking needs a secret


def test_a_case_without_a_phone_gets_a_pin_and_nothing_else_opens_it(db):
    receipt = _report(db, category="dogs", phone=None, anonymous=True)
    assert receipt.pin is not None and len(receipt.pin) == 6 and receipt.pin.isdigit()
    stored = get(db, receipt.case.id)
    assert stored.pin_hash and receipt.pin not in stored.pin_hash
    code = receipt.case.code
    for wrong in ("", None, receipt.pin[:4], "\x00"):  # fewer than the per-code throttle
        with pytest.raises(NotFound):
            track(db, code, wrong, client_address=f"wrong-{wrong!r}")
    assert track(db, code, receipt.pin).code == code
    # A case from before PINs, with no phone: nobody can prove it is theirs.
    legacy = new_case(db, category="dogs", phone=None, name=None, anonymous=True)
    with pytest.raises(NotFound):
        track(db, legacy.code, "")


def test_a_wrong_code_and_a_wrong_proof_get_the_same_answer(db):
    case = new_case(db, phone="13812345678")
    answers = []
    for code, proof in ((case.code, "000000"), ("NOSUCHCODE", "123456"), ("", "123456"),
                        (case.code, "5678")):
        with pytest.raises(NotFound) as err:
            track(db, code, proof, client_address=f"c-{code}-{proof}")
        answers.append((err.value.key, err.value.params))
    assert len(set(map(repr, answers))) == 1


def test_failed_proofs_are_throttled_per_code_then_decay(db):
    """Five failures in an hour on one code, then even the right proof waits for the hour."""
    assert settings.get_int(None, "tracking.failures_per_code") == 5
    case = new_case(db, phone="13812345678")
    now = datetime.now(timezone.utc)
    right = sms_code(db, case.code, now=now)
    for i in range(5):
        with pytest.raises(NotFound):
            track(db, case.code, f"{i:06d}", client_address=f"10.0.0.{i}", now=now)
    with pytest.raises(Throttled) as err:
        track(db, case.code, right, client_address="10.0.1.1", now=now)
    assert err.value.key == "error.track_throttled"
    # A code that does not exist is throttled the same way: the throttle reveals nothing.
    for i in range(5):
        with pytest.raises(NotFound):
            track(db, "ABCDEFGHJK", "123456", client_address=f"10.0.2.{i}", now=now)
    with pytest.raises(Throttled):
        track(db, "ABCDEFGHJK", "123456", client_address="10.0.3.1", now=now)
    later = now + tracking.TRACK_WINDOW + timedelta(seconds=1)
    assert track(db, case.code, sms_code(db, case.code, now=later), client_address="10.0.1.1",
                 now=later).code == case.code


def test_failed_proofs_are_throttled_per_address(db):
    """Twenty failures from one address in an hour, whatever the codes, stop that address."""
    assert settings.get_int(None, "tracking.failures_per_address") == 20
    case = new_case(db, phone="13812345678")
    right = sms_code(db, case.code)
    for i in range(20):
        with pytest.raises(NotFound):
            track(db, f"GUESS{i:05d}", "123456", client_address="192.0.2.99")
    with pytest.raises(Throttled):
        track(db, case.code, right, client_address="192.0.2.99")
    assert track(db, case.code, right, client_address="192.0.2.100").code == case.code


def test_rating_asks_for_the_proof_again(db):
    receipt = _report(db, category="dogs", phone=None, anonymous=True)
    case = receipt.case
    for action, params in (("accept", {}), ("take", {}), ("handle", {"note": "已劝导"})):
        case = move(db, "community01", case.id, action, **params)
    view = track(db, case.code, receipt.pin)
    assert view.can_rate
    for proof in ("", None, "000000" if receipt.pin != "000000" else "111111"):
        with pytest.raises(NotFound):
            tracking.rate(db, code=case.code, proof=proof, rating="dissatisfied", reason="狗还在",
                       version=view.version, client_address=f"r-{proof!r}")
    assert get(db, case.id).state == "handled"
    reopened = tracking.rate(db, code=case.code, proof=receipt.pin, rating="dissatisfied",
                          reason="狗还在", version=view.version)
    assert reopened.state == "in_progress"


# ---------------------------------------------------------------- 4, 5: search, notes, logs


def _restricted_case_called_up(db) -> Case:
    case = new_case(db, category="vice", description="3栋501暗号独特词有人聚众赌博",
                    address="红星路9号3栋501")
    move(db, "community01", case.id, "accept")
    return move(db, "community01", case.id, "call_up", note=SECRET_NOTE)


def test_search_runs_only_over_what_the_user_may_read(db):
    case = _restricted_case_called_up(db)
    plain = new_case(db, description="普通案件独特词")
    label = lambda key: t(key, "zh")  # noqa: E731

    def ledger_codes(username: str, text: str) -> set[str]:
        rows, _ = ledger.page(actor(db, username), Filters(text=text), offset=0, limit=50,
                              lang_name=lambda r: name(r, "zh"), label=label, engine=db)
        return {r["code"] for r in rows}

    for username in ("district_leader", "inspector01", "street_leader", "community_leader"):
        assert ledger_codes(username, "暗号独特词") == set(), username
        assert ledger_codes(username, "红星路9号") == set(), username
        assert ledger_codes(username, case.code) == {case.code}  # its record is theirs to see
        assert ledger_codes(username, "普通案件独特词") == {plain.code}
    for username in ("community01", "street01", "district_privacy"):
        assert ledger_codes(username, "暗号独特词") == {case.code}, username
    # The ledger row itself withholds the address and the description from a leader.
    rows, _ = ledger.page(actor(db, "district_leader"), Filters(text=case.code), offset=0, limit=5,
                          lang_name=lambda r: name(r, "zh"), label=label, engine=db)
    assert (rows[0]["address"], rows[0]["description"]) == ("内容保密", t("case.description_hidden"))

    # The queue: overdue cases in the district's area, searched by a district clerk.
    with write_session(db) as s:
        deadlines.mark_overdue(s, datetime.now(timezone.utc) + timedelta(days=30))
    with read_session(db) as s:
        clerk = actor(db, "district01")
        rows, _ = queue_rows(s, clerk, "overdue", Filters(text="暗号独特词"))
        assert rows == []
        rows, _ = queue_rows(s, clerk, "overdue", Filters(text=case.code))
        assert [r.code for r in rows] == [case.code] and rows[0].address is None


def test_notes_on_a_restricted_case_reach_only_those_who_read_it_and_each_read_is_logged(db):
    case = _restricted_case_called_up(db)
    for username in ("community_leader", "inspector01", "street_leader", "district01",
                     "district_leader"):
        detail = case_detail(actor(db, username), case.id, engine=db)
        assert not detail.content.readable and detail.content.address is None
        assert all(e.note is None for e in detail.events), username
        assert any(e.note_hidden for e in detail.events)
        assert SECRET_NOTE not in repr(detail.events) and "3栋501" not in repr(detail.content)
    assert _logs(db, case.id) == []
    for username in ("street01", "district_privacy"):
        detail = case_detail(actor(db, username), case.id, engine=db)
        assert detail.content.readable and SECRET_NOTE in [e.note for e in detail.events]
    assert _logs(db, case.id) == [("street01", "content"), ("district_privacy", "content"),
                                  ("district_privacy", "reporter")]


def test_the_case_page_sends_no_restricted_note_to_a_leader(sqlite_db):
    case = _restricted_case_called_up(sqlite_db)
    leader = open_page("street_leader", "pages/case.py", id=str(case.id))
    shown = everything(leader)
    assert case.code in shown and "说明保密" in shown
    for secret in (SECRET_NOTE, "13955556666", "红星路9号3栋501", "暗号独特词"):
        assert secret not in shown
    privacy = open_page("district_privacy", "pages/case.py", id=str(case.id))
    assert SECRET_NOTE in everything(privacy)


# ---------------------------------------------------------------- 6: lib checks role, not only area


@pytest.mark.parametrize("username", ["admin", "street_approver", "district_approver"])
def test_reads_of_cases_refuse_roles_without_case_work(db, username):
    case = new_case(db)
    who = actor(db, username)
    with pytest.raises(PermissionDenied):
        case_detail(who, case.id, engine=db)
    with pytest.raises(PermissionDenied):
        ledger.page(who, Filters(), offset=0, limit=5, lang_name=lambda r: name(r, "zh"),
                    label=lambda k: k, engine=db)
    with read_session(db) as s:
        with pytest.raises(PermissionDenied):
            queue_rows(s, who, "overdue")
        with pytest.raises(PermissionDenied):
            intake.find_duplicates(s, who, category_id=case.category_id,
                                  community_id=case.community_id)
        assert tab_counts(s, who) == [] and queue.waiting_counts(s, who) == []


def test_a_leader_reads_but_has_no_queue(db):
    case = new_case(db)
    leader = actor(db, "community_leader")
    assert case_detail(leader, case.id, engine=db).content.readable
    with read_session(db) as s, pytest.raises(PermissionDenied):
        queue_rows(s, leader, "overdue")


# ---------------------------------------------------------------- 9: photos after the limits


def test_photos_are_decoded_only_after_the_rate_limit_and_the_double_submit_check(db, monkeypatch):
    import io

    from PIL import Image

    decoded: list[int] = []
    real = photos.check_photos

    def counting(files, **limits):
        decoded.append(len(files))
        return real(files, **limits)

    monkeypatch.setattr(photos, "check_photos", counting)
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(out, format="JPEG")
    files = [("p.jpg", out.getvalue())]
    per_phone = 5
    for i in range(per_phone):
        _report(db, phone="13822223333", client=f"203.0.113.{i}")
    with pytest.raises(Throttled):
        _report(db, phone="13822223333", client="203.0.113.50", files=files)
    assert decoded == []
    key = uuid.uuid4().hex
    first = _report(db, phone="13822224444", client="203.0.113.60", files=files, submit_key=key)
    assert decoded == [1]
    again = _report(db, phone="13822224444", client="203.0.113.60", files=files, submit_key=key)
    assert again.case.id == first.case.id and decoded == [1]
    # A refused photo still counts against the rate limit: no free decoding.
    with read_session(db) as s:
        attempts = s.exec(select(func.count()).select_from(ThrottleHit).where(
            ThrottleHit.kind == "intake", ThrottleHit.key.startswith("addr:"))).one()
    with pytest.raises(ValidationFailed):
        _report(db, phone="13822225555", client="203.0.113.70", files=[("x.jpg", b"not an image")])
    with read_session(db) as s:
        assert s.exec(select(func.count()).select_from(ThrottleHit).where(
            ThrottleHit.kind == "intake", ThrottleHit.key.startswith("addr:"))).one() == attempts + 1


# ---------------------------------------------------------------- 10: input that crashed pages


@pytest.mark.parametrize("bad_id", [10 ** 20, "100000000000000000000", -1, 0, "abc", "1e3", True,
                                    None, "١٢"])
def test_an_impossible_case_id_is_not_found(db, bad_id):
    with pytest.raises(NotFound):
        case_detail(actor(db, "community01"), bad_id, engine=db)
    with write_session(db) as s, pytest.raises(NotFound):
        act(s, actor(db, "community01"), bad_id, "accept", version=1)


@pytest.mark.parametrize("field", ["description", "address", "reporter_name"])
def test_a_nul_byte_or_control_character_is_refused_and_nothing_stored(db, field):
    before = _stored(db)
    for bad in ("红星路\x00号", "有\x07铃声", "\x1b[31m红字"):
        with pytest.raises(ValidationFailed) as err:
            _report(db, **{field: bad})
        assert err.value.key == "error.text_bad_chars"
        assert err.value.params["field"] == {"reporter_name": "name"}.get(field, field)
    assert _stored(db) == before


def test_invisible_only_text_counts_as_missing(db):
    with pytest.raises(ValidationFailed) as err:
        _report(db, description="\u200b\u200c\u200d\ufeff\u3000 \u2060", address="\u202e")
    assert (err.value.key, err.value.params) == ("error.fields_required",
                                                 {"fields": ["description", "address"]})


def test_nul_bytes_elsewhere_are_clear_refusals(db):
    case = new_case(db)
    with pytest.raises(NotFound):
        track(db, case.code + "\x00", "123456")
    with read_session(db) as s:
        rows, _ = queue_rows(s, actor(db, "community01"), "triage", Filters(text="红星\x00路1"))
        assert [r.code for r in rows] == [case.code]  # a control character is dropped, not sent
    from lib.org import auth

    with pytest.raises(ValidationFailed):
        auth.login(db, "adm\x00in", "whatever-pass", "10.1.1.1")
    with write_session(db) as s, pytest.raises(ValidationFailed) as err:
        act(s, actor(db, "community01"), case.id, "reject", version=case.version, note="无\x00效")
    assert err.value.key == "error.text_bad_chars"


def test_the_case_page_answers_an_impossible_id_with_a_message(sqlite_db):
    at = open_page("community01", "pages/case.py", id="100000000000000000000")
    assert not at.exception
    assert [e.value for e in at.error] == ["找不到该案件，或您无权查看。"]


def test_an_unexpected_error_shows_a_friendly_message_and_no_traceback(sqlite_db, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("secret internals of the failure")

    monkeypatch.setattr(queue, "view", broken)
    at = open_page("community01", "pages/queue.py")
    assert not at.exception
    assert [e.value for e in at.error] == [t("error.unexpected", "zh")]
    assert "secret internals" not in everything(at)


# ---------------------------------------------------------------- 11: words and dates


def _at_one_thirty_china() -> datetime:
    """Today (or yesterday) at 01:30 China time, which is the day before in UTC."""
    china_now = datetime.now(CHINA_TZ)
    moment = china_now.replace(hour=1, minute=30, second=0, microsecond=0)
    if moment > china_now:
        moment -= timedelta(days=1)
    return moment


def test_dates_shown_to_users_are_china_time(sqlite_db):
    moment = _at_one_thirty_china()
    assert moment.astimezone(timezone.utc).date() != moment.date()
    case = new_case(sqlite_db, phone="13812345678", now=moment.astimezone(timezone.utc))
    with read_session(sqlite_db) as s:
        found = similar_open_cases(s, category_id=case.category_id, community_id=case.community_id)
    assert found[0].reported_on == moment.date()
    public = choose_place(open_page(None, "pages/report.py"))
    assert any(moment.date().isoformat() in str(o) for r in public.radio for o in r.options)
    staff = open_page("grid01", "pages/staff_report.py")
    assert any(moment.date().isoformat() in str(o) and case.code in str(o)
               for r in staff.radio for o in r.options)
    tracked = open_page(None, "pages/track.py")
    tracked.text_input[0].input(case.code)
    tracked.text_input[1].input(sms_code(sqlite_db, case.code))
    tracked.button(key="FormSubmitter:track_lookup-查询").click().run()
    assert f"上报时间：{moment.strftime('%Y-%m-%d %H:%M')}" in [c.value for c in tracked.caption]


def test_the_upload_limits_said_are_the_limits_enforced():
    import tomllib
    from pathlib import Path

    from lib.core.settings import defaults

    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml")
                           .read_text())
    max_bytes = int(defaults()["photo.max_bytes"])
    assert config["server"]["maxUploadSize"] * 1024 * 1024 == max_bytes
    assert t("report.photos", "zh", max=6, max_mb=max_bytes // 2 ** 20) == \
        "照片（可选，最多 6 张，每张不超过 5 MB）"


# ---------------------------------------------------------------- 12: no rating unless asked


def _verified(db) -> Case:
    case = new_case(db)
    for action, params in (("accept", {}), ("take", {}), ("handle", {"note": "已清理"}),
                           ("verify", {})):
        case = move(db, "community01", case.id, action, **params)
    return case


def test_the_call_back_records_no_rating_unless_one_was_given(db):
    case = _verified(db)
    with write_session(db) as s, pytest.raises(ValidationFailed) as err:
        act(s, actor(db, "community01"), case.id, "feedback", version=case.version)
    assert err.value.key == "error.rating_required"
    assert get(db, case.id).state == "verified"
    reached_nobody = move(db, "community01", case.id, "feedback", rating=UNREACHABLE)
    assert (reached_nobody.state, reached_nobody.rating) == ("feedback", None)
    with read_session(db) as s:
        last = s.exec(select(CaseEvent).where(CaseEvent.case_id == case.id)
                      .order_by(CaseEvent.seq.desc())).first()
    assert last.action == "feedback" and last.detail["reached"] is False


def test_the_call_back_form_has_nothing_chosen(sqlite_db):
    case = _verified(sqlite_db)
    at = open_page("community01", "pages/case.py", id=str(case.id))
    radio = next(r for r in at.radio if r.label == "回访结果 *")
    assert radio.value is None and "未接通 / 无法联系" in radio.options
    at.button(key="FormSubmitter:case_form_feedback-回访").click().run()
    assert "请选择评价。" in [e.value for e in at.error]
    assert get(sqlite_db, case.id).version == case.version


def test_restricted_tracking_shows_received_and_nothing_else(db):
    receipt = _report(db, category="vice", phone=None, anonymous=True,
                      description="3栋501有人聚众赌博")
    move(db, "community01", receipt.case.id, "accept")
    view = track(db, receipt.case.code, receipt.pin)
    assert view.state == "received" and [a for _, a in view.timeline] == ["report"]
    assert not view.can_rate and view.result_photos == []


def test_the_clock_turns_stored_utc_into_china_time():
    from lib.core.clock import china_date, china_day, china_time

    stored = datetime(2026, 2, 28, 17, 43, tzinfo=timezone.utc)  # 01:43 on 1 March in Chengdu
    assert (china_date(stored), china_time(stored)) == ("2026-03-01", "2026-03-01 01:43")
    assert china_day(stored.replace(tzinfo=None)) == date(2026, 3, 1)  # naive means UTC
    assert china_time(None) == "" and china_date(None) == ""
