"""The leaders' daily summary with a picture (003 附件1 一(五), 000 §十三): per department how its
cases stand, the tasks by state; a PNG of a known size; text alone when no CJK font exists."""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import struct
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import main
from bot.cli.operations import _write_summaries
from core import charts
from core.changes import Ctx
from core.clock import SystemClock
from core.errors import ValidationFailed
from core.models import Case, GroupMember, Target
from core.states import CaseState
from core.summary import ChartData, ScopeSummary, chart_data, leader_named, scope_summary
from tests.case_factories import at_day, build_world


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


async def test_chart_counts_each_departments_cases_and_draws_a_png(
    ctx: Ctx, session: AsyncSession
) -> None:
    w = await build_world(
        session, window_start=dt.date(2026, 3, 2), window_end=dt.date(2026, 3, 31)
    )
    at_day(ctx, dt.date(2026, 5, 20))  # the window's 20 working days ran out on 2026-04-29
    data = await chart_data(ctx, ctx.clock.today())
    assert data.departments == {
        "县卫生健康委员会": {"已逾期": 1},
        "县市场监督管理局": {"已逾期": 1},
    }
    assert data.tasks_by_state == {"检查中": 1}
    png = charts.render_chart(data, dpi=50)
    # 6.4 in wide (800 px at the default 125 dpi); tall: 2.05 in of headings, 0.5 a
    # department, 0.75 before the tasks, 0.42 a task state, 0.15 below
    size = (320, int((2.05 + 0.5 * 2 + 0.75 + 0.42 + 0.15) * 50))
    assert png is not None and png_size(png) == size

    w.case.state = CaseState.SUBMITTED
    await session.commit()
    scoped = await scope_summary(ctx, ctx.clock.today(), w.other.id)
    assert scoped.chart.scope == "县卫生健康委员会"
    assert scoped.chart.departments["县卫生健康委员会"] == {"已提交": 1}


def test_the_picture_dates_its_day_in_words() -> None:
    """The chart's subtitle read 2026-05-20 while its caption and the text read 2026年5月20日."""
    font = charts.cjk_font()
    if font is None:
        pytest.skip("no CJK font: the summary goes as text alone")
    frame = charts._Frame(1, 1, font=font, dpi=20)
    frame.draw(ChartData(dt.date(2026, 5, 20), "县卫生健康委员会"))
    assert frame.subtitle.get_text() == "2026年5月20日 · 县卫生健康委员会"


async def test_the_most_overdue_department_comes_first(ctx: Ctx, session: AsyncSession) -> None:
    """The chart's rows and the text's list put what needs the leader first (003 附件1 一(五)):
    by overdue cases, then by name."""
    w = await build_world(session)
    target = Target(uscc="91330424MA28AQAR0X", name="嘉善县某某餐饮店", address="某某路 2 号")
    session.add(target)
    await session.flush()
    second = Case(code="LJ-2026-001-002", task_id=w.task.id, target_id=target.id)
    session.add(second)
    await session.flush()
    session.add(GroupMember(case_id=second.id, officer_id=w.a1.id, department_id=w.lead.id))
    await session.commit()
    at_day(ctx, dt.date(2026, 5, 20))
    scoped = await scope_summary(ctx, ctx.clock.today())
    assert list(scoped.chart.departments) == ["县市场监督管理局", "县卫生健康委员会"]
    assert scoped.chart.overdue_by_department() == [
        ("县市场监督管理局", 2),
        ("县卫生健康委员会", 1),
    ]
    body = scoped.message().body
    assert body.index("- 县市场监督管理局：2 件") < body.index("- 县卫生健康委员会：1 件")


async def test_overdue_departments_are_named_in_the_text(ctx: Ctx, session: AsyncSession) -> None:
    await build_world(session)
    at_day(ctx, dt.date(2026, 5, 20))
    body = (await scope_summary(ctx, ctx.clock.today())).message().body
    assert "逾期未录入（按部门）" in body and "- 县卫生健康委员会：1 件" in body


def test_without_a_cjk_font_the_chart_is_skipped_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(charts, "CJK_FONTS", ("No Such Font",))
    with caplog.at_level(logging.WARNING):
        assert charts.render_chart(ChartData(dt.date(2026, 3, 2), "全部部门")) is None
    assert "fonts-wqy-microhei" in caplog.text


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    assert main(["demo", "--targets", "2000", "--seed", "3", "--db", str(db)]) == 0
    return db


def test_cli_writes_one_md_and_one_png_per_leader(
    demo_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    today = SystemClock().today().isoformat()
    assert main(["summary", "--db", str(demo_db), "--out", str(tmp_path)]) == 0
    mds = sorted(p.name for p in tmp_path.glob("*.md"))
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    # a chart for each scope with a task in progress, none for the others (the daily tick's rule)
    assert len(pngs) > 2 and {p[:-4] for p in pngs} < {m[:-3] for m in mds}
    assert f"全部部门-{today}.md" in mds and f"全部部门-{today}.png" in pngs
    printed = capsys.readouterr().out
    assert printed.count("（没有进行中的任务，不生成图表）") == len(mds) - len(pngs)
    assert all(png_size((tmp_path / p).read_bytes())[0] == 800 for p in pngs)
    capsys.readouterr()
    assert main(["summary", "--db", str(demo_db), "--date", today]) == 0
    shown = capsys.readouterr().out
    assert "双随机联合抽查日报" in shown and "**" not in shown  # rendered, not raw markdown
    # as written: no line padded to the terminal's width, no phrase wrapped onto the next line
    lines = shown.splitlines()
    assert not [line for line in lines if line != line.rstrip()]
    assert all("未答复" in line for line in lines if line.startswith("邀请："))


def test_without_a_cjk_font_the_cli_says_so_in_chinese(
    demo_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The operator read the charts' English log line (no CJK font installed …) on the
    terminal, where the CLI has no logging set up: it says it in Chinese, once."""
    monkeypatch.setattr(charts, "CJK_FONTS", ("No Such Font",))
    with caplog.at_level(logging.WARNING):
        assert main(["summary", "--db", str(demo_db), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("未安装中文字体（如 Debian 的 fonts-wqy-microhei），摘要未附图表") == 1
    assert "no CJK font" not in caplog.text and not list(tmp_path.glob("*.png"))


def test_cli_names_an_unknown_leader_and_a_bad_date(
    demo_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["summary", "--db", str(demo_db), "--leader", "NOPE"]) == 2
    err = capsys.readouterr().err
    # says who may be named: the leaders in post, with code, name and department
    assert (
        "没有在岗的领导“NOPE”" in err and "在岗的领导：SJ002 " in err and "县市场监督管理局" in err
    )
    with pytest.raises(SystemExit) as exit_:
        main(["summary", "--db", str(demo_db), "--date", "2026-13-01"])
    assert exit_.value.code == 2 and "应为 YYYY-MM-DD" in capsys.readouterr().err


@pytest.mark.parametrize("day", ["1999-01-01", "2026-03-20", "2099-01-01"])
def test_cli_refuses_a_summary_of_another_day(
    demo_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], day: str
) -> None:
    """The summary counts the cases as they stand now: `--date 1999-01-01` printed today's
    figures under that date. No day's states can be rebuilt, so another day is refused."""
    assert main(["summary", "--db", str(demo_db), "--date", day, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--date {day}" in err and "只能生成今天" in err
    assert not list(tmp_path.iterdir())


def test_cli_finds_a_leader_by_code_in_any_case_or_by_name(
    demo_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--leader sj002` and `--leader <name>` were refused: only the code as stored worked."""
    assert main(["summary", "--db", str(demo_db), "--leader", "SJ002"]) == 0
    expected = capsys.readouterr().out
    assert "双随机联合抽查日报" in expected
    name = re.search(r"SJ002 (\S+)（", _leaders_listed(demo_db, capsys))
    assert name is not None
    for who in ("sj002", name.group(1)):
        assert main(["summary", "--db", str(demo_db), "--leader", who]) == 0
        assert capsys.readouterr().out == expected


def _leaders_listed(demo_db: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["summary", "--db", str(demo_db), "--leader", "NOPE"]) == 2
    return capsys.readouterr().err


def test_charts_of_one_shape_share_a_figure_without_leaking_into_each_other() -> None:
    """render_charts redraws one figure per shape: a chart drawn after another of its shape
    is pixel for pixel the chart drawn alone."""
    day = dt.date(2026, 3, 2)
    first = ChartData(
        day,
        "县市场监督管理局",
        {"县市场监督管理局": Counter({"已逾期": 40}), "县卫生健康委员会": Counter({"已提交": 3})},
        Counter({"检查中": 2}),
    )
    second = ChartData(
        day,
        "县卫生健康委员会",
        {"县公安局": Counter({"未到期": 7}), "县卫生健康委员会": Counter({"本周到期": 1})},
        Counter({"已公示": 1}),
    )
    together = charts.render_charts([first, second], dpi=40)
    assert together == [charts.render_chart(first, dpi=40), charts.render_chart(second, dpi=40)]
    assert together[0] != together[1]


async def test_cli_writes_no_chart_for_a_department_without_tasks(
    ctx: Ctx, session: AsyncSession, tmp_path: Path
) -> None:
    """As the daily tick and the README have it: a scope with no task in progress gets its
    text alone; `summary --out` wrote an empty chart (暂无案件 / 暂无任务) for it."""
    if charts.cjk_font() is None:
        pytest.skip("no CJK font: no chart at all")
    await build_world(session)
    busy = await scope_summary(ctx, ctx.clock.today())
    idle = ScopeSummary(busy.summary, ChartData(ctx.clock.today(), "县公安局"))
    _write_summaries(tmp_path / "out", "2026-03-05", [("忙", busy), ("闲", idle)], force=False)
    assert _names(tmp_path / "out") == [
        "忙-2026-03-05.md",
        "忙-2026-03-05.png",
        "闲-2026-03-05.md",
    ]


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_the_task_bars_are_not_in_a_legend_colour() -> None:
    """The tasks' bars (已公示 …) were drawn in nearly the legend's 未到期 blue, so a leader
    read them as cases not yet due: their colour is far from every bucket's."""

    def rgb(colour: str) -> tuple[int, ...]:
        return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))

    for bucket in charts.COLOURS:
        assert math.dist(rgb(charts.TASK_COLOUR), rgb(bucket)) > 90, bucket


async def test_a_name_two_leaders_share_asks_for_the_code(ctx: Ctx, session: AsyncSession) -> None:
    w = await build_world(session)
    w.other_leader.name = w.lead_leader.name
    await session.flush()
    assert await leader_named(ctx, w.lead_leader.code.lower()) is w.lead_leader
    with pytest.raises(ValidationFailed, match="请改用人员编号") as refused:
        await leader_named(ctx, w.lead_leader.name)
    assert (
        w.lead_leader.code in refused.value.message and w.other_leader.code in refused.value.message
    )
