"""更换 案件号 人员编号 理由, 回避 案件号 理由 (the sender's), 批准 案件号 人员编号 [新人员编号],
不批准 案件号 人员编号 理由: one request, decided by the department leader (000 §八, 001 第十四条,
004 第十三条)."""

from __future__ import annotations

from core import replacements
from handlers.base import Args, HandlerCtx, UsageError


async def ask(ctx: HandlerCtx, args: Args) -> None:
    code, officer, reason = args.code(0), args.code(1), args.rest_after(2)
    if code is None or officer is None or not reason:
        raise UsageError("申请更换须写明案件号、被更换人员编号和理由。")
    req = await replacements.request(ctx.core, code, officer, reason)
    await ctx.say("cmd_replacement_asked.md.j2", code=code, officer=officer, request=req)


async def recuse(ctx: HandlerCtx, args: Args) -> None:
    code, reason = args.code(0), args.rest_after(1)
    if code is None or not reason:
        raise UsageError("回避须写明案件号和理由。")
    officer = ctx.officer.code
    req = await replacements.request(ctx.core, code, officer, reason, kind="recusal")
    await ctx.say("cmd_replacement_asked.md.j2", code=code, officer=officer, request=req)


async def approve(ctx: HandlerCtx, args: Args) -> None:
    """A 更换 names the new inspector; a 回避 takes the next in draw order (none named)."""
    code, officer, new = args.code(0), args.code(1), args.code(2)
    if code is None or officer is None:
        raise UsageError("批准须写明案件号和人员编号（批准更换还须写明新人员编号）。")
    req = await replacements.decide(ctx.core, code, officer, new_officer_code=new or "")
    await ctx.say("cmd_replacement_decided.md.j2", code=code, officer=officer, request=req)


async def refuse(ctx: HandlerCtx, args: Args) -> None:
    code, officer, reason = args.code(0), args.code(1), args.rest_after(2)
    if code is None or officer is None or not reason:
        raise UsageError("不批准须写明案件号、人员编号和理由。")
    req = await replacements.decide(ctx.core, code, officer, refusal=reason)
    await ctx.say("cmd_replacement_decided.md.j2", code=code, officer=officer, request=req)
