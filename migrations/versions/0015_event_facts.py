"""Event facts as JSON: case_event.detail and reward_event.detail become jsonb on PostgreSQL and
JSON on SQLite (where JSON is text, so the rows written before read back as they are).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("case_event", "reward_event")


def _sqlite_retype(table: str, new_type: sa.types.TypeEngine) -> None:
    """SQLite cannot change a column's type in place, and rebuilding an append-only table that
    others reference (batch mode) would copy every row and trip their foreign keys. So: a new
    column beside it, the text copied over, the old column dropped and the new one renamed.
    The copy is an UPDATE, which the append-only guard refuses: the guard is lifted for it and
    put back as 0001 made it, in the same transaction."""
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    op.add_column(table, sa.Column('detail_new', new_type, nullable=True))
    op.execute(f"UPDATE {table} SET detail_new = detail WHERE detail IS NOT NULL")
    op.execute(f"ALTER TABLE {table} DROP COLUMN detail")
    op.execute(f"ALTER TABLE {table} RENAME COLUMN detail_new TO detail")
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in TABLES:
        if sqlite:
            _sqlite_retype(table, sa.JSON())
        else:
            # ALTER TABLE fires no UPDATE trigger: the append-only guard stays as it is.
            op.alter_column(table, 'detail', type_=postgresql.JSONB(),
                            existing_type=sa.VARCHAR(length=1000), existing_nullable=True,
                            postgresql_using='detail::jsonb')


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in TABLES:
        if sqlite:
            _sqlite_retype(table, sqlmodel.sql.sqltypes.AutoString(length=1000))
        else:
            op.alter_column(table, 'detail', type_=sa.VARCHAR(length=1000),
                            existing_type=postgresql.JSONB(), existing_nullable=True,
                            postgresql_using='detail::text')
