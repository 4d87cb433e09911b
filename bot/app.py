"""aiohttp application: platform callbacks, simulator, signed-link pages, health, and the
background workers (inbox, sender, scheduler) tied to the app's life with `cleanup_ctx`.

A callback is verified, stored in the inbox in one short transaction and acknowledged at once
(docs/architecture.md §2, WeCom allows 5 s); the inbox worker handles it afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot import favicon
from bot.platforms.base import CallbackRejected, PlatformAdapter
from bot.sender import Sender
from bot.services import SERVICES, Services
from bot.workers import EventHandler, InboxWorker
from core import inbox, leases
from core.messages import Event

log = logging.getLogger(__name__)

INBOX_WAKE = web.AppKey("inbox_wake", asyncio.Event)
SENDER_WAKE = web.AppKey("sender_wake", asyncio.Event)
HANDLER = web.AppKey("handler", EventHandler)

WORKERS = ("inbox", "sender", "scheduler", "connections")
STOP_GRACE_S = 15.0  # a send in flight finishes (adapters time out after 10 s) before exit
REJECTED_TEXT = "回调校验失败 / callback rejected"


# ---------------------------------------------------------------- callbacks


def callback_routes(adapter: PlatformAdapter) -> list[web.RouteDef]:
    async def verify(request: web.Request) -> web.StreamResponse:
        try:
            return await adapter.verify_url(request)
        except CallbackRejected as exc:
            return _rejected(adapter, request, exc)

    def receiver(parse: Parse, ack: Ack) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def receive(request: web.Request) -> web.StreamResponse:
            writer = request.app[INBOX_WRITER]
            with writer.in_flight():  # not the ack: it may wait for the reply, i.e. the worker
                try:
                    events = await parse(request)
                except CallbackRejected as exc:
                    return _rejected(adapter, request, exc)
                new = await writer.store(events)
            if any(new):
                request.app[INBOX_WAKE].set()
            return await ack(events, new)

        return receive

    routes: list[web.RouteDef] = []
    if adapter.callback_path:  # else long-connection mode: events arrive on a socket
        routes += [
            web.get(adapter.callback_path, verify),
            web.post(adapter.callback_path, receiver(adapter.parse, adapter.ack)),
        ]
    # further callback routes of one adapter (DingTalk's HTTP card callbacks)
    extra: Callable[[], list[tuple[str, Parse, Ack]]] = getattr(
        adapter, "extra_callbacks", lambda: []
    )
    routes += [web.post(path, receiver(parse, ack)) for path, parse, ack in extra()]
    return routes


Parse = Callable[[web.Request], Awaitable[list[Event]]]
Ack = Callable[[list[Event], list[bool]], Awaitable[web.Response]]


# The inbox worker's share of the loop while callbacks are being answered (see
# InboxWriter.yield_to_callbacks). An event younger than MAX_EVENT_AGE_S waits for the
# callbacks to go quiet (acks first in a burst); an older one waits at most as long as the
# previous event took to handle, and never longer than SHARE_WAIT_CAP_S.
MAX_EVENT_AGE_S = 0.5
HANDLER_SHARE = 0.5
SHARE_WAIT_CAP_S = 0.1
QUIET_S = 0.005  # idle this long: the callbacks paused (not the gap between two of a burst)


class InboxWriter:
    """Group commit for callbacks: events arriving while a commit is under way are stored
    together in the next transaction. Each request still gets its answer only after its own
    events are committed (durable before the ack), but a burst costs a few commits instead of
    one per request — on SQLite, one writer at a time, that is the difference that counts."""

    def __init__(self, services: Services) -> None:
        self.services = services
        engine = services.sessionmaker.kw.get("bind")
        # SQLite file: insert + commit in one trip to a writer thread; otherwise the ORM session
        self._sqlite = inbox.SqliteFileInbox.for_engine(engine) if engine is not None else None
        self._pending: list[tuple[list[Event], asyncio.Future[list[bool]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._in_flight = 0  # callback requests between arrival and ack
        self._idle = asyncio.Event()  # set while no callback is in flight or being stored
        self._idle.set()
        self._last_active = float("-inf")  # loop time a callback was last in flight

    async def store(self, events: list[Event]) -> list[bool]:
        """Whether each event is new (False: a duplicate, already stored)."""
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self._pending.append((events, future))
        self._idle.clear()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
            self._flusher.add_done_callback(lambda _: self._note_idle())
        return await future

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        """Around one callback request while it is parsed and stored."""
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            self._note_idle()

    def busy(self) -> bool:
        """A callback is being parsed, stored or acknowledged."""
        return not self._idle.is_set()

    def _note_idle(self) -> None:
        """Set `_idle` once no callback is being parsed, stored or acknowledged."""
        self._last_active = asyncio.get_running_loop().time()
        if not (
            self._in_flight
            or self._pending
            or (self._flusher is not None and not self._flusher.done())
        ):
            self._idle.set()

    async def yield_to_callbacks(
        self,
        age_s: float,
        previous_s: float,
        *,
        max_age_s: float = MAX_EVENT_AGE_S,
        cap_s: float = SHARE_WAIT_CAP_S,
    ) -> None:
        """The inbox worker waits here before each event (stored `age_s` ago; the previous
        event took `previous_s` to handle) while callbacks are in flight. Acks have a 5 s
        deadline and a fresh event can wait: it gives way until it is `max_age_s` old.
        An older one gives way only for its share: as long as the previous event took (at
        most `cap_s`), so under callbacks that never pause handling still gets half the time
        (waiting for a pause starved it: 2.6 handled/s at 50 callbacks/s). At a moderate
        rate callbacks are rarely in flight and nothing waits at all."""
        loop = asyncio.get_running_loop()
        share_wait = min(previous_s * (1 - HANDLER_SHARE) / HANDLER_SHARE, cap_s)
        deadline = loop.time() + max(max_age_s - age_s, share_wait)
        while (now := loop.time()) < deadline:
            if not self._idle.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), deadline - now)
                continue
            quiet_for = now - self._last_active
            if quiet_for >= QUIET_S:  # not just the moment between two requests of a burst
                return
            await asyncio.sleep(min(QUIET_S - quiet_for, deadline - now))

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await self._commit(batch)
            except Exception as exc:  # every request of the batch fails; the platform retries
                log.exception("storing %s callbacks failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), stored in zip(batch, results, strict=True):
                if not future.done():  # the client may have gone away
                    future.set_result(stored)

    async def close(self) -> None:
        """After the last callback (app cleanup): the SQLite writer's connection and thread."""
        if self._sqlite is not None:
            await self._sqlite.close()

    async def _commit(self, batch: list[tuple[list[Event], Any]]) -> list[list[bool]]:
        burst = [e for events, _ in batch for e in events]
        async with self.services.write_gate():
            now = self.services.clock.now()
            if self._sqlite is not None:
                flat = await self._sqlite.store_many(burst, now=now)
            else:
                async with self.services.sessionmaker() as session:
                    flat = await inbox.store_many(session, burst, now=now)
                    await session.commit()
        results, at = [], 0
        for events, _ in batch:
            results.append(flat[at : at + len(events)])
            at += len(events)
        return results


INBOX_WRITER = web.AppKey("inbox_writer", InboxWriter)


def _rejected(
    adapter: PlatformAdapter, request: web.Request, exc: CallbackRejected
) -> web.Response:
    # the reason goes to the log only: a forger learns nothing about which check failed
    log.warning("%s callback rejected from %s: %s", adapter.name, request.remote, exc.reason)
    return web.Response(status=exc.status, text=REJECTED_TEXT)


class QuietBadRequests(logging.Filter):
    """aiohttp's HTTP parser answers a request it cannot read (a line past 8,190 bytes, a bad
    header) with a 400 itself, and logs it as an error with a traceback: anyone could fill the
    log with those. One warning line instead, naming the kind of request, not its bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = (
                "unreadable HTTP request refused: %s %s",
                (
                    exc.code,
                    type(exc).__name__,
                ),
            )
            record.exc_info = record.exc_text = None
        return True


def quiet_bad_requests() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, QuietBadRequests) for f in server_log.filters):
        server_log.addFilter(QuietBadRequests())


# ---------------------------------------------------------------- health


async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        async with services.sessionmaker() as session:  # the query is the ping too
            queues = await leases.backlog(session)
    except Exception as exc:
        log.exception("health check: database unreachable")
        return web.json_response({"status": "error", "db": type(exc).__name__}, status=503)
    return web.json_response(
        {
            "status": "ok",
            "db": "ok",
            "pending_inbox": queues.pending_inbox,
            "dead_inbox": queues.dead_inbox,
            "pending_outbox": queues.pending_outbox,
            "dead_outbox": queues.dead_outbox,
            "platforms": sorted(services.adapters),
            "connections": {c.name: c.health() for c in services.connections},
        }
    )


# ---------------------------------------------------------------- workers


def _stoppable(name: str, run: Callable[[], Any], stop: Callable[[], None]) -> Any:
    """A cleanup_ctx that runs a worker loop and stops it gracefully on shutdown."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run(), name=f"lianjian-{name}")
        yield
        stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_GRACE_S)
        except TimeoutError:
            log.warning("%s worker did not stop within %ss; cancelling", name, STOP_GRACE_S)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    return ctx


def _inbox_ctx(app: web.Application) -> Any:
    services, wake_sender = app[SERVICES], app[SENDER_WAKE]
    worker = InboxWorker(
        services,
        app[HANDLER],
        on_handled=wake_sender.set,
        before_event=app[INBOX_WRITER].yield_to_callbacks,
        callbacks_busy=app[INBOX_WRITER].busy,
    )
    return _stoppable("inbox", lambda: worker.run(app[INBOX_WAKE]), worker.stop)


def _sender_ctx(app: web.Application) -> Any:
    sender = Sender(app[SERVICES])
    return _stoppable("sender", lambda: sender.run(app[SENDER_WAKE]), sender.stop)


class BurstWake:
    """Wakes the inbox worker for events a long connection stored, once the frames in hand
    are all acknowledged (a burst is over), not at its first commit: woken then, the worker
    claimed rows at SQLite's write gate while the burst's commits queued behind it, only to
    give way to the acks afterwards. Under a flood that never pauses it is woken anyway once
    the oldest unannounced event is MAX_EVENT_AGE_S old. A frame at a time (the usual rate)
    wakes it as soon as that frame is acknowledged."""

    def __init__(self, wake: asyncio.Event, max_age_s: float = MAX_EVENT_AGE_S) -> None:
        self._wake, self._max_age_s = wake, max_age_s
        self._since: float | None = None  # loop time of the first event not announced yet

    def stored(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._since is None:
            self._since = now
        elif now - self._since >= self._max_age_s:
            self.burst_over()

    def burst_over(self) -> None:
        if self._since is not None:
            self._since = None
            self._wake.set()


async def _connections_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run every long connection; each stores its events through the same group commit as
    the HTTP callbacks and acknowledges a frame only once that commit is done."""
    services, writer = app[SERVICES], app[INBOX_WRITER]
    wake = BurstWake(app[INBOX_WAKE])

    async def sink(events: list[Event]) -> list[bool]:
        stored = await writer.store(events)
        if any(stored):
            wake.stored()
        return stored

    @contextlib.contextmanager
    def busy() -> Iterator[None]:
        with writer.in_flight():
            yield
        wake.burst_over()

    tasks = [
        asyncio.create_task(c.run(sink, busy), name=f"lianjian-{c.name}")
        for c in services.connections
    ]
    yield
    for connection in services.connections:
        connection.stop()
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    from bot.scheduler import Jobs, run_due_jobs_once

    services = app[SERVICES]
    if not services.settings.scheduler.enabled:
        yield
        return
    scheduled = Jobs(services)
    scheduled.start()
    # catch up on today's ticks missed while the server was down (idempotent in core)
    catch_up = asyncio.create_task(run_due_jobs_once(services, services.clock.now()))
    yield
    await scheduled.stop(STOP_GRACE_S)
    await asyncio.gather(catch_up, return_exceptions=True)


async def _close_clients(app: web.Application) -> AsyncIterator[None]:
    yield
    for adapter in app[SERVICES].adapters.values():
        await adapter.close()
    await app[INBOX_WRITER].close()


# ---------------------------------------------------------------- the app


def default_handler(services: Services) -> EventHandler:
    from bot.dispatch import Dispatcher

    return Dispatcher(services)


def create_app(
    services: Services, *, handler: EventHandler | None = None, workers: Collection[str] = WORKERS
) -> web.Application:
    """The whole server. Tests pass their own `workers` subset (e.g. none, to drive the
    workers by hand) and may pass a `handler` in place of the dispatcher."""
    unknown = set(workers) - set(WORKERS)
    if unknown:
        raise ValueError(f"unknown workers: {sorted(unknown)}")
    from bot.pages.errors import chinese_errors

    quiet_bad_requests()
    callbacks = [r for adapter in services.adapters.values() for r in callback_routes(adapter)]
    app = web.Application(
        client_max_size=services.settings.client_max_size,
        # aiohttp's English refusals in Chinese, but on the platforms' callbacks
        middlewares=[chinese_errors({r.path for r in callbacks})],
    )
    app[SERVICES] = services
    app[INBOX_WAKE] = asyncio.Event()
    app[SENDER_WAKE] = asyncio.Event()
    app[HANDLER] = handler if handler is not None else default_handler(services)
    app[INBOX_WRITER] = InboxWriter(services)

    # the icon is no page (no link, no access rule): like /healthz it sits beside them
    routes: list[web.RouteDef] = [web.get("/healthz", healthz), *favicon.routes()]
    routes += callbacks
    routes += _page_routes(app)
    app.add_routes(routes)

    app.cleanup_ctx.append(_close_clients)
    if "sender" in workers:
        app.cleanup_ctx.append(_sender_ctx(app))
    if "inbox" in workers:
        app.cleanup_ctx.append(_inbox_ctx(app))
    if "scheduler" in workers:
        app.cleanup_ctx.append(_scheduler_ctx)
    if "connections" in workers:
        app.cleanup_ctx.append(_connections_ctx)
    return app


def _page_routes(app: web.Application) -> list[web.RouteDef]:
    """Web pages (bot.pages) and, when enabled, the simulator."""
    from bot import pages
    from bot.platforms import simulator

    services = app[SERVICES]
    routes = pages.routes(services)
    if services.settings.simulator.enabled:
        routes += simulator.routes(services, wake_inbox=app[INBOX_WAKE].set)
    return routes + pages.missing_pages()
