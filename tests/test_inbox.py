"""core.inbox and the inbox worker on SQLite and PostgreSQL: de-duplication, leases, retries."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.workers import InboxWorker
from core import inbox
from core.clock import FixedClock
from core.db import make_engine, make_sessionmaker
from core.leases import backlog
from core.messages import Event, Platform
from core.models import InboxEvent
from tests.server_helpers import ReplyingHandler, make_services, outbox_count

LEASE = dt.timedelta(seconds=60)


def text_event(event_id: str = "m1", text: str = "任务") -> Event:
    return Event(platform="wecom", event_id=event_id, user_id="zhangsan", text=text)


async def inbox_rows(session: AsyncSession) -> list[InboxEvent]:
    return list((await session.scalars(select(InboxEvent).order_by(InboxEvent.id))).all())


async def test_duplicate_store_returns_false_and_changes_nothing(
    session: AsyncSession, clock: FixedClock
) -> None:
    assert await inbox.store(session, text_event(), now=clock.now()) is True
    await session.commit()
    clock.advance(dt.timedelta(seconds=5))
    assert await inbox.store(session, text_event(text="不同的内容"), now=clock.now()) is False
    await session.commit()
    rows = await inbox_rows(session)
    assert len(rows) == 1
    assert rows[0].payload["text"] == "任务"
    assert rows[0].received_at == clock.now() - dt.timedelta(seconds=5)


async def test_same_event_id_on_another_platform_is_another_event(
    session: AsyncSession, clock: FixedClock
) -> None:
    assert await inbox.store(session, text_event(), now=clock.now())
    other = text_event().model_copy(update={"platform": Platform.DINGTALK})
    assert await inbox.store(session, other, now=clock.now())


async def test_overlong_event_id_is_hashed_stably(session: AsyncSession, clock: FixedClock) -> None:
    long_id = "card:zhangsan:" + "t" * 200
    assert await inbox.store(session, text_event(long_id), now=clock.now())
    assert not await inbox.store(session, text_event(long_id), now=clock.now())
    (row,) = await inbox_rows(session)
    assert row.event_id.startswith("sha256:") and len(row.event_id) <= 128
    assert inbox.event_of(row).event_id == long_id


async def test_claim_leases_rows_until_the_lease_runs_out(
    session: AsyncSession, clock: FixedClock
) -> None:
    for i in range(3):
        await inbox.store(session, text_event(f"m{i}"), now=clock.now())
    await session.commit()
    first = await inbox.claim_pending(session, 2, clock.now(), LEASE)
    await session.commit()
    assert [inbox.event_of(r).event_id for r in first] == ["m0", "m1"]
    second = await inbox.claim_pending(session, 10, clock.now(), LEASE)
    await session.commit()
    assert [inbox.event_of(r).event_id for r in second] == ["m2"]
    assert await inbox.claim_pending(session, 10, clock.now(), LEASE) == []
    clock.advance(LEASE + dt.timedelta(seconds=1))  # the worker holding them died
    again = await inbox.claim_pending(session, 10, clock.now(), LEASE)
    assert len(again) == 3


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite keeps no dead rows
async def test_a_claim_walks_the_index_for_the_rest_of_its_transaction(
    session: AsyncSession, clock: FixedClock
) -> None:
    """Each handled event leaves a dead entry under "pending" in the index until VACUUM; a
    bitmap scan (the planner's choice on a table never analysed) read them all at every claim
    (3,000 a claim in bench/soak.py), an index walk marks them for the next claim to skip."""
    await inbox.store(session, text_event(), now=clock.now())
    await session.commit()
    assert len(await inbox.claim_pending(session, 10, clock.now(), LEASE)) == 1
    assert await session.scalar(text("SHOW enable_bitmapscan")) == "off"
    await session.commit()
    assert await session.scalar(text("SHOW enable_bitmapscan")) == "on"  # that transaction's


async def test_failed_event_backs_off_then_dies(session: AsyncSession, clock: FixedClock) -> None:
    await inbox.store(session, text_event(), now=clock.now())
    (row,) = await inbox.claim_pending(session, 1, clock.now(), LEASE)
    retry_at = clock.now() + dt.timedelta(seconds=30)
    state = await inbox.mark_failed(
        session, row.id, "boom", now=clock.now(), retry_at=retry_at, max_attempts=2
    )
    await session.commit()
    assert state == "pending"
    assert await inbox.claim_pending(session, 1, clock.now(), LEASE) == []  # not due yet
    clock.advance(dt.timedelta(seconds=31))
    (row,) = await inbox.claim_pending(session, 1, clock.now(), LEASE)
    assert (
        await inbox.mark_failed(
            session, row.id, "boom again", now=clock.now(), retry_at=clock.now(), max_attempts=2
        )
        == "dead"
    )
    await session.commit()
    (row,) = await inbox_rows(session)
    assert (row.state, row.attempts, row.error) == ("dead", 2, "boom again")


async def test_worker_gives_duplicates_one_effect(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    services = make_services(sessionmaker, clock)
    async with sessionmaker() as session:
        for _ in range(3):  # the platform retried twice
            await inbox.store(session, text_event(), now=clock.now())
        await inbox.store(session, text_event("m2"), now=clock.now())
        await session.commit()
    handler = ReplyingHandler(clock)
    worker = InboxWorker(services, handler)
    assert await worker.run_once() == 2
    assert await worker.run_once() == 0
    async with sessionmaker() as session:
        assert await outbox_count(session) == 2
        assert {r.state for r in await inbox_rows(session)} == {"done"}


async def test_failing_handler_rolls_back_and_retries_later(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    services = make_services(sessionmaker, clock, inbox={"max_attempts": 3})
    async with sessionmaker() as session:
        await inbox.store(session, text_event(), now=clock.now())
        await session.commit()
    worker = InboxWorker(services, ReplyingHandler(clock, fail_times=1), jitter=lambda: 0.0)
    assert await worker.run_once() == 1  # fails; its outbox row is rolled back
    async with sessionmaker() as session:
        (row,) = await inbox_rows(session)
        assert (row.state, row.attempts) == ("pending", 1)
        assert "handler exploded" in row.error
        assert await outbox_count(session) == 0
    assert await worker.run_once() == 0  # backing off
    clock.advance(dt.timedelta(seconds=services.settings.inbox.backoff_base_s))
    assert await worker.run_once() == 1
    async with sessionmaker() as session:
        (row,) = await inbox_rows(session)
        assert row.state == "done"
        assert await outbox_count(session) == 1


async def test_event_dies_after_max_attempts_without_stopping_the_worker(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    services = make_services(sessionmaker, clock, inbox={"max_attempts": 2})
    async with sessionmaker() as session:
        await inbox.store(session, text_event("bad"), now=clock.now())
        await session.commit()
    worker = InboxWorker(services, ReplyingHandler(clock, fail_times=99), jitter=lambda: 0.0)
    for _ in range(2):
        await worker.run_once()
        clock.advance(dt.timedelta(hours=1))
    async with sessionmaker() as session:
        (row,) = await inbox_rows(session)
        assert (row.state, row.attempts) == ("dead", 2)
        queues = await backlog(session)
    assert (queues.pending_inbox, queues.dead_inbox) == (0, 1)


async def test_second_worker_after_lease_expiry_cannot_double_the_effect(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """A slow worker's lease ran out and another took the row: only one effect may commit."""
    services = make_services(sessionmaker, clock)
    async with sessionmaker() as session:
        await inbox.store(session, text_event(), now=clock.now())
        await session.commit()
        (slow_row,) = await inbox.claim_pending(session, 1, clock.now(), LEASE)
        await session.commit()
    clock.advance(LEASE * 2)
    fast = InboxWorker(services, ReplyingHandler(clock))
    assert await fast.run_once() == 1
    slow = InboxWorker(services, ReplyingHandler(clock))
    assert await slow.handle_row(slow_row) == 0
    async with sessionmaker() as session:
        assert await outbox_count(session) == 1
        total = await session.scalar(select(func.count()).select_from(InboxEvent))
    assert total == 1


async def test_store_many_marks_duplicates_inside_and_across_batches(
    session: AsyncSession, clock: FixedClock
) -> None:
    assert await inbox.store(session, text_event("old"), now=clock.now())
    batch = [text_event("a"), text_event("old"), text_event("b"), text_event("a")]
    assert await inbox.store_many(session, batch, now=clock.now()) == [True, False, True, False]
    await session.commit()
    assert sorted(r.event_id for r in await inbox_rows(session)) == ["a", "b", "old"]


# ---------------------------------------------------------------- the SQLite writer-thread path


def raw_rows(path: Path) -> list[tuple[object, ...]]:
    """Every stored column as SQLite holds it (text as written, and its storage class); the
    payload as the JSON it holds (the two paths escape non-ASCII text differently)."""
    with sqlite3.connect(path) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(inbox)")]
        select_list = ", ".join(f"{c}, typeof({c})" for c in columns)
        rows = list(conn.execute(f"SELECT {select_list} FROM inbox ORDER BY id"))
    at = 2 * columns.index("payload")
    return [(*r[:at], json.loads(r[at]), *r[at + 1 :]) for r in rows]


async def test_sqlite_file_path_writes_what_the_orm_path_writes(
    sqlite_template: Path, tmp_path: Path
) -> None:
    events = [
        text_event("m1", '任务 "引号" ✓'),
        text_event("x" * 200),
        Event(
            platform="wecom",
            kind="card_action",
            event_id="card:u:t:k:1",
            user_id="u",
            action_key="confirm",
            raw={"TaskId": "t", "嵌套": "值"},
            received_ms=17,
        ),
    ]
    times = [
        dt.datetime(2026, 3, 2, 4, 0, tzinfo=dt.UTC),  # no microseconds
        dt.datetime(2026, 3, 2, 12, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    ]
    paths = {name: tmp_path / f"{name}.sqlite3" for name in ("orm", "fast")}
    for path in paths.values():
        shutil.copy(sqlite_template, path)
    engines = {name: make_engine(str(path)) for name, path in paths.items()}
    try:
        fast = inbox.SqliteFileInbox.for_engine(engines["fast"])
        assert fast is not None
        # the second burst repeats the first three (duplicates change nothing) and adds one
        bursts = [
            (times[0], events, [True] * 3),
            (times[1], [*events, text_event("m2")], [False] * 3 + [True]),
        ]
        for now, burst, new in bursts:
            async with make_sessionmaker(engines["orm"])() as session:
                assert await inbox.store_many(session, burst, now=now) == new
                await session.commit()
            assert await fast.store_many(burst, now=now) == new
        await fast.close()
        assert raw_rows(paths["fast"]) == raw_rows(paths["orm"])
        assert len(raw_rows(paths["fast"])) == 4

        async with make_sessionmaker(engines["fast"])() as session:  # and back through the ORM
            rows = await inbox_rows(session)
        assert [inbox.event_of(r) for r in rows] == [*events, text_event("m2")]
        assert [(r.received_at, r.next_attempt_at, r.state, r.attempts, r.error) for r in rows] == [
            (t, t, "pending", 0, "") for t in [times[0]] * 3 + times[1:]
        ]
        assert rows[1].event_id == inbox.stored_event_id("x" * 200) != "x" * 200
    finally:
        for engine in engines.values():
            await engine.dispose()


async def test_sqlite_file_path_marks_duplicates_inside_and_across_batches(
    engine: AsyncEngine, session: AsyncSession, clock: FixedClock
) -> None:
    fast = inbox.SqliteFileInbox.for_engine(engine)
    if engine.dialect.name != "sqlite":
        assert fast is None  # PostgreSQL keeps the session path
        return
    assert fast is not None
    try:
        assert await fast.store_many([text_event("old")], now=clock.now()) == [True]
        batch = [text_event("a"), text_event("old"), text_event("b"), text_event("a")]
        assert await fast.store_many(batch, now=clock.now()) == [True, False, True, False]
    finally:
        await fast.close()
    assert sorted(r.event_id for r in await inbox_rows(session)) == ["a", "b", "old"]


async def test_sqlite_file_path_stores_a_long_burst_in_several_statements(
    engine: AsyncEngine, session: AsyncSession, clock: FixedClock
) -> None:
    """777 events (statements of 256, 256, 256, 8 and 1 rows), every fifth already stored
    and one repeated inside the burst: each is marked new exactly when it is."""
    fast = inbox.SqliteFileInbox.for_engine(engine)
    if fast is None:
        return  # PostgreSQL keeps the session path
    try:
        old = [text_event(f"e{i}") for i in range(0, 777, 5)]
        assert await fast.store_many(old, now=clock.now()) == [True] * len(old)
        burst = [text_event(f"e{i}") for i in range(777)] + [text_event("e1")]
        new = await fast.store_many(burst, now=clock.now())
    finally:
        await fast.close()
    assert new == [i % 5 != 0 for i in range(777)] + [False]
    assert len(await inbox_rows(session)) == 777


async def test_sqlite_file_path_rolls_a_failed_batch_back_and_goes_on(
    sqlite_template: Path, tmp_path: Path, clock: FixedClock
) -> None:
    shutil.copy(sqlite_template, tmp_path / "db.sqlite3")
    engine = make_engine(str(tmp_path / "db.sqlite3"))
    fast = inbox.SqliteFileInbox.for_engine(engine)
    assert fast is not None
    session = make_sessionmaker(engine)()
    try:
        assert await fast.store_many([text_event("before")], now=clock.now()) == [True]
        # the batch's second insert fails after its first row went in
        await session.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON inbox "
                "WHEN NEW.event_id = 'bad' BEGIN SELECT RAISE(ABORT, 'no'); END"
            )
        )
        await session.commit()
        with pytest.raises(sqlite3.IntegrityError):
            await fast.store_many([text_event("good"), text_event("bad")], now=clock.now())
        await session.execute(text("DROP TRIGGER refuse"))
        await session.commit()
        assert await fast.store_many(
            [text_event("good"), text_event("after")], now=clock.now()
        ) == [True, True]
        assert [r.event_id for r in await inbox_rows(session)] == ["before", "good", "after"]
    finally:
        await fast.close()
        await session.close()
        await engine.dispose()


async def test_sqlite_file_path_is_not_used_for_an_in_memory_database() -> None:
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    try:
        assert inbox.SqliteFileInbox.for_engine(engine) is None  # another connection sees nothing
    finally:
        await engine.dispose()
