"""The result form of one case (`/h5/result`): signed links to it, and its HTTP form.
handlers/forms.py does the rest."""

from __future__ import annotations

from functools import partial

from aiohttp import web

from bot.pages.base import SignedPages, csrf_ok, read_fields, respond
from bot.pages.links import PAGES, page_link
from bot.services import Services
from core.errors import DomainError, PermissionDenied
from handlers import forms
from handlers.pages import denied

OBJECT = "case"
RESULT = "result"
RESULT_PATH = PAGES[RESULT][0]
MAX_TEXT_BYTES = 256 * 1024  # every text field together (items × 2,000 characters each)
STALE_FORM = "页面已失效，请从聊天中的链接重新打开后再提交。"


def result_link(services: Services, officer_id: int, case_id: int) -> str:
    """The signed result form of one case for one group member."""
    return page_link(services, officer_id, RESULT, f"{OBJECT}:{case_id}")


def routes(services: Services) -> list[web.RouteDef]:
    pages = SignedPages(services)

    async def show(request: web.Request) -> web.Response:
        return await pages.serve(request.query.get("t", ""), OBJECT, RESULT, forms.result_form)

    async def submit(request: web.Request) -> web.Response:
        try:
            raw = await read_fields(request, services.public_base_url, MAX_TEXT_BYTES)
            token = (raw.pop("t", None) or [""])[0]
            if not csrf_ok(services.link_secret, token, (raw.pop("csrf", None) or [""])[0]):
                raise PermissionDenied(STALE_FORM)
        except DomainError as err:
            return respond(denied(err))
        return await pages.serve(token, OBJECT, RESULT,
                                 partial(forms.submit_result_form, raw=raw))

    return [web.get(RESULT_PATH, show), web.post(RESULT_PATH, submit)]
