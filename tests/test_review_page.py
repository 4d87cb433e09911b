"""The signed review page over real HTTP: lead and participants approve or return (004 第十九条)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.pages.base import csrf_token
from bot.pages.result import RESULT_PATH, result_link
from bot.pages.review import review_link
from bot.services import Services
from core import replacements
from core.changes import Ctx
from core.clock import FixedClock
from core.links import sign_link
from core.models import Case, CaseResult, Officer, OutboxMessage, Review
from core.referrals import acknowledge, refer
from core.rules import Rules
from handlers.review_page import REVIEW_FILE_PATH, REVIEW_PATH
from tests.case_factories import World
from tests.dispatch_support import LONG_REASON, too_long
from tests.server_helpers import page_text
from tests.test_result_form import (  # client, services, world: the same fixtures
    PDF_BYTES,
    SECRET,
    client,
    fields,
    jpeg,
    others_entered,
    services,
    with_files,
    world,
)

__all__ = ["client", "services", "world"]  # fixtures used by name


def token_of(url: str) -> str:
    return url.split("?t=", 1)[1]


@pytest.fixture
async def submitted(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
) -> None:
    """The lead's inspector entered a problem with a photo and a PDF, 卫健委's part being in
    already (000 §九–十): the case is up for review."""
    await others_entered(sessionmaker, clock, world)
    tok = token_of(result_link(services, world.a1.id, world.case.id))
    item = world.items[0].id
    problem: dict[str, str | list[str]] = {
        f"item.{item}.codes": ["E"],
        f"item.{item}.problems": "未按规定公示年报",
    }
    resp = await client.post(
        RESULT_PATH,
        data=with_files(
            fields(tok, item, followups="责令改正并跟踪", **problem),
            ("现场.jpg", jpeg(), "image/jpeg"),
            ("记录.pdf", PDF_BYTES, "application/pdf"),
        ),
    )
    assert resp.status == 200, page_text(await resp.text())


def review_post(tok: str, decision: str, reason: str = "") -> dict[str, str]:
    return {"t": tok, "csrf": csrf_token(SECRET, tok), "decision": decision, "reason": reason}


async def reviews(sessionmaker: async_sessionmaker[AsyncSession]) -> list[tuple[int, str]]:
    async with sessionmaker() as session:
        return [
            (r.department_id, r.decision)
            for r in await session.scalars(select(Review).order_by(Review.id))
        ]


async def case_state(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    async with sessionmaker() as session:
        return str(await session.scalar(select(Case.state)))


async def test_reviewer_sees_case_parts_attachments_and_history(
    client: TestClient, services: Services, world: World, submitted: None
) -> None:
    tok = token_of(review_link(services, world.lead_liaison.id, world.case.id))
    resp = await client.get(REVIEW_PATH, params={"t": tok})
    html = await resp.text()
    text = page_text(html)
    assert resp.status == 200
    for expected in (
        "检查结果审核",
        world.target.name,
        "县市场监督管理局",
        "县卫生健康委员会",
        "企业公示信息检查",
        "发现问题已责令改正",
        "未按规定公示年报",
        "现场.jpg",
        f"记录.pdf {len(PDF_BYTES)} 字节",  # a small file's size, not "0 KB"
        "提交结果（张检查）",
        "第 1 版 · 本案第 1 次录入",  # the edition and which entry: a resubmission reads apart
        "上传附件",
        "审核通过",
        "退回检查组",
        "待审核部门：县市场监督管理局、县卫生健康委员会",
    ):
        assert expected in text, expected
    img = re.search(r'<img src="([^"]+)"', html)
    assert img is not None and img.group(1).startswith(REVIEW_FILE_PATH)
    photo = await client.get(img.group(1).replace("&amp;", "&"))
    assert photo.status == 200 and photo.headers["Content-Type"] == "image/jpeg"


async def test_each_departments_remark_stands_on_its_own_line_000_s9_10(
    client: TestClient, services: Services, world: World
) -> None:
    """谁检查、谁录入: both departments wrote a remark on their own part; the reviewer reads
    both, each on its own line under its department's name."""
    lead_item, other_item = world.items
    for officer, item, remark in (
        (world.a1, lead_item.id, "负责人在场"),
        (world.b1, other_item.id, "已查验健康证"),
    ):
        tok = token_of(result_link(services, officer.id, world.case.id))
        resp = await client.post(RESULT_PATH, data=fields(tok, item, remarks=remark))
        assert resp.status == 200, page_text(await resp.text())
    tok = token_of(review_link(services, world.lead_liaison.id, world.case.id))
    html = await (await client.get(REVIEW_PATH, params={"t": tok})).text()
    lines = "县市场监督管理局：负责人在场\n县卫生健康委员会：已查验健康证"
    assert f'<dd class="lines">{lines}</dd>' in html


async def test_lead_and_participant_approve_in_turn(
    client: TestClient,
    services: Services,
    world: World,
    submitted: None,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """004 第十九条: the lead and every participating department review the result; the
    closing approval publishes it (审核通过后…自动公示, rules.auto_publish by default)."""
    lead = token_of(review_link(services, world.lead_liaison.id, world.case.id))
    resp = await client.post(REVIEW_PATH, data=review_post(lead, "approve"))
    text = page_text(await resp.text())
    assert resp.status == 200 and "待审核部门：县卫生健康委员会" in text
    # the banner says what chat says, not a bare 已审核通过 while others are still to review
    assert "本部门已审核通过，尚待县卫生健康委员会审核，全部通过后方可公示" in text
    assert await case_state(sessionmaker) == "submitted"
    again = await client.post(REVIEW_PATH, data=review_post(lead, "approve"))
    assert again.status == 422 and "本部门已审核过" in page_text(await again.text())
    other = token_of(review_link(services, world.other_leader.id, world.case.id))
    resp = await client.post(REVIEW_PATH, data=review_post(other, "approve"))
    assert resp.status == 200 and "审核通过并已公示" in page_text(await resp.text())
    assert await case_state(sessionmaker) == "published"
    assert await reviews(sessionmaker) == [(world.lead.id, "approve"), (world.other.id, "approve")]


async def test_a_return_reason_over_2000_characters_is_refused_on_the_page_004_art19(
    client: TestClient,
    services: Services,
    world: World,
    submitted: None,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """004 第十九条: the page's return reason is checked as the chat's: a longer one is refused
    next to the field, kept in it, and nothing is reviewed."""
    tok = token_of(review_link(services, world.other_liaison.id, world.case.id))
    resp = await client.post(REVIEW_PATH, data=review_post(tok, "return", LONG_REASON))
    html = await resp.text()
    assert resp.status == 422 and too_long("退回理由") in page_text(html)
    assert f"{LONG_REASON}</textarea>" in html
    assert await reviews(sessionmaker) == []
    assert await case_state(sessionmaker) == "submitted"


async def test_return_needs_a_reason_and_goes_back_to_the_group(
    client: TestClient,
    services: Services,
    world: World,
    submitted: None,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """004 第十九条: a returned result goes back to the group with the reason."""
    tok = token_of(review_link(services, world.other_liaison.id, world.case.id))
    empty = await client.post(REVIEW_PATH, data=review_post(tok, "return", "  "))
    assert empty.status == 422 and "退回结果时必须写明退回理由" in page_text(await empty.text())
    bad = await client.post(REVIEW_PATH, data=review_post(tok, "maybe", "草稿理由"))
    html = await bad.text()
    assert bad.status == 422 and "草稿理由</textarea>" in html
    resp = await client.post(REVIEW_PATH, data=review_post(tok, "return", "缺少现场负责人签字"))
    assert resp.status == 200 and "已退回检查组" in page_text(await resp.text())
    assert await case_state(sessionmaker) == "returned"
    form = await client.get(
        RESULT_PATH, params={"t": token_of(result_link(services, world.a1.id, world.case.id))}
    )
    assert "审核退回：缺少现场负责人签字" in page_text(await form.text())


@pytest.mark.parametrize("who", ["a1", "outsider"])
async def test_inspectors_may_not_review(
    client: TestClient,
    services: Services,
    world: World,
    submitted: None,
    who: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    officer: Officer = getattr(world, who)
    tok = token_of(review_link(services, officer.id, world.case.id))
    assert (await client.get(REVIEW_PATH, params={"t": tok})).status == 403
    resp = await client.post(REVIEW_PATH, data=review_post(tok, "approve"))
    assert resp.status == 403 and "联络员、分管领导" in page_text(await resp.text())
    assert await reviews(sessionmaker) == []


async def test_submission_sends_each_reviewer_the_review_page_privately(
    world: World, submitted: None, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker() as session:
        rows = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.dest_key.like("officer:%"))
            )
        )
        result = await session.scalar(select(CaseResult))
    assert result is not None
    ref = f"(lianjian-page:review/case:{world.case.id})"
    private = {r.destination["officer_id"] for r in rows if ref in r.message.get("body", "")}
    assert private == {
        world.lead_liaison.id,
        world.lead_leader.id,
        world.other_liaison.id,
        world.other_leader.id,
    }


async def test_an_expired_review_link_names_the_command_that_gives_a_fresh_one(
    client: TestClient, services: Services, world: World, clock: FixedClock
) -> None:
    """The page said 发送“任务”查看待办, and 任务 gives no review link; 案件 案件号 does."""
    now = int(clock.now().timestamp())
    tok = sign_link(SECRET, world.lead_liaison.id, f"case:{world.case.id}", "review", now)
    resp = await client.get(REVIEW_PATH, params={"t": tok})
    text = page_text(await resp.text())
    assert resp.status == 403 and "链接已过期" in text
    assert "发送“案件 案件号”" in text and "任务" not in text


async def test_a_return_on_the_page_may_name_one_departments_part_000_s9_10(
    client: TestClient,
    services: Services,
    world: World,
    submitted: None,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """000 §九–十 with 004 第十九条: the page offers each department with a part as the scope of
    a return, through the same core service as `退回 案件号 部门 理由`; only that part reopens,
    and the result form then shows whose part is entered and whose waits."""
    tok = token_of(review_link(services, world.lead_liaison.id, world.case.id))
    page = await (await client.get(REVIEW_PATH, params={"t": tok})).text()
    assert '<option value="WJ">只退回县卫生健康委员会录入的部分</option>' in page
    assert "各部门录入" in page_text(page)
    resp = await client.post(
        REVIEW_PATH, data={**review_post(tok, "return", "缺少卫生检测记录"), "department": "WJ"}
    )
    assert resp.status == 200 and "已退回该部门录入的部分" in page_text(await resp.text())
    assert await case_state(sessionmaker) == "returned"
    form = page_text(
        await (
            await client.get(
                RESULT_PATH,
                params={"t": token_of(result_link(services, world.b1.id, world.case.id))},
            )
        ).text()
    )
    assert "县市场监督管理局：已录入；县卫生健康委员会：已退回，待重新录入" in form
    wrong = await client.post(
        REVIEW_PATH, data={**review_post(tok, "return", "再核"), "department": "XX"}
    )
    assert wrong.status == 422 and "“XX”不是本案录入结果的部门" in page_text(await wrong.text())


async def replace_a2(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, world: World
) -> None:
    """李检查 (the lead's) asked away by the lead's liaison, the lead's leader naming 吴局外."""
    async with sessionmaker() as session:
        ctx = Ctx(session=session, clock=clock, rules=Rules())
        code = world.case.code
        await replacements.request(
            dataclasses.replace(ctx, actor=world.lead_liaison), code, world.a2.code, "长期病假"
        )
        await replacements.decide(
            dataclasses.replace(ctx, actor=world.lead_leader),
            code,
            world.a2.code,
            new_officer_code=world.outsider.code,
        )
        await session.commit()


async def test_the_history_names_every_step_and_person_in_chinese(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
) -> None:
    """全程留痕 (004 第四条) for the reviewer to read: a replacement (requested, decided, the
    group changed, 001 第十四条) and a referral signed for (004 第二十一条) read in Chinese with
    the names of who did them, also of liaisons and leaders outside the group. They showed as
    case.replacement.requested（AL）, referral.acknowledged（BL）…"""
    async with sessionmaker() as session:
        ctx = Ctx(session=session, clock=clock, rules=Rules())
        code = world.case.code
        await refer(dataclasses.replace(ctx, actor=world.a1), code, "WJ", "未取得卫生许可")
        await acknowledge(dataclasses.replace(ctx, actor=world.other_liaison), code)
        await session.commit()
    await replace_a2(sessionmaker, clock, world)
    tok = token_of(review_link(services, world.lead_liaison.id, world.case.id))
    text = page_text(await (await client.get(REVIEW_PATH, params={"t": tok})).text())
    history = text.split("办理记录", 1)[1]
    assert "未取得卫生许可（已签收）" in text.split("办理记录", 1)[0]  # as the result form says
    for expected in (
        "登记移送：移送办案机构，接收单位 县卫生健康委员会（张检查）",
        "签收移送（孙联络）",
        "申请更换检查人员：李检查（赵联络）：长期病假",
        "更换检查人员：李检查，由吴局外接替（钱领导）：长期病假",
        "批准更换检查人员：李检查，由吴局外接替（钱领导）",
    ):
        assert expected in history, expected
    assert not re.search(r"[a-z]+\.[a-z]", history), history


async def test_a_replacement_reason_shows_to_the_officers_department_only(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
) -> None:
    """Another department's reviewer reads that an inspector was replaced and by whom, not why
    (often personal: the group was told without it); the officer's own department, whose
    leader decided (001 第十四条), reads the reason."""
    await replace_a2(sessionmaker, clock, world)

    async def history(viewer: Officer) -> str:
        tok = token_of(review_link(services, viewer.id, world.case.id))
        text = page_text(await (await client.get(REVIEW_PATH, params={"t": tok})).text())
        return text.split("办理记录", 1)[1]

    other = await history(world.other_liaison)
    assert "更换检查人员：李检查，由吴局外接替（钱领导）" in other and "长期病假" not in other
    own = await history(world.lead_leader)
    assert "更换检查人员：李检查，由吴局外接替（钱领导）：长期病假" in own


async def test_an_expired_review_link_hands_back_the_typed_reason(
    client: TestClient, world: World, clock: FixedClock
) -> None:
    """The reason typed before the link expired is shown back to copy, not lost."""
    now = int(clock.now().timestamp())
    tok = sign_link(SECRET, world.lead_liaison.id, f"case:{world.case.id}", "review", now)
    resp = await client.post(REVIEW_PATH, data=review_post(tok, "return", "附件照片不清晰"))
    html = await resp.text()
    assert resp.status == 403 and "链接已过期" in html
    assert re.search(r"<textarea[^>]*readonly[^>]*>附件照片不清晰</textarea>", html)
