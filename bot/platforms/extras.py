"""Any event's platform extras, read without knowing its platform: each adapter's typed
extras class by its `adapter` tag. A new adapter with extras adds its class here."""

from __future__ import annotations

from bot.platforms.base import EventExtras
from bot.platforms.dingtalk import DingTalkExtras
from bot.platforms.simulator import SimulatorExtras
from bot.platforms.wecom import WeComExtras
from bot.platforms.wecom_aibot import WeComAiBotExtras
from core.messages import Event

_KINDS: dict[str, type[EventExtras]] = {
    kind.model_fields["adapter"].default: kind
    for kind in (WeComExtras, WeComAiBotExtras, DingTalkExtras, SimulatorExtras)
}


def extras_of(event: Event) -> EventExtras:
    """The typed extras the event's adapter stored (an empty base when it stored none)."""
    kind = _KINDS.get(str(event.extras.get("adapter", "")), EventExtras)
    return kind.model_validate(event.extras)
