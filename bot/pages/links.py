"""Turns the page references core puts into messages (`core.links.page_ref`) into links signed
for the officer a copy is delivered to. A copy for a group, the office or anyone unknown keeps
only the label: a signed link is a personal credential and must never land in a group chat."""

from __future__ import annotations

import datetime as dt
import re

from bot.services import Services
from core.links import PAGE_REF_SCHEME, link_url, sign_link
from core.messages import Destination, OutMessage

# action in a page reference -> (path of the page, how long the link stays valid)
PAGES: dict[str, tuple[str, dt.timedelta]] = {
    # documents are needed until the visit, anywhere in a task window of a few months
    "documents": ("/h5/documents", dt.timedelta(days=120)),
    # results are due 20 working days after the inspection, which may come late in the window
    "result": ("/h5/result", dt.timedelta(days=90)),
    # a correction is due within 5 working days of the re-check (004 第二十条); a month is ample
    "correction": ("/h5/correction", dt.timedelta(days=30)),
    # review is due within review_workdays; a month covers holidays and a resubmission
    "review": ("/h5/review", dt.timedelta(days=30)),
    # a picture (the summary chart) DingTalk shows from our link: a leader scrolls back weeks
    "image": ("/h5/image", dt.timedelta(days=30)),
}
_REF = re.compile(
    r"\[([^\]\n]*)\]\(" + re.escape(PAGE_REF_SCHEME) + r"([a-z_]+)/([A-Za-z0-9:_.-]{1,80})\)"
)


def page_link(services: Services, officer_id: int, action: str, obj: str) -> str:
    path, ttl = PAGES[action]
    expires_at = int((services.clock.now() + ttl).timestamp())
    token = sign_link(services.link_secret, officer_id, obj, action, expires_at)
    return link_url(services.public_base_url, path, token)


def expand_text(services: Services, officer_id: int | None, text: str) -> str:
    def one(match: re.Match[str]) -> str:
        label, action, obj = match.groups()
        if officer_id is None or action not in PAGES:
            return label
        return f"[{label}]({page_link(services, officer_id, action, obj)})"

    return _REF.sub(one, text) if PAGE_REF_SCHEME in text else text


def recipient(dest: Destination) -> int | None:
    """The one officer a copy reaches privately, if any."""
    return dest.officer_id if dest.kind in ("officer", "chat") else None


def expand(services: Services, officer_id: int | None, msg: OutMessage) -> OutMessage:
    if msg.image is not None and officer_id is not None and not msg.image.url:
        url = page_link(services, officer_id, "image", image_obj(msg.image.sha256))
        msg = msg.model_copy(update={"image": msg.image.model_copy(update={"url": url})})
    if PAGE_REF_SCHEME not in msg.body:
        return msg
    return msg.model_copy(update={"body": expand_text(services, officer_id, msg.body)})


def image_obj(sha256: str) -> str:
    """The object an image link is signed for."""
    return f"image:{sha256}"
