"""The signed-link invitation page, end to end over real HTTP against a real database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.pages import missing_pages, routes
from bot.pages.base import csrf_token
from bot.pages.invitation import INVITATION_PATH, invitation_link
from bot.services import Services
from core.clock import FixedClock
from core.links import sign_link, verify_link
from core.models import (
    AuditEvent,
    Department,
    Invitation,
    Item,
    JointTask,
    Officer,
    OutboxMessage,
    TaskItem,
)
from core.rules import Rules
from tests.dispatch_support import LONG_REASON, too_long
from tests.factories import RULE_5PCT
from tests.server_helpers import page_text, pages_app

SECRET = b"k" * 32
BASE = "http://lianjian.example.gov.cn"


@dataclass
class World:
    lead: Department
    health: Department
    liaison: Officer
    inspector: Officer
    key_item: Item
    general_item: Item
    task: JointTask
    invitation: Invitation


async def build_world(session: AsyncSession, clock: FixedClock) -> World:
    lead = Department(code="SCJG", name="县市场监督管理局", is_market_regulator=True)
    health = Department(code="WJW", name="县卫生健康委员会")
    session.add_all([lead, health])
    await session.flush()
    liaison = Officer(code="W001", name="王芳", department_id=health.id, roles=["liaison"])
    inspector = Officer(code="W002", name="李强", department_id=health.id, roles=["inspector"])
    lead_item = Item(
        department_id=lead.id, code="S-01", name="营业执照规范使用情况", category="key"
    )
    key_item = Item(department_id=health.id, code="W-01", name="公共场所卫生许可", category="key")
    general_item = Item(
        department_id=health.id, code="W-02", name="从业人员健康证明", category="general"
    )
    session.add_all([liaison, inspector, lead_item, key_item, general_item])
    await session.flush()
    task = JointTask(
        code="LJ-2026-001",
        year=2026,
        title="2026年住宿业联合抽查",
        lead_department_id=lead.id,
        rule=RULE_5PCT,  # as create_task stores one: accepting checks items' caps against it
        window_start=dt.date(2026, 4, 1),
        window_end=dt.date(2026, 4, 30),
        state="consulting",
        reply_due_on=dt.date(2026, 3, 9),
        created_at=clock.now(),
    )
    session.add(task)
    await session.flush()
    invitation = Invitation(task_id=task.id, department_id=health.id, state="pending")
    session.add_all(
        [invitation, TaskItem(task_id=task.id, item_id=lead_item.id, department_id=lead.id)]
    )
    await session.commit()
    return World(lead, health, liaison, inspector, key_item, general_item, task, invitation)


@pytest.fixture
async def world(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> World:
    async with sessionmaker() as session:
        return await build_world(session, clock)


@pytest.fixture
def services(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> Services:
    return Services(
        settings=Settings(),
        sessionmaker=sessionmaker,
        clock=clock,
        rules=Rules(),
        link_secret=SECRET,
        public_base_url=BASE,
    )


@pytest.fixture
async def client(services: Services, aiohttp_client) -> TestClient:
    return await aiohttp_client(pages_app(services, routes(services)))


def token_for(
    officer: Officer, invitation: Invitation, clock: FixedClock, action: str = "respond"
) -> str:
    return sign_link(
        SECRET,
        officer.id,
        f"invitation:{invitation.id}",
        action,
        int(clock.now().timestamp()) + 3600,
    )


def form(token: str, *pairs: tuple[str, str], **fields: str) -> list[tuple[str, str]]:
    """The answer form as the page posts it: the link token, its CSRF token, the fields."""
    return [("t", token), ("csrf", csrf_token(SECRET, token)), *pairs, *fields.items()]


async def invitation_row(sessionmaker: async_sessionmaker[AsyncSession], inv_id: int) -> Invitation:
    async with sessionmaker() as session:
        row = await session.get(Invitation, inv_id)
        assert row is not None
        return row


async def test_page_shows_the_task_and_both_forms(
    client: TestClient, world: World, clock: FixedClock
) -> None:
    resp = await client.get(
        INVITATION_PATH, params={"t": token_for(world.liaison, world.invitation, clock)}
    )
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    html = await resp.text()
    text = page_text(html)
    for expected in (
        "2026年住宿业联合抽查",
        "县市场监督管理局",
        "2026年4月1日 至 2026年4月30日",
        "2026年3月9日",
        "营业执照规范使用情况",
        "王芳（县卫生健康委员会）",
        "待答复",
        "不少于 10 个字",
    ):
        assert expected in text
    # the department's own items are the check boxes; the key item is pre-checked
    assert f'name="items" value="{world.key_item.id}" checked' in html
    assert f'name="items" value="{world.general_item.id}">' in html
    assert 'name="viewport"' in html


@pytest.mark.parametrize("case", ["forged", "expired", "other_action", "other_object"])
async def test_bad_links_get_a_403_page(
    client: TestClient, services: Services, world: World, clock: FixedClock, case: str
) -> None:
    good = token_for(world.liaison, world.invitation, clock)
    token, message = {
        "forged": (good[:-3] + "abc", "链接无效或被篡改"),
        "expired": (
            sign_link(
                SECRET,
                world.liaison.id,
                f"invitation:{world.invitation.id}",
                "respond",
                int(clock.now().timestamp()),
            ),
            "链接已过期",
        ),
        "other_action": (
            token_for(world.liaison, world.invitation, clock, action="result"),
            "链接与操作不符",
        ),
        "other_object": (
            sign_link(
                SECRET,
                world.liaison.id,
                f"case:{world.invitation.id}",
                "respond",
                int(clock.now().timestamp()) + 60,
            ),
            "链接与操作不符",
        ),
    }[case]
    resp = await client.get(INVITATION_PATH, params={"t": token})
    assert resp.status == 403
    assert message in await resp.text()
    resp = await client.post(
        INVITATION_PATH,
        data=form(token, action="decline", reason="本部门本月无执法力量可以派出，无法参加。"),
    )
    assert resp.status == 403
    # the reason typed is handed back to copy when only the time ran out, never for a bad link
    kept = "<textarea readonly>本部门本月无执法力量可以派出，无法参加。</textarea>"
    assert (kept in await resp.text()) == (case == "expired")
    assert (await invitation_row(services.sessionmaker, world.invitation.id)).state == "pending"


async def test_accept_stores_the_chosen_items(
    client: TestClient,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    token = token_for(world.liaison, world.invitation, clock)
    resp = await client.post(
        INVITATION_PATH,
        data=form(token, ("action", "accept"), ("items", str(world.general_item.id))),
    )
    assert resp.status == 200
    text = page_text(await resp.text())
    assert "已记录" in text and "已答复" in text
    row = await invitation_row(sessionmaker, world.invitation.id)
    assert (row.state, row.responded_by_id) == ("accepted", world.liaison.id)
    async with sessionmaker() as session:
        chosen = set(
            await session.scalars(
                select(TaskItem.item_id).where(
                    TaskItem.task_id == world.task.id, TaskItem.department_id == world.health.id
                )
            )
        )
        to_lead = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.dest_key == f"department:{world.lead.id}")
            )
        ).all()
    assert chosen == {world.general_item.id}  # exactly what was ticked, not the key default
    assert "县卫生健康委员会已接受：LJ-2026-001" in [m.message.get("title") for m in to_lead]


async def test_decline_without_reason_keeps_it_pending(
    client: TestClient,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    token = token_for(world.liaison, world.invitation, clock)
    resp = await client.post(INVITATION_PATH, data=form(token, action="decline", reason="  "))
    assert resp.status == 422
    assert "须书面说明理由" in page_text(await resp.text())
    assert (await invitation_row(sessionmaker, world.invitation.id)).state == "pending"


async def test_short_reason_is_refused_and_the_input_kept_escaped(
    client: TestClient,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    token = token_for(world.liaison, world.invitation, clock)
    resp = await client.post(
        INVITATION_PATH, data=form(token, action="decline", reason="<i>忙</i>")
    )
    html = await resp.text()
    assert resp.status == 422
    assert "至少需要 10 个字" in page_text(html)
    assert "&lt;i&gt;忙&lt;/i&gt;</textarea>" in html  # kept, and escaped
    assert (await invitation_row(sessionmaker, world.invitation.id)).state == "pending"


async def test_the_page_and_the_server_count_a_reason_alike_000_s7(
    client: TestClient, world: World, clock: FixedClock
) -> None:
    """000 §七 (书面函告理由): punctuation does not count toward the reason's length. The
    browser's minlength counted it, so a reason it let through was refused with no count."""
    token = token_for(world.liaison, world.invitation, clock)
    shown = await client.get(INVITATION_PATH, params={"t": token})
    assert "minlength" not in await shown.text()
    reason = "人手不足，无法参加。！"  # 11 characters, 8 of them count
    resp = await client.post(INVITATION_PATH, data=form(token, action="decline", reason=reason))
    assert resp.status == 422
    assert "至少需要 10 个字（标点、空格不计），现有 8 个字" in page_text(await resp.text())


async def test_decline_is_recorded_and_a_second_answer_refused(
    client: TestClient,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    token = token_for(world.liaison, world.invitation, clock)
    reason = "本部门四月集中开展专项整治，执法人员全部抽调，无法参加。"
    resp = await client.post(INVITATION_PATH, data=form(token, action="decline", reason=reason))
    assert resp.status == 200
    text = page_text(await resp.text())
    assert "已记录" in text and reason in text
    row = await invitation_row(sessionmaker, world.invitation.id)
    assert (row.state, row.reason) == ("declined", reason)

    again = await client.post(
        INVITATION_PATH,
        data=form(token, ("action", "accept"), ("items", str(world.key_item.id))),
    )
    text = page_text(await again.text())
    assert "已答复" in text and "不能重复答复" in text
    assert (
        'name="action"' not in await (await client.get(INVITATION_PATH, params={"t": token})).text()
    )
    assert (await invitation_row(sessionmaker, world.invitation.id)).state == "declined"


async def test_officer_without_the_role_is_refused_and_audited(
    client: TestClient,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    token = token_for(world.inspector, world.invitation, clock)
    resp = await client.post(
        INVITATION_PATH,
        data=form(token, ("action", "accept"), ("items", str(world.key_item.id))),
    )
    assert "联络员或分管领导" in page_text(await resp.text())
    assert (await invitation_row(sessionmaker, world.invitation.id)).state == "pending"
    async with sessionmaker() as session:
        denied = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "denied"))
        ).all()
    assert [(d.actor, d.subject) for d in denied] == [("W002", f"invitation:{world.invitation.id}")]


async def test_accept_with_no_item_ticked_is_refused(
    client: TestClient,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    token = token_for(world.liaison, world.invitation, clock)
    resp = await client.post(INVITATION_PATH, data=form(token, action="accept"))
    assert resp.status == 422
    html = await resp.text()
    assert "请至少勾选一项" in page_text(html)
    assert "checked" not in html  # what the officer sent (nothing ticked) is what they see
    assert (await invitation_row(sessionmaker, world.invitation.id)).state == "pending"


async def test_cross_site_post_is_refused(
    client: TestClient,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    token = token_for(world.liaison, world.invitation, clock)
    data = form(token, action="decline", reason="本部门本月无执法力量可以派出，无法参加。")
    resp = await client.post(INVITATION_PATH, data=data, headers={"Origin": "https://evil.example"})
    assert resp.status == 403
    resp = await client.post(
        INVITATION_PATH, data=data, headers={"Referer": "https://evil.example/x"}
    )
    assert resp.status == 403
    assert (await invitation_row(sessionmaker, world.invitation.id)).state == "pending"
    # our public host (behind a proxy) and the host the request came to are both accepted
    resp = await client.post(INVITATION_PATH, data=data, headers={"Origin": BASE})
    assert resp.status == 200
    assert (await invitation_row(sessionmaker, world.invitation.id)).state == "declined"


async def test_both_answer_forms_carry_the_links_csrf_token(
    client: TestClient, world: World, clock: FixedClock
) -> None:
    token = token_for(world.liaison, world.invitation, clock)
    html = await (await client.get(INVITATION_PATH, params={"t": token})).text()
    assert html.count(f'name="csrf" value="{csrf_token(SECRET, token)}"') == 2


@pytest.mark.parametrize("kind", ["missing", "wrong", "another_links"])
async def test_a_post_without_its_csrf_token_stores_nothing(
    client: TestClient,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
    kind: str,
) -> None:
    """The answer page relied on the Origin check only, which passes when a WebView sends no
    Origin or Referer: a post must carry the CSRF token bound to its own link, as the result,
    correction and review forms do. Refused with a page that says what to do; the refusal is
    audited as a denial, never as an answer."""
    token = token_for(world.liaison, world.invitation, clock)
    other = token_for(world.liaison, world.invitation, clock, action="result")
    csrf = {
        "missing": [],
        "wrong": [("csrf", "0" * 32)],
        "another_links": [("csrf", csrf_token(SECRET, other))],
    }[kind]
    data = [
        ("t", token),
        *csrf,
        ("action", "decline"),
        ("reason", "本部门本月无执法力量可以派出，无法参加。"),
    ]
    resp = await client.post(INVITATION_PATH, data=data)
    assert resp.status == 403
    text = page_text(await resp.text())
    assert "页面已失效，请从聊天中的链接重新打开后再提交。" in text
    assert "发送“任务”查看待答复的邀请" in text
    assert (await invitation_row(sessionmaker, world.invitation.id)).state == "pending"
    async with sessionmaker() as session:
        events = (await session.scalars(select(AuditEvent))).all()
    assert [e.action for e in events] == ["denied"]
    assert events[0].actor == "W001" and events[0].subject == f"invitation:{world.invitation.id}"


async def test_a_reason_of_the_full_2000_characters_is_taken(
    client: TestClient,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The textarea allows 2,000 characters, about 18 KiB url-encoded with both tokens: the
    16 KiB body limit refused it with 413 before the page ran."""
    token = token_for(world.liaison, world.invitation, clock)
    reason = "本部门四月集中开展专项整治，执法人员全部抽调，无法参加。" * 72
    reason = reason[:2000]
    resp = await client.post(INVITATION_PATH, data=form(token, action="decline", reason=reason))
    assert resp.status == 200
    row = await invitation_row(sessionmaker, world.invitation.id)
    assert (row.state, row.reason) == ("declined", reason)


async def test_a_reason_at_the_textareas_limit_in_paragraphs_is_taken_000_s7(
    client: TestClient,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """000 §七 (at most 2,000 characters): the textarea counts a line break as one character
    toward its maxlength, and the browser posts it as CR LF (HTML form submission), so a
    reason of 2,000 characters in three paragraphs arrived as 2,002 and was refused as too
    long although the page had let the liaison type it."""
    token = token_for(world.liaison, world.invitation, clock)
    paragraph = ("本部门四月集中开展专项整治，执法人员全部抽调，无法参加。" * 30)[:666]
    typed = "\n".join([paragraph] * 3)
    assert len(typed) == 2000
    posted = typed.replace("\n", "\r\n")
    resp = await client.post(INVITATION_PATH, data=form(token, action="decline", reason=posted))
    assert resp.status == 200, page_text(await resp.text())
    row = await invitation_row(sessionmaker, world.invitation.id)
    assert (row.state, row.reason) == ("declined", typed)


async def test_a_reason_over_2000_characters_is_refused_not_cut_000_s7(
    client: TestClient,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """000 §七: a written reason has at most 2,000 characters. A longer one posted past the
    textarea's maxlength was cut to its first 2,000 and taken; now it is refused as the chat
    refuses it, kept in the field, and the invitation stays pending."""
    token = token_for(world.liaison, world.invitation, clock)
    resp = await client.post(
        INVITATION_PATH, data=form(token, action="decline", reason=LONG_REASON)
    )
    html = await resp.text()
    assert resp.status == 422 and too_long("拒绝理由") in page_text(html)
    assert f"{LONG_REASON}</textarea>" in html
    row = await invitation_row(sessionmaker, world.invitation.id)
    assert (row.state, row.reason) == ("pending", "")


async def test_oversized_and_non_form_bodies_are_refused(
    client: TestClient, world: World, clock: FixedClock
) -> None:
    token = token_for(world.liaison, world.invitation, clock)
    resp = await client.post(
        INVITATION_PATH, data=form(token, action="decline", reason="理" * 20_000)
    )
    assert resp.status == 413
    resp = await client.post(INVITATION_PATH, json={"t": token, "action": "decline"})
    assert resp.status == 415


async def test_invitation_link_opens_the_page_for_that_officer(
    client: TestClient, world: World, services: Services
) -> None:
    url = invitation_link(services, world.liaison.id, world.invitation.id)
    assert url.startswith(f"{BASE}{INVITATION_PATH}?t=")
    token = url.split("?t=", 1)[1]
    claims = verify_link(
        SECRET,
        token,
        services.clock.now().timestamp(),
        obj=f"invitation:{world.invitation.id}",
        action="respond",
    )
    assert claims.officer_id == world.liaison.id
    resp = await client.get(INVITATION_PATH, params={"t": token})
    assert "王芳" in await resp.text()


@pytest.mark.parametrize("bad_id", ["²", "1" * 5000, "١٢", "1234567890"])
async def test_malformed_item_id_is_a_400_not_a_crash(
    client: TestClient,
    world: World,
    clock: FixedClock,
    bad_id: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    token = token_for(world.liaison, world.invitation, clock)
    resp = await client.post(
        INVITATION_PATH,
        data=form(
            token,
            ("action", "accept"),
            ("items", str(world.general_item.id)),
            ("items", bad_id),
        ),
    )
    assert resp.status == 400
    assert "事项编号无效" in await resp.text()
    assert (await invitation_row(sessionmaker, world.invitation.id)).state == "pending"


async def test_a_hundred_concurrent_refusals_are_each_audited(
    client: TestClient,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Issue 11 defect 4: 100 concurrent posts with a valid token of an officer who may not
    answer: on SQLite 80 of them were 500s (two audit appends took the same id) and the
    refusals were not audited. Every audit append now queues like every other write."""
    import asyncio

    from core.audit import verify_chain

    token = token_for(world.inspector, world.invitation, clock)

    async def attempt() -> int:
        resp = await client.post(
            INVITATION_PATH,
            data=form(token, ("action", "accept"), ("items", str(world.key_item.id))),
        )
        await resp.read()
        return resp.status

    statuses = await asyncio.gather(*(attempt() for _ in range(100)))
    assert all(status < 500 for status in statuses), sorted(statuses)
    async with sessionmaker() as session:
        denied = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "denied"))
        ).all()
        assert len(denied) == 100
        assert await verify_chain(session) == []


async def test_a_form_body_that_is_not_utf8_is_a_400(
    client: TestClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Issue 11 defect 5: a raw \\xff body raised UnicodeDecodeError (500)."""
    resp = await client.post(
        INVITATION_PATH,
        data=b"t=\xff&action=accept",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": BASE},
    )
    assert resp.status == 400
    assert "UTF-8" in await resp.text()
    assert (await invitation_row(sessionmaker, world.invitation.id)).state == "pending"


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/public/result", "未找到"),  # the results page without its s
        ("/public/draws/LJ-2026-001-T1/", "未找到"),
        ("/public/draws/%00", "未找到"),
        ("/h5/resul", "无法打开此页面"),
        ("/h5/result/", "无法打开此页面"),
        ("/index.html", "未找到"),  # outside both sides: aiohttp's English page before
        ("/sim/", "未找到"),
    ],
)
async def test_a_mistyped_page_address_gets_a_chinese_page(
    services: Services, aiohttp_client, path: str, says: str
) -> None:
    """A mistyped or truncated address under /public/ or /h5/ got aiohttp's plain English
    "404: Not Found"; it gets the side's own page, in Chinese, saying where to go."""
    app = pages_app(services, routes(services) + missing_pages())
    resp = await (await aiohttp_client(app)).get(path)
    text = page_text(await resp.text())
    assert resp.status == 404 and resp.content_type == "text/html"
    assert says in text and "没有这个页面，请检查网址。" in text and "Not Found" not in text


async def test_the_bare_host_opens_the_public_side(services: Services, aiohttp_client) -> None:
    """`serve` logs http://host:port as where it serves; opening it showed "404: Not Found"."""
    app = pages_app(services, routes(services) + missing_pages())
    resp = await (await aiohttp_client(app)).get("/")
    assert resp.status == 200 and resp.url.path == "/public/"
    assert "双随机、一公开" in await resp.text()


async def test_pages_link_the_favicon(client: TestClient, world: World, clock: FixedClock) -> None:
    page = await client.get(
        INVITATION_PATH, params={"t": token_for(world.liaison, world.invitation, clock)}
    )
    assert '<link rel="icon" href="/favicon.ico">' in await page.text()
