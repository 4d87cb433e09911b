"""Setup (before any task): importing departments' item lists (一单, 001 第九条). Items are
versioned: a changed entry gets a new version and the old one stays attached to the tasks that
used it (a task keeps the text it was created with); an entry left out is retired unless an
unfinished task uses it. Same flow as every import (core.imports.flow).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import changes
from core.imports.flow import (
    Checked,
    Departments,
    ImportReport,
    Progress,
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
    percent,
    split_multi,
)
from core.models import Item, JointTask, PlanEntry, TaskItem
from core.states import TaskState

_ITEM_LEN = column_lengths(cast(Table, Item.__table__))
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
CATEGORY_ZH = {"key": "重点", "general": "一般"}
# tasks that no longer use their items: filed (立卷归档)
FINISHED_TASK_STATES = (TaskState.CLOSED,)

ITEM_COLUMNS = (
    Column("department", ("部门", "所属部门", "department"), required=True, cells=CODE),
    Column("code", ("事项编码", "事项代码", "code"), required=True, cells=CODE),
    Column("name", ("事项名称", "name"), required=True),
    Column("category", ("事项类别", "类别", "category"), required=True),
    Column("target_scope", ("检查对象范围", "检查对象", "target_scope")),
    Column("method", ("检查方式", "method")),
    Column("basis", ("检查依据", "依据", "basis")),
    Column("ratio_cap", ("抽查比例上限", "比例上限", "ratio_cap"), cells=VALUE),
)

_ITEM_CONTENT = ("name", "category", "target_scope", "method", "basis", "ratio_cap")
# a file without one of these columns leaves a stored item's value as it is (an empty cell in
# the column clears it): a list re-imported without 抽查比例上限 dropped 5% caps to the county's
KEPT_IF_ABSENT = ("target_scope", "method", "basis", "ratio_cap")


def _check_item(
    row: Row, departments: Departments, general_cap: Decimal, stored: dict[tuple[int, str], Item]
) -> dict[str, Any]:
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
    record = {
        "department_id": dept_id,
        "code": code,
        "name": name,
        "category": category,
        "target_scope": split_multi(row.get("target_scope")),
        "method": "、".join(split_multi(row.get("method")))[: _ITEM_LEN["method"]],
        "basis": row.get("basis"),
        "ratio_cap": _ratio_cap(row, category, general_cap),
    }
    old = stored.get((dept_id, code.upper())) if dept_id is not None else None
    if old is not None:
        for f in KEPT_IF_ABSENT:
            # a key item has no cap (002 二(二)): an item made key keeps none
            if not row.layout.has(f) and (f != "ratio_cap" or category == "general"):
                record[f] = getattr(old, f)
    return record


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


def _bound_changes(old: Item, rec: dict[str, Any], general_cap: Decimal) -> list[str]:
    """An item's 类别 and 抽查比例上限, old → new, where they change (002 二(二)): a new empty
    cap is the county's cap for a general item, none for a key item."""
    said = []
    code, category = rec["code"], rec["category"]
    if old.category != category:
        said.append(f"{code} 事项类别 {CATEGORY_ZH[old.category]} → {CATEGORY_ZH[category]}")
    if (old.ratio_cap or "") != rec["ratio_cap"]:
        before = percent(old.ratio_cap) if old.ratio_cap else "空"
        if rec["ratio_cap"]:
            after = percent(rec["ratio_cap"])
        elif category == "key":
            after = "空（重点事项不设上限）"
        else:
            after = f"空（按本县 {percent(general_cap)}）"
        said.append(f"{code} 抽查比例上限 {before} → {after}")
    return said


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


async def _planned(session: AsyncSession, retired: list[Item], year: int) -> list[str]:
    """The retired items that plan rows of this year or later not yet started still name
    ("JT-01（计划 JH-2026-02）"): a row names its items by department and code (the versions of
    its import are replaced by the current ones when it starts: creation.plan_items)."""
    if not retired:
        return []
    entries = list(
        await session.scalars(
            select(PlanEntry)
            .where(PlanEntry.task_id.is_(None), PlanEntry.year >= year)
            .order_by(PlanEntry.year, PlanEntry.code)
        )
    )
    named = await session.execute(
        select(Item.id, Item.department_id, Item.code).where(
            Item.id.in_({i for e in entries for i in e.item_ids})
        )
    )
    keys = {item_id: (dept, code.upper()) for item_id, dept, code in named}
    plans: dict[str, list[str]] = {}
    for item in retired:
        key = (item.department_id, item.code.upper())
        if codes := [e.code for e in entries if key in {keys.get(i) for i in e.item_ids}]:
            plans[item.code] = codes
    return [f"{code}（计划 {'、'.join(codes)}）" for code, codes in plans.items()]


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
        state["stored"] = {
            (i.department_id, i.code.upper()): i
            for i in await ctx.session.scalars(select(Item).where(Item.current.is_(True)))
        }

    def check(sheet: Sheet, layout: Layout) -> Checked:
        return check_file(
            sheet,
            layout,
            lambda row: _check_item(row, state["departments"], general_cap, state["stored"]),
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
        bounds: list[str] = []  # the changes to what bounds a draw, for the office to check
        # the stored items whose values the file's absent columns left as they were
        unchanged_by_absence = [
            r["code"]
            for r in records
            if (old := current.get((r["department_id"], r["code"].upper())))
            and any(getattr(old, f) for f in KEPT_IF_ABSENT if not checked.layout.has(f))
        ]
        for rec in records:
            key = (rec["department_id"], rec["code"].upper())
            old = current.pop(key, None)
            if old is not None and all(getattr(old, f) == rec[f] for f in _ITEM_CONTENT):
                continue
            if old is not None:
                old.current = False
                updated += 1
                bounds.extend(_bound_changes(old, rec, general_cap))
            else:
                inserted += 1
            ctx.session.add(Item(**rec, version=latest.get(key, 0) + 1, current=True))
        in_file = _rejected_in_file(checked, current)
        if in_file:
            report.notes.append(
                "以下事项所在行有误未导入，现行清单中保持原样："
                + "、".join(current.pop(key).code for key in in_file)
            )
        lines, unknown = _unkeyed_in_file(checked, current)
        if unknown:
            kept = sorted(current.pop(key).code for key in unknown)
            report.notes.append(unkeyed_note(lines, "事项编码", "事项", "移除", kept))
        if bounds:
            report.notes.append(f"以下事项的类别或抽查比例上限有变化，请核对：{'；'.join(bounds)}")
        await _retire(ctx.session, list(current.values()), ctx.clock.today().year, report)
        report.notes.extend(kept_note(checked.layout, KEPT_IF_ABSENT, "事项", unchanged_by_absence))
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


def _rejected_in_file(checked: Checked, current: dict[tuple[int, str], Item]) -> list[Any]:
    """The stored items a rejected row names: in the file, only mistyped, so not left out. A
    row whose department was not found names its code in every department."""
    named = {(r["department_id"], r["code"].upper()) for r in checked.rejected() if r["code"]}
    anywhere = {code for dept, code in named if dept is None}
    return [key for key in current if key in named or key[1] in anywhere]


def _unkeyed_in_file(
    checked: Checked, current: dict[tuple[int, str], Item]
) -> tuple[list[int], list[tuple[int, str]]]:
    """The rejected rows without a code (their lines), and the stored items they may be: any
    of their department's, or of every department when the department was not found either."""
    rows = checked.unkeyed("code")
    departments = {r["department_id"] for _, r in rows}
    maybe = [key for key in current if None in departments or key[0] in departments]
    return [line for line, _ in rows], maybe


async def _retire(
    session: AsyncSession, left_out: list[Item], year: int, report: ImportReport
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
    if planned := await _planned(session, [i for i in left_out if i.id not in used], year):
        report.notes.append(
            "以下已移除的事项仍在年度抽查计划中（计划尚未发起），发起前请重新导入含该事项的"
            f"清单，或调整年度计划：{'、'.join(planned)}"
        )
    if kept:
        report.notes.append(
            f"以下事项不在本次文件中，但仍被未完成的任务使用，未移除：{'、'.join(kept)}"
        )
