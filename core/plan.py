"""Planning (before any task): the annual plan (年度抽查计划) at work — a planned task started from
chat, the written reason a task outside the plan needs, the plan and item lists the public side
shows, and the reminders. The plan itself is imported by core.imports.annual_plan.

003 三(七) and 004 第七条: the joint plan is made and published by the end of March; tasks follow
the plan and are not added at will (003: 不得随意增加), so a task outside an adopted plan needs a
written reason.

A plan row starts a task with `start_planned` (chat: 发起 计划编号): the task gets the row's
items, scope and one stratum with the row's ratio or count, an inspection window from the
start of the planned month (or today, when later) to the end of the following month, and the
invitations go out at once, as `lianjian task create` does.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import changes
from core.access import may_act_for, require
from core.consultation import creation, opening
from core.department_names import county_departments
from core.errors import NotFound, ValidationFailed
from core.messages import Destination, OutMessage
from core.models import Department, Item, JointTask, OutboxMessage, PlanEntry
from core.rules import written_reason

PLAN_DEADLINE = (3, 31)  # 003 三(七)2, 004 第七条: the joint plan by the end of March
REMIND_DAYS_BEFORE = 10  # the lead hears about a planned task this many days before its month


# ---------------------------------------------------------------- starting a planned task


def planned_window(year: int, month: int, today: dt.date) -> tuple[dt.date, dt.date]:
    """From the planned month's first day (or today, when later) to the end of the next month."""
    end_year, end_month = (year, month + 1) if month < 12 else (year + 1, 1)
    end = dt.date(end_year, end_month, calendar.monthrange(end_year, end_month)[1])
    return max(dt.date(year, month, 1), today), end


def plan_rule(entry: PlanEntry) -> dict[str, Any]:
    amount: dict[str, Any] = {"count": entry.count} if entry.count else {"ratio": entry.ratio}
    return {"strata": [{"name": "全部", **amount}]}


async def plan_entry(ctx: changes.Ctx, code: str, year: int, *, named: bool = True) -> PlanEntry:
    """The row `code` of the `year`'s plan; `named`: the officer wrote the year, rather than
    it being this year's (a refusal then says so, and how to name another)."""
    entry = await ctx.session.scalar(
        select(PlanEntry).where(PlanEntry.year == year, PlanEntry.code == code.strip().upper())
    )
    if entry is None:
        which = "" if named else _year_taken_from_today(code, year)
        raise NotFound(
            f"{year} 年度抽查计划中没有计划编号 {code}{which}；{await _startable(ctx, year)}"
        )
    return entry


async def _startable(ctx: changes.Ctx, year: int) -> str:
    """What to write instead of a code that names no plan row: the year's codes not yet
    started, or that the year's plan is still to be imported."""
    codes = list(
        await ctx.session.scalars(
            select(PlanEntry.code)
            .where(PlanEntry.year == year, PlanEntry.task_id.is_(None))
            .order_by(PlanEntry.month, PlanEntry.code)
        )
    )
    if codes:
        shown = "、".join(codes[:_SHOWN_CODES]) + ("等" if len(codes) > _SHOWN_CODES else "")
        return f"尚未发起的计划编号：{shown}"
    if await ctx.session.scalar(select(PlanEntry.id).where(PlanEntry.year == year).limit(1)):
        return "本年度计划已全部发起"
    return f"{year} 年度抽查计划尚未导入，请联系联席会议办公室管理员导入"


def _year_taken_from_today(code: str, year: int) -> str:
    """Says the plan looked in was today's year's, and how to name another: the year the code
    seems to carry (JH-2026-01), else last year's."""
    seen = [int(y) for y in re.findall(r"(?<![0-9])(20[0-9]{2})(?![0-9])", code)]
    other = next((y for y in seen if y != year), year - 1)
    return (
        f"（未写年度，按今天所在的 {year} 年查找；其他年度请在编号后写明，如“发起 {code} {other}”）"
    )


_SHOWN_CODES = 8  # a chat line, not the plan: the office's file has the rest


async def start_planned(ctx: changes.Ctx, code: str, year: int | None = None) -> JointTask:
    """The lead department starts a planned task of `year`'s plan (unnamed: this year's) and
    the invitations go out. Who may start any task is asked first: an inspector's typo got the
    list of codes to start instead."""
    today = ctx.clock.today()
    plan_year = today.year if year is None else year
    require(
        ctx.actor is None or may_act_for(ctx, ctx.actor.department_id),
        "plan.start",
        f"plan:{plan_year}:{code.strip().upper()}",
        creation.STARTERS_ONLY,
    )
    entry = await plan_entry(ctx, code, plan_year, named=year is not None)
    if entry.task_id is not None:
        task = await ctx.session.get(JointTask, entry.task_id)
        raise ValidationFailed(
            f"计划 {entry.code} 已发起任务 {task.code if task else ''}，不能重复发起"
        )
    start, end = planned_window(entry.year, entry.month, today)
    if start > end:
        raise ValidationFailed(
            f"计划 {entry.code} 的实施时间（{entry.month} 月）已过，"
            "请联系联席会议办公室调整年度计划"
        )
    lead_items = await creation.plan_items(ctx.session, entry.item_ids, entry.lead_department_id)
    if not lead_items:
        raise ValidationFailed(await _retired_lead_items(ctx, entry))
    task = await creation.create_task(
        ctx,
        title=entry.title,
        lead_department_id=entry.lead_department_id,
        window_start=start,
        window_end=end,
        item_ids=[i.id for i in lead_items],
        scope=entry.scope,
        rule=plan_rule(entry),
        year=entry.year,
        again=True,  # each plan row starts once (entry.task_id); two rows are two tasks
    )
    entry.task_id = task.id
    await changes.record(
        ctx, "plan.started", f"plan:{entry.year}:{entry.code}", {"task": task.code}
    )
    await opening.open_consultation(ctx, task, entry.participant_ids)
    return task


async def _retired_lead_items(ctx: changes.Ctx, entry: PlanEntry) -> str:
    """Why a plan row has no item of its lead department to start with: an item list imported
    after the plan left them out (core.imports.items says so too)."""
    lead = await ctx.session.get(Department, entry.lead_department_id)
    codes = await ctx.session.scalars(
        select(Item.code)
        .where(Item.id.in_(entry.item_ids), Item.department_id == entry.lead_department_id)
        .order_by(Item.code)
    )
    return (
        f"计划 {entry.code} 的牵头部门事项 {'、'.join(codes)} 已不在"
        f"{lead.name if lead else '牵头部门'}的现行抽查事项清单中（导入清单时已移除）："
        "请重新导入含该事项的清单，或请联席会议办公室调整年度计划"
    )


async def require_plan_or_reason(ctx: changes.Ctx, year: int, reason: str) -> str:
    """003 三(七)1 (不得随意增加): once the year's plan is adopted, a task outside it needs a
    written reason of at least Rules.decline_reason_min_chars characters; before, a reason is
    not needed, and one given is kept as written (at most REASON_MAX_CHARS characters)."""
    has_plan = await ctx.session.scalar(select(PlanEntry.id).where(PlanEntry.year == year).limit(1))
    if has_plan is None and not reason.strip():
        return ""
    needed = ctx.rules.decline_reason_min_chars if has_plan is not None else 0
    why = f"{year} 年度抽查计划已制定，计划外的任务须书面说明理由"
    planned = '计划内任务请写 plan = "计划编号"'
    return written_reason(
        reason,
        "计划外任务的理由（unplanned_reason）",
        f"{why}；{planned}",
        min_chars=needed,
        missing=f"{why}（unplanned_reason，至少 {needed} 个字，标点、空格不计）；{planned}",
    )


# ---------------------------------------------------------------- queries for the public side


async def plan_entries(
    ctx: changes.Ctx, year: int
) -> list[tuple[PlanEntry, Department, list[str]]]:
    """The year's plan, month by month: each row, its lead, its participants' names."""
    session = ctx.session
    names = dict((await session.execute(select(Department.id, Department.name))).all())
    entries = await session.scalars(
        select(PlanEntry).where(PlanEntry.year == year).order_by(PlanEntry.month, PlanEntry.code)
    )
    leads = {d.id: d for d in await session.scalars(select(Department))}
    return [
        (e, leads[e.lead_department_id], [names[d] for d in e.participant_ids]) for e in entries
    ]


async def current_item_list(ctx: changes.Ctx) -> list[tuple[Department, list[Item]]]:
    """The published item lists (001 第九条): every department's current items."""
    session = ctx.session
    deps = await county_departments(session)
    items = await session.scalars(select(Item).where(Item.current.is_(True)).order_by(Item.code))
    by_dept: dict[int, list[Item]] = {}
    for item in items:
        by_dept.setdefault(item.department_id, []).append(item)
    return [(d, by_dept.get(d.id, [])) for d in deps]


# ---------------------------------------------------------------- reminders


async def _sent(session: AsyncSession, key: str) -> bool:
    return (
        await session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key))
        is not None
    )


@dataclass(frozen=True)
class Reminder:
    """One plan notice found due, ready to record: its audit action and subject, its message."""

    action: str
    subject: str
    notice: changes.Notice


async def due_plan_reminders(ctx: changes.Ctx) -> list[Reminder]:
    """The reads of the daily plan tick, and no write (the scheduler runs them before its
    claim opens the write transaction): each lead REMIND_DAYS_BEFORE days ahead of a planned
    month; the office when no plan exists for the year after 31 March. A notice already
    queued (by its outbox key) is not due again."""
    today = ctx.clock.today()
    soon = today + dt.timedelta(days=REMIND_DAYS_BEFORE)
    due = []
    for entry in await ctx.session.scalars(
        select(PlanEntry).where(
            PlanEntry.year == soon.year, PlanEntry.month <= soon.month, PlanEntry.task_id.is_(None)
        )
    ):
        key = f"plan-reminder:{entry.year}:{entry.code}"
        if not await _sent(ctx.session, key):
            due.append(_planned_month(entry, key))
    missing_key = f"plan-missing:{today.year}"
    if today >= dt.date(today.year, *PLAN_DEADLINE) and not await _sent(ctx.session, missing_key):
        has_plan = await ctx.session.scalar(
            select(PlanEntry.id).where(PlanEntry.year == today.year).limit(1)
        )
        if has_plan is None:
            due.append(_plan_missing(today.year, missing_key))
    return due


def _planned_month(entry: PlanEntry, key: str) -> Reminder:
    text = (
        f"年度抽查计划 {entry.code}“{entry.title}”计划于 {entry.month} 月实施，"
        f"请牵头部门做好准备，发送“发起 {entry.code}”即可创建任务并邀请参与部门。"
    )
    return Reminder(
        "plan.reminded",
        f"plan:{entry.year}:{entry.code}",
        changes.Notice(
            Destination.department(entry.lead_department_id),
            OutMessage.md("年度抽查计划提醒", text),
            key=key,
        ),
    )


def _plan_missing(year: int, key: str) -> Reminder:
    text = (
        f"{year} 年度部门联合抽查计划应于 3 月底前制定并公示，系统中尚未导入。"
        "请用 lianjian import plan 导入（模板：lianjian template plan）。"
    )
    return Reminder(
        "plan.missing",
        f"plan:{year}",
        changes.Notice(Destination.office(), OutMessage.md("年度抽查计划未导入", text), key=key),
    )


async def queue_plan_reminders(ctx: changes.Ctx, due: list[Reminder]) -> int:
    """The writes of the daily plan tick, in the claim's transaction: each notice's audit event
    and message. Returns how many were queued."""
    for reminder in due:
        await changes.record(ctx, reminder.action, reminder.subject, {}, [reminder.notice])
    return len(due)


async def plan_reminders(ctx: changes.Ctx) -> int:
    """Daily: the plan notices due, queued once each (reads and writes in one transaction)."""
    return await queue_plan_reminders(ctx, await due_plan_reminders(ctx))


async def overdue_entries(ctx: changes.Ctx, today: dt.date) -> list[PlanEntry]:
    """Plan rows whose month has passed without a task (for the leaders' summary). A December
    row's month passes only when the year turns, so throughout January the previous year's
    rows not started still show; from February that plan year counts as closed."""
    passed: ColumnElement[bool] = (PlanEntry.year == today.year) & (PlanEntry.month < today.month)
    if today.month == 1:
        passed = PlanEntry.year == today.year - 1
    return list(
        await ctx.session.scalars(
            select(PlanEntry)
            .where(passed, PlanEntry.task_id.is_(None))
            .order_by(PlanEntry.year, PlanEntry.month, PlanEntry.code)
        )
    )
