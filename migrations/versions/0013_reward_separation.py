"""Rewards: staff phones, the monthly cap as a guarded per-reporter-month row, an index on
merged reports for the approver's involvement.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('reward_cap_use',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reporter_key', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('used_fen', sa.Integer(), nullable=False),
    sa.CheckConstraint('used_fen >= 0', name=op.f('ck_reward_cap_use_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reward_cap_use')),
    sa.UniqueConstraint('reporter_key', 'month', name='uq_reward_cap_use_reporter_key_month')
    )
    # What each reporter already used of each month's cap: the small awards (at most their
    # policy's second-approval threshold) approved from that month's pools, as the old check
    # summed them.
    op.execute("""
        INSERT INTO reward_cap_use (reporter_key, month, used_fen)
        SELECT c.reporter_key, p.month, SUM(c.amount_fen)
        FROM reward_claim c
        JOIN reward_pool p ON p.id = c.pool_id
        JOIN reward_policy r ON r.id = c.policy_id
        WHERE c.state IN ('approved_once', 'approved', 'paid')
          AND c.amount_fen <= r.second_approval_above_fen
        GROUP BY c.reporter_key, p.month
    """)
    # A claim's group (the case, the case it joined, the reports merged into either) is read
    # per waiting claim by the approval queue.
    op.create_index('ix_case_merged_into', 'case', ['merged_into_id'], unique=False,
                    sqlite_where=sa.text('merged_into_id IS NOT NULL'),
                    postgresql_where=sa.text('merged_into_id IS NOT NULL'))
    # Staff phones compare as digits only (lib.core.inputs.phone_digits).
    op.execute("UPDATE app_user SET phone = REPLACE(REPLACE(phone, '-', ''), ' ', '') "
               "WHERE phone IS NOT NULL")


def downgrade() -> None:
    op.drop_index('ix_case_merged_into', table_name='case',
                  sqlite_where=sa.text('merged_into_id IS NOT NULL'),
                  postgresql_where=sa.text('merged_into_id IS NOT NULL'))
    op.drop_table('reward_cap_use')
