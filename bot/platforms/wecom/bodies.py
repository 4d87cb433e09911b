"""WeCom outgoing bodies (app messages, button cards, group robot) and call results."""

from __future__ import annotations

from typing import Any

from bot.platforms.base import (
    TRANSIENT_RETRY_S,
    SendResult,
    card_markdown,
    plain_text,
    titled,
    truncate_utf8,
)
from bot.platforms.wecom.media import (
    inline_picture,
)
from bot.platforms.wecom.protocol import (
    APP_MARKDOWN_MAX_BYTES,
    BUTTON_STYLE,
    CARD_MAX_BUTTONS,
    CARD_MAX_FIELDS,
    RATE_LIMIT_RETRY_S,
    RATE_LIMITED,
    SYSTEM_BUSY,
    TEXT_MAX_BYTES,
    WEBHOOK_GONE,
    WEBHOOK_MARKDOWN_MAX_BYTES,
)
from core.messages import Card, OutMessage


def clip(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def app_body(msg: OutMessage) -> dict[str, Any]:
    """The msgtype part of an app message (message/send)."""
    if msg.kind == "text":
        return {"msgtype": "text", "text": {"content": truncate_utf8(msg.body, TEXT_MAX_BYTES)}}
    card = msg.card
    if msg.kind == "card" and card is not None:
        if card.task_id and any(b.action_key for b in card.buttons):
            return {"msgtype": "template_card", "template_card": button_card(card)}
        content = card_markdown(card)
    else:
        content = titled(msg)
    return {
        "msgtype": "markdown",
        "markdown": {"content": truncate_utf8(content, APP_MARKDOWN_MAX_BYTES)},
    }


def button_card(card: Card) -> dict[str, Any]:
    """An interactive button_interaction template card; clicks come back as card events."""
    buttons: list[dict[str, Any]] = []
    for b in card.buttons[:CARD_MAX_BUTTONS]:
        button: dict[str, Any] = {"text": b.label, "style": BUTTON_STYLE[b.style]}
        if b.action_key:
            button["key"] = b.action_key
        elif b.url:
            button.update(type=1, url=b.url)  # type 1 opens a URL instead of calling back
        else:
            continue
        buttons.append(button)
    shown, rest = card.fields[:CARD_MAX_FIELDS], card.fields[CARD_MAX_FIELDS:]
    # shown as typed: our markdown would show its ** and backticks
    sub_title = "\n".join(
        [plain_text(card.description), *(f"{f.name}：{f.value}" for f in rest)]
    ).strip()
    template: dict[str, Any] = {
        "card_type": "button_interaction",
        "main_title": {"title": clip(card.title, 26)},
        "task_id": card.task_id,
        "button_list": buttons,
    }
    if sub_title:
        template["sub_title_text"] = clip(sub_title, 112)
    if shown:
        template["horizontal_content_list"] = [
            {"keyname": clip(f.name, 5), "value": f.value} for f in shown
        ]
    return template


def webhook_body(msg: OutMessage, mentions: list[str]) -> dict[str, Any]:
    """Group robot payload. Webhook cards cannot call back, so cards become markdown + links;
    a picture goes inline as Base64 with the MD5 of its bytes (no mentions on images)."""
    if msg.kind == "image" and msg.image is not None:
        return {"msgtype": "image", "image": inline_picture(msg.image.data)}
    if msg.kind == "text":
        text: dict[str, Any] = {"content": truncate_utf8(msg.body, TEXT_MAX_BYTES)}
        if mentions:
            text["mentioned_list"] = mentions
        return {"msgtype": "text", "text": text}
    content = card_markdown(msg.card) if msg.kind == "card" and msg.card else titled(msg)
    # mentions go after the truncation so a long message still notifies the people in it
    suffix = ("\n" + " ".join(f"<@{u}>" for u in mentions)) if mentions else ""
    content = truncate_utf8(content, WEBHOOK_MARKDOWN_MAX_BYTES - len(suffix.encode())) + suffix
    return {"msgtype": "markdown", "markdown": {"content": content}}


def wecom_result(data: dict[str, Any]) -> SendResult:
    code = data.get("errcode")
    detail = str(data.get("errmsg", ""))
    if code == 0:
        return SendResult(True)
    if code == RATE_LIMITED:
        return SendResult(False, RATE_LIMIT_RETRY_S, code=str(code), detail=detail)
    if code in WEBHOOK_GONE:
        return SendResult(False, permanent=True, code=str(code), detail=detail)
    if code == SYSTEM_BUSY:
        return SendResult(False, TRANSIENT_RETRY_S, code=str(code), detail=detail)
    return SendResult(False, code=str(code), detail=detail)
