"""A real phone-sized browser (Debian's chromium via playwright, tests/browser.py) enters a result
on the signed form and a reviewer returns it, and opens and prints a document. Screenshots are
kept as test artifacts (tests/browser.py's shoot)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientSession
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.pages.links import page_link
from bot.pages.result import RESULT_PATH, file_store, result_link
from bot.pages.review import review_link
from bot.services import Services
from core.clock import FixedClock, china_noon
from core.models import Attachment, Case, Officer
from tests.browser import (  # noqa: F401 (db_url: fixture)
    db_url,
    foreign_requests,
    shoot,
    small_taps,
)
from tests.case_factories import World, build_world, enter_other_parts
from tests.server_helpers import make_services
from tests.test_correction import w, with_photos
from tests.test_result_form import TODAY, fields, jpeg

__all__ = ["w"]  # a fixture used by name


async def test_result_form_and_review_on_a_375px_phone(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    aiohttp_server,
    tmp_path: Path,
    phone: Any,
) -> None:
    clock.set(china_noon(TODAY))
    async with sessionmaker() as session:
        w = await build_world(session)
        # 卫健委's part is in (000 §九–十): the lead's entry on the phone completes the case
        await enter_other_parts(session, w.case.code, w.a1, clock.now())
        await session.commit()
    services = make_services(sessionmaker, clock, attachments={"dir": str(tmp_path / "files")})
    site = await serve_site(aiohttp_server, services)
    form_url = site.local(result_link(services, w.a1.id, w.case.id))
    review_url = site.local(review_link(services, w.lead_liaison.id, w.case.id))
    photo = tmp_path / "现场照片.jpg"
    photo.write_bytes(jpeg("green", (800, 600)))
    remark = "经营者称年报已委托代理机构填报，现场未能出示回执。"
    item = w.items[0].id
    widths: list[int] = []

    foreign = foreign_requests(phone, site.base)
    await phone.goto(form_url)
    widths.append(await shoot(phone, "1-result-form"))
    await phone.fill("input[name=inspected_on]", "2026-03-05")
    for code in ("A", "2", "B"):
        await phone.check(f"input[name='item.{item}.codes'][value='{code}']")
    await phone.fill(f"textarea[name='item.{item}.problems']", "2025年度报告未公示")
    await phone.check("input[name=followups][value='责令改正并跟踪']")
    await phone.fill("textarea[name=remarks]", remark)
    await phone.click("text=提交检查结果")  # no inspection method ticked
    await phone.wait_for_selector(".field-error")
    error_text = await phone.inner_text("body")
    kept = await phone.input_value("textarea[name=remarks]")
    still_ticked = await phone.is_checked(f"input[name='item.{item}.codes'][value='B']")
    widths.append(await shoot(phone, "2-result-error"))
    await phone.check("input[name=methods][value='实地检查']")
    await phone.set_input_files("input[name=attachments]", str(photo))
    await phone.click("text=提交检查结果")
    await phone.wait_for_selector("text=结果已提交")
    done_text = await phone.inner_text("body")
    widths.append(await shoot(phone, "3-result-submitted"))

    await phone.goto(review_url)
    await phone.wait_for_selector("img")
    photo_width = await phone.evaluate("document.querySelector('img').naturalWidth")
    widths.append(await shoot(phone, "4-review"))
    small = await small_taps(phone, "ul.files a")
    await phone.fill("textarea[name=reason]", "请补充年报代理机构的回执照片")
    await phone.click("text=退回检查组")
    await phone.wait_for_selector("text=已退回检查组")
    widths.append(await shoot(phone, "5-returned"))

    await phone.goto(form_url)
    reopened = await phone.inner_text("body")
    widths.append(await shoot(phone, "6-result-reopened"))

    assert "请至少选择一种检查方式" in error_text
    assert kept == remark and still_ticked
    assert "结果已提交" in done_text and "现场照片.jpg" in done_text
    assert photo_width == 800  # the reviewer's page shows the uploaded photo itself
    assert small == []  # each attachment link is a fingertip's tap area
    assert "审核退回：请补充年报代理机构的回执照片" in reopened and "保留：现场照片.jpg" in reopened
    assert max(widths) <= 375 and foreign == []  # no CDN: every request stays on the app
    async with sessionmaker() as session:
        state = await session.scalar(select(Case.state))
        names = list(await session.scalars(select(Attachment.name)))
    assert (state, names) == ("returned", ["现场照片.jpg"])


CASE = "LJ-2026-001-001"  # build_world's case


@dataclass(frozen=True)
class Site:
    """The app served on loopback: its address, and a signed link moved to it from the public
    address the link names."""

    base: str
    public: str

    def local(self, url: str) -> str:
        return url.replace(self.public, self.base)


async def serve_site(aiohttp_server: Any, services: Services) -> Site:
    server = await aiohttp_server(create_app(services, workers=()))
    return Site(str(server.make_url("/")).rstrip("/"), services.public_base_url)


async def _documents_link(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, aiohttp_server: Any
) -> tuple[str, str]:
    """An inspector's link to the documents of the world's task on a served app, and the
    app's address."""
    async with sessionmaker() as session:
        w = await build_world(session)
        await session.commit()
    services = make_services(sessionmaker, clock)
    site = await serve_site(aiohttp_server, services)
    return site.local(page_link(services, w.a2.id, "documents", f"task:{w.task.code}")), site.base


async def test_document_links_are_buttons_and_the_print_view_prints(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, aiohttp_server, phone: Any
) -> None:
    """WeCom's and DingTalk's in-app browsers have no print menu: the document prints from its
    own button, which is not printed."""
    url, base = await _documents_link(sessionmaker, clock, aiohttp_server)
    foreign = foreign_requests(phone, base)
    await phone.goto(url)
    await shoot(phone, "documents")
    small = await small_taps(phone, "main a")
    await phone.click("a:has-text('网页') >> nth=0")
    await phone.wait_for_selector("text=联合抽查通知书")
    # the in-app browser's print dialog is not driven by a test: record the call
    await phone.evaluate("window.print = () => { window.printed = true; }")
    button = phone.locator("button:has-text('打印')")
    await button.click()
    printed = await phone.evaluate("window.printed === true")
    await phone.emulate_media(media="print")
    on_paper = await button.is_visible()
    assert small == []
    assert printed and not on_paper and foreign == []


LONG_URL = "https://example.com/" + "a1b2c3d4e5" * 23  # a pasted link: 250 characters, no break


async def test_long_text_wraps_and_every_control_is_a_fingertips_tap_at_375px(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    aiohttp_server,
    tmp_path: Path,
    phone: Any,
) -> None:
    """谁检查、谁录入 (000 §九–十): 卫健委's inspector enters its part first, pasting a long link
    into 发现的问题, 处理情况 and 备注; the page after the submit (部分录入) shows the part as
    stored — methods, follow-up and remark — as the link opened afresh does. No page is wider
    than the phone with that text: the form, the lead's form listing 卫健委's part, the review
    page. Every checkbox row and select is a fingertip's tap area."""
    clock.set(china_noon(TODAY))
    async with sessionmaker() as session:
        w = await build_world(session)
        await session.commit()
    services = make_services(sessionmaker, clock, attachments={"dir": str(tmp_path / "files")})
    local = (await serve_site(aiohttp_server, services)).local
    lead_item, other_item = (i.id for i in w.items)
    widths: dict[str, int] = {}
    await phone.goto(local(result_link(services, w.b1.id, w.case.id)))
    await phone.fill("input[name=inspected_on]", "2026-03-05")
    await phone.check("input[name=methods][value='书面检查']")
    await phone.check(f"input[name='item.{other_item}.codes'][value='E']")
    await phone.fill(f"textarea[name='item.{other_item}.problems']", LONG_URL)
    await phone.fill(f"textarea[name='item.{other_item}.handling']", LONG_URL)
    await phone.check("input[name=followups][value='责令改正并跟踪']")
    await phone.fill("textarea[name=remarks]", LONG_URL)
    await phone.click("text=提交检查结果")
    await phone.wait_for_selector("text=本部门事项的结果已录入")
    widths["b-entered"] = await shoot(phone, "long-1-part-entered")
    ticked = await phone.eval_on_selector_all(
        "input[type=checkbox]:checked", "els => els.map(e => e.name + '=' + e.value)"
    )
    remark = await phone.input_value("textarea[name=remarks]")
    small = await small_taps(phone, "label.check, label.field select, input[type=file]")

    await phone.goto(local(result_link(services, w.a1.id, w.case.id)))
    widths["a-form"] = await shoot(phone, "long-2-lead-form")
    assert max(widths.values()) <= 375, widths  # a wider page is not for tapping
    await phone.fill("input[name=inspected_on]", "2026-03-05")
    await phone.check("input[name=methods][value='实地检查']")
    await phone.check(f"input[name='item.{lead_item}.codes'][value='1']")
    await phone.check("input[name=followups][value='无需后续处置']")
    await phone.click("text=提交检查结果")
    await phone.wait_for_selector("text=结果已提交")
    widths["a-submitted"] = await shoot(phone, "long-3-submitted")

    await phone.goto(local(review_link(services, w.lead_liaison.id, w.case.id)))
    widths["review"] = await shoot(phone, "long-4-review")
    small += await small_taps(phone, "label.field select, button")

    assert sorted(ticked) == [
        "followups=责令改正并跟踪",
        f"item.{other_item}.codes=E",
        "methods=书面检查",
    ]
    assert remark == LONG_URL
    assert small == []
    assert max(widths.values()) <= 375, widths


async def test_the_record_and_the_notice_read_on_a_375px_phone(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, aiohttp_server, phone: Any
) -> None:
    """The 检查记录表's seven item columns were squeezed to a character each on a phone: each
    item's cells now stack as labelled lines as wide as the screen (检查内容 included, filled
    from the item list), and neither document is wider than the phone."""
    url, _ = await _documents_link(sessionmaker, clock, aiohttp_server)
    found: dict[str, Any] = {}
    for doc in ("record", "notice"):
        await phone.goto(f"{url}&case={CASE}&doc={doc}&fmt=html")
        found[doc] = await shoot(phone, f"document-{doc}")
    await phone.goto(f"{url}&case={CASE}&doc=record&fmt=html")
    widths = await phone.eval_on_selector_all(
        ".items td", "els => els.map(e => e.getBoundingClientRect().width)"
    )
    cell = ".items td[data-label='检查内容'] >> nth=0"
    content = await phone.inner_text(cell)
    label = await phone.locator(cell).evaluate("e => getComputedStyle(e, '::before').content")
    assert found["record"] <= 375 and found["notice"] <= 375
    assert widths and min(widths) >= 300, widths
    assert "检查内容" in label and "企业公示信息检查" in content


# how many lines `text` takes on the page, wherever it is written (a Range over its characters)
LINES_OF = """text => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.data.indexOf(text);
    if (at < 0) continue;
    const range = document.createRange();
    range.setStart(node, at);
    range.setEnd(node, at + text.length);
    found.push(new Set([...range.getClientRects()].map(r => Math.round(r.top))).size);
  }
  return found;
}"""


async def test_the_documents_never_split_an_id_at_375px(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, aiohttp_server, phone: Any
) -> None:
    """On a phone the documents' cells wrap anywhere (a long pasted text must not widen the
    page), and a group member's 执法证号 broke in the middle of the number: each 执法证号, the
    统一社会信用代码 and the case's number stay on one line, and still no page is wider than
    the phone."""
    url, _ = await _documents_link(sessionmaker, clock, aiohttp_server)
    certs = ["33042420190301234567", "ZJ330424-2026-000123", "33042420210045678901"]
    async with sessionmaker() as session:
        for officer, cert in zip(await session.scalars(select(Officer)), certs * 9, strict=False):
            officer.cert_no = cert
        await session.commit()
    split: dict[str, list[int]] = {}
    widths: dict[str, int] = {}
    for doc in ("notice", "record"):
        await phone.goto(f"{url}&case={CASE}&doc={doc}&fmt=html")
        widths[doc] = await shoot(phone, f"document-ids-{doc}")
        for text in [*certs, "91330424MA28AQAQXU", CASE]:
            lines = await phone.evaluate(LINES_OF, text)
            if not lines or max(lines) != 1:
                split[f"{doc} {text}"] = lines
    assert split == {} and max(widths.values()) <= 375, (split, widths)


async def test_the_correction_form_shows_the_published_photos_on_a_375px_phone_004_art20(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    w: World,
    aiohttp_server: Any,
    tmp_path: Path,
    phone: Any,
) -> None:
    """004 第二十条: the corrector sees the published result's two photos themselves on the
    correction page (they were broken images: the result form's file route refused the
    correction link), and the page stays within the phone's width."""
    services = make_services(sessionmaker, clock, attachments={"dir": str(tmp_path / "files")})
    await with_photos(
        sessionmaker, clock, file_store(services), (w.a1, "现场1.jpg"), (w.a1, "现场2.jpg")
    )
    site = await serve_site(aiohttp_server, services)
    url = page_link(services, w.lead_liaison.id, "correction", f"case:{w.case.id}")
    foreign = foreign_requests(phone, site.base)
    await phone.goto(site.local(url))
    width = await shoot(phone, "correction-photos")  # a full-page shot loads lazy images
    # polled from here: wait_for_function would compile its string in the page, which the
    # pages' CSP forbids
    for _ in range(50):
        if await phone.evaluate("[...document.images].every(i => i.complete)"):
            break
        await asyncio.sleep(0.1)
    shown = await phone.evaluate(
        "[...document.querySelectorAll('ul.files img')].map(i => i.naturalWidth)"
    )
    assert shown == [400, 401]  # 0 for an image the server refused
    assert width <= 375 and foreign == []


async def test_a_form_overtaken_by_another_tab_reads_on_a_375px_phone(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    aiohttp_server,
    tmp_path: Path,
    phone: Any,
) -> None:
    """The phone's form is opened; another tab enters the part (未发现问题); the phone then
    submits a problem with a long pasted link. The page says the result was updated elsewhere,
    shows the stored 未发现问题 in the form and the unsaved typing above it, within 375 px."""
    clock.set(china_noon(TODAY))
    async with sessionmaker() as session:
        w = await build_world(session)
        await session.commit()
    services = make_services(sessionmaker, clock, attachments={"dir": str(tmp_path / "files")})
    site = await serve_site(aiohttp_server, services)
    link = result_link(services, w.a1.id, w.case.id)
    item = w.items[0].id
    await phone.goto(site.local(link))
    await phone.fill("input[name=inspected_on]", "2026-03-05")
    await phone.check("input[name=methods][value='实地检查']")
    await phone.check(f"input[name='item.{item}.codes'][value='E']")
    await phone.fill(f"textarea[name='item.{item}.problems']", LONG_URL)
    await phone.check("input[name=followups][value='责令改正并跟踪']")

    other_tab = fields(link.split("?t=", 1)[1], item, base="0")
    async with (
        ClientSession() as http,
        http.post(f"{site.base}{RESULT_PATH}", data=other_tab) as resp,
    ):
        assert resp.status == 200

    await phone.click("text=提交检查结果")
    await phone.wait_for_selector("text=该结果已在其他页面或聊天中更新")
    width = await shoot(phone, "overtaken-form")
    unsaved = await phone.inner_text("section.error")
    ticked = await phone.eval_on_selector_all(
        f"input[name='item.{item}.codes']:checked", "els => els.map(e => e.value)"
    )
    assert LONG_URL in unsaved and "责令改正并跟踪" in unsaved
    assert ticked == ["1"]
    assert width <= 375, width
