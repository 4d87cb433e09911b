"""Serving web pages: reading the HTTP form, verifying the signed link, one transaction around
the page handler, and the response headers every page carries.

A page module parses its request into typed input and names its handler; `SignedPages.serve`
does the rest, so no page module touches the database or renders a template itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable
from typing import Any

import yarl
from aiohttp import BodyPartReader, web
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


def csrf_token(secret: bytes, link_token: str) -> str:
    """A form's CSRF token, bound to its signed link: another site can neither read nor compute
    it, and a token seen elsewhere is useless without its own link."""
    mac = hmac.new(secret, b"lianjian-csrf\x00" + link_token.encode("ascii", "replace"),
                   hashlib.sha256)
    return mac.hexdigest()[:32]


def csrf_ok(secret: bytes, link_token: str, given: str) -> bool:
    return hmac.compare_digest(given.encode("ascii", "replace"),
                               csrf_token(secret, link_token).encode())


async def read_fields(request: web.Request, public_base_url: str, max_text_bytes: int,
                      max_fields: int = 1000) -> dict[str, list[str]]:
    """The posted text fields of a multipart (or url-encoded) form of our own site, read as a
    stream within `max_text_bytes` together (client_max_size does not bound multipart)."""
    if not same_site(request, public_base_url):
        raise PermissionDenied("拒绝来自其他网站的提交。")
    if request.content_type == "application/x-www-form-urlencoded":
        post = await read_form(request, public_base_url, max_text_bytes)
        pairs = [(k, v) for k, v in post.items() if isinstance(v, str)]
    elif request.content_type == "multipart/form-data":
        pairs = await _multipart_fields(request, max_text_bytes)
    else:
        raise web.HTTPUnsupportedMediaType(text="请通过页面上的表单提交。")
    if len(pairs) > max_fields:
        raise web.HTTPBadRequest(text="提交的字段过多，请刷新页面后重新填写。")
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return fields


async def _multipart_fields(request: web.Request, budget: int) -> list[tuple[str, str]]:
    reader = await request.multipart()
    pairs: list[tuple[str, str]] = []
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.filename is not None:
            raise web.HTTPBadRequest(text="此页面不接收附件。")
        data = bytearray()
        while chunk := await part.read_chunk():
            data += chunk
            if len(data) > budget:
                raise web.HTTPRequestEntityTooLarge(budget, len(data))
        budget -= len(data)
        pairs.append((part.name or "", data.decode("utf-8", "replace")))
    return pairs


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
                       officer=officer, token=token,
                       csrf=csrf_token(services.link_secret, token)), int(ident)
