"""Stage 1, consultation: opening it (seed committed, reply deadline set, invitations and
answer cards out; draft → consulting) and closing it once no invitation is pending (→ ready)
(seeds 000 §六, 001 第十四条).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select

from core.access import lead_only
from core.cards import InvitationAction
from core.changes import Ctx, Notice, record
from core.consultation.creation import default_items, task_plan_items
from core.draws import algorithm
from core.errors import InvalidTransition, ValidationFailed
from core.jointtask import (
    answerers,
    get_department,
    require_answerers,
    task_items,
)
from core.messages import Button, Card, Destination, Field_, OutMessage
from core.models import Invitation, Item, JointTask
from core.render import render
from core.states import INVITATION, TASK, InvitationState, TaskState
from core.workdays import Deadline


def invitation_card(
    task: JointTask,
    inv: Invitation,
    *,
    text: str = "",
    url: str = "",
    recipient: int | None = None,
    reshown: tuple[int, dt.datetime] | None = None,
) -> OutMessage:
    """The invitation card, built only here: 接受 / 拒绝 buttons whose keys call back. `url`, the
    officer's signed answer page, serves platforms whose buttons only open links (without it the
    sender adds one per recipient). WeCom wants a task_id unique per app, so a card shown again
    (`reshown` = officer id and moment) gets its own, and so does each `recipient`'s copy: the
    department's liaison and leader each get one, and WeCom refuses a second card under the
    first one's task_id (40058)."""
    task_id = card_id(inv.id, recipient)
    if reshown is not None:
        officer_id, at = reshown
        task_id += f"-o{officer_id}-{int(at.timestamp() * 1000)}"
    due = (
        Deadline(task.reply_due_on, task.reply_due_provisional).label()
        if task.reply_due_on is not None
        else "—"
    )
    buttons = [
        Button(
            label=label,
            style=style,
            url=url,
            action_key=InvitationAction(action=action, invitation_id=inv.id).pack(),
        )
        for label, style, action in (("接受", "primary", "accept"), ("拒绝", "danger", "decline"))
    ]
    card = Card(
        title=f"联合抽查邀请：{task.title}",
        description=text,
        task_id=task_id,
        fields=[
            Field_(name="任务编号", value=task.code),
            Field_(name="牵头部门", value=task.lead_department.name),
            Field_(name="答复期限", value=due),
        ],
        buttons=buttons,
    )
    return OutMessage(kind="card", title=card.title, body=text, card=card)


def card_id(invitation_id: int, recipient: int | None) -> str:
    """The invitation card's own id (Card.task_id) as sent to `recipient`."""
    return f"inv-{invitation_id}" + (f"-o{recipient}" if recipient is not None else "")


def card_answered(task: JointTask, inv: Invitation, recipient: int, answered: str) -> OutMessage:
    """The update that shows the card sent to `recipient` as answered (`answered`: who answered
    what). It names the card by its own id, not a click's handle (card_ref ""): each platform
    updates a card it sent where it can (bot/platforms)."""
    card = Card(
        title=f"联合抽查邀请：{task.title}", task_id=card_id(inv.id, recipient), answered=answered
    )
    return OutMessage(kind="card_update", title=card.title, card=card)


def _rule_text(rule: algorithm.SamplingRule) -> str:
    return "；".join(f"{s.name} {s.describe()}" for s in rule.strata)


async def open_consultation(
    ctx: Ctx, task: JointTask, department_ids: Iterable[int], *, single_department: bool = False
) -> list[Invitation]:
    """Commit to the seed and invite the participants. An empty list is allowed only for a
    single-department task (`single_department=True`), which goes straight to "ready"."""
    lead_only(ctx, task, "task.consult")
    if task.state != TaskState.DRAFT:
        raise InvalidTransition(
            f"任务当前状态为“{TASK.label(task.state)}”，只有草稿任务可以发起征询"
        )
    ids = [d for d in dict.fromkeys(department_ids) if d != task.lead_department_id]
    if not ids and not single_department:
        raise ValidationFailed("联合抽查至少要邀请一个参与部门")
    departments = [await get_department(ctx, d) for d in ids]
    await require_answerers(ctx, departments, lead=False)
    seed = algorithm.new_seed()
    task.seed_hex, task.commitment = seed.hex(), algorithm.commitment(seed)
    due = (await ctx.work_calendar()).add_workdays(
        ctx.clock.today(), ctx.rules.invitation_reply_workdays
    )
    task.reply_due_on, task.reply_due_provisional = due.day, due.provisional
    if departments:  # else `_consultation_done` below makes the draft ready
        TASK.move(task, TaskState.CONSULTING)
    invitations = [
        Invitation(task_id=task.id, department=d, state=INVITATION.start(InvitationState.PENDING))
        for d in departments
    ]
    ctx.session.add_all(invitations)
    await ctx.session.flush()
    items = await task_items(ctx, task)
    rule_text = _rule_text(algorithm.parse_rule(task.rule))
    notices = []
    for inv, dep in zip(invitations, departments, strict=True):
        # each department sees its own item list with the codes `接受 编号 事项代码` takes,
        # and what a plain 接受 takes: the plan's items for it, if the task is planned
        own = list(
            await ctx.session.scalars(
                select(Item)
                .where(Item.department_id == dep.id, Item.current.is_(True))
                .order_by(Item.code)
            )
        )
        words = dict(
            task=task,
            lead=task.lead_department,
            items=items,
            own_items=own,
            planned=await task_plan_items(ctx.session, task.id, dep.id),
            whole_list_by_default=default_items(own) == own,
            rule_text=rule_text,
            reply_due=due.label(),
        )
        text = render("messages/invitation.md.j2", **words, card=False)
        card_text = render("messages/invitation.md.j2", **words, card=True)
        # The group chat is told (robot webhooks cannot carry answer buttons); the people who
        # may answer get the card itself in their direct chat with the bot.
        notices.append(
            Notice(
                Destination.department(dep.id),
                OutMessage.md(f"联合抽查邀请：{task.title}", text),
                key=f"invitation:{inv.id}",
            )
        )
        notices.extend(
            Notice(
                Destination.officer(o.id),
                invitation_card(task, inv, text=card_text, recipient=o.id),
                key=f"invitation:{inv.id}:officer:{o.id}",
            )
            for o in await answerers(ctx, dep.id)
        )
    await record(
        ctx,
        "task.consultation_opened",
        f"task:{task.code}",
        {
            "departments": [d.code for d in departments],
            "commitment": task.commitment,
            "reply_due_on": due.day.isoformat(),
            "reply_due_provisional": due.provisional,
        },
        notices,
    )
    if not departments:
        await finish_consultation(ctx, task, [])
    return invitations


async def finish_consultation(ctx: Ctx, task: JointTask, invitations: list[Invitation]) -> None:
    TASK.move(task, TaskState.READY)
    text = render(
        "messages/consultation_done.md.j2",
        task=task,
        invitations=invitations,
        state_labels=INVITATION.labels,
    )
    await record(
        ctx,
        "task.ready",
        f"task:{task.code}",
        {"invitations": {i.department.code: i.state for i in invitations}},
        [
            Notice(
                Destination.department(task.lead_department_id),
                OutMessage.md(f"征询完成：{task.code}", text),
                key=f"task-ready:{task.id}",
            )
        ],
    )
