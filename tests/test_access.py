"""Who may see a case is decided once (lib.cases.access), in SQL for lists and in Python for
one row: the two answers agree for every demo account against cases of every kind."""

from __future__ import annotations

from sqlmodel import select

from lib.cases.access import can_see, case_scope, content_readable, is_restricted, reads_content
from lib.cases.models import Case
from lib.core.db import read_session
from lib.org import auth
from lib.tools.demo import DEMO_ACCOUNTS
from tests.factories import POLICE, move, new_case, unit_id

FIRE = "510104-fire"


def _cases(db) -> dict[str, int]:
    """One case of every kind that decides what a unit sees."""
    cases = {
        "own community": new_case(db),
        "neighbour community": new_case(db, community="510104001002"),
        "another street": new_case(db, community="510104002001"),
        "restricted": new_case(db, category="vice"),
    }
    dispatched = new_case(db, category="residential_security")
    move(db, "community01", dispatched.id, "accept")
    move(db, "community01", dispatched.id, "call_up", note="请街道协调")
    move(db, "street01", dispatched.id, "dispatch", lead_unit_id=unit_id(db, POLICE),
         co_unit_ids=[unit_id(db, FIRE)])
    cases["a department's order, a co-handler's"] = dispatched
    returned = new_case(db, category="residential_security", community="510104001002")
    move(db, "staff_510104001002", returned.id, "accept")
    move(db, "staff_510104001002", returned.id, "call_up", note="请街道协调")
    move(db, "street01", returned.id, "dispatch", lead_unit_id=unit_id(db, POLICE))
    move(db, "dept_police", returned.id, "return", note="不属于本单位职责")
    cases["an order returned"] = returned
    vice = new_case(db, category="vice")
    move(db, "community01", vice.id, "accept")
    move(db, "community01", vice.id, "call_up", note="请街道协调")
    move(db, "street01", vice.id, "dispatch", lead_unit_id=unit_id(db, POLICE))
    cases["restricted, at a department"] = vice
    return {kind: case.id for kind, case in cases.items()}


def test_lists_and_single_rows_agree_on_scope_and_content_for_every_account(db):
    cases = _cases(db)
    ids = list(cases.values())
    kind_of = {case_id: kind for kind, case_id in cases.items()}
    disagreements = []
    seen_by = {}
    with read_session(db) as s:
        rows = {c.id: c for c in s.exec(select(Case).where(Case.id.in_(ids))).all()}
        for account in DEMO_ACCOUNTS:
            actor = auth.actor_by_username(s, account.username)
            for indexed in (True, False):
                listed = set(s.exec(select(Case.id).where(case_scope(actor, indexed=indexed),
                                                          Case.id.in_(ids))).all())
                one_by_one = {i for i, c in rows.items() if can_see(s, actor, c)}
                if listed != one_by_one:
                    disagreements.append((account.username, "scope", indexed,
                                          sorted(kind_of[i] for i in listed ^ one_by_one)))
            seen_by[account.username] = {kind_of[i] for i in one_by_one}
            readable = set(s.exec(select(Case.id).where(content_readable(actor),
                                                        Case.id.in_(ids))).all())
            one_by_one = {i for i, c in rows.items()
                          if reads_content(actor, c, is_restricted(s, c))}
            if readable != one_by_one:
                disagreements.append((account.username, "content",
                                      sorted(kind_of[i] for i in readable ^ one_by_one)))
    assert not disagreements
    # The set is worth checking: it separates the units it is meant to separate.
    assert seen_by["community01"] == {"own community", "restricted",
                                      "a department's order, a co-handler's",
                                      "restricted, at a department"}
    assert seen_by["street01"] == set(cases) - {"another street"}
    assert seen_by["dept_police"] == {"a department's order, a co-handler's", "an order returned",
                                      "restricted, at a department"}
    assert seen_by["dept_fire"] == {"a department's order, a co-handler's"}
    assert seen_by["district01"] == set(cases)
