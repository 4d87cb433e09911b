"""移送 案件号 部门 线索 and 签收 案件号 (001 第十七条, 004 第二十一条)."""

from __future__ import annotations

from core import referrals
from handlers.base import Args, HandlerCtx, UsageError


async def refer(ctx: HandlerCtx, args: Args) -> None:
    code, clue = args.code(0), args.rest_after(2)
    if code is None or not clue:
        raise UsageError("移送须写明案件号、接收部门和线索。")
    kind = await referrals.chat_kind(ctx.core, args.words[1])
    referral = await referrals.refer(ctx.core, code, args.words[1], clue, kind)
    stale = await referrals.stale_followup(ctx.core, referral)
    await ctx.say("cmd_referred.md.j2", code=code, referral=referral, stale=stale)


async def acknowledge(ctx: HandlerCtx, args: Args) -> None:
    code = args.code(0)
    if code is None:
        raise UsageError
    signed = await referrals.acknowledge(ctx.core, code)
    await ctx.say("cmd_referral_acknowledged.md.j2", code=code, referrals=signed)
