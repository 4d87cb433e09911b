"""抽取 (freeze), 确认抽取 (beacon → lock → match inspectors), 快抽 and 验证."""

from __future__ import annotations

import datetime as dt
import re

from core.draws import quickdraw, targets, verify
from core.draws.beacon import beacon_ready_at
from core.errors import DomainError
from core.groups import matching
from core.jointtask import LISTED_CASES
from core.workdays import cn_date, cn_datetime
from handlers.base import Args, HandlerCtx, UsageError, normalize

# `快抽 N 名 执法人员 [部门] [标签]` / `快抽 N 户 对象 [行业] [区域]` — units and nouns both say
# which kind; the unit may stick to the number ("3名"), the noun may be left out.
_QUICK = re.compile(
    r"^(?P<n>\d+)\s*(?P<unit>名|人|位|户|家|个)?\s*"
    r"(?P<noun>执法检查人员|执法人员|检查人员|人员|检查对象|对象|企业|主体)?(?:\s+|$)(?P<rest>.*)$"
)
_INSPECTOR_WORDS = {"名", "人", "位", "执法检查人员", "执法人员", "检查人员", "人员"}
_TARGET_WORDS = {"户", "家", "检查对象", "对象", "企业", "主体"}
BEACON_WORD = "信标"


def default_beacon_source(today: dt.date) -> str:
    """The public beacon announced when the lead names none: the next day's 福彩3D draw,
    a number nobody can know when the pool is frozen and anyone can look up afterwards."""
    day = today + dt.timedelta(days=1)
    return f"{cn_date(day)}福彩3D开奖号码"


async def freeze(ctx: HandlerCtx, args: Args) -> None:
    """抽取 编号 [信标来源] — freezes the pool and rule;
    the announcement goes to every department."""
    code = args.code(0)
    if code is None:
        raise UsageError
    source = args.rest_after(1) or default_beacon_source(ctx.clock.today())
    frozen = await targets.freeze_pool(ctx.core, code, source)
    ready = beacon_ready_at(dt.date.fromisoformat(frozen.parameters["beacon_date"]), ctx.rules)
    await ctx.say("cmd_frozen.md.j2", d=frozen, code=code, beacon_ready=cn_datetime(ready))


async def confirm(ctx: HandlerCtx, args: Args) -> None:
    """确认抽取 编号 信标值 — task draws lock and match inspectors; KC- codes are quick draws."""
    code, beacon = args.code(0), args.rest_after(1)
    if code is None or not beacon:
        raise UsageError("请写明抽取编号和公布的信标值。")
    if code.startswith(quickdraw.CODE_PREFIX + "-"):
        await _confirm_quick(ctx, code, beacon)
        return
    locked = await targets.confirm_draw(ctx.core, code, beacon)
    taken = await targets.inspected_since_freeze(ctx.core, locked)
    gone = await targets.gone_since_freeze(ctx.core, locked)
    reply = {"d": locked, "taken": taken, "gone": gone, "listed": LISTED_CASES}
    # The lock stands even if matching fails (no re-roll, docs/architecture.md §3): matching
    # runs in its own savepoint and can be retried with 匹配 once the department has inspectors.
    try:
        async with ctx.session.begin_nested():
            cases = await matching.match_inspectors(ctx.core, code)
    except DomainError as err:
        await ctx.say("cmd_draw_locked.md.j2", **reply, cases=0, match_error=err.message)
        return
    await ctx.say("cmd_draw_locked.md.j2", **reply, cases=len(cases), match_error="")


async def match(ctx: HandlerCtx, args: Args) -> None:
    """匹配 编号 — (re)match inspectors for a locked draw, e.g. after a department added staff."""
    code = args.code(0)
    if code is None:
        raise UsageError
    cases = await matching.match_inspectors(ctx.core, code)
    await ctx.say("cmd_matched.md.j2", code=code, cases=len(cases))


async def quick(ctx: HandlerCtx, args: Args) -> None:
    """快抽 N 名 执法人员 [部门] [标签] / 快抽 N 户 对象 [行业] [区域] [信标 来源] — frozen and
    committed; a second officer's number (确认快抽) or the named public beacon fixes it."""
    words = normalize(args.raw)
    source = ""
    if f" {BEACON_WORD} " in f" {words} ":
        words, source = (part.strip() for part in f" {words} ".split(f" {BEACON_WORD} ", 1))
    m = _QUICK.match(words)
    kind_words = {m.group("unit"), m.group("noun")} - {None} if m else set()
    inspectors, targets = bool(kind_words & _INSPECTOR_WORDS), bool(kind_words & _TARGET_WORDS)
    filters = m.group("rest").split() if m else []
    if m is None or inspectors == targets or len(filters) > 2:
        raise UsageError
    if ctx.rules.quick_draw_requires_beacon and not source:
        source = default_beacon_source(ctx.clock.today())
    count = int(m.group("n"))
    first, second = [*filters, "", ""][:2]
    if inspectors:
        row = await quickdraw.draw_inspectors(ctx.core, count, first, second, beacon_source=source)
    else:
        row = await quickdraw.draw_targets(ctx.core, count, first, second, beacon_source=source)
    await ctx.reply(await quickdraw.receipt(ctx.core, row))


async def confirm_quick(ctx: HandlerCtx, args: Args) -> None:
    """确认快抽 编号 数字 — the second party's number (or a named public beacon's value)."""
    code, value = args.code(0), args.rest_after(1)
    if code is None or not value or not code.startswith(quickdraw.CODE_PREFIX + "-"):
        raise UsageError("请写明快抽编号（KC-…）和一个数字。")
    await _confirm_quick(ctx, code, value)


async def _confirm_quick(ctx: HandlerCtx, code: str, value: str) -> None:
    row = await quickdraw.confirm_quick_draw(ctx.core, code, value)
    await ctx.reply(await quickdraw.receipt(ctx.core, row))


async def check(ctx: HandlerCtx, args: Args) -> None:
    """验证 抽取号 — recompute a draw; a task code verifies all of that task's current draws."""
    code = args.code(0)
    if code is None:
        raise UsageError
    draws = await verify.draws_for(ctx.core, code)
    if not draws:
        raise verify.no_draw(code)
    reports = [await verify.verify_draw(ctx.core, d.id) for d in draws]
    await ctx.say("cmd_verify.md.j2", reports=reports)
