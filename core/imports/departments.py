"""Setup (before any task): importing the joint conference's member departments (成员单位)
from the office's spreadsheet; same 部门编码 = update. Departments are never deleted: one missing
from a re-import is reported. Same flow as every import (core.imports.flow).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select

from core import changes
from core.imports.flow import Checked, ImportReport, Progress, assign, check_file, run_import
from core.imports.reading import (
    CODE,
    VALUE,
    Column,
    Layout,
    Row,
    RowError,
    Sheet,
    column_lengths,
    nfkc,
    person_name,
)
from core.models import Department

_DEPARTMENT_LEN = column_lengths(cast(Table, Department.__table__))
_CODE = re.compile(r"[A-Z0-9][A-Z0-9_\-]*")
_YES = {"是", "y", "yes", "true", "1", "√", "市场监管"}
_NO = {"否", "n", "no", "false", "0", "", "×"}

DEPARTMENT_COLUMNS = (
    Column("code", ("部门编码", "部门编号", "编码", "code"), required=True, cells=CODE),
    Column("name", ("部门名称", "单位名称", "名称", "name"), required=True),
    Column("short_name", ("简称", "short_name")),
    Column(
        "is_market_regulator",
        ("是否市场监管部门", "市场监管部门", "is_market_regulator"),
        cells=VALUE,
    ),
    Column("counterpart", ("上级对口部门", "对口部门", "counterpart")),
)


def _check_department(row: Row, taken_names: dict[str, str]) -> dict[str, Any]:
    code = nfkc(row.get("code")).upper()
    if not code:
        row.error("code", "部门编码为空")
    elif not _CODE.fullmatch(code) or len(code) > _DEPARTMENT_LEN["code"]:
        row.error(
            "code",
            f"部门编码“{code}”只能由字母、数字、- 和 _ 组成，最多 {_DEPARTMENT_LEN['code']} 个字符",
        )
    # names cleaned as officers' are: spaces typed inside a Chinese name (县　退役军人事务局) go
    name = row.text("name", _DEPARTMENT_LEN["name"], person_name)
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
        "short_name": row.text("short_name", _DEPARTMENT_LEN["short_name"], person_name),
        "is_market_regulator": market in _YES,
        "counterpart": row.text("counterpart", _DEPARTMENT_LEN["counterpart"], person_name),
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
    checked.drop_bad()


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
        inserted = updated = 0
        for rec in checked.good():
            dep = existing.get(rec["code"])
            if dep is None:
                ctx.session.add(Department(**rec))
                inserted += 1
            else:
                updated += assign(dep, {f: rec[f] for f in fields})
        await ctx.session.flush()
        # a rejected row is in the file: its department is not left out, only mistyped
        named = {r["code"] for r in (*checked.good(), *checked.rejected())}
        if missing := sorted(set(existing) - named):
            names = "、".join(f"{existing[c].name}（{c}）" for c in missing)
            report.notes.append(f"以下成员单位不在本次文件中，已保留未删除，请核实：{names}")
        if progress is not None:
            progress(len(checked.records), len(checked.records))
        return inserted, updated

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
