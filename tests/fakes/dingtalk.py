"""A fake DingTalk: custom-robot webhook with 加签 checks, session webhook, OpenAPI accessToken
and batchSend, interactive cards (createAndDeliver, update, callback registration, and a click
posted to the registered URL in HTTP mode); and a callback client that signs robot messages
like DingTalk's HTTP mode."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from typing import Any

import aiohttp
from aiohttp import web

from core.clock import Clock, SystemClock
from tests.fakes import FakeServer, RateLimiter

CARD_TEMPLATE = "fake-invitation.schema"

# Parameters each OpenAPI message template requires.
TEMPLATE_KEYS: dict[str, list[str]] = {
    "sampleText": ["content"],
    "sampleMarkdown": ["title", "text"],
    "sampleActionCard": ["title", "text", "singleTitle", "singleURL"],
    "sampleActionCard6": [
        "title",
        "text",
        "buttonTitle1",
        "buttonUrl1",
        "buttonTitle2",
        "buttonUrl2",
    ],
    **{
        f"sampleActionCard{n}": [
            "title",
            "text",
            *(f"{k}{i}" for i in range(1, n + 1) for k in ("actionTitle", "actionURL")),
        ]
        for n in (2, 3, 4, 5)
    },
}


MARKDOWN_PICTURE = re.compile(r"!\[[^\]\n]*\]\((https?://[^)\s]+)\)")


def robot_sign(secret: str, timestamp_ms: str) -> str:
    """DingTalk's signature, computed independently of the adapter's helper."""
    mac = hmac.HMAC(secret.encode("utf-8"), digestmod=hashlib.sha256)
    mac.update(timestamp_ms.encode("utf-8") + b"\n" + secret.encode("utf-8"))
    return base64.standard_b64encode(mac.digest()).decode("ascii")


def errcode(code: int, msg: str) -> web.Response:
    return web.json_response({"errcode": code, "errmsg": msg})


def openapi_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"code": code, "message": message, "requestid": secrets.token_hex(8)}, status=status
    )


class FakeDingTalk(FakeServer):
    def __init__(
        self,
        app_key: str = "dingfakeappkey",
        app_secret: str = "fake-app-secret",
        robot_code: str = "dingfakeappkey",
        robots: dict[str, str]
        | None = None,  # custom robot access_token -> 加签 secret ("" = none)
        clock: Clock | None = None,
    ) -> None:
        super().__init__(clock)
        self.app_key, self.app_secret, self.robot_code = app_key, app_secret, robot_code
        self.robots = robots if robots is not None else {"robot-token-1": "SECfake0123456789"}
        self.sessions: set[str] = set()
        self.tokens: set[str] = set()
        self.invalid_staff: set[str] = set()
        self.delivered: list[dict[str, Any]] = []
        self.robot_limit = RateLimiter(self.clock, per_minute=20)
        self.app.router.add_post("/robot/send", self.robot_send)
        self.app.router.add_post("/robot/sendBySession", self.session_send)
        self.app.router.add_post("/v1.0/oauth2/accessToken", self.access_token)
        self.app.router.add_post("/v1.0/robot/oToMessages/batchSend", self.batch_send)
        self.cards: dict[str, dict[str, Any]] = {}  # outTrackId -> createAndDeliver body
        self.card_state: dict[str, dict[str, str]] = {}  # outTrackId -> what the card shows
        self.card_updates: list[dict[str, Any]] = []
        self.card_routes: dict[str, str] = {}  # callbackRouteKey -> callbackUrl
        self.app.router.add_post("/v1.0/card/instances/createAndDeliver", self.create_card)
        self.app.router.add_put("/v1.0/card/instances", self.update_card)
        self.app.router.add_post("/v1.0/card/callbacks/register", self.register_card_callback)

    def markdown_texts(self) -> list[str]:
        """The markdown of every delivered message (robot and session webhooks, batchSend)."""
        texts = []
        for body in self.delivered:
            if body.get("msgtype") == "markdown":
                texts.append(body["markdown"]["text"])
            elif body.get("msgKey") == "sampleMarkdown":
                texts.append(body["msgParam"]["text"])
        return texts

    async def fetch_pictures(self) -> list[tuple[int, str, bytes]]:
        """Load each picture the delivered markdown shows, as a DingTalk client does: DingTalk
        takes no picture bytes from a robot, only a link in markdown (`![alt](url)`)."""
        found = []
        async with aiohttp.ClientSession() as client:
            for text in self.markdown_texts():
                for url in MARKDOWN_PICTURE.findall(text):
                    async with client.get(url) as resp:
                        found.append((resp.status, resp.content_type, await resp.read()))
        return found

    def webhook_url(self, token: str = "robot-token-1") -> str:
        return self.url(f"/robot/send?access_token={token}")

    def new_session_webhook(self) -> str:
        session = secrets.token_hex(16)
        self.sessions.add(session)
        return self.url(f"/robot/sendBySession?session={session}")

    @property
    def token_calls(self) -> int:
        return len(self.calls("/v1.0/oauth2/accessToken"))

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    async def robot_send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        if token not in self.robots:
            return errcode(300001, "token is not exist")
        secret = self.robots[token]
        if secret:
            timestamp, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
            if not timestamp.isdigit() or abs(self._now_ms() - int(timestamp)) > 3600_000:
                return errcode(310000, "invalid timestamp")
            if not hmac.compare_digest(sign, robot_sign(secret, timestamp)):
                return errcode(310000, "sign not match")
        if (scripted := self.script.pop("robot/send")) is not None:
            return web.json_response(scripted)
        if not self.robot_limit.allow(token):
            return errcode(130101, "send too fast, exceed 20 times per minute")
        return await self._deliver(request)

    async def session_send(self, request: web.Request) -> web.Response:
        if request.query.get("session", "") not in self.sessions:
            return errcode(300001, "session is not exist")
        return await self._deliver(request)

    async def _deliver(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not valid_robot_message(body):
            return errcode(40035, "缺少参数 json")
        self.delivered.append(body)
        return errcode(0, "ok")

    async def access_token(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return openapi_error(400, "invalidClientSecret", "无效的appSecret")
        token = secrets.token_hex(16)
        self.tokens.add(token)
        return web.json_response({"accessToken": token, "expireIn": 7200})

    async def batch_send(self, request: web.Request) -> web.Response:
        if request.headers.get("x-acs-dingtalk-access-token", "") not in self.tokens:
            return openapi_error(401, "InvalidAuthentication", "不合法的access_token")
        if (scripted := self.script.pop("batchSend")) is not None:
            return openapi_error(scripted["status"], scripted["code"], scripted.get("message", ""))
        body = await request.json()
        if body.get("robotCode") != self.robot_code:
            return openapi_error(400, "resource.not.found", "robot 不存在")
        required = TEMPLATE_KEYS.get(body.get("msgKey", ""))
        try:
            param = json.loads(body.get("msgParam", ""))
        except (TypeError, ValueError):
            param = None
        if (
            required is None
            or not isinstance(param, dict)
            or any(not param.get(k) for k in required)
        ):
            return openapi_error(400, "param.invalid", "msgKey or msgParam invalid")
        users = body.get("userIds") or []
        self.delivered.append({**body, "msgParam": param})
        return web.json_response(
            {
                "processQueryKey": secrets.token_hex(12),
                "invalidStaffIdList": [u for u in users if u in self.invalid_staff],
                "flowControlledStaffIdList": [],
            }
        )

    async def create_card(self, request: web.Request) -> web.Response:
        """Interactive card: a known template, a new outTrackId, string parameters, a robot
        single chat, and callbacks over Stream or HTTP (then to a registered route key)."""
        if request.headers.get("x-acs-dingtalk-access-token", "") not in self.tokens:
            return openapi_error(401, "InvalidAuthentication", "不合法的access_token")
        if (scripted := self.script.pop("createAndDeliver")) is not None:
            return openapi_error(scripted["status"], scripted["code"], "")
        body = await request.json()
        params = body.get("cardData", {}).get("cardParamMap", {})
        deliver = body.get("imRobotOpenDeliverModel") or {}
        if (
            body.get("cardTemplateId") != CARD_TEMPLATE
            or body.get("outTrackId") in self.cards
            or not all(isinstance(v, str) for v in params.values())
            or not str(body.get("openSpaceId", "")).startswith("dtv1.card//IM_ROBOT.")
            or deliver.get("robotCode") != self.robot_code
            or body.get("callbackType") not in ("STREAM", "HTTP")
            or (
                body["callbackType"] == "HTTP"
                and body.get("callbackRouteKey") not in self.card_routes
            )
        ):
            return openapi_error(400, "param.invalid", "card parameters invalid")
        self.cards[body["outTrackId"]] = body
        self.card_state[body["outTrackId"]] = dict(params)
        return web.json_response({"success": True, "result": {"outTrackId": body["outTrackId"]}})

    async def update_card(self, request: web.Request) -> web.Response:
        if request.headers.get("x-acs-dingtalk-access-token", "") not in self.tokens:
            return openapi_error(401, "InvalidAuthentication", "不合法的access_token")
        body = await request.json()
        if body.get("outTrackId") not in self.cards:
            return openapi_error(400, "card.not.found", "卡片不存在")
        self.card_updates.append(body)
        self.card_state[body["outTrackId"]].update(body.get("cardData", {}).get("cardParamMap", {}))
        return web.json_response({"success": True, "result": True})

    async def register_card_callback(self, request: web.Request) -> web.Response:
        """POST /v1.0/card/callbacks/register: a route key → callback URL (with apiSecret)."""
        if request.headers.get("x-acs-dingtalk-access-token", "") not in self.tokens:
            return openapi_error(401, "InvalidAuthentication", "不合法的access_token")
        if (scripted := self.script.pop("callbacks/register")) is not None:
            return openapi_error(scripted["status"], scripted["code"], "")
        body = await request.json()
        key, url, secret = (body.get(k) for k in ("callbackRouteKey", "callbackUrl", "apiSecret"))
        if not (key and isinstance(url, str) and url.startswith("http") and secret):
            return openapi_error(400, "param.invalid", "callback parameters invalid")
        if key in self.card_routes and not body.get("forceUpdate"):
            return openapi_error(400, "callbackRouteKey.exist", "callbackRouteKey 已存在")
        self.card_routes[key] = url
        return web.json_response({"success": True, "result": {"callbackUrl": url}})

    async def click_http(
        self, out_track_id: str, user_id: str, button: int = 1, *, body: bytes | None = None
    ) -> tuple[int, Any]:
        """A press of button N on a card delivered with HTTP callbacks: DingTalk posts the
        click to the URL registered under the card's route key, with the button's `action`
        parameter as the template sends it; a `cardData` in the JSON answer updates the card."""
        card = self.cards[out_track_id]
        url = self.card_routes[card["callbackRouteKey"]]
        action = self.card_state[out_track_id].get(f"button{button}_action", "")
        payload = card_click(out_track_id, user_id, action, f"button{button}")
        data = json.dumps(payload).encode() if body is None else body
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(url, data=data, headers={"Content-Type": "application/json"}) as resp,
        ):
            status, text = resp.status, await resp.text()
        try:
            answer = json.loads(text)
        except ValueError:
            answer = text
        if status == 200 and isinstance(answer, dict):
            update = answer.get("cardData", {}).get("cardParamMap", {})
            self.card_state[out_track_id].update(update)
        return status, answer


def card_click(out_track_id: str, user_id: str, action: str, action_id: str) -> dict[str, Any]:
    """A card callback's data, the same on the Stream card topic and over HTTP."""
    content = {"cardPrivateData": {"actionIds": [action_id], "params": {"action": action}}}
    return {
        "type": "actionCallback",
        "outTrackId": out_track_id,
        "corpId": "dingcorp123",
        "userId": user_id,
        "userIdType": 1,
        "content": json.dumps(content),
        "extension": "{}",
    }


def valid_robot_message(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    part = body.get(body.get("msgtype", ""))
    if not isinstance(part, dict):
        return False
    if body["msgtype"] == "text":
        return bool(part.get("content"))
    if body["msgtype"] == "markdown":
        return bool(part.get("title") and part.get("text"))
    if body["msgtype"] == "actionCard":
        buttons_ok = bool(part.get("btns")) and all(
            b.get("title") and b.get("actionURL") for b in part["btns"]
        )
        single_ok = bool(part.get("singleTitle") and part.get("singleURL"))
        return bool(part.get("title") and part.get("text")) and (buttons_ok or single_ok)
    return False


class DingTalkCallbackClient:
    """Plays DingTalk's side of an HTTP-mode robot callback."""

    def __init__(self, app_secret: str, url: str, clock: Clock | None = None) -> None:
        self.app_secret, self.url = app_secret, url
        self.clock = clock or SystemClock()
        self._session: aiohttp.ClientSession | None = None

    def now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    async def post(
        self,
        payload: dict[str, Any] | None = None,
        *,
        timestamp_ms: int | None = None,
        sign: str | None = None,
        body: bytes | None = None,
    ) -> tuple[int, bytes]:
        ts = str(self.now_ms() if timestamp_ms is None else timestamp_ms)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "timestamp": ts,
            "sign": robot_sign(self.app_secret, ts) if sign is None else sign,
        }
        data = json.dumps(payload, ensure_ascii=False).encode() if body is None else body
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(self.url, data=data, headers=headers) as resp:
            return resp.status, await resp.read()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def robot_message(
    content: str,
    *,
    staff_id: str = "manager7675",
    msg_id: str = "msgzFeY3Fd5vUm9K+fJ1Sw0zQ==",
    group: bool = True,
    created_ms: int,
    session_webhook: str = "",
    robot_code: str = "dingfakeappkey",
) -> dict[str, Any]:
    """A robot message shaped like the example in DingTalk's 接收消息 protocol page."""
    message: dict[str, Any] = {
        "conversationId": "cidAbCdEfGh1234567890==",
        "atUsers": [{"dingtalkId": "$:LWCP_v1:$robotdingtalkid"}],
        "chatbotCorpId": "dingcorp123",
        "chatbotUserId": "$:LWCP_v1:$chatbotuser",
        "msgId": msg_id,
        "senderNick": "张三",
        "isAdmin": False,
        "senderStaffId": staff_id,
        "sessionWebhookExpiredTime": created_ms + 90 * 60 * 1000,
        "createAt": created_ms,
        "senderCorpId": "dingcorp123",
        "conversationType": "2" if group else "1",
        "senderId": "$:LWCP_v1:$encryptedsender",
        "isInAtList": True,
        "sessionWebhook": session_webhook,
        "text": {"content": content},
        "robotCode": robot_code,
        "msgtype": "text",
    }
    if group:
        message["conversationTitle"] = "联合抽查工作群"
    return message
