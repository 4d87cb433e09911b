"""Serving web pages: reading the HTTP form, verifying the signed link, one transaction around
the page handler, and the response headers every page carries.

A page module parses its request into typed input and names its handler; `SignedPages.serve`
does the rest, so no page module touches the database or renders a template itself.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import yarl
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import Services
from core import officers
from core.errors import DomainError, PermissionDenied
from core.links import MISMATCH, verify_link
from handlers.pages import Page, PageCtx, denied

DB_ID = re.compile(r"[0-9]{1,9}")  # form and link ids: ASCII digits that fit the int column

# The token is in the page URL: keep it out of Referer headers to other sites and out of caches.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
}

# (the page's context, the id of the object the link is bound to) -> the page
PageHandler = Callable[[PageCtx, int], Awaitable[Page]]


def respond(page: Page) -> web.Response:
    return web.Response(text=page.html, status=page.status, content_type="text/html",
                        charset="utf-8", headers=PAGE_HEADERS)


def same_site(request: web.Request, public_base_url: str) -> bool:
    """False when Origin (or, without it, Referer) names another host than ours.

    Absent headers are allowed: some in-app WebViews send neither, and the token itself is the
    credential, so this check only narrows cross-site form posts, it does not authorise.
    """
    origin = request.headers.get("Origin", "")
    source = origin if origin and origin != "null" else request.headers.get("Referer", "")
    if not source:
        return True
    host = yarl.URL(source).host
    ours = {request.url.host, yarl.URL(public_base_url).host}
    return host is not None and host.lower() in {h.lower() for h in ours if h}


async def read_form(request: web.Request, public_base_url: str,
                    max_bytes: int) -> MultiDictProxy[Any]:
    """The posted url-encoded form of our own site; HTTP errors for what no page of ours posts."""
    if not same_site(request, public_base_url):
        raise PermissionDenied("拒绝来自其他网站的提交。")
    if request.content_length is None:
        raise web.HTTPLengthRequired()
    if request.content_length > max_bytes:
        raise web.HTTPRequestEntityTooLarge(max_bytes, request.content_length)
    if request.content_type != "application/x-www-form-urlencoded":
        raise web.HTTPUnsupportedMediaType()
    return await request.post()


def form_text(post: MultiDictProxy[Any], name: str) -> str:
    value = post.get(name, "")
    return value if isinstance(value, str) else ""


class SignedPages:
    """Pages whose link token is the credential: it names the officer, the object and the
    action, and expires."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def serve(self, token: str, obj_kind: str, action: str,
                    handler: PageHandler) -> web.Response:
        """Verify the token, run the handler in one transaction and commit; a refusal before
        or outside the handler's own checks becomes the denied page."""
        async with self.services.sessionmaker() as session:
            try:
                ctx, ident = await self._authorise(session, token, obj_kind, action)
                page = await handler(ctx, ident)
                await session.commit()
            except DomainError as err:
                page = denied(err)
        return respond(page)

    async def _authorise(self, session: AsyncSession, token: str, obj_kind: str,
                         action: str) -> tuple[PageCtx, int]:
        services = self.services
        claims = verify_link(services.link_secret, token, services.clock.now().timestamp(),
                             action=action)
        kind, _, ident = claims.obj.partition(":")
        if kind != obj_kind or not DB_ID.fullmatch(ident):
            raise PermissionDenied(MISMATCH)
        officer = await officers.link_holder(services.core_ctx(session), claims.officer_id)
        return PageCtx(session=session, clock=services.clock, rules=services.rules,
                       officer=officer, token=token), int(ident)
