"""我的检查 (my cases)."""

from __future__ import annotations

from core import cases, progress
from core.states import CASE, CaseState
from handlers.base import Args, HandlerCtx


async def mine(ctx: HandlerCtx, args: Args) -> None:
    listed = await progress.cases_for_officer(ctx.core, ctx.officer.id)
    today = ctx.clock.today()
    await ctx.say(
        "cmd_my_cases.md.j2",
        cases=listed,
        states=CASE.labels,
        today=today,
        past_window=await progress.awaiting_extension(ctx.core, listed, today),
        open_states=cases.OPEN_FOR_ENTRY,
        owed=await progress.owed_entries(ctx.core, listed, ctx.officer.department_id),
        mine_in=await progress.parts_entered_by(
            ctx.core,
            [c.id for c in listed if c.state == CaseState.PART_ENTERED],
            ctx.officer.department_id,
        ),
    )
