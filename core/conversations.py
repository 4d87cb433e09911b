"""Pending conversation steps, kept in the database with a business-length expiry.

One row per officer (a new step replaces the old one). A restart loses nothing; an expired step
is dropped and the message that found it is handled as an ordinary command.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select

from core.changes import Ctx
from core.models import Conversation


async def start_step(
    ctx: Ctx, officer_id: int, step: str, data: dict[str, Any], expires_at: dt.datetime
) -> None:
    row = await ctx.session.scalar(
        select(Conversation).where(Conversation.officer_id == officer_id)
    )
    if row is None:
        ctx.session.add(
            Conversation(officer_id=officer_id, step=step, data=data, expires_at=expires_at)
        )
    else:
        row.step, row.data, row.expires_at = step, data, expires_at
    await ctx.session.flush()


async def live_step(ctx: Ctx, officer_id: int, now: dt.datetime) -> Conversation | None:
    """The officer's live step; an expired one is deleted and ignored."""
    row = await ctx.session.scalar(
        select(Conversation).where(Conversation.officer_id == officer_id)
    )
    if row is not None and row.expires_at <= now:
        await clear_step(ctx, officer_id)
        return None
    return row


async def clear_step(ctx: Ctx, officer_id: int) -> None:
    await ctx.session.execute(delete(Conversation).where(Conversation.officer_id == officer_id))
