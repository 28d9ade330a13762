"""Alembic environment: the URL comes from DATABASE_URL (or the caller's config)."""

from alembic import context
from sqlmodel import SQLModel

from lib.core import config as app_config
from lib.tools import schema  # noqa: F401  (registers every table)
from lib.core.db import get_engine

target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    url = context.config.get_main_option("sqlalchemy.url") or app_config.database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        url = context.config.get_main_option("sqlalchemy.url") or app_config.database_url()
        with get_engine(url).connect() as connection:
            _run(connection)
    else:
        _run(connection)


def _run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if connection.in_transaction():
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
