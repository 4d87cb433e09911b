"""Stage 1, consultation: task creation, invitations, answers and expiry
(seeds 000 §五–§七, 001 第十四条).

draft → consulting (seed committed, invitations out) → ready (every invitation answered or
expired). Every service mutates rows, then calls `record` once per state change in the same
session; the caller commits. Refusals raise a DomainError and change nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import codes
from core.access import lead_only, may_act_for, require
from core.cards import InvitationAction
from core.changes import Ctx, Notice, record
from core.draws import algorithm
from core.draws.pool import INSPECTOR_KEYS, SCOPE_KEYS
from core.draws.ratios import check_ratios
from core.errors import InvalidTransition, NotFound, ValidationFailed
from core.jointtask import (
    answerers,
    get_department,
    task_by_id,
    task_invitations,
    task_items,
)
from core.messages import Button, Card, Destination, Field_, OutMessage
from core.models import TARGET_KINDS, Department, Invitation, Item, JointTask, Officer, TaskItem
from core.render import render
from core.states import INVITATION, TASK, InvitationState, TaskState
from core.workdays import Deadline


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


async def _department_items(
    session: AsyncSession, department: Department, item_ids: Iterable[int] | None
) -> list[Item]:
    """The chosen items of a department's item list; None = its key items (or, when its list
    has no key item, the whole list)."""
    own = list(
        await session.scalars(
            select(Item)
            .where(Item.department_id == department.id, Item.current.is_(True))
            .order_by(Item.code)
        )
    )
    if item_ids is None:
        chosen = default_items(own)
    else:
        wanted = list(dict.fromkeys(item_ids))
        by_id = {i.id: i for i in own}
        if missing := [i for i in wanted if i not in by_id]:
            raise ValidationFailed(
                f"抽查事项（编号 {missing[0]}）不在{department.name}的抽查事项清单中"
            )
        chosen = [by_id[i] for i in wanted]
    if not chosen:
        raise ValidationFailed(
            f"{department.name}的抽查事项清单为空，请先导入抽查事项清单"
            if not own
            else "请至少选择一项本部门本次检查事项"
        )
    return chosen


def default_items(own: list[Item]) -> list[Item]:
    """What a department takes when it accepts without choosing: its key items, or, when its
    list has none, the whole list."""
    return [i for i in own if i.category == "key"] or own


def _clean_scope(scope: dict[str, Any] | None) -> dict[str, Any]:
    scope = dict(scope or {})
    if unknown := set(scope) - {*SCOPE_KEYS, *INSPECTOR_KEYS, *SCOPE_FLAGS}:
        raise ValidationFailed(f"抽查范围中有无法识别的条件：{'、'.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for key in (*SCOPE_KEYS, *INSPECTOR_KEYS):
        values = [str(v).strip() for v in scope.get(key) or [] if str(v).strip()]
        if values:
            out[key] = values
    if bad := [k for k in out.get("kinds", []) if k not in TARGET_KINDS]:
        raise ValidationFailed(f"检查对象类型“{bad[0]}”无效，可选：{'、'.join(TARGET_KINDS)}")
    out.update({flag: True for flag in SCOPE_FLAGS if scope.get(flag)})
    return out


# 工作方案 statements that bear on the same-year exclusion (core.draws.pool.repeat_check_reason)
SCOPE_FLAGS = ("complaint_driven", "repeat_check")


# ---------------------------------------------------------------- create and consult


async def create_task(
    ctx: Ctx,
    *,
    title: str,
    lead_department_id: int,
    window_start: dt.date,
    window_end: dt.date,
    item_ids: Iterable[int],
    scope: dict[str, Any] | None,
    rule: dict[str, Any],
    year: int | None = None,
) -> JointTask:
    lead = await get_department(ctx, lead_department_id)
    require(
        may_act_for(ctx, lead.id),
        "task.create",
        f"department:{lead.code}",
        "只有管理员或牵头部门的联络员、分管领导可以创建联合抽查任务",
    )
    title = title.strip()
    if not title:
        raise ValidationFailed("任务名称不能为空")
    if window_end < window_start:
        raise ValidationFailed("检查时间窗口的结束日期早于开始日期")
    parsed = algorithm.parse_rule(rule)
    clean_scope = _clean_scope(scope)
    items = await _department_items(ctx.session, lead, list(item_ids))
    check_ratios(parsed, items, ctx.rules.general_item_ratio_cap)
    year = year or window_start.year
    task = JointTask(
        code=await codes.next_code(ctx.session, "LJ", year),
        year=year,
        title=title,
        lead_department=lead,
        window_start=window_start,
        window_end=window_end,
        scope=clean_scope,
        rule=parsed.model_dump(mode="json"),
        state=TASK.start(TaskState.DRAFT),
        created_by_id=ctx.actor.id if ctx.actor else None,
        created_at=ctx.clock.now(),
    )
    ctx.session.add(task)
    await ctx.session.flush()
    ctx.session.add_all(
        TaskItem(task_id=task.id, item_id=i.id, department_id=lead.id) for i in items
    )
    await ctx.session.flush()
    await record(
        ctx,
        "task.created",
        f"task:{task.code}",
        {
            "title": title,
            "lead": lead.code,
            "window": [window_start.isoformat(), window_end.isoformat()],
            "items": [i.code for i in items],
            "scope": clean_scope,
            "rule": parsed.public(),
        },
    )
    return task


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
    task_id = f"inv-{inv.id}"
    if recipient is not None:
        task_id += f"-o{recipient}"
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
        # each department sees its own item list with the codes `接受 编号 事项代码` takes
        own = list(
            await ctx.session.scalars(
                select(Item)
                .where(Item.department_id == dep.id, Item.current.is_(True))
                .order_by(Item.code)
            )
        )
        text = render(
            "messages/invitation.md.j2",
            task=task,
            lead=task.lead_department,
            items=items,
            own_items=own,
            rule_text=rule_text,
            reply_due=due.label(),
        )
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
                invitation_card(task, inv, text=text, recipient=o.id),
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
        await _consultation_done(ctx, task, [])
    return invitations


async def _consultation_done(ctx: Ctx, task: JointTask, invitations: list[Invitation]) -> None:
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


async def _after_answer(ctx: Ctx, task: JointTask) -> None:
    invitations = await task_invitations(ctx, task)
    if all(i.state != InvitationState.PENDING for i in invitations):
        await _consultation_done(ctx, task, invitations)


async def _answerable(ctx: Ctx, invitation_id: int, action: str) -> tuple[Invitation, JointTask]:
    inv = await _invitation(ctx, invitation_id)
    # Lock the task first: the last answer, whoever gives it, must see all the others.
    task = await task_by_id(ctx, inv.task_id, for_update=True)
    await ctx.session.refresh(inv)
    require_answerable(ctx, inv, task, action)
    return inv, task


def require_answerable(ctx: Ctx, inv: Invitation, task: JointTask, action: str) -> None:
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
        raise InvalidTransition(f"该邀请已答复（{INVITATION.label(inv.state)}），不能重复答复")
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


def _answer_notice(ctx: Ctx, task: JointTask, inv: Invitation, items: list[Item]) -> Notice:
    text = render(
        "messages/invitation_answered.md.j2",
        task=task,
        invitation=inv,
        department=inv.department,
        items=items,
        actor_name=ctx.actor.name if ctx.actor else ctx.actor_label,
    )
    title = f"{inv.department.name}{INVITATION.label(inv.state)}：{task.code}"
    return Notice(
        Destination.department(task.lead_department_id),
        OutMessage.md(title, text),
        key=f"invitation-answer:{inv.id}",
    )


def _mark_answered(ctx: Ctx, inv: Invitation, state: InvitationState, reason: str = "") -> None:
    INVITATION.move(inv, state)
    inv.reason = reason
    inv.responded_by_id = ctx.actor.id if ctx.actor else None
    inv.responded_at = ctx.clock.now()


async def accept_invitation(
    ctx: Ctx, invitation_id: int, item_ids: Iterable[int] | None = None
) -> Invitation:
    """Accept, choosing the department's own items; None = its key items (all items when its
    list has no key item), so one tap on "接受" is a complete answer."""
    inv, task = await _answerable(ctx, invitation_id, "invitation.accept")
    items = await _department_items(
        ctx.session, inv.department, None if item_ids is None else list(item_ids)
    )
    _mark_answered(ctx, inv, InvitationState.ACCEPTED)
    ctx.session.add_all(
        TaskItem(task_id=task.id, item_id=i.id, department_id=inv.department_id) for i in items
    )
    await ctx.session.flush()
    await record(
        ctx,
        "invitation.accepted",
        f"invitation:{inv.id}",
        {"task": task.code, "department": inv.department.code, "items": [i.code for i in items]},
        [_answer_notice(ctx, task, inv, items)],
    )
    await _after_answer(ctx, task)
    return inv


async def decline_invitation(ctx: Ctx, invitation_id: int, reason: str) -> Invitation:
    """Decline with the written reason the rules require (seed 000 §七)."""
    inv, task = await _answerable(ctx, invitation_id, "invitation.decline")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("拒绝参加联合抽查须书面说明理由")
    if len(reason) < ctx.rules.decline_reason_min_chars:
        raise ValidationFailed(
            f"拒绝理由至少需要 {ctx.rules.decline_reason_min_chars} 个字，请写明不参加的具体原因"
        )
    _mark_answered(ctx, inv, InvitationState.DECLINED, reason)
    await ctx.session.flush()
    await record(
        ctx,
        "invitation.declined",
        f"invitation:{inv.id}",
        {"task": task.code, "department": inv.department.code, "reason": reason},
        [_answer_notice(ctx, task, inv, [])],
    )
    await _after_answer(ctx, task)
    return inv


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
                await _silence_notices(ctx, task, inv, due),
            )
            expired += 1
        await _consultation_done(ctx, task, invitations)
    return expired


async def _silence_notices(ctx: Ctx, task: JointTask, inv: Invitation, due: str) -> list[Notice]:
    """Silence is not a written refusal (000 §七): the department's chat and each of its leaders
    hear that it was recorded as 逾期未答复; the lead hears it may proceed without it."""

    def msg(for_lead: bool) -> OutMessage:
        return OutMessage.md(
            f"逾期未答复：{task.code}",
            render(
                "messages/invitation_expired.md.j2",
                task=task,
                department=inv.department,
                reply_due=due,
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


@dataclass
class InvitationView:
    """An invitation as its answer page shows it."""

    invitation: Invitation
    task: JointTask
    task_items: list[tuple[str, Item]]  # (department name, item), every department's
    own_items: list[Item]  # the invited department's item list, offered as check boxes
    items_in_task: set[int]  # own items already in the task (once accepted)
    responder: str = ""

    def default_item_ids(self) -> set[int]:
        """Pre-checked boxes: the items already in the task for this department (after an
        answer), else what a one-tap 接受 takes."""
        return set(self.items_in_task) or {i.id for i in default_items(self.own_items)}


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
    responder = ""
    if invitation.responded_by_id is not None:
        who = await session.get(Officer, invitation.responded_by_id)
        responder = who.name if who is not None else ""
    return InvitationView(
        invitation=invitation,
        task=task,
        task_items=[(name, item) for name, item, _ in rows],
        own_items=own_items,
        items_in_task={item.id for _, item, dept in rows if dept == invitation.department_id},
        responder=responder,
    )
