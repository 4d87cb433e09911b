"""汇总 — the daily summary on demand: a leader gets their department's, the office admin all,
with the same chart the daily tick sends."""

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
    # the daily tick's text and chart, delivered like it (the sender gives each platform the
    # picture its own way)
    for message in await summary.requested_summary(ctx.core, ctx.clock.today(), department_id):
        await ctx.reply(message)
