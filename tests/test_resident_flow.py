"""What residents stumbled on, as they meet it (AppTest) and as lib decides it: nothing chosen
for them on the report form, the phone's location choosing the community it lies in, a receipt
that says whether an SMS will follow, 催办 offered only once a case is late or a day old, an
empty proof box answered as such, and one proof per visit for the moves on a case."""

from __future__ import annotations

import random
import shutil
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func
from sqlmodel import select

from lib.cases import intake, tracking
from lib.cases.models import Case
from lib.core import settings
from lib.core.db import read_session, write_session
from lib.core.errors import ValidationFailed
from lib.core.i18n import t
from lib.core.models import ThrottleHit
from lib.org import geo
from lib.rewards import eligibility
from tests.factories import (
    COMMUNITY,
    NEIGHBOUR,
    PHONE,
    category_id,
    choose_place,
    closed_case,
    everything,
    get,
    move,
    new_case,
    open_page,
    sms_code,
    unit_id,
)

SUBMIT = "FormSubmitter:report_form-提交"
LOOKUP = "FormSubmitter:track_lookup-查询"
HURRY = "FormSubmitter:track_hurry-催办"
HURRY_TITLE = "办理太慢？可以催办"


def _cases(engine) -> int:
    with read_session(engine) as s:
        return s.exec(select(func.count()).select_from(Case)).one()


def _track_hits(engine) -> int:
    with read_session(engine) as s:
        return s.exec(select(func.count()).select_from(ThrottleHit)
                      .where(ThrottleHit.kind == "track", ThrottleHit.counted)).one()


def _inside(code: str) -> tuple[float, float]:
    """A point (lat, lon) inside the community's boundary in the demo district's file."""
    feature = next(f for f in geo.load_boundaries("510104")["features"]
                   if f["properties"]["code"] == code)
    lon, lat = geo.random_point(feature, random.Random(7))
    return round(lat, 6), round(lon, 6)


def _located_at(monkeypatch, latitude: float, longitude: float):
    """The phone's browser answers the location request with this point (components do not
    run in AppTest)."""
    monkeypatch.setattr("lib.ui.report_form.browser_location",
                        lambda key: {"coords": {"latitude": latitude, "longitude": longitude}})
    at = open_page(None, "pages/report.py")
    at.button(key="report_locate").click().run()
    assert not at.exception
    return at


def _captions(at) -> list[str]:
    return [c.value for c in at.caption]


# ---------------------------------------------------------------- the report form


def test_nothing_is_chosen_for_a_resident_and_every_missing_field_is_named_at_once(sqlite_db):
    at = open_page(None, "pages/report.py")
    assert at.selectbox(key="report_category").value is None
    assert at.selectbox(key="report_community").value is None
    at.button(key=SUBMIT).click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "请填写必填项：问题类别、所在社区、问题描述、详细地址、联系电话。"]
    assert _cases(sqlite_db) == 0
    with pytest.raises(ValidationFailed) as err:
        intake.submit(sqlite_db, actor=None, submit_key="k1", report=intake.Report(
            category_id=None, community_id=None, description="楼道堆物", address="红星路2号",
            reporter_phone=PHONE))
    assert err.value.params == {"fields": ["category", "community"]}


def test_the_location_chooses_the_community_it_lies_in_and_the_resident_may_change_it(
        sqlite_db, monkeypatch):
    latitude, longitude = _inside(NEIGHBOUR)
    at = _located_at(monkeypatch, latitude, longitude)
    chosen = at.selectbox(key="report_community").value
    assert chosen is not None and chosen[0].code == NEIGHBOUR
    name = chosen[0].name_zh
    assert t("report.located_in", "zh", community=name) in _captions(at)
    assert (at.text_input(key="report_latitude").value,
            at.text_input(key="report_longitude").value) == (str(latitude), str(longitude))
    # The resident knows better: another community stays chosen, the point stays.
    at = choose_place(at, community="红星路社区")
    assert at.selectbox(key="report_community").value[0].code == COMMUNITY
    at.text_area[0].input("楼道堆放杂物")
    inputs = {w.label: w for w in at.text_input}
    inputs["详细地址 *"].input("红星路2号")
    inputs["联系电话 *（用于查询和回访，不会公开）"].input(PHONE)
    at.button(key=SUBMIT).click().run()
    assert not at.exception and not at.error
    with read_session(sqlite_db) as s:
        case = s.exec(select(Case)).one()
    assert (case.latitude, case.longitude) == (latitude, longitude)
    assert case.community_id == unit_id(sqlite_db, COMMUNITY)  # as the resident chose


def test_a_point_outside_every_boundary_chooses_nothing_and_says_so(sqlite_db, monkeypatch):
    at = _located_at(monkeypatch, 30.2, 103.5)  # in China, outside the district
    assert at.selectbox(key="report_community").value is None
    assert t("report.located_outside", "zh") in _captions(at)
    assert at.text_input(key="report_latitude").value == "30.2"


def test_the_boundaries_name_the_community_holding_a_point_and_none_outside():
    for code in (COMMUNITY, NEIGHBOUR, "510104002001"):
        latitude, longitude = _inside(code)
        assert geo.community_at(longitude, latitude) == code
    assert geo.community_at(103.5, 30.2) is None
    assert intake.community_at(None, None, []) is None


def test_a_broken_boundaries_file_beside_a_good_one_is_skipped(tmp_path):
    """A file someone dropped into data/geo/ by mistake never fails a resident's tap."""
    shutil.copy(geo.GEO_DIR / "510104.geojson", tmp_path / "510104.geojson")
    (tmp_path / "510105.geojson").write_text("{not json", encoding="utf-8")
    (tmp_path / "notes.geojson").write_text("{}", encoding="utf-8")
    latitude, longitude = _inside(COMMUNITY)
    assert geo.community_at(longitude, latitude, tmp_path) == COMMUNITY
    (tmp_path / "510104.geojson").write_text('{"type": "Feature"}', encoding="utf-8")
    assert geo.community_at(longitude, latitude, tmp_path) is None  # read again once changed


def test_the_receipt_says_an_sms_follows_only_when_a_phone_was_given(sqlite_db):
    sms_line = t("report.sms_follows", "zh")
    at = choose_place(open_page(None, "pages/report.py"))
    at.text_area[0].input("楼道堆放杂物")
    inputs = {w.label: w for w in at.text_input}
    inputs["详细地址 *"].input("红星路2号")
    inputs["联系电话 *（用于查询和回访，不会公开）"].input(PHONE)
    at.button(key=SUBMIT).click().run()
    assert not at.exception and sms_line in [i.value for i in at.info]

    at = choose_place(open_page(None, "pages/report.py"), category="不文明养犬")
    at.checkbox[0].check()  # anonymous: no name, no phone
    at.text_area[0].input("小区里有狗不拴绳")
    {w.label: w for w in at.text_input}["详细地址 *"].input("红星路3号")
    at.button(key=SUBMIT).click().run()
    assert not at.exception and t("report.thanks", "zh") in [s.value for s in at.success]
    assert sms_line not in everything(at)


# ---------------------------------------------------------------- 催办


def test_hurry_is_offered_a_set_time_after_the_report_or_once_the_deadline_is_missed(db):
    now = datetime.now(timezone.utc)
    case = new_case(db, phone=PHONE, now=now)
    view = tracking.track(db, case.code, sms_code(db, case.code, now=now), now=now)
    assert not view.can_hurry
    assert view.hurry_from == get(db, case.id).reported_at.replace(tzinfo=timezone.utc) \
        + timedelta(hours=24)
    with pytest.raises(ValidationFailed) as err:
        tracking.hurry(db, code=case.code, proof=sms_code(db, case.code, "hurry", now=now),
                       version=view.version, now=now)
    assert err.value.key == "error.cannot_hurry" and get(db, case.id).hurry_count == 0
    later = now + timedelta(hours=24, minutes=1)
    assert tracking.track(db, case.code, sms_code(db, case.code, now=later), now=later).can_hurry
    with settings.overriding({"cases.hurry_after_hours": 2}):
        soon = now + timedelta(hours=2, minutes=1)
        assert tracking.track(db, case.code, sms_code(db, case.code, now=soon), now=soon).can_hurry
    # A missed deadline offers it at once, however young the report.
    with write_session(db) as s:
        s.get(Case, case.id).sign_due_at = now + timedelta(minutes=30)
    past_due = now + timedelta(hours=1)
    view = tracking.track(db, case.code, sms_code(db, case.code, now=past_due), now=past_due)
    assert view.can_hurry and view.hurry_from is None


def test_the_tracking_page_offers_no_hurry_minutes_after_the_report_and_says_when(sqlite_db):
    case = new_case(sqlite_db, phone=PHONE)
    at = open_page(None, "pages/track.py")
    at.text_input(key="track_code_box").input(case.code)
    at.text_input[1].input(sms_code(sqlite_db, case.code))
    at.button(key=LOOKUP).click().run()
    assert not at.exception and at.metric
    assert HURRY_TITLE not in [m.value.strip("*") for m in at.markdown]
    assert any(c.startswith("如果到了办理期限还没办好，或在 ") for c in _captions(at))


# ---------------------------------------------------------------- the proof on the tracking page


def _tracked(engine, case: Case, proof: str | None = None):
    at = open_page(None, "pages/track.py")
    at.text_input(key="track_code_box").input(case.code)
    at.text_input[1].input(proof or sms_code(engine, case.code))
    at.button(key=LOOKUP).click().run()
    assert not at.exception
    return at


def test_an_empty_proof_box_asks_for_the_proof_and_looks_nothing_up(sqlite_db):
    case = new_case(sqlite_db, phone=PHONE, now=datetime.now(timezone.utc) - timedelta(hours=25))
    at = _tracked(sqlite_db, case)
    hits = _track_hits(sqlite_db)
    at.button(key=HURRY).click().run()
    assert not at.exception and not at.success
    assert [e.value for e in at.error] == ["请输入查询密码/验证码"]
    assert _track_hits(sqlite_db) == hits  # nothing looked up, nothing counted
    assert get(sqlite_db, case.id).hurry_count == 0
    with pytest.raises(ValidationFailed) as err:
        tracking.hold(sqlite_db, case.code, "  ", "hurry")
    assert err.value.key == "error.proof_required" and _track_hits(sqlite_db) == hits


def test_a_resident_proves_once_per_visit_to_rate_and_then_claim(sqlite_db):
    """The resident rates the result with a code sent for rating; the claim just below it in
    the same visit asks for no proof again, and goes through."""
    case = closed_case(sqlite_db, phone=PHONE)
    with write_session(sqlite_db) as s:
        eligibility.open_claims(s, everything=True)
    at = _tracked(sqlite_db, case)
    assert {w.key for w in at.text_input} >= {"track_rate_proof", "track_claim_proof"}
    at.radio(key="track_rate_rating").set_value("satisfied")
    at.text_input(key="track_rate_proof").input(sms_code(sqlite_db, case.code, "rate"))
    at.button(key="FormSubmitter:track_rate-提交评价").click().run()
    assert not at.exception and get(sqlite_db, case.id).rating == "satisfied"
    keys = {w.key for w in at.text_input}
    assert "track_claim_proof" not in keys and "track_rate_proof" not in keys
    assert t("track.proof_held", "zh", minutes=15) in _captions(at)
    next(r for r in at.radio if r.label == "领取方式").set_value("cash")
    at.button(key="FormSubmitter:track_claim-申领奖励").click().run()
    assert not at.exception and "已提交申领，审批后发放。" in [m.value for m in at.success]
    # Another visit (a new browser session) is asked again.
    again = _tracked(sqlite_db, case)
    assert "track_rate_proof" not in {w.key for w in again.text_input}  # rated: no form
    assert t("track.proof_held", "zh", minutes=15) not in _captions(again)


def test_a_phone_less_report_viewed_with_its_pin_moves_without_typing_it_again(sqlite_db):
    receipt = intake.submit(sqlite_db, actor=None, submit_key="pinless", report=intake.Report(
        category_id=category_id(sqlite_db, "dogs"), community_id=unit_id(sqlite_db, COMMUNITY),
        description="小区里有狗不拴绳", address="红星路3号", anonymous=True))
    case = receipt.case
    for action, params in (("accept", {}), ("take", {}), ("handle", {"note": "已劝导"})):
        move(sqlite_db, "community01", case.id, action, **params)
    at = _tracked(sqlite_db, case, receipt.pin)
    assert "track_rate_proof" not in {w.key for w in at.text_input}
    at.radio(key="track_rate_rating").set_value("basically_satisfied")
    at.button(key="FormSubmitter:track_rate-提交评价").click().run()
    assert not at.exception and get(sqlite_db, case.id).rating == "basically_satisfied"
