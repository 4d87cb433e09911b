"""The server side of core.platform_tokens: each operation in its own short transaction
(writes in line with the other writers on SQLite), for bot.platforms.tokens.TokenCache."""

from __future__ import annotations

import datetime as dt

from bot.services import Services
from core import platform_tokens
from core.platform_tokens import StoredToken


class SharedTokens:
    """Access tokens on the server's database: one fetch for every process sharing it."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def read(self, key: str) -> StoredToken | None:
        async with self.services.sessionmaker() as session:
            return await platform_tokens.read(session, key)

    async def claim_refresh(
        self, key: str, seen: str, now: dt.datetime, lease_until: dt.datetime
    ) -> bool:
        async with self.services.write_gate(), self.services.sessionmaker() as session:
            claimed = await platform_tokens.claim_refresh(
                session, key, seen, now=now, lease_until=lease_until
            )
            await session.commit()
        return claimed

    async def save(
        self, key: str, token: str, fetched_at: dt.datetime, expires_at: dt.datetime
    ) -> None:
        async with self.services.write_gate(), self.services.sessionmaker() as session:
            await platform_tokens.save(
                session, key, token, fetched_at=fetched_at, expires_at=expires_at
            )
            await session.commit()

    async def release(self, key: str) -> None:
        async with self.services.write_gate(), self.services.sessionmaker() as session:
            await platform_tokens.release(session, key)
            await session.commit()

    async def invalidate(self, key: str, token: str) -> None:
        async with self.services.write_gate(), self.services.sessionmaker() as session:
            await platform_tokens.invalidate(session, key, token)
            await session.commit()
