"""What the running server shares with its routes and workers (typed aiohttp AppKey)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.clock import Clock
from core.rules import Rules

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.platforms.base import PlatformAdapter


@dataclass
class Services:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    clock: Clock
    rules: Rules
    link_secret: bytes  # HMAC key for signed H5 links
    public_base_url: str  # e.g. "http://127.0.0.1:8080" — signed links point here
    adapters: dict[str, PlatformAdapter] = field(default_factory=dict)  # enabled platforms
    engine: AsyncEngine | None = None  # set by bot.server, which disposes it on shutdown


SERVICES = web.AppKey("services", Services)
