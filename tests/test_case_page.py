"""The case page as clerks and handlers use it: a move says what it did, "办理并打开下一件"
opens the next case of the queue with a fresh position, the merge list and the duplicate hint
tell cases at one address apart, a handler signs for and starts in one submit and sees their
own order's deadline, and a notice opened from the sidebar is read."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlmodel import select

from lib.cases import notices
from lib.cases.detail import (
    SIGN_AND_START,
    Outcome,
    case_detail,
    likely_duplicates,
    make_move,
    place_in_walk,
    same_address,
    sign_and_start,
)
from lib.cases.machine import MOVES
from lib.cases.models import AccessLog, Case, CaseEvent, Notice, NoticeRead, WorkOrder
from lib.core.clock import china_time
from lib.core.db import read_session, write_session
from lib.core.errors import PermissionDenied, StaleObject
from lib.core.i18n import catalog
from lib.core.models import utcnow
from lib.org.models import Unit
from tests.factories import POLICE, actor, get, move, new_case, open_page, unit_id

FIRE = "510104001-fire_rescue"
FIRE_STAFF = "staff_510104001_fire_rescue"


def _events(engine, case_id: int) -> list[tuple[str, str | None]]:
    with read_session(engine) as s:
        return [(e.action, e.note) for e in s.exec(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)).all()]


def _place(engine, case_id: int, lat: float, lon: float) -> None:
    with write_session(engine) as s:
        row = s.get(Case, case_id)
        row.latitude, row.longitude = lat, lon


def _dispatched(engine, *, co: list[str] = (), **fields) -> Case:
    """A report the community called up and the street dispatched to the police (lead)."""
    case = new_case(engine, **fields)
    move(engine, "community01", case.id, "accept")
    move(engine, "community01", case.id, "call_up", note="需要派出所")
    return move(engine, "street01", case.id, "dispatch", lead_unit_id=unit_id(engine, POLICE),
                co_unit_ids=[unit_id(engine, c) for c in co])


# ---------------------------------------------------------------- what a move did, in words


def test_a_move_says_what_it_did_and_to_whom_in_both_languages(db):
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    done = make_move(actor(db, "community01"), case.id, "call_up",
                     version=get(db, case.id).version, engine=db, note="需要街道协调")
    assert done.text("zh") == f"{case.code}：已呼叫春熙路街道。"
    assert done.text("en") == f"{case.code}: called up to Chunxilu Street."
    done = make_move(actor(db, "street01"), case.id, "dispatch", version=get(db, case.id).version, engine=db,
                     lead_unit_id=unit_id(db, POLICE), co_unit_ids=[unit_id(db, FIRE)])
    assert done.text("zh") == f"{case.code}：已派单至春熙路派出所，协办：春熙路消防救援站。"
    assert done.text("en") == (f"{case.code}: dispatched to Chunxilu Police Station, "
                               "co-handled by Chunxilu Fire Station.")

    dup, target = new_case(db, address="红星路9号"), new_case(db, address="红星路9号")
    done = make_move(actor(db, "community01"), dup.id, "merge", version=get(db, dup.id).version, engine=db,
                     merge_into=target.id)
    assert done.text("zh") == f"{dup.code}：已并入 {target.code}。"


def test_every_move_made_on_the_case_page_has_its_words_in_both_languages():
    """No move falls back to a catalog key or leaves a placeholder unfilled."""
    street = Unit(name_zh="春熙路街道", name_en="Chunxilu Street")
    staff_moves = [a for a, m in MOVES.items() if m.from_states and m.who - {"public", "system"}]
    for action in [*staff_moves, SIGN_AND_START]:
        done = Outcome(1, "CODE", action, 2, {"unit": street, "owner": street, "lead": street},
                       [street], target="OTHER", at=utcnow())
        for lang in ("zh", "en"):
            assert f"done.{action}" in catalog(lang), (lang, action)
            text = done.text(lang)
            assert text.startswith("CODE") and "done." not in text and "{" not in text, text


def test_the_case_page_says_which_unit_was_called_up(sqlite_db):
    case = new_case(sqlite_db)
    move(sqlite_db, "community01", case.id, "accept")
    at = open_page("community01", "pages/case.py", id=str(case.id))
    at.text_area(key="case_form_call_up_note").input("需要街道协调")
    at.button(key="FormSubmitter:case_form_call_up-呼叫上级").click().run()
    assert not at.exception
    assert [m.value for m in at.success] == [f"{case.code}：已呼叫春熙路街道。"]
    assert get(sqlite_db, case.id).owner_id == unit_id(sqlite_db, "510104001")


# ---------------------------------------------------------------- the queue after a move


def test_the_next_case_is_the_first_after_it_still_in_the_view():
    assert place_in_walk([1, 2, 3, 4], [2, 3, 4], 1).following == 2
    left = place_in_walk([1, 2, 3, 4], [1, 3, 4], 2)  # the second left; the first is still there
    assert (left.previous, left.following, left.position) == (1, 3, None)
    assert place_in_walk([1, 2, 3], [1, 2], 3).following == 1  # the last left: back to the top
    stays = place_in_walk([1, 2, 3], [1, 2, 3], 2)  # supervised, say: it stays in the view
    assert (stays.previous, stays.following, stays.position) == (1, 3, 2)
    assert place_in_walk([1, 2], [], 1).following is None


def _from_the_queue(engine, count: int):
    cases = [new_case(engine, address=f"红星路{800 + i}号") for i in range(count)]
    at = open_page("community01", "pages/queue.py", sort="oldest")
    walk = at.session_state["queue_walk"]
    assert [i for i in walk if i in {c.id for c in cases}] == [c.id for c in cases]
    at.switch_page("pages/case.py")
    at.query_params.clear()
    at.query_params["id"] = str(walk[0])
    at.run()
    assert not at.exception
    return at, walk


def _captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def test_act_and_open_next_moves_then_opens_the_next_case_with_a_fresh_position(sqlite_db):
    """A clerk opens the first report of the triage queue, calls the street with "办理并打开
    下一件", and is on the second report, told what happened to the first; the queue now holds
    one case less, and the position says so."""
    at, walk = _from_the_queue(sqlite_db, 3)
    assert f"队列中第 1 / {len(walk)} 件" in _captions(at)
    at.text_area(key="case_form_call_up_note").input("需要街道协调")
    at.button(key="FormSubmitter:case_form_call_up-办理并打开下一件").click().run()
    assert not at.exception
    first = get(sqlite_db, walk[0])
    assert first.owner_id == unit_id(sqlite_db, "510104001")
    assert at.query_params["id"] == str(walk[1])
    assert [m.value for m in at.success] == [f"{first.code}：已呼叫春熙路街道。"]
    assert get(sqlite_db, walk[1]).code in at.title[0].value
    assert f"队列中第 1 / {len(walk) - 1} 件" in _captions(at)
    assert get(sqlite_db, walk[1]).state == "reported"  # only the case the clerk moved


def test_after_a_plain_move_the_position_is_fresh_and_next_goes_on(sqlite_db):
    at, walk = _from_the_queue(sqlite_db, 3)
    at.text_area(key="case_form_call_up_note").input("需要街道协调")
    at.button(key="FormSubmitter:case_form_call_up-呼叫上级").click().run()
    assert not at.exception and at.query_params["id"] == str(walk[0])
    captions = _captions(at)
    assert f"队列中第 1 / {len(walk)} 件" not in captions
    assert f"本件已离开该队列，队列还有 {len(walk) - 1} 件" in captions
    links = {link.proto.label: link.proto for link in at.get("page_link")}
    assert links["下一件"].query_string == f"id={walk[1]}"


def test_a_case_opened_outside_a_queue_offers_no_next(sqlite_db):
    case = new_case(sqlite_db)
    at = open_page("community01", "pages/case.py", id=str(case.id))
    assert not at.exception
    assert "办理并打开下一件" not in [b.label for b in at.button]


# ---------------------------------------------------------------- merge list and duplicates


def test_two_cases_at_one_address_differ_in_the_merge_list_by_words_and_distance(sqlite_db):
    report = new_case(sqlite_db, address="红星路20号", description="楼道里电动车充电")
    one = new_case(sqlite_db, address="红星路20号", description="楼道堆放纸箱，堵住消防通道")
    two = new_case(sqlite_db, address="红星路20号", description="消火栓箱被锁，无法打开检查")
    _place(sqlite_db, report.id, 30.6600, 104.0600)
    _place(sqlite_db, one.id, 30.6601, 104.0600)   # about 11 m
    _place(sqlite_db, two.id, 30.6610, 104.0600)   # about 111 m
    at = open_page("community01", "pages/case.py", id=str(report.id))
    assert not at.exception
    merge = next(s for s in at.selectbox if s.label.startswith("合并到"))
    labels = {label.split(" · ")[0]: label for label in map(str, merge.options)}
    assert "楼道堆放纸箱" in labels[one.code] and "约11米" in labels[one.code]
    assert "消火栓箱被锁" in labels[two.code] and "约111米" in labels[two.code]
    assert "红星路20号" not in labels[one.code]  # the address alike for both tells nothing


def test_likely_duplicates_are_near_or_at_the_same_address_and_in_the_readers_area(db):
    report = new_case(db, address="红星路 30 号", description="路灯不亮")
    same_door = new_case(db, address="红星路３０号", description="路灯坏了好几天")  # no map point
    far = new_case(db, address="红星路99号")
    near = new_case(db, address="红星路31号")
    gas = new_case(db, category="gas", address="红星路30号")
    elsewhere = new_case(db, community="510104001002", address="红星路30号")
    for case, lat in ((report, 30.6600), (far, 30.6700), (near, 30.6601)):
        _place(db, case.id, lat, 104.0600)
    with read_session(db) as s:
        found = likely_duplicates(s, actor(db, "community01"), s.get(Case, report.id), utcnow())
    assert [d.id for d in found] == [near.id, same_door.id]
    assert found[0].metres == 11 and found[1].same_address and "路灯坏了" in found[1].excerpt
    assert {far.id, gas.id, elsewhere.id}.isdisjoint(d.id for d in found)
    with read_session(db) as s:
        assert likely_duplicates(s, actor(db, "staff_510104001002"),
                                 s.get(Case, elsewhere.id), utcnow()) == []
    assert same_address("红星路 1 号", "红星路１号") and not same_address("", "")


def test_the_case_page_hints_a_likely_duplicate_with_a_link(sqlite_db):
    report = new_case(sqlite_db, address="红星路40号", description="井盖松动")
    other = new_case(sqlite_db, address="红星路 40号", description="井盖松了，踩上去会响")
    at = open_page("community01", "pages/case.py", id=str(report.id))
    assert not at.exception
    assert any("可能重复" in m.value for m in at.markdown)
    links = [link.proto for link in at.get("page_link")
             if other.code in link.proto.label and "notice=" not in link.proto.query_string]
    assert len(links) == 1 and links[0].query_string == f"id={other.id}"
    assert "井盖松了" in links[0].label and "同一地址" in links[0].label
    lone = new_case(sqlite_db, address="红星路41号")
    at = open_page("community01", "pages/case.py", id=str(lone.id))
    assert not any("可能重复" in m.value for m in at.markdown)


def test_a_restricted_duplicate_is_hinted_only_to_who_reads_it_and_logged(sqlite_db):
    report = new_case(sqlite_db, category="vice", address="红星路50号", description="有人聚赌")
    other = new_case(sqlite_db, category="vice", address="红星路50号", description="深夜打牌")
    with read_session(sqlite_db) as s:
        assert likely_duplicates(s, actor(sqlite_db, "district01"), s.get(Case, report.id),
                                 utcnow()) == []
        before = s.exec(select(func.count()).select_from(AccessLog).where(
            AccessLog.case_id == other.id, AccessLog.what == "similar")).one()
    detail = case_detail(actor(sqlite_db, "community01"), report.id)
    assert [d.id for d in detail.duplicates] == [other.id]
    with read_session(sqlite_db) as s:
        assert s.exec(select(func.count()).select_from(AccessLog).where(
            AccessLog.case_id == other.id, AccessLog.what == "similar")).one() == before + 1


# ---------------------------------------------------------------- the handler


def test_sign_and_start_is_two_checked_moves_in_one_transaction(db):
    case = _dispatched(db, co=[FIRE])
    police = actor(db, "dept_police")
    with pytest.raises(PermissionDenied):  # the co-handler is not the handler: nothing written
        sign_and_start(actor(db, FIRE_STAFF), case.id, version=case.version, engine=db)
    with pytest.raises(StaleObject):
        sign_and_start(police, case.id, version=case.version - 1, engine=db)
    assert get(db, case.id).state == "dispatched"
    done = sign_and_start(police, case.id, version=case.version, note="已到现场", engine=db)
    assert get(db, case.id).state == "in_progress"
    assert _events(db, case.id)[-2:] == [("acknowledge", "已到现场"), ("start", None)]
    assert done.text("zh").startswith(f"{case.code}：已签收并开始处置，处置时限 ")
    with read_session(db) as s:
        order = s.exec(select(WorkOrder).where(WorkOrder.case_id == case.id,
                                               WorkOrder.lead.is_(True))).one()
        assert order.state == "acknowledged" and order.signed_at is not None


def test_a_handler_signs_for_and_starts_in_one_submit_then_records_the_result(sqlite_db):
    """Before: 签收, 开始处置, 处置完毕 — three submits. Now 签收并开始处置 is the next step, and
    处置完毕 the next one: two."""
    case = _dispatched(sqlite_db)
    at = open_page("dept_police", "pages/case.py", id=str(case.id))
    assert not at.exception
    button = at.button(key="FormSubmitter:case_form_acknowledge_start-签收并开始处置")
    assert button.proto.type == "primary"
    submits = 0
    button.click().run()
    submits += 1
    assert not at.exception and get(sqlite_db, case.id).state == "in_progress"
    at.text_area(key="case_form_handle_note").input("已清理")
    at.button(key="FormSubmitter:case_form_handle-处置完毕").click().run()
    submits += 1
    assert not at.exception and get(sqlite_db, case.id).state == "handled"
    assert submits == 2


def test_a_co_handler_sees_its_own_orders_sign_for_deadline_then_its_handling_one(sqlite_db):
    case = _dispatched(sqlite_db, co=[FIRE])
    move(sqlite_db, "dept_police", case.id, "acknowledge")  # the lead signed: the case handles
    with read_session(sqlite_db) as s:
        order = s.exec(select(WorkOrder).where(WorkOrder.case_id == case.id,
                                               WorkOrder.lead.is_(False))).one()
        case_row = s.get(Case, case.id)
    # Sign-for and handling deadlines differ by severity's rules; make them tell apart.
    assert order.sign_due_at != case_row.handle_due_at
    at = open_page(FIRE_STAFF, "pages/case.py", id=str(case.id))
    assert not at.exception
    brief = next(m.value for m in at.markdown if "时限" in m.value).replace("\\", "")
    assert f"签收时限 {china_time(order.sign_due_at)}" in brief
    assert china_time(case_row.handle_due_at) not in brief
    move(sqlite_db, FIRE_STAFF, case.id, "co_acknowledge")
    at = open_page(FIRE_STAFF, "pages/case.py", id=str(case.id))
    brief = next(m.value for m in at.markdown if "时限" in m.value).replace("\\", "")
    assert f"处置时限 {china_time(order.handle_due_at)}" in brief


# ---------------------------------------------------------------- notices


def _notices(engine, unit_code: str) -> list[Notice]:
    with read_session(engine) as s:
        return list(s.exec(select(Notice).where(Notice.unit_id == unit_id(engine, unit_code),
                                                Notice.channel == "app")
                           .order_by(Notice.id)).all())


def test_a_notice_opens_its_case_and_marks_itself_read(sqlite_db):
    cases = [new_case(sqlite_db, address=f"红星路{60 + i}号") for i in range(2)]
    for case in cases:
        move(sqlite_db, "community01", case.id, "accept")
        move(sqlite_db, "community01", case.id, "call_up", note="请街道协调")
    told = _notices(sqlite_db, "510104001")
    assert len(told) == 2
    at = open_page("street01", "pages/case.py", id=str(cases[0].id))
    links = [link.proto for link in at.get("page_link")
             if f"notice={told[0].id}" in link.proto.query_string]
    assert len(links) == 1 and f"id={cases[0].id}" in links[0].query_string
    at = open_page("street01", "pages/case.py", id=str(cases[0].id), notice=str(told[0].id))
    assert not at.exception and "notice" not in at.query_params
    street = actor(sqlite_db, "street01")
    with read_session(sqlite_db) as s:
        read = set(s.exec(select(NoticeRead.notice_id).where(NoticeRead.user_id == street.id)).all())
    assert read == {told[0].id}
    assert notices.unread(street, "zh").count == 1
    assert "未读通知 1 条" in [e.label for e in at.expander]  # counted after the mark


def test_only_the_unit_told_marks_a_notice_read_and_only_that_one(db):
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    move(db, "community01", case.id, "call_up", note="请街道协调")
    told = _notices(db, "510104001")
    for who, notice_id in (("community01", told[0].id), ("street01", "1 OR 1=1"),
                           ("street01", 10**20), ("street01", None)):
        assert notices.mark_one(actor(db, who), notice_id, engine=db) is None
    assert notices.mark_one(actor(db, "street01"), told[0].id, engine=db) == case.id
    assert notices.mark_one(actor(db, "street01"), told[0].id, engine=db) == case.id  # twice: once
    with read_session(db) as s:
        assert s.exec(select(func.count()).select_from(NoticeRead)).one() == 1


def test_a_hostile_notice_value_on_the_case_page_marks_nothing(sqlite_db):
    case = new_case(sqlite_db)
    move(sqlite_db, "community01", case.id, "accept")
    move(sqlite_db, "community01", case.id, "call_up", note="请街道协调")
    for hostile in ("1 OR 1=1", "-1", "10" * 20, "①"):
        at = open_page("street01", "pages/case.py", id=str(case.id), notice=hostile)
        assert not at.exception and not at.error
    with read_session(sqlite_db) as s:
        assert s.exec(select(func.count()).select_from(NoticeRead)).one() == 0
