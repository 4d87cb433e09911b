"""referral to a department, acknowledged

Revision ID: 94a829f0b1bd
Revises: 18d6e8287eb4
Create Date: 2026-11-29 21:26:17.267444
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = '94a829f0b1bd'
down_revision: str | None = '18d6e8287eb4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.add_column(sa.Column('to_department_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_at', core.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_by_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_referral_to_department_id'), ['to_department_id'], unique=False)
        batch_op.create_foreign_key('fk_referral_acknowledged_by_id_officer', 'officer', ['acknowledged_by_id'], ['id'])
        batch_op.create_foreign_key('fk_referral_to_department_id_department', 'department', ['to_department_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_constraint('fk_referral_to_department_id_department', type_='foreignkey')
        batch_op.drop_constraint('fk_referral_acknowledged_by_id_officer', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_referral_to_department_id'))
        batch_op.drop_column('acknowledged_by_id')
        batch_op.drop_column('acknowledged_at')
        batch_op.drop_column('to_department_id')

