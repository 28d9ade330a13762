"""Links between pages: a login returns to the page (and case) that asked for it, the chosen
language stays in the URL and in every link, and the home page's tiles open their pages."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import parse_qsl

import pytest
from streamlit.testing.v1 import AppTest

from lib.core.i18n import t
from lib.tools import demo
from lib.ui.menu import return_query, return_target
from tests.factories import APP, app, new_case, open_page

REFUSED_ANON = t("guard.login_required")


def links(at: AppTest) -> dict[str, tuple[str, dict[str, str]]]:
    """Every page link on the page: label → (page, query)."""
    return {link.proto.label: (link.proto.page, dict(parse_qsl(link.proto.query_string)))
            for link in at.get("page_link")}


def anonymous(**query: str) -> AppTest:
    """The home page opened with ``query`` (as the login link leads there), not yet run."""
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params.update(query)
    return at


def log_in(at: AppTest, username: str = "community01") -> AppTest:
    at.text_input[0].input(username)
    at.text_input[1].input(demo.DEMO_PASSWORD)
    return at.button[0].click().run()


# ---------------------------------------------------------------- back to the page asked for


def test_the_login_link_on_a_deep_linked_case_carries_the_case(sqlite_db):
    case = new_case(sqlite_db)
    at = open_page(None, "pages/case.py", id=str(case.id))
    assert not at.exception and REFUSED_ANON in [w.value for w in at.warning]
    assert links(at)[t("guard.go_login")] == ("", {"next": "case", "id": str(case.id)})


def test_the_login_link_keeps_the_language_and_drops_unknown_parameters(sqlite_db):
    at = open_page(None, "pages/queue.py", tab="calls", lang="en", evil="http://evil.example",
                   id="1e9999")
    assert links(at)[t("guard.go_login", "en")] == ("", {"next": "queue", "tab": "calls", "lang": "en"})


def test_login_returns_to_the_case_asked_for_in_its_language(sqlite_db):
    case = new_case(sqlite_db)
    at = log_in(anonymous(next="case", id=str(case.id), lang="en").run())
    assert not at.exception
    assert at.query_params == {"id": str(case.id), "lang": "en"}
    assert case.code in at.title[0].value
    assert REFUSED_ANON not in [w.value for w in at.warning]
    assert t("sidebar.logout", "en") in [b.label for b in at.button]


def test_a_user_who_may_not_open_the_page_asked_for_is_refused_there(sqlite_db):
    at = log_in(anonymous(next="admin_users").run(), "grid01")
    assert not at.exception
    assert [e.value for e in at.error] == [t("guard.forbidden")]


@pytest.mark.parametrize("target", ["http://evil.example/case", "//evil.example", "../case",
                                    "pages/case.py", "CASE", "no_such_page", "home", ""])
def test_a_hostile_or_unknown_next_is_ignored_and_the_login_lands_home(sqlite_db, target):
    at = log_in(anonymous(next=target, id="5").run())
    assert not at.exception
    assert at.title[0].value == "李社区，您好"


@pytest.mark.parametrize("query,expected", [
    ({"next": "case", "id": "5"}, ("case", {"id": "5"})),
    ({"next": "case", "id": " 7 "}, ("case", {"id": "7"})),
    ({"next": "queue", "tab": "triage"}, ("queue", {"tab": "triage"})),
    ({"next": "rewards", "claim": "3"}, ("rewards", {"claim": "3"})),
    ({"next": "case", "id": "99999999999999999999"}, ("case", {})),
    ({"next": "case", "id": "javascript:alert(1)"}, ("case", {})),
    ({"next": "queue", "tab": "../x"}, ("queue", {})),
    ({"next": "case", "id": "5", "url": "http://evil.example"}, ("case", {"id": "5"})),
    ({"next": "http://evil.example"}, None),
    ({"next": "/case"}, None),
    ({}, None),
])
def test_only_our_pages_and_checked_parameters_are_followed(query, expected):
    target = return_target(query)
    assert (target and (target[0].key, target[1])) == expected


def test_the_return_query_keeps_only_checked_parameters():
    assert return_query("case", {"id": "12", "x": "y", "tab": "a b"}) == {"next": "case", "id": "12"}


# ---------------------------------------------------------------- the language stays


def test_english_from_the_url_stays_over_reruns_and_page_switches(sqlite_db):
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = "community01"
    at.session_state["auth_login_at"] = datetime.now(timezone.utc)
    at.query_params["lang"] = "en"
    at.run()
    assert at.title[0].value.startswith("Hello")
    at.run()
    assert at.title[0].value.startswith("Hello") and at.query_params["lang"] == "en"
    # A page switch that carries no language (as the queue's row click does): still English,
    # and the URL gets it back.
    at.query_params.clear()
    at.switch_page("pages/ledger.py").run()
    assert at.title[0].value == t("page.ledger", "en")
    assert at.query_params == {"lang": "en"}
    sidebar = links(at)
    assert sidebar[t("page.home", "en")] == ("", {"lang": "en"})
    assert sidebar[t("page.kpi_overview", "en")] == ("kpi_overview", {"lang": "en"})


def test_the_sidebar_choice_writes_the_language_to_the_url_and_keeps_other_parameters(sqlite_db):
    case = new_case(sqlite_db)
    at = open_page("community01", "pages/case.py", id=str(case.id))
    at.selectbox(key="sidebar_lang").set_value("en").run()
    assert not at.exception
    assert at.query_params == {"id": str(case.id), "lang": "en"}
    assert t("sidebar.logout", "en") in [b.label for b in at.button]
    at.selectbox(key="sidebar_lang").set_value("zh").run()
    assert at.query_params == {"id": str(case.id)}
    assert t("sidebar.logout") in [b.label for b in at.button]


def test_the_url_wins_over_the_widget_of_an_earlier_page(sqlite_db):
    at = app("community01")
    at.query_params["lang"] = "en"
    at.run()
    assert at.selectbox(key="sidebar_lang").value == "en"
    assert at.title[0].value.startswith("Hello")


def test_the_default_language_adds_nothing_to_the_url(sqlite_db):
    at = app("community01")
    assert at.query_params == {}
    assert not [q for _page, q in links(at).values() if "lang" in q]


# ---------------------------------------------------------------- home tiles are links


def tiles(at: AppTest) -> dict[str, tuple[str, dict[str, str]] | None]:
    """The home page's tiles: figure label → the page and query its link opens (None: no link)."""
    found: dict[str, tuple[str, dict[str, str]] | None] = {}

    def walk(node) -> None:
        if getattr(node, "key", None) and str(node.key).startswith("link_tile_"):
            [metric], [link] = node.get("metric"), node.get("page_link")
            found[metric.label] = (link.proto.page, dict(parse_qsl(link.proto.query_string)))
            return
        if getattr(node, "type", None) == "metric":
            found[node.label] = None
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    return found


def test_home_tiles_link_to_the_queue_tab_and_the_ledger(sqlite_db):
    new_case(sqlite_db)
    at = app("community01")
    assert not at.exception
    shown = tiles(at)
    assert shown[t("queue.tab.triage")] == ("queue", {"tab": "triage"})
    # Each case tile opens the ledger filtered to its cases (tests/test_leader_navigation.py).
    assert shown[t("home.open_in_scope")] == ("ledger", {"status": "open"})
    assert shown[t("home.overdue_in_scope")] == ("ledger", {"status": "overdue"})
    assert shown[t("home.closed_this_month")][1]["status"] == "closed"
    at.switch_page("pages/queue.py")
    at.query_params["tab"] = "triage"
    at.run()
    assert not at.exception and at.title[0].value == t("page.queue")


def test_the_approvers_tile_links_to_the_rewards_page(sqlite_db):
    at = app("street_approver")
    assert tiles(at) == {t("rewards.tile"): ("rewards", {})}


def test_tiles_keep_the_language(sqlite_db):
    at = app("community01")
    at.query_params["lang"] = "en"
    at.run()
    assert tiles(at)[t("queue.tab.triage", "en")] == ("queue", {"tab": "triage", "lang": "en"})
