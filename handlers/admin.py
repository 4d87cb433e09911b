"""Officer administration from chat: 绑定, 解绑 and 离岗 (the office's admin), 利害关系 (anyone)."""

from __future__ import annotations

from core.jointtask import unanswered_note
from core.officers import bind_account, deactivate, declare_conflict, unbind_account
from handlers.base import Args, HandlerCtx, UsageError


async def bind(ctx: HandlerCtx, args: Args) -> None:
    if len(args.words) != 3:
        raise UsageError()
    code, platform, user_id = args.words
    officer = await bind_account(ctx.core, code, platform, user_id)
    await ctx.say("cmd_bound.md.j2", officer=officer, platform=platform, user_id=user_id)


async def unbind(ctx: HandlerCtx, args: Args) -> None:
    if len(args.words) != 2:
        raise UsageError()
    code, platform = args.words
    officer, account = await unbind_account(ctx.core, code, platform)
    await ctx.say("cmd_unbound.md.j2", officer=officer, platform=platform, account=account)


async def leave(ctx: HandlerCtx, args: Args) -> None:
    code = args.code(0)
    if code is None:
        raise UsageError("请写明人员编号。")
    officer, cases = await deactivate(ctx.core, code, args.rest_after(1))
    answered = officer.has_role("liaison") or officer.has_role("leader")
    unanswered = await unanswered_note(ctx.core, officer.department) if answered else ""
    await ctx.say("cmd_officer_left.md.j2", officer=officer, cases=cases, unanswered=unanswered)


async def conflict(ctx: HandlerCtx, args: Args) -> None:
    code, reason = args.code(0), args.rest_after(1)
    if code is None or not reason:
        raise UsageError("请写明检查对象的统一社会信用代码和利害关系。")
    target = await declare_conflict(ctx.core, ctx.officer, code, reason)
    await ctx.say("cmd_conflict_declared.md.j2", target=target)
