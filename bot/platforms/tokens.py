"""Access tokens for the platforms' APIs: cached in the process, shared through the database.

Both platforms frequency-block their token endpoints, so a token is fetched once, shared by
every sender coroutine, and refreshed a few minutes before it expires. One fetch at a time in
a process: concurrent callers wait on the lock and then find the fresh token. With a
`TokenStore` (bot.token_store, on the server's database) one fetch at a time across
processes too: the process that takes the row's refresh lease fetches, the others keep using
the old token while it is still valid, or wait for the new one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from core.clock import Clock
from core.platform_tokens import StoredToken

# Fetch a new token: returns (token, lifetime in seconds).
TokenFetcher = Callable[[], Awaitable[tuple[str, float]]]

EARLY_REFRESH_S = 300.0
REFRESH_LEASE = dt.timedelta(seconds=30)  # > an HTTP timeout; a dead refresher loses it after
POLL_S = 0.05  # how often a process waiting for another's refresh looks again
WAIT_S = 15.0  # then it fetches itself: a lease on a frozen clock would never run out
SHARED_RECHECK_S = 1.0  # a still-valid token another process is replacing: look again soon


class TokenStore(Protocol):
    """core.platform_tokens behind the server's sessions (bot.token_store.SharedTokens)."""

    async def read(self, key: str) -> StoredToken | None: ...

    async def claim_refresh(
        self, key: str, seen: str, now: dt.datetime, lease_until: dt.datetime
    ) -> bool: ...

    async def save(
        self, key: str, token: str, fetched_at: dt.datetime, expires_at: dt.datetime
    ) -> None: ...

    async def release(self, key: str) -> None: ...

    async def invalidate(self, key: str, token: str) -> None: ...


def refresh_time(fetched_at: dt.datetime, expires_at: dt.datetime, early_s: float) -> dt.datetime:
    """When to refresh: `early_s` before expiry, or at half the life of a short-lived token
    (which would otherwise never count as fresh)."""
    early = min(early_s, (expires_at - fetched_at).total_seconds() / 2)
    return expires_at - dt.timedelta(seconds=early)


class TokenCache:
    def __init__(
        self,
        fetch: TokenFetcher,
        clock: Clock,
        early_s: float = EARLY_REFRESH_S,
        *,
        store: TokenStore | None = None,
        key: str = "",
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._early_s = early_s
        self._store, self._key = store, key
        self._lock = asyncio.Lock()
        self._token = ""
        self._refresh_at = dt.datetime.min.replace(tzinfo=dt.UTC)

    def _fresh(self) -> bool:
        return bool(self._token) and self._clock.now() < self._refresh_at

    async def get(self) -> str:
        if self._fresh():
            return self._token
        async with self._lock:
            if not self._fresh():  # another coroutine may have refreshed while we waited
                if self._store is None:
                    await self._fetch_and_keep()
                else:
                    await self._get_shared(self._store)
            return self._token

    async def _fetch_and_keep(self) -> tuple[str, dt.datetime, dt.datetime]:
        token, lifetime = await self._fetch()
        fetched = self._clock.now()
        expires = fetched + dt.timedelta(seconds=lifetime)
        self._token, self._refresh_at = token, refresh_time(fetched, expires, self._early_s)
        return token, fetched, expires

    async def _get_shared(self, store: TokenStore) -> None:
        give_up = time.monotonic() + WAIT_S
        while True:
            now = self._clock.now()
            stored = await store.read(self._key)
            if (
                stored is not None
                and stored.token
                and stored.fetched_at is not None
                and stored.expires_at is not None
            ):
                refresh_at = refresh_time(stored.fetched_at, stored.expires_at, self._early_s)
                if now < refresh_at:  # another process fetched it: use it
                    self._token, self._refresh_at = stored.token, refresh_at
                    return
                valid = now < stored.expires_at
            else:
                valid = False
            seen = stored.token if stored is not None else ""
            if await store.claim_refresh(self._key, seen, now, now + REFRESH_LEASE):
                try:
                    token, fetched, expires = await self._fetch_and_keep()
                except BaseException:
                    await store.release(self._key)
                    raise
                await store.save(self._key, token, fetched, expires)
                return
            if valid and stored is not None and stored.expires_at is not None:
                # another process is refreshing early: the old token still works meanwhile
                self._token = stored.token
                self._refresh_at = min(
                    now + dt.timedelta(seconds=SHARED_RECHECK_S), stored.expires_at
                )
                return
            if time.monotonic() > give_up:  # the refresher is gone or stuck: fetch ourselves
                token, fetched, expires = await self._fetch_and_keep()
                await store.save(self._key, token, fetched, expires)
                return
            await asyncio.sleep(POLL_S)

    async def invalidate(self, token: str) -> None:
        """Drop `token` after the platform rejected it, unless a newer one already replaced it
        (here, or in the shared store by another process)."""
        if token == self._token:
            self._token = ""
            self._refresh_at = dt.datetime.min.replace(tzinfo=dt.UTC)
        if self._store is not None:
            await self._store.invalidate(self._key, token)
