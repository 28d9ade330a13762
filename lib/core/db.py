"""Engines and sessions for SQLite and PostgreSQL.

SQLite runs in WAL mode with foreign keys on, and every write transaction begins with
``BEGIN IMMEDIATE``: with the default deferred begin a read-then-write loses updates or fails
with SQLITE_BUSY_SNAPSHOT under concurrency.

Writers in one process (every Streamlit session shares one) also queue on an in-process lock
before ``BEGIN IMMEDIATE``: SQLite's busy handler waits by sleeping in growing steps, so
threads contending inside SQLite wait far longer than the write takes (measured: p99 1.2 s for
8 writers with the busy handler alone). Other processes still meet ``busy_timeout``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from lib.core import config

SQLITE_BUSY_TIMEOUT_MS = 30_000


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    url = url or config.database_url()
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            json_serializer=_json_text,
        )
        _configure_sqlite(engine)
        _start_checkpointer(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10,
                               json_serializer=_json_text)
    return engine


def _json_text(value: object) -> str:
    """JSON columns (an event's facts) as readable text: Chinese as written, not ``\\uXXXX``."""
    return json.dumps(value, ensure_ascii=False)


CHECKPOINT_SECONDS = 2.0


def _start_checkpointer(engine: Engine) -> None:
    """Copy the WAL back into the database file every few seconds on a thread of its own.

    SQLite's automatic checkpoint runs inside whichever commit crosses 1,000 pages, and that
    commit then waits for the copy and an fsync (measured: intake p99 52 ms, 40 ms without).
    A passive checkpoint here never blocks writers or readers. The thread ends with the engine.
    """
    path = engine.url.database
    if not path or path == ":memory:":
        return
    alive = weakref.ref(engine)

    def run() -> None:
        connection = None
        try:
            while True:
                time.sleep(CHECKPOINT_SECONDS)
                if alive() is None:
                    return
                if connection is None:
                    connection = sqlite3.connect(path, timeout=1, check_same_thread=False)
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            return  # the file went away (a test's temp database); nothing left to copy
        finally:
            if connection is not None:
                connection.close()

    threading.Thread(target=run, daemon=True, name=f"checkpoint:{path}").start()


def checkpoint(engine: Engine) -> None:
    """Copy the whole WAL into the database file now (after a bulk load, before a backup)."""
    if is_sqlite(engine):
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001
        # Take transaction control away from the driver so that BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints run on the checkpointer thread, not inside some user's commit.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # noqa: ANN001
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def read_session(engine: Engine | None = None, *, snapshot: bool = False) -> Iterator[Session]:
    """A session for reads. ``snapshot``: every read sees the database as of the first one
    (REPEATABLE READ on PostgreSQL; on SQLite one read transaction in WAL mode already does),
    so that a long export is one consistent picture while others write."""
    engine = engine or get_engine()
    if snapshot and not is_sqlite(engine):
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    with Session(engine, expire_on_commit=False) as session:
        yield session


class FairLock:
    """A re-entrant lock granted in arrival order, so that no writer waits behind a run of
    luckier ones (``threading.RLock`` makes no such promise; its p99 was three times ours)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next_ticket = 0
        self._serving = 0
        self._owner: int | None = None
        self._depth = 0

    def __enter__(self) -> FairLock:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return self
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._cond.wait()
            self._owner, self._depth = me, 1
        return self

    def __exit__(self, *_exc: object) -> None:
        with self._cond:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._serving += 1
                self._cond.notify_all()


_write_locks: dict[str, FairLock] = {}
_locks_guard = threading.Lock()


def _write_lock(engine: Engine) -> FairLock:
    key = str(engine.url)
    with _locks_guard:
        return _write_locks.setdefault(key, FairLock())


class NestedWrite(RuntimeError):
    """A write transaction was opened inside another in the same thread: on SQLite the inner
    one would wait for the outer one's lock until ``busy_timeout`` and fail."""


_writing = threading.local()


@contextmanager
def write_session(engine: Engine | None = None) -> Iterator[Session]:
    """A session whose transaction takes the write lock at once (SQLite) and commits at the end.

    lib owns its transactions: one write transaction per thread at a time, so a nested one
    raises ``NestedWrite`` at once instead of waiting for itself."""
    engine = engine or get_engine()
    if getattr(_writing, "active", False):
        raise NestedWrite("a write transaction is already open in this thread")
    _writing.active = True
    try:
        if not is_sqlite(engine):
            with Session(engine, expire_on_commit=False) as session:
                yield session
                session.commit()
            return
        bind = engine.execution_options(sqlite_begin="IMMEDIATE")
        with _write_lock(engine), Session(bind, expire_on_commit=False) as session:
            yield session
            session.commit()
    finally:
        _writing.active = False
