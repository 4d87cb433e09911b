"""The joint task shared by every stage: the look-ups each stage needs
(the task, its departments, invitations, items, and who may answer for a department).

Stages, in procedure order: `core.consultation` (draft → consulting → ready), `core.draws`
(frozen → locked), `core.groups` (inspecting), `core.cases` (results, review, publication),
`core.archive` (closed).
States and their moves: `core.states`.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from core.changes import Ctx
from core.codes import TASK_NUMBER
from core.errors import NotFound, ValidationFailed
from core.models import Department, Invitation, Item, JointTask, Officer, TaskItem
from core.states import InvitationState, TaskState

LISTED_CASES = 20  # cases listed in one chat message; the rest are one command away
# the target draw is locked: no new freeze, no new matching
DONE_STATES = (
    TaskState.LOCKED,
    TaskState.INSPECTING,
    TaskState.REVIEWING,
    TaskState.PUBLISHED,
    TaskState.CLOSED,
)
CHUNK = 2000  # ids per IN (…) query: far below SQLite's and asyncpg's parameter limits


async def get_department(ctx: Ctx, department_id: int) -> Department:
    dep = await ctx.session.get(Department, department_id)
    if dep is None:
        raise NotFound(f"未找到部门（编号 {department_id}）")
    return dep


# a case's number is its task's followed by the case's (LJ-2026-001-002, core.draws.targets)
_CASE_NUMBER = re.compile(rf"({TASK_NUMBER.pattern})-\d+")


def no_task(code: str) -> NotFound:
    """A task code that names no task (or none the asker may see: the same words): what the
    code should look like, so a typo is seen as one; a case number, with its task's (read from
    the number alone: it says nothing of whether the case exists)."""
    case = _CASE_NUMBER.fullmatch(code.strip().upper())
    if case is not None:
        return NotFound(
            f"{case.group(0)} 是案件号，不是任务编号；它所属任务的编号是 {case.group(1)}，"
            "请改写任务编号"
        )
    return NotFound(f"未找到任务 {code}，请核对任务编号（形如 LJ-2026-001）")


async def get_task(ctx: Ctx, code: str, *, for_update: bool = False) -> JointTask:
    """The task by code; `for_update` locks its row so concurrent draws or answers serialise."""
    stmt = select(JointTask).where(JointTask.code == code.strip().upper())
    if for_update:
        stmt = stmt.with_for_update(of=JointTask).execution_options(populate_existing=True)
    task = await ctx.session.scalar(stmt)
    if task is None:
        raise no_task(code)
    return task


async def task_by_id(ctx: Ctx, task_id: int, *, for_update: bool = False) -> JointTask:
    task = await ctx.session.get(
        JointTask,
        task_id,
        with_for_update={"of": JointTask} if for_update else None,
        populate_existing=for_update,
    )
    assert task is not None  # foreign key
    return task


async def task_invitations(ctx: Ctx, task: JointTask) -> list[Invitation]:
    rows = await ctx.session.scalars(
        select(Invitation)
        .where(Invitation.task_id == task.id)
        .order_by(Invitation.id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def task_items(ctx: Ctx, task: JointTask) -> list[Item]:
    """All items of the task, lead's first (one visit, many items)."""
    rows = await ctx.session.execute(
        select(Item, TaskItem.department_id)
        .join(TaskItem, TaskItem.item_id == Item.id)
        .where(TaskItem.task_id == task.id)
        .order_by(TaskItem.id)
    )
    return [item for item, _ in rows]


async def answerers(ctx: Ctx, department_id: int) -> list[Officer]:
    """The department's active liaisons and leaders, by id: the officers who may answer an
    invitation (`core.officers.liaisons` reads them here too, ordering its own by code)."""
    officers = await ctx.session.scalars(
        select(Officer)
        .where(Officer.department_id == department_id, Officer.active.is_(True))
        .order_by(Officer.id)
    )
    return [o for o in officers if o.has_role("liaison") or o.has_role("leader")]


NO_ANSWERER_FIX = (
    "请管理员先导入其联络员、分管领导（lianjian import inspectors 人员文件，含企业微信或"
    "钉钉账号），或用“绑定 人员编号 企业微信|钉钉 账号”绑定账号（lianjian setup check "
    "列出尚缺的配置）"
)

NO_ANSWERER_ASK = "请联系联席会议办公室管理员补录其联络员、分管领导，或为其绑定企业微信、钉钉账号"


async def unanswered_note(ctx: Ctx, department: Department) -> str:
    """ "" or, for a department left without an active liaison or leader (its last one left),
    what now waits for nobody — its pending invitations, the tasks it leads still running —
    and how to appoint someone (`require_answerers` refuses new tasks for it)."""
    if await answerers(ctx, department.id):
        return ""
    pending = await ctx.session.scalars(
        select(JointTask.code)
        .join(Invitation, Invitation.task_id == JointTask.id)
        .where(
            Invitation.department_id == department.id,
            Invitation.state == InvitationState.PENDING,
        )
        .order_by(JointTask.code)
    )
    led = await ctx.session.scalars(
        select(JointTask.code)
        .where(
            JointTask.lead_department_id == department.id,
            JointTask.state.not_in((TaskState.CLOSED, TaskState.WITHDRAWN)),
        )
        .order_by(JointTask.code)
    )
    waiting = [
        f"{what} {'、'.join(codes)} {who}"
        for what, codes, who in (
            ("待答复的邀请", list(pending), "无人答复"),
            ("牵头的任务", list(led), "无人接收答复、组织抽取"),
        )
        if codes
    ] or ["今后的邀请无人接收"]
    return (
        f"{department.name}（{department.code}）已没有在岗的联络员或分管领导：{'；'.join(waiting)}。"
        f"{NO_ANSWERER_FIX}"
    )


async def require_answerers(ctx: Ctx, departments: list[Department], *, lead: bool) -> None:
    """A department in a task needs someone to act for it: a liaison or leader receives the
    invitation and answers it; the lead's receive the answers and run the draw. Without one,
    an invitation waits unread until it expires and a decline goes to nobody."""
    lacking = [d for d in departments if not await answerers(ctx, d.id)]
    if not lacking:
        return
    names = "、".join(f"{d.name}（{d.code}）" for d in lacking)
    # the administrator runs the command line; an officer in chat is sent to them
    actor = ctx.actor
    fix = NO_ANSWERER_FIX if actor is None or actor.has_role("admin") else NO_ANSWERER_ASK
    if lead:
        raise ValidationFailed(
            f"牵头部门{names}没有在岗的联络员或分管领导，无人接收答复、组织抽取：{fix}，再发起任务"
        )
    raise ValidationFailed(
        f"受邀部门{names}没有在岗的联络员或分管领导，无人接收和答复邀请：{fix}，或不邀请该部门"
    )


async def participants(ctx: Ctx, task: JointTask) -> list[Department]:
    """Lead first, then the accepted departments by code."""
    accepted = await ctx.session.scalars(
        select(Department)
        .join(Invitation, Invitation.department_id == Department.id)
        .where(Invitation.task_id == task.id, Invitation.state == InvitationState.ACCEPTED)
        .order_by(Department.code)
    )
    return [task.lead_department, *accepted]
