"""Issue 11: every refusal of who asks is audited, through the one function that rolls the
refused work back and then records the denial (core.access.denials_on_record), by family:
a command that finds nothing of the officer's to act on, a card click, a signed page (also
what the page route refuses before the page runs). A subject nobody has (a typo) and a forged
link naming nobody are refused without an audit row. README "Access" states the rule."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.pages.base import csrf_token
from bot.pages.links import page_link
from bot.pages.result import CORRECTION_PATH, RESULT_PATH, result_link
from bot.pages.review import review_link
from bot.services import Services
from core import access
from core.audit import verify_chain
from core.changes import Ctx
from core.clock import FixedClock, china_noon
from core.errors import PermissionDenied
from core.models import AuditEvent, Department, Officer
from core.rules import Rules
from handlers.forms import RESULT_FILE_PATH
from handlers.review_page import REVIEW_PATH
from tests import factories as f
from tests.case_factories import World, build_world
from tests.dispatch_support import bodies, make_dispatcher, send, text_event
from tests.test_result_form import SECRET, client, services, world

__all__ = ["client", "services", "world"]  # fixtures used by name


async def denials(sm: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str]]:
    """(actor, attempted action, subject) of every audited refusal."""
    async with sm() as s:
        rows = await s.scalars(
            select(AuditEvent).where(AuditEvent.action == "denied").order_by(AuditEvent.id)
        )
        return [(r.actor, r.data["action"], r.subject) for r in rows]


# ---------------------------------------------------------------- commands


async def test_answering_a_task_that_did_not_invite_the_department_is_an_audited_refusal(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    """接受 / 拒绝 from a department the task did not invite: refused as the card and the
    invitation page refuse it, and on record (it used to be a silent "not found"); a task
    code nobody has stays a plain "not found", not audited."""
    async with sessionmaker() as s, s.begin():
        w = await f.world(s, partners=2, inspectors=3, n_targets=10)
        ctx = Ctx(session=s, clock=clock, rules=Rules())
        task, _ = await f.invite_first_partner(ctx, w)
        code, outsider = task.code, w.partners[1].liaison.code
    d = make_dispatcher(sessionmaker, clock)
    accepted = await send(sessionmaker, d, text_event(outsider, f"接受 {code}"))
    declined = await send(sessionmaker, d, text_event(outsider, f"拒绝 {code} 本季度人手不足"))
    assert "没有邀请" in bodies(accepted) and "没有邀请" in bodies(declined)
    typo = await send(sessionmaker, d, text_event(outsider, "接受 LJ-2099-999"))
    assert "LJ-2099-999" in bodies(typo)
    assert await denials(sessionmaker) == [
        (outsider, "invitation.accept", f"task:{code}"),
        (outsider, "invitation.decline", f"task:{code}"),
    ]


async def test_recusal_by_someone_outside_the_group_is_an_audited_refusal(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    async with sessionmaker() as s:
        w = await build_world(s)
    clock.set(china_noon(dt.date(2026, 3, 5)))
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(
        sessionmaker, d, text_event(w.outsider.code, f"回避 {w.case.code} 本人配偶在该企业任职")
    )
    assert "不在案件" in bodies(rows)
    assert await denials(sessionmaker) == [(w.outsider.code, "case.recuse", f"case:{w.case.code}")]


# ---------------------------------------------------------------- cards


async def test_a_card_click_of_a_department_not_invited_is_an_audited_refusal(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    async with sessionmaker() as s, s.begin():
        w = await f.world(s, partners=2, inspectors=3, n_targets=10)
        ctx = Ctx(session=s, clock=clock, rules=Rules())
        _, inv = await f.invite_first_partner(ctx, w)
        inv_id, outsider = inv.id, w.partners[1].liaison.code
    d = make_dispatcher(sessionmaker, clock)
    for key in (f"inv:accept:{inv_id}", f"inv:decline:{inv_id}", "inv:accept:999999"):
        event = text_event(outsider, "").model_copy(
            update={"kind": "card_action", "action_key": key}
        )
        await send(sessionmaker, d, event)
    assert await denials(sessionmaker) == [
        (outsider, "invitation.accept", f"invitation:{inv_id}"),
        (outsider, "invitation.decline", f"invitation:{inv_id}"),
    ]


# ---------------------------------------------------------------- pages


def token_of(url: str) -> str:
    return url.split("?t=", 1)[1]


async def test_a_stale_review_form_is_an_audited_refusal(
    client: TestClient, services: Services, world: World, sessionmaker
) -> None:
    """The route refuses a form whose CSRF token does not match its link before the page
    runs; the genuine link names the officer, so the refusal is on record."""
    tok = token_of(review_link(services, world.lead_liaison.id, world.case.id))
    form = {"t": tok, "csrf": "0" * 32, "decision": "approve", "reason": ""}
    resp = await client.post(REVIEW_PATH, data=form)
    assert resp.status == 403
    assert await denials(sessionmaker) == [
        (world.lead_liaison.code, "page.review", f"case:{world.case.id}")
    ]
    good = {**form, "csrf": csrf_token(SECRET, tok)}
    assert (await client.post(REVIEW_PATH, data=good)).status != 403  # the check, not the page


async def test_a_link_for_another_page_or_of_a_deactivated_officer_is_an_audited_refusal(
    client: TestClient, services: Services, world: World, sessionmaker
) -> None:
    result_tok = token_of(result_link(services, world.a1.id, world.case.id))
    resp = await client.get(REVIEW_PATH, params={"t": result_tok})
    assert resp.status == 403
    async with sessionmaker() as s, s.begin():
        officer = await s.get(Officer, world.lead_liaison.id)
        assert officer is not None
        officer.active = False
    review_tok = token_of(review_link(services, world.lead_liaison.id, world.case.id))
    assert (await client.get(REVIEW_PATH, params={"t": review_tok})).status == 403
    assert await denials(sessionmaker) == [
        (world.a1.code, "page.review", f"case:{world.case.id}"),
        (world.lead_liaison.code, "page.review", f"case:{world.case.id}"),
    ]


async def test_a_forged_link_names_nobody_and_is_refused_unaudited(
    client: TestClient, services: Services, world: World, sessionmaker
) -> None:
    tok = token_of(review_link(services, world.lead_liaison.id, world.case.id))
    forged = tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB")
    assert (await client.get(REVIEW_PATH, params={"t": forged})).status == 403
    assert await denials(sessionmaker) == []


async def test_a_denial_the_page_audits_itself_is_audited_once(
    client: TestClient, services: Services, world: World, sessionmaker
) -> None:
    """A denial the page handler audits itself is not audited a second time by the route."""
    tok = token_of(review_link(services, world.a1.id, world.case.id))  # an inspector
    assert (await client.get(REVIEW_PATH, params={"t": tok})).status == 403
    assert len(await denials(sessionmaker)) == 1


# ---------------------------------------------------------------- the undo itself


@pytest.mark.parametrize("whole", [False, True])
async def test_a_refusal_after_writes_undoes_them_and_stays_on_record(
    session: AsyncSession, ctx: Ctx, whole: bool
) -> None:
    """denials_on_record undoes the refused block's writes, by a savepoint or (`whole`, a
    page's transaction) by rolling the whole transaction back, and then records the denial
    under the officer's code, the officer still usable afterwards."""
    w = await build_world(session)
    officer = await session.get(Officer, w.a1.id)
    assert officer is not None
    acting = dataclasses.replace(ctx, actor=officer)
    with pytest.raises(PermissionDenied):
        async with access.denials_on_record(acting, savepoint=not whole, whole=whole):
            session.add(Department(code="ZZ", name="不应留下的部门"))
            await session.flush()
            raise PermissionDenied("不可以", action="case.result.submit.denied", subject="case:X")
    assert officer.name == "张检查"
    await session.commit()
    assert await session.scalar(select(Department).where(Department.code == "ZZ")) is None
    assert [(e.actor, e.subject, e.data["action"]) for e in await audit_rows(session)] == [
        ("A1", "case:X", "case.result.submit.denied")
    ]


async def audit_rows(session: AsyncSession) -> list[AuditEvent]:
    return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


# ---------------------------------------------------------------- concurrency


async def test_concurrent_refusals_of_read_pages_are_each_audited_in_one_chain(
    client: TestClient, services: Services, world: World, sessionmaker
) -> None:
    """Issue 11: every audit append queues like every other write, GET pages included. The
    correction page (004 第二十条) asked for its two photos at once from the result's file
    route, which refused the correction link; the two refusals were audited side by side on
    SQLite and one died on `UNIQUE constraint failed: audit_event.id` (a 500). Here every kind
    of read page refusal comes at once over real HTTP: a link for another page, refused by
    the route, and an officer the page itself refuses."""
    correction = token_of(
        page_link(services, world.lead_liaison.id, "correction", f"case:{world.case.id}")
    )
    outsider = token_of(result_link(services, world.outsider.id, world.case.id))
    inspector = token_of(review_link(services, world.a1.id, world.case.id))
    requests = [
        (RESULT_FILE_PATH, {"t": correction, "a": "1"}),
        (RESULT_PATH, {"t": outsider}),
        (REVIEW_PATH, {"t": inspector}),
        (CORRECTION_PATH, {"t": outsider}),
    ] * 8

    async def get(path: str, params: dict[str, str]) -> int:
        resp = await client.get(path, params=params)
        await resp.read()
        return resp.status

    statuses = await asyncio.gather(*(get(path, params) for path, params in requests))
    assert statuses == [403] * len(requests)
    assert len(await denials(sessionmaker)) == len(requests)
    async with sessionmaker() as s:
        assert await verify_chain(s) == []
