"""汇总 — the daily summary on demand: a leader gets their department's, the office admin all."""

from __future__ import annotations

from core import summary
from core.errors import PermissionDenied
from handlers.base import Args, HandlerCtx


async def show(ctx: HandlerCtx, args: Args) -> None:
    officer = ctx.officer
    if not (officer.has_role("leader") or officer.has_role("admin")):
        raise PermissionDenied(
            "汇总仅向分管领导和联席会议办公室提供",
            action="summary.view",
            subject=f"officer:{officer.code}",
        )
    department_id = None if officer.has_role("admin") else officer.department_id
    data = await summary.daily_summary(ctx.core, ctx.clock.today(), department_id)
    await ctx.reply(summary.summary_message(data))
