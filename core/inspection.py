"""Stage 4, inspection: a case's notice handed to the target (004 第十六条(二)), the inspection
date with the result deadline it sets, and the lead's extension of the task's inspection window
(000 §五.3).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ColumnExpressionArgument,
    Select,
    bindparam,
    func,
    select,
    update,
)

from core import jointtask
from core.access import lead_only
from core.cases import (
    active_members,
    china_date,
    get_case,
    get_task,
    message,
    participating_departments,
    require_member,
)
from core.changes import Ctx, Notice, record
from core.errors import InvalidTransition, ValidationFailed
from core.messages import Destination
from core.models import (
    Case,
    CasePart,
    CaseResult,
    Department,
    Draw,
    GroupMember,
    JointTask,
)
from core.rules import Rules, written_reason
from core.states import (
    CASE,
    CaseState,
    DrawState,
    PartState,
)
from core.workdays import Deadline, WorkCalendar, cn_date


def result_deadline(cal: WorkCalendar, rules: Rules, case: Case, task: JointTask) -> Deadline:
    return entry_deadline(
        cal, rules, task.window_last_day, case.result_due_on, case.result_due_provisional
    )


def entry_deadline(
    cal: WorkCalendar,
    rules: Rules,
    window_last_day: dt.date,
    due_on: dt.date | None,
    provisional: bool,
) -> Deadline:
    """A case's result deadline, from its columns: the one rule every count of on time, late
    and overdue reads (entry, nudges, the leaders' summary, 年度考核), each part judged
    against it by its department's first entry (core.timeliness). Results are due 20
    working days after the inspection, or, without an inspection date, after the task
    window's last day (000 §十, 001 第十六条(三); docs/architecture.md §4). The case stores
    it (`due_on`): from the window at the targets' lock, set by the inspection date, moved
    by 延期 while the case is open for entry and kept once a result without a visit is in
    (_move_undated_deadlines), counted again by core.deadlines.recompute_provisional. Only
    when none is stored is it counted here from `window_last_day` (the extension
    included). In SQL: `entry_deadline_sql`."""
    if due_on is not None:
        return Deadline(due_on, provisional)
    return window_deadline(cal, rules, window_last_day)


def entry_deadline_sql(window_due: dt.date) -> ColumnElement[dt.date]:
    """`entry_deadline`'s day in SQL, for counting many cases of one task: the stored
    deadline, else `window_due` (window_deadline of the task's last day)."""
    return func.coalesce(Case.result_due_on, window_due)


def window_deadline(cal: WorkCalendar, rules: Rules, window_last_day: dt.date) -> Deadline:
    """The result deadline of a case not yet inspected: 20 working days after the window's last
    day (JointTask.window_last_day, the lead's extension included, 000 §五.3)."""
    return cal.add_workdays(window_last_day, rules.result_entry_workdays)


async def set_inspected_on(ctx: Ctx, case: Case, day: dt.date) -> Deadline:
    cal = await ctx.work_calendar()
    due = cal.add_workdays(day, ctx.rules.result_entry_workdays)
    case.inspected_on, case.result_due_on, case.result_due_provisional = (
        day,
        due.day,
        due.provisional,
    )
    return due


_STANDING_PARTS = (
    select(Department.name, CasePart.entered_at)
    .join(Department, Department.id == CasePart.department_id)
    .where(
        CasePart.case_id == bindparam("case_id"),
        CasePart.department_id != bindparam("department_id"),
        CasePart.state == PartState.ENTERED,
    )
    .order_by(CasePart.entered_at)
    .limit(1)
)


async def check_same_visit(ctx: Ctx, case: Case, day: dt.date | None, department_id: int) -> None:
    """A joint inspection is one visit checking every department's items (004 第十四条): once
    another department's part stands on the case's inspection date, a department entering or
    recording a different date is refused, naming that date and that department, rather than
    moving the case's date and the deadline counted from it (004 第十九条) — which made a late
    part on time. Before any other part stands, the date may still be put right."""
    if day is None or case.inspected_on is None or day == case.inspected_on:
        return
    params = {"case_id": case.id, "department_id": department_id}
    standing = (await ctx.session.execute(_STANDING_PARTS, params)).first()
    if standing is None:
        return
    first = cn_date(case.inspected_on)
    raise ValidationFailed(
        f"本案检查日期为 {first}，{standing.name}已于 {cn_date(china_date(standing.entered_at))}"
        f"按此日期录入其部分。联合检查对同一对象一次完成所有事项（004 第十四条），不能另填"
        f" {cn_date(day)}；结果录入期限自 {first} 起算（004 第十九条）。请按 {first} 录入，或不写"
        "检查日期",
        field="inspected_on",
    )


def targets_locked_at(task_id: ColumnExpressionArgument[int]) -> Select[dt.datetime | None]:
    """When the task's target list was locked: no inspection is dated before that day."""
    return select(func.min(Draw.locked_at)).where(
        Draw.task_id == task_id, Draw.kind == "targets", Draw.state == DrawState.LOCKED
    )


_TARGETS_LOCKED_AT = targets_locked_at(bindparam("task_id"))  # built once: every new date asks


async def check_inspection_day(ctx: Ctx, task: JointTask, case: Case, day: dt.date) -> None:
    """`check_day`, reading when the task's targets were locked."""
    locked_at = await ctx.session.scalar(_TARGETS_LOCKED_AT, {"task_id": task.id})
    check_day(task, case, day, ctx.clock.today(), locked_at)


def check_day(
    task: JointTask,
    case: Case,
    day: dt.date,
    today: dt.date,
    targets_locked_at: dt.datetime | None,
) -> None:
    """An inspection of `case` happens after the draw was locked (`targets_locked_at`), within
    the task window (or the extension the lead recorded with a reason, 000 §五.3), and not in
    the future."""
    if day > today:
        raise ValidationFailed("检查日期不能晚于今天", field="inspected_on")
    if day < task.window_start:
        # the next step too: the window, the visit recorded on its day, the lead who sets it
        raise ValidationFailed(
            f"检查日期早于任务检查时间（{cn_date(task.window_start)} 至"
            f" {cn_date(task.window_last_day)}）。请在检查时间内实地检查，检查当天发送“检查"
            f" {case.code} 检查日期”登记，检查后再录入结果；如确需提前检查，请联系牵头部门",
            field="inspected_on",
        )
    if targets_locked_at is not None and day < china_date(targets_locked_at):
        raise ValidationFailed(
            f"检查日期早于检查对象名单锁定之日（{cn_date(china_date(targets_locked_at))}）",
            field="inspected_on",
        )
    last = task.window_last_day
    if day > last:
        raise ValidationFailed(
            f"检查日期晚于任务检查时间（至 {cn_date(last)}）。如需延期，请牵头部门发送"
            f"“延期 {task.code} 日期 理由”",
            field="inspected_on",
        )


async def extend_window(ctx: Ctx, task_code: str, to: dt.date, reason: str) -> JointTask:
    """The lead extends the inspection window with a written reason (000 §五.3: 检查时间…确需
    延长的…); inspections dated up to `to` are then accepted. Audited; participants are told."""
    task = await jointtask.get_task(ctx, task_code, for_update=True)
    lead_only(ctx, task, "task.window_extended")
    example = f"延期 {task.code} 截止日期 汛期部分企业停产，需顺延检查"
    reason = written_reason(
        reason,
        "延期理由",
        f"请写明需要延期的具体原因，例如：{example}",
        min_chars=ctx.rules.decline_reason_min_chars,
        missing=f"延期须写明理由，例如：{example}",
    )
    previous = task.window_last_day
    if to <= previous:
        raise ValidationFailed(f"延期后的日期须晚于现在的检查截止日 {cn_date(previous)}")
    task.window_extended_to, task.window_extension_reason = to, reason
    due = await _move_undated_deadlines(ctx, task)
    departments = await participating_departments(ctx, task)
    msg = message(
        "task_window_extended",
        f"{task.code} 检查时间延期",
        task=task,
        previous=previous,
        reason=reason,
        due=due,
    )
    await record(
        ctx,
        "task.window_extended",
        f"task:{task.code}",
        {
            "from": previous.isoformat(),
            "to": to.isoformat(),
            "reason": reason,
            "result_due_on": due.day.isoformat(),
            "provisional": due.provisional,
        },
        [Notice(Destination.department(d.id), msg) for d in departments],
    )
    return task


def nothing_entered() -> ColumnElement[bool]:
    """The case has no result version yet, not even a first department's part: the one test
    of whether an undated case's deadline still follows the window (延期, the recount of
    provisional deadlines). Not the case's state: a late entry returned by review, or a late
    part while others are missing, is open for entry again, yet the summary and the year
    report count its first entry against the stored deadline."""
    return ~select(CaseResult.id).where(CaseResult.case_id == Case.id).exists()


async def _move_undated_deadlines(ctx: Ctx, task: JointTask) -> Deadline:
    """The stored result deadline of each case not yet inspected counts from the window's last
    day: moved with it, in the extension's transaction, so no one is told of a false overdue.
    A case with an entry in without a visit (注销, 无法联系…; returned since, or only one
    department's part) keeps the deadline it was entered against: an extension granted after
    a late entry does not make it on time (000 §十, 001 第十六条(三))."""
    due = window_deadline(await ctx.work_calendar(), ctx.rules, task.window_last_day)
    await ctx.session.execute(
        update(Case)
        .where(
            Case.task_id == task.id,
            Case.inspected_on.is_(None),
            nothing_entered(),
        )
        .values(result_due_on=due.day, result_due_provisional=due.provisional)
    )
    return due


# What to do instead of 检查 once the result is in: the date goes with the result itself.
_DATE_LATER = {
    CaseState.SUBMITTED: "检查日期有误的，请审核部门退回后在重新录入结果时写明正确日期",
    CaseState.RETURNED: (
        "重新录入结果时写明检查日期即可：提交 案件号 结果 检查日期，或在结果填报表单中填写"
    ),
}
_CORRECT_LATER = "结果已审核通过，检查日期有误的按更正程序办理：更正 案件号 结果 理由"


async def record_inspection_date(ctx: Ctx, case_code: str, day: dt.date) -> Deadline:
    """The group went on site on `day`; the result is due 20 working days later (000 §十).

    Each department's inspectors check their own department's items (000 §九), so a case whose
    first part is in (部分录入) may still be inspected by the departments whose part is missing:
    the date is recorded as a correction is, the deadline counts from it, and the case stays
    部分录入 (the parts entered stand)."""
    case = await get_case(ctx, case_code, for_update=True)
    actor = await require_member(ctx, case, "case.inspected")
    to = CaseState.PART_ENTERED if case.state == CaseState.PART_ENTERED else CaseState.INSPECTED
    if not CASE.allows(case.state, to):
        refusal = CASE.refusal(case.state, "登记检查日期", case.code)
        raise InvalidTransition(f"{refusal}；{_DATE_LATER.get(case.state, _CORRECT_LATER)}")
    task = await get_task(ctx, case)
    await check_same_visit(ctx, case, day, actor.department_id)
    await check_inspection_day(ctx, task, case, day)
    due = await set_inspected_on(ctx, case, day)
    CASE.move(case, to)
    members = await active_members(ctx, case)
    msg = message(
        "case_inspected",
        f"{case.code} 已登记检查日期",
        case=case,
        target=case.target,
        due=due.label(),
    )
    await record(
        ctx,
        "case.inspected",
        f"case:{case.code}",
        {
            "inspected_on": day.isoformat(),
            "result_due_on": due.day.isoformat(),
            "provisional": due.provisional,
        },
        [Notice(Destination.officer(m.officer_id), msg) for m in members],
    )
    return due


async def mark_notified(
    ctx: Ctx,
    case: Case,
    served: dict[str, Any],
    group: Sequence[GroupMember] | None = None,
) -> None:
    """The 联合抽查通知书 was handed to the target (004 第十六条(二)); `served` is what it showed
    (core.documents.issue_notice), kept with the event for the archive; by a group member, or
    by the operator who handed over the printed notices (core.documents.serve_printed). `case`
    is locked by the caller (`get_case` for_update, or a task's cases at once) and decided on
    as locked; `group`: its active members when loaded."""
    if ctx.actor is not None:
        await require_member(ctx, case, "case.notified", group)
    CASE.move(case, CaseState.NOTIFIED, what="登记已发放通知书", subject=case.code)
    await record(ctx, "case.notified", f"case:{case.code}", served)
