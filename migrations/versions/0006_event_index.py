"""Events by move and time, so that the ticks find what moved lately without walking every case.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 22:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_case_event_action_at', 'case_event', ['action', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_case_event_action_at', table_name='case_event')
