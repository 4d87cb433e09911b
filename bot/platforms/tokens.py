"""In-process cache for platform access tokens.

Both platforms frequency-block their token endpoints, so a token is fetched once, shared by
every sender coroutine, and refreshed a few minutes before it expires. One fetch at a time:
concurrent callers wait on the lock and then find the fresh token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from core.clock import Clock

# Fetch a new token: returns (token, lifetime in seconds).
TokenFetcher = Callable[[], Awaitable[tuple[str, float]]]

EARLY_REFRESH_S = 300.0


class TokenCache:
    def __init__(self, fetch: TokenFetcher, clock: Clock, early_s: float = EARLY_REFRESH_S) -> None:
        self._fetch = fetch
        self._clock = clock
        self._early_s = early_s
        self._lock = asyncio.Lock()
        self._token = ""
        self._refresh_at = 0.0

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _fresh(self) -> bool:
        return bool(self._token) and self._now() < self._refresh_at

    async def get(self) -> str:
        if self._fresh():
            return self._token
        async with self._lock:
            if not self._fresh():  # another coroutine may have refreshed while we waited
                token, lifetime = await self._fetch()
                # a short-lived token is refreshed at half its life instead of never being fresh
                early = min(self._early_s, lifetime / 2)
                self._token, self._refresh_at = token, self._now() + lifetime - early
            return self._token

    def invalidate(self, token: str) -> None:
        """Drop `token` after the platform rejected it, unless a newer one already replaced it."""
        if token == self._token:
            self._token = ""
            self._refresh_at = 0.0
