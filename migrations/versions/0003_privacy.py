"""Privacy of the public pages: a tracking PIN for cases without a phone, failed tracking proofs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
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

    # A plain ADD COLUMN: batch mode would copy every case.
    op.add_column('case', sa.Column('pin_hash', sqlmodel.sql.sqltypes.AutoString(length=100),
                                    nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_column('pin_hash')
    with op.batch_alter_table('track_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_track_attempt_code_at')
        batch_op.drop_index('ix_track_attempt_address_at')
    op.drop_table('track_attempt')
