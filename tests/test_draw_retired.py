"""Targets that leave the library (deregistered, revoked, moved out, or deleted) between the
freeze and the confirmation. The frozen pool is the commitment (004 第十一条: 一经锁定不得更改;
docs/architecture.md §3: no re-rolls): a re-freeze draws from the new pool only, and without one
the confirmation draws from the frozen pool as committed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update

from core.changes import Ctx
from core.clock import china_noon
from core.draws import algorithm, targets
from core.draws.pool import decode_pool
from core.draws.verify import verify_draw
from core.errors import InvalidTransition
from core.models import AuditEvent, Case, Draw, JointTask, Target
from tests import factories as f
from tests.case_factories import at_time
from tests.dispatch_support import bodies, make_dispatcher, send, text_event
from tests.factories import as_actor

SOURCE = "2026年3月3日福彩3D开奖号码"  # the clock starts at noon on 2 March
RULE = {"strata": [{"name": "全部", "ratio": "0.10"}]}


async def _frozen(ctx: Ctx) -> tuple[f.World, Ctx, str]:
    w = await f.world(ctx.session, partners=1, inspectors=3, n_targets=30)
    task = await f.ready_task(ctx, w, rule=RULE)
    lead = as_actor(ctx, w.lead.liaison)
    await targets.freeze_pool(lead, task.code, SOURCE)
    return w, lead, task.code


async def _retire(ctx: Ctx, usccs: list[str], status: str = "注销") -> None:
    await ctx.session.execute(update(Target).where(Target.uscc.in_(usccs)).values(status=status))


async def test_004_11_refrozen_after_retirements_draws_from_the_new_pool_only(ctx: Ctx) -> None:
    """004 第十一条: freeze → 20 of 30 targets deregistered → re-freeze (T2) → confirm. The lock
    takes T2, its selection lies in T2's pool (no retired target), the receipt's pool hash is
    T2's stored file's, and 验证 recomputes it."""
    w, lead, code = await _frozen(ctx)
    retired = [t.uscc for t in w.targets[:20]]
    await _retire(ctx, retired)
    second = await targets.freeze_pool(lead, code, "2026年3月4日福彩3D开奖号码")
    assert (second.code, second.pool_size) == (f"{code}-T2", 10)
    assert "抽取范围由 30 户变为 10 户" in second.parameters["refreeze_reason"]
    at_time(ctx, china_noon(dt.date(2026, 3, 5)))
    locked = await targets.confirm_draw(lead, code, "417")
    assert locked.id == second.id and len(locked.selection) == 1
    pool = decode_pool(await targets.pool_data(ctx, locked))
    assert set(locked.selection) <= {u for u, _ in pool}
    assert not set(locked.selection) & set(retired)
    event = await ctx.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "draw.locked").order_by(AuditEvent.id.desc())
    )
    assert event is not None and event.subject == f"draw:{code}-T2"
    assert event.data["pool_hash"] == locked.pool_hash and event.data["freeze_no"] == 2
    report = await verify_draw(ctx, locked.id)
    assert all(c.ok for c in report.checks), report.checks
    first = await ctx.session.scalar(select(Draw).where(Draw.code == f"{code}-T1"))
    assert first is not None and first.state == "superseded" and first.selection in (None, [])


async def test_004_18_confirmed_without_refreeze_draws_the_frozen_pool_and_names_the_retired(
    sessionmaker, clock
) -> None:
    """004 第十一条 / 第十八条: without a re-freeze the frozen pool stands (the commitment); the
    lock is not refused, as that would hang a re-roll on the selection. Drawn targets deregistered
    since the freeze become cases whose result may be formed directly (已注销, 004 第十八条), and
    the confirmation names them and says so; 验证 still passes."""
    async with sessionmaker() as s, s.begin():
        w = await f.world(s, partners=1, inspectors=3, n_targets=30)
        code = (await f.ready_task(Ctx(session=s, clock=clock), w, rule=RULE)).code
    d = make_dispatcher(sessionmaker, clock)
    lead = w.lead.liaison.code
    await send(sessionmaker, d, text_event(lead, f"抽取 {code} {SOURCE}"))
    async with sessionmaker() as s, s.begin():
        await _retire(Ctx(session=s, clock=clock), [t.uscc for t in w.targets])
    clock.set(china_noon(dt.date(2026, 3, 4)))
    told = bodies(await send(sessionmaker, d, text_event(lead, f"确认抽取 {code} 417")))
    assert "抽中检查对象 3 户" in told
    assert "以下 3 户在冻结后已注销、被吊销、被撤销或迁出" in told and "004 第十八条" in told
    async with sessionmaker() as s:
        locked = await s.scalar(select(Draw).where(Draw.code == f"{code}-T1"))
        assert locked is not None and locked.state == "locked"
        names = list(await s.scalars(select(Case.code).where(Case.task_id == locked.task_id)))
        assert len(names) == 3
        report = await verify_draw(Ctx(session=s, clock=clock), locked.id)
        assert all(c.ok for c in report.checks), report.checks


async def _would_draw(ctx: Ctx, code: str, beacon: str) -> list[str]:
    """What confirming the frozen draw with `beacon` selects (the test reads the secret seed)."""
    frozen = await ctx.session.scalar(
        select(Draw).where(Draw.task_code == code, Draw.state == "frozen")
    )
    task = await ctx.session.scalar(select(JointTask).where(JointTask.code == code))
    assert frozen is not None and task is not None
    pool = decode_pool(await targets.pool_data(ctx, frozen))
    seed = algorithm.final_seed(bytes.fromhex(task.seed_hex), beacon)
    return algorithm.select(pool, algorithm.parse_rule(task.rule), seed, code)


async def _delete(ctx: Ctx, usccs: list[str]) -> None:
    """Deleted from the library outside the bot (it never deletes a target)."""
    await ctx.session.execute(delete(Target).where(Target.uscc.in_(usccs)))
    await ctx.session.flush()


async def test_004_11_a_target_deleted_after_the_freeze_but_not_drawn_leaves_the_lock(
    ctx: Ctx,
) -> None:
    """004 第十一条: the frozen pool is the commitment; a pool target deleted from the library
    and not drawn changes nothing — the lock is the committed pool's, and 验证 recomputes it
    from the pool file, which still lists the deleted target."""
    w, lead, code = await _frozen(ctx)
    at_time(ctx, china_noon(dt.date(2026, 3, 4)))
    drawn = await _would_draw(ctx, code, "417")
    await _delete(ctx, [next(t.uscc for t in w.targets if t.uscc not in drawn)])
    locked = await targets.confirm_draw(lead, code, "417")
    assert locked.selection == drawn and locked.pool_size == 30
    report = await verify_draw(ctx, locked.id)
    assert all(c.ok for c in report.checks), report.checks


async def test_004_11_a_drawn_target_deleted_after_the_freeze_refuses_the_lock_unnamed(
    ctx: Ctx,
) -> None:
    """004 第十一条 / docs/architecture.md §3: a drawn target deleted from the library cannot be
    a case: the lock is refused, in Chinese, with the re-freeze to do and without naming the
    target (the seed stays secret), and nothing is locked — the draw used to be marked locked
    with its selection before the refusal, undone only by the rollback. The re-freeze (T2)
    leaves the deleted target out and is confirmed with its own beacon; 验证 passes."""
    _, lead, code = await _frozen(ctx)
    at_time(ctx, china_noon(dt.date(2026, 3, 4)))
    drawn = await _would_draw(ctx, code, "417")
    await _delete(ctx, drawn[:1])
    try:
        await targets.confirm_draw(lead, code, "417")
        raise AssertionError("a draw with a deleted target was locked")
    except InvalidTransition as err:
        assert "冻结后有 1 户抽中的检查对象已从名录库删除，无法锁定" in err.message
        assert f"抽取 {code} 信标来源" in err.message and drawn[0] not in err.message
    frozen = await ctx.session.scalar(select(Draw).where(Draw.code == f"{code}-T1"))
    assert frozen is not None and frozen.state == "frozen" and not frozen.selection
    second = await targets.freeze_pool(lead, code, "2026年3月5日福彩3D开奖号码")
    assert second.pool_size == 29 and "抽取范围由 30 户变为 29 户" in str(second.parameters)
    at_time(ctx, china_noon(dt.date(2026, 3, 6)))
    locked = await targets.confirm_draw(lead, code, "538")
    assert locked.id == second.id and drawn[0] not in locked.selection
    report = await verify_draw(ctx, locked.id)
    assert all(c.ok for c in report.checks), report.checks
