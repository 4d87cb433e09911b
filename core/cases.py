"""Per-target inspection cases: notice, inspection date, results, review, publication.

Case and result states and their allowed moves are declared in core/states.py (CASE, RESULT).
Results are versioned rows (CaseResult); a published version is never edited —
`correct_result` adds a version and supersedes the old one (004 第二十条).

Review (004 第十九条): the lead department and every participating department may each review a
version once (one Review row per department). A return by any of them sends the result back to
the group. With `Rules.review_requires_participants` (the default) the version is approved once
the lead department and every department that accepted the invitation approved it, in any
order; without it the lead's approval alone approves the version.

Every transition loads its case with a row lock (`get_case(..., for_update=True)`), so two
concurrent reviews or a review racing a resubmission serialise on PostgreSQL and the second one
sees the first one's outcome.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import jointtask
from core.access import lead_only
from core.changes import Ctx, Notice, record
from core.clock import CHINA_TZ
from core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from core.messages import Destination, OutMessage
from core.models import (
    Case,
    CaseResult,
    Department,
    Draw,
    GroupMember,
    Invitation,
    Item,
    ItemResult,
    JointTask,
    Objection,
    Officer,
    Referral,
    Review,
    TaskItem,
)
from core.render import render
from core.results import (
    CATEGORIES,
    REFERRAL_FOLLOWUPS,
    Category,
    check_codes,
    department_category,
    label,
    validate_result,
)
from core.rules import Rules
from core.states import (
    CASE,
    OBJECTION,
    RESULT,
    TASK,
    CaseState,
    DrawState,
    InvitationState,
    ObjectionState,
    ResultState,
    TaskState,
)
from core.workdays import Deadline, WorkCalendar

OPEN_FOR_ENTRY = (CaseState.ASSIGNED, CaseState.NOTIFIED, CaseState.INSPECTED, CaseState.RETURNED)
AFTER_APPROVAL = (CaseState.APPROVED, CaseState.PUBLISHED, CaseState.OBJECTED, CaseState.CORRECTED)
REFERRAL_KINDS = ("移送办案机构", "抄告相关部门", "移送司法机关", "其他")


def china_date(at: dt.datetime) -> dt.date:
    return at.astimezone(CHINA_TZ).date()


def message(template: str, title: str, **context: Any) -> OutMessage:
    return OutMessage.md(title, render(f"messages/{template}.md.j2", **context))


# ---------------------------------------------------------------- loading and permissions


async def get_case(ctx: Ctx, case_code: str, *, for_update: bool = False) -> Case:
    """`for_update` locks the row until commit and reloads it, so a transition decides on the
    state as committed by whoever held the lock before (not a stale copy in this ctx.session)."""
    query = select(Case).where(Case.code == case_code.strip().upper())
    if for_update:
        query = query.with_for_update(of=Case).execution_options(populate_existing=True)
    case = await ctx.session.scalar(query)
    if case is None:
        raise NotFound(f"找不到案件 {case_code}")
    return case


async def get_task(ctx: Ctx, case: Case) -> JointTask:
    task = await ctx.session.get(JointTask, case.task_id)
    assert task is not None  # foreign key
    return task


async def active_members(ctx: Ctx, case: Case) -> list[GroupMember]:
    rows = await ctx.session.scalars(
        select(GroupMember)
        .where(GroupMember.case_id == case.id, GroupMember.active.is_(True))
        .order_by(GroupMember.is_leader.desc(), GroupMember.id)
    )
    return list(rows)


async def participating_departments(ctx: Ctx, task: JointTask) -> list[Department]:
    """The lead first, then departments that accepted or check items in the task."""
    accepted = select(Invitation.department_id).where(
        Invitation.task_id == task.id, Invitation.state == InvitationState.ACCEPTED
    )
    with_items = select(TaskItem.department_id).where(TaskItem.task_id == task.id)
    rows = await ctx.session.scalars(
        select(Department)
        .where(
            Department.id.in_(accepted)
            | Department.id.in_(with_items)
            | (Department.id == task.lead_department_id)
        )
        .order_by(Department.id)
    )
    return sorted(rows, key=lambda d: d.id != task.lead_department_id)


async def sees_inside(ctx: Ctx, task: JointTask) -> bool:
    """Whether the actor may see a task's invitations, cases, groups, inspector draws and
    results before they are published: the system, the office's admin and the task's own
    departments. Everyone else sees what the public side shows (002 二(六): results are made
    public by publication)."""
    actor = ctx.actor
    if actor is None or actor.has_role("admin"):
        return True
    return actor.department_id in {d.id for d in await participating_departments(ctx, task)}


def department_categories(departments: Sequence[Department]) -> list[Category]:
    return [
        department_category(d.code, d.short_name or d.name)
        for d in departments
        if not d.is_market_regulator
    ]


def is_staff(officer: Officer | None, department_ids: Sequence[int]) -> bool:
    """A liaison or leader of one of the departments."""
    return (
        officer is not None
        and officer.department_id in department_ids
        and (officer.has_role("liaison") or officer.has_role("leader"))
    )


def require(allowed: bool, message_text: str, action: str, subject: str) -> None:
    """PermissionDenied carries action and subject so the caller audits the refusal."""
    if not allowed:
        raise PermissionDenied(message_text, action=f"{action}.denied", subject=subject)


async def require_member(ctx: Ctx, case: Case, action: str) -> Officer:
    members = await active_members(ctx, case)
    actor = ctx.actor
    require(
        actor is not None and any(m.officer_id == actor.id for m in members),
        "只有本案检查组成员可以提交结果"
        if action == "case.result.submit"
        else "只有本案检查组成员可以办理此事项",
        action,
        f"case:{case.code}",
    )
    assert actor is not None
    return actor


# ---------------------------------------------------------------- deadlines


def result_deadline(cal: WorkCalendar, rules: Rules, case: Case, task: JointTask) -> Deadline:
    """Results are due 20 working days after the inspection, or after the task window when no
    inspection date is known yet (docs/architecture.md §4)."""
    if case.inspected_on is not None and case.result_due_on is not None:
        return Deadline(case.result_due_on, case.result_due_provisional)
    return cal.add_workdays(task.window_end, rules.result_entry_workdays)


async def _set_inspected_on(ctx: Ctx, case: Case, day: dt.date) -> Deadline:
    cal = await ctx.work_calendar()
    due = cal.add_workdays(day, ctx.rules.result_entry_workdays)
    case.inspected_on, case.result_due_on, case.result_due_provisional = (
        day,
        due.day,
        due.provisional,
    )
    return due


async def check_inspection_day(ctx: Ctx, task: JointTask, day: dt.date) -> None:
    """An inspection happens after the draw was locked, within the task window (or the
    extension the lead recorded with a reason, 000 §五.3), and not in the future."""
    if day > ctx.clock.today():
        raise ValidationFailed("检查日期不能晚于今天", field="inspected_on")
    if day < task.window_start:
        raise ValidationFailed(
            f"检查日期早于任务检查时间（{task.window_start.isoformat()} 起）", field="inspected_on"
        )
    locked_at = await ctx.session.scalar(
        select(func.min(Draw.locked_at)).where(
            Draw.task_id == task.id, Draw.kind == "targets", Draw.state == DrawState.LOCKED
        )
    )
    if locked_at is not None and day < china_date(locked_at):
        raise ValidationFailed(
            f"检查日期早于检查对象名单锁定之日（{china_date(locked_at).isoformat()}）",
            field="inspected_on",
        )
    last = task.window_extended_to or task.window_end
    if day > last:
        raise ValidationFailed(
            f"检查日期晚于任务检查时间（至 {last.isoformat()}）。如需延期，请牵头部门发送"
            f"“延期 {task.code} 日期 理由”",
            field="inspected_on",
        )


async def extend_window(ctx: Ctx, task_code: str, to: dt.date, reason: str) -> JointTask:
    """The lead extends the inspection window with a written reason (000 §五.3: 检查时间…确需
    延长的…); inspections dated up to `to` are then accepted. Audited; participants are told."""
    task = await jointtask.get_task(ctx, task_code, for_update=True)
    lead_only(ctx, task, "task.window_extended")
    reason = reason.strip()
    if len(reason) < ctx.rules.decline_reason_min_chars:
        raise ValidationFailed(
            f"请写明延期理由（不少于 {ctx.rules.decline_reason_min_chars} 个字）"
        )
    if to <= (task.window_extended_to or task.window_end):
        raise ValidationFailed(
            f"延期后的日期须晚于现在的检查截止日 "
            f"{(task.window_extended_to or task.window_end).isoformat()}"
        )
    previous = task.window_extended_to or task.window_end
    task.window_extended_to, task.window_extension_reason = to, reason
    departments = await participating_departments(ctx, task)
    msg = message(
        "task_window_extended",
        f"{task.code} 检查时间延期",
        task=task,
        previous=previous,
        reason=reason,
    )
    await record(
        ctx,
        "task.window_extended",
        f"task:{task.code}",
        {"from": previous.isoformat(), "to": to.isoformat(), "reason": reason},
        [Notice(Destination.department(d.id), msg) for d in departments],
    )
    return task


async def record_inspection_date(ctx: Ctx, case_code: str, day: dt.date) -> Deadline:
    case = await get_case(ctx, case_code, for_update=True)
    await require_member(ctx, case, "case.inspected")
    CASE.check(case, CaseState.INSPECTED, what="登记检查日期", subject=case.code)
    task = await get_task(ctx, case)
    await check_inspection_day(ctx, task, day)
    due = await _set_inspected_on(ctx, case, day)
    CASE.move(case, CaseState.INSPECTED)
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


async def mark_notified(ctx: Ctx, case_code: str, via: str = "") -> Case:
    """The 联合抽查通知书 was handed to the target (004 第十六条(二))."""
    case = await get_case(ctx, case_code, for_update=True)
    await require_member(ctx, case, "case.notified")
    CASE.move(case, CaseState.NOTIFIED, what="登记已发放通知书", subject=case.code)
    await record(ctx, "case.notified", f"case:{case.code}", {"via": via} if via else None)
    return case


# ---------------------------------------------------------------- results


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


async def latest_result(
    ctx: Ctx, case: Case, state: ResultState | None = None
) -> CaseResult | None:
    query = select(CaseResult).where(CaseResult.case_id == case.id)
    if state is not None:
        query = query.where(CaseResult.state == state)
    return await ctx.session.scalar(query.order_by(CaseResult.version.desc()).limit(1))


async def _new_version(
    ctx: Ctx,
    case: Case,
    task: JointTask,
    entered_by: Officer,
    fields: dict[str, Any],
    state: ResultState,
) -> CaseResult:
    """Validate a result and add it as the next version, in `state`."""
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
        await _set_inspected_on(ctx, case, inspected_on)
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


def _fields(
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


def _result_data(result: CaseResult) -> dict[str, Any]:
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
    result = await _new_version(
        ctx,
        case,
        task,
        actor,
        _fields(
            codes,
            methods,
            followups,
            followup_done,
            followup_done_on,
            inspected_on,
            item_results,
            remarks,
        ),
        ResultState.SUBMITTED,
    )
    due = result_deadline(await ctx.work_calendar(), ctx.rules, case, task)
    late = ctx.clock.today() > due.day
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
        labels=await _labels(ctx, task, result),
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
        {**_result_data(result), "late": late, "result_due_on": due.day.isoformat()},
        [Notice(Destination.department(d.id), msg) for d in reviewers] + staff,
    )
    await advance_task(ctx, task)
    return result


async def staff_of(ctx: Ctx, department_ids: Sequence[int]) -> list[int]:
    """Active liaisons and leaders of the departments: each gets the review page privately
    (a group copy of the notice carries no signed link)."""
    rows = await ctx.session.scalars(
        select(Officer)
        .where(Officer.department_id.in_(department_ids), Officer.active.is_(True))
        .order_by(Officer.id)
    )
    return [o.id for o in rows if o.has_role("liaison") or o.has_role("leader")]


async def _extra(ctx: Ctx, task: JointTask) -> list[Category]:
    return department_categories(await participating_departments(ctx, task))


async def _labels(ctx: Ctx, task: JointTask, result: CaseResult) -> list[str]:
    extra = await _extra(ctx, task)
    return [label(c, extra) for c in result.codes]


async def _staff_case(ctx: Ctx, case_code: str, verb: str, action: str) -> tuple[Case, JointTask]:
    """The case, locked, for a step only the lead's or a participant's staff may take."""
    case = await get_case(ctx, case_code, for_update=True)
    task = await get_task(ctx, case)
    departments = [d.id for d in await participating_departments(ctx, task)]
    require(
        is_staff(ctx.actor, departments),
        f"只有发起部门或参与部门的联络员、分管领导可以{verb}结果",
        action,
        f"case:{case.code}",
    )
    return case, task


async def review_result(ctx: Ctx, case_code: str, approve: bool, reason: str = "") -> Review:
    case, task = await _staff_case(ctx, case_code, "审核", "case.result.review")
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
        await _announce_published(ctx, case, task, await _publish(ctx, case), auto=True)
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


async def reviewing_departments(ctx: Ctx, task: JointTask) -> list[Department]:
    """Who must approve a version (004 第十九条): the lead and every department that accepted."""
    accepted = select(Invitation.department_id).where(
        Invitation.task_id == task.id, Invitation.state == InvitationState.ACCEPTED
    )
    rows = await ctx.session.scalars(
        select(Department)
        .where(Department.id.in_(accepted) | (Department.id == task.lead_department_id))
        .order_by(Department.id)
    )
    return sorted(rows, key=lambda d: d.id != task.lead_department_id)


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


# ---------------------------------------------------------------- publication and corrections


async def require_lead_staff(ctx: Ctx, task: JointTask, action: str, subject: str) -> None:
    """The lead department's liaison or leader; the system (scheduler, CLI) may act too."""
    require(
        ctx.actor is None or is_staff(ctx.actor, [task.lead_department_id]),
        "只有发起部门的联络员、分管领导可以办理此事项",
        action,
        subject,
    )


# Task stage follows its cases: every case has a result → reviewing; all published → published.
_PUBLIC = frozenset({CaseState.PUBLISHED, CaseState.OBJECTED, CaseState.CORRECTED})
_RESULT_IN = frozenset({CaseState.SUBMITTED, CaseState.APPROVED, CaseState.RETURNED, *_PUBLIC})


async def advance_task(ctx: Ctx, task: JointTask) -> None:
    """Move the task to the stage its cases have reached (audited once per move)."""
    await ctx.session.flush()
    states = set(await ctx.session.scalars(select(Case.state).where(Case.task_id == task.id)))
    if not states or task.state not in (TaskState.INSPECTING, TaskState.REVIEWING):
        return
    stage = (
        TaskState.PUBLISHED
        if states <= _PUBLIC
        else TaskState.REVIEWING
        if states <= _RESULT_IN
        else task.state
    )
    if stage != task.state:
        before = task.state
        TASK.move(task, TaskState(stage))
        await record(ctx, "task.stage", f"task:{task.code}", {"from": before, "to": stage})


async def _publish(ctx: Ctx, case: Case) -> CaseResult:
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
    result = await _publish(ctx, case)
    await _announce_published(ctx, case, task, result, auto=False)
    return result


async def _announce_published(
    ctx: Ctx, case: Case, task: JointTask, result: CaseResult, auto: bool
) -> None:
    msg = message(
        "result_published",
        f"{case.code} 结果已公示",
        task=task,
        cases=[(case, await _labels(ctx, task, result))],
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
        raise NotFound(f"找不到任务 {task_code}")
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
        result = await _publish(ctx, case)
        await record(ctx, "case.published", f"case:{case.code}", {"version": result.version})
        published.append((case, await _labels(ctx, task, result)))
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
    case, task = await _staff_case(ctx, case_code, "更正", "case.result.correct")
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
    result = await _new_version(
        ctx,
        case,
        task,
        ctx.actor,
        _fields(
            codes,
            methods,
            followups,
            followup_done,
            followup_done_on,
            inspected_on,
            item_results,
            remarks,
        ),
        ResultState.PUBLISHED,
    )
    result.is_correction, result.published_at = True, ctx.clock.now()
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
        labels=await _labels(ctx, task, result),
    )
    await record(
        ctx,
        "case.result.corrected",
        f"case:{case.code}",
        {
            **_result_data(result),
            "superseded_version": previous.version,
            "reason": reason.strip(),
            "objection_id": objection.id if objection else None,
        },
        await _department_notices(ctx, task, msg),
    )
    return result


async def add_referral(
    ctx: Ctx,
    case_code: str,
    kind: str,
    to_department: str,
    content: str,
    *,
    department: Department | None = None,
) -> Referral:
    """移交 / 移送 of a problem found (004 第二十一条); a group member or lead staff records it.
    A `department` of the county gets it in its chat and must acknowledge it (签收)."""
    case = await get_case(ctx, case_code)
    task = await get_task(ctx, case)
    members = await active_members(ctx, case)
    actor = ctx.actor
    require(
        actor is not None
        and (
            any(m.officer_id == actor.id for m in members)
            or is_staff(actor, [task.lead_department_id])
        ),
        "只有本案检查组成员或发起部门联络员可以登记移送",
        "case.referral",
        f"case:{case.code}",
    )
    assert actor is not None
    if kind not in REFERRAL_KINDS:
        raise ValidationFailed(f"未知的移送方式“{kind}”，可选：{'、'.join(REFERRAL_KINDS)}")
    if not to_department.strip() or not content.strip():
        raise ValidationFailed("请填写接收单位和移送内容")
    referral = Referral(
        case_id=case.id,
        kind=kind,
        to_department=to_department.strip(),
        content=content.strip(),
        created_by_id=actor.id,
        created_at=ctx.clock.now(),
        to_department_id=department.id if department else None,
    )
    ctx.session.add(referral)
    msg = message(
        "case_referral",
        f"{case.code} {kind}",
        case=case,
        target=case.target,
        referral=referral,
        by=actor,
        to_acknowledge=False,
    )
    notices = [Notice(Destination.department(task.lead_department_id), msg)]
    if department is not None and department.id != task.lead_department_id:
        notices.append(
            Notice(
                Destination.department(department.id),
                message(
                    "case_referral",
                    f"{case.code} {kind}：请签收",
                    case=case,
                    target=case.target,
                    referral=referral,
                    by=actor,
                    to_acknowledge=True,
                ),
            )
        )
    await record(
        ctx,
        "case.referral",
        f"case:{case.code}",
        {"kind": kind, "to": referral.to_department, "to_department_id": referral.to_department_id},
        notices,
    )
    return referral


# ---------------------------------------------------------------- documents


async def case_document_context(ctx: Ctx, case_code: str) -> dict[str, Any]:
    """Everything the 联合抽查通知书 and the 检查记录表 (一企一表) templates show."""
    case = await get_case(ctx, case_code)
    task = await get_task(ctx, case)
    departments = await participating_departments(ctx, task)
    extra = department_categories(departments)
    result = await latest_result(ctx, case)
    item_rows = (
        await ctx.session.execute(
            select(Item, Department)
            .join(TaskItem, TaskItem.item_id == Item.id)
            .join(Department, Department.id == TaskItem.department_id)
            .where(TaskItem.task_id == task.id)
            .order_by(Department.id, Item.code)
        )
    ).all()
    by_item = {}
    if result is not None:
        by_item = {
            r.item_id: r
            for r in await ctx.session.scalars(
                select(ItemResult).where(ItemResult.result_id == result.id)
            )
        }
    items = []
    for item, dept in item_rows:
        found = by_item.get(item.id)
        items.append(
            {
                "department": dept.name,
                "code": item.code,
                "name": item.name,
                "key": item.category == "key",
                "basis": item.basis,
                "result": found,
                "labels": [label(c, extra) for c in found.codes] if found else [],
            }
        )
    members = await active_members(ctx, case)
    inspectors = [
        {
            "name": m.officer.name,
            "cert_no": m.officer.cert_no,
            "department": m.officer.department.name,
            "is_leader": m.is_leader,
        }
        for m in members
    ]
    return {
        "case": case,
        "task": task,
        "target": case.target,
        "lead_department": task.lead_department,
        "departments": departments,
        "items": items,
        "inspectors": inspectors,
        "result": result,
        "result_labels": [(c, label(c, extra)) for c in (result.codes if result else [])],
        "categories": [*CATEGORIES.values(), *extra],
    }
