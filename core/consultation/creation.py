"""Stage 1, consultation: creating a joint task (draft) — its title, window, scope, sampling
rule and the lead department's items, with the ratio checks (seeds 000 §五, 002 二(二)).

The item choice here (`department_items`, `default_items`) is also what an accepting department
takes (core.consultation.answers).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import codes
from core.access import may_act_for, require
from core.changes import Ctx, record
from core.consultation import how_to_withdraw
from core.draws import algorithm
from core.draws.pool import INSPECTOR_KEYS, SCOPE_KEYS, build_target_pool, library_hint
from core.draws.ratios import CREATE_ADVICE, check_cap_counts, check_ratios, needs_sizes
from core.errors import ValidationFailed
from core.jointtask import get_department, require_answerers
from core.models import TARGET_KINDS, Department, Item, JointTask, PlanEntry, Target, TaskItem
from core.states import TASK, TaskState
from core.workdays import cn_date

# who may start a task, in the words of the 发起 command (a plan's or a new task's alike)
STARTERS_ONLY = "只有管理员或牵头部门的联络员、分管领导可以发起联合抽查任务"


async def department_items(
    session: AsyncSession,
    department: Department,
    item_ids: Iterable[int] | None,
    planned: list[Item] | None = None,
) -> list[Item]:
    """The chosen items of a department's item list; None = `default_items`: the `planned`
    ones, else its key items (or, when its list has no key item, the whole list)."""
    own = list(
        await session.scalars(
            select(Item)
            .where(Item.department_id == department.id, Item.current.is_(True))
            .order_by(Item.code)
        )
    )
    if item_ids is None:
        chosen = default_items(own, planned)
    else:
        wanted = list(dict.fromkeys(item_ids))
        by_id = {i.id: i for i in own}
        if missing := [i for i in wanted if i not in by_id]:
            raise ValidationFailed(
                f"抽查事项（编号 {missing[0]}）不在{department.name}的抽查事项清单中"
            )
        chosen = [by_id[i] for i in wanted]
    if not chosen:
        raise ValidationFailed(
            f"{department.name}的抽查事项清单为空，请先导入抽查事项清单"
            if not own
            else "请至少选择一项本部门本次检查事项"
        )
    return chosen


def default_items(own: list[Item], planned: list[Item] | None = None) -> list[Item]:
    """What a department takes when it accepts without choosing: the annual plan's items for
    it (003 三(七)2), else its key items, or, when its list has none, the whole list."""
    return planned or [i for i in own if i.category == "key"] or own


async def plan_items(
    session: AsyncSession, plan_item_ids: Iterable[int], department_id: int
) -> list[Item]:
    """A plan row's items of one department, in their current versions: the row keeps the
    versions current at its import, and a later item list replaces them by code."""
    planned_codes = select(Item.code).where(
        Item.id.in_(list(plan_item_ids)), Item.department_id == department_id
    )
    return list(
        await session.scalars(
            select(Item)
            .where(
                Item.department_id == department_id,
                Item.current.is_(True),
                Item.code.in_(planned_codes),
            )
            .order_by(Item.code)
        )
    )


async def task_plan_items(session: AsyncSession, task_id: int, department_id: int) -> list[Item]:
    """What the annual plan row a task was started from gives a department ([] for a task
    outside the plan, or a row naming none of its items)."""
    planned = await session.scalar(select(PlanEntry.item_ids).where(PlanEntry.task_id == task_id))
    return await plan_items(session, planned, department_id) if planned else []


def _clean_scope(scope: dict[str, Any] | None) -> dict[str, Any]:
    scope = dict(scope or {})
    if unknown := set(scope) - {*SCOPE_KEYS, *INSPECTOR_KEYS, *SCOPE_FLAGS}:
        raise ValidationFailed(f"抽查范围中有无法识别的条件：{'、'.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for key in (*SCOPE_KEYS, *INSPECTOR_KEYS):
        values = [str(v).strip() for v in scope.get(key) or [] if str(v).strip()]
        if values:
            out[key] = values
    if bad := [k for k in out.get("kinds", []) if k not in TARGET_KINDS]:
        raise ValidationFailed(f"检查对象类型“{bad[0]}”无效，可选：{'、'.join(TARGET_KINDS)}")
    out.update({flag: True for flag in SCOPE_FLAGS if scope.get(flag)})
    return out


SCOPE_IN_LIBRARY = (("industries", "行业", Target.industry), ("regions", "区域", Target.region))


async def require_scope_in_library(session: AsyncSession, scope: dict[str, Any]) -> None:
    """Each industry and region the scope names is one the target library has: a value written
    otherwise (餐饮业 for 餐饮服务, 城关 for 城关镇) matches no target, and the task would invite
    the departments to a draw of nobody. Refused naming the library's nearest values; an empty
    library (targets not yet imported) has nothing to compare with, and setup check tells."""
    problems = []
    for key, label, column in SCOPE_IN_LIBRARY:
        if not scope.get(key):
            continue
        known = set(await session.scalars(select(column).where(column != "").distinct()))
        problems += [
            f"{label}“{value}”（{library_hint(value, known, label)}）"
            for value in scope[key]
            if known and value not in known
        ]
    if problems:
        raise ValidationFailed(
            f"抽查范围中的{'；'.join(problems)}在检查对象库中没有，按它抽取抽不到任何对象。"
            "请按检查对象库中的写法改正抽查范围（任务文件的 [scope]，或年度抽查计划的检查对象范围）"
        )


async def add_department_items(
    ctx: Ctx,
    task: JointTask,
    department_id: int,
    rule: algorithm.SamplingRule,
    items: list[Item],
    advice: str,
) -> None:
    """A department's items join the task, then 002 二(二) for a count (or a minimum) the
    rule's ratio does not show: compared with the pool the library gives the task now (its
    departments so far, this one's items in), when it gives one. The ratios were checked
    before anything was written (`check_cap_ratios`); the draw checks both again on the frozen
    pool (core.draws.targets)."""
    ctx.session.add_all(
        TaskItem(task_id=task.id, item_id=i.id, department_id=department_id) for i in items
    )
    await ctx.session.flush()
    if needs_sizes(rule, items):
        sizes = (await build_target_pool(ctx, task, rule)).strata_sizes()
        check_cap_counts(rule, items, ctx.rules.general_item_ratio_cap, sizes, advice=advice)


async def _repeat_of(
    ctx: Ctx, lead: Department, title: str, window: tuple[dt.date, dt.date], plan: _Plan
) -> JointTask | None:
    """A task file run twice: the task neither closed nor withdrawn with the same lead, title,
    window, scope, rule (by value: "0.10" is "0.1") and lead's items. Tasks that differ in any
    of these (another region's scope, another item) are separate tasks, whatever their titles.
    The lead's row is locked first: two processes running the same file at once decide one
    after the other."""
    await ctx.session.execute(
        select(Department.id).where(Department.id == lead.id).with_for_update()
    )
    candidates = await ctx.session.scalars(
        select(JointTask)
        .where(
            JointTask.lead_department_id == lead.id,
            JointTask.title == title,
            JointTask.window_start == window[0],
            JointTask.window_end == window[1],
            JointTask.state.not_in([TaskState.CLOSED, TaskState.WITHDRAWN]),
        )
        .order_by(JointTask.id)
    )
    for same in candidates:
        if (
            same.scope == plan.scope
            and _same_rule(same.rule, plan.rule)
            and plan.item_ids
            == set(
                await ctx.session.scalars(
                    select(TaskItem.item_id).where(
                        TaskItem.task_id == same.id, TaskItem.department_id == lead.id
                    )
                )
            )
        ):
            return same
    return None


def _same_rule(stored: dict[str, Any], rule: algorithm.SamplingRule) -> bool:
    try:
        return algorithm.parse_rule(stored) == rule
    except ValidationFailed:  # a rule stored by an older version that no longer parses
        return False


def _repeated(same: JointTask, lead: Department, title: str) -> ValidationFailed:
    return ValidationFailed(
        f"已有同一任务 {same.code}（{title}，牵头部门{lead.name}，检查时间 "
        f"{cn_date(same.window_start)} 至 {cn_date(same.window_end)}，抽查范围、规则和事项相同，"
        f"状态“{TASK.label(same.state)}”），未重复创建、未重复发出邀请。确需再建一个"
        f"同样的任务，请加 --again。误建的任务可以撤销：{how_to_withdraw(same.code)}"
    )


@dataclass(frozen=True)
class _Plan:
    """What a new task would draw, as stored: compared with existing tasks for a repeat."""

    scope: dict[str, Any]
    rule: algorithm.SamplingRule
    item_ids: set[int]


# 工作方案 statements that bear on the same-year exclusion (core.draws.pool.repeat_check_reason)
SCOPE_FLAGS = ("complaint_driven", "repeat_check")


async def create_task(
    ctx: Ctx,
    *,
    title: str,
    lead_department_id: int,
    window_start: dt.date,
    window_end: dt.date,
    item_ids: Iterable[int],
    scope: dict[str, Any] | None,
    rule: dict[str, Any],
    year: int | None = None,
    again: bool = False,
    reuse_draft: bool = False,
) -> JointTask:
    """A draft task. A repeat of a task neither closed nor withdrawn (`_repeat_of`) is refused,
    naming it, unless `again` says the operator means a second one: a task file run twice sent
    every invitation twice and put both tasks on the public list. `reuse_draft`: a repeat
    still in draft is returned instead (a task file run again, now inviting, goes on with the
    draft it made before)."""
    lead = await get_department(ctx, lead_department_id)
    require(
        may_act_for(ctx, lead.id),
        "task.create",
        f"department:{lead.code}",
        STARTERS_ONLY,
    )
    await require_answerers(ctx, [lead], lead=True)
    title = title.strip()
    if not title:
        raise ValidationFailed("任务名称不能为空")
    if window_end < window_start:
        raise ValidationFailed("检查时间窗口的结束日期早于开始日期")
    # 000 §五.3: the window is when the groups inspect; one that has ended (by the service
    # clock: the demo's day on a database `serve --demo` moved forward) invites nobody,
    # whichever way the task is created (task file, plan row, demo)
    today = ctx.clock.today()
    if window_end < today:
        raise ValidationFailed(
            f"检查时间窗口已于 {cn_date(window_end)} 结束（今天是 {cn_date(today)}），"
            "不能再据此创建任务、发出邀请：请把检查时间（任务文件中的 window）的结束日期"
            "改为今天或以后的日期"
        )
    parsed = algorithm.parse_rule(rule)
    clean_scope = _clean_scope(scope)
    await require_scope_in_library(ctx.session, clean_scope)
    items = await department_items(ctx.session, lead, list(item_ids))
    check_ratios(parsed, items, ctx.rules.general_item_ratio_cap)
    if not again:
        plan = _Plan(clean_scope, parsed, {i.id for i in items})
        if same := await _repeat_of(ctx, lead, title, (window_start, window_end), plan):
            if reuse_draft and same.state == TaskState.DRAFT:
                return same
            raise _repeated(same, lead, title)
    year = year or window_start.year
    task = JointTask(
        code=await codes.next_code(ctx.session, "LJ", year),
        year=year,
        title=title,
        lead_department=lead,
        window_start=window_start,
        window_end=window_end,
        scope=clean_scope,
        rule=parsed.model_dump(mode="json"),
        state=TASK.start(TaskState.DRAFT),
        created_by_id=ctx.actor.id if ctx.actor else None,
        created_at=ctx.clock.now(),
    )
    ctx.session.add(task)
    await ctx.session.flush()
    await add_department_items(ctx, task, lead.id, parsed, items, CREATE_ADVICE)
    await record(
        ctx,
        "task.created",
        f"task:{task.code}",
        {
            "title": title,
            "lead": lead.code,
            "window": [window_start.isoformat(), window_end.isoformat()],
            "items": [i.code for i in items],
            "scope": clean_scope,
            "rule": parsed.public(),
        },
    )
    return task
