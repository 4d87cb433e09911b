"""What the running server shares with its routes and workers (typed aiohttp AppKey)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.changes import Ctx
from core.clock import Clock
from core.messages import Platform
from core.rules import Rules

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.platforms.base import PlatformAdapter
    from bot.platforms.longconn import LongConnection


@dataclass
class Services:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    clock: Clock
    rules: Rules
    link_secret: bytes  # HMAC key for signed H5 links
    public_base_url: str  # e.g. "http://127.0.0.1:8080" — signed links point here
    adapters: dict[Platform, PlatformAdapter] = field(default_factory=dict)  # enabled platforms
    # outbound long connections (DingTalk Stream, WeCom AI bot WebSocket) feeding the inbox
    connections: list[LongConnection] = field(default_factory=list)
    engine: AsyncEngine | None = None  # set by bot.server, which disposes it on shutdown
    _sqlite_writer: WriteGate = field(default_factory=lambda: WriteGate(), repr=False)

    def core_ctx(self, session: AsyncSession) -> Ctx:
        """A core context acting as the system, for look-ups before an officer is known."""
        return Ctx(session=session, clock=self.clock, rules=self.rules)

    def write_gate(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Hold around a write transaction of the busy paths (callback inserts, inbox handling).
        SQLite allows one writer at a time and makes the others poll with sleeps of up to
        100 ms; queueing on an asyncio lock instead hands the database over at once. Other
        databases lock rows, not the file: no gate."""
        if self.single_writer:
            return self._sqlite_writer
        return contextlib.nullcontext()

    @property
    def single_writer(self) -> bool:
        """SQLite: one write transaction at a time for the whole database."""
        bind = self.sessionmaker.kw.get("bind")
        return bind is not None and bind.dialect.name == "sqlite"

    def write_gate_wanted(self) -> bool:
        """Whether a writer waits for the gate (a holder doing several writes lets it in)."""
        return self._sqlite_writer.waiting > 0


class WriteGate:
    """An asyncio.Lock that counts who waits for it."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self.waiting = 0

    async def __aenter__(self) -> None:
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()


SERVICES = web.AppKey("services", Services)
