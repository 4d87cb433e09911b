"""快抽 is not a re-roll machine (002 二(五) 公开、公正; issue 8 rule 8): a quick target draw
leaves out what a task draw would (000 §五.1, 004 第八条), its outcome is fixed by two parties
(the bot's committed seed, then a number from an officer other than the requester, or a dated
public beacon), and every receipt counts the day's earlier quick draws with the same
parameters. Driven through Dispatcher.handle on a real database, as chat does."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select

from core.clock import CHINA_TZ
from core.draws import algorithm
from core.draws.pool import decode_pool
from core.models import Draw, DrawPool, Exclusion, OutboxMessage
from core.rules import Rules
from tests import factories as f
from tests.dispatch_support import (
    audit_rows,
    bodies,
    chat_world,
    make_dispatcher,
    send,
    text_event,
)
from tests.test_draw_exclusions import _published
from tests.test_pool import _past_task


@pytest.fixture
async def people(sessionmaker) -> f.World:
    return await chat_world(sessionmaker)


async def _draw(sessionmaker) -> Draw:
    async with sessionmaker() as s:
        return await s.scalar(select(Draw).order_by(Draw.id.desc()).limit(1))


async def test_quick_draw_posts_its_commitment_first_and_a_colleagues_number_fixes_it(
    sessionmaker, clock, people
) -> None:
    """002 二(五): the commitment is in the department chat before anyone supplies a beacon;
    the second officer's number locks it, and the receipt says who supplied what."""
    d = make_dispatcher(sessionmaker, clock)
    who = people.lead.liaison.code
    rows = await send(sessionmaker, d, text_event(who, "快抽 2名 执法人员 县市场监督管理局 食品"))
    frozen = await _draw(sessionmaker)
    assert frozen.state == "frozen" and frozen.selection == [] and frozen.pool_size == 2
    group = [r for r in rows if r.destination.get("kind") == "department"]
    assert [r.destination["department_id"] for r in group] == [people.lead.dep.id]
    assert frozen.commitment in bodies(group) and frozen.seed_hex not in bodies(rows)
    assert "确认快抽 KC-2026-0001 数字" in bodies(rows)

    colleague = people.lead.leader
    locked = bodies(
        await send(sessionmaker, d, text_event(colleague.code, "确认快抽 KC-2026-0001 47 11"))
    )
    row = await _draw(sessionmaker)
    assert row.state == "locked" and row.beacon == "4711"
    assert f"信标：{colleague.name}（{colleague.code}） 提供的数字 = 4711" in locked
    chosen = {o.name for o in people.lead.inspectors[:2]}
    assert all(name in locked for name in chosen)  # the only two with the tag
    seed = bytes.fromhex(row.seed_hex)
    assert row.commitment == algorithm.commitment(seed)
    check = bodies(await send(sessionmaker, d, text_event(who, "验证 kc-2026-0001")))
    assert "验证 KC-2026-0001：通过" in check and "✗" not in check
    [event] = await audit_rows(sessionmaker, "quickdraw.locked")
    assert event.actor == colleague.code and event.data["beacon"] == "4711"


async def test_verify_checks_a_colleagues_number_against_the_lock_receipt(
    sessionmaker, clock, people
) -> None:
    """A colleague's number (002 二(五), the second party) has no official publication: 验证
    names who supplied it and points at the lock receipt in the department chat instead."""
    d = make_dispatcher(sessionmaker, clock)
    who = people.lead.liaison.code
    await send(sessionmaker, d, text_event(who, "快抽 2名 执法人员 县市场监督管理局 食品"))
    colleague = people.lead.leader
    await send(sessionmaker, d, text_event(colleague.code, "确认快抽 KC-2026-0001 4711"))
    check = bodies(await send(sessionmaker, d, text_event(who, "验证 KC-2026-0001")))
    assert (
        f"✓ 信标值（{colleague.name}（{colleague.code}） 提供的数字，已用于计算；"
        "请对照锁定时发到牵头部门群的快抽回执核对）：4711" in check
    )
    assert "官方公布" not in check


async def test_the_requester_cannot_supply_the_number_of_their_own_quick_draw(
    sessionmaker, clock, people
) -> None:
    """002 二(五): neither the requester nor the bot alone may steer the outcome."""
    d = make_dispatcher(sessionmaker, clock)
    who = people.lead.liaison.code
    await send(sessionmaker, d, text_event(who, "快抽 1 户 对象 餐饮"))
    for text in ("确认快抽 KC-2026-0001 42", "确认抽取 KC-2026-0001 42"):
        refused = bodies(await send(sessionmaker, d, text_event(who, text)))
        assert "须由发起人以外的一名人员提供，请同事发送“确认快抽" in refused
    assert (await _draw(sessionmaker)).state == "frozen"
    denied = await audit_rows(sessionmaker, "denied")
    assert {e.data["action"] for e in denied} == {"quickdraw.confirm"}
    # an inspector of another department may be the second party
    other = people.partners[0].inspectors[0].code
    assert "抽取结果" in bodies(
        await send(sessionmaker, d, text_event(other, "确认抽取 KC-2026-0001 42"))
    )


@pytest.mark.parametrize("number", ["abc", "12a", "1" * 21, "4.5"])
async def test_the_second_partys_number_must_be_digits(sessionmaker, clock, people, number) -> None:
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(people.lead.liaison.code, "快抽 1 户 对象"))
    text = f"确认快抽 KC-2026-0001 {number}"
    reply = bodies(await send(sessionmaker, d, text_event(people.lead.leader.code, text)))
    assert "请提供一个由您自己确定的数字" in reply
    assert (await _draw(sessionmaker)).state == "frozen"


async def test_concurrent_numbers_lock_once(sessionmaker, clock, people) -> None:
    """Two colleagues answer at once: the second waits, then finds the draw locked."""
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(people.lead.liaison.code, "快抽 1 户 对象 餐饮"))
    first_who, second_who = people.lead.leader.code, people.lead.inspectors[0].code
    async with sessionmaker() as first:
        await first.begin()
        await d.handle(first, text_event(first_who, "确认快抽 KC-2026-0001 111"))

        async def second() -> list[OutboxMessage]:
            return await send(sessionmaker, d, text_event(second_who, "确认快抽 KC-2026-0001 222"))

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await first.commit()
        assert "已锁定" in bodies(await asyncio.wait_for(waiting, 10))
    [locked] = await audit_rows(sessionmaker, "quickdraw.locked")
    assert locked.data["beacon"] == "111"


async def test_every_receipt_counts_the_days_earlier_quick_draws_with_the_same_parameters(
    sessionmaker, clock, people
) -> None:
    """002 二(五): a re-roll is visible — on the freeze and on the lock, for targets and
    inspectors, whoever asked; other parameters or another day start a new count."""
    d = make_dispatcher(sessionmaker, clock)
    lead, partner = people.lead.liaison.code, people.partners[0].liaison.code
    first = bodies(await send(sessionmaker, d, text_event(lead, "快抽 2 户 对象 餐饮")))
    assert "今天此前没有相同条件的快抽" in first
    await send(sessionmaker, d, text_event(lead, "快抽 3 户 对象 餐饮"))  # another count
    await send(sessionmaker, d, text_event(lead, "快抽 2 名 执法人员"))  # another kind
    again = bodies(await send(sessionmaker, d, text_event(partner, "快抽 2 户 对象 餐饮")))
    assert "今天此前已有 1 次相同条件的快抽：KC-2026-0001" in again
    third = bodies(await send(sessionmaker, d, text_event(lead, "快抽 2 户 对象 餐饮")))
    assert "今天此前已有 2 次相同条件的快抽：KC-2026-0001、KC-2026-0004" in third
    locked = bodies(
        await send(sessionmaker, d, text_event(people.lead.leader.code, "确认快抽 KC-2026-0005 9"))
    )
    assert "今天此前已有 2 次相同条件的快抽：KC-2026-0001、KC-2026-0004" in locked
    assert "抽取结果" in locked
    inspectors = bodies(await send(sessionmaker, d, text_event(partner, "快抽 2 名 执法人员")))
    assert "今天此前已有 1 次相同条件的快抽：KC-2026-0003" in inspectors
    clock.set(clock.now() + dt.timedelta(days=1))
    tomorrow = bodies(await send(sessionmaker, d, text_event(lead, "快抽 2 户 对象 餐饮")))
    assert "今天此前没有相同条件的快抽" in tomorrow


async def test_a_quick_target_draw_leaves_out_what_a_task_draw_would(
    sessionmaker, clock, people
) -> None:
    """000 §五.1, 004 第八条: not drawable, inspected this year by the requester's department,
    on the imported list of the level above — each counted on the receipt."""
    async with sessionmaker() as s, s.begin():
        gone = await f.targets(s, 2, industry="餐饮服务", status="注销")
        ours = await f.targets(s, 3, industry="餐饮服务")
        theirs = await f.targets(s, 1, industry="餐饮服务")  # another department's task
        above = await f.targets(s, 2, industry="餐饮服务")
        await _past_task(s, people.lead.dep.id, 2026, ours)
        await _past_task(s, people.partners[0].dep.id, 2026, theirs)
        s.add_all(
            Exclusion(year=2026, uscc=t.uscc, department_id=None, source="市局") for t in above
        )
    d = make_dispatcher(sessionmaker, clock)
    reply = bodies(
        await send(sessionmaker, d, text_event(people.lead.liaison.code, "快抽 1 户 对象 餐饮"))
    )
    assert (
        "已排除：已注销/吊销/撤销/迁出 2 个，本年度已被本部门检查 3 个，"
        "上级部门已检查（导入名单） 2 个。\n" in reply  # its own line, not run into the next
    )
    row = await _draw(sessionmaker)
    async with sessionmaker() as s:
        pool = {i for i, _ in decode_pool(await s.scalar(select(DrawPool.data)))}
    assert row.pool_size == 12 + 1 and {t.uscc for t in theirs} <= pool
    assert not pool & {t.uscc for t in gone + ours + above}


async def test_a_quick_draw_with_nothing_left_after_the_exclusions_says_so(
    sessionmaker, clock, people
) -> None:
    async with sessionmaker() as s, s.begin():
        only = await f.targets(s, 2, industry="潜水器材")
        await _past_task(s, people.lead.dep.id, 2026, only)
    d = make_dispatcher(sessionmaker, clock)
    reply = bodies(
        await send(sessionmaker, d, text_event(people.lead.liaison.code, "快抽 1 户 对象 潜水"))
    )
    assert "没有符合条件的检查对象（已排除：本年度已被本部门检查 2 个），请调整行业或区域" in reply
    async with sessionmaker() as s:
        assert await s.scalar(select(Draw.id)) is None
    nothing = bodies(
        await send(sessionmaker, d, text_event(people.lead.liaison.code, "快抽 1 户 对象 潜艇"))
    )
    assert "没有符合条件的检查对象，请调整行业或区域" in nothing  # no exclusion claimed


async def test_a_quick_draw_leaves_out_this_years_inspections_and_published_deregistrations(
    sessionmaker, clock, people
) -> None:
    """000 §五.1, 004 第二十三条: inspected in 2026 under a 2025 task; docs/domain.md rule 3: a
    published 注销 result — both left out of a 2026 quick draw, and counted."""
    async with sessionmaker() as s, s.begin():
        inspected = await f.targets(s, 2, industry="潜水器材")
        ended = await f.targets(s, 1, industry="潜水器材")
        left = await f.targets(s, 1, industry="潜水器材")
        lead = people.lead.dep.id
        await _past_task(s, lead, 2025, inspected, inspected_on=dt.date(2026, 1, 20))
        [case] = await _past_task(s, lead, 2025, ended, inspected_on=dt.date(2025, 6, 10))
        await _published(s, case, people.lead.inspectors[0], ["9"])
    d = make_dispatcher(sessionmaker, clock)
    reply = bodies(
        await send(sessionmaker, d, text_event(people.lead.liaison.code, "快抽 1 户 对象 潜水"))
    )
    assert "已排除：已注销/吊销/撤销/迁出 1 个，本年度已被本部门检查 2 个。" in reply
    async with sessionmaker() as s:
        pool = {i for i, _ in decode_pool(await s.scalar(select(DrawPool.data)))}
    assert pool == {left[0].uscc}


async def test_a_named_public_beacon_is_entered_once_published(sessionmaker, clock, people) -> None:
    """The other way to a second party: a dated public beacon nobody knows yet (002 二(五)),
    required when rules.quick_draw_requires_beacon; its value is refused before it is out."""
    d = make_dispatcher(sessionmaker, clock, Rules(quick_draw_requires_beacon=True))
    who = people.lead.liaison.code
    frozen = bodies(await send(sessionmaker, d, text_event(who, "快抽 1 户 对象 餐饮")))
    assert "2026年3月3日福彩3D开奖号码" in frozen and "2026年3月3日 21:30 起" in frozen
    early = bodies(await send(sessionmaker, d, text_event(who, "确认快抽 KC-2026-0001 4 1 7")))
    assert "尚未公布" in early
    clock.set(dt.datetime(2026, 3, 3, 21, 40, tzinfo=CHINA_TZ))
    other = people.partners[0].liaison.code
    refused = bodies(await send(sessionmaker, d, text_event(other, "确认抽取 KC-2026-0001 4 1 7")))
    assert "只有发起快抽 KC-2026-0001 的人员或管理员可以录入公开信标值" in refused
    locked = bodies(await send(sessionmaker, d, text_event(who, "确认抽取 KC-2026-0001 4 1 7")))
    assert "信标：2026年3月3日福彩3D开奖号码 = 4 1 7" in locked
    again = bodies(await send(sessionmaker, d, text_event(who, "确认快抽 KC-2026-0001 9 9 9")))
    assert "已锁定" in again
    check = bodies(await send(sessionmaker, d, text_event(who, "验证 KC-2026-0001")))
    assert "通过" in check and "✗" not in check


async def test_a_public_beacon_already_out_is_refused(sessionmaker, clock, people) -> None:
    d = make_dispatcher(sessionmaker, clock)
    text = "快抽 1 户 对象 餐饮 信标 2026年3月1日福彩3D开奖号码"
    reply = bodies(await send(sessionmaker, d, text_event(people.lead.liaison.code, text)))
    assert "的信标值已公布" in reply
    async with sessionmaker() as s:
        assert await s.scalar(select(Draw.id)) is None


@pytest.mark.parametrize(
    "text", ["快抽", "快抽 名 执法人员", "快抽 3", "快抽 3 名 对象", "快抽 3 户 对象 a b c"]
)
async def test_malformed_quick_draws_get_the_usage(sessionmaker, clock, people, text) -> None:
    d = make_dispatcher(sessionmaker, clock)
    assert "用法：快抽" in bodies(
        await send(sessionmaker, d, text_event(people.lead.liaison.code, text))
    )


@pytest.mark.parametrize("text", ["确认快抽", "确认快抽 KC-2026-0001", "确认快抽 LJ-2026-001 5"])
async def test_malformed_confirmations_get_the_usage(sessionmaker, clock, people, text) -> None:
    d = make_dispatcher(sessionmaker, clock)
    assert "用法：确认快抽" in bodies(
        await send(sessionmaker, d, text_event(people.lead.leader.code, text))
    )


async def test_quick_draw_with_an_empty_pool_says_why(sessionmaker, clock, people) -> None:
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(
        sessionmaker,
        d,
        text_event(people.lead.liaison.code, "快抽 2 名 执法人员 县市场监督管理局 潜水"),
    )
    assert "没有符合条件的执法检查人员" in bodies(rows)
    async with sessionmaker() as s:
        assert await s.scalar(select(Draw.id)) is None


@pytest.mark.parametrize("text", ["快抽 1 名 执法人员", "快抽 1 户 对象"])
async def test_inspector_may_not_start_a_quick_draw(sessionmaker, clock, people, text) -> None:
    d = make_dispatcher(sessionmaker, clock)
    inspector = people.lead.inspectors[0].code
    assert "只有联络员、分管领导或管理员可以发起快抽" in bodies(
        await send(sessionmaker, d, text_event(inspector, text))
    )
    [denied] = await audit_rows(sessionmaker, "denied")
    assert denied.actor == inspector and denied.data["action"].startswith("quickdraw.start.")
    async with sessionmaker() as s:
        assert await s.scalar(select(Draw.id)) is None
