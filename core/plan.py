"""The annual plan (年度抽查计划): imported from the office's spreadsheet, started from chat.

003 三(七) and 004 第七条: the joint plan is made and published by the end of March and names,
per task, the lead and participating departments, the items, the target range, the ratio or
count and when it is carried out; tasks follow the plan and are not added at will (003:
不得随意增加), so a task outside an adopted plan needs a written reason.

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
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import changes
from core.consultation import creation, opening
from core.county import parse_ratio, percent
from core.errors import NotFound, ValidationFailed
from core.imports.flow import (
    Checked,
    Departments,
    ImportReport,
    Progress,
    check_file,
    load_departments,
    run_import,
)
from core.imports.reading import (
    Column,
    Layout,
    Row,
    Sheet,
    column_lengths,
    nfkc,
    split_multi,
)
from core.messages import Destination, OutMessage
from core.models import (
    TARGET_KINDS,
    Department,
    Item,
    JointTask,
    OutboxMessage,
    PlanEntry,
    Target,
)

_PLAN_LEN = column_lengths(cast(Table, PlanEntry.__table__))
_COUNT = re.compile(r"(\d+)\s*(户|家|个)?")
_MONTH = re.compile(r"(?:(\d{4})\s*[-年/.]\s*)?(\d{1,2})\s*月?")
PLAN_DEADLINE = (3, 31)  # 003 三(七)2, 004 第七条: the joint plan by the end of March
REMIND_DAYS_BEFORE = 10  # the lead hears about a planned task this many days before its month

PLAN_COLUMNS = (
    Column("code", ("计划编号", "code"), required=True),
    Column("title", ("任务名称", "title"), required=True),
    Column("lead", ("牵头部门", "发起部门", "lead"), required=True),
    Column("participants", ("参与部门", "配合部门", "participants")),
    Column("items", ("事项", "抽查事项", "事项编码", "items"), required=True),
    Column("scope", ("检查对象范围", "检查对象", "scope")),
    Column("ratio", ("抽查比例或数量", "抽查比例", "抽查数量", "ratio"), required=True),
    Column("month", ("计划月份", "实施月份", "月份", "month"), required=True),
)


# ---------------------------------------------------------------- checking rows


@dataclass
class _Lookups:
    departments: Departments
    items: dict[tuple[int, str], Item]  # (department id, upper code) → current item
    regions: set[str]
    cap: Decimal  # the county's cap for general items without their own


def _parse_month(row: Row, year: int) -> int:
    text = nfkc(row.get("month"))
    found = _MONTH.fullmatch(text)
    if not found or not 1 <= int(found[2]) <= 12 or (found[1] and int(found[1]) != year):
        row.error("month", f"计划月份“{row.get('month')}”应为 {year} 年的 1–12 月，例如 6 或 6月")
        return 0
    return int(found[2])


def _parse_amount(row: Row) -> tuple[str, int | None]:
    """(ratio as decimal text, None) or ("", count)."""
    text = nfkc(row.get("ratio"))
    counted = _COUNT.fullmatch(text)
    if counted and (counted[2] or "." not in text) and int(counted[1]) > 1:
        return "", int(counted[1])
    ratio = parse_ratio(text)
    if ratio is None:
        row.error(
            "ratio",
            f"抽查比例或数量“{row.get('ratio')}”无法识别，请写比例（如 5%）或户数（如 30户）",
        )
        return "", None
    return str(ratio), None


def _scope(values: list[str], regions: set[str]) -> dict[str, list[str]]:
    """Kinds by their names, regions known from the target library, anything else an industry."""
    scope: dict[str, list[str]] = {}
    for value in values:
        key = "kinds" if value in TARGET_KINDS else "regions" if value in regions else "industries"
        scope.setdefault(key, []).append(value)
    return scope


def _row_items(row: Row, look: _Lookups, lead: int | None, participants: list[int]) -> list[Item]:
    found: list[Item] = []
    for code in split_multi(row.get("items")):
        item = next(
            (
                look.items[(d, nfkc(code).upper())]
                for d in (lead, *participants)
                if d is not None and (d, nfkc(code).upper()) in look.items
            ),
            None,
        )
        if item is None:
            row.error("items", f"牵头部门和参与部门的现行事项清单中没有事项“{code}”")
        else:
            found.append(item)
    if lead is not None and found and not any(i.department_id == lead for i in found):
        row.error("items", "至少要有一项牵头部门的事项")
    return found


def _check_cap(row: Row, ratio: str, items: list[Item], cap: Decimal) -> None:
    """002 二(二): a general item's ratio has a cap; key items have none."""
    if not ratio:
        return
    for item in items:
        limit = Decimal(item.ratio_cap) if item.ratio_cap else cap
        if item.category == "general" and Decimal(ratio) > limit:
            row.error(
                "ratio",
                f"抽查比例 {percent(ratio)} 超过一般事项 {item.code} 的抽查比例上限 "
                f"{percent(limit)}",
            )


def _check_plan_row(row: Row, look: _Lookups, year: int) -> dict[str, Any]:
    code = nfkc(row.get("code")).upper()
    if not code or len(code) > _PLAN_LEN["code"]:
        row.error(
            "code", "计划编号为空" if not code else f"计划编号过长：最多 {_PLAN_LEN['code']} 个字符"
        )
    title = row.text("title", _PLAN_LEN["title"])
    if not title:
        row.error("title", "任务名称为空")
    lead = look.departments.find(row, "lead", required=True)
    participants: list[int] = []
    for name in split_multi(row.get("participants")):
        dept = look.departments.lookup(row, "participants", name)
        if dept is not None and dept == lead:
            row.error("participants", "参与部门不能是牵头部门")
        elif dept is not None and dept not in participants:
            participants.append(dept)
    if not participants and not row.errors:
        row.error("participants", "联合抽查至少要有一个参与部门")
    items = _row_items(row, look, lead, participants)
    ratio, count = _parse_amount(row)
    _check_cap(row, ratio, items, look.cap)
    return {
        "year": year,
        "code": code,
        "title": title,
        "lead_department_id": lead,
        "participant_ids": participants,
        "item_ids": [i.id for i in items],
        "scope": _scope(split_multi(row.get("scope")), look.regions),
        "ratio": ratio,
        "count": count,
        "month": _parse_month(row, year),
    }


# ---------------------------------------------------------------- import


_PLAN_FIELDS = (
    "title",
    "lead_department_id",
    "participant_ids",
    "item_ids",
    "scope",
    "ratio",
    "count",
    "month",
)


async def import_plan(
    ctx: changes.Ctx,
    path: Path,
    *,
    year: int | None = None,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the year's joint plan; same 计划编号 = update. A row whose task was started is
    kept as it is; a row left out of a re-import is dropped unless its task was started."""
    year = year or ctx.clock.today().year
    report = ImportReport(kind="plan", file_name=Path(path).name, skip_invalid=skip_invalid)
    state: dict[str, Any] = {}

    async def prepare(_sheet: Sheet) -> None:
        items = await ctx.session.scalars(select(Item).where(Item.current.is_(True)))
        regions = await ctx.session.scalars(select(Target.region).distinct())
        state["look"] = _Lookups(
            await load_departments(ctx.session),
            {(i.department_id, i.code.upper()): i for i in items},
            {r for r in regions if r},
            Decimal(ctx.rules.general_item_ratio_cap),
        )

    def check(sheet: Sheet, layout: Layout) -> Checked:
        return check_file(
            sheet,
            layout,
            lambda row: _check_plan_row(row, state["look"], year),
            lambda r: (r["code"],),
            "code",
            "计划编号",
        )

    async def write(checked: Checked, progress: Progress | None) -> tuple[int, int]:
        existing = {
            e.code: e
            for e in await ctx.session.scalars(select(PlanEntry).where(PlanEntry.year == year))
        }
        inserted = updated = 0
        started = []
        for rec in checked.good():
            entry = existing.pop(rec["code"], None)
            if entry is None:
                ctx.session.add(PlanEntry(**rec))
                inserted += 1
            elif entry.task_id is not None:
                started.append(entry.code)
            else:
                for f in _PLAN_FIELDS:
                    setattr(entry, f, rec[f])
                updated += 1
        if started:
            report.notes.append(f"以下计划已发起任务，未按本次文件修改：{'、'.join(started)}")
        await _drop_left_out(ctx, list(existing.values()), report)
        await ctx.session.flush()
        return inserted, updated

    return await run_import(
        ctx,
        "plan",
        path,
        PLAN_COLUMNS,
        check=check,
        prepare=prepare,
        write=write,
        report=report,
        skip_invalid=skip_invalid,
        rejects_path=rejects_path,
        progress=progress,
    )


async def _drop_left_out(ctx: changes.Ctx, left_out: list[PlanEntry], report: ImportReport) -> None:
    dropped = [e for e in left_out if e.task_id is None]
    for entry in dropped:
        await ctx.session.delete(entry)
    if dropped:
        report.notes.append(
            f"以下计划不在本次文件中，已从计划中删除：{'、'.join(e.code for e in dropped)}"
        )
    if kept := [e.code for e in left_out if e.task_id is not None]:
        report.notes.append(f"以下计划不在本次文件中，但已发起任务，予以保留：{'、'.join(kept)}")


# ---------------------------------------------------------------- starting a planned task


def planned_window(year: int, month: int, today: dt.date) -> tuple[dt.date, dt.date]:
    """From the planned month's first day (or today, when later) to the end of the next month."""
    end_year, end_month = (year, month + 1) if month < 12 else (year + 1, 1)
    end = dt.date(end_year, end_month, calendar.monthrange(end_year, end_month)[1])
    return max(dt.date(year, month, 1), today), end


def plan_rule(entry: PlanEntry) -> dict[str, Any]:
    amount: dict[str, Any] = {"count": entry.count} if entry.count else {"ratio": entry.ratio}
    return {"strata": [{"name": "全部", **amount}]}


async def plan_entry(ctx: changes.Ctx, code: str, year: int) -> PlanEntry:
    entry = await ctx.session.scalar(
        select(PlanEntry).where(PlanEntry.year == year, PlanEntry.code == code.strip().upper())
    )
    if entry is None:
        raise NotFound(f"{year} 年度抽查计划中没有计划编号 {code}")
    return entry


async def start_planned(ctx: changes.Ctx, code: str) -> JointTask:
    """The lead department starts a planned task and the invitations go out."""
    today = ctx.clock.today()
    entry = await plan_entry(ctx, code, today.year)
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
    lead_items = list(
        await ctx.session.scalars(
            select(Item.id).where(
                Item.id.in_(entry.item_ids), Item.department_id == entry.lead_department_id
            )
        )
    )
    task = await creation.create_task(
        ctx,
        title=entry.title,
        lead_department_id=entry.lead_department_id,
        window_start=start,
        window_end=end,
        item_ids=lead_items,
        scope=entry.scope,
        rule=plan_rule(entry),
        year=entry.year,
    )
    entry.task_id = task.id
    await changes.record(
        ctx, "plan.started", f"plan:{entry.year}:{entry.code}", {"task": task.code}
    )
    await opening.open_consultation(ctx, task, entry.participant_ids)
    return task


async def require_plan_or_reason(ctx: changes.Ctx, year: int, reason: str) -> str:
    """003 三(七)1 (不得随意增加): once the year's plan is adopted, a task outside it needs a
    written reason of at least Rules.decline_reason_min_chars characters."""
    has_plan = await ctx.session.scalar(select(PlanEntry.id).where(PlanEntry.year == year).limit(1))
    reason = reason.strip()
    if has_plan is not None and len(reason) < ctx.rules.decline_reason_min_chars:
        raise ValidationFailed(
            f"{year} 年度抽查计划已制定，计划外的任务须书面说明理由（unplanned_reason，"
            f'至少 {ctx.rules.decline_reason_min_chars} 个字）；计划内任务请写 plan = "计划编号"'
        )
    return reason


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
    deps = list(await session.scalars(select(Department).order_by(Department.code)))
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


async def plan_reminders(ctx: changes.Ctx) -> int:
    """Daily: remind each lead REMIND_DAYS_BEFORE days ahead of a planned month; tell the office
    when no plan exists for the year after 31 March. Each notice goes once (by its outbox key)."""
    today = ctx.clock.today()
    sent = 0
    soon = today + dt.timedelta(days=REMIND_DAYS_BEFORE)
    for entry in await ctx.session.scalars(
        select(PlanEntry).where(
            PlanEntry.year == soon.year, PlanEntry.month <= soon.month, PlanEntry.task_id.is_(None)
        )
    ):
        if await _sent(ctx.session, f"plan-reminder:{entry.year}:{entry.code}"):
            continue
        await changes.record(
            ctx,
            "plan.reminded",
            f"plan:{entry.year}:{entry.code}",
            {},
            [
                changes.Notice(
                    Destination.department(entry.lead_department_id),
                    OutMessage.md(
                        "年度抽查计划提醒",
                        f"年度抽查计划 {entry.code}“{entry.title}”计划于 {entry.month} 月实施，"
                        f"请牵头部门做好准备，发送“发起 {entry.code}”即可创建任务并邀请参与部门。",
                    ),
                    key=f"plan-reminder:{entry.year}:{entry.code}",
                )
            ],
        )
        sent += 1
    missing_key = f"plan-missing:{today.year}"
    if today >= dt.date(today.year, *PLAN_DEADLINE) and not await _sent(ctx.session, missing_key):
        has_plan = await ctx.session.scalar(
            select(PlanEntry.id).where(PlanEntry.year == today.year).limit(1)
        )
        if has_plan is None:
            await changes.record(
                ctx,
                "plan.missing",
                f"plan:{today.year}",
                {},
                [
                    changes.Notice(
                        Destination.office(),
                        OutMessage.md(
                            "年度抽查计划未导入",
                            f"{today.year} 年度部门联合抽查计划应于 3 月底前制定并公示，"
                            "系统中尚未导入。请用 lianjian import plan "
                            "导入（模板：lianjian template plan）。",
                        ),
                        key=missing_key,
                    )
                ],
            )
            sent += 1
    return sent


async def overdue_entries(ctx: changes.Ctx, today: dt.date) -> list[PlanEntry]:
    """Plan rows whose month has passed without a task (for the leaders' summary)."""
    return list(
        await ctx.session.scalars(
            select(PlanEntry)
            .where(
                PlanEntry.year == today.year,
                PlanEntry.month < today.month,
                PlanEntry.task_id.is_(None),
            )
            .order_by(PlanEntry.month, PlanEntry.code)
        )
    )
