"""The callback group commit (bot.app.InboxWriter): exact dedup across one burst, and the
inbox worker giving way to callbacks while they come in."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import InboxWriter
from bot.workers import InboxWorker
from core.clock import FixedClock, SystemClock
from core.messages import Event
from core.models import InboxEvent
from tests.server_helpers import ReplyingHandler, make_services


def text_event(event_id: str) -> Event:
    return Event(platform="wecom", kind="text", event_id=event_id, user_id="u1", text="hi")


async def test_a_burst_with_retries_stores_each_event_once(
        sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> None:
    writer = InboxWriter(make_services(sessionmaker, clock))
    ids = [f"m{i % 30}" for i in range(90)]  # every event arrives three times, concurrently
    try:
        results = await asyncio.gather(*(writer.store([text_event(i)]) for i in ids))
        assert sum(new for (new,) in results) == 30
        assert await writer.store([text_event("m0")]) == [False]
        async with sessionmaker() as session:  # committed when acknowledged: another session sees it
            assert await session.scalar(select(func.count()).select_from(InboxEvent)) == 30
    finally:
        await writer.close()


async def test_worker_waits_while_callbacks_arrive_but_not_forever(
        sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> None:
    services = make_services(sessionmaker, clock)
    writer = InboxWriter(services)
    await writer.store([text_event("first")])
    handler = ReplyingHandler(clock)
    worker = InboxWorker(services, handler,
                         before_event=lambda age: writer.quiet(age, window_s=0.05, max_age_s=0.3))

    async def callbacks_for(seconds: float) -> None:
        loop = asyncio.get_running_loop()
        end, n = loop.time() + seconds, 0
        while loop.time() < end:
            n += 1
            await writer.store([text_event(f"burst{n}")])
            await asyncio.sleep(0.01)

    burst = asyncio.create_task(callbacks_for(0.2))
    await asyncio.sleep(0)
    handling = asyncio.create_task(worker.run_once())
    await asyncio.sleep(0.1)
    assert handler.calls == 0  # mid-burst: the acks go first
    await burst
    assert await handling >= 1
    assert handler.calls >= 1  # the burst ended: handled without waiting out max_wait_s

    endless = asyncio.create_task(callbacks_for(2.0))
    await asyncio.sleep(0.02)
    started = asyncio.get_running_loop().time()
    await writer.quiet(0.0, window_s=0.05, max_age_s=0.3)
    waited = asyncio.get_running_loop().time() - started
    started = asyncio.get_running_loop().time()
    await writer.quiet(0.5, window_s=0.05, max_age_s=0.3)  # already older than the bound
    waited_old = asyncio.get_running_loop().time() - started
    endless.cancel()
    await asyncio.gather(endless, return_exceptions=True)
    await writer.close()
    assert 0.25 <= waited < 1.0  # sustained callbacks delay a new event by max_age_s, no more
    assert waited_old < 0.05


async def test_steady_callbacks_do_not_starve_handling(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Issue 11 defect 1: a callback every 10 ms (never a quiet gap) for 1.5 s. Waiting for a
    gap before each event handled about 3 events a second; with the age bound every event
    stored more than a little while ago has been handled by the end."""
    services = make_services(sessionmaker, SystemClock())
    writer = InboxWriter(services)
    handler = ReplyingHandler(services.clock)
    worker = InboxWorker(services, handler,
                         before_event=lambda age: writer.quiet(age, window_s=0.05, max_age_s=0.2))
    wake = asyncio.Event()
    running = asyncio.create_task(worker.run(wake))
    loop = asyncio.get_running_loop()
    stored: list[float] = []
    try:
        end = loop.time() + 1.5
        while loop.time() < end:
            await writer.store([text_event(f"steady{len(stored)}")])
            stored.append(loop.time())
            wake.set()
            await asyncio.sleep(0.01)
        handled_by_end = handler.calls
    finally:
        worker.stop()
        await running
        await writer.close()
    older = sum(1 for at in stored if at < end - 0.7)  # max age + generous slack for a busy CI
    assert older >= 50
    assert handled_by_end >= older
