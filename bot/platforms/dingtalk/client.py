"""DingTalk sending: session/custom-robot webhooks, OpenAPI direct messages, interactive
cards and the access token."""

from __future__ import annotations

import json
import logging
from typing import Any

import yarl

from bot.platforms.base import (
    CARD_NOT_UPDATABLE,
    Channel,
    PlatformCallFailed,
    SendResult,
    deliver,
    updates_sent_card,
)
from bot.platforms.dingtalk.bodies import (
    card_params,
    card_result,
    card_update_data,
    oto_result,
    oto_template,
    out_track_id,
    robot_body,
    token_rejected,
    webhook_result,
)
from bot.platforms.dingtalk.protocol import (
    CARD_SIG_SEPARATOR,
    TOKEN_FAILURE_RETRY_S,
    DingTalkBase,
    card_signature,
    signed_webhook_url,
)
from core.messages import OutMessage

log = logging.getLogger("bot.platforms.dingtalk")  # the adapter's name before the split


class DingTalkClient(DingTalkBase):
    async def send(
        self, channel: Channel, msg: OutMessage, mention_user_ids: list[str] | None = None
    ) -> SendResult:
        if updates_sent_card(msg):
            if not (self._cards_call_back() and channel.kind == "user" and msg.card):
                return CARD_NOT_UPDATABLE  # an action card's buttons open the answer page
            # the interactive card sent to this user, by the id it was created under
            track = out_track_id(msg.card.task_id, channel.address)
            return await deliver(channel, self._update_interactive(msg, track))
        if msg.kind == "card_update":
            if not (msg.card_ref and self._cards_call_back()):
                return SendResult(
                    False, code="unsupported", detail="action cards cannot be updated"
                )
            if self._answer_click(msg):
                return SendResult(True)
            return await deliver(channel, self._update_interactive(msg))
        if channel.kind == "user":
            return await deliver(channel, self._send_oto(channel.address, msg))
        return await deliver(channel, self._send_webhook(channel, msg, mention_user_ids or []))

    async def _send_webhook(
        self, channel: Channel, msg: OutMessage, mentions: list[str]
    ) -> SendResult:
        if not channel.address.startswith(self.settings.oapi_base.rstrip("/") + "/"):
            # a binding pointing elsewhere would hand message content to an unknown host
            return SendResult(
                False, permanent=True, code="bad_address", detail="webhook URL not under oapi_base"
            )
        url: str | yarl.URL = channel.address
        if channel.kind == "group_webhook" and channel.secret:
            url = signed_webhook_url(channel.address, channel.secret, self._now_ms())
        _, data = await self._http.request_json("POST", url, payload=robot_body(msg, mentions))
        return webhook_result(data)

    async def _send_oto(self, user_id: str, msg: OutMessage) -> SendResult:
        """Direct message through OpenAPI batchSend (the robot must be the app's robot); a card
        with callback buttons as an interactive card when a template is configured, falling
        back to the action card whose buttons open signed links."""
        if self._interactive(msg):
            result = await self._send_interactive(user_id, msg)
            if result.ok:
                return result
            log.warning(
                "interactive card to %s failed (%s %s); sending the link card",
                user_id,
                result.code,
                result.detail,
            )
        key, param = oto_template(msg)
        payload = {
            "robotCode": self.settings.robot_code,
            "userIds": [user_id],
            "msgKey": key,
            "msgParam": json.dumps(param, ensure_ascii=False),
        }
        status, data = await self._openapi("POST", "/v1.0/robot/oToMessages/batchSend", payload)
        return oto_result(status, data, user_id)

    def _cards_call_back(self) -> bool:
        """Card callbacks reach us with a template: over Stream, or in HTTP mode at our card
        callback URL (which needs the public base URL)."""
        if not self.settings.card_template_id:
            return False
        return self.settings.mode == "stream" or bool(self._card_url)

    def _answer_click(self, msg: OutMessage) -> bool:
        """Hand a card update to the HTTP card callback still waiting for it, if any."""
        for slot in self._card_slots.values():
            if slot.out_track_id == msg.card_ref and not slot.answer.done():
                slot.answer.set_result(card_update_data(msg))
                return True
        return False

    async def _register_card_callback(self) -> SendResult:
        """Register our card callback URL under the route key (once per process; forceUpdate
        so a moved URL replaces the old one)."""
        async with self._register_lock:
            if self._registered:
                return SendResult(True)
            payload = {
                "callbackRouteKey": self.settings.card_callback_route_key,
                "callbackUrl": self._card_url,
                "apiSecret": self._api_secret,
                "forceUpdate": True,
            }
            status, data = await self._openapi("POST", "/v1.0/card/callbacks/register", payload)
            result = card_result(status, data)
            self._registered = result.ok
            return result

    def _interactive(self, msg: OutMessage) -> bool:
        return (
            msg.kind == "card"
            and msg.card is not None
            and self._cards_call_back()
            and any(b.action_key for b in msg.card.buttons)
        )

    async def _send_interactive(self, user_id: str, msg: OutMessage) -> SendResult:
        assert msg.card is not None
        track = out_track_id(msg.card.task_id, user_id)
        params = card_params(msg.card)
        callback: dict[str, str] = {"callbackType": "STREAM"}
        if self.settings.mode == "http":
            registered = await self._register_card_callback()
            if not registered.ok:
                return registered
            callback = {
                "callbackType": "HTTP",
                "callbackRouteKey": self.settings.card_callback_route_key,
            }
            for name in [n for n in params if n.endswith("_action")]:
                sig = card_signature(self._card_key, track, user_id, params[name])
                params[name] += CARD_SIG_SEPARATOR + sig
        payload = {
            "cardTemplateId": self.settings.card_template_id,
            "outTrackId": track,
            **callback,
            "cardData": {"cardParamMap": params},
            "openSpaceId": f"dtv1.card//IM_ROBOT.{user_id}",
            "imRobotOpenSpaceModel": {"supportForward": False},
            "imRobotOpenDeliverModel": {
                "spaceType": "IM_ROBOT",
                "robotCode": self.settings.robot_code,
            },
        }
        status, data = await self._openapi("POST", "/v1.0/card/instances/createAndDeliver", payload)
        return card_result(status, data)

    async def _update_interactive(self, msg: OutMessage, track: str = "") -> SendResult:
        """Show who answered on the clicked card (or the card created under `track`); the
        template hides its buttons once `status` is set."""
        payload = {"outTrackId": track or msg.card_ref, **card_update_data(msg)}
        status, data = await self._openapi("PUT", "/v1.0/card/instances", payload)
        return card_result(status, data)

    async def _openapi(
        self, method: str, path: str, payload: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """An OpenAPI call with the access token; a rejected token is refetched once."""
        token = await self._tokens.get()
        status, data = await self._call_openapi(method, path, token, payload)
        if token_rejected(status, data):
            await self._tokens.invalidate(token)
            status, data = await self._call_openapi(method, path, await self._tokens.get(), payload)
        return status, data

    async def _call_openapi(
        self, method: str, path: str, token: str, payload: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        return await self._http.request_json(
            method,
            self.settings.api_base + path,
            payload=payload,
            headers={"x-acs-dingtalk-access-token": token},
        )

    async def _fetch_token(self) -> tuple[str, float]:
        payload = {"appKey": self.settings.app_key, "appSecret": self.settings.app_secret}
        status, data = await self._http.request_json(
            "POST", self.settings.api_base + "/v1.0/oauth2/accessToken", payload=payload
        )
        token = data.get("accessToken")
        if status != 200 or not isinstance(token, str) or not token:
            raise PlatformCallFailed(
                SendResult(
                    False,
                    TOKEN_FAILURE_RETRY_S,
                    code=str(data.get("code", f"http_{status}")),
                    detail=f"accessToken failed: {data.get('message', '')}",
                )
            )
        return token, float(data.get("expireIn", 7200))

    async def close(self) -> None:
        await self._http.close()
