"""The neutral language between platforms and the core.

`Event` is what an adapter makes of an inbound callback; `OutMessage` + `Destination` is what
handlers and core services ask to be sent. Adapters translate; nothing else knows a platform.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator


class Platform(StrEnum):
    """The ways an event comes in and a reply goes out: one adapter each (bot/platforms). The
    values are stored (inbox rows, outbox channels, chat bindings, platform accounts) and are
    the configuration sections' names."""

    WECOM = "wecom"  # WeCom's self-built app (企业微信, 政务微信)
    # WeCom's 智能机器人 (AI bot), which joins group chats; same corp user ids as WECOM
    WECOM_AIBOT = "wecom_aibot"
    DINGTALK = "dingtalk"  # 钉钉, 浙政钉
    SIM = "sim"  # the local simulator page; its "accounts" are officer codes


def encodable_text(value: str) -> str:
    """`value` without what cannot be stored or sent: lone surrogates become "?", NUL goes."""
    if value.isascii():  # no surrogate (known without reading it); the same object if no NUL
        return value.replace("\x00", "")
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


class Event(BaseModel):
    """An inbound message or card action, already verified and decrypted."""

    platform: Platform
    event_id: str  # the platform's id for de-duplication (MsgId, msgId, EventKey+time…)
    kind: Literal["text", "card_action", "enter_chat", "other"] = "text"
    user_id: str  # the platform's user id of the sender
    text: str = ""
    action_key: str = ""  # card button key (see handlers' typed CardAction)
    chat_id: str = ""  # group conversation id, empty for a direct chat
    is_group: bool = False
    # The adapter's own typed extras (bot/platforms), stored with the event: how to answer in
    # this conversation, which card was clicked. Only bot/ reads them; handlers get their
    # neutral meaning from the dispatcher (HandlerCtx.conversation, HandlerCtx.card_ref).
    extras: dict[str, Any] = Field(default_factory=dict)
    received_ms: int = 0
    raw: dict[str, Any] = Field(default_factory=dict)

    @field_validator("event_id", "user_id", "text", "action_key", "chat_id")
    @classmethod
    def _encodable(cls, value: str) -> str:
        """Text every store and platform takes: a lone surrogate (JSON allows "\ud800")
        becomes "?" (such text cannot be encoded, so every reply quoting it failed on every
        attempt), and NUL is dropped (PostgreSQL refuses it in text and JSON)."""
        return encodable_text(value)


class Destination(BaseModel):
    """Who a message is for, in domain terms; the sender resolves it to a channel."""

    kind: Literal["officer", "department", "office", "chat", "user"]
    officer_id: int | None = None
    department_id: int | None = None
    platform: Platform | None = None  # kind="chat"/"user": the platform to answer on
    address: str = ""  # chat: session webhook (never logged); user: the platform user id

    @classmethod
    def officer(cls, officer_id: int) -> Destination:
        return cls(kind="officer", officer_id=officer_id)

    @classmethod
    def department(cls, department_id: int) -> Destination:
        return cls(kind="department", department_id=department_id)

    @classmethod
    def platform_user(cls, platform: Platform, user_id: str) -> Destination:
        """Someone known only by a platform id (e.g. an unregistered user we refuse politely)."""
        return cls(kind="user", platform=platform, address=user_id)

    @classmethod
    def office(cls) -> Destination:
        return cls(kind="office")

    def key(self) -> str:
        """Stable text used in rate limiting and logs (no secrets)."""
        if self.kind == "officer":
            return f"officer:{self.officer_id}"
        if self.kind == "department":
            return f"department:{self.department_id}"
        if self.kind == "chat":
            # one key per conversation (a throttled group must not pause the others); the
            # address is a credential, so only a short digest of it is shown
            digest = hashlib.sha256(self.address.encode()).hexdigest()[:16]
            return f"chat:{self.platform}:{digest}"
        if self.kind == "user":
            return f"user:{self.platform}:{self.address}"[:64]
        return "office"


class Button(BaseModel):
    label: str
    action_key: str = ""  # callback key (WeCom app cards, simulator)
    url: str = ""  # signed H5 link (DingTalk action cards, fallback everywhere)
    style: Literal["primary", "default", "danger"] = "default"


class Field_(BaseModel):
    name: str
    value: str


class Card(BaseModel):
    title: str
    description: str = ""
    fields: list[Field_] = Field(default_factory=list)
    buttons: list[Button] = Field(default_factory=list)
    task_id: str = ""  # stable id so the card can be updated after a click
    answered: str = ""  # set on an updated card: who answered and how


class Image(BaseModel):
    """A picture stored by content hash (core.images). The outbox keeps only the hash; the
    sender fills in, for one delivery, the bytes (WeCom uploads or inlines them) and a signed,
    expiring link (DingTalk's markdown shows the picture from it). Neither is ever stored."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    mime: Literal["image/png", "image/jpeg"] = "image/png"
    url: str = ""
    data: bytes = Field(default=b"", exclude=True, repr=False)


class OutMessage(BaseModel):
    """A neutral outgoing message. `markdown` is the small subset every platform shares;
    `image` carries a picture, its `title` the caption where a platform shows one."""

    kind: Literal["text", "markdown", "card", "card_update", "image"] = "markdown"
    title: str = ""
    body: str = ""
    card: Card | None = None
    image: Image | None = None
    mention_officer_ids: list[int] = Field(default_factory=list)
    card_ref: str = ""  # kind="card_update": the platform's handle of the clicked card

    @classmethod
    def md(cls, title: str, body: str) -> OutMessage:
        return cls(kind="markdown", title=title, body=body)

    @classmethod
    def text(cls, body: str) -> OutMessage:
        return cls(kind="text", body=body)

    @classmethod
    def picture(cls, title: str, image: Image) -> OutMessage:
        return cls(kind="image", title=title, image=image)
