"""Fake platform servers: real aiohttp servers on loopback that speak the platforms' protocols.

Each fake records every request it received so tests assert on what actually crossed the wire.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.platforms.base import CallbackRejected, PlatformAdapter
from core.clock import Clock, SystemClock
from core.messages import Event


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    fault: str = ""  # the fault this call was answered with (FakeServer.faults), if any


@dataclass
class Script:
    """Errors to return for the next N calls of one endpoint, before the normal handling."""

    queue: dict[str, deque[dict[str, Any]]] = field(default_factory=lambda: defaultdict(deque))

    def fail_next(self, endpoint: str, answer: dict[str, Any], times: int = 1) -> None:
        self.queue[endpoint].extend([answer] * times)

    def pop(self, endpoint: str) -> dict[str, Any] | None:
        pending = self.queue[endpoint]
        return pending.popleft() if pending else None


class RateLimiter:
    """Sliding one-minute window per key, like the platforms' 20 messages/minute/robot."""

    def __init__(self, clock: Clock, per_minute: int) -> None:
        self._clock = clock
        self._per_minute = per_minute
        self._sent: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str) -> bool:
        now = self._clock.now().timestamp()
        sent = self._sent[key]
        while sent and now - sent[0] >= 60:
            sent.popleft()
        if len(sent) >= self._per_minute:
            return False
        sent.append(now)
        return True


# Faults a fake can be told to answer its next calls of a path with (`FakeServer.faults`):
#   "http500", "http502", "http503"  the gateway answers that status, nothing is processed
#   "hang"        no answer until the client gives up (its timeout); nothing is processed
#   "reset"       the connection is dropped (TCP reset) before anything is processed
#   "lost_hang"   the call IS processed, then the answer hangs: the client sees a timeout
#   "lost_reset"  the call IS processed, then the connection is dropped before the answer
#   a dict        answered as that JSON object with HTTP 200 (e.g. a rate-limit errcode)
#   "ok"          no fault: this call is handled normally (spaces the faults out)
# The two "lost" kinds are how one message reaches a platform twice: the client cannot tell
# them from a failure before processing and sends again.
Fault = str | dict[str, Any]
HANG_S = 3.0  # longer than the clients' timeouts in the tests, short enough to wait for at close


class FakeServer:
    """Base: an aiohttp app on 127.0.0.1 with a random port that records requests."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.requests: list[Recorded] = []
        self.script = Script()
        self.outage: dict[str, int] = {}  # path -> how many more calls answer HTTP 500
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)  # path -> for its next calls
        self.faults_applied: list[tuple[str, str]] = []  # (path, kind) in the order applied
        self.app = web.Application(middlewares=[self._record])
        self._server = TestServer(self.app, host="127.0.0.1")

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode(errors="replace")
        self.requests.append(
            Recorded(
                request.method, request.path, dict(request.query), dict(request.headers), parsed
            )
        )
        if self.outage.get(request.path, 0) > 0:  # the platform's gateway is down
            self.outage[request.path] -= 1
            return web.Response(status=500, text="Internal Server Error")
        pending = self.faults.get(request.path)
        fault = pending.popleft() if pending else None
        if fault is None or fault == "ok":
            response: web.StreamResponse = await handler(request)
            return response
        kind = "json" if isinstance(fault, dict) else fault
        self.faults_applied.append((request.path, kind))
        self.requests[-1].fault = kind
        if isinstance(fault, dict):
            return web.json_response(fault)
        if fault.startswith("http"):
            return web.Response(status=int(fault[4:]), text="Bad Gateway")
        if fault.startswith("lost_"):
            await handler(request)  # processed; the answer never arrives
        if fault.endswith("hang"):
            await asyncio.sleep(HANG_S)
            return web.Response(status=504)
        if fault.endswith("reset"):
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        raise ValueError(f"unknown fault {fault!r}")

    async def start(self) -> Self:
        await self._server.start_server()
        return self

    async def close(self) -> None:
        await self._server.close()

    def url(self, path: str = "") -> str:
        return str(self._server.make_url(path))

    @property
    def base(self) -> str:
        return self.url("").rstrip("/")

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]


async def wait_until(condition: Any, timeout_s: float = 10.0) -> None:
    """Poll until `condition()` holds: the client under test works on its own schedule."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def callback_app(adapter: PlatformAdapter) -> tuple[web.Application, list[list[Event]]]:
    """The smallest app that puts an adapter's callback handling on its route."""
    received: list[list[Event]] = []

    async def verify(request: web.Request) -> web.Response:
        try:
            return await adapter.verify_url(request)
        except CallbackRejected as exc:
            return web.Response(status=exc.status, text=exc.reason)

    async def receive(request: web.Request) -> web.Response:
        try:
            events = await adapter.parse(request)
        except CallbackRejected as exc:
            return web.Response(status=exc.status, text=exc.reason)
        received.append(events)
        return await adapter.ack(events, [True] * len(events))

    app = web.Application()
    app.router.add_get(adapter.callback_path, verify)
    app.router.add_post(adapter.callback_path, receive)
    return app, received
