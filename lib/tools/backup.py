"""Backup and restore of the one database, safe while the app writes.

SQLite: the online backup API copies a consistent picture of the database page by page while
writers go on (copying the file while the WAL is live gave "no such table"). PostgreSQL:
``pg_dump`` in its custom format (one snapshot), ``pg_restore`` into an empty database.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import make_url

from lib.core import config


class BackupError(RuntimeError):
    pass


def _libpq(url: str) -> str:
    """The SQLAlchemy URL as libpq reads it (no driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def backup(target: Path, url: str | None = None) -> Path:
    """Copy the database at ``url`` (default: the app's) to the file ``target``."""
    url = url or config.migration_url()
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if make_url(url).get_backend_name() == "sqlite":
        source = sqlite3.connect(_sqlite_path(url), timeout=30)
        copy = sqlite3.connect(target)
        try:
            with copy:
                source.backup(copy, pages=1024)
        finally:
            copy.close()
            source.close()
        return target
    _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={target}",
          _libpq(url)])
    return target


def restore(source: Path, url: str | None = None) -> None:
    """Load a backup into the database at ``url``, which must be empty (a new file or a new
    PostgreSQL database): a restore never mixes with live data."""
    url = url or config.migration_url()
    source = Path(source)
    if not source.exists():
        raise BackupError(f"no backup at {source}")
    if make_url(url).get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        if path.exists() and path.stat().st_size > 0:
            raise BackupError(f"{path} exists; restore into a new file")
        path.parent.mkdir(parents=True, exist_ok=True)
        origin = sqlite3.connect(source)
        copy = sqlite3.connect(path)
        try:
            with copy:
                origin.backup(copy)
        finally:
            copy.close()
            origin.close()
        return
    _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
          f"--dbname={_libpq(url)}", str(source)])


def _run(command: list[str]) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(f"{command[0]} is not installed (Debian: postgresql-client)")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()[:500]}")
