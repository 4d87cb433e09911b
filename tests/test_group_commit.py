"""bot.workers.GroupCommit: writes asked for together share one transaction, each caller
gets its own result, and a bad write fails only its own caller."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.workers import GroupCommit
from core.clock import FixedClock
from core.models import Department
from tests.server_helpers import make_services


def add(code: str, *, fail: bool = False) -> Callable[[AsyncSession], Awaitable[str]]:
    async def write(session: AsyncSession) -> str:
        session.add(Department(code=code, name=f"单位{code}"))
        await session.flush()
        if fail:
            raise ValueError(f"bad write {code}")
        return code

    return write


def count_commits(engine: AsyncEngine) -> list[int]:
    commits: list[int] = []
    event.listen(engine.sync_engine, "commit", lambda _conn: commits.append(1))
    return commits


async def test_writes_asked_for_together_share_one_commit(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    group = GroupCommit(make_services(sessionmaker, clock))
    commits = count_commits(engine)
    got = await asyncio.gather(*(group.run(add(f"D{i}")) for i in range(10)))
    async with sessionmaker() as session:
        stored = await session.scalar(select(func.count()).select_from(Department))
    assert got == [f"D{i}" for i in range(10)] and stored == 10
    assert len(commits) == 1


async def test_a_bad_write_fails_only_its_caller(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    group = GroupCommit(make_services(sessionmaker, clock))
    writes = [add("A"), add("B", fail=True), add("C")]
    results = await asyncio.gather(*(group.run(w) for w in writes), return_exceptions=True)
    async with sessionmaker() as session:
        stored = set(await session.scalars(select(Department.code)))
    assert results[0] == "A" and results[2] == "C"
    assert isinstance(results[1], ValueError)
    assert stored == {"A", "C"}


async def test_a_caller_that_went_away_does_not_stop_the_others(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    group = GroupCommit(make_services(sessionmaker, clock))
    gone = asyncio.ensure_future(group.run(add("X")))
    kept = asyncio.ensure_future(group.run(add("Y")))
    gone.cancel()
    assert await kept == "Y"
    with pytest.raises(asyncio.CancelledError):
        await gone
