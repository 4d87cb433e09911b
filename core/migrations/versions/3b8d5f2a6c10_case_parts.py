"""case parts: each department's part of a case result (谁检查、谁录入, 000 §九–十)

Revision ID: 3b8d5f2a6c10
Revises: a7c3e1f09b42
Create Date: 2026-11-30 01:50:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = '3b8d5f2a6c10'
down_revision: str | None = 'a7c3e1f09b42'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('case_part',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('entered_by_id', sa.Integer(), nullable=False),
    sa.Column('entered_at', core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['inspection_case.id'], ),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], ),
    sa.ForeignKeyConstraint(['entered_by_id'], ['officer.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'department_id')
    )
    with op.batch_alter_table('case_part', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_part_case_id'), ['case_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case_part', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_part_case_id'))
    op.drop_table('case_part')
