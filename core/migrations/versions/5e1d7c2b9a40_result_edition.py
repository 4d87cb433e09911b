"""result edition: the "第 N 版" people read counts corrections of a published result, not
the versions each department's part and each re-entry add

Revision ID: 5e1d7c2b9a40
Revises: 3b8d5f2a6c10
Create Date: 2026-11-30 05:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5e1d7c2b9a40'
down_revision: str | None = '3b8d5f2a6c10'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('case_result', schema=None) as batch_op:
        batch_op.add_column(sa.Column('edition', sa.Integer(), server_default='1', nullable=False))
    # a result's edition: 1, plus the corrections of the case up to and including it
    op.execute(
        "UPDATE case_result SET edition = 1 + ("
        "SELECT count(*) FROM case_result AS c WHERE c.case_id = case_result.case_id"
        " AND c.is_correction AND c.version <= case_result.version)"
    )


def downgrade() -> None:
    with op.batch_alter_table('case_result', schema=None) as batch_op:
        batch_op.drop_column('edition')
