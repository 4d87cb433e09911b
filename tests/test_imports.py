"""Bulk imports of targets, inspectors and exclusions, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.cli import main
from core.changes import Ctx
from core.clock import SystemClock
from core.imports.exclusions import import_exclusions
from core.imports.inspectors import import_inspectors
from core.imports.targets import import_targets, parse_risk
from core.models import (
    AuditEvent,
    ChatPlatform,
    Department,
    Exclusion,
    Officer,
    PlatformAccount,
    Target,
)
from core.officers import bind_account
from core.readiness import check_setup
from core.synthetic import write_county_files
from core.uscc import make_uscc
from tests.workbooks import xlsx

U1, U2, U3 = (
    make_uscc("91330424MA28AQAQX"),
    make_uscc("92330424MA0000001"),
    make_uscc("93330424MA0000002"),
)
WECOM, DINGTALK = ChatPlatform.WECOM, ChatPlatform.DINGTALK
HEADER = ["统一社会信用代码", "名称", "类型", "行业", "区域", "地址", "状态", "风险等级", "标记"]


def trow(
    uscc: str, name: str, kind: str = "企业", status: str = "存续", risk: str = "", flags: str = ""
) -> list[str]:
    """A row under HEADER with the optional text columns left empty."""
    return [uscc, name, kind, "", "", "", status, risk, flags]


def write_csv(path: Path, rows: list[list[Any]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


async def targets(ctx: Ctx) -> dict[str, Target]:
    return {t.uscc: t for t in (await ctx.session.scalars(select(Target))).all()}


async def audit_count(ctx: Ctx) -> int:
    return int(await ctx.session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


@pytest.fixture
async def departments(ctx: Ctx) -> dict[str, Department]:
    depts = {
        "SJ": Department(
            code="SJ", name="县市场监督管理局", short_name="市场监管局", is_market_regulator=True
        ),
        "WJ": Department(code="WJ", name="县卫生健康局", short_name="卫健局"),
    }
    ctx.session.add_all(depts.values())
    await ctx.session.commit()
    return depts


# ---------------------------------------------------------------- targets


async def test_chinese_headers_and_vocabularies(ctx: Ctx, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "t.csv",
        [
            HEADER,
            [
                U1,
                "甲公司",
                "企业",
                "餐饮",
                "城关镇",
                "人民路 1 号",
                "在业",
                "C 较高风险",
                "经营异常名录、投诉举报",
            ],
            trow(
                U2,
                "乙个体户",
                "个体工商户",
                "停业",
                "低风险",
                "重点监管；严重违法失信名单|投诉举报",
            ),
            trow("330424000012345", "丙社", "农民专业合作社", "开业"),
        ],
    )
    report = await import_targets(ctx, path)
    assert report.ok, report.summary_zh()
    assert (report.total_rows, report.inserted, report.updated) == (3, 3, 0)
    rows = await targets(ctx)
    assert rows[U1].status == "存续" and rows[U1].risk_level == "C"
    assert rows[U1].flags == "经营异常名录|投诉举报" and rows[U1].address == "人民路 1 号"
    # stored in TARGET_FLAGS order whatever the order and separators in the cell
    assert rows[U2].flag_list() == ["严重违法失信名单", "投诉举报", "重点监管"]
    assert (
        rows[U2].kind == "个体工商户" and rows[U2].status == "停业" and rows[U2].risk_level == "A"
    )
    legacy = rows["330424000012345"]
    assert legacy.is_legacy_id and legacy.status == "存续" and legacy.risk_level == ""
    assert not rows[U1].is_legacy_id
    events = (await ctx.session.scalars(select(AuditEvent))).all()
    assert [(e.action, e.subject) for e in events] == [("import.targets", "import:targets")]
    assert events[0].data["inserted"] == 3 and events[0].data["file"] == "t.csv"
    assert len(events[0].data["sha256"]) == 64


async def test_english_headers_with_utf8_bom_and_title_row(ctx: Ctx, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "en.csv",
        [
            ["XX 县检查对象名录库（2026 年）"],
            ["uscc", "Name", "kind", "status", "risk_level", "flags", "备注"],
            [U1.lower(), "甲公司", "企业", "存续", "d", "重点监管", "随便写"],
        ],
        encoding="utf-8-sig",
    )
    report = await import_targets(ctx, path)
    assert report.ok, report.summary_zh()
    assert report.ignored_columns == ["备注"]
    row = (await targets(ctx))[U1]
    assert (row.name, row.risk_level, row.flags) == ("甲公司", "D", "重点监管")


async def test_gb18030_csv(ctx: Ctx, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "gbk.csv",
        [
            ["统一社会信用代码", "企业名称", "住所"],
            [U1, "鑫淼犇餐饮管理有限公司", "城关镇㐀路"],  # 㐀 is outside GBK, inside GB18030
        ],
        encoding="gb18030",
    )
    report = await import_targets(ctx, path)
    assert report.ok, report.summary_zh()
    row = (await targets(ctx))[U1]
    assert row.name == "鑫淼犇餐饮管理有限公司" and row.address == "城关镇㐀路"


async def test_excel_unicode_text_export_utf16_tabs(ctx: Ctx, tmp_path: Path) -> None:
    path = tmp_path / "unicode.txt"
    path.write_bytes(
        "统一社会信用代码\t名称\t标记\r\n".encode("utf-16")
        + f"{U1}\t甲公司, 乙分店\t投诉举报,重点监管\r\n".encode("utf-16-le")
    )
    report = await import_targets(ctx, path)
    assert report.ok, report.summary_zh()
    row = (await targets(ctx))[U1]
    assert (row.name, row.flags) == ("甲公司, 乙分店", "投诉举报|重点监管")


async def test_xlsx_with_excel_mangled_number(ctx: Ctx, tmp_path: Path) -> None:
    path = xlsx(
        tmp_path / "t.xlsx",
        (
            "数据",
            [
                ["统一社会信用代码", "名称", "状态"],
                [U1, "甲公司", "存续"],
                [
                    9.1330424e17,
                    "乙公司",
                    "存续",
                ],  # what Excel keeps of a code typed into a number cell
                [U2, "丙公司", "注销"],
            ],
        ),
    )
    report = await import_targets(ctx, path)
    assert not report.ok
    assert [(e.line, e.column) for e in report.rejected] == [(3, "统一社会信用代码")]
    assert report.rejected[0].reason.startswith("疑似被 Excel 转成数字（9.1330424E+17）")
    assert await targets(ctx) == {}

    report = await import_targets(ctx, path, skip_invalid=True)
    assert report.ok and report.inserted == 2
    assert (await targets(ctx))[U2].status == "注销"


async def test_missing_required_column_is_one_clear_error(ctx: Ctx, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [["统一社会信用代码", "地址"], [U1, "某路"]])
    report = await import_targets(ctx, path)
    assert not report.ok and report.rejected == []
    assert report.file_error.startswith("缺少必填列“名称”")
    assert "缺少必填列“名称”" in report.summary_zh()
    assert await targets(ctx) == {} and await audit_count(ctx) == 0


async def test_all_or_nothing_lists_every_bad_row_and_writes_nothing(
    ctx: Ctx, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "t.csv",
        [
            HEADER,
            trow(U1, "甲公司"),
            trow("91350100M000100Y4Z", "乙公司", kind="公司制", risk="E", flags="黑名单"),
            trow(U2, "", status="歇业中", risk="A 高风险"),
            trow(U1, "甲公司（重复）"),
        ],
    )
    report = await import_targets(ctx, path)
    assert not report.ok
    got = {(e.line, e.column) for e in report.rejected}
    assert got == {
        (3, "统一社会信用代码"),
        (3, "类型"),
        (3, "风险等级"),
        (3, "标记"),
        (4, "名称"),
        (4, "状态"),
        (4, "风险等级"),
        (5, "统一社会信用代码"),
    }
    dup = next(e for e in report.rejected if e.line == 5)
    assert "与第 2 行重复" in dup.reason and "第 2、5 行" in dup.reason
    assert "未知标记“黑名单”" in {e.reason.split("，")[0] for e in report.rejected}
    assert "本次未写入任何数据" in report.summary_zh()
    assert report.rejects_path is None
    assert await targets(ctx) == {} and await audit_count(ctx) == 0


async def test_skip_invalid_imports_good_rows_and_writes_rejects(ctx: Ctx, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "t.csv",
        [
            HEADER,
            trow(U1, "甲公司"),
            trow("9.13304E+17", "乙公司"),
            trow(U2, "丙公司", kind="外星企业"),
            trow(U3, "丁社", kind="农民专业合作社"),
        ],
        encoding="gb18030",
    )
    report = await import_targets(ctx, path, skip_invalid=True)
    assert report.ok and (report.inserted, report.rejected_rows) == (2, 2)
    assert set(await targets(ctx)) == {U1, U3}
    assert report.rejects_path == tmp_path / "t_未导入行.csv"
    with report.rejects_path.open(encoding="utf-8-sig", newline="") as fh:
        rejects = list(csv.reader(fh))
    assert rejects[0] == [*HEADER, "错误原因"]
    assert [r[:2] for r in rejects[1:]] == [["9.13304E+17", "乙公司"], [U2, "丙公司"]]
    assert "疑似被 Excel 转成数字" in rejects[1][-1] and "未知类型“外星企业”" in rejects[2][-1]
    assert "跳过有误的 2 行" in report.summary_zh()


async def test_reimport_updates_only_the_columns_in_the_file(ctx: Ctx, tmp_path: Path) -> None:
    first = write_csv(
        tmp_path / "a.csv",
        [
            HEADER,
            [U1, "甲公司", "企业", "餐饮", "城关镇", "", "存续", "B", "投诉举报"],
            [U2, "乙公司", "企业", "零售", "城关镇", "", "存续", "C", ""],
        ],
    )
    assert (await import_targets(ctx, first)).ok
    await ctx.session.commit()
    loaded = await targets(ctx)  # ORM objects in the identity map must not stay stale
    second = write_csv(
        tmp_path / "b.csv",
        [
            ["统一社会信用代码", "名称", "状态"],
            [U1, "甲公司（更名）", "吊销，未注销"],
            [U3, "丙公司", "存续"],
        ],
    )
    report = await import_targets(ctx, second)
    assert (report.inserted, report.updated) == (1, 1), report.summary_zh()
    await ctx.session.commit()
    rows = await targets(ctx)
    assert len(rows) == 3 and rows[U1] is loaded[U1]
    assert (rows[U1].name, rows[U1].status) == ("甲公司（更名）", "吊销")
    # columns the second file does not have keep their stored values
    assert (rows[U1].industry, rows[U1].risk_level, rows[U1].flags) == ("餐饮", "B", "投诉举报")
    assert rows[U2].name == "乙公司"
    assert await audit_count(ctx) == 2


async def test_blank_status_keeps_stored_value_but_blank_risk_clears(
    ctx: Ctx, tmp_path: Path
) -> None:
    first = write_csv(
        tmp_path / "a.csv", [HEADER, trow(U1, "甲公司", "个体工商户", "注销", "D", "投诉举报")]
    )
    assert (await import_targets(ctx, first)).ok
    second = write_csv(
        tmp_path / "b.csv",
        [HEADER, trow(U1, "甲公司", kind="", status=""), trow(U2, "乙公司", kind="", status="")],
    )
    report = await import_targets(ctx, second)
    assert (report.inserted, report.updated) == (1, 1)
    rows = await targets(ctx)
    # a blank 状态 must not bring a deregistered target back into the drawable pool
    assert (rows[U1].kind, rows[U1].status, rows[U1].risk_level, rows[U1].flags) == (
        "个体工商户",
        "注销",
        "",
        "",
    )
    assert (rows[U2].kind, rows[U2].status) == ("企业", "存续")


async def test_registration_number_column_is_used_when_no_uscc(ctx: Ctx, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "t.csv",
        [
            ["名称", "统一社会信用代码", "注册号"],
            ["甲公司", U1, "330424000011111"],
            ["老个体户", "", "330424000012345"],
        ],
    )
    report = await import_targets(ctx, path)
    assert report.ok, report.summary_zh()
    rows = await targets(ctx)
    assert set(rows) == {U1, "330424000012345"} and rows["330424000012345"].is_legacy_id


async def test_progress_reports_rows_written(ctx: Ctx, tmp_path: Path) -> None:
    rows = [[make_uscc(f"91330424{i:09d}"), f"企业{i}"] for i in range(4500)]
    path = write_csv(tmp_path / "t.csv", [["统一社会信用代码", "名称"], *rows])
    calls: list[tuple[int, int | None]] = []
    report = await import_targets(ctx, path, progress=lambda d, t: calls.append((d, t)))
    assert report.inserted == 4500
    assert calls == [(2000, 4500), (4000, 4500), (4500, 4500)]


async def test_unsupported_and_empty_files(ctx: Ctx, tmp_path: Path) -> None:
    xls = tmp_path / "old.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0")
    assert "另存为 .xlsx" in (await import_targets(ctx, xls)).file_error
    empty = tmp_path / "empty.csv"
    empty.write_text("\n\n", encoding="utf-8")
    assert (await import_targets(ctx, empty)).file_error == "文件是空的，没有表头和数据"


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("A", "A"),
        ("b", "B"),
        ("C类", "C"),
        ("D（高风险）", "D"),
        ("一般风险", "B"),
        ("", ""),
        ("未分类", ""),
    ],
)
def test_risk_levels(text: str, level: str) -> None:
    assert parse_risk(text) == level


@pytest.mark.parametrize("text", ["E", "A 高风险", "中风险"])
def test_bad_risk_levels(text: str) -> None:
    assert parse_risk(text) is None


# ---------------------------------------------------------------- inspectors


INSPECTOR_HEADER = [
    "姓名",
    "部门",
    "执法证号",
    "人员编号",
    "专长",
    "区域",
    "手机",
    "角色",
    "企业微信账号",
    "钉钉账号",
]


async def officers(ctx: Ctx) -> dict[str, Officer]:
    return {o.code: o for o in (await ctx.session.scalars(select(Officer))).unique()}


async def test_inspectors_import_and_reimport(
    ctx: Ctx, tmp_path: Path, departments: dict[str, Department]
) -> None:
    path = xlsx(
        tmp_path / "people.xlsx",
        (
            "数据",
            [
                INSPECTOR_HEADER,
                [
                    "张三",
                    "县市场监督管理局",
                    "33042400123",
                    "",
                    "食品、特种设备",
                    "城关镇",
                    13800138000,
                    "联络员、执法检查人员",
                    "zhangsan",
                    "",
                ],
                ["李四", "卫健局", "WJ-7", "WJ0007", "", "", "", "", "", "lisi"],
                ["王五", "wj", "", "WJ0008", "", "", "", "联络员，管理员", "", ""],
            ],
        ),
    )
    report = await import_inspectors(ctx, path)
    assert report.ok, report.summary_zh()
    assert report.inserted == 3
    await ctx.session.commit()
    people = await officers(ctx)
    zhang = people["SJ-33042400123"]  # derived from department code + certificate number
    assert zhang.department_id == departments["SJ"].id
    assert zhang.roles == ["liaison", "inspector"] and zhang.expertise == ["食品", "特种设备"]
    assert (zhang.mobile, zhang.account(WECOM), zhang.account(DINGTALK)) == (
        "13800138000",
        "zhangsan",
        None,
    )
    assert people["WJ0007"].roles == ["inspector"] and people["WJ0007"].account(DINGTALK) == "lisi"
    assert people["WJ0008"].roles == ["liaison", "admin"]  # no certificate: not an inspector

    again = write_csv(
        tmp_path / "people.csv",
        [
            ["姓名", "部门", "人员编号", "手机"],
            ["王五", "县卫生健康局", "WJ0008", "13900000000"],
        ],
    )
    report = await import_inspectors(ctx, again)
    assert (report.inserted, report.updated) == (0, 1)
    await ctx.session.commit()
    wang = (await officers(ctx))["WJ0008"]
    assert wang.mobile == "13900000000" and wang.roles == ["liaison", "admin"]  # never demoted


async def test_reimport_with_blank_account_cells_keeps_accounts_bound_with_the_bind_command(
    ctx: Ctx, tmp_path: Path, departments: dict[str, Department]
) -> None:
    row = ["张三", "县市场监督管理局", "ZF-1", "SJ0001", "", "", "", "", "", ""]
    assert (await import_inspectors(ctx, write_csv(tmp_path / "a.csv", [INSPECTOR_HEADER, row]))).ok
    await ctx.session.commit()
    await bind_account(ctx, "SJ0001", "企业微信", "zhangsan")
    await bind_account(ctx, "SJ0001", "钉钉", "ding-zhang")
    await ctx.session.commit()

    again = [
        INSPECTOR_HEADER,
        ["张三", "县市场监督管理局", "ZF-1", "SJ0001", "", "", "13800138000", "", "", "ding-new"],
    ]
    report = await import_inspectors(ctx, write_csv(tmp_path / "b.csv", again))
    assert report.ok and report.updated == 1
    await ctx.session.commit()
    zhang = (await officers(ctx))["SJ0001"]
    await ctx.session.refresh(zhang)
    assert (zhang.mobile, zhang.account(WECOM), zhang.account(DINGTALK)) == (
        "13800138000",
        "zhangsan",
        "ding-new",
    )


async def test_inspectors_row_errors(
    ctx: Ctx, tmp_path: Path, departments: dict[str, Department]
) -> None:
    ctx.session.add(
        Officer(
            code="SJ0001",
            name="老员工",
            department_id=departments["SJ"].id,
            roles=["inspector"],
            accounts=[PlatformAccount(platform=WECOM, account="taken")],
        )
    )
    await ctx.session.commit()
    path = write_csv(
        tmp_path / "people.csv",
        [
            INSPECTOR_HEADER,
            ["赵六", "县教育局", "1", "", "", "", "", "", "", ""],
            ["钱七", "市场监管局", "", "", "", "", "", "", "", ""],
            ["孙八", "市场监管局", "2", "SJ0002", "", "", "", "局长", "taken", ""],
            ["周九", "市场监管局", "3", "SJ0003", "", "", "", "", "zhou", ""],
            ["吴十", "市场监管局", "4", "SJ0004", "", "", "", "", "zhou", ""],
            ["郑一", "市场监管局", "5", "SJ0003", "", "", "", "", "", ""],
        ],
    )
    report = await import_inspectors(ctx, path)
    assert not report.ok
    reasons = {(e.line, e.column): e.reason for e in report.rejected}
    assert reasons[(2, "部门")].startswith("找不到部门“县教育局”")
    assert reasons[(3, "人员编号")] == "人员编号为空，且没有执法证号可用来生成编号"
    assert reasons[(3, "执法证号")].startswith("执法检查人员必须填写执法证号")  # 001 第十条
    assert reasons[(4, "角色")].startswith("未知角色“局长”")
    assert reasons[(4, "企业微信账号")] == "企业微信账号“taken”已属于人员 SJ0001"
    assert "与第 5 行重复" in reasons[(6, "企业微信账号")]
    assert "与第 5 行重复" in reasons[(7, "人员编号")]
    assert set(reasons) == {
        (2, "部门"),
        (3, "人员编号"),
        (3, "执法证号"),
        (4, "角色"),
        (4, "企业微信账号"),
        (6, "企业微信账号"),
        (7, "人员编号"),
    }
    assert set(await officers(ctx)) == {"SJ0001"}

    report = await import_inspectors(
        ctx, path, skip_invalid=True, rejects_path=tmp_path / "out" / "bad.csv"
    )
    assert report.ok and report.inserted == 1  # only 周九
    assert set(await officers(ctx)) == {"SJ0001", "SJ0003"}
    assert report.rejects_path is not None and report.rejects_path.exists()


async def test_an_enforcement_certificate_belongs_to_one_active_officer(
    ctx: Ctx, tmp_path: Path, departments: dict[str, Department]
) -> None:
    """李红 with SJ002's 执法证号 under a blank 人员编号, and again in 卫健 as WJ003, was
    "新增 2 条": three active officers shared one certificate. Each such row is an error naming
    the holder, the number compared as people write it (spaces, full-width, lower case)."""
    ctx.session.add(
        Officer(
            code="SJ002",
            name="李红",
            department_id=departments["SJ"].id,
            cert_no="ZF33040102",
            roles=["inspector"],
        )
    )
    await ctx.session.commit()
    rows = [
        INSPECTOR_HEADER,
        ["李红", "SJ", "ZF33040102", "", "", "", "", "执法检查人员", "", ""],
        ["李红", "WJ", "ｚｆ 3304 0102", "WJ003", "", "", "", "执法检查人员", "", ""],
        ["吴刚", "WJ", "ZF 3304 0301", "WJ004", "", "", "", "执法检查人员 联络员", "", ""],
        ["郑磊", "WJ", "zf33040301", "WJ005", "", "", "", "执法检查人员/联络员", "", ""],
    ]
    report = await import_inspectors(ctx, write_csv(tmp_path / "p.csv", rows))
    reasons = {(e.line, e.column): e.reason for e in report.rejected}
    assert "已属于在岗人员 SJ002（李红）" in reasons[(2, "执法证号")]
    assert "已属于在岗人员 SJ002（李红）" in reasons[(3, "执法证号")]
    assert "与第 4 行（人员 WJ004 吴刚）重复" in reasons[(5, "执法证号")]
    assert set(reasons) == {(2, "执法证号"), (3, "执法证号"), (5, "执法证号")}
    report = await import_inspectors(ctx, write_csv(tmp_path / "p.csv", rows), skip_invalid=True)
    assert report.inserted == 1
    wu = (await officers(ctx))["WJ004"]
    assert wu.cert_no == "ZF33040301" and wu.roles == ["liaison", "inspector"]


async def test_setup_check_names_officers_sharing_a_certificate(
    ctx: Ctx, tmp_path: Path, departments: dict[str, Department]
) -> None:
    """Officers imported before the check above may share an 执法证号: setup check said nothing;
    a row giving that number names every holder, and the errors come in line order."""
    for code, cert in (("SJ002", "ZF33040102"), ("WJ003", "zf 3304 0102")):
        dep = departments[code[:2]].id
        ctx.session.add(Officer(code=code, name="李红", department_id=dep, cert_no=cert))
    await ctx.session.commit()
    problems = (await check_setup(ctx)).problems
    assert any(
        "执法证号 ZF33040102 同时属于在岗人员 SJ002（李红）、WJ003（李红）" in p for p in problems
    ), problems
    rows = [
        INSPECTOR_HEADER,
        ["李红", "SJ", "ZF33040102", "SJ-9", "", "", "", "", "", ""],
        ["", "SJ", "ZF1", "SJ-10", "", "", "", "", "", ""],
    ]
    report = await import_inspectors(ctx, write_csv(tmp_path / "p.csv", rows))
    assert [e.line for e in report.rejected] == [2, 3]
    assert "已属于在岗人员 SJ002（李红）、WJ003（李红）" in report.rejected[0].reason


async def test_setup_check_names_the_liaisons_who_need_binding(
    ctx: Ctx, departments: dict[str, Department]
) -> None:
    """“联络员未绑定企业微信或钉钉账号” did not say whom the admin's 绑定 needs."""
    dep = departments["SJ"].id
    ctx.session.add(Officer(code="SJ001", name="王建国", department_id=dep, roles=["liaison"]))
    await ctx.session.commit()
    problems = "\n".join((await check_setup(ctx)).problems)
    assert "联络员 SJ001（王建国） 未绑定企业微信或钉钉账号" in problems
    assert "绑定 SJ001 企业微信 账号" in problems


# ---------------------------------------------------------------- exclusions


async def test_exclusions_import_and_update(
    ctx: Ctx, tmp_path: Path, departments: dict[str, Department]
) -> None:
    path = write_csv(
        tmp_path / "ex.csv",
        [
            ["统一社会信用代码", "年度", "部门", "来源", "原因"],
            [U1, "2026", "", "市级市场监管局", "市局已抽查"],
            [U2, "2026年", "卫健局", "市卫健委", "已检查"],
            [U1, "2026", "", "市级市场监管局", "重复"],
            [U3, "26", "", "", ""],
            ["9.13304E+17", "2026", "无此部门", "", ""],
        ],
    )
    report = await import_exclusions(ctx, path)
    assert not report.ok
    got = {(e.line, e.column) for e in report.rejected}
    assert got == {(4, "统一社会信用代码"), (5, "年度"), (6, "统一社会信用代码"), (6, "部门")}
    assert await ctx.session.scalar(select(func.count()).select_from(Exclusion)) == 0

    report = await import_exclusions(ctx, path, skip_invalid=True)
    assert report.ok and report.inserted == 2
    await ctx.session.commit()
    fixed = write_csv(
        tmp_path / "ex2.csv",
        [
            ["uscc", "year", "source", "reason"],
            [U1, 2026, "市级市场监管局", "市局 3 月已抽查"],
            [U3, 2026, "", ""],
        ],
    )
    report = await import_exclusions(ctx, fixed)
    assert (report.inserted, report.updated) == (1, 1), report.summary_zh()
    await ctx.session.commit()
    rows = {
        (e.uscc, e.department_id): e for e in (await ctx.session.scalars(select(Exclusion))).all()
    }
    assert len(rows) == 3
    assert rows[(U1, None)].reason == "市局 3 月已抽查"
    assert rows[(U2, departments["WJ"].id)].source == "市卫健委"


@pytest.mark.usefixtures("engine")  # an empty database on PostgreSQL too
def test_reimporting_an_unchanged_file_changes_nothing_and_says_so(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An office re-imports its unchanged spreadsheets: every importer reported each row as
    updated (更新 20000 条). Only rows whose stored values change count as 更新; the rest are
    未变 — for every kind, through the CLI."""
    year = SystemClock().today().year
    files = write_county_files(tmp_path, seed=1, targets=50, year=year)
    people, library = (read_csv(files[k]) for k in ("inspectors", "targets"))
    files["conflicts"] = write_csv(
        tmp_path / "利害关系.csv",
        [
            ["人员编号", "统一社会信用代码", "利害关系"],
            [people[3][3], library[1][0], "近亲属任股东"],
        ],
    )
    files["plan"] = write_csv(
        tmp_path / "年度抽查计划.csv",
        [
            ["计划编号", "任务名称", "牵头部门", "参与部门", "事项", "抽查比例或数量", "计划月份"],
            [f"JH-{year}-01", "餐饮联合抽查", "SJ", "WJ", "SJ-01", "5%", "12"],
        ],
    )
    for kind, path in files.items():
        argv = ["import", kind, str(path), "--db", db_url]
        assert main(argv) == 0, capsys.readouterr()
        rows = len(read_csv(path)) - 1
        assert f"新增 {rows} 条" in capsys.readouterr().out
        assert main(argv) == 0
        assert f"新增 0 条，更新 0 条，未变 {rows} 条" in capsys.readouterr().out, kind

    library[1][1] += "（更名）"
    write_csv(files["targets"], library)
    assert main(["import", "targets", str(files["targets"]), "--db", db_url]) == 0
    assert "新增 0 条，更新 1 条，未变 49 条" in capsys.readouterr().out
