"""Alembic environment. core.schema always hands us a live connection (async engine, run_sync)."""

from __future__ import annotations

from alembic import context

from core.models import Base

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise SystemExit("run migrations through `lianjian db upgrade`")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    # the column types live in core.models.base; migrations name them as core.models.X, the
    # package every migration imports
    user_module_prefix="core.models.",
)
with context.begin_transaction():
    context.run_migrations()
