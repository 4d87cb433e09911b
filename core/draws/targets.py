"""Stage 2, draws: the target draw of a joint task — freeze the pool and rule (possibly
re-frozen), then confirm with the beacon, which locks the selection and creates the cases in one
transaction (docs/architecture.md §3; seeds 000 §八, 004 第十一条).

ready → [frozen draw] → locked. The caller commits; refusals raise a DomainError and change nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any, cast

from sqlalchemy import ColumnElement, String, Table, any_, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from core.access import lead_only
from core.changes import Ctx, Notice, record
from core.codes import CASE_NUMBER_WIDTH
from core.consultation import how_to_withdraw
from core.draws import algorithm
from core.draws.beacon import (
    beacon_ready_at,
    checked_beacon,
    frozen_beacon_day,
    future_beacon_day,
)
from core.draws.pool import (
    build_target_pool,
    excluded_note,
    fetch_plain,
    gone_by_results,
    inspected_this_year_for,
    pool_file,
    repeat_check_reason,
    stored_pool,
)
from core.draws.ratios import check_caps
from core.errors import InvalidTransition, ValidationFailed
from core.inspection import window_deadline
from core.jointtask import (
    CHUNK,
    DONE_STATES,
    LISTED_CASES,
    get_task,
    participants,
    task_invitations,
)
from core.messages import Destination, OutMessage
from core.models import (
    DRAWABLE_STATUSES,
    Case,
    Department,
    Draw,
    DrawPool,
    Item,
    JointTask,
    Target,
    TaskItem,
)
from core.render import render
from core.states import CASE, DRAW, TASK, CaseState, DrawState, TaskState
from core.workdays import cn_date, cn_datetime, deadline_label


def _broadcast(departments: Iterable[Department], msg: OutMessage, key: str) -> list[Notice]:
    return [Notice(Destination.department(d.id), msg, key=f"{key}:{d.id}") for d in departments]


def _check_drawable(task: JointTask) -> None:
    if task.state in (TaskState.DRAFT, TaskState.CONSULTING):
        raise InvalidTransition("任务尚未完成征询，不能抽取")
    if task.state in DONE_STATES:
        raise InvalidTransition("抽取结果已锁定，不能重新抽取")
    TASK.check(task, TaskState.LOCKED, what="抽取")


async def _check_consulted(ctx: Ctx, task: JointTask) -> None:
    """While consulting, say who has not answered and when silence ends (000 §七)."""
    if task.state != "consulting":
        return
    waiting = [i.department.name for i in await task_invitations(ctx, task) if i.state == "pending"]
    due = deadline_label(task.reply_due_on, task.reply_due_provisional)
    raise InvalidTransition(
        f"任务尚未完成征询，不能抽取：{'、'.join(waiting)}尚未答复（答复期限 {due}）。"
        f"请等待答复；期限过后未答复的部门记为逾期未答复，即可发送 抽取 {task.code}。"
        f"查看答复情况：进度 {task.code}"
    )


def _draw_advice(task: JointTask) -> str:
    """After a cap refusal at freeze or confirm: the rule and items are fixed once consulted,
    so the way on is a new task — this one withdrawn (consultation.withdrawal allows it even
    with a frozen draw, which can then never be confirmed)."""
    return (
        "抽取结果不得超过上限，本次不能抽取。抽取规则和各部门的事项在征询后不能修改："
        "可以撤销该任务后按上限重新创建（比例或户数不超过上限，或改由重点检查事项抽查）。"
        f"撤销任务：{how_to_withdraw(task.code)}"
    )


async def frozen_draw_over_cap(ctx: Ctx, task: JointTask, frozen: Draw) -> str:
    """Why `frozen` can never be confirmed because it draws above a general item's cap (002
    二(二): a draw frozen before the caps were checked), "" when the caps allow it."""
    _, pool = stored_pool(await pool_data(ctx, frozen))
    rule = algorithm.parse_rule(task.rule)
    return await _pool_cap_problem(ctx, task, rule, algorithm.stratum_sizes(pool))


async def _refreeze_advice(ctx: Ctx, task: JointTask, current: Draw | None) -> str:
    """After a cap refusal at freeze: withdrawing (`_draw_advice`) only when withdraw_task
    allows it, i.e. no frozen draw, or the frozen one itself over a cap; otherwise the earlier
    freeze stands and is confirmed as it is."""
    if current is None or await frozen_draw_over_cap(ctx, task, current):
        return _draw_advice(task)
    return (
        f"抽取结果不得超过上限，本次不能重新冻结。已冻结的抽取范围 {current.code} 仍然有效，"
        f"确认抽取将按 {current.code} 进行：信标（{current.beacon_source}）公布后发送"
        f"“确认抽取 {task.code} 信标值”（冻结后任务不能撤销）"
    )


async def _pool_cap_problem(
    ctx: Ctx, task: JointTask, rule: algorithm.SamplingRule, sizes: dict[str, int]
) -> str:
    """002 二(二) on the pool the draw takes from: every department's items, lead's and
    participants', against every stratum's ratio and the households it draws — whatever was
    checked before (creation, acceptance, a task from before those checks), the draw never
    exceeds a general item's cap. What breaks a cap (the caller adds its advice: a refused
    re-freeze's needs the earlier draw's check, made only then), "" when none."""
    items = list(
        await ctx.session.scalars(
            select(Item)
            .join(TaskItem, TaskItem.item_id == Item.id)
            .where(TaskItem.task_id == task.id)
            .order_by(Item.code)
        )
    )
    try:
        check_caps(rule, items, ctx.rules.general_item_ratio_cap, sizes, advice="")
    except ValidationFailed as err:
        return err.message
    return ""


async def freeze_pool(ctx: Ctx, task_code: str, beacon_source: str) -> Draw:
    """Freeze the pool and rule and announce them with the beacon to come — never a selection."""
    task = await get_task(ctx, task_code, for_update=True)
    lead_only(ctx, task, "draw.freeze", admin=False)  # only the lead draws
    await _check_consulted(ctx, task)
    _check_drawable(task)
    beacon_source = (beacon_source or "").strip()
    if not beacon_source:
        raise ValidationFailed(
            "请写明将使用的公开信标来源（例如：2026年12月2日福彩3D开奖号码），"
            "信标值须在冻结时无人能知"
        )
    day = future_beacon_day(ctx, beacon_source)
    rule = algorithm.parse_rule(task.rule)
    report = await build_target_pool(ctx, task, rule)
    if not report.candidates:
        raise ValidationFailed(
            "抽取范围内没有符合条件的检查对象" + excluded_note(report.exclusions, "户")
        )
    earlier = list(
        await ctx.session.scalars(
            select(Draw).where(Draw.task_id == task.id, Draw.kind == "targets")
        )
    )
    current = next((d for d in earlier if d.state == DrawState.FROZEN), None)
    if problem := await _pool_cap_problem(ctx, task, rule, report.strata_sizes()):
        raise ValidationFailed(problem + await _refreeze_advice(ctx, task, current))
    frozen_file = pool_file(report.candidates)
    freeze_no = len(earlier) + 1
    strata, exclusions = report.strata_sizes(), report.exclusions_in_order()
    frozen = Draw(
        code=f"{task.code}-T{freeze_no}",
        task_id=task.id,
        kind="targets",
        task_code=task.code,
        state=DRAW.start(DrawState.FROZEN),
        freeze_no=freeze_no,
        commitment=task.commitment,
        beacon_source=beacon_source,
        uses_beacon=True,
        pool_hash=frozen_file.hash,
        pool_size=len(report.candidates),
        parameters={
            "rule": rule.public(),
            "scope": task.scope,
            "strata": strata,
            "exclusions": exclusions,
            "beacon_source": beacon_source,
            "beacon_date": day.isoformat(),
            "repeat_check": report.repeat_check_reason,
        },
        algorithm_version=algorithm.ALGORITHM_VERSION,
        created_by_id=ctx.actor.id if ctx.actor else None,
        frozen_at=ctx.clock.now(),
    )
    if current is not None:  # the announcements say which freeze this one voids, and why
        reason = _refreeze_reason(ctx, task, current, frozen)
        frozen.parameters.update(voids=current.code, refreeze_reason=reason)
        DRAW.move(current, DrawState.SUPERSEDED)
    ctx.session.add(frozen)
    await ctx.session.flush()
    ctx.session.add(DrawPool(draw_id=frozen.id, data=frozen_file.data))
    text = render(
        "messages/draw_frozen.md.j2",
        task=task,
        d=frozen,
        strata=strata,
        rule_texts={s.name: s.describe() for s in rule.strata},
        exclusions=exclusions,
        repeat_reason=report.repeat_check_reason,
        beacon_ready=cn_datetime(beacon_ready_at(day, ctx.rules)),
    )
    notices = _broadcast(
        await participants(ctx, task),
        OutMessage.md(f"抽取范围已冻结：{task.code}", text),
        f"draw-frozen:{frozen.id}",
    )
    await record(
        ctx,
        "draw.refrozen" if freeze_no > 1 else "draw.frozen",
        f"draw:{frozen.code}",
        {
            "task": task.code,
            "freeze_no": freeze_no,
            "pool_hash": frozen.pool_hash,
            "pool_size": frozen.pool_size,
            "strata": strata,
            "exclusions": exclusions,
            "commitment": task.commitment,
            "beacon_source": beacon_source,
            "beacon_date": day.isoformat(),
            "rule": rule.public(),
            "superseded": [d.code for d in earlier if d.state == DrawState.SUPERSEDED],
            "reason": frozen.parameters.get("refreeze_reason", ""),
        },
        notices,
    )
    return frozen


def _refreeze_reason(ctx: Ctx, task: JointTask, current: Draw, new: Draw) -> str:
    """What a new freeze changes from the current one, said in its announcement. No re-rolls
    (docs/architecture.md §3): once the current freeze's beacon is out only a changed pool or
    rule may be frozen again, with a new beacon; a freeze changing nothing is refused too."""
    changed = []
    if new.pool_hash != current.pool_hash:
        changed.append(
            f"抽取范围由 {current.pool_size} 户变为 {new.pool_size} 户"
            if new.pool_size != current.pool_size
            else "抽取范围内的检查对象有变化"
        )
    if new.parameters["rule"] != current.parameters.get("rule"):
        changed.append("抽取规则有变化")
    day = frozen_beacon_day(current)
    ready = beacon_ready_at(day, ctx.rules) if day is not None else None
    if ready is not None and ready <= ctx.clock.now() and not changed:
        raise InvalidTransition(
            f"第 {current.freeze_no} 次冻结（{current.code}）的信标（{current.beacon_source}）"
            f"已于 {cn_datetime(ready)} 公布，抽取范围和规则均未变化，"
            f"不能重新冻结（不得重抽）；请发送“确认抽取 {task.code} 信标值”，"
            "以已公布的信标值完成抽取"
        )
    if new.beacon_source != current.beacon_source:
        changed.append(f"信标来源由“{current.beacon_source}”改为“{new.beacon_source}”")
    if not changed:
        raise InvalidTransition(
            f"与第 {current.freeze_no} 次冻结（{current.code}）相同（抽取范围、规则和信标来源均未"
            f"变化），无需重新冻结；信标值公布后发送“确认抽取 {task.code} 信标值”完成抽取"
        )
    return "；".join(changed)


async def pool_data(ctx: Ctx, d: Draw) -> bytes:
    data = await ctx.session.scalar(select(DrawPool.data).where(DrawPool.draw_id == d.id))
    assert data is not None  # written with the draw
    return data


def _uscc_among(dialect: str, usccs: list[str]) -> ColumnElement[bool] | None:
    """Target.uscc in the list as ONE bound value, so compiling does not grow with the list: a
    JSON array read by json_each on SQLite, an array with = ANY on PostgreSQL (None elsewhere)."""
    if dialect == "sqlite":
        return Target.uscc.in_(select(func.json_each(json.dumps(usccs)).table_valued("value")))
    if dialect == "postgresql":
        return Target.uscc == any_(bindparam("usccs", usccs, type_=ARRAY(String)))
    return None


async def _target_ids(session: AsyncSession, usccs: Sequence[str]) -> dict[str, tuple[int, str]]:
    """uscc → (target id, name) (a city-wide draw selects tens of thousands)."""
    columns = select(Target.uscc, Target.id, Target.name)
    among = _uscc_among((await session.connection()).dialect.name, list(usccs))
    if among is not None:
        queries = [columns.where(among)]
    else:  # other databases: IN (…) lists of bounded length
        queries = [
            columns.where(Target.uscc.in_(usccs[i : i + CHUNK]))
            for i in range(0, len(usccs), CHUNK)
        ]
    out: dict[str, tuple[int, str]] = {}
    for query in queries:
        out.update((u, (tid, name)) for u, tid, name in await fetch_plain(session, query))
    return out


async def _insert_cases(session: AsyncSession, n: int, columns: dict[str, Any]) -> None:
    """n cases by column (a list of n values, or one value for every row) in one driver-level
    executemany: SQLAlchemy's per-row parameter handling of tens of thousands of cases costs
    more than the database's own work. Single values (dates, flags) pass the column type's bind
    processor, so the driver gets what SQLAlchemy would send it; lists hold plain str/int."""
    conn = await session.connection()
    dialect, table = conn.dialect, cast(Table, Case.__table__)
    compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
    by_column: dict[str, Iterable[Any]] = {}
    for key, values in columns.items():
        if isinstance(values, list):
            by_column[key] = values
        else:
            process = table.c[key].type.dialect_impl(dialect).bind_processor(dialect)
            by_column[key] = repeat(process(values) if process else values, n)
    params = list(zip(*(by_column[key] for key in compiled.positiontup or ()), strict=True))
    if params:
        await conn.exec_driver_sql(str(compiled), params)


async def confirm_draw(ctx: Ctx, task_code: str, beacon: str) -> Draw:
    """Enter the beacon: compute the selection once, lock it and create the cases."""
    task = await get_task(ctx, task_code, for_update=True)
    lead_only(ctx, task, "draw.confirm", admin=False)
    _check_drawable(task)
    frozen = await ctx.session.scalar(
        select(Draw).where(
            Draw.task_id == task.id, Draw.kind == "targets", Draw.state == DrawState.FROZEN
        )
    )
    if frozen is None:
        raise InvalidTransition("尚未冻结抽取范围，请先执行“抽取”并公布信标来源")
    _check_window_open(ctx, task)
    beacon = checked_beacon(ctx, frozen, beacon) if frozen.uses_beacon else ""
    pool_hash, pool = stored_pool(await pool_data(ctx, frozen))
    if pool_hash != frozen.pool_hash:
        raise InvalidTransition("冻结的抽取范围与其哈希不符，已停止抽取，请联系管理员")
    seed = bytes.fromhex(task.seed_hex)
    rule = algorithm.parse_rule(task.rule)
    if problem := await _pool_cap_problem(ctx, task, rule, algorithm.stratum_sizes(pool)):
        raise ValidationFailed(problem + _draw_advice(task))
    selection = algorithm.select(pool, rule, algorithm.final_seed(seed, beacon or None), task.code)
    targets = await _target_ids(ctx.session, selection)
    if missing := [u for u in selection if u not in targets]:
        # A drawn target deleted from the library (outside the bot, which never deletes one)
        # cannot be a case; the committed pool is not redrawn, so only a new freeze goes on.
        # Never name it: the seed stays secret and nothing is locked. (Checking the whole pool
        # up front would cost a city draw a second for rows the bot never deletes.)
        raise InvalidTransition(
            f"冻结后有 {len(missing)} 户抽中的检查对象已从名录库删除，无法锁定；请核实名录库后"
            f"重新冻结抽取范围并公布新的信标来源：抽取 {task.code} 信标来源"
        )
    now = ctx.clock.now()
    frozen.selection, frozen.beacon, frozen.seed_hex = selection, beacon, task.seed_hex
    DRAW.move(frozen, DrawState.LOCKED)
    frozen.locked_at = now
    due = window_deadline(await ctx.work_calendar(), ctx.rules, task.window_last_day)
    case_codes = [f"{task.code}-{n:0{CASE_NUMBER_WIDTH}d}" for n in range(1, len(selection) + 1)]
    await _insert_cases(
        ctx.session,
        len(selection),
        {
            "code": case_codes,
            "task_id": task.id,
            "target_id": [targets[u][0] for u in selection],
            "state": CASE.start(CaseState.ASSIGNED),
            "result_due_on": due.day,
            "result_due_provisional": due.provisional,
        },
    )
    TASK.move(task, TaskState.LOCKED)
    wanted = set(selection)
    chosen = Counter(stratum for i, stratum in pool if i in wanted)
    shown = [
        {"code": code, "name": targets[u][1], "uscc": u}
        for code, u in zip(case_codes[:LISTED_CASES], selection, strict=False)
    ]
    text = render(
        "messages/draw_locked.md.j2",
        task=task,
        d=frozen,
        chosen=dict(chosen),
        shown=shown,
        hidden=max(0, len(selection) - LISTED_CASES),
    )
    notices = _broadcast(
        await participants(ctx, task),
        OutMessage.md(f"抽取结果已锁定：{task.code}", text),
        f"draw-locked:{frozen.id}",
    )
    await record(
        ctx,
        "draw.locked",
        f"draw:{frozen.code}",
        {
            "task": task.code,
            "freeze_no": frozen.freeze_no,
            "commitment": frozen.commitment,
            "seed": frozen.seed_hex,
            "beacon": beacon,
            "beacon_source": frozen.beacon_source,
            "pool_hash": frozen.pool_hash,
            "pool_size": frozen.pool_size,
            "selection_size": len(selection),
            "selection_by_stratum": dict(chosen),
        },
        notices,
    )
    return frozen


def _check_window_open(ctx: Ctx, task: JointTask) -> None:
    """The plan's 抽查时间 is when the inspections are done (000 §五.3): a draw locked after
    its last day would push assignments nobody can carry out in time, and every inspection
    date would be refused (core.inspection.check_day). The lead extends it first (延期)."""
    last = task.window_last_day
    if ctx.clock.today() > last:
        raise InvalidTransition(
            f"{task.code} 的检查时间已于 {cn_date(last)} 结束，现在锁定的检查对象无法按期检查；"
            f"请先发送“延期 {task.code} 截止日期 理由”延长检查时间（000 §五.3），再确认抽取"
        )


async def inspected_since_freeze(ctx: Ctx, d: Draw) -> list[str]:
    """The locked draw's cases ("案件号 名称") whose target the departments drew or inspected
    elsewhere this year after the freeze (000 §五.1): the committed pool cannot leave them out,
    so the lead is told and decides (replace or note them). Those from before the freeze were
    never in the pool."""
    task = await ctx.session.get(JointTask, d.task_id)
    assert task is not None  # a draw's task is never deleted
    ours, above = await inspected_this_year_for(
        ctx, task, bool(await repeat_check_reason(ctx, task))
    )
    rows = await ctx.session.execute(
        select(Case.code, Target.uscc, Target.name)
        .join(Target, Target.id == Case.target_id)
        .where(Case.task_id == task.id)
        .order_by(Case.code)
    )
    return [f"{code} {name}" for code, uscc, name in rows if uscc in ours or uscc in above]


async def gone_since_freeze(ctx: Ctx, d: Draw) -> list[str]:
    """The locked draw's cases ("案件号 名称") whose target was deregistered, revoked or moved
    out after the freeze (by the library's status or a published result): the committed pool
    keeps them (004 第十一条), and their result may be formed directly (004 第十八条), so the lead
    is told. Those gone before the freeze were never in the pool."""
    gone = await gone_by_results(ctx.session)
    rows = await ctx.session.execute(
        select(Case.code, Target.uscc, Target.name, Target.status)
        .join(Target, Target.id == Case.target_id)
        .where(Case.task_id == d.task_id)
        .order_by(Case.code)
    )
    return [
        f"{code} {name}"
        for code, uscc, name, status in rows
        if status not in DRAWABLE_STATUSES or uscc in gone
    ]


async def locked_draw(ctx: Ctx, task: JointTask, kind: str) -> Draw:
    d = await ctx.session.scalar(
        select(Draw)
        .where(Draw.task_id == task.id, Draw.kind == kind, Draw.state == DrawState.LOCKED)
        .order_by(Draw.id.desc())
    )
    if d is None:
        raise InvalidTransition(
            "检查对象尚未抽取锁定" if kind == "targets" else "尚未匹配执法检查人员"
        )
    return d
