"""After stage 7, publication: the published results of a year as an XLSX (or a CSV of the same
columns) in the column layout of the provincial platform's result entry (RESULT_LAYOUT), for the
office to enter or import them there (004 第十九条: results are entered into the provincial
platform; 第二十四条: data not entered counts as not done); and the CSV and 是/否 wording every
file a clerk opens shares (the archive's too)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.cases import department_categories, participating_departments
from core.changes import Ctx
from core.clock import CHINA_TZ
from core.models import Case, CaseResult, Department, Invitation, JointTask, Target
from core.results import NO_FOLLOWUP, Category, export_code, label

ExportFormat = Literal["xlsx", "csv"]
RESULT_LAYOUT = "浙江省部门协同监管平台 · 抽查检查结果录入"
RESULT_COLUMNS = (
    "序号",
    "任务编号",
    "任务名称",
    "牵头部门",
    "参与部门",
    "统一社会信用代码（注册号）",
    "检查对象名称",
    "检查日期",
    "检查结果代码",
    "检查结果",
    "检查方式",
    "后续处置",
    "后续处置是否完成",
    "后续处置完成日期",
    "是否更正",
    "公示日期",
    "案件号",
)


async def _tasks(
    session: AsyncSession, year: int, department: Department | None
) -> list[JointTask]:
    query = select(JointTask).where(JointTask.year == year).order_by(JointTask.code)
    if department is not None:
        joined = select(Invitation.task_id).where(
            Invitation.department_id == department.id, Invitation.state == "accepted"
        )
        query = query.where(
            (JointTask.lead_department_id == department.id) | JointTask.id.in_(joined)
        )
    return list(await session.scalars(query))


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 with BOM so Excel opens the Chinese columns as they are. Values under Chinese
    headers are words too (states as the pages name them, 是/否); times stay ISO for machines."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def yes_no(flag: bool) -> str:
    return "是" if flag else "否"


def category_words(codes: Sequence[str], extra: Sequence[Category]) -> str:
    """A result's categories in words (检查结果), beside its codes."""
    return "；".join(label(c, extra) for c in codes)


def followup_complete(r: CaseResult) -> bool:
    """后续处置是否完成: done when marked done, and when there is none to do (无需后续处置)."""
    return r.followup_done or all(f == NO_FOLLOWUP for f in r.followups)


def _row(
    n: int,
    task: JointTask,
    partners: str,
    case: Case,
    target: Target,
    r: CaseResult,
    extra: Sequence[Category],
) -> list[object]:
    published = r.published_at.astimezone(CHINA_TZ).date() if r.published_at else None
    return [
        n,
        task.code,
        task.title,
        task.lead_department.name,
        partners,
        target.uscc,
        target.name,
        r.inspected_on or case.inspected_on,
        ",".join(dict.fromkeys(export_code(c) for c in r.codes)),
        category_words(r.codes, extra),
        "、".join(r.methods),
        "、".join(r.followups),
        yes_no(followup_complete(r)),
        r.followup_done_on,
        yes_no(r.is_correction),
        published,
        case.code,
    ]


async def _result_rows(ctx: Ctx, year: int, department: Department | None) -> list[list[object]]:
    """One row per case: its current published version (a corrected result, its correction)."""
    session = ctx.session
    out: list[list[object]] = []
    for task in await _tasks(session, year, department):
        departments = await participating_departments(ctx, task)
        extra = department_categories(departments)
        partners = "、".join(d.name for d in departments if d.id != task.lead_department_id)
        rows = (
            await session.execute(
                select(CaseResult, Case, Target)
                .join(Case, Case.id == CaseResult.case_id)
                .join(Target, Target.id == Case.target_id)
                .where(Case.task_id == task.id, CaseResult.state == "published")
                .order_by(Case.code)
            )
        ).all()
        for r, case, target in rows:
            out.append(_row(len(out) + 1, task, partners, case, target, r, extra))
    return out


async def results_export(
    ctx: Ctx, year: int, department: Department | None, fmt: ExportFormat = "xlsx"
) -> tuple[bytes, int]:
    """The year's published results (of the tasks `department` led or joined, when given) as
    XLSX (with its 说明 sheet) or CSV (the same columns), and how many there are."""
    rows = await _result_rows(ctx, year, department)
    if fmt == "csv":
        return csv_bytes(RESULT_COLUMNS, rows), len(rows)
    return _workbook(ctx, rows, year, department), len(rows)


def _workbook(
    ctx: Ctx, rows: list[list[object]], year: int, department: Department | None
) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None  # a new workbook has its sheet
    ws.title = "检查结果"
    ws.append(list(RESULT_COLUMNS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(row)
    for column, width in zip(
        "ABCDEFGHIJKLMNOPQ",
        (6, 16, 28, 20, 28, 22, 30, 12, 14, 40, 16, 20, 10, 14, 8, 12, 22),
        strict=True,
    ):
        ws.column_dimensions[column].width = width
    ws.freeze_panes = "A2"  # the header stays in view while scrolling hundreds of rows
    ws.auto_filter.ref = ws.dimensions
    notes = wb.create_sheet("说明")
    notes.append(["格式", RESULT_LAYOUT])
    notes.append(["年度", year])
    notes.append(["部门", department.name if department else "全部"])
    notes.append(["生成时间", ctx.clock.now().astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")])
    notes.append(
        ["检查结果代码", "省级平台的结果代码；参与部门的“违反〈部门〉相关规定”导出为其基础代码"]
    )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
