"""platform accounts replace the per-platform account columns of officer

Revision ID: f6c077a21fbf
Revises: 81507834a484
Create Date: 2026-11-29 19:45:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f6c077a21fbf'
down_revision: str | None = '81507834a484'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The officer columns this revision retires, by the platform whose accounts they held. Their
# bindings move to the deployment's default tenant ("").
RETIRED = {'wecom': 'wecom_userid', 'dingtalk': 'dingtalk_userid'}


def upgrade() -> None:
    op.create_table('platform_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('officer_id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['officer_id'], ['officer.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('officer_id', 'platform', 'tenant'),
    sa.UniqueConstraint('platform', 'tenant', 'account')
    )
    with op.batch_alter_table('platform_account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_platform_account_officer_id'), ['officer_id'], unique=False)

    for platform, column in RETIRED.items():
        op.execute(sa.text(
            f"INSERT INTO platform_account (officer_id, platform, tenant, account) "
            f"SELECT id, :platform, '', {column} FROM officer "
            f"WHERE {column} IS NOT NULL AND {column} <> '' ORDER BY id"
        ).bindparams(platform=platform))
    with op.batch_alter_table('officer', schema=None) as batch_op:
        for column in RETIRED.values():
            batch_op.drop_column(column)  # and with it its unique constraint


def downgrade() -> None:
    with op.batch_alter_table('officer', schema=None) as batch_op:
        for column in RETIRED.values():
            batch_op.add_column(sa.Column(column, sa.String(length=64), nullable=True))
            batch_op.create_unique_constraint(f'officer_{column}_key', [column])
    for platform, column in RETIRED.items():
        op.execute(sa.text(
            f"UPDATE officer SET {column} = (SELECT account FROM platform_account a "
            f"WHERE a.officer_id = officer.id AND a.platform = :platform AND a.tenant = '')"
        ).bindparams(platform=platform))
    with op.batch_alter_table('platform_account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_platform_account_officer_id'))
    op.drop_table('platform_account')
