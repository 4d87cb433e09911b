"""A county's own setup: departments, versioned item lists, officers leaving, conflicts of
interest — on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from core.changes import Ctx
from core.consultation import creation
from core.errors import PermissionDenied, ValidationFailed
from core.imports.conflicts import import_conflicts
from core.imports.departments import import_departments
from core.imports.inspectors import import_inspectors
from core.imports.items import import_items
from core.imports.reading import parse_ratio
from core.models import Department, Item, Officer, OfficerConflict, OutboxMessage, TaskItem
from core.officers import deactivate, declare_conflict
from tests import factories
from tests.case_factories import build_world
from tests.test_imports import write_csv
from tests.workbooks import xlsx

DEPT_HEADER = ["部门编码", "部门名称", "简称", "是否市场监管部门", "上级对口部门"]
ITEM_HEADER = [
    "部门",
    "事项编码",
    "事项名称",
    "事项类别",
    "检查对象范围",
    "检查方式",
    "检查依据",
    "抽查比例上限",
]


async def _departments(ctx: Ctx) -> dict[str, Department]:
    return {d.code: d for d in await ctx.session.scalars(select(Department))}


async def _current_items(ctx: Ctx) -> dict[str, Item]:
    return {
        i.code: i for i in await ctx.session.scalars(select(Item).where(Item.current.is_(True)))
    }


async def test_departments_import_updates_and_never_deletes(ctx: Ctx, tmp_path: Path) -> None:
    path = xlsx(
        tmp_path / "d.xlsx",
        (
            "数据",
            [
                DEPT_HEADER,
                ["sj", "县市场监督管理局", "市场监管", "是", "市市场监督管理局"],
                ["WJ", "县卫生健康局", "卫健", "否", "市卫生健康委员会"],
                ["GA", "县公安局", "", "", ""],
            ],
        ),
    )
    report = await import_departments(ctx, path)
    assert report.ok and report.inserted == 3, report.summary_zh()
    await ctx.session.commit()
    deps = await _departments(ctx)
    assert deps["SJ"].is_market_regulator and not deps["WJ"].is_market_regulator
    assert deps["WJ"].counterpart == "市卫生健康委员会"

    again = write_csv(
        tmp_path / "d.csv",
        [DEPT_HEADER[:3], ["SJ", "县市场监督管理局", "市监"], ["WJ", "县卫生健康局", "卫健"]],
    )
    report = await import_departments(ctx, again)
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 1)  # WJ as stored
    assert report.notes == ["以下成员单位不在本次文件中，已保留未删除，请核实：县公安局（GA）"]
    await ctx.session.commit()
    deps = await _departments(ctx)
    assert set(deps) == {"SJ", "WJ", "GA"} and deps["SJ"].short_name == "市监"
    assert deps["SJ"].is_market_regulator  # the column was not in the file: kept


async def test_departments_bad_rows_are_all_reported(ctx: Ctx, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "d.csv",
        [
            DEPT_HEADER,
            ["SJ", "县市场监督管理局", "", "是", ""],
            ["SJ", "县市场监管局", "", "", ""],
            ["WJ", "县市场监督管理局", "", "否", ""],
            ["卫 健", "", "", "也许", ""],
        ],
    )
    report = await import_departments(ctx, path)
    assert not report.ok
    reasons = {(e.line, e.column): e.reason for e in report.rejected}
    assert "与第 2 行重复" in reasons[(3, "部门编码")]
    assert "与第 2 行重复" in reasons[(4, "部门名称")]
    assert reasons[(5, "是否市场监管部门")] == "“也许”应填 是 或 否"
    assert (
        "只能由字母、数字" in reasons[(5, "部门编码")]
        and reasons[(5, "部门名称")] == "部门名称为空"
    )
    assert await _departments(ctx) == {}


async def _two_departments(ctx: Ctx, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "deps.csv",
        [
            DEPT_HEADER,
            ["SJ", "县市场监督管理局", "市场监管", "是", ""],
            ["WJ", "县卫生健康局", "卫健", "否", ""],
        ],
    )
    assert (await import_departments(ctx, path)).ok
    await ctx.session.commit()


async def _three_sj_items(ctx: Ctx, tmp_path: Path) -> None:
    """Two departments, and SJ's list of three items imported and committed."""
    await _two_departments(ctx, tmp_path)
    first = write_csv(
        tmp_path / "a.csv",
        [
            ITEM_HEADER,
            ["SJ", "SJ-01", "食品经营许可情况检查", "重点", "", "", "", ""],
            ["SJ", "SJ-02", "计量器具检查", "一般", "", "", "", ""],
            ["SJ", "SJ-03", "广告检查", "一般", "", "", "", ""],
        ],
    )
    assert (await import_items(ctx, first)).ok
    await ctx.session.commit()


async def _items_again_skipping_one(ctx: Ctx, tmp_path: Path, *rows: list[str]) -> str:
    """Import the item rows again with --skip-invalid, one of them refused; the summary."""
    path = write_csv(tmp_path / "b.csv", [ITEM_HEADER, *rows])
    report = await import_items(ctx, path, skip_invalid=True, rejects_path=tmp_path / "r.csv")
    assert report.ok and report.rejected_rows == 1, report.summary_zh()
    await ctx.session.commit()
    return report.summary_zh()


async def test_item_categories_and_caps_follow_seed_002_two_two(ctx: Ctx, tmp_path: Path) -> None:
    """002 二(二): key items have no ratio cap; a general item's cap may not exceed the county's."""
    await _two_departments(ctx, tmp_path)
    path = write_csv(
        tmp_path / "items.csv",
        [
            ITEM_HEADER,
            [
                "市场监管",
                "SJ-01",
                "食品经营许可情况检查",
                "重点",
                "餐饮服务、食品销售",
                "实地检查、书面检查",
                "《食品安全法》",
                "",
            ],
            ["SJ", "SJ-02", "计量器具使用情况检查", "一般", "", "实地检查", "", "5%"],
            ["SJ", "SJ-03", "企业公示信息检查", "重点", "", "", "", "3%"],
            ["SJ", "SJ-04", "广告检查", "一般", "", "", "", "20%"],
            ["SJ", "SJ-05", "价格检查", "特别", "", "", "", ""],
            ["SJ", "sj-02", "重复", "一般", "", "", "", ""],
            ["教育局", "JY-01", "校外培训", "一般", "", "", "", ""],
        ],
    )
    report = await import_items(ctx, path)
    assert not report.ok
    reasons = {(e.line, e.column): e.reason for e in report.rejected}
    assert reasons == {
        (4, "抽查比例上限"): "重点检查事项的抽查比例不设上限，请留空",
        (5, "抽查比例上限"): "一般检查事项的抽查比例上限不能超过本县规定的 10%",
        (6, "事项类别"): "未知事项类别“特别”，请填 重点 或 一般",
        (7, "事项编码"): "同一部门的事项编码与第 3 行重复（第 3、7 行）",
        (8, "部门"): "找不到部门“教育局”，请写部门全称、简称或代码（如 县卫生健康局、卫健、WJ）",
    }
    assert await _current_items(ctx) == {}

    report = await import_items(ctx, path, skip_invalid=True, rejects_path=tmp_path / "r.csv")
    assert report.ok and report.inserted == 2
    await ctx.session.commit()
    items = await _current_items(ctx)
    assert items["SJ-01"].category == "key" and items["SJ-01"].target_scope == [
        "餐饮服务",
        "食品销售",
    ]
    assert items["SJ-01"].method == "实地检查、书面检查" and items["SJ-02"].ratio_cap == "0.05"


async def test_a_changed_item_is_a_new_version_and_the_task_keeps_the_old_text(
    ctx: Ctx, tmp_path: Path
) -> None:
    """001 第九条 (the list is kept up to date) without rewriting what a task was created with."""
    await _three_sj_items(ctx, tmp_path)
    deps, items = await _departments(ctx), await _current_items(ctx)
    await factories.officer(ctx.session, deps["SJ"], "liaison")  # the lead acts for its task
    task = await creation.create_task(
        ctx,
        title="食品联合抽查",
        lead_department_id=deps["SJ"].id,
        window_start=factories.WINDOW[0],
        window_end=factories.WINDOW[1],
        item_ids=[items["SJ-01"].id, items["SJ-02"].id],
        scope={},
        rule=factories.RULE_5PCT,
    )
    await ctx.session.commit()

    second = write_csv(
        tmp_path / "b.csv",
        [ITEM_HEADER, ["SJ", "SJ-01", "食品经营许可情况检查（2026版）", "重点", "", "", "", ""]],
    )
    report = await import_items(ctx, second)
    assert (report.inserted, report.updated) == (0, 1)
    assert report.notes == [
        "以下事项不在本次文件中，已从现行清单移除（历史版本保留）：SJ-03",
        f"以下事项不在本次文件中，但仍被未完成的任务使用，未移除：SJ-02（任务 {task.code}）",
    ]
    await ctx.session.commit()
    now = await _current_items(ctx)
    assert set(now) == {"SJ-01", "SJ-02"} and now["SJ-01"].version == 2
    seen = await ctx.session.scalars(
        select(Item.name).join(TaskItem).where(TaskItem.task_id == task.id).order_by(Item.code)
    )
    assert list(seen) == ["食品经营许可情况检查", "计量器具检查"]
    assert (await import_items(ctx, second)).updated == 0  # unchanged: no new version


async def _inspectors(ctx: Ctx, tmp_path: Path) -> dict[str, Officer]:
    await _two_departments(ctx, tmp_path)
    path = write_csv(
        tmp_path / "p.csv",
        [
            ["姓名", "部门", "执法证号", "人员编号", "专业领域", "区域", "角色", "在岗状态"],
            ["张三", "SJ", "ZF001", "SJ001", "食品、特种设备", "城关镇", "", "在岗"],
            ["李四", "SJ", "ZF002", "SJ002", "", "", "执法检查人员、联络员", ""],
            ["王五", "SJ", "", "SJ003", "", "", "分管领导", ""],
        ],
    )
    report = await import_inspectors(ctx, path)
    assert report.ok, report.summary_zh()
    await ctx.session.commit()
    return {o.code: o for o in (await ctx.session.scalars(select(Officer))).unique()}


async def test_officer_who_leaves_by_import_is_kept_and_their_open_cases_listed(
    ctx: Ctx, tmp_path: Path
) -> None:
    """001 第十条(二): the library follows staff changes; a leaver is deactivated, not deleted."""
    people = await _inspectors(ctx, tmp_path)
    assert people["SJ001"].expertise == ["食品", "特种设备"] and people["SJ003"].roles == ["leader"]
    path = write_csv(
        tmp_path / "leave.csv",
        [["姓名", "部门", "人员编号", "在岗状态"], ["张三", "SJ", "SJ001", "调离"]],
    )
    report = await import_inspectors(ctx, path)
    assert report.ok and report.notes == []  # no open case
    await ctx.session.commit()
    zhang = (await ctx.session.scalars(select(Officer).where(Officer.code == "SJ001"))).one()
    await ctx.session.refresh(zhang)
    assert (zhang.active, zhang.inactive_reason) == (False, "调离")

    bad = write_csv(
        tmp_path / "bad.csv",
        [["姓名", "部门", "人员编号", "在岗状态"], ["李四", "SJ", "SJ002", "出差"]],
    )
    report = await import_inspectors(ctx, bad)
    assert [e.reason for e in report.rejected] == [
        "未知在岗状态“出差”，可用：在岗、离岗、调离、退休、辞职、离职、停职、恢复在岗"
    ]


async def test_admin_deactivates_an_officer_and_the_lead_is_told_which_cases_to_replace(
    ctx: Ctx,
) -> None:
    """001 第十四条: a changed post is handled by replacement; the officer is never drawn again."""
    world = await build_world(ctx.session)
    await ctx.session.commit()
    ctx.actor = world.a1
    try:
        await deactivate(ctx, "A2", "调离")
    except PermissionDenied as err:
        assert "管理员" in err.message
    else:
        raise AssertionError("an inspector deactivated a colleague")
    ctx.actor = None  # the CLI / office admin
    officer, cases = await deactivate(ctx, "A2", "调离")
    assert not officer.active and [c.code for c in cases] == [world.case.code]
    await ctx.session.commit()
    sent = [
        m
        for m in await ctx.session.scalars(select(OutboxMessage))
        if m.message.get("title") == "检查人员离岗，需更换"
    ]
    assert len(sent) == 1 and world.case.code in sent[0].message["body"]
    assert sent[0].destination["department_id"] == world.lead.id


async def test_declared_conflicts_by_chat_and_by_import(ctx: Ctx, tmp_path: Path) -> None:
    """000 §八: an inspector with an interest in the
    target withdraws; declared ahead, never matched."""
    world = await build_world(ctx.session)
    await ctx.session.commit()
    with pytest.raises(ValidationFailed, match="标点、空格不计"):
        await declare_conflict(ctx, world.a1, world.target.uscc, "…… ……")
    target = await declare_conflict(
        ctx, world.a1, world.target.uscc.lower(), "本人配偶在该企业任职"
    )
    assert target.id == world.target.id
    path = write_csv(
        tmp_path / "c.csv",
        [
            ["人员编号", "统一社会信用代码", "利害关系"],
            ["B1", world.target.uscc, "近亲属为法定代表人"],
            ["B1", "91330424MA28AQAQX0", "同学"],
            ["ZZ", world.target.uscc, ""],
        ],
    )
    report = await import_conflicts(ctx, path)
    reasons = {(e.line, e.column): e.reason for e in report.rejected}
    assert reasons[(4, "人员编号")] == "未知人员编号“ZZ”" and (4, "利害关系") in reasons
    assert (3, "统一社会信用代码") in reasons
    report = await import_conflicts(ctx, path, skip_invalid=True, rejects_path=tmp_path / "r.csv")
    assert report.inserted == 1
    await ctx.session.commit()
    pairs = {
        (c.officer_id, c.target_id) for c in await ctx.session.scalars(select(OfficerConflict))
    }
    assert pairs == {(world.a1.id, world.target.id), (world.b1.id, world.target.id)}


def test_ratios_as_offices_write_them() -> None:
    assert str(parse_ratio("5%")) == "0.05" and str(parse_ratio("５％")) == "0.05"
    assert str(parse_ratio("0.1")) == "0.1"
    assert parse_ratio("150%") is None and parse_ratio("0") is None and parse_ratio("abc") is None


async def test_a_department_s_answerers_and_liaisons_are_read_by_one_statement(
    ctx: Ctx, session
) -> None:
    """Who answers an invitation (liaisons and leaders, by id) and whom an officer who left is
    sent to (liaisons, by code) are the department's same active officers: one statement
    serves both, each keeping its order; inspectors and those who left are in neither."""
    from sqlalchemy import event

    from core.jointtask import answerers
    from core.officers import liaisons

    dept = await factories.department(session)
    people = [
        Officer(code=code, name=code, department_id=dept.id, roles=roles, active=active)
        for code, roles, active in (
            ("Z9", ["liaison"], True),
            ("L1", ["leader"], True),
            ("A5", ["liaison", "leader"], True),
            ("B2", ["inspector"], True),
            ("C3", ["liaison"], False),
            ("A1", ["liaison"], True),
        )
    ]
    session.add_all(people)
    await session.commit()
    seen: list[str] = []

    def statement(conn: object, cursor: object, text: str, *args: object) -> None:
        seen.append(text)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", statement)
    try:
        answering = [o.code for o in await answerers(ctx, dept.id)]
        asked = [o.code for o in await liaisons(ctx, dept.id)]
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    assert answering == ["Z9", "L1", "A5", "A1"]  # by id, as invitations go out
    assert asked == ["A1", "A5", "Z9"]  # by code, as the officer who left reads them
    officers_read = {text for text in seen if "FROM officer" in text}
    assert len(officers_read) == 1, seen


async def test_an_item_row_skipped_as_invalid_keeps_the_stored_item_current(
    ctx: Ctx, tmp_path: Path
) -> None:
    """--skip-invalid: a row the import rejects is in the file, only mistyped. Its item was
    retired as "不在本次文件中" (a typo in 事项类别 took WJ-02 off the current list): the stored
    item stays as it is, and only the items really left out are retired."""
    await _three_sj_items(ctx, tmp_path)
    said = await _items_again_skipping_one(
        ctx,
        tmp_path,
        ["SJ", "SJ-01", "食品经营许可情况检查", "重点", "", "", "", ""],
        ["SJ", "sj-02", "计量器具检查（新）", "一殷", "", "", "", ""],
    )
    assert "以下事项不在本次文件中，已从现行清单移除（历史版本保留）：SJ-03" in said, said
    assert "SJ-02" not in said.split("不在本次文件中")[-1], said
    assert "以下事项所在行有误未导入，现行清单中保持原样：SJ-02" in said, said
    now = await _current_items(ctx)
    assert set(now) == {"SJ-01", "SJ-02"}
    assert (now["SJ-02"].name, now["SJ-02"].version) == ("计量器具检查", 1)


async def test_a_department_name_typed_with_inner_spaces_is_stored_without_them(
    ctx: Ctx, tmp_path: Path
) -> None:
    """A full-width space typed inside a department's name (县　退役军人事务局) was stored as
    typed, so the name did not match the department as everyone writes it. Department names
    are cleaned as officers' names are: a Chinese name has no spaces."""
    path = write_csv(
        tmp_path / "d.csv",
        [
            DEPT_HEADER,
            ["TY", " 县　退役军人事务局 ", "退役 军人", "否", "市退役军人事务局\u3000"],
        ],
    )
    report = await import_departments(ctx, path)
    assert report.ok, report.summary_zh()
    await ctx.session.commit()
    dept = (await _departments(ctx))["TY"]
    assert (dept.name, dept.short_name, dept.counterpart) == (
        "县退役军人事务局",
        "退役军人",
        "市退役军人事务局",
    )


async def test_an_item_row_refused_for_a_blank_code_retires_none_of_its_department_s_items(
    ctx: Ctx, tmp_path: Path
) -> None:
    """--skip-invalid: a row refused because its 事项编码 is blank is still in the file, and
    could be any of its department's items (its code deleted by mistake). SJ-02 and SJ-03 were
    retired as "不在本次文件中"; every item of that department stays current, and the office
    is told which row to correct. WJ's list, which the row cannot be, is retired as usual."""
    await _three_sj_items(ctx, tmp_path)
    wj = write_csv(tmp_path / "wj.csv", [ITEM_HEADER, ["WJ", "WJ-01", "公共场所卫生", "一般"]])
    assert (await import_items(ctx, wj)).ok
    await ctx.session.commit()
    said = await _items_again_skipping_one(
        ctx,
        tmp_path,
        ["SJ", "SJ-01", "食品经营许可情况检查", "重点", "", "", "", ""],
        ["SJ", "", "计量器具检查", "一般", "", "", "", ""],
        ["WJ", "WJ-02", "医疗机构检查", "一般", "", "", "", ""],
    )
    assert "以下事项不在本次文件中，已从现行清单移除（历史版本保留）：WJ-01" in said, said
    assert (
        "第 3 行的事项编码为空，无法确定是哪一项，以下事项本次未移除，"
        "请改正该行后重新导入：SJ-02、SJ-03"
    ) in said, said
    assert set(await _current_items(ctx)) == {"SJ-01", "SJ-02", "SJ-03", "WJ-02"}


async def test_an_item_row_refused_for_a_blank_code_and_an_unknown_department_retires_nothing(
    ctx: Ctx, tmp_path: Path
) -> None:
    """The refused row names neither its department nor its code: it could be any stored item,
    so no department's list loses an item by this import."""
    await _three_sj_items(ctx, tmp_path)
    said = await _items_again_skipping_one(
        ctx,
        tmp_path,
        ["SJ", "SJ-01", "食品经营许可情况检查", "重点", "", "", "", ""],
        ["", "", "计量器具检查", "一般", "", "", "", ""],
    )
    assert "不在本次文件中" not in said, said
    assert set(await _current_items(ctx)) == {"SJ-01", "SJ-02", "SJ-03"}


async def test_a_department_row_refused_is_not_reported_as_left_out_of_the_file(
    ctx: Ctx, tmp_path: Path
) -> None:
    """--skip-invalid: WJ's row, refused for a blank name, is in the file; it was listed with
    the departments 不在本次文件中. WJ stays as stored and only GA, really left out, is listed."""
    await _two_departments(ctx, tmp_path)
    ga = write_csv(tmp_path / "ga.csv", [DEPT_HEADER, ["GA", "县公安局", "", "否", ""]])
    assert (await import_departments(ctx, ga)).ok
    await ctx.session.commit()
    again = write_csv(
        tmp_path / "again.csv",
        [
            DEPT_HEADER,
            ["SJ", "县市场监督管理局", "市场监管", "是", ""],
            ["WJ", "", "卫健委", "否", ""],
        ],
    )
    report = await import_departments(ctx, again, skip_invalid=True)
    assert report.ok and report.rejected_rows == 1, report.summary_zh()
    assert report.notes == ["以下成员单位不在本次文件中，已保留未删除，请核实：县公安局（GA）"]
    await ctx.session.commit()
    deps = await _departments(ctx)
    assert (deps["WJ"].name, deps["WJ"].short_name) == ("县卫生健康局", "卫健")
