"""DingTalk (钉钉) enterprise internal robot in HTTP mode: signed JSON callbacks, replies via the
session webhook, group pushes via the signed custom-robot webhook, direct messages via OpenAPI.

Protocol facts are in docs/platforms.md sections d and e. ActionCard buttons only open URLs, so
card buttons without a URL are dropped there; the signed H5 link is the way to answer. With an
interactive card template (`card_template_id`) buttons call back: over Stream in Stream mode,
and in HTTP mode to /dingtalk/card/callback, registered under `card_callback_route_key`. No
source we found says how DingTalk signs an HTTP card callback, so each button's action carries
our own signature (HMAC over card, recipient and action), checked before anything is stored.

This package: `protocol` (settings, extras, signatures, session webhooks), `callbacks` (HTTP
mode), `client` (sending, cards, token), `bodies` (payloads and results), `stream` (Stream
mode's client, imported on its own: it builds on the adapter assembled here).
"""

from __future__ import annotations

import asyncio
import base64

from bot.platforms.base import HttpClient
from bot.platforms.dingtalk.bodies import robot_body
from bot.platforms.dingtalk.callbacks import DingTalkCallbacks
from bot.platforms.dingtalk.client import DingTalkClient
from bot.platforms.dingtalk.protocol import (
    CARD_CALLBACK_PATH,
    DingTalkExtras,
    DingTalkSettings,
    SignLedger,
    derived_key,
    is_session_webhook,
    parsed_session_webhook,
    signed_webhook_url,
)
from bot.platforms.tokens import TokenCache, TokenStore
from core.clock import Clock, SystemClock
from core.messages import Platform

__all__ = [
    "CARD_CALLBACK_PATH",
    "DingTalkAdapter",
    "DingTalkExtras",
    "DingTalkSettings",
    "SignLedger",
    "is_session_webhook",
    "parsed_session_webhook",
    "robot_body",
    "signed_webhook_url",
]


class DingTalkAdapter(DingTalkCallbacks, DingTalkClient):
    name = Platform.DINGTALK
    buttons_call_back = False  # robot action cards only open URLs

    def __init__(
        self,
        settings: DingTalkSettings,
        clock: Clock | None = None,
        ledger: SignLedger | None = None,
        tokens: TokenStore | None = None,
        public_base_url: str = "",
    ) -> None:
        """`tokens` shares the access token with other processes (bot.token_store)."""
        self.settings = settings
        self._clock = clock or SystemClock()
        self._http = HttpClient(settings.http_timeout_s)
        self._tokens = TokenCache(
            self._fetch_token, self._clock, store=tokens, key=f"dingtalk:{settings.app_key}"
        )
        self.ledger = ledger  # HTTP callbacks are refused without one (bot.server sets it)
        http_mode = settings.mode == "http"
        # Stream mode has no inbound HTTP route: an empty path registers none
        self.callback_path = "/dingtalk/callback" if http_mode else ""
        self._card_url = ""  # HTTP mode: where DingTalk posts card clicks
        if http_mode and settings.card_template_id and public_base_url:
            self._card_url = public_base_url.rstrip("/") + CARD_CALLBACK_PATH
        self.card_callback_path = CARD_CALLBACK_PATH if self._card_url else ""
        self._card_key = derived_key(settings.app_secret, "card action")
        self._api_secret = base64.urlsafe_b64encode(
            derived_key(settings.app_secret, "card callback apiSecret")[:24]
        ).decode()
        self._registered = False
        self._register_lock = asyncio.Lock()
        self._card_slots = {}
