"""检查配置 (readiness), 发起 计划编号 [年度] (start a planned task), 年度考核 (evaluation)."""

from __future__ import annotations

from core.clock import parse_year
from core.errors import PermissionDenied
from core.evaluation import year_report
from core.plan import start_planned
from core.readiness import check_setup
from handlers.base import Args, HandlerCtx, UsageError


def _admin_or_leader(ctx: HandlerCtx, what: str) -> None:
    if not (ctx.officer.has_role("admin") or ctx.officer.has_role("leader")):
        raise PermissionDenied(
            f"只有联席会议办公室管理员或分管领导可以查看{what}",
            action=f"{what}.denied",
            subject=f"officer:{ctx.officer.code}",
        )


async def setup_check(ctx: HandlerCtx, args: Args) -> None:
    _admin_or_leader(ctx, "配置检查")
    readiness = await check_setup(ctx.core)
    await ctx.say("cmd_setup_check.md.j2", text=readiness.text_zh())


async def start(ctx: HandlerCtx, args: Args) -> None:
    code = args.code(0)
    if code is None:
        raise UsageError("请写明年度抽查计划中的计划编号。")
    words = args.words
    year = parse_year(words[1], ctx.clock.today()) if len(words) > 1 else None
    task = await start_planned(ctx.core, code, year)
    await ctx.say("cmd_plan_started.md.j2", task=task, plan_code=code)


async def evaluation(ctx: HandlerCtx, args: Args) -> None:
    _admin_or_leader(ctx, "年度考核")
    words, today = args.words, ctx.clock.today()
    year = parse_year(words[0], today) if words else today.year
    report = await year_report(ctx.core, year)
    await ctx.say("cmd_year_report.md.j2", r=report)
