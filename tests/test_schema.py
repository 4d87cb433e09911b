"""The migrations build exactly the schema core/models/ describes (on both databases)."""

import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core import officers
from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.db import make_engine, make_sessionmaker
from core.models import Base, ChatPlatform, PlatformAccount
from core.schema import alembic_config, upgrade
from tests.conftest import PG_ENV, PG_SKIP

PLATFORM_ACCOUNTS = "f6c077a21fbf"  # the revision that moved accounts out of officer


async def test_migrations_match_the_models(engine):
    await upgrade(engine)  # idempotent on an already migrated database

    def diff(sync_conn):
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """A database with no schema at all, to migrate step by step."""
    if request.param == "sqlite":
        eng = make_engine(str(tmp_path / "empty.sqlite3"))
        yield eng
        await eng.dispose()
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    name = f"lj_empty_{uuid.uuid4().hex[:10]}"
    admin = make_engine(base).execution_options(isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    eng = make_engine(base.rsplit("/", 1)[0] + "/" + name)
    try:
        yield eng
    finally:
        await eng.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_upgrade_moves_officer_account_columns_into_platform_accounts(empty_engine) -> None:
    before = ScriptDirectory.from_config(alembic_config()).get_revision(PLATFORM_ACCOUNTS)
    assert before is not None and isinstance(before.down_revision, str)
    await upgrade(empty_engine, before.down_revision)  # officers with one column per platform
    async with empty_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO department (id, code, name, short_name, "
                "is_market_regulator) VALUES (1, 'SCJG', '县市场监督管理局', '', false)"
            )
        )
        for officer_id, code, wecom, dingtalk in (
            (1, "A", "wx-a", None),
            (2, "B", "wx-b", "ding-b"),
            (3, "C", None, ""),
            (4, "D", None, "ding-d"),
        ):
            await conn.execute(
                text(
                    "INSERT INTO officer (id, code, name, "
                    "department_id, roles, cert_no, expertise, "
                    "region, mobile, wecom_userid, dingtalk_userid, "
                    "active) VALUES (:id, :code, :code, "
                    "1, '[]', '', '[]', '', '', :wecom, :dingtalk, true)"
                ),
                {"id": officer_id, "code": code, "wecom": wecom, "dingtalk": dingtalk},
            )
    await upgrade(empty_engine)

    async with make_sessionmaker(empty_engine)() as session:
        rows = (
            await session.execute(
                select(
                    PlatformAccount.officer_id,
                    PlatformAccount.platform,
                    PlatformAccount.tenant,
                    PlatformAccount.account,
                ).order_by(PlatformAccount.officer_id, PlatformAccount.platform.desc())
            )
        ).all()
        assert [tuple(r) for r in rows] == [
            (1, "wecom", "", "wx-a"),
            (2, "wecom", "", "wx-b"),
            (2, "dingtalk", "", "ding-b"),
            (4, "dingtalk", "", "ding-d"),
        ]
        ctx = Ctx(session=session, clock=FixedClock(china_noon(dt.date(2026, 3, 2))))
        found = await officers.by_account(ctx, ChatPlatform.DINGTALK, "ding-b")
        assert (
            found is not None and found.code == "B" and found.account(ChatPlatform.WECOM) == "wx-b"
        )
