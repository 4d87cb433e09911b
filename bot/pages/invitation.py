"""The invitation answer page that DingTalk action-card buttons open (`/h5/invitation`):
signed links to it, and its HTTP form. handlers/invitation_page.py does the rest."""

from __future__ import annotations

import datetime as dt
from functools import partial

from aiohttp import web

from bot.pages.base import DB_ID, BadRequest, SignedPages, read_post, respond
from bot.services import Services
from core.cards import InvitationAction, unpack_action
from core.errors import DomainError
from core.links import link_url, sign_link
from core.rules import REASON_MAX_CHARS
from handlers import invitation_page
from handlers.pages import denied, first

INVITATION_PATH = "/h5/invitation"
OBJECT = "invitation"
RESPOND = "respond"
# Long enough to cover the reply deadline (5 working days can span a week-long holiday);
# an answer after the deadline is refused by the core, not by the link.
INVITATION_LINK_TTL = dt.timedelta(days=14)
MAX_FORM_BYTES = 32 * 1024  # a reason of 2,000 Chinese characters (18 KiB url-encoded), tokens
MAX_REASON_CHARS = REASON_MAX_CHARS  # the field's maxlength; core refuses a longer one


def invitation_link(services: Services, officer_id: int, invitation_id: int) -> str:
    """The signed URL of the answer page for this officer and invitation (for card buttons)."""
    expires_at = int((services.clock.now() + INVITATION_LINK_TTL).timestamp())
    token = sign_link(
        services.link_secret, officer_id, f"{OBJECT}:{invitation_id}", RESPOND, expires_at
    )
    return link_url(services.public_base_url, INVITATION_PATH, token)


def action_link(services: Services, officer_id: int, action_key: str) -> str:
    """A signed page that does what a card button's callback would, for platforms whose
    buttons only open URLs (DingTalk); "" when no page serves that action."""
    try:
        action = unpack_action(action_key)
    except DomainError:
        return ""
    if isinstance(action, InvitationAction):
        return invitation_link(services, officer_id, action.invitation_id)
    return ""


def parse_answer(raw: dict[str, list[str]]) -> invitation_page.AnswerForm:
    raw_ids = raw.get("items", [])
    if not all(DB_ID.fullmatch(v) for v in raw_ids):
        # str.isdigit() admits "²" and unbounded digit strings, on which int() raises
        raise BadRequest("提交的抽查事项编号无效，请刷新页面后重新勾选提交。")
    return invitation_page.AnswerForm(
        action=first(raw, "action"),
        item_ids={int(v) for v in raw_ids},
        reason=first(raw, "reason"),  # core checks it (a longer one refused, not cut)
    )


def routes(services: Services) -> list[web.RouteDef]:
    pages = SignedPages(services)

    async def show(request: web.Request) -> web.Response:
        return await pages.serve(request.query.get("t", ""), OBJECT, RESPOND, invitation_page.show)

    async def submit(request: web.Request) -> web.Response:
        try:
            post = await read_post(services, request, MAX_FORM_BYTES)
        except DomainError as err:  # another site's post: refused before its link is read
            return respond(denied(err, RESPOND))
        handler = partial(invitation_page.submit, form=parse_answer(post.raw))
        return await pages.serve_post(post, OBJECT, RESPOND, handler)

    return [web.get(INVITATION_PATH, show), web.post(INVITATION_PATH, submit)]
