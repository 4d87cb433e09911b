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
from dataclasses import dataclass
from typing import cast

from sqlalchemy import ColumnElement, Table, delete, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.changes import Ctx, record
from core.messages import Image
from core.models import OutboxMessage, StoredImage
from core.states import OutboxState

log = logging.getLogger(__name__)

# the picture an outbox row names (an image message), by hash
_NAMED = OutboxMessage.message["image"]["sha256"].as_string()

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


@dataclass(frozen=True)
class Prunable:
    """What the daily housekeeping found it may delete: pictures past `keep_days` that nothing
    needed when it looked (hash → bytes), and how many old ones something still needed."""

    old: dict[str, int]
    kept_in_use: int
    keep_days: int
    links_valid_for: dt.timedelta


def _needed(links_valid_for: dt.timedelta, now: dt.datetime) -> ColumnElement[bool]:
    """An outbox row that still needs the picture it names: not sent yet (pending, or dead
    and retryable by an admin), or sent within the lifetime of the signed link it shows."""
    return or_(
        OutboxMessage.state != OutboxState.SENT, OutboxMessage.sent_at >= now - links_valid_for
    )


async def prunable(ctx: Ctx, *, keep_days: int, links_valid_for: dt.timedelta) -> Prunable:
    """The reads of the housekeeping, and no write (the scheduler runs them before its claim
    opens the write transaction): the pictures stored more than `keep_days` ago that no
    outbox row needs (`_needed`)."""
    now = ctx.clock.now()
    rows = await ctx.session.execute(
        select(StoredImage.sha256, StoredImage.size).where(
            StoredImage.created_at < now - dt.timedelta(days=keep_days)
        )
    )
    old: dict[str, int] = {sha: size for sha, size in rows}
    needed: set[str] = set()
    if old:  # most days: no outbox scan at all
        needed = set(
            await ctx.session.scalars(
                select(func.distinct(_NAMED)).where(
                    _NAMED.in_(list(old)), _needed(links_valid_for, now)
                )
            )
        )
    gone = {sha: size for sha, size in old.items() if sha not in needed}
    return Prunable(gone, len(needed), keep_days, links_valid_for)


async def delete_pruned(ctx: Ctx, found: Prunable) -> list[str]:
    """The writes of the housekeeping, in its claim's transaction: the pictures `prunable`
    found deleted, unless a message queued since names one (the delete checks again), and
    audited with the hashes and bytes freed. Returns the hashes deleted."""
    if not found.old:
        return []
    still_needed = exists().where(
        StoredImage.sha256 == _NAMED, _needed(found.links_valid_for, ctx.clock.now())
    )
    gone = sorted(
        await ctx.session.scalars(
            delete(StoredImage)
            .where(StoredImage.sha256.in_(list(found.old)), ~still_needed)
            .returning(StoredImage.sha256)
        )
    )
    if not gone:
        return []
    freed = sum(found.old[sha] for sha in gone)
    kept = found.kept_in_use + len(found.old) - len(gone)
    await record(
        ctx,
        "images.pruned",
        "stored_image",
        {"sha256": gone, "bytes": freed, "kept_in_use": kept, "keep_days": found.keep_days},
    )
    log.info(
        "pruned %d stored pictures (%d bytes); %d old ones still needed", len(gone), freed, kept
    )
    return gone


async def prune(ctx: Ctx, *, keep_days: int, links_valid_for: dt.timedelta) -> list[str]:
    """Delete the pictures stored more than `keep_days` ago that nothing needs any more
    (`prunable`, then `delete_pruned`, in one transaction); returns the hashes deleted."""
    found = await prunable(ctx, keep_days=keep_days, links_valid_for=links_valid_for)
    return await delete_pruned(ctx, found)
