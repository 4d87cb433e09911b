"""Planning (before any task): importing the year's joint plan (年度抽查计划) from the office's
spreadsheet (003 三(七), 004 第七条): per task the lead and participating departments, the items,
the target range, the ratio or count and the month it is carried out. Same 计划编号 = update; a
row whose task was started is kept as it is. Same flow as every import (core.imports.flow).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import changes
from core.draws.pool import SCOPE_KEYS, library_hint, scope_clause
from core.draws.ratios import cap_problem
from core.imports.flow import (
    Checked,
    Departments,
    ImportReport,
    Progress,
    assign,
    check_file,
    kept_note,
    load_departments,
    run_import,
    unkeyed_note,
)
from core.imports.reading import (
    CODE,
    VALUE,
    Column,
    Layout,
    Row,
    Sheet,
    column_lengths,
    nfkc,
    parse_ratio,
    split_multi,
)
from core.models import DRAWABLE_STATUSES, TARGET_KINDS, Item, PlanEntry, Target

_PLAN_LEN = column_lengths(cast(Table, PlanEntry.__table__))
_COUNT = re.compile(r"(\d+)\s*(户|家|个)")
_BARE = re.compile(r"\d+")
_YEAR_IN_CODE = re.compile(r"(?<!\d)(20\d{2})(?!\d)")  # JH-2026-01
_YEAR_IN_TITLE = re.compile(r"(?<!\d)(20\d{2})\s*年度")  # 2026年度餐饮…联合抽查
_MONTH = re.compile(r"(?:(\d{4})\s*[-年/.]\s*)?(\d{1,2})\s*月?")
# a whole date (2026/12/1, 2026-12-01, 2026年12月1日: a date cell saved to CSV): its month
_DATE = re.compile(r"(\d{4})\s*[-年/.]\s*(\d{1,2})\s*[-月/.]\s*\d{1,2}\s*日?")

PLAN_COLUMNS = (
    Column("code", ("计划编号", "code"), required=True, cells=CODE),
    Column("title", ("任务名称", "title"), required=True),
    Column("lead", ("牵头部门", "发起部门", "lead"), required=True, cells=CODE),
    Column("participants", ("参与部门", "配合部门", "participants"), required=True, cells=CODE),
    Column("items", ("事项", "抽查事项", "事项编码", "items"), required=True, cells=CODE),
    Column("scope", ("检查对象范围", "检查对象", "scope")),
    Column(
        "ratio", ("抽查比例或数量", "抽查比例", "抽查数量", "ratio"), required=True, cells=VALUE
    ),
    Column("month", ("计划月份", "实施月份", "月份", "month"), required=True, cells=VALUE),
)


@dataclass
class _Lookups:
    departments: Departments
    items: dict[tuple[int, str], Item]  # (department id, upper code) → current item
    regions: set[str]
    industries: set[str]  # the target library's, as regions: a scope is checked against them
    cap: str  # the county's cap for general items without their own
    # the year's stored plan rows' scopes, by 计划编号: kept by a file without the column
    stored_scopes: dict[str, dict[str, list[str]]]
    # drawable targets in each row's scope (`_scope_key`), counted by the pool's own filter
    sizes: dict[tuple[tuple[str, ...], ...], int] = field(default_factory=dict)

    def in_scope(self, scope: dict[str, list[str]]) -> int:
        return self.sizes.get(_scope_key(scope), 0)

    def scope_of(self, row: Row) -> dict[str, list[str]]:
        """The row's target range; a file without the column keeps a stored row's (an absent
        column is no empty one: a plan for 餐饮服务 would become one for every target)."""
        if row.layout.has("scope"):
            return _scope(split_multi(row.get("scope")), self.regions)
        return self.stored_scopes.get(nfkc(row.get("code")).upper(), {})


def _check_scope_in_library(row: Row, scope: dict[str, list[str]], look: _Lookups) -> None:
    """A value neither a kind nor a region of the target library is read as an industry; one the
    library has not either (餐饮业 for 餐饮服务, 城关 for 城关镇) would draw nobody, and starting
    the row refuses it (core.consultation.creation.require_scope_in_library): told here, at
    import. An empty library (targets not yet imported) is not checked, as there."""
    if not look.industries:
        return
    known = look.industries | look.regions
    unknown = [v for v in scope.get("industries", []) if v not in look.industries]
    if unknown:
        said = "；".join(f"“{v}”（{library_hint(v, known, '行业和区域')}）" for v in unknown)
        row.error(
            "scope",
            f"检查对象范围中的{said}在检查对象库中既不是行业也不是区域，按它抽取抽不到任何对象。"
            "请按检查对象库中的写法填写",
        )


def _scope_key(scope: dict[str, list[str]]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(sorted(scope.get(k, []))) for k in SCOPE_KEYS)


async def _scope_sizes(
    session: AsyncSession, scopes: list[dict[str, list[str]]]
) -> dict[tuple[tuple[str, ...], ...], int]:
    """The drawable targets of each scope, by the filter the draw's pool applies
    (core.draws.pool.scope_clause): one count per scope the file names."""
    sizes = {}
    for scope in scopes:
        key = _scope_key(scope)
        if key not in sizes:
            sizes[key] = int(
                await session.scalar(
                    select(func.count())
                    .select_from(Target)
                    .where(Target.status.in_(DRAWABLE_STATUSES), scope_clause(scope))
                )
                or 0
            )
    return sizes


def _parse_month(row: Row, year: int) -> int:
    """The month of `year` the row plans: 6, 6月, 2026-6, 2026年6月, 2026/6/1, or a date cell
    (Excel turns a typed 2026/12 or 2026年12月 into the date 2026-12-01)."""
    raw = row.raw("month")
    if isinstance(raw, dt.date):  # openpyxl's datetime too
        said, found_year, month = f"{raw.year}年{raw.month}月", raw.year, raw.month
    else:
        text = nfkc(row.get("month"))
        if not text:
            row.error("month", f"计划月份为空，请填写 {year} 年的 1–12 月，例如 6 或 6月")
            return 0
        found = _MONTH.fullmatch(text) or _DATE.fullmatch(text)
        if not found or not 1 <= int(found[2]) <= 12:
            row.error(
                "month", f"计划月份“{row.get('month')}”应为 {year} 年的 1–12 月，例如 6 或 6月"
            )
            return 0
        said, month = row.get("month"), int(found[2])
        found_year = int(found[1]) if found[1] else year
    if found_year != year:
        row.error(
            "month",
            f"计划月份“{said}”是 {found_year} 年的，本计划是 {year} 年的：请填写 {year} 年的"
            " 1–12 月，例如 6 或 6月",
        )
        return 0
    return month


def _parse_amount(row: Row) -> tuple[str, int | None]:
    """(ratio as decimal text, None) or ("", count)."""
    text = nfkc(row.get("ratio"))
    if _BARE.fullmatch(text):  # 3: 3户 or 3%? (0.03 is a ratio, as a spreadsheet's 3% reads)
        row.error(
            "ratio",
            f"抽查比例或数量“{text}”只有数字，不能确定是比例还是户数：请写“{text}%”或“{text}户”",
        )
        return "", None
    if (counted := _COUNT.fullmatch(text)) and int(counted[1]) > 0:
        return "", int(counted[1])
    ratio = parse_ratio(text)
    if ratio is None:
        row.error(
            "ratio",
            f"抽查比例或数量“{row.get('ratio')}”无法识别，请写比例（如 5%）或户数（如 30户）",
        )
        return "", None
    return str(ratio), None


def _scope(values: list[str], regions: set[str]) -> dict[str, list[str]]:
    """Kinds by their names, regions known from the target library, anything else an industry."""
    scope: dict[str, list[str]] = {}
    for value in values:
        key = "kinds" if value in TARGET_KINDS else "regions" if value in regions else "industries"
        scope.setdefault(key, []).append(value)
    return scope


def _row_items(
    row: Row, look: _Lookups, lead: int | None, participants: list[int], resolved: bool
) -> list[Item]:
    """The row's items among the departments found; when one it names was not (`resolved`
    false), an item not found may be that department's, so it is not said to be missing."""
    found: list[Item] = []
    for code in split_multi(row.get("items")):
        item = next(
            (
                look.items[(d, nfkc(code).upper())]
                for d in (lead, *participants)
                if d is not None and (d, nfkc(code).upper()) in look.items
            ),
            None,
        )
        if item is not None:
            found.append(item)
        elif resolved:
            row.error("items", f"牵头部门和参与部门的现行事项清单中没有事项“{code}”")
    if resolved and lead is not None and found and not any(i.department_id == lead for i in found):
        row.error("items", "至少要有一项牵头部门的事项")
    return found


def _check_cap(
    row: Row, ratio: str, count: int | None, items: list[Item], cap: str, size: int
) -> None:
    """002 二(二): a general item's ratio has a cap; key items have none (core.draws.ratios). A
    count is compared with it over the targets the library has in the row's scope now (none
    yet: the task's creation and its draw check it)."""
    for item in items:
        if ratio:
            problem = cap_problem(item, Decimal(ratio), 0, cap)
            said = f"抽查{problem}"
        else:
            problem = cap_problem(item, min(count or 0, size), size, cap)
            said = f"{count}户，{problem}"
        if problem:
            row.error("ratio", said)


def _check_plan_row(row: Row, look: _Lookups, year: int) -> dict[str, Any]:
    code = nfkc(row.get("code")).upper()
    if not code or len(code) > _PLAN_LEN["code"]:
        row.error(
            "code", "计划编号为空" if not code else f"计划编号过长：最多 {_PLAN_LEN['code']} 个字符"
        )
    title = row.text("title", _PLAN_LEN["title"])
    if not title:
        row.error("title", "任务名称为空")
    lead = look.departments.find(row, "lead", required=True)
    resolved = lead is not None
    participants: list[int] = []
    named = split_multi(row.get("participants"))
    for name in named:
        dept = look.departments.lookup(row, "participants", name)
        resolved &= dept is not None
        if dept is not None and dept == lead:
            row.error("participants", "参与部门不能是牵头部门")
        elif dept is not None and dept not in participants:
            participants.append(dept)
    if not named:  # one named but not found, or the lead, is already refused as such
        row.error("participants", "联合抽查至少要有一个参与部门")
    # an item may belong to a department the row names but we could not resolve: saying it is
    # missing from the item lists would blame the item, not the department; the items found
    # are still checked (their caps), so one run reports every problem
    items = _row_items(row, look, lead, participants, resolved)
    ratio, count = _parse_amount(row)
    scope = look.scope_of(row)
    _check_scope_in_library(row, scope, look)
    size = look.in_scope(scope) if count else 0
    _check_cap(row, ratio, count, items, look.cap, size)
    return {
        "year": year,
        "code": code,
        "title": title,
        "lead_department_id": lead,
        "participant_ids": participants,
        "item_ids": [i.id for i in items],
        "scope": scope,
        "ratio": ratio,
        "count": count,
        "month": _parse_month(row, year),
    }


def _other_years(sheet: Sheet, layout: Layout, year: int) -> str:
    """Why the file is not `year`'s plan ("" when it may be): its plan codes or titles (2026年度…)
    name another year — a plan imported under the wrong --year would sit in that year."""
    said: dict[int, list[str]] = {}
    for line, cells in sheet.rows:
        row = Row(layout, line, cells)
        code = nfkc(row.get("code")).upper()
        years = {*_YEAR_IN_CODE.findall(code), *_YEAR_IN_TITLE.findall(row.get("title"))}
        for other in sorted({int(y) for y in years} - {year}):
            said.setdefault(other, []).append(code or f"第 {line} 行")
    if not said:
        return ""
    named = "、".join(
        f"{y} 年（{'、'.join(codes[:3])}{'等' if len(codes) > 3 else ''}）"
        for y, codes in sorted(said.items())
    )
    first = min(said)
    return (
        f"文件中的计划编号或任务名称写的是 {named}，与导入年度 {year} 年不符。"
        f"导入 {first} 年的计划请加 --year {first}；确是 {year} 年的计划，请改正编号和名称中的年份"
    )


# ---------------------------------------------------------------- import


_PLAN_FIELDS = (
    "title",
    "lead_department_id",
    "participant_ids",
    "item_ids",
    "scope",
    "ratio",
    "count",
    "month",
)


async def import_plan(
    ctx: changes.Ctx,
    path: Path,
    *,
    year: int | None = None,
    past_year: bool = False,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the year's joint plan; same 计划编号 = update. A row whose task was started is
    kept as it is; a row left out of a re-import is dropped unless its task was started.

    A past year's plan starts no task any more: it is imported only when `past_year` confirms
    it (to complete the record the yearly evaluation reads); a file whose codes or titles name
    another year than `year` is refused whole."""
    this_year = ctx.clock.today().year
    year = year or this_year
    report = ImportReport(kind="plan", file_name=Path(path).name, skip_invalid=skip_invalid)
    if year < this_year and not past_year:
        report.file_error = (
            f"{year} 年已经过去，往年的计划不能再发起任务。确需补录 {year} 年的计划，请加 "
            f"--past-year；导入今年的计划请用 --year {this_year} 或不写 --year"
        )
        return report
    state: dict[str, Any] = {}

    async def prepare(_sheet: Sheet) -> None:
        items = await ctx.session.scalars(select(Item).where(Item.current.is_(True)))
        regions = {r for r in await ctx.session.scalars(select(Target.region).distinct()) if r}
        industries = {i for i in await ctx.session.scalars(select(Target.industry).distinct()) if i}
        stored = await ctx.session.execute(
            select(PlanEntry.code, PlanEntry.scope).where(PlanEntry.year == year)
        )
        look = state["look"] = _Lookups(
            await load_departments(ctx.session),
            {(i.department_id, i.code.upper()): i for i in items},
            regions,
            industries,
            ctx.rules.general_item_ratio_cap,
            {code: scope for code, scope in stored},
        )
        layout = Layout(_sheet, PLAN_COLUMNS)
        rows = [Row(layout, line, cells) for line, cells in _sheet.rows]
        scopes = [  # the rows drawing a count: a ratio is compared with the cap as it is
            look.scope_of(row) for row in rows if _COUNT.fullmatch(nfkc(row.get("ratio")))
        ]
        look.sizes = await _scope_sizes(ctx.session, scopes)

    def check(sheet: Sheet, layout: Layout) -> Checked:
        report.file_error = _other_years(sheet, layout, year)  # stops run_import before writing
        return check_file(
            sheet,
            layout,
            lambda row: _check_plan_row(row, state["look"], year),
            lambda r: (r["code"],),
            "code",
            "计划编号",
        )

    async def write(checked: Checked, progress: Progress | None) -> tuple[int, int]:
        existing = {
            e.code: e
            for e in await ctx.session.scalars(select(PlanEntry).where(PlanEntry.year == year))
        }
        inserted = updated = 0
        scoped = [r["code"] for r in checked.good() if (e := existing.get(r["code"])) and e.scope]
        for rec in checked.good():
            entry = existing.pop(rec["code"], None)
            if entry is None:
                ctx.session.add(PlanEntry(**rec))
                inserted += 1
            elif entry.task_id is None:
                updated += assign(entry, {f: rec[f] for f in _PLAN_FIELDS})
            elif any(getattr(entry, f) != rec[f] for f in _PLAN_FIELDS):
                # started: carried out as planned (004 第七条); a row as stored is 未变
                report.skip("已发起任务，未按本次文件修改", entry.code)
        if in_file := [c for c in {r["code"] for r in checked.rejected()} if c in existing]:
            report.notes.append(
                "以下计划所在行有误未导入，计划中保持原样："
                + "、".join(existing.pop(c).code for c in sorted(in_file))
            )
        if (lines := [line for line, _ in checked.unkeyed("code")]) and existing:
            # a row without its code may be any stored row: none is deleted
            kept = sorted(existing)
            report.notes.append(unkeyed_note(lines, "计划编号", "计划", "删除", kept))
            existing.clear()
        await _drop_left_out(ctx, list(existing.values()), report)
        report.notes.extend(kept_note(checked.layout, ("scope",), "计划", scoped))
        await ctx.session.flush()
        return inserted, updated

    return await run_import(
        ctx,
        "plan",
        path,
        PLAN_COLUMNS,
        check=check,
        prepare=prepare,
        write=write,
        report=report,
        skip_invalid=skip_invalid,
        rejects_path=rejects_path,
        progress=progress,
    )


async def _drop_left_out(ctx: changes.Ctx, left_out: list[PlanEntry], report: ImportReport) -> None:
    dropped = [e for e in left_out if e.task_id is None]
    for entry in dropped:
        await ctx.session.delete(entry)
    if dropped:
        report.notes.append(
            f"以下计划不在本次文件中，已从计划中删除：{'、'.join(e.code for e in dropped)}"
        )
    if kept := [e.code for e in left_out if e.task_id is not None]:
        report.notes.append(f"以下计划不在本次文件中，但已发起任务，予以保留：{'、'.join(kept)}")
