"""Pending conversation steps, kept in the database with a business-length expiry.

One row per officer (a new step replaces the old one). A restart loses nothing; an expired step
is dropped and the message that found it is handled as an ordinary command.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select

from core.models import Conversation
from handlers.base import HandlerCtx

CANCEL_WORDS = ("取消", "cancel", "qx")


async def start(ctx: HandlerCtx, step: str, data: dict[str, Any]) -> None:
    expires = ctx.clock.now() + dt.timedelta(hours=ctx.rules.conversation_hours)
    row = await ctx.session.scalar(
        select(Conversation).where(Conversation.officer_id == ctx.officer.id))
    if row is None:
        ctx.session.add(Conversation(officer_id=ctx.officer.id, step=step, data=data,
                                     expires_at=expires))
    else:
        row.step, row.data, row.expires_at = step, data, expires
    await ctx.session.flush()


async def pending(ctx: HandlerCtx) -> Conversation | None:
    """The officer's live step; an expired one is deleted and ignored."""
    row = await ctx.session.scalar(
        select(Conversation).where(Conversation.officer_id == ctx.officer.id))
    if row is not None and row.expires_at <= ctx.clock.now():
        await clear(ctx)
        return None
    return row


async def clear(ctx: HandlerCtx) -> None:
    await ctx.session.execute(delete(Conversation).where(Conversation.officer_id == ctx.officer.id))
