"""Stage 1, consultation: a joint task drafted as a file (the office's 工作方案), for
`lianjian task create`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from core import plan
from core.changes import Ctx
from core.consultation import creation, opening
from core.errors import NotFound, ValidationFailed, os_reason
from core.models import Department, Item, JointTask
from core.render import templates_dir
from core.textfiles import read_toml_file


class TaskFile(BaseModel):
    """A planned task names its plan row (`plan`); any other task, once the year's plan is
    adopted, gives `unplanned_reason` (003 三(七): tasks are not added at will)."""

    title: str = ""
    lead: str = ""
    window: tuple[dt.date, dt.date] | None = None
    items: list[str] = []
    invite: list[str] = []
    scope: dict[str, Any] = {}
    rule: dict[str, Any] = {}
    plan: str = ""
    unplanned_reason: str = ""


def task_file_example() -> bytes:
    """The example task file `lianjian template task` writes (templates/task.example.toml)."""
    return (templates_dir() / "task.example.toml").read_bytes()


TASK_FILE_HINT = (
    "任务文件是 TOML 文本文件：用 lianjian template task -o 任务.toml 生成示例，照着修改"
)


def read_task_file(path: Path) -> TaskFile:
    try:
        raw = read_toml_file(path, "任务文件", TASK_FILE_HINT)
    except OSError as err:
        raise ValidationFailed(f"无法读取任务文件 {path}：{os_reason(err)}") from err
    try:
        return TaskFile.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        raise ValidationFailed(
            f"任务文件 {path.name} 的“{'.'.join(map(str, first['loc']))}”有误：{first['msg']}"
        ) from err


async def _department_ids(ctx: Ctx, codes: list[str]) -> list[int]:
    found = dict(
        (
            await ctx.session.execute(
                select(Department.code, Department.id).where(
                    Department.code.in_([c.upper() for c in codes])
                )
            )
        ).all()
    )
    if missing := [c for c in codes if c.upper() not in found]:
        raise NotFound(f"未找到部门：{'、'.join(missing)}")
    return [found[c.upper()] for c in codes]


async def create_from_file(ctx: Ctx, spec: TaskFile) -> JointTask:
    """Create the task and, when the file invites departments, open the consultation."""
    if spec.plan:
        return await plan.start_planned(ctx, spec.plan)
    missing = [k for k in ("title", "lead", "window", "items", "rule") if not getattr(spec, k)]
    if missing or spec.window is None:
        raise ValidationFailed(
            f'任务文件缺少：{"、".join(missing)}（或写 plan = "计划编号" 按年度计划发起）'
        )
    reason = await plan.require_plan_or_reason(ctx, spec.window[0].year, spec.unplanned_reason)
    [lead_id] = await _department_ids(ctx, [spec.lead])
    item_ids = dict(
        (
            await ctx.session.execute(
                select(Item.code, Item.id).where(
                    Item.department_id == lead_id, Item.current.is_(True), Item.code.in_(spec.items)
                )
            )
        ).all()
    )
    if missing := [c for c in spec.items if c not in item_ids]:
        raise NotFound(f"牵头部门的事项清单中没有：{'、'.join(missing)}")
    task = await creation.create_task(
        ctx,
        title=spec.title,
        lead_department_id=lead_id,
        window_start=spec.window[0],
        window_end=spec.window[1],
        item_ids=[item_ids[c] for c in spec.items],
        scope=spec.scope,
        rule=spec.rule,
    )
    task.unplanned_reason = reason
    if spec.invite:
        await opening.open_consultation(ctx, task, await _department_ids(ctx, spec.invite))
    return task
