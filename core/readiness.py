"""`lianjian setup check` / 检查配置: what still blocks a county's first joint task.

A department can take part in a joint task when someone can answer its invitations (a liaison
and a leader whose platform accounts are bound), it has at least two active inspectors (a group
has at least two, 004 第十六条(二)), a current item list and a bound group chat. The county needs
targets to draw from, and, from 1 November, next year's holiday data for deadlines.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import func, select

from core.bindings import RobotAddress, masked, robot_problem
from core.changes import Ctx
from core.department_names import county_departments
from core.holidays import holiday_warning
from core.models import (
    DRAWABLE_STATUSES,
    ChatBinding,
    ChatPlatform,
    Department,
    Item,
    Officer,
    Target,
)
from core.officers import PLATFORM_LABELS, shared_certificates


@dataclass
class Readiness:
    departments: int = 0
    targets: int = 0
    problems: list[str] = field(default_factory=list)  # Chinese, one blocking problem a line

    @property
    def ok(self) -> bool:
        return not self.problems

    def text_zh(self) -> str:
        if self.ok:
            return (
                f"配置检查通过：{self.departments} 个成员单位、{self.targets} 户可抽取的检查对象，"
                "可以创建第一个联合抽查任务。"
            )
        lines = "\n".join(f"- {p}" for p in self.problems)
        return f"以下 {len(self.problems)} 项尚未就绪，完成后才能开展联合抽查：\n{lines}"


def has_platform_account(officer: Officer) -> bool:
    return bool(officer.accounts)


def _department_problems(
    dep: Department, people: list[Officer], items: int, chats: int, min_inspectors: int
) -> list[str]:
    missing = []
    for role, label in (("liaison", "联络员"), ("leader", "分管领导")):
        holders = [o for o in people if o.has_role(role)]
        if not holders:
            missing.append(f"没有{label}")
        elif not any(has_platform_account(o) for o in holders):
            named = "、".join(f"{o.code}（{o.name}）" for o in holders)
            missing.append(
                f"{label} {named} 未绑定企业微信或钉钉账号"
                f"（管理员在聊天中发：绑定 {holders[0].code} 企业微信 账号）"
            )
    inspectors = sum(1 for o in people if o.has_role("inspector"))
    if inspectors < min_inspectors:
        missing.append(f"在岗执法检查人员只有 {inspectors} 名（至少 {min_inspectors} 名）")
    if not items:
        missing.append("没有抽查事项清单")
    if not chats:
        missing.append("没有绑定部门群机器人（lianjian chat bind）")
    return [f"{dep.name}（{dep.code}）：{'；'.join(missing)}"] if missing else []


async def _robot_problems(
    ctx: Ctx, robots: Mapping[ChatPlatform, RobotAddress], options: str
) -> list[str]:
    """Each enabled group robot whose stored address `chat bind` would refuse now (bound
    before it checked, or under another host than the one configured): the sender refuses it
    too, so the chat gets nothing until it is bound again."""
    rows = await ctx.session.execute(
        select(ChatBinding, Department)
        .outerjoin(Department, Department.id == ChatBinding.department_id)
        .where(ChatBinding.enabled.is_(True), ChatBinding.webhook_url != "")
        .order_by(ChatBinding.id)
    )
    problems = []
    for binding, dep in rows.all():
        platform = ChatPlatform(binding.platform)
        robot = robots.get(platform)
        if robot is None:
            continue
        problem = robot_problem(platform, binding.webhook_url, binding.sign_secret, robot)
        if not problem:
            continue
        owner, to = (
            (f"{dep.name}（{dep.code}）", dep.code) if dep else ("联席会议办公室群", "office")
        )
        problems.append(
            f"{owner}的{PLATFORM_LABELS[platform]}群机器人 #{binding.id}"
            f"（{masked(binding.webhook_url)}）现在的地址不能用：{problem}。"
            f"请重新绑定：lianjian chat bind {to} --platform {platform} "
            f"--webhook 群机器人设置中的地址{options}"
        )
    return problems


async def check_setup(
    ctx: Ctx, robots: Mapping[ChatPlatform, RobotAddress] | None = None, bind_options: str = ""
) -> Readiness:
    """`robots`: each platform's group robot address as configured, to check the stored
    bindings against (the CLI has the configuration; without it they are not checked);
    `bind_options` end the `chat bind` line re-binding one, so that it checks the same."""
    session = ctx.session
    result = Readiness()
    departments = await county_departments(session)
    result.departments = len(departments)
    if not departments:
        result.problems.append(
            "尚未导入成员单位：lianjian import departments "
            "文件（模板：lianjian template departments）"
        )
    people: dict[int, list[Officer]] = defaultdict(list)
    active = (await session.scalars(select(Officer).where(Officer.active.is_(True)))).unique()
    for officer in active:
        people[officer.department_id].append(officer)
    for cert, held in shared_certificates(o for group in people.values() for o in group).items():
        result.problems.append(
            f"执法证号 {cert} 同时属于在岗人员 "
            + "、".join(f"{o.code}（{o.name}）" for o in held)
            + "：一个执法证号只能属于一人，请在执法检查人员名录中改正，多余的人员在岗状态填 离岗"
            "，再导入"
        )
    items = dict(
        (
            await session.execute(
                select(Item.department_id, func.count())
                .where(Item.current.is_(True))
                .group_by(Item.department_id)
            )
        ).all()
    )
    chats = dict(
        (
            await session.execute(
                select(ChatBinding.department_id, func.count())
                .where(ChatBinding.enabled.is_(True), ChatBinding.department_id.is_not(None))
                .group_by(ChatBinding.department_id)
            )
        ).all()
    )
    for dep in departments:
        result.problems += _department_problems(
            dep,
            people[dep.id],
            items.get(dep.id, 0),
            chats.get(dep.id, 0),
            ctx.rules.min_group_size,
        )
    result.targets = int(
        await session.scalar(
            select(func.count()).select_from(Target).where(Target.status.in_(DRAWABLE_STATUSES))
        )
        or 0
    )
    if not result.targets:
        result.problems.append("检查对象名录库为空：lianjian import targets 文件")
    if robots is not None:
        result.problems += await _robot_problems(ctx, robots, bind_options)
    if warning := await holiday_warning(ctx):
        result.problems.append(warning)
    return result
