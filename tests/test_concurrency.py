"""Two people at once: a move made by two users on the same version has one winner and the other
is told the case changed; concurrent public reports all arrive; a double submit makes one case.

Runs on SQLite and on PostgreSQL (the ``db`` fixture). Threads start together on a Barrier.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
from sqlalchemy import func
from sqlmodel import select

from lib.cases.detail import events_of, ledger_mismatches
from lib.cases.intake import Report, submit
from lib.cases.machine import act, replay
from lib.cases.models import Case, CaseEvent
from lib.core.db import is_sqlite, read_session, write_session
from lib.core.errors import StaleObject
from lib.core.models import Category, ThrottleHit
from lib.org import auth
from lib.org.units import find_unit

COMMUNITY = "510104001001"
JOIN_TIMEOUT = 60




# ---------------------------------------------------------------- helpers


def public_report(db, *, phone: str, client_address: str, submit_key: str | None = None,
                  description: str = "楼道里堆满纸箱，堵住了消防通道") -> Case:
    with read_session(db) as s:
        category_id = s.exec(select(Category.id).where(Category.key == "fire")).one()
        community_id = find_unit(s, COMMUNITY).id
    return submit(db, actor=None, submit_key=submit_key or uuid.uuid4().hex,
                  client_address=client_address,
                  report=Report(category_id=category_id, community_id=community_id,
                                description=description, address="红星路3号", reporter_phone=phone)
                  ).case


def run_together(n: int, work) -> list:
    """Run ``work(i, barrier)`` on ``n`` threads; each result, or the exception it raised."""
    barrier = threading.Barrier(n, timeout=JOIN_TIMEOUT)
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            results[i] = work(i, barrier)
        except Exception as err:  # the test inspects what each thread met
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,), name=f"racer-{i}") for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


def race(db, case_id: int, moves: list[tuple[str, str, dict]]) -> list:
    """Each (username, action, extra) made at once by its own thread, all on the version both
    users saw. On PostgreSQL both transactions have read the case before either writes; on
    SQLite a write transaction holds the database from its start, so they meet at its door."""
    with read_session(db) as s:
        version = s.get(Case, case_id).version
        actors = [auth.actor_by_username(s, username) for username, _, _ in moves]
    inside = not is_sqlite(db)

    def work(i: int, barrier: threading.Barrier) -> str:
        _, action, extra = moves[i]
        if not inside:
            barrier.wait()
        with write_session(db) as s:
            if inside:
                assert s.get(Case, case_id).version == version
                barrier.wait()
            return act(s, actors[i], case_id, action, version=version, **extra).state

    return run_together(len(moves), work)


def assert_ledger(db, case_id: int, events: int) -> None:
    with read_session(db) as s:
        case = s.get(Case, case_id)
        trail = events_of(s, case_id)
        assert ledger_mismatches(s) == []
    assert [e.seq for e in trail] == list(range(1, events + 1))
    assert replay([(e.action, e.from_state, e.to_state) for e in trail]) == case.state


def one_winner(results: list) -> str:
    """Exactly one move went through; every other one was refused as stale. The winner's state."""
    won = [r for r in results if isinstance(r, str)]
    stale = [r for r in results if isinstance(r, StaleObject)]
    assert len(won) == 1 and len(stale) == len(results) - 1, results
    assert stale[0].key == "error.stale"
    return won[0]


# ---------------------------------------------------------------- two moves at once


def test_two_staff_accepting_at_once_one_wins_the_other_is_told_it_changed(db):
    for round_ in range(3):
        case = public_report(db, phone=f"1380000100{round_}", client_address=f"203.0.113.{round_}")
        results = race(db, case.id, [("community01", "accept", {}), ("community01", "accept", {})])
        assert one_winner(results) == "accepted"
        assert_ledger(db, case.id, 2)
        with read_session(db) as s:
            assert s.get(Case, case.id).version == 2


def test_accept_racing_reject_leaves_one_decision(db):
    outcomes = set()
    for round_ in range(3):
        case = public_report(db, phone=f"1380000200{round_}", client_address=f"203.0.113.{round_}")
        results = race(db, case.id, [("community01", "accept", {}),
                                     ("staff_510104001001", "reject", {"note": "不属于本平台受理范围"})])
        state = one_winner(results)
        outcomes.add(state)
        assert_ledger(db, case.id, 2)
        with read_session(db) as s:
            stored = s.get(Case, case.id)
            assert (stored.state, stored.version) == (state, 2)
            assert events_of(s, case.id)[-1].action == {"accepted": "accept", "rejected": "reject"}[state]
    assert outcomes <= {"accepted", "rejected"}


# ---------------------------------------------------------------- many reports at once


@pytest.mark.parametrize("writers,reports_each", [(8, 10)])
def test_eight_writers_submitting_public_reports_lose_nothing(db, writers, reports_each):
    def work(i: int, barrier: threading.Barrier) -> list[int]:
        barrier.wait()
        ids = []
        for n in range(reports_each):
            case = public_report(db, phone=f"139{i:04d}{n:04d}", client_address=f"192.0.2.{i + 1}",
                                 description=f"写入者{i}的第{n}条报告")
            ids.append(case.id)
        return ids

    results = run_together(writers, work)
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    ids = [case_id for batch in results for case_id in batch]
    assert len(ids) == len(set(ids)) == writers * reports_each
    with read_session(db) as s:
        stored = s.exec(select(Case.description, Case.code)).all()
        assert sorted(d for d, _ in stored) == sorted(
            f"写入者{i}的第{n}条报告" for i in range(writers) for n in range(reports_each))
        assert len({code for _, code in stored}) == len(stored)
        events = Counter(s.exec(select(CaseEvent.case_id, CaseEvent.seq)).all())
        assert set(events) == {(case_id, 1) for case_id in ids} and max(events.values()) == 1
        assert s.exec(select(func.count()).select_from(ThrottleHit).where(  # one per report
            ThrottleHit.kind == "intake", ThrottleHit.key.startswith("addr:"))).one() == len(ids)
        assert ledger_mismatches(s) == []


def test_the_same_form_submitted_twice_at_once_makes_one_case(db):
    for round_ in range(3):
        key = uuid.uuid4().hex

        def work(i: int, barrier: threading.Barrier, key: str = key, round_: int = round_) -> int:
            barrier.wait()
            return public_report(db, phone=f"1370000000{round_}", client_address="198.51.100.7",
                                 submit_key=key).id

        results = run_together(2, work)
        assert all(isinstance(r, int) for r in results), results
        assert results[0] == results[1]
        with read_session(db) as s:
            assert s.exec(select(func.count()).select_from(Case)
                          .where(Case.submit_key == key)).one() == 1
            assert len(events_of(s, results[0])) == 1
    with read_session(db) as s:
        assert s.exec(select(func.count()).select_from(Case)).one() == 3
