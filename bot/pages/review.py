"""The review page of one case (`/h5/review`) and its attachments: signed links, HTTP form.
handlers/review_page.py does the rest."""

from __future__ import annotations

from functools import partial

from aiohttp import web

from bot.pages.base import SignedPages, read_post, respond
from bot.pages.links import page_link
from bot.pages.result import file_route
from bot.services import Services
from core.errors import DomainError
from handlers import review_page
from handlers.pages import denied

OBJECT = "case"
REVIEW = "review"
MAX_FORM_BYTES = 32 * 1024  # a reason of 2,000 Chinese characters and the two tokens


def review_link(services: Services, officer_id: int, case_id: int) -> str:
    """The signed review page of one case for one liaison or leader."""
    return page_link(services, officer_id, REVIEW, f"{OBJECT}:{case_id}")


def routes(services: Services) -> list[web.RouteDef]:
    pages = SignedPages(services)

    async def show(request: web.Request) -> web.Response:
        return await pages.serve(
            request.query.get("t", ""), OBJECT, REVIEW, review_page.review_page
        )

    async def submit(request: web.Request) -> web.Response:
        try:
            post = await read_post(services, request, MAX_FORM_BYTES)
        except DomainError as err:  # another site's post: refused before its link is read
            return respond(denied(err, REVIEW))
        handler = partial(review_page.submit_review, raw=post.raw)
        return await pages.serve_post(post, OBJECT, REVIEW, handler)

    return [
        web.get(review_page.REVIEW_PATH, show),
        web.post(review_page.REVIEW_PATH, submit),
        file_route(services, review_page.REVIEW_FILE_PATH, REVIEW, review_page.review_file),
    ]
