"""立卷归档 (001 第二十条, 004 第二十五条) as a county clerk reads it: the notice issued is filed
even when nobody registered serving it in the system (printed with `lianjian documents`), and the
registers carry the facts a clerk needs without opening 09-审计 — the correction's reason, how an
objection was answered and who re-checked and answered it."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import main as cli_main
from core import documents, objections, replacements
from core.archive import closing
from core.changes import Ctx
from core.clock import CHINA_TZ
from core.db import make_engine, make_sessionmaker
from core.errors import PermissionDenied
from core.models import AuditEvent, Case
from core.workdays import cn_date
from tests.case_factories import World, acting, at_day, at_time, build_world
from tests.test_documents import docx_text
from tests.test_public import publish_and_correct

D = dt.date


def rows(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


@pytest.fixture
async def assigned(session: AsyncSession) -> World:
    return await build_world(session)


@pytest.fixture
async def printed_only(ctx: Ctx, session: AsyncSession) -> World:
    """A task whose notices were printed, not served through a member's notice page: no member
    opened it; a member was replaced before the visit (004 第十三条); the result was entered,
    published and corrected."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 6))
    await replacements.request(acting(ctx, w.a1), w.case.code, "A2", "临时抽调参加专项整治")
    await replacements.decide(acting(ctx, w.lead_leader), w.case.code, "A2", new_officer_code="AX")
    await session.commit()
    await publish_and_correct(ctx, w)
    return w


def test_a_notice_printed_with_the_cli_is_filed_though_not_registered_as_served_004_art25(
    tmp_path: Path, db_url: str, printed_only: World
) -> None:
    """004 第二十五条 with 第十六条(二): the operator printed the notices with `lianjian
    documents TASK -o DIR` (the README's way; printing changes no state) and no member opened
    the notice page. The archive held the record forms only; it files each case's notice as
    generated from the case data, with the group of the visit, named as not registered served,
    and the register says where it is."""
    code, task = printed_only.case.code, printed_only.task.code
    printed = tmp_path / "printed"
    assert cli_main(["documents", task, "-o", str(printed), "--db", db_url]) == 0
    assert (printed / code / f"{code}-联合抽查通知书.docx").exists()
    out = tmp_path / "archive.zip"
    assert cli_main(["export", "archive", task, "-o", str(out), "--db", db_url]) == 0
    with zipfile.ZipFile(out) as zf:
        read = {n: zf.read(n) for n in zf.namelist()}
    folder = f"04-检查文书/{code}"
    name = f"{folder}/{code}-联合抽查通知书-未登记送达.docx"
    assert name in read, sorted(read)
    assert not any("次送达" in n for n in read)
    notice = docx_text(read[name])
    assert "嘉善县某某食品有限公司" in notice and "企业公示信息检查" in notice
    assert "张检查（组长）" in notice and "ZFA1" in notice and "王检查" in notice
    assert "吴局外" in notice and "ZFAX" in notice and "李检查" not in notice  # the visit's group
    assert "拟于2026年3月10日" in notice  # the visit's date, from the case
    [served] = rows(read["04-检查文书/通知书送达.csv"])
    assert served["案件号"] == code and served["送达次序"] == "" and served["送达时间"] == ""
    assert "未在系统中登记送达" in served["检查组来源"], served
    assert served["检查组"] == "张检查（组长）、王检查、吴局外"
    assert served["归档位置"] == name


async def test_the_archive_registers_say_why_corrected_and_how_an_objection_was_answered(
    ctx: Ctx, session: AsyncSession, printed_only: World
) -> None:
    """004 第二十条: a correction's reason (更正理由) stands beside its version in 结果.csv and
    公示.csv; 异议.csv says who re-checked (复查人, 复查部门), who answered and how (答复方式,
    e.g. 书面告知, as the README's `答复 案件号 [答复方式]` keeps it) — they were only in
    09-审计."""
    w = printed_only
    lead = acting(ctx, w.lead_liaison)
    at_day(ctx, D(2026, 4, 10))
    filed = await objections.file_objection(
        lead, w.case.code, "某某食品有限公司", "对检查结果有异议", D(2026, 4, 10)
    )
    await objections.record_recheck(lead, filed.id, "经复查原结论无误", error_found=False)
    at_day(ctx, D(2026, 4, 13))
    await objections.reply_objection(acting(ctx, w.lead_leader), filed.id, "书面告知")
    await session.commit()
    at_day(ctx, D(2026, 6, 2))
    data, _, _ = await closing.archive_task(lead, w.task.code)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        read = {n: zf.read(n) for n in zf.namelist()}
    results = rows(read["05-检查结果/结果.csv"])
    assert [(r["版次"], r["是否更正"], r["更正理由"]) for r in results] == [
        ("1", "否", ""),
        ("2", "是", "复查后更正"),
    ]
    published = rows(read["07-公示/公示.csv"])
    assert [(r["版次"], r["更正理由"]) for r in published] == [("1", ""), ("2", "复查后更正")]
    [objection] = rows(read["08-异议/异议.csv"])
    assert objection["复查结论"] == "经复查原结论无误"
    assert objection["复查人"] == "赵联络"
    assert objection["复查部门"] == "县市场监督管理局"
    assert objection["答复人"] == "钱领导"
    assert objection["答复方式"] == "书面告知"
    assert objection["答复日期"] == "2026-04-13"


async def notices_recorded(db_url: str) -> list[tuple[str, str, str, str]]:
    """Each case's state and the notices recorded served (actor, how), read on an engine of
    this event loop."""
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as s:
            [state] = await s.scalars(select(Case.state))
            events = await s.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.in_(documents.SERVED_ACTIONS))
                .order_by(AuditEvent.id)
            )
            return [(str(state), e.action, e.actor, e.data["via"]) for e in events]
    finally:
        await engine.dispose()


def test_documents_served_records_the_printed_notices_as_handed_over_004_art16(
    tmp_path: Path, db_url: str, assigned: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """004 第十六条(二): an office that prints the notices with `lianjian documents` and hands
    them over says so with --served: each case not yet visited becomes 已通知, recorded in the
    audit as a member's getting the notice is (the group and the visit's date kept for the
    archive); printed again, nothing is recorded twice. Without --served printing changes
    nothing."""
    task = assigned.task.code
    argv = ["documents", task, "-o", str(tmp_path / "a"), "--db", db_url]
    assert cli_main(argv) == 0
    assert "已登记" not in capsys.readouterr().out
    assert asyncio.run(notices_recorded(db_url)) == []
    assert cli_main([*argv, "--served", "--force"]) == 0  # the same folder again
    assert "已登记 1 户的通知书已送达" in capsys.readouterr().out
    recorded = [("notified", "case.notified", "admin:cli", "cli")]
    assert asyncio.run(notices_recorded(db_url)) == recorded
    argv[3] = str(tmp_path / "b")
    assert cli_main([*argv, "--served"]) == 0
    said = capsys.readouterr().out
    assert "已登记 0 户的通知书已送达" in said and "另 1 户未登记" in said
    assert asyncio.run(notices_recorded(db_url)) == recorded


async def test_the_archive_files_a_notice_served_with_the_cli_as_served_004_art25(
    ctx: Ctx, session: AsyncSession
) -> None:
    """A notice recorded served with `documents --served` is filed as served (第1次送达, the
    group of that day), not as 未登记送达; an officer cannot record it so (a member serves
    through the notice page)."""
    w = await build_world(session)
    with pytest.raises(PermissionDenied):
        await documents.print_documents(acting(ctx, w.lead_liaison), w.task.code, serving=True)
    at_day(ctx, D(2026, 3, 5))
    printed = await documents.print_documents(ctx, w.task.code, serving=True)
    with pytest.raises(PermissionDenied):
        await documents.serve_printed(acting(ctx, w.lead_liaison), w.task.code, printed)
    assert await documents.serve_printed(ctx, w.task.code, printed) == [w.case.code]
    await session.commit()
    await publish_and_correct(ctx, w)
    at_day(ctx, D(2026, 6, 2))
    data, _, _ = await closing.archive_task(acting(ctx, w.lead_liaison), w.task.code)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        read = {n: zf.read(n) for n in zf.namelist()}
    code = w.case.code
    notice = docx_text(read[f"04-检查文书/{code}/{code}-联合抽查通知书-第1次送达.docx"])
    assert "2026年3月5日" in notice and "张检查（组长）" in notice
    assert not any("未登记送达" in n for n in read)
    [served] = rows(read["04-检查文书/通知书送达.csv"])
    assert served["送达次序"] == "1" and served["检查组来源"] == "送达时记录"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # one writer: PostgreSQL's don't wait
def test_documents_served_renders_before_its_short_write_004_art16(
    tmp_path: Path, db_url: str, assigned: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`documents … --served` renders every notice and record (~20 ms a DOCX: seconds for a
    county task) and writes the files before it records the serving, in one short write
    afterwards: while it renders, another writer of the database (the running server) is not
    kept waiting, and when the serving is recorded the files are already on disk."""
    out = tmp_path / "printed"
    code = assigned.case.code
    real_render, real_serve = documents.render_docx, documents.serve_printed
    writes: list[str] = []
    on_disk: list[bool] = []

    def render_while_the_server_writes(*args: Any, **kwargs: Any) -> bytes:
        # the server's write, with a short wait instead of its 10 s: it fails when locked
        with sqlite3.connect(db_url, timeout=0.2) as conn:
            conn.execute("UPDATE officer SET name = name WHERE id = 1")
        writes.append("ok")
        return real_render(*args, **kwargs)

    async def serve_after_the_files(ctx: Ctx, task: str, printed: Any) -> list[str]:
        on_disk.append((out / code / f"{code}-联合抽查通知书.docx").exists())
        return await real_serve(ctx, task, printed)

    monkeypatch.setattr(documents, "render_docx", render_while_the_server_writes)
    monkeypatch.setattr(documents, "serve_printed", serve_after_the_files)
    argv = ["documents", assigned.task.code, "-o", str(out), "--db", db_url, "--served"]
    assert cli_main(argv) == 0
    assert writes == ["ok", "ok"] and on_disk == [True]
    recorded = [("notified", "case.notified", "admin:cli", "cli")]
    assert asyncio.run(notices_recorded(db_url)) == recorded
    notice = docx_text((out / code / f"{code}-联合抽查通知书.docx").read_bytes())
    assert cn_date(dt.datetime.now(CHINA_TZ).date()) in notice  # served today, as recorded


async def test_a_notice_printed_before_midnight_and_served_after_keeps_its_date_004_art25(
    ctx: Ctx, session: AsyncSession
) -> None:
    """004 第二十五条 with 第十六条(二): the operator prints with `documents --served` at 23:59
    China time and the serving is recorded at 00:00 the next day. The paper handed over says
    3月5日; the archive's notice, rebuilt from the serving's record, used to say 3月6日 (the
    recording time's day). The day printed is stored with the serving and dates every copy."""
    w = await build_world(session)
    at_time(ctx, dt.datetime(2026, 3, 5, 23, 59, 30, tzinfo=CHINA_TZ))
    printed = await documents.print_documents(ctx, w.task.code, serving=True)
    code = w.case.code
    paper = dict(printed.files)
    assert "2026年3月5日" in docx_text(paper[f"{code}/{code}-联合抽查通知书.docx"])
    assert "2026年3月5日" in paper[f"{code}/{code}-联合抽查通知书.html"].decode()
    at_time(ctx, dt.datetime(2026, 3, 6, 0, 0, 30, tzinfo=CHINA_TZ))
    assert await documents.serve_printed(ctx, w.task.code, printed) == [code]
    await session.commit()
    again = await documents.case_document_context(ctx, code)
    assert again["issued_on"] == D(2026, 3, 5)
    await publish_and_correct(ctx, w)
    at_day(ctx, D(2026, 6, 2))
    data, _, _ = await closing.archive_task(acting(ctx, w.lead_liaison), w.task.code)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        notice = docx_text(zf.read(f"04-检查文书/{code}/{code}-联合抽查通知书-第1次送达.docx"))
    assert "2026年3月5日" in notice and "2026年3月6日" not in notice
