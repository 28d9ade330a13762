"""Pages through Streamlit's AppTest: each page as anonymous and as each demo role."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.tools import demo
from lib.ui.menu import PAGES
from tests.factories import app

APP = Path(__file__).resolve().parent.parent / "app.py"
ALL_PAGES = [p for p in PAGES if p.key != "home"]
STAFF_PAGES = [p for p in ALL_PAGES if not p.public]
PUBLIC_PAGES = [p for p in ALL_PAGES if p.public]
REFUSED_ANON = "请先登录后再访问此页面。"
REFUSED_ROLE = "您没有访问此页面的权限。"


def open_app() -> AppTest:
    return app()


def logged_in(username: str) -> AppTest:
    return app(username)


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("title", "warning", "error", "markdown", "caption")
             for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def test_anonymous_sees_the_chinese_login_form(sqlite_db):
    at = open_app()
    assert not at.exception
    assert at.title[0].value == "平安社区建设信息平台"
    assert [t.label for t in at.text_input] == ["用户名", "密码"]


@pytest.mark.parametrize("spec", PUBLIC_PAGES, ids=lambda p: p.key)
def test_anonymous_opens_the_public_pages(sqlite_db, spec):
    at = open_app().switch_page(spec.path).run()
    assert not at.exception
    assert REFUSED_ANON not in texts(at) and at.title[0].value


@pytest.mark.parametrize("spec", STAFF_PAGES, ids=lambda p: p.key)
def test_anonymous_is_refused_every_staff_page(sqlite_db, spec):
    at = open_app().switch_page(spec.path).run()
    assert not at.exception
    assert REFUSED_ANON in texts(at)


CASE_WORK = {"queue", "staff_report", "ledger", "case"}
READING = {"ledger", "case", "reward_ledger"}
APPROVING = {"rewards", "reward_ledger"}
KPI = {"kpi_overview", "kpi_rankings", "kpi_satisfaction", "kpi_closure", "kpi_flow", "kpi_map",
       "kpi_monitoring", "kpi_report"}
# What each demo account may open besides the public pages, written out by hand from the roles
# of the product's users (not derived from the app's own tables, which this checks).
STAFF_PAGES_BY_ACCOUNT = {
    "grid01": CASE_WORK, "community01": CASE_WORK | KPI, "street01": CASE_WORK | KPI,
    "district01": CASE_WORK | KPI, "district_privacy": CASE_WORK | KPI, "city01": CASE_WORK | KPI,
    "dept_police": {"queue", "ledger", "case"}, "dept_fire": {"queue", "ledger", "case"},
    "inspector01": {"staff_report", "ledger", "case"} | KPI,
    "community_leader": READING | KPI, "street_leader": READING | KPI,
    "district_leader": READING | KPI, "city_leader": READING | KPI,
    "street_approver": APPROVING, "district_approver": APPROVING,
    "vice_approver": APPROVING, "vice_reviewer": APPROVING,
    "admin": {"admin_users", "admin_org", "admin_categories", "admin_rewards"},
}


def test_every_demo_account_has_an_expected_page_list():
    assert set(STAFF_PAGES_BY_ACCOUNT) == {a.username for a in demo.DEMO_ACCOUNTS}


@pytest.mark.parametrize("account", demo.DEMO_ACCOUNTS, ids=lambda a: a.username)
def test_each_role_sees_home_and_only_its_pages(sqlite_db, account):
    at = logged_in(account.username)
    assert not at.exception
    assert account.display_name in at.title[0].value
    expected = STAFF_PAGES_BY_ACCOUNT[account.username]
    if "case" in expected:
        assert len(at.metric) >= 3
    elif "rewards" in expected:  # what waits for an approver
        assert [m.label for m in at.metric] == ["待审批奖励"]
    else:  # no case work: no case figures on the home page either
        assert not at.metric
    for spec in ALL_PAGES:
        at.switch_page(spec.path).run()
        assert not at.exception, (spec.key, at.exception)
        shown = texts(at)
        if spec.public or spec.key in expected:
            assert REFUSED_ROLE not in shown and REFUSED_ANON not in shown, spec.key
            assert at.title[0].value
        else:
            assert REFUSED_ROLE in shown, spec.key


@pytest.mark.parametrize("username,password,message", [
    ("", "", "请输入用户名和密码。"),
    ("admin", "wrong-password", "用户名或密码错误。"),
    ("no_such_user", "wrong-password", "用户名或密码错误。"),
    ("a" * 500, "b" * 5000, "用户名或密码错误。"),
])
def test_bad_login_shows_a_clear_message(sqlite_db, username, password, message):
    at = open_app()
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    at.button[0].click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [message]
    assert not at.session_state["authentication_status"]


def test_demo_login_reaches_home(sqlite_db):
    at = open_app()
    at.text_input[0].input("community01")
    at.text_input[1].input(demo.DEMO_PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value == "李社区，您好"
    assert "待研判" in [m.label for m in at.metric]


def test_english_switch_translates_the_page(sqlite_db):
    at = logged_in("admin")
    at.selectbox(key="sidebar_lang").set_value("en").run()
    assert not at.exception
    assert at.title[0].value.startswith("Hello")


def _users(engine) -> list[str]:
    from sqlmodel import select

    from lib.core.db import read_session
    from lib.org.models import User

    with read_session(engine) as s:
        return sorted(s.exec(select(User.username)).all())


def test_admin_creates_a_user_and_bad_input_changes_nothing(sqlite_db):
    at = logged_in("admin").switch_page("pages/admin_users.py").run()
    before = _users(sqlite_db)
    form_inputs = at.text_input
    form_inputs[0].input("x")  # too short
    form_inputs[1].input("新同事")
    form_inputs[2].input("long-enough-pw")
    at.multiselect[0].set_value(["grid_worker"])
    at.button(key="FormSubmitter:admin_users_create-创建").click().run()
    assert not at.exception
    assert any("用户名须为" in e.value for e in at.error)
    at.text_input[0].input("new_grid")
    at.button(key="FormSubmitter:admin_users_create-创建").click().run()
    assert not at.exception
    # The selected unit is the admin's own district: a grid worker does not fit there.
    assert any("层级不符" in e.value for e in at.error)
    assert _users(sqlite_db) == before
    # Right unit, right role: the user is there, once.
    at.multiselect[0].set_value(["district_staff"])
    at.button(key="FormSubmitter:admin_users_create-创建").click().run()
    assert not at.error and _users(sqlite_db) == sorted([*before, "new_grid"])


def test_markdown_and_html_in_a_display_name_render_as_text(sqlite_db):
    from sqlmodel import select

    from lib.core.db import write_session
    from lib.org.models import User

    hostile = "[点我](javascript:alert(1)) ![x](http://127.0.0.1:9/x.png) <b>粗</b>\u202e"
    with write_session(sqlite_db) as s:
        user = s.exec(select(User).where(User.username == "community01")).one()
        user.display_name = hostile
        s.add(user)
    at = logged_in("community01")
    assert not at.exception
    title = at.title[0].value
    assert "\\[点我\\]\\(javascript\\:alert\\(1\\)\\)" in title
    assert "\\!\\[x\\]" in title and "\\<b\\>" in title and "\u202e" not in title
