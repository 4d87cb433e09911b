"""On SQLite the inbox worker handles several claimed events in one transaction (one commit, one
turn at the write gate), and each still takes effect exactly once: a failing event costs only
itself, an event finished elsewhere is not done twice, a waiting writer ends the group. On
PostgreSQL, where writers run side by side, only the dispatcher's read-only commands share one,
and a group never waits for a lock but the audit chain's head, last: two processes grouping
the same officers do not deadlock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.dispatch import Dispatcher
from bot.workers import InboxWorker
from core import inbox
from core.audit import verify_chain
from core.changes import record
from core.clock import FixedClock
from core.db import make_engine, make_sessionmaker
from core.messages import Destination, Event
from core.models import AuditEvent, InboxEvent, Officer, OutboxMessage
from tests.dispatch_support import chat_world
from tests.server_helpers import ReplyingHandler, make_services, outbox_count


class Handler(ReplyingHandler):
    """A real outbox row per event; raises for the texts in `fail`, and can run a hook (another
    worker, a callback) before an event."""

    def __init__(self, clock: FixedClock, fail: frozenset[str] = frozenset()) -> None:
        super().__init__(clock)
        self.fail = fail
        self.seen: list[str] = []
        self.before: dict[str, Callable[[], Awaitable[None]]] = {}

    async def handle(self, session: AsyncSession, event: Event) -> None:
        self.seen.append(event.text)
        hook = self.before.pop(event.text, None)
        if hook is not None:
            await hook()
        await super().handle(session, event)
        if event.text in self.fail:
            raise RuntimeError(f"handler exploded on {event.text}")


async def store(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, n: int) -> None:
    async with sessionmaker() as session:
        for i in range(n):
            ev = Event(platform="wecom", event_id=f"m{i}", user_id="u", text=f"e{i}")
            await inbox.store(session, ev, now=clock.now())
        await session.commit()


def commits(engine: AsyncEngine) -> list[int]:
    seen: list[int] = []
    event.listen(engine.sync_engine, "commit", lambda _conn: seen.append(1))
    return seen


async def states(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, tuple[str, int]]:
    async with sessionmaker() as session:
        rows = await session.scalars(select(InboxEvent).order_by(InboxEvent.id))
        return {row.event_id: (row.state, row.attempts) for row in rows}


async def test_claimed_events_share_one_commit_on_sqlite(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    services = make_services(sessionmaker, clock)
    await store(sessionmaker, clock, 6)
    counted = commits(engine)
    assert await InboxWorker(services, Handler(clock)).run_once() == 6
    # the claim, then the six events together (SQLite) or one by one (PostgreSQL)
    assert len(counted) == (2 if engine.dialect.name == "sqlite" else 7)
    async with sessionmaker() as session:
        assert await outbox_count(session) == 6
    assert set((await states(sessionmaker)).values()) == {("done", 0)}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # groups are SQLite's
async def test_a_group_is_no_larger_than_group_size(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    services = make_services(sessionmaker, clock, inbox={"group_size": 4})
    await store(sessionmaker, clock, 10)
    counted = commits(engine)
    await InboxWorker(services, Handler(clock)).run_once()
    assert len(counted) == 1 + 3  # 4 + 4 + 2


async def test_a_failing_event_costs_only_itself(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    services = make_services(sessionmaker, clock)
    await store(sessionmaker, clock, 5)
    handler = Handler(clock, fail=frozenset({"e2"}))
    await InboxWorker(services, handler, jitter=lambda: 0.0).run_once()
    got = await states(sessionmaker)
    assert got.pop("m2") == ("pending", 1)  # one failed attempt, retried later
    assert set(got.values()) == {("done", 0)}
    async with sessionmaker() as session:
        assert await outbox_count(session) == 4  # the failing event's reply rolled back
    assert handler.seen.count("e2") == 1  # the failing handler ran once
    # SQLite: the events before it ran again alone (their first run was rolled back with
    # the group); PostgreSQL: one transaction each
    again = ["e0", "e1"] if engine.dialect.name == "sqlite" else []
    assert handler.seen == ["e0", "e1", "e2", *again, "e3", "e4"]


async def test_an_event_finished_elsewhere_meanwhile_takes_effect_once(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """Another worker whose lease ran out finishes e1 as this group starts (before its first
    write: on SQLite the group then holds the write lock): the group is rolled back and each
    event decides alone; e1 keeps the other worker's effect only."""
    services = make_services(sessionmaker, clock)
    await store(sessionmaker, clock, 3)
    handler = Handler(clock)

    async def other_worker_finishes_e1() -> None:
        async with sessionmaker() as session:
            row = await session.scalar(select(InboxEvent).where(InboxEvent.event_id == "m1"))
            assert row is not None
            await inbox.mark_done(session, row.id, clock.now())
            await session.commit()

    handler.before["e0"] = other_worker_finishes_e1
    await InboxWorker(services, handler).run_once()
    async with sessionmaker() as session:
        assert await outbox_count(session) == 2  # e0 and e2; e1's effect was the other's
    assert set((await states(sessionmaker)).values()) == {("done", 0)}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the gate is SQLite's
async def test_a_callback_waiting_for_the_write_gate_ends_the_group(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    services = make_services(sessionmaker, clock)
    await store(sessionmaker, clock, 5)
    handler = Handler(clock)
    order: list[str] = []

    async def callback_arrives() -> None:
        async def insert() -> None:
            async with services.write_gate():
                order.append("callback stored")

        asyncio.get_running_loop().create_task(insert())
        await asyncio.sleep(0)  # it now waits for the gate

    handler.before["e1"] = callback_arrives
    counted = commits(engine)
    await InboxWorker(services, handler).run_once()
    order.append("worker done")
    assert len(counted) == 1 + 2  # the claim; e0 + e1, then the callback; e2..e4
    assert order == ["callback stored", "worker done"]


# ---------------------------------------------------------------- PostgreSQL: dispatcher groups

PG_ONLY = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


class AuditingDispatcher(Dispatcher):
    """The real dispatcher, grouping every text, and auditing each `审计` after the command: a
    grouped event that locks the audit chain's head (as a refusal would)."""

    def groupable(self, event: Event) -> bool:
        return event.kind == "text"

    async def handle(self, session: AsyncSession, event: Event, *, wait: bool = True) -> None:
        await super().handle(session, event, wait=wait)
        if event.text.endswith("审计"):
            await record(self.services.core_ctx(session), "test.seen", event.event_id)


async def texts(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, sent: list[tuple[str, str]]
) -> None:
    """Stored events, in this order, of (officer code, text) from the simulator."""
    async with sessionmaker() as session:
        for i, (code, body) in enumerate(sent):
            ev = Event(platform="sim", event_id=f"t{i}", user_id=code, text=body)
            await inbox.store(session, ev, now=clock.now())
        await session.commit()


async def replies_to(
    sessionmaker: async_sessionmaker[AsyncSession], officers: list[Officer]
) -> dict[str, int]:
    async with sessionmaker() as session:
        rows = await session.scalars(select(OutboxMessage))
        keys = [row.dest_key for row in rows]
    return {o.code: keys.count(Destination.officer(o.id).key()) for o in officers}


@PG_ONLY
async def test_read_only_commands_share_a_commit_and_a_write_command_goes_alone(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    w = await chat_world(sessionmaker)
    people = w.lead.inspectors + w.partners[0].inspectors
    services = make_services(sessionmaker, clock)
    sent = [(o.code, "帮助") for o in people[:4]] + [(people[4].code, "拒绝")]
    await texts(sessionmaker, clock, [*sent, (people[5].code, "任务")])
    counted = commits(engine)
    assert await InboxWorker(services, Dispatcher(services)).run_once() == 6
    # the claim; the four 帮助 together; 拒绝 (it may write: alone); 任务 on its own group
    assert len(counted) == 1 + 3
    assert await replies_to(sessionmaker, people) == {o.code: 1 for o in people}
    assert set((await states(sessionmaker)).values()) == {("done", 0)}


@PG_ONLY
async def test_a_group_never_waits_for_an_officer_another_transaction_holds(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """B's officer is locked elsewhere: A's event commits in its group without waiting, B's
    waits alone for the lock, C's comes after it; each once."""
    w = await chat_world(sessionmaker)
    a, b, c = w.lead.inspectors
    services = make_services(sessionmaker, clock)
    await texts(sessionmaker, clock, [(a.code, "帮助"), (b.code, "帮助"), (c.code, "帮助")])
    async with sessionmaker() as holder:
        await holder.execute(select(Officer.id).where(Officer.id == b.id).with_for_update())
        worker = asyncio.create_task(InboxWorker(services, Dispatcher(services)).run_once())
        for _ in range(200):  # A's reply is committed while B's officer is still held
            if (await replies_to(sessionmaker, [a]))[a.code]:
                break
            await asyncio.sleep(0.02)
        assert await replies_to(sessionmaker, [a, b, c]) == {a.code: 1, b.code: 0, c.code: 0}
        assert not worker.done()
        await holder.rollback()
    assert await worker == 3
    assert await replies_to(sessionmaker, [a, b, c]) == {a.code: 1, b.code: 1, c.code: 1}
    assert set((await states(sessionmaker)).values()) == {("done", 0)}


@PG_ONLY
async def test_two_processes_grouping_the_same_officers_never_deadlock(
    db_url: str, sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """Two workers on their own engines (two `serve` processes) take small claims of events
    round robin over three officers, every other one appending to the audit chain: their
    groups cross on the officers' locks and the chain's head in every order. A deadlock would
    abort a transaction and show as a failed attempt; none does, each event takes effect
    once and the chain is intact."""
    w = await chat_world(sessionmaker)
    people = w.lead.inspectors
    rounds = 40
    sent = [(people[i % 3].code, "帮助 审计" if i % 2 else "帮助") for i in range(3 * rounds)]
    await texts(sessionmaker, clock, sent)

    async def drain(seed: int) -> None:
        engine = make_engine(db_url)
        try:
            services = make_services(
                make_sessionmaker(engine), clock, inbox={"batch_size": 4 + seed}
            )
            worker = InboxWorker(services, AuditingDispatcher(services))
            while await worker.run_once():
                pass
        finally:
            await engine.dispose()

    await asyncio.gather(drain(0), drain(1))
    assert set((await states(sessionmaker)).values()) == {("done", 0)}
    assert await replies_to(sessionmaker, people) == {o.code: rounds for o in people}
    async with sessionmaker() as session:
        assert await verify_chain(session) == []
        seen = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "test.seen")
        )
    assert seen == len(sent) // 2
