"""core.inbox and the inbox worker on SQLite and PostgreSQL: de-duplication, leases, retries."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.workers import InboxWorker
from core import inbox
from core.clock import FixedClock
from core.messages import Event
from core.models import InboxEvent
from tests.server_helpers import ReplyingHandler, make_services, outbox_count

LEASE = dt.timedelta(seconds=60)


def text_event(event_id: str = "m1", text: str = "任务") -> Event:
    return Event(platform="wecom", event_id=event_id, user_id="zhangsan", text=text)


async def inbox_rows(session: AsyncSession) -> list[InboxEvent]:
    return list((await session.scalars(select(InboxEvent).order_by(InboxEvent.id))).all())


async def test_duplicate_store_returns_false_and_changes_nothing(session: AsyncSession,
                                                                clock: FixedClock) -> None:
    assert await inbox.store(session, text_event(), now=clock.now()) is True
    await session.commit()
    clock.advance(dt.timedelta(seconds=5))
    assert await inbox.store(session, text_event(text="不同的内容"), now=clock.now()) is False
    await session.commit()
    rows = await inbox_rows(session)
    assert len(rows) == 1
    assert rows[0].payload["text"] == "任务"
    assert rows[0].received_at == clock.now() - dt.timedelta(seconds=5)


async def test_same_event_id_on_another_platform_is_another_event(session: AsyncSession,
                                                                  clock: FixedClock) -> None:
    assert await inbox.store(session, text_event(), now=clock.now())
    other = text_event().model_copy(update={"platform": "dingtalk"})
    assert await inbox.store(session, other, now=clock.now())


async def test_overlong_event_id_is_hashed_stably(session: AsyncSession, clock: FixedClock) -> None:
    long_id = "card:zhangsan:" + "t" * 200
    assert await inbox.store(session, text_event(long_id), now=clock.now())
    assert not await inbox.store(session, text_event(long_id), now=clock.now())
    (row,) = await inbox_rows(session)
    assert row.event_id.startswith("sha256:") and len(row.event_id) <= 128
    assert inbox.event_of(row).event_id == long_id


async def test_claim_leases_rows_until_the_lease_runs_out(session: AsyncSession,
                                                          clock: FixedClock) -> None:
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


async def test_failed_event_backs_off_then_dies(session: AsyncSession, clock: FixedClock) -> None:
    await inbox.store(session, text_event(), now=clock.now())
    (row,) = await inbox.claim_pending(session, 1, clock.now(), LEASE)
    retry_at = clock.now() + dt.timedelta(seconds=30)
    state = await inbox.mark_failed(session, row.id, "boom", now=clock.now(), retry_at=retry_at,
                                    max_attempts=2)
    await session.commit()
    assert state == "pending"
    assert await inbox.claim_pending(session, 1, clock.now(), LEASE) == []  # not due yet
    clock.advance(dt.timedelta(seconds=31))
    (row,) = await inbox.claim_pending(session, 1, clock.now(), LEASE)
    assert await inbox.mark_failed(session, row.id, "boom again", now=clock.now(),
                                   retry_at=clock.now(), max_attempts=2) == "dead"
    await session.commit()
    (row,) = await inbox_rows(session)
    assert (row.state, row.attempts, row.error) == ("dead", 2, "boom again")


async def test_worker_gives_duplicates_one_effect(sessionmaker: async_sessionmaker[AsyncSession],
                                                  clock: FixedClock) -> None:
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
        sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> None:
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
        sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> None:
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
        counts = await inbox.count_by_state(session)
    assert counts == {"dead": 1}


async def test_second_worker_after_lease_expiry_cannot_double_the_effect(
        sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> None:
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
        session: AsyncSession, clock: FixedClock) -> None:
    assert await inbox.store(session, text_event("old"), now=clock.now())
    batch = [text_event("a"), text_event("old"), text_event("b"), text_event("a")]
    assert await inbox.store_many(session, batch, now=clock.now()) == [True, False, True, False]
    await session.commit()
    assert sorted(r.event_id for r in await inbox_rows(session)) == ["a", "b", "old"]
