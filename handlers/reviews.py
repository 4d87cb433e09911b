"""通过 / 退回 案件号 [部门] 理由 (review of a submitted result) and 公示 任务编号 (publication).

Who may review or publish is decided in core (PermissionDenied is audited by the dispatcher);
these handlers only parse the words and say what happened.
"""

from __future__ import annotations

from core import cases, jointtask
from core.models import CaseResult, Department, JointTask, Review
from core.publication import publish_task_results
from core.review import named_department, pending_reviewers, reopened_parts, review_result
from core.states import CaseState
from handlers.base import Args, HandlerCtx, UsageError


async def approve(ctx: HandlerCtx, args: Args) -> None:
    code = args.code(0)
    if code is None:
        raise UsageError
    review = await review_result(ctx.core, code, True)
    await _say_reviewed(ctx, code, review)


async def send_back(ctx: HandlerCtx, args: Args) -> None:
    code, text = args.code(0), args.rest_after(1)
    if code is None or not text:
        raise UsageError("退回结果须写明案件号和退回理由。")
    department, reason = await named_department(ctx.core, code, text)
    review = await review_result(ctx.core, code, False, reason, department)
    await _say_reviewed(ctx, code, review)


async def publish(ctx: HandlerCtx, args: Args) -> None:
    code = args.code(0)
    if code is None:
        raise UsageError
    count = await publish_task_results(ctx.core, code)
    task = await jointtask.get_task(ctx.core, code)
    await ctx.say("cmd_published.md.j2", task=task, count=count)


async def _say_reviewed(ctx: HandlerCtx, code: str, review: Review) -> None:
    case = await cases.get_case(ctx.core, code)
    result = await ctx.session.get(CaseResult, review.result_id)
    task = await cases.get_task(ctx.core, case)
    await ctx.say(
        "cmd_reviewed.md.j2",
        case=case,
        result=result,
        review=review,
        task=task,
        pending=await _still_to_review(ctx, task, case.state, review),
        reopened=await reopened_parts(ctx.core, case, task) if review.decision == "return" else [],
    )


async def _still_to_review(
    ctx: HandlerCtx, task: JointTask, case_state: CaseState, review: Review
) -> list[Department]:
    """Departments whose approval the version still waits for after an approval (core tells
    them itself; the reviewer is only told who they are)."""
    if review.decision != "approve" or case_state != CaseState.SUBMITTED:
        return []
    if not ctx.rules.review_requires_participants:
        return [task.lead_department]  # a participant approved; the lead's approval decides
    return await pending_reviewers(ctx.core, task, review.result_id)
