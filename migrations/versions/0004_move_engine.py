"""The move engine: an event counter on each case, extension requests, hurrying, and the access
log made append-only like the events.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs: batch mode would copy every case.
    op.add_column('case', sa.Column('event_seq', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('case', sa.Column('extension_until', sqlmodel.sql.sqltypes.UTCDateTime(),
                                    nullable=True))
    op.add_column('case', sa.Column('hurry_count', sa.Integer(), nullable=False,
                                    server_default='0'))
    op.add_column('case', sa.Column('hurried_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                    nullable=True))
    op.execute('UPDATE "case" SET event_seq = (SELECT coalesce(max(seq), 0) FROM case_event '
               'WHERE case_event.case_id = "case".id)')
    create_append_only_guard("access_log")


def create_append_only_guard(table: str) -> None:
    """As for case_event (0001): UPDATE and DELETE raise in the database itself."""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    else:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION append_only_guard()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS access_log_no_{verb}")
    else:
        op.execute("DROP TRIGGER IF EXISTS access_log_append_only ON access_log")
    with op.batch_alter_table('case', schema=None) as batch_op:
        for column in ('hurried_at', 'hurry_count', 'extension_until', 'event_seq'):
            batch_op.drop_column(column)
