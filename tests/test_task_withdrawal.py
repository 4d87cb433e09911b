"""A task created by mistake: the same task is not created twice unless the operator says so,
and one created by mistake is withdrawn (撤销) before its draw is frozen — invitations closed,
the invited departments told, 已撤销 on the public side (003 三(七)1: 抽查计划…向社会公示,
杜绝任性执法: what was announced is not silently removed), never drawn."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from core.changes import Ctx
from core.consultation import CLI_HOW
from core.consultation.withdrawal import withdraw_task
from core.draws import targets as target_draws
from core.errors import InvalidTransition, PermissionDenied, ValidationFailed
from core.models import AuditEvent, Invitation, JointTask, OutboxMessage
from core.public import public_index, public_task_state
from core.states import TaskState
from tests import factories as f
from tests.case_factories import at_time
from tests.dispatch_support import (
    LONG_REASON,
    bodies,
    consultation_scene,
    make_dispatcher,
    send,
    text_event,
    too_long,
)

MISTAKE = "任务文件重复执行，与前一任务重复"
README = Path(__file__).resolve().parent.parent / "README.md"
# how to withdraw, worded alike wherever it is told: the chat's and the CLI's forms, exactly
WHEN = (
    "撤销误建的任务：抽取范围冻结前可以撤销，已冻结的抽取超出一般事项抽查比例上限、无法确认的"
    "也可以撤销；须写明撤销理由，未答复的邀请随之关闭，受邀部门收到通知"
)


def how_to(code: str) -> str:
    return (
        f"聊天中发送“撤销 {code} 理由”，或在命令行运行“lianjian task withdraw {code} --reason 理由”"
    )


async def test_how_to_withdraw_is_worded_alike_in_chat_help_cli_help_and_readme(
    sessionmaker, clock, capsys
) -> None:
    """The chat's 帮助, the CLI's help and the README say when a task may be withdrawn in the
    same words, each showing the chat's command and the CLI's exactly."""
    async with sessionmaker() as s, s.begin():
        scene = await consultation_scene(s, clock, n_targets=0)
    d = make_dispatcher(sessionmaker, clock)
    helped = bodies(await send(sessionmaker, d, text_event(scene.w.lead.liaison.code, "帮助 撤销")))
    assert WHEN in helped and "撤销 编号 理由" in helped
    with pytest.raises(SystemExit):
        main(["task", "withdraw", "--help"])
    cli = "".join(capsys.readouterr().out.split())  # argparse wraps it to the terminal
    assert WHEN in cli and "".join(how_to("编号").split()) in cli and "--reason理由编号" in cli
    readme = README.read_text("utf-8")
    assert "| `撤销 编号 理由` |" in readme
    assert "| `lianjian task withdraw 编号 --reason 理由` |" in readme
    assert "lianjian task withdraw TASK" not in readme


async def test_the_same_task_again_is_refused_naming_it_unless_again(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=1)
    first = await f.draft_task(ctx, w)
    with pytest.raises(ValidationFailed) as refused:
        await f.draft_task(ctx, w)
    assert f"已有同一任务 {first.code}" in refused.value.message
    assert "--again" in refused.value.message and how_to(first.code) in refused.value.message
    assert await ctx.session.scalar(select(JointTask.id).where(JointTask.id != first.id)) is None
    # another title, another scope (the same check in another region), or the operator's
    # explicit word, makes a second task
    other = await f.draft_task(ctx, w, title="2026年药品经营者联合抽查")
    assert other.code != first.code
    region = await f.draft_task(ctx, w, scope={"regions": ["城关镇"]})
    assert region.code not in (first.code, other.code)
    again = await f.draft_task(ctx, w, again=True)
    assert again.code not in (first.code, other.code)


async def test_withdrawn_task_closes_invitations_tells_departments_and_shows_publicly(
    sessionmaker, clock
) -> None:
    """003 三(七)1: a consulted task was public; withdrawn it stays listed as 已撤销."""
    async with sessionmaker() as s, s.begin():
        scene = await consultation_scene(s, clock, n_targets=20)
    d = make_dispatcher(sessionmaker, clock)
    lead = scene.w.lead.liaison
    # a reason is required; a participant may not withdraw the lead's task
    asked = bodies(await send(sessionmaker, d, text_event(lead.code, f"撤销 {scene.task_code}")))
    assert "撤销任务须写明撤销理由，例如：撤销 " in asked
    other = scene.partner.liaison.code
    refused = bodies(
        await send(sessionmaker, d, text_event(other, f"撤销 {scene.task_code} 重复创建的任务"))
    )
    assert "只有管理员或牵头部门" in refused
    reason = "任务文件重复执行，与前一任务重复"
    rows = await send(sessionmaker, d, text_event(lead.code, f"撤销 {scene.task_code} {reason}"))
    assert f"已撤销联合抽查任务 {scene.task_code}" in bodies(rows)
    for p in scene.w.partners:
        to_group = [r for r in rows if r.destination.get("department_id") == p.dep.id]
        assert reason in bodies(to_group) and "已撤销" in bodies(to_group)
        to_liaison = [r for r in rows if r.destination.get("officer_id") == p.liaison.id]
        assert any(r.message.get("kind") == "card_update" for r in to_liaison)
    async with sessionmaker() as s:
        task = await s.scalar(select(JointTask).where(JointTask.code == scene.task_code))
        assert task is not None and task.state == TaskState.WITHDRAWN
        states = set(await s.scalars(select(Invitation.state)))
        assert states == {"withdrawn"}
        event = await s.scalar(select(AuditEvent).where(AuditEvent.action == "task.withdrawn"))
        assert event is not None and event.data["reason"] == reason
        ctx = Ctx(session=s, clock=clock)
        listed = (await public_index(ctx, task.year)).tasks
        assert [t.task.code for t in listed] == [scene.task_code]
        assert public_task_state(task, clock.today()) == "已撤销"
        # never drawn
        with pytest.raises(InvalidTransition, match="已撤销"):
            await target_draws.freeze_pool(f.as_actor(ctx, lead), scene.task_code, "")
    # an invited department's answer is refused, and the task is not withdrawn twice
    late = bodies(await send(sessionmaker, d, text_event(other, f"接受 {scene.task_code}")))
    assert "已撤销" in late
    again = bodies(
        await send(
            sessionmaker,
            d,
            text_event(lead.code, f"撤销 {scene.task_code} 再次撤销：重复创建的任务"),
        )
    )
    assert "已撤销" in again


async def test_a_withdrawal_reason_over_2000_characters_is_refused_in_chat(
    sessionmaker, clock
) -> None:
    """A written reason (000 §七) has at most 2,000 characters: 撤销 with a longer one is
    refused saying what to do; the task and its invitations stay, nobody is told."""
    async with sessionmaker() as s, s.begin():
        scene = await consultation_scene(s, clock, n_targets=0)
    d = make_dispatcher(sessionmaker, clock)
    lead = scene.w.lead.liaison
    rows = await send(
        sessionmaker, d, text_event(lead.code, f"撤销 {scene.task_code} {LONG_REASON}")
    )
    assert too_long("撤销理由") in bodies(rows)
    assert all(r.destination.get("officer_id") == lead.id for r in rows)  # only the reply
    async with sessionmaker() as s:
        task = await s.scalar(select(JointTask).where(JointTask.code == scene.task_code))
        assert task is not None and task.state == TaskState.CONSULTING
        assert set(await s.scalars(select(Invitation.state))) == {"pending"}
        assert (
            await s.scalar(select(AuditEvent).where(AuditEvent.action == "task.withdrawn")) is None
        )


async def test_a_draft_withdrawn_is_not_public_and_a_new_task_may_take_its_place(
    ctx: Ctx,
) -> None:
    w = await f.world(ctx.session, partners=1)
    task = await f.draft_task(ctx, w)
    with pytest.raises(PermissionDenied):
        await withdraw_task(f.as_actor(ctx, w.partners[0].liaison), task.code, MISTAKE)
    await withdraw_task(f.as_actor(ctx, w.lead.liaison), task.code, MISTAKE)
    assert task.state == TaskState.WITHDRAWN
    assert (await public_index(ctx, task.year)).tasks == []
    # the withdrawn one no longer blocks the same task
    assert (await f.draft_task(ctx, w)).code != task.code


async def test_a_draft_withdrawn_mentions_no_invitations(ctx: Ctx) -> None:
    """A draft never invited anyone: the lead's chat is told of the withdrawal without
    "邀请无需答复" (there was no invitation to answer)."""
    w = await f.world(ctx.session, partners=1)
    task = await f.draft_task(ctx, w)
    await withdraw_task(f.as_actor(ctx, w.lead.liaison), task.code, MISTAKE)
    told = [m["body"] for m in await ctx.session.scalars(select(OutboxMessage.message))]
    assert told and all("已撤销" in body and "邀请" not in body for body in told), told


async def test_a_task_whose_draw_is_frozen_cannot_be_withdrawn(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=1, n_targets=20)
    task = await f.ready_task(ctx, w)
    lead = f.as_actor(ctx, w.lead.liaison)
    frozen = await target_draws.freeze_pool(lead, task.code, "2026年12月2日福彩3D开奖号码")
    with pytest.raises(InvalidTransition) as refused:
        await withdraw_task(lead, task.code, MISTAKE)
    assert f"已冻结抽取范围（{frozen.code}" in refused.value.message
    assert task.state == TaskState.READY


async def test_002_2_2_a_frozen_draw_above_a_cap_may_be_withdrawn_and_recreated(ctx: Ctx) -> None:
    """002 二(二): a draw frozen before the caps were checked, drawing above a general item's
    cap, is refused at 确认抽取 and cannot be frozen again: withdrawing is the way out (audited
    as such), and the refusal says so. A frozen draw that can be confirmed still may not be
    withdrawn (above): withdrawing is no re-roll after the beacon."""
    w = await f.world(ctx.session, partners=1, n_targets=20)
    w.lead.items = [await f.item(ctx.session, w.lead.dep, key=True)]
    task = await f.ready_task(
        ctx, w, rule={"strata": [{"name": "全部", "risk_levels": [], "flags": [], "ratio": "0.10"}]}
    )
    lead = f.as_actor(ctx, w.lead.liaison)
    frozen = await target_draws.freeze_pool(lead, task.code, "2026年3月3日福彩3D开奖号码")
    w.partners[0].items[0].ratio_cap = "0.05"  # as it stood before the freeze checked caps
    at_time(ctx, dt.datetime(2026, 3, 4, 12, tzinfo=dt.UTC))
    with pytest.raises(ValidationFailed) as refused:
        await target_draws.confirm_draw(lead, task.code, "417")
    assert "可以撤销该任务后按上限重新创建" in refused.value.message
    assert how_to(task.code) in refused.value.message
    with pytest.raises(ValidationFailed, match="理由至少需要"):
        await withdraw_task(lead, task.code, "超上限")
    done = await withdraw_task(lead, task.code, "冻结的抽取超过一般检查事项的比例上限")
    assert done.task is task and task.state == TaskState.WITHDRAWN
    event = await ctx.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "task.withdrawn")
    )
    assert event is not None
    assert event.data["cap_exceeded"] is True and event.data["draw"] == frozen.code


async def test_002_2_2_a_refreeze_over_a_cap_says_the_earlier_freeze_stands(ctx: Ctx) -> None:
    """002 二(二): a second 抽取 refused because the changed pool makes a count exceed a
    general item's cap advised 撤销, which withdraw_task then refused as T1 can still be
    confirmed. While T1 stands, the refusal says so and how to confirm it; 撤销 is advised
    only when withdrawal is allowed (T1 itself over the cap)."""
    w = await f.world(ctx.session, partners=1, n_targets=20)
    rule = {"strata": [{"name": "全部", "risk_levels": [], "flags": [], "count": 2}]}
    task = await f.ready_task(ctx, w, rule=rule)
    lead = f.as_actor(ctx, w.lead.liaison)
    first = await target_draws.freeze_pool(lead, task.code, "2026年12月2日福彩3D开奖号码")
    for target in w.targets[:10]:  # 2 of 10 households: above the 10% cap
        target.status = "注销"
    await ctx.session.flush()
    with pytest.raises(ValidationFailed) as refused:
        await target_draws.freeze_pool(lead, task.code, "2026年12月3日福彩3D开奖号码")
    said = refused.value.message
    assert "超过一般检查事项" in said
    assert f"已冻结的抽取范围 {first.code} 仍然有效" in said
    assert f"确认抽取 {task.code}" in said and f"撤销 {task.code}" not in said
    with pytest.raises(InvalidTransition):  # what the refusal no longer advises
        await withdraw_task(lead, task.code, "冻结的抽取超过一般检查事项的比例上限")
    # T1 itself over the cap (frozen before caps were checked): withdrawing is the way out
    w.partners[0].items[0].ratio_cap = "0.05"
    with pytest.raises(ValidationFailed) as over:
        await target_draws.freeze_pool(lead, task.code, "2026年12月3日福彩3D开奖号码")
    assert f"撤销 {task.code} 理由" in over.value.message
    assert "仍然有效" not in over.value.message


async def test_a_withdrawal_reason_is_a_written_reason_and_the_hint_fits_the_path(
    ctx: Ctx,
) -> None:
    """000 §七's written reason (书面理由), as for declining an invitation: at least
    decline_reason_min_chars letters, at most 2,000 characters; the example is the caller's."""
    w = await f.world(ctx.session, partners=1)
    task = await f.draft_task(ctx, w)
    lead = f.as_actor(ctx, w.lead.liaison)
    with pytest.raises(ValidationFailed) as short:
        await withdraw_task(lead, task.code, "误建。。。")
    assert "至少需要 10 个字" in short.value.message and f"撤销 {task.code} " in short.value.message
    with pytest.raises(ValidationFailed) as cli:
        await withdraw_task(lead, task.code, "", how=CLI_HOW)
    assert f"lianjian task withdraw {task.code} --reason " in cli.value.message
    assert f"撤销 {task.code}" not in cli.value.message
    with pytest.raises(ValidationFailed, match="不能超过 2000 个字"):
        await withdraw_task(lead, task.code, "误" * 2001)
    assert task.state == TaskState.DRAFT
    assert (await withdraw_task(lead, task.code, "误建" * 1000)).task.state == TaskState.WITHDRAWN
