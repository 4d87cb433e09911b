"""The review page of one case (`/h5/review`) and its attachments: signed links, HTTP form.
handlers/review_page.py does the rest."""

from __future__ import annotations

from functools import partial

from aiohttp import web

from bot.pages.base import SignedPages, csrf_ok, read_fields, respond
from bot.pages.links import page_link
from bot.pages.result import STALE_FORM, attachment_id, file_store
from bot.services import Services
from core.errors import DomainError, PermissionDenied
from handlers import review_page
from handlers.pages import denied, typed_text

OBJECT = "case"
REVIEW = "review"
MAX_FORM_BYTES = 32 * 1024  # a reason of 2,000 Chinese characters and the two tokens


def review_link(services: Services, officer_id: int, case_id: int) -> str:
    """The signed review page of one case for one liaison or leader."""
    return page_link(services, officer_id, REVIEW, f"{OBJECT}:{case_id}")


def routes(services: Services) -> list[web.RouteDef]:
    pages = SignedPages(services)
    store = file_store(services)

    async def show(request: web.Request) -> web.Response:
        return await pages.serve(
            request.query.get("t", ""), OBJECT, REVIEW, review_page.review_page
        )

    async def file(request: web.Request) -> web.Response:
        handler = partial(
            review_page.review_file, attachment_id=attachment_id(request), store=store
        )
        return await pages.serve(request.query.get("t", ""), OBJECT, REVIEW, handler)

    async def submit(request: web.Request) -> web.Response:
        try:
            raw, _ = await read_fields(request, services.public_base_url, MAX_FORM_BYTES)
            token = (raw.pop("t", None) or [""])[0]
        except DomainError as err:  # another site's post: refused before its link is read
            return respond(denied(err, REVIEW))
        stale = not csrf_ok(services.link_secret, token, (raw.pop("csrf", None) or [""])[0])
        return await pages.serve(
            token,
            OBJECT,
            REVIEW,
            partial(review_page.submit_review, raw=raw),
            write=True,
            refusal=PermissionDenied(STALE_FORM) if stale else None,
            typed=typed_text(raw),
        )

    return [
        web.get(review_page.REVIEW_PATH, show),
        web.post(review_page.REVIEW_PATH, submit),
        web.get(review_page.REVIEW_FILE_PATH, file),
    ]
