"""WeCom pictures: the temporary-media id cache, inline robot pictures, size checks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable

from bot.platforms.base import (
    SendResult,
)
from bot.platforms.wecom.protocol import (
    MEDIA_REUSE_S,
)
from core.clock import Clock
from core.messages import Image


class MediaCache:
    """media_ids of uploaded pictures by content hash, reused while fresh (temporary media
    lasts 3 days; reused here for 2). One upload at a time: the leaders served together share
    one. Used by the app (media/upload) and the AI bot's socket (aibot_upload_media_*)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._ids: dict[str, tuple[str, float]] = {}  # picture sha256 -> (media_id, until)
        self._lock = asyncio.Lock()

    async def media_id(self, image: Image, upload: Callable[[Image], Awaitable[str]]) -> str:
        async with self._lock:
            now = self._clock.now().timestamp()
            cached = self._ids.get(image.sha256)
            if cached is not None and cached[1] > now:
                return cached[0]
            media_id = await upload(image)
            self._ids = {k: v for k, v in self._ids.items() if v[1] > now}
            self._ids[image.sha256] = (media_id, now + MEDIA_REUSE_S)
            return media_id


def inline_picture(raw: bytes) -> dict[str, str]:
    """A picture carried in the message itself: Base64 with the MD5 of the raw bytes (the group
    robot's image message, the AI bot's stream msg_item)."""
    return {
        "base64": base64.b64encode(raw).decode(),
        "md5": hashlib.md5(raw, usedforsecurity=False).hexdigest(),
    }


def picture_problem(
    image: Image | None, min_bytes: int, max_bytes: int | None = None
) -> SendResult | None:
    """Why this picture cannot go (never permanent: a robot must not be disabled for it)."""
    if image is None or len(image.data) < min_bytes:
        return SendResult(False, code="no_picture", detail="the picture's bytes are missing")
    if max_bytes is not None and len(image.data) > max_bytes:
        return SendResult(False, code="too_large", detail=f"picture over {max_bytes} bytes")
    return None
