"""county setup: department counterpart, versioned items, officer leave

Revision ID: 40f085639eb5
Revises: efc388f8c772
Create Date: 2026-11-29 19:28:35.393408
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '40f085639eb5'
down_revision: str | None = 'efc388f8c772'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The initial schema left item's (department_id, code) unique constraint unnamed: PostgreSQL
# named it itself; SQLite's batch copy needs a naming convention to find it.
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s_%(column_1_name)s"}


def _old_unique() -> str:
    if op.get_bind().dialect.name == "sqlite":
        return "uq_item_department_id_code"
    return "item_department_id_code_key"


def upgrade() -> None:
    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.add_column(sa.Column('counterpart', sa.String(length=100), nullable=False,
                                      server_default=''))

    with op.batch_alter_table('item', schema=None, naming_convention=_SQLITE_NAMES) as batch_op:
        batch_op.drop_constraint(_old_unique(), type_='unique')
        batch_op.add_column(sa.Column('target_scope', sa.JSON(), nullable=False,
                                      server_default='[]'))
        batch_op.add_column(sa.Column('method', sa.String(length=200), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('basis', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('ratio_cap', sa.String(length=16), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('current', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
        batch_op.create_index(batch_op.f('ix_item_current'), ['current'], unique=False)
        batch_op.create_unique_constraint('uq_item_department_id_code_version',
                                          ['department_id', 'code', 'version'])

    with op.batch_alter_table('officer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inactive_reason', sa.String(length=100), nullable=False,
                                      server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('officer', schema=None) as batch_op:
        batch_op.drop_column('inactive_reason')

    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_constraint('uq_item_department_id_code_version', type_='unique')
        batch_op.drop_index(batch_op.f('ix_item_current'))
        for column in ('current', 'version', 'ratio_cap', 'basis', 'method', 'target_scope'):
            batch_op.drop_column(column)
        batch_op.create_unique_constraint('uq_item_department_id_code', ['department_id', 'code'])

    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.drop_column('counterpart')
