"""The simulator's guided first hour (`serve --demo`): from the newest task's state, who to
become next and what to type, so a newcomer walks one joint task from invitation to 公示."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlalchemy import select

from core.changes import Ctx
from core.models import Case, Department, Draw, GroupMember, Invitation, JointTask, Officer
from core.states import CaseState, DrawState, InvitationState, TaskState

TITLES = (
    "参与部门答复邀请",
    "牵头部门冻结抽取池",
    "快进到信标公布后并确认抽取",
    "检查人员录入结果",
    "牵头部门审核结果",
    "牵头部门公示",
)


@dataclass(frozen=True)
class Step:
    number: int  # 1-based index into TITLES; len(TITLES) + 1 when the walk is done
    title: str
    who: str = ""  # officer code to become
    who_label: str = ""  # "卫健委 · 联络员 王某"
    say: str = ""  # the command to type
    hint: str = ""


async def _label(ctx: Ctx, officer: Officer) -> str:
    department = await ctx.session.get(Department, officer.department_id)
    return f"{department.name if department else ''} · {officer.name}（{officer.code}）"


async def _staff(ctx: Ctx, department_id: int, role: str) -> Officer | None:
    for officer in await ctx.session.scalars(
        select(Officer)
        .where(Officer.department_id == department_id, Officer.active.is_(True))
        .order_by(Officer.code)
    ):
        if officer.has_role(role):
            return officer
    return None


async def _step(ctx: Ctx, number: int, officer: Officer | None, say: str, hint: str) -> Step:
    label = await _label(ctx, officer) if officer is not None else ""
    return Step(number, TITLES[number - 1], officer.code if officer else "", label, say, hint)


async def next_step(ctx: Ctx) -> Step:
    task = await ctx.session.scalar(select(JointTask).order_by(JointTask.id.desc()).limit(1))
    if task is None:
        return Step(0, "还没有任务", hint="用 lianjian task create 创建一个联合抽查任务")
    lead = await _staff(ctx, task.lead_department_id, "liaison")
    if task.state == TaskState.CONSULTING:
        return await _answer(ctx, task)
    if task.state == TaskState.READY:
        frozen = await ctx.session.scalar(
            select(Draw.id).where(Draw.task_id == task.id, Draw.state == DrawState.FROZEN)
        )
        if frozen is None:
            return await _step(
                ctx,
                2,
                lead,
                f"抽取 {task.code}",
                "冻结抽取池和规则，公布承诺值与将要使用的公开信标",
            )
        return await _step(
            ctx,
            3,
            lead,
            f"确认抽取 {task.code} 417",
            "先点上方“快进到信标公布后”，再用信标值（福彩3D 三位数）确认",
        )
    return await _after_lock(ctx, task, lead)


async def _answer(ctx: Ctx, task: JointTask) -> Step:
    pending = await ctx.session.scalar(
        select(Invitation)
        .where(Invitation.task_id == task.id, Invitation.state == InvitationState.PENDING)
        .order_by(Invitation.id)
        .limit(1)
    )
    liaison = await _staff(ctx, pending.department_id, "liaison") if pending else None
    return await _step(
        ctx,
        1,
        liaison,
        f"接受 {task.code}",
        "也可以点邀请卡片上的“接受”，或发送“拒绝 任务编号 理由”",
    )


async def _after_lock(ctx: Ctx, task: JointTask, lead: Officer | None) -> Step:
    cases = list(
        await ctx.session.scalars(select(Case).where(Case.task_id == task.id).order_by(Case.id))
    )
    open_case = next(
        (
            c
            for c in cases
            if c.state in (CaseState.ASSIGNED, CaseState.NOTIFIED, CaseState.INSPECTED)
        ),
        None,
    )
    submitted = next((c for c in cases if c.state == CaseState.SUBMITTED), None)
    if submitted is not None:
        return await _step(ctx, 5, lead, f"通过 {submitted.code}", "或“退回 案件号 理由”")
    if task.state == TaskState.PUBLISHED or not cases:
        return Step(
            len(TITLES) + 1,
            "完成",
            hint="试试“进度 任务编号”“验证 任务编号”，或点“快进 5 个工作日”看提醒",
        )
    if open_case is not None and not any(c.state == CaseState.APPROVED for c in cases):
        inspector = await ctx.session.scalar(
            select(Officer)
            .join(GroupMember, GroupMember.officer_id == Officer.id)
            .where(GroupMember.case_id == open_case.id, GroupMember.active.is_(True))
            .order_by(GroupMember.is_leader.desc(), GroupMember.id)
            .limit(1)
        )
        return await _step(
            ctx,
            4,
            inspector,
            f"提交 {open_case.code} 未发现问题",
            "先发“我的检查”看分到的案件；有问题的结果用消息里的表单链接录入",
        )
    return await _step(ctx, 6, lead, f"公示 {task.code}", "公示审核通过的结果")


DEMO_TITLE = "餐饮住宿行业部门联合双随机抽查（模拟器演示）"


async def start_demo_task(ctx: Ctx) -> JointTask | None:
    """A task waiting for answers, created by the market regulator's liaison as they would
    (`serve --demo` on a fresh county). None when the county lacks the demo's departments."""
    from core import consultation
    from core.demo import RULE
    from core.models import Item

    lead = await ctx.session.scalar(select(Department).where(Department.code == "SJ"))
    items = list(await ctx.session.scalars(select(Item.id).where(Item.code == "SJ-03")))
    if lead is None or not items:
        return None
    liaison = await _staff(ctx, lead.id, "liaison")
    ctx = dataclasses.replace(ctx, actor=liaison)
    today = ctx.clock.today()
    cal = await ctx.work_calendar()
    task = await consultation.create_task(
        ctx,
        title=DEMO_TITLE,
        lead_department_id=lead.id,
        window_start=cal.add_workdays(today, 10).day,
        window_end=cal.add_workdays(today, 40).day,
        item_ids=items,
        scope={"industries": ["餐饮服务", "住宿", "食品销售"]},
        rule=RULE,
    )
    invited = list(
        await ctx.session.scalars(
            select(Department.id).where(Department.code.in_(["WJ", "GA", "JT", "HB"]))
        )
    )
    await consultation.open_consultation(ctx, task, invited)
    return task
