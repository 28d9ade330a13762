"""Assessment a unit cannot game: each case's first commitment, when it was resolved and its
normalised place; the waits for a unit's first action (case_wait); the roll-ups' new counters;
closed assessment months, their stored figures and the adjustments made after they closed.
The existing cases get their first commitment, resolution moment, place key and waits from
their events (lib.cases.integrity.backfill).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

from lib.cases.integrity import backfill
from lib.core.clock import time_of_day
from lib.core.settings import parse
from lib.core.workcal import CLOSE_OF_DAY

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FACTS = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
NEW_COUNTERS = ('closed_late', 'called_back', 'resolved_late', 'waits', 'responded')


def upgrade() -> None:
    op.create_table('kpi_month',
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('start', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('end', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('settings', FACTS, nullable=True),
    sa.PrimaryKeyConstraint('label', name=op.f('pk_kpi_month'))
    )
    op.create_table('kpi_month_unit',
    sa.Column('reported', sa.Integer(), nullable=False),
    sa.Column('resident_reported', sa.Integer(), nullable=False),
    sa.Column('inspection_found', sa.Integer(), nullable=False),
    sa.Column('repeat', sa.Integer(), nullable=False),
    sa.Column('closed', sa.Integer(), nullable=False),
    sa.Column('closed_community', sa.Integer(), nullable=False),
    sa.Column('closed_street', sa.Integer(), nullable=False),
    sa.Column('closed_on_time', sa.Integer(), nullable=False),
    sa.Column('closed_late', sa.Integer(), nullable=False),
    sa.Column('closure_hours', sa.Float(), nullable=False),
    sa.Column('closure_workdays', sa.Integer(), nullable=False),
    sa.Column('b0', sa.Integer(), nullable=False),
    sa.Column('b1', sa.Integer(), nullable=False),
    sa.Column('b2', sa.Integer(), nullable=False),
    sa.Column('b3', sa.Integer(), nullable=False),
    sa.Column('b4', sa.Integer(), nullable=False),
    sa.Column('b5', sa.Integer(), nullable=False),
    sa.Column('b6', sa.Integer(), nullable=False),
    sa.Column('b7', sa.Integer(), nullable=False),
    sa.Column('b8', sa.Integer(), nullable=False),
    sa.Column('b9', sa.Integer(), nullable=False),
    sa.Column('called_back', sa.Integer(), nullable=False),
    sa.Column('rated', sa.Integer(), nullable=False),
    sa.Column('satisfied', sa.Integer(), nullable=False),
    sa.Column('basic', sa.Integer(), nullable=False),
    sa.Column('dissatisfied', sa.Integer(), nullable=False),
    sa.Column('dispatched', sa.Integer(), nullable=False),
    sa.Column('signed_on_time', sa.Integer(), nullable=False),
    sa.Column('returned', sa.Integer(), nullable=False),
    sa.Column('late', sa.Integer(), nullable=False),
    sa.Column('due', sa.Integer(), nullable=False),
    sa.Column('resolved', sa.Integer(), nullable=False),
    sa.Column('resolved_late', sa.Integer(), nullable=False),
    sa.Column('waits', sa.Integer(), nullable=False),
    sa.Column('responded', sa.Integer(), nullable=False),
    sa.Column('handled', sa.Integer(), nullable=False),
    sa.Column('reworked', sa.Integer(), nullable=False),
    sa.Column('hurried', sa.Integer(), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('unit_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('median_hours', sa.Float(), nullable=True),
    sa.Column('p90_hours', sa.Float(), nullable=True),
    sa.Column('median_workdays', sa.Float(), nullable=True),
    sa.Column('p90_workdays', sa.Float(), nullable=True),
    sa.Column('extras', FACTS, nullable=True),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_kpi_month_unit_unit_id_unit')),
    sa.PrimaryKeyConstraint('label', 'unit_id', 'category_id', name=op.f('pk_kpi_month_unit'))
    )
    op.create_table('case_wait',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('ended_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('end_action', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True),
    sa.Column('answered', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], name=op.f('fk_case_wait_case_id_case')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_case_wait_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_wait'))
    )
    with op.batch_alter_table('case_wait', schema=None) as batch_op:
        batch_op.create_index('ix_case_wait_case_id', ['case_id', 'ended_at'], unique=False)
        batch_op.create_index('ix_case_wait_started_at', ['started_at'], unique=False)

    op.create_table('kpi_adjustment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('shown_in', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('changes', FACTS, nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], name=op.f('fk_kpi_adjustment_case_id_case')),
    sa.ForeignKeyConstraint(['community_id'], ['unit.id'], name=op.f('fk_kpi_adjustment_community_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kpi_adjustment'))
    )
    with op.batch_alter_table('kpi_adjustment', schema=None) as batch_op:
        batch_op.create_index('ix_kpi_adjustment_shown_in', ['shown_in', 'community_id'], unique=False)

    op.add_column('case', sa.Column('committed_due_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                    nullable=True))
    op.add_column('case', sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column('case', sa.Column('place_key', sqlmodel.sql.sqltypes.AutoString(length=200),
                                    nullable=True))
    op.create_index('ix_case_committed_due_at', 'case', ['committed_due_at'], unique=False)
    op.create_index('ix_case_place_key', 'case',
                    ['community_id', 'category_id', 'place_key', 'reported_at', 'closed_at'],
                    unique=False)

    for table in ('kpi_day', 'kpi_unit_day'):
        for column in NEW_COUNTERS:
            op.add_column(table, sa.Column(column, sa.Integer(), nullable=False,
                                           server_default='0'))
    # The roll-ups count by the new definitions from their next build: forget how far they were.
    op.execute('DELETE FROM kpi_refresh')
    # The cases that exist: their first commitment, resolution moment, normalised place and
    # waits, as their events give them (the replay the integrity check uses), chunk by chunk.
    conn = op.get_bind()
    close = conn.execute(sa.text("SELECT value FROM setting WHERE key = 'deadline.close_of_day'"))\
        .scalar()
    try:
        close = time_of_day(parse('deadline.close_of_day', close)) if close else CLOSE_OF_DAY
    except ValueError:
        close = CLOSE_OF_DAY
    backfill(Session(bind=conn), close=close)



def downgrade() -> None:
    for table in ('kpi_day', 'kpi_unit_day'):
        for column in NEW_COUNTERS:
            with op.batch_alter_table(table) as batch_op:
                batch_op.drop_column(column)
    op.execute('DELETE FROM kpi_refresh')

    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_index('ix_case_place_key')
        batch_op.drop_index('ix_case_committed_due_at')
        batch_op.drop_column('place_key')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('committed_due_at')

    with op.batch_alter_table('kpi_adjustment', schema=None) as batch_op:
        batch_op.drop_index('ix_kpi_adjustment_shown_in')

    op.drop_table('kpi_adjustment')
    with op.batch_alter_table('case_wait', schema=None) as batch_op:
        batch_op.drop_index('ix_case_wait_started_at')
        batch_op.drop_index('ix_case_wait_case_id')

    op.drop_table('case_wait')
    op.drop_table('kpi_month_unit')
    op.drop_table('kpi_month')
