"""The public side in headless Chromium at 375 px: the results search finds a published result
with its correction, and the recompute button of a draw page (the browser's own WebCrypto)
passes every check on the published pool (also saved again with CRLF line ends or a BOM) and
fails visibly on a tampered pool file (004 第四条: 全程留痕、责任可溯; the draw is public).
The browser, its requirements and the screenshot artifacts: tests/browser.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from core.changes import Ctx
from core.clock import FixedClock
from core.draws.verify import pool_csv_text
from core.models import Draw
from tests.browser import (  # noqa: F401 (db_url: fixture)
    db_url,
    foreign_requests,
    page_width,
    shoot,
    small_taps,
)
from tests.case_factories import build_world
from tests.server_helpers import make_services
from tests.test_public import _locked_task, publish_and_correct


async def _run(page, label: str) -> str:
    # the previous run's verdict would otherwise answer the wait at once
    await page.evaluate("document.getElementById('verify').removeAttribute('data-result')")
    await page.click("#recompute")
    await page.wait_for_selector("#verify[data-result]", timeout=60_000)
    await shoot(page, f"draw-{label}")
    return await page.inner_text("#verify")


async def test_recompute_in_the_browser_passes_and_catches_a_tampered_pool(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    aiohttp_server,
    tmp_path: Path,
    phone: Any,
) -> None:
    services = make_services(sessionmaker, clock)
    async with sessionmaker() as session:
        code = await _locked_task(Ctx(session=session, clock=clock), session)
        draw = await session.scalar(select(Draw).where(Draw.code == code))
        assert draw is not None
        pool = await pool_csv_text(Ctx(session=session, clock=clock), draw.id)
    chosen = draw.selection[0]
    tampered = tmp_path / "tampered.csv"  # a selected candidate swapped for another one
    tampered.write_text(pool.replace(f"{chosen},", "91330424000000000X,", 1), encoding="utf-8")
    # the pool file saved again on Windows: CRLF line ends, with and without a BOM
    windows = {"crlf": pool.replace("\n", "\r\n").encode()}
    windows["bom"] = b"\xef\xbb\xbf" + windows["crlf"]
    for label, saved in windows.items():
        (tmp_path / f"{label}.csv").write_bytes(saved)
    server = await aiohttp_server(create_app(services, workers=()))

    foreign = foreign_requests(phone, str(server.make_url("/")).rstrip("/"))
    await phone.goto(str(server.make_url("/public/?year=2026")))
    small = await small_taps(phone, "main a, main button, main select")
    await phone.goto(str(server.make_url(f"/public/draws/{code}")))
    # the download links (the value's and the record's and pool's beside the recipe, once
    # links inside a sentence ~19 px tall), the list's toggle, the file input and the button
    small += await small_taps(phone, "dd a, a[download], summary, input, button")
    passed = await _run(phone, "verified")
    overflow = await page_width(phone)
    await phone.set_input_files("#pool-file", str(tampered))
    failed = await _run(phone, "tampered")
    result = await phone.get_attribute("#verify", "data-result")
    resaved = {}
    for label in windows:
        await phone.set_input_files("#pool-file", str(tmp_path / f"{label}.csv"))
        resaved[label] = await _run(phone, f"saved-{label}")

    for check in (
        "✓ 抽取范围哈希：一致",
        "✓ 抽取范围数量：一致",
        "✓ 种子承诺值：一致",
        "✓ 信标值",
        "✓ 抽取结果",
        "验证通过",
    ):
        assert check in passed, check
    assert "✗" not in passed and overflow <= 375 and foreign == []
    assert small == []  # each link, toggle and control is a fingertip's tap area
    for check in (
        "✗ 抽取范围哈希：记录值",
        "✗ 抽取结果：锁定 2 个，复算 2 个，不一致",
        "验证未通过",
    ):
        assert check in failed, check
    assert result == "fail"
    for label, shown in resaved.items():
        assert "✓ 抽取范围哈希：一致" in shown and "验证通过" in shown and "✗" not in shown, label


async def test_search_finds_the_published_result_on_a_phone(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    aiohttp_server,
    tmp_path: Path,
    phone: Any,
) -> None:
    async with sessionmaker() as session:
        await publish_and_correct(Ctx(session=session, clock=clock), await build_world(session))
    server = await aiohttp_server(create_app(make_services(sessionmaker, clock), workers=()))
    foreign = foreign_requests(phone, str(server.make_url("/")).rstrip("/"))
    await phone.goto(str(server.make_url("/public/")))
    small = await small_taps(phone, "nav.pubnav a")
    await phone.click("text=检查结果查询")
    await phone.fill("#q", "某某食品")
    await phone.fill("#year", "2026")
    await phone.click("button:has-text('查询')")
    await phone.wait_for_selector("section.result")
    overflow = await shoot(phone, "public-search")
    body = await phone.inner_text("main")
    small += await small_taps(phone, "main a, main button")
    await phone.goto(str(server.make_url("/public/results?q=某某食品&page=999")))
    await phone.wait_for_selector("#past-end")
    small += await small_taps(phone, "#past-end a")
    assert "嘉善县某某食品有限公司" in body and "91330424MA28AQAQXU" in body
    assert "第 2 版（更正）" in body and "原公示结果（已更正）" in body
    assert "张检查" not in body and overflow <= 375 and foreign == []
    assert small == []  # the navigation, the search and the way back to page 1: a fingertip's
