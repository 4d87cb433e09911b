"""What the browser tests share: Debian's chromium, headless through playwright, on a 375 px
phone screen (the `phone` fixture in conftest.py), and the checks they make of a page.

Screenshots of every browser test are kept as test artifacts in test-artifacts/browser/
(git-ignored; LIANJIAN_ARTIFACTS overrides the directory).

Needs Debian's chromium and fonts-wqy-microhei (`apt-get install -y chromium fonts-wqy-microhei`)
and the playwright package; without them a browser test skips and says why, unless
LIANJIAN_REQUIRE_BROWSER is set (CI), where it fails. Playwright's own browser download is never
used (it fails offline): the system chromium is launched directly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE_WIDTH, PHONE_HEIGHT = 375, 740
TAP_MIN_PX = 44  # the smallest comfortable touch target (WCAG 2.5.5, Apple HIG)

ARTIFACTS = Path(os.environ.get("LIANJIAN_ARTIFACTS", "test-artifacts")) / "browser"

_MISSING = f"browser test needs {CHROMIUM}: apt-get install -y chromium fonts-wqy-microhei"


def _playwright() -> Any:
    """playwright.async_api; the test skips without it or the browser, or fails on CI."""
    if os.environ.get("LIANJIAN_REQUIRE_BROWSER"):  # CI: a missing browser is a failure, not a skip
        from playwright import async_api

        assert shutil.which(CHROMIUM), _MISSING
        return async_api
    async_api = pytest.importorskip(
        "playwright.async_api", reason="browser test needs the [test] extra (playwright)"
    )
    if shutil.which(CHROMIUM) is None:
        pytest.skip(_MISSING)
    return async_api


@asynccontextmanager
async def phone_page() -> AsyncIterator[Any]:
    """A page of a fresh headless chromium on a 375 px phone screen, as an inspector in the
    field holds it; the browser is closed afterwards."""
    async with _playwright().async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield await browser.new_page(
                viewport={"width": PHONE_WIDTH, "height": PHONE_HEIGHT},
                device_scale_factor=2,
                is_mobile=True,
            )
        finally:
            await browser.close()


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


async def page_width(page: Any) -> int:
    """How wide the page is laid out (nothing may be wider than the phone)."""
    return int(await page.evaluate("document.documentElement.scrollWidth"))


async def shoot(page: Any, name: str) -> int:
    """Save a full-page screenshot as a test artifact; the page's width."""
    await page.screenshot(path=shot_path(name), full_page=True)
    return await page_width(page)


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
def db_url(sqlite_url: str) -> str:
    """SQLite only, for a module that imports it: the pages are the same on both databases (the
    HTTP tests cover both)."""
    return sqlite_url
