"""Serving web pages: reading the HTTP form, verifying the signed link, one transaction around
the page handler, and the response headers every page carries.

A page module parses its request into typed input and names its handler; `SignedPages.serve`
does the rest, so no page module touches the database or renders a template itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote

import yarl
from aiohttp import BodyPartReader, web
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import Services
from core import access, officers, sqlite_async
from core import audit as audit_log
from core.attachments import Upload
from core.errors import DomainError, PermissionDenied
from core.links import MISMATCH, LinkClaims, verify_link
from core.messages import encodable_text
from core.render import templates_dir
from handlers.pages import Page, PageCtx, Typed, denied, first, typed_text

DB_ID = re.compile(r"[0-9]{1,9}")  # form and link ids: ASCII digits that fit the int column

# The token is in the page URL: keep it out of Referer headers to other sites and out of caches.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


class OwnWords:
    """Marks a refusal raised by us whose text is Chinese words for the person: the error
    page (bot/pages/errors.py) shows those and no other refusal's text, which may carry what
    the request sent."""


class BadRequest(OwnWords, web.HTTPBadRequest):
    def __init__(self, text: str) -> None:
        super().__init__(text=text, content_type="text/plain")


class NotAForm(OwnWords, web.HTTPUnsupportedMediaType):
    def __init__(self, text: str) -> None:
        super().__init__(text=text, content_type="text/plain")


# (the page's context, the id of the object the link is bound to) -> the page
PageHandler = Callable[[PageCtx, int], Awaitable[Page]]


def respond(page: Page) -> web.Response:
    if page.file is not None:
        return _file_response(page)
    return web.Response(
        text=page.html,
        status=page.status,
        content_type="text/html",
        charset="utf-8",
        headers=PAGE_HEADERS,
    )


def _file_response(page: Page) -> web.Response:
    """An uploaded file: images shown inline, anything else downloaded; a sandbox CSP so
    nothing in it can run as our site."""
    inline = page.mime.startswith("image/")
    disposition = f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(page.filename)}"
    headers = {
        **PAGE_HEADERS,
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Content-Disposition": disposition,
    }
    return web.Response(body=page.file, status=page.status, content_type=page.mime, headers=headers)


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


async def read_form(
    request: web.Request, public_base_url: str, max_bytes: int
) -> MultiDictProxy[Any]:
    """The posted url-encoded form of our own site; HTTP errors for what no page of ours posts."""
    if not same_site(request, public_base_url):
        raise PermissionDenied("拒绝来自其他网站的提交。")
    if request.content_length is None:
        raise web.HTTPLengthRequired()
    if request.content_length > max_bytes:
        raise web.HTTPRequestEntityTooLarge(max_bytes, request.content_length)
    if request.content_type != "application/x-www-form-urlencoded":
        raise web.HTTPUnsupportedMediaType()
    try:
        return await request.post()
    except UnicodeDecodeError:  # our pages post UTF-8; anything else was not typed into them
        raise BadRequest("提交的内容不是有效的 UTF-8 文本，请在页面上重新填写后提交。") from None


def csrf_token(secret: bytes, link_token: str) -> str:
    """A form's CSRF token, bound to its signed link: another site can neither read nor compute
    it, and a token seen elsewhere is useless without its own link."""
    mac = hmac.new(
        secret, b"lianjian-csrf\x00" + link_token.encode("ascii", "replace"), hashlib.sha256
    )
    return mac.hexdigest()[:32]


def csrf_ok(secret: bytes, link_token: str, given: str) -> bool:
    return hmac.compare_digest(
        given.encode("ascii", "replace"), csrf_token(secret, link_token).encode()
    )


@dataclass(frozen=True)
class FileLimits:
    field: str  # the form field that carries files
    max_file_bytes: int
    max_files: int


async def read_fields(
    request: web.Request,
    public_base_url: str,
    max_text_bytes: int,
    files: FileLimits | None = None,
    max_fields: int = 1000,
) -> tuple[dict[str, list[str]], list[Upload]]:
    """The posted text fields and files of a multipart (or url-encoded) form of our own site,
    read as a stream (client_max_size does not bound multipart): text within
    `max_text_bytes` together, files as `files` allows. A file over its size limit comes back
    with its real size and no data, so the page can say so next to the field and keep the text;
    a body far beyond every limit is cut off with 413."""
    if not same_site(request, public_base_url):
        raise PermissionDenied("拒绝来自其他网站的提交。")
    uploads: list[Upload] = []
    if request.content_type == "application/x-www-form-urlencoded":
        post = await read_form(request, public_base_url, max_text_bytes)
        pairs = [(k, v) for k, v in post.items() if isinstance(v, str)]
    elif request.content_type == "multipart/form-data":
        pairs, uploads = await _multipart(request, max_text_bytes, files)
    else:
        raise NotAForm("请通过页面上的表单提交。")
    if len(pairs) > max_fields:
        raise BadRequest("提交的字段过多，请刷新页面后重新填写。")
    fields: dict[str, list[str]] = {}
    for name, value in pairs:  # NUL and lone surrogates cannot be stored (PostgreSQL) or sent
        # a browser posts a textarea's line break as CR LF but counted it as one character
        # toward the maxlength the page shows: read back as typed, so the limits agree
        text = encodable_text(value).replace("\r\n", "\n")
        fields.setdefault(encodable_text(name), []).append(text)
    return fields, uploads


def static_script(path: str, headers: dict[str, str]) -> web.RouteDef:
    """Our own script in templates/web (no CDN), read once, served as is at `path` (named
    after the file)."""
    text = (templates_dir() / "web" / path.rsplit("/", 1)[1]).read_text(encoding="utf-8")

    async def script(request: web.Request) -> web.Response:
        return web.Response(
            text=text, content_type="text/javascript", charset="utf-8", headers=headers
        )

    return web.get(path, script)


STALE_FORM = "页面已失效，请从聊天中的链接重新打开后再提交。"


@dataclass(frozen=True)
class Posted:
    raw: dict[str, list[str]]  # the text fields but the link token and the CSRF token
    uploads: list[Upload]
    token: str
    refusal: PermissionDenied | None  # a stale form (its CSRF token is not its link's)


async def read_post(
    services: Services,
    request: web.Request,
    max_text_bytes: int,
    files: FileLimits | None = None,
) -> Posted:
    """A form post of our own site (`read_fields`), its link token and CSRF check taken out
    (DomainError: another site's, refused before its link is read)."""
    raw, uploads = await read_fields(request, services.public_base_url, max_text_bytes, files)
    token, given = first(raw, "t"), first(raw, "csrf")
    raw.pop("t", None)
    raw.pop("csrf", None)
    stale = not csrf_ok(services.link_secret, token, given)
    return Posted(raw, uploads, token, PermissionDenied(STALE_FORM) if stale else None)


async def _read_part(part: BodyPartReader, limit: int) -> tuple[bytes, int]:
    """The part's bytes up to `limit` (b"" beyond it) and its real size."""
    data, size = bytearray(), 0
    while chunk := await part.read_chunk():
        size += len(chunk)
        if size <= limit:
            data += chunk
    return (bytes(data) if size <= limit else b""), size


async def _multipart(
    request: web.Request, budget: int, files: FileLimits | None
) -> tuple[list[tuple[str, str]], list[Upload]]:
    reader = await request.multipart()
    pairs: list[tuple[str, str]] = []
    uploads: list[Upload] = []
    # at most one file beyond the allowed count is read, to say "too many" instead of failing
    hard_cap = budget + (files.max_file_bytes * (files.max_files + 1) if files else 0)
    total = 0
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise BadRequest("无法读取提交的表单。")
        if part.filename is None:
            data, size = await _read_part(part, budget)
            if size > budget:
                raise web.HTTPRequestEntityTooLarge(budget, size)
            budget -= size
            pairs.append((part.name or "", data.decode("utf-8", "replace")))
        elif files is None or part.name != files.field:
            raise BadRequest("此页面不接收附件。")
        else:
            data, size = await _read_part(part, files.max_file_bytes)
            if size:  # a file input left empty still posts a part with no bytes
                uploads.append(Upload(part.filename, data, size))
        total += size
        if total > hard_cap:
            raise web.HTTPRequestEntityTooLarge(hard_cap, total)
    return pairs, uploads


class SignedPages:
    """Pages whose link token is the credential: it names the officer, the object and the
    action, and expires."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def serve(
        self,
        token: str,
        obj_kind: str,
        action: str,
        handler: PageHandler,
        *,
        write: bool = False,
        refusal: PermissionDenied | None = None,
        typed: Typed = (),
    ) -> web.Response:
        """Verify the token, run the handler in one transaction and commit; a refusal before
        or outside the handler's own checks becomes the denied page. `write` (a form post)
        queues the transaction behind the other writers on SQLite (Services.write_gate),
        which would otherwise refuse a concurrent one with "database is locked". A page that
        only reads is not queued (WAL lets it read beside a writer), until it writes the audit
        row of a refusal: it takes the gate then (core.audit.WRITER), before the chain head is
        read, and keeps it to its commit; two refusals side by side took the same audit id
        (the correction page's photos, each refused). A page's statements are small: on
        SQLite they run on the loop's thread (sqlite_async.inline).

        Every refusal of an officer the genuine link names is audited through
        access.denials_on_record, as in chat: a link for another page or object, a
        deactivated holder, the handler's own denials, and `refusal` (the form the route
        refused before the page ran: a stale form). A forged or expired link names nobody we
        can trust: refused, not audited. `typed`: a post's free text, shown back when the link
        expired while the form was open."""
        with sqlite_async.inline():
            return await self._serve(token, obj_kind, action, handler, refusal, write, typed)

    async def serve_post(
        self, post: Posted, obj_kind: str, action: str, handler: PageHandler
    ) -> web.Response:
        """`serve` for a form post read by `read_post`: a writing transaction, a stale form
        refused, the typed text handed back if the link expired meanwhile."""
        return await self.serve(
            post.token,
            obj_kind,
            action,
            handler,
            write=True,
            refusal=post.refusal,
            typed=typed_text(post.raw),
        )

    async def _serve(
        self,
        token: str,
        obj_kind: str,
        action: str,
        handler: PageHandler,
        refusal: PermissionDenied | None,
        write: bool,
        typed: Typed,
    ) -> web.Response:
        async with contextlib.AsyncExitStack() as held, self.services.sessionmaker() as session:
            # released after the session ends, so the gate covers the commit
            gate = partial(held.enter_async_context, self.services.write_gate())
            if write or refusal:
                await gate()
            else:
                session.info[audit_log.WRITER] = gate
            try:
                claims = verify_link(
                    self.services.link_secret, token, self.services.clock.now().timestamp()
                )
                audit = self.services.core_ctx(session)
                named = await officers.named(audit, claims.officer_id)
                audit.actor = named
                # only a form post writes: a read-only page has nothing to undo; a post's
                # handler is all the transaction writes, undone whole on an error
                async with access.denials_on_record(
                    audit,
                    action=f"page.{action}" if named else "",
                    subject=claims.obj,
                    savepoint=False,
                    whole=write,
                ):
                    if refusal is not None:
                        raise refusal
                    ctx, ident = await self._authorise(session, token, claims, obj_kind, action)
                    page = await handler(ctx, ident)
                await session.commit()
            except PermissionDenied as err:
                await session.commit()  # only the denial's audit row is left to keep
                page = denied(err, action, typed)
            except DomainError as err:
                page = denied(err, action)
        return respond(page)

    async def _authorise(
        self, session: AsyncSession, token: str, claims: LinkClaims, obj_kind: str, action: str
    ) -> tuple[PageCtx, int]:
        services = self.services
        kind, _, ident = claims.obj.partition(":")
        if claims.action != action or kind != obj_kind or not DB_ID.fullmatch(ident):
            raise PermissionDenied(MISMATCH)
        officer = await officers.link_holder(services.core_ctx(session), claims.officer_id)
        return PageCtx(
            session=session,
            clock=services.clock,
            rules=services.rules,
            officer=officer,
            token=token,
            csrf=csrf_token(services.link_secret, token),
        ), int(ident)
