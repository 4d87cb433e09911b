"""Re-importing an item list names each change to what bounds a draw (002 二(二)): an item's
抽查比例上限 and its 类别 重点 / 一般 (a list re-imported with the cap cell cleared raised SJ-03's
cap from 5% to the county's 10%, reported only as "更新 1 条")."""

from __future__ import annotations

from pathlib import Path

from core.changes import Ctx
from core.imports.items import import_items
from tests.workbooks import xlsx

HEADER = ["部门", "事项编码", "事项名称", "事项类别", "抽查比例上限"]


async def test_a_changed_cap_or_category_is_named_old_to_new(
    ctx: Ctx, market_regulator: None, tmp_path: Path
) -> None:
    first = [
        HEADER,
        ["SJ", "SJ-03", "广告检查", "一般", "5%"],
        ["SJ", "SJ-04", "价格检查", "一般", "3%"],
        ["SJ", "SJ-05", "食品检查", "重点", ""],
        ["SJ", "SJ-06", "计量检查", "一般", "2%"],
    ]
    assert (await import_items(ctx, xlsx(tmp_path / "a.xlsx", ("数据", first)))).ok
    await ctx.session.commit()
    second = [
        HEADER,
        ["SJ", "SJ-03", "广告检查", "一般", ""],
        ["SJ", "SJ-04", "价格检查", "重点", ""],
        ["SJ", "SJ-05", "食品检查", "一般", "4%"],
        ["SJ", "SJ-06", "计量检查（新）", "一般", "2%"],
    ]
    report = await import_items(ctx, xlsx(tmp_path / "b.xlsx", ("数据", second)))
    assert report.ok, report.summary_zh()
    text = report.summary_zh()
    assert "SJ-03 抽查比例上限 5% → 空（按本县 10%）" in text
    assert (
        "SJ-04 事项类别 一般 → 重点" in text
        and "SJ-04 抽查比例上限 3% → 空（重点事项不设上限）" in text
    )
    assert "SJ-05 事项类别 重点 → 一般" in text and "SJ-05 抽查比例上限 空 → 4%" in text
    assert "SJ-06" not in text.split("。", 1)[1]  # only its name changed
