"""The inbox worker and the polling loop it shares with the sender.

Callbacks only store events (fast ack); this worker handles them with the dispatcher, each
marked done in the transaction of its effects, so an event takes effect once even if two
processes race for it after a lease ran out. A few events share a transaction
(`InboxWorker.handle_rows`): on SQLite any, on PostgreSQL those that wait for no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import Services
from core import audit, inbox, sqlite_async
from core.leases import backoff_seconds
from core.messages import Event
from core.models import InboxEvent

log = logging.getLogger(__name__)

T = TypeVar("T")
Write = Callable[[AsyncSession], Awaitable[T]]  # a write inside the given transaction


class EventHandler(Protocol):
    """bot.dispatch.Dispatcher: handles one event inside the given session, never commits."""

    async def handle(self, session: AsyncSession, event: Event) -> None: ...


class NotNow(Exception):
    """A handler asked not to wait (`GroupingHandler.handle(wait=False)`) found that the event
    would wait for a lock another transaction holds; raised before it wrote anything."""


@runtime_checkable
class GroupingHandler(Protocol):
    """A handler that says which events may share a PostgreSQL transaction: those whose
    handling takes no lock but their officer's, taken without waiting (`wait=False`), and at
    most the audit chain's head."""

    def groupable(self, event: Event) -> bool: ...

    async def handle(self, session: AsyncSession, event: Event, *, wait: bool = True) -> None: ...


async def poll_loop(
    tick: Callable[[], Awaitable[int]],
    wake: asyncio.Event,
    stopping: asyncio.Event,
    interval_s: float,
    name: str,
    pace_s: float = 0.0,
) -> None:
    """Run `tick` until `stopping`; again while it finds work, else after `wake` or
    `interval_s` (rows queued by other processes or left by a crash have no wake-up). A tick
    starts at least `pace_s` after the previous one: under load each takes the work of that
    moment together (one claim, one transaction for several rows) instead of one row at a
    time; after a quiet spell it starts at once."""
    waker = asyncio.ensure_future(_wake_on(stopping, wake))
    loop = asyncio.get_running_loop()
    started = float("-inf")
    try:
        while not stopping.is_set():
            if (gap := started + pace_s - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), gap)
                continue  # stopping, or now due: look again
            started = loop.time()
            wake.clear()  # before the tick: a wake-up during the tick is not lost
            try:
                busy = await tick()
            except Exception:  # e.g. the database is briefly unreachable: try next round
                log.exception("%s tick failed", name)
                busy = 0
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), interval_s)
    finally:
        waker.cancel()


async def _wake_on(stopping: asyncio.Event, wake: asyncio.Event) -> None:
    """Stopping also wakes the loop, so shutdown does not wait out a poll interval."""
    await stopping.wait()
    wake.set()


class GroupCommit:
    """Small writes asked for while another transaction is under way share the next one: one
    commit, and one turn at SQLite's write gate, for many (e.g. the sender recording the
    replies it has just sent, one destination per task). Each caller gets its own write's
    result once that transaction has committed. If a shared transaction fails, its writes are
    tried again one by one, so a bad write fails only its own caller."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._pending: list[tuple[Write[Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, write: Write[T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            # the gate first: what is asked for while we wait for it joins this transaction
            async with self.services.write_gate():
                batch, self._pending = self._pending, []
                try:
                    results = await self._commit([write for write, _ in batch])
                except Exception as exc:
                    if len(batch) == 1:
                        _settle(batch[0][1], exc=exc)
                        continue
                    log.warning("a shared write failed (%s); trying each alone", exc)
                    results = None
            if results is not None:
                for (_, future), result in zip(batch, results, strict=True):
                    _settle(future, result)
                continue
            for write, future in batch:
                try:
                    async with self.services.write_gate():
                        (result,) = await self._commit([write])
                except Exception as exc:
                    _settle(future, exc=exc)
                else:
                    _settle(future, result)

    async def _commit(self, writes: list[Write[Any]]) -> list[Any]:
        async with self.services.sessionmaker() as session:
            results = [await write(session) for write in writes]
            await session.commit()
        return results


def _settle(future: asyncio.Future[Any], result: Any = None, exc: Exception | None = None) -> None:
    if future.done():  # the caller went away
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


class InboxWorker:
    def __init__(
        self,
        services: Services,
        handler: EventHandler,
        *,
        on_handled: Callable[[], None] | None = None,
        before_event: Callable[[float, float], Awaitable[None]] | None = None,
        callbacks_busy: Callable[[], bool] = lambda: False,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.services = services
        self.handler = handler
        self._grouping = handler if isinstance(handler, GroupingHandler) else None
        self.cfg = services.settings.inbox
        self._on_handled = on_handled  # e.g. wake the sender: replies were just queued
        # e.g. let callbacks be acked first; gets the event's age and how long the previous
        # event took to handle, in seconds
        self._before_event = before_event
        # callbacks are being acked: a group of events ends, the next one waits its turn
        self._callbacks_busy = callbacks_busy
        self._previous_s = 0.0
        self._jitter = jitter
        self.stopping = asyncio.Event()

    async def run(self, wake: asyncio.Event) -> None:
        # small statements: on SQLite they run on the loop's thread (sqlite_async.inline)
        with sqlite_async.inline():
            await poll_loop(self.run_once, wake, self.stopping, self.cfg.poll_interval_s, "inbox")

    def stop(self) -> None:
        """Finish the event in hand, then leave `run`; unhandled claims are released."""
        self.stopping.set()

    async def run_once(self) -> int:
        now = self.services.clock.now()
        # gated like every write of this worker: on SQLite an ungated writer makes the callback
        # inserts wait in SQLite's busy handler (sleeps of up to 100 ms) instead of in line
        async with self.services.write_gate(), self.services.sessionmaker() as session:
            rows = await inbox.claim_pending(
                session, self.cfg.batch_size, now, dt.timedelta(seconds=self.cfg.lease_s)
            )
            await session.commit()
        handled, at = 0, 0
        while at < len(rows):
            if self._before_event is not None and not self.stopping.is_set():
                age = (self.services.clock.now() - rows[at].received_at).total_seconds()
                await self._before_event(age, self._previous_s)
            if self.stopping.is_set():
                for row in rows[at:]:
                    await self._release(row)
                break
            started = time.monotonic()
            taken, done = await self.handle_rows(rows[at:])
            at += taken
            handled += done
            self._previous_s = time.monotonic() - started
            if done and self._on_handled is not None:
                self._on_handled()  # the replies are committed: on their way now, not later
        return len(rows)

    async def handle_rows(self, rows: list[InboxEvent]) -> tuple[int, int]:
        """Handle the first of `rows` and, in the same transaction, the next ones, up to
        `group_size`, while the group's time (`group_s`) lasts, no callback is being acked,
        nobody waits for the write gate (acks come first) and the stop was not asked for.
        Returns how many rows were taken and how many took effect.

        On PostgreSQL, where writers run side by side, a group holds its locks longer, so it
        takes only what cannot deadlock: the leading events the handler calls groupable, each
        officer locked without waiting (one held elsewhere ends the group: its event goes on
        its own), and the group ends with the event that locked the audit chain's head. It
        waits for no lock but that head, last, after its officers: a single event's order.

        One commit for several events; each still takes effect once with its `done` mark, and
        a failing event costs only itself: the group is rolled back, the events before it
        are handled again one by one, and its failure is recorded once."""
        rows = rows[: self._group_limit(rows)]
        if len(rows) == 1:
            return 1, await self.handle_row(rows[0])
        started, taken = time.monotonic(), []
        failing: InboxEvent | None = None
        try:
            async with self.services.write_gate(), self.services.sessionmaker() as session:
                for row in rows:
                    failing = row
                    if not await self._join(session, row):
                        break  # it would wait for its officer: on its own, after the group
                    await session.flush()
                    taken.append(row)
                    failing = None
                    session.expunge_all()  # the next event reads afresh, as in its own session
                    if self._group_ends(started, session):
                        break
                failing = None
                if taken:
                    ids = [row.id for row in taken]
                    marked = await inbox.mark_done_many(session, ids, self.services.clock.now())
                    if marked == set(ids):
                        await session.commit()
                        return len(taken), len(taken)
                    await session.rollback()  # another worker finished one: each alone decides
        except Exception as exc:
            if failing is None:  # the marks or the commit: each alone decides
                log.warning("a group of %s inbox events failed (%s); one by one", len(taken), exc)
            else:
                log.exception("handling inbox event %s (%s) failed", failing.id, failing.platform)
                handled = [await self.handle_row(row) for row in taken]
                await self._failed(failing, f"{type(exc).__name__}: {exc}")
                return len(taken) + 1, sum(handled)
        if not taken:  # the first event would wait for its officer: alone, waiting
            return 1, await self.handle_row(rows[0])
        return len(taken), sum([await self.handle_row(row) for row in taken])

    def _group_limit(self, rows: list[InboxEvent]) -> int:
        """How many of `rows` one transaction may take: on SQLite (one writer at a time
        anyway) up to `group_size`; on PostgreSQL the leading groupable events."""
        if self.services.single_writer:
            return self.cfg.group_size
        n = 0
        if self._grouping is not None:
            for row in rows[: self.cfg.group_size]:
                if not self._grouping.groupable(inbox.event_of(row)):
                    break
                n += 1
        return max(n, 1)

    async def _join(self, session: AsyncSession, row: InboxEvent) -> bool:
        """Handle the row's event in the group's transaction; False, with nothing of it
        written, when on PostgreSQL it would wait for a lock."""
        event = inbox.event_of(row)
        if self._grouping is None or self.services.single_writer:
            await self.handler.handle(session, event)
            return True
        try:
            await self._grouping.handle(session, event, wait=False)
        except NotNow:
            return False
        return True

    def _group_ends(self, started: float, session: AsyncSession) -> bool:
        return (
            time.monotonic() - started >= self.cfg.group_s
            or self.services.write_gate_wanted()
            or self._callbacks_busy()
            or self.stopping.is_set()
            # PostgreSQL: the audit chain's head stays locked to the commit; commit now
            or (not self.services.single_writer and bool(session.info.get(audit.APPENDED)))
        )

    async def handle_row(self, row: InboxEvent) -> int:
        """1 when the event took effect now, 0 when it failed or was already done elsewhere."""
        try:
            async with self.services.write_gate(), self.services.sessionmaker() as session:
                await self.handler.handle(session, inbox.event_of(row))
                if not await inbox.mark_done(session, row.id, self.services.clock.now()):
                    await session.rollback()  # another worker completed it: keep its effect only
                    return 0
                await session.commit()
                return 1
        except Exception as exc:
            log.exception("handling inbox event %s (%s) failed", row.id, row.platform)
            await self._failed(row, f"{type(exc).__name__}: {exc}")
            return 0

    async def _failed(self, row: InboxEvent, error: str) -> None:
        now = self.services.clock.now()
        delay = backoff_seconds(
            row.attempts + 1,
            base=self.cfg.backoff_base_s,
            cap=self.cfg.backoff_cap_s,
            jitter=self._jitter(),
        )
        try:
            async with self.services.write_gate(), self.services.sessionmaker() as session:
                state = await inbox.mark_failed(
                    session,
                    row.id,
                    error,
                    now=now,
                    retry_at=now + dt.timedelta(seconds=delay),
                    max_attempts=self.cfg.max_attempts,
                )
                await session.commit()
        except Exception:  # the lease expires and the row comes back on its own
            log.exception("could not record the failure of inbox event %s", row.id)
            return
        if state == "dead":
            log.error("inbox event %s is dead after %s attempts", row.id, self.cfg.max_attempts)

    async def _release(self, row: InboxEvent) -> None:
        async with self.services.write_gate(), self.services.sessionmaker() as session:
            await inbox.release(session, row.id)
            await session.commit()
