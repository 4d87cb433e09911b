"""Pictures the bot sends (the leaders' summary chart), stored once by SHA-256 of their bytes.

A message names its picture by hash (`core.messages.Image`); the sender loads the bytes just
before a platform needs them (WeCom uploads them), and the signed image page serves them (the
link DingTalk's markdown shows). Identical charts — every leader of one department — are one row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.messages import Image
from core.models import StoredImage

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def mime_of(data: bytes) -> str | None:
    """The type the bytes are (PNG or JPEG, the two every platform takes), or None."""
    if data.startswith(PNG_MAGIC):
        return "image/png"
    if data.startswith(JPEG_MAGIC):
        return "image/jpeg"
    return None


async def store(session: AsyncSession, data: bytes, *, now: dt.datetime) -> Image:
    """Keep the picture (once per content) and return the reference a message carries."""
    mime = mime_of(data)
    if mime is None:
        raise ValueError("only PNG or JPEG pictures are sent")
    sha = hashlib.sha256(data).hexdigest()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = cast(Table, StoredImage.__table__)
    # a concurrent store of the same picture is the same row: nothing to do
    await session.execute(
        insert(table)
        .values(sha256=sha, mime=mime, size=len(data), data=data, created_at=now)
        .on_conflict_do_nothing(index_elements=["sha256"])
    )
    return Image(sha256=sha, mime=mime)


async def load(session: AsyncSession, sha256: str) -> bytes | None:
    data: bytes | None = await session.scalar(
        select(StoredImage.data).where(StoredImage.sha256 == sha256)
    )
    return data
