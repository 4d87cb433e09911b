"""Shared fixtures. Every test that takes `engine` runs on SQLite and again on PostgreSQL.

PostgreSQL runs when LIANJIAN_TEST_DATABASE_URL is set (CI sets it); otherwise those variants
skip with the reason. If it is set but the server cannot be reached, the tests fail: a CI run
must never silently lose its PostgreSQL half.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.db import make_engine, make_sessionmaker
from core.models import Base, Department
from core.rules import Rules
from core.schema import upgrade
from tests.browser import phone_page

PG_ENV = "LIANJIAN_TEST_DATABASE_URL"
PG_SKIP = (
    f"PostgreSQL tests need {PG_ENV}, e.g. "
    f"{PG_ENV}=postgresql://postgres@127.0.0.1:5432/test (.ci/run sets it)"
)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per session; each test gets a copy (fast, and tests migrations)."""
    path = tmp_path_factory.mktemp("tpl") / "template.sqlite3"

    async def build() -> None:
        engine = make_engine(str(path))
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(build())
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throw-away database on the test server, migrated once per session."""
    with fresh_pg_database() as url:
        yield url


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, migrated database on the test server, dropped afterwards (skips without one)."""
    base = os.environ.get(PG_ENV)
    if not base:
        if os.environ.get("LIANJIAN_REQUIRE_POSTGRES"):
            pytest.fail(f"LIANJIAN_REQUIRE_POSTGRES is set but {PG_ENV} is not")
        pytest.skip(PG_SKIP)
    name = f"lj_test_{uuid.uuid4().hex[:10]}"
    admin_url = base.rsplit("/", 1)[0] + "/" + base.rsplit("/", 1)[1]
    url = base.rsplit("/", 1)[0] + "/" + name

    async def create() -> None:
        admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        engine = make_engine(url)
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(create())
    try:
        yield url
    finally:

        async def drop() -> None:
            admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await admin.dispose()

        asyncio.run(drop())


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A test's own copy of the migrated SQLite template."""
    path = tmp_path / "test.sqlite3"
    shutil.copy(sqlite_template, path)
    return str(path)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url)
    if eng.dialect.name == "postgresql":
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        async with eng.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield eng
    await eng.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture
async def phone() -> AsyncIterator[Any]:
    """A page of headless chromium on a 375 px phone screen (tests/browser.py): the test skips
    without the browser, or fails where LIANJIAN_REQUIRE_BROWSER is set (CI)."""
    async with phone_page() as page:
        yield page


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(china_noon(dt.date(2026, 3, 2)))  # a Monday with calendar data


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as s:
        yield s


@pytest.fixture
def ctx(session: AsyncSession, clock: FixedClock) -> Ctx:
    return Ctx(session=session, clock=clock, rules=Rules())


@pytest.fixture
async def market_regulator(ctx: Ctx) -> None:
    """The county's 县市场监督管理局 (SJ), alone: what the importers' tests start from."""
    ctx.session.add(Department(code="SJ", name="县市场监督管理局", is_market_regulator=True))
    await ctx.session.commit()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many fuzz cases ran (tests/test_fuzz.py records them per test; xdist workers pass
    them on in their reports): a default run tries a few per family, `-m slow` over 10,000."""
    cases: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if name == "fuzz_cases":
                    cases[report.nodeid] = int(value)
                elif name == "fuzz_seconds":
                    seconds[report.nodeid] = float(value)
    if not cases:
        return
    terminalreporter.write_line(
        f"fuzz: {sum(cases.values())} cases in {len(cases)} tests, {sum(seconds.values()):.0f} s"
    )
    if sum(cases.values()) > 1000:
        for nodeid, n in sorted(cases.items()):
            terminalreporter.write_line(f"  {n:6d}  {seconds.get(nodeid, 0):6.1f} s  {nodeid}")
