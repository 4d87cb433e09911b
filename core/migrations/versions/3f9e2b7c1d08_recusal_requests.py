"""recusal requests: a 回避 is asked for and decided by the department leader like a 更换
(001 第十四条); the request says which it is. Existing requests are replacements.

Revision ID: 3f9e2b7c1d08
Revises: 7c4e2a9d1b63
Create Date: 2026-11-30 17:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '3f9e2b7c1d08'
down_revision: str | None = '7c4e2a9d1b63'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('replacement_request', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('kind', sa.String(length=16), server_default='replacement', nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('replacement_request', schema=None) as batch_op:
        batch_op.drop_column('kind')
