"""The yearly evaluation per department, the readiness check in chat, and the CLI around them."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from bot.cli import main as cli
from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.evaluation import write_report, year_report
from core.models import Department, Invitation, JointTask
from core.result_entry import submit_result
from core.review import review_result
from core.summary import chart_data
from tests import factories as f
from tests.case_factories import World, acting, build_world, enter_other_parts
from tests.dispatch_support import bodies, make_dispatcher, send, text_event


async def _entered_and_returned(ctx: Ctx, world: World, part: str = "") -> None:
    """Both parts entered on 2026-03-10 (inspected 03-05, within the window, 000 §五.3), then
    the lead returns the result: `part` names the department whose part it reopens, or all."""
    await enter_other_parts(ctx.session, world.case.code, world.a1, ctx.clock.now())
    await submit_result(
        acting(ctx, world.a1),
        world.case.code,
        codes=["1"],
        methods=["实地检查"],
        followups=["无需后续处置"],
        inspected_on=dt.date(2026, 3, 5),
    )
    await review_result(
        acting(ctx, world.lead_liaison), world.case.code, False, "缺少现场照片，请补充", part
    )
    await ctx.session.commit()


async def test_year_report_counts_each_departments_part(ctx: Ctx, tmp_path: Path) -> None:
    """000 §十三 (yearly assessment), 004 第七条 (every department leads or joins one joint task
    a year), 004 第二十四条 (a result not entered in time counts as not done)."""
    world = await build_world(
        ctx.session, window_start=dt.date(2026, 3, 2), window_end=dt.date(2026, 3, 6)
    )
    absent = await f.department(ctx.session, "县教育局", code="JY")
    refuser = await f.department(ctx.session, "县交通运输局", code="JT")
    ctx.session.add(
        Invitation(
            task_id=world.task.id,
            department_id=refuser.id,
            state="declined",
            reason="本季度执法力量已全部投入专项整治",
        )
    )
    await ctx.session.commit()
    ctx.clock = FixedClock(china_noon(dt.date(2026, 3, 10)))
    await _entered_and_returned(ctx, world)

    report = await year_report(ctx, 2026)
    rows = {d.code: d for d in report.departments}
    lead, other, jt = rows["SJ"], rows["WJ"], rows["JT"]
    assert lead.led == ["LJ-2026-001"] and other.joined == ["LJ-2026-001"]
    assert jt.declined == [("LJ-2026-001", "本季度执法力量已全部投入专项整治")]
    # the whole result went back: each part keeps its first entry's column, on time (001
    # 第十六条(三) judges the entry; core.timeliness), and the return is counted
    assert (lead.cases, lead.on_time, lead.late, lead.not_due, lead.returns) == (1, 1, 0, 0, 1)
    assert (other.cases, other.on_time, other.not_due) == (1, 1, 0)
    assert [d.code for d in report.absent] == ["JT", absent.code]  # by code

    path = write_report(report, tmp_path / "考核.xlsx")
    wb = openpyxl.load_workbook(path)
    sheet = wb["2026年度考核"]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[1][:4] == ["部门编码", "部门", "牵头任务数", "参与任务数"]
    assert "异议计入案件所属任务的牵头部门" in values[0][0]  # whose counts (004 第二十条)
    assert any(
        str(v[0]).startswith("未发起也未参与联合抽查的部门：县交通运输局、县教育局")
        for v in values
        if v[0]
    )
    assert [c.value for c in wb["拒绝与未答复"][2]] == [
        "县交通运输局",
        "LJ-2026-001",
        "拒绝",
        "本季度执法力量已全部投入专项整治",
    ]


async def test_results_missing_after_the_deadline_are_counted(ctx: Ctx) -> None:
    """004 第二十四条: 未在规定时间录入的，视为未完成任务."""
    await build_world(ctx.session, window_start=dt.date(2026, 3, 2), window_end=dt.date(2026, 3, 6))
    ctx.clock = FixedClock(china_noon(dt.date(2026, 5, 6)))  # past 20 working days after the window
    rows = {d.code: d for d in (await year_report(ctx, 2026)).departments}
    assert (rows["SJ"].missing, rows["WJ"].missing, rows["SJ"].on_time) == (1, 1, 0)


async def test_year_report_adds_up_counts_returns_per_part_and_agrees_with_the_summary(
    ctx: Ctx,
) -> None:
    """000 §十三, 004 第二十四条: a department's cases add up to on time + late + 逾期未录入 +
    未到期; a return naming 卫健委's part counts for 卫健委 alone, its part judged by its first
    entry (001 第十六条(三): on time, returned or not); once the re-entry is overdue the daily
    summary's chart shows it overdue (still owed), the year report still on time."""
    world = await build_world(
        ctx.session, window_start=dt.date(2026, 3, 2), window_end=dt.date(2026, 3, 6)
    )
    ctx.clock = FixedClock(china_noon(dt.date(2026, 3, 10)))
    rows = {d.code: d for d in (await year_report(ctx, 2026)).departments}
    assert (rows["SJ"].cases, rows["SJ"].not_due, rows["SJ"].missing) == (1, 1, 0)
    await _entered_and_returned(ctx, world, "WJ")
    rows = {d.code: d for d in (await year_report(ctx, 2026)).departments}
    assert (rows["WJ"].on_time, rows["WJ"].not_due) == (1, 0)  # returned, not re-entered yet

    ctx.clock = FixedClock(china_noon(dt.date(2026, 5, 6)))  # past the re-entry's deadline
    rows = {d.code: d for d in (await year_report(ctx, 2026)).departments}
    lead, other = rows["SJ"], rows["WJ"]
    assert (lead.on_time, lead.late, lead.missing, lead.not_due, lead.returns) == (1, 0, 0, 0, 0)
    assert (other.on_time, other.late, other.missing, other.not_due, other.returns) == (
        1,
        0,
        0,
        0,
        1,
    )
    chart = await chart_data(ctx, ctx.clock.today())
    assert chart.overdue_by_department() == [("县卫生健康委员会", 1)]


async def test_chat_setup_check_and_year_report_for_admins_and_leaders(sessionmaker, clock) -> None:
    async with sessionmaker() as s:
        dep = await f.department(s, "县市场监督管理局", code="SJ")
        admin = await f.officer(s, dep, "admin")
        inspector = await f.officer(s, dep, "inspector")
        await s.commit()
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event(inspector.code, "检查配置"))
    assert "只有联席会议办公室管理员或分管领导" in bodies(rows)
    rows = await send(sessionmaker, d, text_event(admin.code, "检查配置"))
    text = bodies(rows)
    assert (
        "县市场监督管理局（SJ）：没有联络员；没有分管领导" in text and "检查对象名录库为空" in text
    )
    rows = await send(sessionmaker, d, text_event(admin.code, "年度考核 2026"))
    assert "2026 年度联合抽查考核" in bodies(rows) and "未发起也未参与联合抽查" in bodies(rows)
    # a leader reads this in chat: no command-line text, the way to the workbook on its own line
    assert "lianjian" not in bodies(rows)
    assert "\n\n需要 Excel 明细表（含拒绝与未答复清单）的，请联系" in bodies(rows)
    today = clock.today()
    assert f"（截至 {today.year}年{today.month}月{today.day}日）" in bodies(rows)
    rows = await send(sessionmaker, d, text_event(admin.code, "年度考核 明年"))
    assert bodies(rows) == f"年度“明年”应为整数，如 {clock.today().year}"


async def test_chat_year_report_puts_each_department_on_its_own_line(sessionmaker, clock) -> None:
    """Every department after the first ran on from the one before (“更正 0- **县公安局**”):
    the template's whitespace control ate the line break between them."""
    async with sessionmaker() as s:
        dep = await f.department(s, "县市场监督管理局", code="SJ")
        await f.department(s, "县公安局", code="GA")
        await f.department(s, "县卫生健康局", code="WJ")
        admin = await f.officer(s, dep, "admin")
        await s.commit()
    d = make_dispatcher(sessionmaker, clock)
    text = bodies(await send(sessionmaker, d, text_event(admin.code, "年度考核 2026")))
    lines = [line for line in text.split("\n") if line.startswith("- **")]
    assert len(lines) == 3 and all(line.endswith("更正 0") for line in lines), text


@pytest.mark.parametrize("typed", ["1800", "99999", "2999年"])
async def test_chat_year_report_refuses_a_year_out_of_range_in_one_line(
    sessionmaker, clock, typed: str
) -> None:
    """年度考核 (000 §十三) checks the year as the CLI's report does: from 2000 to next year,
    and the one-line refusal says what to write."""
    async with sessionmaker() as s:
        admin = await f.officer(s, await f.department(s, "县市场监督管理局", code="SJ"), "admin")
        await s.commit()
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event(admin.code, f"年度考核 {typed}"))
    year = clock.today().year
    assert bodies(rows) == f"年度“{typed}”不在 2000–{year + 1} 年之间，请写其间的年份，如 {year}"


async def test_cli_template_and_year_report(ctx: Ctx, db_url: str, tmp_path: Path, capsys) -> None:
    await build_world(ctx.session)
    out = tmp_path / "t.xlsx"
    assert await asyncio.to_thread(cli, ["template", "plan", "-o", str(out)]) == 0
    assert openpyxl.load_workbook(out).sheetnames == ["数据", "填写说明"]
    report = tmp_path / "r.xlsx"
    assert (
        await asyncio.to_thread(
            cli, ["report", "year", "--year", "2026", "-o", str(report), "--db", db_url]
        )
        == 0
    )
    assert "已生成 2026 年度考核统计：2 个成员单位" in capsys.readouterr().out
    assert report.exists()
    assert await ctx.session.scalar(select(JointTask.code)) == "LJ-2026-001"
    assert await ctx.session.scalar(select(Department.code).where(Department.code == "SJ")) == "SJ"


async def test_000_13_a_withdrawn_task_leaves_the_year_s_evaluation(ctx: Ctx) -> None:
    """000 §十三 puts each department's joint inspections into its yearly assessment: a task
    withdrawn as created by mistake is none — not led by its lead, and its invitation, left
    unanswered past the reply deadline, counts against no one."""
    from core.consultation import opening
    from core.consultation.withdrawal import withdraw_task

    w = await f.world(ctx.session, partners=1, n_targets=0)
    task = await f.draft_task(ctx, w)
    lead = f.as_actor(ctx, w.lead.liaison)
    await opening.open_consultation(lead, task, [w.partners[0].dep.id])
    assert task.reply_due_on is not None
    ctx.clock = FixedClock(china_noon(task.reply_due_on + dt.timedelta(days=1)))
    before = {d.code: d for d in (await year_report(ctx, task.year)).departments}
    assert before[w.partners[0].dep.code].unanswered == [task.code]  # overdue, counted
    await withdraw_task(
        f.as_actor(ctx, w.lead.liaison), task.code, "任务文件重复执行，与前一任务重复"
    )
    report = {d.code: d for d in (await year_report(ctx, task.year)).departments}
    assert report[w.lead.dep.code].led == [] and not report[w.lead.dep.code].took_part
    partner = report[w.partners[0].dep.code]
    assert (partner.joined, partner.declined, partner.unanswered) == ([], [], [])
