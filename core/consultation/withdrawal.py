"""Stage 1, consultation: withdrawing (撤销) a task created by mistake — only before its draw is
frozen (or when the frozen draw can never be confirmed, exceeding a cap), with a written reason;
the pending invitations are closed and every invited department is told. A withdrawn task stays
on the public side as 已撤销 once it was public (003 三(七)1: 抽查计划…向社会公示; 杜绝任性执法 —
what was announced is not silently removed), and is never drawn: the draw takes only a ready task.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from core.access import may_act_for, require
from core.changes import Ctx, Notice, record
from core.consultation import CHAT_HOW
from core.consultation.opening import card_answered
from core.draws.targets import frozen_draw_over_cap
from core.errors import InvalidTransition
from core.jointtask import answerers, get_task, task_invitations
from core.messages import Destination, OutMessage
from core.models import Draw, Invitation, JointTask, PlanEntry
from core.render import md_text
from core.rules import written_reason
from core.states import INVITATION, TASK, DrawState, InvitationState, TaskState

WITHDRAWN = "任务已撤销"
_EXAMPLE_REASON = "任务文件重复执行，与前一任务重复"


@dataclass(frozen=True)
class Withdrawn:
    """What the one who withdrew is told: the task, and the departments told of it."""

    task: JointTask
    told: list[str]  # every invited department's name, as the notices went


async def withdraw_task(ctx: Ctx, code: str, reason: str, *, how: str = CHAT_HOW) -> Withdrawn:
    """撤销 a task before its target draw is frozen (the commitment of a frozen draw binds the
    lead to draw with it), or whose frozen draw can never be confirmed because it exceeds a
    general item's cap (002 二(二); frozen before the caps were checked). `reason` is a written
    reason (as a decline's) and goes to every invited department; `how` is the caller's syntax
    for the example in a refusal."""
    task = await get_task(ctx, code, for_update=True)
    require(
        may_act_for(ctx, task.lead_department_id),
        "task.withdraw",
        f"task:{task.code}",
        "只有管理员或牵头部门的联络员、分管领导可以撤销任务",
    )
    TASK.check(task, TaskState.WITHDRAWN, what="撤销", subject=task.code)
    over_cap = await _frozen_over_cap(ctx, task)
    example = how.format(code=task.code, reason=_EXAMPLE_REASON)
    reason = written_reason(
        reason,
        "撤销理由",
        f"请写明撤销的具体原因，例如：{example}",
        min_chars=ctx.rules.decline_reason_min_chars,
        missing=f"撤销任务须写明撤销理由，例如：{example}",
    )
    before = task.state
    TASK.move(task, TaskState.WITHDRAWN)
    invitations = await task_invitations(ctx, task)
    closed = []
    for inv in invitations:
        if inv.state == InvitationState.PENDING:
            INVITATION.move(inv, InvitationState.WITHDRAWN)
            closed.append(inv.department.code)
    # a planned task withdrawn frees its plan row: the plan's task can be started again
    entry = await ctx.session.scalar(select(PlanEntry).where(PlanEntry.task_id == task.id))
    if entry is not None:
        entry.task_id = None
    await ctx.session.flush()
    await record(
        ctx,
        "task.withdrawn",
        f"task:{task.code}",
        {
            "reason": reason,
            "from": str(before),
            "invitations_closed": closed,
            **({"plan": entry.code} if entry is not None else {}),
            **({"cap_exceeded": True, "draw": over_cap.code} if over_cap is not None else {}),
        },
        await _notices(ctx, task, invitations, reason, invitations_closed=bool(closed)),
    )
    if entry is not None:
        await record(
            ctx,
            "plan.released",
            f"plan:{entry.year}:{entry.code}",
            {"task": task.code, "reason": reason},
        )
    return Withdrawn(task, [i.department.name for i in invitations])


async def _frozen_over_cap(ctx: Ctx, task: JointTask) -> Draw | None:
    """The task's frozen draw when it can never be confirmed for a cap (withdrawing is then
    the way on), None when there is none; a frozen draw that can be confirmed refuses the
    withdrawal: withdrawing and creating again is no re-roll once the beacon is announced."""
    frozen = await ctx.session.scalar(
        select(Draw).where(
            Draw.task_id == task.id, Draw.kind == "targets", Draw.state != DrawState.SUPERSEDED
        )
    )
    if frozen is None:
        return None
    if frozen.state == DrawState.FROZEN and await frozen_draw_over_cap(ctx, task, frozen):
        return frozen
    raise InvalidTransition(
        f"任务 {task.code} 已冻结抽取范围（{frozen.code}，承诺值已公布），不能再撤销："
        "冻结后须按公布的规则和信标完成抽取"
    )


async def _notices(
    ctx: Ctx,
    task: JointTask,
    invitations: list[Invitation],
    reason: str,
    *,
    invitations_closed: bool,
) -> list[Notice]:
    """Each invited department's chat and its liaisons and leaders (who got the invitation card,
    shown closed where the platform can update it), and the lead department's chat. Pending
    invitations closed are said to need no answer; a draft invited no one, so nothing is said."""
    who = ctx.actor.name if ctx.actor else "联席会议办公室"
    title = f"联合抽查任务已撤销：{task.code}"
    body = (
        f"**{title}**\n"
        f"{task.title}（牵头部门：{task.lead_department.name}）已由{who}撤销，"
        f"不再抽取、不再检查{'；邀请无需答复' if invitations_closed else ''}。\n"
        f"撤销理由：{md_text(reason)}"
    )
    told = OutMessage.md(title, body)
    notices = [
        Notice(Destination.department(task.lead_department_id), told, key=f"withdrawn:{task.code}")
    ]
    for inv in invitations:
        notices.append(
            Notice(
                Destination.department(inv.department_id),
                told,
                key=f"withdrawn:{task.code}:{inv.id}",
            )
        )
        for officer in await answerers(ctx, inv.department_id):
            to = Destination.officer(officer.id)
            notices.append(Notice(to, told, key=f"withdrawn:{task.code}:{inv.id}:{officer.id}"))
            if inv.state == InvitationState.WITHDRAWN:  # the card still offers 接受 / 拒绝
                notices.append(
                    Notice(
                        to,
                        card_answered(task, inv, officer.id, WITHDRAWN),
                        key=f"invitation-card:{inv.id}:officer:{officer.id}:withdrawn",
                    )
                )
    return notices
