"""A county goes live from an empty database, using only its own files (the XLSX templates
filled in), the CLI's readiness check and chat: no synthetic data (core/synthetic.py is never
called). Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from bot.cli import main as cli
from core.bindings import RobotAddress, bind_chat
from core.changes import Ctx
from core.imports import annual_plan
from core.imports.conflicts import import_conflicts
from core.imports.departments import import_departments
from core.imports.exclusions import import_exclusions
from core.imports.inspectors import import_inspectors
from core.imports.items import import_items
from core.imports.targets import import_targets
from core.models import Invitation, JointTask, OutboxMessage, PlanEntry
from core.readiness import check_setup
from core.sheets import TEMPLATE_ORDER, write_template
from core.uscc import make_uscc
from tests.dispatch_support import bodies, make_dispatcher, send, text_event

DEPARTMENTS = [
    ["SJ", "县市场监督管理局", "市场监管", "是", "市市场监督管理局"],
    ["WJ", "县卫生健康局", "卫健", "否", "市卫生健康委员会"],
    ["GA", "县公安局", "公安", "否", ""],
]
ITEMS = [
    ["SJ", "SJ-01", "食品经营许可情况检查", "重点", "餐饮服务", "实地检查", "《食品安全法》", ""],
    ["SJ", "SJ-02", "计量器具使用情况检查", "一般", "", "实地检查", "《计量法》", "5%"],
    ["WJ", "WJ-01", "公共场所卫生检查", "一般", "住宿", "实地检查", "", ""],
    ["GA", "GA-01", "旅馆业治安管理检查", "重点", "住宿", "实地检查", "", ""],
]
INDUSTRIES = ["餐饮服务", "住宿", "食品销售"]


def _people() -> list[list[str]]:
    rows = []
    for dep in ("SJ", "WJ", "GA"):
        low = dep.lower()
        rows.append(
            [f"{dep}联络员", dep, "", f"{dep}L", "", "", "", "联络员", f"wx-{low}-l", "", "在岗"]
        )
        rows.append(
            [f"{dep}领导", dep, "", f"{dep}D", "", "", "", "分管领导", f"wx-{low}-d", "", "在岗"]
        )
        rows += [
            [
                f"{dep}检查{i}",
                dep,
                f"ZF-{dep}-{i}",
                f"{dep}{i:02d}",
                "食品",
                "城关镇",
                "",
                "",
                "",
                "",
                "在岗",
            ]
            for i in range(1, 4)
        ]
    return rows


def _targets() -> list[list[str]]:
    return [
        [
            make_uscc(f"91330424MA{n:07d}"),
            f"某县样本{n}号商户有限公司",
            "企业",
            INDUSTRIES[n % 3],
            "城关镇",
            f"城关镇人民路{n}号",
            "存续",
            "ABCD"[n % 4],
            "",
        ]
        for n in range(1, 41)
    ]


def _fill(kind: str, path: Path, rows: list[list[Any]]) -> Path:
    """The county's clerk opens the template, types over the example rows and saves."""
    write_template(kind, path, year=2026)
    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[0]
    ws.delete_rows(2, ws.max_row)
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


@pytest.fixture(autouse=True)
def no_synthetic(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real path only: any call into the synthetic county fails the test."""
    import core.synthetic

    def refuse(*_a: Any, **_k: Any) -> None:
        raise AssertionError("a fresh county must not use core/synthetic.py")

    monkeypatch.setattr(core.synthetic, "generate_county", refuse)


async def test_every_template_reads_back_unchanged_in_order(ctx: Ctx, tmp_path: Path) -> None:
    """Every template is read by its importer (conflicts' too: there was no template for
    `import conflicts`): the real departments and item of the examples are imported, the
    fictitious example rows are refused, naming the row to delete."""
    importers = {
        "departments": import_departments,
        "items": import_items,
        "inspectors": import_inspectors,
        "targets": import_targets,
        "exclusions": import_exclusions,
        "conflicts": import_conflicts,
    }
    for kind in TEMPLATE_ORDER:
        path = write_template(kind, tmp_path / f"{kind}.xlsx", year=2026)
        if kind == "plan":
            report = await annual_plan.import_plan(ctx, path, year=2026)
        else:
            report = await importers[kind](ctx, path)
        if kind in ("departments", "items"):
            assert report.ok and report.inserted >= 1, report.summary_zh()
        else:
            assert [e.line for e in report.rejected] == [2], report.summary_zh()
            assert "示例行" in report.rejected[0].reason
        assert report.ignored_columns == []
        await ctx.session.commit()
    wb = openpyxl.load_workbook(tmp_path / "items.xlsx")
    assert wb.sheetnames == ["数据", "填写说明"]
    assert [v.formula1 for v in wb["数据"].data_validations.dataValidation] == ['"重点,一般"']


async def test_a_fresh_county_reaches_its_first_invitations(
    ctx: Ctx,
    sessionmaker: Any,
    clock: Any,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """004 第七条 (a published plan), 003 三(七) (tasks follow the plan), 001 第十条 (the two
    libraries), 000 §七 (participants are invited and answer in writing)."""
    files = {
        "departments": _fill("departments", tmp_path / "部门.xlsx", DEPARTMENTS),
        "items": _fill("items", tmp_path / "事项.xlsx", ITEMS),
        "inspectors": _fill("inspectors", tmp_path / "人员.xlsx", _people()),
        "targets": _fill("targets", tmp_path / "对象.xlsx", _targets()),
        "exclusions": _fill(
            "exclusions",
            tmp_path / "市级已检查.xlsx",
            [[_targets()[0][0], "2026", "SJ", "市市场监督管理局", "市级双随机抽查已检查"]],
        ),
    }
    for kind, path in files.items():  # the CLI runs its own event loop: give it a thread
        assert await asyncio.to_thread(cli, ["import", kind, str(path), "--db", db_url]) == 0, (
            capsys.readouterr()
        )

    assert await asyncio.to_thread(cli, ["setup", "check", "--db", db_url]) == 1
    out = capsys.readouterr().out
    assert "县公安局（GA）：没有绑定部门群机器人" in out

    for dep in ("SJ", "WJ", "GA"):
        await bind_chat(
            ctx,
            department_code=dep,
            platform="wecom",
            webhook_url=f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={dep}",
            robot=RobotAddress("https://qyapi.weixin.qq.com/cgi-bin/webhook/send", "key"),
        )
    await ctx.session.commit()
    readiness = await check_setup(ctx)
    assert readiness.ok, readiness.text_zh()
    assert readiness.departments == 3 and readiness.targets == 40

    plan_file = _fill(
        "plan",
        tmp_path / "计划.xlsx",
        [
            [
                "JH-2026-01",
                "2026年度餐饮住宿行业部门联合双随机抽查",
                "市场监管",
                "卫健、公安",
                "SJ-01、WJ-01",
                "餐饮服务、住宿",
                "5%",
                "3",
            ]
        ],
    )
    assert (
        await asyncio.to_thread(
            cli, ["import", "plan", str(plan_file), "--year", "2026", "--db", db_url]
        )
        == 0
    ), capsys.readouterr()

    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event("wx-sj-l", "发起 JH-2026-01", platform="wecom"))
    assert "已按年度抽查计划 JH-2026-01 创建" in bodies(rows)
    async with sessionmaker() as s:
        task = await s.scalar(select(JointTask))
        assert task is not None and task.state == "consulting"
        invited = {i.department.code for i in await s.scalars(select(Invitation))}
        assert invited == {"WJ", "GA"}
        entry = await s.scalar(select(PlanEntry))
        assert entry is not None and entry.task_id == task.id
        cards = [
            m for m in await s.scalars(select(OutboxMessage)) if m.message.get("kind") == "card"
        ]
        assert len(cards) == 4  # the liaison and the leader of each invited department
