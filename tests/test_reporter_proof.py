"""Only the reporter can act as the reporter: nothing a staff member can read (a masked or full
phone, the code, an export) opens a case, rates it or claims its reward; codes sent by SMS are
bound to one purpose, expire, work once and leave no copy; a resident whose report joined
another case sees their own report and nothing of the other."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from itertools import count

import pytest
from sqlmodel import select

from lib.cases import tracking
from lib.cases.detail import events_of
from lib.cases.intake import Report, submit
from lib.cases.ledger import export as ledger_export
from lib.cases.models import Attachment, Case, Notice, ReporterCode
from lib.cases.queue import Filters
from lib.core import settings
from lib.core.db import read_session, write_session
from lib.core.errors import NotFound, Throttled, ValidationFailed
from lib.core.i18n import name, t
from lib.core.models import utcnow
from lib.rewards import approval, eligibility
from lib.rewards import tracking as rewards
from lib.rewards.approval import LedgerFilter
from lib.rewards.models import RewardClaim
from tests.factories import (
    COMMUNITY,
    SmsCapture,
    actor,
    category_id,
    closed_case,
    everything,
    get,
    move,
    new_case,
    open_page,
    sms_code,
    unit_id,
)

PHONE = "13977777777"
_addresses = count(1)


def _address() -> str:
    return f"198.51.100.{next(_addresses) % 250}-{next(_addresses)}"


def _claimable(db) -> Case:
    case = closed_case(db, phone=PHONE, name="刘群众")
    with write_session(db) as s:
        eligibility.open_claims(s, everything=True)
    return case


def _claim(db, case_id: int) -> RewardClaim:
    with read_session(db) as s:
        return s.exec(select(RewardClaim).where(RewardClaim.case_id == case_id)).one()


def _staff_material(db, case: Case) -> str:
    """Everything the staff who may see this case read about it: the handling community's case
    page (with the full phone), its queue, the district's ledger and its export, the reward
    approval page, the reward ledger and its export."""
    shown = []
    for username, path, query in (
            ("community01", "pages/case.py", {"id": str(case.id)}),
            ("community01", "pages/queue.py", {"tab": "closed"}),
            ("district_leader", "pages/ledger.py", {}),
            ("street_approver", "pages/rewards.py", {}),
            ("street_leader", "pages/reward_ledger.py", {})):
        at = open_page(username, path, **query)
        assert not at.exception, (username, path)
        shown.append(everything(at))
    label = lambda key: t(key, "zh")  # noqa: E731
    lang_name = lambda row: name(row, "zh")  # noqa: E731
    shown.append(ledger_export(actor(db, "district_leader"), Filters(), fmt="csv",
                               lang_name=lang_name, label=label, engine=db).decode("utf-8-sig"))
    shown.append(approval.export(actor(db, "street_leader"), LedgerFilter(), fmt="csv",
                                 lang_name=lang_name, label=label, engine=db)
                 .decode("utf-8-sig"))
    return "\n".join(shown)


def _candidates(material: str) -> set[str]:
    """Every 4- and 6-digit run a staff member could read off what they see: each window of
    every run of digits (so the full phone, its masked form and the code's digits too)."""
    out = set()
    for run in re.findall(r"\d{4,}", material):
        for size in (4, 6):
            out.update(run[i:i + size] for i in range(len(run) - size + 1))
    return out


def test_nothing_a_staff_member_sees_opens_rates_or_claims_a_residents_case(sqlite_db):
    """A leader reads a case's code and the reporter's phone (masked, or in full at the
    handling unit) off every page and export staff have; no string of digits in all of it
    shows the case, claims its reward or rates it."""
    case = _claimable(sqlite_db)
    assert _claim(sqlite_db, case.id).state == "eligible"
    material = _staff_material(sqlite_db, case)
    assert case.code in material and PHONE in material  # the handler sees the whole phone
    assert "139****7777" in material  # and others its mask
    candidates = _candidates(material) | {PHONE[-4:], PHONE[-6:]}
    assert {"7777", "777777"} <= candidates
    version = get(sqlite_db, case.id).version
    claim_version = _claim(sqlite_db, case.id).version
    with settings.overriding({"tracking.failures_per_code": 10 ** 6,  # every guess evaluated
                              "tracking.failures_per_address": 10 ** 6}):
        for guess in sorted(candidates):
            with pytest.raises(NotFound):
                tracking.track(sqlite_db, case.code, guess, client_address="203.0.113.5")
            with pytest.raises(NotFound):
                rewards.claim_reward(sqlite_db, code=case.code, proof=guess, method="bank",
                                     payment_detail="6222020200112233445", version=claim_version,
                                     client_address="203.0.113.5")
            with pytest.raises(NotFound):
                tracking.rate(sqlite_db, code=case.code, proof=guess, rating="satisfied",
                              version=version, client_address="203.0.113.5")
        assert _claim(sqlite_db, case.id).state == "eligible"
        assert get(sqlite_db, case.id).rating is None
        # The reporter, with the code sent to their phone, claims it.
        claimed = rewards.claim_reward(sqlite_db, code=case.code,
                                       proof=sms_code(sqlite_db, case.code, "claim"), method="bank",
                                       payment_detail="6222020200112233445", version=claim_version)
        assert claimed.state == "pending"


def test_a_code_is_bound_to_its_purpose_expires_and_works_once(db):
    case = _claimable(db)
    view_code = sms_code(db, case.code)
    claim_code = sms_code(db, case.code, "claim")
    seen = tracking.track(db, case.code, view_code)
    assert seen.by_sms and seen.can_rate
    assert tracking.track(db, case.code, view_code).code == case.code  # viewing: again and again
    version = _claim(db, case.id).version
    for wrong in (view_code, sms_code(db, case.code, "rate")):  # a code for another purpose
        with pytest.raises(NotFound):
            rewards.claim_reward(db, code=case.code, proof=wrong, method="cash", payment_detail="",
                                 version=version)
    late = utcnow() + tracking.code_ttl("claim") + timedelta(seconds=1)
    with pytest.raises(NotFound):  # expired
        rewards.claim_reward(db, code=case.code, proof=claim_code, method="cash",
                             payment_detail="", version=version, now=late)
    with pytest.raises(ValidationFailed):  # a refused move does not spend the code
        rewards.claim_reward(db, code=case.code, proof=claim_code, method="bank",
                             payment_detail="", version=version)
    claimed = rewards.claim_reward(db, code=case.code, proof=claim_code, method="cash",
                                   payment_detail="", version=version)
    assert claimed.state == "pending"
    with read_session(db) as s:
        used = s.exec(select(ReporterCode).where(ReporterCode.case_id == case.id,
                                                 ReporterCode.purpose == "claim")).all()
    assert [r.used_at is not None for r in used] == [True]
    # Used: the same code rates nothing either (it was for claiming, and it is spent).
    rating_version = get(db, case.id).version
    with pytest.raises(NotFound):
        tracking.rate(db, code=case.code, proof=claim_code, rating="satisfied",
                      version=rating_version)


def test_the_sms_leaves_at_once_and_no_copy_of_the_code_stays(db):
    case = new_case(db, phone=PHONE)
    sms = SmsCapture()
    tracking.send_code(db, case.code, "view", client_address="192.0.2.1", gateway=sms)
    [(notice_id, phone, text)] = sms.sent
    digits = re.search(r"验证码 (\d{6})", text).group(1)
    assert phone == PHONE and case.code in text and "工作人员不会向您索要验证码" in text
    with read_session(db) as s:
        notice = s.get(Notice, notice_id)
        stored = s.exec(select(ReporterCode).where(ReporterCode.case_id == case.id)).one()
    assert (notice.state, notice.kind) == ("sent", "code")
    assert digits not in (notice.body or "") and digits not in stored.code_hash
    assert tracking.track(db, case.code, digits).code == case.code


def test_asking_for_a_code_tells_nothing_and_is_throttled(db):
    """Same answer for a case with a phone, one without, and no case; five codes an hour for
    one tracking code, however many addresses ask."""
    assert settings.get_int(None, "tracking.codes_per_case") == 5
    with_phone = new_case(db, phone=PHONE)
    without = new_case(db, category="dogs", phone=None, name=None, anonymous=True, pin="246810")
    sms = SmsCapture()
    for code in (with_phone.code, without.code, "NOSUCHCODE"):
        assert tracking.send_code(db, code, "view", client_address=_address(), gateway=sms) is None
    assert [p for _, p, _ in sms.sent] == [PHONE]
    for _ in range(4):
        tracking.send_code(db, with_phone.code, "view", client_address=_address(), gateway=sms)
    with pytest.raises(Throttled) as err:
        tracking.send_code(db, with_phone.code, "view", client_address=_address(), gateway=sms)
    assert err.value.key == "error.code_throttled"
    assert len(sms.sent) == 5
    with pytest.raises(ValidationFailed):
        tracking.send_code(db, with_phone.code, "steal", client_address=_address(), gateway=sms)


def test_a_phone_less_report_proves_every_move_with_its_pin(db):
    case = closed_case(db, category="dogs", phone=None, name=None, anonymous=True, pin="135790")
    assert tracking.track(db, case.code, "135790").can_rate
    rated = tracking.rate(db, code=case.code, proof="135790", rating="satisfied",
                          version=get(db, case.id).version)
    assert rated.rating == "satisfied"


def test_a_residents_pin_views_but_does_not_move_a_case_with_a_phone(db):
    """Every public report gets a PIN on its receipt; with a phone it opens the status only."""
    receipt = submit(db, actor=None, report=Report(
        category_id=category_id(db, "fire"), community_id=unit_id(db, COMMUNITY),
        description="楼道堆放杂物", address="红星路9号", reporter_phone=PHONE),
        submit_key="proof-pin-1", client_address="192.0.2.44")
    assert receipt.pin is not None and len(receipt.pin) == 6
    case = receipt.case
    assert tracking.track(db, case.code, receipt.pin).code == case.code
    with pytest.raises(NotFound):
        tracking.hurry(db, code=case.code, proof=receipt.pin, version=case.version)
    staff = submit(db, actor=actor(db, "grid01"), report=Report(
        category_id=category_id(db, "fire"), community_id=unit_id(db, COMMUNITY),
        description="楼道堆放杂物", address="红星路10号", reporter_phone="13911112222",
        source="grid_worker"), submit_key="proof-pin-2")
    assert staff.pin is None  # staff would otherwise know a secret of the resident's


@pytest.mark.parametrize("attempts", [40])
def test_concurrent_wrong_proofs_are_counted_before_they_are_judged(db, monkeypatch, attempts):
    """Forty wrong proofs on one code at once: five are judged, the rest are throttled."""
    case = new_case(db, phone=PHONE)
    judged = []
    real = tracking._proof_ok

    def counting(*args, **kwargs):
        judged.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(tracking, "_proof_ok", counting)
    answers: list[str] = []
    start = threading.Barrier(attempts)

    def guess(i: int) -> None:
        start.wait()
        try:
            tracking.track(db, case.code, f"{i:06d}", client_address=f"10.9.{i}.1")
        except Exception as err:
            answers.append(type(err).__name__)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(judged) == 5
    assert sorted(answers) == ["NotFound"] * 5 + ["Throttled"] * (attempts - 5)


def test_one_claim_code_used_twice_at_once_claims_once(db):
    case = _claimable(db)
    code = sms_code(db, case.code, "claim")
    version = _claim(db, case.id).version
    results: list[str] = []
    start = threading.Barrier(2)

    def claim(detail: str) -> None:
        start.wait()
        try:
            rewards.claim_reward(db, code=case.code, proof=code, method="bank",
                                 payment_detail=detail, version=version, client_address=detail)
            results.append("claimed")
        except Exception as err:
            results.append(type(err).__name__)

    threads = [threading.Thread(target=claim, args=(d,))
               for d in ("6222020200112233445", "6222020200998877665")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("claimed") == 1
    assert _claim(db, case.id).state == "pending"


# ---------------------------------------------------------------- a report that joined another


def _joined(db):
    """Resident A's case, handled with a result and a photo and rated by A; resident B's
    report of the same problem merged into it."""
    first = new_case(db, phone="13911110000", address="红星路5号")
    second = new_case(db, phone="13922220000", address="红星路5号")
    move(db, "community01", second.id, "merge", merge_into=first.code)
    for action, params in (("accept", {}), ("take", {}),
                           ("handle", {"note": "已约谈业主王大锤(13812345678)，杂物已清"})):
        move(db, "community01", first.id, action, **params)
    with write_session(db) as s:
        s.add(Attachment(case_id=first.id, kind="result", mime="image/jpeg", size=3,
                         sha256="x" * 64, data=b"\xff\xd8\xff", created_at=utcnow()))
    tracking.rate(db, code=first.code, proof=sms_code(db, first.code, "rate"),
                  rating="basically_satisfied", version=get(db, first.id).version)
    return get(db, first.id), get(db, second.id)


def test_a_joined_report_shows_its_own_progress_and_nothing_of_the_other(db):
    first, second = _joined(db)
    view = tracking.track(db, second.code, sms_code(db, second.code))
    assert view.joined and view.code == second.code and view.case_id == second.id
    assert view.state == "handled" and view.reported_at == second.reported_at
    assert (view.result, view.result_photos, view.rating) == (None, [], None)
    assert first.code not in repr(view) and "王大锤" not in repr(view)
    with read_session(db) as s:
        own = [(e.at, e.action) for e in events_of(s, second.id)]
    assert view.timeline == own and view.timeline[0] == (second.reported_at, "report")
    assert view.can_rate and not view.can_hurry


def test_a_joined_reporter_rates_through_their_own_report(db):
    first, second = _joined(db)
    view = tracking.track(db, second.code, sms_code(db, second.code))
    rated = tracking.rate(db, code=second.code, proof=sms_code(db, second.code, "rate"),
                          rating="dissatisfied", reason="楼道里还有杂物", version=view.version)
    assert (rated.id, rated.state, rated.rating) == (second.id, "merged", "dissatisfied")
    again = tracking.track(db, second.code, sms_code(db, second.code))
    assert (again.rating, again.can_rate) == ("dissatisfied", False)
    # The other reporter's case and rating stay as they were.
    assert (get(db, first.id).state, get(db, first.id).rating) == ("handled",
                                                                   "basically_satisfied")
    with read_session(db) as s:
        assert [e.action for e in events_of(s, second.id)][-1] == "rate_joined"


def test_a_proof_held_for_a_visit_moves_only_its_case_for_a_while_and_never_views(db):
    """A resident proves a move once (a code sent for rating) and the proof is held for the rest
    of a short visit: it rates, then claims, on that case only, never views a case, expires
    after tracking.held_minutes, and only its hash is kept. A PIN that only views a case with a
    phone is never held; a view code is never enough to hold."""
    now = utcnow()
    case = _claimable(db)
    other = closed_case(db, phone="13977776666", name="赵群众")
    held = tracking.hold(db, case.code, sms_code(db, case.code, "rate", now=now), "rate",
                         client_address=_address(), now=now)
    assert held.code == case.code and held.holds(case.code, now) and not held.holds(other.code, now)
    assert held.token not in repr(held)
    with read_session(db) as s:
        stored = s.exec(select(ReporterCode).where(ReporterCode.purpose == tracking.HELD)).all()
    assert [r.case_id for r in stored] == [case.id] and held.token not in stored[0].code_hash
    with pytest.raises(NotFound):  # a held proof views nothing
        tracking.track(db, case.code, held, now=now)
    with pytest.raises(NotFound):  # nor moves another case
        tracking.rate(db, code=other.code, proof=held, rating="satisfied",
                      version=get(db, other.id).version, now=now)
    forged = tracking.Held(other.code, held.token, held.expires_at)
    with pytest.raises(NotFound):
        tracking.rate(db, code=other.code, proof=forged, rating="satisfied",
                      version=get(db, other.id).version, now=now)
    rated = tracking.rate(db, code=case.code, proof=held, rating="satisfied",
                          version=get(db, case.id).version, now=now + timedelta(minutes=1))
    assert rated.rating == "satisfied"
    claimed = rewards.claim_reward(db, code=case.code, proof=held, method="cash",
                                   payment_detail=None, version=_claim(db, case.id).version,
                                   now=now + timedelta(minutes=14))
    assert claimed.state == "pending"
    # After tracking.held_minutes, the proof is asked for again.
    assert settings.get_int(None, "tracking.held_minutes") == 15
    late = now + timedelta(minutes=15, seconds=1)
    assert not held.holds(case.code, late)
    with pytest.raises(NotFound):
        tracking.rate(db, code=other.code, proof=tracking.Held(case.code, held.token,
                                                               late + timedelta(hours=1)),
                      rating="satisfied", version=get(db, other.id).version, now=late)
    # Neither a view code nor a case with a phone viewed by its PIN holds a proof for moves.
    with pytest.raises(NotFound):
        tracking.hold(db, other.code, sms_code(db, other.code), "rate", now=now)
    receipt = submit(db, actor=None, report=Report(
        category_id=category_id(db, "fire"), community_id=unit_id(db, COMMUNITY),
        description="楼道堆放杂物", address="红星路11号", reporter_phone="13966665555"),
        submit_key="proof-held-1", client_address="192.0.2.45")
    assert tracking.track(db, receipt.case.code, receipt.pin, hold=True).held is None
    with pytest.raises(NotFound):
        tracking.hold(db, receipt.case.code, receipt.pin, "hurry")


def test_nothing_a_staff_member_sees_holds_a_proof(sqlite_db):
    """Every digit run a staff member could read off their pages tried as a held proof's
    token, and as a proof to hold: none moves the case."""
    case = _claimable(sqlite_db)
    material = _staff_material(sqlite_db, case)
    far = utcnow() + timedelta(minutes=10)
    with settings.overriding({"tracking.failures_per_code": 10 ** 6,  # every guess evaluated
                              "tracking.failures_per_address": 10 ** 6}):
        for guess in sorted(_candidates(material) | {PHONE, PHONE[-4:], PHONE[-6:], case.code}):
            with pytest.raises(NotFound):
                tracking.rate(sqlite_db, code=case.code, proof=tracking.Held(case.code, guess, far),
                              rating="satisfied", version=get(sqlite_db, case.id).version)
            # A guess without a digit (the case code, at times) is no proof at all.
            with pytest.raises((NotFound, ValidationFailed)):
                tracking.hold(sqlite_db, case.code, guess, "rate")
    assert get(sqlite_db, case.id).rating is None
    with read_session(sqlite_db) as s:
        assert s.exec(select(ReporterCode).where(ReporterCode.purpose == tracking.HELD)).all() == []
