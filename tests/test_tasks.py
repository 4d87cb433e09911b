"""Joint-task lifecycle: create → consult → answer → freeze → confirm → match → recuse/replace."""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.platforms.base import card_markdown
from core import access, audit, replacements
from core.changes import Ctx
from core.clock import china_noon
from core.consultation import answers, creation, expiry, opening
from core.draws import targets
from core.draws.verify import draw_public_json, verify_draw
from core.errors import DomainError, InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from core.groups import matching, member_changes
from core.groups.matching import match_inspectors
from core.messages import Card
from core.models import (
    AuditEvent,
    Case,
    Draw,
    DrawPool,
    GroupMember,
    Invitation,
    JointTask,
    Officer,
    OfficerConflict,
    OutboxMessage,
    Recusal,
    ReplacementRequest,
    TaskItem,
)
from core.progress import cases_for_officer, task_progress, tasks_for_department
from core.states import INVITATION
from core.summary import daily_summary, summary_message
from tests import factories as f
from tests.case_factories import at_time
from tests.factories import as_actor

BEACON_SOURCE = "2026年3月3日福彩3D开奖号码"
BEACON = "4 1 7"
BEACON_OUT = china_noon(dt.date(2026, 3, 4))  # after BEACON_SOURCE's draw (21:30 on 3 March)


async def _lock(lead: Ctx, task: JointTask) -> Draw:
    """Freeze, wait for the beacon's publication, confirm: the draw every later step needs."""
    await targets.freeze_pool(lead, task.code, BEACON_SOURCE)
    at_time(lead, BEACON_OUT)
    return await targets.confirm_draw(lead, task.code, BEACON)


async def _outbox(ctx: Ctx) -> list[OutboxMessage]:
    return list(await ctx.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def _audit_actions(ctx: Ctx) -> list[str]:
    return list(await ctx.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


async def _refused(ctx: Ctx, exc: type[DomainError], match: str, call) -> DomainError:
    """The call raises `exc` with `match` in its message and leaves every table as it was.

    A savepoint stands in for the caller's transaction, so the test's objects stay loaded."""
    await ctx.session.commit()
    before = await f.snapshot(ctx.session)
    savepoint = await ctx.session.begin_nested()
    with pytest.raises(exc, match=match) as info:
        await call
    assert await f.snapshot(ctx.session) == before  # nothing flushed before the refusal
    await savepoint.rollback()
    assert await f.snapshot(ctx.session) == before
    return info.value


async def test_full_path(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=2, inspectors=3, n_targets=60)
    lead = as_actor(ctx, w.lead.liaison)
    task = await f.draft_task(ctx, w)
    assert task.code == "LJ-2026-001" and task.state == "draft"

    invitations = await opening.open_consultation(
        lead, task, [p.dep.id for p in w.partners] + [w.lead.dep.id]
    )
    assert task.state == "consulting" and len(invitations) == 2  # the lead is never invited
    assert task.commitment == hashlib.sha256(bytes.fromhex(task.seed_hex)).hexdigest()
    assert task.reply_due_on == dt.date(2026, 3, 9)  # 5 working days after Monday 2 March
    sent = await _outbox(ctx)
    cards = [m for m in sent if m.message.get("kind") == "card"]
    # the card with answer buttons goes to whoever may answer: liaison and leader, directly
    assert [c.destination["officer_id"] for c in cards] == [
        o.id for p in w.partners for o in (p.liaison, p.leader)
    ]
    group_notes = [m for m in sent if m.destination["kind"] == "department"]
    assert [m.destination["department_id"] for m in group_notes] == [p.dep.id for p in w.partners]
    assert f"接受 {task.code}" in group_notes[0].message["body"]
    # each invitee is shown its own item list with the codes 接受 takes
    first_partner_items = [i.code for i in w.partners[0].items]
    assert all(c in cards[0].message["card"]["description"] for c in first_partner_items)
    assert not any(
        c in cards[0].message["card"]["description"] for c in [i.code for i in w.partners[1].items]
    )
    card = cards[0].message["card"]
    assert [b["action_key"] for b in card["buttons"]] == [
        f"inv:accept:{invitations[0].id}",
        f"inv:decline:{invitations[0].id}",
    ]
    assert card["task_id"] == f"inv-{invitations[0].id}-o{w.partners[0].liaison.id}"
    assert task.commitment in card["description"] and "2026年3月9日" in card["description"]
    # the card says its title and its fields once: every platform shows the title, then the
    # description, then the fields (the description used to open with all three again)
    shown = card_markdown(Card.model_validate(card))
    assert shown.count(card["title"]) == 1 and shown.count(f"任务编号：{task.code}") == 1
    assert shown.count("牵头部门：") == 1 and card["title"] in group_notes[0].message["body"]

    await answers.accept_invitation(as_actor(ctx, w.partners[0].liaison), invitations[0].id)
    assert task.state == "consulting"
    await answers.decline_invitation(
        as_actor(ctx, w.partners[1].leader),
        invitations[1].id,
        "  本部门本月承担省级专项督查任务，人员无法抽调  ",
    )
    assert task.state == "ready" and invitations[1].reason.startswith("本部门")
    lead_msgs = [
        m.message["body"]
        for m in await _outbox(ctx)
        if m.destination.get("department_id") == w.lead.dep.id
    ]
    assert any("已拒绝" in b and "省级专项督查" in b for b in lead_msgs)
    assert any("征询完成" in b for b in lead_msgs)

    frozen = await targets.freeze_pool(lead, task.code, BEACON_SOURCE)
    await ctx.session.commit()
    assert (frozen.state, frozen.freeze_no, frozen.pool_size, frozen.seed_hex) == (
        "frozen",
        1,
        60,
        "",
    )
    public = draw_public_json(frozen)
    assert public["seed"] is None and public["selection"] == [] and public["beacon"] is None
    freeze_msgs = [
        m for m in await _outbox(ctx) if m.message.get("title", "").startswith("抽取范围已冻结")
    ]
    assert {m.destination["department_id"] for m in freeze_msgs} == {
        w.lead.dep.id,
        w.partners[0].dep.id,
    }
    for m in freeze_msgs:
        body = m.message["body"]
        assert frozen.pool_hash in body and task.commitment in body and BEACON_SOURCE in body
        assert not any(
            t.uscc in body or t.name in body for t in w.targets
        )  # nothing selected shows

    at_time(ctx, BEACON_OUT)
    locked = await targets.confirm_draw(lead, task.code, BEACON)
    await ctx.session.commit()
    assert locked.state == "locked" and len(locked.selection) == 3 and task.state == "locked"
    assert locked.seed_hex == task.seed_hex and locked.beacon == BEACON
    cases = list(await ctx.session.scalars(select(Case).order_by(Case.id)))
    assert [c.code for c in cases] == [f"{task.code}-{n:03d}" for n in (1, 2, 3)]
    assert [c.target.uscc for c in cases] == locked.selection
    assert all(c.state == "assigned" and c.result_due_on == dt.date(2026, 7, 28) for c in cases)
    report = await verify_draw(ctx, locked.id)
    assert report.ok, report.checks

    matched = await matching.match_inspectors(lead, task.code)
    await ctx.session.commit()
    assert task.state == "inspecting" and len(matched) == 3
    members = list(await ctx.session.scalars(select(GroupMember)))
    by_case: dict[int, list[GroupMember]] = {}
    for member in members:
        by_case.setdefault(member.case_id, []).append(member)
    for group in by_case.values():
        assert len(group) >= ctx.rules.min_group_size
        leaders = [m for m in group if m.is_leader]
        assert len(leaders) == 1 and leaders[0].department_id == w.lead.dep.id
        assert {m.department_id for m in group} == {w.lead.dep.id, w.partners[0].dep.id}
    inspectors_draw = await ctx.session.scalar(select(Draw).where(Draw.kind == "inspectors"))
    assert inspectors_draw is not None and (await verify_draw(ctx, inspectors_draw.id)).ok
    dms = [m for m in await _outbox(ctx) if m.destination["kind"] == "officer"]
    first = matched[0]
    leader_id = next(m.officer_id for m in by_case[first.id] if m.is_leader)
    dm = next(m.message["body"] for m in dms if m.destination["officer_id"] == leader_id)
    assert (
        first.code in dm and first.target.uscc in dm and "20 个工作日" in dm and "提交 案件号" in dm
    )

    partner = w.partners[0]
    old = next(m for m in by_case[first.id] if m.department_id == partner.dep.id)
    await replacements.request(
        as_actor(ctx, old.officer),
        first.code,
        old.officer.code,
        "系该企业法定代表人近亲属",
        kind="recusal",
    )
    assert old.active  # 001 第十四条: only once the department leader agrees
    await replacements.decide(as_actor(ctx, partner.leader), first.code, old.officer.code)
    new_member = await _newest_member(ctx, first)
    assert new_member.department_id == partner.dep.id and new_member.officer_id != old.officer_id
    assert old.active is False
    recusal = await ctx.session.scalar(select(Recusal))
    assert recusal is not None and recusal.kind == "recusal"
    assert recusal.replacement_officer_id == new_member.officer_id

    lead_member = next(m for m in by_case[first.id] if m.is_leader)
    in_first = set(
        await ctx.session.scalars(
            select(GroupMember.officer_id).where(GroupMember.case_id == first.id)
        )
    )
    spare = next(o for o in w.lead.inspectors if o.id not in in_first)
    replaced = await member_changes.replace_inspector(
        as_actor(ctx, w.lead.leader),
        first.code,
        lead_member.officer_id,
        spare.id,
        "岗位调整，调往其他科室",
    )
    assert replaced.is_leader and replaced.officer_id == spare.id
    await ctx.session.commit()
    assert next(c.code for c in await cases_for_officer(ctx, spare.id)) == first.code

    progress = await task_progress(ctx, task.code)
    assert progress["state"] == "inspecting" and progress["cases"] == {"assigned": 3}
    assert progress["invitation_counts"] == {"accepted": 1, "declined": 1}
    assert await audit.verify_chain(ctx.session) == []
    assert await _audit_actions(ctx) == [
        "task.created",
        "task.consultation_opened",
        "invitation.accepted",
        "invitation.declined",
        "task.ready",
        "draw.frozen",
        "draw.locked",
        "inspectors.matched",
        "case.recusal.requested",
        "case.recusal",
        "officer.conflict_declared",  # the recusal's conflict stands (000 §八)
        "case.recusal.approved",
        "case.replacement",
    ]


async def test_locked_draw_recomputes_from_public_data_alone(ctx: Ctx) -> None:
    """Independent of core.draws.algorithm: the exported
    pool file, the seed and the beacon give the selection."""
    w = await f.world(ctx.session, partners=1, n_targets=120, risk_level="D")
    await f.targets(ctx.session, 80, risk_level="A")
    rule = {
        "strata": [
            {"name": "高风险", "risk_levels": ["D"], "ratio": "0.1"},
            {"name": "其他", "count": 3},
        ]
    }
    task = await f.ready_task(ctx, w, rule=rule)
    lead = as_actor(ctx, w.lead.liaison)
    d = await _lock(lead, task)
    stored = await ctx.session.get(DrawPool, d.id)
    assert stored is not None
    pool_file = zlib.decompress(stored.data).decode()
    lines = pool_file.splitlines()[1:]
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == d.pool_hash
    seed = bytes.fromhex(d.seed_hex)
    assert hashlib.sha256(seed).hexdigest() == d.commitment
    final = hashlib.sha256(seed + BEACON.encode()).digest()
    expect: list[tuple[bytes, str]] = []
    for stratum, k in (("高风险", 12), ("其他", 3)):
        ids = [line.split(",")[0] for line in lines if line.split(",")[1] == stratum]
        keyed = sorted(
            (hashlib.sha256(final + task.code.encode() + b"\x00" + i.encode()).digest(), i)
            for i in ids
        )
        expect += keyed[:k]
    assert d.selection == [i for _, i in sorted(expect)]


async def test_conflicts_honoured_and_loads_within_one(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=1, inspectors=4, n_targets=140)
    task = await f.ready_task(ctx, w)
    lead = as_actor(ctx, w.lead.liaison)
    conflicted = w.lead.inspectors[0]
    ctx.session.add_all(
        OfficerConflict(officer_id=conflicted.id, target_id=t.id, reason="亲属") for t in w.targets
    )
    await _lock(lead, task)
    cases = await matching.match_inspectors(lead, task.code)
    assert len(cases) == 7
    members = list(await ctx.session.scalars(select(GroupMember)))
    assert conflicted.id not in {m.officer_id for m in members}
    for dep in (w.lead.dep.id, w.partners[0].dep.id):
        eligible = [
            o.id
            for o in (w.lead.inspectors if dep == w.lead.dep.id else w.partners[0].inspectors)
            if o.id != conflicted.id
        ]
        loads = Counter({o: 0 for o in eligible}) + Counter(
            m.officer_id for m in members if m.department_id == dep
        )
        counts = [loads[o] for o in eligible]
        assert max(counts) - min(counts) <= 1, (dep, counts)


async def test_single_department_task_groups_are_topped_up_by_the_lead(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=0, inspectors=3, n_targets=40)
    task = await f.ready_task(ctx, w, rule={"strata": [{"name": "全部", "count": 3}]})
    lead = as_actor(ctx, w.lead.liaison)
    await _lock(lead, task)
    await match_inspectors(lead, task.code)
    groups = Counter(m.case_id for m in await ctx.session.scalars(select(GroupMember)))
    assert sorted(groups.values()) == [2, 2, 2]


async def test_refreeze_supersedes_and_is_audited(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=1)
    task = await f.ready_task(ctx, w)
    lead = as_actor(ctx, w.lead.liaison)
    first = await targets.freeze_pool(lead, task.code, BEACON_SOURCE)
    second = await targets.freeze_pool(lead, task.code, "2026年3月4日上证指数收盘点位")
    at_time(ctx, china_noon(dt.date(2026, 3, 5)))
    assert (first.state, second.state, second.freeze_no) == ("superseded", "frozen", 2)
    assert (await _audit_actions(ctx))[-1] == "draw.refrozen"
    locked = await targets.confirm_draw(lead, task.code, "3051.22")
    assert locked.id == second.id and draw_public_json(locked)["freeze_no"] == 2
    await _refused(
        ctx,
        InvalidTransition,
        "抽取结果已锁定，不能重新抽取",
        targets.confirm_draw(lead, task.code, "3051.22"),
    )
    await _refused(
        ctx,
        InvalidTransition,
        "抽取结果已锁定，不能重新抽取",
        targets.freeze_pool(lead, task.code, BEACON_SOURCE),
    )


async def test_codes_are_sequential_per_year(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=0, n_targets=0)
    a = await f.draft_task(ctx, w)
    b = await f.draft_task(ctx, w, title="2026年药品经营者联合抽查")
    c = await creation.create_task(
        ctx,
        title="跨年任务",
        lead_department_id=w.lead.dep.id,
        window_start=dt.date(2027, 1, 4),
        window_end=dt.date(2027, 3, 1),
        item_ids=[w.lead.items[0].id],
        scope={},
        rule=f.RULE_5PCT,
    )
    assert [a.code, b.code, c.code] == ["LJ-2026-001", "LJ-2026-002", "LJ-2027-001"]


async def test_expired_invitations_make_the_task_ready(ctx: Ctx, clock) -> None:
    w = await f.world(ctx.session, partners=2)
    task = await f.draft_task(ctx, w)
    invitations = await opening.open_consultation(
        as_actor(ctx, w.lead.liaison), task, [p.dep.id for p in w.partners]
    )
    await answers.accept_invitation(as_actor(ctx, w.partners[0].liaison), invitations[0].id)
    assert await expiry.expire_invitations(ctx) == 0  # not due yet
    clock.advance(dt.timedelta(days=8))  # Tuesday 10 March, the day after the reply day
    await _refused(
        ctx,
        InvalidTransition,
        "已过答复期限",
        answers.accept_invitation(as_actor(ctx, w.partners[1].liaison), invitations[1].id),
    )
    assert await expiry.expire_invitations(ctx) == 1
    assert invitations[1].state == "expired" and task.state == "ready"
    assert (await _audit_actions(ctx))[-2:] == ["invitation.expired", "task.ready"]
    assert await expiry.expire_invitations(ctx) == 0


async def test_silence_is_recorded_as_unanswered_not_refused_000_s7(ctx: Ctx, clock) -> None:
    """000 §七: an invitation not answered by its deadline is 逾期未答复 (not a written refusal);
    the lead is told it may proceed without the department, the department's leader is told too."""
    w = await f.world(ctx.session, partners=1)
    task = await f.draft_task(ctx, w)
    [inv] = await opening.open_consultation(
        as_actor(ctx, w.lead.liaison), task, [w.partners[0].dep.id]
    )
    clock.advance(dt.timedelta(days=8))
    assert await expiry.expire_invitations(ctx) == 1
    assert inv.state == "expired" and inv.reason in (None, "")
    assert INVITATION.labels[inv.state] == "逾期未答复"
    rows = [r for r in await _outbox(ctx) if "逾期未答复" in r.message.get("title", "")]
    due = task.reply_due_on
    assert due is not None  # in words, as every date users read:
    assert all(
        f"答复期限（{due.year}年{due.month}月{due.day}日）" in r.message["body"] for r in rows
    )
    told = {
        (
            r.destination["kind"],
            r.destination.get("department_id") or r.destination.get("officer_id"),
        )
        for r in rows
    }
    assert told == {
        ("department", w.partners[0].dep.id),
        ("officer", w.partners[0].leader.id),
        ("department", w.lead.dep.id),
    }
    lead_text = next(
        r.message["body"] for r in rows if r.destination.get("department_id") == w.lead.dep.id
    )
    assert f"抽取 {task.code}" in lead_text and "不是书面拒绝" in lead_text
    progress = await task_progress(ctx, task.code)
    assert [i["state_label"] for i in progress["invitations"]] == ["逾期未答复"]
    text = summary_message(await daily_summary(ctx, clock.today())).body
    # the counts add up: the overdue one is among the unanswered, not beside them
    assert f"邀请：参加 0，不参加 0，未答复 1（其中逾期 1：{w.partners[0].dep.name}）" in text


# ---------------------------------------------------------------- bad input changes nothing


async def test_unknown_department(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=1, n_targets=0)
    await _refused(
        ctx,
        NotFound,
        "未找到部门",
        creation.create_task(
            ctx,
            title="任务",
            lead_department_id=9999,
            window_start=f.WINDOW[0],
            window_end=f.WINDOW[1],
            item_ids=[],
            scope={},
            rule=f.RULE_5PCT,
        ),
    )
    task = await f.draft_task(ctx, w)
    await _refused(
        ctx,
        NotFound,
        "未找到部门",
        opening.open_consultation(
            as_actor(ctx, w.lead.liaison), task, [w.partners[0].dep.id, 9999]
        ),
    )


@pytest.mark.parametrize(
    ("changes", "exc", "message"),
    [
        ({"rule": {"strata": [{"name": "全部", "ratio": "1.2"}]}}, ValidationFailed, "不超过 100%"),
        (
            {"window_end": dt.date(2026, 3, 1)},
            ValidationFailed,
            "检查时间窗口的结束日期早于开始日期",
        ),
        ({"title": "  "}, ValidationFailed, "任务名称不能为空"),
        ({"scope": {"kinds": ["公司"]}}, ValidationFailed, "检查对象类型“公司”无效"),
        ({"item_ids": "other"}, ValidationFailed, "不在县市场监督管理局的抽查事项清单中"),
    ],
)
async def test_create_task_refuses(ctx: Ctx, changes, exc, message) -> None:
    w = await f.world(ctx.session, partners=1, n_targets=0)
    args = {
        "title": "任务",
        "lead_department_id": w.lead.dep.id,
        "window_start": f.WINDOW[0],
        "window_end": f.WINDOW[1],
        "item_ids": [i.id for i in w.lead.items],
        "scope": {},
        "rule": f.RULE_5PCT,
        **changes,
    }
    if args["item_ids"] == "other":
        args["item_ids"] = [w.partners[0].items[0].id]
    await _refused(ctx, exc, message, creation.create_task(as_actor(ctx, w.lead.liaison), **args))


async def test_000_5_3_create_task_refuses_a_window_that_has_ended_whatever_the_path(
    ctx: Ctx,
) -> None:
    """000 §五.3: the window is when the groups inspect; a task whose window has ended cannot be
    created by any path (core's create_task, not only the task file's parser), and the refusal
    says what to do. A window ending today is still open."""
    w = await f.world(ctx.session, partners=1, n_targets=0)
    args: dict[str, Any] = {
        "title": "任务",
        "lead_department_id": w.lead.dep.id,
        "window_start": dt.date(2026, 2, 2),
        "window_end": dt.date(2026, 2, 27),
        "item_ids": [i.id for i in w.lead.items],
        "scope": {},
        "rule": f.RULE_5PCT,
    }
    lead = as_actor(ctx, w.lead.liaison)
    assert ctx.clock.today() == dt.date(2026, 3, 2)
    err = await _refused(
        ctx,
        ValidationFailed,
        "检查时间窗口已于 2026年2月27日 结束（今天是 2026年3月2日）",
        creation.create_task(lead, **args),
    )
    assert "请把检查时间" in err.message and "改为今天或以后的日期" in err.message
    task = await creation.create_task(lead, **{**args, "window_end": dt.date(2026, 3, 2)})
    assert task.window_end == dt.date(2026, 3, 2)


async def test_only_lead_staff_create_and_denial_is_audited_separately(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=1, n_targets=0)
    outsider = as_actor(ctx, w.partners[0].liaison)
    err = await _refused(
        ctx,
        PermissionDenied,
        "只有管理员或牵头部门",
        creation.create_task(
            outsider,
            title="任务",
            lead_department_id=w.lead.dep.id,
            window_start=f.WINDOW[0],
            window_end=f.WINDOW[1],
            item_ids=[w.lead.items[0].id],
            scope={},
            rule=f.RULE_5PCT,
        ),
    )
    assert isinstance(err, PermissionDenied)
    await access.record_denied(outsider, err.action, err.subject, err.message)
    await ctx.session.commit()
    event = await ctx.session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()))
    assert event is not None
    assert (event.action, event.actor, event.data["action"]) == (
        "denied",
        w.partners[0].liaison.code,
        "task.create",
    )


async def test_answers_refused(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=2)
    task = await f.draft_task(ctx, w)
    invs = await opening.open_consultation(
        as_actor(ctx, w.lead.liaison), task, [p.dep.id for p in w.partners]
    )
    p0 = as_actor(ctx, w.partners[0].liaison)
    await _refused(
        ctx,
        ValidationFailed,
        "拒绝参加联合抽查须书面说明理由",
        answers.decline_invitation(p0, invs[0].id, "   "),
    )
    await _refused(
        ctx,
        ValidationFailed,
        "至少需要 10 个字",
        answers.decline_invitation(p0, invs[0].id, "没空"),
    )
    await _refused(
        ctx,
        PermissionDenied,
        "只有",
        answers.accept_invitation(as_actor(ctx, w.partners[0].inspectors[0]), invs[0].id),
    )
    await _refused(ctx, PermissionDenied, "只有", answers.accept_invitation(p0, invs[1].id))
    await _refused(ctx, NotFound, "未找到邀请", answers.accept_invitation(p0, 9999))
    await answers.accept_invitation(p0, invs[0].id)
    await _refused(
        ctx,
        InvalidTransition,
        "该邀请已答复（已接受），不能重复答复",
        answers.decline_invitation(p0, invs[0].id, "改变主意了，本部门人员不足无法参加"),
    )
    await _refused(
        ctx,
        InvalidTransition,
        "该邀请已答复（已接受），不能重复答复",
        answers.accept_invitation(p0, invs[0].id),
    )
    # 000 §七: the lead is told who has not answered yet, by when, and what comes next
    await _refused(
        ctx,
        InvalidTransition,
        f"任务尚未完成征询，不能抽取：{w.partners[1].dep.name}尚未答复（答复期限 20[0-9]{{2}}年",
        targets.freeze_pool(as_actor(ctx, w.lead.liaison), task.code, BEACON_SOURCE),
    )


async def test_accepting_with_chosen_items_records_them(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=1, n_targets=0)
    partner = w.partners[0]
    extra = await f.item(ctx.session, partner.dep, key=True)
    task = await f.draft_task(ctx, w)
    [inv] = await opening.open_consultation(as_actor(ctx, w.lead.liaison), task, [partner.dep.id])
    await answers.accept_invitation(as_actor(ctx, partner.leader), inv.id, [partner.items[0].id])
    rows = list(
        await ctx.session.scalars(
            select(TaskItem.item_id).where(TaskItem.department_id == partner.dep.id)
        )
    )
    assert rows == [partner.items[0].id] and extra.id not in rows


async def test_default_acceptance_takes_key_items(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=1, n_targets=0)
    partner = w.partners[0]
    key = await f.item(ctx.session, partner.dep, key=True)
    task = await f.draft_task(ctx, w)
    [inv] = await opening.open_consultation(as_actor(ctx, w.lead.liaison), task, [partner.dep.id])
    await answers.accept_invitation(as_actor(ctx, partner.liaison), inv.id)
    rows = list(
        await ctx.session.scalars(
            select(TaskItem.item_id).where(TaskItem.department_id == partner.dep.id)
        )
    )
    assert rows == [key.id]


async def test_draw_refusals(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=1, n_targets=5, status="注销")
    task = await f.ready_task(ctx, w)
    lead = as_actor(ctx, w.lead.liaison)
    await _refused(
        ctx,
        ValidationFailed,
        r"抽取范围内没有符合条件的检查对象（已排除：已注销/吊销/撤销/迁出 5 户）",
        targets.freeze_pool(lead, task.code, BEACON_SOURCE),
    )
    await f.targets(ctx.session, 10)
    await _refused(
        ctx,
        ValidationFailed,
        "请写明将使用的公开信标来源",
        targets.freeze_pool(lead, task.code, " "),
    )
    await _refused(
        ctx,
        PermissionDenied,
        "只有牵头部门",
        targets.freeze_pool(as_actor(ctx, w.partners[0].leader), task.code, BEACON_SOURCE),
    )
    await _refused(
        ctx, InvalidTransition, "尚未冻结抽取范围", targets.confirm_draw(lead, task.code, BEACON)
    )
    await targets.freeze_pool(lead, task.code, BEACON_SOURCE)
    at_time(ctx, BEACON_OUT)
    await _refused(
        ctx, ValidationFailed, "请输入信标值", targets.confirm_draw(lead, task.code, "  ")
    )
    await _refused(
        ctx, InvalidTransition, "检查对象尚未抽取锁定", matching.match_inspectors(lead, task.code)
    )
    await _refused(
        ctx, NotFound, "未找到任务", targets.freeze_pool(lead, "LJ-2026-999", BEACON_SOURCE)
    )


async def test_match_refuses_a_department_without_inspectors(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=1, inspectors=2)
    for o in w.partners[0].inspectors:
        o.active = False
    task = await f.ready_task(ctx, w)
    lead = as_actor(ctx, w.lead.liaison)
    await _lock(lead, task)
    await _refused(
        ctx,
        ValidationFailed,
        f"{w.partners[0].dep.name}没有在岗的执法检查人员",
        matching.match_inspectors(lead, task.code),
    )


async def test_a_task_asking_for_expertise_and_region_matches_only_such_inspectors(
    ctx: Ctx,
) -> None:
    """001 第十条: the inspector library records expertise and region; a task may ask for them."""
    # 3 of 30: within the general items' 10 % cap (002 二(二))
    w = await f.world(ctx.session, partners=1, inspectors=3, n_targets=30)
    for dept in (w.lead, *w.partners):
        for n, o in enumerate(dept.inspectors):
            o.expertise, o.region = (["食品"], "城关镇") if n < 2 else (["特种设备"], "河西乡")
    task = await f.ready_task(
        ctx,
        w,
        rule={"strata": [{"name": "全部", "count": 3}]},
        scope={"inspector_expertise": ["食品"], "inspector_regions": ["城关镇"]},
    )
    lead = as_actor(ctx, w.lead.liaison)
    await _lock(lead, task)
    cases = await match_inspectors(lead, task.code)
    members = await ctx.session.scalars(
        select(GroupMember).where(GroupMember.case_id.in_([c.id for c in cases]))
    )
    allowed = {o.id for d in (w.lead, *w.partners) for o in d.inspectors[:2]}
    assert {m.officer_id for m in members} <= allowed
    drawn = await ctx.session.scalar(select(Draw).where(Draw.kind == "inspectors"))
    assert drawn is not None and drawn.parameters["inspector_expertise"] == ["食品"]


async def test_match_names_the_task_s_inspector_requirements_when_nobody_fits(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=1, inspectors=2)
    task = await f.ready_task(ctx, w, scope={"inspector_expertise": ["特种设备"]})
    lead = as_actor(ctx, w.lead.liaison)
    await _lock(lead, task)
    await _refused(
        ctx,
        ValidationFailed,
        "没有符合本任务专业领域、区域要求的在岗执法检查人员",
        match_inspectors(lead, task.code),
    )


async def test_recusal_without_replacement_and_bad_replacements(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=1, inspectors=1, n_targets=20)
    await f.officer(ctx.session, w.lead.dep, "inspector")  # the lead needs two per group
    task = await f.ready_task(ctx, w, rule={"strata": [{"name": "全部", "count": 1}]})
    lead = as_actor(ctx, w.lead.liaison)
    await _lock(lead, task)
    [case] = await matching.match_inspectors(lead, task.code)
    await ctx.session.commit()
    only = w.partners[0].inspectors[0]

    async def recusal(asker: Officer | None, officer: Officer, reason: str) -> ReplacementRequest:
        return await replacements.request(
            as_actor(ctx, asker) if asker else ctx, case.code, officer.code, reason, kind="recusal"
        )

    await _refused(
        ctx,
        ValidationFailed,
        "该部门没有可替换的执法检查人员，无法回避",
        recusal(only, only, "与企业负责人系同学关系"),
    )
    await _refused(ctx, ValidationFailed, "回避须说明理由", recusal(only, only, ""))
    await _refused(ctx, ValidationFailed, "不在案件", recusal(None, w.lead.liaison, "理由"))
    await _refused(
        ctx,
        PermissionDenied,
        "分管领导",
        member_changes.replace_inspector(
            as_actor(ctx, w.partners[0].liaison), case.code, only.id, only.id, "岗位调整"
        ),
    )
    spare = await f.officer(ctx.session, w.partners[0].dep, "inspector")
    ctx.session.add(OfficerConflict(officer_id=spare.id, target_id=case.target_id))
    await _refused(
        ctx,
        ValidationFailed,
        "利害关系",
        member_changes.replace_inspector(
            as_actor(ctx, w.partners[0].leader), case.code, only.id, spare.id, "岗位调整"
        ),
    )
    outsider = w.lead.inspectors[0]
    await _refused(
        ctx,
        ValidationFailed,
        "不是",
        member_changes.replace_inspector(
            as_actor(ctx, w.partners[0].leader), case.code, only.id, outsider.id, "岗位调整"
        ),
    )


async def test_recusal_takes_next_in_key_order_and_keeps_leadership(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=1, inspectors=5, n_targets=20)
    task = await f.ready_task(ctx, w, rule={"strata": [{"name": "全部", "count": 1}]})
    lead = as_actor(ctx, w.lead.liaison)
    await _lock(lead, task)
    [case] = await matching.match_inspectors(lead, task.code)
    d = await ctx.session.scalar(select(Draw).where(Draw.kind == "inspectors"))
    assert d is not None
    lead_codes = {o.code for o in w.lead.inspectors}
    order = [
        i.removeprefix("inspector:")
        for i in d.selection
        if i.removeprefix("inspector:") in lead_codes
    ]
    members = list(
        await ctx.session.scalars(select(GroupMember).where(GroupMember.case_id == case.id))
    )
    leader = next(m for m in members if m.is_leader)
    assert leader.officer.code == order[0]  # the lead's first in key order leads the first case
    in_group = {m.officer.code for m in members}
    expected = next(c for c in order[1:] if c not in in_group)
    await replacements.request(
        ctx, case.code, leader.officer.code, "曾为该企业提供咨询服务", kind="recusal"
    )
    await replacements.decide(ctx, case.code, leader.officer.code)
    new = await _newest_member(ctx, case)
    assert new.officer.code == expected and new.is_leader
    sent = await _outbox(ctx)
    notified = {
        m.destination.get("officer_id")
        for m in sent
        if m.message.get("title", "").startswith("检查组人员回避")
    }
    assert notified and not notified & {leader.officer_id, new.officer_id}
    assert any(  # the one who left is told the case is no longer theirs
        m.destination.get("officer_id") == leader.officer_id
        for m in sent
        if m.message.get("title") == f"已退出检查组：{case.code}"
    )
    # the newcomer gets the full assignment instead (tests/test_beacon.py checks its contents)
    assert any(
        m.destination.get("officer_id") == new.officer_id and case.code in m.message["body"]
        for m in sent
        if m.message.get("title") == f"检查任务：{task.code}"
    )


async def _newest_member(ctx: Ctx, case: Case) -> GroupMember:
    """Who joined the group last (the one taking over after a recusal)."""
    member = await ctx.session.scalar(
        select(GroupMember).where(GroupMember.case_id == case.id).order_by(GroupMember.id.desc())
    )
    assert member is not None
    return member


async def test_queries_for_handlers(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=1)
    own = await f.draft_task(ctx, w)
    other_lead = await f.dept(ctx.session)
    theirs = await creation.create_task(
        as_actor(ctx, other_lead.leader),
        title="他部门任务",
        lead_department_id=other_lead.dep.id,
        window_start=f.WINDOW[0],
        window_end=f.WINDOW[1],
        item_ids=[other_lead.items[0].id],
        scope={},
        rule=f.RULE_5PCT,
    )
    await opening.open_consultation(as_actor(ctx, other_lead.liaison), theirs, [w.lead.dep.id])
    listing = await tasks_for_department(ctx, w.lead.dep.id)
    assert [(x.task.code, x.role) for x in listing] == [
        (theirs.code, "invited"),
        (own.code, "lead"),
    ]
    assert listing[0].invitation is not None and listing[0].invitation.state == "pending"
    progress = await task_progress(ctx, theirs.code)
    assert progress["invitation_counts"] == {"pending": 1} and progress["overdue"] == 0
    count = await ctx.session.scalar(select(func.count()).select_from(Invitation))
    assert count == 1


async def test_exported_pool_file_hashes_to_the_pool_hash(ctx: Ctx) -> None:
    from core.draws.verify import pool_csv_text

    w = await f.world(ctx.session, partners=0, n_targets=30)
    task = await f.ready_task(ctx, w)
    d = await targets.freeze_pool(as_actor(ctx, w.lead.liaison), task.code, BEACON_SOURCE)
    text = await pool_csv_text(ctx, d.id)
    assert text.startswith("id,stratum\n") and text.endswith("\n")
    assert (
        hashlib.sha256(text.removeprefix("id,stratum\n").removesuffix("\n").encode()).hexdigest()
        == d.pool_hash
    )
    report = await verify_draw(ctx, d.id)
    assert report.ok and [c.label for c in report.checks] == [
        "抽取范围哈希",
        "抽取范围数量",
        "种子承诺值",
    ]


async def test_verify_detects_a_tampered_selection(ctx: Ctx) -> None:
    w = await f.world(ctx.session, partners=0, n_targets=30)
    task = await f.ready_task(ctx, w)
    lead = as_actor(ctx, w.lead.liaison)
    d = await _lock(lead, task)
    d.selection = [
        *d.selection[1:],
        w.targets[0].uscc if w.targets[0].uscc not in d.selection else w.targets[1].uscc,
    ]
    await ctx.session.flush()
    report = await verify_draw(ctx, d.id)
    assert not report.ok and [c.label for c in report.checks if not c.ok] == ["抽取结果"]
