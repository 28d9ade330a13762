"""Throttles: one table of counted hits for login, intake and tracking.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 10:40:00
"""

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The windows of the throttles at the time of this revision (lib.org.auth, lib.cases.intake):
# failures still inside them are carried over, so an upgrade does not hand a guesser a fresh
# allowance.
LOGIN_WINDOW = timedelta(minutes=15)
INTAKE_WINDOW = timedelta(hours=1)


def _carry_over() -> None:
    now = datetime.now(timezone.utc)
    at = sqlmodel.sql.sqltypes.UTCDateTime()
    login_since = sa.bindparam('login_since', now - LOGIN_WINDOW, type_=at)
    intake_since = sa.bindparam('intake_since', now - INTAKE_WINDOW, type_=at)
    # A login failure counts for its address, its account (since the account's last success
    # anywhere) and the pair (since the pair's last success), as lib.org.auth counted them.
    statements = [
        ("'addr:' || f.address", ""),
        ("'user:' || f.username",
         "AND NOT EXISTS (SELECT 1 FROM login_attempt s WHERE s.success = TRUE "
         "AND s.username = f.username AND s.at > f.at)"),
        ("'pair:' || f.username || '|' || f.address",
         "AND NOT EXISTS (SELECT 1 FROM login_attempt s WHERE s.success = TRUE "
         "AND s.username = f.username AND s.address = f.address AND s.at > f.at)"),
    ]
    for key, unless in statements:
        op.execute(sa.text(
            "INSERT INTO throttle_hit (kind, key, at, counted) "
            f"SELECT 'login', {key}, f.at, TRUE FROM login_attempt f "
            f"WHERE f.success = FALSE AND f.at > :login_since {unless}")
            .bindparams(login_since))
    op.execute(sa.text(
        "INSERT INTO throttle_hit (kind, key, at, counted) "
        "SELECT 'intake', 'addr:' || address, at, TRUE FROM intake_attempt "
        "WHERE at > :intake_since").bindparams(intake_since))
    op.execute(sa.text(
        "INSERT INTO throttle_hit (kind, key, at, counted) "
        "SELECT 'intake', 'phone:' || phone, at, TRUE FROM intake_attempt "
        "WHERE phone IS NOT NULL AND at > :intake_since").bindparams(intake_since))


def upgrade() -> None:
    op.create_table('throttle_hit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('counted', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_throttle_hit'))
    )
    with op.batch_alter_table('throttle_hit', schema=None) as batch_op:
        batch_op.create_index('ix_throttle_hit_kind_key_at', ['kind', 'key', 'at'], unique=False)
    _carry_over()
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempt_username_at')
        batch_op.drop_index('ix_login_attempt_address_at')
    op.drop_table('login_attempt')
    with op.batch_alter_table('intake_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_intake_attempt_phone_at')
        batch_op.drop_index('ix_intake_attempt_address_at')
    op.drop_table('intake_attempt')


def downgrade() -> None:
    # The old tables come back empty: throttles start counting afresh after a downgrade.
    op.create_table('intake_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intake_attempt'))
    )
    with op.batch_alter_table('intake_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_intake_attempt_address_at', ['address', 'at'], unique=False)
        batch_op.create_index('ix_intake_attempt_phone_at', ['phone', 'at'], unique=False)
    op.create_table('login_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempt'))
    )
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempt_address_at', ['address', 'at'], unique=False)
        batch_op.create_index('ix_login_attempt_username_at', ['username', 'at'], unique=False)
    with op.batch_alter_table('throttle_hit', schema=None) as batch_op:
        batch_op.drop_index('ix_throttle_hit_kind_key_at')
    op.drop_table('throttle_hit')
