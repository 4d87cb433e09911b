"""The server side of core.replays: claims a callback signature in its own short write
transaction, before the body is parsed, and prunes expired signatures now and then."""

from __future__ import annotations

import datetime as dt

from bot.services import Services
from core import replays

PRUNE_EVERY = dt.timedelta(minutes=1)


class SignatureLedger:
    """Shared by every process on the database: a signature used once is refused with another
    body after a restart and in any other process."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._next_prune = dt.datetime.min.replace(tzinfo=dt.UTC)

    async def claim(self, key: str, body_sha256: str, keep_until: dt.datetime) -> bool:
        now = self.services.clock.now()
        async with self.services.write_gate(), self.services.sessionmaker() as session:
            if now >= self._next_prune:
                self._next_prune = now + PRUNE_EVERY
                await replays.prune(session, now)
            fresh = await replays.claim(session, key, body_sha256, keep_until=keep_until)
            await session.commit()
        return fresh
