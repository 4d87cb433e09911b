"""接受 / 拒绝 an invitation — by command, by card button, and the decline-reason conversation."""

from __future__ import annotations

from core import jointtask, outbox
from core.cards import InvitationAction
from core.consultation import answers
from core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from core.messages import Card, Destination, OutMessage
from core.models import Conversation, Invitation, JointTask
from handlers import conversation
from handlers.base import Args, HandlerCtx, UsageError, strip_mentions

DECLINE_STEP = "decline_reason"
RETRY_HINT = "请重新回复拒绝理由，或发送“取消”放弃。"


async def accept(ctx: HandlerCtx, args: Args) -> None:
    """接受 编号 [事项代码…] — without codes the department's default items are taken."""
    code = args.code(0)
    if code is None:
        raise UsageError
    invitation, task = await _own_invitation(ctx, code, "invitation.accept")
    item_ids = await _item_ids(ctx, args.list_after(1))
    await answers.accept_invitation(ctx.core, invitation.id, item_ids)
    await _reply_accepted(ctx, invitation, task)


async def decline(ctx: HandlerCtx, args: Args) -> None:
    """拒绝 编号 理由 — without a reason the bot asks for it and waits for the next message."""
    code = args.code(0)
    if code is None:
        raise UsageError
    invitation, task = await _own_invitation(ctx, code, "invitation.decline")
    reason = args.rest_after(1)
    if not reason:
        await _ask_reason(ctx, invitation, task)
        return
    if refused := await _declined(ctx, invitation, task, reason):
        # e.g. too short: ask for the reason and wait, as bare 拒绝
        await _ask_reason(ctx, invitation, task, refused=refused)


async def on_card(ctx: HandlerCtx, action: InvitationAction) -> None:
    """A click on the invitation card's 接受 / 拒绝 button."""
    invitation = await ctx.session.get(Invitation, action.invitation_id)
    if invitation is None:
        raise NotFound("该邀请不存在或已被撤回")
    task = await _task(ctx, invitation)
    if await _answered_card(ctx, invitation, task, action):
        return
    if action.action == "accept":
        await answers.accept_invitation(ctx.core, invitation.id)
        await _reply_accepted(ctx, invitation, task)
        await _update_card(ctx, task, ctx.card_ref, "接受", ctx.conversation)
    else:
        await _ask_reason(ctx, invitation, task, card_ref=ctx.card_ref)


async def _answered_card(
    ctx: HandlerCtx, invitation: Invitation, task: JointTask, action: InvitationAction
) -> bool:
    """A click on a card the department has answered meanwhile (another liaison or leader was
    first): the card is shown answered, as the platform allows in answer to a click, and the
    officer is told who answered, when, and what to do if it is wrong."""
    try:
        await answers.require_answerable(ctx.core, invitation, task, f"invitation.{action.action}")
    except InvalidTransition as err:
        if invitation.responded_at is None:  # expired, or the task moved on: nothing to show
            raise
        await ctx.reply(OutMessage.text(err.message))
        by = await answers.responder_name(ctx.core, invitation)
        await _update_card(ctx, task, ctx.card_ref, answers.verb(invitation), ctx.conversation, by)
        return True
    return False


async def on_decline_reason(ctx: HandlerCtx, step: Conversation) -> None:
    """The officer's next message after "请回复拒绝理由": the written reason."""
    invitation = await ctx.session.get(Invitation, int(step.data["invitation_id"]))
    if invitation is None:
        await conversation.clear(ctx)
        raise NotFound("该邀请不存在或已被撤回")
    task = await _task(ctx, invitation)
    reason = strip_mentions(ctx.event.text)
    if refused := await _declined(ctx, invitation, task, reason):
        # e.g. too short: keep waiting for a better reason
        await ctx.reply(OutMessage.text(f"{refused}\n{RETRY_HINT}"))
        return
    await conversation.clear(ctx)
    card_chat = step.data.get("card_chat")
    await _update_card(
        ctx,
        task,
        str(step.data.get("card_ref", "")),
        "拒绝",
        Destination.model_validate(card_chat) if card_chat else None,
    )


async def _declined(ctx: HandlerCtx, invitation: Invitation, task: JointTask, reason: str) -> str:
    """Decline with `reason` and reply, or return why the reason is not taken (nothing done):
    the same check core makes, asked first, so the chat can ask for the reason again."""
    if refused := answers.decline_reason_problem(ctx.rules, reason):
        # an invitation no longer open is said so, as core would, not asked for a reason again
        await answers.require_answerable(ctx.core, invitation, task, "invitation.decline")
        return refused
    await answers.decline_invitation(ctx.core, invitation.id, reason)
    await _reply_declined(ctx, invitation, task)
    return ""


async def _ask_reason(
    ctx: HandlerCtx,
    invitation: Invitation,
    task: JointTask,
    card_ref: str = "",
    refused: str = "",
) -> None:
    """Start the decline-reason step; `refused` is why the reason given with the command was
    not taken (said first)."""
    await answers.require_answerable(ctx.core, invitation, task, "invitation.decline")
    await conversation.start(
        ctx,
        DECLINE_STEP,
        {
            "invitation_id": invitation.id,
            "task_code": task.code,
            "card_ref": card_ref,
            "card_chat": ctx.conversation.model_dump() if card_ref and ctx.conversation else None,
        },
    )
    await ctx.say(
        "cmd_ask_decline_reason.md.j2",
        task=task,
        min_chars=ctx.rules.decline_reason_min_chars,
        hours=ctx.rules.conversation_hours,
        refused=refused,
    )


async def _reply_accepted(ctx: HandlerCtx, invitation: Invitation, task: JointTask) -> None:
    items = await answers.department_task_items(ctx.core, task, invitation.department_id)
    await ctx.say("cmd_accepted.md.j2", task=task, department=invitation.department, items=items)


async def _reply_declined(ctx: HandlerCtx, invitation: Invitation, task: JointTask) -> None:
    await ctx.say(
        "cmd_declined.md.j2", task=task, department=invitation.department, reason=invitation.reason
    )


async def _update_card(
    ctx: HandlerCtx,
    task: JointTask,
    card_ref: str,
    verb: str,
    clicked_in: Destination | None = None,
    by: str = "",
) -> None:
    """Grey the clicked card and show who answered (`by`, default the clicking officer), where
    the platform can update it: in the conversation the click came from when there is one (it
    answers the click), else through the way that reaches the officer."""
    if not card_ref:
        return
    card = Card(
        title=f"联合抽查邀请：{task.title}", answered=f"已由 {by or ctx.officer.name} {verb}"
    )
    await outbox.enqueue(
        ctx.session,
        clicked_in or Destination.officer(ctx.officer.id),
        OutMessage(kind="card_update", card_ref=card_ref, card=card),
        now=ctx.clock.now(),
    )


async def _task(ctx: HandlerCtx, invitation: Invitation) -> JointTask:
    task = await ctx.session.get(JointTask, invitation.task_id)
    assert task is not None  # foreign key
    return task


async def _own_invitation(ctx: HandlerCtx, code: str, action: str) -> tuple[Invitation, JointTask]:
    """The invitation of the officer's department to task `code`. A department the task did
    not invite is refused like any other answer it may not give (audited, as the card and the
    page refuse it), saying nothing about the task beyond its code."""
    task = await jointtask.get_task(ctx.core, code)
    invitation = await answers.department_invitation(ctx.core, task, ctx.officer.department_id)
    if invitation is None:
        if task.lead_department_id == ctx.officer.department_id:
            raise ValidationFailed(f"{task.code} 由本部门牵头，无需答复邀请")
        raise PermissionDenied(
            f"任务 {task.code} 没有邀请{ctx.officer.department.name}",
            action=action,
            subject=f"task:{task.code}",
        )
    return invitation, task


async def _item_ids(ctx: HandlerCtx, item_codes: list[str]) -> list[int] | None:
    """Ids of the department's items named by code (case-insensitive); None = default items."""
    if not item_codes:
        return None
    wanted = [c.upper() for c in dict.fromkeys(item_codes)]
    found = await answers.item_ids_by_code(ctx.core, ctx.officer.department_id, wanted)
    if missing := [c for c in wanted if c not in found]:
        choices = await answers.item_choices(ctx.core, ctx.officer.department_id)
        listed = (
            "、".join(f"{i.code}（{i.name}）" for i in choices)
            or "（清单为空，请先导入抽查事项清单）"
        )
        raise ValidationFailed(
            f"本部门抽查事项清单中没有事项代码：{'、'.join(missing)}。可选的事项代码：{listed}"
        )
    return [found[c] for c in wanted]
