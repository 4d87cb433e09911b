"""Correcting a published result after a re-check found an error (004 第二十条), in chat (`更正`)
and on the correction form (`/h5/correction`): whoever may correct reaches every category, a
correction that changes nothing is refused, and a department corrects its own items only
(谁检查、谁录入、谁负责, 004 第三条)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from html import unescape

import pytest
from aiohttp.test_utils import TestClient
from docx import Document
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.pages import routes
from bot.pages.base import csrf_token
from bot.pages.links import expand_text, page_link
from bot.pages.result import CORRECTION_PATH, file_store
from bot.services import Services
from core import documents, objections
from core.attachments import FileStore
from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.errors import ValidationFailed
from core.exports import results_export
from core.models import (
    Attachment,
    Case,
    CasePart,
    CaseResult,
    GroupMember,
    Invitation,
    ItemResult,
    Objection,
    Officer,
    OutboxMessage,
    Referral,
    TaskItem,
)
from core.publication import correct_result
from core.referrals import refer
from core.result_entry import submit_result
from core.review import review_result
from core.rules import Rules
from tests.case_factories import World, acting, build_world
from tests.dispatch_support import (
    LONG_REASON,
    audit_rows,
    bodies,
    make_dispatcher,
    send,
    text_event,
    told,
    too_long,
)
from tests.server_helpers import make_services, page_text, pages_app
from tests.test_result_form import jpeg, opened_base

CASE = "LJ-2026-001-001"
SECRET = b"x" * 40  # make_services' link secret
D = dt.date


@pytest.fixture
async def w(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> World:
    """The lead found a problem in its item (年报未公示), 卫健委 none in its own; published, then
    an objection whose re-check found the lead's finding wrong (error_found)."""
    return await found_wrong(sessionmaker, clock, "责令改正并跟踪")


async def found_wrong(
    sm: async_sessionmaker[AsyncSession], clock: FixedClock, followup: str, clue: str = ""
) -> World:
    """The published case of `w`, the lead's part following up with `followup`; with a
    `clue`, the lead referred it to 卫健委 (移送办案机构, 001 第十七条) before entering."""
    clock.set(china_noon(D(2026, 3, 5)))
    async with sm() as s:
        w = await build_world(s)
        ctx = Ctx(session=s, clock=clock, rules=Rules())
        lead_item, other_item = w.items
        await submit_result(
            acting(ctx, w.b1),
            CASE,
            codes=["1"],
            methods=["实地检查"],
            followups=["无需后续处置"],
            inspected_on=D(2026, 3, 4),
            item_results=[{"item_id": other_item.id, "codes": ["1"], "content": "查验卫生许可证"}],
            remarks="卫生许可证在有效期内",
        )
        if clue:
            await refer(acting(ctx, w.a1), CASE, "卫健委", clue)
        await submit_result(
            acting(ctx, w.a1),
            CASE,
            codes=["A", "2", "B"],
            methods=["实地检查"],
            followups=[followup],
            item_results=[
                {"item_id": lead_item.id, "codes": ["A", "2", "B"], "problems": "年报未公示"}
            ],
        )
        await published_and_found_wrong(
            ctx, w, "企业称检查前已补报年报", "经复查企业已于检查前补报"
        )
        await s.commit()
    return w


async def published_and_found_wrong(ctx: Ctx, w: World, objection: str, finding: str) -> None:
    """Both departments' reviews publish the case; the target objects, and the lead's re-check
    finds the result wrong (error_found: a correction is due, 004 第二十条)."""
    await review_result(acting(ctx, w.lead_liaison), CASE, True)
    await review_result(acting(ctx, w.other_liaison), CASE, True)  # publishes
    lead = acting(ctx, w.lead_liaison)
    filed = await objections.file_objection(lead, CASE, w.target.name, objection, D(2026, 3, 5))
    await objections.record_recheck(lead, filed.id, finding, True)


async def sent(sm, clock, officer: Officer, text: str) -> list[OutboxMessage]:
    """Every message the officer's chat text sends (their reply and the notices)."""
    return await send(sm, make_dispatcher(sm, clock), text_event(officer.code, text))


async def say(sm, clock, officer: Officer, text: str) -> str:
    return bodies(await sent(sm, clock, officer, text))


async def versions(sm) -> list[CaseResult]:
    async with sm() as s:
        return list(await s.scalars(select(CaseResult).order_by(CaseResult.version)))


async def item_codes(sm, result: CaseResult) -> dict[int, tuple[list[str], str, str]]:
    async with sm() as s:
        rows = await s.scalars(select(ItemResult).where(ItemResult.result_id == result.id))
        return {r.item_id: (list(r.codes), r.content, r.problems) for r in rows}


async def objection_state(sm) -> str:
    async with sm() as s:
        return str(await s.scalar(select(Objection.state)))


# ---------------------------------------------------------------- chat


async def test_a_correction_to_a_problem_category_gets_the_correction_form_004_art20(
    sessionmaker, clock, w
) -> None:
    """004 第二十条: a liaison outside the inspection group who may correct is not sent to
    `我的检查` (which lists nothing for them) but given the correction form's link, for their
    own department's items; nothing is corrected yet."""
    case_id = w.case.id
    for text in (f"更正 {CASE} 发现问题已责令改正 经复查企业已整改", f"更正 {CASE}"):
        reply = await say(sessionmaker, clock, w.lead_liaison, text)
        assert f"[打开更正表单](lianjian-page:correction/case:{case_id})" in reply, reply
        assert "我的检查" not in reply
    assert len(await versions(sessionmaker)) == 2  # the two parts, nothing since
    reply = await say(sessionmaker, clock, w.a1, f"更正 {CASE} 发现问题已责令改正 理由")
    assert "lianjian-page:correction" not in reply and "联络员、分管领导" in reply


async def test_a_correction_that_changes_nothing_is_refused_004_art20(
    sessionmaker, clock, w
) -> None:
    """004 第二十条: a correction is a changed result. 卫健委's quick 更正 to 未发现问题 (its
    items' result already) cannot stand for the lead's finding and is refused: it is not the
    correction, 答复 still waits for one. After the lead's correction, the same 更正 again
    is refused in Chinese and adds no version."""
    reply = await say(sessionmaker, clock, w.other_liaison, f"更正 {CASE} 未发现问题 录入错误")
    assert "本部门的检查事项已是“未发现问题”，无需更正" in reply, reply
    assert len(await versions(sessionmaker)) == 2
    assert await objection_state(sessionmaker) == "error_found"
    assert "须先更正" in await say(sessionmaker, clock, w.lead_liaison, f"答复 {CASE}")
    reply = await say(
        sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 未发现问题 无需后续处置 已补报"
    )
    assert "第 2 版" in reply
    reply = await say(sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 无问题 再次更正")
    assert "与已公示的结果相同，无需更正" in reply, reply
    assert len(await versions(sessionmaker)) == 3


async def test_a_correction_reason_over_2000_characters_is_refused_004_art20(
    sessionmaker, clock, w
) -> None:
    """004 第二十条: 更正's reason is a written reason with its limit; a longer one is refused
    saying what to do, and no version is added."""
    reply = await say(sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 未发现问题 {LONG_REASON}")
    assert too_long("更正理由") in reply, reply
    assert len(await versions(sessionmaker)) == 2
    assert await audit_rows(sessionmaker, "case.result.corrected") == []
    assert await objection_state(sessionmaker) == "error_found"


async def test_a_department_corrects_only_its_own_items_004_art3(sessionmaker, clock, w) -> None:
    """004 第三条 (谁检查、谁录入、谁负责): the lead's 更正 corrects the lead's item alone;
    卫健委's item, what its check covered, its methods and remarks stay as published; the
    objection is then corrected."""
    lead_item, other_item = w.items
    reply = await say(
        sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 未发现问题 无需后续处置 经复查已补报"
    )
    assert "已更正公示结果" in reply and "第 2 版" in reply, reply
    *_, before, after = await versions(sessionmaker)
    assert (before.state, after.state, after.is_correction) == ("superseded", "published", True)
    assert after.codes == ["1"]
    items = await item_codes(sessionmaker, after)
    assert items[other_item.id] == (["1"], "查验卫生许可证", "")  # 卫健委's, as published
    assert items[lead_item.id][0] == ["1"] and items[lead_item.id][2] == ""
    assert after.remarks == "卫生许可证在有效期内" and after.methods == ["实地检查"]
    [event] = await audit_rows(sessionmaker, "case.result.corrected")
    assert event.data["department_id"] == w.lead.id
    assert await objection_state(sessionmaker) == "corrected"


async def test_a_chat_correction_to_nothing_found_keeping_an_order_to_correct_is_refused_004_art20(
    sessionmaker, clock, w
) -> None:
    """004 第二十条, 第三条: the lead's 更正 to 未发现问题 typing no follow-up keeps its part's
    published follow-ups, but 责令改正并跟踪 orders a problem put right, and 未发现问题 found
    none: refused, saying how to type the follow-up (not silently replaced); typed, the
    correction carries no problem, handling or 责令改正."""
    reply = await say(sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 未发现问题 经复查已补报")
    assert "不能选择“责令改正并跟踪”" in reply and "未发现问题 无需后续处置" in reply, reply
    assert len(await versions(sessionmaker)) == 2
    reply = await say(
        sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 未发现问题 无需后续处置 经复查已补报"
    )
    assert "已更正公示结果" in reply, reply
    *_, after = await versions(sessionmaker)
    assert (after.codes, after.followups) == (["1"], ["无需后续处置"])
    assert all(
        problems == "" for _, _, problems in (await item_codes(sessionmaker, after)).values()
    )
    async with sessionmaker() as s:
        parts = {p.department_id: p for p in await s.scalars(select(CasePart))}
    assert parts[w.lead.id].followups == ["无需后续处置"]
    assert parts[w.other.id].followups == ["无需后续处置"]


async def test_a_chat_correction_to_8_typing_no_follow_up_keeps_the_published_one_004_art20(
    sessionmaker, clock, w
) -> None:
    """004 第二十条, 第二十一条: 8 (不配合检查情节严重) needs a follow-up. The lead's part was
    published with 责令改正并跟踪, so its `更正 案件号 8 理由` typing none keeps it, as the
    correction form does (it was refused for naming no follow-up)."""
    reply = await say(sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 8 经复查企业拒不配合检查")
    assert "已更正公示结果" in reply, reply
    *_, after = await versions(sessionmaker)
    assert after.codes == ["8"] and after.followups == ["责令改正并跟踪"], after.followups
    async with sessionmaker() as s:
        parts = {p.department_id: p for p in await s.scalars(select(CasePart))}
    assert parts[w.lead.id].followups == ["责令改正并跟踪"]


async def test_a_chat_correction_to_8_without_any_follow_up_says_how_to_type_one_004_art21(
    sessionmaker, clock, nothing_found
) -> None:
    """004 第二十一条: the lead's part was published with 无需后续处置, which 8 rules out; its
    `更正 案件号 8 理由` typing none is refused saying how to type one; nothing changes."""
    reply = await say(
        sessionmaker, clock, nothing_found.lead_liaison, f"更正 {CASE} 8 经复查企业拒不配合"
    )
    assert "须有后续处置" in reply and "不配合检查情节严重 抄告相关部门" in reply, reply
    assert len(await versions(sessionmaker)) == 2


async def test_a_status_correction_keeps_how_the_target_was_checked_004_art18_art20(
    sessionmaker, clock
) -> None:
    """更正 … 7 after a re-check (004 第二十条) changes the conclusion, not the inspection: the
    visit of 3月4日 was 实地检查, and 7 names no method of its own (004 第十八条 only lets a
    status be formed without a visit). The chat 更正 names no method, so the department's own
    stand as published; `export results` and the regenerated 记录表 both say 实地检查 (they
    said nothing). A task of the lead alone: a situation is every department's (第十四条)."""
    clock.set(china_noon(D(2026, 3, 5)))
    async with sessionmaker() as s:
        w = await build_world(s)
        await s.execute(delete(TaskItem).where(TaskItem.department_id == w.other.id))
        await s.execute(delete(Invitation).where(Invitation.department_id == w.other.id))
        await s.execute(delete(GroupMember).where(GroupMember.department_id == w.other.id))
        ctx = Ctx(session=s, clock=clock, rules=Rules())
        await submit_result(
            acting(ctx, w.a1),
            CASE,
            codes=["1"],
            methods=["实地检查"],
            followups=["无需后续处置"],
            inspected_on=D(2026, 3, 4),
        )
        await review_result(acting(ctx, w.lead_liaison), CASE, True)  # publishes
        await s.commit()
    reply = await say(sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 7 复查发现企业已停业")
    assert "已更正公示结果" in reply, reply
    *_, last = await versions(sessionmaker)
    assert (last.codes, last.methods, last.inspected_on) == (["7"], ["实地检查"], D(2026, 3, 4))
    async with sessionmaker() as s:
        ctx = Ctx(session=s, clock=clock, rules=Rules())
        data, _ = await results_export(ctx, 2026, None, "csv")
        [row] = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        context = await documents.case_document_context(ctx, CASE)
    assert (row["检查结果代码"], row["检查方式"]) == ("7", "实地检查")
    record = Document(io.BytesIO(documents.render_docx("record", context, ctx.clock.now())))
    methods = {r.cells[0].text: r.cells[1].text for t in record.tables for r in t.rows}
    assert methods["检查方式"] == "实地检查"


# ---------------------------------------------------------------- the correction form


@pytest.fixture
def services(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> Services:
    return make_services(sessionmaker, clock)


@pytest.fixture
async def client(services: Services, aiohttp_client) -> TestClient:
    return await aiohttp_client(pages_app(services, routes(services)))


def token(services: Services, officer: Officer, case: Case) -> str:
    return page_link(services, officer.id, "correction", f"case:{case.id}").split("?t=", 1)[1]


def form(tok: str, item: int, **extra: str | list[str]) -> list[tuple[str, str]]:
    """The lead's item corrected to 发现问题已责令改正 (E), with the reason."""
    base: dict[str, str | list[str]] = {
        "t": tok,
        "csrf": csrf_token(SECRET, tok),
        "inspected_on": "2026-03-04",
        "methods": "实地检查",
        "followups": "责令改正并跟踪",
        f"item.{item}.codes": "E",
        f"item.{item}.problems": "年报未按期公示，检查时已责令补报",
        f"item.{item}.handling": "已责令改正",
        "remarks": "",
        "reason": "经复查企业已于检查当日整改",
    }
    base.update(extra)
    return [(k, v) for k, vs in base.items() for v in ([vs] if isinstance(vs, str) else vs)]


def nothing_found_form(tok: str, item: int, reason: str) -> list[tuple[str, str]]:
    """The lead's item corrected to 未发现问题 (no follow-up), with the reason."""
    return form(
        tok,
        item,
        followups="无需后续处置",
        reason=reason,
        **{f"item.{item}.codes": "1", f"item.{item}.problems": "", f"item.{item}.handling": ""},
    )


async def test_the_chat_link_opens_the_correction_form_of_the_own_items_004_art20(
    client: TestClient, services: Services, w: World, sessionmaker, clock
) -> None:
    """004 第二十条, 第三条: the link in the `更正` reply, signed for the liaison, opens the form
    with the lead's item to correct (every category offered) and 卫健委's shown, not editable."""
    reply = await say(sessionmaker, clock, w.lead_liaison, f"更正 {CASE}")
    url = re.search(r"\((http[^)]+)\)", expand_text(services, w.lead_liaison.id, reply))
    assert url is not None, reply
    resp = await client.get(url[1].replace("http://127.0.0.1:8080", ""))
    html = await resp.text()
    assert resp.status == 200, html
    text = page_text(html)
    for expected in ("更正公示结果", "已公示的结果", "企业公示信息检查", "发现问题已责令改正"):
        assert expected in text, expected
    assert "其他部门的事项" in text and "更正理由" in text
    lead_item, other_item = w.items
    assert f'name="item.{lead_item.id}.codes"' in html
    assert f'name="item.{other_item.id}.codes"' not in html


async def test_the_form_corrects_to_a_problem_category_through_core_004_art20(
    client: TestClient, services: Services, w: World, sessionmaker
) -> None:
    """004 第二十条: the form corrects the lead's item to E with its problem and handling; the
    new version is published, audited and announced, 卫健委's item and part stay (004 第三条),
    and the objection is corrected."""
    lead_item, other_item = w.items
    resp = await client.post(
        CORRECTION_PATH, data=form(token(services, w.lead_liaison, w.case), lead_item.id)
    )
    html = await resp.text()
    assert resp.status == 200, page_text(html)
    assert "已更正公示结果（第 2 版）" in page_text(html)
    *_, after = await versions(sessionmaker)
    assert (after.state, after.is_correction, after.codes) == ("published", True, ["E"])
    items = await item_codes(sessionmaker, after)
    assert items[lead_item.id] == (["E"], "", "年报未按期公示，检查时已责令补报")
    assert items[other_item.id] == (["1"], "查验卫生许可证", "")
    assert after.remarks == "卫生许可证在有效期内"
    async with sessionmaker() as s:
        parts = {p.department_id: p for p in await s.scalars(select(CasePart))}
    assert parts[w.other.id].followups == ["无需后续处置"]
    assert parts[w.lead.id].followups == ["责令改正并跟踪"]
    [event] = await audit_rows(sessionmaker, "case.result.corrected")
    assert event.data["reason"] == "经复查企业已于检查当日整改"
    assert await objection_state(sessionmaker) == "corrected"


async def test_the_form_refuses_nothing_found_with_the_published_problem_text_004_art20(
    client: TestClient, services: Services, w: World, sessionmaker
) -> None:
    """004 第二十条: the correction form shows the published 发现的问题 and 处理情况; ticking
    未发现问题 over them is refused next to each field (a result of 未发现问题 has none), not
    stored with the old text nor silently cleared; emptied, the version carries none."""
    lead_item, _ = w.items
    tok = token(services, w.lead_liaison, w.case)
    kept = {
        "followups": "无需后续处置",
        f"item.{lead_item.id}.codes": "1",
        f"item.{lead_item.id}.problems": "年报未公示",
        f"item.{lead_item.id}.handling": "已责令补报",
    }
    resp = await client.post(CORRECTION_PATH, data=form(tok, lead_item.id, **kept))
    html = await resp.text()
    assert resp.status == 422, page_text(html)
    for field, what in (("problems", "发现的问题"), ("handling", "处理情况")):
        message = f"检查结果为“未发现问题”，不应填写{what}"
        at = html.index(message)
        assert html.rfind(f'name="item.{lead_item.id}.{field}"', 0, at) > html.rfind(
            "<section", 0, at
        )
    assert "年报未公示</textarea>" in html  # the typed text is handed back
    resp = await client.post(
        CORRECTION_PATH,
        data=form(tok, lead_item.id, **{**kept, "followups": "责令改正并跟踪"}),
    )
    assert resp.status == 422 and "不能选择“责令改正并跟踪”" in page_text(await resp.text())
    assert len(await versions(sessionmaker)) == 2
    resp = await client.post(
        CORRECTION_PATH, data=nothing_found_form(tok, lead_item.id, "经复查企业已于检查前补报")
    )
    assert resp.status == 200, page_text(await resp.text())
    *_, after = await versions(sessionmaker)
    assert (after.codes, after.followups) == (["1"], ["无需后续处置"])
    async with sessionmaker() as s:
        row = await s.scalar(
            select(ItemResult).where(
                ItemResult.result_id == after.id, ItemResult.item_id == lead_item.id
            )
        )
    assert row is not None and (row.codes, row.problems, row.handling) == (["1"], "", "")


async def test_core_refuses_nothing_found_with_problem_text_on_every_path_004_art20(
    sessionmaker, clock, w
) -> None:
    """004 第二十条: `correct_result` itself (which chat and the form reach) refuses an item of
    未发现问题 with problems, naming the item; nothing is stored."""
    lead_item, _ = w.items
    async with sessionmaker() as s:
        ctx = Ctx(session=s, clock=clock, rules=Rules())
        with pytest.raises(ValidationFailed) as err:
            await correct_result(
                acting(ctx, w.lead_liaison),
                CASE,
                reason="经复查企业已于检查前补报",
                codes=["1"],
                methods=None,
                followups=["无需后续处置"],
                item_results=[{"item_id": lead_item.id, "codes": ["1"], "problems": "年报未公示"}],
            )
    assert err.value.message.startswith(f"“{lead_item.name}”检查结果为“未发现问题”，不应填写发现")
    assert len(await versions(sessionmaker)) == 2


async def test_the_form_refuses_an_unchanged_correction_and_a_missing_reason_004_art20(
    client: TestClient, services: Services, w: World, sessionmaker
) -> None:
    """004 第二十条: posting the published result back unchanged is refused in Chinese and
    stores nothing; so is a correction without its reason."""
    lead_item, _ = w.items
    tok = token(services, w.lead_liaison, w.case)
    published: dict[str, str | list[str]] = {
        f"item.{lead_item.id}.codes": ["A", "2", "B"],
        f"item.{lead_item.id}.problems": "年报未公示",
        f"item.{lead_item.id}.handling": "",
    }
    resp = await client.post(CORRECTION_PATH, data=form(tok, lead_item.id, **published))
    assert resp.status == 422
    assert "与已公示的结果相同，无需更正" in page_text(await resp.text())
    resp = await client.post(CORRECTION_PATH, data=form(tok, lead_item.id, reason=""))
    assert resp.status == 422 and "更正结果时必须写明更正理由" in page_text(await resp.text())
    assert len(await versions(sessionmaker)) == 2
    assert await objection_state(sessionmaker) == "error_found"


async def test_the_form_refuses_a_reason_over_2000_characters_004_art20(
    client: TestClient, services: Services, w: World, sessionmaker
) -> None:
    """004 第二十条: the form's reason is checked as the chat's: a longer one is refused next
    to the field, kept in it; nothing is stored."""
    lead_item, _ = w.items
    tok = token(services, w.lead_liaison, w.case)
    resp = await client.post(CORRECTION_PATH, data=form(tok, lead_item.id, reason=LONG_REASON))
    html = await resp.text()
    assert resp.status == 422 and too_long("更正理由") in page_text(html)
    assert f"{LONG_REASON}</textarea>" in html
    assert len(await versions(sessionmaker)) == 2
    assert await audit_rows(sessionmaker, "case.result.corrected") == []


async def test_the_form_refuses_to_move_the_inspection_date_004_art14_art19(
    client: TestClient, services: Services, w: World, sessionmaker
) -> None:
    """004 第十四条 (one visit), 第十九条 (20 working days from it): a correction giving another
    inspection date is refused naming the case's date, as entry refuses it; the case's date
    and result deadline stay, so a late entry stays late in the evaluation."""
    lead_item, _ = w.items
    async with sessionmaker() as s:
        before = await s.scalar(select(Case.result_due_on))
    tok = token(services, w.lead_liaison, w.case)
    resp = await client.post(
        CORRECTION_PATH, data=form(tok, lead_item.id, inspected_on="2026-03-05")
    )
    assert resp.status == 422
    assert "本案检查日期为 2026年3月4日" in page_text(await resp.text())
    async with sessionmaker() as s:
        case = await s.scalar(select(Case))
    assert case is not None
    assert (case.inspected_on, case.result_due_on) == (D(2026, 3, 4), before)
    assert len(await versions(sessionmaker)) == 2


async def test_the_form_posts_only_the_own_departments_items_004_art3(
    client: TestClient, services: Services, w: World, sessionmaker
) -> None:
    """004 第三条: 卫健委's liaison posting the lead's item is refused, nothing is stored; an
    inspector (who may not correct) gets the denied page, audited."""
    lead_item, _ = w.items
    resp = await client.post(
        CORRECTION_PATH, data=form(token(services, w.other_liaison, w.case), lead_item.id)
    )
    assert resp.status == 422 and "只能填写本部门负责的检查事项" in page_text(await resp.text())
    resp = await client.get(CORRECTION_PATH, params={"t": token(services, w.a1, w.case)})
    assert resp.status == 403
    assert len(await versions(sessionmaker)) == 2
    assert [e.data["action"] for e in await audit_rows(sessionmaker, "denied")] == [
        "case.result.correct.denied"
    ]


# ---------------------------------------------------------------- a situation is the whole case's


@pytest.fixture
async def nothing_found(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> World:
    """Both departments inspected on 3月4日 and found nothing (未发现问题), published; the
    target's objection was re-checked by the lead and found the target 注销 before the visit."""
    clock.set(china_noon(D(2026, 3, 5)))
    async with sessionmaker() as s:
        w = await build_world(s)
        ctx = Ctx(session=s, clock=clock, rules=Rules())
        for officer, item, content in (
            (w.a1, w.items[0], "查询公示信息"),
            (w.b1, w.items[1], "查验卫生许可证"),
        ):
            await submit_result(
                acting(ctx, officer),
                CASE,
                codes=["1"],
                methods=["实地检查"],
                followups=["无需后续处置"],
                inspected_on=D(2026, 3, 4),
                item_results=[{"item_id": item.id, "codes": ["1"], "content": content}],
            )
        await published_and_found_wrong(ctx, w, "企业称检查前已注销", "经复查企业已于3月1日注销")
        await s.commit()
    return w


async def test_the_lead_corrects_the_whole_case_to_the_targets_situation_004_art18_art20(
    sessionmaker, clock, nothing_found
) -> None:
    """004 第十八条: 注销 is the target's own situation, one for every department's items; 004
    第二十条: the lead, which re-checked, corrects the published 未发现问题 within 5 working
    days. Its 更正 makes every department's items 注销 in one version (what each check covered
    kept; 卫健委's methods and follow-ups as published), audited as the whole case's, and every
    department told, the case's history naming it; the objection is corrected. Each
    department's part was refused before, since the other's still said 未发现问题, so nobody
    could correct."""
    w = nothing_found
    rows = await sent(
        sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 注销 经复查企业已于检查前注销"
    )
    reply = told(rows, w.lead_liaison)
    assert "已更正公示结果" in reply and "各部门" in reply, reply
    *_, before, after = await versions(sessionmaker)
    assert (before.state, after.state, after.codes) == ("superseded", "published", ["9"])
    lead_item, other_item = w.items
    items = await item_codes(sessionmaker, after)
    assert items == {
        lead_item.id: (["9"], "查询公示信息", ""),
        other_item.id: (["9"], "查验卫生许可证", ""),
    }
    async with sessionmaker() as s:
        parts = {p.department_id: p for p in await s.scalars(select(CasePart))}
    assert (parts[w.other.id].methods, parts[w.other.id].followups) == (
        ["实地检查"],
        ["无需后续处置"],
    )
    [event] = await audit_rows(sessionmaker, "case.result.corrected")
    assert (event.data["department_id"], event.data["whole_case"]) == (w.lead.id, True)
    for department in (w.lead, w.other):
        [notice] = [r for r in rows if r.destination.get("department_id") == department.id]
        assert "各部门的检查事项一并更正为“注销”" in notice.message["body"], notice.message
    assert await objection_state(sessionmaker) == "corrected"
    history = await say(sessionmaker, clock, w.other_liaison, f"案件 {CASE}")
    assert "更正：各部门的检查事项一并更正为“注销”" in history, history


async def test_a_participant_may_not_correct_the_targets_situation_004_art18_art20(
    sessionmaker, clock, nothing_found
) -> None:
    """004 第十八条: a situation applies to every department's items, so 卫健委's 更正 to 注销
    is refused naming the lead, which corrects it for the whole case (004 第二十条: the lead
    re-checks); nothing changes and the objection still waits."""
    w = nothing_found
    reply = await say(sessionmaker, clock, w.other_liaison, f"更正 {CASE} 注销 企业已注销")
    assert "由牵头部门县市场监督管理局的联络员或分管领导更正整个案件" in reply, reply
    assert len(await versions(sessionmaker)) == 2
    assert await objection_state(sessionmaker) == "error_found"


async def test_the_form_corrects_the_situation_for_the_whole_case_from_the_lead_004_art18(
    client: TestClient, services: Services, nothing_found: World, sessionmaker
) -> None:
    """004 第十八条, 第二十条 on the correction form: 卫健委 posting its item as 注销 is refused
    naming the lead; the lead posting its item as 注销 corrects every department's items."""
    w = nothing_found
    lead_item, other_item = w.items
    situation: dict[str, str | list[str]] = {
        "followups": "无需后续处置",
        "reason": "经复查企业已于检查前注销",
    }
    for officer, item in ((w.other_liaison, other_item), (w.lead_liaison, lead_item)):
        posted = form(
            token(services, officer, w.case),
            item.id,
            **situation,
            **{f"item.{item.id}.codes": "9", f"item.{item.id}.problems": ""},
        )
        resp = await client.post(CORRECTION_PATH, data=posted)
        if officer is w.other_liaison:
            assert resp.status == 422 and "更正整个案件" in page_text(await resp.text())
            assert len(await versions(sessionmaker)) == 2
    assert resp.status == 200, page_text(await resp.text())
    *_, after = await versions(sessionmaker)
    items = await item_codes(sessionmaker, after)
    assert (after.codes, items[lead_item.id][0], items[other_item.id][0]) == (["9"], ["9"], ["9"])


async def test_the_correction_form_shows_the_extended_window_000_5_3(
    client: TestClient, services: Services, w: World, sessionmaker, clock
) -> None:
    """000 §五.3: after 延期 the correction form shows the window to its new last day, said to
    be extended, as chat's 任务 does."""
    extend = "延期 LJ-2026-001 4月30日 部分企业停产需顺延检查"
    await say(sessionmaker, clock, w.lead_liaison, extend)
    tok = token(services, w.lead_liaison, w.case)
    text = page_text(await (await client.get(CORRECTION_PATH, params={"t": tok})).text())
    assert "2026年3月2日 至 2026年4月30日（已延期）" in text


async def test_the_year_report_counts_a_correction_for_the_department_that_made_it_004_art20(
    sessionmaker, clock, w
) -> None:
    """004 第二十条 (牵头部门 re-checks an objection; the department that finds an error
    corrects it) with 000 §十三 (each department's yearly assessment): the lead's correction is
    the lead's, and the objection is counted for the lead that handles it — 卫健委, whose part
    was not corrected, is credited neither (both used to count for every department)."""
    await say(
        sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 未发现问题 无需后续处置 经复查已补报"
    )
    reply = await say(sessionmaker, clock, w.lead_leader, "年度考核 2026")
    lines = {line.split("**")[1]: line for line in reply.splitlines() if line.startswith("- **")}
    assert "异议 1，更正 1" in lines["县市场监督管理局"], reply
    assert "异议 0，更正 0" in lines["县卫生健康委员会"], reply
    assert "异议计入案件所属任务的牵头部门" in reply and "更正计入作出更正的部门" in reply


# ---------------------------------------------------------------- correcting a situation away


async def test_the_lead_corrects_a_situation_away_for_the_whole_case_004_art20(
    sessionmaker, clock, nothing_found
) -> None:
    """004 第二十条: a 注销 correction found wrong is corrected back by the lead, which re-checks,
    for the whole case: 卫健委's item takes its last published result before 注销 was put on it
    (未发现问题, what its check covered), the lead's takes what the lead says; audited as the
    whole case's, every department told. 卫健委's own 更正 away from 注销 is refused, naming
    the lead (it was refused against the lead's 注销, and the lead's against 卫健委's: nobody
    could correct the case back)."""
    w = nothing_found
    lead_item, other_item = w.items
    await say(sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 注销 该企业检查前已注销登记")
    reply = await say(sessionmaker, clock, w.other_liaison, f"更正 {CASE} 未发现问题 未注销")
    assert "由牵头部门县市场监督管理局的联络员或分管领导更正整个案件" in reply, reply
    rows = await sent(
        sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 未发现问题 再次核实企业未注销"
    )
    reply = told(rows, w.lead_liaison)
    assert "已更正公示结果" in reply and "第 3 版" in reply, reply
    *_, before, after = await versions(sessionmaker)
    assert (before.codes, after.codes, after.state) == (["9"], ["1"], "published")
    assert await item_codes(sessionmaker, after) == {
        lead_item.id: (["1"], "查询公示信息", ""),
        other_item.id: (["1"], "查验卫生许可证", ""),
    }
    *_, event = await audit_rows(sessionmaker, "case.result.corrected")
    assert (event.data["department_id"], event.data["whole_case"]) == (w.lead.id, True)
    for department in (w.lead, w.other):
        [notice] = [r for r in rows if r.destination.get("department_id") == department.id]
        assert "其他部门的检查事项恢复为" in notice.message["body"], notice.message
    history = await say(sessionmaker, clock, w.other_liaison, f"案件 {CASE}")
    assert "其他部门的检查事项恢复为“注销”" in history, history


async def test_the_lead_corrects_a_situation_away_on_the_correction_form_004_art20(
    client: TestClient, services: Services, nothing_found: World, sessionmaker, clock
) -> None:
    """004 第二十条 on the correction form: the lead unticks 注销 and ticks 未发现问题; 卫健委's
    item goes back to its 未发现问题 as published before."""
    w = nothing_found
    lead_item, other_item = w.items
    await say(sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 注销 该企业检查前已注销登记")
    tok = token(services, w.lead_liaison, w.case)
    posted = nothing_found_form(tok, lead_item.id, "再次核实企业未注销")
    resp = await client.post(CORRECTION_PATH, data=posted)
    assert resp.status == 200, page_text(await resp.text())
    *_, after = await versions(sessionmaker)
    items = await item_codes(sessionmaker, after)
    assert (after.codes, items[lead_item.id][0], items[other_item.id][0]) == (["1"], ["1"], ["1"])


@pytest.fixture
async def deregistered(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> World:
    """Both departments entered 注销 (9) originally, without a visit (004 第十八条): no
    inspection result of either was ever published. Published; the target objected, and the
    lead's re-check found it never deregistered and inspected it (error_found)."""
    clock.set(china_noon(D(2026, 3, 5)))
    async with sessionmaker() as s:
        w = await build_world(s)
        ctx = Ctx(session=s, clock=clock, rules=Rules())
        for officer, item in ((w.a1, w.items[0]), (w.b1, w.items[1])):
            await submit_result(
                acting(ctx, officer),
                CASE,
                codes=["9"],
                methods=[],
                followups=["无需后续处置"],
                inspected_on=D(2026, 3, 4),
                item_results=[{"item_id": item.id, "codes": ["9"], "content": ""}],
            )
        await published_and_found_wrong(ctx, w, "企业称未注销", "经复查企业未注销，已复查各事项")
        await s.commit()
    return w


async def test_a_chat_correction_of_a_situation_entered_originally_points_at_the_form_004_art20(
    sessionmaker, clock, deregistered
) -> None:
    """004 第二十条: both departments entered 注销 and no inspection result of 卫健委 was ever
    published, so there is none to restore; the lead's quick `更正 … 未发现问题` cannot say what
    the re-check found on 卫健委's items. Refused, naming 卫健委 and the correction form where
    the lead enters each of its items' re-check result; nothing changes."""
    w = deregistered
    reply = await say(sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 未发现问题 企业未注销")
    assert "县卫生健康委员会" in reply and "没有公示过本部门的检查结果" in reply, reply
    assert f"发送“更正 {CASE}”打开更正表单" in reply, reply
    assert len(await versions(sessionmaker)) == 2
    assert await objection_state(sessionmaker) == "error_found"


async def test_the_lead_enters_the_recheck_of_items_entered_as_a_situation_004_art20(
    client: TestClient, services: Services, deregistered: World, sessionmaker, clock
) -> None:
    """004 第二十条 (牵头部门 re-checks and corrects within 5 working days): every department
    entered 注销, so no department had an inspection outcome to go back to and the case could
    never be corrected away from it. The lead's correction form now offers 卫健委's item too
    (not pre-ticked: its re-check result is to be entered); the lead enters both items' re-check
    results; one version publishes them, audited naming 卫健委 (`entered_for`), every
    department told — 卫健委 that its item was entered from the lead's re-check and that it may
    correct it — and the objection is corrected. 卫健委's own form still offers its item only."""
    w = deregistered
    lead_item, other_item = w.items
    html = await (
        await client.get(CORRECTION_PATH, params={"t": token(services, w.other_liaison, w.case)})
    ).text()
    assert f'name="item.{other_item.id}.codes"' in html
    assert f'name="item.{lead_item.id}.codes"' not in html
    tok = token(services, w.lead_liaison, w.case)
    html = await (await client.get(CORRECTION_PATH, params={"t": tok})).text()
    assert f'name="item.{other_item.id}.codes"' in html, page_text(html)
    assert f'name="item.{other_item.id}.codes" value="9" checked' not in html
    assert "录入时即为“注销”（9）" in page_text(html), page_text(html)
    posted = form(
        tok,
        lead_item.id,
        followups="无需后续处置",
        reason="经复查企业未注销，复查时已检查各事项",
        **{
            f"item.{lead_item.id}.codes": "1",
            f"item.{lead_item.id}.problems": "",
            f"item.{lead_item.id}.handling": "",
            f"item.{other_item.id}.codes": "1",
        },
    )
    resp = await client.post(CORRECTION_PATH, data=posted)
    assert resp.status == 200, page_text(await resp.text())
    *_, before, after = await versions(sessionmaker)
    assert (before.state, after.state, after.codes) == ("superseded", "published", ["1"])
    items = await item_codes(sessionmaker, after)
    assert (items[lead_item.id][0], items[other_item.id][0]) == (["1"], ["1"])
    [event] = await audit_rows(sessionmaker, "case.result.corrected")
    assert (event.data["whole_case"], event.data["away_from"]) == (True, ["9"])
    assert event.data["entered_for"] == ["WJ"]
    async with sessionmaker() as s:
        rows = list(await s.scalars(select(OutboxMessage)))
    [notice] = [
        r
        for r in rows
        if r.destination.get("department_id") == w.other.id
        and "公示结果已更正" in r.message["title"]
    ]
    body = notice.message["body"]
    assert "县卫生健康委员会的检查事项录入时即为“注销”（9）" in body, body
    assert "牵头部门按复查结果录入" in body and "由该部门更正" in body, body
    assert await objection_state(sessionmaker) == "corrected"
    history = await say(sessionmaker, clock, w.other_liaison, f"案件 {CASE}")
    assert "县卫生健康委员会的检查事项按牵头部门复查结果录入" in history, history


async def test_the_lead_must_enter_the_recheck_of_every_such_item_004_art20(
    client: TestClient, services: Services, deregistered: World, sessionmaker
) -> None:
    """004 第二十条, 第三条: correcting 注销 away, the lead entering its own item only leaves
    卫健委's item with no result but 注销 — refused next to that item, naming it; nothing
    changes."""
    w = deregistered
    lead_item, _ = w.items
    tok = token(services, w.lead_liaison, w.case)
    posted = nothing_found_form(tok, lead_item.id, "经复查企业未注销")
    resp = await client.post(CORRECTION_PATH, data=posted)
    text = page_text(await resp.text())
    assert resp.status == 422, text
    assert "请为县卫生健康委员会的检查事项“公共场所卫生检查”录入复查结果" in text, text
    assert len(await versions(sessionmaker)) == 2
    assert await objection_state(sessionmaker) == "error_found"


@pytest.mark.parametrize("other_codes", ["12", ""], ids=["recheck-item-filled", "left-blank"])
async def test_the_lead_corrects_one_situation_into_another_on_the_form_004_art18_art20(
    client: TestClient,
    services: Services,
    deregistered: World,
    sessionmaker,
    other_codes: str,
) -> None:
    """004 第十八条, 第二十条: the re-check found the target moved out (迁出), not deregistered.
    A situation is every department's items' (004 第十八条), so the lead's correction to 迁出
    corrects the whole case; the re-check items its form offers for 卫健委 apply only when the
    correction leaves the situation: whether the lead fills 卫健委's item with 迁出 too or leaves
    it blank, one version publishes 迁出 on both items — not a refusal saying 卫健委 enters its
    own items."""
    w = deregistered
    lead_item, other_item = w.items
    fields = {
        f"item.{lead_item.id}.codes": "12",
        f"item.{lead_item.id}.problems": "",
        f"item.{lead_item.id}.handling": "",
    }
    if other_codes:  # a box left unticked is not posted
        fields[f"item.{other_item.id}.codes"] = other_codes
    posted = form(
        token(services, w.lead_liaison, w.case),
        lead_item.id,
        followups="无需后续处置",
        reason="经复查企业已迁出本县，并未注销",
        **fields,
    )
    resp = await client.post(CORRECTION_PATH, data=posted)
    assert resp.status == 200, page_text(await resp.text())
    *_, before, after = await versions(sessionmaker)
    assert (before.state, after.state, after.codes) == ("superseded", "published", ["12"])
    items = await item_codes(sessionmaker, after)
    assert (items[lead_item.id][0], items[other_item.id][0]) == (["12"], ["12"])
    assert await objection_state(sessionmaker) == "corrected"


async def test_a_refused_quick_correction_points_at_the_correction_form_004_art20(
    client: TestClient, services: Services, w: World, sessionmaker, clock
) -> None:
    """004 第二十条: with 卫健委's item corrected to 发现问题已责令改正, the lead's quick 更正 to
    未发现问题 (its item 年报未公示) is refused naming the correction form and how to open it
    (`更正 案件号`), not the result form."""
    _, other_item = w.items
    resp = await client.post(
        CORRECTION_PATH, data=form(token(services, w.other_liaison, w.case), other_item.id)
    )
    assert resp.status == 200, page_text(await resp.text())
    reply = await say(sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 未发现问题 复查确认")
    assert f"发送“更正 {CASE}”打开更正表单" in reply and "结果填报表单" not in reply, reply
    assert len(await versions(sessionmaker)) == 3


async def test_the_correction_page_is_read_only_after_success_004_art20(
    client: TestClient, services: Services, w: World, sessionmaker
) -> None:
    """004 第二十条: after a correction the page shows the corrected result with the
    confirmation and no form to post a second one by mistake; it says how to correct again."""
    lead_item, _ = w.items
    resp = await client.post(
        CORRECTION_PATH, data=form(token(services, w.lead_liaison, w.case), lead_item.id)
    )
    html = await resp.text()
    assert resp.status == 200 and "已更正公示结果（第 2 版）" in page_text(html)
    assert "<form" not in html and 'name="reason"' not in html
    assert f"“更正 {CASE}”" in page_text(html)


async def test_the_form_corrects_the_own_items_to_nothing_found_beside_a_problem_004_art3(
    client: TestClient, services: Services, w: World, sessionmaker
) -> None:
    """004 第三条: 未发现问题 of the lead's own item beside 卫健委's 发现问题已责令改正 is each
    department's own item, not a contradiction, and the form names its items: the lead's
    correction stands, the case's conclusion merged from both (E)."""
    lead_item, other_item = w.items
    resp = await client.post(
        CORRECTION_PATH, data=form(token(services, w.other_liaison, w.case), other_item.id)
    )
    assert resp.status == 200, page_text(await resp.text())
    posted = form(
        token(services, w.lead_liaison, w.case),
        lead_item.id,
        followups="无需后续处置",
        **{
            f"item.{lead_item.id}.codes": "1",
            f"item.{lead_item.id}.problems": "",
            f"item.{lead_item.id}.handling": "",
        },
    )
    resp = await client.post(CORRECTION_PATH, data=posted)
    assert resp.status == 200, page_text(await resp.text())
    *_, after = await versions(sessionmaker)
    items = await item_codes(sessionmaker, after)
    assert (after.codes, items[lead_item.id][0], items[other_item.id][0]) == (["E"], ["1"], ["E"])


async def test_the_case_names_each_version_as_the_review_page_does_004_art20(
    sessionmaker, clock, w
) -> None:
    """004 第二十条 (corrections are new versions): `案件` read “第 1 版（第 2 次录入，…）”, which
    a reviewer could not make sense of. Each version is named as the review page names it (第 N
    版, （更正）), its state and which entry of the case it was, and a line says how both count."""
    await say(
        sessionmaker, clock, w.lead_liaison, f"更正 {CASE} 未发现问题 无需后续处置 经复查已补报"
    )
    shown = await say(sessionmaker, clock, w.other_liaison, f"案件 {CASE}")
    assert "- 第 1 版 · 已被更正 · 本案第 2 次录入：" in shown, shown
    assert "- 第 2 版（更正） · 已公示 · 本案第 3 次录入：" in shown
    assert "公示后每更正一次加一版" in shown and "退回后重新录入" in shown, shown


# ---------------------------------------------------------------- the published photos


async def with_photos(
    sm, clock: FixedClock, store: FileStore, *photos: tuple[Officer, str]
) -> list[bytes]:
    """The published version carries a photo of each (uploader, name); their bytes."""
    async with sm() as s:
        published = await s.scalar(select(CaseResult).order_by(CaseResult.version.desc()))
        assert published is not None and published.state == "published"
        shots = []
        for n, (officer, name) in enumerate(photos):
            shot = jpeg(("red", "green", "blue")[n % 3], (400 + n, 300))
            s.add(
                Attachment(
                    result_id=published.id,
                    sha256=store.put(shot),
                    name=name,
                    mime="image/jpeg",
                    size=len(shot),
                    uploaded_by_id=officer.id,
                    uploaded_at=clock.now(),
                )
            )
            shots.append(shot)
        await s.commit()
    return shots


@pytest.fixture
def filed(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock, tmp_path) -> Services:
    return make_services(sessionmaker, clock, attachments={"dir": str(tmp_path / "files")})


async def test_the_correction_form_shows_the_published_photos_to_the_corrector_004_art20(
    filed: Services, w: World, sessionmaker, clock, aiohttp_client
) -> None:
    """004 第二十条: whoever corrects sees the published result's photos (the lead's two and
    卫健委's, also linked beside its part) through the correction link; they were 403
    (链接与操作不符) from the result form's file route. The link opens this case's files only,
    and the result form's link none of them on the correction's route."""
    client = await aiohttp_client(pages_app(filed, routes(filed)))
    shots = await with_photos(
        sessionmaker,
        clock,
        file_store(filed),
        (w.a1, "现场1.jpg"),
        (w.a1, "现场2.jpg"),
        (w.b1, "卫.jpg"),
    )
    tok = token(filed, w.lead_liaison, w.case)
    html = await (await client.get(CORRECTION_PATH, params={"t": tok})).text()
    images = [unescape(u) for u in re.findall(r'<img src="([^"]+)"', html)]
    links = {unescape(u) for u in re.findall(r'<a href="([^"]+)"', html)}
    assert len(images) == 3 and set(images) == links, html
    for url in links:
        got = await client.get(url)
        assert got.status == 200, (url, page_text(await got.text()))
        assert await got.read() in shots
        assert "sandbox" in got.headers["Content-Security-Policy"]
    other_case = token(filed, w.lead_liaison, Case(id=w.case.id + 1000))
    assert (await client.get(images[0].replace(tok, other_case))).status in (403, 404)
    result_tok = page_link(filed, w.a1.id, "result", f"case:{w.case.id}").split("?t=", 1)[1]
    assert (await client.get(images[0].replace(tok, result_tok))).status == 403


async def test_two_tabs_of_the_correction_form_do_not_overwrite_each_other_004_art20(
    client: TestClient, services: Services, w: World, sessionmaker
) -> None:
    """004 第二十条: tab A corrects the published result; tab B, opened on the same published
    version, posts another correction. B's page shows the correction now published, says so,
    keeps B's reason in its field and lists what B typed; a resent A is said submitted."""
    lead_item, _ = w.items
    tok = token(services, w.lead_liaison, w.case)
    tab_a = opened_base(await (await client.get(CORRECTION_PATH, params={"t": tok})).text())
    tab_b = opened_base(await (await client.get(CORRECTION_PATH, params={"t": tok})).text())
    first = await client.post(CORRECTION_PATH, data=form(tok, lead_item.id, base=tab_a))
    assert first.status == 200 and "已更正公示结果" in page_text(await first.text())
    b_form = [*nothing_found_form(tok, lead_item.id, "B 页的更正理由"), ("base", tab_b)]
    resp = await client.post(CORRECTION_PATH, data=b_form)
    html = await resp.text()
    text = page_text(html)
    assert resp.status == 409, text
    assert "该结果已在其他页面或聊天中更新，请核对后再提交" in text
    assert f'name="item.{lead_item.id}.codes" value="E" checked' in html  # A's, as published
    assert "B 页的更正理由</textarea>" in html
    assert int(opened_base(html)) > int(tab_b)
    unsaved = text[text.index("该结果已在其他页面") : text.index(w.target.name)]
    assert "未发现问题" in unsaved and "无需后续处置" in unsaved
    assert len(await versions(sessionmaker)) == 3  # the published, A's correction: no B
    resent = await client.post(CORRECTION_PATH, data=form(tok, lead_item.id, base=tab_a))
    text = page_text(await resent.text())
    assert resent.status == 200, text
    assert "该结果已提交过" in text and "其他页面" not in text
    assert len(await versions(sessionmaker)) == 3


# ------------------------------------------- a referral resting on a problem found wrong


@pytest.fixture
async def referred_problem(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> World:
    """The lead found a problem (年报未公示) and referred a clue of the case (移送办案机构,
    001 第十七条); published, then the re-check found the problem did not exist."""
    return await found_wrong(sessionmaker, clock, "移送办案机构", "年报未公示，涉嫌未取得卫生许可")


async def referrals_kept(sm) -> list[str]:
    async with sm() as s:
        return list(await s.scalars(select(Referral.kind)))


async def test_a_chat_correction_of_a_problem_found_wrong_may_drop_the_referral_004_art20(
    sessionmaker, clock, referred_problem
) -> None:
    """004 第二十条, 001 第十七条: the re-check found the problem the referral rested on did
    not exist, so the corrected part says 未发现问题 and 无需后续处置; the referral stays in
    the case's record (it was made), only the corrected result no longer follows up on it."""
    correction = f"更正 {CASE} 未发现问题 无需后续处置 经复查企业已于检查前补报"
    reply = await say(sessionmaker, clock, referred_problem.lead_liaison, correction)
    assert "已更正公示结果" in reply, reply
    assert "移送办案机构：县卫生健康委员会" in reply and "仍保留" in reply, reply
    *_, after = await versions(sessionmaker)
    assert (after.codes, after.followups) == (["1"], ["无需后续处置"])
    assert await referrals_kept(sessionmaker) == ["移送办案机构"]


async def test_the_form_corrects_a_problem_found_wrong_to_no_follow_up_004_art20(
    client: TestClient, services: Services, referred_problem: World, sessionmaker
) -> None:
    """004 第二十条, 001 第十七条: the correction form takes 未发现问题 with 无需后续处置 from
    the department that referred a clue resting on the problem the re-check found wrong."""
    w = referred_problem
    lead_item, _ = w.items
    tok = token(services, w.lead_liaison, w.case)
    resp = await client.post(
        CORRECTION_PATH, data=nothing_found_form(tok, lead_item.id, "经复查企业已于检查前补报")
    )
    assert resp.status == 200, page_text(await resp.text())
    *_, after = await versions(sessionmaker)
    assert (after.codes, after.followups) == (["1"], ["无需后续处置"])
    assert await referrals_kept(sessionmaker) == ["移送办案机构"]
