"""Typed card-button payloads (in the spirit of aiogram's CallbackData).

A payload is a small pydantic model with a prefix; `pack()` makes the button key
("inv:accept:12") and refuses one that would not fit the platform's key field; `unpack_action`
parses a key strictly — anything unexpected is a stale or forged button, never a crash.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ValidationFailed
from core.models import MAX_ROW_ID

SEPARATOR = ":"
# WeCom template-card button `key` (returned as EventKey) holds at most 1024 bytes.
MAX_KEY_BYTES = 1024
STALE_BUTTON = "按钮已失效，请发送“任务”查看最新情况。"
_PART = re.compile(r"[A-Za-z0-9_-]{1,64}")


class CardAction(BaseModel):
    """Base of every payload; subclasses set `prefix` and declare their fields in key order."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    prefix: ClassVar[str]
    registry: ClassVar[dict[str, type[CardAction]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.prefix in CardAction.registry:
            raise TypeError(f"card action prefix {cls.prefix!r} is used twice")
        CardAction.registry[cls.prefix] = cls

    def pack(self) -> str:
        parts = [self.prefix, *(str(getattr(self, name)) for name in type(self).model_fields)]
        for part in parts:
            if not _PART.fullmatch(part):
                raise ValueError(f"card key part {part!r} is not [A-Za-z0-9_-]")
        key = SEPARATOR.join(parts)
        if len(key.encode()) > MAX_KEY_BYTES:
            raise ValueError(f"card key of {len(key.encode())} bytes exceeds {MAX_KEY_BYTES}")
        return key


class InvitationAction(CardAction):
    prefix: ClassVar[str] = "inv"
    action: Literal["accept", "decline"]
    invitation_id: Annotated[int, Field(gt=0, le=MAX_ROW_ID)]  # a row id the database can hold


def unpack_action(key: str) -> CardAction:
    """The payload of a button key; ValidationFailed("按钮已失效…") for anything else."""
    parts = key.split(SEPARATOR)
    cls = CardAction.registry.get(parts[0])
    fields = list(cls.model_fields) if cls is not None else []
    if cls is None or len(parts) != len(fields) + 1 or not all(_PART.fullmatch(p) for p in parts):
        raise ValidationFailed(STALE_BUTTON)
    try:
        return cls.model_validate(dict(zip(fields, parts[1:], strict=True)))
    except ValidationError:
        raise ValidationFailed(STALE_BUTTON) from None
