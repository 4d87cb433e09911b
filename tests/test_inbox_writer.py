"""The callback group commit (bot.app.InboxWriter): exact dedup across one burst, and the
inbox worker giving way to callbacks while they come in."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import BurstWake, InboxWriter
from bot.workers import InboxWorker
from core.clock import FixedClock, SystemClock
from core.messages import Event
from core.models import InboxEvent
from tests.fakes import wait_until
from tests.server_helpers import ReplyingHandler, make_services


def text_event(event_id: str) -> Event:
    return Event(platform="wecom", kind="text", event_id=event_id, user_id="u1", text="hi")


async def test_a_burst_with_retries_stores_each_event_once(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    writer = InboxWriter(make_services(sessionmaker, clock))
    ids = [f"m{i % 30}" for i in range(90)]  # every event arrives three times, concurrently
    try:
        results = await asyncio.gather(*(writer.store([text_event(i)]) for i in ids))
        assert sum(new for (new,) in results) == 30
        assert await writer.store([text_event("m0")]) == [False]
        async with (
            sessionmaker() as session
        ):  # committed when acknowledged: another session sees it
            assert await session.scalar(select(func.count()).select_from(InboxEvent)) == 30
    finally:
        await writer.close()


async def callbacks_for(
    writer: InboxWriter,
    seconds: float,
    *,
    gap_s: float,
    prefix: str,
    wake: asyncio.Event | None = None,
    at_least: int = 0,
) -> int:
    """Callback requests one after another: each in flight (parse, store, ack) then `gap_s`
    of nothing (0: the next request is already in flight, as in a burst); `at_least` keeps
    going past `seconds` until that many were sent (a loaded machine stores more slowly)."""
    loop = asyncio.get_running_loop()
    end, n = loop.time() + seconds, 0
    while loop.time() < end or n < at_least:
        n += 1
        with writer.in_flight():
            await asyncio.sleep(0.003)  # parsing and decrypting
            await writer.store([text_event(f"{prefix}{n}")])
        if wake is not None:
            wake.set()
        await asyncio.sleep(gap_s)
    return n


async def test_worker_gives_way_to_callbacks_in_flight_but_not_forever(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    services = make_services(sessionmaker, clock)
    writer = InboxWriter(services)
    await writer.store([text_event("first")])
    handler = ReplyingHandler(clock)
    worker = InboxWorker(
        services,
        handler,
        before_event=lambda age, previous: writer.yield_to_callbacks(age, previous, max_age_s=0.3),
    )
    burst = asyncio.create_task(callbacks_for(writer, 0.2, gap_s=0, prefix="burst"))
    await asyncio.sleep(0)
    handling = asyncio.create_task(worker.run_once())
    await asyncio.sleep(0.1)
    assert handler.calls == 0  # mid-burst a fresh event waits: the acks go first
    await burst
    assert await handling >= 1
    assert handler.calls >= 1  # the burst ended: handled without waiting out max_age_s

    endless = asyncio.create_task(callbacks_for(writer, 3.0, gap_s=0, prefix="endless"))
    await asyncio.sleep(0.02)
    loop = asyncio.get_running_loop()
    waits = []
    for age, previous in ((0.0, 0.0), (0.5, 0.01), (0.5, 10.0)):
        started = loop.time()
        await writer.yield_to_callbacks(age, previous, max_age_s=0.3, cap_s=0.1)
        waits.append(loop.time() - started)
    endless.cancel()
    await asyncio.gather(endless, return_exceptions=True)
    await wait_until(lambda: not writer.busy())  # the cancelled burst's last commit finishes
    started = loop.time()
    await writer.yield_to_callbacks(0.0, 10.0)  # nothing in flight: no wait at all
    idle_wait = loop.time() - started
    await writer.close()
    fresh, old_fast, old_slow = waits
    assert 0.25 <= fresh < 1.0  # a fresh event gives way for max_age_s, no more
    assert old_fast < 0.1  # an old one for as long as the previous event took…
    assert 0.09 <= old_slow < 0.4  # …capped
    assert idle_wait < 0.05


async def test_steady_callbacks_do_not_starve_handling(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Issue 11 defect 1: a callback every ~8 ms (pauses of 4 ms, never 20 ms) for 1.5 s.
    Waiting for a 20 ms pause before each event handled about 3 events a second (5 of 54
    here, under a tenth); with its share the worker keeps up with most of them, and with a
    third even on a machine loaded twelve-fold (a half missed by one there)."""
    services = make_services(sessionmaker, SystemClock())
    writer = InboxWriter(services)
    handler = ReplyingHandler(services.clock)
    worker = InboxWorker(
        services,
        handler,
        before_event=lambda age, previous: writer.yield_to_callbacks(age, previous, max_age_s=0.2),
        callbacks_busy=writer.busy,
    )
    wake = asyncio.Event()
    running = asyncio.create_task(worker.run(wake))
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        sent = await callbacks_for(
            writer, 1.5, gap_s=0.004, prefix="steady", wake=wake, at_least=100
        )
        handled_by_end = handler.calls
    finally:
        worker.stop()
        await running
        await writer.close()
    elapsed = loop.time() - started
    older = int(sent * max(0.0, elapsed - 0.7) / elapsed)  # max age + slack for a busy CI
    assert older >= 40
    assert handled_by_end >= older // 3


async def test_a_long_connection_burst_wakes_the_worker_once_it_is_acknowledged() -> None:
    wake = asyncio.Event()
    burst = BurstWake(wake, max_age_s=3600)
    burst.burst_over()
    assert not wake.is_set(), "nothing stored: nothing to handle"
    burst.stored()
    burst.stored()
    assert not wake.is_set(), "the worker would queue at the write gate behind the acks"
    burst.burst_over()
    assert wake.is_set()
    wake.clear()
    burst.burst_over()
    assert not wake.is_set(), "announced once"


async def test_a_flood_that_never_pauses_still_wakes_the_worker() -> None:
    wake = asyncio.Event()
    burst = BurstWake(wake, max_age_s=0.0)  # the oldest event is always old enough
    burst.stored()
    assert not wake.is_set()
    burst.stored()
    assert wake.is_set()
