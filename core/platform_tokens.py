"""Platform access tokens shared by every process on the database (table `platform_token`).

The platforms frequency-block their token endpoints (docs/platforms.md: "do not call gettoken
per request"), so with several `serve` processes one fetches and the others read the row.
Who fetches is decided by a conditional UPDATE, which is atomic on PostgreSQL (a concurrent
update of the row waits for the first to commit, then re-checks its WHERE) and on SQLite (one
writer at a time): the refresh lease is taken only while nobody holds it and the row still
holds the token the caller saw, so a process that read a stale row just before another
finished refreshing does not fetch a second time. Each function leaves the commit to the
caller.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import PlatformToken


@dataclass(frozen=True)
class StoredToken:
    token: str  # "" when none is stored or the platform rejected the last one
    fetched_at: dt.datetime | None
    expires_at: dt.datetime | None
    refreshing_until: dt.datetime | None


async def read(session: AsyncSession, key: str) -> StoredToken | None:
    row = (
        await session.execute(
            select(
                PlatformToken.token,
                PlatformToken.fetched_at,
                PlatformToken.expires_at,
                PlatformToken.refreshing_until,
            ).where(PlatformToken.key == key)
        )
    ).one_or_none()
    return None if row is None else StoredToken(*row)


async def claim_refresh(
    session: AsyncSession, key: str, seen: str, *, now: dt.datetime, lease_until: dt.datetime
) -> bool:
    """Take the refresh lease of `key` if nobody holds it (or theirs ran out) and the stored
    token is still `seen`. True: the caller fetches, then `save`s or `release`s."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = cast(Table, PlatformToken.__table__)
    await session.execute(
        insert(table).values(key=key, token="").on_conflict_do_nothing(index_elements=["key"])
    )
    result = cast(
        CursorResult[tuple[()]],
        await session.execute(
            update(PlatformToken)
            .where(
                PlatformToken.key == key,
                PlatformToken.token == seen,
                or_(
                    PlatformToken.refreshing_until.is_(None),
                    PlatformToken.refreshing_until <= now,
                ),
            )
            .values(refreshing_until=lease_until)
        ),
    )
    return result.rowcount == 1


async def save(
    session: AsyncSession, key: str, token: str, *, fetched_at: dt.datetime, expires_at: dt.datetime
) -> None:
    """Store the token just fetched and give the refresh lease back."""
    await session.execute(
        update(PlatformToken)
        .where(PlatformToken.key == key)
        .values(token=token, fetched_at=fetched_at, expires_at=expires_at, refreshing_until=None)
    )


async def release(session: AsyncSession, key: str) -> None:
    """Give the refresh lease back without a token (the fetch failed)."""
    await session.execute(
        update(PlatformToken).where(PlatformToken.key == key).values(refreshing_until=None)
    )


async def invalidate(session: AsyncSession, key: str, token: str) -> bool:
    """Forget `token` after the platform rejected it (revoked early, expired), unless another
    process already replaced it. True when this call forgot it."""
    result = cast(
        CursorResult[tuple[()]],
        await session.execute(
            update(PlatformToken)
            .where(PlatformToken.key == key, PlatformToken.token == token)
            .values(token="", expires_at=None)
        ),
    )
    return result.rowcount == 1
