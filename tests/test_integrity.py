"""The database keeps its promises under concurrency and crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import select

from lib.cases.detail import ledger_mismatches
from lib.cases.intake import Report, create_case
from lib.cases.models import Case
from lib.core.db import get_engine, read_session, write_session
from lib.core.migrate import migrate
from lib.core.models import Category
from lib.org.models import Unit

ROOT = Path(__file__).resolve().parent.parent


def test_a_stale_write_to_a_case_is_refused_not_lost(db):
    with write_session(db) as s:
        category = s.exec(select(Category)).first()
        community = s.exec(select(Unit).where(Unit.kind == "community")).first()
        case_id = create_case(s, Report(category_id=category.id, subcategory_id=None,
                                        description="楼道堆放杂物", address="1号", community_id=community.id,
                                        reporter_phone="13800001111"),
                              actor=None).id
    # Two staff open the case; each page holds what it read, then writes with BEGIN IMMEDIATE.
    with read_session(db) as s:
        mine = s.get(Case, case_id)
    with read_session(db) as s:
        theirs = s.get(Case, case_id)
    mine.severity = "urgent"
    with write_session(db) as s:
        s.add(mine)
    theirs.severity = "major"
    with pytest.raises(StaleDataError):
        with write_session(db) as s:
            s.add(theirs)
    with read_session(db) as s:
        case = s.get(Case, case_id)
        assert (case.severity, case.version) == ("urgent", 2)


def test_killing_the_demo_mid_write_leaves_a_consistent_database(tmp_path):
    """A process killed in the middle of bulk writes: integrity holds, no case without events."""
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    migrate(url)
    env = {**os.environ, "DATABASE_URL": url, "BCRYPT_ROUNDS": "4"}
    proc = subprocess.Popen([sys.executable, "-m", "lib", "demo", "--cases", "200000"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    # Wait until history generation is under way (first progress line), then kill hard.
    deadline = time.monotonic() + 60
    buffer = ""
    while "/200,000" not in buffer and time.monotonic() < deadline:
        buffer += proc.stderr.read(1) or ""
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    engine = get_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    with read_session(engine) as s:
        assert ledger_mismatches(s) == []
        assert s.exec(select(Case.id)).first() is None  # one transaction: all or nothing
    engine.dispose()
    get_engine.cache_clear()
