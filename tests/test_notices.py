"""Notices (issue 11): the outbox is filled in the transaction of the move, once per event and
recipient; SMS reach reporters who gave a phone and never carry personal data or restricted
content; the sender retries with back-off, never sends a notice twice (not even after a crash
between the gateway and the mark) and keeps residents' quiet hours; staff read their unit's
notices in the sidebar, each for themselves."""

from __future__ import annotations

import json
import threading
from datetime import datetime, time, timedelta, timezone

import pytest
from sqlmodel import select

from lib.cases import notices, outbox, tick
from lib.cases.intake import Report, create_case
from lib.cases.machine import CASES, act
from lib.cases.models import Case, CaseEvent, Notice
from lib.core.db import read_session, write_session
from lib.core.i18n import LANGUAGES, catalog
from lib.core.models import Category
from lib.core.workcal import CHINA_TZ
from lib.org import auth
from lib.org.units import find_unit
from tests.factories import (
    COMMUNITY,
    POLICE,
    STREET,
    actor,
    app,
    dispatched_to_police,
    get,
    move,
    new_case,
    unit_id,
)

RESULT = "已清理楼道杂物，请王小二（13812345678）确认"


def china_at(hour: int, minute: int = 0, days: int = 1) -> datetime:
    """``days`` from today at ``hour:minute`` China time, as UTC."""
    day = datetime.now(CHINA_TZ).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=CHINA_TZ).astimezone(timezone.utc)


def all_notices(engine, case_id: int | None = None, channel: str | None = None) -> list[Notice]:
    with read_session(engine) as s:
        query = select(Notice).order_by(Notice.id)
        if case_id is not None:
            query = query.where(Notice.case_id == case_id)
        if channel is not None:
            query = query.where(Notice.channel == channel)
        return list(s.exec(query).all())


class Recorder:
    """A gateway that keeps what it was given; ``fail``: raise that many times first."""

    idempotent = False

    def __init__(self, fail: int = 0) -> None:
        self.sent: list[tuple[int, str, str]] = []
        self.fail = fail
        self.calls = 0
        self.lock = threading.Lock()

    def send(self, notice_id: int, phone: str, text: str) -> None:
        with self.lock:
            self.calls += 1
            if self.fail:
                self.fail -= 1
                raise ConnectionError("gateway down")
            self.sent.append((notice_id, phone, text))


def log_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------- one notice per event


def test_the_reporter_hears_of_acceptance_result_and_closure_once_each(db):
    case = new_case(db, name="王小二")
    for action, params in (("accept", {}), ("take", {}), ("handle", {"note": RESULT}),
                           ("verify", {}), ("close", {})):
        move(db, "community01", case.id, action, **params)
    sms = all_notices(db, case.id, "sms")
    assert [n.kind for n in sms] == ["accepted", "handled", "closed"]
    link = f"http://localhost:8501/track?code={case.code}"
    for notice in sms:
        assert case.code in notice.body and link in notice.body
        assert case.reporter_phone not in notice.body and "王小二" not in notice.body
        assert "13812345678" not in notice.body
    handled = sms[1].body
    assert "已清理楼道杂物" in handled and "评价" in handled  # the result, and how to rate


def test_no_sms_to_an_anonymous_or_phoneless_reporter(db):
    anonymous = new_case(db, category="dogs", phone=None, name=None, anonymous=True)
    with write_session(db) as s:
        grid = auth.actor_by_username(s, "grid01")
        fire = s.exec(select(Category.id).where(Category.key == "fire")).one()
        phoneless = create_case(s, Report(category_id=fire, subcategory_id=None,
                                          description="消防通道堵塞", address="红星路9号",
                                          community_id=find_unit(s, COMMUNITY).id, source="grid_worker"),
                                actor=grid)
    for case in (anonymous, phoneless):
        move(db, "community01", case.id, "accept")
        assert all_notices(db, case.id, "sms") == []


def test_a_restricted_case_texts_only_its_code_and_never_its_result(db):
    case = new_case(db, category="vice", description="某出租屋聚众赌博")
    move(db, "community01", case.id, "accept")
    move(db, "community01", case.id, "take")
    move(db, "community01", case.id, "handle", note="已查处赌博窝点")
    sms = all_notices(db, case.id, "sms")
    assert [n.kind for n in sms] == ["accepted"]
    for word in ("赌", "黄", "毒", "出租屋"):
        assert word not in sms[0].body


def test_work_reaches_the_unit_it_goes_to_and_not_the_unit_that_sent_it(db):
    case = dispatched_to_police(db)  # accepted, called up to the street, dispatched to police
    app_notices = all_notices(db, case.id, "app")
    units = {unit_id(db, code): code for code in (COMMUNITY, STREET, POLICE)}
    assert [(units[n.unit_id], n.kind, json.loads(n.params)["action"]) for n in app_notices] == [
        (COMMUNITY, "work", "report"), (STREET, "work", "call_up"), (POLICE, "work", "dispatch")]


def test_a_new_report_tells_its_community_in_the_reports_transaction(db):
    case = new_case(db)
    told = [(n.unit_id, n.kind, n.event_id) for n in all_notices(db, case.id, "app")]
    with read_session(db) as s:
        report = s.exec(select(CaseEvent).where(CaseEvent.case_id == case.id)).one()
    assert told == [(unit_id(db, COMMUNITY), "work", report.id)]
    assert all_notices(db, case.id, "sms") == []  # the reporter has the code on the screen


def test_supervision_reaches_the_unit_at_work_and_the_owner(db):
    case = dispatched_to_police(db)
    move(db, "district01", case.id, "supervise", note="请加快办理")
    told = {n.unit_id for n in all_notices(db, case.id, "app") if n.kind == "supervised"}
    assert told == {unit_id(db, POLICE), unit_id(db, STREET)}


def test_the_same_event_never_makes_two_notices(db):
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    before = len(all_notices(db))
    with write_session(db) as s:
        event = s.exec(select(CaseEvent).where(CaseEvent.case_id == case.id,
                                               CaseEvent.action == "accept")).one()
        assert notices.on_move(s, s.get(Case, case.id), CASES.moves["accept"], event) == 0
    assert len(all_notices(db)) == before


def test_the_notice_is_written_in_the_transaction_of_the_move(db):
    case = new_case(db)
    reported = [n.id for n in all_notices(db, case.id)]  # the community's "new work"
    with pytest.raises(RuntimeError):
        with write_session(db) as s:
            act(s, auth.actor_by_username(s, "community01"), case.id, "accept", version=case.version)
            assert len(s.exec(select(Notice).where(Notice.case_id == case.id)).all()) == \
                len(reported) + 1
            raise RuntimeError("the transaction fails after the move")
    assert [n.id for n in all_notices(db, case.id)] == reported
    assert get(db, case.id).state == "reported"


# ---------------------------------------------------------------- deadlines, from the tick


def test_the_tick_tells_of_a_near_and_a_missed_deadline_once_each(db):
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    taken = move(db, "community01", case.id, "take")
    community = unit_id(db, COMMUNITY)
    for now in (taken.handle_due_at - timedelta(hours=3), taken.handle_due_at - timedelta(hours=1)):
        tick.run_tick(db, now=now)
    for now in (taken.handle_due_at + timedelta(hours=1), taken.handle_due_at + timedelta(hours=2)):
        tick.run_tick(db, now=now)
    told = [(n.kind, n.unit_id) for n in all_notices(db, case.id, "app")]
    assert told == [("work", community), ("due_soon", community), ("overdue", community)]
    box = notices.unread(actor(db, "community01"), "en", engine=db)
    assert box.count == 3 and box.latest[0].text.startswith("Overdue: " + case.code)


def test_a_tick_that_finds_many_late_cases_tells_of_each_in_batches(db, monkeypatch):
    monkeypatch.setattr(notices, "INSERT_BATCH", 2)
    cases = [new_case(db) for _ in range(5)]
    latest = max(c.sign_due_at for c in cases)
    assert tick.run_tick(db, now=latest + timedelta(minutes=1))["marked_overdue"] == 5
    told = [n.case_id for n in all_notices(db, channel="app") if n.kind == "overdue"]
    assert sorted(told) == sorted(c.id for c in cases)


# ---------------------------------------------------------------- the sender


def test_the_sender_sends_each_sms_once_to_the_log_with_the_phone_masked(db, tmp_path):
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    log = tmp_path / "notices.log"
    at = china_at(10)
    assert outbox.send_due(db, gateway=outbox.LogGateway(log), now=at)["notices_sent"] == 1
    assert outbox.send_due(db, gateway=outbox.LogGateway(log), now=at)["notices_sent"] == 0
    [line] = log_lines(log)
    assert line["text"].startswith("【平安社区】") and case.code in line["text"]
    assert case.reporter_phone not in log.read_text(encoding="utf-8")
    assert line["to"] == case.reporter_phone[:3] + "****" + case.reporter_phone[-4:]
    [notice] = all_notices(db, case.id, "sms")
    assert (notice.state, notice.attempts) == ("sent", 1)


def _crash_at_the_mark(monkeypatch) -> None:
    """The process dies after the gateway took the message, before the notice is marked."""
    finish = outbox._finish

    def crash(engine, notice_id, **values):
        if values.get("state") == "sent":
            raise SystemExit("killed")
        finish(engine, notice_id, **values)

    monkeypatch.setattr(outbox, "_finish", crash)


def test_a_crash_between_send_and_mark_never_sends_twice_through_the_log(db, tmp_path, monkeypatch):
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    log, at = tmp_path / "notices.log", china_at(10)
    _crash_at_the_mark(monkeypatch)
    with pytest.raises(SystemExit):
        outbox.send_due(db, gateway=outbox.LogGateway(log), now=at)
    monkeypatch.undo()
    assert all_notices(db, case.id, "sms")[0].state == "sending"
    # Still within the claim: nobody touches it.
    assert outbox.send_due(db, gateway=outbox.LogGateway(log), now=at + timedelta(minutes=5)) == {
        "notices_sent": 0, "notices_retry": 0, "notices_failed": 0, "notices_held": 0}
    # After the claim timed out: handed over again under its id, and the log drops it.
    later = at + outbox.CLAIM_TIMEOUT + timedelta(minutes=1)
    assert outbox.send_due(db, gateway=outbox.LogGateway(log), now=later)["notices_sent"] == 1
    assert len(log_lines(log)) == 1
    assert all_notices(db, case.id, "sms")[0].state == "sent"


def test_a_crash_between_send_and_mark_is_not_resent_through_a_plain_gateway(db, monkeypatch):
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    gateway, at = Recorder(), china_at(10)
    _crash_at_the_mark(monkeypatch)
    with pytest.raises(SystemExit):
        outbox.send_due(db, gateway=gateway, now=at)
    monkeypatch.undo()
    counts = outbox.send_due(db, gateway=gateway, now=at + outbox.CLAIM_TIMEOUT * 2)
    assert counts["notices_failed"] == 1 and gateway.calls == 1
    [notice] = all_notices(db, case.id, "sms")
    assert notice.state == "failed" and notice.error.startswith("interrupted")


def test_a_failing_gateway_is_retried_with_back_off_then_given_up(db):
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    gateway, at = Recorder(fail=99), china_at(10)
    waits = []
    for attempt in range(1, 6):
        counts = outbox.send_due(db, gateway=gateway, now=at)
        [notice] = all_notices(db, case.id, "sms")
        assert notice.attempts == attempt
        if attempt < 5:
            assert counts["notices_retry"] == 1 and notice.state == "pending"
            # Not before its time.
            early = notice.next_attempt_at - timedelta(seconds=1)
            assert outbox.send_due(db, gateway=gateway, now=early)["notices_retry"] == 0
            waits.append((notice.next_attempt_at - at).total_seconds())
            at = notice.next_attempt_at
        else:
            assert counts["notices_failed"] == 1 and notice.state == "failed"
            assert notice.error == "ConnectionError: gateway down"
    assert waits == [60, 120, 240, 480]
    assert gateway.calls == 5 and gateway.sent == []


def test_a_gateway_that_recovers_sends_once(db):
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    gateway, at = Recorder(fail=1), china_at(10)
    outbox.send_due(db, gateway=gateway, now=at)
    outbox.send_due(db, gateway=gateway, now=at + timedelta(minutes=1))
    outbox.send_due(db, gateway=gateway, now=at + timedelta(minutes=5))
    assert [s[0] for s in gateway.sent] == [all_notices(db, case.id, "sms")[0].id]


def test_two_senders_at_once_send_every_sms_exactly_once(db):
    for _ in range(6):
        move(db, "community01", new_case(db).id, "accept")
    gateway, at = Recorder(), china_at(10)
    senders = [threading.Thread(target=outbox.send_due, args=(db,),
                                kwargs={"gateway": gateway, "now": at}) for _ in range(3)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    ids = [s[0] for s in gateway.sent]
    assert sorted(ids) == sorted(n.id for n in all_notices(db, channel="sms")) and len(ids) == 6


def test_quiet_hours_hold_residents_sms_but_not_staff_notices(db):
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    move(db, "community01", case.id, "call_up", note="请街道协调")
    gateway = Recorder()
    night = china_at(23)
    assert outbox.send_due(db, gateway=gateway, now=night)["notices_held"] == 1
    assert outbox.send_due(db, gateway=gateway, now=china_at(7, 59, days=2))["notices_held"] == 1
    assert gateway.sent == []
    assert notices.unread(actor(db, "street01"), "zh", engine=db, now=night).count == 1
    assert outbox.send_due(db, gateway=gateway, now=china_at(8, 0, days=2))["notices_sent"] == 1


def test_quiet_hours_end_at_their_end_across_midnight(db):
    with read_session(db) as s:
        assert outbox.quiet_until(s, china_at(23)) == china_at(8, days=2)
        assert outbox.quiet_until(s, china_at(3)) == china_at(8)
        assert outbox.quiet_until(s, china_at(8)) is None
        assert outbox.quiet_until(s, china_at(21, 59)) is None


def make_recorder() -> Recorder:
    return Recorder()


def test_the_gateway_is_named_by_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NOTICE_LOG", str(tmp_path / "sms.log"))
    monkeypatch.delenv("SMS_GATEWAY", raising=False)
    default = outbox.gateway_from_env()
    assert isinstance(default, outbox.LogGateway) and default.path == tmp_path / "sms.log"
    monkeypatch.setenv("SMS_GATEWAY", "tests.test_notices:make_recorder")
    assert isinstance(outbox.gateway_from_env(), Recorder)


def test_the_cli_sends_what_is_due(sqlite_db, tmp_path, monkeypatch, capsys):
    from lib.tools.cli import main

    case = new_case(sqlite_db)
    move(sqlite_db, "community01", case.id, "accept")
    monkeypatch.setenv("NOTICE_LOG", str(tmp_path / "sms.log"))
    assert main(["notices-send"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["notices_sent"] + counts["notices_held"] == 1


# ---------------------------------------------------------------- templates


def test_templates_exist_in_both_languages_and_carry_the_tracking_link(monkeypatch):
    monkeypatch.setenv("APP_BASE_URL", "https://pingan.example.cn/")
    for lang in LANGUAGES:
        for kind in {m.to_state for m in CASES.moves.values() if m.sms}:
            assert f"notice.sms.{kind}" in catalog(lang)
            text = notices.sms_text(kind, lang, code="CD1-0001", result="已处理")
            assert "https://pingan.example.cn/track?code=CD1-0001" in text and "{" not in text
        for kind in ("work", "supervised", "hurried", "due_soon", "overdue"):
            assert f"notice.app.{kind}" in catalog(lang)


# ---------------------------------------------------------------- staff read them


def test_each_staff_member_reads_the_units_notices_for_themselves(db):
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    move(db, "community01", case.id, "call_up", note="请街道协调")
    street01, colleague = actor(db, "street01"), actor(db, f"staff_{STREET}")
    box = notices.unread(street01, "zh", engine=db)
    assert box.count == 1 and box.latest[0].case_id == case.id
    assert box.latest[0].text == f"呼叫上级：{case.code}（社区公共消防）到达本单位"
    # The community was told of the new report, not of the call-up it made itself.
    assert notices.unread(actor(db, "community01"), "zh", engine=db).count == 1
    notices.mark_read(street01, up_to=box.last_id, engine=db)
    notices.mark_read(street01, up_to=box.last_id, engine=db)  # a double click
    assert notices.unread(street01, "zh", engine=db).count == 0
    assert notices.unread(colleague, "zh", engine=db).count == 1


def test_the_sidebar_shows_unread_notices_and_marks_them_read(sqlite_db):
    case = new_case(sqlite_db)
    move(sqlite_db, "community01", case.id, "accept")
    move(sqlite_db, "community01", case.id, "call_up", note="请街道协调")
    at = app("street01")
    assert not at.exception
    [panel] = [e for e in at.sidebar.expander if "未读通知" in e.label]
    assert panel.label == "未读通知 1 条"
    assert case.description not in str(at.sidebar)
    at.sidebar.button(key="sidebar_notices_read").click().run()
    assert not [e for e in at.sidebar.expander if "未读通知" in e.label]


def test_a_deadline_further_off_than_four_hours_tells_nobody_yet(db):
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    taken = move(db, "community01", case.id, "take")
    tick.run_tick(db, now=taken.handle_due_at - timedelta(hours=10))
    assert [n.kind for n in all_notices(db, case.id, "app")] == ["work"]  # the report only
    tick.run_tick(db, now=taken.handle_due_at - timedelta(hours=3))
    assert [n.kind for n in all_notices(db, case.id, "app")] == ["work", "due_soon"]
