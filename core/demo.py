"""`lianjian demo`: a synthetic county and one joint task through its whole lifecycle.

The county is written as the spreadsheets an office keeps (departments, item lists, officers,
targets, the city's already-inspected list) and loaded with the real importers. Every step then
goes through the same core services the chat handlers call, each in its own transaction,
acting as the officer who would do it — the objection (异议/复查/更正/答复), the referral
(移送/签收) and the replacement (更换/批准) included; the transcript is what a county office
would want to read. Time is a FixedClock that the script moves forward.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import documents, jointtask, objections, referrals, replacements
from core.audit import verify_chain
from core.changes import Ctx
from core.clock import CHINA_TZ, FixedClock, china_noon
from core.consultation import answers, creation, opening
from core.db import make_engine, make_sessionmaker
from core.draws import targets
from core.draws.verify import verify_draw
from core.errors import ValidationFailed
from core.groups import matching
from core.inspection import record_inspection_date
from core.models import Case, CaseResult, Department, GroupMember, Item, Officer, OutboxMessage
from core.publication import correct_result
from core.result_entry import load_entry_state, submit_result
from core.result_parts import quick_entry
from core.review import review_result
from core.schema import upgrade
from core.states import CaseState
from core.summary import daily_summary, summary_message
from core.synthetic import DEPARTMENTS, generate_county
from core.workdays import cn_date

T = TypeVar("T")
SHORT = {code: short for code, _name, short, _market, _items in DEPARTMENTS}
Out = Callable[[str], Any]
# The demo's stages in order; `run_demo` reports each as it starts (the CLI's progress bar).
STAGES = ("生成模拟县域", "征求意见", "抽取", "检查", "审核与公示", "异议", "核验")
YEAR = 2026
RULE = {
    "strata": [
        {
            "name": "重点关注",
            "risk_levels": ["D"],
            "flags": ["经营异常名录", "严重违法失信名单", "投诉举报"],
            "ratio": "0.10",
            "rounding": "up",
            "min": 1,
        },
        {"name": "一般风险", "risk_levels": ["B", "C", ""], "ratio": "0.03"},
        {"name": "低风险", "risk_levels": ["A"], "ratio": "0.01", "rounding": "down"},
    ]
}

PARTICIPANTS = {"WJ": "WJ-02", "GA": "GA-02", "JT": "JT-01"}  # accepting department → its item


class Demo:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, out: Out
    ) -> None:
        self.sessionmaker, self.clock, self.out = sessionmaker, clock, out

    async def step(self, actor_code: str | None, fn: Callable[[Ctx], Awaitable[T]]) -> T:
        """One transaction acting as `actor_code` (None = the system)."""
        async with self.sessionmaker() as session:
            actor = (
                None
                if actor_code is None
                else await session.scalar(select(Officer).where(Officer.code == actor_code))
            )
            result = await fn(Ctx(session=session, clock=self.clock, actor=actor))
            await session.commit()
            return result

    async def read(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self.sessionmaker() as session:
            return await fn(session)

    def say(self, text: str) -> None:
        self.out(text)

    def advance_to(self, day: dt.date) -> None:
        self.clock.set(china_noon(day))
        self.say(f"\n—— {cn_date(day)} ——")


async def _ids(session: AsyncSession, model: Any, codes: list[str]) -> list[int]:
    return list(await session.scalars(select(model.id).where(model.code.in_(codes))))


async def _members(session: AsyncSession, case_code: str) -> list[GroupMember]:
    return list(
        await session.scalars(
            select(GroupMember)
            .join(Case)
            .where(Case.code == case_code, GroupMember.active.is_(True))
            .order_by(GroupMember.id)
        )
    )


async def _consult(demo: Demo) -> str:
    demo.advance_to(dt.date(YEAR, 3, 2))
    sj = await demo.read(lambda s: _ids(s, Department, ["SJ"]))
    items = await demo.read(lambda s: _ids(s, Item, ["SJ-03"]))
    task = await demo.step(
        "SJ001",
        lambda c: creation.create_task(
            c,
            title="2026年度餐饮住宿行业部门联合双随机抽查",
            lead_department_id=sj[0],
            window_start=dt.date(YEAR, 3, 16),
            window_end=dt.date(YEAR, 4, 30),
            item_ids=items,
            scope={"industries": ["餐饮服务", "住宿", "食品销售"]},
            rule=RULE,
        ),
    )
    demo.say(f"县市场监管局联络员创建联合抽查任务 {task.code}：{task.title}")
    invited = await demo.read(lambda s: _ids(s, Department, ["WJ", "GA", "JT", "HB"]))

    async def consult(c: Ctx) -> str:
        await opening.open_consultation(c, await jointtask.get_task(c, task.code), invited)
        return (await jointtask.get_task(c, task.code)).commitment

    commitment = await demo.step("SJ001", consult)
    demo.say(f"向卫健、公安、交通、生态环境四个部门发出邀请；公布随机种子承诺值 {commitment[:16]}…")
    for dept, item in PARTICIPANTS.items():
        inv = await demo.read(partial(_invitation_id, task_code=task.code, dept_code=dept))
        chosen = await demo.read(partial(_ids, model=Item, codes=[item]))
        await demo.step(
            f"{dept}001",
            partial(answers.accept_invitation, invitation_id=inv, item_ids=chosen),
        )
        demo.say(f"{SHORT[dept]}联络员在部门群点击“接受”，勾选本部门事项 {item}")
    inv = await demo.read(lambda s: _invitation_id(s, task.code, "HB"))
    try:
        await demo.step("HB001", lambda c: answers.decline_invitation(c, inv, "无"))
    except Exception as err:  # the short reason is refused: the transcript shows the rule
        demo.say(f"生态环境局联络员回复“拒绝”但理由过短，机器人提示：{err}")
    reason = "本部门本季度已安排排污许可专项执法检查，与该任务检查对象高度重合，书面函告不参加。"
    await demo.step("HB001", lambda c: answers.decline_invitation(c, inv, reason))
    demo.say(f"生态环境局书面说明理由后拒绝：{reason}")
    return task.code


async def _invitation_id(session: AsyncSession, task_code: str, dept_code: str) -> int:
    from core.models import Invitation, JointTask

    found = await session.scalar(
        select(Invitation.id)
        .join(JointTask)
        .join(Department, Department.id == Invitation.department_id)
        .where(JointTask.code == task_code, Department.code == dept_code)
    )
    assert found is not None
    return int(found)


async def _draw(demo: Demo, code: str) -> int:
    demo.advance_to(dt.date(YEAR, 3, 9))
    frozen = await demo.step(
        "SJ001", lambda c: targets.freeze_pool(c, code, f"{YEAR}年3月10日福彩3D开奖号码")
    )
    strata = frozen.parameters.get("strata", {})
    excluded = frozen.parameters.get("exclusions", {})
    demo.say(f"冻结抽取池：{frozen.pool_size} 户（{_fmt(strata)}）；排除 {_fmt(excluded)}")
    demo.say(f"池哈希 {frozen.pool_hash[:16]}…，将使用信标：{YEAR}年3月10日福彩3D开奖号码")
    demo.advance_to(dt.date(YEAR, 3, 10))
    demo.clock.set(
        dt.datetime.combine(dt.date(YEAR, 3, 10), dt.time(21, 40), CHINA_TZ)
    )  # drawn ~21:15
    locked = await demo.step("SJ001", lambda c: targets.confirm_draw(c, code, "4 7 1"))
    demo.say(
        "21:40 开奖号码已公布，录入信标“4 7 1”，抽中并锁定 "
        f"{len(locked.selection)} 户；公开种子 {locked.seed_hex[:16]}…"
    )
    matched = await demo.step("SJ001", lambda c: matching.match_inspectors(c, code))
    demo.say(f"随机匹配执法检查人员，组成 {len(matched)} 个联合检查组，每名人员收到自己的检查任务")
    return locked.id


def _fmt(counts: dict[str, Any]) -> str:
    return "，".join(f"{k} {v}" for k, v in counts.items()) or "无"


async def _inspect(demo: Demo, code: str) -> list[str]:
    case_codes = await demo.read(lambda s: _case_codes(s, code))
    first = case_codes[0]
    members = await demo.read(lambda s: _members(s, first))
    other = next(m for m in members if not m.is_leader)
    officer, dept = other.officer.code, other.officer.department.code
    reason = "本人配偶在该企业任职，申请回避"
    await demo.step(
        officer, lambda c: replacements.request(c, first, officer, reason, kind="recusal")
    )
    await demo.step(f"{dept}002", lambda c: replacements.decide(c, first, officer))
    demo.say(
        f"{other.officer.name} 申请回避 {first}，经本部门分管领导批准，"
        "按抽取顺序由同部门下一名人员替补"
    )
    await _replace(demo, case_codes[-1])
    demo.advance_to(dt.date(YEAR, 3, 17))
    for case_code in case_codes:
        members = await demo.read(partial(_members, case_code=case_code))
        leader = next(m for m in members if m.is_leader)
        await demo.step(
            leader.officer.code,
            partial(documents.issue_notice, case_code=case_code, via="demo"),
        )
    demo.say(
        f"各检查组组长领取并向被检查对象发放《联合抽查通知书》，{len(case_codes)} 户案件改为"
        "“已通知”；此后再打印或归档的通知书都署发放之日（004 第十六条(二)）"
    )
    demo.advance_to(dt.date(YEAR, 3, 20))
    for n, case_code in enumerate(case_codes):
        members = await demo.read(partial(_members, case_code=case_code))
        leader = next(m for m in members if m.is_leader)
        await demo.step(
            leader.officer.code,
            partial(record_inspection_date, case_code=case_code, day=dt.date(YEAR, 3, 19)),
        )
        codes, followups = (["1"], ["无需后续处置"])
        if n == 1:
            codes, followups = (["A", "2", "B"], ["移送办案机构"])
            # 移送 案件号 部门 线索: to a department outside the task (001 第十七条)
            await demo.step(
                leader.officer.code,
                partial(
                    referrals.refer,
                    case_code=case_code,
                    department_text="生态环境",
                    clue="后厨油烟未经净化直排，属生态环境部门管辖，移交案件线索",
                ),
            )
        # 谁检查、谁录入 (000 §九–十): each department's inspector enters its own part; the
        # group leader's entry comes last and sends the case to review
        for department_id in dict.fromkeys(m.department_id for m in members):
            if department_id == leader.department_id:
                continue
            entering = next(m for m in members if m.department_id == department_id)
            await demo.step(
                entering.officer.code,
                partial(_enter, case_code=case_code, codes=["1"], followups=["无需后续处置"]),
            )
        await demo.step(
            leader.officer.code,
            partial(_enter, case_code=case_code, codes=codes, followups=followups),
        )
    demo.say(
        f"各检查组于 3月19日 一次上门完成多部门事项检查，各部门检查人员分别录入本部门事项的结果"
        f"（谁检查、谁录入；{len(case_codes)} 户，"
        f"其中 {case_codes[1]} 发现问题，油烟直排线索移送县生态环境局）"
    )
    demo.advance_to(dt.date(YEAR, 3, 23))
    signed = await demo.step("HB001", partial(referrals.acknowledge, case_code=case_codes[1]))
    demo.say(
        f"生态环境局联络员发送“签收 {case_codes[1]}”，确认收到 {len(signed)} 条移送线索；"
        "牵头部门收到签收通知（001 第十七条、004 第二十一条）"
    )
    return case_codes


async def _enter(
    c: Ctx, case_code: str, codes: list[str], followups: list[str], remarks: str = ""
) -> CaseResult:
    """What the chat's 提交 enters (handlers.results): the codes are the result of each of the
    officer's own department's items, merged with the parts the other departments entered
    (谁检查、谁录入, 000 §九–十), so the record form and the archive show every item's result."""
    assert c.actor is not None  # demo.step acts as an officer
    loaded = await load_entry_state(c, case_code)
    entry = quick_entry(loaded, c.actor, codes, ["实地检查"], followups)
    if remarks:
        entry = dataclasses.replace(entry, remarks=remarks)
    return await submit_result(
        c,
        case_code,
        inspected_on=dt.date(YEAR, 3, 19),
        loaded=loaded,
        **dataclasses.asdict(entry),
    )


async def _replace(demo: Demo, case_code: str) -> None:
    """更换 then 批准 (001 第十四条, 004 第十三条): the department's liaison asks, its leader
    approves and names an inspector of the department who is not in the group."""
    members = await demo.read(partial(_members, case_code=case_code))
    gone = next(m for m in members if not m.is_leader)
    dept = gone.officer.department.code
    taken = {m.officer_id for m in members}
    spare = await demo.read(
        partial(_spare_inspector, department_id=gone.department_id, taken=taken)
    )
    reason = "借调参加省局专项督查，检查期间无法到岗"
    officer = gone.officer.code
    await demo.step(f"{dept}001", lambda c: replacements.request(c, case_code, officer, reason))
    demo.say(f"{SHORT.get(dept, dept)}联络员申请更换 {case_code} 的 {gone.officer.name}：{reason}")
    await demo.step(
        f"{dept}002",
        lambda c: replacements.decide(c, case_code, officer, new_officer_code=spare),
    )
    demo.say(f"该部门分管领导批准更换，指定 {spare} 接替（审计留痕，检查组成员收到通知）")


async def _spare_inspector(session: AsyncSession, department_id: int, taken: set[int]) -> str:
    """The first active inspector of the department (by code) who is not in the group."""
    officers = await session.scalars(
        select(Officer)
        .where(Officer.department_id == department_id, Officer.active.is_(True))
        .order_by(Officer.code)
    )
    return next(o.code for o in officers if o.has_role("inspector") and o.id not in taken)


async def _case_codes(session: AsyncSession, task_code: str) -> list[str]:
    return list(
        await session.scalars(
            select(Case.code).where(Case.code.like(f"{task_code}-%")).order_by(Case.code)
        )
    )


async def _review_and_publish(demo: Demo, code: str, case_codes: list[str]) -> None:
    demo.advance_to(dt.date(YEAR, 3, 24))
    returned = case_codes[2 % len(case_codes)]
    await demo.step(
        "SJ001",
        lambda c: review_result(
            c, returned, False, "检查记录缺少现场照片，请补充后重新提交", department="SJ"
        ),
    )
    demo.say(f"牵头部门审核退回 {returned} 中市场监管局录入的部分：检查记录缺少现场照片")
    leader = next(m for m in await demo.read(lambda s: _members(s, returned)) if m.is_leader)
    await demo.step(
        leader.officer.code,
        lambda c: _enter(
            c, returned, codes=["1"], followups=["无需后续处置"], remarks="已补充现场照片"
        ),
    )
    demo.say(f"组长（市场监管局）补充材料后重新录入本部门部分，{returned} 再次送审核")
    # 004 第十九条: the lead and every participating department approve each result
    reviewers = ("SJ001", *(f"{dept}001" for dept in PARTICIPANTS))
    for case_code in case_codes:
        for reviewer in reviewers:
            await demo.step(reviewer, partial(review_result, case_code=case_code, approve=True))
    names = "、".join(SHORT[dept] for dept in PARTICIPANTS)
    demo.say(f"牵头部门与参与部门（{names}）联络员逐户审核通过 {len(case_codes)} 户检查结果")
    published = await demo.read(lambda s: _published_count(s, code))
    demo.say(f"审核通过后自动公示（004 第十九条）：{published} 户检查结果已公示")


async def _published_count(session: AsyncSession, task_code: str) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Case)
            .where(Case.code.like(f"{task_code}-%"), Case.state == CaseState.PUBLISHED)
        )
        or 0
    )


async def _objection(demo: Demo, case_codes: list[str]) -> None:
    demo.advance_to(dt.date(YEAR, 4, 7))
    case_code = case_codes[1]
    obj = await demo.step(
        "SJ001",
        lambda c: objections.file_objection(
            c,
            case_code,
            "企业法定代表人",
            "年度报告已于公示前补报，请求更正检查结果",
            dt.date(YEAR, 4, 7),
        ),
    )
    demo.say(f"{case_code} 的检查对象在公示期内提出异议，复查期限 {cn_date(obj.recheck_due_on)}")
    demo.advance_to(dt.date(YEAR, 4, 14))
    await demo.step(
        "SJ001",
        lambda c: objections.record_recheck(
            c, obj.id, "经复查，年度报告确于检查前补报，原结果有误", True
        ),
    )
    await demo.step(
        "SJ001",
        lambda c: correct_result(
            c,
            case_code,
            reason="复查发现原结果有误",
            codes=["1"],
            methods=["实地检查", "网络监测"],
            followups=["移送办案机构"],  # the referral stands (001 第十七条)
            inspected_on=dt.date(YEAR, 3, 19),
        ),
    )
    await demo.step("SJ001", lambda c: objections.reply_objection(c, obj.id))
    demo.say("复查属实：更正公示结果（新版本，原版本保留可查），并答复异议人")


async def _closing(demo: Demo, draw_id: int) -> bool:
    async def check(session: AsyncSession) -> bool:
        report = await verify_draw(Ctx(session, demo.clock), draw_id)
        for c in report.checks:
            demo.say(f"  {'✓' if c.ok else '✗'} {c.label}")
        chain = await verify_chain(session)
        demo.say(f"  {'✓' if not chain else '✗'} 审计日志哈希链完整")
        sent = await session.scalar(select(func.count()).select_from(OutboxMessage))
        demo.say(f"全程共生成 {sent} 条待发送消息（通知、卡片、催办）")
        summary = await daily_summary(Ctx(session, demo.clock), demo.clock.today())
        demo.say("\n" + summary_message(summary).body)
        return report.ok and not chain

    demo.say("\n抽取结果独立验证：")
    return await demo.read(check)


def _no_stage(_name: str) -> None:
    """Stage reporting is optional: tests and non-terminal runs only read the transcript."""


async def run_demo(
    *, db: str | None, seed: int, targets: int, out: Out, stage: Callable[[str], None] = _no_stage
) -> int:
    path = db or str(Path(tempfile.mkdtemp(prefix="lianjian-demo-")) / "demo.sqlite3")
    if Path(path).exists():  # noqa: ASYNC240 - one stat before anything runs
        # an error, not transcript: the CLI prints it on stderr and exits 2
        raise ValidationFailed(f"{path} 已存在；演示需要一个新的数据库文件")
    engine = make_engine(path)
    try:
        await upgrade(engine)
        demo = Demo(make_sessionmaker(engine), FixedClock(china_noon(dt.date(YEAR, 3, 2))), out)
        stage(STAGES[0])
        # the import files go beside an SQLite file; a server database (URL) has no folder
        beside = Path(tempfile.mkdtemp(prefix="lianjian-demo-")) if "://" in path else None
        folder = (beside or Path(path).parent) / "county-files"
        folder.mkdir(exist_ok=True)
        facts = await demo.step(
            None, lambda c: generate_county(c, folder, seed=seed, targets=targets, year=YEAR)
        )
        out(
            f"生成模拟县域（种子 {seed}）的导入文件 {folder}，用正式导入功能导入："
            f"{facts.departments} 个成员单位，{facts.officers} "
            f"名人员（执法检查人员 {facts.inspectors} 名），"
            f"{facts.targets} 户检查对象，市级已检查名单 {facts.exclusions} 户；数据库 {path}"
        )
        stage(STAGES[1])
        code = await _consult(demo)
        stage(STAGES[2])
        draw_id = await _draw(demo, code)
        stage(STAGES[3])
        case_codes = await _inspect(demo, code)
        stage(STAGES[4])
        await _review_and_publish(demo, code, case_codes)
        stage(STAGES[5])
        await _objection(demo, case_codes)
        stage(STAGES[6])
        ok = await _closing(demo, draw_id)
        out(f"\n演示完成。查看抽取：lianjian draw show {code} --db {path} --json")
        return 0 if ok else 1
    finally:
        await engine.dispose()
