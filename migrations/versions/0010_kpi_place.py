"""Repeat places from the roll-ups: a day's reports at a place reported before within 90 days
(kpi_place), and the place index ordered by report time so that counting a place's reports
reads the index alone.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 00:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OVERDUE = ['overdue', 'state', 'community_id', 'street_id', 'district_id', 'city_id', 'sign_due_at',
           'handle_due_at']


def upgrade() -> None:
    op.create_table('kpi_place',
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('cases', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['category.id'], name=op.f('fk_kpi_place_category_id_category')),
    sa.ForeignKeyConstraint(['community_id'], ['unit.id'], name=op.f('fk_kpi_place_community_id_unit')),
    sa.PrimaryKeyConstraint('day', 'community_id', 'category_id', 'address', name=op.f('pk_kpi_place'))
    )
    op.create_index('ix_kpi_place_community', 'kpi_place', ['community_id', 'day'], unique=False)
    op.drop_index('ix_case_place', table_name='case')
    op.create_index('ix_case_place', 'case',
                    ['community_id', 'category_id', 'address', 'reported_at', 'closed_at'])
    op.drop_index('ix_case_overdue', table_name='case')
    op.create_index('ix_case_overdue', 'case', OVERDUE + ['unit_id'])
    op.create_index('ix_reward_claim_month', 'reward_claim',
                    ['district_id', 'created_at', 'street_id', 'community_id', 'category_id', 'state',
                     'amount_fen'])
    # Filled by the next refresh, which rebuilds.
    op.execute("DELETE FROM kpi_refresh")


def downgrade() -> None:
    op.drop_index('ix_reward_claim_month', table_name='reward_claim')
    op.drop_index('ix_case_overdue', table_name='case')
    op.create_index('ix_case_overdue', 'case', OVERDUE)
    op.drop_index('ix_case_place', table_name='case')
    op.create_index('ix_case_place', 'case', ['community_id', 'category_id', 'address', 'closed_at'])
    op.drop_index('ix_kpi_place_community', table_name='kpi_place')
    op.drop_table('kpi_place')
    op.execute("DELETE FROM kpi_refresh")
