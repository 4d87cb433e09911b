"""Schema management through Alembic (`lianjian db upgrade`, also run on serve start-up)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import schema_refused
from core.errors import ValidationFailed

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> bool:
    """Bring the database to the newest revision (idempotent), all or nothing; a database
    that refuses it is one Chinese line saying what to do (core.db.schema_refused). Whether
    its revision changed (`db upgrade` says so)."""
    try:
        return await _upgrade_all(engine, revision)
    except exc.DBAPIError as err:
        raise schema_refused(engine.url, err) from err


async def _upgrade_all(engine: AsyncEngine, revision: str) -> bool:
    if engine.dialect.name != "sqlite":
        async with engine.begin() as conn:
            return await conn.run_sync(lambda sync: _upgrade(sync, revision))
    async with engine.connect() as conn:
        # Batch mode rebuilds a table to alter it (copy, drop, rename): with foreign keys
        # enforced, dropping a referenced table fails. The pragma only takes effect outside a
        # transaction, and the driver opens none before DDL, so BEGIN is ours: a failing
        # migration then leaves no half-altered table behind.
        await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await conn.exec_driver_sql("BEGIN")
        changed = await conn.run_sync(lambda sync: _upgrade(sync, revision))
        broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).first()
        if broken is not None:
            await conn.rollback()
            raise RuntimeError(f"migration left a dangling reference in table {broken[0]}")
        await conn.commit()
        await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
    return changed


def _upgrade(connection: Connection, revision: str) -> bool:
    cfg = alembic_config(connection)
    _refuse_newer(connection, ScriptDirectory.from_config(cfg))
    before = set(MigrationContext.configure(connection).get_current_heads())
    command.upgrade(cfg, revision)
    return set(MigrationContext.configure(connection).get_current_heads()) != before


def _refuse_newer(connection: Connection, scripts: ScriptDirectory) -> None:
    """A revision this version does not know was made by a newer one: alembic's traceback
    ("Can't locate revision") was every command's, serve's too."""
    known = {script.revision for script in scripts.walk_revisions()}
    for current in MigrationContext.configure(connection).get_current_heads():
        if current not in known:
            raise ValidationFailed(
                f"数据库由更新版本的联检建立（版本 {current}），这个版本打不开："
                "请安装那个版本的联检，或恢复升级前做的备份"
            )
