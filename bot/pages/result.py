"""The result form of one case (`/h5/result`) and the correction form of its published result
(`/h5/correction`, the same form in correction mode): signed links to it, and its HTTP form.
handlers/forms.py does the rest."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from aiohttp import web

from bot.config import attachments_dir
from bot.pages.base import (
    DB_ID,
    FileLimits,
    PageHandler,
    SignedPages,
    csrf_ok,
    read_fields,
    respond,
)
from bot.pages.links import PAGES, page_link
from bot.services import Services
from core.attachments import FileStore, Limits, Upload
from core.errors import DomainError, PermissionDenied
from handlers import forms
from handlers.forms import FILES
from handlers.pages import denied, typed_text

OBJECT = "case"
RESULT = "result"
RESULT_PATH = PAGES[RESULT][0]
CORRECTION = "correction"
CORRECTION_PATH = PAGES[CORRECTION][0]
MAX_TEXT_BYTES = 256 * 1024  # every text field together (items × 2,000 characters each)
STALE_FORM = "页面已失效，请从聊天中的链接重新打开后再提交。"


def result_link(services: Services, officer_id: int, case_id: int) -> str:
    """The signed result form of one case for one group member."""
    return page_link(services, officer_id, RESULT, f"{OBJECT}:{case_id}")


def file_store(services: Services) -> FileStore:
    return FileStore(attachments_dir(services.settings))


def _limits(services: Services) -> Limits:
    cfg = services.settings.attachments
    return Limits(cfg.max_file_bytes, cfg.max_files, cfg.max_image_pixels)


def attachment_id(request: web.Request) -> int:
    value = request.query.get("a", "")
    if not DB_ID.fullmatch(value):
        raise web.HTTPBadRequest(text="附件编号无效。")
    return int(value)


def routes(services: Services) -> list[web.RouteDef]:
    pages = SignedPages(services)
    store, limits = file_store(services), _limits(services)
    upload_limits = FileLimits(FILES, limits.max_file_bytes, limits.max_files)

    async def serve_post(post: Posted, action: str, handler: PageHandler) -> web.Response:
        return await pages.serve(
            post.token,
            OBJECT,
            action,
            handler,
            write=True,
            refusal=post.refusal,
            typed=typed_text(post.raw),
        )

    async def show(request: web.Request) -> web.Response:
        return await pages.serve(
            request.query.get("t", ""), OBJECT, RESULT, partial(forms.result_form, limits=limits)
        )

    async def file(request: web.Request) -> web.Response:
        handler = partial(forms.result_file, attachment_id=attachment_id(request), store=store)
        return await pages.serve(request.query.get("t", ""), OBJECT, RESULT, handler)

    async def submit(request: web.Request) -> web.Response:
        try:
            post = await _posted(services, request, upload_limits)
        except DomainError as err:  # another site's post: refused before its link is read
            return respond(denied(err, RESULT))
        handler = partial(
            forms.submit_result_form, raw=post.raw, files=forms.Files(post.uploads, store, limits)
        )
        return await serve_post(post, RESULT, handler)

    async def show_correction(request: web.Request) -> web.Response:
        return await pages.serve(
            request.query.get("t", ""), OBJECT, CORRECTION, forms.correction_form
        )

    async def submit_correction(request: web.Request) -> web.Response:
        try:
            post = await _posted(services, request, None)
        except DomainError as err:
            return respond(denied(err, CORRECTION))
        handler = partial(forms.submit_correction_form, raw=post.raw)
        return await serve_post(post, CORRECTION, handler)

    return [
        web.get(RESULT_PATH, show),
        web.post(RESULT_PATH, submit),
        web.get(forms.RESULT_FILE_PATH, file),
        web.get(CORRECTION_PATH, show_correction),
        web.post(CORRECTION_PATH, submit_correction),
    ]


@dataclass(frozen=True)
class Posted:
    raw: forms.RawForm  # the text fields but the link token and the CSRF token
    uploads: list[Upload]
    token: str
    refusal: PermissionDenied | None  # a stale form (its CSRF token is not its link's)


async def _posted(
    services: Services, request: web.Request, upload_limits: FileLimits | None
) -> Posted:
    """A form post of our own site, read with its link token and CSRF check (DomainError:
    another site's, refused before its link is read)."""
    raw, uploads = await read_fields(
        request, services.public_base_url, MAX_TEXT_BYTES, upload_limits
    )
    token = (raw.pop("t", None) or [""])[0]
    stale = not csrf_ok(services.link_secret, token, (raw.pop("csrf", None) or [""])[0])
    return Posted(raw, uploads, token, PermissionDenied(STALE_FORM) if stale else None)
