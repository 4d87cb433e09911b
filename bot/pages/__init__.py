"""Web pages the bot serves besides platform callbacks and the simulator.

One module per page: it parses the HTTP request into the handler's typed input and names the
handler (handlers/), which calls core and renders the template; `base.SignedPages` verifies
the signed link and runs the handler in one transaction.
"""

from __future__ import annotations

from aiohttp import web

from bot.pages import documents, image, invitation, public, result, review
from bot.pages.base import respond
from bot.services import Services
from core.errors import NotFound
from handlers.pages import denied

NO_SUCH_PAGE = "没有这个页面，请检查网址。"


def routes(services: Services) -> list[web.RouteDef]:
    return (
        invitation.routes(services)
        + documents.routes(services)
        + result.routes(services)
        + review.routes(services)
        + public.routes(services)
        + image.routes(services)
    )


def missing_pages() -> list[web.RouteDef]:
    """Any other address under the public side or the phone pages (a mistyped or truncated
    link) gets the Chinese page saying where to go, not aiohttp's English "404: Not Found";
    so does any other address at all, and the bare host (the address `serve` logs) opens the
    public side. No pages themselves: the app registers them after every other route, so the
    router tries them only when nothing else matched."""

    async def front(request: web.Request) -> web.Response:
        raise web.HTTPFound("/public/")

    async def public_missing(request: web.Request) -> web.Response:
        await refuse_other_methods(request)
        return public.not_found(NO_SUCH_PAGE)

    async def page_missing(request: web.Request) -> web.Response:
        await refuse_other_methods(request)
        return respond(denied(NotFound(NO_SUCH_PAGE)))

    return [
        web.get("/public/{tail:.*}", public_missing),
        web.get("/h5/{tail:.*}", page_missing),
        web.get("/", front),
        web.get("/{tail:.*}", public_missing),
    ]


async def refuse_other_methods(request: web.Request) -> None:
    """405, naming the methods, for an address a route before the catch-all takes by another
    method (a POST-only API opened in a browser): the router hands such a GET to the catch-all,
    which would call the address missing."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is request.match_info.route.resource:
            break  # the catch-alls come last: only the routes before this one are real
        allowed |= (await resource.resolve(request))[1]
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
