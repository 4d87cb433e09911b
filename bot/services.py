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
    adapters: dict[str, PlatformAdapter] = field(default_factory=dict)  # enabled platforms
    # outbound long connections (DingTalk Stream, WeCom AI bot WebSocket) feeding the inbox
    connections: list[LongConnection] = field(default_factory=list)
    engine: AsyncEngine | None = None  # set by bot.server, which disposes it on shutdown
    _sqlite_writer: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def core_ctx(self, session: AsyncSession) -> Ctx:
        """A core context acting as the system, for look-ups before an officer is known."""
        return Ctx(session=session, clock=self.clock, rules=self.rules)

    def write_gate(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Hold around a write transaction of the busy paths (callback inserts, inbox handling).
        SQLite allows one writer at a time and makes the others poll with sleeps of up to
        100 ms; queueing on an asyncio lock instead hands the database over at once. Other
        databases lock rows, not the file: no gate."""
        bind = self.sessionmaker.kw.get("bind")
        if bind is not None and bind.dialect.name == "sqlite":
            return self._sqlite_writer
        return contextlib.nullcontext()


SERVICES = web.AppKey("services", Services)
