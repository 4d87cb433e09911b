"""upgrade steps: provisional deadlines stored on weekdays only are counted again

Since 2026-11-30 a year without holiday data rests on the fixed-date holidays (元旦 1/1, 劳动节
5/1–5/2, 国庆节 10/1–10/3); a provisional deadline stored before counted them as working days.
Counting it again needs the county's periods (Rules, from its settings) and an audit event,
which a migration has neither of: this one leaves the step for the application
(core.deadlines.run_upgrade_steps, at serve's start-up and every CLI command), where a
provisional deadline or an open objection may have been stored that way. A new database has
none and gets no step.

Revision ID: d4b7e19a3c52
Revises: 3f9e2b7c1d08
Create Date: 2026-11-30 23:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd4b7e19a3c52'
down_revision: str | None = '3f9e2b7c1d08'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STEP = 'recount_weekdays_only_provisional'


def upgrade() -> None:
    op.create_table(
        'upgrade_step',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    stored = sa.text(
        "SELECT 1 FROM joint_task WHERE reply_due_provisional = :yes"
        " UNION ALL SELECT 1 FROM inspection_case WHERE result_due_provisional = :yes"
        " UNION ALL SELECT 1 FROM objection WHERE state <> 'replied'"
    ).bindparams(yes=True)
    if op.get_bind().execute(stored).first() is not None:
        op.execute(sa.text("INSERT INTO upgrade_step (name) VALUES (:name)").bindparams(name=STEP))


def downgrade() -> None:
    op.drop_table('upgrade_step')
