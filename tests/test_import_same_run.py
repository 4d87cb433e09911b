"""What an import tells in one run: duplicates between rows beside every other row error (they
came only once the other errors were fixed), an exclusion naming a code the target library does
not hold, and a CSV in an encoding not recognised (a Big5 file was "缺少必填列" with garbled
names)."""

from __future__ import annotations

from pathlib import Path

from core.changes import Ctx
from core.imports.exclusions import import_exclusions
from core.imports.inspectors import import_inspectors
from core.imports.targets import import_targets
from core.uscc import make_uscc
from tests.workbooks import csv_file

U1, U2, U3 = (make_uscc(f"91330424MA00000{n:02d}") for n in (1, 2, 3))


async def test_duplicates_are_reported_with_every_other_row_error(
    ctx: Ctx, market_regulator: None, tmp_path: Path
) -> None:
    rows = [
        ["姓名", "部门", "执法证号", "人员编号", "手机", "企业微信账号"],
        ["甲", "SJ", "ZF1", "SJ001", "abc", ""],
        ["乙", "SJ", "ZF2", "SJ002", "13800000002", ""],
        ["丙", "SJ", "ZF3", "SJ002", "1380", ""],
        ["丁", "SJ", "ZF4", "SJ004", "13800000004", "ding"],
        ["戊", "SJ", "ZF5", "SJ005", "xyz", "ding"],
    ]
    report = await import_inspectors(ctx, csv_file(tmp_path / "i.csv", rows))
    found = {(e.line, e.column): e.reason for e in report.rejected}
    assert found[(4, "人员编号")] == "人员编号与第 3 行重复（第 3、4 行）"
    assert {(2, "手机"), (4, "手机"), (6, "手机")} <= set(found)
    assert found[(6, "企业微信账号")].startswith("企业微信账号“ding”与第 5 行重复")


async def test_an_exclusion_of_a_code_not_in_the_target_library_is_named(
    ctx: Ctx, tmp_path: Path
) -> None:
    targets = [["统一社会信用代码", "名称"], [U1, "甲公司"]]
    assert (await import_targets(ctx, csv_file(tmp_path / "t.csv", targets))).ok
    rows = [["统一社会信用代码", "年度", "原因"], [U1, "2026", "市局已查"], [U2, "2026", ""]]
    report = await import_exclusions(ctx, csv_file(tmp_path / "e.csv", rows))
    assert report.ok and report.inserted == 2
    assert "不在检查对象名录中" in report.summary_zh() and U2 in report.summary_zh()
    assert U1 not in report.summary_zh()


async def test_a_big5_csv_is_said_to_be_in_an_encoding_not_recognised(
    ctx: Ctx, tmp_path: Path
) -> None:
    rows = [["統一社會信用代碼", "名稱", "類型"], [U3, "某縣餐飲有限公司", "企業"]]
    report = await import_targets(ctx, csv_file(tmp_path / "b.csv", rows, "big5"))
    assert not report.ok
    assert "编码" in report.file_error and "UTF-8" in report.file_error
    assert "GBK" in report.file_error and "Big5" in report.file_error
