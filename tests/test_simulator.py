"""The local chat simulator: JSON API over real HTTP, inbox rows, outbox feed, full round trip."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import HANDLER, create_app
from bot.platforms.simulator import routes
from bot.services import Services
from bot.workers import InboxWorker
from core import outbox
from core.changes import Ctx
from core.clock import FixedClock
from core.messages import Button, Card, Destination, OutMessage
from core.models import InboxEvent, Invitation
from tests import factories
from tests.server_helpers import make_services, pages_app, random_aes_key


@pytest.fixture
def services(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> Services:
    return make_services(sessionmaker, clock)


@pytest.fixture
def wakes() -> list[int]:
    return []


@pytest.fixture
async def client(services: Services, wakes: list[int], aiohttp_client) -> TestClient:
    app = pages_app(services, routes(services, wake_inbox=lambda: wakes.append(1)))
    return await aiohttp_client(app)


@pytest.fixture
async def world(sessionmaker: async_sessionmaker[AsyncSession]) -> factories.World:
    async with sessionmaker() as session:
        w = await factories.world(session, partners=1, inspectors=1, n_targets=0)
        await session.commit()
        return w


async def inbox_rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[InboxEvent]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(InboxEvent).order_by(InboxEvent.id))).all())


async def test_send_stores_one_inbox_row_per_event_id(
    client: TestClient,
    world: factories.World,
    wakes: list[int],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    code = world.lead.liaison.code
    body = {"officer": code, "text": "帮助", "event_id": "page-0001-retry"}
    first = await client.post("/sim/api/send", json=body)
    again = await client.post("/sim/api/send", json=body)  # the page retrying a lost answer
    assert first.status == again.status == 202
    assert await first.json() == {"event_id": "page-0001-retry", "duplicate": False}
    assert (await again.json())["duplicate"] is True
    rows = await inbox_rows(sessionmaker)
    assert [
        (r.platform, r.event_id, r.payload["user_id"], r.payload["text"], r.payload["kind"])
        for r in rows
    ] == [("sim", "page-0001-retry", code, "帮助", "text")]
    assert wakes == [1]  # the worker is woken for the new event only


async def test_action_stores_a_card_action_with_a_generated_id(
    client: TestClient, world: factories.World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    resp = await client.post(
        "/sim/api/action", json={"officer": world.lead.liaison.code, "action_key": "inv:accept:1"}
    )
    assert resp.status == 202
    event_id = (await resp.json())["event_id"]
    [row] = await inbox_rows(sessionmaker)
    assert (row.event_id, row.payload["kind"], row.payload["action_key"]) == (
        event_id,
        "card_action",
        "inv:accept:1",
    )


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/sim/api/send", {"officer": "NOBODY", "text": "帮助"}, 404, "没有编号为“NOBODY”的人员"),
        ("/sim/api/send", {"officer": "P1", "text": "  "}, 400, "缺少 text"),
        ("/sim/api/send", {"officer": "P1", "text": "x", "event_id": "../../etc"}, 400, "event_id"),
        ("/sim/api/action", {"officer": "P1"}, 400, "缺少 action_key"),
        ("/sim/api/send", ["not", "an", "object"], 400, "JSON 对象"),
    ],
)
async def test_bad_requests_get_chinese_json_errors_and_store_nothing(
    client: TestClient,
    world: factories.World,
    sessionmaker: async_sessionmaker[AsyncSession],
    path: str,
    body: Any,
    status: int,
    message: str,
) -> None:
    resp = await client.post(path, json=body)
    assert resp.status == status
    assert message in (await resp.json())["error"]
    assert await inbox_rows(sessionmaker) == []


async def test_oversized_body_is_refused(client: TestClient, world: factories.World) -> None:
    resp = await client.post("/sim/api/send", json={"officer": "P1", "text": "字" * 9000})
    assert resp.status == 413


async def test_messages_lists_direct_and_department_rows_for_that_officer_only(
    client: TestClient,
    world: factories.World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    me, colleague = world.lead.liaison, world.lead.leader
    other_dept = world.partners[0].dep
    card = Card(
        title="联合抽查邀请",
        buttons=[
            Button(label="接受", action_key="inv:accept:9"),
            Button(label="详情", url="http://127.0.0.1:8080/h5/x"),
        ],
    )
    async with sessionmaker() as session:
        for dest, msg in [
            (Destination.officer(me.id), OutMessage.text("给我的私聊")),
            (Destination.officer(colleague.id), OutMessage.text("给同事的私聊")),
            (
                Destination.department(me.department_id),
                OutMessage(kind="card", title="卡片", card=card),
            ),
            (Destination.department(other_dept.id), OutMessage.text("别的部门群")),
            (
                Destination(kind="chat", platform="sim", address=me.code),
                OutMessage.text("会话回复"),
            ),
            (
                Destination(kind="chat", platform="sim", address=colleague.code),
                OutMessage.text("别人的会话"),
            ),
        ]:
            await outbox.enqueue(session, dest, msg, now=clock.now())
        await session.commit()

    resp = await client.get("/sim/api/messages", params={"officer": me.code})
    assert resp.status == 200
    got = await resp.json()
    assert [(m["scope"], m["body"] or m["title"]) for m in got] == [
        ("direct", "给我的私聊"),
        ("department", "卡片"),
        ("direct", "会话回复"),
    ]
    assert got[1]["card"]["buttons"][0]["action_key"] == "inv:accept:9"
    assert got[1]["card"]["buttons"][1]["url"] == "http://127.0.0.1:8080/h5/x"
    assert got[0]["at"].endswith("+08:00")

    later = await client.get(
        "/sim/api/messages", params={"officer": me.code, "after": got[1]["id"]}
    )
    assert [m["body"] for m in await later.json()] == ["会话回复"]


async def test_messages_for_unknown_officer_or_bad_cursor(
    client: TestClient, world: factories.World
) -> None:
    resp = await client.get("/sim/api/messages", params={"officer": "NOBODY"})
    assert resp.status == 404
    assert "没有编号为" in (await resp.json())["error"]
    resp = await client.get(
        "/sim/api/messages", params={"officer": world.lead.liaison.code, "after": "-1"}
    )
    assert resp.status == 400


async def test_officers_and_page(client: TestClient, world: factories.World) -> None:
    officers = await (await client.get("/sim/api/officers")).json()
    liaison = next(o for o in officers if o["code"] == world.lead.liaison.code)
    assert liaison["department"] == "县市场监督管理局"
    assert liaison["role_labels"] == ["联络员"]
    page = await client.get("/sim")
    assert page.status == 200
    html = await page.text()
    assert '<script src="/sim/static/simulator.js"></script>' in html
    assert "切勿在生产环境开放" in html
    script = await client.get("/sim/static/simulator.js")
    assert script.content_type == "text/javascript"
    assert "/sim/api/messages" in await script.text()


async def test_round_trip_through_the_dispatcher(
    services: Services,
    aiohttp_client,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The simulator drives the real server: a card click becomes an answered invitation and
    the reply shows up in the chat pane."""
    async with sessionmaker() as session:
        w = await factories.world(session, partners=1, inspectors=1, n_targets=0)
        ctx = Ctx(session=session, clock=clock, rules=services.rules)
        _, inv = await factories.invite_first_partner(ctx, w)
        await session.commit()
    app = create_app(services, workers=())
    client = await aiohttp_client(app)
    liaison = w.partners[0].liaison.code

    feed = await (await client.get("/sim/api/messages", params={"officer": liaison})).json()
    [card] = [m for m in feed if m["card"]]
    assert card["scope"] == "direct"  # the answer card reaches the liaison directly
    accept = next(b for b in card["card"]["buttons"] if b["label"] == "接受")

    resp = await client.post(
        "/sim/api/action", json={"officer": liaison, "action_key": accept["action_key"]}
    )
    assert resp.status == 202
    assert await InboxWorker(services, app[HANDLER]).run_once() == 1

    async with sessionmaker() as session:
        answered = await session.get(Invitation, inv.id)
        assert answered is not None and answered.state == "accepted"
    after = await (
        await client.get("/sim/api/messages", params={"officer": liaison, "after": card["id"]})
    ).json()
    assert any(m["scope"] == "direct" for m in after)


def send_body(code: str) -> dict[str, str]:
    return {"officer": code, "text": "绑定 SJ009 钉钉 attacker", "event_id": "attack-0001"}


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/sim", "GET"),
        ("/sim/static/simulator.js", "GET"),
        ("/sim/api/officers", "GET"),
        ("/sim/api/messages", "GET"),
        ("/sim/api/send", "POST"),
        ("/sim/api/action", "POST"),
    ],
)
@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8080",
        "127.0.0.1.evil.example",
        "192.168.1.5:8080",
        "localhost.evil.example",
        "",
    ],
)
async def test_foreign_host_is_refused_everywhere(
    client: TestClient,
    world: factories.World,
    path: str,
    method: str,
    host: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """DNS rebinding: the attacker's name resolves to 127.0.0.1, so only the Host header tells."""
    resp = await client.request(
        method,
        path,
        headers={"Host": host},
        params={"officer": world.lead.liaison.code} if method == "GET" else None,
        json=send_body(world.lead.liaison.code) if method == "POST" else None,
    )
    assert resp.status == 403
    assert "仅限本机访问" in await resp.text()
    assert await inbox_rows(sessionmaker) == []


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:8080", "[::1]"]
)
async def test_loopback_hosts_and_same_origin_posts_are_served(
    client: TestClient, world: factories.World, host: str
) -> None:
    officers = await client.get("/sim/api/officers", headers={"Host": host})
    assert officers.status == 200
    resp = await client.post(
        "/sim/api/send",
        json=send_body(world.lead.liaison.code),
        headers={"Host": host, "Origin": f"http://{host}"},
    )
    assert resp.status == 202


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},  # a "simple" cross-site request: no CORS preflight
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "application/json", "Origin": "https://evil.example"},
        {
            "Content-Type": "application/json",
            "Origin": "http://localhost:9999",
        },  # another local port
        {"Content-Type": "application/json", "Origin": "null"},
    ],
)
async def test_cross_site_posts_cannot_act_as_an_officer(
    client: TestClient,
    world: factories.World,
    headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    for path in ("/sim/api/send", "/sim/api/action"):
        body = {**send_body(world.lead.liaison.code), "action_key": "inv:accept:1"}
        resp = await client.post(
            path, data=json.dumps(body, ensure_ascii=False).encode(), headers=headers
        )
        assert resp.status == 403
        assert "JSON" in (await resp.json())["error"]
    assert await inbox_rows(sessionmaker) == []


async def chunks(*parts: bytes) -> Any:
    for part in parts:
        yield part
        await asyncio.sleep(0.05)  # each part arrives on its own, as over a slow link


async def test_chunked_json_body_is_read_to_the_end(
    client: TestClient, world: factories.World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    raw = json.dumps(send_body(world.lead.liaison.code), ensure_ascii=False).encode()
    resp = await client.post(
        "/sim/api/send",
        data=chunks(raw[:10], raw[10:30], raw[30:]),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 202, await resp.text()
    [row] = await inbox_rows(sessionmaker)
    assert row.payload["text"] == "绑定 SJ009 钉钉 attacker"


async def test_chunked_oversized_body_is_refused(
    client: TestClient, world: factories.World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    resp = await client.post(
        "/sim/api/send",
        data=chunks(b'{"text": "', b"x" * 6000, b"y" * 6000),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 413
    assert await inbox_rows(sessionmaker) == []


async def test_server_with_a_platform_configured_has_no_simulator(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, aiohttp_client
) -> None:
    services = make_services(
        sessionmaker,
        clock,
        wecom={
            "corp_id": "ww1",
            "agent_id": 1000002,
            "secret": "s",
            "token": "t",
            "encoding_aes_key": random_aes_key(),
        },
    )
    client = await aiohttp_client(create_app(services, workers=()))
    for path in ("/sim", "/sim/api/officers"):
        assert (await client.get(path)).status == 404
    resp = await client.post("/sim/api/send", json={"officer": "P1", "text": "帮助"})
    assert resp.status in (404, 405)


@pytest.mark.parametrize("after", ["²", "1" * 25, "-1", "1e3"])
async def test_messages_after_must_be_a_plain_id(
    client: TestClient, world: factories.World, after: str
) -> None:
    """Issue 11 defect 5: '²' passed isdigit() and a 25-digit id overflowed the query: 500s."""
    resp = await client.get(
        "/sim/api/messages", params={"officer": world.lead.liaison.code, "after": after}
    )
    assert resp.status == 400
    assert "after" in (await resp.json())["error"]


async def test_deeply_nested_json_is_a_400_and_stores_nothing(
    client: TestClient, world: factories.World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Issue 11 defect 5: 2,000 nested brackets raised RecursionError (500)."""
    resp = await client.post(
        "/sim/api/send",
        data=b"[" * 2000 + b"]" * 2000,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 400
    assert await inbox_rows(sessionmaker) == []
