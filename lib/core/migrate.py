"""Alembic, run from code: ``upgrade`` to the newest schema (the CLI, tests and the bench)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from lib.core import config


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(config.ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(config.ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", (url or config.migration_url()).replace("%", "%%"))
    return cfg


def migrate(url: str | None = None) -> None:
    """Upgrade ``url`` (default: the owner's URL, ``MIGRATION_DATABASE_URL`` or ``DATABASE_URL``)."""
    command.upgrade(alembic_config(url), "head")
