"""Shared fixtures: a migrated database on SQLite and, where a server answers, PostgreSQL.

Each test that takes ``db`` starts from a clean, migrated schema with the reference data and
the demo accounts loaded.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

os.environ.setdefault("BCRYPT_ROUNDS", "4")
os.environ.setdefault("COOKIE_KEY", "test-cookie-key-" + "x" * 40)

from lib import demo, refdata  # noqa: E402
from lib.cli import migrate  # noqa: E402
from lib.db import checkpoint, get_engine, write_session  # noqa: E402

PG_URL = os.environ.get("TEST_DATABASE_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_available() -> str | None:
    """None if PostgreSQL answers, else the reason it does not."""
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as err:  # noqa: BLE001
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
        refdata.load_all(session)
        demo.ensure_accounts(session)
    checkpoint(engine)  # everything into the main file: the copies below take only that file
    engine.dispose()
    get_engine.cache_clear()
    return path


_pg_migrated = False


def _postgres_engine() -> Engine:
    global _pg_migrated
    if not _pg_migrated:
        reset_postgres(PG_URL)
        migrate(PG_URL)
        _pg_migrated = True
    engine = get_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("SET session_replication_role = replica"))  # lets TRUNCATE pass the guard
        tables = conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' "
            "AND tablename <> 'alembic_version'")).scalars().all()
        conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                          + " RESTART IDENTITY CASCADE"))
        conn.execute(text("SET session_replication_role = origin"))
    with write_session(engine) as session:
        refdata.load_all(session)
        demo.ensure_accounts(session)
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
        reason = postgres_available()
        if reason:
            pytest.skip(reason)
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
