"""Shared fixtures: a migrated database on SQLite and, where a server answers, PostgreSQL.

Each test that takes ``db`` starts from a clean, migrated schema with the reference data and
the demo accounts loaded. PostgreSQL is migrated and seeded once per session; each test then
gets the seeded rows back (every table emptied and refilled from a snapshot), which is much
cheaper than seeding again.

Where PostgreSQL or the browser is missing, their tests are skipped with the reason — except
under CI (the environment variable ``CI`` set to anything but empty or ``0``), where they fail
naming what is missing, so a green CI never hides a skipped third of the suite.
"""

from __future__ import annotations

import os
import shutil
from functools import lru_cache
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, select, text
from sqlalchemy.engine import Engine

os.environ.setdefault("BCRYPT_ROUNDS", "4")
os.environ.setdefault("COOKIE_KEY", "test-cookie-key-" + "x" * 40)

from lib.core import refcache
from lib.core.db import checkpoint, get_engine, write_session
from lib.core.migrate import migrate
from lib.tools import (
    demo,
    reference,
    schema,
)

BASE_PG_URL = os.environ.get("TEST_DATABASE_URL",
                             "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Under pytest-xdist (``make test`` runs two workers) each worker has a database of its own,
# made beside the test database on first use: test_gw0, test_gw1.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
PG_URL = BASE_PG_URL if not WORKER else make_url(BASE_PG_URL).set(
    database=f"{make_url(BASE_PG_URL).database}_{WORKER}").render_as_string(hide_password=False)


def under_ci() -> bool:
    return os.environ.get("CI", "").strip() not in ("", "0")


def need(reason: str | None) -> None:
    """Go on if ``reason`` is None; else skip with it, or under CI fail with it."""
    if reason is None:
        return
    if under_ci():
        pytest.fail(f"CI needs this test to run: {reason}", pytrace=False)
    pytest.skip(reason)


@lru_cache(maxsize=1)
def postgres_available() -> str | None:
    """None if PostgreSQL answers, else the reason it does not (asked once per session)."""
    try:
        engine = create_engine(BASE_PG_URL, connect_args={"connect_timeout": 3},
                               isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("select 1"))
            name = make_url(PG_URL).database
            if PG_URL != BASE_PG_URL and not conn.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return None
    except Exception as err:
        return f"PostgreSQL at {PG_URL} does not answer ({type(err).__name__})"


def reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file with reference data and demo accounts, copied per test."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = get_engine(url)
    with write_session(engine) as session:
        reference.load_all(session)
        demo.ensure_accounts(session)
    checkpoint(engine)  # everything into the main file: the copies below take only that file
    engine.dispose()
    get_engine.cache_clear()
    return path


_pg_migrated = False
_pg_seed: dict[str, list[dict]] = {}
_pg_sequences: str = ""  # one SELECT that sets every sequence back to where the seed left it


def _seed_sequences(conn) -> str:
    """The statement that puts each column sequence back: after the seed's largest value, or
    to its start where the seed has no rows (as ``TRUNCATE ... RESTART IDENTITY`` did)."""
    calls = []
    for table in schema.metadata.sorted_tables:
        for column in table.c:
            seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                               {"t": f'"{table.name}"', "c": column.name}).scalar()
            if seq is None:
                continue
            values = [row[column.name] for row in _pg_seed[table.name]
                      if row[column.name] is not None]
            calls.append(f"setval('{seq}', {max(values)}, true)" if values
                         else f"setval('{seq}', 1, false)")
    return "SELECT " + ", ".join(calls) if calls else ""


def _postgres_engine() -> Engine:
    """The test database, migrated and seeded on first use, then reset to the seed.

    The reset deletes every row and puts the seed back under ``session_replication_role =
    replica`` (no foreign-key checks, no triggers: the append-only guards let it through), then
    sets the sequences back: every test starts from the same rows and the same next ids, for a
    fraction of what ``TRUNCATE`` of every table cost."""
    global _pg_migrated, _pg_sequences
    engine = get_engine(PG_URL)
    tables = schema.metadata.sorted_tables
    if not _pg_migrated:
        reset_postgres(PG_URL)
        migrate(PG_URL)
        with write_session(engine) as session:
            reference.load_all(session)
            demo.ensure_accounts(session)
        with engine.connect() as conn:
            _pg_seed.clear()
            _pg_seed.update({t.name: [dict(r) for r in conn.execute(select(t)).mappings()]
                             for t in tables})
            _pg_sequences = _seed_sequences(conn)
        _pg_migrated = True
        return engine
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in reversed(tables):
            conn.execute(table.delete())
        for table in tables:
            if _pg_seed[table.name]:
                conn.execute(table.insert(), _pg_seed[table.name])
        if _pg_sequences:
            conn.execute(text(_pg_sequences))
    refcache.clear()
    return engine


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path, sqlite_template) -> Engine:
    """A clean database with reference data and demo accounts, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "app.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
        engine = get_engine(url)
        yield engine
        engine.dispose()
        get_engine.cache_clear()
    else:
        need(postgres_available())
        yield _postgres_engine()


@pytest.fixture
def pg_db() -> Engine:
    """The PostgreSQL test database alone, for what only PostgreSQL has (roles, grants)."""
    need(postgres_available())
    yield _postgres_engine()


@pytest.fixture
def sqlite_db(tmp_path, sqlite_template, monkeypatch) -> Engine:
    """A clean SQLite database that is also the app's DATABASE_URL (for page tests)."""
    path = tmp_path / "app.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("DATABASE_URL", url)
    engine = get_engine(url)
    yield engine
    engine.dispose()
    get_engine.cache_clear()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items) -> None:
    """Make ``--dist loadgroup`` honour the ``xdist_group`` mark on pytest 9.

    pytest-xdist 3.8 groups tests by a suffix it writes to ``item._nodeid``; pytest 9 keeps the
    node id in ``item._id`` and never reads ``_nodeid``, so the mark was ignored and each worker
    started a server and a browser of its own. The same suffix is written where pytest 9 reads
    it, on the workers only (the scheduler reads the ids they report)."""
    if not WORKER or not config.getvalue("loadgroup"):
        return
    from _pytest.nodeid import coerce_node_id

    for item in items:
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                         for m in item.iter_markers("xdist_group")})
        if groups and "@" not in item.nodeid and hasattr(item, "_id"):
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(groups)}")
