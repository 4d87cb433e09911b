"""Durable memory of used callback signatures (DingTalk's header pair signs no body).

The first body seen with a signature owns it: the same body again is the platform re-sending
(the inbox de-duplicates it by message id), another body is a replay and is refused. Rows are
kept until the signature's timestamp leaves the window the adapter accepts, then pruned.
"""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import UsedSignature


async def claim(
    session: AsyncSession, key: str, body_sha256: str, *, keep_until: dt.datetime
) -> bool:
    """Record `key` as used by this body; False when it was already used by another body.
    The caller commits (a concurrent claim of the same key waits for it on PostgreSQL)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = cast(Table, UsedSignature.__table__)
    inserted = await session.scalar(
        insert(table)
        .values(key=key, body_sha256=body_sha256, keep_until=keep_until)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(table.c.key)
    )
    if inserted is not None:
        return True
    owner = await session.scalar(select(UsedSignature.body_sha256).where(UsedSignature.key == key))
    return owner == body_sha256


async def prune(session: AsyncSession, now: dt.datetime) -> int:
    """Forget signatures whose timestamps the window no longer accepts; how many."""
    result = await session.execute(
        delete(UsedSignature).where(UsedSignature.keep_until < now).returning(UsedSignature.key)
    )
    return len(result.all())
