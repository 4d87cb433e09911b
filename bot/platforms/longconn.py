"""What the long-connection clients (DingTalk Stream, WeCom AI bot WebSocket) share.

Both connect outward, receive events as WebSocket frames and must acknowledge each frame; the
rule that keeps them as durable as the HTTP callbacks is the same: a frame is acknowledged only
after its events are committed to the inbox (`EventSink`). Protocol facts: docs/longconn.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import aiohttp

from bot.platforms.base import inbound_json
from core.clock import Clock
from core.messages import Event

log = logging.getLogger(__name__)

# Stores events in the inbox and returns, per event, whether it was new; returns only once the
# events are committed, so the caller may acknowledge them.
EventSink = Callable[[list[Event]], Awaitable[list[bool]]]
# Held while frames wait for their store and ack (bot.app.InboxWriter.in_flight): the inbox
# worker gives way to them as to HTTP callbacks, so a burst is acknowledged before handling.
Busy = Callable[[], contextlib.AbstractContextManager[None]]

ConnState = Literal["idle", "connecting", "connected", "backoff", "kicked", "failed", "stopped"]


class LongConnection(Protocol):
    """A client that keeps one outbound connection alive until `stop()`."""

    name: str

    async def run(self, sink: EventSink, busy: Busy | None = None) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> dict[str, Any]: ...


@dataclass
class ConnHealth:
    """What /healthz shows for one connection."""

    clock: Clock
    state: ConnState = "idle"
    since: dt.datetime | None = None
    connects: int = 0  # successful connections so far (1 = never reconnected)
    frames: int = 0  # event frames received
    last_error: str = ""

    def set(self, state: ConnState, error: str = "") -> None:
        self.state, self.since = state, self.clock.now()
        if error:
            self.last_error = error

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": self.since.isoformat() if self.since else None,
            "connects": self.connects,
            "frames": self.frames,
            "last_error": self.last_error,
        }


@dataclass
class Backoff:
    """Exponential reconnect delay with jitter: base·2^n capped, a random point in its upper
    half (many processes restarting together do not reconnect in step)."""

    base_s: float = 1.0
    cap_s: float = 60.0
    rand: Callable[[], float] = random.random
    failures: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.base_s * 2.0 ** min(self.failures, 30), self.cap_s)
        self.failures += 1
        return ceiling * (0.5 + 0.5 * self.rand())

    def reset(self) -> None:
        """The connection proved to work (a frame arrived): the next failure starts at base."""
        self.failures = 0


# Called once per batch with the keys its frames were put with, after their events were
# stored (True) or could not be (False): sends their acks. One call for the batch, not one
# per frame: a burst's acks go out in one tight loop, without a closure and two coroutines
# made and freed per frame.
Answer = Callable[[list[str], bool], Awaitable[None]]

# Frames read but not yet acknowledged, at most (StoreBatches' `limit`): what a burst brings
# while a commit runs goes into the next one. Platform message ids are random, so each row
# lands on its own page of the inbox's unique index and a commit writes every page it touched:
# in one process a row took ~21 us of the SQLite thread in commits of 100 rows, ~15 us in
# commits of 400 (30,000 rows stored); a DingTalk frame's whole intake ~65 us of CPU with 100
# in hand, ~52 us with 500-2,000.
MAX_IN_HAND = 1000


class StoreBatches:
    """Frames read while the previous commit ran are stored together in one sink call, then
    `answer` acknowledges them: one commit for a burst instead of one per frame, and still
    no ack before its event is in the inbox. Reading waits while `limit` events wait, which
    pushes back on the platform. `busy` is held from the first waiting frame until the last
    one is answered."""

    def __init__(
        self,
        sink: EventSink,
        limit: int,
        answer: Answer | None = None,
        busy: Busy | None = None,
    ) -> None:
        self._sink, self._limit, self._answer, self._busy = sink, limit, answer, busy
        self._events: list[Event] = []
        self._keys: list[str] = []  # the frame of each event, for `answer`
        self._wake, self._room = asyncio.Event(), asyncio.Event()
        self._room.set()
        self._closing = False
        self._held: contextlib.ExitStack | None = None
        self._task = asyncio.create_task(self._run())

    async def put(self, event: Event, key: str = "") -> None:
        """Queue `event` for the next commit; `key` (its frame's id) is passed to `answer`."""
        if not self._room.is_set():  # (no coroutine made per frame while there is room)
            await self._room.wait()
        self._events.append(event)
        self._keys.append(key)
        if self._held is None and self._busy is not None:
            self._held = contextlib.ExitStack()
            self._held.enter_context(self._busy())
        self._wake.set()
        if len(self._events) >= self._limit:
            self._room.clear()

    async def _run(self) -> None:
        while self._events or not self._closing:
            if not self._events:
                if self._held is not None:
                    self._held.close()
                    self._held = None
                await self._wake.wait()
                self._wake.clear()
                continue
            events, keys = self._events, self._keys
            self._events, self._keys = [], []
            self._room.set()
            try:
                await self._sink(events)
                ok = True
            except Exception:  # not stored: no success is reported for these frames
                log.exception("storing %s events from a long connection failed", len(events))
                ok = False
            if self._answer is not None:
                await self._answer(keys, ok)
        if self._held is not None:
            self._held.close()
            self._held = None

    async def close(self, timeout_s: float) -> None:
        """Store and answer what is in hand (the socket may already be gone), then stop."""
        self._closing = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            self._task.cancel()


async def sleep_unless(stopping: asyncio.Event, delay_s: float) -> None:
    """Sleep `delay_s`, or less if `stopping` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), delay_s)


async def json_frames(ws: aiohttp.ClientWebSocketResponse) -> AsyncIterator[dict[str, Any]]:
    """The socket's text frames that are JSON objects with a `headers` object (both platforms'
    envelopes); anything else is logged and skipped."""
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            continue
        try:
            frame = inbound_json(msg.data)
        except ValueError:
            frame = None
        if isinstance(frame, dict) and isinstance(frame.get("headers"), dict):
            yield frame
        else:
            log.warning("unreadable frame skipped")


class ReconnectingClient:
    """Health, stop and the reconnect loop both long-connection clients share."""

    name = "connection"

    def __init__(self, clock: Clock, backoff: Backoff) -> None:
        self.health_info = ConnHealth(clock)
        self._backoff = backoff
        self._stopping = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    def health(self) -> dict[str, Any]:
        return self.health_info.as_dict()

    def stop(self) -> None:
        """Leave `run`; the open socket is closed (what it did not acknowledge comes again)."""
        self._stopping.set()
        if self._ws is not None and not self._ws.closed:
            asyncio.get_running_loop().create_task(self._ws.close())

    async def _keep_connected(
        self, connect: Callable[[], Awaitable[None]], errors: tuple[type[Exception], ...]
    ) -> None:
        """Run `connect` (one connection's life) again and again until stopped, with the
        backoff in between; exceptions outside `errors` end the loop."""
        caught: tuple[type[Exception], ...] = (
            *errors,
            aiohttp.ClientError,
            TimeoutError,
            ValueError,
        )
        while not self._stopping.is_set():
            self.health_info.set("connecting")
            try:
                await connect()
                reason = "connection closed"
            except caught as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if self._stopping.is_set():
                break
            delay = self._backoff.next_delay()
            log.warning("%s: %s; reconnecting in %.1fs", self.name, reason, delay)
            self.health_info.set("backoff", reason)
            await sleep_unless(self._stopping, delay)
        self.health_info.set("stopped")
