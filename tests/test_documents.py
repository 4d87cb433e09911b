"""检查文书 (004 第十六条): the notice and the record of a case as DOCX and HTML, the signed
documents page, the `通知书` command, `lianjian documents`, and signed links in assignments."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient
from docx import Document
from docx.shared import Length
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli import main as cli_main
from bot.pages import documents as document_pages
from bot.pages.links import expand, expand_text, page_link
from bot.services import Services
from core import documents, results
from core.cases import get_case
from core.changes import Ctx
from core.clock import CHINA_TZ, FixedClock
from core.db import make_engine, make_sessionmaker
from core.errors import PermissionDenied, ValidationFailed
from core.groups.member_changes import replace_inspector
from core.inspection import mark_notified
from core.links import page_ref, sign_link
from core.messages import Destination, OutMessage
from core.models import AuditEvent, Case, Item, Officer, PlanEntry
from core.synthetic import generate_county
from handlers import documents as document_handlers
from handlers.pages import PageCtx
from tests.case_factories import World, acting, at_day, build_world
from tests.dispatch_support import make_dispatcher, send, text_event
from tests.server_helpers import make_services, pages_app
from tests.test_public import publish_and_correct

BASE = "http://127.0.0.1:8080"  # make_services' public URL
D = dt.date


def docx_text(content: bytes) -> str:
    """Every paragraph and table cell of a DOCX, as python-docx reads it."""
    doc = Document(io.BytesIO(content))
    cells = [c.text for t in doc.tables for row in t.rows for c in row.cells]
    return "\n".join([p.text for p in doc.paragraphs] + cells)


async def case_state(sm: async_sessionmaker[AsyncSession], code: str) -> str:
    async with sm() as s:
        return str(await s.scalar(select(Case.state).where(Case.code == code)))


async def test_notice_docx_names_the_target_and_the_groups_enforcement_certificates(ctx, session):
    """004 第十六条(二) and its sample notice: addressee, items, group with 执法证号, date."""
    w = await build_world(session)
    w.items[0].basis = "《企业信息公示暂行条例》第十一条"
    await session.commit()
    at_day(ctx, D(2026, 3, 12))
    await documents.issue_notice(acting(ctx, w.a1), w.case.code, via="test")
    context = await documents.case_document_context(ctx, w.case.code)
    text = docx_text(documents.render_docx("notice", context, ctx.clock.now()))
    for expected in (
        "嘉善县某某食品有限公司",
        "91330424MA28AQAQXU",
        "联合抽查通知书",
        "企业公示信息检查（重点事项）",
        "公共场所卫生检查",
        "县卫生健康委员会",
        "张检查（组长）",
        "ZFA1",
        "ZFA2",
        "ZFB1",
        "特此通知",
        "2026年3月12日",
        "《企业信息公示暂行条例》第十一条",
    ):
        assert expected in text, expected
    record = docx_text(documents.render_docx("record", context, ctx.clock.now()))
    assert "一企一表" in record and "嘉善县某某食品有限公司" in record and "ZFB1" in record
    assert "☐ 实地检查" in record  # blank form before any result
    html = documents.render_html("notice", context)
    assert (
        "ZFA1" in html
        and "2026年3月12日" in html
        and '<td data-label="检查依据">《企业信息公示暂行条例》第十一条</td>' in html
    )


async def test_the_notice_names_the_annual_plan_only_for_a_task_of_a_published_plan_entry(
    ctx, session
):
    """004 第七条 and the sample notice (依据…联合抽查事项清单和部门联合抽查年度工作计划): the
    notice cites the annual plan only when the task was started from a published plan entry;
    a task outside the plan states the basis it has — its written reason, or the task itself."""
    w = await build_world(session)

    async def basis() -> tuple[str, str]:
        context = await documents.case_document_context(ctx, w.case.code)
        docx = docx_text(documents.render_docx("notice", context, ctx.clock.now()))
        [opening] = [line for line in docx.splitlines() if line.startswith("依据")]
        html = " ".join(documents.render_html("notice", context).split())
        assert opening.split("，", 1)[0] in html  # the page says the same
        return opening, html

    opening, _ = await basis()
    assert "年度工作计划" not in opening and "年度计划" not in opening
    assert "联合抽查任务 LJ-2026-001《公共场所联合抽查》" in opening

    w.task.unplanned_reason = "上级部署的食品安全专项检查"
    opening, _ = await basis()
    assert "年度工作计划" not in opening
    assert "（年度抽查计划外任务，理由：上级部署的食品安全专项检查）" in opening

    session.add(
        PlanEntry(
            year=2026,
            code="JH-2026-03",
            title="公共场所计划抽查",
            lead_department_id=w.lead.id,
            month=3,
            task_id=w.task.id,
        )
    )
    await session.flush()
    opening, _ = await basis()
    assert opening.startswith(
        "依据县市场监督管理局市场监管领域部门联合抽查事项清单和部门联合抽查年度工作计划"
        "（2026年度计划 JH-2026-03《公共场所计划抽查》，任务 LJ-2026-001）"
    )
    assert "理由" not in opening


async def test_a_group_member_getting_the_notice_makes_the_case_notified(ctx, session):
    """004 第十六条(二): the notice is handed over before the visit; the case is then 已通知."""
    w = await build_world(session)
    await documents.issue_notice(acting(ctx, w.lead_liaison), w.case.code, via="test")
    await session.commit()
    await session.refresh(w.case)
    assert w.case.state == "assigned"  # a liaison printing a set hands nothing over

    await documents.issue_notice(acting(ctx, w.b1), w.case.code, via="test")
    await documents.issue_notice(acting(ctx, w.a1), w.case.code, via="test")  # no second event
    await session.commit()
    await session.refresh(w.case)
    assert w.case.state == "notified"
    events = list(
        await session.scalars(select(AuditEvent).where(AuditEvent.action == "case.notified"))
    )
    assert [(e.actor, e.data["via"]) for e in events] == [("B1", "test")]
    assert [p["name"] for p in events[0].data["inspectors"]] == ["张检查", "李检查", "王检查"]

    with pytest.raises(PermissionDenied, match="只有本案检查组成员"):
        await documents.issue_notice(acting(ctx, w.outsider), w.case.code, via="test")


@pytest.mark.parametrize("changed", [False, True], ids=["first", "after_replacement"])
async def test_two_members_serving_the_notice_at_once_record_it_once_004_art16(
    ctx, session, sessionmaker, engine, clock, changed: bool
):
    """004 第十六条(二), 第十三条: two group members opening the notice in the same moment serve
    it once. The case was read unlocked: after a replacement both recorded
    case.notice_reissued, and the first notice's second member failed on 已通知 → 已通知."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 5))
    if changed:
        await documents.issue_notice(acting(ctx, w.a1), w.case.code, via="test")
        await replace_inspector(
            acting(ctx, w.lead_leader), w.case.code, w.a2.id, w.outsider.id, "调岗"
        )
        await session.commit()
    async with sessionmaker() as s1, sessionmaker() as s2:
        first = Ctx(session=s1, clock=clock, rules=ctx.rules, actor=await s1.get(Officer, w.b1.id))
        second = Ctx(session=s2, clock=clock, rules=ctx.rules, actor=await s2.get(Officer, w.a1.id))
        await documents.issue_notice(first, w.case.code, via="page:html")
        await s1.flush()
        if engine.dialect.name == "postgresql":
            # the first transaction holds the case: the second waits, then sees it served
            later = asyncio.create_task(
                documents.issue_notice(second, w.case.code, via="page:docx")
            )
            await asyncio.sleep(0.3)
            await s1.commit()
            await asyncio.wait_for(later, 10)
        else:  # SQLite has one writer: the second runs after the commit
            await s1.commit()
            await documents.issue_notice(second, w.case.code, via="page:docx")
        await s2.commit()
    events = list(
        await session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.action.in_(documents.SERVED_ACTIONS))
            .order_by(AuditEvent.id)
        )
    )
    served = ["case.notified", "case.notice_reissued"] if changed else ["case.notified"]
    assert events == served
    assert await case_state(sessionmaker, w.case.code) == "notified"


async def test_the_notice_keeps_the_day_it_was_issued_whenever_it_is_printed_again(
    ctx, session, tmp_path: Path
):
    """004 第十六条(二): the notice is handed over before the visit, the day the case became
    已通知; a copy printed later (the set, the archive) carries that day, not the printing day,
    and a notice never issued leaves the date for the pen."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    before = docx_text(
        documents.render_docx(
            "notice", await documents.case_document_context(ctx, w.case.code), ctx.clock.now()
        )
    )
    assert "　　年　　月　　日" in before
    await documents.issue_notice(acting(ctx, w.a1), w.case.code, via="test")
    await session.commit()

    at_day(ctx, D(2026, 11, 30))
    [*_, (_, content)] = [
        f
        for f in (await documents.print_documents(ctx, w.task.code)).files
        if f[0].endswith("通知书.docx")
    ]
    text = docx_text(content)
    assert "2026年3月12日" in text and "2026年11月30日" not in text
    html = documents.render_html("notice", await documents.case_document_context(ctx, w.case.code))
    assert "2026年3月12日" in html and "2026年11月30日" not in html


async def test_a_notice_served_before_its_group_was_kept_shows_the_group_of_that_day(ctx, session):
    """004 第二十五条: a notice recorded as served before the group was kept with it (the event
    holds only how it was served) is filed with the group of that day, rebuilt from the group's
    changes (更换, 004 第十三条), not with the group after a later replacement."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 5))
    a1 = acting(ctx, w.a1)
    await mark_notified(a1, await get_case(a1, w.case.code, for_update=True), {"via": "page:docx"})
    at_day(ctx, D(2026, 3, 6))
    await replace_inspector(acting(ctx, w.lead_leader), w.case.code, w.a2.id, w.outsider.id, "调岗")
    [served] = await documents.served_notices(ctx, w.case)
    assert not served.kept and served.issued_on == D(2026, 3, 5)
    current = await documents.case_document_context(ctx, w.case.code)
    text = docx_text(documents.render_docx("notice", served.context(current), ctx.clock.now()))
    assert "李检查" in text and "吴局外" not in text and "2026年3月5日" in text


async def test_a_correction_naming_no_items_is_each_own_items_result_004_art3(ctx, session):
    """004 第二十条: the chat's 更正 gives a quick result and names no items; the corrected
    version is the result of each of the correcting department's items (the record form's 事项
    结果), keeping what each check covered, with the corrected problems gone. The other
    department's item stays as it was published (谁检查、谁录入、谁负责, 004 第三条)."""
    w = await build_world(session)
    await publish_and_correct(ctx, w, item_content="核查年报公示信息")
    context = await documents.case_document_context(ctx, w.case.code)
    assert context["result"].is_correction
    labels = {i["department"]: i["labels"] for i in context["items"]}
    assert labels == {w.lead.name: ["未发现问题"], w.other.name: []}
    [own] = [i["result"] for i in context["items"] if i["department"] == w.lead.name]
    assert (own.content, own.problems) == ("核查年报公示信息", "")
    record = docx_text(documents.render_docx("record", context, ctx.clock.now()))
    assert "核查年报公示信息" in record and "年报未公示" not in record


# ---------------------------------------------------------------- the signed page over HTTP


@pytest.fixture
def services(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> Services:
    return make_services(sessionmaker, clock)


@pytest.fixture
async def client(services: Services, aiohttp_client) -> TestClient:
    return await aiohttp_client(pages_app(services, document_pages.routes(services)))


@pytest.fixture
async def world(sessionmaker: async_sessionmaker[AsyncSession]) -> World:
    async with sessionmaker() as session:
        return await build_world(session)


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_assignment_link_lists_the_case_and_serves_both_documents(
    client: TestClient, services: Services, world: World, sessionmaker
) -> None:
    url = page_link(services, world.a2.id, "documents", f"task:{world.task.code}")
    assert url.startswith(f"{BASE}/h5/documents?t=")
    token = _query(url)["t"]
    resp = await client.get("/h5/documents", params={"t": token})
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    page = await resp.text()
    assert "嘉善县某某食品有限公司" in page and "待检查" in page and 'name="viewport"' in page
    links = re.findall(r'href="\?([^"]+)"', page)
    assert len(links) == 4

    record = await client.get(
        "/h5/documents",
        params={"t": token, "case": world.case.code, "doc": "record", "fmt": "docx"},
    )
    assert record.status == 200
    assert record.headers["Content-Type"] == documents.DOCX_MIME
    assert "attachment" in record.headers["Content-Disposition"]
    assert "ZFA2" in docx_text(await record.read())
    assert await case_state(sessionmaker, world.case.code) == "assigned"

    notice = await client.get(
        "/h5/documents",
        params={"t": token, "case": world.case.code, "doc": "notice", "fmt": "html"},
    )
    assert notice.status == 200 and "联合抽查通知书" in await notice.text()
    assert await case_state(sessionmaker, world.case.code) == "notified"
    # opened from the assignment on a phone: laid out for its screen, not zoomed out to A4
    record_html = await client.get(
        "/h5/documents",
        params={"t": token, "case": world.case.code, "doc": "record", "fmt": "html"},
    )
    for printable in (await notice.text(), await record_html.text()):
        assert 'name="viewport" content="width=device-width' in printable
        assert "@media screen and (max-width: 600px)" in printable


@pytest.mark.parametrize("case", ["outsider", "expired", "other_action", "unknown_case"])
async def test_foreign_expired_or_wrong_links_get_a_chinese_page_and_no_document(
    client: TestClient, services: Services, world: World, clock: FixedClock, sessionmaker, case: str
) -> None:
    obj = f"case:{world.case.code}"
    officer, action, params = world.a1, "documents", {"doc": "notice", "fmt": "docx"}
    if case == "outsider":
        officer = world.outsider
    elif case == "other_action":
        action = "respond"
    elif case == "unknown_case":
        obj = "case:LJ-2026-999"
    token = _query(page_link(services, officer.id, "documents", obj))["t"]
    if action != "documents":
        token = sign_link(
            services.link_secret, officer.id, obj, action, int(clock.now().timestamp()) + 60
        )
    if case == "expired":
        clock.advance(dt.timedelta(days=121))
    resp = await client.get("/h5/documents", params={"t": token, "case": world.case.code, **params})
    assert resp.status in (403, 404)
    text = await resp.text()
    assert "无法打开此页面" in text and "嘉善县某某食品有限公司" not in text
    assert await case_state(sessionmaker, world.case.code) == "assigned"
    if case == "outsider":
        async with sessionmaker() as s:
            denied = await s.scalar(select(AuditEvent).where(AuditEvent.action == "denied"))
        assert denied is not None and denied.data["action"] == "case.documents.denied"


async def test_page_references_become_links_only_in_private_copies(services: Services) -> None:
    body = f"文书：[通知书]({page_ref('documents', 'case:LJ-2026-001-001')})"
    private = expand(services, 7, OutMessage.md("t", body)).body
    (url,) = re.findall(r"\((http[^)]+)\)", private)
    assert url.startswith(f"{BASE}/h5/documents?t=")
    assert expand_text(services, None, body) == "文书：通知书"  # a group copy keeps the label
    assert Destination.department(1).officer_id is None


# ---------------------------------------------------------------- chat and CLI


async def test_notice_command_sends_the_case_documents_link_privately(
    sessionmaker, clock: FixedClock, world: World
) -> None:
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event("A1", f"通知书 {world.case.code}"))
    body = rows[-1].message["body"]
    assert "嘉善县某某食品有限公司" in body and "lianjian-page:documents/case:" in body
    assert rows[-1].destination["officer_id"] is not None

    refused = await send(sessionmaker, d, text_event("AX", f"通知书 {world.case.code}"))
    assert "只有本案检查组成员" in refused[-1].message["body"]
    assert "lianjian-page" not in refused[-1].message["body"]


def test_cli_writes_every_document_of_a_task(
    tmp_path: Path, db_url: str, sessionmaker, world: World
) -> None:
    out = tmp_path / "docs"
    assert cli_main(["documents", world.task.code, "-o", str(out), "--db", db_url]) == 0
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    code = world.case.code
    assert files == sorted(
        f"{code}/{code}-{t}.{x}"
        for t in ("联合抽查通知书", "联合抽查情况记录表")
        for x in ("docx", "html")
    )
    assert "ZFA1" in docx_text((out / code / f"{code}-联合抽查通知书.docx").read_bytes())
    assert cli_main(["documents", "LJ-2026-999", "-o", str(out), "--db", db_url]) == 2


def a4_pages(content: bytes) -> bool:
    """Every section of a DOCX is A4 portrait with margins (county offices print on A4)."""

    def mm(length: Length | None) -> int:
        return round(length.mm) if length is not None else 0

    return all(
        (mm(s.page_width), mm(s.page_height)) == (210, 297)
        and min(mm(s.top_margin), mm(s.bottom_margin), mm(s.left_margin), mm(s.right_margin)) >= 20
        for s in Document(io.BytesIO(content)).sections
    )


def test_cli_writes_word_documents_on_a4_paper(tmp_path: Path, db_url: str, world: World) -> None:
    """The Word files were US Letter (w:pgSz 12240×15840) while the HTML says A4."""
    out = tmp_path / "docs"
    assert cli_main(["documents", world.case.code, "-o", str(out), "--db", db_url]) == 0
    words = list(out.rglob("*.docx"))
    assert len(words) == 2
    for path in words:
        assert a4_pages(path.read_bytes()), path.name


def test_cli_documents_counts_documents_and_makes_no_path_from_a_typo(
    tmp_path: Path, db_url: str, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """`documents X -o /nonexist/a/b` made the whole path: a folder named for the output is
    made only inside one that exists (as `export results` refuses a missing folder), and the
    report counts documents (notice and record), not their Word and HTML files."""
    missing = tmp_path / "nonexist" / "a" / "b"
    assert cli_main(["documents", world.task.code, "-o", str(missing), "--db", db_url]) == 2
    assert f"{missing}：文件夹不存在" in capsys.readouterr().err
    assert not (tmp_path / "nonexist").exists()
    out = tmp_path / "new"
    assert cli_main(["documents", world.task.code, "-o", str(out), "--db", db_url]) == 0
    said = capsys.readouterr().out
    assert "已生成 1 户的检查文书 2 份" in said and "Word 与网页" in said, said


async def test_a_docx_depends_only_on_its_data_and_the_service_clock(ctx, session):
    """004 第二十五条 (立卷归档): the archive's manifest names each document's SHA-256, so the
    same case at the same service time must give the same bytes. python-docx dated every ZIP
    entry by the host's real time: on a demo clock (or one second later) the bytes differed."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    await documents.issue_notice(acting(ctx, w.a1), w.case.code, via="test")
    context = await documents.case_document_context(ctx, w.case.code)
    at = ctx.clock.now()
    first = documents.render_docx("notice", context, at)
    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        stamps = {info.date_time for info in zf.infolist()}
    assert stamps == {at.astimezone(CHINA_TZ).timetuple()[:6]}
    props = Document(io.BytesIO(first)).core_properties
    assert props.created == props.modified == at.astimezone(dt.UTC).replace(microsecond=0)
    await asyncio.sleep(2.1)  # the ZIP format's clock ticks every 2 seconds
    assert documents.render_docx("notice", context, at) == first
    later = at + dt.timedelta(days=1)
    assert documents.render_docx("notice", context, later) != first


# ---------------------------------------------------------------- what the documents show


def docx_rows(content: bytes, header: str) -> list[dict[str, str]]:
    """The rows of the DOCX table whose first row holds `header`, each by its header cells."""
    doc = Document(io.BytesIO(content))
    [table] = [t for t in doc.tables if header in [c.text for c in t.rows[0].cells]]
    names = [c.text for c in table.rows[0].cells]
    return [dict(zip(names, [c.text for c in row.cells], strict=True)) for row in table.rows[1:]]


def html_cells(html: str, label: str) -> list[str]:
    """The text of the record's item cells labelled `label` (the phone's stacked rows)."""
    return re.findall(rf'<td data-label="{label}">(.*?)</td>', html, re.S)


async def test_the_record_says_what_each_item_checks_004_art16(ctx, session):
    """004 第十六条 (检查记录表，一企一表): 检查内容 is what each item of the case checks — the
    item list's entry (事项名称, 检查依据) — in the blank form and, where the entry records
    nothing of its own, in the filled one, DOCX and HTML alike. The list's 检查方式 is the plan
    (004 第五条、第十五条): the blank form names it for the group; the filled one says how the
    target was checked once, in its 检查方式 row as the group entered it (实地检查 here), and its
    item rows do not name the list's 实地检查、书面检查 beside it."""
    w = await build_world(session)
    w.items[0].method, w.items[0].basis = "实地检查、书面检查", "《企业信息公示暂行条例》第十四条"
    await session.commit()
    for stage in ("blank", "entered"):
        if stage == "entered":
            await publish_and_correct(ctx, w, item_content="")
        context = await documents.case_document_context(ctx, w.case.code)
        docx = documents.render_docx("record", context, ctx.clock.now())
        rows = docx_rows(docx, "检查内容")
        html = documents.render_html("record", context)
        lead, other = rows[0]["检查内容"], rows[1]["检查内容"]
        assert "企业公示信息检查" in lead, stage
        assert "《企业信息公示暂行条例》第十四条" in lead and "公共场所卫生检查" in other
        assert [" ".join(c.split()) for c in html_cells(html, "检查内容")] == [lead, other]
        [method] = re.findall(r"<tr><th>检查方式</th><td>(.*?)</td>", html)
        if stage == "blank":
            assert "实地检查、书面检查" in lead and "☐ 书面检查" in method
        else:
            assert "书面检查" not in lead + other and method == "实地检查"
            assert "书面检查" not in docx_text(docx)


async def test_the_blank_record_offers_a_box_for_every_method_and_followup_a_result_records(
    ctx, session
):
    """004 第十六条: the group ticks the paper record and enters the same choices later, so the
    blank form's 检查方式 and 后续处置 boxes are the ones a result takes, in their order."""
    w = await build_world(session)
    context = await documents.case_document_context(ctx, w.case.code)
    cells = docx_text(documents.render_docx("record", context, ctx.clock.now())).split("\n")
    assert "　".join(f"☐ {m}" for m in results.METHODS) in cells
    assert "　".join(f"☐ {f}" for f in results.FOLLOWUPS) in cells


async def test_the_record_keeps_what_an_entry_says_its_check_covered(ctx, session):
    """An entry that says what its check covered (检查内容, chat) keeps its words."""
    w = await build_world(session)
    await publish_and_correct(ctx, w, item_content="核查年报公示信息")
    context = await documents.case_document_context(ctx, w.case.code)
    rows = docx_rows(documents.render_docx("record", context, ctx.clock.now()), "检查内容")
    assert rows[0]["检查内容"] == "核查年报公示信息"


async def test_the_record_reads_on_a_phone_with_every_item_cell_labelled(ctx, session):
    """The record's item table has seven columns: on a 375 px phone each row stacks into
    labelled lines (the printed A4 form keeps its columns)."""
    w = await build_world(session)
    html = documents.render_html("record", await documents.case_document_context(ctx, w.case.code))
    assert '<table class="items">' in html
    for label in ("检查事项", "检查部门", "检查内容", "发现的问题", "处理情况", "事项结果"):
        assert len(html_cells(html, label)) == len(w.items), label
    phone = html[html.index("@media screen and (max-width: 600px)") :]
    assert ".items td::before" in phone and "attr(data-label)" in phone


async def test_notice_html_and_docx_both_list_each_items_basis(ctx, session):
    """The notice lists the items with their 检查依据 (004's sample notice) in the page as in
    the DOCX, a dash where the item list gives none."""
    w = await build_world(session)
    w.items[0].basis = "《中华人民共和国食品安全法》第八十七条"
    await session.commit()
    context = await documents.case_document_context(ctx, w.case.code)
    rows = docx_rows(documents.render_docx("notice", context, ctx.clock.now()), "检查依据")
    assert [r["检查依据"] for r in rows] == ["《中华人民共和国食品安全法》第八十七条", "—"]
    html = documents.render_html("notice", context)
    header = re.search(r"<tr><th>序号</th>(.*?)</tr>", html)
    assert header is not None and "<th>检查依据</th>" in header.group(1)
    cells = re.findall(r'<td data-label="检查依据">(.*?)</td>', html)
    assert cells == ["《中华人民共和国食品安全法》第八十七条", "—"]


def _sign_line(content: bytes) -> tuple[str, list[bool]]:
    """The notice DOCX's last paragraph (落款日期): its text and which runs are underlined."""
    last = Document(io.BytesIO(content)).paragraphs[-1]
    return last.text, [bool(r.font.underline) for r in last.runs]


async def test_the_notice_date_is_the_day_served_or_a_marked_line_for_the_pen_004_art16(
    ctx, session
):
    """004 第十六条(二): the notice is dated the day it was handed over (a group member got it,
    the case became 已通知); one not served yet, in the DOCX as on the page, has underlined
    blanks for the date to be written by hand, and the page says why (on screen only)."""
    w = await build_world(session)
    at_day(ctx, D(2026, 3, 12))
    context = await documents.case_document_context(ctx, w.case.code)
    text, underlined = _sign_line(documents.render_docx("notice", context, ctx.clock.now()))
    assert text.replace("　", "") == "年月日" and underlined.count(True) == 3
    html = documents.render_html("notice", context)
    sign = html[html.index('<p class="date sign">') :]
    assert sign.count('<span class="blank"') == 3 and "送达" in html
    assert "@media print" in html and ".screen-only { display: none; }" in html

    await documents.issue_notice(acting(ctx, w.a1), w.case.code, via="test")
    context = await documents.case_document_context(ctx, w.case.code)
    text, underlined = _sign_line(documents.render_docx("notice", context, ctx.clock.now()))
    assert text == "2026年3月12日" and not any(underlined)
    html = documents.render_html("notice", context)
    assert "2026年3月12日</p>" in html and "尚未送达" not in html


async def test_the_demo_countys_items_cite_a_legal_basis_the_notice_shows(ctx, tmp_path: Path):
    """The synthetic county (`lianjian demo`, `serve --demo`) has an item list citing each
    item's 检查依据, so a demo's notice shows them (004's sample notice)."""
    await generate_county(ctx, tmp_path, seed=1, targets=20, year=2026)
    items = list(await ctx.session.scalars(select(Item)))
    assert items and all(
        re.fullmatch(r"《[^》]+》第[一二三四五六七八九十]+条.*", i.basis) for i in items
    )
    food = next(i for i in items if i.code == "SJ-02")
    assert "《中华人民共和国食品安全法》" in food.basis


async def _retire_a2(sm: async_sessionmaker[AsyncSession]) -> None:
    async with sm() as s:
        officer = await s.scalar(select(Officer).where(Officer.code == "A2"))
        assert officer is not None
        officer.active, officer.inactive_reason = False, "退休"
        await s.commit()


LEFT_A2 = "李检查（A2）已退休"


async def _on_own_engine(db_url: str, read: Any) -> Any:
    """`read(sessionmaker)` on an engine of this event loop (a CLI test's asyncio.run)."""
    engine = make_engine(db_url)
    try:
        return await read(make_sessionmaker(engine))
    finally:
        await engine.dispose()


def test_a_notice_naming_an_officer_who_left_is_not_served_and_says_how_to_replace_001_art14(
    tmp_path: Path,
    db_url: str,
    world: World,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """001 第十四条 and 004 第十三条: an officer who left is replaced (更换, 批准), not named on
    a notice handed over; `documents --served` records nothing for that case and says which
    officer and how."""
    asyncio.run(_on_own_engine(db_url, _retire_a2))
    code = world.case.code
    argv = ["documents", world.task.code, "-o", str(tmp_path / "d"), "--db", db_url, "--served"]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "已登记 0 户的通知书已送达" in out, out
    assert f"{code}：检查组中{LEFT_A2}" in out and f"更换 {code} A2" in out, out
    assert f"批准 {code} A2 新人员编号" in out
    state = asyncio.run(_on_own_engine(db_url, lambda sm: case_state(sm, code)))
    assert state == "assigned"


async def test_a_member_getting_a_notice_naming_an_officer_who_left_serves_nothing(
    ctx, session
) -> None:
    w = await build_world(session)
    w.a2.active, w.a2.inactive_reason = False, "退休"
    await session.commit()
    await documents.issue_notice(acting(ctx, w.a1), w.case.code, via="test")
    await session.commit()
    await session.refresh(w.case)
    assert w.case.state == "assigned"


async def test_notice_command_and_page_name_the_officer_who_left(
    sessionmaker, clock: FixedClock, world: World
) -> None:
    await _retire_a2(sessionmaker)
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event("A1", f"通知书 {world.case.code}"))
    body = rows[-1].message["body"]
    assert LEFT_A2 in body and f"更换 {world.case.code} A2" in body, body
    async with sessionmaker() as s:
        ctx = Ctx(session=s, clock=clock)
        a1 = await s.scalar(select(Officer).where(Officer.code == "A1"))
        case = await get_case(ctx, world.case.code)
        req = document_handlers.DocumentRequest(f"case:{case.code}", case.code, "notice")
        page = PageCtx(session=s, clock=clock, rules=ctx.rules, officer=a1, token="t")
        listed = await document_handlers.documents_page(
            page, document_handlers.DocumentRequest(req.obj)
        )
        assert LEFT_A2 in listed.content.decode("utf-8")
        with pytest.raises(ValidationFailed, match=LEFT_A2):
            await document_handlers.documents_page(page, req)
