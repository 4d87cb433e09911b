"""Importing exclusion lists (排除名单): targets already inspected this year, by this county's
departments or the city's (000 §五.1), so a draw leaves them out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update

from core import changes
from core.imports.flow import (
    CHUNK,
    KEPT_SHOWN,
    Checked,
    Departments,
    ImportReport,
    Progress,
    check_file,
    chunks,
    core_connection,
    expire_loaded,
    kept_note,
    load_departments,
    run_import,
)
from core.imports.reading import (
    CODE,
    USCC_COLUMN,
    VALUE,
    Column,
    Layout,
    Row,
    Sheet,
    check_uscc,
    column_lengths,
    nfkc,
)
from core.models import Exclusion, Target

EXCLUSION_COLUMNS = (
    USCC_COLUMN,
    Column("year", ("年度", "年份", "year"), required=True, cells=VALUE),
    Column("department", ("部门", "department"), cells=CODE),
    Column("source", ("来源", "source")),
    Column("reason", ("原因", "reason")),
)


_EXCLUSIONS = cast(Table, Exclusion.__table__)
_EXCLUSION_LEN = column_lengths(_EXCLUSIONS)


def _parse_year(row: Row) -> int:
    text = nfkc(row.get("year")).removesuffix("年")
    if not text:
        row.error("year", "年度为空")
        return 0
    if not text.isascii() or not text.isdigit() or not 2000 <= int(text) <= 2100:
        row.error("year", f"年度“{row.get('year')}”不是有效年份（例如 2026）")
        return 0
    return int(text)


def _check_exclusion(row: Row, departments: Departments) -> dict[str, Any]:
    uscc, _legacy = check_uscc(row)
    return {
        "year": _parse_year(row),
        "uscc": uscc,
        "department_id": departments.find(row, "department", required=False),
        "source": row.text("source", _EXCLUSION_LEN["source"]),
        "reason": row.text("reason", _EXCLUSION_LEN["reason"]),
    }


def _exclusion_key(rec: dict[str, Any]) -> tuple[Any, ...]:
    return rec["year"], rec["uscc"], rec["department_id"], rec["source"]


async def _unknown_targets_note(conn: Any, records: list[dict[str, Any]]) -> list[str]:
    """The file's codes the target library does not hold: taken (the library may be imported
    later), but until then they keep no target out of a draw, and a mistyped code never will."""
    codes = sorted({r["uscc"] for r in records})
    known: set[str] = set()
    for start in range(0, len(codes), CHUNK):
        part = codes[start : start + CHUNK]
        known.update(await conn.scalars(select(Target.uscc).where(Target.uscc.in_(part))))
    unknown = [c for c in codes if c not in known]
    if not unknown:
        return []
    shown = "、".join(unknown[:KEPT_SHOWN]) + (
        f" 等 {len(unknown)} 个" if len(unknown) > KEPT_SHOWN else ""
    )
    return [
        f"以下代码不在检查对象名录中（已导入，但在名录有该对象前不起排除作用，请核对代码）：{shown}"
    ]


async def import_exclusions(
    ctx: changes.Ctx,
    path: Path,
    *,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import 'already inspected this year' records. Same (year, code, department, source)
    updates the reason. Matching is done here, not by ON CONFLICT, because a missing
    department is NULL and NULLs never conflict in a unique constraint."""
    state: dict[str, Any] = {}
    report = ImportReport(kind="exclusions", file_name=Path(path).name, skip_invalid=skip_invalid)

    async def prepare(_sheet: Sheet) -> None:
        state["departments"] = await load_departments(ctx.session)

    def check(sheet: Sheet, layout: Layout) -> Checked:
        return check_file(
            sheet,
            layout,
            lambda row: _check_exclusion(row, state["departments"]),
            _exclusion_key,
            "uscc",
            "同一年度、代码、部门和来源的记录",
        )

    async def write(checked: Checked, progress: Progress | None) -> tuple[int, int]:
        table = _EXCLUSIONS
        conn = await core_connection(ctx.session)
        records = checked.good()
        years = sorted({r["year"] for r in records})
        existing = {
            (y, u, d, s): (i, r)
            for i, y, u, d, s, r in (
                await conn.execute(
                    select(
                        table.c.id,
                        table.c.year,
                        table.c.uscc,
                        table.c.department_id,
                        table.c.source,
                        table.c.reason,
                    ).where(table.c.year.in_(years))
                )
            ).all()
        }
        new = [r for r in records if _exclusion_key(r) not in existing]
        stored = [r for r in records if _exclusion_key(r) in existing]
        # a file without 原因 leaves the stored reasons as they are
        changed = [
            {"b_id": existing[_exclusion_key(r)][0], "reason": r["reason"]}
            for r in stored
            if checked.layout.has("reason") and existing[_exclusion_key(r)][1] != r["reason"]
        ]
        report.notes.extend(
            kept_note(
                checked.layout,
                ("reason",),
                "记录",
                [r["uscc"] for r in stored if existing[_exclusion_key(r)][1]],
            )
        )
        report.notes.extend(await _unknown_targets_note(conn, records))
        done = 0
        for chunk in chunks(new):
            await conn.execute(table.insert(), chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, len(records))
        if changed:
            await conn.execute(
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .values(reason=bindparam("reason")),
                changed,
            )
        if progress is not None:
            progress(len(records), len(records))
        expire_loaded(ctx.session, Exclusion)
        return len(new), len(changed)

    return await run_import(
        ctx,
        "exclusions",
        path,
        EXCLUSION_COLUMNS,
        check=check,
        prepare=prepare,
        write=write,
        report=report,
        skip_invalid=skip_invalid,
        rejects_path=rejects_path,
        progress=progress,
    )
