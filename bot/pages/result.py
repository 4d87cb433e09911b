"""The result form of one case (`/h5/result`) and the correction form of its published result
(`/h5/correction`, the same form in correction mode): signed links to it, and its HTTP form.
handlers/forms.py does the rest."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from aiohttp import web

from bot.config import attachments_dir
from bot.pages.base import DB_ID, BadRequest, FileLimits, SignedPages, read_post, respond
from bot.pages.links import PAGES, page_link
from bot.services import Services
from core.attachments import FileStore, Limits
from core.errors import DomainError
from handlers import forms
from handlers.forms import FILES
from handlers.pages import Page, PageCtx, denied

OBJECT = "case"
RESULT = "result"
RESULT_PATH = PAGES[RESULT][0]
CORRECTION = "correction"
CORRECTION_PATH = PAGES[CORRECTION][0]
MAX_TEXT_BYTES = 256 * 1024  # every text field together (items × 2,000 characters each)


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
        raise BadRequest("附件编号无效。")
    return int(value)


# (the page's context, the case id, the attachment id, the files) -> the file or a refusal
FileHandler = Callable[[PageCtx, int, int, FileStore], Awaitable[Page]]


def file_route(services: Services, path: str, action: str, handler: FileHandler) -> web.RouteDef:
    """GET `path?t=…&a=…`: one attachment of the case, opened with the link of the page that
    shows it (`action`): the handler checks the officer may see the case as that page does."""
    pages, store = SignedPages(services), file_store(services)

    async def file(request: web.Request) -> web.Response:
        wanted = attachment_id(request)

        async def served(pc: PageCtx, case_id: int) -> Page:
            return await handler(pc, case_id, wanted, store)

        return await pages.serve(request.query.get("t", ""), OBJECT, action, served)

    return web.get(path, file)


def routes(services: Services) -> list[web.RouteDef]:
    pages = SignedPages(services)
    limits = _limits(services)
    store = file_store(services)
    upload_limits = FileLimits(FILES, limits.max_file_bytes, limits.max_files)

    async def show(request: web.Request) -> web.Response:
        return await pages.serve(
            request.query.get("t", ""), OBJECT, RESULT, partial(forms.result_form, limits=limits)
        )

    async def submit(request: web.Request) -> web.Response:
        try:
            post = await read_post(services, request, MAX_TEXT_BYTES, upload_limits)
        except DomainError as err:  # another site's post: refused before its link is read
            return respond(denied(err, RESULT))
        handler = partial(
            forms.submit_result_form, raw=post.raw, files=forms.Files(post.uploads, store, limits)
        )
        return await pages.serve_post(post, OBJECT, RESULT, handler)

    async def show_correction(request: web.Request) -> web.Response:
        return await pages.serve(
            request.query.get("t", ""), OBJECT, CORRECTION, forms.correction_form
        )

    async def submit_correction(request: web.Request) -> web.Response:
        try:
            post = await read_post(services, request, MAX_TEXT_BYTES)
        except DomainError as err:
            return respond(denied(err, CORRECTION))
        handler = partial(forms.submit_correction_form, raw=post.raw)
        return await pages.serve_post(post, OBJECT, CORRECTION, handler)

    return [
        web.get(RESULT_PATH, show),
        web.post(RESULT_PATH, submit),
        file_route(services, forms.RESULT_FILE_PATH, RESULT, forms.result_file),
        web.get(CORRECTION_PATH, show_correction),
        web.post(CORRECTION_PATH, submit_correction),
        file_route(services, forms.CORRECTION_FILE_PATH, CORRECTION, forms.correction_file),
    ]
