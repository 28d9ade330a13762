"""Reporter proof: one-time codes sent to the reporter, a PIN for every new case.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('reporter_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('salt', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('code_hash', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('used_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], name=op.f('fk_reporter_code_case_id_case')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reporter_code'))
    )
    with op.batch_alter_table('reporter_code', schema=None) as batch_op:
        batch_op.create_index('ix_reporter_code_case_at', ['case_id', 'created_at'], unique=False)
    # Failed tracking proofs are counted by the one throttle of login, intake and tracking now.
    with op.batch_alter_table('track_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_track_attempt_code_at')
        batch_op.drop_index('ix_track_attempt_address_at')
    op.drop_table('track_attempt')


def downgrade() -> None:
    op.create_table('track_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_track_attempt'))
    )
    with op.batch_alter_table('track_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_track_attempt_address_at', ['address', 'at'], unique=False)
        batch_op.create_index('ix_track_attempt_code_at', ['code', 'at'], unique=False)
    with op.batch_alter_table('reporter_code', schema=None) as batch_op:
        batch_op.drop_index('ix_reporter_code_case_at')
    op.drop_table('reporter_code')
