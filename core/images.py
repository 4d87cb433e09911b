"""Pictures the bot sends (the leaders' summary chart), stored once by SHA-256 of their bytes.

A message names its picture by hash (`core.messages.Image`); the sender loads the bytes just
before a platform needs them (WeCom uploads them), and the signed image page serves them (the
link DingTalk's markdown shows). Identical charts — every leader of one department — are one row.
Pictures are pruned once old (`prune`, the scheduler's daily housekeeping), except those a
message still waiting to go names, or a link sent not long ago still shows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import cast

from sqlalchemy import Table, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.changes import Ctx, record
from core.messages import Image
from core.models import OutboxMessage, StoredImage
from core.states import OutboxState

log = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def mime_of(data: bytes) -> str | None:
    """The type the bytes are (PNG or JPEG, the two every platform takes), or None."""
    if data.startswith(PNG_MAGIC):
        return "image/png"
    if data.startswith(JPEG_MAGIC):
        return "image/jpeg"
    return None


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's header (its first chunk, IHDR), or None."""
    if not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


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


async def prune(ctx: Ctx, *, keep_days: int, links_valid_for: dt.timedelta) -> list[str]:
    """Delete the pictures stored more than `keep_days` ago that nothing needs any more: no
    outbox row naming one is still to be sent (pending, or dead and retryable by an admin), and
    none was sent within `links_valid_for` (the lifetime of the signed link a DingTalk message
    shows it from, counted from the send). Audited with the hashes and bytes freed; returns
    the hashes deleted."""
    now = ctx.clock.now()
    rows = await ctx.session.execute(
        select(StoredImage.sha256, StoredImage.size).where(
            StoredImage.created_at < now - dt.timedelta(days=keep_days)
        )
    )
    old: dict[str, int] = {sha: size for sha, size in rows}
    if not old:  # most days: no outbox scan at all
        return []
    named = OutboxMessage.message["image"]["sha256"].as_string()
    needed = set(
        await ctx.session.scalars(
            select(func.distinct(named)).where(
                named.in_(list(old)),
                or_(
                    OutboxMessage.state != OutboxState.SENT,
                    OutboxMessage.sent_at >= now - links_valid_for,
                ),
            )
        )
    )
    gone = sorted(set(old) - needed)
    if not gone:
        return []
    await ctx.session.execute(delete(StoredImage).where(StoredImage.sha256.in_(gone)))
    freed = sum(old[sha] for sha in gone)
    await record(
        ctx,
        "images.pruned",
        "stored_image",
        {"sha256": gone, "bytes": freed, "kept_in_use": len(needed), "keep_days": keep_days},
    )
    log.info(
        "pruned %d stored pictures (%d bytes); %d old ones still needed",
        len(gone),
        freed,
        len(needed),
    )
    return gone
