"""The public beacon (docs/architecture.md §3) must be unknowable at freeze and real at confirm;
a recusal's newcomer gets a full assignment while the personal reason stays with the department."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core import replacements
from core.changes import Ctx
from core.clock import CHINA_TZ, china_noon
from core.draws import targets
from core.draws.beacon import beacon_day
from core.draws.verify import verify_draw
from core.errors import InvalidTransition, ValidationFailed
from core.groups import matching
from core.models import Case, Draw, GroupMember, OutboxMessage
from tests import factories as f
from tests.case_factories import at_time
from tests.dispatch_support import bodies, make_dispatcher, send, text_event
from tests.factories import as_actor

SOURCE = "2026年3月3日福彩3D开奖号码"  # the clock starts at noon on 2 March


def china(day: dt.date, hh: int, mm: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), CHINA_TZ)


async def _frozen(ctx: Ctx, source: str = SOURCE, **world: int) -> tuple[f.World, Ctx, str]:
    w = await f.world(ctx.session, partners=1, inspectors=3, n_targets=30, **world)
    task = await f.ready_task(ctx, w)
    lead = as_actor(ctx, w.lead.liaison)
    await targets.freeze_pool(lead, task.code, source)
    return w, lead, task.code


async def _state(ctx: Ctx, code: str) -> str:
    d = await ctx.session.scalar(
        select(Draw).where(Draw.task_code == code, Draw.state != "superseded")
    )
    assert d is not None
    return d.state


@pytest.mark.parametrize("source", ["福彩3D开奖号码", "下一期上证指数收盘点位"])
async def test_freeze_needs_a_dated_source(ctx: Ctx, source: str) -> None:
    w = await f.world(ctx.session, partners=0, n_targets=10)
    task = await f.ready_task(ctx, w)
    with pytest.raises(ValidationFailed, match="须写明信标公布的日期"):
        await targets.freeze_pool(as_actor(ctx, w.lead.liaison), task.code, source)


@pytest.mark.parametrize(
    ("now", "source"),
    [
        (china_noon(dt.date(2026, 3, 2)), "2026年3月1日福彩3D开奖号码"),  # yesterday
        (china(dt.date(2026, 3, 2), 22, 0), "2026-03-02 福彩3D"),  # tonight's draw is already out
    ],
)
async def test_freeze_refuses_a_beacon_already_known(
    ctx: Ctx, now: dt.datetime, source: str
) -> None:
    at_time(ctx, now)
    w = await f.world(ctx.session, partners=0, n_targets=10)
    task = await f.ready_task(ctx, w)
    with pytest.raises(ValidationFailed, match="的信标值已公布"):
        await targets.freeze_pool(as_actor(ctx, w.lead.liaison), task.code, source)
    assert await ctx.session.scalar(select(Draw.id)) is None


async def test_freeze_stores_the_beacon_date_iso_or_chinese(ctx: Ctx) -> None:
    _, _, code = await _frozen(ctx, "上证指数 2026-03-04 收盘点位")
    d = await ctx.session.scalar(select(Draw).where(Draw.task_code == code))
    assert d is not None and d.parameters["beacon_date"] == "2026-03-04"
    assert beacon_day("２０２６年３月３日福彩3D") == dt.date(2026, 3, 3)  # full-width digits
    with pytest.raises(ValidationFailed, match="多个日期"):
        beacon_day("2026年3月3日或2026-03-04")


async def test_confirm_waits_until_the_beacon_is_published(ctx: Ctx) -> None:
    _, lead, code = await _frozen(ctx)
    for now in (china_noon(dt.date(2026, 3, 2)), china(dt.date(2026, 3, 3), 21, 29)):
        at_time(ctx, now)
        with pytest.raises(InvalidTransition, match="2026年3月3日 21:30 起才能确认抽取"):
            await targets.confirm_draw(lead, code, "123")
        assert await _state(ctx, code) == "frozen"
    at_time(ctx, china(dt.date(2026, 3, 3), 21, 30))
    locked = await targets.confirm_draw(lead, code, "123")
    assert locked.state == "locked" and locked.beacon == "123"


async def test_ready_time_is_a_rule(ctx: Ctx) -> None:
    ctx.rules = ctx.rules.model_copy(update={"beacon_ready_time": dt.time(22, 0)})
    _, lead, code = await _frozen(ctx)
    at_time(ctx, china(dt.date(2026, 3, 3), 21, 45))
    with pytest.raises(InvalidTransition, match="22:00 起"):
        await targets.confirm_draw(lead, code, "123")


@pytest.mark.parametrize("value", ["abc", "12", "1234", "1 2 3 4", "12a", "福彩3D 417"])
async def test_3d_beacon_must_be_three_digits(ctx: Ctx, value: str) -> None:
    _, lead, code = await _frozen(ctx)
    at_time(ctx, china_noon(dt.date(2026, 3, 4)))
    with pytest.raises(ValidationFailed, match="福彩3D开奖号码应为 3 位数字"):
        await targets.confirm_draw(lead, code, value)
    assert await _state(ctx, code) == "frozen"


@pytest.mark.parametrize(
    ("value", "stored"), [("4 1 7", "4 1 7"), ("417", "417"), ("４ １ ７", "4 1 7")]
)
async def test_3d_beacon_keeps_the_officers_digits(ctx: Ctx, value: str, stored: str) -> None:
    _, lead, code = await _frozen(ctx)
    at_time(ctx, china_noon(dt.date(2026, 3, 4)))
    assert (await targets.confirm_draw(lead, code, value)).beacon == stored


async def test_other_beacons_are_bounded(ctx: Ctx) -> None:
    _, lead, code = await _frozen(ctx, "2026年3月3日上证指数收盘点位")
    at_time(ctx, china_noon(dt.date(2026, 3, 4)))
    with pytest.raises(ValidationFailed, match="不能超过 64 个字符"):
        await targets.confirm_draw(lead, code, "3" * 65)
    assert (await targets.confirm_draw(lead, code, "3051.22")).beacon == "3051.22"


async def test_verify_says_the_beacon_was_used_not_that_it_is_official(ctx: Ctx) -> None:
    _, lead, code = await _frozen(ctx)
    at_time(ctx, china_noon(dt.date(2026, 3, 4)))
    d = await targets.confirm_draw(lead, code, "417")
    report = await verify_draw(ctx, d.id)
    [beacon] = [c for c in report.checks if c.label.startswith("信标值")]
    assert (
        beacon.label == f"信标值（已用于计算；请对照{SOURCE}的官方公布核对）"
        and beacon.detail == "417"
    )


async def test_walkthrough_same_day_confirm_is_refused_in_chat(sessionmaker, clock) -> None:
    async with sessionmaker() as s, s.begin():
        w = await f.world(s, partners=1, inspectors=3, n_targets=30)
        code = (await f.ready_task(Ctx(session=s, clock=clock), w)).code
    d = make_dispatcher(sessionmaker, clock)
    frozen = bodies(await send(sessionmaker, d, text_event(w.lead.liaison.code, f"抽取 {code}")))
    assert "2026年3月3日福彩3D开奖号码" in frozen and "2026年3月3日 21:30 起" in frozen
    early = bodies(
        await send(sessionmaker, d, text_event(w.lead.liaison.code, f"确认抽取 {code} 123"))
    )
    assert "尚未公布" in early and "2026年3月3日 21:30 起才能确认抽取" in early
    async with sessionmaker() as s:
        assert await s.scalar(select(Draw.state).where(Draw.task_code == code)) == "frozen"
        assert await s.scalar(select(Case.id).limit(1)) is None


def _announcement(rows: list[OutboxMessage]) -> str:
    """The freeze announcement the departments' chats got."""
    return bodies([r for r in rows if r.destination.get("kind") == "department"])


async def test_no_refreeze_once_the_beacon_is_out_arch_s3(sessionmaker, clock) -> None:
    """docs/architecture.md §3 (freeze, then draw; no re-rolls): before the announced beacon is
    published a re-freeze is announced with what changed and voids the earlier freeze; after it,
    re-freezing the same pool and rule is refused and the lead is sent to 确认抽取. It used to be
    accepted as one more freeze with a new beacon, and 验证 of the voided draw said 尚未锁定."""
    async with sessionmaker() as s, s.begin():
        w = await f.world(s, partners=1, inspectors=3, n_targets=30)
        code = (await f.ready_task(Ctx(session=s, clock=clock), w)).code
    d = make_dispatcher(sessionmaker, clock)
    lead = w.lead.liaison.code
    await send(sessionmaker, d, text_event(lead, f"抽取 {code}"))
    rows = await send(sessionmaker, d, text_event(lead, f"抽取 {code} 2026年3月4日福彩3D开奖号码"))
    told = _announcement(rows)
    assert f"第 1 次冻结（{code}-T1）作废" in told
    assert "信标来源由“2026年3月3日福彩3D开奖号码”改为“2026年3月4日福彩3D开奖号码”" in told
    assert f"第 1 次冻结（{code}-T1）作废" in bodies(
        [r for r in rows if r.destination.get("kind") == "officer"]
    )
    same = bodies(
        await send(sessionmaker, d, text_event(lead, f"抽取 {code} 2026年3月4日福彩3D开奖号码"))
    )
    assert f"与第 2 次冻结（{code}-T2）相同" in same and "无需重新冻结" in same

    clock.set(china(dt.date(2026, 3, 4), 21, 31))
    again = bodies(
        await send(sessionmaker, d, text_event(lead, f"抽取 {code} 2026年3月5日福彩3D开奖号码"))
    )
    assert "信标（2026年3月4日福彩3D开奖号码）已于 2026年3月4日 21:30 公布" in again
    assert "不能重新冻结" in again and f"确认抽取 {code} 信标值" in again
    async with sessionmaker() as s:
        states = list(await s.scalars(select(Draw.state).order_by(Draw.id)))
    assert states == ["superseded", "frozen"]

    voided = bodies(await send(sessionmaker, d, text_event(lead, f"验证 {code}-T1")))
    assert f"验证 {code}-T1：已作废" in voided and f"由 {code}-T2 取代" in voided
    assert "尚未锁定" not in voided


async def test_a_changed_pool_may_be_refrozen_after_the_beacon_arch_s3(ctx: Ctx) -> None:
    """docs/architecture.md §3: a changed pool means a new, audited freeze, whose reason says
    what changed — also once the old beacon is out (a lock fails on a target since deleted)."""
    _, lead, code = await _frozen(ctx)
    at_time(ctx, china(dt.date(2026, 3, 3), 22, 0))
    await f.targets(ctx.session, 2)
    second = await targets.freeze_pool(lead, code, "2026年3月4日福彩3D开奖号码")
    assert second.freeze_no == 2
    assert "抽取范围由 30 户变为 32 户" in second.parameters["refreeze_reason"]


# ---------------------------------------------------------------- recusal


async def _matched(ctx: Ctx) -> tuple[f.World, Case, list[GroupMember]]:
    w, lead, code = await _frozen(ctx)
    at_time(ctx, china_noon(dt.date(2026, 3, 4)))
    await targets.confirm_draw(lead, code, "417")
    cases = await matching.match_inspectors(lead, code)
    await ctx.session.commit()
    members = list(
        await ctx.session.scalars(select(GroupMember).where(GroupMember.case_id == cases[0].id))
    )
    return w, cases[0], members


async def _sent_since(ctx: Ctx, after: int) -> list[OutboxMessage]:
    return list(
        await ctx.session.scalars(
            select(OutboxMessage).where(OutboxMessage.id > after).order_by(OutboxMessage.id)
        )
    )


async def test_recusal_reason_needs_substance(ctx: Ctx) -> None:
    w, case, members = await _matched(ctx)
    old = next(m for m in members if m.department_id == w.partners[0].dep.id)
    asker = as_actor(ctx, old.officer)
    with pytest.raises(ValidationFailed, match="回避理由至少需要 4 个字"):
        await replacements.request(asker, case.code, old.officer.code, "近亲", kind="recusal")
    with pytest.raises(ValidationFailed, match="标点、空格不计"):
        await replacements.request(asker, case.code, old.officer.code, "！！！！！", kind="recusal")


async def test_newcomer_gets_the_assignment_and_only_the_department_reads_the_reason(
    ctx: Ctx,
) -> None:
    w, case, members = await _matched(ctx)
    partner = w.partners[0]
    old = next(m for m in members if m.department_id == partner.dep.id)
    reason = "本人配偶在该企业任职"
    await replacements.request(
        as_actor(ctx, old.officer), case.code, old.officer.code, reason, kind="recusal"
    )
    last = await ctx.session.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id.desc()))
    await replacements.decide(as_actor(ctx, partner.leader), case.code, old.officer.code)
    new = await ctx.session.scalar(
        select(GroupMember).where(GroupMember.case_id == case.id, GroupMember.id > members[-1].id)
    )
    assert new is not None
    sent = await _sent_since(ctx, last or 0)
    to: dict[object, list[str]] = {}
    for m in sent:
        to.setdefault(
            m.destination.get("officer_id") or ("dept", m.destination.get("department_id")), []
        ).append(m.message["body"])

    [assignment] = to[new.officer_id]
    window = f"{f.WINDOW[0].year}年{f.WINDOW[0].month}月{f.WINDOW[0].day}日"
    for expected in (
        case.code,
        case.target.uscc,
        f"地址：{case.target.address}",
        window,
        "结果录入期限",
        w.lead.items[0].name,
        f"因{old.officer.name}回避接替加入检查组",
        f"(lianjian-page:documents/task:{case.code.rsplit('-', 1)[0]})",
    ):
        assert expected in assignment, expected

    [left] = to.pop(old.officer_id)  # their own reason, and the case is no longer theirs
    assert f"您已不在案件 {case.code}" in left and "批准回避" in left
    assert f"理由：{reason}" in left and "我的检查" in left
    group_side = [
        oid for oid in to if oid not in (new.officer_id, partner.liaison.id, partner.leader.id)
    ]
    assert group_side
    for oid in group_side:
        [body] = to[oid]
        assert f"{old.officer.name} 因回避退出检查组" in body and reason not in body
    for oid in (partner.liaison.id, partner.leader.id):
        [body] = to[oid]
        assert f"理由：{reason}" in body
    assert not any(
        reason in b
        for k, bs in to.items()
        if k not in (partner.liaison.id, partner.leader.id)
        for b in bs
    )
