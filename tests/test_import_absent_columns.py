"""A column absent from an import file leaves the stored values alone, in every importer with
optional columns; an empty cell in a column the file has still clears. A county re-imported
its item list without 抽查比例上限 ("更新 2 条"): WJ-01's 5% cap fell to the county's 10% (002
二(二): a general item's ratio is bounded by its own cap), and 检查对象范围 and 检查方式 were
cleared the same way. The report names what was kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from core.changes import Ctx
from core.imports.annual_plan import import_plan
from core.imports.departments import import_departments
from core.imports.exclusions import import_exclusions
from core.imports.inspectors import import_inspectors
from core.imports.items import import_items
from core.imports.targets import import_targets
from core.models import Department, Exclusion, Item, Officer, PlanEntry, Target
from core.uscc import make_uscc
from tests import factories as f
from tests.test_imports import write_csv

U1 = make_uscc("91330424MA28AQAQX")
ITEMS = [
    "部门",
    "事项编码",
    "事项名称",
    "事项类别",
    "检查对象范围",
    "检查方式",
    "检查依据",
    "抽查比例上限",
]


@pytest.fixture
async def county(ctx: Ctx) -> dict[str, Department]:
    sj = await f.department(ctx.session, "县市场监督管理局", code="SJ", market=True)
    wj = await f.department(ctx.session, "县卫生健康局", code="WJ")
    await f.officer(ctx.session, sj, "liaison")
    await f.officer(ctx.session, wj, "liaison")
    await ctx.session.commit()
    return {"SJ": sj, "WJ": wj}


async def current_items(ctx: Ctx) -> dict[str, Item]:
    return {i.code: i for i in await ctx.session.scalars(select(Item).where(Item.current))}


async def test_items_file_without_optional_columns_keeps_them_002_2_2(
    ctx: Ctx, county: dict[str, Department], tmp_path: Path
) -> None:
    """002 二(二): the department's 5% cap must not fall to the county's default."""
    full = [
        ITEMS,
        ["WJ", "WJ-01", "公共场所卫生检查", "一般", "住宿、餐饮服务", "实地检查", "《条例》", "5%"],
        ["WJ", "WJ-02", "生活饮用水卫生监督检查", "一般", "住宿", "实地检查", "《办法》", "5%"],
    ]
    assert (await import_items(ctx, write_csv(tmp_path / "full.csv", full))).ok
    await ctx.session.commit()
    # i3.csv: WJ-01, WJ-02 unchanged, no 抽查比例上限 column
    i3 = [row[:7] for row in full]
    report = await import_items(ctx, write_csv(tmp_path / "i3.csv", i3))
    assert report.ok and (report.inserted, report.updated, report.unchanged) == (0, 0, 2)
    items = await current_items(ctx)
    assert {c: i.ratio_cap for c, i in items.items()} == {"WJ-01": "0.05", "WJ-02": "0.05"}
    assert {i.version for i in items.values()} == {1}
    (note,) = report.notes
    assert "没有“抽查比例上限”列" in note and "WJ-01、WJ-02" in note
    # i2.csv: neither 检查对象范围, 检查方式 nor the cap; the basis changes
    i2 = [[r[0], r[1], r[2], r[3], r[6]] for r in full]
    i2[1][4] = "《公共场所卫生管理条例》第三条"
    report = await import_items(ctx, write_csv(tmp_path / "i2.csv", i2))
    assert report.ok and (report.updated, report.unchanged) == (1, 1)
    wj01 = (await current_items(ctx))["WJ-01"]
    assert (wj01.target_scope, wj01.method, wj01.ratio_cap, wj01.version) == (
        ["住宿", "餐饮服务"],
        "实地检查",
        "0.05",
        2,
    )
    assert "“检查对象范围”“检查方式”“抽查比例上限”" in report.summary_zh()
    # an empty cell of a column the file has clears, as documented
    cleared = [row[:] for row in full]
    cleared[1][7] = ""
    report = await import_items(ctx, write_csv(tmp_path / "c.csv", cleared))
    assert report.ok and report.updated == 1
    assert report.notes == [
        "以下事项的类别或抽查比例上限有变化，请核对：WJ-01 抽查比例上限 5% → 空（按本县 10%）"
    ]
    assert (await current_items(ctx))["WJ-01"].ratio_cap == ""


async def test_plan_file_without_the_scope_column_keeps_the_scope(
    ctx: Ctx, county: dict[str, Department], tmp_path: Path
) -> None:
    sj, wj = county["SJ"], county["WJ"]
    ctx.session.add_all(
        [
            Item(department_id=sj.id, code="SJ-01", name="食品检查", category="key"),
            Item(department_id=wj.id, code="WJ-01", name="卫生检查", category="key"),
        ]
    )
    await ctx.session.commit()
    head = [
        "计划编号",
        "任务名称",
        "牵头部门",
        "参与部门",
        "事项",
        "检查对象范围",
        "抽查比例或数量",
        "计划月份",
    ]
    row = ["JH-2026-01", "餐饮联合抽查", "SJ", "WJ", "SJ-01、WJ-01", "餐饮服务", "5%", "6"]
    assert (await import_plan(ctx, write_csv(tmp_path / "p.csv", [head, row]), year=2026)).ok
    await ctx.session.commit()
    without = [[c for i, c in enumerate(r) if i != 5] for r in (head, row)]
    without[1][5] = "6%"
    report = await import_plan(ctx, write_csv(tmp_path / "p2.csv", without), year=2026)
    assert report.ok and report.updated == 1, report.summary_zh()
    entry = await ctx.session.scalar(select(PlanEntry))
    assert entry is not None and (entry.scope, entry.ratio) == (
        {"industries": ["餐饮服务"]},
        "0.06",
    )
    assert "没有“检查对象范围”列" in report.summary_zh() and "JH-2026-01" in report.summary_zh()


async def test_other_importers_keep_what_an_absent_column_holds(
    ctx: Ctx, county: dict[str, Department], tmp_path: Path
) -> None:
    departments = [["部门编码", "部门名称", "简称"], ["WJ", "县卫生健康局", "卫健"]]
    assert (await import_departments(ctx, write_csv(tmp_path / "d.csv", departments))).ok
    report = await import_departments(
        ctx, write_csv(tmp_path / "d2.csv", [r[:2] for r in departments])
    )
    assert report.ok and county["WJ"].short_name == "卫健"

    people = [
        ["姓名", "部门", "执法证号", "人员编号", "手机"],
        ["王伟", "SJ", "ZF1", "SJ001", "13800000001"],
    ]
    assert (await import_inspectors(ctx, write_csv(tmp_path / "i.csv", people))).ok
    report = await import_inspectors(ctx, write_csv(tmp_path / "i2.csv", [r[:4] for r in people]))
    officer = await ctx.session.scalar(select(Officer).where(Officer.code == "SJ001"))
    assert report.ok and officer is not None and officer.mobile == "13800000001"

    targets = [["统一社会信用代码", "名称", "区域", "风险等级"], [U1, "甲公司", "城关镇", "C"]]
    assert (await import_targets(ctx, write_csv(tmp_path / "t.csv", targets))).ok
    report = await import_targets(ctx, write_csv(tmp_path / "t2.csv", [r[:2] for r in targets]))
    target = await ctx.session.scalar(select(Target))
    assert (
        report.ok and target is not None and (target.region, target.risk_level) == ("城关镇", "C")
    )

    exclusions = [["统一社会信用代码", "年度", "原因"], [U1, "2026", "市级双随机已检查"]]
    assert (await import_exclusions(ctx, write_csv(tmp_path / "x.csv", exclusions))).ok
    report = await import_exclusions(
        ctx, write_csv(tmp_path / "x2.csv", [r[:2] for r in exclusions])
    )
    exclusion = await ctx.session.scalar(select(Exclusion))
    assert report.ok and exclusion is not None and exclusion.reason == "市级双随机已检查"
    assert report.updated == 0 and "没有“原因”列" in report.summary_zh()
