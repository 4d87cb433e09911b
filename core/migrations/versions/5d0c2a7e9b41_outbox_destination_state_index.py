"""outbox: one index for a destination's rows by state (rate limit and order checks)

Revision ID: 5d0c2a7e9b41
Revises: e57bdf98316c
Create Date: 2026-11-29 22:55:00.000000
"""
from collections.abc import Sequence

from alembic import op

revision: str = '5d0c2a7e9b41'
down_revision: str | None = 'e57bdf98316c'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_dest_sent')
        batch_op.create_index(
            'ix_outbox_dest_state_sent', ['dest_key', 'state', 'sent_at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_dest_state_sent')
        batch_op.create_index('ix_outbox_dest_sent', ['dest_key', 'sent_at'], unique=False)
