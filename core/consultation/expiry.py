"""Stage 1, consultation: expiry — invitations still pending after their reply day become
逾期未答复 (silence is not a written refusal, 000 §七) and their tasks become ready.
"""

from __future__ import annotations

from sqlalchemy import select

from core.changes import Ctx, Notice, record
from core.consultation.opening import finish_consultation
from core.jointtask import (
    answerers,
    task_invitations,
)
from core.messages import Destination, OutMessage
from core.models import Invitation, JointTask
from core.render import render
from core.states import INVITATION, InvitationState, TaskState


async def expire_invitations(ctx: Ctx) -> int:
    """Scheduler tick: pending invitations past their reply day expire; their tasks become ready."""
    today = ctx.clock.today()
    # Several serve processes run this tick: each task is expired by whoever locks it first,
    # and the state is re-read under the lock so an answer committed meanwhile stands.
    tasks = list(
        await ctx.session.scalars(
            select(JointTask)
            .where(JointTask.state == TaskState.CONSULTING, JointTask.reply_due_on < today)
            .order_by(JointTask.id)
            .with_for_update(skip_locked=True, of=JointTask)
            .execution_options(populate_existing=True)
        )
    )
    expired = 0
    for task in tasks:
        invitations = await task_invitations(ctx, task)
        due = task.reply_due_on.isoformat() if task.reply_due_on else "—"
        for inv in (i for i in invitations if i.state == InvitationState.PENDING):
            INVITATION.move(inv, InvitationState.EXPIRED)
            await record(
                ctx,
                "invitation.expired",
                f"invitation:{inv.id}",
                {"task": task.code, "department": inv.department.code, "reply_due_on": due},
                await _silence_notices(ctx, task, inv),
            )
            expired += 1
        await finish_consultation(ctx, task, invitations)
    return expired


async def _silence_notices(ctx: Ctx, task: JointTask, inv: Invitation) -> list[Notice]:
    """Silence is not a written refusal (000 §七): the department's chat and each of its leaders
    hear that it was recorded as 逾期未答复; the lead hears it may proceed without it."""

    def msg(for_lead: bool) -> OutMessage:
        return OutMessage.md(
            f"逾期未答复：{task.code}",
            render(
                "messages/invitation_expired.md.j2",
                task=task,
                department=inv.department,
                for_lead=for_lead,
            ),
        )

    leaders = [o for o in await answerers(ctx, inv.department_id) if o.has_role("leader")]
    return [
        Notice(Destination.department(inv.department_id), msg(False), key=f"inv-expired:{inv.id}"),
        *(
            Notice(Destination.officer(o.id), msg(False), key=f"inv-expired:{inv.id}:{o.id}")
            for o in leaders
        ),
        Notice(
            Destination.department(task.lead_department_id),
            msg(True),
            key=f"inv-expired-lead:{inv.id}",
        ),
    ]
