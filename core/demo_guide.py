"""The simulator's guided first hour (`serve --demo`): from the newest task's state, who to
become next and what to type, so a newcomer walks one joint task from invitation to 公示 —
a replacement (更换 → 批准), a referral (移送 → 签收) and an objection (异议 → 复查 → 答复)
included, each typed in chat like any other command."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select

from core.cases import latest_result
from core.changes import Ctx
from core.models import (
    Case,
    Department,
    Draw,
    GroupMember,
    Invitation,
    JointTask,
    Objection,
    Officer,
    Referral,
    ReplacementRequest,
)
from core.result_parts import missing_parts
from core.review import pending_reviewers
from core.states import (
    CaseState,
    DrawState,
    InvitationState,
    ObjectionState,
    ReplacementState,
    TaskState,
)

TITLES = (
    "参与部门答复邀请",
    "牵头部门冻结抽取池",
    "快进到信标公布后并确认抽取",
    "联络员申请更换检查人员",
    "分管领导批准更换",
    "检查组移送线索",
    "接收部门签收移送",
    "检查人员录入结果",
    "牵头部门审核结果",
    "牵头部门公示",
    "登记检查对象的异议",
    "复查异议",
    "答复异议人",
)


@dataclass(frozen=True)
class Step:
    number: int  # 1-based index into TITLES; the last one's when the walk is done
    title: str
    who: str = ""  # officer code to become
    who_label: str = ""  # "卫健委 · 联络员 王某"
    say: str = ""  # the command to type
    hint: str = ""
    done: bool = False  # the walk is over: nothing left to do


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
    if not cases:
        return _done()
    open_case = next(
        (
            c
            for c in cases
            if c.state
            in (
                CaseState.ASSIGNED,
                CaseState.NOTIFIED,
                CaseState.INSPECTED,
                CaseState.PART_ENTERED,
            )
        ),
        None,
    )
    submitted = next((c for c in cases if c.state == CaseState.SUBMITTED), None)
    if open_case is not None and submitted is None:
        extra = await _replacement(ctx, task, open_case) or await _referral(ctx, task, open_case)
        if extra is not None:
            return extra
    if submitted is not None:
        # 004 第十九条: the lead and each participating department approve, in turn here
        result = await latest_result(ctx, submitted)
        assert result is not None
        pending = await pending_reviewers(ctx, task, result.id)
        reviewer = await _staff(ctx, pending[0].id, "liaison") if pending else lead
        return await _step(
            ctx,
            9,
            reviewer,
            f"通过 {submitted.code}",
            "或“退回 案件号 理由”；牵头部门和各参与部门都要审核",
        )
    if task.state == TaskState.PUBLISHED or any(c.state in _PUBLISHED for c in cases):
        # one case through 公示 is enough to show 异议 → 复查 → 答复; the other cases need
        # the same steps again and would hold the walk for a hundred messages
        return await _objection(ctx, cases, lead)
    if open_case is not None and not any(c.state == CaseState.APPROVED for c in cases):
        # 谁检查、谁录入 (000 §九–十): someone of a department whose part is still missing
        missing = [d.id for d in await missing_parts(ctx, open_case, task)]
        inspector = await ctx.session.scalar(
            select(Officer)
            .join(GroupMember, GroupMember.officer_id == Officer.id)
            .where(
                GroupMember.case_id == open_case.id,
                GroupMember.active.is_(True),
                *([GroupMember.department_id.in_(missing)] if missing else []),
            )
            .order_by(GroupMember.is_leader.desc(), GroupMember.id)
            .limit(1)
        )
        hint = (
            "先发“我的检查”看分到的案件；每个部门的检查人员录入本部门事项，都录入后送审核；"
            "有问题的结果用消息里的表单链接录入"
        )
        today = ctx.clock.today()
        if today < task.window_start:  # no inspection before the task's window (000 §五.3)
            cal = await ctx.work_calendar()
            days = cal.workdays_between(today, task.window_start)
            hint = (
                f"检查时间从 {task.window_start.month}月{task.window_start.day}日 开始："
                f"先点“快进 {days} 个工作日”，再发送。{hint}"
            )
        followup = await _referred_as(ctx, open_case, inspector)
        said = f"提交 {open_case.code} 未发现问题 {followup}今天"
        return await _step(ctx, 8, inspector, said, hint)
    return await _step(ctx, 10, lead, f"公示 {task.code}", "公示审核通过的结果")


async def _referred_as(ctx: Ctx, case: Case, inspector: Officer | None) -> str:
    """The follow-up the inspector's department owes its referral of the case, typed after the
    result ("移送办案机构 "), or "": a referral is a follow-up (001 第十七条), so 无需后续处置
    would be refused."""
    if inspector is None:
        return ""
    kind = await ctx.session.scalar(
        select(Referral.kind)
        .join(Officer, Officer.id == Referral.created_by_id)
        .where(Referral.case_id == case.id, Officer.department_id == inspector.department_id)
        .limit(1)
    )
    return f"{kind} " if kind else ""


def _done() -> Step:
    return Step(
        len(TITLES),
        "完成",
        hint="试试“进度 任务编号”“验证 任务编号”“案件 案件号”，或点“快进 5 个工作日”看提醒",
        done=True,
    )


async def _members(ctx: Ctx, case: Case) -> list[GroupMember]:
    return list(
        await ctx.session.scalars(
            select(GroupMember)
            .where(GroupMember.case_id == case.id, GroupMember.active.is_(True))
            .order_by(GroupMember.is_leader.desc(), GroupMember.id)
        )
    )


M = TypeVar("M", ReplacementRequest, Referral, Objection)


async def _first(ctx: Ctx, model: type[M], task_id: int, *where: Any) -> M | None:
    """The task's first row of a per-case table (the demo's request, referral, objection)."""
    return await ctx.session.scalar(
        select(model)
        .join(Case, Case.id == model.case_id)
        .where(Case.task_id == task_id, *where)
        .order_by(model.id)
        .limit(1)
    )


async def _replacement(ctx: Ctx, task: JointTask, case: Case) -> Step | None:
    """更换 by a department's liaison, then 批准 by its leader naming a spare inspector
    (001 第十四条, 004 第十三条); None once the demo's request is decided."""
    request = await _first(ctx, ReplacementRequest, task.id)
    if request is not None and request.state != ReplacementState.PENDING:
        return None
    if request is None:
        members = await _members(ctx, case)
        gone = next((m for m in members if not m.is_leader), None)
        if gone is None:
            return None
        officer = await ctx.session.get(Officer, gone.officer_id)
        assert officer is not None
        return await _step(
            ctx,
            4,
            await _staff(ctx, gone.department_id, "liaison"),
            f"更换 {case.code} {officer.code} 借调参加专项督查，检查期间无法到岗",
            "检查组成员或该部门联络员申请，该部门分管领导批准",
        )
    requested = await ctx.session.get(Case, request.case_id)
    officer = await ctx.session.get(Officer, request.officer_id)
    assert requested is not None and officer is not None
    taken = {m.officer_id for m in await _members(ctx, requested)}
    spare = next(
        (
            o
            for o in await ctx.session.scalars(
                select(Officer)
                .where(Officer.department_id == request.department_id, Officer.active.is_(True))
                .order_by(Officer.code)
            )
            if o.has_role("inspector") and o.id not in taken
        ),
        None,
    )
    return await _step(
        ctx,
        5,
        await _staff(ctx, request.department_id, "leader"),
        f"批准 {requested.code} {officer.code} {spare.code if spare else '新人员编号'}",
        "或“不批准 案件号 人员编号 理由”",
    )


async def _referral(ctx: Ctx, task: JointTask, case: Case) -> Step | None:
    """移送 to a department outside the task (001 第十七条), then its 签收; None once signed."""
    referral = await _first(ctx, Referral, task.id, Referral.to_department_id.is_not(None))
    if referral is None:
        joined = select(Invitation.department_id).where(
            Invitation.task_id == task.id, Invitation.state == InvitationState.ACCEPTED
        )
        outside = await ctx.session.scalar(
            select(Department)
            .where(Department.id != task.lead_department_id, Department.id.not_in(joined))
            .order_by(Department.code)
            .limit(1)
        )
        members = await _members(ctx, case)
        if outside is None or not members:
            return None
        leader = await ctx.session.get(Officer, members[0].officer_id)
        return await _step(
            ctx,
            6,
            leader,
            f"移送 {case.code} {outside.short_name or outside.name} "
            "检查中发现属该部门管辖的问题，移交案件线索",
            "接收部门须发送“签收 案件号”确认，逾期会被催办",
        )
    if referral.acknowledged_at is not None or referral.to_department_id is None:
        return None
    referred = await ctx.session.get(Case, referral.case_id)
    assert referred is not None
    return await _step(
        ctx,
        7,
        await _staff(ctx, referral.to_department_id, "liaison"),
        f"签收 {referred.code}",
        "签收后牵头部门收到通知，日报不再计为待签收",
    )


async def _objection(ctx: Ctx, cases: list[Case], lead: Officer | None) -> Step:
    """异议 → 复查 → 答复 on the first published case (004 第二十条)."""
    published = next((c for c in cases if c.state == CaseState.PUBLISHED), None)
    objection = await _first(ctx, Objection, cases[0].task_id) if cases else None
    if objection is None:
        if published is None:
            return _done()
        return await _step(
            ctx,
            11,
            lead,
            f"异议 {published.code} 企业称检查时已整改到位，请求更正检查结果",
            "公示之日起 60 日内登记；复查期限 20 个工作日",
        )
    case = await ctx.session.get(Case, objection.case_id)
    assert case is not None
    if objection.state == ObjectionState.RECEIVED:
        return await _step(
            ctx,
            12,
            lead,
            f"复查 {case.code} 维持 经核对检查记录，原结果无误",
            "复查有误时写“有误”，再用“更正 案件号 结果 理由”更正",
        )
    if objection.state != ObjectionState.REPLIED:
        return await _step(ctx, 13, lead, f"答复 {case.code}", "登记已向异议人反馈复查情况")
    return _done()


_PUBLISHED = (CaseState.PUBLISHED, CaseState.OBJECTED, CaseState.CORRECTED)

DEMO_TITLE = "餐饮住宿行业部门联合双随机抽查（模拟器演示）"


async def start_demo_task(ctx: Ctx) -> JointTask | None:
    """A task waiting for answers, created by the market regulator's liaison as they would
    (`serve --demo` on a fresh county). None when the county lacks the demo's departments."""
    from core.consultation import creation, opening
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
    task = await creation.create_task(
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
    await opening.open_consultation(ctx, task, invited)
    return task
