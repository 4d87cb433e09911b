"""The SQLite driver (core/sqlite_async.py): one trip to the connection's thread per statement
(none inside `inline()`), with results, errors, streaming and transactions exactly as aiosqlite
gives them."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core import sqlite_async
from core.db import make_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(str(tmp_path / "db.sqlite3"))
    async with eng.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
        await conn.execute(
            text("INSERT INTO t (v) VALUES (:v)"), [{"v": f"v{i:04d}"} for i in range(1000)]
        )
    yield eng
    await eng.dispose()


async def test_a_plain_file_uses_the_one_trip_driver(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, sqlite_async.Connection)


async def test_one_trip_to_the_thread_per_statement(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiosqlite took four (cursor, execute, fetch, close): ~70 per handled command."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # the connection's own set-up is not counted
        trips = count_trips(monkeypatch)
        rows = (await conn.execute(text("SELECT v FROM t WHERE id <= 3 ORDER BY id"))).all()
        updated = await conn.execute(text("UPDATE t SET v = v || 'x' WHERE id <= 5"))
        statements = len(trips)
    assert [r.v for r in rows] == ["v0000", "v0001", "v0002"]
    assert updated.rowcount == 5
    assert statements == 2


async def test_a_long_result_streams_in_order_past_the_prefetch(engine: AsyncEngine) -> None:
    assert sqlite_async.PREFETCH < 1000
    async with engine.connect() as conn:
        result = await conn.stream(text("SELECT v FROM t ORDER BY id"))
        got = [row.v async for row in result]
        every = (await conn.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all()
    assert got == every == [f"v{i:04d}" for i in range(1000)]


async def test_a_stream_closed_half_read_releases_its_read(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """An unfinished statement keeps its read snapshot, which stops a checkpoint from
    truncating the WAL: closing the result must finish it."""
    path = tmp_path / "db.sqlite3"
    async with engine.connect() as conn:
        result = await conn.stream(text("SELECT v FROM t ORDER BY id"))
        first = [row.v for row in await result.fetchmany(sqlite_async.PREFETCH + 10)]
        other = sqlite3.connect(path)
        other.execute("INSERT INTO t (v) VALUES ('later')")
        other.commit()
        busy_while_open = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        await result.close()
        await conn.rollback()
        busy_after = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        other.close()
    assert first[-1] == f"v{sqlite_async.PREFETCH + 9:04d}"
    assert (busy_while_open, busy_after) == (1, 0)


async def test_errors_and_rollback_are_the_drivers(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('new')"))
        with pytest.raises(exc.IntegrityError):
            await conn.execute(text("INSERT INTO t (v) VALUES ('v0001')"))
        await conn.rollback()
        counts = (await conn.execute(text("SELECT count(*), max(id) FROM t"))).one()
    assert tuple(counts) == (1000, 1000)  # the insert before the error was rolled back too


async def test_inserted_ids_come_back(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        result = await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
        returned = await conn.execute(text("INSERT INTO t (v) VALUES ('b'), ('c') RETURNING id"))
    assert result.lastrowid == 1001
    assert returned.scalars().all() == [1002, 1003]


def count_trips(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    trips: list[object] = []
    real = sqlite_async.Connection._execute

    async def counted(self: sqlite_async.Connection, fn: object, *args: object) -> object:
        trips.append(fn)
        return await real(self, fn, *args)

    monkeypatch.setattr(sqlite_async.Connection, "_execute", counted)
    return trips


LONG_READ = text(
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)"
    " SELECT count(*) FROM n"
)


async def test_inline_statements_take_no_trip(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        trips = count_trips(monkeypatch)
        with sqlite_async.inline():
            rows = (await conn.execute(text("SELECT v FROM t WHERE id <= 2 ORDER BY id"))).all()
            updated = await conn.execute(text("UPDATE t SET v = v || 'x' WHERE id <= 5"))
            inline_trips = len(trips)
            # releasing the outermost savepoint commits: that may checkpoint, on the thread
            await conn.execute(text("SAVEPOINT s"))
            await conn.execute(text("UPDATE t SET v = 'saved' WHERE id = 6"))
            await conn.execute(text("RELEASE SAVEPOINT s"))
            release_trips = len(trips) - inline_trips
        await conn.commit()
    assert [r.v for r in rows] == ["v0000", "v0001"]
    assert updated.rowcount == 5
    assert (inline_trips, release_trips) == (0, 1)


async def test_a_long_inline_read_is_interrupted_and_run_on_the_thread(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's thread gives a read only a budget of steps; the interrupted read undoes
    nothing of the transaction (an earlier write stays) and its answer comes from the thread."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        trips = count_trips(monkeypatch)
        with sqlite_async.inline():
            await conn.execute(text("INSERT INTO t (v) VALUES ('kept')"))
            counted = (await conn.execute(LONG_READ)).scalar()
            kept = (await conn.execute(text("SELECT count(*) FROM t WHERE v = 'kept'"))).scalar()
        long_trips = len(trips)
        await conn.rollback()
    assert (counted, kept, long_trips) == (300000, 1, 1)


async def test_an_inline_write_waits_for_a_lock_on_the_thread_not_the_loop(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """Another process holds the write lock: the write must wait for it without stopping the
    event loop (the loop itself releases the lock here, 0.2 s later)."""
    other = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (v) VALUES ('other')")
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, other.execute, "COMMIT")
    start = loop.time()
    try:
        async with engine.connect() as conn:
            with sqlite_async.inline():
                await conn.execute(text("INSERT INTO t (v) VALUES ('mine')"))
                await conn.commit()
                got = await conn.execute(text("SELECT v FROM t WHERE id > 1000 ORDER BY id"))
                values = got.scalars().all()
        waited = loop.time() - start
    finally:
        other.close()
    assert values == ["other", "mine"]
    assert waited < 5  # not the busy timeout (10 s) with the loop stopped


async def test_after_inline_statements_the_thread_waits_for_locks_again(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        with sqlite_async.inline():
            await conn.execute(text("UPDATE t SET v = v || 'x' WHERE id = 1"))
        await conn.commit()
        timeout = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
    assert timeout == sqlite_async.BUSY_TIMEOUT_MS


async def test_ending_a_transaction_that_never_began_takes_no_trip(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite3 opens a transaction at the first write: after reads alone commit and rollback
    have nothing to end, and a write's commit still lands."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        await conn.commit()
        trips = count_trips(monkeypatch)
        await conn.execute(text("SELECT v FROM t WHERE id = 1"))
        await conn.commit()
        await conn.execute(text("SELECT v FROM t WHERE id = 2"))
        await conn.rollback()
        reads_only = len(trips)
        await conn.execute(text("UPDATE t SET v = 'changed' WHERE id = 3"))
        await conn.commit()
    async with engine.connect() as conn:
        changed = (await conn.execute(text("SELECT v FROM t WHERE id = 3"))).scalar()
    assert (reads_only, changed) == (2, "changed")  # the two SELECTs' trips, no more
