"""Stage 1, consultation: answering an invitation — who may answer (the one check), accept
with the department's items, decline with a written reason (seed 000 §七), and the answer page's
view of an invitation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from core.access import may_act_for, require
from core.changes import Ctx, Notice, record
from core.consultation.creation import (
    add_department_items,
    default_items,
    department_items,
    task_plan_items,
)
from core.consultation.opening import card_answered, finish_consultation
from core.draws import algorithm
from core.draws.ratios import check_cap_ratios
from core.errors import InvalidTransition, NotFound, ValidationFailed
from core.jointtask import answerers, task_by_id, task_invitations
from core.messages import Destination, OutMessage
from core.models import Department, Invitation, Item, JointTask, Officer, TaskItem
from core.render import render
from core.rules import Rules, written_reason_problem
from core.states import INVITATION, TASK, InvitationState, TaskState
from core.workdays import Deadline, cn_datetime


async def _invitation(ctx: Ctx, invitation_id: int) -> Invitation:
    inv = await ctx.session.get(Invitation, invitation_id)
    if inv is None:
        raise NotFound(f"未找到邀请（编号 {invitation_id}）")
    return inv


async def department_invitation(ctx: Ctx, task: JointTask, department_id: int) -> Invitation | None:
    return await ctx.session.scalar(
        select(Invitation).where(
            Invitation.task_id == task.id, Invitation.department_id == department_id
        )
    )


async def department_task_items(ctx: Ctx, task: JointTask, department_id: int) -> list[Item]:
    """The items a department checks in a task (what it accepted with)."""
    return list(
        await ctx.session.scalars(
            select(Item)
            .join(TaskItem, TaskItem.item_id == Item.id)
            .where(TaskItem.task_id == task.id, TaskItem.department_id == department_id)
            .order_by(Item.code)
        )
    )


async def item_ids_by_code(ctx: Ctx, department_id: int, codes: Iterable[str]) -> dict[str, int]:
    """Upper-cased item code → id within one department's item list (unknown codes absent)."""
    wanted = [c.upper() for c in codes]
    rows = (
        await ctx.session.execute(
            select(func.upper(Item.code), Item.id).where(
                Item.department_id == department_id,
                Item.current.is_(True),
                func.upper(Item.code).in_(wanted),
            )
        )
    ).all()
    return {code: item_id for code, item_id in rows}


async def item_choices(ctx: Ctx, department_id: int) -> list[Item]:
    """The department's current item list, by code (what `接受 编号 事项代码` may name)."""
    return list(
        await ctx.session.scalars(
            select(Item)
            .where(Item.department_id == department_id, Item.current.is_(True))
            .order_by(Item.code)
        )
    )


async def _after_answer(ctx: Ctx, task: JointTask) -> None:
    invitations = await task_invitations(ctx, task)
    if all(i.state != InvitationState.PENDING for i in invitations):
        await finish_consultation(ctx, task, invitations)


async def _answerable(ctx: Ctx, invitation_id: int, action: str) -> tuple[Invitation, JointTask]:
    inv = await _invitation(ctx, invitation_id)
    # Lock the task first: the last answer, whoever gives it, must see all the others.
    task = await task_by_id(ctx, inv.task_id, for_update=True)
    await ctx.session.refresh(inv)
    await require_answerable(ctx, inv, task, action)
    return inv, task


async def require_answerable(ctx: Ctx, inv: Invitation, task: JointTask, action: str) -> None:
    """May the actor answer this invitation now: a liaison or leader of the invited department,
    the invitation still open, the task still consulting. The one check: the chat asks it before
    waiting for a decline reason, and every answer asks it again under the task lock."""
    require(
        may_act_for(ctx, inv.department_id, admin=False),
        action,
        f"invitation:{inv.id}",
        f"只有{inv.department.name}的联络员或分管领导可以答复该邀请",
    )
    if inv.state in (InvitationState.ACCEPTED, InvitationState.DECLINED):
        raise InvalidTransition(await _answered_already(ctx, inv, task))
    if inv.state == InvitationState.EXPIRED or (
        task.reply_due_on is not None and ctx.clock.today() > task.reply_due_on
    ):
        due = (
            Deadline(task.reply_due_on, task.reply_due_provisional).label()
            if task.reply_due_on
            else "—"
        )
        raise InvalidTransition(f"该邀请已过答复期限（{due}），不能再答复，请与牵头部门联系")
    if task.state != TaskState.CONSULTING:
        raise InvalidTransition(f"任务当前状态为“{TASK.label(task.state)}”，不再接受答复")


async def responder_name(ctx: Ctx, inv: Invitation) -> str:
    """Who answered the invitation ("" when nobody did, or the system)."""
    who = await ctx.session.get(Officer, inv.responded_by_id) if inv.responded_by_id else None
    return who.name if who is not None else ""


def verb(inv: Invitation) -> str:
    """接受 / 拒绝: what the department answered ("" while it has not)."""
    return _VERBS.get(inv.state, "")


async def _answered_already(ctx: Ctx, inv: Invitation, task: JointTask) -> str:
    """A second answer is told who gave the first, when, and what to do if it is wrong."""
    when = f"于 {cn_datetime(inv.responded_at)} " if inv.responded_at else ""
    return (
        f"该邀请已答复（{INVITATION.label(inv.state)}），不能重复答复："
        f"{inv.department.name}{await responder_name(ctx, inv)}已{when}{verb(inv)}。"
        f"如答复有误，请联系牵头部门（{task.lead_department.name}）。"
    )


_VERBS = {InvitationState.ACCEPTED: "接受", InvitationState.DECLINED: "拒绝"}


def _actor_name(ctx: Ctx) -> str:
    return ctx.actor.name if ctx.actor else ctx.actor_label


async def _answer_notices(
    ctx: Ctx, task: JointTask, inv: Invitation, items: list[Item]
) -> list[Notice]:
    """The lead hears the answer, and so does the answering department itself."""
    words = dict(
        task=task,
        invitation=inv,
        department=inv.department,
        items=items,
        actor_name=_actor_name(ctx),
    )
    lead_text = render("messages/invitation_answered.md.j2", **words, own=False)
    title = f"{inv.department.name}{INVITATION.label(inv.state)}：{task.code}"
    lead = Notice(
        Destination.department(task.lead_department_id),
        OutMessage.md(title, lead_text),
        key=f"invitation-answer:{inv.id}",
    )
    return [lead, *await _own_department_notices(ctx, task, inv, words)]


async def _own_department_notices(
    ctx: Ctx, task: JointTask, inv: Invitation, words: dict[str, Any]
) -> list[Notice]:
    """The answering department's group chat and its other liaisons and leaders, who might
    answer too, hear who answered what and when; every answerer's invitation card is shown
    answered where the platform can update it."""
    assert inv.responded_at is not None  # answered just now
    text = render(
        "messages/invitation_answered.md.j2",
        **words,
        own=True,
        answered_at=cn_datetime(inv.responded_at),
    )
    told = OutMessage.md(f"本部门已{verb(inv)}联合抽查邀请：{task.code}", text)
    group = Destination.department(inv.department_id)
    notices = [Notice(group, told, key=f"invitation-answer:{inv.id}:own")]
    answered = f"已由 {_actor_name(ctx)} {verb(inv)}"
    for officer in await answerers(ctx, inv.department_id):
        to = Destination.officer(officer.id)
        if ctx.actor is None or officer.id != ctx.actor.id:
            notices.append(Notice(to, told, key=f"invitation-answer:{inv.id}:officer:{officer.id}"))
        card = card_answered(task, inv, officer.id, answered)
        notices.append(Notice(to, card, key=f"invitation-card:{inv.id}:officer:{officer.id}"))
    return notices


def _mark_answered(ctx: Ctx, inv: Invitation, state: InvitationState, reason: str = "") -> None:
    INVITATION.move(inv, state)
    inv.reason = reason
    inv.responded_by_id = ctx.actor.id if ctx.actor else None
    inv.responded_at = ctx.clock.now()


async def accept_invitation(
    ctx: Ctx, invitation_id: int, item_ids: Iterable[int] | None = None
) -> Invitation:
    """Accept, choosing the department's own items; None = what the annual plan gives it for a
    planned task, else its key items (all items when its list has no key item), so one tap on
    "接受" is a complete answer."""
    inv, task = await _answerable(ctx, invitation_id, "invitation.accept")
    planned = await task_plan_items(ctx.session, task.id, inv.department_id)
    items = await department_items(
        ctx.session, inv.department, None if item_ids is None else list(item_ids), planned
    )
    # 002 二(二): the task's rule draws for every department, so a general item joins only
    # within its cap (the rule is fixed at creation: the item is what can change) — its ratios
    # before anything is written, a count once the department's items are in the task
    rule = algorithm.parse_rule(task.rule)
    advice = (
        f"{inv.department.name}不能以该事项接受{task.code}：请改选本部门的重点检查事项或"
        f"上限不低于本任务比例的事项后接受，或与牵头部门（{task.lead_department.name}）商定"
    )
    check_cap_ratios(rule, items, ctx.rules.general_item_ratio_cap, advice=advice)
    _mark_answered(ctx, inv, InvitationState.ACCEPTED)
    await add_department_items(ctx, task, inv.department_id, rule, items, advice)
    await record(
        ctx,
        "invitation.accepted",
        f"invitation:{inv.id}",
        {"task": task.code, "department": inv.department.code, "items": [i.code for i in items]},
        await _answer_notices(ctx, task, inv, items),
    )
    await _after_answer(ctx, task)
    return inv


class DeclineReasonRefused(ValidationFailed):
    """The decline reason is no written reason: the rest of the answer was not looked at."""


def decline_reason_problem(rules: Rules, reason: str) -> str:
    """Why `reason` cannot decline an invitation (seed 000 §七: 书面函告理由), "" if it can: the
    check decline_invitation makes, for a caller to ask for the reason before answering."""
    return written_reason_problem(
        reason,
        "拒绝理由",
        "请写明不参加的具体原因",
        min_chars=rules.decline_reason_min_chars,
        missing="拒绝参加联合抽查须书面说明理由",
    )


async def decline_invitation(ctx: Ctx, invitation_id: int, reason: str) -> Invitation:
    """Decline with the written reason the rules require (seed 000 §七)."""
    inv, task = await _answerable(ctx, invitation_id, "invitation.decline")
    if problem := decline_reason_problem(ctx.rules, reason):
        raise DeclineReasonRefused(problem)
    reason = reason.strip()
    _mark_answered(ctx, inv, InvitationState.DECLINED, reason)
    await ctx.session.flush()
    await record(
        ctx,
        "invitation.declined",
        f"invitation:{inv.id}",
        {"task": task.code, "department": inv.department.code, "reason": reason},
        await _answer_notices(ctx, task, inv, []),
    )
    await _after_answer(ctx, task)
    return inv


@dataclass
class InvitationView:
    """An invitation as its answer page shows it."""

    invitation: Invitation
    task: JointTask
    task_items: list[tuple[str, Item]]  # (department name, item), every department's
    own_items: list[Item]  # the invited department's item list, offered as check boxes
    items_in_task: set[int]  # own items already in the task (once accepted)
    planned: list[Item]  # what the annual plan gives the department (planned task), else []
    responder: str = ""

    def default_item_ids(self) -> set[int]:
        """Pre-checked boxes: the items already in the task for this department (after an
        answer), else what a one-tap 接受 takes."""
        return set(self.items_in_task) or {
            i.id for i in default_items(self.own_items, self.planned)
        }


async def invitation_view(ctx: Ctx, invitation_id: int) -> InvitationView:
    session = ctx.session
    invitation = await session.scalar(
        select(Invitation)
        .where(Invitation.id == invitation_id)
        .execution_options(populate_existing=True)
    )
    if invitation is None:
        raise NotFound("邀请不存在或已被撤回。")
    # the page shows the task's items and the department's own list: for those who may answer
    # (and the office's admin), not for whoever else holds a link (002 二(六))
    require(
        may_act_for(ctx, invitation.department_id),
        "invitation.view",
        f"invitation:{invitation.id}",
        f"只有{invitation.department.name}的联络员或分管领导可以查看该邀请",
    )
    task = await session.get(JointTask, invitation.task_id)
    if task is None:
        raise NotFound("任务不存在。")
    rows = (
        await session.execute(
            select(Department.name, Item, TaskItem.department_id)
            .join(TaskItem, TaskItem.item_id == Item.id)
            .join(Department, Department.id == TaskItem.department_id)
            .where(TaskItem.task_id == task.id)
            .order_by(Department.id, Item.code)
        )
    ).all()
    own_items = list(
        await session.scalars(
            select(Item)
            .where(Item.department_id == invitation.department_id, Item.current.is_(True))
            .order_by(Item.code)
        )
    )
    return InvitationView(
        invitation=invitation,
        task=task,
        task_items=[(name, item) for name, item, _ in rows],
        own_items=own_items,
        items_in_task={item.id for _, item, dept in rows if dept == invitation.department_id},
        planned=await task_plan_items(session, task.id, invitation.department_id),
        responder=await responder_name(ctx, invitation),
    )
