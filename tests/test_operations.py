"""Running it for real: the app's PostgreSQL role cannot rewrite the ledger, and a backup taken
while residents report restores every case and event that was acknowledged."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, func, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from lib.cases.detail import ledger_mismatches
from lib.cases.intake import Report, submit
from lib.cases.models import AccessLog, Case, CaseEvent
from lib.core.db import get_engine, read_session
from lib.core.migrate import grant_app_role, migrate
from lib.tools import backup
from tests.conftest import PG_URL, need
from tests.factories import COMMUNITY, actor, category_id, move, new_case, unit_id

APP_ROLE = "safe_community_app_test"


@pytest.fixture
def app_role_engine(pg_db):
    """An engine connected as a role that does not own the tables (PostgreSQL only)."""
    with pg_db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": APP_ROLE}).first():
            conn.execute(text(f'CREATE ROLE "{APP_ROLE}" LOGIN NOSUPERUSER NOCREATEROLE'))
    grant_app_role(PG_URL, APP_ROLE)
    url = make_url(PG_URL).set(username=APP_ROLE)
    engine = get_engine(url.render_as_string(hide_password=False))
    yield engine
    engine.dispose()


def test_the_app_role_works_the_loop_but_cannot_rewrite_the_ledger(pg_db, app_role_engine):
    """As the app's role: a report goes in and moves on; the ledger, the access log and their
    guards are out of reach (the superuser could switch the triggers off)."""
    case = new_case(app_role_engine)
    move(app_role_engine, "community01", case.id, "accept")
    with app_role_engine.begin() as conn:
        conn.execute(AccessLog.__table__.insert(), {"user_id": actor(pg_db, "district_privacy").id,
                                                    "case_id": case.id, "what": "content",
                                                    "at": case.reported_at})
    refused = []
    for statement in ("UPDATE case_event SET note = 'x'", "DELETE FROM case_event",
                      "TRUNCATE case_event", "UPDATE access_log SET what = 'x'",
                      "DELETE FROM access_log", "DELETE FROM \"case\"",
                      "SET session_replication_role = replica"):
        with pytest.raises(DBAPIError) as err, app_role_engine.begin() as conn:
            conn.execute(text(statement))
        refused.append(type(err.value.orig).__name__)
    assert set(refused) == {"InsufficientPrivilege"}
    with read_session(pg_db) as s:
        assert s.exec(select(func.count()).select_from(CaseEvent).where(
            CaseEvent.case_id == case.id)).one() == 2


def test_the_event_table_and_access_log_reject_update_and_delete_for_anyone(db):
    case = new_case(db)
    for table in ("case_event", "access_log"):
        if table == "access_log":
            with db.begin() as conn:
                conn.execute(AccessLog.__table__.insert(), {
                    "user_id": actor(db, "district_privacy").id, "case_id": case.id,
                    "what": "content", "at": case.reported_at})
        for statement in (f"UPDATE {table} SET case_id = case_id", f"DELETE FROM {table}"):
            with pytest.raises(DBAPIError), db.begin() as conn:
                conn.execute(text(statement))


def _writers(db, stop: threading.Event, acknowledged: list[tuple[float, int]]) -> list[threading.Thread]:
    fire, community = category_id(db, "fire"), unit_id(db, COMMUNITY)

    def write(n: int) -> None:
        i = 0
        while not stop.is_set():
            receipt = submit(db, actor=None, submit_key=uuid.uuid4().hex,
                             client_address=f"backup-{n}-{i // 15}",
                             report=Report(category_id=fire, community_id=community,
                                           description=f"备份期间的上报{n}-{i}", address="红星路1号",
                                           reporter_phone=f"139{n:02d}{i:06d}"))
            acknowledged.append((time.monotonic(), receipt.case.id))
            i += 1

    return [threading.Thread(target=write, args=(n,)) for n in range(3)]


def test_a_backup_taken_while_residents_report_restores_every_acknowledged_case(db, tmp_path):
    stop, acknowledged = threading.Event(), []
    writers = _writers(db, stop, acknowledged)
    for thread in writers:
        thread.start()
    while len(acknowledged) < 20:
        time.sleep(0.05)
    started = time.monotonic()
    try:
        if db.dialect.name == "sqlite":
            path = backup.backup(tmp_path / "copy.db", url=str(db.url))
        else:
            path = backup.backup(tmp_path / "copy.dump", url=PG_URL)
    finally:
        stop.set()
        for thread in writers:
            thread.join(timeout=60)
    before = {case_id for at, case_id in acknowledged if at < started}
    assert len(before) >= 20

    if db.dialect.name == "sqlite":
        target = f"sqlite:///{tmp_path / 'restored.db'}"
    else:
        name = f"restore_{uuid.uuid4().hex[:8]}"
        admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        target = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        backup.restore(path, url=target)
        restored = get_engine(target)
        with read_session(restored) as s:
            cases = set(s.exec(select(Case.id)).all())
            assert before <= cases
            assert ledger_mismatches(s) == []
            for case_id in before:
                seqs = s.exec(select(CaseEvent.seq).where(CaseEvent.case_id == case_id)).all()
                assert sorted(seqs) == list(range(1, len(seqs) + 1)) and seqs
        migrate(target)  # the copy is a working database at the newest schema
        restored.dispose()
    finally:
        if db.dialect.name != "sqlite":
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def test_a_restore_never_overwrites_a_database_in_use(sqlite_db, tmp_path):
    path = backup.backup(tmp_path / "copy.db", url=str(sqlite_db.url))
    with pytest.raises(backup.BackupError):
        backup.restore(path, url=str(sqlite_db.url))


def test_postgres_is_required_under_ci(monkeypatch):
    """With CI set, a PostgreSQL test fails instead of skipping (CI=1 by hand too)."""
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="does not answer"):
        need("PostgreSQL at postgresql+psycopg://postgres@127.0.0.1:1/none does not answer")
    monkeypatch.setenv("CI", "0")
    with pytest.raises(pytest.skip.Exception):
        need("no server")
