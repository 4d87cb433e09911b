"""Conversation steps as the handlers use them (storage in core.conversations)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from core import conversations
from core.models import Conversation
from handlers.base import HandlerCtx

CANCEL_WORDS = ("取消", "cancel", "qx")


async def start(ctx: HandlerCtx, step: str, data: dict[str, Any]) -> None:
    expires = ctx.clock.now() + dt.timedelta(hours=ctx.rules.conversation_hours)
    await conversations.start_step(ctx.core, ctx.officer.id, step, data, expires)


async def pending(ctx: HandlerCtx) -> Conversation | None:
    return await conversations.live_step(ctx.core, ctx.officer.id, ctx.clock.now())


async def clear(ctx: HandlerCtx) -> None:
    await conversations.clear_step(ctx.core, ctx.officer.id)
