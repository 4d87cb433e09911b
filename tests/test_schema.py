"""The migrations build exactly the schema core/models.py describes (on both databases)."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.models import Base
from core.schema import upgrade


async def test_migrations_match_the_models(engine):
    await upgrade(engine)  # idempotent on an already migrated database

    def diff(sync_conn):
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []
