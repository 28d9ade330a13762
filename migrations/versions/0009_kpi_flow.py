"""KPI roll-ups per day and category for every tier unit (not only communities), of the tier flow and of each period's exact closure quantiles per unit; an index
of located cases for the map.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


COUNTERS = ['reported', 'resident_reported', 'inspection_found', 'repeat', 'closed',
            'closed_community', 'closed_street', 'closed_on_time']
LATER = ['rated', 'satisfied', 'basic', 'dissatisfied', 'dispatched', 'signed_on_time', 'returned',
         'late', 'due', 'resolved', 'handled', 'reworked', 'hurried']


def _kpi_day(key: str) -> None:
    """The per-day-and-category roll-up, keyed by ``key`` (derived data: rebuilt by the next
    refresh)."""
    op.create_table('kpi_day',
    *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTERS],
    sa.Column('closure_hours', sa.Float(), nullable=False),
    sa.Column('closure_workdays', sa.Integer(), nullable=False),
    *[sa.Column(f'b{n}', sa.Integer(), nullable=False) for n in range(10)],
    *[sa.Column(name, sa.Integer(), nullable=False) for name in LATER],
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column(key, sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['category.id'], name=op.f('fk_kpi_day_category_id_category')),
    sa.ForeignKeyConstraint([key], ['unit.id'], name=op.f(f'fk_kpi_day_{key}_unit')),
    sa.PrimaryKeyConstraint('day', key, 'category_id', name=op.f('pk_kpi_day'))
    )


def upgrade() -> None:
    # Every tier unit's rows, not only communities': a district's month by category is then
    # 30 × 12 rows.
    op.drop_table('kpi_day')
    _kpi_day('unit_id')
    op.create_index('ix_kpi_day_unit', 'kpi_day', ['unit_id', 'day', 'category_id'], unique=False)
    op.create_table('kpi_flow',
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reached_tier', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('cases', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['category.id'], name=op.f('fk_kpi_flow_category_id_category')),
    sa.ForeignKeyConstraint(['community_id'], ['unit.id'], name=op.f('fk_kpi_flow_community_id_unit')),
    sa.PrimaryKeyConstraint('day', 'community_id', 'category_id', 'source', 'reached_tier', 'outcome',
                            name=op.f('pk_kpi_flow'))
    )
    op.create_table('kpi_quantile',
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('start', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('end', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('median_hours', sa.Float(), nullable=True),
    sa.Column('p90_hours', sa.Float(), nullable=True),
    sa.Column('median_workdays', sa.Float(), nullable=True),
    sa.Column('p90_workdays', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_kpi_quantile_unit_id_unit')),
    sa.PrimaryKeyConstraint('unit_id', 'start', name=op.f('pk_kpi_quantile'))
    )
    op.create_index('ix_case_located', 'case',
                    ['reported_at', 'community_id', 'category_id', 'longitude', 'latitude'],
                    unique=False, sqlite_where=sa.text('latitude IS NOT NULL'),
                    postgresql_where=sa.text('latitude IS NOT NULL'))
    op.drop_index('ix_case_dup', table_name='case')
    op.create_index('ix_case_dup', 'case', ['community_id', 'category_id', 'reported_at', 'address'])
    # The new roll-ups are filled by the next refresh, which rebuilds.
    op.execute("DELETE FROM kpi_refresh")


def downgrade() -> None:
    op.drop_index('ix_case_dup', table_name='case')
    op.create_index('ix_case_dup', 'case', ['community_id', 'category_id', 'reported_at'])
    op.drop_index('ix_case_located', table_name='case', sqlite_where=sa.text('latitude IS NOT NULL'),
                  postgresql_where=sa.text('latitude IS NOT NULL'))
    op.drop_table('kpi_quantile')
    op.drop_table('kpi_flow')
    op.drop_table('kpi_day')
    _kpi_day('community_id')
    op.create_index('ix_kpi_day_day', 'kpi_day', ['day', 'community_id'], unique=False)
    op.execute("DELETE FROM kpi_refresh")
