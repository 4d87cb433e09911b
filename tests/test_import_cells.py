"""Excel's typed cells in the columns of every importer (one shared check, core.imports.reading):
a date cell in a text column and a number in an identifier column are refused with the line and
the column, as a USCC that Excel turned into a number already was (a county admin's 执法证号
stored as "2023-05-06", 检查依据 "2024-03-01", a target named "2025-01-01", a 执法证号
"3.30400000000001E+17" and "3304.5" were all accepted)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.changes import Ctx
from core.imports.departments import import_departments
from core.imports.inspectors import import_inspectors
from core.imports.items import import_items
from core.imports.targets import import_targets
from core.models import Item, Officer, Target
from core.uscc import make_uscc
from tests.workbooks import xlsx

U1, U2 = make_uscc("91330424MA28AQAQX"), make_uscc("92330424MA0000001")
INSPECTORS = ["姓名", "部门", "执法证号", "人员编号", "手机", "角色"]
ITEMS = ["部门", "事项编码", "事项名称", "事项类别", "检查依据"]


def sheet(path: Path, rows: list[list[Any]]) -> Path:
    return xlsx(path, ("数据", rows))


async def test_date_cells_in_text_columns_of_every_importer_are_refused(
    ctx: Ctx, market_regulator: None, tmp_path: Path
) -> None:
    inspectors = sheet(
        tmp_path / "i.xlsx",
        [INSPECTORS, ["陈默", "SJ", dt.datetime(2023, 5, 6), "SJ010", "", "执法检查人员"]],
    )
    report = await import_inspectors(ctx, inspectors)
    assert not report.ok
    ((line, column, reason),) = [(e.line, e.column, e.reason) for e in report.rejected]
    assert (line, column) == (2, "执法证号")
    assert "疑似被 Excel 转成日期（2023-05-06）" in reason and "文本" in reason
    assert "第 2 行【执法证号】疑似被 Excel 转成日期" in report.summary_zh()

    items = sheet(
        tmp_path / "e.xlsx",
        [ITEMS, ["SJ", "SJ-01", "检查", "重点", dt.datetime(2024, 3, 1)]],
    )
    report = await import_items(ctx, items)
    assert [(e.line, e.column) for e in report.rejected] == [(2, "检查依据")]

    targets = sheet(
        tmp_path / "t.xlsx",
        [["统一社会信用代码", "名称", "区域"], [U1, dt.datetime(2025, 1, 1), dt.time(8, 30)]],
    )
    report = await import_targets(ctx, targets)
    assert [(e.line, e.column) for e in report.rejected] == [(2, "名称"), (2, "区域")]
    assert "2025-01-01" in report.rejected[0].reason

    departments = sheet(
        tmp_path / "d.xlsx", [["部门编码", "部门名称"], [dt.datetime(2026, 1, 2), "县商务局"]]
    )
    report = await import_departments(ctx, departments)
    # the Excel cause, not "部门编码“2026-01-02”只能由字母、数字…"
    ((column, reason),) = [(e.column, e.reason) for e in report.rejected]
    assert column == "部门编码" and reason.startswith("疑似被 Excel 转成日期")
    assert await ctx.session.scalar(select(Officer)) is None
    assert await ctx.session.scalar(select(Item)) is None
    assert await ctx.session.scalar(select(Target)) is None


async def test_numbers_in_identifier_columns_are_refused(
    ctx: Ctx, market_regulator: None, tmp_path: Path
) -> None:
    """A whole number short enough to be exact is still refused in a code column (a leading 0
    may be gone); a mobile number of 11 digits starting with 1 is unambiguous and taken."""
    path = sheet(
        tmp_path / "ins4.xlsx",
        [
            INSPECTORS,
            ["数字证", "SJ", 33040123, "SJ01", 13812345678, "执法检查人员"],
            ["长证号", "SJ", 3.304000000000012e17, "SJ02", "", "执法检查人员"],
            ["浮点", "SJ", 3304.5, "SJ03", "", "执法检查人员"],
            ["编号", "SJ", "ZF-1", 2001, 5551234.0, "执法检查人员"],
        ],
    )
    report = await import_inspectors(ctx, path)
    assert not report.ok
    found = {(e.line, e.column): e.reason for e in report.rejected}
    assert sorted(found) == [
        (2, "执法证号"),
        (3, "执法证号"),
        (4, "执法证号"),
        (5, "人员编号"),
        (5, "手机"),
    ]
    assert found[(3, "执法证号")].startswith("疑似被 Excel 转成数字（3.30400000000001E+17）")
    assert "无法还原" in found[(3, "执法证号")]
    assert found[(4, "执法证号")].startswith("疑似被 Excel 转成数字（3304.5）")
    assert found[(2, "执法证号")].startswith("疑似被 Excel 转成数字（33040123）")
    assert "0" in found[(2, "执法证号")] and "文本" in found[(2, "执法证号")]

    path = sheet(
        tmp_path / "ok.xlsx", [INSPECTORS, ["数字手机", "SJ", "ZF-1", "SJ01", 13812345678, ""]]
    )
    report = await import_inspectors(ctx, path)
    assert report.ok, report.summary_zh()
    officer = await ctx.session.scalar(select(Officer))
    assert officer is not None and officer.mobile == "13812345678"


async def test_a_15_digit_registration_number_cell_is_still_taken(ctx: Ctx, tmp_path: Path) -> None:
    """Excel keeps 15 digits exactly: an old 注册号 in a number cell is its digits."""
    path = sheet(tmp_path / "t.xlsx", [["统一社会信用代码", "名称"], [330424000012345, "甲店"]])
    report = await import_targets(ctx, path)
    assert report.ok, report.summary_zh()
    target = await ctx.session.scalar(select(Target))
    assert target is not None and (target.uscc, target.is_legacy_id) == ("330424000012345", True)
