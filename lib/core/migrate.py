"""The schema: Alembic run from code (``upgrade`` to the newest schema, for the CLI, tests and the
bench), and on PostgreSQL the grants of the app's own role.

On PostgreSQL the tables belong to an owner role that runs the migrations
(``MIGRATION_DATABASE_URL``); the app connects as another role (``DATABASE_URL``) that can read
and write rows but cannot UPDATE, DELETE or TRUNCATE the ledger (``case_event``) or the access
log, nor switch off their triggers (only an owner or a superuser could).
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, make_url, text

from lib.core import config


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(config.ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(config.ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", (url or config.migration_url()).replace("%", "%%"))
    return cfg


def migrate(url: str | None = None) -> None:
    """Upgrade ``url`` (default: the owner's URL, ``MIGRATION_DATABASE_URL`` or ``DATABASE_URL``)."""
    command.upgrade(alembic_config(url), "head")


# What the app's own role may do on PostgreSQL: read and write rows, never change the ledger.
APPEND_ONLY = ("case_event", "access_log", "reward_event", "reward_payout")


def grant_app_role(owner_url: str, role: str) -> None:
    """Give the app's role (not the tables' owner, not a superuser) what it needs and no more:
    SELECT, INSERT and UPDATE on the tables, only SELECT and INSERT on the append-only ones,
    nothing on the migration table but SELECT, no DELETE or TRUNCATE anywhere. Run after every
    migration (``python -m lib migrate`` does it when the app connects as another role)."""
    if not role.replace("_", "").isalnum():
        raise ValueError(f"not a role name: {role!r}")
    engine = create_engine(owner_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
            conn.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"'))
            conn.execute(text(f'GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO "{role}"'))
            for table in (*APPEND_ONLY, "alembic_version"):
                conn.execute(text(f'REVOKE UPDATE ON "{table}" FROM "{role}"'))
            conn.execute(text(f'REVOKE INSERT ON alembic_version FROM "{role}"'))
            conn.execute(text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
    finally:
        engine.dispose()


def app_role_to_grant() -> str | None:
    """The app's PostgreSQL role when migrations run as another one (the owner), else None."""
    app, owner = make_url(config.database_url()), make_url(config.migration_url())
    if app.get_backend_name() != "postgresql" or not app.username or app.username == owner.username:
        return None
    return app.username
