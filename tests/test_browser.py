"""A real phone-sized browser answers an invitation on the signed-link page.

Screenshots of every browser test are kept as test artifacts in test-artifacts/browser/
(git-ignored; LIANJIAN_ARTIFACTS overrides the directory).

Needs Debian's chromium and fonts-wqy-microhei (`apt-get install -y chromium fonts-wqy-microhei`)
and the playwright package; without them the test skips and says why. Playwright's own browser
download is never used (it fails offline): the system chromium is launched directly.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.config import Settings
from bot.pages.invitation import INVITATION_PATH, invitation_link
from bot.services import Services
from core.changes import Ctx
from core.clock import FixedClock
from core.consultation import opening
from core.models import Invitation
from core.rules import Rules
from tests import factories

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

ARTIFACTS = Path(os.environ.get("LIANJIAN_ARTIFACTS", "test-artifacts")) / "browser"

_MISSING = f"browser test needs {CHROMIUM}: apt-get install -y chromium fonts-wqy-microhei"
if os.environ.get("LIANJIAN_REQUIRE_BROWSER"):  # CI: a missing browser is a failure, not a skip
    from playwright import async_api as async_api  # imported by the other browser tests

    assert shutil.which(CHROMIUM), _MISSING
else:
    async_api = pytest.importorskip(
        "playwright.async_api", reason="browser test needs the [test] extra (playwright)"
    )
    if shutil.which(CHROMIUM) is None:
        pytest.skip(_MISSING, allow_module_level=True)


async def phone_page(browser: async_api.Browser) -> async_api.Page:
    """A page on a 375 px phone screen, as an inspector in the field holds it."""
    return await browser.new_page(
        viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True
    )


TAP_MIN_PX = 44  # the smallest comfortable touch target (WCAG 2.5.5, Apple HIG)


async def small_taps(page: Any, selector: str) -> list[str]:
    """The elements matching `selector` shorter than a fingertip's tap area, with their
    heights (nothing on a phone page should need a precise tap)."""
    found: list[str] = await page.eval_on_selector_all(
        selector,
        f"els => els.filter(e => e.getBoundingClientRect().height < {TAP_MIN_PX})"
        ".map(e => `${e.textContent.trim()} ${e.getBoundingClientRect().height}px`)",
    )
    return found


def shot_path(name: str) -> Path:
    """Where a screenshot is kept as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"


def foreign_requests(page: Any, base: str) -> list[str]:
    """Every request the page makes from now on that leaves the app (filled in as they happen):
    the pages load no CDN, all CSS and JS is served by the app itself."""
    found: list[str] = []

    def seen(request: Any) -> None:
        if not request.url.startswith((base, "data:", "blob:")):
            found.append(request.url)

    page.on("request", seen)
    return found


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only: the page under test is the same on both databases (test_web covers both)."""
    path = tmp_path / "browser.sqlite3"
    shutil.copy(sqlite_template, path)
    return str(path)


async def test_decline_with_reason_on_a_375px_page(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    aiohttp_server,
    tmp_path: Path,
) -> None:
    services = Services(
        settings=Settings(),
        sessionmaker=sessionmaker,
        clock=clock,
        rules=Rules(),
        link_secret=b"b" * 32,
        public_base_url="http://127.0.0.1",
    )
    async with sessionmaker() as session:
        w = await factories.world(session, partners=1, inspectors=1, n_targets=0)
        ctx = Ctx(session=session, clock=clock, rules=services.rules)
        task = await factories.draft_task(ctx, w)
        [inv] = await opening.open_consultation(
            factories.as_actor(ctx, w.lead.liaison), task, [w.partners[0].dep.id]
        )
        await session.commit()
    server = await aiohttp_server(create_app(services, workers=()))
    token = invitation_link(services, w.partners[0].liaison.id, inv.id).split("?t=", 1)[1]
    url = str(server.make_url(INVITATION_PATH).with_query(t=token))
    reason = "本部门四月集中开展专项整治，执法人员全部抽调，无法参加本次联合抽查。"

    async with async_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await phone_page(browser)
            foreign = foreign_requests(page, str(server.make_url("/")).rstrip("/"))
            await page.goto(url)
            await page.screenshot(path=shot_path("invitation"), full_page=True)
            await page.fill("textarea[name=reason]", reason)
            await page.click("text=拒绝并提交理由")
            await page.wait_for_selector("text=已记录")
            await page.screenshot(path=shot_path("invitation-declined"), full_page=True)
            body = await page.inner_text("body")
            # nothing on the page is wider than the phone
            overflow = await page.evaluate("document.documentElement.scrollWidth")
        finally:
            await browser.close()

    assert "已记录" in body and reason in body and "已答复" in body
    assert overflow <= 375 and foreign == []
    assert shot_path("invitation-declined").stat().st_size > 10_000
    async with sessionmaker() as session:
        row = await session.get(Invitation, inv.id)
        assert row is not None and (row.state, row.reason) == ("declined", reason)
