"""绑定 — the office's admin binds a platform account to an officer."""

from __future__ import annotations

from core.officers import bind_account
from handlers.base import Args, HandlerCtx, UsageError


async def bind(ctx: HandlerCtx, args: Args) -> None:
    if len(args.words) != 3:
        raise UsageError()
    code, platform, user_id = args.words
    officer = await bind_account(ctx.core, code, platform, user_id)
    await ctx.say("cmd_bound.md.j2", officer=officer, platform=platform, user_id=user_id)
