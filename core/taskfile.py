"""Stage 1, consultation: a joint task drafted as a file (the office's 工作方案), for
`lianjian task create`."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select

from core import department_names, plan
from core.changes import Ctx
from core.consultation import creation, opening
from core.draws import algorithm
from core.draws.pool import INSPECTOR_KEYS, SCOPE_KEYS
from core.errors import DomainError, NotFound, ValidationFailed, os_reason
from core.models import Department, Item, JointTask
from core.render import templates_dir
from core.textfiles import read_toml_file
from core.validation_zh import Loc, error_lines, example_at, loc_text, toml_value


class TaskFile(BaseModel):
    """A planned task names its plan row (`plan`); any other task, once the year's plan is
    adopted, gives `unplanned_reason` (003 三(七): tasks are not added at will)."""

    title: str = ""
    lead: str = Field("", examples=["SJ"])
    window: tuple[dt.date, dt.date] | None = Field(None, examples=[["2026-03-16", "2026-04-30"]])
    items: list[str] = Field([], examples=[["SJ-03"]])
    invite: list[str] = Field([], examples=[["WJ", "GA"]])
    scope: dict[str, Any] = {}
    rule: dict[str, Any] = {}
    plan: str = ""
    plan_year: int | None = None  # the plan's year when not this year's (as 发起 编号 年度)
    unplanned_reason: str = ""


# What each part of a task file may hold; anything else is a typo or a key in the wrong place
_TOP_KEYS = tuple(TaskFile.model_fields)
_KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "": _TOP_KEYS,
    "scope": (*SCOPE_KEYS, *INSPECTOR_KEYS, *creation.SCOPE_FLAGS),
    "rule": tuple(algorithm.SamplingRule.model_fields),
    "rule.strata": tuple(algorithm.StratumRule.model_fields),
}
_PART_ZH = {
    "": "任务文件",
    "scope": "[scope] 小节",
    "rule": "[rule] 小节",
    "rule.strata": "[[rule.strata]] 分层",
}


def unknown_keys(raw: dict[str, Any], text: str) -> list[str]:
    """Each key the task file's parts do not take, with its line and the nearest known key.
    TOML puts every key after a [[rule.strata]] header into that stratum: a top-level key
    appended at the end of the file lands there, and the file then seemed to lack it."""
    found: list[str] = []
    parts: list[tuple[str, Any]] = [
        ("", raw),
        ("scope", raw.get("scope")),
        ("rule", raw.get("rule")),
    ]
    rule = raw.get("rule")
    if isinstance(rule, dict) and isinstance(rule.get("strata"), list):
        parts += [("rule.strata", stratum) for stratum in rule["strata"]]
    for part, table in parts:
        if not isinstance(table, dict):
            continue
        known = _KNOWN_KEYS[part]
        for key in table:
            if key in known:
                continue
            at = f"第 {n} 行" if (n := _key_line(text, key)) else ""
            told = f"{at}“{key}”不是{_PART_ZH[part]}的项"
            if part == "rule.strata" and key in _TOP_KEYS:
                told += "：写在 [[rule.strata]] 之后的项都归入该分层，请把它移到第一个 [ ] 小节之前"
            elif close := difflib.get_close_matches(key, known, n=1):
                told += f"，是不是“{close[0]}”？"
            found.append(told)
    return found


def planned_keys(raw: dict[str, Any], text: str) -> list[str]:
    """The keys beside `plan`, each with its line: the plan row decides all of them
    (core.plan.start_planned), so a file writing them is refused rather than silently
    starting the row as planned."""
    if not raw.get("plan"):
        return []
    return [
        f"{f'第 {n} 行' if (n := _key_line(text, key)) else ''}“{key}”"
        for key in raw
        if key not in ("plan", "plan_year")
    ]


def _key_line(text: str, key: str) -> int | None:
    """The line (from 1) where `key = …` is written first, if it is written plainly."""
    pattern = re.compile(rf"""\s*["']?{re.escape(key)}["']?\s*=""")
    return next((n for n, line in enumerate(text.splitlines(), 1) if pattern.match(line)), None)


def task_file_example(today: dt.date) -> bytes:
    """The example task file `lianjian template task` writes (templates/task.example.toml),
    its window moved to start a week from `today`: an ended window is refused."""
    start = today + dt.timedelta(days=7)
    window = f'window = ["{start}", "{start + dt.timedelta(days=45)}"]'
    text = (templates_dir() / "task.example.toml").read_text("utf-8")
    return re.sub(r"^window = \[[^]]*\]", window, text, count=1, flags=re.M).encode()


# the commands that list what a task file may name (bot/cli)
DEPARTMENT_LIST = "lianjian department list"
ITEM_LIST = "lianjian item list"

TASK_FILE_HINT = (
    "任务文件是 TOML 文本文件：用 lianjian template task -o 任务.toml 生成示例，照着修改"
)


def read_task_file(path: Path) -> TaskFile:
    try:
        text, raw = read_toml_file(path, "任务文件", TASK_FILE_HINT)
    except OSError as err:
        raise ValidationFailed(f"无法读取任务文件 {path}：{os_reason(err)}") from err
    if unknown := unknown_keys(raw, text):
        raise ValidationFailed(f"任务文件 {path.name} 中有无法识别的项：{'；'.join(unknown)}")
    if decided := planned_keys(raw, text):
        raise ValidationFailed(
            f'任务文件 {path.name} 写了 plan = "{raw["plan"]}"，按年度抽查计划发起：任务名称、'
            "检查时间、事项、抽查范围、规则和邀请的部门都由年度抽查计划的这一行决定，任务文件"
            f"不能另写。请删去{'、'.join(decided)}；要另作安排，请联系联席会议办公室调整年度计划，"
            "或去掉 plan、按计划外任务（写明 unplanned_reason）创建"
        )
    try:
        return TaskFile.model_validate(raw)
    except ValidationError as err:
        lines = error_lines(err, TaskFile, loc_text, _example)
        raise ValidationFailed(f"任务文件 {path.name} 有误：{'；'.join(lines)}") from None


def _example(loc: Loc) -> str:
    value = example_at(TaskFile, loc)
    return f"{loc[0]} = {toml_value(value)}" if value else ""


async def _department_ids(ctx: Ctx, words: list[str], key: str) -> list[int]:
    """The departments the file's `key` (lead, invite) names, as an officer would name them
    (core.department_names); a refusal says which key holds the word."""
    departments = list(await ctx.session.scalars(select(Department)))
    ids = []
    for word in words:
        try:
            ids.append(department_names.one_of(departments, word).id)
        except DomainError as err:
            raise NotFound(
                f"任务文件的 {key}：{err.message}（部门编号用 {DEPARTMENT_LIST} 查看）"
            ) from None
    return ids


async def create_from_file(ctx: Ctx, spec: TaskFile, *, again: bool = False) -> JointTask:
    """Create the task and, when the file invites departments, open the consultation; the
    same task again only with `again` (core.consultation.creation), except that a draft this
    file made before (no `invite` then) has its consultation opened now."""
    if spec.plan:
        return await plan.start_planned(ctx, spec.plan, spec.plan_year)
    if spec.plan_year is not None:
        raise ValidationFailed(
            '任务文件的 plan_year 是年度抽查计划的年度，只能与 plan = "计划编号" 一起写'
        )
    missing = [k for k in ("title", "lead", "window", "items", "rule") if not getattr(spec, k)]
    if missing or spec.window is None:
        raise ValidationFailed(
            f'任务文件缺少：{"、".join(missing)}（或写 plan = "计划编号" 按年度计划发起）'
        )
    reason = await plan.require_plan_or_reason(ctx, spec.window[0].year, spec.unplanned_reason)
    [lead_id] = await _department_ids(ctx, [spec.lead], "lead")
    # the file's own mistakes first: a repeat of a task is told only of a file that is right
    invited = await _department_ids(ctx, spec.invite, "invite")
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
        raise NotFound(
            f"牵头部门的事项清单中没有：{'、'.join(missing)}"
            f"（该部门的事项代码用 {ITEM_LIST} {spec.lead.upper()} 查看）"
        )
    task = await creation.create_task(
        ctx,
        title=spec.title,
        lead_department_id=lead_id,
        window_start=spec.window[0],
        window_end=spec.window[1],
        item_ids=[item_ids[c] for c in spec.items],
        scope=spec.scope,
        rule=spec.rule,
        again=again,
        reuse_draft=bool(spec.invite),  # the draft this file made before, now inviting
    )
    task.unplanned_reason = reason
    if invited:
        await opening.open_consultation(ctx, task, invited)
    return task
