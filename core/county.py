"""A county's own setup from its spreadsheets: member departments (成员单位), item lists (一单)
and declared conflicts of interest (利害关系). Same flow as core.imports: every row checked
first, every bad row reported, all-or-nothing unless `skip_invalid`, one audited change.

Departments are never deleted: one missing from a re-import is reported. Items are versioned:
a changed entry gets a new version and the old one stays attached to the tasks that used it
(001 第九条: the list is kept up to date; a task keeps the text it was created with).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import changes
from core.imports.flow import (
    CHUNK,
    Checked,
    Departments,
    ImportReport,
    Progress,
    check_file,
    load_departments,
    run_import,
)
from core.imports.reading import (
    Column,
    Layout,
    Row,
    RowError,
    Sheet,
    cell_text,
    check_uscc,
    column_lengths,
    nfkc,
    split_multi,
)
from core.models import Department, Item, JointTask, Officer, OfficerConflict, Target, TaskItem
from core.states import TaskState
from core.uscc import validate_uscc

_DEPARTMENT_LEN = column_lengths(cast(Table, Department.__table__))
_ITEM_LEN = column_lengths(cast(Table, Item.__table__))
_CODE = re.compile(r"[A-Z0-9][A-Z0-9_\-]*")
_YES = {"是", "y", "yes", "true", "1", "√", "市场监管"}
_NO = {"否", "n", "no", "false", "0", "", "×"}
CATEGORY_WORDS = {
    "重点": "key",
    "重点检查事项": "key",
    "重点事项": "key",
    "key": "key",
    "一般": "general",
    "一般检查事项": "general",
    "一般事项": "general",
    "general": "general",
}
CATEGORY_LABELS = {"key": "重点", "general": "一般"}
# tasks that no longer use their items: filed (立卷归档)
FINISHED_TASK_STATES = (TaskState.CLOSED,)

DEPARTMENT_COLUMNS = (
    Column("code", ("部门编码", "部门编号", "编码", "code"), required=True),
    Column("name", ("部门名称", "单位名称", "名称", "name"), required=True),
    Column("short_name", ("简称", "short_name")),
    Column("is_market_regulator", ("是否市场监管部门", "市场监管部门", "is_market_regulator")),
    Column("counterpart", ("上级对口部门", "对口部门", "counterpart")),
)
ITEM_COLUMNS = (
    Column("department", ("部门", "所属部门", "department"), required=True),
    Column("code", ("事项编码", "事项代码", "code"), required=True),
    Column("name", ("事项名称", "name"), required=True),
    Column("category", ("事项类别", "类别", "category")),
    Column("target_scope", ("检查对象范围", "检查对象", "target_scope")),
    Column("method", ("检查方式", "method")),
    Column("basis", ("检查依据", "依据", "basis")),
    Column("ratio_cap", ("抽查比例上限", "比例上限", "ratio_cap")),
)
CONFLICT_COLUMNS = (
    Column("officer", ("人员编号", "officer"), required=True),
    Column("uscc", ("统一社会信用代码", "社会信用代码", "uscc", "注册号"), required=True),
    Column("reason", ("利害关系", "原因", "reason")),
)


# ---------------------------------------------------------------- ratios (shared with the plan)


def parse_ratio(text: str) -> Decimal | None:
    """'5%', '5％', '0.05' → Decimal('0.05'); None when it is not a ratio in (0, 1]."""
    key = nfkc(text)
    try:
        value = Decimal(key[:-1]) / 100 if key.endswith("%") else Decimal(key)
    except InvalidOperation:
        return None
    return value if value.is_finite() and 0 < value <= 1 else None


def percent(value: Decimal | str) -> str:
    """Decimal('0.05') → '5%' (how offices write ratios)."""
    return f"{(Decimal(value) * 100).normalize():f}%"


# ---------------------------------------------------------------- departments


def _check_department(row: Row, taken_names: dict[str, str]) -> dict[str, Any]:
    code = nfkc(row.get("code")).upper()
    if not code:
        row.error("code", "部门编码为空")
    elif not _CODE.fullmatch(code) or len(code) > _DEPARTMENT_LEN["code"]:
        row.error(
            "code",
            f"部门编码“{code}”只能由字母、数字、- 和 _ 组成，最多 {_DEPARTMENT_LEN['code']} 个字符",
        )
    name = row.text("name", _DEPARTMENT_LEN["name"])
    if not name:
        row.error("name", "部门名称为空")
    elif taken_names.get(name, code) != code:
        row.error("name", f"部门名称“{name}”已属于部门编码 {taken_names[name]}")
    market = nfkc(row.get("is_market_regulator")).lower()
    if market not in _YES | _NO:
        row.error("is_market_regulator", f"“{row.get('is_market_regulator')}”应填 是 或 否")
    return {
        "code": code,
        "name": name,
        "short_name": row.text("short_name", _DEPARTMENT_LEN["short_name"]),
        "is_market_regulator": market in _YES,
        "counterpart": row.text("counterpart", _DEPARTMENT_LEN["counterpart"]),
    }


def _duplicate_names(checked: Checked) -> None:
    first: dict[str, int] = {}
    for line, rec in checked.records:
        earlier = first.setdefault(rec["name"], line)
        if earlier != line:
            checked.bad.setdefault(line, []).append(
                RowError(
                    line,
                    checked.layout.header["name"],
                    f"部门名称与第 {earlier} 行重复（第 {earlier}、{line} 行）",
                )
            )
    checked.records = [(line, r) for line, r in checked.records if line not in checked.bad]


async def import_departments(
    ctx: changes.Ctx,
    path: Path,
    *,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the joint conference's member departments; same 部门编码 = update."""
    report = ImportReport(kind="departments", file_name=Path(path).name, skip_invalid=skip_invalid)
    existing: dict[str, Department] = {}

    async def prepare(_sheet: Sheet) -> None:
        existing.update({d.code: d for d in await ctx.session.scalars(select(Department))})

    def check(sheet: Sheet, layout: Layout) -> Checked:
        taken = {d.name: d.code for d in existing.values()}
        checked = check_file(
            sheet,
            layout,
            lambda row: _check_department(row, taken),
            lambda r: (r["code"],),
            "code",
            "部门编码",
        )
        _duplicate_names(checked)
        return checked

    async def write(checked: Checked, progress: Progress | None) -> tuple[int, int]:
        fields = [
            "name",
            *(
                f
                for f in ("short_name", "is_market_regulator", "counterpart")
                if checked.layout.has(f)
            ),
        ]
        inserted = 0
        for rec in checked.good():
            dep = existing.get(rec["code"])
            if dep is None:
                ctx.session.add(Department(**rec))
                inserted += 1
            else:
                for f in fields:
                    setattr(dep, f, rec[f])
        await ctx.session.flush()
        if missing := sorted(set(existing) - {r["code"] for r in checked.good()}):
            names = "、".join(f"{existing[c].name}（{c}）" for c in missing)
            report.notes.append(f"以下成员单位不在本次文件中，已保留未删除，请核实：{names}")
        if progress is not None:
            progress(len(checked.records), len(checked.records))
        return inserted, len(checked.records) - inserted

    return await run_import(
        ctx,
        "departments",
        path,
        DEPARTMENT_COLUMNS,
        check=check,
        prepare=prepare,
        write=write,
        report=report,
        skip_invalid=skip_invalid,
        rejects_path=rejects_path,
        progress=progress,
    )


# ---------------------------------------------------------------- items

_ITEM_CONTENT = ("name", "category", "target_scope", "method", "basis", "ratio_cap")


def _check_item(row: Row, departments: Departments, general_cap: Decimal) -> dict[str, Any]:
    dept_id = departments.find(row, "department", required=True)
    code = nfkc(row.get("code"))
    if not code:
        row.error("code", "事项编码为空")
    elif len(code) > _ITEM_LEN["code"]:
        row.error("code", f"事项编码过长：最多 {_ITEM_LEN['code']} 个字符")
    name = row.text("name", _ITEM_LEN["name"])
    if not name:
        row.error("name", "事项名称为空")
    category = CATEGORY_WORDS.get(nfkc(row.get("category")).lower())
    if category is None:
        row.error(
            "category",
            f"未知事项类别“{row.get('category')}”，请填 重点 或 一般"
            if row.get("category")
            else "事项类别为空，请填 重点 或 一般",
        )
    return {
        "department_id": dept_id,
        "code": code,
        "name": name,
        "category": category,
        "target_scope": split_multi(row.get("target_scope")),
        "method": "、".join(split_multi(row.get("method")))[: _ITEM_LEN["method"]],
        "basis": row.get("basis"),
        "ratio_cap": _ratio_cap(row, category, general_cap),
    }


def _ratio_cap(row: Row, category: str | None, general_cap: Decimal) -> str:
    """002 二(二): key items have no cap; a general item's cap is its own or the county's."""
    text = row.get("ratio_cap")
    if not text:
        return ""
    cap = parse_ratio(text)
    if cap is None:
        row.error("ratio_cap", f"抽查比例上限“{text}”应为 0–100% 之间的比例，例如 5% 或 0.05")
        return ""
    if category == "key":
        row.error("ratio_cap", "重点检查事项的抽查比例不设上限，请留空")
    elif cap > general_cap:
        row.error(
            "ratio_cap", f"一般检查事项的抽查比例上限不能超过本县规定的 {percent(general_cap)}"
        )
    return str(cap)


async def _used_item_ids(session: AsyncSession, item_ids: list[int]) -> dict[int, str]:
    """Items of unfinished tasks → one task code using each (they cannot be retired)."""
    if not item_ids:
        return {}
    rows = await session.execute(
        select(TaskItem.item_id, func.min(JointTask.code))
        .join(JointTask)
        .where(TaskItem.item_id.in_(item_ids), JointTask.state.not_in(FINISHED_TASK_STATES))
        .group_by(TaskItem.item_id)
    )
    return {item_id: code for item_id, code in rows.all()}


async def import_items(
    ctx: changes.Ctx,
    path: Path,
    *,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import item lists. For each department in the file, the file is its whole current list:
    a changed entry becomes a new version; an entry left out is retired, unless an unfinished
    task uses it, in which case it stays and the report says so."""
    report = ImportReport(kind="items", file_name=Path(path).name, skip_invalid=skip_invalid)
    state: dict[str, Any] = {}
    general_cap = Decimal(ctx.rules.general_item_ratio_cap)

    async def prepare(_sheet: Sheet) -> None:
        state["departments"] = await load_departments(ctx.session)

    def check(sheet: Sheet, layout: Layout) -> Checked:
        return check_file(
            sheet,
            layout,
            lambda row: _check_item(row, state["departments"], general_cap),
            lambda r: (r["department_id"], r["code"].upper()),
            "code",
            "同一部门的事项编码",
        )

    async def write(checked: Checked, progress: Progress | None) -> tuple[int, int]:
        records = checked.good()
        dept_ids = sorted({r["department_id"] for r in records})
        versions = list(
            await ctx.session.scalars(select(Item).where(Item.department_id.in_(dept_ids)))
        )
        current = {(i.department_id, i.code.upper()): i for i in versions if i.current}
        latest: dict[tuple[int, str], int] = {}
        for i in versions:
            key = (i.department_id, i.code.upper())
            latest[key] = max(latest.get(key, 0), i.version)
        inserted = updated = 0
        for rec in records:
            key = (rec["department_id"], rec["code"].upper())
            old = current.pop(key, None)
            if old is not None and all(getattr(old, f) == rec[f] for f in _ITEM_CONTENT):
                continue
            if old is not None:
                old.current = False
                updated += 1
            else:
                inserted += 1
            ctx.session.add(Item(**rec, version=latest.get(key, 0) + 1, current=True))
        await _retire(ctx.session, list(current.values()), state["departments"], report)
        await ctx.session.flush()
        if progress is not None:
            progress(len(records), len(records))
        return inserted, updated

    return await run_import(
        ctx,
        "items",
        path,
        ITEM_COLUMNS,
        check=check,
        prepare=prepare,
        write=write,
        report=report,
        skip_invalid=skip_invalid,
        rejects_path=rejects_path,
        progress=progress,
    )


async def _retire(
    session: AsyncSession, left_out: list[Item], departments: Departments, report: ImportReport
) -> None:
    used = await _used_item_ids(session, [i.id for i in left_out])
    kept = []
    for item in left_out:
        if item.id in used:
            kept.append(f"{item.code}（任务 {used[item.id]}）")
        else:
            item.current = False
    if retired := [i.code for i in left_out if i.id not in used]:
        report.notes.append(
            f"以下事项不在本次文件中，已从现行清单移除（历史版本保留）：{'、'.join(retired)}"
        )
    if kept:
        report.notes.append(
            f"以下事项不在本次文件中，但仍被未完成的任务使用，未移除：{'、'.join(kept)}"
        )


# ---------------------------------------------------------------- conflicts of interest


def _check_conflict(row: Row, officers: dict[str, int], targets: dict[str, int]) -> dict[str, Any]:
    code = nfkc(row.get("officer")).upper()
    officer_id = officers.get(code)
    if officer_id is None:
        row.error("officer", f"未知人员编号“{row.get('officer')}”" if code else "人员编号为空")
    uscc, _legacy = check_uscc(row)
    target_id = targets.get(uscc)
    if uscc and target_id is None and not row.errors:
        row.error("uscc", f"检查对象名录库中没有 {uscc}，请先导入检查对象")
    reason = row.text("reason", 200)
    if not reason:
        row.error("reason", "请写明利害关系，例如：本人配偶在该企业任职")
    return {"officer_id": officer_id, "target_id": target_id, "reason": reason}


async def import_conflicts(
    ctx: changes.Ctx,
    path: Path,
    *,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Declared conflicts of interest: the officer is never matched to that target (000 §八)."""
    state: dict[str, dict[str, int]] = {}

    async def prepare(sheet: Sheet) -> None:
        state["officers"] = dict(
            (await ctx.session.execute(select(Officer.code, Officer.id))).all()
        )
        # only the targets the file names: a city's library is too big to load for a few rows
        wanted = sorted(
            {
                check.code
                for _, cells in sheet.rows
                for c in cells
                if cell_text(c) and (check := validate_uscc(c)).ok
            }
        )
        found: dict[str, int] = {}
        for start in range(0, len(wanted), CHUNK):
            rows = await ctx.session.execute(
                select(Target.uscc, Target.id).where(Target.uscc.in_(wanted[start : start + CHUNK]))
            )
            found.update({uscc: target_id for uscc, target_id in rows})
        state["targets"] = found

    def check(sheet: Sheet, layout: Layout) -> Checked:
        return check_file(
            sheet,
            layout,
            lambda row: _check_conflict(row, state["officers"], state["targets"]),
            lambda r: (r["officer_id"], r["target_id"]),
            "uscc",
            "同一人员与同一检查对象的利害关系",
        )

    async def write(checked: Checked, progress: Progress | None) -> tuple[int, int]:
        existing = {
            (c.officer_id, c.target_id): c
            for c in await ctx.session.scalars(select(OfficerConflict))
        }
        inserted = 0
        for rec in checked.good():
            old = existing.get((rec["officer_id"], rec["target_id"]))
            if old is None:
                ctx.session.add(OfficerConflict(**rec))
                inserted += 1
            else:
                old.reason = rec["reason"]
        await ctx.session.flush()
        return inserted, len(checked.records) - inserted

    return await run_import(
        ctx,
        "conflicts",
        path,
        CONFLICT_COLUMNS,
        check=check,
        prepare=prepare,
        write=write,
        skip_invalid=skip_invalid,
        rejects_path=rejects_path,
        progress=progress,
    )
