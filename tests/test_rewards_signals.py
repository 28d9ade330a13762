"""Discovery-reward fraud signals and figures: a crowd at one place, a reporter whose reports are
mostly rejected, a photo copied from an earlier case — each raised by the smallest data that
should raise it and not by its near miss; batch approval leaving a signalled claim alone; the
per-unit reward figures of a month, counted by hand; and a rejection note full of Markdown and
HTML shown on the approval page as the characters typed. Lib-level tests run on SQLite and
PostgreSQL."""

from __future__ import annotations

import io
import itertools
import re
from datetime import datetime, timedelta

from PIL import Image
from sqlmodel import select

from lib.cases.intake import Report, create_case
from lib.cases.models import Case
from lib.cases.photos import Photo, check_photo
from lib.core.db import read_session, write_session
from lib.core.models import Category
from lib.core.workcal import CHINA_TZ
from lib.org import auth
from lib.org.units import find_unit
from lib.rewards import approval, figures, pools, rules, signals
from lib.rewards.models import ClaimState, RewardClaim, RewardEvent, RewardPool
from tests.factories import COMMUNITY, NEIGHBOUR, actor, everything, move, open_page, unit_id
from tests.test_rewards import _claimed, _open

OTHER_COMMUNITY = "510104002001"  # in the neighbouring street 510104002
_doors = itertools.count(1)


def at(day: int, hour: int = 12, month: int = 3, minute: int = 0, second: int = 0) -> datetime:
    """A moment of 2025 in China time (reward months are China-time months)."""
    return datetime(2025, month, day, hour, minute, second, tzinfo=CHINA_TZ)


def _photo(colour: str, *, dot: bool = False) -> Photo:
    """A small photo as intake stores it (re-encoded); ``dot``: one pixel differs."""
    image = Image.new("RGB", (48, 32), colour)
    if dot:
        image.putpixel((5, 5), (0, 0, 0))
    data = io.BytesIO()
    image.save(data, format="PNG")
    return check_photo(data.getvalue(), max_bytes=10_000_000, max_pixels=10_000_000)


def _report(db, when: datetime, *, phone: str | None, address: str | None = None,
            category: str = "fire", community: str = COMMUNITY, photos: tuple = ()) -> Case:
    """A resident's report at ``when`` through lib, at an address of its own unless given."""
    with write_session(db) as s:
        category_id = s.exec(select(Category.id).where(Category.key == category)).one()
        return create_case(s, Report(category_id=category_id, subcategory_id=None,
                                     description="楼道堆放杂物，堵住消防通道",
                                     address=address or f"锦江路{next(_doors)}号",
                                     community_id=find_unit(s, community).id, reporter_phone=phone,
                                     reporter_name="王小二", photos=list(photos)),
                           actor=None, now=when, client_address=f"signals-{next(_doors)}")


def _valid(db, case: Case, *, by: str = "community01", until: str = "close") -> Case:
    """The case taken on, handled and verified (and closed, unless ``until`` says verify)."""
    for action, params in (("accept", {}), ("take", {}), ("handle", {"note": "已整改"}),
                           ("verify", {}), ("close", {})):
        case = move(db, by, case.id, action, **params)
        if action == until:
            break
    return case


def _rejected(db, case: Case, *, by: str = "community01") -> Case:
    return move(db, by, case.id, "reject", note="无此问题")


def _signals(db, case: Case) -> list[str]:
    with read_session(db) as s:
        claim = s.exec(select(RewardClaim).where(RewardClaim.case_id == case.id)).one()
        return signals.signals_of(s, claim)


# ---------------------------------------------------------------- the signals


def test_crowded_place_needs_three_phones_at_one_place_within_a_day(db):
    base = at(10)
    day = signals.WINDOW
    claimed = {}
    # A: three phones, the others exactly 24 hours before and after (the window includes both).
    claimed["A"] = _report(db, base, phone="13910000001", address="锦江路甲1号")
    _report(db, base - day, phone="13910000002", address="锦江路甲1号")
    _report(db, base + day, phone="13910000003", address="锦江路甲1号")
    # B: the third phone a second too late; B2: a second too early.
    claimed["B"] = _report(db, base, phone="13910000004", address="锦江路甲2号")
    _report(db, base - timedelta(hours=1), phone="13910000005", address="锦江路甲2号")
    _report(db, base + day + timedelta(seconds=1), phone="13910000006", address="锦江路甲2号")
    claimed["B2"] = _report(db, base, phone="13910000015", address="锦江路甲6号")
    _report(db, base + timedelta(hours=1), phone="13910000016", address="锦江路甲6号")
    _report(db, base - day - timedelta(seconds=1), phone="13910000017", address="锦江路甲6号")
    # C: three reports but two phones (one phone reported twice).
    claimed["C"] = _report(db, base, phone="13910000007", address="锦江路甲3号")
    _report(db, base + timedelta(hours=1), phone="13910000008", address="锦江路甲3号")
    _report(db, base + timedelta(hours=2), phone="13910000008", address="锦江路甲3号")
    # D: the third phone reported another category at the same address.
    claimed["D"] = _report(db, base, phone="13910000009", address="锦江路甲4号")
    _report(db, base + timedelta(hours=1), phone="13910000010", address="锦江路甲4号")
    _report(db, base + timedelta(hours=1), phone="13910000011", address="锦江路甲4号",
            category="dogs")
    # E: the third phone gave the same address in the neighbouring community.
    claimed["E"] = _report(db, base, phone="13910000012", address="锦江路甲5号")
    _report(db, base + timedelta(hours=1), phone="13910000013", address="锦江路甲5号")
    _report(db, base + timedelta(hours=1), phone="13910000014", address="锦江路甲5号",
            community=NEIGHBOUR)
    for case in claimed.values():
        _valid(db, case)
    assert _open(db) == 6
    assert {place: _signals(db, case) for place, case in claimed.items()} == {
        "A": ["crowded_place"], "B": [], "B2": [], "C": [], "D": [], "E": []}


def test_often_rejected_needs_four_reports_half_of_them_rejected(db):
    base = at(20)

    def history(phone: str, *, rejected: int, other: int) -> Case:
        """``rejected`` and ``other`` (open) earlier reports three days apart (never two in a
        day), then the valid report that earns the claim."""
        when = base
        for kind in ["other"] * other + ["rejected"] * rejected:
            when -= timedelta(days=3)
            case = _report(db, when, phone=phone)
            if kind == "rejected":
                _rejected(db, case)
        return _valid(db, _report(db, base, phone=phone))

    half = history("13920000001", rejected=2, other=1)  # 2 of 4 rejected: exactly half
    few = history("13920000002", rejected=2, other=0)  # 2 of 3: a larger share, too few reports
    under = history("13920000003", rejected=2, other=2)  # 2 of 5: under half
    assert _open(db) == 3
    assert (_signals(db, half), _signals(db, few), _signals(db, under)) == (
        ["often_rejected"], [], [])


def test_copied_photo_flags_the_later_case_and_not_the_original(db):
    original = _valid(db, _report(db, at(8), phone="13930000001", photos=(_photo("red"),)))
    copy = _valid(db, _report(db, at(10), phone="13930000002", photos=(_photo("red"),)))
    # Looks the same to the eye, but one pixel differs: not byte-identical.
    lookalike = _valid(db, _report(db, at(10), phone="13930000003",
                                   photos=(_photo("red", dot=True),)))
    other = _valid(db, _report(db, at(11), phone="13930000004", photos=(_photo("blue"),)))
    assert _open(db) == 4
    assert [_signals(db, c) for c in (original, copy, lookalike, other)] == [
        [], ["copied_photo"], [], []]


def _handled_with(db, case: Case, photo: Photo) -> Case:
    """The case taken on and handled with ``photo`` as its result, then verified and closed."""
    for action, params in (("accept", {}), ("take", {}),
                           ("handle", {"note": "已整改", "photos": [photo]}),
                           ("verify", {}), ("close", {})):
        case = move(db, "community01", case.id, action, **params)
    return case


def test_a_handlers_result_photo_never_flags_the_reporter_but_copying_one_does(db):
    stock = _photo("gray")
    first = _handled_with(db, _report(db, at(8), phone="13930000011"), stock)
    # The handler reuses the same photo on a later case the resident sent no photo with.
    later = _handled_with(db, _report(db, at(10), phone="13930000012"), stock)
    # A resident sends the result photo published on the first case's tracking page.
    copier = _valid(db, _report(db, at(11), phone="13930000013", photos=(stock,)))
    assert _open(db) == 3
    assert [_signals(db, c) for c in (first, later, copier)] == [[], [], ["copied_photo"]]


# ---------------------------------------------------------------- batch approval


def test_batch_approval_skips_a_signalled_claim_and_takes_a_clean_small_one(db):
    _report(db, at(9), phone="13940000001", photos=(_photo("green"),))  # still open: no claim
    copied = _valid(db, _report(db, at(10), phone="13940000002", photos=(_photo("green"),)))
    clean = _valid(db, _report(db, at(10), phone="13940000003"))
    # An ordinary large award (a restricted category's goes only to permitted approvers).
    rules.set_rule(actor(db, "admin"), category_id=None, severity="major", amount="2000", engine=db)
    large = _valid(db, _report(db, at(10), phone="13940000004", category="dogs"))
    with write_session(db) as s:  # as triage would judge it: ¥2,000, above the ¥500 threshold
        s.get(Case, large.id).severity = "major"
    assert _open(db) == 3
    claims = {name: _claimed(db, case, method="cash", detail="")
              for name, case in (("copied", copied), ("clean", clean), ("large", large))}
    assert claims["large"].amount_fen == 200000
    rows, _ = approval.approval_queue(actor(db, "street_approver"), engine=db)
    assert {r.id: (r.signals, r.clean) for r in rows} == {
        claims["copied"].id: (["copied_photo"], False), claims["clean"].id: ([], True),
        claims["large"].id: ([], False)}

    done, refused = approval.batch_approve(
        actor(db, "street_approver"), [(c.id, c.version) for c in claims.values()], engine=db)
    assert (done, refused) == (1, [(claims["copied"].id, "error.reward_not_clean"),
                                   (claims["large"].id, "error.reward_not_clean")])
    with read_session(db) as s:
        after = {name: s.get(RewardClaim, c.id) for name, c in claims.items()}
        assert {name: c.state for name, c in after.items()} == {
            "copied": "pending", "clean": "approved", "large": "pending"}
        assert after["copied"].version == claims["copied"].version  # not touched at all
        assert after["clean"].first_approver_id == actor(db, "street_approver").id
        assert s.exec(select(RewardEvent.claim_id).where(RewardEvent.action == "approve")).all() \
            == [claims["clean"].id]
        assert [p.committed_fen for p in s.exec(select(RewardPool)).all()] == [5000]


# ---------------------------------------------------------------- figures


def _claim(db, case: Case, state: str, fen: int, created: datetime,
           reason: str | None = None) -> None:
    """A claim row as the machine would have left it (the figures read only these columns)."""
    with write_session(db) as s:
        row = s.get(Case, case.id)
        s.add(RewardClaim(case_id=row.id, reporter_key=row.reporter_phone,
                          reporter_phone=row.reporter_phone, community_id=row.community_id,
                          street_id=row.street_id, district_id=row.district_id,
                          category_id=row.category_id, amount_fen=fen, state=state, reason=reason,
                          created_at=created, updated_at=created))


def _month(month: str) -> tuple[datetime, datetime]:
    start = pools.month_start_of(month)
    return start, pools.next_month_start(start)


def _figures(db, column: str, month: str, scope=None) -> list[tuple]:
    with read_session(db) as s:
        return [(f.unit_id, f.claims, f.awarded_fen, f.paid_fen, f.rejections, f.resident_reports,
                 f.valid_reports, f.valid_ratio)
                for f in figures.by_unit(s, column, *_month(month), scope=scope)]


def test_reward_figures_per_unit_and_month_are_counted_exactly(db):
    C = ClaimState
    phones = (f"139500{n:05d}" for n in itertools.count(1))

    def report(when: datetime, community: str = COMMUNITY) -> Case:
        return _report(db, when, phone=next(phones), community=community)

    by = {COMMUNITY: "community01", NEIGHBOUR: "staff_510104001002",
          OTHER_COMMUNITY: "staff_510104002001"}

    def valid(when: datetime, community: str = COMMUNITY, until: str = "close") -> Case:
        return _valid(db, report(when, community), by=by[community], until=until)

    # Community 1, March: seven residents' reports, four of them valid (closed).
    _claim(db, valid(at(2)), C.paid, 5000, at(5))
    _claim(db, valid(at(3)), C.approved, 2000, at(6))
    _claim(db, valid(at(4)), C.rejected, 3000, at(7), reason="fraud")
    _claim(db, valid(at(5)), C.rejected, 1000, at(8), reason="fraud")
    _rejected(db, report(at(6)))
    report(at(7))  # still open
    report(at(31, 23, minute=59))  # the last minute of March, China time
    with write_session(db) as s:  # a grid worker's own report is not a resident's
        create_case(s, Report(category_id=s.exec(select(Category.id).where(Category.key == "fire")).one(),
                              subcategory_id=None, description="巡查发现灭火器过期", address="红星路8号",
                              community_id=find_unit(s, COMMUNITY).id, source="grid_worker"),
                    actor=auth.actor_by_username(s, "grid01"), now=at(9))
    # Community 2, March: four reports, three valid (one verified, not yet closed).
    _claim(db, valid(at(10), NEIGHBOUR), C.approved_once, 60000, at(12))
    _rejected(db, report(at(11), NEIGHBOUR), by=by[NEIGHBOUR])
    _claim(db, valid(at(12), NEIGHBOUR), C.rejected, 500, at(13), reason="over_cap")
    _claim(db, valid(at(13), NEIGHBOUR, until="verify"), C.ineligible, 0, at(14),
           reason="not_first")
    # The neighbouring street, March: one report, one approved claim.
    _claim(db, valid(at(14), OTHER_COMMUNITY), C.approved, 700, at(15))
    # April: community 1 has a report of April's first moment and a claim on a February case;
    # community 2 a paid claim created at April's first moment and no report at all.
    report(at(1, 0, month=4))
    _claim(db, valid(at(27, month=2)), C.pending, 800, at(2, month=4))
    _claim(db, valid(at(20, month=2), NEIGHBOUR), C.paid, 1000, at(1, 0, month=4))
    # Community 1 in the last hour of February (China time): February's, not March's.
    _claim(db, valid(at(28, 23, month=2)), C.paid, 9000, at(28, 23, month=2))

    one, two, other = unit_id(db, COMMUNITY), unit_id(db, NEIGHBOUR), unit_id(db, OTHER_COMMUNITY)
    street, other_street = unit_id(db, "510104001"), unit_id(db, "510104002")
    assert _figures(db, "community_id", "2025-03") == sorted([
        # unit, claims, awarded, paid, rejections, reports, valid, ratio
        (one, 4, 7000, 5000, {"fraud": 2}, 7, 4, 4 / 7),
        (two, 3, 60000, 0, {"over_cap": 1}, 4, 3, 3 / 4),
        (other, 1, 700, 0, {}, 1, 1, 1.0)])
    assert _figures(db, "street_id", "2025-03") == [
        (street, 7, 67000, 5000, {"fraud": 2, "over_cap": 1}, 11, 7, 7 / 11),
        (other_street, 1, 700, 0, {}, 1, 1, 1.0)]
    assert _figures(db, "community_id", "2025-04") == sorted([
        (one, 1, 0, 0, {}, 1, 0, 0.0),
        (two, 1, 1000, 1000, {}, 0, 0, None)])  # no report: no ratio, not 0 %
    assert _figures(db, "community_id", "2025-05") == []  # an empty month
    assert _figures(db, "community_id", "2025-03", scope=lambda m: m.street_id == other_street) == [
        (other, 1, 700, 0, {}, 1, 1, 1.0)]


# ---------------------------------------------------------------- the pages

HOSTILE = "**x** <img src=x onerror=alert(1)> [y](http://example.com)"
RENDERING = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error",
             "success")


def _rendered(at) -> list[str]:
    """What the page sends to Markdown-rendering elements, backslash escapes taken out."""
    return [re.sub(r"\\.", "", str(e.value)) for kind in RENDERING for e in getattr(at, kind)]


def test_a_rejection_note_with_markdown_and_html_shows_as_typed(sqlite_db):
    case = _valid(sqlite_db, _report(sqlite_db, at(10), phone="13960001234"))
    _open(sqlite_db)
    claim = _claimed(sqlite_db, case, method="cash", detail="")
    at_ = open_page("street_approver", "pages/rewards.py", claim=str(claim.id))
    at_.radio(key="claim_form_reject_reason").set_value("other")
    at_.text_area(key="claim_form_reject_note").input(HOSTILE)
    at_.button(key="FormSubmitter:claim_form_reject-驳回").click().run()
    assert not at_.exception and "已办理。" in [m.value for m in at_.success]
    with read_session(sqlite_db) as s:
        assert s.get(RewardClaim, claim.id).state == "rejected"
        assert s.exec(select(RewardEvent.note).where(RewardEvent.claim_id == claim.id,
                                                     RewardEvent.action == "reject")).one() == HOSTILE

    at_.query_params["claim"] = str(claim.id)
    at_.run()
    assert not at_.exception
    notes = [cell for frame in at_.dataframe for column in frame.value.columns
             if column == "说明" for cell in frame.value[column]]
    assert HOSTILE in notes  # the claim's timeline: a table cell, as typed
    for shown in _rendered(at_):  # and nowhere as a bold word, an image or a link
        assert "**x**" not in shown and "<img" not in shown and "](" not in shown

    ledger = open_page("street_leader", "pages/reward_ledger.py")
    assert not ledger.exception and case.code in everything(ledger)
    assert "其他" in everything(ledger)  # the reason's label; the note stays on the claim
    for shown in _rendered(ledger):
        assert "**x**" not in shown and "<img" not in shown and "](" not in shown
