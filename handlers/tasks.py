"""任务 (my department's tasks and pending invitations), 任务 编号, 进度 编号."""

from __future__ import annotations

from core import cases
from core.consultation import opening, withdrawal
from core.errors import NotFound, ValidationFailed
from core.messages import OutMessage
from core.models import Invitation, JointTask
from core.progress import task_detail, task_progress, task_roster, tasks_for_department
from core.states import CASE, INVITATION, TASK, InvitationState
from handlers.base import Args, HandlerCtx, UsageError

LISTED_TASKS = 20


async def list_or_show(ctx: HandlerCtx, args: Args) -> None:
    code = args.code(0)
    if code is not None:
        await _show(ctx, code)
        return
    listing = await tasks_for_department(ctx.core, ctx.officer.department_id)
    await ctx.say(
        "cmd_tasks.md.j2",
        department=ctx.officer.department,
        listing=listing[:LISTED_TASKS],
        hidden=max(0, len(listing) - LISTED_TASKS),
        task_states=TASK.labels,
        inv_states=INVITATION.labels,
    )
    if ctx.officer.has_role("liaison") or ctx.officer.has_role("leader"):
        for entry in listing:
            if entry.invitation is not None and entry.invitation.state == InvitationState.PENDING:
                await ctx.reply(invitation_card(ctx, entry.task, entry.invitation))


async def progress(ctx: HandlerCtx, args: Args) -> None:
    code = args.code(0)
    if code is None:
        raise UsageError
    await ctx.say(
        "cmd_progress.md.j2", p=await task_progress(ctx.core, code), case_states=CASE.labels
    )


async def roster(ctx: HandlerCtx, args: Args) -> None:
    """名单 编号 [页码] — the task's targets and groups, the list the lock and matching
    messages point to, a page at a time."""
    code = args.code(0)
    if code is None:
        raise UsageError
    page = args.words[1] if len(args.words) > 1 else "1"
    if not page.isdigit():
        raise UsageError("页码请写数字。")
    await ctx.say("cmd_roster.md.j2", r=await task_roster(ctx.core, code, int(page)))


async def _show(ctx: HandlerCtx, code: str) -> None:
    try:
        detail = await task_detail(ctx.core, code, ctx.officer.department_id)
    except NotFound:
        if not await _is_case(ctx, code):
            raise
        raise ValidationFailed(f"{code} 是案件号，查看案件请发送：案件 {code}") from None
    invitation = detail.invitation
    await ctx.say(
        "cmd_task.md.j2",
        task=detail.task,
        items=detail.items,
        outside=detail.outside,
        invitation=invitation,
        task_states=TASK.labels,
        inv_states=INVITATION.labels,
    )
    if (
        invitation is not None
        and invitation.state == InvitationState.PENDING
        and (ctx.officer.has_role("liaison") or ctx.officer.has_role("leader"))
    ):
        await ctx.reply(invitation_card(ctx, detail.task, invitation))


async def _is_case(ctx: HandlerCtx, code: str) -> bool:
    """`任务` given a case number: point to `案件` instead of "not found"."""
    try:
        await cases.get_case(ctx.core, code)
    except NotFound:
        return False
    return True


def invitation_card(ctx: HandlerCtx, task: JointTask, invitation: Invitation) -> OutMessage:
    """The card shown again to this officer, with their signed answer page for link-only buttons."""
    url = ctx.links(ctx.officer.id, invitation.id) if ctx.links is not None else ""
    return opening.invitation_card(
        task, invitation, url=url, reshown=(ctx.officer.id, ctx.clock.now())
    )


async def withdraw(ctx: HandlerCtx, args: Args) -> None:
    """撤销 编号 理由 — a task created by mistake, before its draw is frozen; the reason is
    required (the core refuses a missing one, saying how to write it)."""
    code = args.code(0)
    if code is None:
        raise UsageError
    if not any(ch.isdigit() for ch in code):
        # the reason typed without the number: "未找到任务 <reason>" would hide what is missing
        raise UsageError("请先写任务编号，再写撤销理由。")
    done = await withdrawal.withdraw_task(ctx.core, code, args.rest_after(1))
    # `lianjian task withdraw` prints the same reply
    await ctx.say("cmd_task_withdrawn.md.j2", task=done.task, told=done.told)
