"""Exports: a year's results in the provincial platform's result-entry layout, and 立卷归档 of a
task (001 第二十条, 004 第二十五条) after which the task is closed."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import main as cli_main
from core import archive, objections
from core.attachments import FileStore
from core.changes import Ctx
from core.errors import InvalidTransition, PermissionDenied
from core.exports import RESULT_COLUMNS
from core.models import Attachment, AuditEvent, CaseResult, JointTask
from core.states import TaskState
from tests.case_factories import World, acting, at_day, build_world
from tests.test_public import publish_and_correct

D = dt.date


@pytest.fixture
async def published(ctx: Ctx, session: AsyncSession) -> World:
    w = await build_world(session)
    await publish_and_correct(ctx, w)
    return w


def test_results_export_uses_the_platform_layout(
    tmp_path: Path, db_url: str, published: World
) -> None:
    out = tmp_path / "results.xlsx"
    assert cli_main(["export", "results", "--year", "2026", "-o", str(out), "--db", db_url]) == 0
    sheet = load_workbook(out)["检查结果"]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert tuple(rows[0]) == RESULT_COLUMNS
    [row] = rows[1:]  # the current version only: the correction
    record = dict(zip(RESULT_COLUMNS, row, strict=True))
    assert record["统一社会信用代码（注册号）"] == "91330424MA28AQAQXU"
    assert record["检查结果代码"] == "1" and record["检查结果"] == "未发现问题"
    assert record["是否更正"] == "是" and record["参与部门"] == "县卫生健康委员会"
    assert record["案件号"] == published.case.code

    partner = tmp_path / "partner.xlsx"
    assert (
        cli_main(
            [
                "export",
                "results",
                "--year",
                "2026",
                "--department",
                "WJ",
                "-o",
                str(partner),
                "--db",
                db_url,
            ]
        )
        == 0
    )
    assert load_workbook(partner)["检查结果"].max_row == 2
    other_year = tmp_path / "2025.xlsx"
    assert (
        cli_main(["export", "results", "--year", "2025", "-o", str(other_year), "--db", db_url])
        == 0
    )
    assert load_workbook(other_year)["检查结果"].max_row == 1
    assert (
        cli_main(
            [
                "export",
                "results",
                "--year",
                "2026",
                "--department",
                "不存在的局",
                "-o",
                str(partner),
                "--db",
                db_url,
            ]
        )
        == 2
    )


def test_archive_holds_the_whole_task_and_closes_it(
    tmp_path: Path, db_url: str, published: World, sessionmaker
) -> None:
    """001 第二十条, 004 第二十五条: the task's records are filed (立卷归档), then it is closed."""
    out = tmp_path / "archive.zip"
    assert cli_main(["export", "archive", published.task.code, "-o", str(out), "--db", db_url]) == 0
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        read = {n: zf.read(n) for n in names}
    code = published.case.code
    for expected in (
        "00-归档清单.txt",
        "01-任务方案/任务.json",
        "02-邀请与答复/邀请.csv",
        f"04-检查文书/{code}/{code}-联合抽查通知书.docx",
        f"04-检查文书/{code}/{code}-联合抽查情况记录表.docx",
        "05-检查结果/结果.csv",
        "06-审核/审核.csv",
        "07-公示/公示.csv",
        "08-异议/异议.csv",
        "09-审计/审计摘录.jsonl",
        "09-审计/审计校验.txt",
    ):
        assert expected in names, expected
    notice = Document(io.BytesIO(read[f"04-检查文书/{code}/{code}-联合抽查通知书.docx"]))
    assert any("ZFA1" in c.text for t in notice.tables for r in t.rows for c in r.cells)
    results = read["05-检查结果/结果.csv"].decode("utf-8-sig")
    assert "superseded" in results and "published" in results and "复查" not in results
    assert "县卫生健康委员会" in read["02-邀请与答复/邀请.csv"].decode("utf-8-sig")
    assert "通过" in read["06-审核/审核.csv"].decode("utf-8-sig")
    excerpt = read["09-审计/审计摘录.jsonl"].decode()
    assert "case.result.corrected" in excerpt and "task.results_published" in excerpt
    assert "全链校验：通过" in read["09-审计/审计校验.txt"].decode()
    manifest = read["00-归档清单.txt"].decode()
    for name in names - {"00-归档清单.txt"}:
        assert f"{hashlib.sha256(read[name]).hexdigest()}  {name}" in manifest


async def test_archive_closes_only_a_finished_task(
    ctx: Ctx, session: AsyncSession, published: World
) -> None:
    """004 第二十条: not while an objection is open nor before the objection period ends."""
    w, code = published, published.task.code
    lead = acting(ctx, w.lead_liaison)
    with pytest.raises(PermissionDenied):
        await archive.archive_task(acting(ctx, w.a1), code)
    at_day(ctx, D(2026, 4, 10))
    savepoint = await session.begin_nested()
    await objections.file_objection(
        lead, w.case.code, "某某食品有限公司", "对检查结果有异议", D(2026, 4, 10)
    )
    with pytest.raises(InvalidTransition, match="尚有未办结的异议"):
        await archive.archive_task(lead, code)
    await savepoint.rollback()
    at_day(ctx, D(2026, 6, 1))  # the correction was published on 2 April
    with pytest.raises(InvalidTransition, match="异议期（公示后 60 日）至 2026-06-01 届满"):
        await archive.archive_task(lead, code)

    at_day(ctx, D(2026, 6, 2))
    _, task = await archive.archive_task(lead, code)
    await session.commit()
    assert task.state == TaskState.CLOSED
    closed = await session.scalar(select(AuditEvent).where(AuditEvent.action == "task.closed"))
    assert closed is not None and closed.data["files"] > 10
    await archive.archive_task(acting(ctx, w.lead_leader), code)  # a second copy
    await session.commit()
    task = await session.scalar(select(JointTask).where(JointTask.code == code))
    assert task is not None and task.state == TaskState.CLOSED


async def test_a_task_before_publication_is_not_archived(ctx: Ctx, session: AsyncSession) -> None:
    w = await build_world(session)
    with pytest.raises(InvalidTransition, match="尚未全部公示"):
        await archive.archive_task(acting(ctx, w.lead_liaison), w.task.code)


async def test_archive_files_the_results_attachments(
    ctx: Ctx, session: AsyncSession, published: World, tmp_path: Path
) -> None:
    """Results are filed with their attachments (photos, PDFs); a lost file is named missing."""
    store = FileStore(tmp_path / "files")
    photo = b"\xff\xd8\xff\xe0 not really a jpeg, bytes are bytes"
    first = await session.scalar(select(CaseResult).where(CaseResult.version == 1))
    assert first is not None
    for name, sha in (("现场照片.jpg", store.put(photo)), ("丢失.pdf", "0" * 64)):
        session.add(
            Attachment(
                result_id=first.id,
                sha256=sha,
                name=name,
                mime="image/jpeg",
                size=len(photo),
                uploaded_by_id=published.a1.id,
                uploaded_at=ctx.clock.now(),
            )
        )
    await session.commit()
    at_day(ctx, D(2026, 6, 2))
    data, _ = await archive.archive_task(
        acting(ctx, published.lead_liaison), published.task.code, store
    )
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        code = published.case.code
        assert zf.read(f"05-检查结果/附件/{code}/第1版-1-现场照片.jpg") == photo
        listing = zf.read("05-检查结果/附件清单.csv").decode("utf-8-sig")
    assert "丢失.pdf" in listing and "缺失" in listing
