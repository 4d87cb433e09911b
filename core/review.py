"""Stage 6, review of a result version (004 第十九条): the lead department and every participating
department may each review a version once (one Review row per department). A return by any of
them sends the result back to the group. With `Rules.review_requires_participants` (the default)
the version is approved once the lead department and every department that accepted the
invitation approved it, in any order; without it the lead's approval alone approves the version.

A result is reviewed only when it is complete: while a department's part is missing (the case is
部分录入, 000 §九–十) neither 通过 nor 退回 is accepted. A return names one department with a part
(only its part reopens and only its inspectors are told) or none (every part reopens, every
member is told).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core import department_names
from core.cases import (
    active_members,
    get_case,
    get_task,
    latest_result,
    message,
    reviewing_departments,
    staff_case,
)
from core.changes import Ctx, Notice, record
from core.errors import InvalidTransition, ValidationFailed
from core.messages import Destination
from core.models import (
    Case,
    CasePart,
    CaseResult,
    Department,
    JointTask,
    Review,
)
from core.publication import announce_published, publish_approved
from core.result_parts import case_parts, missing_parts, part_departments
from core.rules import written_reason
from core.states import (
    CASE,
    PART,
    RESULT,
    CaseState,
    PartState,
    ResultState,
)


def _names(departments: list[Department]) -> str:
    return "、".join(d.name for d in departments)


async def named_department(ctx: Ctx, case_code: str, text: str) -> tuple[str, str]:
    """`退回 案件号 [部门] 理由`: (department, reason) when the first word names a department —
    by code, name, short name or an informal name (卫健委); otherwise ("", text). The case's
    own departments with a part are read first: a word naming one of them alone is that
    department (its code), however many of the county's it also fits (卫健委: 县卫生健康委员会
    in the case, 县卫生健康局 outside it). Only a word fitting none of them is tried on the
    county's, so that review_result refuses a department outside the case, or one without a
    reason, rather than reading its name as the reason for a whole return. So is a word naming
    none that looks like a department's name (卫建委), for a refusal naming the one meant: read
    as the reason, it sent every department's part back."""
    head, _, rest = text.strip().partition(" ")
    case = await get_case(ctx, case_code)
    own = department_names.named(await part_departments(ctx, await get_task(ctx, case)), head)
    if len(own) == 1:
        return own[0].code, rest.strip()
    county = list(await ctx.session.scalars(select(Department)))
    if (
        own
        or department_names.named(county, head)
        or department_names.looks_like_a_name(county, head)
    ):
        return head, rest.strip()
    return "", text


async def review_result(
    ctx: Ctx, case_code: str, approve: bool, reason: str = "", department: str = ""
) -> Review:
    """通过 / 退回 a complete result; `department` (code, name, short name or an informal name
    that fits one department alone, core.department_names) names the one department whose part
    a return reopens."""
    case, task = await staff_case(ctx, case_code, "审核", "case.result.review")
    assert ctx.actor is not None  # staff checked above
    if case.state == CaseState.PART_ENTERED:
        missing = await missing_parts(ctx, case, task)
        raise InvalidTransition(
            f"案件 {case.code} 尚有{_names(missing)}未录入本部门检查事项的结果（部分录入），"
            "各部门全部录入后才能审核（谁检查、谁录入）"
        )
    reopened = (
        None if approve or not department.strip() else [await _part_of(ctx, task, department)]
    )
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
    if not approve or reason.strip():  # an approval's words (the review page) are optional
        whose = "退回结果时必须" if reopened is None else f"退回{_names(reopened)}录入的部分，请"
        reason = written_reason(
            reason,
            "退回理由" if not approve else "审核意见",
            "请写明需要检查组补正的内容",
            min_chars=0 if approve else 1,
            missing=f"{whose}写明退回理由",
            field="reason",
        )
    review = Review(
        result_id=result.id,
        reviewer_id=ctx.actor.id,
        department_id=ctx.actor.department_id,
        decision="approve" if approve else "return",
        reason=reason,
        created_at=ctx.clock.now(),
    )
    ctx.session.add(review)
    if approve:
        notices = await _apply_approval(ctx, case, task, result, review)
        data: dict[str, object] = {}
    else:
        parts = await _reopen(ctx, case, task, result, reopened)
        notices = await _return_notices(ctx, case, result, review, parts, whole=reopened is None)
        data = {"reopened": [d.code for d in parts]}
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
            **data,
        },
        notices,
    )
    if case.state == CaseState.APPROVED and ctx.rules.auto_publish:
        # 004 第十九条: the closing approval publishes at once, whoever gave it
        await announce_published(ctx, case, task, await publish_approved(ctx, case), auto=True)
    return review


async def _part_of(ctx: Ctx, task: JointTask, word: str) -> Department:
    """The one department with a part in the case that `word` names; a refusal saying which
    may be named otherwise."""
    parts = await part_departments(ctx, task)
    found = department_names.named(parts, word)
    if len(found) > 1:
        raise ValidationFailed(department_names.ambiguous(word, found), field="department")
    if found:
        return found[0]
    county = list(await ctx.session.scalars(select(Department)))
    said = (
        f"{word.strip()}未参加该案件，没有其录入的部分"
        if department_names.named(county, word)
        else f"“{word.strip()}”不是本案录入结果的部门{department_names.did_you_mean(parts, word)}"
    )
    then = "" if said.endswith("？") else "；"  # after a question: no second stop
    raise ValidationFailed(
        f"{said}{then}可退回给：{_names(parts)}，不写部门则退回全部部门录入的部分",
        field="department",
    )


def reopened_codes(data: dict[str, Any] | None) -> list[str]:
    """The department codes a `case.result.reviewed` audit event names as reopened (a return's;
    none for an approval, or an event without data)."""
    return list((data or {}).get("reopened") or [])


async def reopened_parts(ctx: Ctx, case: Case, task: JointTask) -> list[Department]:
    """After a return: the departments whose part it reopened when it named one, [] when it
    reopened every part (the whole result went back to the group)."""
    reopened = await missing_parts(ctx, case, task)
    return [] if len(reopened) == len(await part_departments(ctx, task)) else reopened


async def _reopen(
    ctx: Ctx, case: Case, task: JointTask, result: CaseResult, named: list[Department] | None
) -> list[Department]:
    """A return sends the result back to the group (004 第十九条) and reopens the named
    department's part, or every part; the departments whose part reopened."""
    RESULT.move(result, ResultState.RETURNED)
    CASE.move(case, CaseState.RETURNED)
    parts: dict[int, CasePart] = await case_parts(ctx, case)
    departments = named if named is not None else await part_departments(ctx, task)
    for d in departments:
        part = parts.get(d.id)
        if part is not None and part.state == PartState.ENTERED:
            PART.move(part, PartState.RETURNED)
    return departments


async def _return_notices(
    ctx: Ctx,
    case: Case,
    result: CaseResult,
    review: Review,
    reopened: list[Department],
    *,
    whole: bool,
) -> list[Notice]:
    """Every member for a whole return; the named department's inspectors for its part."""
    named = {d.id for d in reopened}
    msg = message(
        "result_returned",
        f"{case.code} 结果被退回",
        case=case,
        target=case.target,
        result=result,
        reason=review.reason,
        reviewer=ctx.actor,
        reopened=reopened,
        whole=whole,
    )
    return [
        Notice(Destination.officer(m.officer_id), msg)
        for m in await active_members(ctx, case)
        if whole or m.department_id in named
    ]


async def _apply_approval(
    ctx: Ctx, case: Case, task: JointTask, result: CaseResult, review: Review
) -> list[Notice]:
    members = await active_members(ctx, case)
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
        # 004 第十九条: the closing approval publishes at once (review_result does it next)
        published=ctx.rules.auto_publish,
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
