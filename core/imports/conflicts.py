"""Setup (before any task): importing declared conflicts of interest (利害关系): the officer is
never matched to that target (000 §八). Same flow as every import (core.imports.flow).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from core import changes
from core.imports.flow import CHUNK, Checked, ImportReport, Progress, assign, check_file, run_import
from core.imports.reading import (
    CODE,
    USCC_COLUMN,
    Column,
    Layout,
    Row,
    Sheet,
    cell_text,
    check_uscc,
    nfkc,
)
from core.models import Officer, OfficerConflict, Target
from core.models.county import CONFLICT_REASON_CHARS
from core.uscc import validate_uscc

CONFLICT_COLUMNS = (
    Column("officer", ("人员编号", "officer"), required=True, cells=CODE),
    Column(
        "uscc",
        ("统一社会信用代码", "社会信用代码", "uscc", "注册号"),
        required=True,
        cells=USCC_COLUMN.cells,
    ),
    Column("reason", ("利害关系", "原因", "reason"), required=True),
)


def _check_conflict(row: Row, officers: dict[str, int], targets: dict[str, int]) -> dict[str, Any]:
    code = nfkc(row.get("officer")).upper()
    officer_id = officers.get(code)
    if officer_id is None:
        row.error("officer", f"未知人员编号“{row.get('officer')}”" if code else "人员编号为空")
    uscc, _legacy = check_uscc(row)
    target_id = targets.get(uscc)
    if uscc and target_id is None and not row.errors:
        row.error("uscc", f"检查对象名录库中没有 {uscc}，请先导入检查对象")
    reason = row.text("reason", CONFLICT_REASON_CHARS)
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
        inserted = updated = 0
        for rec in checked.good():
            old = existing.get((rec["officer_id"], rec["target_id"]))
            if old is None:
                ctx.session.add(OfficerConflict(**rec))
                inserted += 1
            else:
                updated += assign(old, {"reason": rec["reason"]})
        await ctx.session.flush()
        return inserted, updated

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
