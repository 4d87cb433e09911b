"""annual plan

Revision ID: c00f34521f49
Revises: 1a1441f83601
Create Date: 2026-11-29 19:42:35.921882
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c00f34521f49'
down_revision: str | None = '1a1441f83601'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('plan_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('lead_department_id', sa.Integer(), nullable=False),
    sa.Column('participant_ids', sa.JSON(), nullable=False),
    sa.Column('item_ids', sa.JSON(), nullable=False),
    sa.Column('scope', sa.JSON(), nullable=False),
    sa.Column('ratio', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=True),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['lead_department_id'], ['department.id'], ),
    sa.ForeignKeyConstraint(['task_id'], ['joint_task.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('year', 'code')
    )
    with op.batch_alter_table('plan_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plan_entry_lead_department_id'), ['lead_department_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_plan_entry_year'), ['year'], unique=False)

    with op.batch_alter_table('joint_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unplanned_reason', sa.Text(), nullable=False,
                                      server_default=''))



def downgrade() -> None:
    with op.batch_alter_table('joint_task', schema=None) as batch_op:
        batch_op.drop_column('unplanned_reason')

    with op.batch_alter_table('plan_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plan_entry_year'))
        batch_op.drop_index(batch_op.f('ix_plan_entry_lead_department_id'))

    op.drop_table('plan_entry')
