"""Nobody decides their own money: a report from a staff identity earns nothing, an approver who
made any move on a case never decides or pays its reward, the monthly cap holds when approvers
race, restricted claims go only to approvers who may read their evidence, and lib hands each
reader only what their role may see — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import itertools
import threading
import zipfile
from datetime import date, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from lib.cases.intake import Report, create_case
from lib.cases.machine import MOVES as CASE_MOVES
from lib.cases.models import AccessLog, CaseEvent
from lib.core.db import read_session, write_session
from lib.core.errors import NotFound, PermissionDenied, ValidationFailed
from lib.core.i18n import name, t
from lib.core.models import utcnow
from lib.org import auth
from lib.org.models import User
from lib.org.units import find_unit
from lib.rewards import approval, eligibility, rules
from lib.rewards.machine import CLAIMS, context
from lib.rewards.machine import act as claim_act
from lib.rewards.models import RewardCapUse, RewardClaim, RewardPool
from tests.factories import (
    COMMUNITY,
    STREET,
    actor,
    category_id,
    closed_case,
    everything,
    get,
    move,
    new_case,
    open_page,
    unit_id,
)

_phones = itertools.count(13600000001)
OTHER_STREET = "510104002"


# ---------------------------------------------------------------- helpers


def _open(db) -> None:
    with write_session(db) as s:
        eligibility.open_claims(s, everything=True)


def _claim_of(db, case_id: int) -> RewardClaim:
    with read_session(db) as s:
        return s.exec(select(RewardClaim).where(RewardClaim.case_id == case_id)).one()


def _claimed(db, case, *, method: str = "bank", detail: str = "6222020200112233445") -> RewardClaim:
    """The reporter's claim, as the tracking page makes it once the reporter has proved the case
    is theirs (the proof itself is tracking's concern, tested there)."""
    _open(db)
    claim = _claim_of(db, case.id)
    assert claim.state == "eligible", claim.reason
    with write_session(db) as s:
        return claim_act(s, None, claim.id, "claim", version=claim.version, method=method,
                         payment_detail=detail)


def _decide(db, username: str, claim_id: int, action: str, **params) -> RewardClaim:
    with read_session(db) as s:
        version = s.get(RewardClaim, claim_id).version
    return approval.decide(actor(db, username), claim_id, action, version=version, engine=db,
                           **params)


def _user(db, username: str, unit: str, roles: tuple[str, ...]) -> str:
    with write_session(db) as s:
        auth.bootstrap_user(s, username=username, display_name=username,
                            password="long-password-1", unit=find_unit(s, unit), roles=list(roles))
    return username


def _user_id(db, username: str) -> int:
    return actor(db, username).id


def _in_queue(db, username: str, claim_id: int) -> bool:
    rows, _ = approval.approval_queue(actor(db, username), engine=db)
    return claim_id in {r.id for r in rows}


def _later(days: int) -> date:
    return (utcnow() + timedelta(days=days)).date()


# ---------------------------------------------------------------- staff identities


def test_a_report_from_a_staff_phone_the_admin_recorded_earns_nothing(db):
    approver_id = _user_id(db, "street_approver")
    admin = actor(db, "admin")
    with read_session(db) as s:
        before = s.get(User, approver_id).phone
    with pytest.raises(ValidationFailed) as err:  # a bad number: told, nothing stored
        auth.set_phone(admin, user_id=approver_id, phone="1390000777", engine=db)
    assert err.value.key == "error.phone_invalid"
    with pytest.raises(PermissionDenied):  # only an admin records phones
        auth.set_phone(actor(db, "street_approver"), user_id=approver_id, phone="13900007777",
                       engine=db)
    with read_session(db) as s:
        assert s.get(User, approver_id).phone == before
    # Typed with spaces and the country code, stored as digits.
    assert auth.set_phone(admin, user_id=approver_id, phone="+86 139 0000 7777",
                          engine=db) == "13900007777"
    case = closed_case(db, phone="13900007777")  # the approver reports as a resident
    _open(db)
    claim = _claim_of(db, case.id)
    assert (claim.state, claim.reason) == ("ineligible", "staff_reporter")
    assert t("reward_reason.staff_reporter", "zh") != "reward_reason.staff_reporter"


def test_a_staff_phone_recorded_after_the_claim_opened_still_stops_the_money(db):
    """The claim was opened (and claimed) before the admin recorded the phone: the approver
    whose phone it is may not decide it, and nobody may approve it — only reject it."""
    claim = _claimed(db, closed_case(db, phone="13900008888"))
    approved = _claimed(db, closed_case(db, phone="13900008888"))
    _decide(db, "district_approver", approved.id, "approve")  # before anyone knew
    auth.set_phone(actor(db, "admin"), user_id=_user_id(db, "street_approver"),
                   phone="139-0000-8888", engine=db)
    # Her own claims: not offered to her, and nothing she may do with them, not even reject.
    assert not _in_queue(db, "street_approver", claim.id)
    mine = approval.claim_detail(actor(db, "street_approver"), claim.id, engine=db)
    assert (mine.actions, mine.barred) == ([], "rewards.barred.own_report")
    for action, params in (("approve", {}), ("reject", {"reason": "other", "note": "撤回"})):
        with pytest.raises(PermissionDenied):
            _decide(db, "street_approver", claim.id, action, **params)
    # Another approver may only reject them: no approval, no payment.
    detail = approval.claim_detail(actor(db, "district_approver"), claim.id, engine=db)
    assert detail.staff_report and detail.actions == ["reject"]
    with pytest.raises(PermissionDenied):
        _decide(db, "district_approver", claim.id, "approve")
    with pytest.raises(PermissionDenied):
        _decide(db, "district_approver", approved.id, "pay", method="bank")
    for each in (claim, approved):
        rejected = _decide(db, "district_approver", each.id, "reject", reason="staff_reporter",
                           note="上报号码为工作人员手机号")
        assert rejected.state == "rejected"
    with read_session(db) as s:  # the approved one's money is back in the pool and the cap
        assert [p.committed_fen for p in s.exec(select(RewardPool)).all()] == [0]
        assert [u.used_fen for u in s.exec(select(RewardCapUse)).all()] == [0]


def test_a_report_made_while_logged_in_to_a_staff_account_earns_nothing(db):
    with write_session(db) as s:  # a clerk files a "resident" report from her own account
        case = create_case(s, Report(category_id=category_id(db, "fire"), subcategory_id=None,
                                     description="楼道堆物", address="红星路77号",
                                     community_id=unit_id(db, COMMUNITY), source="resident",
                                     reporter_phone=str(next(_phones))),
                           actor=auth.actor_by_username(s, "community01"))
    for action, params in (("accept", {}), ("take", {}), ("handle", {"note": "已整改"}),
                           ("verify", {}), ("close", {})):
        move(db, "community01", case.id, action, **params)
    _open(db)
    claim = _claim_of(db, case.id)
    assert (claim.state, claim.reason) == ("ineligible", "staff_account")
    for lang in ("zh", "en"):
        assert t("reward_reason.staff_account", lang) != "reward_reason.staff_account"


# ---------------------------------------------------------------- any move bars the approver


def _called_up(db):
    """A resident's report its community accepted and called up: the street owns it."""
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    move(db, "community01", case.id, "call_up", note="请街道协调")
    return case


def _finish(db, case_id: int, by: str) -> None:
    """The unit that owns the case takes it on and handles it; its community checks and closes."""
    for action, params in (("take", {}), ("handle", {"note": "已整改"})):
        move(db, by, case_id, action, **params)
    for action in ("verify", "close"):
        move(db, "community01", case_id, action)


def _rework(db, clerk: str) -> int:
    case = _called_up(db)
    move(db, "street01", case.id, "take")
    move(db, "street01", case.id, "handle", note="已整改")
    move(db, clerk, case.id, "rework", note="照片看不清，请重新处置")  # 返工
    move(db, "street01", case.id, "handle", note="已重新整改")
    for action in ("verify", "close"):
        move(db, "community01", case.id, action)
    return case.id


def _hand_back(db, clerk: str) -> int:
    case = _called_up(db)
    move(db, clerk, case.id, "hand_back", note="社区可自行处置")  # 下派
    _finish(db, case.id, "community01")
    return case.id


def _call_up(db, clerk: str) -> int:
    case = _called_up(db)
    move(db, clerk, case.id, "call_up", note="请区级协调")  # 呼叫
    _finish(db, case.id, "district01")
    return case.id


def _extend(db, clerk: str) -> int:
    case = _called_up(db)
    move(db, "street01", case.id, "take")
    move(db, clerk, case.id, "extend", until=_later(40), note="需协调物业")  # 延期
    move(db, "street01", case.id, "handle", note="已整改")
    for action in ("verify", "close"):
        move(db, "community01", case.id, action)
    return case.id


def _park(db, clerk: str) -> int:
    case = _called_up(db)
    move(db, clerk, case.id, "park", until=_later(30), note="等待业主回国")  # 挂账
    move(db, "street01", case.id, "resume")
    _finish(db, case.id, "street01")
    return case.id


def _supervise(db, clerk: str) -> int:
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    move(db, clerk, case.id, "supervise", note="请尽快处置")  # 督办
    _finish(db, case.id, "community01")
    return case.id


@pytest.mark.parametrize("made", [_rework, _hand_back, _call_up, _extend, _park, _supervise],
                         ids=lambda f: f.__name__.strip("_"))
def test_an_approver_who_made_any_move_on_the_case_never_decides_or_pays_its_claim(db, made):
    clerk = _user(db, "clerk_approver", STREET, ("street_staff", "reward_approver"))
    case_id = made(db, clerk)
    claim = _claimed(db, get(db, case_id))
    other = _claimed(db, closed_case(db))  # a claim she had no hand in
    rows, total = approval.approval_queue(actor(db, clerk), engine=db)
    assert [r.id for r in rows] == [other.id] and total == 1  # not offered; the other is
    assert approval.waiting_count(actor(db, clerk), engine=db) == 1
    assert _in_queue(db, "street_approver", claim.id)
    with pytest.raises(PermissionDenied):
        _decide(db, clerk, claim.id, "approve")
    done, refused = approval.batch_approve(actor(db, clerk), [(claim.id, claim.version)], engine=db)
    assert (done, [key for _, key in refused]) == (0, ["error.forbidden"])
    detail = approval.claim_detail(actor(db, clerk), claim.id, engine=db)
    assert detail.actions == [] and detail.barred == "rewards.barred.acted"
    assert _decide(db, "street_approver", claim.id, "approve").state == "approved"
    with pytest.raises(PermissionDenied):  # nor pays it
        _decide(db, clerk, claim.id, "pay", method="bank", reference="X-1")
    assert approval.claim_detail(actor(db, clerk), claim.id, engine=db).full_payment_detail is None
    assert _decide(db, "street_approver", claim.id, "pay", method="bank").state == "paid"


def test_every_kind_of_case_event_bars_its_actor_from_the_claim(db):
    """The rule reads the events, not a list of moves: an event of any action of the case
    machine (and any action added later) by an approver bars that approver."""
    case = closed_case(db)
    claim = _claimed(db, case)
    # Every action but the report itself: a report by a staff account stops the money for
    # everyone (tested above), which would hide what this test looks at.
    actions = sorted(set(CASE_MOVES) - {"report"})
    names = [_user(db, f"approver_{i}", STREET, ("reward_approver",)) for i in range(len(actions))]
    ids = [_user_id(db, n) for n in names]
    with write_session(db) as s:  # one event of each action, each by another approver
        seq = s.exec(select(CaseEvent.seq).where(CaseEvent.case_id == case.id)
                     .order_by(CaseEvent.seq.desc())).first()
        for offset, (action, user_id) in enumerate(zip(actions, ids, strict=True), start=1):
            s.add(CaseEvent(case_id=case.id, seq=seq + offset, action=action, actor_id=user_id,
                            to_state="closed"))
    with read_session(db) as s:
        row = s.get(RewardClaim, claim.id)
        ctx = context(s, row, utcnow())
        for action, name_ in zip(actions, names, strict=True):
            assert not CLAIMS.may(actor(db, name_), row, "approve", ctx), action
        assert CLAIMS.may(actor(db, "street_approver"), row, "approve", ctx)
    assert not any(_in_queue(db, n, claim.id) for n in names)


def test_an_event_on_a_case_merged_with_the_claims_case_bars_the_approver_too(db):
    clerk = _user(db, "clerk_approver", STREET, ("street_staff", "reward_approver"))
    first = new_case(db)
    later = new_case(db)
    move(db, "community01", later.id, "accept")
    move(db, "community01", later.id, "call_up", note="请街道协调")
    move(db, "community01", first.id, "merge", merge_into=later.id)  # the earlier report joins
    move(db, clerk, later.id, "hand_back", note="社区处置")
    _finish(db, later.id, "community01")
    _open(db)
    claim = _claim_of(db, first.id)  # the earliest reporter earns it
    assert claim.state == "eligible"
    claim = _claimed(db, first)
    assert not _in_queue(db, clerk, claim.id)
    with pytest.raises(PermissionDenied):
        _decide(db, clerk, claim.id, "approve")
    # The other way round: she acted on a later report, which then joined the earlier case.
    earlier = new_case(db)
    joiner = _called_up(db)
    move(db, clerk, joiner.id, "hand_back", note="社区处置")
    move(db, "community01", joiner.id, "merge", merge_into=earlier.id)
    for action, params in (("accept", {}), ("take", {}), ("handle", {"note": "已整改"}),
                           ("verify", {}), ("close", {})):
        move(db, "community01", earlier.id, action, **params)
    claim = _claimed(db, earlier)
    assert not _in_queue(db, clerk, claim.id)
    with pytest.raises(PermissionDenied):
        _decide(db, clerk, claim.id, "approve")


# ---------------------------------------------------------------- the approver's area, checked in lib


def test_an_approver_of_another_street_is_refused_by_id_in_lib(db):
    other = _user(db, "other_street_approver", OTHER_STREET, ("reward_approver",))
    claim = _claimed(db, closed_case(db))
    with read_session(db) as s:  # the machine's own rule, apart from the page's lookup
        row = s.get(RewardClaim, claim.id)
        assert not CLAIMS.may(actor(db, other), row, "approve", context(s, row, utcnow()))
    with pytest.raises(NotFound):
        _decide(db, other, claim.id, "approve")
    with pytest.raises(NotFound):
        approval.claim_detail(actor(db, other), claim.id, engine=db)
    assert approval.batch_approve(actor(db, other), [(claim.id, claim.version)], engine=db) == \
        (0, [(claim.id, "error.claim_not_found")])
    _decide(db, "street_approver", claim.id, "approve")
    with read_session(db) as s:
        row = s.get(RewardClaim, claim.id)
        assert not CLAIMS.may(actor(db, other), row, "pay", context(s, row, utcnow()))
    with pytest.raises(NotFound):  # nor pays it
        _decide(db, other, claim.id, "pay", method="bank")
    assert _claim_of(db, claim.case_id).state == "approved"


# ---------------------------------------------------------------- the cap is atomic


@pytest.mark.parametrize("round_", range(3))
def test_three_claims_approved_at_once_never_pass_the_monthly_cap(db, round_):
    rules.set_rule(actor(db, "admin"), category_id=category_id(db, "fire"), severity="general",
                   amount="500", engine=db)  # ¥500 each, at the ¥500 threshold: capped
    _user(db, "second_street_approver", STREET, ("reward_approver",))
    phone = str(next(_phones))
    claims = [_claimed(db, closed_case(db, phone=phone), method="cash", detail="") for _ in range(3)]
    barrier = threading.Barrier(3, timeout=30)
    results: list[object] = [None] * 3

    def approve(i: int, username: str) -> None:
        who = actor(db, username)
        barrier.wait()
        try:
            results[i] = approval.decide(who, claims[i].id, "approve", version=claims[i].version,
                                         engine=db).state
        except ValidationFailed as err:
            results[i] = err.key

    threads = [threading.Thread(target=approve, args=(i, u)) for i, u in enumerate(
        ("street_approver", "second_street_approver", "street_approver"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == ["approved", "approved", "error.reward_over_cap"]  # ¥1,000 of ¥1,000
    with read_session(db) as s:
        approved = s.exec(select(RewardClaim.amount_fen).where(
            RewardClaim.reporter_key == phone, RewardClaim.state == "approved")).all()
        assert sum(approved) == 100000 <= rules.current_policy(s).reporter_cap_fen
        assert [u.used_fen for u in s.exec(select(RewardCapUse).where(
            RewardCapUse.reporter_key == phone)).all()] == [100000]


def test_the_cap_row_refuses_going_below_zero_in_the_database(db):
    with write_session(db) as s:
        s.add(RewardCapUse(reporter_key="13600009999", month="2026-12", used_fen=0))
    with pytest.raises(DBAPIError), write_session(db) as s:
        s.exec(text("UPDATE reward_cap_use SET used_fen = -1"))


# ---------------------------------------------------------------- restricted claims


def _tip(db, *, phone: str = "13977777777"):
    """A resident's 黄赌毒 tip, judged major (¥2,000), handled and closed, claimed."""
    return _claimed(db, closed_case(db, category="vice", severity="major", phone=phone,
                                    description="3栋地下室有人聚赌", address="红星路12号3栋"),
                    detail="6222020200001234")


def _privileged(db, username: str) -> str:
    return _user(db, username, "510104", ("reward_approver", "sensitive_viewer"))


def test_a_restricted_claim_goes_only_to_approvers_who_may_read_its_evidence(db):
    claim = _tip(db)
    # The street's approver and the district's plain approver: not offered, refused in lib,
    # and the evidence withheld from what lib returns.
    for username in ("street_approver", "district_approver"):
        assert not _in_queue(db, username, claim.id)
        with pytest.raises(PermissionDenied):
            _decide(db, username, claim.id, "approve")
        detail = approval.claim_detail(actor(db, username), claim.id, engine=db)
        assert (detail.evidence, detail.description, detail.address, detail.result,
                detail.photos) == (False, None, None, None, [])
        assert detail.barred == "rewards.barred.restricted" and detail.actions == []
    with read_session(db) as s:
        assert s.exec(select(AccessLog)).all() == []
    # Two district approvers who hold the permission see it, each read logged, and decide.
    first, second = _privileged(db, "vice_approver_1"), _privileged(db, "vice_approver_2")
    assert _in_queue(db, first, claim.id)
    detail = approval.claim_detail(actor(db, first), claim.id, engine=db)
    assert (detail.description, detail.address, detail.result) == (
        "3栋地下室有人聚赌", "红星路12号3栋", "已整改")
    assert detail.reporter is None  # still known by the claim and the case code only
    with read_session(db) as s:
        logged = s.exec(select(AccessLog.user_id, AccessLog.what)).all()
    assert logged == [(_user_id(db, first), "reward_evidence")]
    assert _decide(db, first, claim.id, "approve").state == "approved_once"
    assert _decide(db, second, claim.id, "second_approve").state == "approved"


def test_a_restricted_reporter_is_absent_from_the_queue_ledger_and_exports(db):
    claim = _tip(db, phone="13977777777")
    ordinary = _claimed(db, closed_case(db, phone="13955556666"))
    privileged = _privileged(db, "vice_approver_1")
    rows, _ = approval.approval_queue(actor(db, privileged), engine=db)
    assert {r.id: r.reporter for r in rows} == {claim.id: None, ordinary.id: "139****6666"}
    for reader in ("street_leader", "district_leader", "district_approver", privileged):
        found = approval.ledger_rows(actor(db, reader), lang_name=lambda r: name(r, "zh"),
                                     label=lambda k: t(k, "zh"), engine=db)
        row = next(r for r in found if r["id"] == claim.id)
        assert "7777" not in str(row) and "1234" not in str(row), reader
        for fmt in ("csv", "xlsx"):
            data = approval.export(actor(db, reader), approval.LedgerFilter(), fmt=fmt,
                                   lang_name=lambda r: name(r, "zh"), label=lambda k: t(k, "zh"),
                                   engine=db)
            if fmt == "csv":
                cells = [c for r in csv.reader(io.StringIO(data.decode("utf-8-sig"))) for c in r]
                assert not [c for c in cells if "7777" in c or c.endswith("1234")], reader
                assert "139****6666" in cells
            else:
                assert b"7777" not in _xlsx_text(data) and b"139****6666" in _xlsx_text(data)
    for reader in ("street_leader", "district_approver", privileged):
        detail = approval.claim_detail(actor(db, reader), claim.id, engine=db)
        assert detail.reporter is None and "7777" not in repr(detail), reader


def _xlsx_text(data: bytes) -> bytes:
    """The shared strings and sheet XML of a workbook, where its cell text lives."""
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        return b"".join(book.read(n) for n in book.namelist() if n.endswith(".xml"))


# ---------------------------------------------------------------- what lib returns


@pytest.mark.parametrize(("detail", "masked"), [
    ("张三", "****"), ("1234", "****4"), ("王小明", "****明"), ("", ""), (None, ""),
    ("6222020200112233445", "****3445"), ("12345678", "****678"),
])
def test_a_payment_detail_is_masked_so_that_a_short_one_shows_at_most_one_character(detail, masked):
    assert approval.mask_detail(detail) == masked
    if detail:
        shown = len(masked) - 4
        assert shown * 2 < len(detail) and (len(detail) > 6 or shown <= 1)


def test_claim_detail_returns_only_what_each_role_may_see(db):
    account = "6222020200112233445"
    claim = _claimed(db, closed_case(db, phone="13912340000"), detail=account)
    leader = approval.claim_detail(actor(db, "street_leader"), claim.id, engine=db)
    approver = approval.claim_detail(actor(db, "street_approver"), claim.id, engine=db)
    for seen in (leader, approver):  # nobody gets the row objects, the full phone or account
        assert account not in repr(seen) and "13912340000" not in repr(seen)
        assert seen.reporter == "139****0000" and seen.payment_detail == "****3445"
        assert seen.full_payment_detail is None
    assert leader.actions == [] and approver.actions[0] == "approve"
    _decide(db, "street_approver", claim.id, "approve")
    # The approver who may pay it now gets the full account, and the read is logged.
    payer = approval.claim_detail(actor(db, "street_approver"), claim.id, engine=db)
    assert payer.actions == ["pay", "reject"] and payer.full_payment_detail == account
    leader = approval.claim_detail(actor(db, "street_leader"), claim.id, engine=db)
    assert leader.full_payment_detail is None and account not in repr(leader)
    with read_session(db) as s:
        assert s.exec(select(AccessLog.what).where(
            AccessLog.user_id == _user_id(db, "street_approver"))).all() == ["payment_detail"]


# ---------------------------------------------------------------- the pages


def test_the_claim_page_shows_restricted_evidence_only_to_a_permitted_approver(sqlite_db):
    claim = _tip(sqlite_db)
    at = open_page("district_approver", "pages/rewards.py", claim=str(claim.id))
    shown = everything(at)
    assert not at.exception and "内容保密" in shown
    for secret in ("3栋地下室有人聚赌", "红星路12号3栋", "已整改", "13977777777", "139****7777",
                   "7777"):
        assert secret not in shown, secret
    assert t("rewards.barred.restricted", "zh") in shown
    assert not [b for b in at.button if "批准" in str(b.label)]  # nothing to press
    with read_session(sqlite_db) as s:
        assert s.exec(select(AccessLog)).all() == []
    _privileged(sqlite_db, "vice_approver_1")
    at = open_page("vice_approver_1", "pages/rewards.py", claim=str(claim.id))
    shown = everything(at)
    assert not at.exception
    assert "3栋地下室有人聚赌" in shown and "红星路12号3栋" in shown and "已整改" in shown
    assert "7777" not in shown  # the claimant is still known by the claim and the case code
    with read_session(sqlite_db) as s:
        assert s.exec(select(AccessLog.user_id, AccessLog.what)).all() == [
            (_user_id(sqlite_db, "vice_approver_1"), "reward_evidence")]


def test_the_approval_queue_and_ledger_pages_show_no_restricted_reporter(sqlite_db):
    claim = _tip(sqlite_db)
    _privileged(sqlite_db, "vice_approver_1")
    queue = everything(open_page("vice_approver_1", "pages/rewards.py"))
    assert _code(sqlite_db, claim) in queue and "7777" not in queue and "保密" in queue
    for reader in ("street_leader", "district_leader", "vice_approver_1"):
        at = open_page(reader, "pages/reward_ledger.py")
        shown = everything(at)
        assert not at.exception and _code(sqlite_db, claim) in shown, reader
        assert "7777" not in shown and "1234" not in shown, reader


def _code(db, claim: RewardClaim) -> str:
    return get(db, claim.case_id).code


def test_the_admin_records_a_staff_phone_on_the_users_page(sqlite_db):
    at = open_page("admin", "pages/admin_users.py")
    form = "admin_users_phone"
    at.selectbox(key="admin_users_phone_user").select(
        next(u for u in at.selectbox(key="admin_users_phone_user").options
             if u.startswith("street_approver ")))
    at.text_input(key="admin_users_phone_value").input("139 0000 12")
    at.button(key=f"FormSubmitter:{form}-保存").click().run()
    assert not at.exception and [e.value for e in at.error] == [t("error.phone_invalid", "zh")]
    with read_session(sqlite_db) as s:
        assert s.exec(select(User.phone).where(User.username == "street_approver")).one() == \
            "19900000005"  # the demo's, unchanged
    at.text_input(key="admin_users_phone_value").input("+86 139-0000-1234")
    at.button(key=f"FormSubmitter:{form}-保存").click().run()
    assert not at.exception and "13900001234" in everything(at)
    with read_session(sqlite_db) as s:
        assert s.exec(select(User.phone).where(User.username == "street_approver")).one() == \
            "13900001234"
