"""A leader's way from a figure to the cases behind it: each home tile opens the ledger filtered
to exactly the cases it counts (超期 by the one rule, ``deadlines.overdue_open``); the ledger's
filters live in its address, and a bad address says so and shows the whole ledger."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

from streamlit.testing.v1 import AppTest

from lib.cases.deadlines import mark_overdue
from lib.core.db import write_session
from lib.core.i18n import t
from tests.factories import NEIGHBOUR, STREET, app, closed_case, new_case, unit_id

LONG_AGO = datetime.now(timezone.utc) - timedelta(days=20)


def tiles(at: AppTest) -> dict[str, tuple[str, str, dict[str, str]]]:
    """The home page's linked tiles: label → (figure, page, query)."""
    found = {}

    def walk(node) -> None:
        if getattr(node, "key", None) and str(node.key).startswith("link_tile_"):
            [metric], [link] = node.get("metric"), node.get("page_link")
            found[metric.label] = (metric.value, link.proto.page,
                                   dict(parse_qsl(link.proto.query_string)))
            return
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    return found


def follow(at: AppTest, page: str, query: dict[str, str]) -> AppTest:
    """A tap on a tile: its page with its query, in the same session."""
    at.switch_page(f"pages/{page}.py")
    for name in list(at.query_params):
        del at.query_params[name]
    at.query_params.update(query)
    return at.run()


def ledger_codes(at: AppTest) -> set[str]:
    if not at.dataframe:
        return set()
    return set(at.dataframe[0].value[t("ledger.col.code")])


def _street(engine) -> dict[str, set[str]]:
    """In 春熙路街道: two cases late (reported 20 days ago, never taken on), one of them in the
    neighbouring community; one fresh report; one closed case."""
    late = {new_case(engine, now=LONG_AGO).code,
            new_case(engine, community=NEIGHBOUR, now=LONG_AGO).code}
    fresh = {new_case(engine).code}
    closed = {closed_case(engine).code}
    with write_session(engine) as s:
        assert mark_overdue(s, datetime.now(timezone.utc)) == 2
    return {"late": late, "open": late | fresh, "closed": closed}


def test_the_overdue_tile_opens_exactly_the_overdue_cases(sqlite_db):
    """Before: the 辖区超期 tile opened the whole ledger, which had no overdue filter. Now one tap
    on the tile shows the cases it counts, and the ledger's status says 超期."""
    cases = _street(sqlite_db)
    at = app("street_leader")
    assert not at.exception
    shown = tiles(at)
    figure, page, query = shown[t("home.overdue_in_scope")]
    assert (figure, page, query) == ("2", "ledger", {"status": "overdue"})
    follow(at, page, query)
    assert not at.exception and not at.warning
    assert at.selectbox(key="ledger_status").value == "overdue"
    assert ledger_codes(at) == cases["late"]
    assert t("ledger.total", total=2) in [c.value for c in at.caption]


def test_each_case_tile_opens_the_cases_it_counts(sqlite_db):
    cases = _street(sqlite_db)
    at = app("street_leader")
    shown = tiles(at)
    for key, expected in (("home.open_in_scope", cases["open"]),
                          ("home.closed_this_month", cases["closed"])):
        figure, page, query = shown[t(key)]
        follow(at, page, query)
        assert not at.exception and not at.warning, key
        assert ledger_codes(at) == expected, key
        assert figure == str(len(expected)), key


def test_the_ledger_writes_its_filters_to_the_address(sqlite_db):
    cases = _street(sqlite_db)
    at = follow(app("street_leader"), "ledger", {})
    assert len(ledger_codes(at)) == 4
    at.selectbox(key="ledger_status").set_value("overdue").run()
    at.selectbox(key="ledger_community").set_value(unit_id(sqlite_db, NEIGHBOUR)).run()
    assert not at.exception
    assert dict(at.query_params) == {"status": "overdue", "unit": NEIGHBOUR}
    assert len(ledger_codes(at)) == 1 and ledger_codes(at) < cases["late"]
    # The same address in a new session (a shared link) opens the same view.
    again = follow(app("street_leader"), "ledger", {"status": "overdue", "unit": NEIGHBOUR})
    assert ledger_codes(again) == ledger_codes(at)


def test_a_unit_above_a_community_narrows_the_ledger_to_its_area(sqlite_db):
    _street(sqlite_db)
    other = new_case(sqlite_db, community="510104002001").code  # another street
    at = follow(app("district_leader"), "ledger", {"unit": STREET})
    assert not at.exception and not at.warning
    assert t("ledger.filter.area", unit="春熙路街道") in [i.value for i in at.info]
    assert other not in ledger_codes(at) and len(ledger_codes(at)) == 4
    at.button(key="ledger_area_clear").click().run()
    assert other in ledger_codes(at) and "unit" not in at.query_params


def test_a_bad_ledger_address_says_so_and_shows_the_whole_ledger(sqlite_db):
    _street(sqlite_db)
    bad = {"unit": "510104002", "category": "<script>", "status": "everything",
           "from": "2026-13-01", "to": "yesterday"}
    at = follow(app("street_leader"), "ledger", bad)
    assert not at.exception and not at.error
    assert sorted(w.value for w in at.warning) == sorted(
        t(k) for k in ("ledger.filter.bad_unit", "ledger.filter.bad_category",
                       "ledger.filter.bad_status", "ledger.filter.bad_day", "ledger.filter.bad_day"))
    assert len(ledger_codes(at)) == 4
    assert not [k for k in bad if k in at.query_params]
    # A day at the end of the calendar is no day either (the day after it overflowed).
    far = follow(app("street_leader"), "ledger", {"from": "2026-01-01", "to": "9999-12-31",
                                                  "closed_since": "0001-01-01"})
    assert not far.exception and not far.error
    assert [w.value for w in far.warning] == [t("ledger.filter.bad_day")] * 2
    assert len(ledger_codes(far)) == 4
    backwards = follow(app("street_leader"), "ledger", {"from": "2026-05-02", "to": "2026-05-01"})
    assert [w.value for w in backwards.warning] == [t("ledger.filter.bad_range")]
    assert len(ledger_codes(backwards)) == 4
