"""Durable outgoing messages: enqueued in the caller's transaction, delivered by bot.sender."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.messages import Destination, OutMessage
from core.models import OutboxMessage


async def enqueue(session: AsyncSession, dest: Destination, msg: OutMessage, *, now: dt.datetime,
                  key: str | None = None) -> OutboxMessage | None:
    """Queue a message. With an idempotency `key`, a second enqueue of the same key is a no-op
    (returns None), so ticks and retries never send a nudge twice."""
    if key is not None:
        exists = await session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key))
        if exists is not None:
            return None
    row = OutboxMessage(idempotency_key=key, destination=dest.model_dump(mode="json"),
                        dest_key=dest.key(), message=msg.model_dump(mode="json", exclude_defaults=True),
                        state="pending", attempts=0, next_attempt_at=now, created_at=now)
    session.add(row)
    await session.flush()
    return row
