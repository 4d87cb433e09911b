"""WeCom 智能机器人 (AI bot): the WeCom product that joins group chats and hears @-mentions.

Two ways in (docs/wecom_aibot.md; docs/longconn.md part 2):
- callback mode: WeCom posts encrypted JSON to /wecom/aibot/callback (the app's crypto with an
  empty receiveid). An answer can ride back in the HTTP response (passive reply) only within
  5 s, so the callback stores the event, wakes the workers and waits up to `passive_wait_s` for
  the first answer the sender routes to this conversation; later answers go to the callback's
  `response_url` (one POST, within an hour), and after that to the self-built app ([wecom]).
- websocket mode: `websocket` (WeComAiBotSocket) carries the same JSON bodies over a socket.

This package: `protocol` (settings, extras, conversation address, a body as an Event),
`bodies` (what is sent), `adapter` (callback routes and sending), `websocket` (the long
connection, imported by the adapter in websocket mode).

A conversation is addressed by an opaque string the adapter alone reads (`conversation_address`):
it travels through the outbox as a chat Destination like DingTalk's session webhook, so handlers
answer "in this conversation" without knowing any of this.
"""

from bot.platforms.wecom_aibot.adapter import (
    CALLBACK_PATH,
    RESPONSE_URL_TTL_MS,
    SLOT_MAX_AGE_S,
    USED_URLS,
    Slot,
    WeComAiBotAdapter,
)
from bot.platforms.wecom_aibot.bodies import (
    CARD_IMAGE_RATIOS,
    PICTURE_MAX_BYTES,
    STREAM_MAX_BYTES,
    inline,
    markdown_body,
    markdown_of,
    picture_card,
    push_body,
    stream_body,
    update_card_body,
)
from bot.platforms.wecom_aibot.protocol import (
    WeComAiBotExtras,
    WeComAiBotSettings,
    address_parts,
    body_event,
    conversation_address,
)

__all__ = [
    "CALLBACK_PATH",
    "CARD_IMAGE_RATIOS",
    "PICTURE_MAX_BYTES",
    "RESPONSE_URL_TTL_MS",
    "SLOT_MAX_AGE_S",
    "STREAM_MAX_BYTES",
    "USED_URLS",
    "Slot",
    "WeComAiBotAdapter",
    "WeComAiBotExtras",
    "WeComAiBotSettings",
    "address_parts",
    "body_event",
    "conversation_address",
    "inline",
    "markdown_body",
    "markdown_of",
    "picture_card",
    "push_body",
    "stream_body",
    "update_card_body",
]
