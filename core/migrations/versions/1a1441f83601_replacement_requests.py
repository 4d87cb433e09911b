"""replacement requests

Revision ID: 1a1441f83601
Revises: 94a829f0b1bd
Create Date: 2026-11-29 21:29:02.991927
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = '1a1441f83601'
down_revision: str | None = '94a829f0b1bd'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('replacement_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('officer_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
    sa.Column('decided_at', core.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['inspection_case.id'], ),
    sa.ForeignKeyConstraint(['decided_by_id'], ['officer.id'], ),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], ),
    sa.ForeignKeyConstraint(['officer_id'], ['officer.id'], ),
    sa.ForeignKeyConstraint(['requested_by_id'], ['officer.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('replacement_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_replacement_request_case_id'), ['case_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('replacement_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_replacement_request_case_id'))

    op.drop_table('replacement_request')
