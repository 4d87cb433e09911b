"""What the AI bot sends: stream, markdown and template-card bodies, and card updates."""

from __future__ import annotations

import secrets
from typing import Any

from bot.platforms.base import card_markdown, titled, truncate_utf8
from bot.platforms.wecom import button_card, clip, inline_picture
from core.images import png_size
from core.messages import Button, Card, OutMessage

STREAM_MAX_BYTES = 20480  # stream and markdown content
PICTURE_MAX_BYTES = 10 * 1024 * 1024  # a stream's msg_item image, before Base64
CARD_IMAGE_RATIOS = (1.3, 2.25)  # news_notice card_image.aspect_ratio: width / height


def markdown_of(msg: OutMessage) -> str:
    if msg.kind == "text":
        return msg.body
    if msg.card is not None:
        return card_markdown(msg.card)
    if msg.kind == "image":  # where the picture cannot ride along: our signed link to it
        url = msg.image.url if msg.image is not None else ""
        return f"**{msg.title}**\n" + (f"[查看图表]({url})" if url else "（图表无法在此显示）")
    return titled(msg)


def inline(msg: OutMessage) -> bytes | None:
    """The picture's bytes when it can go inside a stream (msg_item: JPG/PNG ≤ 10 MB)."""
    data = msg.image.data if msg.kind == "image" and msg.image is not None else b""
    return data if 0 < len(data) <= PICTURE_MAX_BYTES else None


def stream_body(msg: OutMessage) -> dict[str, Any]:
    """A whole answer as one finished stream (the reply type a message callback takes); a
    picture rides in it as msg_item, which only the finishing frame may carry (Base64 + MD5,
    as the group robot takes it), under its title."""
    stream: dict[str, Any] = {"id": secrets.token_hex(8), "finish": True}
    if (picture := inline(msg)) is not None:
        stream["content"] = truncate_utf8(f"**{msg.title}**", STREAM_MAX_BYTES)
        stream["msg_item"] = [{"msgtype": "image", "image": inline_picture(picture)}]
    else:
        stream["content"] = truncate_utf8(markdown_of(msg), STREAM_MAX_BYTES)
    return {"msgtype": "stream", "stream": stream}


def picture_card(msg: OutMessage) -> dict[str, Any] | None:
    """A picture where only a card can show one (a response_url in a single chat): a
    news_notice whose card_image WeCom loads from our signed link, opening it full size when
    tapped. None without a link."""
    if msg.image is None or not msg.image.url:
        return None
    url = msg.image.url
    title, _, detail = msg.title.partition(" ")
    main_title = {"title": clip(title, 26)} | ({"desc": clip(detail, 30)} if detail else {})
    size = png_size(msg.image.data)
    low, high = CARD_IMAGE_RATIOS
    ratio = min(max(size[0] / size[1], low), high) if size and size[1] else low
    return {
        "card_type": "news_notice",
        "main_title": main_title,
        "card_image": {"url": url, "aspect_ratio": round(ratio, 2)},
        "jump_list": [{"type": 1, "title": "查看原图", "url": url}],
        "card_action": {"type": 1, "url": url},
    }


def markdown_body(msg: OutMessage) -> dict[str, Any]:
    return {
        "msgtype": "markdown",
        "markdown": {"content": truncate_utf8(markdown_of(msg), STREAM_MAX_BYTES)},
    }


def push_body(msg: OutMessage) -> dict[str, Any]:
    """A proactive message: cards with callback buttons as template cards, the rest markdown."""
    card = msg.card
    if (
        msg.kind == "card"
        and card is not None
        and card.task_id
        and any(b.action_key for b in card.buttons)
    ):
        return {"msgtype": "template_card", "template_card": button_card(card)}
    return markdown_body(msg)


def update_card_body(parts: dict[str, str], msg: OutMessage) -> dict[str, Any]:
    """update_template_card for the clicked card: same task_id, the answer shown, its one
    button greyed with who answered (the key calls nothing)."""
    answered = (msg.card.answered if msg.card else "") or msg.body
    card = Card(
        title=msg.card.title if msg.card else answered,
        description=answered,
        task_id=parts.get("k", ""),
        buttons=[Button(label=answered[:10], action_key="answered")],
    )
    template = button_card(card)
    template["button_list"][0]["style"] = 2
    return {
        "response_type": "update_template_card",
        "userids": [parts["u"]],
        "template_card": template,
    }
