"""Exports: a year's results in the provincial platform's result-entry layout, and 立卷归档 of a
task (001 第二十条, 004 第二十五条) after which the task is closed."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import main as cli_main
from core import documents, objections, referrals, replacements
from core.archive import closing
from core.attachments import FileStore
from core.changes import Ctx
from core.clock import CHINA_TZ
from core.db import make_engine, make_sessionmaker
from core.draws import pool
from core.errors import InvalidTransition, PermissionDenied
from core.exports import RESULT_COLUMNS, RESULT_LAYOUT
from core.models import Attachment, AuditEvent, CaseResult, Draw, DrawPool, JointTask
from core.result_entry import submit_result
from core.review import review_result
from core.states import TaskState
from tests.case_factories import World, acting, at_day, build_world, enter_other_parts
from tests.test_documents import a4_pages, docx_text
from tests.test_public import publish_and_correct

D = dt.date
# what the archive's CSVs wrote under Chinese headers: stored states and Python booleans
RAW_WORDS = (
    r"\b(?:True|False|accepted|declined|pending|expired|part_entered|submitted|returned"
    r"|approved|published|superseded|received|upheld|error_found|corrected|replied)\b"
)


@pytest.fixture
async def published(ctx: Ctx, session: AsyncSession) -> World:
    w = await build_world(session)
    await documents.issue_notice(acting(ctx, w.a1), w.case.code, via="test")
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
    # 无需后续处置: there is nothing left to do, so the follow-up is complete
    assert record["后续处置"] == "无需后续处置" and record["后续处置是否完成"] == "是"
    sheet = load_workbook(out)["检查结果"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:Q2"
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
    tmp_path: Path, db_url: str, published: World, sessionmaker, capsys
) -> None:
    """001 第二十条, 004 第二十五条: the task's records are filed (立卷归档), then it is closed."""
    out = tmp_path / "archive.zip"
    argv = ["export", "archive", published.task.code, "-o", str(out), "--db", db_url]
    assert cli_main(argv) == 0
    assert "状态改为“已归档”" in capsys.readouterr().out
    copy = tmp_path / "copy.zip"
    assert cli_main([*argv[:4], str(copy), *argv[5:]]) == 0  # a further copy says so
    said = capsys.readouterr().out
    assert "此前已立卷归档" in said and "状态改为" not in said
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        read = {n: zf.read(n) for n in names}
    code = published.case.code
    for expected in (
        "00-归档清单.txt",
        "01-任务方案/任务.json",
        "02-邀请与答复/邀请.csv",
        f"04-检查文书/{code}/{code}-联合抽查通知书-第1次送达.docx",
        f"04-检查文书/{code}/{code}-联合抽查情况记录表-第1版-第1次录入.docx",
        f"04-检查文书/{code}/{code}-联合抽查情况记录表-第2版-第2次录入.docx",
        "05-检查结果/结果.csv",
        "06-审核/审核.csv",
        "07-公示/公示.csv",
        "08-异议/异议.csv",
        "09-审计/审计摘录.jsonl",
        "09-审计/审计校验.txt",
    ):
        assert expected in names, expected
    notice = Document(io.BytesIO(read[f"04-检查文书/{code}/{code}-联合抽查通知书-第1次送达.docx"]))
    assert any("ZFA1" in c.text for t in notice.tables for r in t.rows for c in r.cells)
    assert all(a4_pages(read[n]) for n in names if n.endswith(".docx"))
    results = read["05-检查结果/结果.csv"].decode("utf-8-sig")
    assert "已被更正" in results and "已公示" in results
    # 复查 only in the reason the correction gave (publish_and_correct's 复查后更正)
    assert [
        (r["更正理由"], [v for k, v in r.items() if "复查" in v and k != "更正理由"])
        for r in csv.DictReader(io.StringIO(results))
    ] == [("", []), ("复查后更正", [])]
    invitations = read["02-邀请与答复/邀请.csv"].decode("utf-8-sig")
    assert "县卫生健康委员会,已接受" in invitations
    # Chinese headers, Chinese words: states as the pages name them, 是/否 (as export results)
    for name in names - {n for n in names if n.startswith("03-抽取/")}:
        if name.endswith(".csv"):
            words = re.findall(RAW_WORDS, read[name].decode("utf-8-sig"))
            assert not words, (name, words)
    corrected = next(line for line in results.splitlines() if "已公示" in line)
    # 无需后续处置 is a complete follow-up, as in export results; and 是否更正
    assert ",无需后续处置,是," in corrected and corrected.count(",是,") == 2
    assert "通过" in read["06-审核/审核.csv"].decode("utf-8-sig")
    excerpt = read["09-审计/审计摘录.jsonl"].decode()
    assert "case.result.corrected" in excerpt and "case.published" in excerpt
    assert "全链校验：通过" in read["09-审计/审计校验.txt"].decode()
    # beside the raw events, the task's trail in words as `audit show` prints it
    trail = read["09-审计/审计记录.txt"].decode()
    assert f"任务 {published.task.code} 的审计记录共" in trail and "审核通过（案件" in trail
    assert "更正" in trail and not re.search(r"（(task|case|draw|invitation|objection):", trail)
    manifest = read["00-归档清单.txt"].decode()
    # read by a clerk: the time in words, not ISO
    assert re.search(r"生成时间：\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d\n", manifest)
    for name in names - {"00-归档清单.txt"}:
        assert f"{hashlib.sha256(read[name]).hexdigest()}  {name}" in manifest


async def recorded_digests(db_url: str) -> list[str]:
    """The archives' digests the audit records, read on an engine of this event loop."""
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as s:
            events = await s.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.in_(("task.closed", "task.archived_again")))
                .order_by(AuditEvent.id)
            )
            return [e.data["manifest_sha256"] for e in events]
    finally:
        await engine.dispose()


def test_archiving_again_to_the_same_file_keeps_the_archive_the_audit_records(
    tmp_path: Path, db_url: str, published: World, capsys
) -> None:
    """A second `export archive -o F.zip` overwrote F.zip, the archive whose manifest digest the
    `task.closed` event records, with another one: an existing file is never overwritten; the
    operator is told and given a free name, and nothing is recorded."""
    out = tmp_path / "archive.zip"
    argv = ["export", "archive", published.task.code, "-o", str(out), "--db", db_url]
    assert cli_main(argv) == 0
    first = out.read_bytes()
    capsys.readouterr()
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert f"{out}" in err and "已存在" in err and "archive-2.zip" in err, err
    assert out.read_bytes() == first
    with zipfile.ZipFile(out) as zf:
        manifest = zf.read("00-归档清单.txt")
    assert asyncio.run(recorded_digests(db_url)) == [hashlib.sha256(manifest).hexdigest()]


async def test_archive_closes_only_a_finished_task(
    ctx: Ctx, session: AsyncSession, published: World
) -> None:
    """004 第二十条: not while an objection is open nor before the objection period ends. The
    ZIP's entries are dated by the service clock, as its 归档清单 is (they carried the host's
    real time beside the demo date)."""
    w, code = published, published.task.code
    lead = acting(ctx, w.lead_liaison)
    with pytest.raises(PermissionDenied):
        await closing.archive_task(acting(ctx, w.a1), code)
    at_day(ctx, D(2026, 4, 10))
    savepoint = await session.begin_nested()
    await objections.file_objection(
        lead, w.case.code, "某某食品有限公司", "对检查结果有异议", D(2026, 4, 10)
    )
    with pytest.raises(InvalidTransition, match="尚有未办结的异议"):
        await closing.archive_task(lead, code)
    await savepoint.rollback()
    at_day(ctx, D(2026, 6, 1))  # the correction was published on 2 April
    with pytest.raises(InvalidTransition, match="异议期（公示后 60 日）至 2026年6月1日 届满"):
        await closing.archive_task(lead, code)

    at_day(ctx, D(2026, 6, 2))
    archive, task, again = await closing.archive_task(lead, code)
    await session.commit()
    assert task.state == TaskState.CLOSED and not again
    at = ctx.clock.now().astimezone(CHINA_TZ)
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert {i.date_time for i in zf.infolist()} == {(2026, 6, 2, at.hour, at.minute, 0)}
    closed = await session.scalar(select(AuditEvent).where(AuditEvent.action == "task.closed"))
    assert closed is not None and closed.data["files"] > 10
    *_, again = await closing.archive_task(acting(ctx, w.lead_leader), code)  # a second copy
    assert again
    await session.commit()
    reloaded = await session.scalar(select(JointTask).where(JointTask.code == code))
    assert reloaded is not None and reloaded.state == TaskState.CLOSED


async def test_an_objection_rechecked_but_not_answered_keeps_the_task_open_004_art20(
    ctx: Ctx, session: AsyncSession, published: World
) -> None:
    """004 第二十条: an objection ends with the written answer to the objector (答复), not with
    the re-check; one re-checked (维持原结果) but not answered let the task be archived and
    closed, its answer then outside the file."""
    w, code = published, published.task.code
    lead = acting(ctx, w.lead_liaison)
    at_day(ctx, D(2026, 4, 10))
    objection = await objections.file_objection(
        lead, w.case.code, "某某食品有限公司", "对检查结果有异议", D(2026, 4, 10)
    )
    await objections.record_recheck(lead, objection.id, "经复查，检查结果无误", error_found=False)
    at_day(ctx, D(2026, 6, 2))  # past the objection period
    with pytest.raises(InvalidTransition, match="尚有未办结的异议") as err:
        await closing.archive_task(lead, code)
    assert f"{w.case.code}（维持原结果" in str(err.value) and f"答复 {w.case.code}" in str(
        err.value
    )
    await objections.reply_objection(lead, objection.id, "已电话告知企业")
    *_, again = await closing.archive_task(lead, code)
    assert not again


async def test_a_task_before_publication_is_not_archived(ctx: Ctx, session: AsyncSession) -> None:
    w = await build_world(session)
    with pytest.raises(InvalidTransition, match="尚未全部公示"):
        await closing.archive_task(acting(ctx, w.lead_liaison), w.task.code)


# The archive's files that list result versions, each by edition and entry as the pages do
_VERSIONED_CSVS = (
    "05-检查结果/结果.csv",
    "05-检查结果/事项结果.csv",
    "06-审核/审核.csv",
    "07-公示/公示.csv",
)


async def test_archive_files_the_results_attachments(
    ctx: Ctx, session: AsyncSession, tmp_path: Path
) -> None:
    """Results are filed with their attachments (photos, PDFs); a lost file is named missing.
    Their paths name each version as the result pages and `案件` do (004 第二十条: corrections
    are new versions): 第 N 版 the edition, 第 M 次录入 the entry. The published entry is the
    case's second (the first was returned) but its first edition; the correction the second."""
    published = await build_world(session)
    await publish_and_correct(ctx, published, returned_first=True)
    store = FileStore(tmp_path / "files")
    photo = b"\xff\xd8\xff\xe0 not really a jpeg, bytes are bytes"
    versions = {
        r.version: r for r in await session.scalars(select(CaseResult).order_by(CaseResult.version))
    }
    assert [(v, r.edition) for v, r in versions.items()] == [(1, 1), (2, 1), (3, 2)]
    for version, name, sha in (
        (2, "现场照片.jpg", store.put(photo)),
        (2, "丢失.pdf", "0" * 64),
        (3, "复查照片.jpg", store.put(photo)),
    ):
        session.add(
            Attachment(
                result_id=versions[version].id,
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
    data, _, _ = await closing.archive_task(
        acting(ctx, published.lead_liaison), published.task.code, store
    )
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        folder = f"05-检查结果/附件/{published.case.code}"
        assert zf.read(f"{folder}/第1版-第2次录入-1-现场照片.jpg") == photo
        assert zf.read(f"{folder}/第2版-第3次录入-3-复查照片.jpg") == photo
        listing = zf.read("05-检查结果/附件清单.csv").decode("utf-8-sig")
        published_rows = zf.read("07-公示/公示.csv").decode("utf-8-sig").splitlines()
        headers = [zf.read(n).decode("utf-8-sig").splitlines()[0] for n in _VERSIONED_CSVS]
    assert listing.startswith("案件号,版次,本案录入次序,文件名")
    assert all(h.startswith("案件号,") and ",版次,本案录入次序," in h for h in headers)
    code = published.case.code  # the returned entry was never published; 第 1 版 is the second
    assert [r.split(",")[:3] for r in published_rows[1:]] == [[code, "1", "2"], [code, "2", "3"]]
    assert "丢失.pdf" in listing and "缺失" in listing


async def test_results_export_row_carries_each_column_of_the_layout(
    ctx: Ctx, session: AsyncSession, tmp_path: Path, db_url: str
) -> None:
    """004 第十九条 (《记录表》内容录入省级平台): one published result with problems, a
    participant's own category and a follow-up, read back from the produced XLSX column by
    column; codes are the platform's keys, labels the national wording of docs/domain.md."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await enter_other_parts(session, w.case.code, w.a1, ctx.clock.now())
    await submit_result(
        acting(ctx, w.a1),
        w.case.code,
        codes=["A", "2", "B", "5:WJ"],
        methods=["实地检查", "书面检查"],
        followups=["责令改正并跟踪"],
        followup_done=True,
        followup_done_on=D(2026, 3, 11),
        inspected_on=D(2026, 3, 10),
    )
    await review_result(acting(ctx, w.lead_liaison), w.case.code, approve=True)
    at_day(ctx, D(2026, 3, 20))
    # the closing approval publishes it (rules.auto_publish, the default; 004 第十九条)
    await review_result(acting(ctx, w.other_liaison), w.case.code, approve=True)
    await session.commit()

    out = tmp_path / "results.xlsx"
    argv = ["export", "results", "--year", "2026", "-o", str(out), "--db", db_url]
    assert await asyncio.to_thread(cli_main, argv) == 0  # the CLI runs its own event loop
    book = load_workbook(out)
    assert book.sheetnames == ["检查结果", "说明"]
    header, *rows = [list(r) for r in book["检查结果"].iter_rows(values_only=True)]
    assert tuple(header) == RESULT_COLUMNS  # the README's list, checked below
    [row] = rows
    assert dict(zip(header, row, strict=True)) == {
        "序号": 1,
        "任务编号": "LJ-2026-001",
        "任务名称": "公共场所联合抽查",
        "牵头部门": "县市场监督管理局",
        "参与部门": "县卫生健康委员会",
        "统一社会信用代码（注册号）": "91330424MA28AQAQXU",
        "检查对象名称": "嘉善县某某食品有限公司",
        "检查日期": dt.datetime(2026, 3, 10),
        "检查结果代码": "A,2,B,5",
        "检查结果": "发现问题待后续处理；违反工商（市场监管）行政管理相关规定；"
        "未按规定公示应当公示的信息；违反县卫生健康委员会相关规定",
        "检查方式": "实地检查、书面检查",
        "后续处置": "责令改正并跟踪",
        "后续处置是否完成": "是",
        "后续处置完成日期": dt.datetime(2026, 3, 11),
        "是否更正": "否",
        "公示日期": dt.datetime(2026, 3, 20),
        "案件号": "LJ-2026-001-001",
    }
    notes = {r[0]: r[1] for r in book["说明"].iter_rows(values_only=True)}
    assert notes["格式"] == RESULT_LAYOUT and notes["年度"] == 2026 and notes["部门"] == "全部"


def test_readme_documents_the_export_layout_column_for_column() -> None:
    """The README names the layout and lists the columns the code writes, in order."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("**Results for the provincial platform**", 1)[1].split("**Archive**")[0]
    flat = " ".join(section.split())
    assert RESULT_LAYOUT in flat
    listed = flat.split("Columns: ", 1)[1].split("; a second sheet", 1)[0]
    columns = [re.sub(r"\s*\(.*?\)\s*", "", c).strip() for c in listed.split(", ")]
    assert columns == list(RESULT_COLUMNS)


async def test_archive_files_the_draw_receipt_and_its_pool(
    ctx: Ctx, session: AsyncSession, published: World
) -> None:
    """001 第二十条, 004 第二十五条: the draw's record (commitment, seed, beacon, rule,
    selection) and the pool file it was drawn from are filed, the pool matching its hash."""
    candidates = sorted([(published.target.uscc, "一般"), ("91330424MA28AQB00X", "一般")])
    made = pool.pool_file(candidates)
    draw = Draw(
        code=f"{published.task.code}-T1",
        task_id=published.task.id,
        kind="targets",
        task_code=published.task.code,
        state="locked",
        commitment="c" * 64,
        seed_hex="5" * 64,
        beacon_source="2026年3月3日福彩3D开奖号码",
        beacon="417",
        pool_hash=made.hash,
        pool_size=len(candidates),
        parameters={"rule": {"strata": [{"name": "一般", "count": 1}]}},
        selection=[published.target.uscc],
        frozen_at=ctx.clock.now(),
        locked_at=ctx.clock.now(),
    )
    session.add(draw)
    await session.flush()
    session.add(DrawPool(draw_id=draw.id, data=made.data))
    await session.commit()
    at_day(ctx, D(2026, 6, 2))
    data, _, _ = await closing.archive_task(
        acting(ctx, published.lead_liaison), published.task.code
    )
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        receipt = json.loads(zf.read(f"03-抽取/{draw.code}.json"))
        pool_file = zf.read(f"03-抽取/{draw.code}-pool.csv").decode()
    assert receipt["seed"] == "5" * 64 and receipt["beacon"] == "417"
    assert receipt["commitment"] == "c" * 64 and receipt["selection"] == [published.target.uscc]
    assert receipt["rule"] == {"strata": [{"name": "一般", "count": 1}]}
    body = pool_file.removeprefix("id,stratum\n").removesuffix("\n")
    assert hashlib.sha256(body.encode()).hexdigest() == receipt["pool_hash"] == made.hash


async def test_archive_holds_each_notice_as_served_each_record_version_and_the_registers(
    ctx: Ctx, session: AsyncSession
) -> None:
    """004 第二十五条 (立卷归档) with 第十六条(二): the archive holds the notice as it was served —
    the group and the date of that day, the visit's date left for the pen as it was — and the
    notice re-issued after a replacement (第十三条); the record form of every result version
    (第二十条: a correction is a new version); and registers of the group's changes, the
    replacement requests and the referrals (第二十一条), in Chinese."""
    w = await build_world(session)
    code = w.case.code
    at_day(ctx, D(2026, 3, 5))
    await documents.issue_notice(acting(ctx, w.a1), code, via="test")
    at_day(ctx, D(2026, 3, 6))
    await replacements.request(acting(ctx, w.a1), code, "A2", "临时抽调参加专项整治")
    await replacements.decide(acting(ctx, w.lead_leader), code, "A2", new_officer_code="AX")
    await documents.issue_notice(acting(ctx, w.outsider), code, via="test")  # re-issued
    await documents.issue_notice(acting(ctx, w.a1), code, via="test")  # the same group: no third
    await session.commit()
    await publish_and_correct(ctx, w)
    await referrals.add_referral(
        acting(ctx, w.lead_liaison), code, "移送办案机构", w.lead.name, "年报未公示，移送立案"
    )
    await session.commit()
    at_day(ctx, D(2026, 6, 2))
    data, _, _ = await closing.archive_task(acting(ctx, w.lead_liaison), w.task.code)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        read = {n: zf.read(n) for n in zf.namelist()}
    folder = f"04-检查文书/{code}"
    served = [docx_text(read[f"{folder}/{code}-联合抽查通知书-第{n}次送达.docx"]) for n in (1, 2)]
    assert "李检查" in served[0] and "ZFA2" in served[0] and "吴局外" not in served[0]
    assert "2026年3月5日" in served[0] and "张检查（组长）" in served[0]
    assert "拟于　　年　　月　　日" in served[0] and "2026年3月10日" not in served[0]
    assert "吴局外" in served[1] and "ZFAX" in served[1] and "李检查" not in served[1]
    assert "2026年3月6日" in served[1]
    assert not any("第3次送达" in n for n in read)
    versions = list(await session.scalars(select(CaseResult).order_by(CaseResult.version)))
    records = {
        r.edition: docx_text(
            read[f"{folder}/{code}-联合抽查情况记录表-第{r.edition}版-第{r.version}次录入.docx"]
        )
        for r in versions
    }
    assert "（第 1 版）" in records[1] and "（第 2 版，更正）" in records[2]
    delivered = read["04-检查文书/通知书送达.csv"].decode("utf-8-sig").splitlines()
    assert delivered[0].startswith("案件号,送达次序,送达时间") and len(delivered) == 3
    assert "张检查（组长）、李检查、王检查" in delivered[1]
    assert "张检查（组长）、王检查、吴局外" in delivered[2]
    changes = read["04-检查文书/检查组人员变更.csv"].decode("utf-8-sig")
    assert f"{code},更换,李检查,吴局外,县市场监督管理局,临时抽调参加专项整治,钱领导," in changes
    requests = read["04-检查文书/更换与回避申请.csv"].decode("utf-8-sig")
    assert f"{code},更换,李检查,县市场监督管理局,临时抽调参加专项整治,张检查," in requests
    assert ",已批准," in requests
    referred = read["05-检查结果/移送.csv"].decode("utf-8-sig")
    assert f"{code},移送办案机构,县市场监督管理局,年报未公示，移送立案,赵联络," in referred
    for name in ("通知书送达", "检查组人员变更", "更换与回避申请"):
        assert not re.findall(RAW_WORDS, read[f"04-检查文书/{name}.csv"].decode("utf-8-sig"))


async def test_a_clerk_reads_the_plan_results_and_returns_of_the_archive_in_words(
    ctx: Ctx, session: AsyncSession
) -> None:
    """立卷归档 (004 第二十五条) is read by a clerk: beside 任务.json (English keys, half_up,
    risk_levels) the plan in Chinese words; the results' categories in words beside their
    codes (“A,2,B” alone said nothing); and a return names whose part it reopened (004 第十九条)."""
    w = await build_world(session)
    w.task.scope = {"kinds": ["企业"], "industries": ["餐饮服务", "住宿"]}
    w.task.rule = {
        "strata": [
            {"name": "重点关注", "risk_levels": ["D"], "flags": ["投诉举报"], "ratio": "0.10"}
            | {"rounding": "up", "min": 1},
            {"name": "一般风险", "risk_levels": ["B", ""], "ratio": "0.03"},
        ]
    }
    await session.commit()
    await publish_and_correct(ctx, w, returned_first=True)
    at_day(ctx, D(2026, 6, 2))
    data, _, _ = await closing.archive_task(acting(ctx, w.lead_liaison), w.task.code)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        texts = [n for n in zf.namelist() if n.endswith((".txt", ".csv"))]
        read = {n: zf.read(n).decode("utf-8-sig") for n in texts}
    plan = read["01-任务方案/任务方案.txt"]
    for words in (
        "联合抽查任务 LJ-2026-001《公共场所联合抽查》",
        "牵头部门：县市场监督管理局",
        "参与部门：县卫生健康委员会",
        "检查时间：2026年3月2日 至 2026年3月31日",
        "检查对象类型：企业；行业：餐饮服务、住宿",
        "1. 重点关注：高风险（D）或投诉举报；10%（向上取整），至少 1 户",
        "2. 一般风险：一般风险（B）、未分类；3%（四舍五入）",
        "县市场监督管理局 SJ-01 企业公示信息检查（重点检查事项）",
        "县卫生健康委员会 WJ-01 公共场所卫生检查（一般检查事项）",
    ):
        assert words in plan, (words, plan)
    assert not re.search(r"window_|half_up|risk_levels|strata", plan), plan
    results = read["05-检查结果/结果.csv"].splitlines()
    assert results[0].split(",")[6:8] == ["结果代码", "检查结果"], results[0]
    assert any(
        '"A,2,B",发现问题待后续处理；违反工商（市场监管）行政管理相关规定；未按规定公示应当公示的信息'
        in line
        for line in results
    ), results
    assert any(",1,未发现问题," in line for line in results), results
    items = read["05-检查结果/事项结果.csv"]
    assert "检查结果" in items.splitlines()[0] and ",1,未发现问题," in items, items
    reviews = read["06-审核/审核.csv"].splitlines()
    assert "退回部分" in reviews[0]
    [returned] = [line for line in reviews if ",退回," in line]
    assert "县市场监督管理局、县卫生健康委员会" in returned, returned
