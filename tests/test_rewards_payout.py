"""Approved claims are not a dead end: the 待发放 list holds what an approver may pay, a batch
payout pays only the ticked claims at the versions their approver saw and says per claim why
one was not paid, the payment reference is a fact of the pay move; the approval list searches
and sorts; the ledger reads the month of approval or payout; its workbook keeps numbers and
dates as such — on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlmodel import select

from lib.core.clock import china
from lib.core.db import read_session, write_session
from lib.core.errors import NotFound, PermissionDenied, ValidationFailed
from lib.core.i18n import name, t
from lib.core.models import utcnow
from lib.org import auth
from lib.rewards import approval, pools
from lib.rewards.models import RewardClaim, RewardEvent, RewardPayout
from tests.factories import STREET, actor, app, closed_case, move, new_case
from tests.test_rewards_separation import (
    OTHER_STREET,
    _claimed,
    _decide,
    _privileged,
    _tip,
    _user,
    _user_id,
)

LABEL = {"lang_name": lambda r: name(r, "zh"), "label": lambda k: t(k, "zh")}


def _approved(db, *, by: str = "street_approver", **fields) -> RewardClaim:
    claim = _claimed(db, closed_case(db, **fields))
    return _decide(db, by, claim.id, "approve")


def _state(db, claim_id: int) -> str:
    with read_session(db) as s:
        return s.get(RewardClaim, claim_id).state


def _to_pay(db, username: str, **params) -> list[int]:
    rows, total = approval.payout_queue(actor(db, username), engine=db, **params)
    assert total == len(rows)
    return [r.id for r in rows]


# ---------------------------------------------------------------- the 待发放 list


def test_the_to_pay_list_holds_the_approved_claims_this_approver_may_pay(db):
    first, second = _approved(db), _approved(db)
    waiting = _claimed(db, closed_case(db))  # still to decide: not in the payout list
    theirs = _claimed(db, closed_case(db, community="510104002001", by="staff_510104002001"))
    _decide(db, "district_approver", theirs.id, "approve")
    tip = _tip(db)
    vice = _privileged(db, "vice_approver_1")
    _decide(db, vice, tip.id, "approve")
    _decide(db, _privileged(db, "vice_approver_2"), tip.id, "second_approve")

    assert _to_pay(db, "street_approver") == [first.id, second.id]  # approved longest ago first
    assert _to_pay(db, "street_approver", sort="newest") == [second.id, first.id]
    assert approval.to_pay_count(actor(db, "street_approver"), engine=db) == 2
    assert waiting.id in [r.id for r in approval.approval_queue(
        actor(db, "street_approver"), engine=db)[0]]
    # The district sees its streets' approved claims, the restricted tip only with the permission.
    assert set(_to_pay(db, "district_approver")) == {first.id, second.id, theirs.id}
    assert tip.id in _to_pay(db, vice) and tip.id not in _to_pay(db, "district_approver")
    rows, _ = approval.payout_queue(actor(db, vice), engine=db)
    shown = {r.id: r for r in rows}
    assert (shown[tip.id].reporter, shown[tip.id].payment_detail) == (None, None)  # 保密
    assert shown[first.id].payment_detail == "****3445"  # masked, never in full in a list
    # Nothing for someone who is not an approver.
    with pytest.raises(PermissionDenied):
        approval.payout_queue(actor(db, "street_leader"), engine=db)
    assert approval.to_pay_count(actor(db, "street_leader"), engine=db) == 0


def test_an_approver_who_acted_on_the_case_is_not_offered_its_payout(db):
    clerk = _user(db, "clerk_approver", STREET, ("street_staff", "reward_approver"))
    case = new_case(db)
    move(db, "community01", case.id, "accept")
    move(db, clerk, case.id, "supervise", note="请尽快处置")  # 督办: a hand in the case
    for action, params in (("take", {}), ("handle", {"note": "已整改"}), ("verify", {}),
                           ("close", {})):
        move(db, "community01", case.id, action, **params)
    claim = _claimed(db, case)
    claim = _decide(db, "street_approver", claim.id, "approve")
    assert claim.id in _to_pay(db, "street_approver")
    assert claim.id not in _to_pay(db, clerk)
    outcome = approval.batch_pay(actor(db, clerk), {claim.id: claim.version}, reference="B-1",
                                 engine=db)
    assert (outcome.paid, outcome.refused) == ([], [(claim.id, "rewards.barred.acted")])
    assert _state(db, claim.id) == "approved"


# ---------------------------------------------------------------- batch payout


def test_a_batch_pays_only_the_ticked_claims_at_the_versions_seen_and_says_why_not(db):
    claims = [_approved(db) for _ in range(5)]
    seen = {c.id: c.version for c in claims}
    # Since the list was drawn: another approver rejected one, and paid another.
    _decide(db, "district_approver", claims[1].id, "reject", reason="fraud", note="重复上报")
    _decide(db, "district_approver", claims[2].id, "pay", reference="OTHER-1")
    ticked = {i: seen[i] for i in (claims[0].id, claims[1].id, claims[2].id, claims[3].id)}
    outcome = approval.batch_pay(actor(db, "street_approver"), ticked, reference=" BATCH-20261203 ",
                                 engine=db)
    assert outcome.paid == [claims[0].id, claims[3].id] and outcome.paid_fen == 10000
    assert dict(outcome.refused) == {claims[1].id: "rewards.refused.changed",
                                     claims[2].id: "rewards.refused.changed"}
    assert _state(db, claims[4].id) == "approved"  # not ticked: untouched
    with read_session(db) as s:
        payouts = {p.claim_id: p for p in s.exec(select(RewardPayout)).all()}
        assert {i: p.reference for i, p in payouts.items()} == {
            claims[0].id: "BATCH-20261203", claims[2].id: "OTHER-1", claims[3].id: "BATCH-20261203"}
        pay_events = s.exec(select(RewardEvent).where(RewardEvent.action == "pay")
                            .order_by(RewardEvent.id)).all()
        assert [(e.claim_id, e.detail["reference"]) for e in pay_events] == [
            (claims[2].id, "OTHER-1"), (claims[0].id, "BATCH-20261203"),
            (claims[3].id, "BATCH-20261203")]
    # Ticked at a version now current but no longer approved: said so.
    with read_session(db) as s:
        now = {c.id: s.get(RewardClaim, c.id).version for c in claims[1:3]}
    outcome = approval.batch_pay(actor(db, "street_approver"), now, reference="B-2", engine=db)
    assert dict(outcome.refused) == {claims[1].id: "rewards.refused.not_to_pay",
                                     claims[2].id: "rewards.refused.not_to_pay"}


def test_a_batch_payout_takes_a_reference_per_claim_or_one_for_all(db):
    first, second = _approved(db), _approved(db)
    outcome = approval.batch_pay(actor(db, "street_approver"),
                                 {first.id: first.version, second.id: second.version},
                                 reference="", references={first.id: "R-1", second.id: "R-2"},
                                 engine=db)
    assert outcome.paid == [first.id, second.id]
    with read_session(db) as s:
        assert {p.claim_id: p.reference for p in s.exec(select(RewardPayout)).all()} == {
            first.id: "R-1", second.id: "R-2"}


@pytest.mark.parametrize("reference", ["", "   ", "\u200b", "x" * 61, "B-1\nB-2", "B\x00"])
def test_a_batch_payout_without_a_good_reference_writes_nothing(db, reference):
    claim = _approved(db)
    with pytest.raises(ValidationFailed):
        approval.batch_pay(actor(db, "street_approver"), {claim.id: claim.version},
                           reference=reference, engine=db)
    assert _state(db, claim.id) == "approved"
    with pytest.raises(ValidationFailed):  # nothing ticked
        approval.batch_pay(actor(db, "street_approver"), {}, reference="B-1", engine=db)
    # More than a page of the list, or an id that is no number: nothing is paid.
    too_many = {claim.id: claim.version} | {10 ** 6 + i: 1 for i in range(approval.PAGE_SIZE)}
    with pytest.raises(ValidationFailed):
        approval.batch_pay(actor(db, "street_approver"), too_many, reference="B-1", engine=db)
    with pytest.raises(NotFound):
        approval.batch_pay(actor(db, "street_approver"), {claim.id: claim.version},
                           references={"1 OR 1=1": "B-2"}, reference="B-1", engine=db)
    assert _state(db, claim.id) == "approved"


def test_a_batch_payout_refuses_another_street_a_staff_report_and_a_leader(db):
    mine = _approved(db)
    staff = _approved(db, phone="13900007777")
    auth.set_phone(actor(db, "admin"), user_id=_user_id(db, "street01"), phone="13900007777",
                   engine=db)
    other = _user(db, "other_street_approver", OTHER_STREET, ("reward_approver",))
    outcome = approval.batch_pay(actor(db, other), {mine.id: mine.version}, reference="B-1",
                                 engine=db)
    assert outcome.refused == [(mine.id, "error.claim_not_found")]
    outcome = approval.batch_pay(actor(db, "street_approver"),
                                 {staff.id: staff.version, mine.id: mine.version},
                                 reference="B-1", engine=db)
    assert (outcome.paid, outcome.refused) == ([mine.id], [(staff.id, "rewards.staff_report")])
    with pytest.raises(PermissionDenied):
        approval.batch_pay(actor(db, "street_leader"), {staff.id: staff.version},
                           reference="B-1", engine=db)


def test_the_single_pay_form_keeps_its_reference_in_the_events_facts(db):
    claim = _approved(db)
    _decide(db, "street_approver", claim.id, "pay", reference="RCPT-77")
    with read_session(db) as s:
        event = s.exec(select(RewardEvent).where(RewardEvent.claim_id == claim.id,
                                                 RewardEvent.action == "pay")).one()
    assert event.detail["reference"] == "RCPT-77"


# ---------------------------------------------------------------- the approval list


def test_the_approval_list_finds_a_claim_by_case_code_or_reporter_and_sorts_both_ways(db):
    first = _claimed(db, closed_case(db, phone="13712345601"))
    second = _claimed(db, closed_case(db, phone="13712345602"))
    tip = _tip(db, phone="13712345603")
    vice = _privileged(db, "vice_approver_1")
    with read_session(db) as s:
        code = s.exec(text('SELECT code FROM "case" WHERE id = :i'),
                      params={"i": second.case_id}).one()[0]

    def found(who: str, **params) -> list[int]:
        return [r.id for r in approval.approval_queue(actor(db, who), engine=db, **params)[0]]

    assert found("street_approver") == [first.id, second.id]
    assert found("street_approver", sort="newest") == [second.id, first.id]
    assert found("street_approver", text=code) == [second.id]
    assert found("street_approver", text=code.lower()[-6:]) == [second.id]
    assert found("street_approver", text="5601") == [first.id]
    assert found("street_approver", text="137-1234-5602") == [second.id]
    # Only the digits the mask shows (137****5602) are searched: a guess at a hidden digit
    # learns nothing, so the list never gives a whole number away.
    assert found("street_approver", text="05601") == found("street_approver", text="95601") \
        == [first.id]
    assert found("street_approver", text="13799995602") == [second.id]
    assert found("street_approver", text="13812345602") == []
    # A restricted tip's reporter is never found by phone, only by its case code.
    assert tip.id in found(vice) and found(vice, text="5603") == []
    with read_session(db) as s:
        tip_code = s.exec(text('SELECT code FROM "case" WHERE id = :i'),
                          params={"i": tip.case_id}).one()[0]
    assert found(vice, text=tip_code) == [tip.id]
    # Too few digits, wildcards and SQL match nothing by accident.
    for hostile in ("560", "%", "_", "' OR 1=1--"):
        assert found("street_approver", text=hostile) == [], hostile
    assert found("street_approver", text="\x00\x07") == [first.id, second.id]  # no text at all
    with pytest.raises(ValidationFailed):
        found("street_approver", sort="sideways")


# ---------------------------------------------------------------- the ledger


def _month_ago() -> datetime:
    return utcnow() - timedelta(days=40)


def test_the_ledger_finds_a_claim_by_the_month_it_was_approved_or_paid(db):
    """Eligible and approved last month, paid this month: the month of eligibility shows it
    only last month, the approval's last month, the payout's this month."""
    earlier = _month_ago()
    claim = _claimed(db, closed_case(db))
    with write_session(db) as s:
        s.exec(text("UPDATE reward_claim SET created_at = :t WHERE id = :i"),
               params={"t": earlier - timedelta(days=1), "i": claim.id})
    with read_session(db) as s:
        version = s.get(RewardClaim, claim.id).version
    approval.decide(actor(db, "street_approver"), claim.id, "approve", version=version,
                    now=earlier, engine=db)
    fresh = _approved(db)  # eligible, approved and waiting this month
    this, last = pools.month_of(utcnow()), pools.month_of(earlier)

    def ids(month: str, dated: str) -> set[int]:
        return {r["id"] for r in approval.ledger_rows(
            actor(db, "street_leader"), approval.LedgerFilter(month=month, dated=dated),
            engine=db, **LABEL)}

    assert ids(this, "created") == {fresh.id} and ids(last, "created") == {claim.id}
    assert ids(this, "approval") == {fresh.id} and ids(last, "approval") == {claim.id}
    assert ids(this, "payout") == set()
    _decide(db, "street_approver", claim.id, "pay", reference="B-9")
    assert ids(this, "payout") == {claim.id} and ids(last, "payout") == set()
    row = next(r for r in approval.ledger_rows(actor(db, "street_leader"), engine=db, **LABEL)
               if r["id"] == claim.id)
    assert pools.month_of(row["approved_at"]) == last and pools.month_of(row["paid_at"]) == this
    with pytest.raises(ValidationFailed):
        approval.ledger_rows(actor(db, "street_leader"),
                             approval.LedgerFilter(month=this, dated="whenever"), engine=db,
                             **LABEL)


def test_the_ledger_workbook_keeps_numbers_dates_a_frozen_header_and_a_filter(db):
    claim = _approved(db)
    _decide(db, "street_approver", claim.id, "pay", reference="=HYPERLINK(\"x\")")
    _approved(db)
    month = pools.month_of(utcnow())
    chosen = approval.LedgerFilter(month=month, dated="approval")
    data = approval.export(actor(db, "street_leader"), chosen, fmt="xlsx", engine=db, **LABEL)
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:R{sheet.max_row}" and sheet.max_row == 3
    header = [c.value for c in sheet[1]]
    rows = {r[0].value: dict(zip(header, r, strict=True)) for r in sheet.iter_rows(min_row=2)}
    paid = rows[claim.id]
    assert paid["金额（元）"].value == 50 and paid["金额（元）"].number_format == "#,##0.00"
    for column in ("资格认定时间", "批准时间", "发放时间"):
        cell = paid[column]
        assert isinstance(cell.value, datetime) and cell.number_format == "yyyy-mm-dd hh:mm"
    with read_session(db) as s:
        paid_at = s.exec(select(RewardPayout.paid_at)).one()
    # China time, as every page shows it (Excel has no time zones).
    assert abs(paid["发放时间"].value - china(paid_at).replace(tzinfo=None)) < timedelta(seconds=1)
    assert paid["凭证号"].value.startswith("'")  # a formula stays text
    unpaid = next(r for i, r in rows.items() if i != claim.id)
    assert unpaid["发放时间"].value is None
    csv_text = approval.export(actor(db, "street_leader"), chosen, fmt="csv", engine=db,
                               **LABEL).decode("utf-8-sig")
    assert ",50.00," in csv_text and "¥" not in csv_text


def test_every_export_file_name_carries_the_unit_and_the_period(db):
    month = pools.month_of(utcnow())
    for who, unit in (("street_leader", "春熙路街道"), ("district_approver", "锦江区")):
        for fmt in ("csv", "xlsx"):
            named = approval.export_name(actor(db, who), approval.LedgerFilter(
                month=month, dated="payout"), fmt=fmt, engine=db, **LABEL)
            assert named == f"奖励台账_{unit}_{month}_发放.{fmt}"
    assert approval.export_name(actor(db, "street_leader"), approval.LedgerFilter(), fmt="csv",
                                engine=db, **LABEL) == "奖励台账_春熙路街道_全部.csv"
    with pytest.raises(ValidationFailed):
        approval.export_name(actor(db, "street_leader"), approval.LedgerFilter(), fmt="exe",
                             engine=db, **LABEL)


def test_an_approver_with_claims_to_pay_has_a_home_tile_that_opens_them(sqlite_db):
    """On the home page: 待审批奖励 as before, and 待发放奖励 with its count once a claim is
    approved, opening the approval page on its 待发放 list."""
    from tests.test_links import tiles

    assert tiles(app("street_approver")) == {t("rewards.tile"): ("rewards", {})}
    _approved(sqlite_db)
    at = app("street_approver")
    assert tiles(at) == {t("rewards.tile"): ("rewards", {}),
                         t("rewards.tile_to_pay"): ("rewards", {"tab": "to_pay"})}
    counts = {m.label: m.value for m in at.metric}
    assert counts.get(t("rewards.tile_to_pay")) == "1"
