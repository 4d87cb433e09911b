"""Stage 4, inspection: the case documents of 004 第十六条 — 联合抽查通知书 (the notice handed to
the target before the visit) and 联合抽查情况记录表 (一企一表), each as a printable HTML page and as
a DOCX file that a county office can edit and print.

Both are generated from the case data (`case_document_context`). The notice follows
the sample attached to 004: addressee, the items to be checked, the materials to prepare, the
duty to co-operate, and the group's names with their 执法证号.

`issue_notice` is what a group member's request for the notice does: the first time a member
gets it (link, chat command), the case moves `assigned → notified` (已通知, 004 第十六条(二)); a
member getting it again after the group changed re-issues it. Each notice served is kept as served
(the group and the visit's date of that day) in the audit event recording it, so the archive
files it as it was handed over (`served_notices`, 004 第二十五条).
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Cm, Mm, Pt
from sqlalchemy import select

from core.cases import (
    active_groups,
    active_members,
    department_categories,
    departments_and_items,
    get_case,
    get_task,
    is_member,
    is_staff,
    participating_departments,
)
from core.changes import Ctx, record
from core.clock import CHINA_TZ
from core.codes import case_number
from core.errors import NotFound, PermissionDenied, ValidationFailed
from core.inspection import mark_notified
from core.models import (
    AuditEvent,
    Case,
    CaseResult,
    Department,
    GroupMember,
    Item,
    ItemResult,
    JointTask,
    Officer,
    PlanEntry,
    Recusal,
)
from core.render import render
from core.results import FOLLOWUPS, METHODS, choices, label, tag
from core.states import TASK, CaseState, TaskState
from core.workdays import cn_date as _cn_date

DocKind = Literal["notice", "record"]
Fmt = Literal["html", "docx"]
DOC_KINDS: tuple[DocKind, ...] = ("notice", "record")
FORMATS: tuple[Fmt, ...] = ("docx", "html")
DOC_TITLES: dict[str, str] = {"notice": "联合抽查通知书", "record": "联合抽查情况记录表"}
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# The standard list of 004's sample notice (…根据抽查事项确定提供核查材料清单).
MATERIALS = (
    "营业执照及复印件、经营者的身份证复印件。",
    "行政许可证证明、行政处罚决定书、场所使用证明。",
    "知识产权出质登记证书或相关合同。",
    "销售企业准备：进货台账及票据，索证资料，供货方执照、合格证、生产许可证、三 C 认证等。",
    "年度财务报表、纳税证明、工作人员劳动合同和缴纳基本保险等证明材料。",
    "与上列检查事项相关的其他材料。",
)
COOPERATION = (
    "请你单位积极配合检查，若拒不配合，将依据《企业信息公示暂行条例》作为“不予配合情节严重”"
    "情形予以记录并通过国家企业信用信息公示系统公示。"
)


def cn_date(day: dt.date | None) -> str:
    return _cn_date(day) if day else "　　年　　月　　日"  # blank for the pen


def item_checks(item: Item, planned: bool) -> str:
    """What an item checks, as the item list (抽查事项清单) states it: its name, 检查方式 and
    检查依据 — the record form's 检查内容 where an entry says nothing of its own. The list's
    检查方式 is the plan (004 第五条、第十五条), named only while `planned` (the blank form): a
    filled record says how the target was checked in its 检查方式 row, as the group entered it
    (none for a 第十八条 situation), and a row beside it naming the plan would contradict it."""
    parts = [item.name]
    if planned and item.method.strip():
        parts.append(f"检查方式：{item.method.strip()}")
    if item.basis.strip():
        parts.append(f"检查依据：{item.basis.strip()}")
    return "；".join(parts)


# ---------------------------------------------------------------- who may get them


async def may_read(ctx: Ctx, officer: Officer, case: Case) -> bool:
    """Group members, liaisons and leaders of the task's departments, and admins."""
    if officer.has_role("admin"):
        return True
    if await is_member(ctx, case, officer):
        return True
    task = await get_task(ctx, case)
    departments = await participating_departments(ctx, task)
    return is_staff(officer, [d.id for d in departments])


async def readable_case(ctx: Ctx, case_code: str, *, for_update: bool = False) -> Case:
    """The case, if the acting officer may have its documents; PermissionDenied otherwise.
    `for_update`: locked until commit (`get_case`)."""
    case = await get_case(ctx, case_code.strip().upper(), for_update=for_update)
    if ctx.actor is not None and not await may_read(ctx, ctx.actor, case):
        raise PermissionDenied(
            "只有本案检查组成员和相关部门联络员、分管领导可以查看检查文书",
            action="case.documents.denied",
            subject=f"case:{case.code}",
        )
    return case


SERVABLE = (CaseState.ASSIGNED, CaseState.NOTIFIED)  # before the visit


async def issue_notice(ctx: Ctx, case_code: str, via: str) -> Case:
    """A group member got the notice to hand to the target: the case is 已通知 (004 第十六条(二)),
    or, when the group changed since the last notice served (更换, 回避, 004 第十三条), the notice
    is re-issued. Others (liaisons printing a set) only read it; after the visit nothing is
    served. Decided first on a plain read (no lock: a liaison printing or a case past its
    visit blocks nobody's result entry while the page renders); a member of a servable case
    then locks it and decides again: two members serving it at once record it once, the
    second deciding on what the first committed."""
    case = await readable_case(ctx, case_code)
    actor = ctx.actor
    if actor is None or case.state not in SERVABLE or not await is_member(ctx, case, actor):
        return case
    case = await get_case(ctx, case.code, for_update=True)
    group = await active_members(ctx, case)
    if case.state not in SERVABLE or not any(m.officer_id == actor.id for m in group):
        return case
    served = _served_data(_inspectors(group), case, ctx.clock.today())
    if _serves(case, served, await served_notices(ctx, case)):
        await _record_serving(ctx, case, served, via, group)
    return case


async def unreplaced_notes(ctx: Ctx, cases: Sequence[Case]) -> dict[str, str]:
    """`unreplaced_note` of each case's group now, by case code, for the cases that have one."""
    groups = await active_groups(ctx, [c.id for c in cases])
    notes = {c.code: unreplaced_note(c, _inspectors(groups.get(c.id, []))) for c in cases}
    return {code: note for code, note in notes.items() if note}


def _serves(case: Case, served: dict[str, Any], before: Sequence[ServedNotice]) -> bool:
    """Whether handing over the notice of a case, naming `served`'s group, is a serving to
    record: before the visit, with a group, and 已通知 not yet or the group changed since the
    last notice served (re-issued)."""
    if case.state not in SERVABLE or not served["inspectors"]:
        return False
    if unreplaced_note(case, served["inspectors"]):
        return False  # it would name an officer who left
    if case.state == CaseState.ASSIGNED:
        return True
    return not before or before[-1].inspectors != served["inspectors"]


async def _record_serving(
    ctx: Ctx,
    case: Case,
    served: dict[str, Any],
    via: str,
    group: Sequence[GroupMember] | None = None,
) -> None:
    """Record the notice of a locked case, decided to be served (`_serves`): 已通知, or
    re-issued."""
    data = {"via": via, **served}
    if case.state == CaseState.ASSIGNED:
        await mark_notified(ctx, case, data, group)
    else:
        await record(ctx, "case.notice_reissued", f"case:{case.code}", data)


def _operator_only(ctx: Ctx, task: JointTask) -> None:
    if ctx.actor is not None:
        raise PermissionDenied(
            "登记通知书已送达请由检查组成员在通知书页面办理",
            action="case.notified.denied",
            subject=f"task:{task.code}",
        )


async def serve_printed(ctx: Ctx, code: str, printed: Printed) -> list[str]:
    """The office handed over the notices it printed (`lianjian documents … --served`, 004
    第十六条(二)): each case of the task (its code), or the one case, whose notice `printed`
    dated as served is recorded as served as a member's getting it is — 已通知, or re-issued
    after the group changed — by the operator, audited; the codes recorded. The cases are
    locked at once and decided again as locked: one whose visit began or whose group changed
    since it was printed (its notice names another group), or served meanwhile, is not
    recorded. A short write after the printing (`print_documents`), a statement per kind of
    row, not per case. The operator's only (the pages and chat serve through
    `issue_notice`)."""
    task, listed = await _documents_cases(ctx, code)
    _operator_only(ctx, task)
    ids = [c.id for c in listed if c.code in printed.serving]
    if not ids:
        return []
    cases = list(
        await ctx.session.scalars(
            select(Case)
            .where(Case.id.in_(ids))
            .order_by(Case.id)  # one lock order for every writer of several cases
            .with_for_update(of=Case)
            .execution_options(populate_existing=True)
        )
    )
    groups = await active_groups(ctx, ids)
    before = await _served_of(ctx, cases)
    recorded = []
    for case in sorted(cases, key=lambda c: c.code):
        # dated as printed: the paper handed over carries the day it was printed on, even when
        # this write comes after midnight
        on_paper = printed.serving[case.code]
        served = _served_data(
            _inspectors(groups.get(case.id, [])), case, dt.date.fromisoformat(on_paper["issued_on"])
        )
        if served["inspectors"] != on_paper["inspectors"]:
            continue  # the group changed since it was printed: that notice is not this one
        if _serves(case, served, before.get(case.id, [])):
            await _record_serving(ctx, case, served, "cli")
            recorded.append(case.code)
    return recorded


async def task_cases_for(ctx: Ctx, task: JointTask, officer: Officer | None) -> list[Case]:
    """The task's cases the officer may print: all of them for the office (None), its staff and
    admins; an inspector's own cases otherwise."""
    query = select(Case).where(Case.task_id == task.id).order_by(Case.code)
    if officer is not None and not officer.has_role("admin"):
        departments = await participating_departments(ctx, task)
        if not is_staff(officer, [d.id for d in departments]):
            own = select(GroupMember.case_id).where(
                GroupMember.officer_id == officer.id, GroupMember.active.is_(True)
            )
            query = query.where(Case.id.in_(own))
    return list(await ctx.session.scalars(query))


# ---------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Rendered:
    filename: str
    content: bytes
    mime: str


async def case_document_context(
    ctx: Ctx, case_code: str, result: CaseResult | None = None
) -> dict[str, Any]:
    """Everything the 联合抽查通知书 and the 检查记录表 (一企一表) templates show; the record form
    of `result` (a version), of the latest result when None (`task_documents` of one case)."""
    case = await get_case(ctx, case_code)
    loaded = await task_documents(ctx, await get_task(ctx, case), [case])
    return loaded.context(case, result)


def _context(
    case: Case,
    task: JointTask,
    departments: Sequence[Department],
    item_rows: Sequence[tuple[Item, Department]],
    basis: str,
    members: Sequence[GroupMember],
    served: Sequence[ServedNotice],
    result: CaseResult | None,
    by_item: dict[int, ItemResult],
) -> dict[str, Any]:
    """`case_document_context` from what was read for it (one case, or a task's at once)."""
    extra = department_categories(departments)
    items = []
    for item, dept in item_rows:
        found = by_item.get(item.id)
        items.append(
            {
                "department": dept.name,
                "code": item.code,
                "name": item.name,
                "key": item.category == "key",
                "basis": item.basis.strip(),
                # 检查内容: what the entry says its check covered (chat), else the item's own
                "content": (found.content.strip() if found else "")
                or item_checks(item, planned=result is None),
                "result": found,
                "labels": [label(c, extra) for c in found.codes] if found else [],
            }
        )
    return {
        "case": case,
        "task": task,
        "target": case.target,
        "lead_department": task.lead_department,
        "departments": departments,
        "notice_basis": basis,
        "items": items,
        "inspectors": _inspectors(members),
        "planned_on": case.inspected_on,
        "result": result,
        # (tag, words): 5-卫健, as the form names it
        "result_labels": [(tag(c, extra), label(c, extra)) for c in result.codes] if result else [],
        "categories": choices(extra),  # a blank record form: each choice once
        # 落款日期 (004 第十六条(二)): the day the notice was last handed over — a group member
        # got it while the case was 待检查 / 已通知 (`issue_notice`) — on every later copy; a
        # notice not served (yet) has underlined blanks for the pen, DOCX and page alike
        "issued_on": served[-1].issued_on if served else None,
    }


@dataclass(frozen=True)
class TaskDocuments:
    """What the documents of a task's cases show, read per task (`task_documents`): a
    statement per kind of row for all the cases, not one per case and result version (立卷归档
    of a county task of thousands of cases, 004 第二十五条)."""

    task: JointTask
    departments: list[Department]
    item_rows: list[tuple[Item, Department]]
    basis: str
    groups: dict[int, list[GroupMember]]  # by case id, as `active_members`
    results: dict[int, list[CaseResult]]  # by case id, every version in order
    item_results: dict[int, dict[int, ItemResult]]  # by result id, then item id
    served: dict[int, list[ServedNotice]]  # by case id, as `served_notices`

    def versions(self, case: Case) -> list[CaseResult]:
        return self.results.get(case.id, [])

    def notices(self, case: Case) -> list[ServedNotice]:
        return self.served.get(case.id, [])

    def context(self, case: Case, result: CaseResult | None = None) -> dict[str, Any]:
        """`case_document_context` of one of the cases."""
        versions = self.versions(case)
        result = result or (versions[-1] if versions else None)
        return _context(
            case,
            self.task,
            self.departments,
            self.item_rows,
            self.basis,
            self.groups.get(case.id, []),
            self.notices(case),
            result,
            self.item_results.get(result.id, {}) if result is not None else {},
        )


async def task_documents(ctx: Ctx, task: JointTask, cases: Sequence[Case]) -> TaskDocuments:
    """Everything `case_document_context` and `served_notices` read, for the task's `cases`
    at once."""
    ids = [c.id for c in cases]
    departments, item_rows = await departments_and_items(ctx, task)
    results: dict[int, list[CaseResult]] = {}
    for r in await ctx.session.scalars(
        select(CaseResult)
        .where(CaseResult.case_id.in_(ids))
        .order_by(CaseResult.case_id, CaseResult.version)
    ):
        results.setdefault(r.case_id, []).append(r)
    item_results: dict[int, dict[int, ItemResult]] = {}
    for i in await ctx.session.scalars(
        select(ItemResult)
        .join(CaseResult, CaseResult.id == ItemResult.result_id)
        .where(CaseResult.case_id.in_(ids))
        .order_by(ItemResult.id)
    ):
        item_results.setdefault(i.result_id, {})[i.item_id] = i
    return TaskDocuments(
        task,
        departments,
        item_rows,
        await notice_basis(ctx, task),
        await active_groups(ctx, ids),
        results,
        item_results,
        await _served_of(ctx, cases),
    )


async def notice_basis(ctx: Ctx, task: JointTask) -> str:
    """What the notice is based on (004's sample: 依据…联合抽查事项清单和部门联合抽查年度工作
    计划): the annual plan only for a task started from a published plan entry (004 第七条);
    otherwise the task itself, with the written reason a task outside an adopted plan has."""
    lists = f"依据{task.lead_department.name}市场监管领域部门联合抽查事项清单"
    entry = await ctx.session.scalar(select(PlanEntry).where(PlanEntry.task_id == task.id))
    if entry is not None:
        return (
            f"{lists}和部门联合抽查年度工作计划（{entry.year}年度计划 {entry.code}"
            f"《{entry.title}》，任务 {task.code}）"
        )
    reason = task.unplanned_reason.strip()
    why = f"（年度抽查计划外任务，理由：{reason}）" if reason else ""
    return f"{lists}和联合抽查任务 {task.code}《{task.title}》{why}"


def _inspectors(members: Sequence[GroupMember]) -> list[dict[str, Any]]:
    return [
        {
            "name": m.officer.name,
            "cert_no": m.officer.cert_no,
            "department": m.officer.department.name,
            "is_leader": m.is_leader,
            # only for a member who left (never on a notice served: `_serves`), so the group
            # of notices served before stays equal to the same group now
            **(
                {}
                if m.officer.active
                else {"code": m.officer.code, "left": m.officer.inactive_reason or "离岗"}
            ),
        }
        for m in members
    ]


def unreplaced_note(case: Case, inspectors: Sequence[dict[str, Any]]) -> str:
    """ "" or why the notice of a case not yet visited cannot be handed over: a group member
    left (离岗, 退休…) and was not replaced yet (001 第十四条: 更换, approved by the department's
    leader). After the visit the group is the one that checked: nothing to say."""
    left = [i for i in inspectors if i.get("left")]
    if not left or case.state not in SERVABLE:
        return ""
    case_code = case.code
    names = "、".join(f"{i['name']}（{i['code']}）已{i['left']}" for i in left)
    first = left[0]["code"]
    return (
        f"{case_code}：检查组中{names}，尚未更换，通知书不能送达；请发送“更换 {case_code} "
        f"{first} 理由”，由该部门分管领导发送“批准 {case_code} {first} 新人员编号”指定替换人员后，"
        "重新领取或生成通知书"
    )


def _served_data(inspectors: list[dict[str, Any]], case: Case, day: dt.date) -> dict[str, Any]:
    """What a notice served on `day` shows that may change later: the group, the visit's date
    and its 落款日期 `day` — the one stored value every copy of it is dated from."""
    planned = case.inspected_on
    return {
        "inspectors": inspectors,
        "planned_on": planned.isoformat() if planned else None,
        "issued_on": day.isoformat(),
    }


# ---------------------------------------------------------------- notices as served

SERVED_ACTIONS = ("case.notified", "case.notice_reissued")


@dataclass(frozen=True)
class ServedNotice:
    """A notice as it was handed to the target (004 第十六条(二)): when, by whom (an officer
    code), the group and the visit's date it named; `kept` is False for a notice served before
    the group was stored with it, whose group is rebuilt from the group's changes (how it was
    served stays in its audit event)."""

    at: dt.datetime
    actor: str
    inspectors: list[dict[str, Any]]
    planned_on: dt.date | None
    kept: bool
    issued_on: dt.date  # its 落款日期, as recorded (`_served_data`)

    def context(self, current: dict[str, Any]) -> dict[str, Any]:
        """The notice's context as served: `current` with the group and dates of that day."""
        return current | {
            "inspectors": self.inspectors,
            "planned_on": self.planned_on,
            "issued_on": self.issued_on,
        }


async def served_notices(ctx: Ctx, case: Case) -> list[ServedNotice]:
    """Every notice served for the case, first to last."""
    return (await _served_of(ctx, [case])).get(case.id, [])


async def _served_of(ctx: Ctx, cases: Sequence[Case]) -> dict[int, list[ServedNotice]]:
    """`served_notices` of many cases, by case id: a statement for the events, and two for
    the groups and their changes only if a notice was served before its group was kept."""
    by_subject = {f"case:{c.code}": c.id for c in cases}
    events = list(
        await ctx.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.subject.in_(by_subject), AuditEvent.action.in_(SERVED_ACTIONS))
            .order_by(AuditEvent.id)
        )
    )
    rebuilt = sorted({by_subject[e.subject] for e in events if not _kept(e)})
    members: dict[int, list[GroupMember]] = {i: [] for i in rebuilt}
    swaps: dict[int, list[Recusal]] = {i: [] for i in rebuilt}
    if rebuilt:
        for m in await ctx.session.scalars(
            select(GroupMember).where(GroupMember.case_id.in_(rebuilt)).order_by(GroupMember.id)
        ):
            members[m.case_id].append(m)
        for s in await ctx.session.scalars(
            select(Recusal).where(Recusal.case_id.in_(rebuilt)).order_by(Recusal.id)
        ):
            swaps[s.case_id].append(s)
    served: dict[int, list[ServedNotice]] = {}
    for e in events:
        case_id = by_subject[e.subject]
        group = [] if _kept(e) else _group_at(members[case_id], swaps[case_id], e.at)
        served.setdefault(case_id, []).append(_served(e, group))
    return served


def _kept(event: AuditEvent) -> bool:
    """Whether the notice's event keeps the group it was served with."""
    return "inspectors" in (event.data or {})


def _served(event: AuditEvent, rebuilt: list[dict[str, Any]]) -> ServedNotice:
    """The notice an event records; `rebuilt`: its group from the group's changes, for an
    event that does not keep it."""
    data = event.data or {}
    kept = _kept(event)
    planned, issued = data.get("planned_on"), data.get("issued_on")
    return ServedNotice(
        at=event.at,
        actor=event.actor,
        inspectors=data["inspectors"] if kept else rebuilt,
        planned_on=dt.date.fromisoformat(planned) if planned else None,
        kept=kept,
        # events from before the day was stored: the recording's day, as those were dated
        issued_on=(
            dt.date.fromisoformat(issued) if issued else event.at.astimezone(CHINA_TZ).date()
        ),
    )


def _group_at(
    members: Sequence[GroupMember], swaps: Sequence[Recusal], at: dt.datetime
) -> list[dict[str, Any]]:
    """The group as it was at `at`, from its members (by id) and their changes (回避, 更换:
    each recorded with its time); for a notice served before the group was stored with it."""
    joined = {s.replacement_officer_id: s.created_at for s in swaps}
    left = {s.officer_id: s.created_at for s in swaps}
    return _inspectors(
        [
            m
            for m in members
            if (m.officer_id not in joined or joined[m.officer_id] <= at)
            and (m.officer_id not in left or left[m.officer_id] > at)
        ]
    )


def render_html(kind: DocKind, context: dict[str, Any]) -> str:
    return render(f"documents/{kind}.html.j2", **context)


def render_docx(kind: DocKind, context: dict[str, Any], at: dt.datetime) -> bytes:
    """The document as DOCX, dated `at` (the service clock): its bytes depend only on the data
    and that time, so an archive's manifest (SHA-256 per file) is the same for the same task
    built twice at one service time (004 第二十五条)."""
    doc = _notice_docx(context) if kind == "notice" else _record_docx(context)
    props = doc.core_properties
    # python-docx writes the datetime as UTC ("…Z") whatever its zone: give it UTC
    props.created = props.modified = at.astimezone(dt.UTC).replace(microsecond=0, tzinfo=None)
    props.author, props.comments = "联检", ""
    out = io.BytesIO()
    doc.save(out)
    return _dated_zip(out.getvalue(), at)


def _dated_zip(data: bytes, at: dt.datetime) -> bytes:
    """The ZIP `data` with every entry dated `at` in China time (python-docx's writestr
    stamps the host's real time, which a demo clock does not move), order and content kept."""
    stamp = at.astimezone(CHINA_TZ).timetuple()[:6]
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for entry in src.infolist():
            info = zipfile.ZipInfo(entry.filename, date_time=stamp)
            info.compress_type, info.external_attr = entry.compress_type, entry.external_attr
            dst.writestr(info, src.read(entry))
    return out.getvalue()


def document_file(kind: DocKind, fmt: Fmt, context: dict[str, Any], at: dt.datetime) -> Rendered:
    """One document of a case as `fmt`; a DOCX dated `at` (the service clock)."""
    name = f"{context['case'].code}-{DOC_TITLES[kind]}.{fmt}"
    if fmt == "docx":
        return Rendered(name, render_docx(kind, context, at), DOCX_MIME)
    return Rendered(name, render_html(kind, context).encode("utf-8"), "text/html; charset=utf-8")


def _new_document() -> Any:
    doc = Document()
    # python-docx's template is US Letter; county offices print on A4 (the HTML's @page too),
    # with Word's usual Chinese margins
    for section in doc.sections:
        section.page_width, section.page_height = Mm(210), Mm(297)
        section.top_margin = section.bottom_margin = Cm(2.54)
        section.left_margin = section.right_margin = Cm(3.18)
    style = doc.styles["Normal"]
    style.font.name = "仿宋"
    style.font.size = Pt(14)
    # East-Asian text takes its font from w:eastAsia, which python-docx's font.name leaves alone
    style.element.rPr.rFonts.set(
        "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia", "仿宋"
    )
    return doc


def _centered(doc: Any, text: str, size: int, bold: bool = True) -> None:
    para = doc.add_paragraph()
    para.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = para.add_run(text)
    run.bold, run.font.size = bold, Pt(size)


def _table(doc: Any, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    table = doc.add_table(rows=1, cols=len(header))  # python-docx is untyped: Any
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = text
    for row in rows:
        for cell, text in zip(table.add_row().cells, row, strict=True):
            cell.text = text


def _names(departments: Sequence[Any]) -> str:
    return "、".join(d.name for d in departments)


def _notice_docx(c: dict[str, Any]) -> Any:
    doc = _new_document()
    _centered(doc, f"{c['lead_department'].name}市场监管领域部门", 16)
    _centered(doc, "联合抽查通知书", 20)
    doc.add_paragraph(f"编号：{c['case'].code}").alignment = WD_ALIGN_PARAGRAPH.RIGHT
    target = c["target"]
    doc.add_paragraph(f"{target.name}（统一社会信用代码：{target.uscc}）：")
    doc.add_paragraph(
        f"{c['notice_basis']}，{_names(c['departments'])}拟于{cn_date(c['planned_on'])}"
        "依法对你单位的下列事项进行检查，现将有关事项告知如下："
    )
    _table(
        doc,
        ("序号", "检查事项", "检查依据", "检查部门"),
        [
            (
                str(n),
                item["name"] + ("（重点事项）" if item["key"] else ""),
                item["basis"] or "—",
                item["department"],
            )
            for n, item in enumerate(c["items"], 1)
        ],
    )
    doc.add_paragraph("一、确定一名联络员")
    doc.add_paragraph(
        "请你单位确定一名联络员（电话）。检查当天，请通知本单位财务、行政管理等部门负责人员"
        "在场配合检查。"
    )
    doc.add_paragraph("二、请你单位如实提供以下材料原件及复印件")
    for n, text in enumerate(MATERIALS, 1):
        doc.add_paragraph(f"{n}. {text}")
    doc.add_paragraph("三、做好配合工作")
    doc.add_paragraph(COOPERATION)
    doc.add_paragraph("特此通知。")
    _table(
        doc,
        ("执法人员姓名", "执法证号", "所在部门"),
        [
            (
                f"{n}. {p['name']}" + ("（组长）" if p["is_leader"] else ""),
                p["cert_no"] or "—",
                p["department"],
            )
            for n, p in enumerate(c["inspectors"], 1)
        ],
    )
    _sign_date(doc, c["issued_on"])
    return doc


def _sign_date(doc: Any, day: dt.date | None) -> None:
    """The notice's 落款日期, right-aligned: the day it was served, or underlined blanks for
    the pen (年, 月, 日 after each), as the page's lines."""
    para = doc.add_paragraph()
    para.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    if day is not None:
        para.add_run(cn_date(day))
        return
    for blank, unit in (("　　　　", "年"), ("　　", "月"), ("　　", "日")):
        para.add_run(blank).font.underline = True
        para.add_run(unit)


def _record_docx(c: dict[str, Any]) -> Any:
    doc = _new_document()
    case, target = c["case"], c["target"]
    _centered(doc, "市场监管领域部门联合抽查情况记录表", 18)
    _centered(
        doc,
        f"（一企一表）任务：{c['task'].code} {c['task'].title}　案件：{case.code}",
        12,
        bold=False,
    )
    _table(
        doc,
        ("项目", "内容"),
        [
            ("被检查对象", target.name),
            ("统一社会信用代码", target.uscc),
            ("类型", target.kind),
            ("住所（经营场所）", target.address or "—"),
            ("牵头部门", c["lead_department"].name),
            ("参与部门", _names(c["departments"])),
            ("检查日期", cn_date(case.inspected_on)),
        ],
    )
    doc.add_paragraph()
    _table(
        doc,
        ("序号", "检查事项", "检查部门", "检查内容", "发现的问题", "处理情况", "事项结果"),
        [
            (
                str(n),
                item["name"],
                item["department"],
                item["content"],
                *(
                    (item["result"].problems, item["result"].handling)
                    if item["result"]
                    else ("", "")
                ),
                "；".join(item["labels"]),
            )
            for n, item in enumerate(c["items"], 1)
        ],
    )
    doc.add_paragraph()
    _table(doc, ("项目", "内容"), _record_outcome(c))
    doc.add_paragraph()
    _table(
        doc,
        ("检查人员", "执法证号", "所在部门", "签字"),
        [
            (
                p["name"] + ("（组长）" if p["is_leader"] else ""),
                p["cert_no"] or "—",
                p["department"],
                "",
            )
            for p in c["inspectors"]
        ],
    )
    doc.add_paragraph()
    _table(doc, ("当事人意见", "当事人签字（盖章）", "日期"), [("", "", "　　年　　月　　日")])
    return doc


def _record_outcome(c: dict[str, Any]) -> list[tuple[str, str]]:
    result = c["result"]
    if result is None:
        boxes = "　".join(f"☐ {cat.tag} {cat.label}" for cat in c["categories"])
        return [
            ("检查结果", boxes),
            ("检查方式", "　".join(f"☐ {m}" for m in METHODS)),
            ("后续处置", "　".join(f"☐ {f}" for f in FOLLOWUPS)),
            ("备注", ""),
        ]
    labels = "；".join(f"{text}（{code}）" for code, text in c["result_labels"])
    version = f"（第 {result.edition} 版{'，更正' if result.is_correction else ''}）"
    followups = "、".join(result.followups)
    if result.followup_done:
        followups += f"（已于 {cn_date(result.followup_done_on)} 完成）"
    return [
        ("检查结果", labels + version),
        ("检查方式", "、".join(result.methods)),
        ("后续处置", followups),
        ("备注", result.remarks),
    ]


async def _documents_cases(ctx: Ctx, code: str) -> tuple[JointTask, list[Case]]:
    """The task and the cases whose documents `code` (a task's or a case's) names, those the
    acting officer may read."""
    code = case_number(code)
    task = await ctx.session.scalar(select(JointTask).where(JointTask.code == code))
    if task is None and await ctx.session.scalar(select(Case.id).where(Case.code == code)) is None:
        raise NotFound(
            f"找不到任务或案件 {code}：整套文书写任务编号（如 LJ-2026-001），"
            "一户的文书写案件号（如 LJ-2026-001-001）"
        )
    if task is None:
        cases = [await readable_case(ctx, code)]
        task = await get_task(ctx, cases[0])
    else:
        cases = await task_cases_for(ctx, task, ctx.actor)
        if not cases and task.state == TaskState.WITHDRAWN:
            raise ValidationFailed(f"任务 {task.code} 已撤销，未抽取检查对象，没有检查文书")
        if not cases:
            raise ValidationFailed(
                f"任务 {task.code} 尚未抽取检查对象（当前状态：{TASK.label(task.state)}），"
                "还没有可生成的检查文书：确认抽取后再生成"
                if await ctx.session.scalar(select(Case.id).where(Case.task_id == task.id)) is None
                else f"任务 {task.code} 中没有您可查看的案件"
            )
    return task, cases


@dataclass(frozen=True)
class Printed:
    """The documents printed (`print_documents`): (relative path, bytes), and by case code
    what each notice printed dated as served shows (`_served_data`: its group and the day it is
    dated), for `serve_printed` to record."""

    files: list[tuple[str, bytes]]
    serving: dict[str, dict[str, Any]]
    unreplaced: list[str]  # `unreplaced_note` of each case whose group has a member who left


async def print_documents(ctx: Ctx, code: str, *, serving: bool = False) -> Printed:
    """Every document of a task (its code) or of one case: per case the notice and the record,
    DOCX and HTML. Printing changes no state; with `serving` (the operator hands the notices
    over, `lianjian documents … --served`), each notice that handing it over serves
    (`_serves`) is dated today, as served, and listed for `serve_printed` to record after the
    files are written: the rendering (seconds for a task of hundreds) holds no write lock."""
    task, cases = await _documents_cases(ctx, code)
    if serving:
        _operator_only(ctx, task)
    loaded = await task_documents(ctx, task, cases)  # per task, not per case
    files, at = [], ctx.clock.now()
    today = at.astimezone(CHINA_TZ).date()
    to_serve: dict[str, dict[str, Any]] = {}
    unreplaced = []
    for case in cases:
        context = loaded.context(case)
        if note := unreplaced_note(case, context["inspectors"]):
            unreplaced.append(note)
        served = _served_data(context["inspectors"], case, today)
        if serving and _serves(case, served, loaded.notices(case)):
            to_serve[case.code] = served
            context["issued_on"] = today
        for kind in DOC_KINDS:
            for fmt in FORMATS:
                doc = document_file(kind, fmt, context, at)
                files.append((f"{case.code}/{doc.filename}", doc.content))
    return Printed(files, to_serve, unreplaced)
