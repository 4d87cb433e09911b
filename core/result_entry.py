"""Stage 5, result entry: a group member enters the case's result (codes, methods, follow-ups, each
item's findings) as a new version (CaseResult); late entry is accepted and flagged. Review is
core.review; a published version is never edited (core.publication.correct_result).

谁检查、谁录入 (000 §九–十): each department's inspectors enter their own department's items
(its part, CasePart); the case goes to review only when every department with items in the task
has entered its part. Until then it is `part_entered` and each missing department's inspectors
in the group are told which part waits for them, against the case's one result deadline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.cases import (
    AFTER_APPROVAL,
    active_members,
    advance_task,
    department_categories,
    get_case,
    get_task,
    message,
    participating_departments,
    require_member,
    result_labels,
    reviewing_departments,
    staff_of,
)
from core.changes import Ctx, Notice, record
from core.errors import InvalidTransition, ValidationFailed
from core.inspection import check_inspection_day, result_deadline, set_inspected_on
from core.messages import Destination
from core.models import (
    Case,
    CaseResult,
    Department,
    Item,
    ItemResult,
    JointTask,
    Officer,
    Referral,
    TaskItem,
)
from core.result_parts import enter_part, missing_parts, own_parts, part_departments
from core.results import (
    REFERRAL_FOLLOWUPS,
    Category,
    check_codes,
    validate_result,
)
from core.states import (
    CASE,
    RESULT,
    CaseState,
    ResultState,
)


async def _validated_items(
    session: AsyncSession,
    task: JointTask,
    codes: Sequence[str],
    item_results: Sequence[dict[str, Any]],
    extra: Sequence[Category],
) -> list[dict[str, Any]]:
    task_items = set(
        await session.scalars(select(TaskItem.item_id).where(TaskItem.task_id == task.id))
    )
    seen: set[int] = set()
    cleaned: list[dict[str, Any]] = []
    for entry in item_results:
        item_id = int(entry["item_id"])
        if item_id not in task_items:
            raise ValidationFailed(f"事项 {item_id} 不属于本次抽查任务")
        if item_id in seen:
            raise ValidationFailed(f"事项 {item_id} 的结果填写了两次")
        seen.add(item_id)
        item_codes = list(entry.get("codes") or [])
        if item_codes:
            check_codes(item_codes, extra)
        if "1" in codes and any(c != "1" for c in item_codes):
            raise ValidationFailed("有事项发现问题或情况，案件结论不能为“未发现问题”")
        cleaned.append(
            {
                "item_id": item_id,
                "codes": item_codes,
                "content": str(entry.get("content", "")),
                "problems": str(entry.get("problems", "")),
                "handling": str(entry.get("handling", "")),
            }
        )
    return cleaned


async def _check_referrals(session: AsyncSession, case: Case, followups: Sequence[str]) -> None:
    if not any(kind in REFERRAL_FOLLOWUPS for kind in followups):
        return
    kinds = set(await session.scalars(select(Referral.kind).where(Referral.case_id == case.id)))
    for kind in followups:
        if kind in REFERRAL_FOLLOWUPS and kind not in kinds:
            raise ValidationFailed(
                f"后续处置选择了“{kind}”，请先登记移送记录（接收单位和移送内容）", field="referral"
            )


async def _next_version(session: AsyncSession, case: Case) -> int:
    latest = await session.scalar(
        select(func.max(CaseResult.version)).where(CaseResult.case_id == case.id)
    )
    return (latest or 0) + 1


async def new_version(
    ctx: Ctx,
    case: Case,
    task: JointTask,
    entered_by: Officer,
    fields: dict[str, Any],
    state: ResultState,
    departments: Sequence[Department] | None = None,
) -> CaseResult:
    """Validate a result and add it as the next version, in `state`; `departments`: the task's
    participating departments if the caller has them already."""
    if departments is None:
        departments = await participating_departments(ctx, task)
    extra = department_categories(departments)
    today = ctx.clock.today()
    inspected_on = fields["inspected_on"] or case.inspected_on
    validate_result(
        fields["codes"],
        fields["methods"],
        fields["followups"],
        inspected_on,
        today=today,
        extra=extra,
        followup_done=fields["followup_done"],
        followup_done_on=fields["followup_done_on"],
    )
    items = await _validated_items(
        ctx.session, task, fields["codes"], fields["item_results"], extra
    )
    await _check_referrals(ctx.session, case, fields["followups"])
    if inspected_on is not None and inspected_on != case.inspected_on:
        await check_inspection_day(ctx, task, inspected_on)
        await set_inspected_on(ctx, case, inspected_on)
    result = CaseResult(
        case_id=case.id,
        version=await _next_version(ctx.session, case),
        state=RESULT.start(state),
        codes=list(fields["codes"]),
        methods=list(fields["methods"]),
        followups=list(fields["followups"]),
        followup_done=fields["followup_done"],
        followup_done_on=fields["followup_done_on"],
        inspected_on=inspected_on,
        remarks=fields["remarks"],
        entered_by_id=entered_by.id,
        entered_at=ctx.clock.now(),
    )
    ctx.session.add(result)
    await ctx.session.flush()
    ctx.session.add_all(ItemResult(result_id=result.id, **item) for item in items)
    return result


def result_fields(
    codes: Sequence[str],
    methods: Sequence[str],
    followups: Sequence[str],
    followup_done: bool,
    followup_done_on: dt.date | None,
    inspected_on: dt.date | None,
    item_results: Sequence[dict[str, Any]],
    remarks: str,
) -> dict[str, Any]:
    return {
        "codes": list(codes),
        "methods": list(methods),
        "followups": list(followups),
        "followup_done": followup_done,
        "followup_done_on": followup_done_on,
        "inspected_on": inspected_on,
        "item_results": list(item_results),
        "remarks": remarks.strip(),
    }


def result_data(result: CaseResult) -> dict[str, Any]:
    return {
        "version": result.version,
        "codes": result.codes,
        "methods": result.methods,
        "followups": result.followups,
        "inspected_on": result.inspected_on.isoformat() if result.inspected_on else None,
    }


async def submit_result(
    ctx: Ctx,
    case_code: str,
    *,
    codes: Sequence[str],
    methods: Sequence[str],
    followups: Sequence[str],
    followup_done: bool = False,
    followup_done_on: dt.date | None = None,
    inspected_on: dt.date | None = None,
    item_results: Sequence[dict[str, Any]] = (),
    remarks: str = "",
) -> CaseResult:
    """A group member enters the result; late entry is accepted and flagged (rule 7).

    Lateness is judged from the inspection date, 20 working days after it (000 §十, 001 第十六条
    (三)), whether the date was recorded on site or comes with this result: the leaders'
    summary counts from the same date, so both say the same. Without any inspection date the
    deadline is the window end + result_entry_workdays.
    """
    case = await get_case(ctx, case_code, for_update=True)
    actor = await require_member(ctx, case, "case.result.submit")
    if case.state == CaseState.SUBMITTED:
        raise InvalidTransition("结果已提交，正在审核中")
    if case.state in AFTER_APPROVAL:
        raise InvalidTransition("结果已审核通过，不能重新提交；如有错误请由审核部门更正")
    task = await get_task(ctx, case)
    item_results = await own_parts(ctx, case, task, actor, item_results, codes)
    departments = await participating_departments(ctx, task)
    with_parts = await part_departments(ctx, task)
    own_part = any(d.id == actor.department_id for d in with_parts)
    missing = [
        d
        for d in await missing_parts(ctx, case, task)
        if not (own_part and d.id == actor.department_id)
    ]
    result = await new_version(
        ctx,
        case,
        task,
        actor,
        result_fields(
            codes,
            methods,
            followups,
            followup_done,
            followup_done_on,
            inspected_on,
            item_results,
            remarks,
        ),
        ResultState.PART_ENTERED if missing else ResultState.SUBMITTED,
        departments,
    )
    if own_part:
        await enter_part(ctx, case, actor.department_id, result, actor)
    due = result_deadline(await ctx.work_calendar(), ctx.rules, case, task)
    late = ctx.clock.today() > due.day
    if missing:
        await _part_entered(ctx, case, task, result, actor, missing, due.label(), late)
        return result
    CASE.move(case, CaseState.SUBMITTED)
    reviewers = (
        await reviewing_departments(ctx, task)
        if ctx.rules.review_requires_participants
        else [task.lead_department]
    )
    msg = message(
        "result_submitted",
        f"{case.code} 结果待审核",
        case=case,
        target=case.target,
        task=task,
        result=result,
        labels=await result_labels(ctx, task, result, departments),
        late=late,
        due=due.label(),
        entered_by=actor,
    )
    staff = [
        Notice(Destination.officer(officer_id), msg)
        for officer_id in await staff_of(ctx, [d.id for d in reviewers])
    ]
    await record(
        ctx,
        "case.result.submitted",
        f"case:{case.code}",
        {**result_data(result), "late": late, "result_due_on": due.day.isoformat()},
        [Notice(Destination.department(d.id), msg) for d in reviewers] + staff,
    )
    await advance_task(ctx, task)
    return result


async def _part_entered(
    ctx: Ctx,
    case: Case,
    task: JointTask,
    result: CaseResult,
    actor: Officer,
    missing: Sequence[Department],
    due: str,
    late: bool,
) -> None:
    """A part is in, others are not (000 §九–十): the case waits as 部分录入 and the inspectors
    of each missing department in the group are told which part is theirs to enter."""
    CASE.move(case, CaseState.PART_ENTERED)
    entered_by = await ctx.session.get(Department, actor.department_id)
    items = await _items_of(ctx, task, [d.id for d in missing])
    missing_ids = {d.id for d in missing}
    notices = []
    for member in await active_members(ctx, case):
        if member.department_id not in missing_ids:
            continue
        department = next(d for d in missing if d.id == member.department_id)
        notices.append(
            Notice(
                Destination.officer(member.officer_id),
                message(
                    "result_part_waiting",
                    f"{case.code} 待录入本部门检查结果",
                    case=case,
                    target=case.target,
                    result=result,
                    entered_by=actor,
                    entered_department=entered_by,
                    department=department,
                    items=items.get(department.id, []),
                    missing=missing,
                    due=due,
                    late=late,
                ),
            )
        )
    await record(
        ctx,
        "case.result.part_entered",
        f"case:{case.code}",
        {
            **result_data(result),
            "department_id": actor.department_id,
            "missing": [d.code for d in missing],
            "late": late,
        },
        notices,
    )


async def _items_of(
    ctx: Ctx, task: JointTask, department_ids: Sequence[int]
) -> dict[int, list[str]]:
    rows = await ctx.session.execute(
        select(TaskItem.department_id, Item.name)
        .join(Item, Item.id == TaskItem.item_id)
        .where(TaskItem.task_id == task.id, TaskItem.department_id.in_(department_ids))
        .order_by(Item.code)
    )
    found: dict[int, list[str]] = {}
    for department_id, name in rows.all():
        found.setdefault(department_id, []).append(name)
    return found
