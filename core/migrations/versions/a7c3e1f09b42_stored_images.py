"""stored images (the leaders' summary chart, sent by content hash)

Revision ID: a7c3e1f09b42
Revises: 5d0c2a7e9b41
Create Date: 2026-11-29 22:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = 'a7c3e1f09b42'
down_revision: str | None = '5d0c2a7e9b41'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('stored_image',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('mime', sa.String(length=40), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('sha256')
    )


def downgrade() -> None:
    op.drop_table('stored_image')
