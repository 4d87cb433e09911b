"""The signed result form over real HTTP against a real database: every path and bad input."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import random
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from PIL import Image
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.pages import routes
from bot.pages.base import csrf_token
from bot.pages.links import expand_text
from bot.pages.result import CORRECTION_PATH, RESULT_PATH, result_link
from bot.services import Services
from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.links import sign_link
from core.models import (
    Attachment,
    AuditEvent,
    Case,
    CaseResult,
    Department,
    ItemResult,
    Officer,
    OutboxMessage,
    Referral,
)
from core.result_entry import submit_result
from core.review import review_result
from core.rules import Rules
from handlers import forms
from handlers.forms import RESULT_FILE_PATH
from tests.case_factories import World, acting, build_world, enter_other_parts
from tests.dispatch_support import bodies, make_dispatcher, send, text_event
from tests.server_helpers import make_services, page_text, pages_app

SECRET = b"x" * 40  # make_services' link secret
BASE_URL = "http://127.0.0.1:8080"  # and its public base URL
TODAY = dt.date(2026, 3, 10)


@pytest.fixture
async def world(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> World:
    clock.set(china_noon(TODAY))
    async with sessionmaker() as session:
        return await build_world(session)


@pytest.fixture
def services(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, tmp_path: Path
) -> Services:
    return make_services(
        sessionmaker,
        clock,
        attachments={"dir": str(tmp_path / "files"), "max_file_bytes": 200_000, "max_files": 3},
    )


@pytest.fixture
async def client(services: Services, aiohttp_client) -> TestClient:
    return await aiohttp_client(pages_app(services, routes(services)))


def token(services: Services, officer: Officer, case: Case) -> str:
    return result_link(services, officer.id, case.id).split("?t=", 1)[1]


def fields(tok: str, item: int, **extra: str | list[str]) -> list[tuple[str, str]]:
    """A complete "no problem found" entry for one item (the lead department's in most tests);
    `extra` replaces or adds fields."""
    base: dict[str, str | list[str]] = {
        "t": tok,
        "csrf": csrf_token(SECRET, tok),
        "inspected_on": "2026-03-05",
        "methods": "实地检查",
        "followups": "无需后续处置",
        f"item.{item}.codes": "1",
        f"item.{item}.problems": "",
        f"item.{item}.handling": "",
        "remarks": "",
    }
    base.update(extra)
    return [(k, v) for k, vs in base.items() for v in ([vs] if isinstance(vs, str) else vs)]


async def others_entered(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, world: World
) -> None:
    """卫健委's part is in (000 §九–十): A1's entry completes the case and sends it to review."""
    async with sessionmaker() as session:
        await enter_other_parts(session, world.case.code, world.a1, clock.now())
        await session.commit()


async def results(sessionmaker: async_sessionmaker[AsyncSession]) -> list[CaseResult]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(CaseResult).order_by(CaseResult.version)))


async def case_state(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    async with sessionmaker() as session:
        return str(await session.scalar(select(Case.state)))


async def test_member_sees_own_items_with_every_category(
    client: TestClient, services: Services, world: World
) -> None:
    resp = await client.get(RESULT_PATH, params={"t": token(services, world.a1, world.case)})
    html = await resp.text()
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    text = page_text(html)
    for expected in (
        "检查结果填报",
        world.target.name,
        world.case.code,
        "企业公示信息检查",
        "张检查（县市场监督管理局，组长）",
        "未按规定公示应当公示的信息",
        "发现问题已责令改正",
        "违反县卫生健康委员会相关规定",
        "不配合检查情节严重",
        "其他部门的事项",
        "公共场所卫生检查",
    ):
        assert expected in text, expected
    lead_item, other_item = world.items
    assert f'name="item.{lead_item.id}.codes" value="B"' in html
    assert f'name="item.{other_item.id}.codes"' not in html  # the other department enters its own
    assert (
        f'name="csrf" value="{csrf_token(SECRET, token(services, world.a1, world.case))}"'
        not in html
    )  # every link has its own nonce, so its own CSRF token
    assert 'name="csrf" value="' in html


async def test_no_problem_result_is_submitted_through_core(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
) -> None:
    await others_entered(sessionmaker, clock, world)
    tok = token(services, world.a1, world.case)
    resp = await client.post(RESULT_PATH, data=fields(tok, world.items[0].id))
    text = page_text(await resp.text())
    assert resp.status == 200, text
    assert "结果已提交" in text and "待审核" in text
    [result] = await results(sessionmaker)
    assert (result.codes, result.methods, result.followups, result.inspected_on) == (
        ["1"],
        ["实地检查"],
        ["无需后续处置"],
        dt.date(2026, 3, 5),
    )
    assert await case_state(sessionmaker) == "submitted"
    async with sessionmaker() as session:
        actions = list(await session.scalars(select(AuditEvent.action)))
    assert "case.result.submitted" in actions


async def test_problem_categories_with_referral(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """004 第二十一条: a problem referred to the competent
    department is recorded with the result."""
    tok = token(services, world.a1, world.case)
    item = world.items[0].id
    entry: dict[str, str | list[str]] = {
        f"item.{item}.codes": ["A", "2", "B"],
        f"item.{item}.problems": "2025年度报告未公示",
        f"item.{item}.handling": "责令十日内补报",
        "followups": ["责令改正并跟踪", "移送办案机构"],
        "referral_kind": "移送办案机构",
        "referral_to": "县市场监管局执法大队",
        "referral_content": "涉嫌未按规定公示年报",
    }
    resp = await client.post(RESULT_PATH, data=fields(tok, item, **entry))
    assert resp.status == 200, page_text(await resp.text())
    [result] = await results(sessionmaker)
    assert result.codes == ["A", "2", "B"]
    async with sessionmaker() as session:
        [row] = await session.scalars(select(ItemResult))
        [referral] = await session.scalars(select(Referral))
    assert (row.problems, row.handling) == ("2025年度报告未公示", "责令十日内补报")
    assert (referral.kind, referral.to_department) == ("移送办案机构", "县市场监管局执法大队")
    # the lead's own 执法大队: the lead department signs for it, as for chat's 移送 (001 第十七条)
    assert referral.to_department_id == world.lead.id


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"inspected_on": ""}, "inspected_on", "请填写检查日期"),
        ({"inspected_on": "2026-13-01"}, "inspected_on", "日期格式不正确"),
        ({"inspected_on": "2026-03-11"}, "inspected_on", "检查日期不能晚于今天"),
        ({"methods": []}, "methods", "请至少选择一种检查方式"),
        ({"methods": "跳过检查"}, "methods", "请从列表中选择检查方式"),
        ({"followups": []}, "followups", "请选择后续处置"),
        ({"ITEM.codes": ["B"]}, "ITEM.codes", "还须选择上级类别"),
        ({"ITEM.codes": ["A", "2", "B"]}, "ITEM.problems", "请写明发现的问题"),
        (
            {"ITEM.codes": ["A"], "ITEM.problems": "无证经营"},
            "ITEM.codes",
            "还须至少选择其下一项具体问题：“违反工商（市场监管）行政管理相关规定”、"
            "“违反食品药品相关规定”、“违反质量技术监督相关规定”、“违反公安相关规定”、"
            "“违反县卫生健康委员会相关规定”",
        ),
        ({"ITEM.codes": []}, "items", "请至少为一项检查事项选择检查结果"),
        # 未发现问题 (1) carries no problem, handling or 责令改正: refused, never cleared
        ({"ITEM.problems": "年报未公示"}, "ITEM.problems", "“未发现问题”，不应填写发现的问题"),
        ({"ITEM.handling": "责令补报"}, "ITEM.handling", "“未发现问题”，不应填写处理情况"),
        ({"followups": "责令改正并跟踪"}, "followups", "不能选择“责令改正并跟踪”"),
        ({"referral_kind": "移送司法机关"}, "referral_to", "请填写接收单位"),
        ({"referral_kind": "移送司法机关"}, "referral_content", "请填写移送内容"),
        (
            {"followups": "移送司法机关", "ITEM.codes": ["E"], "ITEM.problems": "无证经营"},
            "referral",
            "请先登记移送记录",
        ),
    ],
)
async def test_bad_input_shows_the_error_next_to_the_field_and_keeps_the_text(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
    extra: dict[str, str | list[str]],
    field: str,
    message: str,
) -> None:
    item = world.items[0].id
    extra = {k.replace("ITEM", f"item.{item}"): v for k, v in extra.items()}
    field = field.replace("ITEM", f"item.{item}")
    tok = token(services, world.a1, world.case)
    remark = "<b>现场负责人</b>不在，由店员陪同"
    resp = await client.post(RESULT_PATH, data=fields(tok, item, remarks=remark, **extra))
    html = await resp.text()
    assert resp.status == 422
    assert message in page_text(html)
    # the message sits right after its field's input, and the typed text is kept (escaped)
    at = html.index(message)
    assert html.rfind(f'name="{field}', 0, at) > html.rfind("<section", 0, at) or field in (
        "items",
        "referral",
    )
    assert "&lt;b&gt;现场负责人&lt;/b&gt;不在，由店员陪同</textarea>" in html
    assert await results(sessionmaker) == []
    assert await case_state(sessionmaker) == "assigned"


async def test_serious_non_cooperation_is_a_status_not_a_problem_to_describe_004_art18(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """004 第十八条: 不配合检查情节严重 (8) is a situation the result is formed from directly,
    not a problem found: the form asks for its follow-up (004 第二十一条), not for 发现的问题,
    which problems (A and its children) and E still need."""
    tok = token(services, world.a1, world.case)
    item = world.items[0].id
    entry = fields(tok, item, followups="抄告相关部门", **{f"item.{item}.codes": "8"})
    resp = await client.post(RESULT_PATH, data=entry)
    assert resp.status == 200, page_text(await resp.text())
    [result] = await results(sessionmaker)
    assert result.codes == ["8"]


async def test_a_part_contradicting_another_departments_situation_is_refused_004_art18(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """004 第十八条, 第十四条: the lead entered 注销 (no visit possible); 卫健委's 未发现问题 with
    实地检查 on its own item is refused above the items, naming the lead's entry, and nothing
    is stored — it was merged into 注销 and published with 实地检查."""
    lead_item, other_item = world.items
    a_tok, b_tok = token(services, world.a1, world.case), token(services, world.b1, world.case)
    gone = fields(a_tok, lead_item.id, methods=[], **{f"item.{lead_item.id}.codes": "9"})
    assert (await client.post(RESULT_PATH, data=gone)).status == 200
    refused = await client.post(RESULT_PATH, data=fields(b_tok, other_item.id))
    shown = page_text(await refused.text())
    assert refused.status == 422
    assert "县市场监督管理局2026年3月10日录入的结果为“注销”（9）" in shown
    assert "请县市场监督管理局重新录入本部门结果后再提交" in shown
    assert [r.codes for r in await results(sessionmaker)] == [["9"]]


async def test_no_follow_up_is_refused_with_the_departments_own_referral_001_art17(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """001 第十七条: a referral registered with the entry is the department's follow-up, so
    无需后续处置 beside it is refused next to the follow-ups, and nothing is stored."""
    tok = token(services, world.a1, world.case)
    referral = {
        "referral_kind": "移送办案机构",
        "referral_to": "卫健委",
        "referral_content": "线索",
    }
    resp = await client.post(RESULT_PATH, data=fields(tok, world.items[0].id, **referral))
    html = await resp.text()
    assert resp.status == 422
    message = "后续处置不能选择“无需后续处置”，请选择“移送办案机构”"
    assert field_before(html, message) == "followups"
    assert await results(sessionmaker) == []
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Referral)) == 0


def field_before(html: str, message: str) -> str:
    """The name of the last form field before `message` on the page."""
    return re.findall(r'name="([^"]+)"', html[: html.index(message)])[-1]


async def test_every_error_is_shown_at_once_next_to_its_field(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The officer corrects the form in one go: each broken rule is said next to its field,
    what was typed kept. It used to say "有 1 处需要修改" and one message at a time."""
    tok = token(services, world.a1, world.case)
    item = world.items[0].id
    posted = [
        ("t", tok),
        ("csrf", csrf_token(SECRET, tok)),
        ("inspected_on", ""),
        (f"item.{item}.codes", "A"),
        (f"item.{item}.problems", ""),
        (f"item.{item}.handling", "当场告知"),
        ("followup_done", "1"),
        ("referral_kind", "其他"),
        ("remarks", "店员陪同"),
    ]
    resp = await client.post(RESULT_PATH, data=posted)
    html = await resp.text()
    expected = {
        "inspected_on": "须经检查作出，请填写检查日期",
        "methods": "请至少选择一种检查方式",
        f"item.{item}.codes": "还须至少选择其下一项具体问题",
        f"item.{item}.problems": "发现问题的，请写明发现的问题",
        "followups": "请选择后续处置",
        "followup_done_on": "后续处置已完成的，请填写完成日期",
        "referral_to": "请填写接收单位",
        "referral_content": "请填写移送内容",
    }
    assert resp.status == 422
    assert f"有 {len(expected)} 处需要修改" in page_text(html)
    assert {field: field_before(html, m) for field, m in expected.items()} == {
        field: field for field in expected
    }
    assert "当场告知</textarea>" in html and "店员陪同</textarea>" in html
    assert '<option value="其他" selected>' in html
    assert await results(sessionmaker) == []


async def test_a_field_refused_as_typed_is_shown_with_the_rules_the_others_break(
    client: TestClient, services: Services, world: World
) -> None:
    """A date that is no date is said next to it, and the other fields are still checked."""
    tok = token(services, world.a1, world.case)
    item = world.items[0].id
    resp = await client.post(
        RESULT_PATH,
        data=fields(tok, item, inspected_on="2026-13-01", followups=[], methods="跳过检查"),
    )
    html = await resp.text()
    assert resp.status == 422 and "有 3 处需要修改" in page_text(html)
    assert field_before(html, "日期格式不正确") == "inspected_on"
    assert field_before(html, "请从列表中选择检查方式") == "methods"
    assert field_before(html, "请选择后续处置") == "followups"


async def test_a_date_before_the_task_window_is_said_with_the_other_rules_000_s5_3(
    client: TestClient, services: Services, world: World
) -> None:
    """The inspection happens within the task's window (000 §五.3): a date before it is said
    next to the date with the follow-up missing, not only once that is put right."""
    tok = token(services, world.a1, world.case)
    item = world.items[0].id
    resp = await client.post(
        RESULT_PATH, data=fields(tok, item, inspected_on="2026-03-01", followups=[])
    )
    html = await resp.text()
    assert resp.status == 422 and "有 2 处需要修改" in page_text(html)
    early = "检查日期早于任务检查时间（2026年3月2日 至 2026年3月31日）"
    assert field_before(html, early) == "inspected_on"
    assert field_before(html, "请选择后续处置") == "followups"


async def test_an_entry_refused_by_core_after_its_referral_leaves_nothing_stored(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
) -> None:
    """The referral is written before core refuses the result (a date other than the one 卫健委
    entered its part on: one visit, 004 第十四条): the page's whole transaction is undone, so
    neither the referral nor an audit row stays, the text is kept, and the corrected form then
    stores one referral."""
    async with sessionmaker() as session:
        await enter_other_parts(session, world.case.code, world.a1, clock.now())
        case = await session.get(Case, world.case.id)
        assert case is not None
        case.inspected_on = dt.date(2026, 3, 4)
        await session.commit()
    tok = token(services, world.a1, world.case)
    item = world.items[0].id
    entry: dict[str, str | list[str]] = {
        f"item.{item}.codes": ["E"],
        f"item.{item}.problems": "无证经营",
        "followups": "移送办案机构",
        "referral_kind": "移送办案机构",
        "referral_to": "县市场监管局执法大队",
        "referral_content": "涉嫌无证经营",
    }

    async def stored() -> tuple[int, int]:
        async with sessionmaker() as session:
            referrals = await session.scalar(select(func.count()).select_from(Referral))
            events = await session.scalar(select(func.count()).select_from(AuditEvent))
            return int(referrals or 0), int(events or 0)

    before = await stored()
    resp = await client.post(RESULT_PATH, data=fields(tok, item, **entry))
    html = await resp.text()
    assert resp.status == 422 and "本案检查日期为 2026年3月4日" in page_text(html)
    assert "涉嫌无证经营" in html and "张检查" in page_text(html)
    assert await stored() == before == (0, 0)
    assert await results(sessionmaker) == []
    resp = await client.post(
        RESULT_PATH, data=fields(tok, item, inspected_on="2026-03-04", **entry)
    )
    assert resp.status == 200, page_text(await resp.text())
    assert (await stored())[0] == 1


def referral_fields(
    item: int, kind: str, receiver: str, content: str = "未取得卫生许可，移交查处"
) -> dict[str, str | list[str]]:
    """A problem (A, 违反卫健委相关规定: 5-卫健, the participant's own) referred on the form."""
    return {
        f"item.{item}.codes": ["A", "5:WJ"],
        f"item.{item}.problems": "无卫生许可证经营",
        "followups": ["其他"],
        "referral_kind": kind,
        "referral_to": receiver,
        "referral_content": content,
    }


async def outbox_to(
    sessionmaker: async_sessionmaker[AsyncSession], department: Department
) -> list[str]:
    """The bodies of the messages queued for a department's chat."""
    async with sessionmaker() as session:
        rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [
            r.message.get("body", "")
            for r in rows
            if r.destination.get("kind") == "department"
            and r.destination.get("department_id") == department.id
        ]


@pytest.mark.parametrize("receiver", ["卫健委", "县卫生健康委员会", "WJ", "卫健委卫生监督所"])
async def test_a_referral_on_the_form_reaches_the_department_which_must_sign_001_art17(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    receiver: str,
) -> None:
    """001 第十七条, 004 第二十一条: a referral entered on the form is the chat's 移送 — the
    receiving department (named as in chat, or by one of its units) is asked in its chat to
    sign within Rules.referral_ack_workdays, and its liaison's 签收 closes it. The form used to
    store the words only: 卫健委 was never told and had nothing to sign."""
    tok = token(services, world.a1, world.case)
    item = world.items[0].id
    entry = referral_fields(item, "移送办案机构", receiver)
    resp = await client.post(RESULT_PATH, data=fields(tok, item, **entry))
    assert resp.status == 200, page_text(await resp.text())
    async with sessionmaker() as session:
        [referral] = await session.scalars(select(Referral))
    assert referral.to_department_id == world.other.id
    assert referral.to_department == (
        receiver if receiver == "卫健委卫生监督所" else "县卫生健康委员会"
    )
    [told] = await outbox_to(sessionmaker, world.other)
    assert f"签收 {world.case.code}" in told and "2026年3月13日" in told  # Tue + 3 working days
    page = page_text(await (await client.get(RESULT_PATH, params={"t": tok})).text())
    assert "（待签收）" in page
    chat = make_dispatcher(sessionmaker, clock)
    signed = await send(
        sessionmaker, chat, text_event(world.other_liaison.code, f"签收 {world.case.code}")
    )
    assert "已签收" in bodies(signed)
    page = page_text(await (await client.get(RESULT_PATH, params={"t": tok})).text())
    assert "（已签收）" in page


@pytest.mark.parametrize(
    ("kind", "receiver", "message"),
    [
        ("移送办案机构", "某局", "找不到部门“某局”，请写部门全称、简称或代码"),
        ("抄告相关部门", "县公安局", "找不到部门“县公安局”"),
        ("移送办案机构", "公安机关", "移送公安机关的，移送方式请选“移送司法机关”"),
        ("移送办案机构", "卫生", "“卫生”可以指县卫生健康委员会、县卫生监督所"),
        ("移送司法机关", "卫生", "“卫生”可以指"),
    ],
)
async def test_a_referral_to_no_department_or_to_several_is_refused_next_to_the_receiver(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
    kind: str,
    receiver: str,
    message: str,
) -> None:
    """移送办案机构 and 抄告相关部门 go to a member department (001 第十七条: 向有权管辖部门移交),
    which must be named alone; nothing is stored and what was typed stays."""
    async with sessionmaker() as session:
        session.add(Department(code="WS", name="县卫生监督所"))
        await session.commit()
    tok = token(services, world.a1, world.case)
    item = world.items[0].id
    entry = referral_fields(item, kind, receiver, "涉嫌<无证>经营")
    resp = await client.post(RESULT_PATH, data=fields(tok, item, **entry))
    html = await resp.text()
    assert resp.status == 422 and message in page_text(html)
    at = html.index(message)
    assert html.rfind('name="referral_to"', 0, at) > html.rfind("<label", 0, at)
    assert f'value="{receiver}"' in html and "涉嫌&lt;无证&gt;经营</textarea>" in html
    assert await results(sessionmaker) == []
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Referral)) == 0


async def test_a_referral_to_a_body_outside_the_county_departments_is_the_leads_to_hand_over(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """001 第十七条: 涉嫌犯罪的，由牵头部门负责移送司法机关. A judicial organ (or, as 其他, a
    body outside the joint conference) signs nothing in the system: the referral keeps the
    name typed and the lead department's chat is told, asked to sign for nothing."""
    tok = token(services, world.b1, world.case)
    item = world.items[1].id
    entry = referral_fields(item, "移送司法机关", "县公安局", "涉嫌生产销售假药")
    resp = await client.post(RESULT_PATH, data=fields(tok, item, **entry))
    assert resp.status == 200, page_text(await resp.text())
    async with sessionmaker() as session:
        [referral] = await session.scalars(select(Referral))
    assert (referral.to_department, referral.to_department_id) == ("县公安局", None)
    [told] = await outbox_to(sessionmaker, world.lead)
    assert "移送司法机关" in told and "县公安局" in told and "签收" not in told
    assert await outbox_to(sessionmaker, world.other) == []


async def test_double_submit_is_idempotent(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
) -> None:
    await others_entered(sessionmaker, clock, world)
    tok = token(services, world.a1, world.case)
    first = await client.post(RESULT_PATH, data=fields(tok, world.items[0].id))
    second = await client.post(RESULT_PATH, data=fields(tok, world.items[0].id))
    assert (first.status, second.status) == (200, 200)
    assert "已提交过，无需重复提交" in page_text(await second.text())
    assert len(await results(sessionmaker)) == 1
    async with sessionmaker() as session:
        submitted = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "case.result.submitted")
        )
    assert submitted == 1
    # a different entry while the first is under review is refused, the text kept
    changed = await client.post(RESULT_PATH, data=fields(tok, world.items[0].id, remarks="补充"))
    assert changed.status == 422 and "正在审核中" in page_text(await changed.text())


async def test_returned_result_opens_prefilled_with_the_reason_on_top(
    client: TestClient,
    services: Services,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """004 第十九条: a returned result goes back to the group, who re-check and resubmit it."""
    await others_entered(sessionmaker, clock, world)
    tok = token(services, world.a1, world.case)
    await client.post(RESULT_PATH, data=fields(tok, world.items[0].id, remarks="首次填写"))
    async with sessionmaker() as session:
        ctx = Ctx(session=session, clock=clock, rules=Rules())
        liaison = await session.get(Officer, world.lead_liaison.id)
        await review_result(acting(ctx, liaison), world.case.code, False, "缺少现场照片")
        await session.commit()
    resp = await client.get(RESULT_PATH, params={"t": tok})
    html = await resp.text()
    text = page_text(html)
    assert "审核退回：缺少现场照片" in text
    assert text.index("审核退回") < text.index(world.target.name)  # on top
    assert "首次填写</textarea>" in html and 'value="2026-03-05"' in html
    assert f'name="item.{world.items[0].id}.codes" value="1" checked' in html
    await others_entered(sessionmaker, clock, world)  # the return reopened every part
    again = await client.post(RESULT_PATH, data=fields(tok, world.items[0].id, remarks="已补充"))
    assert again.status == 200
    assert [(r.version, r.state) for r in await results(sessionmaker)] == [
        (1, "returned"),
        (2, "submitted"),
    ]


async def test_a_returned_part_shows_the_reason_after_another_department_re_enters_004_art19(
    client: TestClient,
    services: Services,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """004 第十九条: a whole return reopens every part; 卫健委 re-enters first, which leaves the
    case 部分录入 with a new version no one reviewed. The lead's part is still 已退回, so its
    form still opens with the reviewer's reason on top, until the lead re-enters."""
    lead_item, other_item = world.items
    a_tok, b_tok = token(services, world.a1, world.case), token(services, world.b1, world.case)
    b_entry = fields(b_tok, other_item.id)
    assert (await client.post(RESULT_PATH, data=b_entry)).status == 200
    assert (await client.post(RESULT_PATH, data=fields(a_tok, lead_item.id))).status == 200
    assert await case_state(sessionmaker) == "submitted"
    async with sessionmaker() as session:
        ctx = Ctx(session=session, clock=clock, rules=Rules())
        liaison = await session.get(Officer, world.other_liaison.id)
        await review_result(acting(ctx, liaison), world.case.code, False, "两部门记录矛盾")
        await session.commit()
    again = await client.post(RESULT_PATH, data=b_entry)
    assert again.status == 200 and await case_state(sessionmaker) == "part_entered"
    assert "审核退回" not in page_text(await again.text())  # 卫健委's part is in again
    text = page_text(await (await client.get(RESULT_PATH, params={"t": a_tok})).text())
    assert "审核退回：两部门记录矛盾" in text
    assert text.index("审核退回") < text.index(world.target.name)
    after = await client.post(RESULT_PATH, data=fields(a_tok, lead_item.id))
    assert after.status == 200 and "审核退回" not in page_text(await after.text())


async def test_each_department_enters_its_own_items_and_others_are_carried_over(
    client: TestClient,
    services: Services,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """000 §九–十: 谁检查、谁录入 — each department enters its own items on the form, which goes
    through the chat's core service: 卫健委's part alone leaves the case 部分录入 (not open for
    review), the lead's part completes it; each version carries the other's part as entered."""
    lead_item, other_item = world.items
    a_tok = token(services, world.a1, world.case)
    forged = await client.post(
        RESULT_PATH, data=fields(a_tok, lead_item.id, **{f"item.{other_item.id}.codes": "1"})
    )
    assert forged.status == 422 and "只能填写本部门负责的检查事项" in page_text(await forged.text())
    b_tok = token(services, world.b1, world.case)
    resp = await client.post(
        RESULT_PATH,
        data=[
            ("t", b_tok),
            ("csrf", csrf_token(SECRET, b_tok)),
            ("inspected_on", "2026-03-05"),
            ("methods", "实地检查"),
            ("followups", "责令改正并跟踪"),
            (f"item.{other_item.id}.codes", "E"),
            (f"item.{other_item.id}.problems", "卫生许可证过期"),
        ],
    )
    text = page_text(await resp.text())
    assert resp.status == 200, text
    assert "尚待其他部门录入本部门事项" in text
    assert await case_state(sessionmaker) == "part_entered"
    page = page_text(await (await client.get(RESULT_PATH, params={"t": a_tok})).text())
    assert "公共场所卫生检查（县卫生健康委员会）：发现问题已责令改正" in page
    again = await client.post(RESULT_PATH, data=fields(a_tok, lead_item.id))
    assert again.status == 200, page_text(await again.text())
    assert await case_state(sessionmaker) == "submitted"
    [_, latest] = await results(sessionmaker)
    assert latest.codes == ["E"]  # the case conclusion from both departments' items
    async with sessionmaker() as session:
        rows = {
            r.item_id: (r.codes, r.problems)
            for r in await session.scalars(
                select(ItemResult).where(ItemResult.result_id == latest.id)
            )
        }
    assert rows == {lead_item.id: (["1"], ""), other_item.id: (["E"], "卫生许可证过期")}


@pytest.mark.parametrize("who", ["outsider", "other_department_staff", "inactive"])
async def test_officers_outside_the_group_get_a_403_page_and_an_audit_row(
    client: TestClient,
    services: Services,
    world: World,
    who: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    officer = {
        "outsider": world.outsider,
        "other_department_staff": world.other_liaison,
        "inactive": world.a2,
    }[who]
    if who == "inactive":
        async with sessionmaker() as session:
            row = await session.get(Officer, officer.id)
            assert row is not None
            row.active = False
            await session.commit()
    tok = token(services, officer, world.case)
    resp = await client.get(RESULT_PATH, params={"t": tok})
    assert resp.status == 403
    posted = await client.post(RESULT_PATH, data=fields(tok, world.items[0].id))
    assert posted.status == 403
    assert await results(sessionmaker) == []
    if who != "inactive":
        async with sessionmaker() as session:
            denied = list(
                await session.scalars(select(AuditEvent.data).where(AuditEvent.action == "denied"))
            )
        assert {"action": "case.result.submit.denied"}.items() <= denied[-1].items()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("forged", "链接无效或被篡改"),
        ("expired", "链接已过期"),
        ("other_action", "链接与操作不符"),
        ("other_case", "找不到该案件"),
        ("csrf", "页面已失效"),
    ],
)
async def test_bad_links_get_a_clear_page(
    client: TestClient,
    services: Services,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
    kind: str,
    message: str,
) -> None:
    good = token(services, world.a1, world.case)
    now = int(clock.now().timestamp())
    tok = {
        "forged": good[:-3] + ("abc" if not good.endswith("abc") else "xyz"),
        "expired": sign_link(SECRET, world.a1.id, f"case:{world.case.id}", "result", now),
        "other_action": sign_link(SECRET, world.a1.id, f"case:{world.case.id}", "review", now + 60),
        "other_case": sign_link(SECRET, world.a1.id, "case:999999", "result", now + 60),
        "csrf": good,
    }[kind]
    data = fields(tok, world.items[0].id)
    if kind == "csrf":
        data = [(k, "0" * 32 if k == "csrf" else v) for k, v in data]
    else:
        get = await client.get(RESULT_PATH, params={"t": tok})
        assert get.status in (403, 404) and message in page_text(await get.text())
    resp = await client.post(RESULT_PATH, data=data)
    assert resp.status in (403, 404)
    assert message in page_text(await resp.text())
    assert await results(sessionmaker) == []


async def test_cross_site_post_is_refused(
    client: TestClient, services: Services, world: World
) -> None:
    tok = token(services, world.a1, world.case)
    resp = await client.post(
        RESULT_PATH,
        data=fields(tok, world.items[0].id),
        headers={"Origin": "https://evil.example.com"},
    )
    assert resp.status == 403 and "其他网站" in page_text(await resp.text())


async def test_page_reference_in_a_message_opens_the_form_for_its_recipient_only(
    client: TestClient, services: Services, world: World
) -> None:
    """Assignments, nudges and 我的检查 carry `[填报结果](lianjian-page:result/case:ID)`; the
    sender signs it for the officer each copy goes to, and a group copy keeps the label only."""
    ref = f"[填报结果](lianjian-page:result/case:{world.case.id})"
    url = re.search(r"\((http[^)]+)\)", expand_text(services, world.a1.id, ref))
    assert url is not None
    resp = await client.get(url.group(1).replace(BASE_URL, ""))
    assert resp.status == 200 and "检查结果填报" in page_text(await resp.text())
    assert expand_text(services, None, ref) == "填报结果"


def jpeg(color: str = "red", size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return out.getvalue()


def noise(fmt: str) -> bytes:
    """A real photo-like picture of random pixels, far larger than 2000 bytes in any format."""
    out = io.BytesIO()
    Image.frombytes("RGB", (120, 90), random.Random(7).randbytes(120 * 90 * 3)).save(out, fmt)
    return out.getvalue()


PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def with_files(data: list[tuple[str, str]], *files: tuple[str, bytes, str]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in data:
        form.add_field(name, value)
    for filename, content, mime in files:
        form.add_field("attachments", content, filename=filename, content_type=mime)
    return form


async def attachment_rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Attachment]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(Attachment).order_by(Attachment.id)))


async def test_photo_and_pdf_are_stored_by_content_hash_and_shown_to_the_group(
    client: TestClient,
    services: Services,
    world: World,
    tmp_path: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
) -> None:
    await others_entered(sessionmaker, clock, world)
    tok = token(services, world.a1, world.case)
    photo = jpeg()
    resp = await client.post(
        RESULT_PATH,
        data=with_files(
            fields(tok, world.items[0].id),
            ("C:\\DCIM\\现场.jpg", photo, "image/jpeg"),
            ("记录.pdf", PDF_BYTES, "application/pdf"),
        ),
    )
    html = await resp.text()
    assert resp.status == 200, page_text(html)
    rows = await attachment_rows(sessionmaker)
    sha = hashlib.sha256(photo).hexdigest()
    assert (rows[0].name, rows[0].mime, rows[0].sha256) == ("现场.jpg", "image/jpeg", sha)
    assert rows[1].mime == "application/pdf"
    assert (tmp_path / "files" / sha[:2] / sha).read_bytes() == photo
    # the page shows the photo through the page's own link; another case's link cannot
    url = re.search(r'<img src="([^"]+)"', html)
    assert url is not None
    got = await client.get(unescape(url.group(1)))
    assert got.status == 200 and await got.read() == photo
    assert got.headers["Content-Type"] == "image/jpeg"
    assert "sandbox" in got.headers["Content-Security-Policy"]
    other = token(services, world.a1, Case(id=world.case.id + 1000))
    denied = await client.get(RESULT_FILE_PATH, params={"t": other, "a": str(rows[0].id)})
    assert denied.status in (403, 404)
    outsider = token(services, world.outsider, world.case)
    assert (
        await client.get(RESULT_FILE_PATH, params={"t": outsider, "a": str(rows[0].id)})
    ).status == 403


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("fake.jpg", b"MZ\x90\x00 this is a program, not a photo", "不是有效的图片或 PDF"),
        ("big.jpg", jpeg(size=(2, 2)) + b"\x00" * 250_000, "超过 0.2 MB，请压缩后上传"),
        ("bomb.png", b"", "图片像素过大（60000×1000，最多 5000 万像素）"),
        ("half.pdf", b"%PDF-1.4\n1 0 obj", "PDF 文件不完整"),
        ("cut.jpg", b"", "不是有效的图片或 PDF"),
        ("cut.png", b"", "不是有效的图片或 PDF"),
    ],
)
async def test_fake_oversize_or_huge_images_are_refused_next_to_the_field(
    client: TestClient,
    services: Services,
    world: World,
    filename: str,
    content: bytes,
    message: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    if filename == "bomb.png":  # 1 × 60,000,000 pixels: a tiny file that decodes huge
        out = io.BytesIO()
        Image.new("1", (60_000, 1_000)).save(out, "PNG")
        content = out.getvalue()
    if filename.startswith("cut."):  # a photo cut off in transfer: its header is whole
        content = noise(filename.removeprefix("cut.").replace("jpg", "JPEG").upper())[:2000]
    tok = token(services, world.a1, world.case)
    resp = await client.post(
        RESULT_PATH,
        data=with_files(
            fields(tok, world.items[0].id, remarks="照片见附件"), (filename, content, "image/jpeg")
        ),
    )
    html = await resp.text()
    assert resp.status == 422
    assert message in page_text(html)
    at = html.index(message)
    assert html.rfind('name="attachments"', 0, at) > html.rfind("<section", 0, at)
    assert "照片见附件</textarea>" in html
    assert await results(sessionmaker) == [] and await attachment_rows(sessionmaker) == []


@functools.cache
def huge_png() -> bytes:
    """A genuine 20,000 × 20,000 picture (400 million pixels, 48 KB): Pillow refuses to open
    it at all (twice its own bomb limit)."""
    out = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(out, "PNG")
    return out.getvalue()


async def test_a_genuine_picture_of_too_many_pixels_is_said_to_be_too_large(
    client: TestClient, services: Services, world: World
) -> None:
    """It was "该文件内容不是有效的图片或 PDF"; the limit is `attachments.max_image_pixels`."""
    tok = token(services, world.a1, world.case)
    resp = await client.post(
        RESULT_PATH,
        data=with_files(fields(tok, world.items[0].id), ("huge.png", huge_png(), "image/png")),
    )
    text = page_text(await resp.text())
    assert resp.status == 422
    assert "文件“huge.png”：图片像素过大（20000×20000，最多 5000 万像素），请缩小后上传" in text
    assert "不是有效的图片" not in text


@pytest.mark.parametrize("others", [("huge.png",), ("fake.jpg",), ("huge.png", "fake.jpg")])
async def test_every_refused_file_is_named_at_once(
    client: TestClient,
    services: Services,
    world: World,
    others: tuple[str, ...],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """README: every error at once. With a file over the size limit only that one was named;
    the others refused beside it vanished without a word. A good photo beside them is kept
    for the next submit."""
    content = {"huge.png": huge_png(), "fake.jpg": b"just some text, not a photo"}
    tok = token(services, world.a1, world.case)
    posted = [("big.jpg", jpeg(size=(2, 2)) + b"\x00" * 250_000, "image/jpeg")]
    posted += [(name, content[name], "image/jpeg") for name in others]
    posted.append(("good.jpg", jpeg("blue"), "image/jpeg"))
    resp = await client.post(RESULT_PATH, data=with_files(fields(tok, world.items[0].id), *posted))
    html = await resp.text()
    assert resp.status == 422
    said = {
        "big.jpg": "文件“big.jpg”超过 0.2 MB",
        "huge.png": "文件“huge.png”：图片像素过大",
        "fake.jpg": "文件“fake.jpg”：只能上传照片",
    }
    for name in ("big.jpg", *others):
        assert said[name] in page_text(html), name
    good = hashlib.sha256(posted[-1][1]).hexdigest() + "good.jpg"
    assert f'name="keep" value="{good}" checked' in html
    assert await results(sessionmaker) == []


async def test_an_error_elsewhere_keeps_the_uploaded_photo(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    tok = token(services, world.a1, world.case)
    photo = jpeg("blue")
    first = await client.post(
        RESULT_PATH,
        data=with_files(fields(tok, world.items[0].id, methods=[]), ("a.jpg", photo, "image/jpeg")),
    )
    html = await first.text()
    assert first.status == 422
    keep = hashlib.sha256(photo).hexdigest() + "a.jpg"
    assert f'name="keep" value="{keep}" checked' in html
    again = await client.post(RESULT_PATH, data=fields(tok, world.items[0].id, keep=keep))
    assert again.status == 200
    assert [r.name for r in await attachment_rows(sessionmaker)] == ["a.jpg"]


async def test_double_submit_with_a_photo_stores_one_result(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    tok = token(services, world.a1, world.case)
    for _ in range(2):
        resp = await client.post(
            RESULT_PATH,
            data=with_files(fields(tok, world.items[0].id), ("a.jpg", jpeg(), "image/jpeg")),
        )
        assert resp.status == 200
    assert len(await results(sessionmaker)) == 1
    assert len(await attachment_rows(sessionmaker)) == 1


async def test_returned_for_a_missing_photo_the_group_adds_it(
    client: TestClient,
    services: Services,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The issue's walk-through: 退回 … 缺少现场照片, then the photo is added on the form and the
    earlier PDF carried over to the new version."""
    await others_entered(sessionmaker, clock, world)
    tok = token(services, world.a1, world.case)
    await client.post(
        RESULT_PATH,
        data=with_files(fields(tok, world.items[0].id), ("记录.pdf", PDF_BYTES, "application/pdf")),
    )
    async with sessionmaker() as session:
        ctx = Ctx(session=session, clock=clock, rules=Rules())
        liaison = await session.get(Officer, world.lead_liaison.id)
        await review_result(acting(ctx, liaison), world.case.code, False, "缺少现场照片")
        await session.commit()
    html = await (await client.get(RESULT_PATH, params={"t": tok})).text()
    keep = hashlib.sha256(PDF_BYTES).hexdigest() + "记录.pdf"
    assert f'name="keep" value="{keep}" checked' in html
    await others_entered(sessionmaker, clock, world)  # the return reopened every part
    resp = await client.post(
        RESULT_PATH,
        data=with_files(
            fields(tok, world.items[0].id, keep=keep), ("现场.jpg", jpeg(), "image/jpeg")
        ),
    )
    assert resp.status == 200
    latest = (await results(sessionmaker))[-1]
    names = [r.name for r in await attachment_rows(sessionmaker) if r.result_id == latest.id]
    assert sorted(names) == ["现场.jpg", "记录.pdf"]


async def test_too_many_files_are_refused(
    client: TestClient, services: Services, world: World
) -> None:
    tok = token(services, world.a1, world.case)
    photos = [
        (f"{i}.jpg", jpeg(color), "image/jpeg")
        for i, color in enumerate(("red", "green", "blue", "white"))
    ]
    resp = await client.post(RESULT_PATH, data=with_files(fields(tok, world.items[0].id), *photos))
    assert resp.status == 422 and "附件最多 3 个" in page_text(await resp.text())


async def test_a_part_entered_by_chat_keeps_the_photos_of_the_parts_before_it(
    client: TestClient,
    services: Services,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """谁检查、谁录入: the lead's inspector enters its part on the form with a photo, then 卫健委's
    inspector sends `提交 … 未发现问题` in chat. Each part is a new version, and the review page
    shows the latest version's files: the chat's version carried none, so the reviewers never
    saw the photo and a return for it reopened the form without it."""
    tok = token(services, world.a1, world.case)
    resp = await client.post(
        RESULT_PATH,
        data=with_files(fields(tok, world.items[0].id), ("现场.jpg", jpeg(), "image/jpeg")),
    )
    assert resp.status == 200 and await case_state(sessionmaker) == "part_entered"
    chat = make_dispatcher(sessionmaker, clock)
    reply = await send(
        sessionmaker, chat, text_event(world.b1.code, f"提交 {world.case.code} 未发现问题")
    )
    assert "已送" in bodies(reply) and await case_state(sessionmaker) == "submitted"
    latest = (await results(sessionmaker))[-1]
    names = [r.name for r in await attachment_rows(sessionmaker) if r.result_id == latest.id]
    assert names == ["现场.jpg"]


def _checked(html: str, name: str) -> list[str]:
    return re.findall(rf'name="{re.escape(name)}" value="([^"]+)" checked', html)


async def test_another_departments_entry_keeps_the_leads_photo_methods_and_follow_ups_000_s9_10(
    client: TestClient,
    services: Services,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """000 §九–十, 谁检查、谁录入: the lead's inspector enters its part with two methods, a
    follow-up, a remark and a photo; 卫健委's inspector then enters only its own (实地检查,
    无需后续处置, no file ticked). His form offered none of the lead's as his own, and his
    entry changes none of them: the version keeps the lead's photo (as uploaded by the lead),
    methods, follow-up and remark, and after a return the lead's form opens with them all."""
    lead_item, other_item = world.items
    a_tok, b_tok = token(services, world.a1, world.case), token(services, world.b1, world.case)
    lead: dict[str, str | list[str]] = {
        "methods": ["实地检查", "检验检测"],
        "followups": "责令改正并跟踪",
        "remarks": "已抽样送检",
        f"item.{lead_item.id}.codes": ["A", "2", "D"],
        f"item.{lead_item.id}.problems": "从业人员无健康证",
    }
    photo = ("photo1.jpg", jpeg(), "image/jpeg")
    first = await client.post(
        RESULT_PATH, data=with_files(fields(a_tok, lead_item.id, **lead), photo)
    )
    assert first.status == 200, page_text(await first.text())
    b_form = await (await client.get(RESULT_PATH, params={"t": b_tok})).text()
    assert 'name="keep"' not in b_form and _checked(b_form, "methods") == []
    assert "检查方式 实地检查、检验检测" in page_text(b_form) and "photo1.jpg" in b_form
    resp = await client.post(RESULT_PATH, data=fields(b_tok, other_item.id))
    assert resp.status == 200, page_text(await resp.text())
    assert await case_state(sessionmaker) == "submitted"
    latest = (await results(sessionmaker))[-1]
    assert (latest.methods, latest.followups, latest.remarks) == (
        ["实地检查", "检验检测"],
        ["责令改正并跟踪"],
        "已抽样送检",
    )
    rows = await attachment_rows(sessionmaker)
    kept = [(r.name, r.uploaded_by_id) for r in rows if r.result_id == latest.id]
    assert kept == [("photo1.jpg", world.a1.id)]
    async with sessionmaker() as session:
        ctx = Ctx(session=session, clock=clock, rules=Rules())
        liaison = await session.get(Officer, world.lead_liaison.id)
        await review_result(acting(ctx, liaison), world.case.code, False, "两部门记录矛盾")
        await session.commit()
    a_form = await (await client.get(RESULT_PATH, params={"t": a_tok})).text()
    keep = hashlib.sha256(photo[1]).hexdigest() + "photo1.jpg"
    assert _checked(a_form, "keep") == [keep]
    assert _checked(a_form, "methods") == ["实地检查", "检验检测"]
    assert _checked(a_form, "followups") == ["责令改正并跟踪"]
    assert "已抽样送检</textarea>" in a_form


async def test_a_follow_up_rule_applies_to_the_departments_own_codes_000_s9_10(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """000 §九–十: the lead found a problem (A) and follows it up; 卫健委's inspector, who found
    none in his own item, chooses 无需后续处置 — the lead's A is not his to follow up. A code
    of his own that needs a follow-up (E) is still refused with 无需后续处置."""
    lead_item, other_item = world.items
    a_tok, b_tok = token(services, world.a1, world.case), token(services, world.b1, world.case)
    lead: dict[str, str | list[str]] = {
        "followups": "责令改正并跟踪",
        f"item.{lead_item.id}.codes": ["A", "2", "D"],
        f"item.{lead_item.id}.problems": "从业人员无健康证",
    }
    assert (await client.post(RESULT_PATH, data=fields(a_tok, lead_item.id, **lead))).status == 200
    own_problem: dict[str, str | list[str]] = {
        f"item.{other_item.id}.codes": "E",
        f"item.{other_item.id}.problems": "卫生许可证过期",
    }
    refused = await client.post(RESULT_PATH, data=fields(b_tok, other_item.id, **own_problem))
    assert refused.status == 422 and "（E）须有后续处置" in page_text(await refused.text())
    resp = await client.post(RESULT_PATH, data=fields(b_tok, other_item.id))
    assert resp.status == 200, page_text(await resp.text())
    latest = (await results(sessionmaker))[-1]
    assert (latest.codes, latest.followups) == (["A", "2", "D"], ["责令改正并跟踪"])


async def _participant_is_police(sessionmaker: async_sessionmaker[AsyncSession], w: World) -> None:
    """The participant is 县公安局 (short name 公安): its own child of A, G:WJ, reads
    "违反公安相关规定", the national G's very words."""
    async with sessionmaker() as session:
        other = await session.get(Department, w.other.id)
        assert other is not None
        other.name, other.short_name = "县公安局", "公安"
        await session.commit()


def _offered(html: str, item: int) -> list[str]:
    return re.findall(rf'name="item\.{item}\.codes" value="([^"]+)"', html)


async def test_a_department_child_is_offered_instead_of_the_national_code_with_its_words(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Result categories (docs/domain.md): 3, 4, G, 5 generalise to one child of A per
    participating department; 公安's own child stands in for G, so the officer sees
    "违反公安相关规定" once, tagged G-公安; with departments of its own the task offers no
    generic 5 (其他部门), which names no department."""
    await _participant_is_police(sessionmaker, world)
    resp = await client.get(RESULT_PATH, params={"t": token(services, world.b1, world.case)})
    html = await resp.text()
    offered = _offered(html, world.items[1].id)
    assert "G:WJ" in offered and "G" not in offered and "5" not in offered
    assert {"3", "4"} <= set(offered)
    text = page_text(html)
    assert text.count("违反公安相关规定") == 1 and "G-公安 违反公安相关规定" in text
    assert "违反其他部门相关规定" not in text
    assert len(offered) == len(set(offered))
    box = rf'name="item\.{world.items[1].id}\.codes" value="[^"]+"[^>]*><span>(\S+) '
    tags = re.findall(box, html)
    assert len(tags) == len(offered) == len(set(tags))


async def test_the_generic_other_departments_code_is_refused_where_departments_have_their_own(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Result categories (docs/domain.md: 3, 4, G, 5 — one child per participating
    department): a posted 5 (违反其他部门相关规定) names no department while 卫健委 has its
    own child; the server refuses it next to the item, naming the choice (5-县卫生健康委员会), and
    stores nothing; the department's own child is taken."""
    tok = token(services, world.a1, world.case)
    item = world.items[0].id
    problem = {f"item.{item}.problems": "无卫生许可证经营", "followups": "抄告相关部门"}
    resp = await client.post(
        RESULT_PATH, data=fields(tok, item, **{f"item.{item}.codes": ["A", "5"]}, **problem)
    )
    html = await resp.text()
    assert resp.status == 422
    message = "“违反其他部门相关规定”（5）没有写明违反哪个部门的规定"
    assert message in page_text(html)
    assert "“违反县卫生健康委员会相关规定”（5-县卫生健康委员会）" in html
    at = html.index(message)
    assert html.rfind(f'name="item.{item}.codes"', 0, at) > html.rfind("<section", 0, at)
    assert await results(sessionmaker) == []
    ok = await client.post(
        RESULT_PATH, data=fields(tok, item, **{f"item.{item}.codes": ["A", "5:WJ"]}, **problem)
    )
    assert ok.status == 200, page_text(await ok.text())
    [stored] = await results(sessionmaker)
    assert stored.codes == ["A", "5:WJ"]


async def test_a_national_code_stored_by_chat_shows_and_round_trips_when_returned(
    client: TestClient,
    services: Services,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """004 第十九条: a returned result re-opens pre-filled. A national code entered in chat
    (G, not 公安's own G:WJ) shows ticked, once, and is submitted again as stored."""
    await _participant_is_police(sessionmaker, world)
    lead_item, police_item = world.items
    async with sessionmaker() as session:
        ctx = Ctx(session=session, clock=clock, rules=Rules())
        people = {o.id: o for o in await session.scalars(select(Officer))}
        # 公安's part, then the lead's; the case conclusion merges the items (谁检查、谁录入)
        entries = (
            (world.b1, police_item, ["A", "G"], "未按规定登记", "责令改正并跟踪"),
            (world.a1, lead_item, ["1"], "", "无需后续处置"),
        )
        for officer, item, codes, problems, followup in entries:
            await submit_result(
                acting(ctx, people[officer.id]),
                world.case.code,
                codes=["A", "G"],
                methods=["实地检查"],
                followups=[followup],
                inspected_on=dt.date(2026, 3, 5),
                item_results=[{"item_id": item.id, "codes": codes, "problems": problems}],
            )
        await review_result(
            acting(ctx, people[world.lead_liaison.id]), world.case.code, False, "缺签名"
        )
        await session.commit()
    tok = token(services, world.b1, world.case)
    html = await (await client.get(RESULT_PATH, params={"t": tok})).text()
    assert f'name="item.{police_item.id}.codes" value="G" checked' in html
    assert "G:WJ" not in _offered(html, police_item.id)
    assert page_text(html).count("违反公安相关规定") == 1
    posted: dict[str, str | list[str]] = {
        "followups": "责令改正并跟踪",
        "remarks": "已补签名",
        f"item.{police_item.id}.codes": ["A", "G"],  # as pre-filled: nothing changed
        f"item.{police_item.id}.problems": "未按规定登记",
    }
    again = await client.post(RESULT_PATH, data=fields(tok, police_item.id, **posted))
    assert again.status == 200, page_text(await again.text())
    async with sessionmaker() as session:
        latest = await session.scalar(select(CaseResult).order_by(CaseResult.version.desc()))
        assert latest is not None and latest.remarks == "已补签名"
        stored = await session.scalar(
            select(ItemResult.codes).where(
                ItemResult.result_id == latest.id, ItemResult.item_id == police_item.id
            )
        )
    assert stored == ["A", "G"]


async def test_the_form_reads_and_writes_in_a_fixed_number_of_statements(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
) -> None:
    """The page's statements are its cost (#9: each ~0.2 ms of SQLAlchemy's own CPU): the case
    comes with its latest version and its group, the task's departments with their items, and
    nothing is read back after the entry but what only the page shows. A new look-up on the
    way fails here."""
    await others_entered(sessionmaker, clock, world)
    seen: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(" ".join(statement.split()[:4]))

    tok = token(services, world.a1, world.case)
    engine = sessionmaker.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        shown = await client.get(RESULT_PATH, params={"t": tok})
        reads = len(seen)
        posted = await client.post(RESULT_PATH, data=fields(tok, world.items[0].id))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert (shown.status, posted.status) == (200, 200)
    # GET: officer, case + latest version + group + parts, departments + items, referrals,
    # holidays (the case's history is the review page's)
    assert reads == 5, "\n".join(seen)
    # POST: officer, case + latest version + targets locked + group + parts (locked),
    # departments + items, the case's referrals against 无需后续处置 (the form's check, then
    # core's on entry, 001 第十七条), holidays; the entry's unit of work (part, version, case,
    # items), the review staff with where the task's cases stand, outbox, audit (head, its
    # first row, head, event, head); the task's stage and that audit (head, event, head);
    # referrals
    assert len(seen) - reads == 22, "\n".join(seen[reads:])


@pytest.mark.parametrize(
    ("path", "action"), [(RESULT_PATH, "result"), (CORRECTION_PATH, "correction")]
)
async def test_an_expired_link_hands_back_the_typed_text_a_forged_one_nothing(
    client: TestClient, world: World, clock: FixedClock, path: str, action: str
) -> None:
    """A link that expired while the form was open lost what the officer typed: the refusal
    shows it back to copy (only for a genuine link: a forged one echoes nothing)."""
    now = int(clock.now().timestamp())
    expired = sign_link(SECRET, world.a1.id, f"case:{world.case.id}", action, now)
    item = world.items[0].id
    typed = {f"item.{item}.problems": "消防通道堵塞", "remarks": "店主称明日整改", "reason": "漏填"}
    resp = await client.post(path, data=fields(expired, item, **typed))
    html = await resp.text()
    assert resp.status == 403 and "链接已过期" in page_text(html)
    for text in typed.values():
        assert re.search(rf"<textarea[^>]*readonly[^>]*>{text}</textarea>", html), text
    forged = expired[:-3] + ("abc" if not expired.endswith("abc") else "xyz")
    resp = await client.post(path, data=fields(forged, item, **typed))
    html = await resp.text()
    assert resp.status == 403 and "链接无效" in html
    assert not any(text in html for text in typed.values())


class _FormState(HTMLParser):
    """What a page's form would post as it stands: each ticked box, typed field, textarea and
    chosen option as (name, value), in page order (`t` and `csrf` left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name", "")
        if tag == "input" and name and name not in ("t", "csrf"):
            kind = a.get("type", "text")
            if kind == "checkbox":
                if "checked" in a:
                    self.found.append((name, a.get("value", "on")))
            elif kind != "file":
                self.found.append((name, a.get("value", "")))
        elif tag == "textarea":
            self._textarea = name
            self.found.append((name, ""))
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.found.append((self._select, a.get("value", "")))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            name, text = self.found.pop()
            self.found.append((name, text + data))

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def form_state(html: str) -> list[tuple[str, str]]:
    parser = _FormState()
    parser.feed(html)
    return parser.found


async def test_the_page_after_a_submit_shows_what_was_stored_as_a_fresh_link_does(
    client: TestClient,
    services: Services,
    world: World,
    clock: FixedClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """谁检查、谁录入 (000 §九–十): the lead's part is in and the case waits 部分录入, so the page
    after the submit still shows the form — with the part as stored, exactly as the link opened
    afresh shows it. It showed the methods, follow-ups and remarks blank (the part read before
    the entry), so a resubmit from it (a forgotten photo) replaced them; after a return (004
    第十九条) the same, on the re-entry."""
    lead_item = world.items[0]
    tok = token(services, world.a1, world.case)
    entry: dict[str, str | list[str]] = {
        "methods": ["书面检查", "实地检查"],
        "followups": "无需后续处置",
        "remarks": "经营者称年报已委托代理机构填报",
        f"item.{lead_item.id}.problems": "无",
    }
    stored = [
        ("methods", "实地检查"),
        ("methods", "书面检查"),
        ("followups", "无需后续处置"),
        ("remarks", "经营者称年报已委托代理机构填报"),
        (f"item.{lead_item.id}.codes", "1"),
    ]

    async def posted_and_fresh(data: dict[str, str | list[str]]) -> list[tuple[str, str]]:
        resp = await client.post(RESULT_PATH, data=fields(tok, lead_item.id, **data))
        html = await resp.text()
        assert resp.status == 200 and "本部门事项的结果已录入" in page_text(html), html
        fresh = await (await client.get(RESULT_PATH, params={"t": tok})).text()
        after = form_state(html)
        assert after == form_state(fresh)
        return after

    after = await posted_and_fresh(entry)
    assert await case_state(sessionmaker) == "part_entered"
    for pair in stored:
        assert pair in after, pair
    assert ("inspected_on", "2026-03-05") in after
    # 卫健委's part completes the case, a return reopens every part: the lead re-enters first
    b_tok = token(services, world.b1, world.case)
    assert (await client.post(RESULT_PATH, data=fields(b_tok, world.items[1].id))).status == 200
    assert await case_state(sessionmaker) == "submitted"
    async with sessionmaker() as session:
        ctx = Ctx(session=session, clock=clock, rules=Rules())
        liaison = await session.get(Officer, world.lead_liaison.id)
        await review_result(acting(ctx, liaison), world.case.code, False, "缺少现场照片")
        await session.commit()
    changed = {"remarks": "已补充说明", "followups": "其他"}
    again = await posted_and_fresh({**entry, **changed})
    assert await case_state(sessionmaker) == "part_entered"
    for pair in [("remarks", "已补充说明"), ("followups", "其他"), *stored[:2]]:
        assert pair in again, pair
    assert ("followups", "无需后续处置") not in again


async def test_a_photo_added_again_is_kept_once_and_not_called_a_double_submit(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The form after an entry shows its photo ticked to keep; an officer who picks the same
    photo again was told "该结果已提交过" as if the form had been sent twice. The file is kept
    once and the page says it is already attached."""
    tok = token(services, world.a1, world.case)
    photo = ("现场.jpg", jpeg(), "image/jpeg")
    first = await client.post(RESULT_PATH, data=with_files(fields(tok, world.items[0].id), photo))
    assert first.status == 200 and await case_state(sessionmaker) == "part_entered"
    [keep] = _checked(await first.text(), "keep")
    again = await client.post(
        RESULT_PATH,
        data=with_files(fields(tok, world.items[0].id, keep=keep), ("IMG_0001.jpg", *photo[1:])),
    )
    text = page_text(await again.text())
    assert again.status == 200, text
    assert "已提交过" not in text and "重复提交" not in text
    assert "IMG_0001.jpg" in text and "已在附件中" in text
    assert _checked(await again.text(), "keep") == [keep]
    assert [r.name for r in await attachment_rows(sessionmaker)] == ["现场.jpg"]


def test_a_tampered_field_is_refused_in_chinese() -> None:
    """A value the form never sends (a tampered post) gets a Chinese message next to its field
    like any other: a pydantic error type the form had no words of its own for showed
    pydantic's English ("Input should be a valid boolean…", "…valid integer…")."""
    _, errors = forms._parsed(
        {"followup_done": "maybe", "items": [{"item_id": "x", "codes": ["1"]}]}
    )
    assert errors == {"followup_done": "请勾选或取消勾选此项", "item.x.item_id": "应为整数"}


def opened_base(html: str) -> str:
    """The version a form page was opened on (its hidden `base` field)."""
    found = re.search(r'name="base" value="(\d+)"', html)
    assert found is not None, "the form carries no base version"
    return found[1]


def problem_fields(tok: str, item: int, base: str) -> list[tuple[str, str]]:
    entry: dict[str, str | list[str]] = {
        f"item.{item}.codes": ["A", "2", "B"],
        f"item.{item}.problems": "2025年度报告未公示",
        f"item.{item}.handling": "责令十日内补报",
        "followups": ["责令改正并跟踪"],
        "remarks": "B 页填写的备注",
    }
    return fields(tok, item, base=base, **entry)


async def test_a_second_tab_opened_before_the_first_submitted_does_not_overwrite_it(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Tab A and tab B of the same form: A enters 未发现问题, then B posts problems on the
    version both were opened on. B's entry used to replace A's silently, both saying 已录入;
    now B's page shows what is stored, says so, and lists what B typed, unsaved."""
    tok = token(services, world.a1, world.case)
    item = world.items[0].id
    tab_a = opened_base(await (await client.get(RESULT_PATH, params={"t": tok})).text())
    tab_b = opened_base(await (await client.get(RESULT_PATH, params={"t": tok})).text())
    assert tab_a == tab_b == "0"
    first = await client.post(RESULT_PATH, data=fields(tok, item, base=tab_a))
    assert first.status == 200
    assert opened_base(await first.text()) == "1"  # the page after it submits on what it shows
    resp = await client.post(RESULT_PATH, data=problem_fields(tok, item, tab_b))
    html = await resp.text()
    text = page_text(html)
    assert resp.status == 409, text
    assert "该结果已在其他页面或聊天中更新，请核对后再提交" in text
    assert "本部门事项的结果已录入" not in text and "结果已提交" not in text
    # the fields hold what is stored: A's 未发现问题 …
    assert f'name="item.{item}.codes" value="1" checked' in html
    assert f'name="item.{item}.codes" value="A" checked' not in html
    assert opened_base(html) == "1"
    # … and what B typed is still there to read
    unsaved = text[text.index("该结果已在其他页面") : text.index(world.target.name)]
    for typed in ("2025年度报告未公示", "责令十日内补报", "责令改正并跟踪", "B 页填写的备注"):
        assert typed in unsaved, typed
    assert [r.codes for r in await results(sessionmaker)] == [["1"]]
    # having read it, B submits from the page shown: accepted as a new version
    again = await client.post(RESULT_PATH, data=problem_fields(tok, item, "1"))
    assert again.status == 200, page_text(await again.text())
    assert [r.codes for r in await results(sessionmaker)] == [["1"], ["A", "2", "B"]]


async def test_a_chat_entry_after_the_form_opened_is_not_overwritten_either(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FixedClock,
) -> None:
    """The form opened, then the department's part entered in the chat (A2 `提交`): the form's
    post is stale as well."""
    tok = token(services, world.a1, world.case)
    item = world.items[0].id
    base = opened_base(await (await client.get(RESULT_PATH, params={"t": tok})).text())
    said = bodies(
        await send(
            sessionmaker,
            make_dispatcher(sessionmaker, clock),
            text_event(world.a2.code, f"提交 {world.case.code} 未发现问题 3月5日"),
        )
    )
    assert "已录入" in said or "已提交" in said, said
    resp = await client.post(RESULT_PATH, data=problem_fields(tok, item, base))
    assert resp.status == 409
    assert "该结果已在其他页面或聊天中更新" in page_text(await resp.text())
    assert [r.codes for r in await results(sessionmaker)] == [["1"]]


async def test_the_same_entry_sent_again_from_a_stale_tab_is_said_submitted(
    client: TestClient,
    services: Services,
    world: World,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """An identical resubmit (a double tap, or the second tab posting the same) stays
    idempotent: no conflict, one version."""
    tok = token(services, world.a1, world.case)
    item = world.items[0].id
    first = await client.post(RESULT_PATH, data=problem_fields(tok, item, "0"))
    assert first.status == 200
    again = await client.post(RESULT_PATH, data=problem_fields(tok, item, "0"))
    text = page_text(await again.text())
    assert again.status == 200, text
    assert "该结果已提交过" in text and "其他页面" not in text
    assert len(await results(sessionmaker)) == 1
