"""case part fields: each department's own methods, follow-ups and remarks (谁检查、谁录入)

A version's case-level fields are merged from its parts, so one department's entry no longer
replaces what another entered. Existing parts start from the version they were last entered
in: the fields as that entry left them.

Revision ID: 7c4e2a9d1b63
Revises: 5e1d7c2b9a40
Create Date: 2026-11-30 14:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '7c4e2a9d1b63'
down_revision: str | None = '5e1d7c2b9a40'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COPIED = ('methods', 'followups', 'followup_done', 'followup_done_on', 'remarks')


def upgrade() -> None:
    with op.batch_alter_table('case_part', schema=None) as batch_op:
        batch_op.add_column(sa.Column('methods', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('followups', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(
            sa.Column('followup_done', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column('followup_done_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('remarks', sa.Text(), server_default='', nullable=False))
    for column in COPIED:
        op.execute(
            f"UPDATE case_part SET {column} = (SELECT r.{column} FROM case_result AS r"
            f" WHERE r.case_id = case_part.case_id AND r.version = case_part.version)"
            f" WHERE EXISTS (SELECT 1 FROM case_result AS r"
            f" WHERE r.case_id = case_part.case_id AND r.version = case_part.version)"
        )


def downgrade() -> None:
    with op.batch_alter_table('case_part', schema=None) as batch_op:
        for column in reversed(COPIED):
            batch_op.drop_column(column)
