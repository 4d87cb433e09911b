"""Review of a result version (004 第十九条): the lead department and every participating
department may each review a version once (one Review row per department). A return by any of
them sends the result back to the group. With `Rules.review_requires_participants` (the default)
the version is approved once the lead department and every department that accepted the
invitation approved it, in any order; without it the lead's approval alone approves the version.
"""

from __future__ import annotations

from sqlalchemy import select

from core.cases import active_members, latest_result, message, reviewing_departments, staff_case
from core.changes import Ctx, Notice, record
from core.errors import InvalidTransition, ValidationFailed
from core.messages import Destination
from core.models import (
    Case,
    CaseResult,
    Department,
    JointTask,
    Review,
)
from core.publication import announce_published, publish_approved
from core.states import (
    CASE,
    RESULT,
    CaseState,
    ResultState,
)


async def review_result(ctx: Ctx, case_code: str, approve: bool, reason: str = "") -> Review:
    case, task = await staff_case(ctx, case_code, "审核", "case.result.review")
    assert ctx.actor is not None  # staff checked above
    result = await latest_result(ctx, case)
    if result is None or not (
        CASE.allows(case.state, CaseState.APPROVED)
        and RESULT.allows(result.state, ResultState.APPROVED)
    ):
        raise CASE.refusal(case.state, "审核（没有待审核的结果）", case.code)
    done = await ctx.session.scalar(
        select(Review.id).where(
            Review.result_id == result.id, Review.department_id == ctx.actor.department_id
        )
    )
    if done is not None:
        raise InvalidTransition("本部门已审核过该版本的结果")
    reason = reason.strip()
    if not approve and not reason:
        raise ValidationFailed("退回结果时必须写明退回理由", field="reason")
    review = Review(
        result_id=result.id,
        reviewer_id=ctx.actor.id,
        department_id=ctx.actor.department_id,
        decision="approve" if approve else "return",
        reason=reason,
        created_at=ctx.clock.now(),
    )
    ctx.session.add(review)
    notices = await _apply_review(ctx, case, task, result, review)
    await record(
        ctx,
        "case.result.reviewed",
        f"case:{case.code}",
        {
            "version": result.version,
            "decision": review.decision,
            "reason": reason,
            "department_id": review.department_id,
            "case_state": case.state,
        },
        notices,
    )
    if case.state == CaseState.APPROVED and ctx.rules.auto_publish:
        # 004 第十九条: the closing approval publishes at once, whoever gave it
        await announce_published(ctx, case, task, await publish_approved(ctx, case), auto=True)
    return review


async def _apply_review(
    ctx: Ctx, case: Case, task: JointTask, result: CaseResult, review: Review
) -> list[Notice]:
    members = await active_members(ctx, case)
    if review.decision == "return":
        RESULT.move(result, ResultState.RETURNED)
        CASE.move(case, CaseState.RETURNED)
        msg = message(
            "result_returned",
            f"{case.code} 结果被退回",
            case=case,
            target=case.target,
            result=result,
            reason=review.reason,
            reviewer=ctx.actor,
        )
        return [Notice(Destination.officer(m.officer_id), msg) for m in members]
    if ctx.rules.review_requires_participants:
        pending = await pending_reviewers(ctx, task, result.id)
        if pending:
            return await _review_pending_notices(ctx, case, result, review, pending)
    elif review.department_id != task.lead_department_id:
        return []  # a participant's approval is recorded; the lead's approval decides
    RESULT.move(result, ResultState.APPROVED)
    CASE.move(case, CaseState.APPROVED)
    msg = message(
        "result_approved",
        f"{case.code} 结果审核通过",
        case=case,
        target=case.target,
        result=result,
        with_participants=ctx.rules.review_requires_participants,
    )
    return [Notice(Destination.officer(m.officer_id), msg) for m in members]


async def pending_reviewers(ctx: Ctx, task: JointTask, result_id: int) -> list[Department]:
    """Departments whose approval a result version still waits for."""
    await ctx.session.flush()  # the review just added counts
    approved = set(
        await ctx.session.scalars(
            select(Review.department_id).where(
                Review.result_id == result_id, Review.decision == "approve"
            )
        )
    )
    return [d for d in await reviewing_departments(ctx, task) if d.id not in approved]


async def _review_pending_notices(
    ctx: Ctx, case: Case, result: CaseResult, review: Review, pending: list[Department]
) -> list[Notice]:
    """An approval that does not close the review: the departments still to review are told."""
    reviewer = await ctx.session.get(Department, review.department_id)
    msg = message(
        "result_review_pending",
        f"{case.code} 结果待本部门审核",
        case=case,
        target=case.target,
        result=result,
        reviewer=reviewer,
        pending=pending,
    )
    return [Notice(Destination.department(d.id), msg) for d in pending]
