"""Answering an invitation as a department (seed 000 §七): the written reason of a decline, and
what the department's other answerers hear; the chat, card and page paths end to end."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.platforms.simulator import SimulatorExtras
from core import plan
from core.cards import InvitationAction
from core.changes import Ctx
from core.clock import FixedClock
from core.consultation import answers, creation, opening
from core.errors import ValidationFailed
from core.messages import Event, OutMessage
from core.models import (
    Conversation,
    Department,
    Invitation,
    Item,
    JointTask,
    Officer,
    OutboxMessage,
    PlanEntry,
    TaskItem,
)
from core.rules import Rules, written_reason_problem
from handlers import invitation_page
from handlers.pages import PageCtx
from tests import factories as f
from tests.dispatch_support import (
    LONG_REASON,
    Scene,
    bodies,
    consultation_scene,
    make_dispatcher,
    send,
    text_event,
    too_long,
)

PUNCTUATION_ONLY = "。。。。。。。。。。。。"
PADDED = "人员不足。。。。。。。。。。。。"  # four characters of content


@pytest.fixture
async def scene(sessionmaker: async_sessionmaker[AsyncSession], clock: FixedClock) -> Scene:
    """A task out for consultation with two partner departments."""
    async with sessionmaker() as s, s.begin():
        return await consultation_scene(s, clock, n_targets=0)


async def _state(sm: async_sessionmaker[AsyncSession], inv_id: int) -> tuple[str, str]:
    async with sm() as s:
        inv = await s.get(Invitation, inv_id)
        assert inv is not None
        return inv.state, inv.reason


# ---------------------------------------------------------------- defect 4: a real reason


@pytest.mark.parametrize("reason", [PUNCTUATION_ONLY, PADDED, "　 ！？……——   ", "~~~~~~~~~~~~"])
async def test_decline_reason_without_content_is_refused_000_s7(ctx: Ctx, reason: str) -> None:
    """000 §七 (书面函告理由): punctuation, spaces and symbols are no written reason; only
    letters, CJK characters and digits count toward the minimum length."""
    w = await f.world(ctx.session, partners=1, n_targets=0)
    _, inv = await f.invite_first_partner(ctx, w)
    with pytest.raises(ValidationFailed, match="至少需要 10 个字（标点、空格不计）"):
        await answers.decline_invitation(f.as_actor(ctx, w.partners[0].liaison), inv.id, reason)
    assert inv.state == "pending"
    # ten characters of content are enough, punctuation around them or not
    done = await answers.decline_invitation(
        f.as_actor(ctx, w.partners[0].liaison), inv.id, "同期专项，人员无法抽调。"
    )
    assert done.state == "declined"


async def test_punctuation_reason_refused_by_command_and_in_the_reason_step_000_s7(
    sessionmaker, clock, scene
) -> None:
    """000 §七: the chat command and the step that waits for the reason (the card's 拒绝) both
    refuse a reason of punctuation and keep the invitation pending."""
    d = make_dispatcher(sessionmaker, clock)
    who = scene.partner.liaison.code
    rows = await send(
        sessionmaker, d, text_event(who, f"拒绝 {scene.task_code} {PUNCTUATION_ONLY}")
    )
    assert "至少需要 10 个字" in bodies(rows) and "已拒绝" not in bodies(rows)
    assert await _state(sessionmaker, scene.invitation_id) == ("pending", "")

    await send(sessionmaker, d, text_event(who, f"拒绝 {scene.task_code}"))
    rows = await send(sessionmaker, d, text_event(who, PADDED))
    assert "至少需要 10 个字" in bodies(rows) and "请重新回复拒绝理由" in bodies(rows)
    assert await _state(sessionmaker, scene.invitation_id) == ("pending", "")


REPEATED = ["aaaaaaaaaaaa", "哈哈哈哈哈哈哈哈哈哈", "1111 1111 11", "AaＡａaaaaaa"]


@pytest.mark.parametrize("reason", REPEATED)
async def test_one_character_repeated_is_no_reason_in_the_reason_step_000_s7(
    sessionmaker, clock, scene, reason: str
) -> None:
    """000 §七 (书面函告理由): after the card's 拒绝 the bot waits for the reason; one character
    typed over and over (case and width aside) says no reason and is refused, the invitation
    pending. A short abbreviation inside Chinese words is a reason."""
    d = make_dispatcher(sessionmaker, clock)
    p, inv_id = scene.partner, scene.invitation_id
    await send(sessionmaker, d, _sim_click(p.liaison, "decline", inv_id))
    rows = await send(sessionmaker, d, text_event(p.liaison.code, reason))
    assert "拒绝理由不能只是同一个字的重复" in bodies(rows)
    assert "请重新回复拒绝理由" in bodies(rows)
    assert await _state(sessionmaker, inv_id) == ("pending", "")
    rows = await send(sessionmaker, d, text_event(p.liaison.code, "本季度GMP检查与抽查时间冲突"))
    assert await _state(sessionmaker, inv_id) == ("declined", "本季度GMP检查与抽查时间冲突")


def test_the_one_rule_refuses_a_repeated_character_for_every_reason_000_s7() -> None:
    """000 §七: every written reason is checked by the one rule; one character repeated is no
    reason even where any words do (更换, min 1), and only that: one character, a word, an
    abbreviation or digits beside Chinese words pass."""
    for reason in [*REPEATED, "病病"]:
        assert "不能只是同一个字的重复" in written_reason_problem(
            reason, "更换理由", "请写明原因", min_chars=1, missing=""
        )
    for reason in ("病", "GMP", "本季度GMP检查", "2026年3月专项", "IT设备故障无法出行"):
        assert written_reason_problem(reason, "更换理由", "", min_chars=1, missing="") == ""


async def test_a_reason_over_2000_characters_refused_by_command_and_in_the_reason_step_000_s7(
    sessionmaker, clock, scene
) -> None:
    """000 §七: the chat refuses a decline reason over 2,000 characters saying what to do, as
    the command and as the answer the bot waits for; the invitation stays pending."""
    d = make_dispatcher(sessionmaker, clock)
    who = scene.partner.liaison.code
    rows = await send(sessionmaker, d, text_event(who, f"拒绝 {scene.task_code} {LONG_REASON}"))
    assert too_long("拒绝理由") in bodies(rows) and "已拒绝" not in bodies(rows)
    rows = await send(sessionmaker, d, text_event(who, LONG_REASON))
    assert too_long("拒绝理由") in bodies(rows) and "请重新回复拒绝理由" in bodies(rows)
    assert await _state(sessionmaker, scene.invitation_id) == ("pending", "")


async def test_a_decline_reason_is_checked_before_any_change_000_s7(ctx: Ctx) -> None:
    """000 §七: what the chat needs to ask for the reason again is a pure check, the same core
    applies (at least decline_reason_min_chars letters, at most 2,000 characters), and core's
    refusal of the reason is its own kind: the handler opens no transaction to find out."""
    rules = Rules()
    assert answers.decline_reason_problem(rules, "") == "拒绝参加联合抽查须书面说明理由"
    assert "至少需要 10 个字" in answers.decline_reason_problem(rules, PADDED)
    assert "不能超过 2000 个字" in answers.decline_reason_problem(rules, "忙" * 2001)
    assert answers.decline_reason_problem(rules, "同期专项，人员无法抽调。") == ""
    w = await f.world(ctx.session, partners=1, n_targets=0)
    _, inv = await f.invite_first_partner(ctx, w)
    with pytest.raises(answers.DeclineReasonRefused, match="不能超过 2000 个字"):
        await answers.decline_invitation(
            f.as_actor(ctx, w.partners[0].liaison), inv.id, "忙" * 2001
        )
    assert inv.state == "pending"


async def test_punctuation_reason_refused_on_the_answer_page_000_s7(
    sessionmaker, clock, scene
) -> None:
    """000 §七: the answer page refuses it too, the typed reason kept in the form."""
    async with sessionmaker() as s, s.begin():
        liaison = await s.get(type(scene.partner.liaison), scene.partner.liaison.id)
        assert liaison is not None
        pc = PageCtx(session=s, clock=clock, rules=Rules(), officer=liaison, token="t")
        form = invitation_page.AnswerForm(action="decline", reason=PUNCTUATION_ONLY)
        shown = await invitation_page.submit(pc, scene.invitation_id, form)
    assert shown.status == 422 and "至少需要 10 个字" in shown.html
    assert await _state(sessionmaker, scene.invitation_id) == ("pending", "")


async def test_unplanned_reason_of_punctuation_is_no_reason_003(ctx: Ctx) -> None:
    """003 三(七)1: a task outside the adopted plan needs a written reason, punctuation is none."""
    w = await f.world(ctx.session, partners=0, n_targets=0)
    ctx.session.add(
        PlanEntry(year=2026, code="JH-1", title="计划", lead_department_id=w.lead.dep.id, month=5)
    )
    await ctx.session.flush()
    with pytest.raises(ValidationFailed, match="计划外的任务须书面说明理由"):
        await plan.require_plan_or_reason(ctx, 2026, PUNCTUATION_ONLY)
    assert await plan.require_plan_or_reason(ctx, 2026, "上级部署的特种设备专项检查") != ""


# ---------------------------------------------------------------- a planned county


@dataclass
class County:
    deps: dict[str, Department]
    people: dict[str, Officer]  # "GA001"-like: liaison (001) and leader (900) by department
    items: dict[str, Item]
    admin: Officer


async def _county(ctx: Ctx) -> County:
    """GA leads, WJ takes part (WJ-01 general, WJ-02 key), YJ has nobody to act for it."""
    deps = {
        code: await f.department(ctx.session, name, code=code)
        for code, name in (("GA", "县公安局"), ("WJ", "县卫生健康局"), ("YJ", "县应急管理局"))
    }
    items = {}
    for code, name, category in (
        ("GA-01", "易制毒化学品检查", "key"),
        ("WJ-01", "公共场所卫生检查", "general"),
        ("WJ-02", "生活饮用水卫生检查", "key"),
        ("YJ-01", "危险化学品检查", "key"),
    ):
        dep = deps[code[:2]]
        items[code] = Item(department_id=dep.id, code=code, name=name, category=category)
    ctx.session.add_all(items.values())
    people = {}
    for code in ("GA", "WJ"):
        people[f"{code}001"] = await f.officer(ctx.session, deps[code], "liaison")
        people[f"{code}900"] = await f.officer(ctx.session, deps[code], "leader")
    admin = await f.officer(ctx.session, deps["GA"], "admin")
    await ctx.session.flush()
    return County(deps, people, items, admin)


def _plan_row(
    c: County, code: str, lead: str, participants: list[str], items: list[str]
) -> PlanEntry:
    return PlanEntry(
        year=2026,
        code=code,
        title=f"计划任务{code}",
        lead_department_id=c.deps[lead].id,
        participant_ids=[c.deps[p].id for p in participants],
        item_ids=[c.items[i].id for i in items],
        count=5,
        month=4,
    )


# ---------------------------------------------------------------- defect 2: someone to act


async def _create(ctx: Ctx, c: County, lead: str) -> JointTask:
    """A task led by `lead` with its first item, outside any plan."""
    return await creation.create_task(
        ctx,
        title="联合抽查",
        lead_department_id=c.deps[lead].id,
        window_start=f.WINDOW[0],
        window_end=f.WINDOW[1],
        item_ids=[c.items[f"{lead}-01"].id],
        scope={},
        rule=f.RULE_5PCT,
    )


async def test_a_task_is_not_created_with_a_lead_nobody_acts_for_000_s7(ctx: Ctx) -> None:
    """000 §七: declines are 函告 to the lead in writing; a lead without a liaison or leader
    would read none of them, so the admin may not start a task for it."""
    c = await _county(ctx)
    before = await f.snapshot(ctx.session, ["joint_task", "task_item"])
    with pytest.raises(ValidationFailed) as err:
        await _create(f.as_actor(ctx, c.admin), c, "YJ")
    assert "牵头部门县应急管理局（YJ）没有在岗的联络员或分管领导" in err.value.message
    assert "lianjian import inspectors" in err.value.message and "绑定" in err.value.message
    assert await f.snapshot(ctx.session, ["joint_task", "task_item"]) == before


async def test_inviting_a_department_nobody_answers_for_is_refused_000_s7(ctx: Ctx) -> None:
    """000 §七: an invited department consults and answers; one with no liaison or leader
    cannot, so it is not invited (its invitation would only expire)."""
    c = await _county(ctx)
    lead = f.as_actor(ctx, c.people["GA001"])
    task = await _create(lead, c, "GA")
    with pytest.raises(ValidationFailed) as err:
        await opening.open_consultation(lead, task, [c.deps["WJ"].id, c.deps["YJ"].id])
    message = err.value.message
    assert "受邀部门县应急管理局（YJ）没有在岗的联络员或分管领导" in message
    assert "县卫生健康局" not in message and "或不邀请该部门" in message
    assert task.state == "draft"


async def test_starting_a_plan_row_with_a_participant_nobody_answers_for_changes_nothing(
    sessionmaker, clock
) -> None:
    """000 §七 via 发起: the refusal names the department and the plan row stays unstarted."""
    async with sessionmaker() as s, s.begin():
        c = await _county(Ctx(session=s, clock=clock, rules=Rules()))
        s.add(_plan_row(c, "JH-2026-04", "GA", ["WJ", "YJ"], ["GA-01"]))
        s.add(_plan_row(c, "JH-2026-05", "YJ", ["WJ"], ["YJ-01"]))
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event(c.people["GA001"].code, "发起 JH-2026-04"))
    assert "受邀部门县应急管理局（YJ）没有在岗的联络员或分管领导" in bodies(rows)
    # a liaison in chat is sent to the administrator, not to a command line
    assert "请联系联席会议办公室管理员补录" in bodies(rows) and "lianjian" not in bodies(rows)
    rows = await send(sessionmaker, d, text_event(c.admin.code, "发起 JH-2026-05"))
    assert "牵头部门县应急管理局（YJ）没有在岗的联络员或分管领导" in bodies(rows)
    async with sessionmaker() as s:
        assert await s.scalar(select(JointTask.id)) is None
        assert list(await s.scalars(select(PlanEntry.task_id))) == [None, None]


async def test_the_invitation_says_a_list_without_key_items_is_taken_whole_002_2_2(
    ctx: Ctx,
) -> None:
    """002 二(二) (key and general items): a plain 接受 takes the department's key items, or
    its whole list when the list has none; the invitation says which. It said 按重点事项 to a
    department with no key item, whose plain 接受 then took every item with no word of why."""
    c = await _county(ctx)
    general_only = await ctx.session.get(Item, c.items["WJ-02"].id)
    assert general_only is not None
    general_only.category = "general"
    lead = f.as_actor(ctx, c.people["GA001"])
    await opening.open_consultation(lead, await _create(lead, c, "GA"), [c.deps["WJ"].id])
    texts = [
        OutMessage.model_validate(r.message).body
        for r in await ctx.session.scalars(select(OutboxMessage))
        if r.destination.get("department_id") == c.deps["WJ"].id
        or r.destination.get("officer_id") in (c.people["WJ001"].id, c.people["WJ900"].id)
    ]
    assert texts
    for text in texts:
        assert "不写则按本部门全部事项参加" in text and "按重点事项" not in text


# ---------------------------------------------------------------- defect 1: the planned items


async def _start_planned(sessionmaker, clock) -> tuple[County, str, int]:
    """Plan row JH-2026-05 (lead GA, participant WJ, items GA-01、WJ-01) started by GA's
    liaison; returns the county, the task code and WJ's invitation id."""
    async with sessionmaker() as s, s.begin():
        c = await _county(Ctx(session=s, clock=clock, rules=Rules()))
        s.add(_plan_row(c, "JH-2026-05", "GA", ["WJ"], ["GA-01", "WJ-01"]))
    d = make_dispatcher(sessionmaker, clock)
    await send(sessionmaker, d, text_event(c.people["GA001"].code, "发起 JH-2026-05"))
    async with sessionmaker() as s:
        task = await s.scalar(select(JointTask))
        assert task is not None
        inv = await s.scalar(select(Invitation).where(Invitation.task_id == task.id))
        assert inv is not None
        return c, task.code, inv.id


async def test_accept_without_items_takes_the_plan_s_items_003(sessionmaker, clock) -> None:
    """003 三(七)2 (the plan names each department's items) and 000 §二(五)6: a planned task's
    participant that accepts without naming items checks what the plan gave it, not its key
    items."""
    c, code, _ = await _start_planned(sessionmaker, clock)
    d = make_dispatcher(sessionmaker, clock)
    rows = await send(sessionmaker, d, text_event(c.people["WJ001"].code, f"接受 {code}"))
    assert "县卫生健康局本次检查事项：公共场所卫生检查" in bodies(rows)
    async with sessionmaker() as s:
        taken = await s.scalars(
            select(Item.code)
            .join(TaskItem, TaskItem.item_id == Item.id)
            .where(TaskItem.department_id == c.deps["WJ"].id)
        )
        assert list(taken) == ["WJ-01"]


async def test_the_invitation_says_the_planned_items_are_taken_by_default_003(
    sessionmaker, clock
) -> None:
    """003 三(七)2: the card and the group notice name the planned items as what a plain
    接受 takes, instead of "不写则按重点事项参加"."""
    c, _code, _inv_id = await _start_planned(sessionmaker, clock)
    async with sessionmaker() as s:
        texts = [
            OutMessage.model_validate(r.message).body
            for r in await s.scalars(select(OutboxMessage))
            if r.destination.get("department_id") == c.deps["WJ"].id
            or r.destination.get("officer_id") in (c.people["WJ001"].id, c.people["WJ900"].id)
        ]
    assert len(texts) == 3  # the group chat and both answerers' cards
    for text in texts:
        assert "按年度抽查计划，本部门检查：WJ-01 公共场所卫生检查" in text
        assert "不写则按计划事项参加" in text and "按重点事项" not in text


async def test_the_answer_page_pre_ticks_the_planned_items_003(sessionmaker, clock) -> None:
    """003 三(七)2: the page's boxes start at the plan's items (WJ-01), not the key WJ-02;
    a plan item replaced by a newer version of the list is ticked in its current version."""
    c, _code, inv_id = await _start_planned(sessionmaker, clock)
    async with sessionmaker() as s, s.begin():
        old = await s.get(Item, c.items["WJ-01"].id)
        assert old is not None
        old.current = False
        s.add(
            Item(
                department_id=c.deps["WJ"].id,
                code="WJ-01",
                name="公共场所卫生检查（2026版）",
                category="general",
                version=2,
            )
        )
    async with sessionmaker() as s:
        liaison = await s.get(Officer, c.people["WJ001"].id)
        assert liaison is not None
        pc = PageCtx(session=s, clock=clock, rules=Rules(), officer=liaison, token="t")
        view = await answers.invitation_view(pc.core, inv_id)
        ticked = {i.code: i.name for i in view.own_items if i.id in view.default_item_ids()}
        assert ticked == {"WJ-01": "公共场所卫生检查（2026版）"}
        shown = await invitation_page.show(pc, inv_id)
    assert "按年度抽查计划" in shown.html


# ---------------------------------------------------------------- defect 3: the department hears


def _sim_click(officer: Officer, action: str, invitation_id: int) -> Event:
    """A click in the simulator on the invitation card sent to `officer`."""
    return Event(
        platform="sim",
        event_id=f"click:{officer.code}:{action}:{invitation_id}",
        kind="card_action",
        user_id=officer.code,
        action_key=InvitationAction(action=action, invitation_id=invitation_id).pack(),
        extras=SimulatorExtras(card=opening.card_id(invitation_id, officer.id)).dump(),
    )


def _card_updates(rows: list[OutboxMessage]) -> dict[int, tuple[str, str, str]]:
    """Officer id → (the click's handle, the card's own id, what it shows) of each update."""
    found = {}
    for row in rows:
        msg = OutMessage.model_validate(row.message)
        if msg.kind == "card_update" and msg.card is not None:
            found[row.destination["officer_id"]] = (
                msg.card_ref,
                msg.card.task_id,
                msg.card.answered,
            )
    return found


async def test_the_department_s_other_answerers_hear_who_answered_000_s7(
    sessionmaker, clock, scene
) -> None:
    """000 §七: the department decides once. The liaison clicks 拒绝 (the bot waits for the
    reason) while the leader sends 接受: the liaison and the department's group chat are told who
    accepted when, every answerer's card is shown answered, and the liaison's late reason is
    told who answered, when, and what to do if it is wrong."""
    d = make_dispatcher(sessionmaker, clock)
    p, inv_id = scene.partner, scene.invitation_id
    await send(sessionmaker, d, _sim_click(p.liaison, "decline", inv_id))
    rows = await send(sessionmaker, d, text_event(p.leader.code, f"接受 {scene.task_code}"))

    told = to_dest(rows, kind="officer", officer_id=p.liaison.id, message_kind="markdown")
    group = to_dest(rows, kind="department", department_id=p.dep.id)
    for text in (told, group):
        assert f"{p.dep.name}已接受联合抽查邀请" in text
        assert f"答复人：{p.leader.name}（2026年" in text
        assert "本部门已答复，无需再答复" in text and "如答复有误，请联系牵头部门" in text
    assert _card_updates(rows) == {
        officer.id: ("", opening.card_id(inv_id, officer.id), f"已由 {p.leader.name} 接受")
        for officer in (p.liaison, p.leader)
    }

    late = bodies(
        await send(sessionmaker, d, text_event(p.liaison.code, "本季度人手不足，无法参加本次抽查"))
    )
    assert "该邀请已答复（已接受），不能重复答复" in late
    assert f"{p.dep.name}{p.leader.name}已于 2026年" in late and "接受。" in late
    assert f"如答复有误，请联系牵头部门（{scene.w.lead.dep.name}）" in late
    assert await _state(sessionmaker, inv_id) == ("accepted", "")


async def test_a_click_on_a_card_answered_meanwhile_shows_who_answered_000_s7(
    sessionmaker, clock, scene
) -> None:
    """000 §七: a stale card clicked after the leader answered is shown answered by the leader
    (the click is how some platforms let a card be updated), and nothing is answered twice."""
    d = make_dispatcher(sessionmaker, clock)
    p, inv_id = scene.partner, scene.invitation_id
    await send(sessionmaker, d, text_event(p.leader.code, f"接受 {scene.task_code}"))
    rows = await send(sessionmaker, d, _sim_click(p.liaison, "decline", inv_id))
    assert "不能重复答复" in bodies(rows) and p.leader.name in bodies(rows)
    card = opening.card_id(inv_id, p.liaison.id)
    assert _card_updates(rows) == {p.liaison.id: (card, "", f"已由 {p.leader.name} 接受")}
    async with sessionmaker() as s:
        assert await s.scalar(select(Conversation.id)) is None, "no reason is waited for"


async def test_a_decline_on_the_page_shows_on_the_leader_s_card_000_s7(
    sessionmaker, clock, scene
) -> None:
    """000 §七: WJ001 declines on the answer page; WJ900's card shows it and WJ900 is told."""
    p, inv_id = scene.partner, scene.invitation_id
    async with sessionmaker() as s, s.begin():
        liaison = await s.get(Officer, p.liaison.id)
        assert liaison is not None
        pc = PageCtx(session=s, clock=clock, rules=Rules(), officer=liaison, token="t")
        form = invitation_page.AnswerForm(action="decline", reason="本季度人手不足，无法参加")
        assert (await invitation_page.submit(pc, inv_id, form)).status == 200
    async with sessionmaker() as s:
        rows = list(await s.scalars(select(OutboxMessage)))
    updates = _card_updates(rows)
    assert updates[p.leader.id][2] == f"已由 {p.liaison.name} 拒绝"
    told = to_dest(rows, kind="officer", officer_id=p.leader.id, message_kind="markdown")
    assert "已拒绝联合抽查邀请" in told and "本季度人手不足，无法参加" in told


def to_dest(rows: list[OutboxMessage], message_kind: str = "", **dest: object) -> str:
    """The bodies of the rows to one destination (of one message kind)."""
    return bodies(
        [
            r
            for r in rows
            if all(r.destination.get(k) == v for k, v in dest.items())
            and (not message_kind or OutMessage.model_validate(r.message).kind == message_kind)
        ]
    )


async def test_002_2_2_accepting_in_chat_with_a_general_item_capped_below_the_tasks_ratio(
    sessionmaker, clock
) -> None:
    """002 二(二): `接受 编号 事项代码` naming a general item capped at 5 % for a task drawing
    10 % is refused in the chat, naming both; the invitation stays open for another choice."""
    async with sessionmaker() as s, s.begin():
        w = await f.world(s, partners=1, n_targets=10)
        ctx = Ctx(session=s, clock=clock, rules=Rules())
        w.lead.items = [await f.item(s, w.lead.dep, key=True)]
        p = w.partners[0]
        p.items[0].ratio_cap = "0.05"
        task = await f.draft_task(ctx, w, rule={"strata": [{"name": "全部", "ratio": "0.10"}]})
        [inv] = await opening.open_consultation(f.as_actor(ctx, w.lead.liaison), task, [p.dep.id])
        code, inv_id, item_code = task.code, inv.id, p.items[0].code
    d = make_dispatcher(sessionmaker, clock)
    reply = bodies(
        await send(sessionmaker, d, text_event(p.liaison.code, f"接受 {code} {item_code}"))
    )
    assert "上限为 5%" in reply and "比例为 10%" in reply and item_code in reply, reply
    assert "不能以该事项接受" in reply and "Traceback" not in reply, reply
    assert await _state(sessionmaker, inv_id) == ("pending", "")
