"""Stage 7, publication (公示) of approved results, one case or a whole task, and corrections:
results are versioned rows (CaseResult); a published version is never edited — `correct_result`
adds a version and supersedes the old one (004 第二十条).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from core.cases import (
    advance_task,
    get_case,
    get_task,
    latest_result,
    message,
    participating_departments,
    require_lead_staff,
    result_labels,
    staff_case,
    task_items,
)
from core.changes import Ctx, Notice, record
from core.errors import InvalidTransition, ValidationFailed
from core.jointtask import no_task
from core.messages import Destination, OutMessage
from core.models import (
    Case,
    CaseResult,
    ItemResult,
    JointTask,
    Objection,
)
from core.result_entry import carry_files, new_version, result_data, result_fields
from core.states import (
    CASE,
    OBJECTION,
    RESULT,
    CaseState,
    ObjectionState,
    ResultState,
)


async def publish_approved(ctx: Ctx, case: Case) -> CaseResult:
    result = await latest_result(ctx, case, ResultState.APPROVED)
    if result is None:
        raise CASE.refusal(case.state, "公示（结果尚未审核通过）", case.code)
    CASE.move(case, CaseState.PUBLISHED, what="公示（结果尚未审核通过）", subject=case.code)
    RESULT.move(result, ResultState.PUBLISHED)
    result.published_at = ctx.clock.now()
    return result


async def _department_notices(ctx: Ctx, task: JointTask, msg: OutMessage) -> list[Notice]:
    return [
        Notice(Destination.department(d.id), msg)
        for d in await participating_departments(ctx, task)
    ]


async def publish_case(ctx: Ctx, case_code: str) -> CaseResult:
    case = await get_case(ctx, case_code, for_update=True)
    task = await get_task(ctx, case)
    await require_lead_staff(ctx, task, "case.publish", f"case:{case.code}")
    result = await publish_approved(ctx, case)
    await announce_published(ctx, case, task, result, auto=False)
    return result


async def announce_published(
    ctx: Ctx, case: Case, task: JointTask, result: CaseResult, auto: bool
) -> None:
    msg = message(
        "result_published",
        f"{case.code} 结果已公示",
        task=task,
        cases=[(case, await result_labels(ctx, task, result))],
    )
    data: dict[str, Any] = {"version": result.version, **({"auto": True} if auto else {})}
    await record(
        ctx, "case.published", f"case:{case.code}", data, await _department_notices(ctx, task, msg)
    )
    await advance_task(ctx, task)


async def publish_task_results(ctx: Ctx, task_code: str) -> int:
    """Publish every approved case of the task; one notice per department for the batch."""
    task = await ctx.session.scalar(select(JointTask).where(JointTask.code == task_code))
    if task is None:
        raise no_task(task_code)
    await require_lead_staff(ctx, task, "task.publish", f"task:{task.code}")
    cases = list(
        await ctx.session.scalars(
            select(Case)
            .where(Case.task_id == task.id, Case.state == CaseState.APPROVED)
            .order_by(Case.code)
            .with_for_update(of=Case)
            .execution_options(populate_existing=True)
        )
    )
    if not cases:
        raise ValidationFailed(f"任务 {task.code} 没有审核通过、待公示的结果")
    published = []
    for case in cases:
        result = await publish_approved(ctx, case)
        await record(ctx, "case.published", f"case:{case.code}", {"version": result.version})
        published.append((case, await result_labels(ctx, task, result)))
    msg = message("result_published", f"{task.code} 结果已公示", task=task, cases=published)
    await record(
        ctx,
        "task.results_published",
        f"task:{task.code}",
        {"cases": [c.code for c, _ in published]},
        await _department_notices(ctx, task, msg),
    )
    await advance_task(ctx, task)
    return len(published)


async def _corrected_items(
    ctx: Ctx, task: JointTask, previous: CaseResult, codes: Sequence[str]
) -> list[dict[str, Any]]:
    """A correction that names no items (the chat's 更正: a quick result) is the result of every
    item of the task, as the chat's 提交 is of the officer's own items — the corrected version
    would otherwise show no item results at all. What each item's check covered (检查内容) stays
    as entered; the problems and their handling were the error corrected."""
    content = {
        row.item_id: row.content
        for row in await ctx.session.scalars(
            select(ItemResult).where(ItemResult.result_id == previous.id)
        )
    }
    return [
        {
            "item_id": item.id,
            "codes": list(codes),
            "content": content.get(item.id, ""),
            "problems": "",
            "handling": "",
        }
        for item, _ in await task_items(ctx, task)
    ]


async def correct_result(
    ctx: Ctx,
    case_code: str,
    *,
    reason: str,
    codes: Sequence[str],
    methods: Sequence[str],
    followups: Sequence[str],
    followup_done: bool = False,
    followup_done_on: dt.date | None = None,
    inspected_on: dt.date | None = None,
    item_results: Sequence[dict[str, Any]] = (),
    remarks: str = "",
) -> CaseResult:
    """A published result is corrected by a new published version; the old one is superseded
    and stays readable. Resolves an objection whose re-check found the error."""
    case, task = await staff_case(ctx, case_code, "更正", "case.result.correct")
    assert ctx.actor is not None  # staff checked above
    previous = await latest_result(ctx, case, ResultState.PUBLISHED)
    if previous is None or not CASE.allows(case.state, CaseState.CORRECTED):
        raise CASE.refusal(case.state, "更正（只有已公示的结果可以更正）", case.code)
    if not reason.strip():
        raise ValidationFailed("更正结果时必须写明更正理由")
    objection = await ctx.session.scalar(
        select(Objection).where(
            Objection.case_id == case.id,
            Objection.state.in_((ObjectionState.RECEIVED, ObjectionState.ERROR_FOUND)),
        )
    )
    if objection is not None and objection.state == ObjectionState.RECEIVED:
        raise InvalidTransition("该案件的异议尚未复查，请先登记复查结论")
    result = await new_version(
        ctx,
        case,
        task,
        ctx.actor,
        result_fields(
            codes,
            methods,
            followups,
            followup_done,
            followup_done_on,
            inspected_on,
            item_results or await _corrected_items(ctx, task, previous, codes),
            remarks,
        ),
        ResultState.PUBLISHED,
    )
    result.is_correction, result.published_at = True, ctx.clock.now()
    await carry_files(ctx, previous, result)
    RESULT.move(previous, ResultState.SUPERSEDED)
    CASE.move(case, CaseState.CORRECTED)
    if objection is not None:
        OBJECTION.move(objection, ObjectionState.CORRECTED)
    msg = message(
        "result_corrected",
        f"{case.code} 公示结果已更正",
        case=case,
        target=case.target,
        previous=previous,
        result=result,
        reason=reason.strip(),
        labels=await result_labels(ctx, task, result),
    )
    await record(
        ctx,
        "case.result.corrected",
        f"case:{case.code}",
        {
            **result_data(result),
            "superseded_version": previous.version,
            "reason": reason.strip(),
            "objection_id": objection.id if objection else None,
        },
        await _department_notices(ctx, task, msg),
    )
    return result
