"""The access-control matrix (issue 11): every command, card action and page × every role ×
own / other / unknown subject, run against the real dispatcher and page handlers, each cell in
its own transaction that is rolled back, so every cell starts from the same county. The
expected outcomes are tests/access_matrix.py, which README's "Access" section shows.

A refusal must be audited ("denied", or "auth.unknown_user" for an account bound to no officer);
an outsider asking about a task sees the public side only (002 二(六)).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import pages
from bot.dispatch import Dispatcher
from core import access, images, officers
from core.attachments import FileStore, Limits
from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.consultation import opening
from core.draws import quickdraw
from core.errors import DomainError, NotFound, PermissionDenied
from core.messages import Event
from core.models import (
    ROLES,
    Attachment,
    AuditEvent,
    Case,
    CaseResult,
    Department,
    GroupMember,
    Invitation,
    JointTask,
    Officer,
    OutboxMessage,
    PlanEntry,
)
from core.rules import Rules
from core.states import ResultState
from handlers import forms, invitation_page, public, review_page
from handlers.base import HandlerCtx
from handlers.commands import COMMANDS
from handlers.documents import DocumentRequest, documents_page
from handlers.pages import Page, PageCtx
from tests import factories as f
from tests.access_matrix import MATRIX, NA, NO, NOT_FOUND, OK, PUBLIC, RELATIONS, ROLE_KEYS, Row
from tests.access_matrix import render as render_matrix
from tests.case_factories import enter_other_parts
from tests.dispatch_support import make_dispatcher, send, text_event
from tests.server_helpers import make_services

README = Path(__file__).resolve().parent.parent / "README.md"
BEACON_OUT = china_noon(dt.date(2026, 3, 4))
INSPECTING = china_noon(dt.date(2026, 3, 25))
UNKNOWN_TASK, UNKNOWN_CASE, UNKNOWN_OFFICER = "LJ-2099-999", "LJ-2099-999-0001", "P99999"
OUTSIDE_MARK = "本部门未参加该任务"


@dataclass
class Scene:
    """One county in every state the matrix needs: T1 inspecting (cases C1 assigned, C2
    submitted, C3 published with an objection, C4 published; C1 referred to the invited
    department, a replacement of its lead member asked), T2 with the invited department's
    invitation pending, T3 frozen and its beacon out, a plan entry of the lead."""

    depts: dict[str, Department]  # lead, partner, invited, out
    people: dict[tuple[str, str], Officer]  # (dept key, role) -> officer with that one role
    t1: str
    t2: str
    t3: str
    cases: list[Case]
    member: Officer  # the lead department's member of C1's group
    spare: Officer  # another lead inspector, not in C1's group
    invitation: Invitation
    plan: str
    outside_name: str
    invited_name: str
    uscc: str  # a target's, for 利害关系
    extra: dict[str, Any] = field(default_factory=dict)


async def build_scene(sm: async_sessionmaker[AsyncSession], clock: FixedClock) -> Scene:
    async with sm() as s, s.begin():
        w = await f.world(s, partners=2, inspectors=3, n_targets=80)
        out = await f.dept(s, inspectors=2, name="县卫生健康局")
        ctx = Ctx(session=s, clock=clock, rules=Rules())
        t1 = await f.ready_task(ctx, w, accept=[w.partners[0]])
        t3 = await f.ready_task(ctx, w, title="2026年第三次联合抽查")
        t2 = await f.draft_task(ctx, w, title="2026年第二次联合抽查")
        [inv] = await opening.open_consultation(
            f.as_actor(ctx, w.lead.liaison), t2, [w.partners[1].dep.id]
        )
        depts = {
            "lead": w.lead,
            "partner": w.partners[0],
            "invited": w.partners[1],
            "out": out,
        }
        people: dict[tuple[str, str], Officer] = {}
        for key, d in depts.items():
            people[(key, "inspector")] = d.inspectors[-1]
            people[(key, "liaison")] = d.liaison
            people[(key, "leader")] = d.leader
            people[(key, "admin")] = await f.officer(s, d.dep, "admin")
            people[(key, "expert")] = await f.officer(s, d.dep, "expert")
        s.add(
            PlanEntry(
                year=2026,
                code="JH-2026-01",
                title="计划内联合抽查",
                lead_department_id=w.lead.dep.id,
                participant_ids=[w.partners[0].dep.id],
                item_ids=[i.id for i in w.lead.items],
                ratio="0.05",
                month=4,
            )
        )
        # a quick draw the system froze: any officer may supply its number (002 二(五))
        quick = (await quickdraw.draw_targets(ctx, 1)).code
        codes = (t1.code, t2.code, t3.code)
        dept_rows = {k: d.dep for k, d in depts.items()}
        names = (out.dep.name, w.partners[1].dep.name)
        uscc = w.targets[-1].uscc
    dispatcher = make_dispatcher(sm, clock)
    lead = depts["lead"].liaison.code
    partner = depts["partner"].liaison.code

    async def say(who: str, text: str) -> str:
        rows = await send(sm, dispatcher, text_event(who, text))
        return "\n".join(r.message.get("body", "") for r in rows)

    await say(lead, f"抽取 {codes[0]}")
    await say(lead, f"抽取 {codes[2]}")
    clock.set(BEACON_OUT)
    await say(lead, f"确认抽取 {codes[0]} 4 1 7")
    clock.set(INSPECTING)
    async with sm() as s:
        cases = list(
            await s.scalars(
                select(Case)
                .join(JointTask, JointTask.id == Case.task_id)
                .where(JointTask.code == codes[0])
                .order_by(Case.id)
            )
        )
        assert len(cases) >= 4, len(cases)
        groups = {}
        for c in cases:
            groups[c.id] = list(
                await s.scalars(
                    select(Officer)
                    .join(GroupMember, GroupMember.officer_id == Officer.id)
                    .where(GroupMember.case_id == c.id, GroupMember.active.is_(True))
                )
            )
    lead_id = dept_rows["lead"].id
    member = next(o for o in groups[cases[0].id] if o.department_id == lead_id)
    spare = next(
        o
        for o in depts["lead"].inspectors
        if o.id not in {m.id for m in groups[cases[0].id]} and o.id != member.id
    )
    for c in cases[1:4]:
        doer = groups[c.id][0]
        async with sm() as s:  # the other department's part is in (000 §九–十)
            await enter_other_parts(s, c.code, doer, clock.now())
            await s.commit()
        assert "已提交" in await say(doer.code, f"提交 {c.code} 未发现问题 3月20日") or True
    for c in cases[2:4]:
        await say(lead, f"通过 {c.code}")
        await say(partner, f"通过 {c.code}")
    await say(lead, f"公示 {codes[0]}")
    await say(lead, f"异议 {cases[2].code} 企业称检查前已取得许可 3月25日")
    await say(member.code, f"移送 {cases[0].code} {names[1]} 该店未取得公共场所卫生许可")
    await say(member.code, f"更换 {cases[0].code} {member.code} 长期病假无法到岗")
    recusing = next(o for o in groups[cases[0].id] if o.department_id == dept_rows["partner"].id)
    await say(recusing.code, f"回避 {cases[0].code} 本人配偶在该企业任职")
    async with sm() as s:
        states = {c.code: await s.scalar(select(Case.state).where(Case.id == c.id)) for c in cases}
    assert [states[c.code] for c in cases[:4]] == [
        "assigned",
        "submitted",
        "objected",
        "published",
    ], states
    return Scene(
        depts=dept_rows,
        people=people,
        t1=codes[0],
        t2=codes[1],
        t3=codes[2],
        cases=cases,
        member=member,
        spare=spare,
        invitation=inv,
        plan="JH-2026-01",
        outside_name=names[0],
        invited_name=names[1],
        uscc=uscc,
        extra={"quick": quick, "recusing": recusing.code},
    )


# ---------------------------------------------------------------- what each row does


def _command(scene: Scene, row: Row, known: bool) -> str:
    t1 = scene.t1 if known else UNKNOWN_TASK
    t2 = scene.t2 if known else UNKNOWN_TASK
    t3 = scene.t3 if known else UNKNOWN_TASK
    c = [x.code for x in scene.cases] if known else [UNKNOWN_CASE] * 4
    member = scene.member.code if known else UNKNOWN_OFFICER
    return {
        "帮助": "帮助",
        "任务": "任务",
        "任务 编号": f"任务 {t1}",
        "接受 编号": f"接受 {t2}",
        "拒绝 编号 理由": f"拒绝 {t2} 本季度执法力量已全部投入专项整治",
        "抽取 编号": f"抽取 {t3}",
        "确认抽取 编号 信标值": f"确认抽取 {t3} 4 1 7",
        "匹配 编号": f"匹配 {t1}",
        "快抽 N 名 执法人员": "快抽 1 名 执法人员",
        "确认快抽 编号 数字": f"确认快抽 {scene.extra['quick'] if known else 'KC-2099-9999'} 4711",
        "我的检查": "我的检查",
        "通知书 案件号": f"通知书 {c[0]}",
        "检查 案件号 日期": f"检查 {c[0]} 3月20日",
        "延期 编号 日期 理由": f"延期 {t1} 2026年7月15日 汛期部分企业停产，需顺延检查",
        "撤销 编号 理由": f"撤销 {t2} 误建的任务，与另一任务重复",
        "提交 案件号 结果": f"提交 {c[0]} 未发现问题 3月20日",
        "通过 案件号": f"通过 {c[1]}",
        "退回 案件号 理由": f"退回 {c[1]} 检查记录表缺少检查人员签名",
        "公示 编号": f"公示 {t1}",
        "案件 案件号": f"案件 {c[0]}",
        "异议 案件号 内容": f"异议 {c[3]} 企业称检查前已公示许可信息 3月25日",
        "复查 案件号 维持 情况": f"复查 {c[2]} 维持 经核对检查记录，原结果无误",
        "更正 案件号 结果 理由": f"更正 {c[3]} 未发现问题 复查发现原记录有误",
        "答复 案件号": f"答复 {c[2]}",
        "移送 案件号 部门 线索": f"移送 {c[0]} {scene.outside_name} 发现无证经营线索",
        "签收 案件号": f"签收 {c[0]}",
        "更换 案件号 人员 理由": f"更换 {c[0]} {member} 家中有事无法到岗",
        "批准 案件号 人员 新人员": f"批准 {c[0]} {member} {scene.spare.code}",
        "批准 案件号 回避人员": f"批准 {c[0]} {scene.extra['recusing'] if known else member}",
        "不批准 案件号 人员 理由": f"不批准 {c[0]} {member} 病假一周内结束",
        "回避 案件号 理由": f"回避 {c[0]} 本人与该企业负责人系近亲属",
        "进度 编号": f"进度 {t1}",
        "名单 编号": f"名单 {t1}",
        "验证 编号": f"验证 {t1}",
        "汇总": "汇总",
        "绑定 人员 平台 账号": f"绑定 {member} 企业微信 matrix-account",
        "解绑 人员 平台": f"解绑 {member} 企业微信",
        "发起 计划编号": f"发起 {scene.plan if known else 'JH-2099-99'}",
        "检查配置": "检查配置",
        "年度考核": "年度考核",
        "离岗 人员": f"离岗 {member} 调离",
        "利害关系 信用代码 说明": f"利害关系 {scene.uscc} 本人配偶在该企业任职",
        "取消": "取消",
    }[row.action]


@dataclass
class Outcome:
    denied: int  # audit rows of refusals
    strangers: int  # audit rows of unknown users
    reply: str
    error: DomainError | None = None
    stranger_link: bool = False  # a page link naming no officer: refused, nobody to audit


class RecordingDispatcher(Dispatcher):
    """The dispatcher, keeping the errors it turns into replies, by type (NotFound,
    PermissionDenied…)."""

    def __init__(self, d: Dispatcher) -> None:
        super().__init__(d.services, d.links)
        self.errors: list[DomainError] = []

    async def _refused(self, ctx: HandlerCtx, err: DomainError) -> None:
        self.errors.append(err)
        await super()._refused(ctx, err)


async def _run_chat(
    sm: async_sessionmaker[AsyncSession], d: Dispatcher, errors: list[DomainError], event: Event
) -> Outcome:
    async with sm() as s:
        await s.begin()
        last = await s.scalar(select(func.max(AuditEvent.id))) or 0
        last_out = await s.scalar(select(func.max(OutboxMessage.id))) or 0
        errors.clear()
        await d.handle(s, event)
        await s.flush()
        outcome = await _observe(s, last, last_out)
        outcome.error = errors[0] if errors else None
        await s.rollback()
    return outcome


async def _observe(s: AsyncSession, last: int, last_out: int) -> Outcome:
    actions = list(await s.scalars(select(AuditEvent.action).where(AuditEvent.id > last)))
    replies = await s.scalars(select(OutboxMessage).where(OutboxMessage.id > last_out))
    return Outcome(
        actions.count("denied"),
        actions.count("auth.unknown_user"),
        "\n".join(r.message.get("body", "") for r in replies),
    )


PageRun = Callable[[PageCtx, Scene, bool], Awaitable[Any]]


async def _invitation_show(pc: PageCtx, scene: Scene, known: bool) -> Any:
    return await invitation_page.show(pc, scene.invitation.id if known else 999_999)


async def _invitation_answer(pc: PageCtx, scene: Scene, known: bool) -> Any:
    form = invitation_page.AnswerForm(action="decline", item_ids=set(), reason="本季度人手不足")
    return await invitation_page.submit(pc, scene.invitation.id if known else 999_999, form)


def _case_id(scene: Scene, n: int, known: bool) -> int:
    return scene.cases[n].id if known else 999_999


LIMITS = Limits(1_000_000, 3, 10_000_000)


async def _result_show(pc: PageCtx, scene: Scene, known: bool) -> Any:
    return await forms.result_form(pc, _case_id(scene, 0, known), LIMITS)


async def _result_submit(pc: PageCtx, scene: Scene, known: bool) -> Any:
    store = FileStore(Path("/nonexistent-fuzz-store"))
    files = forms.Files([], store, LIMITS)
    return await forms.submit_result_form(pc, _case_id(scene, 0, known), {}, files)


async def _correction_show(pc: PageCtx, scene: Scene, known: bool) -> Any:
    return await forms.correction_form(pc, _case_id(scene, 3, known))


async def _correction_submit(pc: PageCtx, scene: Scene, known: bool) -> Any:
    return await forms.submit_correction_form(pc, _case_id(scene, 3, known), {})


async def _review_show(pc: PageCtx, scene: Scene, known: bool) -> Any:
    return await review_page.review_page(pc, _case_id(scene, 1, known))


async def _review_submit(pc: PageCtx, scene: Scene, known: bool) -> Any:
    raw = {"decision": ["approve"], "reason": [""]}
    return await review_page.submit_review(pc, _case_id(scene, 1, known), raw)


async def _documents(pc: PageCtx, scene: Scene, known: bool) -> Any:
    obj = f"case:{scene.cases[0].code if known else UNKNOWN_CASE}"
    async with access.denials_on_record(pc.core):
        await documents_page(pc, DocumentRequest(obj=obj))
    return Page("")


async def _with_attachment(
    pc: PageCtx, scene: Scene, case: Case, uploader: Officer
) -> tuple[int, FileStore]:
    """A file on the case's latest result (a part entered, if it has none yet), in the cell's
    transaction, so the page finds something to serve to whoever passes its check."""
    store: FileStore = scene.extra["files"]
    sha = store.put(b"%PDF-1.4 matrix")
    result = await pc.session.scalar(
        select(CaseResult).where(CaseResult.case_id == case.id).order_by(CaseResult.version.desc())
    )
    if result is None:
        result = CaseResult(
            case_id=case.id,
            version=1,
            state=ResultState.PART_ENTERED,
            entered_by_id=uploader.id,
            entered_at=pc.clock.now(),
        )
        pc.session.add(result)
        await pc.session.flush()
    found = Attachment(
        result_id=result.id,
        sha256=sha,
        name="检查记录.pdf",
        mime="application/pdf",
        size=15,
        uploaded_by_id=uploader.id,
        uploaded_at=pc.clock.now(),
    )
    pc.session.add(found)
    await pc.session.flush()
    return found.id, store


async def _result_file(pc: PageCtx, scene: Scene, known: bool) -> Any:
    attachment, store = await _with_attachment(pc, scene, scene.cases[0], scene.member)
    return await forms.result_file(pc, _case_id(scene, 0, known), attachment, store)


async def _correction_file(pc: PageCtx, scene: Scene, known: bool) -> Any:
    attachment, store = await _with_attachment(pc, scene, scene.cases[3], scene.member)
    return await forms.correction_file(pc, _case_id(scene, 3, known), attachment, store)


async def _review_file(pc: PageCtx, scene: Scene, known: bool) -> Any:
    attachment, store = await _with_attachment(pc, scene, scene.cases[1], scene.member)
    return await review_page.review_file(pc, _case_id(scene, 1, known), attachment, store)


async def _image(pc: PageCtx, scene: Scene, known: bool) -> Any:
    """What bot/pages/image.py serves once officers.link_holder accepted the link's officer."""
    picture = await images.store(pc.session, _png(), now=pc.clock.now())
    data = await images.load(pc.session, picture.sha256)
    if data is None:
        raise NotFound("图片不存在或已清理。")
    return Page("")


def _png() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (2, 2), (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


PAGES: dict[str, PageRun] = {
    "/h5/invitation 查看": _invitation_show,
    "/h5/invitation 答复": _invitation_answer,
    "/h5/result 查看": _result_show,
    "/h5/result 提交": _result_submit,
    "/h5/review 查看": _review_show,
    "/h5/review 审核": _review_submit,
    "/h5/result/file 附件": _result_file,
    "/h5/correction 查看": _correction_show,
    "/h5/correction 提交": _correction_submit,
    "/h5/correction/file 附件": _correction_file,
    "/h5/review/file 附件": _review_file,
    "/h5/documents": _documents,
    "/h5/image": _image,
}


async def _run_page(
    sm: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    officer: Officer | None,
    row: Row,
    scene: Scene,
    known: bool,
) -> Outcome:
    """A page as bot/pages runs it once the link is verified: the handler with a PageCtx for
    the link's officer. A link naming no officer (the unknown user) is refused by
    officers.link_holder before any page runs; with no actor, that refusal is not audited."""
    async with sm() as s:
        await s.begin()
        last = await s.scalar(select(func.max(AuditEvent.id))) or 0
        error: DomainError | None = None
        status = 200
        core = Ctx(session=s, clock=clock, rules=Rules())
        try:
            if row.action == "/public/":  # no link, no login
                await public.index_page(core, "")
            else:
                holder = await officers.link_holder(
                    core, officer.id if officer is not None else 999_999
                )
                await s.refresh(holder, ["department"])
                pc = PageCtx(session=s, clock=clock, rules=Rules(), officer=holder, token="t")
                status = (await PAGES[row.action](pc, scene, known)).status
        except DomainError as err:
            error = err
        await s.flush()
        outcome = await _observe(s, last, 0)
        outcome.reply = ""
        if error is None and status == 403:
            error = PermissionDenied("denied page")
        elif error is None and status == 404:
            error = NotFound("missing page")
        outcome.error = error
        outcome.stranger_link = officer is None
        await s.rollback()
    return outcome


UNAUDITED = "✗ (not audited)"


def _classify(row: Row, outcome: Outcome, outside_view: bool) -> str:
    """✗ needs its audit row; any other refusal (a state or input the command cannot take)
    means the access check passed: ✓."""
    if outcome.strangers or outcome.denied:
        return NO
    if isinstance(outcome.error, PermissionDenied):
        return NO if outcome.denied or outcome.stranger_link else UNAUDITED
    if isinstance(outcome.error, NotFound):
        return NOT_FOUND
    if outside_view:
        return PUBLIC
    return OK


def _outside_view(row: Row, scene: Scene, reply: str) -> bool:
    if row.action in ("任务 编号", "进度 编号", "名单 编号"):
        return OUTSIDE_MARK in reply
    if row.action == "验证 编号":
        return f"{scene.t1}-T1" in reply and f"{scene.t1}-I1" not in reply
    return False


async def observe_matrix(
    sm: async_sessionmaker[AsyncSession], clock: FixedClock, scene: Scene
) -> dict[tuple[str, int, int], tuple[str, Outcome]]:
    d = RecordingDispatcher(make_dispatcher(sm, clock))
    errors = d.errors
    seen: dict[tuple[str, int, int], tuple[str, Outcome]] = {}
    for row in MATRIX:
        for r, role in enumerate(ROLE_KEYS):
            for k, relation in enumerate(RELATIONS):
                if row.cells[r][k] == NA:
                    continue
                dept = row.own if relation != "other" else "out"
                dept = {"none": "lead", "receiving": "invited"}.get(dept, dept)
                officer = None
                if role is not None:
                    officer = scene.people[(dept, role)]
                    if role == "inspector" and relation != "other" and dept == "lead":
                        officer = scene.member
                known = relation != "unknown"
                if row.kind == "page":
                    outcome = await _run_page(sm, clock, officer, row, scene, known)
                else:
                    user = officer.code if officer is not None else "stranger-9"
                    if row.kind == "card":
                        kind = "accept" if row.action.startswith("接受") else "decline"
                        inv = scene.invitation.id if known else 999_999
                        event = text_event(user, "").model_copy(
                            update={"kind": "card_action", "action_key": f"inv:{kind}:{inv}"}
                        )
                    else:
                        event = text_event(user, _command(scene, row, known))
                    outcome = await _run_chat(sm, d, errors, event)
                got = _classify(row, outcome, _outside_view(row, scene, outcome.reply))
                seen[(row.action, r, k)] = (got, outcome)
    return seen


async def test_access_matrix(sessionmaker, clock, tmp_path: Path) -> None:
    """Every cell of tests/access_matrix.py: allowed, refused (and audited), public side only,
    or not found."""
    scene = await build_scene(sessionmaker, clock)
    scene.extra["files"] = FileStore(tmp_path / "files")
    seen = await observe_matrix(sessionmaker, clock, scene)
    wrong = []
    for (action, r, k), (got, outcome) in seen.items():
        row = next(x for x in MATRIX if x.action == action)
        want = row.cells[r][k]
        if got != want:
            wrong.append(
                f"{action} × {ROLE_KEYS[r]} × {RELATIONS[k]}: want {want}, got {got}"
                f" ({type(outcome.error).__name__}: {outcome.reply[:70]!r})"
            )
    observed = "\n".join(
        f"    _row({row.action!r}, {row.kind!r}, {row.own!r}, "
        + ", ".join(
            repr(
                "".join(
                    seen[(row.action, r, k)][0] if (row.action, r, k) in seen else NA
                    for k in range(len(RELATIONS))
                )
            )
            for r in range(len(ROLE_KEYS))
        )
        + "),"
        for row in MATRIX
    )
    assert not wrong, "\n".join(wrong) + "\nobserved:\n" + observed


def test_readme_shows_the_matrix() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Access\n", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    assert table == render_matrix()


def test_every_command_has_a_row() -> None:
    """A command added to handlers/commands.py without its row here fails: the matrix covers
    every command (each row names its command by the first word)."""
    rows = {row.action.split()[0] for row in MATRIX if row.kind == "command"}
    assert {c.name for c in COMMANDS} <= rows, {c.name for c in COMMANDS} - rows


def test_every_page_has_a_row(sessionmaker, clock) -> None:
    """A signed page added to bot/pages without its row here fails; the public pages (no link,
    no login, the same for everyone) share the /public/ row."""
    paths = {route.path for route in pages.routes(make_services(sessionmaker, clock))}
    rows = {row.action.split()[0] for row in MATRIX if row.kind == "page"}
    signed = {p for p in paths if not p.startswith("/public")}
    assert signed <= rows, signed - rows
    assert "/public/" in rows


def test_readme_command_table_names_the_admin_where_the_matrix_allows_it() -> None:
    """The "who" column of README's command table and the matrix agree on the admin: a
    command on a subject names the admin exactly where the admin may act on one of their own
    department (issue 11: the admin's powers were listed differently in the two places)."""
    text = README.read_text(encoding="utf-8")
    table = text.split("\n## Chat commands (officers)\n", 1)[1].split("\n## ", 1)[0]
    admin = ROLE_KEYS.index("admin")
    rows = {row.action.split()[0]: row for row in MATRIX if row.kind == "command"}
    checked, wrong = 0, []
    for line in table.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        word, who = cells[0].strip("`").split()[0], cells[1]
        row = rows.get(word)
        if row is None or row.cells[admin][1] == NA or who.startswith(("anyone", "any officer")):
            continue
        checked += 1
        if ("admin" in who) != (row.cells[admin][0] == OK):
            wrong.append(f"{word}: README says {who!r}, matrix says admin {row.cells[admin]}")
    assert checked >= 20 and not wrong, wrong


def test_each_commands_roles_are_the_matrix_own_column() -> None:
    """帮助 lists an officer the commands their roles may use: a command's roles are the roles
    the matrix allows on a subject of their own department (✓ or 公), no more, no fewer."""
    rows = {row.action.split()[0]: row for row in MATRIX if row.kind == "command"}
    for c in COMMANDS:
        allowed = {
            role
            for role, cell in zip(ROLE_KEYS, rows[c.name].cells, strict=True)
            if role is not None and cell[0] in (OK, PUBLIC)
        }
        assert set(c.roles or ROLES) == allowed, c.name
