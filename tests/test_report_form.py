"""The report forms as their users meet them (AppTest), and the intake rules behind them: a
grid worker starts at her own community and is not shown the residents' privacy note, residents
are not asked for a severity (the case starts at its category's default), a point from the
browser or typed by hand is checked by lib, and a bad one stores nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func
from sqlmodel import select

from lib.cases import intake
from lib.cases.models import Case
from lib.core.db import read_session
from lib.core.errors import PermissionDenied, ValidationFailed
from lib.core.i18n import t
from lib.core.models import Severity
from tests.factories import (
    COMMUNITY,
    actor,
    app,
    category_id,
    choose_place,
    everything,
    open_page,
    unit_id,
)

PRIVACY_NOTE = t("report.privacy", "zh")
SEVERITY = "紧急程度"
GAS = "燃气设施"  # its default severity is major (data/categories.json)
SUBMIT = "FormSubmitter:{prefix}_form-提交"


def _cases(engine) -> list[Case]:
    with read_session(engine) as s:
        return list(s.exec(select(Case).order_by(Case.id)).all())


def _count(engine) -> int:
    with read_session(engine) as s:
        return s.exec(select(func.count()).select_from(Case)).one()


def _fill(at, *, description: str, address: str, phone: str | None = None) -> None:
    at.text_area[0].input(description)
    inputs = {w.label: w for w in at.text_input}
    inputs["详细地址 *"].input(address)
    if phone is not None:
        inputs["联系电话 *（用于查询和回访，不会公开）"].input(phone)


def _choose(at, key: str, label: str):
    box = at.selectbox(key=key)
    return box.select_index(list(box.options).index(label)).run()


# ---------------------------------------------------------------- the grid worker's form


def test_a_grid_worker_starts_at_her_own_community(sqlite_db):
    at = open_page("grid01", "pages/staff_report.py")
    assert not at.exception
    assert at.selectbox(key="staff_report_community").value[0].id == unit_id(sqlite_db, COMMUNITY)


def test_her_own_community_is_picked_out_of_all_of_them(sqlite_db):
    with read_session(sqlite_db) as s:
        everywhere = intake.intake_options(s, None).communities
    assert len(everywhere) > 40
    grid = actor(sqlite_db, "grid01")
    assert intake.default_community(grid, everywhere) == grid.unit_id == unit_id(sqlite_db, COMMUNITY)
    assert intake.default_community(None, everywhere) is None


def test_street_staff_choose_the_community_themselves(sqlite_db):
    street = actor(sqlite_db, "street01")
    form = intake.intake_form(street, sqlite_db)
    assert len(form.options.communities) > 1
    assert intake.default_community(street, form.options.communities) is None
    at = open_page("street01", "pages/staff_report.py")
    assert not at.exception and at.selectbox(key="staff_report_community").value is None
    _fill(at, description="楼道堆放杂物", address="红星路2号")
    at.button(key=SUBMIT.format(prefix="staff_report")).click().run()
    assert [e.value for e in at.error] == ["请填写必填项：所在社区。"]
    assert _count(sqlite_db) == 0


def test_the_staff_form_has_no_residents_privacy_note_and_the_public_form_has(sqlite_db):
    staff = open_page("grid01", "pages/staff_report.py")
    assert PRIVACY_NOTE not in everything(staff)
    assert t("report.staff_privacy", "zh") in everything(staff)
    public = open_page(None, "pages/report.py")
    assert PRIVACY_NOTE in everything(public)


def test_a_grid_worker_reports_with_neither_severity_nor_source_to_choose(sqlite_db):
    at = open_page("grid01", "pages/staff_report.py")
    labels = [w.label for w in at.selectbox]
    assert SEVERITY not in labels and "来源" not in labels
    at = _choose(at, "staff_report_category", GAS)
    _fill(at, description="北门燃气管被三轮车压住", address="红星路一段35号院北门")
    at.button(key=SUBMIT.format(prefix="staff_report")).click().run()
    assert not at.exception and not at.error
    [case] = _cases(sqlite_db)
    assert (case.source, case.severity, case.community_id, case.reported_by_id) == (
        "grid_worker", "major", unit_id(sqlite_db, COMMUNITY), actor(sqlite_db, "grid01").id)


def test_community_staff_judge_severity_as_they_report_starting_at_the_default(sqlite_db):
    at = open_page("community01", "pages/staff_report.py")
    at = _choose(at, "staff_report_category", GAS)
    box = next(w for w in at.selectbox if w.label == SEVERITY)
    assert box.value == "major"
    box.set_value("urgent")
    _fill(at, description="北门燃气管漏气，有明显气味", address="红星路一段35号院北门")
    at.button(key=SUBMIT.format(prefix="staff_report")).click().run()
    assert not at.exception and not at.error
    assert [c.severity for c in _cases(sqlite_db)] == ["urgent"]


# ---------------------------------------------------------------- the resident's form


def test_the_public_form_asks_no_severity_and_the_case_gets_the_categorys_default(sqlite_db):
    at = open_page(None, "pages/report.py")
    assert SEVERITY not in [w.label for w in at.selectbox]
    at = choose_place(at, category=GAS)
    _fill(at, description="楼下燃气管道锈得厉害", address="红星路2号", phone="13812345678")
    at.button(key=SUBMIT.format(prefix="report")).click().run()
    assert not at.exception and not at.error
    at = choose_place(open_page(None, "pages/report.py"), category="不文明养犬")
    _fill(at, description="小区里有狗不拴绳", address="红星路3号", phone="13812345679")
    at.button(key=SUBMIT.format(prefix="report")).click().run()
    assert [(c.source, c.severity) for c in _cases(sqlite_db)] == [
        ("resident", "major"), ("resident", "general")]


def test_only_triaging_staff_may_give_a_report_a_severity(db):
    report = intake.Report(category_id=category_id(db, "dogs"), community_id=unit_id(db, COMMUNITY),
                           description="小区里有狗不拴绳", address="红星路3号", severity="urgent",
                           reporter_phone="13812345678")
    for who in (None, actor(db, "grid01")):
        with pytest.raises(PermissionDenied) as refused:
            intake.submit(db, actor=who, report=report, submit_key=f"k-{who}")
        assert refused.value.key == "error.severity_by_triage"
    assert _count(db) == 0
    case = intake.submit(db, actor=actor(db, "community01"), report=report, submit_key="k").case
    assert (case.severity, case.source) == ("urgent", "resident")


def test_every_category_has_a_known_default_severity():
    rows = json.loads(intake.CATEGORIES_FILE.read_text(encoding="utf-8"))
    defaults = intake.default_severities()
    assert set(defaults) == {row["key"] for row in rows}
    assert set(defaults.values()) <= {s.value for s in Severity}
    assert defaults["gas"] == "major" and defaults["dogs"] == "general"


# ---------------------------------------------------------------- the map point


def test_use_my_location_draws_and_does_nothing_where_components_do_not_run(sqlite_db):
    at = open_page("grid01", "pages/staff_report.py")
    at.button(key="staff_report_locate").click().run()
    assert not at.exception
    assert t("report.locating", "zh") in [c.value for c in at.caption]
    assert at.text_input(key="staff_report_latitude").value == ""


@pytest.mark.parametrize("lat, lon", [("91", "104.06"), ("30.66", "204"), ("-30.66", "104.06"),
                                      ("30.66", "1e400")])
def test_coordinates_out_of_range_give_a_clear_message_and_store_nothing(sqlite_db, lat, lon):
    at = open_page("grid01", "pages/staff_report.py")
    _fill(at, description="楼道堆放杂物", address="红星路2号")
    at.text_input(key="staff_report_latitude").input(lat)
    at.text_input(key="staff_report_longitude").input(lon)
    at.button(key=SUBMIT.format(prefix="staff_report")).click().run()
    assert [e.value for e in at.error] == [
        "坐标无效：纬度应在 3 到 54 之间，经度应在 73 到 136 之间（中国境内）。"]
    assert not at.exception and _count(sqlite_db) == 0


def test_the_message_is_in_the_users_language(sqlite_db):
    at = app()
    at.session_state["lang"] = at.query_params["lang"] = "en"
    at = at.switch_page("pages/report.py").run()
    at.text_area[0].input("Boxes block the stairwell")
    inputs = {w.label: w for w in at.text_input}
    inputs["Address *"].input("Hongxing Rd 2")
    inputs["Phone * (to follow the case and for our call-back; never shown publicly)"].input(
        "13812345678")
    at.text_input(key="report_latitude").input("30.66")
    at.text_input(key="report_longitude").input("10.0")
    at.button(key="FormSubmitter:report_form-Submit").click().run()
    assert [e.value for e in at.error] == [
        "Invalid map point: latitude must be between 3 and 54 and longitude between 73 and 136 "
        "(inside China)."]
    assert _count(sqlite_db) == 0


@pytest.mark.parametrize("answer", [
    None, "30.66,104.06", {}, {"error": {"code": 1, "message": "User denied Geolocation"}},
    {"coords": {"latitude": None, "longitude": None}},
    {"coords": {"latitude": "30.66", "longitude": "104.06"}},
    {"coords": {"latitude": True, "longitude": 104.06}}])
def test_a_browser_answer_without_a_usable_point_is_refused(answer):
    with pytest.raises(ValidationFailed):
        intake.point_from_browser(answer)


def test_a_browser_point_is_checked_like_a_typed_one():
    here = {"coords": {"latitude": 30.6600004, "longitude": 104.06, "accuracy": 12}}
    assert intake.point_from_browser(here) == (30.66, 104.06)
    with pytest.raises(ValidationFailed) as refused:
        intake.point_from_browser({"coords": {"latitude": 48.85, "longitude": 2.35}})  # Paris
    assert refused.value.key == "error.point_outside"
    assert intake.point_from_text("  ", "") == (None, None)
    for lat, lon in (("30.66", ""), ("abc", "104"), ("nan", "104.06")):
        with pytest.raises(ValidationFailed):
            intake.point_from_text(lat, lon)


def test_a_point_from_the_browser_fills_the_boxes_and_is_stored(sqlite_db, monkeypatch):
    """The component answers in a real browser only; here its answer is given to the form."""
    monkeypatch.setattr("lib.ui.report_form.browser_location",
                        lambda key: {"coords": {"latitude": 30.6570123, "longitude": 104.0660456}})
    at = open_page("grid01", "pages/staff_report.py")
    at.button(key="staff_report_locate").click().run()
    assert not at.exception
    assert (at.text_input(key="staff_report_latitude").value,
            at.text_input(key="staff_report_longitude").value) == ("30.657012", "104.066046")
    _fill(at, description="楼道堆放杂物", address="红星路2号")
    at.button(key=SUBMIT.format(prefix="staff_report")).click().run()
    [case] = _cases(sqlite_db)
    assert (case.latitude, case.longitude) == (30.657012, 104.066046)


def test_a_refused_location_says_so_and_fills_nothing(sqlite_db, monkeypatch):
    monkeypatch.setattr("lib.ui.report_form.browser_location",
                        lambda key: {"error": {"code": 1, "message": "User denied Geolocation"}})
    at = open_page("grid01", "pages/staff_report.py")
    at.button(key="staff_report_locate").click().run()
    assert [e.value for e in at.error] == [t("error.location_unavailable", "zh")]
    assert at.text_input(key="staff_report_latitude").value == ""
    assert _count(sqlite_db) == 0
