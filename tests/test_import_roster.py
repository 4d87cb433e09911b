"""Re-importing the inspector roster (001 第十条 执法检查人员名录): the file is the roster as it
stands, yet an officer marked as gone stays gone until the file says so in words, and what an
Excel CSV made of an identifier or a phone number is refused (a county admin's re-imported roster
put 张敏, 调往市局工作, back in post and into the next draw; 执法证号 "3.3E+07" and 手机 "abc"
were stored)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from core.changes import Ctx
from core.imports.inspectors import import_inspectors
from core.models import Officer
from core.officers import deactivate
from tests.workbooks import csv_file

HEADER = ["姓名", "部门", "执法证号", "人员编号", "手机", "角色", "在岗状态"]


async def officer(ctx: Ctx, code: str) -> Officer:
    found = await ctx.session.scalar(select(Officer).where(Officer.code == code))
    assert found is not None
    await ctx.session.refresh(found)
    return found


ROSTER = [
    HEADER,
    ["王伟", "SJ", "ZF001", "SJ001", "13800000001", "执法检查人员、联络员", "在岗"],
    ["张敏", "SJ", "ZF003", "SJ003", "13800000003", "执法检查人员", "在岗"],
]


async def test_a_roster_still_listing_a_departed_officer_does_not_put_them_back(
    ctx: Ctx, market_regulator: None, tmp_path: Path
) -> None:
    path = csv_file(tmp_path / "roster.csv", ROSTER)
    assert (await import_inspectors(ctx, path)).ok
    await ctx.session.commit()
    await deactivate(ctx, "SJ003", "调往市局工作")
    await ctx.session.commit()

    report = await import_inspectors(ctx, path)
    await ctx.session.commit()
    assert report.ok, report.summary_zh()
    assert not (await officer(ctx, "SJ003")).active
    text = report.summary_zh()
    assert "未恢复在岗：SJ003 张敏（已离岗，原因：调往市局工作）" in text
    assert "恢复在岗" in text.split("未恢复在岗")[1].split("）", 1)[1]  # says how to restore
    assert "更新 0 条" in text

    # the explicit way back: 在岗状态 恢复在岗
    back = [HEADER, [*ROSTER[2][:6], "恢复在岗"]]
    report = await import_inspectors(ctx, csv_file(tmp_path / "back.csv", back))
    await ctx.session.commit()
    assert report.ok, report.summary_zh()
    restored = await officer(ctx, "SJ003")
    assert restored.active and restored.inactive_reason == ""
    assert "恢复在岗 1 人：SJ003 张敏" in report.summary_zh()


async def test_an_officer_left_by_file_is_not_reactivated_by_the_next_file(
    ctx: Ctx, market_regulator: None, tmp_path: Path
) -> None:
    assert (await import_inspectors(ctx, csv_file(tmp_path / "r.csv", ROSTER))).ok
    left = [HEADER, [*ROSTER[2][:6], "调离"]]
    assert (await import_inspectors(ctx, csv_file(tmp_path / "l.csv", left))).ok
    await ctx.session.commit()
    report = await import_inspectors(ctx, csv_file(tmp_path / "r2.csv", ROSTER))
    await ctx.session.commit()
    assert not (await officer(ctx, "SJ003")).active
    assert "未恢复在岗：SJ003 张敏（已离岗，原因：调离）" in report.summary_zh()


async def test_the_roster_file_decides_roles_and_names_each_removed_one(
    ctx: Ctx, market_regulator: None, tmp_path: Path
) -> None:
    assert (await import_inspectors(ctx, csv_file(tmp_path / "r.csv", ROSTER))).ok
    await ctx.session.commit()
    only = [HEADER, [*ROSTER[1][:5], "执法检查人员", "在岗"], ROSTER[2]]
    report = await import_inspectors(ctx, csv_file(tmp_path / "o.csv", only))
    await ctx.session.commit()
    assert report.ok, report.summary_zh()
    assert (await officer(ctx, "SJ001")).roles == ["inspector"]
    text = report.summary_zh()
    assert "SJ001 王伟 不再是联络员" in text
    assert "县市场监督管理局 没有在岗的联络员" in text
    # a blank 角色 cell still keeps the stored roles
    blank = [HEADER, [*ROSTER[1][:5], "", "在岗"]]
    assert (await import_inspectors(ctx, csv_file(tmp_path / "b.csv", blank))).ok
    assert (await officer(ctx, "SJ001")).roles == ["inspector"]


async def test_excel_scientific_notation_and_bad_phones_in_a_gbk_csv_are_refused(
    ctx: Ctx, market_regulator: None, tmp_path: Path
) -> None:
    rows = [
        ["姓名", "部门", "执法证号", "人员编号", "手机", "企业微信账号"],
        ["甲", "SJ", "3.3E+07", "SJ010", "13800000010", ""],
        ["乙", "SJ", "ZF011", "SJ011", "1.38E+10", ""],
        ["丙", "SJ", "ZF012", "SJ012", "abc", ""],
        ["丁", "SJ", "ZF013", "SJ013", "0571-88881234", "1.23E+05"],
        ["戊", "SJ", "ZF014", "SJ014", "138 0000 0014", "wuwu"],
    ]
    report = await import_inspectors(ctx, csv_file(tmp_path / "g.csv", rows, "gbk"))
    assert not report.ok
    found = {(e.line, e.column): e.reason for e in report.rejected}
    assert sorted(found) == [(2, "执法证号"), (3, "手机"), (4, "手机"), (5, "企业微信账号")]
    assert found[(2, "执法证号")].startswith("疑似被 Excel 转成科学计数法（3.3E+07）")
    assert "文本" in found[(3, "手机")]
    assert "11 位手机号" in found[(4, "手机")] and "区号" in found[(4, "手机")]
    assert await ctx.session.scalar(select(Officer)) is None
