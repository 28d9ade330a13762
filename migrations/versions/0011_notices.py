"""Notices (通知): the outbox of SMS to reporters and in-app notices to units, written in the
transaction of the move they tell of, and who has read the in-app ones.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 01:21:15
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('lang', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('params', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('body', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('claimed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], name=op.f('fk_notice_case_id_case')),
    sa.ForeignKeyConstraint(['event_id'], ['case_event.id'], name=op.f('fk_notice_event_id_case_event')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_notice_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice')),
    sa.UniqueConstraint('key', name=op.f('uq_notice_key'))
    )
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notice_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_notice_outbox', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_notice_unit', ['unit_id', 'created_at'], unique=False)

    op.create_table('notice_read',
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('read_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['notice.id'], name=op.f('fk_notice_read_notice_id_notice')),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_notice_read_user_id_app_user')),
    sa.PrimaryKeyConstraint('notice_id', 'user_id', name=op.f('pk_notice_read'))
    )


def downgrade() -> None:
    op.drop_table('notice_read')
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.drop_index('ix_notice_unit')
        batch_op.drop_index('ix_notice_outbox')
        batch_op.drop_index(batch_op.f('ix_notice_case_id'))
    op.drop_table('notice')
