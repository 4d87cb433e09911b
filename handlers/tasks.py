"""任务 (my department's tasks and pending invitations), 任务 编号, 进度 编号."""

from __future__ import annotations

import datetime as dt

from core import consultation, jointtask
from core.messages import Button, Card, Field_, OutMessage
from core.models import Invitation, JointTask
from core.progress import task_progress, tasks_for_department
from core.states import CASE
from core.workdays import Deadline
from handlers.base import Args, HandlerCtx, UsageError
from handlers.cards import InvitationAction

LISTED_TASKS = 20


def deadline_label(day: dt.date | None, provisional: bool) -> str:
    """A deadline as every message shows it: a provisional one says so (domain: Working days)."""
    return Deadline(day, provisional).label() if day is not None else "—"


async def list_or_show(ctx: HandlerCtx, args: Args) -> None:
    code = args.code(0)
    if code is not None:
        await _show(ctx, code)
        return
    listing = await tasks_for_department(ctx.core, ctx.officer.department_id)
    await ctx.say("cmd_tasks.md.j2", department=ctx.officer.department,
                  listing=listing[:LISTED_TASKS], hidden=max(0, len(listing) - LISTED_TASKS),
                  task_states=jointtask.TASK_STATE_LABELS, inv_states=jointtask.INVITATION_STATE_LABELS,
                  deadline=deadline_label)
    if ctx.officer.has_role("liaison") or ctx.officer.has_role("leader"):
        for entry in listing:
            if entry.invitation is not None and entry.invitation.state == "pending":
                await ctx.reply(invitation_card(ctx, entry.task, entry.invitation))


async def progress(ctx: HandlerCtx, args: Args) -> None:
    code = args.code(0)
    if code is None:
        raise UsageError
    await ctx.say("cmd_progress.md.j2", p=await task_progress(ctx.core, code),
                  case_states=CASE.labels)


async def _show(ctx: HandlerCtx, code: str) -> None:
    task = await jointtask.get_task(ctx.core, code)
    items = await jointtask.task_items(ctx.core, task)
    invitation = await consultation.department_invitation(ctx.core, task, ctx.officer.department_id)
    await ctx.say("cmd_task.md.j2", task=task, items=items, invitation=invitation,
                  task_states=jointtask.TASK_STATE_LABELS, inv_states=jointtask.INVITATION_STATE_LABELS,
                  deadline=deadline_label)
    if (invitation is not None and invitation.state == "pending"
            and (ctx.officer.has_role("liaison") or ctx.officer.has_role("leader"))):
        await ctx.reply(invitation_card(ctx, task, invitation))


def invitation_card(ctx: HandlerCtx, task: JointTask, invitation: Invitation) -> OutMessage:
    """接受 / 拒绝 buttons that call back (WeCom, simulator) and open the signed page (DingTalk)."""
    url = ctx.links(ctx.officer.id, invitation.id) if ctx.links is not None else ""
    buttons = [Button(label="接受", style="primary", url=url,
                      action_key=InvitationAction(action="accept", invitation_id=invitation.id).pack()),
               Button(label="拒绝", style="danger", url=url,
                      action_key=InvitationAction(action="decline", invitation_id=invitation.id).pack())]
    due = deadline_label(task.reply_due_on, task.reply_due_provisional)
    # WeCom wants a task_id unique per app: one per officer and moment this card is shown
    stamp = int(ctx.clock.now().timestamp() * 1000)
    card = Card(title=f"联合抽查邀请：{task.title}", task_id=f"inv-{invitation.id}-o{ctx.officer.id}-{stamp}",
                fields=[Field_(name="任务编号", value=task.code),
                        Field_(name="牵头部门", value=task.lead_department.name),
                        Field_(name="答复期限", value=due)],
                buttons=buttons)
    return OutMessage(kind="card", title=card.title, card=card)
