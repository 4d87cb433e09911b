"""DingTalk outgoing message bodies (robot, OpenAPI templates, cards) and call results."""

from __future__ import annotations

from typing import Any

from bot.platforms.base import (
    TRANSIENT_RETRY_S,
    SendResult,
    card_markdown,
    titled,
    truncate_utf8,
)
from bot.platforms.dingtalk.protocol import (
    MAX_BYTES,
    MAX_CARD_BUTTONS,
    NEWLINE,
    OPENAPI_THROTTLE_RETRY_S,
    ROBOT_GONE,
    THROTTLE_RETRY_S,
    THROTTLED,
)
from core.messages import Button, Card, OutMessage


def _mention_suffix(mentions: list[str]) -> str:
    return "".join(f" @{u}" for u in mentions)


def robot_body(msg: OutMessage, mentions: list[str]) -> dict[str, Any]:
    """Custom-robot / session-webhook payload. Mentions
    need both `@id` in the text and at.atUserIds."""
    at = {"at": {"atUserIds": mentions}} if mentions else {}
    suffix = _mention_suffix(mentions)
    if msg.kind == "text":
        content = truncate_utf8(msg.body, MAX_BYTES - len(suffix.encode())) + suffix
        return {"msgtype": "text", "text": {"content": content}, **at}
    if msg.kind == "image":
        markdown = {"title": notification_title(msg), "text": picture_markdown(msg)}
        return {"msgtype": "markdown", "markdown": markdown, **at}
    card = msg.card if msg.kind == "card" else None
    if card is not None and url_buttons(card):
        buttons = url_buttons(card)
        action_card = {
            "title": card.title,
            "text": truncate_utf8(card_markdown(card, NEWLINE, with_links=False), MAX_BYTES),
            "btns": [{"title": b.label, "actionURL": b.url} for b in buttons],
            # two buttons (accept / decline) side by side; more stack vertically
            "btnOrientation": "1" if len(buttons) <= 2 else "0",
        }
        return {"msgtype": "actionCard", "actionCard": action_card, **at}
    text = card_markdown(card, NEWLINE) if card is not None else titled(msg, NEWLINE)
    markdown = {
        "title": notification_title(msg),
        "text": truncate_utf8(text, MAX_BYTES - len(suffix.encode())) + suffix,
    }
    return {"msgtype": "markdown", "markdown": markdown, **at}


def picture_markdown(msg: OutMessage) -> str:
    """DingTalk takes no picture bytes from a robot: its markdown shows one from a URL, here
    our signed, expiring image page. A copy without a link (a group's) says where to look."""
    title = msg.title or "图表"
    url = msg.image.url if msg.image is not None else ""
    if not url:
        return f"**{title}**{NEWLINE}（图表仅在私聊中显示）"
    return f"**{title}**{NEWLINE}![{title}]({url})"


def url_buttons(card: Card) -> list[Button]:
    """Buttons DingTalk can show: only those that open a URL (no callback reaches the bot)."""
    return [b for b in card.buttons if b.url]


def notification_title(msg: OutMessage) -> str:
    """markdown.title is what the conversation list and notification show."""
    if msg.card is not None and msg.card.title:
        return msg.card.title
    return msg.title or msg.body.strip().split("\n", 1)[0][:20] or "通知"


def oto_template(msg: OutMessage) -> tuple[str, dict[str, str]]:
    """OpenAPI message template (msgKey) and its parameters for a direct message.

    Parameter names follow DingTalk's published robot message templates as reproduced by
    several SDKs: sampleActionCard (one button), sampleActionCard6 (two side by side) and
    sampleActionCard3..5 (vertical, actionTitleN / actionURLN).
    """
    if msg.kind == "text":
        return "sampleText", {"content": truncate_utf8(msg.body, MAX_BYTES)}
    if msg.kind == "image":
        return "sampleMarkdown", {"title": notification_title(msg), "text": picture_markdown(msg)}
    card = msg.card if msg.kind == "card" else None
    buttons = url_buttons(card) if card is not None else []
    if card is None or not buttons:
        text = card_markdown(card, NEWLINE) if card is not None else titled(msg, NEWLINE)
        return "sampleMarkdown", {
            "title": notification_title(msg),
            "text": truncate_utf8(text, MAX_BYTES),
        }
    shown, extra = buttons[:MAX_CARD_BUTTONS], buttons[MAX_CARD_BUTTONS:]
    text = card_markdown(card.model_copy(update={"buttons": extra}), NEWLINE)  # overflow as links
    param = {"title": card.title, "text": truncate_utf8(text, MAX_BYTES)}
    if len(shown) == 1:
        return "sampleActionCard", {
            **param,
            "singleTitle": shown[0].label,
            "singleURL": shown[0].url,
        }
    if len(shown) == 2:
        for i, b in enumerate(shown, 1):
            param.update({f"buttonTitle{i}": b.label, f"buttonUrl{i}": b.url})
        return "sampleActionCard6", param
    for i, b in enumerate(shown, 1):
        param.update({f"actionTitle{i}": b.label, f"actionURL{i}": b.url})
    return f"sampleActionCard{len(shown)}", param


def out_track_id(task_id: str, user_id: str) -> str:
    """One card instance per card and recipient (DingTalk updates it by this id)."""
    return f"{task_id}.{user_id}"[:128]


def card_params(card: Card) -> dict[str, str]:
    """The template's variables (all strings): title, content (markdown), status (empty until
    answered), and per callback button N (1..3) buttonN_text and buttonN_action (the key the
    button sends back as its `action` parameter)."""
    params = {
        "title": card.title,
        "content": card_markdown(card, NEWLINE, with_links=False),
        "status": "",
    }
    for n, button in enumerate([b for b in card.buttons if b.action_key][:3], 1):
        params[f"button{n}_text"] = button.label
        params[f"button{n}_action"] = button.action_key
    return params


def card_update_data(msg: OutMessage) -> dict[str, Any]:
    """The card data that shows who answered (an update by the OpenAPI, or the answer to an
    HTTP card callback): only `status`, the other variables kept."""
    answered = (msg.card.answered if msg.card else "") or msg.body
    return {
        "cardData": {"cardParamMap": {"status": answered}},
        "cardUpdateOptions": {"updateCardDataByKey": True},
    }


def card_result(status: int, data: dict[str, Any]) -> SendResult:
    if status == 200 and data.get("success", True) is not False:
        return SendResult(True)
    return oto_result(status, data, "")


def webhook_result(data: dict[str, Any]) -> SendResult:
    code, detail = str(data.get("errcode")), str(data.get("errmsg", ""))
    if code == "0":
        return SendResult(True)
    if code in THROTTLED:
        return SendResult(False, THROTTLE_RETRY_S, code=code, detail=detail)
    if code in ROBOT_GONE:
        return SendResult(False, permanent=True, code=code, detail=detail)
    return SendResult(False, code=code, detail=detail)


def token_rejected(status: int, data: dict[str, Any]) -> bool:
    # Assumption from SDK error handling: a bad token answers 401 / code InvalidAuthentication.
    return status == 401 or data.get("code") == "InvalidAuthentication"


def oto_result(status: int, data: dict[str, Any], user_id: str) -> SendResult:
    code, detail = str(data.get("code", "")), str(data.get("message", ""))
    if status == 200:
        if user_id in (data.get("flowControlledStaffIdList") or []):
            return SendResult(
                False,
                OPENAPI_THROTTLE_RETRY_S,
                code="flow_controlled",
                detail="user is flow controlled",
            )
        if user_id in (data.get("invalidStaffIdList") or []):
            return SendResult(False, code="invalid_staff", detail="userid unknown to DingTalk")
        return SendResult(True)
    if status == 429 or "throttl" in code.lower():
        return SendResult(False, OPENAPI_THROTTLE_RETRY_S, code=code or "http_429", detail=detail)
    if status >= 500:
        return SendResult(False, TRANSIENT_RETRY_S, code=code or f"http_{status}", detail=detail)
    return SendResult(False, code=code or f"http_{status}", detail=detail)
