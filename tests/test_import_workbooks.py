"""Workbooks an office hands the importer whose data a plain read would lose without a word: a
second worksheet with rows of its own (tg_towns.xlsx: 城关镇 and 新塘镇, 5 targets each, only the
first read) and cells merged across data rows (行业 merged D2:D6: four targets stored with an
empty 行业). Both are refused, naming what to fix."""

from __future__ import annotations

from pathlib import Path

import openpyxl
from sqlalchemy import select

from core.changes import Ctx
from core.imports.targets import import_targets
from core.models import Target
from core.uscc import make_uscc
from tests.workbooks import xlsx

HEADER = ["统一社会信用代码", "名称", "类型", "行业"]
U = [make_uscc(f"91330424MA000{n:04d}") for n in range(6)]


async def test_a_second_worksheet_with_rows_is_refused_naming_it(ctx: Ctx, tmp_path: Path) -> None:
    path = xlsx(
        tmp_path / "towns.xlsx",
        ("城关镇", [HEADER, [U[0], "甲", "企业", "餐饮"]]),
        ("新塘镇", [HEADER, [U[1], "乙", "企业", "餐饮"]]),
        ("说明", [["本表由城关所填写"]]),
        ("空表", [HEADER]),
    )
    report = await import_targets(ctx, path)
    assert not report.ok
    assert "“城关镇”“新塘镇”" in report.file_error and "说明" not in report.file_error
    assert "空表" not in report.file_error
    assert "合并到一张工作表" in report.summary_zh()
    assert await ctx.session.scalar(select(Target)) is None


async def test_a_data_sheet_beside_notes_is_still_read(ctx: Ctx, tmp_path: Path) -> None:
    path = xlsx(
        tmp_path / "t.xlsx",
        ("填写说明", [["列名", "说明"], ["统一社会信用代码", "18 位"]]),
        ("数据", [HEADER, [U[0], "甲", "企业", "餐饮"]]),
    )
    report = await import_targets(ctx, path)
    assert report.ok, report.summary_zh()


async def test_cells_merged_across_data_rows_are_refused_naming_the_range(
    ctx: Ctx, tmp_path: Path
) -> None:
    path = tmp_path / "merged.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["某县检查对象名录"])
    ws.merge_cells("A1:D1")  # a title above the header is no data
    ws.append(HEADER)
    for n in range(1, 6):
        ws.append([U[n], f"企业{n}", "企业", "餐饮" if n == 1 else None])
    ws.merge_cells("D3:D7")
    wb.save(path)
    report = await import_targets(ctx, path)
    assert not report.ok
    assert "第 3–7 行" in report.file_error and "行业 D3:D7" in report.file_error
    assert "取消合并" in report.file_error
    assert await ctx.session.scalar(select(Target)) is None
