"""HTTP refusals as a person sees them in a browser: aiohttp's own bodies are English ("413:
Request Entity Too Large", "Maximum request body size … exceeded", "405: Method Not
Allowed"); every page, /public/ and the simulator answer in Chinese and say what to do next.
Platform callbacks keep plain status codes: a platform shows no body to anyone."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.pages.errors import SAID
from bot.platforms.dingtalk import DingTalkAdapter
from bot.platforms.wecom import WeComAdapter
from bot.replays import SignatureLedger
from core.clock import FixedClock
from core.messages import Event, Platform
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wecom import FakeWeCom
from tests.server_helpers import dingtalk_settings, make_services, page_text, wecom_settings

BASE = "http://127.0.0.1:8080"
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Origin": BASE}
PAGE_POSTS = ("/h5/invitation", "/h5/result", "/h5/correction", "/h5/review")
ENGLISH = re.compile(r"[A-Za-z]{3,}[ :]+[A-Za-z]{3,}")  # "Not Found", "Maximum request"


@pytest.fixture
async def client(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> AsyncIterator[TestClient]:
    services = make_services(sessionmaker, clock)
    client = TestClient(TestServer(create_app(services, workers=()), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


async def chinese_page(resp: object, status: int, *says: str) -> str:
    from aiohttp import ClientResponse

    assert isinstance(resp, ClientResponse)
    text = page_text(await resp.text())
    assert resp.status == status, text
    assert resp.content_type == "text/html", (resp.content_type, text)
    assert not ENGLISH.search(text), text
    for words in says:
        assert words in text, text
    return text


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data  # a generator body goes chunked, without Content-Length


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/h5/result", "照片请压缩"),  # the one page that takes files
        ("/h5/correction", "每项不超过 2000 字"),
        ("/h5/invitation", "理由不超过 2000 字"),
        ("/h5/review", "理由不超过 2000 字"),
    ],
)
async def test_a_page_post_too_large_says_what_to_cut_and_that_the_text_is_lost(
    client: TestClient, path: str, says: str
) -> None:
    """Only the result form takes photos: a page without uploads does not tell the person to
    compress photos they never attached, but which text to shorten."""
    body = "t=x&csrf=y&reason=" + "%E7%90%86" * 40_000  # 360 KB: over every page's text limit
    text = await chinese_page(
        await client.post(path, data=body, headers=FORM), 413, "提交的内容过大", says
    )
    assert "未能保存" in text  # the body was never read: nothing typed can be shown back
    if path != "/h5/result":
        assert "压缩" not in text and "照片" not in text and "删减" in text


@pytest.mark.parametrize("path", ["/h5/result", "/h5/correction"])
async def test_a_multipart_post_beyond_every_limit_is_a_chinese_413(
    client: TestClient, path: str
) -> None:
    from aiohttp import FormData

    form = FormData()
    form.add_field("t", "x")
    form.add_field("remarks", "理" * 100_000)
    await chinese_page(
        await client.post(path, data=form, headers={"Origin": BASE}), 413, "提交的内容过大"
    )


@pytest.mark.parametrize("path", PAGE_POSTS)
async def test_a_page_post_without_its_length_is_a_chinese_411(
    client: TestClient, path: str
) -> None:
    resp = await client.post(path, data=chunks(b"t=x&csrf=y"), headers=FORM)
    await chinese_page(resp, 411, "重新提交")


@pytest.mark.parametrize("path", PAGE_POSTS)
async def test_a_page_post_that_is_no_form_is_a_chinese_415(client: TestClient, path: str) -> None:
    resp = await client.post(path, json={"t": "x"}, headers={"Origin": BASE})
    await chinese_page(resp, 415, "页面上的表单")


@pytest.mark.parametrize(
    ("method", "path", "says"),
    [
        ("PUT", "/h5/result", "聊天中的链接"),
        ("DELETE", "/h5/invitation", "聊天中的链接"),
        ("POST", "/public/", "只供浏览"),
        ("POST", "/public/results", "只供浏览"),
        ("POST", "/sim", "模拟器页面"),
        ("POST", "/nope", "只供浏览"),
    ],
)
async def test_a_method_no_page_takes_is_a_chinese_405_in_words_for_who_meets_it(
    client: TestClient, method: str, path: str, says: str
) -> None:
    """An officer's page points back at the chat's link; a public visitor, who never got one,
    is told the page is there to read; the simulator's user, to use its page."""
    resp = await client.request(method, path, headers={"Origin": BASE})
    text = await chinese_page(resp, 405, says)
    assert "Allow" in resp.headers  # what the method check tells a program is kept
    if not path.startswith("/h5/"):
        assert not re.search("聊天|企业微信|钉钉", text.split("无法完成", 1)[1]), text


@pytest.mark.parametrize("path", ["/sim/api/send", "/sim/api/action"])
async def test_a_get_of_the_simulators_post_api_is_a_405_saying_to_post_json(
    client: TestClient, path: str
) -> None:
    """A POST-only API address opened in a browser answered with the public side's 404 page:
    the catch-all page route took every GET nothing else served."""
    resp = await client.get(path)
    assert resp.status == 405 and resp.headers["Allow"] == "POST"
    error = (await resp.json())["error"]
    assert "POST" in error and "JSON" in error and not ENGLISH.search(error)


async def test_the_simulators_api_answers_its_errors_in_chinese_json(client: TestClient) -> None:
    """simulator.js shows `error` of a JSON answer; aiohttp's text body made it show
    "Unexpected token" instead."""
    resp = await client.post("/sim/api/officers", json={})
    assert resp.status == 405 and "请" in (await resp.json())["error"]
    resp = await client.post("/sim/api/nope", json={})
    assert resp.status in (404, 405)
    error = (await resp.json())["error"]
    assert error and not ENGLISH.search(error)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ["/sim/api/clock", "/sim/api/guide"])
async def test_the_demo_clock_without_demo_says_it_exists_only_with_serve_demo(
    client: TestClient, method: str, path: str
) -> None:
    """Without --demo, a POST of the clock said "只接受 GET" and a GET gave the 404 of any
    path: neither says the clock is the demo's."""
    resp = await client.request(method, path, json={"workdays": 1})
    assert resp.status == 404
    error = (await resp.json())["error"]
    assert "只在演示模式" in error and "lianjian serve --demo" in error, error


async def test_the_public_side_and_the_simulator_page_refuse_in_chinese(
    client: TestClient,
) -> None:
    await chinese_page(await client.post("/public/draws/X", data=b"x"), 405, "只供浏览")
    await chinese_page(await client.get("/h5/result/x/y"), 404, "没有这个页面")


async def test_a_defect_of_ours_is_a_chinese_500_page_logged_with_its_traceback(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No person ever sees a traceback or aiohttp's English 500 (a handler that breaks, e.g. a
    template of another version under a running server): the error page says what to do, the
    log keeps the traceback for the maintainers."""

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a defect")

    app = create_app(make_services(sessionmaker, clock), workers=())
    app.router.add_get("/h5/broken", broken)
    app.router.add_get("/sim/api/broken", broken)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        text = await chinese_page(await client.get("/h5/broken"), 500, "请稍后重试")
        assert "Traceback" not in text and "RuntimeError" not in text
        api = await client.get("/sim/api/broken")
        assert api.status == 500 and "请稍后重试" in (await api.json())["error"]
    finally:
        await client.close()
    assert any(r.exc_info and "a defect" in str(r.exc_info[1]) for r in caplog.records)


async def test_only_our_own_words_are_shown_not_a_refusals_text_from_the_request(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """A refusal's text was shown whenever it held a Chinese character, so a refusal echoing
    what the request carried (here a query value) put the request's words on our page. Only
    the words of a refusal we raise ourselves are shown; any other gets its status's."""

    async def echoing(request: web.Request) -> web.Response:
        raise web.HTTPBadRequest(text=f"bad value {request.query.get('v', '')}")

    app = create_app(make_services(sessionmaker, clock), workers=())
    app.router.add_get("/h5/echo", echoing)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        resp = await client.get("/h5/echo", params={"v": "请拨打 110 领取奖金"})
        text = await chinese_page(resp, 400, SAID[400])
        assert "奖金" not in text
        # a refusal of ours keeps its words: an item id no page of ours posts
        resp = await client.post("/h5/invitation", data="t=x&csrf=y&items=%C2%B2", headers=FORM)
        await chinese_page(resp, 400, "抽查事项编号无效")
    finally:
        await client.close()


class BrokenWeCom(WeComAdapter):
    """WeCom whose callback parsing breaks once the body is read: a defect of ours."""

    async def parse(self, request: web.Request) -> list[Event]:
        await request.read()  # over client_max_size: aiohttp's own 413
        raise RuntimeError("a defect")


@pytest.fixture
async def wecom_client(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> AsyncIterator[TestClient]:
    fake = await FakeWeCom(clock=clock).start()
    adapter = BrokenWeCom(wecom_settings(fake), clock)
    services = make_services(sessionmaker, clock, {Platform.WECOM: adapter})
    client = TestClient(TestServer(create_app(services, workers=()), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()
    await fake.close()


async def test_a_platform_callback_keeps_its_plain_refusals_and_a_bare_500(
    wecom_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The callback routes are left out of the error pages (bot/app.py): a platform shows no
    body to anyone, and on a bare 500 it sends the callback again."""
    resp = await wecom_client.request("PUT", "/wecom/callback")
    assert resp.status == 405 and resp.content_type != "text/html"
    resp = await wecom_client.post("/wecom/callback", data=io.BytesIO(b"x" * (2 * 1024 * 1024)))
    assert resp.status == 413 and resp.content_type != "text/html"
    resp = await wecom_client.post("/wecom/callback", data=b"<xml/>")
    assert resp.status == 500 and resp.content_type != "text/html"
    assert "请稍后重试" not in await resp.text()


async def test_a_get_of_a_post_only_platform_callback_is_a_bare_405(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """DingTalk's card callback takes only POST: a GET got the public side's 404 page (the
    catch-all page route); it is a bare 405 like every other refusal of a callback."""
    fake = await FakeDingTalk(clock=clock).start()
    services = make_services(sessionmaker, clock)
    adapter = DingTalkAdapter(
        dingtalk_settings(fake, card_template_id="card.schema"),
        clock,
        SignatureLedger(services),
        public_base_url=services.public_base_url,
    )
    services.adapters[Platform.DINGTALK] = adapter
    client = TestClient(TestServer(create_app(services, workers=()), host="127.0.0.1"))
    await client.start_server()
    try:
        resp = await client.get(adapter.card_callback_path)
        assert resp.status == 405 and resp.headers["Allow"] == "POST"
        assert resp.content_type != "text/html"
    finally:
        await client.close()
        await fake.close()
