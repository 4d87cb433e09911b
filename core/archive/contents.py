"""Stage 9, closing (立卷归档): the archive's contents — the task's plan and items, invitations and
answers, draw receipts and pool files, case documents, results (every version), reviews,
publication, attachments and objections, each written as the CSV, JSON or file an archivist opens —
and the file set with its manifest."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.attachments import FileStore
from core.cases import department_categories, participating_departments
from core.changes import Ctx
from core.clock import CHINA_TZ
from core.documents import DOC_TITLES, TaskDocuments, render_docx, task_documents
from core.draws.algorithm import parse_rule
from core.draws.verify import draw_public_json, pool_csv_text
from core.exports import category_words, csv_bytes, followup_complete, yes_no
from core.models import (
    Attachment,
    AuditEvent,
    Case,
    CaseResult,
    Department,
    Draw,
    Invitation,
    Item,
    ItemResult,
    JointTask,
    Objection,
    Officer,
    Recusal,
    Referral,
    ReplacementRequest,
    Review,
    TaskItem,
)
from core.models.cases import CHANGE_LABELS
from core.review import reopened_codes
from core.states import INVITATION, OBJECTION, REPLACEMENT, RESULT
from core.workdays import cn_date, cn_datetime


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=2, default=str).encode("utf-8")


# A result version as the pages and `案件` name it: 第 N 版 (its edition: 1 until published, +1
# per correction) and 本案第 M 次录入 (each department's part, each re-entry after a return)
VERSION_HEADER = ("版次", "本案录入次序")


def china_time(at: dt.datetime | None) -> str:
    return at.astimezone(CHINA_TZ).isoformat(timespec="seconds") if at else ""


class Files:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def add(self, name: str, content: bytes) -> None:
        self.files[name] = content

    def manifest(self, task: JointTask, generated_at: dt.datetime) -> bytes:
        lines = [
            f"联合抽查任务 {task.code}《{task.title}》立卷归档",
            f"生成时间：{cn_datetime(generated_at)}",  # a clerk reads it; the data files keep ISO
            "文件清单（SHA-256  文件名）：",
        ]
        lines += [f"{hashlib.sha256(c).hexdigest()}  {n}" for n, c in sorted(self.files.items())]
        return ("\n".join(lines) + "\n").encode("utf-8")


async def officer_names(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    rows = await session.execute(select(Officer.id, Officer.name).where(Officer.id.in_(wanted)))
    return {i: n for i, n in rows.all()}


# the 工作方案's scope (core.consultation.creation) in a clerk's words
SCOPE_WORDS = {
    "kinds": "检查对象类型",
    "industries": "行业",
    "regions": "区域",
    "inspector_expertise": "检查人员专业领域",
    "inspector_regions": "检查人员负责区域",
}
SCOPE_FLAG_WORDS = {
    "complaint_driven": "投诉举报等引发的抽查",
    "repeat_check": "全部事项为重点检查事项时可复查",
}
ITEM_CATEGORY_WORDS = {"key": "重点检查事项", "general": "一般检查事项"}


async def plan(ctx: Ctx, task: JointTask, files: Files) -> None:
    """The task's plan as stored (任务.json) and in Chinese words for a clerk (任务方案.txt)."""
    items = (
        await ctx.session.execute(
            select(Item, Department.name)
            .join(TaskItem, TaskItem.item_id == Item.id)
            .join(Department, Department.id == TaskItem.department_id)
            .where(TaskItem.task_id == task.id)
            .order_by(Department.id, Item.code)
        )
    ).all()
    files.add(
        "01-任务方案/任务.json",
        json_bytes(
            {
                "code": task.code,
                "title": task.title,
                "year": task.year,
                "lead_department": task.lead_department.name,
                "window_start": task.window_start,
                "window_end": task.window_end,
                "scope": task.scope,
                "rule": task.rule,
                "commitment": task.commitment,
                "created_at": china_time(task.created_at),
                "items": [
                    {"department": d, "code": i.code, "name": i.name, "category": i.category}
                    for i, d in items
                ],
            }
        ),
    )
    departments = await participating_departments(ctx, task)
    lines = [
        f"联合抽查任务 {task.code}《{task.title}》",
        f"年度：{task.year}",
        f"牵头部门：{task.lead_department.name}",
        "参与部门："
        + ("、".join(d.name for d in departments if d.id != task.lead_department_id) or "无"),
        f"检查时间：{cn_date(task.window_start)} 至 {cn_date(task.window_end)}",
    ]
    if task.window_extended_to:
        lines.append(
            f"延长至：{cn_date(task.window_extended_to)}（理由：{task.window_extension_reason}）"
        )
    if task.unplanned_reason:
        lines.append(f"年度抽查计划外任务，理由：{task.unplanned_reason}")
    lines.append("抽查范围：" + _scope_words(task.scope))
    lines.append("抽取规则（按顺序匹配，先匹配的分层优先）：")
    rule = parse_rule(task.rule) if task.rule else None
    lines += [
        f"  {n}. {s.name}：{s.members()}；{s.describe()}"
        for n, s in enumerate(rule.strata if rule else [], 1)
    ] or ["  未设定"]
    if rule is not None and rule.ratio_reason:
        lines.append(f"  比例说明：{rule.ratio_reason}")
    lines.append(f"随机种子承诺值（SHA-256）：{task.commitment or '未生成'}")
    lines.append(f"创建时间：{cn_datetime(task.created_at)}")
    lines.append("检查事项：")
    lines += [
        f"  {n}. {d} {i.code} {i.name}（{ITEM_CATEGORY_WORDS.get(i.category, i.category)}）"
        for n, (i, d) in enumerate(items, 1)
    ]
    files.add("01-任务方案/任务方案.txt", ("\n".join(lines) + "\n").encode("utf-8"))


def _scope_words(scope: dict[str, Any]) -> str:
    said = [
        f"{word}：{'、'.join(scope[key])}" for key, word in SCOPE_WORDS.items() if scope.get(key)
    ]
    said += [word for key, word in SCOPE_FLAG_WORDS.items() if scope.get(key)]
    return "；".join(said) or "不限"


async def invitations(session: AsyncSession, task: JointTask, files: Files) -> None:
    invitations = list(
        await session.scalars(
            select(Invitation).where(Invitation.task_id == task.id).order_by(Invitation.id)
        )
    )
    names = await officer_names(session, (i.responded_by_id for i in invitations))
    files.add(
        "02-邀请与答复/邀请.csv",
        csv_bytes(
            ("部门", "答复", "理由", "答复人", "答复时间"),
            [
                (
                    i.department.name,
                    INVITATION.label(i.state),
                    i.reason,
                    names.get(i.responded_by_id or 0, ""),
                    china_time(i.responded_at),
                )
                for i in invitations
            ],
        ),
    )


async def draws(ctx: Ctx, task: JointTask, files: Files) -> None:
    for d in await ctx.session.scalars(
        select(Draw).where(Draw.task_id == task.id).order_by(Draw.id)
    ):
        files.add(
            f"03-抽取/{d.code}.json",
            json_bytes(
                {
                    **draw_public_json(d),
                    "parameters": d.parameters,
                    "frozen_at": china_time(d.frozen_at),
                    "locked_at": china_time(d.locked_at),
                }
            ),
        )
        files.add(f"03-抽取/{d.code}-pool.csv", (await pool_csv_text(ctx, d.id)).encode())


TaskLoader = Callable[[Ctx, JointTask, Sequence[Case]], Awaitable[TaskDocuments]]


async def documents(
    ctx: Ctx,
    task: JointTask,
    cases: Sequence[Case],
    files: Files,
    load: TaskLoader = task_documents,
) -> None:
    """Per case, each notice as it was served (004 第十六条(二)) and the record form of each
    result version (第二十条: a correction is a new version), with the register of notices
    served. A case whose notice was never registered as served in the system (printed with
    `lianjian documents`, handed over by hand) still has its notice filed, generated from the
    case data with the group of the visit and named 未登记送达 — only for a case visited
    (`inspected_on`): a result entered without a visit (注销, 未找到, 迁出) had no notice
    handed over, and the register says so with no file. Read per task (`load`:
    `task_documents`), not per case and version."""
    loaded = await load(ctx, task, cases)
    names = await officer_codes_names(
        ctx.session, {s.actor for case in cases for s in loaded.notices(case)}
    )
    served_rows: list[tuple[Any, ...]] = []
    at = ctx.clock.now()  # the archive's own time, as its ZIP entries and manifest are dated
    for case in cases:
        folder = f"04-检查文书/{case.code}"
        context = loaded.context(case)
        served = loaded.notices(case)
        for n, notice in enumerate(served, 1):
            name = f"{case.code}-{DOC_TITLES['notice']}-第{n}次送达.docx"
            files.add(f"{folder}/{name}", render_docx("notice", notice.context(context), at))
            served_rows.append(
                (
                    case.code,
                    n,
                    china_time(notice.at),
                    names.get(notice.actor, notice.actor),
                    group_names(notice.inspectors),
                    "送达时记录" if notice.kept else "据检查组人员变更记录还原",
                    f"{folder}/{name}",
                )
            )
        if not served and context["inspectors"]:
            # a situation entered without a visit (注销, 未找到, 迁出): no notice was handed
            # over, none is filed (004 第二十五条)
            source, where = "", "未在系统中登记送达（未实地检查）"
            if case.inspected_on is not None:
                # the group is the visit's: none changes once the visit began (member_changes)
                name = f"{case.code}-{DOC_TITLES['notice']}-未登记送达.docx"
                files.add(f"{folder}/{name}", render_docx("notice", context, at))
                source, where = "未在系统中登记送达，按案件数据生成", f"{folder}/{name}"
            group = group_names(context["inspectors"])
            served_rows.append((case.code, "", "", "", group, source, where))
        elif not served:
            served_rows.append((case.code, "", "", "", "", "", "未在系统中登记送达"))
        for result in loaded.versions(case):
            name = (
                f"{case.code}-{DOC_TITLES['record']}-第{result.edition}版-第{result.version}次录入"
            )
            files.add(
                f"{folder}/{name}.docx", render_docx("record", loaded.context(case, result), at)
            )
    files.add(
        "04-检查文书/通知书送达.csv",
        csv_bytes(
            ("案件号", "送达次序", "送达时间", "领取人", "检查组", "检查组来源", "归档位置"),
            served_rows,
        ),
    )


def group_names(inspectors: Sequence[dict[str, Any]]) -> str:
    return "、".join(p["name"] + ("（组长）" if p["is_leader"] else "") for p in inspectors)


async def officer_codes_names(session: AsyncSession, codes: Iterable[str]) -> dict[str, str]:
    rows = await session.execute(select(Officer.code, Officer.name).where(Officer.code.in_(codes)))
    return {c: n for c, n in rows.all()}


async def group_changes(session: AsyncSession, cases: Sequence[Case], files: Files) -> None:
    """Registers of the groups' changes (回避, 更换: 001 第十四条, 004 第十三条) and of the
    requests for them, with their decisions."""
    code = {c.id: c.code for c in cases}
    swaps = list(
        await session.scalars(select(Recusal).where(Recusal.case_id.in_(code)).order_by(Recusal.id))
    )
    requests = list(
        await session.scalars(
            select(ReplacementRequest)
            .where(ReplacementRequest.case_id.in_(code))
            .order_by(ReplacementRequest.id)
        )
    )
    officers = {
        o.id: o
        for o in await session.scalars(
            select(Officer).where(
                Officer.id.in_(
                    {s.officer_id for s in swaps}
                    | {s.replacement_officer_id for s in swaps}
                    | {s.decided_by_id for s in swaps if s.decided_by_id}
                    | {r.officer_id for r in requests}
                    | {r.requested_by_id for r in requests}
                    | {r.decided_by_id for r in requests if r.decided_by_id}
                )
            )
        )
    }
    departments = dict((await session.execute(select(Department.id, Department.name))).all())

    def name(officer_id: int | None) -> str:
        return officers[officer_id].name if officer_id in officers else ""

    files.add(
        "04-检查文书/检查组人员变更.csv",
        csv_bytes(
            ("案件号", "类型", "原检查人员", "接替人员", "所在部门", "理由", "决定人", "时间"),
            [
                (
                    code[s.case_id],
                    CHANGE_LABELS[s.kind],
                    name(s.officer_id),
                    name(s.replacement_officer_id),
                    departments[officers[s.officer_id].department_id],
                    s.reason,
                    name(s.decided_by_id),
                    china_time(s.created_at),
                )
                for s in swaps
            ],
        ),
    )
    files.add(
        "04-检查文书/更换与回避申请.csv",
        csv_bytes(
            (
                "案件号",
                "类型",
                "被申请人员",
                "所在部门",
                "申请理由",
                "申请人",
                "申请时间",
                "状态",
                "决定人",
                "不批准理由",
                "决定时间",
            ),
            [
                (
                    code[r.case_id],
                    CHANGE_LABELS[r.kind],
                    name(r.officer_id),
                    departments[r.department_id],
                    r.reason,
                    name(r.requested_by_id),
                    china_time(r.created_at),
                    REPLACEMENT.label(r.state),
                    name(r.decided_by_id),
                    r.decision_reason,
                    china_time(r.decided_at),
                )
                for r in requests
            ],
        ),
    )


async def referrals(session: AsyncSession, cases: Sequence[Case], files: Files) -> None:
    """The register of 移交 / 移送 (001 第十七条, 004 第二十一条) with their acknowledgements."""
    code = {c.id: c.code for c in cases}
    rows = list(
        await session.scalars(
            select(Referral).where(Referral.case_id.in_(code)).order_by(Referral.id)
        )
    )
    names = await officer_names(
        session, [r.created_by_id for r in rows] + [r.acknowledged_by_id for r in rows]
    )
    files.add(
        "05-检查结果/移送.csv",
        csv_bytes(
            ("案件号", "类型", "接收单位", "移送内容", "登记人", "登记时间", "签收人", "签收时间"),
            [
                (
                    code[r.case_id],
                    r.kind,
                    r.to_department,
                    r.content,
                    names.get(r.created_by_id, ""),
                    china_time(r.created_at),
                    names.get(r.acknowledged_by_id or 0, ""),
                    china_time(r.acknowledged_at),
                )
                for r in rows
            ],
        ),
    )


async def results(ctx: Ctx, task: JointTask, cases: Sequence[Case], files: Files) -> None:
    """Every result version, its items, publications and reviews; categories in words beside
    their codes, and for a return the departments whose part it reopened (004 第十九条)."""
    session = ctx.session
    extra = department_categories(await participating_departments(ctx, task))
    by_id = {c.id: c for c in cases}
    results = list(
        await session.scalars(
            select(CaseResult)
            .where(CaseResult.case_id.in_(by_id))
            .order_by(CaseResult.case_id, CaseResult.version)
        )
    )
    names = await officer_names(session, (r.entered_by_id for r in results))
    reasons = await _correction_reasons(session, cases)

    def reason(r: CaseResult) -> str:
        return reasons.get((by_id[r.case_id].code, r.version), "") if r.is_correction else ""

    files.add(
        "05-检查结果/结果.csv",
        csv_bytes(
            (
                "案件号",
                "检查对象",
                "统一社会信用代码",
                *VERSION_HEADER,
                "状态",
                "结果代码",
                "检查结果",
                "检查方式",
                "后续处置",
                "后续处置完成",
                "完成日期",
                "检查日期",
                "备注",
                "是否更正",
                "更正理由",
                "录入人",
                "录入时间",
                "公示时间",
            ),
            [
                (
                    by_id[r.case_id].code,
                    by_id[r.case_id].target.name,
                    by_id[r.case_id].target.uscc,
                    r.edition,
                    r.version,
                    RESULT.label(r.state),
                    ",".join(r.codes),
                    category_words(r.codes, extra),
                    "、".join(r.methods),
                    "、".join(r.followups),
                    yes_no(followup_complete(r)),
                    r.followup_done_on,
                    r.inspected_on,
                    r.remarks,
                    yes_no(r.is_correction),
                    reason(r),
                    names.get(r.entered_by_id, ""),
                    china_time(r.entered_at),
                    china_time(r.published_at),
                )
                for r in results
            ],
        ),
    )
    version = {r.id: (by_id[r.case_id].code, r.edition, r.version) for r in results}
    items = (
        await session.execute(
            select(ItemResult, Item.name)
            .join(Item, Item.id == ItemResult.item_id)
            .where(ItemResult.result_id.in_(version))
            .order_by(ItemResult.result_id, ItemResult.id)
        )
    ).all()
    files.add(
        "05-检查结果/事项结果.csv",
        csv_bytes(
            (
                "案件号",
                *VERSION_HEADER,
                "检查事项",
                "结果代码",
                "检查结果",
                "检查内容",
                "发现的问题",
                "处理情况",
            ),
            [
                (
                    *version[i.result_id],
                    name,
                    ",".join(i.codes),
                    category_words(i.codes, extra),
                    i.content,
                    i.problems,
                    i.handling,
                )
                for i, name in items
            ],
        ),
    )
    files.add(
        "07-公示/公示.csv",
        csv_bytes(
            ("案件号", *VERSION_HEADER, "公示时间", "是否更正", "更正理由", "当前状态"),
            [
                (
                    by_id[r.case_id].code,
                    r.edition,
                    r.version,
                    china_time(r.published_at),
                    yes_no(r.is_correction),
                    reason(r),
                    RESULT.label(r.state),
                )
                for r in results
                if r.published_at is not None
            ],
        ),
    )
    reviews = list(
        await session.scalars(
            select(Review).where(Review.result_id.in_(version)).order_by(Review.id)
        )
    )
    reviewers = await officer_names(session, (r.reviewer_id for r in reviews))
    departments = dict((await session.execute(select(Department.id, Department.name))).all())
    reopened = await _reopened(session, cases)
    files.add(
        "06-审核/审核.csv",
        csv_bytes(
            ("案件号", *VERSION_HEADER, "审核部门", "审核人", "结论", "退回部分", "理由", "时间"),
            [
                (
                    *version[r.result_id],
                    departments[r.department_id],
                    reviewers.get(r.reviewer_id, ""),
                    "通过" if r.decision == "approve" else "退回",
                    reopened.get(
                        (version[r.result_id][0], version[r.result_id][2], r.department_id), ""
                    ),
                    r.reason,
                    china_time(r.created_at),
                )
                for r in reviews
            ],
        ),
    )


async def _correction_reasons(
    session: AsyncSession, cases: Sequence[Case]
) -> dict[tuple[str, int], str]:
    """By (case, entry): the reason a correction gave (004 第二十条), as its audit event
    recorded it (the result row does not)."""
    events = await session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "case.result.corrected",
            AuditEvent.subject.in_([f"case:{c.code}" for c in cases]),
        )
    )
    return {
        (e.subject.removeprefix("case:"), e.data["version"]): str(e.data.get("reason") or "")
        for e in events
    }


async def _reopened(
    session: AsyncSession, cases: Sequence[Case]
) -> dict[tuple[str, int, int], str]:
    """By (case, entry, reviewing department): the departments whose part a return reopened,
    as its audit event recorded them (the review row does not)."""
    events = await session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "case.result.reviewed",
            AuditEvent.subject.in_([f"case:{c.code}" for c in cases]),
        )
    )
    names = dict((await session.execute(select(Department.code, Department.name))).all())
    return {
        (e.subject.removeprefix("case:"), e.data["version"], e.data["department_id"]): "、".join(
            names.get(code, code) for code in reopened_codes(e.data)
        )
        for e in events
        if reopened_codes(e.data)
    }


async def attachments(
    session: AsyncSession, cases: Sequence[Case], store: FileStore | None, files: Files
) -> None:
    """Every result version's photos and PDFs, by case, edition and entry; a file the store no
    longer holds is listed as missing rather than silently left out. Paths name the version
    as the result pages and `案件` do (VERSION_HEADER)."""
    code = {c.id: c.code for c in cases}
    rows = (
        await session.execute(
            select(Attachment, CaseResult.case_id, CaseResult.edition, CaseResult.version)
            .join(CaseResult, CaseResult.id == Attachment.result_id)
            .where(CaseResult.case_id.in_(code))
            .order_by(CaseResult.case_id, CaseResult.version, Attachment.id)
        )
    ).all()
    listed = []
    for a, case_id, edition, version in rows:
        name = f"05-检查结果/附件/{code[case_id]}/第{edition}版-第{version}次录入-{a.id}-{a.name}"
        present = store is not None and store.has(a.sha256)
        if store is not None and present:
            files.add(name, store.read(a.sha256))
        where = name if present else "缺失"
        listed.append((code[case_id], edition, version, a.name, a.mime, a.size, a.sha256, where))
    files.add(
        "05-检查结果/附件清单.csv",
        csv_bytes(
            ("案件号", *VERSION_HEADER, "文件名", "类型", "字节", "SHA-256", "归档位置"), listed
        ),
    )


async def objections(session: AsyncSession, cases: Sequence[Case], files: Files) -> None:
    """The objections (004 第二十条) with their re-check — by whom, of which department — and
    their reply: by whom, and how (答复方式, the note `答复 案件号 [答复方式]` kept in its audit
    event)."""
    code = {c.id: c.code for c in cases}
    objections = list(
        await session.scalars(
            select(Objection).where(Objection.case_id.in_(code)).order_by(Objection.id)
        )
    )
    # who re-checked and who answered, as their audit events record them: handled_by is the
    # filer until a re-check by an officer, and the reply's note is kept in its event only
    events = {
        (e.action, e.subject): e
        for e in await session.scalars(
            select(AuditEvent).where(
                AuditEvent.action.in_(("objection.rechecked", "objection.replied")),
                AuditEvent.subject.in_([f"objection:{o.id}" for o in objections]),
            )
        )
    }
    officers = {
        o.code: o
        for o in await session.scalars(
            select(Officer).where(Officer.code.in_({e.actor for e in events.values()}))
        )
    }
    departments = dict((await session.execute(select(Department.id, Department.name))).all())

    def by_whom(action: str, o: Objection) -> tuple[str, str]:
        """Who did it (the officer's name; the operator's label for the CLI) and their
        department."""
        event = events.get((action, f"objection:{o.id}"))
        if event is None:
            return "", ""
        officer = officers.get(event.actor)
        if officer is None:
            return event.actor, ""
        return officer.name, departments.get(officer.department_id, "")

    def how_replied(o: Objection) -> str:
        event = events.get(("objection.replied", f"objection:{o.id}"))
        return str((event.data or {}).get("note", "")) if event is not None else ""

    files.add(
        "08-异议/异议.csv",
        csv_bytes(
            (
                "案件号",
                "申请人",
                "异议内容",
                "收到日期",
                "状态",
                "复查期限",
                "复查结论",
                "复查日期",
                "复查人",
                "复查部门",
                "答复日期",
                "答复人",
                "答复方式",
            ),
            [
                (
                    code[o.case_id],
                    o.filed_by,
                    o.content,
                    o.received_on,
                    OBJECTION.label(o.state),
                    o.recheck_due_on,
                    o.recheck_finding,
                    o.rechecked_on,
                    *by_whom("objection.rechecked", o),
                    o.replied_on,
                    by_whom("objection.replied", o)[0],
                    how_replied(o),
                )
                for o in objections
            ],
        ),
    )
