"""A county clerk's own Excel files through the real importers: department names as the rest
of the tool takes them, a 计划月份 typed as a date, the 数据 sheet wherever it is, names with
stray spaces, and an 执法证号 handed from one officer to another."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.changes import Ctx
from core.imports import annual_plan
from core.imports.exclusions import import_exclusions
from core.imports.inspectors import import_inspectors
from core.imports.items import import_items
from core.imports.targets import import_targets
from core.models import Department, Exclusion, Item, Officer, PlanEntry, Target
from core.uscc import make_uscc
from tests.test_plan import HEADER as PLAN_HEADER
from tests.workbooks import xlsx

U1, U2 = make_uscc("91330424MA28AQAQX"), make_uscc("92330424MA0000001")
ITEM_HEADER = ["部门", "事项编码", "事项名称", "事项类别"]
INSPECTOR_HEADER = ["姓名", "部门", "执法证号", "人员编号", "角色", "在岗状态"]


@pytest.fixture
async def county(ctx: Ctx) -> dict[str, Department]:
    """Departments as a county names them: full name, short name, code."""
    deps = {
        "SJ": Department(
            code="SJ", name="县市场监督管理局", short_name="市场监管", is_market_regulator=True
        ),
        "WJ": Department(code="WJ", name="县卫生健康局", short_name="卫健"),
        "SW": Department(code="SW", name="县商务局", short_name="商务"),
        "ST": Department(code="ST", name="县生态环境局", short_name="生态环境"),
    }
    ctx.session.add_all(deps.values())
    await ctx.session.flush()
    ctx.session.add_all(
        [
            Item(department_id=deps["SJ"].id, code="SJ-01", name="食品经营检查", category="key"),
            Item(department_id=deps["SW"].id, code="SW-01", name="单用途卡检查", category="key"),
            Item(department_id=deps["WJ"].id, code="WJ-01", name="公共场所检查", category="key"),
        ]
    )
    await ctx.session.commit()
    return deps


# ---------------------------------------------------------------- 1. department names


async def test_every_importer_takes_the_department_names_chat_takes(
    ctx: Ctx, county: dict[str, Department], tmp_path: Path
) -> None:
    """卫健局, 卫健委, 市场监管局, 商务局 are taken by the task file, chat, --department and
    `chat bind` (core.department_names); the importers said 未知部门“卫健局”."""
    items = xlsx(
        tmp_path / "items.xlsx",
        ("数据", [ITEM_HEADER, ["卫健委", "WJ-02", "游泳场所检查", "一般"]]),
    )
    report = await import_items(ctx, items)
    assert report.ok, report.summary_zh()
    inspectors = xlsx(
        tmp_path / "ins.xlsx",
        (
            "数据",
            [
                INSPECTOR_HEADER,
                ["张三", "卫健局", "ZF01", "", "执法检查人员", "在岗"],
                ["李四", "市场监管局", "ZF02", "", "执法检查人员", "在岗"],
            ],
        ),
    )
    report = await import_inspectors(ctx, inspectors)
    assert report.ok, report.summary_zh()
    by_code = {o.code: o for o in (await ctx.session.scalars(select(Officer))).unique()}
    assert by_code["WJ-ZF01"].department_id == county["WJ"].id
    assert by_code["SJ-ZF02"].department_id == county["SJ"].id
    exclusions = xlsx(
        tmp_path / "exc.xlsx",
        (
            "数据",
            [["统一社会信用代码", "年度", "部门", "来源"], [U1, "2026", "商务局", "市商务局"]],
        ),
    )
    report = await import_exclusions(ctx, exclusions)
    assert report.ok, report.summary_zh()
    assert (await ctx.session.scalar(select(Exclusion.department_id))) == county["SW"].id
    plan = xlsx(
        tmp_path / "plan.xlsx",
        (
            "数据",
            [
                PLAN_HEADER,
                [
                    "JH-01",
                    "联合抽查",
                    "市场监管局",
                    "商务局、卫健委",
                    "SJ-01、SW-01",
                    "",
                    "5%",
                    "6",
                ],
                # a body merged away in 2018, as department_names takes it
                ["JH-02", "环境联合抽查", "SJ", "环保局", "SJ-01", "", "5%", "7"],
            ],
        ),
    )
    report = await annual_plan.import_plan(ctx, plan, year=2026)
    assert report.ok, report.summary_zh()
    entries = {e.code: e for e in await ctx.session.scalars(select(PlanEntry))}
    assert entries["JH-01"].participant_ids == [county["SW"].id, county["WJ"].id]
    assert entries["JH-02"].participant_ids == [county["ST"].id]


async def test_ambiguous_department_is_refused_with_the_candidates(
    ctx: Ctx, county: dict[str, Department], tmp_path: Path
) -> None:
    ctx.session.add(Department(code="WJW", name="县卫生健康委员会", short_name="卫健委"))
    await ctx.session.commit()
    path = xlsx(tmp_path / "i.xlsx", ("数据", [ITEM_HEADER, ["卫健局", "X-01", "检查", "重点"]]))
    report = await import_items(ctx, path)
    assert not report.ok
    (error,) = report.rejected
    assert "县卫生健康局" in error.reason and "县卫生健康委员会" in error.reason


async def test_plan_with_an_unknown_department_reports_only_that(
    ctx: Ctx, county: dict[str, Department], tmp_path: Path
) -> None:
    """SW-01 exists: "现行事项清单中没有事项“SW-01”" only followed from the unresolved
    department and misled the clerk."""
    path = xlsx(
        tmp_path / "plan.xlsx",
        (
            "数据",
            [PLAN_HEADER, ["JH-01", "联合抽查", "SJ", "外贸局", "SJ-01、SW-01", "", "5%", "6"]],
        ),
    )
    report = await annual_plan.import_plan(ctx, path, year=2026)
    assert not report.ok
    assert [e.column for e in report.rejected] == ["参与部门"], report.errors_zh()
    assert "外贸局" in report.rejected[0].reason


async def test_an_old_plan_file_writing_a_former_short_name_still_imports(
    ctx: Ctx, county: dict[str, Department], tmp_path: Path
) -> None:
    """卫健's short name became 卫健委: last year's file still writes 卫健."""
    county["WJ"].short_name = "卫健委"
    await ctx.session.commit()
    path = xlsx(
        tmp_path / "plan.xlsx",
        ("数据", [PLAN_HEADER, ["JH-01", "联合抽查", "SJ", "卫健", "SJ-01、WJ-01", "", "5%", "6"]]),
    )
    report = await annual_plan.import_plan(ctx, path, year=2026)
    assert report.ok, report.summary_zh()
    entry = await ctx.session.scalar(select(PlanEntry))
    assert entry is not None and entry.participant_ids == [county["WJ"].id]


# ---------------------------------------------------------------- 2. 计划月份 as a date


async def test_plan_month_typed_as_an_excel_date(
    ctx: Ctx, county: dict[str, Department], tmp_path: Path
) -> None:
    """Excel makes a date of "2026/12" or "2026年12月": openpyxl reads datetime(2026, 12, 1),
    refused as "计划月份“2026-12-01”应为 2026 年的 1–12 月"."""
    rows: list[list[Any]] = [
        PLAN_HEADER,
        ["JH-01", "联合抽查", "SJ", "WJ", "SJ-01", "", "5%", dt.datetime(2026, 12, 1)],
        ["JH-02", "联合抽查二", "SJ", "WJ", "SJ-01", "", "5%", "2026/11/1"],
    ]
    report = await annual_plan.import_plan(
        ctx, xlsx(tmp_path / "p.xlsx", ("数据", rows)), year=2026
    )
    assert report.ok, report.summary_zh()
    months = {e.code: e.month for e in await ctx.session.scalars(select(PlanEntry))}
    assert months == {"JH-01": 12, "JH-02": 11}
    rows[1][-1] = dt.datetime(2025, 12, 1)
    report = await annual_plan.import_plan(
        ctx, xlsx(tmp_path / "p.xlsx", ("数据", rows)), year=2026
    )
    (error,) = report.rejected
    assert error.column == "计划月份" and "2025 年" in error.reason and "2026 年" in error.reason
    assert "2025-12-01" not in error.reason


# ---------------------------------------------------------------- 3. the 数据 sheet


async def test_the_data_sheet_is_read_wherever_it_is(
    ctx: Ctx, county: dict[str, Department], tmp_path: Path
) -> None:
    """填写说明 first, 数据 second: the first sheet was read ("缺少必填列…已忽略的列：说明")."""
    notes = [["说明"], ["姓名、部门必填"]]
    path = xlsx(
        tmp_path / "ins.xlsx",
        ("填写说明", notes),
        ("数据", [INSPECTOR_HEADER, ["张三", "SJ", "ZF01", "", "", ""]]),
    )
    report = await import_inspectors(ctx, path)
    assert report.ok, report.summary_zh()
    assert report.inserted == 1
    # no sheet named 数据: the first whose header has the required columns
    path = xlsx(
        tmp_path / "ins2.xlsx",
        ("说明", notes),
        ("人员", [INSPECTOR_HEADER, ["李四", "SJ", "ZF02", "", "", ""]]),
    )
    report = await import_inspectors(ctx, path)
    assert report.ok and report.inserted == 1, report.summary_zh()
    assert "工作表“人员”" in report.summary_zh()
    # none has them: the error names the sheet read
    path = xlsx(tmp_path / "ins3.xlsx", ("说明", notes), ("其他", [["甲", "乙"]]))
    report = await import_inspectors(ctx, path)
    assert report.file_error and "工作表“说明”" in report.summary_zh()


# ---------------------------------------------------------------- 4. names


async def test_names_of_people_and_targets_are_normalised(
    ctx: Ctx, county: dict[str, Department], tmp_path: Path
) -> None:
    path = xlsx(
        tmp_path / "ins.xlsx",
        (
            "数据",
            [
                INSPECTOR_HEADER,
                ["\u3000冯\u3000刚 ", "SJ", "ZF 01", "", "", ""],
                ["王 小 明", "SJ", "ZF02", "", "", ""],
                [" John\u3000 Smith\u3000", "SJ", "ZF03", "", "", ""],
            ],
        ),
    )
    report = await import_inspectors(ctx, path)
    assert report.ok, report.summary_zh()
    names = {o.code: o.name for o in (await ctx.session.scalars(select(Officer))).unique()}
    assert names == {"SJ-ZF01": "冯刚", "SJ-ZF02": "王小明", "SJ-ZF03": "John Smith"}
    path = xlsx(
        tmp_path / "t.xlsx",
        (
            "数据",
            [
                ["统一社会信用代码", "名称", "类型", "状态"],
                [U1, "\u3000某县 ABC\u3000\u3000Trading 有限公司 ", "企业", "存续"],
                [U2, "某县　恒达餐饮", "企业", "存续"],
            ],
        ),
    )
    report = await import_targets(ctx, path)
    assert report.ok, report.summary_zh()
    names = {t.uscc: t.name for t in await ctx.session.scalars(select(Target))}
    assert names == {U1: "某县 ABC Trading 有限公司", U2: "某县 恒达餐饮"}


# ---------------------------------------------------------------- 5. one 执法证号, one officer


async def _three_officers(ctx: Ctx, county: dict[str, Department]) -> None:
    """王建国 ZF001, 李秀英 ZF002, 赵六 ZF003, all on duty in 市场监管."""
    ctx.session.add_all(
        Officer(
            code=f"SJ00{n}",
            name=name,
            department_id=county["SJ"].id,
            cert_no=f"ZF00{n}",
            roles=["inspector"],
        )
        for n, name in enumerate(("王建国", "李秀英", "赵六"), start=1)
    )
    await ctx.session.commit()


async def test_a_departing_officers_certificate_cannot_pass_to_another(
    ctx: Ctx, county: dict[str, Department], tmp_path: Path
) -> None:
    """The file set 王建国 to 离岗 and gave 李秀英 his number: "更新 3 条", and 李秀英's own
    number was gone."""
    await _three_officers(ctx, county)
    rows = [
        INSPECTOR_HEADER,
        ["王建国", "SJ", "ZF001", "SJ001", "执法检查人员", "离岗"],
        ["李秀英", "SJ", "ZF001", "SJ002", "执法检查人员", "在岗"],
        ["赵六", "SJ", "ZF003", "SJ003", "执法检查人员", "在岗"],
    ]
    report = await import_inspectors(ctx, xlsx(tmp_path / "i.xlsx", ("数据", rows)))
    assert not report.ok
    (error,) = report.rejected
    assert error.line == 3 and "第 2 行" in error.reason
    assert "王建国" in error.reason and "李秀英" in error.reason
    # with --skip-invalid the good rows go in, and nobody shares a number
    report = await import_inspectors(
        ctx,
        xlsx(tmp_path / "i.xlsx", ("数据", rows)),
        skip_invalid=True,
        rejects_path=tmp_path / "r.csv",
    )
    certs = {o.code: o.cert_no for o in (await ctx.session.scalars(select(Officer))).unique()}
    assert certs == {"SJ001": "ZF001", "SJ002": "ZF002", "SJ003": "ZF003"}
    # an officer who already left still holds the number
    rows = [INSPECTOR_HEADER, ["李秀英", "SJ", "ZF001", "SJ002", "执法检查人员", "在岗"]]
    report = await import_inspectors(ctx, xlsx(tmp_path / "j.xlsx", ("数据", rows)))
    (error,) = report.rejected
    assert "SJ001（王建国，离岗）" in error.reason


async def test_a_stored_holder_whose_row_is_refused_keeps_the_number(
    ctx: Ctx, county: dict[str, Department], tmp_path: Path
) -> None:
    """王建国's row (later in the file) is refused for another reason: he keeps ZF001, so
    李秀英 may not take it under --skip-invalid."""
    await _three_officers(ctx, county)
    rows = [
        INSPECTOR_HEADER,
        ["李秀英", "SJ", "ZF001", "SJ002", "执法检查人员", "在岗"],
        ["王建国", "SJ", "ZF009", "SJ001", "执法检查人员", "休假中"],
    ]
    report = await import_inspectors(
        ctx,
        xlsx(tmp_path / "i.xlsx", ("数据", rows)),
        skip_invalid=True,
        rejects_path=tmp_path / "r.csv",
    )
    assert {e.line for e in report.rejected} == {2, 3}
    certs = {o.code: o.cert_no for o in (await ctx.session.scalars(select(Officer))).unique()}
    assert certs["SJ001"] == "ZF001" and certs["SJ002"] == "ZF002"


async def test_every_certificate_change_is_in_the_summary(
    ctx: Ctx, county: dict[str, Department], tmp_path: Path
) -> None:
    await _three_officers(ctx, county)
    rows = [
        INSPECTOR_HEADER,
        ["王建国", "SJ", "ZF101", "SJ001", "执法检查人员", "在岗"],
        ["李秀英", "SJ", "zf 002", "SJ002", "执法检查人员", "在岗"],
    ]
    report = await import_inspectors(ctx, xlsx(tmp_path / "i.xlsx", ("数据", rows)))
    assert report.ok, report.summary_zh()
    summary = report.summary_zh()
    assert "SJ001（王建国）ZF001 → ZF101" in summary
    assert "SJ002" not in summary  # the same number as people write it: no change
