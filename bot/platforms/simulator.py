"""Local chat simulator: try the bot in a browser with no WeCom or DingTalk credentials.

Inbound: the page posts text or a card button key; it becomes a neutral Event (platform `sim`,
user id = the officer's code) stored in the inbox exactly like a platform callback, so the
same dispatcher handles it. Outbound: nothing is "sent"; the page reads the outbox rows meant
for the chosen officer (direct) and for their department's chat, so it shows what every
platform would deliver.

For local trial only: it lets anyone act as any officer. `simulator.enabled = "auto"` (the
default) turns it off as soon as a platform is configured, and every /sim request must come
from this machine: the Host header must name a loopback address (so a DNS-rebound page cannot
read the feed) and a POST must be JSON from the same origin (so a cross-site form or
`text/plain` fetch cannot act as an officer).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pages.base import OwnWords
from bot.pages.links import expand
from bot.platforms.base import CallbackRejected, EventExtras, inbound_json, read_limited_body
from bot.scheduler import run_passed_days
from bot.services import Services
from core import demo_clock, demo_guide, images, inbox, officers, outbox
from core.changes import Ctx
from core.clock import CHINA_TZ
from core.demo_clock import DemoClock
from core.errors import DomainError
from core.messages import Destination, Event, OutMessage, Platform
from core.models import MAX_ROW_ID, Officer, OutboxMessage
from core.render import render, templates_dir
from core.workdays import cn_date

MAX_BODY_BYTES = 8 * 1024
MAX_TEXT_CHARS = 2000
IMAGE_PATH = "/sim/api/image"
SHA256 = re.compile(r"^[0-9a-f]{64}$")
PAGE_SIZE = 200  # messages per poll; the page asks again with `after` for more
EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
CARD_ID = re.compile(r"^[A-Za-z0-9_:-]{0,64}$")
LOOPBACK_HOST = re.compile(r"(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?", re.IGNORECASE)
LOCAL_ONLY = (
    "模拟器仅限本机访问：请在本机浏览器中打开 http://127.0.0.1 或 http://localhost 上的 /sim。"
)
JSON_ONLY = "模拟器只接受本页发出的 JSON 请求（Content-Type: application/json，且来源为本机）。"
ROLE_LABELS = {
    "liaison": "联络员",
    "inspector": "执法检查人员",
    "leader": "分管领导",
    "admin": "管理员",
    "expert": "专家",
}
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


Handler = Callable[[web.Request], Awaitable[web.Response]]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message  # Chinese, shown in the page


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data,
        status=status,
        dumps=lambda d: json.dumps(d, ensure_ascii=False),
        headers={"Cache-Control": "no-store"},
    )


async def _officer(ctx: Ctx, code: str) -> Officer:
    officer = await officers.by_code(ctx, code)
    if officer is None:
        raise ApiError(404, f"没有编号为“{code}”的人员。")
    return officer


def officer_json(officer: Officer) -> dict[str, Any]:
    return {
        "code": officer.code,
        "name": officer.name,
        "department": officer.department.name,
        "roles": list(officer.roles or []),
        "active": officer.active,
        "role_labels": [ROLE_LABELS.get(r, r) for r in officer.roles or []],
    }


def _scope(dest: Destination, officer: Officer) -> str | None:
    """How a stored message reaches this officer: privately, in their department's group, in the
    office group (admins) — or not at all."""
    if dest.kind == "officer" and dest.officer_id == officer.id:
        return "direct"
    if dest.kind == "chat" and dest.platform == Platform.SIM and dest.address == officer.code:
        return "direct"  # a reply into the simulator conversation the officer started
    if dest.kind == "department" and dest.department_id == officer.department_id:
        return "department"
    if dest.kind == "office" and officer.has_role("admin"):
        return "office"
    return None


def message_json(
    services: Services, row: OutboxMessage, scope: str, officer: Officer
) -> dict[str, Any]:
    # a private copy gets the officer's signed page links, as the sender would deliver it
    msg = expand(
        services, officer.id if scope == "direct" else None, OutMessage.model_validate(row.message)
    )
    return {
        "id": row.id,
        "at": row.created_at.astimezone(CHINA_TZ).isoformat(timespec="seconds"),
        "scope": scope,
        "kind": msg.kind,
        "title": msg.title,
        "body": msg.body,
        "card_ref": msg.card_ref,
        "card": msg.card.model_dump(mode="json") if msg.card else None,
        # the picture from this page's own route (a platform gets its bytes or signed link)
        "image": f"{IMAGE_PATH}?sha256={msg.image.sha256}" if msg.image else None,
    }


async def messages_for(
    services: Services, session: AsyncSession, officer: Officer, after: int
) -> list[dict[str, Any]]:
    """Outbox rows meant for `officer`, oldest first, with id > `after`."""
    keys = [
        Destination.officer(officer.id).key(),
        Destination.department(officer.department_id).key(),
        Destination(kind="chat", platform=Platform.SIM, address=officer.code).key(),
        Destination.office().key(),
    ]
    found = []
    for row in await outbox.addressed_to(session, keys, after_id=after, limit=PAGE_SIZE):
        scope = _scope(Destination.model_validate(row.destination), officer)
        if scope is not None:
            found.append(message_json(services, row, scope, officer))
    return found


def local_only_refusal(request: web.Request) -> str | None:
    """Why this request may not use the simulator (Chinese), or None when it may."""
    host = request.headers.get("Host", "")
    if not LOOPBACK_HOST.fullmatch(host):
        return LOCAL_ONLY
    if request.method != "POST":
        return None
    if request.content_type != "application/json":
        return JSON_ONLY
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() not in (
        f"http://{host}".lower(),
        f"https://{host}".lower(),
    ):
        return JSON_ONLY
    return None


def local_only(handler: Handler) -> Handler:
    """`handler` behind the loopback check: API callers get a JSON error, the page plain text."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.Response:
        refusal = local_only_refusal(request)
        if refusal is None:
            return await handler(request)
        if request.path.startswith("/sim/api/"):
            return _json({"error": refusal}, 403)
        return web.Response(status=403, text=refusal, charset="utf-8", headers=PAGE_HEADERS)

    return guarded


async def _read_json(request: web.Request) -> dict[str, Any]:
    try:
        raw = await read_limited_body(request, MAX_BODY_BYTES)
    except CallbackRejected:
        raise ApiError(413, "请求过大。") from None
    try:
        data = inbound_json(raw)
    except ValueError:  # RecursionError too: brackets nested thousands deep
        raise ApiError(400, "请求不是有效的 JSON。") from None
    if not isinstance(data, dict):
        raise ApiError(400, "请求不是 JSON 对象。")
    return data


def _field(data: dict[str, Any], name: str, limit: int) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"缺少 {name}。")
    if len(value) > limit:
        raise ApiError(400, f"{name} 过长（最多 {limit} 个字符）。")
    return value.strip()


def _event_id(data: dict[str, Any]) -> str:
    """The page sends its own id so a retried POST is stored once; otherwise we make one."""
    given = data.get("event_id")
    if given is None:
        return uuid.uuid4().hex
    if not isinstance(given, str) or not EVENT_ID.match(given):
        raise ApiError(400, "event_id 格式不正确。")
    return given


class SimulatorExtras(EventExtras):
    """A click on a card in the page names the card (its Card.task_id), so the answer can
    grey that card the way a platform updates the clicked one."""

    adapter: Literal[Platform.SIM] = Platform.SIM
    card: str = ""

    def card_ref(self) -> str:
        return self.card


def _card_id(data: dict[str, Any]) -> str:
    card = data.get("card", "")
    if not isinstance(card, str) or not CARD_ID.match(card):
        raise ApiError(400, "card 格式不正确。")
    return card


class Simulator:
    def __init__(self, services: Services, wake_inbox: Callable[[], None] | None = None) -> None:
        self.services = services
        self.wake_inbox = wake_inbox  # tells the inbox worker to look now instead of at its tick
        self.script = (templates_dir() / "web" / "simulator.js").read_text(encoding="utf-8")

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(
            text=render("web/simulator.html"),
            content_type="text/html",
            charset="utf-8",
            headers=PAGE_HEADERS,
        )

    async def script_file(self, request: web.Request) -> web.Response:
        return web.Response(
            text=self.script, content_type="text/javascript", charset="utf-8", headers=PAGE_HEADERS
        )

    async def officers(self, request: web.Request) -> web.Response:
        async with self.services.sessionmaker() as session:
            roster = await officers.roster(self.services.core_ctx(session))
            return _json([officer_json(o) for o in roster])

    async def messages(self, request: web.Request) -> web.Response:
        try:
            after_text = request.query.get("after", "0")
            # ASCII digits only ('²'.isdigit() holds) and a row id the database can hold
            if not (
                after_text.isascii()
                and after_text.isdigit()
                and len(after_text) <= 10
                and int(after_text) <= MAX_ROW_ID
            ):
                raise ApiError(400, "after 必须是非负整数。")
            async with self.services.sessionmaker() as session:
                officer = await _officer(
                    self.services.core_ctx(session), request.query.get("officer", "")
                )
                return _json(await messages_for(self.services, session, officer, int(after_text)))
        except ApiError as err:
            return _json({"error": err.message}, err.status)

    async def image(self, request: web.Request) -> web.Response:
        sha = request.query.get("sha256", "")
        if not SHA256.fullmatch(sha):
            return _json({"error": "sha256 必须是 64 位十六进制小写摘要。"}, 400)
        async with self.services.sessionmaker() as session:
            data = await images.load(session, sha)
        if data is None:
            return _json({"error": "图片不存在。"}, 404)
        return web.Response(
            body=data, content_type=images.mime_of(data) or "image/png", headers=PAGE_HEADERS
        )

    async def send(self, request: web.Request) -> web.Response:
        return await self._store(request, "text")

    async def action(self, request: web.Request) -> web.Response:
        return await self._store(request, "card_action")

    async def _store(
        self, request: web.Request, kind: Literal["text", "card_action"]
    ) -> web.Response:
        try:
            data = await _read_json(request)
            code = _field(data, "officer", 32)
            content = _field(data, "text" if kind == "text" else "action_key", MAX_TEXT_CHARS)
            event_id = _event_id(data)
            extras = SimulatorExtras(card=_card_id(data)) if kind == "card_action" else None
            now = self.services.clock.now()
            async with self.services.write_gate(), self.services.sessionmaker() as session:
                officer = await _officer(self.services.core_ctx(session), code)
                event = Event(
                    platform=Platform.SIM,
                    event_id=event_id,
                    kind=kind,
                    user_id=officer.code,
                    text=content if kind == "text" else "",
                    action_key=content if kind == "card_action" else "",
                    received_ms=int(now.timestamp() * 1000),
                    extras=extras.dump() if extras else {},
                )
                stored = await inbox.store(session, event, now=now)
                await session.commit()
        except ApiError as err:
            return _json({"error": err.message}, err.status)
        if stored and self.wake_inbox is not None:
            self.wake_inbox()
        return _json({"event_id": event_id, "duplicate": not stored}, 202)


class DemoControls:
    """`serve --demo` only: the demo clock and the guided next step."""

    def __init__(self, services: Services, clock: DemoClock) -> None:
        self.services, self.clock = services, clock

    def _now(self) -> dict[str, Any]:
        now = self.clock.now().astimezone(CHINA_TZ)
        weekday = "一二三四五六日"[now.weekday()]
        return {
            "now": now.isoformat(timespec="minutes"),
            "label": f"{cn_date(now.date())} 周{weekday} {now:%H:%M}",
        }

    async def show_clock(self, request: web.Request) -> web.Response:
        return _json(self._now())

    async def advance(self, request: web.Request) -> web.Response:
        try:
            data = await _read_json(request)
            async with self.services.write_gate(), self.services.sessionmaker() as session:
                ctx = dataclasses.replace(
                    self.services.core_ctx(session), actor_label="demo:simulator"
                )
                if data.get("to") == "beacon":
                    to, why = await demo_clock.after_beacon(ctx), "快进到信标公布后"
                else:
                    days = data.get("workdays")
                    if not isinstance(days, int) or isinstance(days, bool):
                        raise ApiError(400, "请给出要快进的工作日数。")
                    to, why = await demo_clock.after_workdays(ctx, days), f"快进 {days} 个工作日"
                await demo_clock.record_advance(ctx, self.clock, to, why)
                await session.commit()
        except ApiError as err:
            return _json({"error": err.message}, err.status)
        except DomainError as err:
            return _json({"error": err.message}, 400)
        since = self.clock.now()
        self.clock.move_to(to)
        await run_passed_days(self.services, since, to)  # nudges and summaries come due too
        return _json(self._now())

    async def guide(self, request: web.Request) -> web.Response:
        async with self.services.sessionmaker() as session:
            step = await demo_guide.next_step(self.services.core_ctx(session))
        return _json({**dataclasses.asdict(step), "total": len(demo_guide.TITLES)})


def routes(services: Services, wake_inbox: Callable[[], None] | None = None) -> list[web.RouteDef]:
    sim = Simulator(services, wake_inbox)
    found = [
        web.get("/sim", local_only(sim.page)),
        web.get("/sim/static/simulator.js", local_only(sim.script_file)),
        web.get("/sim/api/officers", local_only(sim.officers)),
        web.get("/sim/api/messages", local_only(sim.messages)),
        web.get(IMAGE_PATH, local_only(sim.image)),
        web.post("/sim/api/send", local_only(sim.send)),
        web.post("/sim/api/action", local_only(sim.action)),
    ]
    if isinstance(services.clock, DemoClock):
        demo = DemoControls(services, services.clock)
        found += [
            web.get("/sim/api/clock", local_only(demo.show_clock)),
            web.post("/sim/api/clock", local_only(demo.advance)),
            web.get("/sim/api/guide", local_only(demo.guide)),
        ]
    else:  # said, rather than the catch-all's 404 or "只接受 GET"
        found += [
            web.route(method, path, local_only(_demo_only))
            for path in ("/sim/api/clock", "/sim/api/guide")
            for method in ("GET", "POST")
        ]
    return found


class DemoOnly(OwnWords, web.HTTPNotFound):
    def __init__(self) -> None:
        super().__init__(
            text="模拟时钟和演示引导只在演示模式中提供："
            "请用 lianjian serve --demo 启动后在模拟器页面上操作。",
            content_type="text/plain",
        )


async def _demo_only(request: web.Request) -> web.Response:
    raise DemoOnly()
