"""我的检查 (my cases) and 回避 案件号 理由 (recusal of the sender)."""

from __future__ import annotations

from core import cases, progress
from core.groups import member_changes
from core.models import Officer
from core.states import CASE, CaseState
from handlers.base import Args, HandlerCtx, UsageError


async def mine(ctx: HandlerCtx, args: Args) -> None:
    listed = await progress.cases_for_officer(ctx.core, ctx.officer.id)
    await ctx.say(
        "cmd_my_cases.md.j2",
        cases=listed,
        states=CASE.labels,
        today=ctx.clock.today(),
        open_states=cases.OPEN_FOR_ENTRY,
        mine_in=await progress.parts_entered_by(
            ctx.core,
            [c.id for c in listed if c.state == CaseState.PART_ENTERED],
            ctx.officer.department_id,
        ),
    )


async def recuse(ctx: HandlerCtx, args: Args) -> None:
    code, reason = args.code(0), args.rest_after(1)
    if code is None or not reason:
        raise UsageError("回避须写明案件号和理由。")
    member = await member_changes.recuse(ctx.core, code, ctx.officer.id, reason)
    replacement = await ctx.session.get(Officer, member.officer_id)
    await ctx.say("cmd_recused.md.j2", code=code, replacement=replacement)
