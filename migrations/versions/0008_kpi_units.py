"""KPI roll-ups per unit and day (a district's month is one row a day; departments' work), and
area indexes that carry closure times so that a period's exact median is read from the index.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTERS = ['reported', 'resident_reported', 'inspection_found', 'repeat', 'closed',
            'closed_community', 'closed_street', 'closed_on_time']
LATER = ['rated', 'satisfied', 'basic', 'dissatisfied', 'dispatched', 'signed_on_time', 'returned',
         'late', 'due', 'resolved', 'handled', 'reworked', 'hurried']
TIERS = ('community', 'street', 'district', 'city')
CLOSURE = ['category_id', 'reached_tier', 'closure_hours', 'closure_workdays']


def upgrade() -> None:
    op.create_table('kpi_unit_day',
    *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTERS],
    sa.Column('closure_hours', sa.Float(), nullable=False),
    sa.Column('closure_workdays', sa.Integer(), nullable=False),
    *[sa.Column(f'b{n}', sa.Integer(), nullable=False) for n in range(10)],
    *[sa.Column(name, sa.Integer(), nullable=False) for name in LATER],
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_kpi_unit_day_unit_id_unit')),
    sa.PrimaryKeyConstraint('day', 'unit_id', name=op.f('pk_kpi_unit_day'))
    )
    op.create_index('ix_kpi_unit_day_unit', 'kpi_unit_day', ['unit_id', 'day'], unique=False)
    for tier in TIERS:
        op.drop_index(f'ix_case_{tier}_state', table_name='case')
        op.create_index(f'ix_case_{tier}_state', 'case',
                        [f'{tier}_id', 'state', 'closed_at', *CLOSURE], unique=False)
    # The unit rows are filled by the next ``python -m lib kpi-rebuild`` (or the first refresh).
    op.execute("DELETE FROM kpi_refresh")


def downgrade() -> None:
    for tier in TIERS:
        op.drop_index(f'ix_case_{tier}_state', table_name='case')
        op.create_index(f'ix_case_{tier}_state', 'case', [f'{tier}_id', 'state', 'closed_at'],
                        unique=False)
    op.drop_index('ix_kpi_unit_day_unit', table_name='kpi_unit_day')
    op.drop_table('kpi_unit_day')
