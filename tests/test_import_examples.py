"""The templates' own example rows left in a file are refused, naming the row to delete: a
county's t_inspectors.xlsx renamed its stored SJ001 王伟 to the example's 张三 (with the
example's mobile, expertise and roles), t_targets.xlsx added the fictitious 某县恒达餐饮有限公司.
An officer's changed name is listed in the report, as a changed 执法证号 is."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from core.changes import Ctx
from core.imports.conflicts import import_conflicts
from core.imports.departments import import_departments
from core.imports.examples import EXAMPLE_USCC
from core.imports.exclusions import import_exclusions
from core.imports.inspectors import import_inspectors
from core.imports.items import import_items
from core.imports.targets import import_targets
from core.models import Department, Officer, Target
from core.sheets import write_template
from tests.test_imports import write_csv


@pytest.fixture
async def county(ctx: Ctx) -> Department:
    sj = Department(
        code="SJ", name="县市场监督管理局", short_name="市场监管", is_market_regulator=True
    )
    ctx.session.add(sj)
    await ctx.session.flush()
    ctx.session.add(
        Officer(
            code="SJ001",
            name="王伟",
            department_id=sj.id,
            cert_no="ZF33040001",
            mobile="13800000001",
            expertise=["食品"],
            roles=["inspector"],
        )
    )
    await ctx.session.commit()
    return sj


def add_rows(path: Path, *rows: list[str]) -> Path:
    wb = openpyxl.load_workbook(path)
    for row in rows:
        wb["数据"].append(row)
    wb.save(path)
    return path


async def test_example_rows_of_the_templates_are_refused(
    ctx: Ctx, county: Department, tmp_path: Path
) -> None:
    inspectors = add_rows(
        write_template("inspectors", tmp_path / "t_inspectors.xlsx", year=2026),
        ["李娜", "SJ", "ZF33040002", "SJ002", "", "", "", "", "", "", "在岗"],
    )
    report = await import_inspectors(ctx, inspectors)
    assert not report.ok
    ((line, reason),) = [(e.line, e.reason) for e in report.rejected]
    assert line == 2 and "模板自带的示例行" in reason and "删除" in reason
    officer = await ctx.session.scalar(select(Officer).where(Officer.code == "SJ001"))
    assert officer is not None and (officer.name, officer.mobile) == ("王伟", "13800000001")
    # --skip-invalid writes the real rows and puts the example into the rejects file
    report = await import_inspectors(ctx, inspectors, skip_invalid=True)
    assert report.ok and report.inserted == 1 and report.rejected_rows == 1
    assert (await ctx.session.get(Officer, officer.id)).name == "王伟"  # type: ignore[union-attr]

    for kind, importer in (
        ("targets", import_targets),
        ("exclusions", import_exclusions),
        ("conflicts", import_conflicts),
    ):
        report = await importer(ctx, write_template(kind, tmp_path / f"{kind}.xlsx", year=2026))
        assert not report.ok, kind
        assert [e.line for e in report.rejected] == [2], report.errors_zh()
        assert "示例行" in report.summary_zh()
    assert await ctx.session.scalar(select(Target)) is None


async def test_a_template_made_last_year_is_still_recognised(
    ctx: Ctx, county: Department, tmp_path: Path
) -> None:
    path = write_template("exclusions", tmp_path / "x.xlsx", year=2025)
    report = await import_exclusions(ctx, path)
    assert not report.ok and "示例行" in report.rejected[0].reason


async def test_real_world_examples_of_departments_and_items_still_import(
    ctx: Ctx, tmp_path: Path
) -> None:
    """Their example rows are real departments and a real item (001's list): a county's own
    file holding the same row is its data, not a forgotten example."""
    report = await import_departments(
        ctx, write_template("departments", tmp_path / "d.xlsx", year=2026)
    )
    assert report.ok and report.inserted == 2, report.summary_zh()
    report = await import_items(ctx, write_template("items", tmp_path / "i.xlsx", year=2026))
    assert report.ok and report.inserted == 2, report.summary_zh()


async def test_a_renamed_officer_is_listed_in_the_report(
    ctx: Ctx, county: Department, tmp_path: Path
) -> None:
    rows = [["姓名", "部门", "执法证号", "人员编号"], ["王小伟", "SJ", "ZF33040001", "SJ001"]]
    report = await import_inspectors(ctx, write_csv(tmp_path / "i.csv", rows))
    assert report.ok and report.updated == 1
    assert "姓名变更 1 人，请核对：SJ001 王伟 → 王小伟" in report.summary_zh()


async def test_an_example_row_is_recognised_in_a_file_without_one_of_its_other_columns(
    ctx: Ctx, county: Department, tmp_path: Path
) -> None:
    """The office deleted the template's 手机 column (no numbers kept) and forgot the example
    row: since 5c8db30 asked for every column the example fills, 张三 renamed SJ001 王伟 again.
    The example's identifying columns (here 姓名 and 人员编号) are what make it the example."""
    path = write_template("inspectors", tmp_path / "t_inspectors.xlsx", year=2026)
    wb = openpyxl.load_workbook(path)
    sheet = wb["数据"]
    [mobile] = [c.column for c in sheet[1] if c.value == "手机"]
    sheet.delete_cols(mobile)
    wb.save(path)
    report = await import_inspectors(ctx, path)
    assert not report.ok and "示例行" in report.rejected[0].reason, report.summary_zh()
    officer = await ctx.session.scalar(select(Officer).where(Officer.code == "SJ001"))
    assert officer is not None and officer.name == "王伟"


async def test_a_real_row_sharing_the_examples_code_alone_is_no_example(
    ctx: Ctx, county: Department, tmp_path: Path
) -> None:
    """5c8db30: an exclusion file of 统一社会信用代码 and 年度 alone naming the example's code
    is the county's data (the example is known by its 原因 too)."""
    ctx.session.add(Target(uscc=EXAMPLE_USCC, name="某县真实餐饮有限公司"))
    await ctx.session.commit()
    rows = [["统一社会信用代码", "年度", "部门"], [EXAMPLE_USCC, "2026", "SJ"]]
    report = await import_exclusions(ctx, write_csv(tmp_path / "x.csv", rows))
    assert report.ok, report.summary_zh()
