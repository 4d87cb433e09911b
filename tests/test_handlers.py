"""Commands and card clicks end to end through Dispatcher.handle on a real DB: invitations
(command, card, decline-reason conversation), draws with pushed assignments, cases, summary."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.platforms.dingtalk import DingTalkExtras
from bot.platforms.wecom import WeComExtras
from core.cards import InvitationAction
from core.clock import FixedClock, china_noon
from core.messages import Event, OutMessage
from core.models import (
    AuditEvent,
    Case,
    CaseResult,
    ChatPlatform,
    Conversation,
    Department,
    GroupMember,
    Invitation,
    JointTask,
    Officer,
    OutboxMessage,
    TaskItem,
)
from core.officers import set_account
from core.render import md_text
from core.workdays import Deadline
from handlers.base import SENT_PRIVATELY
from tests import factories as f
from tests.case_factories import enter_other_parts
from tests.dispatch_support import (
    Scene,
    bodies,
    consultation_scene,
    make_dispatcher,
    ready_world,
    send,
    text_event,
)


@pytest.fixture
async def scene(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> Scene:
    """A task out for consultation with two partner departments, their liaisons on WeCom."""
    async with sessionmaker() as s, s.begin():
        scene = await consultation_scene(s, clock, n_targets=40)
        for p in scene.w.partners:
            set_account(p.liaison, ChatPlatform.WECOM, f"wx-{p.liaison.code}")
        return scene


def card_event(officer: Officer, key: str, response_code: str = "RC-1") -> Event:
    return Event(
        platform="wecom",
        event_id=f"card:{officer.code}:{key}:{response_code}",
        kind="card_action",
        user_id=officer.account(ChatPlatform.WECOM) or "",
        action_key=key,
        extras=WeComExtras(task_id="inv-x", response_code=response_code).dump(),
    )


async def invitation(sm: async_sessionmaker[AsyncSession], inv_id: int) -> Invitation:
    async with sm() as s:
        inv = await s.get(Invitation, inv_id)
        assert inv is not None
        return inv


async def actions(sm: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    async with sm() as s:
        return [
            (a, actor)
            for a, actor in await s.execute(
                select(AuditEvent.action, AuditEvent.actor).order_by(AuditEvent.id)
            )
        ]


def kind(row: OutboxMessage) -> str:
    return OutMessage.model_validate(row.message).kind


def to(rows: list[OutboxMessage], **dest: object) -> list[OutboxMessage]:
    return [r for r in rows if all(r.destination.get(k) == v for k, v in dest.items())]


# ---------------------------------------------------------------- invitations by command


async def test_accept_by_command_with_item_codes(sessionmaker, clock, scene) -> None:
    d = make_dispatcher(sessionmaker, clock)
    p = scene.partner
    item = p.items[0]
    rows = await send(
        sessionmaker,
        d,
        text_event(p.liaison.code, f"接受 {scene.task_code.lower()} {item.code.lower()}"),
    )
    mine = to(rows, kind="officer", officer_id=p.liaison.id)
    assert "已接受联合抽查邀请" in bodies(mine) and item.name in bodies(mine)
    lead = to(rows, kind="department", department_id=scene.w.lead.dep.id)
    assert len(lead) == 1 and "已接受" in lead[0].message["title"]
    assert (await invitation(sessionmaker, scene.invitation_id)).state == "accepted"
    async with sessionmaker() as s:
        assert list(
            await s.scalars(select(TaskItem.item_id).where(TaskItem.department_id == p.dep.id))
        ) == [item.id]
    assert ("invitation.accepted", p.liaison.code) in await actions(sessionmaker)


async def test_accept_with_an_unknown_item_code_changes_nothing(sessionmaker, clock, scene) -> None:
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(
        sessionmaker, d, text_event(scene.partner.liaison.code, f"接受 {scene.task_code} NOPE")
    )
    assert "没有事项代码：NOPE" in bodies(rows)
    assert f"可选的事项代码：{scene.partner.items[0].code}" in bodies(rows)  # what to type instead
    assert (await invitation(sessionmaker, scene.invitation_id)).state == "pending"


async def test_decline_by_command_with_reason_tells_the_lead(sessionmaker, clock, scene) -> None:
    d = make_dispatcher(sessionmaker, clock)
    reason = "本季度执法力量已全部投入食品安全专项整治，无法参加。"
    rows = await send(
        sessionmaker, d, text_event(scene.partner.liaison.code, f"拒绝 {scene.task_code} {reason}")
    )
    assert f"拒绝理由：{reason}" in bodies(to(rows, kind="officer"))
    [lead] = to(rows, kind="department", department_id=scene.w.lead.dep.id)
    assert reason in lead.message["body"]
    inv = await invitation(sessionmaker, scene.invitation_id)
    assert (inv.state, inv.reason, inv.responded_by_id) == (
        "declined",
        reason,
        scene.partner.liaison.id,
    )


async def test_a_separator_typed_before_the_reason_is_not_kept_000_s7(
    sessionmaker, clock, scene
) -> None:
    """000 §七 (the written reason for not joining): `jj lj-2026-001 ：本月…` stored the reason
    as "：本月…" and the lead read "拒绝理由：：本月…"."""
    d = make_dispatcher(sessionmaker, clock)
    reason = "本月执法力量已全部投入食品安全专项整治，无法参加。"
    typed = f"jj {scene.task_code.lower()} ：{reason}"
    rows = await send(sessionmaker, d, text_event(scene.partner.liaison.code, typed))
    assert f"拒绝理由：{reason}" in bodies(rows) and "：：" not in bodies(rows)
    assert (await invitation(sessionmaker, scene.invitation_id)).reason == reason


async def test_markup_in_a_decline_reason_reaches_no_one_as_a_link_or_mention(
    sessionmaker, clock, scene
) -> None:
    d = make_dispatcher(sessionmaker, clock)
    reason = "人员不足无法参加 [重新答复](https://evil) <@u> **急** # 标题"
    rows = await send(
        sessionmaker, d, text_event(scene.partner.liaison.code, f"拒绝 {scene.task_code} {reason}")
    )
    mine = bodies(to(rows, kind="officer"))
    [lead] = to(rows, kind="department", department_id=scene.w.lead.dep.id)
    progress = bodies(
        await send(
            sessionmaker, d, text_event(scene.w.lead.liaison.code, f"进度 {scene.task_code}")
        )
    )
    for text in (mine, lead.message["body"], progress):
        assert "［重新答复］（https://evil） ＜@u＞ ＊＊急＊＊ ＃ 标题" in text
        assert not any(mark in text for mark in ("](", "[重新", "<@", "**急", "# 标题"))
    # the stored reason is the officer's own text; only what is rendered is made inert
    assert (await invitation(sessionmaker, scene.invitation_id)).reason == reason


def test_md_text_neutralises_markup_and_keeps_plain_text() -> None:
    assert (
        md_text("> 引用 `代码` _斜_ 正常文字，1.5 天") == "＞ 引用 ｀代码｀ ＿斜＿ 正常文字，1.5 天"
    )
    assert md_text(None) == ""


async def test_decline_without_reason_asks_and_takes_the_next_message(
    sessionmaker, clock, scene
) -> None:
    d = make_dispatcher(sessionmaker, clock)
    who = scene.partner.liaison.code
    asked = await send(sessionmaker, d, text_event(who, f"拒绝 {scene.task_code}"))
    assert "请回复拒绝理由（至少 10 个字，标点、空格不计）" in bodies(asked)
    async with sessionmaker() as s:
        step = await s.scalar(select(Conversation))
        assert step.step == "decline_reason" and step.data["task_code"] == scene.task_code
        assert step.expires_at == clock.now() + dt.timedelta(hours=72)

    short = await send(sessionmaker, d, text_event(who, "没空"))
    assert "至少需要 10 个字" in bodies(short) and "发送“取消”放弃" in bodies(short)
    assert (await invitation(sessionmaker, scene.invitation_id)).state == "pending"

    reason = "本部门同期承担省级专项检查任务，人员无法抽调。"
    done = await send(sessionmaker, d, text_event(who, reason))
    assert "已拒绝联合抽查邀请" in bodies(to(done, kind="officer"))
    assert reason in bodies(to(done, kind="department", department_id=scene.w.lead.dep.id))
    inv = await invitation(sessionmaker, scene.invitation_id)
    assert (inv.state, inv.reason) == ("declined", reason)
    async with sessionmaker() as s:
        assert await s.scalar(select(Conversation.id)) is None
    # the next message is a command again
    assert "可用指令" in bodies(await send(sessionmaker, d, text_event(who, "帮助")))


async def test_decline_with_too_short_a_reason_asks_and_takes_the_next_message(
    sessionmaker, clock, scene
) -> None:
    """000 §七 (written reason): `拒绝 编号 忙` starts the same step as a bare `拒绝 编号`,
    so the officer's next message (the full reason) declines instead of being unrecognised."""
    d = make_dispatcher(sessionmaker, clock)
    who = scene.partner.liaison.code
    asked = bodies(await send(sessionmaker, d, text_event(who, f"拒绝 {scene.task_code} 忙")))
    assert "拒绝理由至少需要 10 个字" in asked and "请回复拒绝理由" in asked
    assert (await invitation(sessionmaker, scene.invitation_id)).state == "pending"
    async with sessionmaker() as s:
        step = await s.scalar(select(Conversation))
        assert step is not None and step.step == "decline_reason"

    reason = "本部门同期承担省级专项检查任务，人员无法抽调。"
    done = await send(sessionmaker, d, text_event(who, reason))
    assert "已拒绝联合抽查邀请" in bodies(to(done, kind="officer"))
    inv = await invitation(sessionmaker, scene.invitation_id)
    assert (inv.state, inv.reason) == ("declined", reason)


async def test_cancel_ends_the_step_without_declining(sessionmaker, clock, scene) -> None:
    d = make_dispatcher(sessionmaker, clock)
    who = scene.partner.liaison.code
    await send(sessionmaker, d, text_event(who, f"拒绝 {scene.task_code}"))
    assert "已取消" in bodies(await send(sessionmaker, d, text_event(who, "取消")))
    assert (await invitation(sessionmaker, scene.invitation_id)).state == "pending"
    assert "当前没有等待中的操作" in bodies(await send(sessionmaker, d, text_event(who, "取消")))


async def no_step_waits(sessionmaker, d, who: str, scene) -> None:
    """The decline step is over: no conversation waits, and free text afterwards answers
    nothing (the invitation stays pending)."""
    async with sessionmaker() as s:
        assert await s.scalar(select(Conversation.id)) is None
    later = bodies(
        await send(sessionmaker, d, text_event(who, "本部门同期承担省级专项检查任务，无法参加"))
    )
    assert "已拒绝" not in later
    assert (await invitation(sessionmaker, scene.invitation_id)).state == "pending"


async def test_command_sent_while_a_decline_reason_is_asked_is_run_not_taken_as_the_reason(
    sessionmaker, clock, scene
) -> None:
    """000 §七: a decline needs a written reason — the next command is not one."""
    d = make_dispatcher(sessionmaker, clock)
    who = scene.partner.liaison.code
    await send(sessionmaker, d, text_event(who, f"拒绝 {scene.task_code}"))
    rows = bodies(await send(sessionmaker, d, text_event(who, f"任务 {scene.task_code}")))
    assert f"已放弃填写拒绝理由，{scene.task_code} 的邀请仍待答复" in rows
    assert "已拒绝" not in rows and scene.task_code in rows.split("\n", 1)[1]  # the task is shown
    inv = await invitation(sessionmaker, scene.invitation_id)
    assert inv.state == "pending" and not inv.reason
    await no_step_waits(sessionmaker, d, who, scene)


async def test_refused_command_sent_while_a_decline_reason_is_asked_still_ends_the_step(
    sessionmaker, clock, scene
) -> None:
    d = make_dispatcher(sessionmaker, clock)
    who = scene.partner.liaison.code
    await send(sessionmaker, d, text_event(who, f"拒绝 {scene.task_code}"))
    rows = bodies(await send(sessionmaker, d, text_event(who, "任务 LJ-2099-999")))
    assert "已放弃填写拒绝理由" in rows and "未找到任务 LJ-2099-999" in rows
    await no_step_waits(sessionmaker, d, who, scene)


async def test_cancel_with_a_mention_ends_the_decline_step(sessionmaker, clock, scene) -> None:
    d = make_dispatcher(sessionmaker, clock)
    who = scene.partner.liaison.code
    await send(sessionmaker, d, text_event(who, f"拒绝 {scene.task_code}"))
    assert "已取消，本次操作未生效" in bodies(
        await send(sessionmaker, d, text_event(who, "@联检助手 取消"))
    )
    async with sessionmaker() as s:
        assert await s.scalar(select(Conversation.id)) is None


async def test_step_answered_elsewhere_meanwhile_ends_with_the_reason(
    sessionmaker, clock, scene
) -> None:
    """Asked for a reason, the leader accepts by card meanwhile: the reason finds it answered."""
    d = make_dispatcher(sessionmaker, clock)
    p = scene.partner
    await send(sessionmaker, d, text_event(p.liaison.code, f"拒绝 {scene.task_code}"))
    await send(sessionmaker, d, text_event(p.leader.code, f"接受 {scene.task_code}"))
    rows = await send(
        sessionmaker, d, text_event(p.liaison.code, "本部门同期承担省级专项检查任务，无法参加")
    )
    assert "该邀请已答复（已接受）" in bodies(rows)
    async with sessionmaker() as s:
        assert await s.scalar(select(Conversation.id)) is None


async def test_denied_answer_is_audited_and_changes_nothing(sessionmaker, clock, scene) -> None:
    d = make_dispatcher(sessionmaker, clock)
    inspector = scene.partner.inspectors[0]
    rows = await send(sessionmaker, d, text_event(inspector.code, f"接受 {scene.task_code}"))
    assert "只有" in bodies(rows) and "联络员或分管领导" in bodies(rows)
    assert (await invitation(sessionmaker, scene.invitation_id)).state == "pending"
    async with sessionmaker() as s:
        denied = await s.scalar(select(AuditEvent).where(AuditEvent.action == "denied"))
        assert denied.actor == inspector.code and denied.data["action"] == "invitation.accept"
        assert (
            await s.scalar(
                select(func.count())
                .select_from(TaskItem)
                .where(TaskItem.department_id == scene.partner.dep.id)
            )
            == 0
        )


# ---------------------------------------------------------------- invitations by card


async def test_card_accept_updates_the_card_and_a_second_click_has_no_effect(
    sessionmaker, clock, scene
) -> None:
    d = make_dispatcher(sessionmaker, clock)
    p = scene.partner
    key = InvitationAction(action="accept", invitation_id=scene.invitation_id).pack()
    rows = await send(sessionmaker, d, card_event(p.liaison, key))
    [update] = [r for r in rows if kind(r) == "card_update" and r.message.get("card_ref")]
    assert update.destination["officer_id"] == p.liaison.id
    assert update.message["card_ref"] == "RC-1"
    assert update.message["card"]["answered"] == f"已由 {p.liaison.name} 接受"
    assert len(to(rows, kind="department", department_id=scene.w.lead.dep.id)) == 1
    async with sessionmaker() as s:
        items = await s.scalar(
            select(func.count()).select_from(TaskItem).where(TaskItem.department_id == p.dep.id)
        )
    audit_before = await actions(sessionmaker)

    again = await send(sessionmaker, d, card_event(p.liaison, key, response_code="RC-2"))
    assert "该邀请已答复" in bodies(again)
    assert [kind(r) for r in again] == ["text", "card_update"]  # the clicked card shows it
    assert again[1].message["card"]["answered"] == f"已由 {p.liaison.name} 接受"
    async with sessionmaker() as s:
        assert (
            await s.scalar(
                select(func.count()).select_from(TaskItem).where(TaskItem.department_id == p.dep.id)
            )
            == items
        )
    assert await actions(sessionmaker) == audit_before


async def test_card_decline_asks_for_the_reason_then_updates_the_card(
    sessionmaker, clock, scene
) -> None:
    d = make_dispatcher(sessionmaker, clock)
    p = scene.partner
    key = InvitationAction(action="decline", invitation_id=scene.invitation_id).pack()
    asked = await send(sessionmaker, d, card_event(p.liaison, key, response_code="RC-9"))
    assert "请回复拒绝理由" in bodies(asked)
    reason = "本部门同期承担省级专项检查任务，人员无法抽调。"
    reply = Event(
        platform="wecom",
        event_id="m-1",
        kind="text",
        user_id=p.liaison.account(ChatPlatform.WECOM),
        text=reason,
    )
    rows = await send(sessionmaker, d, reply)
    [update] = [r for r in rows if kind(r) == "card_update" and r.message.get("card_ref")]
    assert update.message["card_ref"] == "RC-9"
    assert update.message["card"]["answered"] == f"已由 {p.liaison.name} 拒绝"
    assert reason in bodies(to(rows, kind="department", department_id=scene.w.lead.dep.id))
    assert (await invitation(sessionmaker, scene.invitation_id)).state == "declined"


async def test_card_decline_by_someone_who_may_not_answer_is_denied_at_once(
    sessionmaker, clock, scene
) -> None:
    d = make_dispatcher(sessionmaker, clock)
    other = scene.w.partners[1].liaison  # another department's liaison
    key = InvitationAction(action="decline", invitation_id=scene.invitation_id).pack()
    rows = await send(sessionmaker, d, card_event(other, key))
    assert "联络员或分管领导" in bodies(rows)
    async with sessionmaker() as s:
        assert await s.scalar(select(Conversation.id)) is None
        assert (
            await s.scalar(select(AuditEvent.actor).where(AuditEvent.action == "denied"))
            == other.code
        )


async def test_stale_card_button_is_answered_not_crashed(sessionmaker, clock, scene) -> None:
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, card_event(scene.partner.liaison, "inv:accept:99999"))
    assert "不存在" in bodies(rows)
    rows = await send(sessionmaker, d, card_event(scene.partner.liaison, "garbage"))
    assert "按钮已失效" in bodies(rows)
    # issue 11 defect 5: an id past the database's integer overflowed the query, every attempt
    rows = await send(
        sessionmaker, d, card_event(scene.partner.liaison, "inv:accept:999999999999999999999")
    )
    assert "按钮已失效" in bodies(rows)


async def test_a_lone_surrogate_in_a_message_still_gets_a_reply(sessionmaker, clock, scene) -> None:
    """Issue 11 defect 5: "\ud800" in DingTalk text made every reply attempt fail to encode."""
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event(scene.partner.liaison.code, "\ud800帮"))
    assert bodies(rows)
    assert all(body.encode() for body in [bodies(rows)])


async def test_task_list_shows_pending_invitation_with_buttons_and_signed_link(
    sessionmaker, clock, scene
) -> None:
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event(scene.partner.liaison.code, "任务"))
    assert scene.task_code in bodies(rows) and "待答复" in bodies(rows)
    [card] = [r.message["card"] for r in rows if kind(r) == "card"]
    keys = [b["action_key"] for b in card["buttons"]]
    assert keys == [f"inv:accept:{scene.invitation_id}", f"inv:decline:{scene.invitation_id}"]
    assert all(b["url"].startswith("http://127.0.0.1:8080/") for b in card["buttons"])
    # an inspector sees the list but gets no buttons
    rows = await send(sessionmaker, d, text_event(scene.partner.inspectors[0].code, "任务"))
    assert [kind(r) for r in rows] == ["markdown"]
    detail = bodies(
        await send(
            sessionmaker, d, text_event(scene.partner.inspectors[0].code, f"任务 {scene.task_code}")
        )
    )
    assert "本部门邀请：待答复" in detail


async def test_task_list_in_a_dingtalk_group_sends_the_signed_card_privately(
    sessionmaker, clock, scene
) -> None:
    liaison = scene.partner.liaison
    async with sessionmaker() as s, s.begin():
        set_account(await s.get(Officer, liaison.id), ChatPlatform.DINGTALK, "ding-liaison")
    group = "https://oapi.dingtalk.com/robot/sendBySession?session=group-1"
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(
        sessionmaker,
        d,
        text_event(
            "ding-liaison",
            "任务",
            platform="dingtalk",
            is_group=True,
            chat_id="cid-group",
            extras=DingTalkExtras(session_webhook=group).dump(),
        ),
    )
    in_group = to(rows, kind="chat")
    assert [r.message.get("body") for r in in_group] == [SENT_PRIVATELY]
    assert all("/h5/" not in json.dumps(r.message) for r in in_group)
    [card] = [r for r in to(rows, kind="officer", officer_id=liaison.id) if kind(r) == "card"]
    assert all("/h5/" in b["url"] for b in card.message["card"]["buttons"])
    assert scene.task_code in bodies(to(rows, kind="officer", officer_id=liaison.id))


async def test_single_dingtalk_chat_is_answered_in_place(sessionmaker, clock, scene) -> None:
    async with sessionmaker() as s, s.begin():
        set_account(
            await s.get(Officer, scene.partner.liaison.id), ChatPlatform.DINGTALK, "ding-liaison"
        )
    single = "https://oapi.dingtalk.com/robot/sendBySession?session=single-1"
    rows = await send(
        sessionmaker,
        make_dispatcher(sessionmaker, clock),
        text_event(
            "ding-liaison",
            "任务",
            platform="dingtalk",
            extras=DingTalkExtras(session_webhook=single).dump(),
        ),
    )
    assert {r.destination["kind"] for r in rows} == {"chat"} and len(rows) == 2
    assert SENT_PRIVATELY not in bodies(rows)


async def test_provisional_reply_deadline_is_marked_in_task_list_detail_and_card(
    sessionmaker, clock, scene
) -> None:
    """docs/domain.md "Working days": a weekday-only deadline says so wherever it is shown."""
    d = make_dispatcher(sessionmaker, clock)
    who = scene.partner.liaison.code
    async with sessionmaker() as s, s.begin():
        task = await s.scalar(select(JointTask).where(JointTask.code == scene.task_code))
        firm = Deadline(task.reply_due_on, False).label()
    listing = await send(sessionmaker, d, text_event(who, "任务"))
    assert f"{firm}前答复" in bodies(listing)
    [card] = [r.message["card"] for r in listing if kind(r) == "card"]
    assert {"name": "答复期限", "value": firm} in [
        dict(name=f["name"], value=f["value"]) for f in card["fields"]
    ]

    async with sessionmaker() as s, s.begin():
        task = await s.scalar(select(JointTask).where(JointTask.code == scene.task_code))
        task.reply_due_on, task.reply_due_provisional = dt.date(2027, 1, 6), True
    marked = Deadline(dt.date(2027, 1, 6), True).label()
    assert "暂按周一至周五计算" in marked
    listing = await send(sessionmaker, d, text_event(who, "任务"))
    assert f"{marked}前答复" in bodies(listing)
    [card] = [r.message["card"] for r in listing if kind(r) == "card"]
    assert [f["value"] for f in card["fields"] if f["name"] == "答复期限"] == [marked]
    detail = await send(sessionmaker, d, text_event(who, f"任务 {scene.task_code}"))
    assert f"答复期限：{marked}" in bodies(detail)
    [card] = [r.message["card"] for r in detail if kind(r) == "card"]
    assert [f["value"] for f in card["fields"] if f["name"] == "答复期限"] == [marked]


# ---------------------------------------------------------------- draws, cases, summary

BEACON_OUT = china_noon(dt.date(2026, 3, 4))  # the default beacon is 3 March's 福彩3D, out at 21:30


@pytest.fixture
async def drawn(sessionmaker, clock) -> tuple[f.World, str]:
    return await ready_world(sessionmaker, clock, inspectors=3, n_targets=40)


async def test_freeze_confirm_pushes_assignments_and_verifies(sessionmaker, clock, drawn) -> None:
    w, code = drawn
    d = make_dispatcher(sessionmaker, clock)
    denied = await send(sessionmaker, d, text_event(w.partners[0].liaison.code, f"抽取 {code}"))
    assert "只有牵头部门" in bodies(denied)
    frozen = await send(sessionmaker, d, text_event(w.lead.liaison.code, f"抽取 {code}"))
    mine = bodies(to(frozen, kind="officer", officer_id=w.lead.liaison.id))
    assert "抽取范围已冻结" in mine and "2026年3月3日福彩3D开奖号码" in mine
    assert len(to(frozen, kind="department")) == 2  # lead and the partner are told
    early = bodies(
        await send(sessionmaker, d, text_event(w.lead.inspectors[0].code, f"验证 {code}"))
    )
    assert "尚未锁定" in early and "通过" not in early  # a frozen draw is not headed 通过
    clock.set(BEACON_OUT)
    locked = await send(sessionmaker, d, text_event(w.lead.liaison.code, f"确认抽取 {code} 4 1 7"))
    assert "抽取结果已锁定" in bodies(to(locked, kind="officer", officer_id=w.lead.liaison.id))
    async with sessionmaker() as s:
        assigned = set(await s.scalars(select(GroupMember.officer_id)))
    pushed = {
        r.destination["officer_id"]
        for r in locked
        if r.destination["kind"] == "officer" and r.message.get("title", "").startswith("检查任务")
    }
    assert assigned and pushed == assigned
    check = bodies(
        await send(sessionmaker, d, text_event(w.lead.inspectors[0].code, f"验证 {code}"))
    )
    assert check.count("通过") == 2 and "✗" not in check  # target draw and inspector draw
    # each draw's heading on its own line: it ran into the first check (“通过**✓ 抽取范围哈希”)
    assert check.count("：通过**\n✓ 抽取范围哈希") == 2, check


async def _confirmed_first_member(sessionmaker, clock, d, w, code) -> tuple[Case, Officer]:
    """Freeze and confirm the draw once the beacon is out; the first case's first group member."""
    await send(sessionmaker, d, text_event(w.lead.liaison.code, f"抽取 {code}"))
    clock.set(BEACON_OUT)
    await send(sessionmaker, d, text_event(w.lead.liaison.code, f"确认抽取 {code} 417"))
    async with sessionmaker() as s:
        member = await s.scalar(select(GroupMember).join(Case).order_by(Case.code, GroupMember.id))
        return await s.get(Case, member.case_id), await s.get(Officer, member.officer_id)


async def _others_entered(sessionmaker, clock, case: Case, officer: Officer) -> None:
    """The other departments' parts are in (000 §九–十): the officer's 提交 completes the case."""
    async with sessionmaker() as s:
        await enter_other_parts(s, case.code, officer, clock.now())
        await s.commit()


async def test_my_cases_quick_result_and_recusal(sessionmaker, clock, drawn) -> None:
    w, code = drawn
    d = make_dispatcher(sessionmaker, clock)
    case, officer = await _confirmed_first_member(sessionmaker, clock, d, w, code)
    listing = bodies(await send(sessionmaker, d, text_event(officer.code, "我的检查")))
    assert case.code in listing and "待检查" in listing

    form = bodies(await send(sessionmaker, d, text_event(officer.code, f"提交 {case.code} A")))
    assert "请在结果填报表单中填写" in form and "填报结果" in form
    outsider = await send(
        sessionmaker, d, text_event(w.partners[0].leader.code, f"提交 {case.code} 未发现问题")
    )
    assert "只有本案检查组成员" in bodies(outsider)
    early = bodies(
        await send(sessionmaker, d, text_event(officer.code, f"提交 {case.code} 未发现问题 3月2日"))
    )
    assert "检查日期早于任务检查时间（2026年3月16日 至" in early
    clock.set(china_noon(dt.date(2026, 3, 17)))
    await _others_entered(sessionmaker, clock, case, officer)
    ok = bodies(
        await send(
            sessionmaker,
            d,
            text_event(officer.code, f"提交 {case.code.lower()} 未发现问题 3月16日"),
        )
    )
    assert "结果已提交" in ok and "未发现问题" in ok and "2026年3月16日" in ok
    async with sessionmaker() as s:
        assert (await s.get(Case, case.id)).state == "submitted"

    async with sessionmaker() as s:
        other = await s.scalar(
            select(GroupMember)
            .where(GroupMember.case_id != case.id, GroupMember.is_leader.is_(False))
            .order_by(GroupMember.id)
        )
        other_case = await s.get(Case, other.case_id)
        other_officer = await s.get(Officer, other.officer_id)
    assert "用法：回避" in bodies(
        await send(sessionmaker, d, text_event(other_officer.code, f"回避 {other_case.code}"))
    )
    recused = await send(
        sessionmaker,
        d,
        text_event(other_officer.code, f"回避 {other_case.code} 本人与该企业负责人系近亲属"),
    )
    asked = bodies(to(recused, kind="officer", officer_id=other_officer.id))
    assert "已提交回避申请" in asked
    async with sessionmaker() as s:
        assert (await s.get(GroupMember, other.id)).active is True  # 001 第十四条: leader first
    leader = next(d.leader for d in (w.lead, *w.partners) if d.dep.id == other.department_id)
    approved = text_event(leader.code, f"批准 {other_case.code} {other_officer.code}")
    assert "回避申请已批准" in bodies(await send(sessionmaker, d, approved))
    async with sessionmaker() as s:
        assert (await s.get(GroupMember, other.id)).active is False


async def test_progress_and_summary_for_leaders_only(sessionmaker, clock, drawn) -> None:
    w, code = drawn
    d = make_dispatcher(sessionmaker, clock)
    progress = bodies(
        await send(sessionmaker, d, text_event(w.partners[0].inspectors[0].code, f"进度 {code}"))
    )
    assert f"进度：{code}" in progress and "已接受" in progress
    summary = await send(sessionmaker, d, text_event(w.lead.leader.code, "汇总"))
    assert summary and code in bodies(summary)
    refused = await send(sessionmaker, d, text_event(w.lead.inspectors[0].code, "汇总"))
    assert "仅向分管领导" in bodies(refused)
    async with sessionmaker() as s:
        denied = await s.scalar(select(AuditEvent).where(AuditEvent.action == "denied"))
        assert denied.actor == w.lead.inspectors[0].code and denied.data["action"] == "summary.view"


async def test_progress_shows_a_text_bar_per_department(sessionmaker, clock, drawn) -> None:
    """进度 counts, per department with inspectors in the task, the cases whose result is in."""
    w, code = drawn
    d = make_dispatcher(sessionmaker, clock)
    case, officer = await _confirmed_first_member(sessionmaker, clock, d, w, code)
    clock.set(china_noon(dt.date(2026, 3, 17)))
    await _others_entered(sessionmaker, clock, case, officer)
    await send(sessionmaker, d, text_event(officer.code, f"提交 {case.code} 未发现问题 3月16日"))
    async with sessionmaker() as s:
        per_department = dict(
            (
                await s.execute(
                    select(Department.name, func.count(func.distinct(GroupMember.case_id)))
                    .join(GroupMember, GroupMember.department_id == Department.id)
                    .where(GroupMember.active.is_(True))
                    .group_by(Department.name)
                )
            ).all()
        )
        submitted = set(
            await s.scalars(
                select(Department.name)
                .join(GroupMember, GroupMember.department_id == Department.id)
                .where(GroupMember.case_id == case.id, GroupMember.active.is_(True))
            )
        )
    shown = bodies(await send(sessionmaker, d, text_event(w.lead.liaison.code, f"进度 {code}")))
    assert len(per_department) == 2
    for name, total in per_department.items():
        done = 1 if name in submitted else 0
        filled = round(10 * done / total)
        assert f"{name} {'▓' * filled}{'░' * (10 - filled)} {done}/{total}" in shown


async def test_quick_submit_without_inspection_date_asks_for_it_instead_of_assuming_today(
    sessionmaker, clock, drawn
) -> None:
    w, code = drawn
    d = make_dispatcher(sessionmaker, clock)
    case, officer = await _confirmed_first_member(sessionmaker, clock, d, w, code)
    refused = bodies(
        await send(sessionmaker, d, text_event(officer.code, f"提交 {case.code} 未发现问题"))
    )
    assert f"请写明检查日期，例如：提交 {case.code} 未发现问题 3月20日" in refused
    async with sessionmaker() as s:
        after = await s.get(Case, case.id)
        assert (after.state, after.inspected_on) == ("assigned", None)
        assert await s.scalar(select(func.count()).select_from(CaseResult)) == 0


async def test_progress_shows_an_outside_department_only_the_public_side(
    sessionmaker, clock, drawn
) -> None:
    """Issue 11 defect 7 (002 二(六): results are public by publication, not before): an
    officer of a department outside the task sees no invitations, cases or results."""
    w, code = drawn
    d = make_dispatcher(sessionmaker, clock)
    async with sessionmaker() as s:
        outsider = (await f.dept(s, inspectors=1)).inspectors[0]
        await s.commit()
    inside = bodies(
        await send(sessionmaker, d, text_event(w.partners[0].inspectors[0].code, f"进度 {code}"))
    )
    outside = bodies(await send(sessionmaker, d, text_event(outsider.code, f"进度 {code}")))
    assert "已接受" in inside
    assert f"进度：{code}" in outside and "本部门未参加该任务" in outside
    assert "已接受" not in outside and " 户" not in outside
