"""HTTP side of the public pages (no login): /public/, /public/results, /public/draws/<code>
(with its JSON, pool file and the recompute script). Bad input gets a Chinese page, never a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from urllib.parse import quote

from aiohttp import web

from bot.pages.base import static_script
from bot.services import Services
from core.changes import Ctx
from core.errors import DomainError
from core.render import render
from handlers import public

# Our own script only (no CDN); it fetches the draw's JSON and pool file from this site.
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
}
SCRIPT = "draw_verify.js"
DRAW_CODE = "[A-Za-z0-9-]+"
DrawPage = Callable[[Ctx, str], Awaitable[web.Response]]


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(
        text=text, status=status, content_type="text/html", charset="utf-8", headers=HEADERS
    )


def _download(name: str) -> dict[str, str]:
    """Saved under `name` (the page's recipe opens the files by these names), not shown; the
    page's own script still fetches it."""
    return {**HEADERS, "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}


def not_found(message: str) -> web.Response:
    return _html(render("web/public_missing.html", message=message), 404)


def routes(services: Services) -> list[web.RouteDef]:
    async def index(request: web.Request) -> web.Response:
        async with services.sessionmaker() as session:
            return _html(
                await public.index_page(services.core_ctx(session), request.query.get("year", ""))
            )

    async def results(request: web.Request) -> web.Response:
        q = request.query
        raw = public.RawQuery(q=q.get("q", ""), year=q.get("year", ""), page=q.get("page", ""))
        async with services.sessionmaker() as session:
            return _html(await public.results_page(services.core_ctx(session), raw))

    async def _draw(request: web.Request, page: DrawPage) -> web.Response:
        async with services.sessionmaker() as session:
            try:
                return await page(services.core_ctx(session), request.match_info["code"])
            except DomainError as err:
                return not_found(err.message)

    async def draw_html(ctx: Ctx, code: str) -> web.Response:
        return _html(await public.draw_page(ctx, code))

    async def draw_json(ctx: Ctx, code: str) -> web.Response:
        name, data = await public.draw_json(ctx, code)
        return web.json_response(data, headers=_download(name))

    async def draw_pool(ctx: Ctx, code: str) -> web.Response:
        name, text = await public.draw_pool(ctx, code)
        return web.Response(
            text=text, content_type="text/csv", charset="utf-8", headers=_download(name)
        )

    return [
        web.get("/public/", index),
        web.get("/public", index),
        web.get("/public/results", results),
        static_script(f"/public/static/{SCRIPT}", HEADERS),
        *(
            web.get(f"/public/draws/{{code:{DRAW_CODE}}}{suffix}", partial(_draw, page=page))
            for suffix, page in (("", draw_html), (".json", draw_json), ("/pool.csv", draw_pool))
        ),
    ]
